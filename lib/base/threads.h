/* threads: how stamp's worker threads wait for work. libgomp, and
 * OpenBLAS's OpenMP build, which runs in libgomp's threads, let a thread
 * that waits at the end of a parallel region spin for a while before it
 * sleeps (GOMP_SPINCOUNT, 300,000 turns, about 3 ms, unless
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT say otherwise). On a machine whose
 * cores are busy with other processes the spinning thread takes the core
 * the thread with the work needs: a commit with two threads took two to
 * four times as long as with one (bench/threads_busy.sh). Stamp's
 * threads sleep as soon as they wait (OMP_WAIT_POLICY=PASSIVE) unless
 * the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. libgomp reads them once,
 * when it is loaded, before main: so main sets the variable and executes
 * the program again.
 *
 * The thread count: --threads, OMP_NUM_THREADS or OPENBLAS_NUM_THREADS
 * when the user gave one, else STAMP_THREADS (a number, or "auto"),
 * else the program's default: for stamp the automatic count, the share
 * of the cores the other work running as the command starts leaves it
 * (threads_auto_count); for stamp-world all cores, because a world's
 * bytes depend on its thread count (world/train.h: the gradient buffers
 * of the workers are added in worker order) and should not depend on
 * the neighbours' load.
 * On a shared machine a second thread may not pay: with the kernel's
 * autogroup scheduling a session, not a thread, gets a fair share of the
 * cores, so other users' work leaves a command the same CPU however many
 * threads it runs, and a second thread adds only its waiting. On a
 * 2-core host at load average 8-17 from other sessions, 2 threads ran an
 * 8-layer Llama fixture's commit at 0.86 times the speed of 1 thread
 * (docs/performance.md, "How threads wait").
 *
 * What the automatic count must not change: a result. OpenMP loops
 * (key statistics in fixed tiles, the forward and backward kernels in
 * fixed tiles, one target vector per thread) give the same bits for any
 * count; OpenBLAS's own threading in the solve's float64 LAPACK calls
 * (dpotrf, dposv, dpotri: their blocking changes from 1 thread to
 * several, and with the count; and the weight diffs' QR and SVD) does
 * not. So those calls run between
 * threads_exact_begin and threads_exact_end, at the count the user gave
 * or else all cores, never at the automatic count. */
#ifndef STAMP_THREADS_H
#define STAMP_THREADS_H

#include <stdbool.h>

/* The OMP_WAIT_POLICY stamp asks for, given the values of the user's
 * OMP_WAIT_POLICY and GOMP_SPINCOUNT (NULL when unset): "PASSIVE" when
 * both are unset or empty, else NULL (the user's settings stand). */
const char *threads_wait_policy_to_set(const char *omp_wait_policy,
                                       const char *gomp_spincount);

/* Sets OMP_WAIT_POLICY in this process's environment as
 * threads_wait_policy_to_set says. Returns true when it set it: libgomp
 * is already loaded and sees it only in a new execution. */
bool threads_set_wait_policy(void);

/* Call first in main (stamp and stamp-world): sets the wait policy
 * (threads_set_wait_policy) and OpenBLAS's kernels for this CPU
 * (blas_cpu_set_best_kernels) and, when either changed the environment,
 * executes the program again (/proc/self/exe, the same argv, stdin and
 * environment otherwise) once: the second execution finds the variables
 * set; then the thread count (threads_set_count(auto_default)). Returns
 * when there was nothing to do, or when the new execution
 * failed (a note on stderr; the variables are taken back out, the
 * program goes on with libgomp's and OpenBLAS's defaults). */
void threads_init(char **argv, bool auto_default);

/* STAMP_THREADS=auto's count for `cores` cores. Without the kernel's
 * autogroup scheduling every runnable thread gets an even share, and so
 * does a thread of this session with it: each thread more takes more
 * CPU, so all cores. With autogroup each session gets an even share
 * (water filling: a session that runs fewer threads than its share
 * leaves the rest to the others), so against other sessions' work
 * (`other_sessions`: the runnable threads of each of `n_other`) a thread
 * beyond the share gains nothing: the share rounded, at least 1. Other
 * runnable threads of this session (`same_session` > 0) compete thread
 * against thread again: all cores. */
int threads_auto_count(int cores, bool autogroup, int same_session,
                       const int *other_sessions, int n_other);

