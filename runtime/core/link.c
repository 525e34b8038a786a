/*
 * link.c — rt_open: find and open the plan's libraries, check their content
 * hashes, resolve every C task's symbol and prepare its libffi call interface,
 * all before any task runs, so a run never fails half-way for a missing symbol.
 *
 * DESIGN
 *   Library search, first hit wins: the plan's path (relative to the plan
 *   file's folder, or absolute); then FOLDER/basename for each FOLDER of
 *   FLOW_LIBRARY_PATH; then dlopen(basename) (LD_LIBRARY_PATH, the system).
 *   A path "flow:NAME" (the standard library's) is one of flow's own modules:
 *   found in lib/flow/ beside this libflow (modpath.h), then on
 *   FLOW_LIBRARY_PATH, never beside the plan.
 *   The file found is hashed (SHA-256) and compared with the plan's hash,
 *   unless that is all zero (flowc did not find the library).
 *
 *   C layout of plan types (docs/runtime-abi.md): int/duration int64_t,
 *   float double, bool C bool (one byte), str/path/dir/date const char *,
 *   bytes and lists the two-word structs of flow.h, records C structs with
 *   the fields in order (nested records inline). Each type gets one ffi_type,
 *   built recursively and laid out by libffi (ffi_get_struct_offsets), so the
 *   marshalling in call.c uses exactly the offsets the C compiler uses.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "modpath.h"
#include "rtcore.h"

/* Longest path built while searching for a library. */
#define RT_MAX_PATH 4096

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Zeroed memory from the plan's context; NULL (and "out of memory" in err)
 * when there is none. */
static void *zalloc(const rt_runtime *rt, size_t n, size_t size, char *err, size_t errlen) {
    void *q = fl_calloc(rt->plan->ctx, n ? n : 1, size ? size : 1);
    if (!q) set_err(err, errlen, "out of memory");
    return q;
}

/* ---- C layout of plan types ---- */

static void init_pair(rt_runtime *rt) {
    rt->list_el[0] = &ffi_type_sint64;
    rt->list_el[1] = &ffi_type_pointer;
    rt->list_el[2] = NULL;
    rt->list_ft = (ffi_type){0, 0, FFI_TYPE_STRUCT, rt->list_el};
    rt->bytes_el[0] = &ffi_type_pointer;
    rt->bytes_el[1] = &ffi_type_sint64;
    rt->bytes_el[2] = NULL;
    rt->bytes_ft = (ffi_type){0, 0, FFI_TYPE_STRUCT, rt->bytes_el};
    ffi_get_struct_offsets(FFI_DEFAULT_ABI, &rt->list_ft, NULL);
    ffi_get_struct_offsets(FFI_DEFAULT_ABI, &rt->bytes_ft, NULL);
}

/* Build rt->ctypes[type] (and everything below it). 0, or -1 with err. */
static int build_ctype(rt_runtime *rt, uint32_t type, int depth, char *err, size_t errlen) {
    const fl_plan *p = rt->plan;
    rt_ctype *ct = &rt->ctypes[type];
    if (ct->ft) return 0;
    if (depth > 64) {
        set_err(err, errlen, "type nested too deeply for the C ABI");
        return -1;
    }
    const plan_type *t = &p->types[type];
    switch (t->kind) {
        case PT_VOID:
            ct->ft = &ffi_type_void;
            break;
        case PT_INT:
        case PT_DURATION:
            ct->ft = &ffi_type_sint64;
            break;
        case PT_FLOAT:
            ct->ft = &ffi_type_double;
            break;
        case PT_BOOL:
            ct->ft = sizeof(bool) == 1 ? &ffi_type_uint8 : &ffi_type_uint32;
            break;
        case PT_STR:
        case PT_PATH:
        case PT_DIR:
        case PT_DATE:
        case PT_TIME:
            ct->ft = &ffi_type_pointer;
            break;
        case PT_BYTES:
            ct->ft = &rt->bytes_ft;
            break;
        case PT_LIST:
            if (build_ctype(rt, t->elem, depth + 1, err, errlen)) return -1;
            ct->ft = &rt->list_ft;
            break;
        case PT_RECORD: {
            if (t->n == 0) {
                set_err(err, errlen, "an empty record has no C layout");
                return -1;
            }
            fl_ctx *c = p->ctx;
            ffi_type **el = zalloc(rt, t->n + 1, sizeof *el, err, errlen);
            if (!el) return -1;
            for (uint32_t i = 0; i < t->n; i++) {
                uint32_t ft = p->fields[t->first + i].type;
                if (build_ctype(rt, ft, depth + 1, err, errlen)) {
                    fl_free(c, el);
                    return -1;
                }
                el[i] = rt->ctypes[ft].ft;
            }
            ffi_type *st = zalloc(rt, 1, sizeof *st, err, errlen);
            ct->offsets = st ? zalloc(rt, t->n, sizeof *ct->offsets, err, errlen) : NULL;
            if (!ct->offsets) {
                fl_free(c, el);
                fl_free(c, st);
                return -1;
            }
            st->type = FFI_TYPE_STRUCT;
            st->elements = el;
            if (ffi_get_struct_offsets(FFI_DEFAULT_ABI, st, ct->offsets) != FFI_OK) {
                fl_free(c, el);
                fl_free(c, st);
                fl_free(c, ct->offsets);
                ct->offsets = NULL;
                set_err(err, errlen, "libffi cannot lay out a record type");
                return -1;
            }
            ct->ft = st;
            break;
        }
        default:
            set_err(err, errlen, "type kind %u has no C layout", t->kind);
            return -1;
    }
    ct->size = ct->ft->size;
    ct->align = ct->ft->alignment;
    return 0;
}

