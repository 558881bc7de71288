/*
 * test_flush_many.c: a batch of notes new to a replica made durable at
 * once (NOTES_DEFER_MERGE on a new note, notes_doc_flush_many), what a
 * first sync of many notes uses. The rules checked here:
 * - a deferred merge into a note new here writes its log but no state
 *   file; a process that dies before the flush leaves notes that open
 *   whole, read as unacknowledged (no damage);
 * - a crash of the machine before the flush may keep any prefix of such
 *   a log (none of it was synced): an empty or partial header reads as a
 *   note never created, a cut record as a torn tail, never as damage, and
 *   the peer's bundle merges again;
 * - after notes_doc_flush_many every state file is in place (no temporary
 *   file left) and claims its log: losing the records is then damage; a
 *   note that had a state file before gets its next slot;
 * - docs of two replicas are refused.
 * A crash of the machine is simulated by cutting a log back to a prefix.
 */
#include <dirent.h>
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
#include "tmpdir.h"

#define K 4

/* K notes made on replica a ("note i"), their bundles; replica b empty. */
struct fixture {
    char *dir, *a, *b;
    notes_replica *ra, *rb;
    uint8_t id[K][16];
    uint8_t *bundle[K];
    size_t nb[K];
    char text[K][16];
};

static void setup_fixture(struct fixture *f)
{
    f->dir = test_tmpdir("flushmany");
    f->a = test_path(f->dir, "a");
    f->b = test_path(f->dir, "b");
    assert_int_equal(notes_replica_create(f->a, "ana", NULL, &f->ra), NOTES_OK);
    assert_int_equal(notes_replica_unlock(f->ra, NULL), NOTES_OK);
    assert_int_equal(notes_replica_create(f->b, "bo", NULL, &f->rb), NOTES_OK);
    assert_int_equal(notes_replica_unlock(f->rb, NULL), NOTES_OK);
    for (int i = 0; i < K; i++) {
        notes_doc *d;
        snprintf(f->text[i], sizeof(f->text[i]), "note %d", i);
        assert_int_equal(notes_doc_create(f->ra, &d), NOTES_OK);
        assert_int_equal(notes_doc_splice(d, 0, 0, f->text[i], strlen(f->text[i])),
                         NOTES_OK);
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
        memcpy(f->id[i], notes_doc_id(d), 16);
        assert_int_equal(notes_doc_export(d, NULL, 0, &f->bundle[i], &f->nb[i]),
                         NOTES_OK);
        notes_doc_free(d);
    }
}

static void teardown_fixture(struct fixture *f)
{
    for (int i = 0; i < K; i++)
        notes__free(f->bundle[i]);
    notes_replica_free(f->ra);
    notes_replica_free(f->rb);
    free(f->a);
    free(f->b);
    test_rmtree(f->dir);
}

