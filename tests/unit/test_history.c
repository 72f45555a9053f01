/* test_history: the commit chain and exact moves along it, on a store
 * built in a temporary directory with commits made here through the
 * store API exactly as the commit command writes them (new tensors,
 * wdiff diffs, records with before/after hashes, fact states): revert of
 * HEAD and reset are bit-exact and restore fact states; 20 sequential
 * commits reset one by one and all at once; a reset-away commit is
 * refused and reachable by redo; an older commit's semantic revert and
 * its exact undo; tampered tensors and diffs are caught; undoing HEAD
 * never reads older commits' diffs. */
#include "base/errors.h"
#include "facts/fact.h"
#include "base/hash.h"
#include "repo/history.h"
#include "model/safetensors.h"
#include "base/splitmix.h"
#include "store/store.h"
#include "repo/wdiff.h"
#include "../harness.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROWS 48
#define COLS 16
#define N_LAYERS 3

static char tmpdir[256], model_dir[300], store_path[300];
static uint64_t rng_state = 7;

static double rng_normal(void) { return splitmix_normal(&rng_state); }

static void layer_name(char *buf, size_t size, int l)
{
    snprintf(buf, size, "h.%d.mlp.c_proj.weight", l);
}

/* A base model.safetensors with HF-prefixed names and a store on it. */
static void make_store(void)
{
    char path[400];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/stamp-test-history.XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
    snprintf(model_dir, sizeof model_dir, "%s/model", tmpdir);
    snprintf(store_path, sizeof store_path, "%s/store", tmpdir);
    if (mkdir(model_dir, 0755)) abort();
    static float w[N_LAYERS + 1][ROWS * COLS];
    st_write_tensor t[N_LAYERS + 1];
    char names[N_LAYERS + 1][64];
    for (int l = 0; l <= N_LAYERS; l++) {
        for (size_t i = 0; i < ROWS * COLS; i++)
            w[l][i] = (float)(0.02 * rng_normal());
        if (l < N_LAYERS)
            snprintf(names[l], 64, "transformer.h.%d.mlp.c_proj.weight", l);
        else
            snprintf(names[l], 64, "transformer.wte.weight");
        t[l] = (st_write_tensor){names[l], 2, {ROWS, COLS}, w[l], ST_F32};
    }
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (safetensors_write(path, t, N_LAYERS + 1)) abort();
    json_t *hashes = json_object();
    for (int l = 0; l <= N_LAYERS; l++) {
        char h[33];
        hash_hex(h, w[l], sizeof w[l]);
        json_object_set_new(hashes, names[l], json_string(h));
    }
    char *hj = json_dumps(hashes, JSON_COMPACT);
    const char *keys[] = {"format_version", "model_dir", "model_tensor_hashes"};
    const char *vals[] = {"1", model_dir, hj};
    if (store_create(store_path, keys, vals, 3)) abort();
    free(hj);
    json_decref(hashes);
}

static void remove_store(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "  could not remove %s\n", tmpdir);
}

/* Queues facts: subject "s<k>", target "t<target>". */
static void import_facts(store *s, const int *subjects, const int *targets,
                         size_t n)
{
    store_txn *t = NULL;
    uint64_t imp = 0;
    if (store_txn_begin(s, &t, 1) || store_import_begin(t, &imp)) abort();
    for (size_t i = 0; i < n; i++) {
        char subj[32], target[32], prompt[] = "{} plays the";
        snprintf(subj, sizeof subj, "s%d", subjects[i]);
        snprintf(target, sizeof target, " t%d", targets[i]);
        fact f = {0};
        f.subject = subj;
        f.prompt = prompt;
        f.relation = "P1";
        f.target_new = target;
        f.target_true = " x";
        f.source_file = "test.csv";
        f.source_line = i + 2;
        import_action a;
        if (store_fact_add(t, &f, imp, &a, NULL)) abort();
    }
    if (store_txn_commit(t)) abort();
}

/* Commits every queued fact as the commit command does, with a rank-r
 * update of relative size 0.05 to the tensors of `layers` (-1 ends). */
