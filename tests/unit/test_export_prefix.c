/*
 * test_export_prefix.c: notes_doc_export costs what the peer lacks, not the
 * history (doc_exchange.c, entry->prefix from doc_apply.c). Each entry
 * keeps a lower bound of how many of the first entries are all its
 * ancestors; export then walks only above the best bound among the peer's
 * heads. This checks, white-box, that every bound holds (each entry below
 * it is an ancestor, by a full walk), that a bound is tight where it can
 * be (a note typed by one person: every entry covers all before it), and
 * that export sends exactly the changes a full walk says the peer lacks,
 * for random sets of heads, on two people typing and merging at random
 * moments and on two long offline branches (wider than the walk that
 * extends a bound, so a bound stays low there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "devices.h"
#include "doc_internal.h"

static void check_bounds(notes_doc *d)
{
    uint8_t *anc = malloc(d->ne + 1);
    for (size_t j = 0; j < d->ne; j++) {
        uint32_t pf = notes__doc_prefix(d, (uint32_t)j);
        assert_int_equal(pf, d->e[j].prefix);
        assert_true(d->e[j].prefix_ok);
        assert_true(d->e[j].prefix <= j + 1);
        memset(anc, 0, d->ne + 1);
        assert_int_equal(notes__doc_mark_ancestors(d, (uint32_t)j, anc, 1),
                         NOTES_OK);
        for (size_t i = 0; i < d->e[j].prefix; i++)
            if (!anc[i])
                fail_msg("entry %zu: prefix %u but entry %zu is no ancestor",
                         j, d->e[j].prefix, i);
    }
    free(anc);
}

/* Export against `have` sends exactly what a full walk says is missing. */
static void check_export(notes_doc *d, const uint8_t (*have)[32], size_t n)
{
    uint8_t *known = calloc(d->ne + 1, 1);
    for (size_t h = 0; h < n; h++) {
        uint32_t e = notes__doc_hash_find(d, have[h]);
        if (e != NONE && !known[e])
            assert_int_equal(notes__doc_mark_ancestors(d, e, known, 1), NOTES_OK);
    }
    size_t want = 0;
    for (size_t i = 0; i < d->ne; i++)
        want += !known[i];
    free(known);
    uint8_t *b = NULL;
    size_t nb = 0;
    assert_int_equal(notes_doc_export(d, have, n, &b, &nb), NOTES_OK);
    assert_int_equal(notes_bundle_count(b, nb), want);
    notes_free(b);
}

static void random_exports(notes_doc *d, unsigned seed)
{
    srand(seed);
    for (int round = 0; round < 60; round++) {
        uint8_t have[4][32];
        size_t n = (size_t)(rand() % 4);
        for (size_t h = 0; h < n; h++) {
            if (rand() % 8 == 0) {
                memset(have[h], 0xab, 32); /* unknown to us */
                continue;
            }
            memcpy(have[h], d->e[(size_t)rand() % d->ne].c->id, 32);
        }
        check_export(d, (const uint8_t(*)[32])have, n);
    }
    uint8_t (*heads)[32] = NULL;
    size_t nh = 0;
    assert_int_equal(notes_doc_heads(d, &heads, &nh), NOTES_OK);
    check_export(d, (const uint8_t(*)[32])heads, nh); /* nothing */
    notes_free(heads);
}

static void type(notes_doc *d, int k)
{
    size_t len = notes_doc_length(d);
    char c[2] = {(char)('a' + k % 26), 0};
    assert_int_equal(notes_doc_splice(d, len ? (size_t)rand() % (len + 1) : 0,
                                      0, c, 1),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
}


struct two {
    notes_identity *ia, *ib;
    notes_doc *a, *b;
};

static int setup(void **state)
{
    struct two *t = calloc(1, sizeof(*t));
    assert_int_equal(notes_identity_generate("ana", &t->ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("ben", &t->ib), NOTES_OK);
    assert_int_equal(notes_doc_memory(t->ia, NULL, &t->a), NOTES_OK);
    assert_int_equal(notes_doc_memory(t->ib, notes_doc_id(t->a), &t->b), NOTES_OK);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct two *t = *state;
    notes_doc_free(t->a);
    notes_doc_free(t->b);
    notes_identity_free(t->ia);
    notes_identity_free(t->ib);
    free(t);
    return 0;
}

static void test_one_typist(void **state)
{
    struct two *t = *state;
    srand(1);
    for (int k = 0; k < 300; k++)
        type(t->a, k);
    for (size_t j = 0; j < t->a->ne; j++) {
        assert_int_equal(notes__doc_prefix(t->a, (uint32_t)j), j + 1); /* tight */
    }
    check_bounds(t->a);
    random_exports(t->a, 2);
}

static void test_two_typists(void **state)
{
    struct two *t = *state;
    srand(3);
    for (int k = 0; k < 400; k++) {
        type(rand() % 2 ? t->a : t->b, k);
        if (rand() % 6 == 0)
            test_ship(t->a, t->b);
        if (rand() % 4 == 0)
            test_ship(t->b, t->a);
    }
    test_ship(t->a, t->b);
    test_ship(t->b, t->a);
    check_bounds(t->a);
    check_bounds(t->b);
    random_exports(t->a, 4);
    random_exports(t->b, 5);
    /* After both have all: the last entry on each covers everything. */
    type(t->a, 0);
    assert_int_equal(notes__doc_prefix(t->a, (uint32_t)t->a->ne - 1), t->a->ne);
}

static void test_offline_branches(void **state)
{
    struct two *t = *state;
    srand(6);
    type(t->a, 0);
    test_ship(t->a, t->b);
    for (int k = 0; k < 150; k++) { /* apart, wider than the walk */
        type(t->a, k);
        type(t->b, k + 1);
    }
    test_ship(t->a, t->b);
    test_ship(t->b, t->a);
    check_bounds(t->a);
    check_bounds(t->b);
    random_exports(t->a, 7);
    random_exports(t->b, 8);
    size_t na, nb;
    const char *ta = notes_doc_text(t->a, &na), *tb = notes_doc_text(t->b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na);
}

int main(void)
{
    assert_int_equal(notes_init(), NOTES_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_typist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_typists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_branches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
