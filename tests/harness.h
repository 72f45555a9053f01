/* harness: the tiny unit-test harness. A test file defines test functions
 * with TEST(name), lists them in main through RUN(name), and ends main
 * with `return harness_summary();`, which prints "N passed, N failed".
 * CHECK* macros record a failure with file and line and go on; a test
 * passes when none of its checks failed. tests/run.sh adds the summary
 * lines of every test program together. */
#ifndef STAMP_HARNESS_H
#define STAMP_HARNESS_H

#include <math.h>
#include <stdio.h>

static int harness_passed, harness_failed, harness_current_failed;

#define TEST(name) static void name(void)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                       \
            harness_current_failed = 1;                                     \
        }                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__,        \
                    __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            harness_current_failed = 1;                                     \
        }                                                                   \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                               \
    do {                                                                    \
        double ha_ = (double)(a), hb_ = (double)(b);                        \
        if (!(fabs(ha_ - hb_) <= (tol))) {                                  \
            fprintf(stderr, "  %s:%d: %s = %.9g, %s = %.9g, tol %g\n",      \
                    __FILE__, __LINE__, #a, ha_, #b, hb_, (double)(tol));   \
            harness_current_failed = 1;                                     \
        }                                                                   \
    } while (0)

#define RUN(name)                                                           \
    do {                                                                    \
        harness_current_failed = 0;                                         \
        name();                                                             \
        if (harness_current_failed) {                                       \
            harness_failed++;                                               \
            fprintf(stderr, "FAIL %s\n", #name);                            \
        } else {                                                            \
            harness_passed++;                                               \
            printf("ok   %s\n", #name);                                     \
        }                                                                   \
    } while (0)

static inline int harness_summary(void)
{
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

#endif
