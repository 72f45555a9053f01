/* prompt_answers: the (prompt, answer) pairs of a fact list, sorted by
 * prompt and then answer, so that the answers of one prompt are one run
 * of the table and two prompts' shared answers are found by walking two
 * runs. Answers are what tells a list's relations apart when it names
 * none (the CounterFact release most tools use): extra_facts.h keeps
 * prompts that share no answer apart, phrasings.h gathers the prompts
 * that share many. */
#ifndef STAMP_PROMPT_ANSWERS_H
#define STAMP_PROMPT_ANSWERS_H

#include "facts/fact.h"

#include <stddef.h>

typedef struct {
    const char *prompt, *answer; /* borrowed from the facts */
} prompt_answer;

/* the answers of one prompt: pairs[lo..hi), sorted */
typedef struct {
    size_t lo, hi;
} answer_range;

/* Does f have a true answer? */
int fact_has_answer(const fact *f);

/* The pairs of the facts that have a true answer: (prompt, true answer)
 * and, with with_new, (prompt, new answer) when there is one; sorted.
 * *out malloc'ed. ERR_NOMEM on no memory. */
int prompt_answers_collect(const fact *facts, size_t n, int with_new,
                           prompt_answer **out, size_t *n_out);

/* The run of `prompt` in the sorted pairs (empty when it has none). */
answer_range prompt_answers_of(const prompt_answer *pairs, size_t n_pairs,
                               const char *prompt);

/* How many answers two runs share, counted with multiplicity. */
size_t prompt_answers_shared(const prompt_answer *pairs, answer_range x,
                             answer_range y);

#endif
