/*
 * cachekey.c — instance cache keys (see cachekey.h for what a key covers).
 *
 * DESIGN
 *   A key is SHA-256 over a concatenation of fields, and a digest does not depend on
 *   how its input is split into updates. So the fields of one key are encoded,
 *   little-endian as cachekey.h lays them out, into one buffer the ck_ctx owns and reuses
 *   (grown as needed, never shrunk), and the buffer is hashed with a single call of
 *   digest.c's hash_bytes (Nettle's SHA-256): per instance no allocation and no
 *   set-up, only the compression rounds. A task whose parameters are all scalars (int,
 *   duration, bool, float; up to CK_SCALARS_MAX) has its key's bytes, the same ones,
 *   laid out on the stack instead: no bounds check and growth per field (≈ 200 of a W1
 *   instance's instructions). Keys are bit for bit those of the first implementation,
 *   which updated the digest field by field (tests/unit/test_cachekey.c holds keys
 *   recorded from it). A task's identity is hashed once, on first use, the same way; a
 *   directory's manifest hash streams through an fl_sha256 of its own, since it is
 *   computed while an instance's key is being encoded.
 */
#define _GNU_SOURCE
#include "cachekey.h"
#include "ctx.h"
#include "expr_ops.h"
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walk.h"

#define CK_PATH_MAX 4096

/* Append n bytes to the key being encoded; a failed growth is remembered (oom)
 * and reported when the key is finished. */
static void put(ck_ctx *cx, const void *p, size_t n) {
    if (cx->len + n > cx->cap) {
        if (cx->oom) return;
        size_t cap = cx->cap ? cx->cap : 256;
        while (cap < cx->len + n) cap *= 2;
        uint8_t *b = fl_realloc(cx->plan->ctx, cx->buf, cap);
        if (!b) {
            cx->oom = 1;
            return;
        }
        cx->buf = b;
        cx->cap = cap;
    }
    memcpy(cx->buf + cx->len, p, n);
    cx->len += n;
}

static void put_u64(ck_ctx *cx, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(cx, b, 8);
}

static void put_str(ck_ctx *cx, const char *s, size_t n) {
    put_u64(cx, n);
    put(cx, s, n);
}

/* stat(path), through the folder kept open in cx when path is in it: fstatat then
 * looks up one name instead of every component of the path again (the kernel's
 * path walk was half of the no-op re-run's stat cost, at 2,000 files). The folder
 * is opened (O_PATH: search permission is enough, as for stat) when a second file
 * in a row is asked for in it, since files() lists a folder's files together; a
 * file in a folder of its own costs the one stat it did. A folder renamed or
 * replaced during the run is still seen as it was opened: the same as a run that
 * examined its files a moment earlier. */
static int ck_stat(ck_ctx *cx, const char *path, struct stat *sb) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path || !cx->plan) return stat(path, sb);
    size_t dlen = (size_t)(slash - path);
    if (cx->dir && cx->dirlen == dlen && !memcmp(cx->dir, path, dlen)) {
        if (!cx->dir_open) {
            int fd = open(cx->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) return stat(path, sb);
            cx->dirfd = fd;
            cx->dir_open = 1;
        }
        return fstatat(cx->dirfd, slash + 1, sb, 0);
    }
    if (cx->dir_open) close(cx->dirfd);
    cx->dir_open = 0;
    if (dlen + 1 > cx->dircap) {
        char *d = fl_realloc(cx->plan->ctx, cx->dir, dlen + 1);
        if (!d) return stat(path, sb); /* the folder is not kept: one stat, as before */
        cx->dir = d;
        cx->dircap = dlen + 1;
    }
    memcpy(cx->dir, path, dlen);
    cx->dir[dlen] = 0;
    cx->dirlen = dlen;
    return stat(path, sb);
}

