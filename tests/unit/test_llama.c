/* test_llama: the Llama family's network, its kernels and its loading.
 *
 * - every new linalg kernel against its naive twin (F32, F16 and BF16
 *   weights, misaligned data, several tiles and inner blocks; attention
 *   with row ranges), and every F16/BF16 bit pattern converted exactly;
 * - config.json of the four architectures, and its errors by name;
 * - the PyTorch golden log-probabilities of tests/data/{llama-bf16-sharded,
 *   qwen2-f16, qwen3-f32, mistral-bf16} (gen_llama_golden.py), batched
 *   with padding, within 1e-4;
 * - llama_backward's hook gradient against central finite differences,
 *   for full, partial, row-range and head-only passes of each model;
 * - partial passes, kept inputs, row ranges and FORWARD_ONLY workspaces
 *   against full passes; padding; bitwise determinism across thread
 *   counts and inside a parallel region;
 * - the weights stay mapped (no F32 copy of a BF16 matrix) and an owned
 *   F32 down_proj computes the same bits;
 * - bad model directories: unknown architecture, rope scaling "yarn", a
 *   shard missing, a tensor in two shards, an index and a shard that
 *   disagree, an I8 tensor, a wrong shape: ERR_FORMAT or ERR_NOTFOUND and
 *   a message naming the file and the problem. */
#include "base/errors.h"
#include "base/linalg.h"
#include "base/linalg_naive.h"
#include "base/splitmix.h"
#include "model/hf_weights.h"
#include "model/llama.h"
#include "model/llama_config.h"
#include "model/llama_train.h"
#include "model/llama_train_naive.h"
#include "model/safetensors.h"
#include "../harness.h"

#include <cblas.h>
#include <dirent.h>
#include <jansson.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 777;
static double urand(void) { return splitmix_unit(&rng_state); } /* [0, 1) */
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }
static void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = frand(lo, hi);
}
static float *fnew(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fdup(const float *x, size_t n)
{
    float *y = fnew(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}

#define CHECK_CLOSE(a, b, n, atol, rtol) check_close(#a, a, b, n, atol, rtol, __LINE__)
static void check_close(const char *what, const float *a, const float *b,
                        size_t n, double atol, double rtol, int line)
{
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) - (atol + rtol * fabs(b[i]));
        if (!(d <= worst)) {
            worst = isnan(d) ? INFINITY : d;
            wi = i;
        }
    }
    if (worst > 0) {
        fprintf(stderr, "  line %d: %s[%zu] = %.9g, expected %.9g\n", line,
                what, wi, a[wi], b[wi]);
        harness_current_failed = 1;
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void set_threads(int n)
{
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* n random values of dtype d (normal numbers of moderate size), as bytes
 * at buf + offset; returns buf + offset. */
static void *random_weights(unsigned char *buf, size_t offset, linalg_dtype d,
                            size_t n)
{
    unsigned char *p = buf + offset;
    for (size_t i = 0; i < n; i++) {
        if (d == LINALG_F32) {
            float x = frand(-1, 1);
            memcpy(p + 4 * i, &x, 4);
        } else if (d == LINALG_BF16) { /* exponent 120..126: 2^-7 .. 2^-1 */
            uint16_t h = (uint16_t)((urand() < 0.5 ? 0x8000u : 0) |
                                    ((120u + (unsigned)(urand() * 7)) << 7) |
                                    (unsigned)(urand() * 128));
            memcpy(p + 2 * i, &h, 2);
        } else { /* F16, exponent 8..14: 2^-7 .. 2^-1 */
            uint16_t h = (uint16_t)((urand() < 0.5 ? 0x8000u : 0) |
                                    ((8u + (unsigned)(urand() * 7)) << 10) |
                                    (unsigned)(urand() * 1024));
            memcpy(p + 2 * i, &h, 2);
        }
    }
    return p;
}

/* ---- kernels vs naive twins ------------------------------------------------ */

TEST(kernel_to_f32_every_pattern)
{
    /* every 16-bit pattern, at an odd address */
    unsigned char *raw = malloc(2 * 65536 + 1);
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        memcpy(raw + 1 + 2 * i, &h, 2);
    }
    float *a = fnew(65536), *b = fnew(65536);
    linalg_dtype dts[2] = {LINALG_F16, LINALG_BF16};
    for (int k = 0; k < 2; k++) {
        linalg_to_f32(a, raw + 1, dts[k], 65536);
        linalg_to_f32_naive(b, raw + 1, dts[k], 65536);
        size_t bad = 0;
        for (size_t i = 0; i < 65536; i++)
            if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], 4)) bad++;
        CHECK_MSG(bad == 0, "dtype %d: %zu patterns differ", k, bad);
    }
    float one;
    uint16_t h = 0x3c00; /* F16 1.0 */
    linalg_to_f32(&one, &h, LINALG_F16, 1);
    CHECK(one == 1.0f);
    h = 0x3f80; /* BF16 1.0 */
    linalg_to_f32(&one, &h, LINALG_BF16, 1);
    CHECK(one == 1.0f);
    free(raw); free(a); free(b);
}

/* linear forward and backward in every dtype against the naive twins;
 * misaligned F32 equals aligned F32; a BF16 weight and the F32 weight of
 * the same values give the same bits. */
static void linear_case(size_t N, size_t IN, size_t OUT)
{
    linalg_dtype dts[3] = {LINALG_F32, LINALG_F16, LINALG_BF16};
    float *x = fnew(N * IN), *bias = fnew(OUT), *dout = fnew(N * OUT);
    fill(x, N * IN, -1, 1);
    fill(bias, OUT, -0.5, 0.5);
    fill(dout, N * OUT, -1, 1);
    unsigned char *buf = malloc(4 * OUT * IN + 8);
    float *o1 = fnew(N * OUT), *o2 = fnew(N * OUT), *o3 = fnew(N * OUT);
    float *d1 = fnew(N * IN), *d2 = fnew(N * IN), *d3 = fnew(N * IN);
    for (int k = 0; k < 3; k++) {
        void *w = random_weights(buf, 0, dts[k], OUT * IN);
        linalg_linear_forward(o1, x, w, dts[k], bias, N, IN, OUT);
        linalg_linear_forward_naive(o2, x, w, dts[k], bias, N, IN, OUT);
        CHECK_CLOSE(o1, o2, N * OUT, 1e-4, 1e-4);
        linalg_linear_forward(o1, x, w, dts[k], NULL, N, IN, OUT);
        linalg_linear_forward_naive(o2, x, w, dts[k], NULL, N, IN, OUT);
        CHECK_CLOSE(o1, o2, N * OUT, 1e-4, 1e-4);
        fill(d1, N * IN, -1, 1);
        memcpy(d2, d1, N * IN * sizeof *d1);
        linalg_linear_backward(d1, dout, w, dts[k], N, IN, OUT);
        linalg_linear_backward_naive(d2, dout, w, dts[k], N, IN, OUT);
        CHECK_CLOSE(d1, d2, N * IN, 1e-4, 1e-4);
        /* one thread: the same bits */
        set_threads(1);
        linalg_linear_forward(o3, x, w, dts[k], NULL, N, IN, OUT);
        CHECK(!memcmp(o1, o3, N * OUT * sizeof *o1));
        set_threads(2);
        /* the same values as F32: the same bits */
        float *wf = fnew(OUT * IN);
        linalg_to_f32(wf, w, dts[k], OUT * IN);
        linalg_linear_forward(o3, x, wf, LINALG_F32, NULL, N, IN, OUT);
        CHECK(!memcmp(o1, o3, N * OUT * sizeof *o1));
        memcpy(d3, d2, N * IN * sizeof *d2); /* any start: compare sums */
        memset(d1, 0, N * IN * sizeof *d1);
        memset(d3, 0, N * IN * sizeof *d3);
        linalg_linear_backward(d1, dout, w, dts[k], N, IN, OUT);
        linalg_linear_backward(d3, dout, wf, LINALG_F32, N, IN, OUT);
        CHECK(!memcmp(d1, d3, N * IN * sizeof *d1));
        /* F32 two bytes off alignment: converted, still the same bits */
        if (dts[k] == LINALG_F32) {
            unsigned char *mis = malloc(4 * OUT * IN + 2);
            memcpy(mis + 2, w, 4 * OUT * IN);
            linalg_linear_forward(o3, x, mis + 2, LINALG_F32, NULL, N, IN, OUT);
            CHECK(!memcmp(o1, o3, N * OUT * sizeof *o1));
            memset(d3, 0, N * IN * sizeof *d3);
            linalg_linear_backward(d3, dout, mis + 2, LINALG_F32, N, IN, OUT);
            CHECK(!memcmp(d1, d3, N * IN * sizeof *d1));
            free(mis);
        }
        free(wf);
    }
    free(x); free(bias); free(dout); free(buf);
    free(o1); free(o2); free(o3); free(d1); free(d2); free(d3);
}

TEST(kernel_linear)
{
    linear_case(1, 45, 30);     /* the dot route: one row, tails */
    linear_case(8, 333, 150);   /* the dot route's largest N, in parallel */
    linear_case(9, 40, 30);     /* blocked: one tile, one block */
    linear_case(37, 1100, 300); /* 3 column tiles, 3 inner blocks */
    linear_case(600, 70, 130);  /* 2 row tiles */
}

TEST(kernel_embedding)
{
    size_t V = 50, C = 70, N = 33;
    int inp[33];
    for (size_t i = 0; i < N; i++) inp[i] = (int)(urand() * V);
    unsigned char *buf = malloc(4 * V * C + 1);
    float *a = fnew(N * C), *b = fnew(N * C);
    linalg_dtype dts[3] = {LINALG_F32, LINALG_F16, LINALG_BF16};
    for (int k = 0; k < 3; k++) {
        void *t = random_weights(buf, 1, dts[k], V * C);
        linalg_embedding_forward(a, inp, t, dts[k], N, C);
        linalg_embedding_forward_naive(b, inp, t, dts[k], N, C);
        CHECK(!memcmp(a, b, N * C * sizeof *a));
    }
    free(buf); free(a); free(b);
}