static void free_ctypes(rt_runtime *rt) {
    if (!rt->ctypes) return;
    for (uint32_t i = 0; i < rt->plan->n_types; i++) {
        rt_ctype *ct = &rt->ctypes[i];
        if (ct->offsets) { /* a record: its ffi_type is ours */
            fl_free(rt->plan->ctx, ct->ft->elements);
            fl_free(rt->plan->ctx, ct->ft);
            fl_free(rt->plan->ctx, ct->offsets);
        }
    }
    fl_free(rt->plan->ctx, rt->ctypes);
}

/* ---- finding libraries ---- */

static bool all_zero(const uint8_t *h, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (h[i]) return false;
    return true;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The first task that uses library `lib`, for error messages ("" when none). */
static const char *lib_user(const fl_plan *p, uint32_t lib, char *buf, size_t n) {
    for (uint32_t i = 0; i < p->n_tasks; i++)
        if (p->tasks[i].kind == TK_C && p->tasks[i].lib == lib) {
            snprintf(buf, n, "task %s: ", plan_str(p, p->tasks[i].name));
            return buf;
        }
    return "";
}

/* Try to dlopen one candidate file; 1 opened, 0 absent, -1 present but failed. */
static int try_open(fl_ctx *c, const char *path, rt_lib *out, char *why, size_t whylen) {
    if (access(path, F_OK) != 0) return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, whylen, "%s", dlerror());
        return -1;
    }
    out->handle = h;
    out->path = fl_strdup(c, path);
    return 1;
}

static int open_lib(rt_runtime *rt, uint32_t li, const char *plan_dir, char *err, size_t errlen) {
    const fl_plan *p = rt->plan;
    const plan_lib *pl = &p->libs[li];
    const char *name = plan_str(p, pl->name), *lpath = plan_str(p, pl->path);
    rt_lib *out = &rt->libs[li];
    char cand[RT_MAX_PATH], why[512] = "", whobuf[256];
    const char *who = lib_user(p, li, whobuf, sizeof whobuf);
    if (!*lpath) {
        set_err(err, errlen, "%slibrary %s has no path", who, name);
        return -1;
    }
    int rc = 0;
    /* "flow:NAME": one of flow's own modules (the standard library's), found from
     * where this libflow is, never from the plan's folder (modpath.h) */
    const char *modname = mod_lib_name(lpath);
    if (modname) {
        if (mod_find(modname, cand, sizeof cand) == 0)
            rc = try_open(p->ctx, cand, out, why, sizeof why);
    } else if (lpath[0] == '/')
        snprintf(cand, sizeof cand, "%s", lpath);
    else if (!plan_dir || !*plan_dir) /* "./": dlopen searches for a name without a slash */
        snprintf(cand, sizeof cand, "./%s", lpath);
    else
        snprintf(cand, sizeof cand, "%s/%s", plan_dir, lpath);
    if (!modname) rc = try_open(p->ctx, cand, out, why, sizeof why);
    const char *fpath = getenv("FLOW_LIBRARY_PATH");
    for (const char *s = fpath; !rc && s && *s;) {
        const char *e = strchr(s, ':');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n) {
            snprintf(cand, sizeof cand, "%.*s/%s", (int)n, s, modname ? modname : base_name(lpath));
            rc = try_open(p->ctx, cand, out, why, sizeof why);
        }
        s = e ? e + 1 : s + n;
    }
    if (!rc && modname) {
        set_err(err, errlen,
                "%slibrary %s (%s): not found (looked in flow's module folder lib/flow/ beside "
                "flowrun, in %s and on FLOW_LIBRARY_PATH)",
                who, name, lpath, mod_configured_dir());
        return -1;
    }
    if (!rc) { /* dlopen's own search, by name */
        void *h = dlopen(base_name(lpath), RTLD_NOW | RTLD_LOCAL);
        if (h) {
            struct link_map *lm = NULL;
            out->handle = h;
            out->path = fl_strdup(p->ctx, dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name[0]
                                   ? lm->l_name
                                   : base_name(lpath));
            rc = 1;
        } else {
            snprintf(why, sizeof why, "%s", dlerror());
        }
    }
    if (rc != 1) {
        if (rc < 0)
            set_err(err, errlen, "%slibrary %s (%s): cannot load %s: %s", who, name, lpath, cand,
                    why);
        else
            set_err(err, errlen,
                    "%slibrary %s (%s): not found (looked beside the plan, on "
                    "FLOW_LIBRARY_PATH, and by name)",
                    who, name, lpath);
        return -1;
    }
    if (!out->path) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (all_zero(pl->sha256, 32)) return 0; /* flowc did not see it: nothing to compare */
    fl_digest h;
    char herr[256];
    if (hash_file(p->ctx, out->path, &h, herr, sizeof herr) != 0) {
        if (rt->strict) {
            set_err(err, errlen, "%slibrary %s (%s): cannot read %s to check its hash", who, name,
                    lpath, out->path);
            return -1;
        }
        fl_log(p->ctx, FL_LOG_WARN, "library %s (%s): cannot read %s to check its hash", name,
               lpath, out->path);
        return 0;
    }
    if (memcmp(h.b, pl->sha256, 32) != 0) {
        if (rt->strict) {
            set_err(err, errlen,
                    "%slibrary %s (%s): %s differs from the library the plan was compiled "
                    "against (content hash mismatch)",
                    who, name, lpath, out->path);
            return -1;
        }
        fl_log(p->ctx, FL_LOG_WARN,
               "library %s (%s): %s differs from the library the plan was "
               "compiled against (content hash mismatch)",
               name, lpath, out->path);
    }
    return 0;
}

