/* reset: returns the store exactly to the state right after a commit of
 * HEAD's chain (or to the base model): undoes the commits above it one
 * by one, newest first, bit for bit, with their fact state changes, in
 * one write transaction (history.h). The cost grows with the commits
 * undone, not with the length of the history. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "store/modelview.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

const char cmd_reset_usage[] =
    "stamp reset COMMIT|base [--json]\n"
    "\n"
    "Returns exactly to the state right after COMMIT (an id, HEAD~N, or\n"
    "'base' for the unedited model): the commits above it are undone one\n"
    "by one, newest first; every tensor ends with the hash recorded for\n"
    "that state, the facts of the undone commits become reverted and those\n"
    "they had superseded are committed again. The undone commits stay in\n"
    "the store (off the chain, like git's reflog) but cannot be reset to.\n"
    "\n"
    "  --json   print what was done as JSON\n"
    "\n"
    "A commit that is not on HEAD's chain (reverted or reset away) is\n"
    "refused, and nothing changes when anything fails.\n";

int cmd_reset(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "reset")) return EXIT_OK;
    int json_out = 0, c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_out = 1; break;
        default: return cli_option_error("reset", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("reset", "which commit? (an id, HEAD~N or "
                               "base)");
    if (optind + 1 < argc)
        return cli_usage_error("reset", "unexpected argument '%s'",
                               argv[optind + 1]);

    store *s = NULL;
    store_txn *t = NULL;
    history_result r;
    uint64_t id = 0;
    int rc;
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = store_txn_begin(s, &t, 1))) goto fail;
    if ((rc = history_resolve(t, argv[optind], &id)) == ERR_INVALID) {
        /* a malformed name is bad usage; an unknown commit a failure */
        store_txn_abort(t);
        store_close(s);
        return cli_usage_error("reset", "%s", err_message(rc));
    }
    if (rc) goto fail;
    /* a damaged base model would be "restored" into damage: refuse it */
    if ((rc = modelview_verify_base(t))) goto fail;
    if ((rc = history_reset(t, id, &r))) goto fail;
    rc = r.commits ? store_txn_commit(t) : 0;
    if (!r.commits) store_txn_abort(t);
    t = NULL;
    if (rc) goto fail;
    store_close(s);

    if (json_out) {
        json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "old_head",
            (json_int_t)r.old_head, "head", (json_int_t)r.new_head,
            "commits_undone", (json_int_t)r.commits, "tensors",
            (json_int_t)r.tensors, "facts_reverted", (json_int_t)r.reverted,
            "facts_restored", (json_int_t)r.restored);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(o);
    } else {
        char where[48];
        if (r.new_head)
            snprintf(where, sizeof where, "commit %llu",
                     (unsigned long long)r.new_head);
        else
            snprintf(where, sizeof where, "the base model");
        if (!r.commits) {
            printf("HEAD is already %s: nothing to do\n", where);
            return EXIT_OK;
        }
        printf("HEAD is now %s (%zu commit%s undone)\n", where, r.commits,
               r.commits == 1 ? "" : "s");
        printf("  %zu tensor%s restored bit for bit (%zu back at the base), "
               "%zu fact%s reverted, %zu restored\n", r.tensors,
               r.tensors == 1 ? "" : "s", r.tensors_deleted, r.reverted,
               r.reverted == 1 ? "" : "s", r.restored);
    }
    return EXIT_OK;
fail:
    store_txn_abort(t);
    store_close(s);
    return cli_fail_code(rc);
}
