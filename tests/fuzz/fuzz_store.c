/*
 * fuzz_store.c — libFuzzer target for the store's ingest path (a task's output folder
 * going into the store).
 *
 * A task may leave anything in its output folder: odd names, deep nesting, links to
 * files outside, FIFOs, empty folders. Each input describes such a folder; it is made
 * on disk in this process's scratch folder and handed to store_put_dir (what a run
 * does with a `-> dir` result: history.c's ingest), moving or copying as the input
 * says. Then:
 *   - the files outside the output folder (a sentinel file and folder, the targets of
 *     the links) are untouched, whatever happened;
 *   - a folder with a link, a FIFO or a name holding a newline is refused; any other
 *     is stored;
 *   - a stored folder materialises (store_tree) as exactly its regular files, each
 *     with its content, and its manifest has one line per file.
 * The store is emptied (store_gc keeping nothing) after each input.
 *
 * Input: byte 0, bit 0: move. Then operations until the input ends, each a kind byte
 * (kind % 6: 0 file, 1 folder (and enter it), 2 leave the folder, 3 link to the
 * sentinel, 4 FIFO, 5 empty folder; (kind / 6) odd: the file is executable), a name
 * length byte (n % 32 + 1) and the name's bytes ('/' and NUL become '_'; "." and ".."
 * are skipped), and for a file a content length byte and the content. Seeds in
 * tests/fuzz/seeds-store/ (tests/fuzz/make-seeds.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsdir.h"
#include "walk.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEPTH 12
#define MAX_FILES 64

static char root[64]; /* this process's scratch folder: st/, out/, sentinel, outside/ */

typedef struct want {
    char rel[MAX_DEPTH * 34]; /* path below out/ */
    uint8_t content[256];
    size_t len;
} want;

static void put_file(const char *path, const void *data, size_t len, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) abort();
    if (len && write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

static int same_file(const char *path, const void *data, size_t len) {
    uint8_t buf[300];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == (ssize_t)len && memcmp(buf, data, len) == 0;
}

static void clean_all(void) {
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    static const char *subs[] = {"out", "st", "sentinel", "outside"};
    for (int i = 0; i < 4; i++) walk_remove(fd, subs[i]);
    close(fd);
    rmdir(root);
}

static void setup(void) {
    snprintf(root, sizeof root, "%s/fuzz-store-%ld", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm",
                 (long)getpid()); /* tmpfs when there is one: fsync costs nothing */
    mkdir(root, 0700);
    atexit(clean_all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!root[0]) setup();
    char path[1024], out[128], sentinel[128], outside[128], st_dir[128];
    snprintf(out, sizeof out, "%s/out", root);
    snprintf(sentinel, sizeof sentinel, "%s/sentinel", root);
    snprintf(outside, sizeof outside, "%s/outside", root);
    snprintf(st_dir, sizeof st_dir, "%s/st", root);
    put_file(sentinel, "keep me", 7, 0644);
    mkdir(outside, 0755);
    snprintf(path, sizeof path, "%s/file", outside);
    put_file(path, "keep me too", 11, 0644);
    if (mkdir(out, 0755)) abort();

    static want wants[MAX_FILES];
    int nw = 0, refused = 0;
    char cur[MAX_DEPTH * 34] = ""; /* the folder being filled, below out/ */
    int depth = 0;                  /* its depth */
    size_t i = 1;
    int move = size ? data[0] & 1 : 0;
    while (i + 2 <= size) {
        int kind = data[i] % 6, exec = (data[i] / 6) & 1;
        size_t n = data[i + 1] % 32 + 1;
        i += 2;
        if (kind == 2) { /* up: no name */
            char *slash = strrchr(cur, '/');
            if (slash) *slash = 0;
            else cur[0] = 0;
            if (depth) depth--;
            i -= 1;
            continue;
        }
        if (i + n > size) break;
        char name[40];
        for (size_t k = 0; k < n; k++) name[k] = data[i + k] == '/' || !data[i + k] ? '_' : (char)data[i + k];
        name[n] = 0;
        i += n;
        const uint8_t *content = NULL;
        size_t clen = 0;
        if (kind == 0) {
            if (i >= size) break;
            clen = data[i++];
            if (i + clen > size) clen = size - i;
            content = data + i;
            i += clen;
        }
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s%s%s", out, cur, *cur ? "/" : "", name);
        struct stat sb;
        if (lstat(path, &sb) == 0) continue; /* the first of two equal names wins */
        if (strchr(name, '\n')) refused = 1; /* the manifest has a line per file */
        switch (kind) {
            case 0:
                if (nw == MAX_FILES) break;
                put_file(path, content, clen, exec ? 0755 : 0644);
                snprintf(wants[nw].rel, sizeof wants[nw].rel, "%s%s%s", cur, *cur ? "/" : "",
                         name);
                memcpy(wants[nw].content, content, clen);
                wants[nw++].len = clen;
                break;
            case 1:
                if (depth == MAX_DEPTH) break;
                if (mkdir(path, 0755)) abort();
                if (*cur) strcat(cur, "/");
                strcat(cur, name);
                depth++;
                break;
            case 3:
                if (symlink(exec ? outside : sentinel, path)) abort();
                refused = 1;
                break;
            case 4:
                if (mkfifo(path, 0644)) abort();
                refused = 1;
                break;
            case 5:
                if (mkdir(path, 0755)) abort();
                break;
        }
    }

    char err[512] = "";
    fl_store *st = store_open(fl_ctx_default(), st_dir, err, sizeof err);
    if (!st) abort();
    fl_digest h;
    int rc = store_put_dir(st, out, move, &h, err, sizeof err);
    /* nothing outside the output folder changed, whatever happened */
    snprintf(path, sizeof path, "%s/file", outside);
    struct stat sb;
    if (!same_file(sentinel, "keep me", 7) || !same_file(path, "keep me too", 11) ||
        lstat(sentinel, &sb) || (sb.st_mode & 0777) != 0644)
        abort();
    if (rc != 0) {
        if (!refused || !err[0]) { /* refused: only for a reason (the message names the
                                    * file, so it holds whatever the file's name holds) */
            fprintf(stderr, "fuzz_store: refused: %s\n", err);
            abort();
        }
    } else {
        if (refused) abort(); /* a link or a FIFO was stored */
        char tree[1024];
        if (store_tree(st, &h, tree, sizeof tree, err, sizeof err)) {
            fprintf(stderr, "fuzz_store: stored, but cannot be materialised: %s\n", err);
            abort();
        }
        for (int w = 0; w < nw; w++) {
            snprintf(path, sizeof path, "%s/%s", tree, wants[w].rel);
            if (!same_file(path, wants[w].content, wants[w].len)) abort();
        }
        uint8_t *m;
        size_t mlen, lines = 0;
        if (store_read(st, &h, &m, &mlen)) abort();
        for (size_t k = 0; k < mlen; k++) lines += m[k] == '\n';
        free(m);
        if (lines != (size_t)nw) abort(); /* one manifest line per file: no name split one */
    }
    uint64_t freed;
    store_gc(st, NULL, 0, &freed);
    store_close(st);
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    walk_remove(fd, "out");
    walk_remove(fd, "st");
    close(fd);
    return 0;
}
