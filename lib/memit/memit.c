/* memit: the layer-by-layer least-squares update of MEMIT and the
 * rank-one update of ROME (see memit.h; kmeng01/memit memit_main.py and
 * rome/rome_main.py are the references). Linear algebra in float64
 * through BLAS/LAPACK, as the reference does it. */
#include "memit/memit.h"
#include "base/errors.h"
#include "base/threads.h"
#include "memit/nullspace.h"
#include "memit/spd.h"
#include "memit/memit_naive.h"
#include "memit/spd_naive.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds dW (F, C, float64) to the layer's edited matrix (in its stored
 * layout, each weight rounded to its stored dtype: lm.h) and measures
 * the realized change. */
static int add_update(lm_model *m, size_t layer, const double *dW,
                      memit_layer_stats *st)
{
    size_t F = m->config.n_inner, C = m->config.n_embd;
    lm_edit_view v;
    int rc = lm_edit_view_get(m, layer, &v);
    if (rc) return rc;
    double dn = 0, wn = 0, mx = 0;
    for (size_t f = 0; f < F; f++)
        for (size_t c = 0; c < C; c++) {
            float *w = v.w + f * v.key_stride + c * v.out_stride;
            float before = *w;
            *w = lm_round_value(v.stored,
                                (float)((double)before + dW[f * C + c]));
            double d = (double)*w - before; /* the realized change */
            dn += d * d;
            wn += (double)before * before;
            if (fabs(d) > mx) mx = fabs(d);
        }
    st->layer = layer;
    st->delta_norm = sqrt(dn);
    st->rel_norm = wn > 0 ? sqrt(dn / wn) : 0;
    st->max_abs = mx;
    return 0;
}

/* Mean over the n edits of ||z - H|| (rows of C); when resid is not NULL
 * it also gets (z - H) / split, the share one layer is asked to write. */
static double mean_gap(const float *z, const float *H, size_t n, size_t C,
                       double *resid, double split)
{
    double total = 0;
    for (size_t f = 0; f < n; f++) {
        double s = 0;
        for (size_t c = 0; c < C; c++) {
            double d = (double)z[f * C + c] - H[f * C + c];
            if (resid) resid[f * C + c] = d / split;
            s += d * d;
        }
        total += sqrt(s);
    }
    return n ? total / (double)n : 0;
}

/* memit_gap with the caller's scratch space, K (n, F) and H (n, C),
 * and pass cache (may be NULL) */
static int gap_with(const lm_model *m, const editreq *r, size_t n,
                    const hparams *h, const float *z, float *K, float *H,
                    memit_keys_cache *pc, double *gap)
{
    size_t zlayer = h->layers[h->n_layers - 1];
    int rc = memit_keys_cached(m, r, n, &zlayer, 1, zlayer, h, &K, H, pc, 0);
    if (!rc) *gap = mean_gap(z, H, n, m->config.n_embd, NULL, 1);
    return rc;
}

/* leverage[f] = k_f . X[:, f] (X is (F, n), A^-1 K^T) */
static void leverages(const float *K, const double *X, size_t n, size_t F,
                      double *leverage)
{
    for (size_t f = 0; leverage && f < n; f++) {
        double s = 0;
        for (size_t i = 0; i < F; i++) s += (double)K[f * F + i] * X[i * n + f];
        leverage[f] = s;
    }
}

/* X (F, n) = K^T in float64: the keys (n, F) as right-hand sides */
static void keys_as_columns(const float *K, size_t n, size_t F, double *X)
{
    for (size_t f = 0; f < n; f++)
        for (size_t i = 0; i < F; i++) X[i * n + f] = K[f * F + i];
}

/* ERR_NUMERIC unless every entry of x (count) is finite */
static int check_finite(const double *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return err_set(ERR_NUMERIC, "the solution is not finite");
    return 0;
}

/* S (n, n) row-major holds the upper Cholesky factor of an SPD matrix
 * (spd_solve leaves it so); on return its upper triangle is the
 * inverse's */
