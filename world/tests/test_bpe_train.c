/* test_bpe_train: the BPE trainer against its naive twin, its files
 * against the tokenizer (they load, every text round-trips, learned words
 * become single tokens) and its byte alphabet against GPT-2's own
 * vocab.json (tests/data/gpt2-vocab). */
#include "world/bpe_train.h"
#include "base/errors.h"
#include "model/tokenizer.h"
#include "tests/harness.h"
#include "world/bpe_train_naive.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

/* A corpus with repetition, digits, punctuation, runs of spaces, tabs,
 * contractions and multi-byte letters. */
static char *make_text(size_t *len, unsigned seed)
{
    static const char *words[] = {
        "the", "violin", "Paris", "citizen", "of", "plays", "Zorvan",
        "Kelmarsk", "don't", "we'll", "café", "naïve", "Ελλάδα", "東京",
        "2024", "42", "!!", "...", "—", "über", "Straße", "it's", "A",
        "zzz", "aaaa", "ab", "abab", "🙂"};
    size_t nw = sizeof words / sizeof words[0], cap = 1 << 16, n = 0;
    char *t = malloc(cap);
    unsigned s = seed;
    for (int i = 0; i < 3000; i++) {
        s = s * 1103515245u + 12345u;
        const char *w = words[(s >> 8) % nw];
        const char *sep = (s >> 20) % 11 == 0 ? "\n" : (s >> 20) % 13 == 0
                                                           ? "  \t "
                                                           : " ";
        n += (size_t)snprintf(t + n, cap - n, "%s%s", w, sep);
    }
    *len = n;
    return t;
}

static int same_result(const bpe_train_result *a, const bpe_train_result *b)
{
    if (a->n_tokens != b->n_tokens || a->n_merges != b->n_merges)
        return 0;
    for (size_t i = 0; i < a->n_tokens; i++)
        if (a->token_len[i] != b->token_len[i] ||
            memcmp(a->tokens[i], b->tokens[i], a->token_len[i]))
            return 0;
    return !memcmp(a->merges, b->merges, a->n_merges * sizeof a->merges[0]);
}

TEST(fast_equals_naive)
{
    for (unsigned seed = 1; seed <= 3; seed++) {
        size_t len;
        char *text = make_text(&len, seed);
        size_t sizes[] = {257, 300, 400, 2000};
        for (size_t k = 0; k < 4; k++) {
            bpe_train_options o = {.vocab_size = sizes[k]};
            bpe_train_result a, b;
            CHECK(bpe_train_run(&a, text, len, &o) == 0);
            CHECK(bpe_train_naive(&b, text, len, &o) == 0);
            CHECK_MSG(same_result(&a, &b), "seed %u vocab %zu", seed,
                      sizes[k]);
            CHECK(a.n_tokens <= sizes[k]);
            if (sizes[k] <= 300)
                CHECK(a.n_tokens == sizes[k]);
            bpe_train_free(&a);
            bpe_train_free(&b);
        }
        free(text);
    }
}

TEST(min_frequency_and_exhaustion)
{
    /* "ab ab ab cd": with min_frequency 2 only pairs of "ab"/" ab" merge */
    const char *t = "ab ab ab cd";
    bpe_train_options o = {.vocab_size = 1000};
    bpe_train_result r;
    CHECK(bpe_train_run(&r, t, strlen(t), &o) == 0);
    /* pairs seen twice or more: (a,b) x3 -> "ab"; (' ',ab) x2 -> " ab" */
    CHECK(r.n_merges == 2);
    CHECK(r.n_tokens == 256 + 2 + 1);
    CHECK(r.token_len[256] == 2 && !memcmp(r.tokens[256], "ab", 2));
    CHECK(r.token_len[257] == 3 && !memcmp(r.tokens[257], " ab", 3));
    CHECK(r.token_len[258] == 13 &&
          !memcmp(r.tokens[258], "<|endoftext|>", 13));
    bpe_train_free(&r);
    o.min_frequency = 4;
    CHECK(bpe_train_run(&r, t, strlen(t), &o) == 0);
    CHECK(r.n_merges == 0 && r.n_tokens == 257);
    bpe_train_free(&r);
}

