/* history: the commit chain, tensor workspaces that move along it, and
 * the reset/revert operations built on them (see history.h).
 *
 * Commit ids grow: a commit's parent is always an older id. Walks down
 * the chain therefore stop as soon as they pass below the id they look
 * for, which keeps every operation's cost proportional to the commits
 * between HEAD and its target, not to the length of the history.
 *
 * Everything here runs inside the caller's transaction and changes the
 * store only through it: a failure anywhere leaves the transaction to be
 * aborted, and nothing of a half-done reset or revert is ever kept. */
#include "repo/history.h"
#include "base/errors.h"
#include "facts/fact.h"
#include "base/hash.h"
#include "store/modelview.h"
#include "model/hf_weights.h"
#include "model/safetensors.h"
#include "repo/wdiff.h"
#include "base/clock.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- records and the chain ------------------------------------------ */

static uint64_t json_u64(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= 0
               ? (uint64_t)json_integer_value(v)
               : 0;
}

int history_record(store_txn *t, uint64_t id, json_t **rec)
{
    char *text = NULL;
    *rec = NULL;
    if (id == 0)
        return err_set(ERR_INVALID, "the base model (commit 0) has no "
                       "record");
    int rc = store_commit_get(t, id, &text);
    if (rc == ERR_NOTFOUND)
        return err_set(ERR_NOTFOUND, "no commit %llu in the store",
                       (unsigned long long)id);
    if (rc) return rc;
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    free(text);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(ERR_STORE, "commit %llu's record is not a JSON "
                       "object: %s", (unsigned long long)id,
                       j ? "wrong type" : e.text);
    }
    json_t *jid = json_object_get(j, "id"), *jp = json_object_get(j, "parent");
    if (!json_is_integer(jid) || (uint64_t)json_integer_value(jid) != id ||
        !json_is_integer(jp) || json_integer_value(jp) < 0 ||
        (uint64_t)json_integer_value(jp) >= id) {
        json_decref(j);
        return err_set(ERR_STORE, "commit %llu's record has a bad \"id\" or "
                       "\"parent\"", (unsigned long long)id);
    }
    *rec = j;
    return 0;
}

static int parent_of(store_txn *t, uint64_t id, uint64_t *parent)
{
    json_t *rec = NULL;
    int rc = history_record(t, id, &rec);
    if (rc) return rc;
    *parent = json_u64(rec, "parent");
    json_decref(rec);
    return 0;
}

/* Decimal digits only, no sign or space, that fit 64 bits; -1 if not. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = 10 * v + d;
    }
    *out = v;
    return 0;
}

int history_resolve(store_txn *t, const char *spec, uint64_t *id)
{
    if (!strcmp(spec, "base")) {
        *id = 0;
        return 0;
    }
    if (!strncmp(spec, "HEAD", 4) || !strncmp(spec, "head", 4)) {
        uint64_t back = 0;
        if (spec[4] == '~') {
            if (!spec[5])
                back = 1;
            else if (parse_u64(spec + 5, &back))
                return err_set(ERR_INVALID, "bad commit name '%s' (HEAD~N "
                               "wants a count N)", spec);
        } else if (spec[4]) {
            return err_set(ERR_INVALID, "bad commit name '%s'", spec);
        }
        uint64_t c = 0;
        int rc = store_head(t, &c);
        if (rc) return rc;
        for (uint64_t i = 0; i < back; i++) {
            if (c == 0)
                return err_set(ERR_NOTFOUND, "'%s' goes past the base model",
                               spec);
            if ((rc = parent_of(t, c, &c))) return rc;
        }
        *id = c;
        return 0;
    }
    uint64_t v;
    if (parse_u64(spec, &v))
        return err_set(ERR_INVALID, "bad commit name '%s' (a commit id, "
                       "HEAD, HEAD~N or base)", spec);
    if (v) {
        json_t *rec = NULL;
        int rc = history_record(t, v, &rec);
        json_decref(rec);
        if (rc) return rc;
    }
    *id = v;
    return 0;
}

int history_path(store_txn *t, uint64_t from, uint64_t to, uint64_t **ids,
                 size_t *n)
{
    size_t cap = 8, len = 0;
    uint64_t *a = malloc(cap * sizeof *a), cur = from;
    *ids = NULL;
    *n = 0;
    if (!a) return err_set(ERR_NOMEM, "out of memory");
    while (cur != to) {
        if (cur < to) {
            free(a);
            return err_set(ERR_INVALID, "commit %llu is not commit %llu or "
                           "one of its ancestors", (unsigned long long)to,
                           (unsigned long long)from);
        }
        if (len == cap) {
            uint64_t *b = realloc(a, 2 * cap * sizeof *a);
            if (!b) {
                free(a);
                return err_set(ERR_NOMEM, "out of memory");
            }
            a = b;
            cap *= 2;
        }
        a[len++] = cur;
        int rc = parent_of(t, cur, &cur);
        if (rc) {
            free(a);
            return rc;
        }
    }
    *ids = a;
    *n = len;
    return 0;
}

int history_common_ancestor(store_txn *t, uint64_t a, uint64_t b,
                            uint64_t *out)
{
    while (a != b) {
        int rc = a > b ? parent_of(t, a, &a) : parent_of(t, b, &b);
        if (rc) return rc;
    }
    *out = a;
    return 0;
}

int history_on_chain(store_txn *t, uint64_t id, int *on)
{
    uint64_t c = 0;
    int rc = store_head(t, &c);
    while (!rc && c > id) rc = parent_of(t, c, &c);
    if (rc) return rc;
    *on = c == id;
    return 0;
}

int history_chain(store_txn *t, history_link **chain, size_t *n,
                  size_t *off_chain)
{
    uint64_t head = 0, *ids = NULL;
    size_t len = 0, cap = 0, n_ids = 0;
    history_link *a = NULL;
    json_t *rec = NULL;
    *chain = NULL;
    *n = 0;
    int rc = store_head(t, &head);
    for (uint64_t c = head; !rc && c;) {
        if ((rc = history_record(t, c, &rec))) break;
        if (len == cap) {
            cap = cap ? 2 * cap : 16;
            history_link *b = realloc(a, cap * sizeof *b);
            if (!b) {
                rc = err_set(ERR_NOMEM, "out of memory");
                break;
            }
            a = b;
        }
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        a[len] = (history_link){c, 0, 0};
        if (kind && !strcmp(kind, "revert"))
            a[len].reverts = json_u64(rec, "reverts");
        /* a revert commit is newer than the commit it reverts: the walk
         * has passed it by the time it comes to that one */
        for (size_t i = 0; i < len && !a[len].reverted_by; i++)
            if (a[i].reverts == c) a[len].reverted_by = a[i].id;
        len++;
        c = json_u64(rec, "parent");
        json_decref(rec);
        rec = NULL;
    }
    if (!rc && off_chain) {
        rc = store_commit_ids(t, &ids, &n_ids);
        *off_chain = rc ? 0 : n_ids - len;
        free(ids);
    }
    if (rc) {
        free(a);
        return rc;
    }
    *chain = a;
    *n = len;
    return 0;
}

