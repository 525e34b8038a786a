/*
 * call.c — rt_call_task: run one unit (a C task through libffi, an sh task, or
 * a combine of two units) in the calling thread.
 *
 * DESIGN
 *   Arguments go from fl_val words to their C representation (to_c): scalars
 *   point straight at the argument words (int64 and double share the word's
 *   layout), strings pass their data pointers, lists become C arrays in the
 *   instance arena (lists of int and float are passed without copying: an
 *   fv_list's items already are an int64_t/double array), records are laid out
 *   at the offsets libffi computed in rt_open. Results come back the other way
 *   (from_c), copying everything, so no run-time value points into task memory;
 *   then the arena is freed.
 *
 *   A combine runs its first half, then its second with arguments built from
 *   the binds. When the hand-over is the default one (RESULT, no stitch) and the
 *   second half is a C task, the first half's C result is passed to it as is —
 *   bytes, lists and strings are not converted or copied in between; both live
 *   in the one instance arena until the unit ends. A stitch needs the result as
 *   a run-time value, so it is converted once and handed to the stitch lambda.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "expr.h"
#include "jit.h"
#include "rtcore.h"

/* Sanity bounds on a task's result: beyond them the length is garbage (an
 * uninitialised flow_list, say), and trusting it would read wild memory. */
#define RT_MAX_RESULT_ITEMS (INT64_C(1) << 32)
#define RT_MAX_RESULT_BYTES (INT64_C(1) << 40)

/* Bytes of C result kept on the stack; larger results go to the arena. */
#define RT_LOCAL_RET 64

/* One argument's C representation when it is small (records may need more). */
typedef union rt_slot {
    int64_t i;
    double f;
    bool b;
    const char *s;
    flow_bytes by;
    flow_list l;
    ffi_arg a;
    max_align_t align;
} rt_slot;

/* What a unit produced: a run-time value, or the raw C result of its last C half. */
typedef struct rt_unit_out {
    int raw;    /* 1: cbuf holds the C result; 0: v holds a new reference */
    void *cbuf; /* raw: arena memory of the C layout of the unit's result type */
    fl_val v; /* !raw: the result (PT_VOID: 0) */
} rt_unit_out;

static inline const plan_type *ptype(const fl_plan *p, uint32_t type) {
    return &p->types[type];
}

/* ---- fl_val -> C ---- */

static void to_c(rt_ictx *c, uint32_t type, fl_val v, void *dst) {
    const rt_runtime *rt = c->rt;
    const fl_plan *p = rt->plan;
    const plan_type *t = ptype(p, type);
    switch (t->kind) {
        case PT_INT:
        case PT_DURATION:
        case PT_FLOAT:
            memcpy(dst, &v, 8);
            return;
        case PT_BOOL: {
            bool b = v.i != 0;
            memcpy(dst, &b, sizeof b);
            return;
        }
        case PT_BYTES: {
            flow_bytes b = {fv_as_bytes(v)->data, fv_as_bytes(v)->len};
            memcpy(dst, &b, sizeof b);
            return;
        }
        case PT_LIST: {
            fv_list *l = fv_as_list(v);
            flow_list cl = {l->len, NULL};
            uint32_t ek = ptype(p, t->elem)->kind;
            if (l->len && (ek == PT_INT || ek == PT_FLOAT || ek == PT_DURATION)) {
                cl.items = l->items; /* already a C array of int64_t / double */
            } else if (l->len) {
                size_t es = rt_ctype_of(rt, t->elem)->size;
                char *items = rt_arena_alloc(c, (size_t)l->len * es);
                if (!items) { /* the instance has failed: the call is not made */
                    memset(dst, 0, sizeof cl);
                    return;
                }
                for (int64_t i = 0; i < l->len; i++)
                    to_c(c, t->elem, l->items[i], items + i * es);
                cl.items = items;
            }
            memcpy(dst, &cl, sizeof cl);
            return;
        }
        case PT_RECORD: {
            const rt_ctype *ct = rt_ctype_of(rt, type);
            fv_rec *r = fv_as_rec(v);
            memset(dst, 0, ct->size); /* padding: deterministic bytes */
            for (uint32_t i = 0; i < t->n; i++)
                to_c(c, p->fields[t->first + i].type, r->fields[i], (char *)dst + ct->offsets[i]);
            return;
        }
        case PT_VOID:
            return;
        default: { /* str, path, dir, date, time */
            const char *s = fv_as_str(v)->data;
            memcpy(dst, &s, sizeof s);
            return;
        }
    }
}

