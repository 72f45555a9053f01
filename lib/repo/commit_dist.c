/* commit_dist: a commit's target vectors shared among MPI ranks
 * (base/dist.h). Each round's z phase on rank 0 broadcasts DIST_CMD_Z,
 * then a blob (the hyperparameters, the z layer, the model directory and
 * the edit requests, serialised) and the edited matrices that differ
 * from the model's files: the first time those the store's overlay holds
 * (the committed edits), then those of the commit's layers, which the
 * rounds change. Every rank computes the
 * target vectors of its share of the fact groups (ztarget_compute_share:
 * the groups do not depend on the share, so each z is the one a single
 * process finds, bit for bit) and the workers send theirs to rank 0,
 * which receives them in rank order. Only rank 0 solves, so only rank 0
 * needs them all (a gather, not an all-gather). The workers never open
 * the store: the model directory must be at the same path on every
 * machine (NFS or a copy); the edited matrices come from rank 0. */
#include "repo/commit_impl.h"
#include "base/dist.h"
#include "base/errors.h"
#include "store/modelview.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the blob -------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int bad;
} blob;

static void put(blob *b, const void *src, size_t n)
{
    if (b->bad) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) { b->bad = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u64(blob *b, uint64_t v) { put(b, &v, sizeof v); }

static void put_ints(blob *b, const int *v, size_t n)
{
    put_u64(b, n);
    put(b, v, n * sizeof *v);
}

/* A cursor over a received blob; reads past its end set bad. */
typedef struct {
    const unsigned char *p;
    size_t len, at;
    int bad;
} cursor;

static void get(cursor *c, void *dst, size_t n)
{
    if (c->bad || n > c->len - c->at) { c->bad = 1; memset(dst, 0, n); return; }
    memcpy(dst, c->p + c->at, n);
    c->at += n;
}

static uint64_t get_u64(cursor *c)
{
    uint64_t v;
    get(c, &v, sizeof v);
    return v;
}

static int *get_ints(cursor *c, size_t *n)
{
    *n = get_u64(c);
    if (c->bad || *n > (c->len - c->at) / sizeof(int)) { c->bad = 1; return NULL; }
    int *v = malloc((*n ? *n : 1) * sizeof *v);
    if (!v) { c->bad = 1; return NULL; }
    get(c, v, *n * sizeof *v);
    return v;
}

static void put_req(blob *b, const editreq *r)
{
    put_u64(b, r->n_rewrite);
    put_ints(b, r->target, r->n_target);
    for (size_t s = 0; s <= r->n_rewrite; s++) {
        put_u64(b, r->seq[s].lookup);
        put_u64(b, r->seq[s].target_start);
        put_ints(b, r->seq[s].tokens, r->seq[s].len);
    }
}

static void get_req(cursor *c, editreq *r)
{
    memset(r, 0, sizeof *r);
    size_t n_rewrite = get_u64(c);
    if (c->bad || n_rewrite > c->len) { c->bad = 1; return; }
    r->target = get_ints(c, &r->n_target);
    r->seq = calloc(n_rewrite + 1, sizeof *r->seq);
    if (!r->seq) { c->bad = 1; return; }
    r->n_rewrite = n_rewrite;
    for (size_t s = 0; s <= n_rewrite && !c->bad; s++) {
        r->seq[s].lookup = get_u64(c);
        r->seq[s].target_start = get_u64(c);
        r->seq[s].tokens = get_ints(c, &r->seq[s].len);
    }
}

/* ---- both sides ------------------------------------------------------ */

/* The layers whose edited matrix the store's overlay holds, in layer
 * order: where the model rank 0 edits differs from the files the workers
 * load. *layers is malloc'ed. */
static int overlay_layers(commit_state *st, size_t **layers, size_t *n)
{
    char **names = NULL, name[128];
    size_t n_names = 0, L = st->model.config.n_layer;
    *n = 0;
    int rc = store_tensor_names(st->t, &names, &n_names);
    if (!rc && !(*layers = malloc((L ? L : 1) * sizeof **layers)))
        rc = err_set(ERR_NOMEM, "out of memory");
    for (size_t l = 0; !rc && l < L; l++) {
        lm_edit_name(&st->model, l, name, sizeof name);
        for (size_t i = 0; i < n_names; i++)
            if (!strcmp(names[i], name)) {
                (*layers)[(*n)++] = l;
                break;
            }
    }
    store_strings_free(names, n_names);
    return rc;
}

/* The edited matrices of layers[0..n) from rank 0. */
static int bcast_tensors(lm_model *m, const size_t *layers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lm_edit_view v;
        int rc = lm_edit_view_get(m, layers[i], &v);
        if (!rc) rc = dist_bcast(v.w, v.rows * v.cols * sizeof(float));
        if (rc) return rc;
    }
    return 0;
}

