/* ingest_csv: fact lists as CSV (RFC 4180 as libcsv reads it in strict
 * mode), with a header row naming the columns (see ingest.h).
 *
 * The file is fed to libcsv one physical line at a time, so that every
 * row knows the line where it starts even when a quoted field spans
 * lines. Fields are taken literally (no trimming: a quoted " Paris"
 * keeps its space). A malformed row (stray quote, wrong field count, bad
 * bytes) is reported and parsing goes on at the next line; a bad header
 * is a whole-file error. */
#include "facts/ingest_impl.h"
#include "base/errors.h"

#include <csv.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

enum {
    COL_SUBJECT, COL_PROMPT, COL_TARGET_NEW, COL_TARGET_TRUE, COL_RELATION,
    COL_PARAPHRASE, COL_NPROMPT, COL_NTARGET, COL_KINDS
};
static const char *const col_names[COL_KINDS] = {
    "subject", "prompt", "target_new", "target_true", "relation",
    "paraphrase", "neighborhood_prompt", "neighborhood_target",
};

typedef struct {
    ingest_ctx *c;
    char **field;        /* this row's fields (malloc'ed, NUL-terminated) */
    size_t n_fields, cap_fields;
    int row_bad;         /* a problem of this row is already reported */
    size_t row_line;     /* the line where this row starts */
    int between_rows;
    size_t line;         /* the line being fed */
    int have_header;
    size_t n_cols;
    int *col_kind;       /* (n_cols) COL_* */
    size_t *col_index;   /* (n_cols) k-th column of its kind */
    size_t n_kind[COL_KINDS];
    int fatal;           /* a whole-file error code, or 0 */
} csv_state;

static void row_clear(csv_state *st)
{
    for (size_t i = 0; i < st->n_fields; i++) free(st->field[i]);
    st->n_fields = 0;
    st->row_bad = 0;
}

static const char *col_name(const csv_state *st, size_t i)
{
    if (!st->have_header || i >= st->n_cols) return "?";
    return col_names[st->col_kind[i]];
}

static void row_problem_nomem(csv_state *st, int rc)
{
    if (rc) st->fatal = rc;
}

static void on_field(void *data, size_t len, void *arg)
{
    csv_state *st = arg;
    size_t bad = 0;
    if (st->fatal) return;
    if (st->between_rows) { /* a row that began after a bare CR */
        st->row_line = st->line;
        st->between_rows = 0;
    }
    if (st->n_fields == st->cap_fields) {
        size_t cap = st->cap_fields ? 2 * st->cap_fields : 16;
        char **f = realloc(st->field, cap * sizeof *f);
        if (!f) {
            st->fatal = err_set(ERR_NOMEM, "out of memory");
            return;
        }
        st->field = f;
        st->cap_fields = cap;
    }
    size_t idx = st->n_fields;
    char *copy = NULL;
    if (len > INGEST_MAX_FIELD) {
        if (!st->row_bad && st->have_header)
            row_problem_nomem(st, ingest_report(
                st->c, st->row_line, "field %zu ('%s') is %zu bytes long "
                "(the limit is %d)", idx + 1, col_name(st, idx), len,
                INGEST_MAX_FIELD));
        else if (!st->have_header)
            st->fatal = ingest_fatal(st->c, ERR_FORMAT, st->row_line,
                                     "header field %zu is %zu bytes long",
                                     idx + 1, len);
        st->row_bad = 1;
        len = 0;
    } else if (!ingest_text_ok(data, len, &bad)) {
        unsigned char b = ((unsigned char *)data)[bad];
        if (!st->have_header)
            st->fatal = ingest_fatal(
                st->c, ERR_FORMAT, st->row_line, "the header row is not "
                "UTF-8 text (%s in field %zu): is this a CSV file?",
                b ? "an invalid byte" : "a NUL byte", idx + 1);
        else if (!st->row_bad && !b)
            row_problem_nomem(st, ingest_report(
                st->c, st->row_line, "field %zu ('%s') contains a NUL byte",
                idx + 1, col_name(st, idx)));
        else if (!st->row_bad)
            row_problem_nomem(st, ingest_report(
                st->c, st->row_line, "field %zu ('%s') is not valid UTF-8 "
                "(byte 0x%02x at offset %zu)", idx + 1, col_name(st, idx), b,
                bad));
        st->row_bad = 1;
        len = 0;
    }
    if (!(copy = malloc(len + 1))) {
        st->fatal = err_set(ERR_NOMEM, "out of memory");
        return;
    }
    if (len) memcpy(copy, data, len);
    copy[len] = '\0';
    st->field[st->n_fields++] = copy;
}

