/*
 * text_oplog.c: the event log (RLE runs of ops, agents, causal graph), the
 * fast path for adds whose parents are the current frontier, and accessors.
 * The merge path lives in text_merge.c.
 */
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define GROW(arr, cap, need) NOTES__TEXT_GROW(arr, cap, need, 8)

/* Validate UTF-8 and count its code points (notes__utf8_points): 0 if
 * invalid. */
static int utf8_check_count(const uint8_t *s, size_t n, size_t *ncp)
{
    size_t c = notes__utf8_points(s, n);
    if (c == SIZE_MAX)
        return 0;
    *ncp = c;
    return 1;
}

int notes__oplog_new(struct notes__oplog **out)
{
    if (!out)
        return NOTES_EINVAL;
    struct notes__oplog *op = notes__calloc(1, sizeof(*op));
    if (!op)
        return NOTES_ENOMEM;
    notes__tbuf_init(&op->text);
    *out = op;
    return NOTES_OK;
}

void notes__oplog_observe(struct notes__oplog *op, notes__text_obs fn,
                          void *ud)
{
    op->obs = fn;
    op->obs_ud = ud;
}

void notes__oplog_free(struct notes__oplog *op)
{
    if (!op)
        return;
    notes__free(op->ops);
    notes__free(op->aruns);
    notes__free(op->gruns);
    notes__free(op->ppool);
    notes__free(op->content);
    notes__free(op->keys);
    notes__free(op->frontier);
    notes__merge_drop(op);
    notes__tbuf_release(&op->text);
    notes__free(op);
}

int notes__oplog_agent_tie(struct notes__oplog *op, const uint8_t key[32],
                           const uint8_t tie[32], uint32_t *agent)
{
    static const uint8_t zero[32];
    if (!op || !key || !agent)
        return NOTES_EINVAL;
    if (!tie)
        tie = zero;
    for (size_t i = 0; i < op->nagents; i++) {
        if (memcmp(op->keys[i], key, 32) == 0 &&
            memcmp(op->keys[i] + 32, tie, 32) == 0) {
            *agent = (uint32_t)i;
            return NOTES_OK;
        }
    }
    if (op->nagents >= UINT32_MAX - 1)
        return NOTES_ETOOBIG;
    int rc = GROW(op->keys, op->capagents, op->nagents + 1);
    if (rc)
        return rc;
    memcpy(op->keys[op->nagents], key, 32);
    memcpy(op->keys[op->nagents] + 32, tie, 32);
    *agent = (uint32_t)op->nagents++;
    return NOTES_OK;
}

int notes__oplog_agent(struct notes__oplog *op, const uint8_t key[32],
                       uint32_t *agent)
{
    return notes__oplog_agent_tie(op, key, NULL, agent);
}

size_t notes__oplog_len(const struct notes__oplog *op)
{
    return op ? op->n : 0;
}

const notes_lv *notes__oplog_frontier(const struct notes__oplog *op, size_t *n)
{
    *n = op->nfrontier;
    return op->frontier;
}

const char *notes__oplog_text(struct notes__oplog *op, size_t *nbytes,
                              size_t *ncodepoints)
{
    const char *s = notes__tbuf_text(&op->text);
    if (nbytes)
        *nbytes = notes__tbuf_bytes(&op->text);
    if (ncodepoints)
        *ncodepoints = op->text.ncp;
    return s;
}

/* ---- lookups ---- */

size_t notes__oplog_find_op(const struct notes__oplog *op, notes_lv lv)
{
    return notes__run_find(op->ops, op->nops, sizeof(*op->ops), lv);
}

size_t notes__oplog_find_graph(const struct notes__oplog *op, notes_lv lv)
{
    return notes__run_find(op->gruns, op->ngruns, sizeof(*op->gruns), lv);
}

static size_t find_agent_run(const struct notes__oplog *op, notes_lv lv)
{
    return notes__run_find(op->aruns, op->naruns, sizeof(*op->aruns), lv);
}

size_t notes__oplog_parents_of(const struct notes__oplog *op, notes_lv lv,
                               const notes_lv **out, notes_lv *tmp)
{
    const struct notes__graphrun *g = &op->gruns[notes__oplog_find_graph(op, lv)];
    if (lv == g->start) {
        *out = op->ppool + g->parents;
        return g->nparents;
    }
    *tmp = lv - 1;
    *out = tmp;
    return 1;
}

