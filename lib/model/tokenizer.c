/* tokenizer: GPT-2's byte-level BPE (see tokenizer.h).
 *
 * Loading turns vocab.json into a table id -> raw bytes (undoing GPT-2's
 * bytes_to_unicode alphabet) and merges.txt into a hash map from a pair
 * of token ids to (rank, merged id); a merge's two parts and its result
 * must be vocabulary tokens (errors give the file and line).
 *
 * Encoding splits the text with GPT-2's pattern (PCRE2, UTF, JIT when
 * available), then runs BPE on each piece with a min-heap of candidate
 * pairs ordered by (rank, position) over a linked list of symbols, with
 * no cache. The reference algorithm repeatedly takes the lowest-ranked
 * adjacent pair and merges all its occurrences left to right; the heap
 * does the same in passes: it pops every occurrence of the lowest rank in
 * position order (skipping entries made stale by earlier merges), and
 * only after the pass pushes the pairs the merges created. Deferring the
 * pushes keeps it exact even for a merges list in which a merge ranks
 * before the merge that creates its token. O(m log m) for a piece of m
 * bytes; the unit test compares it with a naive twin on long pieces.
 *
 * Whitespace: the reference (OpenAI's encoder.py) runs the pattern with
 * Python's `regex` module, whose \s is Unicode's White_Space property.
 * PCRE2's \s (UCP) also takes U+180E, JavaScript's takes U+FEFF and not
 * U+0085, so the pattern below spells White_Space out as a class. */
#include "model/tokenizer.h"
#include "base/errors.h"
#include "model/tokenizer_impl.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define WS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
           "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+"
    "|[" WS "]+(?![^" WS "])|[" WS "]+";

/* bytes_to_unicode of GPT-2: printable Latin-1 bytes map to themselves,
 * the other 68 bytes to U+0100.. in byte order. u2b inverts it. */
static void byte_alphabet(unsigned b2u[256], int u2b[324])
{
    int n = 0;
    for (int i = 0; i < 324; i++) u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
                   (b >= 174 && b <= 255);
        b2u[b] = keep ? (unsigned)b : (unsigned)(256 + n++);
        u2b[b2u[b]] = b;
    }
}

/* Converts a token written in the byte alphabet (UTF-8) to raw bytes in
 * out (at least strlen(s) bytes); returns the count or -1 when a
 * character is outside the alphabet. */
static long alphabet_to_bytes(const char *s, size_t n, const int u2b[324],
                              char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        unsigned cp;
        if (p[i] < 0x80) {
            cp = p[i++];
        } else if ((p[i] & 0xe0) == 0xc0 && i + 1 < n &&
                   (p[i + 1] & 0xc0) == 0x80) {
            cp = ((p[i] & 0x1fu) << 6) | (p[i + 1] & 0x3fu);
            i += 2;
        } else {
            return -1; /* the alphabet is U+0021..U+0143: 1 or 2 bytes */
        }
        if (cp >= 324 || u2b[cp] < 0) return -1;
        out[k++] = (char)u2b[cp];
    }
    return (long)k;
}

/* A map from raw token bytes to id, used only while loading. */
typedef struct {
    int *slot; /* id or -1 */
    size_t cap;
    const tokenizer *t;
} bytes_map;

static int bytes_map_find(const bytes_map *m, const char *s, size_t n)
{
    for (size_t h = XXH3_64bits(s, n) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        int id = m->slot[h];
        if (id < 0) return -1;
        size_t len = m->t->off[id + 1] - m->t->off[id];
        if (len == n && !memcmp(m->t->bytes + m->t->off[id], s, n)) return id;
    }
}

static void bytes_map_put(bytes_map *m, int id)
{
    const char *s = m->t->bytes + m->t->off[id];
    size_t n = m->t->off[id + 1] - m->t->off[id];
    size_t h = XXH3_64bits(s, n) & (m->cap - 1);
    while (m->slot[h] >= 0) h = (h + 1) & (m->cap - 1);
    m->slot[h] = id;
}

size_t tok_pow2_above(size_t n)
{
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
}

