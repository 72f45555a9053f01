/* threads: stamp's wait policy for libgomp's threads, set before libgomp
 * reads it by executing the program again, and the thread count
 * STAMP_THREADS asks for (see threads.h). */
#include "base/threads.h"
#include "base/blas_cpu.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void openblas_set_num_threads(int);

/* What stamp asks for. Measured on a 2-core machine shared with other
 * jobs (bench/threads_busy.sh on world-tiny, 2026-12-07): with two
 * CPU-bound processes beside it, 2 threads took 1.2 times as long as 1
 * on a commit, 1.3 on stats (libgomp's default: 3.7 and 5.1 times); a
 * bounded spin, GOMP_SPINCOUNT=10000, took 2.1 on stats. The z phase,
 * the bulk of a large commit, is one parallel region a round, so
 * sleeping between regions costs its speed-up on an idle machine
 * nothing. */
static const char stamp_policy[] = "PASSIVE";

static const char *set_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *threads_wait_policy_to_set(const char *omp_wait_policy,
                                       const char *gomp_spincount)
{
    if ((omp_wait_policy && *omp_wait_policy) ||
        (gomp_spincount && *gomp_spincount))
        return NULL;
    return stamp_policy;
}

bool threads_set_wait_policy(void)
{
    const char *policy = threads_wait_policy_to_set(
        set_value("OMP_WAIT_POLICY"), set_value("GOMP_SPINCOUNT"));
    return policy && !setenv("OMP_WAIT_POLICY", policy, 1);
}

int threads_auto_count(int cores, int others_running)
{
    if (cores < 1) cores = 1;
    if (others_running < 0) others_running = 0;
    int n = cores - others_running;
    return n < 1 ? 1 : n;
}

/* /proc/stat's procs_running: runnable threads, this one included; -1
 * when it cannot be read */
static int procs_running(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "procs_running %d", &n) == 1) break;
    fclose(f);
    return n;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* what threads_set_count chose, for threads_count_source */
static char g_count_source[160];

int threads_set_count(void)
{
    const char *v = set_value("STAMP_THREADS");
    if (!v || set_value("OMP_NUM_THREADS") || set_value("OPENBLAS_NUM_THREADS"))
        return 0;
    int n = 0;
    if (!strcmp(v, "auto")) {
        int s[5], k = 0;
        for (int i = 0; i < 5; i++) {
            int r = procs_running();
            if (r >= 1) s[k++] = r;
            if (i < 4) nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        int cores = omp_get_num_procs(), others = 0;
        if (k) {
            qsort(s, (size_t)k, sizeof *s, cmp_int);
            others = s[k / 2] - 1;
        }
        n = threads_auto_count(cores, others);
        snprintf(g_count_source, sizeof g_count_source,
                 "STAMP_THREADS=auto: %d (%d other thread%s running on %d "
                 "core%s)", n, others, others == 1 ? "" : "s", cores,
                 cores == 1 ? "" : "s");
    } else {
        char *end;
        errno = 0;
        long l = strtol(v, &end, 10);
        if (errno || *end || end == v || l < 1 || l > 4096) {
            fprintf(stderr, "stamp: note: STAMP_THREADS='%.40s' is neither "
                    "auto nor a count 1-4096; ignored\n", v);
            return 0;
        }
        n = (int)l;
        snprintf(g_count_source, sizeof g_count_source, "STAMP_THREADS=%d", n);
    }
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

const char *threads_count_source(void)
{
    static char buf[160];
    if (g_count_source[0]) return g_count_source;
    const char *omp = set_value("OMP_NUM_THREADS"),
               *blas = set_value("OPENBLAS_NUM_THREADS");
    if (omp || blas)
        snprintf(buf, sizeof buf, "%s%.40s", omp ? "OMP_NUM_THREADS=" :
                 "OPENBLAS_NUM_THREADS=", omp ? omp : blas);
    else
        snprintf(buf, sizeof buf, "all cores (%d)", omp_get_num_procs());
    return buf;
}

void threads_init(char **argv)
{
    bool wait = threads_set_wait_policy();
    const char *core = blas_cpu_set_best_kernels();
    if (wait || core) {
        execv("/proc/self/exe", argv);
        const char *why = strerror(errno);
        /* still the first execution: libgomp and OpenBLAS run as loaded,
         * so the environment should say so to --version and to children */
        if (wait) {
            unsetenv("OMP_WAIT_POLICY");
            fprintf(stderr,
                    "%s: note: could not restart with OMP_WAIT_POLICY=%s "
                    "(%s); set it yourself if other processes share the "
                    "cores\n", argv[0], stamp_policy, why);
        }
        if (core) {
            unsetenv("OPENBLAS_CORETYPE");
            fprintf(stderr,
                    "%s: note: OpenBLAS runs its generic kernels on this CPU "
                    "and could not be restarted with OPENBLAS_CORETYPE=%s "
                    "(%s); set it yourself for about 4 times the speed\n",
                    argv[0], core, why);
        }
    }
    /* the execution that runs: the other work counted as it starts */
    threads_set_count();
}

const char *threads_wait_policy(void)
{
    static char buf[160];
    const char *policy = set_value("OMP_WAIT_POLICY"),
               *spin = set_value("GOMP_SPINCOUNT");
    if (!policy && !spin) return "libgomp default";
    snprintf(buf, sizeof buf, "%s%.60s%s%s%.60s",
             policy ? "OMP_WAIT_POLICY=" : "", policy ? policy : "",
             policy && spin ? " " : "", spin ? "GOMP_SPINCOUNT=" : "",
             spin ? spin : "");
    return buf;
}
