/* test_store: the LMDB store (store.h) through its API: creation and
 * refusal, meta, versions of facts (queued / unchanged / superseded),
 * the queue, subject histories, states, commits and HEAD, diffs,
 * tensors, statistics, long keys, atomicity (abort, a full map), the
 * writer lock, snapshots, and corrupt records. Each test works in its
 * own temporary directory. */
#include "base/errors.h"
#include "facts/fact.h"
#include "base/hash.h"
#include "store/store.h"
#include "../harness.h"

#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp_root[256];

static void make_root(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmp_root, name);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fact with borrowed strings (never freed; store_fact_add copies). */
static fact mk(const char *subject, const char *prompt, const char *target,
               size_t line)
{
    fact f = {0};
    f.subject = (char *)subject;
    f.prompt = (char *)prompt;
    f.relation = "";
    f.target_new = (char *)target;
    f.target_true = " French";
    f.source_file = "t.csv";
    f.source_line = line;
    return f;
}

static store *new_store(const char *name)
{
    char dir[512];
    store *s = NULL;
    const char *keys[] = {"format_version", "model_dir"};
    const char *vals[] = {"1", "/nowhere"};
    path_of(dir, sizeof dir, name);
    int rc = store_create(dir, keys, vals, 2);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    rc = store_open(&s, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    return s;
}

TEST(create_open_meta)
{
    char dir[512], *v = NULL;
    store *s = new_store("a");
    store_txn *t;
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(store_meta_get(t, "model_dir", &v) == 0 && !strcmp(v, "/nowhere"));
    free(v);
    CHECK(store_meta_get(t, "nope", &v) == ERR_NOTFOUND && v == NULL);
    CHECK(strstr(err_message(ERR_NOTFOUND), "'nope'") != NULL);
    uint64_t head = 7;
    CHECK(store_head(t, &head) == 0 && head == 0);
    size_t n = 9;
    CHECK(store_queue_count(t, &n) == 0 && n == 0);
    /* writes need a write transaction */
    CHECK(store_meta_put(t, "x", "y") == ERR_INVALID);
    store_txn_commit(t);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_meta_put(t, "x", "y") == 0);
    CHECK(store_txn_commit(t) == 0);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(store_meta_get(t, "x", &v) == 0 && !strcmp(v, "y"));
    free(v);
    store_txn_abort(t);
    path_of(dir, sizeof dir, "a");
    CHECK(!strcmp(store_dir(s), dir));
    store_close(s);
    store_close(NULL);
    store_txn_abort(NULL);
}

TEST(create_refuses_and_leaves_nothing)
{
    char dir[512], file[600];
    const char *keys[] = {"format_version"}, *vals[] = {"1"};
    store *s = new_store("b");
    store_close(s);
    path_of(dir, sizeof dir, "b");
    int rc = store_create(dir, keys, vals, 1);
    CHECK(rc == ERR_EXISTS);
    CHECK(strstr(err_message(rc), "already exists") != NULL);
    /* a non-empty directory that is not a store */
    path_of(dir, sizeof dir, "c");
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/keep.txt", dir);
    FILE *fp = fopen(file, "w");
    fputs("x", fp);
    fclose(fp);
    rc = store_create(dir, keys, vals, 1);
    CHECK(rc == ERR_EXISTS && strstr(err_message(rc), "not an empty") != 0);
    CHECK(exists(file));
    /* an empty directory is fine */
    path_of(dir, sizeof dir, "d");
    mkdir(dir, 0755);
    CHECK(store_create(dir, keys, vals, 1) == 0);
    /* a failure half way (bad meta key) leaves neither store nor temp */
    const char *bad_keys[] = {"format_version", ""};
    const char *bad_vals[] = {"1", "v"};
    path_of(dir, sizeof dir, "e");
    CHECK(store_create(dir, bad_keys, bad_vals, 2) == ERR_INVALID);
    CHECK(!exists(dir));
    snprintf(file, sizeof file, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(!exists(file));
    /* a parent that does not exist */
    path_of(dir, sizeof dir, "no/such/dir");
    CHECK(store_create(dir, keys, vals, 1) == ERR_IO);
    /* opening what is not there */
    path_of(dir, sizeof dir, "missing");
    rc = store_open(&s, dir);
    CHECK(rc == ERR_NOTFOUND && s == NULL);
    CHECK(strstr(err_message(rc), dir) != NULL);
    /* the store's own format, whatever the caller passes; an unknown
     * format version is refused */
    const char *v9[] = {"9"};
    store_txn *t;
    path_of(dir, sizeof dir, "v9");
    CHECK(store_create(dir, keys, v9, 1) == 0);
    CHECK(store_open(&s, dir) == 0);
    CHECK(store_format(s) == 2);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_meta_put(t, "format_version", "9") == 0);
    CHECK(store_txn_commit(t) == 0);
    store_close(s);
    rc = store_open(&s, dir);
    CHECK(rc == ERR_STORE && strstr(err_message(rc), "format version '9'"));
}

