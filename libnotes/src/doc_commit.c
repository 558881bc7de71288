/*
 * doc_commit.c: heads, commit, refresh and compaction: turning the pending
 * edits into a signed change written to the log, reading what others
 * wrote, and rewriting the log compactly.
 */
#include <stdlib.h>

#include <sys/stat.h>

#include "doc_internal.h"

#define NOTES__AUTO_COMPACT 256 /* records before a commit compacts the log */

int notes__cmp_id32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

int notes__doc_heads_raw(const notes_doc *d, uint8_t (**out)[32], uint32_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < d->ne; i++)
        k += d->e[i].applied && !d->e[i].parent;
    uint8_t(*h)[32] = notes__malloc((k ? k : 1) * 32);
    if (!h)
        return NOTES_ENOMEM;
    k = 0;
    for (size_t i = 0; i < d->ne; i++)
        if (d->e[i].applied && !d->e[i].parent)
            memcpy(h[k++], d->e[i].c->id, 32);
    qsort(h, k, 32, notes__cmp_id32);
    *out = h;
    *n = (uint32_t)k;
    return NOTES_OK;
}

int notes_doc_heads(notes_doc *d, uint8_t (**heads)[32], size_t *n)
{
    if (d->lazy)
        return notes__snap_heads(d, heads, n);
    uint32_t k;
    int rc = notes__doc_heads_raw(d, heads, &k);
    *n = rc ? 0 : k;
    return rc;
}

int notes__doc_ensure_log(notes_doc *d, int create)
{
    if (d->log)
        return NOTES_OK;
    char *path = notes__replica_log_path(d->r, d->id);
    if (!path)
        return NOTES_ENOMEM;
    /* A deferred merge creates the log unsynced too: the flush syncs it
     * (a commit's synced write syncs its name first). */
    int rc = notes__log_open(path, d->id,
                             create && (d->defer & NOTES_DEFER_MERGE) ? 2 : create,
                             &d->log);
    notes__free(path);
    const uint8_t *key =
        rc == NOTES_OK ? notes__replica_local_key(d->r, create) : NULL;
    if (key)
        notes__log_use_key(d->log, key);
    return rc;
}

/* Bookkeeping for a committed change whose events are already applied. */
static int finish_local_entry(notes_doc *d, uint32_t idx)
{
    struct entry *en = &d->e[idx];
    const struct notes__change *c = en->c;
    int rc;
    if (c->ntext_events) {
        en->ver = notes__malloc(sizeof(*en->ver));
        if (!en->ver)
            return NOTES_ENOMEM;
        en->ver[0] = d->pend_last;
        en->nver = 1;
        en->first_lv = d->pend_first;
        en->nev = (uint32_t)c->ntext_events;
    } else if ((rc = notes__doc_version_of(d, (const uint8_t(*)[32])c->deps,
                                           c->ndeps, &en->ver, &en->nver))) {
        return rc;
    }
    en->applied = 1;
    notes__doc_mark_parents(d, c);
    /* The name this change claims (apply_entry does this for others). */
    for (uint32_t i = 0; i < c->nops; i++) {
        struct author *a = &d->a[en->author];
        if (c->ops[i].kind != NOTES__K_NAME || !notes__doc_name_wins(a, c))
            continue;
        char *nm = notes__strndup((const char *)c->ops[i].text,
                                  c->ops[i].textlen);
        if (!nm)
            return NOTES_ENOMEM;
        notes__free(a->name);
        a->name = nm;
        a->name_seq = c->seq;
        a->name_id = c->id;
    }
    for (size_t i = 0; i < d->nf; i++)
        for (size_t j = 0; j < d->f[i].nw; j++)
            if (d->f[i].w[j].entry == NONE)
                d->f[i].w[j].entry = idx;
    return notes__doc_note_people(d, idx);
}

void notes__doc_clear_pending(notes_doc *d)
{
    notes__builder_reset(&d->pend); /* its buffers serve the next change */
    d->pend_text.len = 0;
    d->pend_kind = 0;
    d->has_pend = 0;
}

