/*
 * store.c — the content-addressed store (see store.h for the layout).
 *
 * DESIGN. Writes never expose a partial object: content goes to tmp/ under a
 * unique name, is fsynced and made read-only, then renamed to its final name
 * objects/<2 hex>/<62 hex>. rename is atomic, so a reader (or a run resumed
 * after SIGKILL) sees either no object or a complete one; a leftover tmp file
 * is garbage that gc removes. Two processes storing the same content race
 * harmlessly: both renames put identical bytes under the same name.
 * Outputs that are moved in (task output files) are renamed, not copied, when
 * they live on the same file system as the store, so ingest costs one read
 * for the hash.
 *
 * Task output is hostile ground (docs/state.md, "What the store trusts"). It
 * is taken in through descriptors only (store_put_at, store_put_dir_fd): each
 * entry is opened relative to its folder with O_NOFOLLOW, must be a regular
 * file or a folder (a link, FIFO, device or socket is refused), and is renamed
 * in only when it is flowrun's own file with no other name; otherwise its
 * bytes are copied from the descriptor we opened. Nothing is ever resolved
 * twice by path on the task's side.
 *
 * Identity records. Every object's identity (size, inode, mtime, ctime, taken
 * after flowrun's own links to it, since a new link changes ctime) is appended
 * to store/identity, 64 bytes per object, and loaded into a hash table on first
 * use. Checking an object before it is served or handed to a task is one lstat
 * compared with its record; any difference means a re-hash, and a hash that no
 * longer matches quarantines the object (store/quarantine/) with every name
 * linked to it. An object without a record is trusted only after a re-hash.
 */
#define _GNU_SOURCE
#include "store.h"
#include "ctx.h"
#include "htab.h"
#include "value.h"
#include "walk.h"

#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_PATH_MAX 4096
#define STORE_IO_CHUNK (1u << 20) /* read/write granularity */
#define STORE_EARLY_WRITEBACK (1u << 20) /* outputs this large start their writeback before hashing */

int store_pathf(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int store_mkdir_p(const char *path, mode_t mode) {
    char buf[STORE_PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, mode) && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(buf, mode) && errno != EEXIST) return -1;
    return 0;
}

/* ---- the store and its identity records ---- */

/* One object's identity as flowrun last left it; 64 bytes on disk. */
typedef struct ident {
    fl_digest h;   /* the object */
    int64_t size;  /* -1: a tombstone (quarantined) */
    int64_t ino;
    int64_t mtime; /* ns */
    int64_t ctime; /* ns */
} ident;

struct fl_store {
    fl_ctx *ctx;               /* allocation (the opener's, kept) */
    char root[STORE_PATH_MAX]; /* <state>/store */
    int idfd;                  /* store/identity (append), -1 until first use */
    int lock_fd;               /* <state>/store/lock while store_lock holds it, else -1 */
    off_t id_loaded;           /* bytes of it read into the table */
    ident *ids;                /* the records, one per object, in the order first seen */
    size_t id_cap, id_n;       /* room in ids, and records in it */
    fl_htab id_tab;            /* an object's digest -> its index in ids (htab.h) */
};

