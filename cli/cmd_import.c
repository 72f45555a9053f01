/* import: reads fact lists and queues their facts. Every file is read and
 * checked first, without the writer lock (the tokenizer of the store's
 * base model measures prompt + target against n_positions); then all
 * files go into the store in one write transaction, so an import happens
 * completely or not at all, whatever stops it. */
#include "cli/cli.h"
#include "base/errors.h"
#include "facts/ingest.h"
#include "store/store.h"
#include "model/tokenizer.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char cmd_import_usage[] =
    "stamp import FILE... [--format F] [--skip-bad]\n"
    "\n"
    "Queues the facts of the fact lists FILE... in one transaction: all of\n"
    "them or, when any record is bad, none (every problem is reported as\n"
    "FILE:LINE: problem, up to 100). FILE '-' is the standard input (named\n"
    "<stdin> in messages; its format is told by its content, or --format).\n"
    "A file with no facts (a CSV header alone, an empty JSON list) is\n"
    "noted on stderr and imports nothing; that is not an error (exit 0).\n"
    "\n"
    "  --format F   csv, counterfact, easyedit, zsre or auto (default: .csv\n"
    "               files are CSV, JSON formats are told by their records)\n"
    "  --skip-bad   import the good records and report the bad ones (a file\n"
    "               that cannot be read at all still fails the import)\n"
    "\n"
    "CSV: a header row naming the columns subject, prompt, target_new\n"
    "(required), target_true, relation, paraphrase (repeatable),\n"
    "neighborhood_prompt + neighborhood_target (repeatable, in pairs). The\n"
    "prompt holds {} where the subject goes, or the subject written out,\n"
    "and words that ask for the target (not the subject alone).\n"
    "Targets get a leading space when they have none (\" Paris\").\n"
    "\n"
    "A fact whose slot (subject + relation, else subject + prompt) already\n"
    "has the same target, queued or committed, is unchanged; a new target\n"
    "for a queued fact supersedes it (each is reported). The summary line\n"
    "counts the new versions queued, the queued versions they superseded\n"
    "and the unchanged facts.\n";

#define MAX_SHOWN 100

/* The model's n_positions from the config text kept in meta. */
static int context_length(store_txn *t, size_t *n_positions)
{
    char *text = NULL;
    int rc = store_meta_get(t, "config", &text);
    if (rc) return rc;
    json_error_t e;
    json_t *cfg = json_loads(text, 0, &e);
    free(text);
    json_t *v = cfg ? json_object_get(cfg, "n_positions") : NULL;
    if (!json_is_integer(v) && cfg) v = json_object_get(cfg, "n_ctx");
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        json_decref(cfg);
        return err_set(ERR_STORE, "the store's model config has no "
                       "n_positions");
    }
    *n_positions = (size_t)json_integer_value(v);
    json_decref(cfg);
    return 0;
}

/* A FILE argument as messages and records name it. */
static const char *file_name(const char *arg)
{
    return strcmp(arg, "-") ? arg : INGEST_STDIN;
}

/* Finds the version that `v` superseded: same slot, number - 1. */
static int superseded_of(store_txn *t, const store_version *v,
                         store_version *old)
{
    store_version *h = NULL;
    size_t n = 0;
    char *slot = fact_slot(&v->f);
    int rc = slot ? store_subject_history(t, v->f.subject, &h, &n)
                  : err_set(ERR_NOMEM, "out of memory");
    int found = 0;
    for (size_t i = 0; !rc && i < n && !found; i++) {
        char *s = fact_slot(&h[i].f);
        if (s && !strcmp(s, slot) && h[i].number + 1 == v->number) {
            rc = fact_copy(&old->f, &h[i].f);
            old->id = h[i].id;
            old->number = h[i].number;
            found = 1;
        }
        free(s);
    }
    free(slot);
    store_versions_free(h, n);
    if (!rc && !found) rc = err_set(ERR_STORE, "version %llu supersedes a "
                                    "version that cannot be found",
                                    (unsigned long long)v->id);
    return rc;
}

