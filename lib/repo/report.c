/* report: the store's history as one HTML page (see report.h). Two
 * steps: report_gather reads everything the page shows in one read
 * transaction into plain structs (LMDB memory never outlives it), then
 * the page is written from them into a buffer (report_impl.h). The
 * chain is walked once from HEAD, each record parsed once; the queue is
 * streamed and only its first entries kept, so the cost is the records
 * on the chain, whatever the size of the fact database. */
#include "repo/report.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "repo/history.h"
#include "repo/report_impl.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- what the page shows ----------------------------------------------- */

/* The phases of a commit's "timings" (docs/commit-record.md), and what
 * the page calls them; "other" is the rest of "total". */
enum { PH_STATS, PH_FACTOR, PH_PREPARE, PH_SCORES_BEFORE, PH_Z, PH_SOLVE,
       PH_SCORES_AFTER, PH_WRITE, PH_OTHER, N_PHASES };
static const char *const phase_key[N_PHASES] = {
    "stats", "factor", "prepare", "scores_before", "z", "solve",
    "scores_after", "write", NULL};
static const char *const phase_name[N_PHASES] = {
    "key statistics", "factorisation", "prepare", "scores before",
    "target vectors (z)", "solve", "scores after", "write", "other"};

enum { ES, PS, NS };
static const char *const score_key[3] = {"es", "ps", "ns"};
static const char *const score_count[3] = {"n_facts", "n_paraphrase",
                                           "n_neighbor"};
static const char *const score_name[3] = {"ES", "PS", "NS"};

typedef struct {
    long long layer;
    double delta_norm;
} rlayer;

typedef struct {
    uint64_t id, parent, reverts, reverted_by;
    int is_revert;
    int on_chain;                /* on HEAD's chain (else undone exactly) */
    char *time, *message, *method;
    long long n_facts, n_failed;
    int scored;                  /* the record has "scores" */
    double before[3], after[3];  /* ES PS NS in %; NaN: over no prompts */
    double diff_bytes;           /* NaN when the record has none */
    double phase[N_PHASES];      /* seconds; NaN when not in the record */
    double total;
    rlayer *layers;
    size_t n_layers;
} rcommit;

typedef struct {
    uint64_t commit, version;
    char *prompt, *target_new, *target_true, *reason;
} rfailed;

typedef struct {
    uint64_t version;
    char *prompt, *target_new, *target_true, *source;
} rqueued;

typedef struct {
    char *store_path, *model_dir, *model_id, *created, *config, *corpus;
    uint64_t head;
    rcommit *c;          /* every commit in the store, oldest first */
    size_t n;
    size_t chain;        /* of them on HEAD's chain */
    json_t *latest;      /* the newest commit that is not a revert
                            commit: its whole record */
    const rcommit *latest_c;
    rfailed *failed;     /* newest first, at most opt->failed_entries */
    size_t n_failed, n_failed_all;
    rqueued *queue;
    size_t n_queue, queued;
} report_data;

static void data_free(report_data *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->c[i].time);
        free(d->c[i].message);
        free(d->c[i].method);
        free(d->c[i].layers);
    }
    free(d->c);
    for (size_t i = 0; i < d->n_failed; i++) {
        free(d->failed[i].prompt);
        free(d->failed[i].target_new);
        free(d->failed[i].target_true);
        free(d->failed[i].reason);
    }
    free(d->failed);
    for (size_t i = 0; i < d->n_queue; i++) {
        free(d->queue[i].prompt);
        free(d->queue[i].target_new);
        free(d->queue[i].target_true);
        free(d->queue[i].source);
    }
    free(d->queue);
    json_decref(d->latest);
    free(d->store_path);
    free(d->model_dir);
    free(d->model_id);
    free(d->created);
    free(d->config);
    free(d->corpus);
}

/* ---- reading the store --------------------------------------------------- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static char *json_str_dup(const json_t *o, const char *key)
{
    return dup_or_null(json_string_value(json_object_get(o, key)));
}

static double json_num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static uint64_t json_u64(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0
               ? (uint64_t)json_integer_value(v) : 0;
}

/* A score as `stamp log` reads it: NaN (n/a) when null or taken over no
 * prompts. */
static double score_of(const json_t *scores, int k)
{
    json_t *v = json_object_get(scores, score_key[k]);
    json_t *cnt = json_object_get(scores, score_count[k]);
    if (!json_is_number(v) || (json_is_integer(cnt) && !json_integer_value(cnt)))
        return NAN;
    return json_number_value(v);
}

static int commit_from_record(rcommit *c, uint64_t id, const json_t *rec)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    c->parent = json_u64(rec, "parent");
    const char *kind = json_string_value(json_object_get(rec, "kind"));
    c->is_revert = kind && !strcmp(kind, "revert");
    if (c->is_revert) c->reverts = json_u64(rec, "reverts");
    c->time = json_str_dup(rec, "time");
    c->message = json_str_dup(rec, "message");
    c->method = json_str_dup(rec, "method");
    json_t *nf = json_object_get(rec, "n_facts");
    json_t *vs = json_object_get(rec, "versions");
    c->n_facts = json_is_integer(nf) ? json_integer_value(nf)
                 : (long long)json_array_size(vs);
    c->n_failed = (long long)json_array_size(json_object_get(rec, "failed"));
    json_t *sc = json_object_get(rec, "scores");
    c->scored = json_is_object(sc);
    for (int k = 0; k < 3; k++) {
        c->before[k] = score_of(json_object_get(sc, "before"), k);
        c->after[k] = score_of(json_object_get(sc, "after"), k);
    }
    c->diff_bytes = json_num(rec, "diff_bytes");
    json_t *tm = json_object_get(rec, "timings");
    double known = 0;
    c->total = json_num(tm, "total");
    for (int p = 0; p < PH_OTHER; p++) {
        c->phase[p] = json_num(tm, phase_key[p]);
        if (!isnan(c->phase[p])) known += c->phase[p];
    }
    c->phase[PH_OTHER] = isnan(c->total) ? NAN
                         : c->total > known ? c->total - known : 0;
    json_t *layers = json_object_get(rec, "layers"), *l;
    size_t n = json_array_size(layers), i;
    if (n && !(c->layers = calloc(n, sizeof *c->layers)))
        return err_set(ERR_NOMEM, "out of memory");
    json_array_foreach(layers, i, l) {
        json_t *ln = json_object_get(l, "layer");
        if (!json_is_integer(ln)) continue;
        c->layers[c->n_layers++] = (rlayer){json_integer_value(ln),
                                            json_num(l, "delta_norm")};
    }
    if ((!c->time && json_object_get(rec, "time")) ||
        (!c->message && json_object_get(rec, "message")))
        return err_set(ERR_NOMEM, "out of memory");
    return 0;
}

/* The facts a commit could not write ("failed": version and reason),
 * with their prompts, while fewer than `limit` are kept. */
