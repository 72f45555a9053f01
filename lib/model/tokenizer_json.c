/* tokenizer_json: loads a Hugging Face tokenizer.json into a tokenizer
 * (see tokenizer.h); tokenizer_hf.c runs what this builds.
 *
 * Supported, with the semantics of transformers.js's tokenizers (the npm
 * package @lenml/tokenizers, the reference the tests compare with):
 *   model          BPE: vocab, merges as "a b" strings or [a, b] pairs,
 *                  unk_token, byte_fallback, fuse_unk, ignore_merges
 *                  (dropout is ignored, as the reference does)
 *   added_tokens   special or not, lstrip and rstrip; matched in the raw
 *                  text, longest first, before anything else runs
 *                  (single_word and normalized are ignored, as the
 *                  reference does)
 *   normalizer     Prepend, Replace, NFC, Sequence
 *   pre_tokenizer  ByteLevel (add_prefix_space, use_regex), Split
 *                  (String or Regex pattern, invert; behavior Removed,
 *                  every other behavior works as Isolated, as in the
 *                  reference), Metaspace (replacement, prepend_scheme,
 *                  split), Digits, Sequence
 *   post_processor TemplateProcessing (its single template),
 *                  BertProcessing, RobertaProcessing, ByteLevel, Sequence
 *   decoder        ByteLevel, Replace, ByteFallback, Fuse, Strip,
 *                  Metaspace, Sequence
 * Anything else (WordPiece, Unigram or WordLevel models, a normalizer
 * such as NFKC or Lowercase, a pre-tokenizer such as Whitespace, ...)
 * is ERR_FORMAT naming the file and the type.
 *
 * Metaspace follows the Rust library where the reference differs: it
 * prepends the replacement unless prepend_scheme is "never" (or the old
 * add_prefix_space is false), and splits when "split" is true. None of
 * the files the tests use has a Metaspace step.
 *
 * Regexes are JavaScript's (the reference runs them with the u flag),
 * after the reference's own rewrites of patterns JavaScript rejects; they
 * are translated for PCRE2 (UTF mode, no UCP, so \d \w \b stay ASCII as
 * in JavaScript): \s becomes JavaScript's White_Space set, '.' stops only
 * at line terminators, \u{...} becomes \x{...}.
 *
 * Strings that only merges name (a part or result that is not in the
 * vocabulary) get virtual ids past the real ones, so BPE runs on ids
 * exactly as the reference runs on strings. Loading checks ids (integer,
 * at most twice the entries plus 1,024), types and shapes; a bad file is
 * ERR_FORMAT with the file, never a crash. */
