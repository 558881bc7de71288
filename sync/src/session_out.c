/*
 * session_out.c: what a session sends (notes_sync_next_msg). Handshake M1,
 * then frames carrying HAVE (each note's version vector), BUNDLE chunks
 * (what the peer lacks, from notes_doc_export), DONE, BYE.
 * Bundles are exported lazily, one frame at a time, so memory stays bounded
 * by one bundle plus one frame whatever the transport's pace.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "notes_sync_presence.h"
#include "session_internal.h"

void (*notes_sync__bundle_hook)(uint8_t *bundle, size_t n);

/* ---- output ---- */

static int queue_frame(notes_sync_session *s, const uint8_t *body, size_t n)
{
    int rc = notes__buf_reserve(&s->out, SYNC_HDR_LEN + n + SYNC_TAG_LEN);
    if (rc)
        return rc;
    sync_frame_seal(&s->tx, body, n, s->out.data + s->out.len);
    s->out.len += SYNC_HDR_LEN + n + SYNC_TAG_LEN;
    s->report.frames_sent++;
    return NOTES_OK;
}

static void our_note_release(struct our_note *o)
{
    free(o->keys);
    free(o->seqs);
    memset(o, 0, sizeof(*o));
}

/*
 * Open note `id` and summarize it: a digest of its heads and its version
 * vector (each author's highest sequence number). An author's changes in a
 * replica are always 1..max (a change needs its prev), so the vector names
 * the history exactly. o->d stays NULL (and OK) for a note with no log.
 */
static int our_note(notes_sync_session *s, const uint8_t id[16],
                    struct our_note *o)
{
    uint8_t(*heads)[32] = NULL;
    size_t nh = 0, nc, cap = 0;
    int rc;
    memset(o, 0, sizeof(*o));
    rc = notes_sync__doc_get(s, id, &o->d);
    if (rc == NOTES_ENOTFOUND) {
        o->d = NULL;
        return NOTES_OK;
    }
    if (rc) {
        char hex[33];
        notes__hex(hex, id, 16);
        return notes_sync__from_notes(rc, hex);
    }
    o->present = 1;
    if ((rc = notes_doc_heads(o->d, &heads, &nh))) {
        our_note_release(o);
        return notes_sync__from_notes(rc, "heads");
    }
    notes__hash(o->digest, 16, (const uint8_t *)heads, nh * 32, NULL, 0);
    /* What is announced or exported in a round the peer holds once it
     * ends: later pushes start from these heads. */
    if ((rc = notes_sync__known_set(s, id, o->d, heads, nh))) {
        our_note_release(o);
        return rc;
    }
    nc = notes_doc_change_count(o->d);
    for (size_t i = 0; i < nc; i++) {
        notes_change_info ci;
        size_t k;
        /* Every change counts, both branches of an equivocation too: all
         * are in the state, and a peer must get them all to converge. */
        if (notes_doc_change(o->d, i, &ci) != NOTES_OK)
            continue;
        for (k = 0; k < o->nvv && memcmp(o->keys[k], ci.author, 32) != 0; k++)
            ;
        if (k == o->nvv) {
            if (o->nvv == cap) {
                size_t ncap = cap ? cap * 2 : 4;
                uint8_t(*nk)[32] = realloc(o->keys, ncap * 32);
                uint64_t *ns;
                if (nk)
                    o->keys = nk;
                ns = nk ? realloc(o->seqs, ncap * sizeof(*ns)) : NULL;
                if (!ns) {
                    our_note_release(o);
                    return NOTES_ENOMEM;
                }
                o->seqs = ns;
                cap = ncap;
            }
            memcpy(o->keys[k], ci.author, 32);
            o->seqs[k] = 0;
            o->nvv++;
        }
        if (ci.seq > o->seqs[k])
            o->seqs[k] = ci.seq;
    }
    return NOTES_OK;
}

/*
 * A note the initiator did not list, summarized from the versions read for
 * reconciliation this round (its heads, checked against the log's stamp)
 * without opening it: 1 when found. The vector is left empty. It only tells
 * the initiator which of its changes we lack, and an initiator that did not
 * list the note has none to send (docs/protocol.md, "HAVE"). A first sync
 * then opens each note once, to export it, instead of twice.
 */