int notes_doc_commit(notes_doc *d, uint8_t id_out[32])
{
    NOTES__DOC_FULL_RC(d);
    struct notes__change *c = NULL;
    uint8_t prev[32] = {0};
    uint32_t idx;
    int rc, replay;

    if (id_out)
        memset(id_out, 0, 32);
    if (!d->has_pend)
        return NOTES_OK;
    if (!notes__doc_signer(d)) {
        notes__set_detail("the identity is locked: a passphrase is needed "
                          "to sign");
        return NOTES_ENEEDPASS;
    }
    if ((rc = notes__doc_flush_pending_op(d)))
        return rc;
    if (d->pend.nops == 0) {
        notes__doc_clear_pending(d);
        return NOTES_OK;
    }
    if ((rc = notes__doc_lock(d, 1)))
        return rc;
    replay = 0;
    if (d->r) {
        if ((rc = notes__doc_ensure_log(d, 1)))
            goto out;
        /*
         * If other processes appended meanwhile, our pending events
         * (already in the text with provisional ids) are taken out first:
         * their changes may be ours too (same identity, same seq). The new
         * change is then applied like any other, after theirs.
         */
        replay = notes__log_has_more(d->log);
        if (replay && (rc = notes__doc_rebuild(d)))
            goto out;
        unsigned rebuilds = d->rebuilds;
        if ((rc = notes__doc_prepare_write(d, 1)))
            goto out;
        if (d->rebuilds != rebuilds)
            replay = 1; /* a fork among the new changes rebuilt the state */
        if (d->problem == NOTES_EROLLBACK) {
            /* Signing now could reuse a sequence number this device
             * already signed (in a change the log lost): equivocation. */
            notes__set_detail("%s; nothing was signed", d->damage);
            rc = NOTES_EROLLBACK;
            goto undo;
        }
    }
    uint64_t seq = notes__doc_author_last_seq(d, notes__doc_my_pk(d)) + 1;
    if (d->r && d->st.present && d->st.my_seq >= seq) {
        char sid[17];
        notes__doc_short_id(sid, d->st.my_last);
        notes__set_detail("this device already signed seq %llu (change %s) "
                          "in this note, which the log lacks; nothing was "
                          "signed", (unsigned long long)d->st.my_seq, sid);
        rc = NOTES_EROLLBACK;
        goto undo;
    }
    if (seq > 1) {
        uint32_t ai;
        if ((rc = notes__doc_author_index(d, notes__doc_my_pk(d), &ai)))
            goto out;
        memcpy(prev, d->e[notes__doc_slot_winner(d, ai, seq - 1)].c->id, 32);
    }
    if (seq != d->pend_seq && !replay) {
        if ((rc = notes__doc_rebuild(d)))
            goto out;
        replay = 1;
    }
    uint32_t rev;
    if ((rc = notes__doc_revoked_before(
             d, notes__doc_my_pk(d), (const uint8_t(*)[32])d->pend_deps,
             d->npend_deps, seq > 1 ? prev : NULL, &rev)))
        goto out;
    if (rev != NONE) {
        notes__set_detail("this device was revoked by its person in this "
                          "note: its changes are refused (link this replica "
                          "to a new device key)");
        rc = NOTES_EREVOKED;
        goto out;
    }
    rc = notes__builder_finish(&d->pend, d->id, notes__doc_signer(d), seq, prev,
                               (const uint8_t(*)[32])d->pend_deps,
                               d->npend_deps, notes__doc_now_ms(), 1, &c);
    if (rc)
        goto out;
    size_t before = d->ne;
    if ((rc = notes__doc_add_entry(d, c, &idx))) {
        notes__change_free(c);
        goto out;
    }
    rc = replay ? notes__doc_apply_entry(d, idx) : finish_local_entry(d, idx);
    if (rc == NOTES_OK && d->r) {
        const uint8_t *bytes = c->bytes;
        size_t len = c->nbytes;
        struct notes__log_mark mark;
        notes__log_mark(d->log, &mark);
        /* A change signed here is durable before anyone hears of it, even
         * when the state is deferred: a crash must not make this device
         * sign another change with the same seq (equivocation). */
        rc = notes__log_append(d->log, &bytes, &len, 1, 3);
        if (rc == NOTES_OK)
            d->dirty &= ~NOTES__DIRTY_LOG; /* the sync covered every record */
        /* Acknowledged only once the state says so; else taken back (no
         * other process can have read it: we hold the lock). Deferred:
         * the state follows in notes_doc_flush, the log is whole already. */
        if (rc == NOTES_OK && (d->defer & NOTES_DEFER_STATE))
            notes__doc_written_later(d);
        else if (rc == NOTES_OK && (rc = notes__doc_save_state(d)) &&
                 notes__log_undo(d->log, &mark) != NOTES_OK)
            rc = NOTES_EIO;
    }
    if (rc) {
        int rc2 = notes__doc_truncate_entries(d, before);
        (void)rc2;
        notes__doc_clear_pending(d);
        if (d->r)
            notes__log_discard_if_empty(&d->log);
        goto out;
    }
    if (id_out)
        memcpy(id_out, c->id, 32);
    notes__doc_clear_pending(d);
    /* Many small records: fold them into a pack while we hold the lock.
     * Best effort: the log is complete whether or not this succeeds. */
    if (d->r && d->log->nrecords > NOTES__AUTO_COMPACT && !d->tainted &&
        !d->problem && notes_doc_compact(d, 15) != NOTES_OK)
        notes__set_detail("%s", "");
    if (d->r)
        notes__doc_snap_save(d, 0);
    goto out;
undo:
    /* Refused before signing: the pending edits are dropped, as after a
     * failed append, and the state is the log's. */
    notes__doc_clear_pending(d);
    if (!replay) {
        int rc2 = notes__doc_rebuild(d); /* takes the provisional events out */
        (void)rc2;
    }
    notes__log_discard_if_empty(&d->log);
out:
    notes__doc_unlock(d);
    return rc;
}

