/*
 * search_db.c: the search index's file (search_internal.h; docs/formats.md,
 * "Search"). HOME/index.sqlite is a cache of the logs: SQLite with an FTS5
 * table for the words, plain tables for the filters. The signed log stays
 * the one source of truth: each entry records the note's version (change
 * count and heads) and a stamp of its log file, a search re-indexes what
 * moved (search_update.c), and an index file SQLite cannot use is removed
 * and rebuilt from the logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "search_internal.h"

/* 'note' in PRAGMA application_id; the schema version in user_version. A
 * file with other values is not our index (or an older one): rebuilt. */
#define SEARCH_APP_ID 1852798053 /* 0x6e6f7465 */
#define SEARCH_SCHEMA 6
#define STR_(x) #x
#define STR(x) STR_(x)

/*
 * A checksum of what the index holds for a note (title, text): a search
 * checks it for every hit it shows, so damage SQLite does not notice (a
 * page of text garbled) is caught there and the index rebuilt. FNV-1a:
 * against accidents, not attacks (whoever can write the file can write
 * the checksum too; the logs stay the truth).
 */
sqlite3_int64 notes_fmt__search_sum(const char *title, const char *body)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const char *p = title ? title : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3u;
    h = (h ^ 0xffu) * 0x100000001b3u; /* a separator no UTF-8 holds */
    for (const char *p = body ? body : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3u;
    return (sqlite3_int64)(h >> 1);
}

/* checksum(title, body): notes_fmt__search_sum as an SQL function. */
static void checksum_fn(sqlite3_context *c, int argc, sqlite3_value **v)
{
    (void)argc;
    sqlite3_result_int64(c, notes_fmt__search_sum(
                                (const char *)sqlite3_value_text(v[0]),
                                (const char *)sqlite3_value_text(v[1])));
}

static const char schema_sql[] =
    "PRAGMA application_id = " STR(SEARCH_APP_ID) ";"
    "PRAGMA user_version = " STR(SEARCH_SCHEMA) ";"
    "CREATE TABLE note(rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,"
    " title TEXT, datetime TEXT, day TEXT, changes INTEGER NOT NULL,"
    " heads TEXT NOT NULL, stamp INTEGER NOT NULL, fm_lines INTEGER NOT NULL,"
    " damaged INTEGER NOT NULL, sum INTEGER NOT NULL,"
    /* the notes index (search_notes.c): what `notes list` shows; damage:
     * notes_doc_damage said something (the CLI opens the note to say it);
     * keys: the facts of nkeys keys, the first nauthors the note's authors;
     * nopen: its open action items (the records in open_item) */
    " last_ms INTEGER NOT NULL, text_line INTEGER NOT NULL,"
    " damage INTEGER NOT NULL, nauthors INTEGER NOT NULL,"
    " nkeys INTEGER NOT NULL, keys BLOB NOT NULL, nopen INTEGER NOT NULL);"
    "CREATE INDEX note_day ON note(day);"
    "CREATE INDEX note_damaged ON note(id) WHERE damaged;"
    /* "notes_dir": the stamp of the notes folder when every note in it
     * was last found indexed (list_known). */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER);"
    /* title, the text (body), the other front-matter values (fields) */
    "CREATE VIRTUAL TABLE fts USING fts5(title, body, fields,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TABLE tag(note INTEGER NOT NULL, name TEXT COLLATE NOCASE);"
    "CREATE INDEX tag_note ON tag(note);"
    "CREATE INDEX tag_name ON tag(name);"
    "CREATE TABLE participant(note INTEGER NOT NULL, name TEXT COLLATE NOCASE);"
    "CREATE INDEX participant_note ON participant(note);"
    "CREATE INDEX participant_name ON participant(name);"
    /* every decision and action item: its number among the note's items
     * (1-based), kind (enum notes_fmt_item_kind), done, owner (as resolved
     * against the participants, and as written: the search's owner:), line
     * in the text */
    "CREATE TABLE item(note INTEGER NOT NULL, number INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, done INTEGER NOT NULL, owner TEXT COLLATE NOCASE,"
    " written TEXT COLLATE NOCASE, line INTEGER NOT NULL);"
    "CREATE INDEX item_note ON item(note);"
    "CREATE INDEX item_owner ON item(owner);"
    "CREATE INDEX item_written ON item(written);"
    /* a note's open action items as `notes decisions` shows them (the
     * records of search_notes.c), beside the note table so that the scans
     * of that table (each search's freshness check, `notes list`) do not
     * read them */
    "CREATE TABLE open_item(note INTEGER PRIMARY KEY, data BLOB NOT NULL);";

/* ---- the index file ---- */

char *notes_fmt__search_path(notes_replica *r)
{
    const char *home = notes_replica_home(r);
    size_t n = strlen(home) + sizeof("/index.sqlite");
    char *p = notes__malloc(n);
    if (p)
        snprintf(p, n, "%s/index.sqlite", home);
    return p;
}

