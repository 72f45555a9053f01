/* llama: the Llama family of networks (Llama, Mistral, Qwen2, Qwen3) in
 * C, forward and backward, with the hooks MEMIT needs, mirroring gpt2.h:
 * read the MLP keys of any layer (the input of mlp.down_proj, silu(gate)
 * * up), read the output of any block, add vectors to the residual stream
 * after a block at given positions, start a pass at a block, and carry
 * the loss's gradient back to those vectors.
 *
 * Weights stay where hf_weights mapped them, in their stored dtype (F32,
 * F16 or BF16): the model holds pointers into the maps and the kernels
 * convert a block at a time as they multiply (linalg_linear_*), so a
 * loaded model's memory is its files' size, not twice it. Only the small
 * vectors (norm weights, biases) are converted to F32 copies at load. A
 * trainable model (llama_train.h) owns every parameter in one F32
 * buffer instead, and llama_backward_params adds its weight gradients.
 * Matrices are in nn.Linear's orientation, (out_features, in_features),
 * byte for byte the tensors of the files.
 *
 * Per block, transformers' equations: h = RMSNorm(x); q, k, v = h Wq^T
 * (+ bq), ...; Qwen3: RMSNorm of q and of k per head; RoPE (rotate_half,
 * llama3 frequency scaling when configured); causal attention, query
 * head i reading key/value head i / (NH/NKV); x += o_proj(att); h =
 * RMSNorm(x); x += down_proj(silu(gate_proj(h)) * up_proj(h)). Then the
 * final RMSNorm and lm_head (embed_tokens when tied). Positions are 0..T-1
 * in each sequence (right padding).
 *
 * Threads: as gpt2's, llama_forward/llama_backward are reentrant for
 * different llama_acts; inside an OpenMP parallel region they run on the
 * calling thread, outside they use every core. */
#ifndef STAMP_LLAMA_H
#define STAMP_LLAMA_H

#include "base/linalg.h"
#include "model/hf_weights.h"
#include "model/llama_config.h"
#include "model/lm_batch.h"

#include <stddef.h>

/* A weight matrix: (rows, cols) = (out_features, in_features) elements
 * of dtype at data, into a map (or into memory the model owns, after
 * llama_model_down_f32). */
typedef struct {
    const void *data;
    linalg_dtype dtype;
    size_t rows, cols;
} llama_mat;

/* One block. NH*D = QD, NKV*D = KD. Vectors are F32 copies owned by the
 * model; absent ones (biases the architecture lacks) are NULL. */
typedef struct {
    llama_mat q, k, v;         /* (QD, C), (KD, C), (KD, C) */
    llama_mat o;               /* (C, QD) */
    llama_mat gate, up;        /* (F, C) */
    llama_mat down;            /* (C, F)   mlp.down_proj: MEMIT edits this */
    const float *attn_norm;    /* (C)      input_layernorm.weight */
    const float *mlp_norm;     /* (C)      post_attention_layernorm.weight */
    const float *q_norm;       /* (D)      Qwen3 self_attn.q_norm.weight */
    const float *k_norm;       /* (D)      Qwen3 self_attn.k_norm.weight */
    const float *q_bias;       /* (QD)     Qwen2; attention_bias */
    const float *k_bias;       /* (KD) */
    const float *v_bias;       /* (KD) */
    const float *o_bias;       /* (C)      attention_bias (Llama, Qwen3) */
    const float *gate_bias;    /* (F)      mlp_bias (Llama) */
    const float *up_bias;      /* (F) */
    const float *down_bias;    /* (C) */
} llama_layer;

typedef struct {
    llama_config config;
    llama_mat embed;           /* (V, C)   model.embed_tokens.weight */
    llama_mat lm_head;         /* (V, C)   lm_head.weight, or embed if tied */
    const float *norm;         /* (C)      model.norm.weight */
    llama_layer *layers;       /* (L) */
    hf_weights *weights;       /* the maps the matrices point into */
    float *vectors;            /* every F32 vector above, one allocation */
    size_t n_vectors;          /* floats in it */
    float **owned;             /* (L) down_proj made F32 (or NULL) */
    double *inv_freq;          /* (D/2) rotary frequencies */
    /* A trainable model (llama_train.h) owns every parameter, F32, in
     * one buffer the matrices and vectors above point into; weights and
     * vectors are then NULL. NULL for a loaded model. */
    float *params;             /* (n_params) */
    size_t n_params;
} llama_model;

