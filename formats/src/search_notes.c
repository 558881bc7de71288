/*
 * search_notes.c: the notes index (notes_formats.h, "The notes index";
 * docs/formats.md). The search index's note table also keeps what
 * `notes list` and `notes decisions` show of each note, so that they read
 * one file instead of opening (reading, verifying, merging) every log:
 * the facts of each key the note names and each decision and action item
 * as a small binary record (written by search_entry.c with the encoders
 * here, read back below). Records are the index's own: a record that does
 * not decode is damage, and the index is rebuilt from the logs.
 */
#include <stdlib.h>
#include <string.h>

#include "search_internal.h"

void notes_fmt_key_facts_of(notes_doc *d, const uint8_t pk[32],
                            notes_fmt_key_facts *f)
{
    notes_person_info pi;
    memset(f, 0, sizeof(*f));
    memcpy(f->key, pk, 32);
    if (!d)
        return;
    f->claimed = notes_doc_author_name(d, pk);
    f->equivocated = notes_doc_author_equivocated(d, pk) ? 1 : 0;
    if (notes_doc_person(d, pk, &pi) != NOTES_OK)
        return;
    if (pi.person) {
        f->linked = 1;
        memcpy(f->person, pi.person, 32);
        f->person_name = pi.name;
        f->revoked = pi.revoked ? 1 : 0;
    } else {
        f->contested = pi.contested ? 1 : 0;
    }
}

/* ---- records: little-endian numbers, strings with their NUL ---- */

#define NO_STR 0xffffffffu

static void put_u32(struct notes_fmt__buf *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                          (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    notes_fmt__put(o, b, 4);
}

static void put_str(struct notes_fmt__buf *o, const char *s)
{
    if (!s) {
        put_u32(o, NO_STR);
        return;
    }
    size_t n = strlen(s);
    put_u32(o, (uint32_t)n);
    notes_fmt__put(o, s, n + 1);
}

static void put_facts(struct notes_fmt__buf *o, const notes_fmt_key_facts *f)
{
    notes_fmt__put(o, f->key, 32);
    put_u32(o, (uint32_t)(f->linked | f->revoked << 1 | f->contested << 2 |
                          f->equivocated << 3));
    notes_fmt__put(o, f->person, 32);
    put_str(o, f->claimed);
    put_str(o, f->person_name);
}

static int has_key(uint8_t (*keys)[32], size_t n, const uint8_t k[32])
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(keys[i], k, 32) == 0)
            return 1;
    return 0;
}

static int add_key(uint8_t (**keys)[32], size_t *n, size_t *cap,
                   const uint8_t k[32])
{
    if (has_key(*keys, *n, k))
        return NOTES_OK;
    if (notes__grow(keys, cap, *n + 1, sizeof(**keys), 8) != NOTES_OK)
        return NOTES_ENOMEM;
    memcpy((*keys)[(*n)++], k, 32);
    return NOTES_OK;
}

int notes_fmt__index_keys(notes_doc *d, const notes_fmt_outline *ol,
                          struct notes_fmt__buf *o, size_t *nauthors,
                          size_t *nkeys)
{
    uint8_t(*a)[32] = NULL, (*all)[32] = NULL;
    size_t na = 0, n = 0, cap = 0;
    int rc = notes_fmt_authors(d, &a, &na);
    for (size_t i = 0; rc == NOTES_OK && i < na; i++)
        rc = add_key(&all, &n, &cap, a[i]);
    /* Keys the items name that signed no change here (none expected: an
     * item's text and a confirmation come in signed changes), so that a
     * lookup never misses. */
    for (size_t i = 0; rc == NOTES_OK && i < ol->nitems; i++) {
        const notes_fmt_item *it = &ol->items[i];
        for (size_t k = 0; rc == NOTES_OK && k < it->nauthors; k++)
            rc = add_key(&all, &n, &cap, it->authors[k]);
        for (size_t k = 0; rc == NOTES_OK && k < it->nconfirms; k++)
            rc = add_key(&all, &n, &cap, it->confirms[k].by.device);
    }
    for (size_t i = 0; rc == NOTES_OK && i < n; i++) {
        notes_fmt_key_facts f;
        notes_fmt_key_facts_of(d, all[i], &f);
        put_facts(o, &f);
    }
    *nauthors = rc == NOTES_OK ? (size_t)na : 0;
    *nkeys = rc == NOTES_OK ? n : 0;
    notes_fmt_free(a);
    notes__free(all);
    return rc == NOTES_OK && o->failed ? NOTES_ENOMEM : rc;
}

