/* fsck: verifies a store from end to end (history_fsck in history.h):
 * records and diffs, the overlay tensors against the chain's hashes, the
 * whole diff chain replayed from HEAD back to the base model, the base
 * model's files against the hashes recorded at init, and the queue and
 * fact states against the chain. Lists every problem; exit 1 when there
 * is any. A read command: it takes no lock and changes nothing. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

const char cmd_fsck_usage[] =
    "stamp fsck [--json]\n"
    "\n"
    "Checks the store: every commit record and its diffs; every edited\n"
    "tensor against the hash recorded by the newest commit that touched it;\n"
    "the diff chain from HEAD back to the base model, undone step by step,\n"
    "reproducing every recorded hash and ending at the base model's exact\n"
    "values; the base model's files against the hashes recorded at init;\n"
    "the queue and the fact states against the commits in effect.\n"
    "\n"
    "  --json   print {\"ok\", \"head\", \"checked\": {...}, \"problems\": [...]}\n"
    "\n"
    "Exit status: 0 when everything checks, 1 when there are problems (each\n"
    "one listed) or the store cannot be read.\n";

int cmd_fsck(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "fsck")) return EXIT_OK;
    int json_out = 0, c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_out = 1; break;
        default: return cli_option_error("fsck", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("fsck", "unexpected argument '%s'",
                               argv[optind]);

    store *s = NULL;
    store_txn *t = NULL;
    json_t *problems = json_array();
    history_fsck_counts k;
    int rc;
    if (!problems) return cli_fail("out of memory");
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = store_txn_begin(s, &t, 0))) goto fail;
    if ((rc = history_fsck(t, problems, &k))) goto fail;
    store_txn_abort(t);
    store_close(s);
    t = NULL;
    s = NULL;

    size_t n = json_array_size(problems);
    if (json_out) {
        json_t *o = json_pack("{s:b,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},s:O}",
            "ok", n == 0, "head", (json_int_t)k.head, "checked",
            "commits", (json_int_t)k.commits, "chain", (json_int_t)k.chain,
            "diffs", (json_int_t)k.diffs, "overlay_tensors",
            (json_int_t)k.overlay, "replayed_steps", (json_int_t)k.replayed,
            "base_tensors", (json_int_t)k.base_tensors, "versions",
            (json_int_t)k.versions, "problems", problems);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(o);
    } else {
        printf("checked %zu commit%s (%zu on the chain to HEAD %llu), %zu "
               "diff%s, %zu edited tensor%s, %zu tensor step%s replayed to "
               "the base, %zu base tensors, %zu fact versions\n",
               k.commits, k.commits == 1 ? "" : "s", k.chain,
               (unsigned long long)k.head, k.diffs, k.diffs == 1 ? "" : "s",
               k.overlay, k.overlay == 1 ? "" : "s", k.replayed,
               k.replayed == 1 ? "" : "s", k.base_tensors, k.versions);
        size_t i;
        json_t *p;
        json_array_foreach(problems, i, p)
            printf("problem: %s\n", json_string_value(p));
        if (!n) printf("ok\n");
    }
    json_decref(problems);
    if (n) return cli_fail("fsck found %zu problem%s", n, n == 1 ? "" : "s");
    return EXIT_OK;
fail:
    json_decref(problems);
    store_txn_abort(t);
    store_close(s);
    return cli_fail_code(rc);
}
