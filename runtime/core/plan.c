/*
 * plan.c — building a plan in memory (flowc), the plan's bytes (plan_write) and the
 * validating reader (plan_read) that lets flowrun trust every index in a plan.
 * Owned by the plan module. The byte format: docs/plan-format.md. The views (JSON,
 * YAML, DOT, C) are in plan_emit.c.
 */
#include "plan.h"
#include "hash.h"
#include "htab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The builder's growth. A failed allocation does not stop the builder: it
 * records "out of memory" in the plan's context, sets p->oom, and the push lands
 * on an element that already exists (plan_new gives every array room), so the
 * compiler need not test each push; plan_write refuses a plan with p->oom.
 * (A read plan's arrays are never NULL either: decode gives each one element.) */
uint32_t plan_grow_(fl_plan *p, void **arr, uint32_t *n, uint32_t *cap, size_t size) {
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 16;
        void *q = p->oom ? NULL : fl_reallocarray(p->ctx, *arr, c, size);
        if (!q) {
            p->oom = true;
            uint32_t k = *n ? *n - 1 : 0;
            memset((char *)*arr + (size_t)k * size, 0, size);
            return k;
        }
        *arr = q;
        *cap = c;
    }
    memset((char *)*arr + (size_t)*n * size, 0, size);
    return (*n)++;
}

/* Builder-only interning: the strings by hash (htab.h; a slot's value is the
 * string id) and a linear scan for types (plans hold few types). */
typedef struct plan_intern {
    fl_htab tab;
} plan_intern;

static uint32_t add_str(fl_plan *p, const char *s) {
    size_t n = strlen(s) + 1;
    if (p->n_strtext + n > p->cap_strtext) {
        uint32_t c = p->cap_strtext ? p->cap_strtext : 1024;
        while (p->n_strtext + n > c)
            c *= 2;
        char *q = p->oom ? NULL : fl_realloc(p->ctx, p->strtext, c);
        if (!q) {
            p->oom = true;
            return 0; /* "" */
        }
        p->strtext = q;
        p->cap_strtext = c;
    }
    uint32_t id = PLAN_PUSH(p, stroff);
    if (p->oom) return 0;
    p->stroff[id] = p->n_strtext;
    memcpy(p->strtext + p->n_strtext, s, n);
    p->n_strtext += (uint32_t)n;
    return id;
}

/* Every array gets room for one record now, so a failed push later has an
 * element to land on (plan_grow_). */
#define PLAN_BUILDER_ARRAYS(X)                                                                     \
    X(stroff) X(types) X(fields) X(values) X(items) X(libs) X(params) X(binds) X(tasks)            \
        X(graphs) X(nodes) X(args) X(afters) X(typelist) X(lambdas) X(code) X(locs) X(secrets)      \
            X(containers) X(sources) X(locsrc)

fl_plan *plan_new(fl_ctx *ctx) {
    fl_plan *p = fl_calloc(ctx, 1, sizeof *p);
    if (!p) return NULL;
    p->ctx = ctx;
    p->intern = fl_calloc(ctx, 1, sizeof(plan_intern));
    if (!p->intern) goto oom;
#define X(arr)                                                                                     \
    if (!(p->arr = fl_calloc(ctx, 1, sizeof *p->arr))) goto oom;                                   \
    p->cap_##arr = 1;
    PLAN_BUILDER_ARRAYS(X)
#undef X
    add_str(p, "");
    if (p->oom) goto oom;
    p->source = 0;
    return p;
oom:
    plan_free(p);
    return NULL;
}

void plan_free(fl_plan *p) {
    if (!p) return;
    fl_ctx *c = p->ctx;
    if (p->intern) fl_htab_free(c, &((plan_intern *)p->intern)->tab);
    fl_free(c, p->intern);
    fl_free(c, p->strtext);
#define X(arr) fl_free(c, p->arr);
    PLAN_BUILDER_ARRAYS(X)
#undef X
    fl_free(c, p);
}

const char *plan_str(const fl_plan *p, uint32_t s) {
    if (s == PLAN_NONE || s >= p->n_stroff) return "";
    return p->strtext + p->stroff[s];
}

uint32_t plan_intern_str(fl_plan *p, const char *s) {
    plan_intern *in = p->intern;
    if (!in) return add_str(p, s); /* a read plan: no table, just append */
    if (!fl_htab_room(&in->tab) && (p->oom || fl_htab_reserve(p->ctx, &in->tab, 1))) {
        p->oom = true;
        return 0;
    }
    uint64_t h = fl_hash_str(s);
    fl_htab_slot *e = fl_htab_find(&in->tab, h);
    for (; e->hash; e = fl_htab_next(&in->tab, e, h))
        if (!strcmp(plan_str(p, (uint32_t)e->val), s)) return (uint32_t)e->val;
    uint32_t id = s[0] ? add_str(p, s) : 0;
    fl_htab_fill(&in->tab, e, h, id);
    return id;
}

static uint32_t find_type(fl_plan *p, const plan_type *t, const plan_field *f) {
    for (uint32_t i = 0; i < p->n_types; i++) {
        const plan_type *u = &p->types[i];
        if (u->kind != t->kind || u->elem != t->elem || u->n != t->n || u->name != t->name)
            continue;
        if (t->kind == PT_RECORD && memcmp(&p->fields[u->first], f, (size_t)t->n * sizeof *f) != 0)
            continue;
        return i;
    }
    return PLAN_NONE;
}

uint32_t plan_type_basic(fl_plan *p, plan_type_kind k) {
    plan_type t = {(uint32_t)k, PLAN_NONE, 0, 0, PLAN_NONE};
    uint32_t i = find_type(p, &t, NULL);
    if (i != PLAN_NONE) return i;
    i = PLAN_PUSH(p, types);
    p->types[i] = t;
    return i;
}

uint32_t plan_type_list(fl_plan *p, uint32_t elem) {
    plan_type t = {PT_LIST, elem, 0, 0, PLAN_NONE};
    uint32_t i = find_type(p, &t, NULL);
    if (i != PLAN_NONE) return i;
    i = PLAN_PUSH(p, types);
    p->types[i] = t;
    return i;
}

uint32_t plan_type_record(fl_plan *p, uint32_t name, const plan_field *fields, uint32_t n) {
    plan_type t = {PT_RECORD, PLAN_NONE, 0, n, name};
    uint32_t i = find_type(p, &t, fields);
    if (i != PLAN_NONE) return i;
    t.first = p->n_fields;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t f = PLAN_PUSH(p, fields);
        p->fields[f] = fields[k];
    }
    i = PLAN_PUSH(p, types);
    p->types[i] = t;
    return i;
}

uint32_t plan_add_loc(fl_plan *p, uint32_t line, uint32_t col, uint32_t end_line,
                      uint32_t end_col) {
    uint32_t i = PLAN_PUSH(p, locs);
    p->locs[i] = (plan_loc){line, col, end_line, end_col};
    return i;
}

/* ==== the bytes ==========================================================================
 *
 * DESIGN. A plan file is a fixed header, a section table and one section per array of
 * fl_plan, all little-endian, written field by field (never raw structs, so no padding
 * and no host layout leaks into the file). Each record kind's fields are listed ONCE
 * below (PLAN_REC_*); the writer, the reader and the element sizes all come from those
 * lists. The reader first checks the envelope (magic, version, length, checksum, section
 * table) and decodes, then plan_validate checks every cross-reference, so an accepted
 * plan never holds an index the runtime has to re-check. Layout: docs/plan-format.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "expr.h"
#include "expr_ops.h"

static const uint8_t plan_magic[8] = {0x89, 'F', 'L', 'O', '\r', '\n', 0x1a, '\n'};

/* Each field: X(encoding, lvalue through `r`). Encodings: u8 u16 u32 i32 i64 h256
 * (32 raw bytes) vpay (a constant's payload, 8 bytes, meaning by its type's kind). */
#define PLAN_REC_strtext(F) F(u8, *r)
#define PLAN_REC_u32(F) F(u32, *r)
#define PLAN_REC_types(F)                                                                          \
    F(u32, r->kind) F(u32, r->elem) F(u32, r->first) F(u32, r->n) F(u32, r->name)
#define PLAN_REC_fields(F) F(u32, r->name) F(u32, r->type)
#define PLAN_REC_values(F) F(u32, r->type) F(u32, r->n) F(vpay, r->u.i)
#define PLAN_REC_libs(F) F(u32, r->name) F(u32, r->path) F(h256, r->sha256)
#define PLAN_REC_params(F) F(u32, r->name) F(u32, r->type) F(u32, r->def) F(u32, r->loc)
#define PLAN_REC_binds(F) F(u32, r->kind) F(u32, r->index)
#define PLAN_REC_tasks(F)                                                                          \
    F(u32, r->name)                                                                                \
    F(u32, r->kind)                                                                                \
    F(u32, r->first_param)                                                                         \
    F(u32, r->nparams)                                                                             \
    F(u32, r->ret)                                                                                 \
    F(u32, r->lib)                                                                                 \
    F(u32, r->symbol)                                                                              \
    F(u32, r->cmd) F(u32, r->first) F(u32, r->second) F(u32, r->stitch) F(u32, r->first_bind)      \
        F(u32, r->retries) F(u32, r->concurrency) F(i64, r->retry_delay_ms) F(i64, r->timeout_ms)  \
            F(i64, r->max_map) F(u32, r->cache) F(u32, r->trigger) F(u32, r->version)              \
                F(u32, r->run_as) F(u32, r->image) F(u32, r->label) F(u32, r->loc)        \
                    F(i64, r->memory) F(u32, r->max_procs)
