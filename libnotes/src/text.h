/*
 * text.h: the text CRDT engine of libnotes (internal, notes__ prefix).
 *
 * An Eg-walker event graph (Gentle & Kleppmann, EuroSys 2025) whose temporary
 * merge state orders concurrent inserts with YjsMod / FugueMax semantics.
 * The oplog stores the original, index-based operations (run-length encoded);
 * the merged text lives in a UTF-8 gap buffer. CRDT state exists only while a
 * concurrent run is being merged, and is thrown away afterwards.
 * docs/crdt.md describes the design.
 *
 * Positions and counts are Unicode code points. Not thread-safe: one oplog,
 * one thread.
 */
#ifndef NOTES_TEXT_H
#define NOTES_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* Local version: index of an event in this replica's order (a topological
 * order of the event graph). Valid LVs are < NOTES__LV_MAX. */
typedef uint32_t notes_lv;

#define NOTES__LV_MAX 0x7fffffffu /* at most 2^31 - 1 events per oplog */

/*
 * Make room for `need` elements in the array `arr` of capacity `cap`
 * (notes__grow: doubling from `first`). The capacity check is inline, so
 * the common case, nothing to grow, costs no call on the text fast paths.
 */
#define NOTES__TEXT_GROW(arr, cap, need, first)                               \
    ((size_t)(need) <= (cap)                                                   \
         ? NOTES_OK                                                            \
         : notes__grow(&(arr), &(cap), (need), sizeof(*(arr)), (first)))

struct notes__oplog;

/*
 * An observer of the merged text: called after each change to it, in
 * order, with the code point position, the code points deleted there
 * (del) or the UTF-8 inserted there (ins, nbytes). Must not touch the
 * oplog.
 */
typedef void (*notes__text_obs)(void *ud, size_t pos, size_t del,
                                const char *ins, size_t nbytes);
/* Set (fn NULL: clear) the observer of op's merged text. */
void notes__oplog_observe(struct notes__oplog *op, notes__text_obs fn,
                          void *ud);

/* Create an empty oplog (empty document, no agents). */
int notes__oplog_new(struct notes__oplog **out);
/* Free an oplog and everything it owns. NULL is ok. */
void notes__oplog_free(struct notes__oplog *op);

/*
 * Register an agent (author) by a 32-byte key (an Ed25519 public key).
 * The same key always yields the same index. Concurrent inserts at the same
 * place are ordered by (key bytes via memcmp, then seq), never by local
 * indexes, so every replica orders them identically.
 */
int notes__oplog_agent(struct notes__oplog *op, const uint8_t key[32],
                       uint32_t *agent);
/*
 * The same with a tie key (NULL: 32 zero bytes, what notes__oplog_agent
 * uses): events of agents with one key and one seq, which only an
 * equivocating signer produces, are ordered by their tie keys, after key
 * and seq. Since it comes last it changes no order between events whose
 * (key, seq) differ: giving an agent a tie key later moves nothing a
 * replica had already ordered.
 */
int notes__oplog_agent_tie(struct notes__oplog *op, const uint8_t key[32],
                           const uint8_t tie[32], uint32_t *agent);

enum { NOTES__OP_INS = 1, NOTES__OP_DEL = 2 };

/*
 * Append a run of events by `agent` (an index from notes__oplog_agent).
 *
 * parents: the version that `pos` refers to; every entry must be an existing
 *   LV (otherwise NOTES_EINVAL). Duplicates are removed and parents that are
 *   ancestors of other parents are tolerated (they are redundant, and are
 *   kept in the stored parents). nparents == 0 means the empty document.
 *   Parents containing the whole current frontier take the fast path (no CRDT
 *   work); others are merged (Eg-walker).
 * INS: `utf8`/`nbytes` (non-empty, valid UTF-8, otherwise NOTES_EINVAL) holding
 *   k code points is inserted at code point `pos`: k events, event i inserts
 *   code point i at pos+i, each parented on the previous event of the run.
 *   `count` is ignored.
 * DEL: `count` (> 0, otherwise NOTES_EINVAL) events deleting the `count` code
 *   points at [pos, pos+count) of the parent version, each parented on the
 *   previous event of the run. Deleting a character that a concurrent event
 *   already deleted is harmless.
 * seq: the caller's 64-bit id of the first event (event i has seq+i); (agent
 *   key, seq) is only used to break ties between concurrent inserts at the
 *   same place.
 * pos/count beyond the length of the document at the parent version:
 *   NOTES_EBADOP, and the oplog is unchanged (no partial state).
 * OUT first_lv (may be NULL): LV of the first event.
 * Errors: NOTES_EINVAL, NOTES_EBADOP, NOTES_ETOOBIG (2^31 events), NOTES_ENOMEM.
 * On any error the oplog is unchanged.
 */
