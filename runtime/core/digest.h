/*
 * digest.h — content digests: the SHA-256 of bytes, as 32 bytes or 64 hex digits.
 *
 * DESIGN
 *   A fl_digest names content: a cache key (recorder/cachekey.c), a stored object
 *   (recorder/store.c), a plan (the plan hash). It is a plain 32-byte value, copied
 *   and compared with memcpy/memcmp; the core holds keys in its instances without
 *   knowing how the recorder makes them, which is why the type lives here and not
 *   in the store. The digest itself is Nettle's SHA-256 (digest.c says why), through fl_sha256 or hash_bytes, the runtime's one
 *   way to hash; files are streamed through it by hash_fd/hash_file, the one file
 *   digest (the store copies while it hashes).
 */
#ifndef FLOW_DIGEST_H
#define FLOW_DIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_digest {
    uint8_t b[32]; /* SHA-256 */
} fl_digest;

void hash_hex(const fl_digest *h, char out[65]);
int hash_from_hex(const char *hex, fl_digest *out); /* 0 ok, -1 malformed */
void hash_bytes(const void *data, size_t len, fl_digest *out);

/* A SHA-256 in progress (Nettle's sha256_ctx inside; a plain value, no allocation,
 * nothing to free). init, any number of updates, final; none can fail. */
typedef struct fl_sha256 {
    _Alignas(8) unsigned char opaque[112];
} fl_sha256;
void sha256_init(fl_sha256 *s);
void sha256_update(fl_sha256 *s, const void *data, size_t len);
void sha256_final(fl_sha256 *s, fl_digest *out);

typedef struct fl_ctx fl_ctx;

/* Read fd to its end through SHA-256 (a buffer from c); with wfd >= 0 also copy what is
 * read to wfd; with writeback, start each chunk's writeback to disk once hashed. 0 ok;
 * -1 with err ("out of memory", "read: ...", "write: ..."). */
int hash_fd(fl_ctx *c, int fd, int wfd, int writeback, fl_digest *out, char *err, size_t errlen);
/* Stream a file through SHA-256. 0 ok; -1 with err ("cannot open PATH: ..."). */
int hash_file(fl_ctx *ctx, const char *path, fl_digest *out, char *err, size_t errlen);

#endif /* FLOW_DIGEST_H */
