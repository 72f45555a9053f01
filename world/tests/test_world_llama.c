/* test_world_llama: worlds in the Llama architecture. The trainer on a
 * tiny Llama model (train_net): the loss falls, the same seed and
 * threads give the same bytes, and the batch gradient split over 1 or 3
 * workers agrees with central differences of the batch loss. Then
 * build/stamp-world --arch llama end to end: a tiny world whose loss
 * falls, whose files load as a Llama model (tied embeddings, GQA) with
 * the recall world.json says, on which `stamp init` makes a store and
 * `stamp commit` stamps facts. Runs $BUILD/stamp-world and $STAMP
 * (default build/). */
#include "base/errors.h"
#include "model/llama_train.h"
#include "model/tokenizer.h"
#include "world/train.h"
#include "world/train_net.h"
#include "tests/harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[64];
static char tool[4096], stamp[4096];

#define NSEQ 12
static int toks[NSEQ][12];
static train_seq seqs[NSEQ];

static llama_config tiny_config(void)
{
    return (llama_config){.arch = LLAMA_ARCH_LLAMA, .n_layer = 2,
                          .n_embd = 16, .n_inner = 32, .n_head = 4,
                          .n_kv_head = 2, .head_dim = 4, .vocab_size = 29,
                          .n_positions = 12, .rms_norm_eps = 1e-5f,
                          .rope_theta = 10000, .tie_word_embeddings = true,
                          .bos_token_id = -1};
}

/* NSEQ sequences of 5..11 random tokens; answers of 1-2 tokens. */
static void make_seqs(void)
{
    unsigned s = 12345;
    for (int i = 0; i < NSEQ; i++) {
        size_t len = 5 + (size_t)(i % 7);
        for (size_t t = 0; t < len; t++) {
            s = s * 1103515245u + 12345u;
            toks[i][t] = (int)((s >> 16) % 28);
        }
        seqs[i] = (train_seq){toks[i], len, len - 1 - (size_t)(i % 2)};
    }
}

static double first_loss;
static void note_loss(void *ctx, const char *label, size_t done,
                      size_t total)
{
    (void)ctx;
    (void)total;
    double l;
    if (done == 20 && sscanf(label, "step %*u/%*u loss %lf", &l) == 1)
        first_loss = l;
}

/* Trains a fresh tiny model: returns it in *m, its report in *rep. */
static int train_tiny(llama_model *m, int threads, train_report *rep)
{
    llama_config c = tiny_config();
    int rc = llama_model_init_random(m, &c, 3);
    if (rc) return rc;
    train_options o;
    train_options_default(&o);
    o.steps = 300;
    o.batch_size = 8;
    o.warmup = 20;
    o.eval_every = 20;
    o.threads = threads;
    o.progress = note_loss;
    train_eval ev = {"rewrite", seqs, NSEQ, 2};
    train_net net = train_net_of_llama(m);
    return train_net_run(&net, seqs, NSEQ, &ev, 1, &o, rep);
}

TEST(trainer_learns_and_is_deterministic)
{
    llama_model a, b;
    train_report ra, rb;
    first_loss = 0;
    int rc = train_tiny(&a, 2, &ra);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    double first = first_loss;
    CHECK(train_tiny(&b, 2, &rb) == 0);
    printf("     loss %.3f at step 20, %.3f at %zu; recall %.3f\n", first,
           ra.loss, ra.steps, ra.recall[0]);
    CHECK(first > 2.5 && ra.loss < 0.5 * first);
    CHECK(ra.recall[0] >= 0.9);
    CHECK(a.n_params == b.n_params &&
          !memcmp(a.params, b.params, a.n_params * sizeof(float)));
    llama_model_free(&a);
    llama_model_free(&b);
}