int history_fate(store_txn *t, uint64_t id, int *on_chain,
                 uint64_t *reverted_by)
{
    json_t *rec = NULL;
    uint64_t c = 0;
    *on_chain = 0;
    *reverted_by = 0;
    int rc = history_record(t, id, &rec);
    json_decref(rec);
    if (!rc) rc = store_head(t, &c);
    /* down the chain to id: a revert commit of id is above it */
    while (!rc && c > id) {
        if ((rc = history_record(t, c, &rec))) break;
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        if (kind && !strcmp(kind, "revert") && json_u64(rec, "reverts") == id)
            *reverted_by = c;
        c = json_u64(rec, "parent");
        json_decref(rec);
    }
    if (rc) return rc;
    *on_chain = c == id;
    if (!*on_chain) *reverted_by = 0;
    return 0;
}

static const char *const state_names[] = {"queued", "committed",
                                          "superseded", "reverted"};

const char *history_state_name(int state)
{
    return state >= 0 && state <= 3 ? state_names[state] : "unknown";
}

int history_state_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, state_names[i])) return i;
    return -1;
}

/* ---- workspaces ------------------------------------------------------ */

typedef struct {
    char *name;
    float *data;      /* (numel) current value in the workspace */
    float *base;      /* (numel) the base model's value, loaded lazily */
    size_t numel;
    size_t shape[2];
    int dirty;
} ws_tensor;

struct history_ws {
    store_txn *t;
    hf_weights *base;  /* the base model's file or shards */
    ws_tensor *v;
    size_t n, cap;
};

int history_ws_open(history_ws **out, store_txn *t)
{
    char *dir = NULL;
    *out = NULL;
    int rc = modelview_model_dir(t, &dir);
    if (rc) return rc;
    history_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        free(dir);
        return err_set(ERR_NOMEM, "out of memory");
    }
    ws->t = t;
    rc = hf_weights_open(&ws->base, dir);
    free(dir);
    if (rc) {
        history_ws_close(ws);
        return rc;
    }
    *out = ws;
    return 0;
}

void history_ws_close(history_ws *ws)
{
    if (!ws) return;
    for (size_t i = 0; i < ws->n; i++) {
        free(ws->v[i].name);
        free(ws->v[i].data);
        free(ws->v[i].base);
    }
    free(ws->v);
    hf_weights_close(ws->base);
    free(ws);
}

static const st_tensor *base_find(const history_ws *ws, const char *name)
{
    const st_tensor *st = hf_weights_find(ws->base, name, NULL);
    if (st) return st;
    if (!strncmp(name, "transformer.", 12))
        return hf_weights_find(ws->base, name + 12, NULL);
    char buf[512];
    snprintf(buf, sizeof buf, "transformer.%s", name);
    return hf_weights_find(ws->base, buf, NULL);
}

static ws_tensor *ws_find(history_ws *ws, const char *name)
{
    for (size_t i = 0; i < ws->n; i++)
        if (!strcmp(ws->v[i].name, name)) return &ws->v[i];
    return NULL;
}

static int ws_load(history_ws *ws, const char *name, ws_tensor **out)
{
    ws_tensor *e = ws_find(ws, name);
    if (e) {
        *out = e;
        return 0;
    }
    const st_tensor *st = base_find(ws, name);
    if (!st)
        return err_set(ERR_NOTFOUND, "tensor '%s' is not in the base model "
                       "'%s'", name, hf_weights_path(ws->base));
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? 2 * ws->cap : 8;
        ws_tensor *v = realloc(ws->v, cap * sizeof *v);
        if (!v) return err_set(ERR_NOMEM, "out of memory");
        ws->v = v;
        ws->cap = cap;
    }
    e = &ws->v[ws->n];
    memset(e, 0, sizeof *e);
    e->numel = st->numel;
    e->shape[0] = st->ndim >= 2 ? st->shape[0] : 1;
    e->shape[1] = e->shape[0] ? st->numel / e->shape[0] : 0;
    e->name = strdup(name);
    e->data = malloc((st->numel ? st->numel : 1) * sizeof(float));
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return err_set(ERR_NOMEM, "out of memory for tensor '%s'", name);
    }
    const float *ov = NULL; /* LMDB memory: copied at once */
    size_t n = 0;
    int rc = store_tensor_get(ws->t, name, &ov, &n);
    if (rc == ERR_NOTFOUND) {
        err_clear();
        safetensors_to_f32(st, e->data);
        rc = 0;
    } else if (!rc && n != st->numel) {
        rc = err_set(ERR_STORE, "store tensor '%s' has %zu values, the base "
                     "model's has %zu", name, n, st->numel);
    } else if (!rc) {
        memcpy(e->data, ov, n * sizeof(float));
    }
    if (rc) {
        free(e->name);
        free(e->data);
        return rc;
    }
    ws->n++;
    *out = e;
    return 0;
}

int history_ws_tensor(history_ws *ws, const char *name, float **data,
                      size_t *numel, size_t shape[2])
{
    ws_tensor *e = NULL;
    int rc = ws_load(ws, name, &e);
    if (rc) return rc;
    *data = e->data;
    if (numel) *numel = e->numel;
    if (shape) {
        shape[0] = e->shape[0];
        shape[1] = e->shape[1];
    }
    return 0;
}

void history_ws_touch(history_ws *ws, const char *name)
{
    ws_tensor *e = ws_find(ws, name);
    if (e) e->dirty = 1;
}

static int ws_base(history_ws *ws, ws_tensor *e)
{
    if (e->base) return 0;
    const st_tensor *st = base_find(ws, e->name);
    e->base = malloc((e->numel ? e->numel : 1) * sizeof(float));
    if (!e->base) return err_set(ERR_NOMEM, "out of memory");
    safetensors_to_f32(st, e->base);
    return 0;
}

int history_ws_base(history_ws *ws, const char *name, const float **data,
                    size_t *numel)
{
    ws_tensor *e = NULL;
    int rc = ws_load(ws, name, &e);
    if (!rc) rc = ws_base(ws, e);
    if (rc) return rc;
    *data = e->base;
    if (numel) *numel = e->numel;
    return 0;
}

size_t history_ws_count(const history_ws *ws) { return ws->n; }

const char *history_ws_name(const history_ws *ws, size_t i)
{
    return i < ws->n ? ws->v[i].name : NULL;
}