static int our_note_unlisted(notes_sync_session *s, const uint8_t id[16],
                             struct our_note *o)
{
    const struct note_version *v;
    uint8_t(*heads)[32];
    memset(o, 0, sizeof(*o));
    if (s->recon_state != 2 || !s->nvers)
        return 0;
    /* id is a note_version's first member: the array sorts by it */
    v = bsearch(id, s->vers, s->nvers, sizeof(*s->vers), notes_sync__cmp_id);
    if (!v || !(heads = notes__malloc(v->nheads * 32 + 1)))
        return 0; /* out of memory: our_note tries, and says so */
    memcpy(heads, v->heads, v->nheads * 32);
    if (notes_sync__known_set(s, id, NULL, heads, v->nheads) != NOTES_OK) {
        notes_free(heads);
        return 0;
    }
    memcpy(o->digest, v->digest, 16);
    o->present = 1;
    return 1;
}

/* The peer's seq for author key `pk` in pn (0: none of its changes). */
static uint64_t peer_seq(const notes_sync_session *s,
                         const struct peer_note *pn, const uint8_t pk[32])
{
    for (size_t i = 0; pn && i < pn->nvv; i++)
        if (!memcmp(s->rx_authors[pn->vv[i].author], pk, 32))
            return pn->vv[i].seq;
    return 0;
}

/* Same history on both sides (vector and heads digest agree)? */
static int same_state(const notes_sync_session *s, const struct peer_note *pn,
                      const struct our_note *o)
{
    if (!pn || !o->present || pn->nvv != o->nvv ||
        memcmp(pn->digest, o->digest, 16) != 0)
        return 0;
    for (size_t i = 0; i < o->nvv; i++)
        if (peer_seq(s, pn, o->keys[i]) != o->seqs[i])
            return 0;
    return 1;
}

int notes_sync__queue_raw(notes_sync_session *s, const uint8_t *body,
                          size_t n)
{
    if (s->state != NOTES_SYNC_OPEN)
        return NOTES_EINVAL;
    return queue_frame(s, body, n);
}

/* Seal the frame being built, if any. */
int notes_sync__flush_body(notes_sync_session *s)
{
    int rc = NOTES_OK;
    if (s->body.len)
        rc = queue_frame(s, s->body.data, s->body.len);
    s->body.len = 0;
    return rc;
}

/* Add one message (type, varint length, payload) to the frame being built,
 * sealing it first if the message would not fit. */
int notes_sync__put_msg(notes_sync_session *s, uint8_t type, const uint8_t *p,
                   size_t n)
{
    int rc;
    if (n + 11 > NOTES_SYNC_FRAME_MAX - s->body.len && (rc = notes_sync__flush_body(s)))
        return rc;
    if ((rc = notes__buf_put(&s->body, &type, 1)) ||
        (rc = notes__buf_put_varint(&s->body, n)) ||
        (rc = notes__buf_put(&s->body, p, n)))
        return rc;
    return NOTES_OK;
}

static struct peer_note *find_theirs(notes_sync_session *s,
                                     const uint8_t id[16]);

/* Index of `key` in the table of authors introduced to the peer
 * (ntx_authors when new). */
static size_t tx_author(const notes_sync_session *s, const uint8_t key[32])
{
    size_t k;
    for (k = 0; k < s->ntx_authors && memcmp(s->tx_authors[k], key, 32) != 0;
         k++)
        ;
    return k;
}

/* Append one HAVE entry; author keys new to the peer are introduced. */
static int put_entry(notes_sync_session *s, struct notes_buf *m,
                     const uint8_t id[16], const struct our_note *o)
{
    size_t nvv = o->nvv <= MAX_VV ? o->nvv : 0;
    static const uint8_t zero[16];
    int rc;
    for (size_t i = 0; i < nvv; i++) {
        size_t k = tx_author(s, o->keys[i]);
        if (k == s->ntx_authors && k == MAX_AUTHORS)
            nvv = 0; /* table full: announce nothing, get everything */
    }
    if ((rc = notes__buf_put(m, id, 16)) ||
        (rc = notes__buf_put(m, o->present ? o->digest : zero, 16)) ||
        (rc = notes__buf_put_varint(m, nvv)))
        return rc;
    for (size_t i = 0; i < nvv; i++) {
        size_t k = tx_author(s, o->keys[i]);
        if ((rc = notes__buf_put_varint(m, k)))
            return rc;
        if (k == s->ntx_authors &&
            ((rc = notes__buf_put(m, o->keys[i], 32)) ||
             (rc = notes_sync__author_push(&s->tx_authors, &s->ntx_authors,
                               &s->ctx_authors, o->keys[i]))))
            return rc;
        if ((rc = notes__buf_put_varint(m, o->seqs[i])))
            return rc;
    }
    return NOTES_OK;
}

