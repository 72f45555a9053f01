/* report_html: the text buffer the report page is built in, HTML
 * escaping, number formats, and the charts: line charts and stacked bar
 * charts as inline SVG, sized by a viewBox so that they scale to the
 * width of a phone or of a wide screen. Charts never need a script:
 * each has a <title>, a <desc> and a caption that says in words what it
 * shows; colours come from the Okabe-Ito palette (told apart with
 * colour blindness) and lines differ in dash too. A series longer than
 * max_points is drawn as means of groups of consecutive commits, so the
 * SVG of 10,000 commits is no larger than that of max_points. */
#include "repo/report_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ------------------------------------------------------------ */

static int rb_reserve(rbuf *b, size_t more)
{
    if (b->oom) return -1;
    if (b->len + more + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void rb_putn(rbuf *b, const char *s, size_t n)
{
    if (rb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void rb_put(rbuf *b, const char *s) { rb_putn(b, s, strlen(s)); }

static void rb_vprintf(rbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || rb_reserve(b, (size_t)n)) return;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void rb_printf(rbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rb_vprintf(b, fmt, ap);
    va_end(ap);
}

/* The length of the UTF-8 sequence at s (1 to 4) when it is valid and
 * allowed in XML text, else 0. */
static size_t utf8_ok(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return c >= 0x20 ? (c == 0x7f ? 0 : 1) : (c == '\t' || c == '\n');
    if (c >= 0xc2 && c <= 0xdf) return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        unsigned cp = (c & 0x0f) << 12 | (s[1] & 0x3fu) << 6 | (s[2] & 0x3fu);
        if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff) || cp >= 0xfffe)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80)
            return 0;
        unsigned cp = (c & 0x07) << 18 | (s[1] & 0x3fu) << 12 |
                      (s[2] & 0x3fu) << 6 | (s[3] & 0x3fu);
        return cp >= 0x10000 && cp <= 0x10ffff ? 4 : 0;
    }
    return 0;
}

void rb_esc(rbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        }
        if (rep) {
            rb_put(b, rep);
            p++;
            continue;
        }
        /* the longest run of plain valid text, copied at once */
        const unsigned char *q = p;
        size_t k;
        while (*q && !strchr("&<>\"'", *q) && (k = utf8_ok(q))) q += k;
        if (q > p) {
            rb_putn(b, (const char *)p, (size_t)(q - p));
            p = q;
        } else if (*p) {
            rb_put(b, "\xef\xbf\xbd"); /* U+FFFD */
            p++;
        }
    }
}

void rb_escf(rbuf *b, const char *fmt, ...)
{
    char small[512], *text = small;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (text = malloc((size_t)n + 1)))
        vsnprintf(text, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    va_end(ap);
    if (n < 0 || !text) {
        b->oom = !text;
        return;
    }
    rb_esc(b, text);
    if (text != small) free(text);
}

/* ---- numbers ----------------------------------------------------------- */

const char *fmt_score(char *buf, size_t size, double v)
{
    if (isnan(v)) snprintf(buf, size, "n/a");
    else snprintf(buf, size, "%.1f", v);
    return buf;
}

const char *fmt_bytes(char *buf, size_t size, double bytes)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    if (isnan(bytes)) {
        snprintf(buf, size, "-");
        return buf;
    }
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

const char *fmt_seconds(char *buf, size_t size, double s)
{
    if (isnan(s)) snprintf(buf, size, "-");
    else if (s < 10) snprintf(buf, size, "%.2f s", s);
    else if (s < 120) snprintf(buf, size, "%.1f s", s);
    else if (s < 7200) snprintf(buf, size, "%.0f min %.0f s", floor(s / 60),
                                fmod(s, 60));
    else snprintf(buf, size, "%.1f h", s / 3600);
    return buf;
}

static const char *fmt_value(char *buf, size_t size, double v,
                             const char *unit)
{
    if (isnan(v)) snprintf(buf, size, "no value");
    else if (!strcmp(unit, "%")) snprintf(buf, size, "%.1f%%", v);
    else if (!strcmp(unit, "s")) fmt_seconds(buf, size, v);
    else if (*unit) snprintf(buf, size, "%.4g %s", v, unit);
    else snprintf(buf, size, "%.4g", v);
    return buf;
}

/* ---- charts ------------------------------------------------------------ */

static const char *const colours[] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
    "#56B4E9", "#000000", "#882255", "#999999", "#F0E442",
};
static const char *const dashes[] = {"", "7 4", "2 3", "10 3 2 3", "4 2"};
#define N_COLOURS (sizeof colours / sizeof colours[0])
#define N_DASHES (sizeof dashes / sizeof dashes[0])

