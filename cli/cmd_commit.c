/* commit: stamps the queued facts into the model as one commit.
 *
 * Phases (timed and recorded in the commit): key statistics (computed
 * once per base model and layer), context prefixes, the target vectors z
 * (OpenMP over groups of facts), scores before (of the facts whose z is
 * finite), the layer-by-layer MEMIT update (or ROME's rank-one update),
 * repeated for h.rounds rounds (each later round finds the target
 * vectors again in the model the rounds before it edited; a round whose
 * update leaves them further away, or (after the first) writes less
 * than h.round_min_shift of the shift left, is solved again toward 1/2,
 * 1/4, ... of the shift, h.round_halvings times, or else taken back,
 * which ends them, or fails the commit if it was the first), scores
 * after, and one LMDB write transaction that
 * stores the new tensors, their exact diffs (from the model before the
 * first round), the commit record and the new fact states.
 * The writer lock is held from start to end, so two commits never
 * interleave; a crash anywhere leaves the store as before. */
#include "cli/cli.h"
#include "memit/editreq.h"
#include "base/errors.h"
#include "eval/eval.h"
#include "base/hash.h"
#include "memit/hparams.h"
#include "memit/keystats.h"
#include "memit/memit.h"
#include "store/modelview.h"
#include "memit/spd.h"
#include "store/store.h"
#include "repo/wdiff.h"
#include "memit/ztarget.h"
#include "base/clock.h"
#include "base/compare.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void openblas_set_num_threads(int);

const char cmd_commit_usage[] =
    "stamp commit [-m MSG] [--limit N] [--method memit|rome] [--threads N]\n"
    "             [--layers LIST] [--set KEY=VALUE]... [--corpus FILE]\n"
    "             [--no-scores] [--json]\n"
    "\n"
    "Writes every queued fact (or the first N) into the model as one commit:\n"
    "target vectors by gradient steps, then MEMIT's closed-form update of\n"
    "mlp.c_proj in the edited layers (ROME: one fact, one layer).\n"
    "\n"
    "  -m, --message MSG  commit message (default: \"N facts\")\n"
    "  --limit N          commit at most N queued facts, oldest first\n"
    "  --method M         memit (default) or rome (the first queued fact)\n"
    "  --threads N        worker threads (default: every core)\n"
    "  --layers LIST      edited layers, e.g. 1,2 or 1-3 (default: the\n"
    "                     store's hparams, else a band of early layers)\n"
    "  --set KEY=VALUE    override one hyperparameter for this commit, e.g.\n"
    "                     --set mom2_update_weight=5000 or --set rounds=10\n"
    "                     (rounds: find the target vectors and solve again\n"
    "                     in the edited model; a round that moves them\n"
    "                     further away, or writes less than round_min_shift\n"
    "                     of the shift left, is solved again toward 1/2,\n"
    "                     1/4, ... of the shift (round_halvings times) and\n"
    "                     else taken back, which ends them; a first round\n"
    "                     that aims worse at every share fails the commit;\n"
    "                     joint_layers=1: solve each layer together with\n"
    "                     the later ones, so that it writes the share of\n"
    "                     the shift its keys have room for;\n"
    "                     see 'stamp show --json' of a commit for the keys)\n"
    "  --corpus FILE      text for the key statistics when they are missing\n"
    "                     (default: the model directory's corpus.txt)\n"
    "  --no-scores        skip the ES/PS/NS scores before and after\n"
    "  --json             print the commit record as JSON\n"
    "\n"
    "Exit status: 0 committed, 1 failed (nothing changed), 2 bad usage,\n"
    "3 nothing to commit (the queue is empty).\n";

/* Fault injection for the tests (like git's GIT_TEST_* variables), two
 * paths no natural input on the test worlds is known to reach:
 * STAMP_TEST_NONFINITE_Z_ROUND=N (N >= 2): round N finds the first
 * fact's target vector not finite (what blows a target vector up does so
 * in the first round, where the fact is left queued instead);
 * STAMP_TEST_WORSE_ROUND=N (N >= 1): round N's update counts as having
 * moved the targets further away (shift written -1), so that it is solved
 * again toward a share of the shift (worlds that small never aim worse).
 * test_round(name) is N, or 0 when unset or not a number >= 1. */
static size_t test_round(const char *name)
{
    const char *env = getenv(name);
    char *end;
    if (!env || !*env) return 0;
    unsigned long long n = strtoull(env, &end, 10);
    return *end || n < 1 ? 0 : (size_t)n;
}