/* ---- C -> fl_val (copying) ---- */

/* A value of the result could not be made: the instance fails with that message. */
static int from_c_oom(rt_ictx *c) {
    rt_ictx_fail(c, "out of memory");
    return -1;
}

static int from_c(rt_ictx *c, uint32_t type, const void *src, fl_val *out) {
    const rt_runtime *rt = c->rt;
    const fl_plan *p = rt->plan;
    const plan_type *t = ptype(p, type);
    out->i = 0;
    switch (t->kind) {
        case PT_VOID:
            return 0;
        case PT_INT:
        case PT_DURATION:
        case PT_FLOAT:
            memcpy(out, src, 8);
            return 0;
        case PT_BOOL:
            out->i = *(const uint8_t *)src != 0;
            return 0;
        case PT_BYTES: {
            flow_bytes b;
            memcpy(&b, src, sizeof b);
            if (b.len < 0 || b.len > RT_MAX_RESULT_BYTES || (b.len && !b.data)) {
                rt_ictx_fail(c, "task returned bytes with %s (length %lld)",
                             b.len && b.data ? "an impossible length" : "a NULL data pointer",
                             (long long)b.len);
                return -1;
            }
            *out = fv_bytes_new(p, type, b.data, b.len);
            return out->o ? 0 : from_c_oom(c);
        }
        case PT_LIST: {
            flow_list l;
            memcpy(&l, src, sizeof l);
            if (l.len < 0 || l.len > RT_MAX_RESULT_ITEMS || (l.len && !l.items)) {
                rt_ictx_fail(c, "task returned a list with %s (length %lld)",
                             l.len && l.items ? "an impossible length" : "NULL items",
                             (long long)l.len);
                return -1;
            }
            fl_val lv = fv_list_new(p, type, l.len);
            if (!lv.o) return from_c_oom(c);
            uint32_t ek = ptype(p, t->elem)->kind;
            if (ek == PT_INT || ek == PT_FLOAT || ek == PT_DURATION) {
                if (l.len) memcpy(fv_as_list(lv)->items, l.items, (size_t)l.len * 8);
            } else {
                size_t es = rt_ctype_of(rt, t->elem)->size;
                for (int64_t i = 0; i < l.len; i++)
                    if (from_c(c, t->elem, (const char *)l.items + i * es,
                               &fv_as_list(lv)->items[i])) {
                        fv_decref(p, type, lv);
                        return -1;
                    }
            }
            *out = lv;
            return 0;
        }
        case PT_RECORD: {
            const rt_ctype *ct = rt_ctype_of(rt, type);
            fl_val rv = fv_rec_new(p, type);
            if (!rv.o) return from_c_oom(c);
            for (uint32_t i = 0; i < t->n; i++)
                if (from_c(c, p->fields[t->first + i].type, (const char *)src + ct->offsets[i],
                           &fv_as_rec(rv)->fields[i])) {
                    fv_decref(p, type, rv);
                    return -1;
                }
            *out = rv;
            return 0;
        }
        default: { /* text */
            const char *s;
            memcpy(&s, src, sizeof s);
            if (!s) {
                rt_ictx_fail(c, "task returned a NULL %s",
                             t->kind == PT_STR    ? "str"
                             : t->kind == PT_PATH ? "path"
                             : t->kind == PT_DIR  ? "dir"
                             : t->kind == PT_TIME ? "time"
                                                  : "date");
                return -1;
            }
            if (t->kind == PT_DATE && !fv_date_valid(s, strlen(s))) {
                rt_ictx_fail(c, "task returned an invalid date '%.40s' (want YYYY-MM-DD)", s);
                return -1;
            }
            if (t->kind == PT_TIME && !fv_time_valid(s, strlen(s))) {
                rt_ictx_fail(c, "task returned an invalid time '%.40s' (want YYYY-MM-DDTHH:MM:SSZ)",
                             s);
                return -1;
            }
            *out = fv_str_cstr(p, type, s);
            return out->o ? 0 : from_c_oom(c);
        }
    }
}

/* ---- one C call ---- */

/* Call C task ti on args (argument `over` replaced by the C value at over_ptr,
 * unless over < 0); the C result goes to rbuf (at least max(size, ffi_arg)). */