int notes__oplog_add(struct notes__oplog *op, uint32_t agent, uint64_t seq,
                     const notes_lv *parents, size_t nparents, int kind,
                     uint32_t pos, const char *utf8, size_t nbytes,
                     uint32_t count, notes_lv *first_lv);

/*
 * The same as notes__oplog_add with the current frontier as parents (local
 * editing), for text the caller has already checked: valid UTF-8 holding k
 * code points (INS), or k code points to delete (DEL). When the history is
 * linear (the frontier is the last event) it skips the parents' checks and
 * normalising; otherwise it is notes__oplog_add. Same results, same errors.
 */
int notes__oplog_add_local(struct notes__oplog *op, uint32_t agent,
                           uint64_t seq, int kind, uint32_t pos,
                           const char *utf8, size_t nbytes, uint32_t k,
                           notes_lv *first_lv);

/* Number of events in the oplog. */
size_t notes__oplog_len(const struct notes__oplog *op);

/* The current heads (a frontier), sorted ascending. Borrowed: valid until the
 * next add. *n is 0 for an empty oplog. */
const notes_lv *notes__oplog_frontier(const struct notes__oplog *op, size_t *n);

/* The merged text of all events, NUL-terminated. Borrowed: valid until the
 * next add. Also its length in bytes and code points (either may be NULL).
 * Returns NULL only on allocation failure. */
const char *notes__oplog_text(struct notes__oplog *op, size_t *nbytes,
                              size_t *ncodepoints);

/*
 * Text at any version (a set of existing LVs; n == 0: the empty document).
 * OUT *out allocated with notes__malloc, NUL-terminated; the caller frees it
 * with notes_free/notes__free. Replays the history of `version` from scratch
 * unless it is the current frontier.
 */
int notes__oplog_checkout(struct notes__oplog *op, const notes_lv *version,
                          size_t n, char **out, size_t *nbytes);

/*
 * Authorship of the text at `version` (n == SIZE_MAX or version == NULL: the
 * current text): for each code point of that text, the LV of the event that
 * inserted it. OUT *lvs allocated with notes__malloc (caller frees; NULL when
 * *ncp == 0 is possible), *ncp code points.
 */
int notes__oplog_origins(struct notes__oplog *op, const notes_lv *version,
                         size_t n, notes_lv **lvs, size_t *ncp);

/*
 * The full layout of the text, for conflict detection (doc_conflicts.c):
 * one replay of the whole history. OUT *order: the LV of every code point
 * ever inserted, deleted ones included, in document order (*norder of
 * them); *del: for each event (op->n entries) the LV of the code point a
 * delete event deleted, UINT32_MAX for insert events. Both allocated with
 * notes__malloc; the caller frees them.
 */
int notes__oplog_layout(struct notes__oplog *op, notes_lv **order,
                        size_t *norder, notes_lv **del);

/* Which agent and seq an event has (for blame). An LV out of range yields
 * agent UINT32_MAX and seq 0. */
void notes__oplog_event_id(const struct notes__oplog *op, notes_lv lv,
                           uint32_t *agent, uint64_t *seq);

/* ====================================================================== */
/* Implementation details shared by text_*.c only; nothing outside the
 * text engine should touch these. */

