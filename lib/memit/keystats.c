/* keystats: stored key statistics and their computation from a corpus
 * (see keystats.h). The statistics belong to the base model: they are
 * computed on it, never on an edited one, so every commit's update uses
 * the same C_l. */
#include "memit/keystats.h"
#include "base/dist.h"
#include "base/errors.h"
#include "base/meminfo.h"
#include "model/lm.h"
#include "store/modelview.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int keystats_corpus_path(store_txn *t, const char *explicit_path, char **path)
{
    struct stat st;
    if (explicit_path) {
        if (stat(explicit_path, &st) || !S_ISREG(st.st_mode))
            return err_set(ERR_NOTFOUND, "corpus '%s' is not a readable file",
                           explicit_path);
        *path = strdup(explicit_path);
        return *path ? 0 : ERR_NOMEM;
    }
    char *dir = NULL;
    int rc = store_meta_get(t, "corpus", path);
    if (rc != ERR_NOTFOUND) return rc;
    if ((rc = modelview_model_dir(t, &dir))) return rc;
    size_t len = strlen(dir) + sizeof "/corpus.txt";
    *path = malloc(len);
    if (!*path) { free(dir); return ERR_NOMEM; }
    snprintf(*path, len, "%s/corpus.txt", dir);
    free(dir);
    if (stat(*path, &st) == 0 && S_ISREG(st.st_mode)) return 0;
    free(*path);
    *path = NULL;
    return err_set(ERR_NOTFOUND, "no key statistics and no corpus to compute "
                   "them from: run 'stamp stats --corpus FILE'");
}

static int model_id(store_txn *t, char **id)
{
    int rc = store_meta_get(t, "model_id", id);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_STORE, "the store records no model id");
    return rc;
}

/* The stored record of `layer`: LMDB memory, valid until the txn ends,
 * to be given back with store_stats_release. */
static int stats_blob(store_txn *t, size_t layer, const void **blob,
                      size_t *len)
{
    char *id = NULL;
    int rc = model_id(t, &id);
    if (!rc) rc = store_stats_get(t, id, layer, blob, len);
    free(id);
    return rc;
}

int keystats_load(store_txn *t, size_t layer, keystats_sum *c)
{
    const void *blob = NULL;
    size_t len = 0;
    int rc = stats_blob(t, layer, &blob, &len);
    if (!rc) rc = keystats_sum_decode(c, blob, len);
    if (blob) store_stats_release(t, blob, len);
    return rc;
}

int keystats_info(store_txn *t, size_t layer, size_t *F, uint64_t *tokens,
                  uint64_t *sequences, size_t *bytes)
{
    const void *blob = NULL;
    size_t len = 0;
    int rc = stats_blob(t, layer, &blob, &len);
    if (!rc) rc = keystats_sum_peek(blob, len, F, tokens, sequences);
    if (!rc && bytes) *bytes = len;
    if (blob) store_stats_release(t, blob, len);
    return rc;
}

int keystats_load_mean(store_txn *t, size_t layer, int upper, double **mean,
                       size_t *F)
{
    const void *blob = NULL;
    size_t len = 0;
    keystats_sum c = {0};
    *mean = NULL;
    int rc = stats_blob(t, layer, &blob, &len);
    if (!rc && upper) {
        rc = keystats_sum_decode_mean_upper(blob, len, mean, F);
    } else if (!rc) {
        rc = keystats_sum_decode(&c, blob, len);
        if (!rc) *F = c.F;
        if (!rc) rc = keystats_sum_take_mean(&c, mean);
        keystats_sum_free(&c);
    }
    if (blob) store_stats_release(t, blob, len);
    return rc;
}