static uint64_t make_commit(store *s, const int *layers, size_t r)
{
    store_txn *t = NULL;
    history_ws *ws = NULL;
    store_version *q = NULL;
    size_t nq = 0;
    uint64_t id = 0, parent = 0;
    if (store_txn_begin(s, &t, 1) || store_commit_next_id(t, &id) ||
        store_head(t, &parent) || history_ws_open(&ws, t) ||
        store_queue_list(t, 0, &q, &nq))
        abort();
    json_t *rec = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)id,
                            "parent", (json_int_t)parent, "kind", "commit",
                            "time", "2026-11-29T04:00:00Z", "message",
                            "test commit", "method", "memit");
    json_t *tensors = json_object(), *versions = json_array(),
           *superseded = json_array();
    for (const int *l = layers; *l >= 0; l++) {
        char name[64], hb[33], ha[33];
        float *cur = NULL;
        size_t n = 0;
        layer_name(name, sizeof name, *l);
        if (history_ws_tensor(ws, name, &cur, &n, NULL)) abort();
        float *old = malloc(n * sizeof *old), *neu = malloc(n * sizeof *neu);
        memcpy(old, cur, n * sizeof *old);
        double u[ROWS * 4], v[COLS * 4], on = 0, dn = 0, d[ROWS * COLS];
        for (size_t i = 0; i < ROWS * r; i++) u[i] = rng_normal();
        for (size_t i = 0; i < COLS * r; i++) v[i] = rng_normal();
        for (size_t i = 0; i < ROWS; i++)
            for (size_t j = 0; j < COLS; j++) {
                double x = 0;
                for (size_t k = 0; k < r; k++) x += u[i * r + k] * v[j * r + k];
                d[i * COLS + j] = x;
                dn += x * x;
                on += (double)old[i * COLS + j] * old[i * COLS + j];
            }
        for (size_t i = 0; i < n; i++)
            neu[i] = old[i] + (float)(d[i] * 0.05 * sqrt(on / dn));
        void *blob = NULL;
        size_t len = 0;
        if (wdiff_encode(old, neu, n, &blob, &len) ||
            store_diff_put(t, id, name, blob, len) ||
            store_tensor_put(t, name, neu, n))
            abort();
        hash_hex(hb, old, n * sizeof(float));
        hash_hex(ha, neu, n * sizeof(float));
        json_object_set_new(tensors, name, json_pack("{s:s,s:s,s:I,s:I}",
            "before", hb, "after", ha, "diff_bytes", (json_int_t)len,
            "raw_bytes", (json_int_t)(n * 4)));
        free(blob);
        free(old);
        free(neu);
    }
    for (size_t i = 0; i < nq; i++) {
        json_array_append_new(versions, json_integer((json_int_t)q[i].id));
        store_version *h = NULL;
        size_t nh = 0;
        if (store_subject_history(t, q[i].f.subject, &h, &nh)) abort();
        for (size_t k = 0; k < nh; k++)
            if (h[k].id != q[i].id && h[k].state == VERSION_COMMITTED) {
                json_array_append_new(superseded,
                                      json_integer((json_int_t)h[k].id));
                if (store_version_set_state(t, h[k].id, VERSION_SUPERSEDED,
                                            h[k].commit_id))
                    abort();
            }
        store_versions_free(h, nh);
        if (store_version_set_state(t, q[i].id, VERSION_COMMITTED, id))
            abort();
    }
    json_object_set_new(rec, "versions", versions);
    json_object_set_new(rec, "superseded", superseded);
    json_object_set_new(rec, "n_facts", json_integer((json_int_t)nq));
    json_object_set_new(rec, "tensors", tensors);
    char *text = json_dumps(rec, JSON_COMPACT);
    if (store_commit_put(t, id, text) || store_head_set(t, id) ||
        store_txn_commit(t))
        abort();
    free(text);
    json_decref(rec);
    store_versions_free(q, nq);
    history_ws_close(ws);
    return id;
}