static int inverse_from_factor(double *S, size_t n)
{
    lapack_int info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'U', (lapack_int)n,
                                     S, (lapack_int)n);
    return info ? err_set(ERR_NUMERIC, "dpotri failed (%d)", (int)info) : 0;
}

int memit_layer_delta(const double *cov_mean, const float *K,
                      const double *resid, size_t n, size_t F, size_t C,
                      double lambda, double *dW, double *leverage)
{
    double *A = malloc(F * F * sizeof(double));
    double *X = calloc(F * (n ? n : 1), sizeof(double)); /* (F, n) */
    int rc = A && X ? 0 : ERR_NOMEM;
    if (!rc) {
        for (size_t i = 0; i < F * F; i++) A[i] = lambda * cov_mean[i];
        keys_as_columns(K, n, F, X);
        /* A += K^T K (upper triangle; dposv reads only that) */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)F, (int)n,
                    1.0, X, (int)n, 1.0, A, (int)F);
        rc = spd_solve(A, X, F, n);
    }
    if (!rc) { /* dW (F, C) = X (F, n) resid (n, C) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)F, (int)C,
                    (int)n, 1.0, X, (int)n, resid, (int)C, 0.0, dW, (int)C);
        leverages(K, X, n, F, leverage);
    }
    free(A);
    free(X);
    return rc;
}

int memit_layer_delta_factored(const double *cov_chol, const float *K,
                               const double *resid, size_t n, size_t F,
                               size_t C, double lambda, double *dW,
                               double *leverage)
{
    /* the joint update of one layer: its (n, n) system is I + K Y and
     * its leverage diag(K Y S^-1) = diag((S - I) S^-1) = 1 - diag S^-1 */
    return memit_joint_delta(&cov_chol, &K, resid, n, 1, F, C, lambda, &dW,
                             leverage);
}

int memit_layer_delta_naive(const double *cov_mean, const float *K,
                            const double *resid, size_t n, size_t F,
                            size_t C, double lambda, double *dW,
                            double *leverage)
{
    double *A = malloc(F * F * sizeof(double));
    double *X = malloc(F * (n ? n : 1) * sizeof(double));
    int rc = A && X ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < F; i++) {
        for (size_t j = 0; j < F; j++) {
            double s = lambda * cov_mean[i * F + j];
            for (size_t f = 0; f < n; f++)
                s += (double)K[f * F + i] * K[f * F + j];
            A[i * F + j] = s;
        }
        for (size_t f = 0; f < n; f++) X[i * n + f] = K[f * F + i];
    }
    if (!rc) rc = spd_solve_naive(A, X, F, n);
    for (size_t i = 0; !rc && i < F; i++)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t f = 0; f < n; f++) s += X[i * n + f] * resid[f * C + c];
            dW[i * C + c] = s;
        }
    if (!rc) leverages(K, X, n, F, leverage);
    free(A);
    free(X);
    return rc;
}

int memit_layer_delta_nullspace(const double *cov_mean, const float *K,
                                const double *resid, size_t n, size_t F,
                                size_t C, double lambda, double threshold,
                                double *dW, double *leverage, size_t *dim)
{
    nullspace ns;
    int rc = nullspace_init(&ns, cov_mean, F, threshold);
    if (rc) return rc;
    size_t m = ns.m;
    float *Kp = malloc(n * m * sizeof(float) + 1);
    double *diag = calloc(m * m, sizeof(double)); /* C in the basis */
    double *dWp = malloc(m * C * sizeof(double));
    rc = Kp && diag && dWp ? 0 : err_set(ERR_NOMEM, "out of memory");
    if (!rc) rc = nullspace_project(&ns, K, n, Kp);
    if (!rc) {
        for (size_t j = 0; j < m; j++) diag[j * m + j] = ns.eig[j];
        rc = memit_layer_delta(diag, Kp, resid, n, m, C, lambda, dWp,
                               leverage);
    }
    if (!rc) nullspace_lift(&ns, dWp, C, dW);
    if (dim) *dim = m;
    free(Kp);
    free(diag);
    free(dWp);
    nullspace_free(&ns);
    return rc;
}