static void put_item(const notes_fmt_item *it, struct notes_fmt__buf *o)
{
    put_str(o, it->text);
    put_str(o, it->owner);
    put_str(o, it->owner_written);
    put_u32(o, (uint32_t)it->verified);
    put_u32(o, (uint32_t)it->revocation);
    put_u32(o, (uint32_t)it->nauthors);
    for (size_t k = 0; k < it->nauthors; k++)
        notes_fmt__put(o, it->authors[k], 32);
    int hp = it->nauthors && it->people && it->people[0].has_person;
    put_u32(o, (uint32_t)hp);
    if (hp) {
        notes_fmt__put(o, it->people[0].person, 32);
        put_str(o, it->people[0].name);
    }
    put_u32(o, (uint32_t)it->has_anchor);
    notes_fmt__put(o, it->id, 17);
    put_u32(o, (uint32_t)it->confirmed_by);
    put_u32(o, (uint32_t)it->nconfirms);
    for (size_t k = 0; k < it->nconfirms; k++) {
        const notes_fmt_confirm *c = &it->confirms[k];
        notes_fmt__put(o, c->change_id, 32);
        notes_fmt__put(o, c->by.device, 32);
        put_u32(o, (uint32_t)c->by.has_person);
        notes_fmt__put(o, c->by.person, 32);
        put_str(o, c->by.name);
        put_str(o, c->text);
        put_str(o, c->owner);
        put_u32(o, (uint32_t)c->state);
        put_u32(o, (uint32_t)c->counted);
        notes_fmt__put(o, c->item_id, 17);
    }
}

int notes_fmt__index_open(const notes_fmt_outline *ol, struct notes_fmt__buf *o)
{
    struct notes_fmt__buf rec = NOTES_FMT__BUF_INIT;
    for (size_t i = 0; i < ol->nitems; i++) {
        const notes_fmt_item *it = &ol->items[i];
        if (it->kind != NOTES_FMT_ITEM_TASK || it->done)
            continue;
        rec.b.len = 0;
        put_item(it, &rec);
        put_u32(o, (uint32_t)i + 1);
        put_u32(o, (uint32_t)it->line);
        put_u32(o, (uint32_t)rec.b.len);
        if (rec.b.len)
            notes_fmt__put(o, rec.b.data, rec.b.len);
    }
    int failed = o->failed || rec.failed;
    notes_fmt__release(&rec);
    return failed ? NOTES_ENOMEM : NOTES_OK;
}

/* ---- reading records back ---- */

/* Blocks that never move: the index's strings and arrays point into them,
 * and are released at once. */
struct block {
    struct block *next;
    size_t used, size;
    max_align_t data[];
};