/* Moves each tensor of the record one step (backward = undo). */
static int ws_step(history_ws *ws, uint64_t id, const json_t *rec,
                   const json_t *only, int backward)
{
    unsigned long long cid = (unsigned long long)id;
    json_t *tensors = json_object_get(rec, "tensors");
    if (!json_is_object(tensors))
        return err_set(ERR_STORE, "commit %llu's record lists no tensors",
                       cid);
    const char *name;
    json_t *tv;
    json_object_foreach(tensors, name, tv) {
        if (only && !json_object_get(only, name)) continue;
        const char *before = json_string_value(json_object_get(tv, "before"));
        const char *after = json_string_value(json_object_get(tv, "after"));
        if (!before || !after)
            return err_set(ERR_STORE, "commit %llu's record has no hashes for "
                           "tensor '%s'", cid, name);
        const void *blob = NULL; /* LMDB memory: used before txn ends */
        size_t len = 0;
        int rc = store_diff_get(ws->t, id, name, &blob, &len);
        if (rc == ERR_NOTFOUND)
            return err_set(ERR_STORE, "commit %llu has no diff of tensor '%s'",
                           cid, name);
        if (rc) return rc;
        wdiff_info info;
        if ((rc = wdiff_info_get(blob, len, &info)))
            return err_set(ERR_STORE, "commit %llu, tensor '%s': %s", cid,
                           name, err_message(rc));
        if (strcmp(info.old_hash, before) || strcmp(info.new_hash, after))
            return err_set(ERR_STORE, "commit %llu, tensor '%s': the record's "
                           "hashes and the diff's disagree", cid, name);
        ws_tensor *e = NULL;
        if ((rc = ws_load(ws, name, &e))) return rc;
        char h[33];
        hash_hex(h, e->data, e->numel * sizeof(float));
        const char *want = backward ? after : before;
        if (strcmp(h, want))
            return err_set(ERR_STORE, "tensor '%s' is not as commit %llu %s "
                           "it (hash %s, recorded %s); the store's tensors "
                           "were changed outside stamp (see 'stamp fsck')",
                           name, cid, backward ? "left" : "found", h, want);
        rc = backward ? wdiff_revert(blob, len, e->data, e->data, e->numel)
                      : wdiff_apply(blob, len, e->data, e->data, e->numel);
        if (rc)
            return err_set(ERR_STORE, "commit %llu, tensor '%s': %s", cid,
                           name, err_message(rc));
        e->dirty = 1;
    }
    return 0;
}

int history_ws_undo(history_ws *ws, uint64_t id, const json_t *rec,
                    const json_t *only)
{
    return ws_step(ws, id, rec, only, 1);
}

int history_ws_redo(history_ws *ws, uint64_t id, const json_t *rec,
                    const json_t *only)
{
    return ws_step(ws, id, rec, only, 0);
}

int history_ws_goto(history_ws *ws, uint64_t from, uint64_t to,
                    const json_t *only)
{
    uint64_t lca = 0, *down = NULL, *up = NULL;
    size_t n_down = 0, n_up = 0;
    json_t *rec = NULL;
    int rc = history_common_ancestor(ws->t, from, to, &lca);
    if (!rc) rc = history_path(ws->t, from, lca, &down, &n_down);
    if (!rc) rc = history_path(ws->t, to, lca, &up, &n_up);
    for (size_t i = 0; !rc && i < n_down; i++) {
        rc = history_record(ws->t, down[i], &rec);
        if (!rc) rc = history_ws_undo(ws, down[i], rec, only);
        json_decref(rec);
        rec = NULL;
    }
    for (size_t i = n_up; !rc && i-- > 0;) {
        rc = history_record(ws->t, up[i], &rec);
        if (!rc) rc = history_ws_redo(ws, up[i], rec, only);
        json_decref(rec);
        rec = NULL;
    }
    free(down);
    free(up);
    return rc;
}

int history_ws_write(history_ws *ws, size_t *put, size_t *deleted)
{
    size_t np = 0, nd = 0;
    for (size_t i = 0; i < ws->n; i++) {
        ws_tensor *e = &ws->v[i];
        if (!e->dirty) continue;
        int rc = ws_base(ws, e);
        if (rc) return rc;
        if (!memcmp(e->data, e->base, e->numel * sizeof(float))) {
            rc = store_tensor_del(ws->t, e->name);
            if (rc == ERR_NOTFOUND) {
                err_clear();
                rc = 0;
            }
            nd++;
        } else {
            rc = store_tensor_put(ws->t, e->name, e->data, e->numel);
            np++;
        }
        if (rc) return rc;
        e->dirty = 0;
    }
    if (put) *put = np + nd;
    if (deleted) *deleted = nd;
    return 0;
}

/* ---- fact states ----------------------------------------------------- */

/* A record's array of version ids (missing = empty). */
static json_t *id_array(const json_t *rec, const char *key)
{
    json_t *a = json_object_get(rec, key);
    return json_is_array(a) ? a : NULL;
}

static int array_has(const json_t *a, uint64_t id)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
        if (json_is_integer(v) && (uint64_t)json_integer_value(v) == id)
            return 1;
    return 0;
}

/* The commit that committed version v (now SUPERSEDED): v's own commit id
 * when its record lists it (commit keeps it), else the newest commit
 * below `below` on its chain whose versions list it. */
static int original_commit(store_txn *t, const store_version *v,
                           uint64_t below, uint64_t *out)
{
    json_t *rec = NULL;
    if (v->commit_id && v->commit_id < below &&
        !history_record(t, v->commit_id, &rec)) {
        int ok = array_has(id_array(rec, "versions"), v->id);
        json_decref(rec);
        if (ok) {
            *out = v->commit_id;
            return 0;
        }
    }
    err_clear();
    uint64_t c = 0;
    int rc = parent_of(t, below, &c);
    while (!rc && c) {
        if ((rc = history_record(t, c, &rec))) break;
        int ok = array_has(id_array(rec, "versions"), v->id);
        uint64_t p = json_u64(rec, "parent");
        json_decref(rec);
        if (ok) {
            *out = c;
            return 0;
        }
        c = p;
    }
    if (rc) return rc;
    return err_set(ERR_STORE, "no commit below %llu committed version %llu",
                   (unsigned long long)below, (unsigned long long)v->id);
}

/* Undoes the fact state changes of commit `id` (HEAD being undone). */
static int undo_states(store_txn *t, uint64_t id, const json_t *rec,
                       history_result *res)
{
    int rc = 0;
    size_t i;
    json_t *v;
    const char *kind = json_string_value(json_object_get(rec, "kind"));
    if (kind && !strcmp(kind, "revert")) {
        json_t *ch = id_array(rec, "state_changes");
        for (i = ch ? json_array_size(ch) : 0; !rc && i-- > 0;) {
            json_t *c = json_array_get(ch, i);
            uint64_t vid = json_u64(c, "version");
            int from = history_state_parse(
                json_string_value(json_object_get(c, "from")));
            int to = history_state_parse(
                json_string_value(json_object_get(c, "to")));
            if (!vid || from < 0 || to < 0)
                return err_set(ERR_STORE, "commit %llu's record has a bad "
                               "state change", (unsigned long long)id);
            store_version sv;
            if ((rc = store_version_get(t, vid, &sv))) return rc;
            if ((int)sv.state == to) {
                rc = store_version_set_state(t, vid, (version_state)from,
                                             sv.commit_id);
                if (from == VERSION_COMMITTED) res->restored++;
                if (from == VERSION_REVERTED) res->reverted++;
            }
            store_version_free(&sv);
        }
        return rc;
    }
    json_array_foreach(id_array(rec, "versions"), i, v) {
        store_version sv;
        uint64_t vid = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
        if ((rc = store_version_get(t, vid, &sv))) return rc;
        if (sv.state == VERSION_COMMITTED && sv.commit_id == id) {
            rc = store_version_set_state(t, vid, VERSION_REVERTED, id);
            res->reverted++;
        }
        store_version_free(&sv);
        if (rc) return rc;
    }
    json_array_foreach(id_array(rec, "superseded"), i, v) {
        store_version sv;
        uint64_t vid = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
        if ((rc = store_version_get(t, vid, &sv))) return rc;
        if (sv.state == VERSION_SUPERSEDED) {
            uint64_t orig = 0;
            rc = original_commit(t, &sv, id, &orig);
            if (!rc) rc = store_version_set_state(t, vid, VERSION_COMMITTED,
                                                  orig);
            res->restored++;
        }
        store_version_free(&sv);
        if (rc) return rc;
    }
    return 0;
}