static int load_vocab(tokenizer *t, const char *path, const int u2b[324])
{
    json_error_t jerr;
    int rc = 0;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0)
            return err_set(ERR_IO, "'%s': %s", path, jerr.text);
        return err_set(ERR_FORMAT, "'%s':%d: bad JSON at column %d: %s", path,
                       jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) {
        rc = err_set(ERR_FORMAT, "'%s': not a JSON object of token -> id",
                     path);
        goto out;
    }
    size_t n = json_object_size(root);
    if (n == 0 || n >= INT_MAX) {
        rc = err_set(ERR_FORMAT, "'%s': %zu tokens", path, n);
        goto out;
    }
    /* First pass: validate ids and sizes; second: fill in id order. */
    const char **keys = calloc(n, sizeof *keys);
    size_t total = 0;
    t->off = calloc(n + 1, sizeof *t->off);
    if (!keys || !t->off) {
        free(keys);
        rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!json_is_integer(val)) {
            rc = err_set(ERR_FORMAT, "'%s': token '%s': id is not an integer",
                         path, key);
            break;
        }
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= n) {
            rc = err_set(ERR_FORMAT, "'%s': token '%s': id %lld out of range "
                         "[0, %zu) (ids must be 0..count-1)", path, key,
                         (long long)id, n);
            break;
        }
        if (keys[id]) {
            rc = err_set(ERR_FORMAT, "'%s': tokens '%s' and '%s' share id "
                         "%lld", path, keys[id], key, (long long)id);
            break;
        }
        keys[id] = key;
        total += strlen(key);
    }
    if (!rc && !(t->bytes = malloc(total ? total : 1)))
        rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
    for (size_t id = 0; id < n && !rc; id++) {
        size_t klen = strlen(keys[id]);
        long k = klen ? alphabet_to_bytes(keys[id], klen, u2b,
                                          t->bytes + t->off[id]) : -1;
        if (k < 0)
            rc = err_set(ERR_FORMAT, "'%s': token '%s' (id %zu) is empty or "
                         "not in GPT-2's byte alphabet", path, keys[id], id);
        else
            t->off[id + 1] = t->off[id] + (size_t)k;
    }
    free(keys);
    if (rc) goto out;
    t->n_vocab = n;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (size_t id = 0; id < n; id++)
        if (t->off[id + 1] - t->off[id] == 1) {
            unsigned char b = (unsigned char)t->bytes[t->off[id]];
            if (t->byte_id[b] >= 0) {
                rc = err_set(ERR_FORMAT, "'%s': byte 0x%02x has two tokens "
                             "(ids %d and %zu)", path, b, t->byte_id[b], id);
                goto out;
            }
            t->byte_id[b] = (int)id;
        }
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0) {
            rc = err_set(ERR_FORMAT, "'%s': no token for byte 0x%02x (a "
                         "byte-level vocabulary needs all 256)", path, b);
            goto out;
        }
out:
    json_decref(root);
    return rc;
}

