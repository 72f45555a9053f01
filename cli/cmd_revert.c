/* revert: undoes one commit. HEAD comes off exactly (its tensors back to
 * their "before" bits, checked by hash; its facts REVERTED, the facts it
 * superseded COMMITTED again; HEAD -> its parent). An older commit is
 * undone semantically by a new commit of kind "revert", as git revert
 * does. Everything happens in one write transaction (history.h). */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "store/modelview.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

const char cmd_revert_usage[] =
    "stamp revert COMMIT [-m MSG] [--json]\n"
    "\n"
    "Undoes COMMIT (an id, HEAD, HEAD~N).\n"
    "\n"
    "COMMIT = HEAD: exactly. Every tensor the commit edited returns to the\n"
    "bits it had before (checked against the recorded hash); its facts\n"
    "become reverted, the facts it had superseded are committed again, and\n"
    "HEAD moves to its parent.\n"
    "\n"
    "An older COMMIT: a new commit of kind \"revert\" that subtracts the old\n"
    "commit's change from the current tensors (new = current - (after -\n"
    "before)): the later commits stay, so this is a semantic undo, not a\n"
    "bit-exact one (use 'stamp reset' for that). The old commit's facts\n"
    "become reverted.\n"
    "\n"
    "  -m, --message MSG  message of the revert commit (older commits only)\n"
    "  --json             print what was done as JSON\n"
    "\n"
    "Nothing changes when it fails (a commit off the chain, already\n"
    "reverted, the base model, or a store whose tensors do not match their\n"
    "records: see 'stamp fsck').\n";

int cmd_revert(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"message", required_argument, 0, 'm'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "revert")) return EXIT_OK;
    const char *message = NULL;
    int json_out = 0, c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":m:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': message = optarg; break;
        case 'j': json_out = 1; break;
        default: return cli_option_error("revert", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("revert", "which commit? (an id, HEAD, HEAD~N)");
    if (optind + 1 < argc)
        return cli_usage_error("revert", "unexpected argument '%s'",
                               argv[optind + 1]);
    const char *spec = argv[optind];

    store *s = NULL;
    store_txn *t = NULL;
    history_result r;
    uint64_t id = 0;
    int rc;
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = store_txn_begin(s, &t, 1))) goto fail;
    if ((rc = history_resolve(t, spec, &id)) == ERR_INVALID) {
        /* a malformed name is bad usage; an unknown commit a failure */
        store_txn_abort(t);
        store_close(s);
        return cli_usage_error("revert", "%s", err_message(rc));
    }
    if (rc) goto fail;
    /* a damaged base model would be "restored" into damage: refuse it */
    if ((rc = modelview_verify_base(t))) goto fail;
    if ((rc = history_revert(t, id, message, &r))) goto fail;
    rc = store_txn_commit(t);
    t = NULL;
    if (rc) goto fail;
    store_close(s);

    int exact = r.new_commit == 0;
    if (json_out) {
        json_t *o = json_pack("{s:I,s:b,s:I,s:I,s:o,s:I,s:I,s:I,s:I}",
            "reverted", (json_int_t)id, "exact", exact, "old_head",
            (json_int_t)r.old_head, "head", (json_int_t)r.new_head,
            "commit", exact ? json_null() : json_integer((json_int_t)r.new_commit),
            "tensors", (json_int_t)r.tensors, "tensors_at_base",
            (json_int_t)r.tensors_deleted, "facts_reverted",
            (json_int_t)r.reverted, "facts_restored", (json_int_t)r.restored);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(o);
    } else if (exact) {
        printf("reverted commit %llu exactly: HEAD is now %llu\n",
               (unsigned long long)id, (unsigned long long)r.new_head);
        printf("  %zu tensor%s restored bit for bit (%zu back at the base), "
               "%zu fact%s reverted, %zu restored\n", r.tensors,
               r.tensors == 1 ? "" : "s", r.tensors_deleted, r.reverted,
               r.reverted == 1 ? "" : "s", r.restored);
    } else {
        printf("commit %llu reverts commit %llu: HEAD is now %llu\n",
               (unsigned long long)r.new_commit, (unsigned long long)id,
               (unsigned long long)r.new_head);
        printf("  %zu tensor%s changed, %zu fact%s reverted, %zu restored\n",
               r.tensors, r.tensors == 1 ? "" : "s", r.reverted,
               r.reverted == 1 ? "" : "s", r.restored);
    }
    return EXIT_OK;
fail:
    store_txn_abort(t);
    store_close(s);
    return cli_fail_code(rc);
}
