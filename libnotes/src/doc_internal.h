/*
 * doc_internal.h: what the doc_*.c files share: the doc and its entries,
 * authors, people and fields, and the notes__doc_ functions one part of the
 * doc calls in another. Private to libnotes.
 *
 * A note's state is built from its verified signed changes. Entries
 * mirror the log: every change read or received, in log order (which is
 * causal: a change is stored only after its dependencies). The
 * text lives in the Eg-walker oplog (text.h); front-matter writes are kept
 * per field and resolved on read. Equivocation (two changes by one author
 * with one sequence number) keeps both as evidence and applies both, as
 * concurrent branches: dropping one would also drop the honest changes
 * other people built on it. Their text events, which share CRDT ids
 * (author, seq), are told apart by the change ids (notes__doc_entry_agent), so
 * every replica holding the same changes has the same text.
 *
 * Failure discipline: a change is verified (signature, chain, sequence,
 * dependencies) before it touches the state; if applying it still fails
 * (a position out of range), the state is rebuilt without it. Nothing is
 * written to the log before it has been applied successfully.
 */
#ifndef NOTES_DOC_INTERNAL_H
#define NOTES_DOC_INTERNAL_H

#include "change.h"
#include "pack.h"
#include "people.h"
#include "replica.h"
#include "store.h"
#include "text.h"

#define NONE UINT32_MAX

struct entry {
    struct notes__change *c;
    uint32_t author;      /* index into doc->authors */
    uint32_t lamport;     /* 1 + max over prev and deps */
    uint32_t nver;        /* text version after this change, as LVs */
    notes_lv *ver;
    notes_lv first_lv;    /* first text event (if nev) */
    uint32_t nev;
    uint32_t prefix;      /* if prefix_ok: the first `prefix` entries are
                           * all this one or its ancestors (a lower bound;
                           * entries are in causal order): what a peer
                           * that has this change has for sure (export,
                           * notes__doc_prefix computes it when asked) */
    uint8_t prefix_ok;
    uint8_t equivocated;  /* shares its seq with another of its author's */
    uint8_t applied;      /* part of the current state */
    uint8_t parent;       /* referenced by another applied change */
};

struct author {
    uint8_t pk[32];
    uint32_t agent;       /* oplog agent index */
    uint32_t nseq;        /* seq slots: slot[s-1] lists entries with seq s */
    uint32_t *slot_first; /* first entry with that seq */
    uint32_t *slot_count; /* how many entries share it (>1: equivocation) */
    uint8_t forked;       /* some slot_count > 1: an equivocating key */
    char *name;           /* claimed display name (latest applied), or NULL */
    uint64_t name_seq;
    const uint8_t *name_id; /* id of the change it came from (ties) */
};

/* Who a device speaks for, from the links and revocations in the note. */
struct dev {
    uint8_t device[32];
    uint8_t person[32];
    const uint8_t *link;  /* a link naming the device (bytes in an entry) */
    size_t linklen;
    const char *name;     /* the person's claimed name, not NUL-ended */
    size_t namelen;
    char *name_z;         /* NUL-ended copy, made when asked for */
    uint64_t linked_ms;
    int has_person;
    int contested;        /* valid links to different persons */
    uint32_t revoke_entry; /* first entry carrying a revocation, or NONE */
    uint64_t revoked_ms;
};

/* A revocation: changes of `device` with `entry` in their past are refused. */
struct rev {
    uint8_t device[32];
    uint32_t entry;
};

struct conf {
    uint32_t entry, op;
};

struct write {
    uint32_t entry;       /* NONE: uncommitted local write */
    uint32_t opidx;
    uint8_t kind;
    char *value;          /* owned; NULL for UNSET */
};

struct field {
    char *key;
    struct write *w;
    size_t nw, cap;
    /* Results of the last resolve, borrowed by callers until the next
     * write to any field (gen tells when they are stale). */
    const char **list;
    const char **conflicts;
    const char *value;
    unsigned gen_reg, gen_list; /* doc->gen they were computed at, 0: never */
};

/* What a deferred write left for notes_doc_flush: the log's sync (records
 * written, not synced), the state file (it lags the log). */
#define NOTES__DIRTY_LOG 1u
#define NOTES__DIRTY_STATE 2u