#define PLAN_REC_graphs(F)                                                                         \
    F(u32, r->name)                                                                                \
    F(u32, r->kind)                                                                                \
    F(u32, r->first_param)                                                                         \
    F(u32, r->nparams)                                                                             \
    F(u32, r->ret)                                                                                 \
    F(u32, r->ret_node) F(u32, r->schedule) F(u32, r->start) F(u32, r->tz) F(u32, r->watch)     \
        F(u32, r->first_node) F(u32, r->nnodes) F(u32, r->loc)
#define PLAN_REC_nodes(F)                                                                          \
    F(u32, r->kind)                                                                                \
    F(u32, r->type)                                                                                \
    F(u32, r->ref)                                                                                 \
    F(u32, r->aux)                                                                                 \
    F(u32, r->first_arg)                                                                           \
    F(u32, r->nargs) F(u32, r->first_after) F(u32, r->nafter) F(u32, r->name) F(u32, r->loc)
#define PLAN_REC_args(F) F(u32, r->node) F(u32, r->mode) F(u32, r->aux)
#define PLAN_REC_lambdas(F)                                                                        \
    F(u32, r->first_ptype)                                                                         \
    F(u32, r->nparams)                                                                             \
    F(u32, r->ret) F(u32, r->first_code) F(u32, r->ncode) F(u32, r->nlocals) F(u32, r->loc)
#define PLAN_REC_code(F) F(u16, r->op) F(u16, r->b) F(i32, r->a) F(u32, r->loc)
#define PLAN_REC_locs(F) F(u32, r->line) F(u32, r->col) F(u32, r->end_line) F(u32, r->end_col)
#define PLAN_REC_secrets(F) F(u32, r->task) F(u32, r->name) F(u32, r->loc)
#define PLAN_REC_containers(F) F(u32, r->task) F(u32, r->cpus) F(u32, r->network)
#define PLAN_REC_sources(F) F(u32, r->path) F(h256, r->sha256)

/* S(id, array, record list): the sections in file order; ids are never reused. */
#define PLAN_SECTIONS(S)                                                                           \
    S(1, strtext, strtext)                                                                         \
    S(2, stroff, u32)                                                                              \
    S(3, types, types)                                                                             \
    S(4, fields, fields)                                                                           \
    S(5, values, values)                                                                           \
    S(6, items, u32)                                                                               \
    S(7, libs, libs)                                                                               \
    S(8, params, params) S(9, binds, binds) S(10, tasks, tasks) S(11, graphs, graphs)              \
        S(12, nodes, nodes) S(13, args, args) S(14, afters, u32) S(15, typelist, u32)              \
            S(16, lambdas, lambdas) S(17, code, code) S(18, locs, locs) S(19, secrets, secrets)    \
                S(20, containers, containers) S(21, sources, sources) S(22, locsrc, u32)

/* Sections a version 3 plan has: all but `secrets` (read as empty); a version 4 plan:
 * all but `containers`; a version 5 plan: all but `sources`. */
#define PLAN_NSECTIONS_V3 18
#define PLAN_NSECTIONS_V4 19
#define PLAN_NSECTIONS_V5 20

enum {
#define S(id, arr, rec) PLAN_SEC_##arr = id,
    PLAN_SECTIONS(S)
#undef S
};

#define PLAN_SIZE_u8 1
#define PLAN_SIZE_u16 2
#define PLAN_SIZE_u32 4
#define PLAN_SIZE_i32 4
#define PLAN_SIZE_i64 8
#define PLAN_SIZE_h256 32
#define PLAN_SIZE_vpay 8
#define PLAN_FIELD_SIZE(enc, lv) +PLAN_SIZE_##enc

#define PLAN_NSECTIONS (0 PLAN_SECTIONS(PLAN_COUNT_ONE))
#define PLAN_COUNT_ONE(id, arr, rec) +1

/* header: magic 8, version 4, header size 4, total length 8, checksum 32, source 4,
 * source_sha256 32, section count 4 */
#define PLAN_HEADER_SIZE 96u
#define PLAN_SUM_OFF 24u
#define PLAN_SECENT_SIZE 24u      /* id 4, element size 4, count 4, reserved 4, offset 8 */
#define PLAN_MAX_BYTES (1u << 30) /* a plan larger than 1 GiB is refused */
#define PLAN_MAX_LOCALS 65535u    /* local slots of one lambda */
#define PLAN_MAX_STACK 4096       /* operand stack depth of one lambda */
#define PLAN_MAX_CALL_ARGS 16     /* arguments of one built-in call */
#define PLAN_TEXT_DEPTH 32        /* nesting shown by plan_type_text */

/* ---- writing ---- */
typedef struct plan_buf {
    uint8_t *p;  /* bytes */
    size_t n;    /* used */
    size_t cap;  /* allocated */
    bool failed; /* the size table was wrong: the bytes are garbage */
} plan_buf;

/* plan_write computes the exact size first and allocates it once; running past
 * it is a bug in the size table, caught by b->failed (the writes start over at 0,
 * in bounds; every put is smaller than the header). */
static void buf_need(plan_buf *b, size_t k) {
    if (b->n + k <= b->cap) return;
    b->failed = true;
    b->n = 0;
}
static void put_u64(plan_buf *b, uint64_t v) {
    buf_need(b, 8);
    for (int i = 0; i < 8; i++)
        b->p[b->n++] = (uint8_t)(v >> (8 * i));
}
static void put_u32(plan_buf *b, uint32_t v) {
    buf_need(b, 4);
    for (int i = 0; i < 4; i++)
        b->p[b->n++] = (uint8_t)(v >> (8 * i));
}
static void put_u16(plan_buf *b, uint16_t v) {
    buf_need(b, 2);
    b->p[b->n++] = (uint8_t)v;
    b->p[b->n++] = (uint8_t)(v >> 8);
}
static void put_bytes(plan_buf *b, const void *s, size_t k) {
    buf_need(b, k);
    memcpy(b->p + b->n, s, k);
    b->n += k;
}

static bool kind_is_strlike(uint32_t k) {
    return k == PT_STR || k == PT_PATH || k == PT_DIR || k == PT_DATE || k == PT_TIME;
}

/* A constant's payload as 8 bytes, by its type's kind (so unused union bytes never leak). */
static uint64_t value_payload(const fl_plan *p, const plan_value *v) {
    uint32_t k = v->type < p->n_types ? p->types[v->type].kind : PT_INT;
    if (k == PT_FLOAT) {
        uint64_t bits;
        memcpy(&bits, &v->u.f, 8);
        return bits;
    }
    if (kind_is_strlike(k)) return v->u.s;
    if (k == PT_LIST || k == PT_RECORD) return v->u.first;
    return (uint64_t)v->u.i;
}

#define PUT_u8(lv) buf_need(&b, 1), b.p[b.n++] = (uint8_t)(lv);
#define PUT_u16(lv) put_u16(&b, (uint16_t)(lv));
#define PUT_u32(lv) put_u32(&b, (uint32_t)(lv));
#define PUT_i32(lv) put_u32(&b, (uint32_t)(lv));
#define PUT_i64(lv) put_u64(&b, (uint64_t)(lv));
#define PUT_h256(lv) put_bytes(&b, (lv), 32);
#define PUT_vpay(lv) put_u64(&b, value_payload(p, r));
#define PLAN_PUT_FIELD(enc, lv) PUT_##enc(lv)

/* The plan's checksum: SHA-256 of the bytes with the checksum field read as zeros
 * (digest.c's fl_sha256: no OpenSSL initialisation at start-up). Always 0. */
static int plan_sum(const uint8_t *buf, size_t len, uint8_t md[32]) {
    static const uint8_t zero[32];
    fl_sha256 c;
    fl_digest d;
    sha256_init(&c);
    sha256_update(&c, buf, PLAN_SUM_OFF);
    sha256_update(&c, zero, 32);
    sha256_update(&c, buf + PLAN_SUM_OFF + 32, len - PLAN_SUM_OFF - 32);
    sha256_final(&c, &d);
    memcpy(md, d.b, 32);
    return 0;
}

static int plan_seal(uint8_t *buf, size_t len) {
    uint8_t md[32];
    if (plan_sum(buf, len, md)) return -1;
    memcpy(buf + PLAN_SUM_OFF, md, 32);
    return 0;
}

/* For tests and the fuzzer: recompute the checksum of (possibly edited) plan bytes. */
void plan_reseal(uint8_t *buf, size_t len) {
    if (len >= PLAN_HEADER_SIZE) (void)plan_seal(buf, len);
}

