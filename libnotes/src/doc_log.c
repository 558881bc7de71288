/*
 * doc_log.c: the log, its state, damage and repair: reading new records,
 * judging them against what this replica acknowledged (the state file),
 * preparing a write and recording it.
 */
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "doc_internal.h"

int notes__doc_load_state(notes_doc *d)
{
    char *path = notes__replica_state_path(d->r, d->id);
    if (!path)
        return NOTES_ENOMEM;
    int rc = notes__state_load(path, d->id, &d->st);
    notes__free(path);
    return rc;
}

/* The last change this device signed in the note: its seq (0: none), from
 * the author's seq slots (no scan of the changes: this runs on every read
 * and before every commit). Of two with one seq, the smaller id. */
uint64_t notes__doc_my_last_change(const notes_doc *d, const uint8_t **id)
{
    *id = NULL;
    for (size_t i = 0; i < d->na; i++) {
        if (memcmp(d->a[i].pk, d->r->pk, 32) != 0)
            continue;
        /* nseq may overstate after a rolled-back ingest: skip empty slots */
        for (uint64_t seq = d->a[i].nseq; seq > 0; seq--) {
            uint32_t w = notes__doc_slot_winner(d, (uint32_t)i, seq);
            if (w != NONE) {
                *id = d->e[w].c->id;
                return seq;
            }
        }
        break;
    }
    return 0;
}

/* Acknowledged heads that the note does not hold; *first: one of them. */
static uint32_t missing_heads(const notes_doc *d, const uint8_t **first)
{
    uint32_t k = 0;
    *first = NULL;
    for (uint32_t i = 0; i < d->st.nheads; i++) {
        if (notes__doc_hash_find(d, d->st.heads[i]) != NONE)
            continue;
        if (!k++)
            *first = d->st.heads[i];
    }
    return k;
}

/* Whether the log's bad tail holds bytes this replica acknowledged: then it
 * is damage, else an interrupted write that nobody was told about. */
static int tail_acked(const notes_doc *d)
{
    const struct notes__log *lg = d->log;
    return lg->bad_header ||
           (d->st.present ? lg->end < d->st.acked_end : !lg->torn);
}

struct finding {
    notes_doc *d;
    size_t o;
};

