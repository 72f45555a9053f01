/* tokenizer_hf: runs a tokenizer.json pipeline that tokenizer_json.c
 * loaded, step for step as transformers.js's tokenizers do:
 *
 *   encode: split the text at added tokens (leftmost, longest); apply
 *   their lstrip/rstrip to the neighbours; then for each other section:
 *   normalizers -> pre-tokenizers (a list of pieces) -> BPE of each piece
 *   (ignore_merges: a piece that is a token is taken whole; what BPE
 *   leaves outside the vocabulary becomes <0xXX> byte tokens or unk) ->
 *   fuse_unk; with TOKENIZER_ADD_SPECIAL the template around it all.
 *   decode: ids -> token strings -> the decoder steps -> one string.
 *
 * Regexes match the way JavaScript's global matchAll steps (after an
 * empty match, on by one code point). Strings are UTF-8 throughout; the
 * input is checked once, so PCRE2 runs without its UTF check. */
#include "base/errors.h"
#include "model/tokenizer_impl.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A list of pieces: strings in one buffer, each with a flag. */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t *off, *n;
    uint8_t *flag;
    size_t cnt, ncap;
    int oom;
} plist;

static void pl_push(plist *p, const char *s, size_t n, uint8_t flag)
{
    if (p->oom) return;
    if (p->len + n > p->cap || !p->buf) { /* a buffer even for "": pl_at adds to it */
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->len + n) cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) { p->oom = 1; return; }
        p->buf = b;
        p->cap = cap;
    }
    if (p->cnt == p->ncap) {
        size_t cap = p->ncap ? 2 * p->ncap : 16;
        size_t *o = realloc(p->off, cap * sizeof *o);
        if (o) p->off = o;
        size_t *l = realloc(p->n, cap * sizeof *l);
        if (l) p->n = l;
        uint8_t *f = realloc(p->flag, cap);
        if (f) p->flag = f;
        if (!o || !l || !f) { p->oom = 1; return; }
        p->ncap = cap;
    }
    if (n) memcpy(p->buf + p->len, s, n);
    p->off[p->cnt] = p->len;
    p->n[p->cnt] = n;
    p->flag[p->cnt++] = flag;
    p->len += n;
}

/* Appends to the last piece (there must be one; it ends the buffer). */
static void pl_append(plist *p, const char *s, size_t n)
{
    if (p->oom || !p->cnt) return;
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->len + n) cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) { p->oom = 1; return; }
        p->buf = b;
        p->cap = cap;
    }
    if (n) memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->n[p->cnt - 1] += n;
}

static void pl_clear(plist *p)
{
    p->len = 0;
    p->cnt = 0;
}

static void pl_free(plist *p)
{
    free(p->buf);
    free(p->off);
    free(p->n);
    free(p->flag);
}

static inline const char *pl_at(const plist *p, size_t i) { return p->buf + p->off[i]; }

static int oom(void) { return err_set(ERR_NOMEM, "out of memory in the tokenizer"); }

/* JavaScript's WhiteSpace and LineTerminator (trim, \s). */
static int js_space(uint32_t c)
{
    return c == 9 || c == 10 || c == 11 || c == 12 || c == 13 || c == 32 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000 || c == 0xFEFF;
}

static size_t trim_start(const char *s, size_t n)
{
    size_t i = 0, len;
    while (i < n && js_space(tok_utf8_next(s + i, n - i, &len))) i += len;
    return i;
}

static size_t trim_end(const char *s, size_t n)
{
    while (n > 0) {
        size_t b = n - 1, len;
        while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
        if (!js_space(tok_utf8_next(s + b, n - b, &len))) break;
        n = b;
    }
    return n;
}

/* The next match of re in s[0..n) at or after *pos, stepping as
 * JavaScript's global matchAll does: 1 with the match [*ms, *me) (and
 * the match data in md), 0 when there is none, or an error code. */