int tok_read_file(const char *path, char **data, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(ERR_IO, "cannot open '%s': %s", path,
                            strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(fp);
            return err_set(ERR_NOMEM, "'%s': out of memory", path);
        }
        n += fread(buf + n, 1, cap - 1 - n, fp);
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return err_set(ERR_IO, "cannot read '%s'", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static int load_merges(tokenizer *t, const char *path, const int u2b[324])
{
    char *text = NULL, *tmp = NULL;
    size_t len = 0;
    bytes_map m = {0};
    int rc = tok_read_file(path, &text, &len);
    if (rc) return rc;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    m.t = t;
    m.cap = tok_pow2_above(t->n_vocab);
    m.slot = malloc(m.cap * sizeof *m.slot);
    t->pair_cap = tok_pow2_above(lines);
    t->pairs = malloc(t->pair_cap * sizeof *t->pairs);
    tmp = malloc(2 * len + 2);
    if (!m.slot || !t->pairs || !tmp) {
        rc = err_set(ERR_NOMEM, "'%s': out of memory", path);
        goto out;
    }
    memset(m.slot, 0xff, m.cap * sizeof *m.slot);
    for (size_t i = 0; i < t->pair_cap; i++) t->pairs[i].key = PAIR_EMPTY;
    for (size_t id = 0; id < t->n_vocab; id++) {
        size_t n = t->off[id + 1] - t->off[id];
        if (bytes_map_find(&m, t->bytes + t->off[id], n) >= 0) {
            rc = err_set(ERR_FORMAT, "vocabulary has two tokens with the bytes "
                         "of id %zu", id);
            goto out;
        }
        bytes_map_put(&m, (int)id);
    }
    char *line = text;
    int32_t rank = 0;
    for (size_t lineno = 1; line < text + len; lineno++) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        char *next = end ? end + 1 : text + len;
        if (!end) end = text + len;
        if (end > line && end[-1] == '\r') end--;
        *end = '\0';
        if (lineno == 1 && !strncmp(line, "#version", 8)) {
            line = next;
            continue;
        }
        char *sp = strchr(line, ' ');
        if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' ') ||
            strlen(line) != (size_t)(end - line)) {
            rc = err_set(ERR_FORMAT, "'%s':%zu: expected two tokens separated "
                         "by one space", path, lineno);
            goto out;
        }
        *sp = '\0';
        const char *part[2] = {line, sp + 1};
        int id[2];
        long off = 0;
        for (int k = 0; k < 2; k++) {
            long nb = alphabet_to_bytes(part[k], strlen(part[k]), u2b, tmp + off);
            if (nb < 0) {
                rc = err_set(ERR_FORMAT, "'%s':%zu: token '%s' is not in GPT-2's "
                             "byte alphabet", path, lineno, part[k]);
                goto out;
            }
            id[k] = bytes_map_find(&m, tmp + off, (size_t)nb);
            if (id[k] < 0) {
                rc = err_set(ERR_FORMAT, "'%s':%zu: token '%s' is not in the "
                             "vocabulary", path, lineno, part[k]);
                goto out;
            }
            off += nb;
        }
        int merged = bytes_map_find(&m, tmp, (size_t)off);
        if (merged < 0) {
            rc = err_set(ERR_FORMAT, "'%s':%zu: merged token '%s%s' is not in "
                         "the vocabulary", path, lineno, part[0], part[1]);
            goto out;
        }
        uint64_t key = (uint64_t)(uint32_t)id[0] << 32 | (uint32_t)id[1];
        size_t h = tok_pair_hash(key, t->pair_cap);
        while (t->pairs[h].key != PAIR_EMPTY && t->pairs[h].key != key)
            h = (h + 1) & (t->pair_cap - 1);
        if (t->pairs[h].key == key) {
            rc = err_set(ERR_FORMAT, "'%s':%zu: duplicate merge '%s %s'", path,
                         lineno, part[0], part[1]);
            goto out;
        }
        t->pairs[h] = (pair_slot){key, rank++, merged};
        line = next;
    }
out:
    free(tmp);
    free(m.slot);
    free(text);
    return rc;
}

int tokenizer_open(tokenizer **out, const char *vocab_json_path,
                   const char *merges_txt_path)
{
    *out = NULL;
    unsigned b2u[256];
    int u2b[324];
    byte_alphabet(b2u, u2b);
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(ERR_NOMEM, "out of memory");
    int rc = load_vocab(t, vocab_json_path, u2b);
    if (!rc) rc = load_merges(t, merges_txt_path, u2b);
    if (rc) goto fail;
    int ecode;
    PCRE2_SIZE eoff;
    t->re = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        rc = err_set(ERR_INVALID, "cannot compile the GPT-2 pattern at %zu: "
                     "%s", (size_t)eoff, (char *)msg);
        goto fail;
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* interpreter if no JIT */
    *out = t;
    return 0;
fail:
    tokenizer_close(t);
    return rc;
}

int tokenizer_open_dir(tokenizer **out, const char *dir)
{
    *out = NULL;
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    char *j = malloc(n), *v = malloc(n), *m = malloc(n);
    int rc;
    if (!j || !v || !m) {
        rc = err_set(ERR_NOMEM, "'%s': out of memory", dir);
    } else {
        snprintf(j, n, "%s/tokenizer.json", dir);
        snprintf(v, n, "%s/vocab.json", dir);
        snprintf(m, n, "%s/merges.txt", dir);
        rc = access(j, F_OK) == 0 ? hf_open(out, j) : tokenizer_open(out, v, m);
    }
    free(j);
    free(v);
    free(m);
    return rc;
}