/*
 * One HAVE message: as many entries as fit. The initiator lists every note
 * of the space it stores. The responder answers after reading the
 * initiator's list: only the notes whose state differs, plus the notes it
 * lacks (with an empty vector); a note it does not list is the same on
 * both sides.
 */
static int produce_have(notes_sync_session *s)
{
    int rc = NOTES_OK;
    size_t count = 0;
    struct notes_buf *m = &s->msg;
    int responder = s->role == NOTES_SYNC_RESPONDER;
    m->len = 0;
    rc = notes__buf_put(m, (const uint8_t[]){0, 0, 0, 0, 0, 0}, 6);
    while (!rc && s->have_next < s->nours) {
        const uint8_t *id = s->ours[s->have_next];
        struct our_note o;
        size_t mark = m->len, marka = s->ntx_authors;
        struct peer_note *pn;
        pn = responder ? find_theirs(s, id) : NULL;
        if (!(responder && !pn && our_note_unlisted(s, id, &o)) &&
            (rc = our_note(s, id, &o)))
            break;
        /* Nothing to tell: no log (unless the initiator has the note, then
         * "I have nothing"), or the same state as the initiator's. */
        if ((!o.present && !pn) ||
            (o.present && responder && same_state(s, pn, &o))) {
            our_note_release(&o);
            s->have_next++;
            continue;
        }
        rc = put_entry(s, m, id, &o);
        our_note_release(&o);
        if (rc == NOTES_ETOOBIG && count > 0) {
            m->len = mark; /* goes in the next message */
            s->ntx_authors = marka;
            rc = NOTES_OK;
            break;
        }
        if (!rc) {
            count++;
            s->have_next++;
        }
    }
    /* Responder: the initiator's notes we lack. */
    while (!rc && responder && s->have_next == s->nours &&
           s->lack_next < s->ntheirs) {
        const uint8_t *id = s->theirs[s->lack_next].id;
        struct our_note none;
        if (s->nours && bsearch(id, s->ours, s->nours, 16, notes_sync__cmp_id)) {
            s->lack_next++;
            continue;
        }
        if (m->len + 33 > m->max)
            break;
        memset(&none, 0, sizeof(none));
        rc = put_entry(s, m, id, &none);
        count++;
        s->lack_next++;
    }
    if (!rc) {
        /* Header: flags, then the count as a minimal varint, moved up to
         * close the gap left for it. */
        int last = s->have_next == s->nours &&
                   (!responder || s->lack_next == s->ntheirs);
        uint8_t tmp[11];
        size_t k = 0;
        uint64_t c = count;
        /* Live: the initiator asks, the responder agrees if asked. */
        int live = last && s->live_want &&
                   (s->role == NOTES_SYNC_INITIATOR || s->live);
        tmp[k++] = (uint8_t)((last ? HAVE_LAST : 0) | (live ? HAVE_LIVE : 0));
        do {
            uint8_t b = c & 0x7f;
            c >>= 7;
            tmp[k++] = (uint8_t)(b | (c ? 0x80 : 0));
        } while (c);
        memmove(m->data + k, m->data + 6, m->len - 6);
        memcpy(m->data, tmp, k);
        m->len = m->len - 6 + k;
        rc = notes_sync__put_msg(s, MSG_HAVE, m->data, m->len);
        if (!rc && last)
            s->have_sent = 1;
    }
    return rc;
}