static int collect_failed(store_txn *t, report_data *d, uint64_t id,
                          const json_t *rec, size_t limit)
{
    json_t *failed = json_object_get(rec, "failed"), *f;
    size_t i;
    d->n_failed_all += json_array_size(failed);
    json_array_foreach(failed, i, f) {
        if (d->n_failed >= limit) break;
        if (!d->failed && !(d->failed = calloc(limit, sizeof *d->failed)))
            return err_set(ERR_NOMEM, "out of memory");
        rfailed *r = &d->failed[d->n_failed++];
        r->commit = id;
        r->version = json_u64(f, "version");
        r->reason = json_str_dup(f, "reason");
        store_version v = {0};
        int rc = r->version ? store_version_get(t, r->version, &v) : ERR_NOTFOUND;
        if (rc == ERR_NOTFOUND) continue; /* the reason alone */
        if (rc) return rc;
        r->prompt = fact_prompt_text(&v.f);
        r->target_new = dup_or_null(v.f.target_new);
        r->target_true = dup_or_null(v.f.target_true);
        store_version_free(&v);
        if (!r->prompt || !r->target_new || !r->target_true)
            return err_set(ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* Every commit record, each parsed once, newest first (the facts that
 * failed are kept newest first); then HEAD's chain along the parents,
 * and which revert commit on it reverted each commit (the newest one,
 * as `stamp log` says). */
static int gather_commits(store_txn *t, report_data *d, const report_options *o)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = store_head(t, &d->head);
    if (!rc) rc = store_commit_ids(t, &ids, &n);
    if (rc) return rc;
    if (n && !(d->c = calloc(n, sizeof *d->c))) {
        free(ids);
        return err_set(ERR_NOMEM, "out of memory");
    }
    d->n = n; /* zeroed: data_free may free them however far this gets */
    for (size_t i = n; !rc && i-- > 0;) {
        json_t *rec = NULL;
        if ((rc = history_record(t, ids[i], &rec))) break;
        rcommit *c = &d->c[i];
        rc = commit_from_record(c, ids[i], rec);
        if (!rc && !c->is_revert && !d->latest) {
            d->latest = json_incref(rec);
            d->latest_c = c;
        }
        if (!rc) rc = collect_failed(t, d, ids[i], rec, o->failed_entries);
        json_decref(rec);
    }
    uint64_t max = n ? ids[n - 1] : 0;
    free(ids);
    if (rc) return rc;
    /* an index by id (ids are 1, 2, ...; history_record checked that
     * each parent is an older commit) */
    size_t *at = calloc(max + 1, sizeof *at);
    if (!at) return err_set(ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) at[d->c[i].id] = i + 1;
    for (uint64_t id = d->head; id && id <= max && at[id];) {
        rcommit *c = &d->c[at[id] - 1];
        c->on_chain = 1;
        d->chain++;
        id = c->parent;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t r = d->c[i].reverts;
        if (d->c[i].on_chain && d->c[i].is_revert && r <= max && at[r] &&
            d->c[at[r] - 1].on_chain)
            d->c[at[r] - 1].reverted_by = d->c[i].id;
    }
    free(at);
    return 0;
}

typedef struct {
    report_data *d;
    size_t limit;
} queue_ctx;

static int queue_entry(void *ctx, const store_version *v)
{
    queue_ctx *q = ctx;
    report_data *d = q->d;
    if (!d->queue && !(d->queue = calloc(q->limit, sizeof *d->queue)))
        return err_set(ERR_NOMEM, "out of memory");
    rqueued *r = &d->queue[d->n_queue++];
    char src[64];
    snprintf(src, sizeof src, ":%zu", v->f.source_line);
    size_t len = strlen(v->f.source_file) + strlen(src) + 1;
    r->version = v->id;
    r->prompt = fact_prompt_text(&v->f);
    r->target_new = strdup(v->f.target_new);
    r->target_true = strdup(v->f.target_true);
    if ((r->source = malloc(len))) {
        memcpy(r->source, v->f.source_file, strlen(v->f.source_file));
        memcpy(r->source + strlen(v->f.source_file), src, strlen(src) + 1);
    }
    if (!r->prompt || !r->target_new || !r->target_true || !r->source)
        return err_set(ERR_NOMEM, "out of memory");
    return 0;
}

static int meta_opt(store_txn *t, const char *key, char **out)
{
    int rc = store_meta_get(t, key, out);
    if (rc == ERR_NOTFOUND) {
        *out = NULL;
        return 0;
    }
    return rc;
}

static int report_gather(store *s, const report_options *o, report_data *d)
{
    store_txn *t = NULL;
    char abs[PATH_MAX];
    d->store_path = strdup(realpath(store_dir(s), abs) ? abs : store_dir(s));
    if (!d->store_path) return err_set(ERR_NOMEM, "out of memory");
    int rc = store_txn_begin(s, &t, 0);
    if (!rc) rc = meta_opt(t, "model_dir", &d->model_dir);
    if (!rc) rc = meta_opt(t, "model_id", &d->model_id);
    if (!rc) rc = meta_opt(t, "created", &d->created);
    if (!rc) rc = meta_opt(t, "config", &d->config);
    if (!rc) rc = meta_opt(t, "corpus", &d->corpus);
    if (!rc) rc = gather_commits(t, d, o);
    if (!rc) rc = store_queue_count(t, &d->queued);
    if (!rc && o->queue_entries && d->queued) {
        queue_ctx q = {d, o->queue_entries};
        rc = store_queue_foreach(t, o->queue_entries, queue_entry, &q);
    }
    store_txn_abort(t);
    return rc;
}

/* ---- the page -------------------------------------------------------------- */

static const char page_css[] =
    ":root{color-scheme:light;--fg:#1b1b1b;--muted:#4f4f4f;--line:#d4d4d4;"
    "--band:#f3f5f7;--bad:#9c2c07}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,"
    "'Helvetica Neue',Arial,sans-serif;color:var(--fg);background:#fff}\n"
    "header,nav,main,footer{max-width:1840px;margin:0 auto;padding:0 20px}\n"
    "h1{font-size:1.7rem;margin:18px 0 2px}\n"
    "h2{font-size:1.35rem;margin:36px 0 10px;padding-top:10px;"
    "border-top:2px solid var(--line)}\n"
    "h3{font-size:1.1rem;margin:20px 0 6px}\n"
    "p{max-width:75em}\n"
    "a{color:#00578a}\n"
    ".sub{color:var(--muted);margin:0 0 8px}\n"
    "nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:4px 18px;"
    "padding:4px 0;margin:0}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(170px,1fr));gap:10px;margin:0;padding:0}\n"
    ".cards div{background:var(--band);padding:8px 12px;border-radius:6px}\n"
    ".cards dt{font-size:.85rem;color:var(--muted)}\n"
    ".cards dd{margin:0;font-size:1.3rem;font-weight:600;"
    "font-variant-numeric:tabular-nums;overflow-wrap:anywhere}\n"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(min(100%,600px),1fr));gap:16px}\n"
    "figure.chart{margin:0;padding:10px;border:1px solid var(--line);"
    "border-radius:6px;min-width:0}\n"
    "figure.chart svg[role=img]{width:100%;height:auto;display:block}\n"
    "svg .grid line{stroke:#e2e2e2}\n"
    "svg path,svg line{vector-effect:non-scaling-stroke}\n"
    "svg text{font-size:13px;fill:#333}\n"
    "svg .yl{text-anchor:end}\n"
    "svg .xl text,svg .axis{text-anchor:middle}\n"
    ".legend{list-style:none;display:flex;flex-wrap:wrap;gap:2px 16px;"
    "padding:0;margin:4px 0;font-size:.9rem}\n"
    ".legend svg.key{width:28px;height:12px;vertical-align:middle;"
    "margin-right:5px}\n"
    "figcaption{font-size:.9rem;color:var(--muted)}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-size:.92rem;margin:0 0 12px}\n"
    "table.wide{width:100%}\n"
    "table.kv th{min-width:12em}\n"
    ".cards.small{grid-template-columns:repeat(auto-fill,minmax(190px,1fr));"
    "gap:6px;margin-bottom:12px}\n"
    ".cards.small dd{font-size:1rem;font-weight:500}\n"
    "caption{text-align:left;font-weight:600;padding:4px 0}\n"
    "th,td{padding:5px 8px;border-bottom:1px solid var(--line);"
    "text-align:left;vertical-align:top}\n"
    "thead th{background:var(--band);white-space:nowrap}\n"
    "tbody th{font-weight:600}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;"
    "white-space:nowrap}\n"
    "tr.reverted td,tr.reverted th{color:var(--muted)}\n"
    "tr.reverted td.msg span.m{text-decoration:line-through}\n"
    ".tag{display:inline-block;font-size:.8rem;padding:0 6px;"
    "border-radius:4px;background:#fde9e1;color:var(--bad);"
    "border:1px solid #efb59f;white-space:nowrap}\n"
    ".tag.rv{background:#e6f0f8;color:#00486f;border-color:#9cc3e0}\n"
    "code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;"
    "font-size:.88em;overflow-wrap:anywhere}\n"
    ".note{background:#fff8e1;border-left:4px solid #E69F00;"
    "padding:8px 12px;max-width:75em}\n"
    "footer{color:var(--muted);font-size:.85rem;padding-bottom:24px}\n"
    "@media (max-width:720px){\n"
    "body{font-size:15px}\n"
    "header,nav,main,footer{padding:0 12px}\n"
    "table.rows thead{position:absolute;width:1px;height:1px;"
    "overflow:hidden;clip:rect(0 0 0 0)}\n"
    "table.rows,table.rows tbody,table.rows caption{display:block}\n"
    "table.rows tr{display:block;border:1px solid var(--line);"
    "border-radius:6px;margin:0 0 10px;padding:4px 10px}\n"
    "table.rows td,table.rows tbody th{display:block;position:relative;"
    "border:0;padding:2px 0 2px 40%;text-align:left;white-space:normal;"
    "min-height:1.6em}\n"
    "table.rows td::before,table.rows tbody th::before{"
    "content:attr(data-label);position:absolute;left:0;width:37%;"
    "color:var(--muted);font-weight:400;font-size:.85rem}\n"
    "svg text{font-size:24px}\n"
    "svg .axis,svg .unit{display:none}\n"
    "}\n";