static int js_match(const pcre2_code *re, pcre2_match_data *md, const char *s,
                    size_t n, size_t *pos, size_t *ms, size_t *me)
{
    if (*pos > n) return 0;
    int r = pcre2_match(re, (PCRE2_SPTR)s, n, *pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (r == PCRE2_ERROR_NOMATCH) return 0;
    if (r < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(r, msg, sizeof msg);
        return err_set(ERR_INVALID, "cannot match a tokenizer pattern: %s", (char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (ov[1] < ov[0] || ov[1] > n)
        return err_set(ERR_INVALID, "a tokenizer pattern matched backwards");
    *ms = ov[0];
    *me = ov[1];
    if (*me == *ms) {
        size_t len = 1;
        if (*me < n) tok_utf8_next(s + *me, n - *me, &len);
        *pos = *me + len;
    } else {
        *pos = *me;
    }
    return 1;
}

/* JavaScript's s.replaceAll(re, content) (content taken literally),
 * pushed as one piece with `flag`. */
static int js_replace(const pcre2_code *re, pcre2_match_data *md, const char *s,
                      size_t n, const char *content, size_t cn, plist *out,
                      uint8_t flag)
{
    size_t pos = 0, prev = 0, ms, me;
    int r;
    pl_push(out, "", 0, flag);
    while ((r = js_match(re, md, s, n, &pos, &ms, &me)) == 1) {
        pl_append(out, s + prev, ms - prev);
        pl_append(out, content, cn);
        prev = me;
    }
    if (r < 0) return r;
    pl_append(out, s + prev, n - prev);
    return out->oom ? oom() : 0;
}

/* ---- encode ---- */

/* The byte of alphabet char cp, or -1: bytes_to_unicode inverted. */
static int char_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    int k = (int)cp - 256; /* the k-th byte outside the kept ranges */
    if (k < 33) return k;                     /* 0x00..0x20 */
    if (k < 33 + 34) return 127 + (k - 33);   /* 0x7F..0xA0 */
    return 173;                               /* 0xAD */
}

/* Pushes bytes s[0..n) as one piece of alphabet chars. */
static void push_bytelevel(const hf_tok *hf, plist *out, const char *s, size_t n)
{
    pl_push(out, "", 0, 0);
    for (size_t j = 0; j < n; j++) {
        unsigned char c = (unsigned char)s[j];
        pl_append(out, hf->b2u[c], hf->b2u_n[c]);
    }
}

/* Work space of one encode call. */
typedef struct {
    const tokenizer *t;
    pcre2_match_data *md;
    plist a, b;          /* pre-tokenizer pieces, in and out */
    int *iw;             /* BPE: 4 ints a symbol */
    tok_cand *h;         /* BPE: 3 cands a symbol */
    size_t wcap;
    int *ids;
    size_t n, cap;
} enc;

static int ids_push(enc *e, int id)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        int *v = realloc(e->ids, cap * sizeof *v);
        if (!v) return oom();
        e->ids = v;
        e->cap = cap;
    }
    e->ids[e->n++] = id;
    return 0;
}

static int real_id(const hf_tok *hf, int id)
{
    return id >= 0 && (size_t)id < hf->n_vocab && hf->kind[id] != ID_NONE;
}

/* What a symbol outside the vocabulary (the string s) becomes. */
static int unknown(enc *e, const char *s, size_t n)
{
    const hf_tok *hf = e->t->hf;
    if (hf->byte_fallback) {
        int all = 1;
        for (size_t i = 0; i < n; i++) all &= hf->fb_id[(unsigned char)s[i]] >= 0;
        if (all) {
            for (size_t i = 0; i < n; i++) {
                int rc = ids_push(e, hf->fb_id[(unsigned char)s[i]]);
                if (rc) return rc;
            }
            return 0;
        }
    }
    if (hf->unk_id < 0)
        return err_set(ERR_INVALID, "'%s': text holds '%.*s', which is not in the "
                       "vocabulary, and the model has no unk_token", hf->path,
                       (int)(n > 40 ? 40 : n), s);
    return ids_push(e, hf->unk_id);
}

/* BPE of one piece (the model's encode of one pre-token). */
static int model_piece(enc *e, const char *s, size_t n)
{
    const tokenizer *t = e->t;
    const hf_tok *hf = t->hf;
    if (hf->ignore_merges) {
        int id = hf_lookup(hf, s, n);
        if (real_id(hf, id)) return ids_push(e, id);
    }
    if (!n) return 0;
    if (n > e->wcap) {
        size_t cap = n > 2 * e->wcap ? n : 2 * e->wcap;
        free(e->iw);
        free(e->h);
        e->iw = malloc(4 * cap * sizeof *e->iw);
        e->h = malloc(3 * cap * sizeof *e->h);
        e->wcap = e->iw && e->h ? cap : 0;
        if (!e->wcap) return oom();
    }
    /* symbols: the id of each character, -(1 + its offset) when unknown */
    int m = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t cp = tok_utf8_next(s + i, n - i, &len);
        int id = cp < 0x800 ? hf->cp_id[cp] : hf_lookup(hf, s + i, len);
        e->iw[m++] = id >= 0 ? id : -(int)(1 + i);
        i += len;
    }
    int *out = e->iw + 4 * (size_t)m - m; /* the `done` quarter, free after */
    size_t k = m > 1 ? tok_bpe(t, m, 1, out, e->iw, e->h) : (out[0] = e->iw[0], 1);
    for (size_t j = 0; j < k; j++) {
        int id = out[j], rc;
        if (real_id(hf, id)) {
            rc = ids_push(e, id);
        } else if (id >= 0) { /* a virtual id: a merge-only string */
            size_t sn;
            const char *ss = hf_str(hf, id, &sn);
            rc = unknown(e, ss, sn);
        } else {
            size_t off = (size_t)(-id - 1), len;
            tok_utf8_next(s + off, n - off, &len);
            rc = unknown(e, s + off, len);
        }
        if (rc) return rc;
    }
    return 0;
}

