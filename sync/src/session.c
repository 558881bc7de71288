/*
 * session.c: one sync connection as a state machine with no I/O (STYLE 9.8),
 * its core: creation, free, failure, the notes it keeps open and the rounds
 * of a live session. session_out.c builds what is sent (handshake M1, HAVE,
 * BUNDLE chunks, DONE, BYE); session_in.c reads what arrives.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>


#include "notes_sync_presence.h"
#include "session_internal.h"

/* Append a key to an author table (grown by doubling, at most
 * MAX_AUTHORS). */
int notes_sync__author_push(uint8_t (**t)[32], size_t *n, size_t *cap,
                       const uint8_t key[32])
{
    if (*n == MAX_AUTHORS)
        return NOTES_ETOOBIG;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        uint8_t(*nt)[32] = realloc(*t, nc * 32);
        if (!nt)
            return NOTES_ENOMEM;
        *t = nt;
        *cap = nc;
    }
    memcpy((*t)[(*n)++], key, 32);
    return NOTES_OK;
}

int notes_sync__cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

int notes_sync__cmp_peer(const void *a, const void *b)
{
    return memcmp(((const struct peer_note *)a)->id,
                  ((const struct peer_note *)b)->id, 16);
}

/* ---- failure ---- */
/* Live, and the round is over (both DONEs crossed, no goodbye): idle
 * until the next round starts. */
int notes_sync__round_over(const notes_sync_session *s)
{
    return s->live && s->have_sent && s->theirs_done && s->done_sent &&
           s->done_recv && !s->bye_sent && !s->bye_recv;
}

/* Fail the session with rc; the detail is taken from notes_sync_last_detail.
 * After the handshake the peer gets an authenticated ERROR frame. */
int notes_sync__fail(notes_sync_session *s, int rc)
{
    if (s->state == NOTES_SYNC_FAILED)
        return s->err;
    snprintf(s->detail, sizeof(s->detail), "%s", notes_sync_last_detail());
    notes_sync__unlist_unstored(s);
    if (s->state == NOTES_SYNC_OPEN && !s->bye_sent &&
        rc != NOTES_SYNC_EREFUSED) {
        uint8_t msg[300];
        size_t k = 0, tl = strlen(s->detail);
        uint64_t code = (uint64_t)(-(int64_t)rc);
        do {
            uint8_t c = code & 0x7f;
            code >>= 7;
            msg[k++] = (uint8_t)(c | (code ? 0x80 : 0));
        } while (code);
        if (tl > 200)
            tl = 200;
        memcpy(msg + k, s->detail, tl);
        /* Drop the frame being built: the error is all the peer gets. */
        s->body.len = 0;
        if (notes_sync__put_msg(s, MSG_ERROR, msg, k + tl) == NOTES_OK)
            (void)notes_sync__flush_body(s);
    }
    s->state = NOTES_SYNC_FAILED;
    s->err = rc;
    notes_sync__detail("%s", s->detail);
    return rc;
}

int notes_sync__failf(notes_sync_session *s, int rc, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    notes_sync__detail("%s", buf);
    return notes_sync__fail(s, rc);
}

void notes_sync_session_abort(notes_sync_session *s, int err,
                              const char *reason)
{
    char copy[512];
    if (!s)
        return;
    /* reason may be notes_sync_last_detail() itself */
    snprintf(copy, sizeof(copy), "%s",
             reason ? reason : notes_sync_strerror(err));
    notes_sync__detail("%s", copy);
    (void)notes_sync__fail(s, err);
}

/* ---- construction ---- */

