/* show: one commit (its record, its fate, its facts, a per-layer table)
 * or one subject's history (every version of each of its slots: state,
 * target, source file and line, commit). A number or HEAD names a commit
 * when such a commit exists; anything else is a subject. A read command:
 * no writer lock. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "store/factjson.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_show_usage[] =
    "stamp show COMMIT|SUBJECT [--json]\n"
    "\n"
    "COMMIT (a commit id or HEAD): the commit's record, whether it was\n"
    "reverted (by a later revert commit, or exactly: off HEAD's chain),\n"
    "its facts and the per-layer table of its weight update; scores over\n"
    "no prompts show as n/a. SUBJECT: every version of every fact about\n"
    "it, oldest first, with its state (queued, committed, superseded,\n"
    "reverted), source file:line and commit.\n"
    "\n"
    "  --json   one JSON document: {\"commit\": record, \"facts\": [...],\n"
    "           \"head\", \"on_chain\", \"reverted\", \"reverted_by\"} or\n"
    "           {\"subject\": S, \"versions\": [...]}\n";

static double num(json_t *o, const char *key, int *have)
{
    json_t *v = json_object_get(o, key);
    *have = json_is_number(v);
    return *have ? json_number_value(v) : 0;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static void print_scores(const char *label, json_t *sc)
{
    char es[32], ps[32], ns[32];
    if (!json_object_get(sc, "es") && !json_object_get(sc, "ps") &&
        !json_object_get(sc, "ns"))
        return;
    printf("%-9s ES %s  PS %s  NS %s\n", label,
           cli_score_text(es, sizeof es, sc, "es", 1),
           cli_score_text(ps, sizeof ps, sc, "ps", 1),
           cli_score_text(ns, sizeof ns, sc, "ns", 1));
}

static void print_version_line(const store_version *v)
{
    char *text = fact_prompt_text(&v->f);
    printf("  #%-6llu %s ->%s", (unsigned long long)v->id,
           text ? text : v->f.prompt, v->f.target_new);
    if (v->f.target_true[0]) printf("  (was%s)", v->f.target_true);
    printf("  [%s:%zu]\n", v->f.source_file, v->f.source_line);
    free(text);
}

static int show_commit(store_txn *t, uint64_t id, uint64_t head, int json_out)
{
    char *text = NULL;
    json_error_t e;
    int rc = store_commit_get(t, id, &text);
    if (rc) return rc;
    json_t *rec = json_loads(text, 0, &e);
    free(text);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return err_set(ERR_STORE, "the record of commit %llu is not a JSON "
                       "object", (unsigned long long)id);
    }
    int on_chain = 0;
    uint64_t by = 0;
    if ((rc = history_fate(t, id, &on_chain, &by))) {
        json_decref(rec);
        return rc;
    }
    json_t *facts = json_array();
    json_t *vs = json_object_get(rec, "versions");
    store_version *list = NULL;
    size_t n = 0, cap = json_array_size(vs);
    if (cap && !(list = calloc(cap, sizeof *list))) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cap; i++) {
        json_t *vid = json_array_get(vs, i);
        if (!json_is_integer(vid)) continue;
        rc = store_version_get(t, (uint64_t)json_integer_value(vid),
                               &list[n]);
        if (rc) goto out;
        json_array_append_new(facts, factjson_version(&list[n]));
        n++;
    }
    if (json_out) {
        json_t *doc = json_pack("{s:O,s:O,s:b,s:b,s:b,s:o}", "commit", rec,
                                "facts", facts, "head", id == head,
                                "on_chain", on_chain, "reverted",
                                !on_chain || by, "reverted_by",
                                by ? json_integer((json_int_t)by)
                                   : json_null());
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
        goto out;
    }
    json_t *kind = json_object_get(rec, "kind");
    int is_revert = json_is_string(kind) &&
                    !strcmp(json_string_value(kind), "revert");
    printf("commit %llu%s%s\n", (unsigned long long)id,
           id == head ? " (HEAD)" : "", !on_chain || by ? " (reverted)" : "");
    if (by)
        printf("reverted  by commit %llu\n", (unsigned long long)by);
    else if (!on_chain)
        printf("reverted  exactly: off HEAD's chain (reverted while HEAD, "
               "or reset away)\n");
    printf("parent    %lld\n",
           (long long)json_integer_value(json_object_get(rec, "parent")));
    if (is_revert)
        printf("reverts   commit %lld (this commit subtracts its change)\n",
               (long long)json_integer_value(json_object_get(rec, "reverts")));
    printf("time      %s\n", str(rec, "time"));
    if (!is_revert) printf("method    %s\n", str(rec, "method"));
    printf("message   %s\n", str(rec, "message"));
    json_t *failed = json_object_get(rec, "failed");
    printf("facts     %zu", n);
    if (json_array_size(failed)) printf(" (%zu failed)", json_array_size(failed));
    printf("\n");
    json_t *scores = json_object_get(rec, "scores");
    print_scores("before", json_object_get(scores, "before"));
    print_scores("after", json_object_get(scores, "after"));
    json_t *timings = json_object_get(rec, "timings");
    int have;
    double total = num(timings, "total", &have);
    if (have) printf("took      %.2f s\n", total);
    json_t *zl = json_object_get(rec, "z_likely");
    if (json_is_integer(zl))
        printf("targets   %lld of %zu make the new answer likely\n",
               (long long)json_integer_value(zl), n);
    double written = num(rec, "shift_written", &have);
    if (have) printf("written   %.0f%% of the target shift\n", 100 * written);
    json_t *rounds = json_object_get(rec, "rounds"), *r;
    json_t *asked = json_object_get(json_object_get(rec, "hparams"), "rounds");
    if (json_integer_value(asked) > 1) { /* the figures above are round 1's */
        size_t k;
        printf("rounds    %zu; targets likely per round:", json_array_size(rounds));
        json_array_foreach(rounds, k, r)
            printf(" %lld", (long long)json_integer_value(json_object_get(r, "z_likely")));
        if (json_is_string(json_object_get(rec, "rounds_stopped")))
            printf(" (stopped: %s)", str(rec, "rounds_stopped"));
        printf("\n");
        json_array_foreach(rounds, k, r) { /* "step" since 2026-12-05 */
            double step = num(r, "step", &have);
            if (have && step > 0 && step < 1)
                printf("          round %zu solved again toward 1/%.0f of "
                       "its shift\n", k + 1, 1 / step);
        }
    }
    if (n) printf("\nfacts:\n");
    for (size_t i = 0; i < n; i++) print_version_line(&list[i]);
    size_t i;
    json_t *f;
    json_array_foreach(failed, i, f)
        printf("  failed #%lld: %s\n",
               (long long)json_integer_value(json_object_get(f, "version")),
               str(f, "reason"));
    json_t *layers = json_object_get(rec, "layers");
    if (json_array_size(layers)) {
        printf("\n%-6s %-28s %11s %11s %11s %5s %8s\n", "layer", "tensor",
               "delta_norm", "rel_norm", "max_abs", "rank", "leverage");
        json_t *l;
        json_array_foreach(layers, i, l) {
            int h1, h2, h3, h4;
            double dn = num(l, "delta_norm", &h1), rn = num(l, "rel_norm", &h2),
                   ma = num(l, "max_abs", &h3), lev = num(l, "leverage", &h4);
            printf("%-6lld %-28s %11.4g %11.4g %11.4g %5lld",
                   (long long)json_integer_value(json_object_get(l, "layer")),
                   str(l, "tensor"), dn, rn, ma,
                   (long long)json_integer_value(json_object_get(l, "rank")));
            if (h4) printf(" %8.3f", lev);
            else printf(" %8s", "-");
            printf("\n");
        }
        /* updates confined to the null space of the key statistics */
        const char *sep = "\nconfined to the null space of the key statistics:";
        json_array_foreach(layers, i, l) {
            json_t *dim = json_object_get(l, "nullspace_dim");
            if (!json_is_integer(dim)) continue;
            printf("%s %lld directions (layer %lld)", sep,
                   (long long)json_integer_value(dim),
                   (long long)json_integer_value(json_object_get(l, "layer")));
            sep = ",";
        }
        if (sep[0] == ',') printf("\n");
        json_t *joint = json_object_get(json_object_get(rec, "hparams"),
                                        "joint_layers");
        if (json_integer_value(joint) > 0)
            printf("\nlayers solved together (joint_layers): a layer's "
                   "leverage is its share of the whole shift left at its "
                   "turn\n");
    }
