/* compile.c — PLACEHOLDER until the checker lands: accepts nothing. */
#include "compile.h"

flow_plan *flowc_compile(const flow_node *prog, flow_diag *diag, const flowc_options *opt) {
    (void)opt;
    diag_error(diag, prog->span, NULL, "the checker is not built yet");
    return NULL;
}
