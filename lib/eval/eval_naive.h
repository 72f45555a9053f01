/* eval_naive: the naive twin(s) of eval.h, scoring each pair alone through a full forward pass: slow,
 * obviously correct, the oracle the tests compare the fast code against.
 * Not part of the public API: only eval.c, its own folder and the tests
 * include this header (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_EVAL_NAIVE_H
#define STAMP_EVAL_NAIVE_H

#include "eval/eval.h"

/* The same by running each pair alone through a full forward pass (the
 * test oracle for the batching). */
int eval_score_pairs_naive(const lm_model *m, const tokenizer *tok,
                           const eval_pair *pairs, size_t n, double *nll,
                           int *argmax);

#endif
