/* linalg: the GPT-2 layer kernels (see linalg.h), after karpathy/llm.c's
 * train_gpt2.c, with every matmul on OpenBLAS sgemm and the weights in
 * Hugging Face's (IN, OUT) orientation.
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

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
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
