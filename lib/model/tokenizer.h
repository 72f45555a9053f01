/* tokenizer: text <-> token ids for the models stamp edits, two kinds.
 *
 * GPT-2's byte-level BPE, from vocab.json (token -> id, in GPT-2's
 * byte-to-unicode alphabet) and merges.txt (ranked pairs, first line
 * "#version: ..."). Pre-tokenization uses GPT-2's exact pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * through PCRE2 in UTF mode. The same ids as GPT-2's own tokenizer.
 *
 * A Hugging Face tokenizer.json with a BPE model (Llama 2 and Mistral:
 * byte fallback and Prepend/Replace normalizers; Llama 3 and Qwen: Split
 * regexes, the byte-level pre-tokenizer, NFC): added and special tokens,
 * normalizers, pre-tokenizers, the post-processor's template and the
 * decoders, with the ids of transformers.js's tokenizers (the npm package
 * @lenml/tokenizers); tokenizer_json.c says what is supported. */
#ifndef STAMP_TOKENIZER_H
#define STAMP_TOKENIZER_H

#include <stddef.h>

typedef struct tokenizer tokenizer; /* opaque; read-only after open, so
                                       threads may share one */

int tokenizer_open(tokenizer **out, const char *vocab_json_path,
                   const char *merges_txt_path);
/* Opens DIR/tokenizer.json when it exists, else DIR/vocab.json and
 * DIR/merges.txt. A tokenizer.json of a model type, normalizer,
 * pre-tokenizer, post-processor or decoder that is not supported is
 * ERR_FORMAT, its message naming the file and the type. */
int tokenizer_open_dir(tokenizer **out, const char *dir);
void tokenizer_close(tokenizer *t); /* accepts NULL */

/* One more than the largest token id (added tokens included). */
size_t tokenizer_vocab_size(const tokenizer *t);

/* Encodes `len` bytes of UTF-8 text. *ids is malloc'ed (caller frees),
 * *n its length. Invalid UTF-8 is ERR_FORMAT. The text of an added token
 * (tokenizer.json's "<s>", "<|begin_of_text|>", ...) becomes its id, as
 * in the reference; no BOS or other template token is added: that is
 * tokenizer_encode_ex's TOKENIZER_ADD_SPECIAL. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len,
                     int **ids, size_t *n);

enum {
    /* encode: add the post-processor's special tokens (Llama 2's BOS);
     * nothing for GPT-2 or a file whose post-processor adds none */
    TOKENIZER_ADD_SPECIAL = 1u,
    /* decode: leave special tokens out */
    TOKENIZER_SKIP_SPECIAL = 2u,
};

/* tokenizer_encode with flags (0 or TOKENIZER_ADD_SPECIAL). */
int tokenizer_encode_ex(const tokenizer *t, const char *text, size_t len,
                        unsigned flags, int **ids, size_t *n);

/* The tokens of `text` as they follow `context` in one text: for a
 * tokenizer.json, encode(context + text) past the tokens of
 * encode(context) when those are its start (Llama 2's normalizer puts
 * its "\u2581" before a whole text only, so " Paris" alone would not be
 * the " Paris" of a sentence), else encode(text); for GPT-2's
 * vocab.json and merges.txt, encode(text) as the reference code does.
 * No special tokens. */
int tokenizer_encode_continuation(const tokenizer *t, const char *context,
                                  const char *text, int **ids, size_t *n);

/* Decodes ids to text; *text is malloc'ed and NUL-terminated (caller
 * frees), *len excludes the NUL. Unknown ids are ERR_INVALID. GPT-2's
 * decode is the tokens' bytes; a tokenizer.json's runs its decoders
 * (Llama 2's drops the space its normalizer put before the text), except
 * that bytes which are not valid UTF-8 are kept as they are where the
 * reference would put U+FFFD. */
int tokenizer_decode(const tokenizer *t, const int *ids, size_t n,
                     char **text, size_t *len);

/* tokenizer_decode with flags (0 or TOKENIZER_SKIP_SPECIAL). */
int tokenizer_decode_ex(const tokenizer *t, const int *ids, size_t n,
                        unsigned flags, char **text, size_t *len);

/* 1 when id is a special added token ("<s>", "<|eot_id|>"), else 0. */
int tokenizer_is_special(const tokenizer *t, int id);

/* The id of the special token the post-processor puts first (Llama 2's
 * "<s>"), or -1 when it puts none (GPT-2, Llama 3's and Qwen's files). */
int tokenizer_bos_id(const tokenizer *t);

/* The bytes of one token (not NUL-terminated) and their count, or NULL
 * for an unknown id. Owned by the tokenizer. What the token stands for
 * on its own: Llama 2's "\u2581Paris" is " Paris", "<0x0A>" is "\n"; the
 * decoders' steps that depend on the position (stripping the first
 * space) are not applied. */
const char *tokenizer_token_bytes(const tokenizer *t, int id, size_t *len);

#endif
