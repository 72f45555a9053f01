/* report: the store's history as one self-contained HTML page (`stamp
 * report`): the base model, HEAD's chain of commits with their scores
 * (ES/PS/NS before and after), diff size, per-layer update norms and
 * time per phase (tables, and line and bar charts drawn as inline SVG),
 * the facts a commit could not write, the queue, and the commits off
 * the chain. No script, no external file, no web font: the page reads
 * the same on a phone and on a wide screen, and without JavaScript.
 *
 * It shows what the store holds and nothing it would have to compute:
 * commit records (docs/commit-record.md) hold scores of the committed
 * facts before and after each commit, not retention, nor which edits
 * did not take or which untouched facts were lost (that needs the model
 * run: `stamp eval --facts`). Given the JSON that `stamp eval --facts
 * --json` printed, the page shows its scores, retention, edits not
 * taken and facts lost too; the page says what it does not show.
 *
 * The store is read in one read transaction (a snapshot: a commit made
 * meanwhile is not half in it), then the page is built in memory, so
 * an error never leaves half a page. Large stores stay readable and
 * fast: the charts draw every commit up to `chart_points` and the mean
 * of groups of commits beyond; the table lists the newest
 * `table_commits` one by one and the older ones summed per `aggregate`.
 *
 * Every string from the store or the eval file (subjects, prompts,
 * targets, messages, paths) is escaped for HTML; bytes that are not
 * UTF-8 or are control characters become U+FFFD. The page is also
 * well-formed XML (polyglot markup), so an XML parser can check it. */
#ifndef STAMP_REPORT_H
#define STAMP_REPORT_H

#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    size_t table_commits;  /* newest commits listed one by one (50) */
    size_t aggregate;      /* older commits summed per this many (100) */
    size_t chart_points;   /* points per series before grouping (400) */
    size_t queue_entries;  /* queued facts listed (20) */
    size_t failed_entries; /* facts that failed to commit listed (50) */
    size_t eval_entries;   /* rows of each eval table (100) */
    const json_t *eval;    /* `stamp eval --facts --json` output, or NULL */
    const char *eval_source; /* where it came from, for the page (or NULL) */
    const char *generated; /* the page's time stamp text; NULL = now, UTC */
} report_options;

/* The defaults above. */
void report_options_init(report_options *o);

/* Builds the page of store `s` in memory: *html malloc'ed (caller
 * frees), NUL-terminated, *len bytes without the NUL. A store without
 * commits gives a page that says so. Errors: those of the store (a
 * record that does not parse: ERR_STORE naming the commit), ERR_NOMEM. */
int report_build(store *s, const report_options *opt, char **html,
                 size_t *len);

/* report_build, then the page to `out` (ERR_IO when it cannot be
 * written; `out` is left open and may hold part of the page). */
int report_write(store *s, const report_options *opt, FILE *out);

/* report_build, then the page to the file `path`: a regular file (or a
 * path that does not exist yet) is written atomically (atomic_file.h:
 * temporary file, fsync, rename), so it is either the whole page or
 * left as it was; anything else (a device such as /dev/stdout or
 * /dev/full, a pipe) is written in place. ERR_NOTFOUND naming the
 * directory when it does not exist; ERR_IO naming the path when the
 * page cannot be written (a full disk: the temporary file is removed). */
int report_write_file(store *s, const report_options *opt, const char *path);

#endif
