/* nullspace: eigen-decomposition of a key keystats_sum and the change of
 * basis into and out of its null space (see nullspace.h). Float64, as
 * the rest of the solver. */
#include "memit/nullspace.h"
#include "base/errors.h"

#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

int nullspace_init(nullspace *ns, const double *cov, size_t F,
                   double threshold)
{
    memset(ns, 0, sizeof *ns);
    double *U = malloc(F * F * sizeof(double)), *w = malloc(F * sizeof(double));
    int rc = U && w ? 0 : err_set(ERR_NOMEM, "out of memory");
    if (!rc) {
        memcpy(U, cov, F * F * sizeof(double));
        /* eigenvalues ascending; eigenvectors in the columns of U */
        if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)F, U,
                           (lapack_int)F, w))
            rc = err_set(ERR_NUMERIC, "the eigenvalues of the key "
                         "statistics did not converge");
    }
    size_t m = 0;
    if (!rc) {
        while (m < F && w[m] < threshold * w[F - 1]) m++;
        if (m == 0)
            rc = err_set(ERR_INVALID, "no direction of the keys is below "
                         "nullspace_threshold %g of the largest", threshold);
    }
    if (!rc) {
        ns->basis = malloc(F * m * sizeof(double));
        ns->eig = malloc(m * sizeof(double));
        if (!ns->basis || !ns->eig)
            rc = err_set(ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        for (size_t i = 0; i < F; i++)
            memcpy(ns->basis + i * m, U + i * F, m * sizeof(double));
        memcpy(ns->eig, w, m * sizeof(double));
        ns->F = F;
        ns->m = m;
        ns->top = w[F - 1];
    }
    free(U);
    free(w);
    if (rc) nullspace_free(ns);
    return rc;
}

void nullspace_free(nullspace *ns)
{
    if (!ns) return;
    free(ns->basis);
    free(ns->eig);
    memset(ns, 0, sizeof *ns);
}

int nullspace_project(const nullspace *ns, const float *K, size_t n,
                      float *Kp)
{
    size_t F = ns->F, m = ns->m;
    double *Kd = malloc(n * F * sizeof(double) + 1);
    double *out = malloc(n * m * sizeof(double) + 1);
    int rc = Kd && out ? 0 : err_set(ERR_NOMEM, "out of memory");
    if (!rc) {
        for (size_t i = 0; i < n * F; i++) Kd[i] = K[i];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)m,
                    (int)F, 1.0, Kd, (int)F, ns->basis, (int)m, 0.0, out,
                    (int)m);
        for (size_t i = 0; i < n * m; i++) Kp[i] = (float)out[i];
    }
    free(Kd);
    free(out);
    return rc;
}

void nullspace_lift(const nullspace *ns, const double *dWp, size_t C,
                    double *dW)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ns->F,
                (int)C, (int)ns->m, 1.0, ns->basis, (int)ns->m, dWp, (int)C,
                0.0, dW, (int)C);
}
