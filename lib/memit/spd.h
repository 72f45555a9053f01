/* spd: solves A X = B for symmetric positive definite A in double
 * precision (MEMIT's (lambda C + K K^T) X = K), through LAPACK's
 * Cholesky (dposv), with a naive twin for the tests; and the Cholesky
 * factor itself, for many solves with one matrix. */
#ifndef STAMP_SPD_H
#define STAMP_SPD_H

#include <stddef.h>

/* A: (n, n) row-major, overwritten by its Cholesky factor; B: (n, m)
 * row-major, overwritten by X. ERR_NUMERIC when A is not positive
 * definite (singular). */
int spd_solve(double *A, double *B, size_t n, size_t m);

/* The Cholesky factor of A (n, n) row-major, symmetric: *U (n, n),
 * upper triangular (zeros below), with A = U^T U; the caller frees it.
 * Returns 1 with *U set, 0 with *U NULL when A is not numerically
 * positive definite, or an error (ERR_NOMEM). A is left as it was. */
int spd_cholesky(const double *A, size_t n, double **U);

/* The same factor in place, without a copy: A (n, n) row-major, of
 * which only the upper triangle is read, gets U in its upper triangle.
 * The strict lower triangle is neither read nor written (so pages the
 * caller never touched there, as calloc's, stay unmapped: U then costs
 * the memory of a triangle). Returns 1 when factored, 0 when A is not
 * numerically positive definite (its upper triangle is then partly
 * overwritten), or an error. U is the bits spd_cholesky gives. */
int spd_cholesky_in_place(double *A, size_t n);

/* 1 when A (n, n) row-major, symmetric, is numerically positive definite
 * (its Cholesky factorisation succeeds), 0 when it is not, ERR_NOMEM.
 * A is left as it was. */
int spd_is_definite(const double *A, size_t n);

/* A += ridge * mean(diag A) * I, for A (n, n) row-major: a ridge scaled
 * to A's own size, which makes a positive semi-definite A definite
 * (ROME's rome_ridge, MEMIT's mom2_ridge). */
void spd_add_ridge(double *A, size_t n, double ridge);

#endif