int plan_write(const fl_plan *p, uint8_t **out, size_t *len) {
    plan_buf b = {0};
    uint64_t total = PLAN_HEADER_SIZE + (uint64_t)PLAN_NSECTIONS * PLAN_SECENT_SIZE;
#define S(id, arr, rec) total += (uint64_t)p->n_##arr * (0 PLAN_REC_##rec(PLAN_FIELD_SIZE));
    PLAN_SECTIONS(S)
#undef S
    *out = NULL;
    *len = 0;
    if (total > PLAN_MAX_BYTES) return -1;
    if (p->oom) return fl_error(p->ctx, FL_ENOMEM, NULL, "out of memory");
    b.p = fl_malloc(p->ctx, (size_t)total);
    if (!b.p) return -1;
    b.cap = (size_t)total;
    put_bytes(&b, plan_magic, 8);
    put_u32(&b, PLAN_VERSION);
    put_u32(&b, PLAN_HEADER_SIZE);
    put_u64(&b, total);
    uint8_t zero[32] = {0};
    put_bytes(&b, zero, 32);
    put_u32(&b, p->source);
    put_bytes(&b, p->source_sha256, 32);
    put_u32(&b, PLAN_NSECTIONS);
    uint64_t off = PLAN_HEADER_SIZE + (uint64_t)PLAN_NSECTIONS * PLAN_SECENT_SIZE;
#define S(id, arr, rec)                                                                            \
    {                                                                                              \
        uint32_t esz = 0 PLAN_REC_##rec(PLAN_FIELD_SIZE);                                          \
        put_u32(&b, id);                                                                           \
        put_u32(&b, esz);                                                                          \
        put_u32(&b, p->n_##arr);                                                                   \
        put_u32(&b, 0);                                                                            \
        put_u64(&b, off);                                                                          \
        off += (uint64_t)esz * p->n_##arr;                                                         \
    }
    PLAN_SECTIONS(S)
#undef S
#define S(id, arr, rec)                                                                            \
    for (uint32_t i = 0; i < p->n_##arr; i++) {                                                    \
        const __typeof__(*p->arr) *r = &p->arr[i];                                                 \
        PLAN_REC_##rec(PLAN_PUT_FIELD)                                                             \
    }
    PLAN_SECTIONS(S)
#undef S
    if (b.failed || b.n != total || plan_seal(b.p, b.n)) {
        fl_free(p->ctx, b.p);
        return -1;
    }
    *out = b.p;
    *len = b.n;
    return 0;
}

/* ---- reading: the envelope ---- */
static uint16_t rd16(const uint8_t *s) {
    return (uint16_t)(s[0] | s[1] << 8);
}
static uint32_t rd32(const uint8_t *s) {
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}
static uint64_t rd64(const uint8_t *s) {
    return rd32(s) | (uint64_t)rd32(s + 4) << 32;
}

#define GET_u8(lv) (lv) = (__typeof__(lv))*c, c += 1;
#define GET_u16(lv) (lv) = rd16(c), c += 2;
#define GET_u32(lv) (lv) = rd32(c), c += 4;
#define GET_i32(lv) (lv) = (int32_t)rd32(c), c += 4;
#define GET_i64(lv) (lv) = (int64_t)rd64(c), c += 8;
#define GET_h256(lv) memcpy((lv), c, 32), c += 32;
#define GET_vpay(lv) (lv) = (int64_t)rd64(c), c += 8;
#define PLAN_GET_FIELD(enc, lv) GET_##enc(lv)

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        for (char *c = err; *c; c++) /* names from the plan must not break the one line */
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    return -1;
}

/* Magic, version, length, checksum: one line saying what is wrong with the bytes. */
static int check_envelope(const uint8_t *buf, size_t len, char *err, size_t errlen) {
    if (len == 0) return fail(err, errlen, "empty file: not a flow plan");
    size_t m = len < 8 ? len : 8;
    if (memcmp(buf, plan_magic, m) != 0) {
        if (len >= 4 && !memcmp(buf + 1, "FLO", 3)) {
            if (buf[0] == (plan_magic[0] & 0x7f))
                return fail(err, errlen, "damaged by a 7-bit transfer (high bit stripped)");
            if (len >= 5 && (buf[4] == '\n' || (len >= 6 && buf[4] == '\r' && buf[5] == '\r')))
                return fail(err, errlen,
                            "damaged by a text-mode transfer (line endings converted)");
        }
        return fail(err, errlen, "not a flow plan (bad magic)");
    }
    if (len < 12)
        return fail(err, errlen, "truncated (%zu of at least %u bytes)", len, PLAN_HEADER_SIZE);
    uint32_t version = rd32(buf + 8);
    if (version > PLAN_VERSION)
        return fail(err, errlen, "plan format version %u is newer than this flowrun supports (%d)",
                    version, PLAN_VERSION);
    if (version == 0) return fail(err, errlen, "bad plan: format version 0");
    if (version < PLAN_OLDEST_VERSION) /* version 1: call nodes carried no instance names */
        return fail(err, errlen, "plan format version %u is older than this flowrun reads (%d): "
                    "recompile it with flowc", version, PLAN_VERSION);
    if (len < PLAN_HEADER_SIZE)
        return fail(err, errlen, "truncated (%zu of at least %u bytes)", len, PLAN_HEADER_SIZE);
    if (rd32(buf + 12) != PLAN_HEADER_SIZE)
        return fail(err, errlen, "bad plan: header size %u, expected %u", rd32(buf + 12),
                    PLAN_HEADER_SIZE);
    uint64_t total = rd64(buf + 16);
    if (total > len)
        return fail(err, errlen, "truncated (%zu of %llu bytes)", len, (unsigned long long)total);
    if (total < len)
        return fail(err, errlen, "%zu bytes of trailing garbage after the plan (%llu bytes)",
                    len - (size_t)total, (unsigned long long)total);
    uint8_t md[32];
    if (plan_sum(buf, len, md)) return fail(err, errlen, "cannot compute SHA-256 (OpenSSL failed)");
    if (memcmp(md, buf + PLAN_SUM_OFF, 32) != 0)
        return fail(err, errlen, "checksum mismatch: the file is damaged");
    return 0;
}

static void plan_free_arrays(fl_plan *p) {
    p->intern = NULL;
    plan_free(p);
}