/* Rank 0: the workers' target vectors and infos, in rank order; all are
 * received even after a failure (a worker blocks in its send until
 * then). */
static int gather_targets(commit_state *st, size_t n)
{
    int rc = 0;
    for (int r = 1; r < dist_size(); r++) {
        size_t first, end;
        ztarget_share(n, &st->h, r, dist_size(), &first, &end);
        int wrc = dist_recv_status(r, "target vectors");
        if (wrc) { if (!rc) rc = wrc; continue; }
        wrc = dist_recv(r, st->z + first * st->C,
                        (end - first) * st->C * sizeof(float),
                        "target vectors");
        if (!wrc) wrc = dist_recv(r, st->zinfo + first,
                                  (end - first) * sizeof *st->zinfo,
                                  "target vectors");
        if (wrc) return rc ? rc : wrc; /* the link itself failed */
    }
    return rc;
}

int commit_dist_targets(commit_state *st, size_t n, int all_layers,
                        progress_fn progress, void *ctx)
{
    char *dir = NULL;
    blob b = {0};
    size_t *layers = NULL, nt = st->h.n_layers;
    int rc = modelview_model_dir(st->t, &dir);
    if (!rc && all_layers) rc = overlay_layers(st, &layers, &nt);
    if (rc) { free(dir); return rc; }
    const size_t *sent = all_layers ? layers : st->h.layers;
    put(&b, &st->h, sizeof st->h);
    put_u64(&b, st->zlayer);
    lm_edit_view v0;
    if ((rc = lm_edit_view_get(&st->model, st->h.layers[0], &v0))) {
        free(dir);
        free(layers);
        return rc;
    }
    put_u64(&b, v0.rows * v0.cols); /* each matrix's values */
    put_u64(&b, nt);
    for (size_t i = 0; i < nt; i++) put_u64(&b, sent[i]);
    put_u64(&b, strlen(dir));
    put(&b, dir, strlen(dir));
    put_u64(&b, n);
    for (size_t i = 0; i < n; i++) put_req(&b, &st->reqs[i]);
    free(dir);
    if (b.bad) {
        free(b.p);
        free(layers);
        return err_set(ERR_NOMEM, "out of memory");
    }
    void *p = b.p;
    if ((rc = dist_command(DIST_CMD_Z)) || (rc = dist_bcast_blob(&p, &b.len)) ||
        (rc = bcast_tensors(&st->model, sent, nt))) {
        free(b.p);
        free(layers);
        return rc;
    }
    free(b.p);
    free(layers);
    rc = ztarget_compute_share(&st->model, st->reqs, n, st->zlayer, &st->h, 0,
                               dist_size(), st->z, NULL, st->zinfo, progress,
                               ctx);
    int grc = gather_targets(st, n);
    return rc ? rc : grc;
}

/* ---- the worker ------------------------------------------------------ */

struct commit_worker {
    char *dir;
    lm_model m;
    int loaded;
};

void commit_worker_free(commit_worker *w)
{
    if (!w) return;
    if (w->loaded) lm_model_free(&w->m);
    free(w->dir);
    free(w);
}

/* The requests and settings of a DIST_CMD_Z blob; the model loaded (or
 * kept) and the broadcast matrices written into it. */