/* The viewBox and the plot area in it. */
enum { VW = 720, VH = 280, ML = 64, MR = 16, MT = 14, MB = 46 };

/* 1, 2 or 5 times a power of ten, at least x */
static double nice_step(double x)
{
    if (!(x > 0)) return 1;
    double p = pow(10, floor(log10(x))), f = x / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/* Means of groups of g consecutive values (NaN skipped; a group with no
 * value is NaN). */
static void group_means(const double *y, size_t n, size_t g, double *out,
                        size_t m)
{
    for (size_t j = 0; j < m; j++) {
        double sum = 0;
        size_t k = 0;
        for (size_t i = j * g; i < n && i < (j + 1) * g; i++)
            if (!isnan(y[i])) {
                sum += y[i];
                k++;
            }
        out[j] = k ? sum / (double)k : NAN;
    }
}

/* The text alternative of a line series: its first and last values,
 * lowest and highest, where, and how many commits have none. */
static void describe_series(rbuf *b, const chart_spec *c,
                            const chart_series *s)
{
    size_t first = c->n, last = 0, lo = 0, hi = 0, missing = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (isnan(s->y[i])) {
            missing++;
            continue;
        }
        if (first == c->n) first = lo = hi = i;
        last = i;
        if (s->y[i] < s->y[lo]) lo = i;
        if (s->y[i] > s->y[hi]) hi = i;
    }
    char v1[48], v2[48];
    rb_esc(b, s->name);
    if (first == c->n) {
        rb_put(b, ": no value. ");
        return;
    }
    if (first == last)
        rb_escf(b, ": %s (commit %llu)",
                fmt_value(v1, sizeof v1, s->y[first], c->unit),
                (unsigned long long)c->x[first]);
    else if (s->y[lo] == s->y[hi])
        rb_escf(b, ": %s at every commit with a value (%llu to %llu)",
                fmt_value(v1, sizeof v1, s->y[first], c->unit),
                (unsigned long long)c->x[first], (unsigned long long)c->x[last]);
    else
        rb_escf(b, ": from %s at commit %llu to %s at commit %llu",
                fmt_value(v1, sizeof v1, s->y[first], c->unit),
                (unsigned long long)c->x[first],
                fmt_value(v2, sizeof v2, s->y[last], c->unit),
                (unsigned long long)c->x[last]);
    double a = s->y[first] < s->y[last] ? s->y[first] : s->y[last];
    double z = s->y[first] < s->y[last] ? s->y[last] : s->y[first];
    if (s->y[lo] < a || s->y[hi] > z)
        rb_escf(b, "; lowest %s (commit %llu), highest %s (commit %llu)",
                fmt_value(v1, sizeof v1, s->y[lo], c->unit),
                (unsigned long long)c->x[lo],
                fmt_value(v2, sizeof v2, s->y[hi], c->unit),
                (unsigned long long)c->x[hi]);
    if (missing)
        rb_printf(b, "; no value for %zu commit%s", missing,
                  missing == 1 ? "" : "s");
    rb_put(b, ". ");
}

/* The text alternative of a stacked chart: each part's sum over all
 * commits and its share, and the commit with the largest total. */
static void describe_stacked(rbuf *b, const chart_spec *c)
{
    double all = 0, best = -1;
    size_t at = 0;
    char v[48];
    for (size_t i = 0; i < c->n; i++) {
        double tot = 0;
        for (size_t k = 0; k < c->n_series; k++)
            if (!isnan(c->s[k].y[i])) tot += c->s[k].y[i];
        all += tot;
        if (tot > best) {
            best = tot;
            at = i;
        }
    }
    rb_escf(b, "In all %s over %zu commit%s", fmt_value(v, sizeof v, all, c->unit),
            c->n, c->n == 1 ? "" : "s");
    const char *sep = ": ";
    for (size_t k = 0; k < c->n_series; k++) {
        double sum = 0;
        for (size_t i = 0; i < c->n; i++)
            if (!isnan(c->s[k].y[i])) sum += c->s[k].y[i];
        if (sum <= 0) continue;
        rb_put(b, sep);
        rb_esc(b, c->s[k].name);
        rb_escf(b, " %s (%.0f%%)", fmt_value(v, sizeof v, sum, c->unit),
                all > 0 ? 100 * sum / all : 0);
        sep = ", ";
    }
    if (c->n)
        rb_escf(b, ". The largest: commit %llu, %s. ",
                (unsigned long long)c->x[at], fmt_value(v, sizeof v, best, c->unit));
}

