/*
 * fuzz_lsp.c — libFuzzer target for `flowc lsp` (compiler/lsp.c).
 *
 * Any byte string is the whole of the server's input (fmemopen): framing, headers,
 * JSON, requests in any order with any parameters, documents of any text (each one
 * checked by the compiler as it is opened or changed). The server's output goes to
 * /dev/null (opened once). Besides "no crash, no leak, no UB", the server must come
 * back (the input ends, so it must stop) with a status 0 or 1.
 * The seeds (tests/fuzz/seeds-lsp/) are short sessions: initialize, open, change,
 * hover, definition, completion, symbols, rename, shutdown, exit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lsp.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    if (!devnull || !size) return 0;
    FILE *in = fmemopen((void *)data, size, "rb");
    if (!in) return 0;
    char arg0[] = "lsp";
    char *argv[] = {arg0, NULL};
    int rc = flowc_lsp(1, argv, NULL, in, devnull);
    fclose(in);
    if (rc != 0 && rc != 1) {
        fprintf(stderr, "flowc lsp returned %d\n", rc);
        abort();
    }
    return 0;
}