/* ---- tasks ---- */

/* What call.c relies on in a combine: halves, binds and stitch in range. The plan
 * reader checks indexes; this checks that they fit together. */
static int check_combine(const fl_plan *p, const plan_task *t, const char *tname, char *err,
                         size_t errlen) {
    const char *why = NULL;
    if (t->first >= p->n_tasks || t->second >= p->n_tasks) {
        why = "its halves are not tasks";
    } else {
        const plan_task *first = &p->tasks[t->first], *second = &p->tasks[t->second];
        uint32_t rec_n = 0;
        if (t->stitch != PLAN_NONE) {
            const plan_lambda *l = t->stitch < p->n_lambdas ? &p->lambdas[t->stitch] : NULL;
            if (!l || l->nparams != 1 || p->types[l->ret].kind != PT_RECORD)
                why = "its stitch is not a lambda from the first result to a record";
            else
                rec_n = p->types[l->ret].n;
        }
        if (first->nparams > t->nparams) why = "it has fewer parameters than its first half";
        if ((uint64_t)t->first_bind + second->nparams > p->n_binds) why = "its binds are missing";
        for (uint32_t j = 0; !why && j < second->nparams; j++) {
            const plan_bind *b = &p->binds[t->first_bind + j];
            if (b->kind == PB_RESULT   ? p->types[first->ret].kind == PT_VOID
                : b->kind == PB_STITCH ? b->index >= rec_n
                : b->kind == PB_PARAM  ? b->index >= t->nparams
                                       : 1)
                why = "a bind of its second half is out of range";
        }
    }
    if (!why) return 0;
    set_err(err, errlen, "task %s: bad combine in the plan: %s", tname, why);
    return -1;
}

