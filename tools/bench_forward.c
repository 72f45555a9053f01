/* bench_forward: speed of gpt2_forward on a GPT-2-small-shaped random
 * model (L=12, C=768, NH=12, V=50257), next to this machine's sgemm peak
 * measured the same way (a large square sgemm), for 1 and 2 threads.
 * Prints one JSON line on stdout (progress on stderr).
 *
 *   build/tools/bench_forward [--batch B] [--seq T] [--reps N]
 *                             [--threads LIST] [--last-only]
 *
 * FLOPs counted: the matmuls (24 C^2 per token per layer), causal
 * attention ((T+1)/2 keys per query on average: 4 C (T+1)/2 per token per
 * layer) and the tied head (2 C V per logit row). Logits are computed at
 * every position unless --last-only (one row per sequence, the eval and
 * predict case). The sgemm and the forward pass alternate, best of
 * --reps each, so that on a shared machine both see the same load.
 * Not a test: run by hand (`nice`), numbers go in the report. */
#include "base/blas_cpu.h"
#include "model/gpt2.h"
#include "base/clock.h"

#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A square n x n x n sgemm: the yardstick. */
typedef struct {
    int n;
    float *a, *b, *c;
} peak_gemm;

static int peak_init(peak_gemm *p, int n)
{
    size_t nn = (size_t)n * n;
    p->n = n;
    p->a = malloc(nn * sizeof(float));
    p->b = malloc(nn * sizeof(float));
    p->c = calloc(nn, sizeof(float));
    if (!p->a || !p->b || !p->c) return -1;
    for (size_t i = 0; i < nn; i++) {
        p->a[i] = (float)(i % 7) * 0.1f;
        p->b[i] = (float)(i % 5) * 0.1f;
    }
    return 0;
}

/* Seconds for one run. */
static double peak_run(peak_gemm *p)
{
    double t = clock_seconds();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->n, p->n, p->n,
                1.0f, p->a, p->n, p->b, p->n, 0.0f, p->c, p->n);
    return clock_seconds() - t;
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    size_t B = 8, T = 128;
    int reps = 3, last_only = 0;
    const char *threads = "1,2";
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'}, {"seq", required_argument, 0, 't'},
        {"reps", required_argument, 0, 'r'}, {"threads", required_argument, 0, 'j'},
        {"last-only", no_argument, 0, 'l'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:t:r:j:lh", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': B = strtoul(optarg, NULL, 10); break;
        case 't': T = strtoul(optarg, NULL, 10); break;
        case 'r': reps = atoi(optarg); break;
        case 'j': threads = optarg; break;
        case 'l': last_only = 1; break;
        default:
            fprintf(stderr, "usage: bench_forward [--batch B] [--seq T] "
                    "[--reps N] [--threads 1,2] [--last-only]\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    if (!B || !T || T > 1024 || reps < 1) {
        fprintf(stderr, "bench_forward: bad sizes\n");
        return 2;
    }
    gpt2_config c = {.n_layer = 12, .n_head = 12, .n_embd = 768,
                     .n_positions = 1024, .vocab_size = 50257, .n_inner = 3072,
                     .layer_norm_epsilon = 1e-5f};
    gpt2_model m;
    if (gpt2_model_init(&m, &c)) {
        fprintf(stderr, "bench_forward: no memory for the model\n");
        return 1;
    }
    gpt2_model_init_random(&m, 1);
    size_t BT = B * T, n_logits = last_only ? B : BT;
    int *tokens = malloc(BT * sizeof *tokens);
    size_t *pos = malloc(n_logits * sizeof *pos);
    gpt2_acts *a = NULL;
    if (!tokens || !pos || gpt2_acts_new(&a, &c, B, T, n_logits)) {
        fprintf(stderr, "bench_forward: no memory for the activations\n");
        return 1;
    }
    for (size_t i = 0; i < BT; i++) tokens[i] = (int)((i * 2654435761u) % c.vocab_size);
    for (size_t i = 0; i < n_logits; i++) pos[i] = last_only ? i * T + T - 1 : i;
    peak_gemm pk;
    if (peak_init(&pk, 2048)) {
        fprintf(stderr, "bench_forward: no memory for the sgemm\n");
        return 1;
    }
    gpt2_batch batch = {.tokens = tokens, .B = B, .T = T, .logit_pos = pos,
                        .n_logits = n_logits};

    double C = (double)c.n_embd, L = (double)c.n_layer, V = (double)c.vocab_size;
    double flops = BT * L * (24.0 * C * C + 4.0 * C * (T + 1) / 2.0) +
                   n_logits * 2.0 * C * V;

    json_t *root = json_pack("{s:s, s:{s:i, s:i, s:i, s:i}, s:i, s:i, s:i, s:b, s:f}",
                             "bench", "forward", "model", "L", 12, "C", 768,
                             "NH", 12, "V", 50257, "B", (int)B, "T", (int)T,
                             "logit_rows", (int)n_logits, "last_only", last_only,
                             "gflop_per_forward", flops * 1e-9);
    json_t *results = json_array();
    char *list = strdup(threads);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int nt = atoi(tok);
        if (nt < 1) continue;
        omp_set_num_threads(nt);
        openblas_set_num_threads(nt);
        peak_run(&pk); /* warm-up: page faults, caches */
        gpt2_forward(&m, a, &batch);
        double best = 1e30, total = 0, best_pk = 1e30;
        for (int r = 0; r < reps; r++) {
            double tp = peak_run(&pk);
            if (tp < best_pk) best_pk = tp;
            double t = clock_seconds();
            gpt2_forward(&m, a, &batch);
            t = clock_seconds() - t;
            total += t;
            if (t < best) best = t;
        }
        double peak = 2.0 * pk.n * pk.n * (double)pk.n / best_pk * 1e-9;
        double gflops = flops / best * 1e-9;
        fprintf(stderr, "threads %d: sgemm peak %.1f GFLOP/s, forward %.3f s "
                "(best of %d, mean %.3f), %.0f tokens/s, %.1f GFLOP/s = %.0f%% "
                "of peak\n", nt, peak, best, reps, total / reps, BT / best,
                gflops, 100.0 * gflops / peak);
        json_array_append_new(results, json_pack(
            "{s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "threads", nt,
            "sgemm_n", pk.n,
            "sgemm_peak_gflops", peak, "forward_s", best,
            "forward_mean_s", total / reps, "tokens_per_s", BT / best,
            "gflops", gflops, "fraction_of_peak", gflops / peak));
    }
    free(list);
    json_object_set_new(root, "results", results);
    char *line = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(5));
    puts(line);
    free(line);
    json_decref(root);
    gpt2_acts_free(a);
    gpt2_model_free(&m);
    free(tokens);
    free(pos);
    free(pk.a);
    free(pk.b);
    free(pk.c);
    return 0;
}
