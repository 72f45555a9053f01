/* test_memit: the editing solver on tiny random models: the SPD solve
 * and the MEMIT layer update against naive twins (and the normal
 * equations), keystats_sum sums against naive loops and their encoding,
 * z vectors identical with 1 and 2 threads and lowering the loss, a
 * group in chunks equal to groups of its chunks (GPT-2, Llama), MEMIT
 * moving block outputs toward z, ROME hitting z exactly. */
#include "../harness.h"
#include "../lm_wrap.h"
#include "memit/keystats_sum.h"
#include "memit/editreq.h"
#include "base/errors.h"
#include "model/gpt2.h"
#include "memit/hparams.h"
#include "memit/memit.h"
#include "memit/spd.h"
#include "base/splitmix.h"
#include "memit/ztarget.h"
#include "memit/keystats_sum_naive.h"
#include "memit/memit_naive.h"
#include "memit/spd_naive.h"
#include "model/llama_train.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 42;
static double urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Default layers by family and depth: GPT-2 sizes MEMIT's GPT-2 XL band
 * (13-17 of 48) scaled; the
 * Llama family AlphaEdit's Llama 3 8B band (4-8 of 32) scaled; small
 * models layers 0-1. */
TEST(hparams_default_layers_by_family_and_depth)
{
    static const struct {
        lm_family family;
        size_t L, first, last;
    } want[] = {
        {LM_LLAMA, 32, 4, 8}, {LM_LLAMA, 16, 2, 4}, {LM_LLAMA, 28, 4, 7},
        {LM_GPT2, 48, 13, 17}, {LM_GPT2, 12, 3, 4}, {LM_GPT2, 24, 7, 9},
        {LM_GPT2, 36, 10, 13}, {LM_LLAMA, 6, 0, 1},
        {LM_GPT2, 6, 0, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        lm_config c = {.family = want[i].family, .n_layer = want[i].L};
        hparams h;
        hparams_default(&h, &c);
        CHECK_MSG(h.n_layers == want[i].last - want[i].first + 1 &&
                  h.layers[0] == want[i].first &&
                  h.layers[h.n_layers - 1] == want[i].last,
                  "family %d, %zu layers: %zu layers from %zu", want[i].family,
                  want[i].L, h.n_layers, h.layers[0]);
        if (want[i].family == LM_LLAMA && want[i].L >= 12)
            CHECK(h.mom2_update_weight == 15000 && h.v_lr == 0.1 &&
                  h.v_num_grad_steps == 25);
    }
}

TEST(spd_solve_matches_naive)
{
    size_t n = 24, m = 5;
    double *M = malloc(n * n * sizeof(double)), *A = malloc(n * n * sizeof(double));
    double *A2 = malloc(n * n * sizeof(double)), *B = malloc(n * m * sizeof(double));
    double *B2 = malloc(n * m * sizeof(double));
    for (size_t i = 0; i < n * n; i++) M[i] = urand() - 0.5;
    for (size_t i = 0; i < n; i++) /* A = M M^T + I: SPD */
        for (size_t j = 0; j < n; j++) {
            double s = i == j;
            for (size_t k = 0; k < n; k++) s += M[i * n + k] * M[j * n + k];
            A[i * n + j] = A2[i * n + j] = s;
        }
    for (size_t i = 0; i < n * m; i++) B[i] = B2[i] = urand();
    CHECK(spd_solve(A, B, n, m) == 0);
    CHECK(spd_solve_naive(A2, B2, n, m) == 0);
    double worst = 0;
    for (size_t i = 0; i < n * m; i++) worst = fmax(worst, fabs(B[i] - B2[i]));
    CHECK_NEAR(worst, 0, 1e-9);
    /* a singular matrix is refused */
    memset(A, 0, n * n * sizeof(double));
    CHECK(spd_solve(A, B, n, m) == ERR_NUMERIC);
    free(M); free(A); free(A2); free(B); free(B2);
}

TEST(spd_is_definite_tells_singular_from_definite)
{
    /* A = M M^T with M (n, r): rank r < n, and unit 7 never fires (its
     * row and column are 0), so that the factorisation meets an exact 0
     * pivot whatever the rounding of the others */
    size_t n = 16, r = 5;
    double *M = malloc(n * r * sizeof(double)), *A = malloc(n * n * sizeof(double));
    double *copy = malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n * r; i++) M[i] = urand() - 0.5;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t k = 0; k < r; k++) s += M[i * r + k] * M[j * r + k];
            A[i * n + j] = i == 7 || j == 7 ? 0 : s;
        }
    memcpy(copy, A, n * n * sizeof(double));
    CHECK(spd_is_definite(A, n) == 0);
    CHECK(memcmp(copy, A, n * n * sizeof(double)) == 0); /* left as it was */
    for (size_t i = 0; i < n; i++) A[i * n + i] += 1e-3; /* now definite */
    CHECK(spd_is_definite(A, n) == 1);
    free(M); free(A); free(copy);
}

/* spd_add_ridge adds ridge * mean(diag A) to the diagonal and nothing
 * else, which makes a singular A with a dead unit definite; ridge 0
 * leaves A as it was */
TEST(spd_add_ridge_makes_a_dead_unit_definite)
{
    size_t n = 8;
    double A[64] = {0}, copy[64];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            A[i * n + j] = i == 2 || j == 2 ? 0 : (i == j ? 2.0 : 0.5);
    memcpy(copy, A, sizeof A);
    CHECK(spd_is_definite(A, n) == 0);
    spd_add_ridge(A, n, 0);
    CHECK(memcmp(copy, A, sizeof A) == 0);
    spd_add_ridge(A, n, 0.1);
    double mean_diag = 2.0 * 7 / 8; /* unit 2's diagonal is 0 */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            CHECK_NEAR(A[i * n + j], copy[i * n + j] + (i == j ? 0.1 * mean_diag : 0), 1e-15);
    CHECK(spd_is_definite(A, n) == 1);
}

TEST(layer_delta_satisfies_normal_equations)
{
    size_t F = 32, C = 8, n = 6;
    double *cov = calloc(F * F, sizeof(double));
    float *K = malloc(n * F * sizeof(float));
    double *resid = malloc(n * C * sizeof(double));
    double *dW = malloc(F * C * sizeof(double)), *dW2 = malloc(F * C * sizeof(double));
    double lev[6], lev2[6];
    float *keys = malloc(200 * F * sizeof(float));
    keystats_sum c;
    CHECK(keystats_sum_init(&c, F) == 0);
    for (size_t i = 0; i < 200 * F; i++) keys[i] = (float)(urand() - 0.3);
    keystats_sum_add(&c, keys, 200);
    CHECK(keystats_sum_mean(&c, cov) == 0);
    for (size_t i = 0; i < n * F; i++) K[i] = (float)urand();
    for (size_t i = 0; i < n * C; i++) resid[i] = urand() - 0.5;
    double lambda = 3.0;
    CHECK(memit_layer_delta(cov, K, resid, n, F, C, lambda, dW, lev) == 0);
    CHECK(memit_layer_delta_naive(cov, K, resid, n, F, C, lambda, dW2, lev2) == 0);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < F * C; i++) {
        worst = fmax(worst, fabs(dW[i] - dW2[i]));
        scale = fmax(scale, fabs(dW2[i]));
    }
    CHECK_NEAR(worst / scale, 0, 1e-8);
    for (size_t f = 0; f < n; f++) {
        CHECK_NEAR(lev[f], lev2[f], 1e-9);
        CHECK_MSG(lev[f] > 0 && lev[f] < 1, "leverage %g", lev[f]);
    }
    /* (lambda C + K^T K) dW = K^T resid */
    double err = 0, ref = 0;
    for (size_t i = 0; i < F; i++)
        for (size_t col = 0; col < C; col++) {
            double lhs = 0, rhs = 0;
            for (size_t j = 0; j < F; j++) {
                double a = lambda * cov[i * F + j];
                for (size_t f = 0; f < n; f++) a += (double)K[f * F + i] * K[f * F + j];
                lhs += a * dW[j * C + col];
            }
            for (size_t f = 0; f < n; f++) rhs += (double)K[f * F + i] * resid[f * C + col];
            err = fmax(err, fabs(lhs - rhs));
            ref = fmax(ref, fabs(rhs));
        }
    CHECK_NEAR(err / ref, 0, 1e-9);
    keystats_sum_free(&c);
    free(cov); free(K); free(resid); free(dW); free(dW2); free(keys);
}

