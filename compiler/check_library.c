/*
 * check_library.c — `library NAME = "path"` declarations: find the shared object,
 * hash it, read its dynamic symbols, and store in the plan the path flowrun will
 * look for.
 *
 * flowc never loads a library (no user code runs at compile time): it reads the
 * file's bytes, records their SHA-256 in the plan (flowrun refuses a library that
 * changed), and reads .dynsym itself (elf.c) so that `= lib.symbol` bindings are
 * checked with a "did you mean". A relative path is looked up beside the .flow
 * file that declares the library (the program, or a file it imports), then, for a bare file name, on FLOW_LIBRARY_PATH; a library that is not
 * found is a warning (its symbols are checked by flowrun). A path found beside the
 * source is stored relative to the plan's folder, so a plan and its libraries can
 * move together. A path "flow:NAME" (the standard library's libflow-std.so) names
 * one of flow's own modules: found in lib/flow/ beside this flowc (modpath.h, the
 * rule flowrun follows), hashed like any library, and stored as written.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "digest.h"
#include "elf.h"
#include "modpath.h"

char *chk_dir_of(fl_ctx *ctx, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return fl_strdup(ctx, ".");
    if (slash == path) return fl_strdup(ctx, "/");
    return fl_strndup(ctx, path, (size_t)(slash - path));
}

char *chk_relative_to(fl_ctx *ctx, const char *base, const char *target) {
    /* longest common prefix that ends at a component boundary of both */
    size_t common = 0;
    for (size_t i = 0;; i++) {
        bool bend = base[i] == '/' || base[i] == 0, tend = target[i] == '/' || target[i] == 0;
        if (bend && tend) common = i;
        if (!base[i] || !target[i] || base[i] != target[i]) break;
    }
    int ups = 0;
    for (const char *q = base + common; *q; q++)
        if (*q == '/' && q[1] && q[1] != '/') ups++;
    const char *rest = target + common;
    while (*rest == '/') rest++;
    char *out = fl_malloc(ctx, (size_t)ups * 3 + strlen(rest) + 2);
    if (!out) return NULL;
    out[0] = 0;
    for (int k = 0; k < ups; k++) strcat(out, "../");
    strcat(out, rest[0] ? rest : ".");
    return out;
}

/* the bytes of a regular file of at most CHK_MAX_LIB_BYTES, or NULL (not there, not
 * readable, too large, or out of memory: the context tells that one apart) */
static uint8_t *read_file(fl_ctx *ctx, const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > CHK_MAX_LIB_BYTES) {
        fclose(f);
        return NULL;
    }
    uint8_t *buf = fl_malloc(ctx, (size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)st.st_size) {
        fl_free(ctx, buf);
        return NULL;
    }
    *len = n;
    return buf;
}

void chk_library(chk_ctx *c, chk_decl *dc) {
    const fl_node *lib = dc->ast;
    fl_plan *p = c->plan;
    uint32_t li = PLAN_PUSH(p, libs);
    dc->index = li;
    p->libs[li].name = plan_intern_str(p, dc->qname);
    const char *as_written = lib->sval ? lib->sval : "";
    p->libs[li].path = plan_intern_str(p, as_written);
    if (!as_written[0]) {
        diag_error(c->d, lib->span, NULL, "library '%s' has an empty path", lib->name);
        return;
    }
    fl_ctx *ctx = c->ctx;
    /* beside the file that declares it: the program, or an imported file */
    const char *declared_in = c->mod > 0 ? c->mods[c->mod].path : c->opt->source_path;
    char *srcdir = chk_dir_of(ctx, declared_in ? declared_in : "x");
    /* "flow:NAME" is one of flow's own modules (lib/flow/, modpath.h): looked for
     * beside this flowc's libflow, never beside the source, and stored as written */
    const char *modname = mod_lib_name(as_written);
    char modpath[PATH_MAX];
    char *full = !srcdir ? NULL
                 : modname ? fl_strdup(ctx, mod_find(modname, modpath, sizeof modpath) == 0
                                                ? modpath : "")
                 : as_written[0] == '/' ? fl_strdup(ctx, as_written)
                                        : fl_sprintf(ctx, "%s/%s", srcdir, as_written);
    if (!full) { /* out of memory: the driver stops */
        fl_free(ctx, srcdir);
        return;
    }
    size_t len = 0;
    uint8_t *buf = read_file(ctx, full, &len);
    bool via_env = false;
    if (!buf && (modname || (as_written[0] != '/' && !strchr(as_written, '/')))) {
        const char *env = getenv("FLOW_LIBRARY_PATH");
        char try[PATH_MAX];
        for (const char *q = env; q && *q && !buf;) {
            const char *e = strchr(q, ':');
            size_t n = e ? (size_t)(e - q) : strlen(q);
            if (n && (int)n < PATH_MAX - 2 &&
                snprintf(try, sizeof try, "%.*s/%s", (int)n, q, modname ? modname : as_written) <
                    (int)sizeof try)
                buf = read_file(ctx, try, &len);
            q = e ? e + 1 : q + n;
        }
        via_env = buf != NULL;
    }
    if (!buf) {
        diag_warning(c->d, lib->span,
                     modname ? "flowrun looks for it in flow's module folder lib/flow/, then on "
                               "FLOW_LIBRARY_PATH; its symbols are checked then"
                             : "flowrun looks for it next to the plan, then on "
                               "FLOW_LIBRARY_PATH; its symbols are checked then",
                     "library file '%s' not found; symbols are not checked", as_written);
        fl_free(ctx, srcdir);
        fl_free(ctx, full);
        return;
    }
    fl_digest lh = {0};
    if (c->opt->plan_path) hash_bytes(buf, len, &lh); /* no plan written: no hash (compile.h) */
    memcpy(p->libs[li].sha256, lh.b, sizeof lh.b);
    char err[160] = "out of memory";
    dc->syms = fl_calloc(ctx, 1, sizeof *dc->syms);
    if (!dc->syms || elf_dynsyms(ctx, buf, len, dc->syms, err, sizeof err)) {
        diag_error(c->d, lib->span, NULL, "cannot read library '%s': %s", as_written, err);
        if (dc->syms) elf_symtab_free(dc->syms);
        fl_free(ctx, dc->syms);
        dc->syms = NULL;
        dc->bad = true;
    }
    if (!via_env && !modname && as_written[0] != '/') {
        /* store the path relative to the plan file's folder */
        char *plandir = chk_dir_of(ctx, c->opt->plan_path ? c->opt->plan_path
                                    : (c->opt->source_path ? c->opt->source_path : "x"));
        char rfull[PATH_MAX], rbase[PATH_MAX];
        if (plandir && realpath(full, rfull) && realpath(plandir, rbase)) {
            char *rel = chk_relative_to(ctx, rbase, rfull);
            if (rel) p->libs[li].path = plan_intern_str(p, rel);
            fl_free(ctx, rel);
        }
        fl_free(ctx, plandir);
    }
    fl_free(ctx, buf);
    fl_free(ctx, srcdir);
    fl_free(ctx, full);
}
