/* ingest: the shared half of reading fact lists (see ingest.h): the file
 * as a whole (exists, is a file, is UTF-8 and not UTF-16, not empty),
 * format guessing, the list of problems, and the rules every record
 * follows whatever its format:
 *
 *   - every string is valid UTF-8 of at most INGEST_MAX_FIELD bytes;
 *     subject and relation hold no control characters, the rest no
 *     control characters but tab, CR and LF;
 *   - subject: trimmed, non-empty; prompt: trailing whitespace removed,
 *     exactly one "{}", or else the subject written out (its first
 *     occurrence becomes "{}"); a prompt without its subject is refused,
 *     and so is one that is only the subject (nothing asks for the
 *     target);
 *   - target_new non-empty; targets lose trailing whitespace and gain a
 *     leading space when they have none (GPT-2 reads " Paris" as one
 *     token); target_new differs from target_true;
 *   - empty paraphrases and neighbourhood prompts are dropped; an empty
 *     neighbourhood target means target_true;
 *   - with a tokenizer: every prompt with its longest target fits into
 *     max_tokens;
 *   - one file gives one slot (subject + relation or prompt) one target.
 *
 * Token counts are summed per part: prompts end in non-space and targets
 * start with whitespace, so GPT-2's pre-tokenizer splits between them and
 * the sum equals the count of the concatenation. */
#include "facts/ingest_impl.h"
#include "base/errors.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define INGEST_MAX_FILE ((size_t)1 << 30) /* 1 GiB */

int ingest_format_parse(const char *name)
{
    static const char *const names[] = {"auto", "csv", "counterfact",
                                        "easyedit", "zsre"};
    for (int i = 0; i < 5; i++)
        if (!strcasecmp(name, names[i])) return i;
    return -1;
}

/* ---- problems ------------------------------------------------------- */

static int add_problem(ingest_ctx *c, size_t line, const char *fmt,
                       va_list ap)
{
    ingest_result *r = c->res;
    char msg[1024];
    int n;
    if (line)
        n = snprintf(msg, sizeof msg, "%s:%zu: ", c->path, line);
    else
        n = snprintf(msg, sizeof msg, "%s: ", c->path);
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    if (r->n_problems >= c->max_errors) {
        r->truncated = 1;
        return 0;
    }
    if (r->n_problems == c->cap_problems) {
        size_t cap = c->cap_problems ? 2 * c->cap_problems : 8;
        ingest_problem *p = realloc(r->problems, cap * sizeof *p);
        if (!p) return err_set(ERR_NOMEM, "out of memory");
        r->problems = p;
        c->cap_problems = cap;
    }
    char *m = strdup(msg);
    if (!m) return err_set(ERR_NOMEM, "out of memory");
    r->problems[r->n_problems].line = line;
    r->problems[r->n_problems++].message = m;
    return 0;
}

static int add_problemf(ingest_ctx *c, size_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = add_problem(c, line, fmt, ap);
    va_end(ap);
    return rc;
}

int ingest_report(ingest_ctx *c, size_t line, const char *fmt, ...)
{
    va_list ap;
    c->res->n_bad++;
    va_start(ap, fmt);
    int rc = add_problem(c, line, fmt, ap);
    va_end(ap);
    return rc;
}

int ingest_fatal(ingest_ctx *c, int code, size_t line, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    int n = line ? snprintf(msg, sizeof msg, "%s:%zu: ", c->path, line)
                 : snprintf(msg, sizeof msg, "%s: ", c->path);
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    /* the whole-file problem always makes it into the list */
    if (c->res->n_problems >= c->max_errors && c->res->n_problems) {
        free(c->res->problems[c->res->n_problems - 1].message);
        c->res->n_problems--;
    }
    c->max_errors++;
    add_problemf(c, line, "%s", msg + n);
    c->max_errors--;
    return err_set(code, "%s", msg);
}

/* ---- text ----------------------------------------------------------- */

int ingest_text_ok(const char *s, size_t len, size_t *bad_at)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char b = p[i];
        if (b < 0x80) {
            if (b == 0) goto bad;
            i++;
            continue;
        }
        size_t need;
        unsigned cp;
        if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
        else if (b >= 0xe0 && b <= 0xef) { need = 2; cp = b & 0x0f; }
        else if (b >= 0xf0 && b <= 0xf4) { need = 3; cp = b & 0x07; }
        else goto bad;
        if (len - i <= need) goto bad;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            goto bad;
        i += need + 1;
    }
    return 1;
