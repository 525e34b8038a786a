/*
 * check_module.c — `import` declarations: finding, reading and parsing the
 * imported files, the module table, and names qualified by a module (`m.clean`).
 *
 * DESIGN
 * A compilation is a table of modules: module 0 is the program flowc was given,
 * the others are the files it imports, directly or through other imports, each
 * loaded once. chk_modules_load fills the table breadth-first, in source order,
 * so the result does not depend on the working directory or on timing: module i's
 * imports are resolved (beside module i's file, then each -I folder, FLOW_PATH,
 * the installed share/flow), read (a regular file of at most CHK_MAX_SOURCE
 * bytes, else one error at the import) and parsed into the compilation's scratch
 * arena. A file already in the table (same realpath) is not loaded again: a
 * diamond (A imports B and C, both import D) compiles D once. Cycles are found
 * afterwards by a depth-first walk over the import edges and reported at the
 * import that closes the cycle, with a note at the import it came through.
 *
 * Every declaration of module i lives in the checker's one declaration table
 * under its qualified name: the module's prefix (the chain of import names from
 * the program, "common." or "b.d."; "" for the program itself) then its own name.
 * That qualified name is what the plan records for tasks, groups and libraries, so
 * instance names read `common.clean[3]`. Inside module i, names are looked up with
 * i's prefix (chk_find_decl), and `alias.name` through i's own imports
 * (chk_find_qualified): a module sees only what it declares and what it imports.
 * While a module's declarations or a group's body are checked, the diagnostics
 * print that module's file and lines (chk_enter_module swaps the diag's source).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "digest.h"

#define CHK_MAX_MODULES 1000          /* files one compilation may import */
#define CHK_MAX_SOURCE (64u << 20)    /* an imported file larger than this is refused */

/* Switch the current module: lookups use its names, diagnostics its file. */
int chk_enter_module(chk_ctx *c, int m) {
    int prev = c->mod;
    if (m < 0 || m >= c->nmods) return prev;
    c->mod = m;
    /* the locs added from now on are in m's file */
    if (c->nlocruns == c->caplocruns) {
        int cap = c->caplocruns ? c->caplocruns * 2 : 16;
        struct chk_locrun *r = fl_reallocarray(c->ctx, c->locruns, (size_t)cap, sizeof *r);
        if (r) {
            c->locruns = r;
            c->caplocruns = cap;
        }
    }
    if (c->nlocruns < c->caplocruns)
        c->locruns[c->nlocruns++] = (struct chk_locrun){c->plan->n_locs, m};
    const chk_module *md = &c->mods[m];
    c->diag->file = c->mute.file = md->path;
    c->diag->src = c->mute.src = md->src;
    c->diag->len = c->mute.len = md->len;
    return prev;
}

chk_decl *chk_find_decl_in(chk_ctx *c, int m, const char *name) {
    if (m < 0 || m >= c->nmods || !name) return NULL;
    const char *pre = c->mods[m].prefix;
    if (!pre[0]) {
        int i = chk_map_get(&c->names, name);
        return i < 0 ? NULL : &c->decls[i];
    }
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s%s", pre, name);
    if (n < 0 || (size_t)n >= sizeof buf) return NULL; /* longer than any declared name */
    int i = chk_map_get(&c->names, buf);
    return i < 0 ? NULL : &c->decls[i];
}

int chk_module_of_alias(chk_ctx *c, const char *alias) {
    const chk_import *im = chk_import_of_alias(c, alias);
    return im ? im->mod : -1;
}

const chk_import *chk_import_of_alias(chk_ctx *c, const char *alias) {
    if (!c->mods || !alias) return NULL;
    const chk_module *md = &c->mods[c->mod];
    int k = chk_map_get(&md->aliases, alias);
    return k < 0 ? NULL : &md->imports[k];
}

