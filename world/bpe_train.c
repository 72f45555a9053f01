/* bpe_train: byte-level BPE training (see bpe_train.h).
 *
 * The text is cut into pre-tokens by GPT-2's pattern and counted; each
 * distinct pre-token ("word") becomes a sequence of byte token ids with
 * its count. bpe_train_run keeps the count of every adjacent pair in a
 * hash table and, per merge, rescans only the words holding the chosen
 * pair (subtracting their pairs, merging, adding them back);
 * bpe_train_naive recounts everything before each merge. Both share
 * the pre-tokenization, the choice rule and the merge of one word, so
 * the tests compare exactly the bookkeeping that makes the fast one
 * fast. Sizes here are small (a corpus of a few MB at most), so a
 * linear scan for the best pair per merge is fine. */
#include "world/bpe_train.h"

#include "base/atomic_file.h"
#include "base/errors.h"
#include "world/bpe_train_naive.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";
static const char EOT[] = "<|endoftext|>";

/* ---- GPT-2's byte <-> unicode alphabet ------------------------------- */

static int printable_byte(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
           (b >= 0xAE && b <= 0xFF);
}

uint32_t bpe_train_byte_char(unsigned char b)
{
    if (printable_byte(b))
        return b;
    uint32_t n = 0;
    for (int c = 0; c < b; c++)
        if (!printable_byte(c))
            n++;
    return 256 + n;
}

/* The id of byte token b: its position in GPT-2's bytes_to_unicode
 * order (printable bytes ascending, then the others ascending). */
static uint32_t byte_id(int b)
{
    uint32_t n = 0;
    if (printable_byte(b)) {
        for (int c = 0; c < b; c++)
            n += printable_byte(c);
        return n;
    }
    for (int c = 0; c < 256; c++)
        n += printable_byte(c);
    for (int c = 0; c < b; c++)
        n += !printable_byte(c);
    return n;
}

/* ---- a hash table of byte strings (words and tokens) ----------------- */

typedef struct {
    size_t cap;         /* power of two */
    size_t n;
    size_t *slot;       /* index + 1, 0 = empty */
    char **key;         /* by index */
    size_t *klen;
} strtab;

static uint64_t bytes_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

static void strtab_free(strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->key[i]);
    free(t->slot);
    free(t->key);
    free(t->klen);
    memset(t, 0, sizeof *t);
}

static size_t *strtab_find_slot(strtab *t, const char *p, size_t n)
{
    size_t i = (size_t)bytes_hash(p, n) & (t->cap - 1);
    while (t->slot[i]) {
        size_t k = t->slot[i] - 1;
        if (t->klen[k] == n && !memcmp(t->key[k], p, n))
            return &t->slot[i];
        i = (i + 1) & (t->cap - 1);
    }
    return &t->slot[i];
}

static int strtab_grow(strtab *t)
{
    size_t cap = t->cap ? 2 * t->cap : 1024;
    size_t *slot = calloc(cap, sizeof *slot);
    char **key = realloc(t->key, cap / 2 * sizeof *key);
    size_t *klen = key ? realloc(t->klen, cap / 2 * sizeof *klen) : NULL;
    if (key)
        t->key = key;
    if (klen)
        t->klen = klen;
    if (!slot || !key || !klen) {
        free(slot);
        return ERR_NOMEM;
    }
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    for (size_t k = 0; k < t->n; k++)
        *strtab_find_slot(t, t->key[k], t->klen[k]) = k + 1;
    return 0;
}

/* The index of string p[0..n) (added when absent: *added = 1). */
static int strtab_get(strtab *t, const char *p, size_t n, size_t *index,
                      int *added)
{
    if (t->cap) {
        size_t *s = strtab_find_slot(t, p, n);
        if (*s) {
            *index = *s - 1;
            *added = 0;
            return 0;
        }
    }
    if (t->n + 1 > t->cap / 2 && strtab_grow(t))
        return ERR_NOMEM;
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return ERR_NOMEM;
    memcpy(copy, p, n);
    t->key[t->n] = copy;
    t->klen[t->n] = n;
    *strtab_find_slot(t, p, n) = t->n + 1;
    *index = t->n++;
    *added = 1;
    return 0;
}