#include "base/errors.h"
#include "model/tokenizer_impl.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* JavaScript's \s: WhiteSpace and LineTerminator, as a class body. */
#define JS_WS "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
              "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}"

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_str(buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* Loading state. */
typedef struct {
    const char *path;
    hf_tok *hf;
    tokenizer *t;
    buf pool;
    size_t ids_cap;
} loader;

static int fail(const loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(const loader *L, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(ERR_FORMAT, "'%s': %s", L->path, msg);
}

static int nomem(const loader *L)
{
    return err_set(ERR_NOMEM, "'%s': out of memory", L->path);
}

/* ---- the string -> id map ---- */

int hf_lookup(const hf_tok *hf, const char *s, size_t n)
{
    size_t mask = hf->map_cap - 1;
    for (size_t h = XXH3_64bits(s, n) & mask;; h = (h + 1) & mask) {
        const hf_map_slot *m = &hf->map[h];
        if (m->id < 0) return -1;
        if (m->len == n && !memcmp(hf->pool + m->off, s, n)) return m->id;
    }
}

/* Maps the string at pool offset off (n bytes) to id, replacing an
 * earlier id for the same string (JavaScript's Map.set). */
static void map_put(hf_tok *hf, size_t off, size_t n, int id)
{
    size_t mask = hf->map_cap - 1;
    const char *s = hf->pool + off;
    for (size_t h = XXH3_64bits(s, n) & mask;; h = (h + 1) & mask) {
        hf_map_slot *m = &hf->map[h];
        if (m->id < 0) {
            *m = (hf_map_slot){id, (uint32_t)n, (uint32_t)off};
            return;
        }
        if (m->len == n && !memcmp(hf->pool + m->off, s, n)) {
            m->id = id;
            return;
        }
    }
}

/* Appends s to the pool; returns its offset or SIZE_MAX when out of memory
 * (or past the 4 GiB the map's offsets hold). */
static size_t pool_add(loader *L, const char *s, size_t n)
{
    size_t off = L->pool.n;
    if (n >= UINT32_MAX - off) L->pool.oom = 1;
    buf_add(&L->pool, s, n);
    hf_tok *hf = L->hf;
    hf->pool = L->pool.p;
    return L->pool.oom ? SIZE_MAX : off;
}

/* Gives id the string at off; grows the id arrays for virtual ids. */
static int set_id(loader *L, int id, size_t off, size_t n, int kind)
{
    hf_tok *hf = L->hf;
    if ((size_t)id >= L->ids_cap) {
        size_t cap = L->ids_cap * 2 + 16;
        while (cap <= (size_t)id) cap *= 2;
        size_t *o = realloc(hf->str_off, cap * sizeof *o);
        if (o) hf->str_off = o;
        uint32_t *l = realloc(hf->str_len, cap * sizeof *l);
        if (l) hf->str_len = l;
        uint8_t *k = realloc(hf->kind, cap);
        if (k) hf->kind = k;
        uint8_t *sp = realloc(hf->special, cap);
        if (sp) hf->special = sp;
        if (!o || !l || !k || !sp) return nomem(L);
        memset(hf->kind + L->ids_cap, ID_NONE, cap - L->ids_cap);
        memset(hf->str_off + L->ids_cap, 0, (cap - L->ids_cap) * sizeof *o);
        memset(hf->str_len + L->ids_cap, 0, (cap - L->ids_cap) * sizeof *l);
        memset(hf->special + L->ids_cap, 0, cap - L->ids_cap);
        L->ids_cap = cap;
    }
    hf->str_off[id] = off;
    hf->str_len[id] = (uint32_t)n;
    hf->kind[id] = (uint8_t)kind;
    return 0;
}

/* The id of string s, a new virtual id when there is none. */
static int id_or_virtual(loader *L, const char *s, size_t n, int *id)
{
    hf_tok *hf = L->hf;
    *id = hf_lookup(hf, s, n);
    if (*id >= 0) return 0;
    if (hf->n_all >= (size_t)INT_MAX / 2) return fail(L, "too many merge strings");
    size_t off = pool_add(L, s, n);
    if (off == SIZE_MAX) return nomem(L);
    *id = (int)hf->n_all++;
    int rc = set_id(L, *id, off, n, ID_VIRTUAL);
    if (rc) return rc;
    map_put(hf, off, n, *id);
    return 0;
}

/* ---- JSON helpers ---- */

static const char *type_of(const json_t *o)
{
    const char *s = json_string_value(json_object_get(o, "type"));
    return s ? s : "";
}

/* A boolean member; `def` when absent or null. */
static int get_bool(const loader *L, const json_t *o, const char *key,
                    int def, int *v, const char *what)
{
    json_t *x = json_object_get(o, key);
    if (!x || json_is_null(x)) { *v = def; return 0; }
    if (!json_is_boolean(x)) return fail(L, "%s: '%s' is not a boolean", what, key);
    *v = json_is_true(x);
    return 0;
}

/* A string member (NULL when absent or null). */
static int get_str(const loader *L, const json_t *o, const char *key,
                   int required, const char **s, size_t *n, const char *what)
{
    json_t *x = json_object_get(o, key);
    *s = NULL;
    *n = 0;
    if (!x || json_is_null(x)) {
        if (required) return fail(L, "%s: no '%s'", what, key);
        return 0;
    }
    if (!json_is_string(x)) return fail(L, "%s: '%s' is not a string", what, key);
    *s = json_string_value(x);
    *n = json_string_length(x);
    return 0;
}

/* ---- JavaScript regexes for PCRE2 ---- */

/* Replaces every `from` in b with `to`. */
static void buf_replace(buf *b, const char *from, const char *to)
{
    size_t fn = strlen(from);
    buf o = {0};
    for (size_t i = 0; i < b->n;) {
        if (i + fn <= b->n && !memcmp(b->p + i, from, fn)) {
            buf_str(&o, to);
            i += fn;
        } else {
            buf_add(&o, b->p + i, 1);
            i++;
        }
    }
    if (o.oom || !o.p) { free(o.p); b->oom |= o.oom; return; }
    free(b->p);
    *b = o;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads \uXXXX at s[i] (i at the backslash); returns the code unit or -1. */
static long js_u4(const char *s, size_t n, size_t i)
{
    if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u') return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hexval((unsigned char)s[i + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Translates the JavaScript regex src (u flag) into PCRE2 syntax in out;
 * returns NULL or what cannot be translated. */
static const char *js_to_pcre2(const char *src, size_t n, buf *out)
{
    int in_class = 0;
    char tmp[32];
    for (size_t i = 0; i < n;) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            char d = src[i + 1];
            if (d == 's') {
                buf_str(out, in_class ? JS_WS : "[" JS_WS "]");
                i += 2;
            } else if (d == 'S') {
                if (in_class) return "\\S inside a character class";
                buf_str(out, "[^" JS_WS "]");
                i += 2;
            } else if (d == 'u' && i + 2 < n && src[i + 2] == '{') {
                size_t j = i + 3;
                unsigned long v = 0;
                while (j < n && hexval((unsigned char)src[j]) >= 0 && v <= 0x10FFFF)
                    v = v * 16 + (unsigned long)hexval((unsigned char)src[j++]);
                if (j >= n || src[j] != '}' || j == i + 3 || v > 0x10FFFF)
                    return "a bad \\u{...} escape";
                snprintf(tmp, sizeof tmp, "\\x{%lX}", v);
                buf_str(out, tmp);
                i = j + 1;
            } else if (d == 'u') {
                long v = js_u4(src, n, i);
                if (v < 0) return "a bad \\u escape";
                i += 6;
                long lo = js_u4(src, n, i);
                if (v >= 0xD800 && v <= 0xDBFF && lo >= 0xDC00 && lo <= 0xDFFF) {
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                } else if (v >= 0xD800 && v <= 0xDFFF) {
                    return "a lone surrogate";
                }
                snprintf(tmp, sizeof tmp, "\\x{%lX}", (unsigned long)v);
                buf_str(out, tmp);
            } else if ((d == 'p' || d == 'P') && i + 2 < n && src[i + 2] == '{') {
                /* \p{Script=Han} -> \p{Han}; \p{gc=L} -> \p{L} */
                static const char *pre[] = {"Script=", "sc=", "Script_Extensions=",
                                            "scx=", "General_Category=", "gc="};
                size_t j = i + 3;
                buf_add(out, src + i, 3);
                for (size_t k = 0; k < sizeof pre / sizeof *pre; k++)
                    if (!strncmp(src + j, pre[k], strlen(pre[k])) &&
                        j + strlen(pre[k]) <= n) {
                        j += strlen(pre[k]);
                        break;
                    }
                i = j;
            } else if (d == '/') {
                buf_add(out, "/", 1);
                i += 2;
            } else {
                buf_add(out, src + i, 2);
                i += 2;
            }
        } else if (c == '[' && !in_class) {
            if (i + 1 < n && src[i + 1] == ']') { buf_str(out, "(?!)"); i += 2; continue; }
            if (i + 2 < n && src[i + 1] == '^' && src[i + 2] == ']') {
                buf_str(out, "(?s:.)");
                i += 3;
                continue;
            }
            in_class = 1;
            buf_add(out, "[", 1);
            i++;
            if (i < n && src[i] == '^') { buf_add(out, "^", 1); i++; }
        } else if (c == '[') {
            buf_str(out, "\\[");
            i++;
        } else if (c == ']' && in_class) {
            in_class = 0;
            buf_add(out, "]", 1);
            i++;
        } else if (c == '.' && !in_class) {
            buf_str(out, "[^\\n\\r\\x{2028}\\x{2029}]");
            i++;
        } else {
            buf_add(out, src + i, 1);
            i++;
        }
    }
    return NULL;
}

pcre2_code *hf_compile_re(const char *src, size_t n, int *ecode, size_t *eoff)
{
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, n, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY,
                                   ecode, &off, NULL);
    *eoff = off;
    if (re) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* interpreter if no JIT */
    return re;
}

/* Compiles a tokenizer.json pattern object ({"String": s} or
 * {"Regex": r}) as the reference's createPattern(pattern, invert) does. */
static int compile_pattern(loader *L, const json_t *pat, int invert,
                           hf_step *step, const char *what)
{
    step->re = NULL;
    json_t *rx = json_object_get(pat, "Regex"), *st = json_object_get(pat, "String");
    buf js = {0}, pc = {0};
    int rc = 0;
    if (json_is_string(rx)) {
        const char *s = json_string_value(rx);
        size_t n = json_string_length(rx);
        /* the reference's rewrites: drop the backslash of \# \& \~, and
         * spell out what JavaScript cannot parse */
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '\\' && i + 1 < n && strchr("#&~", s[i + 1]) && s[i + 1]) {
                buf_add(&js, s + i + 1, 1);
                i++;
            } else {
                buf_add(&js, s + i, 1);
            }
        }
        buf_replace(&js, "(?i:'s|'t|'re|'ve|'m|'ll|'d)",
                    "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))");
        buf_replace(&js, " ?[^(\\s|[.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81"
                         "\xe0\xa5\xa4\xdb\x94\xd8\x8c])]+",
                    " ?[^\\s.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81"
                    "\xe0\xa5\xa4\xdb\x94\xd8\x8c]+");
    } else if (json_is_string(st)) {
        const char *s = json_string_value(st);
        size_t n = json_string_length(st);
        if (!invert) buf_add(&js, "(", 1);
        for (size_t i = 0; i < n; i++) {
            if (strchr(".*+?^${}()|[]\\", s[i]) && s[i]) buf_add(&js, "\\", 1);
            buf_add(&js, s + i, 1);
        }
        if (!invert) buf_add(&js, ")", 1);
    } else {
        return fail(L, "%s: pattern is neither {\"String\": ...} nor {\"Regex\": ...}",
                    what);
    }
    if (!js.p) buf_add(&js, "", 0);
    const char *why = js.oom ? NULL : js_to_pcre2(js.p, js.n, &pc);
    if (js.oom || pc.oom) {
        rc = nomem(L);
        goto out;
    }
    if (why) {
        rc = fail(L, "%s: pattern '%s' has %s, which is not supported", what, js.p, why);
        goto out;
    }
    if (!pc.p) buf_add(&pc, "", 0);
    if (pc.oom) {
        rc = nomem(L);
        goto out;
    }
    int ecode;
    size_t eoff;
    step->re = hf_compile_re(pc.p, pc.n, &ecode, &eoff);
    if (!step->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        rc = fail(L, "%s: cannot compile pattern '%s': %s", what, js.p, (char *)msg);
        goto out;
    }
    step->re_src = pc.p; /* the cache compiles it again */
    step->re_n = pc.n;
    pc.p = NULL;
