/*
 * test_defer.c: deferred durability (notes_doc_set_defer, notes_doc_flush),
 * what a daemon on the live path uses. The rules checked here:
 * - subscribers are told at once, the state file waits for the flush;
 * - a commit's record is synced before the commit returns, a deferred
 *   merge's is not: a crash of the machine that loses it leaves a note
 *   that opens whole (the state never claimed it), without the change;
 * - once flushed, the state claims the records, so losing them is damage;
 * - a flush after another handle's commit does not take its claims back;
 * - notes_doc_free flushes.
 * A crash of the machine is simulated by cutting the log back to its size
 * before the unsynced write (what the page cache would have lost).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "notefile.h"
#include "peerbundle.h"
#include "tmpdir.h"

static int told;

static void on_change(void *arg, const char *home, const uint8_t id[16])
{
    (void)arg;
    (void)home;
    (void)id;
    told++;
}

/* A note with "base" committed in replica `home`, and a bundle of one more
 * change ("+peer") made on another replica that has the note too. */
static void test_deferred_merge(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *d;
    size_t added, sn;
    peer_bundle_setup(&f, "defer");
    char *log = test_note_file(f.home, f.id, "log"), *st = test_note_file(f.home, f.id, "state");
    long before = test_file_size(log);
    uint8_t *st0 = test_slurp(st, &sn);
    assert_non_null(st0);

    /* In a child that then dies without a flush (the process of a daemon
     * that crashed), so no exit path writes the state. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = notes_doc_open(f.r, f.id, &d) == NOTES_OK;
        if (ok) {
            notes_doc_set_defer(d, NOTES_DEFER_MERGE);
            told = 0;
            ok = notes_subscribe(on_change, NULL) == NOTES_OK &&
                 notes_doc_merge(d, f.bundle, f.nb, &added) == NOTES_OK &&
                 added == 1 && told >= 1 && /* told at once */
                 notes_doc_needs_flush(d) && test_same_file(st, st0, sn);
        }
        if (ok) /* dies as a crash does: no exit path, no leak check */
            raise(SIGKILL);
        _exit(1);
    }
    test_expect_killed(pid);
    assert_true(test_file_size(log) > before); /* written */
    assert_true(test_same_file(st, st0, sn));  /* the state waited */
    /* Another handle reads the change; the lagging state is no damage. */
    test_expect_note(f.r, f.id, "base+peer", 1);

    /* The machine crashes too: the unsynced record is lost. The note opens
     * whole, without it; nothing claimed it. */
    long after = test_file_size(log);
    assert_int_equal(truncate(log, before), 0);
    test_expect_note(f.r, f.id, "base", 1);

    /* The same merge again (a peer sends it again), now flushed: the state
     * claims the record, and losing it then is reported. */
    assert_int_equal(notes_doc_open(f.r, f.id, &d), NOTES_OK);
    notes_doc_set_defer(d, NOTES_DEFER_MERGE);
    assert_int_equal(notes_doc_merge(d, f.bundle, f.nb, &added), NOTES_OK);
    assert_int_equal(added, 1);
    assert_int_equal(test_file_size(log), after);
    assert_int_equal(notes_doc_flush(d), NOTES_OK);
    assert_false(notes_doc_needs_flush(d));
    assert_false(test_same_file(st, st0, sn));
    assert_int_equal(notes_doc_flush(d), NOTES_OK); /* nothing owed: a no-op */
    notes_doc_free(d);
    test_expect_note(f.r, f.id, "base+peer", 1);
    assert_int_equal(truncate(log, before), 0);
    test_expect_note(f.r, f.id, "base", 0);

    free(st0);
    free(log);
    free(st);
    peer_bundle_teardown(&f);
}

/* Without NOTES_DEFER_MERGE a merge is synced and its state written before
 * it returns, as before. */
static void test_default_is_durable(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *d;
    size_t added, sn;
    peer_bundle_setup(&f, "defer");
    char *st = test_note_file(f.home, f.id, "state");
    uint8_t *st0 = test_slurp(st, &sn);
    assert_non_null(st0);
    assert_int_equal(notes_doc_open(f.r, f.id, &d), NOTES_OK);
    assert_int_equal(notes_doc_merge(d, f.bundle, f.nb, &added), NOTES_OK);
    assert_false(notes_doc_needs_flush(d));
    assert_false(test_same_file(st, st0, sn));
    notes_doc_free(d);
    free(st0);
    free(st);
    peer_bundle_teardown(&f);
}

static void test_deferred_commit(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *d, *other;
    size_t sn;
    peer_bundle_setup(&f, "defer");
    char *log = test_note_file(f.home, f.id, "log"), *st = test_note_file(f.home, f.id, "state");
    uint8_t *st0 = test_slurp(st, &sn);
    assert_non_null(st0);

    assert_int_equal(notes_doc_open(f.r, f.id, &d), NOTES_OK);
    notes_doc_set_defer(d, NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
    assert_int_equal(notes_doc_splice(d, 4, 0, " one", 4), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_true(notes_doc_needs_flush(d));
    assert_true(test_same_file(st, st0, sn));
    long one = test_file_size(log);

    /* Another handle commits meanwhile (and writes the state, claiming
     * both records); the deferred flush afterwards must not take that back. */
    assert_int_equal(notes_doc_open(f.r, f.id, &other), NOTES_OK);
    assert_int_equal(notes_doc_splice(other, 8, 0, " two", 4), NOTES_OK);
    assert_int_equal(notes_doc_commit(other, NULL), NOTES_OK);
    notes_doc_free(other);
    assert_int_equal(notes_doc_flush(d), NOTES_OK);
    notes_doc_free(d);
    test_expect_note(f.r, f.id, "base one two", 1);
    assert_int_equal(truncate(log, one), 0); /* "two" was acknowledged */
    test_expect_note(f.r, f.id, "base one", 0);

    free(st0);
    free(log);
    free(st);
    peer_bundle_teardown(&f);
}

/* notes_doc_free flushes what a handle owes. */
static void test_free_flushes(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *d;
    size_t sn;
    peer_bundle_setup(&f, "defer");
    char *log = test_note_file(f.home, f.id, "log"), *st = test_note_file(f.home, f.id, "state");
    long before = test_file_size(log);
    uint8_t *st0 = test_slurp(st, &sn);
    assert_non_null(st0);
    assert_int_equal(notes_doc_open(f.r, f.id, &d), NOTES_OK);
    notes_doc_set_defer(d, NOTES_DEFER_STATE);
    assert_int_equal(notes_doc_splice(d, 0, 0, "> ", 2), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_true(test_same_file(st, st0, sn));
    notes_doc_free(d);
    assert_false(test_same_file(st, st0, sn));
    assert_int_equal(truncate(log, before), 0);
    test_expect_note(f.r, f.id, "base", 0); /* the commit was acknowledged */
    free(st0);
    free(log);
    free(st);
    peer_bundle_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferred_merge),
        cmocka_unit_test(test_default_is_durable),
        cmocka_unit_test(test_deferred_commit),
        cmocka_unit_test(test_free_flushes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
