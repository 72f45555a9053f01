/* test_eval: the batched scorer (sequences sorted by length, one
 * workspace per thread) against its naive twin (each pair alone through
 * a full pass), on a random model with a small trained vocabulary; the
 * same bytes with 1 and 2 threads; a pair too long for the context is
 * refused naming its prompt; each fact's outcome (eval_facts) agrees with
 * the pairs it is made of and adds up to the batch's scores. */
#include "../harness.h"
#include "../lm_wrap.h"
#include "../tiny_vocab.h"
#include "base/errors.h"
#include "eval/eval.h"
#include "facts/fact.h"
#include "model/gpt2.h"
#include "model/tokenizer.h"
#include "eval/eval_naive.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static tokenizer *tok;
static gpt2_model model;


static uint64_t rng = 7;
static size_t pick(size_t n) { return tiny_pick(&rng, n); }

/* n random phrases of 1..max_words words, written into buf */
static void phrases(char (*buf)[200], size_t n, size_t max_words,
                    const char *lead)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 1 + pick(max_words), at = 0;
        at += (size_t)snprintf(buf[i] + at, 200 - at, "%s", lead);
        for (size_t w = 0; w < k; w++)
            at += (size_t)snprintf(buf[i] + at, 200 - at, "%s%s",
                                   w || lead[0] ? " " : "",
                                   tiny_words[pick(TINY_N_WORDS)]);
    }
}

static int setup(void)
{
    if (tiny_vocab_open(tmpdir, &tok)) return 1;
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 32,
                     .n_positions = 64,
                     .vocab_size = tokenizer_vocab_size(tok)};
    if (gpt2_model_init(&model, &c)) return 1;
    gpt2_model_init_random(&model, 3);
    return 0;
}

static void set_threads(int n)
{
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

TEST(batched_scores_match_the_naive_twin)
{
    enum { N = 150 };
    static char prompts[N][200], targets[N][200];
    phrases(prompts, N, 12, "");
    phrases(targets, N, 3, "");
    eval_pair pairs[N];
    for (size_t i = 0; i < N; i++) pairs[i] = (eval_pair){prompts[i], targets[i]};
    double nll1[N], nll2[N], nll3[N];
    int top1[N], top2[N], top3[N];
    set_threads(2);
    CHECK(eval_score_pairs(lm_of(&model), tok, pairs, N, nll1, top1) == 0);
    CHECK(eval_score_pairs_naive(lm_of(&model), tok, pairs, N, nll2, top2) == 0);
    set_threads(1);
    CHECK(eval_score_pairs(lm_of(&model), tok, pairs, N, nll3, top3) == 0);
    set_threads(2);
    size_t bad = 0, same_top = 0;
    for (size_t i = 0; i < N; i++) {
        bad += !(fabs(nll1[i] - nll2[i]) <= 1e-4 * (1 + fabs(nll2[i])));
        same_top += top1[i] == top2[i];
    }
    CHECK_MSG(bad == 0, "%zu of %d NLLs differ from the naive scorer", bad, N);
    CHECK_MSG(same_top == N, "top-1 differs for %zu pairs", N - same_top);
    CHECK(!memcmp(nll1, nll3, sizeof nll1) && !memcmp(top1, top3, sizeof top1));
}

TEST(a_pair_over_the_context_is_refused)
{
    static char p[800];
    size_t at = 0;
    for (int w = 0; w < 70; w++) /* 70 tokens at least: over 64 */
        at += (size_t)snprintf(p + at, sizeof p - at, "river ");
    eval_pair pairs[2] = {{"the river", " Paris"}, {p, " Paris"}};
    double nll[2];
    int rc = eval_score_pairs(lm_of(&model), tok, pairs, 2, nll, NULL);
    CHECK(rc == ERR_INVALID);
    CHECK(strstr(err_message(rc), "river river") != NULL);
    err_clear();
}

TEST(each_facts_outcome_adds_up_to_the_scores)
{
    char *para[2] = {"Danielle speaks", "the mother tongue of Danielle is"};
    char *nprompt[3] = {"Paris is located in", "BBC is located in",
                        "the river of Japan is"};
    char *ntarget[3] = {" Japan", " Paris", " French"};
    fact facts[4] = {
        {.subject = "Danielle", .prompt = "{} plays the",
         .target_new = " piano", .target_true = " guitar",
         .n_paraphrases = 2, .paraphrases = para,
         .n_neighbors = 3, .neighbor_prompts = nprompt,
         .neighbor_targets = ntarget},
        {.subject = "river", .prompt = "the {} is located in",
         .target_new = " Paris", .target_true = " Japan"},
        {.subject = "BBC", .prompt = "{} works for",
         .target_new = " a citizen", .target_true = ""}, /* not scored */
        {.subject = "mother", .prompt = "the {} speaks",
         .target_new = " French", .target_true = " the river",
         .n_neighbors = 1, .neighbor_prompts = nprompt,
         .neighbor_targets = ntarget},
    };
    eval_scores sc;
    eval_fact_outcome each[4];
    CHECK(eval_facts(lm_of(&model), tok, facts, 4, &sc, each, NULL, NULL) == 0);
    CHECK(sc.n_facts == 3);
    CHECK(each[0].scored && each[1].scored && !each[2].scored && each[3].scored);
    CHECK(each[1].ps == -1 && each[1].ns == -1 && each[3].ps == -1);
    double es = 0, ps = 0, ns = 0;
    size_t n_ps = 0, n_ns = 0;
    for (size_t i = 0; i < 4; i++) {
        if (!each[i].scored) continue;
        char *text = fact_prompt_text(&facts[i]);
        eval_pair pairs[2] = {{text, facts[i].target_new},
                              {text, facts[i].target_true}};
        double nll[2];
        CHECK(eval_score_pairs_naive(lm_of(&model), tok, pairs, 2, nll, NULL) == 0);
        free(text);
        CHECK(fabs(each[i].p_new - exp(-nll[0])) < 1e-6);
        CHECK(fabs(each[i].p_true - exp(-nll[1])) < 1e-6);
        CHECK(each[i].es == (nll[0] < nll[1]));
        es += each[i].es;
        if (each[i].ps >= 0) ps += each[i].ps, n_ps++;
        if (each[i].ns >= 0) ns += each[i].ns, n_ns++;
    }
    CHECK(fabs(sc.es - 100 * es / 3) < 1e-9);
    CHECK(n_ps == 1 && fabs(sc.ps - 100 * ps) < 1e-9);
    CHECK(n_ns == 2 && fabs(sc.ns - 100 * ns / 2) < 1e-9);
    /* without the outcomes: the same scores */
    eval_scores again;
    CHECK(eval_facts(lm_of(&model), tok, facts, 4, &again, NULL, NULL, NULL) == 0);
    CHECK(!memcmp(&sc, &again, sizeof sc));
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_eval.XXXXXX");
    if (!mkdtemp(tmpdir) || setup()) {
        fprintf(stderr, "test_eval: setup failed: %s\n", err_message(1));
        return 1;
    }
    RUN(batched_scores_match_the_naive_twin);
    RUN(a_pair_over_the_context_is_refused);
    RUN(each_facts_outcome_adds_up_to_the_scores);
    tokenizer_close(tok);
    gpt2_model_free(&model);
    tiny_vocab_remove(tmpdir);
    return harness_summary();
}
