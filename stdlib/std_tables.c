/*
 * std_tables.c — std's typed tables: read_csv, write_csv (RFC 4180) and
 * read_json, write_json (jansson).
 *
 * These tasks take any type. flowc specialises each call (compiler/check_typed.c)
 * and passes the type as a last hidden argument, a compact text:
 *   i int  f float  b bool  s str  p path  d dir  D date  T time  u duration
 *   y bytes  [X] a list of X  {name:X,...} a record, fields in order
 * From it this file computes the C layout of the values (docs/runtime-abi.md:
 * a record is the C struct of its fields in order with natural alignment, a list
 * a flow_list of items at the element's size) and reads or writes them in place,
 * the way a hand-written task for that type would.
 *
 * read_csv reads the whole file into flow_alloc memory and cuts its cells in
 * place (a quoted cell is unescaped where it stands), so the str fields of the
 * records point into that buffer and nothing is copied twice. Columns are found
 * by their header name; a cell that is not of its field's type fails, naming the
 * file's line and the column. read_json and write_json go through jansson (a
 * value's place in the document, `$.rows[3].score`, names what is wrong);
 * write_csv quotes a cell that holds a comma, a quote, CR or LF (RFC 4180).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "std_tasks.h"

/* ---- the type text and its C layout --------------------------------------------------- */
typedef struct sty sty;
struct sty {
    char kind;          /* the type text's letter, '[' or '{' */
    size_t size, align; /* the C layout */
    sty *elem;          /* '[': the element */
    int n;              /* '{': the fields */
    const char **names;
    size_t *offs;
    sty **fields;
};

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Parse one type at *s (flow_alloc memory, freed with the call); NULL after flow_fail. */
static sty *ty_parse(const char **s, int depth) {
    sty *t = flow_alloc(sizeof *t);
    if (!t || depth > 64) {
        if (t) flow_fail("the type is nested too deep");
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->kind = **s;
    switch (*(*s)++) {
    case 'i': case 'u': t->size = t->align = sizeof(int64_t); return t;
    case 'f': t->size = t->align = sizeof(double); return t;
    case 'b': t->size = t->align = sizeof(bool); return t;
    case 's': case 'p': case 'd': case 'D': case 'T':
        t->size = t->align = sizeof(const char *);
        return t;
    case 'y':
        t->size = sizeof(flow_bytes);
        t->align = _Alignof(flow_bytes);
        return t;
    case '[':
        t->size = sizeof(flow_list);
        t->align = _Alignof(flow_list);
        if (!(t->elem = ty_parse(s, depth + 1))) return NULL;
        if (*(*s)++ != ']') break;
        return t;
    case '{': {
        int cap = 1;
        for (const char *q = *s; *q && *q != '}'; q++) cap += *q == ',';
        t->names = flow_alloc((size_t)cap * sizeof *t->names);
        t->offs = flow_alloc((size_t)cap * sizeof *t->offs);
        t->fields = flow_alloc((size_t)cap * sizeof *t->fields);
        if (!t->names || !t->offs || !t->fields) return NULL;
        size_t off = 0;
        t->align = 1;
        while (**s && **s != '}') {
            if (t->n && *(*s)++ != ',') goto bad;
            const char *colon = strchr(*s, ':');
            if (!colon || t->n >= cap) goto bad;
            char *nm = flow_alloc((size_t)(colon - *s) + 1);
            if (!nm) return NULL;
            memcpy(nm, *s, (size_t)(colon - *s));
            nm[colon - *s] = 0;
            *s = colon + 1;
            sty *f = ty_parse(s, depth + 1);
            if (!f) return NULL;
            off = round_up(off, f->align);
            t->names[t->n] = nm;
            t->offs[t->n] = off;
            t->fields[t->n++] = f;
            off += f->size;
            if (f->align > t->align) t->align = f->align;
        }
        if (*(*s)++ != '}' || t->n == 0) goto bad;
        t->size = round_up(off, t->align);
        return t;
    }
    default:
        break;
    }
bad:
    flow_fail("bad type description (flowc and libflow-std.so do not match)");
    return NULL;
}

static sty *ty_of(const char *text) {
    const char *s = text;
    sty *t = ty_parse(&s, 0);
    if (t && *s) {
        flow_fail("bad type description (flowc and libflow-std.so do not match)");
        return NULL;
    }
    return t;
}

static const char *kind_name(char k) {
    switch (k) {
    case 'i': return "an int";
    case 'f': return "a float";
    case 'b': return "a bool (true or false)";
    case 's': return "a str";
    case 'p': return "a path";
    case 'd': return "a dir";
    case 'D': return "a date (YYYY-MM-DD)";
    case 'T': return "a time (YYYY-MM-DDTHH:MM:SSZ)";
    case 'u': return "a duration";
    case 'y': return "bytes";
    case '[': return "a list";
    default: return "a record";
    }
}

/* ---- scalars from text ------------------------------------------------------------------ */
/* decimal digits with an optional sign, in range: what strtoll reads completely, without
 * its locale and base handling (the hot path of read_csv) */
static bool parse_int(const char *s, int64_t *v) {
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    if (!*s) return false;
    uint64_t x = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (d > 9 || x > (lim - d) / 10) return false;
        x = x * 10 + d;
    }
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

static bool parse_float(const char *s, double *v) {
    if (!*s) return false;
    char *e;
    errno = 0;
    double x = strtod(s, &e);
    if (*e || (errno == ERANGE && fabs(x) > 1)) return false; /* underflow to 0 is fine */
    *v = x;
    return true;
}

static bool parse_bool(const char *s, bool *v) {
    static const char *const yes[] = {"true", "True", "TRUE", "1"};
    static const char *const no[] = {"false", "False", "FALSE", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(s, yes[i])) return *v = true, true;
        if (!strcmp(s, no[i])) return *v = false, true;
    }
    return false;
}

