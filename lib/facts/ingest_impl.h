/* ingest_impl: what the parts of the ingest module share (src/ingest.c,
 * src/ingest_csv.c, src/ingest_json.c). Not for use outside ingest: the
 * public interface is ingest.h.
 *
 * A parser turns its format into raw facts and hands each to
 * ingest_accept with the line where the record starts; ingest_accept
 * validates and normalises it (the rules are in ingest.c) and either
 * appends it to the result or records a problem. */
#ifndef STAMP_INGEST_IMPL_H
#define STAMP_INGEST_IMPL_H

#include "facts/ingest.h"

#include <stddef.h>
#include <stdint.h>

#define INGEST_MAX_FIELD 65536 /* bytes in one field or JSON string */

typedef struct {
    const char *path;
    const ingest_options *opt;
    ingest_result *res;
    size_t max_errors;
    size_t cap_facts, cap_problems;
    char **slots;       /* (n_facts) slot of each fact */
    size_t *ht;         /* open addressing: fact index + 1, 0 = empty */
    uint64_t *ht_hash;  /* hash of the slot in that cell */
    size_t ht_cap;      /* power of two */
} ingest_ctx;

/* Records "PATH:LINE: message" for a bad record (counted in n_bad).
 * Returns 0, or ERR_NOMEM. */
int ingest_report(ingest_ctx *c, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a whole-file problem and sets the same text with err_set.
 * Returns `code`. */
int ingest_fatal(ingest_ctx *c, int code, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Validates and normalises *f (whose strings are malloc'ed and now owned
 * by ingest) and appends it to the result, or records why not and frees
 * it. Any field may be NULL (= absent). f->source_line must be set.
 * Returns 0 either way, or ERR_NOMEM. */
int ingest_accept(ingest_ctx *c, fact *f);

/* 1 when s[0..len) is valid UTF-8 without NUL bytes; else 0 and
 * *bad_at = offset of the first bad byte. */
int ingest_text_ok(const char *s, size_t len, size_t *bad_at);

/* A printable, quoted-safe excerpt of s[0..len) for messages: at most
 * ~40 characters, bad bytes as \xNN, "..." when cut. */
void ingest_excerpt(char *out, size_t size, const char *s, size_t len);

/* Parsers: whole-file problems return an ERR_* code via ingest_fatal;
 * bad records go through ingest_report and return 0. */
int ingest_parse_csv(ingest_ctx *c, const char *buf, size_t len);
int ingest_parse_json(ingest_ctx *c, const char *buf, size_t len,
                      ingest_format fmt);

#endif
