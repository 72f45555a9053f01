/* commit: the phases of a commit up to the edited model (see commit.h):
 * the queue and the model, the hyperparameters, the key statistics and
 * their factors, the edit requests, the first round's target vectors,
 * the rounds of updates, the scores; commit_write.c then writes it all
 * in the same write transaction. Nothing here prints: what the command
 * line showed while a commit ran goes to the caller's progress callback
 * as events. The numerics are those of the command as it was before it
 * moved here, operation for operation. */
#include "repo/commit_impl.h"
#include "base/clock.h"
#include "base/compare.h"
#include "base/dist.h"
#include "base/errors.h"
#include "base/meminfo.h"
#include "base/threads.h"
#include "memit/keystats.h"
#include "memit/spd.h"
#include "store/modelview.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- events --------------------------------------------------------- */

static void emit(commit_state *st, const commit_event *e)
{
    if (st->progress) st->progress(st->ctx, e);
}

/* A progress_fn for the library calls: their labels, prefixed with the
 * round ("round 2/5: z vectors") after the first. */
static void on_progress(void *ctx, const char *label, size_t done,
                        size_t total)
{
    commit_state *st = ctx;
    char text[96];
    if (st->round_prefix) {
        snprintf(text, sizeof text, "%s: %s", st->round_prefix, label);
        label = text;
    }
    snprintf(st->last_label, sizeof st->last_label, "%s", label);
    commit_event e = {COMMIT_EVENT_PROGRESS, label, done, total, NULL};
    emit(st, &e);
}

static void phase_end(commit_state *st)
{
    commit_event e = {COMMIT_EVENT_PHASE_END, NULL, 0, 0, NULL};
    emit(st, &e);
    meminfo_debug_rss(st->last_label);
}

/* A WARNING or NOTE event with a formatted text. */
static void tell(commit_state *st, commit_event_kind kind, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));
static void tell(commit_state *st, commit_event_kind kind, const char *fmt,
                 ...)
{
    char *text = NULL;
    va_list ap;
    if (!st->progress) return;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    commit_event e = {kind, NULL, 0, 0, text};
    emit(st, &e);
    free(text);
}

/* ---- small pieces ---------------------------------------------------- */

/* The round a fault-injection variable names (commit.h): N, or 0 when
 * unset or not a number >= 1. */
static size_t test_round(const char *name)
{
    const char *env = getenv(name);
    char *end;
    if (!env || !*env) return 0;
    unsigned long long n = strtoull(env, &end, 10);
    return *end || n < 1 ? 0 : (size_t)n;
}

/* Applies KEY=VALUE (VALUE a JSON number or array) over h. */
static int apply_set(hparams *h, const char *kv, const lm_config *c)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return err_set(ERR_INVALID, "--set '%s': expected KEY=VALUE", kv);
    size_t len = strlen(kv) + 8;
    char *json = malloc(len);
    if (!json) return err_set(ERR_NOMEM, "out of memory");
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

static void summarise_z(const ztarget_info *zi, size_t n, commit_round *r)
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

/* ES/PS/NS of the committed facts under the model as it is now. */
static int timed_scores(commit_state *st, eval_scores *out, double *seconds)
{
    double t0 = clock_seconds();
    int rc = eval_facts(&st->model, st->tok, st->ok_facts, st->n_ok, out,
                        NULL, on_progress, st);
    phase_end(st);
    if (!rc) *seconds = clock_seconds() - t0;
    return rc;
}

/* ---- the phases before the rounds ------------------------------------ */

/* The write transaction, a check of the base model, the queue, the
 * current model and its tokenizer. */
static int commit_begin(commit_state *st, store *s)
{
    size_t limit = st->rome ? 1 : st->opt->limit;
    int rc = store_txn_begin(s, &st->t, 1);
    if (rc) return rc;
    if ((rc = modelview_verify_base(st->t))) {
        char why[512];
        snprintf(why, sizeof why, "%s", err_message(rc));
        return err_set(rc, "%s; refusing to commit (see 'stamp fsck')", why);
    }
    if ((rc = store_queue_list(st->t, limit, &st->queue, &st->n_queue)))
        return rc;
    if (st->n_queue == 0)
        return err_set(ERR_EMPTY, "nothing to commit: the queue is empty");
    if ((rc = modelview_load(&st->model, st->t))) return rc;
    return modelview_tokenizer(st->t, &st->tok);
}