/* YYYY-MM-DD, a real calendar day; with time, then THH:MM:SSZ (the runtime's forms) */
static bool is_date_time(const char *s, bool time) {
    static const char form[] = "dddd-dd-ddTdd:dd:ddZ";
    size_t n = time ? 20 : 10;
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (form[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != form[i]) return false;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap)) return false;
    return !time || (atoi(s + 11) < 24 && atoi(s + 14) < 60 && atoi(s + 17) < 60);
}

/* ---- read_csv --------------------------------------------------------------------------- */
typedef struct csv {
    const char *file;
    char *p, *end; /* the unread part of the buffer; *end is its NUL */
    int64_t line;  /* the line p is on, 1-based */
} csv;

/* Cut the next cell at cv->p: *cell is its text (NUL-terminated in place), *last
 * whether it ended its row. -1 after flow_fail (an unclosed quote, a quote inside a
 * quoted cell not doubled). */
static int csv_cell(csv *cv, char **cell, bool *last) {
    char *p = cv->p;
    if (*p == '"') {
        int64_t start = cv->line;
        char *w = p, *r = p + 1;
        *cell = w;
        for (;;) {
            if (r >= cv->end) {
                flow_fail("%s line %" PRId64 ": a quoted cell is not closed", cv->file, start);
                return -1;
            }
            if (*r == '"') {
                if (r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                    continue;
                }
                r++;
                break;
            }
            if (*r == '\n') cv->line++;
            *w++ = *r++;
        }
        if (*r == '\r' && r[1] == '\n') r++;
        if (r < cv->end && *r != ',' && *r != '\n') {
            flow_fail("%s line %" PRId64 ": a quote inside a quoted cell must be doubled (\"\")",
                      cv->file, cv->line);
            return -1;
        }
        *w = 0;
        *last = r >= cv->end || *r == '\n';
        if (r < cv->end && *r == '\n') cv->line++;
        cv->p = r < cv->end ? r + 1 : r;
        return 0;
    }
    char *q = p;
    while (q < cv->end && *q != ',' && *q != '\n') q++;
    *last = q >= cv->end || *q == '\n';
    if (*last && q > p && q[-1] == '\r') q[-1] = 0;
    if (q < cv->end && *q == '\n') cv->line++;
    *q = 0;
    *cell = p;
    cv->p = q < cv->end ? q + 1 : q;
    return 0;
}

/* a blank line (or \r\n) at p: skipped */
static bool csv_blank(csv *cv) {
    if (*cv->p == '\n' || (*cv->p == '\r' && cv->p[1] == '\n')) {
        cv->p += *cv->p == '\r' ? 2 : 1;
        cv->line++;
        return true;
    }
    return false;
}