static struct peer_note *find_theirs(notes_sync_session *s,
                                     const uint8_t id[16])
{
    struct peer_note key = {0};
    memcpy(key.id, id, 16);
    return s->ntheirs ? bsearch(&key, s->theirs, s->ntheirs, sizeof(key),
                                notes_sync__cmp_peer)
                      : NULL;
}

void notes_sync__bundle_free(notes_sync_session *s)
{
    notes_free(s->bundle); /* libnotes' either way: export or compress */
    s->bundle = NULL;
    s->bundle_z = 0;
}

/*
 * Bundles of ZMIN bytes or more travel as one zstd frame (ZBUNDLE) when
 * that is smaller: the text and the operations compress, the hashes and
 * signatures do not.
 */
static int bundle_compress(notes_sync_session *s)
{
    struct notes_buf z;
    int rc;
    if (s->bundle_len < ZMIN)
        return NOTES_OK;
    notes__buf_init(&z, SIZE_MAX);
    rc = notes__compress(&z, s->bundle, s->bundle_len,
                         s->bundle_len >= ZBIG && s->bundle_len <= ZSMALL
                             ? ZLEVEL_SMALL
                             : ZLEVEL,
                         0);
    if (rc == NOTES_ENOMEM) {
        notes__buf_release(&z);
        return rc;
    }
    if (rc || z.len >= s->bundle_len) {
        notes__buf_release(&z);
        return NOTES_OK; /* send it as it is */
    }
    notes_free(s->bundle);
    s->bundle = z.data;
    s->bundle_len = z.len;
    s->bundle_z = 1;
    return NOTES_OK;
}

/*
 * The changes the peer is known to hold, as export's `have` list: for each
 * author of the peer's vector, our change with that author and
 * min(peer's seq, ours). export follows deps and prev chains from them.
 */
static int peer_have(notes_sync_session *s, const struct peer_note *pn,
                     notes_doc *d, uint8_t (**have)[32], size_t *n)
{
    size_t nc = notes_doc_change_count(d), k = 0;
    uint64_t *best, *maxseq;
    *have = NULL;
    *n = 0;
    if (!pn || pn->nvv == 0)
        return NOTES_OK;
    best = calloc(pn->nvv, sizeof(*best));
    maxseq = calloc(pn->nvv, sizeof(*maxseq));
    *have = malloc(pn->nvv * 32);
    if (!best || !maxseq || !*have) {
        free(best);
        free(maxseq);
        free(*have);
        *have = NULL;
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < nc; i++) {
        notes_change_info ci;
        size_t j;
        if (notes_doc_change(d, i, &ci) != NOTES_OK)
            continue;
        for (j = 0; j < pn->nvv &&
                    memcmp(s->rx_authors[pn->vv[j].author], ci.author, 32) != 0;
             j++)
            ;
        if (j == pn->nvv)
            continue;
        /*
         * An author's chain is in log order, so a seq that does not grow
         * means two branches (equivocation): the peer's "seq N" may then
         * be the other branch, and trusting it would keep from it the
         * change that wins here (docs/security.md). Send all of theirs.
         */
        if (ci.seq <= maxseq[j])
            maxseq[j] = UINT64_MAX;
        else if (maxseq[j] != UINT64_MAX)
            maxseq[j] = ci.seq;
        if (ci.seq <= pn->vv[j].seq && ci.seq > best[j]) {
            best[j] = ci.seq;
            memcpy((*have)[j], ci.id, 32);
        }
    }
    for (size_t j = 0; j < pn->nvv; j++)
        if (best[j] && maxseq[j] != UINT64_MAX)
            memmove((*have)[k++], (*have)[j], 32);
    free(best);
    free(maxseq);
    *n = k;
    return NOTES_OK;
}

