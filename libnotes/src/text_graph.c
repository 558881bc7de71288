/*
 * text_graph.c: walks over the event graph for the merge: which events one
 * version has and another lacks (diff), and the conflict walk that finds
 * the version every later event descends from (find_conflicting).
 */
#include <stdlib.h>
#include <string.h>

#include "text_graph.h"

#define GROW(arr, cap, need) NOTES__TEXT_GROW(arr, cap, need, 16)

int notes__text_ranges_push(struct ranges *rs, notes_lv s, notes_lv e)
{
    if (s >= e)
        return NOTES_OK;
    /* The walks emit in descending order: extend the previous range. */
    if (rs->n && rs->r[rs->n - 1][0] == e) {
        rs->r[rs->n - 1][0] = s;
        return NOTES_OK;
    }
    int rc = GROW(rs->r, rs->cap, rs->n + 1);
    if (rc)
        return rc;
    rs->r[rs->n][0] = s;
    rs->r[rs->n][1] = e;
    rs->n++;
    return NOTES_OK;
}

/*
 * The walks' two priority queues are binary max-heaps of different entries
 * and orders (an event by its LV; a version by its LVs in turn): one
 * sift-up and one sift-down serve both, written once as macros so that each
 * queue's comparison stays inline. BELOW(x, y): x belongs below y.
 */
/* Add e (room for it reserved) as the (n+1)th entry of h. */
#define HEAP_SIFT_UP(h, n, e, BELOW)                                          \
    do {                                                                      \
        size_t i_ = (n)++;                                                    \
        while (i_ > 0) {                                                      \
            size_t p_ = (i_ - 1) / 2;                                         \
            if (!BELOW((h)[p_], (e)))                                         \
                break;                                                        \
            (h)[i_] = (h)[p_];                                                \
            i_ = p_;                                                          \
        }                                                                     \
        (h)[i_] = (e);                                                        \
    } while (0)
/* Put e, the entry taken from the end, in the place of the top taken. */
#define HEAP_SIFT_DOWN(h, n, e, BELOW)                                        \
    do {                                                                      \
        size_t i_ = 0;                                                        \
        for (;;) {                                                            \
            size_t c_ = 2 * i_ + 1;                                           \
            if (c_ >= (n))                                                    \
                break;                                                        \
            if (c_ + 1 < (n) && BELOW((h)[c_], (h)[c_ + 1]))                  \
                c_++;                                                         \
            if (!BELOW((e), (h)[c_]))                                         \
                break;                                                        \
            (h)[i_] = (h)[c_];                                                \
            i_ = c_;                                                          \
        }                                                                     \
        if (n)                                                                \
            (h)[i_] = (e);                                                    \
    } while (0)

#define HENT_BELOW(x, y) ((x).lv < (y).lv)

static int heap_push(struct heap *hp, notes_lv lv, uint32_t flag)
{
    int rc = GROW(hp->h, hp->cap, hp->n + 1);
    if (rc)
        return rc;
    struct hent e = {lv, flag};
    HEAP_SIFT_UP(hp->h, hp->n, e, HENT_BELOW);
    return NOTES_OK;
}

static struct hent heap_pop(struct heap *hp)
{
    struct hent top = hp->h[0];
    struct hent last = hp->h[--hp->n];
    HEAP_SIFT_DOWN(hp->h, hp->n, last, HENT_BELOW);
    return top;
}

enum { FA = 1, FB = 2, FSHARED = 3 };

/*
 * Events in history(a) but not history(b) go to only_a, the reverse to only_b,
 * both in descending order (ranges [s, e) emitted from high to low).
 */
int notes__text_graph_diff(const struct notes__oplog *op, const notes_lv *a,
                           size_t na, const notes_lv *b, size_t nb,
                           struct ranges *only_a, struct ranges *only_b,
                           struct heap *hp, size_t *ghint)
{
    int rc = NOTES_OK;
    size_t nonshared = 0;
    hp->n = 0;
    only_a->n = only_b->n = 0;
    for (size_t i = 0; i < na; i++) {
        if ((rc = heap_push(hp, a[i], FA)))
            return rc;
        nonshared++;
    }
    for (size_t i = 0; i < nb; i++) {
        if ((rc = heap_push(hp, b[i], FB)))
            return rc;
        nonshared++;
    }
    while (nonshared > 0) {
        struct hent e = heap_pop(hp);
        if (e.flag != FSHARED)
            nonshared--;
        uint32_t flag = e.flag;
        notes_lv lv = e.lv;
        const struct notes__graphrun *g = &op->gruns[find_graph_h(op, lv, ghint)];
        notes_lv start = g->start, end = lv + 1;
        while (hp->n && hp->h[0].lv >= start) {
            struct hent o = heap_pop(hp);
            if (o.flag != FSHARED)
                nonshared--;
            if (o.lv + 1 < end) {
                if (flag == FA)
                    rc = notes__text_ranges_push(only_a, o.lv + 1, end);
                else if (flag == FB)
                    rc = notes__text_ranges_push(only_b, o.lv + 1, end);
                if (rc)
                    return rc;
                end = o.lv + 1;
            }
            flag |= o.flag;
        }
        if (flag == FA)
            rc = notes__text_ranges_push(only_a, start, end);
        else if (flag == FB)
            rc = notes__text_ranges_push(only_b, start, end);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < g->nparents; i++) {
            if ((rc = heap_push(hp, op->ppool[g->parents + i], flag)))
                return rc;
            if (flag != FSHARED)
                nonshared++;
        }
    }
    return NOTES_OK;
}

/*
 * The conflict walk (eg-walker-reference findConflicting): a queue of versions
 * ordered by their largest LV; pop the largest, visit its run, enqueue the
 * run's parents, until a single version C remains. Every visited event
 * descends from all of C and history(a) u history(b) = visited u history(C).
 */