out:
    free(js.p);
    free(pc.p);
    return rc;
}

/* ---- pipeline steps ---- */

static int add_step(loader *L, hf_step **v, size_t *n, hf_step s)
{
    hf_step *nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv) {
        pcre2_code_free(s.re);
        free(s.re_src);
        free(s.s);
        return nomem(L);
    }
    *v = nv;
    (*v)[(*n)++] = s;
    return 0;
}

static int dup_str(loader *L, const char *s, size_t n, hf_step *st)
{
    st->s = malloc(n + 1);
    if (!st->s) return nomem(L);
    memcpy(st->s, s, n);
    st->s[n] = '\0';
    st->sn = n;
    return 0;
}

static int parse_normalizer(loader *L, const json_t *o, int depth)
{
    hf_tok *hf = L->hf;
    if (!o || json_is_null(o)) return 0;
    if (!json_is_object(o)) return fail(L, "normalizer is not an object");
    if (depth > 16) return fail(L, "normalizers nest too deep");
    const char *type = type_of(o), *s;
    size_t n;
    hf_step st = {0};
    int rc;
    if (!strcmp(type, "Sequence")) {
        json_t *v = json_object_get(o, "normalizers"), *e;
        size_t i;
        if (!json_is_array(v)) return fail(L, "normalizer Sequence: no 'normalizers' array");
        json_array_foreach(v, i, e)
            if ((rc = parse_normalizer(L, e, depth + 1))) return rc;
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        st.kind = NORM_PREPEND;
        if ((rc = get_str(L, o, "prepend", 1, &s, &n, "normalizer Prepend")) ||
            (rc = dup_str(L, s, n, &st)))
            return rc;
    } else if (!strcmp(type, "Replace")) {
        st.kind = NORM_REPLACE;
        if ((rc = get_str(L, o, "content", 1, &s, &n, "normalizer Replace")) ||
            (rc = dup_str(L, s, n, &st)))
            return rc;
        if ((rc = compile_pattern(L, json_object_get(o, "pattern"), 1, &st,
                                  "normalizer Replace"))) {
            free(st.s);
            return rc;
        }
    } else if (!strcmp(type, "NFC")) {
        st.kind = NORM_NFC;
    } else {
        return fail(L, "normalizer type '%s' is not supported (only Prepend, "
                    "Replace, NFC and Sequence)", type);
    }
    return add_step(L, &hf->norm, &hf->n_norm, st);
}

