/* eval: teacher-forced target scoring and the CounterFact protocol (see
 * eval.h). Pairs are tokenized, packed into right-padded batches and
 * scored with logits only at target positions. */
#include "eval/eval.h"
#include "base/errors.h"
#include "eval/eval_naive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int *tokens;      /* prompt then target */
    size_t n_prompt, n_target;
} scored_seq;

static int tokenize_pair(const tokenizer *tok, const eval_pair *p,
                         size_t max_len, scored_seq *s)
{
    int *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = tokenizer_encode_ex(tok, p->prompt, strlen(p->prompt),
                                 TOKENIZER_ADD_SPECIAL, &a, &na);
    if (!rc)
        rc = tokenizer_encode_continuation(tok, p->prompt, p->target, &b, &nb);
    if (!rc && (na == 0 || nb == 0))
        rc = err_set(ERR_INVALID, "empty prompt or target in '%s'", p->prompt);
    if (!rc && na + nb > max_len)
        rc = err_set(ERR_INVALID, "prompt '%s' plus target is %zu tokens, "
                     "over the model's %zu", p->prompt, na + nb, max_len);
    if (!rc) {
        s->tokens = realloc(a, (na + nb) * sizeof(int));
        if (!s->tokens) rc = ERR_NOMEM;
        else {
            a = NULL;
            memcpy(s->tokens + na, b, nb * sizeof(int));
            s->n_prompt = na;
            s->n_target = nb;
        }
    }
    free(a);
    free(b);
    return rc;
}

/* Scores seqs[idx[0..B)] in one pass on the workspace a. */
static int score_batch(const lm_model *m, lm_acts *a,
                       const scored_seq *seqs, const size_t *idx, size_t B,
                       double *nll, int *argmax)
{
    size_t T = 0, NL = 0, V = m->config.vocab_size;
    for (size_t b = 0; b < B; b++) {
        const scored_seq *q = &seqs[idx[b]];
        size_t len = q->n_prompt + q->n_target - 1;
        if (len > T) T = len;
        NL += q->n_target;
    }
    int *tokens = calloc(B * T, sizeof(int));
    size_t *pos = malloc(NL * sizeof(size_t));
    float *logp = malloc(V * sizeof(float));
    int rc = tokens && pos && logp ? 0 : ERR_NOMEM;
    if (rc) goto out;
    for (size_t b = 0, k = 0; b < B; b++) {
        const scored_seq *q = &seqs[idx[b]];
        size_t len = q->n_prompt + q->n_target - 1;
        memcpy(tokens + b * T, q->tokens, len * sizeof(int));
        for (size_t j = 0; j < q->n_target; j++)
            pos[k++] = b * T + q->n_prompt - 1 + j;
    }
    lm_batch batch = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos,
                        .n_logits = NL};
    if ((rc = lm_forward(m, a, &batch))) goto out;
    const float *logits = lm_acts_logits(a);
    for (size_t b = 0, k = 0; b < B; b++) {
        const scored_seq *q = &seqs[idx[b]];
        double sum = 0;
        int top = 1;
        for (size_t j = 0; j < q->n_target; j++, k++) {
            int want = q->tokens[q->n_prompt + j];
            lm_log_softmax(logp, logits + k * V, 1, V);
            sum -= logp[want];
            for (size_t v = 0; v < V; v++)
                if (logp[v] > logp[want]) { top = 0; break; }
        }
        nll[idx[b]] = sum / (double)q->n_target;
        if (argmax) argmax[idx[b]] = top;
    }
out:
    free(tokens);
    free(pos);
    free(logp);
    return rc;
}

typedef struct {
    size_t len, index;
} by_length;

