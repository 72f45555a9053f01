/* editreq: facts -> token sequences for z optimisation, keys and scoring
 * (see editreq.h). Follows kmeng01/memit's compute_z.py: rewriting
 * prompts = context templates x prompt + target[:-1], one "{} is a" KL
 * prompt, subject-last lookup found by tokenizing the text up to the end
 * of the subject. */
#include "memit/editreq.h"
#include "memit/editreq_naive.h"
#include "base/errors.h"
#include "base/splitmix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    return s;
}

int editreq_lookup(const tokenizer *tok, const char *text, size_t *pos)
{
    int *ids = NULL;
    size_t n = 0;
    int rc = tokenizer_encode_ex(tok, text, strlen(text),
                                 TOKENIZER_ADD_SPECIAL, &ids, &n);
    free(ids);
    if (rc) return rc;
    if (n == 0) return err_set(ERR_INVALID, "empty subject in '%s'", text);
    *pos = n - 1;
    return 0;
}

/* One sequence: `head` + template with the subject, then `tail` tokens. */
static int build_seq(editreq_seq *s, const tokenizer *tok, const char *head,
                     const char *templ, const char *subject,
                     const int *tail, size_t n_tail, size_t max_len)
{
    const char *brace = strstr(templ, "{}");
    if (!brace) return err_set(ERR_INVALID, "prompt '%s' has no '{}'", templ);
    size_t before_len = (size_t)(brace - templ);
    char *before = malloc(before_len + 1), *through = NULL, *full = NULL;
    int *ids = NULL, rc = ERR_NOMEM;
    size_t n = 0;
    if (!before) goto out;
    memcpy(before, templ, before_len);
    before[before_len] = '\0';
    char *head_before = concat3(head, before, "");
    if (!head_before) goto out;
    through = concat3(head_before, subject, "");
    full = concat3(head_before, subject, brace + 2);
    free(head_before);
    if (!through || !full) goto out;
    if ((rc = editreq_lookup(tok, through, &s->lookup))) goto out;
    if ((rc = tokenizer_encode_ex(tok, full, strlen(full),
                                  TOKENIZER_ADD_SPECIAL, &ids, &n)))
        goto out;
    if (n == 0 || s->lookup >= n) {
        rc = err_set(ERR_INVALID, "cannot find subject '%s' in '%s'",
                     subject, full);
        goto out;
    }
    if (n + n_tail > max_len) {
        rc = err_set(ERR_INVALID, "prompt '%s' plus its target is %zu "
                     "tokens, over the model's %zu", full, n + n_tail,
                     max_len);
        goto out;
    }
    s->tokens = malloc((n + n_tail + 1) * sizeof(int));
    if (!s->tokens) { rc = ERR_NOMEM; goto out; }
    memcpy(s->tokens, ids, n * sizeof(int));
    if (n_tail) memcpy(s->tokens + n, tail, n_tail * sizeof(int));
    s->len = n + n_tail;
    s->target_start = n - 1;
    rc = 0;
out:
    free(before);
    free(through);
    free(full);
    free(ids);
    return rc;
}

int editreq_build(editreq *r, const fact *f, const tokenizer *tok,
                  char *const *prefixes, size_t n_prefixes, size_t max_len)
{
    memset(r, 0, sizeof *r);
    /* the target's tokens as they follow the bare prompt (tokenizer.h) */
    const char *brace = strstr(f->prompt, "{}");
    char *bare = NULL;
    if (brace) {
        char *head = strndup(f->prompt, (size_t)(brace - f->prompt));
        bare = head ? concat3(head, f->subject, brace + 2) : NULL;
        free(head);
    } else {
        bare = strdup(f->prompt);
    }
    if (!bare) return err_set(ERR_NOMEM, "out of memory");
    int rc = tokenizer_encode_continuation(tok, bare, f->target_new,
                                           &r->target, &r->n_target);
    free(bare);
    if (rc) return rc;
    if (r->n_target == 0) {
        rc = err_set(ERR_INVALID, "empty target for subject '%s'", f->subject);
        goto fail;
    }
    r->n_rewrite = 1 + n_prefixes;
    r->seq = calloc(r->n_rewrite + 1, sizeof *r->seq);
    if (!r->seq) { rc = ERR_NOMEM; goto fail; }
    size_t k = 0;
    for (size_t i = 0; i < 1 + n_prefixes; i++) {
        char *head = i == 0 ? strdup("") : concat3(prefixes[i - 1], ". ", "");
        if (!head) { rc = ERR_NOMEM; goto fail; }
        rc = build_seq(&r->seq[k], tok, head, f->prompt, f->subject,
                       r->target, r->n_target - 1, max_len);
        free(head);
        if (rc == ERR_INVALID && i > 0) { /* a prefix too long: leave it out */
            err_clear();
            continue;
        }
        if (rc) goto fail;
        k++;
    }
    r->n_rewrite = k;
    rc = build_seq(&r->seq[r->n_rewrite], tok, "", "{} is a", f->subject,
                   NULL, 0, max_len);
    if (rc) goto fail;
    return 0;
fail:
    editreq_free(r);
    return rc;
}

