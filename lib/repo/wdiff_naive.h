/* wdiff_naive: the naive twin(s) of wdiff.h, singular values by one-sided Jacobi rotations: slow,
 * obviously correct, the oracle the tests compare the fast code against.
 * Not part of the public API: only wdiff.c, its own folder and the tests
 * include this header (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_WDIFF_NAIVE_H
#define STAMP_WDIFF_NAIVE_H

#include <stddef.h>

/* Naive twin of wdiff_singular_values for tests: one-sided Jacobi
 * (Hestenes) rotations in double until every column pair is orthogonal
 * to working precision. O(sweeps * min^2 * max): small matrices only. */
int wdiff_singular_values_naive(const double *a, size_t rows, size_t cols,
                                double *s);

/* Naive twin of wdiff_matrix_rank: every singular value by the full SVD
 * (wdiff_singular_values, dgesdd), then wdiff_rank, as the rank was
 * computed before the sketch. */
int wdiff_matrix_rank_naive(const double *a, size_t rows, size_t cols,
                            size_t *rank, double *s_max);

#endif
