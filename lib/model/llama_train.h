/* llama_train: a Llama-family model that can be trained. Every
 * parameter is an F32 float of one buffer the model owns (m->params, in
 * the order below), and the llama_model's matrices and vectors point
 * into it, so llama_forward and llama_backward_params run on it as on a
 * loaded model. The order of the tensors is the order of the saved file:
 *
 *   model.embed_tokens.weight                 (V, C)
 *   per layer l, "model.layers.l." +
 *     input_layernorm.weight                  (C)
 *     self_attn.q_proj.weight [, .bias]       (QD, C) [(QD)]
 *     self_attn.k_proj.weight [, .bias]       (KD, C) [(KD)]
 *     self_attn.v_proj.weight [, .bias]       (KD, C) [(KD)]
 *     self_attn.q_norm.weight, k_norm.weight  (D), (D)      Qwen3
 *     self_attn.o_proj.weight [, .bias]       (C, QD) [(C)]
 *     post_attention_layernorm.weight         (C)
 *     mlp.gate_proj.weight [, .bias]          (F, C) [(F)]
 *     mlp.up_proj.weight [, .bias]            (F, C) [(F)]
 *     mlp.down_proj.weight [, .bias]          (C, F) [(C)]
 *   model.norm.weight                         (C)
 *   lm_head.weight                            (V, C)   when untied
 *
 * The weight-gradient kernels the backward pass needs beyond linalg's
 * (RMSNorm's weight, a bias's column sums, the embedding's scatter) are
 * here too, each with a naive twin in llama_train_naive.h. */
#ifndef STAMP_LLAMA_TRAIN_H
#define STAMP_LLAMA_TRAIN_H

#include "model/llama.h"
#include "model/safetensors.h"

#include <stdint.h>

/* One tensor of a trainable model: its file name, shape and place. */
typedef struct {
    char name[96];
    int ndim;          /* 1 or 2 */
    size_t shape[2];
    size_t offset;     /* floats from m->params */
    size_t numel;
    int matrix;        /* 1 for a weight matrix (decayed in training) */
} llama_tensor;

/* Allocates a trainable model of config c, every parameter 0. The
 * config must be consistent (head_dim even, NKV dividing NH, sizes > 0):
 * else ERR_INVALID. On failure *m is zeroed. */
int llama_model_init(llama_model *m, const llama_config *c);

/* llama_model_init, then the initialisation used for the worlds,
 * deterministic for a seed: matrices N(0, 0.02) with the residual
 * projections (o_proj, down_proj) N(0, 0.02 / sqrt(2 L)) as GPT-2's,
 * norm weights 1, biases 0. */
int llama_model_init_random(llama_model *m, const llama_config *c,
                            uint64_t seed);

/* The tensors of a trainable model in buffer order: writes up to max of
 * them to out (may be NULL) and returns how many there are. */
size_t llama_model_tensors(const llama_model *m, llama_tensor *out,
                           size_t max);

/* Writes DIR/config.json (transformers' keys for the architecture, the
 * config of m) and DIR/model.safetensors (the tensors above, stored as
 * dtype: ST_F32, or ST_BF16 / ST_F16 rounded to nearest even), each
 * atomically; DIR is created if missing. ERR_INVALID for a model that is
 * not trainable. */
int llama_model_save(const llama_model *m, const char *dir, st_dtype dtype);

/* ---- weight-gradient kernels (accumulate, as linalg's) --------------- */

/* dweight (C) += sum over rows of dout * inp * rstd: the weight gradient
 * of linalg_rmsnorm_forward(out, rstd, inp, weight, N, C). Columns are
 * split over threads; each sums its rows in order (any thread count
 * gives the same bits). */
void llama_rmsnorm_weight_backward(float *dweight, const float *dout,
                                   const float *inp, const float *rstd,
                                   size_t N, size_t C);

/* dbias (OUT) += the column sums of dout (N, OUT). */
void llama_bias_backward(float *dbias, const float *dout, size_t N,
                         size_t OUT);

/* dtable (V, C) rows inp[n] += dout (N, C) rows n, in order of n. */
void llama_embedding_backward(float *dtable, const float *dout,
                              const int *inp, size_t N, size_t C);

#endif
