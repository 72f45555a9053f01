/* test_blas_cpu: which OpenBLAS core type replaces its fallback. */
#include "base/blas_cpu.h"
#include "../harness.h"

#include <string.h>

static int same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

TEST(only_the_prescott_fallback_is_replaced)
{
    CHECK(same(blas_cpu_core_to_force("Prescott", true, true), "SkylakeX"));
    CHECK(same(blas_cpu_core_to_force("PRESCOTT", false, true), "Haswell"));
    CHECK(same(blas_cpu_core_to_force("Prescott", false, false), NULL));
    CHECK(same(blas_cpu_core_to_force("Cooperlake", true, true), NULL));
    CHECK(same(blas_cpu_core_to_force("Zen", false, true), NULL));
    CHECK(same(blas_cpu_core_to_force("Haswell", true, true), NULL));
    CHECK(same(blas_cpu_core_to_force(NULL, true, true), NULL));
}

TEST(the_core_in_use_has_a_name)
{
    const char *core = blas_cpu_core();
    CHECK(core && *core);
}

int main(void)
{
    RUN(only_the_prescott_fallback_is_replaced);
    RUN(the_core_in_use_has_a_name);
    return harness_summary();
}
