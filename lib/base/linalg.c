/* linalg: the GPT-2 layer kernels (see linalg.h), after karpathy/llm.c's
 * train_gpt2.c, with every matmul on OpenBLAS sgemm and the weights in
 * Hugging Face's (IN, OUT) orientation; at the end, the Llama family's
 * kernels, whose weights stay in their stored dtype (nn.Linear's (OUT,
 * IN) orientation) and are converted as they are multiplied.
 *
 * Assumptions: every size fits in an int (BLAS's index type); pointers
 * of one call do not alias unless a contract says so. Parallel loops use
 * `if(!omp_in_parallel())` so that a kernel called from inside a
 * parallel region (one z optimisation per thread, say) stays on its
 * thread. Column sums (bias and LayerNorm weight gradients) are split
 * over fixed chunks of columns, each summed over rows in row order, so
 * that the result does not depend on the number of threads.
 *
 * The same goes for the matmuls: OpenBLAS's result depends on how many
 * threads it splits a call over (its blocking changes), so a matmul is
 * cut into output tiles whose shape depends only on the matrix shape,
 * and each tile is one single-threaded sgemm inside our own parallel
 * loop (attention: one per (batch, head)). Outputs are then bitwise the
 * same for any number of threads, inside or outside a parallel region,
 * at no cost in speed (measured). */
#include "base/linalg.h"

#include "base/cpu_features.h"
#include "base/linalg_naive.h"
#include "base/half.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GELU_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_CUBE 0.044715f
#define COL_CHUNK 64 /* columns per task of a column-sum */
#define TILE_M 256    /* largest output tile of a matmul, rows */
#define TILE_N 1024   /* and columns */
/* OpenBLAS runs a gemm of at most 65536 * 4 multiply-adds on one thread
 * whatever it was given (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD);
 * below a quarter of that we call it directly, without the cost of a
 * parallel region, which dominates a tiny model's pass. */
#define SMALL_GEMM 65536.0

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t round_up(size_t a, size_t m) { return ceil_div(a, m) * m; }

/* The tile shape of an (M, N) output with inner size K: a function of
 * the shape alone (never of the thread count); at least 8 tiles when the
 * work is large, so two or more threads share it evenly. */
static void gemm_tiles(size_t M, size_t N, size_t K, size_t *rm, size_t *rn)
{
    size_t bm = round_up(ceil_div(M, ceil_div(M, TILE_M)), 16);
    size_t bn = round_up(ceil_div(N, ceil_div(N, TILE_N)), 64);
    while (ceil_div(M, bm) * ceil_div(N, bn) < 8 && 2.0 * M * N * K > 1e7) {
        if (bn >= 256 && bn >= bm) bn = round_up(bn / 2, 64);
        else if (bm >= 64) bm = round_up(bm / 2, 16);
        else break;
    }
    *rm = bm;
    *rn = bn;
}

/* C (M,N) = op(A) @ op(B) + beta C, row-major, alpha 1, tile by tile.
 * op(A) is (M,K): A is (M,K) or, transposed, (K,M); op(B) is (K,N): B is
 * (K,N) or, transposed, (N,K). Every tile's sgemm runs on one thread
 * (OpenBLAS's OpenMP build stays on one thread in a parallel region). */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, size_t M, size_t N,
                 size_t K, const float *A, size_t lda, const float *B,
                 size_t ldb, float beta, float *C, size_t ldc)
{
    size_t rm, rn;
    gemm_tiles(M, N, K, &rm, &rn);
    size_t tm = ceil_div(M, rm), tn = ceil_div(N, rn);
    int small = tm * tn == 1 && (double)M * N * K <= SMALL_GEMM;
#pragma omp parallel for schedule(dynamic) if (!omp_in_parallel() && !small)
    for (size_t t = 0; t < tm * tn; t++) {
        size_t m0 = (t / tn) * rm, n0 = (t % tn) * rn;
        size_t mm = M - m0 < rm ? M - m0 : rm, nn = N - n0 < rn ? N - n0 : rn;
        const float *a = ta == CblasNoTrans ? A + m0 * lda : A + m0;
        const float *b = tb == CblasNoTrans ? B + n0 : B + n0 * ldb;
        cblas_sgemm(CblasRowMajor, ta, tb, (int)mm, (int)nn, (int)K, 1.0f, a,
                    (int)lda, b, (int)ldb, beta, C + m0 * ldc + n0, (int)ldc);
    }
}

/* Column sums of a (N, D) matrix into acc (D) +=. */
static void column_sums(float *acc, const float *a, size_t N, size_t D)
{
    size_t chunks = (D + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for if (!omp_in_parallel() && N * D > 32768)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t d0 = ch * COL_CHUNK, d1 = d0 + COL_CHUNK < D ? d0 + COL_CHUNK : D;
        float part[COL_CHUNK] = {0};
        for (size_t n = 0; n < N; n++) {
            const float *ar = a + n * D;
            for (size_t d = d0; d < d1; d++) part[d - d0] += ar[d];
        }
        for (size_t d = d0; d < d1; d++) acc[d] += part[d - d0];
    }
}

/* ---- encoder ---------------------------------------------------------- */

