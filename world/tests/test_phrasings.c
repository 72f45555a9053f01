/* test_phrasings: each fact is taught behind the other prompts of its
 * relation (those whose answers overlap with its own prompt's), most
 * similar first, with its own true answer; never its own prompt, never a
 * prompt of another relation, never one of its paraphrases; the same
 * facts give the same sentences. And the taught paraphrases of other
 * facts of a relation, reworded for each fact: opening sentence kept,
 * subject replaced, never from a held-out fact, never its own. */
#include "tests/harness.h"
#include "world/phrasings.h"

#include <stdlib.h>
#include <string.h>

static char *para_ivo[] = {"Ivo Kern's mother tongue is"};
static fact facts[] = {
    /* languages: three prompts that share answers */
    {.subject = "Danielle Darrieux", .prompt = "The mother tongue of {} is",
     .target_true = " French", .target_new = " English"},
    {.subject = "Ivo Kern", .prompt = "{} speaks", .target_true = " French",
     .target_new = " German", .n_paraphrases = 1, .paraphrases = para_ivo},
    {.subject = "Mia Holt", .prompt = "{}'s mother tongue is",
     .target_true = " German", .target_new = " French"},
    {.subject = "Eva Roth", .prompt = "{} speaks", .target_true = " English",
     .target_new = " French"},
    /* instruments: shares no answer with the languages */
    {.subject = "Toko Yasuda", .prompt = "{}, the", .target_true = " guitar",
     .target_new = " piano"},
    {.subject = "Ana Lee", .prompt = "{} plays the", .target_true = " piano",
     .target_new = " guitar"},
    /* no true answer: taught nothing, and its prompt counts for no one */
    {.subject = "Nobody", .prompt = "{} was born in", .target_true = "",
     .target_new = " Paris"},
};
#define N_FACTS (sizeof facts / sizeof facts[0])

static int has(const world_sentence *s, size_t n, const char *prompt,
               const char *answer)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].prompt, prompt) && !strcmp(s[i].answer, answer))
            return 1;
    return 0;
}

TEST(each_fact_gets_the_other_prompts_of_its_relation)
{
    world_sentence *s = NULL;
    size_t n = 0;
    CHECK(phrasings_make(facts, N_FACTS, 8, &s, &n) == 0);
    /* Danielle: "{} speaks" and "{}'s mother tongue is" */
    CHECK(has(s, n, "Danielle Darrieux speaks", " French"));
    CHECK(has(s, n, "Danielle Darrieux's mother tongue is", " French"));
    /* Ivo: the mother-tongue prompts, but "Ivo Kern's mother tongue is"
     * is his paraphrase, and stays out */
    CHECK(has(s, n, "The mother tongue of Ivo Kern is", " French"));
    CHECK(!has(s, n, "Ivo Kern's mother tongue is", " French"));
    CHECK(has(s, n, "Toko Yasuda plays the", " guitar"));
    CHECK(has(s, n, "Ana Lee, the", " piano"));
    /* 2 + 1 + 2 + 2 (Eva) + 1 + 1 */
    CHECK_MSG(n == 9, "%zu sentences", n);
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(!strstr(s[i].prompt, "Nobody"), "%s", s[i].prompt);
        CHECK_MSG(!strstr(s[i].prompt, "born"), "%s", s[i].prompt);
        int instrument = !strcmp(s[i].answer, " guitar") ||
                         !strcmp(s[i].answer, " piano");
        int instrument_prompt = strstr(s[i].prompt, "the") &&
                                !strstr(s[i].prompt, "tongue");
        CHECK_MSG(instrument == instrument_prompt, "%s%s", s[i].prompt,
                  s[i].answer);
    }
    world_sentences_free(s, n);
}

TEST(at_most_per_fact_and_the_most_similar_first)
{
    world_sentence *s = NULL, *t = NULL;
    size_t n = 0, m = 0;
    CHECK(phrasings_make(facts, N_FACTS, 1, &s, &n) == 0);
    CHECK(phrasings_make(facts, N_FACTS, 1, &t, &m) == 0);
    CHECK(n == m);
    for (size_t i = 0; i < n && i < m; i++)
        CHECK(!strcmp(s[i].prompt, t[i].prompt));
    /* "{} speaks" (French, German, English, French) shares more with
     * "The mother tongue of {} is" (French, English) than
     * "{}'s mother tongue is" (German, French) does: cosine 2/sqrt(8)
     * against 1/sqrt(4) */
    CHECK(has(s, n, "Danielle Darrieux speaks", " French"));
    CHECK(!has(s, n, "Danielle Darrieux's mother tongue is", " French"));
    size_t danielle = 0;
    for (size_t i = 0; i < n; i++)
        danielle += !strncmp(s[i].prompt, "Danielle", 8) ||
                    strstr(s[i].prompt, "of Danielle") != NULL;
    CHECK(danielle == 1);
    world_sentences_free(s, n);
    world_sentences_free(t, m);
    CHECK(phrasings_make(facts, N_FACTS, 0, &s, &n) == 0 && n == 0);
    world_sentences_free(s, n);
}

