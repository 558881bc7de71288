/*
 * session_internal.h: the session's state, shared by session.c (core),
 * session_out.c (what is sent) and session_in.c (what is received).
 */
#ifndef NOTES_SYNC_SESSION_INTERNAL_H
#define NOTES_SYNC_SESSION_INTERNAL_H

#include "notes_sync_presence.h"
#include "recon.h"
#include "sync_internal.h"

enum msg_type {
    MSG_HAVE = 1,
    MSG_BUNDLE = 2,
    MSG_DONE = 3,
    MSG_BYE = 4,
    MSG_ERROR = 5,
    MSG_ZBUNDLE = 6,
    MSG_POKE = 7,
    MSG_PRESENCE = 8,
    MSG_PUSH = 9,
    MSG_RECON = 10
};

#define PRESENCE_QUEUE 64          /* records waiting to be sent */
#define PUSH_QUEUE 16              /* pushes waiting to be sent */
#define PUSH_MAX (16u << 10)       /* bundle bytes in one PUSH; more: a round */
#define PUSH_LATER 256             /* notes waiting for a round's end */

#define HAVE_LAST 1
#define HAVE_LIVE 2                /* with LAST: stay open after the round */
#define CHUNK (64u << 10)          /* bundle bytes per frame */
#define OUT_BATCH (256u << 10)     /* stop producing frames past this */
#define MAX_PEER_NOTES 100000      /* notes a peer may announce */
#define MAX_VV 4096                /* authors per note announced; more: none */
#define MAX_AUTHORS 65536          /* author table entries per direction */
#define DEFAULT_MAX_BUNDLE (64ull << 20)
#define ZEXPAND_MAX 256u           /* most a compressed bundle may expand */
#define DOC_CACHE 16               /* notes kept open per session */
#define ZMIN 1024                  /* smaller bundles go uncompressed */
#define ZLEVEL_SMALL 19            /* zstd level from ZBIG up to ZSMALL bytes */
#define ZSMALL (1u << 20)
#define ZBIG (64u << 10)           /* below: level ZLEVEL (a level-19 context
                                      costs more than the bytes it saves) */
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

/* A note's heads that the peer is known to hold with all they depend on
 * (docs/protocol.md, "Pushes"): what a push starts from. */
struct known_note {
    uint8_t id[16];
    uint8_t (*heads)[32];         /* owned */
    size_t nheads;
};

/* Our state of one note, for announcing and comparing. */
struct our_note {
    notes_doc *d;                 /* NULL: not opened (no log, or summed
                                     up without it); else borrowed from
                                     the session's cache */
    int present;                  /* the note has a log here */
    uint8_t digest[16];
    size_t nvv;
    uint8_t (*keys)[32];          /* nvv authors (owned) */
    uint64_t *seqs;               /* their highest seq here (owned) */
};

/* A note's version as reconciliation sees it (versions.c). */
struct note_version {
    uint8_t id[16];
    uint8_t digest[16];           /* of its sorted heads */
    uint8_t (*heads)[32];         /* owned (notes_free) */
    size_t nheads;
    uint64_t size, mtime, ctime, ino; /* the log's stamp */
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
    struct notes_buf in;           /* the unit being assembled */
    int in_body;                  /* 0: expecting a header, 1: a body */
    size_t body_len;
    uint8_t *plain;               /* NOTES_SYNC_FRAME_MAX bytes */

    /* output */
    struct notes_buf out;          /* sealed bytes to send */
    size_t out_handed;            /* of which handed out (front of out) */
    struct notes_buf body;         /* the frame body being built */
    struct notes_buf msg;          /* the message being built */

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
    int bundle_z;                 /* 1: one zstd frame, 0: raw */
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
    int defer_merge;              /* cfg.defer_merge */
    struct notes_buf rb;

    /* Deferred merges (cfg.defer_merge): a complete bundle waits for
     * notes_sync_session_apply, and so does everything received after
     * it: the rest of its frame (s->plain from frame_off to frame_len)
     * and the bytes not yet read (held). */
    struct notes_buf held;
    size_t frame_off, frame_len;
    int merge_ready;              /* a bundle waits to be merged */
    int frame_rest;               /* s->plain holds more messages */

    /* Opening a note verifies its log: each note is opened once per
     * session (announce, export, merge), up to DOC_CACHE of them. */
    struct doc_slot docs[DOC_CACHE];
    uint64_t docs_tick;

    /* live sessions */
    int live_want, live;          /* asked/accepted; both sides agreed */
    int round_pending;            /* initiator: start one when idle */
    int poke_queued;              /* responder: a POKE to send */
    int want_bye;                 /* end after this round */

