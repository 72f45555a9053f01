/* test_commit: the commit engine (repo/commit.h) called as a library,
 * without the command line, on a store built here on the tiny world
 * model ($WORLD_TINY, else $BUILD/world-tiny, else build/world-tiny:
 * `make test` trains it first): an empty queue is ERR_EMPTY and changes
 * nothing; a bad hyperparameter, and a first round that moves the target
 * vectors further away at every share (STAMP_TEST_WORSE_ROUND=1 with no
 * halvings), fail and leave the store as it was, key statistics
 * included; a commit changes the store (HEAD, the edited tensors and
 * their diffs, the fact states, the queue) and returns the record it
 * stored, its figures and its progress; ROME commits one fact in one
 * layer. */
#include "base/errors.h"
#include "base/hash.h"
#include "facts/ingest.h"
#include "model/safetensors.h"
#include "repo/commit.h"
#include "store/store.h"
#include "../harness.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_ID "test-model"

static char tmpdir[64], store_path[128], world[PATH_MAX];
static store *st;
static fact *world_facts;
static size_t n_world_facts;

/* ---- the fixture ----------------------------------------------------- */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A store on the world model, as `stamp init` makes one (its meta: the
 * model directory, config, a hash per tensor, a model id). */
static int make_store(void)
{
    char path[PATH_MAX + 32], *config = NULL, *hashes = NULL;
    st_file *f = NULL;
    json_t *obj = json_object();
    int rc;
    snprintf(path, sizeof path, "%s/model.safetensors", world);
    if ((rc = safetensors_open(&f, path))) goto out;
    for (size_t i = 0; i < safetensors_count(f); i++) {
        const st_tensor *t = safetensors_at(f, i);
        char hex[33];
        hash_hex(hex, t->data, t->nbytes);
        json_object_set_new(obj, t->name, json_string(hex));
    }
    hashes = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    snprintf(path, sizeof path, "%s/config.json", world);
    config = read_text(path);
    if (!hashes || !config) { rc = ERR_IO; goto out; }
    const char *keys[] = {"format_version", "model_dir", "config",
                          "model_tensor_hashes", "model_id"};
    const char *vals[] = {"1", world, config, hashes, MODEL_ID};
    if ((rc = store_create(store_path, keys, vals, 5))) goto out;
    rc = store_open(&st, store_path);
out:
    safetensors_close(f);
    json_decref(obj);
    free(hashes);
    free(config);
    return rc;
}

/* Queues the first fact of each of the subjects first .. first+n-1 of
 * the world (one edit per subject, as the command tests do). */
static int queue_facts(size_t first, size_t n)
{
    store_txn *t = NULL;
    uint64_t imp = 0;
    size_t subject = 0, queued = 0;
    int rc = store_txn_begin(st, &t, 1);
    if (!rc) rc = store_import_begin(t, &imp);
    for (size_t i = 0; !rc && i < n_world_facts && queued < n; i++) {
        size_t k = 0;
        while (k < i && strcmp(world_facts[k].subject, world_facts[i].subject))
            k++;
        if (k < i) continue; /* not the subject's first fact */
        if (subject++ < first) continue;
        import_action a;
        rc = store_fact_add(t, &world_facts[i], imp, &a, NULL);
        queued++;
    }
    if (!rc) return store_txn_commit(t);
    store_txn_abort(t);
    return rc;
}

static int setup(void)
{
    const char *w = getenv("WORLD_TINY"), *build = getenv("BUILD");
    char path[PATH_MAX + 32];
    if (w) snprintf(world, sizeof world, "%s", w);
    else snprintf(world, sizeof world, "%s/world-tiny", build ? build : "build");
    snprintf(path, sizeof path, "%s/facts.csv", world);
    char *real = realpath(world, NULL);
    if (!real || access(path, R_OK)) {
        fprintf(stderr, "test_commit: no world model in '%s' (make "
                        "world-tiny, or set WORLD_TINY)\n", world);
        free(real);
        return 1;
    }
    snprintf(world, sizeof world, "%s", real);
    free(real);
    ingest_result res = {0};
    if (ingest_read(path, INGEST_CSV, &(ingest_options){0}, &res)) return 1;
    world_facts = res.facts; /* kept: the facts point into it */
    n_world_facts = res.n_facts;
    res.facts = NULL;
    res.n_facts = 0;
    ingest_result_free(&res);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/stamp-test-commit.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    snprintf(store_path, sizeof store_path, "%s/store", tmpdir);
    return make_store();
}

