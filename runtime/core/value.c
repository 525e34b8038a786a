/*
 * value.c — run-time values: construction, reference counts, equality and
 * hashing, plan constants, JSON output, parameter parsing, and the binary
 * encoding used by process workers and the store.
 *
 * DESIGN
 *   A fl_val is an untagged word; every function here takes the plan type
 *   alongside the value and dispatches on plan->types[type].kind, recursing
 *   into list elements and record fields. Heap objects are immutable after
 *   construction, so the only shared mutable state is the reference count,
 *   which is atomic (increments relaxed, the final decrement acq_rel).
 *
 *   Encoding (fv_encode): little-endian, no padding, no type tags (the reader
 *   knows the type):
 *     int, duration, float  8 bytes (float: its IEEE bits, every NaN as one quiet NaN)
 *     bool                  1 byte, 0 or 1
 *     str/path/dir/date     u64 length, then the bytes (no NUL)
 *     bytes                 u64 length, then the bytes
 *     [T]                   u64 count, then each item
 *     record                each field in order
 *   Equal values give equal bytes. fv_decode checks every length against the
 *   bytes left before allocating, so a hostile buffer cannot make it allocate
 *   more than a small multiple of its own size.
 */
#include "value.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h> /* base64_encode_raw: base64 for bytes in JSON */

/* Deepest nesting of lists/records accepted by the text parser and the decoder. */
#define FV_MAX_DEPTH 64
/* Most items a decoded list of zero-size items (e.g. [{}]) may claim. */
#define FV_MAX_EMPTY_ITEMS (1 << 20)

/* ---- allocation: through the plan's context; NULL when out of memory (the
 * context's error says so) and the caller unwinds ---- */

static void *fv_alloc(const fl_plan *p, size_t n) {
    return fl_malloc(p->ctx, n);
}

static void fv_free(const fl_plan *p, void *q) {
    fl_free(p->ctx, q);
}

static inline const plan_type *ty(const fl_plan *p, uint32_t type) {
    return &p->types[type];
}

#define HEAP_KINDS                                                                                 \
    ((1u << PT_STR) | (1u << PT_PATH) | (1u << PT_DIR) | (1u << PT_DATE) | (1u << PT_BYTES) |      \
     (1u << PT_LIST) | (1u << PT_RECORD) | (1u << PT_TIME))

bool fv_is_heap(const fl_plan *p, uint32_t type) {
    uint32_t k = ty(p, type)->kind;
    return k < 32 && (HEAP_KINDS >> k & 1u);
}

/* ---- constructors ---- */

static void obj_init(fv_obj *o, uint32_t type) {
    atomic_init(&o->refs, 1);
    o->type = type;
}

fl_val fv_str_new(const fl_plan *p, uint32_t type, const char *s, int64_t len) {
    if (len < 0) len = 0;
    fv_str *o = fv_alloc(p, sizeof *o + (size_t)len + 1);
    if (!o) return (fl_val){.o = NULL};
    obj_init(&o->h, type);
    o->len = len;
    if (len) memcpy(o->data, s, (size_t)len);
    o->data[len] = 0;
    return (fl_val){.o = &o->h};
}

fl_val fv_str_cstr(const fl_plan *p, uint32_t type, const char *s) {
    return fv_str_new(p, type, s ? s : "", s ? (int64_t)strlen(s) : 0);
}

fl_val fv_bytes_new(const fl_plan *p, uint32_t type, const uint8_t *data, int64_t len) {
    if (len < 0) len = 0;
    fv_bytes *o = fv_alloc(p, sizeof *o + (size_t)len);
    if (!o) return (fl_val){.o = NULL};
    obj_init(&o->h, type);
    o->len = len;
    if (len) memcpy(o->data, data, (size_t)len);
    return (fl_val){.o = &o->h};
}

fl_val fv_list_new(const fl_plan *p, uint32_t type, int64_t len) {
    if (len < 0) len = 0;
    size_t n = sizeof(fv_list) + (size_t)len * sizeof(fl_val);
    fv_list *o = fv_alloc(p, n);
    if (!o) return (fl_val){.o = NULL};
    memset(o, 0, n);
    obj_init(&o->h, type);
    o->len = len;
    return (fl_val){.o = &o->h};
}

fl_val fv_rec_new(const fl_plan *p, uint32_t type) {
    uint32_t nf = ty(p, type)->n;
    size_t n = sizeof(fv_rec) + (size_t)nf * sizeof(fl_val);
    fv_rec *o = fv_alloc(p, n);
    if (!o) return (fl_val){.o = NULL};
    memset(o, 0, n);
    obj_init(&o->h, type);
    return (fl_val){.o = &o->h};
}

/* ---- reference counts ---- */

void fv_incref(const fl_plan *p, uint32_t type, fl_val v) {
    if (!fv_is_heap(p, type) || !v.o) return;
    atomic_fetch_add_explicit(&v.o->refs, 1, memory_order_relaxed);
}