TEST(kernel_rmsnorm)
{
    size_t N = 70, C = 150;
    float *x = fnew(N * C), *w = fnew(C), *dout = fnew(N * C);
    fill(x, N * C, -2, 3);
    fill(w, C, 0.5, 1.5);
    fill(dout, N * C, -1, 1);
    float *o1 = fnew(N * C), *o2 = fnew(N * C), *r1 = fnew(N), *r2 = fnew(N);
    linalg_rmsnorm_forward(o1, r1, x, w, N, C, 1e-5f);
    linalg_rmsnorm_forward_naive(o2, r2, x, w, N, C, 1e-5f);
    CHECK_CLOSE(o1, o2, N * C, 1e-6, 1e-5);
    CHECK_CLOSE(r1, r2, N, 1e-7, 1e-6);
    float *d1 = fnew(N * C);
    fill(d1, N * C, -1, 1);
    float *d2 = fdup(d1, N * C);
    linalg_rmsnorm_backward(d1, dout, x, w, r1, N, C);
    linalg_rmsnorm_backward_naive(d2, dout, x, w, r1, N, C);
    CHECK_CLOSE(d1, d2, N * C, 1e-5, 1e-4);
    /* in place, and per head (rows of D = 24) */
    float *o3 = fdup(x, N * C);
    linalg_rmsnorm_forward(o3, NULL, o3, w, N, C, 1e-5f);
    CHECK(!memcmp(o1, o3, N * C * sizeof *o1));
    free(x); free(w); free(dout); free(o1); free(o2); free(r1); free(r2);
    free(d1); free(d2); free(o3);
}

TEST(kernel_rope)
{
    size_t N = 30, NH = 3, D = 16, P = 40, h2 = D / 2;
    float *cs = fnew(P * h2), *sn = fnew(P * h2);
    for (size_t p = 0; p < P; p++)
        for (size_t i = 0; i < h2; i++) {
            double ang = p * pow(100.0, -(double)i / h2);
            cs[p * h2 + i] = (float)cos(ang);
            sn[p * h2 + i] = (float)sin(ang);
        }
    size_t pos[30];
    for (size_t i = 0; i < N; i++) pos[i] = (size_t)(urand() * P);
    float *x = fnew(N * NH * D), *y = fnew(N * NH * D);
    fill(x, N * NH * D, -1, 1);
    fill(y, N * NH * D, -1, 1);
    float *o1 = fnew(N * NH * D), *o2 = fnew(N * NH * D);
    linalg_rope_forward(o1, x, cs, sn, pos, N, NH, D);
    linalg_rope_forward_naive(o2, x, cs, sn, pos, N, NH, D);
    CHECK_CLOSE(o1, o2, N * NH * D, 1e-6, 1e-6);
    float *o3 = fdup(x, N * NH * D);
    linalg_rope_forward(o3, o3, cs, sn, pos, N, NH, D); /* in place */
    CHECK(!memcmp(o1, o3, N * NH * D * sizeof *o1));
    float *g1 = fnew(N * NH * D), *g2 = fnew(N * NH * D);
    fill(g1, N * NH * D, -1, 1);
    memcpy(g2, g1, N * NH * D * sizeof *g1);
    linalg_rope_backward(g1, y, cs, sn, pos, N, NH, D);
    linalg_rope_backward_naive(g2, y, cs, sn, pos, N, NH, D);
    CHECK_CLOSE(g1, g2, N * NH * D, 1e-6, 1e-6);
    /* the backward is the transpose: <R x, y> = <x, R^T y> */
    memset(g1, 0, N * NH * D * sizeof *g1);
    linalg_rope_backward(g1, y, cs, sn, pos, N, NH, D);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < N * NH * D; i++) {
        lhs += (double)o1[i] * y[i];
        rhs += (double)x[i] * g1[i];
    }
    CHECK_NEAR(lhs, rhs, 1e-4);
    free(cs); free(sn); free(x); free(y); free(o1); free(o2); free(o3);
    free(g1); free(g2);
}

TEST(kernel_swiglu)
{
    size_t N = 70000; /* above the parallel threshold */
    float *g = fnew(N), *u = fnew(N), *d = fnew(N);
    fill(g, N, -9, 9);
    fill(u, N, -2, 2);
    fill(d, N, -1, 1);
    float *o1 = fnew(N), *o2 = fnew(N);
    linalg_swiglu_forward(o1, g, u, N);
    linalg_swiglu_forward_naive(o2, g, u, N);
    CHECK_CLOSE(o1, o2, N, 1e-6, 1e-5);
    float *dg1 = fnew(N), *du1 = fnew(N);
    fill(dg1, N, -1, 1);
    fill(du1, N, -1, 1);
    float *dg2 = fdup(dg1, N), *du2 = fdup(du1, N), *dg3 = fdup(dg1, N);
    linalg_swiglu_backward(dg1, du1, d, g, u, N);
    linalg_swiglu_backward_naive(dg2, du2, d, g, u, N);
    CHECK_CLOSE(dg1, dg2, N, 1e-6, 1e-5);
    CHECK_CLOSE(du1, du2, N, 1e-6, 1e-5);
    linalg_swiglu_backward(dg3, NULL, d, g, u, N);
    CHECK(!memcmp(dg1, dg3, N * sizeof *dg1));
    free(g); free(u); free(d); free(o1); free(o2); free(dg1); free(du1);
    free(dg2); free(du2); free(dg3);
}

static void attention_case(size_t B, size_t T, size_t NH, size_t NKV,
                           size_t D, int rows)
{
    size_t QS = NH * D, KS = NKV * D, BT = B * T;
    float *q = fnew(BT * QS), *k = fnew(BT * KS), *v = fnew(BT * KS);
    fill(q, BT * QS, -1, 1);
    fill(k, BT * KS, -1, 1);
    fill(v, BT * KS, -1, 1);
    size_t from[3] = {3, 0, 7}, len[3] = {T, T - 2, 9}, off[3], n = 0;
    for (size_t b = 0; b < B; b++) {
        if (!rows) { from[b] = 0; len[b] = T; }
        off[b] = n;
        n += len[b] - from[b];
    }
    const size_t *F = rows ? from : NULL, *Lp = rows ? len : NULL,
                 *O = rows ? off : NULL;
    size_t na = B * NH * T * T;
    float *o1 = fnew(BT * QS), *o2 = fnew(BT * QS), *a1 = fnew(na),
          *a2 = fnew(na), *dout = fnew(BT * QS);
    fill(dout, BT * QS, -1, 1);
    linalg_gqa_attention_forward(o1, a1, q, k, v, B, T, NH, NKV, D, F, Lp, O);
    linalg_gqa_attention_forward_naive(o2, a2, q, k, v, B, T, NH, NKV, D, F,
                                       Lp, O);
    CHECK_CLOSE(o1, o2, n * QS, 1e-5, 1e-4);
    float *dq1 = fnew(BT * QS), *dk1 = fnew(BT * KS), *dv1 = fnew(BT * KS),
          *dq2 = fnew(BT * QS), *dk2 = fnew(BT * KS), *dv2 = fnew(BT * KS),
          *da = fnew(na);
    fill(dq1, BT * QS, -1, 1);
    memcpy(dq2, dq1, BT * QS * sizeof *dq1);
    linalg_gqa_attention_backward(dq1, dk1, dv1, da, dout, q, k, v, a1, B, T,
                                  NH, NKV, D, F, Lp, O);
    linalg_gqa_attention_backward_naive(dq2, dk2, dv2, da, dout, q, k, v, a1,
                                        B, T, NH, NKV, D, F, Lp, O);
    CHECK_CLOSE(dq1, dq2, BT * QS, 1e-5, 1e-4);
    CHECK_CLOSE(dk1, dk2, BT * KS, 1e-5, 1e-4);
    CHECK_CLOSE(dv1, dv2, BT * KS, 1e-5, 1e-4);
    if (rows) { /* the computed rows equal the full pass's */
        float *of = fnew(BT * QS), *af = fnew(na);
        linalg_gqa_attention_forward(of, af, q, k, v, B, T, NH, NKV, D, NULL,
                                     NULL, NULL);
        for (size_t b = 0; b < B; b++)
            for (size_t t = from[b]; t < len[b]; t++) {
                /* len < T changes the keys seen only by t >= len: none */
                CHECK_CLOSE(o1 + (off[b] + t - from[b]) * QS,
                            of + (b * T + t) * QS, QS, 1e-6, 1e-5);
            }
        free(of); free(af);
    }
    free(q); free(k); free(v); free(o1); free(o2); free(a1); free(a2);
    free(dout); free(dq1); free(dk1); free(dv1); free(dq2); free(dk2);
    free(dv2); free(da);
}

TEST(kernel_gqa_attention)
{
    attention_case(2, 5, 4, 2, 16, 0);  /* small: no parallel region */
    attention_case(3, 24, 6, 2, 24, 0);
    attention_case(3, 24, 6, 3, 16, 1); /* row ranges */
    attention_case(2, 20, 4, 4, 16, 0); /* plain multi-head */
}

/* ---- configuration --------------------------------------------------------- */

static char tmp_root[64];

static const char *tmp_path(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, name);
    return buf[k];
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

TEST(config_reads_the_four)
{
    llama_config c;
    int rc = llama_config_read(&c, "tests/data/llama-bf16-sharded/config.json");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(c.arch == LLAMA_ARCH_LLAMA && c.n_layer == 3 && c.n_embd == 64 &&
          c.n_inner == 160 && c.n_head == 4 && c.n_kv_head == 2 &&
          c.head_dim == 16 && c.vocab_size == 384 && c.tie_word_embeddings &&
          c.rope_llama3 && c.rope_factor == 8 &&
          c.rope_original_max_positions == 64 && !c.qkv_bias && !c.qk_norm &&
          c.n_eos == 2 && c.eos_token_ids[1] == 3 && c.bos_token_id == 1);
    rc = llama_config_read(&c, "tests/data/qwen2-f16/config.json");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(c.arch == LLAMA_ARCH_QWEN2 && c.qkv_bias && !c.o_bias &&
          c.head_dim == 16 && !c.tie_word_embeddings && !c.rope_llama3 &&
          c.rope_theta == 1e6 && c.rms_norm_eps == 1e-6f &&
          c.sliding_window == 0);
    rc = llama_config_read(&c, "tests/data/qwen3-f32/config.json");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(c.arch == LLAMA_ARCH_QWEN3 && c.qk_norm && !c.qkv_bias &&
          c.head_dim == 24 && c.n_head * c.head_dim == 96);
    rc = llama_config_read(&c, "tests/data/mistral-bf16/config.json");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(c.arch == LLAMA_ARCH_MISTRAL && c.sliding_window == 4096 &&
          !c.qkv_bias && !c.qk_norm);
    /* llama3's three bands, by hand: theta 10000, D 16, old 64, factor 8 */
    rc = llama_config_read(&c, "tests/data/llama-bf16-sharded/config.json");
    double f[8];
    llama_config_inv_freq(&c, f);
    CHECK_NEAR(f[0], 1.0, 1e-15);                /* wavelength 6.3: kept */
    double f1 = pow(10000.0, -2.0 / 16), w1 = 2 * M_PI / f1; /* 19.9 */
    double s1 = (64 / w1 - 1) / 3;
    CHECK_NEAR(f[1], (1 - s1) * f1 / 8 + s1 * f1, 1e-15);
    CHECK_NEAR(f[5], pow(10000.0, -10.0 / 16) / 8, 1e-18); /* slowed */
}