static void found(struct finding *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Add a finding to d->damage; the first with a code sets d->problem. */
static void found(struct finding *f, int code, const char *fmt, ...)
{
    notes_doc *d = f->d;
    va_list ap;
    if (code && !d->problem)
        d->problem = code;
    if (f->o + 3 >= sizeof(d->damage))
        return;
    if (f->o) {
        memcpy(d->damage + f->o, "; ", 3);
        f->o += 2;
    }
    va_start(ap, fmt);
    int k = vsnprintf(d->damage + f->o, sizeof(d->damage) - f->o, fmt, ap);
    va_end(ap);
    if (k > 0)
        f->o += (size_t)k < sizeof(d->damage) - f->o
                    ? (size_t)k
                    : sizeof(d->damage) - f->o - 1;
}

/*
 * Judge what was read against what this replica acknowledged (d->st):
 * sets d->problem and d->damage. Only a bad tail at or past the
 * acknowledged end of the log is an interrupted write nobody was told
 * about; anything below it, any acknowledged change the note lacks, and a
 * log shorter than acknowledged are damage or rollback. A log with no
 * state file (written by an older version) is judged as before: an
 * incomplete last record is a torn write, a bad complete one damage.
 */
void notes__doc_assess(notes_doc *d)
{
    const struct notes__log *lg = d->log;
    const struct notes__state *st = &d->st;
    struct finding f = {d, 0};
    char *path = NULL;
    const char *lp = lg ? lg->path : (path = notes__replica_log_path(d->r, d->id));
    if (!lp)
        lp = "the note's log";
    d->problem = NOTES_OK;
    d->damage[0] = 0;
    if (st->damaged)
        found(&f, NOTES_ECORRUPT,
              "%s: without it damage to the log cannot be told from an "
              "interrupted write", st->why);
    int cut = 0; /* acknowledged bytes unreadable: the rest follows */
    if (lg && lg->damaged) {
        if ((cut = tail_acked(d)))
            found(&f, NOTES_ECORRUPT,
                  "'%s': %s; the note shows what precedes it", lp, lg->damage);
        else
            found(&f, NOTES_OK,
                  "'%s': %s: an interrupted write, never acknowledged; the "
                  "next change to this note sets it aside", lp, lg->damage);
    }
    if (st->present) {
        const uint8_t *miss;
        uint32_t k = missing_heads(d, &miss);
        const uint8_t *mine;
        uint64_t myseq = notes__doc_my_last_change(d, &mine);
        char sid[17];
        if (!lg && (st->nchanges || st->acked_end))
            found(&f, NOTES_EROLLBACK,
                  "'%s' is missing or empty, but this replica stored %llu "
                  "changes of this note", lp,
                  (unsigned long long)st->nchanges);
        if (k && cut) {
            found(&f, NOTES_ECORRUPT,
                  "%u acknowledged change(s) lie past the damage: recover "
                  "them from a peer (notes sync) or a bundle (notes import)",
                  k);
        } else if (k) {
            notes__doc_short_id(sid, miss);
            found(&f, NOTES_EROLLBACK,
                  "'%s' lacks %u change(s) this replica acknowledged (%s...): "
                  "it was cut, damaged or replaced by an older copy; recover "
                  "them from a peer (notes sync) or a bundle (notes import)",
                  lp, k, sid);
        } else if (st->nchanges > d->ne + d->nbad) {
            found(&f, NOTES_EROLLBACK,
                  "'%s' holds %zu changes, fewer than the %llu this replica "
                  "acknowledged: it was cut or replaced by an older copy",
                  lp, d->ne, (unsigned long long)st->nchanges);
        }
        if (st->my_seq > myseq && !cut) {
            notes__doc_short_id(sid, st->my_last);
            found(&f, NOTES_EROLLBACK,
                  "this device signed change %s (seq %llu) in this note, "
                  "which '%s' lacks", sid, (unsigned long long)st->my_seq, lp);
        }
    }
    if (d->nbad)
        found(&f, NOTES_ECORRUPT, "%zu change(s) in '%s' refused, first: %s",
              d->nbad, lp, d->first_bad);
    notes__free(path);
}

/* Read records appended since the last read (lock held by the caller).
 * Changes nothing on disk. */
int notes__doc_read_new(notes_doc *d)
{
    int replaced;
    int rc = notes__doc_load_state(d);
    if (rc == NOTES_OK)
        rc = notes__log_reopen(d->log, &replaced);
    return rc ? rc : notes__doc_read_log(d);
}

/* Read the records past d->log->end with the state already loaded. */
int notes__doc_read_log(notes_doc *d)
{
    struct batch b = {0};
    if (d->log->keyed && d->st.present)
        notes__log_set_trusted(d->log, d->st.verified_end, d->st.mac);
    int rc = notes__log_read(d->log, notes__doc_collect_cb, &b);
    b.trusted = d->log->read_trusted;
    if (rc == NOTES_OK)
        rc = notes__doc_batch_ingest(d, &b, 0, notes__doc_count_refusal, &b,
                                     NULL);
    if (b.bad) {
        d->tainted = 1;
        if (!d->nbad)
            snprintf(d->first_bad, sizeof(d->first_bad), "%s", b.first_bad);
        d->nbad += b.bad;
    }
    notes__doc_batch_release(&b);
    if (rc == NOTES_OK)
        notes__doc_assess(d);
    return rc;
}

/*
 * Open and read the log before a write (exclusive lock held): a bad tail
 * is set aside (notes_doc_repaired says where) so that appends follow the
 * intact prefix, and a damaged state file is kept as evidence before it is
 * written again. With !create a missing log is not an error (d->log stays
 * NULL; the caller creates it when it appends).
 */
int notes__doc_prepare_write(notes_doc *d, int create)
{
    (void)notes__replica_local_key(d->r, 1); /* writers make it if missing */
    int rc = notes__doc_ensure_log(d, create);
    d->repaired[0] = 0;
    notes__replica_sweep(d->r);
    if (rc == NOTES_ENOTFOUND && !create) {
        if ((rc = notes__doc_load_state(d)) == NOTES_OK)
            notes__doc_assess(d);
        return rc;
    }
    if (rc || (rc = notes__doc_read_new(d)))
        return rc;
    size_t o = 0;
    if (d->log->damaged) {
        char *aside = NULL, what[200];
        uint64_t at = d->log->end, n = d->log->damaged;
        snprintf(what, sizeof(what), "%s", d->log->damage);
        if ((rc = notes__log_repair(d->log, tail_acked(d), &aside)))
            return rc;
        o += (size_t)snprintf(d->repaired, sizeof(d->repaired),
                              "set aside %llu bytes at offset %llu of '%s' "
                              "(%s) as '%s'", (unsigned long long)n,
                              (unsigned long long)at, d->log->path, what,
                              aside);
        notes__free(aside);
        notes__doc_assess(d);
    }
    if (d->st.damaged) {
        char *path = notes__replica_state_path(d->r, d->id), *aside = NULL;
        uint8_t *bytes = NULL;
        size_t n = 0, base = path ? strlen(path) + 16 : 0;
        char *name = path ? notes__malloc(base) : NULL;
        if (!name) {
            notes__free(path);
            return NOTES_ENOMEM;
        }
        snprintf(name, base, "%s.damaged", path);
        rc = notes__read_file(path, 1u << 20, &bytes, &n);
        if (rc == NOTES_OK)
            rc = notes__write_file_new(name, bytes, n, &aside);
        if (rc == NOTES_OK && o < sizeof(d->repaired))
            snprintf(d->repaired + o, sizeof(d->repaired) - o,
                     "%skept the damaged state file as '%s'; it is written "
                     "again from the log", o ? "; " : "", aside);
        notes__free(bytes);
        notes__free(aside);
        notes__free(name);
        notes__free(path);
        if (rc)
            return rc;
        memset(&d->st, 0, sizeof(d->st)); /* the next save starts anew */
    }
    return NOTES_OK;
}

/*
 * The state that records the log as it is now, to write once the log is
 * durable: the log's end, the heads (acknowledged ones the note still
 * lacks kept first, so they are still asked for), this device's last
 * signed change, and the prefix this device verified.
 */
static int next_state(notes_doc *d, struct notes__state *out)
{
    struct notes__state st = d->st;
    uint8_t(*heads)[32] = NULL;
    uint32_t nh = 0, k = 0;
    const uint8_t *mine;
    int rc = notes__doc_heads_raw(d, &heads, &nh);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < d->st.nheads; i++)
        if (notes__doc_hash_find(d, d->st.heads[i]) == NONE)
            memcpy(st.heads[k++], d->st.heads[i], 32);
    uint32_t missing = k;
    for (uint32_t i = 0; i < nh && k < NOTES__STATE_HEADS; i++)
        memcpy(st.heads[k++], heads[i], 32);
    notes__free(heads);
    st.nheads = k;
    st.heads_total = missing + nh;
    st.nchanges = missing && d->st.nchanges > d->ne ? d->st.nchanges : d->ne;
    st.acked_end = d->log->end;
    if (!d->tainted && d->log->keyed) {
        st.verified_end = d->log->end;
        memcpy(st.mac, d->log->mac, 32);
    }
    uint64_t seq = notes__doc_my_last_change(d, &mine);
    if (seq > st.my_seq) {
        st.my_seq = seq;
        memcpy(st.my_last, mine, 32);
    }
    *out = st;
    return NOTES_OK;
}