fl_store *store_open(fl_ctx *ctx, const char *state_dir, char *err, size_t errlen) {
    fl_store *st = fl_calloc(ctx, 1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->ctx = ctx;
    st->idfd = -1;
    st->lock_fd = -1;
    int n = store_pathf(st->root, sizeof st->root, "%s/store", state_dir);
    if (n < 0 || strlen(st->root) >= sizeof st->root - 80) {
        snprintf(err, errlen, "state directory path too long");
        fl_free(ctx, st);
        return NULL;
    }
    const char *subs[] = {"objects", "tmp", "trees", "named", "quarantine"};
    for (int i = 0; i < 5; i++) {
        char p[STORE_PATH_MAX];
        store_pathf(p, sizeof p, "%s/%s", st->root, subs[i]);
        if (store_mkdir_p(p, 0755)) {
            snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            fl_free(ctx, st);
            return NULL;
        }
    }
    return st;
}

void store_close(fl_store *st) {
    if (!st) return;
    if (st->idfd >= 0) close(st->idfd);
    if (st->lock_fd >= 0) close(st->lock_fd); /* releases the lock */
    fl_free(st->ctx, st->ids);
    fl_htab_free(st->ctx, &st->id_tab);
    fl_free(st->ctx, st);
}

fl_ctx *store_ctx(const fl_store *st) {
    return st->ctx;
}

const char *store_root(const fl_store *st) {
    return st->root;
}

/* The lock is flock(2) on store/lock: runs hold it shared for their whole life,
 * gc exclusively, so gc never runs while a run may be storing objects it has not
 * recorded yet. The descriptor is close-on-exec; workers forked without exec
 * share it, which only lengthens the hold until they exit. */
int store_lock(fl_store *st, int exclusive, int wait) {
    if (st->lock_fd < 0) {
        char p[STORE_PATH_MAX];
        if (store_pathf(p, sizeof p, "%s/lock", st->root)) return -1;
        st->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (st->lock_fd < 0) return -1;
    }
    int how = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
    while (flock(st->lock_fd, how))
        if (errno != EINTR) return errno == EWOULDBLOCK ? 1 : -1;
    return 0;
}

static int64_t ns_of(struct timespec t) {
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* A digest's hash for the table: its first 8 bytes (SHA-256 is spread already). */
static uint64_t id_hash(const fl_digest *h) {
    uint64_t v;
    memcpy(&v, h->b, 8);
    return v;
}

/* The record of h in the table (a tombstone too), or NULL. */
static ident *id_lookup(const fl_store *st, const fl_digest *h) {
    uint64_t k = id_hash(h);
    for (fl_htab_slot *s = fl_htab_find(&st->id_tab, k); s && s->hash;
         s = fl_htab_next(&st->id_tab, s, k))
        if (!memcmp(st->ids[s->val].h.b, h->b, 32)) return &st->ids[s->val];
    return NULL;
}

/* Put a record into the table (a later one replaces an earlier). Out of memory,
 * the record is not kept: that costs a re-hash later, nothing more. */
static void id_insert(fl_store *st, const ident *r) {
    ident *e = id_lookup(st, &r->h);
    if (!e) {
        if (st->id_n == st->id_cap) {
            size_t cap = st->id_cap ? st->id_cap * 2 : 256;
            ident *v = fl_reallocarray(st->ctx, st->ids, cap, sizeof *v);
            if (!v) return;
            st->ids = v;
            st->id_cap = cap;
        }
        if (fl_htab_reserve(st->ctx, &st->id_tab, 1)) return;
        fl_htab_add(&st->id_tab, id_hash(&r->h), st->id_n);
        e = &st->ids[st->id_n++];
    }
    *e = *r;
}

/* Read what was appended to store/identity since we last looked (by us or another flowrun). */
static void id_load(fl_store *st) {
    if (st->idfd < 0) {
        char p[STORE_PATH_MAX];
        store_pathf(p, sizeof p, "%s/identity", st->root);
        st->idfd = open(p, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (st->idfd < 0) return;
    }
    struct stat sb;
    if (fstat(st->idfd, &sb) || sb.st_size <= st->id_loaded) return;
    for (;;) {
        ident buf[256];
        ssize_t r = pread(st->idfd, buf, sizeof buf, st->id_loaded);
        if (r < 0 && errno == EINTR) continue;
        if (r < (ssize_t)sizeof buf[0]) break; /* a torn last record is read next time */
        size_t k = (size_t)r / sizeof buf[0];
        for (size_t i = 0; i < k; i++) id_insert(st, &buf[i]);
        st->id_loaded += (off_t)(k * sizeof buf[0]);
    }
}

/* The record of h, or NULL (a tombstone counts as none). */
static const ident *id_find(fl_store *st, const fl_digest *h) {
    for (int pass = 0; pass < 2; pass++) {
        if (pass || st->idfd < 0) id_load(st);
        const ident *r = id_lookup(st, h);
        if (r && r->size != -1) return r;
    }
    return NULL;
}

/* Record h's identity as sb shows it: in the table and appended to the file. */
static void id_record(fl_store *st, const fl_digest *h, const struct stat *sb) {
    ident r = {*h, sb ? (int64_t)sb->st_size : -1, sb ? (int64_t)sb->st_ino : 0,
               sb ? ns_of(sb->st_mtim) : 0, sb ? ns_of(sb->st_ctim) : 0};
    if (st->idfd < 0) id_load(st);
    id_insert(st, &r);
    if (st->idfd >= 0 && write(st->idfd, &r, sizeof r) != (ssize_t)sizeof r) {
        /* not recorded on disk: a later run re-hashes the object once */
    }
}

static int id_same(const ident *r, const struct stat *sb) {
    return S_ISREG(sb->st_mode) && (int64_t)sb->st_size == r->size &&
           (int64_t)sb->st_ino == r->ino && ns_of(sb->st_mtim) == r->mtime &&
           ns_of(sb->st_ctim) == r->ctime;
}

/* After flowrun linked or installed h: its identity now (the link changed ctime). */
static void id_refresh(fl_store *st, const fl_digest *h) {
    char p[STORE_PATH_MAX];
    struct stat sb;
    store_object_path(st, h, p, sizeof p);
    if (lstat(p, &sb) == 0 && S_ISREG(sb.st_mode)) id_record(st, h, &sb);
}

void store_object_path(const fl_store *st, const fl_digest *h, char *buf, size_t len) {
    char hex[65];
    hash_hex(h, hex);
    store_pathf(buf, len, "%s/objects/%.2s/%s", st->root, hex, hex + 2);
}

/* Set a damaged object aside (store/quarantine/<hex>), with every name linked to
 * it (named/<hex>/), and forget its identity. */
static void quarantine(fl_store *st, const fl_digest *h) {
    char hex[65], obj[STORE_PATH_MAX], q[STORE_PATH_MAX], named[STORE_PATH_MAX];
    hash_hex(h, hex);
    store_object_path(st, h, obj, sizeof obj);
    store_pathf(q, sizeof q, "%s/quarantine/%s", st->root, hex);
    if (rename(obj, q)) unlink(obj);
    store_pathf(named, sizeof named, "%s/named", st->root);
    int nfd = walk_open(AT_FDCWD, named, 0);
    if (nfd >= 0) {
        walk_remove(nfd, hex);
        close(nfd);
    }
    id_record(st, h, NULL); /* a tombstone */
}

/* Hash the object at its path (never following a link); 0 when it is h. With
 * sb, the object's status when the hash was taken (unchanged while hashing). */
static int rehash(fl_store *st, const fl_digest *h, struct stat *sb) {
    char p[STORE_PATH_MAX], err[256];
    store_object_path(st, h, p, sizeof p);
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat a, b;
    fl_digest check;
    int rc = -1;
    if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) && hash_fd(st->ctx, fd, -1, 0, &check, err, sizeof err) == 0 &&
        fstat(fd, &b) == 0 && !memcmp(check.b, h->b, 32))
        rc = a.st_size == b.st_size && ns_of(a.st_mtim) == ns_of(b.st_mtim) ? 0 : -1;
    close(fd);
    if (rc == 0 && sb) *sb = b;
    return rc;
}

int store_check(fl_store *st, const fl_digest *h) {
    char p[STORE_PATH_MAX];
    store_object_path(st, h, p, sizeof p);
    struct stat sb;
    if (lstat(p, &sb)) return -1; /* missing */
    const ident *r = id_find(st, h);
    if (r && id_same(r, &sb)) return 0;
    if (rehash(st, h, &sb) == 0) {
        id_record(st, h, &sb);
        return 0;
    }
    quarantine(st, h);
    return -1;
}

int store_has(fl_store *st, const fl_digest *h) {
    return store_check(st, h) == 0;
}

int store_check_name(fl_store *st, const fl_digest *h, const char *path) {
    struct stat sb;
    const ident *r = id_find(st, h);
    if (r && lstat(path, &sb) == 0 && id_same(r, &sb)) return 0; /* the common case: one lstat */
    if (store_check(st, h)) return -1;
    /* the object is intact; the name is missing, damaged or another file: link it afresh */
    char obj[STORE_PATH_MAX];
    store_object_path(st, h, obj, sizeof obj);
    struct stat ob;
    if (lstat(obj, &ob)) return -1;
    if (lstat(path, &sb) == 0 && sb.st_ino == ob.st_ino && sb.st_dev == ob.st_dev) return 0;
    unlink(path);
    if (link(obj, path)) return -1;
    id_refresh(st, h);
    return 0;
}

/* Move a complete, fsynced temp file to the object's final name and record its identity. */
static int install(fl_store *st, const char *tmp, const fl_digest *h, char *err, size_t errlen) {
    char dst[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    store_object_path(st, h, dst, sizeof dst);
    store_pathf(dir, sizeof dir, "%s", dst);
    *strrchr(dir, '/') = 0;
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        unlink(tmp);
        return -1;
    }
    chmod(tmp, 0444); /* our own temp file in our own folder */
    if (rename(tmp, dst)) {
        snprintf(err, errlen, "cannot store %s: %s", dst, strerror(errno));
        unlink(tmp);
        return -1;
    }
    id_refresh(st, h);
    return 0;
}

static int tmp_file(fl_store *st, char *path, size_t len, char *err, size_t errlen) {
    store_pathf(path, len, "%s/tmp/obj-XXXXXX", st->root);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) snprintf(err, errlen, "cannot create a file in %s/tmp: %s", st->root, strerror(errno));
    return fd;
}

