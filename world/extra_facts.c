/* extra_facts: invented facts for real subjects (see extra_facts.h). One
 * splitmix stream seeded by the caller draws the other facts; a table of
 * (prompt, answer) pairs sorted by prompt, then answer, answers "do any
 * facts with these two prompts have the same answer". */
#include "world/extra_facts.h"

#include "base/errors.h"
#include "world/prompt_answers.h"
#include "base/splitmix.h"

#include <stdlib.h>
#include <string.h>

/* may g's prompt carry an invented fact about f's subject? f_answers
 * are the answers of f's prompt; `used` holds the n_used prompts f got
 * already */
static int usable(const fact *f, answer_range f_answers, const fact *g,
                  const prompt_answer *pairs, size_t n_pairs,
                  const char *const *used, size_t n_used)
{
    if (!fact_has_answer(g) || !strcmp(g->prompt, f->prompt))
        return 0;
    if (f->relation && f->relation[0] && g->relation &&
        !strcmp(f->relation, g->relation))
        return 0;
    for (size_t k = 0; k < n_used; k++)
        if (!strcmp(used[k], g->prompt))
            return 0;
    return !prompt_answers_shared(
        pairs, f_answers, prompt_answers_of(pairs, n_pairs, g->prompt));
}

int extra_facts_make(const fact *facts, size_t n, size_t per_fact,
                     uint64_t seed, world_sentence **out, size_t *n_out)
{
    world_sentence_list l = {0};
    /* not seed * the splitmix increment: seed + 1 would replay seed's
     * stream one draw later */
    uint64_t st = seed * 0x2545f4914f6cdd1dull + 13;
    prompt_answer *pairs = NULL;
    size_t n_pairs = 0;
    const char **used = malloc((per_fact ? per_fact : 1) * sizeof *used);
    int rc = used ? prompt_answers_collect(facts, n, 0, &pairs, &n_pairs)
                  : ERR_NOMEM;
    /* a few draws per wanted fact: prompts that do not qualify are rare
     * in a list of many relations, and a list of one relation has none */
    for (size_t i = 0; !rc && i < n && per_fact; i++) {
        const fact *f = &facts[i];
        if (!fact_has_answer(f))
            continue;
        answer_range f_answers = prompt_answers_of(pairs, n_pairs, f->prompt);
        size_t made = 0;
        for (size_t t = 0; !rc && made < per_fact && t < 8 * per_fact; t++) {
            const fact *g = &facts[splitmix_next(&st) % n];
            if (!usable(f, f_answers, g, pairs, n_pairs, used, made))
                continue;
            used[made++] = g->prompt;
            fact about_f = *g;
            about_f.subject = f->subject;
            char *p = fact_prompt_text(&about_f);
            rc = p ? world_sentence_list_add(&l, p, g->target_true)
                   : ERR_NOMEM;
        }
    }
    free(pairs);
    free(used);
    if (rc) {
        world_sentences_free(l.s, l.n);
        return err_set(rc, "out of memory inventing facts");
    }
    *out = l.s;
    *n_out = l.n;
    return 0;
}
