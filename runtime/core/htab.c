/*
 * htab.c — the parts of the one hash table (htab.h) that allocate: growing,
 * emptying and freeing. The probe itself is inline in htab.h.
 *
 * Growing doubles the slots (16 at first) until the entries fit at most half
 * full, then puts every stored hash into the new slots; the stored hashes are
 * all that is needed, so growing never looks at the caller's keys. The new slots
 * come from the context before anything is moved, so a failed allocation leaves
 * the table as it was.
 */
#include "htab.h"

#include <string.h>

int fl_htab_grow_(fl_ctx *ctx, fl_htab *t, size_t k) {
    size_t cap = t->slots ? t->mask + 1 : 16;
    if (k > SIZE_MAX / 4 - t->n) return fl_error(ctx, FL_ENOMEM, NULL, "out of memory");
    size_t need = t->n + k;
    unsigned bits = 0;
    while (((size_t)1 << bits) < cap)
        bits++;
    while (cap / 2 < need) {
        cap *= 2;
        bits++;
    }
    fl_htab_slot *s = fl_calloc(ctx, cap, sizeof *s); /* checks cap * size for overflow */
    if (!s) return -1;
    fl_htab grown = {s, cap - 1, 0, 64 - bits};
    if (t->slots) {
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i].hash) fl_htab_add(&grown, t->slots[i].hash, t->slots[i].val);
        fl_free(ctx, t->slots);
    }
    *t = grown;
    return 0;
}

void fl_htab_clear(fl_htab *t) {
    if (t->slots) memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
    t->n = 0;
}

void fl_htab_free(fl_ctx *ctx, fl_htab *t) {
    fl_free(ctx, t->slots);
    memset(t, 0, sizeof *t);
}
