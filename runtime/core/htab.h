/*
 * htab.h — the one in-memory hash table of flow: 64-bit hash -> the caller's value.
 *
 * DESIGN
 *   Every table that finds things by key (the plan builder's interned strings,
 *   the store's identity records, the history's finished instances and
 *   preloaded cache entries, the compiler's name maps) is an fl_htab. The table
 *   does not know the keys. Each slot holds the key's 64-bit hash and one
 *   64-bit value that the caller chose: an index into its own array of entries,
 *   an offset into an arena, a pointer. The caller keeps the entries (a dense
 *   array, usually) and compares keys itself, in a loop over the slots whose
 *   hash equals the one it looks for:
 *
 *       for (fl_htab_slot *s = fl_htab_find(t, h); s && s->hash; s = fl_htab_next(t, s, h))
 *           if (same_key(entries[s->val], key)) return &entries[s->val];
 *
 *   Storing the whole hash means a slot of another key is passed over without
 *   touching its entry (a false match needs two 63-bit hashes to agree), and
 *   growing the table needs neither the keys nor a callback. The probe is
 *   inline, so a lookup on a hot path (one per instance in a run) makes no
 *   function call at all.
 *
 *   Open addressing, linear probing, a power-of-two number of slots, never more
 *   than half full. A slot's home is the top bits of hash * 2^64/phi (Fibonacci
 *   hashing), so a hash whose low bits are poor (FNV-1a of similar names, the
 *   first bytes of a digest) still spreads. Bit 0 of a stored hash is always
 *   set, so hash 0 can mark an empty slot; the functions below set it
 *   themselves, callers pass any 64-bit hash. Entries are never removed one by
 *   one (no user needs it, so there are no tombstones); fl_htab_clear empties
 *   the whole table.
 *
 *   Adding is two steps. fl_htab_reserve makes room for k more entries first
 *   (the only call that allocates: through the fl_ctx, and a failure is
 *   recorded there as FL_ENOMEM and returned as -1, the table left as it was).
 *   Then the caller probes as above; when the loop stops at an empty slot,
 *   fl_htab_fill puts the entry there. fl_htab_add puts an entry without
 *   looking for an equal one (the caller knows there is none). A zeroed
 *   fl_htab is an empty table with no slots; fl_htab_free gives the slots back.
 */
#ifndef FLOW_HTAB_H
#define FLOW_HTAB_H

#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

typedef struct fl_htab_slot {
    uint64_t hash; /* the entry's hash with bit 0 set; 0: an empty slot */
    uint64_t val;  /* the caller's: an index, an offset, a pointer */
} fl_htab_slot;

typedef struct fl_htab {
    fl_htab_slot *slots; /* mask + 1 of them; NULL until the first fl_htab_reserve */
    size_t mask;         /* slots - 1 */
    size_t n;            /* entries */
    unsigned shift;      /* 64 - log2(slots): a home slot is the top bits of the mixed hash */
} fl_htab;

#define FL_HTAB_MIX 0x9E3779B97F4A7C15ull /* 2^64 / the golden ratio */

/* The first slot, in h's probe order, that holds hash h or is empty; NULL when the
 * table has no slots yet. s->hash != 0: a candidate (compare the keys); 0: h's key
 * is not in the table, and s is where fl_htab_fill would put it. */
static inline fl_htab_slot *fl_htab_find(const fl_htab *t, uint64_t h) {
    if (!t->slots) return NULL;
    h |= 1;
    for (size_t i = (size_t)((h * FL_HTAB_MIX) >> t->shift);; i = (i + 1) & t->mask) {
        fl_htab_slot *s = &t->slots[i];
        if (s->hash == h || !s->hash) return s;
    }
}

/* The next such slot after s (a candidate whose key was not the one sought). */
static inline fl_htab_slot *fl_htab_next(const fl_htab *t, const fl_htab_slot *s, uint64_t h) {
    h |= 1;
    for (size_t i = (size_t)(s - t->slots);;) {
        i = (i + 1) & t->mask;
        fl_htab_slot *q = &t->slots[i];
        if (q->hash == h || !q->hash) return q;
    }
}

/* Put (h, val) into the empty slot s that a probe for h stopped at. The room must
 * have been reserved before that probe. */
static inline void fl_htab_fill(fl_htab *t, fl_htab_slot *s, uint64_t h, uint64_t val) {
    s->hash = h | 1;
    s->val = val;
    t->n++;
}

/* Put (h, val) in without looking for an equal key (room reserved first). */
static inline void fl_htab_add(fl_htab *t, uint64_t h, uint64_t val) {
    size_t i = (size_t)(((h | 1) * FL_HTAB_MIX) >> t->shift);
    while (t->slots[i].hash)
        i = (i + 1) & t->mask;
    fl_htab_fill(t, &t->slots[i], h, val);
}

/* How many more entries fit before the table must grow. */
static inline size_t fl_htab_room(const fl_htab *t) {
    return t->slots ? (t->mask + 1) / 2 - t->n : 0;
}

int fl_htab_grow_(fl_ctx *ctx, fl_htab *t, size_t k); /* htab.c: fl_htab_reserve's slow path */

/* Make room for k more entries: 0, or -1 when out of memory (recorded in ctx; the
 * table is unchanged). Growing moves the slots: a slot pointer from before is stale. */
static inline int fl_htab_reserve(fl_ctx *ctx, fl_htab *t, size_t k) {
    return k <= fl_htab_room(t) ? 0 : fl_htab_grow_(ctx, t, k);
}

/* Empty the table, keeping its slots. */
void fl_htab_clear(fl_htab *t);

/* Give the slots back; the table is then zeroed (empty, reusable). */
void fl_htab_free(fl_ctx *ctx, fl_htab *t);

#endif /* FLOW_HTAB_H */
