/* spd_naive: the naive twin(s) of spd.h, the SPD solve by Gaussian elimination: slow,
 * obviously correct, the oracle the tests compare the fast code against.
 * Not part of the public API: only spd.c, its own folder and the tests
 * include this header (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_SPD_NAIVE_H
#define STAMP_SPD_NAIVE_H

#include <stddef.h>

/* The same by Gaussian elimination with partial pivoting; the test
 * oracle. ERR_NUMERIC on a zero pivot. */
int spd_solve_naive(double *A, double *B, size_t n, size_t m);

#endif
