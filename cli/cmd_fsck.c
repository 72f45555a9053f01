/* fsck: verifies a store from end to end. First data.mdb itself, read
 * with pread and never through LMDB's map (store_check.h): both meta
 * pages, every page of every tree, overflow chains, the free list, and
 * every record's checksum. Then, when LMDB's structure is sound enough
 * for LMDB to read, history_fsck (history.h): records and diffs, the
 * overlay tensors against the chain's hashes, the whole diff chain
 * replayed from HEAD back to the base model, the base model's files
 * against the hashes recorded at init, and the queue and fact states
 * against the chain. Lists every problem; exit 1 when there is any.
 * Without options a read command: it takes no lock and changes nothing.
 *
 * --repair mends damaged records from what is intact, in one write
 * transaction (lib/repo/repair.h, store.h), then checks again: an
 * overlay tensor is rebuilt from the base model and the chain's diffs,
 * damaged key statistics are dropped (`stamp stats` computes them
 * again), a damaged queue entry is rewritten from its version or
 * dropped. --upgrade gives a store of format 1 its checksums. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "repo/repair.h"
#include "store/store.h"
#include "store/store_check.h"

#include <getopt.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_fsck_usage[] =
    "stamp fsck [--json] [--repair] [--upgrade]\n"
    "\n"
    "Checks the store. First its file, data.mdb, read page by page without\n"
    "LMDB: the meta pages, every page of every database (type, number,\n"
    "bounds, key order, overflow pages, counts), the free list, the file's\n"
    "size, and every record's checksum. Then every commit record and its\n"
    "diffs; every edited tensor against the hash recorded by the newest\n"
    "commit that touched it; the diff chain from HEAD back to the base\n"
    "model, undone step by step, reproducing every recorded hash and ending\n"
    "at the base model's exact values; the base model's files against the\n"
    "hashes recorded at init; the queue and the fact states against the\n"
    "commits in effect. Every problem is listed.\n"
    "\n"
    "  --json     print {\"ok\", \"head\", \"checked\": {...}, \"problems\": [...],\n"
    "             \"repaired\": [...], \"not_repaired\": [...]}\n"
    "  --repair   mend what can be mended, each repair listed, then check\n"
    "             again: rebuild a damaged edited tensor from the base model\n"
    "             and the diffs; drop damaged key statistics (`stamp stats`\n"
    "             computes them again); rewrite a damaged queue entry from its\n"
    "             version, or drop it from the queue when that is damaged too\n"
    "  --upgrade  give a store an older stamp wrote (format 1) a checksum on\n"
    "             every value; refused while there are problems\n"
    "\n"
    "Exit status: 0 when everything checks (after --repair: when nothing\n"
    "is left), 1 when there are problems (each one listed) or the store\n"
    "cannot be read.\n";

typedef struct {
    store_check_report file;   /* data.mdb, page by page */
    history_fsck_counts k;     /* the history checks */
    int history_ran;
    json_t *problems;          /* strings */
} fsck_run;

static void run_free(fsck_run *f)
{
    store_check_report_free(&f->file);
    json_decref(f->problems);
    memset(f, 0, sizeof *f);
}

static void add(json_t *list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add(json_t *list, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(list, json_string(buf));
}

/* Every check, into *f. Returns an error only when nothing could be
 * checked (no store, out of memory). */
static int fsck_check(const cli_globals *g, fsck_run *f)
{
    store *s = NULL;
    store_txn *t = NULL;
    memset(f, 0, sizeof *f);
    if (!(f->problems = json_array())) return err_set(ERR_NOMEM, "out of "
                                                       "memory");
    int rc = store_open(&s, g->store_dir);
    if (rc == ERR_NOTFOUND) return rc; /* no store at all */
    store_close(s);
    s = NULL;
    if ((rc = store_check_file(g->store_dir, 0, 1, &f->file))) return rc;
    for (size_t i = 0; i < f->file.n_problems; i++)
        add(f->problems, "%s", f->file.problems[i].text);
    if (f->file.fatal) return 0; /* LMDB must not read it */
    if ((rc = cli_store_open(&s, g)) || (rc = store_txn_begin(s, &t, 0))) {
        add(f->problems, "the store cannot be opened: %s", err_message(rc));
        goto out;
    }
    f->history_ran = 1;
    if ((rc = history_fsck(t, f->problems, &f->k)))
        add(f->problems, "the checks of the history stopped: %s",
            err_message(rc));
out:
    store_txn_abort(t);
    store_close(s);
    return 0;
}

static uint64_t key_u64(const store_problem *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && i < p->klen; i++) v = v << 8 | p->key[i];
    return p->klen == 8 ? v : 0;
}

