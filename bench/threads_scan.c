/* threads_scan: what choosing the automatic thread count costs at the
 * start of a command (lib/base/threads.h): one fast look (/proc/loadavg
 * and this session's threads), one naive look (every thread's stat in
 * /proc), and the whole automatic choice (five fast looks 0.5 ms apart).
 * Prints the medians of REPS (default 21) timings of each, in ms, and
 * what the last look counted. Built and run by bench/threads_scan.sh. */
#include "base/threads.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 21;
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: threads_scan [REPS 1-1000]\n");
        return 2;
    }
    double *fast = malloc(reps * sizeof *fast), *naive = malloc(reps * sizeof *naive),
           *choice = malloc(reps * sizeof *choice);
    threads_look lf = {0, 0, 0}, ln = {0, 0, 0};
    int per[64], sessions = 0, n = 0, fast_rc = 0;
    for (int i = 0; i < reps; i++) {
        /* the naive look last: its CPU would count against what follows
         * it on a busy machine (the scheduler takes the CPU back) */
        double t0 = now_ms();
        n = threads_set_count(true);
        double t1 = now_ms();
        fast_rc = threads_look_fast(&lf);
        double t2 = now_ms();
        sessions = threads_look_naive(&ln, per, 64);
        double t3 = now_ms();
        choice[i] = t1 - t0;
        fast[i] = t2 - t1;
        naive[i] = t3 - t2;
        struct timespec pause = {0, 20000000}; /* 20 ms: the next round starts afresh */
        nanosleep(&pause, NULL);
    }
    printf("fast look:        %7.3f ms (last: %d runnable threads of other "
           "sessions, %d of this one%s)\n", median(fast, reps), lf.other,
           lf.same, fast_rc ? "; no children files" : "");
    printf("naive look:       %7.3f ms (last: %d of other sessions in %d "
           "sessions, %d of this one)\n", median(naive, reps), ln.other,
           sessions, ln.same);
    printf("automatic choice: %7.3f ms (last: %s)\n", median(choice, reps),
           threads_count_source());
    (void)n;
    free(fast);
    free(naive);
    free(choice);
    return 0;
}
