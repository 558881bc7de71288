/*
 * text_graph.h: what text_merge.c shares with text_graph.c: the run lookups
 * with a cursor, LV ranges and the event heap, and the graph walks (diff of
 * two versions, the conflict walk). Private to libnotes.
 */
#ifndef NOTES_TEXT_GRAPH_H
#define NOTES_TEXT_GRAPH_H

#include "text.h"

/* Run lookups with a cursor: walks tend to look up the same or a neighbouring
 * run again, so check the hinted run and its neighbours before the binary
 * search (notes__run_find, which also says why one lookup serves every kind
 * of run). Runs are contiguous and cover [0, op->n); lv < op->n. */
static inline size_t find_run_h(const void *runs, size_t n, size_t size,
                                notes_lv lv, size_t *hint)
{
    size_t h = *hint;
    if (h < n) {
        notes_lv s = notes__run_start(runs, size, h);
        if (lv >= s) {
            if (lv - s < notes__run_len(runs, size, h))
                return h;
            if (h + 1 < n && lv - notes__run_start(runs, size, h + 1) <
                                 notes__run_len(runs, size, h + 1))
                return *hint = h + 1;
        } else if (h > 0 && lv >= notes__run_start(runs, size, h - 1)) {
            return *hint = h - 1;
        }
    }
    return *hint = notes__run_find(runs, n, size, lv);
}

static inline size_t find_op_h(const struct notes__oplog *op, notes_lv lv, size_t *hint)
{
    return find_run_h(op->ops, op->nops, sizeof(*op->ops), lv, hint);
}

static inline size_t find_graph_h(const struct notes__oplog *op, notes_lv lv, size_t *hint)
{
    return find_run_h(op->gruns, op->ngruns, sizeof(*op->gruns), lv, hint);
}

/* A list of LV ranges [s, e). */
struct ranges {
    notes_lv (*r)[2];
    size_t n, cap;
};

/* Heap of (lv, flag) with the largest lv on top. */
struct hent {
    notes_lv lv;
    uint32_t flag;
};
struct heap {
    struct hent *h;
    size_t n, cap;
};

/* find_conflicting gave up: more than `limit` events to visit. */
#define LIMIT_HIT 1

int notes__text_ranges_push(struct ranges *rs, notes_lv s, notes_lv e);
int notes__text_graph_diff(const struct notes__oplog *op, const notes_lv *a,
                           size_t na, const notes_lv *b, size_t nb,
                           struct ranges *only_a, struct ranges *only_b,
                           struct heap *hp, size_t *ghint);
int notes__text_find_conflicting(const struct notes__oplog *op,
                                 const notes_lv *a, size_t na,
                                 const notes_lv *b, size_t nb, notes_lv **c,
                                 size_t *nc, struct ranges *rs, size_t limit);

#endif