/* The prepend scheme of a Metaspace step. */
static int metaspace_scheme(loader *L, const json_t *o, int *mode, const char *what)
{
    const char *s;
    size_t n;
    int rc, aps;
    if ((rc = get_str(L, o, "prepend_scheme", 0, &s, &n, what)) ||
        (rc = get_bool(L, o, "add_prefix_space", 1, &aps, what)))
        return rc;
    if (!s || !strcmp(s, "always")) *mode = PREPEND_ALWAYS;
    else if (!strcmp(s, "first")) *mode = PREPEND_FIRST;
    else if (!strcmp(s, "never")) *mode = PREPEND_NEVER;
    else return fail(L, "%s: prepend_scheme '%s' is not always, first or never", what, s);
    if (!aps) *mode = PREPEND_NEVER;
    return 0;
}

static int compile_fixed(loader *L, const char *js, hf_step *st, const char *what)
{
    json_t *pat = json_pack("{s:s}", "Regex", js);
    if (!pat) return nomem(L);
    int rc = compile_pattern(L, pat, 1, st, what);
    json_decref(pat);
    return rc;
}

static int parse_pre(loader *L, const json_t *o, int depth)
{
    hf_tok *hf = L->hf;
    if (!o || json_is_null(o)) return 0;
    if (!json_is_object(o)) return fail(L, "pre_tokenizer is not an object");
    if (depth > 16) return fail(L, "pre_tokenizers nest too deep");
    const char *type = type_of(o), *s;
    size_t n;
    hf_step st = {0};
    int rc, b = 0;
    if (!strcmp(type, "Sequence")) {
        json_t *v = json_object_get(o, "pretokenizers"), *e;
        size_t i;
        if (!json_is_array(v))
            return fail(L, "pre_tokenizer Sequence: no 'pretokenizers' array");
        json_array_foreach(v, i, e)
            if ((rc = parse_pre(L, e, depth + 1))) return rc;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        st.kind = PRE_BYTELEVEL;
        if ((rc = get_bool(L, o, "add_prefix_space", 0, &st.flag, "pre_tokenizer ByteLevel")) ||
            (rc = get_bool(L, o, "use_regex", 1, &b, "pre_tokenizer ByteLevel")))
            return rc;
        if (b && (rc = compile_fixed(L, "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+"
                                     "| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                                     &st, "pre_tokenizer ByteLevel")))
            return rc;
    } else if (!strcmp(type, "Split")) {
        int invert = 0;
        if ((rc = get_bool(L, o, "invert", 0, &invert, "pre_tokenizer Split")) ||
            (rc = get_str(L, o, "behavior", 0, &s, &n, "pre_tokenizer Split")))
            return rc;
        static const char *known[] = {"Removed", "Isolated", "MergedWithPrevious",
                                      "MergedWithNext", "Contiguous"};
        int ok = !s;
        for (size_t k = 0; s && k < sizeof known / sizeof *known; k++)
            ok |= !strcmp(s, known[k]);
        if (!ok) return fail(L, "pre_tokenizer Split: behavior '%s' is unknown", s);
        st.kind = invert ? PRE_MATCH : PRE_SPLIT;
        st.mode = s && !strcmp(s, "Removed") ? SPLIT_REMOVED : SPLIT_ISOLATED;
        if ((rc = compile_pattern(L, json_object_get(o, "pattern"), invert, &st,
                                  "pre_tokenizer Split")))
            return rc;
    } else if (!strcmp(type, "Digits")) {
        st.kind = PRE_MATCH;
        if ((rc = get_bool(L, o, "individual_digits", 0, &b, "pre_tokenizer Digits")) ||
            (rc = compile_fixed(L, b ? "[^\\d]+|\\d" : "[^\\d]+|\\d+", &st,
                                "pre_tokenizer Digits")))
            return rc;
    } else if (!strcmp(type, "Metaspace")) {
        st.kind = PRE_METASPACE;
        if ((rc = get_str(L, o, "replacement", 1, &s, &n, "pre_tokenizer Metaspace")) ||
            (rc = metaspace_scheme(L, o, &st.mode, "pre_tokenizer Metaspace")) ||
            (rc = get_bool(L, o, "split", 1, &st.flag, "pre_tokenizer Metaspace")) ||
            (rc = dup_str(L, s, n, &st)))
            return rc;
        if (!n) {
            free(st.s);
            return fail(L, "pre_tokenizer Metaspace: empty replacement");
        }
    } else {
        return fail(L, "pre_tokenizer type '%s' is not supported (only ByteLevel, "
                    "Split, Metaspace, Digits and Sequence)", type);
    }
    return add_step(L, &hf->pre, &hf->n_pre, st);
}

static int parse_decoder(loader *L, const json_t *o, int depth)
{
    hf_tok *hf = L->hf;
    if (!o || json_is_null(o)) return 0;
    if (!json_is_object(o)) return fail(L, "decoder is not an object");
    if (depth > 16) return fail(L, "decoders nest too deep");
    hf->has_decoder = 1;
    const char *type = type_of(o), *s;
    size_t n;
    hf_step st = {0};
    int rc;
    if (!strcmp(type, "Sequence")) {
        json_t *v = json_object_get(o, "decoders"), *e;
        size_t i;
        if (!json_is_array(v)) return fail(L, "decoder Sequence: no 'decoders' array");
        json_array_foreach(v, i, e)
            if ((rc = parse_decoder(L, e, depth + 1))) return rc;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        st.kind = DEC_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        st.kind = DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        st.kind = DEC_FUSE;
    } else if (!strcmp(type, "Replace")) {
        st.kind = DEC_REPLACE;
        if ((rc = get_str(L, o, "content", 1, &s, &n, "decoder Replace")) ||
            (rc = dup_str(L, s, n, &st)))
            return rc;
        if ((rc = compile_pattern(L, json_object_get(o, "pattern"), 1, &st,
                                  "decoder Replace"))) {
            free(st.s);
            return rc;
        }
    } else if (!strcmp(type, "Strip")) {
        st.kind = DEC_STRIP;
        json_t *a = json_object_get(o, "start"), *b = json_object_get(o, "stop");
        if ((rc = get_str(L, o, "content", 1, &s, &n, "decoder Strip"))) return rc;
        size_t len = 0;
        if (!n || (st.cp = tok_utf8_next(s, n, &len), len != n))
            return fail(L, "decoder Strip: content is not one character");
        if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
            json_integer_value(b) < 0 || json_integer_value(a) > 1 << 20 ||
            json_integer_value(b) > 1 << 20)
            return fail(L, "decoder Strip: start and stop must be small integers");
        st.start = (int)json_integer_value(a);
        st.stop = (int)json_integer_value(b);
    } else if (!strcmp(type, "Metaspace")) {
        st.kind = DEC_METASPACE;
        if ((rc = get_str(L, o, "replacement", 1, &s, &n, "decoder Metaspace")) ||
            (rc = metaspace_scheme(L, o, &st.mode, "decoder Metaspace")) ||
            (rc = dup_str(L, s, n, &st)))
            return rc;
        if (!n) {
            free(st.s);
            return fail(L, "decoder Metaspace: empty replacement");
        }
    } else {
        return fail(L, "decoder type '%s' is not supported (only ByteLevel, Replace, "
                    "ByteFallback, Fuse, Strip, Metaspace and Sequence)", type);
    }
    return add_step(L, &hf->dec, &hf->n_dec, st);
}

/* The id of a template's special token (a token string). */
static int special_id(loader *L, const json_t *o, const char *key, int *id,
                      const char *what)
{
    const char *s;
    size_t n;
    int rc = get_str(L, o, key, 1, &s, &n, what);
    if (rc) return rc;
    *id = hf_lookup(L->hf, s, n);
    if (*id < 0 || L->hf->kind[*id] == ID_VIRTUAL)
        return fail(L, "%s: special token '%s' is not in the vocabulary", what, s);
    return 0;
}

/* Wraps the current template (ids, -1 = the sequence) in `before` and
 * `after` ids for a template post-processor. */
static int wrap_template(loader *L, const int *before, size_t nb, const int *after,
                         size_t na)
{
    hf_tok *hf = L->hf;
    int *t = malloc((nb + hf->n_tmpl + na) * sizeof *t);
    if (!t) return nomem(L);
    memcpy(t, before, nb * sizeof *t);
    memcpy(t + nb, hf->tmpl, hf->n_tmpl * sizeof *t);
    memcpy(t + nb + hf->n_tmpl, after, na * sizeof *t);
    free(hf->tmpl);
    hf->tmpl = t;
    hf->n_tmpl += nb + na;
    return 0;
}

static int parse_post(loader *L, const json_t *o, int depth)
{
    if (!o || json_is_null(o)) return 0;
    if (!json_is_object(o)) return fail(L, "post_processor is not an object");
    if (depth > 16) return fail(L, "post_processors nest too deep");
    const char *type = type_of(o);
    int rc;
    if (!strcmp(type, "Sequence")) {
        json_t *v = json_object_get(o, "processors"), *e;
        size_t i;
        if (!json_is_array(v)) return fail(L, "post_processor Sequence: no 'processors' array");
        json_array_foreach(v, i, e)
            if ((rc = parse_post(L, e, depth + 1))) return rc;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0;
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(o, "single"), *e;
        size_t i, n = json_array_size(single), seen = 0;
        if (!json_is_array(single))
            return fail(L, "post_processor TemplateProcessing: no 'single' array");
        int *before = malloc((n + 1) * sizeof *before), *after = malloc((n + 1) * sizeof *after);
        size_t nb = 0, na = 0;
        rc = before && after ? 0 : nomem(L);
        json_array_foreach(single, i, e) {
            if (rc) break;
            json_t *sp = json_object_get(e, "SpecialToken"), *sq = json_object_get(e, "Sequence");
            int id;
            if (json_is_object(sp)) {
                if ((rc = special_id(L, sp, "id", &id, "post_processor TemplateProcessing")))
                    break;
                if (seen) after[na++] = id;
                else before[nb++] = id;
            } else if (json_is_object(sq)) {
                const char *s = json_string_value(json_object_get(sq, "id"));
                if (s && !strcmp(s, "A")) seen++;
            } else {
                rc = fail(L, "post_processor TemplateProcessing: item %zu is neither "
                          "a SpecialToken nor a Sequence", i);
            }
        }
        if (!rc && seen != 1)
            rc = fail(L, "post_processor TemplateProcessing: the single template "
                      "holds sequence A %zu times", seen);
        if (!rc) rc = wrap_template(L, before, nb, after, na);
        free(before);
        free(after);
        return rc;
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        int cls, sep;
        json_t *c = json_object_get(o, "cls"), *s = json_object_get(o, "sep");
        json_t *cw = json_pack("{s:O?}", "id", json_array_get(c, 0));
        json_t *sw = json_pack("{s:O?}", "id", json_array_get(s, 0));
        rc = cw && sw ? 0 : nomem(L);
        if (!rc) rc = special_id(L, cw, "id", &cls, "post_processor cls");
        if (!rc) rc = special_id(L, sw, "id", &sep, "post_processor sep");
        json_decref(cw);
        json_decref(sw);
        return rc ? rc : wrap_template(L, &cls, 1, &sep, 1);
    }
    return fail(L, "post_processor type '%s' is not supported (only "
                "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel "
                "and Sequence)", type);
}

/* ---- model and added tokens ---- */

/* The model object holds a BPE model with a 'vocab' object and a
 * 'merges' array, in a form this tokenizer supports; its flags go into
 * hf. 'added_tokens', when there, is an array. */
static int check_model(loader *L, const json_t *model, const json_t *added)
{
    hf_tok *hf = L->hf;
    int rc;
    if (!json_is_object(model)) return fail(L, "no 'model' object");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *jt = json_object_get(model, "type");
    const char *type = json_string_value(jt);
    if (jt && !type) return fail(L, "model type is not a string");
    if (!type && json_is_object(vocab) && merges) type = "BPE";
    if (!type) return fail(L, "model has no type");
    if (strcmp(type, "BPE"))
        return fail(L, "model type '%s' is not supported (only BPE)", type);
    if (!json_is_object(vocab)) return fail(L, "model BPE: 'vocab' is not an object");
    if (!json_is_array(merges)) return fail(L, "model BPE: 'merges' is not an array");
    if (added && !json_is_null(added) && !json_is_array(added))
        return fail(L, "'added_tokens' is not an array");
    const char *s;
    size_t n;
    static const char *nulls[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t k = 0; k < 2; k++) {
        if ((rc = get_str(L, model, nulls[k], 0, &s, &n, "model BPE"))) return rc;
        if (n) return fail(L, "model BPE: %s '%s' is not supported", nulls[k], s);
    }
    if ((rc = get_bool(L, model, "byte_fallback", 0, &hf->byte_fallback, "model BPE")) ||
        (rc = get_bool(L, model, "fuse_unk", 0, &hf->fuse_unk, "model BPE")) ||
        (rc = get_bool(L, model, "ignore_merges", 0, &hf->ignore_merges, "model BPE")))
        return rc;
    return 0;
}

/* The id space: ids must be integers, not far past the entry count
 * (count: vocab and added tokens); n_vocab = n_all = the largest + 1. */
static int check_ids(loader *L, const json_t *vocab, const json_t *added,
                     size_t count)
{
    hf_tok *hf = L->hf;
    json_int_t limit = (json_int_t)(2 * count + 1024), max = -1;
    const char *key;
    size_t i;
    json_t *val, *e;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val))
            return fail(L, "model BPE: token '%s': id is not an integer", key);
        json_int_t id = json_integer_value(val);
        if (id < 0 || id >= limit)
            return fail(L, "model BPE: token '%s': id %lld is out of range [0, %lld)",
                        key, (long long)id, (long long)limit);
        if (id > max) max = id;
    }
    json_array_foreach(added, i, e) {
        json_t *id = json_object_get(e, "id"), *c = json_object_get(e, "content");
        if (!json_is_integer(id) || !json_is_string(c) || !json_string_length(c))
            return fail(L, "added token %zu: needs an integer 'id' and a non-empty "
                        "'content'", i);
        if (json_integer_value(id) < 0 || json_integer_value(id) >= limit)
            return fail(L, "added token '%s': id %lld is out of range [0, %lld)",
                        json_string_value(c), (long long)json_integer_value(id),
                        (long long)limit);
        if (json_integer_value(id) > max) max = json_integer_value(id);
    }
    if (max < 0) return fail(L, "model BPE: the vocabulary is empty");
    hf->n_vocab = hf->n_all = (size_t)max + 1;
    return 0;
}

