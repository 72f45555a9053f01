/* test_gpt2: the GPT-2 network and its kernels.
 *
 * - every linalg fast kernel against its naive twin (sizes chosen so the
 *   parallel paths and the column chunks are taken);
 * - gpt2_forward against the same network composed of naive kernels;
 * - gpt2_backward against central finite differences for sampled entries
 *   of every parameter tensor and of the hook vectors, for full and
 *   partial passes (start_layer > 0, hook at start_layer - 1);
 * - partial pass = full pass; padding; bitwise determinism across runs,
 *   the smaller workspaces (forward-only, logits-only, from a layer) =
 *   the full one, to the bit;
 *   thread counts and inside an OpenMP parallel region;
 * - the PyTorch golden log-probabilities of tests/data/gpt2-tiny;
 * - saving and loading, and the errors of bad model directories. */
#include "base/errors.h"
#include "base/half.h"
#include "model/gpt2.h"
#include "model/gpt2_config.h"
#include "base/linalg.h"
#include "model/safetensors.h"
#include "base/splitmix.h"
#include "base/linalg_naive.h"
#include "../harness.h"

#include <cblas.h>
#include <jansson.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 12345;
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

/* Fails the current test when |a - b| > atol + rtol |b| anywhere. */
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

/* ---- kernels vs naive twins ------------------------------------------------ */

TEST(kernel_encoder)
{
    size_t B = 3, T = 40, C = 150, V = 7, maxT = 50; /* repeated tokens */
    int *inp = malloc(B * T * sizeof *inp);
    for (size_t i = 0; i < B * T; i++) inp[i] = (int)(urand() * V);
    float *wte = fnew(V * C), *wpe = fnew(maxT * C), *o1 = fnew(B * T * C),
          *o2 = fnew(B * T * C), *dout = fnew(B * T * C);
    fill(wte, V * C, -1, 1);
    fill(wpe, maxT * C, -1, 1);
    fill(dout, B * T * C, -1, 1);
    linalg_encoder_forward(o1, inp, wte, wpe, B, T, C);
    linalg_encoder_forward_naive(o2, inp, wte, wpe, B, T, C);
    CHECK(max_abs_diff(o1, o2, B * T * C) == 0);
    float *g1 = fnew(V * C), *g2 = fnew(V * C), *p1 = fnew(maxT * C),
          *p2 = fnew(maxT * C);
    fill(g1, V * C, -1, 1);
    memcpy(g2, g1, V * C * sizeof *g1);
    linalg_encoder_backward(g1, p1, dout, inp, B, T, C);
    linalg_encoder_backward_naive(g2, p2, dout, inp, B, T, C);
    CHECK_CLOSE(g1, g2, V * C, 1e-5, 1e-5);
    CHECK_CLOSE(p1, p2, maxT * C, 1e-5, 1e-5);
    free(inp); free(wte); free(wpe); free(o1); free(o2); free(dout);
    free(g1); free(g2); free(p1); free(p2);
}

TEST(kernel_layernorm)
{
    size_t N = 70, C = 150;
    float *x = fnew(N * C), *w = fnew(C), *b = fnew(C), *dout = fnew(N * C);
    fill(x, N * C, -2, 3);
    fill(w, C, 0.5, 1.5);
    fill(b, C, -0.5, 0.5);
    fill(dout, N * C, -1, 1);
    float *o1 = fnew(N * C), *o2 = fnew(N * C), *m1 = fnew(N), *m2 = fnew(N),
          *r1 = fnew(N), *r2 = fnew(N);
    linalg_layernorm_forward(o1, m1, r1, x, w, b, N, C, 1e-5f);
    linalg_layernorm_forward_naive(o2, m2, r2, x, w, b, N, C, 1e-5f);
    CHECK_CLOSE(o1, o2, N * C, 1e-5, 1e-5);
    CHECK_CLOSE(m1, m2, N, 1e-6, 1e-6);
    CHECK_CLOSE(r1, r2, N, 1e-6, 1e-5);
    /* the backward accumulates: start from the same non-zero values */
    float *di1 = fnew(N * C), *dw1 = fnew(C), *db1 = fnew(C);
    fill(di1, N * C, -1, 1);
    fill(dw1, C, -1, 1);
    fill(db1, C, -1, 1);
    float *di2 = fdup(di1, N * C), *dw2 = fdup(dw1, C), *db2 = fdup(db1, C);
    linalg_layernorm_backward(di1, dw1, db1, dout, x, w, m1, r1, N, C);
    linalg_layernorm_backward_naive(di2, dw2, db2, dout, x, w, m1, r1, N, C);
    CHECK_CLOSE(di1, di2, N * C, 1e-5, 1e-4);
    CHECK_CLOSE(dw1, dw2, C, 1e-4, 1e-4);
    CHECK_CLOSE(db1, db2, C, 1e-4, 1e-4);
    /* NULL outputs are skipped, the others unchanged by that */
    float *di3 = fdup(di2, N * C);
    linalg_layernorm_backward(di3, NULL, NULL, dout, x, w, m1, r1, N, C);
    linalg_layernorm_backward_naive(di2, NULL, NULL, dout, x, w, m1, r1, N, C);
    CHECK_CLOSE(di3, di2, N * C, 1e-5, 1e-4);
    free(x); free(w); free(b); free(dout); free(o1); free(o2); free(m1);
    free(m2); free(r1); free(r2); free(di1); free(dw1); free(db1); free(di2);
    free(dw2); free(db2); free(di3);
}

TEST(kernel_matmul)
{
    size_t N = 37, IN = 45, OUT = 150;
    float *x = fnew(N * IN), *w = fnew(IN * OUT), *b = fnew(OUT),
          *dout = fnew(N * OUT), *o1 = fnew(N * OUT), *o2 = fnew(N * OUT);
    fill(x, N * IN, -1, 1);
    fill(w, IN * OUT, -1, 1);
    fill(b, OUT, -1, 1);
    fill(dout, N * OUT, -1, 1);
    linalg_matmul_forward(o1, x, w, b, N, IN, OUT);
    linalg_matmul_forward_naive(o2, x, w, b, N, IN, OUT);
    CHECK_CLOSE(o1, o2, N * OUT, 1e-5, 1e-5);
    linalg_matmul_forward(o1, x, w, NULL, N, IN, OUT);
    linalg_matmul_forward_naive(o2, x, w, NULL, N, IN, OUT);
    CHECK_CLOSE(o1, o2, N * OUT, 1e-5, 1e-5);
    float *di1 = fnew(N * IN), *dw1 = fnew(IN * OUT), *db1 = fnew(OUT);
    fill(di1, N * IN, -1, 1);
    fill(dw1, IN * OUT, -1, 1);
    fill(db1, OUT, -1, 1);
    float *di2 = fdup(di1, N * IN), *dw2 = fdup(dw1, IN * OUT), *db2 = fdup(db1, OUT);
    linalg_matmul_backward(di1, dw1, db1, dout, x, w, N, IN, OUT);
    linalg_matmul_backward_naive(di2, dw2, db2, dout, x, w, N, IN, OUT);
    CHECK_CLOSE(di1, di2, N * IN, 1e-4, 1e-5);
    CHECK_CLOSE(dw1, dw2, IN * OUT, 1e-4, 1e-5);
    CHECK_CLOSE(db1, db2, OUT, 1e-4, 1e-5);
    float *dw3 = fdup(dw1, IN * OUT);
    linalg_matmul_backward(NULL, dw3, NULL, dout, x, w, N, IN, OUT);
    linalg_matmul_backward_naive(NULL, dw2, NULL, dout, x, w, N, IN, OUT);
    CHECK_CLOSE(dw3, dw2, IN * OUT, 1e-4, 1e-5);
    free(x); free(w); free(b); free(dout); free(o1); free(o2); free(di1);
    free(dw1); free(db1); free(di2); free(dw2); free(db2); free(dw3);
}

TEST(kernel_matmul_nt)
{
    size_t N = 23, IN = 40, OUT = 301;
    float *x = fnew(N * IN), *w = fnew(OUT * IN), *dout = fnew(N * OUT),
          *o1 = fnew(N * OUT), *o2 = fnew(N * OUT);
    fill(x, N * IN, -1, 1);
    fill(w, OUT * IN, -1, 1);
    fill(dout, N * OUT, -1, 1);
    linalg_matmul_nt_forward(o1, x, w, N, IN, OUT);
    linalg_matmul_nt_forward_naive(o2, x, w, N, IN, OUT);
    CHECK_CLOSE(o1, o2, N * OUT, 1e-5, 1e-5);
    float *di1 = fnew(N * IN), *dw1 = fnew(OUT * IN);
    fill(di1, N * IN, -1, 1);
    fill(dw1, OUT * IN, -1, 1);
    float *di2 = fdup(di1, N * IN), *dw2 = fdup(dw1, OUT * IN);
    linalg_matmul_nt_backward(di1, dw1, dout, x, w, N, IN, OUT);
    linalg_matmul_nt_backward_naive(di2, dw2, dout, x, w, N, IN, OUT);
    CHECK_CLOSE(di1, di2, N * IN, 1e-4, 1e-5);
    CHECK_CLOSE(dw1, dw2, OUT * IN, 1e-4, 1e-5);
    free(x); free(w); free(dout); free(o1); free(o2); free(di1); free(dw1);
    free(di2); free(dw2);
}

TEST(kernel_attention)
{
    size_t shapes[][4] = {{2, 7, 16, 2}, {3, 33, 48, 4}, {1, 1, 8, 1}};
    for (size_t s = 0; s < 3; s++) {
        size_t B = shapes[s][0], T = shapes[s][1], C = shapes[s][2],
               NH = shapes[s][3];
        float *inp = fnew(B * T * 3 * C), *o1 = fnew(B * T * C),
              *o2 = fnew(B * T * C), *a1 = fnew(B * NH * T * T),
              *a2 = fnew(B * NH * T * T), *dout = fnew(B * T * C);
        fill(inp, B * T * 3 * C, -2, 2);
        fill(dout, B * T * C, -1, 1);
        fill(a1, B * NH * T * T, 5, 6); /* must be overwritten, zeros too */
        linalg_attention_forward(o1, a1, inp, B, T, C, NH);
        linalg_attention_forward_naive(o2, a2, inp, B, T, C, NH);
        CHECK_CLOSE(o1, o2, B * T * C, 1e-5, 1e-4);
        CHECK_CLOSE(a1, a2, B * NH * T * T, 1e-6, 1e-4);
        float *d1 = fnew(B * T * 3 * C), *s1 = fnew(B * NH * T * T),
              *s2 = fnew(B * NH * T * T);
        fill(d1, B * T * 3 * C, -1, 1);
        float *d2 = fdup(d1, B * T * 3 * C);
        linalg_attention_backward(d1, s1, dout, inp, a1, B, T, C, NH);
        linalg_attention_backward_naive(d2, s2, dout, inp, a1, B, T, C, NH);
        CHECK_CLOSE(d1, d2, B * T * 3 * C, 1e-4, 1e-4);
        free(inp); free(o1); free(o2); free(a1); free(a2); free(dout);
        free(d1); free(d2); free(s1); free(s2);
    }
}

