/*
 * digest.c — SHA-256 digests and their hex form (digest.h).
 *
 * DESIGN
 *   hash_bytes is one EVP_Digest call; the hex conversions are table-free loops.
 *   Malformed hex is refused, never half-parsed.
 */
#include <openssl/evp.h>

#include "digest.h"

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

