/* test_threads: the wait policy stamp asks for and the thread count
 * STAMP_THREADS=auto picks (base/threads). The execution itself is
 * tested by tests/cli/t06-threads.sh. */
#include "base/threads.h"
#include "../harness.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

TEST(the_users_waiting_wins)
{
    CHECK(same(threads_wait_policy_to_set(NULL, NULL), "PASSIVE"));
    CHECK(same(threads_wait_policy_to_set("", ""), "PASSIVE"));
    CHECK(same(threads_wait_policy_to_set("ACTIVE", NULL), NULL));
    CHECK(same(threads_wait_policy_to_set(NULL, "1000"), NULL));
}

TEST(auto_takes_the_cores_others_leave)
{
    CHECK(threads_auto_count(2, 0) == 2);
    CHECK(threads_auto_count(2, 1) == 1);
    CHECK(threads_auto_count(2, 9) == 1);
    CHECK(threads_auto_count(32, 3) == 29);
    CHECK(threads_auto_count(32, -1) == 32);
    CHECK(threads_auto_count(0, 0) == 1);
}

TEST(stamp_threads_sets_the_count_unless_the_user_did)
{
    int before = omp_get_max_threads();
    unsetenv("OMP_NUM_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    setenv("STAMP_THREADS", "3", 1);
    CHECK(threads_set_count() == 3);
    CHECK(omp_get_max_threads() == 3);
    CHECK(same(threads_count_source(), "STAMP_THREADS=3"));
    setenv("STAMP_THREADS", "auto", 1);
    int n = threads_set_count();
    CHECK(n >= 1 && n <= omp_get_num_procs());
    CHECK(omp_get_max_threads() == n);
    CHECK(!strncmp(threads_count_source(), "STAMP_THREADS=auto: ", 20));
    setenv("STAMP_THREADS", "lots", 1);
    CHECK(threads_set_count() == 0); /* a note on stderr */
    setenv("STAMP_THREADS", "2", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    CHECK(threads_set_count() == 0);
    unsetenv("OMP_NUM_THREADS");
    unsetenv("STAMP_THREADS");
    omp_set_num_threads(before);
}

int main(void)
{
    RUN(the_users_waiting_wins);
    RUN(auto_takes_the_cores_others_leave);
    RUN(stamp_threads_sets_the_count_unless_the_user_did);
    return harness_summary();
}
