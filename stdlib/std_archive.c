/*
 * std_archive.c — the standard library's archive tasks (std.flow, "Archives"):
 * gunzip and untar, through libarchive.
 *
 * gunzip reads any single compressed stream libarchive knows (gzip, and bzip2,
 * xz, zstd the same way) with its "raw" format, so the output is the bytes of the
 * one file inside. untar extracts every entry of a tar (compressed or not) into a
 * fresh directory under flow_out_path with libarchive's safety flags: no entry
 * may climb out with "..", be absolute, or write through a symbolic link; owners
 * and special files (devices, FIFOs) are not restored. A damaged archive fails
 * the task with libarchive's message and the entry it was reading.
 */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "std_tasks.h"

/* the output name of gunzip: f's name without .gz (.bz2, .xz, .zst, .z) */
static const char *strip_suffix(const char *f, const char *const *suffixes, const char *fallback) {
    const char *base = std_base(f);
    size_t n = strlen(base);
    for (const char *const *s = suffixes; *s; s++) {
        size_t k = strlen(*s);
        if (n > k && !strcasecmp(base + n - k, *s)) {
            char *out = flow_alloc(n - k + 1);
            if (!out) return NULL;
            memcpy(out, base, n - k);
            out[n - k] = 0;
            return out;
        }
    }
    return n ? base : fallback;
}

/* true when a component of path is ".." */
static bool has_dotdot(const char *path) {
    for (const char *p = path; (p = strstr(p, "..")); p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == 0 || p[2] == '/')) return true;
    return false;
}

static struct archive *open_reader(const char *f, int raw) {
    struct archive *a = archive_read_new();
    if (!a) {
        flow_fail("out of memory");
        return NULL;
    }
    archive_read_support_filter_all(a);
    if (raw) archive_read_support_format_raw(a);
    else archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, f, 1 << 16) != ARCHIVE_OK) {
        flow_fail("cannot read %s: %s", f, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

STD_TASK const char *std_gunzip(const char *f) {
    static const char *const sfx[] = {".gz", ".tgz", ".bz2", ".xz", ".zst", ".z", NULL};
    const char *name = strip_suffix(f, sfx, "data");
    if (!name) return NULL;
    const char *out = std_out(name, "data");
    if (!out) return NULL;
    struct archive *a = open_reader(f, 1);
    if (!a) return NULL;
    if (archive_filter_count(a) < 2) { /* only "none": not compressed at all */
        flow_fail("%s is not compressed (gzip, bzip2, xz or zstd)", f);
        archive_read_free(a);
        return NULL;
    }
    struct archive_entry *e;
    int rc = archive_read_next_header(a, &e);
    if (rc != ARCHIVE_OK) {
        flow_fail("cannot read %s: %s", f, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        flow_fail("cannot create %s: %s", out, strerror(errno));
        archive_read_free(a);
        return NULL;
    }
    rc = archive_read_data_into_fd(a, fd);
    int cerr = close(fd);
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        flow_fail("cannot decompress %s: %s", f, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    archive_read_free(a);
    if (cerr != 0) {
        flow_fail("cannot write %s: %s", out, strerror(errno));
        return NULL;
    }
    return out;
}

STD_TASK const char *std_untar(const char *f) {
    static const char *const sfx[] = {".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst",
                                      ".tar", NULL};
    const char *name = strip_suffix(f, sfx, "tree");
    if (!name) return NULL;
    const char *out = std_out(name, "tree");
    if (!out) return NULL;
    if (mkdir(out, 0755) != 0) {
        flow_fail("cannot create %s: %s", out, strerror(errno));
        return NULL;
    }
    struct archive *a = open_reader(f, 0);
    if (!a) return NULL;
    struct archive *w = archive_write_disk_new();
    if (!w) {
        flow_fail("out of memory");
        archive_read_free(a);
        return NULL;
    }
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    /* entries are given absolute paths under out (no chdir: tasks share a process
     * under the inline executor), so an absolute entry is refused below instead of
     * by ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS */
    const char *fail = NULL;
    char where[4096] = "";
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            fail = archive_error_string(a);
            break;
        }
        const char *path = archive_entry_pathname(e);
        snprintf(where, sizeof where, "%s", path ? path : "?");
        mode_t type = archive_entry_filetype(e);
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
            flow_log("%s: skipped (not a file, folder or link)", where);
            continue;
        }
        if (!path || !path[0] || path[0] == '/') {
            fail = "an absolute or empty path";
            break;
        }
        if (has_dotdot(path)) {
            fail = "a '..' in the path would leave the folder";
            break;
        }
        char *full = flow_alloc(strlen(out) + strlen(path) + 2);
        if (!full) break;
        sprintf(full, "%s/%s", out, path);
        archive_entry_set_pathname(e, full);
        const char *hl = archive_entry_hardlink(e);
        if (hl) {
            if (hl[0] == '/' || has_dotdot(hl)) {
                fail = "a hard link out of the archive";
                break;
            }
            char *hfull = flow_alloc(strlen(out) + strlen(hl) + 2);
            if (!hfull) break;
            sprintf(hfull, "%s/%s", out, hl);
            archive_entry_set_hardlink(e, hfull);
        }
        /* a refused header comes back as ARCHIVE_WARN (libarchive downgrades it):
         * only a missing file tells it from a harmless warning (a time not set) */
        rc = archive_read_extract2(a, e, w);
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
            fail = archive_error_string(a) ? archive_error_string(a) : "cannot extract";
            break;
        }
        struct stat st;
        if (rc == ARCHIVE_WARN && lstat(full, &st) != 0) {
            fail = archive_error_string(a) ? archive_error_string(a) : "not extracted";
            break;
        }
        if (rc == ARCHIVE_WARN) flow_log("%s: %s", where, archive_error_string(a));
    }
    if (fail)
        flow_fail("%s%s%s: %s", f, where[0] ? " at " : "", where, fail);
    archive_write_free(w);
    archive_read_free(a);
    return fail ? NULL : out;
}
