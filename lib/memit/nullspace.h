/* nullspace: the directions of a layer's keys that ordinary text barely
 * uses, and MEMIT's update confined to them (AlphaEdit, Fang et al.
 * 2025: an update that leaves every key of ordinary text where it was
 * cannot disturb what the model knew). The null space of C = E[k k^T] is
 * spanned by its eigenvectors whose eigenvalue is below a share of the
 * largest; in that basis C is diagonal, so the confined update is the
 * plain MEMIT update of the projected keys (memit_layer_delta) lifted
 * back. */
#ifndef STAMP_NULLSPACE_H
#define STAMP_NULLSPACE_H

#include <stddef.h>

typedef struct {
    size_t F;      /* key size */
    size_t m;      /* directions kept (the null space's dimension) */
    double *basis; /* (F, m): orthonormal eigenvectors, as columns */
    double *eig;   /* (m): their eigenvalues of C, ascending */
    double top;    /* the largest eigenvalue of C */
} nullspace;

/* The null space of cov (F, F, symmetric): the eigenvectors whose
 * eigenvalue is below threshold * the largest (LAPACK dsyevd). The
 * caller frees it with nullspace_free. ERR_NUMERIC when the eigensolver
 * fails, ERR_INVALID when no direction is below the threshold. */
int nullspace_init(nullspace *ns, const double *cov, size_t F,
                   double threshold);
void nullspace_free(nullspace *ns);

/* Kp (n, m) = K (n, F) basis: the keys in null-space coordinates.
 * ERR_NOMEM when its workspace cannot be had. */
int nullspace_project(const nullspace *ns, const float *K, size_t n,
                      float *Kp);

/* dW (F, C) = basis dWp (m, C): an update of the coordinates lifted back
 * to the keys' space; every key outside the null space maps to 0. */
void nullspace_lift(const nullspace *ns, const double *dWp, size_t C,
                    double *dW);

#endif
