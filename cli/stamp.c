/* stamp: the entry point. Parses the global options, finds the command
 * in the table below and runs it (git's git.c is the model). Adding a
 * command = one file src/cmd/cmd_NAME.c defining cmd_NAME and
 * cmd_NAME_usage, plus one line in the table. */
#include "base/blas_cpu.h"
#include "base/dist.h"
#include "base/errors.h"
#include "base/threads.h"
#include "cli/cli.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define COMMAND(name, summary)                                              \
    extern int cmd_##name(int, char **, const cli_globals *);               \
    extern const char cmd_##name##_usage[];
#include "commands.def"
#undef COMMAND

static const cli_command commands[] = {
#define COMMAND(name, summary) {#name, cmd_##name, summary, cmd_##name##_usage},
#include "commands.def"
#undef COMMAND
};
static const size_t n_commands = sizeof commands / sizeof commands[0];

const cli_command *cli_find(const char *name)
{
    for (size_t i = 0; i < n_commands; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

/* The commands whose time is in threads: they say how many they run. */
static bool computes(const char *name)
{
    static const char *const names[] = {"commit", "stats", "eval", "predict"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* --threads among a command's arguments: its count wins */
static bool has_threads_option(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--threads") || !strncmp(argv[i], "--threads=", 10))
            return true;
    return false;
}

static void print_usage(FILE *out)
{
    fputs("usage: stamp [--store DIR] [--mpi] COMMAND [ARGS...]\n"
          "       stamp --help | --version\n\n"
          "Keeps a versioned database of facts and stamps them into a\n"
          "language model's weights in batches (MEMIT), one reversible\n"
          "commit per batch.\n\ncommands:\n", out);
    for (size_t i = 0; i < n_commands; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\nThe store is --store DIR, else $STAMP_STORE, else ./store.\n"
          "'stamp COMMAND --help' describes one command.\n"
          "Under Open MPI's mpirun (or with --mpi), stats and commit share\n"
          "their key statistics and target vectors among the ranks; rank 0\n"
          "alone prints and writes the store.\n"
          "Threads: the share of the cores the other work running as a\n"
          "command starts leaves it (all cores unless other sessions keep\n"
          "them busy); --threads N, STAMP_THREADS=N|auto, OMP_NUM_THREADS\n"
          "or OPENBLAS_NUM_THREADS choose instead. 'stamp --version' says\n"
          "how the count was chosen.\n", out);
}

int main(int argc, char **argv)
{
    threads_init(argv, true);
    cli_globals g = {0};
    const char *env = getenv("STAMP_STORE");
    g.store_dir = env && *env ? env : "store";
    int i = 1, mpi = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--version")) {
            printf("stamp %s\nOpenBLAS kernels: %s\nOpenMP waiting: %s\n"
                   "Threads: %s\nMPI: %s\n", STAMP_VERSION, blas_cpu_core(),
                   threads_wait_policy(), threads_count_source(),
                   dist_library());
            return EXIT_OK;
        } else if (!strcmp(argv[i], "--mpi")) {
            mpi = 1;
        } else if (!strcmp(argv[i], "--store") ||
                   !strncmp(argv[i], "--store=", 8)) {
            const char *dir = argv[i][7] == '=' ? argv[i] + 8
                              : i + 1 < argc    ? argv[++i] : NULL;
            if (!dir || !*dir) {
                fputs("stamp: option '--store' needs a directory\n", stderr);
                return EXIT_USAGE;
            }
            g.store_dir = dir;
        } else {
            fprintf(stderr, "stamp: unknown option '%s'\n", argv[i]);
            print_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const cli_command *c = cli_find(argv[i]);
    if (!c) {
        fprintf(stderr, "stamp: '%s' is not a stamp command\n", argv[i]);
        print_usage(stderr);
        return EXIT_USAGE;
    }
    /* under mpirun (or --mpi): rank 0 runs the command, stats and commit
     * share their heavy phases with the other ranks, which serve it */
    if (dist_init(&argc, &argv, mpi))
        return cli_fail_code(ERR_INVALID);
    if (dist_rank() > 0) return cli_worker_main(argc, argv);
    /* output that could not be written (a full disk, /dev/full) fails
     * the command, whatever it printed */
    if (computes(c->name) && !has_threads_option(argc - i, argv + i))
        cli_note_threads();
    int rc = c->run(argc - i, argv + i, &g);
    if (dist_finish() && rc == EXIT_OK) rc = cli_fail_code(ERR_IO);
    return cli_finish_output(rc);
}
