/* status: where the store is, which base model it edits, HEAD, how many
 * facts are queued and committed, how many commits there are (counted as
 * `stamp log` lists them, the reverted ones apart) and how big the store
 * is on disk. A read command: no writer lock. */
#include "cli/cli.h"
#include "base/errors.h"
#include "repo/history.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char cmd_status_usage[] =
    "stamp status [--json]\n"
    "\n"
    "Shows the store directory, its base model, HEAD, the number of queued\n"
    "and committed facts, the number of commits and the store's size.\n"
    "Commits are those of HEAD's chain, as 'stamp log' lists them; of\n"
    "them, the ones a later revert commit undid are counted apart, and so\n"
    "are the commits off the chain (reverted while HEAD, or reset away).\n"
    "\n"
    "The space section shows, for each of the store's databases, its\n"
    "entries and the bytes its pages take, then the free pages inside the\n"
    "file ('stamp gc' gives them back) and the file's size.\n"
    "\n"
    "  --json   one JSON document (\"commits\": on the chain, \"reverted\":\n"
    "           of those, undone by a revert commit, \"off_chain\";\n"
    "           \"space\": {\"databases\": {NAME: {\"entries\", \"bytes\"}},\n"
    "           \"meta_bytes\", \"freelist_bytes\", \"free_bytes\",\n"
    "           \"used_bytes\", \"file_bytes\", \"page_size\"})\n";

static void human(char *buf, size_t size, double bytes)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

int cmd_status(int argc, char **argv, const cli_globals *g)
{
    int json_out, early = cli_json_only_options(argc, argv, "status", &json_out);
    if (early >= 0) return early;
    if (optind < argc)
        return cli_usage_error("status", "unexpected argument '%s'",
                               argv[optind]);

    store *s = NULL;
    store_txn *t = NULL;
    store_version *committed = NULL;
    history_link *chain = NULL;
    char *model_dir = NULL, *model_id = NULL, *created = NULL;
    uint64_t head = 0;
    store_space space;
    size_t queued = 0, n_committed = 0, n_chain = 0, off_chain = 0,
           reverted = 0;
    int rc, exit_code = EXIT_FAIL;
    if ((rc = cli_store_open(&s, g)) ||
        (rc = store_txn_begin(s, &t, 0)) || (rc = store_head(t, &head)) ||
        (rc = store_queue_count(t, &queued)) ||
        (rc = store_committed_list(t, 0, &committed, &n_committed)) ||
        (rc = history_chain(t, &chain, &n_chain, &off_chain)) ||
        (rc = store_space_get(t, &space)))
        goto fail;
    for (size_t i = 0; i < n_chain; i++) reverted += chain[i].reverted_by != 0;
    if ((rc = store_meta_get(t, "model_dir", &model_dir)) ||
        (rc = store_meta_get(t, "model_id", &model_id)))
        goto fail;
    if (store_meta_get(t, "created", &created)) created = NULL;

    char abs[PATH_MAX], path[PATH_MAX + 16], size_text[32];
    struct stat st;
    if (!realpath(store_dir(s), abs)) snprintf(abs, sizeof abs, "%s", store_dir(s));
    snprintf(path, sizeof path, "%s/data.mdb", store_dir(s));
    long long bytes = 0, disk = 0;
    if (stat(path, &st) == 0) {
        bytes = (long long)st.st_size;
        disk = (long long)st.st_blocks * 512;
    }
    if (json_out) {
        json_t *doc = json_pack(
            "{s:s,s:s,s:s,s:s?,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "store",
            abs, "model_dir", model_dir, "model_id", model_id, "created",
            created, "head", (json_int_t)head, "queued", (json_int_t)queued,
            "committed", (json_int_t)n_committed, "commits",
            (json_int_t)n_chain, "reverted", (json_int_t)reverted,
            "off_chain", (json_int_t)off_chain, "size_bytes",
            (json_int_t)bytes, "disk_bytes", (json_int_t)disk);
        json_t *dbs = json_object();
        for (size_t i = 0; dbs && i < space.n_db; i++)
            json_object_set_new(dbs, space.db[i].name,
                                json_pack("{s:I,s:I}", "entries",
                                          (json_int_t)space.db[i].entries,
                                          "bytes",
                                          (json_int_t)space.db[i].bytes));
        json_t *sp = json_pack(
            "{s:o?,s:I,s:I,s:I,s:I,s:I,s:I}", "databases", dbs, "meta_bytes",
            (json_int_t)space.meta_bytes, "freelist_bytes",
            (json_int_t)space.freelist_bytes, "free_bytes",
            (json_int_t)(space.free_pages * space.page_size), "used_bytes",
            (json_int_t)space.used_bytes, "file_bytes",
            (json_int_t)space.file_bytes, "page_size",
            (json_int_t)space.page_size);
        if (!doc || !sp || json_object_set_new(doc, "space", sp)) {
            json_decref(doc);
            rc = err_set(ERR_NOMEM, "out of memory");
            goto fail;
        }
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        human(size_text, sizeof size_text, (double)disk);
        printf("store      %s\n", abs);
        printf("model      %s\n", model_dir);
        printf("model id   %s\n", model_id);
        if (created) printf("created    %s\n", created);
        if (head) printf("HEAD       commit %llu\n", (unsigned long long)head);
        else printf("HEAD       the base model (no commits)\n");
        printf("queued     %zu fact%s\n", queued, queued == 1 ? "" : "s");
        printf("committed  %zu fact%s\n", n_committed,
               n_committed == 1 ? "" : "s");
        printf("commits    %zu", n_chain);
        if (reverted)
            printf(" (%zu of them reverted by a later commit", reverted);
        if (off_chain)
            printf("%s%zu more off the chain: reverted while HEAD, or "
                   "reset away", reverted ? "; " : " (", off_chain);
        printf("%s\n", reverted || off_chain ? ")" : "");
        printf("size       %s on disk\n", size_text);
        printf("space      %-9s %10s %12s\n", "database", "entries", "bytes");
        for (size_t i = 0; i < space.n_db; i++)
            printf("           %-9s %10llu %12llu\n", space.db[i].name,
                   (unsigned long long)space.db[i].entries,
                   (unsigned long long)space.db[i].bytes);
        printf("           %-9s %10s %12llu\n", "(meta)", "",
               (unsigned long long)space.meta_bytes);
        printf("           %-9s %10s %12llu\n", "(free)", "",
               (unsigned long long)(space.free_pages * space.page_size +
                                    space.freelist_bytes));
        printf("           %-9s %10s %12llu\n", "file", "",
               (unsigned long long)space.file_bytes);
    }
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_fail_code(rc);
out:
    free(model_dir);
    free(model_id);
    free(created);
    free(chain);
    store_versions_free(committed, n_committed);
    store_txn_abort(t);
    store_close(s);
    return exit_code;
}