/* One pre-tokenizer step on e->a into e->b (then swapped). */
static int pre_step(enc *e, const hf_step *st, size_t section)
{
    plist *in = &e->a, *out = &e->b;
    pl_clear(out);
    for (size_t i = 0; i < in->cnt; i++) {
        const char *s = pl_at(in, i);
        size_t n = in->n[i], pos = 0, prev = 0, ms, me;
        int r;
        switch (st->kind) {
        case PRE_BYTELEVEL: {
            const char *p = s;
            size_t pn = n;
            char *tmp = NULL;
            if (st->flag && !(n && s[0] == ' ')) {
                tmp = malloc(n + 1);
                if (!tmp) return oom();
                tmp[0] = ' ';
                memcpy(tmp + 1, s, n);
                p = tmp;
                pn = n + 1;
            }
            if (st->re) {
                while ((r = js_match(st->re, e->md, p, pn, &pos, &ms, &me)) == 1)
                    push_bytelevel(e->t->hf, out, p + ms, me - ms);
                if (r < 0) { free(tmp); return r; }
            } else {
                push_bytelevel(e->t->hf, out, p, pn);
            }
            free(tmp);
            break;
        }
        case PRE_MATCH:
            while ((r = js_match(st->re, e->md, s, n, &pos, &ms, &me)) == 1)
                pl_push(out, s + ms, me - ms, 0);
            if (r < 0) return r;
            break;
        case PRE_SPLIT:
            if (st->mode == SPLIT_ISOLATED) { /* the reference's regexSplit */
                while ((r = js_match(st->re, e->md, s, n, &pos, &ms, &me)) == 1) {
                    if (ms > prev) pl_push(out, s + prev, ms - prev, 0);
                    if (me > ms) pl_push(out, s + ms, me - ms, 0);
                    prev = me;
                }
                if (r < 0) return r;
                if (prev < n) pl_push(out, s + prev, n - prev, 0);
            } else { /* split(re).filter(x => x): captures kept */
                while ((r = js_match(st->re, e->md, s, n, &pos, &ms, &me)) == 1) {
                    if (ms >= n) break;
                    if (me == prev && ms == me) continue;
                    if (ms > prev) pl_push(out, s + prev, ms - prev, 0);
                    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
                    uint32_t groups = pcre2_get_ovector_count(e->md);
                    int top = 0;
                    pcre2_pattern_info(st->re, PCRE2_INFO_CAPTURECOUNT, &top);
                    for (uint32_t g = 1; g <= (uint32_t)top && g < groups; g++)
                        if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] > ov[2 * g])
                            pl_push(out, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g], 0);
                    prev = me;
                }
                if (r < 0) return r;
                if (prev < n) pl_push(out, s + prev, n - prev, 0);
            }
            break;
        case PRE_METASPACE: {
            /* spaces -> replacement, the replacement prepended, then split
             * before each replacement (Rust's MergedWithNext) */
            plist one = {0};
            pl_push(&one, "", 0, 0);
            for (size_t j = 0; j < n; j++) {
                if (s[j] == ' ') pl_append(&one, st->s, st->sn);
                else pl_append(&one, s + j, 1);
            }
            if (one.oom) { pl_free(&one); return oom(); }
            const char *q = pl_at(&one, 0);
            size_t qn = one.n[0];
            int prepend = st->mode == PREPEND_ALWAYS ||
                          (st->mode == PREPEND_FIRST && section == 0);
            pl_push(out, "", 0, 0);
            if (prepend && !(qn >= st->sn && !memcmp(q, st->s, st->sn)))
                pl_append(out, st->s, st->sn);
            for (size_t j = 0; j < qn;) {
                if (st->flag && qn - j >= st->sn && !memcmp(q + j, st->s, st->sn) &&
                    out->n[out->cnt - 1] > 0)
                    pl_push(out, "", 0, 0);
                size_t len;
                tok_utf8_next(q + j, qn - j, &len);
                pl_append(out, q + j, len);
                j += len;
            }
            pl_free(&one);
            break;
        }
        default:
            break;
        }
        if (out->oom) return oom();
    }
    plist tmp = *in;
    *in = *out;
    *out = tmp;
    return 0;
}

