/* report: the store's history as one self-contained HTML page (inline
 * SVG charts and CSS, no script, no external file): the base model,
 * each commit's scores, diff size, per-layer update norm and time per
 * phase, the facts that failed, the queue (lib/repo/report.h). With -o
 * the file is written atomically: the whole page or, on any failure,
 * the file as it was. A read command: no writer lock. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/report.h"
#include "store/store.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_report_usage[] =
    "stamp report [-o FILE.html] [--eval FILE.json] [--commits N]\n"
    "\n"
    "Writes the store's history as one HTML page that needs nothing else\n"
    "(charts drawn in SVG, no script, no external file) and reads on a\n"
    "phone as on a wide screen: the base model; per commit the message,\n"
    "date, method, facts, ES/PS/NS before and after, diff size, per-layer\n"
    "update norm and time per phase, as a table and as charts; reverted\n"
    "commits marked; the facts that failed to commit; the queue; the\n"
    "commits off HEAD's chain. A store without commits gives a page that\n"
    "says so. The newest commits are listed one by one, older ones summed\n"
    "per 100; charts of more than 400 commits draw means of groups.\n"
    "Commit records do not hold retention nor which edits did not take:\n"
    "give --eval the JSON of 'stamp eval --facts --json' to show them.\n"
    "\n"
    "  -o, --output FILE  write the page to FILE (atomically: a temporary\n"
    "                     file renamed into place); without -o, or with\n"
    "                     -o -, the page goes to standard output\n"
    "  --eval FILE        include that evaluation: scores, retention,\n"
    "                     edits not taken and facts lost, with prompts\n"
    "  --commits N        commits listed one by one (default 50)\n";

int cmd_report(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"eval", required_argument, NULL, 'e'},
        {"commits", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *eval_file = NULL;
    report_options ro;
    report_options_init(&ro);
    int c;
    if (cli_wants_help(argc, argv, "report")) return EXIT_OK;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'e': eval_file = optarg; break;
        case 'n':
            if (cli_parse_size(optarg, &ro.table_commits) || !ro.table_commits)
                return cli_usage_error("report", "--commits wants a count "
                                       "(1 or more), not '%s'", optarg);
            break;
        default: return cli_option_error("report", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("report", "unexpected argument '%s'",
                               argv[optind]);
    if (output && !*output)
        return cli_usage_error("report", "-o wants a file name");

    json_t *eval = NULL;
    if (eval_file) {
        json_error_t e;
        eval = json_load_file(eval_file, 0, &e);
        if (!eval && e.line > 0)
            return cli_fail("cannot read the evaluation '%s': line %d: %s",
                            eval_file, e.line, e.text);
        if (!eval)
            return cli_fail("cannot read the evaluation '%s': %s", eval_file,
                            e.text);
        if (!json_is_object(eval) || !json_object_get(eval, "scores")) {
            json_decref(eval);
            return cli_fail("'%s' is not the output of 'stamp eval --json'",
                            eval_file);
        }
        ro.eval = eval;
        ro.eval_source = eval_file;
    }

    store *s = NULL;
    int rc, exit_code = EXIT_FAIL;
    if ((rc = cli_store_open(&s, g))) goto fail;
    if (output && strcmp(output, "-")) {
        if ((rc = report_write_file(s, &ro, output))) goto fail;
        exit_code = EXIT_OK;
    } else {
        /* built whole before the first byte goes out */
        char *html = NULL;
        size_t len = 0;
        if ((rc = report_build(s, &ro, &html, &len))) goto fail;
        errno = 0;
        size_t put = fwrite(html, 1, len, stdout);
        int e = errno;
        free(html);
        if (put != len) {
            /* said here with its reason, once: the end-of-output check
             * would find the same error and could not name it */
            cli_fail("cannot write output: %s", e ? strerror(e) : "write error");
            clearerr(stdout);
            goto out;
        }
        exit_code = cli_finish_output(EXIT_OK);
    }
    goto out;
fail:
    cli_fail_code(rc);
out:
    store_close(s);
    json_decref(eval);
    return exit_code;
}
