/* cachekey.c — instance cache keys (see cachekey.h). */
#define _GNU_SOURCE
#include "cachekey.h"
#include "expr_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walk.h"

#define CK_PATH_MAX 4096

static void put(EVP_MD_CTX *m, const void *p, size_t n) {
    EVP_DigestUpdate(m, p, n);
}

static void put_u64(EVP_MD_CTX *m, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(m, b, 8);
}

static void put_str(EVP_MD_CTX *m, const char *s, size_t n) {
    put_u64(m, n);
    put(m, s, n);
}

int ck_file_hash(ck_ctx *cx, const char *path, fl_digest *out, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb)) {
        snprintf(err, errlen, "input file %s: %s", path, strerror(errno));
        return -1;
    }
    state_file_id id = {(int64_t)sb.st_size,
                        (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec,
                        (int64_t)sb.st_ino,
                        (int64_t)sb.st_ctim.tv_sec * 1000000000 + sb.st_ctim.tv_nsec};
    if (cx->state && state_file_lookup(cx->state, path, &id, out) == 1) {
        cx->files_known++;
        return 0;
    }
    if (hash_file(cx->plan->ctx, path, out, err, errlen)) return -1;
    cx->files_hashed++;
    if (cx->state) state_file_put(cx->state, path, &id, out);
    return 0;
}

typedef struct manifest_line {
    char *name; /* relative path */
    char text[64 + 1 + 4 + 1];
} manifest_line;

typedef struct manifest {
    manifest_line *v;
    size_t n, cap;
} manifest;

typedef struct ck_walk {
    ck_ctx *cx;       /* for file hashes */
    const char *root; /* the folder, as given */
    manifest *m;      /* lines found */
} ck_walk;

/* One entry of an input folder (walk.c, following links like files() does: a
 * dangling link is not content). */
static int ck_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    ck_walk *w = ctx;
    if (e->type != WALK_REG) return 0;
    char full[CK_PATH_MAX + 8];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", w->root, e->rel) >= sizeof full) {
        snprintf(err, errlen, "path too long below %s", w->root);
        return -1;
    }
    fl_digest h;
    if (ck_file_hash(w->cx, full, &h, err, errlen)) return -1;
    manifest *m = w->m;
    fl_ctx *c = w->cx->plan->ctx;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        manifest_line *v = fl_reallocarray(c, m->v, cap, sizeof *v);
        if (!v) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        m->v = v;
        m->cap = cap;
    }
    manifest_line *l = &m->v[m->n];
    if (!(l->name = fl_strdup(c, e->rel))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->n++;
    char hex[65];
    hash_hex(&h, hex);
    snprintf(l->text, sizeof l->text, "%s %o", hex, (e->st->st_mode & 0111) ? 0555 : 0444);
    return 0;
}

static int walk(ck_ctx *cx, const char *root, manifest *m, char *err, size_t errlen) {
    int fd = walk_open(AT_FDCWD, root, 1);
    if (fd < 0) {
        snprintf(err, errlen, "input directory %s: %s", root, strerror(errno));
        return -1;
    }
    ck_walk w = {cx, root, m};
    int rc = walk_tree(fd, root, WALK_FOLLOW | WALK_STAT, ck_entry, &w, err, errlen);
    close(fd);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const manifest_line *)a)->name, ((const manifest_line *)b)->name);
}

int ck_dir_hash(ck_ctx *cx, const char *dir, fl_digest *out, char *err, size_t errlen) {
    manifest m = {0};
    int rc = walk(cx, dir, &m, err, errlen);
    if (rc == 0) {
        qsort(m.v, m.n, sizeof *m.v, by_name);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        for (size_t i = 0; i < m.n; i++) {
            put(md, m.v[i].text, strlen(m.v[i].text));
            put(md, " ", 1);
            put(md, m.v[i].name, strlen(m.v[i].name));
            put(md, "\n", 1);
        }
        unsigned int n = 32;
        EVP_DigestFinal_ex(md, out->b, &n);
        EVP_MD_CTX_free(md);
    }
    for (size_t i = 0; i < m.n; i++) fl_free(cx->plan->ctx, m.v[i].name);
    fl_free(cx->plan->ctx, m.v);
    return rc;
}