void linalg_encoder_forward(float *out, const int *inp, const float *wte,
                            const float *wpe, size_t B, size_t T, size_t C)
{
#pragma omp parallel for if (!omp_in_parallel() && B * T * C > 32768)
    for (size_t bt = 0; bt < B * T; bt++) {
        const float *te = wte + (size_t)inp[bt] * C, *pe = wpe + (bt % T) * C;
        float *o = out + bt * C;
        for (size_t c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

void linalg_encoder_backward(float *dwte, float *dwpe, const float *dout,
                             const int *inp, size_t B, size_t T, size_t C)
{
    /* Rows may share a token: split the channels, not the rows. */
    size_t chunks = (C + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for if (!omp_in_parallel() && B * T * C > 32768)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t c0 = ch * COL_CHUNK, c1 = c0 + COL_CHUNK < C ? c0 + COL_CHUNK : C;
        for (size_t bt = 0; bt < B * T; bt++) {
            const float *d = dout + bt * C;
            if (dwte) {
                float *g = dwte + (size_t)inp[bt] * C;
                for (size_t c = c0; c < c1; c++) g[c] += d[c];
            }
            if (dwpe) {
                float *g = dwpe + (bt % T) * C;
                for (size_t c = c0; c < c1; c++) g[c] += d[c];
            }
        }
    }
}

/* ---- layernorm -------------------------------------------------------- */

static void layernorm_row(float *o, float *mean, float *rstd, const float *x,
                          const float *w, const float *b, size_t C, float eps)
{
    double s = 0;
    for (size_t i = 0; i < C; i++) s += x[i];
    float m = (float)(s / C);
    double v = 0;
    for (size_t i = 0; i < C; i++) {
        float d = x[i] - m;
        v += (double)d * d;
    }
    float r = (float)(1.0 / sqrt(v / C + eps));
    for (size_t i = 0; i < C; i++) o[i] = (x[i] - m) * r * w[i] + b[i];
    if (mean) *mean = m;
    if (rstd) *rstd = r;
}

void linalg_layernorm_forward(float *out, float *mean, float *rstd,
                              const float *inp, const float *weight,
                              const float *bias, size_t N, size_t C,
                              float eps)
{
#pragma omp parallel for if (!omp_in_parallel() && N * C > 4096)
    for (size_t n = 0; n < N; n++)
        layernorm_row(out + n * C, mean ? mean + n : NULL,
                      rstd ? rstd + n : NULL, inp + n * C, weight, bias, C,
                      eps);
}

void linalg_layernorm_backward(float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp,
                               const float *weight, const float *mean,
                               const float *rstd, size_t N, size_t C)
{
    if (dinp) {
#pragma omp parallel for if (!omp_in_parallel() && N * C > 4096)
        for (size_t n = 0; n < N; n++) {
            const float *d = dout + n * C, *x = inp + n * C;
            float m = mean[n], r = rstd[n];
            float dnorm_mean = 0, dnorm_norm_mean = 0;
            for (size_t i = 0; i < C; i++) {
                float dn = weight[i] * d[i];
                dnorm_mean += dn;
                dnorm_norm_mean += dn * (x[i] - m) * r;
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            float *g = dinp + n * C;
            for (size_t i = 0; i < C; i++) {
                float norm = (x[i] - m) * r;
                g[i] += (weight[i] * d[i] - dnorm_mean - norm * dnorm_norm_mean) * r;
            }
        }
    }
    if (dbias) column_sums(dbias, dout, N, C);
    if (dweight) {
        size_t chunks = (C + COL_CHUNK - 1) / COL_CHUNK;
#pragma omp parallel for if (!omp_in_parallel() && N * C > 32768)
        for (size_t ch = 0; ch < chunks; ch++) {
            size_t c0 = ch * COL_CHUNK, c1 = c0 + COL_CHUNK < C ? c0 + COL_CHUNK : C;
            float part[COL_CHUNK] = {0};
            for (size_t n = 0; n < N; n++) {
                const float *d = dout + n * C, *x = inp + n * C;
                float m = mean[n], r = rstd[n];
                for (size_t i = c0; i < c1; i++) part[i - c0] += d[i] * ((x[i] - m) * r);
            }
            for (size_t i = c0; i < c1; i++) dweight[i] += part[i - c0];
        }
    }
}

/* ---- matmul ----------------------------------------------------------- */

void linalg_matmul_forward(float *out, const float *inp, const float *weight,
                           const float *bias, size_t N, size_t IN,
                           size_t OUT)
{
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for if (!omp_in_parallel() && N * OUT > 32768)
        for (size_t n = 0; n < N; n++) memcpy(out + n * OUT, bias, OUT * sizeof *out);
        beta = 1.0f;
    }
    gemm(CblasNoTrans, CblasNoTrans, N, OUT, IN, inp, IN, weight, OUT, beta,
         out, OUT);
}

void linalg_matmul_backward(float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp,
                            const float *weight, size_t N, size_t IN,
                            size_t OUT)
{
    if (dinp) /* (N,OUT) @ (IN,OUT)^T */
        gemm(CblasNoTrans, CblasTrans, N, IN, OUT, dout, OUT, weight, OUT,
             1.0f, dinp, IN);
    if (dweight) /* (N,IN)^T @ (N,OUT) */
        gemm(CblasTrans, CblasNoTrans, IN, OUT, N, inp, IN, dout, OUT, 1.0f,
             dweight, OUT);
    if (dbias) column_sums(dbias, dout, N, OUT);
}

void linalg_matmul_nt_forward(float *out, const float *inp,
                              const float *weight, size_t N, size_t IN,
                              size_t OUT)
{
    gemm(CblasNoTrans, CblasTrans, N, OUT, IN, inp, IN, weight, IN, 0.0f,
         out, OUT);
}

void linalg_matmul_nt_backward(float *dinp, float *dweight, const float *dout,
                               const float *inp, const float *weight,
                               size_t N, size_t IN, size_t OUT)
{
    if (dinp) /* (N,OUT) @ (OUT,IN) */
        gemm(CblasNoTrans, CblasNoTrans, N, IN, OUT, dout, OUT, weight, IN,
             1.0f, dinp, IN);
    if (dweight) /* (N,OUT)^T @ (N,IN) */
        gemm(CblasTrans, CblasNoTrans, OUT, IN, N, dout, OUT, inp, IN, 1.0f,
             dweight, IN);
}

/* ---- attention -------------------------------------------------------- */

/* Softmax of row t of a causal score matrix, in place: entries 0..t,
 * zeros after. */
static void causal_softmax_row(float *row, size_t t, size_t T)
{
    float maxval = row[0];
    for (size_t t2 = 1; t2 <= t; t2++)
        if (row[t2] > maxval) maxval = row[t2];
    float sum = 0;
    for (size_t t2 = 0; t2 <= t; t2++) {
        row[t2] = expf(row[t2] - maxval);
        sum += row[t2];
    }
    float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
    for (size_t t2 = 0; t2 <= t; t2++) row[t2] *= inv;
    for (size_t t2 = t + 1; t2 < T; t2++) row[t2] = 0.0f;
}

/* Row t of a causal softmax's backward pass, in place: da (the gradient
 * of the weights a, entries 0..t) becomes scale * the gradient of the
 * scores; zeros after t, up to n. */
static void causal_softmax_backward_row(const float *a, float *da, size_t t,
                                        size_t n, float scale)
{
    float dot = 0;
    for (size_t t2 = 0; t2 <= t; t2++) dot += a[t2] * da[t2];
    for (size_t t2 = 0; t2 <= t; t2++) da[t2] = a[t2] * (da[t2] - dot) * scale;
    for (size_t t2 = t + 1; t2 < n; t2++) da[t2] = 0.0f;
}

/* One (sequence, head): query rows f..n-1 against keys and values 0..n-1.
 * base: the sequence's q of this head (rows of stride 3C; k at +C, v at
 * +2C); a: its (T,T) weights; out: the output row of query f (stride C). */
static void attention_head_forward(float *out, float *a, const float *base,
                                   size_t f, size_t n, size_t T, size_t C,
                                   size_t hs, float scale)
{
    size_t C3 = 3 * C, nq = n - f;
    const float *q = base + f * C3, *k = base + C, *v = base + 2 * C;
    a += f * T;
    /* scores (nq,n) = scale * q (nq,hs) @ k (n,hs)^T; upper triangle
     * discarded by the softmax */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)n,
                (int)hs, scale, q, (int)C3, k, (int)C3, 0.0f, a, (int)T);
    for (size_t i = 0; i < nq; i++) causal_softmax_row(a + i * T, f + i, n);
    /* out (nq,hs) = att (nq,n) @ v (n,hs) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)hs,
                (int)n, 1.0f, a, (int)T, v, (int)C3, 0.0f, out, (int)C);
}

/* Its backward: dbase (laid out as base) += dq on rows f..n-1, dk and dv
 * on 0..n-1; d: dout's row of query f; da: scratch (T,T). */
static void attention_head_backward(float *dbase, float *da, const float *d,
                                    const float *base, const float *a,
                                    size_t f, size_t n, size_t T, size_t C,
                                    size_t hs, float scale)
{
    size_t C3 = 3 * C, nq = n - f;
    const float *q = base + f * C3, *k = base + C, *v = base + 2 * C;
    float *dq = dbase + f * C3, *dk = dbase + C, *dv = dbase + 2 * C;
    a += f * T;
    da += f * T;
    /* datt (nq,n) = dout (nq,hs) @ v^T; dv (n,hs) += att^T @ dout */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)n,
                (int)hs, 1.0f, d, (int)C, v, (int)C3, 0.0f, da, (int)T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hs,
                (int)nq, 1.0f, a, (int)T, d, (int)C, 1.0f, dv, (int)C3);
    /* softmax backward in place, scaled: dscores */
    for (size_t i = 0; i < nq; i++)
        causal_softmax_backward_row(a + i * T, da + i * T, f + i, n, scale);
    /* dq (nq,hs) += dscores @ k; dk (n,hs) += dscores^T @ q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)hs,
                (int)n, 1.0f, da, (int)T, k, (int)C3, 1.0f, dq, (int)C3);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hs,
                (int)nq, 1.0f, da, (int)T, q, (int)C3, 1.0f, dk, (int)C3);
}

void linalg_attention_forward(float *out, float *att, const float *inp,
                              size_t B, size_t T, size_t C, size_t NH)
{
    size_t hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int small = (double)T * T * hs <= SMALL_GEMM; /* see gemm() */
#pragma omp parallel for if (!omp_in_parallel() && !small)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH;
        attention_head_forward(out + b * T * C + h * hs, att + bh * T * T,
                               inp + b * T * 3 * C + h * hs, 0, T, T, C, hs,
                               scale);
    }
}

void linalg_attention_backward(float *dinp, float *datt, const float *dout,
                               const float *inp, const float *att, size_t B,
                               size_t T, size_t C, size_t NH)
{
    size_t hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int small = (double)T * T * hs <= SMALL_GEMM; /* see gemm() */
#pragma omp parallel for if (!omp_in_parallel() && !small)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, seq = b * T * 3 * C + h * hs;
        attention_head_backward(dinp + seq, datt + bh * T * T,
                                dout + b * T * C + h * hs, inp + seq,
                                att + bh * T * T, 0, T, T, C, hs, scale);
    }
}

void linalg_attention_rows_forward(float *out, float *att, const float *inp,
                                   size_t B, size_t T, size_t C, size_t NH,
                                   const size_t *from, const size_t *len,
                                   const size_t *off)
{
    size_t hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int small = (double)T * T * hs <= SMALL_GEMM;
#pragma omp parallel for if (!omp_in_parallel() && !small)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH;
        if (from[b] < len[b])
            attention_head_forward(out + off[b] * C + h * hs, att + bh * T * T,
                                   inp + b * T * 3 * C + h * hs, from[b],
                                   len[b], T, C, hs, scale);
    }
}

void linalg_attention_rows_backward(float *dinp, float *datt,
                                    const float *dout, const float *inp,
                                    const float *att, size_t B, size_t T,
                                    size_t C, size_t NH, const size_t *from,
                                    const size_t *len, const size_t *off)
{
    size_t hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    int small = (double)T * T * hs <= SMALL_GEMM;
#pragma omp parallel for if (!omp_in_parallel() && !small)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, seq = b * T * 3 * C + h * hs;
        if (from[b] < len[b])
            attention_head_backward(dinp + seq, datt + bh * T * T,
                                    dout + off[b] * C + h * hs, inp + seq,
                                    att + bh * T * T, from[b], len[b], T, C,
                                    hs, scale);
    }
}

/* ---- gelu ------------------------------------------------------------- */

/* tanh to within 4e-7 (a few ulp), as Eigen computes it: a 13/6 rational
 * approximation on |x| <= 7.9988, where float tanh reaches +-1. The clamp
 * works on the bit pattern (an integer min) so that the loops vectorize
 * without -fno-trapping-math; a NaN comes out as +-1, but gelu multiplies
 * by x, so NaN still propagates. glibc's tanhf is ~15x slower and made
 * GELU cost more than the matmul before it. */
static inline __attribute__((always_inline)) float fast_tanhf(float x)
{
    uint32_t bits, mag, lim = 0x40fff644u; /* 7.99881172180175781f */
    memcpy(&bits, &x, sizeof bits);
    mag = bits & 0x7fffffffu;
    mag = mag < lim ? mag : lim;
    bits = (bits & 0x80000000u) | mag;
    memcpy(&x, &bits, sizeof x);
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p * x / q;
}

/* GELU's loops are compiled for three instruction sets (plain x86-64,
 * AVX2, AVX-512: the target attributes below) and run with the widest the
 * CPU has (training steps 1.11x faster with AVX-512 than plain,
 * docs/performance.md, "Training world models"). Each is the one inline loop, and -ffp-contract=off
 * (the build's, and ISO C's default) keeps FMA out of the wider ones, so
 * all three compute the same operations in the same order and give the
 * same bits (test_gpt2 checks them). */
static inline __attribute__((always_inline)) void
gelu_forward_loop(float *out, const float *inp, size_t N)
{
#pragma omp simd
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanhf(GELU_SCALE * (x + GELU_CUBE * x * x * x)));
    }
}

static inline __attribute__((always_inline)) void
gelu_backward_loop(float *dinp, const float *inp, const float *dout, size_t N)
{
#pragma omp simd
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        float th = fast_tanhf(GELU_SCALE * (x + GELU_CUBE * x * x * x));
        float sech2 = 1.0f - th * th;
        float grad = 0.5f * (1.0f + th) +
                     0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * GELU_CUBE * x * x);
        dinp[i] += grad * dout[i];
    }
}

