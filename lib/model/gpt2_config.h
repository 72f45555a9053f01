/* gpt2_config: the config.json of a Hugging Face GPT2LMHeadModel, read
 * and written with jansson. */
#ifndef STAMP_GPT2_CONFIG_H
#define STAMP_GPT2_CONFIG_H

#include <stddef.h>

typedef struct {
    size_t n_layer;       /* L */
    size_t n_head;        /* NH */
    size_t n_embd;        /* C, d_model */
    size_t n_positions;   /* maxT */
    size_t vocab_size;    /* V */
    size_t n_inner;       /* d_ff; 4*C when config.json says null */
    float layer_norm_epsilon;
} gpt2_config;

/* Reads and validates `path` (positive sizes, n_embd divisible by n_head,
 * activation_function gelu_new when present, model_type gpt2 when
 * present). Errors name the file and the field. */
int gpt2_config_read(gpt2_config *out, const char *path);

/* Writes a complete config.json that transformers' GPT2LMHeadModel loads
 * (architectures, model_type, activation_function, every size, dropout
 * probabilities, bos/eos ids = vocab_size-1, ...), atomically. */
int gpt2_config_write(const gpt2_config *c, const char *path);

#endif
