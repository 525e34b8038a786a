/*
 * value.h — run-time values.
 *
 * Values are untyped 8-byte words; their type is always known statically from
 * the plan (a node's, a parameter's, a lambda's type), so no tag is stored in the
 * word and the hot path never dispatches on a run-time type.
 *
 *   int, duration -> v.i        float -> v.f        bool -> v.i (0/1)
 *   str, path, dir, date, time -> v.o points to an fv_str
 *   bytes -> an fv_bytes        [T] -> an fv_list    record -> an fv_rec
 *
 * Heap values are immutable once built and reference-counted (atomically: they
 * are shared between scheduler and worker threads). fv_incref / fv_decref take
 * the plan type, so releasing a list of records of strings frees everything
 * below it without per-object type tags.
 *
 * Ownership: a function that returns a fl_val returns a new reference unless
 * its comment says "borrowed". Functions that take a fl_val borrow it unless
 * their comment says "consumes".
 */
#ifndef FLOW_VALUE_H
#define FLOW_VALUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#include "plan.h"

typedef struct fv_obj {
    atomic_int refs; /* reference count; the object is freed when it drops to 0 */
    uint32_t type;   /* plan type of this object (diagnostics, encoders) */
} fv_obj;

typedef union fl_val {
    int64_t i;
    double f;
    fv_obj *o; /* NULL never occurs for a heap type */
} fl_val;

typedef struct fv_str {
    fv_obj h;
    int64_t len; /* bytes, not counting the terminating NUL */
    char data[]; /* NUL-terminated */
} fv_str;

typedef struct fv_bytes {
    fv_obj h;
    int64_t len;
    uint8_t data[];
} fv_bytes;

typedef struct fv_list {
    fv_obj h;
    int64_t len;
    fl_val items[];
} fv_list;

typedef struct fv_rec {
    fv_obj h;
    fl_val fields[]; /* in the record type's field order */
} fv_rec;

/* Is a value of this plan type a heap object (reference counted)? */
bool fv_is_heap(const fl_plan *p, uint32_t type);

/* Constructors. Each returns a new reference (refs = 1). Lists and records are
 * built by filling items/fields after creation (the constructor zero-fills and
 * the caller stores references it owns into them). They allocate through
 * p->ctx: out of memory gives a value with o == NULL (the context's error says
 * so; fv_decref of it is a no-op), as do fv_from_const and fv_decode/fv_parse
 * (-1, "out of memory"). */
fl_val fv_str_new(const fl_plan *p, uint32_t type, const char *s, int64_t len);
fl_val fv_str_cstr(const fl_plan *p, uint32_t type, const char *s);
fl_val fv_bytes_new(const fl_plan *p, uint32_t type, const uint8_t *data, int64_t len);
fl_val fv_list_new(const fl_plan *p, uint32_t type, int64_t len);
fl_val fv_rec_new(const fl_plan *p, uint32_t type);

static inline fv_str *fv_as_str(fl_val v) { return (fv_str *)v.o; }
static inline fv_bytes *fv_as_bytes(fl_val v) { return (fv_bytes *)v.o; }
static inline fv_list *fv_as_list(fl_val v) { return (fv_list *)v.o; }
static inline fv_rec *fv_as_rec(fl_val v) { return (fv_rec *)v.o; }

void fv_incref(const fl_plan *p, uint32_t type, fl_val v); /* no-op for scalars */
void fv_decref(const fl_plan *p, uint32_t type, fl_val v); /* frees at zero, recursively */

/* Deep equality and a 64-bit hash consistent with it. */
bool fv_equal(const fl_plan *p, uint32_t type, fl_val a, fl_val b);
uint64_t fv_hash(const fl_plan *p, uint32_t type, fl_val v);

/* A plan constant (plan->values[id]) as a run-time value (new reference). */
fl_val fv_from_const(const fl_plan *p, uint32_t value_id);

/* Print as one line of JSON (runtime.md §3: paths as strings, bytes as base64,
 * records as objects, dates as "YYYY-MM-DD", durations as milliseconds). */
void fv_print_json(const fl_plan *p, uint32_t type, fl_val v, FILE *out);

/* A JSON string: the one escaping rule of flow (value.c says it).
 * fv_json_string writes n bytes of s quoted to out. */
