/* test_train: the AdamW trainer on a tiny random GPT-2: the update
 * against a double-precision twin, the schedule, the batch gradient
 * against finite differences and across thread counts, recall against a
 * one-sequence-at-a-time twin, memorisation, determinism, a run
 * killed and continued from its checkpoint against one never stopped,
 * and the refused inputs (bad sequences, divergence). */
#include "base/errors.h"
#include "model/gpt2.h"
#include "world/train.h"
#include "tests/harness.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSEQ 12
static int toks[NSEQ][12];
static train_seq seqs[NSEQ];

static void make_model(gpt2_model *m, uint64_t seed)
{
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 16,
                     .n_positions = 12, .vocab_size = 29, .n_inner = 48,
                     .layer_norm_epsilon = 1e-5f};
    CHECK(gpt2_model_init(m, &c) == 0);
    gpt2_model_init_random(m, seed);
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

TEST(adamw_matches_double_twin)
{
    enum { N = 37 };
    float p[N], g[N], m[N] = {0}, v[N] = {0};
    double pd[N], md[N] = {0}, vd[N] = {0};
    for (int i = 0; i < N; i++)
        pd[i] = p[i] = (float)sin(i * 1.3) * 0.5f;
    for (size_t t = 1; t <= 5; t++) {
        for (int i = 0; i < N; i++)
            g[i] = (float)cos(i * 0.7 + (double)t) * 0.1f;
        float lr = 0.01f, decay = (t % 2) ? 0.1f : 0.0f;
        train_adamw(p, g, m, v, N, lr, 0.9f, 0.95f, 1e-8f, decay, t);
        for (int i = 0; i < N; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.95 * vd[i] + 0.05 * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(0.9, (double)t));
            double vh = vd[i] / (1 - pow(0.95, (double)t));
            pd[i] -= lr * (mh / (sqrt(vh) + 1e-8) + decay * pd[i]);
        }
    }
    for (int i = 0; i < N; i++)
        CHECK_NEAR(p[i], pd[i], 1e-5);
}

/* A tensor large enough to be updated on several threads: the same bits
 * with 1 and 2 threads, and as each element updated on its own. */