int cmd_import(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"skip-bad", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int fmt = INGEST_AUTO, skip_bad = 0, c;
    if (cli_wants_help(argc, argv, "import")) return EXIT_OK;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":f:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            fmt = ingest_format_parse(optarg);
            if (fmt < 0)
                return cli_usage_error("import", "unknown format '%s' (csv, "
                                       "counterfact, easyedit, zsre, auto)",
                                       optarg);
            break;
        case 's': skip_bad = 1; break;
        default: return cli_option_error("import", c, argv);
        }
    }
    size_t n_files = (size_t)(argc - optind), n_stdin = 0;
    char **files = argv + optind;
    if (n_files == 0) return cli_usage_error("import", "no FILE given");
    for (size_t i = 0; i < n_files; i++) n_stdin += !strcmp(files[i], "-");
    if (n_stdin > 1)
        return cli_usage_error("import", "'-' (the standard input) given "
                               "%zu times; it can be read once", n_stdin);

    store *s = NULL;
    store_txn *t = NULL;
    tokenizer *tok = NULL;
    ingest_result *res = calloc(n_files, sizeof *res);
    char *model_dir = NULL;
    size_t n_positions = 0;
    int rc, exit_code = EXIT_FAIL;
    if (!res) return cli_fail("out of memory");
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = store_txn_begin(s, &t, 0))) goto fail;
    if ((rc = store_meta_get(t, "model_dir", &model_dir)) ||
        (rc = context_length(t, &n_positions)))
        goto fail;
    store_txn_abort(t);
    t = NULL;
    if ((rc = tokenizer_open_dir(&tok, model_dir))) goto fail;

    /* read and check every file; report every problem */
    size_t shown = 0, n_bad = 0, n_good = 0, n_fatal = 0;
    for (size_t i = 0; i < n_files; i++) {
        ingest_options opt = {tok, n_positions, MAX_SHOWN};
        rc = ingest_read(files[i], (ingest_format)fmt, &opt, &res[i]);
        if (rc == ERR_NOMEM) goto fail;
        if (rc) n_fatal++;
        n_bad += res[i].n_bad;
        n_good += res[i].n_facts;
        for (size_t k = 0; k < res[i].n_problems; k++)
            if (shown++ < MAX_SHOWN)
                fprintf(stderr, "%s\n", res[i].problems[k].message);
        if (!rc && !res[i].n_facts && !res[i].n_bad)
            fprintf(stderr, "stamp: note: %s: no facts (%s)\n",
                    file_name(files[i]), res[i].format == INGEST_CSV
                                             ? "only a header"
                                             : "no records");
    }
    rc = 0;
    size_t n_problems = n_bad + n_fatal;
    if (n_problems > MAX_SHOWN)
        fprintf(stderr, "... %zu problems in all, the first %d shown\n",
                n_problems, MAX_SHOWN);
    if (n_fatal) {
        cli_fail("%zu file%s could not be read; nothing imported", n_fatal,
                 n_fatal == 1 ? "" : "s");
        goto out;
    }
    if (n_bad && !skip_bad) {
        cli_fail("%zu bad record%s; nothing imported (--skip-bad imports "
                 "the good ones)", n_bad, n_bad == 1 ? "" : "s");
        goto out;
    }
    if (!n_good && !n_bad) { /* noted above, file by file */
        printf("nothing imported: no facts in %s\n",
               n_files == 1 ? file_name(files[0]) : "the files");
        exit_code = EXIT_OK;
        goto out;
    }

    /* one write transaction for everything */
    uint64_t import_id;
    size_t counts[3] = {0, 0, 0}, done = 0;
    uint64_t *superseding = NULL;
    size_t n_superseding = 0;
    if ((rc = store_txn_begin(s, &t, 1))) goto fail;
    if ((rc = store_import_begin(t, &import_id))) goto fail;
    if (n_good && !(superseding = malloc(n_good * sizeof *superseding))) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_files; i++) {
        for (size_t k = 0; k < res[i].n_facts; k++) {
            import_action a;
            uint64_t id;
            if ((rc = store_fact_add(t, &res[i].facts[k], import_id, &a,
                                     &id))) {
                free(superseding);
                goto fail;
            }
            counts[a]++;
            if (a == IMPORT_SUPERSEDED) superseding[n_superseding++] = id;
            cli_progress("importing", ++done, n_good);
        }
    }
    cli_progress_done();

    /* what each superseded fact was, reported before the commit so that
     * the report can never disagree with the store */
    char **reports = calloc(n_superseding ? n_superseding : 1, sizeof *reports);
    for (size_t i = 0; reports && !rc && i < n_superseding; i++) {
        store_version v = {0}, old = {0};
        if (!(rc = store_version_get(t, superseding[i], &v)) &&
            !(rc = superseded_of(t, &v, &old))) {
            char *text = fact_prompt_text(&v.f);
            if (asprintf(&reports[i], "superseded: '%s' '%s' (version %llu) "
                         "-> '%s' (version %llu, %s:%zu)",
                         text ? text : v.f.prompt, old.f.target_new,
                         (unsigned long long)old.id, v.f.target_new,
                         (unsigned long long)v.id, v.f.source_file,
                         v.f.source_line) < 0)
                reports[i] = NULL;
            free(text);
        }
        store_version_free(&v);
        store_version_free(&old);
    }
    free(superseding);
    char key[64], tbuf[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *rec = json_pack("{s:I,s:s,s:[],s:I,s:I,s:I,s:I}", "id",
                            (json_int_t)import_id, "time", tbuf, "files",
                            "queued", (json_int_t)(counts[0] + counts[1]),
                            "superseded", (json_int_t)counts[1], "unchanged",
                            (json_int_t)counts[2], "skipped_bad",
                            (json_int_t)n_bad);
    for (size_t i = 0; rec && i < n_files; i++)
        json_array_append_new(json_object_get(rec, "files"),
                              json_string(file_name(files[i])));
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    snprintf(key, sizeof key, "import.%llu", (unsigned long long)import_id);
    if (!rc && !reports) rc = err_set(ERR_NOMEM, "out of memory");
    if (!rc && !text) rc = err_set(ERR_NOMEM, "out of memory");
    if (!rc) rc = store_meta_put(t, key, text);
    free(text);
    if (!rc) {
        rc = store_txn_commit(t);
        t = NULL;
    }
    for (size_t i = 0; reports && i < n_superseding; i++) {
        if (!rc && reports[i]) printf("%s\n", reports[i]);
        free(reports[i]);
    }
    free(reports);
    if (rc) goto fail;
    printf("import %llu: %zu queued, %zu superseded, %zu unchanged",
           (unsigned long long)import_id, counts[0] + counts[1], counts[1],
           counts[2]);
    if (n_bad) printf(", %zu bad skipped", n_bad);
    printf("\n");
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_progress_done();
    cli_fail_code(rc);
out:
    store_txn_abort(t);
    for (size_t i = 0; i < n_files; i++) ingest_result_free(&res[i]);
    free(res);
    free(model_dir);
    tokenizer_close(tok);
    store_close(s);
    return exit_code;
}
