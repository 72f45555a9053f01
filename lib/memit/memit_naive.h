/* memit_naive: the naive twin(s) of memit.h, the closed-form updates computed with explicit loops and Gaussian elimination: slow,
 * obviously correct, the oracle the tests compare the fast code against.
 * Not part of the public API: only memit.c, its own folder and the tests
 * include this header (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_MEMIT_NAIVE_H
#define STAMP_MEMIT_NAIVE_H

#include <stddef.h>

/* The same with explicit loops and Gaussian elimination (test oracle). */
int memit_layer_delta_naive(const double *cov_mean, const float *K,
                            const double *resid, size_t n, size_t F,
                            size_t C, double lambda, double *dW,
                            double *leverage);

/* The same through memit_layer_delta_naive on the side-by-side keys and
 * the block-diagonal statistics (test oracle); leverage (n) gets the sum
 * over the layers. */
int memit_joint_delta_naive(const double *const *cov_mean,
                            const float *const *K, const double *resid,
                            size_t n, size_t nl, size_t F, size_t C,
                            double lambda, double *const *dW,
                            double *leverage);

#endif