bad:
    if (bad_at) *bad_at = i;
    return 0;
}

void ingest_excerpt(char *out, size_t size, const char *s, size_t len)
{
    size_t o = 0, i = 0, shown = 0;
    if (size < 8) {
        if (size) out[0] = '\0';
        return;
    }
    while (i < len && shown < 40 && o + 8 < size) {
        unsigned char b = (unsigned char)s[i];
        size_t bad = 0;
        size_t cl = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
        if (b >= 0x20 && b < 0x7f) {
            out[o++] = (char)b;
            i++;
        } else if (b >= 0x80 && i + cl <= len &&
                   ingest_text_ok(s + i, cl, &bad)) {
            memcpy(out + o, s + i, cl);
            o += cl;
            i += cl;
        } else if (b == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            i++;
        } else {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", b);
            i++;
        }
        shown++;
    }
    if (i < len && o + 4 <= size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* 1 when s holds a control character other than (when allowed) tab,
 * CR and LF. */
static int has_control(const char *s, int allow_space_controls)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == 0x7f) return 1;
        if (*p >= 0x20) continue;
        if (allow_space_controls && (*p == '\t' || *p == '\n' || *p == '\r'))
            continue;
        return 1;
    }
    return 0;
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
}

static void strip(char *s)
{
    rstrip(s);
    size_t k = 0;
    while (s[k] && isspace((unsigned char)s[k])) k++;
    if (k) memmove(s, s + k, strlen(s + k) + 1);
}

/* Gives *s a leading space unless it starts with whitespace. */
static int lead_space(char **s)
{
    if (!*s || !**s || isspace((unsigned char)**s)) return 0;
    size_t n = strlen(*s);
    char *t = malloc(n + 2);
    if (!t) return err_set(ERR_NOMEM, "out of memory");
    t[0] = ' ';
    memcpy(t + 1, *s, n + 1);
    free(*s);
    *s = t;
    return 0;
}

/* Replaces the first `len` bytes at `at` in *s by `with`. */
static int str_splice(char **s, size_t at, size_t len, const char *with)
{
    size_t n = strlen(*s), w = strlen(with);
    char *t = malloc(n - len + w + 1);
    if (!t) return err_set(ERR_NOMEM, "out of memory");
    memcpy(t, *s, at);
    memcpy(t + at, with, w);
    memcpy(t + at + w, *s + at + len, n - at - len + 1);
    free(*s);
    *s = t;
    return 0;
}

static size_t count_placeholders(const char *s)
{
    size_t n = 0;
    for (const char *p = strstr(s, "{}"); p; p = strstr(p + 2, "{}")) n++;
    return n;
}

/* 1 when the prompt holds nothing but "{}" and whitespace. */
static int only_placeholder(const char *prompt)
{
    const char *at = strstr(prompt, "{}");
    if (!at) return 0;
    for (const char *p = prompt; *p; p++)
        if ((p < at || p >= at + 2) && !isspace((unsigned char)*p)) return 0;
    return 1;
}

/* ---- the slot table (one target per slot per file) ----------------- */

