/* keystats_sum: the running sum behind the key statistics (see keystats_sum.h). Keys are
 * gathered until there are KEYSTATS_SUM_FLUSH_KEYS of them (forward batches
 * of short corpus lines), summed with ssyrk in float, and that sum added
 * into the float64 accumulator, so rounding does not grow with the
 * corpus. Adding an (F, F) sum costs as much memory traffic as a few
 * hundred keys' ssyrk, so it is done once per thousands of keys, not
 * once per forward batch (measured: bench/solve_speed.sh). */
#include "memit/keystats_sum.h"
#include "base/errors.h"
#include "memit/keystats_sum_naive.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

int keystats_sum_init(keystats_sum *c, size_t F)
{
    memset(c, 0, sizeof *c);
    c->F = F;
    c->sum = calloc(F * F, sizeof(double));
    return c->sum ? 0 : ERR_NOMEM;
}

void keystats_sum_free(keystats_sum *c)
{
    if (!c) return;
    free(c->sum);
    memset(c, 0, sizeof *c);
}

void keystats_sum_add_naive(keystats_sum *c, const float *keys, size_t n_keys)
{
    size_t F = c->F;
    for (size_t k = 0; k < n_keys; k++)
        for (size_t i = 0; i < F; i++)
            for (size_t j = 0; j < F; j++)
                c->sum[i * F + j] +=
                    (double)keys[k * F + i] * (double)keys[k * F + j];
    c->tokens += n_keys;
}

/* sum += batch and its mirror, batch holding the upper triangle, in tiles
 * small enough that the mirror's column writes stay in cache; a tile
 * above the diagonal and its mirror below are written by one thread */
enum { COV_TILE = 64 };

static void add_symmetric(double *sum, const float *batch, size_t F)
{
    size_t nt = (F + COV_TILE - 1) / COV_TILE;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t ti = 0; ti < nt; ti++)
        for (size_t tj = ti; tj < nt; tj++) {
            size_t i1 = (ti + 1) * COV_TILE < F ? (ti + 1) * COV_TILE : F;
            size_t j1 = (tj + 1) * COV_TILE < F ? (tj + 1) * COV_TILE : F;
            for (size_t i = ti * COV_TILE; i < i1; i++)
                for (size_t j = i > tj * COV_TILE ? i : tj * COV_TILE; j < j1; j++) {
                    sum[i * F + j] += batch[i * F + j];
                    if (j != i) sum[j * F + i] += batch[i * F + j];
                }
        }
}

/* batch (F, F) upper = keys^T keys, keys (n_keys, F): in fixed tiles of
 * GRAM_TILE columns, each tile by one thread (OpenBLAS runs single-
 * threaded inside an OpenMP region): the same bits for any thread count.
 * OpenBLAS's own threads split a whole ssyrk by the thread count, and its
 * sums then differ in the last bits between 1 and 2 threads. */
enum { GRAM_TILE = 256 };

static void upper_gram(float *batch, const float *keys, size_t n_keys, size_t F)
{
    size_t nt = (F + GRAM_TILE - 1) / GRAM_TILE, pairs = nt * (nt + 1) / 2;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t p = 0; p < pairs; p++) {
        size_t bi = 0, rest = p; /* p-th tile (bi, bj), bi <= bj, row by row */
        while (rest >= nt - bi) rest -= nt - bi++;
        size_t bj = bi + rest, i0 = bi * GRAM_TILE, j0 = bj * GRAM_TILE;
        int ni = (int)(F - i0 < GRAM_TILE ? F - i0 : GRAM_TILE);
        int nj = (int)(F - j0 < GRAM_TILE ? F - j0 : GRAM_TILE);
        if (bi == bj)
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, ni, (int)n_keys,
                        1.0f, keys + i0, (int)F, 0.0f, batch + i0 * F + i0, (int)F);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ni, nj,
                        (int)n_keys, 1.0f, keys + i0, (int)F, keys + j0, (int)F,
                        0.0f, batch + i0 * F + j0, (int)F);
    }
}

/* keystats_sum_add with a caller's (F, F) float workspace */
static void add_keys(keystats_sum *c, const float *keys, size_t n_keys,
                     float *batch)
{
    size_t F = c->F;
    upper_gram(batch, keys, n_keys, F);
    add_symmetric(c->sum, batch, F);
    c->tokens += n_keys;
}