/* Row-range attention against the naive full one: the computed rows'
 * outputs, and the input gradient when only those rows carry a gradient. */
TEST(kernel_attention_rows)
{
    size_t B = 3, T = 9, C = 24, NH = 3;
    size_t from[3] = {4, 0, 6}, len[3] = {9, 5, 6}, off[3] = {0, 5, 10};
    size_t N = 10;
    float *inp = fnew(B * T * 3 * C), *full = fnew(B * T * C),
          *afull = fnew(B * NH * T * T), *rows = fnew(N * C),
          *arows = fnew(B * NH * T * T), *dout = fnew(B * T * C),
          *dc = fnew(N * C);
    fill(inp, B * T * 3 * C, -2, 2);
    linalg_attention_forward_naive(full, afull, inp, B, T, C, NH);
    linalg_attention_rows_forward(rows, arows, inp, B, T, C, NH, from, len,
                                  off);
    for (size_t b = 0; b < B; b++)
        for (size_t t = from[b]; t < len[b]; t++) {
            size_t r = off[b] + t - from[b];
            CHECK_CLOSE(rows + r * C, full + (b * T + t) * C, C, 1e-5, 1e-4);
            fill(dc + r * C, C, -1, 1);
            memcpy(dout + (b * T + t) * C, dc + r * C, C * sizeof(float));
            for (size_t h = 0; h < NH; h++) {
                size_t at = ((b * NH + h) * T + t) * T;
                CHECK_CLOSE(arows + at, afull + at, t + 1, 1e-6, 1e-4);
            }
        }
    float *d1 = fnew(B * T * 3 * C), *d2 = fnew(B * T * 3 * C),
          *s1 = fnew(B * NH * T * T), *s2 = fnew(B * NH * T * T);
    linalg_attention_rows_backward(d1, s1, dc, inp, afull, B, T, C, NH, from,
                                   len, off);
    linalg_attention_backward_naive(d2, s2, dout, inp, afull, B, T, C, NH);
    CHECK_CLOSE(d1, d2, B * T * 3 * C, 1e-4, 1e-4);
    free(inp); free(full); free(afull); free(rows); free(arows); free(dout);
    free(dc); free(d1); free(d2); free(s1); free(s2);
}

TEST(kernel_gelu_residual)
{
    size_t N = 70001;
    float *x = fnew(N), *y = fnew(N), *o1 = fnew(N), *o2 = fnew(N),
          *dout = fnew(N);
    fill(x, N, -6, 6);
    fill(y, N, -1, 1);
    fill(dout, N, -1, 1);
    linalg_gelu_forward(o1, x, N);
    linalg_gelu_forward_naive(o2, x, N);
    CHECK_CLOSE(o1, o2, N, 1e-6, 1e-5);
    float *g1 = fnew(N);
    fill(g1, N, -1, 1);
    float *g2 = fdup(g1, N);
    linalg_gelu_backward(g1, x, dout, N);
    linalg_gelu_backward_naive(g2, x, dout, N);
    /* The fast tanh is within 4e-7 of tanh; 1 - tanh^2 multiplies that
     * by up to ~20 in the tails where gelu' ~ 0. */
    CHECK_CLOSE(g1, g2, N, 1e-5, 1e-5);
    /* gelu' against a central difference of the double-precision gelu */
    for (size_t i = 0; i < 50; i++) {
        double v = -5 + 0.2 * i, h = 1e-5, s = sqrt(2 / M_PI);
        double fp = 0.5 * (v + h) * (1 + tanh(s * ((v + h) + 0.044715 * pow(v + h, 3))));
        double fm = 0.5 * (v - h) * (1 + tanh(s * ((v - h) + 0.044715 * pow(v - h, 3))));
        float xi = (float)v, one = 1, g = 0;
        linalg_gelu_backward(&g, &xi, &one, 1);
        CHECK_NEAR(g, (fp - fm) / (2 * h), 1e-5);
    }
    /* every instruction set GELU's loops are built for gives the bits of
     * plain x86-64, the tails and the clamp included */
    float *xs = fdup(x, N);
    xs[0] = 0.0f; xs[1] = -0.0f; xs[2] = 100.0f; xs[3] = -100.0f; xs[4] = 7.99f;
    xs[5] = 1e-30f; xs[6] = NAN;
    float *base = fnew(N), *wide = fnew(N), *gb = fdup(dout, N), *gw = fdup(dout, N);
    CHECK(linalg_gelu_forward_isa(LINALG_ISA_BASE, base, xs, N));
    CHECK(linalg_gelu_backward_isa(LINALG_ISA_BASE, gb, xs, y, N));
    int sets = 0;
    for (linalg_isa isa = LINALG_ISA_AVX2; isa <= LINALG_ISA_AVX512; isa++) {
        memset(wide, 0, N * sizeof *wide);
        memcpy(gw, dout, N * sizeof *gw);
        if (!linalg_gelu_forward_isa(isa, wide, xs, N)) continue;
        CHECK(linalg_gelu_backward_isa(isa, gw, xs, y, N));
        CHECK(!memcmp(base, wide, N * sizeof *base));
        CHECK(!memcmp(gb, gw, N * sizeof *gb));
        sets++;
    }
    linalg_gelu_forward(wide, xs, N);
    CHECK(!memcmp(base, wide, N * sizeof *base));
    printf("  gelu: %d wider instruction set(s) on this CPU checked against plain x86-64\n", sets);
    free(xs); free(base); free(wide); free(gb); free(gw);
    linalg_residual_forward(o1, x, y, N);
    linalg_residual_forward_naive(o2, x, y, N);
    CHECK(max_abs_diff(o1, o2, N) == 0);
    float *r1 = fdup(g1, N), *r2 = fdup(g1, N), *q1 = fdup(x, N), *q2 = fdup(x, N);
    linalg_residual_backward(r1, q1, dout, N);
    linalg_residual_backward_naive(r2, q2, dout, N);
    CHECK(max_abs_diff(r1, r2, N) == 0);
    CHECK(max_abs_diff(q1, q2, N) == 0);
    free(x); free(y); free(o1); free(o2); free(dout); free(g1); free(g2);
    free(r1); free(r2); free(q1); free(q2);
}

TEST(kernel_softmax_crossentropy)
{
    size_t N = 9, V = 5003;
    float *x = fnew(N * V), *p1 = fnew(N * V), *p2 = fnew(N * V),
          *l1 = fnew(N), *l2 = fnew(N), *dl = fnew(N);
    int *tg = malloc(N * sizeof *tg);
    fill(x, N * V, -8, 8);
    x[3] = 80; /* a dominant logit: stability */
    fill(dl, N, 0.1f, 1);
    for (size_t i = 0; i < N; i++) tg[i] = (int)(urand() * V);
    linalg_softmax_forward(p1, x, N, V);
    linalg_softmax_forward_naive(p2, x, N, V);
    CHECK_CLOSE(p1, p2, N * V, 1e-9, 1e-4);
    linalg_log_softmax_forward(p1, x, N, V);
    linalg_log_softmax_forward_naive(p2, x, N, V);
    CHECK_CLOSE(p1, p2, N * V, 1e-5, 1e-6);
    float *inplace = fdup(x, N * V);
    linalg_log_softmax_forward(inplace, inplace, N, V);
    CHECK(max_abs_diff(inplace, p1, N * V) == 0);
    double s1 = linalg_crossentropy_forward(l1, x, tg, N, V);
    double s2 = linalg_crossentropy_forward_naive(l2, x, tg, N, V);
    CHECK_CLOSE(l1, l2, N, 1e-5, 1e-6);
    CHECK_NEAR(s1, s2, 1e-4);
    CHECK_NEAR(linalg_crossentropy_forward(NULL, x, tg, N, V), s2, 1e-4);
    CHECK_NEAR(l2[0], -p2[tg[0]], 1e-5);
    float *d1 = fnew(N * V);
    fill(d1, N * V, -1, 1);
    float *d2 = fdup(d1, N * V);
    linalg_crossentropy_softmax_backward(d1, dl, x, tg, N, V);
    linalg_crossentropy_softmax_backward_naive(d2, dl, x, tg, N, V);
    CHECK_CLOSE(d1, d2, N * V, 1e-6, 1e-5);
    /* gpt2_crossentropy: the mean, and its gradient */
    float *g = fnew(N * V);
    double mean = gpt2_crossentropy(x, tg, N, V, g);
    CHECK_NEAR(mean, s2 / N, 1e-5);
    float *ones = fnew(N), *ref = fnew(N * V);
    for (size_t i = 0; i < N; i++) ones[i] = 1.0f / N;
    linalg_crossentropy_softmax_backward_naive(ref, ones, x, tg, N, V);
    CHECK_CLOSE(g, ref, N * V, 1e-7, 1e-5);
    free(x); free(p1); free(p2); free(l1); free(l2); free(dl); free(tg);
    free(inplace); free(d1); free(d2); free(g); free(ones); free(ref);
}

/* ---- the tiny model ------------------------------------------------------ */

static gpt2_config tiny_config(void)
{
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 16,
                     .n_positions = 8, .vocab_size = 37, .n_inner = 64,
                     .layer_norm_epsilon = 1e-5f};
    return c;
}

/* Random weights big enough that every part of the network matters,
 * LayerNorm weights near 1, non-zero biases. */
static void randomize(gpt2_model *m, uint64_t seed)
{
    gpt2_model_init_random(m, seed);
    rng_state = seed;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        float *t = ((float **)&m->p)[i];
        int ln_w = i == 2 || i == 8 || i == 14;
        int bias = i == 3 || i == 5 || i == 7 || i == 9 || i == 11 || i == 13 || i == 15;
        for (size_t j = 0; j < m->sizes[i]; j++)
            t[j] = ln_w ? 1 + frand(-0.2f, 0.2f)
                   : bias ? frand(-0.2f, 0.2f)
                          : frand(-0.5f, 0.5f);
    }
}

