/* linalg: the layer-level kernels of the GPT-2 network, in the style of
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

#endif
