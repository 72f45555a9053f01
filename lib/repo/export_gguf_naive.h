/* export_gguf_naive: slow, obviously correct twins of the GGUF export's
 * conversions, for the tests only (tests/unit/test_export_gguf.c):
 *
 * - the q/k row permutation written as numpy's reshape(n_head, 2, D/2,
 *   cols).swapaxes(1, 2).reshape(rows, cols), index by index;
 * - q8_0 in double precision: per block of 32, d = max|x| / 127 and
 *   q = round(x / d), half-way cases away from zero;
 * - the nearest f16 and bf16 by searching all 65536 bit patterns
 *   (ties to the even pattern). */
#ifndef STAMP_EXPORT_GGUF_NAIVE_H
#define STAMP_EXPORT_GGUF_NAIVE_H

#include "base/half.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* out (rows, cols) = in permuted, rows = n_head * D */
static inline void naive_qk_permute(float *out, const float *in, size_t rows,
                                    size_t cols, size_t n_head)
{
    size_t half = rows / n_head / 2;
    for (size_t h = 0; h < n_head; h++)      /* out[h][i][j] = in[h][j][i] */
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++)
                for (size_t c = 0; c < cols; c++)
                    out[((h * half + i) * 2 + j) * cols + c] =
                        in[((h * 2 + j) * half + i) * cols + c];
}

/* One block: *d (as a double) and q[32] */
static inline void naive_q8_0_block(const float *x, double *d, int q[32])
{
    double amax = 0;
    for (int i = 0; i < 32; i++)
        if (fabs((double)x[i]) > amax) amax = fabs((double)x[i]);
    *d = amax / 127;
    for (int i = 0; i < 32; i++) q[i] = *d ? (int)lround(x[i] / *d) : 0;
}

/* The finite pattern of the 16-bit format (to_float) nearest to x. */
static inline uint16_t naive_nearest16(float x, float (*to_float)(uint16_t))
{
    uint16_t best = 0;
    double bd = INFINITY;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = to_float((uint16_t)h);
        if (!isfinite(f)) continue;
        double dd = fabs((double)f - (double)x);
        if (dd < bd || (dd == bd && signbit(f) == signbit(x) && !(h & 1))) {
            bd = dd;
            best = (uint16_t)h;
        }
    }
    return best;
}

#endif