void notes__oplog_event_id(const struct notes__oplog *op, notes_lv lv,
                           uint32_t *agent, uint64_t *seq)
{
    if (!op || lv >= op->n) {
        if (agent)
            *agent = UINT32_MAX;
        if (seq)
            *seq = 0;
        return;
    }
    const struct notes__agentrun *a = &op->aruns[find_agent_run(op, lv)];
    if (agent)
        *agent = a->agent;
    if (seq)
        *seq = a->seq + (lv - a->start);
}

int notes__oplog_cmp_ids(const struct notes__oplog *op, notes_lv a, notes_lv b)
{
    uint32_t aa, ab;
    uint64_t sa, sb;
    notes__oplog_event_id(op, a, &aa, &sa);
    notes__oplog_event_id(op, b, &ab, &sb);
    if (aa != ab) {
        int c = memcmp(op->keys[aa], op->keys[ab], 32);
        if (c)
            return c;
    }
    if (sa != sb)
        return sa < sb ? -1 : 1;
    /* One key, one seq: an equivocation's two changes. Their tie keys (the
     * change ids) order them the same on every replica. */
    if (aa != ab) {
        int c = memcmp(op->keys[aa] + 32, op->keys[ab] + 32, 32);
        if (c)
            return c;
    }
    return a < b ? -1 : a > b; /* only for hostile duplicate ids */
}

/* ---- add ---- */

static int cmp_lv(const void *a, const void *b)
{
    notes_lv x = *(const notes_lv *)a, y = *(const notes_lv *)b;
    return x < y ? -1 : x > y;
}

/*
 * What an append changes, and so what undoing it puts back: the column
 * counts, and the last run of each column (an append may have RLE-merged
 * into it). One list, so that saving and restoring cannot drift apart.
 */
#define UNDO_COUNTS(X) X(n) X(nops) X(naruns) X(ngruns) X(npool) X(ncontent) X(nfrontier)
#define UNDO_LAST_RUNS(X) X(lastop, ops, nops) X(lastarun, aruns, naruns) X(lastgrun, gruns, ngruns)

struct undo {
    notes_lv n;
    size_t nops, naruns, ngruns, npool, ncontent, nfrontier;
    struct notes__oprun lastop;
    struct notes__agentrun lastarun;
    struct notes__graphrun lastgrun;
};

static void save_undo(const struct notes__oplog *op, struct undo *u)
{
#define SAVE_COUNT(f) u->f = op->f;
#define SAVE_LAST(last, col, count) \
    if (op->count)                   \
        u->last = op->col[op->count - 1];
    UNDO_COUNTS(SAVE_COUNT)
    UNDO_LAST_RUNS(SAVE_LAST)
#undef SAVE_COUNT
#undef SAVE_LAST
}

static void restore_undo(struct notes__oplog *op, const struct undo *u,
                         const notes_lv *oldf)
{
#define RESTORE_COUNT(f) op->f = u->f;
#define RESTORE_LAST(last, col, count) \
    if (op->count)                      \
        op->col[op->count - 1] = u->last;
    UNDO_COUNTS(RESTORE_COUNT)
    UNDO_LAST_RUNS(RESTORE_LAST)
#undef RESTORE_COUNT
#undef RESTORE_LAST
    if (u->nfrontier)
        memcpy(op->frontier, oldf, u->nfrontier * sizeof(notes_lv));
}

/*
 * Append the run to the log columns (RLE-merging with the previous runs when
 * possible) and update the frontier. All capacity was reserved by the caller
 * so this cannot fail.
 */