TEST(ties_break_by_bytes)
{
    /* (d,c), (b,a) and (" ",b) occur twice each: the pair whose left
     * token sorts first, " " + "b", merges first */
    const char *t = "dc ba dc ba";
    bpe_train_options o = {.vocab_size = 258};
    bpe_train_result r;
    CHECK(bpe_train_run(&r, t, strlen(t), &o) == 0);
    CHECK(r.n_merges == 1);
    CHECK(r.token_len[256] == 2 && !memcmp(r.tokens[256], " b", 2));
    bpe_train_free(&r);
}

TEST(bad_input)
{
    bpe_train_options o = {.vocab_size = 300};
    bpe_train_result r;
    const char bad[] = "good text \xff\xfe then bad";
    err_clear();
    int rc = bpe_train_run(&r, bad, sizeof bad - 1, &o);
    CHECK(rc == ERR_FORMAT);
    CHECK_MSG(strstr(err_message(rc), "byte 10") != NULL, "%s",
              err_message(rc));
    CHECK(r.n_tokens == 0 && r.tokens == NULL);
    CHECK(bpe_train_naive(&r, bad, sizeof bad - 1, &o) == ERR_FORMAT);
    o.vocab_size = 256;
    CHECK(bpe_train_run(&r, "abc", 3, &o) == ERR_INVALID);
    o.vocab_size = 300;
    CHECK(bpe_train_run(&r, "", 0, &o) == 0);
    CHECK(r.n_tokens == 257);
    bpe_train_free(&r);
    bpe_train_free(NULL);
    CHECK(bpe_train_write(&r, "/nonexistent/dir") != 0);
}

static char *slurp(const char *path, size_t *n)
{
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

TEST(files_load_in_the_tokenizer_and_round_trip)
{
    size_t len;
    char *text = make_text(&len, 7);
    bpe_train_options o = {.vocab_size = 600};
    bpe_train_result r;
    CHECK(bpe_train_run(&r, text, len, &o) == 0);
    CHECK(bpe_train_write(&r, tmpdir) == 0);
    char path[128];
    snprintf(path, sizeof path, "%s/merges.txt", tmpdir);
    size_t n;
    char *merges = slurp(path, &n);
    CHECK(merges && !strncmp(merges, "#version: 0.2\n", 14));
    free(merges);

    tokenizer *tok = NULL;
    int rc = tokenizer_open_dir(&tok, tmpdir);
    CHECK_MSG(rc == 0, "%s", err_message(rc));
    if (!tok) {
        bpe_train_free(&r);
        free(text);
        return;
    }
    CHECK(tokenizer_vocab_size(tok) == r.n_tokens);
    /* every id's bytes are the trainer's */
    for (size_t id = 0; id < r.n_tokens; id++) {
        size_t bl;
        const char *b = tokenizer_token_bytes(tok, (int)id, &bl);
        CHECK(b && bl == r.token_len[id] && !memcmp(b, r.tokens[id], bl));
    }
    /* GPT-2's conventions: 'Ġ' (the space byte) is id 220, EOT is last */
    size_t bl;
    const char *b = tokenizer_token_bytes(tok, 220, &bl);
    CHECK(b && bl == 1 && b[0] == ' ');
    b = tokenizer_token_bytes(tok, (int)r.n_tokens - 1, &bl);
    CHECK(b && bl == 13 && !memcmp(b, "<|endoftext|>", 13));

    const char *samples[] = {
        "the violin of Paris", "Zorvan Kelmarsk plays the violin",
        "café naïve 東京 🙂", "never seen: qwxj \x01\x7f tabs\t\tand  spaces",
        "don't we'll it's", ""};
    for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        int *ids = NULL;
        size_t ni = 0;
        CHECK(tokenizer_encode(tok, samples[k], strlen(samples[k]), &ids,
                               &ni) == 0);
        char *back = NULL;
        size_t bn = 0;
        CHECK(tokenizer_decode(tok, ids, ni, &back, &bn) == 0);
        CHECK_MSG(back && bn == strlen(samples[k]) &&
                      !memcmp(back, samples[k], bn),
                  "sample %zu", k);
        free(ids);
        free(back);
    }
    /* the whole corpus round-trips too, in fewer tokens than bytes */
    int *ids = NULL;
    size_t ni = 0;
    CHECK(tokenizer_encode(tok, text, len, &ids, &ni) == 0);
    CHECK(ni < len / 2);
    char *back = NULL;
    size_t bn = 0;
    CHECK(tokenizer_decode(tok, ids, ni, &back, &bn) == 0);
    CHECK(bn == len && back && !memcmp(back, text, len));
    free(ids);
    free(back);
    /* frequent words are learned as one token */
    const char *words[] = {" violin", " citizen", " Kelmarsk"};
    for (size_t k = 0; k < 3; k++) {
        CHECK(tokenizer_encode(tok, words[k], strlen(words[k]), &ids, &ni) ==
              0);
        CHECK_MSG(ni == 1, "'%s' is %zu tokens", words[k], ni);
        free(ids);
    }
    tokenizer_close(tok);
    bpe_train_free(&r);
    free(text);
}

