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
 * The thread count is all cores unless --threads, OMP_NUM_THREADS or
 * OPENBLAS_NUM_THREADS say otherwise, or STAMP_THREADS: a number, or
 * "auto", the share of the cores the other work running as the command
 * starts leaves it (threads_auto_count).
 * On a shared machine a second thread may not pay: with the kernel's
 * autogroup scheduling a session, not a thread, gets a fair share of the
 * cores, so other users' work leaves a command the same CPU however many
 * threads it runs, and a second thread adds only its waiting. On a
 * 2-core host at load average 6-7 from other jobs, 2 threads took 1.24
 * times as long as 1 on a world-tiny commit, 1.27 on its z phase (medians
 * of 5 pairs; docs/performance.md, "How threads wait"). "auto" is not
 * the default because key statistics and a world's bytes depend on the
 * thread count (a commit's tensors do not, from the same statistics),
 * and should depend on the neighbours' load only when the user asks. */
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
 * set. Returns when there was nothing to do, or when the new execution
 * failed (a note on stderr; the variables are taken back out, the
 * program goes on with libgomp's and OpenBLAS's defaults). */
void threads_init(char **argv);

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

/* Called by threads_init: when $STAMP_THREADS is "auto" or a number
 * 1-4096 and the user set neither OMP_NUM_THREADS nor
 * OPENBLAS_NUM_THREADS, sets this process's OpenMP and OpenBLAS thread
 * counts (omp_set_num_threads, openblas_set_num_threads; --threads still
 * overrides them later). "auto" looks at the runnable threads of every
 * other process and their sessions (/proc/PID/task/TID/stat) five
 * times, 2 ms apart, and takes the median of threads_auto_count's
 * answers. Returns the count set, or 0 (nothing set; a malformed value
 * gets a note on stderr). */
int threads_set_count(void);

/* How the thread count was chosen, for `stamp --version` and the commit
 * record: "STAMP_THREADS=auto: 1 (3 other sessions running threads, 0
 * other threads of this session; 2 cores; autogroup on)",
 * "STAMP_THREADS=2", "OMP_NUM_THREADS=2", or "all cores (N)". Points
 * into a static buffer. */
const char *threads_count_source(void);

/* The waiting in force, for `stamp --version`: "OMP_WAIT_POLICY=PASSIVE",
 * the user's OMP_WAIT_POLICY and/or GOMP_SPINCOUNT as set, or "libgomp
 * default" when neither is set. Points into a static buffer, overwritten
 * by the next call. */
const char *threads_wait_policy(void);

#endif