TEST(model_init_and_tensors)
{
    gpt2_config c = tiny_config();
    gpt2_model m, m2;
    CHECK(gpt2_model_init(&m, &c) == 0);
    size_t L = 2, C = 16, F = 64, V = 37;
    CHECK(m.num_parameters == V * C + 8 * C + L * (12 * C * C + 13 * C) + 2 * C);
    CHECK(m.p.wpe == m.p.wte + V * C && m.p.lnfb == m.memory + m.num_parameters - C);
    gpt2_model_init_random(&m, 7);
    CHECK(gpt2_model_init(&m2, &c) == 0);
    gpt2_model_init_random(&m2, 7);
    CHECK(!memcmp(m.memory, m2.memory, m.num_parameters * sizeof(float)));
    gpt2_model_init_random(&m2, 8);
    CHECK(memcmp(m.memory, m2.memory, m.num_parameters * sizeof(float)));
    CHECK(m.p.ln1w[5] == 1.0f && m.p.ln2b[3] == 0.0f && m.p.lnfw[0] == 1.0f);
    double ss = 0;
    for (size_t i = 0; i < V * C; i++) ss += (double)m.p.wte[i] * m.p.wte[i];
    CHECK_NEAR(sqrt(ss / (V * C)), 0.02, 0.003);

    size_t numel, shape[2];
    int ndim;
    const float *t = gpt2_tensor(&m, "h.1.mlp.c_proj.weight", &numel, shape, &ndim);
    CHECK(t == m.p.fcprojw + F * C && numel == F * C && ndim == 2 &&
          shape[0] == F && shape[1] == C);
    CHECK(gpt2_tensor(&m, "transformer.h.1.mlp.c_proj.weight", NULL, NULL, NULL) == t);
    t = gpt2_tensor(&m, "transformer.h.0.attn.c_attn.bias", &numel, shape, &ndim);
    CHECK(t == m.p.qkvb && numel == 3 * C && ndim == 1 && shape[0] == 3 * C);
    t = gpt2_tensor(&m, "wte.weight", &numel, shape, &ndim);
    CHECK(t == m.p.wte && numel == V * C && shape[0] == V && shape[1] == C);
    CHECK(gpt2_tensor(&m, "ln_f.bias", NULL, NULL, NULL) == m.p.lnfb);
    const char *bad[] = {"h.2.ln_1.weight", "h.0.foo", "lm_head.weight",
                         "h.01.ln_1.weight", "h..ln_1.weight", "h.0",
                         "transformer.", "", "wte", "h.0.ln_1.weightx"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(!gpt2_tensor(&m, bad[i], NULL, NULL, NULL), "%s", bad[i]);
    char name[64];
    gpt2_tensor_name(name, sizeof name, GPT2_FCPROJW, 3);
    CHECK(!strcmp(name, "h.3.mlp.c_proj.weight"));
    gpt2_tensor_name(name, sizeof name, 0, 3);
    CHECK(!strcmp(name, "wte.weight"));
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) /* every name round-trips */
        for (size_t l = 0; l < L; l++) {
            gpt2_tensor_name(name, sizeof name, i, l);
            const float *p = gpt2_tensor(&m, name, &numel, NULL, NULL);
            size_t per = (i >= 2 && i <= 13) ? m.sizes[i] / L : m.sizes[i];
            CHECK_MSG(p == ((float **)&m.p)[i] + ((i >= 2 && i <= 13) ? l * per : 0)
                      && numel == per, "%s", name);
        }

    gpt2_config bad_c = c;
    bad_c.n_head = 3;
    gpt2_model m3;
    CHECK(gpt2_model_init(&m3, &bad_c) == ERR_INVALID && m3.memory == NULL);
    bad_c = c;
    bad_c.n_layer = 0;
    CHECK(gpt2_model_init(&m3, &bad_c) == ERR_INVALID);
    gpt2_acts *a = NULL;
    CHECK(gpt2_acts_new(&a, &c, 1, 9, 1) == ERR_INVALID && !a);
    gpt2_model_free(&m);
    gpt2_model_free(&m2);
    gpt2_model_free(NULL);
    CHECK(m.memory == NULL);
    gpt2_acts_free(NULL);
}

/* The network composed of naive kernels: logits at every position,
 * block outputs and MLP keys, for one unhooked pass. */
static void naive_forward(const gpt2_model *m, const int *tokens, size_t B,
                          size_t T, float *logits, float *block_out,
                          float *keys)
{
    const gpt2_config *c = &m->config;
    size_t C = c->n_embd, F = c->n_inner, NH = c->n_head, V = c->vocab_size;
    size_t BT = B * T, L = c->n_layer;
    float eps = c->layer_norm_epsilon;
    float *x = fnew(BT * C), *ln = fnew(BT * C), *qkv = fnew(BT * 3 * C),
          *att = fnew(B * NH * T * T), *y = fnew(BT * C), *p = fnew(BT * C),
          *h = fnew(BT * F), *hg = fnew(BT * F);
    const gpt2_params *w = &m->p;
    linalg_encoder_forward_naive(x, tokens, w->wte, w->wpe, B, T, C);
    for (size_t l = 0; l < L; l++) {
        linalg_layernorm_forward_naive(ln, NULL, NULL, x, w->ln1w + l * C,
                                       w->ln1b + l * C, BT, C, eps);
        linalg_matmul_forward_naive(qkv, ln, w->qkvw + l * 3 * C * C,
                                    w->qkvb + l * 3 * C, BT, C, 3 * C);
        linalg_attention_forward_naive(y, att, qkv, B, T, C, NH);
        linalg_matmul_forward_naive(p, y, w->attprojw + l * C * C,
                                    w->attprojb + l * C, BT, C, C);
        linalg_residual_forward_naive(x, x, p, BT * C);
        linalg_layernorm_forward_naive(ln, NULL, NULL, x, w->ln2w + l * C,
                                       w->ln2b + l * C, BT, C, eps);
        linalg_matmul_forward_naive(h, ln, w->fcw + l * C * F, w->fcb + l * F,
                                    BT, C, F);
        linalg_gelu_forward_naive(hg, h, BT * F);
        linalg_matmul_forward_naive(p, hg, w->fcprojw + l * F * C,
                                    w->fcprojb + l * C, BT, F, C);
        linalg_residual_forward_naive(x, x, p, BT * C);
        memcpy(block_out + l * BT * C, x, BT * C * sizeof(float));
        memcpy(keys + l * BT * F, hg, BT * F * sizeof(float));
    }
    linalg_layernorm_forward_naive(ln, NULL, NULL, x, w->lnfw, w->lnfb, BT, C, eps);
    linalg_matmul_nt_forward_naive(logits, ln, w->wte, BT, C, V);
    free(x); free(ln); free(qkv); free(att); free(y); free(p); free(h); free(hg);
}

TEST(forward_matches_naive_network)
{
    gpt2_config c = tiny_config();
    gpt2_model m;
    CHECK(gpt2_model_init(&m, &c) == 0);
    randomize(&m, 11);
    size_t B = 2, T = 7, BT = B * T, C = 16, F = 64, V = 37, L = 2;
    int tokens[14];
    size_t pos[14];
    for (size_t i = 0; i < BT; i++) {
        tokens[i] = (int)(urand() * V);
        pos[i] = i;
    }
    float *logits = fnew(BT * V), *bo = fnew(L * BT * C), *keys = fnew(L * BT * F);
    naive_forward(&m, tokens, B, T, logits, bo, keys);
    gpt2_acts *a = NULL;
    CHECK(gpt2_acts_new(&a, &c, 3, 8, BT) == 0); /* larger than the pass */
    gpt2_batch b = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos, .n_logits = BT};
    CHECK(gpt2_forward(&m, a, &b) == 0);
    CHECK_CLOSE(gpt2_acts_logits(a), logits, BT * V, 1e-4, 1e-4);
    for (size_t l = 0; l < L; l++) {
        CHECK_CLOSE(gpt2_acts_block_out(a, l), bo + l * BT * C, BT * C, 1e-5, 1e-4);
        CHECK_CLOSE(gpt2_acts_mlp_key(a, l), keys + l * BT * F, BT * F, 1e-5, 1e-4);
    }
    CHECK(gpt2_acts_block_out(a, L) == NULL && gpt2_acts_mlp_key(a, L) == NULL);
    /* logits at chosen rows only, in the order asked */
    size_t some[3] = {9, 0, 9};
    gpt2_batch b2 = {.tokens = tokens, .B = B, .T = T, .logit_pos = some, .n_logits = 3};
    CHECK(gpt2_forward(&m, a, &b2) == 0);
    for (size_t i = 0; i < 3; i++)
        CHECK_CLOSE(gpt2_acts_logits(a) + i * V, logits + some[i] * V, V, 1e-4, 1e-4);
    /* no logits at all (key extraction) */
    gpt2_batch b3 = {.tokens = tokens, .B = B, .T = T};
    CHECK(gpt2_forward(&m, a, &b3) == 0);
    CHECK_CLOSE(gpt2_acts_mlp_key(a, 1), keys + BT * F, BT * F, 1e-5, 1e-4);
    gpt2_acts_free(a);
    gpt2_model_free(&m);
    free(logits); free(bo); free(keys);
}

/* ---- gradients against finite differences --------------------------------- */

typedef struct {
    gpt2_model m;
    gpt2_acts *a;
    int tokens[14];
    size_t logit_pos[5];
    int targets[5];
    size_t hook_pos[3];
    float hook_vec[3 * 16];
    gpt2_hook hook;
    gpt2_batch batch;
} fd_case;

static void fd_setup(fd_case *s, size_t start, size_t hook_layer, int hooked)
{
    gpt2_config c = tiny_config();
    memset(s, 0, sizeof *s);
    gpt2_model_init(&s->m, &c);
    randomize(&s->m, 99);
    rng_state = 4242;
    for (size_t i = 0; i < 14; i++) s->tokens[i] = (int)(urand() * 37);
    size_t lp[5] = {1, 4, 6, 9, 13};
    for (size_t i = 0; i < 5; i++) {
        s->logit_pos[i] = lp[i];
        s->targets[i] = (int)(urand() * 37);
    }
    size_t hp[3] = {3, 10, 3}; /* a repeated position too */
    memcpy(s->hook_pos, hp, sizeof hp);
    fill(s->hook_vec, 3 * 16, -0.3f, 0.3f);
    s->hook = (gpt2_hook){.layer = hook_layer, .n = 3, .pos = s->hook_pos,
                          .vec = s->hook_vec};
    gpt2_acts_new(&s->a, &c, 2, 7, 5);
    /* the pass that fills the cache for start > 0 */
    gpt2_batch base = {.tokens = s->tokens, .B = 2, .T = 7,
                       .logit_pos = s->logit_pos, .n_logits = 5};
    gpt2_forward(&s->m, s->a, &base);
    s->batch = base;
    s->batch.start_layer = start;
    s->batch.hook = hooked ? &s->hook : NULL;
}