/* ---- training state -------------------------------------------------- */

typedef struct {
    size_t n_words;
    uint32_t **sym;     /* (n_words) token ids of each word */
    size_t *n_sym;
    uint64_t *count;    /* how often the word occurs */
    strtab tokens;      /* token bytes -> id */
    uint32_t (*merges)[2];
    size_t n_merges, cap_merges;
} state;

static void state_free(state *s)
{
    for (size_t i = 0; i < s->n_words; i++)
        free(s->sym[i]);
    free(s->sym);
    free(s->n_sym);
    free(s->count);
    strtab_free(&s->tokens);
    free(s->merges);
    memset(s, 0, sizeof *s);
}

/* Cuts the text into pre-tokens, counts them and sets up the byte
 * tokens. */
static int state_init(state *s, const char *text, size_t len)
{
    memset(s, 0, sizeof *s);
    strtab words = {0};
    uint64_t *count = NULL;
    size_t cap_count = 0;
    int rc = 0, err;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN,
                                   PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &erroff, NULL);
    pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL)
                              : NULL;
    if (!re || !md) {
        rc = err_set(ERR_NOMEM, "cannot compile the pre-tokenizer pattern");
        goto done;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: speed only */

    /* Byte tokens first, in GPT-2's order. */
    char order[256];
    for (int b = 0; b < 256; b++)
        order[byte_id(b)] = (char)b;
    for (int i = 0; i < 256; i++) {
        size_t id;
        int added;
        if (strtab_get(&s->tokens, &order[i], 1, &id, &added))
            goto nomem;
    }

    size_t off = 0;
    uint32_t opts = 0;
    while (off < len) {
        int m = pcre2_match(re, (PCRE2_SPTR)text, len, off, opts, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = err_set(ERR_FORMAT, "text for the vocabulary: %s at byte %zu",
                         (const char *)msg, (size_t)pcre2_get_startchar(md));
            goto done;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) { /* cannot happen with this pattern */
            off++;
            continue;
        }
        size_t w;
        int added;
        if (strtab_get(&words, text + ov[0], ov[1] - ov[0], &w, &added))
            goto nomem;
        if (w >= cap_count) {
            size_t nc = cap_count ? 2 * cap_count : 1024;
            uint64_t *c = realloc(count, nc * sizeof *c);
            if (!c)
                goto nomem;
            count = c;
            cap_count = nc;
        }
        if (added)
            count[w] = 0;
        count[w]++;
        off = ov[1];
        opts = PCRE2_NO_UTF_CHECK; /* the whole subject was checked once */
    }

    s->n_words = words.n;
    s->sym = calloc(words.n ? words.n : 1, sizeof *s->sym);
    s->n_sym = calloc(words.n ? words.n : 1, sizeof *s->n_sym);
    s->count = malloc((words.n ? words.n : 1) * sizeof *s->count);
    if (!s->sym || !s->n_sym || !s->count)
        goto nomem;
    for (size_t w = 0; w < words.n; w++) {
        s->sym[w] = malloc(words.klen[w] * sizeof **s->sym);
        if (!s->sym[w])
            goto nomem;
        for (size_t k = 0; k < words.klen[w]; k++)
            s->sym[w][k] = byte_id((unsigned char)words.key[w][k]);
        s->n_sym[w] = words.klen[w];
        s->count[w] = count[w];
    }
    goto done;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory training the vocabulary");
done:
    strtab_free(&words);
    free(count);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (rc)
        state_free(s);
    return rc;
}

/* 1 when pair (a, b) should be merged before (c, d) at equal counts. */
static int pair_before(const state *s, uint32_t a, uint32_t b, uint32_t c,
                       uint32_t d)
{
    const strtab *t = &s->tokens;
    for (int side = 0; side < 2; side++) {
        uint32_t x = side ? b : a, y = side ? d : c;
        if (x == y)
            continue;
        size_t lx = t->klen[x], ly = t->klen[y];
        int r = memcmp(t->key[x], t->key[y], lx < ly ? lx : ly);
        if (r)
            return r < 0;
        return lx < ly;
    }
    return 0;
}