TEST(versions_queue_and_history)
{
    store *s = new_store("f");
    store_txn *t;
    uint64_t imp, id1, id2, id3, id4, id;
    import_action a;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0 && imp == 1);
    fact f1 = mk("Danielle Darrieux", "The mother tongue of {} is",
                 " English", 2);
    fact f2 = mk("Danielle Darrieux", "{} was born in", " Paris", 3);
    fact f3 = mk("Toko Yasuda", "{}, the", " piano", 4);
    CHECK(store_fact_add(t, &f1, imp, &a, &id1) == 0 && a == IMPORT_QUEUED);
    CHECK(store_fact_add(t, &f2, imp, &a, &id2) == 0 && a == IMPORT_QUEUED);
    CHECK(store_fact_add(t, &f3, imp, &a, &id3) == 0 && a == IMPORT_QUEUED);
    CHECK(id1 == 1 && id2 == 2 && id3 == 3);
    /* same target: nothing new */
    CHECK(store_fact_add(t, &f1, imp, &a, &id) == 0 &&
          a == IMPORT_UNCHANGED && id == id1);
    CHECK(store_txn_commit(t) == 0);

    /* a second import: a new target supersedes the queued version */
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0 && imp == 2);
    fact f1b = mk("Danielle Darrieux", "The mother tongue of {} is",
                  " German", 9);
    CHECK(store_fact_add(t, &f1b, imp, &a, &id4) == 0 &&
          a == IMPORT_SUPERSEDED && id4 == 4);
    CHECK(store_txn_commit(t) == 0);

    CHECK(store_txn_begin(s, &t, 0) == 0);
    store_version *q = NULL, *h = NULL;
    size_t n = 0, nh = 0;
    CHECK(store_queue_count(t, &n) == 0 && n == 3);
    CHECK(store_queue_list(t, 0, &q, &n) == 0 && n == 3);
    CHECK(q[0].id == 2 && q[1].id == 3 && q[2].id == 4);
    CHECK(!strcmp(q[2].f.target_new, " German") && q[2].number == 2);
    CHECK(q[2].import_id == 2 && q[2].f.source_line == 9);
    CHECK(!strcmp(q[2].f.source_file, "t.csv"));
    CHECK(!strcmp(q[2].f.target_true, " French"));
    store_versions_free(q, n);
    CHECK(store_queue_list(t, 2, &q, &n) == 0 && n == 2 && q[1].id == 3);
    store_versions_free(q, n);
    store_version v;
    CHECK(store_version_get(t, 1, &v) == 0 && v.state == VERSION_SUPERSEDED);
    store_version_free(&v);
    CHECK(store_version_get(t, 99, &v) == ERR_NOTFOUND);
    CHECK(store_subject_history(t, "Danielle Darrieux", &h, &nh) == 0);
    CHECK(nh == 3 && h[0].id == 1 && h[1].id == 2 && h[2].id == 4);
    CHECK(h[0].state == VERSION_SUPERSEDED && h[2].state == VERSION_QUEUED);
    store_versions_free(h, nh);
    /* a subject that is a prefix of another is its own subject */
    CHECK(store_subject_history(t, "Danielle", &h, &nh) == 0 && nh == 0);
    store_versions_free(h, nh);
    store_txn_abort(t);
    store_close(s);
}