/* The section table, then every section decoded into a fresh fl_plan. */
static fl_plan *decode(fl_ctx *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen) {
    uint32_t nsec = rd32(buf + 92), version = rd32(buf + 8);
    uint32_t want = version < 4   ? PLAN_NSECTIONS_V3
                    : version < 5 ? PLAN_NSECTIONS_V4
                    : version < 6 ? PLAN_NSECTIONS_V5
                                  : PLAN_NSECTIONS;
    if (nsec != want) {
        fail(err, errlen, "bad plan: %u sections, expected %u", nsec, want);
        return NULL;
    }
    uint64_t table_end = PLAN_HEADER_SIZE + (uint64_t)nsec * PLAN_SECENT_SIZE;
    if (table_end > len) {
        fail(err, errlen, "bad plan: the section table runs past the end of the file");
        return NULL;
    }
    fl_plan *p = fl_calloc(ctx, 1, sizeof *p);
    if (!p) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    p->ctx = ctx;
    p->source = rd32(buf + 56);
    memcpy(p->source_sha256, buf + 60, 32);
    uint64_t prev_end = table_end;
    const uint8_t *ent = buf + PLAN_HEADER_SIZE;
#define S(sid, arr, rec)                                                                           \
    {                                                                                              \
        uint32_t esz = 0 PLAN_REC_##rec(PLAN_FIELD_SIZE);                                          \
        if (sid > nsec) { /* a section newer than the plan's version: empty */                    \
            p->arr = fl_calloc(ctx, 1, sizeof *p->arr);                                            \
            if (!p->arr) {                                                                         \
                fail(err, errlen, "out of memory");                                                \
                goto bad;                                                                          \
            }                                                                                      \
            goto next_##arr;                                                                       \
        }                                                                                          \
        uint32_t id = rd32(ent), size = rd32(ent + 4), count = rd32(ent + 8);                      \
        uint64_t off = rd64(ent + 16);                                                             \
        ent += PLAN_SECENT_SIZE;                                                                   \
        if (id != sid) {                                                                           \
            fail(err, errlen, "bad plan: section %u is %u, expected %u (%s)", (unsigned)(sid - 1), \
                 id, (unsigned)sid, #arr);                                                         \
            goto bad;                                                                              \
        }                                                                                          \
        if (size != esz) {                                                                         \
            fail(err, errlen, "bad plan: section %s has %u-byte records, expected %u", #arr, size, \
                 esz);                                                                             \
            goto bad;                                                                              \
        }                                                                                          \
        if (rd32(ent - PLAN_SECENT_SIZE + 12) != 0) {                                              \
            fail(err, errlen, "bad plan: section %s: reserved field is not zero", #arr);           \
            goto bad;                                                                              \
        }                                                                                          \
        if (count == PLAN_NONE) {                                                                  \
            fail(err, errlen, "bad plan: section %s: too many records", #arr);                     \
            goto bad;                                                                              \
        }                                                                                          \
        if (off < prev_end || off > len || (uint64_t)count * esz > len - off) {                    \
            fail(err, errlen,                                                                      \
                 "bad plan: section %s (offset %llu, %u records) overlaps "                        \
                 "another or runs past the end",                                                   \
                 #arr, (unsigned long long)off, count);                                            \
            goto bad;                                                                              \
        }                                                                                          \
        prev_end = off + (uint64_t)count * esz;                                                    \
        /* never NULL, even when empty: code may form `arr + first` for an empty range */          \
        p->arr = fl_calloc(ctx, count ? count : 1, sizeof *p->arr);                                \
        if (!p->arr) {                                                                             \
            fail(err, errlen, "out of memory");                                                    \
            goto bad;                                                                              \
        }                                                                                          \
        p->n_##arr = p->cap_##arr = count;                                                         \
        const uint8_t *c = buf + off;                                                              \
        for (uint32_t i = 0; i < count; i++) {                                                     \
            __typeof__(*p->arr) *r = &p->arr[i];                                                   \
            PLAN_REC_##rec(PLAN_GET_FIELD)                                                         \
        }                                                                                          \
    }                                                                                              \
    next_##arr:;
    PLAN_SECTIONS(S)
#undef S
    if (prev_end != len) {
        fail(err, errlen, "bad plan: %llu unused bytes after the last section",
             (unsigned long long)(len - prev_end));
        goto bad;
    }
    return p;
bad:
    plan_free_arrays(p);
    return NULL;
}

/* ---- reading: the cross-references ---- */
typedef struct plan_check {
    fl_plan *p;        /* the plan being checked (values are fixed up in place) */
    char *err;           /* where the one-line message goes */
    size_t errlen;       /* its size */
    uint32_t *owner;     /* graph owning each node (PLAN_NONE: none yet) */
    uint64_t type_steps; /* what is left of the budget of structural type comparisons */
} plan_check;

static bool in_range(uint32_t first, uint32_t n, uint32_t total) {
    return first <= total && n <= total - first;
}

#define BAD(...) return fail(k->err, k->errlen, "bad plan: " __VA_ARGS__)

static int chk_str(plan_check *k, uint32_t s, bool optional, const char *what, uint32_t i) {
    if (s == PLAN_NONE && optional) return 0;
    if (s >= k->p->n_stroff) BAD("%s %u refers to string %u of %u", what, i, s, k->p->n_stroff);
    return 0;
}
_Static_assert(PLAN_NAME_MAX == 200, "plan_name_bad says 200");
const char *plan_name_bad(const char *s) {
    if (!s[0]) return "is empty";
    if (s[0] == '-') return "starts with '-'";
    if (!strcmp(s, ".") || !strcmp(s, "..")) return "is '.' or '..'";
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] == '/') return "contains '/'";
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) return "contains a control character";
    }
    if (n > PLAN_NAME_MAX) return "is longer than 200 bytes";
    return NULL;
}
/* A string that names something and may become a path component (plan_name_bad). */
static int chk_name(plan_check *k, uint32_t s, bool optional, const char *what, uint32_t i) {
    if (chk_str(k, s, optional, what, i)) return -1;
    if (s == PLAN_NONE) return 0;
    const char *why = plan_name_bad(plan_str(k->p, s));
    if (why) BAD("%s %u name '%.64s' %s", what, i, plan_str(k->p, s), why);
    return 0;
}
/* A node's name is a binding path: the steps of an inlined group call are named
 * through it (`x/clean`), each part a name that may become a path component. */
static int chk_path_name(plan_check *k, uint32_t s, const char *what, uint32_t i) {
    if (chk_str(k, s, true, what, i)) return -1;
    if (s == PLAN_NONE) return 0;
    const char *name = plan_str(k->p, s);
    if (strlen(name) > 4 * PLAN_NAME_MAX) BAD("%s %u name '%.64s' is too long", what, i, name);
    char part[PLAN_NAME_MAX + 2];
    for (const char *c = name;;) {
        size_t n = strcspn(c, "/");
        const char *why = n > PLAN_NAME_MAX ? "has a part longer than 200 bytes" : NULL;
        if (!why) {
            memcpy(part, c, n);
            part[n] = 0;
            why = plan_name_bad(part);
        }
        if (why) BAD("%s %u name '%.64s' %s", what, i, name, why);
        if (!c[n]) break;
        c += n + 1;
    }
    return 0;
}
static int chk_type(plan_check *k, uint32_t t, const char *what, uint32_t i) {
    if (t >= k->p->n_types) BAD("%s %u refers to type %u of %u", what, i, t, k->p->n_types);
    return 0;
}
static int chk_loc(plan_check *k, uint32_t l, const char *what, uint32_t i) {
    if (l != PLAN_NONE && l >= k->p->n_locs)
        BAD("%s %u refers to source location %u of %u", what, i, l, k->p->n_locs);
    return 0;
}
static int chk_lambda(plan_check *k, uint32_t l, const char *what, uint32_t i) {
    if (l >= k->p->n_lambdas) BAD("%s %u refers to lambda %u of %u", what, i, l, k->p->n_lambdas);
    return 0;
}
static uint32_t kind_of(const fl_plan *p, uint32_t t) {
    return p->types[t].kind;
}

/* Records are structural (language.md §3): two valid types agree when they have the same
 * shape, whatever their record names. Types are acyclic, but a hostile plan could make
 * comparisons slow (deep, distinct, equal shapes compared again and again), so they
 * share one step budget per plan, proportional to its size; a plan that spends it all is
 * refused. Real plans compare interned types: equal indexes, no steps. */
static bool same_type_b(const fl_plan *p, uint32_t a, uint32_t b, uint64_t *steps) {
    if (a == b) return true;
    if (*steps == 0) return false;
    --*steps;
    const plan_type *x = &p->types[a], *y = &p->types[b];
    if (x->kind != y->kind) return false;
    if (x->kind == PT_LIST) return same_type_b(p, x->elem, y->elem, steps);
    if (x->kind != PT_RECORD) return true;
    if (x->n != y->n) return false;
    for (uint32_t f = 0; f < x->n; f++) {
        const plan_field *fx = &p->fields[x->first + f], *fy = &p->fields[y->first + f];
        if (fx->name != fy->name && strcmp(plan_str(p, fx->name), plan_str(p, fy->name)) != 0)
            return false;
        if (!same_type_b(p, fx->type, fy->type, steps)) return false;
    }
    return true;
}
static bool same_type(plan_check *k, uint32_t a, uint32_t b) {
    return same_type_b(k->p, a, b, &k->type_steps);
}

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((x) < 0) return -1;                                                                    \
    } while (0)

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. `left` bytes are available. */
static uint32_t utf8_len(const unsigned char *s, uint32_t left) {
    if (s[0] < 0x80) return 1;
    uint32_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || s[0] > 0xf4 || n > left) return 0;
    for (uint32_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

static int chk_strings(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_strtext;) {
        uint32_t n = utf8_len((const unsigned char *)p->strtext + i, p->n_strtext - i);
        if (!n) BAD("the string text is not UTF-8 at byte %u", i);
        i += n;
    }
    if (p->n_strtext == 0 || p->strtext[p->n_strtext - 1] != '\0')
        BAD("the string text does not end with a NUL byte");
    if (p->n_stroff == 0) BAD("no strings (string 0 must be \"\")");
    for (uint32_t i = 0; i < p->n_stroff; i++)
        if (p->stroff[i] >= p->n_strtext)
            BAD("string %u starts at %u, past the text (%u bytes)", i, p->stroff[i], p->n_strtext);
    if (p->strtext[p->stroff[0]] != '\0') BAD("string 0 is not \"\"");
    return chk_str(k, p->source, false, "source name", 0);
}

static int chk_types(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_fields; i++) {
        TRY(chk_str(k, p->fields[i].name, false, "field", i));
        TRY(chk_type(k, p->fields[i].type, "field", i));
    }
    for (uint32_t i = 0; i < p->n_types; i++) {
        const plan_type *t = &p->types[i];
        if (t->kind >= PT__COUNT) BAD("type %u has unknown kind %u", i, t->kind);
        if (t->kind == PT_LIST) {
            if (t->elem >= i)
                BAD("list type %u has element type %u (must come before it)", i, t->elem);
        } else if (t->elem != PLAN_NONE) {
            BAD("type %u is not a list but has an element type", i);
        }
        if (t->kind == PT_RECORD) {
            if (!in_range(t->first, t->n, p->n_fields))
                BAD("record type %u has fields %u..+%u of %u", i, t->first, t->n, p->n_fields);
            TRY(chk_str(k, t->name, true, "record type", i));
            for (uint32_t f = 0; f < t->n; f++)
                if (p->fields[t->first + f].type >= i)
                    BAD("record type %u has a field of type %u (must come before it)", i,
                        p->fields[t->first + f].type);
        } else if (t->n != 0 || t->name != PLAN_NONE) {
            BAD("type %u is not a record but has fields or a name", i);
        }
    }
    return 0;
}