/* UTF-8 gap buffer with the gap position kept in bytes and code points. */
struct notes__tbuf {
    char *buf;
    size_t cap;   /* bytes allocated */
    size_t gs;    /* gap start (bytes before the gap) */
    size_t ge;    /* gap end */
    size_t gcp;   /* code points before the gap */
    size_t ncp;   /* code points in the text */
};

void notes__tbuf_init(struct notes__tbuf *t);
void notes__tbuf_release(struct notes__tbuf *t);
static inline size_t notes__tbuf_bytes(const struct notes__tbuf *t)
{
    return t->cap - (t->ge - t->gs);
}
/* Copy n bytes; one byte (a typed character) without calling memcpy,
 * which a keystroke would otherwise call three times. */
static inline void notes__copy_bytes(void *dst, const void *src, size_t n)
{
    if (n == 1)
        *(char *)dst = *(const char *)src;
    else
        memcpy(dst, src, n);
}

/*
 * The three edits below are called once per keystroke: their common cases
 * (room in the gap; an edit at the gap of ASCII text) are inline, the rest
 * is in text_buf.c (the _slow functions).
 */
int notes__tbuf_reserve_slow(struct notes__tbuf *t, size_t extra);
int notes__tbuf_insert_slow(struct notes__tbuf *t, size_t cp, const char *s,
                            size_t n, size_t ncp);
void notes__tbuf_delete_slow(struct notes__tbuf *t, size_t cp, size_t count);

/* Make room for `extra` more bytes so the next inserts cannot fail. */
static inline int notes__tbuf_reserve(struct notes__tbuf *t, size_t extra)
{
    if (t->ge - t->gs > extra) /* +1: room for the NUL of tbuf_text */
        return NOTES_OK;
    return notes__tbuf_reserve_slow(t, extra);
}
/* Insert valid UTF-8 (`ncp` code points) at code point `cp` (<= ncp). */
static inline int notes__tbuf_insert(struct notes__tbuf *t, size_t cp,
                                     const char *s, size_t n, size_t ncp)
{
    if (cp != t->gcp || t->ge - t->gs <= n)
        return notes__tbuf_insert_slow(t, cp, s, n, ncp);
    notes__copy_bytes(t->buf + t->gs, s, n); /* typing at the gap */
    t->gs += n;
    t->gcp += ncp;
    t->ncp += ncp;
    return NOTES_OK;
}
/* Delete `count` code points at `cp` (cp + count <= ncp). */
static inline void notes__tbuf_delete(struct notes__tbuf *t, size_t cp,
                                      size_t count)
{
    if (notes__tbuf_bytes(t) == t->ncp && count) { /* ASCII: cp == byte */
        if (cp + count == t->gcp) { /* backspace: the gap grows left */
            t->gs -= count;
            t->gcp = cp;
            t->ncp -= count;
            return;
        }
        if (cp == t->gcp) { /* delete forward: the gap grows right */
            t->ge += count;
            t->ncp -= count;
            return;
        }
    }
    notes__tbuf_delete_slow(t, cp, count);
}
/* Contiguous NUL-terminated text (moves the gap to the end). */
const char *notes__tbuf_text(struct notes__tbuf *t);

/* One run of operations: events [start, start+len). */
struct notes__oprun {
    notes_lv start;
    uint32_t len;
    uint32_t pos;       /* position of the first event */
    uint8_t kind;       /* NOTES__OP_INS / NOTES__OP_DEL */
    uint8_t fwd;        /* DEL: 1 = event i at pos, 0 = event i at pos - i */
    uint8_t ascii;      /* INS: content is pure ASCII (cp == byte) */
    uint32_t content;   /* INS: byte offset in the content arena */
    uint32_t nbytes;    /* INS: content bytes */
};

/* Agent assignment: events [start, start+len) are agent's seq .. seq+len-1. */
struct notes__agentrun {
    notes_lv start;
    uint32_t len;
    uint32_t agent;
    uint64_t seq;
};

/* Causal graph: event `start` has the listed parents; every later event of
 * the run has parent lv - 1. */
struct notes__graphrun {
    notes_lv start;
    uint32_t len;
    uint32_t parents;   /* offset in the parents pool */
    uint32_t nparents;
};

