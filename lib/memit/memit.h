/* memit: the closed-form weight updates (docs/memit.md, step 2, and ROME).
 * Pure computation: takes the model (its edited matrices, GPT-2's
 * mlp.c_proj or the Llama family's mlp.down_proj, are updated in place
 * through lm_edit_view: model/lm.h), the edit requests, their target vectors z and the key
 * statistics; returns per-layer numbers. No I/O. */
#ifndef STAMP_MEMIT_H
#define STAMP_MEMIT_H

#include "memit/editreq.h"
#include "model/lm.h"
#include "memit/hparams.h"
#include "memit/memit_keys.h"
#include "base/progress.h"

typedef struct {
    size_t layer;
    double delta_norm;   /* ||dW||_F */
    double rel_norm;     /* ||dW||_F / ||W||_F */
    double max_abs;      /* max |dW| */
    double resid_before; /* mean ||z - h|| over the edits before this layer */
    double leverage;     /* mean over the edits of k_i^T A^-1 k_i: the share
                            of its own change the layer writes for an edit
                            (1: all of it; low when the batch's keys leave
                            no room to tell the edits apart) */
    size_t nullspace_dim; /* directions the update was confined to
                             (nullspace_threshold > 0), else 0 */
} memit_layer_stats;

/* MEMIT: spreads (z - h) over h->layers (ascending): for each layer l,
 * K from the current weights, resid = (Z - H) / (layers left),
 * (lambda C_l + K^T K) X = K^T solved in float64, dW = X resid^T added
 * to the edited matrix of layer l (dW[f, c] at the view's place of key
 * f and output c, rounded to the tensor's stored dtype).
 * keep (n_keep, may be 0): edits already in the model (the committed
 * facts) whose keys the update should leave mapped where they are: rows
 * of the least-squares problem with residual 0, weighted by
 * h->protect_committed.
 * With h->joint_layers a layer's share is not a set 1 / (layers left):
 * at each layer the update of it and of every later layer is solved
 * together against the whole Z - H (memit_joint_delta, keys from the
 * current weights) and this layer's part applied; it needs every
 * layer's cov_chol and no null space.
 * With h->nullspace_threshold > 0 each layer's update is confined to
 * the null space of C_l (nullspace.h): keys of ordinary text are left
 * where they were.
 * cov_mean[i] is C_l (F, F) of layers[i]. cov_chol (may be NULL) holds
 * their Cholesky factors (spd_cholesky; an entry may be NULL): a layer
 * with one is solved through it (memit_layer_delta_factored, the same
 * update in O(F^2 n)), and its cov_mean entry may then be NULL unless
 * nullspace_threshold is set. stats has n_layers entries.
 * *resid_after (may be NULL): mean ||z - h|| over the edits after the
 * last layer, to compare with stats[0].resid_before. */
int memit_apply(lm_model *m, const editreq *r, size_t n,
                const editreq *keep, size_t n_keep, const float *z,
                const hparams *h, const double *const *cov_mean,
                const double *const *cov_chol,
                memit_layer_stats *stats, double *resid_after,
                progress_fn progress, void *ctx);

/* *gap = mean ||z - h|| over the edits, h the output of the last edited
 * layer's block at each edit's lookup in the model as it is now (what
 * memit_apply's *resid_after measures). */
int memit_gap(const lm_model *m, const editreq *r, size_t n,
              const hparams *h, const float *z, double *gap);
/* The share of the target shift an update wrote: 1 - resid_after /
 * resid_before (stats[0].resid_before and memit_apply's *resid_after).
 * 1 when the z barely move from h (facts the model already says): there
 * is nothing to write, and rounding is not a share. */
double memit_shift_written(double resid_before, double resid_after,
                           const float *z, size_t n, size_t C);

/* A later round whose update wrote less than h->round_min_shift of the
 * shift left (below 0: it left the target vectors further away) is
 * solved again toward nearer targets: with h0 the outputs of the last
 * edited layer's block in the model before the round, whose edited
 * matrices (h->layers') were start (n_layers, F * C, each in its
 * stored layout), the
 * update from start toward h0 + share * (z - h0), share 1/2, 1/4, ...,
 * h->round_halvings times (the other arguments as memit_apply's). The
 * first whose memit_gap to z writes round_min_shift of resid_before is
 * kept: *step gets its share, *resid_after and *shift_written its
 * figures. When none does, *step is 0 and the tensors are start again,
 * to the bit (the round is taken back). Scaling the round's update
 * itself does not serve: in a layer-by-layer solve each layer's update
 * answers the ones before it, and a share of all of them can move the
 * targets further than the whole (measured in docs/world-models.md). */
