/*
 * session_in.c: what a session receives (notes_sync_receive): handshake
 * M1/M2/M3, then frames of messages (HAVE, BUNDLE chunks, DONE, POKE,
 * PRESENCE, PUSH, BYE, ERROR), each checked before it changes anything.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "notes_sync_presence.h"
#include "session_internal.h"

/* ---- input ---- */

static int cmp_vv(const void *a, const void *b)
{
    const struct vv_ent *x = a, *y = b;
    return x->author < y->author ? -1 : x->author > y->author;
}

static int handle_have(notes_sync_session *s, const uint8_t *p,
                        const uint8_t *end)
{
    uint64_t count;
    uint8_t flags;
    int rc;
    /* Live: the initiator's next list starts a new round (it may arrive
     * with the DONE that ended the last one). */
    if (s->role == NOTES_SYNC_RESPONDER && s->live && s->done_sent &&
        s->done_recv && !s->bye_sent && (rc = notes_sync__round_reset(s)))
        return notes_sync__fail(s, rc);
    if (s->theirs_done)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have after the last have");
    if ((s->recon_state == 1 && s->recon_heard) || s->recon_owe)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have before the "
                                 "reconciliation ended");
    /* An initiator of before RECON: the versions read ahead go unused. */
    if (s->role == NOTES_SYNC_RESPONDER && s->recon_state == 1)
        notes_sync__recon_reset(s);
    if (end - p < 1 || (flags = *p++) > (HAVE_LAST | HAVE_LIVE) ||
        ((flags & HAVE_LIVE) && !(flags & HAVE_LAST)) ||
        notes_sync__get_varint(&p, end, &count))
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "malformed have message");
    if (count > (uint64_t)(end - p) / 33 ||
        count > MAX_PEER_NOTES - s->ntheirs)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: too many notes");
    if (s->ntheirs + count > s->captheirs) {
        size_t nc = s->captheirs ? s->captheirs : 16;
        struct peer_note *nv;
        while (nc < s->ntheirs + count)
            nc *= 2;
        nv = realloc(s->theirs, nc * sizeof(*nv));
        if (!nv)
            return notes_sync__fail(s, NOTES_ENOMEM);
        s->theirs = nv;
        s->captheirs = nc;
    }
    for (uint64_t i = 0; i < count; i++) {
        struct peer_note *pn = &s->theirs[s->ntheirs];
        uint64_t nvv;
        if (end - p < 32)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: truncated entry");
        memcpy(pn->id, p, 16);
        memcpy(pn->digest, p + 16, 16);
        p += 32;
        pn->nvv = 0;
        pn->vv = NULL;
        s->ntheirs++; /* owned from here on, freed with the session */
        if (notes_sync__get_varint(&p, end, &nvv) || nvv > MAX_VV ||
            nvv > (uint64_t)(end - p) / 2)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: bad author count");
        /* A vector matters only for a note we have (to send what the
         * peer lacks of it); for others it is read and dropped, so what a
         * peer makes us keep stays near what it sent (docs/security.md). */
        int keep = s->nours && bsearch(pn->id, s->ours, s->nours, 16, notes_sync__cmp_id);
        if (keep && nvv && !(pn->vv = malloc(nvv * sizeof(*pn->vv))))
            return notes_sync__fail(s, NOTES_ENOMEM);
        for (uint64_t j = 0; j < nvv; j++) {
            uint64_t ref, seq;
            if (notes_sync__get_varint(&p, end, &ref) || ref > s->nrx_authors)
                return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: bad author "
                             "reference");
            if (ref == s->nrx_authors) {
                int arc;
                if (end - p < 32 || s->nrx_authors == MAX_AUTHORS)
                    return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: bad new "
                                 "author");
                if ((arc = notes_sync__author_push(&s->rx_authors, &s->nrx_authors,
                                       &s->crx_authors, p)))
                    return notes_sync__fail(s, arc);
                p += 32;
            }
            if (notes_sync__get_varint(&p, end, &seq) || seq == 0)
                return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: bad sequence");
            if (!keep)
                continue;
            pn->vv[j].author = (uint32_t)ref;
            pn->vv[j].seq = seq;
            pn->nvv = (size_t)j + 1;
        }
        if (pn->nvv > 1)
            qsort(pn->vv, pn->nvv, sizeof(*pn->vv), cmp_vv);
        for (size_t j = 1; j < pn->nvv; j++)
            if (pn->vv[j - 1].author == pn->vv[j].author)
                return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: an author twice");
    }
    if (p != end)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: trailing bytes");
    if (flags & HAVE_LAST) {
        /* Live once the initiator asked and the responder agreed. */
        if (s->role == NOTES_SYNC_RESPONDER)
            s->live = s->live_want && (flags & HAVE_LIVE);
        else if (flags & HAVE_LIVE) {
            if (!s->live_want)
                return notes_sync__failf(s, NOTES_SYNC_EPROTO, "live without asking");
            s->live = 1;
        }
        if (s->ntheirs > 1)
            qsort(s->theirs, s->ntheirs, sizeof(*s->theirs), notes_sync__cmp_peer);
        for (size_t i = 1; i < s->ntheirs; i++)
            if (!memcmp(s->theirs[i - 1].id, s->theirs[i].id, 16))
                return notes_sync__failf(s, NOTES_SYNC_EPROTO, "have: a note twice");
        s->theirs_done = 1;
    }
    return NOTES_OK;
}