/* What a commit may change, as text: HEAD, the commits, the queue, the
 * edited tensors (by hash), the fact states and the key statistics. */
static char *store_state(void)
{
    store_txn *t = NULL;
    uint64_t head = 0, *ids = NULL;
    size_t n_ids = 0, n_q = 0, n_names = 0, n_c = 0;
    store_version *q = NULL, *c = NULL;
    char **names = NULL, *text = NULL;
    json_t *o = json_object(), *a;
    if (store_txn_begin(st, &t, 0) || store_head(t, &head) ||
        store_commit_ids(t, &ids, &n_ids) ||
        store_queue_list(t, 0, &q, &n_q) ||
        store_committed_list(t, 0, &c, &n_c) ||
        store_tensor_names(t, &names, &n_names))
        goto out;
    json_object_set_new(o, "head", json_integer((json_int_t)head));
    json_object_set_new(o, "commits", a = json_array());
    for (size_t i = 0; i < n_ids; i++)
        json_array_append_new(a, json_integer((json_int_t)ids[i]));
    json_object_set_new(o, "queue", a = json_array());
    for (size_t i = 0; i < n_q; i++)
        json_array_append_new(a, json_integer((json_int_t)q[i].id));
    json_object_set_new(o, "committed", a = json_array());
    for (size_t i = 0; i < n_c; i++)
        json_array_append_new(a, json_integer((json_int_t)c[i].id));
    json_object_set_new(o, "tensors", a = json_object());
    for (size_t i = 0; i < n_names; i++) {
        const float *d = NULL;
        size_t n = 0;
        char hex[33] = "missing";
        if (!store_tensor_get(t, names[i], &d, &n))
            hash_hex(hex, d, n * sizeof(float));
        json_object_set_new(a, names[i], json_string(hex));
    }
    json_object_set_new(o, "stats", a = json_array());
    for (size_t l = 0; l < 6; l++) {
        const void *d = NULL;
        size_t n = 0;
        json_array_append_new(a, json_boolean(
            store_stats_get(t, MODEL_ID, l, &d, &n) == 0));
    }
    err_clear();
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
    store_txn_abort(t);
    free(ids);
    store_versions_free(q, n_q);
    store_versions_free(c, n_c);
    store_strings_free(names, n_names);
    json_decref(o);
    return text;
}

/* ---- the events ------------------------------------------------------ */

typedef struct {
    size_t progress, phase_ends, warnings, notes;
    char last_label[96];
} event_counts;

static void count_event(void *ctx, const commit_event *e)
{
    event_counts *c = ctx;
    switch (e->kind) {
    case COMMIT_EVENT_PROGRESS:
        c->progress++;
        snprintf(c->last_label, sizeof c->last_label, "%s", e->label);
        break;
    case COMMIT_EVENT_PHASE_END: c->phase_ends++; break;
    case COMMIT_EVENT_WARNING: c->warnings++; break;
    case COMMIT_EVENT_NOTE: c->notes++; break;
    }
}

/* ---- the tests ------------------------------------------------------- */

TEST(empty_queue_is_nothing_to_commit)
{
    char *before = store_state();
    commit_options o = {.threads = 2};
    commit_result r;
    int rc = commit_run(st, &o, NULL, NULL, &r);
    CHECK(rc == ERR_EMPTY);
    CHECK(!strcmp(err_message(rc), "nothing to commit: the queue is empty"));
    CHECK(r.record == NULL && r.id == 0);
    commit_result_free(&r);
    char *after = store_state();
    CHECK(before && after && !strcmp(before, after));
    free(before);
    free(after);
}