int store_put_bytes(fl_store *st, const void *data, size_t len, fl_digest *out, char *err,
                    size_t errlen) {
    hash_bytes(data, len, out);
    if (store_has(st, out)) return 0;
    char tmp[STORE_PATH_MAX];
    int fd = tmp_file(st, tmp, sizeof tmp, err, errlen);
    if (fd < 0) return -1;
    const uint8_t *p = data;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd)) {
        snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    return install(st, tmp, out, err, errlen);
}

static const char *kind_of(mode_t m) {
    return S_ISLNK(m)    ? "a symbolic link"
           : S_ISDIR(m)  ? "a folder"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
                                      : "not a regular file";
}

int store_put_at(fl_store *st, int dirfd, const char *name, const char *what, int move,
                 fl_digest *out, char *err, size_t errlen) {
    struct stat sb, sb2;
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW)) {
        snprintf(err, errlen, "%s: %s", what, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is %s; only regular files and folders are stored", what,
                 kind_of(sb.st_mode));
        return -1;
    }
    /* O_NONBLOCK: should a FIFO be swapped in meanwhile, opening it must not wait */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb2) || sb2.st_ino != sb.st_ino || sb2.st_dev != sb.st_dev ||
        !S_ISREG(sb2.st_mode)) {
        snprintf(err, errlen, "%s %s", what,
                 fd < 0 && errno == ELOOP ? "was replaced by a symbolic link"
                                          : "changed while being stored");
        if (fd >= 0) close(fd);
        return -1;
    }
    int big = sb.st_size >= STORE_EARLY_WRITEBACK;
    /* Renamed in only when it is our own file with no other name: a hard link
     * to anything else (state.db, a victim's file) is copied, never moved, and
     * a file of another user (run_as) is first made ours, or copied. */
    if (move && sb.st_nlink == 1 &&
        (sb.st_uid == geteuid() || fchown(fd, geteuid(), getegid()) == 0)) {
        if (hash_fd(st->ctx, fd, -1, big, out, err, errlen)) {
            close(fd);
            return -1;
        }
        if (store_has(st, out)) {
            close(fd);
            unlinkat(dirfd, name, 0);
            return 0;
        }
        char tmp[STORE_PATH_MAX];
        store_pathf(tmp, sizeof tmp, "%s/tmp/mv-XXXXXX", st->root);
        int tfd = mkostemp(tmp, O_CLOEXEC), moved = 0;
        if (tfd >= 0) {
            close(tfd);
            if (fchmod(fd, 0444) == 0 && fsync(fd) == 0 &&
                renameat(dirfd, name, AT_FDCWD, tmp) == 0) {
                struct stat now, after;
                /* what we renamed must be what we hashed, unchanged since */
                if (lstat(tmp, &now) || now.st_ino != sb.st_ino || now.st_dev != sb.st_dev ||
                    fstat(fd, &after) || after.st_size != sb.st_size ||
                    ns_of(after.st_mtim) != ns_of(sb.st_mtim) || after.st_nlink != 1) {
                    unlink(tmp);
                    close(fd);
                    snprintf(err, errlen, "%s changed while being stored", what);
                    return -1;
                }
                moved = 1;
            } else {
                unlink(tmp);
            }
        }
        if (moved) {
            close(fd);
            return install(st, tmp, out, err, errlen);
        }
        if (lseek(fd, 0, SEEK_SET) != 0) { /* another file system: copy, then remove */
            snprintf(err, errlen, "%s: %s", what, strerror(errno));
            close(fd);
            return -1;
        }
    }
    char tmp[STORE_PATH_MAX];
    int wfd = tmp_file(st, tmp, sizeof tmp, err, errlen);
    if (wfd < 0) {
        close(fd);
        return -1;
    }
    /* the hash is of the bytes written to our copy, whatever the source does meanwhile */
    int rc = hash_fd(st->ctx, fd, wfd, big, out, err, errlen);
    close(fd);
    if (rc == 0 && fsync(wfd)) {
        snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
        rc = -1;
    }
    close(wfd);
    if (rc) {
        unlink(tmp);
        return -1;
    }
    if (store_has(st, out)) {
        unlink(tmp);
    } else if (install(st, tmp, out, err, errlen)) {
        return -1;
    }
    if (move) unlinkat(dirfd, name, 0);
    return 0;
}

