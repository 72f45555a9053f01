/* threads: stamp's wait policy for libgomp's threads, set before libgomp
 * reads it by executing the program again, and the thread count: the
 * user's, STAMP_THREADS's or the automatic one, from the work running
 * as the command starts (see threads.h). */
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

int threads_auto_count_running(int cores, bool autogroup, int same_session,
                               int other_threads, double load1)
{
    if (cores < 1) cores = 1;
    if (!autogroup || same_session > 0 || other_threads <= 0 || load1 < 1)
        return cores;
    int n = cores - other_threads;
    return n < 1 ? 1 : n;
}

int threads_parse_loadavg(const char *text, double *load1)
{
    int running, total;
    double l1;
    if (!text || sscanf(text, "%lf %*f %*f %d/%d", &l1, &running, &total) != 3 ||
        running < 0 || !(l1 >= 0))
        return -1;
    if (load1) *load1 = l1;
    return running;
}

/* /proc/loadavg's runnable count (-1 when unreadable) and 1-minute
 * load average */
static int loadavg_read(double *load1)
{
    char buf[128];
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    return threads_parse_loadavg(buf, load1);
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
    if (max < 1) return 0;
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

int threads_look_naive(threads_look *l, int *per, int max_sessions)
{
    pid_t sids[64];
    int max = max_sessions < 64 ? max_sessions : 64;
    int n = count_runnable(getpid(), getsid(0), &l->same, per, sids, max);
    l->other = 0;
    l->load1 = 0;
    loadavg_read(&l->load1);
    for (int i = 0; i < n; i++) l->other += per[i];
    return n;
}

/* A process's state, parent, session and thread count from
 * /proc/PID/stat (or /proc/PID/task/TID/stat); false when it is gone. */
typedef struct {
    char state;
    int ppid, session, threads;
} proc_stat;

static bool read_stat(const char *path, proc_stat *ps)
{
    char buf[512];
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *rp = strrchr(buf, ')');
    /* after the name: state ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime priority nice
     * num_threads */
    return rp && sscanf(rp + 1, " %c %d %*d %d %*d %*d %*u %*u %*u %*u %*u "
                        "%*u %*u %*d %*d %*d %*d %d", &ps->state, &ps->ppid,
                        &ps->session, &ps->threads) == 4;
}

static bool read_pid_stat(long pid, proc_stat *ps)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    return read_stat(path, ps);
}

/* The topmost ancestor of this process (itself included) in its session:
 * the session leader while it lives. */
static long session_top(pid_t sid)
{
    long top = getpid(), up = getppid();
    proc_stat ps;
    for (int hops = 0; up > 1 && hops < 64 && read_pid_stat(up, &ps) &&
                       ps.session == sid; hops++) {
        top = up;
        up = ps.ppid;
    }
    return top;
}

/* Runnable threads of pid's process (itself not counted when it is this
 * one) and of its descendants in session sid, into *same. False when a
 * children file is missing (no CONFIG_PROC_CHILDREN). depth bounds the
 * recursion. */
static bool count_session_from(long pid, pid_t sid, long self, int *same,
                               int depth)
{
    proc_stat ps;
    if (depth > 64 || !read_pid_stat(pid, &ps) || ps.session != sid)
        return true; /* gone, or another session: none of ours below */
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks) return true;
    bool ok = true;
    struct dirent *t;
    while (ok && (t = readdir(tasks))) {
        if (t->d_name[0] == '.') continue;
        if (pid != self) {
            proc_stat ts = ps;
            if (ps.threads > 1) {
                snprintf(path, sizeof path, "/proc/%ld/task/%.20s/stat", pid,
                         t->d_name);
                if (!read_stat(path, &ts)) continue;
            }
            if (ts.state == 'R') (*same)++;
        }
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/children", pid,
                 t->d_name);
        FILE *f = fopen(path, "r");
        if (!f) { /* the thread is gone, or the kernel has no such files */
            snprintf(path, sizeof path, "/proc/%ld/task/%.20s/stat", pid,
                     t->d_name);
            ok = access(path, F_OK) != 0;
            continue;
        }
        long child;
        while (ok && fscanf(f, "%ld", &child) == 1)
            ok = count_session_from(child, sid, self, same, depth + 1);
        fclose(f);
    }
    closedir(tasks);
    return ok;
}

/* Where to walk down from to find this session's processes: the topmost
 * ancestor in it, and the processes of it that lost their parent (init,
 * pid 1, took them: `cmd &` in a shell that has exited). Returns how
 * many (at most max), or -1 without children files. */
static int session_roots(pid_t sid, long *roots, int max)
{
    int n = 0;
    roots[n++] = session_top(sid);
    DIR *tasks = opendir("/proc/1/task");
    if (!tasks) return n;
    struct dirent *t;
    while ((t = readdir(tasks))) {
        if (t->d_name[0] == '.') continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/1/task/%.20s/children", t->d_name);
        FILE *f = fopen(path, "r");
        if (!f) {
            n = -1;
            break;
        }
        long child;
        proc_stat ps;
        while (n < max && fscanf(f, "%ld", &child) == 1)
            if (child != roots[0] && read_pid_stat(child, &ps) &&
                ps.session == sid)
                roots[n++] = child;
        fclose(f);
    }
    closedir(tasks);
    return n;
}

/* A fast look from the session's roots (session_roots); -1 when a
 * children file is missing. */