static int slot_table_grow(ingest_ctx *c)
{
    size_t cap = c->ht_cap ? 2 * c->ht_cap : 1024;
    size_t *ht = calloc(cap, sizeof *ht);
    uint64_t *hh = calloc(cap, sizeof *hh);
    if (!ht || !hh) {
        free(ht);
        free(hh);
        return err_set(ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->ht_cap; i++) {
        if (!c->ht[i]) continue;
        size_t j = c->ht_hash[i] & (cap - 1);
        while (ht[j]) j = (j + 1) & (cap - 1);
        ht[j] = c->ht[i];
        hh[j] = c->ht_hash[i];
    }
    free(c->ht);
    free(c->ht_hash);
    c->ht = ht;
    c->ht_hash = hh;
    c->ht_cap = cap;
    return 0;
}

/* Finds the fact with this slot: its index + 1, or 0 with *cell the
 * empty cell where it would go. */
static size_t slot_find(const ingest_ctx *c, const char *slot, uint64_t h,
                        size_t *cell)
{
    size_t j = h & (c->ht_cap - 1);
    while (c->ht[j]) {
        if (c->ht_hash[j] == h && !strcmp(c->slots[c->ht[j] - 1], slot))
            return c->ht[j];
        j = (j + 1) & (c->ht_cap - 1);
    }
    *cell = j;
    return 0;
}

/* ---- tokens --------------------------------------------------------- */

static int token_count(const ingest_ctx *c, const char *s, size_t *n)
{
    int *ids = NULL;
    int rc = tokenizer_encode(c->opt->tok, s, strlen(s), &ids, n);
    free(ids);
    return rc;
}

/* Checks that prompt + target fits; *fits = 0 with a problem recorded
 * when not. */
static int check_length(ingest_ctx *c, const fact *f, const char *what,
                        const char *prompt, const char *target, int *fits)
{
    size_t np, nt;
    int rc = token_count(c, prompt, &np);
    if (!rc) rc = token_count(c, target, &nt);
    if (rc == ERR_NOMEM) return rc;
    if (rc) {
        *fits = 0;
        return ingest_report(c, f->source_line, "%s cannot be tokenized: "
                              "%s", what, err_message(rc));
    }
    if (np + nt > c->opt->max_tokens) {
        *fits = 0;
        return ingest_report(c, f->source_line, "%s and its target make %zu "
                              "tokens; the model takes at most %zu "
                              "(n_positions)", what, np + nt,
                              c->opt->max_tokens);
    }
    return 0;
}

static const char *longer(const char *a, const char *b)
{
    return strlen(a) >= strlen(b) ? a : b;
}

/* ---- one record ----------------------------------------------------- */

static int check_text(ingest_ctx *c, const fact *f, const char *what,
                      const char *s, int allow_space_controls, int *ok)
{
    size_t len = strlen(s), bad = 0;
    char ex[200];
    if (len > INGEST_MAX_FIELD) {
        *ok = 0;
        return ingest_report(c, f->source_line, "%s is %zu bytes long (the "
                              "limit is %d)", what, len, INGEST_MAX_FIELD);
    }
    if (!ingest_text_ok(s, len, &bad)) {
        *ok = 0;
        return ingest_report(c, f->source_line, "%s is not valid UTF-8 "
                              "(byte 0x%02x at offset %zu)", what,
                              (unsigned char)s[bad], bad);
    }
    if (has_control(s, allow_space_controls)) {
        *ok = 0;
        ingest_excerpt(ex, sizeof ex, s, len);
        return ingest_report(c, f->source_line, "%s '%s' contains a control "
                              "character", what, ex);
    }
    return 0;
}

static int normalise(ingest_ctx *c, fact *f, int *ok)
{
    char ex[200], ex2[200], what[64];
    int rc;
    size_t line = f->source_line;
#define STR(field) if (!f->field && !(f->field = strdup(""))) goto nomem
    STR(subject); STR(prompt); STR(relation); STR(target_new);
    STR(target_true);
#undef STR
    if ((rc = check_text(c, f, "subject", f->subject, 0, ok)) || !*ok ||
        (rc = check_text(c, f, "relation", f->relation, 0, ok)) || !*ok ||
        (rc = check_text(c, f, "prompt", f->prompt, 1, ok)) || !*ok ||
        (rc = check_text(c, f, "target_new", f->target_new, 1, ok)) || !*ok ||
        (rc = check_text(c, f, "target_true", f->target_true, 1, ok)) || !*ok)
        return rc;
    for (size_t i = 0; i < f->n_paraphrases; i++) {
        snprintf(what, sizeof what, "paraphrase %zu", i + 1);
        if ((rc = check_text(c, f, what, f->paraphrases[i], 1, ok)) || !*ok)
            return rc;
    }
    for (size_t i = 0; i < f->n_neighbors; i++) {
        snprintf(what, sizeof what, "neighborhood prompt %zu", i + 1);
        if ((rc = check_text(c, f, what, f->neighbor_prompts[i], 1, ok)) ||
            !*ok)
            return rc;
        snprintf(what, sizeof what, "neighborhood target %zu", i + 1);
        if ((rc = check_text(c, f, what, f->neighbor_targets[i], 1, ok)) ||
            !*ok)
            return rc;
    }

    strip(f->subject);
    strip(f->relation);
    rstrip(f->prompt);
    rstrip(f->target_new);
    rstrip(f->target_true);
    *ok = 0;
    if (!f->subject[0]) return ingest_report(c, line, "empty subject");
    if (!f->prompt[0]) return ingest_report(c, line, "empty prompt");
    if (!f->target_new[0]) return ingest_report(c, line, "empty target_new");
    size_t holes = count_placeholders(f->prompt);
    ingest_excerpt(ex, sizeof ex, f->prompt, strlen(f->prompt));
    if (holes > 1)
        return ingest_report(c, line, "the prompt '%s' has %zu '{}' (exactly "
                              "one marks the subject)", ex, holes);
    if (holes == 0) {
        char *at = strstr(f->prompt, f->subject);
        if (!at) {
            ingest_excerpt(ex2, sizeof ex2, f->subject, strlen(f->subject));
            return ingest_report(c, line, "subject '%s' is not in the prompt "
                                  "'%s'", ex2, ex);
        }
        if ((rc = str_splice(&f->prompt, (size_t)(at - f->prompt),
                         strlen(f->subject), "{}")))
            return rc;
    }
    if (only_placeholder(f->prompt))
        return ingest_report(c, line, "the prompt '%s' is only the subject: "
                              "it needs words that ask for the target (e.g. "
                              "'{} is located in')", ex);
    if ((rc = lead_space(&f->target_new)) ||
        (rc = lead_space(&f->target_true)))
        return rc;
    if (!strcmp(f->target_new, f->target_true)) {
        ingest_excerpt(ex, sizeof ex, f->target_new, strlen(f->target_new));
        return ingest_report(c, line, "target_new equals target_true ('%s'): "
                              "nothing to change", ex);
    }

    /* paraphrases: drop empty ones, write the subject out. Dropped
     * entries become NULL first so that fact_free stays safe on errors. */
    for (size_t i = 0; i < f->n_paraphrases; i++) {
        char *p = f->paraphrases[i];
        rstrip(p);
        if (!p[0]) {
            free(p);
            f->paraphrases[i] = NULL;
            continue;
        }
        char *at = strstr(p, "{}");
        if (at && (rc = str_splice(&f->paraphrases[i], (size_t)(at - p), 2,
                               f->subject)))
            return rc;
    }
    size_t k = 0;
    for (size_t i = 0; i < f->n_paraphrases; i++)
        if (f->paraphrases[i]) f->paraphrases[k++] = f->paraphrases[i];
    f->n_paraphrases = k;

    /* neighbourhood: drop empty prompts, fill empty targets */
    for (size_t i = 0; i < f->n_neighbors; i++) {
        char **p = &f->neighbor_prompts[i], **t = &f->neighbor_targets[i];
        rstrip(*p);
        rstrip(*t);
        if (!(*p)[0]) {
            free(*p);
            free(*t);
            *p = *t = NULL;
            continue;
        }
        if (!(*t)[0]) {
            if (!f->target_true[0])
                return ingest_report(c, line, "neighborhood prompt %zu has "
                                      "no target and there is no "
                                      "target_true", i + 1);
            char *d = strdup(f->target_true);
            if (!d) goto nomem;
            free(*t);
            *t = d;
        }
        if ((rc = lead_space(t))) return rc;
    }
    k = 0;
    for (size_t i = 0; i < f->n_neighbors; i++) {
        if (!f->neighbor_prompts[i]) continue;
        f->neighbor_prompts[k] = f->neighbor_prompts[i];
        f->neighbor_targets[k++] = f->neighbor_targets[i];
    }
    f->n_neighbors = k;

    if (c->opt->tok && c->opt->max_tokens) {
        int fits = 1;
        char *text = fact_prompt_text(f);
        if (!text) goto nomem;
        rc = check_length(c, f, "the prompt", text,
                          longer(f->target_new, f->target_true), &fits);
        free(text);
        for (size_t i = 0; !rc && fits && i < f->n_paraphrases; i++) {
            snprintf(what, sizeof what, "paraphrase %zu", i + 1);
            rc = check_length(c, f, what, f->paraphrases[i],
                              longer(f->target_new, f->target_true), &fits);
        }
        for (size_t i = 0; !rc && fits && i < f->n_neighbors; i++) {
            snprintf(what, sizeof what, "neighborhood prompt %zu", i + 1);
            rc = check_length(c, f, what, f->neighbor_prompts[i],
                              longer(f->neighbor_targets[i], f->target_new),
                              &fits);
        }
        if (rc || !fits) return rc;
    }
    *ok = 1;
    return 0;
nomem:
    return err_set(ERR_NOMEM, "out of memory");
}

int ingest_accept(ingest_ctx *c, fact *f)
{
    ingest_result *r = c->res;
    int ok = 1, rc;
    char *slot = NULL;
    if (!f->paraphrases) f->n_paraphrases = 0;
    if (!f->neighbor_prompts || !f->neighbor_targets) f->n_neighbors = 0;
    if (!f->source_file && !(f->source_file = strdup(c->path))) goto nomem;
    rc = normalise(c, f, &ok);
    if (rc || !ok) goto drop;

    if (!(slot = fact_slot(f))) goto nomem;
    if (c->ht_cap == 0 || 2 * (r->n_facts + 1) > c->ht_cap)
        if ((rc = slot_table_grow(c))) goto drop;
    uint64_t h = XXH3_64bits(slot, strlen(slot));
    size_t cell = 0, found = slot_find(c, slot, h, &cell);
    if (found) {
        const fact *first = &r->facts[found - 1];
        if (strcmp(first->target_new, f->target_new)) {
            char a[200], b[200];
            ingest_excerpt(a, sizeof a, f->target_new, strlen(f->target_new));
            ingest_excerpt(b, sizeof b, first->target_new,
                           strlen(first->target_new));
            rc = ingest_report(c, f->source_line, "target_new '%s' differs "
                                "from '%s' given for the same fact on line "
                                "%zu", a, b, first->source_line);
            goto drop;
        }
    }
    if (r->n_facts == c->cap_facts) {
        size_t cap = c->cap_facts ? 2 * c->cap_facts : 64;
        fact *nf = realloc(r->facts, cap * sizeof *nf);
        char **ns = realloc(c->slots, cap * sizeof *ns);
        if (nf) r->facts = nf;
        if (ns) c->slots = ns;
        if (!nf || !ns) goto nomem;
        c->cap_facts = cap;
    }
    if (!found) {
        c->ht[cell] = r->n_facts + 1;
        c->ht_hash[cell] = h;
    }
    c->slots[r->n_facts] = slot;
    r->facts[r->n_facts++] = *f;
    memset(f, 0, sizeof *f);
    return 0;
nomem:
    rc = err_set(ERR_NOMEM, "out of memory");
drop:
    free(slot);
    fact_free(f);
    return rc;
}

/* ---- the file ------------------------------------------------------- */

static int read_all(ingest_ctx *c, int from_stdin, char **out, size_t *len)
{
    struct stat st;
    *out = NULL;
    *len = 0;
    int fd = from_stdin ? dup(STDIN_FILENO)
                        : open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ingest_fatal(c, e == ENOENT ? ERR_NOTFOUND : ERR_IO, 0,
                            "cannot open: %s", strerror(e));
    }
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return ingest_fatal(c, ERR_IO, 0, "cannot stat: %s", strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return ingest_fatal(c, ERR_INVALID, 0, "is a directory, not a fact "
                            "list");
    }
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > INGEST_MAX_FILE) {
        close(fd);
        return ingest_fatal(c, ERR_FORMAT, 0, "the file is %lld bytes; the "
                            "limit is %zu", (long long)st.st_size,
                            INGEST_MAX_FILE);
    }
    char *buf = malloc(cap);
    size_t n = 0;
    if (!buf) goto nomem;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > INGEST_MAX_FILE) {
                free(buf);
                close(fd);
                return ingest_fatal(c, ERR_FORMAT, 0, "the file is larger "
                                    "than %zu bytes", INGEST_MAX_FILE);
            }
            char *b = realloc(buf, 2 * cap);
            if (!b) goto nomem;
            buf = b;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return ingest_fatal(c, ERR_IO, 0, "cannot read: %s",
                                strerror(e));
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
nomem:
    free(buf);
    close(fd);
    return ingest_fatal(c, ERR_NOMEM, 0, "out of memory reading the file");
}