static double fd_loss(fd_case *s)
{
    int rc = gpt2_forward(&s->m, s->a, &s->batch);
    if (rc) return NAN;
    return gpt2_crossentropy(gpt2_acts_logits(s->a), s->targets, 5, 37, NULL);
}

/* Central difference of the loss in *w. */
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

/* Compares analytic g with finite differences at entry w: a
 * well-resolved step (1e-2: float noise / step ~ 1e-5) must agree
 * tightly; the small step (1e-3) is the double-check, looser because
 * float noise is ten times larger there. */
static int fd_agrees(fd_case *s, float *w, double g, const char *what,
                     size_t idx)
{
    double fd1 = central(s, w, 1e-2f), fd2 = central(s, w, 1e-3f);
    int ok = fabs(g - fd1) <= 2e-4 + 1e-2 * fabs(fd1) &&
             fabs(g - fd2) <= 1e-3 + 2e-2 * fabs(fd2);
    if (!ok)
        fprintf(stderr, "  %s[%zu]: backward %.6g, fd(1e-2) %.6g, fd(1e-3) %.6g\n",
                what, idx, g, fd1, fd2);
    return ok;
}

/* Backward for s->batch, then finite differences for sampled entries of
 * every tensor (zero gradient expected where the pass does not reach)
 * and for every hook vector. */
static void fd_check(size_t start, size_t hook_layer, int hooked)
{
    fd_case s;
    fd_setup(&s, start, hook_layer, hooked);
    gpt2_model grads;
    gpt2_model_init(&grads, &s.m.config);
    float dlogits[5 * 37], dvec[3 * 16];
    double loss = fd_loss(&s);
    gpt2_crossentropy(gpt2_acts_logits(s.a), s.targets, 5, 37, dlogits);
    CHECK(isfinite(loss));
    CHECK(gpt2_backward(&s.m, s.a, &s.batch, dlogits, &grads,
                        hooked ? dvec : NULL) == 0);
    size_t L = s.m.config.n_layer;
    int checked = 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        int per_layer = i >= 2 && i <= 13;
        size_t layers = per_layer ? L : 1, per = s.m.sizes[i] / layers;
        for (size_t l = 0; l < layers; l++) {
            float *w = ((float **)&s.m.p)[i] + l * per;
            float *g = ((float **)&grads.p)[i] + l * per;
            char name[64];
            gpt2_tensor_name(name, sizeof name, i, l);
            int reached = per_layer ? l >= start : (i != 1 || start == 0);
            if (!reached) {
                double mx = 0;
                for (size_t j = 0; j < per; j++) mx = fmax(mx, fabs(g[j]));
                CHECK_MSG(mx == 0, "%s: gradient %g outside the pass", name, mx);
                continue;
            }
            size_t best = 0; /* the largest gradient, then random entries */
            for (size_t j = 1; j < per; j++)
                if (fabs(g[j]) > fabs(g[best])) best = j;
            CHECK_MSG(g[best] != 0, "%s: zero gradient", name);
            for (int k = 0; k < 4; k++) {
                size_t j = k == 0 ? best : (size_t)(urand() * per);
                if (i == 0 && k == 1) j = (size_t)s.targets[0] * 16 + 3;
                CHECK_MSG(fd_agrees(&s, w + j, g[j], name, j), "%s", name);
                checked++;
            }
        }
    }
    if (hooked) {
        for (size_t j = 0; j < 3 * 16; j += 5) {
            CHECK_MSG(fd_agrees(&s, s.hook_vec + j, dvec[j], "dvec", j), "dvec");
            checked++;
        }
        /* without weight gradients: the same dvec, bit for bit */
        float dvec2[3 * 16];
        fd_loss(&s);
        CHECK(gpt2_backward(&s.m, s.a, &s.batch, dlogits, NULL, dvec2) == 0);
        CHECK(!memcmp(dvec, dvec2, sizeof dvec));
    }
    CHECK(checked > 20);
    gpt2_model_free(&grads);
    gpt2_model_free(&s.m);
    gpt2_acts_free(s.a);
}

TEST(backward_full_pass_hook_in_middle) { fd_check(0, 0, 1); }
TEST(backward_full_pass_hook_before_ln_f) { fd_check(0, 1, 1); }
TEST(backward_full_pass_no_hook) { fd_check(0, 0, 0); }
TEST(backward_partial_pass_hook_below_start) { fd_check(1, 0, 1); }
TEST(backward_head_only_pass) { fd_check(2, 1, 1); }

/* Weight gradients accumulate (+=) over backward calls. */
TEST(backward_accumulates)
{
    fd_case s;
    fd_setup(&s, 0, 0, 1);
    gpt2_model g1, g2;
    gpt2_model_init(&g1, &s.m.config);
    gpt2_model_init(&g2, &s.m.config);
    float dl[5 * 37];
    fd_loss(&s);
    gpt2_crossentropy(gpt2_acts_logits(s.a), s.targets, 5, 37, dl);
    CHECK(gpt2_backward(&s.m, s.a, &s.batch, dl, &g1, NULL) == 0);
    CHECK(gpt2_backward(&s.m, s.a, &s.batch, dl, &g2, NULL) == 0);
    CHECK(gpt2_backward(&s.m, s.a, &s.batch, dl, &g2, NULL) == 0);
    for (size_t i = 0; i < g1.num_parameters; i++) g1.memory[i] *= 2;
    CHECK_CLOSE(g2.memory, g1.memory, g1.num_parameters, 1e-6, 1e-5);
    gpt2_model_free(&g1);
    gpt2_model_free(&g2);
    gpt2_model_free(&s.m);
    gpt2_acts_free(s.a);
}

/* ---- passes ------------------------------------------------------------------- */

/* The small model of the pass tests (4 layers, d_model 16, d_ff 64,
 * vocabulary 37), randomized from seed, and n random token ids. */
static void small_model(gpt2_model *m, uint64_t seed, int *tokens, size_t n)
{
    gpt2_config c = {.n_layer = 4, .n_head = 2, .n_embd = 16,
                     .n_positions = 8, .vocab_size = 37};
    CHECK(gpt2_model_init(m, &c) == 0);
    randomize(m, seed);
    for (size_t i = 0; i < n; i++) tokens[i] = (int)(urand() * 37);
}

TEST(partial_pass_equals_full_pass)
{
    size_t B = 2, T = 7, BT = 14, C = 16, V = 37;
    int tokens[14];
    gpt2_model m;
    small_model(&m, 5, tokens, 14);
    size_t lp[4] = {6, 11, 2, 4}, hp[2] = {4, 11};
    float vec[2 * 16], vec2[2 * 16];
    fill(vec, 32, -1, 1);
    fill(vec2, 32, -1, 1);
    for (size_t h = 0; h < 4; h++) {
        gpt2_hook hook = {.layer = h, .n = 2, .pos = hp, .vec = vec};
        gpt2_acts *full = NULL, *part = NULL;
        gpt2_acts_new(&full, &m.config, B, T, 4);
        gpt2_acts_new(&part, &m.config, B, T, 4);
        gpt2_batch fb = {.tokens = tokens, .B = B, .T = T, .hook = &hook,
                         .logit_pos = lp, .n_logits = 4};
        CHECK(gpt2_forward(&m, full, &fb) == 0);
        gpt2_batch base = fb;
        base.hook = NULL;
        CHECK(gpt2_forward(&m, part, &base) == 0);
        float *out_before = fdup(gpt2_acts_block_out(part, h), BT * C);
        gpt2_batch pb = fb;
        pb.start_layer = h + 1;
        CHECK(gpt2_forward(&m, part, &pb) == 0);
        CHECK_MSG(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(part),
                          4 * V * sizeof(float)), "hook at %zu: max diff %g", h,
                  max_abs_diff(gpt2_acts_logits(full), gpt2_acts_logits(part), 4 * V));
        float *first = fdup(gpt2_acts_logits(part), 4 * V);
        /* other vectors, then the first again: the cache is untouched */
        hook.vec = vec2;
        CHECK(gpt2_forward(&m, part, &pb) == 0);
        CHECK(max_abs_diff(first, gpt2_acts_logits(part), 4 * V) > 1e-4);
        hook.vec = vec;
        CHECK(gpt2_forward(&m, part, &pb) == 0);
        CHECK(!memcmp(first, gpt2_acts_logits(part), 4 * V * sizeof(float)));
        CHECK(!memcmp(out_before, gpt2_acts_block_out(part, h), BT * C * sizeof(float)));
        /* a hook above start also works in a partial pass */
        if (h >= 1) {
            pb.start_layer = h;
            CHECK(gpt2_forward(&m, part, &pb) == 0);
            CHECK(!memcmp(first, gpt2_acts_logits(part), 4 * V * sizeof(float)));
        }
        free(out_before);
        free(first);
        gpt2_acts_free(full);
        gpt2_acts_free(part);
    }
    gpt2_model_free(&m);
}

/* A pass that ends early (MEMIT's keys, the key statistics) gives the
 * full pass's keys and outputs of the blocks it ran, to the bit, and
 * refuses what would need the blocks above. */
TEST(early_end_pass_equals_full_pass_below)
{
    size_t B = 2, T = 7, BT = 14, C = 16, F = 64;
    int tokens[14];
    gpt2_model m;
    small_model(&m, 6, tokens, 14);
    gpt2_acts *full = NULL, *part = NULL;
    gpt2_acts_new(&full, &m.config, B, T, 2);
    gpt2_acts_new(&part, &m.config, B, T, 2);
    size_t lp[2] = {6, 13};
    gpt2_batch fb = {.tokens = tokens, .B = B, .T = T, .logit_pos = lp, .n_logits = 2};
    CHECK(gpt2_forward(&m, full, &fb) == 0);
    for (size_t e = 1; e <= 4; e++) {
        gpt2_batch pb = {.tokens = tokens, .B = B, .T = T, .end_layer = e};
        CHECK(gpt2_forward(&m, part, &pb) == 0);
        for (size_t l = 0; l < e; l++) {
            CHECK(!memcmp(gpt2_acts_mlp_key(full, l), gpt2_acts_mlp_key(part, l),
                          BT * F * sizeof(float)));
            CHECK(!memcmp(gpt2_acts_block_out(full, l), gpt2_acts_block_out(part, l),
                          BT * C * sizeof(float)));
        }
    }
    /* ending early leaves no logits and no backward */
    gpt2_batch bad = fb;
    bad.end_layer = 2;
    CHECK(gpt2_forward(&m, part, &bad) == ERR_INVALID);
    err_clear();
    gpt2_batch ended = {.tokens = tokens, .B = B, .T = T, .end_layer = 2};
    CHECK(gpt2_forward(&m, part, &ended) == 0);
    float dl[2 * 37] = {0};
    CHECK(gpt2_backward(&m, part, &ended, dl, NULL, NULL) == ERR_INVALID);
    err_clear();
    ended.end_layer = 5; /* past the model */
    CHECK(gpt2_forward(&m, part, &ended) == ERR_INVALID);
    err_clear();
    gpt2_acts_free(full);
    gpt2_acts_free(part);
    gpt2_model_free(&m);
}

