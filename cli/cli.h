/* cli: what every command file (src/cmd/cmd_*.c) shares: the command
 * table's entry type, the global options, and the one way to report an
 * error. Only the command layer includes this header; only it prints to
 * stdout/stderr or decides exit codes.
 *
 * Exit codes: 0 success, 1 a failed operation, 2 bad usage. A command
 * function returns its exit code; main() exits with it. */
#ifndef STAMP_CLI_H
#define STAMP_CLI_H

#include "eval/eval.h"

#include <jansson.h>
#include <stdio.h>

#define STAMP_VERSION "0.1.0"

/* The one table of exit codes. tools/nightly.sh returns the same numbers
 * (its EXIT_* variables; tests/cli/t60-nightly.sh checks they match). */
enum {
    EXIT_OK = 0,      /* done */
    EXIT_FAIL = 1,    /* the operation failed and changed nothing */
    EXIT_USAGE = 2,   /* bad usage: unknown option, malformed value */
    EXIT_NOTHING = 3, /* nothing to do (commit: the queue is empty) */
    EXIT_LOCKED = 4   /* another nightly run holds the lock (nightly.sh) */
};

/* Options that come before the command name. */
typedef struct {
    const char *store_dir; /* --store, else $STAMP_STORE, else "./store" */
} cli_globals;

/* One entry of the command table (src/cmd/stamp.c). `run` gets argv with
 * argv[0] = the command name, and returns the exit code. `usage` is the
 * text that `stamp COMMAND --help` prints (first line: synopsis). */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv, const cli_globals *g);
    const char *summary;
    const char *usage;
} cli_command;

/* Prints "stamp: error: <message>\n" to stderr; returns EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "stamp: error: " + err_message(code) (see errors.h); returns
 * EXIT_FAIL. */
int cli_fail_code(int code);

/* Prints "stamp COMMAND: <message>" and the command's synopsis line plus
 * "try 'stamp COMMAND --help'" to stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Looks the command up in the table; NULL when unknown. */
const cli_command *cli_find(const char *name);

/* If argv holds -h or --help, prints the command's usage to stdout and
 * returns 1 (the caller returns EXIT_OK); else 0. Call it first. */
int cli_wants_help(int argc, char **argv, const char *command);

/* A progress line on stderr ("\r<label> [#####.....] i/n  eta 12s"),
 * drawn only when stderr is a terminal or STAMP_PROGRESS=1, at most ten
 * times a second; cli_progress_done ends the line. Thread-safe enough
 * for one caller thread. */
void cli_progress(const char *label, size_t done, size_t total);
void cli_progress_done(void);

/* cli_progress as a progress_fn (progress.h) for library calls; ctx is
 * ignored. */
void cli_progress_fn(void *ctx, const char *label, size_t done, size_t total);

/* CounterFact scores as JSON, the one form commit records and
 * `eval --json` share (new reference). */
json_t *cli_scores_json(const eval_scores *s);

#endif