/* 1 for UTF-16 or UTF-32: a byte order mark, or ASCII text with zero
 * bytes between its characters. */
static int looks_wide(const unsigned char *u, size_t len)
{
    if (len >= 2 && ((u[0] == 0xff && u[1] == 0xfe) ||
                     (u[0] == 0xfe && u[1] == 0xff)))
        return 1;
    if (len >= 4 && !u[0] && !u[1] && u[2] == 0xfe && u[3] == 0xff) return 1;
    size_t pairs = (len < 256 ? len : 256) / 2, le = 0, be = 0;
    for (size_t i = 0; i < pairs; i++) {
        if (u[2 * i] && !u[2 * i + 1]) le++;
        if (!u[2 * i] && u[2 * i + 1]) be++;
    }
    return pairs >= 2 && (le * 10 >= pairs * 9 || be * 10 >= pairs * 9);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

int ingest_read(const char *path, ingest_format fmt,
                const ingest_options *opt, ingest_result *res)
{
    static const ingest_options defaults = {0};
    memset(res, 0, sizeof *res);
    if (!opt) opt = &defaults;
    int from_stdin = !strcmp(path, "-");
    if (from_stdin) path = INGEST_STDIN;
    ingest_ctx c = {.path = path, .opt = opt, .res = res,
                    .max_errors = opt->max_errors ? opt->max_errors : 100};
    char *buf = NULL;
    size_t len = 0;
    int rc;
    if ((unsigned)fmt > INGEST_ZSRE) {
        rc = ingest_fatal(&c, ERR_INVALID, 0, "unknown format %d", (int)fmt);
        goto out;
    }
    if ((rc = read_all(&c, from_stdin, &buf, &len))) goto out;
    const unsigned char *u = (const unsigned char *)buf;
    if (looks_wide(u, len)) {
        rc = ingest_fatal(&c, ERR_FORMAT, 1, "the file is UTF-16 or UTF-32 "
                          "text; stamp reads UTF-8 (convert it, e.g. with "
                          "iconv -t UTF-8)");
        goto out;
    }
    const char *text = buf;
    if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
        text += 3; /* UTF-8 byte order mark */
        len -= 3;
    }
    size_t k = 0;
    while (k < len && isspace((unsigned char)text[k])) k++;
    if (k == len) {
        rc = ingest_fatal(&c, ERR_FORMAT, 1, "empty file: no %s",
                          fmt == INGEST_CSV ||
                          (fmt == INGEST_AUTO && !ends_with(path, ".json") &&
                           !ends_with(path, ".jsonl"))
                              ? "header row"
                              : "records");
        goto out;
    }
    if (fmt == INGEST_AUTO) {
        if (ends_with(path, ".csv")) fmt = INGEST_CSV;
        else if (ends_with(path, ".json") || ends_with(path, ".jsonl") ||
                 text[k] == '[' || text[k] == '{')
            fmt = INGEST_AUTO; /* a JSON format, guessed from a record */
        else fmt = INGEST_CSV;
    }
    if (fmt == INGEST_CSV) {
        res->format = INGEST_CSV;
        rc = ingest_parse_csv(&c, text, len);
    } else {
        rc = ingest_parse_json(&c, text, len, fmt);
    }
out:
    free(buf);
    for (size_t i = 0; i < res->n_facts; i++) free(c.slots[i]);
    free(c.slots);
    free(c.ht);
    free(c.ht_hash);
    if (rc) {
        for (size_t i = 0; i < res->n_facts; i++) fact_free(&res->facts[i]);
        free(res->facts);
        res->facts = NULL;
        res->n_facts = 0;
    }
    return rc;
}

void ingest_result_free(ingest_result *res)
{
    if (!res) return;
    for (size_t i = 0; i < res->n_facts; i++) fact_free(&res->facts[i]);
    free(res->facts);
    for (size_t i = 0; i < res->n_problems; i++) free(res->problems[i].message);
    free(res->problems);
    memset(res, 0, sizeof *res);
}
