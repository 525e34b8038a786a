/*
 * lsp.h — `flowc lsp`: the Language Server Protocol over standard input and output
 * (lsp.c; docs/lsp.md). main.c hands over before reading its own arguments.
 */
#ifndef FLOW_LSP_H
#define FLOW_LSP_H

#include <stdio.h>

/* Serve one client on in/out until `exit` or the end of in. argv[0] is "lsp";
 * share_dir: the installed share/flow/ (imports), or NULL. Returns the exit status:
 * 0 after shutdown then exit (or end of input after shutdown), 1 otherwise, 2 after a
 * usage error. */
int flowc_lsp(int argc, char **argv, const char *share_dir, FILE *in, FILE *out);

#endif
