/* commit_write: the end of a commit (see commit.h): one write
 * transaction that stores the edited tensors, an exact diff of each
 * (from the model before the first round), the new fact states (and the
 * versions the commit supersedes), the commit record
 * (docs/commit-record.md) and HEAD. The record's keys are written in one
 * fixed order, the order `stamp commit --json` and `stamp show --json`
 * print them in. */
#include "repo/commit_impl.h"
#include "base/clock.h"
#include "base/errors.h"
#include "base/hash.h"
#include "base/threads.h"
#include "repo/wdiff.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* a score over `n` prompts: null over none */
static json_t *score_or_null(double v, size_t n)
{
    return n ? json_real(v) : json_null();
}

json_t *commit_scores_json(const eval_scores *s)
{
    size_t nf = s->n_facts, np = s->n_paraphrase, nn = s->n_neighbor;
    return json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:I}",
                     "n_facts", (json_int_t)nf, "es", score_or_null(s->es, nf),
                     "ps", score_or_null(s->ps, np), "ns",
                     score_or_null(s->ns, nn), "score",
                     score_or_null(s->score, nf), "es_mag",
                     score_or_null(s->es_mag, nf), "ps_mag",
                     score_or_null(s->ps_mag, np), "ns_mag",
                     score_or_null(s->ns_mag, nn), "es_acc",
                     score_or_null(s->es_acc, nf), "ps_acc",
                     score_or_null(s->ps_acc, np), "ns_acc",
                     score_or_null(s->ns_acc, nn), "n_paraphrase",
                     (json_int_t)np, "n_neighbor", (json_int_t)nn);
}

static void utc_now(char *buf, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Each edited tensor: its diff from before the commit and its new value
 * into the store; its "tensors" entry (hashes, sizes) and its "layers"
 * entry (the change's statistics and the first round's solve). */
static int write_tensors(commit_state *st, uint64_t id, json_t *layers,
                         json_t *tensors, size_t *diff_total)
{
    size_t F = st->F, C = st->C;
    for (size_t i = 0; i < st->L; i++) {
        char name[96], hb[33], ha[33];
        size_t layer = st->h.layers[i];
        const float *old = st->old_tensors + i * F * C;
        const memit_layer_stats *ls = &st->lstats[i];
        void *blob = NULL;
        size_t len = 0;
        wdiff_stats ws;
        lm_edit_view v;
        int rc = lm_edit_view_get(&st->model, layer, &v);
        if (rc) return rc;
        const float *new_ = v.w;
        size_t rows = v.rows, cols = v.cols;
        lm_edit_name(&st->model, layer, name, sizeof name);
        hash_hex(hb, old, F * C * sizeof(float));
        hash_hex(ha, new_, F * C * sizeof(float));
        /* the change has rank <= the number of facts: a low-rank
         * encoding pays only when that is well below the matrix's size
         * (else it is an SVD spent to fall back to the plain one), and
         * only in F32: rounding to BF16 or F16 makes it full-rank */
        if (v.stored == LINALG_F32 && 2 * st->n_ok < (F < C ? F : C))
            rc = wdiff_encode_matrix(old, new_, rows, cols, &blob, &len);
        else
            rc = wdiff_encode(old, new_, F * C, &blob, &len);
        if (!rc) rc = wdiff_stats_compute(old, new_, rows, cols, &ws);
        if (!rc) rc = store_diff_put(st->t, id, name, blob, len);
        free(blob);
        if (!rc) rc = store_tensor_put(st->t, name, new_, F * C);
        if (rc) return rc;
        *diff_total += len;
        json_object_set_new(tensors, name, json_pack("{s:s,s:s,s:I,s:I}",
            "before", hb, "after", ha, "diff_bytes", (json_int_t)len,
            "raw_bytes", (json_int_t)(F * C * sizeof(float))));
        json_t *entry = json_pack("{s:I,s:s,s:f,s:f,s:f,s:I,s:f}",
            "layer", (json_int_t)layer, "tensor", name,
            "delta_norm", ws.delta_norm, "rel_norm", ws.rel_norm,
            "max_abs", ws.max_abs, "rank", (json_int_t)ws.rank,
            "resid_before", ls->resid_before);
        if (!st->rome)
            json_object_set_new(entry, "leverage", json_real(ls->leverage));
        if (ls->nullspace_dim)
            json_object_set_new(entry, "nullspace_dim",
                                json_integer((json_int_t)ls->nullspace_dim));
        json_array_append_new(layers, entry);
    }
    return 0;
}

/* The versions committed before that this one replaces (same slot)
 * become SUPERSEDED; their ids go into superseded. */
static int find_superseded(store_txn *t, const store_version *v,
                           json_t *superseded)
{
    store_version *hist = NULL;
    size_t n = 0;
    char *slot = fact_slot(&v->f);
    int rc = slot ? store_subject_history(t, v->f.subject, &hist, &n)
                  : err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        if (hist[i].id == v->id || hist[i].state != VERSION_COMMITTED)
            continue;
        char *other = fact_slot(&hist[i].f);
        if (!other) { rc = err_set(ERR_NOMEM, "out of memory"); break; }
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

/* The committed versions become COMMITTED in commit id. */
static int mark_versions(commit_state *st, uint64_t id, json_t *versions,
                         json_t *superseded)
{
    int rc;
    for (size_t i = 0; i < st->n_ok; i++) {
        const store_version *v = &st->queue[st->ok_index[i]];
        json_array_append_new(versions, json_integer((json_int_t)v->id));
        if ((rc = find_superseded(st->t, v, superseded))) return rc;
        if ((rc = store_version_set_state(st->t, v->id, VERSION_COMMITTED, id)))
            return rc;
    }
    return 0;
}

/* s as a JSON string: a sampled prefix may end inside a character, so
 * each byte that starts no UTF-8 character jansson takes becomes U+FFFD */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    size_t n = strlen(s), o = 0;
    char *t = j ? NULL : malloc(3 * n + 1);
    if (j || !t) return j;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >> 5 == 6 ? 2 : c >> 4 == 14 ? 3 : c >> 3 == 30 ? 4 : 0;
        json_t *one = len && i + len <= n ? json_stringn(s + i, len) : NULL;
        if (one) {
            memcpy(t + o, s + i, len);
            o += len;
            i += len;
            json_decref(one);
        } else {
            memcpy(t + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(t, o);
    free(t);
    return j;
}

static json_t *round_json(const commit_round *r)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f}",
                     "z_likely", (json_int_t)r->z_likely,
                     "z_steps_mean", r->z_steps_mean,
                     "z_nll_mean", r->z_nll_mean,
                     "shift_written", r->shift_written,
                     "step", r->step);
}