/* Whether the peer may send us note `id` in this space. */
static int check_incoming(notes_sync_session *s, const uint8_t id[16])
{
    char hex[33], other[NOTES_SPACE_NAME_MAX + 1];
    notes_doc *d = NULL;
    int rc;
    notes__hex(hex, id, 16);
    if (!s->replica)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "note %s: this peer keeps no "
                     "replica", hex);
    s->rb_new = 0;
    s->rb_fresh = s->nfresh &&
                  bsearch(id, s->fresh, s->nfresh, 16, notes_sync__cmp_id);
    if (notes_sync__listed(s, id))
        return NOTES_OK;
    rc = notes_sync_space_of_note(notes_replica_home(s->replica), id, other);
    if (rc)
        return notes_sync__fail(s, rc);
    /* Listed in this space since the round read the list (a note that
     * came in that round, pushed to now). */
    if (strcmp(other, s->spaces[s->space].name) == 0)
        return NOTES_OK;
    if (strcmp(other, NOTES_SPACE_DEFAULT) != 0)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "the peer sent note %s, which "
                     "belongs to space '%s' here", hex, other);
    rc = notes_doc_open(s->replica, id, &d);
    notes_doc_free(d);
    if (rc == NOTES_OK)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "the peer sent note %s, which is "
                     "a personal note here", hex);
    if (rc != NOTES_ENOTFOUND)
        return notes_sync__fail(s, notes_sync__from_notes(rc, hex));
    s->rb_new = 1;
    return NOTES_OK;
}

/* Whether d holds exactly the heads the peer is known to hold for id. */
static int at_known(notes_sync_session *s, const uint8_t id[16], notes_doc *d)
{
    const struct known_note *k = notes_sync__known_find(s, id);
    uint8_t(*heads)[32];
    size_t nh;
    if (!k || notes_doc_heads(d, &heads, &nh) != NOTES_OK)
        return 0;
    int same = nh == k->nheads && !memcmp(heads, k->heads, nh * 32);
    notes_free(heads);
    return same;
}

/*
 * A new note is listed in the space before its changes are stored, and
 * taken out again if they are refused: a crash in between leaves a listed
 * note without a log, which the next sync fills (never a personal note
 * that later syncs would refuse).
 */
