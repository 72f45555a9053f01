/* diff: what changed between two versions of the model: the facts in
 * effect (added, changed to another target, reverted) and, per edited
 * tensor, the size of the weight change: Frobenius norm, relative to the
 * earlier tensor, largest absolute change and numerical rank. Both ends
 * are rebuilt exactly from the current tensors through the commits'
 * diffs (history.h), so any two commits compare, even ones off the chain.
 * A read command: it takes no lock. */
#include "cli/cli.h"
#include "base/errors.h"
#include "facts/fact.h"
#include "repo/history.h"
#include "store/store.h"
#include "repo/wdiff.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_diff_usage[] =
    "stamp diff [A [B]] [--json]\n"
    "\n"
    "Shows what changed from version A of the model to version B: facts\n"
    "added, changed (another target for the same subject and relation) and\n"
    "reverted (in effect at A, not at B), and for every tensor edited in\n"
    "between: ||dW||, the Frobenius norm of the change; change / weight,\n"
    "that norm as a share of the tensor's norm at A (||dW|| / ||W||);\n"
    "max |dW|, the largest change of one weight; and the numerical rank\n"
    "of the change.\n"
    "\n"
    "A and B are commit ids, HEAD, HEAD~N or base. Without arguments: HEAD's\n"
    "parent to HEAD (what the newest commit did); with one: A to HEAD.\n"
    "A malformed name is bad usage (exit 2); a commit that does not exist\n"
    "fails (exit 1).\n"
    "\n"
    "  --json   print one JSON document\n";

typedef struct {
    char *slot;
    store_version v;
} fact_row;

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const fact_row *)a)->slot, ((const fact_row *)b)->slot);
}

static void rows_free(fact_row *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].slot);
        store_version_free(&r[i].v);
    }
    free(r);
}

/* The facts in effect at commit id, sorted by slot. */
static int facts_rows(store_txn *t, uint64_t id, fact_row **out, size_t *n)
{
    uint64_t *ids = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    int rc = history_facts_at(t, id, &ids, &k);
    if (rc) return rc;
    fact_row *r = calloc(k ? k : 1, sizeof *r);
    if (!r) {
        free(ids);
        return err_set(ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < k; i++) {
        if ((rc = store_version_get(t, ids[i], &r[i].v))) break;
        if (!(r[i].slot = fact_slot(&r[i].v.f))) {
            rc = err_set(ERR_NOMEM, "out of memory");
            break;
        }
    }
    free(ids);
    if (rc) {
        rows_free(r, k);
        return rc;
    }
    qsort(r, k, sizeof *r, cmp_row);
    *out = r;
    *n = k;
    return 0;
}

static json_t *fact_json(const store_version *v)
{
    char *prompt = fact_prompt_text(&v->f);
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s}", "version", (json_int_t)v->id,
                          "subject", v->f.subject, "prompt",
                          prompt ? prompt : v->f.prompt, "target",
                          v->f.target_new, "state",
                          history_state_name(v->state));
    free(prompt);
    return o;
}

/* Adds the tensors touched by commits from `from` down to `to`. */
static int touched(store_txn *t, uint64_t from, uint64_t to, json_t *names)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = history_path(t, from, to, &ids, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *rec = NULL;
        if ((rc = history_record(t, ids[i], &rec))) break;
        const char *name;
        json_t *v;
        json_object_foreach(json_object_get(rec, "tensors"), name, v)
            json_object_set_new(names, name, json_true());
        json_decref(rec);
    }
    free(ids);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* A share as a percentage with three significant digits ("0.412%",
 * "4319%"); "0%" for none. */
static void percent(char *buf, size_t size, double share)
{
    double p = 100 * share;
    if (p == 0) snprintf(buf, size, "0%%");
    else if (p >= 100) snprintf(buf, size, "%.0f%%", p);
    else snprintf(buf, size, "%.3g%%", p);
}

static void describe(char *buf, size_t size, uint64_t id)
{
    if (id) snprintf(buf, size, "commit %llu", (unsigned long long)id);
    else snprintf(buf, size, "base");
}

/* What changed from one end to the other. */
typedef struct {
    json_t *added, *changed, *reverted; /* facts, as fact_json */
    json_t *tensors;                    /* one object per edited tensor */
} diff_result;

/* The options; 0, or the exit code of bad usage. */
static int parse_options(int argc, char **argv, int *json_out)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    int c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'j': *json_out = 1; break;
        default: return cli_option_error("diff", c, argv);
        }
    }
    if (argc - optind > 2)
        return cli_usage_error("diff", "unexpected argument '%s'",
                               argv[optind + 2]);
    return 0;
}

/* The ends *a and *b that the n names name: none, HEAD's parent and
 * HEAD; one, A and HEAD; two, A and B. *bad_name: the error is a
 * malformed name's (bad usage). */
