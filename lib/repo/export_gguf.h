/* export_gguf: a model as one GGUF v3 file that llama.cpp loads: the
 * store's current model (the base model with every edit in effect), or
 * a model directory as it is (no store).
 *
 * GPT-2: its architecture metadata, its byte-level BPE tokenizer
 * (vocab.json's tokens in their byte-to-unicode spelling, merges.txt's
 * merges, token types, the <|endoftext|> id, pre-tokenizer "gpt-2") and
 * the tensors under llama.cpp's names (token_embd, position_embd,
 * blk.N.attn_qkv, ..., output) in its layouts: the Conv1D weights, [in,
 * out] in Hugging Face's files and in stamp's model, are written
 * transposed, [out, in] row-major; the tied lm_head is written as
 * output.weight.
 *
 * The Llama family (export_gguf_llama.c): architecture "llama" (Llama,
 * Mistral), "qwen2" or "qwen3" with their hyperparameters; the
 * tokenizer.json's vocabulary as llama.cpp's "gpt2" (byte-level BPE:
 * tokens, merges, pre-tokenizer "llama-bpe", "qwen2" or "gpt-2") or
 * "llama" (SentencePiece-style byte fallback: tokens, scores, types);
 * bos/eos/unknown/padding ids and add_bos_token; the tensors under
 * llama.cpp's names, q_proj and k_proj rows permuted for "llama" as
 * llama.cpp's converter does (rotate-half pairs (i, i + D/2) become
 * adjacent rows (2i, 2i + 1)), llama3 rope scaling as the rope_freqs
 * tensor.
 *
 * --type says how the matrices are stored: f32, f16, bf16 or q8_0;
 * 1-D tensors (norms, biases, rope_freqs) and position_embd stay f32, as
 * llama.cpp's own conversion keeps them. The file goes to a temporary
 * beside PATH and is renamed over it whole (repo/gguf.h), so a failure
 * never leaves a half-written file. */
#ifndef STAMP_EXPORT_GGUF_H
#define STAMP_EXPORT_GGUF_H

#include "model/llama.h"
#include "repo/export.h"
#include "repo/gguf.h"
#include "store/store.h"

/* Writes the current model of store s (a read transaction of its own) to
 * path as a GGUF file of the given type. Refused before anything is
 * written: a path whose directory does not exist or that is a directory
 * (ERR_NOTFOUND, ERR_EXISTS), a model GGUF's gpt2 cannot express (a
 * config.json with scale_attn_weights false, scale_attn_by_inverse_
 * layer_idx or reorder_and_upcast_attn true: ERR_INVALID naming the
 * field), a tokenizer that does not cover the model's vocabulary
 * (ERR_FORMAT), q8_0 for rows that are not a multiple of 32 values
 * (ERR_INVALID naming the tensor). *out (may be NULL) says what was
 * written (n_tensors: the tensors of the GGUF file). */
int export_gguf(store *s, const char *path, gguf_type type,
                export_result *out);

/* Writes the model directory dir as it is (GPT-2 or the Llama family,
 * by config.json's architecture) to path; no store is read. The same
 * refusals as export_gguf, plus those of export_gguf_llama. out->head
 * and n_edited are 0. */
int export_gguf_dir(const char *dir, const char *path, gguf_type type,
                    export_result *out);

/* Writes the Llama-family model m with the tokenizer of its directory
 * dir (tokenizer.json, tokenizer_config.json and config.json's special
 * ids) to path. Refused by name, before anything is written
 * (ERR_INVALID): what llama.cpp's architecture cannot express (llama3
 * rope scaling for qwen2/qwen3; attention biases for qwen3; an o_proj
 * or MLP bias for qwen2); a tokenizer.json that is not BPE, or whose
 * pre-tokenizer llama.cpp has no name for (ERR_FORMAT); more tokens
 * than the model's vocab_size. A sliding window shorter than the
 * context is written as the context length (llama.cpp's llama and qwen2
 * have no sliding window; within it the two agree). *n_tensors: the
 * tensors of the file. */
int export_gguf_llama(const llama_model *m, const char *dir,
                      const char *path, gguf_type type, size_t *n_tensors);

/* The HF row that row `row` of a permuted q_proj/k_proj comes from
 * (llama.cpp's "llama" rotates adjacent pairs, transformers rotates
 * halves): within each head of head_dim rows, row 2i + j holds HF row
 * j * head_dim/2 + i. */
size_t export_gguf_qk_row(size_t row, size_t head_dim);

#endif
