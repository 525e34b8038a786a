/*
 * fuzz_fmt.c — libFuzzer target for `flowc fmt` (compiler/fmt.c).
 *
 * Any byte string goes through fmt_source(); diagnostics go to /dev/null. Besides
 * "no crash, no leak, no UB", it checks what the formatter promises:
 *  - a file that parses is formatted: fmt_source refuses only what does not parse
 *    (its own check, same tree and same comments after formatting, never fails);
 *  - formatting is idempotent: the formatted text formats to itself.
 * Seeds: every tests/**.flow (tests/fuzz/run.sh), untidy layouts among them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "diag.h"
#include "fmt.h"

static FILE *devnull; /* where diagnostics go: opened once, kept for the process */

/* Whether src parses (with the compiler's parser, as flowc would). */
static int parses(const char *src, size_t len) {
    fl_ctx ctx;
    fl_ctx_init(&ctx);
    ast_arena *ar = ast_arena_new(&ctx);
    if (!ar) return 0;
    fl_diag d;
    diag_init(&d, "fuzz.flow", src, len, devnull);
    int ok = fl_parse(ar, &d, src, len) != NULL && !d.errors;
    ast_arena_free(ar);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    const char *src = (const char *)data;
    fl_diag d;
    diag_init(&d, "fuzz.flow", src, size, devnull);
    size_t n = 0;
    char *out = fmt_source(src, size, &d, &n);
    if (!out) {
        if (parses(src, size)) {
            fprintf(stderr, "a file that parses was refused by fmt\n");
            abort();
        }
        return 0;
    }
    fl_diag d2;
    diag_init(&d2, "fuzz.flow", out, n, devnull);
    size_t n2 = 0;
    char *again = fmt_source(out, n, &d2, &n2);
    if (!again || n2 != n || memcmp(out, again, n)) {
        fprintf(stderr, "not idempotent:\n---- once\n%.*s\n---- twice\n%.*s\n", (int)n, out,
                again ? (int)n2 : 0, again ? again : "");
        abort();
    }
    free(again);
    free(out);
    return 0;
}