TEST(adamw_in_parallel_gives_the_serial_bits)
{
    enum { N = 200003 };
    int threads = omp_get_max_threads();
    float *p[3], *m[3], *v[3], *g = malloc(N * sizeof(float));
    for (int k = 0; k < 3; k++) {
        p[k] = malloc(N * sizeof(float));
        m[k] = calloc(N, sizeof(float));
        v[k] = calloc(N, sizeof(float));
        for (int i = 0; i < N; i++) p[k][i] = (float)sin(i * 0.37) * 0.5f;
    }
    for (size_t t = 1; t <= 3; t++) {
        for (int i = 0; i < N; i++) g[i] = (float)cos(i * 0.11 + (double)t) * 0.1f;
        omp_set_num_threads(1);
        train_adamw(p[0], g, m[0], v[0], N, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
        omp_set_num_threads(2);
        train_adamw(p[1], g, m[1], v[1], N, 0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, t);
        for (int i = 0; i < N; i++) /* one element a call: the serial path */
            train_adamw(p[2] + i, g + i, m[2] + i, v[2] + i, 1, 0.01f, 0.9f,
                        0.95f, 1e-8f, 0.1f, t);
    }
    CHECK(!memcmp(p[0], p[1], N * sizeof(float)));
    CHECK(!memcmp(p[0], p[2], N * sizeof(float)));
    CHECK(!memcmp(v[1], v[2], N * sizeof(float)));
    omp_set_num_threads(threads);
    for (int k = 0; k < 3; k++) { free(p[k]); free(m[k]); free(v[k]); }
    free(g);
}

TEST(schedule)
{
    train_options o;
    train_options_default(&o);
    o.steps = 1000;
    o.warmup = 100;
    o.lr = 1e-3f;
    o.min_lr_frac = 0.1f;
    CHECK_NEAR(train_lr(&o, 0), 1e-5, 1e-9);
    CHECK_NEAR(train_lr(&o, 99), 1e-3, 1e-9);
    CHECK_NEAR(train_lr(&o, 100), 1e-3, 1e-9);
    CHECK_NEAR(train_lr(&o, 550), 0.55e-3, 1e-8); /* cosine midpoint */
    CHECK_NEAR(train_lr(&o, 1000), 1e-4, 1e-9);
    CHECK_NEAR(train_lr(&o, 5000), 1e-4, 1e-9);
    for (size_t s = 101; s < 1000; s++)
        CHECK(train_lr(&o, s) <= train_lr(&o, s - 1));
    o.schedule = TRAIN_LINEAR;
    CHECK_NEAR(train_lr(&o, 325), 1e-3 - 0.9e-3 * 0.25, 1e-8);
}

/* the batch loss from scratch: one sequence at a time, full logits */
static double naive_loss(const gpt2_model *m, const size_t *idx, size_t n,
                         train_loss mode)
{
    double sum = 0;
    size_t count = 0, V = m->config.vocab_size;
    gpt2_acts *a = NULL;
    CHECK(gpt2_acts_new(&a, &m->config, 1, 12, 12) == 0);
    for (size_t i = 0; i < n; i++) {
        const train_seq *s = &seqs[idx[i]];
        size_t pos[12];
        for (size_t t = 0; t < s->len; t++)
            pos[t] = t;
        gpt2_batch b = {.tokens = s->tokens, .B = 1, .T = s->len,
                        .logit_pos = pos, .n_logits = s->len};
        CHECK(gpt2_forward(m, a, &b) == 0);
        const float *l = gpt2_acts_logits(a);
        size_t first = mode == TRAIN_LOSS_ANSWER ? s->answer_start - 1 : 0;
        for (size_t t = first; t + 1 < s->len; t++) {
            const float *row = l + t * V;
            double mx = row[0], z = 0;
            for (size_t v = 1; v < V; v++)
                if (row[v] > mx)
                    mx = row[v];
            for (size_t v = 0; v < V; v++)
                z += exp(row[v] - mx);
            sum += -(row[s->tokens[t + 1]] - mx - log(z));
            count++;
        }
    }
    gpt2_acts_free(a);
    return sum / (double)count;
}

TEST(batch_gradient)
{
    gpt2_model m, g1, g3;
    make_model(&m, 11);
    make_model(&g1, 1);
    make_model(&g3, 1);
    /* 19 sequences: three slices of the length-sorted batch (8, 8, 3),
     * each padded to its own longest */
    size_t idx[] = {3, 0, 7, 7, 1, 9, 4, 11, 2, 5, 8, 10, 6, 3, 0, 11, 1,
                    9, 2};
    size_t n = sizeof idx / sizeof idx[0];
    for (int mode = 0; mode < 2; mode++) {
        double l1, l3;
        CHECK(train_batch_grad(&m, seqs, idx, n, (train_loss)mode, 1, &g1,
                               &l1) == 0);
        CHECK(train_batch_grad(&m, seqs, idx, n, (train_loss)mode, 3, &g3,
                               &l3) == 0);
        /* the same mean loss as computed one sequence at a time */
        CHECK_NEAR(l1, naive_loss(&m, idx, n, (train_loss)mode), 1e-4);
        CHECK_NEAR(l1, l3, 1e-5);
        double diff = 0, norm = 0;
        for (size_t i = 0; i < m.num_parameters; i++) {
            diff = fmax(diff, fabs(g1.memory[i] - g3.memory[i]));
            norm = fmax(norm, fabs(g1.memory[i]));
        }
        CHECK_MSG(diff <= 1e-5 * fmax(norm, 1), "max diff %g", diff);
        /* finite differences on a few parameters of every tensor */
        size_t off = 0;
        for (int k = 0; k < GPT2_NUM_TENSORS; k++) {
            for (int r = 0; r < 2; r++) {
                size_t i = off + (size_t)(r * 7919 + k * 31) % m.sizes[k];
                float keep = m.memory[i];
                double h = 1e-2, lp, lm;
                m.memory[i] = keep + (float)h;
                CHECK(train_batch_grad(&m, seqs, idx, n, (train_loss)mode, 2,
                                       NULL, &lp) == 0);
                m.memory[i] = keep - (float)h;
                CHECK(train_batch_grad(&m, seqs, idx, n, (train_loss)mode, 2,
                                       NULL, &lm) == 0);
                m.memory[i] = keep;
                double num = (lp - lm) / (2 * h), ana = g1.memory[i];
                CHECK_MSG(fabs(num - ana) <= 2e-3 + 0.05 * fabs(ana),
                          "mode %d tensor %d: numeric %g analytic %g", mode, k,
                          num, ana);
            }
            off += m.sizes[k];
        }
    }
    gpt2_model_free(&m);
    gpt2_model_free(&g1);
    gpt2_model_free(&g3);
}

TEST(recall_matches_one_at_a_time)
{
    gpt2_model m;
    make_model(&m, 5);
    /* make some answers right: set each answer to the model's argmax */
    gpt2_acts *a = NULL;
    CHECK(gpt2_acts_new(&a, &m.config, 1, 12, 12) == 0);
    size_t V = m.config.vocab_size;
    for (int i = 0; i < NSEQ; i += 2) {
        train_seq *s = &seqs[i];
        for (size_t t = s->answer_start - 1; t + 1 < s->len; t++) {
            size_t pos = t;
            gpt2_batch b = {.tokens = s->tokens, .B = 1, .T = t + 1,
                            .logit_pos = &pos, .n_logits = 1};
            CHECK(gpt2_forward(&m, a, &b) == 0);
            const float *l = gpt2_acts_logits(a);
            size_t best = 0;
            for (size_t v = 1; v < V; v++)
                if (l[v] > l[best])
                    best = v;
            toks[i][t + 1] = (int)best;
        }
    }
    unsigned char ok[NSEQ], ok1[NSEQ];
    double r, r1;
    CHECK(train_recall(&m, seqs, NSEQ, 2, &r, ok) == 0);
    CHECK(train_recall(&m, seqs, NSEQ, 1, &r1, ok1) == 0);
    CHECK(!memcmp(ok, ok1, NSEQ) && r == r1);
    size_t good = 0;
    for (int i = 0; i < NSEQ; i++) {
        double one;
        unsigned char o1;
        CHECK(train_recall(&m, &seqs[i], 1, 1, &one, &o1) == 0);
        CHECK(o1 == ok[i] && one == (double)o1);
        if (i % 2 == 0)
            CHECK(ok[i] == 1);
        good += ok[i];
    }
    CHECK_NEAR(r, (double)good / NSEQ, 1e-12);
    CHECK(good < NSEQ); /* random answers are not all right */
    gpt2_acts_free(a);
    gpt2_model_free(&m);
    make_seqs();
}

static int progress_calls;
static void on_progress(void *ctx, const char *label, size_t done,
                        size_t total)
{
    (void)ctx;
    (void)total;
    CHECK(strstr(label, "step ") && strstr(label, "loss ") &&
          strstr(label, "all "));
    CHECK(done > 0);
    progress_calls++;
}

TEST(memorises_and_is_deterministic)
{
    gpt2_model a, b;
    make_model(&a, 3);
    make_model(&b, 3);
    train_options o;
    train_options_default(&o);
    o.steps = 400;
    o.batch_size = 6;
    o.lr = 1e-2f;
    o.warmup = 10;
    o.threads = 2;
    o.eval_every = 20;
    o.progress = on_progress;
    train_eval ev = {"all", seqs, NSEQ, 1.0};
    train_report ra, rb;
    progress_calls = 0;
    CHECK(train_run(&a, seqs, NSEQ, &ev, 1, &o, &ra) == 0);
    CHECK(progress_calls >= 1);
    CHECK_MSG(ra.recall[0] == 1.0 && ra.reached_goal, "recall %g after %zu",
              ra.recall[0], ra.steps);
    CHECK(ra.steps < 400 && ra.steps % 20 == 0);
    CHECK(ra.loss < 1.0);
    o.progress = NULL;
    CHECK(train_run(&b, seqs, NSEQ, &ev, 1, &o, &rb) == 0);
    CHECK(rb.steps == ra.steps);
    CHECK(!memcmp(a.memory, b.memory, a.num_parameters * sizeof(float)));
    /* another seed: other batches, other weights */
    gpt2_model c;
    make_model(&c, 3);
    o.seed = 2;
    train_report rc;
    CHECK(train_run(&c, seqs, NSEQ, &ev, 1, &o, &rc) == 0);
    CHECK(memcmp(a.memory, c.memory, a.num_parameters * sizeof(float)) != 0);
    /* answer-only loss memorises too */
    gpt2_model d;
    make_model(&d, 3);
    o.loss = TRAIN_LOSS_ANSWER;
    CHECK(train_run(&d, seqs, NSEQ, &ev, 1, &o, &rc) == 0);
    CHECK(rc.recall[0] == 1.0);
    gpt2_model_free(&a);
    gpt2_model_free(&b);
    gpt2_model_free(&c);
    gpt2_model_free(&d);
}

/* The checkpoint test's child: killed (SIGKILL, as by the OOM killer or
 * a machine going down) when the check at kill_at_step is reported, that
 * is before that check's save: the file then holds the check before. */
static size_t kill_at_step;
static void kill_at(void *ctx, const char *label, size_t done, size_t total)
{
    (void)ctx;
    (void)label;
    (void)total;
    if (done == kill_at_step)
        raise(SIGKILL);
}

static void checkpoint_options(train_options *o, const char *path)
{
    train_options_default(o);
    o->steps = 40;
    o->batch_size = 5; /* 12 sequences: epochs end inside batches */
    o->lr = 1e-2f;
    o->warmup = 4;
    o->threads = 2;
    o->eval_every = 6;
    o->checkpoint = path;
}

TEST(a_killed_run_continues_from_its_checkpoint_to_the_same_bytes)
{
    char dir[] = "/tmp/stamp-test-train.XXXXXX", path[64], bytes[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/state", dir);
    train_eval ev = {"all", seqs, NSEQ, 2.0}; /* never stops early */
    train_options o;
    train_report r;
    gpt2_model whole, resumed, other;

    /* the run never stopped, without a checkpoint */
    make_model(&whole, 5);
    checkpoint_options(&o, NULL);
    CHECK(train_run(&whole, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    CHECK(r.checkpoint == CHECKPOINT_ABSENT && r.resumed_from == 0);

    /* a child process killed at the check of step 24: the file holds
     * step 18. The child is this program again (exec: a forked copy of
     * a process that has run OpenMP threads cannot run them) */
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_train", "--killed-child", path,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "child status %d", status);

    /* the next run continues from step 18 and ends where `whole` did */
    make_model(&resumed, 5);
    checkpoint_options(&o, path);
    CHECK(train_run(&resumed, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    CHECK_MSG(r.checkpoint == CHECKPOINT_LOADED && r.resumed_from == 18,
              "status %d, from %zu", (int)r.checkpoint, r.resumed_from);
    CHECK(r.steps == 40);
    CHECK(!memcmp(whole.memory, resumed.memory,
                  whole.num_parameters * sizeof(float)));

    /* the file now holds step 36 of this training; another training
     * (another learning rate) does not continue it but starts over and
     * replaces it */
    make_model(&other, 5);
    checkpoint_options(&o, path);
    o.lr = 5e-3f;
    CHECK(train_run(&other, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    CHECK(r.checkpoint == CHECKPOINT_OTHER && r.resumed_from == 0);
    gpt2_model_free(&other);
    o.checkpoint = NULL;
    gpt2_model again;
    make_model(&again, 5);
    CHECK(train_run(&again, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    make_model(&other, 5);
    o.checkpoint = path; /* continues the file the last run left */
    CHECK(train_run(&other, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    CHECK(r.checkpoint == CHECKPOINT_LOADED && r.resumed_from == 36);
    CHECK(!memcmp(again.memory, other.memory,
                  again.num_parameters * sizeof(float)));

    /* a damaged file (one byte of the weights changed) is not trusted:
     * the run starts over and ends as the run never stopped */
    FILE *f = fopen(path, "r+b");
    CHECK(f && fseek(f, 200, SEEK_SET) == 0);
    int byte = fgetc(f);
    CHECK(fseek(f, 200, SEEK_SET) == 0 && fputc(byte ^ 1, f) != EOF);
    CHECK(fclose(f) == 0);
    gpt2_model_free(&other);
    make_model(&other, 5);
    CHECK(train_run(&other, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    CHECK(r.checkpoint == CHECKPOINT_DAMAGED && r.resumed_from == 0);
    CHECK(!memcmp(again.memory, other.memory,
                  again.num_parameters * sizeof(float)));
    /* and a truncated one */
    CHECK(truncate(path, 100) == 0);
    gpt2_model_free(&other);
    make_model(&other, 5);
    CHECK(train_run(&other, seqs, NSEQ, &ev, 1, &o, &r) == 0);
    CHECK(r.checkpoint == CHECKPOINT_DAMAGED);
    CHECK(!memcmp(again.memory, other.memory,
                  again.num_parameters * sizeof(float)));

    /* a checkpoint that cannot be written is an error, not a silence */
    snprintf(bytes, sizeof bytes, "%s/no/such/dir/state", dir);
    gpt2_model_free(&other);
    make_model(&other, 5);
    o.checkpoint = bytes;
    err_clear();
    CHECK(train_run(&other, seqs, NSEQ, &ev, 1, &o, &r) == ERR_IO);
    CHECK(strstr(err_message(ERR_IO), "no/such/dir/state") != NULL);

    unlink(path);
    rmdir(dir);
    gpt2_model_free(&whole);
    gpt2_model_free(&resumed);
    gpt2_model_free(&other);
    gpt2_model_free(&again);
}

TEST(refuses_bad_input)
{
    gpt2_model m;
    make_model(&m, 3);
    train_options o;
    train_options_default(&o);
    o.steps = 5;
    train_report r;
    int long_toks[13] = {0};
    train_seq bad[] = {{long_toks, 13, 5}};
    err_clear();
    CHECK(train_run(&m, bad, 1, NULL, 0, &o, &r) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "length 13") != NULL);
    int oov[3] = {1, 29, 2};
    train_seq bad2[] = {{oov, 3, 2}};
    CHECK(train_run(&m, bad2, 1, NULL, 0, &o, &r) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "token id 29") != NULL);
    train_seq bad3[] = {{oov, 3, 0}};
    CHECK(train_run(&m, bad3, 1, NULL, 0, &o, &r) == ERR_INVALID);
    CHECK(train_run(&m, seqs, 0, NULL, 0, &o, &r) == ERR_INVALID);
    double rec;
    CHECK(train_recall(&m, bad2, 1, 1, &rec, NULL) == ERR_INVALID);
    /* an absurd learning rate diverges: reported, not hidden */
    o.lr = 1e30f;
    o.warmup = 0;
    o.grad_clip = 0;
    o.weight_decay = 0;
    o.steps = 50;
    int rc = train_run(&m, seqs, NSEQ, NULL, 0, &o, &r);
    CHECK_MSG(rc == ERR_NUMERIC, "rc %d", rc);
    gpt2_model_free(&m);
}

/* The killed child of the checkpoint test: trains with the checkpoint
 * at path until the check of step 24 kills it. */
static int killed_child(const char *path)
{
    gpt2_model m;
    train_options o;
    train_report r;
    train_eval ev = {"all", seqs, NSEQ, 2.0};
    make_model(&m, 5);
    checkpoint_options(&o, path);
    kill_at_step = 24;
    o.progress = kill_at;
    train_run(&m, seqs, NSEQ, &ev, 1, &o, &r);
    return 0; /* not reached */
}

int main(int argc, char **argv)
{
    make_seqs();
    if (argc == 3 && !strcmp(argv[1], "--killed-child"))
        return killed_child(argv[2]);
    RUN(adamw_matches_double_twin);
    RUN(adamw_in_parallel_gives_the_serial_bits);
    RUN(schedule);
    RUN(batch_gradient);
    RUN(recall_matches_one_at_a_time);
    RUN(memorises_and_is_deterministic);
    RUN(a_killed_run_continues_from_its_checkpoint_to_the_same_bytes);
    RUN(refuses_bad_input);
    return harness_summary();
}