/* A table cell with its column's name for the phone layout (data-label:
 * the page's narrow screens show each row as a card). */
static void td_open(rbuf *b, const char *label, const char *cls)
{
    rb_printf(b, "<td data-label=\"%s\"%s%s%s>", label, cls ? " class=\"" : "",
              cls ? cls : "", cls ? "\"" : "");
}

static void td_text(rbuf *b, const char *label, const char *cls,
                    const char *text)
{
    td_open(b, label, cls);
    rb_esc(b, text ? text : "-");
    rb_put(b, "</td>");
}

static void th_row(rbuf *b, const char *label, uint64_t id)
{
    rb_printf(b, "<th scope=\"row\" data-label=\"%s\">%llu</th>", label,
              (unsigned long long)id);
}

static void thead(rbuf *b, const char *const *cols, size_t n)
{
    rb_put(b, "<thead><tr>");
    for (size_t i = 0; i < n; i++)
        rb_printf(b, "<th scope=\"col\">%s</th>", cols[i]);
    rb_put(b, "</tr></thead>\n<tbody>\n");
}

/* "2026-12-07T15:16:12Z" as "2026-12-07 15:16", in a <time> element */
static void put_time(rbuf *b, const char *iso)
{
    if (!iso) {
        rb_put(b, "-");
        return;
    }
    rb_put(b, "<time datetime=\"");
    rb_esc(b, iso);
    rb_put(b, "\">");
    if (strlen(iso) >= 16 && iso[10] == 'T') {
        rb_putn(b, iso, 10);
        rb_put(b, " ");
        rb_putn(b, iso + 11, 5);
    } else {
        rb_esc(b, iso);
    }
    rb_put(b, "</time>");
}

static void put_target(rbuf *b, const char *target)
{
    /* targets carry the leading space they are appended with */
    rb_esc(b, target && target[0] == ' ' ? target + 1 : target ? target : "");
}

static void card(rbuf *b, const char *label, const char *value)
{
    rb_printf(b, "<div><dt>%s</dt><dd>", label);
    rb_esc(b, value);
    rb_put(b, "</dd></div>\n");
}

static const rcommit *newest_scored(const report_data *d)
{
    for (size_t i = d->n; i-- > 0;)
        if (!d->c[i].is_revert && d->c[i].scored) return &d->c[i];
    return NULL;
}

static void section_summary(rbuf *b, const report_data *d)
{
    size_t reverted = 0;
    long long facts = 0, facts_undone = 0;
    double diff = 0, total = 0;
    char v[64];
    for (size_t i = 0; i < d->n; i++) {
        const rcommit *c = &d->c[i];
        reverted += c->reverted_by != 0;
        if (c->on_chain && !c->reverted_by) facts += c->n_facts;
        else facts_undone += c->n_facts;
        if (!isnan(c->diff_bytes)) diff += c->diff_bytes;
        if (!isnan(c->total)) total += c->total;
    }
    rb_put(b, "<section id=\"summary\" aria-labelledby=\"summary-h\">\n"
              "<h2 id=\"summary-h\">Summary</h2>\n");
    if (!d->n)
        rb_put(b, "<p class=\"note\"><strong>No commits yet:</strong> HEAD "
                  "is the base model. There is no history to chart; the base "
                  "model and the queue are below.</p>\n");
    else if (!d->head)
        rb_put(b, "<p class=\"note\"><strong>HEAD is the base model:</strong> "
                  "every commit below was undone exactly (reverted while HEAD, "
                  "or reset away). The store keeps them with their diffs.</p>\n");
    rb_put(b, "<dl class=\"cards\">\n");
    snprintf(v, sizeof v, "commit %llu", (unsigned long long)d->head);
    card(b, "HEAD", d->head ? v : "base model");
    snprintf(v, sizeof v, "%zu", d->n);
    card(b, "commits in the store", v);
    snprintf(v, sizeof v, "%zu", d->chain);
    card(b, "on HEAD's chain", v);
    snprintf(v, sizeof v, "%zu", reverted);
    card(b, "reverted by a revert commit", v);
    snprintf(v, sizeof v, "%zu", d->n - d->chain);
    card(b, "undone exactly (off the chain)", v);
    snprintf(v, sizeof v, "%lld", facts);
    card(b, "edits in effect", v);
    snprintf(v, sizeof v, "%lld", facts_undone);
    card(b, "edits undone", v);
    snprintf(v, sizeof v, "%zu", d->queued);
    card(b, "queued facts", v);
    snprintf(v, sizeof v, "%zu", d->n_failed_all);
    card(b, "facts that failed to commit", v);
    const rcommit *s = newest_scored(d);
    if (s)
        for (int k = 0; k < 3; k++) {
            char label[64], sc[16];
            snprintf(label, sizeof label, "%s after commit %llu",
                     score_name[k], (unsigned long long)s->id);
            card(b, label, fmt_score(sc, sizeof sc, s->after[k]));
        }
    card(b, "weight diffs stored", fmt_bytes(v, sizeof v, diff));
    card(b, "time of all commits", fmt_seconds(v, sizeof v, total));
    rb_put(b, "</dl>\n</section>\n");
}