/* ---- reset and revert ------------------------------------------------ */

int history_reset(store_txn *t, uint64_t target, history_result *res)
{
    uint64_t head = 0, *path = NULL;
    size_t n = 0;
    history_ws *ws = NULL;
    json_t *rec = NULL;
    memset(res, 0, sizeof *res);
    int rc = store_head(t, &head);
    if (rc) return rc;
    res->old_head = res->new_head = head;
    if (target) {
        if ((rc = history_record(t, target, &rec))) return rc;
        json_decref(rec);
        rec = NULL;
    }
    if (target == head) return 0;
    rc = history_path(t, head, target, &path, &n);
    if (rc == ERR_INVALID)
        return err_set(ERR_INVALID, "commit %llu is not on the current chain "
                       "(it was reverted or reset away; HEAD is %llu)",
                       (unsigned long long)target, (unsigned long long)head);
    if (rc) return rc;
    if ((rc = history_ws_open(&ws, t))) goto out;
    for (size_t i = 0; i < n; i++) {
        if ((rc = history_record(t, path[i], &rec))) goto out;
        if ((rc = history_ws_undo(ws, path[i], rec, NULL))) goto out;
        if ((rc = undo_states(t, path[i], rec, res))) goto out;
        json_decref(rec);
        rec = NULL;
        res->commits++;
    }
    /* The chain's own check: every tensor the target's commit touched is
     * as it recorded (the steps above checked each earlier state). */
    if (target) {
        if ((rc = history_record(t, target, &rec))) goto out;
        json_t *tensors = json_object_get(rec, "tensors");
        for (size_t i = 0; i < history_ws_count(ws); i++) {
            const char *name = history_ws_name(ws, i);
            const char *want = json_string_value(
                json_object_get(json_object_get(tensors, name), "after"));
            float *d = NULL;
            size_t numel = 0;
            char h[33];
            if (!want) continue;
            if ((rc = history_ws_tensor(ws, name, &d, &numel, NULL))) goto out;
            hash_hex(h, d, numel * sizeof(float));
            if (strcmp(h, want)) {
                rc = err_set(ERR_STORE, "reset to commit %llu gives tensor "
                             "'%s' hash %s, recorded %s",
                             (unsigned long long)target, name, h, want);
                goto out;
            }
        }
    }
    if ((rc = history_ws_write(ws, &res->tensors, &res->tensors_deleted)))
        goto out;
    if ((rc = store_head_set(t, target))) goto out;
    res->new_head = target;
out:
    json_decref(rec);
    history_ws_close(ws);
    free(path);
    return rc;
}

/* The slot of version vid has a COMMITTED version (other than none). */
static int slot_has_committed(store_txn *t, const fact *f, int *has)
{
    store_version *hist = NULL;
    size_t n = 0;
    char *slot = fact_slot(f);
    if (!slot) return err_set(ERR_NOMEM, "out of memory");
    int rc = store_subject_history(t, f->subject, &hist, &n);
    *has = 0;
    for (size_t i = 0; !rc && i < n && !*has; i++) {
        if (hist[i].state != VERSION_COMMITTED) continue;
        char *other = fact_slot(&hist[i].f);
        if (!other) {
            rc = err_set(ERR_NOMEM, "out of memory");
            break;
        }
        *has = !strcmp(other, slot);
        free(other);
    }
    store_versions_free(hist, n);
    free(slot);
    return rc;
}

static json_t *state_change(uint64_t vid, int from, int to)
{
    return json_pack("{s:I,s:s,s:s}", "version", (json_int_t)vid, "from",
                     history_state_name(from), "to", history_state_name(to));
}

/* Fact states of a semantic revert of commit `old` (record orec): its
 * versions -> REVERTED; its superseded versions -> COMMITTED where their
 * slot has no committed version any more. Each change into `changes`. */
static int revert_states(store_txn *t, uint64_t old, const json_t *orec,
                         json_t *changes, history_result *res)
{
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(id_array(orec, "versions"), i, v) {
        store_version sv;
        uint64_t vid = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
        if ((rc = store_version_get(t, vid, &sv))) return rc;
        int from = sv.state;
        if ((sv.state == VERSION_COMMITTED && sv.commit_id == old) ||
            sv.state == VERSION_SUPERSEDED) {
            /* A superseded one is retired too: its change is gone, and a
             * later revert of what superseded it must not bring it back. */
            rc = store_version_set_state(t, vid, VERSION_REVERTED,
                                         sv.commit_id);
            json_array_append_new(changes,
                                  state_change(vid, from, VERSION_REVERTED));
            if (from == VERSION_COMMITTED) res->reverted++;
        }
        store_version_free(&sv);
        if (rc) return rc;
    }
    json_array_foreach(id_array(orec, "superseded"), i, v) {
        store_version sv;
        uint64_t vid = json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
        int has = 1;
        if ((rc = store_version_get(t, vid, &sv))) return rc;
        if (sv.state == VERSION_SUPERSEDED)
            rc = slot_has_committed(t, &sv.f, &has);
        if (!rc && !has) {
            uint64_t orig = 0;
            rc = original_commit(t, &sv, old, &orig);
            if (!rc)
                rc = store_version_set_state(t, vid, VERSION_COMMITTED, orig);
            json_array_append_new(changes, state_change(vid,
                                  VERSION_SUPERSEDED, VERSION_COMMITTED));
            res->restored++;
        }
        store_version_free(&sv);
        if (rc) return rc;
    }
    return 0;
}

