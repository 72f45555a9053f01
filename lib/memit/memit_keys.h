/* memit_keys: the MLP keys an edit is written at, and the block outputs
 * its target vector is compared with, read by forward passes over the
 * edit requests' rewriting prompts (groups of facts in parallel). A
 * pass cache lets the passes of one solve start above the blocks that
 * the last layer update left as they were. */
#ifndef STAMP_MEMIT_KEYS_H
#define STAMP_MEMIT_KEYS_H

#include "memit/editreq.h"
#include "model/lm.h"
#include "memit/hparams.h"

/* For each edit: the key of `layer` at the subject's last token, averaged
 * over its rewriting prompts (editreq_key_weight), into K (n, F), and the
 * output of block zlayer at the bare prompt's lookup into H (n, C) (H may
 * be NULL). Groups of h->facts_per_group run in parallel. */
int memit_keys(const lm_model *m, const editreq *r, size_t n,
               size_t layer, size_t zlayer, const hparams *h, float *K,
               float *H);

/* The same for the nlay layers layers[j], into K[j] (n, F) each, from
 * one forward pass per group. */
int memit_keys_layers(const lm_model *m, const editreq *r, size_t n,
                      const size_t *layers, size_t nlay, size_t zlayer,
                      const hparams *h, float *const *K, float *H);

/* What one pass over a set of edit requests keeps for the next pass over
 * the same requests: each group's residual stream entering some block. */
typedef struct memit_keys_cache memit_keys_cache;

/* An empty cache (the next pass starts at block 0); 0 or ERR_NOMEM. */
int memit_keys_cache_new(memit_keys_cache **out);
void memit_keys_cache_free(memit_keys_cache *c); /* accepts NULL */

/* memit_keys_layers through a cache (NULL: none): the pass starts at the
 * block whose input the cache holds, if any, and then keeps the input
 * of block save (0: nothing; at least the block it started at, at most
 * the highest block it reads) for the next pass, which must come before
 * any change to the blocks below save. Keys and outputs are those of a
 * full pass, to the bit. */
int memit_keys_cached(const lm_model *m, const editreq *r, size_t n,
                      const size_t *layers, size_t nlay, size_t zlayer,
                      const hparams *h, float *const *K, float *H,
                      memit_keys_cache *c, size_t save);

#endif
