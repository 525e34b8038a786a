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
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "expr.h"
#include "flow.h"
#include "flow_sched.h"
#include "refuse.h"
#include "rtcore.h"

#define EMBED_MAX_REGS 4096 /* registered symbols per program */

typedef struct embed_reg {
    char *lib;    /* library name as declared (`library wc = ...`: "wc") */
    char *symbol; /* symbol */
    void *fn;     /* the function */
} embed_reg;

struct flow_program {
    flow_plan *plan; /* owned */
    char *plan_path; /* where libraries are looked for (a file in that folder), or NULL */
    uint32_t graph;  /* selected flow, or PLAN_NONE */
    char **kv;       /* "name=text" parameter settings (owned) */
    int nkv, capkv;
    embed_reg *regs; /* registered symbols */
    uint32_t nregs, capregs;
    rt_runtime *rt; /* linked at the first run */
};

struct flow_outcome {
    int code;        /* exit code as flowrun's */
    char *json;      /* result as JSON, "" when none */
    char *error;     /* summary or error line, "" when none */
    uint32_t kind;   /* plan_type_kind of the result, PT_VOID when none */
    flow_val scalar; /* int / float / bool result */
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

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    if (!r) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    memcpy(r, s, n);
    return r;
}

static flow_program *program_new(flow_plan *p, const char *plan_path) {
    flow_program *fp = calloc(1, sizeof *fp);
    if (!fp) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    fp->plan = p;
    fp->plan_path = plan_path ? dupstr(plan_path) : NULL;
    fp->graph = PLAN_NONE;
    uint32_t nflows = 0, last = PLAN_NONE;
    for (uint32_t g = 0; g < p->n_graphs; g++)
        if (p->graphs[g].kind == PG_FLOW) {
            nflows++;
            last = g;
        }
    if (nflows == 1) fp->graph = last;
    return fp;
}

static int verify_lambdas(flow_plan *p, char *err, size_t errlen) {
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
    flow_plan *p = plan_read_file(plan_path, why, sizeof why);
    if (!p) {
        seterr(err, errlen, "%s: %s", plan_path, why);
        return NULL;
    }
    if (verify_lambdas(p, err, errlen)) {
        plan_free(p);
        return NULL;
    }
    return program_new(p, plan_path);
}

flow_program *flow_program_open_bytes(const void *bytes, size_t len, const char *lib_dir, char *err,
                                      size_t errlen) {
    char why[512];
    flow_plan *p = plan_read(bytes, len, why, sizeof why);
    if (!p) {
        seterr(err, errlen, "%s", why);
        return NULL;
    }
    if (verify_lambdas(p, err, errlen)) {
        plan_free(p);
        return NULL;
    }
    /* rt_open looks beside the plan file: name one inside lib_dir */
    char path[4096];
    if (lib_dir) snprintf(path, sizeof path, "%s/embedded.plan", lib_dir);
    return program_new(p, lib_dir ? path : NULL);
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
        fp->capregs = fp->capregs ? fp->capregs * 2 : 8;
        embed_reg *r = realloc(fp->regs, fp->capregs * sizeof *r);
        if (!r) {
            fputs("flow: out of memory\n", stderr);
            exit(2);
        }
        fp->regs = r;
    }
    fp->regs[fp->nregs++] = (embed_reg){dupstr(library), dupstr(symbol), fn};
    return 0;
}

int flow_program_select(flow_program *fp, const char *flow, char *err, size_t errlen) {
    for (uint32_t g = 0; g < fp->plan->n_graphs; g++)
        if (fp->plan->graphs[g].kind == PG_FLOW &&
            !strcmp(plan_str(fp->plan, fp->plan->graphs[g].name), flow)) {
            if (fp->graph != g)
                for (int i = 0; i < fp->nkv; i++)
                    free(fp->kv[i]);
            if (fp->graph != g) fp->nkv = 0;
            fp->graph = g;
            return 0;
        }
    seterr(err, errlen, "no flow named '%s' in the plan", flow);
    return -1;
}