/*
 * The three kinds of run begin alike (start, then len), so one lookup serves
 * them all, given the size of a run. The fields are read through memcpy, as
 * the run's own type is not known here; with a constant size the compiler
 * makes of it the same loads as a lookup written for one kind.
 */
_Static_assert(offsetof(struct notes__oprun, start) == 0 &&
                   offsetof(struct notes__agentrun, start) == 0 &&
                   offsetof(struct notes__graphrun, start) == 0,
               "a run begins with its start");
_Static_assert(offsetof(struct notes__oprun, len) == sizeof(notes_lv) &&
                   offsetof(struct notes__agentrun, len) == sizeof(notes_lv) &&
                   offsetof(struct notes__graphrun, len) == sizeof(notes_lv),
               "a run's len follows its start");

static inline notes_lv notes__run_start(const void *runs, size_t size, size_t i)
{
    notes_lv s;
    memcpy(&s, (const char *)runs + i * size, sizeof(s));
    return s;
}

static inline uint32_t notes__run_len(const void *runs, size_t size, size_t i)
{
    uint32_t len;
    memcpy(&len, (const char *)runs + i * size + sizeof(notes_lv), sizeof(len));
    return len;
}

/* The run holding lv among n contiguous runs of `size` bytes covering
 * [0, lv + 1) at least: a binary search. */