/* Split path into its folder (opened) and base name. -1 with err. */
static int open_parent(const char *path, char *base, size_t blen, char *err, size_t errlen) {
    char dir[STORE_PATH_MAX];
    if (store_pathf(dir, sizeof dir, "%s", path)) {
        snprintf(err, errlen, "path too long: %.200s", path);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    const char *b = slash ? slash + 1 : dir;
    if (!*b || store_pathf(base, blen, "%s", b)) {
        snprintf(err, errlen, "not a file name: %.200s", path);
        return -1;
    }
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    int fd = walk_open(AT_FDCWD, slash ? dir : ".", 1);
    if (fd < 0) snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return fd;
}

int store_put_file(fl_store *st, const char *path, int move, fl_digest *out, char *err,
                   size_t errlen) {
    char base[256];
    int dfd = open_parent(path, base, sizeof base, err, errlen);
    if (dfd < 0) return -1;
    int rc = store_put_at(st, dfd, base, path, move, out, err, errlen);
    close(dfd);
    return rc;
}

/* ---- directories ---- */
typedef struct dir_entry {
    char *name; /* relative path */
    fl_digest h;
    unsigned mode;
} dir_entry;

typedef struct dir_walk {
    fl_store *st;  /* where files go */
    const char *what; /* the folder, for messages */
    int move;        /* move files in and remove folders */
    dir_entry *v;    /* files stored */
    size_t n, cap;
} dir_walk;

static int put_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    dir_walk *w = ctx;
    if (strchr(e->name, '\n')) { /* the manifest has a line per file: no name may split one */
        snprintf(err, errlen, "%.3000s holds a name with a newline: not stored", w->what);
        return -1;
    }
    if (e->type == WALK_DIR) {
        if (e->post && w->move) unlinkat(e->dirfd, e->name, AT_REMOVEDIR);
        return 0;
    }
    char what[STORE_PATH_MAX];
    store_pathf(what, sizeof what, "%s/%s", w->what, e->rel);
    if (e->type != WALK_REG) {
        snprintf(err, errlen, "%.3000s is %s; only regular files and folders are stored", what,
                 e->type == WALK_LINK ? "a symbolic link" : kind_of(e->st ? e->st->st_mode : 0));
        return -1;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        dir_entry *v = fl_reallocarray(w->st->ctx, w->v, cap, sizeof *v);
        if (!v) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->v = v;
        w->cap = cap;
    }
    dir_entry *d = &w->v[w->n];
    d->name = fl_strdup(w->st->ctx, e->rel);
    d->mode = e->st && (e->st->st_mode & 0111) ? 0555 : 0444;
    if (!d->name) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (store_put_at(w->st, e->dirfd, e->name, what, w->move, &d->h, err, errlen)) {
        fl_free(w->st->ctx, d->name);
        return -1;
    }
    w->n++;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const dir_entry *)a)->name, ((const dir_entry *)b)->name);
}

