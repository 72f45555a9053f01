/* bench_wdiff: measures the weight-diff encodings of wdiff.h on realistic
 * changes, to choose the default: a GPT-2-shaped mlp.c_proj weight
 * (d_ff x d_model, N(0, 0.02/sqrt(2L)) or a real tensor from a
 * safetensors file) plus a low-rank update of a given relative size, as
 * MEMIT makes. For every transform x layout x zstd level: compressed
 * size as a share of the raw tensor, encode and decode time, and the
 * same for wdiff_encode_matrix (the low-rank encoding when it pays). Also
 * counts how many weights plain float subtraction fails to restore.
 *
 *   bench_wdiff [--rows R] [--cols C] [--rank K] [--rel X,...]
 *               [--model FILE.safetensors --tensor NAME] [--seed N]
 *
 * Prints one line per (change, method). */
#include "base/blas_cpu.h"
#include "base/errors.h"
#include "model/safetensors.h"
#include "base/splitmix.h"
#include "repo/wdiff.h"
#include "base/clock.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng_state;

static double rng_normal(void) { return splitmix_normal(&rng_state); }

/* The command line. */
typedef struct {
    size_t rows, cols, rank;
    double rels[8];      /* (n_rel) sizes of the change, ||dW|| / ||W|| */
    size_t n_rel;
    const char *model, *tensor;
    uint64_t seed;
} bench_args;

/* The tensor and the buffers every change is measured with. */
typedef struct {
    size_t rows, cols, rank, n; /* n = rows * cols */
    float *w;            /* (rows, cols) the weight */
    float *w2;           /* (rows, cols) the weight after the change */
    float *back;         /* (rows, cols) scratch: the change, the restored w */
    double *u, *v;       /* (rows, rank), (cols, rank) the update's factors */
    double wn;           /* ||w|| */
} bench;

/* -1 to go on, else main's exit status. */
static int parse_args(int argc, char **argv, bench_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "bench_wdiff: %s needs a value\n", o); return 2; }
        i++;
        if (!strcmp(o, "--rows")) a->rows = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--cols")) a->cols = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--rank")) a->rank = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--seed")) a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--tensor")) a->tensor = v;
        else if (!strcmp(o, "--rel")) {
            a->n_rel = 0;
            for (char *p = (char *)v; *p && a->n_rel < 8;) {
                a->rels[a->n_rel++] = strtod(p, &p);
                if (*p == ',') p++;
            }
        } else { fprintf(stderr, "bench_wdiff: unknown option %s\n", o); return 2; }
    }
    return -1;
}

/* b->w: the 2-d tensor `tensor` (or transformer.`tensor`) of the
 * safetensors file `model`, its shape b's. 1 when there is none. */
static int load_weight(bench *b, const char *model, const char *tensor)
{
    st_file *f = NULL;
    int rc = safetensors_open(&f, model);
    if (rc) { fprintf(stderr, "bench_wdiff: %s\n", err_message(rc)); return 1; }
    const st_tensor *t = safetensors_find(f, tensor);
    if (!t) {
        char buf[256];
        snprintf(buf, sizeof buf, "transformer.%s", tensor);
        t = safetensors_find(f, buf);
    }
    if (!t || t->ndim != 2) {
        fprintf(stderr, "bench_wdiff: no 2-d tensor '%s' in %s\n", tensor, model);
        return 1;
    }
    b->rows = t->shape[0];
    b->cols = t->shape[1];
    b->w = malloc(b->rows * b->cols * sizeof *b->w);
    safetensors_to_f32(t, b->w);
    safetensors_close(f);
    return 0;
}

/* b->w2: b->w plus a random rank-b->rank update of relative size rel;
 * prints how many weights plain float subtraction fails to restore. */
static void make_change(bench *b, double rel)
{
    size_t rows = b->rows, cols = b->cols, rank = b->rank, n = b->n;
    for (size_t i = 0; i < rows * rank; i++) b->u[i] = rng_normal();
    for (size_t i = 0; i < cols * rank; i++) b->v[i] = rng_normal();
    double dn = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double d = 0;
            for (size_t k = 0; k < rank; k++) d += b->u[i * rank + k] * b->v[j * rank + k];
            b->back[i * cols + j] = (float)d;
            dn += d * d;
        }
    double scale = rel * b->wn / sqrt(dn);
    size_t not_restored = 0;
    for (size_t i = 0; i < n; i++) {
        float d = (float)(b->back[i] * scale);
        b->w2[i] = b->w[i] + d;
        volatile float sub = b->w2[i] - d;
        not_restored += memcmp((const void *)&sub, &b->w[i], 4) != 0;
    }
    printf("rel %.0e: fl(fl(w+d)-d) != w for %zu of %zu weights (%.2f%%)\n",
           rel, not_restored, n, 100.0 * not_restored / n);
}

/* Every method of the table on the change: size, encode and decode
 * time; 1 when a round trip fails. */
