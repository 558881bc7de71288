/*
 * session.c: one sync connection as a state machine with no I/O (STYLE 9.8).
 * Bytes in: notes_sync_receive; bytes out: notes_sync_next_msg. Handshake
 * (frame.c), then frames carrying HAVE (each note's version vector), BUNDLE
 * chunks (what the peer lacks, from notes_doc_export), DONE, BYE; ERROR
 * ends a session.
 * Bundles are exported lazily, one frame at a time, so memory stays bounded
 * by one bundle plus one frame whatever the transport's pace.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zstd.h>

#include "notes_sync_presence.h"
#include "sync_internal.h"

enum msg_type {
    MSG_HAVE = 1,
    MSG_BUNDLE = 2,
    MSG_DONE = 3,
    MSG_BYE = 4,
    MSG_ERROR = 5,
    MSG_ZBUNDLE = 6,
    MSG_POKE = 7,
    MSG_PRESENCE = 8
};

#define PRESENCE_QUEUE 64          /* records waiting to be sent */

#define HAVE_LAST 1
#define HAVE_LIVE 2                /* with LAST: stay open after the round */
#define CHUNK (64u << 10)          /* bundle bytes per frame */
#define OUT_BATCH (256u << 10)     /* stop producing frames past this */
#define MAX_PEER_NOTES 100000      /* notes a peer may announce */
#define MAX_VV 4096                /* authors per note announced; more: none */
#define MAX_AUTHORS 65536          /* author table entries per direction */
#define DEFAULT_MAX_BUNDLE (64ull << 20)
#define ZEXPAND_MAX 256u           /* most a compressed bundle may expand */
#define ZEXPAND_FLOOR (1u << 20)   /* ... beyond this size */
#define DOC_CACHE 16               /* notes kept open per session */
#define ZMIN 1024                  /* smaller bundles go uncompressed */
#define ZLEVEL_SMALL 19            /* zstd level up to ZSMALL bytes */
#define ZSMALL (1u << 20)
#define ZLEVEL 3                   /* above */

/* Handshake steps. */
enum hs_step {
    HS_SEND_M1,   /* initiator: M1 not yet produced */
    HS_WAIT_M2,   /* initiator */
    HS_WAIT_M1,   /* responder */
    HS_WAIT_M3,   /* responder */
    HS_DONE
};

/* One author's position: it holds that author's changes 1..seq. */
struct vv_ent {
    uint32_t author;              /* index into the author table */
    uint64_t seq;
};

/* What the peer announced for a note. */
struct peer_note {
    uint8_t id[16];
    uint8_t digest[16];           /* of its sorted heads */
    size_t nvv;
    struct vv_ent *vv;            /* owned; sorted by author index */
};

/* A note opened in this session, kept for its later steps. */
struct doc_slot {
    uint8_t id[16];
    notes_doc *d;                 /* NULL: a free slot */
    uint64_t used;
};

/* Our state of one note, for announcing and comparing. */
struct our_note {
    notes_doc *d;                 /* NULL: no log yet; else borrowed from
                                     the session's cache */
    uint8_t digest[16];
    size_t nvv;
    uint8_t (*keys)[32];          /* nvv authors (owned) */
    uint64_t *seqs;               /* their highest seq here (owned) */
};

struct notes_sync_session {
    int role;
    notes_replica *replica;
    const notes_identity *id;
    notes_sync_space *spaces;          /* owned copies, wiped on free */
    uint8_t (*netkeys)[32];
    size_t nspaces, space;        /* space: index of the agreed one */
    uint64_t max_bundle;
    notes_sync_progress_fn progress;
    void *progress_ud;
    notes_sync_accept_fn accept;
    void *accept_ud;

    int state, err;
    char detail[512];
    int hs_step;
    struct sync_hs hs;
    struct sync_dir tx, rx;

    /* input */
    struct sync_buf in;           /* the unit being assembled */
    int in_body;                  /* 0: expecting a header, 1: a body */
    size_t body_len;
    uint8_t *plain;               /* NOTES_SYNC_FRAME_MAX bytes */

    /* output */
    struct sync_buf out;          /* sealed bytes to send */
    size_t out_handed;            /* of which handed out (front of out) */
    struct sync_buf body;         /* the frame body being built */
    struct sync_buf msg;          /* the message being built */

    /* our side of the replication */
    uint8_t (*ours)[16];          /* the space's notes, sorted */
    size_t nours, have_next, export_next;
    size_t lack_next;             /* responder: theirs[] we lack, listed */
    uint8_t (*tx_authors)[32];    /* author keys introduced to the peer */
    size_t ntx_authors, ctx_authors;
    uint8_t (*rx_authors)[32];    /* author keys the peer introduced */
    size_t nrx_authors, crx_authors;
    int have_sent, done_sent, bye_sent;
    uint8_t *bundle;              /* the bundle being sent */
    int bundle_z;                 /* 1: zstd (malloc'd), 0: raw (notes_free) */
    size_t bundle_len, bundle_off;
    uint8_t bundle_id[16];

