/*
 * search_internal.h: what the parts of the search index share (private to
 * formats/src/search_*.c). The index file and its schema (search_db.c),
 * one note as rows (search_entry.c), keeping it up to date
 * (search_update.c), the query language (search_query.c), the search
 * itself (search_run.c) and its JSON (search_json.c).
 */
#ifndef NOTES_SEARCH_INTERNAL_H
#define NOTES_SEARCH_INTERNAL_H

#include <sqlite3.h>

#include "fmt_internal.h"

/* The markers highlight() puts around matches. They are removed from the
 * indexed copy of the text, so that they mark matches only. */
#define MARK_OPEN '\x02'
#define MARK_CLOSE '\x03'

/* ---- search_db.c: the index file ---- */

/* HOME/index.sqlite (malloc'd), NULL without memory. */
char *notes_fmt__search_path(notes_replica *r);
/* Remove the file and what SQLite may have left beside it. */
void notes_fmt__search_discard(const char *path);
/* 1: an SQLite error that says the file is not a usable index (rather
 * than that the disk or memory failed): the index is then rebuilt. */
int notes_fmt__search_unusable(int rc);
/* Say an SQLite failure (notes_fmt__fail); NOTES_ENOMEM or NOTES_EIO. */
int notes_fmt__search_fail(sqlite3 *db, int rc, const char *what);
/* Open (or create) the index; `fresh` discards it first. An unusable
 * file is discarded and made again once (*rebuilt set). */
int notes_fmt__search_open(const char *path, int fresh, sqlite3 **db,
                           int *rebuilt);
/* The checksum of a note's title and text (also the SQL checksum()). */
sqlite3_int64 notes_fmt__search_sum(const char *title, const char *body);

/* ---- search_entry.c: one note as rows ---- */

/* The note's version: change count and heads in hex (malloc'd). */
int notes_fmt__search_version(notes_doc *d, sqlite3_int64 *changes,
                              char **heads);
/* Index one note (its old entry already dropped). An SQLite code; *nrc
 * gets a notes error (memory) that is not SQLite's. */
int notes_fmt__search_insert(sqlite3 *db, notes_doc *d, sqlite3_int64 stamp,
                             sqlite3_int64 changes, const char *heads,
                             int *nrc);
/* Remove every row of entry `rowid`. */
int notes_fmt__search_drop(sqlite3 *db, sqlite3_int64 rowid);
/* 1: s starts with YYYY-MM-DD (digits and dashes; ten bytes read). */
int notes_fmt__search_is_day(const char *s);

/* ---- search_notes.c: the notes index's records ---- */

/* The facts of every key of note d (notes_fmt_authors' first, then those
 * only the outline's items name), one record each, into o. */
int notes_fmt__index_keys(notes_doc *d, const notes_fmt_outline *ol,
                          struct notes_fmt__buf *o, size_t *nauthors,
                          size_t *nkeys);
/* The open action items as `notes decisions` shows them, into o: for
 * each, its number, its line and the length of its record, then the
 * record. */
int notes_fmt__index_open(const notes_fmt_outline *ol, struct notes_fmt__buf *o);

/* ---- search_update.c: keeping it up to date ---- */

/* What a reader of the index does while the freshness check stats the
 * logs (NULL fn: nothing): it reads through the same connection, then is
 * told whether the update wrote. */
struct search_during {
    void (*fn)(sqlite3 *db, void *arg);
    void *arg;
};

/* Open the index and bring it up to date; *db stays open. With `during`,
 * during->fn runs once, on *db, before the update writes anything (beside
 * the stat of the logs when the folder is known): what it read is current
 * unless *wrote (NULL: not asked) says the update changed the index. */
int notes_fmt__search_update_open(notes_replica *r, notes_fmt_search_stats *st,
                                  sqlite3 **db, const struct search_during *during,
                                  int *wrote);

/* ---- search_query.c: the query ---- */

struct notes_fmt__query {
    struct notes_fmt__buf fts; /* the FTS5 expression: quoted strings */
    char **owner, **tag, **participant;
    size_t nowner, ntag, nparticipant;
    char before[11], after[11];
};

int notes_fmt__search_parse(const char *s, struct notes_fmt__query *q);
void notes_fmt__search_query_clear(struct notes_fmt__query *q);

#endif