int keystats_check_memory(uint64_t need, const char *what,
                          keystats_note_fn note, void *ctx)
{
    uint64_t avail = 0;
    char a[32], b[32];
    int rc = meminfo_available(&avail);
    if (rc == ERR_NOTFOUND) { /* not Linux: nothing to check against */
        err_clear();
        return 0;
    }
    if (rc) return rc;
    if (note) {
        char text[256];
        snprintf(text, sizeof text, "key statistics: %s = %s in memory at "
                 "once (%s available)", what, meminfo_format(a, sizeof a, need),
                 meminfo_format(b, sizeof b, avail));
        note(ctx, text);
    }
    if (need <= avail) return 0;
    return err_set(ERR_NOMEM, "not enough memory for the key statistics: "
                   "they need %s at once (%s) and the machine has %s "
                   "available (MemAvailable); edit fewer layers (--layers) "
                   "or free memory", meminfo_format(a, sizeof a, need), what,
                   meminfo_format(b, sizeof b, avail));
}

int keystats_read_corpus(const char *path, char ***lines, size_t *n)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return err_set(ERR_IO, "cannot open corpus '%s'", path);
    char *line = NULL, **out = NULL;
    size_t cap = 0, count = 0, room = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0) continue;
        if (count == room) {
            room = room ? 2 * room : 1024;
            char **grown = realloc(out, room * sizeof *out);
            if (!grown) { rc = ERR_NOMEM; break; }
            out = grown;
        }
        if (!(out[count] = strdup(line))) { rc = ERR_NOMEM; break; }
        count++;
    }
    if (!rc && ferror(fp)) rc = err_set(ERR_IO, "cannot read corpus '%s'", path);
    if (!rc && count == 0) rc = err_set(ERR_FORMAT, "corpus '%s' is empty", path);
    free(line);
    fclose(fp);
    if (rc) {
        for (size_t i = 0; i < count; i++) free(out[i]);
        free(out);
        return rc;
    }
    *lines = out;
    *n = count;
    return 0;
}

/* Runs corpus lines through the base model for the layers whose stored
 * statistics (seqs[i] lines) cover fewer than `upto`, and stores them:
 * layers that consumed the same lines go through the corpus together, in
 * one pass of the model (they differ when an earlier run asked for other
 * layers). Each layer's sum is freed as soon as it is stored. */
static int compute_missing(store_txn *t, const size_t *layers, size_t n,
                           const uint64_t *seqs, size_t upto, char **lines,
                           const char *path, const char *id,
                           keystats_note_fn note, progress_fn progress,
                           void *ctx)
{
    lm_config cfg;
    lm_model base = {0};
    tokenizer *tok = NULL;
    char *dir = NULL, what[128];
    size_t k_new = 0;
    for (size_t i = 0; i < n; i++) k_new += seqs[i] < upto;
    int rc = modelview_config(t, &cfg);
    if (rc) return rc;
    size_t F = cfg.n_inner;
    snprintf(what, sizeof what, "%zu layer%s x %zu^2 x 8 bytes of float64 "
             "sums", k_new, k_new == 1 ? "" : "s", F);
    if ((rc = keystats_check_memory((uint64_t)k_new * F * F * 8, what, note,
                                    ctx)))
        return rc;
    keystats_sum *cov = calloc(n, sizeof *cov), *group = calloc(n, sizeof *group);
    size_t *group_layers = calloc(n, sizeof *group_layers);
    char *active = calloc(n, 1);
    if (!cov || !group || !group_layers || !active) rc = ERR_NOMEM;
    if (!rc) rc = modelview_model_dir(t, &dir);
    if (!rc) rc = lm_model_load(&base, dir);
    if (!rc) rc = tokenizer_open_dir(&tok, dir);
    for (size_t i = 0; !rc && i < n; i++) {
        if (seqs[i] >= upto) continue;
        active[i] = 1;
        rc = keystats_load(t, layers[i], &cov[i]);
        if (rc == ERR_NOTFOUND) {
            err_clear();
            rc = keystats_sum_init(&cov[i], base.config.n_inner);
        }
    }
    while (!rc) {
        size_t start = SIZE_MAX, k = 0;
        for (size_t i = 0; i < n; i++)
            if (active[i] && cov[i].sequences < start) start = cov[i].sequences;
        if (start == SIZE_MAX) break;
        for (size_t i = 0; i < n; i++)
            if (active[i] && cov[i].sequences == start) {
                group[k] = cov[i];
                group_layers[k++] = layers[i];
            }
        if (dist_active()) /* shared with the MPI ranks */
            rc = keystats_dist_accumulate(group, group_layers, k, &base, tok,
                                          lines, start, upto, dir, path,
                                          progress, ctx);
        else
            rc = keystats_sum_accumulate(group, group_layers, k, &base, tok,
                                         lines + start, upto - start,
                                         progress, ctx);
        for (size_t i = 0, j = 0; i < n; i++) /* counts came back */
            if (active[i] && cov[i].sequences == start) cov[i] = group[j++];
        for (size_t i = 0; !rc && i < n; i++) {
            if (!active[i] || cov[i].sequences != upto) continue;
            void *blob = NULL;
            size_t len = 0;
            rc = keystats_sum_encode(&cov[i], &blob, &len);
            if (!rc) rc = store_stats_put(t, id, layers[i], blob, len);
            free(blob);
            keystats_sum_free(&cov[i]);
            active[i] = 0;
        }
    }
    for (size_t i = 0; cov && i < n; i++) keystats_sum_free(&cov[i]);
    free(cov);
    free(group);
    free(group_layers);
    free(active);
    free(dir);
    lm_model_free(&base);
    tokenizer_close(tok);
    return rc;
}

