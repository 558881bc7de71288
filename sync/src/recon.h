/*
 * recon.h: range-based set reconciliation (Meyer, "Range-Based Set
 * Reconciliation"; the design of negentropy) over a space's (note id ->
 * heads digest) pairs, I/O-free. docs/protocol.md, "Reconciliation", has
 * the wire format. Two replicas that agree learn it from one fingerprint;
 * k differences cost O(k log n) bytes. The outcome is the set of note ids
 * whose digest differs or that one side lacks; the HAVE/BUNDLE exchange
 * then runs for just those.
 */
#ifndef NOTES_SYNC_RECON_H
#define NOTES_SYNC_RECON_H

#include <stddef.h>
#include <stdint.h>

#include "sync_internal.h"

#define RECON_BUCKETS 16          /* a mismatching range splits this many ways */
#define RECON_LIST_MAX 16         /* this few items are listed, not split */
#define RECON_CHUNK (256u << 10)  /* bytes of ranges per RECON message */
#define RECON_DIFF_RANGE 4096     /* ids per DIFF range */
#define RECON_MAX_RANGES 65536    /* ranges the peer may send in one turn */
#define RECON_MAX_MSGS 256        /* RECON messages the peer may send per round */

struct recon_item {
    uint8_t id[16];
    uint8_t digest[16];           /* BLAKE2b-128 of the note's sorted heads */
};

struct recon {
    const struct recon_item *items; /* borrowed: sorted by id, unique */
    size_t n;
    uint64_t (*pre)[2];           /* prefix sums of the item hashes, mod 2^128 */
    uint8_t (*diff)[16];          /* ids found to differ (unsorted until done) */
    size_t ndiff, cdiff;
    /* the turn being read (it may span several messages) */
    uint8_t lo[16];               /* its next range's lower bound */
    int lo_inf;                   /* the turn reached the end */
    int in_turn;                  /* a turn is being read */
    int questions;                /* it asked something (FP or LIST) */
    size_t ranges, msgs;
    /* the answer being written */
    struct notes_buf out;         /* messages: u32 length, then payload */
    size_t msg_at;                /* offset of the current message's length */
    int out_questions;            /* we asked something */
    int skip_pending;             /* a skip not yet written */
    int done;                     /* no more questions either way */
};

/* items: sorted by id, unique, borrowed until notes_sync__recon_free. */
int notes_sync__recon_init(struct recon *r, const struct recon_item *items,
                           size_t n);
void notes_sync__recon_free(struct recon *r);
/* The first turn (the initiator's): its messages in r->out. */
int notes_sync__recon_start(struct recon *r);
/*
 * One RECON message of the peer's (payload p, n). Returns NOTES_OK or
 * NOTES_SYNC_EPROTO with a detail (nothing of ours changed but r). When
 * the peer's turn is complete, our answer is in r->out (empty when none is
 * owed) and r->done says whether reconciliation is over.
 */
int notes_sync__recon_recv(struct recon *r, const uint8_t *p, size_t n);
/* Whether the peer's turn is complete (its last message read). */
int notes_sync__recon_turn_over(const struct recon *r);
/* Once done: r->diff sorted and unique. */
void notes_sync__recon_finish(struct recon *r);

#endif
