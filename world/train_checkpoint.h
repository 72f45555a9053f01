/* train_checkpoint: the state of a training run saved to a file, so
 * that a run that is killed (or stopped by the end of a working day)
 * continues where its last check left it and ends with the same bytes
 * as a run that never stopped.
 *
 * The state is what train_run carries from one step to the next at a
 * check: the weights, AdamW's two moment vectors, the epoch order, the
 * cursor in it, the batch generator's state and the step count. The
 * file is tagged with a fingerprint of the training it belongs to (the
 * caller's: model shape, initial weights, data, options), so a file of
 * another training is never continued. It is written whole or not at
 * all (atomic_file) and ends with a hash of its bytes, so a damaged
 * file is recognised. Numbers are in the machine's byte order: a
 * checkpoint is a working file of one machine, not an exchange format.
 * The fingerprint does not cover the code: continued by a program built
 * from other training code, a checkpoint still ends in a trained model,
 * but not in the bytes of an unbroken run. */
#ifndef STAMP_TRAIN_CHECKPOINT_H
#define STAMP_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

/* Borrowed buffers: saved from, or loaded into. */
typedef struct {
    size_t step;    /* optimiser steps done */
    size_t cursor;  /* next position in order */
    uint64_t rng;   /* the batch order generator's state */
    size_t P;       /* parameters */
    float *params, *mom, *vel; /* (P) each */
    size_t n;       /* training sequences */
    size_t *order;  /* (n) the current epoch's order */
} train_state;

typedef enum {
    CHECKPOINT_ABSENT = 0, /* no file at the path */
    CHECKPOINT_LOADED,     /* the state was read into the buffers */
    CHECKPOINT_OTHER,      /* a checkpoint of another training */
    CHECKPOINT_DAMAGED     /* not a checkpoint, truncated or corrupt */
} checkpoint_status;

/* Writes st to path, tagged with fingerprint (32 hex characters), so
 * that a crash leaves the old file or the new one. ERR_IO naming the
 * path on failure. */
int train_checkpoint_save(const char *path, const char *fingerprint,
                          const train_state *st);

/* Reads path into st's buffers (st->P and st->n give their sizes) when
 * it is an intact checkpoint with this fingerprint and these sizes;
 * otherwise leaves the buffers untouched and says why in *status (the
 * return is still 0). Errors (ERR_IO when the file cannot be read,
 * ERR_NOMEM) are for the cases where the answer is unknown. */
int train_checkpoint_load(const char *path, const char *fingerprint,
                          train_state *st, checkpoint_status *status);

#endif