static int look_from(threads_look *l, pid_t sid, const long *roots, int n)
{
    l->same = l->other = 0;
    l->load1 = 0;
    int running = loadavg_read(&l->load1);
    if (running < 0) return -1;
    if (running <= 1) return 0; /* this process alone */
    for (int i = 0; i < n; i++)
        if (!count_session_from(roots[i], sid, getpid(), &l->same, 0))
            return -1;
    l->other = running - 1 - l->same;
    if (l->other < 0) l->other = 0;
    return 0;
}

int threads_look_fast(threads_look *l)
{
    enum { MAX_ROOTS = 64 };
    long roots[MAX_ROOTS];
    pid_t sid = getsid(0);
    int n = session_roots(sid, roots, MAX_ROOTS);
    if (n < 0) return -1;
    return look_from(l, sid, roots, n);
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
/* the automatic count when it is the one in force, else 0 */
static int g_auto_count;

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Waits `seconds` on the CPU: a sleep on a busy machine waits for the
 * CPU again when it ends (14.7 ms for five looks with four 0.5 ms sleeps
 * at load 10 on 2 cores; bench/threads_scan.sh) */
static void wait_a_while(double seconds)
{
    double end = seconds_now() + seconds;
    while (seconds_now() < end) {}
}

/* The automatic count: LOOKS looks 0.5 ms apart, the median of their
 * answers; the text says what it counted (in the look it came from). */
static int automatic_count(const char *how)
{
    enum { LOOKS = 5 };
    int cores = omp_get_num_procs();
    /* for the tests: the answer given, nothing looked at */
    const char *given = set_value("STAMP_TEST_AUTO_THREADS");
    if (given && atoi(given) >= 1) {
        snprintf(g_count_source, sizeof g_count_source,
                 "%s: %d (STAMP_TEST_AUTO_THREADS)", how, atoi(given));
        return atoi(given);
    }
    bool ag = autogroup_enabled(), naive = false;
    threads_look looks[LOOKS] = {{0, 0, 0}};
    int counts[LOOKS], sorted[LOOKS];
    enum { MAX_ROOTS = 64 };
    long roots[MAX_ROOTS];
    pid_t sid = getsid(0);
    int n_roots = ag ? session_roots(sid, roots, MAX_ROOTS) : 0;
    naive = n_roots < 0;
    for (int i = 0; i < LOOKS; i++) {
        if (ag && !naive && look_from(&looks[i], sid, roots, n_roots) < 0)
            naive = true;
        if (ag && naive) {
            int per[64];
            threads_look_naive(&looks[i], per, 64);
        }
        counts[i] = sorted[i] = threads_auto_count_running(
            cores, ag, looks[i].same, looks[i].other, looks[i].load1);
        if (!ag) break; /* nothing to look at: every core */
        if (i < LOOKS - 1) wait_a_while(0.5e-3);
    }
    int n_looks = ag ? LOOKS : 1;
    qsort(sorted, n_looks, sizeof *sorted, cmp_int);
    int n = sorted[n_looks / 2], at = 0;
    while (counts[at] != n) at++;
    snprintf(g_count_source, sizeof g_count_source,
             "%s: %d (%d runnable thread%s of other sessions, %d of this one; "
             "load %.2f; %d core%s; autogroup %s%s)", how, n, looks[at].other,
             looks[at].other == 1 ? "" : "s", looks[at].same, looks[at].load1,
             cores,
             cores == 1 ? "" : "s", ag ? "on" : "off",
             naive ? "; every process looked at" : "");
    return n;
}

/* STAMP_THREADS's count 1-4096, 0 for "auto", -1 when malformed */
static int stamp_threads_value(const char *v)
{
    if (!strcmp(v, "auto")) return 0;
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (errno || *end || end == v || l < 1 || l > 4096) return -1;
    return (int)l;
}

int threads_set_count(bool auto_default)
{
    g_auto_count = 0;
    g_count_source[0] = '\0';
    if (set_value("OMP_NUM_THREADS") || set_value("OPENBLAS_NUM_THREADS"))
        return 0;
    const char *v = set_value("STAMP_THREADS");
    int n = v ? stamp_threads_value(v) : 0;
    if (n < 0) {
        fprintf(stderr, "stamp: note: STAMP_THREADS='%.40s' is neither auto "
                "nor a count 1-4096; ignored\n", v);
        v = NULL;
        n = 0;
    }
    if (n > 0) {
        snprintf(g_count_source, sizeof g_count_source, "STAMP_THREADS=%d", n);
    } else if (v || auto_default) {
        n = g_auto_count = automatic_count(v ? "STAMP_THREADS=auto"
                                             : "automatic");
    } else {
        return 0;
    }
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
}

void threads_use(int n)
{
    if (n < 1) return;
    g_auto_count = 0;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

bool threads_count_is_automatic(void)
{
    return g_auto_count > 0 && omp_get_max_threads() == g_auto_count;
}

int threads_exact_begin(void)
{
    int before = omp_get_max_threads();
    if (omp_in_parallel()) return before; /* OpenBLAS runs on one thread */
    if (threads_count_is_automatic() && before != omp_get_num_procs()) {
        omp_set_num_threads(omp_get_num_procs());
        openblas_set_num_threads(omp_get_num_procs());
    }
    return before;
}

void threads_exact_end(int before)
{
    if (before > 0 && omp_get_max_threads() != before) {
        omp_set_num_threads(before);
        openblas_set_num_threads(before);
    }
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

void threads_init(char **argv, bool auto_default)
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
    threads_set_count(auto_default);
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
