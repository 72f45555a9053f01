/* linalg: the layer-level kernels of the GPT-2 network (and, in the last
 * section, of the Llama family: weights in F32, F16 or BF16, RMSNorm,
 * rotary embeddings, SwiGLU, grouped-query attention), in the style of
 * karpathy/llm.c: each layer has a *_forward and a *_backward; arguments
 * are outputs first, then inputs, then sizes; gradients are prefixed d.
 * Backward kernels ACCUMULATE (+=) into their gradient outputs, so the
 * caller zeroes them first; a NULL gradient output is not computed.
 *
 * Weights are in Hugging Face's orientation: a linear layer's weight is
 * (IN, OUT) and y = x @ W + b (cblas_sgemm RowMajor, NoTrans, NoTrans).
 * Every matmul goes through OpenBLAS sgemm.
 *
 * Threads: the fast kernels split rows (or (batch, head) pairs) over
 * OpenMP threads when called outside a parallel region and run on one
 * thread inside one (BLAS too: the OpenMP build of OpenBLAS does that by
 * itself). Every reduction runs in an order that does not depend on the
 * number of threads, so results are bitwise reproducible.
 *
 * Each fast kernel has a naive twin, *_naive, with the same signature:
 * plain loops, single-threaded, obviously correct. Only tests call them. */
#ifndef STAMP_LINALG_H
#define STAMP_LINALG_H

#include <stdbool.h>
#include <stddef.h>

/* ---- token + position embedding ---------------------------------------
 * out (B,T,C) = wte[inp[b,t]] + wpe[t]; inp (B,T) ids in [0, V);
 * wte (V,C), wpe (maxT,C) with T <= maxT. */
void linalg_encoder_forward(float *out, const int *inp, const float *wte,
                            const float *wpe, size_t B, size_t T, size_t C);
/* dwte (V,C) and dwpe (maxT,C) += from dout (B,T,C). Either may be NULL. */
void linalg_encoder_backward(float *dwte, float *dwpe, const float *dout,
                             const int *inp, size_t B, size_t T, size_t C);

/* ---- layer normalisation over the last dimension ---------------------
 * out (N,C) = (inp - mean) * rstd * weight + bias, row by row;
 * mean, rstd (N) are kept for the backward pass (either may be NULL). */
void linalg_layernorm_forward(float *out, float *mean, float *rstd,
                              const float *inp, const float *weight,
                              const float *bias, size_t N, size_t C,
                              float eps);
/* dinp (N,C), dweight (C), dbias (C) += ; any of the three may be NULL. */
void linalg_layernorm_backward(float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp,
                               const float *weight, const float *mean,
                               const float *rstd, size_t N, size_t C);

/* ---- linear layer, HF orientation ------------------------------------
 * out (N,OUT) = inp (N,IN) @ weight (IN,OUT) + bias (OUT; may be NULL). */
void linalg_matmul_forward(float *out, const float *inp, const float *weight,
                           const float *bias, size_t N, size_t IN,
                           size_t OUT);
/* dinp (N,IN) += dout @ weight^T; dweight (IN,OUT) += inp^T @ dout;
 * dbias (OUT) += column sums of dout (N,OUT). Any output may be NULL. */
void linalg_matmul_backward(float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp,
                            const float *weight, size_t N, size_t IN,
                            size_t OUT);

/* ---- linear layer with a transposed weight (the tied lm_head) --------
 * out (N,OUT) = inp (N,IN) @ weight^T, weight (OUT,IN) (wte: OUT = V). */
void linalg_matmul_nt_forward(float *out, const float *inp,
                              const float *weight, size_t N, size_t IN,
                              size_t OUT);
/* dinp (N,IN) += dout @ weight; dweight (OUT,IN) += dout^T @ inp.
 * Either output may be NULL. */
void linalg_matmul_nt_backward(float *dinp, float *dweight, const float *dout,
                               const float *inp, const float *weight,
                               size_t N, size_t IN, size_t OUT);

/* ---- causal multi-head self-attention --------------------------------
 * inp (B,T,3C) holds q, k, v side by side (c_attn's output); head h uses
 * channels h*hs .. (h+1)*hs-1 of each, hs = C/NH. att (B,NH,T,T) gets
 * the attention weights softmax(q k^T / sqrt(hs)) with zeros above the
 * diagonal; out (B,T,C) = att @ v, heads side by side. */