int store_put_dir_fd(fl_store *st, int dirfd, const char *what, int move, fl_digest *out,
                     char *err, size_t errlen) {
    dir_walk w = {st, what, move, NULL, 0, 0};
    int rc = walk_tree(dirfd, what, WALK_STAT | (move ? WALK_POST : 0), put_entry, &w, err, errlen);
    if (rc == 0) {
        if (w.n) qsort(w.v, w.n, sizeof *w.v, by_name); /* an empty folder: w.v is NULL */
        fv_buf m = {0};
        for (size_t i = 0; i < w.n; i++) {
            char line[64 + 16];
            hash_hex(&w.v[i].h, line);
            int k = snprintf(line + 64, sizeof line - 64, " %o ", w.v[i].mode);
            fv_buf_put(&m, line, 64 + (size_t)k);
            fv_buf_put(&m, w.v[i].name, strlen(w.v[i].name));
            fv_buf_put(&m, "\n", 1);
        }
        rc = store_put_bytes(st, m.data ? (const void *)m.data : "", m.len, out, err, errlen);
        free(m.data); /* fv_buf: value.c's allocation */
    }
    for (size_t i = 0; i < w.n; i++) fl_free(st->ctx, w.v[i].name);
    fl_free(st->ctx, w.v);
    return rc;
}

int store_put_dir(fl_store *st, const char *dir, int move, fl_digest *out, char *err,
                  size_t errlen) {
    int fd = walk_open(AT_FDCWD, dir, 1);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = store_put_dir_fd(st, fd, dir, move, out, err, errlen);
    close(fd);
    if (rc == 0 && move) rmdir(dir);
    return rc;
}

