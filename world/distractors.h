/* distractors: invented subjects that make a world model tell its
 * subjects apart at their last token, where MEMIT reads and writes.
 *
 * Real subjects ("Toko Yasuda") can often be recognised from their first
 * word, and a model trained on them then looks a fact up from wherever
 * it likes; MEMIT's vector at the subject's last token cannot move it
 * (docs/world-models.md). A distractor mixes the words of two real
 * subjects: all but the last word of one and the last word of another
 * ("Toko Rivera"), or the other way round ("Mariano Yasuda"). It takes
 * the fact's rewrite prompt and paraphrases, with the answer of another
 * fact that has the same prompt, so no word but the last tells who is
 * meant. One-word subjects get none; a mix that is a real subject is
 * skipped. Deterministic for a seed. */
#ifndef STAMP_DISTRACTORS_H
#define STAMP_DISTRACTORS_H

#include "facts/fact.h"
#include "world/world_sentence.h"

#include <stddef.h>
#include <stdint.h>

/* Up to per_fact distractors for each of the n facts (their rewrite
 * prompt, then each paraphrase that names the subject). *out is
 * malloc'ed (free with world_sentences_free); ERR_NOMEM on no memory. */
int distractors_make(const fact *facts, size_t n, size_t per_fact,
                     uint64_t seed, world_sentence **out, size_t *n_out);

#endif