/* Normalizers, pre-tokenizers and the model on one section of text. */
static int encode_section(enc *e, const char *s, size_t n, size_t section)
{
    const hf_tok *hf = e->t->hf;
    char *cur = NULL;
    size_t cn = n;
    int rc = 0;
    const char *p = s;
    for (size_t i = 0; i < hf->n_norm; i++) {
        const hf_step *st = &hf->norm[i];
        char *next = NULL;
        size_t nn = 0;
        if (st->kind == NORM_PREPEND) {
            next = malloc(st->sn + cn + 1);
            if (!next) { rc = oom(); break; }
            memcpy(next, st->s, st->sn);
            memcpy(next + st->sn, p, cn);
            nn = st->sn + cn;
        } else if (st->kind == NORM_NFC) {
            if ((rc = tok_nfc(p, cn, &next, &nn))) break;
        } else {
            plist o = {0};
            rc = js_replace(st->re, e->md, p, cn, st->s, st->sn, &o, 0);
            if (!rc) {
                next = malloc(o.n[0] + 1);
                if (!next) rc = oom();
                else memcpy(next, pl_at(&o, 0), nn = o.n[0]);
            }
            pl_free(&o);
            if (rc) break;
        }
        free(cur);
        cur = next;
        p = cur;
        cn = nn;
    }
    if (rc || cn == 0) {
        free(cur);
        return rc;
    }
    pl_clear(&e->a);
    pl_push(&e->a, p, cn, 0);
    for (size_t i = 0; i < hf->n_pre && !rc; i++) rc = pre_step(e, &hf->pre[i], section);
    free(cur);
    if (!rc && e->a.oom) rc = oom();
    size_t start = e->n;
    for (size_t i = 0; i < e->a.cnt && !rc; i++)
        rc = model_piece(e, pl_at(&e->a, i), e->a.n[i]);
    if (!rc && hf->fuse_unk && hf->unk_id >= 0) {
        size_t w = start;
        for (size_t i = start; i < e->n; i++)
            if (!(e->ids[i] == hf->unk_id && w > start && e->ids[w - 1] == hf->unk_id))
                e->ids[w++] = e->ids[i];
        e->n = w;
    }
    return rc;
}

