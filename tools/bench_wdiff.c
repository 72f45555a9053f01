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

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    size_t rows = 3072, cols = 768, rank = 20;
    double rels[8] = {1e-3, 1e-2, 1e-1};
    size_t n_rel = 3;
    const char *model = NULL, *tensor = "h.0.mlp.c_proj.weight";
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "bench_wdiff: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--rows")) rows = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--cols")) cols = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--rank")) rank = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--tensor")) tensor = v;
        else if (!strcmp(a, "--rel")) {
            n_rel = 0;
            for (char *p = (char *)v; *p && n_rel < 8;) {
                rels[n_rel++] = strtod(p, &p);
                if (*p == ',') p++;
            }
        } else { fprintf(stderr, "bench_wdiff: unknown option %s\n", a); return 2; }
    }
    rng_state = seed;
    float *w = NULL;
    if (model) {
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
        rows = t->shape[0];
        cols = t->shape[1];
        w = malloc(rows * cols * sizeof *w);
        safetensors_to_f32(t, w);
        safetensors_close(f);
    } else {
        w = malloc(rows * cols * sizeof *w);
        double sd = 0.02 / sqrt(2 * 12);
        for (size_t i = 0; i < rows * cols; i++) w[i] = (float)(sd * rng_normal());
    }
    size_t n = rows * cols;
    float *w2 = malloc(n * sizeof *w2), *back = malloc(n * sizeof *back);
    double *u = malloc(rows * rank * sizeof *u), *v = malloc(cols * rank * sizeof *v);
    double wn = 0;
    for (size_t i = 0; i < n; i++) wn += (double)w[i] * w[i];
    wn = sqrt(wn);

    static const wdiff_method methods[] = {
        {WDIFF_XOR, WDIFF_PLAIN, 3},      {WDIFF_XOR, WDIFF_BYTEPLANES, 3},
        {WDIFF_XOR, WDIFF_BITPLANES, 3},  {WDIFF_SUB, WDIFF_PLAIN, 3},
        {WDIFF_SUB, WDIFF_BYTEPLANES, 1}, {WDIFF_SUB, WDIFF_BYTEPLANES, 3},
        {WDIFF_SUB, WDIFF_BYTEPLANES, 9}, {WDIFF_SUB, WDIFF_BYTEPLANES, 19},
        {WDIFF_SUB, WDIFF_BITPLANES, 3},  {WDIFF_XOR, WDIFF_BYTEPLANES, 19},
    };
    static const char *tname[] = {"", "xor", "sub"};
    static const char *lname[] = {"plain", "byteplanes", "bitplanes"};
    size_t n_methods = sizeof methods / sizeof *methods;
    printf("tensor %zu x %zu (%s), update rank %zu, raw %zu bytes\n", rows,
           cols, model ? tensor : "random N(0, 0.02/sqrt(24))", rank, 4 * n);
    printf("%-8s %-4s %-10s %5s %9s %9s %9s\n", "rel", "xf", "layout", "level",
           "ratio%", "enc_ms", "dec_ms");
    for (size_t r = 0; r < n_rel; r++) {
        for (size_t i = 0; i < rows * rank; i++) u[i] = rng_normal();
        for (size_t i = 0; i < cols * rank; i++) v[i] = rng_normal();
        double dn = 0;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++) {
                double d = 0;
                for (size_t k = 0; k < rank; k++) d += u[i * rank + k] * v[j * rank + k];
                back[i * cols + j] = (float)d;
                dn += d * d;
            }
        double scale = rels[r] * wn / sqrt(dn);
        size_t not_restored = 0;
        for (size_t i = 0; i < n; i++) {
            float d = (float)(back[i] * scale);
            w2[i] = w[i] + d;
            volatile float sub = w2[i] - d;
            not_restored += memcmp((const void *)&sub, &w[i], 4) != 0;
        }
        printf("rel %.0e: fl(fl(w+d)-d) != w for %zu of %zu weights (%.2f%%)\n",
               rels[r], not_restored, n, 100.0 * not_restored / n);
        for (size_t m = 0; m < n_methods; m++) {
            void *blob = NULL;
            size_t len = 0;
            double t0 = clock_seconds();
            int rc = wdiff_encode_method(w, w2, n, &methods[m], &blob, &len);
            double t1 = clock_seconds();
            if (!rc) rc = wdiff_revert(blob, len, w2, back, n);
            double t2 = clock_seconds();
            if (rc || memcmp(back, w, 4 * n)) {
                fprintf(stderr, "bench_wdiff: round trip failed: %s\n", err_message(rc));
                return 1;
            }
            printf("%-8.0e %-4s %-10s %5d %8.2f%% %9.1f %9.1f\n", rels[r],
                   tname[methods[m].transform], lname[methods[m].layout],
                   methods[m].level, 100.0 * len / (4.0 * n), 1e3 * (t1 - t0),
                   1e3 * (t2 - t1));
            fflush(stdout);
            free(blob);
        }
        /* what commits use: wdiff_encode_matrix (low-rank when it pays) */
        void *blob = NULL;
        size_t len = 0;
        wdiff_info info;
        double t0 = clock_seconds();
        int rc = wdiff_encode_matrix(w, w2, rows, cols, &blob, &len);
        double t1 = clock_seconds();
        if (!rc) rc = wdiff_revert(blob, len, w2, back, n);
        double t2 = clock_seconds();
        if (rc || memcmp(back, w, 4 * n) || wdiff_info_get(blob, len, &info)) {
            fprintf(stderr, "bench_wdiff: matrix round trip failed: %s\n",
                    err_message(rc));
            return 1;
        }
        printf("%-8.0e %-4s %-10s %5d %8.2f%% %9.1f %9.1f  (encode_matrix)\n",
               rels[r], info.transform == WDIFF_LOWRANK ? "lowr" : "sub",
               "byteplanes", 3, 100.0 * len / (4.0 * n), 1e3 * (t1 - t0),
               1e3 * (t2 - t1));
        fflush(stdout);
        free(blob);
    }
    free(w);
    free(w2);
    free(back);
    free(u);
    free(v);
    return 0;
}