void fv_decref(const fl_plan *p, uint32_t type, fl_val v) {
    if (!fv_is_heap(p, type) || !v.o) return; /* NULL: a half-built list or record */
    if (atomic_fetch_sub_explicit(&v.o->refs, 1, memory_order_acq_rel) != 1) return;
    const plan_type *t = ty(p, type);
    if (t->kind == PT_LIST && fv_is_heap(p, t->elem)) {
        fv_list *l = fv_as_list(v);
        for (int64_t i = 0; i < l->len; i++)
            fv_decref(p, t->elem, l->items[i]);
    } else if (t->kind == PT_RECORD) {
        fv_rec *r = fv_as_rec(v);
        for (uint32_t i = 0; i < t->n; i++)
            fv_decref(p, p->fields[t->first + i].type, r->fields[i]);
    }
    fv_free(p, v.o);
}

/* ---- equality and hashing ---- */

/* Floats compare as values, not as IEEE operands: every NaN equals every NaN,
 * and -0.0 differs from 0.0 (they print and encode differently). So equal values
 * have equal hashes and equal encodings. */
static uint64_t float_bits(double f) {
    uint64_t w;
    if (isnan(f)) return 0x7ff8000000000000ull;
    memcpy(&w, &f, 8);
    return w;
}

static bool float_eq(double a, double b) {
    return float_bits(a) == float_bits(b);
}

bool fv_equal(const fl_plan *p, uint32_t type, fl_val a, fl_val b) {
    const plan_type *t = ty(p, type);
    switch (t->kind) {
        case PT_VOID:
            return true;
        case PT_FLOAT:
            return float_eq(a.f, b.f);
        case PT_INT:
        case PT_DURATION:
            return a.i == b.i;
        case PT_BOOL:
            return (a.i != 0) == (b.i != 0);
        case PT_BYTES: {
            fv_bytes *x = fv_as_bytes(a), *y = fv_as_bytes(b);
            return x->len == y->len && !memcmp(x->data, y->data, (size_t)x->len);
        }
        case PT_LIST: {
            fv_list *x = fv_as_list(a), *y = fv_as_list(b);
            if (x == y) return true;
            if (x->len != y->len) return false;
            for (int64_t i = 0; i < x->len; i++)
                if (!fv_equal(p, t->elem, x->items[i], y->items[i])) return false;
            return true;
        }
        case PT_RECORD: {
            fv_rec *x = fv_as_rec(a), *y = fv_as_rec(b);
            if (x == y) return true;
            for (uint32_t i = 0; i < t->n; i++)
                if (!fv_equal(p, p->fields[t->first + i].type, x->fields[i], y->fields[i]))
                    return false;
            return true;
        }
        default: { /* text */
            fv_str *x = fv_as_str(a), *y = fv_as_str(b);
            return x->len == y->len && !memcmp(x->data, y->data, (size_t)x->len);
        }
    }
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(const uint8_t *d, int64_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, d + i, 8);
        h = mix64(h ^ w) + 0x632be59bd9b4e019ull;
    }
    uint64_t tail = 0;
    for (int k = 0; i < n; i++, k++)
        tail |= (uint64_t)d[i] << (8 * k);
    return mix64(h ^ tail);
}

uint64_t fv_hash(const fl_plan *p, uint32_t type, fl_val v) {
    const plan_type *t = ty(p, type);
    switch (t->kind) {
        case PT_VOID:
            return 0;
        case PT_FLOAT:
            return mix64(float_bits(v.f));
        case PT_INT:
        case PT_DURATION:
            return mix64((uint64_t)v.i);
        case PT_BOOL:
            return mix64(v.i != 0);
        case PT_BYTES:
            return hash_bytes(fv_as_bytes(v)->data, fv_as_bytes(v)->len);
        case PT_LIST: {
            fv_list *l = fv_as_list(v);
            uint64_t h = mix64(0x4c495354ull + (uint64_t)l->len);
            for (int64_t i = 0; i < l->len; i++)
                h = mix64(h ^ fv_hash(p, t->elem, l->items[i]));
            return h;
        }
        case PT_RECORD: {
            fv_rec *r = fv_as_rec(v);
            uint64_t h = mix64(0x52454352ull);
            for (uint32_t i = 0; i < t->n; i++)
                h = mix64(h ^ fv_hash(p, p->fields[t->first + i].type, r->fields[i]));
            return h;
        }
        default:
            return hash_bytes((const uint8_t *)fv_as_str(v)->data, fv_as_str(v)->len);
    }
}

/* ---- plan constants ---- */

fl_val fv_from_const(const fl_plan *p, uint32_t value_id) {
    const plan_value *pv = &p->values[value_id];
    const plan_type *t = ty(p, pv->type);
    fl_val v = {0};
    switch (t->kind) {
        case PT_FLOAT:
            v.f = pv->u.f;
            return v;
        case PT_INT:
        case PT_DURATION:
        case PT_BOOL:
            v.i = pv->u.i;
            return v;
        case PT_VOID:
            return v;
        case PT_BYTES:
            return fv_bytes_new(p, pv->type, NULL, 0);
        case PT_LIST: {
            v = fv_list_new(p, pv->type, pv->n);
            for (uint32_t i = 0; v.o && i < pv->n; i++)
                if (!(fv_as_list(v)->items[i] = fv_from_const(p, p->items[pv->u.first + i])).o &&
                    fv_is_heap(p, t->elem)) {
                    fv_decref(p, pv->type, v);
                    return (fl_val){.o = NULL};
                }
            return v;
        }
        case PT_RECORD: {
            v = fv_rec_new(p, pv->type);
            for (uint32_t i = 0; v.o && i < pv->n && i < t->n; i++)
                if (!(fv_as_rec(v)->fields[i] = fv_from_const(p, p->items[pv->u.first + i])).o &&
                    fv_is_heap(p, p->fields[t->first + i].type)) {
                    fv_decref(p, pv->type, v);
                    return (fl_val){.o = NULL};
                }
            return v;
        }
        default:
            return fv_str_cstr(p, pv->type, plan_str(p, pv->u.s));
    }
}

