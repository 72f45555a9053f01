/* distractors: invented subjects mixing the words of real ones (see
 * distractors.h). One splitmix64 stream seeded by the caller picks the
 * partner subject and where the search for a same-prompt answer starts. */
#include "world/distractors.h"

#include "base/errors.h"
#include "base/splitmix.h"
#include "base/compare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* text with every `from` replaced by `to` (malloc'ed); NULL when `from`
 * does not occur (or no memory: *nomem is then set) */
static char *replace_all(const char *text, const char *from, const char *to,
                         int *nomem)
{
    size_t nf = strlen(from), nt = strlen(to), count = 0;
    for (const char *p = nf ? strstr(text, from) : NULL; p;
         p = strstr(p + nf, from))
        count++;
    if (!count) return NULL;
    char *out = malloc(strlen(text) + count * nt + 1), *o = out;
    if (!out) {
        *nomem = 1;
        return NULL;
    }
    const char *p = text, *q;
    while ((q = strstr(p, from))) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, nt);
        o += nt;
        p = q + nf;
    }
    strcpy(o, p);
    return out;
}

/* the answer of another fact with f's prompt and a different answer,
 * searched from fact `start` on; NULL when there is none */
static const char *other_answer(const fact *facts, size_t n, const fact *f,
                                size_t start)
{
    for (size_t t = 0; t < n; t++) {
        const fact *g = &facts[(start + t) % n];
        if (g != f && g->target_true && g->target_true[0] &&
            !strcmp(g->prompt, f->prompt) &&
            strcmp(g->target_true, f->target_true))
            return g->target_true;
    }
    return NULL;
}

/* The sentences of one distractor `name` standing in for fact f. */
static int add_one(world_sentence_list *l, const fact *f, const char *name,
                   const char *answer)
{
    fact as_name = *f;
    as_name.subject = (char *)name;
    char *p = fact_prompt_text(&as_name);
    int rc = p ? world_sentence_list_add(l, p, answer) : ERR_NOMEM;
    for (size_t q = 0; !rc && q < f->n_paraphrases; q++) {
        int nomem = 0;
        char *pp = replace_all(f->paraphrases[q], f->subject, name, &nomem);
        if (nomem) rc = ERR_NOMEM;
        else if (pp) rc = world_sentence_list_add(l, pp, answer);
    }
    return rc;
}

int distractors_make(const fact *facts, size_t n, size_t per_fact,
                     uint64_t seed, world_sentence **out, size_t *n_out)
{
    world_sentence_list l = {0};
    uint64_t st = seed * 0x2545f4914f6cdd1dull + 7;
    /* the real subjects, sorted: a mix that is one of them is skipped */
    const char **subjects = malloc((n ? n : 1) * sizeof *subjects);
    int rc = subjects ? 0 : ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) subjects[i] = facts[i].subject;
    if (!rc) qsort(subjects, n, sizeof *subjects, compare_strings);
    for (size_t i = 0; i < n && !rc; i++) {
        const fact *f = &facts[i];
        const char *last = strrchr(f->subject, ' ');
        if (!last || !f->target_true || !f->target_true[0]) continue;
        for (size_t k = 0; k < per_fact && !rc; k++) {
            size_t j = (size_t)(splitmix_next(&st) % n);
            const char *os = facts[j].subject, *olast = strrchr(os, ' ');
            if (j == i || !olast) continue;
            char name[512];
            if (k % 2 == 0) /* this head, the other's last word */
                snprintf(name, sizeof name, "%.*s%s",
                         (int)(last - f->subject), f->subject, olast);
            else            /* the other's head, this last word */
                snprintf(name, sizeof name, "%.*s%s", (int)(olast - os), os,
                         last);
            const char *key = name;
            if (bsearch(&key, subjects, n, sizeof *subjects, compare_strings))
                continue;
            size_t start = (size_t)(splitmix_next(&st) % n);
            const char *answer = other_answer(facts, n, f, start);
            if (answer) rc = add_one(&l, f, name, answer);
        }
    }
    free(subjects);
    if (rc) {
        world_sentences_free(l.s, l.n);
        return err_set(rc, "out of memory making distractors");
    }
    *out = l.s;
    *n_out = l.n;
    return 0;
}
