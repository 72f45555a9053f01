/* world_sentence: a line of a world model's training text that is not one
 * of its facts' own prompts (a distractor's, distractors.h, or an extra
 * fact's, extra_facts.h): the prompt with the subject written out and
 * the answer that follows it; and the growable list the modules that
 * invent such lines build them in. */
#ifndef STAMP_WORLD_SENTENCE_H
#define STAMP_WORLD_SENTENCE_H

#include <stddef.h>

typedef struct {
    char *prompt;        /* full text, subject written out (owned) */
    const char *answer;  /* borrowed: a fact's target_true */
} world_sentence;

typedef struct {
    world_sentence *s;
    size_t n, cap;
} world_sentence_list;

/* Appends (prompt, answer); the list takes prompt, and frees it when
 * there is no memory to grow (ERR_NOMEM). */
int world_sentence_list_add(world_sentence_list *l, char *prompt,
                            const char *answer);

/* Frees the prompts and the array; accepts NULL. */
void world_sentences_free(world_sentence *s, size_t n);

#endif