/* The update through the Cholesky factor of C (push-through identity)
 * is the direct solve's, and the naive one's, to rounding: with fewer
 * keys than units, as many, and more; with the leverages. */
TEST(factored_layer_delta_matches_direct_and_naive)
{
    size_t F = 24, C = 5;
    size_t sizes[3] = {3, 24, 40};
    double *cov = malloc(F * F * sizeof(double)), *U = NULL;
    float *keys = malloc(300 * F * sizeof(float));
    uint64_t saved = rng; /* the later tests' random data stay as they were */
    keystats_sum c;
    CHECK(keystats_sum_init(&c, F) == 0);
    for (size_t i = 0; i < 300 * F; i++) keys[i] = (float)(urand() - 0.4);
    keystats_sum_add(&c, keys, 300);
    CHECK(keystats_sum_mean(&c, cov) == 0);
    keystats_sum_free(&c);
    CHECK(spd_cholesky(cov, F, &U) == 1);
    for (size_t i = 0; i < F; i++) /* U^T U = C, zeros below */
        for (size_t j = 0; j < F; j++) {
            double s = 0;
            for (size_t k = 0; k < F; k++) s += U[k * F + i] * U[k * F + j];
            CHECK_NEAR(s, cov[i * F + j], 1e-12);
            if (j < i) CHECK(U[i * F + j] == 0);
        }
    for (size_t t = 0; t < 3; t++) {
        size_t n = sizes[t];
        float *K = malloc(n * F * sizeof(float));
        double *resid = malloc(n * C * sizeof(double));
        double *dW = malloc(F * C * sizeof(double)), *dW2 = malloc(F * C * sizeof(double));
        double *dW3 = malloc(F * C * sizeof(double));
        double *lev = malloc(n * sizeof(double)), *lev2 = malloc(n * sizeof(double));
        double *lev3 = malloc(n * sizeof(double));
        for (size_t i = 0; i < n * F; i++) K[i] = (float)(urand() - 0.3);
        for (size_t i = 0; i < n * C; i++) resid[i] = urand() - 0.5;
        double lambda = t == 1 ? 0.05 : 4.0;
        CHECK(memit_layer_delta_factored(U, K, resid, n, F, C, lambda, dW, lev) == 0);
        CHECK(memit_layer_delta(cov, K, resid, n, F, C, lambda, dW2, lev2) == 0);
        CHECK(memit_layer_delta_naive(cov, K, resid, n, F, C, lambda, dW3, lev3) == 0);
        double worst2 = 0, worst3 = 0, scale = 0;
        for (size_t i = 0; i < F * C; i++) {
            worst2 = fmax(worst2, fabs(dW[i] - dW2[i]));
            worst3 = fmax(worst3, fabs(dW[i] - dW3[i]));
            scale = fmax(scale, fabs(dW3[i]));
        }
        CHECK_MSG(worst2 / scale < 1e-8 && worst3 / scale < 1e-8,
                  "n %zu: %g %g", n, worst2 / scale, worst3 / scale);
        for (size_t f = 0; f < n; f++) {
            CHECK_NEAR(lev[f], lev2[f], 1e-9);
            CHECK_NEAR(lev[f], lev3[f], 1e-9);
        }
        free(K); free(resid); free(dW); free(dW2); free(dW3);
        free(lev); free(lev2); free(lev3);
    }
    /* lambda 0 has no factored form */
    float k1[24] = {1};
    double r1[5] = {1}, dW1[24 * 5];
    CHECK(memit_layer_delta_factored(U, k1, r1, 1, F, C, 0, dW1, NULL) == ERR_INVALID);
    err_clear();
    /* a singular C has no factor */
    for (size_t j = 0; j < F; j++) cov[3 * F + j] = cov[j * F + 3] = 0;
    double *V = (double *)1;
    CHECK(spd_cholesky(cov, F, &V) == 0 && V == NULL);
    rng = saved;
    free(U); free(cov); free(keys);
}

/* The joint update of several layers is the one-layer update of all
 * their units side by side with block-diagonal statistics (the naive
 * twin), satisfies each layer's normal equations
 *   lambda C_l dW_l = K_l^T (resid - sum_m K_m dW_m),
 * and for one layer is the factored one-layer update. With fewer keys
 * than units, as many as one layer's, and more than all layers'. */
