/* blas_cpu: replaces OpenBLAS's Prescott fallback on CPUs it does not
 * know by the kernels they can run (see blas_cpu.h). */
#include "base/blas_cpu.h"
#include "base/cpu_features.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char *openblas_get_corename(void);

const char *blas_cpu_core_to_force(const char *chosen, bool avx512,
                                   bool avx2_fma)
{
    if (!chosen || strcasecmp(chosen, "prescott")) return NULL;
    if (avx512) return "SkylakeX";
    if (avx2_fma) return "Haswell";
    return NULL;
}

const char *blas_cpu_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

const char *blas_cpu_set_best_kernels(void)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* chosen by the user, or
                                                     by our first execution */
    const char *core =
        blas_cpu_core_to_force(blas_cpu_core(), cpu_has_avx512(),
                               cpu_has_avx2_fma());
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1)) return NULL;
    return core;
}

void blas_cpu_use_best_kernels(char **argv)
{
    const char *core = blas_cpu_set_best_kernels();
    if (!core) return;
    execv("/proc/self/exe", argv);
    fprintf(stderr,
            "%s: note: OpenBLAS runs its generic kernels on this CPU and "
            "could not be restarted with OPENBLAS_CORETYPE=%s (%m); set "
            "it yourself for about 4 times the speed\n",
            argv[0], core);
}