struct notes_doc {
    notes_replica *r;       /* NULL for a document kept only in memory */
    const notes_identity *mem_id; /* the signer of a memory document */
    uint8_t id[16];
    struct notes__log *log; /* NULL until the first commit of a new note */
    struct notes__state st; /* the replica's state of the log, as last read
                             * or written under the lock (state.c) */
    char damage[600];       /* notes_doc_damage: what assess() found */
    int problem;            /* notes_doc_intact */
    char repaired[600];     /* notes_doc_repaired */
    size_t nbad;            /* changes of the log refused when read */
    char first_bad[240];

    struct entry *e;
    size_t ne, cape;
    uint32_t *hash;       /* open addressing: id -> entry index + 1 */
    size_t hashcap;
    struct author *a;
    size_t na;

    struct notes__oplog *op;
    notes_text_fn obs;       /* notes_doc_observe */
    void *obs_ud;
    struct field *f;
    size_t nf;
    const char **fieldnames;
    unsigned gen;            /* bumped by every field write */
    unsigned gen_names;

    /* Uncommitted local edits. */
    struct notes__change_builder pend;
    uint64_t pend_seq;       /* the seq they will be committed with */
    uint8_t (*pend_deps)[32];
    uint32_t npend_deps;
    int has_pend;
    int pend_kind;           /* last op, for coalescing */
    uint32_t pend_pos, pend_count;
    struct notes_buf pend_text;
    notes_lv pend_first, pend_last; /* LVs of the first and last pending event */
    unsigned rebuilds;       /* counts rebuild() calls */
    struct dev *dev;         /* people: rebuilt with the state */
    size_t ndev;
    struct rev *rev;
    size_t nrev;
    struct conf *conf;
    size_t nconf, capconf;
    uint8_t (*certh)[16];    /* hashes of the certificates applied */
    size_t ncerth, capcerth;
    int tainted;             /* the log held refused changes: never vouch
                              * for it with the local MAC */
    unsigned defer;          /* NOTES_DEFER_* (notes_doc_set_defer) */
    unsigned shares;         /* holders of a handle from
                              * notes_doc_open_shared (0: not shared) */
    unsigned dirty;          /* NOTES__DIRTY_*: what notes_doc_flush owes */
    size_t len;              /* text length in code points, if len_ok */
    int len_ok;              /* asking the text buffer closes its gap */

    /* A deferred (live) handle writes its snapshot at most every
     * NOTES__SNAP_LIVE_MS on flush; snap_owed: one is due at free. */
#define NOTES__SNAP_LIVE_MS 2000u
    uint64_t snap_live_ms;
    int snap_owed;

    /* Entries below prefix_from have entry->prefix computed (export). */
    uint32_t prefix_from;

    /* Which entry holds an LV (doc_history.c): the applied entries with
     * text events, by first LV, built for the entries as they were at
     * lvx_ne entries and lvx_gen rebuilds. Every hit is checked against
     * the entry itself; a miss falls back to a scan. */
    struct notes__lvx {
        notes_lv first_lv;
        uint32_t entry;
    } *lvx;
    size_t nlvx, lvx_ne, lvx_last; /* lvx_last: where the last hit was */
    unsigned lvx_gen;
    int lvx_ok;

    /* This device's oplog agent, for local edits (doc_edit.c): valid while
     * the oplog is the one it was found in (no rebuild since). */
    uint32_t my_agent;
    unsigned my_agent_gen;   /* rebuilds + 1 when found; 0: not yet */
    const struct notes__oplog *my_agent_op;

    /* Snapshot cache (doc_snap.c). lazy: opened from the snapshot, no
     * entry or oplog built yet; notes__doc_full replays the log. */
    int lazy;
    struct notes__snap *snap; /* kept until free (its text may be held) */
    int snap_known;          /* notes/ID.snap holds the state at ... */
    uint64_t snap_end;       /* ... this log length and ... */
    uint8_t snap_mac[32];    /* ... this local MAC chain value */
};

/*
 * A batch of decoded changes (a log read, a bundle) and, per change, the
 * verdict of the signature pass: NOTES_OK when covered by a valid
 * signature, its own or that of a later change of the same author in the
 * batch whose hash chain (prev) leads back to it.
 */