/* hash of the current value of layer l (overlay, else base) */
static void current_hash(store *s, int l, char out[33])
{
    store_txn *t = NULL;
    history_ws *ws = NULL;
    char name[64];
    float *d = NULL;
    size_t n = 0;
    layer_name(name, sizeof name, l);
    if (store_txn_begin(s, &t, 0) || history_ws_open(&ws, t) ||
        history_ws_tensor(ws, name, &d, &n, NULL))
        abort();
    hash_hex(out, d, n * sizeof(float));
    history_ws_close(ws);
    store_txn_abort(t);
}

static int overlay_has(store *s, int l)
{
    store_txn *t = NULL;
    const float *d = NULL;
    size_t n = 0;
    char name[64];
    layer_name(name, sizeof name, l);
    if (store_txn_begin(s, &t, 0)) abort();
    int rc = store_tensor_get(t, name, &d, &n);
    store_txn_abort(t);
    return rc == 0;
}

static version_state state_of(store *s, uint64_t vid, uint64_t *commit)
{
    store_txn *t = NULL;
    store_version v;
    if (store_txn_begin(s, &t, 0) || store_version_get(t, vid, &v)) abort();
    version_state st = v.state;
    if (commit) *commit = v.commit_id;
    store_version_free(&v);
    store_txn_abort(t);
    return st;
}

static uint64_t head_of(store *s)
{
    store_txn *t = NULL;
    uint64_t h = 0;
    if (store_txn_begin(s, &t, 0) || store_head(t, &h)) abort();
    store_txn_abort(t);
    return h;
}

/* Runs history_reset or history_revert in a write transaction that is
 * committed on success and aborted on failure, like the commands. */
static int run_op(store *s, int revert, uint64_t id, history_result *res)
{
    store_txn *t = NULL;
    history_result r;
    if (store_txn_begin(s, &t, 1)) abort();
    int rc = revert ? history_revert(t, id, NULL, res ? res : &r)
                    : history_reset(t, id, res ? res : &r);
    if (rc) store_txn_abort(t);
    else if (store_txn_commit(t)) abort();
    return rc;
}

TEST(names_and_the_chain)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int subj[] = {1}, tg[] = {1};
    import_facts(s, subj, tg, 1);
    int l01[] = {0, 1, -1};
    uint64_t c1 = make_commit(s, l01, 2), c2 = make_commit(s, l01, 2);
    uint64_t c3 = make_commit(s, l01, 2);
    store_txn *t = NULL;
    uint64_t id = 99, *path = NULL;
    size_t n = 0;
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_resolve(t, "HEAD", &id) == 0 && id == c3);
    CHECK(history_resolve(t, "HEAD~1", &id) == 0 && id == c2);
    CHECK(history_resolve(t, "HEAD~", &id) == 0 && id == c2);
    CHECK(history_resolve(t, "HEAD~3", &id) == 0 && id == 0);
    CHECK(history_resolve(t, "HEAD~4", &id) == ERR_NOTFOUND);
    CHECK(history_resolve(t, "base", &id) == 0 && id == 0);
    CHECK(history_resolve(t, "2", &id) == 0 && id == 2);
    CHECK(history_resolve(t, "0", &id) == 0 && id == 0);
    CHECK(history_resolve(t, "17", &id) == ERR_NOTFOUND);
    CHECK(history_resolve(t, "x1", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "1x", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "HEAD~-1", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "", &id) == ERR_INVALID);
    /* numbers are strict: no sign, space or overflow */
    CHECK(history_resolve(t, "+2", &id) == ERR_INVALID);
    CHECK(history_resolve(t, " 2", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "HEAD~ 1", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "HEAD~+1", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "18446744073709551616", &id) == ERR_INVALID);
    CHECK(history_resolve(t, "18446744073709551615", &id) == ERR_NOTFOUND);
    CHECK(history_path(t, c3, c1, &path, &n) == 0 && n == 2 &&
          path[0] == c3 && path[1] == c2);
    free(path);
    CHECK(history_path(t, c1, c3, &path, &n) == ERR_INVALID);
    int on = 0;
    CHECK(history_on_chain(t, c1, &on) == 0 && on);
    CHECK(history_on_chain(t, 0, &on) == 0 && on);
    uint64_t lca = 9;
    CHECK(history_common_ancestor(t, c1, c3, &lca) == 0 && lca == c1);
    store_txn_abort(t);
    store_close(s);
    remove_store();
}

