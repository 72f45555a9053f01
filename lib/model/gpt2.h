/* gpt2: the GPT-2 network in C, forward and backward, over one
 * contiguous parameter buffer (karpathy/llm.c's layout), with the two
 * hooks MEMIT needs: read the MLP key of any layer at any position, and
 * add a vector to the residual stream after a block at given positions.
 *
 * Weights are kept in Hugging Face's orientation (Conv1D weights are
 * [in, out]), so a tensor of the buffer is byte-for-byte the tensor of
 * model.safetensors: an edited tensor can be written back unchanged.
 * A model from gpt2_model_init owns one buffer; a loaded model uses its
 * F32 tensors in place from the read-only map of model.safetensors and
 * owns only copies: of tensors stored in F16/BF16 or unaligned
 * (converted at load), and of tensors handed out writable
 * (gpt2_tensor_mut: MEMIT's edited c_proj, store overlays).
 * Every matmul goes through OpenBLAS sgemm; GELU is the tanh form
 * (gelu_new); lm_head is tied to wte.
 *
 * Threads: gpt2_forward/gpt2_backward are reentrant for different
 * gpt2_acts. Inside an OpenMP parallel region they run single-threaded
 * (BLAS included); outside, they use every core. */
#ifndef STAMP_GPT2_H
#define STAMP_GPT2_H

#include "model/gpt2_config.h"
#include "model/lm_batch.h"
#include "model/safetensors.h"

#include <stddef.h>
#include <stdint.h>

#define GPT2_NUM_TENSORS 16

/* Pointers into gpt2_model.memory (gpt2_model_init's models only; a
 * loaded model leaves them NULL: its tensors are in gpt2_model.tensors,
 * one pointer per layer). L layers, C = n_embd, F = n_inner,
 * V = vocab_size, maxT = n_positions. */
typedef struct {
    float *wte;      /* (V, C)        wte.weight, also the lm_head */
    float *wpe;      /* (maxT, C)     wpe.weight */
    float *ln1w;     /* (L, C)        h.l.ln_1.weight */
    float *ln1b;     /* (L, C)        h.l.ln_1.bias */
    float *qkvw;     /* (L, C, 3C)    h.l.attn.c_attn.weight */
    float *qkvb;     /* (L, 3C)       h.l.attn.c_attn.bias */
    float *attprojw; /* (L, C, C)     h.l.attn.c_proj.weight */
    float *attprojb; /* (L, C)        h.l.attn.c_proj.bias */
    float *ln2w;     /* (L, C)        h.l.ln_2.weight */
    float *ln2b;     /* (L, C)        h.l.ln_2.bias */
    float *fcw;      /* (L, C, F)     h.l.mlp.c_fc.weight */
    float *fcb;      /* (L, F)        h.l.mlp.c_fc.bias */
    float *fcprojw;  /* (L, F, C)     h.l.mlp.c_proj.weight: MEMIT edits this */
    float *fcprojb;  /* (L, C)        h.l.mlp.c_proj.bias */
    float *lnfw;     /* (C)           ln_f.weight */
    float *lnfb;     /* (C)           ln_f.bias */
} gpt2_params;

typedef struct {
    gpt2_config config;
    size_t sizes[GPT2_NUM_TENSORS]; /* floats per tensor, in struct order */
    size_t num_parameters;
    float *memory;   /* all parameters, contiguous; NULL when loaded */
    gpt2_params p;   /* into memory; zeroed when loaded */
    /* Every tensor of every layer: tensors[i * n_layer + l] is layer l's
     * slice of tensor i (global tensors at l = 0), pointing into memory,
     * into the map of `file`, or to owned[i * n_layer + l]. */
    const float **tensors;
    float **owned;   /* loaded models: the copies the model owns, or NULL */
    st_file *file;   /* loaded models: the mapped model.safetensors */
} gpt2_model;

/* Allocates a zeroed model of the given shape (n_inner 0 means 4 n_embd,
 * layer_norm_epsilon 0 means 1e-5). */
int gpt2_model_init(gpt2_model *m, const gpt2_config *c);
void gpt2_model_free(gpt2_model *m); /* accepts NULL; leaves m zeroed */

/* GPT-2's initialisation, deterministic for a seed: weights N(0, 0.02),
 * residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2L)),
 * LayerNorm weights 1, biases 0. */
void gpt2_model_init_random(gpt2_model *m, uint64_t seed);

/* Loads DIR/config.json and DIR/model.safetensors (names with or without
 * the "transformer." prefix; extra tensors such as attn.bias ignored).
 * Every tensor GPT-2 needs must be present with the shape config.json
 * implies; errors name the file and the tensor. The file stays mapped
 * read-only until gpt2_model_free: F32 tensors are used in place, F16 and
 * BF16 ones (and any F32 tensor not 4-byte aligned in the file) are
 * converted to owned F32 copies. */
int gpt2_model_load(gpt2_model *m, const char *dir);

/* Bytes of parameters the model holds in memory of its own: all of them
 * for gpt2_model_init's models, the owned copies for a loaded one. */
size_t gpt2_model_owned_bytes(const gpt2_model *m);

/* Writes DIR/config.json and DIR/model.safetensors with transformers'
 * names ("transformer.h.0.attn.c_attn.weight", ...), atomically. */
int gpt2_model_save(const gpt2_model *m, const char *dir);

/* The tensor called `name` in HF naming ("h.3.mlp.c_proj.weight", with
 * or without "transformer."), read-only (a loaded model's may be in its
 * read-only map), its element count and shape (shape may be NULL; up to
 * 2 dims). NULL when unknown. */