void linalg_attention_forward(float *out, float *att, const float *inp,
                              size_t B, size_t T, size_t C, size_t NH);
/* dinp (B,T,3C) += ; datt (B,NH,T,T) is scratch, overwritten. */
void linalg_attention_backward(float *dinp, float *datt, const float *dout,
                               const float *inp, const float *att, size_t B,
                               size_t T, size_t C, size_t NH);

/* The same for query rows from[b] .. len[b]-1 of each sequence only (keys
 * and values 0 .. len[b]-1 of inp, laid out (B,T,3C) as above). out and
 * dout are compact: the row of (b, t) is off[b] + t - from[b]. att and
 * datt keep the (B,NH,T,T) layout; only the computed rows are written.
 * dinp (B,T,3C) += : dq on the computed rows, dk and dv on 0..len-1. */
void linalg_attention_rows_forward(float *out, float *att, const float *inp,
                                   size_t B, size_t T, size_t C, size_t NH,
                                   const size_t *from, const size_t *len,
                                   const size_t *off);
void linalg_attention_rows_backward(float *dinp, float *datt,
                                    const float *dout, const float *inp,
                                    const float *att, size_t B, size_t T,
                                    size_t C, size_t NH, const size_t *from,
                                    const size_t *len, const size_t *off);

/* ---- GELU, tanh form (gelu_new) --------------------------------------
 * out (N) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void linalg_gelu_forward(float *out, const float *inp, size_t N);
/* dinp (N) += gelu'(inp) * dout. */
void linalg_gelu_backward(float *dinp, const float *inp, const float *dout,
                          size_t N);
/* The same with GELU's loops compiled for one instruction set (the two
 * above take the widest the CPU has); false, and nothing done, when the
 * CPU lacks it. Every set gives the same bits. */
typedef enum { LINALG_ISA_BASE, LINALG_ISA_AVX2, LINALG_ISA_AVX512 } linalg_isa;
bool linalg_gelu_forward_isa(linalg_isa isa, float *out, const float *inp,
                             size_t N);
bool linalg_gelu_backward_isa(linalg_isa isa, float *dinp, const float *inp,
                              const float *dout, size_t N);

/* ---- residual connection ---------------------------------------------
 * out (N) = inp1 + inp2; backward: dinp1, dinp2 += dout. */
void linalg_residual_forward(float *out, const float *inp1,
                             const float *inp2, size_t N);
void linalg_residual_backward(float *dinp1, float *dinp2, const float *dout,
                              size_t N);

/* ---- softmax and cross-entropy over rows of V logits -----------------
 * probs (N,V) = softmax of each row of logits (N,V). */
void linalg_softmax_forward(float *probs, const float *logits, size_t N,
                            size_t V);
/* out (N,V) = log-softmax of each row; out may equal logits. */
void linalg_log_softmax_forward(float *out, const float *logits, size_t N,
                                size_t V);
/* losses (N) = -log softmax(logits row i)[targets[i]]; targets in [0,V).
 * Returns the sum of the losses (accumulated in double). */
double linalg_crossentropy_forward(float *losses, const float *logits,
                                   const int *targets, size_t N, size_t V);
/* dlogits (N,V) += dlosses[i] * (softmax(row i) - onehot(targets[i])). */
void linalg_crossentropy_softmax_backward(float *dlogits, const float *dlosses,
                                          const float *logits,
                                          const int *targets, size_t N,
                                          size_t V);

/* ======================================================================
 * The Llama family (Llama, Mistral, Qwen2, Qwen3): weights in their
 * stored dtype, RMSNorm, rotary embeddings, SwiGLU, grouped-query
 * attention. The backward kernels here compute input gradients only
 * (MEMIT's target vectors need no weight gradients); they accumulate.
 * ====================================================================== */

/* A weight's element type as safetensors stores it. Weights of these
 * types are read with memcpy: their data needs no alignment. */
typedef enum { LINALG_F32, LINALG_F16, LINALG_BF16 } linalg_dtype;

/* out (n) = src (n elements of dtype), exactly (every F16 and BF16 value
 * is a float). */
void linalg_to_f32(float *out, const void *src, linalg_dtype dtype, size_t n);