void keystats_sum_add(keystats_sum *c, const float *keys, size_t n_keys)
{
    float *batch = malloc(c->F * c->F * sizeof(float));
    if (!batch) { keystats_sum_add_naive(c, keys, n_keys); return; }
    add_keys(c, keys, n_keys, batch);
    free(batch);
}

/* The buffers of keystats_sum_accumulate, sized by the longest sequence
 * seen so far (T), never by the model's n_positions: a corpus of short
 * lines needs a workspace of short lines, whatever the context length. */
typedef struct {
    size_t rows, T, F, n_layers, top;
    int **ids;        /* (rows) each row's tokens, cut at n_positions */
    size_t *lens;     /* (rows) */
    int *packed;      /* (rows, T) */
    float **keys;     /* (n_layers) keys gathered, (cap, F) each */
    size_t *n_keys;   /* (n_layers) */
    float *outer;     /* (F, F) add_keys' workspace */
    lm_acts *acts;  /* (rows, T) forward workspace up to layer top */
} stats_batch;

static void stats_batch_free(stats_batch *sb)
{
    for (size_t b = 0; sb->ids && b < sb->rows; b++) free(sb->ids[b]);
    free(sb->ids);
    free(sb->lens);
    free(sb->packed);
    for (size_t i = 0; sb->keys && i < sb->n_layers; i++) free(sb->keys[i]);
    free(sb->keys);
    free(sb->n_keys);
    free(sb->outer);
    lm_acts_free(sb->acts);
}

/* Grows the batch's buffers to sequences of T tokens; the keys gathered
 * so far are kept. */
static int stats_batch_fit(stats_batch *sb, const lm_model *m, size_t T)
{
    if (T <= sb->T) return 0;
    int *packed = realloc(sb->packed, sb->rows * T * sizeof(int));
    if (!packed) return ERR_NOMEM;
    sb->packed = packed;
    size_t cap = KEYSTATS_SUM_FLUSH_KEYS + sb->rows * T;
    for (size_t i = 0; i < sb->n_layers; i++) {
        float *k = realloc(sb->keys[i], cap * sb->F * sizeof(float));
        if (!k) return ERR_NOMEM;
        sb->keys[i] = k;
    }
    lm_acts_free(sb->acts);
    sb->acts = NULL;
    int rc = lm_acts_new(&sb->acts, m, sb->rows, T, 1, LM_ACTS_FORWARD_ONLY);
    if (!rc) sb->T = T;
    return rc;
}

/* Tokenizes texts[0..B) into the batch's rows; *T the longest. */
static int stats_batch_encode(stats_batch *sb, const tokenizer *tok,
                              char *const *texts, size_t B, size_t maxT,
                              size_t *T)
{
    *T = 1;
    for (size_t b = 0; b < B; b++) {
        free(sb->ids[b]);
        sb->ids[b] = NULL;
        size_t len = 0;
        int rc = tokenizer_encode_ex(tok, texts[b], strlen(texts[b]),
                                     TOKENIZER_ADD_SPECIAL, &sb->ids[b], &len);
        if (rc) return rc;
        if (len > maxT) len = maxT;
        sb->lens[b] = len;
        if (len > *T) *T = len;
    }
    return 0;
}

