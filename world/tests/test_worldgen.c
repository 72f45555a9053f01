/* test_worldgen: the synthetic world's invariants (sizes, distinct
 * multi-word subjects, one "{}" per prompt, paraphrases holding the
 * subject, counterfactual targets from the same relation, neighbours that
 * really share the answer, no phrasing a prefix of another relation's),
 * determinism, and refused sizes. */
#include "base/errors.h"
#include "facts/fact.h"
#include "world/worldgen.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

static int count_sub(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static int same_fact(const fact *a, const fact *b)
{
    if (strcmp(a->subject, b->subject) || strcmp(a->prompt, b->prompt) ||
        strcmp(a->relation, b->relation) ||
        strcmp(a->target_new, b->target_new) ||
        strcmp(a->target_true, b->target_true) ||
        a->n_paraphrases != b->n_paraphrases ||
        a->n_neighbors != b->n_neighbors || a->source_line != b->source_line)
        return 0;
    for (size_t k = 0; k < a->n_paraphrases; k++)
        if (strcmp(a->paraphrases[k], b->paraphrases[k]))
            return 0;
    for (size_t k = 0; k < a->n_neighbors; k++)
        if (strcmp(a->neighbor_prompts[k], b->neighbor_prompts[k]) ||
            strcmp(a->neighbor_targets[k], b->neighbor_targets[k]))
            return 0;
    return 1;
}

TEST(presets)
{
    worldgen_options o;
    CHECK(worldgen_preset("tiny", 5, &o) == 0);
    CHECK(o.seed == 5 && o.n_subjects * o.relations_per_subject == 192);
    CHECK(worldgen_preset("small", 1, &o) == 0);
    CHECK(o.n_subjects * o.relations_per_subject == 1000);
    CHECK(worldgen_preset("medium", 1, &o) == 0);
    CHECK(o.n_subjects * o.relations_per_subject == 4000);
    CHECK(worldgen_preset("10", 1, &o) == 0);
    CHECK(o.n_subjects * o.relations_per_subject >= 10 &&
          o.n_subjects * o.relations_per_subject < 14);
    CHECK(worldgen_preset("2", 1, &o) == 0);
    CHECK(o.n_subjects == 1 && o.relations_per_subject == 2);
    err_clear();
    CHECK(worldgen_preset("huge", 1, &o) == ERR_INVALID);
    CHECK(strstr(err_message(ERR_INVALID), "'huge'") != NULL);
    CHECK(worldgen_preset("0", 1, &o) == ERR_INVALID);
    CHECK(worldgen_preset("-5", 1, &o) == ERR_INVALID);
    CHECK(worldgen_preset("12x", 1, &o) == ERR_INVALID);
    CHECK(worldgen_preset("", 1, &o) == ERR_INVALID);
    CHECK(worldgen_preset(NULL, 1, &o) == ERR_INVALID);
    CHECK(worldgen_relation_count() == 8);
}

TEST(bad_sizes_refused)
{
    fact *f = (fact *)1;
    size_t n = 7;
    worldgen_options o = {.seed = 1, .n_subjects = 0,
                          .relations_per_subject = 2, .max_neighbors = 3};
    CHECK(worldgen_generate(&o, &f, &n) == ERR_INVALID);
    CHECK(f == NULL && n == 0);
    o.n_subjects = 5;
    o.relations_per_subject = 9;
    CHECK(worldgen_generate(&o, &f, &n) == ERR_INVALID);
    o.relations_per_subject = 0;
    CHECK(worldgen_generate(&o, &f, &n) == ERR_INVALID);
    o.relations_per_subject = 1;
    o.n_subjects = 1000001;
    CHECK(worldgen_generate(&o, &f, &n) == ERR_INVALID);
    worldgen_free(NULL, 0);
}

TEST(invariants_of_the_tiny_world)
{
    worldgen_options o;
    CHECK(worldgen_preset("tiny", 1, &o) == 0);
    fact *f;
    size_t n;
    CHECK(worldgen_generate(&o, &f, &n) == 0);
    CHECK(n == 192);
    size_t rps = o.relations_per_subject;
    int relations_seen[8] = {0};
    const char *rel_ids[8] = {0};
    size_t n_rel = 0;
    for (size_t i = 0; i < n; i++) {
        const fact *a = &f[i];
        CHECK(a->source_line == i + 1);
        CHECK(!strcmp(a->source_file, "synthetic:1"));
        /* subjects: two capitalised words, shared within a group only */
        CHECK(count_sub(a->subject, " ") == 1);
        CHECK(a->subject[0] >= 'A' && a->subject[0] <= 'Z');
        if (i % rps)
            CHECK(!strcmp(a->subject, f[i - 1].subject));
        else if (i)
            CHECK(strcmp(a->subject, f[i - 1].subject) != 0);
        /* prompt and targets */
        CHECK(count_sub(a->prompt, "{}") == 1);
        CHECK(a->target_true[0] == ' ' && a->target_true[1] != ' ');
        CHECK(a->target_new[0] == ' ' && a->target_new[1] != ' ');
        CHECK(strcmp(a->target_new, a->target_true) != 0);
        CHECK(a->relation[0] == 'P');
        size_t r = 0;
        while (r < n_rel && strcmp(rel_ids[r], a->relation))
            r++;
        if (r == n_rel && n_rel < 8)
            rel_ids[n_rel++] = a->relation;
        if (r < 8)
            relations_seen[r]++;
        /* paraphrases hold the subject, differ from the prompt text */
        CHECK(a->n_paraphrases == 3);
        char *text = fact_prompt_text(a);
        for (size_t k = 0; k < a->n_paraphrases; k++) {
            CHECK(strstr(a->paraphrases[k], a->subject) != NULL);
            CHECK(strcmp(a->paraphrases[k], text) != 0);
            CHECK(!strstr(a->paraphrases[k], "{}"));
        }
        free(text);
        /* a subject never has one relation twice */
        for (size_t j = i - i % rps; j < i; j++)
            CHECK(strcmp(f[j].relation, a->relation) != 0);
        /* target_new is the true answer of someone else, same relation */
        int found = 0;
        for (size_t j = 0; j < n && !found; j++)
            found = !strcmp(f[j].relation, a->relation) &&
                    !strcmp(f[j].target_true, a->target_new);
        CHECK(found);
        /* neighbours: other subjects' rewrite prompts, same answer */
        CHECK(a->n_neighbors >= 1 && a->n_neighbors <= 3);
        for (size_t k = 0; k < a->n_neighbors; k++) {
            CHECK(!strcmp(a->neighbor_targets[k], a->target_true));
            CHECK(!strstr(a->neighbor_prompts[k], a->subject));
            int ok = 0;
            for (size_t j = 0; j < n && !ok; j++) {
                if (j == i || strcmp(f[j].relation, a->relation))
                    continue;
                char *t = fact_prompt_text(&f[j]);
                ok = !strcmp(t, a->neighbor_prompts[k]) &&
                     !strcmp(f[j].target_true, a->target_true);
                free(t);
            }
            CHECK_MSG(ok, "fact %zu neighbour %zu", i, k);
        }
    }
    CHECK(n_rel == 8);
    for (size_t r = 0; r < 8; r++)
        CHECK(relations_seen[r] >= 10);
    /* no prompt of one relation is a prefix of another relation's prompt
     * for the same subject (an answer position with two answers) */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i - i % rps; j < i - i % rps + rps; j++) {
            if (j == i)
                continue;
            char *pi[4], *pj[4];
            pi[0] = fact_prompt_text(&f[i]);
            pj[0] = fact_prompt_text(&f[j]);
            for (int k = 0; k < 3; k++) {
                pi[k + 1] = f[i].paraphrases[k];
                pj[k + 1] = f[j].paraphrases[k];
            }
            for (int x = 0; x < 4; x++)
                for (int y = 0; y < 4; y++)
                    CHECK_MSG(strncmp(pi[x], pj[y], strlen(pi[x])) != 0,
                              "'%s' is a prefix of '%s'", pi[x], pj[y]);
            free(pi[0]);
            free(pj[0]);
        }
    }
    /* distinct subjects */
    for (size_t i = 0; i < n; i += rps)
        for (size_t j = i + rps; j < n; j += rps)
            CHECK(strcmp(f[i].subject, f[j].subject) != 0);
    worldgen_free(f, n);
}

