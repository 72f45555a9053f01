/* commit: stamps a store's queued facts into its model as one commit
 * (what `stamp commit` does; the command only parses, calls and prints).
 *
 * Phases, each timed: key statistics (computed once per base model and
 * layer, cached in the store), their Cholesky factors, the edit requests
 * (context prefixes; the committed edits to keep), the target vectors z
 * (OpenMP over groups of facts), scores before (of the facts whose z is
 * finite), the layer-by-layer MEMIT update (or ROME's rank-one update),
 * repeated for h.rounds rounds (each later round finds the target vectors
 * again in the model the rounds before it edited; a round whose update
 * leaves them further away, or (after the first) writes less than
 * h.round_min_shift of the shift left, is solved again toward 1/2,
 * 1/4, ... of the shift, h.round_halvings times, or else taken back,
 * which ends them, or fails the commit if it was the first), scores
 * after, and one LMDB write transaction that stores the new tensors,
 * their exact diffs (from the model before the first round), the commit
 * record (docs/commit-record.md) and the new fact states, and moves HEAD.
 * The writer lock is held from start to end, so two commits never
 * interleave; a failure or a crash anywhere leaves the store as before.
 *
 * Fault injection for the tests (like git's GIT_TEST_* variables), read
 * from the environment by commit_run, for two paths no natural input on
 * the test worlds is known to reach:
 *   STAMP_TEST_NONFINITE_Z_ROUND=N (N >= 2): round N finds the first
 *     fact's target vector not finite (what blows a target vector up
 *     does so in the first round, where the fact is left queued instead);
 *   STAMP_TEST_WORSE_ROUND=N (N >= 1): round N's update counts as having
 *     moved the targets further away (shift written -1), so that it is
 *     solved again toward a share of the shift (worlds that small never
 *     aim worse), and with no share that helps, taken back (N >= 2) or
 *     the commit failed (N = 1).
 * Unset, empty or not a number >= 1: no fault. */
#ifndef STAMP_COMMIT_H
#define STAMP_COMMIT_H

#include "eval/eval.h"
#include "memit/hparams.h"
#include "memit/memit.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    COMMIT_MEMIT = 0, /* every queued fact (or the first `limit`) */
    COMMIT_ROME,      /* the first queued fact, in the top layer of the
                         band (where its target vector is found) */
} commit_method;

typedef struct {
    const char *message;      /* NULL: "N facts" */
    commit_method method;
    size_t limit;             /* at most this many queued facts, oldest
                                 first; 0: all (ROME: always 1) */
    int threads;              /* > 0: OpenMP's and OpenBLAS's thread count
                                 for the process from now on (it stays
                                 set); 0: as it is (every core) */
    const char *layers;       /* edited layers, "1,2" or "1-3"; NULL: the
                                 store's hparams, else a band of early
                                 layers (hparams_default) */
    const char *const *sets;  /* n_sets "KEY=VALUE" overrides of the
                                 hyperparameters (VALUE a JSON number or
                                 array), applied in order after the
                                 store's and `layers` */
    size_t n_sets;
    const char *corpus;       /* text for missing key statistics; NULL:
                                 the store's or the model's corpus.txt */
    int no_scores;            /* skip the ES/PS/NS scores before/after */
} commit_options;

/* What commit_run tells while it runs (none of it is an error). */
typedef enum {
    COMMIT_EVENT_PROGRESS, /* label, done of total: a phase advancing
                              (rounds after the first: "round 2/5: ...") */
    COMMIT_EVENT_PHASE_END,/* the phase whose progress was told ended */
    COMMIT_EVENT_WARNING,  /* text: a fact left queued, rounds that ended
                              early; the commit goes on */
    COMMIT_EVENT_NOTE,     /* text: a round solved again toward a share
                              of its shift */
} commit_event_kind;

typedef struct {
    commit_event_kind kind;
    const char *label;     /* PROGRESS */
    size_t done, total;    /* PROGRESS */
    const char *text;      /* WARNING, NOTE: lowercase, no prefix, no
                              newline; valid during the call */
} commit_event;

