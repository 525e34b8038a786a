/*
 * embed.c — the embedding API of flow.h: open a plan (file or bytes), register
 * C functions for library symbols, set parameters, run a flow, read the result.
 *
 * Registered symbols: before rt_open, every task bound to a registered
 * library.symbol is pointed at a symbol every process has ("getpid" of the C
 * library), and a library whose C tasks are all registered is pointed at
 * "libc.so.6", so rt_open links without the real library and still prepares
 * the libffi call from the task's declared types; then the task's function
 * pointer is replaced by the registered one (rtcore.h's rt_ctask.fn). The
 * plan's task names, and so every message, stay as written.
 *
 * The JIT: at the first run, a plan with lambdas gets native code (jit.h; the
 * module is loaded then, never for a plan without lambdas) unless the program
 * opted out with flow_program_set_jit. A module that cannot be loaded is one
 * warning to the plan context's log sink, and the lambdas are interpreted.
 * Each flow_program owns a context (ctx.h) made at open: everything the program
 * makes (plan, runtime, parameters) allocates through it, an allocation that
 * fails comes back as an error ("out of memory", code 2 from a run) and the
 * process goes on. Nothing here exits or prints: the failure summary of a run
 * goes to the log function the embedding program set (flow_program_set_log),
 * unless the run is quiet. A flow_outcome outlives its program, so it is made
 * with the C library's allocator.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "exec_split.h"
#include "expr.h"
#include "flow.h"
#include "scheduler.h"
#include "jit.h"
#include "refuse.h"
#include "rtcore.h"

#define EMBED_MAX_REGS 4096 /* registered symbols per program */

typedef struct embed_reg {
    char *lib;    /* library name as declared (`library wc = ...`: "wc") */
    char *symbol; /* symbol */
    void *fn;     /* the function */
} embed_reg;

struct flow_program {
    fl_ctx ctx;      /* how this program allocates and reports (first: see program_alloc) */
    flow_log_fn logfn; /* flow_program_set_log; NULL: lines are dropped */
    void *log_ud;
    fl_plan *plan; /* owned */
    char *plan_path; /* where libraries are looked for (a file in that folder), or NULL */
    uint32_t graph;  /* selected flow, or PLAN_NONE */
    char **kv;       /* "name=text" parameter settings (owned) */
    int nkv, capkv;
    embed_reg *regs; /* registered symbols */
    uint32_t nregs, capregs;
    rt_runtime *rt; /* linked at the first run */
    int no_jit;     /* flow_program_set_jit(fp, 0): lambdas are interpreted */
};

