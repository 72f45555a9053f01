/* eval: CounterFact scores (efficacy, paraphrase, neighbourhood, with
 * magnitudes and accuracy variants) of the committed facts on the
 * current model, and retention: how many facts the base model knew, that
 * no commit touched, the current model still answers top-1; with
 * --facts, which edits did not take and which untouched facts were lost
 * (with what the model answers now). */
#include "cli/cli.h"
#include "base/errors.h"
#include "eval/eval.h"
#include "facts/fact.h"
#include "model/predict.h"
#include "repo/commit.h"
#include "store/factjson.h"
#include "facts/ingest.h"
#include "store/modelview.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char cmd_eval_usage[] =
    "stamp eval [COMMIT] [--retention FILE] [--sample N] [--facts] [--json]\n"
    "\n"
    "Scores the facts of COMMIT (default: every committed fact) on the\n"
    "current model, CounterFact style: efficacy (ES), paraphrase (PS) and\n"
    "neighbourhood (NS) success, their magnitudes and accuracy variants.\n"
    "A score over no prompts (facts without paraphrase or neighbourhood\n"
    "columns) is n/a (null in --json).\n"
    "Retention: of a sample of facts from FILE (default: the model's\n"
    "facts.csv) that no commit touched and the base model answers top-1,\n"
    "the share the current model still answers top-1.\n"
    "\n"
    "  --retention FILE  fact list for retention (target_true = the answer)\n"
    "  --sample N        facts sampled for retention (default 200)\n"
    "  --facts           list the edits whose rewrite prompt still prefers\n"
    "                    the old answer, and the untouched facts lost: the\n"
    "                    answer expected and the model's answer now (with\n"
    "                    --json: every fact's outcome)\n"
    "  --json            print the scores as JSON\n";


/* Retention facts: from `file`, the ones whose subject no committed fact
 * has, at most `sample` of them, evenly spread over the file. */
static int retention_facts(const char *file, const store_version *committed,
                           size_t n_committed, size_t sample,
                           ingest_result *res, fact **out, size_t *n)
{
    int rc = ingest_read(file, INGEST_AUTO, NULL, res);
    if (rc) return rc;
    fact *keep = malloc((res->n_facts ? res->n_facts : 1) * sizeof *keep);
    if (!keep) return ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < res->n_facts; i++) {
        int touched = 0;
        for (size_t j = 0; j < n_committed && !touched; j++)
            touched = !strcmp(committed[j].f.subject, res->facts[i].subject);
        if (!touched) keep[k++] = res->facts[i];
    }
    size_t want = sample < k ? sample : k;
    for (size_t i = 0; i < want; i++) keep[i] = keep[i * k / want];
    *out = keep;
    *n = want;
    return 0;
}

/* Keeps, of facts[0..n), those the model answers top-1. */
static int known_facts(const lm_model *m, const tokenizer *tok, fact *facts,
                       size_t n, size_t *n_known)
{
    int *hits = malloc((n ? n : 1) * sizeof(int));
    double acc = 0;
    size_t k = 0;
    int rc = hits ? eval_retention(m, tok, facts, n, &acc, hits) : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        if (hits[i]) facts[k++] = facts[i];
    free(hits);
    *n_known = k;
    return rc;
}

/* The edits whose rewrite prompt does not prefer the new answer. */
static void print_not_taken(const store_version *v,
                            const eval_fact_outcome *each, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += each[i].scored && !each[i].es;
    printf("\n%zu edit%s not taken (the rewrite prompt prefers the old "
           "answer)%s\n", k, k == 1 ? "" : "s", k ? ":" : "");
    for (size_t i = 0; i < n; i++) {
        if (!each[i].scored || each[i].es) continue;
        char *text = fact_prompt_text(&v[i].f);
        printf("  #%-6llu %s ->%s (P %.3f, old%s P %.3f)\n",
               (unsigned long long)v[i].id, text ? text : v[i].f.prompt,
               v[i].f.target_new, each[i].p_new, v[i].f.target_true,
               each[i].p_true);
        free(text);
    }
}

/* A target as the model reads it, for messages: without the leading
 * space every target has (" Paris" -> "Paris"). */
static const char *bare(const char *target)
{
    return target[0] == ' ' ? target + 1 : target;
}

