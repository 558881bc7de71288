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
 * search. Runs are contiguous and cover [0, op->n); lv < op->n. */
static inline size_t find_op_h(const struct notes__oplog *op, notes_lv lv, size_t *hint)
{
    size_t h = *hint;
    if (h < op->nops) {
        const struct notes__oprun *o = &op->ops[h];
        if (lv >= o->start) {
            if (lv - o->start < o->len)
                return h;
            if (h + 1 < op->nops && lv - op->ops[h + 1].start < op->ops[h + 1].len)
                return *hint = h + 1;
        } else if (h > 0 && lv >= op->ops[h - 1].start) {
            return *hint = h - 1;
        }
    }
    return *hint = notes__oplog_find_op(op, lv);
}

static inline size_t find_graph_h(const struct notes__oplog *op, notes_lv lv, size_t *hint)
{
    size_t h = *hint;
    if (h < op->ngruns) {
        const struct notes__graphrun *g = &op->gruns[h];
        if (lv >= g->start) {
            if (lv - g->start < g->len)
                return h;
            if (h + 1 < op->ngruns &&
                lv - op->gruns[h + 1].start < op->gruns[h + 1].len)
                return *hint = h + 1;
        } else if (h > 0 && lv >= op->gruns[h - 1].start) {
            return *hint = h - 1;
        }
    }
    return *hint = notes__oplog_find_graph(op, lv);
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
