/* commit_impl: what the two halves of a commit share, inside lib/repo
 * only: commit.c runs the phases up to the edited model (statistics,
 * requests, target vectors, rounds of updates, scores), commit_write.c
 * writes the result in the commit's write transaction and makes the
 * commit record. Not for other modules: commit.h is the interface. */
#ifndef STAMP_COMMIT_IMPL_H
#define STAMP_COMMIT_IMPL_H

#include "repo/commit.h"
#include "memit/editreq.h"
#include "memit/ztarget.h"
#include "model/lm.h"
#include "model/tokenizer.h"

#include <jansson.h>

/* One commit in progress: its options, the store's queue and model, the
 * solver's inputs and what each phase made. Owned by commit_run. */
typedef struct {
    const commit_options *opt;
    commit_progress_fn progress;
    void *ctx;
    const char *round_prefix; /* "round 2/5" while a later round runs:
                                 its progress labels are prefixed */
    char last_label[96];      /* the last progress label, for the
                                 STAMP_DEBUG_RSS line at a phase's end */
    int rome, scores;
    int bad_option;       /* the options' layers or a --set was refused */
    double t_start;

    store_txn *t;             /* the write transaction, start to end */
    store_version *queue;     /* n_queue: the queued versions committed */
    size_t n_queue;
    lm_model model;         /* the store's current model, edited in
                                 place round by round */
    tokenizer *tok;
    hparams h;                /* final: store's, --layers, --set, ROME */
    size_t zlayer;            /* where z is found: the band's top layer */
    size_t L, C, F;           /* edited layers, n_embd, n_inner */

    double **cov;             /* L: C_l (F, F) of h.layers[i], or NULL
                                 when factored */
    double **chol;            /* L: their Cholesky factors U (F, F), upper
                                 triangle only (the lower is never
                                 written: a triangle's memory), or NULL */
    int stats_computed, factored;

    char **prefixes;          /* h.n_prefixes context prefixes */
    editreq *reqs;            /* n_queue slots; the first n_ok are the
                                 requests that go in */
    size_t n_req, n_ok;
    size_t *ok_index;         /* reqs[i] is queue[ok_index[i]] */
    fact *ok_facts;           /* n_ok: their facts (queue's strings) */
    editreq *keep;            /* n_keep committed edits kept in place */
    size_t n_keep;
    store_version *kept;      /* n_kept: the committed versions */
    size_t n_kept;
    const char **edited_subjects; /* the queue's, sorted */
    json_t *failed;           /* [{version, reason}]: left queued */

    float *z;                 /* (n_req, C) target vectors */
    ztarget_info *zinfo;      /* n_req */
    double z0_seconds;        /* the first round's z phase */
    float *old_tensors;       /* (L, F, C): the edited matrices before
                                 the commit, each in its stored layout;
                                 also the first round's start */
    float *round_start;       /* (L, F, C): the same before a later
                                 round (allocated for round 2), or NULL */
    memit_layer_stats *lstats;       /* L: the first round's update */
    memit_layer_stats *lstats_later; /* L: a later round's */
    commit_round *rounds;     /* n_rounds */
    size_t n_rounds, rounds_done;
    const char *rounds_stop;  /* why the rounds ended early, or NULL */
    eval_scores before, after;
    commit_timings tm;
} commit_state;

/* The one write transaction of a commit (commit_write.c): the edited
 * tensors and their exact diffs, the new fact states (superseded
 * versions too), the commit record and HEAD; commits st->t (NULL after)
 * and sets *id, *parent and *record (a new reference) on success. */
int commit_write(commit_state *st, uint64_t *id, uint64_t *parent,
                 json_t **record);

/* The target vectors of reqs[0..n) into st->z and st->zinfo, shared
 * among the MPI ranks (commit_dist.c): the same z, bit for bit, as
 * ztarget_compute. all_layers: send the workers the edited matrices the
 * store's overlay holds (the first time), else the commit's layers'.
 * Rank 0 only. */
int commit_dist_targets(commit_state *st, size_t n, int all_layers,
                        progress_fn progress, void *ctx);

#endif
