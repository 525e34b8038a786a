/*
 * sched_builtin.c — the built-ins the scheduler computes itself: constants,
 * parameters, range, zip, files, flatten, len, list and record literals, and map
 * and filter read as a whole.
 *
 * DESIGN
 *   A built-in creates no instance: when its producers have settled, try_open
 *   (sched.c) calls compute_builtin, which sets the node's slot value or returns
 *   an error line for the node. Lambdas (map, filter, labels) run here in the
 *   scheduler's thread through expr_run, or through the JIT's native code when
 *   the plan has it. `files` walks the user's folder through walk.c.
 *
 *   Fusion. A chain range(n).map(f).filter(g)... consumed by one map, filter or
 *   len is evaluated by that consumer in one pass (fuse_eval, below): the fused
 *   nodes (node_info.fused, chosen once per run by the analysis in sched.c)
 *   settle with an empty placeholder list, and a failing lambda is reported under
 *   its own stage, as without fusion.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <unistd.h>

#include "expr.h"
#include "jit.h"
#include "sched_int.h"
#include "walk.h"

/* The text of a lambda's run-time error: "msg (at line:col)". */
static void lam_error(const fl_plan *p, const expr_error *ee, char *err, size_t errlen) {
    if (ee->loc != PLAN_NONE && ee->loc < p->n_locs)
        snprintf(err, errlen, "%s (at %u:%u)", ee->msg, p->locs[ee->loc].line,
                 p->locs[ee->loc].col);
    else
        snprintf(err, errlen, "%s", ee->msg[0] ? ee->msg : "lambda failed");
}

int lam_call(sched *S, uint32_t lam, const fl_val *args, fl_val *out, char *err,
             size_t errlen) {
    expr_error ee;
    ee.loc = PLAN_NONE;
    ee.msg[0] = 0;
    if (expr_run(S->p, lam, args, out, &ee) == 0) return 0;
    if (expr_error_is_oom(&ee)) return builtin_oom(S, err, errlen);
    lam_error(S->p, &ee, err, errlen);
    return -1;
}

typedef struct pathvec {
    char **v;      /* paths */
    size_t n, cap; /* count, capacity */
} pathvec;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files under dir matching glob, through walk.c. The user's input tree:
 * symbolic links are followed (to files and folders; a dangling one is skipped,
 * a loop is an error), and an entry's type comes from readdir where the file
 * system gives it, so only links and unknown types cost a stat. */
typedef struct files_walk {
    sched *S;         /* the run (allocations) */
    const char *root; /* as given */
    const char *glob; /* the pattern */
    int by_path;      /* the glob has a '/': it matches the relative path */
    pathvec *out;     /* what was found */
} files_walk;

static int files_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    files_walk *fw = ctx;
    if (e->type != WALK_REG) return 0;
    if (fnmatch(fw->glob, fw->by_path ? e->rel : e->name, 0) != 0) return 0;
    pathvec *out = fw->out;
    if ((int64_t)out->n >= SCHED_MAX_LIST) {
        snprintf(err, errlen, "more than %lld files under '%s'", SCHED_MAX_LIST, fw->root);
        return -1;
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 64;
        char **v = sc_reallocarray(fw->S, out->v, cap, sizeof *out->v);
        if (!v) goto oom;
        out->v = v;
        out->cap = cap;
    }
    size_t rn = strlen(fw->root), n = strlen(e->rel);
    char *full = sc_reallocarray(fw->S, NULL, rn + n + 2, 1);
    if (!full) goto oom;
    memcpy(full, fw->root, rn);
    full[rn] = '/';
    memcpy(full + rn + 1, e->rel, n + 1);
    out->v[out->n++] = full;
    return 0;
oom: /* the run ends with code 2 (sched_oom) */
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int walk_files(sched *S, const char *root, const char *glob, pathvec *out, char *err, size_t errlen) {
    int fd = walk_open(AT_FDCWD, root, 1);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read folder '%.400s': %s", root, strerror(errno));
        return -1;
    }
    files_walk fw = {S, root, glob, strchr(glob, '/') != NULL, out};
    char what[512];
    snprintf(what, sizeof what, "'%.400s'", root);
    int rc = walk_tree(fd, what, WALK_FOLLOW, files_entry, &fw, err, errlen);
    close(fd);
    return rc;
}

/* ---- fusion ----
 * A chain range(n).map(f).filter(g)... consumed by one map, filter or len is run
 * by that consumer in one pass over the chain's source: each element goes through
 * the stages' lambdas in turn, and only the consumer's result is built (nothing at
 * all for len). The fused nodes (node_info.fused, chosen once per plan: the only
 * use of their value is as the list of the next stage) settle with an empty
 * placeholder list that nothing reads. A lambda that fails is reported under its
 * own stage (name and position) as before fusion; the consumer then settles as
 * failed, as it did when its producer failed. */

