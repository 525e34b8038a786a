/*
 * diag.h — compile diagnostics: one printer for the parser and the checker.
 *
 *   file:line:col: error: message
 *       let x = count_wrds(f)
 *               ^~~~~~~~~~
 *   hint: did you mean 'count_words'?
 *
 * Errors are printed as they are reported (in report order) and counted;
 * after DIAG_MAX_ERRORS further errors are counted but not printed.
 *
 * Out of memory: once the compilation's context (`ctx`, set by fl_parse and
 * flowc_compile) has recorded FL_ENOMEM, diagnostics are still counted but no
 * longer printed: what a checker short of memory says is not about the program,
 * and the one message the user sees is flowc's "out of memory".
 */
#ifndef FLOW_DIAG_H
#define FLOW_DIAG_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ast.h"
#include "ctx.h"

#define DIAG_MAX_ERRORS 20

/* A name inside a message built in a fixed buffer first (a "parameter 'x' of 't'"
 * prefix): at most DIAG_NAME_MAX bytes of it, ending in "..." when it was longer,
 * so two long names cannot push the end of the message out of the buffer.
 * Use as "%.*s%s" with DIAG_CLIP(name). */
#define DIAG_NAME_MAX 80
#define DIAG_CLIP(s)                                                                               \
    (int)(strlen(s) > DIAG_NAME_MAX ? DIAG_NAME_MAX - 3 : strlen(s)), (s),                         \
        (strlen(s) > DIAG_NAME_MAX ? "..." : "")

/* Where diagnostics go instead of `out` when set (flowc lsp): one call per error,
 * warning or note, with the file it is in (d->file at the time), its span, the
 * message and the hint (NULL when none); the strings live until the call returns. */
typedef void (*fl_diag_sink)(void *user, const char *what, const char *file, fl_span sp,
                             const char *msg, const char *hint);

typedef struct fl_diag {
    const char *file; /* name shown in messages (borrowed) */
    const char *src;  /* source text (borrowed), for the quoted line */
    size_t len;       /* its length */
    FILE *out;        /* where messages go (stderr) */
    int errors;       /* errors reported so far */
    int warnings;     /* warnings reported so far */
    const fl_ctx *ctx;/* the compilation's context: muted once it ran out of memory; NULL */
    fl_diag_sink sink;/* NULL: print to out; else every diagnostic goes to sink(sink_user, ...)
                         and nothing is printed (no error limit either) */
    void *sink_user;
} fl_diag;

/* A diagnostics sink printing to out (NULL: stderr); ctx NULL. */
void diag_init(fl_diag *d, const char *file, const char *src, size_t len, FILE *out);

/* hint may be NULL. The message is printf-formatted. */
void diag_error(fl_diag *d, fl_span sp, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_warning(fl_diag *d, fl_span sp, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A note attached to the previous diagnostic ("note: 'x' was bound here"). */
void diag_note(fl_diag *d, fl_span sp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "did you mean 'x'?" written into buf, x the candidate closest to name by edit
 * distance (a swap of two neighbouring letters counts as one edit), or NULL when
 * none is close enough to suggest: the limit grows with the name's length (1 up
 * to 4 letters, 2 up to 8, then 3). The one "did you mean" of the compiler:
 * names, fields, functions, symbols, options, types and keywords. */
const char *diag_did_you_mean(const char *name, const char *const *cands, int n, char *buf,
                              size_t len);

/* "lead a b c" written into buf, for a hint that lists names: the names that fit
 * whole, then " ..." when the rest do not (never a name cut in the middle). */
const char *diag_name_list(char *buf, size_t len, const char *lead, const char *const *names,
                           int n);

#endif