STD_TASK flow_list std_read_csv(const char *f, const char *type) {
    flow_list none = {0, NULL};
    sty *lt = ty_of(type);
    if (!lt) return none;
    sty *rt = lt->elem;
    int64_t len;
    char *buf = std_read_file(f, &len);
    if (!buf) return none;
    if (memchr(buf, 0, (size_t)len)) {
        flow_fail("%s holds a NUL byte: it is not a CSV text file", f);
        return none;
    }
    csv cv = {f, buf, buf + len, 1};
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) cv.p += 3; /* a UTF-8 byte order mark */
    while (cv.p < cv.end && csv_blank(&cv)) {}
    if (cv.p >= cv.end) {
        flow_fail("%s is empty: a CSV file starts with its header line (columns %s...)", f,
                  rt->names[0]);
        return none;
    }
    /* the header: which column feeds which field */
    int ncols = 0, cap = 16;
    const char **cols = flow_alloc((size_t)cap * sizeof *cols);
    if (!cols) return none;
    for (bool last = false; !last;) {
        char *cell;
        if (csv_cell(&cv, &cell, &last) != 0) return none;
        if (ncols == cap) {
            const char **more = flow_alloc((size_t)cap * 2 * sizeof *more);
            if (!more) return none;
            memcpy(more, cols, (size_t)cap * sizeof *cols);
            cols = more;
            cap *= 2;
        }
        cols[ncols++] = cell;
    }
    int *field_of = flow_alloc((size_t)ncols * sizeof *field_of);
    if (!field_of) return none;
    for (int j = 0; j < ncols; j++) field_of[j] = -1;
    for (int k = 0; k < rt->n; k++) {
        int found = -1;
        for (int j = 0; j < ncols; j++) {
            if (strcmp(cols[j], rt->names[k]) != 0) continue;
            if (found >= 0) {
                flow_fail("%s line 1: the column '%s' appears twice in the header", f,
                          rt->names[k]);
                return none;
            }
            found = j;
        }
        if (found < 0) {
            char have[400];
            size_t o = 0;
            have[0] = 0;
            for (int j = 0; j < ncols && o < sizeof have - 8; j++)
                o += (size_t)snprintf(have + o, sizeof have - o, "%s'%s'", j ? ", " : "", cols[j]);
            if (o >= sizeof have - 8) snprintf(have + sizeof have - 8, 8, ", ...");
            flow_fail("%s line 1: no column '%s' in the header (its columns: %s)", f,
                      rt->names[k], have);
            return none;
        }
        field_of[found] = k;
    }
    /* the rows: at most one per line left */
    int64_t maxrows = 1;
    for (const char *q = cv.p; (q = memchr(q, '\n', (size_t)(cv.end - q))); q++) maxrows++;
    flow_list out = flow_list_new(maxrows, rt->size);
    if (!out.items) return none;
    int64_t nrows = 0;
    while (cv.p < cv.end) {
        if (csv_blank(&cv)) continue;
        int64_t line = cv.line;
        char *rec = (char *)out.items + (size_t)nrows * rt->size;
        int j = 0;
        for (bool last = false; !last; j++) {
            char *cell;
            if (csv_cell(&cv, &cell, &last) != 0) return none;
            if (j >= ncols) continue;
            int k = field_of[j];
            if (k < 0) continue;
            void *dst = rec + rt->offs[k];
            bool ok = true;
            switch (rt->fields[k]->kind) {
            case 'i': ok = parse_int(cell, (int64_t *)dst); break;
            case 'f': ok = parse_float(cell, (double *)dst); break;
            case 'b': ok = parse_bool(cell, (bool *)dst); break;
            default: *(const char **)dst = cell; break;
            }
            if (!ok) {
                flow_fail("%s line %" PRId64 ", column '%s': \"%.60s\" is not %s", f, line,
                          cols[j], cell, kind_name(rt->fields[k]->kind));
                return none;
            }
        }
        if (j != ncols) {
            flow_fail("%s line %" PRId64 ": %d cells, but the header has %d columns", f, line, j,
                      ncols);
            return none;
        }
        nrows++;
    }
    out.len = nrows;
    return out;
}

/* ---- read_json -------------------------------------------------------------------------- */
/* where a value is in the document, for messages: $.rows[3].score */
typedef struct jpath {
    char text[512];
    size_t len;
} jpath;

static size_t jpath_push(jpath *jp, const char *name, size_t i) {
    size_t was = jp->len;
    int n = name ? snprintf(jp->text + was, sizeof jp->text - was, ".%s", name)
                 : snprintf(jp->text + was, sizeof jp->text - was, "[%zu]", i);
    if (n > 0) jp->len = was + (size_t)n < sizeof jp->text ? was + (size_t)n : sizeof jp->text - 1;
    return was;
}