/*
 * Whether the log holds nothing this handle has not read or written: the
 * same file (a compaction elsewhere renames a new one over it) ending where
 * our last read or append ended. Then a refresh has nothing to read; the
 * state file is left for the next read, which loads it with the records
 * it acknowledges (a state newer than the log only moves the acknowledged
 * end over records we hold). Without the lock: a record another process
 * is appending makes the file longer, never equal.
 */
static int log_unchanged(const notes_doc *d)
{
    const struct notes__log *lg = d->log;
    struct stat a, b;
    return lg && !lg->damaged && !lg->bad_header && stat(lg->path, &a) == 0 &&
           fstat(lg->fd, &b) == 0 && a.st_ino == b.st_ino &&
           a.st_dev == b.st_dev && (uint64_t)b.st_size == lg->end;
}

int notes_doc_refresh(notes_doc *d)
{
    NOTES__DOC_FULL_RC(d);
    int rc;
    if (d->has_pend) {
        notes__set_detail("commit local edits before refreshing");
        return NOTES_EINVAL;
    }
    if (!d->r)
        return NOTES_OK;
    /* The live path: a handle shared by the page and sync (or told of its
     * own write by the file watcher) wrote what there is. */
    if (log_unchanged(d))
        return NOTES_OK;
    if ((rc = notes__replica_lock(d->r, 0)))
        return rc;
    rc = notes__doc_ensure_log(d, 0);
    if (rc == NOTES_ENOTFOUND)
        rc = NOTES_OK; /* not stored yet: nothing new */
    else if (rc == NOTES_OK)
        rc = notes__doc_read_new(d);
    notes__replica_unlock(d->r);
    return rc;
}

int notes_doc_discard(notes_doc *d)
{
    if (!d->has_pend)
        return NOTES_OK;
    notes__doc_clear_pending(d);
    return notes__doc_rebuild(d); /* takes the provisional events out */
}

/* ---- compaction ---- */

int notes_doc_compact(notes_doc *d, int level)
{
    NOTES__DOC_FULL_RC(d);
    struct notes_buf pack;
    int rc;
    if (!d->r)
        return NOTES_OK;
    if (d->has_pend) {
        notes__set_detail("commit local edits before compacting");
        return NOTES_EINVAL;
    }
    if (level < 1 || level > 22)
        level = 19;
    if ((rc = notes__replica_lock(d->r, 1)))
        return rc;
    rc = notes__doc_prepare_write(d, 0);
    if (rc == NOTES_OK && !d->log) {
        if (d->problem) {
            notes__set_detail("%s; not compacting", d->damage);
            rc = d->problem;
        }
        notes__replica_unlock(d->r);
        return rc; /* nothing stored */
    }
    if (rc == NOTES_OK && d->problem) {
        /* Refused changes are evidence that a rewrite would drop; a log
         * that lacks acknowledged changes is not made to look whole. */
        notes__set_detail("%s; not compacting", d->damage);
        rc = d->problem;
    }
    notes__buf_init(&pack, NOTES__REC_RAW_MAX);
    if (rc == NOTES_OK) {
        struct notes__change **all =
            notes__malloc((d->ne + 1) * sizeof(struct notes__change *));
        if (!all) {
            rc = NOTES_ENOMEM;
        } else {
            for (size_t i = 0; i < d->ne; i++)
                all[i] = d->e[i].c;
            rc = notes__pack_encode(d->id, all, d->ne, 0, &pack);
            notes__free(all);
        }
    }
    int same = 0;
    if (rc == NOTES_OK)
        rc = notes__log_rewrite(d->log, NOTES__REC_PACK, pack.data, pack.len,
                                level, &same);
    if (rc == NOTES_OK && (!same || d->repaired[0]))
        rc = notes__doc_save_state(d);
    if (rc == NOTES_OK)
        notes__doc_snap_save(d, 1);
    notes__buf_release(&pack);
    notes__replica_unlock(d->r);
    return rc;
}
