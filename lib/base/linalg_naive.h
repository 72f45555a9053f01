/* linalg_naive: the naive twin of every kernel in linalg.h, same
 * signature with a _naive suffix: plain loops in the obvious order, the
 * oracle the tests compare the fast kernels against. Not part of the
 * public API: only linalg.c and the tests include this header
 * (tests/cli/t01-layers.sh checks it). */
#ifndef STAMP_LINALG_NAIVE_H
#define STAMP_LINALG_NAIVE_H

#include "base/linalg.h"

#include <stddef.h>

void linalg_encoder_forward_naive(float *out, const int *inp, const float *wte,
                                  const float *wpe, size_t B, size_t T,
                                  size_t C);
void linalg_encoder_backward_naive(float *dwte, float *dwpe,
                                   const float *dout, const int *inp,
                                   size_t B, size_t T, size_t C);
void linalg_layernorm_forward_naive(float *out, float *mean, float *rstd,
                                    const float *inp, const float *weight,
                                    const float *bias, size_t N, size_t C,
                                    float eps);
void linalg_layernorm_backward_naive(float *dinp, float *dweight,
                                     float *dbias, const float *dout,
                                     const float *inp, const float *weight,
                                     const float *mean, const float *rstd,
                                     size_t N, size_t C);
void linalg_matmul_forward_naive(float *out, const float *inp,
                                 const float *weight, const float *bias,
                                 size_t N, size_t IN, size_t OUT);
void linalg_matmul_backward_naive(float *dinp, float *dweight, float *dbias,
                                  const float *dout, const float *inp,
                                  const float *weight, size_t N, size_t IN,
                                  size_t OUT);
void linalg_matmul_nt_forward_naive(float *out, const float *inp,
                                    const float *weight, size_t N, size_t IN,
                                    size_t OUT);
void linalg_matmul_nt_backward_naive(float *dinp, float *dweight,
                                     const float *dout, const float *inp,
                                     const float *weight, size_t N,
                                     size_t IN, size_t OUT);
void linalg_attention_forward_naive(float *out, float *att, const float *inp,
                                    size_t B, size_t T, size_t C, size_t NH);
void linalg_attention_backward_naive(float *dinp, float *datt,
                                     const float *dout, const float *inp,
                                     const float *att, size_t B, size_t T,
                                     size_t C, size_t NH);
void linalg_gelu_forward_naive(float *out, const float *inp, size_t N);
void linalg_gelu_backward_naive(float *dinp, const float *inp,
                                const float *dout, size_t N);
void linalg_residual_forward_naive(float *out, const float *inp1,
                                   const float *inp2, size_t N);
void linalg_residual_backward_naive(float *dinp1, float *dinp2,
                                    const float *dout, size_t N);
void linalg_softmax_forward_naive(float *probs, const float *logits, size_t N,
                                  size_t V);
void linalg_log_softmax_forward_naive(float *out, const float *logits,
                                      size_t N, size_t V);
double linalg_crossentropy_forward_naive(float *losses, const float *logits,
                                         const int *targets, size_t N,
                                         size_t V);
void linalg_crossentropy_softmax_backward_naive(float *dlogits,
                                                const float *dlosses,
                                                const float *logits,
                                                const int *targets, size_t N,
                                                size_t V);

/* the Llama family's kernels */
void linalg_to_f32_naive(float *out, const void *src, linalg_dtype dtype,
                         size_t n);
void linalg_linear_forward_naive(float *out, const float *inp,
                                 const void *weight, linalg_dtype wdtype,
                                 const float *bias, size_t N, size_t IN,
                                 size_t OUT);
void linalg_linear_backward_naive(float *dinp, const float *dout,
                                  const void *weight, linalg_dtype wdtype,
                                  size_t N, size_t IN, size_t OUT);
void linalg_embedding_forward_naive(float *out, const int *inp,
                                    const void *table, linalg_dtype dtype,
                                    size_t N, size_t C);
void linalg_rmsnorm_forward_naive(float *out, float *rstd, const float *inp,
                                  const float *weight, size_t N, size_t C,
                                  float eps);
void linalg_rmsnorm_backward_naive(float *dinp, const float *dout,
                                   const float *inp, const float *weight,
                                   const float *rstd, size_t N, size_t C);
void linalg_rope_forward_naive(float *out, const float *inp, const float *cos,
                               const float *sin, const size_t *pos, size_t N,
                               size_t NH, size_t D);
void linalg_rope_backward_naive(float *dinp, const float *dout,
                                const float *cos, const float *sin,
                                const size_t *pos, size_t N, size_t NH,
                                size_t D);
void linalg_swiglu_forward_naive(float *out, const float *gate,
                                 const float *up, size_t N);
void linalg_swiglu_backward_naive(float *dgate, float *dup, const float *dout,
                                  const float *gate, const float *up,
                                  size_t N);
void linalg_gqa_attention_forward_naive(float *out, float *att, const float *q,
                                        const float *k, const float *v,
                                        size_t B, size_t T, size_t NH,
                                        size_t NKV, size_t D,
                                        const size_t *from, const size_t *len,
                                        const size_t *off);
void linalg_gqa_attention_backward_naive(float *dq, float *dk, float *dv,
                                         float *datt, const float *dout,
                                         const float *q, const float *k,
                                         const float *v, const float *att,
                                         size_t B, size_t T, size_t NH,
                                         size_t NKV, size_t D,
                                         const size_t *from,
                                         const size_t *len, const size_t *off);

#endif
