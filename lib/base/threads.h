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
 * the program again. The thread counts are not touched (all cores unless
 * --threads, OMP_NUM_THREADS or OPENBLAS_NUM_THREADS say otherwise): a
 * world's bytes, and a commit's last bits, depend on the thread count,
 * and should not on the neighbours' load. */
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

/* The waiting in force, for `stamp --version`: "OMP_WAIT_POLICY=PASSIVE",
 * the user's OMP_WAIT_POLICY and/or GOMP_SPINCOUNT as set, or "libgomp
 * default" when neither is set. Points into a static buffer, overwritten
 * by the next call. */
const char *threads_wait_policy(void);

#endif