struct flow_outcome {
    int code;        /* exit code as flowrun's */
    char *json;      /* result as JSON, "" when none */
    char *error;     /* summary or error line, "" when none */
    uint32_t kind;   /* plan_type_kind of the result, PT_VOID when none */
    fl_val scalar; /* int / float / bool result */
    char *str;       /* text result (str, path, dir, date), else NULL */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The context's log sink: one line to the program's log function. */
static void program_log(void *ud, fl_log_level level, const char *msg) {
    (void)level;
    flow_program *fp = ud;
    if (fp->logfn) fp->logfn(fp->log_ud, msg);
}

/* A program with its context and nothing else yet (the C library's memory: the
 * context cannot allocate its own home); NULL when out of memory. */
static flow_program *program_alloc(char *err, size_t errlen) {
    flow_program *fp = calloc(1, sizeof *fp);
    if (!fp) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    fl_ctx_init(&fp->ctx);
    fp->ctx.log = program_log;
    fp->ctx.log_ud = fp;
    fp->graph = PLAN_NONE;
    return fp;
}

/* Give fp its plan (owned from now on) and pick the flow when there is one. */
static int program_init(flow_program *fp, fl_plan *p, const char *plan_path, char *err,
                        size_t errlen) {
    fp->plan = p;
    if (plan_path && !(fp->plan_path = fl_strdup(&fp->ctx, plan_path))) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    uint32_t nflows = 0, last = PLAN_NONE;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        if (p->graphs[g].kind == PG_FLOW) {
            nflows++;
            last = g;
        }
    if (nflows == 1) fp->graph = last;
    return 0;
}

fl_ctx *embed_ctx(flow_program *fp) {
    return &fp->ctx;
}

void flow_program_set_log(flow_program *fp, flow_log_fn fn, void *ud) {
    fp->logfn = fn;
    fp->log_ud = ud;
}

static int verify_lambdas(fl_plan *p, char *err, size_t errlen) {
    char why[300];
    for (uint32_t l = 0; l < p->n_lambdas; l++)
        if (expr_verify(p, l, why, sizeof why) != 0) {
            seterr(err, errlen, "damaged plan: %s", why);
            return -1;
        }
    return 0;
}

flow_program *flow_program_open(const char *plan_path, char *err, size_t errlen) {
    char why[512];
    flow_program *fp = program_alloc(err, errlen);
    if (!fp) return NULL;
    fl_plan *p = plan_read_file(&fp->ctx, plan_path, why, sizeof why);
    if (!p) {
        seterr(err, errlen, "%s: %s", plan_path, why);
        free(fp);
        return NULL;
    }
    if (verify_lambdas(p, err, errlen) || program_init(fp, p, plan_path, err, errlen)) {
        fp->plan = p;
        flow_program_close(fp);
        return NULL;
    }
    return fp;
}

flow_program *flow_program_open_bytes(const void *bytes, size_t len, const char *lib_dir, char *err,
                                      size_t errlen) {
    char why[512];
    flow_program *fp = program_alloc(err, errlen);
    if (!fp) return NULL;
    fl_plan *p = plan_read(&fp->ctx, bytes, len, why, sizeof why);
    if (!p) {
        seterr(err, errlen, "%s", why);
        free(fp);
        return NULL;
    }
    /* rt_open looks beside the plan file: name one inside lib_dir */
    char path[4096];
    if (lib_dir) snprintf(path, sizeof path, "%s/embedded.plan", lib_dir);
    if (verify_lambdas(p, err, errlen) ||
        program_init(fp, p, lib_dir ? path : NULL, err, errlen)) {
        fp->plan = p;
        flow_program_close(fp);
        return NULL;
    }
    return fp;
}

int flow_program_register(flow_program *fp, const char *library, const char *symbol, void *fn,
                          char *err, size_t errlen) {
    if (!fn || !library || !symbol) {
        seterr(err, errlen, "register: library, symbol and function are required");
        return -1;
    }
    if (fp->rt) {
        seterr(err, errlen, "register %s.%s: the program has already run", library, symbol);
        return -1;
    }
    int used = 0;
    for (uint32_t t = 0; t < fp->plan->n_tasks; t++) {
        const plan_task *T = &fp->plan->tasks[t];
        used |= T->kind == TK_C &&
                !strcmp(plan_str(fp->plan, fp->plan->libs[T->lib].name), library) &&
                !strcmp(plan_str(fp->plan, T->symbol), symbol);
    }
    if (!used) {
        seterr(err, errlen, "register: no task of the plan is bound to %s.%s", library, symbol);
        return -1;
    }
    for (uint32_t i = 0; i < fp->nregs; i++)
        if (!strcmp(fp->regs[i].lib, library) && !strcmp(fp->regs[i].symbol, symbol)) {
            fp->regs[i].fn = fn;
            return 0;
        }
    if (fp->nregs >= EMBED_MAX_REGS) {
        seterr(err, errlen, "register: more than %d symbols", EMBED_MAX_REGS);
        return -1;
    }
    if (fp->nregs == fp->capregs) {
        uint32_t cap = fp->capregs ? fp->capregs * 2 : 8;
        embed_reg *r = fl_reallocarray(&fp->ctx, fp->regs, cap, sizeof *r);
        if (!r) goto oom;
        fp->regs = r;
        fp->capregs = cap;
    }
    embed_reg r = {fl_strdup(&fp->ctx, library), fl_strdup(&fp->ctx, symbol), fn};
    if (!r.lib || !r.symbol) {
        fl_free(&fp->ctx, r.lib);
        fl_free(&fp->ctx, r.symbol);
        goto oom;
    }
    fp->regs[fp->nregs++] = r;
    return 0;
oom:
    seterr(err, errlen, "register %s.%s: out of memory", library, symbol);
    return -1;
}

int flow_program_set_jit(flow_program *fp, int enabled, char *err, size_t errlen) {
    if (fp->rt) {
        seterr(err, errlen, "the JIT is chosen before the first run");
        return -1;
    }
    fp->no_jit = !enabled;
    return 0;
}

int flow_program_select(flow_program *fp, const char *flow, char *err, size_t errlen) {
    for (uint32_t g = 0; g < fp->plan->n_graphs; g++)
        if (fp->plan->graphs[g].kind == PG_FLOW &&
            !strcmp(plan_str(fp->plan, fp->plan->graphs[g].name), flow)) {
            if (fp->graph != g)
                for (int i = 0; i < fp->nkv; i++)
                    fl_free(&fp->ctx, fp->kv[i]);
            if (fp->graph != g) fp->nkv = 0;
            fp->graph = g;
            return 0;
        }
    seterr(err, errlen, "no flow named '%s' in the plan", flow);
    return -1;
}

int flow_program_set_param(flow_program *fp, const char *name, const char *text, char *err,
                           size_t errlen) {
    const fl_plan *p = fp->plan;
    if (fp->graph == PLAN_NONE) {
        seterr(err, errlen, "the plan has several flows: select one first");
        return -1;
    }
    const plan_graph *G = &p->graphs[fp->graph];
    uint32_t i;
    for (i = 0; i < G->nparams; i++)
        if (!strcmp(plan_str(p, p->params[G->first_param + i].name), name)) break;
    if (i == G->nparams) {
        seterr(err, errlen, "unknown parameter '%s' for flow %s", name, plan_str(p, G->name));
        return -1;
    }
    fl_val v;
    char why[300];
    uint32_t type = p->params[G->first_param + i].type;
    if (fv_parse(p, type, text, &v, why, sizeof why) != 0) {
        if (fl_failed(&fp->ctx) && fp->ctx.errcode == FL_ENOMEM) {
            seterr(err, errlen, "parameter '%s': out of memory", name);
            return -1;
        }
        char tname[200];
        plan_type_text(p, type, tname, sizeof tname);
        seterr(err, errlen, "parameter '%s' (%s): %s", name, tname, why);
        return -1;
    }
    fv_decref(p, type, v);
    char *kv = fl_sprintf(&fp->ctx, "%s=%s", name, text);
    if (!kv) {
        seterr(err, errlen, "parameter '%s': out of memory", name);
        return -1;
    }
    for (int j = 0; j < fp->nkv; j++)
        if (!strncmp(fp->kv[j], name, strlen(name)) && fp->kv[j][strlen(name)] == '=') {
            fl_free(&fp->ctx, fp->kv[j]);
            fp->kv[j] = kv;
            return 0;
        }
    if (fp->nkv == fp->capkv) {
        int cap = fp->capkv ? fp->capkv * 2 : 8;
        char **q = fl_reallocarray(&fp->ctx, fp->kv, (size_t)cap, sizeof *q);
        if (!q) {
            fl_free(&fp->ctx, kv);
            seterr(err, errlen, "parameter '%s': out of memory", name);
            return -1;
        }
        fp->kv = q;
        fp->capkv = cap;
    }
    fp->kv[fp->nkv++] = kv;
    return 0;
}

/* The typed setters check the parameter's declared type at once: 0 when the
 * parameter `name` of the selected flow has one of the kinds in `ok` (PT__COUNT
 * ends the list), else -1 with one line naming the parameter, its type and the
 * type given (`given`, as the setter's name says it). */
static int check_typed(flow_program *fp, const char *name, const char *given, const uint32_t *ok,
                       char *err, size_t errlen) {
    const fl_plan *p = fp->plan;
    if (fp->graph == PLAN_NONE) {
        seterr(err, errlen, "the plan has several flows: select one first");
        return -1;
    }
    const plan_graph *G = &p->graphs[fp->graph];
    for (uint32_t i = 0; i < G->nparams; i++) {
        const plan_param *P = &p->params[G->first_param + i];
        if (strcmp(plan_str(p, P->name), name)) continue;
        for (const uint32_t *k = ok; *k != PT__COUNT; k++)
            if (p->types[P->type].kind == *k) return 0;
        char tname[200];
        plan_type_text(p, P->type, tname, sizeof tname);
        seterr(err, errlen, "parameter '%s' of flow %s is %s %s, not %s %s (flow_program_set_%s)",
               name, plan_str(p, G->name), strchr("aeiou", tname[0]) ? "an" : "a", tname,
               strchr("aeiou", given[0]) ? "an" : "a", given, given);
        return -1;
    }
    seterr(err, errlen, "unknown parameter '%s' for flow %s", name, plan_str(p, G->name));
    return -1;
}

int flow_program_set_int(flow_program *fp, const char *name, int64_t v, char *err, size_t errlen) {
    static const uint32_t ok[] = {PT_INT, PT_DURATION, PT__COUNT}; /* duration: milliseconds */
    if (check_typed(fp, name, "int", ok, err, errlen)) return -1;
    char t[32];
    snprintf(t, sizeof t, "%lld", (long long)v);
    return flow_program_set_param(fp, name, t, err, errlen);
}

int flow_program_set_float(flow_program *fp, const char *name, double v, char *err, size_t errlen) {
    static const uint32_t ok[] = {PT_FLOAT, PT__COUNT};
    if (check_typed(fp, name, "float", ok, err, errlen)) return -1;
    char t[64];
    snprintf(t, sizeof t, "%.17g", v);
    return flow_program_set_param(fp, name, t, err, errlen);
}

int flow_program_set_bool(flow_program *fp, const char *name, bool v, char *err, size_t errlen) {
    static const uint32_t ok[] = {PT_BOOL, PT__COUNT};
    if (check_typed(fp, name, "bool", ok, err, errlen)) return -1;
    return flow_program_set_param(fp, name, v ? "true" : "false", err, errlen);
}

int flow_program_set_str(flow_program *fp, const char *name, const char *v, char *err,
                         size_t errlen) {
    static const uint32_t ok[] = {PT_STR, PT_PATH, PT_DIR, PT_DATE, PT_TIME, PT__COUNT};
    if (check_typed(fp, name, "str", ok, err, errlen)) return -1;
    if (!v) {
        seterr(err, errlen, "parameter '%s': NULL is not a string", name);
        return -1;
    }
    return flow_program_set_param(fp, name, v, err, errlen);
}

/* Point registered tasks (and libraries only they use) at stand-ins, rt_open,
 * then install the registered functions. */
static int link_program(flow_program *fp, char *err, size_t errlen) {
    fl_plan *p = fp->plan;
    uint32_t *reg_of = fl_calloc(p->ctx, p->n_tasks ? p->n_tasks : 1, sizeof *reg_of); /* reg + 1 */
    if (!reg_of) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    if (fp->nregs) {
        uint32_t stand_sym = plan_intern_str(p, "getpid");
        uint32_t stand_lib = plan_intern_str(p, "libc.so.6");
        if (p->oom) {
            fl_free(p->ctx, reg_of);
            seterr(err, errlen, "out of memory");
            return -1;
        }
        for (uint32_t t = 0; t < p->n_tasks; t++) {
            plan_task *T = &p->tasks[t];
            if (T->kind != TK_C) continue;
            for (uint32_t r = 0; r < fp->nregs; r++)
                if (!strcmp(plan_str(p, p->libs[T->lib].name), fp->regs[r].lib) &&
                    !strcmp(plan_str(p, T->symbol), fp->regs[r].symbol)) {
                    reg_of[t] = r + 1;
                    T->symbol = stand_sym;
                }
        }
        for (uint32_t l = 0; l < p->n_libs; l++) {
            int all = 1, any = 0;
            for (uint32_t t = 0; t < p->n_tasks; t++)
                if (p->tasks[t].kind == TK_C && p->tasks[t].lib == l) {
                    any = 1;
                    all &= reg_of[t] != 0;
                }
            if (any && all) {
                p->libs[l].path = stand_lib;
                memset(p->libs[l].sha256, 0, sizeof p->libs[l].sha256);
            }
        }
    }
    fp->rt = rt_open(p, fp->plan_path, 0, err, errlen);
    if (fp->rt)
        for (uint32_t t = 0; t < p->n_tasks; t++)
            if (reg_of[t]) fp->rt->tasks[t].fn = fp->regs[reg_of[t] - 1].fn;
    fl_free(p->ctx, reg_of);
    char jerr[600];
    if (fp->rt && !fp->no_jit && p->n_lambdas && jit_available() &&
        jit_attach(p, jerr, sizeof jerr) != 0)
        fl_log(p->ctx, FL_LOG_WARN, "flow: %s; lambdas are interpreted", jerr);
    return fp->rt ? 0 : -1;
}

/* An outcome (the C library's memory: it may outlive the program); NULL when
 * out of memory. */
static flow_outcome *outcome_new(int code, const char *error) {
    flow_outcome *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->code = code;
    o->json = strdup("");
    o->error = strdup(error ? error : "");
    o->kind = PT_VOID;
    if (!o->json || !o->error) {
        flow_outcome_free(o);
        return NULL;
    }
    return o;
}

/* Each line of text to the program's log (unless quiet). */
static void log_lines(flow_program *fp, const char *text, int quiet) {
    if (quiet || !fp->logfn) return;
    for (const char *s = text; s && *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        fl_log(&fp->ctx, FL_LOG_ERROR, "%.*s", (int)n, s);
        s += n + (e != NULL);
    }
}

static int fail_early(flow_program *fp, flow_outcome **out, int code, const char *msg,
                      int quiet) {
    log_lines(fp, msg, quiet);
    if (out) *out = outcome_new(code, msg);
    return code;
}

/* The scheduler's observer: the failure summary, one line at a time, into the
 * outcome's text (no progress lines). */
static void summary_line(void *ud, const char *text) {
    FILE *f = ud;
    fputs(text, f);
    fputc('\n', f);
}

static void summary_collect(void *ud, const sched_summary *s) {
    sched_summary_lines(s, summary_line, ud);
}

int flow_program_run(flow_program *fp, const flow_run_options *opts, flow_outcome **out) {
    flow_run_options def;
    memset(&def, 0, sizeof def);
    if (!opts) opts = &def;
    if (out) *out = NULL;
    const fl_plan *p = fp->plan;
    char err[1024];
    if (fp->graph == PLAN_NONE)
        return fail_early(fp, out, 2, "the plan has several flows (or none): select one", opts->quiet);
    const plan_graph *G = &p->graphs[fp->graph];
    const char *exname = opts->executor ? opts->executor : "inline";
    if (strcmp(exname, "inline") && strcmp(exname, "process")) {
        snprintf(err, sizeof err, "the %s executor is not available in this build", exname);
        return fail_early(fp, out, 2, err, opts->quiet);
    }
    if (rt_refuse_undone(p, fp->graph, exname, err, sizeof err))
        return fail_early(fp, out, 2, err, opts->quiet);
    fl_error_clear(&fp->ctx);
    if (!fp->rt && link_program(fp, err, sizeof err) != 0)
        return fail_early(fp, out, 2, err, opts->quiet);
    fl_val *params = fl_calloc(p->ctx, G->nparams ? G->nparams : 1, sizeof *params);
    if (!params) return fail_early(fp, out, 2, "out of memory", opts->quiet);
    if (params_resolve(p, fp->graph, fp->kv, fp->nkv, NULL, params, err, sizeof err) != 0) {
        fl_free(p->ctx, params);
        return fail_early(fp, out, 2, err, opts->quiet);
    }
    int jobs = opts->jobs > 0 ? opts->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1) jobs = 1;
    rt_executor *ex = !strcmp(exname, "process") ? rt_executor_process(fp->rt, jobs)
                                                 : rt_executor_inline(fp->rt, jobs);
    if (ex && !strcmp(exname, "process"))
        ex = rt_executor_with_containers(fp->rt, fp->graph, ex, jobs, NULL);
    if (!ex) {
        for (uint32_t i = 0; i < G->nparams; i++)
            fv_decref(p, p->params[G->first_param + i].type, params[i]);
        fl_free(p->ctx, params);
        snprintf(err, sizeof err, "cannot start the %s executor: %s", exname, strerror(errno));
        return fail_early(fp, out, 2, err, opts->quiet);
    }
    char *ebuf = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&ebuf, &elen);
    if (!ef) {
        ex->ops->destroy(ex);
        for (uint32_t i = 0; i < G->nparams; i++)
            fv_decref(p, p->params[G->first_param + i].type, params[i]);
        fl_free(p->ctx, params);
        return fail_early(fp, out, 2, "out of memory", opts->quiet);
    }
    sched_opts so;
    memset(&so, 0, sizeof so);
    so.jobs = jobs;
    so.max_map = opts->max_map;
    so.breadth = opts->breadth_first;
    so.work_dir = opts->work_dir ? opts->work_dir : ".flow/work/embed";
    so.work_root_len = opts->work_dir ? strlen(opts->work_dir) : strlen(".flow");
    sched_observer obs = {NULL, summary_collect, ef};
    so.obs = &obs;
    sched_outcome res;
    int code = sched_run(p, ex, fp->graph, params, &so, &res);
    ex->ops->destroy(ex);
    for (uint32_t i = 0; i < G->nparams; i++)
        fv_decref(p, p->params[G->first_param + i].type, params[i]);
    fl_free(p->ctx, params);
    fclose(ef);
    if (fl_failed(&fp->ctx) && fp->ctx.errcode == FL_ENOMEM && code == 0) code = 2;
    if (ebuf && *ebuf) log_lines(fp, ebuf, opts->quiet);
    flow_outcome *o = outcome_new(code, ebuf);
    free(ebuf);
    if (res.has_result) {
        if (code == 0 && o) {
            char *jb = NULL;
            size_t jl = 0;
            FILE *jf = open_memstream(&jb, &jl);
            if (jf) {
                fv_print_json(p, G->ret, res.result, jf);
                fclose(jf);
                free(o->json);
                o->json = jb;
            }
            o->kind = p->types[G->ret].kind;
            switch (o->kind) {
                case PT_INT:
                case PT_FLOAT:
                case PT_BOOL:
                case PT_DURATION:
                    o->scalar = res.result;
                    break;
                case PT_STR:
                case PT_PATH:
                case PT_DIR:
                case PT_DATE:
                case PT_TIME:
                    o->str = strdup(fv_as_str(res.result)->data); /* NULL: out of memory */
                    break;
                default:
                    break;
            }
        }
        fv_decref(p, G->ret, res.result);
    }
    if (out)
        *out = o;
    else
        flow_outcome_free(o);
    return code;
}