out:
    store_versions_free(list, n);
    json_decref(facts);
    json_decref(rec);
    return rc;
}

static int show_subject(store_txn *t, const char *subject,
                        const store_version *v, size_t n, int json_out)
{
    if (json_out) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, factjson_version(&v[i]));
        json_t *doc = json_pack("{s:s,s:o}", "subject", subject, "versions",
                                arr);
        if (!doc) return err_set(ERR_NOMEM, "out of memory");
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
        return 0;
    }
    (void)t;
    printf("subject '%s': %zu version%s\n", subject, n, n == 1 ? "" : "s");
    /* group by slot, in order of each slot's first version */
    char **slots = calloc(n, sizeof *slots);
    int *done = calloc(n, sizeof *done);
    if (!slots || !done) {
        free(slots);
        free(done);
        return err_set(ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) slots[i] = fact_slot(&v[i].f);
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        printf("\n  %s", v[i].f.prompt);
        if (v[i].f.relation[0]) printf("  [%s]", v[i].f.relation);
        printf("\n");
        for (size_t k = i; k < n; k++) {
            if (done[k] || !slots[k] || !slots[i] || strcmp(slots[k], slots[i]))
                continue;
            done[k] = 1;
            const store_version *x = &v[k];
            printf("    v%-3llu #%-6llu %-24s %-11s", (unsigned long long)x->number,
                   (unsigned long long)x->id, x->f.target_new,
                   factjson_state(x->state));
            if (x->state == VERSION_COMMITTED || x->state == VERSION_REVERTED)
                printf(" commit %-4llu", (unsigned long long)x->commit_id);
            printf(" %s:%zu  import %llu\n", x->f.source_file,
                   x->f.source_line, (unsigned long long)x->import_id);
        }
    }
    for (size_t i = 0; i < n; i++) free(slots[i]);
    free(slots);
    free(done);
    return 0;
}