static void section_model(rbuf *b, const report_data *d)
{
    rb_put(b, "<section id=\"model\" aria-labelledby=\"model-h\">\n"
              "<h2 id=\"model-h\">Base model</h2>\n<div class=\"scroll\">"
              "<table class=\"kv\"><caption>The model the store edits (commit 0)</caption>"
              "\n<tbody>\n");
    json_t *cfg = d->config ? json_loads(d->config, 0, NULL) : NULL;
    const char *name = NULL;
    char *copy = d->model_dir ? strdup(d->model_dir) : NULL;
    if (copy) name = basename(copy);
    struct { const char *label, *value; } rows[] = {
        {"name", name},
        {"directory", d->model_dir},
        {"model id (hash)", d->model_id},
        {"type", json_string_value(json_object_get(cfg, "model_type"))},
        {"store", d->store_path},
        {"store created", d->created},
        {"key statistics corpus", d->corpus},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].value) continue;
        rb_printf(b, "<tr><th scope=\"row\">%s</th><td>", rows[i].label);
        if (i == 1 || i == 2 || i >= 4) rb_put(b, "<code>");
        rb_esc(b, rows[i].value);
        if (i == 1 || i == 2 || i >= 4) rb_put(b, "</code>");
        rb_put(b, "</td></tr>\n");
    }
    /* the shape, from config.json as the store keeps it */
    long long L = json_integer_value(json_object_get(cfg, "n_layer"));
    long long C = json_integer_value(json_object_get(cfg, "n_embd"));
    long long H = json_integer_value(json_object_get(cfg, "n_head"));
    long long V = json_integer_value(json_object_get(cfg, "vocab_size"));
    long long P = json_integer_value(json_object_get(cfg, "n_positions"));
    json_t *inner = json_object_get(cfg, "n_inner");
    long long F = json_is_integer(inner) ? json_integer_value(inner) : 4 * C;
    if (L && C) {
        rb_printf(b, "<tr><th scope=\"row\">shape</th><td>%lld layers, "
                  "d_model %lld, %lld heads, d_ff %lld, vocabulary %lld, "
                  "%lld positions</td></tr>\n", L, C, H, F, V, P);
        /* GPT-2: embeddings, per layer two layer norms, attention and
         * MLP with biases, the final layer norm */
        long long params = V * C + P * C + 2 * C +
                           L * (4 * C + 3 * C * C + 3 * C + C * C + C +
                                2 * C * F + F + C);
        rb_printf(b, "<tr><th scope=\"row\">parameters</th><td>%lld</td>"
                  "</tr>\n", params);
    }
    if (!d->model_dir && !cfg)
        rb_put(b, "<tr><th scope=\"row\">model</th><td>the store does not "
                  "name its base model</td></tr>\n");
    rb_put(b, "</tbody></table></div>\n</section>\n");
    free(copy);
    json_decref(cfg);
}

/* Ids and one column of values of the chain's commits, for a chart. */
typedef struct {
    uint64_t *x;
    double *y;   /* (n_series, n) */
    size_t n;
} series_buf;

static int series_alloc(series_buf *sb, size_t n, size_t n_series)
{
    sb->n = n;
    sb->x = calloc(n ? n : 1, sizeof *sb->x);
    sb->y = malloc((n ? n : 1) * (n_series ? n_series : 1) * sizeof *sb->y);
    return sb->x && sb->y ? 0 : -1;
}

static void series_free(series_buf *sb)
{
    free(sb->x);
    free(sb->y);
}

static void section_scores(rbuf *b, const report_data *d,
                           const report_options *o)
{
    rb_put(b, "<section id=\"scores\" aria-labelledby=\"scores-h\">\n"
              "<h2 id=\"scores-h\">Scores over commits</h2>\n"
              "<p>Each commit scores the facts it stamps, CounterFact style, "
              "on the model before and after it: <strong>ES</strong> "
              "(efficacy: the share whose rewrite prompt prefers the new "
              "answer), <strong>PS</strong> (the same on paraphrases), "
              "<strong>NS</strong> (neighbourhood: prompts about other "
              "subjects that must keep their answer). Revert commits are not "
              "scored; a commit made with --no-scores has no value.</p>\n");
    series_buf sb;
    if (series_alloc(&sb, d->n, 6)) {
        b->oom = 1;
        series_free(&sb);
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        const rcommit *c = &d->c[i];
        sb.x[i] = c->id;
        for (int k = 0; k < 3; k++) {
            int has = !c->is_revert && c->scored;
            sb.y[k * d->n + i] = has ? c->after[k] : NAN;
            sb.y[(3 + k) * d->n + i] = has ? c->before[k] : NAN;
        }
    }
    chart_series after[3] = {{"ES after", sb.y}, {"PS after", sb.y + d->n},
                             {"NS after", sb.y + 2 * d->n}};
    chart_series before[3] = {{"ES before", sb.y + 3 * d->n},
                              {"PS before", sb.y + 4 * d->n},
                              {"NS before", sb.y + 5 * d->n}};
    chart_spec c1 = {"chart-after", "ES, PS and NS after each commit", "%",
                     "The scores of each commit's facts on the model right "
                     "after it, in percent",
                     CHART_LINES, sb.x, d->n, after, 3, 0, 100, o->chart_points};
    chart_spec c2 = {"chart-before", "ES, PS and NS before each commit", "%",
                     "The same facts on the model before the commit: what "
                     "the model said before it was edited",
                     CHART_LINES, sb.x, d->n, before, 3, 0, 100, o->chart_points};
    rb_put(b, "<div class=\"charts\">\n");
    chart_draw(b, &c1);
    chart_draw(b, &c2);
    rb_put(b, "</div>\n<p class=\"note\"><strong>Retention is not charted "
              "over commits:</strong> commit records do not hold it. "
              "Retention (the share of untouched facts the base model knew "
              "that the model still answers) needs the model run on a "
              "sample of facts; <code>stamp eval</code> measures it on the "
              "current model only. ");
    if (o->eval)
        rb_put(b, "The value from the evaluation given to this report is "
                  "under <a href=\"#outcomes\">Edits not taken and facts "
                  "lost</a>.");
    else
        rb_put(b, "Run <code>stamp eval --facts --json &gt; eval.json</code> "
                  "and <code>stamp report --eval eval.json</code> to show "
                  "it here.");
    rb_put(b, "</p>\n</section>\n");
    series_free(&sb);
}

static void section_weights(rbuf *b, const report_data *d,
                            const report_options *o)
{
    /* the layers any commit changed, ascending (at most 10 drawn) */
    long long layers[10];
    size_t n_layers = 0, more = 0;
    for (size_t i = 0; i < d->n; i++)
        for (size_t k = 0; k < d->c[i].n_layers; k++) {
            long long l = d->c[i].layers[k].layer;
            size_t j = 0;
            while (j < n_layers && layers[j] != l) j++;
            if (j < n_layers) continue;
            if (n_layers == 10) {
                more++;
                continue;
            }
            layers[n_layers++] = l;
        }
    for (size_t i = 1; i < n_layers; i++)
        for (size_t j = i; j > 0 && layers[j - 1] > layers[j]; j--) {
            long long t = layers[j];
            layers[j] = layers[j - 1];
            layers[j - 1] = t;
        }
    rb_put(b, "<section id=\"weights\" aria-labelledby=\"weights-h\">\n"
              "<h2 id=\"weights-h\">Weight change</h2>\n"
              "<p>The size of each commit's stored diff (what the store "
              "keeps to move the model across the commit exactly, both "
              "ways) and the Frobenius norm of each layer's update "
              "&#8214;&#916;W&#8214; (a revert commit's is the change it "
              "made back).</p>\n");
    series_buf sb;
    if (series_alloc(&sb, d->n, 1 + n_layers)) {
        b->oom = 1;
        series_free(&sb);
        return;
    }
    char names[10][32];
    chart_series norms[10];
    for (size_t i = 0; i < d->n; i++) {
        sb.x[i] = d->c[i].id;
        sb.y[i] = d->c[i].diff_bytes / 1024;
        for (size_t j = 0; j < n_layers; j++) {
            double v = NAN;
            for (size_t k = 0; k < d->c[i].n_layers; k++)
                if (d->c[i].layers[k].layer == layers[j])
                    v = d->c[i].layers[k].delta_norm;
            sb.y[(1 + j) * d->n + i] = v;
        }
    }
    for (size_t j = 0; j < n_layers; j++) {
        snprintf(names[j], sizeof names[j], "layer %lld", layers[j]);
        norms[j] = (chart_series){names[j], sb.y + (1 + j) * d->n};
    }
    chart_series diff = {"diff size", sb.y};
    chart_spec c1 = {"chart-diff", "Diff size per commit", "KiB",
                     "The bytes each commit's weight diffs take in the store, "
                     "in KiB",
                     CHART_LINES, sb.x, d->n, &diff, 1, 0, 0, o->chart_points};
    chart_spec c2 = {"chart-norm", "Update norm per layer", "",
                     "The Frobenius norm of the change each commit made to "
                     "each edited layer's MLP output weights",
                     CHART_LINES, sb.x, d->n, norms, n_layers, 0, 0,
                     o->chart_points};
    rb_put(b, "<div class=\"charts\">\n");
    chart_draw(b, &c1);
    if (n_layers) chart_draw(b, &c2);
    rb_put(b, "</div>\n");
    if (more)
        rb_printf(b, "<p>Commits changed more layers: the chart draws the "
                  "first 10 of them.</p>\n");
    rb_put(b, "</section>\n");
    series_free(&sb);
}