/* The file and what SQLite may have left beside it. */
void notes_fmt__search_discard(const char *path)
{
    static const char *const ext[] = {"", "-journal", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof(p), "%s%s", path, ext[i]) < sizeof(p))
            unlink(p);
    }
}

/* An error that says the file is not a usable index (rather than that the
 * disk or memory failed): the index is then rebuilt. */
int notes_fmt__search_unusable(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ||
           rc == SQLITE_FORMAT || rc == SQLITE_ERROR || rc == SQLITE_SCHEMA ||
           rc == SQLITE_MISMATCH || rc == SQLITE_RANGE ||
           rc == SQLITE_CONSTRAINT;
}

int notes_fmt__search_fail(sqlite3 *db, int rc, const char *what)
{
    int code = (rc & 0xff) == SQLITE_NOMEM ? NOTES_ENOMEM : NOTES_EIO;
    return notes_fmt__fail(code, "search index: %s: %s", what,
                           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/*
 * Open the index: 0 and *db ready, 1 when the file is not a usable index
 * (the caller discards it and tries again once), or an error.
 */
static int try_open(const char *path, sqlite3 **db)
{
    /* The index holds every note's text: readable by the owner only, as
     * the logs are (SQLite would create it 0644 less the umask; its
     * journal copies the file's mode). */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0)
        close(fd);
    int rc = sqlite3_open_v2(path, db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        int e = notes_fmt__search_unusable(rc) ? 1 : notes_fmt__search_fail(*db, rc, "cannot open it");
        sqlite3_close(*db);
        *db = NULL;
        return e;
    }
    sqlite3_extended_result_codes(*db, 1);
    sqlite3_create_function(*db, "checksum", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                            NULL, checksum_fn, NULL, NULL);
    /* A search beside a writer (the daemon's, another shell's) waits for
     * its transaction rather than failing. */
    sqlite3_busy_timeout(*db, 5000);
    /* Read through a map of the file, with a cache that holds the note
     * table: a search then makes no read(2) per page. */
    sqlite3_exec(*db, "PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -16384;",
                 NULL, NULL, NULL);
    int app = 0, ver = 0, ntables = 0;
    rc = pragma_int(*db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = pragma_int(*db, "PRAGMA user_version", &ver);
    if (rc == SQLITE_OK)
        rc = pragma_int(*db, "SELECT count(*) FROM sqlite_master", &ntables);
    if (rc == SQLITE_OK && app == 0 && ver == 0 && ntables == 0) {
        /* A new file. Under the write lock, and only if nobody made the
         * schema meanwhile (two first searches at once). */
        rc = sqlite3_exec(*db, "BEGIN IMMEDIATE;", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = pragma_int(*db, "SELECT count(*) FROM sqlite_master", &ntables);
        if (rc == SQLITE_OK && ntables == 0)
            rc = sqlite3_exec(*db, schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(*db, "COMMIT;", NULL, NULL, NULL);
        else
            sqlite3_exec(*db, "ROLLBACK;", NULL, NULL, NULL);
        if (rc == SQLITE_OK && ntables == 0)
            return 0;
        if (rc == SQLITE_OK) { /* made by another process: check it */
            sqlite3_close(*db);
            *db = NULL;
            return try_open(path, db);
        }
    } else if (rc == SQLITE_OK && app == SEARCH_APP_ID && ver == SEARCH_SCHEMA) {
        /* Each table is there (a dropped one shows here rather than
         * halfway through a search). Not a count of the FTS table: that
         * reads every note's text. Damage inside is met by the search
         * and rebuilt there. */
        rc = pragma_int(*db,
                        "SELECT (SELECT 1 FROM fts LIMIT 1) IS NULL AND"
                        " (SELECT 1 FROM tag LIMIT 1) IS NULL AND"
                        " (SELECT 1 FROM participant LIMIT 1) IS NULL AND"
                        " (SELECT 1 FROM item LIMIT 1) IS NULL AND"
                        " (SELECT 1 FROM open_item LIMIT 1) IS NULL",
                        &ntables);
        if (rc == SQLITE_OK)
            return 0;
    } else if (rc == SQLITE_OK) {
        rc = SQLITE_NOTADB; /* another schema: ours is rebuilt */
    }
    int e = notes_fmt__search_unusable(rc) ? 1 : notes_fmt__search_fail(*db, rc, "cannot read it");
    sqlite3_close(*db);
    *db = NULL;
    return e;
}

int notes_fmt__search_open(const char *path, int fresh, sqlite3 **db,
                           int *rebuilt)
{
    if (fresh) {
        notes_fmt__search_discard(path);
        *rebuilt = 1;
    }
    int rc = try_open(path, db);
    if (rc == 1) {
        notes_fmt__search_discard(path);
        *rebuilt = 1;
        rc = try_open(path, db);
        if (rc == 1)
            rc = notes_fmt__fail(NOTES_EIO, "search index: cannot create '%s'",
                                 path);
    }
    return rc;
}