TEST(joint_layer_delta_matches_naive_and_normal_equations)
{
    enum { NL = 3 };
    size_t F = 16, C = 4, sizes[3] = {3, 16, 60};
    uint64_t saved = rng; /* the later tests' random data stay as they were */
    double *cov[NL], *U[NL];
    float *keys = malloc(400 * F * sizeof(float));
    for (size_t l = 0; l < NL; l++) {
        keystats_sum c;
        CHECK(keystats_sum_init(&c, F) == 0);
        for (size_t i = 0; i < 400 * F; i++) keys[i] = (float)(urand() - 0.2 * (double)l);
        keystats_sum_add(&c, keys, 400);
        cov[l] = malloc(F * F * sizeof(double));
        CHECK(keystats_sum_mean(&c, cov[l]) == 0);
        keystats_sum_free(&c);
        CHECK(spd_cholesky(cov[l], F, &U[l]) == 1);
    }
    for (size_t t = 0; t < 3; t++) {
        size_t n = sizes[t];
        float *K[NL];
        double *dW[NL], *dW2[NL], *lev = malloc(NL * n * sizeof(double));
        double *lev2 = malloc(n * sizeof(double));
        double *resid = malloc(n * C * sizeof(double));
        for (size_t l = 0; l < NL; l++) {
            K[l] = malloc(n * F * sizeof(float));
            for (size_t i = 0; i < n * F; i++) K[l][i] = (float)(urand() - 0.3);
            dW[l] = malloc(F * C * sizeof(double));
            dW2[l] = malloc(F * C * sizeof(double));
        }
        for (size_t i = 0; i < n * C; i++) resid[i] = urand() - 0.5;
        double lambda = t == 1 ? 0.05 : 2.0;
        CHECK(memit_joint_delta((const double *const *)U, (const float *const *)K,
                                resid, n, NL, F, C, lambda, dW, lev) == 0);
        CHECK(memit_joint_delta_naive((const double *const *)cov,
                                      (const float *const *)K, resid, n, NL, F,
                                      C, lambda, dW2, lev2) == 0);
        double worst = 0, scale = 0;
        for (size_t l = 0; l < NL; l++)
            for (size_t i = 0; i < F * C; i++) {
                worst = fmax(worst, fabs(dW[l][i] - dW2[l][i]));
                scale = fmax(scale, fabs(dW2[l][i]));
            }
        CHECK_MSG(scale > 0 && worst / scale < 1e-8, "n %zu: %g", n, worst / scale);
        for (size_t f = 0; f < n; f++) {
            double sum = 0;
            for (size_t l = 0; l < NL; l++) sum += lev[l * n + f];
            CHECK_NEAR(sum, lev2[f], 1e-9);
        }
        /* one layer's update asked for, the others' left unformed: the
         * same update of that layer and the same leverages */
        double *only[NL] = {NULL, dW2[1], NULL};
        double *lev3 = malloc(NL * n * sizeof(double));
        CHECK(memit_joint_delta((const double *const *)U, (const float *const *)K,
                                resid, n, NL, F, C, lambda, only, lev3) == 0);
        for (size_t i = 0; i < F * C; i++) CHECK_NEAR(dW2[1][i], dW[1][i], 1e-12);
        for (size_t i = 0; i < NL * n; i++) CHECK_NEAR(lev3[i], lev[i], 1e-12);
        free(lev3);
        /* E = resid - sum_m K_m dW_m; lambda C_l dW_l - K_l^T E = 0 */
        double *E = malloc(n * C * sizeof(double));
        memcpy(E, resid, n * C * sizeof(double));
        for (size_t l = 0; l < NL; l++)
            for (size_t f = 0; f < n; f++)
                for (size_t c = 0; c < C; c++) {
                    double s = 0;
                    for (size_t i = 0; i < F; i++) s += (double)K[l][f * F + i] * dW[l][i * C + c];
                    E[f * C + c] -= s;
                }
        double err = 0, ref = 0;
        for (size_t l = 0; l < NL; l++)
            for (size_t i = 0; i < F; i++)
                for (size_t c = 0; c < C; c++) {
                    double lhs = 0, rhs = 0;
                    for (size_t j = 0; j < F; j++) lhs += lambda * cov[l][i * F + j] * dW[l][j * C + c];
                    for (size_t f = 0; f < n; f++) rhs += (double)K[l][f * F + i] * E[f * C + c];
                    err = fmax(err, fabs(lhs - rhs));
                    ref = fmax(ref, fabs(rhs));
                }
        CHECK_MSG(ref > 0 && err / ref < 1e-8, "n %zu: %g of %g", n, err, ref);
        /* one layer alone: the factored one-layer update */
        double *one = malloc(F * C * sizeof(double)), *lev1 = malloc(n * sizeof(double));
        CHECK(memit_joint_delta((const double *const *)U, (const float *const *)K,
                                resid, n, 1, F, C, lambda, dW, lev) == 0);
        CHECK(memit_layer_delta_factored(U[0], K[0], resid, n, F, C, lambda, one, lev1) == 0);
        worst = 0, scale = 0;
        for (size_t i = 0; i < F * C; i++) {
            worst = fmax(worst, fabs(dW[0][i] - one[i]));
            scale = fmax(scale, fabs(one[i]));
        }
        CHECK_MSG(worst / scale < 1e-10, "one layer: %g", worst / scale);
        for (size_t f = 0; f < n; f++) CHECK_NEAR(lev[f], lev1[f], 1e-10);
        free(one); free(lev1); free(E);
        for (size_t l = 0; l < NL; l++) { free(K[l]); free(dW[l]); free(dW2[l]); }
        free(lev); free(lev2); free(resid);
    }
    /* lambda 0 has no factored form */
    float k1[16] = {1}, *k1s[1] = {k1};
    double r1[4] = {1}, d1[16 * 4], *d1s[1] = {d1};
    CHECK(memit_joint_delta((const double *const *)U, (const float *const *)k1s,
                            r1, 1, 1, F, C, 0, d1s, NULL) == ERR_INVALID);
    err_clear();
    for (size_t l = 0; l < NL; l++) { free(cov[l]); free(U[l]); }
    free(keys);
    rng = saved;
}

/* The leverages add up to at most the rank of the keys: a batch whose
 * keys span r dimensions writes about r edits' worth of change, however
 * many edits it holds; distinct keys each get (nearly) all of theirs. */
TEST(leverage_is_bounded_by_the_rank_of_the_keys)
{
    size_t F = 32, C = 4, r = 4, n = 12;
    double *cov = calloc(F * F, sizeof(double));
    for (size_t i = 0; i < F; i++) cov[i * F + i] = 1;
    float *K = malloc(n * F * sizeof(float)), basis[4 * 32];
    double *resid = calloc(n * C, sizeof(double)), *dW = malloc(F * C * sizeof(double));
    double lev[12], sum = 0;
    uint64_t saved = rng; /* the later tests' random data stay as they were */
    for (size_t i = 0; i < r * F; i++) basis[i] = (float)(urand() - 0.5);
    for (size_t f = 0; f < n; f++) { /* every key a mix of r basis vectors */
        double mix[4];
        for (size_t b = 0; b < r; b++) mix[b] = urand() - 0.5;
        for (size_t i = 0; i < F; i++) {
            double s = 0;
            for (size_t b = 0; b < r; b++) s += mix[b] * basis[b * F + i];
            K[f * F + i] = (float)s;
        }
    }
    rng = saved;
    CHECK(memit_layer_delta(cov, K, resid, n, F, C, 1e-6, dW, lev) == 0);
    for (size_t f = 0; f < n; f++) sum += lev[f];
    CHECK_NEAR(sum, (double)r, 1e-3);
    /* r keys of their own: each edit gets all of its change */
    CHECK(memit_layer_delta(cov, K, resid, r, F, C, 1e-6, dW, lev) == 0);
    for (size_t f = 0; f < r; f++) CHECK_NEAR(lev[f], 1, 1e-3);
    /* a strong prior (large lambda) keeps every leverage small */
    CHECK(memit_layer_delta(cov, K, resid, r, F, C, 1e3, dW, lev) == 0);
    for (size_t f = 0; f < r; f++) CHECK(lev[f] < 0.1);
    free(cov); free(K); free(resid); free(dW);
}

TEST(keystats_sum_fast_matches_naive_and_round_trips)
{
    size_t F = 20, n = 77;
    float *keys = malloc(n * F * sizeof(float));
    for (size_t i = 0; i < n * F; i++) keys[i] = (float)(urand() * 2 - 1);
    keystats_sum a, b, d;
    CHECK(keystats_sum_init(&a, F) == 0 && keystats_sum_init(&b, F) == 0);
    keystats_sum_add(&a, keys, n);
    keystats_sum_add(&a, keys, 10);
    keystats_sum_add_naive(&b, keys, n);
    keystats_sum_add_naive(&b, keys, 10);
    CHECK(a.tokens == 87 && b.tokens == 87);
    double worst = 0;
    for (size_t i = 0; i < F * F; i++) worst = fmax(worst, fabs(a.sum[i] - b.sum[i]));
    CHECK_NEAR(worst, 0, 1e-4);
    a.sequences = 9;
    void *blob = NULL;
    size_t len = 0;
    CHECK(keystats_sum_encode(&a, &blob, &len) == 0);
    CHECK(keystats_sum_decode(&d, blob, len) == 0);
    CHECK(d.F == F && d.tokens == 87 && d.sequences == 9);
    CHECK(!memcmp(d.sum, a.sum, F * F * sizeof(double)));
    keystats_sum e;
    CHECK(keystats_sum_decode(&e, blob, len - 1) == ERR_FORMAT);
    ((char *)blob)[0] = 'X';
    CHECK(keystats_sum_decode(&e, blob, len) == ERR_FORMAT);
    free(blob);
    keystats_sum_free(&a); keystats_sum_free(&b); keystats_sum_free(&d);
    free(keys);
}

/* Statistics wider than one 64-wide tile round-trip to the bit, and the
 * mean taken in place equals the mean copied out. Own random stream:
 * the tests after this one draw from urand() as before. */