typedef struct {
    size_t off, n;
} slice;

int hf_encode(const tokenizer *t, const char *text, size_t len, unsigned flags,
              int **ids, size_t *n)
{
    const hf_tok *hf = t->hf;
    if (len > (size_t)INT_MAX / 4)
        return err_set(ERR_INVALID, "text of %zu bytes is too long to encode", len);
    size_t bad = tok_utf8_check(text, len);
    if (bad < len) return err_set(ERR_FORMAT, "invalid UTF-8 at byte %zu", bad);
    enc e = {.t = t};
    int rc = 0;
    slice *sec = NULL;
    size_t ns = 0, scap = 0;
    e.md = pcre2_match_data_create(32, NULL);
    if (!e.md) { rc = oom(); goto out; }
    /* sections: text between added tokens, and the tokens */
    for (size_t i = 0, start = 0;;) {
        size_t best = 0;
        if (i < len) {
            unsigned char b = (unsigned char)text[i];
            for (size_t k = hf->added_at[b]; k < hf->added_at[b + 1]; k++) {
                const hf_added *a = &hf->added[k];
                if (a->n <= len - i && !memcmp(text + i, a->s, a->n)) {
                    best = a->n; /* longest first */
                    break;
                }
            }
        }
        if (ns + 2 > scap) {
            scap = scap ? 2 * scap : 16;
            slice *v = realloc(sec, scap * sizeof *v);
            if (!v) { rc = oom(); goto out; }
            sec = v;
        }
        if (i >= len || best) {
            if (i > start) sec[ns++] = (slice){start, i - start};
            if (i >= len) break;
            sec[ns++] = (slice){i, best};
            i += best;
            start = i;
        } else {
            i++;
        }
    }
    /* lstrip / rstrip of added tokens trim their neighbours */
    for (size_t i = 0; i < ns; i++) {
        int id = hf_lookup(hf, text + sec[i].off, sec[i].n);
        if (id < 0 || hf->kind[id] != ID_ADDED) continue;
        if ((hf->special[id] & HF_LSTRIP) && i > 0)
            sec[i - 1].n = trim_end(text + sec[i - 1].off, sec[i - 1].n);
        if ((hf->special[id] & HF_RSTRIP) && i + 1 < ns) {
            size_t k = trim_start(text + sec[i + 1].off, sec[i + 1].n);
            sec[i + 1].off += k;
            sec[i + 1].n -= k;
        }
    }
    if ((flags & TOKENIZER_ADD_SPECIAL))
        for (size_t k = 0; k < hf->n_tmpl && hf->tmpl[k] >= 0 && !rc; k++)
            rc = ids_push(&e, hf->tmpl[k]);
    for (size_t i = 0; i < ns && !rc; i++) {
        if (!sec[i].n) continue;
        int id = hf_lookup(hf, text + sec[i].off, sec[i].n);
        if (id >= 0 && hf->kind[id] == ID_ADDED) rc = ids_push(&e, id);
        else rc = encode_section(&e, text + sec[i].off, sec[i].n, i);
    }
    if ((flags & TOKENIZER_ADD_SPECIAL) && !rc) {
        size_t k = 0;
        while (k < hf->n_tmpl && hf->tmpl[k] >= 0) k++;
        for (k++; k < hf->n_tmpl && !rc; k++) rc = ids_push(&e, hf->tmpl[k]);
    }
    if (rc) goto out;
    if (!e.ids && !(e.ids = malloc(sizeof *e.ids))) { rc = oom(); goto out; }
    *ids = e.ids;
    *n = e.n;
    e.ids = NULL;
out:
    free(sec);
    free(e.ids);
    free(e.iw);
    free(e.h);
    pl_free(&e.a);
    pl_free(&e.b);
    pcre2_match_data_free(e.md);
    return rc;
}