TEST(revert_head_is_exact_and_restores_fact_states)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int subj[] = {1, 2}, tg[] = {1, 1};
    import_facts(s, subj, tg, 2); /* versions 1, 2 */
    int l01[] = {0, 1, -1}, l12[] = {1, 2, -1};
    uint64_t c1 = make_commit(s, l01, 2);
    char h0[33], h1[33], h2[33], h0b[33];
    current_hash(s, 1, h1);
    current_hash(s, 2, h2);
    current_hash(s, 0, h0);
    int subj2[] = {1}, tg2[] = {2};
    import_facts(s, subj2, tg2, 1); /* version 3 supersedes 1 at commit */
    uint64_t c2 = make_commit(s, l12, 3);
    CHECK(state_of(s, 1, NULL) == VERSION_SUPERSEDED);
    CHECK(state_of(s, 3, NULL) == VERSION_COMMITTED);
    CHECK(overlay_has(s, 2));
    history_result r;
    CHECK(run_op(s, 1, c2, &r) == 0);
    CHECK(r.commits == 1 && r.new_head == c1 && r.reverted == 1 &&
          r.restored == 1);
    CHECK(head_of(s) == c1);
    char now[33];
    current_hash(s, 1, now);
    CHECK(!strcmp(now, h1));
    current_hash(s, 2, now);
    CHECK(!strcmp(now, h2));
    current_hash(s, 0, h0b);
    CHECK(!strcmp(h0b, h0));
    CHECK(!overlay_has(s, 2)); /* back to the base: out of the overlay */
    CHECK(overlay_has(s, 1));
    uint64_t cid = 0;
    CHECK(state_of(s, 3, &cid) == VERSION_REVERTED && cid == c2);
    CHECK(state_of(s, 1, &cid) == VERSION_COMMITTED && cid == c1);
    CHECK(state_of(s, 2, &cid) == VERSION_COMMITTED && cid == c1);
    /* the reverted commit is off the chain: neither reset to it nor
     * revert it again */
    CHECK(run_op(s, 0, c2, NULL) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "not on the current chain") != NULL);
    CHECK(run_op(s, 1, c2, NULL) == ERR_INVALID);
    CHECK(run_op(s, 1, 0, NULL) == ERR_INVALID);
    CHECK(head_of(s) == c1);
    /* revert the last one: the base, an empty overlay, all reverted */
    CHECK(run_op(s, 1, c1, &r) == 0 && r.new_head == 0);
    CHECK(!overlay_has(s, 0) && !overlay_has(s, 1) && !overlay_has(s, 2));
    CHECK(state_of(s, 1, NULL) == VERSION_REVERTED);
    store_close(s);
    remove_store();
}