/* Find the next note the peer lacks something of and export it. */
static int next_export(notes_sync_session *s)
{
    while (s->export_next < s->nours) {
        const uint8_t *id = s->ours[s->export_next++];
        struct peer_note *pn = find_theirs(s, id);
        struct our_note o;
        uint8_t(*have)[32] = NULL;
        size_t nhave = 0;
        uint64_t c;
        int rc = our_note(s, id, &o);
        if (rc)
            return rc;
        if (!o.d)
            continue;
        /* The responder lists only the notes whose state differs. */
        if ((!pn && s->role == NOTES_SYNC_INITIATOR) ||
            same_state(s, pn, &o)) {
            our_note_release(&o);
            continue;
        }
        rc = peer_have(s, pn, o.d, &have, &nhave);
        if (!rc) {
            rc = notes_doc_export(o.d, (const uint8_t(*)[32])have, nhave,
                                  &s->bundle, &s->bundle_len);
            if (rc)
                rc = notes_sync__from_notes(rc, "export");
        }
        free(have);
        our_note_release(&o);
        if (rc)
            return rc;
        c = notes_bundle_count(s->bundle, s->bundle_len);
        if (c == 0) {
            notes_sync__bundle_free(s);
            continue;
        }
        if (notes_sync__bundle_hook)
            notes_sync__bundle_hook(s->bundle, s->bundle_len);
        if ((rc = bundle_compress(s)))
            return rc;
        s->report.changes_sent += c;
        s->report.notes_sent++;
        s->bundle_off = 0;
        memcpy(s->bundle_id, id, 16);
        return NOTES_OK;
    }
    return NOTES_OK;
}

/* One BUNDLE frame: id, total length, the next chunk. */
static int produce_chunk(notes_sync_session *s)
{
    size_t n = s->bundle_len - s->bundle_off;
    int rc;
    if (n > CHUNK)
        n = CHUNK;
    s->msg.len = 0;
    if ((rc = notes__buf_put(&s->msg, s->bundle_id, 16)) ||
        (rc = notes__buf_put_varint(&s->msg, s->bundle_len)) ||
        (rc = notes__buf_put(&s->msg, s->bundle + s->bundle_off, n)) ||
        (rc = notes_sync__put_msg(s, s->bundle_z ? MSG_ZBUNDLE : MSG_BUNDLE,
                      s->msg.data, s->msg.len)))
        return rc;
    s->bundle_off += n;
    if (s->progress)
        s->progress(s->progress_ud, s->bundle_id, 1, s->bundle_off,
                    s->bundle_len);
    if (s->bundle_off == s->bundle_len) {
        notes_sync__bundle_free(s);
        s->bundle_len = s->bundle_off = 0;
    }
    return NOTES_OK;
}