/* The record's "timings": the phases that ran, each round's z and solve
 * (the rounds done, and the one that stopped them: its z time, no solve,
 * so that they add up to "z" and "solve"). */
static json_t *timings_json(const commit_state *st)
{
    const commit_timings *tm = &st->tm;
    json_t *o = json_object(), *rounds = json_array();
    for (size_t r = 0; r < st->n_rounds; r++)
        if (r < st->rounds_done || (r == st->rounds_done && st->rounds_stop))
            json_array_append_new(rounds, json_pack("{s:f,s:f}",
                "z", st->rounds[r].z_seconds,
                "solve", st->rounds[r].solve_seconds));
    json_object_set_new(o, "stats", json_real(tm->stats));
    if (st->factored) json_object_set_new(o, "factor", json_real(tm->factor));
    json_object_set_new(o, "prepare", json_real(tm->prepare));
    if (st->scores)
        json_object_set_new(o, "scores_before", json_real(tm->scores_before));
    json_object_set_new(o, "z", json_real(tm->z));
    json_object_set_new(o, "solve", json_real(tm->solve));
    json_object_set_new(o, "rounds", rounds);
    if (st->scores)
        json_object_set_new(o, "scores_after", json_real(tm->scores_after));
    json_object_set_new(o, "write", json_real(tm->write));
    json_object_set_new(o, "total", json_real(tm->total));
    return o;
}

/* What the commit is and how it was made, after "versions" and
 * "superseded": message, method, hyperparameters, scores, the target
 * vectors' and rounds' figures. */