/* A pass from block s on a kept copy of block s-1's output, in fresh
 * acts (MEMIT's key passes after a layer's update) gives the full pass's
 * keys, block outputs and logits, to the bit; an input needs a pass
 * from above block 0 without row ranges. */
TEST(pass_from_a_kept_input_equals_full_pass)
{
    size_t B = 2, T = 7, BT = 14, C = 16, F = 64, V = 37;
    int tokens[14];
    gpt2_model m;
    small_model(&m, 6, tokens, 14);
    gpt2_acts *full = NULL, *part = NULL;
    gpt2_acts_new(&full, &m.config, B, T, 2);
    size_t lp[2] = {6, 13};
    gpt2_batch fb = {.tokens = tokens, .B = B, .T = T, .logit_pos = lp, .n_logits = 2};
    CHECK(gpt2_forward(&m, full, &fb) == 0);
    float kept[14 * 16];
    for (size_t s = 1; s < 4; s++) {
        memcpy(kept, gpt2_acts_block_out(full, s - 1), BT * C * sizeof(float));
        gpt2_acts_new(&part, &m.config, B, T, 2);
        gpt2_batch pb = fb;
        pb.start_layer = s;
        pb.input = kept;
        CHECK(gpt2_forward(&m, part, &pb) == 0);
        for (size_t l = s; l < 4; l++) {
            CHECK(!memcmp(gpt2_acts_mlp_key(full, l), gpt2_acts_mlp_key(part, l),
                          BT * F * sizeof(float)));
            CHECK(!memcmp(gpt2_acts_block_out(full, l), gpt2_acts_block_out(part, l),
                          BT * C * sizeof(float)));
        }
        CHECK(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(part),
                      2 * V * sizeof(float)));
        /* and a pass that ends early, as the key passes do */
        gpt2_batch eb = {.tokens = tokens, .B = B, .T = T, .start_layer = s,
                         .end_layer = s + 1, .input = kept};
        CHECK(gpt2_forward(&m, part, &eb) == 0);
        CHECK(!memcmp(gpt2_acts_block_out(full, s), gpt2_acts_block_out(part, s),
                      BT * C * sizeof(float)));
        gpt2_acts_free(part);
        part = NULL;
    }
    gpt2_acts_new(&part, &m.config, B, T, 2);
    gpt2_batch bad = fb;
    bad.input = kept; /* from block 0 */
    CHECK(gpt2_forward(&m, part, &bad) == ERR_INVALID);
    err_clear();
    size_t from[2] = {1, 1}, len[2] = {7, 7};
    bad.start_layer = 1;
    bad.row_from = from;
    bad.row_len = len;
    CHECK(gpt2_forward(&m, part, &bad) == ERR_INVALID);
    err_clear();
    gpt2_acts_free(part);
    gpt2_acts_free(full);
    gpt2_model_free(&m);
}

/* A pass over row ranges (MEMIT's z steps: only the positions from the
 * subject's last token on, only up to each prompt's end) gives the full
 * pass's logits and hook gradient. */
TEST(row_range_pass_equals_full_pass)
{
    size_t B = 3, T = 8, C = 16, V = 37;
    int tokens[24];
    gpt2_model m;
    small_model(&m, 9, tokens, 24);
    size_t from[3] = {3, 1, 5}, len[3] = {8, 4, 6};
    size_t hp[3] = {3, 8 + 1, 16 + 5};           /* each row's first */
    size_t lp[5] = {7, 3, 8 + 3, 8 + 2, 16 + 5};  /* inside the ranges */
    float vec[3 * 16], dl[5 * 37];
    fill(vec, 3 * C, -1, 1);
    fill(dl, 5 * V, -1, 1);
    for (size_t h = 0; h + 1 < 4; h++) {
        gpt2_hook hook = {.layer = h, .n = 3, .pos = hp, .vec = vec};
        gpt2_acts *full = NULL, *part = NULL;
        CHECK(gpt2_acts_new(&full, &m.config, B, T, 5) == 0);
        CHECK(gpt2_acts_new(&part, &m.config, B, T, 5) == 0);
        gpt2_batch base = {.tokens = tokens, .B = B, .T = T, .logit_pos = lp,
                           .n_logits = 5};
        CHECK(gpt2_forward(&m, full, &base) == 0);
        CHECK(gpt2_forward(&m, part, &base) == 0);
        gpt2_batch fb = base;
        fb.start_layer = h + 1;
        fb.hook = &hook;
        gpt2_batch rb = fb;
        rb.row_from = from;
        rb.row_len = len;
        float d1[3 * 16], d2[3 * 16];
        CHECK(gpt2_forward(&m, full, &fb) == 0);
        CHECK(gpt2_backward(&m, full, &fb, dl, NULL, d1) == 0);
        for (int again = 0; again < 2; again++) { /* repeatable */
            CHECK(gpt2_forward(&m, part, &rb) == 0);
            CHECK_CLOSE(gpt2_acts_logits(part), gpt2_acts_logits(full), 5 * V,
                        1e-5, 1e-4);
            CHECK(gpt2_backward(&m, part, &rb, dl, NULL, d2) == 0);
            CHECK_CLOSE(d2, d1, 3 * C, 1e-5, 1e-4);
        }
        /* the hook and the logits must lie inside the ranges */
        size_t bad_hp[3] = {2, 8 + 1, 16 + 5};
        gpt2_hook bad_hook = hook;
        bad_hook.pos = bad_hp;
        gpt2_batch bad = rb;
        bad.hook = &bad_hook;
        CHECK(gpt2_forward(&m, part, &bad) == ERR_INVALID);
        size_t bad_lp[5] = {7, 3, 8 + 4, 8 + 2, 16 + 5};
        bad = rb;
        bad.logit_pos = bad_lp;
        CHECK(gpt2_forward(&m, part, &bad) == ERR_INVALID);
        bad = rb;
        bad.row_len = NULL;
        CHECK(gpt2_forward(&m, part, &bad) == ERR_INVALID);
        /* no weight gradients over row ranges */
        gpt2_model g;
        gpt2_model_init(&g, &m.config);
        CHECK(gpt2_forward(&m, part, &rb) == 0);
        CHECK(gpt2_backward(&m, part, &rb, dl, &g, NULL) == ERR_INVALID);
        err_clear();
        gpt2_model_free(&g);
        gpt2_acts_free(full);
        gpt2_acts_free(part);
    }
    gpt2_model_free(&m);
}

/* 1 when layers [0, L) of x and y hold the same keys and block outputs
 * of BT positions, to the bit. */
static int same_layers(const gpt2_acts *x, const gpt2_acts *y, size_t L,
                       size_t BT, size_t C, size_t F)
{
    for (size_t l = 0; l < L; l++)
        if (memcmp(gpt2_acts_mlp_key(x, l), gpt2_acts_mlp_key(y, l),
                   BT * F * sizeof(float)) ||
            memcmp(gpt2_acts_block_out(x, l), gpt2_acts_block_out(y, l),
                   BT * C * sizeof(float)))
            return 0;
    return 1;
}

/* FORWARD_ONLY and LOGITS_ONLY workspaces (the key passes, the key
 * statistics, scoring) give the full workspace's keys, block outputs and
 * logits to the bit, in less memory, and refuse what they cannot hold. */
TEST(forward_only_workspaces_equal_the_full_one)
{
    size_t B = 2, T = 7, BT = 14, C = 16, F = 64, V = 37;
    int tokens[14];
    gpt2_model m;
    small_model(&m, 11, tokens, 14);
    size_t lp[2] = {6, 13};
    gpt2_acts *full = NULL, *fwd = NULL, *lgt = NULL;
    CHECK(gpt2_acts_new(&full, &m.config, B, T, 2) == 0);
    CHECK(gpt2_acts_new_from(&fwd, &m.config, B, T, 2,
                             GPT2_ACTS_FORWARD_ONLY, 0) == 0);
    CHECK(gpt2_acts_new_from(&lgt, &m.config, B, T, 2,
                             GPT2_ACTS_LOGITS_ONLY, 0) == 0);
    CHECK(gpt2_acts_bytes(fwd) < gpt2_acts_bytes(full) / 4 * 3);
    CHECK(gpt2_acts_bytes(lgt) < gpt2_acts_bytes(fwd));
    gpt2_batch fb = {.tokens = tokens, .B = B, .T = T, .logit_pos = lp,
                     .n_logits = 2};
    CHECK(gpt2_forward(&m, full, &fb) == 0);
    CHECK(gpt2_forward(&m, fwd, &fb) == 0);
    CHECK(gpt2_forward(&m, lgt, &fb) == 0);
    CHECK(same_layers(full, fwd, 4, BT, C, F));
    CHECK(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(fwd),
                  2 * V * sizeof(float)));
    CHECK(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(lgt),
                  2 * V * sizeof(float)));
    CHECK(!gpt2_acts_mlp_key(lgt, 1) && !gpt2_acts_block_out(lgt, 1));
    /* passes that end early, from a kept input, from an earlier pass */
    gpt2_batch eb = {.tokens = tokens, .B = B, .T = T, .end_layer = 3};
    CHECK(gpt2_forward(&m, fwd, &eb) == 0);
    CHECK(same_layers(full, fwd, 3, BT, C, F));
    float kept[14 * 16];
    memcpy(kept, gpt2_acts_block_out(full, 1), sizeof kept);
    gpt2_batch ib = {.tokens = tokens, .B = B, .T = T, .start_layer = 2,
                     .input = kept, .logit_pos = lp, .n_logits = 2};
    CHECK(gpt2_forward(&m, fwd, &ib) == 0);
    CHECK(same_layers(full, fwd, 4, BT, C, F));
    CHECK(gpt2_forward(&m, lgt, &ib) == 0);
    CHECK(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(lgt),
                  2 * V * sizeof(float)));
    gpt2_batch sb = fb;
    sb.start_layer = 3;
    CHECK(gpt2_forward(&m, fwd, &fb) == 0);
    CHECK(gpt2_forward(&m, fwd, &sb) == 0);
    CHECK(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(fwd),
                  2 * V * sizeof(float)));
    /* no backward, no row ranges; logits-only keeps no block output for
     * a pass from above block 0 */
    float dl[2 * 37] = {0};
    CHECK(gpt2_forward(&m, fwd, &fb) == 0);
    CHECK(gpt2_backward(&m, fwd, &fb, dl, NULL, NULL) == ERR_INVALID);
    size_t from[2] = {1, 1}, len[2] = {7, 7};
    gpt2_batch rb = sb;
    rb.row_from = from;
    rb.row_len = len;
    CHECK(gpt2_forward(&m, fwd, &rb) == ERR_INVALID);
    CHECK(gpt2_forward(&m, lgt, &fb) == 0);
    CHECK(gpt2_forward(&m, lgt, &sb) == ERR_INVALID);
    err_clear();
    gpt2_acts_free(full);
    gpt2_acts_free(fwd);
    gpt2_acts_free(lgt);
    gpt2_model_free(&m);
}