chk_decl *chk_find_qualified(chk_ctx *c, const char *alias, const char *name, fl_span at) {
    int m = chk_module_of_alias(c, alias);
    if (m < 0) return NULL; /* not an import, or one that failed (reported) */
    chk_decl *dc = chk_find_decl_in(c, m, name);
    if (dc) return dc;
    char hb[160];
    chk_cand_reset(c);
    for (int i = 0; i < c->ndecls; i++)
        if (c->decls[i].mod == m && c->decls[i].kind != DK_LIB)
            chk_cand_add(c, c->decls[i].ast->name);
    diag_error(c->d, at, chk_hint_closest(c, name, hb, sizeof hb),
               "module '%s' (%s) declares no '%s'", alias, c->mods[m].path, name);
    return NULL;
}

bool chk_hides_import(chk_ctx *c, const char *name, fl_span at, const char *what) {
    const chk_import *im = chk_import_of_alias(c, name);
    if (!im) return false;
    diag_error(c->d, at, "choose another name, or import the file as another: "
                         "import \"...\" as NAME",
               "%s '%s' would hide the import of the same name", what, name);
    diag_note(c->d, im->at->span, "'%s' is imported here", name);
    return true;
}

/* a name a user could write: [A-Za-z_][A-Za-z0-9_]* */
static bool is_ident(const char *s, size_t n) {
    if (!n || !(s[0] == '_' || (s[0] | 32) >= 'a') || (s[0] | 32) > 'z') return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z')))
            return false;
    }
    return true;
}

/* the file of an import: the first candidate that exists, as the user will read it
 * (the folder it was found in joined with the path); NULL when none (or no memory) */
static char *find_file(chk_ctx *c, const char *importer, const char *rel, bool beside) {
    fl_ctx *ctx = c->ctx;
    struct stat st;
    if (rel[0] == '/') return stat(rel, &st) ? NULL : fl_strdup(ctx, rel);
    if (beside) {
        char *dir = chk_dir_of(ctx, importer);
        char *f = dir ? fl_sprintf(ctx, "%s/%s", dir, rel) : NULL;
        fl_free(ctx, dir);
        if (!f || !stat(f, &st)) return f;
        fl_free(ctx, f);
    }
    for (int i = 0; i < c->opt->n_include; i++) {
        char *f = fl_sprintf(ctx, "%s/%s", c->opt->include[i], rel);
        if (!f || !stat(f, &st)) return f;
        fl_free(ctx, f);
    }
    const char *env = getenv("FLOW_PATH");
    for (const char *q = env; q && *q;) {
        const char *e = strchr(q, ':');
        size_t n = e ? (size_t)(e - q) : strlen(q);
        if (n) {
            char *f = fl_sprintf(ctx, "%.*s/%s", (int)n, q, rel);
            if (!f || !stat(f, &st)) return f;
            fl_free(ctx, f);
        }
        q = e ? e + 1 : q + n;
    }
    if (c->opt->share_dir) {
        char *f = fl_sprintf(ctx, "%s/%s", c->opt->share_dir, rel);
        if (!f || !stat(f, &st)) return f;
        fl_free(ctx, f);
    }
    return NULL;
}

