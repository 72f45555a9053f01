/* test_keystats_sum: the key statistics over a corpus (keystats_sum_accumulate,
 * which gathers the keys of several forward batches before each float
 * sum) against naive loops over each line's keys alone, on a random model
 * with a small trained vocabulary; enough lines for several flushes and a
 * partial last one; a corpus taken in two parts (as `stamp stats
 * --samples` extends) sums to the same keys as in one. A stored record
 * decoded straight to the upper triangle of its mean gives
 * keystats_sum_take_mean's bits there and leaves the lower triangle
 * unwritten, and the Cholesky factor made in place on it is
 * spd_cholesky's, bit for bit, with the lower triangle untouched (what
 * lets a commit keep each layer's factor in a triangle's memory).
 * Keys added at a width of several tiles (keystats_sum_add) give the
 * same bits with 1 and 2 threads, and the naive twin's sums within float
 * rounding. */
#include "../harness.h"
#include "../lm_wrap.h"
#include "../tiny_vocab.h"
#include "base/errors.h"
#include "memit/keystats_sum.h"
#include "model/gpt2.h"
#include "model/tokenizer.h"
#include "memit/keystats_sum_naive.h"
#include "memit/spd.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static tokenizer *tok;
static gpt2_model model;

enum { N_LINES = 1200 };
static char lines[N_LINES][400];
static char *texts[N_LINES];

static uint64_t rng = 11;
static size_t pick(size_t n) { return tiny_pick(&rng, n); }

static int setup(void)
{
    if (tiny_vocab_open(tmpdir, &tok)) return 1;
    gpt2_config c = {.n_layer = 3, .n_head = 2, .n_embd = 16,
                     .n_inner = 48, .n_positions = 32,
                     .vocab_size = tokenizer_vocab_size(tok)};
    if (gpt2_model_init(&model, &c)) return 1;
    gpt2_model_init_random(&model, 5);
    /* lines of 1..40 words: some longer than the context, cut there */
    for (size_t i = 0; i < N_LINES; i++) {
        size_t k = 1 + pick(40), len = 0;
        for (size_t w = 0; w < k; w++)
            len += (size_t)snprintf(lines[i] + len, sizeof lines[i] - len,
                                    "%s%s", w ? " " : "", tiny_words[pick(TINY_N_WORDS)]);
        texts[i] = lines[i];
    }
    return 0;
}

/* the naive twin: each line alone through the model, its keys summed by
 * plain loops */
static int naive_stats(keystats_sum *cov, const size_t *layers, size_t nl,
                       size_t from, size_t to)
{
    size_t maxT = model.config.n_positions;
    gpt2_acts *a = NULL;
    if (gpt2_acts_new(&a, &model.config, 1, maxT, 1)) return 1;
    for (size_t i = from; i < to; i++) {
        int *ids = NULL;
        size_t len = 0;
        if (tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids, &len))
            return 1;
        if (len > maxT) len = maxT;
        gpt2_batch b = {.tokens = ids, .B = 1, .T = len};
        if (gpt2_forward(&model, a, &b)) return 1;
        for (size_t j = 0; j < nl; j++) {
            keystats_sum_add_naive(&cov[j], gpt2_acts_mlp_key(a, layers[j]), len);
            cov[j].sequences++;
        }
        free(ids);
    }
    gpt2_acts_free(a);
    return 0;
}

static double worst_relative(const keystats_sum *a, const keystats_sum *b)
{
    size_t F = a->F;
    double worst = 0, scale = 0;
    for (size_t i = 0; i < F * F; i++) scale = fmax(scale, fabs(b->sum[i]));
    for (size_t i = 0; i < F * F; i++)
        worst = fmax(worst, fabs(a->sum[i] - b->sum[i]) / scale);
    return worst;
}

