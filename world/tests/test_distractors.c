/* test_distractors: invented subjects mix two real subjects' words (all
 * but the last word of one, the last word of another), never equal a
 * real subject, take the fact's prompts with a same-prompt fact's other
 * answer, leave one-word subjects alone, and depend only on the seed. */
#include "tests/harness.h"
#include "world/distractors.h"

#include <stdio.h>
#include <string.h>

static char *para_toko[] = {"Toko Yasuda is incredible at the"};
static char *para_ana[] = {"Everyone knows Ana Lee plays the"};

static fact facts[] = {
    {.subject = "Toko Yasuda", .prompt = "{}, the", .target_true = " guitar",
     .n_paraphrases = 1, .paraphrases = para_toko},
    {.subject = "Mariano Rivera", .prompt = "{}, the", .target_true = " piano"},
    {.subject = "Ana Lee", .prompt = "{}, the", .target_true = " drums",
     .n_paraphrases = 1, .paraphrases = para_ana},
    {.subject = "Toko Rivera", .prompt = "{}, the", .target_true = " guitar"},
    {.subject = "Paris", .prompt = "The capital of {} is",
     .target_true = " France"},
};
#define N_FACTS (sizeof facts / sizeof facts[0])

static const char *firsts[] = {"Toko", "Mariano", "Ana"};
static const char *lasts[] = {"Yasuda", "Rivera", "Lee"};

/* the invented name in a sentence: the two words before ", the", or
 * after "knows" / at the start of a paraphrase */
static int known_mix(const char *prompt, char *name, size_t size)
{
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            snprintf(name, size, "%s %s", firsts[a], lasts[b]);
            if (strstr(prompt, name)) return 1;
        }
    return 0;
}

TEST(mixes_only_with_same_prompt_answers)
{
    world_sentence *d = NULL;
    size_t n = 0;
    CHECK(distractors_make(facts, N_FACTS, 4, 7, &d, &n) == 0);
    CHECK(n > 0);
    size_t paraphrased = 0;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        CHECK_MSG(known_mix(d[i].prompt, name, sizeof name),
                  "'%s' names no mix of the real words", d[i].prompt);
        for (size_t f = 0; f < N_FACTS; f++)
            CHECK_MSG(strcmp(name, facts[f].subject), "'%s' is a real subject",
                      d[i].prompt);
        CHECK_MSG(!strstr(d[i].prompt, "Paris") &&
                      !strstr(d[i].prompt, "capital"),
                  "a one-word subject got a distractor: '%s'", d[i].prompt);
        /* the answer is another answer of the "{}, the" facts */
        CHECK(!strcmp(d[i].answer, " guitar") || !strcmp(d[i].answer, " piano") ||
              !strcmp(d[i].answer, " drums"));
        paraphrased += strstr(d[i].prompt, "incredible") != NULL ||
                       strstr(d[i].prompt, "Everyone knows") != NULL;
    }
    CHECK_MSG(paraphrased > 0, "no paraphrase was carried over");
    world_sentences_free(d, n);
}

TEST(same_seed_same_sentences)
{
    world_sentence *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK(distractors_make(facts, N_FACTS, 3, 11, &a, &na) == 0);
    CHECK(distractors_make(facts, N_FACTS, 3, 11, &b, &nb) == 0);
    CHECK(na == nb);
    for (size_t i = 0; i < na && i < nb; i++) {
        CHECK(!strcmp(a[i].prompt, b[i].prompt));
        CHECK(a[i].answer == b[i].answer);
    }
    world_sentences_free(a, na);
    world_sentences_free(b, nb);
}

TEST(none_asked_none_made)
{
    world_sentence *d = (world_sentence *)1;
    size_t n = 99;
    CHECK(distractors_make(facts, N_FACTS, 0, 1, &d, &n) == 0);
    CHECK(n == 0);
    world_sentences_free(d, n);
    CHECK(distractors_make(facts, 1, 5, 1, &d, &n) == 0); /* no partner */
    CHECK(n == 0);
    world_sentences_free(d, n);
}

int main(void)
{
    RUN(mixes_only_with_same_prompt_answers);
    RUN(same_seed_same_sentences);
    RUN(none_asked_none_made);
    return harness_summary();
}