struct batch {
    struct notes__change **c;
    int *sig;
    size_t *at;            /* index of each change among all read */
    size_t n, cap;
    size_t seen;           /* changes read, refused ones included */
    size_t trusted;        /* changes at < trusted come from a prefix this
                            * device verified (local MAC): no signature
                            * check needed */
    size_t bad;            /* changes refused (decode errors included) */
    char first_bad[240];
};

typedef int (*refuse_fn)(void *ctx, int rc);

/* doc_index.c */
int notes__doc_author_agent(struct notes_doc *d, uint32_t ai, uint32_t *agent);
int notes__doc_author_index(struct notes_doc *d, const uint8_t pk[32],
                            uint32_t *out);
uint64_t notes__doc_author_last_seq(const struct notes_doc *d,
                                    const uint8_t pk[32]);
int notes__doc_lock(notes_doc *d, int exclusive);
void notes__doc_unlock(notes_doc *d);
int notes__doc_entry_agent(struct notes_doc *d, uint32_t idx, uint32_t *agent);
uint32_t notes__doc_hash_find(const struct notes_doc *d, const uint8_t id[32]);
/* Parent k of change c, for k in 0..c->ndeps: its deps, then (k ==
 * ndeps) its author's previous change; the entry, or NONE (no prev at
 * seq 1). What every walk over the history follows. */
static inline uint32_t notes__doc_parent(const struct notes_doc *d,
                                         const struct notes__change *c,
                                         uint32_t k)
{
    return k < c->ndeps ? notes__doc_hash_find(d, c->deps[k])
           : c->seq > 1 ? notes__doc_hash_find(d, c->prev)
                        : NONE;
}
int notes__doc_hash_insert(struct notes_doc *d, uint32_t idx);
int notes__doc_is_equivocated(const struct notes_doc *d, uint32_t idx);
const char *notes__doc_my_name(const notes_doc *d);
const uint8_t *notes__doc_my_pk(const notes_doc *d);
int notes__doc_name_wins(const struct author *a, const struct notes__change *c);
uint64_t notes__doc_now_ms(void);
void notes__doc_short_id(char out[17], const uint8_t *id);
/* qsort order of 32-byte ids (memcmp). */
int notes__cmp_id32(const void *a, const void *b);
const notes_identity *notes__doc_signer(const notes_doc *d);
int notes__doc_slot_add(struct notes_doc *d, uint32_t idx);
uint32_t notes__doc_slot_winner(const struct notes_doc *d, uint32_t ai,
                                uint64_t seq);

/* doc_check.c */
int notes__doc_check_change(struct notes_doc *d, const struct notes__change *c,
                            int sigrc);
int notes__doc_revoked_before(const struct notes_doc *d,
                              const uint8_t author[32],
                              const uint8_t (*deps)[32], uint32_t ndeps,
                              const uint8_t *prev, uint32_t *which);

/* doc_apply.c */
int notes__doc_add_entry(struct notes_doc *d, struct notes__change *c,
                         uint32_t *idx);
int notes__doc_apply_entry(struct notes_doc *d, uint32_t idx);
struct dev *notes__doc_dev_find(const struct notes_doc *d,
                                const uint8_t pk[32]);
int notes__doc_field_write(struct notes_doc *d, uint32_t entry, uint32_t opidx,
                           int kind, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen);
void notes__doc_fields_clear(struct notes_doc *d);
int notes__doc_has_cert(const struct notes_doc *d, const uint8_t *p, size_t n);
int notes__doc_ingest(struct notes_doc *d, struct notes__change *c, int sigrc,
                      int *dup);
void notes__doc_mark_parents(struct notes_doc *d,
                             const struct notes__change *c);
int notes__doc_note_people(struct notes_doc *d, uint32_t idx);
void notes__doc_people_clear(struct notes_doc *d);
int notes__doc_rebuild(struct notes_doc *d);
int notes__doc_truncate_entries(struct notes_doc *d, size_t from);
int notes__doc_version_of(struct notes_doc *d, const uint8_t (*ids)[32],
                          uint32_t n, notes_lv **out, uint32_t *nout);

/* doc_batch.c */
int notes__doc_batch_decode(struct batch *b, const uint8_t *p, size_t n,
                            const uint8_t *id);
int notes__doc_batch_ingest(struct notes_doc *d, struct batch *b, int stop,
                            refuse_fn refuse, void *ctx, size_t *nsig);