int keystats_sum_accumulate(keystats_sum *cov, const size_t *layers,
                          size_t n_layers, const lm_model *m,
                          const tokenizer *tok, char *const *texts, size_t n,
                          progress_fn progress, void *ctx)
{
    const size_t maxT = m->config.n_positions, F = m->config.n_inner;
    stats_batch sb = {.rows = 32, .F = F, .n_layers = n_layers};
    for (size_t i = 0; i < n_layers; i++) /* the highest layer read */
        if (layers[i] > sb.top) sb.top = layers[i];
    sb.ids = calloc(sb.rows, sizeof *sb.ids);
    sb.lens = calloc(sb.rows, sizeof *sb.lens);
    sb.keys = calloc(n_layers ? n_layers : 1, sizeof *sb.keys);
    sb.n_keys = calloc(n_layers ? n_layers : 1, sizeof *sb.n_keys);
    sb.outer = malloc(F * F * sizeof(float));
    int rc = sb.ids && sb.lens && sb.keys && sb.n_keys && sb.outer ? 0
                                                                  : ERR_NOMEM;
    for (size_t start = 0; !rc && start < n; start += sb.rows) {
        size_t B = start + sb.rows <= n ? sb.rows : n - start, T;
        if ((rc = stats_batch_encode(&sb, tok, texts + start, B, maxT, &T)) ||
            (rc = stats_batch_fit(&sb, m, T)))
            break;
        /* rows packed to width T, padded with each row's first token */
        for (size_t b = 0; b < B; b++)
            for (size_t t = 0; t < T; t++)
                sb.packed[b * T + t] = t < sb.lens[b] ? sb.ids[b][t]
                                       : sb.lens[b]   ? sb.ids[b][0] : 0;
        lm_batch batch = {.tokens = sb.packed, .B = B, .T = T,
                            .end_layer = sb.top + 1}; /* none above is read */
        if ((rc = lm_forward(m, sb.acts, &batch))) break;
        int last = start + B >= n;
        for (size_t i = 0; i < n_layers; i++) {
            const float *k = lm_acts_mlp_key(sb.acts, layers[i]);
            for (size_t b = 0; b < B; b++) {
                memcpy(sb.keys[i] + sb.n_keys[i] * F, k + b * T * F,
                       sb.lens[b] * F * sizeof(float));
                sb.n_keys[i] += sb.lens[b];
            }
            if (sb.n_keys[i] &&
                (sb.n_keys[i] >= KEYSTATS_SUM_FLUSH_KEYS || last)) {
                add_keys(&cov[i], sb.keys[i], sb.n_keys[i], sb.outer);
                sb.n_keys[i] = 0;
            }
            cov[i].sequences += B;
        }
        if (progress) progress(ctx, "key statistics", start + B, n);
    }
    stats_batch_free(&sb);
    return rc;
}

int keystats_sum_flush_points(const lm_model *m, const tokenizer *tok,
                              char *const *texts, size_t n, size_t **points,
                              size_t *n_points)
{
    const size_t rows = 32, maxT = m->config.n_positions; /* as accumulate */
    size_t *out = malloc(((n + rows - 1) / rows + 1) * sizeof *out), count = 0;
    size_t n_keys = 0;
    if (!out) return ERR_NOMEM;
    for (size_t start = 0; start < n; start += rows) {
        size_t B = start + rows <= n ? rows : n - start;
        for (size_t b = 0; b < B; b++) {
            int *ids = NULL;
            size_t len = 0;
            int rc = tokenizer_encode_ex(tok, texts[start + b],
                                         strlen(texts[start + b]),
                                         TOKENIZER_ADD_SPECIAL, &ids, &len);
            free(ids);
            if (rc) { free(out); return rc; }
            n_keys += len > maxT ? maxT : len;
        }
        if (n_keys && (n_keys >= KEYSTATS_SUM_FLUSH_KEYS || start + B >= n)) {
            out[count++] = start + B;
            n_keys = 0;
        }
    }
    if (count == 0 || out[count - 1] != n) out[count++] = n;
    *points = out;
    *n_points = count;
    return 0;
}

int keystats_sum_mean(const keystats_sum *c, double *mean)
{
    if (c->tokens == 0)
        return err_set(ERR_EMPTY, "no key statistics collected");
    double inv = 1.0 / (double)c->tokens;
    for (size_t i = 0; i < c->F * c->F; i++) mean[i] = c->sum[i] * inv;
    return 0;
}

int keystats_sum_take_mean(keystats_sum *c, double **mean)
{
    *mean = NULL;
    if (c->tokens == 0)
        return err_set(ERR_EMPTY, "no key statistics collected");
    double inv = 1.0 / (double)c->tokens;
    for (size_t i = 0; i < c->F * c->F; i++) c->sum[i] *= inv;
    *mean = c->sum;
    memset(c, 0, sizeof *c);
    return 0;
}

#define COV_MAGIC "STCV"
#define COV_VERSION 1u
#define COV_HEADER 32 /* magic 4, version 4, F 8, tokens 8, sequences 8 */

