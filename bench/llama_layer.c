/* llama_layer: the speed of the Llama family's forward and backward
 * passes on Llama-3.2-1B-shaped layers (hidden 2048, intermediate 8192,
 * 32 heads, 8 key/value heads, head_dim 64), with the weights in BF16
 * and in F32, and of the weight-converting linear kernel against one
 * plain sgemm over an F32 weight. Random weights, built in memory (the
 * kernels do not care whether a matrix is mapped from a file).
 *
 *   bench/llama_layer.sh            builds this against $BUILD/libstamp.a
 *   llama_layer [REPS]              prints one line per measurement
 *
 * Times are medians of REPS (default 5) runs after one warm-up, in
 * milliseconds, with every core (OMP_NUM_THREADS to change). "layer" is
 * one block's forward (2 layers run, divided by 2; no head); "backward"
 * is llama_backward to a hook below the top block (one block); "head" is
 * the lm_head of a 128,256-token vocabulary on one row. */
#include "base/blas_cpu.h"
#include "base/clock.h"
#include "base/linalg.h"
#include "base/splitmix.h"
#include "model/llama.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 12345;

/* n random weights N(0, ~0.02) as dtype. */
static void *random_matrix(linalg_dtype dt, size_t n)
{
    size_t es = dt == LINALG_F32 ? 4 : 2;
    unsigned char *p = malloc(n * es);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) {
        float x = (float)((splitmix_unit(&rng) - 0.5) * 0.07);
        if (dt == LINALG_F32) {
            memcpy(p + 4 * i, &x, 4);
        } else { /* BF16: the top half (the bench needs no rounding) */
            uint32_t b;
            memcpy(&b, &x, 4);
            uint16_t h = (uint16_t)(b >> 16);
            memcpy(p + 2 * i, &h, 2);
        }
    }
    return p;
}

static llama_mat mat(linalg_dtype dt, size_t rows, size_t cols)
{
    return (llama_mat){random_matrix(dt, rows * cols), dt, rows, cols};
}

/* A model of L Llama-3.2-1B blocks with a small vocabulary, built by
 * hand; free with model_free. */
static void model_new(llama_model *m, linalg_dtype dt, size_t L, size_t V)
{
    memset(m, 0, sizeof *m);
    llama_config *c = &m->config;
    c->arch = LLAMA_ARCH_LLAMA;
    c->n_layer = L;
    c->n_embd = 2048;
    c->n_inner = 8192;
    c->n_head = 32;
    c->n_kv_head = 8;
    c->head_dim = 64;
    c->vocab_size = V;
    c->n_positions = 131072;
    c->rms_norm_eps = 1e-5f;
    c->rope_theta = 500000.0;
    c->rope_llama3 = true;
    c->rope_factor = 32;
    c->rope_low_freq_factor = 1;
    c->rope_high_freq_factor = 4;
    c->rope_original_max_positions = 8192;
    c->tie_word_embeddings = true;
    size_t C = c->n_embd, F = c->n_inner, QD = 2048, KD = 512;
    m->n_vectors = L * 2 * C + C;
    m->vectors = malloc(m->n_vectors * sizeof(float));
    for (size_t i = 0; i < m->n_vectors; i++) m->vectors[i] = 1.0f;
    m->layers = calloc(L, sizeof *m->layers);
    m->owned = calloc(L, sizeof *m->owned);
    m->inv_freq = malloc(32 * sizeof *m->inv_freq);
    llama_config_inv_freq(c, m->inv_freq);
    m->embed = mat(dt, V, C);
    m->lm_head = m->embed;
    m->norm = m->vectors + L * 2 * C;
    for (size_t l = 0; l < L; l++) {
        llama_layer *w = &m->layers[l];
        w->q = mat(dt, QD, C);
        w->k = mat(dt, KD, C);
        w->v = mat(dt, KD, C);
        w->o = mat(dt, C, QD);
        w->gate = mat(dt, F, C);
        w->up = mat(dt, F, C);
        w->down = mat(dt, C, F);
        w->attn_norm = m->vectors + l * 2 * C;
        w->mlp_norm = w->attn_norm + C;
    }
}