static int link_task(rt_runtime *rt, uint32_t ti, char *err, size_t errlen) {
    const fl_plan *p = rt->plan;
    const plan_task *t = &p->tasks[ti];
    const char *tname = plan_str(p, t->name);
    char why[256] = "";
    if (t->nparams > RT_MAX_PARAMS) {
        set_err(err, errlen, "task %s: %u parameters (at most %d)", tname, t->nparams,
                RT_MAX_PARAMS);
        return -1;
    }
    if (t->kind == TK_COMBINE) return check_combine(p, t, tname, err, errlen);
    if (t->kind == TK_SH) {
        const plan_lambda *l = t->cmd < p->n_lambdas ? &p->lambdas[t->cmd] : NULL;
        if (!l || l->nparams != t->nparams + 1 ||
            p->types[p->typelist[l->first_ptype + t->nparams]].kind != PT_STR ||
            p->types[l->ret].kind != PT_STR) {
            set_err(err, errlen, "task %s: the plan's command is not a (params..., out) -> str",
                    tname);
            return -1;
        }
        return 0;
    }
    if (t->kind != TK_C) {
        set_err(err, errlen, "task %s: unknown task kind %u", tname, t->kind);
        return -1;
    }
    if (t->lib >= p->n_libs) {
        set_err(err, errlen, "task %s: no library", tname);
        return -1;
    }
    const plan_lib *pl = &p->libs[t->lib];
    rt_ctask *ct = &rt->tasks[ti];
    const char *sym = plan_str(p, t->symbol);
    dlerror();
    ct->fn = dlsym(rt->libs[t->lib].handle, sym);
    if (!ct->fn) {
        set_err(err, errlen, "task %s: library %s (%s): no symbol '%s'", tname,
                plan_str(p, pl->name), plan_str(p, pl->path), sym);
        return -1;
    }
    ct->atypes = zalloc(rt, t->nparams + 1, sizeof *ct->atypes, err, errlen);
    if (!ct->atypes) return -1;
    for (uint32_t i = 0; i < t->nparams; i++) {
        uint32_t ty = p->params[t->first_param + i].type;
        if (build_ctype(rt, ty, 0, why, sizeof why)) {
            set_err(err, errlen, "task %s: parameter %s: %s", tname,
                    plan_str(p, p->params[t->first_param + i].name), why);
            return -1;
        }
        ct->atypes[i] = rt->ctypes[ty].ft;
    }
    if (build_ctype(rt, t->ret, 0, why, sizeof why)) {
        set_err(err, errlen, "task %s: result: %s", tname, why);
        return -1;
    }
    if (ffi_prep_cif(&ct->cif, FFI_DEFAULT_ABI, t->nparams, rt->ctypes[t->ret].ft, ct->atypes) !=
        FFI_OK) {
        set_err(err, errlen, "task %s: libffi cannot prepare a call of '%s'", tname, sym);
        return -1;
    }
    return 0;
}

rt_runtime *rt_open(const fl_plan *plan, const char *plan_path, int strict, char *err,
                    size_t errlen) {
    fl_ctx *c = plan->ctx;
    rt_runtime *rt = fl_calloc(c, 1, sizeof *rt);
    if (!rt) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    rt->plan = plan;
    rt->strict = strict;
    char *dir = NULL;
    if (!(rt->libs = zalloc(rt, plan->n_libs, sizeof *rt->libs, err, errlen)) ||
        !(rt->tasks = zalloc(rt, plan->n_tasks, sizeof *rt->tasks, err, errlen)) ||
        !(rt->ctypes = zalloc(rt, plan->n_types, sizeof *rt->ctypes, err, errlen)))
        goto fail;
    init_pair(rt);
    if (plan_path) {
        dir = fl_strdup(c, plan_path);
        if (!dir) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = 0;
        else
            dir[0] = 0; /* the plan is in the working directory */
    }
    for (uint32_t i = 0; i < plan->n_libs; i++) {
        if (!open_lib(rt, i, dir, err, errlen)) continue;
        char who[8];
        if (*lib_user(plan, i, who, sizeof who)) goto fail;
        /* no task uses it: nothing can go wrong for want of it */
        fl_log(c, FL_LOG_WARN, "%s", err);
    }
    for (uint32_t i = 0; i < plan->n_tasks; i++)
        if (link_task(rt, i, err, errlen)) goto fail;
    fl_free(c, dir);
    return rt;
fail:
    fl_free(c, dir);
    rt_close(rt);
    return NULL;
}

void rt_close(rt_runtime *rt) {
    if (!rt) return;
    fl_ctx *c = rt->plan->ctx;
    for (uint32_t i = 0; rt->tasks && i < rt->plan->n_tasks; i++)
        fl_free(c, rt->tasks[i].atypes);
    fl_free(c, rt->tasks);
    free_ctypes(rt);
    for (uint32_t i = 0; rt->libs && i < rt->plan->n_libs; i++) {
        if (rt->libs[i].handle) dlclose(rt->libs[i].handle);
        fl_free(c, rt->libs[i].path);
    }
    fl_free(c, rt->libs);
    fl_free(c, rt->env_root);
    fl_free(c, rt);
}

int rt_set_env_root(rt_runtime *rt, const char *root) {
    fl_ctx *c = rt->plan->ctx;
    char *r = root ? fl_strdup(c, root) : NULL;
    if (root && !r) return -1;
    fl_free(c, rt->env_root);
    rt->env_root = r;
    return 0;
}

const fl_plan *rt_plan(const rt_runtime *rt) {
    return rt->plan;
}