TEST(twenty_sequential_commits_reset_exactly)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    enum { K = 20 };
    char hashes[K + 1][N_LAYERS][33];
    uint64_t ids[K + 1] = {0};
    for (int l = 0; l < N_LAYERS; l++) current_hash(s, l, hashes[0][l]);
    for (int k = 1; k <= K; k++) {
        int subj[] = {k % 7}, tg[] = {k};
        import_facts(s, subj, tg, 1);
        int layers[] = {k % N_LAYERS, (k + 1) % N_LAYERS, -1};
        ids[k] = make_commit(s, layers, 1 + (size_t)(k % 3));
        for (int l = 0; l < N_LAYERS; l++) current_hash(s, l, hashes[k][l]);
    }
    /* undo one at a time down to 15, then jump to 5, then to the base */
    history_result r;
    for (int k = K; k > 15; k--) {
        CHECK(run_op(s, 1, ids[k], &r) == 0);
        CHECK(r.commits == 1);
    }
    for (int l = 0; l < N_LAYERS; l++) {
        char h[33];
        current_hash(s, l, h);
        CHECK_MSG(!strcmp(h, hashes[15][l]), "layer %d after 15", l);
    }
    CHECK(run_op(s, 0, ids[5], &r) == 0 && r.commits == 10);
    for (int l = 0; l < N_LAYERS; l++) {
        char h[33];
        current_hash(s, l, h);
        CHECK_MSG(!strcmp(h, hashes[5][l]), "layer %d after 5", l);
    }
    /* the facts of commit 5 are back in effect, later ones reverted */
    store_txn *t = NULL;
    uint64_t *in = NULL;
    size_t n_in = 0;
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_facts_at(t, ids[5], &in, &n_in) == 0);
    CHECK(n_in == 5); /* subjects 1..5, one version each */
    store_version *com = NULL;
    size_t n_com = 0;
    CHECK(store_committed_list(t, 0, &com, &n_com) == 0);
    CHECK(n_com == n_in);
    for (size_t i = 0; i < n_com && i < n_in; i++)
        CHECK(com[i].id == in[i]);
    store_versions_free(com, n_com);
    free(in);
    store_txn_abort(t);
    CHECK(run_op(s, 0, 0, &r) == 0 && r.commits == 5 && head_of(s) == 0);
    for (int l = 0; l < N_LAYERS; l++) CHECK(!overlay_has(s, l));
    store_close(s);
    remove_store();
}

TEST(undoing_head_reads_nothing_older)
{
    /* Cost grows with the commits undone: ruin every older commit's diffs
     * and record-free data; reverting HEAD still works. */
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int l0[] = {0, -1};
    for (int k = 0; k < 6; k++) make_commit(s, l0, 1);
    store_txn *t = NULL;
    char name[64];
    layer_name(name, sizeof name, 0);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    for (uint64_t c = 1; c < 6; c++)
        CHECK(store_diff_put(t, c, name, "garbage", 7) == 0);
    CHECK(store_txn_commit(t) == 0);
    CHECK(run_op(s, 1, 6, NULL) == 0);
    CHECK(head_of(s) == 5);
    /* the next one needs commit 5's (ruined) diff: refused, unchanged */
    char before[33], after[33];
    current_hash(s, 0, before);
    CHECK(run_op(s, 1, 5, NULL) == ERR_STORE);
    CHECK(strstr(err_message(ERR_STORE), "commit 5") != NULL);
    current_hash(s, 0, after);
    CHECK(!strcmp(before, after) && head_of(s) == 5);
    store_close(s);
    remove_store();
}

TEST(tampered_tensors_are_refused)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int l0[] = {0, -1};
    make_commit(s, l0, 1);
    make_commit(s, l0, 1);
    store_txn *t = NULL;
    char name[64];
    layer_name(name, sizeof name, 0);
    float junk[ROWS * COLS] = {0};
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_tensor_put(t, name, junk, ROWS * COLS) == 0);
    CHECK(store_txn_commit(t) == 0);
    CHECK(run_op(s, 0, 0, NULL) == ERR_STORE);
    CHECK(strstr(err_message(ERR_STORE), "changed outside") != NULL);
    CHECK(head_of(s) == 2);
    store_close(s);
    remove_store();
}

TEST(reset_away_commits_are_reachable_by_redo)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int l01[] = {0, 1, -1};
    make_commit(s, l01, 2);
    make_commit(s, l01, 2);
    uint64_t c3 = make_commit(s, l01, 2);
    char h3[33];
    current_hash(s, 1, h3);
    CHECK(run_op(s, 0, 1, NULL) == 0);
    int l2[] = {2, 1, -1};
    uint64_t c4 = make_commit(s, l2, 1); /* a branch: 4 -> 1 */
    CHECK(c4 == 4);
    store_txn *t = NULL;
    history_ws *ws = NULL;
    float *d = NULL;
    size_t n = 0;
    char h[33], name[64];
    layer_name(name, sizeof name, 1);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_ws_open(&ws, t) == 0);
    CHECK(history_ws_goto(ws, c4, c3, NULL) == 0);
    CHECK(history_ws_tensor(ws, name, &d, &n, NULL) == 0);
    hash_hex(h, d, n * sizeof(float));
    CHECK(!strcmp(h, h3));
    history_ws_close(ws);
    store_txn_abort(t);
    CHECK(run_op(s, 0, c3, NULL) == ERR_INVALID);
    store_close(s);
    remove_store();
}