int flow_program_set_param(flow_program *fp, const char *name, const char *text, char *err,
                           size_t errlen) {
    const flow_plan *p = fp->plan;
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
    flow_val v;
    char why[300];
    uint32_t type = p->params[G->first_param + i].type;
    if (fv_parse(p, type, text, &v, why, sizeof why) != 0) {
        char tname[200];
        plan_type_text(p, type, tname, sizeof tname);
        seterr(err, errlen, "parameter '%s' (%s): %s", name, tname, why);
        return -1;
    }
    fv_decref(p, type, v);
    size_t n = strlen(name) + strlen(text) + 2;
    char *kv = malloc(n);
    if (!kv) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    snprintf(kv, n, "%s=%s", name, text);
    for (int j = 0; j < fp->nkv; j++)
        if (!strncmp(fp->kv[j], name, strlen(name)) && fp->kv[j][strlen(name)] == '=') {
            free(fp->kv[j]);
            fp->kv[j] = kv;
            return 0;
        }
    if (fp->nkv == fp->capkv) {
        fp->capkv = fp->capkv ? fp->capkv * 2 : 8;
        char **q = realloc(fp->kv, (size_t)fp->capkv * sizeof *q);
        if (!q) {
            fputs("flow: out of memory\n", stderr);
            exit(2);
        }
        fp->kv = q;
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
    const flow_plan *p = fp->plan;
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
    static const uint32_t ok[] = {PT_STR, PT_PATH, PT_DIR, PT_DATE, PT__COUNT};
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
    flow_plan *p = fp->plan;
    uint32_t *reg_of = calloc(p->n_tasks ? p->n_tasks : 1, sizeof *reg_of); /* reg + 1 */
    if (!reg_of) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    if (fp->nregs) {
        uint32_t stand_sym = plan_intern_str(p, "getpid");
        uint32_t stand_lib = plan_intern_str(p, "libc.so.6");
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
    free(reg_of);
    return fp->rt ? 0 : -1;
}

static flow_outcome *outcome_new(int code, const char *error) {
    flow_outcome *o = calloc(1, sizeof *o);
    if (!o) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    o->code = code;
    o->json = dupstr("");
    o->error = dupstr(error ? error : "");
    o->kind = PT_VOID;
    return o;
}

static int fail_early(flow_outcome **out, int code, const char *msg, int quiet) {
    if (!quiet) fprintf(stderr, "flow: %s\n", msg);
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
    const flow_plan *p = fp->plan;
    char err[1024];
    if (fp->graph == PLAN_NONE)
        return fail_early(out, 2, "the plan has several flows (or none): select one", opts->quiet);
    const plan_graph *G = &p->graphs[fp->graph];
    const char *exname = opts->executor ? opts->executor : "inline";
    if (strcmp(exname, "inline") && strcmp(exname, "process")) {
        snprintf(err, sizeof err, "the %s executor is not available in this build", exname);
        return fail_early(out, 2, err, opts->quiet);
    }
    if (rt_refuse_undone(p, fp->graph, exname, NULL, err, sizeof err))
        return fail_early(out, 2, err, opts->quiet);
    if (!fp->rt && link_program(fp, err, sizeof err) != 0)
        return fail_early(out, 2, err, opts->quiet);
    flow_val *params = calloc(G->nparams ? G->nparams : 1, sizeof *params);
    if (!params) {
        fputs("flow: out of memory\n", stderr);
        exit(2);
    }
    if (params_resolve(p, fp->graph, fp->kv, fp->nkv, NULL, params, err, sizeof err) != 0) {
        free(params);
        return fail_early(out, 2, err, opts->quiet);
    }
    int jobs = opts->jobs > 0 ? opts->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1) jobs = 1;
    rt_executor *ex = !strcmp(exname, "process") ? rt_executor_process(fp->rt, jobs)
                                                 : rt_executor_inline(fp->rt, jobs);
    if (!ex) {
        for (uint32_t i = 0; i < G->nparams; i++)
            fv_decref(p, p->params[G->first_param + i].type, params[i]);
        free(params);
        snprintf(err, sizeof err, "cannot start the %s executor: %s", exname, strerror(errno));
        return fail_early(out, 2, err, opts->quiet);
    }
    char *ebuf = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&ebuf, &elen);
    sched_opts so;
    memset(&so, 0, sizeof so);
    so.jobs = jobs;
    so.max_map = opts->max_map;
    so.breadth = opts->breadth_first;
    so.work_dir = opts->work_dir ? opts->work_dir : ".flow/work/embed";
    so.work_root_len = opts->work_dir ? strlen(opts->work_dir) : strlen(".flow");
    sched_observer obs = {NULL, summary_collect, ef ? ef : stderr};
    so.obs = &obs;
    sched_outcome res;
    int code = sched_run(p, ex, fp->graph, params, &so, &res);
    ex->ops->destroy(ex);
    for (uint32_t i = 0; i < G->nparams; i++)
        fv_decref(p, p->params[G->first_param + i].type, params[i]);
    free(params);
    if (ef) fclose(ef);
    if (ebuf && *ebuf && !opts->quiet) fputs(ebuf, stderr);
    flow_outcome *o = outcome_new(code, ebuf);
    free(ebuf);
    if (res.has_result) {
        if (code == 0) {
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
                    o->str = dupstr(fv_as_str(res.result)->data);
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
    for (int i = 0; i < fp->nkv; i++)
        free(fp->kv[i]);
    free(fp->kv);
    for (uint32_t i = 0; i < fp->nregs; i++) {
        free(fp->regs[i].lib);
        free(fp->regs[i].symbol);
    }
    free(fp->regs);
    plan_free(fp->plan);
    free(fp->plan_path);
    free(fp);
}