struct vent {
    uint32_t off, n; /* LVs in vpool, descending */
};
struct vqueue {
    struct vent *h;
    size_t n, cap;
    notes_lv *pool;
    size_t npool, cappool;
};

static int vcmp(const struct vqueue *q, struct vent x, struct vent y)
{
    for (uint32_t i = 0; i < x.n && i < y.n; i++) {
        notes_lv a = q->pool[x.off + i], b = q->pool[y.off + i];
        if (a != b)
            return a < b ? -1 : 1;
    }
    return x.n < y.n ? -1 : x.n > y.n;
}

/* Below in the queue: its LVs compare lower (q in scope). */
#define VENT_BELOW(x, y) (vcmp(q, (x), (y)) < 0)

static int cmp_desc(const void *a, const void *b)
{
    notes_lv x = *(const notes_lv *)a, y = *(const notes_lv *)b;
    return x > y ? -1 : x < y;
}

static int vq_push(struct vqueue *q, const notes_lv *v, size_t n)
{
    int rc;
    if ((rc = GROW(q->pool, q->cappool, q->npool + n)) ||
        (rc = GROW(q->h, q->cap, q->n + 1)))
        return rc;
    struct vent e = {(uint32_t)q->npool, (uint32_t)n};
    if (n)
        memcpy(q->pool + q->npool, v, n * sizeof(notes_lv));
    q->npool += n;
    if (n > 1)
        qsort(q->pool + e.off, n, sizeof(notes_lv), cmp_desc);
    HEAP_SIFT_UP(q->h, q->n, e, VENT_BELOW);
    return NOTES_OK;
}

static struct vent vq_pop(struct vqueue *q)
{
    struct vent top = q->h[0];
    struct vent last = q->h[--q->n];
    HEAP_SIFT_DOWN(q->h, q->n, last, VENT_BELOW);
    return top;
}

static void vq_release(struct vqueue *q)
{
    notes__free(q->h);
    notes__free(q->pool);
}

static int cmp_range(const void *a, const void *b)
{
    const notes_lv *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* OUT: *c (allocated, n in *nc) and rs: visited ranges, sorted ascending and
 * coalesced. Returns LIMIT_HIT (nothing allocated in *c) once more than
 * `limit` events were visited. */
int notes__text_find_conflicting(const struct notes__oplog *op,
                                 const notes_lv *a, size_t na,
                                 const notes_lv *b, size_t nb, notes_lv **c,
                                 size_t *nc, struct ranges *rs, size_t limit)
{
    struct vqueue q = {0};
    size_t visited = 0;
    int rc;
    *c = NULL;
    *nc = 0;
    rs->n = 0;
    if ((rc = vq_push(&q, a, na)) || (rc = vq_push(&q, b, nb)))
        goto out;
    for (;;) {
        struct vent v = vq_pop(&q);
        if (v.n == 0)
            break; /* the root: C = {} */
        while (q.n && vcmp(&q, q.h[0], v) == 0)
            vq_pop(&q);
        if (q.n == 0) {
            *c = notes__malloc(v.n * sizeof(notes_lv));
            if (!*c) {
                rc = NOTES_ENOMEM;
                goto out;
            }
            for (uint32_t i = 0; i < v.n; i++) /* ascending, like frontiers */
                (*c)[i] = q.pool[v.off + v.n - 1 - i];
            *nc = v.n;
            break;
        }
        for (uint32_t i = 1; i < v.n; i++) {
            notes_lv x = q.pool[v.off + i];
            if ((rc = vq_push(&q, &x, 1)))
                goto out;
        }
        notes_lv t = q.pool[v.off];
        const struct notes__graphrun *g = &op->gruns[notes__oplog_find_graph(op, t)];
        notes_lv start = g->start, end = t + 1;
        int done = 0;
        for (;;) {
            if (q.n == 0) {
                *c = notes__malloc(sizeof(notes_lv));
                if (!*c) {
                    rc = NOTES_ENOMEM;
                    goto out;
                }
                (*c)[0] = end - 1;
                *nc = 1;
                done = 1;
                break;
            }
            struct vent p = q.h[0];
            if (p.n >= 1 && q.pool[p.off] >= start) {
                vq_pop(&q);
                notes_lv pl = q.pool[p.off];
                if (pl + 1 < end) {
                    if ((rc = notes__text_ranges_push(rs, pl + 1, end)))
                        goto out;
                    end = pl + 1;
                }
                for (uint32_t i = 1; i < p.n; i++) {
                    notes_lv x = q.pool[p.off + i];
                    if ((rc = vq_push(&q, &x, 1)))
                        goto out;
                }
            } else {
                break;
            }
        }
        if (done)
            break;
        if ((rc = notes__text_ranges_push(rs, start, end)))
            goto out;
        visited += t + 1 - start;
        if (visited > limit) {
            rc = LIMIT_HIT;
            goto out;
        }
        if ((rc = vq_push(&q, op->ppool + g->parents, g->nparents)))
            goto out;
    }
    /* Sort ascending and coalesce. */
    if (rs->n > 1) {
        qsort(rs->r, rs->n, sizeof(rs->r[0]), cmp_range);
        size_t w = 0;
        for (size_t i = 1; i < rs->n; i++) {
            if (rs->r[i][0] <= rs->r[w][1]) {
                if (rs->r[i][1] > rs->r[w][1])
                    rs->r[w][1] = rs->r[i][1];
            } else {
                rs->r[++w][0] = rs->r[i][0];
                rs->r[w][1] = rs->r[i][1];
            }
        }
        rs->n = w + 1;
    }
out:
    vq_release(&q);
    if (rc) {
        notes__free(*c);
        *c = NULL;
    }
    return rc;
}