/* Replaces every (a, b) of word w, left to right, by id. */
static void merge_word(state *s, size_t w, uint32_t a, uint32_t b,
                       uint32_t id)
{
    uint32_t *p = s->sym[w];
    size_t n = s->n_sym[w], o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && p[i] == a && p[i + 1] == b) {
            p[o++] = id;
            i++;
        } else {
            p[o++] = p[i];
        }
    }
    s->n_sym[w] = o;
}

static int word_has(const state *s, size_t w, uint32_t a, uint32_t b)
{
    const uint32_t *p = s->sym[w];
    for (size_t i = 0; i + 1 < s->n_sym[w]; i++)
        if (p[i] == a && p[i + 1] == b)
            return 1;
    return 0;
}

/* Records merge (a, b) and returns the id of its result (a new token, or
 * the existing token with the same bytes). */
static int add_merge(state *s, uint32_t a, uint32_t b, uint32_t *id,
                     int *is_new)
{
    strtab *t = &s->tokens;
    size_t la = t->klen[a], lb = t->klen[b];
    char *buf = malloc(la + lb);
    if (!buf)
        return ERR_NOMEM;
    memcpy(buf, t->key[a], la);
    memcpy(buf + la, t->key[b], lb);
    size_t index;
    int rc = strtab_get(t, buf, la + lb, &index, is_new);
    free(buf);
    if (rc)
        return ERR_NOMEM;
    if (s->n_merges == s->cap_merges) {
        size_t nc = s->cap_merges ? 2 * s->cap_merges : 256;
        uint32_t(*m)[2] = realloc(s->merges, nc * sizeof *m);
        if (!m)
            return ERR_NOMEM;
        s->merges = m;
        s->cap_merges = nc;
    }
    s->merges[s->n_merges][0] = a;
    s->merges[s->n_merges][1] = b;
    s->n_merges++;
    *id = (uint32_t)index;
    return 0;
}

/* ---- pair counts: open addressing, key (a << 32 | b) ------------------ */

typedef struct {
    size_t cap, n;       /* n = keys ever inserted (zero counts stay) */
    uint64_t *key;       /* UINT64_MAX = empty */
    int64_t *val;
} pairtab;

static void pairtab_free(pairtab *p)
{
    free(p->key);
    free(p->val);
    memset(p, 0, sizeof *p);
}

static int pairtab_init(pairtab *p, size_t cap)
{
    p->cap = cap;
    p->n = 0;
    p->key = malloc(cap * sizeof *p->key);
    p->val = calloc(cap, sizeof *p->val);
    if (!p->key || !p->val)
        return ERR_NOMEM;
    memset(p->key, 0xff, cap * sizeof *p->key);
    return 0;
}

static size_t pair_slot(const pairtab *p, uint64_t k)
{
    uint64_t h = k * 0x9e3779b97f4a7c15ULL;
    size_t i = (size_t)(h >> 20) & (p->cap - 1);
    while (p->key[i] != UINT64_MAX && p->key[i] != k)
        i = (i + 1) & (p->cap - 1);
    return i;
}

static int pairtab_add(pairtab *p, uint32_t a, uint32_t b, int64_t d)
{
    uint64_t k = (uint64_t)a << 32 | b;
    if ((p->n + 1) * 2 > p->cap) {
        pairtab old = *p;
        if (pairtab_init(p, old.cap * 2)) {
            pairtab_free(p);
            *p = old;
            return ERR_NOMEM;
        }
        for (size_t i = 0; i < old.cap; i++)
            if (old.key[i] != UINT64_MAX && old.val[i]) {
                size_t j = pair_slot(p, old.key[i]);
                p->key[j] = old.key[i];
                p->val[j] = old.val[i];
                p->n++;
            }
        pairtab_free(&old);
    }
    size_t i = pair_slot(p, k);
    if (p->key[i] == UINT64_MAX) {
        p->key[i] = k;
        p->n++;
    }
    p->val[i] += d;
    return 0;
}