    /* the peer's side */
    struct peer_note *theirs;
    size_t ntheirs, captheirs;
    int theirs_done, done_recv, bye_recv;
    int rb_active;                /* a bundle is being received */
    int rb_z;                     /* it is compressed (ZBUNDLE) */
    uint8_t rb_id[16];
    uint64_t rb_total;
    int rb_new;                   /* the note is new to this replica */
    struct sync_buf rb;

    /* Opening a note verifies its log: each note is opened once per
     * session (announce, export, merge), up to DOC_CACHE of them. */
    struct doc_slot docs[DOC_CACHE];
    uint64_t docs_tick;

    /* live sessions */
    int live_want, live;          /* asked/accepted; both sides agreed */
    int round_pending;            /* initiator: start one when idle */
    int poke_queued;              /* responder: a POKE to send */
    int want_bye;                 /* end after this round */

    /* presence (live sessions): records to send, and who hears ours */
    uint8_t *pq[PRESENCE_QUEUE];
    size_t pqlen[PRESENCE_QUEUE], npq;
    notes_sync_presence_fn presence;
    void *presence_ud;

    notes_sync_report report;
};

void (*notes_sync__bundle_hook)(uint8_t *bundle, size_t n);

static void hex16(const uint8_t id[16], char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[(size_t)2 * i] = hx[id[i] >> 4];
        out[(size_t)2 * i + 1] = hx[id[i] & 15];
    }
    out[32] = '\0';
}

/* Append a key to an author table (grown by doubling, at most
 * MAX_AUTHORS). */
static int author_push(uint8_t (**t)[32], size_t *n, size_t *cap,
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

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static int cmp_peer(const void *a, const void *b)
{
    return memcmp(((const struct peer_note *)a)->id,
                  ((const struct peer_note *)b)->id, 16);
}

/* ---- failure ---- */

static int queue_frame(notes_sync_session *s, const uint8_t *body, size_t n);
static void bundle_free(notes_sync_session *s);
static int round_reset(notes_sync_session *s);

/* Live, and the round is over (both DONEs crossed, no goodbye): idle
 * until the next round starts. */
static int round_over(const notes_sync_session *s)
{
    return s->live && s->have_sent && s->theirs_done && s->done_sent &&
           s->done_recv && !s->bye_sent && !s->bye_recv;
}
static int put_msg(notes_sync_session *s, uint8_t type, const uint8_t *p,
                   size_t n);
static int flush_body(notes_sync_session *s);

/* Fail the session with rc; the detail is taken from notes_sync_last_detail.
 * After the handshake the peer gets an authenticated ERROR frame. */
static int fail(notes_sync_session *s, int rc)
{
    if (s->state == NOTES_SYNC_FAILED)
        return s->err;
    snprintf(s->detail, sizeof(s->detail), "%s", notes_sync_last_detail());
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
        if (put_msg(s, MSG_ERROR, msg, k + tl) == NOTES_OK)
            (void)flush_body(s);
    }
    s->state = NOTES_SYNC_FAILED;
    s->err = rc;
    notes_sync__detail("%s", s->detail);
    return rc;
}