TEST(revert_of_an_older_commit_and_its_exact_undo)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int a[] = {1}, ta[] = {1};
    import_facts(s, a, ta, 1); /* v1 */
    int l0[] = {0, -1}, l01[] = {0, 1, -1};
    uint64_t c1 = make_commit(s, l0, 2);
    int b[] = {2}, tb[] = {1};
    import_facts(s, b, tb, 1); /* v2 */
    uint64_t c2 = make_commit(s, l01, 2);
    int c[] = {1}, tc[] = {5};
    import_facts(s, c, tc, 1); /* v3 supersedes v1 */
    uint64_t c3 = make_commit(s, l01, 3);
    (void)c1;
    /* tensors before/after of c2, and now */
    store_txn *t = NULL;
    history_ws *ws = NULL, *then = NULL;
    char name[64];
    layer_name(name, sizeof name, 0);
    float *cur = NULL, *aft = NULL;
    size_t n = 0;
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_ws_open(&ws, t) == 0 && history_ws_open(&then, t) == 0);
    CHECK(history_ws_tensor(ws, name, &cur, &n, NULL) == 0);
    CHECK(history_ws_goto(then, c3, c2, NULL) == 0);
    CHECK(history_ws_tensor(then, name, &aft, &n, NULL) == 0);
    float *cur0 = malloc(n * 4), *aft0 = malloc(n * 4), *bef0 = malloc(n * 4);
    memcpy(cur0, cur, n * 4);
    memcpy(aft0, aft, n * 4);
    json_t *rec = NULL;
    CHECK(history_record(t, c2, &rec) == 0);
    CHECK(history_ws_undo(then, c2, rec, NULL) == 0);
    json_decref(rec);
    CHECK(history_ws_tensor(then, name, &aft, &n, NULL) == 0);
    memcpy(bef0, aft, n * 4);
    history_ws_close(ws);
    history_ws_close(then);
    store_txn_abort(t);
    char hnow[33];
    current_hash(s, 0, hnow);

    history_result r;
    CHECK(run_op(s, 1, c2, &r) == 0);
    CHECK(r.new_commit == 4 && head_of(s) == 4 && r.reverted == 1);
    CHECK(state_of(s, 2, NULL) == VERSION_REVERTED);
    CHECK(state_of(s, 3, NULL) == VERSION_COMMITTED);
    /* new = current - (after - before), per weight */
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_ws_open(&ws, t) == 0);
    CHECK(history_ws_tensor(ws, name, &cur, &n, NULL) == 0);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = (float)((double)cur0[i] -
                             ((double)aft0[i] - (double)bef0[i]));
        bad += memcmp(&want, &cur[i], 4) != 0;
    }
    CHECK_MSG(bad == 0, "%zu weights differ", bad);
    CHECK(history_record(t, 4, &rec) == 0);
    CHECK(!strcmp(json_string_value(json_object_get(rec, "kind")), "revert"));
    CHECK(json_integer_value(json_object_get(rec, "reverts")) == (json_int_t)c2);
    CHECK(json_array_size(json_object_get(rec, "layers")) == 2);
    json_decref(rec);
    uint64_t *in = NULL;
    size_t n_in = 0;
    CHECK(history_facts_at(t, 4, &in, &n_in) == 0);
    CHECK(n_in == 1 && in[0] == 3); /* s2 gone, s1 at v3 */
    free(in);
    history_ws_close(ws);
    store_txn_abort(t);
    /* twice is refused; so is reverting the revert commit when not HEAD */
    CHECK(run_op(s, 1, c2, NULL) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "already reverted by commit 4"));
    /* reverting c3 (supersedes v1 of c1, still committed) restores v1 */
    CHECK(run_op(s, 1, c3, &r) == 0 && r.new_commit == 5);
    CHECK(state_of(s, 1, NULL) == VERSION_COMMITTED);
    CHECK(state_of(s, 3, NULL) == VERSION_REVERTED);
    CHECK(run_op(s, 1, 4, NULL) == ERR_INVALID);
    /* undo both revert commits exactly: reset to c3 */
    CHECK(run_op(s, 0, c3, &r) == 0 && r.commits == 2);
    char hback[33];
    current_hash(s, 0, hback);
    CHECK(!strcmp(hback, hnow));
    CHECK(state_of(s, 1, NULL) == VERSION_SUPERSEDED);
    CHECK(state_of(s, 2, NULL) == VERSION_COMMITTED);
    CHECK(state_of(s, 3, NULL) == VERSION_COMMITTED);
    free(cur0);
    free(aft0);
    free(bef0);
    store_close(s);
    remove_store();
}

