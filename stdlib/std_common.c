/*
 * std_common.c — file helpers shared by the standard library's tasks
 * (std_common.h): whole-file reads into flow_alloc memory, exclusive writes,
 * output names. Reads refuse what is not a regular file (a FIFO would block, a
 * directory has no bytes) with one message naming the task and the file.
 */
#define _GNU_SOURCE
#include "std_common.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *std_read_file(const char *path, int64_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        flow_fail("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        flow_fail("cannot read %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    char *buf = flow_alloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            flow_fail("cannot read %s: %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
        if (n == 0) break; /* shrank while read: take what is there */
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *len = (int64_t)got;
    return buf;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int std_write_file(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        flow_fail("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (write_all(fd, data, len) != 0 || close(fd) != 0) {
        flow_fail("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

const char *std_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

const char *std_out(const char *name, const char *fallback) {
    if (!name || !name[0] || !strcmp(name, ".") || !strcmp(name, "..")) name = fallback;
    const char *out = flow_out_path(name);
    if (!out) flow_fail("no output path for '%s'", name);
    return out;
}

FILE *std_create(const char *name, const char *fallback, const char **path) {
    const char *out = *path = std_out(name, fallback);
    if (!out) return NULL;
    FILE *w = fopen(out, "wbx");
    if (!w) flow_fail("cannot create %s: %s", out, strerror(errno));
    return w;
}

int std_copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in < 0) {
        flow_fail("cannot read %s: %s", src, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        flow_fail("cannot read %s: not a regular file", src);
        close(in);
        return -1;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        flow_fail("cannot create %s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            flow_fail("cannot read %s: %s", src, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0) break;
        if (write_all(out, buf, (size_t)n) != 0) {
            flow_fail("cannot write %s: %s", dst, strerror(errno));
            rc = -1;
            break;
        }
    }
    close(in);
    if (close(out) != 0 && rc == 0) {
        flow_fail("cannot write %s: %s", dst, strerror(errno));
        rc = -1;
    }
    return rc;
}