TEST(deterministic_and_seeded)
{
    worldgen_options o;
    CHECK(worldgen_preset("small", 7, &o) == 0);
    fact *a, *b, *c;
    size_t na, nb, nc;
    CHECK(worldgen_generate(&o, &a, &na) == 0);
    CHECK(worldgen_generate(&o, &b, &nb) == 0);
    o.seed = 8;
    CHECK(worldgen_generate(&o, &c, &nc) == 0);
    CHECK(na == 1000 && nb == na && nc == na);
    int same = 1, differ = 0;
    for (size_t i = 0; i < na; i++) {
        same &= same_fact(&a[i], &b[i]);
        differ += !same_fact(&a[i], &c[i]);
    }
    CHECK(same);
    CHECK(differ > 900);
    /* bigger worlds keep every fact's neighbours and 3 paraphrases */
    size_t with = 0;
    for (size_t i = 0; i < na; i++)
        with += a[i].n_neighbors == 3;
    CHECK(with == na);
    worldgen_free(a, na);
    worldgen_free(b, nb);
    worldgen_free(c, nc);
}

TEST(one_subject_worlds)
{
    /* one person: no neighbours possible, still a valid world */
    worldgen_options o = {.seed = 3, .n_subjects = 1,
                          .relations_per_subject = 8, .max_neighbors = 3};
    fact *f;
    size_t n;
    CHECK(worldgen_generate(&o, &f, &n) == 0);
    CHECK(n == 8);
    for (size_t i = 0; i < n; i++) {
        CHECK(f[i].n_neighbors == 0);
        CHECK(strcmp(f[i].target_new, f[i].target_true) != 0);
    }
    worldgen_free(f, n);
}

int main(void)
{
    RUN(presets);
    RUN(bad_sizes_refused);
    RUN(invariants_of_the_tiny_world);
    RUN(deterministic_and_seeded);
    RUN(one_subject_worlds);
    return harness_summary();
}