/* ---- JSON output ---- */

/* The one JSON string rule of flow (RFC 8259): " and \\ are escaped with a
 * backslash; \n \t \r \b \f by their short escapes; every other control byte
 * (below 0x20, and DEL 0x7f, which terminals also act on) as \u00XX. Every other
 * byte is copied as it is: UTF-8 passes through, and so do bytes that are not
 * valid UTF-8 (a task's output is not checked; a reader that insists on UTF-8
 * sees the same bytes the task wrote). */
static size_t json_escape(unsigned char c, char out[8]) {
    static const char hex[] = "0123456789abcdef";
    static const char esc_from[] = "\"\\\n\r\t\b\f", esc_to[] = "\"\\nrtbf";
    const char *e = c ? strchr(esc_from, c) : NULL;
    if (e) {
        out[0] = '\\';
        out[1] = esc_to[e - esc_from];
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    out[0] = (char)c;
    return 1;
}

void fv_json_string(FILE *out, const char *s, size_t n) {
    char e[8];
    putc('"', out);
    for (size_t i = 0; i < n; i++) {
        size_t k = json_escape((unsigned char)s[i], e);
        if (k == 1)
            putc(e[0], out);
        else
            fwrite(e, 1, k, out);
    }
    putc('"', out);
}

/* Bytes in JSON: standard base64 (RFC 4648 alphabet, '=' padding, no line
 * breaks), written by Nettle's base64_encode_raw a chunk at a time: a chunk is a
 * multiple of 3 bytes, so only the last one is padded, and a value of any size
 * needs only this buffer. */
static void json_base64(const uint8_t *d, int64_t n, FILE *out) {
    enum { CHUNK = 3 * 1024 };
    char text[BASE64_ENCODE_RAW_LENGTH(CHUNK)];
    putc('"', out);
    for (int64_t i = 0; i < n; i += CHUNK) {
        size_t len = n - i < CHUNK ? (size_t)(n - i) : CHUNK;
        base64_encode_raw(text, len, d + i);
        fwrite(text, 1, BASE64_ENCODE_RAW_LENGTH(len), out);
    }
    putc('"', out);
}

/* The shortest "%.{15,16,17}g" text that reads back as the same double, with
 * ".0" added to integral values so a float still looks like one. Not finite:
 * null (JSON has no NaN or infinity). */
static void json_float(double f, FILE *out) {
    if (!isfinite(f)) {
        fputs("null", out);
        return;
    }
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, f);
        if (strtod(buf, NULL) == f) break;
    }
    fputs(buf, out);
    if (!strpbrk(buf, ".eE")) fputs(".0", out);
}

void fv_print_json(const fl_plan *p, uint32_t type, fl_val v, FILE *out) {
    const plan_type *t = ty(p, type);
    switch (t->kind) {
        case PT_VOID:
            return;
        case PT_INT:
        case PT_DURATION:
            fprintf(out, "%" PRId64, v.i);
            return;
        case PT_FLOAT:
            json_float(v.f, out);
            return;
        case PT_BOOL:
            fputs(v.i ? "true" : "false", out);
            return;
        case PT_BYTES:
            json_base64(fv_as_bytes(v)->data, fv_as_bytes(v)->len, out);
            return;
        case PT_LIST: {
            fv_list *l = fv_as_list(v);
            putc('[', out);
            for (int64_t i = 0; i < l->len; i++) {
                if (i) putc(',', out);
                fv_print_json(p, t->elem, l->items[i], out);
            }
            putc(']', out);
            return;
        }
        case PT_RECORD: {
            fv_rec *r = fv_as_rec(v);
            putc('{', out);
            for (uint32_t i = 0; i < t->n; i++) {
                const plan_field *f = &p->fields[t->first + i];
                if (i) putc(',', out);
                const char *name = plan_str(p, f->name);
                fv_json_string(out, name, strlen(name));
                putc(':', out);
                fv_print_json(p, f->type, r->fields[i], out);
            }
            putc('}', out);
            return;
        }
        default:
            fv_json_string(out, fv_as_str(v)->data, (size_t)fv_as_str(v)->len);
            return;
    }
}

/* ---- parsing text (--param values and YAML scalars) ---- */

typedef struct fv_parser {
    const fl_plan *p; /* types */
    const char *s;      /* cursor */
    const char *end;    /* end of the text */
    char *err;          /* where the one-line error goes */
    size_t errlen;      /* its size */
    int depth;          /* current nesting of lists/records */
} fv_parser;

