/* dist: the one module that calls MPI. `mpirun -np N stamp stats|commit`
 * runs N processes (ranks); rank 0 is the command as it always is (the
 * store, the solve, every write, every line printed), the other ranks
 * are workers that compute a share of one phase (key statistics, target
 * vectors) and send it to rank 0. Without mpirun nothing here calls MPI:
 * dist_init starts MPI only when Open MPI's launcher set
 * OMPI_COMM_WORLD_SIZE (or `stamp --mpi`), so a plain `stamp` behaves and
 * performs as without this module. Built without MPI (no mpicc when
 * compiled: STAMP_MPI undefined), the same calls work for one process and
 * dist_init refuses to run under mpirun with N > 1.
 *
 * Messages go between rank 0 and each worker only (a star): rank 0
 * broadcasts a command and its data, each worker answers rank 0 with a
 * point-to-point send, received in rank order. Receiving in order names
 * the rank that did not deliver: when a rank dies, mpirun stops the
 * others with SIGTERM, and rank 0's handler (installed by dist_init)
 * prints which rank it was waiting for and exits 1; the store's write
 * transaction is then never committed. Every rank must run the same
 * binary on the same kind of machine (structs travel as bytes). */
#ifndef STAMP_DIST_H
#define STAMP_DIST_H

#include <stddef.h>

/* The commands rank 0 sends its workers (dist_command). */
enum {
    DIST_CMD_END = 0,     /* the distributed work is over: exit */
    DIST_CMD_STATS = 1,   /* a share of the key statistics (memit/keystats) */
    DIST_CMD_Z = 2,       /* a share of the target vectors (repo/commit) */
};

/* Starts MPI when launched by mpirun (OMPI_COMM_WORLD_SIZE in the
 * environment) or when `force`; else does nothing. Errors on the world
 * communicator then return (MPI_ERRORS_RETURN) instead of aborting.
 * ERR_INVALID when MPI is wanted but this build has none. */
int dist_init(int *argc, char ***argv, int force);

int dist_rank(void);          /* 0 without MPI */
int dist_size(void);          /* 1 without MPI */
int dist_active(void);        /* more than one rank */

/* "Open MPI v4.1.4" (the library linked), or "not built". */
const char *dist_library(void);

/* Rank 0: sends every worker `cmd` (DIST_CMD_*). Workers: *cmd gets the
 * next command. */
int dist_command(int cmd);
int dist_next_command(int *cmd);

/* Rank 0's `bytes` bytes at buf to every rank (any size). */
int dist_bcast(void *buf, size_t bytes);

/* A malloc'ed blob of rank 0's: rank 0 passes *buf and *bytes, a worker
 * gets them (free() it). */
int dist_bcast_blob(void **buf, size_t *bytes);

/* A worker's answer to rank 0: a status (0 or an ERR_* code) and, when
 * it is not 0, the worker's error message in place of the data. */
int dist_send_status(int status, const char *message);
int dist_send(const void *buf, size_t bytes);

/* Rank 0: the status worker `from` sent (its message becomes this
 * process's error, naming the rank), then its data. `what` names what is
 * awaited ("key statistics"), for the message when the rank dies. */
int dist_recv_status(int from, const char *what);
int dist_recv(int from, void *buf, size_t bytes, const char *what);

/* [*first, *end) of n items for `rank` of `size`: contiguous, in rank
 * order, sizes differing by at most one. */
void dist_share(size_t n, int rank, int size, size_t *first, size_t *end);

/* Rank 0: tells the workers DIST_CMD_END (once; later calls do nothing)
 * and waits for them in MPI_Finalize. Workers: MPI_Finalize. After it,
 * rank 0 runs alone (its stop handler is gone). No-op without MPI. */
int dist_finish(void);

/* Test hook: when $STAMP_TEST_DIST_PAUSE is N > 0, a worker sleeps N
 * seconds before it delivers its first share, saying so on stderr (a
 * test kills it then). */
void dist_test_pause(void);

#endif
