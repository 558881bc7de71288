/*
 * search_run.c: a search (notes_formats.h, "Search"): the index brought up
 * to date (search_update.c), the query run, each hit's matching lines.
 */
#include <stdlib.h>
#include <string.h>

#include "search_internal.h"

#define SEARCH_LIMIT_DEFAULT 20

/* ---- the search ---- */

/* Bind the filters' values from parameter `p` on, in the order
 * filters_sql wrote them. */
static void filters_sql(struct notes_fmt__buf *o, const struct notes_fmt__query *q)
{
    for (size_t i = 0; i < q->nowner; i++)
        notes_fmt__puts(o, " AND EXISTS (SELECT 1 FROM item o WHERE o.note = n.rowid"
                           " AND (o.owner = ? OR o.written = ?))");
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

static int bind_filters(sqlite3_stmt *s, int p, const struct notes_fmt__query *q)
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

/* `sql` prepared with the note's rowid bound as ?at: the statement, or
 * NULL with *src saying why it could not be prepared. */
static sqlite3_stmt *note_stmt(sqlite3 *db, const char *sql, int at,
                               sqlite3_int64 rowid, int *src)
{
    sqlite3_stmt *s = NULL;
    if ((*src = sqlite3_prepare_v2(db, sql, -1, &s, NULL)) != SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(s, at, rowid);
    return s;
}

/* An owner filter's items as the lines of a hit (filters alone, or besides
 * words): the lines of the text whose item the owner owns. */
static int owner_lines(sqlite3 *db, sqlite3_int64 rowid, const struct notes_fmt__query *q,
                       size_t fm_lines, notes_fmt_search_hit *h, int *src)
{
    sqlite3_stmt *s = note_stmt(db, "SELECT body FROM fts WHERE rowid = ?1", 1,
                                rowid, src);
    if (!s)
        return NOTES_OK;
    const char *body = NULL;
    if ((*src = sqlite3_step(s)) == SQLITE_ROW) {
        body = (const char *)sqlite3_column_text(s, 0);
        *src = SQLITE_OK;
    }
    sqlite3_stmt *o = NULL;
    int rc = NOTES_OK;
    if (body && *src == SQLITE_OK &&
        (*src = sqlite3_prepare_v2(db,
                                   "SELECT DISTINCT line FROM item WHERE note = ?1"
                                   " AND (owner = ?2 OR written = ?2) ORDER BY line",
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
                    const struct notes_fmt__query *q, notes_fmt_search_hit *h, int *src)
{
    int rc = NOTES_OK;
    h->score = score;
    sqlite3_stmt *s = note_stmt(db,
                                "SELECT n.id, n.title, n.datetime, n.fm_lines,"
                                " n.damaged, n.sum = checksum(f.title, f.body)"
                                " FROM note n JOIN fts f ON f.rowid = n.rowid"
                                " WHERE n.rowid = ?1",
                                1, rowid, src);
    if (!s)
        return NOTES_OK;
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
    s = note_stmt(db,
                  "SELECT highlight(fts, 0, char(2), char(3)),"
                  " highlight(fts, 1, char(2), char(3))"
                  " FROM fts WHERE fts MATCH ?1 AND rowid = ?2",
                  2, rowid, src);
    if (!s)
        return NOTES_OK;
    sqlite3_bind_text(s, 1, notes_fmt__str(&q->fts), -1, SQLITE_STATIC);
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

static int run_query_tx(sqlite3 *db, const struct notes_fmt__query *q,
                        size_t limit, notes_fmt_search_result *res, int *src);

/* The query and every hit's details in one read transaction: statements
 * outside one each see the index as it is then, and a search beside
 * another (which may drop and insert a note's entry again) then found a
 * hit whose lines were gone. */
static int run_query(sqlite3 *db, const struct notes_fmt__query *q, size_t limit,
                     notes_fmt_search_result *res, int *src)
{
    *src = sqlite3_exec(db, "BEGIN;", NULL, NULL, NULL);
    if (*src != SQLITE_OK)
        return NOTES_OK;
    int rc = run_query_tx(db, q, limit, res, src);
    sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
    return rc;
}

static int run_query_tx(sqlite3 *db, const struct notes_fmt__query *q,
                        size_t limit, notes_fmt_search_result *res, int *src)
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
    struct notes_fmt__query q;
    memset(&q, 0, sizeof(q));
    notes_fmt__buf_init(&q.fts);
    int rc = notes_fmt__search_parse(query, &q);
    sqlite3 *db = NULL;
    if (rc == NOTES_OK)
        rc = notes_fmt__search_update_open(r, &out->stats, &db, NULL, NULL);
    if (rc == NOTES_OK) {
        int src = SQLITE_OK;
        rc = run_query(db, &q, limit ? limit : SEARCH_LIMIT_DEFAULT, out, &src);
        if (rc == NOTES_OK && src != SQLITE_OK && notes_fmt__search_unusable(src)) {
            /* Damage the first look did not reach: rebuild, ask again. */
            notes_fmt_search_clear(out);
            sqlite3_close(db);
            db = NULL;
            char *path = notes_fmt__search_path(r);
            if (!path)
                rc = NOTES_ENOMEM;
            else
                notes_fmt__search_discard(path);
            notes__free(path);
            if (rc == NOTES_OK)
                rc = notes_fmt__search_update_open(r, &out->stats, &db, NULL, NULL);
            out->stats.rebuilt = 1;
            if (rc == NOTES_OK)
                rc = run_query(db, &q, limit ? limit : SEARCH_LIMIT_DEFAULT, out, &src);
        }
        if (rc == NOTES_OK && src != SQLITE_OK)
            rc = notes_fmt__search_fail(db, src, "cannot search it");
    }
    sqlite3_close(db);
    notes_fmt__search_query_clear(&q);
    return rc;
}

