/*
 * search.c: the search index of every note (notes_formats.h, "Search";
 * docs/formats.md, "Search"). HOME/index.sqlite is a cache of the logs:
 * SQLite with an FTS5 table for the words, plain tables for the filters.
 * The signed log stays the one source of truth: each entry records the
 * note's version (change count and heads) and a stamp of its log file, a
 * search re-indexes what moved, and an index file SQLite cannot use is
 * removed and rebuilt from the logs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmt_internal.h"

/* 'note' in PRAGMA application_id; the schema version in user_version. A
 * file with other values is not our index (or an older one): rebuilt. */
#define SEARCH_APP_ID 1852798053 /* 0x6e6f7465 */
#define SEARCH_SCHEMA 5
#define STR_(x) #x
#define STR(x) STR_(x)
#define SEARCH_LIMIT_DEFAULT 20
/* checksum(title, body): content_sum as an SQL function. */
static sqlite3_int64 content_sum(const char *title, const char *body);
static void checksum_fn(sqlite3_context *c, int argc, sqlite3_value **v)
{
    (void)argc;
    sqlite3_result_int64(c, content_sum((const char *)sqlite3_value_text(v[0]),
                                        (const char *)sqlite3_value_text(v[1])));
}

/* The markers highlight() puts around matches. They are removed from the
 * indexed copy of the text, so that they mark matches only. */
#define MARK_OPEN '\x02'
#define MARK_CLOSE '\x03'

static const char schema_sql[] =
    "PRAGMA application_id = " STR(SEARCH_APP_ID) ";"
    "PRAGMA user_version = " STR(SEARCH_SCHEMA) ";"
    "CREATE TABLE note(rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,"
    " title TEXT, datetime TEXT, day TEXT, changes INTEGER NOT NULL,"
    " heads TEXT NOT NULL, stamp INTEGER NOT NULL, fm_lines INTEGER NOT NULL,"
    " damaged INTEGER NOT NULL, sum INTEGER NOT NULL);"
    "CREATE INDEX note_day ON note(day);"
    "CREATE INDEX note_damaged ON note(id) WHERE damaged;"
    /* "notes_dir": the stamp of the notes folder when every note in it
     * was last found indexed (list_known). */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER);"
    /* title, the text (body), the other front-matter values (fields) */
    "CREATE VIRTUAL TABLE fts USING fts5(title, body, fields,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TABLE owner(note INTEGER NOT NULL, name TEXT COLLATE NOCASE,"
    " written TEXT COLLATE NOCASE, line INTEGER NOT NULL);"
    "CREATE INDEX owner_note ON owner(note);"
    "CREATE INDEX owner_name ON owner(name);"
    "CREATE INDEX owner_written ON owner(written);"
    "CREATE TABLE tag(note INTEGER NOT NULL, name TEXT COLLATE NOCASE);"
    "CREATE INDEX tag_note ON tag(note);"
    "CREATE INDEX tag_name ON tag(name);"
    "CREATE TABLE participant(note INTEGER NOT NULL, name TEXT COLLATE NOCASE);"
    "CREATE INDEX participant_note ON participant(note);"
    "CREATE INDEX participant_name ON participant(name);";

/* ---- the index file ---- */

static char *index_path(notes_replica *r)
{
    const char *home = notes_replica_home(r);
    size_t n = strlen(home) + sizeof("/index.sqlite");
    char *p = notes__malloc(n);
    if (p)
        snprintf(p, n, "%s/index.sqlite", home);
    return p;
}

/* The file and what SQLite may have left beside it. */
static void discard_index(const char *path)
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
static int unusable(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ||
           rc == SQLITE_FORMAT || rc == SQLITE_ERROR || rc == SQLITE_SCHEMA ||
           rc == SQLITE_MISMATCH || rc == SQLITE_RANGE ||
           rc == SQLITE_CONSTRAINT;
}

static int sql_fail(sqlite3 *db, int rc, const char *what)
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
        int e = unusable(rc) ? 1 : sql_fail(*db, rc, "cannot open it");
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
                        " (SELECT 1 FROM owner LIMIT 1) IS NULL AND"
                        " (SELECT 1 FROM tag LIMIT 1) IS NULL AND"
                        " (SELECT 1 FROM participant LIMIT 1) IS NULL",
                        &ntables);
        if (rc == SQLITE_OK)
            return 0;
    } else if (rc == SQLITE_OK) {
        rc = SQLITE_NOTADB; /* another schema: ours is rebuilt */
    }
    int e = unusable(rc) ? 1 : sql_fail(*db, rc, "cannot read it");
    sqlite3_close(*db);
    *db = NULL;
    return e;
}

static int open_index(notes_replica *r, const char *path, int fresh,
                      sqlite3 **db, int *rebuilt)
{
    (void)r;
    if (fresh) {
        discard_index(path);
        *rebuilt = 1;
    }
    int rc = try_open(path, db);
    if (rc == 1) {
        discard_index(path);
        *rebuilt = 1;
        rc = try_open(path, db);
        if (rc == 1)
            rc = notes_fmt__fail(NOTES_EIO, "search index: cannot create '%s'",
                                 path);
    }
    return rc;
}

/* ---- keeping it up to date ---- */

/* An indexed note as the index says: id, row and the stamp it was indexed
 * with (what the freshness check compares). */
/* 32 lowercase hex digits to 16 bytes, as note ids are written in file
 * names and in the index; 0, or -1 for anything else. Done 30,000 times
 * a search over 10,000 notes: a plain loop. */