static void model_free(llama_model *m)
{
    for (size_t l = 0; l < m->config.n_layer; l++) {
        llama_layer *w = &m->layers[l];
        const llama_mat *mats[7] = {&w->q, &w->k, &w->v, &w->o,
                                    &w->gate, &w->up, &w->down};
        for (int i = 0; i < 7; i++) free((void *)mats[i]->data);
    }
    free((void *)m->embed.data);
    llama_model_free(m);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Forward of the L = 2 blocks (per block) and backward to a hook at
 * block 0 (one block), for B x T tokens, on the BF16 and the F32 model in
 * alternation (a busy host slows both alike). */
static void bench_layer(llama_model *m, size_t B, size_t T, int reps)
{
    size_t C = m[0].config.n_embd, BT = B * T, V = m[0].config.vocab_size;
    int *tokens = malloc(BT * sizeof *tokens);
    for (size_t i = 0; i < BT; i++)
        tokens[i] = (int)(splitmix_unit(&rng) * V);
    size_t lp[1] = {BT - 1}, hp[1] = {BT - 1};
    float *vec = calloc(C, sizeof *vec), *dvec = malloc(C * sizeof *dvec);
    float *dl = calloc(V, sizeof *dl);
    dl[3] = 1.0f;
    llama_hook h = {.layer = 0, .n = 1, .pos = hp, .vec = vec};
    llama_batch fwd = {.tokens = tokens, .B = B, .T = T};
    llama_batch step = {.tokens = tokens, .B = B, .T = T, .hook = &h,
                        .logit_pos = lp, .n_logits = 1, .start_layer = 1};
    llama_acts *a = NULL;
    if (llama_acts_new(&a, &m[0].config, B, T, 1, 0)) {
        fprintf(stderr, "no workspace\n");
        exit(1);
    }
    double tf[2][64], tb[2][64];
    for (int r = -1; r < reps; r++)
        for (int d = 0; d < 2; d++) {
            double t0 = clock_seconds();
            llama_forward(&m[d], a, &fwd);
            double t1 = clock_seconds();
            llama_forward(&m[d], a, &step); /* block 1 and the head */
            double t2 = clock_seconds();
            llama_backward(&m[d], a, &step, dl, dvec);
            double t3 = clock_seconds();
            if (r >= 0) {
                tf[d][r] = (t1 - t0) / m[d].config.n_layer;
                tb[d][r] = t3 - t2;
            }
        }
    /* multiply-adds of one block's matrices per token: 2 x (2048 x 2048
     * + 2 x 512 x 2048) + 3 x 8192 x 2048 */
    double macs = (2.0 * 2048 * 2048 + 2.0 * 512 * 2048 + 3.0 * 8192 * 2048) * BT;
    const char *names[2] = {"bf16", "f32"};
    for (int d = 0; d < 2; d++) {
        double f = median(tf[d], reps), b = median(tb[d], reps);
        printf("layer    %-4s B=%-2zu T=%-4zu forward %8.2f ms (%5.1f GFLOP/s)"
               "   backward %8.2f ms\n", names[d], B, T, 1e3 * f,
               2 * macs / f * 1e-9, 1e3 * b);
    }
    llama_acts_free(a);
    free(tokens); free(vec); free(dvec); free(dl);
}

/* One linear kernel (N, IN) @ W^T (OUT, IN) in each dtype, and one
 * cblas_sgemm over the F32 weight. */
static void bench_linear(size_t N, size_t IN, size_t OUT, int reps)
{
    float *x = malloc(N * IN * sizeof *x), *y = malloc(N * OUT * sizeof *y);
    for (size_t i = 0; i < N * IN; i++) x[i] = (float)splitmix_unit(&rng);
    void *wb = random_matrix(LINALG_BF16, OUT * IN);
    float *wf = malloc(OUT * IN * sizeof *wf);
    linalg_to_f32(wf, wb, LINALG_BF16, OUT * IN);
    double t[3][64];
    for (int r = -1; r < reps; r++) {
        double t0 = clock_seconds();
        linalg_linear_forward(y, x, wb, LINALG_BF16, NULL, N, IN, OUT);
        double t1 = clock_seconds();
        linalg_linear_forward(y, x, wf, LINALG_F32, NULL, N, IN, OUT);
        double t2 = clock_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OUT,
                    (int)IN, 1.0f, x, (int)IN, wf, (int)IN, 0.0f, y, (int)OUT);
        double t3 = clock_seconds();
        if (r >= 0) {
            t[0][r] = t1 - t0;
            t[1][r] = t2 - t1;
            t[2][r] = t3 - t2;
        }
    }
    printf("linear   N=%-4zu %5zu -> %-6zu bf16 %8.2f ms   f32 %8.2f ms   "
           "one sgemm (f32) %8.2f ms\n", N, IN, OUT, 1e3 * median(t[0], reps),
           1e3 * median(t[1], reps), 1e3 * median(t[2], reps));
    free(x); free(y); free(wb); free(wf);
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 64) reps = 5;
    printf("# llama_layer: Llama-3.2-1B blocks (2048/8192, 32 heads, 8 kv, "
           "head_dim 64); OpenBLAS core %s; medians of %d\n", blas_cpu_core(),
           reps);
    bench_linear(1, 2048, 8192, reps);
    bench_linear(16, 2048, 8192, reps);
    bench_linear(256, 2048, 8192, reps);
    bench_linear(256, 8192, 2048, reps);
    bench_linear(1, 2048, 128256, reps);
    llama_model m[2];
    model_new(&m[0], LINALG_BF16, 2, 1024);
    model_new(&m[1], LINALG_F32, 2, 1024);
    size_t shapes[4][2] = {{1, 1}, {1, 16}, {8, 32}, {4, 128}};
    for (int s = 0; s < 4; s++)
        bench_layer(m, shapes[s][0], shapes[s][1], reps);
    model_free(&m[0]);
    model_free(&m[1]);
    return 0;
}