static int put_value(ck_ctx *cx, EVP_MD_CTX *m, uint32_t type, fl_val v, char *err,
                     size_t errlen) {
    const fl_plan *p = cx->plan;
    const plan_type *t = &p->types[type];
    switch (t->kind) {
    case PT_INT:
    case PT_DURATION:
    case PT_BOOL:
        put_u64(m, (uint64_t)v.i);
        return 0;
    case PT_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v.f, 8);
        put_u64(m, bits);
        return 0;
    }
    case PT_STR:
    case PT_DATE:
        put_str(m, fv_as_str(v)->data, (size_t)fv_as_str(v)->len);
        return 0;
    case PT_PATH:
    case PT_DIR: {
        const fv_str *s = fv_as_str(v);
        fl_digest h;
        /* a stored file is known by its place in the store, whatever the state
         * directory is called: a moved state directory keeps every key */
        const char *tail = store_path_tail(s->data);
        if (tail) put_str(m, tail, strlen(tail));
        else put_str(m, s->data, (size_t)s->len);
        int rc = t->kind == PT_PATH ? ck_file_hash(cx, s->data, &h, err, errlen)
                                    : ck_dir_hash(cx, s->data, &h, err, errlen);
        if (rc) return -1;
        put(m, h.b, 32);
        return 0;
    }
    case PT_BYTES:
        put_str(m, (const char *)fv_as_bytes(v)->data, (size_t)fv_as_bytes(v)->len);
        return 0;
    case PT_LIST: {
        const fv_list *l = fv_as_list(v);
        put_u64(m, (uint64_t)l->len);
        for (int64_t i = 0; i < l->len; i++)
            if (put_value(cx, m, t->elem, l->items[i], err, errlen)) return -1;
        return 0;
    }
    case PT_RECORD:
        for (uint32_t i = 0; i < t->n; i++)
            if (put_value(cx, m, p->fields[t->first + i].type, fv_as_rec(v)->fields[i], err,
                          errlen))
                return -1;
        return 0;
    default:
        return 0;
    }
}

/* A plan constant by content: its type and payload, lists and records item by item. */
static void put_const(const fl_plan *p, EVP_MD_CTX *m, uint32_t id, int depth) {
    const plan_value *c = &p->values[id];
    char buf[256];
    plan_type_text(p, c->type, buf, sizeof buf);
    put_str(m, buf, strlen(buf));
    switch (p->types[c->type].kind) {
    case PT_STR:
    case PT_PATH:
    case PT_DIR:
    case PT_DATE: {
        const char *s = plan_str(p, c->u.s);
        put_str(m, s, strlen(s));
        break;
    }
    case PT_LIST:
    case PT_RECORD:
        put_u64(m, c->n);
        for (uint32_t i = 0; i < c->n && depth < 64; i++)
            put_const(p, m, p->items[c->u.first + i], depth + 1);
        break;
    default:
        put_u64(m, (uint64_t)c->u.i);
    }
}

static void put_lambda(const fl_plan *p, EVP_MD_CTX *m, uint32_t lam) {
    if (lam == PLAN_NONE) {
        put_u64(m, 0);
        return;
    }
    const plan_lambda *l = &p->lambdas[lam];
    put_u64(m, l->ncode);
    for (uint32_t i = 0; i < l->ncode; i++) {
        const plan_instr *in = &p->code[l->first_code + i];
        put_u64(m, in->op);
        put_u64(m, in->b);
        put_u64(m, (uint64_t)(int64_t)in->a);
        /* a constant operand: hash the constant, not its index */
        if ((in->op == EOP_CONST_I || in->op == EOP_CONST_F || in->op == EOP_CONST_S ||
             in->op == EOP_CONST_V) &&
            (uint32_t)in->a < p->n_values)
            put_const(p, m, (uint32_t)in->a, 0);
    }
}

static void put_signature(const fl_plan *p, EVP_MD_CTX *m, const plan_task *t) {
    char buf[512];
    for (uint32_t i = 0; i < t->nparams; i++) {
        plan_type_text(p, p->params[t->first_param + i].type, buf, sizeof buf);
        put_str(m, buf, strlen(buf));
    }
    plan_type_text(p, t->ret, buf, sizeof buf);
    put_str(m, buf, strlen(buf));
}