TEST(bad_hyperparameters_change_nothing)
{
    char *before = store_state();
    const char *bad[][1] = {{"nope=1"}, {"rounds=-1"}, {"joint_layers=2"},
                            {"mom2_update_weight"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        commit_options o = {.threads = 2, .sets = bad[i], .n_sets = 1};
        commit_result r;
        int rc = commit_run(st, &o, NULL, NULL, &r);
        CHECK_MSG(rc == ERR_INVALID, "--set %s: %d", bad[i][0], rc);
        commit_result_free(&r);
    }
    commit_options o = {.threads = 2, .layers = "99"};
    commit_result r;
    CHECK(commit_run(st, &o, NULL, NULL, &r) == ERR_INVALID);
    char *after = store_state();
    CHECK(before && after && !strcmp(before, after));
    free(before);
    free(after);
}

/* The first round aims worse (fault injection) and no share is tried:
 * the commit fails after the key statistics, the target vectors and the
 * update were computed; none of it reaches the store. */
TEST(first_round_that_aims_worse_changes_nothing)
{
    char *before = store_state();
    const char *sets[] = {"round_halvings=0"};
    commit_options o = {.threads = 2, .sets = sets, .n_sets = 1,
                        .no_scores = 1};
    commit_result r;
    event_counts ev = {0};
    setenv("STAMP_TEST_WORSE_ROUND", "1", 1);
    int rc = commit_run(st, &o, count_event, &ev, &r);
    unsetenv("STAMP_TEST_WORSE_ROUND");
    CHECK(rc == ERR_NUMERIC);
    CHECK(strstr(err_message(rc), "moved the target vectors further away"));
    CHECK(ev.phase_ends > 0); /* it got as far as the solve */
    commit_result_free(&r);
    char *after = store_state();
    CHECK(before && after && !strcmp(before, after));
    CHECK(after && strstr(after, "\"queue\":[1,2,3,4]") &&
          strstr(after, "\"stats\":[false,false,false,false,false,false]"));
    free(before);
    free(after);
}

TEST(commit_changes_the_store_and_returns_its_record)
{
    char *before = store_state();
    commit_options o = {.message = "through the library", .threads = 2};
    commit_result r;
    event_counts ev = {0};
    int rc = commit_run(st, &o, count_event, &ev, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) { free(before); return; }
    CHECK(r.id == 1 && r.parent == 0 && r.method == COMMIT_MEMIT);
    CHECK(r.n_facts == 4 && r.n_failed == 0);
    CHECK(r.stats_computed && r.scored && r.factored);
    CHECK(r.rounds_done >= 1 && r.rounds_done <= r.n_rounds);
    CHECK(r.n_rounds == r.h.rounds);
    CHECK(r.rounds[0].z_likely <= 4 && r.rounds[0].step == 1);
    CHECK(r.after.es > r.before.es);
    CHECK(r.h.n_layers >= 1 && r.layers[0].leverage > 0);
    CHECK(r.timings.total > 0 && r.timings.z > 0 && r.timings.solve > 0);
    CHECK(r.timings.total >= r.timings.z + r.timings.solve);
    CHECK(ev.progress > 0 && ev.phase_ends > 0 && ev.warnings == 0);

    /* the record returned is the record stored */
    json_t *rec = r.record;
    CHECK(json_integer_value(json_object_get(rec, "id")) == 1);
    CHECK(!strcmp(json_string_value(json_object_get(rec, "message")),
                  "through the library"));
    CHECK(!strcmp(json_string_value(json_object_get(rec, "method")), "memit"));
    CHECK(json_array_size(json_object_get(rec, "versions")) == 4);
    CHECK(json_array_size(json_object_get(rec, "layers")) == r.h.n_layers);
    CHECK(json_array_size(json_object_get(rec, "rounds")) == r.rounds_done);
    CHECK(json_object_get(json_object_get(rec, "scores"), "after") != NULL);
    store_txn *t = NULL;
    char *text = NULL;
    uint64_t head = 0;
    size_t n_q = 0;
    store_version *q = NULL;
    CHECK(store_txn_begin(st, &t, 0) == 0);
    CHECK(store_commit_get(t, 1, &text) == 0);
    json_t *stored = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(stored && json_equal(stored, rec));
    CHECK(store_head(t, &head) == 0 && head == 1);
    CHECK(store_queue_list(t, 0, &q, &n_q) == 0 && n_q == 0);
    /* each edited tensor is in the overlay, changed, with its diff */
    json_t *tensors = json_object_get(rec, "tensors");
    const char *name;
    json_t *th;
    json_object_foreach(tensors, name, th) {
        const float *d = NULL;
        const void *blob = NULL;
        size_t n = 0, len = 0;
        char hex[33] = "";
        CHECK(store_tensor_get(t, name, &d, &n) == 0);
        if (d) hash_hex(hex, d, n * sizeof(float));
        CHECK(!strcmp(hex, json_string_value(json_object_get(th, "after"))));
        CHECK(strcmp(hex, json_string_value(json_object_get(th, "before"))));
        CHECK(store_diff_get(t, 1, name, &blob, &len) == 0 && len > 0);
    }
    CHECK(json_object_size(tensors) == r.h.n_layers);
    /* the facts are committed in it */
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(rec, "versions"), i, v) {
        store_version sv = {0};
        CHECK(store_version_get(t, (uint64_t)json_integer_value(v), &sv) == 0);
        CHECK(sv.state == VERSION_COMMITTED && sv.commit_id == 1);
        store_version_free(&sv);
    }
    store_txn_abort(t);
    json_decref(stored);
    free(text);
    store_versions_free(q, n_q);
    commit_result_free(&r);
    CHECK(r.record == NULL && r.rounds == NULL);
    char *after = store_state();
    CHECK(before && after && strcmp(before, after));
    free(before);
    free(after);
}