/* Defaults for the model, then the store's, then the options'. */
static int commit_hparams(commit_state *st)
{
    const lm_config *c = &st->model.config;
    hparams *h = &st->h;
    char *stored = NULL;
    hparams_default(h, c);
    int rc = store_meta_get(st->t, "hparams", &stored);
    if (rc == ERR_NOTFOUND) { err_clear(); rc = 0; }
    else if (!rc) rc = hparams_apply_json(h, stored, c);
    free(stored);
    if (rc) return rc;
    if (st->opt->layers)
        rc = hparams_parse_layers(h, st->opt->layers, c);
    for (size_t i = 0; !rc && i < st->opt->n_sets; i++)
        rc = apply_set(h, st->opt->sets[i], c);
    if (rc) {
        st->bad_option = 1;
        return rc;
    }
    if (st->rome) { /* one layer: the top of the band, where z is found */
        h->layers[0] = h->layers[h->n_layers - 1];
        h->n_layers = 1;
    }
    st->zlayer = h->layers[h->n_layers - 1];
    st->L = h->n_layers;
    st->C = c->n_embd;
    st->F = c->n_inner;
    return 0;
}

/* A keystats_note_fn: the statistics' memory, as a NOTE event. */
static void on_note(void *ctx, const char *text)
{
    tell(ctx, COMMIT_EVENT_NOTE, "%s", text);
}

/* Layer i's C_l with this commit's ridge, factored in place when `factor`
 * (only the upper triangle is ever written: the factor costs a
 * triangle's memory) into st->chol[i]; kept whole in st->cov[i] when it
 * is not to be factored or is not positive definite (the direct solve
 * then says why). */
static int layer_statistics(commit_state *st, size_t i, int factor)
{
    size_t F = 0, layer = st->h.layers[i];
    double t0 = clock_seconds(), *mean = NULL;
    int rc = keystats_load_mean(st->t, layer, factor, &mean, &F);
    if (!rc && F != st->F)
        rc = err_set(ERR_FORMAT, "layer %zu: the key statistics are %zu x "
                     "%zu, the model's keys %zu", layer, F, F, st->F);
    if (rc) { free(mean); return rc; }
    /* the ridge goes on this commit's copy, never into the store */
    spd_add_ridge(mean, F, st->h.mom2_ridge);
    st->tm.stats += clock_seconds() - t0;
    if (!factor) { st->cov[i] = mean; return 0; }
    t0 = clock_seconds();
    /* dpotrf's bits depend on OpenBLAS's thread count: never the
     * automatic one (base/threads.h) */
    int before = threads_exact_begin();
    int factored = spd_cholesky_in_place(mean, F);
    threads_exact_end(before);
    st->tm.factor += clock_seconds() - t0;
    if (factored > 0) { st->chol[i] = mean; return 0; }
    free(mean);
    if (factored < 0) return factored;
    return layer_statistics(st, i, 0);
}

/* The key statistics of the edited layers (computed into the store when
 * missing), the ridge on this commit's copy, and each layer's Cholesky
 * factor, once for every round (a round's solve is then O(F^2 n) instead
 * of O(F^3)); C_l itself stays only where it is not positive definite
 * or ROME or the null space update needs it. One layer at a time: its
 * record read, its mean formed and factored in place, the store's pages
 * given back, before the next, so that at most one layer's record and
 * the factors so far are in memory: the factors cost the stored size (a
 * triangle each), and that with one layer's (F, F) must fit. */
static int commit_statistics(commit_state *st)
{
    const hparams *h = &st->h;
    size_t L = st->L, F = st->F;
    double t0 = clock_seconds();
    st->cov = calloc(L, sizeof *st->cov);
    st->chol = calloc(L, sizeof *st->chol);
    if (!st->cov || !st->chol) return err_set(ERR_NOMEM, "out of memory");
    int rc = keystats_ensure(st->t, h->layers, L, h->stats_samples,
                             st->opt->corpus, &st->stats_computed, on_note,
                             on_progress, st);
    phase_end(st);
    if (rc) return rc;
    st->tm.stats = clock_seconds() - t0;
    int factor = !(st->rome || h->nullspace_threshold > 0 ||
                   h->mom2_update_weight <= 0);
    uint64_t FF = (uint64_t)F * F * 8, tri = (uint64_t)F * (F + 1) / 2 * 8;
    char what[160];
    if (factor)
        snprintf(what, sizeof what, "%zu factor%s of a triangle of %zu^2 x 8 "
                 "bytes, and one layer's %zu^2 x 8 bytes while it is loaded",
                 L, L == 1 ? "" : "s", F, F);
    else
        snprintf(what, sizeof what, "%zu layer%s x %zu^2 x 8 bytes", L,
                 L == 1 ? "" : "s", F);
    if ((rc = keystats_check_memory(factor ? L * tri + FF : L * FF, what,
                                    NULL, NULL)))
        return rc;
    for (size_t i = 0; !rc && i < L; i++) rc = layer_statistics(st, i, factor);
    st->factored = factor;
    return rc;
}