int keystats_sum_encode(const keystats_sum *c, void **blob, size_t *len)
{
    size_t F = c->F, n_upper = F * (F + 1) / 2;
    *len = COV_HEADER + n_upper * sizeof(double);
    unsigned char *p = malloc(*len);
    if (!p) return ERR_NOMEM;
    uint32_t version = COV_VERSION;
    uint64_t f64 = F;
    memcpy(p, COV_MAGIC, 4);
    memcpy(p + 4, &version, 4);
    memcpy(p + 8, &f64, 8);
    memcpy(p + 16, &c->tokens, 8);
    memcpy(p + 24, &c->sequences, 8);
    double *u = (double *)(p + COV_HEADER);
    for (size_t i = 0, k = 0; i < F; i++)
        for (size_t j = i; j < F; j++) u[k++] = c->sum[i * F + j];
    *blob = p;
    return 0;
}

int keystats_sum_peek(const void *blob, size_t len, size_t *F,
                      uint64_t *tokens, uint64_t *sequences)
{
    const unsigned char *p = blob;
    uint32_t version;
    uint64_t f;
    if (len < COV_HEADER || memcmp(p, COV_MAGIC, 4))
        return err_set(ERR_FORMAT, "keystats_sum record: bad header");
    memcpy(&version, p + 4, 4);
    memcpy(&f, p + 8, 8);
    if (version != COV_VERSION || f == 0 || f > (1u << 20) ||
        len != COV_HEADER + f * (f + 1) / 2 * sizeof(double))
        return err_set(ERR_FORMAT, "keystats_sum record: bad size or version");
    if (F) *F = (size_t)f;
    if (tokens) memcpy(tokens, p + 16, 8);
    if (sequences) memcpy(sequences, p + 24, 8);
    return 0;
}

int keystats_sum_decode_mean_upper(const void *blob, size_t len,
                                   double **mean, size_t *F_out)
{
    const unsigned char *u = (const unsigned char *)blob + COV_HEADER;
    size_t F;
    uint64_t tokens;
    *mean = NULL;
    int rc = keystats_sum_peek(blob, len, &F, &tokens, NULL);
    if (rc) return rc;
    if (tokens == 0)
        return err_set(ERR_EMPTY, "no key statistics collected");
    double *m = calloc(F * F, sizeof *m), inv = 1.0 / (double)tokens;
    if (!m) return err_set(ERR_NOMEM, "out of memory for a %zu x %zu mean",
                           F, F);
    /* packed row i holds (i, i..F-1); the products are take_mean's */
    for (size_t i = 0, k = 0; i < F; k += F - i, i++) {
        double *row = m + i * F + i;
        memcpy(row, u + k * sizeof(double), (F - i) * sizeof(double));
        for (size_t j = 0; j < F - i; j++) row[j] *= inv;
    }
    *mean = m;
    *F_out = F;
    return 0;
}

int keystats_sum_decode(keystats_sum *c, const void *blob, size_t len)
{
    const unsigned char *p = blob;
    size_t F;
    int rc = keystats_sum_peek(blob, len, &F, NULL, NULL);
    if (!rc) rc = keystats_sum_init(c, F);
    if (rc) return rc;
    memcpy(&c->tokens, p + 16, 8);
    memcpy(&c->sequences, p + 24, 8);
    /* row i of the packed upper triangle starts at i F - i (i - 1) / 2;
     * filled in tiles so that the mirrored writes stay in cache */
    const unsigned char *u = p + COV_HEADER;
    for (size_t bi = 0; bi < F; bi += COV_TILE)
        for (size_t bj = bi; bj < F; bj += COV_TILE) {
            size_t ei = bi + COV_TILE < F ? bi + COV_TILE : F;
            size_t ej = bj + COV_TILE < F ? bj + COV_TILE : F;
            for (size_t i = bi; i < ei; i++) {
                size_t row = i * F - i * (i - 1) / 2 - i; /* + j: (i, j) */
                for (size_t j = i > bj ? i : bj; j < ej; j++) {
                    double v;
                    memcpy(&v, u + (row + j) * sizeof(double), sizeof v);
                    c->sum[i * F + j] = c->sum[j * F + i] = v;
                }
            }
        }
    return 0;
}