TEST(keystats_sum_decodes_across_tiles_and_takes_the_mean)
{
    size_t F = 150, n = 40; /* two whole tiles and a part */
    uint64_t state = 3;
    float *keys = malloc(n * F * sizeof(float));
    for (size_t i = 0; i < n * F; i++) keys[i] = (float)splitmix_normal(&state);
    keystats_sum a, d;
    CHECK(keystats_sum_init(&a, F) == 0);
    keystats_sum_add(&a, keys, n);
    void *blob = NULL;
    size_t len = 0;
    CHECK(keystats_sum_encode(&a, &blob, &len) == 0);
    CHECK(keystats_sum_decode(&d, blob, len) == 0);
    CHECK(d.F == F && d.tokens == n);
    CHECK(!memcmp(d.sum, a.sum, F * F * sizeof(double)));
    double *mean = malloc(F * F * sizeof(double)), *taken = NULL;
    CHECK(keystats_sum_mean(&d, mean) == 0);
    CHECK(keystats_sum_take_mean(&d, &taken) == 0);
    CHECK(taken && d.sum == NULL && d.F == 0);
    CHECK(taken && !memcmp(taken, mean, F * F * sizeof(double)));
    keystats_sum empty;
    CHECK(keystats_sum_init(&empty, 4) == 0);
    double *none = NULL;
    CHECK(keystats_sum_take_mean(&empty, &none) == ERR_EMPTY && none == NULL);
    keystats_sum_free(&empty);
    free(mean); free(taken); free(blob); free(keys);
    keystats_sum_free(&a);
}

/* A tiny random model and hand-made edit requests (no tokenizer): each
 * fact has a bare prompt, one "prefixed" prompt and an essence prompt. */
static gpt2_model model;
static const size_t NF = 5;
static editreq reqs[5];

static void make_seq(editreq_seq *s, size_t len, size_t lookup, size_t tstart,
                     const int *tail, size_t n_tail, uint64_t salt)
{
    s->len = len + n_tail;
    s->tokens = malloc(s->len * sizeof(int));
    for (size_t i = 0; i < len; i++)
        s->tokens[i] = (int)((salt * 7 + i * 13) % model.config.vocab_size);
    if (n_tail) memcpy(s->tokens + len, tail, n_tail * sizeof(int));
    s->lookup = lookup;
    s->target_start = tstart;
}

static void setup(void)
{
    gpt2_config c = {.n_layer = 4, .n_head = 2, .n_embd = 16, .n_positions = 24,
                     .vocab_size = 41, .n_inner = 64, .layer_norm_epsilon = 1e-5f};
    gpt2_model_init(&model, &c);
    gpt2_model_init_random(&model, 7);
    /* sharpen the head so that the residual stream moves the logits the
     * way a trained model's does (a fresh init is nearly uniform) */
    for (size_t i = 0; i < c.vocab_size * c.n_embd; i++) model.p.wte[i] *= 30;
    for (size_t f = 0; f < NF; f++) {
        editreq *r = &reqs[f];
        r->n_target = 2;
        r->target = malloc(2 * sizeof(int));
        r->target[0] = (int)(3 + f);
        r->target[1] = (int)(20 + f);
        r->n_rewrite = 2;
        r->seq = calloc(3, sizeof(editreq_seq));
        /* the subject ends the prompt ("... by {}"), so that the vector
         * added at its last token reaches the target's logits even
         * through random attention */
        make_seq(&r->seq[0], 6, 5, 5, r->target, 1, f);          /* bare */
        make_seq(&r->seq[1], 9, 8, 8, r->target, 1, f + 100);    /* prefixed */
        /* the subject tokens (positions 3..5 of bare) recur in the others */
        memcpy(r->seq[1].tokens + 6, r->seq[0].tokens + 3, 3 * sizeof(int));
        make_seq(&r->seq[2], 5, 2, 4, NULL, 0, f);               /* essence */
        memcpy(r->seq[2].tokens, r->seq[0].tokens + 3, 3 * sizeof(int));
    }
}

static void test_hparams(hparams *h)
{
    hparams_default(h, &lm_of(&model)->config);
    size_t layers[] = {1, 2};
    memcpy(h->layers, layers, sizeof layers);
    h->n_layers = 2;
    h->facts_per_group = 2;
    h->v_num_grad_steps = 25;
    h->n_prefixes = 1;
}

TEST(keys_of_several_layers_in_one_pass_equal_each_layers_own)
{
    hparams h;
    test_hparams(&h);
    size_t C = model.config.n_embd, F = model.config.n_inner;
    size_t layers[3] = {0, 1, 3}, zlayer = 2;
    float *K[3], *one = malloc(NF * F * sizeof(float));
    float *H = malloc(NF * C * sizeof(float)), *H1 = malloc(NF * C * sizeof(float));
    for (size_t j = 0; j < 3; j++) K[j] = malloc(NF * F * sizeof(float));
    CHECK(memit_keys_layers(lm_of(&model), reqs, NF, layers, 3, zlayer, &h, K, H) == 0);
    for (size_t j = 0; j < 3; j++) {
        CHECK(memit_keys(lm_of(&model), reqs, NF, layers[j], zlayer, &h, one, H1) == 0);
        CHECK_MSG(memcmp(one, K[j], NF * F * sizeof(float)) == 0,
                  "layer %zu: keys differ", layers[j]);
        CHECK_MSG(memcmp(H1, H, NF * C * sizeof(float)) == 0,
                  "layer %zu: block outputs differ", layers[j]);
    }
    /* the keys differ between layers: each was read at its own */
    CHECK(memcmp(K[0], K[1], NF * F * sizeof(float)) != 0);
    for (size_t j = 0; j < 3; j++) free(K[j]);
    free(one);
    free(H);
    free(H1);
}

TEST(z_is_identical_with_one_and_two_threads_and_lowers_the_loss)
{
    hparams h;
    test_hparams(&h);
    size_t C = model.config.n_embd;
    float *z1 = malloc(NF * C * sizeof(float)), *z2 = malloc(NF * C * sizeof(float));
    float *h0 = malloc(NF * C * sizeof(float));
    ztarget_info i1[5], i2[5], i0[5];
    omp_set_num_threads(1);
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &h, z1, h0, i1, NULL, NULL) == 0);
    omp_set_num_threads(2);
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &h, z2, NULL, i2, NULL, NULL) == 0);
    CHECK(!memcmp(z1, z2, NF * C * sizeof(float)));
    /* one group and one lone fact (fewer groups than threads: the groups
     * in turn, each pass's kernels on both threads) and 5 groups of one */
    size_t sizes[2] = {NF, 1};
    for (size_t k = 0; k < 2; k++) {
        hparams g = h;
        g.facts_per_group = sizes[k];
        for (size_t n = 1; n <= NF; n += NF - 1) {
            omp_set_num_threads(1);
            CHECK(ztarget_compute(lm_of(&model), reqs, n, 2, &g, z1, NULL, i1, NULL, NULL) == 0);
            omp_set_num_threads(2);
            CHECK(ztarget_compute(lm_of(&model), reqs, n, 2, &g, z2, NULL, i2, NULL, NULL) == 0);
            CHECK_MSG(!memcmp(z1, z2, n * C * sizeof(float)), "%zu facts, %zu a group", n,
                      sizes[k]);
        }
    }
    hparams none = h;
    none.v_num_grad_steps = 0;
    float *z0 = malloc(NF * C * sizeof(float));
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &none, z0, NULL, i0, NULL, NULL) == 0);
    CHECK(!memcmp(z0, h0, NF * C * sizeof(float))); /* no steps: z = h0 */
    for (size_t f = 0; f < NF; f++) {
        CHECK(!i1[f].failed);
        CHECK_MSG(i1[f].nll < 0.9 * i0[f].nll, "fact %zu: nll %g -> %g", f,
                  i0[f].nll, i1[f].nll);
        /* the clamp: ||z - h0|| <= 0.75 ||h0|| */
        double dn = 0, hn = 0;
        for (size_t c = 0; c < C; c++) {
            double d = z1[f * C + c] - h0[f * C + c];
            dn += d * d;
            hn += (double)h0[f * C + c] * h0[f * C + c];
        }
        CHECK(sqrt(dn) <= h.clamp_norm_factor * sqrt(hn) * (1 + 1e-5));
    }
    free(z1); free(z2); free(z0); free(h0);
}

