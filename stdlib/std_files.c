/*
 * std_files.c — the standard library's file tasks (std.flow, "Files"): glob,
 * read_text, write_text, copy, concat, lines, checksum, size.
 *
 * Each is a plain C task (docs/runtime-abi.md). Results that are files are written
 * under flow_out_path, so they move into the content-addressed store; glob returns
 * the matching input files themselves (like the built-in files(), sorted by name).
 * Text is taken as bytes up to the first NUL: a file holding a NUL byte is refused
 * by read_text and lines (a str cannot carry it; read it as bytes instead).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <nettle/sha2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "std_tasks.h"

/* dir with glob's special characters escaped, then "/" and the pattern */
static char *glob_pattern(const char *dir, const char *pattern) {
    size_t n = strlen(dir), m = strlen(pattern);
    char *s = flow_alloc(2 * n + m + 2);
    if (!s) return NULL;
    char *w = s;
    for (const char *p = dir; *p; p++) {
        if (strchr("*?[]\\", *p)) *w++ = '\\';
        *w++ = *p;
    }
    if (w > s && w[-1] != '/') *w++ = '/';
    memcpy(w, pattern, m + 1);
    return s;
}

STD_TASK flow_list std_glob(const char *dir, const char *pattern) {
    flow_list none = {0, NULL};
    struct stat st;
    if (stat(dir, &st) != 0) {
        flow_fail("cannot open the directory %s: %s", dir, strerror(errno));
        return none;
    }
    if (!S_ISDIR(st.st_mode)) {
        flow_fail("%s is not a directory", dir);
        return none;
    }
    bool up = false; /* a ".." component: the pattern would leave d */
    for (const char *p = pattern; (p = strstr(p, "..")); p += 2)
        if ((p == pattern || p[-1] == '/') && (p[2] == 0 || p[2] == '/')) up = true;
    if (!pattern[0] || pattern[0] == '/' || up) {
        flow_fail("the pattern '%s' must be relative to the directory, without '..'", pattern);
        return none;
    }
    char *full = glob_pattern(dir, pattern);
    if (!full) return none;
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(full, 0, NULL, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
        flow_fail("cannot list %s in %s", pattern, dir);
        globfree(&g);
        return none;
    }
    int64_t keep = 0;
    for (size_t i = 0; i < g.gl_pathc; i++)
        if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) keep++;
    flow_list out = flow_list_new(keep, sizeof(const char *));
    const char **items = out.items;
    int64_t k = 0;
    for (size_t i = 0; i < g.gl_pathc && items; i++)
        if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode))
            items[k++] = flow_strdup(g.gl_pathv[i]);
    globfree(&g);
    return out;
}

/* the text of f, or NULL after flow_fail (unreadable, or holding a NUL byte) */
static char *read_text(const char *f, int64_t *len) {
    char *s = std_read_file(f, len);
    if (!s) return NULL;
    size_t n = strlen(s);
    if ((int64_t)n != *len) {
        flow_fail("%s holds a NUL byte at offset %zu: not text", f, n);
        return NULL;
    }
    return s;
}

STD_TASK const char *std_read_text(const char *f) {
    int64_t len;
    return read_text(f, &len);
}

STD_TASK const char *std_write_text(const char *text, const char *name) {
    const char *out = std_out(name, "text.txt");
    if (!out || std_write_file(out, text, strlen(text)) != 0) return NULL;
    return out;
}

STD_TASK const char *std_copy(const char *src) {
    const char *out = std_out(std_base(src), "copy");
    if (!out || std_copy_file(src, out) != 0) return NULL;
    return out;
}

STD_TASK const char *std_concat(flow_list files, const char *name) {
    const char *out;
    FILE *w = std_create(name, "concat", &out);
    if (!w) return NULL;
    const char **fs = files.items;
    for (int64_t i = 0; i < files.len; i++) {
        FILE *r = fopen(fs[i], "rb");
        struct stat st;
        if (!r || fstat(fileno(r), &st) != 0 || !S_ISREG(st.st_mode)) {
            flow_fail("cannot read %s (item %lld): %s", fs[i], (long long)i,
                      r ? "not a regular file" : strerror(errno));
            if (r) fclose(r);
            fclose(w);
            return NULL;
        }
        char buf[1 << 16];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, r)) > 0)
            if (fwrite(buf, 1, n, w) != n) break;
        bool bad = ferror(r) || ferror(w);
        fclose(r);
        if (bad) {
            flow_fail("cannot copy %s into %s", fs[i], out);
            fclose(w);
            return NULL;
        }
    }
    if (fclose(w) != 0) {
        flow_fail("cannot write %s: %s", out, strerror(errno));
        return NULL;
    }
    return out;
}

STD_TASK flow_list std_lines(const char *f) {
    flow_list none = {0, NULL};
    int64_t len;
    char *s = read_text(f, &len);
    if (!s) return none;
    int64_t n = 0;
    for (int64_t i = 0; i < len; i++)
        if (s[i] == '\n') n++;
    if (len > 0 && s[len - 1] != '\n') n++; /* a last line without its newline */
    flow_list out = flow_list_new(n, sizeof(const char *));
    const char **items = out.items;
    if (!items) return none;
    char *p = s;
    for (int64_t k = 0; k < n; k++) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = 0; /* CRLF files give the same lines */
        items[k] = p; /* in flow_alloc memory: the runtime copies it */
        p = e ? e + 1 : p + l;
    }
    return out;
}

STD_TASK const char *std_checksum(const char *f) {
    FILE *r = fopen(f, "rb");
    struct stat st;
    if (!r || fstat(fileno(r), &st) != 0 || !S_ISREG(st.st_mode)) {
        flow_fail("cannot read %s: %s", f, r ? "not a regular file" : strerror(errno));
        if (r) fclose(r);
        return NULL;
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, r)) > 0) sha256_update(&ctx, n, (const uint8_t *)buf);
    bool bad = ferror(r);
    fclose(r);
    if (bad) {
        flow_fail("cannot read %s", f);
        return NULL;
    }
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    char *hex = flow_alloc(2 * sizeof d + 1);
    if (!hex) return NULL;
    for (size_t i = 0; i < sizeof d; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return hex;
}

STD_TASK int64_t std_size(const char *f) {
    struct stat st;
    if (stat(f, &st) != 0) {
        flow_fail("cannot stat %s: %s", f, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        flow_fail("%s is not a regular file", f);
        return -1;
    }
    return (int64_t)st.st_size;
}