int ck_file_hash(ck_ctx *cx, const char *path, fl_digest *out, char *err, size_t errlen) {
    struct stat sb;
    if (ck_stat(cx, path, &sb)) {
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
    if (cx->no_read) { /* dry run: its size or times changed since it was hashed */
        size_t n = strlen(cx->unread_names);
        if (n + 3 < sizeof cx->unread_names)
            snprintf(cx->unread_names + n, sizeof cx->unread_names - n, "%s%s", n ? "; " : "",
                     path);
        cx->unread++;
        memset(out, 0, sizeof *out);
        return 0;
    }
    if (hash_file(cx->plan->ctx, path, out, err, errlen)) return -1;
    cx->files_hashed++;
    if (cx->state && !cx->no_write) state_file_put(cx->state, path, &id, out);
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
        fl_sha256 md;
        sha256_init(&md);
        for (size_t i = 0; i < m.n; i++) {
            sha256_update(&md, m.v[i].text, strlen(m.v[i].text));
            sha256_update(&md, " ", 1);
            sha256_update(&md, m.v[i].name, strlen(m.v[i].name));
            sha256_update(&md, "\n", 1);
        }
        sha256_final(&md, out);
    }
    for (size_t i = 0; i < m.n; i++) fl_free(cx->plan->ctx, m.v[i].name);
    fl_free(cx->plan->ctx, m.v);
    return rc;
}

static int put_value(ck_ctx *cx, uint32_t type, fl_val v, char *err,
                     size_t errlen) {
    const fl_plan *p = cx->plan;
    const plan_type *t = &p->types[type];
    switch (t->kind) {
    case PT_INT:
    case PT_DURATION:
    case PT_BOOL:
        put_u64(cx, (uint64_t)v.i);
        return 0;
    case PT_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v.f, 8);
        put_u64(cx, bits);
        return 0;
    }
    case PT_STR:
    case PT_DATE:
    case PT_TIME:
        put_str(cx, fv_as_str(v)->data, (size_t)fv_as_str(v)->len);
        return 0;
    case PT_PATH:
    case PT_DIR: {
        const fv_str *s = fv_as_str(v);
        fl_digest h;
        /* a stored file is known by its place in the store, whatever the state
         * directory is called: a moved state directory keeps every key */
        const char *tail = store_path_tail(s->data);
        if (tail) put_str(cx, tail, strlen(tail));
        else put_str(cx, s->data, (size_t)s->len);
        int rc = t->kind == PT_PATH ? ck_file_hash(cx, s->data, &h, err, errlen)
                                    : ck_dir_hash(cx, s->data, &h, err, errlen);
        if (rc) return -1;
        put(cx, h.b, 32);
        return 0;
    }
    case PT_BYTES:
        put_str(cx, (const char *)fv_as_bytes(v)->data, (size_t)fv_as_bytes(v)->len);
        return 0;
    case PT_LIST: {
        const fv_list *l = fv_as_list(v);
        put_u64(cx, (uint64_t)l->len);
        for (int64_t i = 0; i < l->len; i++)
            if (put_value(cx, t->elem, l->items[i], err, errlen)) return -1;
        return 0;
    }
    case PT_RECORD:
        for (uint32_t i = 0; i < t->n; i++)
            if (put_value(cx, p->fields[t->first + i].type, fv_as_rec(v)->fields[i], err,
                          errlen))
                return -1;
        return 0;
    default:
        return 0;
    }
}

/* A plan constant by content: its type and payload, lists and records item by item. */
static void put_const(ck_ctx *cx, uint32_t id, int depth) {
    const fl_plan *p = cx->plan;
    const plan_value *c = &p->values[id];
    char buf[256];
    plan_type_text(p, c->type, buf, sizeof buf);
    put_str(cx, buf, strlen(buf));
    switch (p->types[c->type].kind) {
    case PT_STR:
    case PT_PATH:
    case PT_DIR:
    case PT_DATE: {
        const char *s = plan_str(p, c->u.s);
        put_str(cx, s, strlen(s));
        break;
    }
    case PT_LIST:
    case PT_RECORD:
        put_u64(cx, c->n);
        for (uint32_t i = 0; i < c->n && depth < 64; i++)
            put_const(cx, p->items[c->u.first + i], depth + 1);
        break;
    default:
        put_u64(cx, (uint64_t)c->u.i);
    }
}

static void put_lambda(ck_ctx *cx, uint32_t lam) {
    const fl_plan *p = cx->plan;
    if (lam == PLAN_NONE) {
        put_u64(cx, 0);
        return;
    }
    const plan_lambda *l = &p->lambdas[lam];
    put_u64(cx, l->ncode);
    for (uint32_t i = 0; i < l->ncode; i++) {
        const plan_instr *in = &p->code[l->first_code + i];
        put_u64(cx, in->op);
        put_u64(cx, in->b);
        put_u64(cx, (uint64_t)(int64_t)in->a);
        /* a constant operand: hash the constant, not its index */
        if ((in->op == EOP_CONST_I || in->op == EOP_CONST_F || in->op == EOP_CONST_S ||
             in->op == EOP_CONST_V) &&
            (uint32_t)in->a < p->n_values)
            put_const(cx, (uint32_t)in->a, 0);
    }
}