int memit_joint_delta(const double *const *cov_chol, const float *const *K,
                      const double *resid, size_t n, size_t nl, size_t F,
                      size_t C, double lambda, double *const *dW,
                      double *leverage)
{
    if (!(lambda > 0))
        return err_set(ERR_INVALID, "the factored update needs "
                       "mom2_update_weight > 0");
    if (!n) {
        for (size_t l = 0; l < nl; l++)
            if (dW[l]) memset(dW[l], 0, F * C * sizeof(double));
        return 0;
    }
    size_t n_asked = 0; /* layers whose update is formed */
    for (size_t l = 0; l < nl; l++) n_asked += dW[l] != NULL;
    /* (F, n) blocks: the X_l of each layer asked for kept in X_asked, the
     * others' in X in turn */
    double *X = malloc((n_asked < nl ? F * n : 1) * sizeof(double));
    double *X_asked = malloc((n_asked ? n_asked : 1) * F * n * sizeof(double));
    double *M = malloc(nl * n * n * sizeof(double)); /* nl blocks (n, n) */
    double *S = calloc(n * n, sizeof(double));
    double *Q = malloc(n * C * sizeof(double));
    int rc = X && X_asked && M && S && Q ? 0
                                        : err_set(ERR_NOMEM, "out of memory");
    double scale = 1 / sqrt(lambda);
    for (size_t l = 0, asked = 0; !rc && l < nl; l++) {
        double *Ml = M + l * n * n, *Xl = dW[l] ? X_asked + asked++ * F * n : X;
        /* with lambda C_l = lambda U^T U: X = U^-T K_l^T / sqrt(lambda),
         * so that M_l = K_l (lambda C_l)^-1 K_l^T = X^T X (one triangular
         * solve and a rank-n product) and S = I + sum of the M_l */
        keys_as_columns(K[l], n, F, Xl);
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans,
                    CblasNonUnit, (int)F, (int)n, scale, cov_chol[l], (int)F,
                    Xl, (int)n);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)F,
                    1.0, Xl, (int)n, 0.0, Ml, (int)n);
        for (size_t i = 0; i < n; i++) /* the lower triangle, for leverage */
            for (size_t j = i; j < n; j++) {
                Ml[j * n + i] = Ml[i * n + j];
                S[i * n + j] += Ml[i * n + j];
            }
    }
    if (!rc) {
        for (size_t f = 0; f < n; f++) S[f * n + f] += 1;
        memcpy(Q, resid, n * C * sizeof(double));
        rc = spd_solve(S, Q, n, C); /* Q = S^-1 resid; S now its factor */
    }
    for (size_t l = 0, asked = 0; !rc && l < nl; l++) {
        if (!dW[l]) continue; /* not asked for */
        /* dW_l = (lambda C_l)^-1 K_l^T Q = U^-1 (X_l Q) / sqrt(lambda):
         * the product first, so that the second triangular solve has C
         * right-hand sides instead of n */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)F, (int)C,
                    (int)n, 1.0, X_asked + asked++ * F * n, (int)n, Q, (int)C, 0.0,
                    dW[l], (int)C);
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans,
                    CblasNonUnit, (int)F, (int)C, scale, cov_chol[l], (int)F,
                    dW[l], (int)C);
        rc = check_finite(dW[l], F * C);
    }
    if (!rc && leverage) {
        /* what layer l writes at the keys is M_l S^-1 resid: the
         * diagonal is each key's share from that layer; over the layers
         * they add up to 1 - diag S^-1, as for one layer */
        rc = inverse_from_factor(S, n);
        for (size_t i = 0; !rc && i < n; i++) /* S^-1 in full */
            for (size_t j = 0; j < i; j++) S[i * n + j] = S[j * n + i];
        for (size_t l = 0; !rc && l < nl; l++) {
            const double *Ml = M + l * n * n;
            for (size_t f = 0; f < n; f++) /* S^-1 is symmetric: row f */
                leverage[l * n + f] = cblas_ddot((int)n, Ml + f * n, 1,
                                                 S + f * n, 1);
        }
    }
    free(X);
    free(X_asked);
    free(M);
    free(S);
    free(Q);
    return rc;
}