#define ISA_AVX2 "avx2,fma"
#define ISA_AVX512 "avx512f,avx512dq,avx512bw,avx512vl"
static void gelu_forward_base(float *out, const float *inp, size_t N)
{
    gelu_forward_loop(out, inp, N);
}
__attribute__((target(ISA_AVX2))) static void
gelu_forward_avx2(float *out, const float *inp, size_t N)
{
    gelu_forward_loop(out, inp, N);
}
__attribute__((target(ISA_AVX512))) static void
gelu_forward_avx512(float *out, const float *inp, size_t N)
{
    gelu_forward_loop(out, inp, N);
}
static void gelu_backward_base(float *dinp, const float *inp,
                               const float *dout, size_t N)
{
    gelu_backward_loop(dinp, inp, dout, N);
}
__attribute__((target(ISA_AVX2))) static void
gelu_backward_avx2(float *dinp, const float *inp, const float *dout, size_t N)
{
    gelu_backward_loop(dinp, inp, dout, N);
}
__attribute__((target(ISA_AVX512))) static void
gelu_backward_avx512(float *dinp, const float *inp, const float *dout,
                     size_t N)
{
    gelu_backward_loop(dinp, inp, dout, N);
}

static bool cpu_has(linalg_isa isa)
{
    switch (isa) {
    case LINALG_ISA_BASE: return true;
    case LINALG_ISA_AVX2: return cpu_has_avx2_fma();
    case LINALG_ISA_AVX512: return cpu_has_avx512();
    }
    return false;
}

static linalg_isa widest_isa(void)
{
    return cpu_has(LINALG_ISA_AVX512) ? LINALG_ISA_AVX512
           : cpu_has(LINALG_ISA_AVX2) ? LINALG_ISA_AVX2
                                      : LINALG_ISA_BASE;
}

static void gelu_forward_range(linalg_isa isa, float *out, const float *inp,
                               size_t N)
{
    switch (isa) {
    case LINALG_ISA_AVX512: gelu_forward_avx512(out, inp, N); return;
    case LINALG_ISA_AVX2: gelu_forward_avx2(out, inp, N); return;
    case LINALG_ISA_BASE: gelu_forward_base(out, inp, N); return;
    }
}

static void gelu_backward_range(linalg_isa isa, float *dinp, const float *inp,
                                const float *dout, size_t N)
{
    switch (isa) {
    case LINALG_ISA_AVX512: gelu_backward_avx512(dinp, inp, dout, N); return;
    case LINALG_ISA_AVX2: gelu_backward_avx2(dinp, inp, dout, N); return;
    case LINALG_ISA_BASE: gelu_backward_base(dinp, inp, dout, N); return;
    }
}

/* Large calls outside a parallel region are split in chunks; inside one
 * (a z optimisation per thread) the loop runs on its own thread with no
 * nested region at all. */
#define GELU_CHUNK 32768
static void gelu_forward_with(linalg_isa isa, float *out, const float *inp,
                              size_t N)
{
    if (omp_in_parallel() || N <= GELU_CHUNK) {
        gelu_forward_range(isa, out, inp, N);
        return;
    }
#pragma omp parallel for
    for (size_t c = 0; c < N; c += GELU_CHUNK)
        gelu_forward_range(isa, out + c, inp + c,
                           N - c < GELU_CHUNK ? N - c : GELU_CHUNK);
}

static void gelu_backward_with(linalg_isa isa, float *dinp, const float *inp,
                               const float *dout, size_t N)
{
    if (omp_in_parallel() || N <= GELU_CHUNK) {
        gelu_backward_range(isa, dinp, inp, dout, N);
        return;
    }
#pragma omp parallel for
    for (size_t c = 0; c < N; c += GELU_CHUNK)
        gelu_backward_range(isa, dinp + c, inp + c, dout + c,
                            N - c < GELU_CHUNK ? N - c : GELU_CHUNK);
}

void linalg_gelu_forward(float *out, const float *inp, size_t N)
{
    gelu_forward_with(widest_isa(), out, inp, N);
}

void linalg_gelu_backward(float *dinp, const float *inp, const float *dout,
                          size_t N)
{
    gelu_backward_with(widest_isa(), dinp, inp, dout, N);
}

bool linalg_gelu_forward_isa(linalg_isa isa, float *out, const float *inp,
                             size_t N)
{
    if (!cpu_has(isa)) return false;
    gelu_forward_with(isa, out, inp, N);
    return true;
}

bool linalg_gelu_backward_isa(linalg_isa isa, float *dinp, const float *inp,
                              const float *dout, size_t N)
{
    if (!cpu_has(isa)) return false;
    gelu_backward_with(isa, dinp, inp, dout, N);
    return true;
}

/* ---- residual --------------------------------------------------------- */

void linalg_residual_forward(float *out, const float *inp1,
                             const float *inp2, size_t N)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 65536)
    for (size_t i = 0; i < N; i++) out[i] = inp1[i] + inp2[i];
}

void linalg_residual_backward(float *dinp1, float *dinp2, const float *dout,
                              size_t N)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 65536)
    for (size_t i = 0; i < N; i++) {
        dinp1[i] += dout[i];
        dinp2[i] += dout[i];
    }
}

/* ---- softmax, cross-entropy ------------------------------------------ */

/* max and log(sum(exp(x - max))) of one row. */
static void row_logsumexp(const float *x, size_t V, float *maxval,
                          double *logsum)
{
    float m = x[0];
    for (size_t v = 1; v < V; v++)
        if (x[v] > m) m = x[v];
    double s = 0;
    for (size_t v = 0; v < V; v++) s += expf(x[v] - m);
    *maxval = m;
    *logsum = log(s);
}

void linalg_softmax_forward(float *probs, const float *logits, size_t N,
                            size_t V)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 1 && N * V > 32768)
    for (size_t n = 0; n < N; n++) {
        float m;
        double ls;
        row_logsumexp(logits + n * V, V, &m, &ls);
        float shift = (float)(m + ls);
        for (size_t v = 0; v < V; v++) probs[n * V + v] = expf(logits[n * V + v] - shift);
    }
}

void linalg_log_softmax_forward(float *out, const float *logits, size_t N,
                                size_t V)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 1 && N * V > 32768)
    for (size_t n = 0; n < N; n++) {
        float m;
        double ls;
        row_logsumexp(logits + n * V, V, &m, &ls);
        for (size_t v = 0; v < V; v++)
            out[n * V + v] = (float)((double)(logits[n * V + v] - m) - ls);
    }
}

double linalg_crossentropy_forward(float *losses, const float *logits,
                                   const int *targets, size_t N, size_t V)
{
    double total = 0;
    if (!losses) {
        for (size_t n = 0; n < N; n++) {
            float m;
            double ls;
            row_logsumexp(logits + n * V, V, &m, &ls);
            total += ls - (double)(logits[n * V + targets[n]] - m);
        }
        return total;
    }
#pragma omp parallel for if (!omp_in_parallel() && N > 1 && N * V > 32768)
    for (size_t n = 0; n < N; n++) {
        float m;
        double ls;
        row_logsumexp(logits + n * V, V, &m, &ls);
        losses[n] = (float)(ls - (double)(logits[n * V + targets[n]] - m));
    }
    for (size_t n = 0; n < N; n++) total += losses[n];
    return total;
}

void linalg_crossentropy_softmax_backward(float *dlogits, const float *dlosses,
                                          const float *logits,
                                          const int *targets, size_t N,
                                          size_t V)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 1 && N * V > 32768)
    for (size_t n = 0; n < N; n++) {
        float m;
        double ls;
        const float *x = logits + n * V;
        float *g = dlogits + n * V;
        row_logsumexp(x, V, &m, &ls);
        float shift = (float)(m + ls), dl = dlosses[n];
        for (size_t v = 0; v < V; v++) g[v] += dl * expf(x[v] - shift);
        g[targets[n]] -= dl;
    }
}

/* ======================================================================
 * Naive twins: the textbook loops, one thread, no BLAS. Test oracles.
 * ====================================================================== */

void linalg_encoder_forward_naive(float *out, const int *inp, const float *wte,
                                  const float *wpe, size_t B, size_t T,
                                  size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++)
                out[(b * T + t) * C + c] =
                    wte[(size_t)inp[b * T + t] * C + c] + wpe[t * C + c];
}

void linalg_encoder_backward_naive(float *dwte, float *dwpe,
                                   const float *dout, const int *inp,
                                   size_t B, size_t T, size_t C)
{
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++) {
                float d = dout[(b * T + t) * C + c];
                if (dwte) dwte[(size_t)inp[b * T + t] * C + c] += d;
                if (dwpe) dwpe[t * C + c] += d;
            }
}

void linalg_layernorm_forward_naive(float *out, float *mean, float *rstd,
                                    const float *inp, const float *weight,
                                    const float *bias, size_t N, size_t C,
                                    float eps)
{
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        double m = 0, v = 0;
        for (size_t i = 0; i < C; i++) m += x[i];
        m /= C;
        for (size_t i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;
        double r = 1.0 / sqrt(v + eps);
        for (size_t i = 0; i < C; i++)
            out[n * C + i] = (float)((x[i] - m) * r * weight[i] + bias[i]);
        if (mean) mean[n] = (float)m;
        if (rstd) rstd[n] = (float)r;
    }
}