/* The untouched facts the base model answered and the current one does
 * not: the answer expected and what the model answers now (now[i] for
 * the i-th fact lost). Not the queue's "prompt -> target" notation: no
 * edit is asked for. */
static void print_lost(const fact *facts, size_t n, const int *kept,
                       char *const *now)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += !kept[i];
    printf("\n%zu untouched fact%s lost%s\n", k, k == 1 ? "" : "s",
           k ? " (the answer expected; what the model says now):" : "");
    for (size_t i = 0, j = 0; i < n; i++) {
        if (kept[i]) continue;
        char *text = fact_prompt_text(&facts[i]);
        printf("  \"%s\"  expected '%s', now '%s'\n",
               text ? text : facts[i].prompt, bare(facts[i].target_true),
               bare(now[j++]));
        free(text);
    }
}

/* What the model answers now to each lost fact's prompt: as many tokens
 * as the expected answer has. *out: one malloc'ed string per lost fact,
 * in order; *n_out of them. */
static int lost_answers(const lm_model *m, const tokenizer *tok,
                        const fact *facts, size_t n, const int *kept,
                        char ***out, size_t *n_out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += !kept[i];
    char **now = calloc(k ? k : 1, sizeof *now);
    int rc = now ? 0 : err_set(ERR_NOMEM, "out of memory");
    size_t j = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (kept[i]) continue;
        int *ids = NULL;
        size_t n_tok = 0;
        char *text = fact_prompt_text(&facts[i]);
        if (!text) rc = err_set(ERR_NOMEM, "out of memory");
        if (!rc) rc = tokenizer_encode(tok, facts[i].target_true,
                                       strlen(facts[i].target_true), &ids,
                                       &n_tok);
        free(ids);
        if (!rc) rc = predict_greedy(m, tok, text, n_tok, &now[j]);
        free(text);
        if (!rc) j++;
    }
    *out = now;
    *n_out = j;
    return rc;
}

static json_t *share_json(double share)
{
    return share < 0 ? json_null() : json_real(share);
}

/* Every scored fact with its outcome: the fact's version as every --json
 * output shows it (factjson), and "outcome": ES (bool), the two
 * probabilities, the PS and NS shares (null when it has none). */
static json_t *outcomes_json(const store_version *v,
                             const eval_fact_outcome *each, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!each[i].scored) continue;
        json_t *o = factjson_version(&v[i]), *r = json_object();
        json_object_set_new(r, "es", json_boolean(each[i].es));
        json_object_set_new(r, "p_new", json_real(each[i].p_new));
        json_object_set_new(r, "p_true", json_real(each[i].p_true));
        json_object_set_new(r, "ps", share_json(each[i].ps));
        json_object_set_new(r, "ns", share_json(each[i].ns));
        json_object_set_new(o, "outcome", r);
        json_array_append_new(a, o);
    }
    return a;
}

/* The retention facts lost, as facts (factjson) with "now": what the
 * model answers now. */
static json_t *lost_json(const fact *facts, size_t n, const int *kept,
                         char *const *now)
{
    json_t *a = json_array();
    for (size_t i = 0, j = 0; i < n; i++) {
        if (kept[i]) continue;
        json_t *o = factjson_fact(&facts[i]);
        json_object_set_new(o, "now", json_string(now[j++]));
        json_array_append_new(a, o);
    }
    return a;
}

/* The command line. */
typedef struct {
    const char *retention_file; /* NULL: the model's facts.csv, if any */
    size_t sample;
    uint64_t commit_id;         /* 0: every committed fact */
    int json_out, list_facts;
} eval_cli_args;

/* What eval measured, and what it holds to measure it. */
typedef struct {
    store_version *committed;   /* (n_committed) the facts scored */
    store_version *all_committed; /* (n_all) every committed fact */
    size_t n_committed, n_all;
    lm_model model, base;     /* the current and the base model */
    tokenizer *tok;
    char *dir;                  /* the base model's directory */
    char *json_text;            /* COMMIT's record (it exists) */
    fact *facts;                /* (n_committed) committed's facts */
    eval_scores sc;
    eval_fact_outcome *each;    /* (n_committed) with --facts */
    const char *retention_file; /* as given, or default_ret, or NULL */
    char default_ret[PATH_MAX];
    ingest_result ires;
    fact *ret;                  /* (n_ret) sampled; the first n_known the
                                 * base model knew */
    size_t n_ret, n_known;
    double retained;            /* share kept; -1: not measured */
    int *kept;                  /* (n_known) with --facts */
    char **now;                 /* (n_now) answers now to the facts lost */
    size_t n_now;
} eval_cli_run;

