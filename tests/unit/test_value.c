/* test_value.c — run-time values (runtime/core/value.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
/* cmocka.h needs the three above first */
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "value.h"
#include "value_json.h"

/* A plan holding the types the tests use. */
typedef struct tplan {
    fl_plan *p;
    uint32_t t_int, t_float, t_bool, t_str, t_path, t_date, t_time, t_bytes, t_dur;
    uint32_t t_lint, t_lstr, t_llint, t_hit, t_lhit, t_outer, t_empty;
} tplan;

static tplan mk(void) {
    tplan t;
    fl_plan *p = t.p = plan_new(fl_ctx_default());
    t.t_int = plan_type_basic(p, PT_INT);
    t.t_float = plan_type_basic(p, PT_FLOAT);
    t.t_bool = plan_type_basic(p, PT_BOOL);
    t.t_str = plan_type_basic(p, PT_STR);
    t.t_path = plan_type_basic(p, PT_PATH);
    t.t_date = plan_type_basic(p, PT_DATE);
    t.t_time = plan_type_basic(p, PT_TIME);
    t.t_bytes = plan_type_basic(p, PT_BYTES);
    t.t_dur = plan_type_basic(p, PT_DURATION);
    t.t_lint = plan_type_list(p, t.t_int);
    t.t_lstr = plan_type_list(p, t.t_str);
    t.t_llint = plan_type_list(p, t.t_lint);
    plan_field hf[] = {{plan_intern_str(p, "file"), t.t_path}, {plan_intern_str(p, "n"), t.t_int}};
    t.t_hit = plan_type_record(p, plan_intern_str(p, "Hit"), hf, 2);
    t.t_lhit = plan_type_list(p, t.t_hit);
    plan_field of[] = {{plan_intern_str(p, "name"), t.t_str},
                       {plan_intern_str(p, "hits"), t.t_lhit},
                       {plan_intern_str(p, "best"), t.t_hit},
                       {plan_intern_str(p, "w"), t.t_float},
                       {plan_intern_str(p, "ok"), t.t_bool}};
    t.t_outer = plan_type_record(p, PLAN_NONE, of, 5);
    t.t_empty = plan_type_record(p, PLAN_NONE, NULL, 0);
    return t;
}

static void check_json(const fl_plan *p, uint32_t type, fl_val v, const char *want) {
    char *got = json(p, type, v);
    assert_string_equal(got, want);
    free(got);
}

static fl_val hit(tplan *t, const char *file, int64_t n) {
    fl_val r = fv_rec_new(t->p, t->t_hit);
    fv_as_rec(r)->fields[0] = fv_str_cstr(t->p, t->t_path, file);
    fv_as_rec(r)->fields[1].i = n;
    return r;
}

static fl_val outer(tplan *t) {
    fl_val o = fv_rec_new(t->p, t->t_outer);
    fv_rec *r = fv_as_rec(o);
    r->fields[0] = fv_str_cstr(t->p, t->t_str, "a \"q\"\n");
    r->fields[1] = fv_list_new(t->p, t->t_lhit, 2);
    fv_as_list(r->fields[1])->items[0] = hit(t, "x.txt", 3);
    fv_as_list(r->fields[1])->items[1] = hit(t, "y.txt", -4);
    r->fields[2] = hit(t, "best", 9);
    r->fields[3].f = 0.1;
    r->fields[4].i = 1;
    return o;
}

