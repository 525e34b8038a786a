/*
 * hash.h — the one string hash of flow: 64-bit FNV-1a, inline.
 *
 * DESIGN
 *   Every in-memory table (plan interning, the store's ids, the compiler's
 *   names, the history's tables) and the state's cache key tag hash strings with
 *   this one function. It is FNV-1a (xor a byte, multiply by the 64-bit FNV
 *   prime) started from a fixed basis. The basis is 1469598103934665603, not the
 *   published 14695981039346656037: flow has always used this value, and the
 *   state database stores a tag derived from it (state.c, cache_k), so it must
 *   not change. It mixes well enough for short names; the hash table (htab.h)
 *   spreads a hash over its slots itself, so callers pass this one as it is.
 *   fl_hash_str_from and fl_hash_bytes_from continue a hash, so a prefix (a
 *   node number) can be mixed in before the string, or several records hashed
 *   as one.
 */
#ifndef FLOW_HASH_H
#define FLOW_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FL_HASH_BASIS 1469598103934665603ull
#define FL_HASH_PRIME 1099511628211ull

/* Continue hash h over the NUL-terminated string s. */
static inline uint64_t fl_hash_str_from(uint64_t h, const char *s) {
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * FL_HASH_PRIME;
    return h;
}

/* The hash of the NUL-terminated string s. */
static inline uint64_t fl_hash_str(const char *s) {
    return fl_hash_str_from(FL_HASH_BASIS, s);
}

/* Continue hash h over n bytes at p. */
static inline uint64_t fl_hash_bytes_from(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FL_HASH_PRIME;
    return h;
}

/* The hash of n bytes at p. */
static inline uint64_t fl_hash_bytes(const void *p, size_t n) {
    return fl_hash_bytes_from(FL_HASH_BASIS, p, n);
}

#endif /* FLOW_HASH_H */
