/*
 * check_map.c — the checker's string -> int map (chk_map, check.h): declaration
 * names, the names visible in a body, generated combine names, call counts.
 *
 * The entries are one array (key, value) in the order they were added; the
 * project's one hash table (htab.h) finds an entry's index from the key's hash
 * (hash.h), and the loop here compares the key strings. Keys are borrowed (they
 * live in the AST arena or the compilation's scratch arena), so the map owns
 * only its array and its table. Entries are never removed; a whole map is
 * dropped with chk_map_free. Everything comes from the compilation's context:
 * when something cannot grow, chk_map_put leaves the map as it was and returns
 * -1 (the context has recorded FL_ENOMEM; the driver stops).
 */
#include <string.h>

#include "check.h"
#include "hash.h"

/* The slot of key's entry, or the empty slot where it would go; NULL when the
 * map has no table yet. */
static inline __attribute__((always_inline)) fl_htab_slot *map_slot(const chk_map *m,
                                                                    const char *key, uint64_t h) {
    fl_htab_slot *s = fl_htab_find(&m->tab, h);
    while (s && s->hash && strcmp(m->e[s->val].key, key))
        s = fl_htab_next(&m->tab, s, h);
    return s;
}

int chk_map_put(fl_ctx *ctx, chk_map *m, const char *key, int val) {
    if (!key) return -1; /* a key that could not be allocated */
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 8;
        struct chk_entry *e = fl_reallocarray(ctx, m->e, (size_t)cap, sizeof *e);
        if (!e) return -1;
        m->e = e;
        m->cap = cap;
    }
    if (fl_htab_reserve(ctx, &m->tab, 1)) return -1;
    uint64_t h = fl_hash_str(key);
    fl_htab_slot *s = map_slot(m, key, h);
    if (s->hash) {
        m->e[s->val].val = val;
        return 0;
    }
    fl_htab_fill(&m->tab, s, h, (uint64_t)m->n);
    m->e[m->n++] = (struct chk_entry){key, val};
    return 0;
}

int chk_map_get(const chk_map *m, const char *key) {
    if (!key) return -1;
    fl_htab_slot *s = map_slot(m, key, fl_hash_str(key));
    return s && s->hash ? m->e[s->val].val : -1;
}

void chk_map_free(fl_ctx *ctx, chk_map *m) {
    fl_free(ctx, m->e);
    fl_htab_free(ctx, &m->tab);
    memset(m, 0, sizeof *m);
}