static void test_refcount_nested(void **state) {
    (void)state;
    tplan t = mk();
    fl_val o = outer(&t);
    fv_incref(t.p, t.t_outer, o);
    assert_int_equal(atomic_load(&o.o->refs), 2);
    fv_decref(t.p, t.t_outer, o);
    assert_int_equal(atomic_load(&o.o->refs), 1);
    /* a child kept alive past its parent */
    fl_val hits = fv_as_rec(o)->fields[1];
    fv_incref(t.p, t.t_lhit, hits);
    fv_decref(t.p, t.t_outer, o);
    assert_int_equal(fv_as_list(hits)->len, 2);
    assert_string_equal(fv_as_str(fv_as_rec(fv_as_list(hits)->items[1])->fields[0])->data, "y.txt");
    fv_decref(t.p, t.t_lhit, hits);
    /* scalars are no-ops; a half-built list (NULL items) is released safely */
    fv_incref(t.p, t.t_int, (fl_val){.i = 5});
    fv_decref(t.p, t.t_int, (fl_val){.i = 5});
    fv_decref(t.p, t.t_lstr, fv_list_new(t.p, t.t_lstr, 3));
    assert_true(fv_is_heap(t.p, t.t_date));
    assert_true(fv_is_heap(t.p, t.t_time));
    assert_false(fv_is_heap(t.p, t.t_dur));
    plan_free(t.p);
}

static void test_equal_hash(void **state) {
    (void)state;
    tplan t = mk();
    fl_val a = outer(&t), b = outer(&t);
    assert_true(fv_equal(t.p, t.t_outer, a, b));
    assert_int_equal(fv_hash(t.p, t.t_outer, a), fv_hash(t.p, t.t_outer, b));
    fv_as_list(fv_as_rec(b)->fields[1])->items[1].o->refs = 1; /* still unique */
    fv_as_rec(fv_as_list(fv_as_rec(b)->fields[1])->items[1])->fields[1].i = 5;
    assert_false(fv_equal(t.p, t.t_outer, a, b));
    assert_int_not_equal(fv_hash(t.p, t.t_outer, a), fv_hash(t.p, t.t_outer, b));
    fv_decref(t.p, t.t_outer, a);
    fv_decref(t.p, t.t_outer, b);
    /* floats compare as values: NaN equals NaN (equal hashes, equal bytes), -0.0 is not 0.0 */
    fl_val z = {.f = 0.0}, nz = {.f = -0.0}, n1 = {.f = NAN}, n2 = {.f = -NAN};
    assert_false(fv_equal(t.p, t.t_float, z, nz));
    fv_buf e1 = {0}, e2 = {0};
    fv_encode(t.p, t.t_float, n1, &e1);
    fv_encode(t.p, t.t_float, n2, &e2);
    assert_memory_equal(e1.data, e2.data, 8);
    free(e1.data);
    free(e2.data);
    assert_true(fv_equal(t.p, t.t_float, n1, n2));
    assert_int_equal(fv_hash(t.p, t.t_float, n1), fv_hash(t.p, t.t_float, n2));
    /* strings of different lengths, bytes */
    fl_val s1 = fv_str_cstr(t.p, t.t_str, "abcdefghij"),
             s2 = fv_str_cstr(t.p, t.t_str, "abcdefghi");
    assert_false(fv_equal(t.p, t.t_str, s1, s2));
    assert_int_not_equal(fv_hash(t.p, t.t_str, s1), fv_hash(t.p, t.t_str, s2));
    fv_decref(t.p, t.t_str, s1);
    fv_decref(t.p, t.t_str, s2);
    plan_free(t.p);
}

