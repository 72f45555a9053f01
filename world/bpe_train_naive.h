/* bpe_train_naive: the naive twin(s) of bpe_train.h, BPE training that recounts every pair at each merge: slow,
 * obviously correct, the oracle the tests compare the fast code against.
 * Not part of the public API: only bpe_train.c, its own folder and the tests
 * include this header (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_BPE_TRAIN_NAIVE_H
#define STAMP_BPE_TRAIN_NAIVE_H

#include "world/bpe_train.h"

/* The slow, obviously correct twin of bpe_train_run (recounts every
 * pair from scratch at each merge); the tests compare the two. */
int bpe_train_naive(bpe_train_result *out, const char *text, size_t len,
                    const bpe_train_options *opt);

#endif