static void section_time(rbuf *b, const report_data *d,
                         const report_options *o)
{
    rb_put(b, "<section id=\"time\" aria-labelledby=\"time-h\">\n"
              "<h2 id=\"time-h\">Time per phase</h2>\n"
              "<p>Where each commit's time went, from its record: key "
              "statistics, their factorisation, the scores before, the "
              "target vectors (z, all rounds), the solve (all rounds), the "
              "scores after, the write; <em>other</em> is the rest of the "
              "total. Revert commits record their total only.</p>\n");
    series_buf sb;
    if (series_alloc(&sb, d->n, N_PHASES)) {
        b->oom = 1;
        series_free(&sb);
        return;
    }
    chart_series s[N_PHASES];
    for (size_t i = 0; i < d->n; i++) {
        sb.x[i] = d->c[i].id;
        for (int p = 0; p < N_PHASES; p++)
            sb.y[p * d->n + i] = d->c[i].phase[p];
    }
    for (int p = 0; p < N_PHASES; p++)
        s[p] = (chart_series){phase_name[p], sb.y + p * d->n};
    chart_spec c = {"chart-time", "Time per phase of each commit", "s",
                    "The seconds each phase of each commit took, stacked",
                    CHART_STACKED, sb.x, d->n, s, N_PHASES, 0, 0,
                    o->chart_points};
    rb_put(b, "<div class=\"charts\">\n");
    chart_draw(b, &c);
    rb_put(b, "</div>\n</section>\n");
    series_free(&sb);
}

static void scores_cell(rbuf *b, const char *label, const rcommit *c, int k)
{
    char s1[16], s2[16];
    td_open(b, label, "num");
    if (c->is_revert || !c->scored) rb_put(b, "-");
    else
        rb_printf(b, "%s &#8594; %s", fmt_score(s1, sizeof s1, c->before[k]),
                  fmt_score(s2, sizeof s2, c->after[k]));
    rb_put(b, "</td>");
}

static void commit_row(rbuf *b, const rcommit *c)
{
    char v[64];
    rb_printf(b, "<tr%s>", c->reverted_by || !c->on_chain
                              ? " class=\"reverted\"" : "");
    th_row(b, "commit", c->id);
    td_open(b, "date (UTC)", NULL);
    put_time(b, c->time);
    rb_put(b, "</td>");
    td_open(b, "message", "msg");
    rb_put(b, "<span class=\"m\">");
    rb_esc(b, c->message ? c->message : "");
    rb_put(b, "</span>");
    if (c->reverted_by)
        rb_printf(b, " <span class=\"tag\">reverted by %llu</span>",
                  (unsigned long long)c->reverted_by);
    if (!c->on_chain)
        rb_put(b, " <span class=\"tag\">undone: off the chain</span>");
    if (c->is_revert)
        rb_printf(b, " <span class=\"tag rv\">revert of %llu</span>",
                  (unsigned long long)c->reverts);
    rb_put(b, "</td>");
    td_text(b, "method", NULL, c->is_revert ? "revert" : c->method);
    td_open(b, "facts", "num");
    rb_printf(b, "%lld", c->n_facts);
    if (c->n_failed) rb_printf(b, " (%lld failed)", c->n_failed);
    rb_put(b, "</td>");
    for (int k = 0; k < 3; k++) {
        char label[32];
        snprintf(label, sizeof label, "%s before &#8594; after", score_name[k]);
        scores_cell(b, label, c, k);
    }
    td_text(b, "diff", "num", fmt_bytes(v, sizeof v, c->diff_bytes));
    td_open(b, "layers &#8214;&#916;W&#8214;", "num");
    for (size_t k = 0; k < c->n_layers; k++)
        rb_printf(b, "%sL%lld %.3g", k ? ", " : "", c->layers[k].layer,
                  c->layers[k].delta_norm);
    if (!c->n_layers) rb_put(b, "-");
    rb_put(b, "</td>");
    td_text(b, "time", "num", fmt_seconds(v, sizeof v, c->total));
    td_open(b, "phases", NULL);
    const char *sep = "";
    for (int p = 0; p < N_PHASES; p++) {
        if (isnan(c->phase[p]) || c->phase[p] < 0.005 ||
            (c->is_revert && p == PH_OTHER))
            continue;
        rb_printf(b, "%s%s %s", sep, phase_name[p],
                  fmt_seconds(v, sizeof v, c->phase[p]));
        sep = "; ";
    }
    if (!*sep) rb_put(b, "-");
    rb_put(b, "</td></tr>\n");
}

static void aggregate_row(rbuf *b, const rcommit *c, size_t n)
{
    double sum[3] = {0}, diff = 0, total = 0;
    size_t cnt[3] = {0}, reverted = 0, reverts = 0;
    long long facts = 0, failed = 0;
    char v[64];
    for (size_t i = 0; i < n; i++) {
        facts += c[i].n_facts;
        failed += c[i].n_failed;
        reverted += c[i].reverted_by != 0 || !c[i].on_chain;
        reverts += c[i].is_revert;
        if (!isnan(c[i].diff_bytes)) diff += c[i].diff_bytes;
        if (!isnan(c[i].total)) total += c[i].total;
        for (int k = 0; k < 3; k++)
            if (!c[i].is_revert && c[i].scored && !isnan(c[i].after[k])) {
                sum[k] += c[i].after[k];
                cnt[k]++;
            }
    }
    rb_printf(b, "<tr><th scope=\"row\" data-label=\"commits\">%llu&#8211;%llu"
              "</th>", (unsigned long long)c[0].id,
              (unsigned long long)c[n - 1].id);
    td_open(b, "count", "num");
    rb_printf(b, "%zu", n);
    if (reverts) rb_printf(b, " (%zu revert%s)", reverts, reverts == 1 ? "" : "s");
    rb_put(b, "</td>");
    td_open(b, "reverted or undone", "num");
    rb_printf(b, "%zu</td>", reverted);
    td_open(b, "facts", "num");
    rb_printf(b, "%lld", facts);
    if (failed) rb_printf(b, " (%lld failed)", failed);
    rb_put(b, "</td>");
    for (int k = 0; k < 3; k++) {
        char label[32];
        snprintf(label, sizeof label, "mean %s after", score_name[k]);
        td_text(b, label, "num",
                fmt_score(v, sizeof v, cnt[k] ? sum[k] / (double)cnt[k] : NAN));
    }
    td_text(b, "diff", "num", fmt_bytes(v, sizeof v, diff));
    td_text(b, "time", "num", fmt_seconds(v, sizeof v, total));
    rb_put(b, "</tr>\n");
}