static void describe(rbuf *b, const chart_spec *c, size_t g)
{
    if (c->kind == CHART_STACKED) describe_stacked(b, c);
    else
        for (size_t k = 0; k < c->n_series; k++) describe_series(b, c, &c->s[k]);
    if (g > 1)
        rb_printf(b, "Each point is the mean of %zu consecutive commits. ", g);
}

static double ymap(double v, double lo, double hi)
{
    return MT + (VH - MT - MB) * (1 - (v - lo) / (hi - lo));
}

/* The y range of the grouped values gy (n_series, m): the chart's own
 * when it sets one, else the data's widened to round steps. */
static void chart_range(const chart_spec *c, const double *gy, size_t m,
                        double *lo_out, double *hi_out)
{
    double lo = 0, hi = 0;
    if (c->y_max > c->y_min) {
        *lo_out = c->y_min;
        *hi_out = c->y_max;
        return;
    }
    for (size_t j = 0; j < m; j++) {
        double tot = 0;
        for (size_t k = 0; k < c->n_series; k++) {
            double v = gy[k * m + j];
            if (isnan(v)) continue;
            if (c->kind == CHART_STACKED) tot += v;
            else {
                if (v > hi) hi = v;
                if (v < lo) lo = v;
            }
        }
        if (tot > hi) hi = tot;
    }
    if (hi <= lo) hi = lo + 1;
    double step = nice_step((hi - lo) / 4);
    *hi_out = ceil(hi / step - 1e-9) * step;
    *lo_out = floor(lo / step + 1e-9) * step;
}

/* The grid with its y labels, the unit, and the commit ids under up to
 * 8 of the m points (slot wide each, groups of g commits). */
static void chart_axes(rbuf *b, const chart_spec *c, double lo, double hi,
                       size_t m, size_t g, double slot)
{
    double step = nice_step((hi - lo) / 4);
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    rb_put(b, "<g class=\"grid\">");
    for (double v = lo; v <= hi + step / 2; v += step) {
        double y = ymap(v, lo, hi);
        rb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                  "<text x=\"%d\" y=\"%.1f\" class=\"yl\">%.*f</text>",
                  ML, VW - MR, y, y, ML - 6, y + 4, decimals, v);
    }
    rb_put(b, "</g>\n");
    if (*c->unit)
        rb_printf(b, "<text x=\"12\" y=\"%d\" class=\"unit\" transform=\"rotate(-90 12 %d)\">%s</text>\n",
                  MT + (VH - MT - MB) / 2, MT + (VH - MT - MB) / 2,
                  !strcmp(c->unit, "%") ? "%" : c->unit);
    size_t labels = m < 8 ? m : 8;
    rb_put(b, "<g class=\"xl\">");
    for (size_t k = 0; k < labels; k++) {
        size_t j = labels == 1 ? 0 : (size_t)llround((double)k * (double)(m - 1) /
                                                     (double)(labels - 1));
        rb_printf(b, "<text x=\"%.1f\" y=\"%d\">%llu</text>",
                  ML + slot * ((double)j + 0.5), VH - MB + 21,
                  (unsigned long long)c->x[j * g]);
    }
    rb_printf(b, "</g>\n<text x=\"%d\" y=\"%d\" class=\"axis\">commit%s</text>\n",
              ML + (VW - ML - MR) / 2, VH - 8,
              g > 1 ? " (first of each group)" : "");
}

/* Stacked bars, one per point, a series per colour. */
static void chart_bars(rbuf *b, const chart_spec *c, const double *gy,
                       size_t m, double lo, double hi, double slot)
{
    double w = slot * 0.8 > 1 ? slot * 0.8 : slot;
    for (size_t k = 0; k < c->n_series; k++) {
        rb_printf(b, "<g fill=\"%s\">", colours[k % N_COLOURS]);
        for (size_t j = 0; j < m; j++) {
            double below = 0, v = gy[k * m + j];
            if (isnan(v) || v <= 0) continue;
            for (size_t q = 0; q < k; q++)
                if (!isnan(gy[q * m + j])) below += gy[q * m + j];
            double y1 = ymap(below + v, lo, hi), y0 = ymap(below, lo, hi);
            rb_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                      "height=\"%.2f\"/>",
                      ML + slot * (double)j + (slot - w) / 2, y1, w, y0 - y1);
        }
        rb_put(b, "</g>\n");
    }
}

/* A line per series; up to 60 points also drawn, each with its value as
 * a tooltip. */
