/* llama_train_naive: the naive twins of llama_train.h's weight-gradient
 * kernels: the same signatures, plain loops in double, one thread. Only
 * the tests call them. */
#ifndef STAMP_LLAMA_TRAIN_NAIVE_H
#define STAMP_LLAMA_TRAIN_NAIVE_H

#include <stddef.h>

void llama_rmsnorm_weight_backward_naive(float *dweight, const float *dout,
                                         const float *inp, const float *rstd,
                                         size_t N, size_t C);
void llama_bias_backward_naive(float *dbias, const float *dout, size_t N,
                               size_t OUT);
void llama_embedding_backward_naive(float *dtable, const float *dout,
                                    const int *inp, size_t N, size_t C);

#endif
