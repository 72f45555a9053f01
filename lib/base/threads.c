/* threads: stamp's wait policy for libgomp's threads, set before libgomp
 * reads it by executing the program again (see threads.h). */
#include "base/threads.h"
#include "base/blas_cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

void threads_init(char **argv)
{
    bool wait = threads_set_wait_policy();
    const char *core = blas_cpu_set_best_kernels();
    if (!wait && !core) return;
    execv("/proc/self/exe", argv);
    const char *why = strerror(errno);
    /* still the first execution: libgomp and OpenBLAS run as loaded, so
     * the environment should say so to --version and to children */
    if (wait) {
        unsetenv("OMP_WAIT_POLICY");
        fprintf(stderr,
                "%s: note: could not restart with OMP_WAIT_POLICY=%s (%s); "
                "set it yourself if other processes share the cores\n",
                argv[0], stamp_policy, why);
    }
    if (core) {
        unsetenv("OPENBLAS_CORETYPE");
        fprintf(stderr,
                "%s: note: OpenBLAS runs its generic kernels on this CPU and "
                "could not be restarted with OPENBLAS_CORETYPE=%s (%s); set "
                "it yourself for about 4 times the speed\n",
                argv[0], core, why);
    }
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