/* Merge note i into b as a first sync does: deferred, a new log. */
static notes_doc *merge_new(struct fixture *f, int i)
{
    notes_doc *d;
    size_t added;
    assert_int_equal(notes_doc_create_id(f->rb, f->id[i], &d), NOTES_OK);
    notes_doc_set_defer(d, NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
    assert_int_equal(notes_doc_merge(d, f->bundle[i], f->nb[i], &added), NOTES_OK);
    assert_int_equal(added, 1);
    assert_true(notes_doc_needs_flush(d));
    return d;
}

/* Files in b's notes/ whose name holds `part`. */
static int count_files(const char *home, const char *part)
{
    char *dir = test_path(home, "notes");
    DIR *dd = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(dd);
    while ((e = readdir(dd)))
        n += strstr(e->d_name, part) != NULL;
    closedir(dd);
    free(dir);
    return n;
}

/* The child's docs (see test_crash_before_flush): global, so the stores
 * stay and valgrind finds them reachable. */
extern notes_doc *crash_kept[];
notes_doc *crash_kept[K];

static void test_crash_before_flush(void **state)
{
    (void)state;
    struct fixture f;
    setup_fixture(&f);
    /* A process that dies before its flush (no exit path writes state). */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Never freed (freeing flushes), but kept where a leak checker
         * sees them: what a crash leaves is not a leak of the code. */
        for (int i = 0; i < K; i++)
            crash_kept[i] = merge_new(&f, i);
        raise(SIGKILL); /* dies as a crash does: no exit path, no leak check */
        _exit(1);
    }
    test_expect_killed(pid);
    assert_int_equal(count_files(f.b, ".state"), 0); /* nothing claimed */
    assert_int_equal(count_files(f.b, ".new"), 0);
    for (int i = 0; i < K; i++)
        test_expect_note(f.rb, f.id[i], f.text[i], 1); /* whole, unacknowledged */

    /* The machine crashes too, each log keeping some prefix of what was
     * written: nothing, part of the header, the header, part of the
     * record. None of it is damage; note 3 opens empty. */
    long keep[K] = {0, 20, 32, 0};
    char *log3 = test_note_file(f.b, f.id[3], "log");
    keep[3] = test_file_size(log3) - 7;
    free(log3);
    for (int i = 0; i < K; i++) {
        char *log = test_note_file(f.b, f.id[i], "log");
        assert_int_equal(truncate(log, keep[i]), 0);
        free(log);
    }
    test_expect_note(f.rb, f.id[0], NULL, 1);
    test_expect_note(f.rb, f.id[1], NULL, 1);
    test_expect_note(f.rb, f.id[2], "", 1);
    test_expect_note(f.rb, f.id[3], "", 1);

    /* The peer still has them: the next sync brings them in, flushed. */
    notes_doc *docs[K];
    for (int i = 0; i < K; i++) {
        size_t added;
        assert_int_equal(notes_doc_create_id(f.rb, f.id[i], &docs[i]), NOTES_OK);
        notes_doc_set_defer(docs[i], NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
        assert_int_equal(notes_doc_merge(docs[i], f.bundle[i], f.nb[i], &added),
                         NOTES_OK);
        assert_int_equal(added, 1);
    }
    assert_int_equal(notes_doc_flush_many(docs, K), NOTES_OK);
    for (int i = 0; i < K; i++)
        notes_doc_free(docs[i]);
    for (int i = 0; i < K; i++)
        test_expect_note(f.rb, f.id[i], f.text[i], 1);
    teardown_fixture(&f);
}

static void test_flush_claims(void **state)
{
    (void)state;
    struct fixture f;
    notes_doc *docs[K];
    setup_fixture(&f);
    /* Note 0 is on b already (state present): its next merge writes the
     * state's other slot, in place, in the same batch. */
    notes_doc *d0 = merge_new(&f, 0);
    assert_int_equal(notes_doc_flush(d0), NOTES_OK);
    notes_doc_free(d0);
    {
        notes_doc *d;
        size_t added;
        uint8_t *b2;
        size_t n2;
        assert_int_equal(notes_doc_open(f.ra, f.id[0], &d), NOTES_OK);
        assert_int_equal(notes_doc_splice(d, 0, 0, "> ", 2), NOTES_OK);
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
        assert_int_equal(notes_doc_export(d, NULL, 0, &b2, &n2), NOTES_OK);
        notes_doc_free(d);
        assert_int_equal(notes_doc_open(f.rb, f.id[0], &docs[0]), NOTES_OK);
        notes_doc_set_defer(docs[0], NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
        assert_int_equal(notes_doc_merge(docs[0], b2, n2, &added), NOTES_OK);
        assert_int_equal(added, 1);
        notes__free(b2);
        snprintf(f.text[0], sizeof(f.text[0]), "> note 0");
    }
    char *log0 = test_note_file(f.b, f.id[0], "log");
    long before0 = test_file_size(log0) - 1; /* less than the new record */
    for (int i = 1; i < K; i++)
        docs[i] = merge_new(&f, i);
    assert_int_equal(count_files(f.b, ".state"), 1);
    assert_int_equal(notes_doc_flush_many(docs, K), NOTES_OK);
    for (int i = 0; i < K; i++) {
        assert_false(notes_doc_needs_flush(docs[i]));
        notes_doc_free(docs[i]);
    }
    assert_int_equal(count_files(f.b, ".state"), K);
    assert_int_equal(count_files(f.b, ".tmp"), 0);
    for (int i = 0; i < K; i++)
        test_expect_note(f.rb, f.id[i], f.text[i], 1);
    /* Acknowledged now: a log cut back is damage, for a new note and for
     * the one whose slot was written in place. */
    char *log1 = test_note_file(f.b, f.id[1], "log");
    assert_int_equal(truncate(log1, test_file_size(log1) - 7), 0);
    test_expect_note(f.rb, f.id[1], "", 0);
    assert_int_equal(truncate(log0, before0), 0);
    test_expect_note(f.rb, f.id[0], "note 0", 0);
    free(log0);
    free(log1);
    teardown_fixture(&f);
}

static void test_refused(void **state)
{
    (void)state;
    struct fixture f;
    notes_doc *docs[2];
    setup_fixture(&f);
    docs[0] = merge_new(&f, 0);
    assert_int_equal(notes_doc_open(f.ra, f.id[1], &docs[1]), NOTES_OK);
    notes_doc_set_defer(docs[1], NOTES_DEFER_STATE);
    assert_int_equal(notes_doc_splice(docs[1], 0, 0, "x", 1), NOTES_OK);
    assert_int_equal(notes_doc_commit(docs[1], NULL), NOTES_OK);
    assert_int_equal(notes_doc_flush_many(docs, 2), NOTES_EINVAL);
    /* nothing owed, nothing to do */
    assert_int_equal(notes_doc_flush_many(NULL, 0), NOTES_OK);
    notes_doc_free(docs[0]);
    notes_doc_free(docs[1]);
    teardown_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_before_flush),
        cmocka_unit_test(test_flush_claims),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
