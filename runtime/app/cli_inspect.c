/*
 * cli_inspect.c — `flowrun inspect PLAN [--json|--yaml|--dot]` and `flowrun verify PLAN`.
 *
 * Both read the plan through plan_read_file, so a damaged, foreign or newer plan gives
 * exactly one line on stderr naming the file, and exit 2. inspect prints a summary for
 * people (or one of plan_emit's views); verify also finds each library the plan names
 * (beside the plan, then along FLOW_LIBRARY_PATH) and compares its SHA-256 with the one
 * flowc recorded.
 */
#define _GNU_SOURCE /* dlinfo */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


#include "cli.h"
#include "digest.h"
#include "modpath.h"
#include "plan.h"

#define INSPECT_TEXT 256 /* room for one type or constant in the summary */

static fl_plan *load(const char *cmd, const char *path) {
    char err[512];
    fl_plan *p = plan_read_file(flowrun_ctx(), path, err, sizeof err);
    if (!p) fprintf(stderr, "flowrun %s: %s: %s\n", cmd, path, err);
    return p;
}

static void print_params(const fl_plan *p, uint32_t first, uint32_t n, FILE *f) {
    char ty[INSPECT_TEXT], val[INSPECT_TEXT];
    fputc('(', f);
    for (uint32_t j = 0; j < n; j++) {
        const plan_param *a = &p->params[first + j];
        plan_type_text(p, a->type, ty, sizeof ty);
        fprintf(f, "%s%s: %s", j ? ", " : "", plan_str(p, a->name), ty);
        if (a->def != PLAN_NONE) {
            plan_value_text(p, a->def, val, sizeof val);
            fprintf(f, " = %s", val);
        }
    }
    fputc(')', f);
}

static void print_graphs(const fl_plan *p, plan_graph_kind kind, const char *title, FILE *f) {
    char ty[INSPECT_TEXT];
    bool any = false;
    for (uint32_t g = 0; g < p->n_graphs; g++) {
        const plan_graph *gr = &p->graphs[g];
        if (gr->kind != (uint32_t)kind) continue;
        if (!any) fprintf(f, "%s:\n", title);
        any = true;
        fprintf(f, "  %s", plan_str(p, gr->name));
        print_params(p, gr->first_param, gr->nparams, f);
        plan_type_text(p, gr->ret, ty, sizeof ty);
        fprintf(f, " -> %s", ty);
        if (gr->schedule != PLAN_NONE) fprintf(f, "  schedule %s", plan_str(p, gr->schedule));
        fprintf(f, "  (%u nodes)\n", gr->nnodes);
    }
}

/* A plan's 32-byte SHA-256 field as 64 hex digits (digest.h). */
static void hex(const uint8_t h[32], char out[65]) {
    fl_digest d;
    memcpy(d.b, h, 32);
    hash_hex(&d, out);
}

static void summary(const fl_plan *p, const char *path, FILE *f) {
    char ty[INSPECT_TEXT], h[65];
    struct stat st;
    long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    hex(p->source_sha256, h);
    fprintf(f, "plan %s: format %d, %lld bytes, compiled from %s (sha256 %.16s...)\n", path,
            PLAN_VERSION, size, plan_str(p, p->source), h);
    if (p->n_sources) fputs("imports:\n", f);
    for (uint32_t i = 0; i < p->n_sources; i++) {
        hex(p->sources[i].sha256, h);
        fprintf(f, "  %s  sha256 %.16s...\n", plan_str(p, p->sources[i].path), h);
    }
    print_graphs(p, PG_FLOW, "flows", f);
    print_graphs(p, PG_GROUP, "groups", f);
    if (p->n_tasks) fputs("tasks:\n", f);
    for (uint32_t i = 0; i < p->n_tasks; i++) {
        const plan_task *t = &p->tasks[i];
        fprintf(f, "  %s", plan_str(p, t->name));
        print_params(p, t->first_param, t->nparams, f);
        plan_type_text(p, t->ret, ty, sizeof ty);
        fprintf(f, " -> %s  ", ty);
        if (t->kind == TK_C)
            fprintf(f, "[c %s:%s]", plan_str(p, p->libs[t->lib].name), plan_str(p, t->symbol));
        else if (t->kind == TK_SH)
            fprintf(f, "[sh, lambda %u]", t->cmd);
        else
            fprintf(f, "[combine %s then %s]", plan_str(p, p->tasks[t->first].name),
                    plan_str(p, p->tasks[t->second].name));
        fputc('\n', f);
    }
    if (p->n_libs) fputs("libraries:\n", f);
    for (uint32_t i = 0; i < p->n_libs; i++) {
        hex(p->libs[i].sha256, h);
        fprintf(f, "  %s = \"%s\"  sha256 %.16s...\n", plan_str(p, p->libs[i].name),
                plan_str(p, p->libs[i].path), h);
    }
    fprintf(f,
            "counts: %u types, %u constants, %u libraries, %u tasks, %u graphs, %u nodes, "
            "%u lambdas (%u instructions), %u strings, %u source locations\n",
            p->n_types, p->n_values, p->n_libs, p->n_tasks, p->n_graphs, p->n_nodes, p->n_lambdas,
            p->n_code, p->n_stroff, p->n_locs);
}