void editreq_free(editreq *r)
{
    if (!r) return;
    if (r->seq)
        for (size_t i = 0; i <= r->n_rewrite; i++) free(r->seq[i].tokens);
    free(r->seq);
    free(r->target);
    memset(r, 0, sizeof *r);
}

double editreq_key_weight(const editreq *r, size_t i)
{
    if (r->n_rewrite == 1) return 1.0;
    return i == 0 ? 0.5 : 0.5 / (double)(r->n_rewrite - 1);
}

/* ---- context prefixes ---- */

enum { PREFIX_TOP_K = 10 };
static const char *const prefix_starts[] = {"The", "Therefore", "Because", "I", "You"};

/* The k most likely ids of logp[0..V), most likely first, ties to the
 * lower id: one pass, each id inserted into the short sorted list. */
static size_t top_k(const float *logp, size_t V, size_t k, size_t *top)
{
    size_t n = 0;
    if (k > V) k = V;
    for (size_t v = 0; v < V; v++) {
        if (n == k && !(logp[v] > logp[top[k - 1]])) continue;
        size_t i = n < k ? n++ : k - 1;
        for (; i > 0 && logp[v] > logp[top[i - 1]]; i--) top[i] = top[i - 1];
        top[i] = v;
    }
    return n;
}

/* The naive twin of top_k: repeated selection of the best id not yet
 * taken (the sampler's first form). */
static size_t top_k_naive(const float *logp, size_t V, size_t k, size_t *top)
{
    if (k > V) k = V;
    for (size_t j = 0; j < k; j++) {
        size_t best = V;
        for (size_t v = 0; v < V; v++) {
            int taken = 0;
            for (size_t i = 0; i < j; i++) taken |= top[i] == v;
            if (!taken && (best == V || logp[v] > logp[best])) best = v;
        }
        top[j] = best;
    }
    return k;
}

/* One id drawn from the k listed ones in proportion to exp(logp). */
static int draw_top(const float *logp, const size_t *top, size_t k, uint64_t *state)
{
    double mass[PREFIX_TOP_K], total = 0;
    for (size_t j = 0; j < k; j++) total += mass[j] = exp(logp[top[j]]);
    double u = splitmix_unit(state) * total;
    size_t j = 0;
    while (j + 1 < k && u > mass[j]) u -= mass[j++];
    return (int)top[j];
}

/* The prefixes' token rows: row i is the encoded start word i and room
 * for `tokens` more (cut at the model's positions), padded with its first
 * id. start[i], total[i]: tokens given and wanted; *T_max the longest. */
typedef struct {
    size_t n, T_max;
    int *ids;        /* (n, T_max) */
    size_t *start, *total;
} prefix_rows;

static void prefix_rows_free(prefix_rows *r)
{
    free(r->ids);
    free(r->start);
    free(r->total);
}

static int prefix_rows_make(prefix_rows *r, const lm_model *m,
                            const tokenizer *tok, size_t n, size_t tokens)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    int **enc = calloc(n ? n : 1, sizeof *enc);
    r->start = calloc(n ? n : 1, sizeof *r->start);
    r->total = calloc(n ? n : 1, sizeof *r->total);
    int rc = enc && r->start && r->total ? 0 : ERR_NOMEM;
    size_t P = m->config.n_positions;
    for (size_t i = 0; !rc && i < n; i++) {
        const char *w = prefix_starts[i % 5];
        rc = tokenizer_encode_ex(tok, w, strlen(w), TOKENIZER_ADD_SPECIAL,
                                 &enc[i], &r->start[i]);
        if (!rc && (r->start[i] == 0 || r->start[i] > P))
            rc = err_set(ERR_FORMAT, "the context prefix start '%s' takes %zu "
                         "tokens; the model has %zu positions", w, r->start[i], P);
        if (rc) break;
        r->total[i] = r->start[i] + tokens < P ? r->start[i] + tokens : P;
        if (r->total[i] > r->T_max) r->T_max = r->total[i];
    }
    if (!rc && n && !(r->ids = malloc(n * r->T_max * sizeof(int)))) rc = ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        int *row = r->ids + i * r->T_max;
        memcpy(row, enc[i], r->start[i] * sizeof(int));
        for (size_t t = r->start[i]; t < r->T_max; t++) row[t] = enc[i][0];
    }
    for (size_t i = 0; enc && i < n; i++) free(enc[i]);
    free(enc);
    if (rc) prefix_rows_free(r);
    return rc;
}

/* The rows as text, without specials; braces would break the "{}"
 * template, newlines the prompt. */
static int prefix_rows_text(const prefix_rows *r, const tokenizer *tok, char ***out)
{
    char **p = calloc(r->n ? r->n : 1, sizeof *p);
    int rc = p ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < r->n; i++) {
        size_t len = 0;
        rc = tokenizer_decode_ex(tok, r->ids + i * r->T_max, r->total[i],
                                 TOKENIZER_SKIP_SPECIAL, &p[i], &len);
        for (char *c = rc ? NULL : p[i]; c && *c; c++)
            if (*c == '{' || *c == '}' || *c == '\n' || *c == '\r') *c = ' ';
    }
    if (rc) {
        editreq_prefixes_free(p, r->n);
        return rc;
    }
    *out = p;
    return 0;
}