TEST(corpus_statistics_match_each_lines_keys_summed_naively)
{
    size_t layers[2] = {0, 2}, F = model.config.n_inner;
    keystats_sum fast[2], slow[2];
    for (int j = 0; j < 2; j++) {
        CHECK(keystats_sum_init(&fast[j], F) == 0);
        CHECK(keystats_sum_init(&slow[j], F) == 0);
    }
    CHECK(keystats_sum_accumulate(fast, layers, 2, lm_of(&model), tok, texts, N_LINES,
                                NULL, NULL) == 0);
    CHECK(naive_stats(slow, layers, 2, 0, N_LINES) == 0);
    for (int j = 0; j < 2; j++) {
        /* several sums of gathered keys and a partial last one */
        CHECK_MSG(fast[j].tokens > 3 * KEYSTATS_SUM_FLUSH_KEYS &&
                  fast[j].tokens % KEYSTATS_SUM_FLUSH_KEYS != 0,
                  "%llu keys", (unsigned long long)fast[j].tokens);
        CHECK(fast[j].tokens == slow[j].tokens);
        CHECK(fast[j].sequences == N_LINES && slow[j].sequences == N_LINES);
        double w = worst_relative(&fast[j], &slow[j]);
        CHECK_MSG(w < 1e-5, "layer %zu: worst relative difference %g",
                  layers[j], w);
    }
    /* the layers are not the same statistics */
    CHECK(worst_relative(&fast[0], &fast[1]) > 1e-3);
    for (int j = 0; j < 2; j++) {
        keystats_sum_free(&fast[j]);
        keystats_sum_free(&slow[j]);
    }
}

TEST(a_corpus_in_two_parts_sums_the_same_keys)
{
    size_t layer = 1, F = model.config.n_inner, cut = 257;
    keystats_sum once, twice;
    CHECK(keystats_sum_init(&once, F) == 0);
    CHECK(keystats_sum_init(&twice, F) == 0);
    CHECK(keystats_sum_accumulate(&once, &layer, 1, lm_of(&model), tok, texts, N_LINES,
                                NULL, NULL) == 0);
    CHECK(keystats_sum_accumulate(&twice, &layer, 1, lm_of(&model), tok, texts, cut,
                                NULL, NULL) == 0);
    CHECK(twice.sequences == cut);
    CHECK(keystats_sum_accumulate(&twice, &layer, 1, lm_of(&model), tok, texts + cut,
                                N_LINES - cut, NULL, NULL) == 0);
    CHECK(once.tokens == twice.tokens && once.sequences == twice.sequences);
    CHECK(worst_relative(&once, &twice) < 1e-5);
    keystats_sum_free(&once);
    keystats_sum_free(&twice);
}

