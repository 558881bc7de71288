/*
 * doc_edit.c: local edits: the pending change (text splices, field writes,
 * certificates the note lacks) until it is committed.
 */
#include "doc_internal.h"

/*
 * Add to the pending change the replica's certificates the note lacks, so
 * the note carries what attributes this device's changes to its person.
 * A link of this device that arrived from a peer is adopted first (the
 * device learns whom it was linked to by syncing with its person's device).
 */
static int pending_certs(notes_doc *d, size_t *added)
{
    const struct notes__cert *c;
    size_t n;
    int rc;
    if (added)
        *added = 0;
    if (!d->r)
        return NOTES_OK;
    const struct dev *me = notes__doc_dev_find(d, d->r->pk);
    if ((rc = notes__replica_certs(d->r, &c, &n)))
        return rc;
    if (me && me->has_person && me->link) {
        /* Adopt only what is new: this runs at every burst of typing, and
         * adding takes the replica lock. */
        size_t k;
        for (k = 0; k < n && !(c[k].n == me->linklen &&
                               memcmp(c[k].bytes, me->link, me->linklen) == 0);
             k++)
            ;
        if (k == n &&
            ((rc = notes__replica_add_cert(d->r, NOTES__K_LINK, me->link,
                                           me->linklen)) ||
             (rc = notes__replica_certs(d->r, &c, &n))))
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (notes__doc_has_cert(d, c[i].bytes, c[i].n))
            continue;
        if ((rc = notes__builder_blob(&d->pend, c[i].kind, NULL, 0,
                                      c[i].bytes, c[i].n)))
            return rc;
        if (added)
            (*added)++;
    }
    return NOTES_OK;
}

int notes__doc_begin_pending(notes_doc *d)
{
    if (d->has_pend)
        return NOTES_OK;
    uint8_t(*deps)[32];
    uint32_t nd;
    int rc = notes__doc_heads_raw(d, &deps, &nd);
    if (rc)
        return rc;
    if (nd > NOTES__MAX_DEPS) {
        notes__free(deps);
        notes__set_detail("too many concurrent heads (%u)", nd);
        return NOTES_ETOOBIG;
    }
    notes__free(d->pend_deps);
    d->pend_deps = deps;
    d->npend_deps = nd;
    d->pend_seq = notes__doc_author_last_seq(d, notes__doc_my_pk(d)) + 1;
    d->pend_kind = 0;
    d->has_pend = 1;
    /* An author's first change in a note says who they claim to be. */
    if (d->pend_seq == 1 &&
        (rc = notes__builder_name(&d->pend, notes__doc_my_name(d)))) {
        notes__doc_clear_pending(d);
        return rc;
    }
    if ((rc = pending_certs(d, NULL))) {
        notes__doc_clear_pending(d);
        return rc;
    }
    return NOTES_OK;
}

/* Move the coalescing op into the builder. */
int notes__doc_flush_pending_op(notes_doc *d)
{
    int rc = NOTES_OK;
    switch (d->pend_kind) {
    case NOTES__K_INS:
        rc = notes__builder_ins(&d->pend, d->pend_pos, d->pend_text.data,
                                d->pend_text.len, d->pend_count);
        break;
    case NOTES__K_DEL:
    case NOTES__K_DELBACK:
        rc = notes__builder_del(&d->pend, d->pend_kind, d->pend_pos,
                                d->pend_count);
        break;
    }
    if (rc == NOTES_OK) {
        d->pend_kind = 0;
        d->pend_text.len = 0;
    }
    return rc;
}

static int local_agent(notes_doc *d, uint32_t *agent)
{
    uint32_t ai;
    int rc = notes__doc_author_index(d, notes__doc_my_pk(d), &ai);
    return rc ? rc : notes__doc_author_agent(d, ai, agent);
}

uint64_t notes__doc_pend_events(const notes_doc *d)
{
    uint64_t n = d->pend.nevents;
    if (d->pend_kind)
        n += d->pend_count;
    return n;
}

static void note_pending_lvs(notes_doc *d, notes_lv first, uint32_t count)
{
    if (notes__doc_pend_events(d) == 0)
        d->pend_first = first;
    d->pend_last = first + count - 1;
}

