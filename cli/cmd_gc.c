/* gc: gives back the space the store's file holds and nothing uses.
 *
 * What stays by design: every commit record and diff, on HEAD's chain or
 * off it, since `show`, `reset N` to a commit reset away and fsck read
 * them; every version (the history of each slot); one current value per
 * edited tensor (a new value replaces the old in place, so there are no
 * superseded copies to drop). What a revert, reset or recommit gave up
 * is LMDB's free pages: the file never shrinks by itself. So gc is
 * LMDB's compacting copy, renamed over data.mdb (store_compact: a kill at
 * any moment leaves the old or the new file whole). It needs the store to
 * itself: another process with it open makes it refuse. */
#include "cli/cli.h"
#include "base/errors.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

const char cmd_gc_usage[] =
    "stamp gc [--json]\n"
    "\n"
    "Compacts the store's file: the pages that reverted and reset commits\n"
    "and replaced tensor values left free are given back to the disk.\n"
    "Nothing the store holds is dropped (every commit, diff and version\n"
    "stays: show, reset and fsck read them). Needs the store to itself:\n"
    "it refuses while another process has the store open. A kill at any\n"
    "moment leaves the store as it was before or after, whole.\n"
    "\n"
    "  --json   one JSON document: {\"before_bytes\", \"after_bytes\"}\n";

int cmd_gc(int argc, char **argv, const cli_globals *g)
{
    int json_out, early = cli_json_only_options(argc, argv, "gc", &json_out);
    if (early >= 0) return early;
    if (optind < argc)
        return cli_usage_error("gc", "unexpected argument '%s'",
                               argv[optind]);
    store *s = NULL;
    uint64_t before = 0, after = 0;
    int rc;
    if ((rc = cli_store_open(&s, g)) ||
        (rc = store_compact(s, &before, &after))) {
        store_close(s);
        return cli_fail_code(rc);
    }
    store_close(s);
    if (json_out) {
        json_t *doc = json_pack("{s:I,s:I}", "before_bytes",
                                (json_int_t)before, "after_bytes",
                                (json_int_t)after);
        if (!doc) return cli_fail_code(err_set(ERR_NOMEM, "out of memory"));
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        printf("compacted the store: %llu bytes before, %llu after "
               "(%llu given back)\n", (unsigned long long)before,
               (unsigned long long)after,
               (unsigned long long)(before > after ? before - after : 0));
    }
    return cli_finish_output(EXIT_OK);
}
