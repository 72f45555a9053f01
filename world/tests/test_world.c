/* test_world: the world builder (build/stamp-world) end to end on a
 * very small synthetic world: same seed and threads give the same bytes;
 * another seed gives another model; the files load (config, weights,
 * tokenizer) and the recall recomputed from them is world.json's;
 * facts.csv reads back through ingest as the generated facts; an
 * existing world is replaced whole, anything else is refused untouched.
 * Runs the tool binary ($BUILD/stamp-world, default build/). */
#include "base/errors.h"
#include "facts/fact.h"
#include "model/gpt2.h"
#include "facts/ingest.h"
#include "model/tokenizer.h"
#include "world/train.h"
#include "world/worldgen.h"
#include "tests/harness.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[64];
static char tool[512];

static const char *FILES[] = {"config.json", "model.safetensors",
                              "vocab.json", "merges.txt", "facts.csv",
                              "corpus.txt"};
#define NFILES (sizeof FILES / sizeof FILES[0])

static int run_tool(const char *out, const char *extra)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' --synthetic 24 --out '%s/%s' --threads 2 --layers 2 "
             "--embd 32 --steps 30 --batch 16 --eval-every 15 --quiet %s "
             ">'%s/log' 2>&1",
             tool, tmp, out, extra, tmp);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *dir, const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", tmp, dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    p[*n] = '\0';
    fclose(f);
    return p;
}

static int same_file(const char *a, const char *b, const char *name)
{
    size_t na, nb;
    char *pa = slurp(a, name, &na), *pb = slurp(b, name, &nb);
    int same = pa && pb && na == nb && !memcmp(pa, pb, na);
    free(pa);
    free(pb);
    return same;
}

static json_t *world_json(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s/world.json", tmp, dir);
    return json_load_file(path, 0, NULL);
}

TEST(same_seed_same_bytes)
{
    CHECK(run_tool("a", "") == 0);
    CHECK(run_tool("b", "") == 0);
    for (size_t k = 0; k < NFILES; k++)
        CHECK_MSG(same_file("a", "b", FILES[k]), "%s differs", FILES[k]);
    /* world.json: the same but for the timings */
    json_t *ja = world_json("a"), *jb = world_json("b");
    CHECK(ja && jb);
    if (ja && jb) {
        json_object_del(ja, "seconds");
        json_object_del(jb, "seconds");
        CHECK(json_equal(ja, jb));
        CHECK(json_integer_value(json_object_get(ja, "seed")) == 1);
        CHECK(json_integer_value(json_object_get(ja, "threads")) == 2);
        json_t *d = json_object_get(ja, "data");
        CHECK(json_integer_value(json_object_get(d, "facts")) == 24);
    }
    json_decref(ja);
    json_decref(jb);
    CHECK(run_tool("c", "--seed 2") == 0);
    CHECK(!same_file("a", "c", "model.safetensors"));
    CHECK(!same_file("a", "c", "facts.csv"));
}

