/* world_sentence: invented training lines and their list (see
 * world_sentence.h). */
#include "world/world_sentence.h"

#include "base/errors.h"

#include <stdlib.h>

int world_sentence_list_add(world_sentence_list *l, char *prompt,
                            const char *answer)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        world_sentence *s = realloc(l->s, nc * sizeof *s);
        if (!s) {
            free(prompt);
            return ERR_NOMEM;
        }
        l->s = s;
        l->cap = nc;
    }
    l->s[l->n++] = (world_sentence){prompt, answer};
    return 0;
}

void world_sentences_free(world_sentence *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) free(s[i].prompt);
    free(s);
}
