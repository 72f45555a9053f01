/* bpe_train: trains a GPT-2-style byte-level BPE vocabulary on a text,
 * for the small world models (tools/stamp-world.c).
 *
 * Pre-tokenization is the tokenizer's (GPT-2's regex through PCRE2 in
 * UTF + UCP mode), so merges never cross the word boundaries the
 * tokenizer will see. Ids 0..255 are the 256 byte tokens in GPT-2's
 * order (the bytes_to_unicode order: '!'..'~', '¡'..'¬', '®'..'ÿ', then
 * the rest), so any text encodes; then one id per merged token; then
 * "<|endoftext|>" as the last id. Each step merges the most frequent
 * adjacent pair (ties: the pair whose left token's bytes, then right
 * token's bytes, sort first), so training is deterministic. A merge
 * whose result already exists as a token reuses that token's id.
 *
 * Output is vocab.json (token string in GPT-2's byte-to-unicode
 * alphabet -> id) and merges.txt ("#version: 0.2", then "left right" per
 * line in rank order), which tokenizer_open loads. */
#ifndef STAMP_BPE_TRAIN_H
#define STAMP_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t vocab_size;    /* wanted size incl. the 256 bytes and
                             <|endoftext|> (>= 257); fewer when the text
                             runs out of pairs */
    size_t min_frequency; /* pairs seen fewer times are never merged
                             (0 means 2) */
} bpe_train_options;

typedef struct {
    size_t n_tokens;      /* vocabulary size, <|endoftext|> included */
    char **tokens;        /* (n_tokens) raw bytes of each token ... */
    size_t *token_len;    /* (n_tokens) ... and their count */
    size_t n_merges;
    uint32_t (*merges)[2]; /* (n_merges, 2) token ids, in rank order */
} bpe_train_result;

/* Trains on `len` bytes of UTF-8 text. ERR_FORMAT (with the byte offset)
 * for invalid UTF-8, ERR_INVALID for vocab_size < 257. *out is owned by
 * the caller (bpe_train_free). */
int bpe_train_run(bpe_train_result *out, const char *text, size_t len,
                  const bpe_train_options *opt);

/* Writes DIR/vocab.json and DIR/merges.txt, each atomically. */
int bpe_train_write(const bpe_train_result *r, const char *dir);

void bpe_train_free(bpe_train_result *r); /* accepts NULL; zeroes *r */

/* GPT-2's byte-to-unicode map: the code point that stands for byte b in
 * vocab.json and merges.txt. */
uint32_t bpe_train_byte_char(unsigned char b);

#endif