/* Row i draws from its own stream: the one the rows before it leave, as
 * when the rows were sampled one after another. */
static void prefix_streams(const prefix_rows *r, uint64_t seed, uint64_t *state)
{
    uint64_t s = seed;
    for (size_t i = 0; i < r->n; i++) {
        state[i] = s;
        for (size_t t = r->start[i]; t < r->total[i]; t++) splitmix_next(&s);
    }
}

int editreq_prefixes(char ***out, const lm_model *m, const tokenizer *tok,
                     size_t n, size_t tokens, uint64_t seed)
{
    prefix_rows r;
    int rc = prefix_rows_make(&r, m, tok, n, tokens);
    if (rc) return rc;
    size_t V = m->config.vocab_size, T = r.T_max;
    lm_acts *a = NULL;
    float *logp = malloc((n ? n : 1) * V * sizeof(float));
    size_t *pos = malloc((n ? n : 1) * sizeof *pos), *row = malloc((n ? n : 1) * sizeof *row);
    uint64_t *state = malloc((n ? n : 1) * sizeof *state);
    if (!logp || !pos || !row || !state) rc = ERR_NOMEM;
    int *step_ids = malloc((n ? n : 1) * T * sizeof(int));
    if (!step_ids) rc = ERR_NOMEM;
    if (!rc && n) rc = lm_acts_new(&a, m, n, T, n, 0);
    if (!rc) prefix_streams(&r, seed, state);
    /* every row's next token in one pass: step s samples position
     * start[i] + s of each row that still wants one, from a pass over the
     * positions before it only (causal attention: the later ones, padding,
     * could not change it) */
    for (size_t s = 0; !rc; s++) {
        size_t k = 0, Ts = 0;
        for (size_t i = 0; i < n; i++)
            if (r.start[i] + s < r.total[i] && r.start[i] + s > Ts) Ts = r.start[i] + s;
        for (size_t i = 0; i < n; i++) {
            memcpy(step_ids + i * Ts, r.ids + i * T, Ts * sizeof(int));
            if (r.start[i] + s < r.total[i]) {
                row[k] = i;
                pos[k++] = i * Ts + r.start[i] + s - 1;
            }
        }
        if (!k) break;
        lm_batch b = {.tokens = step_ids, .B = n, .T = Ts, .logit_pos = pos, .n_logits = k};
        if ((rc = lm_forward(m, a, &b))) break;
        lm_log_softmax(logp, lm_acts_logits(a), k, V);
        for (size_t j = 0; j < k; j++) {
            size_t top[PREFIX_TOP_K], i = row[j];
            size_t got = top_k(logp + j * V, V, PREFIX_TOP_K, top);
            r.ids[i * T + r.start[i] + s] = draw_top(logp + j * V, top, got, &state[i]);
        }
    }
    if (!rc) rc = prefix_rows_text(&r, tok, out);
    lm_acts_free(a);
    free(step_ids);
    free(logp);
    free(pos);
    free(row);
    free(state);
    prefix_rows_free(&r);
    return rc;
}

int editreq_prefixes_naive(char ***out, const lm_model *m, const tokenizer *tok,
                           size_t n, size_t tokens, uint64_t seed)
{
    prefix_rows r;
    int rc = prefix_rows_make(&r, m, tok, n, tokens);
    if (rc) return rc;
    size_t V = m->config.vocab_size;
    float *logp = malloc(V * sizeof(float));
    int *seq = malloc((r.T_max ? r.T_max : 1) * sizeof(int));
    uint64_t state = seed;
    if (!logp || !seq) rc = ERR_NOMEM;
    /* one row after another, one full pass over the row per token */
    for (size_t i = 0; !rc && i < n; i++) {
        size_t T = r.total[i];
        lm_acts *a = NULL;
        memcpy(seq, r.ids + i * r.T_max, T * sizeof(int));
        if ((rc = lm_acts_new(&a, m, 1, T, 1, 0))) break;
        for (size_t t = r.start[i]; !rc && t < T; t++) {
            size_t p = t - 1, top[PREFIX_TOP_K];
            lm_batch b = {.tokens = seq, .B = 1, .T = T, .logit_pos = &p, .n_logits = 1};
            for (size_t j = t; j < T; j++) seq[j] = seq[0];
            if ((rc = lm_forward(m, a, &b))) break;
            lm_log_softmax(logp, lm_acts_logits(a), 1, V);
            size_t got = top_k_naive(logp, V, PREFIX_TOP_K, top);
            seq[t] = draw_top(logp, top, got, &state);
        }
        lm_acts_free(a);
        memcpy(r.ids + i * r.T_max, seq, T * sizeof(int));
    }
    if (!rc) rc = prefix_rows_text(&r, tok, out);
    free(logp);
    free(seq);
    prefix_rows_free(&r);
    return rc;
}

void editreq_prefixes_free(char **p, size_t n)
{
    if (!p) return;
    for (size_t i = 0; i < n; i++) free(p[i]);
    free(p);
}
