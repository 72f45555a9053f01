/* test_threads: the wait policy stamp asks for and the thread count the
 * automatic choice picks (base/threads): the count from the runnable
 * threads against its twin from sessions, the fast look at /proc against
 * the naive one, who wins. The execution itself is tested by
 * tests/cli/t06-threads.sh. */
#include "base/threads.h"
#include "../harness.h"

#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
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

TEST(the_count_from_runnable_threads_is_the_sessions_count_for_single_threads)
{
    int ones[64];
    for (int i = 0; i < 64; i++) ones[i] = 1;
    int cores[] = {1, 2, 3, 8, 32};
    for (int c = 0; c < 5; c++)
        for (int t = 0; t <= 40; t++) {
            CHECK_MSG(threads_auto_count_running(cores[c], true, 0, t, 5.0) ==
                      threads_auto_count(cores[c], true, 0, ones, t),
                      "%d cores, %d threads", cores[c], t);
            CHECK(threads_auto_count_running(cores[c], false, 0, t, 5.0) == cores[c]);
            CHECK(threads_auto_count_running(cores[c], true, 1, t, 5.0) == cores[c]);
            /* idle over the last minute: a blip, every core */
            CHECK(threads_auto_count_running(cores[c], true, 0, t, 0.9) == cores[c]);
        }
    /* a lower bound where one session runs more than its share */
    int wide[] = {20};
    CHECK(threads_auto_count(32, true, 0, wide, 1) == 16);
    CHECK(threads_auto_count_running(32, true, 0, 20, 5.0) == 12);
    CHECK(threads_auto_count_running(2, true, 0, 1, 1.0) == 1);
    CHECK(threads_auto_count_running(0, true, 0, 0, 5.0) == 1);
}

TEST(loadavg_text_gives_the_runnable_count_and_load)
{
    double l1 = -1;
    CHECK(threads_parse_loadavg("0.59 0.99 1.32 3/456 12345\n", &l1) == 3);
    CHECK(l1 == 0.59);
    CHECK(threads_parse_loadavg("12.00 8.5 7 11/140 15897", &l1) == 11);
    CHECK(l1 == 12.0);
    CHECK(threads_parse_loadavg("12.00 8.5 7 11/140 15897", NULL) == 11);
    CHECK(threads_parse_loadavg("0.59 0.99 1.32 3 12345", &l1) == -1);
    CHECK(threads_parse_loadavg("nan 0.99 1.32 3/4 12345", &l1) == -1);
    CHECK(threads_parse_loadavg("", &l1) == -1);
    CHECK(threads_parse_loadavg(NULL, &l1) == -1);
}

/* a child that spins, in this session or (own_session) one of its own */
static pid_t spinner(bool own_session)
{
    pid_t p = fork();
    if (p == 0) {
        if (own_session) setsid();
        for (volatile unsigned long i = 0;; i++) {}
    }
    usleep(50000); /* let it run */
    return p;
}

static void stop(pid_t p)
{
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

TEST(fast_and_naive_looks_see_a_busy_child)
{
    int per[64];
    threads_look fast, naive;
    pid_t p = spinner(false);
    /* a spinning thread is runnable, so both looks see it in this session */
    CHECK(threads_look_fast(&fast) == 0);
    CHECK(fast.same >= 1);
    threads_look_naive(&naive, per, 64);
    CHECK(naive.same >= 1);
    stop(p);
    /* in a session of its own it is another session's thread (the fast
     * look's counts are read at two instants: a few tries) */
    p = spinner(true);
    bool fast_saw = false;
    for (int i = 0; i < 20 && !fast_saw; i++)
        fast_saw = threads_look_fast(&fast) == 0 && fast.other >= 1;
    CHECK(fast_saw);
    CHECK(threads_look_naive(&naive, per, 64) >= 1 && naive.other >= 1);
    stop(p);
}

TEST(the_users_count_wins_over_the_automatic_one)
{
    int before = omp_get_max_threads();
    unsetenv("OMP_NUM_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    unsetenv("STAMP_TEST_AUTO_THREADS");
    setenv("STAMP_THREADS", "3", 1);
    CHECK(threads_set_count(true) == 3);
    CHECK(omp_get_max_threads() == 3);
    CHECK(!threads_count_is_automatic());
    CHECK(same(threads_count_source(), "STAMP_THREADS=3"));
    setenv("STAMP_THREADS", "auto", 1);
    int n = threads_set_count(false);
    CHECK(n >= 1 && n <= omp_get_num_procs());
    CHECK(omp_get_max_threads() == n);
    CHECK(!strncmp(threads_count_source(), "STAMP_THREADS=auto: ", 20));
    /* nothing set: stamp's default is automatic, stamp-world's is not */
    unsetenv("STAMP_THREADS");
    n = threads_set_count(true);
    CHECK(n >= 1 && n <= omp_get_num_procs());
    CHECK(threads_count_is_automatic());
    CHECK(!strncmp(threads_count_source(), "automatic: ", 11));
    CHECK(threads_set_count(false) == 0);
    CHECK(!strncmp(threads_count_source(), "all cores", 9));
    setenv("STAMP_THREADS", "lots", 1);
    CHECK(threads_set_count(false) == 0); /* a note on stderr */
    CHECK(threads_set_count(true) >= 1);  /* the note, then automatic */
    CHECK(!strncmp(threads_count_source(), "automatic: ", 11));
    setenv("STAMP_THREADS", "2", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    CHECK(threads_set_count(true) == 0);
    unsetenv("OMP_NUM_THREADS");
    unsetenv("STAMP_THREADS");
    omp_set_num_threads(before);
}

TEST(exact_solves_run_at_all_cores_or_the_users_count)
{
    int before = omp_get_max_threads(), cores = omp_get_num_procs();
    unsetenv("OMP_NUM_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    unsetenv("STAMP_THREADS");
    setenv("STAMP_TEST_AUTO_THREADS", "1", 1);
    CHECK(threads_set_count(true) == 1);
    CHECK(threads_count_is_automatic());
    int was = threads_exact_begin();
    CHECK(was == 1 && omp_get_max_threads() == cores);
    threads_exact_end(was);
    CHECK(omp_get_max_threads() == 1);
    /* --threads 1: the user's count, the solves too */
    threads_use(1);
    CHECK(!threads_count_is_automatic());
    was = threads_exact_begin();
    CHECK(was == 1 && omp_get_max_threads() == 1);
    threads_exact_end(was);
    unsetenv("STAMP_TEST_AUTO_THREADS");
    omp_set_num_threads(before);
}

int main(void)
{
    RUN(the_users_waiting_wins);
    RUN(auto_takes_the_share_other_sessions_leave);
    RUN(the_count_from_runnable_threads_is_the_sessions_count_for_single_threads);
    RUN(loadavg_text_gives_the_runnable_count_and_load);
    RUN(fast_and_naive_looks_see_a_busy_child);
    RUN(the_users_count_wins_over_the_automatic_one);
    RUN(exact_solves_run_at_all_cores_or_the_users_count);
    return harness_summary();
}