/* After a durable write to the log, record it in the state file before
 * success is reported. */
int notes__doc_save_state(notes_doc *d)
{
    struct notes__state st;
    int rc;
    /* The state never claims a record that is not durable: a deferred
     * merge's records are synced first. */
    if ((d->dirty & NOTES__DIRTY_LOG) && (rc = notes__log_sync(d->log)))
        return rc;
    d->dirty &= ~NOTES__DIRTY_LOG;
    if ((rc = next_state(d, &st)))
        return rc;
    char *path = notes__replica_state_path(d->r, d->id);
    if (!path)
        return NOTES_ENOMEM;
    /* On failure the file is as it was (state.c puts the slot back). */
    rc = notes__state_save(path, d->id, &st);
    if (rc == NOTES_OK) {
        d->st = st;
        d->dirty = 0;
        notes__doc_assess(d);
    }
    notes__free(path);
    return rc;
}

void notes__doc_written_later(notes_doc *d)
{
    char *path = notes__replica_state_path(d->r, d->id);
    d->dirty |= NOTES__DIRTY_STATE;
    if (path) /* else the caller's file watcher still tells */
        notes__notify_later(path, d->id);
    notes__free(path);
}

void notes_doc_set_defer(notes_doc *d, unsigned flags)
{
    if (d)
        d->defer = flags & (NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
}

int notes_doc_needs_flush(const notes_doc *d)
{
    return d && d->dirty != 0;
}

int notes_doc_flush(notes_doc *d)
{
    int rc;
    if (!d || !d->r || !d->log || !d->dirty)
        return NOTES_OK;
    if ((rc = notes__doc_lock(d, 1)))
        return rc;
    /* Other handles' newer writes first (when no local edit waits on this
     * one), so that the state claims what they acknowledged as well. */
    rc = d->has_pend ? notes__doc_load_state(d) : notes__doc_prepare_write(d, 0);
    if (rc == NOTES_OK && d->log)
        rc = notes__doc_save_state(d);
    if (rc == NOTES_OK && d->log) {
        /* A live handle flushes every 20 ms while people type; its
         * snapshot (a cache for the next open, a file made and renamed)
         * follows at most every NOTES__SNAP_LIVE_MS, and at free. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        if (!d->defer || !d->snap_live_ms || now - d->snap_live_ms >= NOTES__SNAP_LIVE_MS) {
            notes__doc_snap_save(d, 0);
            d->snap_live_ms = now ? now : 1;
            d->snap_owed = 0;
        } else {
            d->snap_owed = 1;
        }
    }
    notes__doc_unlock(d);
    return rc;
}
const uint8_t *notes_doc_id(const notes_doc *d)
{
    return d->id;
}

const char *notes_doc_damage(const notes_doc *d)
{
    return d->damage[0] ? d->damage : NULL;
}

int notes_doc_intact(const notes_doc *d)
{
    return d->problem;
}

const char *notes_doc_repaired(const notes_doc *d)
{
    return d->repaired[0] ? d->repaired : NULL;
}

/*
 * notes_doc_flush_many: what notes_doc_flush does for each doc, with two
 * syncs in all instead of up to five per doc (docs/design.md, "A first
 * sync of many notes"). Under the exclusive lock:
 *   1. each doc's next state is computed; a new state file is written
 *      whole under a temporary name, unsynced;
 *   2. one syncfs(2): every log record, every log created unsynced (its
 *      name too) and every staged state file is durable;
 *   3. the staged files are renamed into place; states already present
 *      get their next slot written in place, unsynced;
 *   4. one more sync: the directory (renames only) or syncfs (slots).
 * A state file is never in place before the log it claims is durable, and
 * never in place with bytes that are not (the rule of "Durability on the
 * live path"). On error the docs not yet done stay dirty; a staged file
 * not yet renamed is removed.
 */
int notes_doc_flush_many(notes_doc *const *docs, size_t n)
{
    notes_replica *r = NULL;
    size_t k = 0;
    int rc = NOTES_OK, slots = 0;
    for (size_t i = 0; i < n; i++) {
        if (!docs[i] || !docs[i]->r || !docs[i]->log || !docs[i]->dirty)
            continue;
        if (r && docs[i]->r != r) {
            notes__set_detail("%s", "notes_doc_flush_many: docs of two replicas");
            return NOTES_EINVAL;
        }
        r = docs[i]->r;
        k++;
    }
    if (!k)
        return NOTES_OK;
    if (k == 1) /* nothing to share */
        for (size_t i = 0; i < n; i++)
            if (docs[i] && docs[i]->r && docs[i]->log && docs[i]->dirty)
                return notes_doc_flush(docs[i]);
    struct pending {
        notes_doc *d;
        struct notes__state st;
        char *path, *tmp;
    } *p = notes__calloc(k, sizeof(*p));
    if (!p)
        return NOTES_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n && m < k; i++)
        if (docs[i] && docs[i]->r && docs[i]->log && docs[i]->dirty)
            p[m++].d = docs[i];
    notes_doc *first = p[0].d;
    if ((rc = notes__doc_lock(first, 1))) {
        notes__free(p);
        return rc;
    }
    for (size_t i = 0; i < m && rc == NOTES_OK; i++) {
        notes_doc *d = p[i].d;
        /* Other handles' newer writes first, as notes_doc_flush. */
        rc = d->has_pend ? notes__doc_load_state(d) : notes__doc_prepare_write(d, 0);
        if (rc == NOTES_OK && !d->log)
            continue;
        if (rc == NOTES_OK)
            rc = next_state(d, &p[i].st);
        if (rc == NOTES_OK && !(p[i].path = notes__replica_state_path(d->r, d->id)))
            rc = NOTES_ENOMEM;
        if (rc == NOTES_OK && !p[i].st.present)
            rc = notes__state_stage(p[i].path, d->id, &p[i].st, &p[i].tmp);
        else if (rc == NOTES_OK)
            slots = 1;
    }
    char *dir = notes__replica_state_path(first->r, first->id);
    if (rc == NOTES_OK && !dir)
        rc = NOTES_ENOMEM;
    if (dir)
        *strrchr(dir, '/') = 0;
    if (rc == NOTES_OK)
        rc = notes__syncfs(dir);
    for (size_t i = 0; i < m && rc == NOTES_OK; i++) {
        notes_doc *d = p[i].d;
        if (!p[i].path)
            continue;
        notes__log_synced(d->log);
        d->dirty &= ~NOTES__DIRTY_LOG;
        if (p[i].tmp) {
            rc = notes__state_place(p[i].tmp, p[i].path, d->id);
            notes__free(p[i].tmp);
            p[i].tmp = NULL;
        } else {
            rc = notes__state_save_unsynced(p[i].path, d->id, &p[i].st);
        }
    }
    if (rc == NOTES_OK)
        rc = slots ? notes__syncfs(dir) : notes__fsync_dir(dir);
    for (size_t i = 0; i < m; i++) {
        notes_doc *d = p[i].d;
        if (rc == NOTES_OK && p[i].path) {
            d->st = p[i].st;
            d->dirty = 0;
            notes__doc_assess(d);
        }
        if (p[i].tmp)
            (void)unlink(p[i].tmp);
        notes__free(p[i].tmp);
        notes__free(p[i].path);
    }
    notes__doc_unlock(first);
    notes__free(dir);
    notes__free(p);
    return rc;
}