/* Writes `json` as DIR/config.json (in the temporary root) and expects
 * llama_config_read to fail with ERR_FORMAT and a message holding the
 * path and `needle`. */
static void expect_config_error(const char *json, const char *needle)
{
    const char *path = tmp_path("config.json");
    CHECK(write_text(path, json) == 0);
    llama_config c;
    int rc = llama_config_read(&c, path);
    const char *msg = err_message(rc);
    CHECK_MSG(rc == ERR_FORMAT, "rc %d for %s", rc, needle);
    CHECK_MSG(strstr(msg, path) && strstr(msg, needle),
              "message '%s' lacks '%s'", msg, needle);
}

#define BASE_CONFIG                                                        \
    "\"hidden_size\": 64, \"intermediate_size\": 160, "                    \
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "               \
    "\"vocab_size\": 100"

TEST(config_errors)
{
    expect_config_error("{\"architectures\": [\"GPTNeoXForCausalLM\"], "
                        BASE_CONFIG "}", "unknown architecture 'GPTNeoXForCausalLM'");
    const char *types[] = {"yarn", "linear", "dynamic", "longrope"};
    for (int i = 0; i < 4; i++) {
        char json[512], needle[64];
        snprintf(json, sizeof json, "{\"architectures\": [\"LlamaForCausalLM\"], "
                 BASE_CONFIG ", \"rope_scaling\": {\"%s\": \"%s\", \"factor\": 4.0}}",
                 i % 2 ? "type" : "rope_type", types[i]);
        snprintf(needle, sizeof needle, "rope scaling type '%s'", types[i]);
        expect_config_error(json, needle);
    }
    expect_config_error("{\"architectures\": [\"Qwen3ForCausalLM\"], "
                        BASE_CONFIG ", \"rope_parameters\": {\"rope_type\": "
                        "\"yarn\", \"rope_theta\": 1e6}}", "'yarn'");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        "\"hidden_size\": 64, \"num_hidden_layers\": 2, "
                        "\"num_attention_heads\": 4, \"vocab_size\": 100}",
                        "missing key 'intermediate_size'");
    expect_config_error("{" BASE_CONFIG "}", "missing key 'architectures'");
    expect_config_error("{\"architectures\": [\"MistralForCausalLM\"], "
                        BASE_CONFIG ", \"num_key_value_heads\": 3}",
                        "'num_key_value_heads' (3)");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        "\"hidden_size\": 66, \"intermediate_size\": 160, "
                        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                        "\"vocab_size\": 100}", "'hidden_size' (66)");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        BASE_CONFIG ", \"head_dim\": 15}", "'head_dim' (15)");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        BASE_CONFIG ", \"hidden_act\": \"gelu\"}",
                        "'hidden_act' is 'gelu'");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        BASE_CONFIG ", \"rope_scaling\": {\"rope_type\": "
                        "\"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                        "\"high_freq_factor\": 4.0}}",
                        "'rope_scaling.original_max_position_embeddings'");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        "\"hidden_size\": 64, \"intermediate_size\": 160, "
                        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                        "\"vocab_size\": -3}", "key 'vocab_size' must be positive");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        BASE_CONFIG ", \"eos_token_id\": \"x\"}",
                        "'eos_token_id'");
    expect_config_error("{\"architectures\": [\"LlamaForCausalLM\"], "
                        BASE_CONFIG ", \"partial_rotary_factor\": 0.5}",
                        "'partial_rotary_factor'");
    expect_config_error("[1, 2]", "not a JSON object");
    /* "default" rope scaling is none; a missing file is ERR_IO */
    const char *path = tmp_path("config.json");
    write_text(path, "{\"architectures\": [\"LlamaForCausalLM\"], " BASE_CONFIG
                     ", \"rope_scaling\": {\"rope_type\": \"default\"}}");
    llama_config c;
    CHECK(llama_config_read(&c, path) == 0 && !c.rope_llama3 &&
          c.head_dim == 16 && c.n_kv_head == 4);
    CHECK(llama_config_read(&c, tmp_path("nope.json")) == ERR_IO);
}

/* ---- golden log-probabilities from PyTorch --------------------------------- */

static const char *const golden_models[4] = {
    "llama-bf16-sharded", "qwen2-f16", "qwen3-f32", "mistral-bf16",
};

/* The golden sequences of a model, padded into one (B, T) batch. */
typedef struct {
    json_t *root;
    size_t B, T, V;
    int tokens[8 * 32];
    size_t len[8];
} golden_set;

static int golden_read(golden_set *g, const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/%s/golden.json", dir);
    json_error_t jerr;
    memset(g, 0, sizeof *g);
    g->root = json_load_file(path, 0, &jerr);
    if (!g->root) return -1;
    json_t *seqs = json_object_get(g->root, "sequences");
    g->V = (size_t)json_integer_value(json_object_get(g->root, "vocab_size"));
    g->B = json_array_size(seqs);
    for (size_t b = 0; b < g->B; b++) {
        size_t n = json_array_size(json_object_get(json_array_get(seqs, b),
                                                   "tokens"));
        g->len[b] = n;
        if (n > g->T) g->T = n;
    }
    if (g->B > 8 || g->T > 32) return -1;
    for (size_t b = 0; b < g->B; b++) {
        json_t *jt = json_object_get(json_array_get(seqs, b), "tokens");
        for (size_t t = 0; t < g->T; t++) /* padding: token 5 */
            g->tokens[b * g->T + t] =
                t < g->len[b] ? (int)json_integer_value(json_array_get(jt, t))
                              : 5;
    }
    return 0;
}

static double golden_check(const char *dir, size_t *rows)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/%s", dir);
    llama_model m;
    int rc = llama_model_load(&m, path);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return INFINITY;
    golden_set g;
    CHECK(golden_read(&g, dir) == 0);
    size_t V = m.config.vocab_size, B = g.B, T = g.T, n = 0;
    CHECK(g.V == V);
    size_t pos[8 * 32];
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < g.len[b]; t++) pos[n++] = b * T + t;
    llama_acts *a = NULL;
    CHECK(llama_acts_new(&a, &m.config, B, T, n, 0) == 0);
    llama_batch batch = {.tokens = g.tokens, .B = B, .T = T, .logit_pos = pos,
                         .n_logits = n};
    rc = llama_forward(&m, a, &batch);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    float *lp = fnew(n * V);
    linalg_log_softmax_forward(lp, llama_acts_logits(a), n, V);
    json_t *seqs = json_object_get(g.root, "sequences");
    double worst = 0;
    size_t i = 0;
    for (size_t b = 0; b < B; b++) {
        json_t *jl = json_object_get(json_array_get(seqs, b), "logprobs");
        for (size_t t = 0; t < g.len[b]; t++, i++) {
            json_t *row = json_array_get(jl, t);
            CHECK(json_array_size(row) == V);
            for (size_t v = 0; v < V && v < json_array_size(row); v++) {
                double d = fabs(lp[i * V + v] -
                                json_number_value(json_array_get(row, v)));
                if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
            }
        }
    }
    *rows = n;
    free(lp);
    llama_acts_free(a);
    json_decref(g.root);
    llama_model_free(&m);
    return worst;
}

static void golden(int k)
{
    size_t rows = 0;
    double worst = golden_check(golden_models[k], &rows);
    CHECK_MSG(worst < 1e-4, "%s: max |log-prob - torch| = %g",
              golden_models[k], worst);
    CHECK(rows == 33);
    printf("     golden %-20s %zu positions, max |diff| %.2g\n",
           golden_models[k], rows, worst);
}

TEST(golden_llama_bf16_sharded) { golden(0); }
TEST(golden_qwen2_f16) { golden(1); }
TEST(golden_qwen3_f32) { golden(2); }
TEST(golden_mistral_bf16) { golden(3); }

/* ---- the weights stay mapped ----------------------------------------------- */

