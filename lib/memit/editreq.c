/* editreq: facts -> token sequences for z optimisation, keys and scoring
 * (see editreq.h). Follows kmeng01/memit's compute_z.py: rewriting
 * prompts = context templates x prompt + target[:-1], one "{} is a" KL
 * prompt, subject-last lookup found by tokenizing the text up to the end
 * of the subject. */
#include "memit/editreq.h"
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

/* Samples `extra` tokens after ids[0..n) with top-k sampling. */
static int sample_tokens(const lm_model *m, int *ids, size_t n,
                         size_t extra, uint64_t *state)
{
    size_t V = m->config.vocab_size, T = n + extra, K = 10;
    lm_acts *a = NULL;
    float *logp = malloc(V * sizeof(float));
    int rc = logp ? lm_acts_new(&a, m, 1, T, 1, 0) : ERR_NOMEM;
    for (size_t t = n; !rc && t < T; t++) {
        size_t pos = t - 1;
        lm_batch b = {.tokens = ids, .B = 1, .T = T, .logit_pos = &pos,
                        .n_logits = 1};
        for (size_t j = t; j < T; j++) ids[j] = ids[0];
        if ((rc = lm_forward(m, a, &b))) break;
        lm_log_softmax(logp, lm_acts_logits(a), 1, V);
        /* top K by repeated selection (K is small) */
        size_t top[10];
        double mass[10], total = 0;
        for (size_t k = 0; k < K; k++) {
            size_t best = V;
            for (size_t v = 0; v < V; v++) {
                int taken = 0;
                for (size_t j = 0; j < k; j++) taken |= top[j] == v;
                if (!taken && (best == V || logp[v] > logp[best])) best = v;
            }
            top[k] = best;
            mass[k] = exp(logp[best]);
            total += mass[k];
        }
        double u = splitmix_unit(state);
        u *= total;
        size_t k = 0;
        while (k + 1 < K && u > mass[k]) u -= mass[k++];
        ids[t] = (int)top[k];
    }
    lm_acts_free(a);
    free(logp);
    return rc;
}

int editreq_prefixes(char ***out, const lm_model *m, const tokenizer *tok,
                     size_t n, size_t tokens, uint64_t seed)
{
    static const char *starts[] = {"The", "Therefore", "Because", "I", "You"};
    char **p = calloc(n ? n : 1, sizeof *p);
    uint64_t state = seed;
    int rc = p ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        const char *start = starts[i % 5];
        int *ids = NULL, *seq = NULL;
        size_t n_ids = 0, len = 0;
        if ((rc = tokenizer_encode_ex(tok, start, strlen(start),
                                      TOKENIZER_ADD_SPECIAL, &ids, &n_ids)))
            break;
        size_t total = n_ids + tokens;
        if (total > m->config.n_positions) total = m->config.n_positions;
        seq = malloc(total * sizeof(int));
        if (!seq) { free(ids); rc = ERR_NOMEM; break; }
        memcpy(seq, ids, n_ids * sizeof(int));
        free(ids);
        rc = sample_tokens(m, seq, n_ids, total - n_ids, &state);
        if (!rc)
            rc = tokenizer_decode_ex(tok, seq, total, TOKENIZER_SKIP_SPECIAL,
                                     &p[i], &len);
        free(seq);
        if (rc) break;
        /* braces would break the "{}" template; newlines the prompt */
        for (char *c = p[i]; *c; c++)
            if (*c == '{' || *c == '}' || *c == '\n' || *c == '\r') *c = ' ';
    }
    if (rc) {
        editreq_prefixes_free(p, n);
        return rc;
    }
    *out = p;
    return 0;
}

void editreq_prefixes_free(char **p, size_t n)
{
    if (!p) return;
    for (size_t i = 0; i < n; i++) free(p[i]);
    free(p);
}