void linalg_layernorm_backward_naive(float *dinp, float *dweight,
                                     float *dbias, const float *dout,
                                     const float *inp, const float *weight,
                                     const float *mean, const float *rstd,
                                     size_t N, size_t C)
{
    for (size_t n = 0; n < N; n++) {
        const float *d = dout + n * C, *x = inp + n * C;
        double dm = 0, dnm = 0;
        for (size_t i = 0; i < C; i++) {
            double norm = (x[i] - mean[n]) * (double)rstd[n];
            dm += weight[i] * d[i];
            dnm += weight[i] * d[i] * norm;
        }
        dm /= C;
        dnm /= C;
        for (size_t i = 0; i < C; i++) {
            double norm = (x[i] - mean[n]) * (double)rstd[n];
            if (dbias) dbias[i] += d[i];
            if (dweight) dweight[i] += (float)(norm * d[i]);
            if (dinp)
                dinp[n * C + i] +=
                    (float)((weight[i] * d[i] - dm - norm * dnm) * rstd[n]);
        }
    }
}

void linalg_matmul_forward_naive(float *out, const float *inp,
                                 const float *weight, const float *bias,
                                 size_t N, size_t IN, size_t OUT)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OUT; o++) {
            double s = bias ? bias[o] : 0.0;
            for (size_t i = 0; i < IN; i++)
                s += (double)inp[n * IN + i] * weight[i * OUT + o];
            out[n * OUT + o] = (float)s;
        }
}

void linalg_matmul_backward_naive(float *dinp, float *dweight, float *dbias,
                                  const float *dout, const float *inp,
                                  const float *weight, size_t N, size_t IN,
                                  size_t OUT)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OUT; o++) {
            float d = dout[n * OUT + o];
            if (dbias) dbias[o] += d;
            for (size_t i = 0; i < IN; i++) {
                if (dinp) dinp[n * IN + i] += d * weight[i * OUT + o];
                if (dweight) dweight[i * OUT + o] += d * inp[n * IN + i];
            }
        }
}

void linalg_matmul_nt_forward_naive(float *out, const float *inp,
                                    const float *weight, size_t N, size_t IN,
                                    size_t OUT)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OUT; o++) {
            double s = 0;
            for (size_t i = 0; i < IN; i++)
                s += (double)inp[n * IN + i] * weight[o * IN + i];
            out[n * OUT + o] = (float)s;
        }
}

void linalg_matmul_nt_backward_naive(float *dinp, float *dweight,
                                     const float *dout, const float *inp,
                                     const float *weight, size_t N,
                                     size_t IN, size_t OUT)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OUT; o++) {
            float d = dout[n * OUT + o];
            for (size_t i = 0; i < IN; i++) {
                if (dinp) dinp[n * IN + i] += d * weight[o * IN + i];
                if (dweight) dweight[o * IN + i] += d * inp[n * IN + i];
            }
        }
}

void linalg_attention_forward_naive(float *out, float *att, const float *inp,
                                    size_t B, size_t T, size_t C, size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < NH; h++) {
                const float *q = inp + (b * T + t) * C3 + h * hs;
                float *a = att + ((b * NH + h) * T + t) * T;
                double maxval = -INFINITY, sum = 0;
                for (size_t t2 = 0; t2 <= t; t2++) {
                    const float *k = inp + (b * T + t2) * C3 + h * hs + C;
                    double s = 0;
                    for (size_t i = 0; i < hs; i++) s += (double)q[i] * k[i];
                    a[t2] = (float)(s * scale);
                    if (a[t2] > maxval) maxval = a[t2];
                }
                for (size_t t2 = 0; t2 <= t; t2++) {
                    a[t2] = (float)exp(a[t2] - maxval);
                    sum += a[t2];
                }
                for (size_t t2 = 0; t2 < T; t2++)
                    a[t2] = t2 <= t ? (float)(a[t2] / sum) : 0.0f;
                float *o = out + (b * T + t) * C + h * hs;
                for (size_t i = 0; i < hs; i++) {
                    double s = 0;
                    for (size_t t2 = 0; t2 <= t; t2++)
                        s += (double)a[t2] * inp[(b * T + t2) * C3 + h * hs + 2 * C + i];
                    o[i] = (float)s;
                }
            }
}

void linalg_attention_backward_naive(float *dinp, float *datt,
                                     const float *dout, const float *inp,
                                     const float *att, size_t B, size_t T,
                                     size_t C, size_t NH)
{
    size_t hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < NH; h++) {
                const float *a = att + ((b * NH + h) * T + t) * T;
                float *da = datt + ((b * NH + h) * T + t) * T;
                const float *d = dout + (b * T + t) * C + h * hs;
                const float *q = inp + (b * T + t) * C3 + h * hs;
                float *dq = dinp + (b * T + t) * C3 + h * hs;
                for (size_t t2 = 0; t2 < T; t2++) da[t2] = 0.0f;
                /* through out = att @ v */
                for (size_t t2 = 0; t2 <= t; t2++) {
                    const float *v = inp + (b * T + t2) * C3 + h * hs + 2 * C;
                    float *dv = dinp + (b * T + t2) * C3 + h * hs + 2 * C;
                    for (size_t i = 0; i < hs; i++) {
                        da[t2] += v[i] * d[i];
                        dv[i] += a[t2] * d[i];
                    }
                }
                /* through the softmax: dpre[t3] = sum_t2 a[t2](δ - a[t3]) da[t2] */
                for (size_t t3 = 0; t3 <= t; t3++) {
                    float dpre = 0;
                    for (size_t t2 = 0; t2 <= t; t2++)
                        dpre += a[t2] * ((t2 == t3) - a[t3]) * da[t2];
                    /* through scores = scale q . k */
                    const float *k = inp + (b * T + t3) * C3 + h * hs + C;
                    float *dk = dinp + (b * T + t3) * C3 + h * hs + C;
                    for (size_t i = 0; i < hs; i++) {
                        dq[i] += k[i] * dpre * scale;
                        dk[i] += q[i] * dpre * scale;
                    }
                }
            }
}

void linalg_gelu_forward_naive(float *out, const float *inp, size_t N)
{
    for (size_t i = 0; i < N; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) *
                                               (x + 0.044715 * x * x * x))));
    }
}

void linalg_gelu_backward_naive(float *dinp, const float *inp,
                                const float *dout, size_t N)
{
    for (size_t i = 0; i < N; i++) {
        double x = inp[i], s = sqrt(2.0 / M_PI);
        double u = s * (x + 0.044715 * x * x * x);
        double th = tanh(u), du = s * (1.0 + 3 * 0.044715 * x * x);
        double grad = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * du;
        dinp[i] += (float)(grad * dout[i]);
    }
}

void linalg_residual_forward_naive(float *out, const float *inp1,
                                   const float *inp2, size_t N)
{
    for (size_t i = 0; i < N; i++) out[i] = inp1[i] + inp2[i];
}

void linalg_residual_backward_naive(float *dinp1, float *dinp2,
                                    const float *dout, size_t N)
{
    for (size_t i = 0; i < N; i++) {
        dinp1[i] += dout[i];
        dinp2[i] += dout[i];
    }
}

void linalg_softmax_forward_naive(float *probs, const float *logits, size_t N,
                                  size_t V)
{
    for (size_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double m = -INFINITY, s = 0;
        for (size_t v = 0; v < V; v++) if (x[v] > m) m = x[v];
        for (size_t v = 0; v < V; v++) s += exp(x[v] - m);
        for (size_t v = 0; v < V; v++) probs[n * V + v] = (float)(exp(x[v] - m) / s);
    }
}

void linalg_log_softmax_forward_naive(float *out, const float *logits,
                                      size_t N, size_t V)
{
    for (size_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double m = -INFINITY, s = 0;
        for (size_t v = 0; v < V; v++) if (x[v] > m) m = x[v];
        for (size_t v = 0; v < V; v++) s += exp(x[v] - m);
        double lse = m + log(s);
        for (size_t v = 0; v < V; v++) out[n * V + v] = (float)(x[v] - lse);
    }
}

double linalg_crossentropy_forward_naive(float *losses, const float *logits,
                                         const int *targets, size_t N,
                                         size_t V)
{
    double total = 0;
    for (size_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double m = -INFINITY, s = 0;
        for (size_t v = 0; v < V; v++) if (x[v] > m) m = x[v];
        for (size_t v = 0; v < V; v++) s += exp(x[v] - m);
        double loss = m + log(s) - x[targets[n]];
        if (losses) losses[n] = (float)loss;
        total += loss;
    }
    return total;
}

void linalg_crossentropy_softmax_backward_naive(float *dlogits,
                                                const float *dlosses,
                                                const float *logits,
                                                const int *targets, size_t N,
                                                size_t V)
{
    for (size_t n = 0; n < N; n++) {
        const float *x = logits + n * V;
        double m = -INFINITY, s = 0;
        for (size_t v = 0; v < V; v++) if (x[v] > m) m = x[v];
        for (size_t v = 0; v < V; v++) s += exp(x[v] - m);
        for (size_t v = 0; v < V; v++) {
            double p = exp(x[v] - m) / s;
            dlogits[n * V + v] += (float)(dlosses[n] * (p - ((int)v == targets[n])));
        }
    }
}

/* ======================================================================
 * The Llama family's kernels (see linalg.h): weights in F32, F16 or BF16
 * converted a block at a time, RMSNorm, rotary embeddings, SwiGLU and
 * grouped-query attention; input gradients only.
 * ====================================================================== */

static size_t dtype_size(linalg_dtype d) { return d == LINALG_F32 ? 4 : 2; }

/* The conversion loops. BF16 is the top half of a float: a shift, which
 * the compiler vectorizes; F16 needs the hardware's conversion (F16C,
 * AVX-512) to be fast. Loads go through memcpy: no alignment needed. */
static inline __attribute__((always_inline)) void
bf16_loop(float *out, const unsigned char *p, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        uint32_t b = (uint32_t)h << 16;
        memcpy(out + i, &b, 4);
    }
}