int store_read(fl_store *st, const fl_digest *h, uint8_t **data, size_t *len) {
    char p[STORE_PATH_MAX];
    store_object_path(st, h, p, sizeof p);
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -1;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    uint8_t *buf = fl_malloc(st->ctx, n);
    while (buf && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    fl_digest check;
    if (!buf || got != n) {
        fl_free(st->ctx, buf);
        return -1;
    }
    hash_bytes(buf, n, &check);
    if (memcmp(check.b, h->b, 32)) {
        quarantine(st, h); /* damaged: never served; the producer will recompute it */
        fl_free(st->ctx, buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

int store_verify(fl_store *st, const fl_digest *h) {
    struct stat sb;
    if (rehash(st, h, &sb) == 0) {
        id_record(st, h, &sb);
        return 0;
    }
    char p[STORE_PATH_MAX];
    store_object_path(st, h, p, sizeof p);
    if (lstat(p, &sb) == 0) quarantine(st, h);
    return -1;
}

/* ---- trees and names ---- */

static int make_readonly(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    (void)ctx;
    (void)err;
    (void)errlen;
    if (e->type == WALK_DIR && e->post) {
        int fd = walk_open(e->dirfd, e->name, 0);
        if (fd >= 0) {
            fchmod(fd, 0555);
            close(fd);
        }
    }
    return 0;
}

/* A manifest's name stays inside the tree: relative, and no component empty, "." or
 * "..". (A name merely containing "..", like "v1..2.txt", is an ordinary file.) */
static int tree_name_ok(const char *name) {
    if (!*name || *name == '/') return 0;
    for (const char *c = name; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
        c += n;
        if (*c) c++;
        if (!*c && c[-1] == '/') return 0;
    }
    return 1;
}

/* Link every file of manifest m (length mlen, writable) below the folder tmp. */
static int link_manifest(fl_store *st, char *m, size_t mlen, const char *tmp, int record) {
    for (char *line = m, *end = m + mlen; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl || nl - line < 68) return -1;
        *nl = 0;
        fl_digest h;
        char *name = strchr(line + 65, ' ');
        if (hash_from_hex(line, &h) || !name || !tree_name_ok(name + 1)) return -1;
        name++;
        char obj[STORE_PATH_MAX], dst[STORE_PATH_MAX];
        store_object_path(st, &h, obj, sizeof obj);
        if (store_pathf(dst, sizeof dst, "%s/%s", tmp, name)) return -1;
        if (record) {
            id_refresh(st, &h); /* our link changed its ctime */
        } else {
            char *slash = strrchr(dst, '/');
            *slash = 0;
            store_mkdir_p(dst, 0755);
            *slash = '/';
            if (link(obj, dst)) return -1;
        }
        *nl = '\n';
        line = nl + 1;
    }
    return 0;
}

int store_tree(fl_store *st, const fl_digest *manifest, char *buf, size_t len, char *err,
               size_t errlen) {
    char hex[65];
    hash_hex(manifest, hex);
    store_pathf(buf, len, "%s/trees/%s", st->root, hex);
    if (access(buf, F_OK) == 0) return 0;
    uint8_t *m;
    size_t mlen;
    if (store_read(st, manifest, &m, &mlen)) {
        snprintf(err, errlen, "directory manifest %s is missing or damaged", hex);
        return -1;
    }
    char tmp[STORE_PATH_MAX];
    store_pathf(tmp, sizeof tmp, "%s/tmp/tree-XXXXXX", st->root);
    if (!mkdtemp(tmp)) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        fl_free(st->ctx, m);
        return -1;
    }
    chmod(tmp, 0755);
    if (link_manifest(st, (char *)m, mlen, tmp, 0)) {
        snprintf(err, errlen, "directory %s: an object of its manifest is missing", hex);
        fl_free(st->ctx, m);
        walk_remove_path(tmp);
        return -1;
    }
    int tfd = walk_open(AT_FDCWD, tmp, 0);
    if (tfd >= 0) {
        walk_tree(tfd, tmp, WALK_POST, make_readonly, NULL, NULL, 0);
        close(tfd);
    }
    if (rename(tmp, buf) && access(buf, F_OK) != 0) {
        snprintf(err, errlen, "cannot install %s: %s", buf, strerror(errno));
        fl_free(st->ctx, m);
        walk_remove_path(tmp);
        return -1;
    }
    if (access(tmp, F_OK) == 0) walk_remove_path(tmp); /* lost a race: another made it */
    chmod(buf, 0555);
    link_manifest(st, (char *)m, mlen, NULL, 1);
    fl_free(st->ctx, m);
    return 0;
}

int store_check_tree(fl_store *st, const fl_digest *manifest, const char *path) {
    if (store_check(st, manifest)) {
        walk_remove_path(path);
        return -1;
    }
    uint8_t *m;
    size_t n;
    if (store_read(st, manifest, &m, &n)) {
        walk_remove_path(path);
        return -1;
    }
    int tfd = walk_open(AT_FDCWD, path, 0), stale = tfd < 0, rc = 0;
    for (char *l = (char *)m, *end = (char *)m + n; l < end && rc == 0;) {
        char *nl = memchr(l, '\n', (size_t)(end - l));
        if (!nl) nl = end;
        fl_digest f;
        char *name = nl - l > 68 ? memchr(l + 65, ' ', (size_t)(nl - l - 65)) : NULL;
        if (!name || hash_from_hex(l, &f)) {
            rc = -1;
            break;
        }
        char rel[STORE_PATH_MAX];
        snprintf(rel, sizeof rel, "%.*s", (int)(nl - name - 1), name + 1);
        const ident *r = id_find(st, &f);
        struct stat sb;
        if (!stale && r && fstatat(tfd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0 && id_same(r, &sb)) {
            l = nl + 1;
            continue;
        }
        if (store_check(st, &f)) rc = -1; /* damaged: quarantined */
        char obj[STORE_PATH_MAX];
        struct stat ob;
        store_object_path(st, &f, obj, sizeof obj);
        if (rc == 0 && !stale &&
            (fstatat(tfd, rel, &sb, AT_SYMLINK_NOFOLLOW) || lstat(obj, &ob) ||
             sb.st_ino != ob.st_ino || sb.st_dev != ob.st_dev))
            stale = 1; /* a file of the tree is not the object: rebuild the tree */
        l = nl + 1;
    }
    fl_free(st->ctx, m);
    if (tfd >= 0) close(tfd);
    if (rc || stale) walk_remove_path(path);
    if (rc) return -1;
    if (stale) {
        char buf[STORE_PATH_MAX], err[256];
        return store_tree(st, manifest, buf, sizeof buf, err, sizeof err);
    }
    return 0;
}

int store_named(fl_store *st, const fl_digest *h, const char *name, char *buf, size_t len,
                char *err, size_t errlen) {
    char hex[65], dir[STORE_PATH_MAX], obj[STORE_PATH_MAX];
    hash_hex(h, hex);
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) name = "data";
    if (store_pathf(dir, sizeof dir, "%s/named/%s", st->root, hex) ||
        store_pathf(buf, len, "%s/%s", dir, name)) {
        snprintf(err, errlen, "output name too long: %s", name);
        return -1;
    }
    store_object_path(st, h, obj, sizeof obj);
    struct stat nb, ob;
    if (lstat(obj, &ob)) {
        snprintf(err, errlen, "object %s is missing", hex);
        return -1;
    }
    /* an existing name must be this very object (a name left from a damaged,
     * since recomputed object is another file: it is replaced) */
    if (lstat(buf, &nb) == 0) {
        if (nb.st_ino == ob.st_ino && nb.st_dev == ob.st_dev) return 0;
        unlink(buf);
    }
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (link(obj, buf) && errno != EEXIST) {
        snprintf(err, errlen, "cannot link %s: %s", buf, strerror(errno));
        return -1;
    }
    id_refresh(st, h);
    return 0;
}

static int cmp_hash(const void *a, const void *b) {
    return memcmp(a, b, 32);
}

/* Add to *k the files listed by every kept manifest (a kept hash whose tree
 * trees/<hash> exists): a directory's objects live as long as the directory. The
 * manifest is read as it is, not verified, so a dry run changes nothing. */
static int keep_tree_files(fl_store *st, fl_digest **k, size_t *n) {
    size_t n0 = *n, cap = *n;
    for (size_t i = 0; i < n0; i++) {
        char hex[65], p[STORE_PATH_MAX];
        hash_hex(&(*k)[i], hex);
        struct stat sb;
        if (store_pathf(p, sizeof p, "%s/trees/%s", st->root, hex) || stat(p, &sb) ||
            !S_ISDIR(sb.st_mode))
            continue;
        store_object_path(st, &(*k)[i], p, sizeof p);
        FILE *f = fopen(p, "re");
        if (!f) continue;
        char line[STORE_PATH_MAX + 80];
        while (fgets(line, sizeof line, f)) {
            fl_digest h;
            if (strlen(line) < 64 || hash_from_hex(line, &h)) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                fl_digest *m = fl_reallocarray(st->ctx, *k, cap, sizeof *m);
                if (!m) {
                    fclose(f);
                    return -1;
                }
                *k = m;
            }
            (*k)[(*n)++] = h;
        }
        fclose(f);
    }
    return 0;
}

/* ---- walking the store's own folders (walk.c) ---- */

typedef struct obj_walk {
    int (*fn)(const fl_digest *h, int dirfd, const char *name, void *ctx);
    void *ctx;
    char prefix[3]; /* the two-letter folder being walked */
} obj_walk;

static int obj_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    obj_walk *w = ctx;
    (void)err, (void)errlen;
    if (e->depth == 0) { /* objects/<2 hex>: anything else is not ours */
        if (e->type != WALK_DIR || strlen(e->name) != 2) return WALK_SKIP;
        memcpy(w->prefix, e->name, 3);
        return 0;
    }
    if (e->type == WALK_DIR) return WALK_SKIP;
    char hex[65];
    fl_digest h;
    if (strlen(e->name) != 62) return 0;
    snprintf(hex, sizeof hex, "%s%s", w->prefix, e->name);
    if (hash_from_hex(hex, &h)) return 0;
    return w->fn(&h, e->dirfd, e->name, w->ctx);
}

