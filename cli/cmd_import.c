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

/* The model's context length from the config text kept in meta (GPT-2's
 * n_positions or n_ctx, the Llama family's max_position_embeddings). */
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
    if (!json_is_integer(v) && cfg)
        v = json_object_get(cfg, "max_position_embeddings");
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

/* One import: the command line, what reading the files found and what
 * queueing their facts did. */
typedef struct {
    int fmt, skip_bad;
    char **files;            /* (n_files) the FILE arguments */
    size_t n_files;
    ingest_result *res;      /* (n_files) each file's facts and problems */
    size_t n_bad, n_good, n_fatal; /* bad records, good ones, unreadable
                                    * files */
    uint64_t import_id;
    size_t counts[3];        /* facts by import_action */
    uint64_t *superseding;   /* (n_superseding) the new versions that
                              * superseded a queued one */
    size_t n_superseding;
} import_run;

/* The options and FILE arguments into r; 0, or the exit code of bad
 * usage. */
static int parse_options(int argc, char **argv, import_run *r)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"skip-bad", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":f:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            r->fmt = ingest_format_parse(optarg);
            if (r->fmt < 0)
                return cli_usage_error("import", "unknown format '%s' (csv, "
                                       "counterfact, easyedit, zsre, auto)",
                                       optarg);
            break;
        case 's': r->skip_bad = 1; break;
        default: return cli_option_error("import", c, argv);
        }
    }
    size_t n_stdin = 0;
    r->n_files = (size_t)(argc - optind);
    r->files = argv + optind;
    if (r->n_files == 0) return cli_usage_error("import", "no FILE given");
    for (size_t i = 0; i < r->n_files; i++)
        n_stdin += !strcmp(r->files[i], "-");
    if (n_stdin > 1)
        return cli_usage_error("import", "'-' (the standard input) given "
                               "%zu times; it can be read once", n_stdin);
    return 0;
}

/* The tokenizer of the store's base model and its n_positions, read in
 * a read transaction of its own (the checks take no lock). */
static int open_tokenizer(store *s, tokenizer **tok, size_t *n_positions)
{
    store_txn *t = NULL;
    char *model_dir = NULL;
    int rc = store_txn_begin(s, &t, 0);
    if (!rc && !(rc = store_meta_get(t, "model_dir", &model_dir)))
        rc = context_length(t, n_positions);
    store_txn_abort(t);
    if (!rc) rc = tokenizer_open_dir(tok, model_dir);
    free(model_dir);
    return rc;
}

/* Reads and checks every file, reporting every problem (up to
 * MAX_SHOWN) and each file with no facts; fails only when out of
 * memory. */
static int read_files(import_run *r, const tokenizer *tok, size_t n_positions)
{
    size_t shown = 0;
    for (size_t i = 0; i < r->n_files; i++) {
        ingest_options opt = {tok, n_positions, MAX_SHOWN};
        ingest_result *res = &r->res[i];
        int rc = ingest_read(r->files[i], (ingest_format)r->fmt, &opt, res);
        if (rc == ERR_NOMEM) return rc;
        if (rc) r->n_fatal++;
        r->n_bad += res->n_bad;
        r->n_good += res->n_facts;
        for (size_t k = 0; k < res->n_problems; k++)
            if (shown++ < MAX_SHOWN)
                fprintf(stderr, "%s\n", res->problems[k].message);
        if (!rc && !res->n_facts && !res->n_bad)
            fprintf(stderr, "stamp: note: %s: no facts (%s)\n",
                    file_name(r->files[i]), res->format == INGEST_CSV
                                                ? "only a header"
                                                : "no records");
    }
    return 0;
}

#define IMPORT_GOES_ON (-1) /* decide: not an exit code */

/* Whether the import goes on after reading: IMPORT_GOES_ON, or the exit
 * code once it has said why not (files unreadable, bad records without
 * --skip-bad, no facts at all). */
static int decide(const import_run *r)
{
    size_t n_problems = r->n_bad + r->n_fatal;
    if (n_problems > MAX_SHOWN)
        fprintf(stderr, "... %zu problems in all, the first %d shown\n",
                n_problems, MAX_SHOWN);
    if (r->n_fatal)
        return cli_fail("%zu file%s could not be read; nothing imported",
                        r->n_fatal, r->n_fatal == 1 ? "" : "s");
    if (r->n_bad && !r->skip_bad)
        return cli_fail("%zu bad record%s; nothing imported (--skip-bad "
                        "imports the good ones)", r->n_bad,
                        r->n_bad == 1 ? "" : "s");
    if (!r->n_good && !r->n_bad) { /* noted by read_files, file by file */
        printf("nothing imported: no facts in %s\n",
               r->n_files == 1 ? file_name(r->files[0]) : "the files");
        return EXIT_OK;
    }
    return IMPORT_GOES_ON;
}

/* Queues every good fact under a new import id, in write transaction t;
 * counts what each did and notes the versions that superseded one. */