/* The naive twin of the lockstep: each fact alone in its group. Facts
 * stop at different steps (nll_stop between their final losses), so
 * the group also runs steps with some of its facts gone from the batch;
 * the stepping facts must move as they do alone. */
TEST(a_fact_steps_alike_in_a_group_and_alone)
{
    hparams h;
    test_hparams(&h);
    h.nll_stop = 0;
    size_t C = model.config.n_embd;
    float *zg = malloc(NF * C * sizeof(float)), *za = malloc(NF * C * sizeof(float));
    float *h0 = malloc(NF * C * sizeof(float));
    ztarget_info ig[5], ia[5];
    h.facts_per_group = 1;
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &h, za, h0, ia, NULL, NULL) == 0);
    double lo = ia[0].loss, hi = ia[0].loss;
    for (size_t f = 1; f < NF; f++) {
        lo = fmin(lo, ia[f].loss);
        hi = fmax(hi, ia[f].loss);
    }
    CHECK_MSG(lo < hi, "final losses all %g", lo);
    h.nll_stop = (lo + hi) / 2;
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &h, za, h0, ia, NULL, NULL) == 0);
    h.facts_per_group = NF;
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &h, zg, NULL, ig, NULL, NULL) == 0);
    size_t fewest = ia[0].steps, most = ia[0].steps;
    for (size_t f = 0; f < NF; f++) {
        CHECK_MSG(ig[f].steps == ia[f].steps, "fact %zu: %zu steps in the "
                  "group, %zu alone", f, ig[f].steps, ia[f].steps);
        if (ia[f].steps < fewest) fewest = ia[f].steps;
        if (ia[f].steps > most) most = ia[f].steps;
        double diff = 0, moved = 0;
        for (size_t c = 0; c < C; c++) {
            diff += pow((double)zg[f * C + c] - za[f * C + c], 2);
            moved += pow((double)za[f * C + c] - h0[f * C + c], 2);
        }
        CHECK_MSG(moved > 0 && sqrt(diff) <= 1e-3 * sqrt(moved),
                  "fact %zu: |z group - z alone| %g of a move of %g", f,
                  sqrt(diff), sqrt(moved));
    }
    CHECK_MSG(fewest < most, "every fact took %zu steps", most);
    free(zg); free(za); free(h0);
}

/* The naive twin of the chunks: a group over the chunk budget runs
 * as chunks of whole facts, each stepping as a group of its own. With a
 * budget below any fact's, a group of NF facts gives, with 1 and 2
 * threads, exactly the z and steps of groups of one fact; and the whole
 * group's steps and z up to the order of float sums (within 1e-3 of each
 * fact's move: the batched kernels sum rows of other sizes). */
static void chunks_equal_groups(const lm_model *m, const hparams *base,
                                size_t zlayer, const char *what)
{
    size_t C = m->config.n_embd;
    float *zw = malloc(NF * C * sizeof(float)), *zc = malloc(NF * C * sizeof(float));
    float *za = malloc(NF * C * sizeof(float)), *h0 = malloc(NF * C * sizeof(float));
    ztarget_info iw[5], ic[5], ia[5];
    hparams h = *base;
    h.facts_per_group = 1;
    CHECK(ztarget_compute(m, reqs, NF, zlayer, &h, za, h0, ia, NULL, NULL) == 0);
    h.facts_per_group = NF;
    CHECK(ztarget_compute(m, reqs, NF, zlayer, &h, zw, NULL, iw, NULL, NULL) == 0);
    CHECK_MSG(memcmp(zw, za, NF * C * sizeof(float)) != 0,
              "%s: a group and groups of one agree bit for bit (the test "
              "cannot tell chunks from the group)", what);
    size_t old = ztarget_set_chunk_bytes(1);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        memset(zc, 0, NF * C * sizeof(float));
        CHECK(ztarget_compute(m, reqs, NF, zlayer, &h, zc, NULL, ic, NULL, NULL) == 0);
        CHECK_MSG(!memcmp(zc, za, NF * C * sizeof(float)), "%s, %d threads: "
                  "chunks of one fact differ from groups of one", what, threads);
        for (size_t f = 0; f < NF; f++) CHECK(ic[f].steps == ia[f].steps);
    }
    ztarget_set_chunk_bytes(old);
    double worst = 0;
    for (size_t f = 0; f < NF; f++) {
        double diff = 0, moved = 0;
        for (size_t c = 0; c < C; c++) {
            diff += pow((double)zc[f * C + c] - zw[f * C + c], 2);
            moved += pow((double)zw[f * C + c] - h0[f * C + c], 2);
        }
        CHECK_MSG(iw[f].steps == ic[f].steps && moved > 0 &&
                  sqrt(diff) <= 1e-3 * sqrt(moved),
                  "%s, fact %zu: %zu steps whole, %zu in chunks; |z chunks - "
                  "z whole| %g of a move of %g", what, f, iw[f].steps,
                  ic[f].steps, sqrt(diff), sqrt(moved));
        worst = fmax(worst, sqrt(diff) / sqrt(moved));
    }
    printf("     %s: |z chunks - z whole| <= %.2g of the move\n", what, worst);
    free(zw); free(zc); free(za); free(h0);
}

TEST(a_group_in_chunks_steps_as_groups_of_its_chunks)
{
    hparams h;
    test_hparams(&h);
    chunks_equal_groups(lm_of(&model), &h, 2, "gpt2");
    /* a Llama of 6 layers, z at layer 3: its steps' workspace keeps the
     * layers from 4 up (lower block outputs in two slots, no keys) */
    llama_config c = {.arch = LLAMA_ARCH_LLAMA, .n_layer = 6, .n_embd = 16,
                      .n_inner = 48, .n_head = 4, .n_kv_head = 2, .head_dim = 4,
                      .vocab_size = model.config.vocab_size, .n_positions = 24,
                      .rms_norm_eps = 1e-5f, .rope_theta = 10000,
                      .tie_word_embeddings = true, .bos_token_id = -1};
    llama_model t;
    char dir[] = "/tmp/test_memit.XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    CHECK(llama_model_init_random(&t, &c, 9) == 0);
    for (size_t i = 0; i < t.n_params; i++) t.params[i] *= 20; /* a sharper head */
    CHECK(llama_model_save(&t, dir, ST_F32) == 0);
    llama_model_free(&t);
    lm_model m;
    int rc = lm_model_load(&m, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (!rc) {
        hparams_default(&h, &m.config);
        h.layers[0] = 2;
        h.layers[1] = 3;
        h.n_layers = 2;
        h.v_num_grad_steps = 10;
        h.n_prefixes = 1;
        chunks_equal_groups(&m, &h, 3, "llama");
        lm_model_free(&m);
    }
    const char *files[] = {"config.json", "model.safetensors"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
}

/* A well-conditioned stand-in for C_l: the keys of random sequences. */
static double *random_cov(size_t layer)
{
    size_t F = model.config.n_inner, B = 8, T = 16;
    int *tokens = malloc(B * T * sizeof(int));
    for (size_t i = 0; i < B * T; i++) tokens[i] = (int)(urand() * model.config.vocab_size);
    gpt2_acts *a = NULL;
    gpt2_acts_new(&a, &model.config, B, T, 1);
    gpt2_batch b = {.tokens = tokens, .B = B, .T = T};
    gpt2_forward(&model, a, &b);
    keystats_sum c;
    keystats_sum_init(&c, F);
    keystats_sum_add(&c, gpt2_acts_mlp_key(a, layer), B * T);
    double *mean = malloc(F * F * sizeof(double));
    keystats_sum_mean(&c, mean);
    keystats_sum_free(&c);
    gpt2_acts_free(a);
    free(tokens);
    return mean;
}

/* *copy = a fresh copy of the test model */
static void copy_model(gpt2_model *copy)
{
    gpt2_model_init(copy, &model.config);
    memcpy(copy->memory, model.memory, model.num_parameters * sizeof(float));
}

/* The fixture of the two-layer memit_apply tests: target vectors z of
 * the NF facts (malloc'ed) and random statistics of layers 1 and 2 with
 * their Cholesky factors. */
static float *two_layer_setup(const hparams *h, double *cov[2], double *chol[2])
{
    size_t C = model.config.n_embd, F = model.config.n_inner;
    float *z = malloc(NF * C * sizeof(float));
    ztarget_info info[5];
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, h, z, NULL, info, NULL, NULL) == 0);
    cov[0] = random_cov(1);
    cov[1] = random_cov(2);
    for (size_t l = 0; l < 2; l++) CHECK(spd_cholesky(cov[l], F, &chol[l]) == 1);
    return z;
}