int flowrun_cmd_inspect(int argc, char **argv) {
    enum { O_JSON = 256, O_YAML, O_DOT }; /* ids from 256 (cli.h); the formats start at 0 */
    static const struct option opts[] = {{"json", no_argument, NULL, O_JSON},
                                         {"yaml", no_argument, NULL, O_YAML},
                                         {"dot", no_argument, NULL, O_DOT},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *val;
    int fmt = -1; /* -1: the summary */
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun inspect", " (--json, --yaml, --dot)", "", opts, 0);
    for (int c; (c = cli_next(&l, &val)) != CLI_END;) {
        if (c == CLI_ERROR) return 2;
        if (c != CLI_ARG) { /* the last of --json, --yaml, --dot wins */
            fmt = c == O_JSON ? PLAN_EMIT_JSON : c == O_YAML ? PLAN_EMIT_YAML : PLAN_EMIT_DOT;
        } else if (path) {
            fputs("flowrun inspect: one plan at a time\n", stderr);
            return 2;
        } else {
            path = val;
        }
    }
    if (!path) {
        fputs("usage: flowrun inspect PLAN [--json|--yaml|--dot]\n", stderr);
        return 2;
    }
    fl_plan *p = load("inspect", path);
    if (!p) return 2;
    int rc = 0;
    if (fmt < 0)
        summary(p, path, stdout);
    else
        rc = plan_emit(p, (plan_emit_format)fmt, stdout) ? 2 : 0;
    if (fflush(stdout) != 0) rc = 2;
    if (rc)
        fprintf(stderr, "flowrun inspect: %s: cannot write the view: %s\n", path,
                ferror(stdout) ? strerror(errno) : "the emitter failed");
    plan_free(p);
    return rc;
}

/* A plan's text in a one-line message: control characters become '?'. */
static const char *one_line(const char *s, char *buf, size_t len) {
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/*
 * Symbols: each C task's symbol must be in its library. This default dlopens each
 * library (RTLD_LAZY | RTLD_LOCAL, as a run would load it) and dlsyms each symbol. The
 * runtime's linker may replace it with a strong definition anywhere in libflow (for
 * example one that also prepares the libffi call interfaces). It gets the plan and the
 * resolved path of each library (lib_paths[i] for p->libs[i]) and returns 0, or -1 with
 * one line in err.
 */
int flowrun_verify_link(const fl_plan *p, const char *const *lib_paths, char *err, size_t errlen);
__attribute__((weak)) int flowrun_verify_link(const fl_plan *p, const char *const *lib_paths,
                                              char *err, size_t errlen) {
    int rc = 0;
    char a[256], b[1024];
    for (uint32_t i = 0; i < p->n_libs && !rc; i++) {
        void *h = dlopen(lib_paths[i], RTLD_LAZY | RTLD_LOCAL);
        if (!h) {
            const char *why = dlerror();
            snprintf(err, errlen, "library %s: cannot load %s: %s",
                     one_line(plan_str(p, p->libs[i].name), a, sizeof a), lib_paths[i],
                     one_line(why ? why : "unknown error", b, sizeof b));
            rc = -1;
            break;
        }
        for (uint32_t t = 0; t < p->n_tasks && !rc; t++) {
            const plan_task *k = &p->tasks[t];
            if (k->kind != TK_C || k->lib != i || dlsym(h, plan_str(p, k->symbol))) continue;
            snprintf(err, errlen, "task %s: symbol %s not found in library %s (%s)",
                     one_line(plan_str(p, k->name), a, sizeof a),
                     one_line(plan_str(p, k->symbol), b, sizeof b), plan_str(p, p->libs[i].name),
                     lib_paths[i]);
            rc = -1;
        }
        dlclose(h);
    }
    for (char *c = err; rc && *c; c++) /* the library's name and path, too */
        if ((unsigned char)*c < 0x20) *c = '?';
    return rc;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A library path from the plan: absolute as is; else beside the plan, then in each
 * FLOW_LIBRARY_PATH folder (by its path, then by its file name); "flow:NAME" in flow's
 * module folder lib/flow/ (modpath.h), then on FLOW_LIBRARY_PATH. */
static bool find_library(const char *plan_path, const char *lib, char *out, size_t len) {
    const char *modname = mod_lib_name(lib); /* "flow:NAME": as link.c finds it */
    if (modname) {
        if (mod_find(modname, out, len) == 0 && is_file(out)) return true;
        lib = modname;
    } else if (lib[0] == '/') {
        snprintf(out, len, "%s", lib);
        return is_file(out);
    }
    const char *slash = strrchr(plan_path, '/');
    int dirlen = slash ? (int)(slash - plan_path) : 1;
    if (!modname &&
        (size_t)snprintf(out, len, "%.*s/%s", dirlen, slash ? plan_path : ".", lib) < len &&
        is_file(out))
        return true;
    const char *env = getenv("FLOW_LIBRARY_PATH");
    const char *base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
    while (env && *env) {
        const char *end = strchr(env, ':');
        int n = end ? (int)(end - env) : (int)strlen(env);
        if (n > 0) {
            if ((size_t)snprintf(out, len, "%.*s/%s", n, env, lib) < len && is_file(out))
                return true;
            if ((size_t)snprintf(out, len, "%.*s/%s", n, env, base) < len && is_file(out))
                return true;
        }
        env = end ? end + 1 : NULL;
    }
    /* a bare name ("libm.so.6") may be the system loader's to find, as at run time */
    if (!modname && !strchr(lib, '/')) {
        void *h = dlopen(lib, RTLD_LAZY | RTLD_LOCAL);
        char origin[PATH_MAX] = ""; /* the folder the loader took it from */
        bool ok = h && dlinfo(h, RTLD_DI_ORIGIN, origin) == 0 &&
                  (size_t)snprintf(out, len, "%s/%s", origin, lib) < len && is_file(out);
        if (h) dlclose(h);
        return ok;
    }
    return false;
}

int flowrun_cmd_verify(int argc, char **argv) {
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    const char *path = NULL, *val;
    int n = 0, c;
    cli_line l;
    cli_line_init(&l, argc, argv, "flowrun verify", " (usage: flowrun verify PLAN)", "", none, 0);
    while ((c = cli_next(&l, &val)) == CLI_ARG)
        if (n++ == 0) path = val;
    if (c == CLI_ERROR) return 2;
    if (n != 1) {
        fputs("usage: flowrun verify PLAN\n", stderr);
        return 2;
    }
    fl_plan *p = load("verify", path);
    if (!p) return 2;
    int rc = 0;
    char **found = calloc(p->n_libs ? p->n_libs : 1, sizeof *found);
    if (!found) {
        fprintf(stderr, "flowrun verify: %s: out of memory\n", path);
        plan_free(p);
        return 2;
    }
    static const uint8_t zero[32];
    for (uint32_t i = 0; i < p->n_libs && !rc; i++) {
        char nbuf[256], lbuf[1024];
        const char *lib = plan_str(p, p->libs[i].path);
        const char *name = one_line(plan_str(p, p->libs[i].name), nbuf, sizeof nbuf);
        char where[PATH_MAX];
        fl_digest h;
        char herr[PATH_MAX + 64];
        if (!find_library(path, lib, where, sizeof where)) {
            fprintf(stderr,
                    "flowrun verify: %s: library %s (\"%s\") not found beside the plan or in "
                    "FLOW_LIBRARY_PATH\n",
                    path, name, one_line(lib, lbuf, sizeof lbuf));
            rc = 2;
            break;
        }
        char wbuf[PATH_MAX];
        const char *shown = one_line(where, wbuf, sizeof wbuf); /* where, for messages */
        if (hash_file(p->ctx, where, &h, herr, sizeof herr) != 0) {
            fprintf(stderr, "flowrun verify: %s: library %s: cannot read %s: %s\n", path, name,
                    shown, strerror(errno));
            rc = 2;
            break;
        }
        if (!memcmp(p->libs[i].sha256, zero, 32)) {
            fprintf(stderr,
                    "flowrun verify: warning: library %s: the plan holds no hash for "
                    "it (flowc did not find it), found %s\n",
                    name, shown);
        } else if (memcmp(p->libs[i].sha256, h.b, 32) != 0) {
            char want[65], got[65];
            hex(p->libs[i].sha256, want);
            hash_hex(&h, got);
            fprintf(stderr,
                    "flowrun verify: warning: library %s (%s) has changed since the "
                    "plan was compiled (sha256 %.12s..., plan has %.12s...)\n",
                    name, shown, got, want);
        }
        found[i] = strdup(where);
        if (!found[i]) rc = 2;
    }
    if (!rc) {
        char err[512] = "";
        if (flowrun_verify_link(p, (const char *const *)found, err, sizeof err) != 0) {
            fprintf(stderr, "flowrun verify: %s: %s\n", path, err);
            rc = 2;
        }
    }
    if (!rc) printf("%s: ok\n", path);
    for (uint32_t i = 0; i < p->n_libs; i++)
        free(found[i]);
    free(found);
    plan_free(p);
    return rc;
}