/* Records a fact left queued (the record's "failed"). */
static void leave_queued(commit_state *st, const store_version *v,
                         const char *reason)
{
    json_array_append_new(st->failed, json_pack("{s:I,s:s}", "version",
                          (json_int_t)v->id, "reason", reason));
}

/* The committed edits the update should keep (protect_committed): those
 * of subjects this batch does not edit again (a subject's facts share
 * its key, and the new target vectors already hold what the model says
 * of it). */
static int commit_kept_edits(commit_state *st)
{
    const hparams *h = &st->h;
    int rc = store_committed_list(st->t, 0, &st->kept, &st->n_kept);
    if (rc) return rc;
    st->keep = calloc(st->n_kept ? st->n_kept : 1, sizeof *st->keep);
    if (!st->keep) return err_set(ERR_NOMEM, "out of memory");
    if ((rc = subjects_sorted(st->queue, st->n_queue, &st->edited_subjects)))
        return rc;
    for (size_t i = 0; i < st->n_kept; i++) {
        const char *subject = st->kept[i].f.subject;
        if (bsearch(&subject, st->edited_subjects, st->n_queue,
                    sizeof *st->edited_subjects, compare_strings))
            continue;
        rc = editreq_build(&st->keep[st->n_keep], &st->kept[i].f, st->tok,
                           st->prefixes, h->n_prefixes,
                           st->model.config.n_positions);
        if (rc) { err_clear(); continue; } /* not to be kept */
        st->n_keep++;
    }
    return 0;
}

/* The context prefixes and an edit request per queued fact (one that
 * cannot be built is left queued), and the committed edits to keep. */
static int commit_requests(commit_state *st)
{
    const hparams *h = &st->h;
    double t0 = clock_seconds();
    int rc = editreq_prefixes(&st->prefixes, &st->model, st->tok,
                              h->n_prefixes, h->prefix_tokens, h->seed);
    if (rc) return rc;
    st->reqs = calloc(st->n_queue, sizeof *st->reqs);
    st->ok_index = malloc(st->n_queue * sizeof(size_t));
    if (!st->reqs || !st->ok_index)
        return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < st->n_queue; i++) {
        const store_version *v = &st->queue[i];
        rc = editreq_build(&st->reqs[st->n_req], &v->f, st->tok,
                           st->prefixes, h->n_prefixes,
                           st->model.config.n_positions);
        if (rc) {
            leave_queued(st, v, err_message(rc));
            tell(st, COMMIT_EVENT_WARNING, "'%s' left queued: %s",
                 v->f.subject, err_message(rc));
            err_clear();
            continue;
        }
        st->ok_index[st->n_req++] = i;
    }
    if (!st->rome && h->protect_committed > 0 &&
        (rc = commit_kept_edits(st)))
        return rc;
    st->tm.prepare = clock_seconds() - t0;

    st->ok_facts = malloc((st->n_req ? st->n_req : 1) * sizeof *st->ok_facts);
    if (!st->ok_facts) return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < st->n_req; i++)
        st->ok_facts[i] = st->queue[st->ok_index[i]].f;
    return 0;
}

/* The first round's target vectors; the facts whose z is not finite are
 * reported, left queued and dropped (the rest move up, in order). */