/* The vocabulary's and the added tokens' strings into the pool, the
 * id tables and the string map (sized for them and the merges'
 * virtual tokens). Each added token's s holds its pool offset until
 * parse_model fixes it: the pool may move until the merges are in. */
static int load_tokens(loader *L, const json_t *vocab, const json_t *added,
                       size_t count, size_t merges_n)
{
    hf_tok *hf = L->hf;
    int rc;
    const char *key;
    size_t klen, i;
    json_t *val, *e;
    if ((rc = set_id(L, (int)hf->n_all - 1, 0, 0, ID_NONE))) return rc;
    hf->map_cap = tok_pow2_above(count + 2 * merges_n + 64);
    hf->map = malloc(hf->map_cap * sizeof *hf->map);
    if (!hf->map) return nomem(L);
    for (size_t h = 0; h < hf->map_cap; h++) hf->map[h] = (hf_map_slot){-1, 0, 0};

    json_object_keylen_foreach((json_t *)vocab, key, klen, val) {
        int id = (int)json_integer_value(val);
        size_t off = pool_add(L, key, klen);
        if (off == SIZE_MAX) return nomem(L);
        set_id(L, id, off, klen, ID_VOCAB);
        map_put(hf, off, klen, id);
    }
    size_t n_added = json_array_size(added);
    hf->added = calloc(n_added ? n_added : 1, sizeof *hf->added);
    if (!hf->added) return nomem(L);
    json_array_foreach(added, i, e) {
        json_t *c = json_object_get(e, "content");
        int id = (int)json_integer_value(json_object_get(e, "id")), sp = 0, ls = 0, rs = 0;
        char what[64];
        snprintf(what, sizeof what, "added token %zu", i);
        if ((rc = get_bool(L, e, "special", 0, &sp, what)) ||
            (rc = get_bool(L, e, "lstrip", 0, &ls, what)) ||
            (rc = get_bool(L, e, "rstrip", 0, &rs, what)))
            return rc;
        size_t off = pool_add(L, json_string_value(c), json_string_length(c));
        if (off == SIZE_MAX) return nomem(L);
        set_id(L, id, off, json_string_length(c), ID_ADDED);
        hf->special[id] = (uint8_t)((sp ? HF_SPECIAL : 0) | (ls ? HF_LSTRIP : 0) |
                                    (rs ? HF_RSTRIP : 0));
        map_put(hf, off, json_string_length(c), id);
        hf->added[hf->n_added++] = (hf_added){id, ls, rs, NULL, json_string_length(c)};
        hf->added[hf->n_added - 1].s = (const char *)(uintptr_t)off; /* fixed in parse_model */
    }
    return 0;
}