static void *arena_alloc(notes_fmt_index *ix, size_t n)
{
    struct block *b = ix->arena;
    n = (n + 15) & ~(size_t)15;
    if (!b || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        struct block *nb = notes__malloc(sizeof(*nb) + size);
        if (!nb)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->size = size;
        ix->arena = b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static void *arena_copy(notes_fmt_index *ix, const void *s, size_t n)
{
    void *p = arena_alloc(ix, n ? n : 1);
    if (p && n)
        memcpy(p, s, n);
    return p;
}

struct rd { /* over the arena's copy: the item's strings point into it */
    unsigned char *p, *end;
    int bad;
};

static uint32_t get_u32(struct rd *r)
{
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 |
                 (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

static unsigned char *get_bytes(struct rd *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    unsigned char *p = r->p;
    r->p += n;
    return p;
}

static void get_key(struct rd *r, uint8_t out[32])
{
    const unsigned char *p = get_bytes(r, 32);
    if (p)
        memcpy(out, p, 32);
}

/* A string of the record (which the arena holds): borrowed, not copied. */
static char *get_str(struct rd *r)
{
    uint32_t n = get_u32(r);
    if (r->bad || n == NO_STR)
        return NULL;
    unsigned char *p = get_bytes(r, (size_t)n + 1);
    if (p && p[n] != 0)
        r->bad = 1;
    return r->bad ? NULL : (char *)p;
}

static int get_facts(struct rd *r, notes_fmt_key_facts *f)
{
    memset(f, 0, sizeof(*f));
    get_key(r, f->key);
    uint32_t fl = get_u32(r);
    f->linked = fl & 1;
    f->revoked = fl >> 1 & 1;
    f->contested = fl >> 2 & 1;
    f->equivocated = fl >> 3 & 1;
    get_key(r, f->person);
    f->claimed = get_str(r);
    f->person_name = get_str(r);
    return r->bad ? -1 : 0;
}

static int get_item(notes_fmt_index *ix, struct rd *r, notes_fmt_item *it)
{
    memset(it, 0, sizeof(*it));
    it->kind = NOTES_FMT_ITEM_TASK;
    it->text = get_str(r);
    it->owner = get_str(r);
    it->owner_written = get_str(r);
    it->verified = (int)get_u32(r);
    it->revocation = (int)get_u32(r);
    uint32_t na = get_u32(r);
    if (r->bad || na > (size_t)(r->end - r->p) / 32)
        return -1;
    it->nauthors = na;
    if (na) {
        it->authors = (uint8_t(*)[32])(void *)get_bytes(r, (size_t)na * 32);
        it->people = arena_alloc(ix, sizeof(*it->people));
        if (!it->people)
            return NOTES_ENOMEM;
        memset(it->people, 0, sizeof(*it->people));
    }
    if (get_u32(r)) {
        if (!it->people)
            return -1;
        it->people[0].has_person = 1;
        get_key(r, it->people[0].person);
        it->people[0].name = get_str(r);
    }
    it->has_anchor = (int)get_u32(r);
    const unsigned char *id = get_bytes(r, 17);
    if (id)
        memcpy(it->id, id, 17);
    it->confirmed_by = get_u32(r);
    uint32_t nc = get_u32(r);
    if (r->bad || nc > (size_t)(r->end - r->p) / 64)
        return -1;
    if (nc && !(it->confirms = arena_alloc(ix, nc * sizeof(*it->confirms))))
        return NOTES_ENOMEM;
    it->nconfirms = nc;
    for (size_t k = 0; k < nc && !r->bad; k++) {
        notes_fmt_confirm *c = &it->confirms[k];
        memset(c, 0, sizeof(*c));
        get_key(r, c->change_id);
        get_key(r, c->by.device);
        c->by.has_person = (int)get_u32(r);
        get_key(r, c->by.person);
        c->by.name = get_str(r);
        c->text = get_str(r);
        c->owner = get_str(r);
        c->state = (int)get_u32(r);
        c->counted = (int)get_u32(r);
        const unsigned char *iid = get_bytes(r, 17);
        if (iid)
            memcpy(c->item_id, iid, 17);
    }
    if (!r->bad && it->id[16])
        r->bad = 1;
    return r->bad || r->p != r->end ? -1 : 0;
}

/* ---- the read ---- */

static int cmp_rowid(const void *a, const void *b)
{
    sqlite3_int64 x = *(const sqlite3_int64 *)a, y = *(const sqlite3_int64 *)b;
    return (x > y) - (x < y);
}

/* The note of row `rowid`: rows[] holds (rowid, index, open items) by
 * rowid. */
static notes_fmt_index_note *by_rowid(notes_fmt_index *ix,
                                      const sqlite3_int64 (*rows)[3],
                                      sqlite3_int64 rowid)
{
    const sqlite3_int64(*hit)[3] =
        rows && ix->nnotes
            ? bsearch(&rowid, rows, ix->nnotes, sizeof(*rows), cmp_rowid)
            : NULL;
    return hit ? &ix->notes[(*hit)[1]] : NULL;
}

static const char *arena_text(notes_fmt_index *ix, sqlite3_stmt *s, int col,
                              int *nomem)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    if (!t)
        return NULL;
    const char *c = arena_copy(ix, t, (size_t)sqlite3_column_bytes(s, col) + 1);
    if (!c)
        *nomem = 1;
    return c;
}

/* The open items of column `col` (notes_fmt__index_open's records) into
 * n: 0, -1 for a record that does not decode, NOTES_ENOMEM. */
static int get_open(notes_fmt_index *ix, notes_fmt_index_note *n,
                    sqlite3_stmt *s, int col)
{
    size_t bn = (size_t)sqlite3_column_bytes(s, col);
    if (!bn)
        return -1; /* a row is written only for a note with open items */
    unsigned char *copy = arena_copy(ix, sqlite3_column_blob(s, col), bn);
    if (!copy)
        return NOTES_ENOMEM;
    /* Counted first: the arrays are the arena's too. */
    struct rd all = {copy, copy + bn, 0};
    size_t count = 0;
    while (all.p < all.end && !all.bad) {
        get_u32(&all);
        get_u32(&all);
        uint32_t len = get_u32(&all);
        if (!all.bad && get_bytes(&all, len))
            count++;
    }
    if (all.bad || !count)
        return -1;
    n->items = arena_alloc(ix, count * sizeof(*n->items));
    n->numbers = arena_alloc(ix, count * sizeof(*n->numbers));
    if (!n->items || !n->numbers)
        return NOTES_ENOMEM;
    all.p = copy;
    while (n->nitems < count) {
        uint32_t number = get_u32(&all), line = get_u32(&all), len = get_u32(&all);
        unsigned char *rec = get_bytes(&all, len);
        if (!rec || !number)
            return -1;
        struct rd r = {rec, rec + len, 0};
        notes_fmt_item *it = &n->items[n->nitems];
        int g = get_item(ix, &r, it);
        if (g)
            return g;
        it->line = line;
        n->numbers[n->nitems++] = number;
    }
    return 0;
}

static int read_notes(sqlite3 *db, notes_fmt_index *ix,
                      sqlite3_int64 (**rows)[3], int *nomem)
{
    sqlite3_stmt *s;
    size_t cap = 0, rcap = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, title, datetime, last_ms, changes,"
                                " damage, text_line, nauthors, nkeys, keys, rowid,"
                                " nopen FROM note", /* in row order: by id below */
                                -1, &s, NULL);
    while ((rc == SQLITE_OK || rc == SQLITE_ROW) &&
           (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (notes__grow(&ix->notes, &cap, ix->nnotes + 1, sizeof(*ix->notes),
                        1024) != NOTES_OK) {
            *nomem = 1;
            break;
        }
        notes_fmt_index_note *n = &ix->notes[ix->nnotes];
        memset(n, 0, sizeof(*n));
        const char *hex = (const char *)sqlite3_column_text(s, 0);
        if (!hex || notes__unhex(n->id, 16, hex) != NOTES_OK) {
            rc = SQLITE_CORRUPT;
            break;
        }
        n->title = arena_text(ix, s, 1, nomem);
        n->datetime = arena_text(ix, s, 2, nomem);
        n->last_ms = (uint64_t)sqlite3_column_int64(s, 3);
        n->changes = (size_t)sqlite3_column_int64(s, 4);
        n->damaged = sqlite3_column_int(s, 5);
        n->text_line = (size_t)sqlite3_column_int64(s, 6);
        size_t na = (size_t)sqlite3_column_int64(s, 7);
        size_t nk = (size_t)sqlite3_column_int64(s, 8);
        size_t bn = (size_t)sqlite3_column_bytes(s, 9);
        const void *blob = sqlite3_column_blob(s, 9);
        unsigned char *copy = arena_copy(ix, blob, bn);
        n->keys = nk ? arena_alloc(ix, nk * sizeof(*n->keys)) : NULL;
        if (!copy || (nk && !n->keys)) {
            *nomem = 1;
            break;
        }
        struct rd r = {copy, copy + bn, 0};
        for (size_t k = 0; k < nk && !r.bad; k++)
            get_facts(&r, &n->keys[k]);
        if (r.bad || r.p != r.end || na > nk) {
            rc = SQLITE_CORRUPT;
            break;
        }
        n->nkeys = nk;
        n->authors = n->keys;
        n->nauthors = na;
        if (notes__grow(rows, &rcap, ix->nnotes + 1, sizeof(**rows), 1024) !=
            NOTES_OK) {
            *nomem = 1;
            break;
        }
        (*rows)[ix->nnotes][0] = sqlite3_column_int64(s, 10);
        (*rows)[ix->nnotes][1] = (sqlite3_int64)ix->nnotes;
        /* Checked against the open_item rows once they are read: a row
         * gone would hide a note's open items. */
        (*rows)[ix->nnotes][2] = sqlite3_column_int64(s, 11);
        ix->nnotes++;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The participants of each note, in the order of its list (row order). */
static int read_participants(sqlite3 *db, notes_fmt_index *ix,
                             const sqlite3_int64 (*rows)[3], int *nomem)
{
    sqlite3_stmt *s;
    notes_fmt_index_note *cur = NULL;
    const char **l = NULL;
    size_t nl = 0, cap = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT note, name FROM participant"
                                " ORDER BY note, rowid",
                                -1, &s, NULL);
    for (;;) {
        int step = rc == SQLITE_OK ? sqlite3_step(s) : rc;
        sqlite3_int64 note = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        notes_fmt_index_note *n = step == SQLITE_ROW ? by_rowid(ix, rows, note) : NULL;
        if (cur && n != cur) { /* the list of `cur` is complete */
            const char **v = arena_alloc(ix, (nl + 1) * sizeof(*v));
            if (!v) {
                *nomem = 1;
                break;
            }
            memcpy(v, l, nl * sizeof(*v));
            v[nl] = NULL;
            cur->participants = v;
            nl = 0;
        }
        if (step != SQLITE_ROW) {
            rc = step == SQLITE_DONE ? SQLITE_OK : step;
            break;
        }
        if (!n) {
            rc = SQLITE_CORRUPT;
            break;
        }
        cur = n;
        const char *name = arena_text(ix, s, 1, nomem);
        if (!name ||
            notes__grow(&l, &cap, nl + 1, sizeof(*l), 8) != NOTES_OK) {
            *nomem = 1;
            break;
        }
        l[nl++] = name;
    }
    notes__free(l);
    sqlite3_finalize(s);
    return rc;
}

/* The open action items of every note that has some. */
static int read_open(sqlite3 *db, notes_fmt_index *ix,
                     const sqlite3_int64 (*rows)[3], int *nomem)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "SELECT note, data FROM open_item", -1, &s,
                                NULL);
    while ((rc == SQLITE_OK || rc == SQLITE_ROW) &&
           (rc = sqlite3_step(s)) == SQLITE_ROW) {
        notes_fmt_index_note *n = by_rowid(ix, rows, sqlite3_column_int64(s, 0));
        int g = n && !n->nitems ? get_open(ix, n, s, 1) : -1;
        if (g == NOTES_ENOMEM) {
            *nomem = 1;
            break;
        }
        if (g) {
            rc = SQLITE_CORRUPT;
            break;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int cmp_note(const void *a, const void *b)
{
    return memcmp(a, b, 16); /* id first */
}

static int read_all(sqlite3 *db, notes_fmt_index *ix, unsigned flags,
                    int *nomem)
{
    sqlite3_int64(*rows)[3] = NULL;
    /* One read transaction: the notes and their items as one version. */
    int rc = sqlite3_exec(db, "BEGIN;", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = read_notes(db, ix, &rows, nomem);
    if (rc == SQLITE_OK && !*nomem && ix->nnotes && !rows)
        rc = SQLITE_CORRUPT; /* notes read, no rows kept */
    if (rc == SQLITE_OK && !*nomem && ix->nnotes > 1)
        qsort(rows, ix->nnotes, sizeof(*rows), cmp_rowid);
    if (rc == SQLITE_OK && !*nomem && (flags & NOTES_FMT_INDEX_PARTICIPANTS))
        rc = read_participants(db, ix, (const sqlite3_int64(*)[3])rows, nomem);
    if (rc == SQLITE_OK && !*nomem && (flags & NOTES_FMT_INDEX_OPEN_ITEMS))
        rc = read_open(db, ix, (const sqlite3_int64(*)[3])rows, nomem);
    for (size_t i = 0; rc == SQLITE_OK && !*nomem &&
                       (flags & NOTES_FMT_INDEX_OPEN_ITEMS) && i < ix->nnotes; i++)
        if (ix->notes[rows[i][1]].nitems != (size_t)rows[i][2])
            rc = SQLITE_CORRUPT;
    if (rc == SQLITE_OK && !*nomem && ix->nnotes > 1)
        qsort(ix->notes, ix->nnotes, sizeof(*ix->notes), cmp_note);
    sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
    notes__free(rows);
    return rc;
}

static void release_notes(notes_fmt_index *ix)
{
    notes__free(ix->notes);
    ix->notes = NULL;
    ix->nnotes = 0;
    while (ix->arena) {
        struct block *b = ix->arena;
        ix->arena = b->next;
        notes__free(b);
    }
}

void notes_fmt_index_clear(notes_fmt_index *ix)
{
    if (!ix)
        return;
    release_notes(ix);
    notes_fmt_search_stats_clear(&ix->stats);
    memset(ix, 0, sizeof(*ix));
}

/* read_all while the freshness check stats the logs. */
struct early_read {
    notes_fmt_index *ix;
    unsigned flags;
    int ran, src, nomem;
};

static void early_read_fn(sqlite3 *db, void *arg)
{
    struct early_read *er = arg;
    er->ran = 1;
    er->src = read_all(db, er->ix, er->flags, &er->nomem);
}

int notes_fmt_index_read(notes_replica *r, unsigned flags, notes_fmt_index *out)
{
    if (!out)
        return notes_fmt__fail(NOTES_EINVAL, "no index");
    memset(out, 0, sizeof(*out));
    if (!r)
        return notes_fmt__fail(NOTES_EINVAL, "no replica");
    for (int attempt = 0; attempt < 2; attempt++) {
        sqlite3 *db = NULL;
        int nomem = 0;
        if (attempt) {
            /* What the update did not reach is damaged: rebuild, read again. */
            char *path = notes_fmt__search_path(r);
            if (!path)
                return NOTES_ENOMEM;
            notes_fmt__search_discard(path);
            notes__free(path);
        }
        /* The index is read while the logs are stat'ed (a second thread),
         * on the bet that nothing changed: the common case, and the read
         * then costs no wall time of its own. If the update wrote, or the
         * early read failed, it is read again. */
        struct early_read er = {out, flags, 0, SQLITE_OK, 0};
        const struct search_during during = {early_read_fn, &er};
        int wrote = 0;
        int rc = notes_fmt__search_update_open(r, &out->stats, &db,
                                               attempt ? NULL : &during, &wrote);
        if (rc != NOTES_OK) {
            release_notes(out);
            return rc;
        }
        out->stats.rebuilt |= attempt;
        int src;
        if (er.ran && !wrote && er.src == SQLITE_OK && !er.nomem) {
            src = SQLITE_OK;
        } else {
            release_notes(out);
            src = read_all(db, out, flags, &nomem);
        }
        if (src != SQLITE_OK || nomem)
            release_notes(out);
        rc = nomem ? notes_fmt__fail(NOTES_ENOMEM, "out of memory")
             : src == SQLITE_OK ? NOTES_OK
             : attempt || !notes_fmt__search_unusable(src)
                 ? notes_fmt__search_fail(db, src, "cannot read it")
                 : -1;
        sqlite3_close(db);
        if (rc != -1)
            return rc;
    }
    return NOTES_OK; /* not reached */
}
