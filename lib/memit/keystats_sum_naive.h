/* keystats_sum_naive: the naive twin(s) of keystats_sum.h, the key statistics sum with plain loops: slow,
 * obviously correct, the oracle the tests compare the fast code against.
 * Not part of the public API: only keystats_sum.c, its own folder and the tests
 * include this header (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_KEYSTATS_SUM_NAIVE_H
#define STAMP_KEYSTATS_SUM_NAIVE_H

#include "memit/keystats_sum.h"

/* The same for one batch of token rows, naively (test oracle): adds the
 * keys' outer products with plain loops. */
void keystats_sum_add_naive(keystats_sum *c, const float *keys, size_t n_keys);

#endif
