/* phrasings: each fact of a world again in other words, so that a world
 * model learns a fact once, at its subject, rather than once per
 * sentence.
 *
 * A small model trained on one sentence per fact learns each (subject,
 * phrasing) pair on its own: it does not answer a phrasing of a fact it
 * was not taught (docs/world-models.md, "What paraphrase success
 * measures on a world model"), and an edit reaches only the phrasings
 * it was fitted on. Pretrained models read a fact out through any
 * phrasing. Here each fact's true answer is also taught behind up to
 * per_fact other prompts of its relation: the rewrite prompts of other
 * facts whose answers overlap most with this prompt's ("The language
 * of {} was" and "The original language of {} is" share " French",
 * " English", ...). Only rewrite prompts are used, and a phrasing equal
 * to one of the fact's own paraphrases is left out, so held-out
 * paraphrases stay unseen. Deterministic. */
#ifndef STAMP_PHRASINGS_H
#define STAMP_PHRASINGS_H

#include "facts/fact.h"
#include "world/world_sentence.h"

#include <stddef.h>

/* Two prompts are phrasings of one relation when the cosine of their
 * answer counts (true and new answers of the facts with each) is at
 * least this. */
#define PHRASINGS_MIN_COSINE 0.2

/* Up to per_fact sentences for each of the n facts that has a true
 * answer: another prompt of its relation with this fact's subject,
 * followed by its true answer; most similar prompts first, grouped by
 * fact in order. *out is malloc'ed (free with world_sentences_free);
 * the answers are borrowed from facts. ERR_NOMEM on no memory. */
int phrasings_make(const fact *facts, size_t n, size_t per_fact,
                   world_sentence **out, size_t *n_out);

/* Up to per_fact sentences for each of the n facts that has a true
 * answer: the wording of a taught paraphrase of another fact of its
 * relation (a paraphrase of facts[first_taught..n), whose paraphrases
 * are in the training text; a fact of its relation: one with the same
 * prompt, else with one of the most similar prompts, as above), opening
 * sentence and all, with this fact's subject put in place of that
 * fact's, followed by this fact's true answer. CounterFact's
 * paraphrases open with an unrelated sentence; these lines teach that
 * such an opening leaves the answer alone for every subject, not only
 * for those whose own paraphrases are taught. Which paraphrases a fact
 * gets is spread over its prompt's by the fact's index; its own
 * paraphrases are never written. Deterministic. ERR_NOMEM on no
 * memory. */
int phrasings_from_paraphrases(const fact *facts, size_t n,
                               size_t first_taught, size_t per_fact,
                               world_sentence **out, size_t *n_out);

#endif