#if defined(__GNUC__)
__attribute__((always_inline)) /* hot: once per add, 11 arguments */
#endif
static inline void append_run(struct notes__oplog *op, uint32_t agent,
                              uint64_t seq, const notes_lv *par, size_t np,
                              int kind, uint32_t pos, const char *utf8,
                              size_t nbytes, uint32_t k, int ascii)
{
    notes_lv first = op->n;
    int chained = np == 1 && first > 0 && par[0] == first - 1;

    /* ops */
    struct notes__oprun *last = op->nops ? &op->ops[op->nops - 1] : NULL;
    int merged = 0;
    if (last && chained && last->start + last->len == first && last->kind == kind) {
        if (kind == NOTES__OP_INS) {
            if ((uint64_t)last->pos + last->len == pos &&
                last->content + last->nbytes == op->ncontent) {
                last->len += k;
                last->nbytes += (uint32_t)nbytes;
                last->ascii = last->ascii && ascii;
                merged = 1;
            }
        } else if (last->fwd && pos == last->pos) {
            last->len += k;
            merged = 1;
        } else if (k == 1 && (last->len == 1 || !last->fwd) &&
                   (uint64_t)pos + last->len == last->pos) {
            last->fwd = 0;
            last->len += 1;
            merged = 1;
        }
    }
    if (!merged) {
        struct notes__oprun *r = &op->ops[op->nops++];
        r->start = first;
        r->len = k;
        r->pos = pos;
        r->kind = (uint8_t)kind;
        r->fwd = 1;
        r->ascii = (uint8_t)ascii;
        r->content = (uint32_t)op->ncontent;
        r->nbytes = kind == NOTES__OP_INS ? (uint32_t)nbytes : 0;
    }
    if (kind == NOTES__OP_INS) {
        notes__copy_bytes(op->content + op->ncontent, utf8, nbytes);
        op->ncontent += nbytes;
    }

    /* agents */
    struct notes__agentrun *la = op->naruns ? &op->aruns[op->naruns - 1] : NULL;
    if (la && la->agent == agent && la->start + la->len == first &&
        la->seq + la->len == seq) {
        la->len += k;
    } else {
        struct notes__agentrun *a = &op->aruns[op->naruns++];
        a->start = first;
        a->len = k;
        a->agent = agent;
        a->seq = seq;
    }

    /* graph */
    struct notes__graphrun *lg = op->ngruns ? &op->gruns[op->ngruns - 1] : NULL;
    if (lg && chained && lg->start + lg->len == first) {
        lg->len += k;
    } else {
        struct notes__graphrun *g = &op->gruns[op->ngruns++];
        g->start = first;
        g->len = k;
        g->parents = (uint32_t)op->npool;
        g->nparents = (uint32_t)np;
        if (np)
            memcpy(op->ppool + op->npool, par, np * sizeof(notes_lv));
        op->npool += np;
    }
    op->n = first + k;

    /* frontier: drop the parents, add the last event (keeps it sorted since
     * the new LV is the largest). Both lists are sorted: one merge walk. */
    size_t w = 0;
    for (size_t i = 0, j = 0; i < op->nfrontier; i++) {
        notes_lv f = op->frontier[i];
        while (j < np && par[j] < f)
            j++;
        if (j == np || par[j] != f)
            op->frontier[w++] = f;
    }
    op->frontier[w++] = op->n - 1;
    op->nfrontier = w;
}

/* A run whose parents are the whole frontier (no transform): appended,
 * and the text (room reserved), the observer and the merge cache told.
 * ndel: characters deleted (kind DEL). */
static inline void append_at_end(struct notes__oplog *op, uint32_t agent,
                                 uint64_t seq, const notes_lv *par, size_t np,
                                 int kind, uint32_t pos, const char *utf8,
                                 size_t nbytes, uint32_t k, int ascii,
                                 uint32_t ndel)
{
    append_run(op, agent, seq, par, np, kind, pos, utf8, nbytes, k, ascii);
    if (kind == NOTES__OP_INS)
        notes__tbuf_insert(&op->text, pos, utf8, nbytes, k); /* reserved */
    else
        notes__tbuf_delete(&op->text, pos, ndel);
    if (op->obs)
        op->obs(op->obs_ud, pos, kind == NOTES__OP_INS ? 0 : ndel,
                kind == NOTES__OP_INS ? utf8 : NULL,
                kind == NOTES__OP_INS ? nbytes : 0);
    if (op->cache)
        notes__merge_note_fast(op);
}