static int commit_first_targets(commit_state *st)
{
    size_t n_req = st->n_req, C = st->C;
    double t0 = clock_seconds();
    st->z = malloc((n_req ? n_req : 1) * C * sizeof(float));
    st->zinfo = calloc(n_req ? n_req : 1, sizeof *st->zinfo);
    if (!st->z || !st->zinfo) return err_set(ERR_NOMEM, "out of memory");
    int rc = dist_active()
        ? commit_dist_targets(st, n_req, 1, on_progress, st)
        : ztarget_compute(&st->model, st->reqs, n_req, st->zlayer, &st->h,
                          st->z, NULL, st->zinfo, on_progress, st);
    phase_end(st);
    if (rc) return rc;
    st->z0_seconds = clock_seconds() - t0;
    for (size_t i = 0; i < n_req; i++) {
        size_t k = st->n_ok;
        if (!st->zinfo[i].failed) {
            if (k != i) {
                editreq tmp = st->reqs[k];
                st->reqs[k] = st->reqs[i];
                st->reqs[i] = tmp;
                memcpy(st->z + k * C, st->z + i * C, C * sizeof(float));
                st->ok_index[k] = st->ok_index[i];
                st->ok_facts[k] = st->ok_facts[i];
                st->zinfo[k] = st->zinfo[i];
            }
            st->n_ok++;
            continue;
        }
        const store_version *v = &st->queue[st->ok_index[i]];
        leave_queued(st, v, "target vector is not finite");
        tell(st, COMMIT_EVENT_WARNING, "'%s' left queued: its target vector "
             "is not finite", v->f.subject);
    }
    if (st->n_ok == 0)
        return err_set(ERR_NUMERIC, "no fact could be committed (%zu failed)",
                       st->n_queue);
    return 0;
}

/* ---- the rounds ------------------------------------------------------ */

/* The buffers of the rounds, the edited tensors before the commit (for
 * the diffs) and the first round's figures from its target vectors. */
static int rounds_setup(commit_state *st)
{
    size_t L = st->L, F = st->F, C = st->C;
    st->old_tensors = malloc(L * F * C * sizeof *st->old_tensors);
    st->lstats = calloc(L, sizeof *st->lstats);
    st->lstats_later = calloc(L, sizeof *st->lstats_later);
    st->n_rounds = st->rome || st->h.rounds == 0 ? 1 : st->h.rounds;
    st->rounds = calloc(st->n_rounds, sizeof *st->rounds);
    if (!st->old_tensors || !st->lstats || !st->lstats_later || !st->rounds)
        return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < L; i++) {
        lm_edit_view v;
        int rc = lm_edit_view_get(&st->model, st->h.layers[i], &v);
        if (rc) return rc;
        memcpy(st->old_tensors + i * F * C, v.w, F * C * sizeof(float));
    }
    summarise_z(st->zinfo, st->n_ok, &st->rounds[0]);
    st->rounds[0].z_seconds = st->z0_seconds;
    return 0;
}

/* Round r > 0's target vectors, found again in the model the rounds
 * before edited: an edit another one pushed aside is aimed again; a fact
 * the model now says gets z = h, a row that holds it. *stop when one is
 * not finite or every fact is said: the rounds end before this one. */
static int round_targets(commit_state *st, size_t r, int *stop)
{
    commit_round *rs = &st->rounds[r];
    size_t n_ok = st->n_ok;
    double t0 = clock_seconds();
    int rc = dist_active()
        ? commit_dist_targets(st, n_ok, 0, on_progress, st)
        : ztarget_compute(&st->model, st->reqs, n_ok, st->zlayer, &st->h,
                          st->z, NULL, st->zinfo, on_progress, st);
    phase_end(st);
    if (rc) return rc;
    rs->z_seconds = clock_seconds() - t0;
    if (r + 1 == test_round("STAMP_TEST_NONFINITE_Z_ROUND")) {
        st->z[0] = NAN;
        st->zinfo[0].failed = 1;
    }
    size_t bad = 0;
    while (bad < n_ok && !st->zinfo[bad].failed) bad++;
    if (bad < n_ok) {
        tell(st, COMMIT_EVENT_WARNING, "round %zu: the target vector of '%s' "
             "is not finite; the commit keeps the first %zu round%s", r + 1,
             st->ok_facts[bad].subject, r, r == 1 ? "" : "s");
        st->rounds_stop = "a target vector was not finite";
        *stop = 1;
        return 0;
    }
    summarise_z(st->zinfo, n_ok, rs);
    if (rs->z_stepped == 0) { /* the model says every new fact */
        st->rounds_stop = "every fact was said";
        *stop = 1;
    }
    return 0;
}

/* A round whose update wrote less than round_min_shift (>= 0) of what
 * was left, or left the targets further away than it found them: solved
 * again toward a share of the shift, or taken back (the commit then
 * keeps the rounds before this one, *stop). The first round only when
 * it aims worse: with no round before it, what it writes is the whole
 * commit, and when no share helps the commit fails. t0: when the
 * round's solve began. */