/* memit_apply's passes start above the blocks its last update left as
 * they were; its update is the one its steps give by hand, each from
 * full passes in the model as it stands, to the bit: layer by layer,
 * joint, and joint with two of the facts kept where they are (their
 * rows weighted sqrt(protect_committed), residual 0), and the gap after
 * it. */
TEST(memit_apply_equals_its_steps_by_hand)
{
    hparams h;
    test_hparams(&h);
    h.mom2_update_weight = 3.0;
    h.protect_committed = 2.0;
    uint64_t saved = rng;
    size_t C = model.config.n_embd, F = model.config.n_inner;
    double *cov[2], *chol[2];
    float *z = two_layer_setup(&h, cov, chol);
    float *K[2] = {malloc(NF * F * sizeof(float)), malloc(NF * F * sizeof(float))};
    float *H = malloc(NF * C * sizeof(float));
    double *resid = malloc(NF * C * sizeof(double)), *dW = malloc(F * C * sizeof(double));
    double lev[2 * NF];
    for (int v = 0; v < 3; v++) {
        int joint = v > 0;
        size_t n = v == 2 ? 3 : NF, n_keep = NF - n; /* kept: the last two */
        h.joint_layers = (size_t)joint;
        gpt2_model applied, hand;
        copy_model(&applied);
        copy_model(&hand);
        memit_layer_stats st[2];
        double after = 0;
        CHECK(memit_apply(lm_of(&applied), reqs, n, reqs + n, n_keep, z, &h,
                          (const double *const *)cov, (const double *const *)chol,
                          st, &after, NULL, NULL) == 0);
        for (size_t li = 0; li < 2; li++) {
            size_t left = 2 - li, rows = joint ? left : 1;
            CHECK(memit_keys_layers(lm_of(&hand), reqs, n, h.layers + li, rows, 2, &h, K, H) == 0);
            float *Kk[2] = {K[0] + n * F, K[1] + n * F};
            if (n_keep)
                CHECK(memit_keys_layers(lm_of(&hand), reqs + n, n_keep, h.layers + li, rows, 2,
                                        &h, Kk, NULL) == 0);
            for (size_t j = 0; j < rows; j++)
                for (size_t i = 0; i < n_keep * F; i++)
                    Kk[j][i] *= (float)sqrt(h.protect_committed);
            memset(resid, 0, NF * C * sizeof(double));
            for (size_t i = 0; i < n * C; i++)
                resid[i] = ((double)z[i] - H[i]) / (joint ? 1.0 : (double)left);
            double *dWs[2] = {dW, NULL};
            if (joint)
                CHECK(memit_joint_delta((const double *const *)chol + li,
                                        (const float *const *)K, resid, NF, left, F,
                                        C, h.mom2_update_weight, dWs, lev) == 0);
            else
                CHECK(memit_layer_delta_factored(chol[li], K[0], resid, NF, F, C,
                                                 h.mom2_update_weight, dW, lev) == 0);
            float *W = hand.p.fcprojw + h.layers[li] * F * C;
            for (size_t i = 0; i < F * C; i++) W[i] = (float)((double)W[i] + dW[i]);
        }
        CHECK_MSG(!memcmp(applied.memory, hand.memory,
                          model.num_parameters * sizeof(float)),
                  "variant %d: the update differs from its steps", v);
        double gap = -1;
        CHECK(memit_gap(lm_of(&hand), reqs, n, &h, z, &gap) == 0);
        CHECK_MSG(gap == after, "variant %d: gap %.17g, by hand %.17g", v, after, gap);
        gpt2_model_free(&applied);
        gpt2_model_free(&hand);
    }
    for (size_t l = 0; l < 2; l++) { free(cov[l]); free(chol[l]); free(K[l]); }
    free(z); free(H); free(resid); free(dW);
    rng = saved;
}

/* memit_apply through the factors writes the direct solve's update */
TEST(memit_apply_factored_matches_direct)
{
    hparams h;
    test_hparams(&h);
    h.mom2_update_weight = 3.0;
    uint64_t saved = rng; /* the later tests' random data stay as they were */
    size_t C = model.config.n_embd, F = model.config.n_inner;
    double *cov[2], *chol[2];
    float *z = two_layer_setup(&h, cov, chol);
    const double *no_cov[2] = {NULL, NULL};
    gpt2_model direct, factored;
    copy_model(&direct);
    copy_model(&factored);
    memit_layer_stats st[2], st2[2];
    double after = 0, after2 = 0;
    CHECK(memit_apply(lm_of(&direct), reqs, NF, NULL, 0, z, &h, (const double *const *)cov,
                      NULL, st, &after, NULL, NULL) == 0);
    CHECK(memit_apply(lm_of(&factored), reqs, NF, NULL, 0, z, &h, no_cov,
                      (const double *const *)chol, st2, &after2, NULL, NULL) == 0);
    double worst = 0, scale = 0;
    for (size_t l = 1; l <= 2; l++)
        for (size_t i = 0; i < F * C; i++) {
            float a = direct.p.fcprojw[l * F * C + i] - model.p.fcprojw[l * F * C + i];
            float b = factored.p.fcprojw[l * F * C + i] - model.p.fcprojw[l * F * C + i];
            worst = fmax(worst, fabs((double)a - b));
            scale = fmax(scale, fabs((double)a));
        }
    CHECK_MSG(scale > 0 && worst < 1e-4 * scale, "worst %g of %g", worst, scale);
    CHECK_NEAR(after2, after, 1e-4 * after);
    for (size_t l = 0; l < 2; l++) CHECK_NEAR(st2[l].leverage, st[l].leverage, 1e-6);
    gpt2_model_free(&direct);
    gpt2_model_free(&factored);
    for (size_t l = 0; l < 2; l++) { free(cov[l]); free(chol[l]); }
    free(z);
    rng = saved;
}

/* memit_apply with joint_layers: one solve for both layers moves the
 * block outputs toward z, as far as the layer-by-layer update or
 * further (it fits all layers' keys at once); it names what it cannot
 * use (no factored statistics, a null space). */
