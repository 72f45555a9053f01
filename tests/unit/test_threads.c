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

TEST(auto_takes_the_share_other_sessions_leave)
{
    int one[] = {1}, two[] = {1, 1}, busy[] = {2, 1, 1, 3, 1}, wide[] = {8};
    /* nothing else running, or no autogroup: every core */
    CHECK(threads_auto_count(2, true, 0, NULL, 0) == 2);
    CHECK(threads_auto_count(2, false, 0, busy, 5) == 2);
    /* one other session with one thread on 2 cores: a core each */
    CHECK(threads_auto_count(2, true, 0, one, 1) == 1);
    CHECK(threads_auto_count(2, true, 0, two, 2) == 1);
    CHECK(threads_auto_count(2, true, 0, busy, 5) == 1);
    /* 32 cores, one other session of one thread: 31 left to us */
    CHECK(threads_auto_count(32, true, 0, one, 1) == 31);
    /* 32 cores, sessions wanting 1, 1, 1, 2, 3 and 8 threads: the small
     * ones take what they want, 24 cores are left for two sessions (the
     * one of 8 and ours): 8 and 16 */
    int mixed[] = {1, 1, 1, 2, 3, 8};
    CHECK(threads_auto_count(32, true, 0, mixed, 6) == 16);
    CHECK(threads_auto_count(4, true, 0, wide, 1) == 2);
    /* threads of our own session compete thread against thread */
    CHECK(threads_auto_count(2, true, 2, busy, 5) == 2);
    CHECK(threads_auto_count(0, true, 0, NULL, 0) == 1);
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
    RUN(auto_takes_the_share_other_sessions_leave);
    RUN(stamp_threads_sets_the_count_unless_the_user_did);
    return harness_summary();
}
