/* blas_cpu: makes OpenBLAS run the kernels this CPU has. Debian 12's
 * OpenBLAS (0.3.21) does not know CPUs newer than itself (Intel family 6
 * model 207, Emerald Rapids, on some machines of ours) and falls back to
 * its generic Prescott (SSE3) kernels: sgemm at a quarter of the speed.
 * It picks its kernels once, when it is loaded, from OPENBLAS_CORETYPE
 * if that is set; so a program that finds the fallback on a CPU with
 * AVX-512 or AVX2 sets the variable and executes itself again. */
#ifndef STAMP_BLAS_CPU_H
#define STAMP_BLAS_CPU_H

#include <stdbool.h>

/* The OpenBLAS core type to ask for, or NULL to keep what it chose:
 * `chosen` is the core it runs (openblas_get_corename), `avx512` whether
 * the CPU and the OS support AVX-512 F, CD, BW, DQ and VL, `avx2_fma`
 * whether they support AVX2 and FMA. Only the Prescott fallback is
 * replaced: "SkylakeX" with AVX-512, else "Haswell" with AVX2 and FMA. */
const char *blas_cpu_core_to_force(const char *chosen, bool avx512,
                                   bool avx2_fma);

/* When OpenBLAS runs its Prescott fallback on a CPU that has better
 * kernels and OPENBLAS_CORETYPE is not set, sets it in this process's
 * environment and returns the core type set; else returns NULL. OpenBLAS
 * is already loaded: only a new execution runs the kernels set. */
const char *blas_cpu_set_best_kernels(void);

/* Call first in main (the tools; stamp and stamp-world call threads_init,
 * which does this too). When blas_cpu_set_best_kernels set a core type,
 * executes the program again (/proc/self/exe, the same argv and
 * environment otherwise). Returns when there was nothing to do or the
 * new execution failed (a note on stderr; the program goes on, slower). */
void blas_cpu_use_best_kernels(char **argv);

/* The OpenBLAS core type in use ("SkylakeX", "Prescott", ...). */
const char *blas_cpu_core(void);

#endif