static int queue_facts(store_txn *t, import_run *r)
{
    size_t done = 0;
    int rc = store_import_begin(t, &r->import_id);
    if (rc) return rc;
    if (r->n_good &&
        !(r->superseding = malloc(r->n_good * sizeof *r->superseding)))
        return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_files; i++) {
        for (size_t k = 0; k < r->res[i].n_facts; k++) {
            import_action a;
            uint64_t id;
            if ((rc = store_fact_add(t, &r->res[i].facts[k], r->import_id,
                                     &a, &id)))
                return rc;
            r->counts[a]++;
            if (a == IMPORT_SUPERSEDED)
                r->superseding[r->n_superseding++] = id;
            cli_progress("importing", ++done, r->n_good);
        }
    }
    return 0;
}

/* What each superseded fact was, one line each in *reports (calloc'ed,
 * NULL when out of memory; a line NULL when it could not be made). */
static int superseded_reports(store_txn *t, const import_run *r,
                              char ***reports)
{
    size_t n = r->n_superseding;
    char **lines = calloc(n ? n : 1, sizeof *lines);
    int rc = 0;
    for (size_t i = 0; lines && !rc && i < n; i++) {
        store_version v = {0}, old = {0};
        if (!(rc = store_version_get(t, r->superseding[i], &v)) &&
            !(rc = superseded_of(t, &v, &old))) {
            char *text = fact_prompt_text(&v.f);
            if (asprintf(&lines[i], "superseded: '%s' '%s' (version %llu) "
                         "-> '%s' (version %llu, %s:%zu)",
                         text ? text : v.f.prompt, old.f.target_new,
                         (unsigned long long)old.id, v.f.target_new,
                         (unsigned long long)v.id, v.f.source_file,
                         v.f.source_line) < 0)
                lines[i] = NULL;
            free(text);
        }
        store_version_free(&v);
        store_version_free(&old);
    }
    *reports = lines;
    return rc;
}

/* The import's record for meta "import.ID": time, files, counts
 * (compact JSON, malloc'ed; NULL when out of memory). */
static char *import_record(const import_run *r)
{
    char tbuf[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *rec = json_pack("{s:I,s:s,s:[],s:I,s:I,s:I,s:I}", "id",
                            (json_int_t)r->import_id, "time", tbuf, "files",
                            "queued", (json_int_t)(r->counts[0] + r->counts[1]),
                            "superseded", (json_int_t)r->counts[1],
                            "unchanged", (json_int_t)r->counts[2],
                            "skipped_bad", (json_int_t)r->n_bad);
    for (size_t i = 0; rec && i < r->n_files; i++)
        json_array_append_new(json_object_get(rec, "files"),
                              json_string(file_name(r->files[i])));
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    return text;
}

/* Records the import and commits *t (then NULL); the supersessions are
 * worked out before the commit, so that the report can never disagree
 * with the store, and printed after it. */
static int commit_import(store_txn **t, const import_run *r)
{
    char **reports = NULL, key[64];
    int rc = superseded_reports(*t, r, &reports);
    char *text = import_record(r);
    snprintf(key, sizeof key, "import.%llu", (unsigned long long)r->import_id);
    if (!rc && !reports) rc = err_set(ERR_NOMEM, "out of memory");
    if (!rc && !text) rc = err_set(ERR_NOMEM, "out of memory");
    if (!rc) rc = store_meta_put(*t, key, text);
    free(text);
    if (!rc) {
        rc = store_txn_commit(*t);
        *t = NULL;
    }
    for (size_t i = 0; reports && i < r->n_superseding; i++) {
        if (!rc && reports[i]) printf("%s\n", reports[i]);
        free(reports[i]);
    }
    free(reports);
    return rc;
}

int cmd_import(int argc, char **argv, const cli_globals *g)
{
    import_run r = {.fmt = INGEST_AUTO};
    if (cli_wants_help(argc, argv, "import")) return EXIT_OK;
    int exit_code = parse_options(argc, argv, &r);
    if (exit_code) return exit_code;

    store *s = NULL;
    store_txn *t = NULL;
    tokenizer *tok = NULL;
    size_t n_positions = 0;
    int rc;
    exit_code = EXIT_FAIL;
    r.res = calloc(r.n_files, sizeof *r.res);
    if (!r.res) return cli_fail("out of memory");
    if ((rc = cli_store_open(&s, g))) goto fail;
    if ((rc = open_tokenizer(s, &tok, &n_positions))) goto fail;
    if ((rc = read_files(&r, tok, n_positions))) goto fail;
    if ((exit_code = decide(&r)) != IMPORT_GOES_ON) goto out;

    /* one write transaction for everything */
    exit_code = EXIT_FAIL;
    if ((rc = store_txn_begin(s, &t, 1))) goto fail;
    if ((rc = queue_facts(t, &r))) goto fail;
    cli_progress_done();
    if ((rc = commit_import(&t, &r))) goto fail;
    printf("import %llu: %zu queued, %zu superseded, %zu unchanged",
           (unsigned long long)r.import_id, r.counts[0] + r.counts[1],
           r.counts[1], r.counts[2]);
    if (r.n_bad) printf(", %zu bad skipped", r.n_bad);
    printf("\n");
    exit_code = EXIT_OK;
    goto out;
fail:
    cli_progress_done();
    cli_fail_code(rc);
out:
    store_txn_abort(t);
    for (size_t i = 0; i < r.n_files; i++) ingest_result_free(&r.res[i]);
    free(r.res);
    free(r.superseding);
    tokenizer_close(tok);
    store_close(s);
    return exit_code;
}
