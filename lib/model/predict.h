/* predict: next-token prediction of a GPT-2 model for a text prompt: the
 * prompt's token ids and the K most likely next tokens with their
 * log-probabilities. It works on any lm_model (a base model read from
 * a directory, or the store's current model view), so `stamp predict`
 * and anything else that wants a prediction share it. No printing. */
#ifndef STAMP_PREDICT_H
#define STAMP_PREDICT_H

#include "model/lm.h"
#include "model/tokenizer.h"

#include <stddef.h>

typedef struct {
    int id;
    float logprob; /* natural log of the next-token probability */
} predict_token;

typedef struct {
    int *tokens;        /* (n_tokens) the prompt's ids */
    size_t n_tokens;
    predict_token *top; /* (n_top) most likely first; ties by lower id */
    size_t n_top;
} predict_result;

/* Encodes `text` with tok, runs m over it and keeps the top_k (>= 1;
 * more than the vocabulary means all of it) next tokens. Errors
 * (ERR_INVALID): an empty prompt, a prompt longer than the model's
 * context, a token id outside the model's vocabulary (tokenizer and
 * model do not belong together); ERR_NUMERIC for non-finite logits.
 * On success *out owns its arrays: free with predict_result_free. */
int predict_run(const lm_model *m, const tokenizer *tok, const char *text,
                size_t top_k, predict_result *out);

/* What the model answers after `text`: greedy decoding, up to n_tokens
 * tokens (>= 1), each the most likely next token of the text so far; it
 * stops early when the text fills the context. *out (malloc'ed,
 * NUL-terminated) holds the continuation's bytes, as they follow text
 * (" Paris"). Errors as predict_run's for the prompt itself. */
int predict_greedy(const lm_model *m, const tokenizer *tok,
                   const char *text, size_t n_tokens, char **out);

/* Frees the arrays and zeroes r; accepts NULL. */
void predict_result_free(predict_result *r);

#endif