TEST(weights_stay_mapped)
{
    for (int k = 0; k < 4; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/%s", golden_models[k]);
        llama_model m;
        int rc = llama_model_load(&m, path);
        CHECK_MSG(rc == 0, "%s", err_message(rc));
        if (rc) continue;
        const llama_config *c = &m.config;
        /* every matrix is the file's tensor, in place, in its dtype */
        const st_tensor *t = hf_weights_find(m.weights,
                                             "model.embed_tokens.weight", NULL);
        CHECK(t && m.embed.data == t->data);
        for (size_t l = 0; l < c->n_layer; l++) {
            static const char *names[7] = {
                "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                "mlp.down_proj"};
            const llama_mat *mats[7] = {
                &m.layers[l].q, &m.layers[l].k, &m.layers[l].v, &m.layers[l].o,
                &m.layers[l].gate, &m.layers[l].up, &m.layers[l].down};
            for (int i = 0; i < 7; i++) {
                char name[128];
                snprintf(name, sizeof name, "model.layers.%zu.%s.weight", l,
                         names[i]);
                t = hf_weights_find(m.weights, name, NULL);
                CHECK_MSG(t && mats[i]->data == t->data &&
                          mats[i]->dtype == (t->dtype == ST_F32 ? LINALG_F32
                                             : t->dtype == ST_F16 ? LINALG_F16
                                                                  : LINALG_BF16),
                          "%s %s", golden_models[k], name);
            }
        }
        if (c->tie_word_embeddings)
            CHECK(m.lm_head.data == m.embed.data);
        else
            CHECK(m.lm_head.data ==
                  hf_weights_find(m.weights, "lm_head.weight", NULL)->data);
        /* what the model allocated is a few percent of the files */
        size_t own = llama_model_owned_bytes(&m),
               files = hf_weights_bytes(m.weights);
        CHECK_MSG(own * 20 < files, "%s: owns %zu bytes of %zu",
                  golden_models[k], own, files);
        CHECK(hf_weights_files(m.weights) == (k == 0 ? 3u : 1u));
        llama_model_free(&m);
    }
}

/* An owned F32 down_proj holds the same values and computes the same
 * bits; writing to it changes the output. */
TEST(owned_down_proj_same_bits)
{
    llama_model m;
    int rc = llama_model_load(&m, "tests/data/llama-bf16-sharded");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    golden_set g;
    CHECK(golden_read(&g, "llama-bf16-sharded") == 0);
    size_t V = m.config.vocab_size, pos[2] = {3, g.T + 7};
    llama_acts *a = NULL;
    CHECK(llama_acts_new(&a, &m.config, g.B, g.T, 2, 0) == 0);
    llama_batch b = {.tokens = g.tokens, .B = g.B, .T = g.T, .logit_pos = pos,
                     .n_logits = 2};
    CHECK(llama_forward(&m, a, &b) == 0);
    float *before = fdup(llama_acts_logits(a), 2 * V);
    const void *mapped = m.layers[1].down.data;
    size_t own0 = llama_model_owned_bytes(&m);
    float *w = NULL, *w2 = NULL;
    CHECK(llama_model_down_f32(&m, 1, &w) == 0 && w);
    CHECK(llama_model_down_f32(&m, 1, &w2) == 0 && w2 == w);
    CHECK(m.layers[1].down.data == w && m.layers[1].down.dtype == LINALG_F32);
    CHECK(m.layers[1].down.data != mapped);
    CHECK(llama_model_owned_bytes(&m) == own0 + 64 * 160 * sizeof(float));
    CHECK(llama_forward(&m, a, &b) == 0);
    CHECK(!memcmp(before, llama_acts_logits(a), 2 * V * sizeof *before));
    w[5] += 0.5f;
    CHECK(llama_forward(&m, a, &b) == 0);
    CHECK(memcmp(before, llama_acts_logits(a), 2 * V * sizeof *before) != 0);
    CHECK(llama_model_down_f32(&m, 3, &w) == ERR_INVALID);
    free(before);
    llama_acts_free(a);
    json_decref(g.root);
    llama_model_free(&m);
}

/* ---- gradients against finite differences --------------------------------- */

#define FD_B 2
#define FD_T 7
#define FD_NL 5
#define FD_NH 3

typedef struct {
    llama_model m;
    llama_acts *a;
    int tokens[FD_B * FD_T];
    size_t logit_pos[FD_NL];
    int targets[FD_NL];
    size_t hook_pos[FD_NH];
    float *hook_vec;
    size_t from[FD_B], len[FD_B];
    llama_hook hook;
    llama_batch batch;
} fd_case;

static double fd_loss(fd_case *s)
{
    if (llama_forward(&s->m, s->a, &s->batch)) return NAN;
    size_t V = s->m.config.vocab_size;
    return linalg_crossentropy_forward(NULL, llama_acts_logits(s->a),
                                       s->targets, FD_NL, V) / FD_NL;
}

static double central(fd_case *s, float *w, float eps)
{
    float orig = *w;
    *w = orig + eps;
    double lp = fd_loss(s);
    *w = orig - eps;
    double lm = fd_loss(s);
    *w = orig;
    return (lp - lm) / (2.0 * eps);
}

/* As test_gpt2's: a well-resolved step must agree tightly, the small one
 * is the double check. */
static int fd_agrees(fd_case *s, float *w, double g, size_t idx)
{
    double fd1 = central(s, w, 1e-2f), fd2 = central(s, w, 1e-3f);
    int ok = fabs(g - fd1) <= 2e-4 + 1e-2 * fabs(fd1) &&
             fabs(g - fd2) <= 1e-3 + 2e-2 * fabs(fd2);
    if (!ok)
        fprintf(stderr, "  dvec[%zu]: backward %.6g, fd(1e-2) %.6g, fd(1e-3) "
                "%.6g\n", idx, g, fd1, fd2);
    return ok;
}

enum { FD_FULL, FD_PARTIAL, FD_ROWS, FD_HEAD_ONLY };

/* Backward for one kind of pass over model k, then central differences
 * for every 7th hook vector entry. Returns the worst relative error. */
static double fd_check(int k, size_t hook_layer, int kind)
{
    fd_case s;
    memset(&s, 0, sizeof s);
    char path[256];
    snprintf(path, sizeof path, "tests/data/%s", golden_models[k]);
    int rc = llama_model_load(&s.m, path);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return INFINITY;
    size_t V = s.m.config.vocab_size, C = s.m.config.n_embd,
           L = s.m.config.n_layer;
    rng_state = 4242 + (uint64_t)k;
    for (size_t i = 0; i < FD_B * FD_T; i++) s.tokens[i] = (int)(urand() * V);
    size_t lp[FD_NL] = {1, 4, 6, 9, 13}, hp[FD_NH] = {4, 9, 4};
    if (kind == FD_ROWS) { /* every logit and hook in the ranges 3..6, 2..7 */
        size_t lp2[FD_NL] = {3, 5, 6, 9, 13}, hp2[FD_NH] = {5, 9, 5};
        memcpy(lp, lp2, sizeof lp);
        memcpy(hp, hp2, sizeof hp);
        s.from[0] = 3; s.len[0] = 7; s.from[1] = 2; s.len[1] = 7;
    }
    for (size_t i = 0; i < FD_NL; i++) {
        s.logit_pos[i] = lp[i];
        s.targets[i] = (int)(urand() * V);
    }
    memcpy(s.hook_pos, hp, sizeof hp); /* a repeated position too */
    s.hook_vec = fnew(FD_NH * C);
    fill(s.hook_vec, FD_NH * C, -0.3f, 0.3f);
    s.hook = (llama_hook){.layer = hook_layer, .n = FD_NH, .pos = s.hook_pos,
                          .vec = s.hook_vec};
    CHECK(llama_acts_new(&s.a, &s.m.config, FD_B, FD_T, FD_NL, 0) == 0);
    llama_batch base = {.tokens = s.tokens, .B = FD_B, .T = FD_T,
                        .logit_pos = s.logit_pos, .n_logits = FD_NL};
    CHECK(llama_forward(&s.m, s.a, &base) == 0); /* the earlier pass */
    s.batch = base;
    s.batch.hook = &s.hook;
    if (kind != FD_FULL) s.batch.start_layer = hook_layer + 1;
    if (kind == FD_ROWS) {
        s.batch.row_from = s.from;
        s.batch.row_len = s.len;
    }
    (void)L;
    float *dlogits = fnew(FD_NL * V), *dvec = fnew(FD_NH * C);
    double loss = fd_loss(&s);
    CHECK(isfinite(loss));
    float dl = 1.0f / FD_NL;
    for (size_t i = 0; i < FD_NL; i++)
        linalg_crossentropy_softmax_backward(dlogits + i * V, &dl,
                                             llama_acts_logits(s.a) + i * V,
                                             s.targets + i, 1, V);
    rc = llama_backward(&s.m, s.a, &s.batch, dlogits, dvec);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    double worst = 0, gmax = 0;
    int checked = 0;
    for (size_t j = 0; j < FD_NH * C; j += 7) {
        double fd = central(&s, s.hook_vec + j, 1e-2f);
        CHECK_MSG(fd_agrees(&s, s.hook_vec + j, dvec[j], j), "%s layer %zu "
                  "kind %d", golden_models[k], hook_layer, kind);
        worst = fmax(worst, fabs(dvec[j] - fd) / (1e-3 + fabs(fd)));
        gmax = fmax(gmax, fabs(dvec[j]));
        checked++;
    }
    CHECK(checked >= 27 && gmax > 1e-4);
    /* the backward is repeatable: the same bits */
    float *dvec2 = fnew(FD_NH * C);
    fd_loss(&s);
    CHECK(llama_backward(&s.m, s.a, &s.batch, dlogits, dvec2) == 0);
    CHECK(!memcmp(dvec, dvec2, FD_NH * C * sizeof *dvec));
    free(dvec2); free(dvec); free(dlogits); free(s.hook_vec);
    llama_acts_free(s.a);
    llama_model_free(&s.m);
    return worst;
}

static void fd_all(int kind)
{
    for (int k = 0; k < 4; k++) {
        size_t L = k == 0 ? 3 : 2;
        size_t layers[2] = {0, L - 1};
        for (int i = 0; i < 2; i++) {
            if (kind == FD_HEAD_ONLY && layers[i] != L - 1) continue;
            double w = fd_check(k, layers[i], kind);
            printf("     fd %-20s hook layer %zu: worst |backward - fd| / "
                   "(1e-3 + |fd|) = %.2g\n", golden_models[k], layers[i], w);
        }
    }
}

TEST(backward_full_pass) { fd_all(FD_FULL); }
TEST(backward_partial_pass) { fd_all(FD_PARTIAL); }
TEST(backward_row_range_pass) { fd_all(FD_ROWS); }
TEST(backward_head_only_pass) { fd_all(FD_HEAD_ONLY); }

/* ---- passes against each other ---------------------------------------------- */

typedef struct {
    llama_model m;
    golden_set g;
    size_t pos[8 * 32];
    size_t n_pos;
} pass_case;

static int pass_setup(pass_case *p, int k)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/%s", golden_models[k]);
    memset(p, 0, sizeof *p);
    int rc = llama_model_load(&p->m, path);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc || golden_read(&p->g, golden_models[k])) return -1;
    for (size_t b = 0; b < p->g.B; b++)
        for (size_t t = 0; t < p->g.len[b]; t++)
            p->pos[p->n_pos++] = b * p->g.T + t;
    return 0;
}

static void pass_free(pass_case *p)
{
    json_decref(p->g.root);
    llama_model_free(&p->m);
}

/* start_layer s with the hook at s-1, from the earlier pass or from a
 * kept input, equals the full pass; FORWARD_ONLY keeps the same keys and
 * block outputs; an early end gives the same lower layers. */