TEST(deterministic_files)
{
    size_t len;
    char *text = make_text(&len, 3);
    bpe_train_options o = {.vocab_size = 500};
    char *first[2] = {NULL, NULL};
    size_t flen[2] = {0, 0};
    const char *names[2] = {"vocab.json", "merges.txt"};
    for (int round = 0; round < 2; round++) {
        bpe_train_result r;
        CHECK(bpe_train_run(&r, text, len, &o) == 0);
        CHECK(bpe_train_write(&r, tmpdir) == 0);
        bpe_train_free(&r);
        for (int k = 0; k < 2; k++) {
            char path[128];
            snprintf(path, sizeof path, "%s/%s", tmpdir, names[k]);
            size_t n;
            char *p = slurp(path, &n);
            CHECK(p != NULL);
            if (round == 0) {
                first[k] = p;
                flen[k] = n;
            } else {
                CHECK(p && n == flen[k] && !memcmp(p, first[k], n));
                free(p);
            }
        }
    }
    free(first[0]);
    free(first[1]);
    free(text);
}

TEST(byte_alphabet_is_gpt2s)
{
    json_error_t e;
    json_t *v = json_load_file("tests/data/gpt2-vocab/vocab.json", 0, &e);
    CHECK_MSG(v != NULL, "%s", e.text);
    if (!v)
        return;
    bpe_train_result r;
    bpe_train_options o = {.vocab_size = 257};
    CHECK(bpe_train_run(&r, "", 0, &o) == 0);
    for (size_t id = 0; id < 256; id++) {
        unsigned char byte = (unsigned char)r.tokens[id][0];
        uint32_t c = bpe_train_byte_char(byte);
        char s[3] = {0};
        if (c < 0x80) {
            s[0] = (char)c;
        } else {
            s[0] = (char)(0xC0 | (c >> 6));
            s[1] = (char)(0x80 | (c & 0x3F));
        }
        json_t *idv = json_object_get(v, s);
        CHECK_MSG(idv && json_integer_value(idv) == (json_int_t)id,
                  "byte %u", byte);
    }
    bpe_train_free(&r);
    json_decref(v);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_bpe_train.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(fast_equals_naive);
    RUN(min_frequency_and_exhaustion);
    RUN(ties_break_by_bytes);
    RUN(bad_input);
    RUN(files_load_in_the_tokenizer_and_round_trip);
    RUN(deterministic_files);
    RUN(byte_alphabet_is_gpt2s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_summary();
}