int notes_doc_splice(notes_doc *d, size_t pos, size_t del, const char *text,
                     size_t n)
{
    size_t len;
    uint32_t agent, ncp = 0;
    notes_lv first;
    const notes_lv *fr;
    size_t nfr;
    int rc;

    len = notes_doc_length(d);
    if (pos > len || del > len - pos) {
        notes__set_detail("edit at %zu deleting %zu is outside the text (%zu "
                          "characters)", pos, del, len);
        return NOTES_EBADOP;
    }
    if (n && !notes__utf8_valid((const uint8_t *)text, n)) {
        notes__set_detail("inserted text is not valid UTF-8");
        return NOTES_EINVAL;
    }
    if (n)
        ncp = (uint32_t)notes__utf8_count((const uint8_t *)text, n);
    if (!del && !n)
        return NOTES_OK;
    if (n > NOTES__CHANGE_MAX / 2 || pos > UINT32_MAX || del > UINT32_MAX)
        return NOTES_ETOOBIG;
    if ((rc = notes__doc_begin_pending(d)) || (rc = local_agent(d, &agent)))
        return rc;
    if (del) {
        fr = notes__oplog_frontier(d->op, &nfr);
        rc = notes__oplog_add(
            d->op, agent, (d->pend_seq << 32) | notes__doc_pend_events(d), fr,
            nfr, NOTES__OP_DEL, (uint32_t)pos, NULL, 0, (uint32_t)del, &first);
        if (rc)
            return rc;
        note_pending_lvs(d, first, (uint32_t)del);
        d->len -= del;
        if (d->pend_kind == NOTES__K_DEL && pos == d->pend_pos) {
            d->pend_count += (uint32_t)del;
        } else if (del == 1 &&
                   ((d->pend_kind == NOTES__K_DELBACK &&
                     pos + d->pend_count == d->pend_pos) ||
                    (d->pend_kind == NOTES__K_DEL && d->pend_count == 1 &&
                     pos + 1 == d->pend_pos))) {
            d->pend_kind = NOTES__K_DELBACK;
            d->pend_count++;
        } else {
            if ((rc = notes__doc_flush_pending_op(d)))
                return rc;
            d->pend_kind = NOTES__K_DEL;
            d->pend_pos = (uint32_t)pos;
            d->pend_count = (uint32_t)del;
        }
    }
    if (n) {
        fr = notes__oplog_frontier(d->op, &nfr);
        rc = notes__oplog_add(
            d->op, agent, (d->pend_seq << 32) | notes__doc_pend_events(d), fr,
            nfr, NOTES__OP_INS, (uint32_t)pos, text, n, 0, &first);
        if (rc)
            return rc;
        note_pending_lvs(d, first, ncp);
        d->len += ncp;
        if (!(d->pend_kind == NOTES__K_INS &&
              pos == (size_t)d->pend_pos + d->pend_count)) {
            if ((rc = notes__doc_flush_pending_op(d)))
                return rc;
            d->pend_kind = NOTES__K_INS;
            d->pend_pos = (uint32_t)pos;
            d->pend_count = 0;
        }
        if ((rc = notes__buf_put(&d->pend_text, text, n)))
            return rc;
        d->pend_count += ncp;
    }
    return NOTES_OK;
}

static int local_kv(notes_doc *d, int kind, const char *key, const char *value)
{
    int rc;
    size_t klen = key ? strlen(key) : 0;
    if (!klen || klen > NOTES__KEY_MAX ||
        !notes__utf8_valid((const uint8_t *)key, klen) ||
        (kind != NOTES__K_UNSET &&
         (!value || strlen(value) > NOTES__VALUE_MAX ||
          !notes__utf8_valid((const uint8_t *)value, strlen(value))))) {
        notes__set_detail("field name or value is empty, too long or not UTF-8");
        return NOTES_EINVAL;
    }
    if ((rc = notes__doc_begin_pending(d)) ||
        (rc = notes__doc_flush_pending_op(d)))
        return rc;
    uint32_t opidx = d->pend.nops;
    if ((rc = notes__builder_kv(&d->pend, kind, key, value)))
        return rc;
    return notes__doc_field_write(d, NONE, opidx, kind, (const uint8_t *)key,
                                  klen, (const uint8_t *)value,
                                  value ? strlen(value) : 0);
}

int notes_doc_set_field(notes_doc *d, const char *key, const char *value)
{
    return local_kv(d, NOTES__K_SET, key, value);
}

int notes_doc_unset_field(notes_doc *d, const char *key)
{
    return local_kv(d, NOTES__K_UNSET, key, NULL);
}

int notes_doc_list_add(notes_doc *d, const char *key, const char *value)
{
    return local_kv(d, NOTES__K_ADD, key, value);
}

int notes_doc_list_remove(notes_doc *d, const char *key, const char *value)
{
    return local_kv(d, NOTES__K_REMOVE, key, value);
}