TEST(batch_gradient_matches_finite_differences)
{
    llama_model m;
    llama_config c = tiny_config();
    CHECK(llama_model_init_random(&m, &c, 9) == 0);
    for (size_t i = 0; i < m.n_params; i++) /* off the initial point */
        m.params[i] += 0.2f * (float)sin((double)i * 0.37);
    train_net net = train_net_of_llama(&m);
    size_t idx[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, P = m.n_params;
    float *g1 = calloc(P, sizeof *g1), *g3 = calloc(P, sizeof *g3);
    double l1, l3, lp, lm;
    CHECK(train_net_batch_grad(&net, seqs, idx, 9, TRAIN_LOSS_ALL, 1, g1,
                               &l1) == 0);
    CHECK(train_net_batch_grad(&net, seqs, idx, 9, TRAIN_LOSS_ALL, 3, g3,
                               &l3) == 0);
    CHECK_NEAR(l1, l3, 1e-5);
    int bad = 0;
    for (size_t i = 0; i < P; i++)
        bad += !(fabs(g1[i] - g3[i]) <= 1e-5 + 1e-3 * fabs(g1[i]));
    CHECK_MSG(bad == 0, "%d gradients differ between 1 and 3 workers", bad);
    for (size_t i = 0; i < P; i += 97) {
        float w = m.params[i];
        m.params[i] = w + 1e-2f;
        train_net_batch_grad(&net, seqs, idx, 9, TRAIN_LOSS_ALL, 1, NULL, &lp);
        m.params[i] = w - 1e-2f;
        train_net_batch_grad(&net, seqs, idx, 9, TRAIN_LOSS_ALL, 1, NULL, &lm);
        m.params[i] = w;
        double fd = (lp - lm) / 2e-2;
        CHECK_MSG(fabs(g1[i] - fd) <= 3e-4 + 2e-2 * fabs(fd),
                  "param %zu: backward %g, fd %g", i, g1[i], fd);
    }
    free(g1);
    free(g3);
    llama_model_free(&m);
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static json_t *load_json(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return json_load_file(path, 0, NULL);
}

TEST(stamp_world_arch_llama_end_to_end)
{
    char cmd[12800];
    snprintf(cmd, sizeof cmd,
             "'%s' --arch llama --synthetic 24 --out '%s/w' --threads 2 "
             "--layers 2 --embd 32 --heads 4 --steps 300 --batch 16 "
             "--eval-every 50 --goal 2 --no-checkpoint >'%s/log' 2>&1",
             tool, tmp, tmp);
    CHECK(run(cmd) == 0);
    json_t *cfg = load_json("w/config.json"), *info = load_json("w/world.json");
    CHECK(cfg && info);
    if (!cfg || !info) return;
    CHECK(!strcmp(json_string_value(json_array_get(
                      json_object_get(cfg, "architectures"), 0)),
                  "LlamaForCausalLM"));
    CHECK(json_integer_value(json_object_get(cfg, "num_key_value_heads")) == 2);
    CHECK(json_is_true(json_object_get(cfg, "tie_word_embeddings")));
    json_t *rec = json_object_get(info, "recall");
    double rewrite = json_real_value(json_object_get(rec, "rewrite"));
    double loss = json_real_value(
        json_object_get(json_object_get(info, "training"), "final_loss"));
    printf("     world: final loss %.3f, rewrite recall %.3f\n", loss,
           rewrite);
    CHECK(loss > 0 && loss < 2.0); /* from ~6.5 at the start */
    /* the files load as a Llama model and recall what world.json says */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/w", tmp);
    llama_model m;
    int rc = llama_model_load(&m, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    tokenizer *tok = NULL;
    CHECK(tokenizer_open_dir(&tok, dir) == 0);
    if (!rc && tok) {
        CHECK(m.config.n_kv_head == 2 && m.config.tie_word_embeddings);
        CHECK(tokenizer_vocab_size(tok) == m.config.vocab_size);
    }
    tokenizer_close(tok);
    llama_model_free(&m);
    /* stamp makes a store on it and stamps facts into it */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' init --model w >>log 2>&1 && "
             "head -n 4 w/facts.csv >f.csv && '%s' import f.csv >>log 2>&1 "
             "&& '%s' commit -m three >commit.txt 2>&1 && "
             "grep -q '3 facts stamped' commit.txt",
             tmp, stamp, stamp, stamp);
    rc = run(cmd);
    CHECK_MSG(rc == 0, "stamp init/import/commit on the llama world (%s)",
              tmp);
    if (rc) {
        snprintf(cmd, sizeof cmd, "cat '%s/log' '%s/commit.txt' >&2", tmp,
                 tmp);
        (void)run(cmd);
    }
    json_decref(cfg);
    json_decref(info);
}

int main(void)
{
    const char *build = getenv("BUILD"), *st = getenv("STAMP");
    char rel[2][512];
    snprintf(rel[0], sizeof rel[0], "%s/stamp-world", build ? build : "build");
    if (st) snprintf(rel[1], sizeof rel[1], "%s", st);
    else snprintf(rel[1], sizeof rel[1], "%s/stamp", build ? build : "build");
    /* absolute: the commands cd into the temporary directory */
    if (!realpath(rel[0], tool) || !realpath(rel[1], stamp) ||
        access(tool, X_OK) || access(stamp, X_OK)) {
        fprintf(stderr, "no %s or %s (run make)\n", rel[0], rel[1]);
        return 1;
    }
    snprintf(tmp, sizeof tmp, "/tmp/test_world_llama.XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    make_seqs();
    RUN(trainer_learns_and_is_deterministic);
    RUN(batch_gradient_matches_finite_differences);
    RUN(stamp_world_arch_llama_end_to_end);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return harness_summary();
}
