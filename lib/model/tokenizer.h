/* tokenizer: GPT-2's byte-level BPE, from vocab.json (token -> id, in
 * GPT-2's byte-to-unicode alphabet) and merges.txt (ranked pairs, first
 * line "#version: ..."). Pre-tokenization uses GPT-2's exact pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * through PCRE2 in UTF mode. The same ids as GPT-2's own tokenizer. */
#ifndef STAMP_TOKENIZER_H
#define STAMP_TOKENIZER_H

#include <stddef.h>

typedef struct tokenizer tokenizer; /* opaque; read-only after open, so
                                       threads may share one */

int tokenizer_open(tokenizer **out, const char *vocab_json_path,
                   const char *merges_txt_path);
/* Opens DIR/vocab.json and DIR/merges.txt. */
int tokenizer_open_dir(tokenizer **out, const char *dir);
void tokenizer_close(tokenizer *t); /* accepts NULL */

size_t tokenizer_vocab_size(const tokenizer *t);

/* Encodes `len` bytes of UTF-8 text. *ids is malloc'ed (caller frees),
 * *n its length. Invalid UTF-8 is ERR_FORMAT. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len,
                     int **ids, size_t *n);

/* Decodes ids to the bytes they stand for; *text is malloc'ed and NUL-
 * terminated (caller frees), *len excludes the NUL. Unknown ids are
 * ERR_INVALID. */
int tokenizer_decode(const tokenizer *t, const int *ids, size_t n,
                     char **text, size_t *len);

/* The raw bytes of one token (not NUL-terminated) and their count, or
 * NULL for an unknown id. Owned by the tokenizer. */
const char *tokenizer_token_bytes(const tokenizer *t, int id, size_t *len);

#endif
