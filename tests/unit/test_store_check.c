/* test_store_check: value checksums and the page walker of data.mdb
 * (store_check.h): a healthy store checks clean; a flipped byte in a
 * value is a checksum problem naming the record, and reading it is an
 * error, never data; a damaged page header and a truncated file are
 * fatal, and store_open refuses them before LMDB reads a page; a store
 * of the format without checksums reads as it is and upgrades. */
#include "base/errors.h"
#include "facts/fact.h"
#include "store/store.h"
#include "store/store_check.h"
#include "../harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", root, name);
}

/* A store with facts, one tensor of 3000 floats (on overflow pages, each
 * float 1234.5) and a statistics blob. */
static void fill(const char *dir)
{
    const char *keys[] = {"model_dir"}, *vals[] = {"/nowhere"};
    store *s;
    store_txn *t;
    uint64_t imp, id;
    import_action a;
    CHECK(store_create(dir, keys, vals, 1) == 0);
    CHECK(store_open(&s, dir) == 0);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    CHECK(store_import_begin(t, &imp) == 0);
    for (int i = 0; i < 200; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "Subject %03d", i);
        fact f = {0};
        f.subject = subj;
        f.prompt = "{} works as a";
        f.relation = "";
        f.target_new = " painter";
        f.source_file = "t.csv";
        f.source_line = (size_t)i + 2;
        CHECK(store_fact_add(t, &f, imp, &a, &id) == 0);
    }
    float *w = malloc(3000 * sizeof *w);
    for (int i = 0; i < 3000; i++) w[i] = 1234.5f;
    CHECK(store_tensor_put(t, "h.0.mlp.c_proj.weight", w, 3000) == 0);
    CHECK(store_stats_put(t, "m", 0, "statistics", 10) == 0);
    CHECK(store_txn_commit(t) == 0);
    store_close(s);
    free(w);
}

static int count_fatal(const store_check_report *r)
{
    int n = 0;
    for (size_t i = 0; i < r->n_problems; i++) n += r->problems[i].fatal;
    return n;
}

static off_t find(const char *file, const void *pat, size_t n)
{
    int fd = open(file, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    char *b = malloc((size_t)st.st_size);
    off_t at = -1;
    if (read(fd, b, (size_t)st.st_size) == st.st_size) {
        char *p = memmem(b, (size_t)st.st_size, pat, n);
        if (p) at = p - b;
    }
    free(b);
    close(fd);
    return at;
}

static void poke(const char *file, off_t at, unsigned char x)
{
    int fd = open(file, O_RDWR);
    unsigned char c;
    CHECK(pread(fd, &c, 1, at) == 1);
    c ^= x;
    CHECK(pwrite(fd, &c, 1, at) == 1);
    close(fd);
}

static void copy_store(const char *from, const char *to)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    CHECK(system(cmd) == 0);
}

TEST(healthy_store_checks_clean)
{
    char dir[512];
    store_check_report r;
    path_of(dir, sizeof dir, "a");
    fill(dir);
    CHECK(store_check_file(dir, 0, 1, &r) == 0);
    CHECK(r.n_problems == 0);
    CHECK(r.format == 2 && r.page_size >= 512);
    CHECK(r.records == 200 + 200 + 200 + 1 + 1 + 2 + 1);
    CHECK(r.sums_checked == r.records && r.overflow_pages >= 3);
    CHECK(r.leaf_pages > 2);
    store_check_report_free(&r);
}

TEST(flipped_value_byte_names_the_record)
{
    char dir[512], copy[512], file[600];
    store_check_report r;
    path_of(dir, sizeof dir, "a");
    path_of(copy, sizeof copy, "b");
    copy_store(dir, copy);
    snprintf(file, sizeof file, "%s/data.mdb", copy);
    float x = 1234.5f;
    off_t at = find(file, &x, sizeof x);
    CHECK(at > 0);
    poke(file, at + 4 * 100, 0x10);
    CHECK(store_check_file(copy, 0, 1, &r) == 0);
    CHECK(r.n_problems == 1 && !r.fatal);
    CHECK(strstr(r.problems[0].text, "tensor 'h.0.mlp.c_proj.weight' "
                 "(database 'tensors') fails its checksum") != NULL);
    CHECK(!strcmp(r.problems[0].db, "tensors"));
    store_check_report_free(&r);
    store *s;
    store_txn *t;
    const float *w;
    size_t n;
    CHECK(store_open(&s, copy) == 0);
    CHECK(store_txn_begin(s, &t, 1) == 0);
    int rc = store_tensor_get(t, "h.0.mlp.c_proj.weight", &w, &n);
    CHECK(rc == ERR_STORE && strstr(err_message(rc), "is damaged: tensor "
                                    "'h.0.mlp.c_proj.weight'"));
    CHECK(store_record_drop(t, "tensors", "h.0.mlp.c_proj.weight", 21) == 0);
    CHECK(store_txn_commit(t) == 0);
    store_close(s);
    CHECK(store_check_file(copy, 0, 1, &r) == 0);
    CHECK(r.n_problems == 0);
    store_check_report_free(&r);
}

