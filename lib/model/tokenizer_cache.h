/* tokenizer_cache: the on-disk cache of parsed tokenizer.json files
 * (tokenizer_cache.c says where it lives and what a file holds).
 * hf_open uses it; this header is for it, the tests and the fuzz target:
 * the library's users only see tokenizer_open_dir get faster.
 *
 * A cache file starts with magic "STAMPTOK" (8 bytes), the version (u32
 * at 8), byte order and word size, the XXH3-64 checksum (u64 at 24) of
 * every byte from 32 on, the tokenizer.json's XXH3-128 (16 bytes at 32),
 * then counts and the table of its sections. */
#ifndef STAMP_TOKENIZER_CACHE_H
#define STAMP_TOKENIZER_CACHE_H

#include "model/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* A tokenizer.json's identity: the XXH3-128 of its bytes, canonical. */
typedef struct {
    uint8_t b[16];
} tok_src_hash;

#define TOK_CACHE_HASH_AT 32 /* where a cache file holds its tok_src_hash */

void tok_src_hash_of(tok_src_hash *h, const char *data, size_t size);

/* Parses the tokenizer.json bytes data[0..size) (path for messages)
 * with no cache: what hf_open does on a miss, and the twin the cached
 * tokenizer is tested against (tokenizer_json.c). */
int hf_parse(tokenizer **out, const char *path, const char *data, size_t size);

/* The cache file for the tokenizer.json of hash h into buf:
 * DIR/tokenizer-HASH-vVERSION.bin, DIR from $STAMP_CACHE_DIR, else
 * $XDG_CACHE_HOME/stamp, else $HOME/.cache/stamp. -1 when the cache is
 * off (STAMP_CACHE_DIR=off, or no HOME) or the name does not fit. */
int tok_cache_path(char *buf, size_t size, const tok_src_hash *h);

/* Loads the cache file at cache_path, which must hold the parse of the
 * tokenizer.json of hash h (path: that file, for messages). 0 and *out,
 * or -1 for a missing, unreadable or bad file (nothing reported). */
int tok_cache_load(tokenizer **out, const char *cache_path, const char *path,
                   const tok_src_hash *h);

/* The same on a cache file's bytes blob[0..n) (8-aligned), which the
 * call takes over: malloced = 1 for malloc'ed bytes, 0 for a mapping;
 * released on failure, else by tokenizer_close. Every size, offset and
 * id is checked before use. check_sum = 0 skips the checksum (for the
 * fuzz target and the tests' forgeries). */
int tok_cache_decode(tokenizer **out, void *blob, size_t n, int malloced,
                     const char *path, const tok_src_hash *h, int check_sum);

/* The cache file's bytes for t, parsed from the tokenizer.json of hash
 * h: *blob malloc'ed, *n its length. 0, or -1 when out of memory. */
int tok_cache_encode(const tokenizer *t, const tok_src_hash *h, void **blob,
                     size_t *n);

/* Writes the cache file for t at cache_path (a temporary file renamed
 * into place; its directory created when missing), and removes the
 * temporary files of killed writers of the same entry (older than ten
 * minutes). 0 or -1, nothing
 * reported: without a cache the tokenizer.json is parsed each time. */
int tok_cache_save(const tokenizer *t, const char *cache_path,
                   const tok_src_hash *h);

/* 1 when t was loaded from the cache, 0 when parsed (or GPT-2's). */
int tok_cache_loaded(const tokenizer *t);

/* Where the section `name` of the cache file blob[0..n) lies: "map"
 * (slots of int32 id, -1 free, u32 len, u32 off), "pairs" (slots of u64
 * key, int32 rank, int32 merged id), "str_off" (a size_t per id), "off"
 * (each token's bytes' start, n_vocab + 1 size_t), "pool", "bytes", ...
 * 0, or -1 for an unknown name or a file too short for its header. For
 * the tests that forge files. */
int tok_cache_section(const void *blob, size_t n, const char *name, size_t *off,
                      size_t *len);

#endif