static int perr(fv_parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(fv_parser *ps, const char *fmt, ...) {
    if (ps->err && ps->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void skip_ws(fv_parser *ps) {
    while (ps->s < ps->end && isspace((unsigned char)*ps->s))
        ps->s++;
}

static const char *kind_name(uint32_t kind) {
    static const char *const names[] = {
#define X(k, s) s,
        PLAN_TYPE_KINDS(X)
#undef X
    };
    return kind < PT__COUNT ? names[kind] : "?";
}

const char *fv_snippet(const char *s, const char *e, char *buf, size_t n) {
    size_t len = (size_t)(e - s);
    if (len > 40) len = 40;
    if (len >= n) len = n - 1;
    for (size_t i = 0; i < len; i++) /* one line, printable */
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[len] = 0;
    return buf;
}

static int parse_int_text(const char *s, const char *e, int64_t *out) {
    char buf[80];
    size_t k = 0;
    for (const char *c = s; c < e; c++) {
        if (*c == '_') continue;
        if (k + 1 >= sizeof buf) return -1;
        buf[k++] = *c;
    }
    buf[k] = 0;
    if (!k) return -1;
    const char *digits = buf + (buf[0] == '-' || buf[0] == '+');
    if (!isdigit((unsigned char)*digits)) return -1;
    errno = 0;
    char *endp;
    long long v = strtoll(buf, &endp, 0);
    if (*endp || errno) return -1;
    /* strtoll base 0 reads "010" as octal; the language has no octal */
    if (digits[0] == '0' && digits[1] && digits[1] != 'x' && digits[1] != 'X') {
        v = strtoll(buf, &endp, 10);
        if (*endp || errno) return -1;
    }
    *out = v;
    return 0;
}

static int parse_float_text(const char *s, const char *e, double *out) {
    char buf[80];
    size_t n = (size_t)(e - s);
    if (!n || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *endp;
    errno = 0;
    double f = strtod(buf, &endp);
    if (*endp || endp == buf) return -1;
    *out = f;
    return 0;
}

static int parse_bool_text(const char *s, const char *e, int64_t *out) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t n = (size_t)(e - s);
    for (int i = 0; i < 4; i++) {
        if (strlen(yes[i]) == n && !strncasecmp(s, yes[i], n)) return *out = 1, 0;
        if (strlen(no[i]) == n && !strncasecmp(s, no[i], n)) return *out = 0, 0;
    }
    return -1;
}

int fv_duration_parse(const char *s, size_t n, int64_t *ms) {
    size_t unit = n >= 2 && s[n - 2] == 'm' && s[n - 1] == 's' ? 2 : 1;
    if (n <= unit) return -1;
    int64_t mul;
    switch (s[n - 1]) {
        case 's': mul = unit == 2 ? 1 : 1000; break;
        case 'm': mul = 60 * 1000; break;
        case 'h': mul = 3600 * 1000; break;
        case 'd': mul = 86400 * 1000; break;
        default: return -1;
    }
    uint64_t v = 0;
    int big = 0;
    for (size_t i = 0; i < n - unit; i++) {
        char c = s[i];
        if (c == '_' && i > 0 && i + 1 < n - unit && s[i - 1] != '_') continue;
        if (c < '0' || c > '9') return -1;
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10) big = 1;
        else v = v * 10 + (uint64_t)(c - '0');
    }
    if (big || v > (uint64_t)(INT64_MAX / mul)) return -2;
    *ms = (int64_t)v * mul;
    return 0;
}

bool fv_date_valid(const char *s, size_t n) {
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 10 || s[4] != '-' || s[7] != '-') return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i])) return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* YYYY-MM-DDTHH:MM:SSZ: a day as fv_date_valid, hours 00-23, minutes and seconds
 * 00-59 (no leap second), then Z. Offsets and fractions are refused with a reason,
 * so that every time has one spelling (the canonical text is the value, and text
 * order is time order). */
const char *fv_time_problem(const char *s, size_t n) {
    static const char want[] = "DDDD-DD-DDTDD:DD:DD";
    static const char form[] = "a time is written YYYY-MM-DDTHH:MM:SSZ, e.g. 2026-01-31T13:00:00Z";
    if (n < 19) return form;
    for (size_t i = 0; i < 19; i++)
        if (want[i] == 'D' ? !isdigit((unsigned char)s[i]) : s[i] != want[i]) return form;
    if (!fv_date_valid(s, 10)) return "its day is not a calendar day";
    int h = (s[11] - '0') * 10 + (s[12] - '0');
    int mi = (s[14] - '0') * 10 + (s[15] - '0');
    int se = (s[17] - '0') * 10 + (s[18] - '0');
    if (h > 23) return "hours run from 00 to 23";
    if (mi > 59) return "minutes run from 00 to 59";
    if (se > 59) return "seconds run from 00 to 59 (no leap second)";
    if (n > 19 && (s[19] == '.' || s[19] == ','))
        return "fractional seconds are not accepted: a time has whole seconds";
    if (n > 19 && (s[19] == '+' || s[19] == '-'))
        return "offsets are not accepted: write the instant in UTC with Z";
    if (n != 20 || s[19] != 'Z') return "a time ends with Z (UTC), e.g. 2026-01-31T13:00:00Z";
    return NULL;
}

