/* tokenizer_impl: what the tokenizer's source files share and nothing
 * else may use: the handle's layout, the merge table, the BPE core, and
 * the Hugging Face tokenizer.json part (tokenizer_json.c loads it,
 * tokenizer_hf.c runs it, tokenizer_nfc.c normalizes for it).
 *
 * Both kinds of tokenizer keep every token's decoded bytes in bytes/off
 * (what tokenizer_token_bytes hands out) and their merges in `pairs`
 * keyed by the two ids. GPT-2's handle has `re` (its split pattern) and
 * byte_id; a tokenizer.json handle has `hf`, which holds the rest. */
#ifndef STAMP_TOKENIZER_IMPL_H
#define STAMP_TOKENIZER_IMPL_H

#include "model/tokenizer.h"
#include "model/tokenizer_cache.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key;  /* left id << 32 | right id; PAIR_EMPTY when free */
    int32_t rank;
    int32_t merged;
} pair_slot;
#define PAIR_EMPTY UINT64_MAX

typedef struct hf_tok hf_tok;

/* A slot of the string map: id (-1: free) and its key, pool[off..+len). */
typedef struct {
    int32_t id;
    uint32_t len, off;
} hf_map_slot;

struct tokenizer {
    size_t n_vocab;
    char *bytes;        /* every token's decoded bytes, concatenated */
    size_t *off;        /* (n_vocab + 1) offsets into bytes */
    int byte_id[256];   /* GPT-2: id of each single-byte token */
    pair_slot *pairs;   /* open addressing, pair_cap a power of two */
    size_t pair_cap;
    pcre2_code *re;     /* GPT-2's split pattern */
    hf_tok *hf;         /* tokenizer.json's pipeline; NULL for GPT-2 */
};

static inline size_t tok_pair_hash(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

/* The merge of ids a and b, or NULL (also for negative ids). */
static inline const pair_slot *tok_pair_find(const tokenizer *t, int a, int b)
{
    if (a < 0 || b < 0) return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t h = tok_pair_hash(key, t->pair_cap);; h = (h + 1) & (t->pair_cap - 1)) {
        const pair_slot *s = &t->pairs[h];
        if (s->key == key) return s;
        if (s->key == PAIR_EMPTY) return NULL;
    }
}

/* The smallest power of two >= 16 above 2n: a hash table's capacity. */
size_t tok_pow2_above(size_t n);

/* Reads a whole file; *data is malloc'ed and NUL-terminated. */
int tok_read_file(const char *path, char **data, size_t *len);

/* A candidate merge for the BPE core: the pair starting at symbol `pos`. */
typedef struct {
    int32_t rank, pos, left, right;
} tok_cand;

/* BPE over the m >= 1 symbol ids in iw[0..m) (a negative id never
 * merges); writes the result to out and returns its count. `iw` holds 4*m
 * ints, `h` 3*m cands. `immediate` = 0 merges in passes, every occurrence
 * of the lowest-ranked pair left to right before looking at the pairs the
 * pass created (GPT-2's encoder.py); 1 takes the lowest (rank, position)
 * pair each time, new pairs included at once (Hugging Face's tokenizers
 * and transformers.js). The two agree when every merge ranks after the
 * merges that create its parts. */
size_t tok_bpe(const tokenizer *t, int m, int immediate, int *out, int *iw,
               tok_cand *h);

/* ---- tokenizer.json (tokenizer_json.c, tokenizer_hf.c) ---- */

/* Kinds of id. Virtual ids (past n_vocab) are strings that only merges
 * name: BPE may pass through them, the output never holds one. */
enum { ID_NONE, ID_VOCAB, ID_ADDED, ID_VIRTUAL };

/* A step of the pipeline; the fields each kind uses are noted. */
enum {
    NORM_PREPEND,   /* s */
    NORM_REPLACE,   /* re, s = content */
    NORM_NFC,
    PRE_BYTELEVEL,  /* flag = add_prefix_space, re = GPT-2's pattern or NULL */
    PRE_SPLIT,      /* re, mode */
    PRE_MATCH,      /* re: keep the matches only (Split invert, Digits) */
    PRE_METASPACE,  /* s = replacement, mode = prepend scheme, flag = split */
    DEC_BYTELEVEL,
    DEC_REPLACE,    /* re, s = content */
    DEC_BYTEFALLBACK,
    DEC_FUSE,
    DEC_STRIP,      /* cp = content, start, stop */
    DEC_METASPACE,  /* s = replacement, mode = prepend scheme */
};
enum { SPLIT_ISOLATED, SPLIT_REMOVED };
enum { HF_SPECIAL = 1, HF_LSTRIP = 2, HF_RSTRIP = 4 };
enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

typedef struct {
    int kind;
    pcre2_code *re;
    char *re_src;       /* re's PCRE2 source (malloc'ed), for the cache */
    size_t re_n;
    char *s;            /* malloc'ed */
    size_t sn;
    int mode, flag;
    uint32_t cp;
    int start, stop;
} hf_step;