static int diff_ends(store_txn *t, int n, char **names, uint64_t head,
                     uint64_t *a, uint64_t *b, int *bad_name)
{
    int rc;
    *a = *b = head;
    if (n == 0) {
        if (head) {
            json_t *rec = NULL;
            if ((rc = history_record(t, head, &rec))) return rc;
            *a = (uint64_t)json_integer_value(json_object_get(rec, "parent"));
            json_decref(rec);
        }
        return 0;
    }
    if ((rc = history_resolve(t, names[0], a)) ||
        (n == 2 && (rc = history_resolve(t, names[1], b))))
        *bad_name = rc == ERR_INVALID;
    return rc;
}

/* The facts in effect at a and not at b (reverted), at b and not at a
 * (added), and in another version at b (changed). */
static int diff_facts(store_txn *t, uint64_t a, uint64_t b, diff_result *r)
{
    fact_row *ra = NULL, *rb = NULL;
    size_t na = 0, nb = 0;
    int rc = facts_rows(t, a, &ra, &na);
    if (!rc) rc = facts_rows(t, b, &rb, &nb);
    for (size_t i = 0, j = 0; !rc && (i < na || j < nb);) {
        int cmp = i == na ? 1 : j == nb ? -1 : strcmp(ra[i].slot, rb[j].slot);
        if (cmp < 0) {
            json_array_append_new(r->reverted, fact_json(&ra[i].v));
            i++;
        } else if (cmp > 0) {
            json_array_append_new(r->added, fact_json(&rb[j].v));
            j++;
        } else {
            if (ra[i].v.id != rb[j].v.id) {
                json_t *o = fact_json(&rb[j].v);
                json_object_set_new(o, "from_version",
                                    json_integer((json_int_t)ra[i].v.id));
                json_object_set_new(o, "from_target",
                                    json_string(ra[i].v.f.target_new));
                json_array_append_new(r->changed, o);
            }
            i++;
            j++;
        }
    }
    rows_free(ra, na);
    rows_free(rb, nb);
    return rc;
}

/* One tensor's change from its state in wa to that in wb, appended to
 * tensors. */
static int tensor_change(history_ws *wa, history_ws *wb, const char *name,
                         json_t *tensors)
{
    float *x = NULL, *y = NULL;
    size_t n = 0, shape[2];
    wdiff_stats st;
    int rc;
    if ((rc = history_ws_tensor(wa, name, &x, &n, shape)) ||
        (rc = history_ws_tensor(wb, name, &y, &n, NULL)))
        return rc;
    if ((rc = wdiff_stats_compute(x, y, shape[0], shape[1], &st))) {
        err_set(rc, "tensor '%s': %s", name, err_message(rc));
        return rc;
    }
    json_array_append_new(tensors, json_pack(
        "{s:s,s:[I,I],s:f,s:f,s:f,s:I,s:I}", "tensor", name,
        "shape", (json_int_t)shape[0], (json_int_t)shape[1],
        "delta_norm", st.delta_norm, "rel_norm", st.rel_norm, "max_abs",
        st.max_abs, "rank", (json_int_t)st.rank, "changed",
        (json_int_t)st.changed));
    return 0;
}

/* The tensors edited between a and b, in name order, each with its
 * change: both ends rebuilt from the current state (head). */
static int diff_tensors(store_txn *t, uint64_t head, uint64_t a, uint64_t b,
                        json_t *tensors)
{
    history_ws *wa = NULL, *wb = NULL;
    json_t *names = json_object();
    const char **sorted = NULL;
    size_t n_names = 0;
    uint64_t lca = 0;
    int rc;
    if ((rc = history_common_ancestor(t, a, b, &lca))) goto out;
    if ((rc = touched(t, a, lca, names)) || (rc = touched(t, b, lca, names)))
        goto out;
    n_names = json_object_size(names);
    sorted = malloc((n_names ? n_names : 1) * sizeof *sorted);
    if (!sorted) { rc = err_set(ERR_NOMEM, "out of memory"); goto out; }
    {
        const char *name;
        json_t *v;
        size_t k = 0;
        json_object_foreach(names, name, v) sorted[k++] = name;
        qsort(sorted, n_names, sizeof *sorted, cmp_name);
    }
    if (n_names) {
        if ((rc = history_ws_open(&wa, t)) || (rc = history_ws_open(&wb, t)))
            goto out;
        if ((rc = history_ws_goto(wa, head, a, names)) ||
            (rc = history_ws_goto(wb, head, b, names)))
            goto out;
    }
    for (size_t i = 0; i < n_names; i++)
        if ((rc = tensor_change(wa, wb, sorted[i], tensors))) goto out;
out:
    history_ws_close(wa);
    history_ws_close(wb);
    free(sorted);
    json_decref(names);
    return rc;
}