static void chart_lines(rbuf *b, const chart_spec *c, const double *gy,
                        size_t m, double lo, double hi, double slot)
{
    for (size_t k = 0; k < c->n_series; k++) {
        const double *y = gy + k * m;
        const char *colour = colours[k % N_COLOURS];
        rb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\"",
                  colour);
        if (*dashes[k % N_DASHES])
            rb_printf(b, " stroke-dasharray=\"%s\"", dashes[k % N_DASHES]);
        rb_put(b, " d=\"");
        int pen = 0;
        for (size_t j = 0; j < m; j++) {
            if (isnan(y[j])) continue;
            rb_printf(b, "%c%.1f %.1f ", pen ? 'L' : 'M',
                      ML + slot * ((double)j + 0.5), ymap(y[j], lo, hi));
            pen = 1;
        }
        rb_put(b, "\"/>\n");
        if (m > 60) continue;
        rb_printf(b, "<g fill=\"%s\">", colour);
        for (size_t j = 0; j < m; j++) {
            char v[48];
            if (isnan(y[j])) continue;
            rb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>"
                      "commit %llu: ", ML + slot * ((double)j + 0.5),
                      ymap(y[j], lo, hi), (unsigned long long)c->x[j]);
            rb_esc(b, c->s[k].name);
            rb_escf(b, " %s", fmt_value(v, sizeof v, y[j], c->unit));
            rb_put(b, "</title></circle>");
        }
        rb_put(b, "</g>\n");
    }
}

/* The legend (hidden from screen readers: the caption says it) and the
 * caption in words. */
static void chart_legend(rbuf *b, const chart_spec *c, size_t g)
{
    rb_put(b, "<ul class=\"legend\" aria-hidden=\"true\">");
    for (size_t k = 0; k < c->n_series; k++) {
        const char *colour = colours[k % N_COLOURS];
        if (c->kind == CHART_STACKED)
            rb_printf(b, "<li><svg viewBox=\"0 0 14 14\" class=\"key\"><rect "
                      "width=\"14\" height=\"14\" fill=\"%s\"/></svg>", colour);
        else
            rb_printf(b, "<li><svg viewBox=\"0 0 28 10\" class=\"key\"><line "
                      "x1=\"0\" x2=\"28\" y1=\"5\" y2=\"5\" stroke=\"%s\" "
                      "stroke-width=\"3\" stroke-dasharray=\"%s\"/></svg>",
                      colour, *dashes[k % N_DASHES] ? dashes[k % N_DASHES] : "none");
        rb_esc(b, c->s[k].name);
        rb_put(b, "</li>");
    }
    rb_printf(b, "</ul>\n<figcaption id=\"%s-c\"><strong>", c->id);
    rb_esc(b, c->title);
    rb_put(b, ".</strong> ");
    describe(b, c, g);
    rb_put(b, "</figcaption>\n");
}

void chart_draw(rbuf *b, const chart_spec *c)
{
    size_t n = c->n, g = 1;
    if (c->max_points && n > c->max_points)
        g = (n + c->max_points - 1) / c->max_points;
    size_t m = n ? (n + g - 1) / g : 0;
    double *gy = calloc((m ? m : 1) * (c->n_series ? c->n_series : 1),
                        sizeof *gy);
    if (!gy) {
        b->oom = 1;
        return;
    }
    for (size_t k = 0; k < c->n_series; k++)
        group_means(c->s[k].y, n, g, gy + k * m, m);
    double lo, hi, slot = m ? (double)(VW - ML - MR) / (double)m : 0;
    chart_range(c, gy, m, &lo, &hi);

    rb_printf(b, "<figure class=\"chart\" id=\"%s\">\n", c->id);
    rb_printf(b, "<svg viewBox=\"0 0 %d %d\" role=\"img\" "
              "aria-labelledby=\"%s-t\" aria-describedby=\"%s-d\" "
              "preserveAspectRatio=\"xMidYMid meet\">\n<title id=\"%s-t\">",
              VW, VH, c->id, c->id, c->id);
    rb_esc(b, c->title);
    rb_printf(b, "</title>\n<desc id=\"%s-d\">", c->id);
    if (c->what) {
        rb_esc(b, c->what);
        rb_put(b, ". ");
    }
    describe(b, c, g);
    rb_put(b, "</desc>\n");
    chart_axes(b, c, lo, hi, m, g, slot);
    if (c->kind == CHART_STACKED) chart_bars(b, c, gy, m, lo, hi, slot);
    else chart_lines(b, c, gy, m, lo, hi, slot);
    rb_put(b, "</svg>\n");
    chart_legend(b, c, g);
    rb_put(b, "</figure>\n");
    free(gy);
}