static void utc_now(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The semantic revert of an older commit `old` (record orec) on the
 * chain below HEAD; path = HEAD down to old (exclusive). */
static int revert_older(store_txn *t, uint64_t head, uint64_t old,
                        const json_t *orec, const char *message,
                        history_result *res)
{
    double t0 = clock_seconds();
    history_ws *cur = NULL, *then = NULL;
    json_t *rec = json_object(), *tensors = json_object(),
           *layers = json_array(), *changes = json_array();
    float *before = NULL, *prev = NULL;
    char *text = NULL;
    uint64_t id = 0;
    size_t diff_total = 0;
    int rc = 0;
    json_t *otensors = json_object_get(orec, "tensors");
    if (!rec || !tensors || !layers || !changes) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    if (!json_is_object(otensors)) {
        rc = err_set(ERR_STORE, "commit %llu's record lists no tensors",
                     (unsigned long long)old);
        goto out;
    }
    if ((rc = store_commit_next_id(t, &id))) goto out;
    /* `then` goes back to the state right after `old`, tensors of old's
     * only; `cur` holds the current values. */
    if ((rc = history_ws_open(&cur, t))) goto out;
    if ((rc = history_ws_open(&then, t))) goto out;
    if ((rc = history_ws_goto(then, head, old, otensors))) goto out;
    const char *name;
    json_t *tv;
    json_object_foreach(otensors, name, tv) {
        float *after = NULL, *now = NULL;
        size_t n = 0, n2 = 0, shape[2];
        if ((rc = history_ws_tensor(then, name, &after, &n, NULL))) goto out;
        if ((rc = history_ws_tensor(cur, name, &now, &n2, shape))) goto out;
        free(before);
        free(prev);
        before = malloc((n ? n : 1) * sizeof *before);
        prev = malloc((n ? n : 1) * sizeof *prev);
        if (!before || !prev) {
            rc = err_set(ERR_NOMEM, "out of memory");
            goto out;
        }
        memcpy(before, after, n * sizeof *before);
        /* before = after with old's diff taken off (checked by hash) */
        const void *blob = NULL; /* LMDB memory, used at once */
        size_t len = 0;
        if ((rc = store_diff_get(t, old, name, &blob, &len))) goto out;
        if ((rc = wdiff_revert(blob, len, before, before, n))) {
            rc = err_set(ERR_STORE, "commit %llu, tensor '%s': %s",
                         (unsigned long long)old, name, err_message(rc));
            goto out;
        }
        memcpy(prev, now, n * sizeof *prev);
        for (size_t i = 0; i < n; i++) {
            double d = (double)after[i] - (double)before[i];
            now[i] = (float)((double)prev[i] - d);
            if (!isfinite(now[i])) {
                rc = err_set(ERR_NUMERIC, "reverting commit %llu makes tensor "
                             "'%s' non-finite", (unsigned long long)old, name);
                goto out;
            }
        }
        history_ws_touch(cur, name);
        void *nb = NULL;
        size_t nlen = 0;
        char hb[33], ha[33];
        if ((rc = wdiff_encode_matrix(prev, now, shape[0], shape[1], &nb,
                                      &nlen)))
            goto out;
        rc = store_diff_put(t, id, name, nb, nlen);
        free(nb);
        if (rc) goto out;
        diff_total += nlen;
        hash_hex(hb, prev, n * sizeof(float));
        hash_hex(ha, now, n * sizeof(float));
        json_object_set_new(tensors, name, json_pack("{s:s,s:s,s:I,s:I}",
            "before", hb, "after", ha, "diff_bytes", (json_int_t)nlen,
            "raw_bytes", (json_int_t)(n * sizeof(float))));
        wdiff_stats st;
        if ((rc = wdiff_stats_compute(prev, now, shape[0], shape[1], &st)))
            goto out;
        json_t *layer = json_object();
        unsigned lnum = 0;
        if (sscanf(name, "h.%u.", &lnum) == 1 ||
            sscanf(name, "transformer.h.%u.", &lnum) == 1)
            json_object_set_new(layer, "layer", json_integer(lnum));
        json_object_set_new(layer, "tensor", json_string(name));
        json_object_set_new(layer, "delta_norm", json_real(st.delta_norm));
        json_object_set_new(layer, "rel_norm", json_real(st.rel_norm));
        json_object_set_new(layer, "max_abs", json_real(st.max_abs));
        json_object_set_new(layer, "rank", json_integer((json_int_t)st.rank));
        json_array_append_new(layers, layer);
    }
    if ((rc = history_ws_write(cur, &res->tensors, &res->tensors_deleted)))
        goto out;
    if ((rc = revert_states(t, old, orec, changes, res))) goto out;

    char when[32], msg[256];
    utc_now(when, sizeof when);
    const char *omsg = json_string_value(json_object_get(orec, "message"));
    snprintf(msg, sizeof msg, "revert commit %llu%s%s%s",
             (unsigned long long)old, omsg ? " (" : "", omsg ? omsg : "",
             omsg ? ")" : "");
    json_t *method = json_object_get(orec, "method");
    json_object_set_new(rec, "id", json_integer((json_int_t)id));
    json_object_set_new(rec, "parent", json_integer((json_int_t)head));
    json_object_set_new(rec, "kind", json_string("revert"));
    json_object_set_new(rec, "reverts", json_integer((json_int_t)old));
    json_object_set_new(rec, "time", json_string(when));
    json_object_set_new(rec, "message", json_string(message ? message : msg));
    json_object_set_new(rec, "method", method ? json_incref(method)
                                              : json_string("memit"));
    json_object_set_new(rec, "versions", json_array());
    json_object_set_new(rec, "superseded", json_array());
    json_object_set_new(rec, "n_facts", json_integer(0));
    json_object_set_new(rec, "failed", json_array());
    json_object_set_new(rec, "state_changes", json_incref(changes));
    json_object_set_new(rec, "layers", json_incref(layers));
    json_object_set_new(rec, "tensors", json_incref(tensors));
    json_object_set_new(rec, "diff_bytes", json_integer((json_int_t)diff_total));
    json_object_set_new(rec, "threads", json_integer(1));
    json_object_set_new(rec, "timings", json_pack("{s:f}", "total",
                                                  clock_seconds() - t0));
    text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        rc = err_set(ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = store_commit_put(t, id, text))) goto out;
    if ((rc = store_head_set(t, id))) goto out;
    res->new_head = id;
    res->new_commit = id;
out:
    history_ws_close(cur);
    history_ws_close(then);
    json_decref(rec);
    json_decref(tensors);
    json_decref(layers);
    json_decref(changes);
    free(before);
    free(prev);
    free(text);
    return rc;
}

