/* ingest_json: fact lists in the JSON formats of the field (see docs/memit.md,
 * "Data formats met in the field"): CounterFact, EasyEdit / KnowEdit and
 * zsRE (MEND split), as one JSON array of records or as JSON Lines.
 *
 * jansson parses one record at a time (JSON_DISABLE_EOF_CHECK stops it at
 * the end of the record and tells how far it read), so every record
 * knows the line where it starts and a syntax error points at its own
 * line. Between records only whitespace, ',' and the closing ']' are
 * looked at: the JSON itself is always jansson's business. A syntax error
 * ends the file (there is no safe place to resume); a record of the wrong
 * shape is reported and skipped. */
#include "facts/ingest_impl.h"
#include "base/errors.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *buf;
    size_t len;
    size_t pos, line; /* line of `pos`, counted incrementally */
} cursor;

static size_t line_at(cursor *cur, size_t pos)
{
    if (pos < cur->pos) { /* never needed going back, but stay correct */
        cur->pos = 0;
        cur->line = 1;
    }
    for (; cur->pos < pos && cur->pos < cur->len; cur->pos++)
        if (cur->buf[cur->pos] == '\n') cur->line++;
    return cur->line;
}

static size_t skip_ws(const char *buf, size_t len, size_t pos)
{
    while (pos < len && isspace((unsigned char)buf[pos])) pos++;
    return pos;
}

/* ---- fields --------------------------------------------------------- */

typedef struct {
    ingest_ctx *c;
    size_t line;
    int bad;      /* a problem of this record was reported */
    int rc;       /* ERR_NOMEM */
} rec_ctx;

static void problem(rec_ctx *r, const char *fmt, const char *key)
{
    if (r->bad) return;
    r->bad = 1;
    r->rc = ingest_report(r->c, r->line, fmt, key);
}

static char *dup_str(rec_ctx *r, const char *s)
{
    char *d = strdup(s);
    if (!d) r->rc = err_set(ERR_NOMEM, "out of memory");
    return d;
}

/* A string field; with `list_ok`, an array of strings gives its first.
 * NULL when absent (or null); a problem when of another type. */
static char *get_str(rec_ctx *r, json_t *obj, const char *key, int list_ok,
                     int required)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (required) problem(r, "missing field '%s'", key);
        return NULL;
    }
    if (json_is_string(v)) return dup_str(r, json_string_value(v));
    if (list_ok && json_is_array(v)) {
        if (json_array_size(v) == 0) {
            if (required) problem(r, "field '%s' is an empty list", key);
            return NULL;
        }
        json_t *e = json_array_get(v, 0);
        if (json_is_string(e)) return dup_str(r, json_string_value(e));
    }
    problem(r, list_ok ? "field '%s' must be a string or a list of strings"
                       : "field '%s' must be a string", key);
    return NULL;
}