static int chk_values(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_values; i++) {
        plan_value *v = &p->values[i];
        TRY(chk_type(k, v->type, "constant", i));
        const plan_type *t = &p->types[v->type];
        uint64_t raw = (uint64_t)v->u.i;
        if (t->kind != PT_LIST && t->kind != PT_RECORD && v->n != 0)
            BAD("constant %u is a scalar but has %u items", i, v->n);
        switch (t->kind) {
            case PT_INT:
            case PT_DURATION:
                break;
            case PT_BOOL:
                if (raw > 1)
                    BAD("constant %u is a bool but holds %llu", i, (unsigned long long)raw);
                break;
            case PT_FLOAT:
                memcpy(&v->u.f, &raw, 8);
                break;
            case PT_STR:
            case PT_PATH:
            case PT_DIR:
            case PT_DATE:
            case PT_TIME:
                if (raw >= p->n_stroff)
                    BAD("constant %u refers to string %llu of %u", i, (unsigned long long)raw,
                        p->n_stroff);
                v->u.i = 0;
                v->u.s = (uint32_t)raw;
                break;
            case PT_LIST:
            case PT_RECORD:
                if (raw > UINT32_MAX || !in_range((uint32_t)raw, v->n, p->n_items))
                    BAD("constant %u has items %llu..+%u of %u", i, (unsigned long long)raw, v->n,
                        p->n_items);
                v->u.i = 0;
                v->u.first = (uint32_t)raw;
                if (t->kind == PT_RECORD && v->n != t->n)
                    BAD("record constant %u has %u items for %u fields", i, v->n, t->n);
                for (uint32_t j = 0; j < v->n; j++) {
                    uint32_t it = p->items[v->u.first + j];
                    if (it >= i)
                        BAD("constant %u item %u refers to constant %u (must come before it)", i, j,
                            it);
                    uint32_t want = t->kind == PT_LIST ? t->elem : p->fields[t->first + j].type;
                    if (!same_type(k, p->values[it].type, want))
                        BAD("constant %u item %u has type %u, expected %u", i, j,
                            p->values[it].type, want);
                }
                break;
            default:
                BAD("constant %u has type %u of kind %s, which cannot be a constant", i, v->type,
                    t->kind == PT_VOID ? "void" : "bytes");
        }
    }
    for (uint32_t i = 0; i < p->n_items; i++)
        if (p->items[i] >= p->n_values)
            BAD("item %u refers to constant %u of %u", i, p->items[i], p->n_values);
    return 0;
}

static int chk_params(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_params; i++) {
        const plan_param *a = &p->params[i];
        TRY(chk_str(k, a->name, false, "parameter", i));
        TRY(chk_type(k, a->type, "parameter", i));
        TRY(chk_loc(k, a->loc, "parameter", i));
        if (a->def != PLAN_NONE) {
            if (a->def >= p->n_values)
                BAD("parameter %u default refers to constant %u of %u", i, a->def, p->n_values);
            if (!same_type(k, p->values[a->def].type, a->type))
                BAD("parameter %u default has type %u, expected %u", i, p->values[a->def].type,
                    a->type);
        }
    }
    for (uint32_t i = 0; i < p->n_libs; i++) {
        TRY(chk_name(k, p->libs[i].name, false, "library", i));
        TRY(chk_str(k, p->libs[i].path, false, "library", i));
    }
    for (uint32_t i = 0; i < p->n_typelist; i++)
        TRY(chk_type(k, p->typelist[i], "lambda parameter type", i));
    return 0;
}

static int chk_lambdas(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_code; i++) {
        if (p->code[i].op >= EOP__COUNT)
            BAD("instruction %u has unknown opcode %u", i, p->code[i].op);
        TRY(chk_loc(k, p->code[i].loc, "instruction", i));
    }
    for (uint32_t i = 0; i < p->n_lambdas; i++) {
        const plan_lambda *l = &p->lambdas[i];
        if (!in_range(l->first_ptype, l->nparams, p->n_typelist))
            BAD("lambda %u has parameter types %u..+%u of %u", i, l->first_ptype, l->nparams,
                p->n_typelist);
        TRY(chk_type(k, l->ret, "lambda", i));
        TRY(chk_loc(k, l->loc, "lambda", i));
        if (l->ncode == 0 || !in_range(l->first_code, l->ncode, p->n_code))
            BAD("lambda %u has code %u..+%u of %u", i, l->first_code, l->ncode, p->n_code);
        if (l->nlocals > PLAN_MAX_LOCALS)
            BAD("lambda %u has %u local slots (at most %u)", i, l->nlocals, PLAN_MAX_LOCALS);
        /* operands, jumps, stack bounds and operand types: the expression module's
         * verifier (the opcode list and its typing rules are owned there) */
        char why[200];
        if (expr_verify(p, i, why, sizeof why) != 0)
            BAD("lambda %u has a bad operand or ill-typed code: %s", i, why);
    }
    return 0;
}

/* A lambda's parameter types are (types[0..n)) of some params range, in order. */
static bool lambda_takes(plan_check *k, uint32_t li, uint32_t first_param, uint32_t n) {
    const fl_plan *p = k->p;
    const plan_lambda *l = &p->lambdas[li];
    if (l->nparams < n) return false;
    for (uint32_t j = 0; j < n; j++)
        if (!same_type(k, p->typelist[l->first_ptype + j], p->params[first_param + j].type))
            return false;
    return true;
}

static int chk_tasks(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_binds; i++)
        if (p->binds[i].kind >= PB__COUNT) BAD("bind %u has unknown kind %u", i, p->binds[i].kind);
    for (uint32_t i = 0; i < p->n_tasks; i++) {
        const plan_task *t = &p->tasks[i];
        TRY(chk_name(k, t->name, false, "task", i));
        if (t->kind >= TK__COUNT) BAD("task %u has unknown kind %u", i, t->kind);
        if (!in_range(t->first_param, t->nparams, p->n_params))
            BAD("task %u has parameters %u..+%u of %u", i, t->first_param, t->nparams, p->n_params);
        TRY(chk_type(k, t->ret, "task", i));
        TRY(chk_loc(k, t->loc, "task", i));
        switch ((plan_task_kind)t->kind) {
            case TK_C:
                if (t->lib >= p->n_libs)
                    BAD("task %u refers to library %u of %u", i, t->lib, p->n_libs);
                TRY(chk_str(k, t->symbol, false, "task", i));
                if (!plan_str(p, t->symbol)[0]) BAD("task %u has an empty symbol name", i);
                break;
            case TK_SH: {
                TRY(chk_lambda(k, t->cmd, "task", i));
                const plan_lambda *l = &p->lambdas[t->cmd];
                if (l->nparams != t->nparams + 1 ||
                    !lambda_takes(k, t->cmd, t->first_param, t->nparams) ||
                    kind_of(p, p->typelist[l->first_ptype + t->nparams]) != PT_STR ||
                    kind_of(p, l->ret) != PT_STR)
                    BAD("task %u command lambda %u does not take (params..., out: str) -> str", i,
                        t->cmd);
                break;
            }
            case TK_COMBINE: {
                if (t->first >= i || t->second >= i)
                    BAD("combine task %u refers to tasks %u and %u (must come before it)", i,
                        t->first, t->second);
                const plan_task *a = &p->tasks[t->first], *b = &p->tasks[t->second];
                uint32_t nfields = 0;
                if (t->stitch != PLAN_NONE) {
                    TRY(chk_lambda(k, t->stitch, "combine task", i));
                    const plan_lambda *l = &p->lambdas[t->stitch];
                    if (l->nparams != 1 || !same_type(k, p->typelist[l->first_ptype], a->ret) ||
                        kind_of(p, l->ret) != PT_RECORD)
                        BAD("combine task %u stitch lambda %u does not take the first result to "
                            "a record",
                            i, t->stitch);
                    nfields = p->types[l->ret].n;
                }
                if (!in_range(t->first_bind, b->nparams, p->n_binds))
                    BAD("combine task %u has binds %u..+%u of %u", i, t->first_bind, b->nparams,
                        p->n_binds);
                for (uint32_t j = 0; j < b->nparams; j++) {
                    const plan_bind *bd = &p->binds[t->first_bind + j];
                    if ((bd->kind == PB_STITCH && bd->index >= nfields) ||
                        (bd->kind == PB_PARAM && bd->index >= t->nparams))
                        BAD("combine task %u bind %u (%s %u) is out of range", i, j,
                            bd->kind == PB_STITCH ? "stitch field" : "parameter", bd->index);
                }
                break;
            }
            default:
                break;
        }
        if (t->trigger >= TRIG__COUNT) BAD("task %u has unknown trigger %u", i, t->trigger);
        if (t->cache > 1) BAD("task %u has cache %u (not a bool)", i, t->cache);
        if (t->retry_delay_ms < 0 || t->timeout_ms < 0 || t->max_map < 0)
            BAD("task %u has a negative retry_delay, timeout or max_map", i);
        if (t->memory < 0 || t->max_procs > PLAN_MAX_PROCS)
            BAD("task %u has a negative memory limit or too large a max_procs", i);
        if (t->retry_delay_ms > PLAN_MAX_DURATION_MS || t->timeout_ms > PLAN_MAX_DURATION_MS)
            BAD("task %u has a retry_delay or timeout longer than 365d", i);
        TRY(chk_str(k, t->version, true, "task", i));
        TRY(chk_str(k, t->run_as, true, "task", i));
        TRY(chk_str(k, t->image, true, "task", i));
        if (t->label != PLAN_NONE) {
            TRY(chk_lambda(k, t->label, "task", i));
            const plan_lambda *l = &p->lambdas[t->label];
            if (l->nparams > t->nparams || !lambda_takes(k, t->label, t->first_param, l->nparams))
                BAD("task %u label lambda %u does not take the task's first parameters", i,
                    t->label);
        }
    }
    return 0;
}

