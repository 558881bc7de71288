/*
 * doc_edit.c: local edits: the pending change (text splices, field writes,
 * certificates the note lacks) until it is committed.
 */
#include <stdio.h>
#include <stdlib.h>

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

/*
 * Start the pending change on version `deps` (nd ids, sorted, none an
 * ancestor of another; taken over, freed here on error): the current heads
 * for local editing, an older version for notes_doc_commit_at.
 */
static int begin_pending_on(notes_doc *d, uint8_t (*deps)[32], uint32_t nd)
{
    int rc;
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

int notes__doc_begin_pending(notes_doc *d)
{
    if (d->has_pend)
        return NOTES_OK;
    uint8_t(*deps)[32];
    uint32_t nd;
    int rc = notes__doc_heads_raw(d, &deps, &nd);
    return rc ? rc : begin_pending_on(d, deps, nd);
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

/* The splice path runs at every keystroke: its small steps are inlined
 * into it (one call per splice into the oplog, not six). */
#if defined(__GNUC__)
#define HOT_INLINE static inline __attribute__((always_inline))
#else
#define HOT_INLINE static inline
#endif

static int local_agent_slow(notes_doc *d, uint32_t *agent)
{
    uint32_t ai;
    int rc = notes__doc_author_index(d, notes__doc_my_pk(d), &ai);
    if (rc || (rc = notes__doc_author_agent(d, ai, agent)))
        return rc;
    d->my_agent = *agent;
    d->my_agent_op = d->op;
    d->my_agent_gen = d->rebuilds + 1;
    return NOTES_OK;
}

/* Asked at every keystroke: found once per oplog (a rebuild makes a new
 * one, whose agents are numbered afresh). */
HOT_INLINE int local_agent(notes_doc *d, uint32_t *agent)
{
    if (d->my_agent_gen == d->rebuilds + 1 && d->my_agent_op == d->op) {
        *agent = d->my_agent;
        return NOTES_OK;
    }
    return local_agent_slow(d, agent);
}

HOT_INLINE uint64_t pend_events(const notes_doc *d)
{
    uint64_t n = d->pend.nevents;
    if (d->pend_kind)
        n += d->pend_count;
    return n;
}

uint64_t notes__doc_pend_events(const notes_doc *d)
{
    return pend_events(d);
}

HOT_INLINE void note_pending_lvs(notes_doc *d, notes_lv first, uint32_t count)
{
    if (pend_events(d) == 0)
        d->pend_first = first;
    d->pend_last = first + count - 1;
}

/*
 * Add one op of `count` events (a delete of count code points at pos, or the
 * insert of text's count code points) to the oplog on version par (NULL:
 * the current frontier), numbered after the pending change's events, and
 * note them as pending. OUT *first: its first event.
 */
HOT_INLINE int add_op(notes_doc *d, uint32_t agent, const notes_lv *par,
                  size_t npar, int kind, size_t pos, const char *text,
                  size_t n, uint32_t count, notes_lv *first)
{
    uint64_t seq = (d->pend_seq << 32) | pend_events(d);
    int rc = par ? notes__oplog_add(d->op, agent, seq, par, npar, kind,
                                    (uint32_t)pos, text, n,
                                    kind == NOTES__OP_DEL ? count : 0, first)
                 : notes__oplog_add_local(d->op, agent, seq, kind,
                                          (uint32_t)pos, text, n, count, first);
    if (!rc)
        note_pending_lvs(d, *first, count);
    return rc;
}

/*
 * Add the events of one splice (del code points at pos, then the ncp code
 * points of text) to the oplog on version `par`, and to the pending change,
 * coalesced with the op before it when it continues it (typing, backspacing).
 * par NULL: the current frontier (local editing; the insert then follows
 * the delete on the frontier). Else the version the splice refers to: the
 * insert goes on the delete's last event. OUT *last: the last event added.
 */
HOT_INLINE int splice_events(notes_doc *d, const notes_lv *par, size_t npar,
                         size_t pos, size_t del, const char *text, size_t n,
                         uint32_t ncp, notes_lv *last)
{
    uint32_t agent;
    notes_lv first, chain;
    int rc;
    if ((rc = local_agent(d, &agent)))
        return rc;
    if (del) {
        if ((rc = add_op(d, agent, par, npar, NOTES__OP_DEL, pos, NULL, 0,
                         (uint32_t)del, &first)))
            return rc;
        *last = chain = first + (notes_lv)del - 1;
        if (par) {
            par = &chain;
            npar = 1;
        }
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
        if ((rc = add_op(d, agent, par, npar, NOTES__OP_INS, pos, text, n, ncp,
                         &first)))
            return rc;
        *last = first + ncp - 1;
        if (!(d->pend_kind == NOTES__K_INS &&
              pos == (size_t)d->pend_pos + d->pend_count)) {
            if ((rc = notes__doc_flush_pending_op(d)))
                return rc;
            d->pend_kind = NOTES__K_INS;
            d->pend_pos = (uint32_t)pos;
            d->pend_count = 0;
        }
        struct notes_buf *pt = &d->pend_text;
        if (n < pt->cap - pt->len && n <= pt->max - pt->len) {
            /* notes__buf_put without the call: room is there */
            notes__copy_bytes(pt->data + pt->len, text, n);
            pt->len += n;
            pt->data[pt->len] = 0;
        } else if ((rc = notes__buf_put(pt, text, n))) {
            return rc;
        }
        d->pend_count += ncp;
    }
    return NOTES_OK;
}

/* Check a splice's text and size; OUT *ncp: code points inserted. */
HOT_INLINE int splice_check(size_t del, const char *text, size_t n, size_t pos,
                        uint32_t *ncp)
{
    if (n == 1 && text && (unsigned char)text[0] < 0x80) {
        *ncp = 1; /* one typed ASCII character: most keystrokes */
        return pos > UINT32_MAX || del > UINT32_MAX ? NOTES_ETOOBIG : NOTES_OK;
    }
    if (n && (!text || !notes__utf8_valid((const uint8_t *)text, n))) {
        notes__set_detail("inserted text is not valid UTF-8");
        return NOTES_EINVAL;
    }
    *ncp = n ? (uint32_t)notes__utf8_count((const uint8_t *)text, n) : 0;
    if (n > NOTES__CHANGE_MAX / 2 || pos > UINT32_MAX || del > UINT32_MAX)
        return NOTES_ETOOBIG;
    return NOTES_OK;
}

int notes_doc_splice(notes_doc *d, size_t pos, size_t del, const char *text,
                     size_t n)
{
    NOTES__DOC_FULL_RC(d);
    size_t len;
    uint32_t ncp = 0;
    notes_lv last;
    int rc;

    /* The commonest keystroke: one ASCII character typed right after the
     * pending insert, with room for it in the pending text, taken by the
     * oplog's typing lane in this frame. What the code below does for it
     * (splice_events, add_op: the same state), without the steps that do
     * not apply; anything else goes there. */
    struct notes_buf *pt = &d->pend_text;
    if (del == 0 && n == 1 && text && (unsigned char)text[0] < 0x80 &&
        d->has_pend && d->pend_kind == NOTES__K_INS && d->len_ok &&
        pos <= d->len && pos == (size_t)d->pend_pos + d->pend_count &&
        d->my_agent_gen == d->rebuilds + 1 && d->my_agent_op == d->op &&
        1 < pt->cap - pt->len && 1 <= pt->max - pt->len) {
        uint64_t ev = d->pend.nevents + d->pend_count;
        if (notes__oplog_type_lane(d->op, d->my_agent,
                                   (d->pend_seq << 32) | ev, (uint32_t)pos,
                                   text[0], &last)) {
            if (ev == 0)
                d->pend_first = last;
            d->pend_last = last;
            pt->data[pt->len++] = (uint8_t)text[0];
            pt->data[pt->len] = 0;
            d->pend_count++;
            d->len++;
            return NOTES_OK;
        }
    }

    /* The same for one character deleted next to the pending delete run
     * (backspacing, or deleting forward), by the oplog's delete lane. */
    if (del == 1 && n == 0 && d->has_pend && d->len_ok && pos < d->len &&
        d->my_agent_gen == d->rebuilds + 1 && d->my_agent_op == d->op) {
        int fwd = d->pend_kind == NOTES__K_DEL && pos == d->pend_pos;
        int back = (d->pend_kind == NOTES__K_DELBACK &&
                    pos + d->pend_count == d->pend_pos) ||
                   (d->pend_kind == NOTES__K_DEL && d->pend_count == 1 &&
                    pos + 1 == d->pend_pos);
        uint64_t ev = d->pend.nevents + d->pend_count;
        if ((fwd || back) &&
            notes__oplog_del_lane(d->op, d->my_agent, (d->pend_seq << 32) | ev,
                                  (uint32_t)pos, &last)) {
            if (ev == 0)
                d->pend_first = last;
            d->pend_last = last;
            if (!fwd)
                d->pend_kind = NOTES__K_DELBACK;
            d->pend_count++;
            d->len--;
            return NOTES_OK;
        }
    }

    len = d->len_ok ? d->len : notes_doc_length(d);
    if (pos > len || del > len - pos) {
        notes__set_detail("edit at %zu deleting %zu is outside the text (%zu "
                          "characters)", pos, del, len);
        return NOTES_EBADOP;
    }
    if ((rc = splice_check(del, text, n, pos, &ncp)))
        return rc;
    if (!del && !n)
        return NOTES_OK;
    if (!d->has_pend && (rc = notes__doc_begin_pending(d)))
        return rc;
    if ((rc = splice_events(d, NULL, 0, pos, del, text, n, ncp, &last)))
        return rc;
    d->len = d->len - del + ncp;
    return NOTES_OK;
}

/*
 * The version `ids` as sorted change ids with none an ancestor of another
 * (a change's deps name a frontier). NOTES_ENOTFOUND for an id this note
 * lacks. An ancestor is found by walking deps back from each id, never
 * below the other's Lamport number (deps only ever point to smaller ones),
 * so a recent version costs a few steps, not the whole history.
 */
static int version_frontier(notes_doc *d, const uint8_t (*ids)[32], size_t n,
                            uint8_t (**out)[32], uint32_t *nout)
{
    uint32_t *idx = notes__malloc((n ? n : 1) * sizeof(*idx));
    uint32_t *stack = NULL;
    uint8_t *seen = NULL;
    uint8_t(*v)[32] = NULL;
    size_t k = 0;
    int rc = NOTES_OK;
    if (!idx)
        return NOTES_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = notes__doc_hash_find(d, ids[i]);
        size_t j;
        if (e == NONE || !d->e[e].applied) {
            char sid[17];
            notes__doc_short_id(sid, ids[i]);
            notes__set_detail("version names change %s, which this note "
                              "does not have", sid);
            rc = NOTES_ENOTFOUND;
            goto out;
        }
        for (j = 0; j < k && idx[j] != e; j++)
            ;
        if (j == k)
            idx[k++] = e;
    }
    if (k > 1) {
        seen = notes__calloc(d->ne, 1);
        stack = notes__malloc(d->ne * sizeof(*stack));
        if (!seen || !stack) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        for (size_t a = 0; a < k; a++) {
            uint32_t floor = d->e[idx[a]].lamport;
            int redundant = 0;
            for (size_t b = 0; b < k && !redundant; b++) {
                size_t sp = 0;
                if (b == a || idx[b] == NONE || d->e[idx[b]].lamport <= floor)
                    continue;
                memset(seen, 0, d->ne);
                stack[sp++] = idx[b];
                while (sp && !redundant) {
                    const struct notes__change *c = d->e[stack[--sp]].c;
                    for (uint32_t i = 0; i < c->ndeps; i++) {
                        uint32_t p = notes__doc_hash_find(d, c->deps[i]);
                        if (p == idx[a]) {
                            redundant = 1;
                            break;
                        }
                        if (p != NONE && !seen[p] &&
                            d->e[p].lamport > floor) {
                            seen[p] = 1;
                            stack[sp++] = p;
                        }
                    }
                }
            }
            if (redundant)
                idx[a] = NONE;
        }
    }
    v = notes__malloc((k ? k : 1) * 32);
    if (!v) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    *nout = 0;
    for (size_t i = 0; i < k; i++)
        if (idx[i] != NONE)
            memcpy(v[(*nout)++], d->e[idx[i]].c->id, 32);
    qsort(v, *nout, 32, notes__cmp_id32);
    *out = v;
    v = NULL;
out:
    notes__free(idx);
    notes__free(stack);
    notes__free(seen);
    notes__free(v);
    return rc;
}

int notes_doc_commit_at(notes_doc *d, const uint8_t (*version)[32],
                        size_t nversion, const notes_splice *s, size_t ns,
                        uint8_t id[32])
{
    NOTES__DOC_FULL_RC(d);
    uint8_t(*deps)[32] = NULL;
    uint32_t nd = 0;
    notes_lv *par = NULL, last = 0;
    uint32_t npar = 0;
    int rc;

    if (id)
        memset(id, 0, 32);
    if (d->has_pend) {
        notes__set_detail("commit local edits before committing at a version");
        return NOTES_EINVAL;
    }
    if (nversion && !version)
        return NOTES_EINVAL;
    for (size_t i = 0; i < ns; i++) {
        uint32_t ncp;
        if ((rc = splice_check(s[i].del, s[i].text, s[i].n, s[i].pos, &ncp)))
            return rc;
    }
    if ((rc = version_frontier(d, version, nversion, &deps, &nd)))
        return rc;
    if ((rc = notes__doc_version_of(d, (const uint8_t(*)[32])deps, nd, &par,
                                    &npar))) {
        notes__free(deps);
        return rc;
    }
    if ((rc = begin_pending_on(d, deps, nd))) {
        notes__free(par);
        return rc;
    }
    for (size_t i = 0; i < ns && rc == NOTES_OK; i++) {
        uint32_t ncp = s[i].n ? (uint32_t)notes__utf8_count(
                                    (const uint8_t *)s[i].text, s[i].n)
                              : 0;
        if (!s[i].del && !s[i].n)
            continue;
        rc = splice_events(d, par, npar, s[i].pos, s[i].del, s[i].text,
                           s[i].n, ncp, &last);
        if (rc == NOTES_OK) {
            /* The next splice refers to the text after this one. */
            par[0] = last;
            npar = 1;
        }
    }
    notes__free(par);
    d->len_ok = 0; /* merged: the current length moved by what it kept */
    if (rc == NOTES_EBADOP)
        notes__set_detail("an edit lies outside the text of the version it "
                          "refers to");
    if (rc == NOTES_OK && notes__doc_pend_events(d) == 0 &&
        !d->pend.nops) {
        notes__doc_clear_pending(d); /* nothing to sign */
        return NOTES_OK;
    }
    if (rc == NOTES_OK)
        return notes_doc_commit(d, id);
    /* Take the events added so far out again: the state is the log's. */
    {
        char why[512];
        snprintf(why, sizeof(why), "%s", notes_last_detail());
        notes__doc_clear_pending(d);
        int rc2 = notes__doc_rebuild(d);
        (void)rc2;
        notes__set_detail("%s", why);
    }
    return rc;
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
    NOTES__DOC_FULL_RC(d);
    return local_kv(d, NOTES__K_SET, key, value);
}

int notes_doc_unset_field(notes_doc *d, const char *key)
{
    NOTES__DOC_FULL_RC(d);
    return local_kv(d, NOTES__K_UNSET, key, NULL);
}

int notes_doc_list_add(notes_doc *d, const char *key, const char *value)
{
    NOTES__DOC_FULL_RC(d);
    return local_kv(d, NOTES__K_ADD, key, value);
}

int notes_doc_list_remove(notes_doc *d, const char *key, const char *value)
{
    NOTES__DOC_FULL_RC(d);
    return local_kv(d, NOTES__K_REMOVE, key, value);
}