static int from_json(const char *f, json_t *j, const sty *t, void *dst, jpath *jp, int depth) {
    bool ok = true;
    switch (t->kind) {
    case 'i':
        if ((ok = json_is_integer(j))) *(int64_t *)dst = json_integer_value(j);
        break;
    case 'f':
        if ((ok = json_is_number(j))) *(double *)dst = json_number_value(j);
        break;
    case 'b':
        if ((ok = json_is_boolean(j))) *(bool *)dst = json_is_true(j);
        break;
    case 's': case 'D': case 'T': {
        if (!(ok = json_is_string(j))) break;
        if (t->kind != 's' && !is_date_time(json_string_value(j), t->kind == 'T')) {
            flow_fail("%s: %s is \"%.40s\", not %s", f, jp->text, json_string_value(j),
                      kind_name(t->kind));
            return -1;
        }
        const char *s = flow_strdup(json_string_value(j));
        if (!s) return -1;
        *(const char **)dst = s;
        break;
    }
    case '[': {
        if (!(ok = json_is_array(j))) break;
        size_t n = json_array_size(j);
        flow_list l = flow_list_new((int64_t)n, t->elem->size);
        if (n && !l.items) return -1;
        for (size_t i = 0; i < n; i++) {
            size_t was = jpath_push(jp, NULL, i);
            if (from_json(f, json_array_get(j, i), t->elem, (char *)l.items + i * t->elem->size,
                          jp, depth + 1) != 0)
                return -1;
            jp->len = was;
            jp->text[was] = 0;
        }
        *(flow_list *)dst = l;
        break;
    }
    case '{':
        if (!(ok = json_is_object(j))) break;
        for (int k = 0; k < t->n; k++) {
            json_t *v = json_object_get(j, t->names[k]);
            if (!v) {
                flow_fail("%s: %s has no field '%s'", f, jp->text, t->names[k]);
                return -1;
            }
            size_t was = jpath_push(jp, t->names[k], 0);
            if (from_json(f, v, t->fields[k], (char *)dst + t->offs[k], jp, depth + 1) != 0)
                return -1;
            jp->len = was;
            jp->text[was] = 0;
        }
        break;
    default:
        ok = false;
        break;
    }
    if (!ok) {
        static const char *const names[] = {"an object", "an array", "a string", "an integer",
                                            "a real", "true", "false", "null"};
        int k = json_typeof(j);
        flow_fail("%s: %s is %s, not %s", f, jp->text,
                  k >= 0 && k < 8 ? names[k] : "another value", kind_name(t->kind));
        return -1;
    }
    return 0;
}

/* the top-level value of f as type t, written to dst; -1 after flow_fail */
static int read_json_as(const char *f, const sty *t, void *dst) {
    json_error_t err;
    json_t *j = json_load_file(f, JSON_DECODE_ANY, &err);
    if (!j) {
        flow_fail("%s line %d, column %d: %s", f, err.line, err.column, err.text);
        return -1;
    }
    jpath jp = {"$", 1};
    int rc = from_json(f, j, t, dst, &jp, 0);
    json_decref(j);
    return rc;
}

/* the same, the type given as its text */
static int read_json(const char *f, const char *type, void *dst) {
    sty *t = ty_of(type);
    return t ? read_json_as(f, t, dst) : -1;
}

/* One record (`let cfg: Job = std.read_json(f)`): a C function cannot return a record
 * of every layout by value, so it comes back in a list of one and the plan takes it out
 * (an elem node, compiler/check_typed.c). */
STD_TASK flow_list std_read_json_one(const char *f, const char *type) {
    sty *t = ty_of(type);
    if (!t) return (flow_list){0, NULL};
    flow_list l = flow_list_new(1, t->size);
    if (!l.items || read_json_as(f, t, l.items) != 0) return (flow_list){0, NULL};
    return l;
}

STD_TASK flow_list std_read_json(const char *f, const char *type) {
    flow_list l = {0, NULL};
    if (read_json(f, type, &l) != 0) return (flow_list){0, NULL};
    return l;
}

STD_TASK int64_t std_read_json_int(const char *f, const char *type) {
    int64_t v = 0;
    read_json(f, type, &v);
    return v;
}

STD_TASK double std_read_json_float(const char *f, const char *type) {
    double v = 0;
    read_json(f, type, &v);
    return v;
}

STD_TASK bool std_read_json_bool(const char *f, const char *type) {
    bool v = false;
    read_json(f, type, &v);
    return v;
}