static int count_word(pairtab *p, const state *s, size_t w, int64_t sign)
{
    const uint32_t *q = s->sym[w];
    for (size_t i = 0; i + 1 < s->n_sym[w]; i++)
        if (pairtab_add(p, q[i], q[i + 1], sign * (int64_t)s->count[w]))
            return ERR_NOMEM;
    return 0;
}

/* The best pair of the table (count >= min), or 0 when none. */
static int best_pair(const pairtab *p, const state *s, int64_t min,
                     uint32_t *a, uint32_t *b)
{
    int found = 0;
    int64_t best = 0;
    for (size_t i = 0; i < p->cap; i++) {
        if (p->key[i] == UINT64_MAX || p->val[i] < min)
            continue;
        uint32_t x = (uint32_t)(p->key[i] >> 32), y = (uint32_t)p->key[i];
        if (!found || p->val[i] > best ||
            (p->val[i] == best && pair_before(s, x, y, *a, *b))) {
            found = 1;
            best = p->val[i];
            *a = x;
            *b = y;
        }
    }
    return found;
}

static int check_options(const bpe_train_options *opt)
{
    if (opt->vocab_size < 257)
        return err_set(ERR_INVALID, "vocabulary size %zu too small (at least "
                       "257: 256 bytes and <|endoftext|>)", opt->vocab_size);
    return 0;
}

/* Moves the state's tokens and merges into the result, adding EOT. */
static int finish(state *s, bpe_train_result *out)
{
    size_t id;
    int added;
    if (strtab_get(&s->tokens, EOT, strlen(EOT), &id, &added))
        return err_set(ERR_NOMEM, "out of memory training the vocabulary");
    if (!added) /* impossible: pre-tokens never join "<|" and "|>" */
        return err_set(ERR_INVALID, "'<|endoftext|>' learned as a token");
    out->n_tokens = s->tokens.n;
    out->tokens = s->tokens.key;
    out->token_len = s->tokens.klen;
    out->n_merges = s->n_merges;
    out->merges = s->merges;
    free(s->tokens.slot);
    s->tokens.key = NULL;
    s->tokens.klen = NULL;
    s->tokens.slot = NULL;
    s->tokens.n = 0;
    s->merges = NULL;
    s->n_merges = 0;
    return 0;
}

int bpe_train_run(bpe_train_result *out, const char *text, size_t len,
                  const bpe_train_options *opt)
{
    memset(out, 0, sizeof *out);
    int rc = check_options(opt);
    if (rc)
        return rc;
    state s;
    pairtab p = {0};
    if ((rc = state_init(&s, text, len)))
        return rc;
    int64_t min = opt->min_frequency ? (int64_t)opt->min_frequency : 2;
    if (pairtab_init(&p, 4096))
        goto nomem;
    for (size_t w = 0; w < s.n_words; w++)
        if (count_word(&p, &s, w, 1))
            goto nomem;
    uint32_t a = 0, b = 0;
    while (s.tokens.n + 1 < opt->vocab_size && best_pair(&p, &s, min, &a, &b)) {
        uint32_t id;
        int is_new;
        if (add_merge(&s, a, b, &id, &is_new))
            goto nomem;
        for (size_t w = 0; w < s.n_words; w++) {
            if (!word_has(&s, w, a, b))
                continue;
            if (count_word(&p, &s, w, -1))
                goto nomem;
            merge_word(&s, w, a, b, id);
            if (count_word(&p, &s, w, 1))
                goto nomem;
        }
    }
    rc = finish(&s, out);
    goto done;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory training the vocabulary");
done:
    pairtab_free(&p);
    state_free(&s);
    if (rc)
        bpe_train_free(out);
    return rc;
}

