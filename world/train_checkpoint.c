/* train_checkpoint: saves and loads a training run's state
 * (train_checkpoint.h). The file:
 *
 *   "STAMPTRN"  u32 version (1)  u32 0  fingerprint (32 hex characters)
 *   u64 step  u64 cursor  u64 rng  u64 P  u64 n
 *   float params[P]  float mom[P]  float vel[P]  u64 order[n]
 *   hash (32 hex characters): XXH3-128 of every byte before it
 *
 * in the machine's byte order. */
#include "world/train_checkpoint.h"

#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "STAMPTRN"
#define VERSION 1u
#define HEADER_BYTES (8 + 4 + 4 + 32 + 5 * 8)

typedef struct {
    char magic[8];
    uint32_t version, zero;
    char fingerprint[32];
    uint64_t step, cursor, rng, P, n;
} header;

static size_t body_bytes(size_t P, size_t n)
{
    return 3 * P * sizeof(float) + n * sizeof(uint64_t);
}

/* Writes n bytes to f and to the running hash. */
static int put(atomic_file *f, hash_stream *h, const void *p, size_t n)
{
    hash_stream_update(h, p, n);
    return atomic_file_write(f, p, n);
}

int train_checkpoint_save(const char *path, const char *fingerprint,
                          const train_state *st)
{
    header hd = {.version = VERSION, .step = st->step, .cursor = st->cursor,
                 .rng = st->rng, .P = st->P, .n = st->n};
    memcpy(hd.magic, MAGIC, 8);
    memcpy(hd.fingerprint, fingerprint, 32);
    uint64_t *order = malloc((st->n ? st->n : 1) * sizeof *order);
    hash_stream *h = NULL;
    atomic_file *f = NULL;
    int rc = !order ? err_set(ERR_NOMEM, "out of memory saving '%s'", path)
                    : hash_stream_open(&h);
    if (rc) {
        free(order);
        return rc;
    }
    for (size_t i = 0; i < st->n; i++)
        order[i] = st->order[i];
    /* the header is written field by field: no padding bytes reach the
     * file or the hash */
    if (!(rc = atomic_file_open(&f, path)) &&
        !(rc = put(f, h, hd.magic, 8)) &&
        !(rc = put(f, h, &hd.version, 4)) && !(rc = put(f, h, &hd.zero, 4)) &&
        !(rc = put(f, h, hd.fingerprint, 32)) &&
        !(rc = put(f, h, &hd.step, 8)) && !(rc = put(f, h, &hd.cursor, 8)) &&
        !(rc = put(f, h, &hd.rng, 8)) && !(rc = put(f, h, &hd.P, 8)) &&
        !(rc = put(f, h, &hd.n, 8)) &&
        !(rc = put(f, h, st->params, st->P * sizeof(float))) &&
        !(rc = put(f, h, st->mom, st->P * sizeof(float))) &&
        !(rc = put(f, h, st->vel, st->P * sizeof(float))) &&
        !(rc = put(f, h, order, st->n * sizeof *order))) {
        char digest[33];
        hash_stream_hex(h, digest);
        if (!(rc = atomic_file_write(f, digest, 32))) {
            rc = atomic_file_commit(f);
            f = NULL;
        }
    }
    atomic_file_abort(f);
    hash_stream_close(h);
    free(order);
    return rc;
}

static void header_parse(const unsigned char *b, header *hd)
{
    memcpy(hd->magic, b, 8);
    memcpy(&hd->version, b + 8, 4);
    memcpy(&hd->zero, b + 12, 4);
    memcpy(hd->fingerprint, b + 16, 32);
    memcpy(&hd->step, b + 48, 8);
    memcpy(&hd->cursor, b + 56, 8);
    memcpy(&hd->rng, b + 64, 8);
    memcpy(&hd->P, b + 72, 8);
    memcpy(&hd->n, b + 80, 8);
}

int train_checkpoint_load(const char *path, const char *fingerprint,
                          train_state *st, checkpoint_status *status)
{
    *status = CHECKPOINT_DAMAGED;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT) {
            *status = CHECKPOINT_ABSENT;
            return 0;
        }
        return err_set(ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }
    unsigned char head[HEADER_BYTES];
    header hd;
    if (fread(head, 1, HEADER_BYTES, fp) != HEADER_BYTES) {
        int bad = ferror(fp);
        fclose(fp);
        return bad ? err_set(ERR_IO, "cannot read '%s'", path) : 0;
    }
    header_parse(head, &hd);
    if (memcmp(hd.magic, MAGIC, 8) != 0 || hd.version != VERSION) {
        fclose(fp);
        return 0;
    }
    if (memcmp(hd.fingerprint, fingerprint, 32) != 0 || hd.P != st->P ||
        hd.n != st->n) {
        *status = CHECKPOINT_OTHER;
        fclose(fp);
        return 0;
    }
    size_t body = body_bytes(st->P, st->n);
    unsigned char *buf = malloc(body + 33);
    if (!buf) {
        fclose(fp);
        return err_set(ERR_NOMEM, "out of memory reading '%s'", path);
    }
    /* one byte more than the file should hold tells a longer file */
    size_t got = fread(buf, 1, body + 33, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return err_set(ERR_IO, "cannot read '%s'", path);
    }
    int rc = 0;
    hash_stream *h = NULL;
    if (got == body + 32 && !(rc = hash_stream_open(&h))) {
        char digest[33];
        hash_stream_update(h, head, HEADER_BYTES);
        hash_stream_update(h, buf, body);
        hash_stream_hex(h, digest);
        hash_stream_close(h);
        if (memcmp(digest, buf + body, 32) == 0 && hd.cursor <= hd.n) {
            size_t Pb = st->P * sizeof(float);
            memcpy(st->params, buf, Pb);
            memcpy(st->mom, buf + Pb, Pb);
            memcpy(st->vel, buf + 2 * Pb, Pb);
            for (size_t i = 0; i < st->n; i++) {
                uint64_t v;
                memcpy(&v, buf + 3 * Pb + i * sizeof v, sizeof v);
                st->order[i] = (size_t)v;
            }
            st->step = hd.step;
            st->cursor = hd.cursor;
            st->rng = hd.rng;
            *status = CHECKPOINT_LOADED;
        }
    }
    free(buf);
    return rc;
}