/* Paraphrase templates: facts 0-1 have their paraphrases held out,
 * facts 2-5 taught. */
static char *p_mia[] = {"It rained. Mia Holt's native tongue is"};
static char *p_eva[] = {"A dog barked. Eva Roth grew up speaking"};
static char *p_held[] = {"Snow fell. Lou Dorn talks in"};
static char *p_ana[] = {"Ana Lee is a virtuoso on the"};
static char *p_odd[] = {"Someone else is great at the"}; /* no subject */
static fact taught[] = {
    {.subject = "Lou Dorn", .prompt = "{} speaks", .target_true = " Dutch",
     .target_new = " French", .n_paraphrases = 1, .paraphrases = p_held},
    {.subject = "Danielle Darrieux", .prompt = "The mother tongue of {} is",
     .target_true = " French", .target_new = " English"},
    {.subject = "Mia Holt", .prompt = "{} speaks", .target_true = " French",
     .target_new = " German", .n_paraphrases = 1, .paraphrases = p_mia},
    {.subject = "Eva Roth", .prompt = "{} speaks", .target_true = " English",
     .target_new = " French", .n_paraphrases = 1, .paraphrases = p_eva},
    {.subject = "Ana Lee", .prompt = "{} plays the", .target_true = " piano",
     .target_new = " guitar", .n_paraphrases = 1, .paraphrases = p_ana},
    {.subject = "Toko Yasuda", .prompt = "{} plays the",
     .target_true = " guitar", .target_new = " piano", .n_paraphrases = 1,
     .paraphrases = p_odd},
};
#define N_TAUGHT (sizeof taught / sizeof taught[0])

TEST(taught_paraphrases_reworded_for_the_other_facts_of_their_relation)
{
    world_sentence *s = NULL, *t = NULL;
    size_t n = 0, m = 0;
    CHECK(phrasings_from_paraphrases(taught, N_TAUGHT, 2, 8, &s, &n) == 0);
    /* Lou (held out) gets the taught ones of "{} speaks", opening kept */
    CHECK(has(s, n, "It rained. Lou Dorn's native tongue is", " Dutch"));
    CHECK(has(s, n, "A dog barked. Lou Dorn grew up speaking", " Dutch"));
    /* ... and no one gets his held-out paraphrase's wording */
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(!strstr(s[i].prompt, "Snow fell"), "%s", s[i].prompt);
    /* Danielle's prompt shares " French" with "{} speaks": similar */
    CHECK(has(s, n, "It rained. Danielle Darrieux's native tongue is",
              " French"));
    /* Mia gets Eva's, never her own */
    CHECK(has(s, n, "A dog barked. Mia Holt grew up speaking", " French"));
    CHECK(!has(s, n, "It rained. Mia Holt's native tongue is", " French"));
    /* Toko gets Ana's; Ana gets nothing: Toko's paraphrase does not
     * name him, so it is no template */
    CHECK(has(s, n, "Toko Yasuda is a virtuoso on the", " guitar"));
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(strncmp(s[i].prompt, "Ana Lee", 7) &&
                      !strstr(s[i].prompt, "great at"),
                  "%s", s[i].prompt);
    /* never across relations */
    for (size_t i = 0; i < n; i++) {
        int instrument = !strcmp(s[i].answer, " guitar") ||
                         !strcmp(s[i].answer, " piano");
        CHECK_MSG(instrument == (strstr(s[i].prompt, "virtuoso") != NULL),
                  "%s%s", s[i].prompt, s[i].answer);
    }
    /* Lou 2, Danielle 2, Mia 1, Eva 1, Toko 1 */
    CHECK_MSG(n == 7, "%zu sentences", n);
    /* at most per_fact each, and the same every time */
    CHECK(phrasings_from_paraphrases(taught, N_TAUGHT, 2, 1, &t, &m) == 0);
    CHECK_MSG(m == 5, "%zu sentences", m);
    world_sentences_free(t, m);
    CHECK(phrasings_from_paraphrases(taught, N_TAUGHT, 2, 8, &t, &m) == 0);
    CHECK(m == n);
    for (size_t i = 0; i < n && i < m; i++)
        CHECK(!strcmp(s[i].prompt, t[i].prompt));
    world_sentences_free(s, n);
    world_sentences_free(t, m);
    /* everything held out: nothing to reword */
    CHECK(phrasings_from_paraphrases(taught, N_TAUGHT, N_TAUGHT, 8, &s, &n) == 0);
    CHECK(n == 0);
    world_sentences_free(s, n);
}

int main(void)
{
    RUN(each_fact_gets_the_other_prompts_of_its_relation);
    RUN(at_most_per_fact_and_the_most_similar_first);
    RUN(taught_paraphrases_reworded_for_the_other_facts_of_their_relation);
    return harness_summary();
}