int history_revert(store_txn *t, uint64_t id, const char *message,
                   history_result *res)
{
    uint64_t head = 0, *path = NULL;
    size_t n = 0;
    json_t *rec = NULL, *r = NULL;
    memset(res, 0, sizeof *res);
    if (id == 0)
        return err_set(ERR_INVALID, "the base model cannot be reverted "
                       "(did you mean 'stamp reset base'?)");
    int rc = store_head(t, &head);
    if (!rc) rc = history_record(t, id, &rec);
    if (rc) return rc;
    res->old_head = res->new_head = head;
    if (id == head) {
        uint64_t parent = json_u64(rec, "parent");
        json_decref(rec);
        return history_reset(t, parent, res);
    }
    rc = history_path(t, head, id, &path, &n);
    if (rc == ERR_INVALID) {
        rc = err_set(ERR_INVALID, "commit %llu is not on the current chain "
                     "(it was reverted or reset away; HEAD is %llu)",
                     (unsigned long long)id, (unsigned long long)head);
        goto out;
    }
    if (rc) goto out;
    const char *kind = json_string_value(json_object_get(rec, "kind"));
    if (kind && !strcmp(kind, "revert")) {
        rc = err_set(ERR_INVALID, "commit %llu is itself a revert and not "
                     "HEAD; reset to before it ('stamp reset %llu') instead",
                     (unsigned long long)id,
                     (unsigned long long)json_u64(rec, "parent"));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = history_record(t, path[i], &r))) goto out;
        const char *k = json_string_value(json_object_get(r, "kind"));
        if (k && !strcmp(k, "revert") && json_u64(r, "reverts") == id) {
            rc = err_set(ERR_INVALID, "commit %llu was already reverted by "
                         "commit %llu", (unsigned long long)id,
                         (unsigned long long)path[i]);
            goto out;
        }
        json_decref(r);
        r = NULL;
    }
    rc = revert_older(t, head, id, rec, message, res);
out:
    json_decref(r);
    json_decref(rec);
    free(path);
    return rc;
}

/* ---- facts in effect ------------------------------------------------- */

typedef struct {
    char *slot;
    uint64_t version;
    size_t order; /* walk order: smaller = newer */
} slot_pick;

static int cmp_pick(const void *a, const void *b)
{
    const slot_pick *x = a, *y = b;
    int c = strcmp(x->slot, y->slot);
    if (c) return c;
    return (x->order > y->order) - (x->order < y->order);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int history_facts_at(store_txn *t, uint64_t id, uint64_t **ids, size_t *n)
{
    slot_pick *p = NULL;
    size_t np = 0, cap = 0, nrev = 0, caprev = 0;
    uint64_t *reverted = NULL, c = id;
    json_t *rec = NULL;
    int rc = 0;
    *ids = NULL;
    *n = 0;
    while (c) {
        if ((rc = history_record(t, c, &rec))) goto out;
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        int skip = 0;
        for (size_t i = 0; i < nrev; i++) skip |= reverted[i] == c;
        if (kind && !strcmp(kind, "revert")) {
            if (nrev == caprev) {
                caprev = caprev ? 2 * caprev : 8;
                uint64_t *r = realloc(reverted, caprev * sizeof *r);
                if (!r) { rc = err_set(ERR_NOMEM, "out of memory"); goto out; }
                reverted = r;
            }
            if (!skip) reverted[nrev++] = json_u64(rec, "reverts");
        } else if (!skip) {
            size_t i;
            json_t *v;
            json_array_foreach(id_array(rec, "versions"), i, v) {
                store_version sv;
                uint64_t vid = json_is_integer(v)
                                   ? (uint64_t)json_integer_value(v) : 0;
                if ((rc = store_version_get(t, vid, &sv))) goto out;
                if (np == cap) {
                    cap = cap ? 2 * cap : 64;
                    slot_pick *q = realloc(p, cap * sizeof *q);
                    if (!q) {
                        store_version_free(&sv);
                        rc = err_set(ERR_NOMEM, "out of memory");
                        goto out;
                    }
                    p = q;
                }
                p[np].slot = fact_slot(&sv.f);
                p[np].version = vid;
                p[np].order = np;
                store_version_free(&sv);
                if (!p[np].slot) { rc = err_set(ERR_NOMEM, "out of memory"); goto out; }
                np++;
            }
        }
        c = json_u64(rec, "parent");
        json_decref(rec);
        rec = NULL;
    }
    qsort(p, np, sizeof *p, cmp_pick);
    uint64_t *out = malloc((np ? np : 1) * sizeof *out);
    if (!out) { rc = err_set(ERR_NOMEM, "out of memory"); goto out; }
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        if (i == 0 || strcmp(p[i].slot, p[i - 1].slot))
            out[k++] = p[i].version;
    qsort(out, k, sizeof *out, cmp_u64);
    *ids = out;
    *n = k;
out:
    json_decref(rec);
    for (size_t i = 0; i < np; i++) free(p[i].slot);
    free(p);
    free(reverted);
    return rc;
}

/* ---- fsck ------------------------------------------------------------ */

static void problem(json_t *problems, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(json_t *problems, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(problems, json_string(buf));
}

/* A commit's diffs against its record. */
static int fsck_diffs(store_txn *t, uint64_t id, const json_t *rec,
                      json_t *problems, history_fsck_counts *c)
{
    unsigned long long cid = (unsigned long long)id;
    json_t *tensors = json_object_get(rec, "tensors");
    const char *name;
    json_t *tv;
    if (!json_is_object(tensors)) {
        problem(problems, "commit %llu's record lists no tensors", cid);
        return 0;
    }
    json_object_foreach(tensors, name, tv) {
        const void *blob = NULL; /* LMDB memory: used at once */
        size_t len = 0;
        wdiff_info info;
        const char *before = json_string_value(json_object_get(tv, "before"));
        const char *after = json_string_value(json_object_get(tv, "after"));
        int rc = store_diff_get(t, id, name, &blob, &len);
        c->diffs++;
        if (rc == ERR_NOTFOUND) {
            problem(problems, "commit %llu has no diff of tensor '%s'", cid,
                    name);
            continue;
        }
        if (rc) return rc;
        if ((rc = wdiff_info_get(blob, len, &info))) {
            problem(problems, "commit %llu's diff of '%s' is damaged: %s", cid,
                    name, err_message(rc));
            continue;
        }
        if (!before || !after || strcmp(before, info.old_hash) ||
            strcmp(after, info.new_hash))
            problem(problems, "commit %llu's diff of '%s' and its record "
                    "disagree on the tensor hashes", cid, name);
    }
    char **names = NULL;
    size_t n = 0;
    int rc = store_diff_tensors(t, id, &names, &n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(tensors, names[i]))
            problem(problems, "commit %llu has a diff of '%s' that its record "
                    "does not list", cid, names[i]);
    store_strings_free(names, n);
    return 0;
}

static int u64_in(const uint64_t *a, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == x) return 1;
    return 0;
}

typedef struct {
    char *slot;
    uint64_t id;
} slot_entry;

static int cmp_slot_entry(const void *a, const void *b)
{
    return strcmp(((const slot_entry *)a)->slot, ((const slot_entry *)b)->slot);
}

/* The queue and fact states against the chain. */
static int fsck_facts(store_txn *t, const uint64_t *chain, json_t **recs,
                      size_t n_chain, json_t *problems,
                      history_fsck_counts *c)
{
    store_version *q = NULL, *com = NULL;
    size_t nq = 0, ncom = 0, count = 0, nrev = 0;
    uint64_t *reverted = malloc((n_chain ? n_chain : 1) * sizeof *reverted);
    slot_entry *slots = NULL;
    int rc = 0;
    if (!reverted) return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_chain; i++) {
        const char *kind = json_string_value(json_object_get(recs[i], "kind"));
        if (kind && !strcmp(kind, "revert"))
            reverted[nrev++] = json_u64(recs[i], "reverts");
    }
    if ((rc = store_queue_list(t, 0, &q, &nq))) goto out;
    if ((rc = store_queue_count(t, &count))) goto out;
    if (count != nq)
        problem(problems, "the queue counts %zu versions but lists %zu", count,
                nq);
    for (size_t i = 0; i < nq; i++, c->versions++)
        if (q[i].state != VERSION_QUEUED)
            problem(problems, "queued version %llu ('%s') is in state %s",
                    (unsigned long long)q[i].id, q[i].f.subject,
                    history_state_name(q[i].state));
    if ((rc = store_committed_list(t, 0, &com, &ncom))) goto out;
    slots = calloc(ncom ? ncom : 1, sizeof *slots);
    if (!slots) { rc = err_set(ERR_NOMEM, "out of memory"); goto out; }
    for (size_t i = 0; i < ncom; i++, c->versions++) {
        unsigned long long vid = (unsigned long long)com[i].id;
        uint64_t cm = com[i].commit_id;
        size_t k = 0;
        while (k < n_chain && chain[k] != cm) k++;
        if (k == n_chain)
            problem(problems, "version %llu ('%s') is committed in commit "
                    "%llu, which is not on the chain", vid, com[i].f.subject,
                    (unsigned long long)cm);
        else if (u64_in(reverted, nrev, cm))
            problem(problems, "version %llu ('%s') is committed in commit "
                    "%llu, which was reverted", vid, com[i].f.subject,
                    (unsigned long long)cm);
        else if (!array_has(id_array(recs[k], "versions"), com[i].id))
            problem(problems, "version %llu ('%s') is committed in commit "
                    "%llu, whose record does not list it", vid,
                    com[i].f.subject, (unsigned long long)cm);
        slots[i].slot = fact_slot(&com[i].f);
        slots[i].id = com[i].id;
        if (!slots[i].slot) { rc = err_set(ERR_NOMEM, "out of memory"); goto out; }
    }
    qsort(slots, ncom, sizeof *slots, cmp_slot_entry);
    for (size_t i = 1; i < ncom; i++)
        if (!strcmp(slots[i].slot, slots[i - 1].slot))
            problem(problems, "versions %llu and %llu of one fact are both "
                    "committed", (unsigned long long)slots[i - 1].id,
                    (unsigned long long)slots[i].id);
    for (size_t k = 0; k < n_chain; k++) {
        const char *kind = json_string_value(json_object_get(recs[k], "kind"));
        if (kind && !strcmp(kind, "revert")) continue;
        int is_reverted = u64_in(reverted, nrev, chain[k]);
        size_t i;
        json_t *v;
        json_array_foreach(id_array(recs[k], "versions"), i, v) {
            store_version sv;
            uint64_t vid = json_is_integer(v) ? (uint64_t)json_integer_value(v)
                                              : 0;
            rc = store_version_get(t, vid, &sv);
            if (rc == ERR_NOTFOUND) {
                err_clear();
                rc = 0;
                problem(problems, "commit %llu lists version %llu, which does "
                        "not exist", (unsigned long long)chain[k],
                        (unsigned long long)vid);
                continue;
            }
            if (rc) goto out;
            int ok = is_reverted
                ? sv.state == VERSION_REVERTED
                : (sv.state == VERSION_COMMITTED && sv.commit_id == chain[k]) ||
                      sv.state == VERSION_SUPERSEDED;
            if (!ok)
                problem(problems, "version %llu ('%s') of commit %llu%s is in "
                        "state %s", (unsigned long long)vid, sv.f.subject,
                        (unsigned long long)chain[k],
                        is_reverted ? " (reverted)" : "",
                        history_state_name(sv.state));
            store_version_free(&sv);
        }
    }
out:
    for (size_t i = 0; slots && i < ncom; i++) free(slots[i].slot);
    free(slots);
    free(reverted);
    store_versions_free(q, nq);
    store_versions_free(com, ncom);
    return rc;
}