#define SCHED_MAX_STAGES 64 /* fused stages in one chain; longer chains are split */

static int range_bounds(sched *S, scope *sc, uint32_t node, int64_t *start, int64_t *count,
                        char *err, size_t errlen) {
    const fl_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    const plan_arg *A = &p->args[N->first_arg];
    int64_t a = 0, b = SL(sc, p, A[0].node)->val.i;
    if (N->nargs >= 2) {
        a = SL(sc, p, A[0].node)->val.i;
        b = SL(sc, p, A[1].node)->val.i;
    }
    int64_t n = b > a ? b - a : 0;
    if (b > a && (b - a < 0 || n > SCHED_MAX_LIST)) {
        snprintf(err, errlen, "range(%" PRId64 ", %" PRId64 ") is too large (limit %lld)", a, b,
                 SCHED_MAX_LIST);
        return -1;
    }
    *start = a;
    *count = n;
    return 0;
}

/* Evaluate the fused chain ending at consumer `node` (a map, filter or len). 0 with
 * the consumer's value set, or -2: the failure is recorded and the node settled, or
 * -1 when memory ran out (sched_oom; nothing recorded, the node left open). */
static int fuse_eval(sched *S, scope *sc, uint32_t node) {
    const fl_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    uint32_t stage[SCHED_MAX_STAGES]; /* innermost first once reversed */
    int ns = 0;
    if (N->kind != PN_LEN) stage[ns++] = node;
    uint32_t src = p->args[N->first_arg].node;
    while (S->info[src].fused && p->nodes[src].kind != PN_RANGE && ns < SCHED_MAX_STAGES) {
        stage[ns++] = src;
        src = p->args[p->nodes[src].first_arg].node;
    }
    for (int i = 0; i < ns / 2; i++) {
        uint32_t t = stage[i];
        stage[i] = stage[ns - 1 - i];
        stage[ns - 1 - i] = t;
    }
    char err[600];
    int64_t start = 0, n = 0;
    int is_range = S->info[src].fused && p->nodes[src].kind == PN_RANGE;
    fl_val in = {0};
    fv_list *l = NULL;
    if (is_range) {
        if (range_bounds(S, sc, src, &start, &n, err, sizeof err) != 0) { /* checked before */
            SL(sc, p, node)->val.i = 0;
            node_fail_as(S, sc, node, src, err);
            return -2;
        }
    } else {
        in = arg_whole(S, sc, src); /* successful elements only */
        if (!in.o) return builtin_oom(S, err, sizeof err);
        l = fv_as_list(in);
        n = l->len;
    }
    uint32_t src_et = elem_type(p, p->nodes[src].type);
    expr_native native[SCHED_MAX_STAGES]; /* each stage's native code, or NULL */
    uint8_t heap[SCHED_MAX_STAGES + 1];   /* heap[k]: the values entering stage k are */
    heap[0] = (uint8_t)fv_is_heap(p, src_et);
    for (int k = 0; k < ns; k++) {
        const plan_node *G = &p->nodes[stage[k]];
        native[k] = jit_native(p, G->ref);
        heap[k + 1] = G->kind == PN_MAP ? (uint8_t)fv_is_heap(p, elem_type(p, G->type)) : heap[k];
    }
    fl_val outv = {0};
    fv_list *o = NULL;
    if (N->kind != PN_LEN) {
        outv = fv_list_new(p, N->type, n);
        if (!outv.o) {
            if (!is_range) fv_decref(p, p->nodes[src].type, in);
            return builtin_oom(S, err, sizeof err);
        }
        o = fv_as_list(outv);
    }
    int64_t kept = 0;
    int failed_at = -1;
    int kns = 0;
    jit_kernel kern = is_range ? jit_range_kernel(p, node, &kns) : NULL;
    if (kern && kns == ns) { /* the whole chain as one native loop (scalars only) */
        expr_error ee;
        int32_t fs = 0;
        if (kern(start, n, &kept, o ? o->items : NULL, &fs, &ee) != 0) {
            if (expr_error_is_oom(&ee))
                builtin_oom(S, err, sizeof err);
            else
                lam_error(p, &ee, err, sizeof err);
            failed_at = fs;
        }
        n = 0; /* done */
    }
    for (int64_t i = 0; i < n && failed_at < 0; i++) {
        fl_val cur = is_range ? (fl_val){.i = start + i} : l->items[i];
        uint32_t ct = src_et;
        int own = 0, keep = 1, k = 0;
        for (; k < ns; k++) {
            const plan_node *G = &p->nodes[stage[k]];
            fl_val r;
            expr_error ee;
            if (native[k] ? native[k](&cur, &r, &ee) != 0
                          : lam_call(S, G->ref, &cur, &r, err, sizeof err) != 0) {
                if (native[k] && expr_error_is_oom(&ee))
                    builtin_oom(S, err, sizeof err);
                else if (native[k])
                    lam_error(p, &ee, err, sizeof err);
                failed_at = k;
                keep = 0;
                break;
            }
            if (G->kind == PN_MAP) {
                if (own && heap[k]) fv_decref(p, ct, cur);
                cur = r;
                own = 1;
                ct = elem_type(p, G->type);
            } else if (!r.i) {
                keep = 0;
                break;
            }
        }
        if (keep && o) {
            if (!own && heap[k]) fv_incref(p, ct, cur);
            o->items[kept] = cur;
            own = 0;
        }
        kept += keep;
        if (own && heap[k]) fv_decref(p, ct, cur);
    }
    if (!is_range) fv_decref(p, p->nodes[src].type, in);
    if (failed_at >= 0) {
        if (o) {
            o->len = kept;
            fv_decref(p, N->type, outv);
        }
        SL(sc, p, node)->val.i = 0;
        if (S->oom) return -1; /* out of memory: the node stays open (try_open) */
        /* the later stages (and a len consumer) count as not run, as without fusion */
        S->nskipped_other += (uint64_t)(ns - 1 - failed_at) + (N->kind == PN_LEN);
        node_fail_as(S, sc, node, stage[failed_at], err);
        return -2;
    }
    slot *s = SL(sc, p, node);
    if (o) {
        o->len = kept; /* a filter keeps fewer; the rest stays allocated, unused */
        s->val = outv;
    } else {
        s->val.i = kept;
    }
    return 0;
}