static void to_f32_base(float *out, const unsigned char *p, linalg_dtype dt,
                        size_t n)
{
    if (dt == LINALG_F32) {
        memcpy(out, p, 4 * n);
    } else if (dt == LINALG_BF16) {
        bf16_loop(out, p, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = half_to_float(h);
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) static void
to_f32_avx2(float *out, const unsigned char *p, linalg_dtype dt, size_t n)
{
    if (dt != LINALG_F16) {
        if (dt == LINALG_BF16) bf16_loop(out, p, n);
        else memcpy(out, p, 4 * n);
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(
                                      (const __m128i *)(p + 2 * i))));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        out[i] = half_to_float(h);
    }
}

__attribute__((target(ISA_AVX512))) static void
to_f32_avx512(float *out, const unsigned char *p, linalg_dtype dt, size_t n)
{
    if (dt != LINALG_F16) {
        if (dt == LINALG_BF16) bf16_loop(out, p, n);
        else memcpy(out, p, 4 * n);
        return;
    }
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                      (const __m256i *)(p + 2 * i))));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        out[i] = half_to_float(h);
    }
}

static void to_f32_range(float *out, const unsigned char *p, linalg_dtype dt,
                         size_t n)
{
    int isa = (int)widest_isa(); /* a few loads: libgcc caches cpuid */
    if (isa == LINALG_ISA_AVX512) to_f32_avx512(out, p, dt, n);
    else if (isa == LINALG_ISA_AVX2) to_f32_avx2(out, p, dt, n);
    else to_f32_base(out, p, dt, n);
}

void linalg_to_f32(float *out, const void *src, linalg_dtype dtype, size_t n)
{
    to_f32_range(out, src, dtype, n);
}

/* The (r, c) block at (r0, c0) of a matrix of dtype dt with row stride
 * ld (elements), as floats into dst (r, c). */
static void block_to_f32(float *dst, const void *w, linalg_dtype dt,
                         size_t ld, size_t r0, size_t c0, size_t r, size_t c)
{
    size_t es = dtype_size(dt);
    const unsigned char *p = (const unsigned char *)w + (r0 * ld + c0) * es;
    for (size_t i = 0; i < r; i++) to_f32_range(dst + i * c, p + i * ld * es,
                                                dt, c);
}

/* The linear kernels take one of two routes.
 *
 * Few input rows (N <= LIN_DOT_N: a prompt's last position, the logit
 * rows of a z step): the pass is bound by reading the weight, so each
 * weight row is read once, converted in registers and dotted with the N
 * input rows while it sits in L1 (forward), or added, scaled, into the N
 * gradient rows (backward). On a 2048 x 8192 BF16 weight and one row this
 * ran 10x faster than the blocked sgemm route below (bench/llama_layer).
 *
 * More rows: blocked sgemm. A tile is LIN_M input rows by LIN_N output
 * columns (forward: weight rows; backward: weight columns); the inner
 * dimension is walked LIN_K at a time, each weight block converted into
 * a per-thread buffer and multiplied with one single-threaded sgemm that
 * accumulates into the tile. An F32 weight at a float-aligned address is
 * read in place, in the same blocks.
 *
 * Either way the blocks and the order of every sum depend on N, IN and
 * OUT only, so results are the same bits for any thread count, and for a
 * weight in any dtype holding the same values (the dot route's sums
 * depend on the instruction set too). */
#define LIN_DOT_N 8
#define LIN_M 512
#define LIN_N 128
#define LIN_K 512
#define LIN_COLS 256 /* gradient columns per task of the small backward */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static int weight_in_place(const void *w, linalg_dtype dt)
{
    return dt == LINALG_F32 && (uintptr_t)w % _Alignof(float) == 0;
}

/* One weight element as a float (the scalar tails). */
static inline float weight_elem(const unsigned char *p, linalg_dtype dt,
                                size_t i)
{
    float x;
    uint16_t h;
    if (dt == LINALG_F32) {
        memcpy(&x, p + 4 * i, 4);
        return x;
    }
    memcpy(&h, p + 2 * i, 2);
    if (dt == LINALG_F16) return half_to_float(h);
    uint32_t b = (uint32_t)h << 16;
    memcpy(&x, &b, 4);
    return x;
}

/* out[n*OUT + o] = dot(inp row n, weight row o) + bias[o], o in [o0, o1):
 * one routine per instruction set; dt is a constant after inlining. */
