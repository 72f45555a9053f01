/* log: the commits in effect, newest first, following parent links from
 * HEAD down to the base model (commits reset away, or a HEAD reverted
 * exactly, are off that chain: not listed, only counted). One line per
 * commit: id, time, facts, method, scores after the commit, message; a
 * revert commit says which commit it reverts, a commit that a later
 * revert commit undid says so. A read command: no writer lock. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_log_usage[] =
    "stamp log [--json]\n"
    "\n"
    "Lists the commits from HEAD back to the base model, newest first:\n"
    "id, time, facts, method, ES/PS/NS after the commit (n/a: the facts\n"
    "had no such prompts; -: not scored), message. A revert commit shows\n"
    "as \"revert of commit N\"; a commit it undid is marked \"reverted by\n"
    "M\". Commits off the chain (reverted while HEAD, or reset away) are\n"
    "not listed but counted at the end; 'stamp show N' shows one.\n"
    "\n"
    "  --json   one JSON document: {\"head\": N, \"commits\": [records]};\n"
    "           a record that a revert commit undid has \"reverted_by\": M\n"
    "           ('stamp status --json' counts the commits off the chain)\n";

static void print_score(json_t *after, const char *name, const char *label)
{
    char buf[32];
    printf(" %s %s", label, cli_score_text(buf, sizeof buf, after, name, 2));
}

int cmd_log(int argc, char **argv, const cli_globals *g)
{
    int json_out, early = cli_json_only_options(argc, argv, "log", &json_out);
    if (early >= 0) return early;
    if (optind < argc)
        return cli_usage_error("log", "unexpected argument '%s'",
                               argv[optind]);

    store *s = NULL;
    store_txn *t = NULL;
    uint64_t head = 0;
    history_link *chain = NULL;
    size_t n_chain = 0, off_chain = 0;
    json_t *list = json_array();
    int rc = 0, exit_code = EXIT_FAIL;
    if (!list) return cli_fail("out of memory");
    if ((rc = cli_store_open(&s, g)) || (rc = store_txn_begin(s, &t, 0)) ||
        (rc = store_head(t, &head)) ||
        (rc = history_chain(t, &chain, &n_chain, &off_chain)))
        goto fail;
    for (size_t i = 0; i < n_chain; i++) {
        json_t *rec = NULL;
        if ((rc = history_record(t, chain[i].id, &rec))) goto fail;
        if (chain[i].reverted_by)
            json_object_set_new(rec, "reverted_by", json_integer(
                (json_int_t)chain[i].reverted_by));
        json_array_append_new(list, rec);
    }
    if (json_out) {
        json_t *doc = json_pack("{s:I,s:O}", "head", (json_int_t)head,
                                "commits", list);
        if (!doc) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto fail;
        }
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        if (json_array_size(list) == 0)
            printf("no commits: HEAD is the base model\n");
        size_t i;
        json_t *rec;
        json_array_foreach(list, i, rec) {
            json_t *nf = json_object_get(rec, "n_facts");
            json_t *vs = json_object_get(rec, "versions");
            json_t *after = json_object_get(json_object_get(rec, "scores"),
                                            "after");
            const char *time = json_string_value(json_object_get(rec, "time"));
            const char *method =
                json_string_value(json_object_get(rec, "method"));
            const char *msg =
                json_string_value(json_object_get(rec, "message"));
            long long facts = json_is_integer(nf) ? json_integer_value(nf)
                              : json_is_array(vs) ? (long long)json_array_size(vs)
                                                  : 0;
            printf("%-4llu %s  ", (unsigned long long)chain[i].id,
                   time ? time : "-");
            if (chain[i].reverts) {
                printf("revert of commit %llu",
                       (unsigned long long)chain[i].reverts);
            } else {
                printf("%4lld fact%s  %-5s", facts, facts == 1 ? " " : "s",
                       method ? method : "-");
                print_score(after, "es", "ES");
                print_score(after, "ps", "PS");
                print_score(after, "ns", "NS");
            }
            if (chain[i].reverted_by)
                printf("  [reverted by %llu]",
                       (unsigned long long)chain[i].reverted_by);
            printf("  %s\n", msg ? msg : "");
        }
        if (off_chain)
            printf("(%zu commit%s off the chain: reverted while HEAD or "
                   "reset away; 'stamp show ID' shows one)\n", off_chain,
                   off_chain == 1 ? "" : "s");
    }
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_fail_code(rc);
out:
    json_decref(list);
    free(chain);
    store_txn_abort(t);
    store_close(s);
    return exit_code;
}