TEST(states_commits_and_head)
{
    store *s = new_store("g");
    store_txn *t;
    uint64_t imp, id, cid;
    import_action a;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0);
    fact f = mk("Wellington", "The twin city of {} is", " Sheffield", 2);
    CHECK(store_fact_add(t, &f, imp, &a, &id) == 0);
    CHECK(store_commit_next_id(t, &cid) == 0 && cid == 1);
    CHECK(store_commit_put(t, cid, "{\"id\": 1, \"parent\": 0}") == 0);
    CHECK(store_commit_put(t, 0, "{}") == ERR_INVALID);
    CHECK(store_version_set_state(t, id, VERSION_COMMITTED, cid) == 0);
    CHECK(store_head_set(t, cid) == 0);
    CHECK(store_head_set(t, 5) == ERR_NOTFOUND);
    CHECK(store_txn_commit(t) == 0);

    CHECK(store_txn_begin(s, &t, 0) == 0);
    uint64_t head, *ids;
    size_t n;
    char *json;
    store_version *c;
    CHECK(store_head(t, &head) == 0 && head == 1);
    CHECK(store_commit_get(t, 1, &json) == 0 &&
          !strcmp(json, "{\"id\": 1, \"parent\": 0}"));
    free(json);
    CHECK(store_commit_get(t, 2, &json) == ERR_NOTFOUND);
    CHECK(store_commit_ids(t, &ids, &n) == 0 && n == 1 && ids[0] == 1);
    free(ids);
    CHECK(store_queue_count(t, &n) == 0 && n == 0);
    CHECK(store_committed_list(t, 0, &c, &n) == 0 && n == 1);
    CHECK(c[0].commit_id == 1 && c[0].state == VERSION_COMMITTED);
    store_versions_free(c, n);
    CHECK(store_committed_list(t, 2, &c, &n) == 0 && n == 0);
    store_versions_free(c, n);
    store_txn_abort(t);

    /* the committed target again: unchanged; another: a new version that
     * supersedes nothing in the queue */
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_fact_add(t, &f, imp, &a, &id) == 0 && a == IMPORT_UNCHANGED);
    fact g = mk("Wellington", "The twin city of {} is", " Leeds", 3);
    CHECK(store_fact_add(t, &g, imp, &a, &id) == 0 && a == IMPORT_QUEUED);
    /* revert: the committed version goes back to the queue */
    CHECK(store_version_set_state(t, 1, VERSION_QUEUED, 0) == 0);
    CHECK(store_queue_count(t, &n) == 0 && n == 2);
    CHECK(store_version_set_state(t, 1, VERSION_REVERTED, 1) == 0);
    CHECK(store_queue_count(t, &n) == 0 && n == 1);
    CHECK(store_version_set_state(t, 42, VERSION_REVERTED, 1) ==
          ERR_NOTFOUND);
    CHECK(store_commit_next_id(t, &cid) == 0 && cid == 2);
    store_txn_abort(t);
    store_close(s);
}

TEST(diffs_tensors_stats)
{
    store *s = new_store("h");
    store_txn *t;
    float w[5] = {1, 2, 3, 4.5f, -1};
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_diff_put(t, 3, "h.1.mlp.c_proj.weight", "abc", 3) == 0);
    CHECK(store_diff_put(t, 3, "h.0.mlp.c_proj.weight", "de", 2) == 0);
    CHECK(store_diff_put(t, 4, "h.0.mlp.c_proj.weight", "f", 1) == 0);
    CHECK(store_tensor_put(t, "h.1.mlp.c_proj.weight", w, 5) == 0);
    CHECK(store_tensor_put(t, "x", w, 1) == 0);
    CHECK(store_stats_put(t, "abc", 2, "cov", 3) == 0);
    CHECK(store_tensor_put(t, "", w, 1) == ERR_INVALID);
    CHECK(store_txn_commit(t) == 0);

    CHECK(store_txn_begin(s, &t, 0) == 0);
    char **names;
    size_t n, numel, len;
    const void *data;
    const float *fd;
    CHECK(store_diff_tensors(t, 3, &names, &n) == 0 && n == 2);
    CHECK(!strcmp(names[0], "h.0.mlp.c_proj.weight"));
    CHECK(!strcmp(names[1], "h.1.mlp.c_proj.weight"));
    store_strings_free(names, n);
    CHECK(store_diff_tensors(t, 5, &names, &n) == 0 && n == 0);
    store_strings_free(names, n);
    CHECK(store_diff_get(t, 3, "h.1.mlp.c_proj.weight", &data, &len) == 0);
    CHECK(len == 3 && !memcmp(data, "abc", 3));
    CHECK(store_diff_get(t, 4, "h.1.mlp.c_proj.weight", &data, &len) ==
          ERR_NOTFOUND);
    CHECK(store_tensor_get(t, "h.1.mlp.c_proj.weight", &fd, &numel) == 0);
    CHECK(numel == 5 && !memcmp(fd, w, sizeof w));
    CHECK(((uintptr_t)fd % sizeof(float)) == 0);
    CHECK(store_tensor_get(t, "x", &fd, &numel) == 0 && numel == 1 &&
          fd[0] == 1.0f);
    CHECK(store_tensor_get(t, "nope", &fd, &numel) == ERR_NOTFOUND);
    CHECK(store_tensor_names(t, &names, &n) == 0 && n == 2);
    store_strings_free(names, n);
    CHECK(store_stats_get(t, "abc", 2, &data, &len) == 0 && len == 3);
    CHECK(store_stats_get(t, "abc", 3, &data, &len) == ERR_NOTFOUND);
    store_txn_abort(t);

    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_tensor_del(t, "x") == 0);
    CHECK(store_tensor_del(t, "x") == ERR_NOTFOUND);
    CHECK(store_txn_commit(t) == 0);
    store_close(s);
}