static void c_invoke(rt_ictx *c, uint32_t ti, const fl_val *args, int over, void *over_ptr,
                     void *rbuf) {
    rt_runtime *rt = c->rt;
    const fl_plan *p = rt->plan;
    const plan_task *t = &p->tasks[ti];
    rt_ctask *ct = &rt->tasks[ti];
    void *avalue[RT_MAX_PARAMS];
    rt_slot slots[RT_MAX_PARAMS];
    for (uint32_t i = 0; i < t->nparams; i++) {
        if ((int)i == over) {
            avalue[i] = over_ptr;
            continue;
        }
        uint32_t ty = p->params[t->first_param + i].type;
        uint32_t k = ptype(p, ty)->kind;
        if (k == PT_INT || k == PT_FLOAT || k == PT_DURATION) {
            avalue[i] = (void *)&args[i]; /* the word is the C value; ffi only reads it */
            continue;
        }
        size_t size = rt_ctype_of(rt, ty)->size;
        void *dst = size <= sizeof(rt_slot) ? (void *)&slots[i] : rt_arena_alloc(c, size);
        if (!dst) return; /* out of memory: the instance has failed */
        to_c(c, ty, args[i], dst);
        avalue[i] = dst;
    }
    if (c->failed) return; /* an argument could not be made: no call */
    jit_thunk th = jit_task_thunk(p, ti); /* a direct call (docs/jit.md), else libffi */
    if (th) th(ct->fn, rbuf, avalue);
    else ffi_call(&ct->cif, FFI_FN(ct->fn), rbuf, avalue);
    if (ptype(p, t->ret)->kind == PT_BOOL) { /* widened to ffi_arg: back to a C bool */
        ffi_arg a;
        memcpy(&a, rbuf, sizeof a);
        *(uint8_t *)rbuf = (uint8_t)((a & 0xff) != 0);
    }
}

static size_t ret_bytes(const rt_runtime *rt, uint32_t type) {
    size_t n = rt_ctype_of(rt, type)->size;
    return n < sizeof(ffi_arg) ? sizeof(ffi_arg) : n;
}

/* Prefix the recorded failure with the name of the half that failed. */
static void name_half(rt_ictx *c, const fl_plan *p, uint32_t half) {
    if (!c->fail_msg || p->tasks[half].kind == TK_COMBINE) return;
    const char *name = plan_str(p, p->tasks[half].name);
    size_t n = strlen(name) + strlen(c->fail_msg) + 3;
    fl_ctx *ctx = p->ctx;
    char *m = fl_malloc(ctx, n);
    if (!m) return;
    snprintf(m, n, "%s: %s", name, c->fail_msg);
    fl_free(ctx, c->fail_msg);
    c->fail_msg = m;
}

static int run_unit(rt_ictx *c, uint32_t ti, const fl_val *args, int over, void *over_ptr,
                    int want_raw, int depth, rt_unit_out *out);

static int run_combine(rt_ictx *c, uint32_t ti, const fl_val *args, int want_raw, int depth,
                       rt_unit_out *out) {
    const fl_plan *p = c->rt->plan;
    const plan_task *t = &p->tasks[ti];
    const plan_task *second = &p->tasks[t->second];
    int hand_raw = t->stitch == PLAN_NONE && second->kind == TK_C;
    rt_unit_out fo;
    if (run_unit(c, t->first, args, -1, NULL, hand_raw, depth + 1, &fo)) {
        name_half(c, p, t->first);
        return -1;
    }
    uint32_t fret = p->tasks[t->first].ret;
    fl_val rec = {0};
    if (t->stitch != PLAN_NONE) {
        expr_error ee;
        int rc = expr_run(p, t->stitch, &fo.v, &rec, &ee);
        fv_decref(p, fret, fo.v);
        if (rc) {
            char buf[300];
            rt_ictx_fail(c, "stitch: %s", expr_error_format(p, &ee, buf, sizeof buf));
            return -1;
        }
        fo.v.i = 0;
    }
    uint32_t rec_type = t->stitch != PLAN_NONE ? p->lambdas[t->stitch].ret : PLAN_NONE;
    fl_val sargs[RT_MAX_PARAMS];
    int over = -1;
    for (uint32_t j = 0; j < second->nparams; j++) {
        const plan_bind *b = &p->binds[t->first_bind + j];
        sargs[j].i = 0;
        if (b->kind == PB_RESULT) {
            if (fo.raw)
                over = (int)j;
            else
                sargs[j] = fo.v;
        } else if (b->kind == PB_STITCH) {
            sargs[j] = fv_as_rec(rec)->fields[b->index];
        } else {
            sargs[j] = args[b->index];
        }
    }
    int rc = run_unit(c, t->second, sargs, over, fo.raw ? fo.cbuf : NULL, want_raw, depth + 1, out);
    if (rc) name_half(c, p, t->second);
    if (!fo.raw) fv_decref(p, fret, fo.v);
    if (rec_type != PLAN_NONE) fv_decref(p, rec_type, rec);
    return rc;
}

