/* test_cli_opts.c — flowrun's command lines (runtime/app/cli_opts.c): every form an
 * option may take, arguments in any order and in their place, `--`, the one-line
 * messages for each mistake (stderr is captured and compared), abbreviations
 * refused, a fresh start for each line, and POSIXLY_CORRECT ignored. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { O_STATE = 256, O_JSON, O_VERSION };

static const struct option opts[] = {{"state", required_argument, NULL, O_STATE},
                                     {"json", no_argument, NULL, O_JSON},
                                     {"jobs", required_argument, NULL, 'j'},
                                     {"jsonl", no_argument, NULL, 'J'},
                                     {NULL, 0, NULL, 0}};

/* What a line gave: "ARG(x) STATE(d) JSON j(4) END", or "... ERROR" followed by
 * what was said on stderr (its one line, without the newline). */
typedef struct outcome {
    char seen[512];
    char said[512];
} outcome;

static outcome parse(const char *who, int stop_at_arg, char **argv) {
    outcome o;
    memset(&o, 0, sizeof o);
    int argc = 0;
    while (argv[argc])
        argc++;
    FILE *cap = tmpfile();
    assert_non_null(cap);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), 2) >= 0);

    cli_line l;
    cli_line_init(&l, argc, argv, who, " (hint)", "j:", opts, stop_at_arg);
    const char *val;
    int c;
    size_t n = 0;
    do {
        c = cli_next(&l, &val);
        const char *name = c == CLI_ARG     ? "ARG"
                           : c == CLI_END   ? "END"
                           : c == CLI_ERROR ? "ERROR"
                           : c == O_STATE   ? "STATE"
                           : c == O_JSON    ? "JSON"
                           : c == 'j'       ? "j"
                           : c == 'J'       ? "J"
                                            : "?";
        n += (size_t)snprintf(o.seen + n, sizeof o.seen - n, "%s%s", n ? " " : "", name);
        if (val) n += (size_t)snprintf(o.seen + n, sizeof o.seen - n, "(%s)", val);
    } while (c != CLI_END && c != CLI_ERROR && n < sizeof o.seen - 64);
    if (stop_at_arg && c == CLI_END) snprintf(o.seen + n, sizeof o.seen - n, " rest=%d", l.rest);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    if (fgets(o.said, sizeof o.said, cap)) o.said[strcspn(o.said, "\n")] = 0;
    char more[64];
    assert_null(fgets(more, sizeof more, cap)); /* one line at most */
    fclose(cap);
    return o;
}

#define LINE(...) ((char *[]){__VA_ARGS__, NULL})

static void test_forms(void **state) {
    (void)state;
    outcome o = parse("t", 0,
                      LINE("cmd", "--state", "d1", "--state=d2", "--state=", "-j", "4", "-j5",
                           "--jobs=6", "--jobs", "7", "--json"));
    assert_string_equal(o.seen, "STATE(d1) STATE(d2) STATE() j(4) j(5) j(6) j(7) JSON END");
    assert_string_equal(o.said, "");
    /* a value is the next word whatever it looks like */
    o = parse("t", 0, LINE("cmd", "--state", "--json", "-j", "-1"));
    assert_string_equal(o.seen, "STATE(--json) j(-1) END");
}

static void test_arguments_in_place(void **state) {
    (void)state;
    char *argv[] = {"cmd", "a", "--json", "b",      "-",  "--state",
                    "d",   "c", "--",     "--json", "-j", NULL};
    char *copy[12];
    memcpy(copy, argv, sizeof argv);
    outcome o = parse("t", 0, argv);
    assert_string_equal(o.seen,
                        "ARG(a) JSON ARG(b) ARG(-) STATE(d) ARG(c) ARG(--json) ARG(-j) END");
    for (int i = 0; i < 12; i++)
        assert_ptr_equal(argv[i], copy[i]); /* never reordered */
}

static void test_posixly_correct_ignored(void **state) {
    (void)state;
    setenv("POSIXLY_CORRECT", "1", 1);
    outcome o = parse("t", 0, LINE("cmd", "a", "--json"));
    unsetenv("POSIXLY_CORRECT");
    assert_string_equal(o.seen, "ARG(a) JSON END");
}