/* Compute a built-in node whose producers are all done and fine (or partial, for
 * map/filter). 0 with s->val set, or -1 with err (s->val unset; when memory ran out,
 * sched_oom was called and err says "out of memory"), or -2 (fuse_eval). */
int compute_builtin(sched *S, scope *sc, uint32_t node, char *err, size_t errlen) {
    const fl_plan *p = S->p;
    const plan_node *N = &p->nodes[node];
    slot *s = SL(sc, p, node);
    const plan_arg *A = &p->args[N->first_arg];
#define ARGV(i) (SL(sc, p, A[i].node)->val)
    switch (N->kind) {
        case PN_CONST:
            s->val = fv_from_const(p, N->aux);
            if (!s->val.o && fv_is_heap(p, N->type)) return builtin_oom(S, err, errlen);
            return 0;
        case PN_PARAM:
            s->val = sc->params[N->aux];
            fv_incref(p, N->type, s->val);
            return 0;
        case PN_RANGE: {
            int64_t a, n;
            if (range_bounds(S, sc, node, &a, &n, err, errlen) != 0) return -1;
            s->val = fv_list_new(p, N->type, S->info[node].fused ? 0 : n);
            if (!s->val.o) return builtin_oom(S, err, errlen);
            if (S->info[node].fused) return 0; /* its consumer iterates a .. a+n */
            fv_list *l = fv_as_list(s->val);
            for (int64_t i = 0; i < n; i++)
                l->items[i].i = a + i;
            return 0;
        }
        case PN_ZIP: {
            int64_t n = -1;
            for (uint32_t i = 0; i < N->nargs; i++) {
                int64_t li = fv_as_list(ARGV(i))->len;
                if (n >= 0 && li != n) {
                    snprintf(err, errlen,
                             "lists have different lengths (%" PRId64 " and %" PRId64 ")", n, li);
                    return -1;
                }
                n = li;
            }
            if (n < 0) n = 0;
            uint32_t rt = elem_type(p, N->type);
            const plan_type *R = &p->types[rt];
            s->val = fv_list_new(p, N->type, n);
            if (!s->val.o) return builtin_oom(S, err, errlen);
            fv_list *l = fv_as_list(s->val);
            for (int64_t k = 0; k < n; k++) {
                fl_val r = fv_rec_new(p, rt);
                if (!r.o) { /* the items not made yet are empty: released as nothing */
                    fv_decref(p, N->type, s->val);
                    s->val.i = 0;
                    return builtin_oom(S, err, errlen);
                }
                for (uint32_t f = 0; f < N->nargs && f < R->n; f++) {
                    fl_val v = fv_as_list(ARGV(f))->items[k];
                    fv_incref(p, p->fields[R->first + f].type, v);
                    fv_as_rec(r)->fields[f] = v;
                }
                l->items[k] = r;
            }
            return 0;
        }
        case PN_FILES: {
            pathvec pv = {0};
            const char *dir = fv_as_str(ARGV(0))->data;
            const char *glob = N->nargs > 1 ? fv_as_str(ARGV(1))->data : "*";
            if (walk_files(S, dir, glob, &pv, err, errlen) != 0) {
                for (size_t i = 0; i < pv.n; i++)
                    sc_free(S, pv.v[i]);
                sc_free(S, pv.v);
                return -1;
            }
            if (pv.n) qsort(pv.v, pv.n, sizeof *pv.v, cmp_str);
            uint32_t et = elem_type(p, N->type);
            s->val = fv_list_new(p, N->type, (int64_t)pv.n);
            int made = s->val.o != NULL;
            for (size_t i = 0; i < pv.n; i++) {
                if (made && !(fv_as_list(s->val)->items[i] = fv_str_cstr(p, et, pv.v[i])).o)
                    made = 0;
                sc_free(S, pv.v[i]);
            }
            sc_free(S, pv.v);
            if (!made) {
                fv_decref(p, N->type, s->val);
                s->val.i = 0;
                return builtin_oom(S, err, errlen);
            }
            return 0;
        }
        case PN_FLATTEN: {
            fv_list *outer = fv_as_list(ARGV(0));
            uint32_t et = elem_type(p, N->type);
            int64_t n = 0;
            for (int64_t i = 0; i < outer->len; i++)
                n += fv_as_list(outer->items[i])->len;
            s->val = fv_list_new(p, N->type, n);
            if (!s->val.o) return builtin_oom(S, err, errlen);
            int64_t j = 0;
            for (int64_t i = 0; i < outer->len; i++) {
                fv_list *in = fv_as_list(outer->items[i]);
                for (int64_t m = 0; m < in->len; m++) {
                    fv_incref(p, et, in->items[m]);
                    fv_as_list(s->val)->items[j++] = in->items[m];
                }
            }
            return 0;
        }
        case PN_LEN:
            if (S->info[A[0].node].fused) return fuse_eval(S, sc, node);
            s->val.i = fv_as_list(ARGV(0))->len;
            return 0;
        case PN_ELEM: {
            fv_list *l = fv_as_list(ARGV(0));
            if ((int64_t)N->aux >= l->len) {
                snprintf(err, errlen, "the list has %" PRId64 " element%s, so no element %u",
                         l->len, l->len == 1 ? "" : "s", N->aux);
                return -1;
            }
            s->val = l->items[N->aux];
            fv_incref(p, N->type, s->val);
            return 0;
        }
        case PN_LIST: {
            uint32_t et = elem_type(p, N->type);
            s->val = fv_list_new(p, N->type, N->nargs);
            if (!s->val.o) return builtin_oom(S, err, errlen);
            for (uint32_t i = 0; i < N->nargs; i++) {
                fl_val v = ARGV(i);
                fv_incref(p, et, v);
                fv_as_list(s->val)->items[i] = v;
            }
            return 0;
        }
        case PN_RECORD: {
            const plan_type *R = &p->types[N->type];
            s->val = fv_rec_new(p, N->type);
            if (!s->val.o) return builtin_oom(S, err, errlen);
            for (uint32_t i = 0; i < N->nargs && i < R->n; i++) {
                fl_val v = ARGV(i);
                fv_incref(p, p->fields[R->first + i].type, v);
                fv_as_rec(s->val)->fields[i] = v;
            }
            return 0;
        }
        case PN_MAP:
        case PN_FILTER: {
            if (S->info[node].fused) {
                s->val = fv_list_new(p, N->type, 0); /* its consumer runs its lambda */
                return s->val.o ? 0 : builtin_oom(S, err, errlen);
            }
            if (S->info[A[0].node].fused) return fuse_eval(S, sc, node);
            fl_val in = arg_whole(S, sc, A[0].node); /* successful elements only */
            if (!in.o) return builtin_oom(S, err, errlen);
            fv_list *l = fv_as_list(in);
            uint32_t it = elem_type(p, p->nodes[A[0].node].type);
            fl_val outv = fv_list_new(p, N->type, l->len);
            if (!outv.o) {
                fv_decref(p, p->nodes[A[0].node].type, in);
                return builtin_oom(S, err, errlen);
            }
            fv_list *o = fv_as_list(outv);
            int64_t j = 0;
            int rc = 0;
            for (int64_t i = 0; i < l->len; i++) {
                fl_val r;
                if (lam_call(S, N->ref, &l->items[i], &r, err, errlen) != 0) {
                    rc = -1;
                    break;
                }
                if (N->kind == PN_MAP) {
                    o->items[j++] = r;
                } else if (r.i) {
                    fv_incref(p, it, l->items[i]);
                    o->items[j++] = l->items[i];
                }
            }
            o->len = j; /* a filter keeps fewer; the rest stays allocated, unused */
            fv_decref(p, p->nodes[A[0].node].type, in);
            if (rc) {
                fv_decref(p, N->type, outv);
                return -1;
            }
            s->val = outv;
            return 0;
        }
        default:
            snprintf(err, errlen, "node kind %u is not a built-in", N->kind);
            return -1;
    }
#undef ARGV
}

