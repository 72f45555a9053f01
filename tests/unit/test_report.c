/* test_report: the HTML report (report.h) of stores built here through
 * the store API, with commit records as the commit and revert commands
 * write them: an empty store gives a page that says so; every string
 * from the store is escaped (markup, quotes, control characters); a
 * reverted commit, a revert commit and a commit reset away are marked;
 * the page is one well-formed document with no external reference;
 * 10,000 commits are aggregated (50 rows, groups of 100, charts of
 * group means) and the time it took is printed; report_write_file
 * replaces a file whole, names a missing directory and leaves no file
 * there, and fails on /dev/full. */
#include "base/errors.h"
#include "base/clock.h"
#include "facts/fact.h"
#include "repo/report.h"
#include "store/store.h"
#include "../harness.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];

static const char config[] =
    "{\"model_type\": \"gpt2\", \"n_layer\": 6, \"n_embd\": 64, "
    "\"n_head\": 2, \"n_inner\": 256, \"vocab_size\": 812, "
    "\"n_positions\": 32}";

static store *new_store(const char *name)
{
    char dir[512];
    store *s = NULL;
    const char *keys[] = {"format_version", "model_dir", "model_id", "config"};
    const char *vals[] = {"1", "/models/tiny <world>", "abc123", config};
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    int rc = store_create(dir, keys, vals, 4);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    rc = store_open(&s, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    return s;
}

/* A commit record as `stamp commit` writes it (the fields the report
 * reads), or a revert commit's when reverts > 0. */
static void record(char *buf, size_t size, uint64_t id, uint64_t parent,
                   const char *message, uint64_t reverts, double es)
{
    /* what else a real record holds, for its size (3.4 KB in all) */
    static const char rest[] =
        "\"tensors\": {\"h.0.mlp.c_proj.weight\": {\"before\": "
        "\"f7e7b7b44c24c667d436c3d433d8eb3d\", \"after\": "
        "\"b1eb1afc490850d22ac784a1894d6f1c\", \"diff_bytes\": 33655, "
        "\"raw_bytes\": 65536}, \"h.1.mlp.c_proj.weight\": {\"before\": "
        "\"d1b5b1ec493b09b069e46402a2892cea\", \"after\": "
        "\"04543a4a373455b86c100b57ce182618\", \"diff_bytes\": 41258, "
        "\"raw_bytes\": 65536}}, \"superseded\": [], \"threads\": 2, "
        "\"stats_computed\": false, \"z_steps_mean\": 20.0, "
        "\"z_nll_mean\": 1.2459261963764827, \"rounds\": ["
        "{\"z_likely\": 1, \"z_steps_mean\": 20.0, \"z_nll_mean\": "
        "1.2459261963764827, \"shift_written\": 0.16478924062124523, "
        "\"step\": 1.0}, {\"z_likely\": 3, \"z_steps_mean\": 20.0, "
        "\"z_nll_mean\": 0.08568311048050721, \"shift_written\": "
        "0.17011821912034653, \"step\": 1.0}, {\"z_likely\": 3, "
        "\"z_steps_mean\": 18.0, \"z_nll_mean\": 0.038660827092826366, "
        "\"shift_written\": 0.10428932753876463, \"step\": 1.0}, "
        "{\"z_likely\": 3, \"z_steps_mean\": 8.0, \"z_nll_mean\": "
        "0.044716099898020424, \"shift_written\": 0.00066728426339457414, "
        "\"step\": 0.25}], \"hparams_full\": {\"v_lr\": 0.5, "
        "\"v_num_grad_steps\": 20, \"v_weight_decay\": 0.5, \"kl_factor\": "
        "0.0625, \"clamp_norm_factor\": 4.0, \"nll_stop\": "
        "0.050000000000000003, \"n_prefixes\": 0, \"prefix_tokens\": 6, "
        "\"seed\": 1, \"facts_per_group\": 16, \"stats_samples\": 100000, "
        "\"rome_ridge\": 0.0001, \"mom2_ridge\": 0.0, "
        "\"protect_committed\": 1.0, \"nullspace_threshold\": 0.0, "
        "\"joint_layers\": 0, \"rounds\": 6, \"round_min_shift\": 0.0, "
        "\"round_halvings\": 3}, \"timings_rounds\": [{\"z\": "
        "0.064507440999932442, \"solve\": 0.038653939999903741}, {\"z\": "
        "0.07596273400008613, \"solve\": 0.0010570709998773964}, {\"z\": "
        "0.048370512000019517, \"solve\": 0.0012857219999204972}, {\"z\": "
        "0.021345343999882971, \"solve\": 0.0074164319998999417}, {\"z\": "
        "0.039068144000111715, \"solve\": 0.0068937420001020655}, {\"z\": "
        "0.022335966999889934, \"solve\": 0.001242480999962936}]";
    if (reverts) {
        snprintf(buf, size,
                 "{\"id\": %llu, \"parent\": %llu, \"kind\": \"revert\", "
                 "\"reverts\": %llu, \"time\": \"2026-12-01T04:00:00Z\", "
                 "\"message\": \"%s\", \"versions\": [], \"n_facts\": 0, "
                 "\"failed\": [], \"layers\": [{\"layer\": 1, \"delta_norm\": "
                 "2.5}], \"diff_bytes\": 1000, \"timings\": {\"total\": 0.1}}",
                 (unsigned long long)id, (unsigned long long)parent,
                 (unsigned long long)reverts, message);
        return;
    }
    snprintf(buf, size,
             "{\"id\": %llu, \"parent\": %llu, \"kind\": \"commit\", "
             "\"time\": \"2026-12-01T04:00:00Z\", \"message\": \"%s\", "
             "\"method\": \"memit\", \"versions\": [], \"n_facts\": 3, "
             "\"failed\": [], \"hparams\": {\"layers\": [0, 1], "
             "\"mom2_update_weight\": 2000.0}, \"layers\": [{\"layer\": 0, "
             "\"delta_norm\": %.3f}, {\"layer\": 1, \"delta_norm\": 8.25}], "
             "\"diff_bytes\": %llu, \"scores\": {\"before\": {\"n_facts\": 3, "
             "\"es\": 0.0, \"ps\": 10.0, \"ns\": 100.0, \"n_paraphrase\": 9, "
             "\"n_neighbor\": 6}, \"after\": {\"n_facts\": 3, \"es\": %.4f, "
             "\"ps\": 55.5, \"ns\": 95.25, \"n_paraphrase\": 9, "
             "\"n_neighbor\": 6}}, \"z_likely\": 2, \"shift_written\": 0.5, "
             "\"timings\": {\"stats\": 0.01, \"z\": 0.2, \"solve\": 0.05, "
             "\"write\": 0.01, \"total\": 0.3}, %s}",
             (unsigned long long)id, (unsigned long long)parent, message,
             1.0 + (double)(id % 7), (unsigned long long)(70000 + id % 1000),
             es, rest);
}

static char *build(store *s, const report_options *o)
{
    char *html = NULL;
    size_t len = 0;
    int rc = report_build(s, o, &html, &len);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    CHECK(!html || strlen(html) == len);
    return html;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* one document, closed, with no reference outside itself */
static void check_page(const char *html)
{
    CHECK(!strncmp(html, "<!DOCTYPE html>", 15));
    CHECK(strstr(html, "</html>\n") && !strcmp(strstr(html, "</html>\n"), "</html>\n"));
    CHECK(!strstr(html, "http:") && !strstr(html, "https:"));
    CHECK(!strstr(html, "src=") && !strstr(html, "<script"));
    CHECK(!strstr(html, "url("));
    CHECK(count(html, "href=\"") == count(html, "href=\"#"));
}

TEST(empty_store_says_so)
{
    store *s = new_store("empty");
    char *html = build(s, NULL);
    if (html) {
        check_page(html);
        CHECK(strstr(html, "No commits yet") != NULL);
        CHECK(strstr(html, "HEAD is the base model") != NULL);
        CHECK(strstr(html, "0 facts queued") != NULL);
        CHECK(strstr(html, "6 layers, d_model 64") != NULL);
        CHECK(strstr(html, "<svg") == NULL);  /* nothing to chart */
    }
    free(html);
    store_close(s);
}

/* A fact with borrowed strings (store_fact_add copies). */
static fact mk(const char *subject, const char *prompt, const char *target)
{
    fact f = {0};
    f.subject = (char *)subject;
    f.prompt = (char *)prompt;
    f.relation = "";
    f.target_new = (char *)target;
    f.target_true = " <old>";
    f.source_file = "a&b.csv";
    f.source_line = 2;
    return f;
}

TEST(strings_are_escaped_and_fates_marked)
{
    store *s = new_store("escape");
    store_txn *t = NULL;
    char rec[4096];
    uint64_t import = 0, vid = 0;
    import_action act;
    CHECK(store_txn_begin(s, &t, 1) == 0);
    /* 1 <- 2 <- 3 (reverts 1) is the chain; 4 was reset away */
    record(rec, sizeof rec, 1, 0, "<script>alert(1)</script> & 'q' \\\"x\\\" \\u0001", 0, 66.6667);
    CHECK(store_commit_put(t, 1, rec) == 0);
    record(rec, sizeof rec, 2, 1, "second", 0, 100);
    CHECK(store_commit_put(t, 2, rec) == 0);
    record(rec, sizeof rec, 3, 2, "revert commit 1", 1, 0);
    CHECK(store_commit_put(t, 3, rec) == 0);
    record(rec, sizeof rec, 4, 3, "reset away", 0, 33.3333);
    CHECK(store_commit_put(t, 4, rec) == 0);
    CHECK(store_head_set(t, 3) == 0);
    fact f = mk("<b>Bob</b> & \"Al\"", "{} likes", " <i>tea</i>");
    CHECK(store_import_begin(t, &import) == 0);
    CHECK(store_fact_add(t, &f, import, &act, &vid) == 0);
    CHECK(store_txn_commit(t) == 0);

    char *html = build(s, NULL);
    if (html) {
        check_page(html);
        CHECK(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;q&#39; &quot;x&quot; \xef\xbf\xbd"));
        CHECK(!strstr(html, "\x01"));
        CHECK(strstr(html, "/models/tiny &lt;world&gt;"));
        CHECK(strstr(html, "&lt;b&gt;Bob&lt;/b&gt; &amp; &quot;Al&quot; likes"));
        CHECK(strstr(html, "&lt;i&gt;tea&lt;/i&gt;"));
        CHECK(strstr(html, "a&amp;b.csv:2"));
        CHECK(!strstr(html, "<b>Bob") && !strstr(html, "<i>tea"));
        CHECK(strstr(html, "1 fact queued"));
        /* the fates: reverted by 3, a revert of 1, one off the chain */
        CHECK(strstr(html, "reverted by 3</span>"));
        CHECK(strstr(html, "revert of 1</span>"));
        /* one in the explanation above the table, one in its row */
        CHECK(count(html, "undone: off the chain</span>") == 2);
        CHECK(strstr(html, "<dt>HEAD</dt><dd>commit 3</dd>"));
        /* the scores, as the table shows them */
        CHECK(strstr(html, "0.0 &#8594; 66.7"));
        CHECK(strstr(html, "0.0 &#8594; 100.0"));
        CHECK(strstr(html, "95.2") || strstr(html, "95.3"));
        CHECK(strstr(html, "All 4 commits"));
        CHECK(strstr(html, "Latest commit: 4 (undone: off the chain)"));
    }
    free(html);
    store_close(s);
}

TEST(ten_thousand_commits_are_aggregated)
{
    enum { N = 10000 };
    store *s = new_store("big");
    store_txn *t = NULL;
    char rec[4096], msg[64];
    double t0 = clock_seconds();
    CHECK(store_txn_begin(s, &t, 1) == 0);
    for (uint64_t id = 1; id <= N; id++) {
        snprintf(msg, sizeof msg, "nightly %llu", (unsigned long long)id);
        record(rec, sizeof rec, id, id - 1, msg, id % 1000 == 0 ? id - 1 : 0,
               (double)(id % 100));
        CHECK(store_commit_put(t, id, rec) == 0);
    }
    CHECK(store_head_set(t, N) == 0);
    CHECK(store_txn_commit(t) == 0);
    double t1 = clock_seconds();
    report_options o;
    report_options_init(&o);
    char *html = build(s, &o);
    double t2 = clock_seconds();
    if (html) {
        check_page(html);
        CHECK(strstr(html, "The newest 50 of 10000 commits"));
        CHECK(strstr(html, "Older commits, per 100"));
        /* 50 commit rows, 100 groups of the 9,950 older ones (the last
         * one of 50) */
        CHECK(count(html, "<th scope=\"row\" data-label=\"commit\">") >= 50);
        CHECK(strstr(html, "<th scope=\"row\" data-label=\"commits\">1&#8211;100</th>"));
        CHECK(strstr(html, "<th scope=\"row\" data-label=\"commits\">9901&#8211;9950</th>"));
        CHECK(count(html, "data-label=\"commits\">") == 100);
        CHECK(strstr(html, "Each point is the mean of 25 consecutive commits"));
        CHECK(count(html, "<circle") == 0);
        CHECK(strstr(html, "reverted by 10000</span>"));
        CHECK(strlen(html) < 2u << 20);
        printf("     (10,000 commits: store built in %.2f s, page of %zu KiB "
               "built in %.3f s)\n", t1 - t0, strlen(html) >> 10, t2 - t1);
    }
    free(html);
    store_close(s);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

TEST(write_file_is_whole_or_nothing)
{
    store *s = new_store("files");
    char path[700], dir[600], *html = build(s, NULL);
    report_options o;
    report_options_init(&o);
    o.generated = "fixed";
    free(html);
    html = build(s, &o);
    /* a new file, then a file replaced whole */
    snprintf(path, sizeof path, "%s/r.html", tmp_root);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("old", f);
        fclose(f);
    }
    int rc = report_write_file(s, &o, path);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    f = fopen(path, "r");
    if (f && html) {
        char *back = calloc(strlen(html) + 2, 1);
        size_t n = back ? fread(back, 1, strlen(html) + 1, f) : 0;
        CHECK(n == strlen(html) && !memcmp(back, html, n));
        free(back);
    }
    if (f) fclose(f);
    /* a directory that does not exist: named, and nothing written */
    snprintf(dir, sizeof dir, "%s/no/such", tmp_root);
    snprintf(path, sizeof path, "%s/r.html", dir);
    rc = report_write_file(s, &o, path);
    CHECK(rc == ERR_NOTFOUND);
    CHECK(strstr(err_message(rc), dir) != NULL);
    CHECK(!file_exists(path));
    /* a full device */
    rc = report_write_file(s, &o, "/dev/full");
    CHECK(rc == ERR_IO);
    CHECK(strstr(err_message(rc), "/dev/full") != NULL);
    CHECK(file_exists("/dev/full"));
    struct stat st;
    CHECK(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode));
    free(html);
    store_close(s);
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/test_report.XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(empty_store_says_so);
    RUN(strings_are_escaped_and_fates_marked);
    RUN(ten_thousand_commits_are_aggregated);
    RUN(write_file_is_whole_or_nothing);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return harness_summary();
}