static int by_length_cmp(const void *x, const void *y)
{
    const by_length *a = x, *b = y;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Batches of `rows` sequences of similar length (sorted, so that little
 * is padding), one workspace per thread. The batches depend on the
 * pairs alone, never on the thread count. */
static int score_pairs(const lm_model *m, const tokenizer *tok,
                       const eval_pair *pairs, size_t n, double *nll,
                       int *argmax, size_t rows)
{
    size_t maxT = m->config.n_positions, n_batches = (n + rows - 1) / rows;
    scored_seq *seqs = calloc(n ? n : 1, sizeof *seqs);
    by_length *order = malloc((n ? n : 1) * sizeof *order);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    int rc = seqs && order && idx ? 0 : ERR_NOMEM;
    size_t longest = 1, most_targets = 1;
    for (size_t i = 0; !rc && i < n; i++) {
        rc = tokenize_pair(tok, &pairs[i], maxT, &seqs[i]);
        if (rc) break;
        order[i] = (by_length){seqs[i].n_prompt + seqs[i].n_target - 1, i};
        if (order[i].len > longest) longest = order[i].len;
        if (seqs[i].n_target > most_targets) most_targets = seqs[i].n_target;
    }
    if (!rc) {
        qsort(order, n, sizeof *order, by_length_cmp);
        for (size_t i = 0; i < n; i++) idx[i] = order[i].index;
    }
#pragma omp parallel if (!rc && n_batches > 1)
    {
        lm_acts *a = NULL;
        /* logits only: scoring never runs a backward pass nor reads a
         * layer's keys, and a workspace that keeps every layer's
         * activations is many times the size (1.5 GB a thread at Llama
         * 3.2 1B's shape) */
        int arc = rc ? rc : lm_acts_new(&a, m, rows, longest,
                                        rows * most_targets,
                                        LM_ACTS_LOGITS_ONLY);
#pragma omp for schedule(dynamic, 1)
        for (size_t bi = 0; bi < n_batches; bi++) {
            size_t s0 = bi * rows, B = s0 + rows <= n ? rows : n - s0;
            int brc = arc ? arc : score_batch(m, a, seqs, idx + s0, B, nll,
                                              argmax);
            if (brc) {
#pragma omp critical(eval_rc)
                if (!rc) rc = brc;
            }
        }
        lm_acts_free(a);
    }
    for (size_t i = 0; seqs && i < n; i++) free(seqs[i].tokens);
    free(seqs);
    free(order);
    free(idx);
    return rc;
}

int eval_score_pairs(const lm_model *m, const tokenizer *tok,
                     const eval_pair *pairs, size_t n, double *nll,
                     int *argmax)
{
    return score_pairs(m, tok, pairs, n, nll, argmax, 32);
}

int eval_score_pairs_naive(const lm_model *m, const tokenizer *tok,
                           const eval_pair *pairs, size_t n, double *nll,
                           int *argmax)
{
    return score_pairs(m, tok, pairs, n, nll, argmax, 1);
}

/* Pairs of fact i: [rewrite, paraphrases..., neighbors...] x {new, true},
 * with the neighbour's own target standing for "true". */
typedef struct {
    eval_pair *pairs;
    size_t n;
    size_t *first;  /* (n_facts + 1) index of each fact's first pair */
    char **owned;   /* prompt texts made here */
    size_t n_owned;
} pair_list;

static void pair_list_free(pair_list *l)
{
    for (size_t i = 0; i < l->n_owned; i++) free(l->owned[i]);
    free(l->owned);
    free(l->pairs);
    free(l->first);
}

static int pair_list_build(pair_list *l, const fact *facts, size_t n)
{
    size_t total = 0;
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < n; i++)
        total += 2 * (1 + facts[i].n_paraphrases + facts[i].n_neighbors);
    l->pairs = malloc((total ? total : 1) * sizeof *l->pairs);
    l->first = malloc((n + 1) * sizeof(size_t));
    l->owned = malloc((n ? n : 1) * sizeof(char *));
    if (!l->pairs || !l->first || !l->owned) return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const fact *f = &facts[i];
        l->first[i] = l->n;
        if (!f->target_true || !f->target_true[0]) continue;
        char *text = fact_prompt_text(f);
        if (!text) return ERR_NOMEM;
        l->owned[l->n_owned++] = text;
        l->pairs[l->n++] = (eval_pair){text, f->target_new};
        l->pairs[l->n++] = (eval_pair){text, f->target_true};
        for (size_t j = 0; j < f->n_paraphrases; j++) {
            l->pairs[l->n++] = (eval_pair){f->paraphrases[j], f->target_new};
            l->pairs[l->n++] = (eval_pair){f->paraphrases[j], f->target_true};
        }
        for (size_t j = 0; j < f->n_neighbors; j++) {
            l->pairs[l->n++] = (eval_pair){f->neighbor_prompts[j], f->target_new};
            l->pairs[l->n++] = (eval_pair){f->neighbor_prompts[j],
                                           f->neighbor_targets[j]};
        }
    }
    l->first[n] = l->n;
    return 0;
}