static inline size_t notes__run_find(const void *runs, size_t n, size_t size,
                                     notes_lv lv)
{
    size_t lo = 0, hi = n;
    /* Most lookups are for recent events: try the last run first. */
    if (hi > 1 && notes__run_start(runs, size, hi - 1) <= lv)
        return hi - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (notes__run_start(runs, size, mid) <= lv)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

struct notes__oplog {
    notes_lv n; /* events */

    struct notes__oprun *ops;
    size_t nops, capops;
    struct notes__agentrun *aruns;
    size_t naruns, caparuns;
    struct notes__graphrun *gruns;
    size_t ngruns, capgruns;
    notes_lv *ppool; /* parents of graph runs */
    size_t npool, cappool;
    char *content;   /* inserted UTF-8, in event order */
    size_t ncontent, capcontent;

    uint8_t (*keys)[64]; /* key, then tie key (notes__oplog_agent_tie) */
    size_t nagents, capagents;

    notes_lv *frontier;
    size_t nfrontier, capfrontier;

    struct notes__tbuf text;
    struct notes__mcache *cache; /* merge tracker kept between merges */

    notes__text_obs obs;         /* told of every change to `text` */
    void *obs_ud;
};

/*
 * The commonest keystroke, for notes__oplog_add_local and the splice that
 * calls it: one more ASCII character c typed at pos, right after the last
 * one by the same agent on a linear history, at the gap, with room
 * everywhere. Each run grows by one and the byte is stored twice: what the
 * general code does then, step for step (the same checks, the same
 * result). Returns 1 when done (*first_lv set), 0 to take the general path.
 */
static inline int notes__oplog_type_lane(struct notes__oplog *op,
                                         uint32_t agent, uint64_t seq,
                                         uint32_t pos, char c,
                                         notes_lv *first_lv)
{
    notes_lv first = op->n;
    if (op->nfrontier != 1 || first == 0 || op->frontier[0] != first - 1 ||
        agent >= op->nagents || op->obs || op->cache)
        return 0;
    struct notes__oprun *last = &op->ops[op->nops - 1];
    struct notes__agentrun *la = &op->aruns[op->naruns - 1];
    struct notes__graphrun *lg = &op->gruns[op->ngruns - 1];
    struct notes__tbuf *t = &op->text;
    if (!(last->kind == NOTES__OP_INS && last->start + last->len == first &&
          (uint64_t)last->pos + last->len == pos &&
          last->content + last->nbytes == op->ncontent &&
          op->ncontent < op->capcontent && op->ncontent < UINT32_MAX &&
          la->agent == agent && la->start + la->len == first &&
          la->seq + la->len == seq && lg->start + lg->len == first &&
          first < NOTES__LV_MAX && op->npool < UINT32_MAX &&
          pos == t->gcp && t->ge - t->gs > 1))
        return 0;
    last->len++;
    last->nbytes++;
    op->content[op->ncontent++] = c;
    la->len++;
    lg->len++;
    op->n = first + 1;
    op->frontier[0] = first;
    t->buf[t->gs++] = c;
    t->gcp++;
    t->ncp++;
    if (first_lv)
        *first_lv = first;
    return 1;
}

/*
 * The same for one character deleted at pos next to the last one deleted
 * by the same agent (backspacing, or deleting forward) in ASCII text, at
 * the gap.
 */
static inline int notes__oplog_del_lane(struct notes__oplog *op,
                                        uint32_t agent, uint64_t seq,
                                        uint32_t pos, notes_lv *first_lv)
{
    notes_lv first = op->n;
    struct notes__tbuf *t = &op->text;
    if (op->nfrontier != 1 || first == 0 || op->frontier[0] != first - 1 ||
        agent >= op->nagents || op->obs || op->cache ||
        notes__tbuf_bytes(t) != t->ncp)
        return 0;
    struct notes__oprun *last = &op->ops[op->nops - 1];
    struct notes__agentrun *la = &op->aruns[op->naruns - 1];
    struct notes__graphrun *lg = &op->gruns[op->ngruns - 1];
    int fwd = last->fwd && pos == last->pos;
    int back = !fwd && (last->len == 1 || !last->fwd) &&
               (uint64_t)pos + last->len == last->pos;
    if (!((fwd || back) && last->kind == NOTES__OP_DEL &&
          last->start + last->len == first && la->agent == agent &&
          la->start + la->len == first && la->seq + la->len == seq &&
          lg->start + lg->len == first && first < NOTES__LV_MAX &&
          op->npool < UINT32_MAX && pos < t->ncp &&
          (pos + 1 == t->gcp || pos == t->gcp)))
        return 0;
    if (back)
        last->fwd = 0;
    last->len++;
    la->len++;
    lg->len++;
    op->n = first + 1;
    op->frontier[0] = first;
    if (pos + 1 == t->gcp) { /* backspace: the gap grows left */
        t->gs--;
        t->gcp = pos;
    } else { /* delete forward: the gap grows right */
        t->ge++;
    }
    t->ncp--;
    if (first_lv)
        *first_lv = first;
    return 1;
}

/* Lookups (binary search over runs). lv must be < n. */
size_t notes__oplog_find_op(const struct notes__oplog *op, notes_lv lv);
size_t notes__oplog_find_graph(const struct notes__oplog *op, notes_lv lv);
/* Parents of one event: either a pointer into the pool or {lv - 1} in *tmp.
 * Returns the number of parents. */
size_t notes__oplog_parents_of(const struct notes__oplog *op, notes_lv lv,
                               const notes_lv **out, notes_lv *tmp);
/* Compare the (key, seq) ids of two events: <0, 0, >0. */
int notes__oplog_cmp_ids(const struct notes__oplog *op, notes_lv a, notes_lv b);

/* Merge path (text_merge.c): the events [first, op->n) were just appended
 * (one run) with parents not equal to the old frontier `oldf`. Transform them
 * and apply them to op->text. Returns NOTES_EBADOP if their positions are out
 * of range at their parent version (nothing applied), or NOTES_ENOMEM. */
int notes__merge_apply(struct notes__oplog *op, const notes_lv *oldf,
                       size_t noldf, notes_lv first);
/* Test knob (not thread-safe, tests only): 0 normal; 1 never reuse the merge
 * tracker between merges; 2 also replay every merge from the empty document
 * instead of the conflict base version. All modes must give the same text. */
extern int notes__text_merge_mode;
/* Free the cached merge tracker (if any). */
void notes__merge_drop(struct notes__oplog *op);
/* Called after a fast-path add: drops the cached tracker once too many events
 * would have to be caught up. */
void notes__merge_note_fast(struct notes__oplog *op);

#endif