/* A workspace from layer f (MEMIT's target vectors, hook at f - 1) gives
 * the full workspace's logits, keys, block outputs and hook gradients to
 * the bit, with and without row ranges, in less memory the higher f is;
 * a backward below f is refused. */
TEST(workspace_from_a_layer_equals_the_full_one)
{
    size_t B = 3, T = 8, BT = 24, C = 16, F = 64, V = 37;
    int tokens[24];
    gpt2_model m;
    small_model(&m, 12, tokens, 24);
    size_t from[3] = {3, 1, 5}, len[3] = {8, 4, 6};
    size_t hp[3] = {3, 8 + 1, 16 + 5};
    size_t lp[5] = {7, 3, 8 + 3, 8 + 2, 16 + 5};
    float vec[3 * 16], dl[5 * 37];
    fill(vec, 3 * C, -1, 1);
    fill(dl, 5 * V, -1, 1);
    size_t last_bytes = SIZE_MAX;
    for (size_t f = 1; f <= 4; f++) { /* 4: past the top, as 3 */
        size_t h = f < 4 ? f - 1 : 2;
        gpt2_hook hook = {.layer = h, .n = 3, .pos = hp, .vec = vec};
        gpt2_acts *full = NULL, *part = NULL;
        CHECK(gpt2_acts_new(&full, &m.config, B, T, 5) == 0);
        CHECK(gpt2_acts_new_from(&part, &m.config, B, T, 5, 0, f) == 0);
        CHECK(gpt2_acts_bytes(part) < gpt2_acts_bytes(full));
        CHECK(f == 4 || gpt2_acts_bytes(part) < last_bytes);
        last_bytes = gpt2_acts_bytes(part);
        gpt2_batch base = {.tokens = tokens, .B = B, .T = T, .logit_pos = lp,
                           .n_logits = 5};
        CHECK(gpt2_forward(&m, full, &base) == 0);
        CHECK(gpt2_forward(&m, part, &base) == 0);
        CHECK(same_layers(full, part, 4, BT, C, F));
        gpt2_batch zb = base;
        zb.start_layer = h + 1;
        zb.hook = &hook;
        gpt2_batch rb = zb;
        rb.row_from = from;
        rb.row_len = len;
        for (int rows = 0; rows < 2; rows++) {
            const gpt2_batch *b = rows ? &rb : &zb;
            float d1[3 * 16], d2[3 * 16];
            CHECK(gpt2_forward(&m, full, b) == 0);
            CHECK(gpt2_backward(&m, full, b, dl, NULL, d1) == 0);
            CHECK(gpt2_forward(&m, part, b) == 0);
            CHECK(gpt2_backward(&m, part, b, dl, NULL, d2) == 0);
            CHECK_MSG(!memcmp(gpt2_acts_logits(full), gpt2_acts_logits(part),
                              5 * V * sizeof(float)) &&
                      !memcmp(d1, d2, sizeof d1),
                      "from layer %zu, rows %d: logits %g, dvec %g", f, rows,
                      max_abs_diff(gpt2_acts_logits(full),
                                   gpt2_acts_logits(part), 5 * V),
                      max_abs_diff(d1, d2, 3 * C));
        }
        /* a backward (or row ranges) below f, weight gradients: refused */
        gpt2_model g;
        gpt2_model_init(&g, &m.config);
        CHECK(gpt2_forward(&m, part, &base) == 0);
        CHECK(gpt2_backward(&m, part, &base, dl, &g, NULL) == ERR_INVALID);
        if (h > 0) {
            gpt2_hook low = hook;
            low.layer = h - 1;
            gpt2_batch lb = base;
            lb.hook = &low;
            float dz[3 * 16];
            CHECK(gpt2_forward(&m, part, &lb) == 0);
            CHECK(gpt2_backward(&m, part, &lb, dl, NULL, dz) == ERR_INVALID);
            lb.start_layer = h;
            lb.row_from = from;
            lb.row_len = len;
            CHECK(gpt2_forward(&m, part, &lb) == ERR_INVALID);
        }
        err_clear();
        gpt2_model_free(&g);
        gpt2_acts_free(full);
        gpt2_acts_free(part);
    }
    gpt2_model_free(&m);
}

TEST(padding_does_not_leak_backwards)
{
    gpt2_config c = tiny_config();
    gpt2_model m;
    gpt2_model_init(&m, &c);
    randomize(&m, 3);
    int t1[14], t2[14];
    for (size_t i = 0; i < 14; i++) t1[i] = t2[i] = (int)(urand() * 37);
    for (size_t t = 4; t < 7; t++) { /* row 0: 4 real tokens, other tails */
        t1[t] = 0;
        t2[t] = (int)(urand() * 36) + 1;
    }
    t2[7 + 5] = (t1[7 + 5] + 1) % 37; /* row 1 differs after position 5 */
    size_t pos[9] = {0, 1, 2, 3, 7, 8, 9, 10, 11};
    gpt2_acts *a1 = NULL, *a2 = NULL;
    gpt2_acts_new(&a1, &c, 2, 7, 9);
    gpt2_acts_new(&a2, &c, 2, 7, 9);
    gpt2_batch b1 = {.tokens = t1, .B = 2, .T = 7, .logit_pos = pos, .n_logits = 9};
    gpt2_batch b2 = b1;
    b2.tokens = t2;
    CHECK(gpt2_forward(&m, a1, &b1) == 0);
    CHECK(gpt2_forward(&m, a2, &b2) == 0);
    const float *l1 = gpt2_acts_logits(a1), *l2 = gpt2_acts_logits(a2);
    double d = max_abs_diff(l1, l2, 9 * 37);
    CHECK_MSG(d == 0, "max diff %g", d);
    /* and the keys of the real positions */
    CHECK(!memcmp(gpt2_acts_mlp_key(a1, 1), gpt2_acts_mlp_key(a2, 1), 4 * 64 * sizeof(float)));
    gpt2_acts_free(a1);
    gpt2_acts_free(a2);
    gpt2_model_free(&m);
}

/* One forward + backward on a model big enough for threads to matter. */
typedef struct {
    float *logits, *grads, *dvec;
} run_out;

static void run_medium(const gpt2_model *m, const int *tokens, size_t B,
                       size_t T, run_out *o)
{
    size_t BT = B * T, V = m->config.vocab_size, C = m->config.n_embd;
    size_t *pos = malloc(BT * sizeof *pos), hp[2] = {5, BT - 3};
    int *tg = malloc(BT * sizeof *tg);
    for (size_t i = 0; i < BT; i++) {
        pos[i] = i;
        tg[i] = tokens[(i + 1) % BT];
    }
    float *vec = fnew(2 * C), *dl = fnew(BT * V);
    for (size_t i = 0; i < 2 * C; i++) vec[i] = 0.01f * (float)i;
    gpt2_hook hook = {.layer = 1, .n = 2, .pos = hp, .vec = vec};
    gpt2_acts *a = NULL;
    gpt2_acts_new(&a, &m->config, B, T, BT);
    gpt2_batch b = {.tokens = tokens, .B = B, .T = T, .hook = &hook,
                    .logit_pos = pos, .n_logits = BT};
    gpt2_model g;
    gpt2_model_init(&g, &m->config);
    gpt2_forward(m, a, &b);
    o->logits = fdup(gpt2_acts_logits(a), BT * V);
    gpt2_crossentropy(o->logits, tg, BT, V, dl);
    o->dvec = fnew(2 * C);
    gpt2_backward(m, a, &b, dl, &g, o->dvec);
    o->grads = fdup(g.memory, g.num_parameters);
    gpt2_model_free(&g);
    gpt2_acts_free(a);
    free(pos); free(tg); free(vec); free(dl);
}

static int same_run(const run_out *x, const run_out *y, size_t nl, size_t np,
                    size_t C)
{
    return !memcmp(x->logits, y->logits, nl * sizeof(float)) &&
           !memcmp(x->grads, y->grads, np * sizeof(float)) &&
           !memcmp(x->dvec, y->dvec, 2 * C * sizeof(float));
}

static void run_free(run_out *o)
{
    free(o->logits);
    free(o->grads);
    free(o->dvec);
}

TEST(determinism_runs_threads_parallel_region)
{
    gpt2_config c = {.n_layer = 3, .n_head = 4, .n_embd = 96,
                     .n_positions = 64, .vocab_size = 301};
    gpt2_model m;
    CHECK(gpt2_model_init(&m, &c) == 0);
    randomize(&m, 21);
    size_t B = 3, T = 64, BT = B * T, nl = BT * 301; /* attention in parallel */
    int *tokens = malloc(BT * sizeof *tokens);
    for (size_t i = 0; i < BT; i++) tokens[i] = (int)(urand() * 301);
    int max_threads = omp_get_max_threads();
    run_out r2a, r2b, r1, rp[2];
    set_threads(2);
    run_medium(&m, tokens, B, T, &r2a);
    run_medium(&m, tokens, B, T, &r2b);
    set_threads(1);
    run_medium(&m, tokens, B, T, &r1);
    set_threads(2);
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 2; i++) run_medium(&m, tokens, B, T, &rp[i]);
    set_threads(max_threads);
    CHECK_MSG(same_run(&r2a, &r2b, nl, m.num_parameters, 96), "two runs differ");
    CHECK_MSG(same_run(&r2a, &r1, nl, m.num_parameters, 96),
              "1 and 2 threads differ: logits %g grads %g",
              max_abs_diff(r2a.logits, r1.logits, nl),
              max_abs_diff(r2a.grads, r1.grads, m.num_parameters));
    CHECK_MSG(same_run(&r2a, &rp[0], nl, m.num_parameters, 96) &&
              same_run(&r2a, &rp[1], nl, m.num_parameters, 96),
              "inside a parallel region differs");
    run_free(&r2a); run_free(&r2b); run_free(&r1); run_free(&rp[0]); run_free(&rp[1]);
    free(tokens);
    gpt2_model_free(&m);
}