int keystats_ensure(store_txn *t, const size_t *layers, size_t n,
                    size_t sequences, const char *corpus_path, int *computed,
                    keystats_note_fn note, progress_fn progress, void *ctx)
{
    uint64_t *tokens = calloc(n ? n : 1, sizeof *tokens);
    uint64_t *seqs = calloc(n ? n : 1, sizeof *seqs);
    char *id = NULL, *path = NULL, **lines = NULL;
    size_t n_lines = 0, from = SIZE_MAX;
    int rc = tokens && seqs ? model_id(t, &id) : ERR_NOMEM;
    *computed = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        rc = keystats_info(t, layers[i], NULL, &tokens[i], &seqs[i], NULL);
        if (rc == ERR_NOTFOUND) {
            err_clear();
            rc = 0;
        }
        if (!rc && seqs[i] < sequences && seqs[i] < from) from = seqs[i];
    }
    if (!rc && from != SIZE_MAX) {
        rc = keystats_corpus_path(t, corpus_path, &path);
        if (!rc) rc = keystats_read_corpus(path, &lines, &n_lines);
        if (!rc && from < n_lines) {
            size_t upto = sequences < n_lines ? sequences : n_lines;
            rc = compute_missing(t, layers, n, seqs, upto, lines, path, id,
                                 note, progress, ctx);
            *computed = !rc;
        }
    }
    for (size_t i = 0; !rc && i < n; i++) { /* the counts now stored */
        rc = keystats_info(t, layers[i], NULL, &tokens[i], NULL, NULL);
        if (rc == ERR_NOTFOUND || (!rc && tokens[i] == 0))
            rc = err_set(ERR_NOTFOUND, "no key statistics for layer %zu",
                         layers[i]);
    }
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(tokens);
    free(seqs);
    free(id);
    free(path);
    return rc;
}

/* ---- in steps ---- */

/* Progress of one step as a share of the whole run's lines. */
typedef struct {
    progress_fn fn;
    void *ctx;
    size_t offset, total;
} step_progress;

static void step_progress_fn(void *ctx, const char *label, size_t done,
                             size_t total)
{
    const step_progress *p = ctx;
    (void)total;
    p->fn(p->ctx, label, p->offset + done, p->total);
}

/* The first corpus line not covered by every layer (SIZE_MAX: all
 * cover `sequences`). */
static int steps_start(store *s, const size_t *layers, size_t n,
                       size_t sequences, size_t *from)
{
    store_txn *t = NULL;
    int rc = store_txn_begin(s, &t, 0);
    *from = SIZE_MAX;
    for (size_t i = 0; !rc && i < n; i++) {
        uint64_t seqs = 0;
        rc = keystats_info(t, layers[i], NULL, NULL, &seqs, NULL);
        if (rc == ERR_NOTFOUND) {
            err_clear();
            rc = 0;
            seqs = 0;
        }
        if (!rc && seqs < sequences && seqs < *from) *from = seqs;
    }
    store_txn_abort(t);
    return rc;
}