int memit_joint_delta_naive(const double *const *cov_mean,
                            const float *const *K, const double *resid,
                            size_t n, size_t nl, size_t F, size_t C,
                            double lambda, double *const *dW,
                            double *leverage)
{
    /* one layer of nl * F units: the keys side by side, the statistics
     * block-diagonal */
    size_t W = nl * F;
    float *Kc = calloc(n * W + 1, sizeof(float));
    double *cov = calloc(W * W, sizeof(double));
    double *dWc = malloc(W * C * sizeof(double));
    int rc = Kc && cov && dWc ? 0 : ERR_NOMEM;
    for (size_t l = 0; !rc && l < nl; l++) {
        for (size_t f = 0; f < n; f++)
            for (size_t i = 0; i < F; i++)
                Kc[f * W + l * F + i] = K[l][f * F + i];
        for (size_t i = 0; i < F; i++)
            for (size_t j = 0; j < F; j++)
                cov[(l * F + i) * W + l * F + j] = cov_mean[l][i * F + j];
    }
    if (!rc) rc = memit_layer_delta_naive(cov, Kc, resid, n, W, C, lambda,
                                          dWc, leverage);
    for (size_t l = 0; !rc && l < nl; l++)
        memcpy(dW[l], dWc + l * F * C, F * C * sizeof(double));
    free(Kc);
    free(cov);
    free(dWc);
    return rc;
}

/* The keys of the kept edits at nlay layers into K[j] + at (n_keep, F),
 * each scaled by sqrt(weight): rows of the least-squares problem whose
 * residual is 0. Through their own pass cache, keeping the input of
 * block save (keys_layers_cached). */
static int kept_keys(const lm_model *m, const editreq *keep, size_t n_keep,
                     const size_t *layers, size_t nlay, size_t zlayer,
                     const hparams *h, float *const *K, size_t at,
                     memit_keys_cache *pc, size_t save)
{
    size_t F = m->config.n_inner;
    float **Kat = malloc(nlay * sizeof *Kat + 1);
    if (!Kat) return ERR_NOMEM;
    for (size_t j = 0; j < nlay; j++) Kat[j] = K[j] + at * F;
    int rc = memit_keys_cached(m, keep, n_keep, layers, nlay, zlayer, h, Kat,
                               NULL, pc, save);
    float w = (float)sqrt(h->protect_committed);
    for (size_t j = 0; !rc && j < nlay; j++)
        for (size_t i = 0; i < n_keep * F; i++) Kat[j][i] *= w;
    free(Kat);
    return rc;
}

/* Why lambda C + K^T K is singular, as advice the user can act on: with
 * C itself singular (its keys do not span the F MLP units: too little or
 * too uniform text for this width) no lambda helps; otherwise the keys
 * need more weight on C. */
static int explain_singular(const double *cov_mean, size_t F, size_t layer,
                            double lambda)
{
    int definite = lambda > 0 ? spd_is_definite(cov_mean, F) : 1;
    if (definite < 0) return definite;
    if (!definite)
        return err_set(ERR_NUMERIC, "layer %zu: the key statistics are "
                       "singular (their keys do not span the %zu MLP units); "
                       "raising mom2_update_weight cannot help: compute them "
                       "over more, more varied text (stamp stats --corpus "
                       "FILE --samples N), or, when the corpus is all there "
                       "is (units that never fire on it), add a ridge "
                       "(--set mom2_ridge=0.01)", layer, F);
    return err_set(ERR_NUMERIC, "layer %zu: the update system is singular; "
                   "compute more key statistics or raise mom2_update_weight",
                   layer);
}

