/* test_phrasings: each fact is taught behind the other prompts of its
 * relation (those whose answers overlap with its own prompt's), most
 * similar first, with its own true answer; never its own prompt, never a
 * prompt of another relation, never one of its paraphrases; the same
 * facts give the same sentences. */
#include "../harness.h"
#include "phrasings.h"

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

int main(void)
{
    RUN(each_fact_gets_the_other_prompts_of_its_relation);
    RUN(at_most_per_fact_and_the_most_similar_first);
    return harness_summary();
}
