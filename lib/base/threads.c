/* threads: stamp's wait policy for libgomp's threads, set before libgomp
 * reads it by executing the program again, and the thread count
 * STAMP_THREADS asks for (see threads.h). */
#include "base/threads.h"
#include "base/blas_cpu.h"

#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void openblas_set_num_threads(int);

/* What stamp asks for. Measured on a 2-core machine shared with other
 * jobs (bench/threads_busy.sh on world-tiny, 2026-12-07): with two
 * CPU-bound processes beside it, 2 threads took 1.2 times as long as 1
 * on a commit, 1.3 on stats (libgomp's default: 3.7 and 5.1 times); a
 * bounded spin, GOMP_SPINCOUNT=10000, took 2.1 on stats. The z phase,
 * the bulk of a large commit, is one parallel region a round, so
 * sleeping between regions costs its speed-up on an idle machine
 * nothing. */
static const char stamp_policy[] = "PASSIVE";

static const char *set_value(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *threads_wait_policy_to_set(const char *omp_wait_policy,
                                       const char *gomp_spincount)
{
    if ((omp_wait_policy && *omp_wait_policy) ||
        (gomp_spincount && *gomp_spincount))
        return NULL;
    return stamp_policy;
}

bool threads_set_wait_policy(void)
{
    const char *policy = threads_wait_policy_to_set(
        set_value("OMP_WAIT_POLICY"), set_value("GOMP_SPINCOUNT"));
    return policy && !setenv("OMP_WAIT_POLICY", policy, 1);
}

int threads_auto_count(int cores, bool autogroup, int same_session,
                       const int *other_sessions, int n_other)
{
    if (cores < 1) cores = 1;
    /* thread against thread (no autogroup), or against threads of our
     * own session: each thread more takes a larger share */
    if (!autogroup || same_session > 0 || n_other <= 0) return cores;
    /* session against session: the cores are shared out evenly, a session
     * that wants less than its share leaving the rest to the others
     * (water filling); ours wants every core */
    int d[64], k = 0;
    for (int i = 0; i < n_other && k < 64; i++)
        if (other_sessions[i] > 0)
            d[k++] = other_sessions[i] < cores ? other_sessions[i] : cores;
    if (!k) return cores;
    for (int i = 1; i < k; i++) /* ascending (k is small) */
        for (int j = i; j > 0 && d[j - 1] > d[j]; j--) {
            int t = d[j]; d[j] = d[j - 1]; d[j - 1] = t;
        }
    double left = cores;
    int sessions = k + 1;
    for (int i = 0; i < k && d[i] <= left / sessions; i++) {
        left -= d[i];
        sessions--;
    }
    double share = left / sessions;
    int n = (int)(share + 0.5);
    return n < 1 ? 1 : n > cores ? cores : n;
}

/* One look at the runnable threads (state R) of the other processes,
 * from /proc/PID/task/TID/stat: *same those in this process's session,
 * per[] the count of each other session (up to max sessions, the rest
 * added to the last). Returns the number of other sessions. */
static int count_runnable(pid_t self, pid_t sid, int *same, int *per,
                          pid_t *sids, int max)
{
    int n = 0;
    *same = 0;
    DIR *proc = opendir("/proc");
    if (!proc) return 0;
    struct dirent *e;
    while ((e = readdir(proc))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/task", pid);
        DIR *tasks = opendir(path);
        if (!tasks) continue;
        struct dirent *t;
        while ((t = readdir(tasks))) {
            if (t->d_name[0] == '.') continue;
            char sp[96], buf[512];
            snprintf(sp, sizeof sp, "/proc/%ld/task/%.20s/stat", pid, t->d_name);
            FILE *f = fopen(sp, "r");
            if (!f) continue;
            size_t len = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[len] = '\0';
            char *rp = strrchr(buf, ')'), state;
            int ppid, pgrp, session;
            if (!rp || sscanf(rp + 1, " %c %d %d %d", &state, &ppid, &pgrp,
                              &session) != 4 || state != 'R')
                continue;
            if (session == sid) { (*same)++; continue; }
            int i = 0;
            while (i < n && sids[i] != session) i++;
            if (i == n) {
                if (n == max) i = max - 1;
                else { sids[n] = session; per[n++] = 0; }
            }
            per[i]++;
        }
        closedir(tasks);
    }
    closedir(proc);
    return n;
}

static bool autogroup_enabled(void)
{
    FILE *f = fopen("/proc/sys/kernel/sched_autogroup_enabled", "r");
    int on = 0;
    if (f) {
        if (fscanf(f, "%d", &on) != 1) on = 0;
        fclose(f);
    }
    return on == 1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* what threads_set_count chose, for threads_count_source */
static char g_count_source[160];

int threads_set_count(void)
{
    const char *v = set_value("STAMP_THREADS");
    if (!v || set_value("OMP_NUM_THREADS") || set_value("OPENBLAS_NUM_THREADS"))
        return 0;
    int n = 0;
    if (!strcmp(v, "auto")) {
        /* five looks, 2 ms apart: the median count (and the look it came
         * from, for the message) */
        enum { LOOKS = 5, MAX_SESSIONS = 64 };
        int counts[LOOKS], sorted[LOOKS], same[LOOKS], nsess[LOOKS];
        int cores = omp_get_num_procs();
        bool ag = autogroup_enabled();
        pid_t self = getpid(), sid = getsid(0);
        for (int i = 0; i < LOOKS; i++) {
            int per[MAX_SESSIONS];
            pid_t sids[MAX_SESSIONS];
            nsess[i] = count_runnable(self, sid, &same[i], per, sids,
                                      MAX_SESSIONS);
            counts[i] = sorted[i] = threads_auto_count(cores, ag, same[i],
                                                       per, nsess[i]);
            if (i < LOOKS - 1)
                nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        qsort(sorted, LOOKS, sizeof *sorted, cmp_int);
        n = sorted[LOOKS / 2];
        int at = 0;
        while (counts[at] != n) at++;
        snprintf(g_count_source, sizeof g_count_source,
                 "STAMP_THREADS=auto: %d (%d other session%s running "
                 "threads, %d other thread%s of this session; %d core%s; "
                 "autogroup %s)", n, nsess[at], nsess[at] == 1 ? "" : "s",
                 same[at], same[at] == 1 ? "" : "s", cores,
                 cores == 1 ? "" : "s", ag ? "on" : "off");
    } else {
        char *end;
        errno = 0;
        long l = strtol(v, &end, 10);
        if (errno || *end || end == v || l < 1 || l > 4096) {
            fprintf(stderr, "stamp: note: STAMP_THREADS='%.40s' is neither "
                    "auto nor a count 1-4096; ignored\n", v);
            return 0;
        }
        n = (int)l;
        snprintf(g_count_source, sizeof g_count_source, "STAMP_THREADS=%d", n);
    }
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

const char *threads_count_source(void)
{
    static char buf[160];
    if (g_count_source[0]) return g_count_source;
    const char *omp = set_value("OMP_NUM_THREADS"),
               *blas = set_value("OPENBLAS_NUM_THREADS");
    if (omp || blas)
        snprintf(buf, sizeof buf, "%s%.40s", omp ? "OMP_NUM_THREADS=" :
                 "OPENBLAS_NUM_THREADS=", omp ? omp : blas);
    else
        snprintf(buf, sizeof buf, "all cores (%d)", omp_get_num_procs());
    return buf;
}

void threads_init(char **argv)
{
    bool wait = threads_set_wait_policy();
    const char *core = blas_cpu_set_best_kernels();
    if (wait || core) {
        execv("/proc/self/exe", argv);
        const char *why = strerror(errno);
        /* still the first execution: libgomp and OpenBLAS run as loaded,
         * so the environment should say so to --version and to children */
        if (wait) {
            unsetenv("OMP_WAIT_POLICY");
            fprintf(stderr,
                    "%s: note: could not restart with OMP_WAIT_POLICY=%s "
                    "(%s); set it yourself if other processes share the "
                    "cores\n", argv[0], stamp_policy, why);
        }
        if (core) {
            unsetenv("OPENBLAS_CORETYPE");
            fprintf(stderr,
                    "%s: note: OpenBLAS runs its generic kernels on this CPU "
                    "and could not be restarted with OPENBLAS_CORETYPE=%s "
                    "(%s); set it yourself for about 4 times the speed\n",
                    argv[0], core, why);
        }
    }
    /* the execution that runs: the other work counted as it starts */
    threads_set_count();
}

const char *threads_wait_policy(void)
{
    static char buf[160];
    const char *policy = set_value("OMP_WAIT_POLICY"),
               *spin = set_value("GOMP_SPINCOUNT");
    if (!policy && !spin) return "libgomp default";
    snprintf(buf, sizeof buf, "%s%.60s%s%s%.60s",
             policy ? "OMP_WAIT_POLICY=" : "", policy ? policy : "",
             policy && spin ? " " : "", spin ? "GOMP_SPINCOUNT=" : "",
             spin ? spin : "");
    return buf;
}
