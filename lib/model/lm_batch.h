/* lm_batch: what one pass of a language model is asked to do, the same
 * for every family (gpt2.h, llama.h and the interface over both, lm.h,
 * take it): the tokens, where the pass starts and ends, a hook that adds
 * vectors to the residual stream, where logits are read, and the row
 * ranges and input stream that let MEMIT's passes skip work. */
#ifndef STAMP_LM_BATCH_H
#define STAMP_LM_BATCH_H

#include <stddef.h>

/* Adds vec[i] to the output of block `layer` (the residual stream that
 * enters block layer+1, or ln_f when layer = L-1) at position pos[i]. */
typedef struct {
    size_t layer;
    size_t n;
    const size_t *pos;  /* (n) flat positions b*T + t */
    const float *vec;   /* (n, C) */
} lm_hook;

/* One forward pass over B sequences of T tokens (right-padded: a short
 * sequence's tail holds any valid id; causal attention keeps padding from
 * touching real positions).
 * start_layer = 0 runs everything. start_layer = s > 0 reuses the outputs
 * of blocks 0..s-1 left in the acts by an earlier pass over the same
 * tokens, B and T, and runs blocks s..L-1 only (MEMIT's z steps).
 * The hook (or NULL) must have layer >= start_layer - 1; it never changes
 * the stored output of its block, so passes can be repeated with other
 * vectors. Logits are computed only at logit_pos (flat positions). */
typedef struct {
    const int *tokens;        /* (B, T) */
    size_t B, T;
    size_t start_layer;
    const lm_hook *hook;
    const size_t *logit_pos;  /* (n_logits) */
    size_t n_logits;
    /* Row ranges (both NULL: every position). With start_layer = s > 0,
     * blocks s.. run only positions row_from[b] .. row_len[b]-1 of each
     * sequence: the earlier positions' keys and values come from the
     * earlier pass (their activations cannot have changed when the hook
     * adds nothing before row_from), and positions from row_len on are
     * padding nobody reads. The hook must be at layer s-1 and inside the
     * ranges, and so must the logit positions. The acts then hold the
     * blocks >= s in a compact layout: block_out and mlp_key of those
     * layers are not available, and the next pass may start at s at most.
     * Backward follows the same ranges and computes no weight gradients. */
    const size_t *row_from;   /* (B) */
    const size_t *row_len;    /* (B) */
    /* end_layer = e > 0 runs blocks up to e-1 only, for passes that read
     * the keys or outputs of the lower blocks (MEMIT's keys, the key
     * statistics): no logits, no row ranges, no backward after it. 0 (or
     * n_layer) runs every block. */
    size_t end_layer;
    /* input (NULL: none): with start_layer = s > 0 and no row ranges,
     * the residual stream entering block s, (B * T, C) row-major, as
     * the block output of layer s - 1 gave it after an earlier pass over the
     * same tokens, kept by the caller while the blocks below s stayed
     * as they were. The pass then needs no earlier pass in these acts
     * (MEMIT's key passes, which run again after each layer's update). */
    const float *input;
} lm_batch;

#endif