/* Subjects and prompts longer than LMDB's key limit still make distinct
 * slots, and the subject's history still finds them. */
TEST(long_keys)
{
    store *s = new_store("i");
    store_txn *t;
    char subject[700], p1[3000], p2[3000];
    memset(subject, 'S', sizeof subject - 1);
    subject[sizeof subject - 1] = '\0';
    memset(p1, 'p', sizeof p1 - 1);
    p1[sizeof p1 - 1] = '\0';
    memcpy(p1, "{} ", 3);
    memcpy(p2, p1, sizeof p1);
    p2[sizeof p2 - 2] = 'q'; /* differs only at the very end */
    uint64_t imp, id;
    import_action a;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0);
    fact f1 = mk(subject, p1, " A", 1), f2 = mk(subject, p2, " B", 2);
    CHECK(store_fact_add(t, &f1, imp, &a, &id) == 0 && a == IMPORT_QUEUED);
    CHECK(store_fact_add(t, &f2, imp, &a, &id) == 0 && a == IMPORT_QUEUED);
    store_version *h;
    size_t n;
    CHECK(store_subject_history(t, subject, &h, &n) == 0 && n == 2);
    if (n == 2) CHECK(!strcmp(h[1].f.prompt, p2));
    store_versions_free(h, n);
    CHECK(store_txn_commit(t) == 0);
    store_close(s);
}

/* An aborted write and a failed one (full map) leave nothing behind;
 * a read snapshot does not see a later commit. */
TEST(atomicity)
{
    char dir[512];
    store *s = new_store("j");
    store_txn *t, *r;
    uint64_t imp, id;
    import_action a;
    size_t n;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0);
    fact f = mk("A", "{} is", " x", 1);
    CHECK(store_fact_add(t, &f, imp, &a, &id) == 0);
    store_txn_abort(t);
    CHECK(store_txn_begin(s, &r, 0) == 0);
    CHECK(store_queue_count(r, &n) == 0 && n == 0);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0 && imp == 1);
    CHECK(store_fact_add(t, &f, imp, &a, &id) == 0 && id == 1);
    CHECK(store_txn_commit(t) == 0);
    CHECK(store_queue_count(r, &n) == 0 && n == 0); /* old snapshot */
    store_txn_abort(r);
    store_close(s);

    /* a 1 MiB map fills up: a clear error, and nothing of the
     * transaction is kept */
    path_of(dir, sizeof dir, "j");
    setenv("STAMP_MAP_SIZE", "1048576", 1);
    CHECK(store_open(&s, dir) == 0);
    unsetenv("STAMP_MAP_SIZE");
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0);
    char big[4096], subj[32];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "{} ", 3);
    int rc = 0;
    for (int i = 0; i < 2000 && rc == 0; i++) {
        snprintf(subj, sizeof subj, "subject %d", i);
        fact g = mk(subj, big, " y", (size_t)i);
        rc = store_fact_add(t, &g, imp, &a, &id);
    }
    CHECK(rc == ERR_STORE && strstr(err_message(rc), "full") != NULL);
    store_txn_abort(t);
    CHECK(store_txn_begin(s, &r, 0) == 0);
    CHECK(store_queue_count(r, &n) == 0 && n == 1);
    store_txn_abort(r);
    store_close(s);
}

typedef struct {
    int calls;
    long pid;
    double seconds;
} lock_waits;

static void on_lock_wait(void *ctx, const char *dir, long pid, double seconds)
{
    lock_waits *w = ctx;
    (void)dir;
    w->calls++;
    w->pid = pid;
    w->seconds = seconds;
}

/* A second writer waits STAMP_LOCK_WAIT seconds, then fails naming the
 * holder; the lock-wait callback hears of it first; readers never wait.
 * The holder is a child process. */