/* The lines (counted from `from`) where the steps end: flush points of
 * one pass over lines[from..upto), at least step_lines apart; the last
 * is upto - from. */
static int steps_ends(store *s, char **lines, size_t from, size_t upto,
                      size_t step_lines, size_t **ends, size_t *n_ends)
{
    store_txn *t = NULL;
    char *dir = NULL;
    lm_model m = {0};
    tokenizer *tok = NULL;
    size_t *points = NULL, n_points = 0;
    int rc = store_txn_begin(s, &t, 0);
    if (!rc) rc = modelview_model_dir(t, &dir);
    store_txn_abort(t);
    if (!rc) rc = lm_model_load(&m, dir);
    if (!rc) rc = tokenizer_open_dir(&tok, dir);
    if (!rc) rc = keystats_sum_flush_points(&m, tok, lines + from, upto - from,
                                            &points, &n_points);
    size_t k = 0, last = 0;
    for (size_t i = 0; !rc && i < n_points; i++)
        if (points[i] - last >= step_lines || i + 1 == n_points)
            points[k++] = last = points[i];
    if (!rc) {
        *ends = points;
        *n_ends = k;
    } else {
        free(points);
    }
    tokenizer_close(tok);
    lm_model_free(&m);
    free(dir);
    return rc;
}

/* Runs keystats_ensure in one write transaction of its own, recording
 * the corpus (meta "corpus") when it computed anything. */
static int ensure_in_txn(store *s, const size_t *layers, size_t n,
                         size_t sequences, const char *corpus_path,
                         int *computed, keystats_note_fn note,
                         progress_fn progress, void *ctx)
{
    store_txn *t = NULL;
    int rc = store_txn_begin(s, &t, 1);
    if (!rc)
        rc = keystats_ensure(t, layers, n, sequences, corpus_path, computed,
                             note, progress, ctx);
    /* the corpus the stored lines came from, with them: a later commit
     * that extends the statistics reads on in the same text */
    if (!rc && *computed) rc = store_meta_put(t, "corpus", corpus_path);
    if (!rc) {
        rc = store_txn_commit(t);
        t = NULL;
    }
    store_txn_abort(t);
    return rc;
}

int keystats_ensure_steps(store *s, const size_t *layers, size_t n,
                          size_t sequences, const char *corpus_path,
                          size_t step_lines, int *computed,
                          keystats_note_fn note, progress_fn progress,
                          void *ctx)
{
    char **lines = NULL;
    size_t from = SIZE_MAX, n_lines = 0, *ends = NULL, n_ends = 0;
    *computed = 0;
    int rc = steps_start(s, layers, n, sequences, &from);
    if (!rc && step_lines && from != SIZE_MAX)
        rc = keystats_read_corpus(corpus_path, &lines, &n_lines);
    size_t upto = sequences < n_lines ? sequences : n_lines;
    if (!rc && lines && from < upto && upto - from > step_lines)
        rc = steps_ends(s, lines, from, upto, step_lines, &ends, &n_ends);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    if (!rc && !ends) /* nothing to cut into steps */
        return ensure_in_txn(s, layers, n, sequences, corpus_path, computed,
                             note, progress, ctx);
    step_progress sp = {progress, ctx, 0, upto - from};
    for (size_t k = 0; !rc && k < n_ends; k++) {
        int c = 0;
        sp.offset = k ? ends[k - 1] : 0;
        rc = ensure_in_txn(s, layers, n, from + ends[k], corpus_path, &c,
                           k ? NULL : note, progress ? step_progress_fn : NULL,
                           &sp);
        *computed |= c;
        /* tests: a moment between steps to kill the run in */
        const char *pause = getenv("STAMP_TEST_STEP_SLEEP");
        if (!rc && pause && k + 1 < n_ends) sleep((unsigned)atoi(pause));
    }
    free(ends);
    return rc;
}