TEST(page_damage_and_truncation_are_fatal)
{
    char dir[512], copy[512], file[600];
    store_check_report r;
    store *s = NULL;
    path_of(dir, sizeof dir, "a");
    path_of(copy, sizeof copy, "c");
    for (int kind = 0; kind < 3; kind++) {
        copy_store(dir, copy);
        snprintf(file, sizeof file, "%s/data.mdb", copy);
        struct stat st;
        stat(file, &st);
        if (kind == 0) CHECK(truncate(file, st.st_size / 2) == 0);
        if (kind == 1) CHECK(truncate(file, 8192 + 100) == 0);
        if (kind == 2) { /* the flags of the page holding "Subject 100" */
            off_t at = find(file, "Subject 100", 11);
            CHECK(at > 0);
            poke(file, at / 4096 * 4096 + 10, 0x03);
        }
        CHECK(store_check_file(copy, 0, 1, &r) == 0);
        CHECK(r.fatal && count_fatal(&r) >= 1);
        if (kind < 2) CHECK(strstr(r.problems[0].text, "truncated") != NULL);
        store_check_report_free(&r);
        int rc = store_open(&s, copy);
        CHECK(rc == ERR_STORE && s == NULL);
        CHECK(strstr(err_message(rc), "is damaged") != NULL);
    }
    /* a file too short for its meta pages */
    copy_store(dir, copy);
    CHECK(truncate(file, 3000) == 0);
    CHECK(store_check_file(copy, 0, 1, &r) == 0);
    CHECK(r.fatal && strstr(r.problems[r.n_problems - 1].text, "truncated"));
    store_check_report_free(&r);
    CHECK(store_open(&s, copy) < 0 && s == NULL);
}

TEST(old_format_reads_and_upgrades)
{
    char dir[512];
    store_check_report r;
    store *s;
    store_txn *t;
    store_version v;
    int up;
    path_of(dir, sizeof dir, "old");
    setenv("STAMP_TEST_STORE_FORMAT", "1", 1);
    fill(dir);
    unsetenv("STAMP_TEST_STORE_FORMAT");
    CHECK(store_check_file(dir, 0, 1, &r) == 0);
    CHECK(r.format == 1 && r.n_problems == 0 && r.sums_checked == 0);
    store_check_report_free(&r);
    CHECK(store_open(&s, dir) == 0);
    CHECK(store_format(s) == 1);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(store_version_get(t, 7, &v) == 0);
    CHECK(!strcmp(v.f.subject, "Subject 006"));
    store_version_free(&v);
    store_txn_abort(t);
    CHECK(store_upgrade(s, &up) == 0 && up == 1);
    CHECK(store_format(s) == 2);
    CHECK(store_upgrade(s, &up) == 0 && up == 0);
    store_close(s);
    CHECK(store_check_file(dir, 0, 1, &r) == 0);
    CHECK(r.format == 2 && r.n_problems == 0 && r.sums_checked == r.records);
    store_check_report_free(&r);
    CHECK(store_open(&s, dir) == 0);
    CHECK(store_format(s) == 2);
    CHECK(store_txn_begin(s, &t, 0) == 0);
    CHECK(store_version_get(t, 7, &v) == 0);
    CHECK(!strcmp(v.f.subject, "Subject 006"));
    store_version_free(&v);
    store_txn_abort(t);
    store_close(s);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_store_check.XXXXXX");
    if (!mkdtemp(root)) return 1;
    RUN(healthy_store_checks_clean);
    RUN(flipped_value_byte_names_the_record);
    RUN(page_damage_and_truncation_are_fatal);
    RUN(old_format_reads_and_upgrades);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) return 1;
    return harness_summary();
}