static int merge_bundle(notes_sync_session *s)
{
    notes_doc *d = NULL;
    char hex[33];
    size_t added = 0;
    const char *home = notes_replica_home(s->replica);
    int rc;
    notes__hex(hex, s->rb_id, 16);
    if (s->rb_new &&
        (rc = notes_sync_space_add_note(home, s->spaces[s->space].name, s->rb_id)))
        return notes_sync__fail(s, rc);
    if (!s->newdocs && !(s->newdocs = calloc(NEW_BATCH, sizeof(notes_doc *))))
        return notes_sync__fail(s, NOTES_ENOMEM);
    int cached = 1;
    /* A note this bundle's start found absent (rb_new), or one listed
     * ahead of its bundle because it had neither log nor state file here
     * (fresh) whose bundle this is, is not opened to be found absent once
     * more: in a first sync, every note. Should another process have made
     * it meanwhile, the merge reads its log before appending. */
    uint8_t(*fresh)[16] = s->rb_fresh ? bsearch(s->rb_id, s->fresh, s->nfresh,
                                                16, notes_sync__cmp_id)
                                      : NULL;
    int absent = s->rb_new || (fresh && !s->fresh_stored[fresh - s->fresh]);
    rc = absent ? NOTES_ENOTFOUND : notes_sync__doc_get(s, s->rb_id, &d);
    if (rc == NOTES_ENOTFOUND) {
        cached = 0;
        rc = notes_doc_create_id(s->replica, s->rb_id, &d);
    }
    if (rc) {
        rc = notes_sync__from_notes(rc, hex);
    } else {
        size_t nbefore = notes_doc_change_count(d);
        int was_known = !cached || at_known(s, s->rb_id, d);
        /* Live: the page and other peers are told before the disk syncs;
         * the caller's flush follows (notes_sync_session_flush). */
        if (s->live && cached)
            notes_doc_set_defer(d, NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
        /* A note new here, in a round (the peer's DONE follows): its log
         * and state are made durable with the round's other new notes
         * (notes_sync__new_flush), two syncs per batch instead of five
         * per note. Until then a crash of the machine loses at most what
         * the peer still has; it is listed, and the next sync fills it. */
        int batch = !cached && !s->rb_push && s->newdocs;
        if (batch)
            notes_doc_set_defer(d, NOTES_DEFER_STATE | NOTES_DEFER_MERGE);
        rc = notes_doc_merge(d, s->rb.data, s->rb.len, &added);
        /* The peer holds what it sent and what it was known to hold. When
         * our copy held just that before (or nothing: a note new here) and
         * the merge brought in nothing else, the heads after it are the
         * peer's. Else the known heads stay and the next push carries the
         * rest: a copy opened or refreshed since may hold a commit here
         * the peer was not sent yet, and before appending, a merge reads
         * what other writers appended to the log. */
        if (!rc && added)
            notes_sync__versions_learn(s, s->rb_id, d);
        if (!rc && s->live && was_known &&
            notes_doc_change_count(d) - nbefore == added &&
            notes_sync__known_set(s, s->rb_id, d, NULL, 0) != NOTES_OK) {
            /* not recorded: the next change goes by a round */
        }
        if (batch && !rc && notes_doc_needs_flush(d))
            s->newdocs[s->nnew++] = d;
        else if (!cached)
            notes_doc_free(d);
        if (rc == NOTES_EMISSINGDEP && s->rb_push) {
            /* A push starts from what the peer believes we hold; our copy
             * of the note lacks some of it (a change that reached this
             * replica by another path, not yet in this session's copy).
             * Not an attack: everything it carried was checked and none
             * of it stored. A round sends what is missing either way. */
            if ((s->rb_new || s->rb_fresh) && notes_sync_space_remove_note(
                                 home, s->spaces[s->space].name, s->rb_id) !=
                                 NOTES_OK) {
                /* listed without a log: harmless, the next sync fills it */
            }
            if (s->role == NOTES_SYNC_INITIATOR)
                s->round_pending = 1;
            else
                s->poke_queued = 1;
            s->rb_active = s->rb_push = 0;
            notes__buf_release(&s->rb);
            return NOTES_OK;
        }
        if (rc) {
            char why[400];
            snprintf(why, sizeof(why), "note %s: bundle refused, nothing of "
                     "it stored", hex);
            rc = notes_sync__from_notes(rc, why);
        }
    }
    if (rc) {
        if (s->rb_new || s->rb_fresh) {
            char keep[512];
            snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
            if (notes_sync_space_remove_note(home, s->spaces[s->space].name,
                                        s->rb_id) != NOTES_OK) {
                /* listed without a log: harmless, the next sync fills it */
            }
            notes_sync__detail("%s", keep);
        }
        return notes_sync__fail(s, rc);
    }
    if (s->nnew >= NEW_BATCH && (rc = notes_sync__new_flush(s)))
        return notes_sync__fail(s, rc);
    if (s->rb_new || s->rb_fresh)
        s->report.notes_created++;
    if (fresh) /* found above; the round's fresh list has not changed */
        s->fresh_stored[fresh - s->fresh] = 1;
    s->report.changes_received += added;
    s->report.notes_received++;
    s->report.pushes_received += s->rb_push;
    s->rb_active = s->rb_push = 0;
    notes__buf_release(&s->rb);
    return NOTES_OK;
}

/*
 * A complete ZBUNDLE: one zstd frame that declares its content size, at
 * most max_bundle bytes, and decompresses to exactly that.
 */
static int unpack_bundle(notes_sync_session *s)
{
    struct notes_buf raw;
    int rc;
    if (!s->rb_z)
        return NOTES_OK;
    notes__buf_init(&raw, SIZE_MAX);
    rc = notes__decompress(&raw, s->rb.data, s->rb.len,
                           s->max_bundle < SIZE_MAX ? (size_t)s->max_bundle
                                                    : SIZE_MAX,
                           ZEXPAND_MAX);
    if (rc == NOTES_OK && raw.len == 0) {
        rc = NOTES_ECORRUPT; /* an empty bundle is sent raw, not as a frame */
        notes__set_detail("not one zstd frame with its size");
    }
    if (rc) {
        notes__buf_release(&raw);
        return notes_sync__failf(s, rc == NOTES_ECORRUPT ? NOTES_SYNC_EPROTO : rc,
                                 "compressed bundle: %s", notes_last_detail());
    }
    notes__buf_release(&s->rb);
    s->rb = raw;
    s->rb_z = 0;
    return NOTES_OK;
}

static int handle_bundle(notes_sync_session *s, int z, const uint8_t *p,
                         const uint8_t *end)
{
    uint64_t total;
    const uint8_t *id = p;
    size_t n;
    int rc;
    if (s->done_recv)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "bundle after done");
    if (end - p < 17 || (p += 16, notes_sync__get_varint(&p, end, &total)) ||
        p == end)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "malformed bundle message");
    n = (size_t)(end - p);
    if (!s->rb_active) {
        if (total > s->max_bundle)
            return notes_sync__failf(s, NOTES_ETOOBIG, "a bundle of %llu bytes is over "
                         "the limit of %llu", (unsigned long long)total,
                         (unsigned long long)s->max_bundle);
        if ((rc = check_incoming(s, id)))
            return rc;
        memcpy(s->rb_id, id, 16);
        s->rb_total = total;
        s->rb_active = 1;
        s->rb_z = z;
        notes__buf_init(&s->rb, (size_t)total);
    } else if (memcmp(id, s->rb_id, 16) != 0 || total != s->rb_total ||
               z != s->rb_z) {
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "bundle chunk of another note "
                     "before the previous bundle ended");
    }
    if (n > s->rb_total - s->rb.len)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "bundle longer than announced");
    if ((rc = notes__buf_put(&s->rb, p, n)))
        return notes_sync__fail(s, rc);
    if (s->progress)
        s->progress(s->progress_ud, s->rb_id, 0, s->rb.len, s->rb_total);
    if (s->rb.len == s->rb_total)
    {
        if ((rc = unpack_bundle(s)))
            return rc;
        if (s->defer_merge) {
            s->merge_ready = 1; /* handle_msgs stops here */
            return NOTES_OK;
        }
        return merge_bundle(s);
    }
    return NOTES_OK;
}

