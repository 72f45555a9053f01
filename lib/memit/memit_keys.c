/* memit_keys: forward passes over the edit requests' rewriting prompts
 * that read the MLP keys at each subject's last token and the block
 * output at the bare prompt's (memit_keys.h). A fact's key is the mean
 * over its prompts, weighted as editreq_key_weight says. */
#include "memit/memit_keys.h"
#include "base/errors.h"

#include <stdlib.h>
#include <string.h>

/* Per group of facts, the residual stream entering block `from` (the
 * output of block from-1), for the next pass to start there instead of
 * at block 0. from = 0: nothing kept. */
struct memit_keys_cache {
    size_t n_groups;
    float **in; /* (n_groups): (B * T, C) of each group's pass, or NULL */
    size_t from;
};

int memit_keys_cache_new(memit_keys_cache **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

void memit_keys_cache_free(memit_keys_cache *c)
{
    if (!c) return;
    for (size_t g = 0; c->in && g < c->n_groups; g++) free(c->in[g]);
    free(c->in);
    free(c);
}

/* Keys of nlay layers and block outputs of one group of facts (single
 * thread): one forward pass reads them all. With in (may be NULL) the
 * pass starts at block from on it (memit_keys_cache); with save > 0 it
 * keeps the input of block save in *saved for the next pass. */
static int keys_group(const lm_model *m, const editreq *r, size_t G,
                      const size_t *layers, size_t nlay, size_t zlayer,
                      float *const *K, size_t f0, float *H, size_t from,
                      const float *in, size_t save, float **saved)
{
    size_t F = m->config.n_inner, C = m->config.n_embd, B = 0, T = 0;
    for (size_t f = 0; f < G; f++) {
        B += r[f].n_rewrite;
        for (size_t s = 0; s < r[f].n_rewrite; s++)
            /* keys at the lookup do not depend on later tokens */
            if (r[f].seq[s].lookup + 1 > T) T = r[f].seq[s].lookup + 1;
    }
    int *tokens = calloc(B * T, sizeof(int));
    lm_acts *a = NULL;
    int rc = tokens ? lm_acts_new(&a, m, B, T, 1, LM_ACTS_FORWARD_ONLY) : ERR_NOMEM;
    if (rc) goto out;
    for (size_t f = 0, b = 0; f < G; f++)
        for (size_t s = 0; s < r[f].n_rewrite; s++, b++) {
            const editreq_seq *q = &r[f].seq[s];
            memcpy(tokens + b * T, q->tokens, (q->lookup + 1) * sizeof(int));
        }
    /* the blocks above the ones read do not matter */
    size_t top = H ? zlayer : 0;
    for (size_t j = 0; j < nlay; j++)
        if (layers[j] > top) top = layers[j];
    lm_batch batch = {.tokens = tokens, .B = B, .T = T, .end_layer = top + 1,
                        .start_layer = in ? from : 0, .input = in};
    if ((rc = lm_forward(m, a, &batch))) goto out;
    if (save) {
        if (!*saved && !(*saved = malloc(B * T * C * sizeof(float)))) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(*saved, lm_acts_block_out(a, save - 1),
               B * T * C * sizeof(float));
    }
    for (size_t j = 0; j < nlay; j++) {
        const float *keys = lm_acts_mlp_key(a, layers[j]);
        for (size_t f = 0, b = 0; f < G; f++) {
            float *k = K[j] + (f0 + f) * F;
            memset(k, 0, F * sizeof(float));
            for (size_t s = 0; s < r[f].n_rewrite; s++, b++) {
                const float *src = keys + (b * T + r[f].seq[s].lookup) * F;
                float w = (float)editreq_key_weight(&r[f], s);
                for (size_t i = 0; i < F; i++) k[i] += w * src[i];
            }
        }
    }
    if (H) {
        const float *out = lm_acts_block_out(a, zlayer);
        for (size_t f = 0, b = 0; f < G; b += r[f].n_rewrite, f++)
            memcpy(H + (f0 + f) * C, out + (b * T + r[f].seq[0].lookup) * C,
                   C * sizeof(float));
    }
out:
    lm_acts_free(a);
    free(tokens);
    return rc;
}

int memit_keys_cached(const lm_model *m, const editreq *r, size_t n,
                      const size_t *layers, size_t nlay, size_t zlayer,
                      const hparams *h, float *const *K, float *H,
                      memit_keys_cache *pc, size_t save)
{
    size_t G = h->facts_per_group ? h->facts_per_group : 1;
    size_t n_groups = (n + G - 1) / G;
    int rc = 0;
    if (pc && pc->in && pc->n_groups != n_groups) /* other requests */
        return err_set(ERR_INVALID, "a key pass cache of %zu groups used "
                       "for %zu", pc->n_groups, n_groups);
    if (pc && !pc->in) {
        pc->n_groups = n_groups;
        if (!(pc->in = calloc(n_groups + 1, sizeof *pc->in)))
            return err_set(ERR_NOMEM, "out of memory");
    }
    size_t from = pc ? pc->from : 0;
    if (!pc || save < from) save = 0; /* its block would not run */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t gi = 0; gi < n_groups; gi++) {
        size_t f0 = gi * G, cnt = f0 + G <= n ? G : n - f0;
        int grc = keys_group(m, r + f0, cnt, layers, nlay, zlayer, K, f0, H,
                             from, from ? pc->in[gi] : NULL, save,
                             save ? &pc->in[gi] : NULL);
        if (grc) {
#pragma omp critical(memit_keys_rc)
            if (!rc) rc = grc;
        }
    }
    if (pc) pc->from = rc ? 0 : save;
    return rc;
}

int memit_keys_layers(const lm_model *m, const editreq *r, size_t n,
                      const size_t *layers, size_t nlay, size_t zlayer,
                      const hparams *h, float *const *K, float *H)
{
    return memit_keys_cached(m, r, n, layers, nlay, zlayer, h, K, H, NULL, 0);
}

int memit_keys(const lm_model *m, const editreq *r, size_t n,
               size_t layer, size_t zlayer, const hparams *h, float *K,
               float *H)
{
    return memit_keys_layers(m, r, n, &layer, 1, zlayer, h, &K, H);
}
