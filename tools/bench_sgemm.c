/* bench_sgemm: this machine's sgemm peak, the yardstick the benchmarks
 * quote achieved GFLOP/s against. Runs an N x N x N sgemm (default 2048),
 * or M x N x K (C(M,N) = A(M,K) B(K,N): a model's shape, e.g. a batch's
 * tokens x d_ff x d_model), a few times with the thread count OpenBLAS
 * was given and prints the median GFLOP/s. `bench_sgemm --core` prints the OpenBLAS core type
 * whose kernels run (blas_cpu.h). */
#include "base/blas_cpu.h"
#include "base/clock.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    blas_cpu_use_best_kernels(argv);
    if (argc == 2 && !strcmp(argv[1], "--core")) {
        printf("%s\n", blas_cpu_core());
        return 0;
    }
    int m = argc > 1 ? atoi(argv[1]) : 2048, reps = 5;
    int n = argc == 4 ? atoi(argv[2]) : m, k = argc == 4 ? atoi(argv[3]) : m;
    if (m <= 0 || n <= 0 || k <= 0 || (argc != 2 && argc != 4 && argc != 1)) {
        fprintf(stderr, "usage: bench_sgemm [N | M N K] | --core\n");
        return 2;
    }
    float *a = malloc((size_t)m * k * sizeof(float));
    float *b = malloc((size_t)k * n * sizeof(float));
    float *c = malloc((size_t)m * n * sizeof(float));
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    double gflops[5];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k,
                b, n, 0, c, n); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t = clock_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a,
                    k, b, n, 0, c, n);
        gflops[r] = 2.0 * m * n * (double)k / (clock_seconds() - t) / 1e9;
    }
    qsort(gflops, reps, sizeof gflops[0], cmp);
    printf("%.2f\n", gflops[reps / 2]);
    free(a);
    free(b);
    free(c);
    return 0;
}