static int record_fill(const commit_state *st, json_t *rec, uint64_t id,
                       uint64_t parent, size_t diff_total)
{
    const commit_round *first = &st->rounds[0];
    char when[32], default_msg[64];
    double zflops = 0;
    utc_now(when, sizeof when);
    snprintf(default_msg, sizeof default_msg, "%zu fact%s", st->n_ok,
             st->n_ok == 1 ? "" : "s");
    char *hp_json = hparams_to_json(&st->h);
    if (!hp_json) return err_set(ERR_NOMEM, "out of memory");
    json_object_set_new(rec, "id", json_integer((json_int_t)id));
    json_object_set_new(rec, "parent", json_integer((json_int_t)parent));
    json_object_set_new(rec, "kind", json_string("commit"));
    json_object_set_new(rec, "time", json_string(when));
    json_object_set_new(rec, "message", json_string(st->opt->message
                                                    ? st->opt->message
                                                    : default_msg));
    json_object_set_new(rec, "method", json_string(st->rome ? "rome" : "memit"));
    json_object_set_new(rec, "n_facts", json_integer((json_int_t)st->n_ok));
    json_object_set_new(rec, "failed", json_incref(st->failed));
    json_object_set_new(rec, "hparams", json_loads(hp_json, 0, NULL));
    free(hp_json);
    /* the context prefixes the target vectors were found behind (hparams'
     * seed, n_prefixes and prefix_tokens sample them again) */
    if (st->h.n_prefixes && st->prefixes) {
        json_t *pre = json_array();
        for (size_t i = 0; i < st->h.n_prefixes; i++)
            json_array_append_new(pre, json_text(st->prefixes[i]));
        json_object_set_new(rec, "prefixes", pre);
    }
    json_object_set_new(rec, "threads", json_integer(omp_get_max_threads()));
    /* how the threads waited: a busy machine's timings depend on it */
    json_object_set_new(rec, "omp_wait", json_string(threads_wait_policy()));
    /* the count the command would run without --threads, and why */
    json_object_set_new(rec, "threads_default", json_string(threads_count_source()));
    json_object_set_new(rec, "diff_bytes", json_integer((json_int_t)diff_total));
    json_object_set_new(rec, "stats_computed", json_boolean(st->stats_computed));
    if (st->scores)
        json_object_set_new(rec, "scores", json_pack("{s:o,s:o}",
                            "before", commit_scores_json(&st->before),
                            "after", commit_scores_json(&st->after)));
    /* how well the first round's target vectors did: a z whose NLL stays
     * high cannot make its fact's new answer likely, whatever the solver
     * does */
    json_object_set_new(rec, "z_steps_mean", json_real(first->z_steps_mean));
    json_object_set_new(rec, "z_nll_mean", json_real(first->z_nll_mean));
    json_object_set_new(rec, "z_likely", json_integer((json_int_t)first->z_likely));
    if (!st->rome) {
        json_t *per_round = json_array();
        for (size_t r = 0; r < st->rounds_done; r++)
            json_array_append_new(per_round, round_json(&st->rounds[r]));
        json_object_set_new(rec, "rounds", per_round);
        if (st->rounds_stop)
            json_object_set_new(rec, "rounds_stopped",
                                json_string(st->rounds_stop));
    }
    if (!st->rome && st->h.protect_committed > 0)
        json_object_set_new(rec, "kept", json_integer((json_int_t)st->n_keep));
    for (size_t r = 0; r < st->n_rounds; r++) zflops += st->rounds[r].z_flops;
    json_object_set_new(rec, "z_gflop", json_real(zflops / 1e9));
    return 0;
}

int commit_write(commit_state *st, uint64_t *id_out, uint64_t *parent_out,
                 json_t **record)
{
    double t0 = clock_seconds();
    uint64_t id = 0, parent = 0;
    size_t diff_total = 0;
    json_t *rec = json_object(), *layers = json_array(),
           *tensors = json_object(), *versions = json_array(),
           *superseded = json_array();
    int rc = 0;
    if (!rec || !layers || !tensors || !versions || !superseded) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = store_commit_next_id(st->t, &id)) ||
        (rc = store_head(st->t, &parent)) ||
        (rc = write_tensors(st, id, layers, tensors, &diff_total)) ||
        (rc = mark_versions(st, id, versions, superseded)))
        goto fail;
    json_object_set_new(rec, "layers", layers);
    json_object_set_new(rec, "tensors", tensors);
    /* how much of the target shift (z - h) the update wrote: low when
     * the batch holds more edits than the layers' keys can tell apart */
    if (!st->rome) { /* the first round's */
        json_object_set_new(rec, "resid_after",
                            json_real(st->rounds[0].resid_after));
        json_object_set_new(rec, "shift_written",
                            json_real(st->rounds[0].shift_written));
    }
    json_object_set_new(rec, "versions", versions);
    json_object_set_new(rec, "superseded", superseded);
    layers = tensors = versions = superseded = NULL; /* rec has them */
    if ((rc = record_fill(st, rec, id, parent, diff_total))) goto fail;
    st->tm.write = clock_seconds() - t0;
    st->tm.total = clock_seconds() - st->t_start;
    json_object_set_new(rec, "timings", timings_json(st));

    char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = store_commit_put(st->t, id, text);
    free(text);
    if (!rc) rc = store_head_set(st->t, id);
    if (!rc) {
        rc = store_txn_commit(st->t); /* frees it, committed or not */
        st->t = NULL;
    }
    if (rc) goto fail; /* a transaction left open is aborted by the caller */
    *id_out = id;
    *parent_out = parent;
    *record = rec;
    return 0;
fail:
    json_decref(rec);
    json_decref(layers);
    json_decref(tensors);
    json_decref(versions);
    json_decref(superseded);
    return rc;
}