/* Produce the next frame(s) of work, if any. */
static int produce(notes_sync_session *s)
{
    int rc = NOTES_OK;
    if (s->state == NOTES_SYNC_HANDSHAKE && s->hs_step == HS_SEND_M1) {
        if ((rc = notes__buf_reserve(&s->out, SYNC_M1_LEN)))
            return rc;
        sync_hs_m1(&s->hs, s->netkeys[0], s->out.data + s->out.len);
        s->out.len += SYNC_M1_LEN;
        s->hs_step = HS_WAIT_M2;
        return NOTES_OK;
    }
    while (s->state == NOTES_SYNC_OPEN && s->out.len < OUT_BATCH && !rc) {
        if (s->npq && s->live) {
            /* Cursors go ahead of bundle data: they are small and stale
             * fast. */
            rc = notes_sync__put_msg(s, MSG_PRESENCE, s->pq[0], s->pqlen[0]);
            free(s->pq[0]);
            memmove(s->pq, s->pq + 1, (s->npq - 1) * sizeof(*s->pq));
            memmove(s->pqlen, s->pqlen + 1, (s->npq - 1) * sizeof(*s->pqlen));
            s->npq--;
        } else if (s->npush && s->live) {
            /* Queued only between rounds: ahead of the next round's list. */
            rc = notes_sync__put_msg(s, MSG_PUSH, s->pushq[0], s->pushlen[0]);
            free(s->pushq[0]);
            memmove(s->pushq, s->pushq + 1, (s->npush - 1) * sizeof(*s->pushq));
            memmove(s->pushlen, s->pushlen + 1,
                    (s->npush - 1) * sizeof(*s->pushlen));
            s->npush--;
        } else if (s->recon_owe && s->recon_emit < s->rc.out.len) {
            /* Our turn of the reconciliation: its messages in order. */
            const uint8_t *m = s->rc.out.data + s->recon_emit;
            size_t len = notes__load_u32le(m);
            rc = notes_sync__put_msg(s, MSG_RECON, m + 4, len);
            s->recon_emit += 4 + len;
            if (s->recon_emit == s->rc.out.len)
                s->recon_owe = 0;
        } else if (!s->have_sent) {
            if (s->role == NOTES_SYNC_RESPONDER && !s->theirs_done)
                break; /* we answer the initiator's list */
            if (s->role == NOTES_SYNC_INITIATOR && !s->no_recon &&
                s->recon_state == 0) {
                /* M3 goes out first: the responder reads its versions
                 * while we read ours. */
                if (s->out.len || s->body.len)
                    break;
                rc = notes_sync__recon_begin(s);
            }
            else if (s->recon_state == 1)
                break; /* the peer's turn */
            else
                rc = produce_have(s);
        } else if (s->bundle) {
            rc = produce_chunk(s);
        } else if (s->theirs_done && s->export_next < s->nours) {
            rc = next_export(s);
        } else if (s->theirs_done && !s->done_sent) {
            if (!(rc = notes_sync__put_msg(s, MSG_DONE, NULL, 0)))
                s->done_sent = 1;
        } else if (s->poke_queued && s->live) {
            if (!(rc = notes_sync__put_msg(s, MSG_POKE, NULL, 0)))
                s->poke_queued = 0;
        } else if (s->done_sent && s->done_recv && !s->bye_sent &&
                   (!s->live || s->want_bye || s->bye_recv)) {
            if (!(rc = notes_sync__put_msg(s, MSG_BYE, NULL, 0)))
                s->bye_sent = 1;
        } else if (notes_sync__round_over(s) && s->round_pending &&
                   s->role == NOTES_SYNC_INITIATOR && !s->want_bye) {
            s->round_pending = 0;
            rc = notes_sync__round_reset(s);
        } else if (s->nlater && notes_sync_session_idle(s)) {
            rc = notes_sync__push_later(s);
        } else {
            break;
        }
    }
    if (!rc)
        rc = notes_sync__flush_body(s);
    notes_sync__maybe_closed(s);
    if (rc)
        return notes_sync__fail(s, rc);
    return NOTES_OK;
}

int notes_sync_wants_write(const notes_sync_session *s)
{
    if (!s)
        return 0;
    if (s->out.len > s->out_handed)
        return 1;
    if (s->state == NOTES_SYNC_HANDSHAKE)
        return s->hs_step == HS_SEND_M1;
    if (s->state != NOTES_SYNC_OPEN)
        return 0;
    return (s->recon_owe && s->recon_emit < s->rc.out.len) ||
           (!s->have_sent && s->recon_state != 1 &&
            (s->role == NOTES_SYNC_INITIATOR || s->theirs_done)) ||
           s->bundle ||
           (s->theirs_done && (s->export_next < s->nours || !s->done_sent)) ||
           (s->poke_queued && s->live) || (s->npq && s->live) ||
           (s->npush && s->live) || (s->nlater && notes_sync_session_idle(s)) ||
           (s->done_sent && s->done_recv && !s->bye_sent &&
            (!s->live || s->want_bye || s->bye_recv)) ||
           (notes_sync__round_over(s) && s->round_pending &&
            s->role == NOTES_SYNC_INITIATOR && !s->want_bye);
}
int notes_sync_next_msg(notes_sync_session *s, const uint8_t **p, size_t *n)
{
    if (!p || !n)
        return NOTES_EINVAL;
    *p = NULL;
    *n = 0;
    if (!s)
        return NOTES_EINVAL;
    /* What the caller took last time counts as sent. */
    if (s->out_handed) {
        memmove(s->out.data, s->out.data + s->out_handed,
                s->out.len - s->out_handed);
        s->out.len -= s->out_handed;
        s->out_handed = 0;
    }
    if (s->state != NOTES_SYNC_FAILED)
        (void)produce(s);
    /* Even a failed session hands out its final ERROR frame. */
    if (s->out.len) {
        *p = s->out.data;
        *n = s->out.len;
        s->report.bytes_sent += s->out.len;
        s->out_handed = s->out.len; /* dropped on the next call */
        return NOTES_OK;
    }
    return s->state == NOTES_SYNC_FAILED ? s->err : NOTES_OK;
}

