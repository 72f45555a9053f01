/* editreq_naive: the naive twin of editreq.h's prefix sampler: the rows
 * one after another, a full pass over the row for every token, the top
 * ten by repeated selection. Slow and obviously right: the oracle the
 * tests compare editreq_prefixes against. Not part of the public API:
 * only editreq.c, its own folder and the tests include this header
 * (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_EDITREQ_NAIVE_H
#define STAMP_EDITREQ_NAIVE_H

#include "model/lm.h"
#include "model/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

int editreq_prefixes_naive(char ***out, const lm_model *m, const tokenizer *tok,
                           size_t n, size_t tokens, uint64_t seed);

#endif