static int round_halve(commit_state *st, size_t r, double t0, int *stop)
{
    commit_round *rs = &st->rounds[r];
    const hparams *h = &st->h;
    int worse = rs->shift_written < 0;
    double full_written = rs->shift_written;
    int rc = memit_halve(&st->model, st->reqs, st->n_ok, st->keep, st->n_keep,
                         st->z, h, (const double *const *)st->cov,
                         (const double *const *)st->chol,
                         r ? st->round_start : st->old_tensors,
                         r ? st->lstats_later : st->lstats, rs->resid_before,
                         &rs->step, &rs->resid_after, &rs->shift_written);
    if (rc) return rc;
    rs->solve_seconds = clock_seconds() - t0;
    const char *what = worse ? "moved the target vectors further away"
                             : "wrote less than round_min_shift";
    if (rs->step == 0 && r == 0)
        return err_set(ERR_NUMERIC, "the update moved the target vectors "
                       "further away (shift written %.2f%s); nothing was "
                       "committed and the queue is as it was: a larger "
                       "mom2_update_weight, fewer layers or a smaller batch "
                       "may help", full_written,
                       h->round_halvings ? ", and toward every share tried"
                                         : "");
    if (rs->step > 0) {
        tell(st, COMMIT_EVENT_NOTE, "round %zu %s (shift written %.2f); "
             "solved again toward 1/%.0f of the shift, it wrote %.2f",
             r + 1, what, full_written, 1 / rs->step, rs->shift_written);
        return 0;
    }
    tell(st, COMMIT_EVENT_WARNING, "round %zu %s (shift written %.2f%s); the "
         "commit keeps the first %zu round%s", r + 1, what, full_written,
         h->round_halvings ? ", and toward every share tried" : "", r,
         r == 1 ? "" : "s");
    st->rounds_stop = worse ? "a round moved the targets further away"
                            : "a round wrote less than round_min_shift";
    *stop = 1;
    return 0;
}

/* Round r's update (MEMIT over the layers, or ROME), from the model the
 * rounds before left; halved or taken back when it aims worse. */
static int round_solve(commit_state *st, size_t r, int *stop)
{
    commit_round *rs = &st->rounds[r];
    const hparams *h = &st->h;
    memit_layer_stats *ls = r ? st->lstats_later : st->lstats;
    size_t F = st->F, C = st->C;
    /* to solve this round again, or take it back, if it aims worse: the
     * first round starts from the matrices before the commit, kept
     * anyway for the diffs, so only a later round needs a copy */
    int rc;
    if (r && !st->round_start &&
        !(st->round_start = malloc(st->L * F * C * sizeof *st->round_start)))
        return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; r && i < st->L; i++) {
        lm_edit_view v;
        if ((rc = lm_edit_view_get(&st->model, h->layers[i], &v))) return rc;
        memcpy(st->round_start + i * F * C, v.w, F * C * sizeof(float));
    }
    double t0 = clock_seconds();
    if (st->rome)
        rc = rome_apply(&st->model, st->reqs, st->z, st->zlayer, h,
                        st->cov[0], ls);
    else
        rc = memit_apply(&st->model, st->reqs, st->n_ok, st->keep, st->n_keep,
                         st->z, h, (const double *const *)st->cov,
                         (const double *const *)st->chol, ls,
                         &rs->resid_after, on_progress, st);
    phase_end(st);
    if (rc) return rc;
    rs->solve_seconds = clock_seconds() - t0;
    rs->resid_before = ls[0].resid_before;
    if (!st->rome)
        rs->shift_written = memit_shift_written(rs->resid_before,
                                                rs->resid_after, st->z,
                                                st->n_ok, C);
    if (r + 1 == test_round("STAMP_TEST_WORSE_ROUND"))
        rs->shift_written = -1;
    rs->step = 1;
    if (!st->rome && rs->shift_written < (r ? h->round_min_shift : 0))
        return round_halve(st, r, t0, stop);
    return 0;
}

/* The update, in rounds (MEMIT; ROME takes one), then the z and solve
 * times summed over them. */
static int commit_rounds(commit_state *st)
{
    int rc = rounds_setup(st);
    for (size_t r = 0; !rc && r < st->n_rounds; r++) {
        char label[64];
        int stop = 0;
        snprintf(label, sizeof label, "round %zu/%zu", r + 1, st->n_rounds);
        st->round_prefix = r ? label : NULL;
        if (r && ((rc = round_targets(st, r, &stop)) || stop)) break;
        if ((rc = round_solve(st, r, &stop)) || stop) break;
        st->rounds_done = r + 1;
    }
    st->round_prefix = NULL;
    if (rc) return rc;
    for (size_t r = 0; r < st->n_rounds; r++) {
        st->tm.z += st->rounds[r].z_seconds;
        st->tm.solve += st->rounds[r].solve_seconds;
    }
    return 0;
}