/* ---- linear layer, nn.Linear orientation, weight of any dtype --------
 * out (N,OUT) = inp (N,IN) @ weight^T + bias; weight (OUT,IN) in dtype
 * wdtype, bias (OUT) or NULL. The weight is converted to float a block
 * at a time into a per-thread buffer and multiplied with sgemm; the
 * blocks depend on IN and OUT only (the same bits for any thread count
 * and any dtype holding the same values). */
void linalg_linear_forward(float *out, const float *inp, const void *weight,
                           linalg_dtype wdtype, const float *bias, size_t N,
                           size_t IN, size_t OUT);
/* dinp (N,IN) += dout (N,OUT) @ weight, weight (OUT,IN) in wdtype. */
void linalg_linear_backward(float *dinp, const float *dout,
                            const void *weight, linalg_dtype wdtype,
                            size_t N, size_t IN, size_t OUT);

/* ---- embedding lookup ------------------------------------------------
 * out (N,C) = table[inp[n]], table (V,C) in dtype; inp (N) in [0, V). */
void linalg_embedding_forward(float *out, const int *inp, const void *table,
                              linalg_dtype dtype, size_t N, size_t C);

/* ---- RMSNorm over the last dimension ----------------------------------
 * out (N,C) = inp * rstd * weight, rstd (N) = 1 / sqrt(mean(inp^2) + eps)
 * (kept for the backward pass; may be NULL). out may equal inp. */
void linalg_rmsnorm_forward(float *out, float *rstd, const float *inp,
                            const float *weight, size_t N, size_t C,
                            float eps);
/* dinp (N,C) += the input gradient of the forward above. */
void linalg_rmsnorm_backward(float *dinp, const float *dout, const float *inp,
                             const float *weight, const float *rstd, size_t N,
                             size_t C);

/* ---- rotary position embedding, Hugging Face's rotate_half form ------
 * Rows of NH heads of D channels (D even), row n at position pos[n]:
 * for i < D/2, with c = cos[p*D/2 + i], s = sin[p*D/2 + i],
 *   out[i] = x[i] c - x[i + D/2] s,  out[i + D/2] = x[i + D/2] c + x[i] s.
 * inp, out (N, NH*D); out may equal inp; cos, sin (maxpos, D/2). */
void linalg_rope_forward(float *out, const float *inp, const float *cos,
                         const float *sin, const size_t *pos, size_t N,
                         size_t NH, size_t D);
/* dinp (N, NH*D) += the rotation's transpose applied to dout. */
void linalg_rope_backward(float *dinp, const float *dout, const float *cos,
                          const float *sin, const size_t *pos, size_t N,
                          size_t NH, size_t D);

/* ---- SwiGLU ------------------------------------------------------------
 * out (N) = silu(gate) * up, silu(x) = x / (1 + exp(-x)). */
void linalg_swiglu_forward(float *out, const float *gate, const float *up,
                           size_t N);
/* dgate, dup (N) += ; either may be NULL. */
void linalg_swiglu_backward(float *dgate, float *dup, const float *dout,
                            const float *gate, const float *up, size_t N);

/* ---- causal grouped-query attention -----------------------------------
 * q (B,T,NH*D), k and v (B,T,NKV*D); query head h reads key/value head
 * h / (NH/NKV) (NKV divides NH). att (B,NH,T,T) gets softmax(q k^T /
 * sqrt(D)) with zeros above the diagonal; out = att @ v, heads side by
 * side. from, len, off: NULL for every row; else only query rows
 * from[b] .. len[b]-1 of sequence b against keys 0 .. len[b]-1, with out
 * compact (row of (b, t) = off[b] + t - from[b]); att keeps its layout. */
void linalg_gqa_attention_forward(float *out, float *att, const float *q,
                                  const float *k, const float *v, size_t B,
                                  size_t T, size_t NH, size_t NKV, size_t D,
                                  const size_t *from, const size_t *len,
                                  const size_t *off);
/* dq (B,T,NH*D) += on the computed query rows; dk, dv (B,T,NKV*D) +=
 * on rows 0..len-1; datt (B,NH,T,T) is scratch. dout laid out as out. */
void linalg_gqa_attention_backward(float *dq, float *dk, float *dv,
                                   float *datt, const float *dout,
                                   const float *q, const float *k,
                                   const float *v, const float *att, size_t B,
                                   size_t T, size_t NH, size_t NKV, size_t D,
                                   const size_t *from, const size_t *len,
                                   const size_t *off);

#endif