static int bench_methods(bench *b, double rel)
{
    static const wdiff_method methods[] = {
        {WDIFF_XOR, WDIFF_PLAIN, 3},      {WDIFF_XOR, WDIFF_BYTEPLANES, 3},
        {WDIFF_XOR, WDIFF_BITPLANES, 3},  {WDIFF_SUB, WDIFF_PLAIN, 3},
        {WDIFF_SUB, WDIFF_BYTEPLANES, 1}, {WDIFF_SUB, WDIFF_BYTEPLANES, 3},
        {WDIFF_SUB, WDIFF_BYTEPLANES, 9}, {WDIFF_SUB, WDIFF_BYTEPLANES, 19},
        {WDIFF_SUB, WDIFF_BITPLANES, 3},  {WDIFF_XOR, WDIFF_BYTEPLANES, 19},
    };
    static const char *tname[] = {"", "xor", "sub"};
    static const char *lname[] = {"plain", "byteplanes", "bitplanes"};
    size_t n_methods = sizeof methods / sizeof *methods, n = b->n;
    for (size_t m = 0; m < n_methods; m++) {
        void *blob = NULL;
        size_t len = 0;
        double t0 = clock_seconds();
        int rc = wdiff_encode_method(b->w, b->w2, n, &methods[m], &blob, &len);
        double t1 = clock_seconds();
        if (!rc) rc = wdiff_revert(blob, len, b->w2, b->back, n);
        double t2 = clock_seconds();
        if (rc || memcmp(b->back, b->w, 4 * n)) {
            fprintf(stderr, "bench_wdiff: round trip failed: %s\n", err_message(rc));
            return 1;
        }
        printf("%-8.0e %-4s %-10s %5d %8.2f%% %9.1f %9.1f\n", rel,
               tname[methods[m].transform], lname[methods[m].layout],
               methods[m].level, 100.0 * len / (4.0 * n), 1e3 * (t1 - t0),
               1e3 * (t2 - t1));
        fflush(stdout);
        free(blob);
    }
    return 0;
}

/* What commits use: wdiff_encode_matrix (low-rank when it pays); 1 when
 * its round trip fails. */
static int bench_matrix(bench *b, double rel)
{
    void *blob = NULL;
    size_t len = 0, n = b->n;
    wdiff_info info;
    double t0 = clock_seconds();
    int rc = wdiff_encode_matrix(b->w, b->w2, b->rows, b->cols, &blob, &len);
    double t1 = clock_seconds();
    if (!rc) rc = wdiff_revert(blob, len, b->w2, b->back, n);
    double t2 = clock_seconds();
    if (rc || memcmp(b->back, b->w, 4 * n) || wdiff_info_get(blob, len, &info)) {
        fprintf(stderr, "bench_wdiff: matrix round trip failed: %s\n",
                err_message(rc));
        return 1;
    }
    printf("%-8.0e %-4s %-10s %5d %8.2f%% %9.1f %9.1f  (encode_matrix)\n",
           rel, info.transform == WDIFF_LOWRANK ? "lowr" : "sub",
           "byteplanes", 3, 100.0 * len / (4.0 * n), 1e3 * (t1 - t0),
           1e3 * (t2 - t1));
    fflush(stdout);
    free(blob);
    return 0;
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    bench_args a = {.rows = 3072, .cols = 768, .rank = 20,
                    .rels = {1e-3, 1e-2, 1e-1}, .n_rel = 3,
                    .tensor = "h.0.mlp.c_proj.weight", .seed = 1};
    int status = parse_args(argc, argv, &a);
    if (status >= 0) return status;
    rng_state = a.seed;
    bench b = {.rows = a.rows, .cols = a.cols, .rank = a.rank};
    if (a.model) {
        if (load_weight(&b, a.model, a.tensor)) return 1;
    } else {
        b.w = malloc(b.rows * b.cols * sizeof *b.w);
        double sd = 0.02 / sqrt(2 * 12);
        for (size_t i = 0; i < b.rows * b.cols; i++) b.w[i] = (float)(sd * rng_normal());
    }
    size_t n = b.n = b.rows * b.cols;
    b.w2 = malloc(n * sizeof *b.w2);
    b.back = malloc(n * sizeof *b.back);
    b.u = malloc(b.rows * b.rank * sizeof *b.u);
    b.v = malloc(b.cols * b.rank * sizeof *b.v);
    for (size_t i = 0; i < n; i++) b.wn += (double)b.w[i] * b.w[i];
    b.wn = sqrt(b.wn);

    printf("tensor %zu x %zu (%s), update rank %zu, raw %zu bytes\n", b.rows,
           b.cols, a.model ? a.tensor : "random N(0, 0.02/sqrt(24))", b.rank,
           4 * n);
    printf("%-8s %-4s %-10s %5s %9s %9s %9s\n", "rel", "xf", "layout", "level",
           "ratio%", "enc_ms", "dec_ms");
    for (size_t r = 0; r < a.n_rel; r++) {
        make_change(&b, a.rels[r]);
        if (bench_methods(&b, a.rels[r]) || bench_matrix(&b, a.rels[r]))
            return 1;
    }
    free(b.w);
    free(b.w2);
    free(b.back);
    free(b.u);
    free(b.v);
    return 0;
}