int cmd_show(int argc, char **argv, const cli_globals *g)
{
    int json_out, early = cli_json_only_options(argc, argv, "show", &json_out);
    if (early >= 0) return early;
    if (argc - optind != 1)
        return cli_usage_error("show", "give one COMMIT or SUBJECT");
    const char *what = argv[optind];

    store *s = NULL;
    store_txn *t = NULL;
    store_version *v = NULL;
    size_t n = 0;
    uint64_t head = 0, id = 0;
    int rc, exit_code = EXIT_FAIL, is_number = !cli_parse_u64(what, &id);
    if ((rc = cli_store_open(&s, g)) ||
        (rc = store_txn_begin(s, &t, 0)) || (rc = store_head(t, &head)))
        goto fail;
    if (!strcmp(what, "HEAD")) {
        if (!head) {
            cli_fail("HEAD is the base model: there is no commit to show");
            goto out;
        }
        id = head;
    } else if (is_number) {
        char *json = NULL;
        rc = store_commit_get(t, id, &json);
        free(json);
        if (rc == ERR_NOTFOUND) id = 0;
        else if (rc) goto fail;
    }
    if (id) {
        if ((rc = show_commit(t, id, head, json_out))) goto fail;
    } else {
        if ((rc = store_subject_history(t, what, &v, &n))) goto fail;
        if (n == 0) {
            cli_fail("no commit or subject '%s'", what);
            goto out;
        }
        if ((rc = show_subject(t, what, v, n, json_out))) goto fail;
    }
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_fail_code(rc);
out:
    store_versions_free(v, n);
    store_txn_abort(t);
    store_close(s);
    return exit_code;
}