TEST(partial_passes_equal_full_pass)
{
    for (int k = 0; k < 4; k++) {
        pass_case p;
        if (pass_setup(&p, k)) continue;
        const llama_config *c = &p.m.config;
        size_t B = p.g.B, T = p.g.T, C = c->n_embd, F = c->n_inner,
               V = c->vocab_size, L = c->n_layer, NL = p.n_pos;
        size_t hpos[2] = {2, T + 4};
        float *vec = fnew(2 * C);
        fill(vec, 2 * C, -0.5, 0.5);
        llama_hook h = {.layer = 0, .n = 2, .pos = hpos, .vec = vec};
        llama_acts *a = NULL, *a2 = NULL, *lean = NULL;
        CHECK(llama_acts_new(&a, c, B, T, NL, 0) == 0);
        CHECK(llama_acts_new(&a2, c, B, T, NL, 0) == 0);
        CHECK(llama_acts_new(&lean, c, B, T, NL, LLAMA_ACTS_FORWARD_ONLY) == 0);
        llama_batch full = {.tokens = p.g.tokens, .B = B, .T = T,
                            .logit_pos = p.pos, .n_logits = NL, .hook = &h};
        CHECK(llama_forward(&p.m, a, &full) == 0);
        float *ref = fdup(llama_acts_logits(a), NL * V);
        float *out0 = fdup(llama_acts_block_out(a, 0), B * T * C);
        /* the same pass from layer 1 */
        llama_batch part = full;
        part.start_layer = 1;
        CHECK(llama_forward(&p.m, a, &part) == 0);
        CHECK(!memcmp(ref, llama_acts_logits(a), NL * V * sizeof *ref));
        /* from a kept input, in a fresh workspace */
        part.input = out0;
        CHECK(llama_forward(&p.m, a2, &part) == 0);
        CHECK(!memcmp(ref, llama_acts_logits(a2), NL * V * sizeof *ref));
        /* FORWARD_ONLY: the same logits, keys and block outputs */
        CHECK(llama_forward(&p.m, lean, &full) == 0);
        CHECK(!memcmp(ref, llama_acts_logits(lean), NL * V * sizeof *ref));
        CHECK(llama_forward(&p.m, a, &full) == 0);
        for (size_t l = 0; l < L; l++) {
            CHECK(!memcmp(llama_acts_mlp_key(a, l), llama_acts_mlp_key(lean, l),
                          B * T * F * sizeof(float)));
            CHECK(!memcmp(llama_acts_block_out(a, l),
                          llama_acts_block_out(lean, l),
                          B * T * C * sizeof(float)));
        }
        /* LOGITS_ONLY: the same logits, with and without the hook, and
         * no keys or block outputs to read */
        llama_acts *bare = NULL;
        CHECK(llama_acts_new(&bare, c, B, T, NL, LLAMA_ACTS_LOGITS_ONLY) == 0);
        CHECK(llama_forward(&p.m, bare, &full) == 0);
        CHECK(!memcmp(ref, llama_acts_logits(bare), NL * V * sizeof *ref));
        CHECK(llama_acts_mlp_key(bare, 0) == NULL);
        CHECK(llama_acts_block_out(bare, 0) == NULL);
        llama_batch plain = full;
        plain.hook = NULL;
        CHECK(llama_forward(&p.m, lean, &plain) == 0);
        CHECK(llama_forward(&p.m, bare, &plain) == 0);
        CHECK(!memcmp(llama_acts_logits(lean), llama_acts_logits(bare),
                      NL * V * sizeof *ref));
        /* its block outputs share two slots, so a pass cannot start above
         * layer 0 from them: refused, as GPT-2's is */
        llama_batch above = plain;
        above.start_layer = 1;
        CHECK(llama_forward(&p.m, bare, &above) == ERR_INVALID);
        err_clear();
        llama_acts_free(bare);
        /* the block output is stored before the hook's addition */
        CHECK(!memcmp(out0, llama_acts_block_out(a, 0), B * T * C * sizeof(float)));
        /* an early end: the lower layers as in the full pass */
        llama_batch early = {.tokens = p.g.tokens, .B = B, .T = T,
                             .end_layer = 1};
        CHECK(llama_forward(&p.m, a2, &early) == 0);
        CHECK(!memcmp(llama_acts_mlp_key(a, 0), llama_acts_mlp_key(a2, 0),
                      B * T * F * sizeof(float)));
        free(vec); free(ref); free(out0);
        llama_acts_free(a); llama_acts_free(a2); llama_acts_free(lean);
        pass_free(&p);
    }
}

/* Row ranges compute the rows in the ranges as the full pass does. */
TEST(row_range_pass_equals_full_pass)
{
    for (int k = 0; k < 4; k++) {
        pass_case p;
        if (pass_setup(&p, k)) continue;
        const llama_config *c = &p.m.config;
        size_t B = p.g.B, T = p.g.T, C = c->n_embd, V = c->vocab_size;
        size_t from[8], len[8], lpos[8], hpos[8];
        float *vec = fnew(B * C);
        fill(vec, B * C, -0.5, 0.5);
        for (size_t b = 0; b < B; b++) {
            len[b] = p.g.len[b];
            from[b] = len[b] / 2;
            lpos[b] = b * T + len[b] - 1;
            hpos[b] = b * T + from[b];
        }
        llama_hook h = {.layer = 0, .n = B, .pos = hpos, .vec = vec};
        llama_acts *a = NULL;
        CHECK(llama_acts_new(&a, c, B, T, B, 0) == 0);
        llama_batch full = {.tokens = p.g.tokens, .B = B, .T = T,
                            .logit_pos = lpos, .n_logits = B, .hook = &h};
        CHECK(llama_forward(&p.m, a, &full) == 0);
        float *ref = fdup(llama_acts_logits(a), B * V);
        llama_batch rows = full;
        rows.start_layer = 1;
        rows.row_from = from;
        rows.row_len = len;
        CHECK(llama_forward(&p.m, a, &rows) == 0);
        CHECK_CLOSE(llama_acts_logits(a), ref, B * V, 2e-5, 1e-5);
        /* and again with other vectors, then the first ones back */
        fill(vec, B * C, -0.5, 0.5);
        CHECK(llama_forward(&p.m, a, &rows) == 0);
        CHECK(max_abs_diff(llama_acts_logits(a), ref, B * V) > 1e-4);
        free(vec); free(ref);
        llama_acts_free(a);
        pass_free(&p);
    }
}

/* A workspace from layer h+1 (the hook's steps: full pass, row ranges,
 * backward to the hook) gives the logits and dvec of one that keeps every
 * layer, bit for bit; it refuses a backward or row ranges lower down. */
TEST(workspace_from_layer_equals_full)
{
    for (int k = 0; k < 4; k++) {
        pass_case p;
        if (pass_setup(&p, k)) continue;
        const llama_config *c = &p.m.config;
        size_t B = p.g.B, T = p.g.T, C = c->n_embd, V = c->vocab_size,
               L = c->n_layer;
        size_t from[8], len[8], lpos[8], hpos[8];
        float *vec = fnew(B * C), *dl = fnew(B * V);
        float *dv = fnew(B * C), *dv2 = fnew(B * C);
        fill(vec, B * C, -0.5, 0.5);
        fill(dl, B * V, -0.1, 0.1);
        for (size_t b = 0; b < B; b++) {
            len[b] = p.g.len[b];
            from[b] = len[b] / 2;
            lpos[b] = b * T + len[b] - 1;
            hpos[b] = b * T + from[b];
        }
        for (size_t hl = 0; hl + 1 < L; hl++) {
            llama_hook h = {.layer = hl, .n = B, .pos = hpos, .vec = vec};
            llama_acts *a = NULL, *a2 = NULL;
            CHECK(llama_acts_new(&a, c, B, T, B, 0) == 0);
            CHECK(llama_acts_new_from(&a2, c, B, T, B, 0, hl + 1) == 0);
            llama_batch full = {.tokens = p.g.tokens, .B = B, .T = T,
                                .logit_pos = lpos, .n_logits = B, .hook = &h};
            llama_batch rows = full;
            rows.start_layer = hl + 1;
            rows.row_from = from;
            rows.row_len = len;
            for (int pass = 0; pass < 2; pass++) {
                const llama_batch *b = pass ? &rows : &full;
                CHECK(llama_forward(&p.m, a, b) == 0);
                CHECK(llama_forward(&p.m, a2, b) == 0);
                CHECK(!memcmp(llama_acts_logits(a), llama_acts_logits(a2),
                              B * V * sizeof(float)));
                CHECK(llama_backward(&p.m, a, b, dl, dv) == 0);
                CHECK(llama_backward(&p.m, a2, b, dl, dv2) == 0);
                CHECK(!memcmp(dv, dv2, B * C * sizeof(float)));
            }
            if (hl > 0) { /* a hook one layer lower: refused */
                llama_hook lo = h;
                lo.layer = hl - 1;
                llama_batch low = full;
                low.hook = &lo;
                CHECK(llama_forward(&p.m, a2, &low) == 0);
                CHECK(llama_backward(&p.m, a2, &low, dl, dv2) != 0);
                low.start_layer = hl;
                low.row_from = from;
                low.row_len = len;
                CHECK(llama_forward(&p.m, a2, &low) != 0);
            }
            llama_acts_free(a); llama_acts_free(a2);
        }
        free(vec); free(dl); free(dv); free(dv2);
        pass_free(&p);
    }
}

/* What follows a sequence's end does not change its positions. */
TEST(padding_does_not_leak)
{
    pass_case p;
    if (pass_setup(&p, 0)) return;
    const llama_config *c = &p.m.config;
    size_t B = p.g.B, T = p.g.T, V = c->vocab_size, NL = p.n_pos;
    llama_acts *a = NULL;
    CHECK(llama_acts_new(&a, c, B, T, NL, 0) == 0);
    llama_batch b = {.tokens = p.g.tokens, .B = B, .T = T, .logit_pos = p.pos,
                     .n_logits = NL};
    CHECK(llama_forward(&p.m, a, &b) == 0);
    float *ref = fdup(llama_acts_logits(a), NL * V);
    for (size_t s = 0; s < B; s++)
        for (size_t t = p.g.len[s]; t < T; t++)
            p.g.tokens[s * T + t] = (int)(urand() * V);
    CHECK(llama_forward(&p.m, a, &b) == 0);
    CHECK(!memcmp(ref, llama_acts_logits(a), NL * V * sizeof *ref));
    free(ref);
    llama_acts_free(a);
    pass_free(&p);
}

