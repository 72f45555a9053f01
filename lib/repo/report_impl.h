/* report_impl: what report.c (the data and the page) and report_html.c
 * (the text buffer, HTML escaping and the SVG charts) share. Not for
 * other modules. */
#ifndef STAMP_REPORT_IMPL_H
#define STAMP_REPORT_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* A growing text buffer. Out of memory makes it stop growing and sets
 * `oom`; the builder checks once at the end. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} rbuf;

void rb_putn(rbuf *b, const char *s, size_t n);
void rb_put(rbuf *b, const char *s);                 /* raw markup */
void rb_printf(rbuf *b, const char *fmt, ...)        /* raw markup */
    __attribute__((format(printf, 2, 3)));
/* Text or attribute value: & < > " ' escaped; control characters
 * (but tab and newline) and bytes that are not UTF-8 become U+FFFD. */
void rb_esc(rbuf *b, const char *s);
void rb_escf(rbuf *b, const char *fmt, ...)          /* formatted, escaped */
    __attribute__((format(printf, 2, 3)));

/* One series of a chart: y[i] for commit x[i]; NaN = no value there. */
typedef struct {
    const char *name;
    const double *y;   /* (n) */
} chart_series;

typedef enum { CHART_LINES, CHART_STACKED } chart_kind;

typedef struct {
    const char *id;          /* unique in the page: ids of title, caption */
    const char *title;       /* the chart's title (plain text) */
    const char *unit;        /* of the values: "%", "s", "KiB", "" */
    const char *what;        /* the values in words, for the text
                                alternative ("the share of edits ...") */
    chart_kind kind;
    const uint64_t *x;       /* (n) commit ids, oldest first */
    size_t n;
    const chart_series *s;
    size_t n_series;
    double y_min, y_max;     /* a fixed range when y_max > y_min */
    size_t max_points;       /* more commits: means of groups of them */
} chart_spec;

/* A <figure> with the chart as inline SVG (role img, <title>, <desc>),
 * its legend, and a caption that says in words what it shows (first,
 * last, lowest and highest value of each series and where). */
void chart_draw(rbuf *b, const chart_spec *c);

/* Number formats the page uses: a score ("66.7", "n/a" for NaN), a byte
 * count ("73.2 KiB"), seconds ("0.60 s", "1 m 5 s"). Return buf. */
const char *fmt_score(char *buf, size_t size, double v);
const char *fmt_bytes(char *buf, size_t size, double bytes);
const char *fmt_seconds(char *buf, size_t size, double s);

#endif
