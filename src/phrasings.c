/* phrasings: other prompts of a fact's relation (see phrasings.h). The
 * prompts' answers go into one table of (prompt, answer) pairs sorted by
 * prompt, then answer; two prompts' shared answers are counted by
 * walking their two sorted runs. */
#include "phrasings.h"

#include "errors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *prompt, *answer;
} prompt_answer;

static int cmp_prompt_answer(const void *a, const void *b)
{
    const prompt_answer *x = a, *y = b;
    int c = strcmp(x->prompt, y->prompt);
    return c ? c : strcmp(x->answer, y->answer);
}

/* one distinct prompt: its answers are pairs[lo..hi) */
typedef struct {
    const char *prompt;
    size_t lo, hi;
} prompt_run;

/* answers the two runs share, counted with multiplicity */
static size_t shared_answers(const prompt_answer *pairs, prompt_run x,
                             prompt_run y)
{
    size_t a = x.lo, b = y.lo, n = 0;
    while (a < x.hi && b < y.hi) {
        int c = strcmp(pairs[a].answer, pairs[b].answer);
        if (!c) {
            n++;
            a++;
            b++;
        } else if (c < 0) {
            a++;
        } else {
            b++;
        }
    }
    return n;
}

typedef struct {
    double cosine;
    size_t run;
} sibling;

static int cmp_sibling(const void *a, const void *b)
{
    const sibling *x = a, *y = b;
    if (x->cosine != y->cosine) return x->cosine < y->cosine ? 1 : -1;
    return x->run < y->run ? -1 : x->run > y->run; /* runs are by prompt */
}

static int has_answer(const fact *f)
{
    return f->target_true && f->target_true[0];
}

/* is `text` one of f's paraphrases? */
static int is_paraphrase(const fact *f, const char *text)
{
    for (size_t k = 0; k < f->n_paraphrases; k++)
        if (!strcmp(f->paraphrases[k], text)) return 1;
    return 0;
}

static size_t find_run(const prompt_run *runs, size_t n_runs, const char *p)
{
    size_t a = 0, b = n_runs;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (strcmp(runs[mid].prompt, p) < 0) a = mid + 1;
        else b = mid;
    }
    return a; /* every fact's prompt has a run */
}

int phrasings_make(const fact *facts, size_t n, size_t per_fact,
                   world_sentence **out, size_t *n_out)
{
    world_sentence_list l = {0};
    prompt_answer *pairs = malloc((2 * n + 1) * sizeof *pairs);
    prompt_run *runs = malloc((2 * n + 1) * sizeof *runs);
    sibling *cand = malloc((2 * n + 1) * sizeof *cand);
    size_t *best = NULL; /* per run: up to per_fact sibling runs */
    size_t *n_best = NULL;
    int rc = pairs && runs && cand ? 0 : ERR_NOMEM;
    size_t n_pairs = 0, n_runs = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (!has_answer(&facts[i])) continue;
        pairs[n_pairs++] = (prompt_answer){facts[i].prompt, facts[i].target_true};
        if (facts[i].target_new && facts[i].target_new[0])
            pairs[n_pairs++] = (prompt_answer){facts[i].prompt,
                                               facts[i].target_new};
    }
    if (!rc) qsort(pairs, n_pairs, sizeof *pairs, cmp_prompt_answer);
    for (size_t i = 0; !rc && i < n_pairs; i++) {
        if (n_runs && !strcmp(runs[n_runs - 1].prompt, pairs[i].prompt)) {
            runs[n_runs - 1].hi = i + 1;
            continue;
        }
        runs[n_runs++] = (prompt_run){pairs[i].prompt, i, i + 1};
    }
    if (!rc && per_fact) {
        best = malloc((n_runs * per_fact + 1) * sizeof *best);
        n_best = calloc(n_runs + 1, sizeof *n_best);
        if (!best || !n_best) rc = ERR_NOMEM;
    }
    for (size_t r = 0; !rc && per_fact && r < n_runs; r++) {
        size_t n_cand = 0;
        double len_r = (double)(runs[r].hi - runs[r].lo);
        for (size_t s = 0; s < n_runs; s++) {
            if (s == r) continue;
            size_t common = shared_answers(pairs, runs[r], runs[s]);
            double cosine = (double)common /
                            sqrt(len_r * (double)(runs[s].hi - runs[s].lo));
            if (common && cosine >= PHRASINGS_MIN_COSINE)
                cand[n_cand++] = (sibling){cosine, s};
        }
        qsort(cand, n_cand, sizeof *cand, cmp_sibling);
        for (size_t k = 0; k < n_cand && k < per_fact; k++)
            best[r * per_fact + n_best[r]++] = cand[k].run;
    }
    for (size_t i = 0; !rc && per_fact && i < n; i++) {
        const fact *f = &facts[i];
        if (!has_answer(f)) continue;
        size_t r = find_run(runs, n_runs, f->prompt);
        for (size_t k = 0; !rc && k < n_best[r]; k++) {
            fact about_f = *f;
            about_f.prompt = (char *)runs[best[r * per_fact + k]].prompt;
            char *p = fact_prompt_text(&about_f);
            if (!p) { rc = ERR_NOMEM; break; }
            if (is_paraphrase(f, p)) { free(p); continue; }
            rc = world_sentence_list_add(&l, p, f->target_true);
        }
    }
    free(pairs);
    free(runs);
    free(cand);
    free(best);
    free(n_best);
    if (rc) {
        world_sentences_free(l.s, l.n);
        return err_set(rc, "out of memory writing phrasings");
    }
    *out = l.s;
    *n_out = l.n;
    return 0;
}
