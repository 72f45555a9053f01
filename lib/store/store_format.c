/* store_format: the value checksums and record names store.c and
 * store_check.c share (see store_format.h). */
#include "store/store_format.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

uint64_t store_value_sum(int db, const void *key, size_t klen,
                         const void *val, size_t vlen)
{
    uint64_t k = XXH3_64bits_withSeed(key, klen, (uint64_t)db + 1);
    return XXH3_64bits_withSeed(val, vlen, k);
}

void store_value_seal(int db, const void *key, size_t klen, void *val,
                      size_t vlen)
{
    uint64_t sum = store_value_sum(db, key, klen, val, vlen);
    unsigned char *p = (unsigned char *)val + vlen;
    for (int i = 0; i < STORE_SUM_BYTES; i++) p[i] = (unsigned char)(sum >> (8 * i));
}

int store_value_intact(int db, const void *key, size_t klen,
                       const void *val, size_t len)
{
    if (len < STORE_SUM_BYTES) return 0;
    size_t n = len - STORE_SUM_BYTES;
    const unsigned char *p = (const unsigned char *)val + n;
    uint64_t want = 0;
    for (int i = STORE_SUM_BYTES - 1; i >= 0; i--) want = (want << 8) | p[i];
    return store_value_sum(db, key, klen, val, n) == want;
}

static uint64_t be64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | b[i];
    return v;
}

/* Copies up to `max` bytes of s as printable text. */
static void printable(char *out, size_t size, const unsigned char *s,
                      size_t n, size_t max)
{
    size_t j = 0;
    for (size_t i = 0; i < n && i < max && j + 4 < size; i++) {
        unsigned char c = s[i];
        if (c == 0x1f) {
            memcpy(out + j, " / ", 3);
            j += 3;
        } else {
            out[j++] = (c >= 0x20 && c < 0x7f) || c >= 0x80 ? (char)c : '?';
        }
    }
    if (n > max && j + 4 < size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

void store_key_describe(char *buf, size_t size, int db,
                        const unsigned char *key, size_t klen)
{
    char text[512];
    unsigned long long id = klen >= 8 ? (unsigned long long)be64(key) : 0;
    switch (db) {
    case DB_VERSIONS:
    case DB_QUEUE:
    case DB_COMMITS:
        if (klen == 8) {
            snprintf(buf, size, db == DB_VERSIONS ? "version %llu"
                     : db == DB_QUEUE ? "the queue entry of version %llu"
                     : "commit %llu's record", id);
            return;
        }
        break;
    case DB_DIFFS:
        if (klen > 8) {
            printable(text, sizeof text, key + 8, klen - 8, 200);
            snprintf(buf, size, "commit %llu's diff of '%s'", id, text);
            return;
        }
        break;
    case DB_STATS: {
        const unsigned char *nul = memchr(key, 0, klen);
        if (nul && (size_t)(key + klen - nul) == 9) {
            printable(text, sizeof text, key, (size_t)(nul - key), 200);
            snprintf(buf, size, "the statistics of layer %llu of model '%s'",
                     (unsigned long long)be64(nul + 1), text);
            return;
        }
        break;
    }
    case DB_TENSORS:
        printable(text, sizeof text, key, klen, 200);
        snprintf(buf, size, "tensor '%s'", text);
        return;
    case DB_META:
        printable(text, sizeof text, key, klen, 200);
        snprintf(buf, size, "meta value '%s'", text);
        return;
    case DB_FACTS:
        printable(text, sizeof text, key, klen, 200);
        snprintf(buf, size, "the fact slot '%s'", text);
        return;
    default:
        break;
    }
    printable(text, sizeof text, key, klen, 60);
    snprintf(buf, size, "the record '%s' (a bad key)", text);
}

int store_db_index(const char *name, size_t len)
{
    for (int i = 0; i < DB_COUNT; i++)
        if (strlen(store_db_names[i]) == len && !memcmp(store_db_names[i], name, len))
            return i;
    return -1;
}
