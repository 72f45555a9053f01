/* export_gguf: the store's current model (the base model with every edit
 * in effect) as one GGUF v3 file that llama.cpp loads: GPT-2's
 * architecture metadata, its byte-level BPE tokenizer (vocab.json's
 * tokens in their byte-to-unicode spelling, merges.txt's merges, token
 * types, the <|endoftext|> id, pre-tokenizer "gpt-2") and the tensors
 * under llama.cpp's names (token_embd, position_embd, blk.N.attn_qkv,
 * ..., output) in its layouts: the Conv1D weights, [in, out] in Hugging
 * Face's files and in stamp's model, are written transposed, [out, in]
 * row-major; the tied lm_head is written as output.weight.
 *
 * --type says how the matrices are stored: f32, f16, bf16 or q8_0;
 * 1-D tensors (norms, biases) and position_embd stay f32, as llama.cpp's
 * own conversion keeps them. The file goes to a temporary beside PATH
 * and is renamed over it whole (repo/gguf.h), so a failure never leaves
 * a half-written file. */
#ifndef STAMP_EXPORT_GGUF_H
#define STAMP_EXPORT_GGUF_H

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

#endif
