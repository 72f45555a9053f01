/* store_format: what store.c (which reads and writes data.mdb through
 * LMDB) and store_check.c (which reads data.mdb itself, with pread)
 * share about the bytes on disk: the named databases, the checksum every
 * value carries, and how a record is named in a message. Internal to
 * lib/store; docs/store.md describes the format.
 *
 * Format 2 (this stamp writes it): every value in every named database
 * is the payload followed by an 8-byte little-endian XXH3-64 of the key
 * and the payload, seeded by the database's index below, so that a value
 * moved under another key or into another database fails too. Format 1
 * (stamp before checksums): the payload alone; such stores are read and
 * written as they are until `stamp fsck --upgrade` rewrites them. The
 * format is meta "format_version": the raw byte "1" in format 1, a
 * checksummed "2" in format 2. */
#ifndef STAMP_STORE_FORMAT_H
#define STAMP_STORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

enum {
    DB_META, DB_FACTS, DB_VERSIONS, DB_QUEUE, DB_COMMITS, DB_DIFFS,
    DB_TENSORS, DB_STATS, DB_COUNT
};

static const char *const store_db_names[DB_COUNT] = {
    "meta", "facts", "versions", "queue", "commits", "diffs", "tensors",
    "stats",
};

#define STORE_FORMAT_LEGACY 1 /* values without checksums */
#define STORE_FORMAT 2        /* values with an 8-byte checksum trailer */
#define STORE_SUM_BYTES 8

/* The checksum of a value `val` of `vlen` payload bytes under `key` in
 * database `db`. */
uint64_t store_value_sum(int db, const void *key, size_t klen,
                         const void *val, size_t vlen);

/* Writes the checksum trailer of payload `val` (vlen bytes) at val+vlen. */
void store_value_seal(int db, const void *key, size_t klen, void *val,
                      size_t vlen);

/* 1 when the value (payload + trailer, `len` bytes) carries the right
 * checksum, else 0. */
int store_value_intact(int db, const void *key, size_t klen,
                       const void *val, size_t len);

/* Names a record for a message: "version 12", "commit 3's diff of
 * 'h.0.mlp.c_proj.weight'", "tensor '...'", ... Non-printable bytes are
 * written as '?'. */
void store_key_describe(char *buf, size_t size, int db,
                        const unsigned char *key, size_t klen);

/* The database index of a name, or -1. */
int store_db_index(const char *name, size_t len);

#endif