static void put_signature(ck_ctx *cx, const plan_task *t) {
    const fl_plan *p = cx->plan;
    char buf[512];
    for (uint32_t i = 0; i < t->nparams; i++) {
        plan_type_text(p, p->params[t->first_param + i].type, buf, sizeof buf);
        put_str(cx, buf, strlen(buf));
    }
    plan_type_text(p, t->ret, buf, sizeof buf);
    put_str(cx, buf, strlen(buf));
}

static void put_identity(ck_ctx *cx, uint32_t task, int depth) {
    const fl_plan *p = cx->plan;
    const plan_task *t = &p->tasks[task];
    put_u64(cx, t->kind);
    if (t->version != PLAN_NONE) {
        const char *v = plan_str(p, t->version);
        put_str(cx, "version", 7);
        put_str(cx, v, strlen(v));
    }
    put_signature(cx, t);
    if (t->image != PLAN_NONE) { /* only then: the keys of other tasks stay as they were */
        const char *img = cx->image_id && cx->image_id[task] ? cx->image_id[task]
                                                              : plan_str(p, t->image);
        const plan_container *co = plan_task_container(p, task);
        put_str(cx, "image", 5);
        put_str(cx, img, strlen(img));
        put_u64(cx, co && co->network);
    }
    switch (t->kind) {
    case TK_C: {
        const char *sym = plan_str(p, t->symbol);
        put_str(cx, sym, strlen(sym));
        if (t->version == PLAN_NONE)
            put(cx, cx->lib_hash ? cx->lib_hash[t->lib].b : p->libs[t->lib].sha256, 32);
        break;
    }
    case TK_SH:
        if (t->version == PLAN_NONE) put_lambda(cx, t->cmd);
        break;
    case TK_COMBINE:
        if (depth < 64) {
            put_identity(cx, t->first, depth + 1);
            put_identity(cx, t->second, depth + 1);
        }
        put_lambda(cx, t->stitch);
        for (uint32_t i = 0; i < p->tasks[t->second].nparams; i++) {
            put_u64(cx, p->binds[t->first_bind + i].kind);
            put_u64(cx, p->binds[t->first_bind + i].index);
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
        fl_free(cx->plan->ctx, cx->buf);
        fl_free(cx->plan->ctx, cx->dir);
    }
    if (cx->dir_open) close(cx->dirfd);
    cx->dir = NULL;
    cx->dirlen = cx->dircap = 0;
    cx->dir_open = 0;
    cx->ident = NULL;
    cx->ident_done = NULL;
    cx->buf = NULL;
    cx->len = cx->cap = 0;
    cx->oom = 0;
}

/* Hash the encoded key (cx->buf) into out with one call (digest.c's hash_bytes:
 * no EVP method or context per key), and empty the buffer. 0, or -1 (out of memory
 * while encoding). */
static int digest(ck_ctx *cx, fl_digest *out) {
    size_t len = cx->len;
    int oom = cx->oom;
    cx->len = 0;
    cx->oom = 0;
    if (oom) return -1;
    hash_bytes(cx->buf, len, out);
    return 0;
}

/* The task's identity hash (computed once per run), or NULL (out of memory). */
static const fl_digest *ident_of(ck_ctx *cx, uint32_t task) {
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
        cx->len = 0;
        put_str(cx, "flow-instance-key-1", 19);
        put_identity(cx, task, 0);
        if (digest(cx, &cx->ident[task])) return NULL;
        cx->ident_done[task] = 1;
    }
    return &cx->ident[task];
}
static const fl_digest *task_ident(ck_ctx *cx, uint32_t task, char *err, size_t errlen) {
    const fl_digest *id = ident_of(cx, task);
    if (!id) snprintf(err, errlen, "out of memory");
    return id;
}

/* The 8 bytes put_value encodes for a value of a scalar kind (int, duration, bool,
 * float) at b: 1, or 0 for any other kind (b untouched). */