static int read_header(csv_state *st)
{
    ingest_ctx *c = st->c;
    size_t n = st->n_fields;
    char ex[200];
    st->col_kind = calloc(n ? n : 1, sizeof *st->col_kind);
    st->col_index = calloc(n ? n : 1, sizeof *st->col_index);
    if (!st->col_kind || !st->col_index)
        return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char *name = st->field[i];
        size_t a = 0, b = strlen(name);
        while (a < b && isspace((unsigned char)name[a])) a++;
        while (b > a && isspace((unsigned char)name[b - 1])) b--;
        name[b] = '\0';
        name += a;
        for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
        int kind = -1;
        for (int k = 0; k < COL_KINDS; k++)
            if (!strcmp(name, col_names[k])) kind = k;
        if (!strcmp(name, "neighbourhood_prompt")) kind = COL_NPROMPT;
        if (!strcmp(name, "neighbourhood_target")) kind = COL_NTARGET;
        ingest_excerpt(ex, sizeof ex, name, strlen(name));
        if (kind < 0)
            return ingest_fatal(c, ERR_FORMAT, st->row_line, "unknown column "
                                "'%s' (column %zu of the header); the columns "
                                "are subject, prompt, target_new, "
                                "target_true, relation, paraphrase, "
                                "neighborhood_prompt, neighborhood_target",
                                ex, i + 1);
        if (st->n_kind[kind] && kind < COL_PARAPHRASE)
            return ingest_fatal(c, ERR_FORMAT, st->row_line, "duplicate "
                                "column '%s' (column %zu of the header)",
                                col_names[kind], i + 1);
        st->col_kind[i] = kind;
        st->col_index[i] = st->n_kind[kind]++;
    }
    st->n_cols = n;
    for (int k = COL_SUBJECT; k <= COL_TARGET_NEW; k++)
        if (!st->n_kind[k])
            return ingest_fatal(c, ERR_FORMAT, st->row_line, "missing "
                                "required column '%s' in the header row",
                                col_names[k]);
    if (st->n_kind[COL_NPROMPT] != st->n_kind[COL_NTARGET])
        return ingest_fatal(c, ERR_FORMAT, st->row_line, "%zu "
                            "neighborhood_prompt columns but %zu "
                            "neighborhood_target columns (they go in pairs)",
                            st->n_kind[COL_NPROMPT],
                            st->n_kind[COL_NTARGET]);
    st->have_header = 1;
    return 0;
}

static int make_fact(csv_state *st)
{
    fact f = {0};
    size_t np = st->n_kind[COL_PARAPHRASE], nn = st->n_kind[COL_NPROMPT];
    f.source_line = st->row_line;
    if (np && !(f.paraphrases = calloc(np, sizeof(char *)))) goto nomem;
    f.n_paraphrases = np;
    if (nn) {
        f.neighbor_prompts = calloc(nn, sizeof(char *));
        f.neighbor_targets = calloc(nn, sizeof(char *));
        f.n_neighbors = nn;
        if (!f.neighbor_prompts || !f.neighbor_targets) goto nomem;
    }
    for (size_t i = 0; i < st->n_cols; i++) {
        char *v = st->field[i];
        st->field[i] = NULL; /* the fact owns it now */
        size_t k = st->col_index[i];
        switch (st->col_kind[i]) {
        case COL_SUBJECT: f.subject = v; break;
        case COL_PROMPT: f.prompt = v; break;
        case COL_TARGET_NEW: f.target_new = v; break;
        case COL_TARGET_TRUE: f.target_true = v; break;
        case COL_RELATION: f.relation = v; break;
        case COL_PARAPHRASE: f.paraphrases[k] = v; break;
        case COL_NPROMPT: f.neighbor_prompts[k] = v; break;
        case COL_NTARGET: f.neighbor_targets[k] = v; break;
        default: free(v);
        }
    }
    /* fact_free and ingest_accept need complete arrays: fill holes */
    for (size_t i = 0; i < np; i++)
        if (!f.paraphrases[i] && !(f.paraphrases[i] = strdup(""))) goto nomem;
    for (size_t i = 0; i < nn; i++)
        if ((!f.neighbor_prompts[i] && !(f.neighbor_prompts[i] = strdup(""))) ||
            (!f.neighbor_targets[i] && !(f.neighbor_targets[i] = strdup(""))))
            goto nomem;
    return ingest_accept(st->c, &f);
nomem:
    fact_free(&f);
    return err_set(ERR_NOMEM, "out of memory");
}

