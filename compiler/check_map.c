/*
 * check_map.c — the checker's string -> int map (chk_map, check.h): declaration
 * names, the names visible in a body, generated combine names, call counts.
 *
 * Open addressing with linear probing over a power-of-two table kept at most half
 * full, FNV-1a as the hash. Keys are borrowed (they live in the AST arena or the
 * compilation's scratch arena), so the map owns only its two arrays. Entries are
 * never removed; a whole map is dropped with chk_map_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- string -> int map -------------------------------------------------------------- */
static uint64_t map_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void map_grow(chk_map *m) {
    chk_map old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->keys = calloc((size_t)m->cap, sizeof *m->keys);
    m->vals = calloc((size_t)m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        fputs("flowc: out of memory\n", stderr);
        exit(2);
    }
    m->n = 0;
    for (int i = 0; i < old.cap; i++)
        if (old.keys[i]) chk_map_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

void chk_map_put(chk_map *m, const char *key, int val) {
    if ((m->n + 1) * 2 > m->cap) map_grow(m);
    int i = (int)(map_hash(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
}

int chk_map_get(const chk_map *m, const char *key) {
    if (!m->cap || !key) return -1;
    int i = (int)(map_hash(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void chk_map_free(chk_map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