int bpe_train_naive(bpe_train_result *out, const char *text, size_t len,
                    const bpe_train_options *opt)
{
    memset(out, 0, sizeof *out);
    int rc = check_options(opt);
    if (rc)
        return rc;
    state s;
    pairtab p = {0};
    if ((rc = state_init(&s, text, len)))
        return rc;
    int64_t min = opt->min_frequency ? (int64_t)opt->min_frequency : 2;
    while (s.tokens.n + 1 < opt->vocab_size) {
        pairtab_free(&p);
        if (pairtab_init(&p, 4096))
            goto nomem;
        for (size_t w = 0; w < s.n_words; w++)
            if (count_word(&p, &s, w, 1))
                goto nomem;
        uint32_t a = 0, b = 0, id;
        int is_new;
        if (!best_pair(&p, &s, min, &a, &b))
            break;
        if (add_merge(&s, a, b, &id, &is_new))
            goto nomem;
        for (size_t w = 0; w < s.n_words; w++)
            merge_word(&s, w, a, b, id);
    }
    rc = finish(&s, out);
    goto done;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory training the vocabulary");
done:
    pairtab_free(&p);
    state_free(&s);
    if (rc)
        bpe_train_free(out);
    return rc;
}

void bpe_train_free(bpe_train_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tokens; i++)
        free(r->tokens[i]);
    free(r->tokens);
    free(r->token_len);
    free(r->merges);
    memset(r, 0, sizeof *r);
}

/* ---- writing ---------------------------------------------------------- */

/* Token bytes in the byte-to-unicode alphabet, UTF-8, NUL-terminated
 * (malloc'ed). The EOT token is written as itself. */
static char *token_string(const bpe_train_result *r, size_t id)
{
    const char *p = r->tokens[id];
    size_t n = r->token_len[id];
    char *out = malloc(2 * n + 1);
    if (!out)
        return NULL;
    if (id + 1 == r->n_tokens) {
        memcpy(out, p, n);
        out[n] = '\0';
        return out;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = bpe_train_byte_char((unsigned char)p[i]);
        if (c < 0x80) {
            out[o++] = (char)c;
        } else {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = '\0';
    return out;
}

static int write_text(const char *path, const char *text, size_t n)
{
    atomic_file *f;
    int rc = atomic_file_open(&f, path);
    if (rc)
        return rc;
    if ((rc = atomic_file_write(f, text, n))) {
        atomic_file_abort(f);
        return rc;
    }
    return atomic_file_commit(f);
}

int bpe_train_write(const bpe_train_result *r, const char *dir)
{
    int rc = 0;
    char path[4096];
    char *dump = NULL, *merges = NULL;
    json_t *vocab = json_object();
    if (!vocab)
        goto nomem;
    for (size_t id = 0; id < r->n_tokens; id++) {
        char *s = token_string(r, id);
        if (!s)
            goto nomem;
        int bad = json_object_set_new(vocab, s, json_integer((json_int_t)id));
        free(s);
        if (bad)
            goto nomem;
    }
    if (json_object_size(vocab) != r->n_tokens) {
        rc = err_set(ERR_INVALID, "vocabulary has duplicate tokens");
        goto done;
    }
    dump = json_dumps(vocab, JSON_COMPACT);
    if (!dump)
        goto nomem;
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    if ((rc = write_text(path, dump, strlen(dump))))
        goto done;

    size_t cap = 64, len = 0;
    merges = malloc(cap);
    if (!merges)
        goto nomem;
    len = (size_t)snprintf(merges, cap, "#version: 0.2\n");
    for (size_t k = 0; k < r->n_merges; k++) {
        char *a = token_string(r, r->merges[k][0]);
        char *b = a ? token_string(r, r->merges[k][1]) : NULL;
        size_t need = (a && b) ? strlen(a) + strlen(b) + 3 : 0;
        if (need && len + need > cap) {
            size_t nc = 2 * (len + need);
            char *m = realloc(merges, nc);
            if (m) {
                merges = m;
                cap = nc;
            } else {
                need = 0;
            }
        }
        if (need)
            len += (size_t)snprintf(merges + len, cap - len, "%s %s\n", a, b);
        free(a);
        free(b);
        if (!need)
            goto nomem;
    }
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    rc = write_text(path, merges, len);
    goto done;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory writing the vocabulary");
done:
    free(merges);
    free(dump);
    json_decref(vocab);
    return rc;
}