TEST(bad_arguments)
{
    gpt2_config c = tiny_config();
    gpt2_model m;
    gpt2_model_init(&m, &c);
    randomize(&m, 1);
    int tokens[14] = {0}, other[14] = {0};
    other[3] = 5;
    size_t pos[1] = {13}, far[1] = {14};
    float vec[16] = {0}, dl[37] = {0}, dvec[16];
    gpt2_acts *a = NULL;
    gpt2_acts_new(&a, &c, 2, 7, 1);
    gpt2_batch b = {.tokens = tokens, .B = 2, .T = 7, .logit_pos = pos, .n_logits = 1};
    CHECK(gpt2_backward(&m, a, &b, dl, NULL, NULL) == ERR_INVALID); /* no forward */
    b.start_layer = 1;
    CHECK(gpt2_forward(&m, a, &b) == ERR_INVALID); /* nothing cached */
    b.start_layer = 0;
    tokens[2] = 37;
    CHECK(gpt2_forward(&m, a, &b) == ERR_INVALID);
    tokens[2] = -1;
    CHECK(gpt2_forward(&m, a, &b) == ERR_INVALID);
    tokens[2] = 0;
    b.logit_pos = far;
    CHECK(gpt2_forward(&m, a, &b) == ERR_INVALID);
    b.logit_pos = pos;
    b.n_logits = 2;
    CHECK(gpt2_forward(&m, a, &b) == ERR_INVALID);
    b.n_logits = 1;
    b.B = 3;
    CHECK(gpt2_forward(&m, a, &b) == ERR_INVALID);
    b.B = 2;
    CHECK(gpt2_forward(&m, a, &b) == 0);
    gpt2_batch p = b;
    p.start_layer = 1;
    p.tokens = other;
    CHECK(gpt2_forward(&m, a, &p) == ERR_INVALID); /* other tokens */
    p.tokens = tokens;
    p.T = 6;
    CHECK(gpt2_forward(&m, a, &p) == ERR_INVALID); /* other shape */
    p.T = 7;
    gpt2_hook h = {.layer = 0, .n = 1, .pos = pos, .vec = vec};
    p.start_layer = 2;
    p.hook = &h;
    CHECK(gpt2_forward(&m, a, &p) == ERR_INVALID); /* hook below start - 1 */
    h.layer = 2;
    CHECK(gpt2_forward(&m, a, &p) == ERR_INVALID); /* no such layer */
    h.layer = 1;
    h.pos = far;
    CHECK(gpt2_forward(&m, a, &p) == ERR_INVALID);
    h.pos = pos;
    p.start_layer = 3;
    CHECK(gpt2_forward(&m, a, &p) == ERR_INVALID);
    p.start_layer = 2;
    CHECK(gpt2_forward(&m, a, &p) == 0);
    CHECK(gpt2_backward(&m, a, &b, dl, NULL, NULL) == ERR_INVALID); /* not b */
    CHECK(gpt2_backward(&m, a, &p, dl, NULL, dvec) == 0);
    CHECK(gpt2_forward(&m, a, &b) == 0);
    CHECK(gpt2_backward(&m, a, &b, dl, NULL, dvec) == ERR_INVALID); /* no hook */
    gpt2_config c2 = c;
    c2.n_embd = 32;
    gpt2_model g;
    gpt2_model_init(&g, &c2);
    CHECK(gpt2_backward(&m, a, &b, dl, &g, NULL) == ERR_INVALID);
    gpt2_model_free(&g);
    gpt2_acts_free(a);
    gpt2_model_free(&m);
}

/* ---- golden log-probabilities from PyTorch --------------------------------- */

TEST(golden_pytorch)
{
    gpt2_model m;
    int rc = gpt2_model_load(&m, "tests/data/gpt2-tiny");
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    json_error_t jerr;
    json_t *root = json_load_file("tests/data/gpt2-tiny/golden.json", 0, &jerr);
    CHECK_MSG(root != NULL, "%s", jerr.text);
    if (!root) { gpt2_model_free(&m); return; }
    size_t V = m.config.vocab_size;
    CHECK((size_t)json_integer_value(json_object_get(root, "vocab_size")) == V);
    json_t *seqs = json_object_get(root, "sequences"), *seq;
    size_t si, n_rows = 0;
    double worst = 0;
    CHECK(json_array_size(seqs) >= 3);
    json_array_foreach(seqs, si, seq) {
        json_t *jt = json_object_get(seq, "tokens"), *jl = json_object_get(seq, "logprobs");
        size_t T = json_array_size(jt);
        int *tok = malloc(T * sizeof *tok);
        size_t *pos = malloc(T * sizeof *pos);
        for (size_t t = 0; t < T; t++) {
            tok[t] = (int)json_integer_value(json_array_get(jt, t));
            pos[t] = t;
        }
        gpt2_acts *a = NULL;
        CHECK(gpt2_acts_new(&a, &m.config, 1, T, T) == 0);
        gpt2_batch b = {.tokens = tok, .B = 1, .T = T, .logit_pos = pos, .n_logits = T};
        CHECK(gpt2_forward(&m, a, &b) == 0);
        float *lp = fnew(T * V);
        gpt2_log_softmax(lp, gpt2_acts_logits(a), T, V);
        CHECK(json_array_size(jl) == T);
        for (size_t t = 0; t < T; t++) {
            json_t *row = json_array_get(jl, t);
            CHECK(json_array_size(row) == V);
            for (size_t v = 0; v < V && v < json_array_size(row); v++) {
                double d = fabs(lp[t * V + v] - json_number_value(json_array_get(row, v)));
                if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
            }
            n_rows++;
        }
        free(lp);
        free(tok);
        free(pos);
        gpt2_acts_free(a);
    }
    CHECK_MSG(worst < 1e-4, "max |log-prob - torch| = %g", worst);
    CHECK(n_rows >= 30);
    printf("     golden: %zu positions, max |diff| %.2g\n", n_rows, worst);
    json_decref(root);
    gpt2_model_free(&m);
}

/* ---- saving, loading, bad directories ----------------------------------------- */

static char tmp_root[64];

static const char *tmp_dir(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s/%s", tmp_root, name);
    return buf;
}

/* Writes model m to dir/model.safetensors with names transformed:
 * prefix ("" or "transformer."), optionally skipping or reshaping one
 * tensor, plus extra tensors; config.json from cfg. */
static int write_variant(const gpt2_model *m, const gpt2_config *cfg,
                         const char *dir, const char *prefix,
                         const char *skip, const char *transpose,
                         const st_write_tensor *extra, size_t n_extra)
{
    size_t L = m->config.n_layer, n = 0;
    st_write_tensor t[64];
    memset(t, 0, sizeof t);
    char names[64][80];
    mkdir(dir, 0777);
    for (int i = 0; i < GPT2_NUM_TENSORS; i++)
        for (size_t l = 0; l < ((i >= 2 && i <= 13) ? L : 1); l++) {
            char base[64];
            size_t shape[2];
            int ndim;
            gpt2_tensor_name(base, sizeof base, i, l);
            if (skip && !strcmp(base, skip)) continue;
            snprintf(names[n], 80, "%s%s", prefix, base);
            t[n].name = names[n];
            t[n].data = gpt2_tensor(m, base, NULL, shape, &ndim);
            t[n].ndim = ndim;
            t[n].shape[0] = shape[0];
            t[n].shape[1] = shape[1];
            if (transpose && !strcmp(base, transpose)) {
                t[n].shape[0] = shape[1];
                t[n].shape[1] = shape[0];
            }
            n++;
        }
    for (size_t i = 0; i < n_extra; i++) t[n++] = extra[i];
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = safetensors_write(path, t, n);
    snprintf(path, sizeof path, "%s/config.json", dir);
    return rc ? rc : gpt2_config_write(cfg, path);
}

/* Every tensor of a equals b's, bit for bit. */
static int same_weights(const gpt2_model *a, const gpt2_model *b)
{
    if (a->num_parameters != b->num_parameters) return 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++)
        for (size_t l = 0; l < ((i >= 2 && i <= 13) ? a->config.n_layer : 1);
             l++) {
            char name[64];
            size_t na = 0, nb = 0;
            gpt2_tensor_name(name, sizeof name, i, l);
            const float *x = gpt2_tensor(a, name, &na, NULL, NULL);
            const float *y = gpt2_tensor(b, name, &nb, NULL, NULL);
            if (!x || !y || na != nb || memcmp(x, y, na * sizeof *x)) return 0;
        }
    return 1;
}

/* Loading dir fails with ERR_FORMAT and a message naming every needle. */
static void expect_load_error(const char *dir, const char *n1, const char *n2)
{
    gpt2_model m;
    int rc = gpt2_model_load(&m, dir);
    const char *msg = err_message(rc);
    CHECK_MSG(rc == ERR_FORMAT, "%s: rc %d", dir, rc);
    CHECK_MSG(strstr(msg, "model.safetensors") && strstr(msg, n1) &&
              (!n2 || strstr(msg, n2)), "%s: message '%s'", dir, msg);
    CHECK(m.memory == NULL);
    gpt2_model_free(&m);
}