    /* live pushes (docs/protocol.md, "Pushes"): bundles to send between
     * rounds, and whether the bundle being received came in a PUSH */
    uint8_t *pushq[PUSH_QUEUE];
    size_t pushlen[PUSH_QUEUE], npush;
    int rb_push;
    int rb_fresh;                 /* the bundle received is of a fresh note */
    struct known_note *known;     /* sorted by id */
    size_t nknown, cknown;
    uint8_t (*later)[16];         /* notes changed mid-round: pushed once */
    size_t nlater;                /* it ends (at most PUSH_LATER) */

    /* presence (live sessions): records to send, and who hears ours */
    uint8_t *pq[PRESENCE_QUEUE];
    size_t pqlen[PRESENCE_QUEUE], npq;
    notes_sync_presence_fn presence;
    void *presence_ud;

    /* reconciliation (docs/protocol.md, "Reconciliation") */
    int no_recon;                 /* cfg.no_recon: list every note */
    int recon_state;              /* 0 not begun, 1 running, 2 over */
    int recon_owe;                /* our answer is being sent */
    int recon_heard;              /* the peer sent RECON this round */
    size_t recon_emit;            /* of rc.out, bytes already sent */
    struct recon rc;
    struct note_version *vers;    /* our notes with a log, sorted */
    struct recon_item *items;     /* the same, as (id, digest) */
    size_t nvers;
    uint8_t (*all)[16];           /* once reconciled: the whole space list
                                     (ours then holds only what differs) */
    size_t nall;
    struct note_version *learned; /* versions of notes merged this round */
    size_t nlearned, clearned;
    uint8_t (*fresh)[16];         /* notes listed ahead of their bundles */
    uint8_t *fresh_stored;        /* per fresh note: its bundle was stored */
    size_t nfresh;
    /* Notes new here, merged this round with their durability deferred:
     * made durable together (notes_doc_flush_many) when NEW_BATCH of them
     * wait and at the peer's DONE, before the round counts as done. */
    notes_doc **newdocs;
    size_t nnew;

    notes_sync_report report;
};

/* New notes made durable per batch: at most this many docs held open. */
#define NEW_BATCH 256

/* session.c */
int notes_sync__author_push(uint8_t (**t)[32], size_t *n, size_t *cap,
                            const uint8_t key[32]);
int notes_sync__cmp_id(const void *a, const void *b);
int notes_sync__cmp_peer(const void *a, const void *b);
/* Live, and the round is over (both DONEs crossed, no goodbye). */
int notes_sync__round_over(const notes_sync_session *s);
/* Fail the session with rc (detail from notes_sync_last_detail). */
int notes_sync__fail(notes_sync_session *s, int rc);
int notes_sync__failf(notes_sync_session *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int notes_sync__open_space(notes_sync_session *s);
int notes_sync__doc_get(notes_sync_session *s, const uint8_t id[16],
                        notes_doc **d);
void notes_sync__maybe_closed(notes_sync_session *s);
int notes_sync__round_reset(notes_sync_session *s);
int notes_sync__new_flush(notes_sync_session *s);

/* The heads the peer is known to hold for note id, or NULL. */
struct known_note *notes_sync__known_find(notes_sync_session *s,
                                          const uint8_t id[16]);
/* Record d's current heads as held by the peer for note id (NOTES_OK or
 * NOTES_ENOMEM; heads, when not NULL, are d's, taken over). */
int notes_sync__known_set(notes_sync_session *s, const uint8_t id[16],
                          notes_doc *d, uint8_t (*heads)[32], size_t nheads);

/* Push the notes that changed during the round just ended (produce). */
int notes_sync__push_later(notes_sync_session *s);

/* Whether note id is in the space's list as read at the round's start. */
int notes_sync__listed(const notes_sync_session *s, const uint8_t id[16]);
/* Take the notes listed ahead whose bundles were not stored out of the
 * space again (the peer is done sending, or the session failed). */
void notes_sync__unlist_unstored(notes_sync_session *s);
/* Forget the reconciliation state of the round. */
void notes_sync__recon_reset(notes_sync_session *s);
/* Begin reconciling (the initiator's first turn goes into s->rc.out). */
int notes_sync__recon_begin(notes_sync_session *s);
/* Reconciliation is over: keep to the notes that differ. */
int notes_sync__recon_apply(notes_sync_session *s);

/* versions.c: the version of each note of s->ours that has a log. */
int notes_sync__versions(notes_sync_session *s, struct note_version **out,
                         size_t *n);
void notes_sync__versions_free(struct note_version *v, size_t n);
/* Note id was just merged into d: remember its version for the cache (a
 * first sync then leaves the versions of what it stored). */
void notes_sync__versions_learn(notes_sync_session *s, const uint8_t id[16],
                                notes_doc *d);
/* Write what was learned into the cache file. */
void notes_sync__versions_flush(notes_sync_session *s);

/* session_out.c */
int notes_sync__put_msg(notes_sync_session *s, uint8_t type, const uint8_t *p,
                        size_t n);
int notes_sync__flush_body(notes_sync_session *s);
void notes_sync__bundle_free(notes_sync_session *s);

#endif