/* The same bits with 1 or 2 threads, and inside a parallel region. */
TEST(determinism_threads_parallel_region)
{
    pass_case p;
    if (pass_setup(&p, 2)) return;
    const llama_config *c = &p.m.config;
    size_t B = p.g.B, T = p.g.T, V = c->vocab_size, NL = p.n_pos, C = c->n_embd;
    size_t hpos[1] = {4};
    float *vec = fnew(C), *dl = fnew(NL * V);
    fill(vec, C, -0.5, 0.5);
    fill(dl, NL * V, -0.01f, 0.01f);
    llama_hook h = {.layer = 0, .n = 1, .pos = hpos, .vec = vec};
    llama_batch b = {.tokens = p.g.tokens, .B = B, .T = T, .logit_pos = p.pos,
                     .n_logits = NL, .hook = &h};
    float *out[3], *dv[3];
    for (int r = 0; r < 3; r++) {
        llama_acts *a = NULL;
        CHECK(llama_acts_new(&a, c, B, T, NL, 0) == 0);
        dv[r] = fnew(C);
        if (r < 2) {
            set_threads(r + 1);
            CHECK(llama_forward(&p.m, a, &b) == 0);
            CHECK(llama_backward(&p.m, a, &b, dl, dv[r]) == 0);
        } else {
            set_threads(2);
            int rc1 = -1, rc2 = -1;
#pragma omp parallel num_threads(2)
            {
#pragma omp single
                {
                    rc1 = llama_forward(&p.m, a, &b);
                    rc2 = llama_backward(&p.m, a, &b, dl, dv[r]);
                }
            }
            CHECK(rc1 == 0 && rc2 == 0);
        }
        out[r] = fdup(llama_acts_logits(a), NL * V);
        llama_acts_free(a);
    }
    for (int r = 1; r < 3; r++) {
        CHECK_MSG(!memcmp(out[0], out[r], NL * V * sizeof(float)), "run %d", r);
        CHECK_MSG(!memcmp(dv[0], dv[r], C * sizeof(float)), "run %d", r);
    }
    for (int r = 0; r < 3; r++) { free(out[r]); free(dv[r]); }
    free(vec); free(dl);
    pass_free(&p);
}

TEST(bad_arguments)
{
    pass_case p;
    if (pass_setup(&p, 1)) return;
    const llama_config *c = &p.m.config;
    size_t B = p.g.B, T = p.g.T, V = c->vocab_size, C = c->n_embd;
    llama_acts *a = NULL;
    CHECK(llama_acts_new(&a, c, B, c->n_positions + 1, 1, 0) == ERR_INVALID);
    CHECK(llama_acts_new(&a, c, 0, T, 1, 0) == ERR_INVALID);
    llama_config win = *c;
    win.sliding_window = 8;
    CHECK(llama_acts_new(&a, &win, 1, 9, 1, 0) == ERR_INVALID);
    CHECK(llama_acts_new(&a, c, B, T, 1, 0) == 0);
    size_t lp = 1, hp = 0;
    float vec[64] = {0}, dl[320] = {0}, dv[64];
    (void)V;
    llama_hook h = {.layer = 0, .n = 1, .pos = &hp, .vec = vec};
    llama_batch b = {.tokens = p.g.tokens, .B = B, .T = T, .logit_pos = &lp,
                     .n_logits = 1};
    /* a backward before any forward, or without a hook */
    CHECK(llama_backward(&p.m, a, &b, dl, dv) == ERR_INVALID);
    CHECK(llama_forward(&p.m, a, &b) == 0);
    CHECK(llama_backward(&p.m, a, &b, dl, dv) == ERR_INVALID);
    b.hook = &h;
    CHECK(llama_backward(&p.m, a, &b, dl, dv) == ERR_INVALID); /* no such pass */
    CHECK(llama_forward(&p.m, a, &b) == 0);
    CHECK(llama_backward(&p.m, a, &b, dl, dv) == 0);
    /* tokens, positions, layers out of range */
    p.g.tokens[3] = (int)V;
    CHECK(llama_forward(&p.m, a, &b) == ERR_INVALID);
    p.g.tokens[3] = 0;
    lp = B * T;
    CHECK(llama_forward(&p.m, a, &b) == ERR_INVALID);
    lp = 1;
    h.layer = c->n_layer;
    CHECK(llama_forward(&p.m, a, &b) == ERR_INVALID);
    h.layer = 0;
    b.start_layer = 2; /* the hook below start - 1 */
    CHECK(llama_forward(&p.m, a, &b) == ERR_INVALID);
    b.start_layer = 0;
    /* a FORWARD_ONLY workspace: no backward, no row ranges */
    llama_acts *lean = NULL;
    CHECK(llama_acts_new(&lean, c, B, T, 1, LLAMA_ACTS_FORWARD_ONLY) == 0);
    CHECK(llama_forward(&p.m, lean, &b) == 0);
    CHECK(llama_backward(&p.m, lean, &b, dl, dv) == ERR_INVALID);
    size_t from[8] = {0}, len[8] = {0};
    for (size_t r = 0; r < B; r++) len[r] = T;
    llama_batch rows = b;
    rows.start_layer = 1;
    rows.row_from = from;
    rows.row_len = len;
    CHECK(llama_forward(&p.m, lean, &rows) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "FORWARD_ONLY") != NULL);
    (void)C;
    llama_acts_free(lean);
    llama_acts_free(a);
    pass_free(&p);
}

/* ---- bad model directories ------------------------------------------------------ */

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    int rc = in && out ? 0 : -1;
    char buf[65536];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = -1;
    if (in) fclose(in);
    if (out && fclose(out)) rc = -1;
    return rc;
}

/* A fresh copy of tests/data/SRC as DIR in the temporary root; returns
 * its path. */
static const char *copy_model(const char *src, const char *name)
{
    const char *dir = tmp_path(name);
    char from[512], to[512], cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return dir;
    mkdir(dir, 0777);
    snprintf(from, sizeof from, "tests/data/%s", src);
    DIR *d = opendir(from);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(from, sizeof from, "tests/data/%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, e->d_name);
        CHECK(copy_file(from, to) == 0);
    }
    if (d) closedir(d);
    return dir;
}

/* Sets key = value (JSON text) in the JSON object file dir/file; with
 * sub, in its member object `sub`. */
static void edit_json(const char *dir, const char *file, const char *sub,
                      const char *key, const char *value)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *obj = root;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
    CHECK(root && v);
    if (!root || !v) return;
    if (sub) obj = json_object_get(root, sub);
    json_object_set_new(obj, key, v);
    CHECK(json_dump_file(root, path, JSON_INDENT(1)) == 0);
    json_decref(root);
}

/* llama_model_load(dir) fails with code and a message that names the
 * file (dir + "/" + file) and holds `needle`. */
static void expect_load_error(const char *dir, int code, const char *file,
                              const char *needle)
{
    llama_model m;
    int rc = llama_model_load(&m, dir);
    const char *msg = err_message(rc);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    CHECK_MSG(rc == code, "rc %d, wanted %d: %s", rc, code, msg);
    CHECK_MSG(strstr(msg, path) != NULL, "message '%s' lacks '%s'", msg, path);
    CHECK_MSG(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg,
              needle);
    CHECK(m.layers == NULL && m.weights == NULL); /* zeroed on failure */
    printf("     %s\n", msg);
}

#define SHARDED "llama-bf16-sharded"
#define SHARD1 "model-00001-of-00003.safetensors"
#define SHARD2 "model-00002-of-00003.safetensors"
#define SHARD3 "model-00003-of-00003.safetensors"
#define INDEX "model.safetensors.index.json"

