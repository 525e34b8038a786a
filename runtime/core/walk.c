/*
 * walk.c — the one directory-tree walker (see walk.h for the two policies).
 *
 * DESIGN. walk_dir() reads one folder through its own descriptor and, for each
 * entry, decides its type from readdir's d_type when that is enough (no stat
 * per file: files() over 100,000 files must stay a readdir), and otherwise
 * with fstatat() relative to the folder: AT_SYMLINK_NOFOLLOW by default, the
 * target's status with WALK_FOLLOW. A subfolder is opened with openat()
 * relative to the same descriptor; by default with O_NOFOLLOW, and when its
 * status was taken, the opened folder must be the one fstatat saw (same
 * device and inode), so a folder swapped for another between the two calls
 * is an error rather than a detour. Following links, the (device, inode) of
 * every folder on the way down is kept, and a folder met again below itself
 * is a link loop. Depth is bounded by WALK_DEPTH_MAX; at most that many
 * descriptors are open at once.
 */
#define _GNU_SOURCE
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WALK_REL_MAX 4096

typedef struct walker {
    int flags;                     /* WALK_* */
    const char *what;              /* the root, for messages */
    walk_fn fn;                    /* the callback */
    void *ctx;                     /* its context */
    char rel[WALK_REL_MAX];        /* the path below the root being visited */
    dev_t dev[WALK_DEPTH_MAX + 2]; /* following: the folders on the way down */
    ino_t ino[WALK_DEPTH_MAX + 2];
    char *err; /* where messages go */
    size_t errlen;
} walker;

int walk_open(int dirfd, const char *path, int follow) {
    return openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
}

static int type_of(mode_t m) {
    return S_ISREG(m) ? WALK_REG : S_ISDIR(m) ? WALK_DIR : S_ISLNK(m) ? WALK_LINK : WALK_OTHER;
}

/* Walk the folder open at fd (taken over: closed here); rel holds its path
 * below the root, rlen bytes. */
