/*
 * digest.c — SHA-256 digests and their hex form (digest.h).
 *
 * DESIGN
 *   hash_bytes is one EVP_Digest call; the hex conversions are table-free loops.
 *   Malformed hex is refused, never half-parsed. Files are streamed through one
 *   EVP context a 1 MiB chunk at a time (hash_fd), the one file digest of the
 *   project: the store's ingest (which copies while it hashes), the cache key's
 *   input files, the library checks of link.c and `flowrun verify`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "digest.h"

#define DIGEST_IO_CHUNK (1u << 20) /* read/write granularity */

void hash_hex(const fl_digest *h, char out[65]) {
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

int hash_from_hex(const char *hex, fl_digest *out) {
    for (int i = 0; i < 32; i++) {
        int a = hexval(hex[2 * i]), b = a < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        out->b[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

void hash_bytes(const void *data, size_t len, fl_digest *out) {
    unsigned int n = 32;
    EVP_Digest(data, len, out->b, &n, EVP_sha256(), NULL);
}


/* Read fd to its end through SHA-256; with wfd >= 0 also copy what is read to wfd.
 * With writeback, each chunk's writeback to disk is started as soon as it has been
 * hashed (of wfd's copy, or of fd itself): the disk writes while we hash, and the
 * fsync that follows finds little left to do. */
int hash_fd(fl_ctx *c, int fd, int wfd, int writeback, fl_digest *out, char *err,
                   size_t errlen) {
    off_t pos = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = fl_malloc(c, DIGEST_IO_CHUNK);
    int rc = -1;
    if (!ctx || !buf || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf, DIGEST_IO_CHUNK);
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
    fl_free(c, buf);
    return rc;
}

int hash_file(fl_ctx *ctx, const char *path, fl_digest *out, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = hash_fd(ctx, fd, -1, 0, out, err, errlen);
    close(fd);
    return rc;
}