static void test_print_json(void **state) {
    (void)state;
    tplan t = mk();
    check_json(t.p, t.t_int, (fl_val){.i = -42}, "-42");
    check_json(t.p, t.t_float, (fl_val){.f = 0.1}, "0.1");
    check_json(t.p, t.t_float, (fl_val){.f = 2.0}, "2.0");
    check_json(t.p, t.t_float, (fl_val){.f = 1e300}, "1e+300");
    check_json(t.p, t.t_float, (fl_val){.f = 1.0 / 3}, "0.3333333333333333");
    check_json(t.p, t.t_float, (fl_val){.f = INFINITY}, "null");
    check_json(t.p, t.t_bool, (fl_val){.i = 1}, "true");
    check_json(t.p, t.t_dur, (fl_val){.i = 1500}, "1500");
    fl_val s = fv_str_cstr(t.p, t.t_str, "tab\there \x01 \\ é");
    check_json(t.p, t.t_str, s, "\"tab\\there \\u0001 \\\\ é\"");
    fv_decref(t.p, t.t_str, s);
    const char *inputs[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"\"\"",         "\"Zg==\"",     "\"Zm8=\"",    "\"Zm9v\"",
                          "\"Zm9vYg==\"", "\"Zm9vYmE=\"", "\"Zm9vYmFy\""};
    for (int i = 0; i < 7; i++) {
        fl_val b =
            fv_bytes_new(t.p, t.t_bytes, (const uint8_t *)inputs[i], (int64_t)strlen(inputs[i]));
        check_json(t.p, t.t_bytes, b, want[i]);
        fv_decref(t.p, t.t_bytes, b);
    }
    fl_val o = outer(&t);
    check_json(t.p, t.t_outer, o,
               "{\"name\":\"a \\\"q\\\"\\n\",\"hits\":[{\"file\":\"x.txt\",\"n\":3},"
               "{\"file\":\"y.txt\",\"n\":-4}],\"best\":{\"file\":\"best\",\"n\":9},"
               "\"w\":0.1,\"ok\":true}");
    fv_decref(t.p, t.t_outer, o);
    fl_val e = fv_list_new(t.p, t.t_lint, 0);
    check_json(t.p, t.t_lint, e, "[]");
    fv_decref(t.p, t.t_lint, e);
    plan_free(t.p);
}

/* Bytes of every length around the base64 encoder's chunk (3072 bytes in value.c):
 * the text has 4 characters for each 3 bytes begun, '=' only at its end, and reads
 * back (through value.c's own decoder) as the same bytes. */
static void test_base64_lengths(void **state) {
    (void)state;
    tplan t = mk();
    static const int64_t lens[] = {0, 1, 2, 3, 4, 3070, 3071, 3072, 3073, 3074, 6144, 6145, 10000};
    uint8_t *data = malloc(10000);
    assert_non_null(data);
    for (int i = 0; i < 10000; i++) data[i] = (uint8_t)(i * 131 + (i >> 8));
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        int64_t n = lens[k];
        fl_val b = fv_bytes_new(t.p, t.t_bytes, data, n);
        char *text = json(t.p, t.t_bytes, b);
        size_t len = strlen(text);
        assert_int_equal(len, (size_t)((n + 2) / 3 * 4 + 2)); /* and the quotes */
        size_t pad = n % 3 ? 3 - (size_t)(n % 3) : 0;
        for (size_t i = 1; i + 1 < len; i++)
            if ((text[i] == '=') != (i >= len - 1 - pad))
                fail_msg("length %lld: '%c' at %zu of %zu", (long long)n, text[i], i, len);
        fl_val back;
        char err[200] = "";
        if (fv_parse(t.p, t.t_bytes, text, &back, err, sizeof err))
            fail_msg("length %lld: %s", (long long)n, err);
        assert_int_equal(fv_as_bytes(back)->len, n);
        if (n) assert_memory_equal(fv_as_bytes(back)->data, data, (size_t)n);
        fv_decref(t.p, t.t_bytes, back);
        fv_decref(t.p, t.t_bytes, b);
        free(text);
    }
    free(data);
    plan_free(t.p);
}

/* The one JSON string rule (fv_json_string): what each kind of byte becomes. */
static void test_json_string(void **state) {
    (void)state;
    char *buf = NULL;
    size_t n = 0;
    FILE *f;
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        f = open_memstream(&buf, &n);
        fv_json_string(f, &one, 1);
        fclose(f);
        size_t k = n - 2; /* the quotes */
        if (c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' ||
            c == '\f')
            assert_int_equal(k, 2);
        else if (c < 0x20 || c == 0x7f)
            assert_int_equal(k, 6);
        else
            assert_int_equal(k, 1); /* UTF-8 and invalid UTF-8 alike pass through */
        free(buf);
        buf = NULL;
    }
    f = open_memstream(&buf, &n);
    static const char in[] = "q\"b\\\r\b\f\x1f\x7f\0\xff\xc3\xa9/";
    fv_json_string(f, in, sizeof in - 1);
    fclose(f);
    assert_string_equal(buf, "\"q\\\"b\\\\\\r\\b\\f\\u001f\\u007f\\u0000\xff\xc3\xa9/\"");
    free(buf);
}