/* ES/PS/NS of facts under model m, timed into timings[name]. */
static int timed_scores(const gpt2_model *m, const tokenizer *tok,
                        const fact *facts, size_t n, eval_scores *out,
                        json_t *timings, const char *name)
{
    double t0 = clock_seconds();
    int rc = eval_facts(m, tok, facts, n, out, NULL, cli_progress_fn, NULL);
    cli_progress_done();
    if (!rc) json_object_set_new(timings, name, json_real(clock_seconds() - t0));
    return rc;
}

/* Applies KEY=VALUE (VALUE a JSON number or array) over h. */
static int apply_set(hparams *h, const char *kv, const gpt2_config *c)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return err_set(ERR_INVALID, "--set '%s': expected KEY=VALUE", kv);
    size_t len = strlen(kv) + 8;
    char *json = malloc(len);
    if (!json) return ERR_NOMEM;
    snprintf(json, len, "{\"%.*s\":%s}", (int)(eq - kv), kv, eq + 1);
    int rc = hparams_apply_json(h, json, c);
    free(json);
    return rc;
}

/* The subjects of the n queued versions, sorted for bsearch (pointers
 * into v). */
static int subjects_sorted(const store_version *v, size_t n,
                           const char ***out)
{
    const char **s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) s[i] = v[i].f.subject;
    qsort(s, n, sizeof *s, compare_strings);
    *out = s;
    return 0;
}

/* The versions committed before that these facts replace (same slot). */
static int find_superseded(store_txn *t, const store_version *v,
                           json_t *superseded)
{
    store_version *hist = NULL;
    size_t n = 0;
    char *slot = fact_slot(&v->f);
    int rc = slot ? store_subject_history(t, v->f.subject, &hist, &n)
                  : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        if (hist[i].id == v->id || hist[i].state != VERSION_COMMITTED)
            continue;
        char *other = fact_slot(&hist[i].f);
        if (!other) { rc = ERR_NOMEM; break; }
        if (!strcmp(other, slot)) {
            json_array_append_new(superseded, json_integer((json_int_t)hist[i].id));
            rc = store_version_set_state(t, hist[i].id, VERSION_SUPERSEDED,
                                         hist[i].commit_id);
        }
        free(other);
    }
    store_versions_free(hist, n);
    free(slot);
    return rc;
}

static void utc_now(char *buf, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What one round of target vectors and update did (the commit record's
 * "rounds"; the first round's figures are also at its top level). */
typedef struct {
    size_t z_likely;      /* z that make the new answer likely (NLL < .5) */
    size_t z_stepped;     /* facts that took a z step at all */
    double z_steps_mean, z_nll_mean, z_flops;
    double resid_before, resid_after, shift_written; /* MEMIT */
    double step;          /* the share of the target shift the kept
                             update was solved toward (1, or 1/2, 1/4,
                             ... after round_halvings: memit_halve) */
    double z_seconds, solve_seconds;
} round_summary;

static void summarise_z(const ztarget_info *zi, size_t n, round_summary *r)
{
    double steps = 0, nll = 0;
    for (size_t i = 0; i < n; i++) {
        steps += zi[i].steps;
        nll += zi[i].nll;
        r->z_flops += zi[i].flops;
        r->z_likely += zi[i].nll < 0.5;
        r->z_stepped += zi[i].steps > 0;
    }
    r->z_steps_mean = n ? steps / n : 0;
    r->z_nll_mean = n ? nll / n : 0;
}

static json_t *round_json(const round_summary *r)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f}",
                     "z_likely", (json_int_t)r->z_likely,
                     "z_steps_mean", r->z_steps_mean,
                     "z_nll_mean", r->z_nll_mean,
                     "shift_written", r->shift_written,
                     "step", r->step);
}

/* Progress of the rounds after the first: "round 2/5: <label>". */
static void round_progress(void *ctx, const char *label, size_t done,
                           size_t total)
{
    char text[96];
    snprintf(text, sizeof text, "%s: %s", (const char *)ctx, label);
    cli_progress(text, done, total);
}

