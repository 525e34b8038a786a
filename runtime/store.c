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
 */
#define _GNU_SOURCE
#include "store.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_PATH_MAX 4096
#define STORE_IO_CHUNK (1u << 20) /* read/write granularity */
#define STORE_DIR_DEPTH 64        /* deepest directory we store */
#define STORE_EARLY_WRITEBACK (1u << 20) /* outputs this large start their writeback before hashing */

int store_pathf(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

struct flow_store {
    char root[STORE_PATH_MAX]; /* <state>/store */
    int lock_fd;               /* <state>/store/lock while store_lock holds it, else -1 */
};

static int mkdir_p(const char *path, mode_t mode) {
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

flow_store *store_open(const char *state_dir, char *err, size_t errlen) {
    flow_store *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int n = store_pathf(st->root, sizeof st->root, "%s/store", state_dir);
    if (n < 0 || (size_t)n >= sizeof st->root - 80) {
        snprintf(err, errlen, "state directory path too long");
        free(st);
        return NULL;
    }
    st->lock_fd = -1;
    const char *subs[] = {"objects", "tmp", "trees", "named"};
    for (int i = 0; i < 4; i++) {
        char p[STORE_PATH_MAX];
        store_pathf(p, sizeof p, "%s/%s", st->root, subs[i]);
        if (mkdir_p(p, 0755)) {
            snprintf(err, errlen, "cannot create %s: %s", p, strerror(errno));
            free(st);
            return NULL;
        }
    }
    return st;
}

void store_close(flow_store *st) {
    if (st && st->lock_fd >= 0) close(st->lock_fd); /* releases the lock */
    free(st);
}

/* The lock is flock(2) on store/lock: runs hold it shared for their whole life,
 * gc exclusively, so gc never runs while a run may be storing objects it has not
 * recorded yet. The descriptor is close-on-exec; workers forked without exec
 * share it, which only lengthens the hold until they exit. */
int store_lock(flow_store *st, int exclusive, int wait) {
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

const char *store_root(const flow_store *st) {
    return st->root;
}

void hash_hex(const flow_hash *h, char out[65]) {
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[h->b[i] >> 4];
        out[2 * i + 1] = hx[h->b[i] & 15];
    }
    out[64] = 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int hash_from_hex(const char *hex, flow_hash *out) {
    for (int i = 0; i < 32; i++) {
        int a = hexval(hex[2 * i]), b = a < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        out->b[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

void hash_bytes(const void *data, size_t len, flow_hash *out) {
    unsigned int n = 32;
    EVP_Digest(data, len, out->b, &n, EVP_sha256(), NULL);
}

/* Read fd to its end through SHA-256; with wfd >= 0 also copy what is read to wfd.
 * With writeback, each chunk's writeback to disk is started as soon as it has been
 * hashed (of wfd's copy, or of fd itself): the disk writes while we hash, and the
 * fsync that follows finds little left to do. */
static int hash_fd(int fd, int wfd, int writeback, flow_hash *out, char *err, size_t errlen) {
    off_t pos = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(STORE_IO_CHUNK);
    int rc = -1;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf, STORE_IO_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            goto done;
        }
        if (r == 0) break;
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        if (writeback && wfd < 0) sync_file_range(fd, pos, r, SYNC_FILE_RANGE_WRITE);
        for (ssize_t off = 0; wfd >= 0 && off < r;) {
            ssize_t w = write(wfd, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                snprintf(err, errlen, "write: %s", strerror(errno));
                goto done;
            }
            off += w;
        }
        if (writeback && wfd >= 0) sync_file_range(wfd, pos, r, SYNC_FILE_RANGE_WRITE);
        pos += r;
    }
    unsigned int n = 32;
    EVP_DigestFinal_ex(ctx, out->b, &n);
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

int hash_file(const char *path, flow_hash *out, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = hash_fd(fd, -1, 0, out, err, errlen);
    close(fd);
    return rc;
}

void store_object_path(const flow_store *st, const flow_hash *h, char *buf, size_t len) {
    char hex[65];
    hash_hex(h, hex);
    store_pathf(buf, len, "%s/objects/%.2s/%s", st->root, hex, hex + 2);
}

int store_has(const flow_store *st, const flow_hash *h) {
    char p[STORE_PATH_MAX];
    store_object_path(st, h, p, sizeof p);
    return access(p, F_OK) == 0;
}

/* Move a complete, fsynced temp file to the object's final name. */
static int install(flow_store *st, const char *tmp, const flow_hash *h, char *err, size_t errlen) {
    char dst[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    store_object_path(st, h, dst, sizeof dst);
    store_pathf(dir, sizeof dir, "%s", dst);
    *strrchr(dir, '/') = 0;
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        unlink(tmp);
        return -1;
    }
    chmod(tmp, 0444);
    if (rename(tmp, dst)) {
        snprintf(err, errlen, "cannot store %s: %s", dst, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int tmp_file(flow_store *st, char *path, size_t len, char *err, size_t errlen) {
    store_pathf(path, len, "%s/tmp/obj-XXXXXX", st->root);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) snprintf(err, errlen, "cannot create a file in %s/tmp: %s", st->root, strerror(errno));
    return fd;
}

int store_put_bytes(flow_store *st, const void *data, size_t len, flow_hash *out, char *err,
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

int store_put_file(flow_store *st, const char *path, int move, flow_hash *out, char *err,
                   size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (move) {
        /* hash in place, then rename the file itself into the store (a large fresh
         * output is mostly unwritten: hash_fd starts its writeback as it goes) */
        if (hash_fd(fd, -1, sb.st_size >= STORE_EARLY_WRITEBACK, out, err, errlen)) {
            close(fd);
            return -1;
        }
        if (store_has(st, out)) {
            close(fd);
            unlink(path);
            return 0;
        }
        int synced = fsync(fd);
        close(fd);
        if (synced == 0) {
            char tmp[STORE_PATH_MAX];
            store_pathf(tmp, sizeof tmp, "%s/tmp/mv-XXXXXX", st->root);
            int tfd = mkostemp(tmp, O_CLOEXEC);
            if (tfd >= 0) {
                close(tfd);
                if (rename(path, tmp) == 0) return install(st, tmp, out, err, errlen);
                unlink(tmp);
            }
        }
        fd = open(path, O_RDONLY | O_CLOEXEC); /* another file system: copy, then remove */
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
    }
    char tmp[STORE_PATH_MAX];
    int wfd = tmp_file(st, tmp, sizeof tmp, err, errlen);
    if (wfd < 0) {
        close(fd);
        return -1;
    }
    int rc = hash_fd(fd, wfd, sb.st_size >= STORE_EARLY_WRITEBACK, out, err, errlen);
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
    if (move) unlink(path);
    return 0;
}

/* ---- directories ---- */
typedef struct dir_entry {
    char *name; /* relative path */
    flow_hash h;
    unsigned mode;
} dir_entry;

typedef struct dir_walk {
    dir_entry *v;
    size_t n, cap;
} dir_walk;

static int walk(flow_store *st, const char *root, const char *rel, int depth, int move,
                dir_walk *w, char *err, size_t errlen) {
    if (depth > STORE_DIR_DEPTH) {
        snprintf(err, errlen, "%s: directories nested deeper than %d", root, STORE_DIR_DEPTH);
        return -1;
    }
    char path[STORE_PATH_MAX];
    store_pathf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errlen, "cannot open directory %s: %s", path, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char sub[STORE_PATH_MAX], full[STORE_PATH_MAX];
        int n = store_pathf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (n < 0 || (size_t)n >= sizeof sub - 1) {
            snprintf(err, errlen, "path too long below %s", root);
            rc = -1;
            break;
        }
        store_pathf(full, sizeof full, "%s/%s", root, sub);
        struct stat sb;
        if (lstat(full, &sb)) {
            snprintf(err, errlen, "cannot stat %s: %s", full, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(sb.st_mode)) {
            rc = walk(st, root, sub, depth + 1, move, w, err, errlen);
            if (rc == 0 && move) rmdir(full);
        } else if (S_ISREG(sb.st_mode)) {
            if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 64;
                w->v = realloc(w->v, w->cap * sizeof *w->v);
            }
            dir_entry *e = &w->v[w->n++];
            e->name = strdup(sub);
            e->mode = (sb.st_mode & 0111) ? 0555 : 0444;
            rc = store_put_file(st, full, move, &e->h, err, errlen);
        } else {
            snprintf(err, errlen, "%s is not a regular file or directory (links are not stored)",
                     full);
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const dir_entry *)a)->name, ((const dir_entry *)b)->name);
}

int store_put_dir(flow_store *st, const char *dir, int move, flow_hash *out, char *err,
                  size_t errlen) {
    dir_walk w = {0};
    int rc = walk(st, dir, "", 0, move, &w, err, errlen);
    if (rc == 0) {
        qsort(w.v, w.n, sizeof *w.v, by_name);
        size_t cap = 256, len = 0;
        char *m = malloc(cap);
        for (size_t i = 0; i < w.n; i++) {
            size_t need = len + 64 + 8 + strlen(w.v[i].name) + 4;
            if (need > cap) {
                while (need > cap) cap *= 2;
                m = realloc(m, cap);
            }
            char hex[65];
            hash_hex(&w.v[i].h, hex);
            len += (size_t)sprintf(m + len, "%s %o %s\n", hex, w.v[i].mode, w.v[i].name);
        }
        rc = store_put_bytes(st, m, len, out, err, errlen);
        free(m);
        if (rc == 0 && move) rmdir(dir);
    }
    for (size_t i = 0; i < w.n; i++) free(w.v[i].name);
    free(w.v);
    return rc;
}

int store_read(flow_store *st, const flow_hash *h, uint8_t **data, size_t *len) {
    char p[STORE_PATH_MAX];
    store_object_path(st, h, p, sizeof p);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb)) {
        close(fd);
        return -1;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    uint8_t *buf = malloc(n ? n : 1);
    while (buf && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    flow_hash check;
    if (!buf || got != n) {
        free(buf);
        return -1;
    }
    hash_bytes(buf, n, &check);
    if (memcmp(check.b, h->b, 32)) {
        unlink(p); /* damaged: never served; the producer will recompute it */
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

int store_verify(flow_store *st, const flow_hash *h) {
    char p[STORE_PATH_MAX], err[256];
    store_object_path(st, h, p, sizeof p);
    flow_hash check;
    if (hash_file(p, &check, err, sizeof err)) return -1;
    if (memcmp(check.b, h->b, 32)) {
        unlink(p);
        return -1;
    }
    return 0;
}

/* Visit a tree bottom-up: fn(path, is_dir) for every entry below path, children
 * before their directory, then for path itself. Depth-bounded. */
static void visit_tree(const char *path, int depth, void (*fn)(const char *, int)) {
    if (depth > STORE_DIR_DEPTH) return;
    chmod(path, 0755); /* so a read-only tree can be listed and emptied */
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char sub[STORE_PATH_MAX];
            if (store_pathf(sub, sizeof sub, "%s/%s", path, de->d_name)) continue;
            struct stat sb;
            if (lstat(sub, &sb)) continue;
            if (S_ISDIR(sb.st_mode)) visit_tree(sub, depth + 1, fn);
            else fn(sub, 0);
        }
        closedir(d);
    }
    fn(path, 1);
}

static void make_readonly(const char *path, int is_dir) {
    if (is_dir) chmod(path, 0555);
}

static void remove_entry(const char *path, int is_dir) {
    if (is_dir) rmdir(path);
    else unlink(path);
}

static void make_readonly_tree(const char *path, int depth) {
    visit_tree(path, depth, make_readonly);
}

static void remove_tree(const char *path, int depth) {
    visit_tree(path, depth, remove_entry);
}

int store_tree(flow_store *st, const flow_hash *manifest, char *buf, size_t len, char *err,
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
        free(m);
        return -1;
    }
    int rc = 0;
    for (char *line = (char *)m, *end = (char *)m + mlen; rc == 0 && line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl || nl - line < 68) {
            rc = -1;
            break;
        }
        *nl = 0;
        flow_hash h;
        char *name = strchr(line + 65, ' ');
        if (hash_from_hex(line, &h) || !name || strstr(name + 1, "..")) {
            rc = -1;
            break;
        }
        name++;
        char obj[STORE_PATH_MAX], dst[STORE_PATH_MAX];
        store_object_path(st, &h, obj, sizeof obj);
        store_pathf(dst, sizeof dst, "%s/%s", tmp, name);
        char *slash = strrchr(dst, '/');
        *slash = 0;
        mkdir_p(dst, 0755);
        *slash = '/';
        if (link(obj, dst)) rc = -1;
        line = nl + 1;
    }
    free(m);
    if (rc) {
        snprintf(err, errlen, "directory %s: an object of its manifest is missing", hex);
        remove_tree(tmp, 0);
        return -1;
    }
    make_readonly_tree(tmp, 0);
    chmod(tmp, 0755);
    if (rename(tmp, buf) && access(buf, F_OK) != 0) {
        snprintf(err, errlen, "cannot install %s: %s", buf, strerror(errno));
        remove_tree(tmp, 0);
        return -1;
    }
    if (access(tmp, F_OK) == 0) remove_tree(tmp, 0); /* lost a race: another made it */
    chmod(buf, 0555);
    return 0;
}

int store_named(flow_store *st, const flow_hash *h, const char *name, char *buf, size_t len,
                char *err, size_t errlen) {
    char hex[65], dir[STORE_PATH_MAX], obj[STORE_PATH_MAX];
    hash_hex(h, hex);
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) name = "data";
    if (store_pathf(dir, sizeof dir, "%s/named/%s", st->root, hex) ||
        store_pathf(buf, len, "%s/%s", dir, name)) {
        snprintf(err, errlen, "output name too long: %s", name);
        return -1;
    }
    if (access(buf, F_OK) == 0) return 0;
    store_object_path(st, h, obj, sizeof obj);
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (link(obj, buf) && errno != EEXIST) {
        snprintf(err, errlen, "cannot link %s: %s", buf, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmp_hash(const void *a, const void *b) {
    return memcmp(a, b, 32);
}

/* Add to *k the files listed by every kept manifest (a kept hash whose tree
 * trees/<hash> exists): a directory's objects live as long as the directory. The
 * manifest is read as it is, not verified, so a dry run changes nothing. */
static int keep_tree_files(flow_store *st, flow_hash **k, size_t *n) {
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
            flow_hash h;
            if (strlen(line) < 64 || hash_from_hex(line, &h)) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                flow_hash *m = realloc(*k, cap * sizeof *m);
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

long store_collect(flow_store *st, const flow_hash *keep, size_t nkeep, const store_gc_opts *o,
                   uint64_t *bytes_freed) {
    static const store_gc_opts none = {0, NULL, NULL};
    if (!o) o = &none;
    flow_hash *k = malloc((nkeep ? nkeep : 1) * sizeof *k);
    if (!k) return -1;
    if (nkeep) memcpy(k, keep, nkeep * sizeof *k);
    if (keep_tree_files(st, &k, &nkeep)) {
        free(k);
        return -1;
    }
    qsort(k, nkeep, sizeof *k, cmp_hash);
    long removed = 0;
    uint64_t freed = 0;
    char objs[STORE_PATH_MAX];
    store_pathf(objs, sizeof objs, "%s/objects", st->root);
    DIR *top = opendir(objs);
    struct dirent *de;
    while (top && (de = readdir(top))) {
        if (strlen(de->d_name) != 2) continue;
        char sub[STORE_PATH_MAX];
        store_pathf(sub, sizeof sub, "%s/%s", objs, de->d_name);
        DIR *d = opendir(sub);
        struct dirent *fe;
        while (d && (fe = readdir(d))) {
            if (strlen(fe->d_name) != 62) continue;
            char hex[65];
            snprintf(hex, sizeof hex, "%s%s", de->d_name, fe->d_name);
            flow_hash h;
            if (hash_from_hex(hex, &h)) continue;
            if (bsearch(&h, k, nkeep, sizeof *k, cmp_hash)) continue;
            char p[STORE_PATH_MAX];
            store_pathf(p, sizeof p, "%s/%s", sub, fe->d_name);
            struct stat sb;
            uint64_t size = stat(p, &sb) ? 0 : (uint64_t)sb.st_size;
            if (!o->dry && unlink(p)) continue;
            freed += size;
            removed++;
            if (o->each) o->each(&h, size, o->ctx);
        }
        if (d) closedir(d);
        if (!o->dry) rmdir(sub); /* only succeeds when empty */
    }
    if (top) closedir(top);
    /* trees of manifests no longer kept, and leftovers in tmp/ */
    const char *dirs[] = {"trees", "tmp", "named"};
    for (int i = 0; i < 3 && !o->dry; i++) {
        char p[STORE_PATH_MAX];
        store_pathf(p, sizeof p, "%s/%s", st->root, dirs[i]);
        DIR *d = opendir(p);
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            flow_hash h;
            if (i != 1 && strlen(de->d_name) == 64 && !hash_from_hex(de->d_name, &h) &&
                bsearch(&h, k, nkeep, sizeof *k, cmp_hash))
                continue;
            char sub[STORE_PATH_MAX];
            store_pathf(sub, sizeof sub, "%s/%s", p, de->d_name);
            struct stat sb;
            if (lstat(sub, &sb)) continue;
            /* a temp file younger than an hour may belong to a run in progress */
            if (i == 1 && time(NULL) - sb.st_mtime < 3600) continue;
            if (S_ISDIR(sb.st_mode)) remove_tree(sub, 0);
            else unlink(sub);
        }
        if (d) closedir(d);
    }
    free(k);
    if (bytes_freed) *bytes_freed = freed;
    return removed;
}

long store_gc(flow_store *st, const flow_hash *keep, size_t nkeep, uint64_t *bytes_freed) {
    return store_collect(st, keep, nkeep, NULL, bytes_freed);
}

/* A store path's hash: "/named/" or "/trees/", then 64 lowercase hex digits that
 * end the text or are followed by something else (hash_hex writes lowercase). */
static int lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

void store_refs_scan(const void *data, size_t len, void (*fn)(const flow_hash *h, void *ctx),
                     void *ctx) {
    const char *end = (const char *)data + len, *q = data;
    while (end - q >= 71) {
        q = memchr(q, '/', (size_t)(end - q - 70));
        if (!q) break;
        int i = 7;
        if (!memcmp(q + 1, "named/", 6) || !memcmp(q + 1, "trees/", 6))
            while (i < 71 && lower_hex(q[i])) i++;
        flow_hash h;
        if (i == 71 && (q + 71 == end || !lower_hex(q[71])) && !hash_from_hex(q + 7, &h)) {
            fn(&h, ctx);
            q += 71;
        } else {
            q++;
        }
    }
}