static void parse_ok(tplan *t, uint32_t type, const char *text, const char *want_json) {
    fl_val v;
    char err[200] = "";
    int rc = fv_parse(t->p, type, text, &v, err, sizeof err);
    if (rc) fail_msg("parse '%s': %s", text, err);
    check_json(t->p, type, v, want_json);
    fv_decref(t->p, type, v);
}

static void parse_bad(tplan *t, uint32_t type, const char *text, const char *want_err) {
    fl_val v;
    char err[200] = "";
    assert_int_equal(fv_parse(t->p, type, text, &v, err, sizeof err), -1);
    if (!strstr(err, want_err)) fail_msg("parse '%s': error '%s' lacks '%s'", text, err, want_err);
}

/* The ISO 8601 form a time takes, and the reasons for each refusal. */
static void test_time_text(void **state) {
    (void)state;
    static const char *const ok[] = {"2026-01-31T13:00:00Z", "2028-02-29T00:00:00Z",
                                     "2000-02-29T23:59:59Z", "0001-01-01T00:00:00Z",
                                     "9999-12-31T23:59:59Z"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (fv_time_problem(ok[i], strlen(ok[i]))) fail_msg("'%s' refused", ok[i]);
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"2026-02-29T00:00:00Z", "calendar day"}, {"1900-02-29T00:00:00Z", "calendar day"},
        {"2026-04-31T00:00:00Z", "calendar day"}, {"2026-01-31T24:00:00Z", "hours"},
        {"2026-01-31T13:60:00Z", "minutes"},      {"2026-01-31T13:00:60Z", "leap second"},
        {"2026-01-31T13:00:00.5Z", "fractional"}, {"2026-01-31T13:00:00+01:00", "offsets"},
        {"2026-01-31T13:00:00-00:00", "offsets"}, {"2026-01-31T13:00:00", "ends with Z"},
        {"2026-01-31T13:00:00z", "ends with Z"},  {"2026-01-31T13:00:00ZZ", "ends with Z"},
        {"2026-01-31 13:00:00Z", "written"},      {"2026-1-31T13:00:00Z", "written"},
        {"2026-01-31", "written"},                {"", "written"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = fv_time_problem(bad[i].text, strlen(bad[i].text));
        if (!why || !strstr(why, bad[i].why))
            fail_msg("'%s': got '%s', want '%s'", bad[i].text, why ? why : "(accepted)",
                     bad[i].why);
    }
    /* a length shorter than the text: the bytes beyond n are not read */
    assert_non_null(fv_time_problem("2026-01-31T13:00:00Z", 19));
    assert_true(fv_time_valid("2026-01-31T13:00:00Z", 20));
}