int memit_halve(lm_model *m, const editreq *r, size_t n,
                const editreq *keep, size_t n_keep, const float *z,
                const hparams *h, const double *const *cov_mean,
                const double *const *cov_chol, const float *start,
                memit_layer_stats *stats, double resid_before, double *step,
                double *resid_after, double *shift_written);
/* One layer's least-squares update: with A = lambda * cov_mean + K^T K
 * (K is (n, F): one key per row), solves A X = K^T and returns
 * dW = X resid (F, C) in float64: the change of the edited matrix that
 * maps each key to its residual (n, C) while staying small along the
 * directions cov_mean says ordinary text uses. leverage (n, may be NULL)
 * gets k_i^T A^-1 k_i, the diagonal of the map from the residuals to what
 * dW writes at the keys (in [0, 1); they add up to at most rank K). */
int memit_layer_delta(const double *cov_mean, const float *K,
                      const double *resid, size_t n, size_t F, size_t C,
                      double lambda, double *dW, double *leverage);

/* The same update through the Cholesky factor U of cov_mean (C = U^T U,
 * upper; spd_cholesky), by the push-through identity
 *   (lambda C + K^T K)^-1 K^T = Y (I + K Y)^-1,  Y = (lambda C)^-1 K^T:
 * a triangular solve with n right-hand sides, an (n, n) system and a
 * triangular solve with C (dW = U^-1 (U^-T K^T (I + K Y)^-1 resid) /
 * lambda), O(F^2 n) instead of O(F^3) for each solve, so that the factor,
 * computed once, serves every round of a commit. leverage is
 * 1 - (I + K Y)^-1 on the diagonal. Needs lambda > 0 (ERR_INVALID). */
int memit_layer_delta_factored(const double *cov_chol, const float *K,
                               const double *resid, size_t n, size_t F,
                               size_t C, double lambda, double *dW,
                               double *leverage);

/* The same update confined to the null space of cov_mean (AlphaEdit;
 * nullspace.h): with P the projection onto its eigenvectors whose
 * eigenvalue is below threshold * the largest, solves
 * (P (lambda C + K^T K) P + (I - P)) X = P K^T; dW = X resid, so that
 * u^T dW = 0 for every eigenvector u outside the null space (a key of
 * ordinary text there changes nothing). *dim (may be NULL) gets the null
 * space's dimension. ERR_INVALID when no eigenvalue is below the
 * threshold. */
int memit_layer_delta_nullspace(const double *cov_mean, const float *K,
                                const double *resid, size_t n, size_t F,
                                size_t C, double lambda, double threshold,
                                double *dW, double *leverage, size_t *dim);

/* All the edited layers' updates in one solve, where memit_apply solves
 * them one after another. With the layers' keys K[l] (n, F) and their
 * statistics C_l, it minimises
 *   sum_l lambda tr(dW_l^T C_l dW_l) + || sum_l K_l dW_l - resid ||^2,
 * the least-squares problem of one layer whose units are all the
 * layers' side by side and whose statistics are block-diagonal
 * (memit_joint_delta_naive builds it so). With Y_l = (lambda C_l)^-1
 * K_l^T (through the Cholesky factors cov_chol[l], as in
 * memit_layer_delta_factored) and S = I + sum_l K_l Y_l (n, n):
 *   dW_l = Y_l S^-1 resid.
 * A batch whose keys crowd into few directions in one layer can then
 * take its room in another, instead of each layer writing its set share
 * of the shift. resid is the whole shift (n, C); dW[l] (F, C) each (an
 * entry may be NULL: that layer's update is not formed, which saves
 * its product and its triangular solve with C right-hand sides; every
 * layer costs one with n);
 * leverage (nl, n; may be NULL): row l holds diag(K_l Y_l S^-1), what
 * layer l writes at each key per unit of its shift (the rows add up to
 * 1 - diag S^-1). Needs lambda > 0 (ERR_INVALID). */
int memit_joint_delta(const double *const *cov_chol, const float *const *K,
                      const double *resid, size_t n, size_t nl, size_t F,
                      size_t C, double lambda, double *const *dW,
                      double *leverage);

/* ROME: one edit, one layer: u = (C + ridge) ^-1 k*, dW = u d^T / (u.k*)
 * with d = z - h, z found at block `layer`. */
int rome_apply(lm_model *m, const editreq *r, const float *z, size_t layer,
               const hparams *h, const double *cov_mean,
               memit_layer_stats *stats);

#endif
