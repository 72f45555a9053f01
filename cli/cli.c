/* cli: error reporting, option and number parsing, help, the progress
 * bar and the end-of-output check shared by every command file (see
 * cli.h). */
#include "cli/cli.h"
#include "base/errors.h"
#include "base/clock.h"
#include "base/threads.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("stamp: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

int cli_fail_code(int code) { return cli_fail("%s", err_message(code)); }

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    const cli_command *c = cli_find(command);
    fprintf(stderr, "stamp %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c) {
        const char *nl = strchr(c->usage, '\n');
        int len = nl ? (int)(nl - c->usage) : (int)strlen(c->usage);
        fprintf(stderr, "usage: %.*s\n", len, c->usage);
    }
    fprintf(stderr, "try 'stamp %s --help'\n", command);
    return EXIT_USAGE;
}

void cli_options_begin(void)
{
    optind = 0;
    opterr = 0;
}

int cli_option_error(const char *command, int c, char **argv)
{
    /* getopt_long leaves optind past the bad element in every case but a
     * bad letter inside a cluster ("-jx"); optopt is the letter of a
     * short option (or the value of a long one that lacks its value),
     * 0 for an unknown long option. */
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    char name[80];
    int is_long = arg[0] == '-' && arg[1] == '-';
    if (is_long || !optopt)
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(name, sizeof name, "-%c", optopt);
    if (c == ':')
        return cli_usage_error(command, "option '%s' needs a value", name);
    if (is_long && optopt && strchr(arg, '='))
        return cli_usage_error(command, "option '%s' takes no value", name);
    return cli_usage_error(command, "unknown option '%s'", name);
}

int cli_parse_u64(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    if (!text || !*text) return -1;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = 10 * v + d;
    }
    *out = v;
    return 0;
}

int cli_parse_size(const char *text, size_t *out)
{
    uint64_t v;
    if (cli_parse_u64(text, &v) || v > SIZE_MAX) return -1;
    *out = (size_t)v;
    return 0;
}

static void lock_wait_notice(void *ctx, const char *dir, long pid,
                             double seconds)
{
    (void)ctx;
    cli_progress_done();
    if (pid > 0)
        fprintf(stderr, "stamp: waiting for the lock of the store '%s' held "
                "by pid %ld ... (STAMP_LOCK_WAIT=%g s)\n", dir, pid, seconds);
    else
        fprintf(stderr, "stamp: waiting for the lock of the store '%s' ... "
                "(STAMP_LOCK_WAIT=%g s)\n", dir, seconds);
}

int cli_store_open(store **out, const cli_globals *g)
{
    int rc = store_open(out, g->store_dir);
    if (!rc) store_set_lock_wait(*out, lock_wait_notice, NULL);
    return rc;
}

int cli_finish_output(int exit_code)
{
    static int reported;
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (!bad || reported) return bad ? EXIT_FAIL : exit_code;
    reported = 1;
    cli_fail("cannot write output: %s", e ? strerror(e) : "write error");
    return EXIT_FAIL;
}

int cli_wants_help(int argc, char **argv, const char *command)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            const cli_command *c = cli_find(command);
            if (c) fputs(c->usage, stdout);
            return 1;
        }
    }
    return 0;
}

int cli_json_only_options(int argc, char **argv, const char *command,
                          int *json_out)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *json_out = 0;
    if (cli_wants_help(argc, argv, command)) return EXIT_OK;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":j", opts, NULL)) != -1) {
        if (c == 'j') *json_out = 1;
        else return cli_option_error(command, c, argv);
    }
    return -1;
}

static int progress_shown(void)
{
    const char *env = getenv("STAMP_PROGRESS");
    if (env) return strcmp(env, "0") != 0;
    return isatty(STDERR_FILENO);
}

void cli_note_threads(void)
{
    if (progress_shown())
        fprintf(stderr, "stamp: threads: %s\n", threads_count_source());
}

static double progress_start, progress_last;
static char progress_label[64];
static int progress_drawn;

void cli_progress(const char *label, size_t done, size_t total)
{
    if (!progress_shown()) return;
    double t = clock_seconds();
    if (strncmp(label, progress_label, sizeof progress_label - 1)) {
        if (progress_drawn) fputc('\n', stderr);
        snprintf(progress_label, sizeof progress_label, "%s", label);
        progress_start = t;
        progress_last = 0;
    }
    if (done < total && t - progress_last < 0.1) return;
    progress_last = t;
    int width = 30, filled = total ? (int)(width * done / total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    double elapsed = t - progress_start;
    double eta = done ? elapsed * (double)(total - done) / done : 0;
    fprintf(stderr, "\r  %-18s [%s] %zu/%zu  %5.1fs", label, bar, done,
            total, done < total ? eta : elapsed);
    if (done < total) fputs(" left", stderr);
    else fputs("     ", stderr);
    fflush(stderr);
    progress_drawn = 1;
}

void cli_progress_fn(void *ctx, const char *label, size_t done, size_t total)
{
    (void)ctx;
    cli_progress(label, done, total);
}

void cli_progress_done(void)
{
    if (progress_drawn) fputc('\n', stderr);
    progress_drawn = 0;
    progress_label[0] = '\0';
}

const char *cli_score_text(char *buf, size_t size, const json_t *scores,
                           const char *key, int decimals)
{
    json_t *v = json_object_get(scores, key);
    const char *count = !strcmp(key, "ps")   ? "n_paraphrase"
                        : !strcmp(key, "ns") ? "n_neighbor"
                                             : "n_facts";
    json_t *n = count ? json_object_get(scores, count) : NULL;
    if (!v) snprintf(buf, size, "-");
    else if (json_is_null(v) || (json_is_integer(n) && !json_integer_value(n)))
        snprintf(buf, size, "n/a");
    else if (json_is_number(v))
        snprintf(buf, size, "%.*f", decimals, json_number_value(v));
    else snprintf(buf, size, "-");
    return buf;
}