static void test_parse(void **state) {
    (void)state;
    tplan t = mk();
    parse_ok(&t, t.t_int, " 42 ", "42");
    parse_ok(&t, t.t_int, "1_000_000", "1000000");
    parse_ok(&t, t.t_int, "0x2a", "42");
    parse_ok(&t, t.t_int, "-010", "-10");
    parse_ok(&t, t.t_float, "2.5e1", "25.0");
    parse_ok(&t, t.t_float, "3", "3.0");
    parse_ok(&t, t.t_bool, "true", "true");
    parse_ok(&t, t.t_bool, "No", "false");
    parse_ok(&t, t.t_str, "  spaced \"as is\" ", "\"  spaced \\\"as is\\\" \"");
    parse_ok(&t, t.t_path, "data/a b.txt", "\"data/a b.txt\"");
    parse_ok(&t, t.t_date, "2024-02-29", "\"2024-02-29\"");
    parse_ok(&t, t.t_time, "2028-02-29T23:59:59Z", "\"2028-02-29T23:59:59Z\"");
    parse_ok(&t, t.t_dur, "5m", "300000");
    parse_ok(&t, t.t_dur, "250", "250");
    parse_ok(&t, t.t_bytes, "Zm9vYg==", "\"Zm9vYg==\"");
    parse_ok(&t, t.t_lint, "[1, 2 ,3]", "[1,2,3]");
    parse_ok(&t, t.t_lint, " [ ] ", "[]");
    parse_ok(&t, t.t_llint, "[[1],[],[2,3]]", "[[1],[],[2,3]]");
    parse_ok(&t, t.t_lstr, "[\"a,b\", plain, \"\\u00e9\\n\"]", "[\"a,b\",\"plain\",\"é\\n\"]");
    parse_ok(&t, t.t_lhit, "[{\"n\": 2, \"file\": \"f\"}, {file: g, n: 3}]",
             "[{\"file\":\"f\",\"n\":2},{\"file\":\"g\",\"n\":3}]");
    parse_ok(
        &t, t.t_outer,
        "{\"name\":\"x\",\"hits\":[],\"best\":{\"file\":\"b\",\"n\":1},\"w\":1.5,\"ok\":false}",
        "{\"name\":\"x\",\"hits\":[],\"best\":{\"file\":\"b\",\"n\":1},\"w\":1.5,\"ok\":false}");
    parse_ok(&t, t.t_empty, "{}", "{}");

    parse_bad(&t, t.t_int, "abc", "expected an int, got 'abc'");
    parse_bad(&t, t.t_int, "99999999999999999999", "expected an int");
    parse_bad(&t, t.t_int, "", "expected an int");
    parse_bad(&t, t.t_float, "1.5x", "expected a float");
    parse_bad(&t, t.t_bool, "maybe", "expected a bool");
    parse_bad(&t, t.t_date, "2023-02-29", "expected a date (YYYY-MM-DD), got '2023-02-29'");
    parse_bad(&t, t.t_date, "2023-13-01", "expected a date");
    parse_bad(&t, t.t_date, "23-01-01", "expected a date");
    parse_bad(&t, t.t_time, "2026-02-29T00:00:00Z", "expected a time");
    parse_bad(&t, t.t_time, "2026-01-31T24:00:00Z", "hours run from 00 to 23");
    parse_bad(&t, t.t_time, "2026-01-31", "expected a time");
    parse_bad(&t, t.t_lint, "[1, x]", "expected an int, got 'x'");
    parse_bad(&t, t.t_lint, "[1, 2", "expected ',' or ']'");
    parse_bad(&t, t.t_lint, "1, 2", "expected '['");
    parse_bad(&t, t.t_lint, "[1] 2", "unexpected text after the value");
    parse_bad(&t, t.t_hit, "{\"file\": \"f\"}", "missing field 'n'");
    parse_bad(&t, t.t_hit, "{\"file\": \"f\", \"n\": 1, \"z\": 2}", "no field 'z'");
    parse_bad(&t, t.t_hit, "{\"n\": 1, \"n\": 1}", "given twice");
    parse_bad(&t, t.t_lstr, "[\"abc]", "unterminated string");
    parse_bad(&t, t.t_bytes, "!!", "expected base64");
    /* base64 as value.c reads it (its own reader: EVP_DecodeBlock would refuse the
     * unpadded forms and take the blanks inside the quotes) */
    parse_ok(&t, t.t_bytes, "", "\"\"");
    parse_ok(&t, t.t_bytes, "Zg", "\"Zg==\"");
    parse_ok(&t, t.t_bytes, "Zm8", "\"Zm8=\"");
    parse_ok(&t, t.t_bytes, "Zm8=", "\"Zm8=\"");
    parse_ok(&t, t.t_bytes, "\"Zm9v\"", "\"Zm9v\"");
    parse_bad(&t, t.t_bytes, "Zg=g", "expected base64");
    parse_bad(&t, t.t_bytes, "Zm 9v", "expected base64");
    parse_bad(&t, t.t_bytes, "\" Zm9v\"", "expected base64");
    /* errors stay on one line whatever the input holds */
    parse_bad(&t, t.t_lint, "[ \x10\n [", "expected an int, got '?? ['");
    parse_bad(&t, t.t_hit, "{\"a\\nb\": 1}", "no field 'a?b' in this record");
    /* deep nesting is refused, not a stack overflow */
    uint32_t deep = t.t_int;
    for (int i = 0; i < 80; i++)
        deep = plan_type_list(t.p, deep);
    char text[200];
    memset(text, '[', 80);
    text[80] = 0;
    parse_bad(&t, deep, text, "nested too deeply");
    plan_free(t.p);
}