/* Mends one damaged record (p->db, p->key) in write transaction t.
 * Returns 1 when it wrote a repair (commit t), 0 when it could not
 * (abort t: nothing it did stays), or an error of the transaction. */
static int repair_one(store_txn *t, const store_problem *p, json_t *done,
                      json_t *left)
{
    char name[600];
    size_t steps;
    int rc;
    snprintf(name, sizeof name, "%.*s", (int)p->klen, (const char *)p->key);
    if (!strcmp(p->db, "tensors")) {
        if ((rc = repair_overlay_tensor(t, name, &steps))) {
            if (rc == ERR_NOMEM) return rc;
            add(left, "tensor '%s': %s", name, err_message(rc));
            return 0;
        }
        add(done, "rebuilt tensor '%s' from the base model and %zu diff%s",
            name, steps, steps == 1 ? "" : "s");
        return 1;
    }
    if (!strcmp(p->db, "stats")) {
        if ((rc = store_record_drop(t, "stats", p->key, p->klen))) return rc;
        char what[600];
        snprintf(what, sizeof what, "%s", p->text);
        char *cut = strstr(what, " (database");
        if (cut) *cut = '\0';
        add(done, "dropped %s: run `stamp stats` to compute them again (the "
            "next commit also does)", what);
        return 1;
    }
    uint64_t id = key_u64(p);
    if (!strcmp(p->db, "queue")) {
        store_version v;
        int st = id ? store_version_get(t, id, &v) : ERR_NOTFOUND;
        if (st == 0 && v.state == VERSION_QUEUED) {
            store_version_free(&v);
            if ((rc = store_version_set_state(t, id, VERSION_QUEUED, 0)))
                return rc;
            add(done, "rewrote the queue entry of version %llu",
                (unsigned long long)id);
            return 1;
        }
        if (st == 0) store_version_free(&v);
        if ((rc = store_record_drop(t, "queue", p->key, p->klen))) return rc;
        add(done, "dropped a queue entry (version %llu): its version is %s",
            (unsigned long long)id, st ? "damaged or missing" : "not queued");
        return 1;
    }
    int wrote = 0;
    if (!strcmp(p->db, "versions") && id) {
        rc = store_record_drop(t, "queue", p->key, p->klen);
        if (rc && rc != ERR_NOTFOUND) return rc;
        if (!rc)
            add(done, "dropped version %llu from the queue: its record is "
                "damaged (import its file again to queue it anew)",
                (unsigned long long)id);
        wrote = !rc;
    }
    add(left, "%s: nothing intact to rebuild it from", p->text);
    return wrote;
}

/* --repair: every damaged record it can mend, in one transaction. */
static int fsck_repair(const cli_globals *g, const fsck_run *f,
                       json_t *done, json_t *left)
{
    store *s = NULL;
    store_txn *t = NULL;
    int rc;
    if (f->file.fatal) {
        add(left, "LMDB's structure is damaged: --repair mends records, not "
            "pages; restore data.mdb from a copy");
        return 0;
    }
    if ((rc = cli_store_open(&s, g))) goto out;
    /* each repair in a transaction of its own: one that fails leaves
     * nothing behind, and does not take the others with it */
    for (size_t i = 0; i < f->file.n_problems && rc >= 0; i++) {
        const store_problem *p = &f->file.problems[i];
        if (!p->db || !p->key) continue;
        if ((rc = store_txn_begin(s, &t, 1))) goto out;
        rc = repair_one(t, p, done, left);
        if (rc == 1) rc = store_txn_commit(t);
        else store_txn_abort(t);
        t = NULL;
    }
    if (rc > 0) rc = 0;
out:
    store_txn_abort(t);
    store_close(s);
    return rc;
}

static json_t *run_json(const fsck_run *f, json_t *done, json_t *left)
{
    const store_check_report *r = &f->file;
    json_t *o = json_pack(
        "{s:b,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
        "s:I,s:b},s:O}",
        "ok", json_array_size(f->problems) == 0, "head", (json_int_t)f->k.head,
        "checked", "file_bytes", (json_int_t)r->file_bytes, "page_size",
        (json_int_t)r->page_size, "branch_pages", (json_int_t)r->branch_pages,
        "leaf_pages", (json_int_t)r->leaf_pages, "overflow_pages",
        (json_int_t)r->overflow_pages, "free_pages",
        (json_int_t)r->free_pages, "records", (json_int_t)r->records,
        "checksums", (json_int_t)r->sums_checked, "commits",
        (json_int_t)f->k.commits, "chain", (json_int_t)f->k.chain, "diffs",
        (json_int_t)f->k.diffs, "overlay_tensors", (json_int_t)f->k.overlay,
        "replayed_steps", (json_int_t)f->k.replayed, "base_tensors",
        (json_int_t)f->k.base_tensors, "versions", (json_int_t)f->k.versions,
        "history", f->history_ran, "problems", f->problems);
    if (o) {
        json_object_set_new(o, "format", json_integer(r->format));
        if (done) json_object_set(o, "repaired", done);
        if (left) json_object_set(o, "not_repaired", left);
    }
    return o;
}

