/* editreq: a fact turned into the token sequences the editing methods
 * run (docs/memit.md, step 1): the rewriting prompts (the bare prompt, then
 * the prompt behind each context prefix), each followed by the target
 * tokens but the last (teacher forcing), and the essence prompt
 * "{subject} is a" for the KL term. For every sequence: where the
 * subject's last token is (the lookup position) and where the target's
 * logits are read. */
#ifndef STAMP_EDITREQ_H
#define STAMP_EDITREQ_H

#include "facts/fact.h"
#include "model/lm.h"
#include "model/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int *tokens;          /* (len) */
    size_t len;
    size_t lookup;        /* position of the subject's last token */
    size_t target_start;  /* logits here predict target[0]; then +1 ... */
} editreq_seq;

typedef struct {
    editreq_seq *seq;     /* n_rewrite rewriting sequences (bare first),
                             then the essence sequence */
    size_t n_rewrite;
    int *target;          /* target_new's tokens */
    size_t n_target;
} editreq;

/* Builds the sequences of fact f: prompts "<prefix[i]>. <prompt>" for
 * each prefix (the bare prompt first). A prefixed prompt longer than
 * max_len is left out; a bare prompt (or essence prompt) that does not
 * fit is ERR_INVALID naming the prompt. */
int editreq_build(editreq *r, const fact *f, const tokenizer *tok,
                  char *const *prefixes, size_t n_prefixes, size_t max_len);
void editreq_free(editreq *r); /* accepts NULL */

/* The essence sequence (the last one). */
static inline const editreq_seq *editreq_essence(const editreq *r)
{
    return &r->seq[r->n_rewrite];
}

/* Weight of rewriting sequence i in a key average: the reference averages
 * within the prefixed group, then across {bare, prefixed}. */
double editreq_key_weight(const editreq *r, size_t i);

/* Samples n context prefixes of `tokens` tokens from the model, starting
 * from "The", "Therefore", "Because", "I", "You" in turn (top-k 10
 * sampling, deterministic for a seed: row i draws from the stream the
 * rows before it leave). All rows take their next token in one pass over
 * the positions before it, so a commit's prefixes cost `tokens` passes of
 * growing length, not n x tokens passes over the full length.
 * *out is a malloc'ed array of malloc'ed strings; free with
 * editreq_prefixes_free. */
int editreq_prefixes(char ***out, const lm_model *m, const tokenizer *tok,
                     size_t n, size_t tokens, uint64_t seed);
void editreq_prefixes_free(char **p, size_t n);

/* The subject's last-token position when `text_through_subject` (the
 * prompt text up to the end of the subject) is tokenized: its token
 * count - 1. */
int editreq_lookup(const tokenizer *tok, const char *text_through_subject,
                   size_t *pos);

#endif
