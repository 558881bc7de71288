/*
 * test_doc_shared.c: one handle of a note for a daemon's page server and its
 * sync sessions (notes_doc_open_shared), as `notes serve` uses it. Checked:
 * - holders of one replica object get one handle; another replica object
 *   gets its own; the handle lives until its last holder frees it;
 * - a page's commit through it is exported by sync at once, and sync's
 *   refresh reads nothing (it does not even take the replica's lock, which
 *   the test holds: a re-read would wait for it);
 * - sync's merge of a peer's change reaches the page's observer at once;
 * - another process's append is still read by a refresh;
 * - notes_doc_discard drops uncommitted edits in place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/file.h>
#include <cmocka.h>

#include "internal.h"
#include "peerbundle.h"
#include "tmpdir.h"

static void expect_text(notes_doc *d, const char *want)
{
    size_t n;
    const char *t = notes_doc_text(d, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(t, want, n);
}

/* What the page's observer saw (web/server/coedit.c keeps its mirror so). */
struct seen {
    char ins[64];
    int calls;
};

static void on_text(void *ud, size_t pos, size_t del, const char *ins,
                    size_t nbytes)
{
    struct seen *s = ud;
    (void)pos;
    (void)del;
    s->calls++;
    if (ins && nbytes < sizeof(s->ins) - strlen(s->ins))
        strncat(s->ins, ins, nbytes);
}

/* The replica's lock held by another open file: what a writer elsewhere
 * holds while it appends. A read of the log would wait for it. */
static int hold_lock(const struct peer_bundle *f)
{
    char *lp = test_path(f->home, "lock");
    int fd = open(lp, O_RDWR);
    free(lp);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    return fd;
}

static void one_handle_per_replica_object(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *page, *sync, *again, *elsewhere;
    notes_replica *other;
    peer_bundle_setup(&f, "shared");
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 0, &page), NOTES_OK);
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 1, &sync), NOTES_OK);
    assert_ptr_equal(page, sync);
    /* Another replica object of the same folder: a handle of its own. */
    assert_int_equal(notes_replica_open(f.home, &other), NOTES_OK);
    assert_int_equal(notes_doc_open_shared(other, f.id, 1, &elsewhere), NOTES_OK);
    assert_ptr_not_equal(elsewhere, page);
    notes_doc_free(elsewhere);
    notes_replica_free(other);
    /* The page lets go: sync's holder still works, and commits. */
    notes_doc_free(page);
    expect_text(sync, "base");
    assert_int_equal(notes_doc_splice(sync, 4, 0, "!", 1), NOTES_OK);
    assert_int_equal(notes_doc_commit(sync, NULL), NOTES_OK);
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 0, &again), NOTES_OK);
    assert_ptr_equal(again, sync);
    notes_doc_free(again);
    notes_doc_free(sync);
    /* The last holder closed it: the next open is a new handle that reads
     * what was committed. */
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 0, &again), NOTES_OK);
    expect_text(again, "base!");
    notes_doc_free(again);
    peer_bundle_teardown(&f);
}

