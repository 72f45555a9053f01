/* log: the commits in effect, newest first, following parent links from
 * HEAD down to the base model (commits reset away are off that chain and
 * not shown). One line per commit: id, time, facts, method, scores after
 * the commit, message. A read command: no writer lock. */
#include "cli/cli.h"
#include "base/errors.h"
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
    "id, time, facts, method, ES/PS/NS after the commit, message.\n"
    "\n"
    "  --json   one JSON document: {\"head\": N, \"commits\": [records]}\n";

/* The commit record `id` parsed, or NULL with an error set. */
static json_t *load_record(store_txn *t, uint64_t id, int *rc)
{
    char *text = NULL;
    json_error_t e;
    if ((*rc = store_commit_get(t, id, &text))) return NULL;
    json_t *rec = json_loads(text, 0, &e);
    free(text);
    if (!rec || !json_is_object(rec)) {
        json_decref(rec);
        *rc = err_set(ERR_STORE, "the record of commit %llu is not a JSON "
                      "object: %s", (unsigned long long)id,
                      rec ? "wrong type" : e.text);
        return NULL;
    }
    return rec;
}

static void print_score(json_t *after, const char *name, const char *label)
{
    json_t *v = json_object_get(after, name);
    if (json_is_number(v)) printf(" %s %.2f", label, json_number_value(v));
    else printf(" %s -", label);
}

int cmd_log(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    int json_out = 0, c;
    if (cli_wants_help(argc, argv, "log")) return EXIT_OK;
    optind = 0;
    while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
        if (c == 'j') json_out = 1;
        else return cli_usage_error("log", "unknown option");
    }
    if (optind < argc)
        return cli_usage_error("log", "unexpected argument '%s'",
                               argv[optind]);

    store *s = NULL;
    store_txn *t = NULL;
    uint64_t head = 0, id;
    json_t *list = json_array();
    int rc = 0, exit_code = EXIT_FAIL;
    if (!list) return cli_fail("out of memory");
    if ((rc = store_open(&s, g->store_dir)) ||
        (rc = store_txn_begin(s, &t, 0)) || (rc = store_head(t, &head)))
        goto fail;
    for (id = head; id;) {
        json_t *rec = load_record(t, id, &rc);
        if (!rec) goto fail;
        json_array_append_new(list, rec);
        json_t *p = json_object_get(rec, "parent");
        json_int_t parent = json_is_integer(p) ? json_integer_value(p) : -1;
        if (parent < 0 || (uint64_t)parent >= id) {
            rc = err_set(ERR_STORE, "commit %llu has a bad parent (the chain "
                         "from HEAD must go down to 0)",
                         (unsigned long long)id);
            goto fail;
        }
        id = (uint64_t)parent;
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
    } else if (json_array_size(list) == 0) {
        printf("no commits: HEAD is the base model\n");
    } else {
        size_t i;
        json_t *rec;
        json_array_foreach(list, i, rec) {
            json_t *kind = json_object_get(rec, "kind");
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
            printf("%-4lld %s  %4lld fact%s  %-5s",
                   (long long)json_integer_value(json_object_get(rec, "id")),
                   time ? time : "-", facts, facts == 1 ? " " : "s",
                   method ? method : "-");
            print_score(after, "es", "ES");
            print_score(after, "ps", "PS");
            print_score(after, "ns", "NS");
            if (json_is_string(kind) &&
                !strcmp(json_string_value(kind), "revert"))
                printf("  revert of %lld",
                       (long long)json_integer_value(
                           json_object_get(rec, "reverts")));
            printf("  %s\n", msg ? msg : "");
        }
    }
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_fail_code(rc);
out:
    json_decref(list);
    store_txn_abort(t);
    store_close(s);
    return exit_code;
}
