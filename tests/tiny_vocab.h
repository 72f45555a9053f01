/* tiny_vocab: for unit tests that put real text through a small random
 * model (test_eval, test_keystats_sum): a handful of words, a BPE
 * vocabulary trained on them in a directory, a random word picker. */
#ifndef STAMP_TINY_VOCAB_H
#define STAMP_TINY_VOCAB_H

#include "world/bpe_train.h"
#include "model/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const char *tiny_words[] = {
    "the", "river", "Paris", "speaks", "plays", "guitar", "mother",
    "tongue", "of", "is", "French", "located", "in", "Danielle", "works",
    "for", "BBC", "a", "citizen", "Japan", "piano", "born"};
#define TINY_N_WORDS (sizeof tiny_words / sizeof tiny_words[0])

/* a vocabulary of 300 tokens trained on the words, written to dir and
 * opened; 0 or an error code */
static int tiny_vocab_open(const char *dir, tokenizer **tok)
{
    char text[4000];
    size_t at = 0;
    for (int r = 0; r < 8; r++)
        for (size_t w = 0; w < TINY_N_WORDS; w++)
            at += (size_t)snprintf(text + at, sizeof text - at, "%s ",
                                   tiny_words[(w * 7 + (size_t)r) % TINY_N_WORDS]);
    bpe_train_options o = {.vocab_size = 300};
    bpe_train_result r;
    int rc = bpe_train_run(&r, text, at, &o);
    if (!rc) {
        rc = bpe_train_write(&r, dir);
        bpe_train_free(&r);
    }
    return rc ? rc : tokenizer_open_dir(tok, dir);
}

/* removes the directory tiny_vocab_open wrote into */
static void tiny_vocab_remove(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
}

/* a number in [0, n) from the caller's LCG state */
static size_t tiny_pick(uint64_t *state, size_t n)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (size_t)(*state >> 33) % n;
}

#endif