static bool is_list(const fl_plan *p, uint32_t t) {
    return kind_of(p, t) == PT_LIST;
}
/* type of field j of record type r (both already validated) */
static uint32_t field_type(const fl_plan *p, uint32_t r, uint32_t j) {
    return p->fields[p->types[r].first + j].type;
}

/* One node, knowing its graph g: kind, type, reference, arguments, afters. */
static int chk_node(plan_check *k, uint32_t g, uint32_t i) {
    fl_plan *p = k->p;
    const plan_graph *gr = &p->graphs[g];
    const plan_node *n = &p->nodes[i];
    if (n->kind >= PN__COUNT) BAD("node %u has unknown kind %u", i, n->kind);
    TRY(chk_type(k, n->type, "node", i));
    TRY(chk_path_name(k, n->name, "node", i));
    TRY(chk_loc(k, n->loc, "node", i));
    if (!in_range(n->first_arg, n->nargs, p->n_args))
        BAD("node %u has arguments %u..+%u of %u", i, n->first_arg, n->nargs, p->n_args);
    if (!in_range(n->first_after, n->nafter, p->n_afters))
        BAD("node %u has afters %u..+%u of %u", i, n->first_after, n->nafter, p->n_afters);
    for (uint32_t j = 0; j < n->nargs; j++) {
        const plan_arg *a = &p->args[n->first_arg + j];
        if (a->node >= i || a->node < gr->first_node) {
            if (a->node < p->n_nodes && k->owner[a->node] != g)
                BAD("node %u argument refers to node %u of another graph", i, a->node);
            BAD("node %u argument %u refers to node %u (must be earlier in graph %u)", i, j,
                a->node, g);
        }
        if (a->mode >= PA__COUNT) BAD("node %u argument %u has unknown mode %u", i, j, a->mode);
    }
    for (uint32_t j = 0; j < n->nafter; j++) {
        uint32_t a = p->afters[n->first_after + j];
        if (a >= i || a < gr->first_node) {
            if (a < p->n_nodes && k->owner[a] != g)
                BAD("node %u waits for node %u of another graph", i, a);
            BAD("node %u waits for node %u (must be earlier in graph %u)", i, a, g);
        }
    }
    const plan_arg *args = n->nargs ? p->args + n->first_arg : NULL; /* NULL + 0 is UB */
    uint32_t nparams = 0, first_param = 0, ret = 0;
    switch ((plan_node_kind)n->kind) {
        case PN_CONST:
            if (n->aux >= p->n_values)
                BAD("node %u refers to constant %u of %u", i, n->aux, p->n_values);
            if (!same_type(k, p->values[n->aux].type, n->type))
                BAD("node %u constant has another type", i);
            break;
        case PN_PARAM:
            if (n->aux >= gr->nparams)
                BAD("node %u refers to parameter %u of %u", i, n->aux, gr->nparams);
            if (!same_type(k, p->params[gr->first_param + n->aux].type, n->type))
                BAD("node %u has another type than its parameter", i);
            break;
        case PN_CALL:
        case PN_EXPAND:
        case PN_EXPAND_KWARGS:
            if (n->ref >= p->n_tasks) BAD("node %u refers to task %u of %u", i, n->ref, p->n_tasks);
            nparams = p->tasks[n->ref].nparams;
            first_param = p->tasks[n->ref].first_param;
            ret = p->tasks[n->ref].ret;
            break;
        case PN_GROUP_CALL:
        case PN_GROUP_EXPAND:
            if (n->ref >= p->n_graphs || p->graphs[n->ref].kind != PG_GROUP)
                BAD("node %u refers to graph %u, which is not a group", i, n->ref);
            if (n->ref == g) BAD("node %u: group %u calls itself", i, g);
            nparams = p->graphs[n->ref].nparams;
            first_param = p->graphs[n->ref].first_param;
            ret = p->graphs[n->ref].ret;
            break;
        case PN_MAP:
        case PN_FILTER: {
            TRY(chk_lambda(k, n->ref, "node", i));
            const plan_lambda *l = &p->lambdas[n->ref];
            if (n->nargs != 1 || !is_list(p, p->nodes[args[0].node].type) || l->nparams != 1 ||
                !same_type(k, p->typelist[l->first_ptype],
                           p->types[p->nodes[args[0].node].type].elem))
                BAD("node %u: %s needs one list argument and a lambda over its elements", i,
                    n->kind == PN_MAP ? "map" : "filter");
            if (!is_list(p, n->type))
                BAD("node %u: %s must produce a list", i, n->kind == PN_MAP ? "map" : "filter");
            if (n->kind == PN_FILTER && (kind_of(p, l->ret) != PT_BOOL ||
                                         !same_type(k, n->type, p->nodes[args[0].node].type)))
                BAD("node %u: filter needs a lambda to bool and keeps its list's type", i);
            if (n->kind == PN_MAP && !same_type(k, p->types[n->type].elem, l->ret))
                BAD("node %u: map produces a list of another type than its lambda's result", i);
            break;
        }
        case PN_RANGE:
            if (n->nargs < 1 || n->nargs > 2) BAD("node %u: range takes 1 or 2 arguments", i);
            for (uint32_t j = 0; j < n->nargs; j++)
                if (kind_of(p, p->nodes[args[j].node].type) != PT_INT)
                    BAD("node %u: range argument %u is not an int", i, j);
            if (!is_list(p, n->type) || kind_of(p, p->types[n->type].elem) != PT_INT)
                BAD("node %u: range must produce [int]", i);
            break;
        case PN_ZIP:
            if (n->nargs < 1 || !is_list(p, n->type) ||
                kind_of(p, p->types[n->type].elem) != PT_RECORD ||
                p->types[p->types[n->type].elem].n != n->nargs)
                BAD("node %u: zip must produce a list of records, one field per argument", i);
            for (uint32_t j = 0; j < n->nargs; j++) {
                uint32_t at = p->nodes[args[j].node].type;
                if (!is_list(p, at) ||
                    !same_type(k, p->types[at].elem, field_type(p, p->types[n->type].elem, j)))
                    BAD("node %u: zip argument %u is not a list of its field's type", i, j);
            }
            break;
        case PN_FILES:
            if (n->nargs != 2 || !is_list(p, n->type) ||
                kind_of(p, p->types[n->type].elem) != PT_PATH)
                BAD("node %u: files takes (dir, glob) and produces [path]", i);
            for (uint32_t j = 0; j < 2; j++)
                if (!kind_is_strlike(kind_of(p, p->nodes[args[j].node].type)))
                    BAD("node %u: files argument %u is not a string", i, j);
            break;
        case PN_FLATTEN:
            if (n->nargs != 1 || !is_list(p, p->nodes[args[0].node].type) ||
                !same_type(k, p->types[p->nodes[args[0].node].type].elem, n->type) ||
                !is_list(p, n->type))
                BAD("node %u: flatten takes a list of lists of its own type", i);
            break;
        case PN_LEN:
            if (n->nargs != 1 || !is_list(p, p->nodes[args[0].node].type) ||
                kind_of(p, n->type) != PT_INT)
                BAD("node %u: len takes one list and gives an int", i);
            break;
        case PN_ELEM:
            if (n->nargs != 1 || !is_list(p, p->nodes[args[0].node].type) ||
                !same_type(k, p->types[p->nodes[args[0].node].type].elem, n->type))
                BAD("node %u: elem takes one list and gives one of its elements", i);
            break;
        case PN_LIST:
            if (!is_list(p, n->type)) BAD("node %u: list node must have a list type", i);
            for (uint32_t j = 0; j < n->nargs; j++)
                if (!same_type(k, p->nodes[args[j].node].type, p->types[n->type].elem))
                    BAD("node %u: list element %u has another type than the list's", i, j);
            break;
        case PN_RECORD:
            if (kind_of(p, n->type) != PT_RECORD || p->types[n->type].n != n->nargs)
                BAD("node %u: record node needs one argument per field", i);
            for (uint32_t j = 0; j < n->nargs; j++)
                if (!same_type(k, p->nodes[args[j].node].type, field_type(p, n->type, j)))
                    BAD("node %u: record field %u has another type than the record's", i, j);
            break;
        default:
            break;
    }
    if (n->kind == PN_CALL || n->kind == PN_EXPAND || n->kind == PN_EXPAND_KWARGS ||
        n->kind == PN_GROUP_CALL || n->kind == PN_GROUP_EXPAND) {
        bool mapped = n->kind != PN_CALL && n->kind != PN_GROUP_CALL;
        if (n->nargs != nparams)
            BAD("node %u has %u arguments for %u parameters", i, n->nargs, nparams);
        /* a mapped effect (callee returns void) may produce void rather than [void] */
        bool mapped_ok = (is_list(p, n->type) && same_type(k, p->types[n->type].elem, ret)) ||
                         (kind_of(p, ret) == PT_VOID && kind_of(p, n->type) == PT_VOID);
        if (mapped ? !mapped_ok : !same_type(k, n->type, ret))
            BAD("node %u has type %u, which does not match its callee's result", i, n->type);
        uint32_t naxis = n->kind == PN_EXPAND_KWARGS ? 0 : n->aux;
        if (mapped && n->kind != PN_EXPAND_KWARGS && naxis == 0)
            BAD("node %u expands over no axis", i);
        for (uint32_t j = 0; j < n->nargs; j++) {
            const plan_arg *a = &args[j];
            uint32_t at = p->nodes[a->node].type;
            bool ok = true;
            if (a->mode == PA_SCALAR)
                ok = true;
            else if (a->mode == PA_AXIS)
                ok = (n->kind == PN_EXPAND || n->kind == PN_GROUP_EXPAND) && a->aux < naxis &&
                     is_list(p, at);
            else /* FIELD */
                ok = n->kind == PN_EXPAND_KWARGS && is_list(p, at) &&
                     kind_of(p, p->types[at].elem) == PT_RECORD &&
                     a->aux < p->types[p->types[at].elem].n;
            if (!ok) BAD("node %u argument %u has a bad mode or axis/field", i, j);
            /* the value handed to the callee has the parameter's type (libffi trusts it) */
            uint32_t given = a->mode == PA_SCALAR ? at
                             : a->mode == PA_AXIS ? p->types[at].elem
                                                  : field_type(p, p->types[at].elem, a->aux);
            if (!same_type(k, given, p->params[first_param + j].type))
                BAD("node %u argument %u has type %u, parameter %s wants %u", i, j, given,
                    plan_str(p, p->params[first_param + j].name), p->params[first_param + j].type);
        }
        /* axes 0 .. naxis-1 are each named by exactly one argument */
        if (naxis > n->nargs) BAD("node %u has %u axes but %u arguments", i, naxis, n->nargs);
        if (naxis) {
            uint32_t *uses = fl_calloc(k->p->ctx, naxis, sizeof *uses);
            if (!uses) return fail(k->err, k->errlen, "out of memory");
            for (uint32_t j = 0; j < n->nargs; j++)
                if (args[j].mode == PA_AXIS) uses[args[j].aux]++; /* aux < naxis: checked */
            uint32_t ax = 0;
            while (ax < naxis && uses[ax] == 1)
                ax++;
            uint32_t u = ax < naxis ? uses[ax] : 1;
            fl_free(k->p->ctx, uses);
            if (ax < naxis) BAD("node %u axis %u is named by %u arguments", i, ax, u);
        }
    } else {
        for (uint32_t j = 0; j < n->nargs; j++)
            if (args[j].mode != PA_SCALAR) BAD("node %u argument %u must be scalar", i, j);
    }
    return 0;
}