void fv_json_string(FILE *out, const char *s, size_t n);

/* Parse a text (a --param value, or a YAML scalar given as a whole parameter)
 * as a value of `type`. Returns 0 and a new reference in *out, or -1 with one
 * line in err. Lists and records are written as JSON-like text: [1, 2],
 * {"a": 1}; a scalar's text is trimmed and may be JSON-quoted ("5"), except a
 * str, path or dir's, which is taken as it stands. */
int fv_parse(const fl_plan *p, uint32_t type, const char *text, fl_val *out, char *err,
             size_t errlen);

/* Parse exactly s[0 .. n) (no trimming, no quotes; it may hold no NUL) as a
 * scalar of `type`, by the rules of fv_parse: how params.c reads a YAML scalar
 * inside a list or record. A list or record type is refused ("expected '['
 * for a list"). Returns as fv_parse. */
int fv_parse_scalar(const fl_plan *p, uint32_t type, const char *s, size_t n, fl_val *out,
                    char *err, size_t errlen);

/* At most 40 bytes of [s, e) for an error message: into buf (size n), control
 * bytes shown as '?'. Returns buf. */
const char *fv_snippet(const char *s, const char *e, char *buf, size_t n);

/* Is s[0..n) a calendar day written YYYY-MM-DD (years 0001-9999)? */
bool fv_date_valid(const char *s, size_t n);

/* Is s[0..n) a time written YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds)? NULL when
 * it is, else why not (one phrase, static text). fv_time_valid: the same as a bool. */
const char *fv_time_problem(const char *s, size_t n);
bool fv_time_valid(const char *s, size_t n);

/* Is s[0..n) a duration as the language writes it: digits (with '_' between
 * groups, as 1_000) and a unit, ms s m h d? 0 and the milliseconds in *ms; -1
 * when it is not one; -2 when it is one but does not fit in an int64 of ms.
 * The lexer reads duration literals with it, flowrun gc --older-than too. */
int fv_duration_parse(const char *s, size_t n, int64_t *ms);

/* Serialise to / from a byte buffer (process workers, the store). Deterministic:
 * equal values give equal bytes. fv_decode returns -1 on malformed input. */
typedef struct fv_buf {
    uint8_t *data;
    size_t len, cap;
    fl_ctx *ctx; /* allocates data (fl_free it there); NULL: fl_ctx_default() (transitional) */
    bool failed; /* an allocation failed: later puts are dropped, the bytes are incomplete */
} fv_buf;
void fv_encode(const fl_plan *p, uint32_t type, fl_val v, fv_buf *out);
/* Append n bytes to b (growing it); append v as n (at most 8) little-endian
 * bytes. Out of memory sets b->failed and drops this and every later put: the
 * writer tests b->failed once at the end. Inline: they sit on hot paths (the
 * history's records, one per instance). fv_buf_grow makes room for `need` bytes
 * in all; false when it cannot. */
bool fv_buf_grow(fv_buf *b, size_t need);
static inline void fv_buf_put(fv_buf *b, const void *d, size_t n) {
    if (b->len + n > b->cap && !fv_buf_grow(b, b->len + n)) return;
    if (n) memcpy(b->data + b->len, d, n);
    b->len += n;
}
/* v's 8 bytes at d, little-endian: an int's encoding (fv_encode), written in place. */
static inline void fv_le64(uint8_t *d, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(d, &v, 8);
#else
    for (int i = 0; i < 8; i++) d[i] = (uint8_t)(v >> (8 * i));
#endif
}
static inline void fv_buf_put_le(fv_buf *b, uint64_t v, int n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 0 && n <= 8 && b->len + 8 <= b->cap) { /* one store: a result's int, per instance */
        memcpy(b->data + b->len, &v, 8);              /* (8 bytes written, n kept) */
        b->len += (size_t)n;
        return;
    }
#endif
    uint8_t w[8];
    for (int i = 0; i < n && i < 8; i++) w[i] = (uint8_t)(v >> (8 * i));
    fv_buf_put(b, w, (size_t)(n < 8 ? n : 8));
}
int fv_decode(const fl_plan *p, uint32_t type, const uint8_t *data, size_t len, size_t *used,
              fl_val *out);

#endif /* FLOW_VALUE_H */