int notes_sync_session_new(const notes_sync_config *cfg,
                           notes_sync_session **out)
{
    notes_sync_session *s;
    if (!out)
        return NOTES_EINVAL;
    *out = NULL;
    if (!cfg || !cfg->identity || !cfg->spaces || cfg->nspaces == 0 ||
        (cfg->role != NOTES_SYNC_INITIATOR &&
         cfg->role != NOTES_SYNC_RESPONDER) ||
        (cfg->role == NOTES_SYNC_INITIATOR && cfg->nspaces != 1)) {
        notes_sync__detail("a session needs an identity, a role, and one "
                           "space (initiator) or several (responder)");
        return NOTES_EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NOTES_ENOMEM;
    s->spaces = calloc(cfg->nspaces, sizeof(*s->spaces));
    s->netkeys = calloc(cfg->nspaces, sizeof(*s->netkeys));
    s->plain = malloc(NOTES_SYNC_FRAME_MAX);
    if (!s->spaces || !s->netkeys || !s->plain) {
        notes_sync_session_free(s);
        return NOTES_ENOMEM;
    }
    s->role = cfg->role;
    s->replica = cfg->replica;
    s->id = cfg->identity;
    s->nspaces = cfg->nspaces;
    for (size_t i = 0; i < cfg->nspaces; i++) {
        s->spaces[i] = cfg->spaces[i];
        sync_netkey(s->spaces[i].secret, s->netkeys[i]);
    }
    s->max_bundle = cfg->max_bundle ? cfg->max_bundle : DEFAULT_MAX_BUNDLE;
    s->progress = cfg->progress;
    s->progress_ud = cfg->progress_ud;
    s->accept = cfg->accept;
    s->accept_ud = cfg->accept_ud;
    s->live_want = cfg->live != 0;
    s->state = NOTES_SYNC_HANDSHAKE;
    s->hs_step = s->role == NOTES_SYNC_INITIATOR ? HS_SEND_M1 : HS_WAIT_M1;
    notes__buf_init(&s->in, SYNC_HDR_LEN + NOTES_SYNC_FRAME_MAX + SYNC_TAG_LEN);
    notes__buf_init(&s->out, SIZE_MAX / 4);
    notes__buf_init(&s->body, NOTES_SYNC_FRAME_MAX);
    notes__buf_init(&s->msg, NOTES_SYNC_FRAME_MAX - 16);
    notes__buf_init(&s->rb, (size_t)s->max_bundle);
    s->defer_merge = cfg->defer_merge != 0;
    s->no_recon = cfg->no_recon != 0;
    notes__buf_init(&s->held, SIZE_MAX / 4);
    *out = s;
    return NOTES_OK;
}

void notes_sync_session_free(notes_sync_session *s)
{
    if (!s)
        return;
    notes_sync__unlist_unstored(s); /* a session dropped mid-round */
    if (s->spaces)
        notes__wipe(s->spaces, s->nspaces * sizeof(*s->spaces));
    if (s->netkeys)
        notes__wipe(s->netkeys, s->nspaces * sizeof(*s->netkeys));
    sync_hs_wipe(&s->hs);
    notes__wipe(&s->tx, sizeof(s->tx));
    notes__wipe(&s->rx, sizeof(s->rx));
    free(s->spaces);
    free(s->netkeys);
    free(s->plain);
    notes__buf_release(&s->in);
    notes__buf_release(&s->out);
    notes__buf_release(&s->body);
    notes__buf_release(&s->msg);
    notes__buf_release(&s->rb);
    notes__buf_release(&s->held);
    notes_sync__recon_reset(s); /* gives the whole list back to ours */
    notes_sync__versions_free(s->learned, s->nlearned);
    free(s->ours);
    for (size_t i = 0; i < DOC_CACHE; i++)
        notes_doc_free(s->docs[i].d);
    if (notes_sync__new_flush(s) != NOTES_OK) {
        /* best effort: what is not durable is sent again next time */
    }
    free(s->newdocs);
    notes_sync__bundle_free(s);
    for (size_t i = 0; i < s->ntheirs; i++)
        free(s->theirs[i].vv);
    free(s->tx_authors);
    free(s->rx_authors);
    free(s->theirs);
    for (size_t i = 0; i < s->npq; i++)
        free(s->pq[i]);
    for (size_t i = 0; i < s->npush; i++)
        free(s->pushq[i]);
    for (size_t i = 0; i < s->nknown; i++)
        notes_free(s->known[i].heads);
    free(s->known);
    free(s->later);
    free(s);
}

void notes_sync_session_on_presence(notes_sync_session *s,
                                    notes_sync_presence_fn fn, void *ud)
{
    s->presence = fn;
    s->presence_ud = ud;
}

int notes_sync_session_presence(notes_sync_session *s, const uint8_t *rec,
                                size_t n)
{
    uint8_t *copy;
    size_t i;
    if (!s || s->state != NOTES_SYNC_OPEN || !s->live_want || n < 48 ||
        n > NOTES_PRESENCE_JSON_MAX + 128)
        return NOTES_EINVAL;
    /* A newer record of the same (note, key) replaces the waiting one:
     * only the latest cursor matters. */
    for (i = 0; i < s->npq; i++)
        if (memcmp(s->pq[i], rec, 48) == 0)
            break;
    if (i == s->npq && s->npq == PRESENCE_QUEUE) {
        free(s->pq[0]); /* the oldest goes */
        memmove(s->pq, s->pq + 1, (PRESENCE_QUEUE - 1) * sizeof(*s->pq));
        memmove(s->pqlen, s->pqlen + 1,
                (PRESENCE_QUEUE - 1) * sizeof(*s->pqlen));
        i = --s->npq;
    }
    if (!(copy = malloc(n)))
        return NOTES_ENOMEM;
    memcpy(copy, rec, n);
    if (i < s->npq)
        free(s->pq[i]);
    else
        s->npq++;
    s->pq[i] = copy;
    s->pqlen[i] = n;
    return NOTES_OK;
}

int notes_sync_state(const notes_sync_session *s)
{
    return s ? s->state : NOTES_SYNC_FAILED;
}

int notes_sync_session_error(const notes_sync_session *s)
{
    return s ? s->err : NOTES_EINVAL;
}

const char *notes_sync_session_detail(const notes_sync_session *s)
{
    return s ? s->detail : "";
}

const notes_sync_report *notes_sync_session_report(const notes_sync_session *s)
{
    return s ? &s->report : NULL;
}

/* The space is agreed: load the list of its notes. */
int notes_sync__open_space(notes_sync_session *s)
{
    int rc;
    snprintf(s->report.space, sizeof(s->report.space), "%s",
             s->spaces[s->space].name);
    if (!s->replica)
        return NOTES_OK;
    rc = notes_sync_space_notes(notes_replica_home(s->replica),
                           s->spaces[s->space].name, &s->ours, &s->nours);
    return rc;
}

/*
 * Note `id`, opened at most once per session while it stays among the
 * DOC_CACHE most recently used. OUT *d: borrowed from the cache (valid
 * until the next doc_get). NOTES_ENOTFOUND when it has no log.
 */
int notes_sync__doc_get(notes_sync_session *s, const uint8_t id[16], notes_doc **d)
{
    struct doc_slot *lru = &s->docs[0];
    int rc;
    for (size_t i = 0; i < DOC_CACHE; i++) {
        struct doc_slot *e = &s->docs[i];
        if (e->d && memcmp(e->id, id, 16) == 0) {
            e->used = ++s->docs_tick;
            *d = e->d;
            return NOTES_OK;
        }
        if (!e->d || (lru->d && e->used < lru->used))
            lru = e;
    }
    *d = NULL;
    /* Every use here reads the changes (versions, export, merge): a
     * snapshot would be read and then replayed over anyway. Shared with
     * the other sessions and the page server of this replica (`notes
     * serve`): what one commits or merges, the others export at once. */
    if ((rc = notes_doc_open_shared(s->replica, id, 1, d)))
        return rc;
    s->report.notes_opened++;
    notes_doc_free(lru->d);
    memcpy(lru->id, id, 16);
    lru->d = *d;
    lru->used = ++s->docs_tick;
    return NOTES_OK;
}

/* Make the notes new here that wait in s->newdocs durable together (two
 * syncs for the batch, not five per note) and let them go. On error each
 * is still flushed alone as it is freed (best effort), and the error is
 * returned: the round must not end as if they were stored. */
int notes_sync__new_flush(notes_sync_session *s)
{
    int rc = NOTES_OK;
    if (!s->nnew)
        return NOTES_OK;
    rc = notes_doc_flush_many(s->newdocs, s->nnew);
    if (rc)
        rc = notes_sync__from_notes(rc, "storing the new notes");
    for (size_t i = 0; i < s->nnew; i++)
        notes_doc_free(s->newdocs[i]);
    s->nnew = 0;
    return rc;
}

int notes_sync_session_needs_flush(const notes_sync_session *s)
{
    for (size_t i = 0; s && i < DOC_CACHE; i++)
        if (notes_doc_needs_flush(s->docs[i].d))
            return 1;
    return 0;
}

int notes_sync_session_flush(notes_sync_session *s)
{
    int first = NOTES_OK;
    for (size_t i = 0; s && i < DOC_CACHE; i++) {
        int rc = notes_doc_flush(s->docs[i].d);
        if (rc && !first) {
            first = rc;
            notes_sync__detail("%s", notes_last_detail());
        }
    }
    return first;
}

struct known_note *notes_sync__known_find(notes_sync_session *s,
                                          const uint8_t id[16])
{
    return s->nknown ? bsearch(id, s->known, s->nknown, sizeof(*s->known),
                               notes_sync__cmp_id)
                     : NULL;
}

int notes_sync__known_set(notes_sync_session *s, const uint8_t id[16],
                          notes_doc *d, uint8_t (*heads)[32], size_t nheads)
{
    int rc;
    if (!heads && (rc = notes_doc_heads(d, &heads, &nheads)))
        return rc;
    struct known_note *k = notes_sync__known_find(s, id);
    if (!k) {
        if (s->nknown == s->cknown) {
            size_t nc = s->cknown ? s->cknown * 2 : 16;
            struct known_note *nk = realloc(s->known, nc * sizeof(*nk));
            if (!nk) {
                notes_free(heads);
                return NOTES_ENOMEM;
            }
            s->known = nk;
            s->cknown = nc;
        }
        /* Rounds go through notes in order: usually an append. */
        size_t at = s->nknown;
        if (at && memcmp(s->known[at - 1].id, id, 16) > 0)
            at = notes_sync__lower_id(s->known, at - 1, sizeof(*s->known), id);
        memmove(s->known + at + 1, s->known + at,
                (s->nknown - at) * sizeof(*s->known));
        s->nknown++;
        k = &s->known[at];
        memcpy(k->id, id, 16);
    } else {
        notes_free(k->heads);
    }
    k->heads = heads;
    k->nheads = nheads;
    return NOTES_OK;
}

void notes_sync__maybe_closed(notes_sync_session *s)
{
    if (s->bye_sent && s->bye_recv && s->state == NOTES_SYNC_OPEN)
        s->state = NOTES_SYNC_CLOSED;
}


/*
 * A new round of a live session: forget the peer's last list, read the
 * space's list again and catch the kept notes up with their logs.
 */
int notes_sync__round_reset(notes_sync_session *s)
{
    int rc;
    for (size_t i = 0; i < s->ntheirs; i++)
        free(s->theirs[i].vv);
    s->ntheirs = 0;
    s->theirs_done = 0;
    s->have_sent = s->done_sent = s->done_recv = 0;
    s->have_next = s->export_next = s->lack_next = 0;
    notes_sync__recon_reset(s);
    free(s->ours);
    s->ours = NULL;
    s->nours = 0;
    if ((rc = notes_sync__open_space(s)))
        return rc;
    for (size_t i = 0; i < DOC_CACHE; i++)
        if (s->docs[i].d && notes_doc_refresh(s->docs[i].d) != NOTES_OK) {
            notes_doc_free(s->docs[i].d);
            s->docs[i].d = NULL;
        }
    return NOTES_OK;
}

int notes_sync_session_idle(const notes_sync_session *s)
{
    return s && s->state == NOTES_SYNC_OPEN && notes_sync__round_over(s) &&
           !s->round_pending && !(s->poke_queued && s->live) &&
           !s->want_bye;
}

int notes_sync_session_round(notes_sync_session *s)
{
    if (!s || s->state != NOTES_SYNC_OPEN || !s->live_want)
        return NOTES_EINVAL;
    if (s->role == NOTES_SYNC_INITIATOR)
        s->round_pending = 1;
    else
        s->poke_queued = 1; /* sent once the session is known to be live */
    return NOTES_OK;
}

/*
 * A push sends what a note gained since the heads the peer is known to hold
 * (recorded when the note was announced or exported in a round, and moved
 * on by each push and by each merge of the peer's changes that brought
 * nothing else). A change merged from this very peer is already within
 * those heads: nothing new, nothing echoed back.
 */
static int push_now(notes_sync_session *s, const uint8_t id[16])
{
    char space[NOTES_SPACE_NAME_MAX + 1];
    uint8_t *bundle = NULL;
    notes_doc *d;
    size_t n = 0;
    int rc;
    struct known_note *k = notes_sync__known_find(s, id);
    if (!k) {
        /* Never announced in this session: another space's note, a
         * personal one (nothing to do), or one new to the space. */
        if (notes_sync_space_of_note(notes_replica_home(s->replica), id,
                                     space) != NOTES_OK ||
            strcmp(space, s->spaces[s->space].name) != 0)
            return NOTES_OK;
        return NOTES_ENOTFOUND;
    }
    if (s->npush == PUSH_QUEUE)
        return NOTES_ETOOBIG;
    /* The session's copy, caught up with the log: a commit or merge by
     * another process (a handle of this one is shared: nothing to read). */
    int fresh = 1;
    for (size_t i = 0; i < DOC_CACHE; i++)
        if (s->docs[i].d && !memcmp(s->docs[i].id, id, 16))
            fresh = 0;
    if ((rc = notes_sync__doc_get(s, id, &d)))
        return rc;
    if (!fresh && (rc = notes_doc_refresh(d)))
        return rc;
    rc = notes_doc_export(d, (const uint8_t(*)[32])k->heads, k->nheads,
                          &bundle, &n);
    if (rc)
        return rc;
    size_t c = notes_bundle_count(bundle, n);
    if (c == 0) {
        notes_free(bundle);
        return NOTES_OK;
    }
    uint8_t *msg = n <= PUSH_MAX ? malloc(16 + n) : NULL;
    if (!msg) {
        notes_free(bundle);
        return n <= PUSH_MAX ? NOTES_ENOMEM : NOTES_ETOOBIG;
    }
    memcpy(msg, id, 16);
    memcpy(msg + 16, bundle, n);
    notes_free(bundle);
    if ((rc = notes_sync__known_set(s, id, d, NULL, 0))) {
        free(msg);
        return rc;
    }
    if (notes_sync__bundle_hook)
        notes_sync__bundle_hook(msg + 16, n);
    s->pushq[s->npush] = msg;
    s->pushlen[s->npush++] = 16 + n;
    s->report.changes_sent += c;
    s->report.pushes_sent++;
    return NOTES_OK;
}

/* Mid-round, a change waits for the round's end (a round started for each
 * change while one runs would keep a busy session in rounds for good):
 * then it is pushed, or, if it cannot be, a round follows. */
int notes_sync_session_push(notes_sync_session *s, const uint8_t id[16])
{
    if (!s || !id || !s->live || s->state != NOTES_SYNC_OPEN || !s->replica ||
        s->want_bye)
        return NOTES_EINVAL;
    if (notes_sync_session_idle(s))
        return push_now(s, id);
    for (size_t i = 0; i < s->nlater; i++)
        if (!memcmp(s->later[i], id, 16))
            return NOTES_OK;
    if (s->nlater == PUSH_LATER)
        return NOTES_ETOOBIG;
    if (!s->later && !(s->later = malloc(PUSH_LATER * sizeof(*s->later))))
        return NOTES_ENOMEM;
    memcpy(s->later[s->nlater++], id, 16);
    return NOTES_OK;
}

int notes_sync__push_later(notes_sync_session *s)
{
    int round = 0;
    for (size_t i = 0; i < s->nlater && !round; i++)
        round = push_now(s, s->later[i]) != NOTES_OK;
    s->nlater = 0;
    if (round) {
        if (s->role == NOTES_SYNC_INITIATOR)
            s->round_pending = 1;
        else
            s->poke_queued = 1;
    }
    return NOTES_OK;
}

void notes_sync_session_end(notes_sync_session *s)
{
    if (s)
        s->want_bye = 1;
}


/* ---- reconciliation (recon.c over versions.c) ---- */

void notes_sync__session_no_recon(notes_sync_session *s)
{
    if (s->recon_state == 0)
        s->no_recon = 1;
}

int notes_sync__listed(const notes_sync_session *s, const uint8_t id[16])
{
    const void *l = s->all ? (const void *)s->all : (const void *)s->ours;
    size_t n = s->all ? s->nall : s->nours;
    return n && bsearch(id, l, n, 16, notes_sync__cmp_id) != NULL;
}

void notes_sync__recon_reset(notes_sync_session *s)
{
    notes_sync__recon_free(&s->rc);
    notes_sync__versions_free(s->vers, s->nvers);
    free(s->items);
    s->vers = NULL;
    s->items = NULL;
    s->nvers = 0;
    if (s->all) {
        free(s->ours);
        s->ours = s->all;
        s->nours = s->nall;
        s->all = NULL;
        s->nall = 0;
    }
    free(s->fresh);
    free(s->fresh_stored);
    s->fresh = NULL;
    s->fresh_stored = NULL;
    s->nfresh = 0;
    s->recon_state = 0;
    s->recon_owe = 0;
    s->recon_heard = 0;
    s->recon_emit = 0;
}

int notes_sync__recon_begin(notes_sync_session *s)
{
    int rc;
    if (s->replica && (rc = notes_sync__versions(s, &s->vers, &s->nvers)))
        return rc;
    if (!(s->items = malloc((s->nvers + 1) * sizeof(*s->items))))
        return NOTES_ENOMEM;
    for (size_t i = 0; i < s->nvers; i++) {
        memcpy(s->items[i].id, s->vers[i].id, 16);
        memcpy(s->items[i].digest, s->vers[i].digest, 16);
    }
    if ((rc = notes_sync__recon_init(&s->rc, s->items, s->nvers)))
        return rc;
    s->recon_state = 1;
    s->recon_emit = 0;
    if (s->role == NOTES_SYNC_INITIATOR) {
        if ((rc = notes_sync__recon_start(&s->rc)))
            return rc;
        s->recon_owe = 1;
    }
    return NOTES_OK;
}

/* For the notes found equal, the peer holds our heads: a live session's
 * later pushes start from them. One sorted merge into s->known. */
static int known_equal(notes_sync_session *s)
{
    size_t m = 0, i, j, k;
    const uint8_t(*d)[16] = (const uint8_t(*)[16])s->rc.diff;
    for (i = 0, j = 0; i < s->nvers; i++) {
        while (j < s->rc.ndiff && memcmp(d[j], s->vers[i].id, 16) < 0)
            j++;
        m += !(j < s->rc.ndiff && !memcmp(d[j], s->vers[i].id, 16));
    }
    struct known_note *nk = malloc((s->nknown + m + 1) * sizeof(*nk));
    if (!nk)
        return NOTES_ENOMEM;
    for (i = 0, j = 0, k = 0; i < s->nvers; i++) {
        const struct note_version *v = &s->vers[i];
        while (j < s->rc.ndiff && memcmp(d[j], v->id, 16) < 0)
            j++;
        if (j < s->rc.ndiff && !memcmp(d[j], v->id, 16))
            continue;
        struct known_note *e = &nk[k++];
        memcpy(e->id, v->id, 16);
        e->nheads = v->nheads;
        if (!(e->heads = malloc(v->nheads * 32 + 1))) {
            while (k-- > 0)
                free(nk[k].heads);
            free(nk);
            return NOTES_ENOMEM;
        }
        memcpy(e->heads, v->heads, v->nheads * 32);
    }
    /* Merge with what is known already (an entry of this round wins). */
    size_t cap = s->nknown + k + 1;
    struct known_note *out = malloc(cap * sizeof(*out));
    size_t a = 0, b = 0, n = 0;
    if (!out) {
        while (k-- > 0)
            free(nk[k].heads);
        free(nk);
        return NOTES_ENOMEM;
    }
    while (a < s->nknown || b < k) {
        int c = a == s->nknown ? 1 : b == k ? -1
                                            : memcmp(s->known[a].id, nk[b].id, 16);
        if (c < 0)
            out[n++] = s->known[a++];
        else if (c > 0)
            out[n++] = nk[b++];
        else {
            notes_free(s->known[a++].heads);
            out[n++] = nk[b++];
        }
    }
    free(nk);
    free(s->known);
    s->known = out;
    s->nknown = n;
    s->cknown = cap;
    return NOTES_OK;
}

/* Notes the peer has and this replica lacks entirely (no log, no state)
 * are listed in the space at once, in one write, before their bundles
 * arrive: one list rewrite per sync instead of one per note. A note that
 * is not then stored stays listed without a log, which the next sync
 * fills, as when a crash comes between listing and storing. */
static int list_ahead(notes_sync_session *s)
{
    const char *home = notes_replica_home(s->replica);
    uint8_t(*want)[16] = malloc((s->rc.ndiff + 1) * 16);
    size_t nw = 0;
    int rc;
    char *path = malloc(strlen(home) + sizeof("/notes/.state") + 32);
    if (!want || !path) {
        free(want);
        free(path);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < s->rc.ndiff; i++) {
        const uint8_t *id = s->rc.diff[i];
        char hex[33];
        struct stat st;
        if (notes_sync__listed(s, id))
            continue;
        notes__hex(hex, id, 16);
        sprintf(path, "%s/notes/%s.log", home, hex);
        if (stat(path, &st) == 0 || errno != ENOENT)
            continue; /* a personal note here, or unknown: the slow path */
        sprintf(path, "%s/notes/%s.state", home, hex);
        if (stat(path, &st) == 0 || errno != ENOENT)
            continue;
        memcpy(want[nw++], id, 16);
    }
    free(path);
    if (nw == 0) {
        free(want);
        return NOTES_OK;
    }
    rc = notes_sync__space_add_many(home, s->spaces[s->space].name,
                                    (const uint8_t(*)[16])want, nw,
                                    &s->fresh, &s->nfresh);
    free(want);
    if (rc || s->nfresh == 0)
        return rc;
    if (!(s->fresh_stored = calloc(s->nfresh, 1)))
        return NOTES_ENOMEM;
    /* all := all + fresh, sorted (both are) */
    uint8_t(*u)[16] = malloc((s->nall + s->nfresh) * 16);
    size_t a = 0, b = 0, n = 0;
    if (!u)
        return NOTES_ENOMEM;
    while (a < s->nall || b < s->nfresh) {
        if (b == s->nfresh || (a < s->nall && memcmp(s->all[a], s->fresh[b], 16) < 0))
            memcpy(u[n++], s->all[a++], 16);
        else
            memcpy(u[n++], s->fresh[b++], 16);
    }
    free(s->all);
    s->all = u;
    s->nall = n;
    return NOTES_OK;
}

void notes_sync__unlist_unstored(notes_sync_session *s)
{
    size_t k = 0;
    if (!s->nfresh || !s->fresh_stored || !s->replica)
        return;
    for (size_t i = 0; i < s->nfresh; i++)
        if (!s->fresh_stored[i])
            memmove(s->fresh[k++], s->fresh[i], 16);
    if (k && notes_sync__space_remove_many(notes_replica_home(s->replica),
                                           s->spaces[s->space].name,
                                           (const uint8_t(*)[16])s->fresh,
                                           k) != NOTES_OK) {
        /* listed without a log: harmless, the next sync fills it */
    }
    free(s->fresh);
    free(s->fresh_stored);
    s->fresh = NULL;
    s->fresh_stored = NULL;
    s->nfresh = 0;
}

int notes_sync__recon_apply(notes_sync_session *s)
{
    uint8_t(*w)[16];
    size_t i = 0, j = 0, k = 0;
    int rc;
    notes_sync__recon_finish(&s->rc);
    s->recon_state = 2;
    if (!(w = malloc((s->rc.ndiff + 1) * 16)))
        return NOTES_ENOMEM;
    while (i < s->nours && j < s->rc.ndiff) {
        int c = memcmp(s->ours[i], s->rc.diff[j], 16);
        if (c == 0) {
            memcpy(w[k++], s->ours[i], 16);
            i++;
            j++;
        } else if (c < 0)
            i++;
        else
            j++;
    }
    s->all = s->ours;
    s->nall = s->nours;
    s->ours = w;
    s->nours = k;
    if (s->live_want && (rc = known_equal(s)))
        return rc;
    if (s->replica && (rc = list_ahead(s)))
        return rc;
    return NOTES_OK;
}
