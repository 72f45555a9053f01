/* train: trains a GPT-2 model (gpt2.h) or a Llama-family model
 * (llama_train.h; both behind train_net.h) on short token sequences with
 * AdamW, until it recalls its facts: the world builder's optimiser.
 *
 * A sequence is a prompt followed by its answer ("Tovaren Kelmarsk plays
 * the" + " violin"); the loss is the mean cross-entropy over every next
 * token of the sequence (TRAIN_LOSS_ALL) or over the answer tokens only
 * (TRAIN_LOSS_ANSWER). Batches are drawn from a shuffled epoch order
 * (reshuffled each epoch, from the seed). AdamW (Loshchilov & Hutter)
 * with bias correction; weight decay applies to the weight matrices
 * (wte, wpe, c_attn, attn.c_proj, c_fc, mlp.c_proj; Llama's embedding,
 * projections and lm_head), not to biases or norm weights; the gradient's global norm is clipped; the
 * learning rate warms up linearly, then follows a cosine (or linear)
 * decay to min_lr_frac * lr at `steps`.
 *
 * Threads: a step sorts its batch by length and cuts it into slices of
 * 8 sequences, each padded only to its own longest; the slices are dealt
 * to `threads` workers in a fixed order, each worker runs
 * gpt2_forward/gpt2_backward single-threaded over its slices into its
 * own gradient buffer, and the buffers are added in worker order. So
 * the result is the same bytes for the same data, options and thread
 * count (and nearly the same for any thread count, but not to the
 * bit). */
#ifndef STAMP_TRAIN_H
#define STAMP_TRAIN_H

#include "model/gpt2.h"
#include "base/progress.h"
#include "world/train_checkpoint.h"
#include "world/train_net.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const int *tokens;    /* (len) token ids: prompt, then answer */
    size_t len;           /* 2..n_positions */
    size_t answer_start;  /* index of the first answer token (1..len-1) */
} train_seq;

typedef enum { TRAIN_LOSS_ALL = 0, TRAIN_LOSS_ANSWER = 1 } train_loss;
typedef enum { TRAIN_COSINE = 0, TRAIN_LINEAR = 1 } train_schedule;

/* A set of sequences whose recall is watched during training: training
 * stops early once every set's recall is >= its goal. */
typedef struct {
    const char *name;     /* "rewrite", "paraphrase" (progress lines) */
    const train_seq *seqs;
    size_t n;
    double goal;          /* 0..1; > 1 never stops early */
} train_eval;

typedef struct {
    size_t steps;          /* optimiser steps at most */
    size_t batch_size;     /* sequences per step */
    float lr;              /* peak learning rate */
    float min_lr_frac;     /* the schedule ends at lr * min_lr_frac */
    size_t warmup;         /* steps of linear warmup */
    train_schedule schedule;
    float beta1, beta2, eps, weight_decay;
    float grad_clip;       /* max global gradient norm; 0 = no clipping */
    train_loss loss;
    uint64_t seed;         /* batch order */
    int threads;           /* workers (>= 1) */
    size_t eval_every;     /* steps between recall checks; 0 = at the end */
    progress_fn progress;  /* NULL = silent; label = "step S/N loss L
                              recall NAME R ..." after each check */
    void *progress_ctx;
    /* NULL = none. Else the training state is saved to this file at
     * every check that training goes on from (train_checkpoint.h), and
     * a run that finds there a checkpoint of the same training (model
     * shape and initial weights, data, recall sets, options, threads)
     * continues from it, to the same bytes as a run never stopped. A
     * file of another training, or a damaged one, is replaced. */
    const char *checkpoint;
} train_options;

/* AdamW defaults: beta1 .9, beta2 .95, eps 1e-8, weight decay .1, lr
 * 3e-3, cosine to .1, warmup 50, clip 1, batch 32, all-token loss,
 * 1 thread, eval every 50 steps, 2000 steps. */
void train_options_default(train_options *o);

typedef struct {
    size_t steps;          /* steps run */
    double loss;           /* mean training loss over the last check
                              interval (or the last 50 steps) */
    double recall[8];      /* final recall of each eval set (first 8) */
    int reached_goal;      /* 1 when stopped early at the goals */
    double seconds;        /* wall time (of this run, if resumed) */
    checkpoint_status checkpoint; /* what was found at o->checkpoint
                              (CHECKPOINT_ABSENT also without one) */
    size_t resumed_from;   /* the step a loaded checkpoint continued
                              from; 0 = from the start */
} train_report;

/* Trains m in place on seqs[0..n) (every len <= n_positions, tokens <
 * vocab_size: else ERR_INVALID naming the sequence). evals (n_evals <= 8,
 * may be 0) are checked every eval_every steps and at the end. Returns
 * ERR_NUMERIC when the loss becomes NaN or infinite. */
int train_run(gpt2_model *m, const train_seq *seqs, size_t n,
              const train_eval *evals, size_t n_evals,
              const train_options *o, train_report *rep);

/* train_run, train_recall and train_batch_grad for either family
 * (grads: the gradient as the net's parameter buffer). */
int train_net_run(const train_net *m, const train_seq *seqs, size_t n,
                  const train_eval *evals, size_t n_evals,
                  const train_options *o, train_report *rep);
int train_net_recall(const train_net *m, const train_seq *seqs, size_t n,
                     int threads, double *recall, unsigned char *correct);
int train_net_batch_grad(const train_net *m, const train_seq *seqs,
                         const size_t *idx, size_t n, train_loss mode,
                         int threads, float *grads, double *loss);

/* Share of seqs whose every answer token is the model's top-1 next token
 * (teacher forcing: the true earlier answer tokens are in the input).
 * correct (or NULL) gets 1/0 per sequence. Deterministic; `threads`
 * workers. */
int train_recall(const gpt2_model *m, const train_seq *seqs, size_t n,
                 int threads, double *recall, unsigned char *correct);

/* The mean loss over the loss positions of seqs[idx[0..n)) (as one step
 * of train_run computes it, split over `threads` workers) and, when
 * grads is non-NULL (a model of m's shape), its gradient written (=)
 * into grads->memory. Exposed for the tests (finite differences). */
int train_batch_grad(const gpt2_model *m, const train_seq *seqs,
                     const size_t *idx, size_t n, train_loss mode,
                     int threads, gpt2_model *grads, double *loss);

/* One AdamW update of n parameters in place (t = 1-based step; decay =
 * the weight decay for these parameters, 0 for none). Exposed for the
 * tests, which check it against a double-precision twin. */
void train_adamw(float *param, const float *grad, float *m, float *v,
                 size_t n, float lr, float beta1, float beta2, float eps,
                 float decay, size_t t);

/* The learning rate of step s (0-based) under o's schedule. */
float train_lr(const train_options *o, size_t s);

#endif