TEST(a_record_decodes_to_the_upper_mean_and_factors_in_place)
{
    size_t layer = 2, F = model.config.n_inner, G = 0;
    keystats_sum c, d;
    void *blob = NULL;
    size_t len = 0;
    uint64_t tokens = 0, seqs = 0;
    double *full = NULL, *upper = NULL, *U = NULL;
    CHECK(keystats_sum_init(&c, F) == 0);
    CHECK(keystats_sum_accumulate(&c, &layer, 1, lm_of(&model), tok, texts,
                                  400, NULL, NULL) == 0);
    CHECK(keystats_sum_encode(&c, &blob, &len) == 0);
    CHECK(keystats_sum_peek(blob, len, &G, &tokens, &seqs) == 0);
    CHECK(G == F && tokens == c.tokens && seqs == 400);
    CHECK(keystats_sum_peek(blob, len - 8, NULL, NULL, NULL) == ERR_FORMAT);
    CHECK(keystats_sum_decode(&d, blob, len) == 0);
    CHECK(keystats_sum_take_mean(&d, &full) == 0);
    CHECK(keystats_sum_decode_mean_upper(blob, len, &upper, &G) == 0);
    CHECK(G == F);
    int same = 1, zeros = 1;
    for (size_t i = 0; i < F; i++)
        for (size_t j = 0; j < F; j++) {
            if (j >= i) same &= !memcmp(&upper[i * F + j], &full[i * F + j],
                                        sizeof(double));
            else zeros &= upper[i * F + j] == 0;
        }
    CHECK_MSG(same, "the upper triangle differs from take_mean's bits");
    CHECK_MSG(zeros, "the lower triangle was written");
    /* in place, with NaN below the diagonal: never read, never written */
    spd_add_ridge(full, F, 1e-3);
    spd_add_ridge(upper, F, 1e-3);
    for (size_t i = 1; i < F; i++)
        for (size_t j = 0; j < i; j++) upper[i * F + j] = NAN;
    CHECK(spd_cholesky(full, F, &U) == 1);
    CHECK(spd_cholesky_in_place(upper, F) == 1);
    same = 1;
    int untouched = 1;
    for (size_t i = 0; i < F; i++)
        for (size_t j = 0; j < F; j++) {
            if (j >= i) same &= !memcmp(&upper[i * F + j], &U[i * F + j],
                                        sizeof(double));
            else untouched &= isnan(upper[i * F + j]);
        }
    CHECK_MSG(same, "the factor in place differs from spd_cholesky's bits");
    CHECK_MSG(untouched, "the factor in place touched the lower triangle");
    /* a singular matrix: 0, as spd_cholesky says */
    memset(upper, 0, F * F * sizeof *upper);
    CHECK(spd_cholesky_in_place(upper, F) == 0);
    keystats_sum z;
    CHECK(keystats_sum_init(&z, F) == 0);
    free(blob);
    CHECK(keystats_sum_encode(&z, &blob, &len) == 0);
    free(upper);
    CHECK(keystats_sum_decode_mean_upper(blob, len, &upper, &G) == ERR_EMPTY);
    CHECK(upper == NULL);
    err_clear();
    keystats_sum_free(&z);
    keystats_sum_free(&c);
    free(blob);
    free(full);
    free(U);
}

TEST(keys_add_to_the_same_bits_with_one_and_two_threads)
{
    enum { F = 600, N = 700 }; /* three tiles a side, the last a short one */
    float *keys = malloc((size_t)N * F * sizeof(float));
    uint64_t r = 99;
    for (size_t i = 0; i < (size_t)N * F; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        keys[i] = (float)((double)(r >> 40) / (double)(1ull << 24) - 0.5);
    }
    keystats_sum one, two, slow;
    CHECK(keystats_sum_init(&one, F) == 0 && keystats_sum_init(&two, F) == 0 &&
          keystats_sum_init(&slow, F) == 0);
    omp_set_num_threads(1);
    keystats_sum_add(&one, keys, N);
    omp_set_num_threads(2);
    keystats_sum_add(&two, keys, N);
    keystats_sum_add_naive(&slow, keys, N);
    CHECK(!memcmp(one.sum, two.sum, (size_t)F * F * sizeof(double)));
    double worst = 0;
    for (size_t i = 0; i < (size_t)F * F; i++) {
        double d = fabs(one.sum[i] - slow.sum[i]) / (1 + fabs(slow.sum[i]));
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-4, "worst relative difference %g", worst);
    keystats_sum_free(&one);
    keystats_sum_free(&two);
    keystats_sum_free(&slow);
    free(keys);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_keystats_sum.XXXXXX");
    if (!mkdtemp(tmpdir) || setup()) {
        fprintf(stderr, "test_keystats_sum: setup failed\n");
        return 1;
    }
    RUN(corpus_statistics_match_each_lines_keys_summed_naively);
    RUN(a_corpus_in_two_parts_sums_the_same_keys);
    RUN(a_record_decodes_to_the_upper_mean_and_factors_in_place);
    RUN(keys_add_to_the_same_bits_with_one_and_two_threads);
    tokenizer_close(tok);
    gpt2_model_free(&model);
    tiny_vocab_remove(tmpdir);
    return harness_summary();
}
