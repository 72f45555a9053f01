/* predict: one forward pass over the prompt with logits at its last
 * position, log-softmax, and the top K by a full sort of the vocabulary
 * (50257 entries sort in a few milliseconds, next to a forward pass that
 * costs far more). Ties go to the lower id so the order is stable. */
#include "model/predict.h"
#include "base/errors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int by_logprob(const void *a, const void *b)
{
    const predict_token *x = a, *y = b;
    if (x->logprob != y->logprob) return x->logprob > y->logprob ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void predict_result_free(predict_result *r)
{
    if (!r) return;
    free(r->tokens);
    free(r->top);
    memset(r, 0, sizeof *r);
}

int predict_run(const lm_model *m, const tokenizer *tok, const char *text,
                size_t top_k, predict_result *out)
{
    memset(out, 0, sizeof *out);
    size_t V = m->config.vocab_size, n = 0;
    int *ids = NULL;
    lm_acts *a = NULL;
    float *logp = NULL;
    predict_token *all = NULL;
    if (!top_k) return err_set(ERR_INVALID, "top-k must be at least 1");
    int rc = tokenizer_encode_ex(tok, text, strlen(text),
                                 TOKENIZER_ADD_SPECIAL, &ids, &n);
    if (rc) return rc;
    if (!n) {
        rc = err_set(ERR_INVALID, "empty prompt: nothing to predict from");
        goto out;
    }
    if (n > m->config.n_positions) {
        rc = err_set(ERR_INVALID, "prompt of %zu tokens exceeds the model's "
                     "context of %zu", n, m->config.n_positions);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= V) {
            rc = err_set(ERR_INVALID, "prompt token id %d is outside the "
                         "model's vocabulary of %zu (the tokenizer does not "
                         "belong to the model)", ids[i], V);
            goto out;
        }
    size_t last = n - 1;
    if ((rc = lm_acts_new(&a, m, 1, n, 1, 0))) goto out;
    lm_batch b = {.tokens = ids, .B = 1, .T = n, .logit_pos = &last,
                    .n_logits = 1};
    if ((rc = lm_forward(m, a, &b))) goto out;
    logp = malloc(V * sizeof *logp);
    all = malloc(V * sizeof *all);
    if (!logp || !all) {
        rc = err_set(ERR_NOMEM, "no memory for %zu log-probabilities", V);
        goto out;
    }
    lm_log_softmax(logp, lm_acts_logits(a), 1, V);
    for (size_t v = 0; v < V; v++) {
        if (!isfinite(logp[v])) {
            rc = err_set(ERR_NUMERIC, "the model's log-probability of token "
                         "%zu is not finite", v);
            goto out;
        }
        all[v].id = (int)v;
        all[v].logprob = logp[v];
    }
    qsort(all, V, sizeof *all, by_logprob);
    if (top_k > V) top_k = V;
    predict_token *top = realloc(all, top_k * sizeof *all);
    if (top) all = top;
    out->tokens = ids;
    out->n_tokens = n;
    out->top = all;
    out->n_top = top_k;
    ids = NULL;
    all = NULL;
out:
    free(ids);
    free(all);
    free(logp);
    lm_acts_free(a);
    return rc;
}

int predict_greedy(const lm_model *m, const tokenizer *tok,
                   const char *text, size_t n_tokens, char **out)
{
    size_t base = strlen(text), len = base, cap = base + 64;
    char *buf = malloc(cap);
    int rc = 0;
    *out = NULL;
    if (!buf) return err_set(ERR_NOMEM, "out of memory");
    memcpy(buf, text, base + 1);
    for (size_t k = 0; k < (n_tokens ? n_tokens : 1); k++) {
        predict_result r;
        rc = predict_run(m, tok, buf, 1, &r);
        if (rc == ERR_INVALID && k > 0) { /* the context is full */
            rc = 0;
            break;
        }
        if (rc) break;
        size_t nb = 0;
        const char *bytes = tokenizer_token_bytes(tok, r.top[0].id, &nb);
        predict_result_free(&r);
        if (!bytes) break;
        if (len + nb + 1 > cap) {
            char *b = realloc(buf, 2 * (len + nb + 1));
            if (!b) {
                rc = err_set(ERR_NOMEM, "out of memory");
                break;
            }
            buf = b;
            cap = 2 * (len + nb + 1);
        }
        memcpy(buf + len, bytes, nb);
        len += nb;
        buf[len] = '\0';
    }
    if (rc) {
        free(buf);
        return rc;
    }
    memmove(buf, buf + base, len - base + 1);
    *out = buf;
    return 0;
}