/* merges: ranks by position, a later duplicate replacing an earlier
 * one (the reference's Map) */
static int load_merges(loader *L, const json_t *merges)
{
    tokenizer *t = L->t;
    int rc = 0;
    size_t i;
    json_t *e;
    t->pair_cap = tok_pow2_above(json_array_size(merges));
    t->pairs = malloc(t->pair_cap * sizeof *t->pairs);
    if (!t->pairs) return nomem(L);
    for (size_t k = 0; k < t->pair_cap; k++) t->pairs[k] = (pair_slot){PAIR_EMPTY, 0, 0};
    buf joined = {0};
    json_array_foreach(merges, i, e) {
        const char *a, *b;
        size_t an, bn;
        if (json_is_string(e)) {
            a = json_string_value(e);
            const char *sp = memchr(a, ' ', json_string_length(e));
            if (!sp) {
                rc = fail(L, "merge %zu '%s' is not two tokens separated by a space", i, a);
                break;
            }
            an = (size_t)(sp - a);
            b = sp + 1;
            /* JavaScript's split(" ", 2): the second part ends at the next space */
            const char *sp2 = memchr(b, ' ', json_string_length(e) - an - 1);
            bn = sp2 ? (size_t)(sp2 - b) : json_string_length(e) - an - 1;
        } else if (json_is_array(e) && json_array_size(e) == 2 &&
                   json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0));
            an = json_string_length(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1));
            bn = json_string_length(json_array_get(e, 1));
        } else {
            rc = fail(L, "merge %zu is neither \"a b\" nor [\"a\", \"b\"]", i);
            break;
        }
        int ia, ib, im;
        joined.n = 0;
        buf_add(&joined, a, an);
        buf_add(&joined, b, bn);
        if (joined.oom) { rc = nomem(L); break; }
        if ((rc = id_or_virtual(L, a, an, &ia)) || (rc = id_or_virtual(L, b, bn, &ib)) ||
            (rc = id_or_virtual(L, joined.p, an + bn, &im)))
            break;
        uint64_t k = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        size_t h = tok_pair_hash(k, t->pair_cap);
        while (t->pairs[h].key != PAIR_EMPTY && t->pairs[h].key != k)
            h = (h + 1) & (t->pair_cap - 1);
        t->pairs[h] = (pair_slot){k, (int32_t)i, im};
    }
    free(joined.p);
    return rc;
}

