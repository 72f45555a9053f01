/* keystats_sum: the key statistics, the uncentered second moment C_l = E[k k^T] of the MLP
 * keys of a layer over ordinary text (docs/memit.md, step 2). It depends only
 * on the base model, so it is computed once, kept in the store, and can
 * be extended with more samples later: the sum of k k^T and the counts
 * are kept, not the mean. */
#ifndef STAMP_KEYSTATS_SUM_H
#define STAMP_KEYSTATS_SUM_H

#include "model/lm.h"
#include "base/progress.h"
#include "model/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t F;            /* key size (d_ff) */
    uint64_t tokens;     /* keys summed */
    uint64_t sequences;  /* corpus sequences consumed (to resume) */
    double *sum;         /* (F, F) sum of k k^T, symmetric, full */
} keystats_sum;

int keystats_sum_init(keystats_sum *c, size_t F);
void keystats_sum_free(keystats_sum *c); /* accepts NULL */

/* Keys a layer gathers before they are summed (in float) into its
 * accumulator: the last sum of a call may hold fewer. */
#define KEYSTATS_SUM_FLUSH_KEYS 4096

/* Runs the model over texts[0..n) (each one sequence, cut at the model's
 * context) and adds the keys of every token of layers[i] into cov[i].
 * Sequences are batched 32 at a time; lm_forward uses every core and
 * runs no block above the highest layer asked for. The workspace follows
 * the longest sequence seen, not the model's n_positions: it needs
 * (KEYSTATS_SUM_FLUSH_KEYS + 32 * T) * F floats per layer for the keys it
 * gathers, T the longest sequence in tokens. */
int keystats_sum_accumulate(keystats_sum *cov, const size_t *layers,
                          size_t n_layers, const lm_model *m,
                          const tokenizer *tok, char *const *texts, size_t n,
                          progress_fn progress, void *ctx);

/* The lines of texts[0..n) after which keystats_sum_accumulate(...,
 * texts, n, ...) adds its gathered keys into the sums (ascending; the
 * last is n). A call over texts[a..b) with a and b two of these points
 * (or 0 and n) gathers and adds exactly the same keys, in the same
 * groups, as the whole call does between them: a split there changes
 * only the order of the float64 additions. Tokenizes every text. */
int keystats_sum_flush_points(const lm_model *m, const tokenizer *tok,
                              char *const *texts, size_t n, size_t **points,
                              size_t *n_points);

/* The fast path used by keystats_sum_accumulate (ssyrk). */
void keystats_sum_add(keystats_sum *c, const float *keys, size_t n_keys);

/* mean = sum / tokens, (F, F). ERR_EMPTY when no tokens. */
int keystats_sum_mean(const keystats_sum *c, double *mean);

/* The same mean, computed in place in c's sum, which *mean takes over
 * (free() it); c is left empty. Saves an (F, F) copy. */
int keystats_sum_take_mean(keystats_sum *c, double **mean);

/* Store encoding: "STCV" magic, version, F, counts, then the upper
 * triangle as float64. *blob malloc'ed. */
int keystats_sum_encode(const keystats_sum *c, void **blob, size_t *len);
int keystats_sum_decode(keystats_sum *c, const void *blob, size_t len);

/* A record's header alone, checked against its length: F, tokens and
 * sequences (any pointer may be NULL). Decodes no sum. */
int keystats_sum_peek(const void *blob, size_t len, size_t *F,
                      uint64_t *tokens, uint64_t *sequences);

/* From a record straight to the mean C_l = sum / tokens in the upper
 * triangle of a calloc'ed (F, F) *mean: no full sum in between, and the
 * strict lower triangle is never written (its pages stay unmapped, so
 * the mean costs a triangle's memory until something writes there).
 * The values are keystats_sum_take_mean's, bit for bit. ERR_EMPTY when
 * the record has no tokens. */
int keystats_sum_decode_mean_upper(const void *blob, size_t len,
                                   double **mean, size_t *F);

#endif