int flow_outcome_code(const flow_outcome *o) {
    return o ? o->code : 2;
}
const char *flow_outcome_json(const flow_outcome *o) {
    return o ? o->json : "";
}
const char *flow_outcome_error(const flow_outcome *o) {
    return o ? o->error : "";
}

int flow_outcome_int(const flow_outcome *o, int64_t *v) {
    if (!o || (o->kind != PT_INT && o->kind != PT_DURATION)) return -1;
    *v = o->scalar.i;
    return 0;
}

int flow_outcome_float(const flow_outcome *o, double *v) {
    if (!o || o->kind != PT_FLOAT) return -1;
    *v = o->scalar.f;
    return 0;
}

int flow_outcome_bool(const flow_outcome *o, bool *v) {
    if (!o || o->kind != PT_BOOL) return -1;
    *v = o->scalar.i != 0;
    return 0;
}

const char *flow_outcome_str(const flow_outcome *o) {
    return o ? o->str : NULL;
}

void flow_outcome_free(flow_outcome *o) {
    if (!o) return;
    free(o->json);
    free(o->error);
    free(o->str);
    free(o);
}

void flow_program_close(flow_program *fp) {
    if (!fp) return;
    if (fp->rt) rt_close(fp->rt);
    jit_detach(fp->plan);
    fl_ctx *c = &fp->ctx;
    for (int i = 0; i < fp->nkv; i++)
        fl_free(c, fp->kv[i]);
    fl_free(c, fp->kv);
    for (uint32_t i = 0; i < fp->nregs; i++) {
        fl_free(c, fp->regs[i].lib);
        fl_free(c, fp->regs[i].symbol);
    }
    fl_free(c, fp->regs);
    plan_free(fp->plan);
    fl_free(c, fp->plan_path);
    free(fp);
}
