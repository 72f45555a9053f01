/* dist: MPI for the two phases that split across processes (see
 * dist.h). The only file that includes mpi.h; built without it when the
 * Makefile found no MPI (STAMP_MPI undefined), and then every call acts
 * for a single process. Messages larger than MPI's int count travel in
 * pieces of DIST_PIECE bytes. */
#include "base/dist.h"
#include "base/errors.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef STAMP_MPI
#include <mpi.h>

enum { DIST_PIECE = 1 << 30, TAG_STATUS = 11, TAG_DATA = 12 };

static int g_on, g_rank, g_size = 1, g_ended;

/* What rank 0's stop handler prints: formatted before each blocking
 * receive (snprintf is not safe in a signal handler; write is). */
static char g_stop_text[512];
static volatile sig_atomic_t g_stop_len;

static void on_stop(int sig)
{
    (void)sig;
    static const char other[] =
        "stamp: error: the MPI job was stopped (a rank died or failed; "
        "mpirun names it above); nothing was written to the store\n";
    if (g_stop_len > 0) {
        ssize_t w = write(2, g_stop_text, (size_t)g_stop_len);
        (void)w;
    } else {
        ssize_t w = write(2, other, sizeof other - 1);
        (void)w;
    }
    _exit(1);
}

static void stop_waiting_for(int rank, const char *what)
{
    g_stop_len = 0;
    if (rank < 0) return;
    int n = snprintf(g_stop_text, sizeof g_stop_text,
                     "stamp: error: MPI rank %d stopped before it delivered "
                     "its %s (killed or failed; see mpirun's message); "
                     "nothing was written to the store\n", rank, what);
    if (n > 0) g_stop_len = n < (int)sizeof g_stop_text ? n : (int)sizeof g_stop_text - 1;
}

/* An MPI call's failure as this process's error. */
static int mpi_fail(int mpirc, const char *what, int rank)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpirc, text, &len) != MPI_SUCCESS) len = 0;
    text[len] = '\0';
    if (rank >= 0)
        return err_set(ERR_IO, "MPI rank %d: %s failed: %s", rank, what, text);
    return err_set(ERR_IO, "MPI: %s failed: %s", what, text);
}

