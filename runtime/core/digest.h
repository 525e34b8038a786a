/*
 * digest.h — content digests: the SHA-256 of bytes, as 32 bytes or 64 hex digits.
 *
 * DESIGN
 *   A fl_digest names content: a cache key (recorder/cachekey.c), a stored object
 *   (recorder/store.c), a plan (the plan hash). It is a plain 32-byte value, copied
 *   and compared with memcpy/memcmp; the core holds keys in its instances without
 *   knowing how the recorder makes them, which is why the type lives here and not
 *   in the store. The digest itself is OpenSSL's (EVP); streaming a file through it
 *   is the store's business (hash_file in store.h).
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

#endif /* FLOW_DIGEST_H */