/* Called from the thread that called commit_run, one event at a time. */
typedef void (*commit_progress_fn)(void *ctx, const commit_event *e);

/* What one round of target vectors and update did (the record's
 * "rounds"; the first round's figures are also at its top level). */
typedef struct {
    size_t z_likely;       /* z that make the new answer likely (NLL < .5) */
    size_t z_stepped;      /* facts that took a z step at all */
    double z_steps_mean, z_nll_mean, z_flops;
    double resid_before, resid_after, shift_written; /* MEMIT */
    double step;           /* the share of the target shift the kept
                              update was solved toward (1, or 1/2, 1/4,
                              ... after round_halvings: memit_halve) */
    double z_seconds, solve_seconds;
} commit_round;

/* Seconds per phase (the record's "timings"; "rounds" there lists each
 * round's z and solve). A phase that did not run is 0 and left out of
 * the record: factor (no Cholesky factors: ROME, a null space or
 * lambda 0), scores_before and scores_after (no_scores). */
typedef struct {
    double stats, factor, prepare, scores_before, z, solve, scores_after,
        write, total;
} commit_timings;

typedef struct {
    uint64_t id;              /* the new commit (HEAD now) */
    uint64_t parent;          /* HEAD before it (0: the base model) */
    json_t *record;           /* the commit record as stored (owned) */
    commit_method method;
    hparams h;                /* what the solver used; h.layers[0 ..
                                 h.n_layers) are the edited layers */
    size_t n_facts;           /* facts committed */
    size_t n_failed;          /* facts left queued (record "failed") */
    size_t n_kept;            /* committed edits kept where they were
                                 (MEMIT with protect_committed > 0) */
    int stats_computed;       /* the key statistics were computed now */
    int scored;               /* before and after hold scores */
    eval_scores before, after;/* of the committed facts */
    memit_layer_stats *layers;/* h.n_layers: the first round's update */
    commit_round *rounds;     /* n_rounds: the rounds planned (h.rounds,
                                 ROME 1), of which the first rounds_done
                                 (>= 1) are in the model */
    size_t n_rounds, rounds_done;
    const char *rounds_stop;  /* why the rounds ended early, or NULL
                                 (a static string) */
    int factored;             /* the Cholesky factors were formed */
    commit_timings timings;
    int bad_option;           /* on failure: the options' layers or sets
                                 were malformed (bad usage, not a failed
                                 operation) */
} commit_result;

/* Runs a commit of the queue of store s (see the top of this file) in a
 * write transaction of its own, which it commits at the end; progress
 * (may be NULL) hears of the phases. On success fills *out (free it with
 * commit_result_free) and returns 0. Returns ERR_EMPTY (and only then)
 * when the queue is empty, with the message "nothing to commit: the
 * queue is empty"; any other failure (a changed base model, a bad
 * override, missing statistics and corpus, no fact with a finite target
 * vector, a first round that aims worse at every share, ...) is a
 * negative ERR_* code with err_set's message. On any failure the store
 * is as it was and *out is empty (commit_result_free accepts it). */
int commit_run(store *s, const commit_options *opt,
               commit_progress_fn progress, void *ctx, commit_result *out);

/* Frees what commit_run put into r and zeroes it; accepts NULL. */
void commit_result_free(commit_result *r);

/* "memit" or "rome", as records spell it. */
const char *commit_method_name(commit_method m);

/* The ES/PS/NS scores as a commit record holds them (a new reference):
 * the form `stamp eval --json` prints too (cli_scores_json, which should
 * become a call to this one); a score over no prompts is null (PS when
 * no fact has paraphrases, NS when none has neighbourhood prompts, all
 * when no fact was scored), with its magnitude and accuracy. */
json_t *commit_scores_json(const eval_scores *s);

/* An MPI worker rank's side of a commit (base/dist.h, commit_dist.c):
 * on each DIST_CMD_Z it computes its share of the target vectors and
 * sends them to rank 0; it never opens the store. The model it loaded is
 * kept for the next round. */
typedef struct commit_worker commit_worker;
int commit_worker_job(commit_worker **w);
void commit_worker_free(commit_worker *w); /* accepts NULL */

#endif
