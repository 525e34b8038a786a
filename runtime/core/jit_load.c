/*
 * jit_load.c — libflow's side of the JIT (jit.h): the one dispatch point that runs
 * a lambda natively or interpreted (expr_run), and the loading of the JIT module.
 *
 * DESIGN
 *   The code generator (jit.c, with LLVM) lives in a separate shared object,
 *   libflow-jit.so, so that libflow, flowrun and every embedding program start
 *   without mapping libLLVM. jit_attach opens it with dlopen the first time a plan
 *   that has lambdas asks for native code; a plan without lambdas, `flowrun
 *   --version`, --no-jit and an embedding program that opted out never load it.
 *   It is opened once per process (pthread_once) and never closed: LLVM keeps
 *   global state, and code it made may still be referenced.
 *
 *   Where the module is: $FLOW_JIT_MODULE when set (a path; tests, unusual
 *   layouts), else flow's module folder lib/flow/ (modpath.h: beside the object
 *   that holds libflow, then the LIBDIR/flow the build was configured with). The
 *   same rule serves the build tree (build/bin, build/lib) and an install.
 *
 *   The module gets a table of the runtime functions it calls (jit_abi.h): it
 *   checks the table's ABI version and refuses a mismatch; libflow exports only
 *   flow_*, so nothing else reaches it.
 *
 *   A module that is missing or refuses: jit_attach fails with one line naming
 *   the module and the reason, p->jit stays NULL and every lambda is interpreted
 *   (same results). The caller decides how to say so: flowrun prints one warning,
 *   an embedded run sends one to the context's log sink. The run goes on, as an
 *   optional accelerator that is absent should not fail a pipeline.
 *
 *   Layer: core.
 */
#define _GNU_SOURCE
#include "jit.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit_abi.h"
#include "modpath.h"

expr_native jit_native(const fl_plan *p, uint32_t lam) {
    const struct expr_jit *j = p->jit;
    return j && lam < j->n ? j->fn[lam] : NULL;
}

jit_kernel jit_range_kernel(const fl_plan *p, uint32_t node, int *nstages) {
    const struct expr_jit *j = p->jit;
    if (!j || !j->kern || node >= p->n_nodes || !j->kern[node]) return NULL;
    *nstages = j->kstages[node];
    return j->kern[node];
}

jit_thunk jit_task_thunk(const fl_plan *p, uint32_t ti) {
    const struct expr_jit *j = p->jit;
    return j && j->thunk && ti < p->n_tasks ? j->thunk[ti] : NULL;
}

int expr_run(const fl_plan *p, uint32_t lam, const fl_val *args, fl_val *out,
             expr_error *err) {
    const struct expr_jit *j = p->jit;
    if (j) {
        expr_native f = lam < j->n ? j->fn[lam] : NULL;
        if (f) return f(args, out, err);
    }
    return expr_eval(p, lam, args, out, err);
}

jit_stats jit_stats_of(const fl_plan *p) {
    jit_stats s;
    memset(&s, 0, sizeof s);
    if (p->jit) s = p->jit->stats;
    return s;
}

#if FLOW_HAVE_LLVM

int jit_available(void) {
    return 1;
}

/* ---- the table given to the module ---- */

static void *rt_malloc(fl_ctx *c, size_t n) {
    return fl_malloc(c, n);
}
static void *rt_calloc(fl_ctx *c, size_t n, size_t size) {
    return fl_calloc(c, n, size);
}
static void rt_free(fl_ctx *c, void *q) {
    fl_free(c, q);
}

static const jit_rt_table rt_table = {
    .abi = JIT_ABI_VERSION,
    .size = sizeof(jit_rt_table),
    .plan_size = sizeof(fl_plan),
    .jit_size = sizeof(struct expr_jit),
    .expr_step = expr_step,
    .expr_stack_types = expr_stack_types,
    .malloc = rt_malloc,
    .calloc = rt_calloc,
    .free = rt_free,
};

/* ---- loading, once per process ---- */

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static jit_module_ops mod_ops;  /* valid when mod_ok */
static int mod_ok;
static char mod_err[512];       /* why it could not be loaded, when !mod_ok */

/* dlopen path and take its entry point; 0, or -1 with mod_err set when it exists
 * but cannot be used (1 when there is no file at path: try the next place). */
static int try_module(const char *path, int must_exist) {
    if (!must_exist && access(path, F_OK) != 0) return 1;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(mod_err, sizeof mod_err, "JIT module %s: %s", path, e ? e : "cannot be loaded");
        return -1;
    }
    jit_module_init_fn init;
    *(void **)&init = dlsym(h, JIT_MODULE_ENTRY);
    if (!init) {
        snprintf(mod_err, sizeof mod_err, "JIT module %s: no %s (not a flow JIT module)", path,
                 JIT_MODULE_ENTRY);
        dlclose(h);
        return -1;
    }
    char err[300] = "";
    jit_module_ops ops;
    memset(&ops, 0, sizeof ops);
    if (init(&rt_table, &ops, err, sizeof err) != 0 || ops.abi != JIT_ABI_VERSION || !ops.attach ||
        !ops.detach) {
        snprintf(mod_err, sizeof mod_err, "JIT module %s: %s", path,
                 err[0] ? err : "refused the runtime's table (another build of flow?)");
        dlclose(h);
        return -1;
    }
    mod_ops = ops; /* h stays open for the life of the process */
    mod_ok = 1;
    return 0;
}

static void load_module(void) {
    const char *env = getenv("FLOW_JIT_MODULE");
    if (env && *env) {
        try_module(env, 1);
        return;
    }
    char path[PATH_MAX + 64];
    if (mod_find(JIT_MODULE_NAME, path, sizeof path) == 0 && try_module(path, 0) <= 0) return;
    snprintf(mod_err, sizeof mod_err,
             "JIT module %s not found (beside libflow, nor in %s; FLOW_JIT_MODULE names it)",
             JIT_MODULE_NAME, mod_configured_dir());
}

int jit_attach(fl_plan *p, char *err, size_t errlen) {
    if (p->jit) return 0;
    if (p->n_lambdas == 0) return 0; /* no lambdas: no JIT, and LLVM is not loaded */
    if (p->n_lambdas > JIT_MAX_LAMBDAS) {
        snprintf(err, errlen, "JIT: more than %d lambdas", JIT_MAX_LAMBDAS);
        return -1;
    }
    pthread_once(&load_once, load_module);
    if (!mod_ok) {
        snprintf(err, errlen, "%s", mod_err);
        return -1;
    }
    expr_jit *j = NULL;
    if (mod_ops.attach(p, &j, err, errlen) != 0) return -1;
    p->jit = j;
    return 0;
}

void jit_detach(fl_plan *p) {
    expr_jit *j = p->jit;
    if (!j) return;
    p->jit = NULL;
    mod_ops.detach(p, j); /* a JIT is attached only once the module is loaded */
}

#else /* !FLOW_HAVE_LLVM: the interpreter runs every lambda */

int jit_available(void) {
    return 0;
}

int jit_attach(fl_plan *p, char *err, size_t errlen) {
    (void)p;
    snprintf(err, errlen, "built without LLVM");
    return -1;
}

void jit_detach(fl_plan *p) {
    (void)p;
}

#endif