int eval_facts(const lm_model *m, const tokenizer *tok, const fact *facts,
               size_t n, eval_scores *out, eval_fact_outcome *each,
               progress_fn progress, void *ctx)
{
    pair_list l;
    memset(out, 0, sizeof *out);
    int rc = pair_list_build(&l, facts, n);
    double *nll = rc ? NULL : malloc((l.n ? l.n : 1) * sizeof(double));
    int *top = rc ? NULL : malloc((l.n ? l.n : 1) * sizeof(int));
    if (!rc && (!nll || !top)) rc = ERR_NOMEM;
    if (!rc && progress) progress(ctx, "scoring", 0, l.n);
    if (!rc) rc = eval_score_pairs(m, tok, l.pairs, l.n, nll, top);
    if (!rc && progress) progress(ctx, "scoring", l.n, l.n);
    size_t n_ps_facts = 0, n_ns_facts = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t k = l.first[i];
        eval_fact_outcome one = {.ps = -1, .ns = -1};
        if (k == l.first[i + 1]) {
            if (each) each[i] = one;
            continue;
        }
        const fact *f = &facts[i];
        out->n_facts++;
        /* pairs come as (new, true) */
        one.scored = 1;
        one.es = nll[k] < nll[k + 1];
        one.p_new = exp(-nll[k]);
        one.p_true = exp(-nll[k + 1]);
        out->es += nll[k] < nll[k + 1];
        out->es_mag += exp(-nll[k]) - exp(-nll[k + 1]);
        out->es_acc += top[k];
        k += 2;
        if (f->n_paraphrases) {
            double s = 0, mag = 0, acc = 0;
            for (size_t j = 0; j < f->n_paraphrases; j++, k += 2) {
                s += nll[k] < nll[k + 1];
                mag += exp(-nll[k]) - exp(-nll[k + 1]);
                acc += top[k];
            }
            one.ps = s / f->n_paraphrases;
            out->ps += s / f->n_paraphrases;
            out->ps_mag += mag / f->n_paraphrases;
            out->ps_acc += acc / f->n_paraphrases;
            out->n_paraphrase += f->n_paraphrases;
            n_ps_facts++;
        }
        if (f->n_neighbors) {
            double s = 0, mag = 0, acc = 0;
            for (size_t j = 0; j < f->n_neighbors; j++, k += 2) {
                s += nll[k + 1] < nll[k];
                mag += exp(-nll[k + 1]) - exp(-nll[k]);
                acc += top[k + 1];
            }
            one.ns = s / f->n_neighbors;
            out->ns += s / f->n_neighbors;
            out->ns_mag += mag / f->n_neighbors;
            out->ns_acc += acc / f->n_neighbors;
            out->n_neighbor += f->n_neighbors;
            n_ns_facts++;
        }
        if (each) each[i] = one;
    }
    if (!rc && out->n_facts) {
        double nf = (double)out->n_facts;
        out->es *= 100 / nf;
        out->es_acc *= 100 / nf;
        out->es_mag /= nf;
        if (n_ps_facts) {
            out->ps *= 100.0 / n_ps_facts;
            out->ps_acc *= 100.0 / n_ps_facts;
            out->ps_mag /= n_ps_facts;
        }
        if (n_ns_facts) {
            out->ns *= 100.0 / n_ns_facts;
            out->ns_acc *= 100.0 / n_ns_facts;
            out->ns_mag /= n_ns_facts;
        }
        double inv = 0;
        int zero = 0, parts = 0;
        double v[3] = {out->es, n_ps_facts ? out->ps : -1,
                       n_ns_facts ? out->ns : -1};
        for (int i = 0; i < 3; i++) {
            if (v[i] < 0) continue;
            parts++;
            if (v[i] == 0) zero = 1;
            else inv += 1 / v[i];
        }
        out->score = zero || !parts ? 0 : parts / inv;
    }
    free(nll);
    free(top);
    pair_list_free(&l);
    return rc;
}

int eval_retention(const lm_model *m, const tokenizer *tok,
                   const fact *facts, size_t n, double *accuracy, int *hits)
{
    size_t *which = malloc((n ? n : 1) * sizeof(size_t));
    eval_pair *pairs = malloc((n ? n : 1) * sizeof *pairs);
    char **texts = calloc(n ? n : 1, sizeof(char *));
    double *nll = malloc((n ? n : 1) * sizeof(double));
    int *top = malloc((n ? n : 1) * sizeof(int));
    size_t k = 0;
    int rc = pairs && texts && nll && top && which ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        if (hits) hits[i] = 0;
        if (!facts[i].target_true || !facts[i].target_true[0]) continue;
        if (!(texts[k] = fact_prompt_text(&facts[i]))) rc = ERR_NOMEM;
        else which[k] = i, pairs[k] = (eval_pair){texts[k], facts[i].target_true}, k++;
    }
    if (!rc) rc = eval_score_pairs(m, tok, pairs, k, nll, top);
    if (!rc) {
        double sum = 0;
        for (size_t i = 0; i < k; i++) {
            sum += top[i];
            if (hits) hits[which[i]] = top[i];
        }
        *accuracy = k ? 100 * sum / (double)k : 0;
    }
    free(which);
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(pairs);
    free(nll);
    free(top);
    return rc;
}
