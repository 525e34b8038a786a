/*
 * test_params.c — a flow's parameters from --param texts and a --params YAML
 * file (runtime/core/params.c).
 *
 * DESIGN
 *   One small flow is compiled in-process; its parameters cover a scalar, a
 *   list of lists, a record holding a list, a list of records, a str and a
 *   float, all with defaults but `n`. Each case writes a YAML file into a
 *   temporary folder, calls params_resolve and compares either the values
 *   (printed as JSON, all parameters in one line) or the one-line error, which
 *   names the file with the line and column of the node at fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* cmocka.h needs the three above first */
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ast.h"
#include "compile.h"
#include "diag.h"
#include "scheduler.h"
#include "value_json.h"

static const char src[] = "type R = {a: int, b: [str]}\n"
                          "flow main(n: int, xs: [[int]] = [], r: R = {a = 0, b = []},\n"
                          "          rs: [R] = [], s: str = \"\", f: float = 0.0) -> int {\n"
                          "    return n\n"
                          "}\n";

typedef struct fixture {
    fl_plan *p;
    char dir[64];  /* the temporary folder */
    char file[96]; /* the YAML file in it */
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    ast_arena *ar = ast_arena_new(fl_ctx_default());
    fl_diag d;
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    diag_init(&d, "params.flow", src, strlen(src), sink);
    fl_node *prog = fl_parse(ar, &d, src, strlen(src));
    assert_non_null(prog);
    flowc_options opt = {"params.flow", "params.plan", src, strlen(src), NULL, NULL, 0, NULL, NULL, NULL};
    fx->p = flowc_compile(prog, &d, &opt);
    assert_non_null(fx->p);
    assert_int_equal(d.errors, 0);
    ast_arena_free(ar);
    fclose(sink);
    strcpy(fx->dir, "/tmp/flow-params-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->file, sizeof fx->file, "%s/p.yaml", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    unlink(fx->file);
    rmdir(fx->dir);
    plan_free(fx->p);
    free(fx);
    return 0;
}

/* Write text (len bytes; -1: up to its NUL) as the YAML file. */
static void write_yaml(fixture *fx, const char *text, long len) {
    FILE *f = fopen(fx->file, "wb");
    assert_non_null(f);
    size_t n = len < 0 ? strlen(text) : (size_t)len;
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

/* params_resolve_env on file (with kv, and environment env of the configuration
 * env_file); 0 and every value as JSON in `got` ("n xs r rs s f",
 * space-separated), or -1 and the error in `got`. */
static int resolve_env(fixture *fx, char *const *kv, int nkv, const char *file,
                       const char *env_file, const char *env, char *got, size_t gotlen) {
    const fl_plan *p = fx->p;
    const plan_graph *G = &p->graphs[0];
    fl_val out[8];
    assert_true(G->nparams <= 8);
    if (params_resolve_env(p, 0, kv, nkv, file, env_file, env, out, got, gotlen) != 0) return -1;
    got[0] = 0;
    for (uint32_t i = 0; i < G->nparams; i++) {
        uint32_t type = p->params[G->first_param + i].type;
        char *j = json(p, type, out[i]);
        size_t n = strlen(got);
        snprintf(got + n, gotlen - n, "%s%s", i ? " " : "", j);
        free(j);
        fv_decref(p, type, out[i]);
    }
    return 0;
}

/* params_resolve on the file (with kv) */
static int resolve(fixture *fx, char *const *kv, int nkv, char *got, size_t gotlen) {
    return resolve_env(fx, kv, nkv, fx->file, NULL, NULL, got, gotlen);
}

static void expect_values(fixture *fx, const char *yaml, const char *want) {
    char got[1024];
    write_yaml(fx, yaml, -1);
    if (resolve(fx, NULL, 0, got, sizeof got) != 0) fail_msg("refused: %s", got);
    assert_string_equal(got, want);
}

/* The error, after "DIR/p.yaml" when it starts so. */
static void expect_error(fixture *fx, const char *yaml, long len, const char *want) {
    char got[1024];
    write_yaml(fx, yaml, len);
    if (resolve(fx, NULL, 0, got, sizeof got) == 0) fail_msg("accepted: %s", got);
    size_t fl = strlen(fx->file);
    assert_string_equal(strncmp(got, fx->file, fl) ? got : got + fl, want);
}

static void test_nested(void **state) {
    fixture *fx = *state;
    expect_values(fx,
                  "n: 1\n"
                  "xs:\n"
                  "  - [1, 2]\n"
                  "  - []\n"
                  "  - - 3\n"
                  "    - \"4\"\n"
                  "r: {a: 5, b: [x, \"y z\", 3, true, ~]}\n"
                  "rs:\n"
                  "  - {b: [], a: 1}\n"
                  "  - a: 2\n"
                  "    b:\n"
                  "      - q\n",
                  "1 [[1,2],[],[3,4]] {\"a\":5,\"b\":[\"x\",\"y z\",\"3\",\"true\",\"~\"]} "
                  "[{\"a\":1,\"b\":[]},{\"a\":2,\"b\":[\"q\"]}] \"\" 0.0");
    /* a scalar that is the whole value reads as a --param text would */
    expect_values(fx, "n: \" 7 \"\nxs: \"[[1], [2, 3]]\"\ns: \" a b \"\n",
                  "7 [[1],[2,3]] {\"a\":0,\"b\":[]} [] \" a b \" 0.0");
}

static void test_alias(void **state) {
    fixture *fx = *state;
    /* an alias reads as a copy of its anchor's node */
    expect_values(
        fx,
        "n: &one 1\nr: {a: *one, b: &bs [u, v]}\nrs: [{a: 2, b: *bs}, &r3 {a: 3, b: []}, *r3]\n",
        "1 [] {\"a\":1,\"b\":[\"u\",\"v\"]} "
        "[{\"a\":2,\"b\":[\"u\",\"v\"]},{\"a\":3,\"b\":[]},{\"a\":3,\"b\":[]}] \"\" 0.0");
    /* an alias inside its own anchor is a value without end: the type stops it */
    expect_error(
        fx, "n: 1\nxs: &c [*c]\n", -1,
        ":2:5: parameter 'xs' ([[int]]): expected a value of type int, got a YAML sequence");
    /* a few kilobytes of aliases asking for 2048 copies of a list of 2049: refused
     * at the copy that would pass 4194304 values, before its list is allocated
     * (the place is the anchor's: an alias is its node) */
    size_t cap = 64 * 1024, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "n: 1\nxs: [&a [0");
    for (int i = 1; i < 2049; i++)
        n += (size_t)snprintf(text + n, cap - n, ",%d", i % 10);
    n += (size_t)snprintf(text + n, cap - n, "]");
    for (int i = 1; i < 2048; i++)
        n += (size_t)snprintf(text + n, cap - n, ", *a");
    snprintf(text + n, cap - n, "]\n");
    assert_true(n < cap - 8);
    expect_error(fx, text, -1,
                 ":2:6: parameter 'xs' ([[int]]): the file holds more than 4194304 values (an "
                 "alias counts once per use)");
    free(text);
}

static void test_wrong_type(void **state) {
    fixture *fx = *state;
    expect_error(fx, "n: 1\nxs:\n  - [1, 2]\n  - [3, four]\n", -1,
                 ":4:9: parameter 'xs' ([[int]]): expected an int, got 'four'");
    expect_error(fx, "n: three\n", -1, ":1:4: parameter 'n' (int): expected an int, got 'three'");
    expect_error(fx, "n: 1\nf: 1e999\n", -1,
                 ":2:4: parameter 'f' (float): expected a finite float, got '1e999'");
    expect_error(fx, "n: 1\nr:\n  a: 1\n  c: 2\n", -1,
                 ":4:3: parameter 'r' (R): no field 'c' in this record");
    expect_error(fx, "n: 1\nr: {a: 1, a: 2, b: []}\n", -1,
                 ":2:11: parameter 'r' (R): field 'a' given twice");
    expect_error(fx, "n: 1\nr: {a: 1}\n", -1, ":2:4: parameter 'r' (R): missing field 'b'");
    expect_error(fx, "n: 1\nrs: [[1]]\n", -1,
                 ":2:6: parameter 'rs' ([R]): expected '{' for a record");
    expect_error(fx, "n: 1\nxs: [5]\n", -1,
                 ":2:6: parameter 'xs' ([[int]]): expected '[' for a list");
    /* a sequence or mapping is never a str: no text is made up for it */
    expect_error(fx, "n: 1\ns: [a, b]\n", -1,
                 ":2:4: parameter 's' (str): expected a value of type str, got a YAML sequence");
    expect_error(fx, "n: 1\ns: {a: b}\n", -1,
                 ":2:4: parameter 's' (str): expected a value of type str, got a YAML mapping");
    expect_error(
        fx, "colour: red\n", -1,
        ":1:1: unknown parameter 'colour' for flow main (its parameters: n, xs, r, rs, s, f)");
    expect_error(fx, "s: one\nn: 2\ns: two\n", -1,
                 ":3: parameter 's' given twice (first on line 1)");
    expect_error(fx, "n: 1\nr: {a: 1, b: [\"ok\", \"a\\0b\"]}\n", -1,
                 ":2: parameter 'r': a string holds a NUL byte");
}

static void test_empty_and_not_yaml(void **state) {
    fixture *fx = *state;
    char got[512];
    /* an empty file (or one of comments) gives nothing: the defaults, and n is missing */
    write_yaml(fx, "", 0);
    assert_int_equal(resolve(fx, NULL, 0, got, sizeof got), -1);
    assert_string_equal(got, "missing parameter 'n' (int) for flow main: give --param n=VALUE");
    write_yaml(fx, "# nothing here\n", -1);
    char *kv[] = {"n=4"};
    assert_int_equal(resolve(fx, kv, 1, got, sizeof got), 0);
    assert_string_equal(got, "4 [] {\"a\":0,\"b\":[]} [] \"\" 0.0");
    /* not YAML: libyaml's complaint, at its place */
    expect_error(fx, "n: [unclosed\n", -1, ":2:1: did not find expected ',' or ']'");
    expect_error(fx, "\x01\x02 binary\n", -1, ":1:1: control characters are not allowed");
    /* YAML, but not a mapping */
    expect_error(fx, "- n\n- 1\n", -1, ":1:1: expected a mapping of parameter names to values");
    expect_error(fx, "just words\n", -1, ":1:1: expected a mapping of parameter names to values");
    expect_error(fx, "[n]: 1\n", -1, ":1:1: a parameter name must be a plain word");
    unlink(fx->file);
    assert_int_equal(resolve(fx, kv, 1, got, sizeof got), -1);
    assert_non_null(strstr(got, "cannot read parameters file"));
}

static void test_precedence(void **state) {
    fixture *fx = *state;
    char got[512];
    /* --param wins, and the file's value it replaces is not even read */
    write_yaml(fx, "n: not a number\ns: file\nf: 2.5\n", -1);
    char *kv[] = {"n=3", "s=cli"};
    assert_int_equal(resolve(fx, kv, 2, got, sizeof got), 0);
    assert_string_equal(got, "3 [] {\"a\":0,\"b\":[]} [] \"cli\" 2.5");
    char *twice[] = {"n=3", "n=4"};
    assert_int_equal(resolve(fx, twice, 2, got, sizeof got), -1);
    assert_string_equal(got, "parameter 'n' given twice (--param n=3 and --param n=4)");
}

/* flow.yaml's `envs: NAME: params:` sits between the --params file and the
 * defaults; its values read as the file's do, its errors name flow.yaml */
static void test_env_layer(void **state) {
    fixture *fx = *state;
    char got[512], cfg[128];
    snprintf(cfg, sizeof cfg, "%s/flow.yaml", fx->dir);
    FILE *f = fopen(cfg, "wb");
    assert_non_null(f);
    fputs("envs:\n"
          "  prod:\n"
          "    params: {n: 1}\n"
          "  test:\n"
          "    params:\n"
          "      n: \" 2 \"\n"
          "      xs: [[1], [2, 3]]\n"
          "      r: {a: 4, b: [x]}\n"
          "      s: env\n"
          "      f: 0.5\n"
          "  bad:\n"
          "    params: {n: 1, colour: red}\n"
          "  typo:\n"
          "    params: {n: [1]}\n"
          "  none:\n",
          f);
    fclose(f);
    /* the environment alone: a scalar as --param would read it, a sequence and a
     * mapping as the --params file would */
    assert_int_equal(resolve_env(fx, NULL, 0, NULL, cfg, "test", got, sizeof got), 0);
    assert_string_equal(got, "2 [[1],[2,3]] {\"a\":4,\"b\":[\"x\"]} [] \"env\" 0.5");
    assert_int_equal(resolve_env(fx, NULL, 0, NULL, cfg, "prod", got, sizeof got), 0);
    assert_string_equal(got, "1 [] {\"a\":0,\"b\":[]} [] \"\" 0.0");
    /* --params FILE wins over the environment, --param over both */
    write_yaml(fx, "s: file\nf: 2.5\n", -1);
    char *kv[] = {"f=9.5"};
    assert_int_equal(resolve_env(fx, kv, 1, fx->file, cfg, "test", got, sizeof got), 0);
    assert_string_equal(got, "2 [[1],[2,3]] {\"a\":4,\"b\":[\"x\"]} [] \"file\" 9.5");
    /* an environment without params, and one not in the file: nothing from them */
    assert_int_equal(resolve_env(fx, NULL, 0, NULL, cfg, "none", got, sizeof got), -1);
    assert_string_equal(got, "missing parameter 'n' (int) for flow main: give --param n=VALUE");
    assert_int_equal(resolve_env(fx, kv, 1, NULL, cfg, "qa", got, sizeof got), -1);
    assert_string_equal(got, "missing parameter 'n' (int) for flow main: give --param n=VALUE");
    /* a parameter the flow does not have; a value of the wrong type */
    assert_int_equal(resolve_env(fx, NULL, 0, NULL, cfg, "bad", got, sizeof got), -1);
    size_t cl = strlen(cfg);
    assert_memory_equal(got, cfg, cl);
    assert_string_equal(got + cl, ":12:20: environment 'bad': unknown parameter 'colour' for flow "
                                  "main (its parameters: n, xs, r, rs, s, f)");
    assert_int_equal(resolve_env(fx, NULL, 0, NULL, cfg, "typo", got, sizeof got), -1);
    assert_string_equal(got + cl,
                        ":14:17: parameter 'n' (int): expected a value of type int, got a YAML "
                        "sequence");
    unlink(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested),     cmocka_unit_test(test_alias),
        cmocka_unit_test(test_wrong_type), cmocka_unit_test(test_empty_and_not_yaml),
        cmocka_unit_test(test_precedence), cmocka_unit_test(test_env_layer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
