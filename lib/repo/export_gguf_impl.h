/* export_gguf_impl: what the two halves of the GGUF export share and
 * nothing else may use: the output path's check, llama.cpp's file type
 * number of a --type, and the tokenizer's vocabulary as GGUF holds it
 * (tokens, token types, scores or merges) with the one function that
 * writes it. export_gguf.c writes GPT-2, export_gguf_llama.c the Llama
 * family. */
#ifndef STAMP_EXPORT_GGUF_IMPL_H
#define STAMP_EXPORT_GGUF_IMPL_H

#include "model/llama_config.h"
#include "repo/gguf.h"

#include <stddef.h>
#include <stdint.h>

/* GGUF's token types (llama.cpp's llama_token_type) */
enum {
    GGUF_TOKEN_NORMAL = 1, GGUF_TOKEN_UNKNOWN = 2, GGUF_TOKEN_CONTROL = 3,
    GGUF_TOKEN_USER_DEFINED = 4, GGUF_TOKEN_UNUSED = 5, GGUF_TOKEN_BYTE = 6,
};

typedef struct {
    size_t n;         /* tokens: the model's vocabulary size */
    char **tokens;    /* (n) each token's text as GGUF spells it */
    size_t *lens;     /* (n) */
    int32_t *types;   /* (n) GGUF_TOKEN_* */
    float *scores;    /* (n) or NULL: SentencePiece-style scores */
    char **merges;    /* (n_merges) "a b", or NULL */
    size_t *merge_lens, n_merges;
    int eot;          /* GPT-2: the id of <|endoftext|>, or -1 */
} gguf_vocab;

/* Allocates the token arrays for n tokens (scores too when with_scores);
 * ERR_NOMEM. */
int gguf_vocab_alloc(gguf_vocab *v, size_t n, int with_scores);
/* Appends merge s[0..len) (copied); ERR_NOMEM. */
int gguf_vocab_add_merge(gguf_vocab *v, const char *s, size_t len);
void gguf_vocab_free(gguf_vocab *v); /* accepts a zeroed one */

/* Writes tokenizer.ggml.tokens, token_type, and scores and merges when
 * v has them. */
int gguf_vocab_write(gguf_writer *w, const gguf_vocab *v);

/* GPT-2's vocab.json (ids 0..V-1 each once; "<|endoftext|>" is the eot)
 * and merges.txt of dir into v (allocated here). */
int gguf_vocab_read_gpt2(gguf_vocab *v, const char *dir, size_t V);

/* The directory of path must exist and path must not be a directory:
 * ERR_NOTFOUND, ERR_EXISTS, ERR_INVALID (an empty or too long path). */
int export_gguf_check_path(const char *path);

/* general.file_type (llama.cpp's LlamaFileType) of files whose matrices
 * are of type t. */
uint32_t export_gguf_file_type(gguf_type t);

/* What llama.cpp's architecture cannot express in the Llama-family
 * config c of dir, refused by name (ERR_INVALID); checked before the
 * weights are read. */
int export_gguf_llama_check(const llama_config *c, const char *dir);

#endif
