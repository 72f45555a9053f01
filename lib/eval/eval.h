/* eval: CounterFact-style scores of edits (docs/memit.md, "Scoring an
 * edit"). A target t after a prompt x is scored by its mean per-token
 * negative log-likelihood under teacher forcing, NLL(t | x). */
#ifndef STAMP_EVAL_H
#define STAMP_EVAL_H

#include "facts/fact.h"
#include "model/lm.h"
#include "base/progress.h"
#include "model/tokenizer.h"

#include <stddef.h>

typedef struct {
    const char *prompt;  /* the full prompt text (subject written out) */
    const char *target;  /* appended as tokens of its own */
} eval_pair;

/* For each pair: mean NLL of the target's tokens, and (argmax, may be
 * NULL) whether every target token is the model's top-1. Batched; the
 * batches run in parallel. Pairs whose prompt + target exceed the
 * context are ERR_INVALID naming the prompt. */
int eval_score_pairs(const lm_model *m, const tokenizer *tok,
                     const eval_pair *pairs, size_t n, double *nll,
                     int *argmax);

typedef struct {
    size_t n_facts;          /* facts with a true target (scored) */
    double es, ps, ns;       /* success rates, 0..100 */
    double es_mag, ps_mag, ns_mag;  /* mean P(new)-P(true) (NS: reverse) */
    double es_acc, ps_acc, ns_acc;  /* every token top-1, 0..100 */
    double score;            /* harmonic mean of es, ps, ns */
    size_t n_paraphrase, n_neighbor;
} eval_scores;

/* One fact's outcome, for finding the edits that did not take. */
typedef struct {
    int scored;           /* 0: no target_true, the rest is unset */
    int es;               /* P(new) > P(true) on the rewrite prompt */
    double p_new, p_true; /* exp(-mean NLL) of each target there */
    double ps;            /* share of its paraphrases that succeed, or
                             -1 when it has none */
    double ns;            /* share of its neighbour prompts that keep
                             their answer, or -1 when it has none */
} eval_fact_outcome;

/* Scores facts (with their target_new and target_true) on the model.
 * Facts without target_true are skipped (not counted). each (n entries,
 * may be NULL) gets every fact's own outcome. */
int eval_facts(const lm_model *m, const tokenizer *tok, const fact *facts,
               size_t n, eval_scores *out, eval_fact_outcome *each,
               progress_fn progress, void *ctx);

/* Retention: share (0..100) of facts whose target_true is top-1 on the
 * rewrite prompt, token by token; hits (n) or NULL gets each fact's
 * outcome (0 for facts without target_true, which are not counted). */
int eval_retention(const lm_model *m, const tokenizer *tok,
                   const fact *facts, size_t n, double *accuracy, int *hits);

#endif
