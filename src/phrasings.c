/* phrasings: other prompts of a fact's relation (see phrasings.h). The
 * facts' (prompt, answer) pairs form one sorted table
 * (prompt_answers.h); each distinct prompt is a run of it, and two
 * prompts' similarity is the cosine of their answer counts. */
#include "phrasings.h"

#include "errors.h"
#include "prompt_answers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* is `text` one of f's paraphrases? */
static int is_paraphrase(const fact *f, const char *text)
{
    for (size_t k = 0; k < f->n_paraphrases; k++)
        if (!strcmp(f->paraphrases[k], text)) return 1;
    return 0;
}

/* The distinct prompts of the sorted pairs: runs[r] holds the answers
 * of one prompt, in the prompts' order. Returns their count. */
static size_t prompt_runs(const prompt_answer *pairs, size_t n_pairs,
                          answer_range *runs)
{
    size_t n_runs = 0;
    for (size_t i = 0; i < n_pairs; i++) {
        if (n_runs && !strcmp(pairs[runs[n_runs - 1].lo].prompt,
                              pairs[i].prompt))
            runs[n_runs - 1].hi = i + 1;
        else
            runs[n_runs++] = (answer_range){i, i + 1};
    }
    return n_runs;
}

/* The run of `prompt` (every fact's prompt with an answer has one). */
static size_t find_run(const prompt_answer *pairs, const answer_range *runs,
                       size_t n_runs, const char *prompt)
{
    size_t a = 0, b = n_runs;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (strcmp(pairs[runs[mid].lo].prompt, prompt) < 0) a = mid + 1;
        else b = mid;
    }
    return a;
}

/* For each run, its up to per_fact most similar other runs:
 * best[r * per_fact ..], n_best[r] of them. */
static void most_similar(const prompt_answer *pairs, const answer_range *runs,
                         size_t n_runs, size_t per_fact, sibling *cand,
                         size_t *best, size_t *n_best)
{
    for (size_t r = 0; r < n_runs; r++) {
        size_t n_cand = 0;
        double len_r = (double)(runs[r].hi - runs[r].lo);
        for (size_t s = 0; s < n_runs; s++) {
            if (s == r) continue;
            size_t common = prompt_answers_shared(pairs, runs[r], runs[s]);
            double cosine = (double)common /
                            sqrt(len_r * (double)(runs[s].hi - runs[s].lo));
            if (common && cosine >= PHRASINGS_MIN_COSINE)
                cand[n_cand++] = (sibling){cosine, s};
        }
        qsort(cand, n_cand, sizeof *cand, cmp_sibling);
        n_best[r] = 0;
        for (size_t k = 0; k < n_cand && k < per_fact; k++)
            best[r * per_fact + n_best[r]++] = cand[k].run;
    }
}

int phrasings_make(const fact *facts, size_t n, size_t per_fact,
                   world_sentence **out, size_t *n_out)
{
    world_sentence_list l = {0};
    prompt_answer *pairs = NULL;
    size_t n_pairs = 0;
    answer_range *runs = NULL;
    sibling *cand = NULL;
    size_t *best = NULL, *n_best = NULL;
    int rc = per_fact ? prompt_answers_collect(facts, n, 1, &pairs, &n_pairs)
                      : 0;
    if (!rc && per_fact) {
        runs = malloc((n_pairs + 1) * sizeof *runs);
        cand = malloc((n_pairs + 1) * sizeof *cand);
        best = malloc((n_pairs * per_fact + 1) * sizeof *best);
        n_best = malloc((n_pairs + 1) * sizeof *n_best);
        if (!runs || !cand || !best || !n_best) rc = ERR_NOMEM;
    }
    size_t n_runs = 0;
    if (!rc && per_fact) {
        n_runs = prompt_runs(pairs, n_pairs, runs);
        most_similar(pairs, runs, n_runs, per_fact, cand, best, n_best);
    }
    for (size_t i = 0; !rc && per_fact && i < n; i++) {
        const fact *f = &facts[i];
        if (!fact_has_answer(f)) continue;
        size_t r = find_run(pairs, runs, n_runs, f->prompt);
        for (size_t k = 0; !rc && k < n_best[r]; k++) {
            fact about_f = *f;
            about_f.prompt = (char *)pairs[runs[best[r * per_fact + k]].lo].prompt;
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