int dist_init(int *argc, char ***argv, int force)
{
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    if (!force && !(env && *env)) return 0;
    int provided, rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED,
                                       &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init", -1);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_on = 1;
    if (g_rank == 0 && g_size > 1) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    return 0;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_active(void) { return g_on && !g_ended && g_size > 1; }

const char *dist_library(void)
{
    static char name[64];
    int major = 0, minor = 0;
    MPI_Get_version(&major, &minor);
#ifdef OMPI_MAJOR_VERSION
    snprintf(name, sizeof name, "Open MPI v%d.%d.%d (MPI %d.%d)",
             OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION, OMPI_RELEASE_VERSION,
             major, minor);
#else
    snprintf(name, sizeof name, "MPI %d.%d", major, minor);
#endif
    return name;
}

int dist_bcast(void *buf, size_t bytes)
{
    for (size_t off = 0; off < bytes; off += DIST_PIECE) {
        size_t n = bytes - off < DIST_PIECE ? bytes - off : DIST_PIECE;
        int rc = MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, 0,
                           MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast", -1);
    }
    return 0;
}

int dist_command(int cmd) { return dist_bcast(&cmd, sizeof cmd); }
int dist_next_command(int *cmd) { return dist_bcast(cmd, sizeof *cmd); }

int dist_send(const void *buf, size_t bytes)
{
    for (size_t off = 0; off < bytes; off += DIST_PIECE) {
        size_t n = bytes - off < DIST_PIECE ? bytes - off : DIST_PIECE;
        int rc = MPI_Send((const char *)buf + off, (int)n, MPI_BYTE, 0,
                          TAG_DATA, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "send to rank 0", -1);
    }
    return 0;
}

int dist_send_status(int status, const char *message)
{
    char text[512] = "";
    if (status) snprintf(text, sizeof text, "%s", message ? message : "");
    int rc = MPI_Send(&status, 1, MPI_INT, 0, TAG_STATUS, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS && status)
        rc = MPI_Send(text, sizeof text, MPI_CHAR, 0, TAG_STATUS,
                      MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "send to rank 0", -1);
}

int dist_recv_status(int from, const char *what)
{
    int status = 0, rc;
    stop_waiting_for(from, what);
    rc = MPI_Recv(&status, 1, MPI_INT, from, TAG_STATUS, MPI_COMM_WORLD,
                  MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, what, from);
    if (status) {
        char text[512];
        rc = MPI_Recv(text, sizeof text, MPI_CHAR, from, TAG_STATUS,
                      MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what, from);
        text[sizeof text - 1] = '\0';
        stop_waiting_for(-1, NULL);
        return err_set(status < 0 ? status : ERR_IO, "MPI rank %d: %s", from,
                       text);
    }
    return 0;
}

int dist_recv(int from, void *buf, size_t bytes, const char *what)
{
    stop_waiting_for(from, what);
    for (size_t off = 0; off < bytes; off += DIST_PIECE) {
        size_t n = bytes - off < DIST_PIECE ? bytes - off : DIST_PIECE;
        int rc = MPI_Recv((char *)buf + off, (int)n, MPI_BYTE, from, TAG_DATA,
                          MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what, from);
    }
    stop_waiting_for(-1, NULL);
    return 0;
}

int dist_finish(void)
{
    if (!g_on || g_ended) return 0;
    int rc = 0;
    if (g_rank == 0 && g_size > 1) rc = dist_command(DIST_CMD_END);
    g_ended = 1;
    stop_waiting_for(-1, NULL);
    MPI_Finalize();
    if (g_rank == 0 && g_size > 1) { /* alone from here on */
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
    }
    return rc;
}

#else /* no MPI in this build: one process */

int dist_init(int *argc, char ***argv, int force)
{
    (void)argc;
    (void)argv;
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    if (force || (env && *env && strcmp(env, "1")))
        return err_set(ERR_INVALID, "this stamp was built without MPI "
                       "(install libopenmpi-dev and rebuild): run it "
                       "without mpirun");
    return 0;
}

int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
int dist_active(void) { return 0; }
const char *dist_library(void) { return "not built"; }
int dist_command(int cmd) { (void)cmd; return 0; }
int dist_next_command(int *cmd) { *cmd = DIST_CMD_END; return 0; }
int dist_bcast(void *buf, size_t bytes) { (void)buf; (void)bytes; return 0; }
int dist_send(const void *buf, size_t bytes)
{
    (void)buf;
    (void)bytes;
    return err_set(ERR_INVALID, "no MPI in this build");
}
int dist_send_status(int status, const char *message)
{
    (void)status;
    (void)message;
    return err_set(ERR_INVALID, "no MPI in this build");
}
int dist_recv_status(int from, const char *what)
{
    (void)what;
    return err_set(ERR_INVALID, "no MPI rank %d in this build", from);
}
int dist_recv(int from, void *buf, size_t bytes, const char *what)
{
    (void)buf;
    (void)bytes;
    (void)what;
    return err_set(ERR_INVALID, "no MPI rank %d in this build", from);
}
int dist_finish(void) { return 0; }

#endif

int dist_bcast_blob(void **buf, size_t *bytes)
{
    unsigned long long n = *bytes;
    int rc = dist_bcast(&n, sizeof n);
    if (rc) return rc;
    if (dist_rank() != 0) {
        *bytes = (size_t)n;
        if (!(*buf = malloc(n ? n : 1))) return ERR_NOMEM;
    }
    return dist_bcast(*buf, (size_t)n);
}

void dist_share(size_t n, int rank, int size, size_t *first, size_t *end)
{
    *first = n * (size_t)rank / (size_t)size;
    *end = n * (size_t)(rank + 1) / (size_t)size;
}

void dist_test_pause(void)
{
    static int paused;
    const char *env = getenv("STAMP_TEST_DIST_PAUSE");
    if (paused || dist_rank() == 0 || !env || atoi(env) <= 0) return;
    paused = 1;
    fprintf(stderr, "stamp: test: rank %d pauses for %d s\n", dist_rank(),
            atoi(env));
    fflush(stderr);
    sleep((unsigned)atoi(env));
}