static void on_row(int term, void *arg)
{
    csv_state *st = arg;
    (void)term;
    if (st->fatal) return;
    if (!st->have_header) {
        int rc = read_header(st);
        if (rc) st->fatal = rc;
    } else if (!st->row_bad) {
        int rc;
        if (st->n_fields != st->n_cols)
            rc = ingest_report(st->c, st->row_line, "%zu field%s, the header "
                               "has %zu", st->n_fields,
                               st->n_fields == 1 ? "" : "s", st->n_cols);
        else
            rc = make_fact(st);
        if (rc) st->fatal = rc;
    }
    row_clear(st);
    st->between_rows = 1;
}

static int no_space(unsigned char ch)
{
    (void)ch;
    return 0;
}

static int parser_init(struct csv_parser *p)
{
    if (csv_init(p, CSV_STRICT | CSV_STRICT_FINI))
        return err_set(ERR_NOMEM, "out of memory");
    csv_set_space_func(p, no_space);
    /* libcsv grows its field buffer by blk_size at a time (128 bytes by
     * default): quadratic for a huge field. 64 KiB steps keep a 10 MB
     * field (which is refused anyway) cheap. */
    csv_set_blk_size(p, 65536);
    return 0;
}

static int only_newline(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n' && s[i] != '\r') return 0;
    return 1;
}

int ingest_parse_csv(ingest_ctx *c, const char *buf, size_t len)
{
    struct csv_parser p;
    csv_state st = {.c = c, .between_rows = 1};
    int rc;
    c->res->format = INGEST_CSV;
    if ((rc = parser_init(&p))) return rc;
    size_t pos = 0;
    while (pos < len && !st.fatal) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) + 1 : len;
        st.line++;
        if (st.between_rows && !only_newline(buf + pos, end - pos)) {
            st.row_line = st.line;
            st.between_rows = 0;
        }
        size_t got = csv_parse(&p, buf + pos, end - pos, on_field, on_row,
                               &st);
        if (got != end - pos && !st.fatal) {
            if (csv_error(&p) != CSV_EPARSE) {
                st.fatal = err_set(ERR_NOMEM, "out of memory parsing '%s'",
                                   c->path);
                break;
            }
            if (!st.have_header) {
                st.fatal = ingest_fatal(c, ERR_FORMAT, st.line, "malformed "
                                        "CSV header: a quote inside an "
                                        "unquoted field, or text after a "
                                        "closing quote");
                break;
            }
            if (!st.row_bad) {
                if (st.line == st.row_line)
                    rc = ingest_report(c, st.row_line, "malformed CSV: a "
                                       "quote inside an unquoted field, or "
                                       "text after a closing quote");
                else
                    rc = ingest_report(c, st.row_line, "malformed CSV (on "
                                       "line %zu of this row): a quote "
                                       "inside an unquoted field, or text "
                                       "after a closing quote", st.line);
                if (rc) st.fatal = rc;
            }
            /* start afresh at the next line */
            csv_free(&p);
            row_clear(&st);
            st.between_rows = 1;
            if ((rc = parser_init(&p))) {
                st.fatal = rc;
                goto out;
            }
        }
        pos = end;
    }
    if (!st.fatal && csv_fini(&p, on_field, on_row, &st) && !st.fatal) {
        if (!st.have_header)
            st.fatal = ingest_fatal(c, ERR_FORMAT, st.row_line, "malformed "
                                    "CSV header: a quoted field is never "
                                    "closed");
        else if ((rc = ingest_report(c, st.row_line, "unterminated quoted "
                                     "field: the quote runs to the end of "
                                     "the file")))
            st.fatal = rc;
    }
    if (!st.fatal && !st.have_header)
        st.fatal = ingest_fatal(c, ERR_FORMAT, 1, "no header row");
    csv_free(&p);
out:
    row_clear(&st);
    free(st.field);
    free(st.col_kind);
    free(st.col_index);
    return st.fatal;
}
