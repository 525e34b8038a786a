/* parse_stub.c — PLACEHOLDER until grammar/flow.y lands (then this file is deleted). */
#include "ast.h"
#include "diag.h"

flow_node *flow_parse(ast_arena *ar, struct flow_diag *diag, const char *src, size_t len) {
    (void)ar; (void)src; (void)len;
    flow_span sp = {1, 1, 1, 1};
    diag_error(diag, sp, NULL, "the parser is not built yet");
    return NULL;
}