STD_TASK const char *std_read_json_str(const char *f, const char *type) {
    const char *v = NULL;
    return read_json(f, type, &v) == 0 ? v : NULL;
}

/* ---- write_json ------------------------------------------------------------------------- */
static json_t *to_json(const void *src, const sty *t) {
    switch (t->kind) {
    case 'i': case 'u': return json_integer(*(const int64_t *)src);
    case 'f': {
        double d = *(const double *)src;
        if (!isfinite(d)) return json_null(); /* JSON has no NaN or infinities */
        return json_real(d);
    }
    case 'b': return json_boolean(*(const bool *)src);
    case 's': case 'p': case 'd': case 'D': case 'T': {
        const char *s = *(const char *const *)src;
        return json_string(s ? s : "");
    }
    case '[': {
        const flow_list *l = src;
        json_t *a = json_array();
        for (int64_t i = 0; a && i < l->len; i++) {
            json_t *v = to_json((const char *)l->items + (size_t)i * t->elem->size, t->elem);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case '{': {
        json_t *o = json_object();
        for (int k = 0; o && k < t->n; k++) {
            json_t *v = to_json((const char *)src + t->offs[k], t->fields[k]);
            if (!v || json_object_set_new(o, t->names[k], v) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    default:
        return NULL;
    }
}

/* x: a list of one value (flowc wraps the value: its C type then never varies) */
STD_TASK const char *std_write_json(flow_list x, const char *name, const char *type) {
    sty *t = ty_of(type);
    if (!t) return NULL;
    if (x.len != 1) {
        flow_fail("write_json: expected one value, got %" PRId64, x.len);
        return NULL;
    }
    json_t *j = to_json(x.items, t->elem);
    if (!j) {
        flow_fail("write_json: a string is not valid UTF-8, or out of memory");
        return NULL;
    }
    const char *out;
    FILE *w = std_create(name, "data.json", &out);
    int rc = w ? json_dumpf(j, w, JSON_ENCODE_ANY | JSON_INDENT(2) | JSON_REAL_PRECISION(17)) : -1;
    json_decref(j);
    if (!w) return NULL;
    if (rc == 0) putc('\n', w);
    bool bad = ferror(w);
    if (fclose(w) != 0 || bad || rc != 0) {
        flow_fail("cannot write %s", out);
        return NULL;
    }
    return out;
}

/* ---- write_csv -------------------------------------------------------------------------- */
/* one cell: quoted when it holds a comma, a quote, CR or LF (RFC 4180) */
static void csv_put(FILE *w, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, w);
        return;
    }
    putc('"', w);
    for (; *s; s++) {
        if (*s == '"') putc('"', w);
        putc(*s, w);
    }
    putc('"', w);
}

STD_TASK const char *std_write_csv(flow_list rows, const char *name, const char *type) {
    sty *lt = ty_of(type);
    if (!lt) return NULL;
    const sty *rt = lt->elem;
    const char *out;
    FILE *w = std_create(name, "table.csv", &out);
    if (!w) return NULL;
    for (int k = 0; k < rt->n; k++) {
        if (k) putc(',', w);
        csv_put(w, rt->names[k]);
    }
    putc('\n', w);
    for (int64_t i = 0; i < rows.len; i++) {
        const char *rec = (const char *)rows.items + (size_t)i * rt->size;
        for (int k = 0; k < rt->n; k++) {
            const void *v = rec + rt->offs[k];
            if (k) putc(',', w);
            switch (rt->fields[k]->kind) {
            case 'i': case 'u': fprintf(w, "%" PRId64, *(const int64_t *)v); break;
            case 'f': {
                double d = *(const double *)v;
                char b[40];
                snprintf(b, sizeof b, "%.15g", d); /* the shortest of 15 or 17 digits that */
                if (strtod(b, NULL) != d) snprintf(b, sizeof b, "%.17g", d); /* reads back */
                fputs(b, w);
                break;
            }
            case 'b': fputs(*(const bool *)v ? "true" : "false", w); break;
            default: {
                const char *s = *(const char *const *)v;
                /* an empty str alone on its row is written "" (a blank line is skipped) */
                if (rt->n == 1 && (!s || !*s)) fputs("\"\"", w);
                else csv_put(w, s ? s : "");
            }
            }
        }
        putc('\n', w);
    }
    bool bad = ferror(w);
    if (fclose(w) != 0 || bad) {
        flow_fail("cannot write %s", out);
        return NULL;
    }
    return out;
}
