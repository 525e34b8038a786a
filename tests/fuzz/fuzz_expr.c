/*
 * fuzz_expr.c — libFuzzer target for the expression module: any byte string is
 * taken as the text of a lambda (over x: int, s: str, xs: [int], r: {file: path,
 * n: int}, of which it may declare the first k), parsed, type-checked and lowered.
 * What compiles must pass expr_verify and run through expr_eval without crash, leak
 * or undefined behaviour (a run-time error is fine); what does not compile must have
 * reported an error and left nothing in the plan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_expr.h"
#include "expr.h"
#include "ast.h"
#include "diag.h"

static FILE *devnull; /* where diagnostics go: opened once, kept for the process */

static const fl_node *find_lambda(const fl_node *n, int depth) {
    if (!n || depth > 400) return NULL;
    if (n->kind == AST_LAMBDA) return n;
    const fl_node *r;
    if ((r = find_lambda(n->a, depth + 1)) || (r = find_lambda(n->b, depth + 1)) ||
        (r = find_lambda(n->c, depth + 1)))
        return r;
    for (int i = 0; i < n->list.len; i++)
        if ((r = find_lambda(n->list.items[i], depth + 1))) return r;
    for (int i = 0; i < n->list2.len; i++)
        if ((r = find_lambda(n->list2.items[i], depth + 1))) return r;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!devnull) devnull = fopen("/dev/null", "w");
    static const char head[] = "flow f() {\n    let y = q.map(\n", tail[] = ")\n}\n";
    size_t n = sizeof head - 1 + size + sizeof tail - 1;
    char *src = malloc(n + 1);
    memcpy(src, head, sizeof head - 1);
    memcpy(src + sizeof head - 1, data, size);
    memcpy(src + sizeof head - 1 + size, tail, sizeof tail);

    ast_arena *ar = ast_arena_new(fl_ctx_default());
    fl_diag d;
    diag_init(&d, "f.flow", src, n, devnull);
    const fl_node *prog = fl_parse(ar, &d, src, n);
    const fl_node *lam = prog ? find_lambda(prog, 0) : NULL;
    if (lam) {
        fl_plan *p = plan_new(fl_ctx_default());
        uint32_t t_int = plan_type_basic(p, PT_INT), t_str = plan_type_basic(p, PT_STR);
        uint32_t t_path = plan_type_basic(p, PT_PATH), t_lint = plan_type_list(p, t_int);
        plan_field rf[] = {{plan_intern_str(p, "file"), t_path}, {plan_intern_str(p, "n"), t_int}};
        uint32_t t_row = plan_type_record(p, PLAN_NONE, rf, 2);
        uint32_t ptypes[] = {t_int, t_str, t_lint, t_row};
        expr_ctx cx = {p, &d};
        int errors = d.errors;
        uint32_t ncode = p->n_code, nlam = p->n_lambdas;
        uint32_t ret;
        uint32_t li = expr_lower_lambda_prefix(&cx, lam, ptypes, 4, PLAN_NONE, &ret);
        if (li == PLAN_NONE) {
            if (d.errors == errors || p->n_code != ncode || p->n_lambdas != nlam) abort();
        } else {
            char why[256];
            if (expr_verify(p, li, why, sizeof why) != 0) {
                fprintf(stderr, "compiled code fails verification: %s\n", why);
                abort();
            }
            fl_val args[4];
            args[0].i = 7;
            args[1] = fv_str_cstr(p, t_str, "a/b.tar.gz");
            args[2] = fv_list_new(p, t_lint, 3);
            for (int i = 0; i < 3; i++)
                fv_as_list(args[2])->items[i].i = i * 5;
            args[3] = fv_rec_new(p, t_row);
            fv_as_rec(args[3])->fields[0] = fv_str_cstr(p, t_path, "/x/y");
            fv_as_rec(args[3])->fields[1].i = -3;
            fl_val out;
            expr_error e;
            if (expr_eval(p, li, args, &out, &e) == 0) fv_decref(p, ret, out);
            for (int i = 1; i < 4; i++)
                fv_decref(p, ptypes[i], args[i]);
        }
        plan_free(p);
    }
    ast_arena_free(ar);
    free(src);
    return 0;
}