TEST(bad_model_directories)
{
    const char *dir;
    dir = copy_model("qwen3-f32", "arch");
    edit_json(dir, "config.json", NULL, "architectures", "[\"GemmaForCausalLM\"]");
    expect_load_error(dir, ERR_FORMAT, "config.json",
                      "unknown architecture 'GemmaForCausalLM'");

    dir = copy_model(SHARDED, "yarn");
    edit_json(dir, "config.json", "rope_scaling", "rope_type", "\"yarn\"");
    expect_load_error(dir, ERR_FORMAT, "config.json",
                      "rope scaling type 'yarn' is not supported");

    dir = copy_model(SHARDED, "missing-shard");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, SHARD2);
    CHECK(unlink(path) == 0);
    expect_load_error(dir, ERR_NOTFOUND, SHARD2, "is missing");
    CHECK(strstr(err_message(ERR_NOTFOUND), INDEX) != NULL);

    /* model.norm.weight in shard 3 and in an extra shard the index names */
    dir = copy_model(SHARDED, "two-shards");
    {
        float w[64];
        for (int i = 0; i < 64; i++) w[i] = 1.0f;
        st_write_tensor t[2] = {
            {.name = "model.norm.weight", .ndim = 1, .shape = {64}, .data = w},
            {.name = "extra.weight", .ndim = 1, .shape = {64}, .data = w}};
        snprintf(path, sizeof path, "%s/model-extra.safetensors", dir);
        CHECK(safetensors_write(path, t, 2) == 0);
        edit_json(dir, INDEX, "weight_map", "extra.weight",
                  "\"model-extra.safetensors\"");
        expect_load_error(dir, ERR_FORMAT, SHARD3, "model.norm.weight");
        CHECK(strstr(err_message(ERR_FORMAT), "is in two shards") &&
              strstr(err_message(ERR_FORMAT), "model-extra.safetensors"));
    }

    /* a tensor of shard 1 that the index maps to shard 2 */
    dir = copy_model(SHARDED, "moved");
    edit_json(dir, INDEX, "weight_map", "model.layers.0.mlp.up_proj.weight",
              "\"" SHARD2 "\"");
    expect_load_error(dir, ERR_FORMAT, SHARD1,
                      "holds tensor 'model.layers.0.mlp.up_proj.weight', which "
                      "the index");

    /* the index maps a tensor to a shard that does not hold it */
    dir = copy_model(SHARDED, "phantom");
    edit_json(dir, INDEX, "weight_map", "model.layers.1.mlp.extra.weight",
              "\"" SHARD2 "\"");
    expect_load_error(dir, ERR_FORMAT, INDEX,
                      "tensor 'model.layers.1.mlp.extra.weight' is mapped to '"
                      SHARD2 "', which does not hold it");

    /* a shard name that leaves the directory */
    dir = copy_model(SHARDED, "escape");
    edit_json(dir, INDEX, "weight_map", "model.norm.weight",
              "\"../" SHARDED "/" SHARD3 "\"");
    expect_load_error(dir, ERR_FORMAT, INDEX, "not a file name");

    /* an I8 tensor (shard 3 replaced by a file holding one) */
    dir = copy_model(SHARDED, "int8");
    {
        const char *hdr = "{\"model.norm.weight\":{\"dtype\":\"I8\",\"shape\":"
                          "[64],\"data_offsets\":[0,64]}}";
        size_t hl = strlen(hdr);
        snprintf(path, sizeof path, "%s/%s", dir, SHARD3);
        FILE *f = fopen(path, "wb");
        uint64_t n = hl;
        unsigned char zeros[64] = {0};
        CHECK(f && fwrite(&n, 8, 1, f) == 1 && fwrite(hdr, 1, hl, f) == hl &&
              fwrite(zeros, 1, 64, f) == 64);
        if (f) fclose(f);
        expect_load_error(dir, ERR_FORMAT, SHARD3, "unsupported dtype 'I8'");
    }

    /* a shape config.json does not imply */
    dir = copy_model("qwen2-f16", "shape");
    edit_json(dir, "config.json", NULL, "intermediate_size", "128");
    expect_load_error(dir, ERR_FORMAT, "model.safetensors",
                      "tensor 'model.layers.0.mlp.gate_proj.weight' has shape "
                      "[160, 64], config.json implies [128, 64]");

    /* a layer beyond num_hidden_layers; an untied model without lm_head */
    dir = copy_model("mistral-bf16", "layers");
    edit_json(dir, "config.json", NULL, "num_hidden_layers", "1");
    expect_load_error(dir, ERR_FORMAT, "model.safetensors",
                      "'model.layers.1.");
    dir = copy_model(SHARDED, "untied");
    edit_json(dir, "config.json", NULL, "tie_word_embeddings", "false");
    expect_load_error(dir, ERR_FORMAT, INDEX, "missing tensor 'lm_head.weight'");

    /* no weights at all; a broken index */
    dir = copy_model("qwen3-f32", "empty");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(unlink(path) == 0);
    llama_model m;
    CHECK(llama_model_load(&m, dir) == ERR_NOTFOUND);
    CHECK(strstr(err_message(ERR_NOTFOUND), "no model.safetensors") != NULL);
    dir = copy_model(SHARDED, "bad-index");
    snprintf(path, sizeof path, "%s/%s", dir, INDEX);
    CHECK(write_text(path, "{\"weight_map\": [1, 2]}") == 0);
    expect_load_error(dir, ERR_FORMAT, INDEX, "weight_map");
    CHECK(write_text(path, "{\"weight_map\": {\"a\": 3}}") == 0);
    expect_load_error(dir, ERR_FORMAT, INDEX, "not a string");
    CHECK(write_text(path, "{\"weight_map\": {\"a\": ") == 0);
    expect_load_error(dir, ERR_FORMAT, INDEX, "bad JSON");
}

/* ---- trainable models: weight gradients, init, save --------------------- */

TEST(kernel_weight_grads)
{
    size_t N = 300, C = 257, V = 40;
    float *dout = fnew(N * C), *inp = fnew(N * C), *rstd = fnew(N);
    fill(dout, N * C, -1, 1);
    fill(inp, N * C, -2, 2);
    fill(rstd, N, 0.2f, 3);
    int *ids = malloc(N * sizeof *ids);
    for (size_t n = 0; n < N; n++) ids[n] = (int)(urand() * V);
    float *a = fnew(C), *b = fnew(C);
    fill(a, C, -1, 1);
    memcpy(b, a, C * sizeof *a);
    for (int t = 1; t <= 2; t++) {
        set_threads(t);
        float *w = fdup(a, C), *bias = fdup(a, C);
        llama_rmsnorm_weight_backward(w, dout, inp, rstd, N, C);
        llama_bias_backward(bias, dout, N, C);
        float *wn = fdup(b, C), *bn = fdup(b, C);
        llama_rmsnorm_weight_backward_naive(wn, dout, inp, rstd, N, C);
        llama_bias_backward_naive(bn, dout, N, C);
        CHECK_CLOSE(w, wn, C, 1e-4, 1e-4);
        CHECK_CLOSE(bias, bn, C, 1e-4, 1e-4);
        CHECK(max_abs_diff(w, a, C) > 1e-2);
        free(w); free(bias); free(wn); free(bn);
    }
    set_threads(2);
    float *e = fnew(V * C), *en = fnew(V * C);
    fill(e, V * C, -1, 1);
    memcpy(en, e, V * C * sizeof *e);
    llama_embedding_backward(e, dout, ids, N, C);
    llama_embedding_backward_naive(en, dout, ids, N, C);
    CHECK_CLOSE(e, en, V * C, 1e-4, 1e-4);
    free(dout); free(inp); free(rstd); free(ids); free(a); free(b);
    free(e); free(en);
}

/* A small config of each shape the trainable model has to cover. */
static llama_config train_config(int k)
{
    llama_config c;
    memset(&c, 0, sizeof c);
    c.arch = k == 0 ? LLAMA_ARCH_LLAMA : k == 1 ? LLAMA_ARCH_QWEN3
                                                : LLAMA_ARCH_QWEN2;
    c.n_layer = 2;
    c.n_embd = 16;
    c.n_inner = 24;
    c.n_head = 4;
    c.n_kv_head = k == 1 ? 4 : 2;
    c.head_dim = k == 1 ? 6 : 4;
    c.vocab_size = 23;
    c.n_positions = 16;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 10000;
    c.tie_word_embeddings = k != 0;
    c.qkv_bias = k != 1;
    c.o_bias = c.mlp_bias = k == 0;
    c.qk_norm = k == 1;
    c.bos_token_id = -1;
    c.eos_token_ids[0] = 22;
    c.n_eos = 1;
    return c;
}

/* Every parameter moved off its initial value (norms and biases too),
 * so that no gradient vanishes by symmetry. */
static void train_perturb(llama_model *m, uint64_t seed)
{
    rng_state = seed;
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += frand(-0.3f, 0.3f);
}

TEST(train_model_save_load)
{
    for (int k = 0; k < 3; k++) {
        llama_config c = train_config(k);
        llama_model m, l2;
        CHECK(llama_model_init_random(&m, &c, 5) == 0);
        train_perturb(&m, 11);
        size_t nt = llama_model_tensors(&m, NULL, 0), sum = 0;
        llama_tensor *t = calloc(nt, sizeof *t);
        llama_model_tensors(&m, t, nt);
        for (size_t i = 0; i < nt; i++) {
            CHECK(t[i].offset == sum);
            sum += t[i].numel;
        }
        CHECK(sum == m.n_params);
        CHECK(nt == 2 + 9 * c.n_layer + !c.tie_word_embeddings +
                        c.n_layer * (3 * c.qkv_bias + c.o_bias +
                                     3 * c.mlp_bias + 2 * c.qk_norm));
        free(t);
        const char *dir = tmp_path(k == 0 ? "tr0" : k == 1 ? "tr1" : "tr2");
        int rc = llama_model_save(&m, dir, ST_F32);
        CHECK_MSG(rc == 0, "%s", err_message(rc));
        rc = llama_model_load(&l2, dir);
        CHECK_MSG(rc == 0, "%s", err_message(rc));
        if (rc) { llama_model_free(&m); continue; }
        CHECK(l2.config.arch == c.arch && l2.config.n_kv_head == c.n_kv_head &&
              l2.config.tie_word_embeddings == c.tie_word_embeddings &&
              l2.config.qkv_bias == c.qkv_bias && l2.config.o_bias == c.o_bias &&
              l2.config.mlp_bias == c.mlp_bias && l2.config.qk_norm == c.qk_norm);
        int tok[2 * 6] = {1, 5, 7, 22, 0, 3, 9, 9, 2, 14, 6, 21};
        size_t pos[12];
        for (size_t i = 0; i < 12; i++) pos[i] = i;
        llama_batch b = {.tokens = tok, .B = 2, .T = 6, .logit_pos = pos,
                         .n_logits = 12};
        llama_acts *a1, *a2;
        CHECK(llama_acts_new(&a1, &c, 2, 6, 12, 0) == 0);
        CHECK(llama_acts_new(&a2, &c, 2, 6, 12, 0) == 0);
        CHECK(llama_forward(&m, a1, &b) == 0 && llama_forward(&l2, a2, &b) == 0);
        size_t V = c.vocab_size;
        CHECK(!memcmp(llama_acts_logits(a1), llama_acts_logits(a2),
                      12 * V * sizeof(float)));
        llama_model_free(&l2);
        CHECK(llama_model_save(&m, dir, ST_BF16) == 0);
        CHECK(llama_model_load(&l2, dir) == 0);
        CHECK(l2.embed.dtype == LINALG_BF16);
        CHECK(llama_forward(&l2, a2, &b) == 0);
        double d = max_abs_diff(llama_acts_logits(a1), llama_acts_logits(a2),
                                12 * V);
        CHECK_MSG(d > 0 && d < 0.05, "bf16 logits differ by %g", d);
        llama_acts_free(a1);
        llama_acts_free(a2);
        llama_model_free(&l2);
        llama_model_free(&m);
    }
}

#define TG_B 2
#define TG_T 6
#define TG_NL 9

typedef struct {
    llama_model m;
    llama_acts *a;
    llama_batch batch;
    int targets[TG_NL];
} tg_case;

static double tg_loss(tg_case *s)
{
    if (llama_forward(&s->m, s->a, &s->batch)) return NAN;
    return linalg_crossentropy_forward(NULL, llama_acts_logits(s->a),
                                       s->targets, TG_NL,
                                       s->m.config.vocab_size) / TG_NL;
}

static double tg_central(tg_case *s, float *w, float eps)
{
    float orig = *w;
    *w = orig + eps;
    double lp = tg_loss(s);
    *w = orig - eps;
    double lm = tg_loss(s);
    *w = orig;
    return (lp - lm) / (2.0 * eps);
}

