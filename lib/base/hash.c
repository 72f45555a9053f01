/* hash: XXH3-128 digests as lowercase hex (see hash.h). The canonical
 * form is big-endian (high 64 bits first), so the text equals what the
 * xxhsum tool prints with -H2 and is stable across machines. */
#include "base/hash.h"
#include "base/errors.h"

#include <stdlib.h>
#include <xxhash.h>

static void hash_to_hex(char out[33], XXH128_hash_t h)
{
    static const char digits[] = "0123456789abcdef";
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[c.digest[i] >> 4];
        out[2 * i + 1] = digits[c.digest[i] & 15];
    }
    out[32] = '\0';
}

void hash_hex(char out[33], const void *data, size_t len)
{
    hash_to_hex(out, XXH3_128bits(data, len));
}

struct hash_stream {
    XXH3_state_t *state;
};

int hash_stream_open(hash_stream **out)
{
    hash_stream *h = malloc(sizeof *h);
    if (!h) return err_set(ERR_NOMEM, "out of memory for a hash state");
    h->state = XXH3_createState();
    if (!h->state) {
        free(h);
        return err_set(ERR_NOMEM, "out of memory for a hash state");
    }
    XXH3_128bits_reset(h->state);
    *out = h;
    return 0;
}

void hash_stream_update(hash_stream *h, const void *data, size_t len)
{
    XXH3_128bits_update(h->state, data, len);
}

void hash_stream_hex(const hash_stream *h, char out[33])
{
    hash_to_hex(out, XXH3_128bits_digest(h->state));
}

void hash_stream_close(hash_stream *h)
{
    if (!h) return;
    XXH3_freeState(h->state);
    free(h);
}