/* A string or list-of-strings field as a list; *n = 0 when absent. */
static char **get_list(rec_ctx *r, json_t *obj, const char *key, size_t *n)
{
    json_t *v = json_object_get(obj, key);
    *n = 0;
    if (!v || json_is_null(v)) return NULL;
    if (json_is_string(v)) {
        char **a = malloc(sizeof *a);
        if (!a || !(a[0] = dup_str(r, json_string_value(v)))) {
            free(a);
            r->rc = err_set(ERR_NOMEM, "out of memory");
            return NULL;
        }
        *n = 1;
        return a;
    }
    if (!json_is_array(v)) {
        problem(r, "field '%s' must be a string or a list of strings", key);
        return NULL;
    }
    size_t m = json_array_size(v);
    for (size_t i = 0; i < m; i++)
        if (!json_is_string(json_array_get(v, i))) {
            problem(r, "field '%s' must be a list of strings", key);
            return NULL;
        }
    if (m == 0) return NULL;
    char **a = calloc(m, sizeof *a);
    if (!a) {
        r->rc = err_set(ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < m; i++)
        if (!(a[i] = dup_str(r, json_string_value(json_array_get(v, i))))) {
            for (size_t j = 0; j < i; j++) free(a[j]);
            free(a);
            return NULL;
        }
    *n = m;
    return a;
}

static void free_list(char **a, size_t n)
{
    if (!a) return;
    for (size_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

/* Neighbours from parallel prompt and target lists (missing targets are
 * empty: ingest_accept fills in target_true). */
static void set_neighbors(rec_ctx *r, fact *f, char **prompts, size_t np,
                          char **targets, size_t nt)
{
    if (!np) {
        free_list(targets, nt);
        free_list(prompts, np);
        return;
    }
    char **t = calloc(np, sizeof *t);
    if (!t) {
        r->rc = err_set(ERR_NOMEM, "out of memory");
        free_list(prompts, np);
        free_list(targets, nt);
        return;
    }
    for (size_t i = 0; i < np; i++) {
        if (i < nt) {
            t[i] = targets[i];
            targets[i] = NULL;
        } else if (!(t[i] = strdup(""))) {
            r->rc = err_set(ERR_NOMEM, "out of memory");
        }
    }
    free_list(targets, nt);
    f->neighbor_prompts = prompts;
    f->neighbor_targets = t;
    f->n_neighbors = np;
}

/* CounterFact's target fields are {"str": "...", "id": "..."}. */
static char *get_target(rec_ctx *r, json_t *rr, const char *key,
                        int required)
{
    json_t *v = json_object_get(rr, key);
    if (json_is_object(v)) {
        json_t *s = json_object_get(v, "str");
        if (json_is_string(s)) return dup_str(r, json_string_value(s));
        problem(r, "field '%s' has no string 'str'", key);
        return NULL;
    }
    return get_str(r, rr, key, 0, required);
}

static void read_counterfact(rec_ctx *r, json_t *rec, fact *f)
{
    json_t *rr = json_object_get(rec, "requested_rewrite");
    if (!json_is_object(rr)) {
        problem(r, "missing field '%s' (an object)", "requested_rewrite");
        return;
    }
    f->subject = get_str(r, rr, "subject", 0, 1);
    f->prompt = get_str(r, rr, "prompt", 0, 1);
    f->target_new = get_target(r, rr, "target_new", 1);
    f->target_true = get_target(r, rr, "target_true", 0);
    f->relation = get_str(r, rr, "relation_id", 0, 0);
    f->paraphrases = get_list(r, rec, "paraphrase_prompts",
                              &f->n_paraphrases);
    size_t np = 0;
    char **prompts = get_list(r, rec, "neighborhood_prompts", &np);
    set_neighbors(r, f, prompts, np, NULL, 0);
}

static void read_easyedit(rec_ctx *r, json_t *rec, fact *f)
{
    f->subject = get_str(r, rec, "subject", 0, 1);
    f->prompt = get_str(r, rec, "prompt", 0, 1);
    f->target_new = get_str(r, rec, "target_new", 1, 1);
    f->target_true = get_str(r, rec, "ground_truth", 1, 0);
    f->relation = get_str(r, rec, "relation", 0, 0);
    f->paraphrases = get_list(r, rec, "rephrase_prompt", &f->n_paraphrases);
    size_t np = 0, nt = 0;
    char **prompts = get_list(r, rec, "locality_prompt", &np);
    char **targets = get_list(r, rec, "locality_ground_truth", &nt);
    set_neighbors(r, f, prompts, np, targets, nt);
}

static void read_zsre(rec_ctx *r, json_t *rec, fact *f)
{
    f->subject = get_str(r, rec, "subject", 0, 1);
    f->prompt = get_str(r, rec, "src", 0, 1);
    f->target_new = get_str(r, rec, "alt", 1, 1);
    f->target_true = get_str(r, rec, "answers", 1, 0);
    f->paraphrases = get_list(r, rec, "rephrase", &f->n_paraphrases);
    size_t np = 0, nt = 0;
    char **prompts = get_list(r, rec, "loc", &np);
    char **targets = get_list(r, rec, "loc_ans", &nt);
    for (size_t i = 0; i < np; i++) { /* MEND's "nq question: ..." */
        const char *tag = "nq question: ";
        size_t n = strlen(tag);
        if (!strncmp(prompts[i], tag, n))
            memmove(prompts[i], prompts[i] + n, strlen(prompts[i] + n) + 1);
    }
    set_neighbors(r, f, prompts, np, targets, nt);
}

static ingest_format guess(json_t *rec)
{
    if (!json_is_object(rec)) return INGEST_AUTO;
    if (json_object_get(rec, "requested_rewrite")) return INGEST_COUNTERFACT;
    if (json_object_get(rec, "src") &&
        (json_object_get(rec, "alt") || json_object_get(rec, "answers")))
        return INGEST_ZSRE;
    if (json_object_get(rec, "prompt") && json_object_get(rec, "subject") &&
        json_object_get(rec, "target_new"))
        return INGEST_EASYEDIT;
    return INGEST_AUTO;
}

static void key_list(json_t *rec, char *out, size_t size)
{
    const char *key;
    json_t *v;
    size_t o = 0;
    out[0] = '\0';
    json_object_foreach(rec, key, v) {
        char ex[120];
        ingest_excerpt(ex, sizeof ex, key, strlen(key));
        int n = snprintf(out + o, size - o, "%s%s", o ? ", " : "", ex);
        if (n < 0 || (size_t)n >= size - o) break;
        o += (size_t)n;
    }
}

static int read_record(ingest_ctx *c, json_t *rec, ingest_format fmt,
                       size_t line)
{
    rec_ctx r = {c, line, 0, 0};
    fact f = {0};
    f.source_line = line;
    if (!json_is_object(rec))
        return ingest_report(c, line, "a record must be a JSON object");
    switch (fmt) {
    case INGEST_COUNTERFACT: read_counterfact(&r, rec, &f); break;
    case INGEST_ZSRE: read_zsre(&r, rec, &f); break;
    default: read_easyedit(&r, rec, &f); break;
    }
    if (r.rc || r.bad) {
        fact_free(&f);
        return r.rc;
    }
    return ingest_accept(c, &f);
}

int ingest_parse_json(ingest_ctx *c, const char *buf, size_t len,
                      ingest_format fmt)
{
    cursor cur = {buf, len, 0, 1};
    size_t pos = skip_ws(buf, len, 0);
    char ex[200];
    if (pos >= len)
        return ingest_fatal(c, ERR_FORMAT, 1, "empty file: no records");
    int array = buf[pos] == '[';
    if (!array && buf[pos] != '{') {
        ingest_excerpt(ex, sizeof ex, buf + pos, len - pos < 20 ? len - pos : 20);
        return ingest_fatal(c, ERR_FORMAT, line_at(&cur, pos), "not a JSON "
                            "list of records: expected '[' or '{', found "
                            "'%s'", ex);
    }
    if (array) {
        pos = skip_ws(buf, len, pos + 1);
        if (pos < len && buf[pos] == ']') {
            pos = skip_ws(buf, len, pos + 1);
            if (pos < len)
                return ingest_fatal(c, ERR_FORMAT, line_at(&cur, pos), "text "
                                    "after the end of the JSON array");
            c->res->format = fmt == INGEST_AUTO ? INGEST_EASYEDIT : fmt;
            return 0;
        }
    }
    for (;;) {
        size_t line = line_at(&cur, pos);
        if (pos >= len)
            return ingest_fatal(c, ERR_FORMAT, line, "truncated JSON: the "
                                "file ends inside the list of records");
        if (buf[pos] != '{') {
            ingest_excerpt(ex, sizeof ex, buf + pos,
                           len - pos < 20 ? len - pos : 20);
            return ingest_fatal(c, ERR_FORMAT, line, "a record must be a JSON "
                                "object; found '%s'", ex);
        }
        json_error_t e;
        json_t *rec = json_loadb(buf + pos, len - pos,
                                 JSON_DISABLE_EOF_CHECK |
                                     JSON_REJECT_DUPLICATES,
                                 &e);
        if (!rec) {
            size_t eline = e.line > 0 ? line + (size_t)e.line - 1 : line;
            return ingest_fatal(c, ERR_FORMAT, eline, "invalid JSON in the "
                                "record starting on line %zu: %s", line,
                                e.text);
        }
        pos += (size_t)e.position;
        if (fmt == INGEST_AUTO) {
            fmt = guess(rec);
            if (fmt == INGEST_AUTO) {
                char keys[400];
                key_list(rec, keys, sizeof keys);
                json_decref(rec);
                return ingest_fatal(c, ERR_FORMAT, line, "unknown record "
                                    "shape (fields: %s); expected CounterFact "
                                    "(requested_rewrite), EasyEdit (prompt, "
                                    "subject, target_new) or zsRE (src, alt, "
                                    "subject)", keys[0] ? keys : "none");
            }
        }
        c->res->format = fmt;
        int rc = read_record(c, rec, fmt, line);
        json_decref(rec);
        if (rc) return rc;
        pos = skip_ws(buf, len, pos);
        if (!array) {
            if (pos >= len) return 0;
            continue;
        }
        if (pos >= len)
            return ingest_fatal(c, ERR_FORMAT, line_at(&cur, pos), "truncated "
                                "JSON: the array is never closed");
        if (buf[pos] == ',') {
            pos = skip_ws(buf, len, pos + 1);
            continue;
        }
        if (buf[pos] == ']') {
            pos = skip_ws(buf, len, pos + 1);
            if (pos < len)
                return ingest_fatal(c, ERR_FORMAT, line_at(&cur, pos), "text "
                                    "after the end of the JSON array");
            return 0;
        }
        ingest_excerpt(ex, sizeof ex, buf + pos, len - pos < 20 ? len - pos : 20);
        return ingest_fatal(c, ERR_FORMAT, line_at(&cur, pos), "expected ',' "
                            "or ']' after a record; found '%s'", ex);
    }
}