static int run_unit(rt_ictx *c, uint32_t ti, const fl_val *args, int over, void *over_ptr,
                    int want_raw, int depth, rt_unit_out *out) {
    rt_runtime *rt = c->rt;
    const fl_plan *p = rt->plan;
    const plan_task *t = &p->tasks[ti];
    out->raw = 0;
    out->cbuf = NULL;
    out->v.i = 0;
    if (depth > RT_MAX_COMBINE_DEPTH) {
        rt_ictx_fail(c, "combined tasks nested deeper than %d", RT_MAX_COMBINE_DEPTH);
        return -1;
    }
    switch (t->kind) {
        case TK_C: {
            union {
                ffi_arg a;
                max_align_t m;
                char b[RT_LOCAL_RET];
            } local;
            size_t n = ret_bytes(rt, t->ret);
            void *rbuf = want_raw || n > sizeof local ? rt_arena_alloc(c, n) : (void *)&local;
            if (!rbuf) return -1;
            c_invoke(c, ti, args, over, over_ptr, rbuf);
            if (c->failed) return -1; /* the return value is ignored */
            if (want_raw) {
                out->raw = 1;
                out->cbuf = rbuf;
                return 0;
            }
            return from_c(c, t->ret, rbuf, &out->v);
        }
        case TK_SH: {
            if (over >= 0) { /* cannot happen: raw hand-over goes only to C halves */
                rt_ictx_fail(c, "internal: raw hand-over to an sh task");
                return -1;
            }
            return rt_sh_run(c, ti, args, &out->v);
        }
        case TK_COMBINE:
            return run_combine(c, ti, args, want_raw, depth, out);
        default:
            rt_ictx_fail(c, "task %s has an unknown kind %u", plan_str(p, t->name), t->kind);
            return -1;
    }
}

void rt_call_task(rt_runtime *rt, const rt_job *job, rt_result *res) {
    rt_call_task_from(rt, job, res, rt_now());
}

void rt_call_task_from(rt_runtime *rt, const rt_job *job, rt_result *res, double start) {
    const fl_plan *p = rt->plan;
    memset(res, 0, sizeof *res);
    res->id = job->id;
    res->worker_pid = rt_pid();
    res->start = start;
    rt_ictx c;
    rt_ictx_enter(&c, rt, job);
    rt_unit_out o;
    int rc = job->task < p->n_tasks ? run_unit(&c, job->task, job->args, -1, NULL, 0, 0, &o) : -1;
    if (job->task >= p->n_tasks) rt_ictx_fail(&c, "no task %u in the plan", job->task);
    if (rc == 0 && !c.failed) {
        res->ok = 1;
        res->value = o.v;
    } else {
        if (rc == 0) fv_decref(p, p->tasks[job->task].ret, o.v); /* failed after all */
        res->ok = 0;
        res->error = c.fail_msg ? c.fail_msg : fl_strdup(p->ctx, "task failed");
        c.fail_msg = NULL;
    }
    res->log = c.log;
    c.log = NULL;
    res->peak_rss_kb = c.peak_rss_kb;
    res->cpu_ns = c.cmd_cpu_ns;
    res->cpu_known = c.cmd_ran;
    rt_ictx_leave(&c);
    res->end = rt_now();
}

void rt_result_clear(const fl_plan *p, uint32_t task, rt_result *r) {
    if (r->ok && task < p->n_tasks) fv_decref(p, p->tasks[task].ret, r->value);
    fl_free(p->ctx, r->error);
    fl_free(p->ctx, r->log);
    r->value.i = 0;
    r->error = NULL;
    r->log = NULL;
    r->ok = 0;
}