/* The whole of a regular file, NUL-terminated; NULL with the reason in err. */
static char *read_source(fl_ctx *ctx, const char *path, size_t *len, char *err, size_t errlen) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below) */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is %s", path,
                 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        fclose(f);
        return NULL;
    }
    if ((unsigned long long)st.st_size > CHK_MAX_SOURCE) {
        snprintf(err, errlen, "%s is larger than %u MiB", path, CHK_MAX_SOURCE >> 20);
        fclose(f);
        return NULL;
    }
    char *buf = fl_malloc(ctx, (size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (buf && (ferror(f) || n != (size_t)st.st_size)) {
        snprintf(err, errlen, "cannot read %s: %s", path, ferror(f) ? strerror(errno) :
                 "it changed while being read");
        fl_free(ctx, buf);
        buf = NULL;
    } else if (!buf) {
        snprintf(err, errlen, "out of memory");
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Room for one more module (out of memory: false, the context says so). */
static bool grow_mods(chk_ctx *c) {
    if (c->nmods < c->capmods) return true;
    int cap = c->capmods ? c->capmods * 2 : 8;
    chk_module *m = fl_reallocarray(c->ctx, c->mods, (size_t)cap, sizeof *m);
    if (!m) return false;
    memset(m + c->capmods, 0, (size_t)(cap - c->capmods) * sizeof *m);
    c->mods = m;
    c->capmods = cap;
    return true;
}

static bool add_import(chk_ctx *c, int m, const char *alias, const fl_node *at, int target) {
    chk_module *md = &c->mods[m];
    if (md->nimports == md->capimports) {
        int cap = md->capimports ? md->capimports * 2 : 4;
        chk_import *im = fl_reallocarray(c->ctx, md->imports, (size_t)cap, sizeof *im);
        if (!im) return false;
        md->imports = im;
        md->capimports = cap;
    }
    md->imports[md->nimports] = (chk_import){alias, at, target};
    if (chk_map_put(c->ctx, &md->aliases, alias, md->nimports) < 0) return false;
    md->nimports++;
    return true;
}

/* One `import` of module m: resolve, read and parse it (or find it loaded). */
static void load_import(chk_ctx *c, int m, const fl_node *imp) {
    fl_ctx *ctx = c->ctx;
    const char *rel, *alias;
    bool std = imp->b != NULL;
    fl_span at = imp->b ? imp->b->span : imp->span;
    if (std) {
        if (strcmp(imp->b->name, "std")) {
            diag_error(c->d, at, "import a file by its path: import \"name.flow\"",
                       "unknown module '%s' (the only named module is std)", imp->b->name);
            return;
        }
        rel = "std.flow";
        alias = "std";
    } else {
        if (!imp->sval) return; /* the parser said why */
        rel = imp->sval;
        if (!rel[0]) {
            diag_error(c->d, at, NULL, "an import needs a file name");
            return;
        }
        const char *base = strrchr(rel, '/');
        base = base ? base + 1 : rel;
        size_t n = strlen(base);
        if (n > 5 && !strcmp(base + n - 5, ".flow")) n -= 5;
        alias = imp->a ? imp->a->name : ast_strndup(c->ar, base, n);
        if (!alias) return; /* out of memory */
        if (!imp->a && !is_ident(alias, strlen(alias))) {
            diag_error(c->d, at, "name it: import \"...\" as NAME",
                       "'%s' is not a name to qualify declarations with", alias);
            return;
        }
    }
    fl_span aspan = imp->a ? imp->a->span : at;
    const chk_import *prev = NULL;
    int k = chk_map_get(&c->mods[m].aliases, alias);
    if (k >= 0) prev = &c->mods[m].imports[k];
    if (prev) {
        diag_error(c->d, aspan, "give one of them another name: import \"...\" as NAME",
                   "'%s' is imported twice", alias);
        diag_note(c->d, prev->at->span, "the first import of '%s' is here", alias);
        return;
    }
    char *found = find_file(c, c->mods[m].path, rel, !std);
    if (!found) {
        if (chk_oom(c)) return;
        add_import(c, m, alias, imp, -1); /* its uses stay quiet */
        diag_error(c->d, at,
                   std ? "the standard library is looked for on -I, FLOW_PATH and the installed "
                         "share/flow/"
                       : "looked beside this file, then on -I, FLOW_PATH and the installed "
                         "share/flow/",
                   std ? "cannot find the standard library (std.flow)" : "cannot find '%s'", rel);
        return;
    }
    char real[PATH_MAX];
    bool has_real = realpath(found, real) != NULL;
    for (int i = 0; has_real && i < c->nmods; i++)
        if (c->mods[i].real && !strcmp(c->mods[i].real, real)) {
            fl_free(ctx, found);
            for (int j = 0; j < c->mods[m].nimports; j++)
                if (c->mods[m].imports[j].mod == i) {
                    diag_error(c->d, at, NULL, "'%s' is imported twice", rel);
                    diag_note(c->d, c->mods[m].imports[j].at->span,
                              "it is first imported here as '%s'", c->mods[m].imports[j].alias);
                    return;
                }
            add_import(c, m, alias, imp, i); /* a diamond, or a cycle found later */
            return;
        }
    if (c->nmods >= CHK_MAX_MODULES) {
        diag_error(c->d, at, NULL, "more than %d imported files", CHK_MAX_MODULES);
        fl_free(ctx, found);
        return;
    }
    char err[PATH_MAX + 100];
    size_t len = 0;
    const flowc_observer *ob = c->opt->obs;
    const char *given = ob && ob->source && has_real ? ob->source(ob->user, real, &len) : NULL;
    char *src = given ? fl_malloc(ctx, len + 1) : read_source(ctx, found, &len, err, sizeof err);
    if (given && src) { /* the editor's text of the file (flowc lsp), not the disk's */
        memcpy(src, given, len);
        src[len] = 0;
    } else if (given) {
        snprintf(err, sizeof err, "out of memory");
    }
    if (!src) {
        if (!chk_oom(c)) diag_error(c->d, at, NULL, "cannot import: %s", err);
        add_import(c, m, alias, imp, -1);
        fl_free(ctx, found);
        return;
    }
    if (!grow_mods(c)) {
        fl_free(ctx, src);
        fl_free(ctx, found);
        return;
    }
    int nm = c->nmods++;
    chk_module *md = &c->mods[nm];
    memset(md, 0, sizeof *md);
    md->path = found;
    md->real = has_real ? fl_strdup(ctx, real) : NULL;
    md->src = src;
    md->len = len;
    md->prefix = fl_sprintf(ctx, "%s%s.", c->mods[m].prefix, alias);
    const flowc_observer *obs = ob;
    if (obs && obs->module) obs->module(obs->user, nm, md->path, md->real, m, imp->span);
    fl_digest h = {0};
    if (c->opt->plan_path) hash_bytes(src, len, &h); /* no plan written: no hash (compile.h) */
    memcpy(md->sha256, h.b, sizeof h.b);
    if (!md->prefix || !add_import(c, m, alias, imp, nm)) return;
    /* fl_parse starts the context's error afresh: an allocation that failed before it
     * (md->real, the run of locs) must stop the compile here, not be forgotten */
    if (chk_oom(c)) return;
    int saved = chk_enter_module(c, nm);
    if (chk_oom(c)) return;
    int before = c->diag->errors;
    md->prog = fl_parse(c->ar, c->diag, src, len);
    if (c->diag->errors != before) md->prog = NULL;
    chk_enter_module(c, saved);
}

/* depth-first over the import edges: a module met again on the stack closes a cycle */
static void find_cycles(chk_ctx *c, int m, int *state, int *via) {
    state[m] = 1;
    for (int k = 0; k < c->mods[m].nimports; k++) {
        int t = c->mods[m].imports[k].mod;
        if (t < 0) continue; /* not loaded (reported) */
        via[m] = k;
        if (state[t] == 1) {
            /* the cycle: t, then along via[] back to m, then t again */
            char chain[2048];
            size_t n = 0;
            int x = t;
            for (int steps = 0; steps <= c->nmods; steps++) {
                int w = snprintf(chain + n, sizeof chain - n, "%s -> ", c->mods[x].path);
                if (w < 0 || (size_t)w >= sizeof chain - n) break;
                n += (size_t)w;
                if (x == m) break;
                x = c->mods[x].imports[via[x]].mod;
            }
            snprintf(chain + n, sizeof chain - n, "%s", c->mods[t].path);
            int saved = chk_enter_module(c, m);
            diag_error(c->d, c->mods[m].imports[k].at->span,
                       "move what both need into a file that imports neither",
                       "import cycle: %s", chain);
            chk_enter_module(c, t);
            diag_note(c->d, c->mods[t].imports[via[t]].at->span, "the cycle starts here");
            chk_enter_module(c, saved);
        } else if (state[t] == 0) {
            find_cycles(c, t, state, via);
        }
    }
    state[m] = 2;
}

void chk_modules_load(chk_ctx *c, const fl_node *prog) {
    fl_ctx *ctx = c->ctx;
    if (!grow_mods(c)) return;
    chk_module *root = &c->mods[0];
    c->nmods = 1;
    root->path = c->diag->file ? c->diag->file : "<input>";
    root->src = c->diag->src;
    root->len = c->diag->len;
    root->prog = prog;
    root->prefix = "";
    char real[PATH_MAX];
    if (c->opt->source_path && realpath(c->opt->source_path, real))
        root->real = fl_strdup(ctx, real);
    if (chk_oom(c)) return;
    for (int m = 0; m < c->nmods && !chk_oom(c); m++) {
        const fl_node *pg = c->mods[m].prog;
        if (!pg) continue;
        int saved = chk_enter_module(c, m);
        for (int i = 0; i < pg->list.len && !chk_oom(c); i++)
            if (pg->list.items[i]->kind == AST_IMPORT) load_import(c, m, pg->list.items[i]);
        chk_enter_module(c, saved);
    }
    if (chk_oom(c)) return;
    int *state = fl_calloc(ctx, (size_t)c->nmods * 2, sizeof *state);
    if (!state) return;
    find_cycles(c, 0, state, state + c->nmods);
    fl_free(ctx, state);
}

/* The plan's list of imported sources: path relative to the program's folder (as
 * written when that cannot be computed) and the SHA-256 of the bytes compiled. */
void chk_modules_record(chk_ctx *c) {
    fl_ctx *ctx = c->ctx;
    fl_plan *p = c->plan;
    /* the file of every loc, from the runs chk_enter_module opened (none: all the
     * program's, and the section stays empty) */
    int r = 0, mod = 0;
    for (uint32_t l = 0; c->nmods > 1 && l < p->n_locs; l++) {
        for (; r < c->nlocruns && c->locruns[r].first_loc <= l; r++) mod = c->locruns[r].mod;
        uint32_t k = PLAN_PUSH(p, locsrc);
        p->locsrc[k] = (uint32_t)mod;
    }
    char *rootdir = c->mods && c->mods[0].real ? chk_dir_of(ctx, c->mods[0].real) : NULL;
    for (int m = 1; m < c->nmods; m++) {
        const chk_module *md = &c->mods[m];
        char *rel = rootdir && md->real ? chk_relative_to(ctx, rootdir, md->real) : NULL;
        uint32_t k = PLAN_PUSH(p, sources);
        p->sources[k].path = plan_intern_str(p, rel ? rel : md->path);
        memcpy(p->sources[k].sha256, md->sha256, sizeof md->sha256);
        fl_free(ctx, rel);
    }
    fl_free(ctx, rootdir);
}

void chk_modules_free(chk_ctx *c) {
    for (int m = 0; m < c->nmods; m++) {
        chk_module *md = &c->mods[m];
        if (m > 0) {
            fl_free(c->ctx, (char *)md->path);
            fl_free(c->ctx, (char *)md->src);
            fl_free(c->ctx, (char *)md->prefix);
        }
        fl_free(c->ctx, md->real);
        fl_free(c->ctx, md->imports);
        chk_map_free(c->ctx, &md->aliases);
    }
    fl_free(c->ctx, c->mods);
    fl_free(c->ctx, c->locruns);
    c->mods = NULL;
    c->nmods = c->capmods = 0;
}