/* ---- the whole ------------------------------------------------------- */

static void commit_state_free(commit_state *st)
{
    store_txn_abort(st->t);
    for (size_t i = 0; st->reqs && i < st->n_queue; i++)
        editreq_free(&st->reqs[i]);
    free(st->reqs);
    for (size_t i = 0; i < st->n_keep; i++) editreq_free(&st->keep[i]);
    free(st->keep);
    store_versions_free(st->kept, st->n_kept);
    free(st->edited_subjects);
    for (size_t i = 0; st->cov && i < st->L; i++) free(st->cov[i]);
    free(st->cov);
    for (size_t i = 0; st->chol && i < st->L; i++) free(st->chol[i]);
    free(st->chol);
    free(st->old_tensors);
    free(st->round_start);
    store_versions_free(st->queue, st->n_queue);
    editreq_prefixes_free(st->prefixes, st->h.n_prefixes);
    lm_model_free(&st->model);
    tokenizer_close(st->tok);
    free(st->ok_index);
    free(st->ok_facts);
    free(st->z);
    free(st->zinfo);
    free(st->lstats);
    free(st->lstats_later);
    free(st->rounds);
    json_decref(st->failed);
}

/* Hands what the caller keeps from st over to out. */
static void commit_result_take(commit_result *out, commit_state *st)
{
    out->method = st->rome ? COMMIT_ROME : COMMIT_MEMIT;
    out->h = st->h;
    out->n_facts = st->n_ok;
    out->n_failed = json_array_size(st->failed);
    out->n_kept = st->n_keep;
    out->stats_computed = st->stats_computed;
    out->scored = st->scores;
    out->before = st->before;
    out->after = st->after;
    out->layers = st->lstats;
    st->lstats = NULL;
    out->rounds = st->rounds;
    st->rounds = NULL;
    out->n_rounds = st->n_rounds;
    out->rounds_done = st->rounds_done;
    out->rounds_stop = st->rounds_stop;
    out->factored = st->factored;
    out->timings = st->tm;
}

int commit_run(store *s, const commit_options *opt,
               commit_progress_fn progress, void *ctx, commit_result *out)
{
    commit_state st = {0};
    int rc;
    memset(out, 0, sizeof *out);
    st.opt = opt;
    st.progress = progress;
    st.ctx = ctx;
    st.rome = opt->method == COMMIT_ROME;
    st.scores = !opt->no_scores;
    st.t_start = clock_seconds();
    if (!(st.failed = json_array()))
        return err_set(ERR_NOMEM, "out of memory");
    if (opt->threads > 0) threads_use(opt->threads);
    if ((rc = commit_begin(&st, s))) goto out;
    if ((rc = commit_hparams(&st))) {
        out->bad_option = st.bad_option;
        goto out;
    }
    if ((rc = commit_statistics(&st)) || (rc = commit_requests(&st)) ||
        (rc = commit_first_targets(&st)))
        goto out;
    /* scores before, on the facts that go in (z left the model as it was) */
    if (st.scores && (rc = timed_scores(&st, &st.before, &st.tm.scores_before)))
        goto out;
    rc = commit_rounds(&st);
    /* the MPI workers' part is over: they exit, rank 0 goes on alone
     * (nothing is written before every rank has delivered) */
    if (!rc) rc = dist_finish();
    if (rc) goto out;
    if (st.scores && (rc = timed_scores(&st, &st.after, &st.tm.scores_after)))
        goto out;
    if ((rc = commit_write(&st, &out->id, &out->parent, &out->record)))
        goto out;
    commit_result_take(out, &st);
out:
    /* ERR_EMPTY means the empty queue alone (a corpus without keys
     * fails too, and is not "nothing to commit") */
    if (rc == ERR_EMPTY && st.n_queue) rc = ERR_INVALID;
    commit_state_free(&st);
    return rc;
}

void commit_result_free(commit_result *r)
{
    if (!r) return;
    json_decref(r->record);
    free(r->layers);
    free(r->rounds);
    memset(r, 0, sizeof *r);
}

const char *commit_method_name(commit_method m)
{
    return m == COMMIT_ROME ? "rome" : "memit";
}
