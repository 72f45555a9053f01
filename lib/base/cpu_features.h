/* cpu_features: the vector instruction sets this CPU and its OS support,
 * as the multi-ISA kernels (linalg) and the choice of OpenBLAS kernels
 * (blas_cpu) ask about them. */
#ifndef STAMP_CPU_FEATURES_H
#define STAMP_CPU_FEATURES_H

#include <stdbool.h>

/* AVX2 and FMA (Haswell's set). */
bool cpu_has_avx2_fma(void);

/* AVX-512 F, CD, BW, DQ and VL (Skylake-X's set, which OpenBLAS's
 * SkylakeX kernels and our AVX-512 loops use). */
bool cpu_has_avx512(void);

#endif
