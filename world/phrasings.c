/* phrasings: other prompts of a fact's relation (see phrasings.h). The
 * facts' (prompt, answer) pairs form one sorted table
 * (prompt_answers.h); each distinct prompt is a run of it, and two
 * prompts' similarity is the cosine of their answer counts. The taught
 * paraphrases become templates ("{}" for their subject), sorted by
 * relation, and each fact takes a stretch of its relation's. */
#include "world/phrasings.h"

#include "base/errors.h"
#include "world/prompt_answers.h"

#include <math.h>
#include <stdint.h>
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

/* For each run, its up to k most similar other runs: best[r * k ..],
 * n_best[r] of them. */
static void most_similar(const prompt_answer *pairs, const answer_range *runs,
                         size_t n_runs, size_t k, sibling *cand, size_t *best,
                         size_t *n_best)
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
        for (size_t j = 0; j < n_cand && j < k; j++)
            best[r * k + n_best[r]++] = cand[j].run;
    }
}

/* The facts' prompts as relations: the sorted (prompt, answer) pairs,
 * each distinct prompt's run of them, and each run's up to k most
 * similar runs. */
typedef struct {
    prompt_answer *pairs;
    answer_range *runs;
    size_t n_runs, k;
    size_t *best, *n_best; /* best[r * k ..], n_best[r] of them */
} relations;

static void relations_free(relations *rel)
{
    free(rel->pairs);
    free(rel->runs);
    free(rel->best);
    free(rel->n_best);
    memset(rel, 0, sizeof *rel);
}

static int relations_init(relations *rel, const fact *facts, size_t n,
                          size_t k)
{
    size_t n_pairs = 0;
    memset(rel, 0, sizeof *rel);
    rel->k = k;
    int rc = prompt_answers_collect(facts, n, 1, &rel->pairs, &n_pairs);
    if (rc) return rc;
    sibling *cand = malloc((n_pairs + 1) * sizeof *cand);
    rel->runs = malloc((n_pairs + 1) * sizeof *rel->runs);
    rel->best = malloc((n_pairs * k + 1) * sizeof *rel->best);
    rel->n_best = malloc((n_pairs + 1) * sizeof *rel->n_best);
    if (!cand || !rel->runs || !rel->best || !rel->n_best) {
        free(cand);
        relations_free(rel);
        return ERR_NOMEM;
    }
    rel->n_runs = prompt_runs(rel->pairs, n_pairs, rel->runs);
    most_similar(rel->pairs, rel->runs, rel->n_runs, k, cand, rel->best,
                 rel->n_best);
    free(cand);
    return 0;
}

/* The run of a fact's prompt (every fact with an answer has one). */
static size_t relations_run(const relations *rel, const fact *f)
{
    return find_run(rel->pairs, rel->runs, rel->n_runs, f->prompt);
}

/* The list's sentences into *out, or on rc its sentences freed and the
 * error set. */
static int hand_over(world_sentence_list *l, int rc, world_sentence **out,
                     size_t *n_out)
{
    if (rc) {
        world_sentences_free(l->s, l->n);
        return err_set(rc, "out of memory writing phrasings");
    }
    *out = l->s;
    *n_out = l->n;
    return 0;
}

int phrasings_make(const fact *facts, size_t n, size_t per_fact,
                   world_sentence **out, size_t *n_out)
{
    world_sentence_list l = {0};
    relations rel = {0};
    int rc = per_fact ? relations_init(&rel, facts, n, per_fact) : 0;
    for (size_t i = 0; !rc && per_fact && i < n; i++) {
        const fact *f = &facts[i];
        if (!fact_has_answer(f)) continue;
        size_t r = relations_run(&rel, f);
        for (size_t k = 0; !rc && k < rel.n_best[r]; k++) {
            fact about_f = *f;
            size_t sibling_run = rel.best[r * rel.k + k];
            about_f.prompt = (char *)rel.pairs[rel.runs[sibling_run].lo].prompt;
            char *p = fact_prompt_text(&about_f);
            if (!p) { rc = ERR_NOMEM; break; }
            if (is_paraphrase(f, p)) { free(p); continue; }
            rc = world_sentence_list_add(&l, p, f->target_true);
        }
    }
    relations_free(&rel);
    return hand_over(&l, rc, out, n_out);
}

/* A taught paraphrase as a template: the text with "{}" for the first
 * place its fact's subject is written, the run of its fact's prompt and
 * the fact it came from. */
typedef struct {
    size_t run;
    char *prompt;
    size_t from;
} template;