/* threads_auto_count when only the number of other sessions' runnable
 * threads is known (`other_threads`), not how they split into sessions:
 * as if each were a session of one thread, the cores less them, at least
 * 1 (all cores without autogroup or beside threads of this session). A
 * lower bound of threads_auto_count, equal to it unless another session
 * runs more threads than its even share; on 2 cores always equal. With
 * a 1-minute load average `load1` below 1 the machine has been idle:
 * other threads running at this instant are a blip, and every core is
 * taken (the idle speed-up is what a second thread is for). */
int threads_auto_count_running(int cores, bool autogroup, int same_session,
                               int other_threads, double load1);

/* /proc/loadavg's text ("0.59 0.99 1.32 3/456 12345"): the runnable
 * count (3, this process included), and *load1 (0.59; when load1 is not
 * NULL); -1 when malformed. */
int threads_parse_loadavg(const char *text, double *load1);

/* One look at the other runnable threads (state R): `same` in this
 * process's session (this process left out), `other` in other sessions;
 * and the 1-minute load average; the naive look also counts them per
 * session into per[] (at most
 * max_sessions; the rest added to the last) and returns how many. */
typedef struct {
    int same, other;
    double load1; /* the 1-minute load average, as read */
} threads_look;

/* The fast look: /proc/loadavg's runnable count, and the threads of this
 * session found from the topmost ancestor of this process that is in it,
 * and from the processes of it init adopted, down through
 * /proc/PID/task/TID/children (only when something else runs; an
 * orphan a subreaper other than init adopted is missed). Returns 0, or
 * -1 when the kernel has no children files (the naive look is then the
 * way). */
int threads_look_fast(threads_look *l);

/* The naive twin: the stat of every thread of every process in /proc. */
int threads_look_naive(threads_look *l, int *per, int max_sessions);


/* Called by threads_init: unless the user set OMP_NUM_THREADS or
 * OPENBLAS_NUM_THREADS, sets this process's OpenMP and OpenBLAS thread
 * counts (omp_set_num_threads, openblas_set_num_threads; --threads still
 * overrides them later): $STAMP_THREADS when it is a number 1-4096, the
 * automatic count when it is "auto" or, with auto_default, unset or
 * empty. The automatic count takes five fast looks (threads_look_fast;
 * the naive look where the kernel has no children files) 0.5 ms apart
 * (waited on the CPU: a sleep would wait for it again on a busy machine)
 * and the median of threads_auto_count_running's answers; with autogroup
 * off it looks at nothing (all cores); the tests' STAMP_TEST_AUTO_THREADS=N
 * makes it N. Returns the count set, or 0
 * (nothing set; a malformed value gets a note on stderr). */
int threads_set_count(bool auto_default);

/* The count the user asked for: --threads N (the commands call this),
 * as omp_set_num_threads and openblas_set_num_threads; the float64
 * solves then run at it too (threads_exact_begin). */
void threads_use(int n);

/* True when the count in force is the automatic one. */
bool threads_count_is_automatic(void);

/* Around OpenBLAS calls whose bits depend on its thread count: sets the
 * count to all cores when the automatic count is in force (else leaves
 * the user's) and returns the count before, for threads_exact_end.
 * Inside a parallel region it changes nothing (OpenBLAS runs on one
 * thread there). Used by the solve (memit.c, commit.c) and the weight
 * diffs' factors and rank (wdiff.c). */
int threads_exact_begin(void);
void threads_exact_end(int before);

/* How the thread count was chosen, for `stamp --version`, the progress
 * output and the commit record: "automatic: 1 (3 runnable threads of
 * other sessions, 0 of this one; 2 cores; autogroup on)" (stamp's
 * default; "STAMP_THREADS=auto: ..." when asked for), "STAMP_THREADS=2",
 * "OMP_NUM_THREADS=2", or "all cores (N)". Points into a static
 * buffer. */
const char *threads_count_source(void);

/* The waiting in force, for `stamp --version`: "OMP_WAIT_POLICY=PASSIVE",
 * the user's OMP_WAIT_POLICY and/or GOMP_SPINCOUNT as set, or "libgomp
 * default" when neither is set. Points into a static buffer, overwritten
 * by the next call. */
const char *threads_wait_policy(void);

#endif
