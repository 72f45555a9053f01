/* llama_config: the config.json of a Hugging Face model of the Llama
 * family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 * Qwen3ForCausalLM), read with jansson, and the rotary frequencies it
 * implies.
 *
 * The four differ only in details the forward pass switches on: Qwen2
 * has biases on q, k and v (not o); Qwen3 normalises q and k per head
 * (q_norm, k_norm); Llama may ask for biases on all four attention
 * projections (attention_bias) and on the MLP (mlp_bias); rope scaling
 * of type llama3 (Llama 3.1, 3.2) stretches the low frequencies. Field
 * names follow gpt2_config where the meaning is the same. */
#ifndef STAMP_LLAMA_CONFIG_H
#define STAMP_LLAMA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    LLAMA_ARCH_LLAMA,   /* LlamaForCausalLM */
    LLAMA_ARCH_MISTRAL, /* MistralForCausalLM */
    LLAMA_ARCH_QWEN2,   /* Qwen2ForCausalLM */
    LLAMA_ARCH_QWEN3,   /* Qwen3ForCausalLM */
} llama_arch;

#define LLAMA_MAX_EOS 8

typedef struct {
    llama_arch arch;
    size_t n_layer;        /* L    num_hidden_layers */
    size_t n_embd;         /* C    hidden_size */
    size_t n_inner;        /* F    intermediate_size */
    size_t n_head;         /* NH   num_attention_heads */
    size_t n_kv_head;      /* NKV  num_key_value_heads (divides NH) */
    size_t head_dim;       /* D    head_dim (even) */
    size_t vocab_size;     /* V */
    size_t n_positions;    /* max_position_embeddings */
    size_t sliding_window; /* attention window in force, 0 for none */
    float rms_norm_eps;
    double rope_theta;
    /* rope_scaling {"rope_type": "llama3", ...}; false: no scaling */
    bool rope_llama3;
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    size_t rope_original_max_positions;
    bool tie_word_embeddings; /* lm_head is embed_tokens */
    bool qkv_bias;            /* q_proj, k_proj, v_proj have biases */
    bool o_bias;              /* o_proj has a bias */
    bool mlp_bias;            /* gate_proj, up_proj, down_proj have biases */
    bool qk_norm;             /* per-head RMSNorm on q and k (Qwen3) */
    int bos_token_id;         /* -1 when none */
    int eos_token_ids[LLAMA_MAX_EOS];
    size_t n_eos;
} llama_config;

/* Reads and validates `path`. The architecture is the first entry of
 * "architectures"; the sizes hidden_size, intermediate_size,
 * num_hidden_layers, num_attention_heads and vocab_size are required, the
 * rest take transformers' defaults when absent (num_key_value_heads =
 * num_attention_heads; head_dim = hidden_size / num_attention_heads, 128
 * for Qwen3; rms_norm_eps 1e-6; rope_theta 10000; untied embeddings).
 * hidden_act must be "silu". Errors (ERR_FORMAT; ERR_IO when the file
 * cannot be read) name the file and the key: an unknown architecture or
 * rope scaling type by name ("yarn", "linear", ...), a missing or
 * mistyped key, sizes that do not fit together. */
int llama_config_read(llama_config *out, const char *path);

/* The name of an architecture as config.json spells it. */
const char *llama_arch_name(llama_arch a);

/* inv_freq (head_dim / 2): the rotary frequencies, theta^(-2i/D), with
 * the llama3 scaling of transformers' _compute_llama3_parameters when
 * the config asks for it; in double precision. */
void llama_config_inv_freq(const llama_config *c, double *inv_freq);

#endif