static int cmp_template(const void *a, const void *b)
{
    const template *x = a, *y = b;
    if (x->run != y->run) return x->run < y->run ? -1 : 1;
    return x->from < y->from ? -1 : x->from > y->from; /* then fact order */
}

/* "{}" in place of the first `subject` in text (malloc'ed); NULL with
 * *nomem 0 when text does not hold it. */
static char *to_template(const char *text, const char *subject, int *nomem)
{
    *nomem = 0;
    if (strstr(text, "{}")) return NULL; /* would be taken for the slot */
    const char *at = subject[0] ? strstr(text, subject) : NULL;
    if (!at) return NULL;
    size_t before = (size_t)(at - text), ls = strlen(subject);
    size_t after = strlen(at + ls);
    char *t = malloc(before + 2 + after + 1);
    if (!t) {
        *nomem = 1;
        return NULL;
    }
    memcpy(t, text, before);
    memcpy(t + before, "{}", 2);
    memcpy(t + before + 2, at + ls, after + 1);
    return t;
}

static void templates_free(template *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) free(t[i].prompt);
    free(t);
}

/* The taught paraphrases of facts[first..n) as templates, sorted by the
 * run of their fact's prompt. */
static int collect_templates(const fact *facts, size_t n, size_t first,
                             const relations *rel, template **out,
                             size_t *n_out)
{
    size_t cap = 0, nt = 0;
    for (size_t j = first; j < n; j++) cap += facts[j].n_paraphrases;
    template *t = malloc((cap + 1) * sizeof *t);
    if (!t) return ERR_NOMEM;
    for (size_t j = first; j < n; j++) {
        const fact *g = &facts[j];
        if (!fact_has_answer(g)) continue;
        size_t run = relations_run(rel, g);
        for (size_t k = 0; k < g->n_paraphrases; k++) {
            int nomem;
            char *p = to_template(g->paraphrases[k], g->subject, &nomem);
            if (nomem) {
                templates_free(t, nt);
                return ERR_NOMEM;
            }
            if (p) t[nt++] = (template){run, p, j};
        }
    }
    qsort(t, nt, sizeof *t, cmp_template);
    *out = t;
    *n_out = nt;
    return 0;
}

/* Up to `want` sentences for fact i from the templates of run q (a
 * stretch of them from a place spread by i: Knuth's multiplicative
 * hash); adds how many it wrote to *written. */
static int from_run(const fact *f, size_t i, const template *t, size_t nt,
                    size_t q, size_t want, world_sentence_list *l,
                    size_t *written)
{
    size_t lo = 0, hi = nt;
    while (lo < hi) { /* the first template of run q */
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid].run < q) lo = mid + 1;
        else hi = mid;
    }
    for (hi = lo; hi < nt && t[hi].run == q; hi++) {}
    size_t m = hi - lo;
    size_t start = m ? (size_t)(((uint64_t)i * 2654435761u) % m) : 0;
    for (size_t k = 0; k < m && *written < want; k++) {
        const template *tp = &t[lo + (start + k) % m];
        if (tp->from == i) continue;
        fact about_f = *f;
        about_f.prompt = tp->prompt;
        char *p = fact_prompt_text(&about_f);
        if (!p) return ERR_NOMEM;
        if (is_paraphrase(f, p)) { free(p); continue; }
        int rc = world_sentence_list_add(l, p, f->target_true);
        if (rc) return rc;
        (*written)++;
    }
    return 0;
}

/* Prompts of one relation a fact's paraphrase templates may come from:
 * its own and up to this many of the most similar. */
#define PARAPHRASE_PROMPTS 16

int phrasings_from_paraphrases(const fact *facts, size_t n,
                               size_t first_taught, size_t per_fact,
                               world_sentence **out, size_t *n_out)
{
    world_sentence_list l = {0};
    relations rel = {0};
    template *t = NULL;
    size_t nt = 0;
    int rc = per_fact ? relations_init(&rel, facts, n, PARAPHRASE_PROMPTS)
                      : 0;
    if (!rc && per_fact)
        rc = collect_templates(facts, n, first_taught, &rel, &t, &nt);
    for (size_t i = 0; !rc && per_fact && i < n; i++) {
        const fact *f = &facts[i];
        if (!fact_has_answer(f)) continue;
        size_t r = relations_run(&rel, f), written = 0;
        rc = from_run(f, i, t, nt, r, per_fact, &l, &written);
        for (size_t k = 0; !rc && k < rel.n_best[r] && written < per_fact; k++)
            rc = from_run(f, i, t, nt, rel.best[r * rel.k + k], per_fact, &l,
                          &written);
    }
    templates_free(t, nt);
    relations_free(&rel);
    return hand_over(&l, rc, out, n_out);
}