static void section_commits(rbuf *b, const report_data *d,
                            const report_options *o)
{
    static const char *const cols[] = {
        "commit", "date (UTC)", "message", "method", "facts",
        "ES before &#8594; after", "PS before &#8594; after",
        "NS before &#8594; after", "diff", "layers &#8214;&#916;W&#8214;",
        "time", "phases"};
    rb_put(b, "<section id=\"commits\" aria-labelledby=\"commits-h\">\n"
              "<h2 id=\"commits-h\">Commits</h2>\n");
    if (!d->n) {
        rb_put(b, "<p>No commits: HEAD is the base model.</p>\n</section>\n");
        return;
    }
    size_t shown = d->n < o->table_commits ? d->n : o->table_commits;
    rb_put(b, "<p>Every commit in the store, newest first. A commit that a "
              "later revert commit undid is marked <span class=\"tag\">"
              "reverted by N</span>, one undone exactly (reverted while "
              "HEAD, or reset away: <code>stamp log</code> no longer lists "
              "it) <span class=\"tag\">undone: off the chain</span>; their "
              "messages are struck through. A revert commit is marked "
              "<span class=\"tag rv\">revert of N</span>. Scores are in "
              "percent; n/a: the facts had no such prompts.</p>\n");
    rb_printf(b, "<div class=\"scroll\"><table class=\"rows wide\"><caption>");
    if (shown < d->n)
        rb_printf(b, "The newest %zu of %zu commits", shown, d->n);
    else
        rb_printf(b, "All %zu commit%s", d->n, d->n == 1 ? "" : "s");
    rb_put(b, "</caption>\n");
    thead(b, cols, sizeof cols / sizeof cols[0]);
    for (size_t i = d->n; i-- > d->n - shown;) commit_row(b, &d->c[i]);
    rb_put(b, "</tbody></table></div>\n");
    size_t older = d->n - shown, per = o->aggregate ? o->aggregate : 100;
    if (older) {
        static const char *const acols[] = {
            "commits", "count", "reverted or undone", "facts", "mean ES after",
            "mean PS after", "mean NS after", "diff", "time"};
        rb_printf(b, "<h3>Older commits, per %zu</h3>\n<div class=\"scroll\">"
                  "<table class=\"rows\"><caption>The %zu older commits in "
                  "groups of %zu consecutive commits, newest first: sums, and "
                  "the mean of the scored commits' scores</caption>\n",
                  per, older, per);
        thead(b, acols, sizeof acols / sizeof acols[0]);
        /* groups aligned on the oldest commit: 1-100, 101-200, ... */
        size_t groups = (older + per - 1) / per;
        for (size_t g = groups; g-- > 0;) {
            size_t from = g * per, to = from + per < older ? from + per : older;
            aggregate_row(b, &d->c[from], to - from);
        }
        rb_put(b, "</tbody></table></div>\n");
    }
    rb_put(b, "</section>\n");
}

static void section_latest(rbuf *b, const report_data *d)
{
    const json_t *rec = d->latest;
    if (!rec) return;
    const rcommit *c = d->latest_c;
    rb_printf(b, "<section id=\"latest\" aria-labelledby=\"latest-h\">\n"
              "<h2 id=\"latest-h\">Latest commit: %llu%s</h2>\n",
              (unsigned long long)c->id,
              !c->on_chain ? " (undone: off the chain)"
              : c->reverted_by ? " (reverted)" : "");
    rb_put(b, "<div class=\"scroll\"><table class=\"kv\"><caption>How the newest commit "
              "(not a revert) was made</caption>\n<tbody>\n");
    rb_put(b, "<tr><th scope=\"row\">message</th><td>");
    rb_esc(b, json_string_value(json_object_get(rec, "message")));
    rb_put(b, "</td></tr>\n<tr><th scope=\"row\">method</th><td>");
    rb_esc(b, json_string_value(json_object_get(rec, "method")));
    rb_printf(b, "</td></tr>\n<tr><th scope=\"row\">facts</th><td>%lld, "
              "%zu failed</td></tr>\n",
              (long long)json_integer_value(json_object_get(rec, "n_facts")),
              json_array_size(json_object_get(rec, "failed")));
    json_t *zl = json_object_get(rec, "z_likely");
    if (json_is_integer(zl))
        rb_printf(b, "<tr><th scope=\"row\">target vectors</th><td>%lld of "
                  "%lld make the new answer likely (first round)</td></tr>\n",
                  (long long)json_integer_value(zl),
                  (long long)json_integer_value(json_object_get(rec, "n_facts")));
    double sw = json_num(rec, "shift_written");
    if (!isnan(sw))
        rb_printf(b, "<tr><th scope=\"row\">shift written</th><td>%.0f%% of "
                  "the target shift (first round)</td></tr>\n", 100 * sw);
    json_t *rounds = json_object_get(rec, "rounds");
    if (json_is_array(rounds)) {
        rb_printf(b, "<tr><th scope=\"row\">rounds</th><td>%zu",
                  json_array_size(rounds));
        const char *why = json_string_value(json_object_get(rec, "rounds_stopped"));
        if (why) {
            rb_put(b, " (stopped: ");
            rb_esc(b, why);
            rb_put(b, ")");
        }
        rb_put(b, "</td></tr>\n");
    }
    rb_printf(b, "<tr><th scope=\"row\">threads</th><td>%lld</td></tr>\n",
              (long long)json_integer_value(json_object_get(rec, "threads")));
    rb_put(b, "</tbody></table></div>\n");
    json_t *hp = json_object_get(rec, "hparams");
    const char *key;
    json_t *val;
    if (json_object_size(hp)) {
        rb_put(b, "<h3>Hyperparameters</h3>\n<dl class=\"cards small\">\n");
        json_object_foreach(hp, key, val) {
            rb_put(b, "<div><dt>");
            rb_esc(b, key);
            rb_put(b, "</dt><dd>");
            if (json_is_integer(val))
                rb_printf(b, "%lld", (long long)json_integer_value(val));
            else if (json_is_real(val))
                rb_printf(b, "%.6g", json_real_value(val));
            else {
                char *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
                rb_esc(b, text ? text : "?");
                free(text);
            }
            rb_put(b, "</dd></div>\n");
        }
        rb_put(b, "</dl>\n");
    }
    rb_put(b, "</section>\n");
}

/* The edits each recent commit did not take, by its own scores: the
 * records say how many, not which. */
static void recent_not_taken(rbuf *b, const report_data *d)
{
    size_t rows = 0;
    for (size_t i = d->n; i-- > 0 && rows < 10;)
        rows += !d->c[i].is_revert && d->c[i].scored;
    if (!rows) return;
    static const char *const cols[] = {"commit", "facts", "ES after",
                                       "edits not taken at commit time",
                                       "PS after"};
    rb_put(b, "<div class=\"scroll\"><table class=\"rows\"><caption>Edits "
              "not taken when they were committed, by each commit's own "
              "scores (the newest 10 scored commits)</caption>\n");
    thead(b, cols, 5);
    rows = 0;
    for (size_t i = d->n; i-- > 0 && rows < 10;) {
        const rcommit *c = &d->c[i];
        char v[32];
        if (c->is_revert || !c->scored) continue;
        rows++;
        rb_printf(b, "<tr%s>", c->reverted_by || !c->on_chain
                                  ? " class=\"reverted\"" : "");
        th_row(b, "commit", c->id);
        td_open(b, "facts", "num");
        rb_printf(b, "%lld</td>", c->n_facts);
        td_text(b, "ES after", "num", fmt_score(v, sizeof v, c->after[ES]));
        td_open(b, "edits not taken at commit time", "num");
        if (isnan(c->after[ES])) rb_put(b, "n/a");
        else
            rb_printf(b, "%.0f of %lld", (double)c->n_facts *
                      (100 - c->after[ES]) / 100, c->n_facts);
        rb_put(b, "</td>");
        td_text(b, "PS after", "num", fmt_score(v, sizeof v, c->after[PS]));
        rb_put(b, "</tr>\n");
    }
    rb_put(b, "</tbody></table></div>\n");
}

