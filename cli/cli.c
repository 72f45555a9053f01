/* cli: error reporting, help and the progress bar shared by every
 * command file (see cli.h). */
#include "cli/cli.h"
#include "base/errors.h"
#include "base/clock.h"

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

static int progress_shown(void)
{
    const char *env = getenv("STAMP_PROGRESS");
    if (env) return strcmp(env, "0") != 0;
    return isatty(STDERR_FILENO);
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

json_t *cli_scores_json(const eval_scores *s)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:I}",
                     "n_facts", (json_int_t)s->n_facts, "es", s->es, "ps",
                     s->ps, "ns", s->ns, "score", s->score, "es_mag",
                     s->es_mag, "ps_mag", s->ps_mag, "ns_mag", s->ns_mag,
                     "es_acc", s->es_acc, "ps_acc", s->ps_acc, "ns_acc",
                     s->ns_acc, "n_paraphrase", (json_int_t)s->n_paraphrase,
                     "n_neighbor", (json_int_t)s->n_neighbor);
}
