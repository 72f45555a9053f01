/* test_nullspace: the null space of a key keystats_sum with a known
 * spectrum (its dimension, eigenvectors checked by C u = e u and
 * orthonormality), and MEMIT's update confined to it against a naive
 * twin that builds the projection P and solves
 * (P (lambda C + K^T K) P + (I - P)) X = P K^T by Gaussian elimination;
 * the confined update leaves every strong direction of C unmoved, equals
 * the plain update when the threshold takes every direction, and a
 * threshold below every eigenvalue is refused. */
#include "../harness.h"
#include "base/errors.h"
#include "memit/memit.h"
#include "memit/nullspace.h"
#include "memit/spd.h"
#include "memit/spd_naive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 7;
static double urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

enum { F = 24, C = 5, N = 4, STRONG = 16 };

/* An orthonormal basis Q (F, F) by Gram-Schmidt on random vectors, and
 * cov = Q diag(spec) Q^T: STRONG eigenvalues (2, then 0.05-0.25) and the rest 0.001-0.009:
 * a null space of F - STRONG at threshold 0.01. */
static void make_cov(double *Q, double *spec, double *cov)
{
    for (size_t j = 0; j < F; j++) {
        double v[F];
        for (size_t i = 0; i < F; i++) v[i] = urand() - 0.5;
        for (size_t p = 0; p < j; p++) {
            double d = 0;
            for (size_t i = 0; i < F; i++) d += v[i] * Q[i * F + p];
            for (size_t i = 0; i < F; i++) v[i] -= d * Q[i * F + p];
        }
        double nrm = 0;
        for (size_t i = 0; i < F; i++) nrm += v[i] * v[i];
        for (size_t i = 0; i < F; i++) Q[i * F + j] = v[i] / sqrt(nrm);
        spec[j] = j == 0 ? 2 : j < STRONG ? 0.05 + 0.2 * urand() : 1e-3 + 8e-3 * urand();
    }
    for (size_t a = 0; a < F; a++)
        for (size_t b = 0; b < F; b++) {
            double s = 0;
            for (size_t j = 0; j < F; j++) s += Q[a * F + j] * spec[j] * Q[b * F + j];
            cov[a * F + b] = s;
        }
}

TEST(null_space_of_a_known_spectrum)
{
    double Q[F * F], spec[F], cov[F * F];
    make_cov(Q, spec, cov);
    nullspace ns;
    CHECK(nullspace_init(&ns, cov, F, 0.01) == 0);
    CHECK(ns.m == F - STRONG);
    double worst_eig = 0, worst_orth = 0;
    for (size_t j = 0; j < ns.m; j++) {
        CHECK(ns.eig[j] < 0.01 * ns.top);
        for (size_t a = 0; a < F; a++) { /* (C u)_a = e u_a */
            double s = 0;
            for (size_t b = 0; b < F; b++) s += cov[a * F + b] * ns.basis[b * ns.m + j];
            worst_eig = fmax(worst_eig, fabs(s - ns.eig[j] * ns.basis[a * ns.m + j]));
        }
        for (size_t k = 0; k < ns.m; k++) {
            double d = 0;
            for (size_t a = 0; a < F; a++) d += ns.basis[a * ns.m + j] * ns.basis[a * ns.m + k];
            worst_orth = fmax(worst_orth, fabs(d - (j == k)));
        }
    }
    CHECK_NEAR(worst_eig, 0, 1e-12);
    CHECK_NEAR(worst_orth, 0, 1e-12);
    /* every strong direction of C is orthogonal to the basis */
    double worst_strong = 0;
    for (size_t p = 0; p < STRONG; p++)
        for (size_t j = 0; j < ns.m; j++) {
            double d = 0;
            for (size_t a = 0; a < F; a++) d += Q[a * F + p] * ns.basis[a * ns.m + j];
            worst_strong = fmax(worst_strong, fabs(d));
        }
    CHECK_NEAR(worst_strong, 0, 1e-9);
    nullspace_free(&ns);
    nullspace_free(&ns); /* freeing twice, or a zeroed one, is harmless */
    /* no eigenvalue below 1e-9 of the largest: refused */
    CHECK(nullspace_init(&ns, cov, F, 1e-9) == ERR_INVALID);
    CHECK(ns.basis == NULL && ns.m == 0);
}

/* The naive twin: P = sum of u u^T over the eigenvectors of C (from
 * nullspace_init) below the threshold, A = P (lambda C + K^T K) P + I - P,
 * X = A^-1 P K^T by Gaussian elimination, dW = X resid. */