static int failf(notes_sync_session *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(notes_sync_session *s, int rc, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    notes_sync__detail("%s", buf);
    return fail(s, rc);
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
    (void)fail(s, err);
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
    sync_buf_init(&s->in, SYNC_HDR_LEN + NOTES_SYNC_FRAME_MAX + SYNC_TAG_LEN);
    sync_buf_init(&s->out, SIZE_MAX / 4);
    sync_buf_init(&s->body, NOTES_SYNC_FRAME_MAX);
    sync_buf_init(&s->msg, NOTES_SYNC_FRAME_MAX - 16);
    sync_buf_init(&s->rb, (size_t)s->max_bundle);
    *out = s;
    return NOTES_OK;
}

void notes_sync_session_free(notes_sync_session *s)
{
    if (!s)
        return;
    if (s->spaces)
        sodium_memzero(s->spaces, s->nspaces * sizeof(*s->spaces));
    if (s->netkeys)
        sodium_memzero(s->netkeys, s->nspaces * sizeof(*s->netkeys));
    sync_hs_wipe(&s->hs);
    sodium_memzero(&s->tx, sizeof(s->tx));
    sodium_memzero(&s->rx, sizeof(s->rx));
    free(s->spaces);
    free(s->netkeys);
    free(s->plain);
    sync_buf_release(&s->in);
    sync_buf_release(&s->out);
    sync_buf_release(&s->body);
    sync_buf_release(&s->msg);
    sync_buf_release(&s->rb);
    free(s->ours);
    for (size_t i = 0; i < DOC_CACHE; i++)
        notes_doc_free(s->docs[i].d);
    bundle_free(s);
    for (size_t i = 0; i < s->ntheirs; i++)
        free(s->theirs[i].vv);
    free(s->tx_authors);
    free(s->rx_authors);
    free(s->theirs);
    for (size_t i = 0; i < s->npq; i++)
        free(s->pq[i]);
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

/* ---- output ---- */

static int queue_frame(notes_sync_session *s, const uint8_t *body, size_t n)
{
    int rc = sync_buf_reserve(&s->out, SYNC_HDR_LEN + n + SYNC_TAG_LEN);
    if (rc)
        return rc;
    sync_frame_seal(&s->tx, body, n, s->out.data + s->out.len);
    s->out.len += SYNC_HDR_LEN + n + SYNC_TAG_LEN;
    s->report.frames_sent++;
    return NOTES_OK;
}

/* The space is agreed: load the list of its notes. */
static int open_space(notes_sync_session *s)
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
static int doc_get(notes_sync_session *s, const uint8_t id[16], notes_doc **d)
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
    if ((rc = notes_doc_open(s->replica, id, d)))
        return rc;
    notes_doc_free(lru->d);
    memcpy(lru->id, id, 16);
    lru->d = *d;
    lru->used = ++s->docs_tick;
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
    rc = doc_get(s, id, &o->d);
    if (rc == NOTES_ENOTFOUND) {
        o->d = NULL;
        return NOTES_OK;
    }
    if (rc) {
        char hex[33];
        hex16(id, hex);
        return notes_sync__from_notes(rc, hex);
    }
    if ((rc = notes_doc_heads(o->d, &heads, &nh))) {
        our_note_release(o);
        return notes_sync__from_notes(rc, "heads");
    }
    crypto_generichash(o->digest, 16, (const uint8_t *)heads, nh * 32, NULL,
                       0);
    notes_free(heads);
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
    if (!pn || !o->d || pn->nvv != o->nvv ||
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
static int flush_body(notes_sync_session *s)
{
    int rc = NOTES_OK;
    if (s->body.len)
        rc = queue_frame(s, s->body.data, s->body.len);
    s->body.len = 0;
    return rc;
}

/* Add one message (type, varint length, payload) to the frame being built,
 * sealing it first if the message would not fit. */
static int put_msg(notes_sync_session *s, uint8_t type, const uint8_t *p,
                   size_t n)
{
    int rc;
    if (n + 11 > NOTES_SYNC_FRAME_MAX - s->body.len && (rc = flush_body(s)))
        return rc;
    if ((rc = sync_buf_put(&s->body, &type, 1)) ||
        (rc = sync_buf_put_varint(&s->body, n)) ||
        (rc = sync_buf_put(&s->body, p, n)))
        return rc;
    return NOTES_OK;
}

static struct peer_note *find_theirs(notes_sync_session *s,
                                     const uint8_t id[16]);

/* Append one HAVE entry; author keys new to the peer are introduced. */
static int put_entry(notes_sync_session *s, struct sync_buf *m,
                     const uint8_t id[16], const struct our_note *o)
{
    size_t nvv = o->nvv <= MAX_VV ? o->nvv : 0;
    static const uint8_t zero[16];
    int rc;
    for (size_t i = 0; i < nvv; i++) {
        size_t k;
        for (k = 0; k < s->ntx_authors &&
                    memcmp(s->tx_authors[k], o->keys[i], 32) != 0;
             k++)
            ;
        if (k == s->ntx_authors && k == MAX_AUTHORS)
            nvv = 0; /* table full: announce nothing, get everything */
    }
    if ((rc = sync_buf_put(m, id, 16)) ||
        (rc = sync_buf_put(m, o->d ? o->digest : zero, 16)) ||
        (rc = sync_buf_put_varint(m, nvv)))
        return rc;
    for (size_t i = 0; i < nvv; i++) {
        size_t k;
        for (k = 0; k < s->ntx_authors &&
                    memcmp(s->tx_authors[k], o->keys[i], 32) != 0;
             k++)
            ;
        if ((rc = sync_buf_put_varint(m, k)))
            return rc;
        if (k == s->ntx_authors &&
            ((rc = sync_buf_put(m, o->keys[i], 32)) ||
             (rc = author_push(&s->tx_authors, &s->ntx_authors,
                               &s->ctx_authors, o->keys[i]))))
            return rc;
        if ((rc = sync_buf_put_varint(m, o->seqs[i])))
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
    struct sync_buf *m = &s->msg;
    int responder = s->role == NOTES_SYNC_RESPONDER;
    m->len = 0;
    rc = sync_buf_put(m, (const uint8_t[]){0, 0, 0, 0, 0, 0}, 6);
    while (!rc && s->have_next < s->nours) {
        const uint8_t *id = s->ours[s->have_next];
        struct our_note o;
        size_t mark = m->len, marka = s->ntx_authors;
        struct peer_note *pn;
        if ((rc = our_note(s, id, &o)))
            break;
        pn = responder ? find_theirs(s, id) : NULL;
        /* Nothing to tell: no log (unless the initiator has the note, then
         * "I have nothing"), or the same state as the initiator's. */
        if ((!o.d && !pn) || (o.d && responder && same_state(s, pn, &o))) {
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
        if (s->nours && bsearch(id, s->ours, s->nours, 16, cmp_id)) {
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
        rc = put_msg(s, MSG_HAVE, m->data, m->len);
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
                                cmp_peer)
                      : NULL;
}

static void bundle_free(notes_sync_session *s)
{
    if (s->bundle_z)
        free(s->bundle);
    else
        notes_free(s->bundle);
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
    size_t cap, got;
    uint8_t *z;
    if (s->bundle_len < ZMIN)
        return NOTES_OK;
    cap = ZSTD_compressBound(s->bundle_len);
    if (!(z = malloc(cap)))
        return NOTES_ENOMEM;
    got = ZSTD_compress(z, cap, s->bundle, s->bundle_len,
                        s->bundle_len <= ZSMALL ? ZLEVEL_SMALL : ZLEVEL);
    if (ZSTD_isError(got) || got >= s->bundle_len) {
        free(z);
        return NOTES_OK; /* send it as it is */
    }
    notes_free(s->bundle);
    s->bundle = z;
    s->bundle_len = got;
    s->bundle_z = 1;
    return NOTES_OK;
}

/*
 * Number of changes in a bundle (docs/format.md, "Bundles"): version 1 is
 * the magic and a varint count; version 2 the magic, the note id, then a
 * pack: "NP\x01", the author count and keys, the change count.
 */
static uint64_t bundle_count(const uint8_t *b, size_t n)
{
    const uint8_t *p = b + 4, *end = b + n;
    uint64_t c = 0, na;
    if (n < 5)
        return 0;
    if (b[3] == 2) {
        p += 16 + 3;
        if (p > end || sync_get_varint(&p, end, &na) ||
            na > (uint64_t)(end - p) / 32)
            return 0;
        p += na * 32;
    }
    if (sync_get_varint(&p, end, &c))
        return 0;
    return c;
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
        c = bundle_count(s->bundle, s->bundle_len);
        if (c == 0) {
            bundle_free(s);
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
    if ((rc = sync_buf_put(&s->msg, s->bundle_id, 16)) ||
        (rc = sync_buf_put_varint(&s->msg, s->bundle_len)) ||
        (rc = sync_buf_put(&s->msg, s->bundle + s->bundle_off, n)) ||
        (rc = put_msg(s, s->bundle_z ? MSG_ZBUNDLE : MSG_BUNDLE,
                      s->msg.data, s->msg.len)))
        return rc;
    s->bundle_off += n;
    if (s->progress)
        s->progress(s->progress_ud, s->bundle_id, 1, s->bundle_off,
                    s->bundle_len);
    if (s->bundle_off == s->bundle_len) {
        bundle_free(s);
        s->bundle_len = s->bundle_off = 0;
    }
    return NOTES_OK;
}

static void maybe_closed(notes_sync_session *s)
{
    if (s->bye_sent && s->bye_recv && s->state == NOTES_SYNC_OPEN)
        s->state = NOTES_SYNC_CLOSED;
}

/* Produce the next frame(s) of work, if any. */
static int produce(notes_sync_session *s)
{
    int rc = NOTES_OK;
    if (s->state == NOTES_SYNC_HANDSHAKE && s->hs_step == HS_SEND_M1) {
        if ((rc = sync_buf_reserve(&s->out, SYNC_M1_LEN)))
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
            rc = put_msg(s, MSG_PRESENCE, s->pq[0], s->pqlen[0]);
            free(s->pq[0]);
            memmove(s->pq, s->pq + 1, (s->npq - 1) * sizeof(*s->pq));
            memmove(s->pqlen, s->pqlen + 1, (s->npq - 1) * sizeof(*s->pqlen));
            s->npq--;
        } else if (!s->have_sent) {
            if (s->role == NOTES_SYNC_RESPONDER && !s->theirs_done)
                break; /* we answer the initiator's list */
            rc = produce_have(s);
        } else if (s->bundle) {
            rc = produce_chunk(s);
        } else if (s->theirs_done && s->export_next < s->nours) {
            rc = next_export(s);
        } else if (s->theirs_done && !s->done_sent) {
            if (!(rc = put_msg(s, MSG_DONE, NULL, 0)))
                s->done_sent = 1;
        } else if (s->poke_queued && s->live) {
            if (!(rc = put_msg(s, MSG_POKE, NULL, 0)))
                s->poke_queued = 0;
        } else if (s->done_sent && s->done_recv && !s->bye_sent &&
                   (!s->live || s->want_bye || s->bye_recv)) {
            if (!(rc = put_msg(s, MSG_BYE, NULL, 0)))
                s->bye_sent = 1;
        } else if (round_over(s) && s->round_pending &&
                   s->role == NOTES_SYNC_INITIATOR && !s->want_bye) {
            s->round_pending = 0;
            rc = round_reset(s);
        } else {
            break;
        }
    }
    if (!rc)
        rc = flush_body(s);
    maybe_closed(s);
    if (rc)
        return fail(s, rc);
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
    return (!s->have_sent &&
            (s->role == NOTES_SYNC_INITIATOR || s->theirs_done)) ||
           s->bundle ||
           (s->theirs_done && (s->export_next < s->nours || !s->done_sent)) ||
           (s->poke_queued && s->live) || (s->npq && s->live) ||
           (s->done_sent && s->done_recv && !s->bye_sent &&
            (!s->live || s->want_bye || s->bye_recv)) ||
           (round_over(s) && s->round_pending &&
            s->role == NOTES_SYNC_INITIATOR && !s->want_bye);
}

/*
 * A new round of a live session: forget the peer's last list, read the
 * space's list again and catch the kept notes up with their logs.
 */
static int round_reset(notes_sync_session *s)
{
    int rc;
    for (size_t i = 0; i < s->ntheirs; i++)
        free(s->theirs[i].vv);
    s->ntheirs = 0;
    s->theirs_done = 0;
    s->have_sent = s->done_sent = s->done_recv = 0;
    s->have_next = s->export_next = s->lack_next = 0;
    free(s->ours);
    s->ours = NULL;
    s->nours = 0;
    if ((rc = open_space(s)))
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
    return s && s->state == NOTES_SYNC_OPEN && round_over(s) &&
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

void notes_sync_session_end(notes_sync_session *s)
{
    if (s)
        s->want_bye = 1;
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
        s->done_recv && !s->bye_sent && (rc = round_reset(s)))
        return fail(s, rc);
    if (s->theirs_done)
        return failf(s, NOTES_SYNC_EPROTO, "have after the last have");
    if (end - p < 1 || (flags = *p++) > (HAVE_LAST | HAVE_LIVE) ||
        ((flags & HAVE_LIVE) && !(flags & HAVE_LAST)) ||
        sync_get_varint(&p, end, &count))
        return failf(s, NOTES_SYNC_EPROTO, "malformed have message");
    if (count > (uint64_t)(end - p) / 33 ||
        count > MAX_PEER_NOTES - s->ntheirs)
        return failf(s, NOTES_SYNC_EPROTO, "have: too many notes");
    if (s->ntheirs + count > s->captheirs) {
        size_t nc = s->captheirs ? s->captheirs : 16;
        struct peer_note *nv;
        while (nc < s->ntheirs + count)
            nc *= 2;
        nv = realloc(s->theirs, nc * sizeof(*nv));
        if (!nv)
            return fail(s, NOTES_ENOMEM);
        s->theirs = nv;
        s->captheirs = nc;
    }
    for (uint64_t i = 0; i < count; i++) {
        struct peer_note *pn = &s->theirs[s->ntheirs];
        uint64_t nvv;
        if (end - p < 32)
            return failf(s, NOTES_SYNC_EPROTO, "have: truncated entry");
        memcpy(pn->id, p, 16);
        memcpy(pn->digest, p + 16, 16);
        p += 32;
        pn->nvv = 0;
        pn->vv = NULL;
        s->ntheirs++; /* owned from here on, freed with the session */
        if (sync_get_varint(&p, end, &nvv) || nvv > MAX_VV ||
            nvv > (uint64_t)(end - p) / 2)
            return failf(s, NOTES_SYNC_EPROTO, "have: bad author count");
        /* A vector matters only for a note we have (to send what the
         * peer lacks of it); for others it is read and dropped, so what a
         * peer makes us keep stays near what it sent (docs/security.md). */
        int keep = s->nours && bsearch(pn->id, s->ours, s->nours, 16, cmp_id);
        if (keep && nvv && !(pn->vv = malloc(nvv * sizeof(*pn->vv))))
            return fail(s, NOTES_ENOMEM);
        for (uint64_t j = 0; j < nvv; j++) {
            uint64_t ref, seq;
            if (sync_get_varint(&p, end, &ref) || ref > s->nrx_authors)
                return failf(s, NOTES_SYNC_EPROTO, "have: bad author "
                             "reference");
            if (ref == s->nrx_authors) {
                int arc;
                if (end - p < 32 || s->nrx_authors == MAX_AUTHORS)
                    return failf(s, NOTES_SYNC_EPROTO, "have: bad new "
                                 "author");
                if ((arc = author_push(&s->rx_authors, &s->nrx_authors,
                                       &s->crx_authors, p)))
                    return fail(s, arc);
                p += 32;
            }
            if (sync_get_varint(&p, end, &seq) || seq == 0)
                return failf(s, NOTES_SYNC_EPROTO, "have: bad sequence");
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
                return failf(s, NOTES_SYNC_EPROTO, "have: an author twice");
    }
    if (p != end)
        return failf(s, NOTES_SYNC_EPROTO, "have: trailing bytes");
    if (flags & HAVE_LAST) {
        /* Live once the initiator asked and the responder agreed. */
        if (s->role == NOTES_SYNC_RESPONDER)
            s->live = s->live_want && (flags & HAVE_LIVE);
        else if (flags & HAVE_LIVE) {
            if (!s->live_want)
                return failf(s, NOTES_SYNC_EPROTO, "live without asking");
            s->live = 1;
        }
        if (s->ntheirs > 1)
            qsort(s->theirs, s->ntheirs, sizeof(*s->theirs), cmp_peer);
        for (size_t i = 1; i < s->ntheirs; i++)
            if (!memcmp(s->theirs[i - 1].id, s->theirs[i].id, 16))
                return failf(s, NOTES_SYNC_EPROTO, "have: a note twice");
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
    hex16(id, hex);
    if (!s->replica)
        return failf(s, NOTES_SYNC_EPROTO, "note %s: this peer keeps no "
                     "replica", hex);
    s->rb_new = 0;
    if (s->nours && bsearch(id, s->ours, s->nours, 16, cmp_id))
        return NOTES_OK;
    rc = notes_sync_space_of_note(notes_replica_home(s->replica), id, other);
    if (rc)
        return fail(s, rc);
    if (strcmp(other, NOTES_SPACE_DEFAULT) != 0)
        return failf(s, NOTES_SYNC_EPROTO, "the peer sent note %s, which "
                     "belongs to space '%s' here", hex, other);
    rc = notes_doc_open(s->replica, id, &d);
    notes_doc_free(d);
    if (rc == NOTES_OK)
        return failf(s, NOTES_SYNC_EPROTO, "the peer sent note %s, which is "
                     "a personal note here", hex);
    if (rc != NOTES_ENOTFOUND)
        return fail(s, notes_sync__from_notes(rc, hex));
    s->rb_new = 1;
    return NOTES_OK;
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
    hex16(s->rb_id, hex);
    if (s->rb_new &&
        (rc = notes_sync_space_add_note(home, s->spaces[s->space].name, s->rb_id)))
        return fail(s, rc);
    int cached = 1;
    rc = doc_get(s, s->rb_id, &d);
    if (rc == NOTES_ENOTFOUND) {
        cached = 0;
        rc = notes_doc_create_id(s->replica, s->rb_id, &d);
    }
    if (rc) {
        rc = notes_sync__from_notes(rc, hex);
    } else {
        rc = notes_doc_merge(d, s->rb.data, s->rb.len, &added);
        if (!cached)
            notes_doc_free(d);
        if (rc) {
            char why[400];
            snprintf(why, sizeof(why), "note %s: bundle refused, nothing of "
                     "it stored", hex);
            rc = notes_sync__from_notes(rc, why);
        }
    }
    if (rc) {
        if (s->rb_new) {
            char keep[512];
            snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
            if (notes_sync_space_remove_note(home, s->spaces[s->space].name,
                                        s->rb_id) != NOTES_OK) {
                /* listed without a log: harmless, the next sync fills it */
            }
            notes_sync__detail("%s", keep);
        }
        return fail(s, rc);
    }
    if (s->rb_new)
        s->report.notes_created++;
    s->report.changes_received += added;
    s->report.notes_received++;
    s->rb_active = 0;
    sync_buf_release(&s->rb);
    return NOTES_OK;
}

/*
 * A complete ZBUNDLE: one zstd frame that declares its content size, at
 * most max_bundle bytes, and decompresses to exactly that.
 */
static int unpack_bundle(notes_sync_session *s)
{
    unsigned long long want;
    struct sync_buf raw;
    size_t got;
    int rc;
    if (!s->rb_z)
        return NOTES_OK;
    want = ZSTD_getFrameContentSize(s->rb.data, s->rb.len);
    if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN ||
        want == 0 || ZSTD_findFrameCompressedSize(s->rb.data, s->rb.len) !=
                         s->rb.len)
        return failf(s, NOTES_SYNC_EPROTO, "compressed bundle: not one zstd "
                     "frame with its size");
    if (want > s->max_bundle)
        return failf(s, NOTES_ETOOBIG, "a bundle of %llu bytes is over the "
                     "limit of %llu", want,
                     (unsigned long long)s->max_bundle);
    /* Notes compress a few times, not thousands: a bundle that claims to
     * expand more is a bomb, refused before any memory is spent on it. */
    if (want > ZEXPAND_FLOOR && want / ZEXPAND_MAX > s->rb.len)
        return failf(s, NOTES_ETOOBIG, "a compressed bundle of %zu bytes "
                     "claims %llu: more than %ux", s->rb.len, want,
                     ZEXPAND_MAX);
    sync_buf_init(&raw, (size_t)want);
    if ((rc = sync_buf_reserve(&raw, (size_t)want)))
        return fail(s, rc);
    got = ZSTD_decompress(raw.data, (size_t)want, s->rb.data, s->rb.len);
    if (ZSTD_isError(got) || got != want) {
        sync_buf_release(&raw);
        return failf(s, NOTES_SYNC_EPROTO, "compressed bundle does not "
                     "decompress");
    }
    raw.len = got;
    sync_buf_release(&s->rb);
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
        return failf(s, NOTES_SYNC_EPROTO, "bundle after done");
    if (end - p < 17 || (p += 16, sync_get_varint(&p, end, &total)) ||
        p == end)
        return failf(s, NOTES_SYNC_EPROTO, "malformed bundle message");
    n = (size_t)(end - p);
    if (!s->rb_active) {
        if (total > s->max_bundle)
            return failf(s, NOTES_ETOOBIG, "a bundle of %llu bytes is over "
                         "the limit of %llu", (unsigned long long)total,
                         (unsigned long long)s->max_bundle);
        if ((rc = check_incoming(s, id)))
            return rc;
        memcpy(s->rb_id, id, 16);
        s->rb_total = total;
        s->rb_active = 1;
        s->rb_z = z;
        sync_buf_init(&s->rb, (size_t)total);
    } else if (memcmp(id, s->rb_id, 16) != 0 || total != s->rb_total ||
               z != s->rb_z) {
        return failf(s, NOTES_SYNC_EPROTO, "bundle chunk of another note "
                     "before the previous bundle ended");
    }
    if (n > s->rb_total - s->rb.len)
        return failf(s, NOTES_SYNC_EPROTO, "bundle longer than announced");
    if ((rc = sync_buf_put(&s->rb, p, n)))
        return fail(s, rc);
    if (s->progress)
        s->progress(s->progress_ud, s->rb_id, 0, s->rb.len, s->rb_total);
    if (s->rb.len == s->rb_total)
        return (rc = unpack_bundle(s)) ? rc : merge_bundle(s);
    return NOTES_OK;
}

static int note_in_space(notes_sync_session *s, const uint8_t id[16]);

static int handle_msg(notes_sync_session *s, uint8_t type, const uint8_t *p,
                      size_t n)
{
    const uint8_t *end = p + n;
    if (s->bye_recv)
        return failf(s, NOTES_SYNC_EPROTO, "a message after the goodbye");
    switch (type) {
    case MSG_HAVE:
        return handle_have(s, p, end);
    case MSG_BUNDLE:
    case MSG_ZBUNDLE:
        return handle_bundle(s, type == MSG_ZBUNDLE, p, end);
    case MSG_DONE:
        if (n != 0 || !s->theirs_done || s->rb_active || s->done_recv)
            return failf(s, NOTES_SYNC_EPROTO, "unexpected done");
        s->done_recv = 1;
        return NOTES_OK;
    case MSG_POKE:
        if (n != 0 || !s->live || s->role != NOTES_SYNC_INITIATOR)
            return failf(s, NOTES_SYNC_EPROTO, "unexpected poke");
        s->round_pending = 1;
        return NOTES_OK;
    case MSG_PRESENCE: {
        uint8_t note[16], key[32];
        uint64_t seq;
        const char *json;
        size_t jn;
        if (!s->live)
            return failf(s, NOTES_SYNC_EPROTO, "presence outside a live "
                         "session");
        if (notes_sync_presence_open(p, n, note, key, &seq, &json, &jn))
            return failf(s, NOTES_SYNC_EPROTO, "%s", notes_sync_last_detail());
        /* Only for notes of the space: a peer learns nothing of others.
         * The list read at the round's start may miss a note that just
         * arrived: ask the space file then. */
        if (s->presence && note_in_space(s, note))
            s->presence(s->presence_ud, p, n);
        return NOTES_OK;
    }
    case MSG_BYE:
        if (n != 0 || !s->done_recv || !s->done_sent)
            return failf(s, NOTES_SYNC_EPROTO, "goodbye before the sync "
                         "finished");
        s->bye_recv = 1;
        maybe_closed(s);
        return NOTES_OK;
    case MSG_ERROR: {
        const uint8_t *q = p;
        uint64_t code = 0;
        char text[256];
        size_t tl;
        (void)sync_get_varint(&q, end, &code);
        tl = (size_t)(end - q) < sizeof(text) - 1 ? (size_t)(end - q)
                                                  : sizeof(text) - 1;
        for (size_t i = 0; i < tl; i++)
            text[i] = (q[i] >= ' ' && q[i] < 0x7f) ? (char)q[i] : '?';
        text[tl] = '\0';
        s->bye_sent = 1; /* no reply to an error */
        return failf(s, NOTES_SYNC_EREFUSED, "the peer ended the session: "
                     "%s (%s)", text,
                     notes_sync_errname(-(int)(code & 0xffff)));
    }
    default:
        return failf(s, NOTES_SYNC_EPROTO, "unknown message type %u", type);
    }
}

/* Whether note `id` is in the session's space. */
static int note_in_space(notes_sync_session *s, const uint8_t id[16])
{
    char name[NOTES_SPACE_NAME_MAX + 1];
    if (s->nours && bsearch(id, s->ours, s->nours, 16, cmp_id))
        return 1;
    return s->replica &&
           notes_sync_space_of_note(notes_replica_home(s->replica), id, name) ==
               NOTES_OK &&
           strcmp(name, s->spaces[s->space].name) == 0;
}

/* A frame body: one or more messages, each type, varint length, payload. */
static int handle_frame(notes_sync_session *s, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    s->report.frames_received++;
    while (p < end) {
        uint8_t type = *p++;
        uint64_t len;
        int rc;
        if (sync_get_varint(&p, end, &len) || len > (uint64_t)(end - p))
            return failf(s, NOTES_SYNC_EPROTO, "malformed message in frame "
                         "%llu", (unsigned long long)s->report.frames_received);
        if ((rc = handle_msg(s, type, p, (size_t)len)))
            return rc;
        p += len;
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
            return fail(s, rc);
        s->space = which;
        if ((rc = sync_buf_reserve(&s->out, SYNC_M2_LEN)))
            return fail(s, rc);
        if ((rc = sync_hs_m2(&s->hs, s->id, s->out.data + s->out.len)))
            return fail(s, rc);
        s->out.len += SYNC_M2_LEN;
        s->hs_step = HS_WAIT_M3;
        return NOTES_OK;
    }
    case HS_WAIT_M2:
        if ((rc = sync_buf_reserve(&s->out, SYNC_M3_LEN)))
            return fail(s, rc);
        if ((rc = sync_hs_m3(&s->hs, s->id, u, s->out.data + s->out.len)))
            return fail(s, rc);
        memcpy(s->report.peer, s->hs.peer, 32);
        if (s->accept && s->accept(s->accept_ud, s->hs.peer) != 0)
            return failf(s, NOTES_SYNC_EREFUSED, "the peer's key is not "
                         "accepted");
        s->out.len += SYNC_M3_LEN;
        break;
    case HS_WAIT_M3:
        if ((rc = sync_hs_check_m3(&s->hs, u)))
            return fail(s, rc);
        memcpy(s->report.peer, s->hs.peer, 32);
        if (s->accept && s->accept(s->accept_ud, s->hs.peer) != 0)
            return failf(s, NOTES_SYNC_EREFUSED, "the peer's key is not "
                         "accepted");
        break;
    default:
        return failf(s, NOTES_SYNC_EPROTO, "unexpected handshake bytes");
    }
    sync_hs_finish(&s->hs, s->tx.key, s->rx.key);
    s->hs_step = HS_DONE;
    s->state = NOTES_SYNC_OPEN;
    if ((rc = open_space(s)))
        return fail(s, rc);
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
    while (n > 0) {
        size_t need, take;
        if (s->bye_recv)
            return failf(s, NOTES_SYNC_EPROTO, "bytes after the goodbye");
        need = unit_len(s);
        if (need == 0)
            return failf(s, NOTES_SYNC_EPROTO, "the peer spoke before the "
                         "handshake began");
        take = need - s->in.len < n ? need - s->in.len : n;
        if ((rc = sync_buf_put(&s->in, p, take)))
            return fail(s, rc);
        p += take;
        n -= take;
        /* A server that turns us away says so in plain text where M2
         * would be (M2 is random-looking: a chance match is 2^-144). */
        if (s->state == NOTES_SYNC_HANDSHAKE && s->hs_step == HS_WAIT_M2 &&
            s->in.len >= SYNC_BUSY_LEN &&
            memcmp(s->in.data, SYNC_BUSY_LINE, SYNC_BUSY_LEN) == 0)
            return failf(s, NOTES_SYNC_EBUSY, "the peer answered busy: too "
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
                return fail(s, rc);
            s->in_body = 1;
        } else {
            if ((rc = sync_frame_open_body(&s->rx, s->in.data, s->body_len,
                                           s->plain)))
                return fail(s, rc);
            s->in_body = 0;
            if ((rc = handle_frame(s, s->plain, s->body_len)))
                return rc;
        }
    }
    return NOTES_OK;
}
