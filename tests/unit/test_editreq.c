/* test_editreq: the context-prefix sampler (all rows in one pass per
 * token) against its naive twin (the rows one after another, a full pass
 * per token, the top ten by repeated selection): the same strings on a
 * random GPT-2 and on a random Llama saved in BF16 and loaded from its
 * directory, with rows cut at the model's positions (a start word that
 * does not fit refused, named), with logits that
 * tie everywhere (the lower id first), at 1 and 2 threads; the same seed
 * gives the same prefixes, another seed others. */
#include "../harness.h"
#include "../lm_wrap.h"
#include "../tiny_vocab.h"
#include "base/errors.h"
#include "memit/editreq.h"
#include "memit/editreq_naive.h"
#include "model/gpt2.h"
#include "model/llama_train.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static tokenizer *tok;

/* n prefixes of `tokens` tokens by both samplers: 1 when they agree;
 * the batched ones are left in *keep when it is not NULL */
static int same_prefixes(const lm_model *m, size_t n, size_t tokens,
                         uint64_t seed, char ***keep)
{
    char **fast = NULL, **slow = NULL;
    int rc = editreq_prefixes(&fast, m, tok, n, tokens, seed);
    if (!rc) rc = editreq_prefixes_naive(&slow, m, tok, n, tokens, seed);
    if (rc) fprintf(stderr, "  prefixes: %s\n", err_message(rc));
    int ok = rc == 0;
    for (size_t i = 0; ok && i < n; i++) {
        if (strcmp(fast[i], slow[i])) {
            fprintf(stderr, "  prefix %zu: '%s' against the twin's '%s'\n", i,
                    fast[i], slow[i]);
            ok = 0;
        }
    }
    editreq_prefixes_free(slow, n);
    if (keep && ok) *keep = fast;
    else editreq_prefixes_free(fast, n);
    return ok;
}

static void gpt2_random(gpt2_model *g, size_t positions, uint64_t seed)
{
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 32,
                     .n_positions = positions,
                     .vocab_size = tokenizer_vocab_size(tok),
                     .layer_norm_epsilon = 1e-5f};
    CHECK(gpt2_model_init(g, &c) == 0);
    gpt2_model_init_random(g, seed);
    /* a sharper head: a fresh init's next-token distribution is flat */
    for (size_t i = 0; i < c.vocab_size * c.n_embd; i++) g->p.wte[i] *= 4;
}

TEST(gpt2_rows_in_one_pass_match_the_twin)
{
    gpt2_model g;
    gpt2_random(&g, 64, 5);
    char **p = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        CHECK(same_prefixes(lm_of(&g), 7, 6, 11, NULL));
    }
    /* deterministic for a seed; another seed draws others */
    CHECK(same_prefixes(lm_of(&g), 5, 6, 11, &p));
    char **again = NULL, **other = NULL;
    CHECK(editreq_prefixes(&again, lm_of(&g), tok, 5, 6, 11) == 0);
    CHECK(editreq_prefixes(&other, lm_of(&g), tok, 5, 6, 12) == 0);
    int same = 1, differ = 0;
    for (size_t i = 0; p && again && other && i < 5; i++) {
        same &= !strcmp(p[i], again[i]);
        differ |= !!strcmp(p[i], other[i]);
        CHECK(!strchr(p[i], '{') && !strchr(p[i], '}') && !strchr(p[i], '\n'));
    }
    CHECK(same && differ);
    editreq_prefixes_free(p, 5);
    editreq_prefixes_free(again, 5);
    editreq_prefixes_free(other, 5);
    /* no prefixes: an empty list */
    char **none = NULL;
    CHECK(editreq_prefixes(&none, lm_of(&g), tok, 0, 6, 1) == 0 && none);
    editreq_prefixes_free(none, 0);
    gpt2_model_free(&g);
}

TEST(rows_cut_at_the_models_positions_match_the_twin)
{
    /* 9 positions: "Therefore" (7 tokens in the tiny vocabulary) gets 2
     * more, the one-token starts 8 */
    gpt2_model g;
    gpt2_random(&g, 9, 6);
    CHECK(same_prefixes(lm_of(&g), 5, 10, 3, NULL));
    gpt2_model_free(&g);
    /* 4 positions: a start that does not fit is refused, named */
    gpt2_random(&g, 4, 6);
    char **p = NULL;
    int rc = editreq_prefixes(&p, lm_of(&g), tok, 5, 10, 3);
    CHECK(rc == ERR_FORMAT && p == NULL);
    CHECK_MSG(strstr(err_message(rc), "'Therefore' takes 7 tokens; the model has 4 positions"),
              "%s", err_message(rc));
    gpt2_model_free(&g);
}

TEST(tied_logits_take_the_lower_ids_as_the_twin_does)
{
    gpt2_model g;
    gpt2_random(&g, 64, 7);
    /* a zero embedding table: every logit equal, every id a tie */
    memset(g.p.wte, 0, g.config.vocab_size * g.config.n_embd * sizeof(float));
    CHECK(same_prefixes(lm_of(&g), 5, 4, 9, NULL));
    gpt2_model_free(&g);
}

TEST(llama_bf16_rows_in_one_pass_match_the_twin)
{
    llama_config c = {.arch = LLAMA_ARCH_LLAMA, .n_layer = 2, .n_embd = 32,
                      .n_inner = 64, .n_head = 4, .n_kv_head = 2, .head_dim = 8,
                      .vocab_size = tokenizer_vocab_size(tok), .n_positions = 64,
                      .rms_norm_eps = 1e-5f, .rope_theta = 10000,
                      .tie_word_embeddings = true, .bos_token_id = -1};
    llama_model t;
    CHECK(llama_model_init_random(&t, &c, 4) == 0);
    for (size_t i = 0; i < t.n_params; i++) t.params[i] *= 20; /* a sharper head */
    char dir[96];
    snprintf(dir, sizeof dir, "%s/llama", tmpdir);
    CHECK(llama_model_save(&t, dir, ST_BF16) == 0);
    llama_model_free(&t);
    lm_model m;
    int rc = lm_model_load(&m, dir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (!rc) {
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            CHECK(same_prefixes(&m, 6, 5, 21, NULL));
        }
        lm_model_free(&m);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_editreq.XXXXXX");
    if (!mkdtemp(tmpdir) || tiny_vocab_open(tmpdir, &tok)) {
        fprintf(stderr, "test_editreq: setup failed: %s\n", err_message(1));
        return 1;
    }
    RUN(gpt2_rows_in_one_pass_match_the_twin);
    RUN(rows_cut_at_the_models_positions_match_the_twin);
    RUN(tied_logits_take_the_lower_ids_as_the_twin_does);
    RUN(llama_bf16_rows_in_one_pass_match_the_twin);
    tokenizer_close(tok);
    tiny_vocab_remove(tmpdir);
    return harness_summary();
}