static void eval_cli_run_free(eval_cli_run *r)
{
    store_versions_free(r->committed, r->n_committed);
    store_versions_free(r->all_committed, r->n_all);
    lm_model_free(&r->model);
    lm_model_free(&r->base);
    tokenizer_close(r->tok);
    ingest_result_free(&r->ires);
    free(r->facts);
    free(r->each);
    free(r->kept);
    for (size_t i = 0; i < r->n_now; i++) free(r->now[i]);
    free(r->now);
    free(r->ret);
    free(r->dir);
    free(r->json_text);
}

/* The options and COMMIT into *a; 0, or the exit code of bad usage. */
static int parse_options(int argc, char **argv, eval_cli_args *a)
{
    static const struct option opts[] = {
        {"retention", required_argument, 0, 'r'},
        {"sample", required_argument, 0, 's'},
        {"facts", no_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    int c;
    cli_options_begin();
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'r': a->retention_file = optarg; break;
        case 's':
            if (cli_parse_size(optarg, &a->sample))
                return cli_usage_error("eval", "--sample wants a count (0 "
                                       "or more), not '%s'", optarg);
            break;
        case 'f': a->list_facts = 1; break;
        case 'j': a->json_out = 1; break;
        default: return cli_option_error("eval", c, argv);
        }
    }
    if (optind + 1 < argc)
        return cli_usage_error("eval", "unexpected argument '%s'",
                               argv[optind + 1]);
    if (optind < argc &&
        (cli_parse_u64(argv[optind], &a->commit_id) || a->commit_id == 0))
        return cli_usage_error("eval", "'%s' is not a commit id (1, 2, ...)",
                               argv[optind]);
    return 0;
}

/* The CounterFact scores of COMMIT's facts (or every committed fact) on
 * the current model; each fact's outcome too with --facts. */
static int score_facts(store_txn *t, const eval_cli_args *a,
                       eval_cli_run *r)
{
    int rc;
    if (a->commit_id &&
        (rc = store_commit_get(t, a->commit_id, &r->json_text))) {
        if (rc == ERR_NOTFOUND)
            err_set(rc, "no commit %llu in the store",
                    (unsigned long long)a->commit_id);
        return rc;
    }
    if ((rc = store_committed_list(t, a->commit_id, &r->committed,
                                   &r->n_committed)))
        return rc;
    if ((rc = store_committed_list(t, 0, &r->all_committed, &r->n_all)))
        return rc;
    if ((rc = modelview_load(&r->model, t))) return rc;
    if ((rc = modelview_tokenizer(t, &r->tok))) return rc;
    size_t n = r->n_committed;
    r->facts = malloc((n ? n : 1) * sizeof *r->facts);
    if (!r->facts) return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) r->facts[i] = r->committed[i].f;
    if (a->list_facts && !(r->each = malloc((n ? n : 1) * sizeof *r->each)))
        return ERR_NOMEM;
    if ((rc = eval_facts(&r->model, r->tok, r->facts, n, &r->sc, r->each,
                         cli_progress_fn, NULL)))
        return rc;
    cli_progress_done();
    return 0;
}

/* Retention: of the sampled untouched facts the base model answers
 * top-1, the share the current model still does (with --facts, which
 * are lost and what the model answers now). Not measured without a
 * fact list or with --sample 0. */
static int measure_retention(store_txn *t, const eval_cli_args *a,
                             eval_cli_run *r)
{
    int rc;
    if ((rc = modelview_model_dir(t, &r->dir))) return rc;
    if (!r->retention_file) {
        struct stat st;
        snprintf(r->default_ret, sizeof r->default_ret, "%s/facts.csv",
                 r->dir);
        if (stat(r->default_ret, &st) == 0)
            r->retention_file = r->default_ret;
    }
    if (!r->retention_file || !a->sample) return 0;
    rc = retention_facts(r->retention_file, r->all_committed, r->n_all,
                         a->sample, &r->ires, &r->ret, &r->n_ret);
    if (!rc) rc = lm_model_load(&r->base, r->dir);
    if (!rc) rc = known_facts(&r->base, r->tok, r->ret, r->n_ret, &r->n_known);
    if (!rc && a->list_facts &&
        !(r->kept = malloc((r->n_known ? r->n_known : 1) * sizeof *r->kept)))
        rc = ERR_NOMEM;
    if (!rc)
        rc = eval_retention(&r->model, r->tok, r->ret, r->n_known,
                            &r->retained, r->kept);
    if (!rc && r->kept)
        rc = lost_answers(&r->model, r->tok, r->ret, r->n_known, r->kept,
                          &r->now, &r->n_now);
    if (rc) return rc;
    if (!r->n_known) r->retained = -1;
    return 0;
}