/* ---- decode ---- */

/* JavaScript's parseInt(two chars, 16), or -1 for NaN. */
static int js_parse_hex2(const char *s)
{
    int i = 0, sign = 1, v = 0, digits = 0;
    while (i < 2 && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                     s[i] == '\v' || s[i] == '\f'))
        i++;
    if (i < 2 && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
    for (; i < 2; i++) {
        int h = s[i] >= '0' && s[i] <= '9' ? s[i] - '0'
              : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
              : s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 : -1;
        if (h < 0) break;
        v = v * 16 + h;
        digits++;
    }
    if (!digits) return -1;
    return (sign * v) & 0xFF; /* Uint8Array.from wraps */
}

int hf_run_decoders(const hf_tok *hf, const char *const *tok, const size_t *tlen,
                    const uint8_t *added, size_t n, int single, char **text,
                    size_t *len)
{
    plist a = {0}, b = {0};
    pcre2_match_data *md = NULL;
    int rc = 0;
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) pl_push(&a, tok[i], tlen[i], added[i]);
    if (!hf->has_decoder) { /* the reference joins the tokens with spaces */
        pl_push(&b, "", 0, 0);
        for (size_t i = 0; i < a.cnt; i++) {
            if (i) pl_append(&b, " ", 1);
            pl_append(&b, pl_at(&a, i), a.n[i]);
        }
        plist x = a;
        a = b;
        b = x;
    }
    for (size_t d = 0; d < hf->n_dec && !rc && !a.oom; d++) {
        const hf_step *st = &hf->dec[d];
        pl_clear(&b);
        switch (st->kind) {
        case DEC_BYTELEVEL: {
            int open = 0; /* a run of byte-level tokens is being decoded */
            for (size_t i = 0; i < a.cnt; i++) {
                if (a.flag[i]) {
                    pl_push(&b, pl_at(&a, i), a.n[i], 1);
                    open = 0;
                    continue;
                }
                if (!open) pl_push(&b, "", 0, 0);
                open = 1;
                const char *s = pl_at(&a, i);
                for (size_t j = 0; j < a.n[i];) {
                    size_t cl;
                    uint32_t cp = tok_utf8_next(s + j, a.n[i] - j, &cl);
                    int by = char_byte(cp);
                    if (by >= 0) {
                        char c = (char)by;
                        pl_append(&b, &c, 1);
                    } else {
                        pl_append(&b, s + j, cl);
                    }
                    j += cl;
                }
            }
            break;
        }
        case DEC_REPLACE:
            if (!md && !(md = pcre2_match_data_create(32, NULL))) { rc = oom(); break; }
            for (size_t i = 0; i < a.cnt && !rc; i++)
                rc = js_replace(st->re, md, pl_at(&a, i), a.n[i], st->s, st->sn, &b,
                                a.flag[i]);
            break;
        case DEC_BYTEFALLBACK: {
            int open = 0;
            for (size_t i = 0; i < a.cnt; i++) {
                const char *s = pl_at(&a, i);
                int v = -1;
                if (a.n[i] == 6 && !memcmp(s, "<0x", 3) && s[5] == '>')
                    v = js_parse_hex2(s + 3);
                if (v >= 0) {
                    char c = (char)v;
                    if (!open) pl_push(&b, "", 0, 0);
                    open = 1;
                    pl_append(&b, &c, 1);
                } else {
                    pl_push(&b, s, a.n[i], a.flag[i]);
                    open = 0;
                }
            }
            break;
        }
        case DEC_FUSE:
            pl_push(&b, "", 0, 0);
            for (size_t i = 0; i < a.cnt; i++) pl_append(&b, pl_at(&a, i), a.n[i]);
            break;
        case DEC_STRIP:
            for (size_t i = 0; i < a.cnt; i++) {
                const char *s = pl_at(&a, i);
                size_t lo = 0, hi = a.n[i], cl;
                if (!single) {
                    for (int k = 0; k < st->start && lo < hi; k++) {
                        if (tok_utf8_next(s + lo, hi - lo, &cl) != st->cp) break;
                        lo += cl;
                    }
                    for (int k = 0; k < st->stop && hi > lo; k++) {
                        size_t p = hi - 1;
                        while (p > lo && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
                        if (tok_utf8_next(s + p, hi - p, &cl) != st->cp) break;
                        hi = p;
                    }
                }
                pl_push(&b, s + lo, hi - lo, a.flag[i]);
            }
            break;
        case DEC_METASPACE:
            for (size_t i = 0; i < a.cnt; i++) {
                const char *s = pl_at(&a, i);
                size_t m = a.n[i];
                pl_push(&b, "", 0, a.flag[i]);
                for (size_t j = 0; j < m;) {
                    if (m - j >= st->sn && !memcmp(s + j, st->s, st->sn)) {
                        pl_append(&b, " ", 1);
                        j += st->sn;
                    } else {
                        pl_append(&b, s + j, 1);
                        j++;
                    }
                }
                if (i == 0 && !single && st->mode != PREPEND_NEVER && !b.oom &&
                    b.n[0] && b.buf[b.off[0]] == ' ') {
                    b.off[0]++;
                    b.n[0]--;
                }
            }
            break;
        default:
            break;
        }
        plist x = a;
        a = b;
        b = x;
        if (b.oom) a.oom = 1;
    }
    if (!rc && a.oom) rc = oom();
    if (!rc) {
        size_t total = 0;
        for (size_t i = 0; i < a.cnt; i++) total += a.n[i];
        char *o = malloc(total + 1);
        if (!o) {
            rc = oom();
        } else {
            size_t k = 0;
            for (size_t i = 0; i < a.cnt; i++) {
                memcpy(o + k, pl_at(&a, i), a.n[i]);
                k += a.n[i];
            }
            o[k] = '\0';
            *text = o;
            *len = k;
        }
    }
    pcre2_match_data_free(md);
    pl_free(&a);
    pl_free(&b);
    return rc;
}