static void put_identity(ck_ctx *cx, EVP_MD_CTX *m, uint32_t task, int depth) {
    const fl_plan *p = cx->plan;
    const plan_task *t = &p->tasks[task];
    put_u64(m, t->kind);
    if (t->version != PLAN_NONE) {
        const char *v = plan_str(p, t->version);
        put_str(m, "version", 7);
        put_str(m, v, strlen(v));
    }
    put_signature(p, m, t);
    switch (t->kind) {
    case TK_C: {
        const char *sym = plan_str(p, t->symbol);
        put_str(m, sym, strlen(sym));
        if (t->version == PLAN_NONE)
            put(m, cx->lib_hash ? cx->lib_hash[t->lib].b : p->libs[t->lib].sha256, 32);
        break;
    }
    case TK_SH:
        if (t->version == PLAN_NONE) put_lambda(p, m, t->cmd);
        break;
    case TK_COMBINE:
        if (depth < 64) {
            put_identity(cx, m, t->first, depth + 1);
            put_identity(cx, m, t->second, depth + 1);
        }
        put_lambda(p, m, t->stitch);
        for (uint32_t i = 0; i < p->tasks[t->second].nparams; i++) {
            put_u64(m, p->binds[t->first_bind + i].kind);
            put_u64(m, p->binds[t->first_bind + i].index);
        }
        break;
    default:
        break;
    }
}

void ck_free(ck_ctx *cx) {
    if (cx->plan) {
        fl_free(cx->plan->ctx, cx->ident);
        fl_free(cx->plan->ctx, cx->ident_done);
    }
    EVP_MD_CTX_free(cx->mdctx);
    EVP_MD_free(cx->md);
    cx->ident = NULL;
    cx->ident_done = NULL;
    cx->mdctx = cx->md = NULL;
}

/* The digest context, reset for a new hash. Fetching SHA-256 explicitly once
 * avoids OpenSSL 3's implicit fetch on every hash (about a microsecond). */
static EVP_MD_CTX *md_begin(ck_ctx *cx) {
    if (!cx->md) {
        cx->md = EVP_MD_fetch(NULL, "SHA256", NULL);
        cx->mdctx = EVP_MD_CTX_new();
    }
    EVP_DigestInit_ex(cx->mdctx, cx->md, NULL);
    return cx->mdctx;
}

static const fl_digest *task_ident(ck_ctx *cx, uint32_t task) {
    const fl_plan *p = cx->plan;
    if (!cx->ident) {
        cx->ident = fl_calloc(p->ctx, p->n_tasks ? p->n_tasks : 1, sizeof *cx->ident);
        cx->ident_done = fl_calloc(p->ctx, p->n_tasks ? p->n_tasks : 1, 1);
        if (!cx->ident || !cx->ident_done) {
            fl_free(p->ctx, cx->ident);
            fl_free(p->ctx, cx->ident_done);
            cx->ident = NULL;
            cx->ident_done = NULL;
            return NULL;
        }
    }
    if (!cx->ident_done[task]) {
        EVP_MD_CTX *m = md_begin(cx);
        put_str(m, "flow-instance-key-1", 19);
        put_identity(cx, m, task, 0);
        unsigned int n = 32;
        EVP_DigestFinal_ex(m, cx->ident[task].b, &n);
        cx->ident_done[task] = 1;
    }
    return &cx->ident[task];
}

int ck_instance_key(ck_ctx *cx, uint32_t task, const fl_val *args, fl_digest *out, char *err,
                    size_t errlen) {
    const fl_plan *p = cx->plan;
    const plan_task *t = &p->tasks[task];
    const fl_digest *id = task_ident(cx, task);
    if (!id) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    EVP_MD_CTX *m = md_begin(cx);
    put(m, id->b, 32);
    int rc = 0;
    for (uint32_t i = 0; i < t->nparams && rc == 0; i++)
        rc = put_value(cx, m, p->params[t->first_param + i].type, args[i], err, errlen);
    unsigned int n = 32;
    EVP_DigestFinal_ex(m, out->b, &n);
    return rc;
}