/* The id of the unk_token, -1 when none */
static int set_unk(loader *L, const json_t *model)
{
    hf_tok *hf = L->hf;
    const char *s;
    size_t n;
    int rc;
    hf->unk_id = -1;
    if ((rc = get_str(L, model, "unk_token", 0, &s, &n, "model BPE"))) return rc;
    if (s) {
        hf->unk_id = hf_lookup(hf, s, n);
        if (hf->unk_id >= 0 && hf->kind[hf->unk_id] == ID_VIRTUAL) hf->unk_id = -1;
    }
    return 0;
}

/* The string map again at the capacity its strings need (it was sized
 * for every merge naming new strings, which few do): a quarter full at
 * most, a third of the memory Llama 3's took, and what the cache stores. */
static int shrink_map(loader *L)
{
    hf_tok *hf = L->hf;
    size_t cap = tok_pow2_above(2 * hf->n_all);
    if (cap >= hf->map_cap) return 0;
    hf_map_slot *map = malloc(cap * sizeof *map), *old = hf->map;
    if (!map) return nomem(L);
    for (size_t h = 0; h < cap; h++) map[h] = (hf_map_slot){-1, 0, 0};
    size_t ocap = hf->map_cap;
    hf->map = map;
    hf->map_cap = cap;
    for (size_t h = 0; h < ocap; h++)
        if (old[h].id >= 0) map_put(hf, old[h].off, old[h].len, old[h].id);
    free(old);
    return 0;
}

void hf_derive(hf_tok *hf)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int id = hf_lookup(hf, name, 6);
        hf->fb_id[b] = id >= 0 && hf->kind[id] != ID_VIRTUAL ? id : -1;
    }
    for (int c = 0, k = 0; c < 256; c++) {
        int keep = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255);
        uint32_t cp = keep ? (uint32_t)c : (uint32_t)(256 + k++);
        hf->b2u_n[c] = (uint8_t)tok_utf8_put(cp, hf->b2u[c]);
    }
    for (uint32_t cp = 0; cp < 0x800; cp++) {
        char u[4];
        size_t ul = tok_utf8_put(cp, u);
        hf->cp_id[cp] = hf_lookup(hf, u, ul);
    }
    for (size_t k = 0, b = 0; b <= 256; b++) {
        while (k < hf->n_added && (unsigned char)hf->added[k].s[0] < b) k++;
        hf->added_at[b] = k;
    }
    hf->bos_id = hf->n_tmpl > 1 && hf->tmpl[0] >= 0 ? hf->tmpl[0] : -1;
}

/* The model (BPE: vocabulary, merges, unk and byte fallback) and the
 * added tokens. */
