/*
 * doc_open.c: a doc's life: creating one (on disk or in memory), opening
 * it from the log, closing it, and reading its text.
 */
#include <pthread.h>

#include "doc_internal.h"

int notes__doc_alloc(notes_replica *r, const uint8_t id[16], notes_doc **out)
{
    notes_doc *d = notes__calloc(1, sizeof(*d));
    *out = NULL;
    if (!d)
        return NOTES_ENOMEM;
    d->r = r;
    memcpy(d->id, id, 16);
    notes__builder_init(&d->pend);
    notes__buf_init(&d->pend_text, NOTES__CHANGE_MAX);
    int rc = notes__oplog_new(&d->op);
    if (rc) {
        notes_doc_free(d);
        return rc;
    }
    *out = d;
    return NOTES_OK;
}

int notes_doc_create(notes_replica *r, notes_doc **out)
{
    uint8_t id[16];
    notes__random(id, sizeof(id));
    return notes__doc_alloc(r, id, out);
}

const char *notes_doc_author_name(const notes_doc *d, const uint8_t pk[32])
{
    NOTES__DOC_FULL(d, NULL);
    for (size_t i = 0; i < d->na; i++)
        if (memcmp(d->a[i].pk, pk, 32) == 0)
            return d->a[i].name;
    return NULL;
}

int notes_doc_create_id(notes_replica *r, const uint8_t id[16], notes_doc **out)
{
    return notes__doc_alloc(r, id, out);
}

int notes_doc_memory(const notes_identity *signer_id, const uint8_t id[16],
                     notes_doc **out)
{
    uint8_t fresh[16];
    if (!id) {
        notes__random(fresh, sizeof(fresh));
        id = fresh;
    }
    int rc = notes__doc_alloc(NULL, id, out);
    if (rc == NOTES_OK)
        (*out)->mem_id = signer_id;
    return rc;
}

/*
 * Handles opened through notes_doc_open_shared: one per (replica object,
 * note), alive while someone holds it. The lock guards the list only; a
 * shared handle itself is used by one thread at a time (notes.h).
 */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
/* a struct, not a bare pointer: its size is what the array holds */
static struct shared_slot {
    notes_doc *d;
} *shared;
static size_t nshared, capshared;

static notes_doc *shared_find(notes_replica *r, const uint8_t id[16])
{
    for (size_t i = 0; i < nshared; i++)
        if (shared[i].d->r == r && memcmp(shared[i].d->id, id, 16) == 0)
            return shared[i].d;
    return NULL;
}

/* 1 if d was a shared handle someone else still holds (d stays). */
static int shared_release(notes_doc *d)
{
    int kept = 0;
    pthread_mutex_lock(&shared_lock);
    if (d->shares > 1) {
        d->shares--;
        kept = 1;
    } else {
        for (size_t i = 0; i < nshared; i++)
            if (shared[i].d == d) {
                shared[i] = shared[--nshared];
                break;
            }
        if (!nshared) {
            notes__free(shared);
            shared = NULL;
            capshared = 0;
        }
    }
    pthread_mutex_unlock(&shared_lock);
    return kept;
}

void notes_doc_free(notes_doc *d)
{
    if (!d)
        return;
    if (d->shares && shared_release(d))
        return;
    if (d->dirty) {
        /* Best effort: if it fails the state lags the log, which a reader
         * takes as an unacknowledged tail (a deferred merge's records may
         * then be lost to a crash of the machine: peers still have them). */
        int rc = notes_doc_flush(d);
        (void)rc;
    }
    if (d->snap_owed && d->log && notes__doc_lock(d, 1) == NOTES_OK) {
        notes__doc_snap_save(d, 0); /* the one a live flush put off */
        notes__doc_unlock(d);
    }
    for (size_t i = 0; i < d->ne; i++) {
        notes__change_free(d->e[i].c);
        notes__free(d->e[i].ver);
    }
    notes__free(d->e);
    notes__free(d->hash);
    notes__free(d->lvx);
    for (size_t i = 0; i < d->na; i++) {
        notes__free(d->a[i].slot_first);
        notes__free(d->a[i].slot_count);
        notes__free(d->a[i].name);
    }
    notes__free(d->a);
    notes__doc_fields_clear(d);
    notes__doc_people_clear(d);
    notes__oplog_free(d->op);
    notes__log_close(d->log);
    notes__builder_release(&d->pend);
    notes__buf_release(&d->pend_text);
    notes__free(d->pend_deps);
    notes__doc_snap_free(d->snap);
    notes__free(d);
}

