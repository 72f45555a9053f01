/* ztarget: MEMIT's target vectors (docs/memit.md, step 1). For each edit, a
 * vector delta added to the output of block zlayer at the subject's last
 * token of every prompt is optimised (Adam) until the model says the new
 * target; z = h0 + delta, h0 the block's output on the bare prompt.
 *
 * Speed: blocks up to zlayer run once; each step runs only the blocks
 * above it, reads logits only at target positions, and steps a group of
 * facts in lockstep through one batched forward and backward pass; a
 * fact that stops leaves the batch, so later steps run only the rows of
 * the facts still stepping. Groups run in parallel (OpenMP), each on one thread with
 * single-threaded BLAS, so z depends on the seed and the group size, not
 * on the number of threads. Memory: a group too large for the
 * z_chunk_mib setting runs in chunks of facts, one after another. */
#ifndef STAMP_ZTARGET_H
#define STAMP_ZTARGET_H

#include "memit/editreq.h"
#include "model/lm.h"
#include "memit/hparams.h"
#include "base/progress.h"

typedef struct {
    double loss;     /* total loss when stopped */
    double nll;      /* its NLL part */
    size_t steps;    /* gradient steps taken */
    int failed;      /* non-finite loss or z: leave the fact out */
    double flops;    /* its share of its group's floating-point work */
} ztarget_info;

/* z and h0 are (n, C); info is (n). Returns an error only when the work
 * itself failed (memory, model); per-fact failures are in info. */
int ztarget_compute(const lm_model *m, const editreq *r, size_t n,
                    size_t zlayer, const hparams *h, float *z, float *h0,
                    ztarget_info *info, progress_fn progress, void *ctx);

/* The same for the facts of share `part` of `parts` of the groups
 * (parts MPI ranks, repo/commit): only z, h0 and info of the facts
 * [first, end) that ztarget_share names are written (info's others are
 * zeroed). Each fact's z is the one ztarget_compute finds, bit for bit:
 * the groups do not depend on the share. */
int ztarget_compute_share(const lm_model *m, const editreq *r, size_t n,
                          size_t zlayer, const hparams *h, int part,
                          int parts, float *z, float *h0, ztarget_info *info,
                          progress_fn progress, void *ctx);
void ztarget_share(size_t n, const hparams *h, int part, int parts,
                   size_t *first, size_t *end);

/* A group whose passes would take more memory than h->z_chunk_mib MiB
 * (estimated from the shapes; 0: no limit) steps its facts in chunks of
 * whole facts, each in lockstep on its own: z then differs from one
 * group's in the order of float sums only. ztarget_set_chunk_bytes
 * overrides it in bytes for tests (0: the setting again) and returns the
 * previous override; not thread-safe. */
size_t ztarget_set_chunk_bytes(size_t bytes);

#endif
