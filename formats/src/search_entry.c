/*
 * search_entry.c: one note as the search index's rows (search_internal.h):
 * its entry, its words, the owners of its items, its tags and participants.
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

int notes_fmt__search_drop(sqlite3 *db, sqlite3_int64 rowid)
{
    static const char *const sql[] = {
        "DELETE FROM note WHERE rowid = ?1", "DELETE FROM fts WHERE rowid = ?1",
        "DELETE FROM tag WHERE note = ?1",
        "DELETE FROM participant WHERE note = ?1",
        "DELETE FROM item WHERE note = ?1",
        "DELETE FROM open_item WHERE note = ?1"};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        int rc = exec_bind(db, sql[i], rowid);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* The note's version as text: the heads in hex, one after another. */
int notes_fmt__search_version(notes_doc *d, sqlite3_int64 *changes, char **heads)
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
int notes_fmt__search_is_day(const char *s)
{
    static const char shape[] = "dddd-dd-dd";
    for (int i = 0; i < 10; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != '-')
            return 0;
    }
    return 1;
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

/* Lines `notes show` prints before the text, the front matter's: *fm
 * only when the export ends with the text as it is (for the search's
 * line numbers), *tl as notes_fmt_md_text_line counts them. */
static void frontmatter_lines(notes_doc *d, const char *text, size_t tn,
                              sqlite3_int64 *fm, sqlite3_int64 *tl)
{
    char *md = NULL;
    size_t mn = 0;
    *fm = *tl = 0;
    if (notes_fmt_md_export(d, &md, &mn) == NOTES_OK) {
        for (size_t i = 0; i + tn < mn; i++)
            *tl += md[i] == '\n';
        if (mn >= tn && memcmp(md + mn - tn, text, tn) == 0)
            *fm = *tl;
    }
    notes_fmt_free(md);
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

/* Every item of the outline (the search's owner: filter reads it too). */
static int insert_items(sqlite3 *db, sqlite3_int64 rowid,
                        const notes_fmt_outline *ol)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO item(note, number, kind, done, owner,"
                                " written, line) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                -1, &s, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < ol->nitems; i++) {
        const notes_fmt_item *it = &ol->items[i];
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i + 1);
        sqlite3_bind_int(s, 3, it->kind);
        sqlite3_bind_int(s, 4, it->done);
        sqlite3_bind_text(s, 5, it->owner, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, it->owner_written, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 7, (sqlite3_int64)it->line);
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
int notes_fmt__search_insert(sqlite3 *db, notes_doc *d, sqlite3_int64 stamp,
                       sqlite3_int64 changes, const char *heads, int *nrc)
{
    size_t tn;
    const char *text = notes_doc_text(d, &tn);
    const char *title = notes_doc_field(d, "title");
    const char *when = notes_doc_field(d, "datetime");
    char day[11] = "", hex[33];
    if (when && strlen(when) >= 10 && notes_fmt__search_is_day(when))
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
        *nrc = notes_fmt_outline_doc(d, &ol); /* items with authorship */
    /* What `notes list` and `notes decisions` show (search_notes.c). */
    struct notes_fmt__buf keys = NOTES_FMT__BUF_INIT;
    size_t nauthors = 0, nkeys = 0, nc = notes_doc_change_count(d);
    notes_change_info ci;
    uint64_t last_ms = nc && notes_doc_change(d, nc - 1, &ci) == NOTES_OK ? ci.time_ms : 0;
    struct notes_fmt__buf open = NOTES_FMT__BUF_INIT;
    if (*nrc == NOTES_OK)
        *nrc = notes_fmt__index_keys(d, &ol, &keys, &nauthors, &nkeys);
    if (*nrc == NOTES_OK)
        *nrc = notes_fmt__index_open(&ol, &open);
    if (*nrc != NOTES_OK) {
        notes__free(body);
        notes_fmt__release(&fields);
        notes_fmt__release(&keys);
        notes_fmt__release(&open);
        notes_fmt_outline_clear(&ol);
        return SQLITE_OK;
    }
    size_t nopen = 0;
    for (size_t i = 0; i < ol.nitems; i++)
        nopen += ol.items[i].kind == NOTES_FMT_ITEM_TASK && !ol.items[i].done;
    sqlite3_int64 fm_lines, text_line;
    frontmatter_lines(d, text ? text : "", text ? tn : 0, &fm_lines, &text_line);

    sqlite3_stmt *s = NULL;
    sqlite3_int64 rowid = 0;
    int rc = sqlite3_prepare_v2(
        db,
        "INSERT INTO note(id, title, datetime, day, changes, heads, stamp,"
        " fm_lines, damaged, sum, last_ms, text_line, damage, nauthors,"
        " nkeys, keys, nopen) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
        " ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
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
        sqlite3_bind_int64(s, 8, fm_lines);
        sqlite3_bind_int(s, 9, notes_doc_intact(d) != NOTES_OK);
        sqlite3_bind_int64(s, 10, notes_fmt__search_sum(title ? title : "", body));
        sqlite3_bind_int64(s, 11, (sqlite3_int64)last_ms);
        sqlite3_bind_int64(s, 12, text_line);
        sqlite3_bind_int(s, 13, notes_doc_damage(d) != NULL);
        sqlite3_bind_int64(s, 14, (sqlite3_int64)nauthors);
        sqlite3_bind_int64(s, 15, (sqlite3_int64)nkeys);
        sqlite3_bind_int64(s, 17, (sqlite3_int64)nopen);
        sqlite3_bind_blob(s, 16, keys.b.data ? (const void *)keys.b.data : "",
                          (int)keys.b.len, SQLITE_STATIC);
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
    if (rc == SQLITE_OK)
        rc = insert_list(db, "tag", rowid, notes_doc_list(d, "tags"));
    if (rc == SQLITE_OK)
        rc = insert_list(db, "participant", rowid, participants);
    if (rc == SQLITE_OK)
        rc = insert_items(db, rowid, &ol);
    if (rc == SQLITE_OK && open.b.len &&
        (rc = sqlite3_prepare_v2(db, "INSERT INTO open_item(note, data) VALUES(?1, ?2)",
                                 -1, &s, NULL)) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, rowid);
        sqlite3_bind_blob(s, 2, open.b.data, (int)open.b.len, SQLITE_STATIC);
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_finalize(s);
    }
    notes__free(body);
    notes_fmt__release(&fields);
    notes_fmt__release(&keys);
    notes_fmt__release(&open);
    notes_fmt_outline_clear(&ol);
    return rc;
}
