/* spd: symmetric positive definite solves (see spd.h). */
#include "memit/spd.h"
#include "base/errors.h"
#include "memit/spd_naive.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int spd_solve(double *A, double *B, size_t n, size_t m)
{
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)n,
                                    (lapack_int)m, A, (lapack_int)n, B,
                                    (lapack_int)m);
    if (info > 0)
        return err_set(ERR_NUMERIC, "the system is singular (not positive "
                       "definite at row %d)", (int)info);
    if (info < 0)
        return err_set(ERR_INVALID, "dposv: bad argument %d", (int)-info);
    for (size_t i = 0; i < n * m; i++)
        if (!isfinite(B[i]))
            return err_set(ERR_NUMERIC, "the solution is not finite");
    return 0;
}

int spd_cholesky(const double *A, size_t n, double **U)
{
    *U = NULL;
    double *R = malloc(n * n * sizeof(double) + 1);
    if (!R) return err_set(ERR_NOMEM, "out of memory");
    memcpy(R, A, n * n * sizeof(double));
    /* row-major U is column-major L of the same (symmetric) matrix:
     * LAPACK works on R as it is, with no transposed copy in and out */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, R,
                                     (lapack_int)n);
    if (info < 0) {
        free(R);
        return err_set(ERR_INVALID, "dpotrf: bad argument %d", (int)-info);
    }
    if (info > 0) { free(R); return 0; }
    for (size_t i = 1; i < n; i++) /* the lower triangle is not U's */
        memset(R + i * n, 0, i * sizeof(double));
    *U = R;
    return 1;
}

int spd_cholesky_in_place(double *A, size_t n)
{
    /* as spd_cholesky: row-major upper is column-major lower, and dpotrf
     * 'L' references that triangle only */
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, A,
                                     (lapack_int)n);
    if (info < 0)
        return err_set(ERR_INVALID, "dpotrf: bad argument %d", (int)-info);
    return info == 0;
}

int spd_is_definite(const double *A, size_t n)
{
    double *U;
    int rc = spd_cholesky(A, n, &U);
    free(U);
    return rc;
}

void spd_add_ridge(double *A, size_t n, double ridge)
{
    if (!(ridge > 0) || n == 0) return;
    double trace = 0;
    for (size_t i = 0; i < n; i++) trace += A[i * n + i];
    for (size_t i = 0; i < n; i++) A[i * n + i] += ridge * trace / (double)n;
}

int spd_solve_naive(double *A, double *B, size_t n, size_t m)
{
    for (size_t col = 0; col < n; col++) {
        size_t piv = col;
        for (size_t r = col + 1; r < n; r++)
            if (fabs(A[r * n + col]) > fabs(A[piv * n + col])) piv = r;
        if (A[piv * n + col] == 0)
            return err_set(ERR_NUMERIC, "the system is singular");
        if (piv != col) {
            for (size_t k = 0; k < n; k++) {
                double t = A[col * n + k];
                A[col * n + k] = A[piv * n + k];
                A[piv * n + k] = t;
            }
            for (size_t k = 0; k < m; k++) {
                double t = B[col * m + k];
                B[col * m + k] = B[piv * m + k];
                B[piv * m + k] = t;
            }
        }
        for (size_t r = 0; r < n; r++) {
            if (r == col) continue;
            double f = A[r * n + col] / A[col * n + col];
            if (f == 0) continue;
            for (size_t k = col; k < n; k++) A[r * n + k] -= f * A[col * n + k];
            for (size_t k = 0; k < m; k++) B[r * m + k] -= f * B[col * m + k];
        }
    }
    for (size_t r = 0; r < n; r++)
        for (size_t k = 0; k < m; k++) B[r * m + k] /= A[r * n + r];
    return 0;
}