/* fsck's problems as one string, for matching. */
static int fsck_run(store *s, char *out, size_t size)
{
    store_txn *t = NULL;
    json_t *p = json_array();
    history_fsck_counts c;
    if (store_txn_begin(s, &t, 0)) abort();
    int rc = history_fsck(t, p, &c);
    store_txn_abort(t);
    if (rc) {
        json_decref(p);
        return -1;
    }
    size_t i, len = 0;
    json_t *v;
    out[0] = 0;
    json_array_foreach(p, i, v) {
        len += snprintf(out + len, len < size ? size - len : 0, "%s\n",
                        json_string_value(v));
        if (len >= size) len = size - 1;
    }
    int n = (int)json_array_size(p);
    json_decref(p);
    return n;
}

TEST(fsck_finds_what_was_damaged)
{
    make_store();
    store *s = NULL;
    char out[8192];
    CHECK(store_open(&s, store_path) == 0);
    CHECK(fsck_run(s, out, sizeof out) == 0);
    int subj[] = {1, 2}, tg[] = {1, 1};
    import_facts(s, subj, tg, 2);
    int l01[] = {0, 1, -1}, l2[] = {2, -1};
    make_commit(s, l01, 2);
    make_commit(s, l2, 1);
    make_commit(s, l01, 1);
    CHECK(run_op(s, 1, 2, NULL) == 0); /* a revert commit 4 */
    CHECK_MSG(fsck_run(s, out, sizeof out) == 0, "%s", out);
    store_txn *t = NULL;
    char name[64];
    /* an overlay tensor changed outside stamp */
    layer_name(name, sizeof name, 1);
    const float *d = NULL;
    size_t n = 0;
    float *copy = malloc(ROWS * COLS * sizeof *copy);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_tensor_get(t, name, &d, &n) == 0);
    memcpy(copy, d, n * sizeof *copy);
    copy[5] += 1e-3f;
    CHECK(store_tensor_put(t, name, copy, n) == 0);
    CHECK(store_txn_commit(t) == 0);
    CHECK(fsck_run(s, out, sizeof out) >= 2);
    CHECK_MSG(strstr(out, "overlay tensor 'h.1.mlp.c_proj.weight' hashes"),
              "%s", out);
    CHECK_MSG(strstr(out, "undoing the chain from HEAD fails at commit 3"),
              "%s", out);
    free(copy);
    store_close(s);
    remove_store();

    /* a damaged diff of an old commit and a wrong fact state */
    make_store();
    CHECK(store_open(&s, store_path) == 0);
    import_facts(s, subj, tg, 2);
    make_commit(s, l01, 2);
    make_commit(s, l01, 1);
    CHECK(fsck_run(s, out, sizeof out) == 0);
    layer_name(name, sizeof name, 0);
    const void *blob = NULL;
    size_t len = 0;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_diff_get(t, 1, name, &blob, &len) == 0);
    unsigned char *b = malloc(len);
    memcpy(b, blob, len);
    b[len - 1] ^= 0x40;
    CHECK(store_diff_put(t, 1, name, b, len) == 0);
    CHECK(store_version_set_state(t, 1, VERSION_REVERTED, 1) == 0);
    CHECK(store_txn_commit(t) == 0);
    free(b);
    CHECK(fsck_run(s, out, sizeof out) >= 3);
    CHECK_MSG(strstr(out, "commit 1's diff of 'h.0.mlp.c_proj.weight' is "
                     "damaged"), "%s", out);
    CHECK_MSG(strstr(out, "version 1 ('s1') of commit 1 is in state "
                     "reverted"), "%s", out);
    /* the base model file changed */
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, -3, SEEK_END);
        fputc(0x55, f);
        fclose(f);
    }
    CHECK(fsck_run(s, out, sizeof out) >= 4);
    CHECK_MSG(strstr(out, "changed behind the store's back"), "%s", out);
    store_close(s);
    remove_store();
}