void tokenizer_close(tokenizer *t)
{
    if (!t) return;
    if (!t->hf || !t->hf->blob) { /* else they are in the cache's blob */
        free(t->pairs);
        free(t->bytes);
        free(t->off);
    }
    hf_free(t->hf);
    pcre2_code_free(t->re);
    free(t);
}

size_t tokenizer_vocab_size(const tokenizer *t) { return t->n_vocab; }

int tokenizer_is_special(const tokenizer *t, int id)
{
    return t->hf ? hf_is_special(t, id) : 0;
}

int tokenizer_bos_id(const tokenizer *t)
{
    return t->hf ? hf_bos_id(t) : -1;
}

const char *tokenizer_token_bytes(const tokenizer *t, int id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_vocab) return NULL;
    *len = t->off[id + 1] - t->off[id];
    return t->bytes + t->off[id];
}

static inline int cand_less(const tok_cand *a, const tok_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(tok_cand *h, size_t *n, tok_cand c)
{
    size_t i = (*n)++;
    while (i > 0 && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static tok_cand heap_pop(tok_cand *h, size_t *n)
{
    tok_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Pushes the pair (sym at i, next symbol) when it is a merge. */
static inline void consider(const tokenizer *t, const int *sym,
                            const int *next, int i, tok_cand *h, size_t *hn)
{
    if (i < 0 || next[i] < 0) return;
    const pair_slot *p = tok_pair_find(t, sym[i], sym[next[i]]);
    if (p) heap_push(h, hn, (tok_cand){p->rank, i, sym[i], sym[next[i]]});
}

/* An entry is stale when its left symbol was merged away or changed, or
 * the symbol after it is no longer its right one. */
static inline int cand_stale(const int *sym, const int *next, const tok_cand *c)
{
    int j = next[c->pos];
    return sym[c->pos] != c->left || j < 0 || sym[j] != c->right;
}

size_t tok_bpe(const tokenizer *t, int m, int immediate, int *out, int *iw,
               tok_cand *h)
{
    int *sym = iw, *prev = iw + m, *next = iw + 2 * m, *done = iw + 3 * m;
    size_t hn = 0;
    for (int i = 0; i < m; i++) {
        prev[i] = i - 1;
        next[i] = i + 1 < m ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < m; i++) consider(t, sym, next, i, h, &hn);
    while (hn) {
        tok_cand c = heap_pop(h, &hn);
        if (cand_stale(sym, next, &c)) continue;
        /* one pass: every current occurrence of this pair, left to right
         * (or just this one when immediate) */
        int32_t rank = c.rank;
        int merged = tok_pair_find(t, c.left, c.right)->merged, nd = 0;
        for (;;) {
            int i = c.pos, j = next[i];
            sym[i] = merged;
            sym[j] = -1;
            next[i] = next[j];
            if (next[j] >= 0) prev[next[j]] = i;
            done[nd++] = i;
            int found = 0;
            while (!immediate && !found && hn && h[0].rank == rank) {
                c = heap_pop(h, &hn);
                found = !cand_stale(sym, next, &c);
            }
            if (!found) break;
        }
        for (int k = 0; k < nd; k++) {
            consider(t, sym, next, prev[done[k]], h, &hn);
            consider(t, sym, next, done[k], h, &hn);
        }
    }
    size_t n = 0;
    for (int i = 0; i >= 0; i = next[i]) out[n++] = sym[i];
    return n;
}

/* GPT-2's BPE of one piece of m >= 1 bytes; appends its ids to out. */
static size_t bpe_piece(const tokenizer *t, const unsigned char *w, int m,
                        int *out, int *iw, tok_cand *h)
{
    if (m == 1) {
        out[0] = t->byte_id[w[0]];
        return 1;
    }
    for (int i = 0; i < m; i++) iw[i] = t->byte_id[w[i]];
    return tok_bpe(t, m, 0, out, iw, h);
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len,
                     int **ids, size_t *n)
{
    return tokenizer_encode_ex(t, text, len, 0, ids, n);
}

int tokenizer_encode_continuation(const tokenizer *t, const char *context,
                                  const char *text, int **ids, size_t *n)
{
    size_t lc = strlen(context), lt = strlen(text), nc = 0, nf = 0;
    int *c = NULL, *full = NULL, rc;
    if (!t->hf || !lc) return tokenizer_encode(t, text, lt, ids, n);
    char *joined = malloc(lc + lt + 1);
    if (!joined) return err_set(ERR_NOMEM, "out of memory");
    memcpy(joined, context, lc);
    memcpy(joined + lc, text, lt + 1);
    rc = tokenizer_encode(t, context, lc, &c, &nc);
    if (!rc) rc = tokenizer_encode(t, joined, lc + lt, &full, &nf);
    free(joined);
    if (!rc && nf > nc && !memcmp(c, full, nc * sizeof *c)) {
        memmove(full, full + nc, (nf - nc) * sizeof *full);
        *ids = full;
        *n = nf - nc;
        full = NULL;
    } else if (!rc) { /* the text merged into the context's last token */
        rc = tokenizer_encode(t, text, lt, ids, n);
    }
    free(c);
    free(full);
    return rc;
}

int tokenizer_encode_ex(const tokenizer *t, const char *text, size_t len,
                        unsigned flags, int **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (t->hf) return hf_encode(t, text, len, flags, ids, n);
    if (len > (size_t)INT_MAX)
        return err_set(ERR_INVALID, "text of %zu bytes is too long to encode",
                       len);
    int rc = 0;
    size_t count = 0, wcap = 256;
    int *out = malloc((len ? len : 1) * sizeof *out);
    int *iw = malloc(4 * wcap * sizeof *iw);
    tok_cand *h = malloc(3 * wcap * sizeof *h);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!out || !iw || !h || !md) {
        rc = err_set(ERR_NOMEM, "out of memory encoding %zu bytes", len);
        goto out;
    }
    PCRE2_SIZE start = 0;
    uint32_t opts = 0; /* the first match checks the whole text's UTF-8 */
    while (start < len) {
        int r = pcre2_match(t->re, (PCRE2_SPTR)text, len, start, opts, md,
                            NULL);
        opts = PCRE2_NO_UTF_CHECK;
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(r, msg, sizeof msg);
            if (r <= PCRE2_ERROR_UTF8_ERR1 && r >= PCRE2_ERROR_UTF8_ERR21)
                rc = err_set(ERR_FORMAT, "invalid UTF-8 at byte %zu: %s",
                             (size_t)pcre2_get_startchar(md), (char *)msg);
            else
                rc = err_set(ERR_INVALID, "cannot split the text: %s",
                             (char *)msg);
            goto out;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m = ov[1] - ov[0];
        if (m == 0) break; /* the pattern cannot match empty; be safe */
        if (m > wcap) {
            free(iw);
            free(h);
            wcap = m;
            iw = malloc(4 * wcap * sizeof *iw);
            h = malloc(3 * wcap * sizeof *h);
            if (!iw || !h) {
                rc = err_set(ERR_NOMEM, "out of memory encoding %zu bytes",
                             len);
                goto out;
            }
        }
        count += bpe_piece(t, (const unsigned char *)text + ov[0], (int)m,
                           out + count, iw, h);
        start = ov[1];
    }
    if (count < (len ? len : 1)) {
        int *shrunk = realloc(out, (count ? count : 1) * sizeof *out);
        if (shrunk) out = shrunk;
    }
    *ids = out;
    *n = count;
    out = NULL;
out:
    pcre2_match_data_free(md);
    free(h);
    free(iw);
    free(out);
    return rc;
}

int tokenizer_decode(const tokenizer *t, const int *ids, size_t n,
                     char **text, size_t *len)
{
    return tokenizer_decode_ex(t, ids, n, 0, text, len);
}

int tokenizer_decode_ex(const tokenizer *t, const int *ids, size_t n,
                        unsigned flags, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    if (t->hf) return hf_decode(t, ids, n, flags, text, len);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_vocab)
            return err_set(ERR_INVALID, "unknown token id %d at position %zu "
                           "(vocabulary has %zu)", ids[i], i, t->n_vocab);
        total += t->off[ids[i] + 1] - t->off[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return err_set(ERR_NOMEM, "out of memory decoding %zu ids", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = t->off[ids[i] + 1] - t->off[ids[i]];
        memcpy(s + k, t->bytes + t->off[ids[i]], l);
        k += l;
    }
    s[k] = '\0';
    *text = s;
    *len = k;
    return 0;
}