static void print_diff_json(uint64_t a, uint64_t b, const diff_result *r)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "from", json_integer((json_int_t)a));
    json_object_set_new(doc, "to", json_integer((json_int_t)b));
    json_object_set_new(doc, "facts", json_pack("{s:O,s:O,s:O}", "added",
                        r->added, "changed", r->changed, "reverted",
                        r->reverted));
    json_object_set_new(doc, "tensors", json_incref(r->tensors));
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(text);
    free(text);
    json_decref(doc);
}

/* The facts added (+), changed (~) and reverted (-), one a line. */
static void print_facts_text(const diff_result *r)
{
    size_t i;
    json_t *o;
    printf("facts: %zu added, %zu changed, %zu reverted\n",
           json_array_size(r->added), json_array_size(r->changed),
           json_array_size(r->reverted));
    json_array_foreach(r->added, i, o)
        printf("  + %s ->%s  (version %lld)\n",
               json_string_value(json_object_get(o, "prompt")),
               json_string_value(json_object_get(o, "target")),
               (long long)json_integer_value(json_object_get(o, "version")));
    json_array_foreach(r->changed, i, o)
        printf("  ~ %s ->%s, was%s  (version %lld, was %lld)\n",
               json_string_value(json_object_get(o, "prompt")),
               json_string_value(json_object_get(o, "target")),
               json_string_value(json_object_get(o, "from_target")),
               (long long)json_integer_value(json_object_get(o, "version")),
               (long long)json_integer_value(
                   json_object_get(o, "from_version")));
    json_array_foreach(r->reverted, i, o)
        printf("  - %s ->%s  (version %lld)\n",
               json_string_value(json_object_get(o, "prompt")),
               json_string_value(json_object_get(o, "target")),
               (long long)json_integer_value(json_object_get(o, "version")));
}

/* The tensors changed, as a table; from names the earlier end. */
static void print_tensors_text(const json_t *tensors, const char *from)
{
    size_t i;
    json_t *o;
    if (!json_array_size(tensors)) {
        printf("tensors: none changed\n");
        return;
    }
    printf("tensors: %zu changed\n", json_array_size(tensors));
    printf("  %-28s %10s %15s %10s %6s\n", "tensor", "||dW||",
           "change / weight", "max |dW|", "rank");
    json_array_foreach(tensors, i, o) {
        char rel[32];
        percent(rel, sizeof rel,
                json_real_value(json_object_get(o, "rel_norm")));
        printf("  %-28s %10.4g %15s %10.4g %6lld\n",
               json_string_value(json_object_get(o, "tensor")),
               json_real_value(json_object_get(o, "delta_norm")),
               rel, json_real_value(json_object_get(o, "max_abs")),
               (long long)json_integer_value(json_object_get(o, "rank")));
    }
    printf("  (||dW||: norm of the change; change / weight: ||dW|| / "
           "||W||, W the tensor at %s)\n", from);
}

static void print_diff_text(uint64_t a, uint64_t b, const diff_result *r)
{
    char da[32], db[32];
    describe(da, sizeof da, a);
    describe(db, sizeof db, b);
    printf("diff %s -> %s\n", da, db);
    print_facts_text(r);
    print_tensors_text(r->tensors, da);
}

int cmd_diff(int argc, char **argv, const cli_globals *g)
{
    if (cli_wants_help(argc, argv, "diff")) return EXIT_OK;
    int json_out = 0, exit_code = parse_options(argc, argv, &json_out);
    if (exit_code) return exit_code;

    store *s = NULL;
    store_txn *t = NULL;
    diff_result r = {json_array(), json_array(), json_array(), json_array()};
    uint64_t head = 0, a = 0, b = 0;
    int rc, bad_name = 0;
    exit_code = EXIT_FAIL;
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = store_txn_begin(s, &t, 0))) goto fail;
    if ((rc = store_head(t, &head))) goto fail;
    if ((rc = diff_ends(t, argc - optind, argv + optind, head, &a, &b,
                        &bad_name))) {
        if (!bad_name) goto fail;
        exit_code = cli_usage_error("diff", "%s", err_message(rc));
        goto out;
    }
    if ((rc = diff_facts(t, a, b, &r))) goto fail;
    if ((rc = diff_tensors(t, head, a, b, r.tensors))) goto fail;
    if (json_out)
        print_diff_json(a, b, &r);
    else
        print_diff_text(a, b, &r);
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_fail_code(rc);
out:
    store_txn_abort(t);
    store_close(s);
    json_decref(r.added);
    json_decref(r.changed);
    json_decref(r.reverted);
    json_decref(r.tensors);
    return exit_code;
}
