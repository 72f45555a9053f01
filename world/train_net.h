/* train_net: the network train.c trains, GPT-2 (gpt2.h) or a model of
 * the Llama family (llama_train.h), behind one small interface: the
 * parameter buffer and its tensors, a workspace, a forward pass with
 * logits at given positions, the backward pass into a gradient model of
 * the same shape, and the shape's words for a training's fingerprint.
 * Each call switches on the family; the trainer knows neither. */
#ifndef STAMP_TRAIN_NET_H
#define STAMP_TRAIN_NET_H

#include "base/hash.h"
#include "model/gpt2.h"
#include "model/llama_train.h"

#include <stddef.h>

typedef enum { TRAIN_NET_GPT2, TRAIN_NET_LLAMA } train_net_family;

/* A network: one of the two models, not owned (except by
 * train_net_grads_new's). */
typedef struct {
    train_net_family family;
    gpt2_model *gpt2;
    llama_model *llama;
} train_net;

static inline train_net train_net_of_gpt2(gpt2_model *m)
{
    return (train_net){TRAIN_NET_GPT2, m, NULL};
}
static inline train_net train_net_of_llama(llama_model *m)
{
    return (train_net){TRAIN_NET_LLAMA, NULL, m};
}

/* Every parameter, one buffer; *n gets its length. */
float *train_net_params(const train_net *n, size_t *count);
size_t train_net_positions(const train_net *n);  /* the context */
size_t train_net_vocab(const train_net *n);

/* The tensors in buffer order: tensor i's floats and whether it is a
 * weight matrix (decayed); returns 0 past the last tensor. */
int train_net_tensor(const train_net *n, size_t i, size_t *numel,
                     int *matrix);

/* A zeroed model of n's shape, owned by *g (train_net_grads_free). */
int train_net_grads_new(train_net *g, const train_net *n);
void train_net_grads_free(train_net *g); /* accepts a zeroed one */

typedef struct train_net_acts train_net_acts; /* opaque */

/* A workspace for passes of up to B x T tokens and max_logits logits;
 * forward_only: no backward after its passes (less memory). */
int train_net_acts_new(train_net_acts **a, const train_net *n, size_t B,
                       size_t T, size_t max_logits, int forward_only);
void train_net_acts_free(train_net_acts *a); /* accepts NULL */

/* A full pass over tokens (B, T), logits at flat positions pos[0..nl). */
int train_net_forward(const train_net *n, train_net_acts *a,
                      const int *tokens, size_t B, size_t T,
                      const size_t *pos, size_t nl);
const float *train_net_logits(const train_net_acts *a); /* (nl, V) */

/* The backward pass of the last forward (same arguments): dLoss/dparams
 * added (+=) to the gradient model g. */
int train_net_backward(const train_net *n, train_net_acts *a,
                       const int *tokens, size_t B, size_t T,
                       const size_t *pos, size_t nl, const float *dlogits,
                       train_net *g);

/* Adds the family's shape (the config, the parameter count) to a
 * training's fingerprint. GPT-2's words are those train.c always
 * hashed, so its fingerprints do not change. */
void train_net_fingerprint(const train_net *n, hash_stream *h);

#endif