TEST(save_load_round_trip)
{
    gpt2_config c = tiny_config();
    gpt2_model m, back;
    gpt2_model_init(&m, &c);
    randomize(&m, 77);
    const char *dir = tmp_dir("saved");
    int rc = gpt2_model_save(&m, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    rc = gpt2_model_load(&back, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (!rc) {
        CHECK(back.num_parameters == m.num_parameters);
        CHECK(back.config.n_layer == 2 && back.config.n_inner == 64 &&
              back.config.vocab_size == 37 && back.config.n_positions == 8);
        CHECK(same_weights(&back, &m));
        CHECK(back.memory == NULL && gpt2_model_owned_bytes(&back) == 0);
        gpt2_model_free(&back);
    }
    char path[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_file *f = NULL;
    CHECK(safetensors_open(&f, path) == 0);
    if (f) {
        CHECK(safetensors_count(f) == 4 + 12 * 2);
        CHECK(safetensors_find(f, "transformer.h.1.mlp.c_proj.weight") != NULL);
        CHECK(safetensors_find(f, "transformer.wte.weight") != NULL);
        CHECK(safetensors_find(f, "transformer.ln_f.bias") != NULL);
        CHECK(safetensors_find(f, "wte.weight") == NULL);
        const st_tensor *t = safetensors_find(f, "transformer.h.0.attn.c_attn.weight");
        CHECK(t && t->ndim == 2 && t->shape[0] == 16 && t->shape[1] == 48);
        safetensors_close(f);
    }
    /* unprefixed names, the hub's extra buffers and a tied lm_head */
    float mask[64];
    for (int i = 0; i < 64; i++) mask[i] = (i % 8) <= (i / 8);
    st_write_tensor extra[3] = {
        {.name = "h.0.attn.bias", .ndim = 4, .shape = {1, 1, 8, 8}, .data = mask},
        {.name = "h.1.attn.masked_bias", .ndim = 0, .data = mask},
        {.name = "lm_head.weight", .ndim = 2, .shape = {37, 16}, .data = m.p.wte},
    };
    const char *hub = tmp_dir("hub");
    CHECK(write_variant(&m, &c, hub, "", NULL, NULL, extra, 3) == 0);
    rc = gpt2_model_load(&back, hub);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (!rc) {
        CHECK(same_weights(&back, &m));
        gpt2_model_free(&back);
    }
    gpt2_model_free(&m);
}

/* Rewrites src/model.safetensors (F32) as dst/model.safetensors with the
 * tensor `half` stored as F16 and, when odd, a 2-byte F16 tensor first,
 * so that every tensor after it is 2 bytes off 4-byte alignment. */
static int rewrite_dtypes(const char *src, const char *dst, const char *half,
                          int odd)
{
    char in[256], out[256], cfg_in[256], cfg_out[256];
    snprintf(in, sizeof in, "%s/model.safetensors", src);
    snprintf(out, sizeof out, "%s/model.safetensors", dst);
    snprintf(cfg_in, sizeof cfg_in, "%s/config.json", src);
    snprintf(cfg_out, sizeof cfg_out, "%s/config.json", dst);
    st_file *f = NULL;
    int rc = safetensors_open(&f, in);
    if (rc) return rc;
    size_t n = safetensors_count(f), k = 0;
    st_write_tensor t[64];
    float one = 1.0f;
    memset(t, 0, sizeof t);
    if (odd)
        t[k++] = (st_write_tensor){.name = "h.0.attn.masked_bias", .ndim = 0,
                                   .data = &one, .dtype = ST_F16};
    for (size_t i = 0; i < n && k < 64; i++, k++) {
        const st_tensor *x = safetensors_at(f, i);
        t[k].name = x->name;
        t[k].ndim = x->ndim;
        memcpy(t[k].shape, x->shape, sizeof x->shape);
        t[k].data = x->data;
        t[k].dtype = strstr(x->name, half) ? ST_F16 : ST_F32;
    }
    mkdir(dst, 0777);
    rc = safetensors_write(out, t, k);
    safetensors_close(f);
    gpt2_config c;
    return rc ? rc : (rc = gpt2_config_read(&c, cfg_in)) ? rc
                                                       : gpt2_config_write(&c, cfg_out);
}

TEST(loaded_f32_weights_are_used_in_place)
{
    gpt2_config c = tiny_config();
    gpt2_model m, back, again;
    const char *edited = "h.1.mlp.c_proj.weight";
    size_t F = 64, C = 16, n = 0;
    gpt2_model_init(&m, &c);
    randomize(&m, 79);
    CHECK(gpt2_model_owned_bytes(&m) == m.num_parameters * sizeof(float));
    char dir[128];
    snprintf(dir, sizeof dir, "%s", tmp_dir("in-place"));
    CHECK(gpt2_model_save(&m, dir) == 0);
    int rc = gpt2_model_load(&back, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) { gpt2_model_free(&m); return; }
    /* nothing copied at load; a writable tensor is a copy made once */
    CHECK(gpt2_model_owned_bytes(&back) == 0);
    const float *mapped = gpt2_tensor(&back, edited, NULL, NULL, NULL);
    float *w = gpt2_tensor_mut(&back, edited, &n);
    CHECK(w && w != mapped && n == F * C && !memcmp(w, mapped, n * sizeof *w));
    CHECK(gpt2_tensor(&back, edited, NULL, NULL, NULL) == w);
    CHECK(gpt2_tensor_mut(&back, "transformer.h.1.mlp.c_proj.weight", NULL) == w);
    CHECK(gpt2_model_owned_bytes(&back) == F * C * sizeof(float));
    CHECK(!gpt2_tensor_mut(&back, "h.2.mlp.c_proj.weight", NULL) &&
          strstr(err_message(ERR_FORMAT), "h.2.mlp.c_proj.weight"));
    w[3] += 1.0f; /* the copy changes, the file does not */
    CHECK(gpt2_model_load(&again, dir) == 0);
    CHECK(!same_weights(&back, &again) && same_weights(&again, &m));
    gpt2_model_free(&again);
    gpt2_model_free(&back);
    /* F16 tensors are converted to owned copies, F32 ones stay mapped */
    char half[128];
    snprintf(half, sizeof half, "%s", tmp_dir("half"));
    CHECK(rewrite_dtypes(dir, half, "h.0.mlp.c_fc.weight", 0) == 0);
    CHECK(gpt2_model_load(&back, half) == 0);
    CHECK(gpt2_model_owned_bytes(&back) == C * F * sizeof(float));
    const float *fc = gpt2_tensor(&back, "h.0.mlp.c_fc.weight", NULL, NULL, NULL);
    int rounded = fc != NULL;
    for (size_t i = 0; fc && i < C * F; i++)
        rounded &= fc[i] == half_to_float(float_to_half(m.p.fcw[i]));
    CHECK_MSG(rounded, "F16 tensor not converted to its F16 values");
    gpt2_model_free(&back);
    /* an F16 tensor of 2 bytes first: every F32 tensor is unaligned, so
     * each is converted, to the same values */
    CHECK(rewrite_dtypes(dir, tmp_dir("unaligned"), "no-such-tensor", 1) == 0);
    CHECK(gpt2_model_load(&back, tmp_dir("unaligned")) == 0);
    CHECK(gpt2_model_owned_bytes(&back) == m.num_parameters * sizeof(float));
    CHECK(same_weights(&back, &m));
    gpt2_model_free(&back);
    gpt2_model_free(&m);
}

TEST(bad_model_directories)
{
    gpt2_config c = tiny_config();
    gpt2_model m;
    gpt2_model_init(&m, &c);
    randomize(&m, 78);
    CHECK(write_variant(&m, &c, tmp_dir("missing"), "transformer.",
                        "h.1.mlp.c_fc.bias", NULL, NULL, 0) == 0);
    expect_load_error(tmp_dir("missing"), "'h.1.mlp.c_fc.bias'", "missing");
    CHECK(write_variant(&m, &c, tmp_dir("shape"), "", NULL,
                        "h.0.attn.c_attn.weight", NULL, 0) == 0);
    expect_load_error(tmp_dir("shape"), "'h.0.attn.c_attn.weight'", "[48, 16]");
    gpt2_config wide = c;
    wide.n_embd = 32;
    wide.n_inner = 128;
    CHECK(write_variant(&m, &wide, tmp_dir("wide"), "", NULL, NULL, NULL, 0) == 0);
    expect_load_error(tmp_dir("wide"), "'wte.weight'", "[37, 32]");
    gpt2_config deep = c;
    deep.n_layer = 3;
    CHECK(write_variant(&m, &deep, tmp_dir("deep"), "", NULL, NULL, NULL, 0) == 0);
    expect_load_error(tmp_dir("deep"), "'h.2.ln_1.weight'", NULL);
    gpt2_config shallow = c;
    shallow.n_layer = 1;
    CHECK(write_variant(&m, &shallow, tmp_dir("shallow"), "", NULL, NULL, NULL, 0) == 0);
    expect_load_error(tmp_dir("shallow"), "'h.1.", "n_layer");
    float *untied = fdup(m.p.wte, 37 * 16);
    untied[5] += 1;
    st_write_tensor head = {.name = "lm_head.weight", .ndim = 2,
                            .shape = {37, 16}, .data = untied};
    CHECK(write_variant(&m, &c, tmp_dir("untied"), "", NULL, NULL, &head, 1) == 0);
    expect_load_error(tmp_dir("untied"), "lm_head.weight", NULL);
    free(untied);
    gpt2_model bad;
    int rc = gpt2_model_load(&bad, tmp_dir("no-such-dir"));
    CHECK(rc != 0 && strstr(err_message(rc), "no-such-dir/config.json"));
    CHECK(bad.memory == NULL);
    gpt2_model_free(&m);
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/test_gpt2.XXXXXX");
    if (!mkdtemp(tmp_root)) return 1;
    RUN(kernel_encoder);
    RUN(kernel_layernorm);
    RUN(kernel_matmul);
    RUN(kernel_matmul_nt);
    RUN(kernel_attention);
    RUN(kernel_attention_rows);
    RUN(kernel_gelu_residual);
    RUN(kernel_softmax_crossentropy);
    RUN(model_init_and_tensors);
    RUN(forward_matches_naive_network);
    RUN(backward_full_pass_hook_in_middle);
    RUN(backward_full_pass_hook_before_ln_f);
    RUN(backward_full_pass_no_hook);
    RUN(backward_partial_pass_hook_below_start);
    RUN(backward_head_only_pass);
    RUN(backward_accumulates);
    RUN(partial_pass_equals_full_pass);
    RUN(early_end_pass_equals_full_pass_below);
    RUN(pass_from_a_kept_input_equals_full_pass);
    RUN(row_range_pass_equals_full_pass);
    RUN(forward_only_workspaces_equal_the_full_one);
    RUN(workspace_from_a_layer_equals_the_full_one);
    RUN(padding_does_not_leak_backwards);
    RUN(determinism_runs_threads_parallel_region);
    RUN(bad_arguments);
    RUN(golden_pytorch);
    RUN(save_load_round_trip);
    RUN(loaded_f32_weights_are_used_in_place);
    RUN(bad_model_directories);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return harness_summary();
}
