/*
 * test_entry_of_lv.c: which change holds a character (doc_history.c's
 * notes__doc_entry_of_lv, under authorship, blame and the page's outline).
 * It is a binary search over an index of the applied changes by first LV,
 * built on demand; this checks it against a plain scan for every LV, on a
 * note typed key by key by two people who merge each other's changes at
 * random moments (so the log's order and the LVs' order part ways), after
 * every merge and commit (the index then lags the entries), and after a
 * refresh that rebuilds the state. White-box: it reads the entries.
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

static uint32_t scan(const notes_doc *d, notes_lv lv)
{
    for (size_t i = 0; i < d->ne; i++) {
        const struct entry *en = &d->e[i];
        if (en->applied && en->nev && lv >= en->first_lv &&
            lv - en->first_lv < en->nev)
            return (uint32_t)i;
    }
    return NONE;
}

/* Every LV the oplog has, and a few past its end. */
static void check_all(const notes_doc *d)
{
    notes_lv top = 0;
    for (size_t i = 0; i < d->ne; i++)
        if (d->e[i].applied && d->e[i].nev &&
            d->e[i].first_lv + d->e[i].nev > top)
            top = d->e[i].first_lv + d->e[i].nev;
    for (notes_lv lv = 0; lv < top + 3; lv++)
        assert_int_equal(notes__doc_entry_of_lv(d, lv), scan(d, lv));
}


/* Entries x and y trade their LV ranges; the index is to be built again. */
static void swap_ranges(notes_doc *d, uint32_t x, uint32_t y)
{
    notes_lv fl = d->e[x].first_lv;
    uint32_t nv = d->e[x].nev;
    d->e[x].first_lv = d->e[y].first_lv;
    d->e[x].nev = d->e[y].nev;
    d->e[y].first_lv = fl;
    d->e[y].nev = nv;
    d->lvx_ok = 0;
}

static void test_keystrokes_and_merges(void **state)
{
    (void)state;
    notes_identity *ia, *ib;
    notes_doc *a, *b;
    assert_int_equal(notes_identity_generate("ana", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("ben", &ib), NOTES_OK);
    assert_int_equal(notes_doc_memory(ia, NULL, &a), NOTES_OK);
    assert_int_equal(notes_doc_memory(ib, notes_doc_id(a), &b), NOTES_OK);
    srand(7);
    for (int k = 0; k < 600; k++) {
        notes_doc *d = rand() % 2 ? a : b;
        size_t len = notes_doc_length(d);
        char c[2] = {(char)('a' + rand() % 26), 0};
        if (len > 5 && rand() % 5 == 0)
            assert_int_equal(notes_doc_splice(d, (size_t)rand() % (len - 2), 1,
                                              NULL, 0),
                             NOTES_OK);
        else
            assert_int_equal(notes_doc_splice(d, len ? (size_t)rand() % (len + 1) : 0,
                                              0, c, 1),
                             NOTES_OK);
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK); /* a change a key */
        if (rand() % 7 == 0)
            test_ship(a, b);
        if (rand() % 5 == 0)
            test_ship(b, a);
        if (k % 50 == 0) {
            check_all(a);
            check_all(b);
        }
    }
    test_ship(a, b);
    test_ship(b, a);
    check_all(a);
    check_all(b);
    /* An entry applied after the index was built (as a commit's entry is,
     * its LVs taken before it exists): found by the scan behind the
     * index, and the index built again. */
    uint32_t k = (uint32_t)(a->ne / 2);
    while (k < a->ne && !a->e[k].nev)
        k++;
    assert_true(k < a->ne);
    a->e[k].applied = 0;
    a->lvx_ok = 0;
    assert_int_equal(notes__doc_entry_of_lv(a, a->e[k].first_lv), NONE);
    a->e[k].applied = 1; /* the index (ne and rebuilds unchanged) lacks it */
    assert_int_equal(notes__doc_entry_of_lv(a, a->e[k].first_lv), k);
    assert_false(a->lvx_ok);
    check_all(a);
    /* Changes whose LVs are not in log order (the index sorts them): two
     * entries' ranges swapped, then put back. */
    uint32_t lo = 0, hi = (uint32_t)a->ne - 1;
    while (!a->e[lo].nev)
        lo++;
    while (!a->e[hi].nev)
        hi--;
    assert_true(lo < hi);
    swap_ranges(a, lo, hi);
    check_all(a);
    swap_ranges(a, lo, hi);
    check_all(a);
    /* The same text, and every character held by some change. */
    size_t na, nb;
    const char *ta = notes_doc_text(a, &na), *tb = notes_doc_text(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na);
    uint32_t *who = NULL;
    size_t ncp = 0;
    assert_int_equal(notes_doc_authorship(a, &who, &ncp), NOTES_OK);
    assert_int_equal(ncp, notes_doc_length(a));
    for (size_t i = 0; i < ncp; i++)
        assert_true(who[i] < a->ne);
    notes_free(who);
    notes_doc_free(a);
    notes_doc_free(b);
    notes_identity_free(ia);
    notes_identity_free(ib);
}

int main(void)
{
    assert_int_equal(notes_init(), NOTES_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keystrokes_and_merges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