TEST(memit_apply_joint_moves_block_outputs_to_z)
{
    hparams h;
    test_hparams(&h);
    h.mom2_update_weight = 1.0;
    uint64_t saved = rng; /* the later tests' random data stay as they were */
    double *cov[2], *chol[2];
    float *z = two_layer_setup(&h, cov, chol);
    gpt2_model seq, joint;
    copy_model(&seq);
    copy_model(&joint);
    memit_layer_stats st[2], st2[2];
    double after_seq = 0, after_joint = 0;
    CHECK(memit_apply(lm_of(&seq), reqs, NF, NULL, 0, z, &h, (const double *const *)cov,
                      (const double *const *)chol, st, &after_seq, NULL, NULL) == 0);
    h.joint_layers = 1;
    CHECK(memit_apply(lm_of(&joint), reqs, NF, NULL, 0, z, &h, (const double *const *)cov,
                      (const double *const *)chol, st2, &after_joint, NULL, NULL) == 0);
    CHECK(st2[0].layer == 1 && st2[1].layer == 2);
    CHECK(st2[0].delta_norm > 0 && st2[1].delta_norm > 0);
    CHECK_NEAR(st2[0].resid_before, st[0].resid_before, 1e-6 * st[0].resid_before);
    CHECK_MSG(after_joint < 0.5 * st2[0].resid_before,
              "gap %g -> %g", st2[0].resid_before, after_joint);
    CHECK_MSG(after_joint < 1.5 * after_seq, "joint %g, layer by layer %g",
              after_joint, after_seq);
    for (size_t l = 0; l < 2; l++)
        CHECK(st2[l].leverage > 0 && st2[l].leverage < 1);
    /* without factors it says why; with a null space it refuses */
    const double *no_chol[2] = {chol[0], NULL};
    CHECK(memit_apply(lm_of(&joint), reqs, NF, NULL, 0, z, &h, (const double *const *)cov,
                      no_chol, st2, NULL, NULL, NULL) != 0);
    err_clear();
    h.nullspace_threshold = 0.01;
    CHECK(memit_apply(lm_of(&joint), reqs, NF, NULL, 0, z, &h, (const double *const *)cov,
                      (const double *const *)chol, st2, NULL, NULL, NULL) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "joint_layers") != NULL);
    err_clear();
    gpt2_model_free(&seq);
    gpt2_model_free(&joint);
    for (size_t l = 0; l < 2; l++) { free(cov[l]); free(chol[l]); }
    free(z);
    rng = saved;
}

/* memit_halve: a round that wrote too little is solved again toward
 * 1/2, 1/4, ... of its target shift (the first that writes
 * round_min_shift is kept), or taken back to the bit */
TEST(halving_solves_toward_a_share_of_the_shift_or_takes_the_round_back)
{
    hparams h;
    test_hparams(&h);
    h.mom2_update_weight = 1.0;
    uint64_t saved = rng; /* the later tests' random data stay as they were */
    size_t C = model.config.n_embd, F = model.config.n_inner, FC = F * C;
    double *cov[2], *chol[2];
    float *z = two_layer_setup(&h, cov, chol);
    const double *const *cv = (const double *const *)cov;
    const double *const *ch = (const double *const *)chol;
    gpt2_model edited, half;
    copy_model(&edited);
    copy_model(&half);
    float *start = malloc(2 * FC * sizeof(float)), *full = malloc(2 * FC * sizeof(float));
    for (size_t i = 0; i < 2; i++)
        memcpy(start + i * FC, model.p.fcprojw + h.layers[i] * FC, FC * sizeof(float));
    memit_layer_stats st[2], st2[2];
    double after = 0, gap = 0, step = -1, resid = -1, written = -2;
    CHECK(memit_apply(lm_of(&edited), reqs, NF, NULL, 0, z, &h, cv, ch, st, &after, NULL, NULL) == 0);
    double whole = memit_shift_written(st[0].resid_before, after, z, NF, C);
    for (size_t i = 0; i < 2; i++)
        memcpy(full + i * FC, edited.p.fcprojw + h.layers[i] * FC, FC * sizeof(float));
    CHECK(memit_gap(lm_of(&edited), reqs, NF, &h, z, &gap) == 0);
    CHECK_NEAR(gap, after, 1e-9 * after);
    /* the update toward half the shift, solved here from the model before */
    float *K = malloc(NF * F * sizeof(float)), *h0 = malloc(NF * C * sizeof(float));
    float *zhalf = malloc(NF * C * sizeof(float));
    CHECK(memit_keys(lm_of(&model), reqs, NF, 2, 2, &h, K, h0) == 0);
    for (size_t j = 0; j < NF * C; j++) zhalf[j] = h0[j] + 0.5f * (z[j] - h0[j]);
    CHECK(memit_apply(lm_of(&half), reqs, NF, NULL, 0, zhalf, &h, cv, ch, st2, NULL, NULL, NULL) == 0);
    /* asking for no more than nothing: the first halving is kept */
    h.round_halvings = 3;
    h.round_min_shift = 0;
    CHECK(memit_halve(lm_of(&edited), reqs, NF, NULL, 0, z, &h, cv, ch, start, st2,
                      st[0].resid_before, &step, &resid, &written) == 0);
    CHECK_MSG(step == 0.5, "step %g", step);
    for (size_t i = 0; i < 2; i++)
        CHECK(memcmp(edited.p.fcprojw + h.layers[i] * FC,
                     half.p.fcprojw + h.layers[i] * FC, FC * sizeof(float)) == 0);
    CHECK(memit_gap(lm_of(&edited), reqs, NF, &h, z, &gap) == 0);
    CHECK_NEAR(resid, gap, 1e-12);
    CHECK_NEAR(written, memit_shift_written(st[0].resid_before, gap, z, NF, C), 1e-12);
    CHECK_MSG(written > 0 && written < whole, "half wrote %g, the whole %g",
              written, whole);
    /* a share no update can write (round_min_shift 2), or no halvings:
     * the round is taken back to the bit */
    size_t tries[2][2] = {{3, 2}, {0, 0}}; /* round_halvings, round_min_shift */
    for (size_t c = 0; c < 2; c++) {
        for (size_t i = 0; i < 2; i++)
            memcpy(edited.p.fcprojw + h.layers[i] * FC, full + i * FC, FC * sizeof(float));
        h.round_halvings = tries[c][0];
        h.round_min_shift = (double)tries[c][1];
        CHECK(memit_halve(lm_of(&edited), reqs, NF, NULL, 0, z, &h, cv, ch, start, st2,
                          st[0].resid_before, &step, &resid, &written) == 0);
        CHECK_MSG(step == 0, "case %zu: step %g", c, step);
        for (size_t i = 0; i < 2; i++)
            CHECK(memcmp(edited.p.fcprojw + h.layers[i] * FC, start + i * FC,
                         FC * sizeof(float)) == 0);
    }
    gpt2_model_free(&edited);
    gpt2_model_free(&half);
    for (size_t l = 0; l < 2; l++) { free(cov[l]); free(chol[l]); }
    free(start);
    free(full);
    free(K);
    free(h0);
    free(zhalf);
    free(z);
    rng = saved;
}

TEST(memit_moves_block_outputs_to_z)
{
    hparams h;
    test_hparams(&h);
    h.mom2_update_weight = 1.0;
    size_t C = model.config.n_embd, F = model.config.n_inner;
    float *z = malloc(NF * C * sizeof(float)), *h0 = malloc(NF * C * sizeof(float));
    float *K = malloc(NF * F * sizeof(float)), *H = malloc(NF * C * sizeof(float));
    ztarget_info info[5];
    CHECK(ztarget_compute(lm_of(&model), reqs, NF, 2, &h, z, h0, info, NULL, NULL) == 0);
    double *cov[2] = {random_cov(1), random_cov(2)};
    gpt2_model edited;
    copy_model(&edited);
    memit_layer_stats st[2];
    double after_mean = -1, after_sum = 0;
    CHECK(memit_apply(lm_of(&edited), reqs, NF, NULL, 0, z, &h, (const double *const *)cov, NULL,
                      st, &after_mean, NULL, NULL) == 0);
    CHECK(st[0].layer == 1 && st[1].layer == 2);
    CHECK(st[0].delta_norm > 0 && st[1].delta_norm > 0);
    CHECK(memit_keys(lm_of(&edited), reqs, NF, 2, 2, &h, K, H) == 0);
    for (size_t f = 0; f < NF; f++) {
        double before = 0, after = 0;
        for (size_t c = 0; c < C; c++) {
            before += pow(z[f * C + c] - h0[f * C + c], 2);
            after += pow(z[f * C + c] - H[f * C + c], 2);
        }
        CHECK_MSG(after < 0.25 * before, "fact %zu: |z-h|^2 %g -> %g", f,
                  before, after);
        after_sum += sqrt(after);
    }
    /* the reported leftover is the one measured here */
    CHECK_NEAR(after_mean, after_sum / NF, 1e-4 * st[0].resid_before);
    CHECK(after_mean < 0.5 * st[0].resid_before);
    for (size_t l = 0; l < 2; l++)
        CHECK_MSG(st[l].leverage > 0 && st[l].leverage < 1, "leverage %g",
                  st[l].leverage);
    /* only mlp.c_proj of layers 1 and 2 changed */
    size_t changed_elsewhere = 0, L = model.config.n_layer;
    for (size_t i = 0; i < model.num_parameters; i++) {
        const float *w = model.memory + i;
        int in_proj = 0;
        for (size_t l = 1; l <= 2; l++) {
            const float *p = model.p.fcprojw + l * F * C;
            in_proj |= w >= p && w < p + F * C;
        }
        if (!in_proj && model.memory[i] != edited.memory[i]) changed_elsewhere++;
    }
    (void)L;
    CHECK(changed_elsewhere == 0);
    gpt2_model_free(&edited);
    free(cov[0]); free(cov[1]); free(z); free(h0); free(K); free(H);
}