static void page_commit_is_exported_without_a_read(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *page, *sync, *cli;
    uint8_t(*heads)[32], *b = NULL;
    size_t nh, n;
    peer_bundle_setup(&f, "shared");
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 0, &page), NOTES_OK);
    notes_doc_set_defer(page, NOTES_DEFER_STATE); /* as the page server */
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 1, &sync), NOTES_OK);
    assert_int_equal(notes_doc_heads(sync, &heads, &nh), NOTES_OK);
    assert_int_equal(notes_doc_change_count(sync), 1);
    notes_splice sp = {4, 0, " typed", 6};
    assert_int_equal(notes_doc_commit_at(page, (const uint8_t(*)[32])heads, nh,
                                         &sp, 1, NULL),
                     NOTES_OK);
    /* Sync's refresh while a writer elsewhere holds the lock: nothing to
     * read, so nothing waits (alarm: a re-read would hang here). */
    int fd = hold_lock(&f);
    alarm(10);
    assert_int_equal(notes_doc_refresh(sync), NOTES_OK);
    alarm(0);
    assert_int_equal(notes_doc_change_count(sync), 2);
    assert_int_equal(notes_doc_export(sync, (const uint8_t(*)[32])heads, nh,
                                      &b, &n),
                     NOTES_OK);
    assert_int_equal(notes_bundle_count(b, n), 1);
    notes_free(b);
    assert_int_equal(flock(fd, LOCK_UN), 0);
    close(fd);
    /* Another process's commit (a handle of its own, as the CLI's) is
     * still read by the refresh: the log grew. */
    assert_int_equal(notes_doc_open(f.r, f.id, &cli), NOTES_OK);
    assert_int_equal(notes_doc_splice(cli, 0, 0, "> ", 2), NOTES_OK);
    assert_int_equal(notes_doc_commit(cli, NULL), NOTES_OK);
    notes_doc_free(cli);
    assert_int_equal(notes_doc_refresh(sync), NOTES_OK);
    assert_int_equal(notes_doc_change_count(sync), 3);
    expect_text(page, "> base typed");
    notes_free(heads);
    notes_doc_free(page);
    notes_doc_free(sync);
    peer_bundle_teardown(&f);
}

static void sync_merge_reaches_the_page(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *page, *sync, *fresh;
    struct seen seen;
    size_t added;
    memset(&seen, 0, sizeof(seen));
    peer_bundle_setup(&f, "shared");
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 0, &page), NOTES_OK);
    notes_doc_set_defer(page, NOTES_DEFER_STATE);
    expect_text(page, "base");
    notes_doc_observe(page, on_text, &seen);
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 1, &sync), NOTES_OK);
    /* A live push, merged as a session merges it. */
    notes_doc_set_defer(sync, NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
    assert_int_equal(notes_doc_merge(sync, f.bundle, f.nb, &added), NOTES_OK);
    assert_int_equal(added, 1);
    /* The page's observer was told during the merge, nothing read since. */
    assert_true(seen.calls >= 1);
    assert_string_equal(seen.ins, "+peer");
    expect_text(page, "base+peer");
    assert_int_equal(notes_doc_change_count(page), 2);
    /* Durable once flushed by either holder; the page lets go first. */
    assert_true(notes_doc_needs_flush(page));
    notes_doc_observe(page, NULL, NULL);
    notes_doc_free(page);
    assert_int_equal(notes_doc_flush(sync), NOTES_OK);
    notes_doc_free(sync);
    assert_int_equal(notes_doc_open(f.r, f.id, &fresh), NOTES_OK);
    assert_int_equal(notes_doc_intact(fresh), NOTES_OK);
    expect_text(fresh, "base+peer");
    notes_doc_free(fresh);
    peer_bundle_teardown(&f);
}

static void discard_keeps_the_handle(void **state)
{
    (void)state;
    struct peer_bundle f;
    notes_doc *page, *sync;
    peer_bundle_setup(&f, "shared");
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 0, &page), NOTES_OK);
    assert_int_equal(notes_doc_open_shared(f.r, f.id, 1, &sync), NOTES_OK);
    assert_int_equal(notes_doc_splice(page, 0, 4, "gone", 4), NOTES_OK);
    assert_true(notes_doc_dirty(sync));
    assert_int_equal(notes_doc_discard(page), NOTES_OK);
    assert_false(notes_doc_dirty(sync));
    expect_text(sync, "base");
    assert_int_equal(notes_doc_refresh(sync), NOTES_OK); /* no pending */
    notes_doc_free(page);
    notes_doc_free(sync);
    peer_bundle_teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_handle_per_replica_object),
        cmocka_unit_test(page_commit_is_exported_without_a_read),
        cmocka_unit_test(sync_merge_reaches_the_page),
        cmocka_unit_test(discard_keeps_the_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