static int scalar_le(int kind, fl_val v, uint8_t b[8]) {
    if (kind != PT_INT && kind != PT_DURATION && kind != PT_BOOL && kind != PT_FLOAT) return 0;
    uint64_t x;
    if (kind == PT_FLOAT) memcpy(&x, &v.f, 8);
    else x = (uint64_t)v.i;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(b, &x, 8);
#else
    for (int j = 0; j < 8; j++) b[j] = (uint8_t)(x >> (8 * j));
#endif
    return 1;
}

#define CK_SCALARS_MAX 16 /* the fixed-size path: tasks of up to this many scalar parameters */

int ck_instance_key(ck_ctx *cx, uint32_t task, const fl_val *args, fl_digest *out, char *err,
                    size_t errlen) {
    const fl_plan *p = cx->plan;
    const plan_task *t = &p->tasks[task];
    const fl_digest *id = task_ident(cx, task, err, errlen);
    if (!id) return -1;
    if (t->nparams <= CK_SCALARS_MAX) { /* all scalars: the same bytes, on the stack,
                                         * without put's bounds and growth per field */
        uint8_t b[32 + 8 * CK_SCALARS_MAX];
        uint32_t i = 0;
        memcpy(b, id->b, 32);
        while (i < t->nparams &&
               scalar_le(p->types[p->params[t->first_param + i].type].kind, args[i], b + 32 + 8 * i))
            i++;
        if (i == t->nparams) {
            hash_bytes(b, 32 + 8 * (size_t)i, out);
            return 0;
        }
    }
    cx->len = 0;
    put(cx, id->b, 32);
    int rc = 0;
    long unread = cx->unread;
    for (uint32_t i = 0; i < t->nparams && rc == 0; i++)
        rc = put_value(cx, p->params[t->first_param + i].type, args[i], err, errlen);
    if (rc == 0 && cx->unread != unread) { /* no_read: a file not hashed, no key */
        snprintf(err, errlen, "file metadata changed: %s", cx->unread_names);
        rc = -1;
    }
    if (rc) {
        cx->len = 0;
        cx->oom = 0;
        return -1;
    }
    if (digest(cx, out)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int ck_ident8(ck_ctx *cx, uint32_t task, uint64_t *ident, char *err, size_t errlen) {
    const fl_digest *id = task_ident(cx, task, err, errlen);
    if (!id) return -1;
    memcpy(ident, id->b, 8);
    return 0;
}

int ck_arg_part(ck_ctx *cx, uint32_t ty, fl_val v, uint64_t *out, char *err, size_t errlen) {
    uint8_t b[8];
    if (scalar_le(cx->plan->types[ty].kind, v, b)) {
        /* put_value's 8 bytes, without the buffer: the common case, cheaply */
        *out = fl_hash_bytes(b, 8);
        return 0;
    }
    long unread = cx->unread;
    cx->len = 0;
    int rc = put_value(cx, ty, v, err, errlen);
    if (rc || cx->oom || cx->unread != unread) {
        if (!rc && cx->oom) snprintf(err, errlen, "out of memory");
        else if (!rc) snprintf(err, errlen, "file metadata changed: %s", cx->unread_names);
        cx->len = 0;
        cx->oom = 0;
        return -1;
    }
    *out = fl_hash_bytes(cx->buf, cx->len);
    cx->len = 0;
    return 0;
}

int ck_path_part(ck_ctx *cx, const char *path, const fl_digest *h, uint64_t *out) {
    cx->len = 0;
    const char *tail = store_path_tail(path); /* as put_value writes a `path` */
    put_str(cx, tail ? tail : path, strlen(tail ? tail : path));
    put(cx, h->b, 32);
    if (cx->oom) {
        cx->len = 0;
        cx->oom = 0;
        return -1;
    }
    *out = fl_hash_bytes(cx->buf, cx->len);
    cx->len = 0;
    return 0;
}

int ck_key_parts(ck_ctx *cx, uint32_t task, const fl_val *args, uint64_t *ident,
                 uint64_t *inputs, char *err, size_t errlen) {
    const fl_plan *p = cx->plan;
    const plan_task *t = &p->tasks[task];
    if (ck_ident8(cx, task, ident, err, errlen)) return -1;
    for (uint32_t i = 0; i < t->nparams; i++)
        if (ck_arg_part(cx, p->params[t->first_param + i].type, args[i], &inputs[i], err, errlen))
            return -1;
    return 0;
}
