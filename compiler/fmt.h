/*
 * fmt.h — `flowc fmt`: the canonical layout of .flow source (compiler/fmt.c).
 *
 * fmt_source formats one source text; flowc_fmt_main is the subcommand (main.c
 * hands it the words after `fmt`). The layout rules are in docs/fmt.md.
 */
#ifndef FLOW_FMT_H
#define FLOW_FMT_H

#include <stddef.h>

#include "diag.h"

/* Format src (len bytes). Syntax errors go to diag (the parse's own messages).
 * Returns the formatted text (malloc'ed, NUL-terminated, *out_len bytes; the
 * caller frees it) or NULL: the file does not parse, out of memory, or (an
 * internal check) the result would not parse to the same tree with the same
 * comments, said on diag. */
char *fmt_source(const char *src, size_t len, fl_diag *diag, size_t *out_len);

/* flowc fmt [--check] FILE... | - : argv[0] is "fmt". Returns the exit status. */
int flowc_fmt_main(int argc, char **argv);

#endif /* FLOW_FMT_H */