int notes__oplog_add_local(struct notes__oplog *op, uint32_t agent,
                           uint64_t seq, int kind, uint32_t pos,
                           const char *utf8, size_t nbytes, uint32_t k,
                           notes_lv *first_lv)
{
    notes_lv first = op->n;
    /* Typing on a linear history: the frontier is the last event alone, so
     * the parents need no normalising and the add is on the fast path. */
    if (op->nfrontier != 1 || first == 0 || op->frontier[0] != first - 1 ||
        agent >= op->nagents || k == 0 ||
        (kind == NOTES__OP_INS ? nbytes == 0 : kind != NOTES__OP_DEL))
        return notes__oplog_add(op, agent, seq, op->frontier, op->nfrontier,
                                kind, pos, utf8, nbytes,
                                kind == NOTES__OP_DEL ? k : 0, first_lv);
    /* The commonest keystroke (text.h). */
    if (kind == NOTES__OP_INS && nbytes == 1 && k == 1 &&
        notes__oplog_type_lane(op, agent, seq, pos, utf8[0], first_lv))
        return NOTES_OK;
    /* One character deleted next to the last one deleted (text.h). */
    if (kind == NOTES__OP_DEL && k == 1 &&
        notes__oplog_del_lane(op, agent, seq, pos, first_lv))
        return NOTES_OK;
    size_t len = op->text.ncp;
    if (kind == NOTES__OP_INS ? pos > len : (pos > len || k > len - pos))
        return NOTES_EBADOP;
    if (kind == NOTES__OP_DEL)
        nbytes = 0;
    if ((k > UINT64_MAX - seq + 1 && seq != 0))
        return NOTES_EINVAL; /* seq + k - 1 overflows */
    if ((uint64_t)first + k > NOTES__LV_MAX ||
        op->ncontent + nbytes > UINT32_MAX || op->npool + 1 > UINT32_MAX)
        return NOTES_ETOOBIG;
    int rc;
    if ((rc = GROW(op->ops, op->capops, op->nops + 1)) ||
        (rc = GROW(op->aruns, op->caparuns, op->naruns + 1)) ||
        (rc = GROW(op->gruns, op->capgruns, op->ngruns + 1)) ||
        (rc = GROW(op->ppool, op->cappool, op->npool + 2)) ||
        (rc = GROW(op->content, op->capcontent, op->ncontent + nbytes)) ||
        (rc = GROW(op->frontier, op->capfrontier, 2)))
        return rc;
    if (!op->ops || !op->aruns || !op->gruns || !op->ppool)
        return NOTES_ENOMEM; /* not after the GROWs; said for the analyzer */
    if (kind == NOTES__OP_INS && (rc = notes__tbuf_reserve(&op->text, nbytes)))
        return rc;
    notes_lv par = first - 1;
    append_at_end(op, agent, seq, &par, 1, kind, pos, utf8, nbytes, k,
                  kind == NOTES__OP_INS && k == nbytes, k);
    if (first_lv)
        *first_lv = first;
    return NOTES_OK;
}

