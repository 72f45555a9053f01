/* test_extra_facts: every subject gets its invented facts on other facts'
 * prompts with those facts' answers; never its own prompt twice, never a
 * prompt of its own relation or one that shares an answer with its own; the
 * same seed gives the same sentences. */
#include "tests/harness.h"
#include "world/extra_facts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fact facts[] = {
    {.subject = "Toko Yasuda", .prompt = "{}, the", .target_true = " guitar",
     .relation = ""},
    {.subject = "Ana Lee", .prompt = "{} plays the", .target_true = " drums",
     .relation = ""},
    {.subject = "Danielle Darrieux", .prompt = "The mother tongue of {} is",
     .target_true = " French", .relation = ""},
    {.subject = "Ivo Kern", .prompt = "{} speaks", .target_true = " French",
     .relation = ""},
    {.subject = "Mia Holt", .prompt = "{} speaks", .target_true = " German",
     .relation = ""},
    {.subject = "Paris", .prompt = "{} is the capital of",
     .target_true = " France", .relation = "P1376"},
    {.subject = "Rome", .prompt = "{} is in", .target_true = " Italy",
     .relation = "P1376"},
    {.subject = "Nobody", .prompt = "{} was born in", .target_true = "",
     .relation = ""},
};
#define N_FACTS (sizeof facts / sizeof facts[0])

/* the fact whose subject starts the sentence or follows "of " */
static const fact *about(const char *prompt)
{
    for (size_t i = 0; i < N_FACTS; i++) {
        size_t n = strlen(facts[i].subject);
        const char *p = strstr(prompt, facts[i].subject);
        if (p && (p == prompt || !strncmp(p - 3, "of ", 3)) &&
            (p[n] == ' ' || p[n] == ',' || p[n] == '\0'))
            return &facts[i];
    }
    return NULL;
}

/* a fact whose prompt, written with `subject`, gives `sentence` */
static const fact *template_of(const char *sentence, const char *subject)
{
    for (size_t i = 0; i < N_FACTS; i++) {
        fact g = facts[i];
        g.subject = (char *)subject;
        char *p = fact_prompt_text(&g);
        int same = p && !strcmp(p, sentence);
        free(p);
        if (same)
            return &facts[i];
    }
    return NULL;
}

/* With more wanted than there are prompts, every fact gets each prompt
 * that qualifies exactly once: Toko Yasuda and Ana Lee all 5 others
 * ("{} was born in" has no answer to give); Darrieux, Ivo Kern and Mia
 * Holt not the other language prompt (the two share " French", so Mia
 * Holt, who speaks German, gets no mother tongue either); Paris and Rome
 * not each other's (same relation); Nobody (no answer) none. */
static const size_t qualifying[N_FACTS] = {5, 5, 4, 4, 4, 4, 4, 0};
#define WANTED 6

TEST(other_prompts_with_their_answers)
{
    world_sentence *s = NULL;
    size_t n = 0;
    CHECK(extra_facts_make(facts, N_FACTS, WANTED, 5, &s, &n) == 0);
    CHECK(n > 0);
    size_t per[N_FACTS] = {0};
    const char *seen[N_FACTS][WANTED] = {{0}};
    for (size_t i = 0; i < n; i++) {
        const fact *f = about(s[i].prompt);
        CHECK_MSG(f != NULL, "'%s' is about no subject", s[i].prompt);
        if (!f) continue;
        const fact *g = template_of(s[i].prompt, f->subject);
        CHECK_MSG(g != NULL, "'%s' uses no fact's prompt", s[i].prompt);
        if (!g) continue;
        CHECK_MSG(g != f && strcmp(g->prompt, f->prompt),
                  "'%s' repeats the subject's own prompt", s[i].prompt);
        int answer_of_prompt = 0;
        for (size_t k = 0; k < N_FACTS; k++)
            answer_of_prompt |= !strcmp(facts[k].prompt, g->prompt) &&
                                !strcmp(facts[k].target_true, s[i].answer);
        CHECK_MSG(answer_of_prompt, "'%s' has answer '%s', not its prompt's",
                  s[i].prompt, s[i].answer);
        CHECK_MSG(!(f->relation[0] && !strcmp(f->relation, g->relation)),
                  "'%s': same relation as the subject's fact", s[i].prompt);
        /* no prompt that shares an answer with the subject's own prompt:
         * neither Darrieux (French) nor Mia Holt (German) gets the other
         * language prompt */
        for (size_t k = 0; k < N_FACTS; k++)
            for (size_t m = 0; m < N_FACTS; m++)
                CHECK_MSG(strcmp(facts[k].prompt, g->prompt) ||
                              strcmp(facts[m].prompt, f->prompt) ||
                              !facts[k].target_true[0] ||
                              strcmp(facts[k].target_true,
                                     facts[m].target_true),
                          "'%s': its prompt shares '%s' with '%s'",
                          s[i].prompt, facts[k].target_true, f->prompt);
        size_t fi = (size_t)(f - facts);
        CHECK(per[fi] < WANTED);
        for (size_t k = 0; k < per[fi]; k++)
            CHECK_MSG(strcmp(seen[fi][k], g->prompt),
                      "'%s': prompt given twice", s[i].prompt);
        if (per[fi] < WANTED) seen[fi][per[fi]++] = g->prompt;
    }
    for (size_t i = 0; i < N_FACTS; i++)
        CHECK_MSG(per[i] == qualifying[i], "%s got %zu facts, not %zu",
                  facts[i].subject, per[i], qualifying[i]);
    world_sentences_free(s, n);
}

TEST(same_seed_same_sentences)
{
    world_sentence *a = NULL, *b = NULL, *c = NULL;
    size_t na = 0, nb = 0, nc = 0;
    CHECK(extra_facts_make(facts, N_FACTS, 2, 9, &a, &na) == 0);
    CHECK(extra_facts_make(facts, N_FACTS, 2, 9, &b, &nb) == 0);
    CHECK(extra_facts_make(facts, N_FACTS, 2, 10, &c, &nc) == 0);
    CHECK(na == nb);
    for (size_t i = 0; i < na && i < nb; i++) {
        CHECK(!strcmp(a[i].prompt, b[i].prompt));
        CHECK(a[i].answer == b[i].answer);
    }
    int differs = na != nc;
    for (size_t i = 0; !differs && i < na; i++)
        differs = strcmp(a[i].prompt, c[i].prompt) != 0;
    CHECK_MSG(differs, "seeds 9 and 10 gave the same sentences");
    world_sentences_free(a, na);
    world_sentences_free(b, nb);
    world_sentences_free(c, nc);
}

TEST(none_asked_or_none_possible)
{
    world_sentence *s = (world_sentence *)1;
    size_t n = 99;
    CHECK(extra_facts_make(facts, N_FACTS, 0, 1, &s, &n) == 0);
    CHECK(n == 0);
    world_sentences_free(s, n);
    /* one prompt only: nothing else to borrow */
    CHECK(extra_facts_make(facts + 3, 2, 4, 1, &s, &n) == 0);
    CHECK(n == 0);
    world_sentences_free(s, n);
    CHECK(extra_facts_make(facts, 0, 4, 1, &s, &n) == 0);
    CHECK(n == 0);
    world_sentences_free(s, n);
}

int main(void)
{
    RUN(other_prompts_with_their_answers);
    RUN(same_seed_same_sentences);
    RUN(none_asked_or_none_possible);
    return harness_summary();
}