/* Committed edits kept (protect_committed): their keys are rows with
 * residual 0, so the update maps them (nearly) to no change, while
 * without them the new edits' update moves what they read. One layer
 * (2), so that the kept keys are the same before and after. Returns
 * ||dW^T k|| over the kept keys K (2, F); *new_gap the new edits' mean
 * ||z - h|| after. */
static double kept_drift(const hparams *h, const double *cov_mean,
                         const double *cov_chol, const float *z,
                         const editreq *keep, size_t n_keep,
                         const float *K, double *new_gap)
{
    size_t C = model.config.n_embd, F = model.config.n_inner;
    const double *cov[1] = {cov_mean}, *chol[1] = {cov_chol};
    gpt2_model edited;
    copy_model(&edited);
    memit_layer_stats st[1];
    CHECK(memit_apply(lm_of(&edited), reqs, 3, keep, n_keep, z, h,
                      (const double *const *)cov, cov_chol ? chol : NULL, st,
                      new_gap, NULL, NULL) == 0);
    const float *w0 = model.p.fcprojw + 2 * F * C, *w1 = edited.p.fcprojw + 2 * F * C;
    double drift = 0;
    for (size_t f = 0; f < 2; f++)
        for (size_t c = 0; c < C; c++) {
            double d = 0;
            for (size_t i = 0; i < F; i++)
                d += (double)K[f * F + i] * ((double)w1[i * C + c] - w0[i * C + c]);
            drift += d * d;
        }
    gpt2_model_free(&edited);
    return sqrt(drift);
}

TEST(kept_edits_stay_where_they_were)
{
    hparams h;
    test_hparams(&h);
    h.layers[0] = 2;
    h.n_layers = 1;
    h.mom2_update_weight = 1.0;
    h.protect_committed = 1.0;
    size_t C = model.config.n_embd, F = model.config.n_inner;
    float *z = malloc(NF * C * sizeof(float)), *h0 = malloc(NF * C * sizeof(float));
    float *K = malloc(NF * F * sizeof(float));
    ztarget_info info[5];
    CHECK(ztarget_compute(lm_of(&model), reqs, 3, 2, &h, z, h0, info, NULL, NULL) == 0);
    CHECK(memit_keys(lm_of(&model), reqs + 3, 2, 2, 2, &h, K, NULL) == 0);
    double gap_free = 0, gap_kept = 0;
    /* one set of statistics for both runs: only the kept rows differ */
    double *cov = random_cov(1), *chol = NULL;
    double moved = kept_drift(&h, cov, NULL, z, NULL, 0, K, &gap_free);
    double kept = kept_drift(&h, cov, NULL, z, reqs + 3, 2, K, &gap_kept);
    CHECK_MSG(moved > 0, "moved %g", moved);
    CHECK_MSG(kept < 0.1 * moved, "kept edits moved %g, %g when not kept",
              kept, moved);
    /* the joint solve keeps them as well */
    CHECK(spd_cholesky(cov, F, &chol) == 1);
    h.joint_layers = 1;
    double gap_joint = 0;
    double kept_joint = kept_drift(&h, cov, chol, z, reqs + 3, 2, K, &gap_joint);
    CHECK_MSG(kept_joint < 0.1 * moved, "joint: kept edits moved %g, %g when "
              "not kept", kept_joint, moved);
    CHECK_NEAR(gap_joint, gap_kept, 1e-3 * gap_kept);
    free(cov);
    free(chol);
    /* the new edits are still written (a little less: fewer directions) */
    CHECK_MSG(gap_kept < 1.5 * gap_free, "gap %g kept, %g not", gap_kept,
              gap_free);
    free(z); free(h0); free(K);
}

TEST(rome_reaches_z_on_the_bare_prompt)
{
    hparams h;
    test_hparams(&h);
    h.n_prefixes = 0;
    size_t C = model.config.n_embd, F = model.config.n_inner, layer = 2;
    editreq one = reqs[0];
    one.n_rewrite = 1; /* bare prompt only: k* is the bare prompt's key */
    editreq_seq seqs[2] = {reqs[0].seq[0], reqs[0].seq[2]};
    one.seq = seqs;
    float z[16], h0[16], K[64], H[16];
    (void)F;
    ztarget_info info;
    CHECK(ztarget_compute(lm_of(&model), &one, 1, layer, &h, z, h0, &info, NULL, NULL) == 0);
    double *cov = random_cov(layer);
    gpt2_model edited;
    copy_model(&edited);
    memit_layer_stats st;
    CHECK(rome_apply(lm_of(&edited), &one, z, layer, &h, cov, &st) == 0);
    CHECK(memit_keys(lm_of(&edited), &one, 1, layer, layer, &h, K, H) == 0);
    double err = 0, move = 0;
    for (size_t c = 0; c < C; c++) {
        err = fmax(err, fabs(H[c] - z[c]));
        move = fmax(move, fabs(z[c] - h0[c]));
    }
    CHECK(move > 1e-3);
    CHECK_MSG(err < 1e-3 * (1 + move), "max |h - z| = %g", err);
    gpt2_model_free(&edited);
    free(cov);
}

int main(void)
{
    RUN(spd_solve_matches_naive);
    RUN(spd_is_definite_tells_singular_from_definite);
    RUN(spd_add_ridge_makes_a_dead_unit_definite);
    RUN(factored_layer_delta_matches_direct_and_naive);
    RUN(layer_delta_satisfies_normal_equations);
    RUN(joint_layer_delta_matches_naive_and_normal_equations);
    RUN(leverage_is_bounded_by_the_rank_of_the_keys);
    RUN(keystats_sum_fast_matches_naive_and_round_trips);
    RUN(keystats_sum_decodes_across_tiles_and_takes_the_mean);
    setup();
    RUN(keys_of_several_layers_in_one_pass_equal_each_layers_own);
    RUN(z_is_identical_with_one_and_two_threads_and_lowers_the_loss);
    RUN(a_fact_steps_alike_in_a_group_and_alone);
    RUN(a_group_in_chunks_steps_as_groups_of_its_chunks);
    RUN(memit_apply_factored_matches_direct);
    RUN(memit_apply_equals_its_steps_by_hand);
    RUN(memit_apply_joint_moves_block_outputs_to_z);
    RUN(halving_solves_toward_a_share_of_the_shift_or_takes_the_round_back);
    RUN(hparams_default_layers_by_family_and_depth);
    RUN(memit_moves_block_outputs_to_z);
    RUN(kept_edits_stay_where_they_were);
    RUN(rome_reaches_z_on_the_bare_prompt);
    for (size_t f = 0; f < NF; f++) editreq_free(&reqs[f]);
    gpt2_model_free(&model);
    return harness_summary();
}
