/* prompt_answers: a sorted table of (prompt, answer) pairs (see
 * prompt_answers.h). */
#include "world/prompt_answers.h"

#include "base/errors.h"

#include <stdlib.h>
#include <string.h>

int fact_has_answer(const fact *f)
{
    return f->target_true && f->target_true[0];
}

static int cmp_prompt_answer(const void *a, const void *b)
{
    const prompt_answer *x = a, *y = b;
    int c = strcmp(x->prompt, y->prompt);
    return c ? c : strcmp(x->answer, y->answer);
}

int prompt_answers_collect(const fact *facts, size_t n, int with_new,
                           prompt_answer **out, size_t *n_out)
{
    prompt_answer *pairs = malloc((2 * n + 1) * sizeof *pairs);
    if (!pairs) return ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const fact *f = &facts[i];
        if (!fact_has_answer(f)) continue;
        pairs[k++] = (prompt_answer){f->prompt, f->target_true};
        if (with_new && f->target_new && f->target_new[0])
            pairs[k++] = (prompt_answer){f->prompt, f->target_new};
    }
    qsort(pairs, k, sizeof *pairs, cmp_prompt_answer);
    *out = pairs;
    *n_out = k;
    return 0;
}

answer_range prompt_answers_of(const prompt_answer *pairs, size_t n_pairs,
                               const char *prompt)
{
    size_t a = 0, b = n_pairs;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (strcmp(pairs[mid].prompt, prompt) < 0)
            a = mid + 1;
        else
            b = mid;
    }
    for (b = a; b < n_pairs && !strcmp(pairs[b].prompt, prompt); b++)
        ;
    return (answer_range){a, b};
}

size_t prompt_answers_shared(const prompt_answer *pairs, answer_range x,
                             answer_range y)
{
    size_t a = x.lo, b = y.lo, n = 0;
    while (a < x.hi && b < y.hi) {
        int c = strcmp(pairs[a].answer, pairs[b].answer);
        if (!c) {
            n++;
            a++;
            b++;
        } else if (c < 0) {
            a++;
        } else {
            b++;
        }
    }
    return n;
}
