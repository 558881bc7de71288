/*
 * test_formats_index.c: the notes index (notes_fmt_index_read) on a real
 * replica made from the samples: what it holds matches the notes as
 * notes_doc_open gives them, and records damaged inside an index that
 * SQLite itself still reads (a blob cut, garbled, counts that lie, a row
 * without its note, a note's row of open items gone) are caught and the index rebuilt from the logs, the
 * same answers after.
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt_test.h"

static char dir[64];
static notes_replica *r;
static size_t nopen_expected; /* open action items over both samples */

static void import_sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char path[512];
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/samples/%s", shared ? shared : "../shared",
             name);
    char *md = slurp(path, &n);
    assert_non_null(md);
    notes_doc *d;
    notes_fmt_diag diag;
    assert_int_equal(notes_doc_create(r, &d), NOTES_OK);
    assert_int_equal(notes_fmt_md_import(d, md, n, &diag), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_fmt_outline o;
    assert_int_equal(notes_fmt_outline_doc(d, &o), NOTES_OK);
    for (size_t i = 0; i < o.nitems; i++)
        nopen_expected += o.items[i].kind == NOTES_FMT_ITEM_TASK && !o.items[i].done;
    notes_fmt_outline_clear(&o);
    notes_doc_free(d);
    free(md);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fmtindexXXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(notes_init(), NOTES_OK);
    char home[128];
    snprintf(home, sizeof(home), "%s/home", dir);
    assert_int_equal(notes_replica_create(home, "Ana", NULL, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    import_sample("community-2023-05-15.md");
    import_sample("kraft-2022-04-06.md");
    assert_true(nopen_expected > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    notes_replica_free(r);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* The index read whole: each note as notes_doc_open has it. Returns the
 * number of open items, and (when not NULL) a digest of what was read. */
static size_t read_check(int *rebuilt, char *digest, size_t cap)
{
    notes_fmt_index ix;
    assert_int_equal(notes_fmt_index_read(r, NOTES_FMT_INDEX_OPEN_ITEMS |
                                                 NOTES_FMT_INDEX_PARTICIPANTS,
                                          &ix),
                     NOTES_OK);
    assert_int_equal(ix.nnotes, 2);
    size_t open = 0, at = 0;
    for (size_t i = 0; i < ix.nnotes; i++) {
        const notes_fmt_index_note *x = &ix.notes[i];
        notes_doc *d;
        assert_int_equal(notes_doc_open(r, x->id, &d), NOTES_OK);
        const char *t = notes_doc_field(d, "title");
        if (t || x->title)
            assert_string_equal(t, x->title);
        assert_int_equal(x->changes, notes_doc_change_count(d));
        assert_int_equal(x->text_line, notes_fmt_md_text_line(d));
        assert_int_equal(x->nauthors, 1);
        assert_memory_equal(x->authors[0].key, notes_replica_public_key(r), 32);
        assert_false(x->damaged);
        assert_non_null(x->participants);
        for (size_t k = 0; k < x->nitems; k++) {
            const notes_fmt_item *it = &x->items[k];
            assert_int_equal(it->kind, NOTES_FMT_ITEM_TASK);
            assert_false(it->done);
            assert_true(it->verified);
            assert_int_equal(it->nauthors, 1);
            assert_true(x->numbers[k] >= 1);
            if (digest)
                at += (size_t)snprintf(digest + at, cap - at, "%zu:%s:%s;",
                                       x->numbers[k], it->owner ? it->owner : "-",
                                       it->text);
        }
        open += x->nitems;
        notes_doc_free(d);
    }
    if (rebuilt)
        *rebuilt = ix.stats.rebuilt;
    notes_fmt_index_clear(&ix);
    return open;
}

/* Change the index behind the library's back. */
static void tamper(const char *sql)
{
    char path[128];
    sqlite3 *db;
    snprintf(path, sizeof(path), "%s/home/index.sqlite", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    assert_true(sqlite3_changes(db) > 0);
    sqlite3_close(db);
}

static void test_index_matches_notes(void **state)
{
    (void)state;
    int rebuilt;
    assert_int_equal(read_check(&rebuilt, NULL, 0), nopen_expected);
    assert_int_equal(read_check(&rebuilt, NULL, 0), nopen_expected);
    assert_false(rebuilt); /* the second read: as it was */
}

static void test_index_records_damaged(void **state)
{
    (void)state;
    static char want[1 << 16], got[1 << 16];
    assert_int_equal(read_check(NULL, want, sizeof(want)), nopen_expected);
    static const char *const attacks[] = {
        "UPDATE note SET keys = x'0102'",                        /* cut */
        "UPDATE note SET keys = zeroblob(length(keys))",         /* strings not ended */
        "UPDATE note SET nkeys = 1000000",                       /* a count that lies */
        "UPDATE note SET nauthors = nkeys + 1",
        "UPDATE open_item SET data = substr(data, 1, length(data) - 3)",
        "UPDATE open_item SET data = randomblob(length(data))",
        "UPDATE open_item SET data = x'00000000'",
        "UPDATE open_item SET data = x''",                        /* emptied */
        "UPDATE open_item SET data = data || x'01'",             /* trailing bytes */
        "UPDATE open_item SET note = note + 1000",               /* no such note */
        "DELETE FROM open_item WHERE rowid IN (SELECT rowid FROM open_item LIMIT 1)",
    };
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        int rebuilt = 0;
        tamper(attacks[i]);
        size_t n = read_check(&rebuilt, got, sizeof(got));
        if (!rebuilt || n != nopen_expected || strcmp(want, got) != 0)
            fail_msg("%s: rebuilt %d, %zu open items", attacks[i], rebuilt, n);
    }
}

/* The index is read while the logs are stat'ed (in a second thread above
 * NOTES_INDEX_STAT_SPLIT notes; here for any): a note changed by another
 * handle since the last read is read as it is now, not as the early read
 * found it, and a note added is listed. Both paths: threaded and not. */
static void test_index_read_sees_changes(void **state)
{
    (void)state;
    static const char *const splits[] = {"1", "100000"};
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(setenv("NOTES_INDEX_STAT_SPLIT", splits[k], 1), 0);
        notes_fmt_index ix;
        assert_int_equal(notes_fmt_index_read(r, 0, &ix), NOTES_OK);
        size_t n0 = ix.nnotes;
        uint8_t id[16];
        memcpy(id, ix.notes[0].id, 16);
        notes_fmt_index_clear(&ix);
        /* The folder's stamp is trusted only once it is 2 s old: date it
         * back, so that the next read takes the known-folder (stat) path. */
        char nd[160];
        snprintf(nd, sizeof(nd), "%s/home/notes", dir);
        const struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
        assert_int_equal(utimensat(AT_FDCWD, nd, old, 0), 0);
        assert_int_equal(notes_fmt_index_read(r, 0, &ix), NOTES_OK);
        notes_fmt_index_clear(&ix);
        notes_doc *d;
        char title[64];
        snprintf(title, sizeof(title), "Renamed while listed %zu", k);
        assert_int_equal(notes_doc_open(r, id, &d), NOTES_OK);
        assert_int_equal(notes_doc_set_field(d, "title", title), NOTES_OK);
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
        notes_doc_free(d);
        /* The commit replaced the note's snapshot file, which dates the
         * folder: date it back to the very stamp the index remembered, so
         * that only the log's own stamp tells (the stat path). */
        assert_int_equal(utimensat(AT_FDCWD, nd, old, 0), 0);
        assert_int_equal(notes_fmt_index_read(r, 0, &ix), NOTES_OK);
        assert_int_equal(ix.nnotes, n0);
        int found = 0;
        for (size_t i = 0; i < ix.nnotes; i++)
            if (memcmp(ix.notes[i].id, id, 16) == 0) {
                assert_non_null(ix.notes[i].title);
                assert_string_equal(ix.notes[i].title, title);
                found = 1;
            }
        assert_true(found);
        notes_fmt_index_clear(&ix);
        /* A new note: the folder changed, the listing finds it. */
        assert_int_equal(notes_doc_create(r, &d), NOTES_OK);
        assert_int_equal(notes_doc_set_field(d, "title", "Added"), NOTES_OK);
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
        notes_doc_free(d);
        assert_int_equal(notes_fmt_index_read(r, 0, &ix), NOTES_OK);
        assert_int_equal(ix.nnotes, n0 + 1);
        notes_fmt_index_clear(&ix);
    }
    assert_int_equal(unsetenv("NOTES_INDEX_STAT_SPLIT"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_matches_notes),
        cmocka_unit_test(test_index_records_damaged),
        cmocka_unit_test(test_index_read_sees_changes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
