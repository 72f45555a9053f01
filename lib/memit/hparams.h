/* hparams: the hyperparameters of the editing methods (MEMIT, ROME),
 * their defaults for a model shape, and their JSON form (kept per store
 * in meta "hparams" as overrides, and recorded in full in each commit). */
#ifndef STAMP_HPARAMS_H
#define STAMP_HPARAMS_H

#include "model/lm.h"

#include <stddef.h>
#include <stdint.h>

#define HPARAMS_MAX_LAYERS 16

typedef struct {
    size_t layers[HPARAMS_MAX_LAYERS]; /* edited layers R, ascending */
    size_t n_layers;
    double mom2_update_weight;  /* lambda: weight of C_l against K K^T */
    double v_lr;                /* Adam learning rate of the z steps */
    size_t v_num_grad_steps;    /* at most this many z steps */
    double v_weight_decay;      /* weight of ||delta|| / ||h0||^2 */
    double kl_factor;           /* weight of the KL term (essence prompt) */
    double clamp_norm_factor;   /* ||delta|| <= this * ||h0|| */
    double nll_stop;            /* stop a fact's steps when loss < this */
    size_t n_prefixes;          /* context prefixes besides the bare prompt */
    size_t prefix_tokens;       /* tokens per sampled prefix */
    uint64_t seed;              /* prefix sampling */
    size_t facts_per_group;     /* facts stepped in lockstep per thread */
    size_t z_chunk_mib;         /* a group's passes over this many MiB step
                                   in chunks of facts (0: never) */
    size_t stats_samples;       /* corpus sequences for C_l when missing */
    double rome_ridge;          /* ROME: C + ridge * mean(diag C) * I */
    double mom2_ridge;          /* every method: C_l + ridge * mean(diag
                                   C_l) * I before it is used, for key
                                   statistics that are singular because
                                   some MLP units never fire on the corpus */
    double protect_committed;   /* > 0: MEMIT keeps what the committed
                                   edits' keys map to, at this weight
                                   against the new edits' fit */
    double nullspace_threshold; /* > 0: MEMIT updates only the directions
                                   of C_l with an eigenvalue below this
                                   share of its largest (AlphaEdit) */
    size_t joint_layers;        /* MEMIT: 1 solves each layer's update
                                   together with the later layers'
                                   (memit_joint_delta), so that it writes
                                   the share its keys have room for; 0:
                                   1 / (layers left) of the shift */
    size_t rounds;              /* MEMIT: target vectors and update this
                                   many times, each round in the model the
                                   ones before edited (0 counts as 1) */
    double round_min_shift;     /* a later round whose update writes less
                                   than this share of the target shift
                                   left (memit_shift_written) is taken
                                   back and ends the rounds; 0: only one
                                   that moves the targets further away */
    size_t round_halvings;      /* such a round is first solved again
                                   toward 1/2, 1/4, ... of its target
                                   shift, this many times, and kept at
                                   the first that writes round_min_shift
                                   (memit_halve) */
} hparams;

/* Defaults for a model shape (layers chosen by depth). */
void hparams_default(hparams *h, const lm_config *c);

/* Applies the fields present in JSON text `json` over h (unknown keys
 * and bad values are ERR_INVALID naming the key). Validates layers
 * against c (ascending, < n_layer). */
int hparams_apply_json(hparams *h, const char *json, const lm_config *c);

/* The full set as compact JSON text (malloc'ed). */
char *hparams_to_json(const hparams *h);

/* Parses "1,2,3" or "1-3" into h->layers (validated against c). */
int hparams_parse_layers(hparams *h, const char *text, const lm_config *c);

#endif