bool fv_time_valid(const char *s, size_t n) {
    return fv_time_problem(s, n) == NULL;
}

/* 500ms 30s 5m 2h 1d, or a bare number of milliseconds. */
static int parse_duration_text(const char *s, const char *e, int64_t *out) {
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t k = strlen(units[u].suffix);
        if ((size_t)(e - s) > k && !strncmp(e - k, units[u].suffix, k) &&
            isdigit((unsigned char)e[-(ptrdiff_t)k - 1])) {
            int64_t n;
            if (parse_int_text(s, e - k, &n) || n < 0 || n > INT64_MAX / units[u].ms) return -1;
            *out = n * units[u].ms;
            return 0;
        }
    }
    return parse_int_text(s, e, out) || *out < 0 ? -1 : 0;
}

/* Base64 text to bytes. Written here rather than with a library's decoder,
 * which would change what a bytes parameter accepts: this reader takes the text
 * with or without its '=' padding ("Zg" is "f"), and only the alphabet in between,
 * while OpenSSL's EVP_DecodeBlock, for one, wants a multiple of 4 characters (so "Zg" is refused), lets
 * blanks and line breaks through around the text, and leaves the padding's zero
 * bytes in its output for the caller to take off again. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(int c) {
    const char *q = c ? strchr(b64, c) : NULL;
    return q ? (int)(q - b64) : -1;
}

static int parse_base64(const char *s, const char *e, fl_val *out, const fl_plan *p,
                        uint32_t type) {
    size_t n = (size_t)(e - s);
    while (n && s[n - 1] == '=')
        n--;
    uint8_t *buf = fv_alloc(p, n * 3 / 4 + 3);
    if (!buf) return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) {
            fv_free(p, buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (uint8_t)(acc >> bits);
        }
    }
    *out = fv_bytes_new(p, type, buf, (int64_t)k);
    fv_free(p, buf);
    return out->o ? 0 : -1;
}

static int parse_scalar(fv_parser *ps, uint32_t type, const char *s, const char *e, fl_val *out) {
    uint32_t kind = ty(ps->p, type)->kind;
    char buf[48];
    int bad = 0;
    switch (kind) {
        case PT_INT:
            bad = parse_int_text(s, e, &out->i);
            break;
        case PT_DURATION:
            bad = parse_duration_text(s, e, &out->i);
            break;
        case PT_FLOAT:
            bad = parse_float_text(s, e, &out->f);
            /* JSON (history, the printed result) has no NaN or infinity; 1e999 overflows */
            if (!bad && !isfinite(out->f))
                return perr(ps, "expected a finite float, got '%s'",
                            fv_snippet(s, e, buf, sizeof buf));
            break;
        case PT_BOOL:
            bad = parse_bool_text(s, e, &out->i);
            break;
        case PT_DATE:
            if (!fv_date_valid(s, (size_t)(e - s)))
                return perr(ps, "expected a date (YYYY-MM-DD), got '%s'",
                            fv_snippet(s, e, buf, sizeof buf));
            *out = fv_str_new(ps->p, type, s, e - s);
            return out->o ? 0 : perr(ps, "out of memory");
        case PT_TIME: {
            const char *why = fv_time_problem(s, (size_t)(e - s));
            if (why)
                return perr(ps, "expected a time (YYYY-MM-DDTHH:MM:SSZ), got '%s': %s",
                            fv_snippet(s, e, buf, sizeof buf), why);
            *out = fv_str_new(ps->p, type, s, e - s);
            return out->o ? 0 : perr(ps, "out of memory");
        }
        case PT_BYTES:
            bad = parse_base64(s, e, out, ps->p, type);
            if (bad && fl_failed(ps->p->ctx) && ps->p->ctx->errcode == FL_ENOMEM)
                return perr(ps, "out of memory");
            if (bad)
                return perr(ps, "expected base64 bytes, got '%s'", fv_snippet(s, e, buf, sizeof buf));
            return 0;
        case PT_STR:
        case PT_PATH:
        case PT_DIR:
            *out = fv_str_new(ps->p, type, s, e - s);
            return out->o ? 0 : perr(ps, "out of memory");
        default:
            return perr(ps, "a value of type %s cannot be given as text", kind_name(kind));
    }
    if (bad)
        return perr(ps, "expected %s %s, got '%s'", kind == PT_INT ? "an" : "a", kind_name(kind),
                    fv_snippet(s, e, buf, sizeof buf));
    return 0;
}

static int parse_value(fv_parser *ps, uint32_t type, fl_val *out);

static unsigned hexval(int c) {
    return isdigit(c) ? (unsigned)(c - '0') : (unsigned)(tolower(c) - 'a' + 10);
}