static int parse_model(loader *L, const json_t *model, const json_t *added)
{
    hf_tok *hf = L->hf;
    int rc = check_model(L, model, added);
    if (rc) return rc;
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    size_t count = json_object_size(vocab) + json_array_size(added);
    if ((rc = check_ids(L, vocab, added, count)) ||
        (rc = load_tokens(L, vocab, added, count, json_array_size(merges))) ||
        (rc = load_merges(L, merges)))
        return rc;
    for (size_t k = 0; k < hf->n_added; k++)
        hf->added[k].s = hf->pool + (uintptr_t)hf->added[k].s;
    hf->pool_n = L->pool.n;
    if ((rc = shrink_map(L))) return rc;
    return set_unk(L, model);
}

static int added_cmp(const void *pa, const void *pb)
{
    const hf_added *a = pa, *b = pb;
    unsigned char fa = (unsigned char)a->s[0], fb = (unsigned char)b->s[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->n != b->n) return a->n > b->n ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Each token's bytes for tokenizer_token_bytes: the decoders on it alone. */
static int token_bytes(loader *L)
{
    hf_tok *hf = L->hf;
    tokenizer *t = L->t;
    buf all = {0};
    t->n_vocab = hf->n_vocab;
    t->off = malloc((t->n_vocab + 1) * sizeof *t->off);
    if (!t->off) return nomem(L);
    t->off[0] = 0;
    for (size_t id = 0; id < hf->n_vocab; id++) {
        if (hf->kind[id] != ID_NONE) {
            size_t n, len;
            const char *s = hf_str(hf, (int)id, &n);
            uint8_t added = hf->kind[id] == ID_ADDED;
            char *text;
            int rc = hf_run_decoders(hf, &s, &n, &added, 1, 1, &text, &len);
            if (rc) {
                free(all.p);
                return rc;
            }
            buf_add(&all, text, len);
            free(text);
        }
        t->off[id + 1] = all.n;
    }
    if (all.oom) {
        free(all.p);
        return nomem(L);
    }
    t->bytes = all.p ? all.p : calloc(1, 1);
    return t->bytes ? 0 : nomem(L);
}

int hf_parse(tokenizer **out, const char *path, const char *data, size_t size)
{
    *out = NULL;
    loader L = {.path = path};
    json_error_t jerr;
    int rc = 0;
    tokenizer *t = calloc(1, sizeof *t);
    hf_tok *hf = calloc(1, sizeof *hf);
    if (!t || !hf) {
        free(t);
        free(hf);
        return err_set(ERR_NOMEM, "'%s': out of memory", path);
    }
    t->hf = hf;
    L.t = t;
    L.hf = hf;
    hf->bos_id = -1;
    hf->path = strdup(path);
    json_t *root = json_loadb(data, size, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        rc = err_set(ERR_FORMAT, "'%s':%d: bad JSON at column %d: %s", path,
                     jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        rc = fail(&L, "not a JSON object");
        goto fail;
    }
    json_t *added = json_object_get(root, "added_tokens");
    if ((rc = parse_model(&L, json_object_get(root, "model"), added)) ||
        (rc = parse_normalizer(&L, json_object_get(root, "normalizer"), 0)) ||
        (rc = parse_pre(&L, json_object_get(root, "pre_tokenizer"), 0)) ||
        (rc = parse_decoder(&L, json_object_get(root, "decoder"), 0)))
        goto fail;
    hf->tmpl = malloc(sizeof *hf->tmpl);
    if (!hf->tmpl) {
        rc = nomem(&L);
        goto fail;
    }
    hf->tmpl[0] = -1;
    hf->n_tmpl = 1;
    if ((rc = parse_post(&L, json_object_get(root, "post_processor"), 0))) goto fail;
    qsort(hf->added, hf->n_added, sizeof *hf->added, added_cmp);
    hf_derive(hf);
    if ((rc = token_bytes(&L))) goto fail;
    if (!hf->path) {
        rc = nomem(&L);
        goto fail;
    }
    json_decref(root);
    *out = t;
    return 0;
fail:
    json_decref(root);
    if (L.pool.p != hf->pool) free(L.pool.p);
    tokenizer_close(t);
    return rc;
}

/* The bytes of the file at path, mapped (*mapped = 1: munmap them) or
 * else read whole (jansson's own file reading goes a getc at a time). */
static int source_bytes(const char *path, char **data, size_t *size, int *mapped)
{
    *mapped = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            *data = p;
            *size = (size_t)st.st_size;
            *mapped = 1;
            return 0;
        }
    }
    if (fd >= 0) close(fd);
    return tok_read_file(path, data, size);
}

int hf_open(tokenizer **out, const char *path)
{
    *out = NULL;
    char *data = NULL, cache[4096];
    size_t size = 0;
    int mapped, rc = source_bytes(path, &data, &size, &mapped);
    if (rc) return rc;
    tok_src_hash h;
    tok_src_hash_of(&h, data, size);
    int cached = tok_cache_path(cache, sizeof cache, &h) == 0;
    if (!cached || tok_cache_load(out, cache, path, &h) != 0) {
        rc = hf_parse(out, path, data, size);
        if (!rc && cached) tok_cache_save(*out, cache, &h);
    }
    if (mapped) munmap(data, size);
    else free(data);
    return rc;
}

void hf_free(hf_tok *hf)
{
    if (!hf) return;
    hf_step *lists[3] = {hf->norm, hf->pre, hf->dec};
    size_t counts[3] = {hf->n_norm, hf->n_pre, hf->n_dec};
    for (int l = 0; l < 3; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            pcre2_code_free(lists[l][i].re);
            free(lists[l][i].re_src);
            free(lists[l][i].s);
        }
        free(lists[l]);
    }
    free(hf->path);
    free(hf->added);
    if (hf->blob) {
        if (hf->blob_malloced) free(hf->blob);
        else munmap(hf->blob, hf->blob_n);
    } else {
        free(hf->pool);
        free(hf->str_off);
        free(hf->str_len);
        free(hf->kind);
        free(hf->special);
        free(hf->map);
        free(hf->tmpl);
    }
    free(hf);
}