static int note_in_space(notes_sync_session *s, const uint8_t id[16]);

/* PUSH: a live session's note id and a bundle of what it just gained
 * (docs/protocol.md, "Pushes"), merged as a one-chunk bundle would be. */
static int handle_push(notes_sync_session *s, const uint8_t *p, size_t n)
{
    int rc;
    if (!s->live)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "push outside a live session");
    if (s->rb_active)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "push inside a bundle");
    if (n < 17 || n - 16 > PUSH_MAX)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "malformed push (%zu bytes)", n);
    if ((rc = check_incoming(s, p)))
        return rc;
    memcpy(s->rb_id, p, 16);
    s->rb_total = n - 16;
    s->rb_active = 1;
    s->rb_push = 1;
    s->rb_z = 0;
    notes__buf_init(&s->rb, n - 16);
    if ((rc = notes__buf_put(&s->rb, p + 16, n - 16)))
        return notes_sync__fail(s, rc);
    if (s->defer_merge) {
        s->merge_ready = 1; /* handle_msgs stops here */
        return NOTES_OK;
    }
    return merge_bundle(s);
}

/*
 * RECON: a turn of the reconciliation (docs/protocol.md). The initiator's
 * first one begins a round, as its HAVE did before the extension; the
 * turns then alternate until one asks nothing.
 */