static void print_eval_json(const eval_cli_args *a, const eval_cli_run *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "commit", a->commit_id
                                         ? json_integer((json_int_t)a->commit_id)
                                         : json_null());
    json_object_set_new(o, "scores", commit_scores_json(&r->sc));
    json_t *ret = json_object();
    json_object_set_new(ret, "file", r->retention_file
                                         ? json_string(r->retention_file)
                                         : json_null());
    json_object_set_new(ret, "sampled", json_integer((json_int_t)r->n_ret));
    json_object_set_new(ret, "known_before",
                        json_integer((json_int_t)r->n_known));
    json_object_set_new(ret, "retained", r->retained >= 0
                                             ? json_real(r->retained)
                                             : json_null());
    if (r->kept)
        json_object_set_new(ret, "lost", lost_json(r->ret, r->n_known,
                                                   r->kept, r->now));
    json_object_set_new(o, "retention", ret);
    if (r->each)
        json_object_set_new(o, "facts", outcomes_json(r->committed, r->each,
                                                      r->n_committed));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(text);
    free(text);
    json_decref(o);
}

static void print_eval_text(const eval_cli_args *a, const eval_cli_run *r)
{
    const eval_scores *sc = &r->sc;
    if (a->commit_id) printf("commit %llu: ", (unsigned long long)a->commit_id);
    printf("%zu committed fact%s scored\n", sc->n_facts,
           sc->n_facts == 1 ? "" : "s");
    if (sc->n_facts) {
        printf("  efficacy       %5.1f%%  (magnitude %+.3f, top-1 %5.1f%%)\n",
               sc->es, sc->es_mag, sc->es_acc);
        if (sc->n_paraphrase)
            printf("  paraphrase     %5.1f%%  (magnitude %+.3f, top-1 "
                   "%5.1f%%)  over %zu prompts\n", sc->ps, sc->ps_mag,
                   sc->ps_acc, sc->n_paraphrase);
        else
            printf("  paraphrase       n/a   (the facts have no "
                   "paraphrases)\n");
        if (sc->n_neighbor)
            printf("  neighbourhood  %5.1f%%  (magnitude %+.3f, top-1 "
                   "%5.1f%%)  over %zu prompts\n", sc->ns, sc->ns_mag,
                   sc->ns_acc, sc->n_neighbor);
        else
            printf("  neighbourhood    n/a   (the facts have no "
                   "neighbourhood prompts)\n");
        printf("  score          %5.1f   (harmonic mean of the scores "
               "that apply)\n", sc->score);
    }
    if (r->retained >= 0)
        printf("  retention      %5.1f%%  of %zu untouched facts the base "
               "model knew\n", r->retained, r->n_known);
    if (r->each) print_not_taken(r->committed, r->each, r->n_committed);
    if (r->kept) print_lost(r->ret, r->n_known, r->kept, r->now);
}

int cmd_eval(int argc, char **argv, const cli_globals *g)
{
    if (cli_wants_help(argc, argv, "eval")) return EXIT_OK;
    eval_cli_args a = {.sample = 200};
    int rc = parse_options(argc, argv, &a);
    if (rc) return rc;

    store *s = NULL;
    store_txn *t = NULL;
    eval_cli_run r = {.retained = -1, .retention_file = a.retention_file};
    if ((rc = cli_store_open(&s, g)) || (rc = store_txn_begin(s, &t, 0)) ||
        (rc = score_facts(t, &a, &r)) || (rc = measure_retention(t, &a, &r))) {
        rc = cli_fail_code(rc);
    } else {
        if (a.json_out)
            print_eval_json(&a, &r);
        else
            print_eval_text(&a, &r);
        rc = EXIT_OK;
    }
    store_txn_abort(t);
    store_close(s);
    eval_cli_run_free(&r);
    return rc;
}