/* Groups may call groups, but never in a cycle: a depth-first walk over the graphs,
 * each graph's nodes scanned once (linear in the plan, whatever its shape). */
static int chk_group_cycles(plan_check *k) {
    fl_plan *p = k->p;
    uint32_t ng = p->n_graphs ? p->n_graphs : 1;
    uint8_t *color = fl_calloc(p->ctx, ng, 1);            /* 0 unseen, 1 on the path, 2 done */
    uint32_t *next = fl_calloc(p->ctx, ng, sizeof *next);   /* next node offset to look at */
    uint32_t *stack = fl_calloc(p->ctx, ng, sizeof *stack); /* the path */
    int rc = 0;
    if (!color || !next || !stack) rc = fail(k->err, k->errlen, "out of memory");
    for (uint32_t root = 0; root < p->n_graphs && !rc; root++) {
        if (color[root]) continue;
        uint32_t depth = 0;
        stack[depth++] = root;
        color[root] = 1;
        while (depth && !rc) {
            uint32_t g = stack[depth - 1];
            const plan_graph *gr = &p->graphs[g];
            if (next[g] == gr->nnodes) {
                color[g] = 2;
                depth--;
                continue;
            }
            const plan_node *n = &p->nodes[gr->first_node + next[g]++];
            if (n->kind != PN_GROUP_CALL && n->kind != PN_GROUP_EXPAND) continue;
            if (color[n->ref] == 1)
                rc = fail(k->err, k->errlen,
                          "bad plan: groups call each other in a cycle "
                          "(graph %u calls graph %u)",
                          g, n->ref);
            else if (color[n->ref] == 0) {
                color[n->ref] = 1;
                stack[depth++] = n->ref;
            }
        }
    }
    fl_free(p->ctx, color), fl_free(p->ctx, next), fl_free(p->ctx, stack);
    return rc;
}

static int chk_graphs(plan_check *k) {
    fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        k->owner[i] = PLAN_NONE;
    for (uint32_t g = 0; g < p->n_graphs; g++) {
        const plan_graph *gr = &p->graphs[g];
        TRY(chk_name(k, gr->name, false, "graph", g));
        if (gr->kind >= PG__COUNT) BAD("graph %u has unknown kind %u", g, gr->kind);
        if (!in_range(gr->first_param, gr->nparams, p->n_params))
            BAD("graph %u has parameters %u..+%u of %u", g, gr->first_param, gr->nparams,
                p->n_params);
        TRY(chk_type(k, gr->ret, "graph", g));
        TRY(chk_str(k, gr->schedule, true, "graph", g));
        TRY(chk_str(k, gr->start, true, "graph", g));
        TRY(chk_str(k, gr->tz, true, "graph", g));
        if ((gr->start != PLAN_NONE || gr->tz != PLAN_NONE) && gr->schedule == PLAN_NONE)
            BAD("graph %u has a start or tz but no schedule", g);
        if (gr->watch != PLAN_NONE &&
            (gr->watch >= gr->nparams ||
             p->types[p->params[gr->first_param + gr->watch].type].kind != PT_DIR))
            BAD("graph %u watches parameter %u, not a dir parameter", g, gr->watch);
        TRY(chk_loc(k, gr->loc, "graph", g));
        if (!in_range(gr->first_node, gr->nnodes, p->n_nodes))
            BAD("graph %u has nodes %u..+%u of %u", g, gr->first_node, gr->nnodes, p->n_nodes);
        for (uint32_t j = 0; j < gr->nnodes; j++) {
            uint32_t o = k->owner[gr->first_node + j];
            if (o != PLAN_NONE) BAD("graphs %u and %u share node %u", o, g, gr->first_node + j);
            k->owner[gr->first_node + j] = g;
        }
        if (gr->ret_node != PLAN_NONE) {
            if (gr->ret_node - gr->first_node >= gr->nnodes || gr->ret_node < gr->first_node)
                BAD("graph %u result is node %u, outside the graph", g, gr->ret_node);
        }
    }
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (k->owner[i] == PLAN_NONE) BAD("node %u belongs to no graph", i);
    for (uint32_t i = 0; i < p->n_nodes; i++)
        TRY(chk_node(k, k->owner[i], i));
    for (uint32_t g = 0; g < p->n_graphs; g++) { /* now that node types are valid */
        const plan_graph *gr = &p->graphs[g];
        if (gr->ret_node != PLAN_NONE && !same_type(k, p->nodes[gr->ret_node].type, gr->ret))
            BAD("graph %u result node %u has another type than the graph's result", g,
                gr->ret_node);
    }
    return chk_group_cycles(k);
}