static int id_unhex(uint8_t out[16], const char *hex)
{
    for (int i = 0; i < 32; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i & 1)
            out[i / 2] = (uint8_t)(out[i / 2] | v);
        else
            out[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

struct entry {
    uint8_t id[16];
    sqlite3_int64 rowid;
    sqlite3_int64 stamp;
    int seen;
};

static int cmp_entry(const void *a, const void *b)
{
    return memcmp(a, b, 16); /* id first in both structs */
}

/* Every entry, sorted by id. A table scan in rowid order: reading 10,000
 * rows through the id index would visit the table's pages at random. */
static int load_entries(sqlite3 *db, struct entry **out, size_t *n)
{
    sqlite3_stmt *s;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT id, rowid, stamp FROM note", -1,
                                &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(s, 0);
        if (notes__grow(out, &cap, *n + 1, sizeof(**out), 256) != NOTES_OK) {
            rc = SQLITE_NOMEM;
            break;
        }
        struct entry *e = &(*out)[*n];
        memset(e, 0, sizeof(*e));
        if (!hex || strlen(hex) != 32 || id_unhex(e->id, hex) != 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
        e->rowid = sqlite3_column_int64(s, 1);
        e->stamp = sqlite3_column_int64(s, 2);
        ++*n;
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE && *n > 1)
        qsort(*out, *n, sizeof(**out), cmp_entry);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A log file's size, modification time and inode in one number (FNV-1a,
 * 63 bits, never 0: 0 is "no log"), compared as an integer. */
static sqlite3_int64 file_stamp(const struct stat *st)
{
    const uint64_t v[4] = {(uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                           (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ino};
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < 4; i++)
        for (int b = 0; b < 64; b += 8)
            h = (h ^ ((v[i] >> b) & 0xff)) * 0x100000001b3u;
    h >>= 1;
    return (sqlite3_int64)(h ? h : 1);
}

/* A note of the replica as its folder shows it now. */
struct listed {
    uint8_t id[16];
    int is_log; /* found by its log (else by its state file) */
    sqlite3_int64 stamp;
};

static int cmp_listed(const void *a, const void *b)
{
    int c = memcmp(a, b, 16);
    if (c)
        return c;
    /* the log's entry first (see list_notes) */
    return ((const struct listed *)b)->is_log - ((const struct listed *)a)->is_log;
}

/*
 * The notes of the replica, as notes_replica_list finds them (a log or a
 * state file: a note whose log was lost is still listed), each with a
 * stamp of its log file: any write to a note appends to its log (size,
 * time) or replaces it (inode). One pass over the folder, fstatat
 * relative to it: this is the whole cost of a search that finds the index
 * fresh. Taken before a note is read, so a write in between leaves an
 * older stamp: the next search reads the note again.
 */
static int list_notes(notes_replica *r, struct listed **out, size_t *n)
{
    char dirpath[4096];
    size_t cap = 0, k = 0;
    *out = NULL;
    *n = 0;
    snprintf(dirpath, sizeof(dirpath), "%s/notes", notes_replica_home(r));
    DIR *dir = opendir(dirpath);
    if (!dir)
        return notes_fmt__fail(NOTES_EIO, "cannot list '%s': %s", dirpath,
                               strerror(errno));
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t nl = strlen(de->d_name);
        int is_log = nl == 36 && strcmp(de->d_name + 32, ".log") == 0;
        if (!is_log && !(nl == 38 && strcmp(de->d_name + 32, ".state") == 0))
            continue;
        uint8_t id[16];
        if (id_unhex(id, de->d_name) != 0)
            continue;
        if (notes__grow(out, &cap, *n + 1, sizeof(**out), 1024) != NOTES_OK) {
            closedir(dir);
            return NOTES_ENOMEM;
        }
        struct listed *l = &(*out)[(*n)++];
        memcpy(l->id, id, 16);
        l->is_log = is_log;
        struct stat st;
        l->stamp = is_log && fstatat(dirfd(dir), de->d_name, &st, 0) == 0
                       ? file_stamp(&st)
                       : 0; /* no log */
    }
    closedir(dir);
    if (*n > 1)
        qsort(*out, *n, sizeof(**out), cmp_listed);
    /* A note with both files came twice: keep its first (the log's). */
    for (size_t i = 0; i < *n; i++)
        if (!k || memcmp((*out)[k - 1].id, (*out)[i].id, 16) != 0)
            (*out)[k++] = (*out)[i];
    *n = k;
    return NOTES_OK;
}

static int exec_bind(sqlite3 *db, const char *sql, sqlite3_int64 rowid)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(s, 1, rowid);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int drop_entry(sqlite3 *db, sqlite3_int64 rowid)
{
    static const char *const sql[] = {
        "DELETE FROM note WHERE rowid = ?1", "DELETE FROM fts WHERE rowid = ?1",
        "DELETE FROM owner WHERE note = ?1", "DELETE FROM tag WHERE note = ?1",
        "DELETE FROM participant WHERE note = ?1"};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        int rc = exec_bind(db, sql[i], rowid);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* The note's version as text: the heads in hex, one after another. */
static int doc_version(notes_doc *d, sqlite3_int64 *changes, char **heads)
{
    uint8_t(*h)[32];
    size_t n;
    *heads = NULL;
    *changes = (sqlite3_int64)notes_doc_change_count(d);
    int rc = notes_doc_heads(d, &h, &n);
    if (rc != NOTES_OK)
        return rc;
    char *s = notes__malloc(n * 64 + 1);
    if (!s) {
        notes_free(h);
        return NOTES_ENOMEM;
    }
    s[0] = 0;
    for (size_t i = 0; i < n; i++)
        notes__hex(s + i * 64, h[i], 32);
    notes_free(h);
    *heads = s;
    return NOTES_OK;
}

/* The date of a datetime as written (its first ten characters when they
 * are YYYY-MM-DD), for before: and after:. */
static int is_day(const char *s)
{
    static const char shape[] = "dddd-dd-dd";
    for (int i = 0; i < 10; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != '-')
            return 0;
    }
    return 1;
}

/*
 * A checksum of what the index holds for a note (title, text): a search
 * checks it for every hit it shows, so damage SQLite does not notice (a
 * page of text garbled) is caught there and the index rebuilt. FNV-1a:
 * against accidents, not attacks (whoever can write the file can write
 * the checksum too; the logs stay the truth).
 */
static sqlite3_int64 content_sum(const char *title, const char *body)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const char *p = title ? title : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3u;
    h = (h ^ 0xffu) * 0x100000001b3u; /* a separator no UTF-8 holds */
    for (const char *p = body ? body : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3u;
    return (sqlite3_int64)(h >> 1);
}

/* A copy of the text for the index: the highlight markers cannot occur. */
static char *index_copy(const char *s, size_t n)
{
    char *c = notes__malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = s[i] == MARK_OPEN || s[i] == MARK_CLOSE ? ' ' : s[i];
    c[n] = 0;
    return c;
}

/* Lines `notes show` prints before the text: the front matter's. */
static sqlite3_int64 frontmatter_lines(notes_doc *d, const char *text,
                                       size_t tn)
{
    char *md = NULL;
    size_t mn = 0;
    sqlite3_int64 lines = 0;
    if (notes_fmt_md_export(d, &md, &mn) == NOTES_OK && mn >= tn &&
        memcmp(md + mn - tn, text, tn) == 0) {
        for (size_t i = 0; i < mn - tn; i++)
            lines += md[i] == '\n';
    }
    notes_fmt_free(md);
    return lines;
}

/* The front-matter values other than the title, a line each. */
static int other_fields(notes_doc *d, struct notes_fmt__buf *o)
{
    const char *const *keys = notes_doc_fields(d);
    for (size_t i = 0; keys && keys[i]; i++) {
        if (keys[i][0] == '@' || strcmp(keys[i], "title") == 0)
            continue;
        const char *v = notes_doc_field(d, keys[i]);
        if (v) {
            notes_fmt__puts(o, v);
            notes_fmt__putc(o, '\n');
            continue;
        }
        const char *const *l = notes_doc_list(d, keys[i]);
        for (size_t j = 0; l && l[j]; j++) {
            notes_fmt__puts(o, l[j]);
            notes_fmt__putc(o, '\n');
        }
    }
    return o->failed ? NOTES_ENOMEM : NOTES_OK;
}

static int insert_list(sqlite3 *db, const char *table, sqlite3_int64 rowid,
                       const char *const *l)
{
    char sql[80];
    sqlite3_stmt *s;
    snprintf(sql, sizeof(sql), "INSERT INTO %s(note, name) VALUES(?1, ?2)",
             table);
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    for (size_t i = 0; rc == SQLITE_OK && l && l[i]; i++) {
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_text(s, 2, l[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? sqlite3_reset(s) : rc;
    }
    sqlite3_finalize(s);
    return rc;
}

/*
 * Index one note (its old entry already dropped). Returns an SQLite code;
 * *nrc gets a notes error (memory) that is not SQLite's.
 */
static int insert_note(sqlite3 *db, notes_doc *d, sqlite3_int64 stamp,
                       sqlite3_int64 changes, const char *heads, int *nrc)
{
    size_t tn;
    const char *text = notes_doc_text(d, &tn);
    const char *title = notes_doc_field(d, "title");
    const char *when = notes_doc_field(d, "datetime");
    char day[11] = "", hex[33];
    if (when && strlen(when) >= 10 && is_day(when))
        memcpy(day, when, 10);
    notes__hex(hex, notes_doc_id(d), 16);

    char *body = index_copy(text ? text : "", text ? tn : 0);
    struct notes_fmt__buf fields = NOTES_FMT__BUF_INIT;
    notes_fmt_outline ol;
    memset(&ol, 0, sizeof(ol));
    const char *const *participants = notes_doc_list(d, "participants");
    *nrc = NOTES_OK;
    if (!body || other_fields(d, &fields) != NOTES_OK)
        *nrc = NOTES_ENOMEM;
    else
        *nrc = notes_fmt_outline_text(text ? text : "", text ? tn : 0,
                                      participants, &ol);
    if (*nrc != NOTES_OK) {
        notes__free(body);
        notes_fmt__release(&fields);
        notes_fmt_outline_clear(&ol);
        return SQLITE_OK;
    }

    sqlite3_stmt *s = NULL;
    sqlite3_int64 rowid = 0;
    int rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO note(id, title, datetime, day, changes, heads, stamp,"
        " fm_lines, damaged, sum) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10)",
        -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, title, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, when, -1, SQLITE_STATIC);
        if (day[0])
            sqlite3_bind_text(s, 4, day, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, changes);
        sqlite3_bind_text(s, 6, heads, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 7, stamp);
        sqlite3_bind_int64(s, 8, frontmatter_lines(d, text ? text : "", text ? tn : 0));
        sqlite3_bind_int(s, 9, notes_doc_intact(d) != NOTES_OK);
        sqlite3_bind_int64(s, 10, content_sum(title ? title : "", body));
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        rowid = sqlite3_last_insert_rowid(db);
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_OK &&
        (rc = sqlite3_prepare_v2(db,
                                 "INSERT INTO fts(rowid, title, body, fields)"
                                 " VALUES(?1, ?2, ?3, ?4)",
                                 -1, &s, NULL)) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_text(s, 2, title ? title : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, body, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, notes_fmt__str(&fields), -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_OK &&
        (rc = sqlite3_prepare_v2(db,
                                 "INSERT INTO owner(note, name, written, line)"
                                 " VALUES(?1, ?2, ?3, ?4)",
                                 -1, &s, NULL)) == SQLITE_OK) {
        for (size_t i = 0; rc == SQLITE_OK && i < ol.nitems; i++) {
            const notes_fmt_item *it = &ol.items[i];
            if (!it->owner && !it->owner_written)
                continue;
            sqlite3_bind_int64(s, 1, rowid);
            sqlite3_bind_text(s, 2, it->owner, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, it->owner_written, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, (sqlite3_int64)it->line);
            rc = sqlite3_step(s);
            rc = rc == SQLITE_DONE ? sqlite3_reset(s) : rc;
        }
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_OK)
        rc = insert_list(db, "tag", rowid, notes_doc_list(d, "tags"));
    if (rc == SQLITE_OK)
        rc = insert_list(db, "participant", rowid, participants);
    notes__free(body);
    notes_fmt__release(&fields);
    notes_fmt_outline_clear(&ol);
    return rc;
}

static int add_skipped(notes_fmt_search_stats *st, const uint8_t id[16], int rc)
{
    size_t cap = st->nskipped; /* grown one at a time: they are rare */
    void *a = notes__realloc(st->skipped, (cap + 1) * sizeof(*st->skipped));
    if (!a)
        return NOTES_ENOMEM;
    st->skipped = a;
    void *b = notes__realloc(st->skipped_rc, (cap + 1) * sizeof(int));
    if (!b)
        return NOTES_ENOMEM;
    st->skipped_rc = b;
    memcpy(st->skipped[cap], id, 16);
    st->skipped_rc[cap] = rc;
    st->nskipped++;
    return NOTES_OK;
}

static int begin_once(sqlite3 *db, int *in_tx)
{
    if (*in_tx)
        return SQLITE_OK;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE;", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        *in_tx = 1;
    return rc;
}

/* The entry of note `hex` as the index holds it now, inside the write
 * transaction (another process may have indexed it since the entries
 * were read): *rowid 0 when there is none. */
static int entry_now(sqlite3 *db, const char *hex, sqlite3_int64 *rowid,
                     sqlite3_int64 *changes, char **heads)
{
    sqlite3_stmt *s;
    *heads = NULL;
    *rowid = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT rowid, changes, heads FROM note WHERE id = ?1",
                                -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(s, 1, hex, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        *rowid = sqlite3_column_int64(s, 0);
        *changes = sqlite3_column_int64(s, 1);
        const char *h = (const char *)sqlite3_column_text(s, 2);
        rc = h && (*heads = notes__strdup(h)) ? SQLITE_OK : SQLITE_NOMEM;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/*
 * The notes as the index knows them, each with a stamp of its log taken
 * now: when the notes folder is as it was when every note in it was found
 * indexed, no file came or went (creating, replacing or removing a file
 * changes the folder; appending to a log does not, so each log is still
 * stat'ed). Saves reading the folder's entries, a third of a search.
 */
static int list_known(notes_replica *r, const struct entry *e, size_t ne,
                      struct listed **out, size_t *n)
{
    char dirpath[4096];
    snprintf(dirpath, sizeof(dirpath), "%s/notes", notes_replica_home(r));
    *n = 0;
    *out = ne ? notes__calloc(ne, sizeof(**out)) : NULL;
    if (ne && !*out)
        return NOTES_ENOMEM;
    int dfd = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return notes_fmt__fail(NOTES_EIO, "cannot list '%s': %s", dirpath,
                               strerror(errno));
    for (size_t i = 0; i < ne; i++) {
        char name[40];
        struct stat st;
        notes__hex(name, e[i].id, 16);
        memcpy(name + 32, ".log", 5);
        memcpy((*out)[i].id, e[i].id, 16);
        (*out)[i].is_log = 1;
        (*out)[i].stamp = fstatat(dfd, name, &st, 0) == 0 ? file_stamp(&st) : 0;
    }
    close(dfd);
    *n = ne;
    return NOTES_OK;
}

static sqlite3_int64 meta_get(sqlite3 *db, const char *key)
{
    sqlite3_stmt *s;
    sqlite3_int64 v = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &s,
                           NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int meta_set(sqlite3 *db, const char *key, sqlite3_int64 v)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value)"
                                    " VALUES(?1, ?2)", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Drop note `id`'s entry as the index holds it now (by id: a row number
 * read before the transaction may have been reused since). */
static int drop_by_id(sqlite3 *db, const uint8_t id[16], size_t *dropped)
{
    char hex[33], *heads = NULL;
    sqlite3_int64 rowid = 0, changes;
    notes__hex(hex, id, 16);
    int rc = entry_now(db, hex, &rowid, &changes, &heads);
    notes__free(heads);
    if (rc == SQLITE_OK && rowid && (rc = drop_entry(db, rowid)) == SQLITE_OK)
        ++*dropped;
    return rc;
}

/* The notes indexed from a damaged log, for the caller to say so. */
static int load_damaged(sqlite3 *db, notes_fmt_search_stats *st)
{
    sqlite3_stmt *s;
    size_t cap = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT id FROM note WHERE damaged ORDER BY id",
                                -1, &s, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(s, 0);
        if (notes__grow(&st->damaged, &cap, st->ndamaged + 1, sizeof(*st->damaged),
                        4) != NOTES_OK)
            rc = SQLITE_NOMEM;
        else if (!hex || strlen(hex) != 32 || id_unhex(st->damaged[st->ndamaged], hex))
            rc = SQLITE_CORRUPT;
        else
            st->ndamaged++;
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * One pass of the update. Returns an SQLite code (*nrc: a notes error that
 * is not SQLite's, e.g. listing the notes failed).
 */
static int update_pass(sqlite3 *db, notes_replica *r, notes_fmt_search_stats *st,
                       int *nrc)
{
    struct listed *ls = NULL;
    size_t n = 0, ne = 0, j = 0, added = 0, unindexed = 0;
    struct entry *e = NULL;
    int in_tx = 0, rc;
    /* The folder's stamp before it is read. Trusted later only if it was
     * already 2 s old: a file made within the same clock tick as the
     * reading would leave it unchanged (as "racily clean" files in git). */
    char dirpath[4096];
    struct stat dst;
    snprintf(dirpath, sizeof(dirpath), "%s/notes", notes_replica_home(r));
    sqlite3_int64 dir_now = stat(dirpath, &dst) == 0 ? file_stamp(&dst) : 0;
    int dir_settled = dir_now && time(NULL) - dst.st_mtim.tv_sec >= 2;
    sqlite3_int64 dir_known = meta_get(db, "notes_dir");
    *nrc = NOTES_OK;
    if ((rc = load_entries(db, &e, &ne)) != SQLITE_OK)
        goto out;
    int known = dir_now && dir_known == dir_now;
    *nrc = known ? list_known(r, e, ne, &ls, &n) : list_notes(r, &ls, &n);
    if (*nrc != NOTES_OK)
        goto out;
    for (size_t i = 0; i < n && rc == SQLITE_OK && *nrc == NOTES_OK; i++) {
        const uint8_t *id = ls[i].id;
        sqlite3_int64 stamp = ls[i].stamp;
        while (j < ne && memcmp(e[j].id, id, 16) < 0)
            j++;
        struct entry *old = j < ne && memcmp(e[j].id, id, 16) == 0 ? &e[j] : NULL;
        if (old) {
            old->seen = 1;
            if (old->stamp == stamp)
                continue;
        }
        notes_doc *d = NULL;
        int orc = notes_doc_open(r, id, &d);
        if (orc != NOTES_OK) {
            /* Created but never committed (ENOTFOUND) is no note; one that
             * cannot be read is left out, and said. */
            if (orc != NOTES_ENOTFOUND)
                *nrc = add_skipped(st, id, orc);
            unindexed++;
            if (old && (rc = begin_once(db, &in_tx)) == SQLITE_OK)
                rc = drop_by_id(db, id, &st->dropped);
            continue;
        }
        sqlite3_int64 changes, old_changes = -1, rowid = 0;
        char *heads, *old_heads = NULL, hex[33];
        if ((*nrc = doc_version(d, &changes, &heads)) != NOTES_OK) {
            notes_doc_free(d);
            break;
        }
        notes__hex(hex, id, 16);
        /* Decided inside the transaction, on the entry as it is now: two
         * searches at once (the daemon's, a shell's) then only repeat
         * work, they never insert one note twice. */
        if ((rc = begin_once(db, &in_tx)) != SQLITE_OK ||
            (rc = entry_now(db, hex, &rowid, &old_changes, &old_heads)) != SQLITE_OK) {
            /* said below */
        } else if (rowid && old_changes == changes && strcmp(old_heads, heads) == 0) {
            /* The same version (a compaction, a touch): the stamp only. */
            sqlite3_stmt *s;
            rc = sqlite3_prepare_v2(db, "UPDATE note SET stamp = ?1 WHERE rowid = ?2",
                                    -1, &s, NULL);
            if (rc == SQLITE_OK) {
                sqlite3_bind_int64(s, 1, stamp);
                sqlite3_bind_int64(s, 2, rowid);
                rc = sqlite3_step(s);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
                sqlite3_finalize(s);
            }
        } else if (!rowid || (rc = drop_entry(db, rowid)) == SQLITE_OK) {
            rc = insert_note(db, d, stamp, changes, heads, nrc);
            st->indexed++;
            added += !old;
        }
        notes__free(heads);
        notes__free(old_heads);
        notes_doc_free(d);
    }
    /* Entries of notes no longer in the replica. */
    for (size_t k = 0; k < ne && rc == SQLITE_OK && *nrc == NOTES_OK; k++) {
        if (e[k].seen)
            continue;
        if ((rc = begin_once(db, &in_tx)) == SQLITE_OK)
            rc = drop_by_id(db, e[k].id, &st->dropped);
    }
    /* Every note of the folder is in the index now: remember the folder,
     * so the next search stats the known logs without reading it. */
    if (!known && !unindexed && dir_settled && dir_known != dir_now &&
        rc == SQLITE_OK && *nrc == NOTES_OK &&
        (rc = begin_once(db, &in_tx)) == SQLITE_OK)
        rc = meta_set(db, "notes_dir", dir_now);
    if (in_tx) {
        if (rc == SQLITE_OK && *nrc == NOTES_OK)
            rc = sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
        if (rc != SQLITE_OK && *nrc == NOTES_OK) /* said before ROLLBACK */
            *nrc = sql_fail(db, rc, "cannot update it");
        if (rc != SQLITE_OK || *nrc != NOTES_OK)
            sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK && *nrc == NOTES_OK)
        st->notes = ne - st->dropped + added;
    if (rc == SQLITE_OK && *nrc == NOTES_OK)
        rc = load_damaged(db, st);
out:
    notes__free(e);
    notes__free(ls);
    return rc;
}

void notes_fmt_search_stats_clear(notes_fmt_search_stats *st)
{
    if (!st)
        return;
    notes__free(st->skipped);
    notes__free(st->skipped_rc);
    notes__free(st->damaged);
    memset(st, 0, sizeof(*st));
}

/*
 * Open the index and bring it up to date; *db stays open for the search.
 * A file that turns out unusable on the way is rebuilt once.
 */
static int update_open(notes_replica *r, notes_fmt_search_stats *st,
                       sqlite3 **db)
{
    char *path = index_path(r);
    if (!path)
        return NOTES_ENOMEM;
    int rc = NOTES_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        int nrc;
        notes_fmt_search_stats_clear(st);
        st->rebuilt = attempt > 0;
        rc = open_index(r, path, attempt > 0, db, &st->rebuilt);
        if (rc != NOTES_OK)
            break;
        int src = update_pass(*db, r, st, &nrc);
        if (src == SQLITE_OK && nrc == NOTES_OK)
            break;
        rc = src != SQLITE_OK && nrc == NOTES_OK
                 ? sql_fail(*db, src, "cannot update it")
                 : nrc;
        sqlite3_close(*db);
        *db = NULL;
        if (src == SQLITE_OK || !unusable(src))
            break;
    }
    notes__free(path);
    return rc;
}

int notes_fmt_search_update(notes_replica *r, notes_fmt_search_stats *st)
{
    notes_fmt_search_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    if (!r)
        return notes_fmt__fail(NOTES_EINVAL, "no replica");
    sqlite3 *db = NULL;
    int rc = update_open(r, st, &db);
    sqlite3_close(db);
    if (st == &local)
        notes_fmt_search_stats_clear(&local);
    return rc;
}

/* ---- the query ---- */

struct query {
    struct notes_fmt__buf fts; /* the FTS5 expression: quoted strings */
    char **owner, **tag, **participant;
    size_t nowner, ntag, nparticipant;
    char before[11], after[11];
};

static void query_clear(struct query *q)
{
    notes_fmt__release(&q->fts);
    for (size_t i = 0; i < q->nowner; i++)
        notes__free(q->owner[i]);
    for (size_t i = 0; i < q->ntag; i++)
        notes__free(q->tag[i]);
    for (size_t i = 0; i < q->nparticipant; i++)
        notes__free(q->participant[i]);
    notes__free(q->owner);
    notes__free(q->tag);
    notes__free(q->participant);
}

static int push(char ***v, size_t *n, const char *s, size_t len)
{
    char **nv = notes__realloc(*v, (*n + 1) * sizeof(char *));
    if (!nv)
        return NOTES_ENOMEM;
    *v = nv;
    if (!(nv[*n] = notes__strndup(s, len)))
        return NOTES_ENOMEM;
    ++*n;
    return NOTES_OK;
}

/* A word the tokenizer keeps something of: a letter or digit (any byte of
 * a non-ASCII character counts: unicode61 keeps letters and numbers). */
static int has_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
            return 1;
    }
    return 0;
}

/* Add a word or phrase as an FTS5 string: in double quotes, its quotes
 * doubled. Inside quotes nothing is syntax (AND, NEAR, *, ^, parentheses,
 * column names), so the user's text cannot make a syntax error. */
static void add_string(struct query *q, const char *s, size_t n, int prefix)
{
    if (!has_token(s, n))
        return;
    if (q->fts.b.len)
        notes_fmt__putc(&q->fts, ' ');
    notes_fmt__putc(&q->fts, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            notes_fmt__putc(&q->fts, '"');
        notes_fmt__putc(&q->fts, s[i]);
    }
    notes_fmt__putc(&q->fts, '"');
    if (prefix)
        notes_fmt__puts(&q->fts, " *");
}

static int valid_day(const char *v, size_t n)
{
    if (n != 10 || !is_day(v))
        return 0;
    int m = (v[5] - '0') * 10 + (v[6] - '0');
    int d = (v[8] - '0') * 10 + (v[9] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static int parse_query(const char *s, struct query *q)
{
    size_t len = strlen(s);
    size_t i = 0;
    int rc = NOTES_OK, any = 0;
    while (i < len && rc == NOTES_OK) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i >= len)
            break;
        if (s[i] == '"') { /* a phrase; an unclosed one runs to the end */
            size_t st = ++i;
            while (i < len && s[i] != '"')
                i++;
            add_string(q, s + st, i - st, 0);
            any = 1;
            if (i < len)
                i++;
            continue;
        }
        size_t st = i;
        while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
               s[i] != '\r' && s[i] != '"')
            i++;
        const char *w = s + st;
        size_t wn = i - st;
        const char *colon = memchr(w, ':', wn);
        static const char *const keys[] = {"owner", "tag", "participant",
                                           "before", "after"};
        size_t key = SIZE_MAX;
        for (size_t k = 0; colon && k < 5; k++)
            if ((size_t)(colon - w) == strlen(keys[k]) &&
                strncasecmp(w, keys[k], strlen(keys[k])) == 0)
                key = k;
        if (key == SIZE_MAX) {
            int prefix = wn > 1 && w[wn - 1] == '*';
            add_string(q, w, prefix ? wn - 1 : wn, prefix);
            any = 1;
            continue;
        }
        const char *v = colon + 1;
        size_t vn = wn - (size_t)(v - w);
        if (vn == 0 && i < len && s[i] == '"') { /* owner:"Ana M" */
            size_t vs = ++i;
            while (i < len && s[i] != '"')
                i++;
            v = s + vs;
            vn = i - vs;
            if (i < len)
                i++;
        }
        if (vn == 0) {
            rc = notes_fmt__fail(NOTES_EINVAL, "%s: needs a value (%s:VALUE)",
                                 keys[key], keys[key]);
            break;
        }
        any = 1;
        if (key == 0)
            rc = push(&q->owner, &q->nowner, v, vn);
        else if (key == 1)
            rc = push(&q->tag, &q->ntag, v, vn);
        else if (key == 2)
            rc = push(&q->participant, &q->nparticipant, v, vn);
        else if (!valid_day(v, vn))
            rc = notes_fmt__fail(NOTES_EINVAL, "%s: wants a date YYYY-MM-DD, not '%.*s'",
                                 keys[key], (int)(vn > 40 ? 40 : vn), v);
        else
            memcpy(key == 3 ? q->before : q->after, v, 10);
    }
    if (rc == NOTES_OK && q->fts.failed)
        rc = NOTES_ENOMEM;
    if (rc == NOTES_OK && !any)
        rc = notes_fmt__fail(NOTES_EINVAL, "the query is empty");
    else if (rc == NOTES_OK && !q->fts.b.len && !q->nowner && !q->ntag &&
             !q->nparticipant && !q->before[0] && !q->after[0])
        rc = notes_fmt__fail(NOTES_EINVAL,
                             "nothing to search for: the query has no word "
                             "(letters or digits) and no filter");
    return rc;
}

/* ---- the search ---- */

/* Bind the filters' values from parameter `p` on, in the order
 * filters_sql wrote them. */
static void filters_sql(struct notes_fmt__buf *o, const struct query *q)
{
    for (size_t i = 0; i < q->nowner; i++)
        notes_fmt__puts(o, " AND EXISTS (SELECT 1 FROM owner o WHERE o.note = n.rowid"
                           " AND (o.name = ? OR o.written = ?))");
    for (size_t i = 0; i < q->ntag; i++)
        notes_fmt__puts(o, " AND EXISTS (SELECT 1 FROM tag t WHERE t.note = n.rowid"
                           " AND t.name = ?)");
    for (size_t i = 0; i < q->nparticipant; i++)
        notes_fmt__puts(o, " AND EXISTS (SELECT 1 FROM participant p WHERE"
                           " p.note = n.rowid AND p.name = ?)");
    if (q->before[0])
        notes_fmt__puts(o, " AND n.day < ?");
    if (q->after[0])
        notes_fmt__puts(o, " AND n.day >= ?");
}

static int bind_filters(sqlite3_stmt *s, int p, const struct query *q)
{
    for (size_t i = 0; i < q->nowner; i++) {
        sqlite3_bind_text(s, p++, q->owner[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, p++, q->owner[i], -1, SQLITE_STATIC);
    }
    for (size_t i = 0; i < q->ntag; i++)
        sqlite3_bind_text(s, p++, q->tag[i], -1, SQLITE_STATIC);
    for (size_t i = 0; i < q->nparticipant; i++)
        sqlite3_bind_text(s, p++, q->participant[i], -1, SQLITE_STATIC);
    if (q->before[0])
        sqlite3_bind_text(s, p++, q->before, -1, SQLITE_STATIC);
    if (q->after[0])
        sqlite3_bind_text(s, p++, q->after, -1, SQLITE_STATIC);
    return p;
}

static int add_line(notes_fmt_search_hit *h, size_t line, const char *s,
                    size_t n, size_t (*marks)[2], size_t nmarks)
{
    if (h->nlines >= NOTES_FMT_SEARCH_LINES) {
        h->more_lines++;
        return NOTES_OK;
    }
    void *nl = notes__realloc(h->lines, (h->nlines + 1) * sizeof(*h->lines));
    if (!nl)
        return NOTES_ENOMEM;
    h->lines = nl;
    notes_fmt_search_line *l = &h->lines[h->nlines];
    memset(l, 0, sizeof(*l));
    l->line = line;
    if (!(l->text = notes__strndup(s, n)))
        return NOTES_ENOMEM;
    h->nlines++;
    if (nmarks) {
        if (!(l->marks = notes__malloc(nmarks * sizeof(*marks))))
            return NOTES_ENOMEM;
        memcpy(l->marks, marks, nmarks * sizeof(*marks));
        l->nmarks = nmarks;
    }
    return NOTES_OK;
}

/*
 * The lines of highlight()'s output that hold a match: the markers taken
 * out, their places kept as byte ranges. A match may run over a line end
 * (a phrase): each line gets its part.
 */
static int marked_lines(notes_fmt_search_hit *h, const char *s, size_t fm_lines)
{
    struct notes_fmt__buf line = NOTES_FMT__BUF_INIT;
    size_t (*marks)[2] = NULL, nmarks = 0, cap = 0, lineno = 1;
    int open = 0, rc = NOTES_OK;
    for (const char *p = s;; p++) {
        if (*p == '\n' || !*p) {
            if (nmarks) {
                if (marks[nmarks - 1][1] == SIZE_MAX)
                    marks[nmarks - 1][1] = line.b.len;
                rc = add_line(h, lineno + fm_lines, notes_fmt__str(&line),
                              line.b.len, marks, nmarks);
            }
            if (rc != NOTES_OK || line.failed || !*p)
                break;
            line.b.len = 0;
            nmarks = 0;
            lineno++;
            if (open) { /* the match goes on on this line */
                if (notes__grow(&marks, &cap, 1, sizeof(*marks), 8) != NOTES_OK) {
                    rc = NOTES_ENOMEM;
                    break;
                }
                marks[0][0] = 0;
                marks[0][1] = SIZE_MAX;
                nmarks = 1;
            }
            continue;
        }
        if (*p == MARK_OPEN) {
            if (notes__grow(&marks, &cap, nmarks + 1, sizeof(*marks), 8) != NOTES_OK) {
                rc = NOTES_ENOMEM;
                break;
            }
            marks[nmarks][0] = line.b.len;
            marks[nmarks][1] = SIZE_MAX;
            nmarks++;
            open = 1;
        } else if (*p == MARK_CLOSE) {
            if (nmarks && marks[nmarks - 1][1] == SIZE_MAX)
                marks[nmarks - 1][1] = line.b.len;
            open = 0;
        } else {
            notes_fmt__putc(&line, *p);
        }
    }
    if (rc == NOTES_OK && line.failed)
        rc = NOTES_ENOMEM;
    notes_fmt__release(&line);
    notes__free(marks);
    return rc;
}

/* The title without markers, and where they were. */
static int marked_title(notes_fmt_search_hit *h, const char *s)
{
    size_t n = strlen(s), o = 0;
    char *t = notes__malloc(n + 1);
    if (!t)
        return NOTES_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == MARK_OPEN && h->ntitle_marks < 8) {
            h->title_marks[h->ntitle_marks][0] = o;
            h->title_marks[h->ntitle_marks][1] = o;
        } else if (s[i] == MARK_CLOSE && h->ntitle_marks < 8) {
            h->title_marks[h->ntitle_marks++][1] = o;
        } else if (s[i] != MARK_OPEN && s[i] != MARK_CLOSE) {
            t[o++] = s[i];
        }
    }
    t[o] = 0;
    notes__free(h->title);
    h->title = t;
    return NOTES_OK;
}

/* An owner filter's items as the lines of a hit (filters alone, or besides
 * words): the lines of the text whose item the owner owns. */
static int owner_lines(sqlite3 *db, sqlite3_int64 rowid, const struct query *q,
                       size_t fm_lines, notes_fmt_search_hit *h, int *src)
{
    sqlite3_stmt *s;
    *src = sqlite3_prepare_v2(db, "SELECT body FROM fts WHERE rowid = ?1", -1,
                              &s, NULL);
    if (*src != SQLITE_OK)
        return NOTES_OK;
    sqlite3_bind_int64(s, 1, rowid);
    const char *body = NULL;
    if ((*src = sqlite3_step(s)) == SQLITE_ROW) {
        body = (const char *)sqlite3_column_text(s, 0);
        *src = SQLITE_OK;
    }
    sqlite3_stmt *o = NULL;
    int rc = NOTES_OK;
    if (body && *src == SQLITE_OK &&
        (*src = sqlite3_prepare_v2(db,
                                   "SELECT DISTINCT line FROM owner WHERE note = ?1"
                                   " AND (name = ?2 OR written = ?2) ORDER BY line",
                                   -1, &o, NULL)) == SQLITE_OK) {
        sqlite3_bind_int64(o, 1, rowid);
        sqlite3_bind_text(o, 2, q->owner[0], -1, SQLITE_STATIC);
        size_t at = 1;
        const char *p = body;
        while (rc == NOTES_OK && (*src = sqlite3_step(o)) == SQLITE_ROW) {
            size_t want = (size_t)sqlite3_column_int64(o, 0);
            while (at < want && *p) {
                if (*p++ == '\n')
                    at++;
            }
            if (at != want)
                break;
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            size_t whole[1][2] = {{0, len}};
            rc = add_line(h, want + fm_lines, p, len, whole, 1);
        }
        *src = *src == SQLITE_DONE || *src == SQLITE_ROW ? SQLITE_OK : *src;
    }
    sqlite3_finalize(o);
    sqlite3_finalize(s);
    return rc;
}

/* One hit's details: title, date, damage, matching lines. */
static int fill_hit(sqlite3 *db, sqlite3_int64 rowid, double score,
                    const struct query *q, notes_fmt_search_hit *h, int *src)
{
    sqlite3_stmt *s;
    int rc = NOTES_OK;
    h->score = score;
    *src = sqlite3_prepare_v2(db,
                              "SELECT n.id, n.title, n.datetime, n.fm_lines,"
                              " n.damaged, n.sum = checksum(f.title, f.body)"
                              " FROM note n JOIN fts f ON f.rowid = n.rowid"
                              " WHERE n.rowid = ?1",
                              -1, &s, NULL);
    if (*src != SQLITE_OK)
        return NOTES_OK;
    sqlite3_bind_int64(s, 1, rowid);
    size_t fm_lines = 0;
    if ((*src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(s, 0);
        const char *t = (const char *)sqlite3_column_text(s, 1);
        const char *w = (const char *)sqlite3_column_text(s, 2);
        if (!hex || notes__unhex(h->id, 16, hex) != NOTES_OK ||
            sqlite3_column_int(s, 5) != 1)
            *src = SQLITE_CORRUPT;
        else
            *src = SQLITE_OK;
        if ((t && !(h->title = notes__strdup(t))) ||
            (w && !(h->datetime = notes__strdup(w))))
            rc = NOTES_ENOMEM;
        fm_lines = (size_t)sqlite3_column_int64(s, 3);
        h->damaged = sqlite3_column_int(s, 4);
    } else if (*src == SQLITE_DONE) {
        *src = SQLITE_CORRUPT; /* the fts row without its note */
    }
    sqlite3_finalize(s);
    if (rc != NOTES_OK || *src != SQLITE_OK)
        return rc;
    if (!q->fts.b.len)
        return q->nowner ? owner_lines(db, rowid, q, fm_lines, h, src) : NOTES_OK;
    *src = sqlite3_prepare_v2(db,
                              "SELECT highlight(fts, 0, char(2), char(3)),"
                              " highlight(fts, 1, char(2), char(3))"
                              " FROM fts WHERE fts MATCH ?1 AND rowid = ?2",
                              -1, &s, NULL);
    if (*src != SQLITE_OK)
        return NOTES_OK;
    sqlite3_bind_text(s, 1, notes_fmt__str(&q->fts), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, rowid);
    if ((*src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        const char *b = (const char *)sqlite3_column_text(s, 1);
        *src = SQLITE_OK;
        if (h->title && t)
            rc = marked_title(h, t);
        if (rc == NOTES_OK && b)
            rc = marked_lines(h, b, fm_lines);
    } else if (*src == SQLITE_DONE) {
        *src = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

static int run_query(sqlite3 *db, const struct query *q, size_t limit,
                     notes_fmt_search_result *res, int *src)
{
    struct notes_fmt__buf sql = NOTES_FMT__BUF_INIT;
    int words = q->fts.b.len > 0, rc = NOTES_OK;
    int filters = q->nowner || q->ntag || q->nparticipant || q->before[0] ||
                  q->after[0];
    /* BM25 with the title weighing most, then the other front-matter
     * values, then the text. Words alone need no join with the note
     * table: 10,000 matches cost 10,000 lookups fewer. */
    if (words && !filters)
        notes_fmt__puts(&sql, "SELECT rowid, bm25(fts, 10.0, 1.0, 2.0) AS s"
                              " FROM fts WHERE fts MATCH ? ORDER BY s");
    else if (words)
        notes_fmt__puts(&sql, "SELECT n.rowid, bm25(fts, 10.0, 1.0, 2.0) AS s"
                              " FROM fts JOIN note n ON n.rowid = fts.rowid"
                              " WHERE fts MATCH ?");
    else
        notes_fmt__puts(&sql, "SELECT n.rowid, 0.0 AS s FROM note n WHERE 1");
    if (filters)
        filters_sql(&sql, q);
    if (filters)
        notes_fmt__puts(&sql, words ? " ORDER BY s"
                                    : " ORDER BY n.day IS NULL, n.day DESC, n.datetime DESC");
    if (sql.failed) {
        notes_fmt__release(&sql);
        return NOTES_ENOMEM;
    }
    sqlite3_stmt *s;
    *src = sqlite3_prepare_v2(db, notes_fmt__str(&sql), -1, &s, NULL);
    notes_fmt__release(&sql);
    if (*src != SQLITE_OK)
        return NOTES_OK;
    int p = 1;
    if (words)
        sqlite3_bind_text(s, p++, notes_fmt__str(&q->fts), -1, SQLITE_STATIC);
    bind_filters(s, p, q);
    sqlite3_int64 *rows = NULL;
    double *scores = NULL;
    size_t nrows = 0;
    while ((*src = sqlite3_step(s)) == SQLITE_ROW) {
        res->total++;
        if (nrows >= limit)
            continue; /* counted only */
        void *a = notes__realloc(rows, (nrows + 1) * sizeof(*rows));
        if (a)
            rows = a;
        void *b = a ? notes__realloc(scores, (nrows + 1) * sizeof(*scores)) : NULL;
        if (b)
            scores = b;
        if (!a || !b) {
            rc = NOTES_ENOMEM;
            break;
        }
        rows[nrows] = sqlite3_column_int64(s, 0);
        scores[nrows] = -sqlite3_column_double(s, 1);
        nrows++;
    }
    sqlite3_finalize(s);
    if (*src == SQLITE_DONE)
        *src = SQLITE_OK;
    if (rc == NOTES_OK && *src == SQLITE_OK && nrows &&
        !(res->hits = notes__calloc(nrows, sizeof(*res->hits))))
        rc = NOTES_ENOMEM;
    for (size_t i = 0; rc == NOTES_OK && *src == SQLITE_OK && i < nrows; i++) {
        rc = fill_hit(db, rows[i], scores[i] == 0.0 ? 0.0 : scores[i], q,
                      &res->hits[i], src);
        res->nhits = i + 1;
    }
    notes__free(rows);
    notes__free(scores);
    return rc;
}

void notes_fmt_search_clear(notes_fmt_search_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->nhits; i++) {
        notes_fmt_search_hit *h = &res->hits[i];
        notes__free(h->title);
        notes__free(h->datetime);
        for (size_t j = 0; j < h->nlines; j++) {
            notes__free(h->lines[j].text);
            notes__free(h->lines[j].marks);
        }
        notes__free(h->lines);
    }
    notes__free(res->hits);
    notes_fmt_search_stats_clear(&res->stats);
    memset(res, 0, sizeof(*res));
}

int notes_fmt_search(notes_replica *r, const char *query, size_t limit,
                     notes_fmt_search_result *out)
{
    if (!out)
        return notes_fmt__fail(NOTES_EINVAL, "no result");
    memset(out, 0, sizeof(*out));
    if (!r || !query)
        return notes_fmt__fail(NOTES_EINVAL, "no replica or no query");
    struct query q;
    memset(&q, 0, sizeof(q));
    notes_fmt__buf_init(&q.fts);
    int rc = parse_query(query, &q);
    sqlite3 *db = NULL;
    if (rc == NOTES_OK)
        rc = update_open(r, &out->stats, &db);
    if (rc == NOTES_OK) {
        int src = SQLITE_OK;
        rc = run_query(db, &q, limit ? limit : SEARCH_LIMIT_DEFAULT, out, &src);
        if (rc == NOTES_OK && src != SQLITE_OK && unusable(src)) {
            /* Damage the first look did not reach: rebuild, ask again. */
            notes_fmt_search_clear(out);
            sqlite3_close(db);
            db = NULL;
            char *path = index_path(r);
            if (!path)
                rc = NOTES_ENOMEM;
            else
                discard_index(path);
            notes__free(path);
            if (rc == NOTES_OK)
                rc = update_open(r, &out->stats, &db);
            out->stats.rebuilt = 1;
            if (rc == NOTES_OK)
                rc = run_query(db, &q, limit ? limit : SEARCH_LIMIT_DEFAULT, out, &src);
        }
        if (rc == NOTES_OK && src != SQLITE_OK)
            rc = sql_fail(db, src, "cannot search it");
    }
    sqlite3_close(db);
    query_clear(&q);
    return rc;
}

/* ---- JSON ---- */

/* Byte offset b of s as code points. */
static json_int_t cps(const char *s, size_t b)
{
    return (json_int_t)notes_fmt__cp_count(s, b);
}

static json_t *marks_json(const char *s, const size_t (*m)[2], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_pack("[I, I]", cps(s, m[i][0]),
                                               cps(s, m[i][1]))))
            return json_decref(a), NULL;
    return a;
}

int notes_fmt_search_json(const notes_fmt_search_result *res, const char *query,
                          char **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!res || !out)
        return notes_fmt__fail(NOTES_EINVAL, "no result");
    json_t *hits = json_array();
    for (size_t i = 0; hits && i < res->nhits; i++) {
        const notes_fmt_search_hit *h = &res->hits[i];
        char hex[33];
        notes__hex(hex, h->id, 16);
        json_t *lines = json_array();
        for (size_t j = 0; lines && j < h->nlines; j++) {
            const notes_fmt_search_line *l = &h->lines[j];
            json_t *m = marks_json(l->text, (const size_t(*)[2])l->marks, l->nmarks);
            if (json_array_append_new(lines, m ? json_pack("{s:I, s:s, s:o}", "line",
                                                           (json_int_t)l->line, "text",
                                                           l->text, "marks", m)
                                               : NULL))
                lines = (json_decref(lines), NULL);
        }
        json_t *tm = h->title ? marks_json(h->title, (const size_t(*)[2])h->title_marks,
                                           h->ntitle_marks)
                              : json_array();
        json_t *o = lines && tm
                        ? json_pack("{s:s, s:s?, s:s?, s:f, s:b, s:o, s:o, s:I}", "id",
                                    hex, "title", h->title, "datetime", h->datetime,
                                    "score", h->score, "damaged", h->damaged,
                                    "title_marks", tm, "lines", lines, "more_lines",
                                    (json_int_t)h->more_lines)
                        : (json_decref(lines), json_decref(tm), NULL);
        if (json_array_append_new(hits, o))
            hits = (json_decref(hits), NULL);
    }
    json_t *root =
        hits ? json_pack("{s:s, s:s?, s:I, s:{s:I, s:I, s:b}, s:o}", "v",
                         "notes.search/1", "query", query, "total",
                         (json_int_t)res->total, "index", "notes",
                         (json_int_t)res->stats.notes, "reindexed",
                         (json_int_t)res->stats.indexed, "rebuilt",
                         res->stats.rebuilt, "results", hits)
             : NULL;
    char *s = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!s)
        return notes_fmt__fail(NOTES_ENOMEM, "out of memory");
    size_t len = strlen(s);
    *out = notes__malloc(len + 1);
    if (*out)
        memcpy(*out, s, len + 1);
    free(s);
    if (!*out)
        return NOTES_ENOMEM;
    if (n)
        *n = len;
    return NOTES_OK;
}