const float *gpt2_tensor(const gpt2_model *m, const char *name,
                         size_t *numel, size_t shape[2], int *ndim);

/* The same tensor, writable: a loaded model copies it out of the map on
 * the first call (the copy is then what every pass uses). NULL with an
 * error set when unknown or out of memory. */
float *gpt2_tensor_mut(gpt2_model *m, const char *name, size_t *numel);

/* Writes the HF name of parameter tensor `index` (0..GPT2_NUM_TENSORS-1)
 * of layer `layer` into buf ("h.3.mlp.c_proj.weight", "wte.weight"). */
void gpt2_tensor_name(char *buf, size_t size, int index, size_t layer);
/* The indices of gpt2_params' fields (GPT2_FCPROJW: MEMIT's). */
enum {
    GPT2_WTE, GPT2_WPE, GPT2_LN1W, GPT2_LN1B, GPT2_QKVW, GPT2_QKVB,
    GPT2_ATTPROJW, GPT2_ATTPROJB, GPT2_LN2W, GPT2_LN2B, GPT2_FCW, GPT2_FCB,
    GPT2_FCPROJW, GPT2_FCPROJB, GPT2_LNFW, GPT2_LNFB
};

/* Layer `layer`'s slice of tensor `index` (a GPT2_* index; global
 * tensors: layer 0), read-only, as gpt2_tensor. No range checks. */
static inline const float *gpt2_layer_tensor(const gpt2_model *m, int index,
                                             size_t layer)
{
    return m->tensors[(size_t)index * m->config.n_layer + layer];
}

/* ---- running the network -------------------------------------------- */

/* A pass and its hook: lm_batch.h says what each field means. */
typedef lm_hook gpt2_hook;
typedef lm_batch gpt2_batch;

typedef struct gpt2_acts gpt2_acts; /* opaque: activations of one pass */

/* Workspace for passes of up to B x T tokens and up to max_logits logit
 * positions, keeping every layer's activations (any pass, backward with
 * weight gradients included); one per thread. */
int gpt2_acts_new(gpt2_acts **out, const gpt2_config *c, size_t B, size_t T,
                  size_t max_logits);

/* Flags of gpt2_acts_new_from (llama.h's, with the same meaning).
 * FORWARD_ONLY keeps, per layer, only what the accessors return (the MLP
 * keys and the block outputs) and shares one layer's worth of the rest
 * between layers: no backward and no row ranges then (ERR_INVALID).
 * LOGITS_ONLY (implies FORWARD_ONLY) keeps no layer's keys or block
 * outputs either (the accessors return NULL, and a later pass from a
 * layer above 0 needs an input): passes that read only the logits. */
enum { GPT2_ACTS_FORWARD_ONLY = 1, GPT2_ACTS_LOGITS_ONLY = 2 };

/* A workspace as gpt2_acts_new's that keeps what flags say, and the
 * activations a backward pass reads only for layers first_layer and up
 * (the layers below share one slot; the keys and block outputs of every
 * layer stay): for passes whose backward and row ranges start at
 * first_layer or above (a hook at first_layer - 1 and no weight
 * gradients: with first_layer > 0, what only weight gradients read is not
 * kept), like MEMIT's target vectors. Results are bit-identical to
 * gpt2_acts_new's; a pass it cannot hold fails with ERR_INVALID. */
int gpt2_acts_new_from(gpt2_acts **out, const gpt2_config *c, size_t B,
                       size_t T, size_t max_logits, unsigned flags,
                       size_t first_layer);
void gpt2_acts_free(gpt2_acts *a); /* accepts NULL */

/* Bytes of the buffers the workspace allocated (the backward pass's
 * once one has run); 0 for NULL. */
size_t gpt2_acts_bytes(const gpt2_acts *a);

int gpt2_forward(const gpt2_model *m, gpt2_acts *a, const gpt2_batch *b);

/* After gpt2_forward(m, a, b): (n_logits, V) logits. */
const float *gpt2_acts_logits(const gpt2_acts *a);
/* (B, T, F): the MLP keys of layer l, gelu(c_fc(ln_2(x))) = the input of
 * mlp.c_proj, of the last pass (layers < start_layer from earlier). */
const float *gpt2_acts_mlp_key(const gpt2_acts *a, size_t layer);
/* (B, T, C): the output of block l (before any hook's addition). */
const float *gpt2_acts_block_out(const gpt2_acts *a, size_t layer);

/* Backward pass of the last gpt2_forward(m, a, b) with the same b.
 * dlogits: (n_logits, V), dLoss/dlogits.
 * grads: NULL, or a model of the same shape whose memory accumulates
 *   (+=) dLoss/dparams for every tensor the pass touched (blocks >=
 *   b->start_layer, ln_f, wte; wpe too when start_layer = 0). With NULL,
 *   no weight gradients are computed (faster).
 * dvec: NULL, or (b->hook->n, C), overwritten with dLoss/dvec[i].
 * Backward stops at block b->start_layer. */
int gpt2_backward(const gpt2_model *m, gpt2_acts *a, const gpt2_batch *b,
                  const float *dlogits, gpt2_model *grads, float *dvec);

/* log-softmax of each of n rows of V logits into out (n, V); out may
 * equal logits. */
void gpt2_log_softmax(float *out, const float *logits, size_t n, size_t V);

/* Mean cross-entropy of targets[i] under logits row i (n rows of V);
 * writes dlogits = d(mean)/dlogits when non-NULL. Returns the mean. */
double gpt2_crossentropy(const float *logits, const int *targets, size_t n,
                         size_t V, float *dlogits);

#endif