TEST(writer_lock)
{
    char dir[512];
    store *s = new_store("k");
    store_close(s);
    path_of(dir, sizeof dir, "k");
    int go[2], done[2];
    CHECK(pipe(go) == 0 && pipe(done) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        store *cs;
        store_txn *ct;
        char c = 0;
        close(go[0]);
        close(done[1]);
        if (store_open(&cs, dir) || store_txn_begin(cs, &ct, 1)) _exit(1);
        if (write(go[1], "x", 1) != 1) _exit(1);
        if (read(done[0], &c, 1) != 1) _exit(1);
        store_txn_abort(ct);
        store_close(cs);
        _exit(0);
    }
    char c;
    close(go[1]); /* a child that dies gives EOF instead of a hang */
    close(done[0]);
    CHECK(read(go[0], &c, 1) == 1);
    CHECK(store_open(&s, dir) == 0);
    store_txn *t = NULL;
    setenv("STAMP_LOCK_WAIT", "0.3", 1);
    lock_waits w = {0};
    store_set_lock_wait(s, on_lock_wait, &w);
    int rc = store_txn_begin(s, &t, 1);
    CHECK(rc == ERR_BUSY && t == NULL);
    char want[64];
    snprintf(want, sizeof want, "(pid %ld)", (long)pid);
    CHECK_MSG(strstr(err_message(rc), want) != NULL, "%s",
              err_message(rc));
    /* the caller was told once, before the wait, whom and how long */
    CHECK(w.calls == 1 && w.pid == (long)pid && w.seconds == 0.3);
    store_set_lock_wait(s, NULL, NULL);
    size_t n;
    CHECK(store_txn_begin(s, &t, 0) == 0); /* a reader goes on */
    CHECK(store_queue_count(t, &n) == 0);
    store_txn_abort(t);
    CHECK(write(done[1], "x", 1) == 1);
    int status = 0;
    waitpid(pid, &status, 0);
    close(go[0]);
    close(done[1]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(store_txn_begin(s, &t, 1) == 0); /* free again */
    store_txn_abort(t);
    unsetenv("STAMP_LOCK_WAIT");
    store_close(s);
}

/* A damaged record is an error naming the version, never a crash. */
TEST(corrupt_record)
{
    char dir[512];
    store *s = new_store("l");
    store_txn *t;
    uint64_t imp, id;
    import_action a;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0);
    fact f = mk("B", "{} is", " z", 1);
    CHECK(store_fact_add(t, &f, imp, &a, &id) == 0);
    CHECK(store_txn_commit(t) == 0);
    store_close(s);
    /* cut the record short behind the store's back */
    path_of(dir, sizeof dir, "l");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    MDB_val k = {8, key}, v;
    CHECK(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    CHECK(mdb_env_open(env, dir, 0, 0644) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "versions", 0, &dbi) == 0);
    CHECK(mdb_get(txn, dbi, &k, &v) == 0);
    unsigned char buf[64];
    memcpy(buf, v.mv_data, 50);
    v.mv_data = buf;
    v.mv_size = 50;
    CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);

    CHECK(store_open(&s, dir) == 0);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    store_version sv, *q;
    size_t n;
    int rc = store_version_get(t, 1, &sv);
    CHECK(rc == ERR_STORE && strstr(err_message(rc), "damaged: version 1 "
                                    "(database 'versions') fails its checksum"));
    CHECK(store_queue_list(t, 0, &q, &n) == ERR_STORE && q == NULL);
    store_txn_abort(t);
    store_close(s);
}

TEST(hash_hex_known_values)
{
    char a[33], b[33];
    hash_hex(a, "", 0);
    CHECK(strlen(a) == 32);
    /* xxh128sum of the empty input */
    CHECK(!strcmp(a, "99aa06d3014798d86001c324468d497f"));
    hash_hex(a, "stamp", 5);
    hash_stream *h;
    CHECK(hash_stream_open(&h) == 0);
    hash_stream_update(h, "st", 2);
    hash_stream_update(h, "amp", 3);
    hash_stream_hex(h, b);
    hash_stream_close(h);
    CHECK(!strcmp(a, b));
    hash_hex(b, "stamq", 5);
    CHECK(strcmp(a, b) != 0);
}

int main(void)
{
    make_root();
    RUN(create_open_meta);
    RUN(create_refuses_and_leaves_nothing);
    RUN(versions_queue_and_history);
    RUN(states_commits_and_head);
    RUN(diffs_tensors_stats);
    RUN(long_keys);
    RUN(atomicity);
    RUN(writer_lock);
    RUN(corrupt_record);
    RUN(hash_hex_known_values);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp_root);
    return harness_summary();
}