int notes__oplog_add(struct notes__oplog *op, uint32_t agent, uint64_t seq,
                     const notes_lv *parents, size_t nparents, int kind,
                     uint32_t pos, const char *utf8, size_t nbytes,
                     uint32_t count, notes_lv *first_lv)
{
    if (!op || agent >= op->nagents || (nparents && !parents))
        return NOTES_EINVAL;
    uint32_t k;
    int ascii = 0;
    if (kind == NOTES__OP_INS) {
        size_t ncp;
        if (!utf8 || nbytes == 0 || nbytes > UINT32_MAX ||
            !utf8_check_count((const uint8_t *)utf8, nbytes, &ncp))
            return NOTES_EINVAL;
        if (ncp > NOTES__LV_MAX)
            return NOTES_ETOOBIG;
        k = (uint32_t)ncp;
        ascii = ncp == nbytes;
    } else if (kind == NOTES__OP_DEL) {
        if (count == 0)
            return NOTES_EINVAL;
        if (count > op->n)
            return NOTES_EBADOP; /* longer than any version of the document */
        k = count;
        nbytes = 0;
    } else {
        return NOTES_EINVAL;
    }
    if (k > UINT64_MAX - seq + 1 && seq != 0)
        return NOTES_EINVAL; /* seq + k - 1 overflows */
    if ((uint64_t)op->n + k > NOTES__LV_MAX ||
        op->ncontent + nbytes > UINT32_MAX ||
        (uint64_t)op->npool + nparents > UINT32_MAX)
        return NOTES_ETOOBIG;
    for (size_t i = 0; i < nparents; i++)
        if (parents[i] >= op->n)
            return NOTES_EINVAL;

    /* Normalise the parents: sorted, unique. */
    notes_lv small[16];
    notes_lv *par = small;
    if (nparents > NOTES__ARRAY_LEN(small)) {
        if (nparents > SIZE_MAX / sizeof(notes_lv))
            return NOTES_EINVAL;
        par = notes__malloc(nparents * sizeof(notes_lv));
        if (!par)
            return NOTES_ENOMEM;
    }
    size_t np = 0;
    if (nparents == 1) {
        par[0] = parents[0];
        np = 1;
    } else if (nparents) {
        memcpy(par, parents, nparents * sizeof(notes_lv));
        if (nparents <= NOTES__ARRAY_LEN(small)) { /* insertion sort */
            for (size_t i = 1; i < nparents; i++) {
                notes_lv x = par[i];
                size_t j = i;
                for (; j > 0 && par[j - 1] > x; j--)
                    par[j] = par[j - 1];
                par[j] = x;
            }
        } else {
            qsort(par, nparents, sizeof(notes_lv), cmp_lv);
        }
        for (size_t i = 0; i < nparents; i++)
            if (np == 0 || par[np - 1] != par[i])
                par[np++] = par[i];
    }

    /* Fast path when the parents contain the whole frontier: then their
     * history is everything, i.e. the current text. (Extra parents can only
     * be ancestors of the frontier, which are redundant.) */
    int fast = np >= op->nfrontier;
    for (size_t i = 0, j = 0; fast && i < op->nfrontier; i++) {
        while (j < np && par[j] < op->frontier[i])
            j++;
        fast = j < np && par[j] == op->frontier[i];
    }
    int rc = NOTES_OK;
    if (fast) {
        size_t len = op->text.ncp;
        if (kind == NOTES__OP_INS ? pos > len : (pos > len || count > len - pos)) {
            rc = NOTES_EBADOP;
            goto out;
        }
    }

    /* Reserve everything so the append itself cannot fail. */
    if ((rc = GROW(op->ops, op->capops, op->nops + 1)) ||
        (rc = GROW(op->aruns, op->caparuns, op->naruns + 1)) ||
        (rc = GROW(op->gruns, op->capgruns, op->ngruns + 1)) ||
        (rc = GROW(op->ppool, op->cappool, op->npool + np + 1)) ||
        (rc = GROW(op->content, op->capcontent, op->ncontent + nbytes)) ||
        (rc = GROW(op->frontier, op->capfrontier, op->nfrontier + 1)))
        goto out;
    if (kind == NOTES__OP_INS && (rc = notes__tbuf_reserve(&op->text, nbytes)))
        goto out;

    notes_lv first = op->n;
    if (fast) {
        append_at_end(op, agent, seq, par, np, kind, pos, utf8, nbytes, k,
                      ascii, count);
    } else {
        /* Merge path: append tentatively, transform, undo on failure. */
        notes_lv fsmall[16];
        notes_lv *oldf = fsmall;
        size_t noldf = op->nfrontier;
        if (noldf > NOTES__ARRAY_LEN(fsmall)) {
            oldf = notes__malloc(noldf * sizeof(notes_lv));
            if (!oldf) {
                rc = NOTES_ENOMEM;
                goto out;
            }
        }
        if (noldf)
            memcpy(oldf, op->frontier, noldf * sizeof(notes_lv));
        struct undo u;
        save_undo(op, &u);
        append_run(op, agent, seq, par, np, kind, pos, utf8, nbytes, k, ascii);
        rc = notes__merge_apply(op, oldf, noldf, first);
        if (rc)
            restore_undo(op, &u, oldf);
        if (oldf != fsmall)
            notes__free(oldf);
        if (rc)
            goto out;
    }
    if (first_lv)
        *first_lv = first;
out:
    if (par != small)
        notes__free(par);
    return rc;
}