static int walk_dir(walker *w, int fd, size_t rlen, int depth) {
    if (depth > WALK_DEPTH_MAX) {
        snprintf(w->err, w->errlen, "%s: folders nested deeper than %d", w->what, WALK_DEPTH_MAX);
        close(fd);
        return -1;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        snprintf(w->err, w->errlen, "cannot read folder %s%s%s: %s", w->what, rlen ? "/" : "",
                 w->rel, strerror(errno));
        close(fd);
        return -1;
    }
    int follow = w->flags & WALK_FOLLOW, rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) continue;
        size_t nlen = strlen(name);
        if (rlen + 1 + nlen >= sizeof w->rel) {
            snprintf(w->err, w->errlen, "%s: a path below it is too long", w->what);
            rc = -1;
            break;
        }
        if (rlen) w->rel[rlen] = '/';
        memcpy(w->rel + rlen + !!rlen, name, nlen + 1);
        size_t sublen = rlen + !!rlen + nlen;

        struct stat sb;
        const struct stat *st = NULL;
        int type = de->d_type == DT_REG       ? WALK_REG
                   : de->d_type == DT_DIR     ? WALK_DIR
                   : de->d_type == DT_LNK     ? WALK_LINK
                   : de->d_type == DT_UNKNOWN ? -1
                                              : WALK_OTHER;
        if ((w->flags & WALK_STAT) || type < 0 || (follow && type == WALK_LINK)) {
            if (fstatat(dirfd(d), name, &sb, follow ? 0 : AT_SYMLINK_NOFOLLOW)) {
                if (errno == ENOENT) { /* vanished, or (following) a dangling link */
                    w->rel[rlen] = 0;
                    continue;
                }
                snprintf(w->err, w->errlen, "cannot examine %s/%s: %s", w->what, w->rel,
                         strerror(errno));
                rc = -1;
                break;
            }
            st = &sb;
            type = type_of(sb.st_mode);
        }
        walk_ent e = {dirfd(d), name, w->rel, type, 0, depth, st};
        rc = w->fn(w->ctx, &e, w->err, w->errlen);
        if (rc == WALK_SKIP) {
            rc = 0;
        } else if (rc == 0 && type == WALK_DIR) {
            int sub = walk_open(dirfd(d), name, follow);
            struct stat ds;
            if (sub < 0 && errno == EACCES && (w->flags & WALK_POST) && geteuid() != 0) {
                /* removing a tree its owner made unreadable: only a flowrun that is
                 * not root gets here, and then the tree's owner is flowrun's user
                 * (who could change that mode anyway) */
                fchmodat(dirfd(d), name, 0700, 0);
                sub = walk_open(dirfd(d), name, follow);
            }
            if (sub < 0 || fstat(sub, &ds)) {
                snprintf(w->err, w->errlen, "cannot open folder %s/%s: %s", w->what, w->rel,
                         errno == ELOOP ? "it was replaced by a symbolic link" : strerror(errno));
                if (sub >= 0) close(sub);
                rc = -1;
            } else if (st && (ds.st_dev != st->st_dev || ds.st_ino != st->st_ino)) {
                snprintf(w->err, w->errlen, "folder %s/%s changed while being read", w->what,
                         w->rel);
                close(sub);
                rc = -1;
            } else {
                if ((w->flags & WALK_POST) && (ds.st_mode & 0700) != 0700)
                    fchmod(sub, ds.st_mode | 0700); /* so its entries can be removed */
                w->dev[depth + 1] = ds.st_dev;
                w->ino[depth + 1] = ds.st_ino;
                for (int k = 0; follow && k <= depth; k++)
                    if (w->dev[k] == ds.st_dev && w->ino[k] == ds.st_ino) {
                        snprintf(w->err, w->errlen, "%s/%s: a symbolic link loop", w->what, w->rel);
                        close(sub);
                        sub = -1;
                        rc = -1;
                        break;
                    }
                if (sub >= 0) rc = walk_dir(w, sub, sublen, depth + 1);
                if (rc == 0 && (w->flags & WALK_POST)) {
                    w->rel[sublen] = 0;
                    e.post = 1;
                    rc = w->fn(w->ctx, &e, w->err, w->errlen);
                }
            }
        }
        w->rel[rlen] = 0;
    }
    if (rc == 0 && !de && errno) {
        snprintf(w->err, w->errlen, "cannot read folder %s: %s", w->what, strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

int walk_tree(int rootfd, const char *what, int flags, walk_fn fn, void *ctx, char *err,
              size_t errlen) {
    static char sink[8];
    walker w;
    w.flags = flags;
    w.what = what ? what : "folder";
    w.fn = fn;
    w.ctx = ctx;
    w.rel[0] = 0;
    w.err = err ? err : sink;
    w.errlen = err ? errlen : sizeof sink;
    struct stat rs;
    /* a descriptor of our own: readdir moves its offset, and the caller keeps rootfd */
    int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &rs)) {
        snprintf(w.err, w.errlen, "cannot read folder %s: %s", w.what, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    w.dev[0] = rs.st_dev;
    w.ino[0] = rs.st_ino;
    return walk_dir(&w, fd, 0, 0);
}

static int remove_entry(void *ctx, const walk_ent *e, char *err, size_t errlen) {
    (void)ctx;
    (void)err;
    (void)errlen;
    if (e->type != WALK_DIR) {
        unlinkat(e->dirfd, e->name, 0);
    } else if (e->post) {
        unlinkat(e->dirfd, e->name, AT_REMOVEDIR);
    }
    return 0;
}

int walk_remove(int dirfd, const char *name) {
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
    int fd = walk_open(dirfd, name, 0);
    if (fd < 0 && errno == EACCES && geteuid() != 0) {
        fchmodat(dirfd, name, 0700, 0); /* see walk_dir: flowrun's own user's tree */
        fd = walk_open(dirfd, name, 0);
    }
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 0700) != 0700) fchmod(fd, sb.st_mode | 0700);
    char err[256];
    /* entries that cannot be removed are left; the rmdir below then says so */
    walk_tree(fd, name, WALK_POST, remove_entry, NULL, err, sizeof err);
    close(fd);
    return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

int walk_remove_path(const char *path) {
    char dir[WALK_REL_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir) return -1;
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : dir;
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    int fd = walk_open(AT_FDCWD, slash ? dir : ".", 1);
    if (fd < 0) return -1;
    int rc = walk_remove(fd, name);
    close(fd);
    return rc;
}
