/* fact: ownership helpers for the fact record (see fact.h). A fact owns
 * every string it points to; fact_copy makes a deep copy so that a fact
 * read from a parser buffer or from LMDB's map can outlive its source. */
#include "facts/fact.h"
#include "base/errors.h"

#include <stdlib.h>
#include <string.h>

void fact_free(fact *f)
{
    if (!f) return;
    free(f->subject);
    free(f->prompt);
    free(f->relation);
    free(f->target_new);
    free(f->target_true);
    for (size_t i = 0; i < f->n_paraphrases; i++) free(f->paraphrases[i]);
    free(f->paraphrases);
    for (size_t i = 0; i < f->n_neighbors; i++) {
        if (f->neighbor_prompts) free(f->neighbor_prompts[i]);
        if (f->neighbor_targets) free(f->neighbor_targets[i]);
    }
    free(f->neighbor_prompts);
    free(f->neighbor_targets);
    free(f->source_file);
    memset(f, 0, sizeof *f);
}

/* strdup that maps NULL to "" so a copied fact never has NULL strings. */
static char *dup_or_empty(const char *s, int *bad)
{
    char *d = strdup(s ? s : "");
    if (!d) *bad = 1;
    return d;
}

static char **dup_array(char *const *a, size_t n, int *bad)
{
    if (n == 0) return NULL;
    char **d = calloc(n, sizeof *d);
    if (!d) {
        *bad = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) d[i] = dup_or_empty(a ? a[i] : NULL, bad);
    return d;
}

int fact_copy(fact *dst, const fact *src)
{
    int bad = 0;
    fact d = {0};
    d.subject = dup_or_empty(src->subject, &bad);
    d.prompt = dup_or_empty(src->prompt, &bad);
    d.relation = dup_or_empty(src->relation, &bad);
    d.target_new = dup_or_empty(src->target_new, &bad);
    d.target_true = dup_or_empty(src->target_true, &bad);
    d.n_paraphrases = src->n_paraphrases;
    d.paraphrases = dup_array(src->paraphrases, src->n_paraphrases, &bad);
    d.n_neighbors = src->n_neighbors;
    d.neighbor_prompts =
        dup_array(src->neighbor_prompts, src->n_neighbors, &bad);
    d.neighbor_targets =
        dup_array(src->neighbor_targets, src->n_neighbors, &bad);
    d.source_file = dup_or_empty(src->source_file, &bad);
    d.source_line = src->source_line;
    if (bad) {
        fact_free(&d);
        return err_set(ERR_NOMEM, "out of memory copying a fact");
    }
    *dst = d;
    return 0;
}

char *fact_prompt_text(const fact *f)
{
    const char *p = f->prompt ? f->prompt : "";
    const char *s = f->subject ? f->subject : "";
    const char *at = strstr(p, "{}");
    if (!at) return strdup(p);
    size_t np = strlen(p), ns = strlen(s), head = (size_t)(at - p);
    char *out = malloc(np - 2 + ns + 1);
    if (!out) return NULL;
    memcpy(out, p, head);
    memcpy(out + head, s, ns);
    memcpy(out + head + ns, at + 2, np - head - 2 + 1);
    return out;
}

char *fact_slot(const fact *f)
{
    const char *s = f->subject ? f->subject : "";
    const char *r = f->relation && f->relation[0] ? f->relation
                                                   : (f->prompt ? f->prompt : "");
    size_t ns = strlen(s), nr = strlen(r);
    char *out = malloc(ns + 1 + nr + 1);
    if (!out) return NULL;
    memcpy(out, s, ns);
    out[ns] = '\x1f';
    memcpy(out + ns + 1, r, nr + 1);
    return out;
}