static int handle_recon(notes_sync_session *s, const uint8_t *p, size_t n)
{
    int rc;
    if (s->role == NOTES_SYNC_RESPONDER && s->live && s->done_sent &&
        s->done_recv && !s->bye_sent && (rc = notes_sync__round_reset(s)))
        return notes_sync__fail(s, rc);
    if (s->role == NOTES_SYNC_RESPONDER && s->recon_state == 0 &&
        !s->theirs_done && s->ntheirs == 0 && !s->have_sent &&
        (rc = notes_sync__recon_begin(s)))
        return notes_sync__fail(s, rc);
    if (s->recon_state != 1 || s->recon_owe)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "unexpected "
                                 "reconciliation message");
    s->recon_heard = 1;
    if ((rc = notes_sync__recon_recv(&s->rc, p, n)))
        return notes_sync__fail(s, rc);
    if (!notes_sync__recon_turn_over(&s->rc))
        return NOTES_OK;
    s->recon_emit = 0;
    s->recon_owe = s->rc.out.len > 0;
    if (s->rc.done && (rc = notes_sync__recon_apply(s)))
        return notes_sync__fail(s, rc);
    return NOTES_OK;
}

static int handle_msg(notes_sync_session *s, uint8_t type, const uint8_t *p,
                      size_t n)
{
    const uint8_t *end = p + n;
    if (s->bye_recv)
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "a message after the goodbye");
    switch (type) {
    case MSG_HAVE:
        return handle_have(s, p, end);
    case MSG_BUNDLE:
    case MSG_ZBUNDLE:
        return handle_bundle(s, type == MSG_ZBUNDLE, p, end);
    case MSG_DONE:
        if (n != 0 || !s->theirs_done || s->rb_active || s->done_recv)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "unexpected done");
        s->done_recv = 1;
        notes_sync__unlist_unstored(s); /* all the peer sends has come */
        {
            /* Durable before the round counts as done. */
            int rc = notes_sync__new_flush(s);
            if (rc)
                return notes_sync__fail(s, rc);
        }
        notes_sync__versions_flush(s);
        return NOTES_OK;
    case MSG_PUSH:
        return handle_push(s, p, n);
    case MSG_RECON:
        return handle_recon(s, p, n);
    case MSG_POKE:
        if (n != 0 || !s->live || s->role != NOTES_SYNC_INITIATOR)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "unexpected poke");
        s->round_pending = 1;
        return NOTES_OK;
    case MSG_PRESENCE: {
        uint8_t note[16], key[32];
        uint64_t seq;
        const char *json;
        size_t jn;
        if (!s->live)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "presence outside a live "
                         "session");
        if (notes_sync_presence_open(p, n, note, key, &seq, &json, &jn))
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "%s", notes_sync_last_detail());
        /* Only for notes of the space: a peer learns nothing of others.
         * The list read at the round's start may miss a note that just
         * arrived: ask the space file then. */
        if (s->presence && note_in_space(s, note))
            s->presence(s->presence_ud, p, n);
        return NOTES_OK;
    }
    case MSG_BYE:
        if (n != 0 || !s->done_recv || !s->done_sent)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "goodbye before the sync "
                         "finished");
        s->bye_recv = 1;
        notes_sync__maybe_closed(s);
        return NOTES_OK;
    case MSG_ERROR: {
        const uint8_t *q = p;
        uint64_t code = 0;
        char text[256];
        size_t tl;
        (void)notes_sync__get_varint(&q, end, &code);
        tl = (size_t)(end - q) < sizeof(text) - 1 ? (size_t)(end - q)
                                                  : sizeof(text) - 1;
        for (size_t i = 0; i < tl; i++)
            text[i] = (q[i] >= ' ' && q[i] < 0x7f) ? (char)q[i] : '?';
        text[tl] = '\0';
        s->bye_sent = 1; /* no reply to an error */
        return notes_sync__failf(s, NOTES_SYNC_EREFUSED, "the peer ended the session: "
                     "%s (%s)", text,
                     notes_sync_errname(-(int)(code & 0xffff)));
    }
    default:
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "unknown message type %u", type);
    }
}

/* Whether note `id` is in the session's space. */
static int note_in_space(notes_sync_session *s, const uint8_t id[16])
{
    char name[NOTES_SPACE_NAME_MAX + 1];
    if (notes_sync__listed(s, id))
        return 1;
    return s->replica &&
           notes_sync_space_of_note(notes_replica_home(s->replica), id, name) ==
               NOTES_OK &&
           strcmp(name, s->spaces[s->space].name) == 0;
}

