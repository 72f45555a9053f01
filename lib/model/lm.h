/* lm: the one interface to the language models stamp edits, so that the
 * solver, the key statistics, eval, predict and export do not care which
 * family they work on. Two families sit behind it:
 *   GPT-2  (GPT2LMHeadModel; model/gpt2.h): MEMIT edits mlp.c_proj,
 *          stored (F, C) = [in, out] (Conv1D), F32;
 *   Llama  (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 *          Qwen3ForCausalLM; model/llama.h): MEMIT edits mlp.down_proj,
 *          stored (C, F) = [out, in] (nn.Linear), in F32, F16 or BF16.
 * The family comes from config.json's "architectures" (GPT-2 when it
 * names none, as old GPT-2 directories do).
 *
 * A pass (lm_batch, lm_hook) means exactly what gpt2_batch says
 * (model/gpt2.h): start and end layers, a hook that adds vectors to the
 * residual stream after a block, logit positions, row ranges, an input
 * stream. The key of layer l at a position is the input of the edited
 * matrix there (GPT-2: gelu(c_fc(ln_2(x))); Llama: silu(gate) * up).
 *
 * The edited matrix (lm_edit_view) is always a writable F32 array in the
 * tensor's stored orientation; the view says where weight (key f, output
 * c) lives, so MEMIT's update dW (F, C) lands right in both. A tensor
 * stored in F16 or BF16 is held as F32 values its dtype can represent
 * (lm_edit_round after each change): the model stamp runs, diffs and
 * exports is then exactly the model in the file's dtype. */
#ifndef STAMP_LM_H
#define STAMP_LM_H

#include "base/half.h"
#include "base/linalg.h"
#include "model/gpt2.h"
#include "model/llama.h"

#include <stddef.h>

typedef enum { LM_GPT2, LM_LLAMA } lm_family;

/* The shape every caller needs; field names as gpt2_config's. */
typedef struct {
    lm_family family;
    const char *arch;      /* config.json's architecture name */
    size_t n_layer;        /* L */
    size_t n_head;         /* query heads */
    size_t n_kv_head;      /* key/value heads (= n_head for GPT-2) */
    size_t head_dim;
    size_t n_embd;         /* C */
    size_t n_inner;        /* F: width of the keys */
    size_t vocab_size;     /* V */
    size_t n_positions;    /* the longest sequence a pass may hold */
} lm_config;

typedef struct {
    lm_config config;
    gpt2_model *gpt2;      /* exactly one of the two is set */
    llama_model *llama;
    int borrowed;          /* lm_from_gpt2: the model is the caller's */
} lm_model;

/* Reads DIR/config.json: the family and the shape. Errors name the file
 * (an unknown architecture by name). */
int lm_config_read(lm_config *c, const char *dir);

/* Loads the model in DIR (config.json and its weights: GPT-2's
 * model.safetensors, a Llama-family model's file or shards). On failure
 * *m is zeroed. */
int lm_model_load(lm_model *m, const char *dir);
void lm_model_free(lm_model *m); /* accepts NULL; leaves m zeroed */

/* Wraps a GPT-2 model the caller owns and keeps alive (tests, the world
 * builder); lm_model_free then leaves it alone. */
void lm_from_gpt2(lm_model *m, gpt2_model *g);

/* ---- passes ------------------------------------------------------------ */

/* lm_batch and lm_hook: model/lm_batch.h (gpt2_batch and llama_batch
 * are the same type). */

typedef struct lm_acts lm_acts; /* opaque: activations of one pass */

/* LM_ACTS_FORWARD_ONLY: passes that only read keys and block outputs (no
 * backward, no row ranges); both families then keep a fraction of the
 * memory. */
/* LM_ACTS_LOGITS_ONLY: passes that read only the logits (scoring): both
 * families keep no layer's keys or block outputs either. */
enum { LM_ACTS_FORWARD_ONLY = 1, LM_ACTS_LOGITS_ONLY = 2 };

int lm_acts_new(lm_acts **out, const lm_model *m, size_t B, size_t T,
                size_t max_logits, unsigned flags);
/* The same for passes whose backward and row ranges start at first_layer
 * or above (a hook at first_layer - 1): both families keep the
 * activations of the layers below in one shared slot. */
int lm_acts_new_from(lm_acts **out, const lm_model *m, size_t B, size_t T,
                     size_t max_logits, unsigned flags, size_t first_layer);
void lm_acts_free(lm_acts *a); /* accepts NULL */

int lm_forward(const lm_model *m, lm_acts *a, const lm_batch *b);
/* Input gradients only: dvec (hook->n, C) = dLoss/dvec. */
int lm_backward(const lm_model *m, lm_acts *a, const lm_batch *b,
                const float *dlogits, float *dvec);

const float *lm_acts_logits(const lm_acts *a);                 /* (n_logits, V) */
const float *lm_acts_mlp_key(const lm_acts *a, size_t layer);  /* (B, T, F) */
const float *lm_acts_block_out(const lm_acts *a, size_t layer);/* (B, T, C) */

/* log-softmax of n rows of V logits (out may equal logits). */
void lm_log_softmax(float *out, const float *logits, size_t n, size_t V);

/* Floating-point operations of one block at one position (matrices; a
 * multiply-add is 2) and of the head at one logit row, from the shapes;
 * attention's reads of earlier positions are 4 * C per position read. */
void lm_flops(const lm_config *c, double *block, double *head);

/* ---- the edited matrix ------------------------------------------------- */

typedef struct {
    float *w;              /* the tensor, F32, in its stored layout */
    size_t rows, cols;     /* its stored shape */
    size_t key_stride;     /* weight (f, c) is w[f * key_stride + */
    size_t out_stride;     /*                    c * out_stride] */
    linalg_dtype stored;   /* the dtype of the model's file */
} lm_edit_view;

/* Layer l's edited matrix, writable: a loaded model makes it an F32
 * copy of its own once, on first use (GPT-2 copies it out of the map, the
 * Llama family converts it). ERR_INVALID for a layer out of range. */
int lm_edit_view_get(lm_model *m, size_t layer, lm_edit_view *v);

/* x rounded to the nearest value of dtype (x itself for F32). */
static inline float lm_round_value(linalg_dtype dtype, float x)
{
    if (dtype == LINALG_BF16) return bf16_to_float(float_to_bf16(x));
    if (dtype == LINALG_F16) return half_to_float(float_to_half(x));
    return x;
}

/* Rounds every weight of the view to its stored dtype (nothing for F32),
 * as the file will hold it. */
void lm_edit_round(const lm_edit_view *v);

/* The edited tensor's name in the model's files
 * ("h.3.mlp.c_proj.weight", "model.layers.3.mlp.down_proj.weight"). */
void lm_edit_name(const lm_model *m, size_t layer, char *buf, size_t size);

/* The F32 values of the model tensor `name` that a store overlay may
 * replace: any GPT-2 tensor; a Llama-family model's edited matrices.
 * NULL (with an error set) for any other name. */
float *lm_overlay_tensor(lm_model *m, const char *name, size_t *numel);

#endif