/* history_chain and history_fate: the chain as log lists it, each
 * commit with the revert commit that undid it, and the commits off it. */
TEST(what_became_of_each_commit)
{
    make_store();
    store *s = NULL;
    CHECK(store_open(&s, store_path) == 0);
    int subj[] = {1, 2, 3}, tg[] = {1, 1, 1};
    import_facts(s, subj, tg, 1);
    int l0[] = {0, -1};
    uint64_t c1 = make_commit(s, l0, 1);
    import_facts(s, subj + 1, tg, 1);
    uint64_t c2 = make_commit(s, l0, 1);
    CHECK(run_op(s, 1, c2, NULL) == 0); /* HEAD, exactly: off the chain */
    import_facts(s, subj + 2, tg, 1);
    uint64_t c3 = make_commit(s, l0, 1);
    history_result r;
    CHECK(run_op(s, 1, c1, &r) == 0 && r.new_commit); /* a revert commit */
    uint64_t c4 = r.new_commit;
    store_txn *t = NULL;
    history_link *chain = NULL;
    size_t n = 0, off = 9;
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_chain(t, &chain, &n, &off) == 0);
    CHECK(n == 3 && off == 1);
    CHECK(n == 3 && chain[0].id == c4 && chain[0].reverts == c1 &&
          !chain[0].reverted_by);
    CHECK(n == 3 && chain[1].id == c3 && !chain[1].reverts &&
          !chain[1].reverted_by);
    CHECK(n == 3 && chain[2].id == c1 && chain[2].reverted_by == c4);
    free(chain);
    int on = -1;
    uint64_t by = 99;
    CHECK(history_fate(t, c1, &on, &by) == 0 && on == 1 && by == c4);
    CHECK(history_fate(t, c2, &on, &by) == 0 && on == 0 && by == 0);
    CHECK(history_fate(t, c3, &on, &by) == 0 && on == 1 && by == 0);
    CHECK(history_fate(t, c4, &on, &by) == 0 && on == 1 && by == 0);
    CHECK(history_fate(t, 77, &on, &by) == ERR_NOTFOUND);
    store_txn_abort(t);
    /* undoing the revert commit exactly puts commit 1 back in effect */
    CHECK(run_op(s, 0, c3, NULL) == 0);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_chain(t, &chain, &n, &off) == 0 && n == 2 && off == 2);
    CHECK(n == 2 && !chain[0].reverted_by && !chain[1].reverted_by);
    free(chain);
    CHECK(history_fate(t, c1, &on, &by) == 0 && on == 1 && by == 0);
    CHECK(history_fate(t, c4, &on, &by) == 0 && on == 0 && by == 0);
    store_txn_abort(t);
    CHECK(run_op(s, 0, 0, NULL) == 0);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(history_chain(t, &chain, &n, &off) == 0 && n == 0 && !chain &&
          off == 4);
    store_txn_abort(t);
    store_close(s);
    remove_store();
}

int main(void)
{
    RUN(names_and_the_chain);
    RUN(revert_head_is_exact_and_restores_fact_states);
    RUN(twenty_sequential_commits_reset_exactly);
    RUN(undoing_head_reads_nothing_older);
    RUN(tampered_tensors_are_refused);
    RUN(reset_away_commits_are_reachable_by_redo);
    RUN(revert_of_an_older_commit_and_its_exact_undo);
    RUN(fsck_finds_what_was_damaged);
    RUN(what_became_of_each_commit);
    return harness_summary();
}