static void confined_naive(const double *cov, const float *K,
                           const double *resid, double lambda,
                           double threshold, double *dW)
{
    nullspace ns;
    CHECK(nullspace_init(&ns, cov, F, threshold) == 0);
    double *P = calloc(F * F, sizeof(double)), *M = malloc(F * F * sizeof(double));
    double *A = malloc(F * F * sizeof(double)), *X = malloc(F * N * sizeof(double));
    for (size_t a = 0; a < F; a++)
        for (size_t b = 0; b < F; b++) {
            for (size_t j = 0; j < ns.m; j++)
                P[a * F + b] += ns.basis[a * ns.m + j] * ns.basis[b * ns.m + j];
            double s = lambda * cov[a * F + b];
            for (size_t f = 0; f < N; f++) s += (double)K[f * F + a] * K[f * F + b];
            M[a * F + b] = s;
        }
    for (size_t a = 0; a < F; a++)
        for (size_t b = 0; b < F; b++) {
            double s = 0; /* (P M P)_ab */
            for (size_t i = 0; i < F; i++)
                for (size_t j = 0; j < F; j++)
                    s += P[a * F + i] * M[i * F + j] * P[j * F + b];
            A[a * F + b] = s + (a == b) - P[a * F + b];
        }
    for (size_t a = 0; a < F; a++)
        for (size_t f = 0; f < N; f++) {
            double s = 0;
            for (size_t i = 0; i < F; i++) s += P[a * F + i] * K[f * F + i];
            X[a * N + f] = s;
        }
    CHECK(spd_solve_naive(A, X, F, N) == 0);
    for (size_t a = 0; a < F; a++)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t f = 0; f < N; f++) s += X[a * N + f] * resid[f * C + c];
            dW[a * C + c] = s;
        }
    nullspace_free(&ns);
    free(P); free(M); free(A); free(X);
}

/* max |u^T dW| over the strong eigenvectors u (columns of Q) */
static double strong_move(const double *Q, const double *dW)
{
    double moved = 0;
    for (size_t p = 0; p < STRONG; p++)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t a = 0; a < F; a++) s += Q[a * F + p] * dW[a * C + c];
            moved = fmax(moved, fabs(s));
        }
    return moved;
}

TEST(confined_update_matches_naive_and_spares_strong_directions)
{
    double Q[F * F], spec[F], cov[F * F], resid[N * C];
    double dW[F * C], dW2[F * C], lev[N];
    float K[N * F];
    make_cov(Q, spec, cov);
    for (size_t i = 0; i < N * F; i++) K[i] = (float)(urand() - 0.5);
    for (size_t i = 0; i < N * C; i++) resid[i] = urand() - 0.5;
    double lambda = 1; /* about K^T K: the plain update uses every direction */
    size_t dim = 0;
    CHECK(memit_layer_delta_nullspace(cov, K, resid, N, F, C, lambda, 0.01,
                                      dW, lev, &dim) == 0);
    CHECK(dim == F - STRONG);
    confined_naive(cov, K, resid, lambda, 0.01, dW2);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < F * C; i++) {
        worst = fmax(worst, fabs(dW[i] - dW2[i]));
        scale = fmax(scale, fabs(dW2[i]));
    }
    CHECK(scale > 0);
    CHECK_NEAR(worst / scale, 0, 1e-6); /* the projected keys are floats */
    for (size_t f = 0; f < N; f++)
        CHECK_MSG(lev[f] > 0 && lev[f] < 1, "leverage %g", lev[f]);
    /* u^T dW = 0 along every strong eigenvector u */
    CHECK_NEAR(strong_move(Q, dW) / scale, 0, 1e-9);
    /* the plain update does move them: the test can tell the two apart */
    CHECK(memit_layer_delta(cov, K, resid, N, F, C, lambda, dW2, lev) == 0);
    double plain_moved = strong_move(Q, dW2);
    CHECK_MSG(plain_moved > 0.01 * scale, "%g of %g", plain_moved, scale);
}

TEST(a_threshold_above_every_eigenvalue_is_the_plain_update)
{
    double Q[F * F], spec[F], cov[F * F], resid[N * C];
    double dW[F * C], dW2[F * C], lev[N], lev2[N];
    float K[N * F];
    make_cov(Q, spec, cov);
    for (size_t i = 0; i < N * F; i++) K[i] = (float)(urand() - 0.5);
    for (size_t i = 0; i < N * C; i++) resid[i] = urand() - 0.5;
    size_t dim = 0;
    CHECK(memit_layer_delta_nullspace(cov, K, resid, N, F, C, 2.0, 1.5, dW,
                                      lev, &dim) == 0);
    CHECK(dim == F);
    CHECK(memit_layer_delta(cov, K, resid, N, F, C, 2.0, dW2, lev2) == 0);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < F * C; i++) {
        worst = fmax(worst, fabs(dW[i] - dW2[i]));
        scale = fmax(scale, fabs(dW2[i]));
    }
    CHECK_NEAR(worst / scale, 0, 1e-6);
    for (size_t f = 0; f < N; f++) CHECK_NEAR(lev[f], lev2[f], 1e-6);
}

int main(void)
{
    RUN(null_space_of_a_known_spectrum);
    RUN(confined_update_matches_naive_and_spares_strong_directions);
    RUN(a_threshold_above_every_eigenvalue_is_the_plain_update);
    return harness_summary();
}