static void eval_tables(rbuf *b, const report_options *o)
{
    const json_t *e = o->eval;
    json_t *sc = json_object_get(e, "scores");
    json_t *ret = json_object_get(e, "retention");
    char s[3][16], v[32];
    rb_put(b, "<h3>From the evaluation");
    if (o->eval_source) {
        rb_put(b, " <code>");
        rb_esc(b, o->eval_source);
        rb_put(b, "</code>");
    }
    rb_put(b, "</h3>\n<p>What <code>stamp eval --facts --json</code> "
              "measured on the model of the store when it ran (a commit made "
              "after it is not in it): ");
    if (json_is_object(sc))
        rb_printf(b, "ES %s, PS %s, NS %s over %lld facts",
                  fmt_score(s[0], 16, score_of(sc, ES)),
                  fmt_score(s[1], 16, score_of(sc, PS)),
                  fmt_score(s[2], 16, score_of(sc, NS)),
                  (long long)json_integer_value(json_object_get(sc, "n_facts")));
    else
        rb_put(b, "no scores");
    double r = json_num(ret, "retained");
    if (!isnan(r))
        rb_printf(b, "; <strong>retention %s%%</strong> of %lld untouched "
                  "facts the base model knew", fmt_score(v, sizeof v, r),
                  (long long)json_integer_value(json_object_get(ret, "known_before")));
    rb_put(b, ".</p>\n");

    /* edits not taken: scored facts whose rewrite prompt prefers the old
     * answer */
    json_t *facts = json_object_get(e, "facts"), *f;
    size_t i, k = 0, shown = 0;
    json_array_foreach(facts, i, f)
        k += json_is_false(json_object_get(json_object_get(f, "outcome"), "es"));
    static const char *const ncols[] = {"version", "commit", "prompt",
                                        "new answer", "old answer",
                                        "P(new)", "P(old)"};
    rb_printf(b, "<div class=\"scroll\"><table class=\"rows\"><caption>%zu "
              "edit%s not taken: the rewrite prompt still prefers the old "
              "answer</caption>\n", k, k == 1 ? "" : "s");
    thead(b, ncols, 7);
    json_array_foreach(facts, i, f) {
        json_t *out = json_object_get(f, "outcome");
        if (!json_is_false(json_object_get(out, "es"))) continue;
        if (shown++ == o->eval_entries) break;
        rb_put(b, "<tr>");
        th_row(b, "version", json_u64(f, "version"));
        td_open(b, "commit", "num");
        rb_printf(b, "%llu</td>", (unsigned long long)json_u64(f, "commit"));
        td_text(b, "prompt", NULL, json_string_value(json_object_get(f, "prompt_text")));
        td_open(b, "new answer", NULL);
        put_target(b, json_string_value(json_object_get(f, "target_new")));
        rb_put(b, "</td>");
        td_open(b, "old answer", NULL);
        put_target(b, json_string_value(json_object_get(f, "target_true")));
        rb_put(b, "</td>");
        td_open(b, "P(new)", "num");
        rb_printf(b, "%.3f</td>", json_number_value(json_object_get(out, "p_new")));
        td_open(b, "P(old)", "num");
        rb_printf(b, "%.3f</td></tr>\n",
                  json_number_value(json_object_get(out, "p_true")));
    }
    rb_put(b, "</tbody></table></div>\n");
    if (k > o->eval_entries)
        rb_printf(b, "<p>And %zu more (the file lists them all).</p>\n",
                  k - o->eval_entries);

    json_t *lost = json_object_get(ret, "lost");
    static const char *const lcols[] = {"prompt", "answer expected",
                                        "answer now"};
    k = json_array_size(lost);
    rb_printf(b, "<div class=\"scroll\"><table class=\"rows\"><caption>%zu "
              "untouched fact%s lost: the base model answered them, the "
              "model does not</caption>\n", k, k == 1 ? "" : "s");
    thead(b, lcols, 3);
    json_array_foreach(lost, i, f) {
        if (i == o->eval_entries) break;
        rb_put(b, "<tr>");
        td_text(b, "prompt", NULL, json_string_value(json_object_get(f, "prompt_text")));
        td_open(b, "answer expected", NULL);
        put_target(b, json_string_value(json_object_get(f, "target_true")));
        rb_put(b, "</td>");
        td_open(b, "answer now", NULL);
        put_target(b, json_string_value(json_object_get(f, "now")));
        rb_put(b, "</td></tr>\n");
    }
    rb_put(b, "</tbody></table></div>\n");
    if (k > o->eval_entries)
        rb_printf(b, "<p>And %zu more (the file lists them all).</p>\n",
                  k - o->eval_entries);
}

static void section_outcomes(rbuf *b, const report_data *d,
                             const report_options *o)
{
    rb_put(b, "<section id=\"outcomes\" aria-labelledby=\"outcomes-h\">\n"
              "<h2 id=\"outcomes-h\">Edits not taken and facts lost</h2>\n");
    if (!o->eval)
        rb_put(b, "<p class=\"note\"><strong>Which</strong> edits did not "
                  "take and which untouched facts were lost is not in the "
                  "commit records: finding them runs the model (<code>stamp "
                  "eval --facts</code>). The records hold how many edits "
                  "each commit's own scores found not taken (below) and the "
                  "facts a commit could not write at all. To list the "
                  "others here: <code>stamp eval --facts --json &gt; "
                  "eval.json</code>, then <code>stamp report --eval "
                  "eval.json</code>.</p>\n");
    recent_not_taken(b, d);
    static const char *const cols[] = {"commit", "version", "prompt",
                                       "new answer", "old answer", "reason"};
    if (!d->n_failed_all)
        rb_put(b, "<p>No fact failed to commit: every commit wrote all the "
                  "facts it took from the queue.</p>\n");
    else {
        rb_printf(b, "<div class=\"scroll\"><table class=\"rows\"><caption>"
                  "%zu fact%s failed to commit (the commit left them out)%s"
                  "</caption>\n", d->n_failed_all,
                  d->n_failed_all == 1 ? "" : "s",
                  d->n_failed < d->n_failed_all ? ": the newest" : "");
        thead(b, cols, 6);
    }
    for (size_t i = 0; i < d->n_failed; i++) {
        const rfailed *f = &d->failed[i];
        rb_put(b, "<tr>");
        th_row(b, "commit", f->commit);
        td_open(b, "version", "num");
        rb_printf(b, "%llu</td>", (unsigned long long)f->version);
        td_text(b, "prompt", NULL, f->prompt);
        td_open(b, "new answer", NULL);
        put_target(b, f->target_new);
        rb_put(b, "</td>");
        td_open(b, "old answer", NULL);
        put_target(b, f->target_true);
        rb_put(b, "</td>");
        td_text(b, "reason", NULL, f->reason);
        rb_put(b, "</tr>\n");
    }
    if (d->n_failed_all) rb_put(b, "</tbody></table></div>\n");
    if (o->eval) eval_tables(b, o);
    rb_put(b, "</section>\n");
}