typedef struct {
    int id;
    int lstrip, rstrip;
    const char *s;      /* content, in hf->pool */
    size_t n;
} hf_added;

struct hf_tok {
    char *path;             /* for messages */
    size_t n_vocab;         /* real ids: 0..n_vocab-1 */
    size_t n_all;           /* ids, virtual ones included */
    char *pool;             /* every string: tokens, added contents */
    size_t pool_n;          /* its length, < 4 GiB */
    size_t *str_off;        /* (n_all) id -> its string in pool ... */
    uint32_t *str_len;      /* (n_all) ... of this many bytes */
    uint8_t *kind;          /* (n_all) ID_* */
    uint8_t *special;       /* (n_all) HF_* bits of an added token */
    hf_map_slot *map;       /* string -> id, open addressing */
    size_t map_cap;
    int32_t cp_id[0x800];   /* id of each one-character string < U+0800 */
    char b2u[256][2];       /* GPT-2's bytes_to_unicode char of each byte, */
    uint8_t b2u_n[256];     /* in UTF-8 of this many bytes */
    int unk_id;             /* -1: none */
    int byte_fallback, fuse_unk, ignore_merges;
    int fb_id[256];         /* id of "<0xXX>", -1 when absent */
    hf_added *added;        /* sorted by first byte, then longest first */
    size_t n_added;
    size_t added_at[257];   /* added[added_at[b]..added_at[b+1]) start with b */
    hf_step *norm, *pre, *dec;
    size_t n_norm, n_pre, n_dec;
    int has_decoder;
    int *tmpl;              /* single template: ids, -1 for the sequence */
    size_t n_tmpl;
    int bos_id;
    /* Loaded from the cache (tokenizer_cache.c): the read-only mapping
     * of blob_n bytes (malloc'ed when blob_malloced) that pool, str_off,
     * str_len, kind, special, map, tmpl and the tokenizer's bytes, off
     * and pairs point into; NULL when parsed, each of those then
     * malloc'ed on its own. */
    void *blob;
    size_t blob_n;
    int blob_malloced;
};

/* The string of id (not NUL-terminated) and its length. */
static inline const char *hf_str(const hf_tok *hf, int id, size_t *n)
{
    *n = hf->str_len[id];
    return hf->pool + hf->str_off[id];
}

/* The id whose string is s[0..n), or -1. */
int hf_lookup(const hf_tok *hf, const char *s, size_t n);

/* Runs the decoder steps on a list of n token strings; single = 1 leaves
 * out the steps that depend on position (for tokenizer_token_bytes).
 * *text is malloc'ed, NUL-terminated. */
int hf_run_decoders(const hf_tok *hf, const char *const *tok,
                    const size_t *tlen, const uint8_t *added, size_t n,
                    int single, char **text, size_t *len);

/* Opens the tokenizer.json at `path`: from the cache when it holds the
 * file's parse (tokenizer_cache.c), else parsed and then cached. */
int hf_open(tokenizer **out, const char *path);

/* Compiles a PCRE2 pattern as every tokenizer.json regex is compiled
 * (UTF, DOLLAR_ENDONLY, JIT when there is one); NULL when it does not
 * compile, *ecode then says why. */
pcre2_code *hf_compile_re(const char *src, size_t n, int *ecode, size_t *eoff);

/* What hf's strings and map determine: fb_id, b2u, cp_id, added_at (the
 * added tokens already sorted) and bos_id (the template read). */
void hf_derive(hf_tok *hf);

void hf_free(hf_tok *hf); /* accepts NULL */
int hf_encode(const tokenizer *t, const char *text, size_t len,
              unsigned flags, int **ids, size_t *n);
int hf_decode(const tokenizer *t, const int *ids, size_t n, unsigned flags,
              char **text, size_t *len);
int hf_is_special(const tokenizer *t, int id);
int hf_bos_id(const tokenizer *t);

/* ---- Unicode helpers (tokenizer_nfc.c) ---- */

/* The code point at s[0..n) (valid UTF-8 assumed) and its length. */
static inline uint32_t tok_utf8_next(const char *s, size_t n, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (p[0] < 0x80 || n < 2) { *len = 1; return p[0]; }
    if (p[0] < 0xE0) { *len = 2; return (p[0] & 0x1Fu) << 6 | (p[1] & 0x3Fu); }
    if (p[0] < 0xF0 || n < 4) {
        *len = 3;
        return (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);
    }
    *len = 4;
    return (p[0] & 0x07u) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 |
           (p[3] & 0x3Fu);
}

/* Writes cp as UTF-8 to out (4 bytes room); returns the length. */
size_t tok_utf8_put(uint32_t cp, char *out);

/* The offset of the first byte that is not valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF are invalid), or n. */
size_t tok_utf8_check(const char *s, size_t n);

/* NFC of valid UTF-8 s[0..n): *out is malloc'ed (caller frees), *outn
 * its length. 0 or ERR_NOMEM. */
int tok_nfc(const char *s, size_t n, char **out, size_t *outn);

#endif