static void push_item(fl_plan *p, uint32_t v) {
    uint32_t i = PLAN_PUSH(p, items);
    p->items[i] = v;
}

static void test_from_const(void **state) {
    (void)state;
    tplan t = mk();
    fl_plan *p = t.p;
    uint32_t a = PLAN_PUSH(p, values);
    p->values[a] = (plan_value){.type = t.t_path, .u.s = plan_intern_str(p, "in.txt")};
    uint32_t b = PLAN_PUSH(p, values);
    p->values[b] = (plan_value){.type = t.t_int, .u.i = 7};
    uint32_t h = PLAN_PUSH(p, values);
    p->values[h] = (plan_value){.type = t.t_hit, .n = 2, .u.first = p->n_items};
    push_item(p, a);
    push_item(p, b);
    uint32_t l = PLAN_PUSH(p, values);
    p->values[l] = (plan_value){.type = t.t_lhit, .n = 2, .u.first = p->n_items};
    push_item(p, h);
    push_item(p, h);
    uint32_t f = PLAN_PUSH(p, values);
    p->values[f] = (plan_value){.type = t.t_float, .u.f = -1.25};
    fl_val v = fv_from_const(p, l);
    check_json(p, t.t_lhit, v, "[{\"file\":\"in.txt\",\"n\":7},{\"file\":\"in.txt\",\"n\":7}]");
    fv_decref(p, t.t_lhit, v);
    v = fv_from_const(p, f);
    assert_true(v.f == -1.25);
    plan_free(p);
}

static void roundtrip(tplan *t, uint32_t type, fl_val v) {
    fv_buf b = {0}, b2 = {0};
    fv_encode(t->p, type, v, &b);
    fl_val w;
    size_t used = 0;
    assert_int_equal(fv_decode(t->p, type, b.data, b.len, &used, &w), 0);
    assert_int_equal(used, b.len);
    assert_true(fv_equal(t->p, type, v, w));
    fv_encode(t->p, type, w, &b2);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    fv_decref(t->p, type, w);
    /* every truncation is refused cleanly */
    for (size_t n = 0; n < b.len; n++) {
        fl_val x;
        if (fv_decode(t->p, type, b.data, n, NULL, &x) == 0) {
            /* only possible when the prefix is itself a whole value: never for these */
            fv_decref(t->p, type, x);
            fail_msg("truncated to %zu of %zu bytes decoded", n, b.len);
        }
    }
    free(b.data);
    free(b2.data);
}

static void test_encode_decode(void **state) {
    (void)state;
    tplan t = mk();
    fl_val o = outer(&t);
    roundtrip(&t, t.t_outer, o);
    fv_decref(t.p, t.t_outer, o);
    roundtrip(&t, t.t_int, (fl_val){.i = INT64_MIN});
    roundtrip(&t, t.t_float, (fl_val){.f = -0.0});
    fl_val by = fv_bytes_new(t.p, t.t_bytes, (const uint8_t *)"\0\1\2", 3);
    roundtrip(&t, t.t_bytes, by);
    fv_decref(t.p, t.t_bytes, by);
    fl_val ll = fv_list_new(t.p, t.t_llint, 2);
    fv_as_list(ll)->items[0] = fv_list_new(t.p, t.t_lint, 0);
    fv_as_list(ll)->items[1] = fv_list_new(t.p, t.t_lint, 3);
    for (int i = 0; i < 3; i++)
        fv_as_list(fv_as_list(ll)->items[1])->items[i].i = i * 1000;
    roundtrip(&t, t.t_llint, ll);
    fv_decref(t.p, t.t_llint, ll);

    /* hostile input: a huge count, a bad bool, a string longer than the buffer */
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    fl_val x;
    assert_int_equal(fv_decode(t.p, t.t_lint, huge, sizeof huge, NULL, &x), -1);
    assert_int_equal(fv_decode(t.p, t.t_str, huge, sizeof huge, NULL, &x), -1);
    uint8_t two = 2;
    assert_int_equal(fv_decode(t.p, t.t_bool, &two, 1, NULL, &x), -1);
    uint32_t lempty = plan_type_list(t.p, t.t_empty);
    assert_int_equal(fv_decode(t.p, lempty, huge, 8, NULL, &x), -1);
    plan_free(t.p);
}