static void put_utf8(char *b, size_t *k, uint32_t cp) {
    if (cp < 0x80) {
        b[(*k)++] = (char)cp;
    } else if (cp < 0x800) {
        b[(*k)++] = (char)(0xc0 | cp >> 6);
        b[(*k)++] = (char)(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
        b[(*k)++] = (char)(0xe0 | cp >> 12);
        b[(*k)++] = (char)(0x80 | ((cp >> 6) & 63));
        b[(*k)++] = (char)(0x80 | (cp & 63));
    } else {
        b[(*k)++] = (char)(0xf0 | cp >> 18);
        b[(*k)++] = (char)(0x80 | ((cp >> 12) & 63));
        b[(*k)++] = (char)(0x80 | ((cp >> 6) & 63));
        b[(*k)++] = (char)(0x80 | (cp & 63));
    }
}

static int read_hex4(fv_parser *ps, uint32_t *cp) {
    if (ps->end - ps->s < 4) return -1;
    *cp = 0;
    for (int i = 0; i < 4; i++) {
        if (!isxdigit((unsigned char)ps->s[i])) return -1;
        *cp = *cp << 4 | hexval((unsigned char)ps->s[i]);
    }
    ps->s += 4;
    return 0;
}

/* A JSON string at the cursor (just past the opening quote) into a malloc'ed
 * buffer; its decoded length in *n. */
static char *json_unquote(fv_parser *ps, size_t *n) {
    char *b = fv_alloc(ps->p, (size_t)(ps->end - ps->s) + 1); /* decoding never grows the text */
    if (!b) {
        perr(ps, "out of memory");
        return NULL;
    }
    size_t k = 0;
    while (ps->s < ps->end && *ps->s != '"') {
        char c = *ps->s++;
        if (c != '\\') {
            b[k++] = c;
            continue;
        }
        if (ps->s >= ps->end) break;
        c = *ps->s++;
        uint32_t cp;
        switch (c) {
            case 'n':
                b[k++] = '\n';
                break;
            case 't':
                b[k++] = '\t';
                break;
            case 'r':
                b[k++] = '\r';
                break;
            case 'b':
                b[k++] = '\b';
                break;
            case 'f':
                b[k++] = '\f';
                break;
            case '/':
            case '\\':
            case '"':
                b[k++] = c;
                break;
            case 'u':
                if (read_hex4(ps, &cp)) goto bad;
                if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->s >= 6 && ps->s[0] == '\\' &&
                    ps->s[1] == 'u') {
                    uint32_t lo;
                    ps->s += 2;
                    if (read_hex4(ps, &lo) || lo < 0xdc00 || lo > 0xdfff) goto bad;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(b, &k, cp);
                break;
            default:
                goto bad;
        }
    }
    if (ps->s >= ps->end) {
        fv_free(ps->p, b);
        perr(ps, "unterminated string");
        return NULL;
    }
    ps->s++; /* closing quote */
    b[k] = 0;
    *n = k;
    return b;
bad:
    fv_free(ps->p, b);
    perr(ps, "bad escape in string");
    return NULL;
}

/* A token that is not a quoted string: up to a delimiter of the JSON-like syntax. */
static void bare_token(fv_parser *ps, const char **s, const char **e) {
    *s = ps->s;
    while (ps->s < ps->end && !strchr(",]}:\"", *ps->s))
        ps->s++;
    *e = ps->s;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* After an item of a list or record: 0 at ',' (more follow), 1 at the closing
 * bracket, -1 (with the error set) at anything else. */
static int after_item(fv_parser *ps, char close, const char *what) {
    skip_ws(ps);
    if (ps->s < ps->end && (*ps->s == ',' || *ps->s == close)) return *ps->s++ == close;
    return perr(ps, "expected ',' or '%c' in a %s", close, what);
}

static int parse_list(fv_parser *ps, uint32_t type, fl_val *out) {
    uint32_t elem = ty(ps->p, type)->elem;
    size_t cap = 8, n = 0;
    fl_val *items = fv_alloc(ps->p, cap * sizeof *items);
    if (!items) return perr(ps, "out of memory");
    ps->s++; /* '[' */
    skip_ws(ps);
    if (ps->s < ps->end && *ps->s == ']') {
        ps->s++;
    } else {
        for (;;) {
            if (n == cap) {
                fl_val *more = fl_reallocarray(ps->p->ctx, items, cap * 2, sizeof *items);
                if (!more) {
                    perr(ps, "out of memory");
                    goto fail;
                }
                items = more;
                cap *= 2;
            }
            if (parse_value(ps, elem, &items[n])) goto fail;
            n++;
            int sep = after_item(ps, ']', "list");
            if (sep < 0) goto fail;
            if (sep) break;
        }
    }
    *out = fv_list_new(ps->p, type, (int64_t)n);
    if (!out->o) {
        perr(ps, "out of memory");
        goto fail;
    }
    memcpy(fv_as_list(*out)->items, items, n * sizeof *items);
    fv_free(ps->p, items);
    return 0;
fail:
    for (size_t i = 0; i < n; i++)
        fv_decref(ps->p, elem, items[i]);
    fv_free(ps->p, items);
    return -1;
}

static int parse_record(fv_parser *ps, uint32_t type, fl_val *out) {
    const plan_type *t = ty(ps->p, type);
    fl_val r = fv_rec_new(ps->p, type);
    bool *seen = fl_calloc(ps->p->ctx, t->n + 1, 1);
    if (!r.o || !seen) {
        perr(ps, "out of memory");
        goto fail;
    }
    ps->s++; /* '{' */
    skip_ws(ps);
    if (ps->s < ps->end && *ps->s == '}') {
        ps->s++;
    } else {
        for (;;) {
            skip_ws(ps);
            char *name;
            size_t nlen;
            if (ps->s < ps->end && *ps->s == '"') {
                ps->s++;
                if (!(name = json_unquote(ps, &nlen))) goto fail;
            } else {
                const char *s, *e;
                bare_token(ps, &s, &e);
                nlen = (size_t)(e - s);
                if (!(name = fl_strndup(ps->p->ctx, s, nlen))) {
                    perr(ps, "out of memory");
                    goto fail;
                }
            }
            uint32_t f = 0;
            while (f < t->n && strcmp(plan_str(ps->p, ps->p->fields[t->first + f].name), name))
                f++;
            if (f == t->n || seen[f]) {
                char shown[48];
                perr(ps, f == t->n ? "no field '%s' in this record" : "field '%s' given twice",
                     fv_snippet(name, name + nlen, shown, sizeof shown));
                fv_free(ps->p, name);
                goto fail;
            }
            fv_free(ps->p, name);
            skip_ws(ps);
            if (ps->s >= ps->end || (*ps->s != ':' && *ps->s != '=')) {
                perr(ps, "expected ':' after a field name");
                goto fail;
            }
            ps->s++;
            if (parse_value(ps, ps->p->fields[t->first + f].type, &fv_as_rec(r)->fields[f]))
                goto fail;
            seen[f] = true;
            int sep = after_item(ps, '}', "record");
            if (sep < 0) goto fail;
            if (sep) break;
        }
    }
    for (uint32_t f = 0; f < t->n; f++)
        if (!seen[f]) {
            perr(ps, "missing field '%s'", plan_str(ps->p, ps->p->fields[t->first + f].name));
            goto fail;
        }
    fv_free(ps->p, seen);
    *out = r;
    return 0;
fail:
    fv_free(ps->p, seen);
    fv_decref(ps->p, type, r);
    return -1;
}

static int parse_value(fv_parser *ps, uint32_t type, fl_val *out) {
    uint32_t kind = ty(ps->p, type)->kind;
    skip_ws(ps);
    if (ps->s >= ps->end) return perr(ps, "expected a value of type %s", kind_name(kind));
    if (++ps->depth > FV_MAX_DEPTH) return perr(ps, "value nested too deeply");
    int rc;
    if (kind == PT_LIST) {
        rc = *ps->s == '[' ? parse_list(ps, type, out) : perr(ps, "expected '[' for a list");
    } else if (kind == PT_RECORD) {
        rc = *ps->s == '{' ? parse_record(ps, type, out) : perr(ps, "expected '{' for a record");
    } else if (*ps->s == '"') {
        ps->s++;
        size_t n;
        char *text = json_unquote(ps, &n);
        rc = text ? parse_scalar(ps, type, text, text + n, out) : -1;
        fv_free(ps->p, text);
    } else {
        const char *s, *e;
        bare_token(ps, &s, &e);
        rc = parse_scalar(ps, type, s, e, out);
    }
    ps->depth--;
    return rc;
}

int fv_parse(const fl_plan *p, uint32_t type, const char *text, fl_val *out, char *err,
             size_t errlen) {
    fv_parser ps = {p, text, text + strlen(text), err, errlen, 0};
    uint32_t kind = ty(p, type)->kind;
    if (kind == PT_STR || kind == PT_PATH || kind == PT_DIR) {
        *out = fv_str_cstr(p, type, text); /* as given, spaces and all */
        if (!out->o && errlen) snprintf(err, errlen, "out of memory");
        return out->o ? 0 : -1;
    }
    if (kind != PT_LIST && kind != PT_RECORD) {
        /* a scalar: the whole text, trimmed (a JSON-quoted form is accepted too) */
        skip_ws(&ps);
        const char *e = ps.end;
        while (e > ps.s && isspace((unsigned char)e[-1]))
            e--;
        if (e - ps.s >= 2 && *ps.s == '"' && e[-1] == '"') {
            ps.end = e;
            return parse_value(&ps, type, out);
        }
        return parse_scalar(&ps, type, ps.s, e, out);
    }
    if (parse_value(&ps, type, out)) return -1;
    skip_ws(&ps);
    if (ps.s < ps.end) {
        char buf[48];
        fv_decref(p, type, *out);
        return perr(&ps, "unexpected text after the value: '%s'",
                    fv_snippet(ps.s, ps.end, buf, sizeof buf));
    }
    return 0;
}

int fv_parse_scalar(const fl_plan *p, uint32_t type, const char *s, size_t n, fl_val *out,
                    char *err, size_t errlen) {
    fv_parser ps = {p, s, s + n, err, errlen, 0};
    uint32_t kind = ty(p, type)->kind;
    if (kind == PT_LIST) return perr(&ps, "expected '[' for a list");
    if (kind == PT_RECORD) return perr(&ps, "expected '{' for a record");
    return parse_scalar(&ps, type, s, s + n, out);
}

/* ---- binary encoding ---- */

bool fv_buf_grow(fv_buf *b, size_t need) {
    if (b->failed) return false;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *q = fl_realloc(b->ctx ? b->ctx : fl_ctx_default(), b->data, cap);
    if (!q) {
        b->failed = true;
        return false;
    }
    b->data = q;
    b->cap = cap;
    return true;
}

static void put_u64(fv_buf *b, uint64_t v) {
    fv_buf_put_le(b, v, 8);
}

void fv_encode(const fl_plan *p, uint32_t type, fl_val v, fv_buf *out) {
    const plan_type *t = ty(p, type);
    switch (t->kind) {
        case PT_VOID:
            return;
        case PT_INT:
        case PT_DURATION:
            put_u64(out, (uint64_t)v.i);
            return;
        case PT_FLOAT: /* its bits, NaNs made one */
            put_u64(out, float_bits(v.f));
            return;
        case PT_BOOL: {
            uint8_t c = v.i != 0;
            fv_buf_put(out, &c, 1);
            return;
        }
        case PT_BYTES:
            put_u64(out, (uint64_t)fv_as_bytes(v)->len);
            fv_buf_put(out, fv_as_bytes(v)->data, (size_t)fv_as_bytes(v)->len);
            return;
        case PT_LIST: {
            fv_list *l = fv_as_list(v);
            put_u64(out, (uint64_t)l->len);
            for (int64_t i = 0; i < l->len; i++)
                fv_encode(p, t->elem, l->items[i], out);
            return;
        }
        case PT_RECORD:
            for (uint32_t i = 0; i < t->n; i++)
                fv_encode(p, p->fields[t->first + i].type, fv_as_rec(v)->fields[i], out);
            return;
        default:
            put_u64(out, (uint64_t)fv_as_str(v)->len);
            fv_buf_put(out, fv_as_str(v)->data, (size_t)fv_as_str(v)->len);
            return;
    }
}

typedef struct fv_reader {
    const fl_plan *p; /* types */
    const uint8_t *d;   /* the buffer */
    size_t len, pos;    /* its size and the cursor */
} fv_reader;

static int get_u64(fv_reader *r, uint64_t *v) {
    if (r->len - r->pos < 8) return -1;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)r->d[r->pos + i] << (8 * i);
    r->pos += 8;
    return 0;
}

/* Fewest bytes one value of the type encodes to (bounds list counts). */
static size_t min_size(const fl_plan *p, uint32_t type, int depth) {
    const plan_type *t = ty(p, type);
    if (depth > FV_MAX_DEPTH) return 0;
    switch (t->kind) {
        case PT_VOID:
            return 0;
        case PT_BOOL:
            return 1;
        case PT_RECORD: {
            size_t n = 0;
            for (uint32_t i = 0; i < t->n; i++)
                n += min_size(p, p->fields[t->first + i].type, depth + 1);
            return n;
        }
        default:
            return 8;
    }
}

static int decode(fv_reader *r, uint32_t type, fl_val *out, int depth) {
    const fl_plan *p = r->p;
    const plan_type *t = ty(p, type);
    uint64_t n;
    out->i = 0;
    if (depth > FV_MAX_DEPTH) return -1;
    switch (t->kind) {
        case PT_VOID:
            return 0;
        case PT_INT:
        case PT_DURATION:
        case PT_FLOAT:
            if (get_u64(r, &n)) return -1;
            out->i = (int64_t)n;
            return 0;
        case PT_BOOL:
            if (r->pos >= r->len || r->d[r->pos] > 1) return -1;
            out->i = r->d[r->pos++];
            return 0;
        case PT_LIST: {
            if (get_u64(r, &n)) return -1;
            size_t each = min_size(p, t->elem, depth + 1);
            if (each ? n > (r->len - r->pos) / each : n > FV_MAX_EMPTY_ITEMS) return -1;
            fl_val l = fv_list_new(p, type, (int64_t)n);
            if (!l.o) return -1;
            for (uint64_t i = 0; i < n; i++)
                if (decode(r, t->elem, &fv_as_list(l)->items[i], depth + 1)) {
                    fv_decref(p, type, l);
                    return -1;
                }
            *out = l;
            return 0;
        }
        case PT_RECORD: {
            fl_val rec = fv_rec_new(p, type);
            if (!rec.o) return -1;
            for (uint32_t i = 0; i < t->n; i++)
                if (decode(r, p->fields[t->first + i].type, &fv_as_rec(rec)->fields[i],
                           depth + 1)) {
                    fv_decref(p, type, rec);
                    return -1;
                }
            *out = rec;
            return 0;
        }
        default: /* text and bytes: length, then the bytes */
            if (get_u64(r, &n) || n > r->len - r->pos) return -1;
            if (t->kind == PT_BYTES)
                *out = fv_bytes_new(p, type, r->d + r->pos, (int64_t)n);
            else
                *out = fv_str_new(p, type, (const char *)r->d + r->pos, (int64_t)n);
            if (!out->o) return -1;
            r->pos += n;
            return 0;
    }
}

int fv_decode(const fl_plan *p, uint32_t type, const uint8_t *data, size_t len, size_t *used,
              fl_val *out) {
    fv_reader r = {p, data, len, 0};
    if (decode(&r, type, out, 0)) return -1;
    if (used) *used = r.pos;
    return 0;
}