/* Why joint_layers cannot be used with these settings, or 0. */
static int check_joint(const hparams *h, const double *const *cov_mean,
                       const double *const *cov_chol, size_t F)
{
    if (h->nullspace_threshold > 0)
        return err_set(ERR_INVALID, "joint_layers and nullspace_threshold "
                       "cannot be used together");
    if (!(h->mom2_update_weight > 0))
        return err_set(ERR_INVALID, "joint_layers needs mom2_update_weight > 0");
    for (size_t li = 0; li < h->n_layers; li++)
        if (!cov_chol || !cov_chol[li])
            return cov_mean && cov_mean[li]
                ? explain_singular(cov_mean[li], F, h->layers[li],
                                   h->mom2_update_weight)
                : err_set(ERR_INVALID, "layer %zu: no factored key statistics "
                          "for the joint update", h->layers[li]);
    return 0;
}

/* One layer's update on its own (MEMIT's rule): through the null space,
 * the Cholesky factor or the direct solve, with errors that say why. */
static int layer_delta(const hparams *h, size_t li,
                       const double *const *cov_mean,
                       const double *const *cov_chol, const float *K,
                       const double *resid, size_t nk, size_t F, size_t C,
                       double *dW, double *lev, size_t *nullspace_dim)
{
    size_t layer = h->layers[li];
    double lambda = h->mom2_update_weight;
    int factored = cov_chol && cov_chol[li] && h->nullspace_threshold <= 0, rc;
    if (h->nullspace_threshold > 0)
        rc = memit_layer_delta_nullspace(cov_mean[li], K, resid, nk, F, C,
                                         lambda, h->nullspace_threshold, dW,
                                         lev, nullspace_dim);
    else if (factored)
        rc = memit_layer_delta_factored(cov_chol[li], K, resid, nk, F, C,
                                        lambda, dW, lev);
    else
        rc = memit_layer_delta(cov_mean[li], K, resid, nk, F, C, lambda, dW,
                               lev);
    if (rc == ERR_NUMERIC && !factored)
        return explain_singular(cov_mean[li], F, layer, lambda);
    if (rc == ERR_INVALID) { /* the threshold left no direction */
        char why[512];
        snprintf(why, sizeof why, "%s", err_message(rc));
        return err_set(rc, "layer %zu: %s", layer, why);
    }
    return rc;
}