static int worker_setup(commit_worker *w, cursor *c, hparams *h,
                        size_t *zlayer, editreq **reqs, size_t *n)
{
    get(c, h, sizeof *h);
    *zlayer = get_u64(c);
    size_t values = get_u64(c), nt = get_u64(c);
    if (c->bad || nt > (c->len - c->at) / sizeof(uint64_t))
        return err_set(ERR_FORMAT, "target vectors: a malformed message from rank 0");
    size_t *layers = malloc((nt ? nt : 1) * sizeof *layers);
    if (!layers) return ERR_NOMEM;
    for (size_t i = 0; i < nt; i++) layers[i] = get_u64(c);
    size_t dir_len = get_u64(c);
    if (c->bad || dir_len > c->len - c->at) {
        free(layers);
        return err_set(ERR_FORMAT, "target vectors: a malformed message from rank 0");
    }
    char *dir = strndup((const char *)c->p + c->at, dir_len);
    if (!dir) { free(layers); return ERR_NOMEM; }
    c->at += dir_len;
    *n = get_u64(c);
    if (c->bad || *n > c->len) {
        free(dir);
        free(layers);
        return err_set(ERR_FORMAT, "target vectors: a malformed message from rank 0");
    }
    *reqs = calloc(*n ? *n : 1, sizeof **reqs);
    if (!*reqs) { free(dir); free(layers); return ERR_NOMEM; }
    for (size_t i = 0; i < *n && !c->bad; i++) get_req(c, &(*reqs)[i]);
    int rc = c->bad ? err_set(ERR_FORMAT, "target vectors: a malformed "
                              "message from rank 0") : 0;
    if (!rc && (!w->dir || strcmp(w->dir, dir))) {
        if (w->loaded) lm_model_free(&w->m);
        w->loaded = 0;
        free(w->dir);
        w->dir = dir;
        dir = NULL;
        if (!(rc = lm_model_load(&w->m, w->dir))) w->loaded = 1;
    }
    free(dir);
    /* the matrices come whatever happened here (the broadcast is
     * collective): into the model, or into scratch after a failure */
    float *scratch = NULL;
    for (size_t i = 0; i < nt; i++) {
        lm_edit_view v;
        int vrc = rc ? ERR_INVALID : lm_edit_view_get(&w->m, layers[i], &v);
        if (!vrc && v.rows * v.cols != values)
            vrc = err_set(ERR_INVALID, "the model in '%s' is not rank 0's "
                          "(%zu values in a matrix, rank 0 has %zu)", w->dir,
                          v.rows * v.cols, values);
        if (vrc && !rc) rc = vrc;
        float *dst = vrc ? NULL : v.w;
        if (!dst && !scratch && !(scratch = malloc(values * sizeof *scratch))) {
            free(layers);
            return ERR_NOMEM;
        }
        if ((vrc = dist_bcast(dst ? dst : scratch, values * sizeof(float)))) {
            free(scratch);
            free(layers);
            return vrc;
        }
    }
    free(scratch);
    free(layers);
    return rc;
}

int commit_worker_job(commit_worker **wp)
{
    void *p = NULL;
    size_t len = 0, n = 0, zlayer = 0, first = 0, end = 0;
    editreq *reqs = NULL;
    hparams h;
    float *z = NULL;
    ztarget_info *info = NULL;
    int rc = dist_bcast_blob(&p, &len);
    if (rc) return rc; /* a broken link: nothing to answer on */
    cursor c = {p, len, 0, 0};
    if (!*wp && !(*wp = calloc(1, sizeof **wp))) rc = ERR_NOMEM;
    if (!rc) rc = worker_setup(*wp, &c, &h, &zlayer, &reqs, &n);
    if (!rc) {
        size_t C = (*wp)->m.config.n_embd;
        z = malloc((n ? n : 1) * C * sizeof *z);
        info = calloc(n ? n : 1, sizeof *info);
        rc = z && info ? 0 : ERR_NOMEM;
        if (!rc) rc = ztarget_compute_share(&(*wp)->m, reqs, n, zlayer, &h,
                                            dist_rank(), dist_size(), z, NULL,
                                            info, NULL, NULL);
        ztarget_share(n, &h, dist_rank(), dist_size(), &first, &end);
        dist_test_pause();
        int src = dist_send_status(rc, rc ? err_message(rc) : NULL);
        if (!rc && !src) src = dist_send(z + first * C, (end - first) * C * sizeof *z);
        if (!rc && !src) src = dist_send(info + first, (end - first) * sizeof *info);
        if (!rc) rc = src;
    } else {
        dist_send_status(rc, err_message(rc));
    }
    for (size_t i = 0; reqs && i < n; i++) editreq_free(&reqs[i]);
    free(reqs);
    free(z);
    free(info);
    free(p);
    return rc;
}
