/* tokenizer_nfc: UTF-8 helpers and Unicode NFC for the tokenizer.json
 * normalizer "NFC" (Qwen's files use it).
 *
 * NFC = canonical decomposition (the table's full decompositions and the
 * Hangul syllable arithmetic), canonical ordering (a stable sort of each
 * run of non-starters by combining class), then canonical composition
 * (each character joins the last starter when it is not blocked and the
 * pair is a primary composite), as in UAX #15. The data is Unicode 14.0
 * (tokenizer_nfc_table.h, generated from Python's unicodedata); the
 * reference (JavaScript's String.prototype.normalize in Node 20) may know
 * a later Unicode, which only matters for characters added since.
 * Text whose code points are all below U+0300 is NFC already and is
 * copied as is. */
#include "base/errors.h"
#include "model/tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#include "model/tokenizer_nfc_table.h"

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT,
       S_COUNT = L_COUNT * N_COUNT };

size_t tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_check(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (i + len > n) return i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

static int ccc_of(uint32_t cp)
{
    if (cp < 0x300) return 0;
    size_t lo = 0, hi = sizeof nfc_ccc / sizeof *nfc_ccc;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_ccc[mid].first) hi = mid;
        else if (cp > nfc_ccc[mid].last) lo = mid + 1;
        else return nfc_ccc[mid].ccc;
    }
    return 0;
}

/* Appends the full canonical decomposition of cp to d (room for 18). */
static size_t decompose(uint32_t cp, uint32_t *d)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE, t = s % T_COUNT;
        d[0] = L_BASE + s / N_COUNT;
        d[1] = V_BASE + s % N_COUNT / T_COUNT;
        if (!t) return 2;
        d[2] = T_BASE + t;
        return 3;
    }
    if (cp >= 0xC0) {
        size_t lo = 0, hi = sizeof nfc_decomp / sizeof *nfc_decomp;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cp < nfc_decomp[mid].cp) hi = mid;
            else if (cp > nfc_decomp[mid].cp) lo = mid + 1;
            else {
                memcpy(d, nfc_decomp_pool + nfc_decomp[mid].off,
                       nfc_decomp[mid].len * sizeof *d);
                return nfc_decomp[mid].len;
            }
        }
    }
    d[0] = cp;
    return 1;
}

/* The primary composite of a and b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 &&
        b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    uint64_t key = (uint64_t)a << 21 | b;
    size_t lo = 0, hi = sizeof nfc_comp / sizeof *nfc_comp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (key < nfc_comp[mid].pair) hi = mid;
        else if (key > nfc_comp[mid].pair) lo = mid + 1;
        else return nfc_comp[mid].cp;
    }
    return 0;
}

int tok_nfc(const char *s, size_t n, char **out, size_t *outn)
{
    *out = NULL;
    *outn = 0;
    int simple = 1;
    for (size_t i = 0; i < n && simple; i++)
        simple = (unsigned char)s[i] < 0xCC; /* lead bytes of U+0300.. */
    if (simple) {
        char *c = malloc(n ? n : 1);
        if (!c) return err_set(ERR_NOMEM, "out of memory normalizing %zu bytes", n);
        memcpy(c, s, n);
        *out = c;
        *outn = n;
        return 0;
    }
    /* a code point decomposes into at most 18 (U+FDFA is the longest
     * compatibility one; canonical ones are at most 4) */
    size_t cap = 4 * n + 18;
    uint32_t *cp = malloc(cap * sizeof *cp);
    uint8_t *cc = malloc(cap);
    char *o = malloc(4 * cap);
    if (!cp || !cc || !o) {
        free(cp);
        free(cc);
        free(o);
        return err_set(ERR_NOMEM, "out of memory normalizing %zu bytes", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t c = tok_utf8_next(s + i, n - i, &len);
        i += len;
        size_t k = decompose(c, cp + m);
        for (size_t j = 0; j < k; j++) cc[m + j] = (uint8_t)ccc_of(cp[m + j]);
        m += k;
    }
    /* canonical ordering: insertion sort within runs of non-starters */
    for (size_t i = 1; i < m; i++) {
        if (!cc[i]) continue;
        size_t j = i;
        uint32_t c = cp[i];
        uint8_t k = cc[i];
        while (j > 0 && cc[j - 1] > k) {
            cp[j] = cp[j - 1];
            cc[j] = cc[j - 1];
            j--;
        }
        cp[j] = c;
        cc[j] = k;
    }
    /* composition; w is the write index, st the last starter's */
    size_t w = 0;
    long st = -1;
    int last_cc = -1; /* class of the last character kept after st */
    for (size_t i = 0; i < m; i++) {
        uint32_t c = cp[i];
        int k = cc[i];
        if (st >= 0 && (last_cc < k || (last_cc == -1 && k == 0))) {
            /* not blocked: nothing between, or all between have a lower
             * class (and are not starters) */
            uint32_t p = compose(cp[st], c);
            if (p && (last_cc == -1 || k != 0)) {
                cp[st] = p;
                continue;
            }
        }
        if (k == 0) {
            st = (long)w;
            last_cc = -1;
        } else {
            last_cc = k;
        }
        cp[w] = c;
        cc[w] = (uint8_t)k;
        w++;
    }
    size_t on = 0;
    for (size_t i = 0; i < w; i++) on += tok_utf8_put(cp[i], o + on);
    free(cp);
    free(cc);
    *out = o;
    *outn = on;
    return 0;
}