int memit_apply(lm_model *m, const editreq *r, size_t n,
                const editreq *keep, size_t n_keep, const float *z,
                const hparams *h, const double *const *cov_mean,
                const double *const *cov_chol,
                memit_layer_stats *stats, double *resid_after,
                progress_fn progress, void *ctx)
{
    size_t F = m->config.n_inner, C = m->config.n_embd, nl = h->n_layers;
    size_t zlayer = h->layers[nl - 1], nk = n + n_keep;
    int joint = h->joint_layers != 0;
    if (joint) {
        int why = check_joint(h, cov_mean, cov_chol, F);
        if (why) return why;
    }
    /* keys of one layer, or with joint_layers of a layer and every later
     * one; only the first one's update is formed (dWs[0]) */
    size_t nK = joint ? nl : 1;
    float **K = calloc(nK, sizeof *K);
    double **dWs = calloc(nK, sizeof *dWs);
    float *H = malloc(n * C * sizeof(float) + 1);
    double *resid = calloc(nk * C + 1, sizeof(double)); /* (nk, C) */
    double *dW = malloc(F * C * sizeof(double));
    double *lev = malloc(nK * (nk ? nk : 1) * sizeof(double)); /* (nK, nk) */
    int rc = K && dWs && H && resid && dW && lev ? 0 : ERR_NOMEM;
    for (size_t j = 0; !rc && j < nK; j++)
        if (!(K[j] = malloc(nk * F * sizeof(float) + 1))) rc = ERR_NOMEM;
    if (!rc) dWs[0] = dW;
    /* each layer's update changes the blocks from it up only: the pass
     * at a step keeps the input of the block it is about to change, and
     * the next pass (the next step's, or the gap's) starts there */
    memit_keys_cache *pc = NULL, *pc_keep = NULL;
    if (!rc) rc = memit_keys_cache_new(&pc);
    if (!rc && n_keep) rc = memit_keys_cache_new(&pc_keep);
    for (size_t li = 0; !rc && li < nl; li++) {
        size_t layer = h->layers[li], left = nl - li;
        size_t rows = joint ? left : 1;
        if (progress) progress(ctx, "layer updates", li, nl);
        /* one forward pass reads the keys of every layer solved here */
        rc = memit_keys_cached(m, r, n, h->layers + li, rows, zlayer, h, K,
                               H, pc, layer);
        if (!rc && n_keep)
            rc = kept_keys(m, keep, n_keep, h->layers + li, rows, zlayer, h,
                           K, n, pc_keep, layer);
        if (rc) break;
        /* the kept edits' rows of resid stay 0: their outputs stay put.
         * One layer writes 1 / (layers left) of the shift; the joint
         * solve takes the whole shift and gives this layer its share */
        stats[li].resid_before = mean_gap(z, H, n, C, resid,
                                          joint ? 1.0 : (double)left);
        stats[li].nullspace_dim = 0;
        /* the solve's LAPACK bits depend on OpenBLAS's thread count:
         * never the automatic one (base/threads.h) */
        int before = threads_exact_begin();
        if (joint)
            rc = memit_joint_delta(cov_chol + li, (const float *const *)K,
                                   resid, nk, left, F, C,
                                   h->mom2_update_weight, dWs, lev);
        else
            rc = layer_delta(h, li, cov_mean, cov_chol, K[0], resid, nk, F, C,
                             dW, lev, &stats[li].nullspace_dim);
        threads_exact_end(before);
        if (!rc) rc = add_update(m, layer, dW, &stats[li]);
        if (rc) break;
        double ls = 0; /* this layer's leverages (row 0), the new edits' */
        for (size_t f = 0; f < n; f++) ls += lev[f];
        stats[li].leverage = n ? ls / (double)n : 0;
    }
    if (!rc && resid_after) /* what is left of z - h with every layer done */
        rc = gap_with(m, r, n, h, z, K[0], H, pc, resid_after);
    if (!rc && progress) progress(ctx, "layer updates", nl, nl);
    memit_keys_cache_free(pc);
    memit_keys_cache_free(pc_keep);
    for (size_t j = 0; K && j < nK; j++) free(K[j]);
    free(K);
    free(dWs);
    free(H);
    free(resid);
    free(dW);
    free(lev);
    return rc;
}

int memit_gap(const lm_model *m, const editreq *r, size_t n,
              const hparams *h, const float *z, double *gap)
{
    size_t F = m->config.n_inner, C = m->config.n_embd;
    float *K = malloc(n * F * sizeof(float) + 1);
    float *H = malloc(n * C * sizeof(float) + 1);
    int rc = K && H ? gap_with(m, r, n, h, z, K, H, NULL, gap) : ERR_NOMEM;
    free(K);
    free(H);
    return rc;
}

/* The edited matrices (h->layers') set to saved (n_layers, F * C, each
 * in its stored layout). */
static int set_edited(lm_model *m, const hparams *h, const float *saved)
{
    size_t FC = m->config.n_inner * m->config.n_embd;
    for (size_t i = 0; i < h->n_layers; i++) {
        lm_edit_view v;
        int rc = lm_edit_view_get(m, h->layers[i], &v);
        if (rc) return rc;
        memcpy(v.w, saved + i * FC, FC * sizeof(float));
    }
    return 0;
}