TEST(files_load_and_recall_agrees)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    gpt2_model m = {0};
    tokenizer *tok = NULL;
    int rc = gpt2_model_load(&m, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    rc = tokenizer_open_dir(&tok, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (!tok || !m.tensors)
        goto out;
    CHECK(m.config.n_layer == 2 && m.config.n_embd == 32 &&
          m.config.n_inner == 128 && m.config.n_positions == 32);
    CHECK(m.config.vocab_size == tokenizer_vocab_size(tok));

    /* facts.csv through ingest = the generated world */
    char csv[300];
    snprintf(csv, sizeof csv, "%s/facts.csv", dir);
    ingest_options io = {0};
    ingest_result res;
    rc = ingest_read(csv, INGEST_CSV, &io, &res);
    CHECK_MSG(rc == 0 && res.n_problems == 0, "%s",
              res.n_problems ? res.problems[0].message : err_message(rc));
    worldgen_options wo;
    CHECK(worldgen_preset("24", 1, &wo) == 0);
    fact *g;
    size_t ng;
    CHECK(worldgen_generate(&wo, &g, &ng) == 0);
    CHECK(res.n_facts == ng);
    for (size_t i = 0; i < ng && i < res.n_facts; i++) {
        const fact *a = &res.facts[i], *b = &g[i];
        CHECK(!strcmp(a->subject, b->subject) && !strcmp(a->prompt, b->prompt));
        CHECK(!strcmp(a->target_new, b->target_new) &&
              !strcmp(a->target_true, b->target_true) &&
              !strcmp(a->relation, b->relation));
        CHECK(a->n_paraphrases == b->n_paraphrases &&
              a->n_neighbors == b->n_neighbors);
        for (size_t k = 0; k < a->n_paraphrases && k < b->n_paraphrases; k++)
            CHECK(!strcmp(a->paraphrases[k], b->paraphrases[k]));
        for (size_t k = 0; k < a->n_neighbors && k < b->n_neighbors; k++)
            CHECK(!strcmp(a->neighbor_prompts[k], b->neighbor_prompts[k]) &&
                  !strcmp(a->neighbor_targets[k], b->neighbor_targets[k]));
    }

    /* recall on the rewrite prompts, recomputed from the files */
    train_seq *s = calloc(res.n_facts, sizeof *s);
    size_t n = 0;
    for (size_t i = 0; i < res.n_facts; i++) {
        char *p = fact_prompt_text(&res.facts[i]);
        int *pi, *ai;
        size_t np, na;
        CHECK(tokenizer_encode(tok, p, strlen(p), &pi, &np) == 0);
        const char *t = res.facts[i].target_true;
        CHECK(tokenizer_encode(tok, t, strlen(t), &ai, &na) == 0);
        int *all = malloc((np + na) * sizeof *all);
        memcpy(all, pi, np * sizeof *all);
        memcpy(all + np, ai, na * sizeof *all);
        s[n++] = (train_seq){all, np + na, np};
        free(pi);
        free(ai);
        free(p);
    }
    double recall = -1;
    CHECK(train_recall(&m, s, n, 1, &recall, NULL) == 0);
    json_t *j = world_json("a");
    double want = json_real_value(
        json_object_get(json_object_get(j, "recall"), "rewrite"));
    CHECK_NEAR(recall, want, 1e-9);
    json_decref(j);
    for (size_t i = 0; i < n; i++)
        free((void *)s[i].tokens);
    free(s);
    worldgen_free(g, ng);
    ingest_result_free(&res);

    /* corpus.txt: one sentence a line, each ending in a true answer */
    size_t len;
    char *corpus = slurp("a", "corpus.txt", &len);
    CHECK(corpus && len > 0 && corpus[len - 1] == '\n');
    size_t lines = 0;
    for (size_t i = 0; corpus && i < len; i++)
        lines += corpus[i] == '\n';
    j = world_json("a");
    CHECK(lines == (size_t)json_integer_value(json_object_get(
                       json_object_get(j, "data"), "sentences")));
    json_decref(j);
    free(corpus);
out:
    tokenizer_close(tok);
    gpt2_model_free(&m);
}

static int leftovers(void)
{
    DIR *d = opendir(tmp);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

TEST(replaces_worlds_only)
{
    /* an existing world is replaced by the new one, whole */
    CHECK(run_tool("a", "--seed 3") == 0);
    CHECK(!same_file("a", "b", "model.safetensors"));
    json_t *j = world_json("a");
    CHECK(json_integer_value(json_object_get(j, "seed")) == 3);
    json_decref(j);
    CHECK(leftovers() == 0);
    /* a directory that is not a world is refused, untouched */
    char path[256];
    snprintf(path, sizeof path, "%s/keep", tmp);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/keep/precious", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("do not delete\n", f);
        fclose(f);
    }
    CHECK(run_tool("keep", "") == 1);
    CHECK(access(path, F_OK) == 0);
    size_t n;
    char *log = slurp("", "log", &n);
    CHECK(log && strstr(log, "not a world"));
    free(log);
    CHECK(leftovers() == 0);
    /* bad usage: exit 2, nothing written */
    CHECK(run_tool("d", "--loss sometimes") == 2);
    CHECK(run_tool("e", "--layers 0") == 2);
    snprintf(path, sizeof path, "%s/d", tmp);
    CHECK(access(path, F_OK) != 0);
}

int main(void)
{
    const char *build = getenv("BUILD");
    snprintf(tool, sizeof tool, "%s/stamp-world", build ? build : "build");
    if (access(tool, X_OK)) {
        fprintf(stderr, "no %s (run make)\n", tool);
        return 1;
    }
    snprintf(tmp, sizeof tmp, "/tmp/test_world.XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(same_seed_same_bytes);
    RUN(files_load_and_recall_agrees);
    RUN(replaces_worlds_only);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return harness_summary();
}
