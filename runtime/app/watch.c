/*
 * watch.c — a folder watched recursively with inotify (watch.h).
 *
 * Design: one inotify descriptor; one watch per folder (inotify is not recursive),
 * its path kept in a table indexed by the watch descriptor (the kernel hands them
 * out small and increasing) so that a folder created later is found by name and
 * watched in turn. A new folder may already hold files and folders made before its
 * watch existed: it is walked when it is added (what it holds needs no event of its
 * own: the folder's creation already counts as a change). The events that count are
 * creation, deletion, renames, attribute changes, writes and closes after writing;
 * IN_MODIFY is in the set so that a long write keeps postponing the debounced run.
 * When the kernel's queue overflows (IN_Q_OVERFLOW, 16,384 events by default) events
 * were lost, some perhaps of new folders: the tree is walked again (adding a watch
 * that exists is harmless) and the overflow counts as a change. The watch never
 * reads a file: the run finds what changed (size and mtime, then content hash).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "watch.h"

#define FW_MASK                                                                                    \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY |          \
     IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct fw_watch {
    int fd;
    char *root;
    char **paths; /* paths[wd]: the folder watched by wd, or NULL */
    int npaths;
    int root_wd;
    long overflows;
    int warned; /* the watch limit was reported */
};

static void warn_once(fw_watch *w, char *err, size_t errlen, const char *path, int e) {
    if (w->warned || !err || !errlen) return;
    w->warned = 1;
    snprintf(err, errlen, "cannot watch %s: %s%s", path, strerror(e),
             e == ENOSPC ? " (raise fs.inotify.max_user_watches); changes below it are seen "
                           "only by the next run"
                         : "");
}

/* Watch `path` and, walking it, every folder below it. */
static void add_tree(fw_watch *w, const char *path, char *err, size_t errlen) {
    int wd = inotify_add_watch(w->fd, path, FW_MASK);
    if (wd < 0) {
        if (errno != ENOENT && errno != ENOTDIR) warn_once(w, err, errlen, path, errno);
        return;
    }
    if (wd >= w->npaths) {
        int n = w->npaths ? w->npaths : 64;
        while (n <= wd) n *= 2;
        char **np = realloc(w->paths, (size_t)n * sizeof *np);
        if (!np) return;
        memset(np + w->npaths, 0, (size_t)(n - w->npaths) * sizeof *np);
        w->paths = np;
        w->npaths = n;
    }
    if (!w->paths[wd] || strcmp(w->paths[wd], path)) {
        free(w->paths[wd]);
        w->paths[wd] = strdup(path);
    }
    DIR *d = opendir(path);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub) continue;
        int isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat sb;
            isdir = lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode);
        }
        if (isdir) add_tree(w, sub, err, errlen);
    }
    closedir(d);
}

fw_watch *fw_open(const char *root, char *err, size_t errlen) {
    struct stat sb;
    if (stat(root, &sb) != 0) {
        snprintf(err, errlen, "%s: %s", root, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a folder", root);
        return NULL;
    }
    fw_watch *w = calloc(1, sizeof *w);
    if (!w || !(w->root = strdup(root))) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        snprintf(err, errlen, "inotify: %s", strerror(errno));
        fw_close(w);
        return NULL;
    }
    add_tree(w, root, err, errlen);
    w->root_wd = inotify_add_watch(w->fd, root, FW_MASK); /* the same wd as add_tree's */
    if (w->root_wd < 0) {
        snprintf(err, errlen, "cannot watch %s: %s", root, strerror(errno));
        fw_close(w);
        return NULL;
    }
    return w;
}

int fw_fd(const fw_watch *w) { return w->fd; }
long fw_overflows(const fw_watch *w) { return w->overflows; }

int fw_drain(fw_watch *w, char *err, size_t errlen) {
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    int changes = 0, gone = 0, rescan = 0;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                rescan = 1;
                changes++;
                continue;
            }
            if (ev->mask & IN_IGNORED) { /* its folder is gone; forget its path */
                if (ev->wd >= 0 && ev->wd < w->npaths) {
                    free(w->paths[ev->wd]);
                    w->paths[ev->wd] = NULL;
                }
                if (ev->wd == w->root_wd) gone = 1;
                continue;
            }
            if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && ev->wd == w->root_wd) gone = 1;
            changes++;
            if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)) && ev->len &&
                ev->wd >= 0 && ev->wd < w->npaths && w->paths[ev->wd]) {
                char sub[PATH_MAX];
                if (snprintf(sub, sizeof sub, "%s/%s", w->paths[ev->wd], ev->name) <
                    (int)sizeof sub)
                    add_tree(w, sub, err, errlen);
            }
        }
    }
    if (rescan && !gone) {
        w->overflows++;
        add_tree(w, w->root, err, errlen);
    }
    if (gone) return -1;
    return changes;
}

void fw_close(fw_watch *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    for (int i = 0; i < w->npaths; i++) free(w->paths[i]);
    free(w->paths);
    free(w->root);
    free(w);
}