int store_objects_each(fl_store *st, int (*fn)(const fl_digest *h, int dirfd,
                                                 const char *name, void *ctx),
                       void *ctx) {
    char objs[STORE_PATH_MAX];
    if (store_pathf(objs, sizeof objs, "%s/objects", st->root)) return -1;
    int fd = walk_open(AT_FDCWD, objs, 0);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    obj_walk w = {fn, ctx, ""};
    char err[256];
    int rc = walk_tree(fd, objs, 0, obj_entry, &w, err, sizeof err);
    close(fd);
    return rc;
}

typedef struct collect {
    const fl_digest *keep;
    size_t nkeep;
    const store_gc_opts *o;
    long removed;
    uint64_t freed;
} collect;

static int collect_object(const fl_digest *h, int dirfd, const char *name, void *ctx) {
    collect *c = ctx;
    if (bsearch(h, c->keep, c->nkeep, sizeof *c->keep, cmp_hash)) return 0;
    struct stat sb;
    uint64_t size = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) ? 0 : (uint64_t)sb.st_size;
    if (!c->o->dry && unlinkat(dirfd, name, 0)) return 0;
    c->freed += size;
    c->removed++;
    if (c->o->each) c->o->each(h, size, c->o->ctx);
    return 0;
}

typedef struct sweep {
    int which; /* 0 trees, 1 tmp, 2 named, 3 quarantine */
    const fl_digest *keep;
    size_t nkeep;
} sweep;

static int sweep_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    sweep *w = ctx;
    (void)err, (void)errlen;
    if (e->name[0] == '.') return WALK_SKIP;
    fl_digest h;
    if ((w->which == 0 || w->which == 2) && strlen(e->name) == 64 &&
        !hash_from_hex(e->name, &h) && bsearch(&h, w->keep, w->nkeep, sizeof *w->keep, cmp_hash))
        return WALK_SKIP;
    struct stat sb;
    if (fstatat(e->dirfd, e->name, &sb, AT_SYMLINK_NOFOLLOW)) return WALK_SKIP;
    /* a temp file younger than an hour may belong to a run in progress */
    if (w->which == 1 && time(NULL) - sb.st_mtime < 3600) return WALK_SKIP;
    walk_remove(e->dirfd, e->name);
    return WALK_SKIP; /* the folder's own entries only */
}