/* config.json against meta "config", when init recorded it. */
static int fsck_config(store_txn *t, json_t *problems)
{
    char *dir = NULL, *want = NULL, path[4200];
    int rc = store_meta_get(t, "config", &want);
    if (rc == ERR_NOTFOUND) {
        err_clear();
        return 0;
    }
    if (!rc) rc = modelview_model_dir(t, &dir);
    if (rc) {
        free(want);
        return rc;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    char *have = NULL;
    size_t len = 0;
    if (f) {
        FILE *m = open_memstream(&have, &len);
        char buf[4096];
        size_t k;
        while (m && (k = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, k, m);
        if (m) fclose(m);
        fclose(f);
    }
    if (!have)
        problem(problems, "base model '%s' cannot be read", path);
    else if (strlen(want) != len || memcmp(want, have, len))
        problem(problems, "base model '%s' differs from the config recorded "
                "at init", path);
    free(have);
    free(want);
    free(dir);
    return 0;
}

/* The chain from HEAD back to the base, as history_fsck reads it. */
typedef struct {
    uint64_t *ids;   /* (n) commit ids, HEAD first */
    json_t **recs;   /* (n) their records */
    size_t n;
    int ok;          /* 0: a link could not be read, the chain is cut */
} fsck_chain;

/* Reads the chain from head, following "parent"; a link that cannot be
 * read is a problem and ends it (ok = 0). */
static int fsck_read_chain(store_txn *t, uint64_t head, json_t *problems,
                           fsck_chain *ch)
{
    size_t cap = 0;
    for (uint64_t cur = head; cur;) {
        json_t *rec = NULL;
        int e = history_record(t, cur, &rec);
        if (e == ERR_NOMEM) return e;
        if (e) {
            problem(problems, "the chain from HEAD is broken at commit %llu: "
                    "%s", (unsigned long long)cur, err_message(e));
            ch->ok = 0;
            break;
        }
        if (ch->n == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *a = realloc(ch->ids, cap * sizeof *a);
            json_t **b = a ? realloc(ch->recs, cap * sizeof *b) : NULL;
            if (a) ch->ids = a;
            if (!a || !b) {
                json_decref(rec);
                return err_set(ERR_NOMEM, "out of memory");
            }
            ch->recs = b;
        }
        ch->ids[ch->n] = cur;
        ch->recs[ch->n++] = rec;
        cur = json_u64(rec, "parent");
    }
    return 0;
}

/* Every commit's record and its diffs (fsck_diffs); HEAD must name a
 * commit that exists. */
static int fsck_records(store_txn *t, const fsck_chain *ch, json_t *problems,
                        history_fsck_counts *c)
{
    uint64_t *all = NULL;
    size_t n_all = 0;
    int rc = store_commit_ids(t, &all, &n_all);
    if (rc) goto out;
    c->commits = n_all;
    for (size_t i = 0; i < n_all; i++) {
        json_t *rec = NULL;
        int e = history_record(t, all[i], &rec);
        if (e == ERR_NOMEM) { rc = e; goto out; }
        if (e) {
            if (!u64_in(ch->ids, ch->n, all[i]))
                problem(problems, "commit %llu's record is unreadable: %s",
                        (unsigned long long)all[i], err_message(e));
            continue;
        }
        rc = fsck_diffs(t, all[i], rec, problems, c);
        json_decref(rec);
        if (rc) goto out;
    }
    if (c->head && !u64_in(all, n_all, c->head))
        problem(problems, "HEAD names commit %llu, which does not exist",
                (unsigned long long)c->head);
out:
    free(all);
    return rc;
}

/* The base model's files against what init recorded; *ws opened on it,
 * or left NULL when it cannot be opened (a problem). */
static int fsck_base(store_txn *t, json_t *problems, history_fsck_counts *c,
                     history_ws **ws)
{
    int rc, e = modelview_verify_base(t);
    if (e == ERR_NOMEM) return e;
    if (e) problem(problems, "%s", err_message(e));
    if ((rc = fsck_config(t, problems))) return rc;
    e = history_ws_open(ws, t);
    if (e == ERR_NOMEM) return e;
    if (e) {
        problem(problems, "the base model cannot be opened: %s",
                err_message(e));
        return 0;
    }
    c->base_tensors = hf_weights_count((*ws)->base);
    return 0;
}

/* The overlay against the newest commit that touched each tensor:
 * names[0..n_names) are the overlay's tensors. */
static int fsck_overlay(history_ws *ws, const fsck_chain *ch, char **names,
                        size_t n_names, json_t *problems,
                        history_fsck_counts *c)
{
    for (size_t i = 0; i < n_names; i++) {
        float *d = NULL;
        size_t n = 0;
        char h[33];
        c->overlay++;
        int e = history_ws_tensor(ws, names[i], &d, &n, NULL);
        if (e == ERR_NOMEM) return e;
        if (e) {
            problem(problems, "overlay tensor '%s': %s", names[i],
                    err_message(e));
            continue;
        }
        hash_hex(h, d, n * sizeof(float));
        size_t k = 0;
        json_t *tv = NULL;
        for (; k < ch->n; k++)
            if ((tv = json_object_get(json_object_get(ch->recs[k], "tensors"),
                                      names[i])))
                break;
        if (k == ch->n) {
            if (ch->ok)
                problem(problems, "overlay tensor '%s' was written by no "
                        "commit on the chain", names[i]);
            continue;
        }
        const char *want = json_string_value(json_object_get(tv, "after"));
        if (!want || strcmp(want, h))
            problem(problems, "overlay tensor '%s' hashes to %s, but commit "
                    "%llu left it at %s", names[i], h,
                    (unsigned long long)ch->ids[k], want ? want : "(none)");
    }
    return 0;
}

/* Touched tensors missing from the overlay (names[0..n_names)) must be
 * at the base, as the newest commit that touched them left them. */
static int fsck_not_in_overlay(history_ws *ws, const fsck_chain *ch,
                               char **names, size_t n_names,
                               json_t *problems)
{
    for (size_t k = 0; k < ch->n; k++) {
        const char *name;
        json_t *tv;
        json_object_foreach(json_object_get(ch->recs[k], "tensors"), name, tv) {
            int seen = 0;
            for (size_t j = 0; j < k && !seen; j++)
                seen = json_object_get(json_object_get(ch->recs[j], "tensors"),
                                       name) != NULL;
            for (size_t j = 0; j < n_names && !seen; j++)
                seen = !strcmp(names[j], name);
            if (seen) continue;
            const float *b = NULL;
            size_t n = 0;
            char h[33];
            int e = history_ws_base(ws, name, &b, &n);
            if (e == ERR_NOMEM) return e;
            if (e) {
                problem(problems, "commit %llu edits '%s': %s",
                        (unsigned long long)ch->ids[k], name, err_message(e));
                continue;
            }
            hash_hex(h, b, n * sizeof(float));
            const char *want = json_string_value(json_object_get(tv, "after"));
            if (!want || strcmp(want, h))
                problem(problems, "tensor '%s' is missing from the overlay, "
                        "but commit %llu left it edited",
                        name, (unsigned long long)ch->ids[k]);
        }
    }
    return 0;
}

/* Replays the whole chain back to the base: every undo must work and
 * end at the base model's values. */
static int fsck_replay(store_txn *t, const fsck_chain *ch, json_t *problems,
                       history_fsck_counts *c)
{
    history_ws *replay = NULL;
    int rc = 0, e = history_ws_open(&replay, t);
    for (size_t k = 0; !e && k < ch->n; k++) {
        e = history_ws_undo(replay, ch->ids[k], ch->recs[k], NULL);
        if (e == ERR_NOMEM) { rc = e; goto out; }
        if (e)
            problem(problems, "undoing the chain from HEAD fails at "
                    "commit %llu: %s", (unsigned long long)ch->ids[k],
                    err_message(e));
        else
            c->replayed += json_object_size(
                json_object_get(ch->recs[k], "tensors"));
    }
    for (size_t i = 0; !e && i < history_ws_count(replay); i++) {
        const char *name = history_ws_name(replay, i);
        float *d = NULL;
        const float *b = NULL;
        size_t n = 0;
        if ((rc = history_ws_tensor(replay, name, &d, &n, NULL)) ||
            (rc = history_ws_base(replay, name, &b, &n)))
            goto out;
        if (memcmp(d, b, n * sizeof(float)))
            problem(problems, "undoing the whole chain does not give back "
                    "the base model's '%s'", name);
    }
out:
    history_ws_close(replay);
    return rc;
}

int history_fsck(store_txn *t, json_t *problems, history_fsck_counts *c)
{
    fsck_chain ch = {.ok = 1};
    char **names = NULL;
    size_t n_names = 0;
    history_ws *ws = NULL;
    int rc;
    memset(c, 0, sizeof *c);

    if ((rc = store_head(t, &c->head))) return rc;
    if ((rc = fsck_read_chain(t, c->head, problems, &ch))) goto out;
    c->chain = ch.n;
    if ((rc = fsck_records(t, &ch, problems, c))) goto out;
    if ((rc = fsck_base(t, problems, c, &ws))) goto out;
    if (ws && /* else the base cannot be opened: only the facts remain */
        ((rc = store_tensor_names(t, &names, &n_names)) ||
         (rc = fsck_overlay(ws, &ch, names, n_names, problems, c)) ||
         (rc = fsck_not_in_overlay(ws, &ch, names, n_names, problems)) ||
         (ch.ok && (rc = fsck_replay(t, &ch, problems, c)))))
        goto out;
    rc = fsck_facts(t, ch.ids, ch.recs, ch.n, problems, c);
out:
    for (size_t i = 0; i < ch.n; i++) json_decref(ch.recs[i]);
    free(ch.recs);
    free(ch.ids);
    store_strings_free(names, n_names);
    history_ws_close(ws);
    return rc;
}