static inline __attribute__((always_inline)) void
dot_rows_base_loop(float *out, const float *inp, const unsigned char *w,
                   linalg_dtype dt, const float *bias, size_t N, size_t IN,
                   size_t OUT, size_t o0, size_t o1)
{
    size_t es = dtype_size(dt);
    for (size_t o = o0; o < o1; o++) {
        const unsigned char *wr = w + o * IN * es;
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * IN;
            float s = 0;
            for (size_t k = 0; k < IN; k++) s += x[k] * weight_elem(wr, dt, k);
            out[n * OUT + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

static void dot_rows_base(float *out, const float *inp, const unsigned char *w,
                          linalg_dtype dt, const float *bias, size_t N,
                          size_t IN, size_t OUT, size_t o0, size_t o1)
{
    dot_rows_base_loop(out, inp, w, dt, bias, N, IN, OUT, o0, o1);
}

__attribute__((target("avx2,fma,f16c"))) static inline __m256
load8_avx2(const unsigned char *p, linalg_dtype dt)
{
    if (dt == LINALG_F32) return _mm256_loadu_ps((const float *)p);
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (dt == LINALG_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,fma,f16c"))) static inline float
hsum_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) static inline void
dot_rows_avx2_loop(float *out, const float *inp, const unsigned char *w,
                   linalg_dtype dt, const float *bias, size_t N, size_t IN,
                   size_t OUT, size_t o0, size_t o1)
{
    size_t es = dtype_size(dt);
    for (size_t o = o0; o < o1; o++) {
        const unsigned char *wr = w + o * IN * es;
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * IN;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            size_t k = 0;
            for (; k + 16 <= IN; k += 16) {
                a0 = _mm256_fmadd_ps(load8_avx2(wr + k * es, dt),
                                     _mm256_loadu_ps(x + k), a0);
                a1 = _mm256_fmadd_ps(load8_avx2(wr + (k + 8) * es, dt),
                                     _mm256_loadu_ps(x + k + 8), a1);
            }
            float s = hsum_avx2(_mm256_add_ps(a0, a1));
            for (; k < IN; k++) s += x[k] * weight_elem(wr, dt, k);
            out[n * OUT + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) static void
dot_rows_avx2(float *out, const float *inp, const unsigned char *w,
              linalg_dtype dt, const float *bias, size_t N, size_t IN,
              size_t OUT, size_t o0, size_t o1)
{
    switch (dt) {
    case LINALG_F32:
        dot_rows_avx2_loop(out, inp, w, LINALG_F32, bias, N, IN, OUT, o0, o1);
        return;
    case LINALG_F16:
        dot_rows_avx2_loop(out, inp, w, LINALG_F16, bias, N, IN, OUT, o0, o1);
        return;
    case LINALG_BF16:
        dot_rows_avx2_loop(out, inp, w, LINALG_BF16, bias, N, IN, OUT, o0, o1);
        return;
    }
}

__attribute__((target(ISA_AVX512))) static inline __m512
load16_avx512(const unsigned char *p, linalg_dtype dt)
{
    if (dt == LINALG_F32) return _mm512_loadu_ps((const float *)p);
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (dt == LINALG_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

__attribute__((target(ISA_AVX512))) static inline void
dot_rows_avx512_loop(float *out, const float *inp, const unsigned char *w,
                     linalg_dtype dt, const float *bias, size_t N, size_t IN,
                     size_t OUT, size_t o0, size_t o1)
{
    size_t es = dtype_size(dt);
    for (size_t o = o0; o < o1; o++) {
        const unsigned char *wr = w + o * IN * es;
        for (size_t n = 0; n < N; n++) {
            const float *x = inp + n * IN;
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            size_t k = 0;
            for (; k + 32 <= IN; k += 32) {
                a0 = _mm512_fmadd_ps(load16_avx512(wr + k * es, dt),
                                     _mm512_loadu_ps(x + k), a0);
                a1 = _mm512_fmadd_ps(load16_avx512(wr + (k + 16) * es, dt),
                                     _mm512_loadu_ps(x + k + 16), a1);
            }
            float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
            for (; k < IN; k++) s += x[k] * weight_elem(wr, dt, k);
            out[n * OUT + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

__attribute__((target(ISA_AVX512))) static void
dot_rows_avx512(float *out, const float *inp, const unsigned char *w,
                linalg_dtype dt, const float *bias, size_t N, size_t IN,
                size_t OUT, size_t o0, size_t o1)
{
    switch (dt) {
    case LINALG_F32:
        dot_rows_avx512_loop(out, inp, w, LINALG_F32, bias, N, IN, OUT, o0, o1);
        return;
    case LINALG_F16:
        dot_rows_avx512_loop(out, inp, w, LINALG_F16, bias, N, IN, OUT, o0, o1);
        return;
    case LINALG_BF16:
        dot_rows_avx512_loop(out, inp, w, LINALG_BF16, bias, N, IN, OUT, o0, o1);
        return;
    }
}

/* dot_rows for the widest instruction set the CPU has. */
static void dot_rows(float *out, const float *inp, const void *w,
                     linalg_dtype dt, const float *bias, size_t N, size_t IN,
                     size_t OUT, size_t o0, size_t o1)
{
    int isa = (int)widest_isa(); /* a few loads: libgcc caches cpuid */
    if (isa == LINALG_ISA_AVX512)
        dot_rows_avx512(out, inp, w, dt, bias, N, IN, OUT, o0, o1);
    else if (isa == LINALG_ISA_AVX2)
        dot_rows_avx2(out, inp, w, dt, bias, N, IN, OUT, o0, o1);
    else
        dot_rows_base(out, inp, w, dt, bias, N, IN, OUT, o0, o1);
}

/* dinp[:, i0 .. i0+ni) (N rows of stride IN) += dout (N,OUT) @ the same
 * columns of the weight, adding the weight's rows in order: one routine
 * per instruction set, as dot_rows. */
static void axpy_cols_base(float *dinp, const float *dout,
                           const unsigned char *w, linalg_dtype dt, size_t N,
                           size_t IN, size_t OUT, size_t i0, size_t ni)
{
    float row[LIN_COLS];
    size_t es = dtype_size(dt);
    for (size_t c0 = i0; c0 < i0 + ni; c0 += LIN_COLS) {
        size_t nc = min_size(LIN_COLS, i0 + ni - c0);
        for (size_t o = 0; o < OUT; o++) {
            to_f32_base(row, w + (o * IN + c0) * es, dt, nc);
            for (size_t n = 0; n < N; n++) {
                float d = dout[n * OUT + o], *g = dinp + n * IN + c0;
                for (size_t i = 0; i < nc; i++) g[i] += d * row[i];
            }
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) static inline void
axpy_cols_avx2_loop(float *dinp, const float *dout, const unsigned char *w,
                    linalg_dtype dt, size_t N, size_t IN, size_t OUT,
                    size_t i0, size_t ni)
{
    size_t es = dtype_size(dt);
    for (size_t o = 0; o < OUT; o++) {
        const unsigned char *wr = w + (o * IN + i0) * es;
        size_t i = 0;
        for (; i + 8 <= ni; i += 8) {
            __m256 wv = load8_avx2(wr + i * es, dt);
            for (size_t n = 0; n < N; n++) {
                float *g = dinp + n * IN + i0 + i;
                _mm256_storeu_ps(g, _mm256_fmadd_ps(
                                        _mm256_set1_ps(dout[n * OUT + o]), wv,
                                        _mm256_loadu_ps(g)));
            }
        }
        for (; i < ni; i++) {
            float x = weight_elem(wr, dt, i);
            for (size_t n = 0; n < N; n++)
                dinp[n * IN + i0 + i] += dout[n * OUT + o] * x;
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) static void
axpy_cols_avx2(float *dinp, const float *dout, const unsigned char *w,
               linalg_dtype dt, size_t N, size_t IN, size_t OUT, size_t i0,
               size_t ni)
{
    switch (dt) {
    case LINALG_F32:
        axpy_cols_avx2_loop(dinp, dout, w, LINALG_F32, N, IN, OUT, i0, ni);
        return;
    case LINALG_F16:
        axpy_cols_avx2_loop(dinp, dout, w, LINALG_F16, N, IN, OUT, i0, ni);
        return;
    case LINALG_BF16:
        axpy_cols_avx2_loop(dinp, dout, w, LINALG_BF16, N, IN, OUT, i0, ni);
        return;
    }
}

__attribute__((target(ISA_AVX512))) static inline void
axpy_cols_avx512_loop(float *dinp, const float *dout, const unsigned char *w,
                      linalg_dtype dt, size_t N, size_t IN, size_t OUT,
                      size_t i0, size_t ni)
{
    size_t es = dtype_size(dt);
    for (size_t o = 0; o < OUT; o++) {
        const unsigned char *wr = w + (o * IN + i0) * es;
        size_t i = 0;
        for (; i + 16 <= ni; i += 16) {
            __m512 wv = load16_avx512(wr + i * es, dt);
            for (size_t n = 0; n < N; n++) {
                float *g = dinp + n * IN + i0 + i;
                _mm512_storeu_ps(g, _mm512_fmadd_ps(
                                        _mm512_set1_ps(dout[n * OUT + o]), wv,
                                        _mm512_loadu_ps(g)));
            }
        }
        for (; i < ni; i++) {
            float x = weight_elem(wr, dt, i);
            for (size_t n = 0; n < N; n++)
                dinp[n * IN + i0 + i] += dout[n * OUT + o] * x;
        }
    }
}

__attribute__((target(ISA_AVX512))) static void
axpy_cols_avx512(float *dinp, const float *dout, const unsigned char *w,
                 linalg_dtype dt, size_t N, size_t IN, size_t OUT, size_t i0,
                 size_t ni)
{
    switch (dt) {
    case LINALG_F32:
        axpy_cols_avx512_loop(dinp, dout, w, LINALG_F32, N, IN, OUT, i0, ni);
        return;
    case LINALG_F16:
        axpy_cols_avx512_loop(dinp, dout, w, LINALG_F16, N, IN, OUT, i0, ni);
        return;
    case LINALG_BF16:
        axpy_cols_avx512_loop(dinp, dout, w, LINALG_BF16, N, IN, OUT, i0, ni);
        return;
    }
}

static void axpy_cols(float *dinp, const float *dout, const void *w,
                      linalg_dtype dt, size_t N, size_t IN, size_t OUT,
                      size_t i0, size_t ni)
{
    int isa = (int)widest_isa(); /* a few loads: libgcc caches cpuid */
    if (isa == LINALG_ISA_AVX512)
        axpy_cols_avx512(dinp, dout, w, dt, N, IN, OUT, i0, ni);
    else if (isa == LINALG_ISA_AVX2)
        axpy_cols_avx2(dinp, dout, w, dt, N, IN, OUT, i0, ni);
    else
        axpy_cols_base(dinp, dout, w, dt, N, IN, OUT, i0, ni);
}

static void linear_forward_dot(float *out, const float *inp, const void *w,
                               linalg_dtype dt, const float *bias, size_t N,
                               size_t IN, size_t OUT)
{
    size_t chunk = 64, tasks = ceil_div(OUT, chunk);
    int small = (double)N * IN * OUT <= SMALL_GEMM;
#pragma omp parallel for schedule(dynamic) if (!omp_in_parallel() && !small)
    for (size_t t = 0; t < tasks; t++)
        dot_rows(out, inp, w, dt, bias, N, IN, OUT, t * chunk,
                 min_size(OUT, t * chunk + chunk));
}

/* dinp (N,IN) += dout (N,OUT) @ weight for few rows: each task owns
 * LIN_COLS gradient columns. */
static void linear_backward_axpy(float *dinp, const float *dout,
                                 const void *w, linalg_dtype dt, size_t N,
                                 size_t IN, size_t OUT)
{
    size_t tasks = ceil_div(IN, LIN_COLS);
    int small = (double)N * IN * OUT <= SMALL_GEMM;
#pragma omp parallel for schedule(dynamic) if (!omp_in_parallel() && !small)
    for (size_t t = 0; t < tasks; t++)
        axpy_cols(dinp, dout, w, dt, N, IN, OUT, t * LIN_COLS,
                  min_size(LIN_COLS, IN - t * LIN_COLS));
}

void linalg_linear_forward(float *out, const float *inp, const void *weight,
                           linalg_dtype wdtype, const float *bias, size_t N,
                           size_t IN, size_t OUT)
{
    if (N <= LIN_DOT_N) {
        linear_forward_dot(out, inp, weight, wdtype, bias, N, IN, OUT);
        return;
    }
    size_t tm = ceil_div(N, LIN_M), tn = ceil_div(OUT, LIN_N);
    int direct = weight_in_place(weight, wdtype);
    int small = (double)N * IN * OUT <= SMALL_GEMM; /* see gemm() */
#pragma omp parallel if (!omp_in_parallel() && !small)
    {
        float *buf = direct ? NULL : malloc(LIN_N * LIN_K * sizeof *buf);
#pragma omp for schedule(dynamic)
        for (size_t t = 0; t < tm * tn; t++) {
            size_t m0 = t / tn * LIN_M, n0 = t % tn * LIN_N;
            size_t mm = min_size(LIN_M, N - m0), nn = min_size(LIN_N, OUT - n0);
            float *o = out + m0 * OUT + n0;
            if (!direct && !buf) { /* no memory for the buffer: no blocks */
                dot_rows(out + m0 * OUT, inp + m0 * IN, weight, wdtype, bias,
                         mm, IN, OUT, n0, n0 + nn);
                continue;
            }
            for (size_t i = 0; bias && i < mm; i++)
                memcpy(o + i * OUT, bias + n0, nn * sizeof *o);
            for (size_t k0 = 0; k0 < IN; k0 += LIN_K) {
                size_t kk = min_size(LIN_K, IN - k0), ldb = kk;
                const float *b = buf;
                if (direct) {
                    b = (const float *)weight + n0 * IN + k0;
                    ldb = IN;
                } else {
                    block_to_f32(buf, weight, wdtype, IN, n0, k0, nn, kk);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mm,
                            (int)nn, (int)kk, 1.0f, inp + m0 * IN + k0,
                            (int)IN, b, (int)ldb, bias || k0 ? 1.0f : 0.0f, o,
                            (int)OUT);
            }
        }
        free(buf);
    }
}

void linalg_linear_backward(float *dinp, const float *dout,
                            const void *weight, linalg_dtype wdtype,
                            size_t N, size_t IN, size_t OUT)
{
    if (N <= LIN_DOT_N) {
        linear_backward_axpy(dinp, dout, weight, wdtype, N, IN, OUT);
        return;
    }
    size_t tm = ceil_div(N, LIN_M), tn = ceil_div(IN, LIN_N);
    int direct = weight_in_place(weight, wdtype);
    int small = (double)N * IN * OUT <= SMALL_GEMM;
#pragma omp parallel if (!omp_in_parallel() && !small)
    {
        float *buf = direct ? NULL : malloc(LIN_N * LIN_K * sizeof *buf);
#pragma omp for schedule(dynamic)
        for (size_t t = 0; t < tm * tn; t++) {
            size_t m0 = t / tn * LIN_M, i0 = t % tn * LIN_N;
            size_t mm = min_size(LIN_M, N - m0), ni = min_size(LIN_N, IN - i0);
            if (!direct && !buf) { /* no memory for the buffer: no blocks */
                axpy_cols(dinp + m0 * IN, dout + m0 * OUT, weight, wdtype, mm,
                          IN, OUT, i0, ni);
                continue;
            }
            for (size_t k0 = 0; k0 < OUT; k0 += LIN_K) {
                size_t kk = min_size(LIN_K, OUT - k0), ldb = ni;
                const float *b = buf;
                if (direct) {
                    b = (const float *)weight + k0 * IN + i0;
                    ldb = IN;
                } else {
                    block_to_f32(buf, weight, wdtype, IN, k0, i0, kk, ni);
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                            (int)mm, (int)ni, (int)kk, 1.0f,
                            dout + m0 * OUT + k0, (int)OUT, b, (int)ldb, 1.0f,
                            dinp + m0 * IN + i0, (int)IN);
            }
        }
        free(buf);
    }
}

void linalg_embedding_forward(float *out, const int *inp, const void *table,
                              linalg_dtype dtype, size_t N, size_t C)
{
    size_t es = dtype_size(dtype);
#pragma omp parallel for if (!omp_in_parallel() && N * C > 32768)
    for (size_t n = 0; n < N; n++)
        to_f32_range(out + n * C,
                     (const unsigned char *)table + (size_t)inp[n] * C * es,
                     dtype, C);
}

/* ---- RMSNorm ---------------------------------------------------------- */

void linalg_rmsnorm_forward(float *out, float *rstd, const float *inp,
                            const float *weight, size_t N, size_t C,
                            float eps)
{
#pragma omp parallel for if (!omp_in_parallel() && N * C > 4096)
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        double s = 0;
        for (size_t i = 0; i < C; i++) s += (double)x[i] * x[i];
        float r = (float)(1.0 / sqrt(s / (double)C + eps));
        for (size_t i = 0; i < C; i++) o[i] = x[i] * r * weight[i];
        if (rstd) rstd[n] = r;
    }
}

void linalg_rmsnorm_backward(float *dinp, const float *dout, const float *inp,
                             const float *weight, const float *rstd, size_t N,
                             size_t C)
{
    /* y = w x r, r = (mean(x^2) + eps)^-1/2, dr/dx_j = -r^3 x_j / C:
     * dx_j = r (w_j d_j - x_j r^2 sum_i(w_i d_i x_i) / C) */
#pragma omp parallel for if (!omp_in_parallel() && N * C > 4096)
    for (size_t n = 0; n < N; n++) {
        const float *d = dout + n * C, *x = inp + n * C;
        float r = rstd[n];
        double dot = 0;
        for (size_t i = 0; i < C; i++) dot += (double)weight[i] * d[i] * x[i];
        float k = (float)(dot * r * r / (double)C);
        float *g = dinp + n * C;
        for (size_t i = 0; i < C; i++) g[i] += r * (weight[i] * d[i] - x[i] * k);
    }
}

/* ---- rotary embeddings -------------------------------------------------- */

void linalg_rope_forward(float *out, const float *inp, const float *cos,
                         const float *sin, const size_t *pos, size_t N,
                         size_t NH, size_t D)
{
    size_t h2 = D / 2;
#pragma omp parallel for if (!omp_in_parallel() && N * NH * D > 32768)
    for (size_t n = 0; n < N; n++) {
        const float *c = cos + pos[n] * h2, *s = sin + pos[n] * h2;
        for (size_t h = 0; h < NH; h++) {
            const float *x = inp + (n * NH + h) * D;
            float *o = out + (n * NH + h) * D;
            for (size_t i = 0; i < h2; i++) {
                float a = x[i], b = x[i + h2];
                o[i] = a * c[i] - b * s[i];
                o[i + h2] = b * c[i] + a * s[i];
            }
        }
    }
}

void linalg_rope_backward(float *dinp, const float *dout, const float *cos,
                          const float *sin, const size_t *pos, size_t N,
                          size_t NH, size_t D)
{
    size_t h2 = D / 2;
#pragma omp parallel for if (!omp_in_parallel() && N * NH * D > 32768)
    for (size_t n = 0; n < N; n++) {
        const float *c = cos + pos[n] * h2, *s = sin + pos[n] * h2;
        for (size_t h = 0; h < NH; h++) {
            const float *d = dout + (n * NH + h) * D;
            float *g = dinp + (n * NH + h) * D;
            for (size_t i = 0; i < h2; i++) {
                float a = d[i], b = d[i + h2];
                g[i] += a * c[i] + b * s[i];
                g[i + h2] += b * c[i] - a * s[i];
            }
        }
    }
}

/* ---- SwiGLU --------------------------------------------------------------- */

void linalg_swiglu_forward(float *out, const float *gate, const float *up,
                           size_t N)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 65536)
    for (size_t i = 0; i < N; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void linalg_swiglu_backward(float *dgate, float *dup, const float *dout,
                            const float *gate, const float *up, size_t N)
{
#pragma omp parallel for if (!omp_in_parallel() && N > 65536)
    for (size_t i = 0; i < N; i++) {
        float g = gate[i], sig = 1.0f / (1.0f + expf(-g));
        if (dgate) dgate[i] += dout[i] * up[i] * sig * (1.0f + g * (1.0f - sig));
        if (dup) dup[i] += dout[i] * g * sig;
    }
}

/* ---- grouped-query attention ------------------------------------------- */

/* The query rows of sequence b: f .. n-1, and where its output rows
 * start (out row of query f). */
static void gqa_rows(size_t b, size_t T, const size_t *from, const size_t *len,
                     const size_t *off, size_t *f, size_t *n, size_t *orow)
{
    *f = from ? from[b] : 0;
    *n = len ? len[b] : T;
    *orow = off ? off[b] : b * T + *f;
}

void linalg_gqa_attention_forward(float *out, float *att, const float *q,
                                  const float *k, const float *v, size_t B,
                                  size_t T, size_t NH, size_t NKV, size_t D,
                                  const size_t *from, const size_t *len,
                                  const size_t *off)
{
    size_t rep = NH / NKV, QS = NH * D, KS = NKV * D;
    float scale = (float)(1.0 / sqrt((double)D));
    int small = (double)T * T * D <= SMALL_GEMM; /* see gemm() */
#pragma omp parallel for if (!omp_in_parallel() && !small)
    for (size_t bh = 0; bh < B * NH; bh++) {
        size_t b = bh / NH, h = bh % NH, kvh = h / rep, f, n, orow;
        gqa_rows(b, T, from, len, off, &f, &n, &orow);
        if (f >= n) continue;
        size_t nq = n - f;
        const float *qb = q + (b * T + f) * QS + h * D,
                    *kb = k + b * T * KS + kvh * D,
                    *vb = v + b * T * KS + kvh * D;
        float *a = att + bh * T * T + f * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)n,
                    (int)D, scale, qb, (int)QS, kb, (int)KS, 0.0f, a, (int)T);
        for (size_t i = 0; i < nq; i++) causal_softmax_row(a + i * T, f + i, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D,
                    (int)n, 1.0f, a, (int)T, vb, (int)KS, 0.0f,
                    out + orow * QS + h * D, (int)QS);
    }
}

void linalg_gqa_attention_backward(float *dq, float *dk, float *dv,
                                   float *datt, const float *dout,
                                   const float *q, const float *k,
                                   const float *v, const float *att, size_t B,
                                   size_t T, size_t NH, size_t NKV, size_t D,
                                   const size_t *from, const size_t *len,
                                   const size_t *off)
{
    size_t rep = NH / NKV, QS = NH * D, KS = NKV * D;
    float scale = (float)(1.0 / sqrt((double)D));
    int small = (double)T * T * D * rep <= SMALL_GEMM;
    /* one task per (sequence, key/value head): the query heads that share
     * it add into its dk and dv in a fixed order */
#pragma omp parallel for if (!omp_in_parallel() && !small)
    for (size_t bk = 0; bk < B * NKV; bk++) {
        size_t b = bk / NKV, kvh = bk % NKV, f, n, orow;
        gqa_rows(b, T, from, len, off, &f, &n, &orow);
        if (f >= n) continue;
        size_t nq = n - f;
        const float *kb = k + b * T * KS + kvh * D,
                    *vb = v + b * T * KS + kvh * D;
        float *dkb = dk + b * T * KS + kvh * D, *dvb = dv + b * T * KS + kvh * D;
        for (size_t h = kvh * rep; h < (kvh + 1) * rep; h++) {
            size_t bh = b * NH + h;
            const float *qb = q + (b * T + f) * QS + h * D,
                        *d = dout + orow * QS + h * D,
                        *a = att + bh * T * T + f * T;
            float *da = datt + bh * T * T + f * T,
                  *dqb = dq + (b * T + f) * QS + h * D;
            /* datt (nq,n) = dout @ v^T; dv (n,D) += att^T @ dout */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq,
                        (int)n, (int)D, 1.0f, d, (int)QS, vb, (int)KS, 0.0f,
                        da, (int)T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n,
                        (int)D, (int)nq, 1.0f, a, (int)T, d, (int)QS, 1.0f,
                        dvb, (int)KS);
            for (size_t i = 0; i < nq; i++)
                causal_softmax_backward_row(a + i * T, da + i * T, f + i, n,
                                            scale);
            /* dq (nq,D) += dscores @ k; dk (n,D) += dscores^T @ q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq,
                        (int)D, (int)n, 1.0f, da, (int)T, kb, (int)KS, 1.0f,
                        dqb, (int)QS);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n,
                        (int)D, (int)nq, 1.0f, da, (int)T, qb, (int)QS, 1.0f,
                        dkb, (int)KS);
        }
    }
}

/* ---- naive twins of the Llama family's kernels ----------------------------- */

void linalg_to_f32_naive(float *out, const void *src, linalg_dtype dtype,
                         size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) {
        if (dtype == LINALG_F32) {
            memcpy(out + i, p + 4 * i, 4);
            continue;
        }
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        if (dtype == LINALG_BF16) { /* the high half of a float */
            uint32_t b = (uint32_t)h << 16;
            memcpy(out + i, &b, 4);
            continue;
        }
        /* F16: sign, 5 exponent bits (bias 15), 10 mantissa bits */
        int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double sign = (h & 0x8000) ? -1.0 : 1.0, v;
        if (e == 0) v = ldexp(m, -24);
        else if (e == 31) v = m ? NAN : INFINITY;
        else v = ldexp(1024 + m, e - 25);
        out[i] = (float)(sign * v);
    }
}

static float weight_at(const void *w, linalg_dtype dt, size_t i)
{
    float x;
    linalg_to_f32_naive(&x, (const unsigned char *)w + i * dtype_size(dt), dt,
                        1);
    return x;
}

void linalg_linear_forward_naive(float *out, const float *inp,
                                 const void *weight, linalg_dtype wdtype,
                                 const float *bias, size_t N, size_t IN,
                                 size_t OUT)
{
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OUT; o++) {
            double s = bias ? bias[o] : 0.0;
            for (size_t i = 0; i < IN; i++)
                s += (double)inp[n * IN + i] * weight_at(weight, wdtype, o * IN + i);
            out[n * OUT + o] = (float)s;
        }
}

void linalg_linear_backward_naive(float *dinp, const float *dout,
                                  const void *weight, linalg_dtype wdtype,
                                  size_t N, size_t IN, size_t OUT)
{
    for (size_t n = 0; n < N; n++)
        for (size_t i = 0; i < IN; i++) {
            double s = 0;
            for (size_t o = 0; o < OUT; o++)
                s += (double)dout[n * OUT + o] * weight_at(weight, wdtype, o * IN + i);
            dinp[n * IN + i] += (float)s;
        }
}

void linalg_embedding_forward_naive(float *out, const int *inp,
                                    const void *table, linalg_dtype dtype,
                                    size_t N, size_t C)
{
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++)
            out[n * C + c] = weight_at(table, dtype, (size_t)inp[n] * C + c);
}

void linalg_rmsnorm_forward_naive(float *out, float *rstd, const float *inp,
                                  const float *weight, size_t N, size_t C,
                                  float eps)
{
    for (size_t n = 0; n < N; n++) {
        double s = 0;
        for (size_t i = 0; i < C; i++) s += (double)inp[n * C + i] * inp[n * C + i];
        double r = 1.0 / sqrt(s / (double)C + eps);
        for (size_t i = 0; i < C; i++)
            out[n * C + i] = (float)(inp[n * C + i] * r * weight[i]);
        if (rstd) rstd[n] = (float)r;
    }
}

void linalg_rmsnorm_backward_naive(float *dinp, const float *dout,
                                   const float *inp, const float *weight,
                                   const float *rstd, size_t N, size_t C)
{
    /* the Jacobian written out: d out_i / d x_j = w_i (r [i = j]
     * - r^3 x_i x_j / C) */
    for (size_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        double r = rstd[n];
        for (size_t j = 0; j < C; j++) {
            double s = 0;
            for (size_t i = 0; i < C; i++) {
                double J = weight[i] * ((i == j ? r : 0.0) -
                                        r * r * r * x[i] * x[j] / (double)C);
                s += dout[n * C + i] * J;
            }
            dinp[n * C + j] += (float)s;
        }
    }
}

void linalg_rope_forward_naive(float *out, const float *inp, const float *cos,
                               const float *sin, const size_t *pos, size_t N,
                               size_t NH, size_t D)
{
    /* q cos + rotate_half(q) sin, rotate_half(x) = cat(-x2, x1) */
    size_t h2 = D / 2;
    float *rot = malloc(D * sizeof *rot), *x = malloc(D * sizeof *x);
    for (size_t n = 0; n < N; n++)
        for (size_t h = 0; h < NH; h++) {
            memcpy(x, inp + (n * NH + h) * D, D * sizeof *x);
            for (size_t i = 0; i < h2; i++) {
                rot[i] = -x[i + h2];
                rot[i + h2] = x[i];
            }
            for (size_t i = 0; i < D; i++) {
                size_t j = pos[n] * h2 + i % h2;
                out[(n * NH + h) * D + i] = x[i] * cos[j] + rot[i] * sin[j];
            }
        }
    free(rot);
    free(x);
}

void linalg_rope_backward_naive(float *dinp, const float *dout,
                                const float *cos, const float *sin,
                                const size_t *pos, size_t N, size_t NH,
                                size_t D)
{
    /* dx_j = sum_i dout_i d out_i / d x_j over the 2x2 rotations */
    size_t h2 = D / 2;
    for (size_t n = 0; n < N; n++)
        for (size_t h = 0; h < NH; h++)
            for (size_t j = 0; j < D; j++) {
                const float *d = dout + (n * NH + h) * D;
                size_t f = pos[n] * h2 + j % h2;
                double s = (double)d[j] * cos[f];
                if (j < h2) s += (double)d[j + h2] * sin[f];  /* out[j+h2] has + x_j s */
                else s -= (double)d[j - h2] * sin[f];         /* out[j-h2] has - x_j s */
                dinp[(n * NH + h) * D + j] += (float)s;
            }
}

void linalg_swiglu_forward_naive(float *out, const float *gate,
                                 const float *up, size_t N)
{
    for (size_t i = 0; i < N; i++) {
        double g = gate[i];
        out[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
    }
}

void linalg_swiglu_backward_naive(float *dgate, float *dup, const float *dout,
                                  const float *gate, const float *up,
                                  size_t N)
{
    for (size_t i = 0; i < N; i++) {
        double g = gate[i], sig = 1.0 / (1.0 + exp(-g));
        if (dgate) dgate[i] += (float)(dout[i] * up[i] * (sig + g * sig * (1 - sig)));
        if (dup) dup[i] += (float)(dout[i] * g * sig);
    }
}

void linalg_gqa_attention_forward_naive(float *out, float *att, const float *q,
                                        const float *k, const float *v,
                                        size_t B, size_t T, size_t NH,
                                        size_t NKV, size_t D,
                                        const size_t *from, const size_t *len,
                                        const size_t *off)
{
    size_t QS = NH * D, KS = NKV * D;
    double scale = 1.0 / sqrt((double)D);
    for (size_t b = 0; b < B; b++) {
        size_t f, n, orow;
        gqa_rows(b, T, from, len, off, &f, &n, &orow);
        for (size_t t = f; t < n; t++)
            for (size_t h = 0; h < NH; h++) {
                size_t kvh = h / (NH / NKV);
                const float *qr = q + (b * T + t) * QS + h * D;
                float *a = att + ((b * NH + h) * T + t) * T;
                double maxval = -INFINITY, sum = 0;
                for (size_t t2 = 0; t2 <= t; t2++) {
                    const float *kr = k + (b * T + t2) * KS + kvh * D;
                    double s = 0;
                    for (size_t i = 0; i < D; i++) s += (double)qr[i] * kr[i];
                    a[t2] = (float)(s * scale);
                    if (a[t2] > maxval) maxval = a[t2];
                }
                for (size_t t2 = 0; t2 <= t; t2++) {
                    a[t2] = (float)exp(a[t2] - maxval);
                    sum += a[t2];
                }
                for (size_t t2 = 0; t2 < n; t2++)
                    a[t2] = t2 <= t ? (float)(a[t2] / sum) : 0.0f;
                float *o = out + (orow + t - f) * QS + h * D;
                for (size_t i = 0; i < D; i++) {
                    double s = 0;
                    for (size_t t2 = 0; t2 <= t; t2++)
                        s += (double)a[t2] * v[(b * T + t2) * KS + kvh * D + i];
                    o[i] = (float)s;
                }
            }
    }
}

void linalg_gqa_attention_backward_naive(float *dq, float *dk, float *dv,
                                         float *datt, const float *dout,
                                         const float *q, const float *k,
                                         const float *v, const float *att,
                                         size_t B, size_t T, size_t NH,
                                         size_t NKV, size_t D,
                                         const size_t *from,
                                         const size_t *len, const size_t *off)
{
    size_t QS = NH * D, KS = NKV * D;
    double scale = 1.0 / sqrt((double)D);
    for (size_t b = 0; b < B; b++) {
        size_t f, n, orow;
        gqa_rows(b, T, from, len, off, &f, &n, &orow);
        for (size_t t = f; t < n; t++)
            for (size_t h = 0; h < NH; h++) {
                size_t kvh = h / (NH / NKV);
                const float *a = att + ((b * NH + h) * T + t) * T;
                float *da = datt + ((b * NH + h) * T + t) * T;
                const float *d = dout + (orow + t - f) * QS + h * D;
                /* d att, d v */
                for (size_t t2 = 0; t2 <= t; t2++) {
                    double s = 0;
                    for (size_t i = 0; i < D; i++) {
                        s += (double)d[i] * v[(b * T + t2) * KS + kvh * D + i];
                        dv[(b * T + t2) * KS + kvh * D + i] += a[t2] * d[i];
                    }
                    da[t2] = (float)s;
                }
                /* softmax: dscore_j = a_j (da_j - sum_i a_i da_i) */
                double dot = 0;
                for (size_t t2 = 0; t2 <= t; t2++) dot += (double)a[t2] * da[t2];
                for (size_t t2 = 0; t2 <= t; t2++) {
                    double ds = a[t2] * (da[t2] - dot) * scale;
                    for (size_t i = 0; i < D; i++) {
                        dq[(b * T + t) * QS + h * D + i] +=
                            (float)(ds * k[(b * T + t2) * KS + kvh * D + i]);
                        dk[(b * T + t2) * KS + kvh * D + i] +=
                            (float)(ds * q[(b * T + t) * QS + h * D + i]);
                    }
                }
            }
    }
}