static void run_print(const fsck_run *f)
{
    const store_check_report *r = &f->file;
    const history_fsck_counts *k = &f->k;
    printf("checked data.mdb: %llu bytes, %llu branch, %llu leaf, %llu "
           "overflow and %llu free pages, %llu records, %llu checksums\n",
           (unsigned long long)r->file_bytes,
           (unsigned long long)r->branch_pages,
           (unsigned long long)r->leaf_pages,
           (unsigned long long)r->overflow_pages,
           (unsigned long long)r->free_pages, (unsigned long long)r->records,
           (unsigned long long)r->sums_checked);
    if (r->format == 1)
        printf("note: the store is of format 1: its values carry no "
               "checksums (`stamp fsck --upgrade` adds them)\n");
    if (f->history_ran)
        printf("checked %zu commit%s (%zu on the chain to HEAD %llu), %zu "
               "diff%s, %zu edited tensor%s, %zu tensor step%s replayed to "
               "the base, %zu base tensors, %zu fact versions\n",
               k->commits, k->commits == 1 ? "" : "s", k->chain,
               (unsigned long long)k->head, k->diffs, k->diffs == 1 ? "" : "s",
               k->overlay, k->overlay == 1 ? "" : "s", k->replayed,
               k->replayed == 1 ? "" : "s", k->base_tensors, k->versions);
    else
        printf("not checked: the records, the diff chain, the base model and "
               "the facts (LMDB must not read a damaged file)\n");
    size_t i;
    json_t *p;
    json_array_foreach(f->problems, i, p)
        printf("problem: %s\n", json_string_value(p));
}

static void print_list(const char *label, json_t *list)
{
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
        printf("%s: %s\n", label, json_string_value(p));
}

/* --upgrade on a store that checked clean. */
static int fsck_upgrade(const cli_globals *g, json_t *done)
{
    store *s = NULL;
    int up = 0, rc = cli_store_open(&s, g);
    if (!rc) rc = store_upgrade(s, &up);
    store_close(s);
    if (!rc)
        add(done, up ? "upgraded the store to format 2: every value carries "
                       "a checksum" : "the store is of format 2 already");
    return rc;
}

int cmd_fsck(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {"repair", no_argument, 0, 'r'},
        {"upgrade", no_argument, 0, 'u'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "fsck")) return EXIT_OK;
    int json_out = 0, repair = 0, upgrade = 0, c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json_out = 1; break;
        case 'r': repair = 1; break;
        case 'u': upgrade = 1; break;
        default: return cli_option_error("fsck", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("fsck", "unexpected argument '%s'",
                               argv[optind]);

    fsck_run f;
    json_t *done = NULL, *left = NULL;
    int rc = fsck_check(g, &f);
    if (rc) goto fail;
    if (repair || upgrade) {
        if (!(done = json_array()) || !(left = json_array())) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    if (repair && json_array_size(f.problems)) {
        if ((rc = fsck_repair(g, &f, done, left))) goto fail;
        if (json_array_size(done)) { /* check again what is left */
            run_free(&f);
            if ((rc = fsck_check(g, &f))) goto fail;
        }
    }
    if (upgrade) {
        if (json_array_size(f.problems))
            add(left, "the store was not upgraded: fix its problems first");
        else if ((rc = fsck_upgrade(g, done)))
            goto fail;
        else if (f.file.format == 1) { /* report the store as it is now */
            run_free(&f);
            if ((rc = fsck_check(g, &f))) goto fail;
        }
    }
    size_t n = json_array_size(f.problems);
    if (json_out) {
        json_t *o = run_json(&f, done, left);
        char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                       : NULL;
        if (text) puts(text);
        free(text);
        json_decref(o);
    } else {
        run_print(&f);
        if (done) print_list("repaired", done);
        if (left) print_list("not repaired", left);
        if (!n) printf("ok\n");
    }
    run_free(&f);
    json_decref(done);
    json_decref(left);
    if (n) return cli_fail("fsck found %zu problem%s", n, n == 1 ? "" : "s");
    return EXIT_OK;
fail:
    run_free(&f);
    json_decref(done);
    json_decref(left);
    return cli_fail_code(rc);
}
