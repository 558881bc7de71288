/*
 * search_update.c: keeping the search index up to date (search_internal.h):
 * a stamp of each log file tells which notes moved; those are read again
 * from their logs, and entries of notes gone are dropped.
 */
#include <dirent.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "search_internal.h"

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
/* Stamps of the logs e[lo..hi) into out[lo..hi): one fstatat each. */
struct stamp_job {
    int dfd;
    const struct entry *e;
    struct listed *out;
    size_t lo, hi;
};

static void *stamp_range(void *arg)
{
    const struct stamp_job *j = arg;
    for (size_t i = j->lo; i < j->hi; i++) {
        char name[40];
        struct stat st;
        notes__hex(name, j->e[i].id, 16);
        memcpy(name + 32, ".log", 5);
        memcpy(j->out[i].id, j->e[i].id, 16);
        j->out[i].is_log = 1;
        j->out[i].stamp = fstatat(j->dfd, name, &st, 0) == 0 ? file_stamp(&st) : 0;
    }
    return NULL;
}

/* Above this many notes the stamps are taken in a second thread: the
 * check is a path lookup and a getattr per log, all CPU in the kernel
 * (about a microsecond each, 10 ms at 10,000 notes), and a listing waits
 * for it. The first thread meanwhile reads the index (`during`, see
 * notes_fmt__search_update_open), else takes half of the stamps. */
#define STAMP_SPLIT 2048

static int list_known(sqlite3 *db, notes_replica *r, const struct entry *e,
                      size_t ne, struct listed **out, size_t *n,
                      const struct search_during *during)
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
    int overlap = during && during->fn;
    size_t cut = overlap ? 0 : ne / 2, split = STAMP_SPLIT;
    /* The tests take the threaded path on a small replica. */
    const char *ov = getenv("NOTES_INDEX_STAT_SPLIT");
    if (ov && *ov)
        split = (size_t)strtoul(ov, NULL, 10);
    struct stamp_job other = {dfd, e, *out, cut, ne}, mine = {dfd, e, *out, 0, cut};
    pthread_t t;
    int threaded = ne >= split && pthread_create(&t, NULL, stamp_range, &other) == 0;
    if (!threaded) {
        mine.hi = ne; /* one thread does all (also when none could start) */
        stamp_range(&mine);
    } else if (!overlap) {
        stamp_range(&mine);
    }
    if (overlap)
        during->fn(db, during->arg); /* beside the stamps, or after them */
    if (threaded)
        pthread_join(t, NULL);
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
    if (rc == SQLITE_OK && rowid && (rc = notes_fmt__search_drop(db, rowid)) == SQLITE_OK)
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
                       int *nrc, const struct search_during *during, int *wrote)
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
    if (known) {
        *nrc = list_known(db, r, e, ne, &ls, &n, during);
    } else {
        *nrc = list_notes(r, &ls, &n);
        if (*nrc == NOTES_OK && during && during->fn)
            during->fn(db, during->arg);
    }
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
        if ((*nrc = notes_fmt__search_version(d, &changes, &heads)) != NOTES_OK) {
            notes_doc_free(d);
            break;
        }
        notes__hex(hex, id, 16);
        /* Decided inside the transaction, on the entry as it is now: two
         * searches at once (the daemon's, a shell's) then only repeat
         * work, they never insert one note twice. The same version (a
         * compaction, a touch, a torn tail) is derived again too: the
         * listings show what depends on the log's order (the authors in
         * the order of the changes, the last change's time) and on its
         * state (damage to say), as opening the note would. */
        if ((rc = begin_once(db, &in_tx)) != SQLITE_OK ||
            (rc = entry_now(db, hex, &rowid, &old_changes, &old_heads)) != SQLITE_OK) {
            /* said below */
        } else if (!rowid || (rc = notes_fmt__search_drop(db, rowid)) == SQLITE_OK) {
            rc = notes_fmt__search_insert(db, d, stamp, changes, heads, nrc);
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
    *wrote = in_tx;
    if (in_tx) {
        if (rc == SQLITE_OK && *nrc == NOTES_OK)
            rc = sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
        if (rc != SQLITE_OK && *nrc == NOTES_OK) /* said before ROLLBACK */
            *nrc = notes_fmt__search_fail(db, rc, "cannot update it");
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
int notes_fmt__search_update_open(notes_replica *r, notes_fmt_search_stats *st,
                       sqlite3 **db, const struct search_during *during,
                       int *wrote)
{
    int wrote_here = 0;
    if (!wrote)
        wrote = &wrote_here;
    *wrote = 0;
    char *path = notes_fmt__search_path(r);
    if (!path)
        return NOTES_ENOMEM;
    int rc = NOTES_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        int nrc;
        notes_fmt_search_stats_clear(st);
        st->rebuilt = attempt > 0;
        rc = notes_fmt__search_open(path, attempt > 0, db, &st->rebuilt);
        if (rc != NOTES_OK)
            break;
        /* `during` runs on the first attempt only: a rebuild writes
         * anyway, and its caller reads after it. */
        int w = 0;
        int src = update_pass(*db, r, st, &nrc, attempt ? NULL : during, &w);
        *wrote |= w || attempt;
        if (src == SQLITE_OK && nrc == NOTES_OK)
            break;
        rc = src != SQLITE_OK && nrc == NOTES_OK
                 ? notes_fmt__search_fail(*db, src, "cannot update it")
                 : nrc;
        sqlite3_close(*db);
        *db = NULL;
        if (src == SQLITE_OK || !notes_fmt__search_unusable(src))
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
    int rc = notes_fmt__search_update_open(r, st, &db, NULL, NULL);
    sqlite3_close(db);
    if (st == &local)
        notes_fmt_search_stats_clear(&local);
    return rc;
}
