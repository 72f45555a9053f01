/* worker: what a stamp process of MPI rank > 0 does (base/dist.h). It
 * parses no command: it serves rank 0's commands (a share of the key
 * statistics, a share of the target vectors) until rank 0 says the
 * distributed work is over, and prints only when its link to rank 0
 * breaks (rank 0 reports every other failure, a worker's own included).
 * `--threads N` on the command line sets its threads, as on rank 0. */
#include "cli/cli.h"
#include "base/dist.h"
#include "base/errors.h"
#include "memit/keystats.h"
#include "repo/commit.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void openblas_set_num_threads(int);

static void worker_threads(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *v = !strncmp(argv[i], "--threads=", 10) ? argv[i] + 10
                        : !strcmp(argv[i], "--threads") && i + 1 < argc
                            ? argv[i + 1] : NULL;
        int n = v ? atoi(v) : 0;
        if (n > 0) {
            omp_set_num_threads(n);
            openblas_set_num_threads(n);
        }
    }
}

int cli_worker_main(int argc, char **argv)
{
    keystats_worker *kw = NULL;
    commit_worker *cw = NULL;
    int rc = 0, cmd = DIST_CMD_END;
    worker_threads(argc, argv);
    while (!(rc = dist_next_command(&cmd)) && cmd != DIST_CMD_END) {
        /* a failure of the work itself went to rank 0, which ends the
         * work; a broken link fails the next command's broadcast */
        if (cmd == DIST_CMD_STATS) keystats_worker_job(&kw);
        else if (cmd == DIST_CMD_Z) commit_worker_job(&cw);
        else {
            rc = err_set(ERR_INVALID, "unknown command %d from rank 0", cmd);
            break;
        }
    }
    keystats_worker_free(kw);
    commit_worker_free(cw);
    if (rc) {
        fprintf(stderr, "stamp: error: MPI rank %d: %s\n", dist_rank(),
                err_message(rc));
        return EXIT_FAIL;
    }
    return dist_finish() ? EXIT_FAIL : EXIT_OK;
}