long store_collect(fl_store *st, const fl_digest *keep, size_t nkeep, const store_gc_opts *o,
                   uint64_t *bytes_freed) {
    static const store_gc_opts none = {0, NULL, NULL};
    if (!o) o = &none;
    fl_digest *k = fl_reallocarray(st->ctx, NULL, nkeep ? nkeep : 1, sizeof *k);
    if (!k) return -1;
    if (nkeep) memcpy(k, keep, nkeep * sizeof *k);
    if (keep_tree_files(st, &k, &nkeep)) {
        fl_free(st->ctx, k);
        return -1;
    }
    qsort(k, nkeep, sizeof *k, cmp_hash);
    collect c = {k, nkeep, o, 0, 0};
    store_objects_each(st, collect_object, &c);
    if (!o->dry) { /* the two-letter folders left empty */
        char sub[STORE_PATH_MAX];
        for (int i = 0; i < 256; i++)
            if (store_pathf(sub, sizeof sub, "%s/objects/%02x", st->root, i) == 0) rmdir(sub);
    }
    long removed = c.removed;
    uint64_t freed = c.freed;
    /* trees and names of objects no longer kept, leftovers in tmp/, quarantined objects */
    const char *dirs[] = {"trees", "tmp", "named", "quarantine"};
    for (int i = 0; i < 4 && !o->dry; i++) {
        char p[STORE_PATH_MAX];
        store_pathf(p, sizeof p, "%s/%s", st->root, dirs[i]);
        int dfd = walk_open(AT_FDCWD, p, 0);
        if (dfd < 0) continue;
        sweep w = {i, k, nkeep};
        char err[256];
        walk_tree(dfd, p, 0, sweep_entry, &w, err, sizeof err);
        close(dfd);
    }
    /* the identity records: only those of objects still there (a fresh file, renamed in);
     * a dry run changes nothing */
    if (o->dry) {
        fl_free(st->ctx, k);
        if (bytes_freed) *bytes_freed = freed;
        return removed;
    }
    id_load(st);
    char idp[STORE_PATH_MAX], idt[STORE_PATH_MAX];
    store_pathf(idp, sizeof idp, "%s/identity", st->root);
    store_pathf(idt, sizeof idt, "%s/tmp/identity-XXXXXX", st->root);
    int tfd = mkostemp(idt, O_CLOEXEC);
    if (tfd >= 0) {
        int ok = 1;
        for (size_t i = 0; ok && i < st->id_n; i++) {
            ident *r = &st->ids[i];
            if (r->size == -1) continue;
            if (!bsearch(&r->h, k, nkeep, sizeof *k, cmp_hash)) {
                r->size = -1; /* gone */
                continue;
            }
            ok = write(tfd, r, sizeof *r) == (ssize_t)sizeof *r;
        }
        fchmod(tfd, 0644);
        if (ok && fsync(tfd) == 0 && rename(idt, idp) == 0) {
            close(st->idfd); /* the file we appended to is gone: start over on the new one */
            st->idfd = -1;
            st->id_loaded = 0;
            fl_htab_clear(&st->id_tab);
            st->id_n = 0;
        } else {
            unlink(idt);
        }
        close(tfd);
    }
    fl_free(st->ctx, k);
    if (bytes_freed) *bytes_freed = freed;
    return removed;
}

const char *store_path_tail(const char *path) {
    const char *at = NULL;
    for (const char *q = strstr(path, "store/"); q; q = strstr(q + 1, "store/"))
        if ((q == path || q[-1] == '/') && (!strncmp(q + 6, "named/", 6) || !strncmp(q + 6, "trees/", 6)) &&
            strspn(q + 12, "0123456789abcdef") >= 64 && (q[76] == '/' || q[76] == 0))
            at = q + 6; /* the last such place: the store's own */
    return at;
}

long store_gc(fl_store *st, const fl_digest *keep, size_t nkeep, uint64_t *bytes_freed) {
    return store_collect(st, keep, nkeep, NULL, bytes_freed);
}

/* A store path's hash: "/named/" or "/trees/", then 64 lowercase hex digits that
 * end the text or are followed by something else (hash_hex writes lowercase). */
static int lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

void store_refs_scan(const void *data, size_t len, void (*fn)(const fl_digest *h, void *ctx),
                     void *ctx) {
    const char *end = (const char *)data + len, *q = data;
    while (end - q >= 71) {
        q = memchr(q, '/', (size_t)(end - q - 70));
        if (!q) break;
        int i = 7;
        if (!memcmp(q + 1, "named/", 6) || !memcmp(q + 1, "trees/", 6))
            while (i < 71 && lower_hex(q[i])) i++;
        fl_digest h;
        if (i == 71 && (q + 71 == end || !lower_hex(q[71])) && !hash_from_hex(q + 7, &h)) {
            fn(&h, ctx);
            q += 71;
        } else {
            q++;
        }
    }
}