int cmd_commit(int argc, char **argv, const cli_globals *g)
{
    static const struct option opts[] = {
        {"message", required_argument, 0, 'm'},
        {"limit", required_argument, 0, 'l'},
        {"method", required_argument, 0, 'M'},
        {"threads", required_argument, 0, 't'},
        {"layers", required_argument, 0, 'L'},
        {"set", required_argument, 0, 's'},
        {"corpus", required_argument, 0, 'c'},
        {"no-scores", no_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},
        {0, 0, 0, 0},
    };
    if (cli_wants_help(argc, argv, "commit")) return EXIT_OK;
    const char *message = NULL, *method = "memit", *layers_arg = NULL,
               *corpus = NULL;
    char **sets = calloc((size_t)argc, sizeof(char *));
    size_t n_sets = 0, limit = 0;
    int threads = 0, scores = 1, json_out = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'm': message = optarg; break;
        case 'l':
            limit = strtoul(optarg, &end, 10);
            if (*end || !*optarg || limit == 0) {
                free(sets);
                return cli_usage_error("commit", "--limit wants a positive "
                                       "number, not '%s'", optarg);
            }
            break;
        case 'M': method = optarg; break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads <= 0) {
                free(sets);
                return cli_usage_error("commit", "--threads wants a positive "
                                       "number, not '%s'", optarg);
            }
            break;
        case 'L': layers_arg = optarg; break;
        case 's': sets[n_sets++] = optarg; break;
        case 'c': corpus = optarg; break;
        case 'n': scores = 0; break;
        case 'j': json_out = 1; break;
        default: free(sets); return cli_usage_error("commit", "unknown option");
        }
    }
    int rome = !strcmp(method, "rome");
    if (!rome && strcmp(method, "memit")) {
        free(sets);
        return cli_usage_error("commit", "unknown method '%s' (memit or rome)",
                               method);
    }
    if (optind < argc) {
        free(sets);
        return cli_usage_error("commit", "unexpected argument '%s'",
                               argv[optind]);
    }
    if (threads) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    if (rome) limit = 1;

    double t_start = clock_seconds(), t0;
    store *s = NULL;
    store_txn *t = NULL;
    store_version *queue = NULL;
    size_t n_queue = 0, n_ok = 0;
    gpt2_model model = {0};
    tokenizer *tok = NULL;
    hparams h = {0};
    char *stored_hparams = NULL, **prefixes = NULL, *hp_json = NULL;
    editreq *reqs = NULL, *keep = NULL; /* keep: committed edits kept */
    store_version *kept = NULL;
    size_t n_kept = 0, n_keep = 0;
    const char **edited_subjects = NULL; /* the queue's, sorted */
    size_t *ok_index = NULL;
    float *z = NULL, **old_tensors = NULL;
    float *round_start = NULL; /* the edited tensors before this round */
    ztarget_info *zinfo = NULL;
    double **cov = NULL;
    double **chol = NULL; /* cov's Cholesky factors */
    memit_layer_stats *lstats = NULL, *lstats_later = NULL;
    round_summary *rounds = NULL;
    size_t n_rounds = 0, rounds_done = 0;
    const char *rounds_stop = NULL; /* why the rounds ended early */
    eval_scores before = {0}, after = {0};
    fact *ok_facts = NULL;
    json_t *rec = json_object(), *failed = json_array(),
           *timings = json_object();
    int rc, exit_code = EXIT_FAIL, computed = 0;

    if ((rc = store_open(&s, g->store_dir))) goto fail;
    if ((rc = store_txn_begin(s, &t, 1))) goto fail;
    if ((rc = modelview_verify_base(t))) {
        char why[512];
        snprintf(why, sizeof why, "%s", err_message(rc));
        err_set(rc, "%s; refusing to commit (see 'stamp fsck')", why);
        goto fail;
    }
    if ((rc = store_queue_list(t, limit, &queue, &n_queue))) goto fail;
    if (n_queue == 0) {
        cli_fail("nothing to commit: the queue is empty");
        exit_code = EXIT_NOTHING;
        goto out;
    }
    if ((rc = modelview_load(&model, t))) goto fail;
    if ((rc = modelview_tokenizer(t, &tok))) goto fail;

    hparams_default(&h, &model.config);
    rc = store_meta_get(t, "hparams", &stored_hparams);
    if (rc == ERR_NOTFOUND) { err_clear(); rc = 0; }
    else if (!rc) rc = hparams_apply_json(&h, stored_hparams, &model.config);
    if (!rc && layers_arg) rc = hparams_parse_layers(&h, layers_arg, &model.config);
    for (size_t i = 0; !rc && i < n_sets; i++)
        rc = apply_set(&h, sets[i], &model.config);
    if (rc) goto fail;
    if (rome) { /* one layer: the top of the band, where z is found */
        h.layers[0] = h.layers[h.n_layers - 1];
        h.n_layers = 1;
    }
    size_t zlayer = h.layers[h.n_layers - 1], L = h.n_layers;
    size_t C = model.config.n_embd, F = model.config.n_inner;

    /* key statistics */
    t0 = clock_seconds();
    cov = calloc(L, sizeof *cov);
    if (!cov) { rc = ERR_NOMEM; goto fail; }
    rc = keystats_ensure(t, h.layers, L, h.stats_samples, corpus, cov,
                         &computed, cli_progress_fn, NULL);
    cli_progress_done();
    if (rc) goto fail;
    /* the ridge goes on this commit's copy, never into the store */
    for (size_t i = 0; i < L; i++) spd_add_ridge(cov[i], F, h.mom2_ridge);
    json_object_set_new(timings, "stats", json_real(clock_seconds() - t0));

    /* each layer's Cholesky factor, once for every round (a round's solve
     * is then O(F^2 n) instead of O(F^3)); C_l itself stays only where it
     * is not positive definite (the direct solve says why) or the null
     * space update needs it */
    chol = calloc(L, sizeof *chol);
    if (!chol) { rc = ERR_NOMEM; goto fail; }
    if (!rome && h.nullspace_threshold <= 0 && h.mom2_update_weight > 0) {
        t0 = clock_seconds();
        for (size_t i = 0; i < L; i++) {
            int factored = spd_cholesky(cov[i], F, &chol[i]);
            if (factored < 0) { rc = factored; goto fail; }
            if (factored) { free(cov[i]); cov[i] = NULL; }
        }
        json_object_set_new(timings, "factor", json_real(clock_seconds() - t0));
    }

    /* requests */
    t0 = clock_seconds();
    rc = editreq_prefixes(&prefixes, &model, tok, h.n_prefixes,
                          h.prefix_tokens, h.seed);
    if (rc) goto fail;
    reqs = calloc(n_queue, sizeof *reqs);
    ok_index = malloc(n_queue * sizeof(size_t));
    if (!reqs || !ok_index) { rc = ERR_NOMEM; goto fail; }
    size_t n_req = 0;
    for (size_t i = 0; i < n_queue; i++) {
        rc = editreq_build(&reqs[n_req], &queue[i].f, tok, prefixes,
                           h.n_prefixes, model.config.n_positions);
        if (rc) {
            json_array_append_new(failed, json_pack("{s:I,s:s}", "version",
                (json_int_t)queue[i].id, "reason", err_message(rc)));
            fprintf(stderr, "stamp: warning: '%s' left queued: %s\n",
                    queue[i].f.subject, err_message(rc));
            err_clear();
            rc = 0;
            continue;
        }
        ok_index[n_req++] = i;
    }
    /* the committed edits the update should keep (protect_committed):
     * those of subjects this batch does not edit again (a subject's facts
     * share its key, and the new target vectors already hold what the
     * model says of it) */
    if (!rome && h.protect_committed > 0) {
        if ((rc = store_committed_list(t, 0, &kept, &n_kept))) goto fail;
        keep = calloc(n_kept ? n_kept : 1, sizeof *keep);
        if (!keep) { rc = ERR_NOMEM; goto fail; }
        if ((rc = subjects_sorted(queue, n_queue, &edited_subjects))) goto fail;
        for (size_t i = 0; i < n_kept; i++) {
            const char *subject = kept[i].f.subject;
            if (bsearch(&subject, edited_subjects, n_queue,
                        sizeof *edited_subjects, compare_strings))
                continue;
            rc = editreq_build(&keep[n_keep], &kept[i].f, tok, prefixes,
                               h.n_prefixes, model.config.n_positions);
            if (rc) { err_clear(); rc = 0; continue; } /* not to be kept */
            n_keep++;
        }
    }
    json_object_set_new(timings, "prepare", json_real(clock_seconds() - t0));

    ok_facts = malloc((n_req ? n_req : 1) * sizeof *ok_facts);
    if (!ok_facts) { rc = ERR_NOMEM; goto fail; }
    for (size_t i = 0; i < n_req; i++) ok_facts[i] = queue[ok_index[i]].f;

    /* target vectors */
    t0 = clock_seconds();
    z = malloc((n_req ? n_req : 1) * C * sizeof(float));
    zinfo = calloc(n_req ? n_req : 1, sizeof *zinfo);
    if (!z || !zinfo) { rc = ERR_NOMEM; goto fail; }
    rc = ztarget_compute(&model, reqs, n_req, zlayer, &h, z, NULL, zinfo,
                         cli_progress_fn, NULL);
    cli_progress_done();
    if (rc) goto fail;
    double z_seconds = clock_seconds() - t0;
    /* drop facts whose z is not finite: reported, left queued */
    for (size_t i = 0; i < n_req; i++) {
        if (!zinfo[i].failed) {
            if (n_ok != i) {
                editreq tmp = reqs[n_ok];
                reqs[n_ok] = reqs[i];
                reqs[i] = tmp;
                memcpy(z + n_ok * C, z + i * C, C * sizeof(float));
                ok_index[n_ok] = ok_index[i];
                ok_facts[n_ok] = ok_facts[i];
                zinfo[n_ok] = zinfo[i];
            }
            n_ok++;
            continue;
        }
        const store_version *v = &queue[ok_index[i]];
        json_array_append_new(failed, json_pack("{s:I,s:s}", "version",
            (json_int_t)v->id, "reason", "target vector is not finite"));
        fprintf(stderr, "stamp: warning: '%s' left queued: its target "
                "vector is not finite\n", v->f.subject);
    }
    if (n_ok == 0) {
        rc = err_set(ERR_NUMERIC, "no fact could be committed (%zu failed)",
                     n_queue);
        goto fail;
    }

    /* scores before, on the facts that go in (z left the model as it was) */
    if (scores && (rc = timed_scores(&model, tok, ok_facts, n_ok, &before,
                                     timings, "scores_before")))
        goto fail;

    /* the update, in rounds (MEMIT; ROME takes one) */
    old_tensors = calloc(L, sizeof *old_tensors);
    lstats = calloc(L, sizeof *lstats);
    lstats_later = calloc(L, sizeof *lstats_later);
    n_rounds = rome || h.rounds == 0 ? 1 : h.rounds;
    rounds = calloc(n_rounds, sizeof *rounds);
    round_start = malloc(L * F * C * sizeof *round_start);
    if (!old_tensors || !lstats || !lstats_later || !rounds || !round_start) {
        rc = ERR_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < L; i++) {
        old_tensors[i] = malloc(F * C * sizeof(float));
        if (!old_tensors[i]) { rc = ERR_NOMEM; goto fail; }
        memcpy(old_tensors[i], model.p.fcprojw + h.layers[i] * F * C,
               F * C * sizeof(float));
    }
    summarise_z(zinfo, n_ok, &rounds[0]);
    rounds[0].z_seconds = z_seconds;
    for (size_t r = 0; r < n_rounds; r++) {
        round_summary *rs = &rounds[r];
        char label[64];
        snprintf(label, sizeof label, "round %zu/%zu", r + 1, n_rounds);
        progress_fn progress = r ? round_progress : cli_progress_fn;
        memit_layer_stats *ls = r ? lstats_later : lstats;
        if (r) {
            /* the target vectors again, in the model the rounds before
             * edited: an edit another one pushed aside is aimed again; a
             * fact the model now says gets z = h, a row that holds it */
            t0 = clock_seconds();
            rc = ztarget_compute(&model, reqs, n_ok, zlayer, &h, z, NULL,
                                 zinfo, progress, label);
            cli_progress_done();
            if (rc) goto fail;
            rs->z_seconds = clock_seconds() - t0;
            if (r + 1 == test_round("STAMP_TEST_NONFINITE_Z_ROUND")) {
                z[0] = NAN;
                zinfo[0].failed = 1;
            }
            size_t bad = 0;
            while (bad < n_ok && !zinfo[bad].failed) bad++;
            if (bad < n_ok) {
                fprintf(stderr, "stamp: warning: round %zu: the target vector "
                        "of '%s' is not finite; the commit keeps the first "
                        "%zu round%s\n", r + 1, ok_facts[bad].subject, r,
                        r == 1 ? "" : "s");
                rounds_stop = "a target vector was not finite";
                break;
            }
            summarise_z(zinfo, n_ok, rs);
            if (rs->z_stepped == 0) { /* the model says every new fact */
                rounds_stop = "every fact was said";
                break;
            }
        }
        /* to solve this round again, or take it back, if it aims worse */
        for (size_t i = 0; i < L; i++)
            memcpy(round_start + i * F * C,
                   model.p.fcprojw + h.layers[i] * F * C,
                   F * C * sizeof(float));
        t0 = clock_seconds();
        if (rome) rc = rome_apply(&model, reqs, z, zlayer, &h, cov[0], ls);
        else rc = memit_apply(&model, reqs, n_ok, keep, n_keep, z, &h,
                              (const double *const *)cov,
                              (const double *const *)chol, ls,
                              &rs->resid_after, progress, label);
        cli_progress_done();
        if (rc) goto fail;
        rs->solve_seconds = clock_seconds() - t0;
        rs->resid_before = ls[0].resid_before;
        if (!rome)
            rs->shift_written = memit_shift_written(rs->resid_before,
                                                    rs->resid_after, z, n_ok, C);
        if (r + 1 == test_round("STAMP_TEST_WORSE_ROUND"))
            rs->shift_written = -1;
        rs->step = 1;
        if (!rome && rs->shift_written < (r ? h.round_min_shift : 0)) {
            /* the update wrote less than round_min_shift (>= 0) of what
             * was left, or left the targets further away than it found
             * them: solved again toward a share of the shift, or taken
             * back (the commit then keeps the rounds before this one).
             * The first round only when it aims worse: with no round
             * before it, what it writes is the whole commit */
            int worse = rs->shift_written < 0;
            double full_written = rs->shift_written;
            if ((rc = memit_halve(&model, reqs, n_ok, keep, n_keep, z, &h,
                                  (const double *const *)cov,
                                  (const double *const *)chol, round_start,
                                  ls, rs->resid_before, &rs->step,
                                  &rs->resid_after, &rs->shift_written)))
                goto fail;
            rs->solve_seconds = clock_seconds() - t0;
            const char *what = worse ? "moved the target vectors further away"
                                     : "wrote less than round_min_shift";
            if (rs->step == 0 && r == 0) {
                rc = err_set(ERR_NUMERIC, "the update moved the target "
                             "vectors further away (shift written %.2f%s); "
                             "nothing was committed and the queue is as it "
                             "was: a larger mom2_update_weight, fewer layers "
                             "or a smaller batch may help", full_written,
                             h.round_halvings ? ", and toward every share "
                                                "tried" : "");
                goto fail;
            }
            if (rs->step > 0) {
                fprintf(stderr, "stamp: round %zu %s (shift written %.2f); "
                        "solved again toward 1/%.0f of the shift, it wrote "
                        "%.2f\n",
                        r + 1, what, full_written, 1 / rs->step,
                        rs->shift_written);
            } else {
                fprintf(stderr, "stamp: warning: round %zu %s (shift written "
                        "%.2f%s); the commit keeps the first %zu round%s\n",
                        r + 1, what, full_written,
                        h.round_halvings ? ", and toward every share tried"
                                         : "",
                        r, r == 1 ? "" : "s");
                rounds_stop = worse ? "a round moved the targets further away"
                                    : "a round wrote less than round_min_shift";
                break;
            }
        }
        rounds_done = r + 1;
    }
    double z_total = 0, solve_total = 0, zflops = 0;
    json_t *round_times = json_array();
    for (size_t r = 0; r < n_rounds; r++) {
        z_total += rounds[r].z_seconds;
        solve_total += rounds[r].solve_seconds;
        zflops += rounds[r].z_flops;
        /* the rounds done, and the one that stopped them (its z time,
         * no solve), so that they add up to "z" and "solve" */
        if (r < rounds_done || (r == rounds_done && rounds_stop))
            json_array_append_new(round_times, json_pack("{s:f,s:f}",
                "z", rounds[r].z_seconds, "solve", rounds[r].solve_seconds));
    }
    json_object_set_new(timings, "z", json_real(z_total));
    json_object_set_new(timings, "solve", json_real(solve_total));
    json_object_set_new(timings, "rounds", round_times);

    if (scores && (rc = timed_scores(&model, tok, ok_facts, n_ok, &after,
                                     timings, "scores_after")))
        goto fail;

    /* one write transaction: tensors, diffs, states, record, HEAD */
    t0 = clock_seconds();
    uint64_t id = 0, parent = 0;
    if ((rc = store_commit_next_id(t, &id))) goto fail;
    if ((rc = store_head(t, &parent))) goto fail;
    json_t *layers = json_array(), *tensors = json_object();
    json_object_set_new(rec, "layers", layers);
    json_object_set_new(rec, "tensors", tensors);
    size_t diff_total = 0;
    for (size_t i = 0; i < L; i++) {
        char name[64], hb[33], ha[33];
        const float *new_ = model.p.fcprojw + h.layers[i] * F * C;
        void *blob = NULL;
        size_t len = 0;
        gpt2_tensor_name(name, sizeof name, GPT2_FCPROJW, h.layers[i]);
        hash_hex(hb, old_tensors[i], F * C * sizeof(float));
        hash_hex(ha, new_, F * C * sizeof(float));
        wdiff_stats ws;
        /* the change has rank <= the number of facts: a low-rank
         * encoding pays only when that is well below the matrix's size
         * (else it is an SVD spent to fall back to the plain one) */
        if (2 * n_ok < (F < C ? F : C))
            rc = wdiff_encode_matrix(old_tensors[i], new_, F, C, &blob, &len);
        else
            rc = wdiff_encode(old_tensors[i], new_, F * C, &blob, &len);
        if (!rc) rc = wdiff_stats_compute(old_tensors[i], new_, F, C, &ws);
        if (!rc) rc = store_diff_put(t, id, name, blob, len);
        free(blob);
        if (!rc) rc = store_tensor_put(t, name, new_, F * C);
        if (rc) goto fail;
        diff_total += len;
        json_object_set_new(tensors, name, json_pack("{s:s,s:s,s:I,s:I}",
            "before", hb, "after", ha, "diff_bytes", (json_int_t)len,
            "raw_bytes", (json_int_t)(F * C * sizeof(float))));
        json_t *layer = json_pack("{s:I,s:s,s:f,s:f,s:f,s:I,s:f}",
            "layer", (json_int_t)h.layers[i], "tensor", name,
            "delta_norm", ws.delta_norm, "rel_norm", ws.rel_norm,
            "max_abs", ws.max_abs, "rank", (json_int_t)ws.rank,
            "resid_before", lstats[i].resid_before);
        if (!rome)
            json_object_set_new(layer, "leverage", json_real(lstats[i].leverage));
        if (lstats[i].nullspace_dim)
            json_object_set_new(layer, "nullspace_dim",
                                json_integer((json_int_t)lstats[i].nullspace_dim));
        json_array_append_new(layers, layer);
    }
    /* how much of the target shift (z - h) the update wrote: low when
     * the batch holds more edits than the layers' keys can tell apart */
    if (!rome) { /* the first round's */
        json_object_set_new(rec, "resid_after", json_real(rounds[0].resid_after));
        json_object_set_new(rec, "shift_written",
                            json_real(rounds[0].shift_written));
    }
    json_t *versions = json_array(), *superseded = json_array();
    json_object_set_new(rec, "versions", versions);
    json_object_set_new(rec, "superseded", superseded);
    for (size_t i = 0; i < n_ok; i++) {
        const store_version *v = &queue[ok_index[i]];
        json_array_append_new(versions, json_integer((json_int_t)v->id));
        if ((rc = find_superseded(t, v, superseded))) goto fail;
        if ((rc = store_version_set_state(t, v->id, VERSION_COMMITTED, id)))
            goto fail;
    }
    char when[32];
    utc_now(when, sizeof when);
    char default_msg[64];
    snprintf(default_msg, sizeof default_msg, "%zu fact%s", n_ok,
             n_ok == 1 ? "" : "s");
    hp_json = hparams_to_json(&h);
    json_object_set_new(rec, "id", json_integer((json_int_t)id));
    json_object_set_new(rec, "parent", json_integer((json_int_t)parent));
    json_object_set_new(rec, "kind", json_string("commit"));
    json_object_set_new(rec, "time", json_string(when));
    json_object_set_new(rec, "message", json_string(message ? message : default_msg));
    json_object_set_new(rec, "method", json_string(method));
    json_object_set_new(rec, "n_facts", json_integer((json_int_t)n_ok));
    json_object_set_new(rec, "failed", json_incref(failed));
    json_object_set_new(rec, "hparams", json_loads(hp_json, 0, NULL));
    json_object_set_new(rec, "threads", json_integer(omp_get_max_threads()));
    json_object_set_new(rec, "diff_bytes", json_integer((json_int_t)diff_total));
    json_object_set_new(rec, "stats_computed", json_boolean(computed));
    if (scores)
        json_object_set_new(rec, "scores", json_pack("{s:o,s:o}", "before",
                            cli_scores_json(&before), "after", cli_scores_json(&after)));
    /* how well the first round's target vectors did: a z whose NLL stays
     * high cannot make its fact's new answer likely, whatever the solver
     * does */
    json_object_set_new(rec, "z_steps_mean", json_real(rounds[0].z_steps_mean));
    json_object_set_new(rec, "z_nll_mean", json_real(rounds[0].z_nll_mean));
    json_object_set_new(rec, "z_likely", json_integer((json_int_t)rounds[0].z_likely));
    if (!rome) {
        json_t *per_round = json_array();
        for (size_t r = 0; r < rounds_done; r++)
            json_array_append_new(per_round, round_json(&rounds[r]));
        json_object_set_new(rec, "rounds", per_round);
        if (rounds_stop)
            json_object_set_new(rec, "rounds_stopped", json_string(rounds_stop));
    }
    if (!rome && h.protect_committed > 0)
        json_object_set_new(rec, "kept", json_integer((json_int_t)n_keep));
    json_object_set_new(rec, "z_gflop", json_real(zflops / 1e9));
    json_object_set_new(timings, "write", json_real(clock_seconds() - t0));
    json_object_set_new(timings, "total", json_real(clock_seconds() - t_start));
    json_object_set_new(rec, "timings", json_incref(timings));
    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) { rc = ERR_NOMEM; goto fail; }
    rc = store_commit_put(t, id, text);
    free(text);
    if (!rc) rc = store_head_set(t, id);
    if (!rc) rc = store_txn_commit(t);
    t = NULL;
    if (rc) goto fail;

    if (json_out) {
        char *out = json_dumps(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(out);
        free(out);
    } else {
        printf("commit %llu: %zu fact%s stamped into layer%s", (unsigned long long)id,
               n_ok, n_ok == 1 ? "" : "s", L == 1 ? "" : "s");
        for (size_t i = 0; i < L; i++) printf("%s%zu", i ? "," : " ", h.layers[i]);
        printf(" (%s, %.1fs)\n", method, clock_seconds() - t_start);
        if (scores)
            printf("  efficacy %.1f -> %.1f   paraphrase %.1f -> %.1f   "
                   "neighbourhood %.1f -> %.1f\n", before.es, after.es,
                   before.ps, after.ps, before.ns, after.ns);
        printf("  target vectors: %zu of %zu make the new answer likely "
               "(NLL < 0.5)\n", rounds[0].z_likely, n_ok);
        if (!rome) {
            printf("  update: wrote %.0f%% of the target shift; leverage",
                   100 * rounds[0].shift_written);
            for (size_t i = 0; i < L; i++)
                printf("%s %.2f (layer %zu)", i ? "," : "", lstats[i].leverage,
                       h.layers[i]);
            printf("\n");
            if (h.protect_committed > 0 && n_keep)
                printf("  kept the %zu committed edit%s where they were "
                       "(protect_committed %g)\n", n_keep,
                       n_keep == 1 ? "" : "s", h.protect_committed);
            if (n_rounds > 1) {
                printf("  %zu round%s", rounds_done, rounds_done == 1 ? "" : "s");
                if (rounds_stop) printf(" of %zu (%s)", n_rounds, rounds_stop);
                printf("; target vectors likely per round:");
                for (size_t r = 0; r < rounds_done; r++)
                    printf(" %zu", rounds[r].z_likely);
                printf("\n");
                for (size_t r = 0; r < rounds_done; r++)
                    if (rounds[r].step < 1)
                        printf("  round %zu solved again toward 1/%.0f of its "
                               "shift\n", r + 1, 1 / rounds[r].step);
            }
        }
        if (json_array_size(failed))
            printf("  %zu fact%s left queued (see warnings above)\n",
                   json_array_size(failed),
                   json_array_size(failed) == 1 ? "" : "s");
    }
    exit_code = EXIT_OK;
    goto out;
fail:
    exit_code = cli_fail_code(rc);
out:
    store_txn_abort(t);
    store_close(s);
    for (size_t i = 0; reqs && i < n_queue; i++) editreq_free(&reqs[i]);
    free(reqs);
    for (size_t i = 0; i < n_keep; i++) editreq_free(&keep[i]);
    free(keep);
    store_versions_free(kept, n_kept);
    free(edited_subjects);
    for (size_t i = 0; cov && i < h.n_layers; i++) free(cov[i]);
    free(cov);
    for (size_t i = 0; chol && i < h.n_layers; i++) free(chol[i]);
    free(chol);
    for (size_t i = 0; old_tensors && i < h.n_layers; i++) free(old_tensors[i]);
    free(old_tensors);
    free(round_start);
    store_versions_free(queue, n_queue);
    editreq_prefixes_free(prefixes, h.n_prefixes);
    gpt2_model_free(&model);
    tokenizer_close(tok);
    free(stored_hparams);
    free(hp_json);
    free(ok_index);
    free(ok_facts);
    free(z);
    free(zinfo);
    free(lstats);
    free(lstats_later);
    free(rounds);
    free(sets);
    json_decref(rec);
    json_decref(failed);
    json_decref(timings);
    return exit_code;
}
