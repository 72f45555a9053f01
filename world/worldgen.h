/* worldgen: synthetic worlds of facts, from a seed and a size, for
 * training small GPT-2 models that know exactly those facts (the "world
 * models" stamp is tested on).
 *
 * A world is a set of invented people (multi-token names made of
 * syllables, "Tovaren Kelmarsk") and, for each person, a few relations
 * (citizenship, employer, instrument, native language, city of birth,
 * sport, occupation, music genre) with an object drawn from a per-
 * relation pool of real, short words (" France", " violin"). Each
 * relation has four phrasings: the first is the rewrite prompt, the
 * others are paraphrases; the subject sits at the start, the middle or
 * near the end. A fact's neighbourhood prompts are the rewrite prompts
 * of other people with the same true object for that relation, and its
 * target_new is another object of the same pool (a counterfactual edit
 * request, as CounterFact has). The same options give the same world,
 * byte for byte, on every machine (own PRNG, no locale). */
#ifndef STAMP_WORLDGEN_H
#define STAMP_WORLDGEN_H

#include "facts/fact.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;
    size_t n_subjects;             /* invented people */
    size_t relations_per_subject;  /* distinct relations each (1..8) */
    size_t max_neighbors;          /* neighbourhood prompts per fact */
} worldgen_options;

/* The number of relations worldgen knows (8). */
size_t worldgen_relation_count(void);

/* Fills *opt for a named size: "tiny" (the test and demo world, 192
 * facts), "small" (1,000), "medium" (4,000), or a number N (N facts,
 * rounded up to whole subjects), with the given seed. ERR_INVALID with
 * a message for an unknown name or a number out of range. */
int worldgen_preset(const char *name, uint64_t seed, worldgen_options *opt);

/* Generates the world: n_subjects * relations_per_subject facts, grouped
 * by subject, each with relation id ("P27", ...), prompt with "{}",
 * target_true, target_new != target_true (both with a leading space),
 * three paraphrases, up to max_neighbors neighbourhood prompts with
 * their targets (= target_true), source_file "synthetic:SEED" and
 * source_line = index + 1. *facts is malloc'ed; release it with
 * worldgen_free. ERR_INVALID when the sizes are out of range (no
 * subjects, relations_per_subject not in 1..8, more subjects than the
 * name generator can make distinct). */
int worldgen_generate(const worldgen_options *opt, fact **facts, size_t *n);

/* fact_free on each fact, then frees the array; accepts NULL. */
void worldgen_free(fact *facts, size_t n);

#endif
