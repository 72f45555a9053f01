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
#include "store/store.h"

#include <jansson.h>
#include <stdint.h>
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

/* Option parsing, the same in every command: call cli_options_begin()
 * before the getopt_long loop, give getopt_long a short-option string
 * that starts with ':' (so that a missing value comes back as ':'), and
 * end the switch with `default: return cli_option_error(CMD, c, argv);`.
 * getopt's own messages are off: each bad option gets one message,
 * "stamp CMD: unknown option '--x'" or "stamp CMD: option '--x' needs a
 * value", with the synopsis (cli_usage_error); returns EXIT_USAGE. */
void cli_options_begin(void);
int cli_option_error(const char *command, int c, char **argv);

/* The one strict parser of counts and ids on the command line: decimal
 * digits only (no sign, space, junk or empty text) that fit the type.
 * 0 on success, -1 otherwise (*out untouched); the caller reports the
 * usage error, naming the option. */
int cli_parse_u64(const char *text, uint64_t *out);
int cli_parse_size(const char *text, size_t *out);

/* store_open for commands: the store with the command layer's lock-wait
 * notice installed (a writer that finds the lock held says on stderr
 * whom it waits for and how long, before it waits). */
int cli_store_open(store **out, const cli_globals *g);

/* The end of every command (the dispatch in stamp.c calls it once with
 * the command's exit code): flushes stdout and, when the output could
 * not be written (a full disk, a closed pipe, /dev/full), prints
 * "stamp: error: cannot write output: REASON" and returns EXIT_FAIL;
 * else returns exit_code. Reports once however often it is called. */
int cli_finish_output(int exit_code);

/* Looks the command up in the table; NULL when unknown. */
const cli_command *cli_find(const char *name);

/* If argv holds -h or --help, prints the command's usage to stdout and
 * returns 1 (the caller returns EXIT_OK); else 0. Call it first. */
int cli_wants_help(int argc, char **argv, const char *command);

/* The options of a read command whose only option is --json: -1 when
 * the command is to run (*json_out set, optind at its first operand),
 * else the exit code to return (--help printed, or bad usage). */
int cli_json_only_options(int argc, char **argv, const char *command,
                          int *json_out);

/* A progress line on stderr ("\r<label> [#####.....] i/n  eta 12s"),
 * drawn only when stderr is a terminal or STAMP_PROGRESS=1, at most ten
 * times a second; cli_progress_done ends the line. Thread-safe enough
 * for one caller thread. */
void cli_progress(const char *label, size_t done, size_t total);
void cli_progress_done(void);

/* Where progress is shown (stderr a terminal, or STAMP_PROGRESS=1):
 * "stamp: threads: automatic: 1 (...)", how the thread count was chosen
 * (threads_count_source), for the commands that compute. */
void cli_note_threads(void);

/* cli_progress as a progress_fn (progress.h) for library calls; ctx is
 * ignored. */
void cli_progress_fn(void *ctx, const char *label, size_t done, size_t total);

/* A score of a commit record or of `eval --json` (commit_scores_json)
 * as text: "%.*f" with `decimals`; "n/a" when it was taken over no
 * prompts (null, or its count is 0: "n_paraphrase" for "ps",
 * "n_neighbor" for "ns", "n_facts" for the rest; records older than the
 * nulls have the counts); "-" when it was not taken (absent: a commit
 * with --no-scores). `scores` may be NULL. Returns buf. */
const char *cli_score_text(char *buf, size_t size, const json_t *scores,
                           const char *key, int decimals);

/* An MPI rank > 0 (cli/worker.c): serves rank 0 until it ends the
 * distributed work; returns the exit code. */
int cli_worker_main(int argc, char **argv);

#endif
