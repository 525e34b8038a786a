/*
 * diag.c — the one diagnostic printer (see diag.h), and the "did you mean"
 * search.
 *
 * A diagnostic is printed at once, in report order: the position line, the source
 * line with a caret and tildes under the span (a line longer than 400 columns is
 * cut), then the hint. Nothing is buffered, so a message is never lost, and
 * nothing is allocated. diag_did_you_mean is a bounded edit distance (a swap of two
 * neighbouring letters is one edit) over the candidates the caller collected, with a
 * limit that grows with the name's length, so short names are not "corrected" into
 * unrelated ones; diag_name_list is the hint for when none is close.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

void diag_init(fl_diag *d, const char *file, const char *src, size_t len, FILE *out) {
    memset(d, 0, sizeof *d);
    d->file = file;
    d->src = src;
    d->len = len;
    d->out = out ? out : stderr;
}

/* Print source line `line` and a caret/underline under [col, end) on it. */
static void show_line(fl_diag *d, fl_span sp) {
    if (!d->src || sp.line <= 0) return;
    const char *p = d->src, *end = d->src + d->len;
    for (int l = 1; l < sp.line && p < end; p++)
        if (*p == '\n') l++;
    if (p >= end && sp.line > 1) return;
    const char *e = p;
    while (e < end && *e != '\n') e++;
    if (e > p && e[-1] == '\r') e--;
    int w = (int)(e - p);
    if (w > 400) w = 400; /* a huge line is cut, not flooded */
    fputs("    ", d->out);
    for (int i = 0; i < w; i++) fputc(p[i] == '\t' ? ' ' : (p[i] == 0 ? ' ' : p[i]), d->out);
    fputs("\n    ", d->out);
    int c0 = sp.col > 0 ? sp.col : 1;
    int c1 = (sp.end_line == sp.line && sp.end_col >= c0) ? sp.end_col : c0;
    if (sp.end_line > sp.line) c1 = w > c0 ? w : c0;
    if (c1 > w + 1) c1 = w + 1;
    if (c0 > w + 1) c0 = c1 = w + 1;
    for (int i = 1; i < c0; i++) fputc(' ', d->out);
    fputc('^', d->out);
    for (int i = c0 + 1; i <= c1; i++) fputc('~', d->out);
    fputc('\n', d->out);
}

static void report(fl_diag *d, const char *what, fl_span sp, const char *hint, const char *fmt,
                   va_list ap) {
    if (d->sink) {
        char msg[2048];
        vsnprintf(msg, sizeof msg, fmt, ap);
        d->sink(d->sink_user, what, d->file ? d->file : "<input>", sp, msg, hint);
        return;
    }
    fprintf(d->out, "%s:%d:%d: %s: ", d->file ? d->file : "<input>", sp.line, sp.col, what);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    show_line(d, sp);
    if (hint) fprintf(d->out, "hint: %s\n", hint);
}

/* The context ran out of memory: count, print nothing (see diag.h). */
static bool muted(const fl_diag *d) {
    return d->ctx && d->ctx->errcode == FL_ENOMEM;
}

void diag_error(fl_diag *d, fl_span sp, const char *hint, const char *fmt, ...) {
    d->errors++;
    if (muted(d)) return;
    if (d->errors > DIAG_MAX_ERRORS && !d->sink) {
        if (d->errors == DIAG_MAX_ERRORS + 1)
            fprintf(d->out, "%s: too many errors, stopping here\n", d->file ? d->file : "<input>");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(d, "error", sp, hint, fmt, ap);
    va_end(ap);
}

void diag_warning(fl_diag *d, fl_span sp, const char *hint, const char *fmt, ...) {
    d->warnings++;
    if ((d->errors > DIAG_MAX_ERRORS && !d->sink) || muted(d)) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "warning", sp, hint, fmt, ap);
    va_end(ap);
}

void diag_note(fl_diag *d, fl_span sp, const char *fmt, ...) {
    if ((d->errors > DIAG_MAX_ERRORS && !d->sink) || muted(d)) return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "note", sp, NULL, fmt, ap);
    va_end(ap);
}

/* Edit distance with adjacent transpositions counted as one edit (optimal string
 * alignment, the restricted Damerau-Levenshtein distance), so "retrun" is one edit
 * from "return". Bounded to short names: three rows of 64. */
static int distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int rows[3][64];
    int *prev2 = rows[0], *prev = rows[1], *row = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = prev[j - 1] + cost;
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            row[j] = best;
        }
        int *t = prev2;
        prev2 = prev;
        prev = row;
        row = t;
    }
    return prev[lb];
}

static const char *closest(const char *name, const char *const *cands, int n) {
    const char *best = NULL;
    int bestd = 99, len = (int)strlen(name);
    int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3; /* "path" is not a misspelled "with" */
    for (int i = 0; i < n; i++) {
        if (!cands[i] || strcmp(cands[i], name) == 0) continue;
        int dd = distance(name, cands[i]);
        if (dd < bestd) bestd = dd, best = cands[i];
    }
    return bestd <= limit ? best : NULL;
}

const char *diag_did_you_mean(const char *name, const char *const *cands, int n, char *buf,
                              size_t len) {
    const char *best = name ? closest(name, cands, n) : NULL;
    if (!best || !len) return NULL;
    snprintf(buf, len, "did you mean '%s'?", best);
    return buf;
}

const char *diag_name_list(char *buf, size_t len, const char *lead, const char *const *names,
                           int n) {
    if (!len) return NULL;
    size_t k = (size_t)snprintf(buf, len, "%s", lead);
    if (k >= len) k = len - 1;
    for (int i = 0; i < n; i++) {
        size_t w = strlen(names[i]);
        if (k + 1 + w + 4 >= len) { /* this one and " ..." would not both fit */
            if (k + 4 < len) memcpy(buf + k, " ...", 5);
            break;
        }
        buf[k++] = ' ';
        memcpy(buf + k, names[i], w + 1);
        k += w;
    }
    return buf;
}