int memit_halve(lm_model *m, const editreq *r, size_t n,
                const editreq *keep, size_t n_keep, const float *z,
                const hparams *h, const double *const *cov_mean,
                const double *const *cov_chol, const float *start,
                memit_layer_stats *stats, double resid_before, double *step,
                double *resid_after, double *shift_written)
{
    size_t C = m->config.n_embd, F = m->config.n_inner;
    size_t zlayer = h->layers[h->n_layers - 1];
    float *h0 = malloc(n * C * sizeof(float) + 1);
    float *K = malloc(n * F * sizeof(float) + 1); /* scratch: keys, */
    float *H = malloc(n * C * sizeof(float) + 1); /* block outputs */
    float *zs = malloc(n * C * sizeof(float) + 1); /* the nearer targets */
    int rc = h0 && K && H && zs ? 0 : ERR_NOMEM;
    if (!rc) rc = set_edited(m, h, start);
    if (!rc && h->round_halvings)
        rc = memit_keys(m, r, n, zlayer, zlayer, h, K, h0);
    double share = 1;
    *step = 0;
    for (size_t t = 0; !rc && t < h->round_halvings; t++) {
        share /= 2;
        for (size_t j = 0; j < n * C; j++)
            zs[j] = h0[j] + (float)share * (z[j] - h0[j]);
        double gap;
        rc = memit_apply(m, r, n, keep, n_keep, zs, h, cov_mean, cov_chol,
                         stats, NULL, NULL, NULL);
        if (!rc) rc = gap_with(m, r, n, h, z, K, H, NULL, &gap);
        if (rc) break;
        double written = memit_shift_written(resid_before, gap, z, n, C);
        if (written >= h->round_min_shift) {
            *step = share;
            *resid_after = gap;
            *shift_written = written;
            break;
        }
        rc = set_edited(m, h, start);
    }
    free(h0);
    free(K);
    free(H);
    free(zs);
    return rc;
}

double memit_shift_written(double resid_before, double resid_after,
                           const float *z, size_t n, size_t C)
{
    double zn = 0; /* mean ||z||: the scale the shift is measured on */
    for (size_t f = 0; f < n; f++)
        zn += sqrt((double)cblas_sdot((int)C, z + f * C, 1, z + f * C, 1));
    zn = n ? zn / (double)n : 0;
    return resid_before > 1e-4 * zn ? 1 - resid_after / resid_before : 1;
}

int rome_apply(lm_model *m, const editreq *r, const float *z, size_t layer,
               const hparams *h, const double *cov_mean,
               memit_layer_stats *stats)
{
    size_t F = m->config.n_inner, C = m->config.n_embd;
    float *k = malloc(F * sizeof(float)), *hv = malloc(C * sizeof(float));
    double *A = malloc(F * F * sizeof(double)), *u = malloc(F * sizeof(double));
    double *dW = malloc(F * C * sizeof(double));
    int rc = k && hv && A && u && dW ? 0 : ERR_NOMEM;
    if (!rc) rc = memit_keys(m, r, 1, layer, layer, h, k, hv);
    if (!rc) {
        memcpy(A, cov_mean, F * F * sizeof(double));
        spd_add_ridge(A, F, h->rome_ridge);
        for (size_t i = 0; i < F; i++) u[i] = k[i];
        int before = threads_exact_begin(); /* as in memit_apply */
        rc = spd_solve(A, u, F, 1);
        threads_exact_end(before);
    }
    if (!rc) {
        double uk = 0;
        for (size_t i = 0; i < F; i++) uk += u[i] * k[i];
        if (!(fabs(uk) > 0) || !isfinite(uk)) {
            rc = err_set(ERR_NUMERIC, "rome: the key is orthogonal to its "
                         "statistics (u.k = %g)", uk);
        } else {
            for (size_t i = 0; i < F; i++)
                for (size_t c = 0; c < C; c++)
                    dW[i * C + c] = u[i] * ((double)z[c] - hv[c]) / uk;
            double s = 0;
            for (size_t c = 0; c < C; c++)
                s += ((double)z[c] - hv[c]) * ((double)z[c] - hv[c]);
            stats->resid_before = sqrt(s);
            rc = add_update(m, layer, dW, stats);
        }
    }
    free(k);
    free(hv);
    free(A);
    free(u);
    free(dW);
    return rc;
}