const char *plan_secret_name_bad(const char *s) {
    if (!s[0]) return "is empty";
    if (s[0] >= '0' && s[0] <= '9') return "starts with a digit";
    size_t n = 0;
    for (; s[n]; n++)
        if (!(s[n] == '_' || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9')))
            return "may hold only letters, digits and '_'";
    if (n > 64) return "is longer than 64 bytes";
    return NULL;
}

bool plan_task_has_secret(const fl_plan *p, uint32_t t, const char *name) {
    for (int depth = 0; depth < 64 && t < p->n_tasks; depth++) {
        for (uint32_t i = 0; i < p->n_secrets; i++)
            if (p->secrets[i].task == t &&
                (!name || !strcmp(plan_str(p, p->secrets[i].name), name)))
                return true;
        const plan_task *T = &p->tasks[t];
        if (T->kind != TK_COMBINE) return false;
        /* halves are earlier tasks (plan_read checks it): the first recursively, the second
         * by the loop */
        if (plan_task_has_secret(p, T->first, name)) return true;
        t = T->second;
    }
    return false;
}

const plan_container *plan_task_container(const fl_plan *p, uint32_t t) {
    for (uint32_t i = 0; i < p->n_containers; i++)
        if (p->containers[i].task == t) return &p->containers[i];
    return NULL;
}

/* Container options: a task with image: each, in task order, once, in range. */
static int chk_containers(plan_check *k) {
    const fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_containers; i++) {
        const plan_container *c = &p->containers[i];
        if (c->task >= p->n_tasks)
            BAD("container options %u refer to task %u of %u", i, c->task, p->n_tasks);
        if (p->tasks[c->task].image == PLAN_NONE)
            BAD("task %u has container options but no image", c->task);
        if (c->cpus > PLAN_MAX_CPUS || c->network > 1)
            BAD("task %u has cpus %u or network %u out of range", c->task, c->cpus, c->network);
        if (i && p->containers[i - 1].task >= c->task)
            BAD("container options %u are out of task order", i);
    }
    return 0;
}

/* Secrets: a task each, a clean name, in task order, no name twice for one task. */
static int chk_secrets(plan_check *k) {
    const fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_secrets; i++) {
        const plan_secret *s = &p->secrets[i];
        if (s->task >= p->n_tasks) BAD("secret %u refers to task %u of %u", i, s->task, p->n_tasks);
        TRY(chk_str(k, s->name, false, "secret", i));
        if (s->loc >= p->n_locs && s->loc != PLAN_NONE)
            BAD("secret %u refers to loc %u of %u", i, s->loc, p->n_locs);
        const char *why = plan_secret_name_bad(plan_str(p, s->name));
        if (why) BAD("secret %u: the name %s", i, why);
        if (i && p->secrets[i - 1].task > s->task) BAD("secret %u is out of task order", i);
        for (uint32_t j = i; j-- > 0 && p->secrets[j].task == s->task;)
            if (!strcmp(plan_str(p, p->secrets[j].name), plan_str(p, s->name)))
                BAD("task %u declares secret %u twice", s->task, i);
    }
    return 0;
}

/* Imported sources: each a path; the file of each loc, when given, one of them. */
static int chk_sources(plan_check *k) {
    const fl_plan *p = k->p;
    for (uint32_t i = 0; i < p->n_sources; i++)
        TRY(chk_str(k, p->sources[i].path, false, "source", i));
    if (p->n_locsrc && p->n_locsrc != p->n_locs)
        BAD("%u source files for %u locations", p->n_locsrc, p->n_locs);
    for (uint32_t i = 0; i < p->n_locsrc; i++)
        if (p->locsrc[i] > p->n_sources)
            BAD("location %u is in source %u of %u", i, p->locsrc[i], p->n_sources);
    return 0;
}

const char *plan_loc_file(const fl_plan *p, uint32_t loc) {
    uint32_t k = loc < p->n_locsrc ? p->locsrc[loc] : 0;
    const char *f = k ? plan_str(p, p->sources[k - 1].path) : plan_str(p, p->source);
    return f[0] ? f : "<plan>";
}

static int plan_validate(fl_plan *p, char *err, size_t errlen) {
    plan_check k = {p, err, errlen, NULL, 0};
    k.type_steps = 1000000 + 64 * ((uint64_t)p->n_types + p->n_values + p->n_params + p->n_nodes +
                                   p->n_args + p->n_typelist);
    k.owner = fl_calloc(p->ctx, p->n_nodes ? p->n_nodes : 1, sizeof *k.owner);
    if (!k.owner) return fail(err, errlen, "out of memory");
    int rc = 0;
    if (chk_strings(&k) || chk_types(&k) || chk_values(&k) || chk_params(&k) || chk_lambdas(&k) ||
        chk_tasks(&k) || chk_graphs(&k) || chk_secrets(&k) ||
        chk_containers(&k) || chk_sources(&k))
        rc = -1;
    fl_free(p->ctx, k.owner);
    return rc;
}

fl_plan *plan_read(fl_ctx *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen) {
    if (check_envelope(buf, len, err, errlen)) return NULL;
    fl_plan *p = decode(ctx, buf, len, err, errlen);
    if (!p) return NULL;
    if (plan_validate(p, err, errlen)) {
        plan_free_arrays(p);
        return NULL;
    }
    return p;
}

fl_plan *plan_read_file(fl_ctx *ctx, const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(err, errlen,
             S_ISDIR(st.st_mode) ? "is a directory, not a plan" : "not a regular file");
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > PLAN_MAX_BYTES) {
        fail(err, errlen, "too large for a plan (%lld bytes; at most %u)", (long long)st.st_size,
             PLAN_MAX_BYTES);
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = fl_malloc(ctx, len ? len : 1);
    if (!buf) {
        close(fd);
        fail(err, errlen, "out of memory");
        return NULL;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    fl_plan *p = plan_read(ctx, buf, got, err, errlen);
    fl_free(ctx, buf);
    return p;
}

int plan_write_file(const fl_plan *p, const char *path, char *err, size_t errlen) {
    uint8_t *bytes;
    size_t len;
    if (plan_write(p, &bytes, &len))
        return fail(err, errlen, p->oom || fl_failed(p->ctx) ? "out of memory" : "plan too large to write");
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= sizeof tmp) {
        fl_free(p->ctx, bytes);
        return fail(err, errlen, "%s: path too long", path);
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fl_free(p->ctx, bytes);
        return fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
    }
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        ssize_t w = write(fd, bytes + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    fl_free(p->ctx, bytes);
    if (!rc && fchmod(fd, 0644) != 0)
        rc = fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc) rc = fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = fail(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

/* ---- a type as written in the language ---- */
typedef struct plan_text {
    char *s;    /* output */
    size_t len; /* capacity */
    size_t n;   /* used (may exceed len: output is cut, still NUL-terminated) */
} plan_text;

static void text_put(plan_text *t, const char *s) {
    for (; *s; s++, t->n++)
        if (t->n + 1 < t->len) t->s[t->n] = *s;
    if (t->len) t->s[t->n + 1 < t->len ? t->n : t->len - 1] = '\0';
}

static void type_text(const fl_plan *p, uint32_t ty, plan_text *t, int depth, bool expand) {
    if (ty >= p->n_types) {
        text_put(t, "?");
        return;
    }
    if (t->n + 1 >= t->len) { /* full: the rest would be cut anyway (and is marked so) */
        t->n = t->len;
        return;
    }
    if (depth > PLAN_TEXT_DEPTH) {
        text_put(t, "...");
        return;
    }
    const plan_type *y = &p->types[ty];
    switch (y->kind) {
        case PT_LIST:
            text_put(t, "[");
            type_text(p, y->elem, t, depth + 1, false);
            text_put(t, "]");
            return;
        case PT_RECORD:
            if (y->name != PLAN_NONE && !expand) {
                text_put(t, plan_str(p, y->name));
                return;
            }
            text_put(t, "{");
            for (uint32_t f = 0; f < y->n && y->first + f < p->n_fields && t->n + 1 < t->len; f++) {
                if (f) text_put(t, ", ");
                text_put(t, plan_str(p, p->fields[y->first + f].name));
                text_put(t, ": ");
                type_text(p, p->fields[y->first + f].type, t, depth + 1, false);
            }
            text_put(t, "}");
            return;
        default:
            switch (y->kind) {
#define X(kk, s)                                                                                   \
    case PT_##kk:                                                                                  \
        text_put(t, s);                                                                            \
        return;
                PLAN_TYPE_KINDS(X)
#undef X
            }
            text_put(t, "?");
    }
}

/* A text that did not fit ends in "..." so a reader sees it was cut (a message
 * must never stop mid-type as if that were the whole type). */
static void text_mark_cut(plan_text *t) {
    if (t->n + 1 <= t->len || t->len < 8) return;
    memcpy(t->s + t->len - 4, "...", 4);
}

void plan_type_text(const fl_plan *p, uint32_t type, char *buf, size_t len) {
    plan_text t = {buf, len, 0};
    if (len) buf[0] = '\0';
    type_text(p, type, &t, 0, false);
    text_mark_cut(&t);
}

/* The fields of a record type even when it has a name: "{a: int, b: str}". */
void plan_type_text_full(const fl_plan *p, uint32_t type, char *buf, size_t len) {
    plan_text t = {buf, len, 0};
    if (len) buf[0] = '\0';
    type_text(p, type, &t, 0, true);
    text_mark_cut(&t);
}

size_t plan_inst_name(const char *tmpl, const char *task, const char *idx, char *buf,
                       size_t len) {
    if (!len) return 0;
    size_t n = 0;
#define PUT(ch) (n + 1 < len ? (void)(buf[n++] = (ch)) : (void)0)
    if (!idx) idx = "";
    if (!tmpl) {
        for (const char *q = task ? task : ""; *q; q++) PUT(*q);
        if (*idx) {
            PUT('[');
            for (const char *q = idx; *q; q++) PUT(*q);
            PUT(']');
        }
        buf[n] = 0;
        return n;
    }
    const char *comp = idx; /* the next component of idx */
    for (const char *q = tmpl; *q; q++) {
        if ((q[0] == '[' && q[1] == ']') || (q[0] == '{' && q[1] == '}')) {
            size_t k = strcspn(comp, "/");
            if (q[0] == '[') {
                PUT('[');
                if (!k) PUT('?');
                for (size_t i = 0; i < k; i++) PUT(comp[i]);
                PUT(']');
            }
            comp += k + (comp[k] == '/');
            q++;
        } else {
            PUT(*q);
        }
    }
#undef PUT
    buf[n] = 0;
    return n;
}