TEST(rome_commits_one_fact_in_one_layer)
{
    commit_options o = {.method = COMMIT_ROME, .threads = 2, .no_scores = 1};
    commit_result r;
    CHECK(queue_facts(4, 2) == 0);
    int rc = commit_run(st, &o, NULL, NULL, &r);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (rc) return;
    CHECK(r.id == 2 && r.parent == 1 && r.method == COMMIT_ROME);
    CHECK(r.n_facts == 1 && r.h.n_layers == 1 && r.n_rounds == 1);
    CHECK(!r.scored && !r.factored && r.n_kept == 0);
    CHECK(!strcmp(json_string_value(json_object_get(r.record, "method")),
                  "rome"));
    CHECK(json_object_get(r.record, "scores") == NULL);
    CHECK(!strcmp(commit_method_name(r.method), "rome"));
    commit_result_free(&r);
    /* the other fact stays queued */
    store_txn *t = NULL;
    size_t n = 0;
    CHECK(store_txn_begin(st, &t, 0) == 0 && store_queue_count(t, &n) == 0);
    CHECK(n == 1);
    store_txn_abort(t);
}

TEST(result_free_accepts_null_and_empty)
{
    commit_result r = {0};
    commit_result_free(NULL);
    commit_result_free(&r);
    commit_result_free(&r);
    CHECK(r.record == NULL);
}

int main(void)
{
    if (setup()) {
        fprintf(stderr, "test_commit: setup failed: %s\n", err_message(-1));
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(empty_queue_is_nothing_to_commit);
    if (queue_facts(0, 4)) {
        fprintf(stderr, "test_commit: cannot queue facts\n");
        return 1;
    }
    RUN(bad_hyperparameters_change_nothing);
    RUN(first_round_that_aims_worse_changes_nothing);
    RUN(commit_changes_the_store_and_returns_its_record);
    RUN(rome_commits_one_fact_in_one_layer);
    RUN(result_free_accepts_null_and_empty);
    store_close(st);
    for (size_t i = 0; i < n_world_facts; i++) fact_free(&world_facts[i]);
    free(world_facts);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_summary();
}