/* A frame body: one or more messages, each type, varint length, payload. */
/* The messages of s->plain from off to len; a bundle left to merge stops
 * them (its position kept for notes_sync_session_apply). */
static int handle_msgs(notes_sync_session *s, size_t off, size_t len)
{
    const uint8_t *p = s->plain + off, *end = s->plain + len;
    s->frame_rest = 0;
    while (p < end) {
        if (s->merge_ready) {
            s->frame_rest = 1;
            s->frame_off = (size_t)(p - s->plain);
            s->frame_len = len;
            return NOTES_OK;
        }
        uint8_t type = *p++;
        uint64_t mlen;
        int rc;
        if (notes_sync__get_varint(&p, end, &mlen) || mlen > (uint64_t)(end - p))
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "malformed message in frame "
                         "%llu", (unsigned long long)s->report.frames_received);
        if ((rc = handle_msg(s, type, p, (size_t)mlen)))
            return rc;
        p += mlen;
    }
    return NOTES_OK;
}

static int hs_unit(notes_sync_session *s, const uint8_t *u)
{
    int rc;
    switch (s->hs_step) {
    case HS_WAIT_M1: {
        size_t which = 0;
        rc = sync_hs_check_m1(&s->hs, (const uint8_t(*)[32])s->netkeys,
                              s->nspaces, u, &which);
        if (rc)
            return notes_sync__fail(s, rc);
        s->space = which;
        if ((rc = notes__buf_reserve(&s->out, SYNC_M2_LEN)))
            return notes_sync__fail(s, rc);
        if ((rc = sync_hs_m2(&s->hs, s->id, s->out.data + s->out.len)))
            return notes_sync__fail(s, rc);
        s->out.len += SYNC_M2_LEN;
        s->hs_step = HS_WAIT_M3;
        return NOTES_OK;
    }
    case HS_WAIT_M2:
        if ((rc = notes__buf_reserve(&s->out, SYNC_M3_LEN)))
            return notes_sync__fail(s, rc);
        if ((rc = sync_hs_m3(&s->hs, s->id, u, s->out.data + s->out.len)))
            return notes_sync__fail(s, rc);
        memcpy(s->report.peer, s->hs.peer, 32);
        if (s->accept && s->accept(s->accept_ud, s->hs.peer) != 0)
            return notes_sync__failf(s, NOTES_SYNC_EREFUSED, "the peer's key is not "
                         "accepted");
        s->out.len += SYNC_M3_LEN;
        break;
    case HS_WAIT_M3:
        if ((rc = sync_hs_check_m3(&s->hs, u)))
            return notes_sync__fail(s, rc);
        memcpy(s->report.peer, s->hs.peer, 32);
        if (s->accept && s->accept(s->accept_ud, s->hs.peer) != 0)
            return notes_sync__failf(s, NOTES_SYNC_EREFUSED, "the peer's key is not "
                         "accepted");
        break;
    default:
        return notes_sync__failf(s, NOTES_SYNC_EPROTO, "unexpected handshake bytes");
    }
    sync_hs_finish(&s->hs, s->tx.key, s->rx.key);
    s->hs_step = HS_DONE;
    s->state = NOTES_SYNC_OPEN;
    if ((rc = notes_sync__open_space(s)))
        return notes_sync__fail(s, rc);
    /* Responder: read the versions now, while the initiator reads its own
     * (a no-change sync waits for the slower side once, not twice). */
    if (s->role == NOTES_SYNC_RESPONDER && s->replica &&
        (rc = notes_sync__recon_begin(s)))
        return notes_sync__fail(s, rc);
    return NOTES_OK;
}

/* Bytes the unit being assembled needs in all. */
static size_t unit_len(const notes_sync_session *s)
{
    if (s->state == NOTES_SYNC_HANDSHAKE) {
        switch (s->hs_step) {
        case HS_WAIT_M1:
            return SYNC_M1_LEN;
        case HS_WAIT_M2:
            return SYNC_M2_LEN;
        case HS_WAIT_M3:
            return SYNC_M3_LEN;
        default:
            return 0; /* nothing expected before M1 is sent */
        }
    }
    return s->in_body ? s->body_len + SYNC_TAG_LEN : SYNC_HDR_LEN;
}