/* Random and mutated inputs never crash the decoder or the parser (run under ASan). */
static void test_hostile_inputs(void **state) {
    (void)state;
    tplan t = mk();
    uint32_t types[] = {t.t_outer, t.t_lhit, t.t_llint, t.t_bytes, t.t_date, t.t_lstr};
    fl_val o = outer(&t);
    fv_buf good = {0};
    fv_encode(t.p, t.t_outer, o, &good);
    fv_decref(t.p, t.t_outer, o);
    uint64_t seed = 0x1234567u;
    uint8_t buf[256];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n;
        if (iter % 2) { /* a valid encoding with a few bytes changed */
            n = good.len < sizeof buf ? good.len : sizeof buf;
            memcpy(buf, good.data, n);
            for (int k = 0; k < 3; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                buf[(seed >> 33) % n] = (uint8_t)(seed >> 20);
            }
        } else {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            n = (seed >> 33) % sizeof buf;
            for (size_t k = 0; k < n; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                buf[k] = (uint8_t)(seed >> 40);
                if (k < 8 && (seed >> 60) < 12) buf[k] = 0; /* small lengths now and then */
            }
        }
        uint32_t ty = types[iter % 6];
        fl_val v;
        if (fv_decode(t.p, ty, buf, n, NULL, &v) == 0) fv_decref(t.p, ty, v);
        /* the same bytes as text */
        char text[257];
        for (size_t k = 0; k < n; k++)
            text[k] = (char)(buf[k] ? buf[k] : ' ');
        text[n] = 0;
        char err[100];
        if (fv_parse(t.p, ty, text, &v, err, sizeof err) == 0) fv_decref(t.p, ty, v);
    }
    free(good.data);
    plan_free(t.p);
}

/* The language's durations, as the lexer and flowrun gc --older-than read them. */
static void test_duration_parse(void **state) {
    (void)state;
    int64_t ms = -1;
    assert_int_equal(fv_duration_parse("500ms", 5, &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(fv_duration_parse("30s", 3, &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(fv_duration_parse("5m", 2, &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(fv_duration_parse("12h", 3, &ms), 0);
    assert_int_equal(ms, 12 * 3600000LL);
    assert_int_equal(fv_duration_parse("1_000d", 6, &ms), 0);
    assert_int_equal(ms, 1000 * 86400000LL);
    const char *bad[] = {"", "d", "ms", "30", "3x", "-1d", "1.5h", "_1d", "1_d", "1__0d", "1 d",
                         "1dd"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(fv_duration_parse(bad[i], strlen(bad[i]), &ms), -1);
    assert_int_equal(fv_duration_parse("99999999999999999999d", 21, &ms), -2);
    assert_int_equal(fv_duration_parse("106751991167301d", 16, &ms), -2); /* > INT64_MAX ms */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refcount_nested), cmocka_unit_test(test_equal_hash),
        cmocka_unit_test(test_print_json),      cmocka_unit_test(test_parse),
        cmocka_unit_test(test_from_const),      cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_hostile_inputs),  cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_json_string),     cmocka_unit_test(test_time_text),     cmocka_unit_test(test_base64_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