static int open_doc(notes_replica *r, const uint8_t id[16], int use_snap,
                    notes_doc **out)
{
    notes_doc *d;
    int rc;

    *out = NULL;
    if ((rc = notes__doc_alloc(r, id, &d)))
        return rc;
    if ((rc = notes__replica_lock(r, 0)))
        goto fail;
    rc = notes__doc_ensure_log(d, 0);
    if (rc == NOTES_OK && use_snap && notes__doc_snap_try(d)) {
        /* Lazy: the rest is built when first asked for. */
    } else if (rc == NOTES_OK) {
        /* Replayed. A missing or stale snapshot is written by the next
         * write (commit, merge, compaction): reading never writes. */
        rc = notes__doc_read_new(d);
    } else if (rc == NOTES_ENOTFOUND &&
               (rc = notes__doc_load_state(d)) == NOTES_OK) {
        /* No log: a note is there only if this replica stored some of it
         * (then the loss is reported), else it never was. */
        int stored = d->st.present && (d->st.nchanges || d->st.acked_end);
        if (stored || d->st.damaged) {
            notes__doc_assess(d);
        } else {
            notes__set_detail("no note %02x%02x%02x%02x... in this replica",
                              id[0], id[1], id[2], id[3]);
            rc = NOTES_ENOTFOUND;
        }
    }
    notes__replica_unlock(r);
    if (rc)
        goto fail;
    *out = d;
    return NOTES_OK;
fail:
    notes_doc_free(d);
    return rc;
}

int notes_doc_open(notes_replica *r, const uint8_t id[16], notes_doc **out)
{
    return open_doc(r, id, 1, out);
}

int notes_doc_open_history(notes_replica *r, const uint8_t id[16],
                           notes_doc **out)
{
    return open_doc(r, id, 0, out);
}

int notes_doc_open_shared(notes_replica *r, const uint8_t id[16], int history,
                          notes_doc **out)
{
    notes_doc *d, *other;
    int rc;
    if (!r || !id || !out)
        return NOTES_EINVAL;
    *out = NULL;
    pthread_mutex_lock(&shared_lock);
    if ((d = shared_find(r, id)))
        d->shares++;
    pthread_mutex_unlock(&shared_lock);
    if (d) {
        *out = d;
        return NOTES_OK;
    }
    if ((rc = open_doc(r, id, !history, &d)))
        return rc;
    pthread_mutex_lock(&shared_lock);
    if ((other = shared_find(r, id))) {
        /* Opened meanwhile by another thread: that one is the handle. */
        other->shares++;
    } else if (notes__grow(&shared, &capshared, nshared + 1, sizeof(*shared),
                           8) == NOTES_OK) {
        d->shares = 1;
        shared[nshared++].d = d;
    }
    pthread_mutex_unlock(&shared_lock);
    if (other) {
        notes_doc_free(d);
        d = other;
    }
    /* Out of memory for the list: a handle of its own, as notes_doc_open. */
    *out = d;
    return NOTES_OK;
}

const char *notes_doc_text(notes_doc *d, size_t *nbytes)
{
    size_t nb, ncp;
    if (d->lazy)
        return notes__snap_text(d, nbytes, NULL);
    const char *t = notes__oplog_text(d->op, &nb, &ncp);
    if (nbytes)
        *nbytes = nb;
    return t;
}

size_t notes_doc_length(notes_doc *d)
{
    if (d->lazy) {
        size_t ncp;
        (void)notes__snap_text(d, NULL, &ncp);
        return ncp;
    }
    if (!d->len_ok) {
        size_t nb;
        (void)notes__oplog_text(d->op, &nb, &d->len);
        d->len_ok = 1;
    }
    return d->len;
}

int notes_doc_dirty(const notes_doc *d)
{
    return d->has_pend;
}