/* The byte loop of notes_sync_receive: assemble handshake units and
 * frames, and handle each. A bundle left to merge stops it: the bytes
 * not yet read are held for notes_sync_session_apply. */
static int receive_bytes(notes_sync_session *s, const uint8_t *p, size_t n)
{
    int rc;
    while (n > 0) {
        size_t need, take;
        if (s->merge_ready)
            return (rc = notes__buf_put(&s->held, p, n)) ? notes_sync__fail(s, rc)
                                                       : NOTES_OK;
        if (s->bye_recv)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "bytes after the goodbye");
        need = unit_len(s);
        if (need == 0)
            return notes_sync__failf(s, NOTES_SYNC_EPROTO, "the peer spoke before the "
                         "handshake began");
        take = need - s->in.len < n ? need - s->in.len : n;
        if ((rc = notes__buf_put(&s->in, p, take)))
            return notes_sync__fail(s, rc);
        p += take;
        n -= take;
        /* A server that turns us away says so in plain text where M2
         * would be (M2 is random-looking: a chance match is 2^-144). */
        if (s->state == NOTES_SYNC_HANDSHAKE && s->hs_step == HS_WAIT_M2 &&
            s->in.len >= SYNC_BUSY_LEN &&
            memcmp(s->in.data, SYNC_BUSY_LINE, SYNC_BUSY_LEN) == 0)
            return notes_sync__failf(s, NOTES_SYNC_EBUSY, "the peer answered busy: too "
                         "many connections are waiting for their handshake "
                         "there");
        if (s->in.len < need)
            break;
        s->in.len = 0;
        if (s->state == NOTES_SYNC_HANDSHAKE) {
            if ((rc = hs_unit(s, s->in.data)))
                return rc;
        } else if (!s->in_body) {
            if ((rc = sync_frame_open_hdr(&s->rx, s->in.data, &s->body_len)))
                return notes_sync__fail(s, rc);
            s->in_body = 1;
        } else {
            if ((rc = sync_frame_open_body(&s->rx, s->in.data, s->body_len,
                                           s->plain)))
                return notes_sync__fail(s, rc);
            s->in_body = 0;
            s->report.frames_received++;
            if ((rc = handle_msgs(s, 0, s->body_len)))
                return rc;
        }
    }
    return NOTES_OK;
}

int notes_sync_receive(notes_sync_session *s, const uint8_t *p, size_t n)
{
    int rc;
    if (!s || (!p && n))
        return NOTES_EINVAL;
    if (s->state == NOTES_SYNC_FAILED) {
        notes_sync__detail("%s", s->detail);
        return s->err;
    }
    if (s->state == NOTES_SYNC_CLOSED && n) {
        /* The sync is complete; extra bytes are refused, not fatal. */
        notes_sync__detail("bytes after the goodbye");
        return NOTES_SYNC_EPROTO;
    }
    s->report.bytes_received += n;
    if (s->merge_ready) /* behind the bundle waiting for its merge */
        return (rc = notes__buf_put(&s->held, p, n)) ? notes_sync__fail(s, rc)
                                                   : NOTES_OK;
    return receive_bytes(s, p, n);
}

int notes_sync_session_merge_pending(const notes_sync_session *s)
{
    return s && s->state != NOTES_SYNC_FAILED && s->merge_ready;
}

int notes_sync_session_apply(notes_sync_session *s)
{
    struct notes_buf rest;
    int rc;
    if (!s)
        return NOTES_EINVAL;
    if (s->state == NOTES_SYNC_FAILED) {
        notes_sync__detail("%s", s->detail);
        return s->err;
    }
    if (!s->merge_ready)
        return NOTES_OK;
    s->merge_ready = 0;
    if ((rc = merge_bundle(s)))
        return rc;
    /* Then what arrived after the bundle, in order, until the next
     * bundle to merge, if any. */
    if (s->frame_rest && (rc = handle_msgs(s, s->frame_off, s->frame_len)))
        return rc;
    if (s->merge_ready || s->held.len == 0)
        return NOTES_OK;
    rest = s->held;
    notes__buf_init(&s->held, SIZE_MAX / 4);
    rc = receive_bytes(s, rest.data, rest.len);
    notes__buf_release(&rest);
    return rc;
}