static void test_mistakes(void **state) {
    (void)state;
    outcome o = parse("flowrun x", 0, LINE("cmd", "a", "--bogus=3", "--json"));
    assert_string_equal(o.seen, "ARG(a) ERROR");
    assert_string_equal(o.said, "flowrun x: unknown option '--bogus=3' (hint)");
    o = parse("t", 0, LINE("cmd", "--state"));
    assert_string_equal(o.said, "t: option '--state' needs a value (hint)");
    o = parse("t", 0, LINE("cmd", "--jobs"));
    assert_string_equal(o.said, "t: option '--jobs' needs a value (hint)");
    o = parse("t", 0, LINE("cmd", "-j"));
    assert_string_equal(o.said, "t: option '-j' needs a value (hint)");
    o = parse("t", 0, LINE("cmd", "--json=1"));
    assert_string_equal(o.said, "t: option '--json' takes no value (hint)");
    o = parse("t", 0, LINE("cmd", "-x"));
    assert_string_equal(o.said, "t: unknown option '-x' (hint)");
    /* an unknown letter after a long flag is a short option's mistake */
    o = parse("t", 0, LINE("cmd", "--json", "-qj4"));
    assert_string_equal(o.seen, "JSON ERROR");
    assert_string_equal(o.said, "t: unknown option '-q' (hint)");
}

/* getopt_long takes a unique prefix; flowrun does not (an option added later must
 * not change what a command line means) */
static void test_abbreviations_refused(void **state) {
    (void)state;
    outcome o = parse("t", 0, LINE("cmd", "--sta", "d"));
    assert_string_equal(o.seen, "ERROR");
    assert_string_equal(o.said, "t: unknown option '--sta' (hint)");
    o = parse("t", 0, LINE("cmd", "--st=d"));
    assert_string_equal(o.said, "t: unknown option '--st=d' (hint)");
    o = parse("t", 0, LINE("cmd", "--jso")); /* ambiguous (json, jsonl) */
    assert_string_equal(o.said, "t: unknown option '--jso' (hint)");
    o = parse("t", 0, LINE("cmd", "--jsonl", "--sta"));
    assert_string_equal(o.seen, "J ERROR");
    assert_string_equal(o.said, "t: unknown option '--sta' (hint)");
    o = parse("t", 0, LINE("cmd", "--json", "--jsonl"));
    assert_string_equal(o.seen, "JSON J END");
}

/* flowrun's own options end at the command; each line starts afresh */
static void test_stop_at_argument_and_restart(void **state) {
    (void)state;
    outcome o = parse("t", 1, LINE("flowrun", "--json", "runs", "--json", "--bogus"));
    assert_string_equal(o.seen, "JSON END rest=2");
    o = parse("t", 1, LINE("flowrun", "--", "--json"));
    assert_string_equal(o.seen, "END rest=2");
    o = parse("t", 1, LINE("flowrun"));
    assert_string_equal(o.seen, "END rest=1");
    /* a line left half read (an error in the middle of a bundle) does not leak into the next */
    o = parse("t", 0, LINE("cmd", "-qqq"));
    assert_string_equal(o.seen, "ERROR");
    o = parse("t", 0, LINE("cmd", "a", "-j2"));
    assert_string_equal(o.seen, "ARG(a) j(2) END");
}

/* cli_count: the whole word, digits only, within bounds */
static void test_counts(void **state) {
    (void)state;
    int64_t v = 0;
    assert_int_equal(cli_count("4", 1, 4096, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(cli_count("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cli_count("-3", -5, 5, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(cli_count("9223372036854775807", 1, INT64_MAX, &v), 0);
    const char *bad[] = {"", "0", "4097", "+4", " 4", "4 ", "4x", "-1", "0x10", "1e3",
                         "99999999999999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        v = 77;
        assert_int_equal(cli_count(bad[k], 1, 4096, &v), -1);
        assert_int_equal(v, 77); /* untouched */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_arguments_in_place),
        cmocka_unit_test(test_posixly_correct_ignored),
        cmocka_unit_test(test_mistakes),
        cmocka_unit_test(test_abbreviations_refused),
        cmocka_unit_test(test_stop_at_argument_and_restart),
        cmocka_unit_test(test_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