/* Weight gradients of config k (with a hook at layer 0 whose gradient is
 * checked too) against central differences: entries of every tensor. */
static void train_fd(int k)
{
    tg_case s;
    memset(&s, 0, sizeof s);
    llama_config c = train_config(k);
    CHECK(llama_model_init_random(&s.m, &c, 7 + (uint64_t)k) == 0);
    train_perturb(&s.m, 99 + (uint64_t)k);
    llama_model g;
    CHECK(llama_model_init(&g, &c) == 0);
    size_t V = c.vocab_size, C = c.n_embd;
    int tokens[TG_B * TG_T];
    size_t lp[TG_NL] = {0, 1, 2, 4, 5, 6, 8, 10, 11}, hp[2] = {3, 8};
    rng_state = 31 + (uint64_t)k;
    for (size_t i = 0; i < TG_B * TG_T; i++) tokens[i] = (int)(urand() * V);
    for (size_t i = 0; i < TG_NL; i++) s.targets[i] = (int)(urand() * V);
    float *hv = fnew(2 * C);
    fill(hv, 2 * C, -0.3f, 0.3f);
    llama_hook h = {.layer = 0, .n = 2, .pos = hp, .vec = hv};
    s.batch = (llama_batch){.tokens = tokens, .B = TG_B, .T = TG_T,
                            .logit_pos = lp, .n_logits = TG_NL, .hook = &h};
    CHECK(llama_acts_new(&s.a, &c, TG_B, TG_T, TG_NL, 0) == 0);
    CHECK(isfinite(tg_loss(&s)));
    float *dlogits = fnew(TG_NL * V), *dvec = fnew(2 * C);
    float dl = 1.0f / TG_NL;
    for (size_t i = 0; i < TG_NL; i++)
        linalg_crossentropy_softmax_backward(dlogits + i * V, &dl,
                                             llama_acts_logits(s.a) + i * V,
                                             s.targets + i, 1, V);
    int rc = llama_backward_params(&s.m, s.a, &s.batch, dlogits, &g, dvec);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    size_t nt = llama_model_tensors(&s.m, NULL, 0);
    llama_tensor *t = calloc(nt, sizeof *t);
    llama_model_tensors(&s.m, t, nt);
    int bad = 0, checked = 0;
    double worst = 0;
    for (size_t i = 0; i < nt; i++) {
        double gmax = 0;
        for (size_t j = 0; j < t[i].numel; j++)
            gmax = fmax(gmax, fabs(g.params[t[i].offset + j]));
        CHECK_MSG(gmax > 1e-5, "%s: gradient all zero", t[i].name);
        for (int r = 0; r < 6; r++) {
            size_t j = r == 0 ? 0 : r == 1 ? t[i].numel - 1
                                           : (size_t)(urand() * t[i].numel);
            float *w = s.m.params + t[i].offset + j;
            double an = g.params[t[i].offset + j];
            double fd1 = tg_central(&s, w, 1e-2f), fd2 = tg_central(&s, w, 1e-3f);
            int ok = fabs(an - fd1) <= 2e-4 + 1e-2 * fabs(fd1) &&
                     fabs(an - fd2) <= 1e-3 + 2e-2 * fabs(fd2);
            if (!ok && bad++ < 10)
                fprintf(stderr, "  %s[%zu]: backward %.6g, fd %.6g / %.6g\n",
                        t[i].name, j, an, fd1, fd2);
            worst = fmax(worst, fabs(an - fd1) / (1e-3 + fabs(fd1)));
            checked++;
        }
    }
    for (size_t j = 0; j < 2 * C; j += 3) {
        double fd = tg_central(&s, hv + j, 1e-2f);
        if (!(fabs(dvec[j] - fd) <= 2e-4 + 1e-2 * fabs(fd)) && bad++ < 10)
            fprintf(stderr, "  dvec[%zu]: backward %.6g, fd %.6g\n", j,
                    dvec[j], fd);
        checked++;
    }
    CHECK_MSG(bad == 0, "%d of %d gradients disagree", bad, checked);
    printf("     fd trainable %s: %zu tensors, %d entries, worst |backward - "
           "fd| / (1e-3 + |fd|) = %.2g\n", llama_arch_name(c.arch), nt,
           checked, worst);
    /* the gradient accumulates: a second backward doubles it */
    float *once = fdup(g.params, g.n_params);
    tg_loss(&s);
    CHECK(llama_backward_params(&s.m, s.a, &s.batch, dlogits, &g, NULL) == 0);
    int doubled = 1;
    for (size_t i = 0; i < g.n_params; i++)
        doubled &= fabs(g.params[i] - 2.0 * once[i]) <=
                   1e-5 * (1e-3 + fabs(once[i]));
    CHECK(doubled);
    /* refusals: a partial pass, a model of another shape */
    llama_config c2 = c;
    c2.n_inner = 8;
    llama_model g2;
    CHECK(llama_model_init(&g2, &c2) == 0);
    CHECK(llama_backward_params(&s.m, s.a, &s.batch, dlogits, &g2, NULL) ==
          ERR_INVALID);
    llama_model_free(&g2);
    free(once); free(t); free(dlogits); free(dvec); free(hv);
    llama_acts_free(s.a);
    llama_model_free(&g);
    llama_model_free(&s.m);
}

TEST(backward_params_llama_gqa_biases) { train_fd(0); }
TEST(backward_params_qwen3_qk_norm_tied) { train_fd(1); }
TEST(backward_params_qwen2_qkv_bias) { train_fd(2); }

/* A workspace from a deep layer (first_layer >= 3: the lower block
 * outputs in two slots, no keys, one slot of what only weight gradients
 * read) gives the logits, the hook layer's block output and dvec of one
 * that keeps every layer, bit for bit, for each family's options; its
 * keys and lower outputs are NULL; a pass from below first_layer is
 * refused. */
TEST(workspace_from_a_deep_layer_equals_full)
{
    enum { B = 3, T = 7 };
    for (int k = 0; k < 3; k++) {
        llama_config c = train_config(k);
        c.n_layer = 6;
        llama_model m;
        CHECK(llama_model_init_random(&m, &c, 40 + (uint64_t)k) == 0);
        size_t C = c.n_embd, V = c.vocab_size, L = c.n_layer;
        int tokens[B * T];
        size_t len[B] = {7, 5, 6}, from[B] = {3, 2, 4}, lpos[B], hpos[B];
        rng_state = 5 + (uint64_t)k;
        for (size_t i = 0; i < B * T; i++) tokens[i] = (int)(urand() * V);
        for (size_t b = 0; b < B; b++) {
            lpos[b] = b * T + len[b] - 1;
            hpos[b] = b * T + from[b];
        }
        float *vec = fnew(B * C), *dl = fnew(B * V);
        float *dv = fnew(B * C), *dv2 = fnew(B * C);
        fill(vec, B * C, -0.5f, 0.5f);
        fill(dl, B * V, -0.1f, 0.1f);
        for (size_t fl = 3; fl < L; fl++) {
            llama_hook h = {.layer = fl - 1, .n = B, .pos = hpos, .vec = vec};
            llama_acts *a = NULL, *a2 = NULL;
            CHECK(llama_acts_new(&a, &c, B, T, B, 0) == 0);
            CHECK(llama_acts_new_from(&a2, &c, B, T, B, 0, fl) == 0);
            llama_batch full = {.tokens = tokens, .B = B, .T = T,
                                .logit_pos = lpos, .n_logits = B, .hook = &h};
            llama_batch rows = full;
            rows.start_layer = fl;
            rows.row_from = from;
            rows.row_len = len;
            for (int pass = 0; pass < 2; pass++) {
                const llama_batch *b = pass ? &rows : &full;
                CHECK(llama_forward(&m, a, b) == 0);
                CHECK(llama_forward(&m, a2, b) == 0);
                CHECK(!memcmp(llama_acts_logits(a), llama_acts_logits(a2),
                              B * V * sizeof(float)));
                CHECK(!memcmp(llama_acts_block_out(a, fl - 1),
                              llama_acts_block_out(a2, fl - 1),
                              B * T * C * sizeof(float)));
                CHECK(llama_backward(&m, a, b, dl, dv) == 0);
                CHECK(llama_backward(&m, a2, b, dl, dv2) == 0);
                CHECK_MSG(!memcmp(dv, dv2, B * C * sizeof(float)),
                          "config %d, from layer %zu, pass %d", k, fl, pass);
            }
            CHECK(llama_acts_mlp_key(a2, fl) == NULL);
            CHECK(llama_acts_block_out(a2, fl - 2) == NULL);
            llama_batch low = {.tokens = tokens, .B = B, .T = T,
                               .start_layer = fl - 1};
            CHECK(llama_forward(&m, a2, &low) != 0);
            llama_acts_free(a);
            llama_acts_free(a2);
        }
        free(vec); free(dl); free(dv); free(dv2);
        llama_model_free(&m);
    }
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/test_llama.XXXXXX");
    if (!mkdtemp(tmp_root)) return 1;
    RUN(kernel_to_f32_every_pattern);
    RUN(kernel_linear);
    RUN(kernel_embedding);
    RUN(kernel_rmsnorm);
    RUN(kernel_rope);
    RUN(kernel_swiglu);
    RUN(kernel_gqa_attention);
    RUN(config_reads_the_four);
    RUN(config_errors);
    RUN(golden_llama_bf16_sharded);
    RUN(golden_qwen2_f16);
    RUN(golden_qwen3_f32);
    RUN(golden_mistral_bf16);
    RUN(weights_stay_mapped);
    RUN(owned_down_proj_same_bits);
    RUN(backward_full_pass);
    RUN(backward_partial_pass);
    RUN(backward_row_range_pass);
    RUN(backward_head_only_pass);
    RUN(partial_passes_equal_full_pass);
    RUN(row_range_pass_equals_full_pass);
    RUN(workspace_from_layer_equals_full);
    RUN(workspace_from_a_deep_layer_equals_full);
    RUN(padding_does_not_leak);
    RUN(determinism_threads_parallel_region);
    RUN(bad_arguments);
    RUN(bad_model_directories);
    RUN(kernel_weight_grads);
    RUN(train_model_save_load);
    RUN(backward_params_llama_gqa_biases);
    RUN(backward_params_qwen3_qk_norm_tied);
    RUN(backward_params_qwen2_qkv_bias);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return harness_summary();
}
