/*
 * fsdir.c — folders and files under the state directory, made without following links
 * (see fsdir.h for why).
 *
 * Design: a path is walked one component at a time, each step relative to the descriptor
 * of the previous folder (openat with O_DIRECTORY|O_NOFOLLOW after mkdirat), so no path
 * string below the trusted prefix is ever resolved by the kernel as a whole and a link
 * planted anywhere along it stops the walk. Removing what was made here is walk.c's
 * (walk_remove: the one walker, which never follows a link either).
 */
#define _GNU_SOURCE
#include "fsdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fsdir_sub(int at, const char *name, int create) {
    if (strchr(name, '/')) { /* one step: a path here would be resolved by the kernel */
        errno = EINVAL;
        return -1;
    }
    if (create && mkdirat(at, name, 0777) != 0 && errno != EEXIST) return -1;
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int fsdir_file(int at, const char *name, int excl) {
    if (strchr(name, '/')) {
        errno = EINVAL;
        return -1;
    }
    return openat(at, name,
                  O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0644);
}

int fsdir_walk(int at, const char *rel, int create) {
    char buf[PATH_MAX];
    size_t n = strlen(rel);
    if (n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, rel, n + 1);
    int fd = openat(at, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* a descriptor of our own */
    for (char *q = buf; fd >= 0;) {
        while (*q == '/') q++;
        if (!*q) break;
        char *end = strchr(q, '/');
        if (end) *end = 0;
        int sub = fsdir_sub(fd, q, create);
        int e = errno;
        close(fd);
        errno = e;
        fd = sub;
        if (!end) break;
        q = end + 1;
    }
    return fd;
}

int fsdir_open(const char *path, size_t trusted, int create) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf || trusted > n) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!trusted && path[0] != '/') return fsdir_walk(AT_FDCWD, path, create);
    if (!trusted) trusted = 1; /* an absolute path: from "/" */
    /* the folder as the user named it: mkdir -p, links followed */
    memcpy(buf, path, trusted);
    buf[trusted] = 0;
    if (create)
        for (char *q = buf + 1; *q; q++)
            if (*q == '/') {
                *q = 0;
                mkdir(buf, 0777);
                *q = '/';
            }
    if (create && mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int sub = fsdir_walk(fd, path + trusted, create);
    int e = errno;
    close(fd);
    errno = e;
    return sub;
}