static void section_queue(rbuf *b, const report_data *d)
{
    static const char *const cols[] = {"version", "prompt", "new answer",
                                       "old answer", "source"};
    rb_printf(b, "<section id=\"queue\" aria-labelledby=\"queue-h\">\n"
              "<h2 id=\"queue-h\">Queue</h2>\n<p>%zu fact%s queued for the "
              "next commit.</p>\n", d->queued, d->queued == 1 ? "" : "s");
    if (!d->n_queue) {
        rb_put(b, "</section>\n");
        return;
    }
    rb_printf(b, "<div class=\"scroll\"><table class=\"rows\"><caption>The "
              "first %zu in import order</caption>\n", d->n_queue);
    thead(b, cols, 5);
    for (size_t i = 0; i < d->n_queue; i++) {
        const rqueued *q = &d->queue[i];
        rb_put(b, "<tr>");
        th_row(b, "version", q->version);
        td_text(b, "prompt", NULL, q->prompt);
        td_open(b, "new answer", NULL);
        put_target(b, q->target_new);
        rb_put(b, "</td>");
        td_open(b, "old answer", NULL);
        put_target(b, q->target_true);
        rb_put(b, "</td>");
        td_open(b, "source", NULL);
        rb_put(b, "<code>");
        rb_esc(b, q->source);
        rb_put(b, "</code></td></tr>\n");
    }
    rb_put(b, "</tbody></table></div>\n</section>\n");
}

static void section_limits(rbuf *b, const report_options *o)
{
    rb_put(b, "<section id=\"limits\" aria-labelledby=\"limits-h\">\n"
              "<h2 id=\"limits-h\">What this page does not show</h2>\n<ul>\n"
              "<li>Retention over commits: no commit record holds it "
              "(<code>stamp eval</code> measures it on the current model).</li>\n");
    if (!o->eval)
        rb_put(b, "<li>Which edits did not take and which untouched facts "
                  "were lost: that needs the model run (<code>stamp eval "
                  "--facts</code>; give its JSON with <code>--eval</code>).</li>\n");
    rb_put(b, "<li>Scores of all committed facts after later commits: each "
              "commit scored its own facts when it was made.</li>\n"
              "<li>The facts of each commit: <code>stamp show ID</code> lists "
              "them.</li>\n</ul>\n</section>\n");
}

static void page(rbuf *b, const report_data *d, const report_options *o)
{
    char now[32];
    const char *when = o->generated;
    if (!when) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%d %H:%M UTC", &tm);
        when = now;
    }
    rb_put(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
              "<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" "
              "content=\"width=device-width, initial-scale=1\"/>\n"
              "<title>stamp report: ");
    rb_esc(b, d->store_path);
    rb_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n"
              "<h1>stamp report</h1>\n<p class=\"sub\">Store <code>", page_css);
    rb_esc(b, d->store_path);
    rb_put(b, "</code> &#183; ");
    if (d->head)
        rb_printf(b, "HEAD is commit %llu", (unsigned long long)d->head);
    else
        rb_put(b, "HEAD is the base model");
    rb_put(b, " &#183; generated ");
    rb_esc(b, when);
    rb_put(b, "</p>\n</header>\n<nav aria-label=\"Sections\"><ul>"
              "<li><a href=\"#summary\">Summary</a></li>"
              "<li><a href=\"#model\">Base model</a></li>");
    if (d->n)
        rb_put(b, "<li><a href=\"#scores\">Scores</a></li>"
                  "<li><a href=\"#weights\">Weight change</a></li>"
                  "<li><a href=\"#time\">Time</a></li>");
    rb_put(b, "<li><a href=\"#commits\">Commits</a></li>");
    if (d->latest) rb_put(b, "<li><a href=\"#latest\">Latest commit</a></li>");
    rb_put(b, "<li><a href=\"#outcomes\">Edits not taken</a></li>"
              "<li><a href=\"#queue\">Queue</a></li>");
    rb_put(b, "<li><a href=\"#limits\">Not shown</a></li></ul></nav>\n<main>\n");
    section_summary(b, d);
    section_model(b, d);
    if (d->n) {
        section_scores(b, d, o);
        section_weights(b, d, o);
        section_time(b, d, o);
    }
    section_commits(b, d, o);
    section_latest(b, d);
    section_outcomes(b, d, o);
    section_queue(b, d);
    section_limits(b, o);
    rb_put(b, "</main>\n<footer><p>Made by <code>stamp report</code> from "
              "the store's commit records; a page with no script and no "
              "external file.</p></footer>\n</body>\n</html>\n");
}

/* ---- entry points ----------------------------------------------------------- */

void report_options_init(report_options *o)
{
    *o = (report_options){.table_commits = 50, .aggregate = 100,
                          .chart_points = 400, .queue_entries = 20,
                          .failed_entries = 50, .eval_entries = 100};
}

int report_build(store *s, const report_options *opt, char **html, size_t *len)
{
    report_options defaults;
    report_data d = {0};
    rbuf b = {0};
    *html = NULL;
    *len = 0;
    if (!opt) {
        report_options_init(&defaults);
        opt = &defaults;
    }
    int rc = report_gather(s, opt, &d);
    if (!rc) {
        page(&b, &d, opt);
        if (b.oom) rc = err_set(ERR_NOMEM, "out of memory building the report");
    }
    data_free(&d);
    if (rc) {
        free(b.p);
        return rc;
    }
    *html = b.p;
    *len = b.len;
    return 0;
}

int report_write(store *s, const report_options *opt, FILE *out)
{
    char *html = NULL;
    size_t len = 0;
    int rc = report_build(s, opt, &html, &len);
    if (rc) return rc;
    errno = 0;
    if (fwrite(html, 1, len, out) != len || fflush(out) != 0)
        rc = err_set(ERR_IO, "cannot write the report: %s",
                     errno ? strerror(errno) : "write error");
    free(html);
    return rc;
}

/* A device, a pipe or the like: written in place (renaming a temporary
 * file over /dev/stdout would replace the device). */
static int write_in_place(const char *path, const char *html, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return err_set(ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    errno = 0;
    int bad = fwrite(html, 1, len, f) != len || fflush(f) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad)
        return err_set(ERR_IO, "cannot write '%s': %s", path,
                       e ? strerror(e) : "write error");
    return 0;
}

int report_write_file(store *s, const report_options *opt, const char *path)
{
    struct stat st;
    char *copy = strdup(path), target[PATH_MAX];
    if (!copy) return err_set(ERR_NOMEM, "out of memory");
    const char *dir = dirname(copy);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        int rc = err_set(ERR_NOTFOUND, "cannot write '%s': the directory "
                         "'%s' does not exist", path, dir);
        free(copy);
        return rc;
    }
    free(copy);
    char *html = NULL;
    size_t len = 0;
    int rc = report_build(s, opt, &html, &len);
    if (rc) return rc;
    int exists = stat(path, &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        rc = write_in_place(path, html, len);
    } else {
        /* a symbolic link to a file: replace the file, keep the link */
        struct stat lst;
        const char *real = exists && lstat(path, &lst) == 0 &&
                           S_ISLNK(lst.st_mode) && realpath(path, target)
                               ? target : path;
        atomic_file *f = NULL;
        rc = atomic_file_open(&f, real);
        if (!rc) rc = atomic_file_write(f, html, len);
        if (!rc) rc = atomic_file_commit(f);
        else atomic_file_abort(f);
    }
    free(html);
    return rc;
}
