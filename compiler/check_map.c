/*
 * check_map.c — the checker's string -> int map (chk_map, check.h): declaration
 * names, the names visible in a body, generated combine names, call counts.
 *
 * Open addressing with linear probing over a power-of-two table kept at most half
 * full, the project's one hash (hash.h). Keys are borrowed (they live in the AST arena or the
 * compilation's scratch arena), so the map owns only its two arrays. Entries are
 * never removed; a whole map is dropped with chk_map_free. The arrays come from
 * the compilation's context: when they cannot grow, chk_map_put leaves the map as
 * it was and returns -1 (the context has recorded FL_ENOMEM; the driver stops).
 */
#include <string.h>

#include "check.h"
#include "hash.h"

/* ---- string -> int map -------------------------------------------------------------- */
/* Double the table (16 slots at first) and insert every entry again; false when
 * out of memory (the map is then as it was). */
static bool map_grow(fl_ctx *ctx, chk_map *m) {
    chk_map old = *m;
    int cap = old.cap ? old.cap * 2 : 16;
    const char **keys = fl_calloc(ctx, (size_t)cap, sizeof *keys);
    int *vals = fl_calloc(ctx, (size_t)cap, sizeof *vals);
    if (!keys || !vals) {
        fl_free(ctx, keys);
        fl_free(ctx, vals);
        return false;
    }
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    m->n = 0;
    for (int i = 0; i < old.cap; i++)
        if (old.keys[i]) chk_map_put(ctx, m, old.keys[i], old.vals[i]);
    fl_free(ctx, old.keys);
    fl_free(ctx, old.vals);
    return true;
}

int chk_map_put(fl_ctx *ctx, chk_map *m, const char *key, int val) {
    if (!key) return -1; /* a key that could not be allocated */
    if ((m->n + 1) * 2 > m->cap && !map_grow(ctx, m)) return -1;
    int i = (int)(fl_hash_str(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

int chk_map_get(const chk_map *m, const char *key) {
    if (!m->cap || !key) return -1;
    int i = (int)(fl_hash_str(key) & (uint64_t)(m->cap - 1));
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void chk_map_free(fl_ctx *ctx, chk_map *m) {
    fl_free(ctx, m->keys);
    fl_free(ctx, m->vals);
    memset(m, 0, sizeof *m);
}