int hf_decode(const tokenizer *t, const int *ids, size_t n, unsigned flags,
              char **text, size_t *len)
{
    const hf_tok *hf = t->hf;
    const char **tok = malloc((n ? n : 1) * sizeof *tok);
    size_t *tl = malloc((n ? n : 1) * sizeof *tl);
    uint8_t *added = malloc(n ? n : 1);
    size_t k = 0;
    int rc = 0;
    if (!tok || !tl || !added) {
        rc = oom();
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!real_id(hf, ids[i])) {
            rc = err_set(ERR_INVALID, "unknown token id %d at position %zu "
                         "(vocabulary has %zu)", ids[i], i, t->n_vocab);
            goto out;
        }
        tok[k] = hf_str(hf, ids[i], &tl[k]);
        /* the reference compares strings: the id its string maps to */
        int as = hf_lookup(hf, tok[k], tl[k]);
        int sp = (hf->special[ids[i]] & HF_SPECIAL) ||
                 (as >= 0 && (hf->special[as] & HF_SPECIAL));
        if ((flags & TOKENIZER_SKIP_SPECIAL) && sp) continue;
        added[k] = hf->kind[ids[i]] == ID_ADDED || (as >= 0 && hf->kind[as] == ID_ADDED);
        k++;
    }
    rc = hf_run_decoders(hf, tok, tl, added, k, 0, text, len);
out:
    free(tok);
    free(tl);
    free(added);
    return rc;
}

int hf_is_special(const tokenizer *t, int id)
{
    const hf_tok *hf = t->hf;
    return real_id(hf, id) && (hf->special[id] & HF_SPECIAL);
}

int hf_bos_id(const tokenizer *t) { return t->hf->bos_id; }
