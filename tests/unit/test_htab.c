/* test_htab.c — the one hash table (htab.h): entries found after growing, keys that
 * share a hash told apart by the caller's compare loop, hashes 0 and 1 usable, a
 * failed allocation leaving the table as it was, clearing and freeing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "htab.h"

/* A small string set over the table, the way its users write one: the entries in
 * an array, the slot's value an index into it. hashfn lets a test force collisions. */
typedef struct set {
    fl_htab t;
    char keys[4096][16];
    size_t n;
    uint64_t (*hashfn)(const char *);
} set;

static uint64_t real_hash(const char *s) {
    return fl_hash_str(s);
}
static uint64_t one_hash(const char *s) { /* every key collides */
    (void)s;
    return 42;
}

/* The index of key, or -1; with add, it is added when absent (-2: out of memory). */
static long set_find(fl_ctx *c, set *s, const char *key, int add) {
    if (add && fl_htab_reserve(c, &s->t, 1)) return -2;
    uint64_t h = s->hashfn(key);
    fl_htab_slot *e = fl_htab_find(&s->t, h);
    for (; e && e->hash; e = fl_htab_next(&s->t, e, h))
        if (!strcmp(s->keys[e->val], key)) return (long)e->val;
    if (!add) return -1;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    fl_htab_fill(&s->t, e, h, s->n);
    return (long)s->n++;
}

static void test_grows_and_finds(void **state) {
    (void)state;
    fl_ctx c;
    fl_ctx_init(&c);
    static set s = {.hashfn = real_hash};
    char k[16];
    assert_int_equal(set_find(&c, &s, "absent", 0), -1); /* no slots yet */
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(set_find(&c, &s, k, 1), i);
        assert_true(s.t.n * 2 <= s.t.mask + 1); /* never more than half full */
    }
    assert_int_equal(s.t.n, 3000);
    for (int i = 0; i < 3000; i++) { /* each found, at its own index, after many growths */
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(set_find(&c, &s, k, 0), i);
        assert_int_equal(set_find(&c, &s, k, 1), i); /* adding again finds it */
    }
    assert_int_equal(s.t.n, 3000);
    assert_int_equal(set_find(&c, &s, "k3000", 0), -1);
    fl_htab_clear(&s.t);
    assert_int_equal(s.t.n, 0);
    assert_int_equal(set_find(&c, &s, "k1", 0), -1);
    assert_true(fl_htab_room(&s.t) > 0); /* the slots are kept */
    fl_htab_free(&c, &s.t);
    assert_null(s.t.slots);
    assert_int_equal(fl_htab_room(&s.t), 0);
}

static void test_collisions_told_apart(void **state) {
    (void)state;
    fl_ctx c;
    fl_ctx_init(&c);
    static set s = {.hashfn = one_hash};
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "c%d", i);
        assert_int_equal(set_find(&c, &s, k, 1), i);
    }
    for (int i = 99; i >= 0; i--) {
        snprintf(k, sizeof k, "c%d", i);
        assert_int_equal(set_find(&c, &s, k, 0), i);
    }
    assert_int_equal(set_find(&c, &s, "c100", 0), -1);
    fl_htab_free(&c, &s.t);
}

static void test_hash_zero_and_one(void **state) {
    (void)state;
    fl_ctx c;
    fl_ctx_init(&c);
    fl_htab t = {0};
    assert_int_equal(fl_htab_reserve(&c, &t, 2), 0);
    fl_htab_add(&t, 0, 7); /* 0 would read as an empty slot if stored as it is */
    fl_htab_add(&t, 1, 8);
    fl_htab_slot *s = fl_htab_find(&t, 0);
    assert_non_null(s);
    assert_int_not_equal(s->hash, 0);
    int seen7 = 0, seen8 = 0; /* 0 and 1 share a stored hash: both are candidates */
    for (; s->hash; s = fl_htab_next(&t, s, 0)) {
        seen7 += s->val == 7;
        seen8 += s->val == 8;
    }
    assert_int_equal(seen7 + seen8, 2);
    fl_htab_free(&c, &t);
}

static void test_out_of_memory(void **state) {
    (void)state;
    fl_ctx c;
    fl_ctx_init(&c);
    fl_htab t = {0};
    c.fail_at = 1; /* the first allocation fails */
    assert_int_equal(fl_htab_reserve(&c, &t, 1), -1);
    assert_int_equal(c.errcode, FL_ENOMEM);
    assert_null(t.slots);
    fl_error_clear(&c);
    c.fail_at = 0;
    assert_int_equal(fl_htab_reserve(&c, &t, 8), 0); /* 16 slots: full at 8 */
    for (uint64_t i = 0; i < 8; i++) fl_htab_add(&t, fl_hash_bytes(&i, sizeof i), i);
    assert_int_equal(fl_htab_room(&t), 0);
    fl_htab before = t;
    c.nalloc = 0;
    c.fail_at = 1; /* growing fails: the table is as it was */
    assert_int_equal(fl_htab_reserve(&c, &t, 1), -1);
    assert_int_equal(c.errcode, FL_ENOMEM);
    assert_memory_equal(&t, &before, sizeof t);
    for (uint64_t i = 0; i < 8; i++) {
        uint64_t h = fl_hash_bytes(&i, sizeof i);
        fl_htab_slot *s = fl_htab_find(&t, h);
        while (s->hash && s->val != i) s = fl_htab_next(&t, s, h);
        assert_int_equal(s->val, i);
    }
    c.fail_at = 0;
    assert_int_equal(fl_htab_reserve(&c, &t, 1), 0); /* and grows once memory is back */
    assert_true(fl_htab_room(&t) >= 1);
    assert_int_equal(fl_htab_reserve(&c, &t, SIZE_MAX / 2), -1); /* absurd: refused */
    fl_htab_free(&c, &t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_finds),
        cmocka_unit_test(test_collisions_told_apart),
        cmocka_unit_test(test_hash_zero_and_one),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
