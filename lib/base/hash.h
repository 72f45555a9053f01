/* hash: the one content hash stamp uses everywhere (tensor identity,
 * model identity, diff headers): XXH3-128, written as 32 lowercase hex
 * characters (the canonical big-endian form, as `xxh128sum` prints it). */
#ifndef STAMP_HASH_H
#define STAMP_HASH_H

#include <stddef.h>

/* Hashes `len` bytes at `data` into out (32 hex chars + NUL). */
void hash_hex(char out[33], const void *data, size_t len);

/* Streaming variant for data that comes in pieces: the pieces hash to
 * the same value as hash_hex over their concatenation. */
typedef struct hash_stream hash_stream; /* opaque */

/* *out is malloc'ed; ERR_NOMEM on failure. */
int hash_stream_open(hash_stream **out);
void hash_stream_update(hash_stream *h, const void *data, size_t len);
/* Writes the hex digest; the stream may be updated further. */
void hash_stream_hex(const hash_stream *h, char out[33]);
void hash_stream_close(hash_stream *h); /* accepts NULL */

#endif