void notes__doc_batch_release(struct batch *b);
/* After a deferred write: the state is owed, the subscribers told now. */
void notes__doc_written_later(notes_doc *d);
int notes__doc_collect_cb(void *ctx, const uint8_t *p, size_t n,
                          const uint8_t *id);
int notes__doc_count_refusal(void *ctx, int rc);

/* doc_snap.c */
struct notes__snap;
/* Open from the snapshot: 1 when used (d->lazy), 0 when not (the log is
 * then rewound, to be read the ordinary way). d->log open and keyed. */
int notes__doc_snap_try(notes_doc *d);
/* Write the snapshot of the state as read or written (lock held); best
 * effort. !always (commit, merge): only for a text of up to 1 MiB. */
void notes__doc_snap_save(notes_doc *d, int always);
void notes__doc_snap_free(struct notes__snap *s);
/* Build the full state of a lazy doc (a no-op otherwise). Every public
 * function that needs more than the snapshot calls it first. */
int notes__doc_full(notes_doc *d);
int notes__doc_full_c(const notes_doc *d);
#define NOTES__DOC_FULL(d, fail)                                               \
    do {                                                                       \
        if ((d)->lazy && notes__doc_full_c(d) != NOTES_OK)                     \
            return fail;                                                       \
    } while (0)
#define NOTES__DOC_FULL_RC(d)                                                  \
    do {                                                                       \
        int full_rc_ = (d)->lazy ? notes__doc_full_c(d) : NOTES_OK;            \
        if (full_rc_ != NOTES_OK)                                              \
            return full_rc_;                                                   \
    } while (0)
/* What a lazy doc answers from the snapshot. */
const char *notes__snap_text(const notes_doc *d, size_t *nbytes, size_t *ncp);
const char *notes__snap_field(const notes_doc *d, const char *key);
const char *const *notes__snap_conflicts(const notes_doc *d, const char *key);
const char *const *notes__snap_list(const notes_doc *d, const char *key);
const char *const *notes__snap_names(const notes_doc *d);
int notes__snap_heads(const notes_doc *d, uint8_t (**out)[32], size_t *n);

/* doc_open.c */
int notes__doc_alloc(notes_replica *r, const uint8_t id[16], notes_doc **out);

/* doc_log.c */
void notes__doc_assess(notes_doc *d);
int notes__doc_load_state(notes_doc *d);
int notes__doc_prepare_write(notes_doc *d, int create);
int notes__doc_read_new(notes_doc *d);
int notes__doc_read_log(notes_doc *d);
int notes__doc_save_state(notes_doc *d);
/* This device's last seq in the note (0: none) and that change's id. */
uint64_t notes__doc_my_last_change(const notes_doc *d, const uint8_t **id);

/* doc_edit.c */
int notes__doc_begin_pending(notes_doc *d);
int notes__doc_flush_pending_op(notes_doc *d);
uint64_t notes__doc_pend_events(const notes_doc *d);

/* doc_fields.c */
/* entry->prefix of entry idx, computed (with its ancestors' where they
 * are not yet) when first asked. */
uint32_t notes__doc_prefix(notes_doc *d, uint32_t idx);
int notes__doc_mark_ancestors(const notes_doc *d, uint32_t from, uint8_t *seen,
                              int chain);

/* doc_commit.c */
void notes__doc_clear_pending(notes_doc *d);
int notes__doc_ensure_log(notes_doc *d, int create);
int notes__doc_heads_raw(const notes_doc *d, uint8_t (**out)[32], uint32_t *n);

/* doc_history.c */
uint32_t notes__doc_entry_of_lv(const notes_doc *d, notes_lv lv);
/*
 * The entry holding `lv`, searched for only when `lv` is not one of entry
 * `cur`'s events: runs of consecutive LVs share an entry, so a walk over a
 * text looks up once per run. Inline: it is called per code point.
 */
static inline uint32_t notes__doc_entry_of_lv_from(const notes_doc *d,
                                                   uint32_t cur, notes_lv lv)
{
    const struct entry *en = cur == NONE ? NULL : &d->e[cur];
    if (!en || lv < en->first_lv || lv - en->first_lv >= en->nev)
        return notes__doc_entry_of_lv(d, lv);
    return cur;
}
int notes__doc_version_at(notes_doc *d, const uint8_t (*version)[32],
                          size_t n, notes_lv **v, uint32_t *nv);

#endif