/* Loads DIR/config.json and the weights (hf_weights_open: one file or
 * shards). Every tensor the architecture needs must be present with the
 * shape config.json implies; lm_head.weight is read when the embeddings
 * are untied and ignored when tied; tensors of layers beyond
 * num_hidden_layers are an error, other extra tensors are ignored.
 * Errors name the file and the tensor (expected and found shapes). On
 * failure *m is zeroed. */
int llama_model_load(llama_model *m, const char *dir);
void llama_model_free(llama_model *m); /* accepts NULL; leaves m zeroed */

/* Bytes the model allocated itself (vectors, frequencies, layer table,
 * owned matrices): not the mapped weights. */
size_t llama_model_owned_bytes(const llama_model *m);

/* Makes layer l's down_proj an F32 matrix the model owns (converted from
 * its map once; later calls return the same memory) and returns it,
 * writable, (C, F) row-major: MEMIT adds its update here. ERR_NOMEM, or
 * ERR_INVALID for a layer out of range. */
int llama_model_down_f32(llama_model *m, size_t layer, float **out);

/* ---- running the network (as gpt2.h; the structs have gpt2's fields) --- */

/* A pass and its hook: lm_batch.h says what each field means. */
typedef lm_hook llama_hook;
typedef lm_batch llama_batch;

typedef struct llama_acts llama_acts; /* opaque: activations of one pass */

/* Flags of llama_acts_new. FORWARD_ONLY keeps, per layer, only what the
 * accessors return (the MLP keys and the block outputs) and shares one
 * layer's worth of the rest between layers: a fraction of the memory for
 * key passes over many tokens; no backward and no row ranges then. */
/* LOGITS_ONLY (implies FORWARD_ONLY) keeps no layer's keys or block
 * outputs either (the accessors return NULL): passes that read only the
 * logits, like scoring. */
enum { LLAMA_ACTS_FORWARD_ONLY = 1, LLAMA_ACTS_LOGITS_ONLY = 2 };

/* Workspace for passes of up to B x T tokens (T at most the model's
 * max_position_embeddings and sliding window) and up to max_logits
 * logit positions; one per thread. */
int llama_acts_new(llama_acts **out, const llama_config *c, size_t B,
                   size_t T, size_t max_logits, unsigned flags);
/* The same, keeping the per-layer activations a backward pass reads only
 * for layers first_layer and up (the layers below share one slot): for
 * passes whose backward and row ranges start at first_layer or above (a
 * hook at first_layer - 1 and no weight gradients), like the target
 * vectors' steps; a fraction of the memory when the hook is deep. With
 * first_layer > 0 (and no FORWARD_ONLY) it keeps only what input
 * gradients read: no keys (llama_acts_mlp_key returns NULL) and no block
 * outputs below first_layer - 1 (llama_acts_block_out returns NULL for
 * those; a pass from a layer below first_layer is refused). */
int llama_acts_new_from(llama_acts **out, const llama_config *c, size_t B,
                        size_t T, size_t max_logits, unsigned flags,
                        size_t first_layer);
void llama_acts_free(llama_acts *a); /* accepts NULL */

int llama_forward(const llama_model *m, llama_acts *a, const llama_batch *b);

/* After llama_forward(m, a, b): (n_logits, V) logits. */
const float *llama_acts_logits(const llama_acts *a);
/* (B, T, F): silu(gate) * up of layer l, the input of its down_proj. */
const float *llama_acts_mlp_key(const llama_acts *a, size_t layer);
/* (B, T, C): the output of block l (before any hook's addition). */
const float *llama_acts_block_out(const llama_acts *a, size_t layer);

/* Backward pass of the last llama_forward(m, a, b) with the same b, which
 * must have a hook. dlogits: (n_logits, V), dLoss/dlogits. dvec: (hook->n,
 * C), overwritten with dLoss/dvec[i]. No weight gradients: the pass stops
 * at the hook's block. */
int llama_backward(const llama_model *m, llama_acts *a, const llama_batch *b,
                   const float *dlogits, float *dvec);

/* llama_backward with weight gradients, as gpt2_backward's grads: grads
 * is NULL (then this is llama_backward) or a trainable model of m's
 * shape and options (llama_model_init) whose parameters accumulate (+=)
 * dLoss/dparams for every tensor: the embedding, each block's norms,
 * projections, biases and q/k norms, the final norm, and lm_head (into
 * the embedding when tied). Weight gradients need a pass from layer 0
 * without row ranges; the hook is optional then (dvec as above when
 * both are given). */
int llama_backward_params(const llama_model *m, llama_acts *a,
                          const llama_batch *b, const float *dlogits,
                          llama_model *grads, float *dvec);

#endif
