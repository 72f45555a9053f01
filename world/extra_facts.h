/* extra_facts: more facts for every real subject of a world, so that a
 * world model has to know who a subject is, not only its one answer.
 *
 * CounterFact gives a subject one fact. A small model trained on such a
 * list may give every subject with the same answer (" French") about the
 * same vector at its last token, where MEMIT reads its keys; an edit of
 * one such subject then moves them all (docs/world-models.md, "How many
 * edits a world holds"). A subject in a real model carries many facts,
 * and its vector has to name the subject itself. Here each fact's
 * subject gets per_fact invented facts: the rewrite prompt of another,
 * randomly drawn fact, written with this subject and followed by that
 * fact's answer ("Toko Yasuda was born in" + " Dublin").
 *
 * A drawn prompt is passed over when it is the fact's own, when this
 * fact already got it, when the two facts have the same (known)
 * relation, or when the two prompts share an answer (some fact with
 * each has it): the prompts may then ask the same thing in other words
 * (" French" answers both "The mother tongue of {} is" and "{} speaks";
 * "{} is located in" and "{} is in" share " Italy"), and the invented
 * fact could contradict the real one. The CounterFact release most
 * tools use names no relations, so answers are what tells relations
 * apart there; prompts of one relation that share no answer in the list
 * are not caught. Deterministic for a seed. */
#ifndef STAMP_EXTRA_FACTS_H
#define STAMP_EXTRA_FACTS_H

#include "facts/fact.h"
#include "world/world_sentence.h"

#include <stddef.h>
#include <stdint.h>

/* Up to per_fact invented facts for each of the n facts that has a true
 * answer (fewer when few prompts qualify), grouped by fact in order.
 * *out is malloc'ed (free with world_sentences_free); the answers are
 * borrowed from facts. ERR_NOMEM on no memory. */
int extra_facts_make(const fact *facts, size_t n, size_t per_fact,
                     uint64_t seed, world_sentence **out, size_t *n_out);

#endif
