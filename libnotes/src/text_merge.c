/*
 * text_merge.c: the Eg-walker merge path, checkout and origins.
 *
 * When a run's parents differ from the current frontier, we find a version C
 * that every event after it descends from (the "conflict" walk of
 * eg-walker-reference), build a temporary tracker whose initial content is a
 * placeholder for the document at C, replay every event after C (retreating
 * and advancing the prepare version between events), then apply the new run,
 * which yields its positions in the current text (the effect version).
 *
 * The tracker is a gap array of RLE spans in document order, tombstones
 * included. A span holds consecutive LVs inserted left to right: char i > 0
 * has origin_left id+i-1, and all chars share origin_right. Each span has a
 * prepare state sp (0 not inserted yet, 1 inserted, 2+ deleted sp-1 times)
 * and an effect state se (1 inserted, 0 deleted). Concurrent inserts are
 * ordered by the YjsMod / FugueMax integrate rule, ties by (key, seq).
 */
#include <stdlib.h>
#include <string.h>

#include "text_graph.h"

#define NONE UINT32_MAX
#define PH_BASE 0x80000000u            /* ids of placeholder characters */
#define PH_LEN (0x7fffffffu - 1u)      /* placeholder length: "infinite" */

#define GROW(arr, cap, need) NOTES__TEXT_GROW(arr, cap, need, 16)

/* ====================================================================== */
/* Tracker */

struct span {
    uint32_t id, len;
    uint32_t ol, orr; /* origin left (of the first char), origin right */
    uint32_t sp;      /* prepare: 0 NIY, 1 inserted, 2+ deleted */
    uint32_t se;      /* effect: 1 inserted, 0 deleted */
};

/* A span just inserted: present in both the prepare and effect versions. */
static inline void span_fresh(struct span *s, uint32_t id, uint32_t len,
                              uint32_t ol, uint32_t orr)
{
    s->id = id;
    s->len = len;
    s->ol = ol;
    s->orr = orr;
    s->sp = 1;
    s->se = 1;
}

struct outop {
    size_t pos;         /* code points, in the effect version */
    size_t ncp;
    const char *bytes;  /* insert content; NULL for a delete */
    size_t nbytes;
};

struct tracker {
    const struct notes__oplog *op;
    struct span *a;
    size_t cap, gs, ge;
    uint64_t pre_before, eff_before; /* visible chars before the gap */
    uint64_t pre_total;              /* visible chars in the prepare version */
    uint32_t *dt;                    /* delete targets, by lv - dbase */
    notes_lv dbase;
    size_t dlen;
    size_t hint;   /* where find_id starts looking */
    size_t hop, hgraph; /* op / graph run lookup cursors */
    notes_lv *cur; /* prepare version */
    size_t ncur, capcur;
    struct outop *out; /* output ops (merge path) */
    size_t nout, capout;
    int output;
    struct ranges ra, rb;
    struct heap hp;
};

static inline uint64_t vis(const struct span *s)
{
    return s->sp == 1 ? s->len : 0;
}
static inline uint64_t effv(const struct span *s)
{
    return s->se ? s->len : 0;
}
static inline size_t tcount(const struct tracker *t)
{
    return t->cap - (t->ge - t->gs);
}
static inline struct span *tat(struct tracker *t, size_t i)
{
    return i < t->gs ? &t->a[i] : &t->a[i + (t->ge - t->gs)];
}

static void tracker_release(struct tracker *t)
{
    notes__free(t->a);
    notes__free(t->dt);
    notes__free(t->cur);
    notes__free(t->out);
    notes__free(t->ra.r);
    notes__free(t->rb.r);
    notes__free(t->hp.h);
}

/* Ensure the gap has room for `extra` spans. */
static int ensure_gap(struct tracker *t, size_t extra)
{
    if (t->a && t->ge - t->gs >= extra)
        return NOTES_OK;
    size_t used = tcount(t);
    size_t ncap = t->cap ? t->cap : 64;
    while (ncap < used + extra + 8) {
        if (ncap > SIZE_MAX / 2 / sizeof(struct span))
            return NOTES_ENOMEM;
        ncap *= 2;
    }
    struct span *na = notes__realloc(t->a, ncap * sizeof(struct span));
    if (!na)
        return NOTES_ENOMEM;
    size_t tail = t->cap - t->ge;
    memmove(na + ncap - tail, na + t->ge, tail * sizeof(struct span));
    t->a = na;
    t->ge = ncap - tail;
    t->cap = ncap;
    return NOTES_OK;
}

static void gap_right(struct tracker *t)
{
    struct span *s = &t->a[t->ge++];
    t->pre_before += vis(s);
    t->eff_before += effv(s);
    t->a[t->gs++] = *s;
}

/* Move the gap so that n spans cross it in one memmove; `pv`/`ev` are the
 * prepare/effect visible chars of the spans that cross. */
static void gap_shift_left(struct tracker *t, size_t n, uint64_t pv, uint64_t ev)
{
    t->gs -= n;
    t->ge -= n;
    memmove(&t->a[t->ge], &t->a[t->gs], n * sizeof(struct span));
    t->pre_before -= pv;
    t->eff_before -= ev;
}

static void gap_shift_right(struct tracker *t, size_t n, uint64_t pv, uint64_t ev)
{
    memmove(&t->a[t->gs], &t->a[t->ge], n * sizeof(struct span));
    t->gs += n;
    t->ge += n;
    t->pre_before += pv;
    t->eff_before += ev;
}

static void gap_to(struct tracker *t, size_t i)
{
    uint64_t pv = 0, ev = 0;
    if (t->gs > i) {
        for (size_t x = i; x < t->gs; x++) {
            pv += vis(&t->a[x]);
            ev += effv(&t->a[x]);
        }
        gap_shift_left(t, t->gs - i, pv, ev);
    } else if (t->gs < i) {
        size_t n = i - t->gs;
        for (size_t x = t->ge; x < t->ge + n; x++) {
            pv += vis(&t->a[x]);
            ev += effv(&t->a[x]);
        }
        gap_shift_right(t, n, pv, ev);
    }
}

/* Split the span after the gap: its first k chars move before the gap.
 * Needs one free gap slot. */
static void split_after(struct tracker *t, uint32_t k)
{
    struct span *s = &t->a[t->ge];
    struct span first = *s;
    first.len = k;
    s->id += k;
    s->len -= k;
    s->ol = s->id - 1;
    t->a[t->gs++] = first;
    t->pre_before += vis(&first);
    t->eff_before += effv(&first);
}

/* Move the first min(want, len) chars of the span after the gap before it,
 * whole or split; *took says how many. Returns that span, now before the
 * gap. Needs one free gap slot. */
static inline struct span *take_right(struct tracker *t, uint32_t want,
                                      uint32_t *took)
{
    uint32_t len = t->a[t->ge].len;
    uint32_t take = want < len ? want : len;
    if (take < len)
        split_after(t, take);
    else
        gap_right(t);
    *took = take;
    return &t->a[t->gs - 1];
}

/* Split the span before the gap: it keeps k chars, the rest moves after the
 * gap. Needs one free gap slot. */
static void split_before(struct tracker *t, uint32_t k)
{
    struct span *s = &t->a[t->gs - 1];
    struct span rest = *s;
    rest.id += k;
    rest.len -= k;
    rest.ol = rest.id - 1;
    t->pre_before -= vis(&rest);
    t->eff_before -= effv(&rest);
    s->len = k;
    t->a[--t->ge] = rest;
}

/* Put the gap at the smallest index with `pos` visible chars before it.
 * Scans the spans in place first, then moves them across the gap at once. */
static int seek_pre(struct tracker *t, uint64_t pos)
{
    int rc = ensure_gap(t, 2);
    if (rc)
        return rc;
    uint64_t acc = t->pre_before, ev = 0;
    if (acc < pos) {
        size_t j = t->ge;
        while (acc < pos) {
            if (j == t->cap) {
                gap_shift_right(t, j - t->ge, acc - t->pre_before, ev);
                return NOTES_EBADOP;
            }
            const struct span *s = &t->a[j];
            uint64_t v = vis(s);
            if (acc + v > pos) {
                gap_shift_right(t, j - t->ge, acc - t->pre_before, ev);
                split_after(t, (uint32_t)(pos - acc));
                return NOTES_OK;
            }
            acc += v;
            ev += effv(s);
            j++;
        }
        /* The last span crossed was visible: the gap is where it belongs. */
        gap_shift_right(t, j - t->ge, acc - t->pre_before, ev);
        return NOTES_OK;
    }
    size_t i = t->gs; /* the gap goes before index i */
    while (i > 0) {
        const struct span *s = &t->a[i - 1];
        uint64_t v = vis(s);
        if (acc == pos && v)
            break;
        if (acc > pos && v && acc - v < pos) {
            gap_shift_left(t, t->gs - i, t->pre_before - acc, ev);
            split_before(t, (uint32_t)(pos - (acc - v)));
            return NOTES_OK;
        }
        acc -= v;
        ev += effv(s);
        i--;
    }
    gap_shift_left(t, t->gs - i, t->pre_before - acc, ev);
    return NOTES_OK;
}

static int emit(struct tracker *t, size_t pos, size_t ncp, const char *bytes,
                size_t nbytes)
{
    if (!t->output)
        return NOTES_OK;
    int rc = GROW(t->out, t->capout, t->nout + 1);
    if (rc)
        return rc;
    struct outop *o = &t->out[t->nout++];
    o->pos = pos;
    o->ncp = ncp;
    o->bytes = bytes;
    o->nbytes = nbytes;
    return NOTES_OK;
}

/* Is id in one of the spans a[from..to)? Scans backwards from `to` when
 * `back` (origins usually sit just before the span that names them). */
static int in_region(const struct tracker *t, size_t from, size_t to, uint32_t id,
                     int back)
{
    for (size_t k = 0; k < to - from; k++) {
        const struct span *s = &t->a[back ? to - 1 - k : from + k];
        if (id >= s->id && id - s->id < s->len)
            return 1;
    }
    return 0;
}

/* Byte offset of code point `k` within the content of op run `o`. */
static size_t run_byte_off(const struct notes__oplog *op,
                           const struct notes__oprun *o, uint32_t k)
{
    if (o->ascii)
        return k;
    return notes__utf8_offset((const uint8_t *)op->content + o->content,
                              o->nbytes, k);
}

/* Insert events [lv, lv+k) of op run `o` at prepare position pos. */
static int apply_ins(struct tracker *t, const struct notes__oprun *o,
                     notes_lv lv, uint32_t k, uint64_t pos)
{
    const struct notes__oplog *op = t->op;
    int rc = seek_pre(t, pos);
    if (rc)
        return rc;
    uint32_t left = t->gs ? t->a[t->gs - 1].id + t->a[t->gs - 1].len - 1 : NONE;
    const char *base = op->content + o->content;
    size_t boff = run_byte_off(op, o, lv - o->start);
    for (uint32_t i = 0; i < k;) {
        if ((rc = ensure_gap(t, 2)))
            return rc;
        if (!t->a) /* ensure_gap allocated it (clang-analyzer cannot tell) */
            return NOTES_ENOMEM;
        /* The region of not-yet-inserted spans after the gap, and right. */
        size_t j = t->ge;
        while (j < t->cap && t->a[j].sp == 0)
            j++;
        uint32_t right = j < t->cap ? t->a[j].id : NONE;
        uint32_t take;
        if (j == t->ge) {
            take = k - i;
        } else {
            /* YjsMod / FugueMax integrate of char lv+i over the region. */
            int scanning = 0;
            size_t dest = t->ge;
            for (size_t x = t->ge; x < j; x++) {
                const struct span *s = &t->a[x];
                int cl;
                if (s->ol == left)
                    cl = 0;
                else if (s->ol != NONE && in_region(t, t->ge, x, s->ol, 1))
                    cl = 1;
                else
                    cl = -1;
                if (cl < 0)
                    break;
                if (cl == 0) {
                    int cr;
                    if (s->orr == right)
                        cr = 0;
                    else if (s->orr != NONE && in_region(t, x + 1, j, s->orr, 0))
                        cr = -1;
                    else
                        cr = 1;
                    if (cr == 0 && notes__oplog_cmp_ids(op, lv + i, s->id) < 0)
                        break;
                    scanning = cr < 0;
                }
                if (!scanning)
                    dest = x + 1;
            }
            while (t->ge < dest)
                gap_right(t);
            take = 1;
        }
        /* Place chars [i, i+take) before the gap. */
        notes_lv id = lv + i;
        struct span *prev = t->gs ? &t->a[t->gs - 1] : NULL;
        uint64_t epos = t->eff_before;
        if (prev && prev->id + prev->len == id && left == id - 1 &&
            prev->orr == right && prev->sp == 1 && prev->se == 1) {
            prev->len += take;
        } else {
            span_fresh(&t->a[t->gs++], id, take, left, right);
        }
        t->pre_before += take;
        t->pre_total += take;
        t->eff_before += take;
        size_t bend = o->ascii ? boff + take
                               : boff + notes__utf8_offset((const uint8_t *)base + boff,
                                                           o->nbytes - boff, take);
        if ((rc = emit(t, (size_t)epos, take, base + boff, bend - boff)))
            return rc;
        boff = bend;
        left = id + take - 1;
        i += take;
    }
    return NOTES_OK;
}

/* Delete events [lv, lv+k): the k visible chars at [start, start+k). fwd: event
 * i deletes char i; otherwise event i deletes char k-1-i. */
static int apply_del(struct tracker *t, notes_lv lv, uint32_t k, uint64_t start,
                     int fwd)
{
    int rc = seek_pre(t, start);
    if (rc)
        return rc;
    uint32_t m = 0;
    while (m < k) {
        if ((rc = ensure_gap(t, 2)))
            return rc;
        if (t->ge == t->cap)
            return NOTES_EBADOP;
        struct span *s = &t->a[t->ge];
        if (s->sp != 1) {
            gap_right(t);
            continue;
        }
        uint32_t take;
        s = take_right(t, k - m, &take);
        s->sp = 2;
        t->pre_before -= take;
        t->pre_total -= take;
        if (s->se) {
            s->se = 0;
            t->eff_before -= take;
            if ((rc = emit(t, (size_t)t->eff_before, take, NULL, 0)))
                return rc;
        }
        for (uint32_t c = 0; c < take; c++) {
            uint32_t e = fwd ? m + c : k - 1 - (m + c);
            t->dt[lv + e - t->dbase] = s->id + c;
        }
        m += take;
    }
    return NOTES_OK;
}

/* Physical index range [a, b) of t->a: the span holding id, or SIZE_MAX.
 * Forward or backward. */
static size_t scan_fwd(const struct span *a, size_t x, size_t b, uint32_t id)
{
    for (; x < b; x++)
        if (id - a[x].id < a[x].len && id >= a[x].id)
            return x;
    return SIZE_MAX;
}

static size_t scan_back(const struct span *a, size_t lo, size_t x, uint32_t id)
{
    while (x > lo) {
        x--;
        if (id - a[x].id < a[x].len && id >= a[x].id)
            return x;
    }
    return SIZE_MAX;
}

/* Logical index range [a, b) scanned forward / backward for id. */
static size_t scan_logical(const struct tracker *t, size_t a, size_t b,
                           uint32_t id, int back)
{
    size_t gap = t->ge - t->gs, r;
    /* Split at the gap: logical [a, b) = physical [a, min(b, gs)) and
     * [max(a, gs) + gap, b + gap). */
    size_t a1 = a, b1 = b < t->gs ? b : t->gs;       /* before the gap */
    size_t a2 = (a > t->gs ? a : t->gs), b2 = b;      /* after, logical */
    if (!back) {
        if (a1 < b1 && (r = scan_fwd(t->a, a1, b1, id)) != SIZE_MAX)
            return r;
        if (a2 < b2 && (r = scan_fwd(t->a, a2 + gap, b2 + gap, id)) != SIZE_MAX)
            return r - gap;
    } else {
        if (a2 < b2 && (r = scan_back(t->a, a2 + gap, b2 + gap, id)) != SIZE_MAX)
            return r - gap;
        if (a1 < b1 && (r = scan_back(t->a, a1, b1, id)) != SIZE_MAX)
            return r;
    }
    return SIZE_MAX;
}

/* Find the logical index of the span containing id, scanning outward from
 * the last hit (or the gap), in blocks that grow: tight loops over the
 * physical array instead of one span per side per step. */
static size_t find_id(struct tracker *t, uint32_t id)
{
    size_t n = tcount(t);
    size_t start = t->hint < n ? t->hint : t->gs;
    size_t l = start, r = start; /* scanned: logical [l, r) */
    size_t blk = 8;
    while (l > 0 || r < n) {
        size_t x;
        size_t re = n - r > blk ? r + blk : n;
        if (r < re && (x = scan_logical(t, r, re, id, 0)) != SIZE_MAX)
            return t->hint = x;
        r = re;
        size_t le = l > blk ? l - blk : 0;
        if (le < l && (x = scan_logical(t, le, l, id, 1)) != SIZE_MAX)
            return t->hint = x;
        l = le;
        if (blk < 256)
            blk *= 2;
    }
    return SIZE_MAX;
}

enum { M_NIY, M_INS, M_INC, M_DEC };

static void set_sp(struct span *s, int mode)
{
    switch (mode) {
    case M_NIY:
        s->sp = 0;
        break;
    case M_INS:
        s->sp = 1;
        break;
    case M_INC:
        if (s->sp < UINT32_MAX)
            s->sp++;
        break;
    default:
        if (s->sp > 1)
            s->sp--;
        break;
    }
}

/* Apply a prepare-state change to the chars with ids [lo, hi). */
static int adjust(struct tracker *t, uint32_t lo, uint32_t hi, int mode)
{
    while (lo < hi) {
        int rc = ensure_gap(t, 2);
        if (rc)
            return rc;
        size_t i = find_id(t, lo);
        if (i == SIZE_MAX)
            return NOTES_EINVAL; /* internal inconsistency */
        struct span *w = tat(t, i);
        if (w->id == lo && w->len <= hi - lo) {
            /* The whole span changes: no split, no gap move. */
            uint64_t before = vis(w);
            set_sp(w, mode);
            t->pre_total = t->pre_total - before + vis(w);
            if (i < t->gs)
                t->pre_before = t->pre_before - before + vis(w);
            lo += w->len;
            continue;
        }
        gap_to(t, i);
        uint32_t first = t->a[t->ge].id;
        if (lo > first)
            split_after(t, lo - first);
        uint32_t take;
        struct span *s = take_right(t, hi - lo, &take);
        t->pre_before -= vis(s);
        t->pre_total -= vis(s);
        set_sp(s, mode);
        t->pre_before += vis(s);
        t->pre_total += vis(s);
        lo += take;
    }
    return NOTES_OK;
}

/* Retreat (dir = -1) or advance (dir = +1) the events [s, e). */
static int move_events(struct tracker *t, notes_lv s, notes_lv e, int dir)
{
    const struct notes__oplog *op = t->op;
    while (s < e) {
        /* Process op-run pieces: descending for retreat, ascending for advance. */
        notes_lv ps, pe;
        const struct notes__oprun *o;
        if (dir > 0) {
            o = &op->ops[find_op_h(op, s, &t->hop)];
            ps = s;
            pe = o->start + o->len < e ? o->start + o->len : e;
            s = pe;
        } else {
            o = &op->ops[find_op_h(op, e - 1, &t->hop)];
            ps = o->start > s ? o->start : s;
            pe = e;
            e = ps;
        }
        int rc;
        if (o->kind == NOTES__OP_INS) {
            rc = adjust(t, ps, pe, dir > 0 ? M_INS : M_NIY);
            if (rc)
                return rc;
            continue;
        }
        /* Deletes: group consecutive targets. */
        notes_lv x = ps;
        while (x < pe) {
            uint32_t t0 = t->dt[x - t->dbase];
            notes_lv y = x + 1;
            int up = 0, down = 0;
            while (y < pe) {
                uint32_t ty = t->dt[y - t->dbase];
                if (!down && ty == t0 + (y - x)) {
                    up = 1;
                } else if (!up && ty == t0 - (y - x)) {
                    down = 1;
                } else {
                    break;
                }
                y++;
            }
            uint32_t lo = down ? t0 - (y - x - 1) : t0;
            rc = adjust(t, lo, lo + (y - x), dir > 0 ? M_INC : M_DEC);
            if (rc)
                return rc;
            x = y;
        }
    }
    return NOTES_OK;
}

static int set_cur(struct tracker *t, const notes_lv *v, size_t n)
{
    int rc = GROW(t->cur, t->capcur, n ? n : 1);
    if (rc)
        return rc;
    if (n)
        memmove(t->cur, v, n * sizeof(notes_lv));
    t->ncur = n;
    return NOTES_OK;
}

/* Move the prepare version to v. */
static int move_to(struct tracker *t, const notes_lv *v, size_t n)
{
    if (n == t->ncur && (n == 0 || memcmp(v, t->cur, n * sizeof(notes_lv)) == 0))
        return NOTES_OK;
    int rc = notes__text_graph_diff(t->op, t->cur, t->ncur, v, n, &t->ra,
                                    &t->rb, &t->hp, &t->hgraph);
    if (rc)
        return rc;
    for (size_t i = 0; i < t->ra.n; i++)
        if ((rc = move_events(t, t->ra.r[i][0], t->ra.r[i][1], -1)))
            return rc;
    for (size_t i = t->rb.n; i-- > 0;)
        if ((rc = move_events(t, t->rb.r[i][0], t->rb.r[i][1], +1)))
            return rc;
    return set_cur(t, v, n);
}

/* Replay events [a, b) (all of them must be applied) in LV order. */
static int replay(struct tracker *t, notes_lv a, notes_lv b)
{
    const struct notes__oplog *op = t->op;
    int rc;
    while (a < b) {
        const struct notes__graphrun *g = &op->gruns[find_graph_h(op, a, &t->hgraph)];
        const struct notes__oprun *o = &op->ops[find_op_h(op, a, &t->hop)];
        notes_lv end = b;
        if (g->start + g->len < end)
            end = g->start + g->len;
        if (o->start + o->len < end)
            end = o->start + o->len;
        const notes_lv *ps = op->ppool + g->parents;
        notes_lv tmp = a - 1;
        size_t np = g->nparents;
        if (a != g->start) { /* parent: the previous event of the run */
            ps = &tmp;
            np = 1;
        }
        if ((rc = move_to(t, ps, np)))
            return rc;
        uint32_t off = a - o->start, k = end - a;
        if (end - t->dbase > t->dlen) {
            size_t nl = t->dlen * 2 > (size_t)(end - t->dbase) ? t->dlen * 2
                                                               : (size_t)(end - t->dbase);
            uint32_t *nd = notes__realloc(t->dt, nl * sizeof(uint32_t));
            if (!nd)
                return NOTES_ENOMEM;
            t->dt = nd;
            t->dlen = nl;
        }
        if (o->kind == NOTES__OP_INS)
            rc = apply_ins(t, o, a, k, (uint64_t)o->pos + off);
        else if (o->fwd)
            rc = apply_del(t, a, k, o->pos, 1);
        else
            rc = apply_del(t, a, k, (uint64_t)o->pos - off - (k - 1), 0);
        if (rc)
            return rc;
        notes_lv last = end - 1;
        if ((rc = set_cur(t, &last, 1)))
            return rc;
        a = end;
    }
    return NOTES_OK;
}

static int tracker_init(struct tracker *t, const struct notes__oplog *op,
                        notes_lv dbase, int placeholder)
{
    memset(t, 0, sizeof(*t));
    t->op = op;
    t->dbase = dbase;
    t->dlen = op->n - dbase;
    t->dt = notes__malloc((t->dlen ? t->dlen : 1) * sizeof(uint32_t));
    int rc = t->dt ? ensure_gap(t, 16) : NOTES_ENOMEM;
    if (rc)
        return rc;
    if (placeholder) {
        span_fresh(&t->a[--t->ge], PH_BASE, PH_LEN, NONE, NONE);
        t->pre_total = PH_LEN;
    }
    return NOTES_OK;
}

/* ====================================================================== */
/* Merge path */

/*
 * The tracker is kept between merges (a live session keeps merging remote
 * runs): it holds every event after its base version C. A later run whose
 * parents still contain C's history reuses it after replaying (catching up)
 * the fast-path events added since. Otherwise it is rebuilt.
 */
#define CATCHUP_MAX 65536u /* rebuild instead of catching up this many events */

int notes__text_merge_mode = 0;

/* Consider rebuilding the tracker from a more recent base once it holds this
 * many spans. */
#ifndef SHRINK_SPANS
#define SHRINK_SPANS 256u
#endif

struct notes__mcache {
    struct tracker t;
    notes_lv *c; /* base version C */
    size_t nc;
    struct ranges rs; /* events replayed at build time (sorted) */
    notes_lv build_n; /* events >= build_n are in the tracker too */
    notes_lv upto;    /* events < upto have been applied */
    uint64_t lc;      /* document length at C */
};

void notes__merge_drop(struct notes__oplog *op)
{
    struct notes__mcache *m = op->cache;
    if (!m)
        return;
    tracker_release(&m->t);
    notes__free(m->c);
    notes__free(m->rs.r);
    notes__free(m);
    op->cache = NULL;
}

void notes__merge_note_fast(struct notes__oplog *op)
{
    struct notes__mcache *m = op->cache;
    if (m && op->n - m->upto > CATCHUP_MAX)
        notes__merge_drop(op);
}

/* Is lv one of the tracker's events (so it descends from all of C)? */
static int in_tracker(const struct notes__mcache *m, notes_lv lv)
{
    if (lv >= m->build_n)
        return 1;
    size_t lo = 0, hi = m->rs.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->rs.r[mid][1] <= lv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->rs.n && m->rs.r[lo][0] <= lv;
}

/* Can the cached tracker place a run with parents ps? It can when history(ps)
 * contains history(C). */
static int cache_valid(const struct notes__mcache *m, const notes_lv *ps, size_t np)
{
    if (m->nc == 0)
        return 1;
    for (size_t i = 0; i < np; i++)
        if (in_tracker(m, ps[i]))
            return 1;
    return np == m->nc && memcmp(ps, m->c, np * sizeof(notes_lv)) == 0;
}

/* Build the cached tracker for a run [first, op->n) with parents ps. With a
 * limit, gives up (LIMIT_HIT, nothing built) when more than `limit` events
 * would have to be replayed. */
static int cache_build(struct notes__oplog *op, const notes_lv *oldf, size_t noldf,
                       const notes_lv *ps, size_t np, notes_lv first, size_t limit)
{
    struct notes__mcache *m = notes__calloc(1, sizeof(*m));
    if (!m)
        return NOTES_ENOMEM;
    int rc = notes__text_find_conflicting(op, oldf, noldf, ps, np, &m->c,
                                          &m->nc, &m->rs, limit);
    if (rc) {
        notes__free(m->rs.r);
        notes__free(m);
        return rc;
    }
    if (notes__text_merge_mode == 2) { /* test knob: replay from the root */
        notes__free(m->c);
        m->c = NULL;
        m->nc = 0;
        m->rs.n = 0;
        if ((rc = notes__text_ranges_push(&m->rs, 0, first)))
            goto fail;
    }
    notes_lv dbase = first;
    if (m->rs.n && m->rs.r[0][0] < dbase)
        dbase = m->rs.r[0][0];
    if ((rc = tracker_init(&m->t, op, dbase, 1)) || (rc = set_cur(&m->t, m->c, m->nc)))
        goto fail;
    for (size_t i = 0; i < m->rs.n; i++)
        if ((rc = replay(&m->t, m->rs.r[i][0], m->rs.r[i][1])))
            goto fail;
    /* Length of the document at C, from the current length and the effect
     * of the replayed events. */
    uint64_t ph_del = 0, r_ins = 0;
    for (size_t i = 0, n = tcount(&m->t); i < n; i++) {
        const struct span *s = tat(&m->t, i);
        if (s->id >= PH_BASE)
            ph_del += s->se ? 0 : s->len;
        else
            r_ins += effv(s);
    }
    m->lc = op->text.ncp + ph_del - r_ins;
    m->build_n = first;
    m->upto = first;
    op->cache = m;
    return NOTES_OK;
fail:
    tracker_release(&m->t);
    notes__free(m->c);
    notes__free(m->rs.r);
    notes__free(m);
    return rc;
}

int notes__merge_apply(struct notes__oplog *op, const notes_lv *oldf,
                       size_t noldf, notes_lv first)
{
    const notes_lv *ps;
    notes_lv tmp;
    size_t np = notes__oplog_parents_of(op, first, &ps, &tmp);
    int rc;
    struct notes__mcache *m = op->cache;
    if (m && (first - m->upto > CATCHUP_MAX || !cache_valid(m, ps, np)))
        notes__merge_drop(op);
    if (notes__text_merge_mode)
        notes__merge_drop(op);
    m = op->cache;
    if (m && tcount(&m->t) > SHRINK_SPANS) {
        /* The tracker has grown (it holds every event since its base C, and
         * every seek scans it). If this run forked recently, a tracker built
         * from the recent base is much smaller: build that one instead when
         * it replays at most half as many events as the old one has spans
         * (notes__text_find_conflicting gives up past that, so the attempt is
         * cheap). */
        struct notes__mcache *old = m;
        op->cache = NULL;
        rc = cache_build(op, oldf, noldf, ps, np, first, tcount(&old->t) / 2);
        if (rc == NOTES_OK) {
            struct notes__mcache *fresh = op->cache;
            op->cache = old;
            notes__merge_drop(op);
            op->cache = fresh;
        } else {
            op->cache = old;
            if (rc != LIMIT_HIT)
                return rc;
        }
    }
    if (!op->cache && (rc = cache_build(op, oldf, noldf, ps, np, first, SIZE_MAX)))
        return rc;
    m = op->cache;
    struct tracker *t = &m->t;
    /* Catch up with the fast-path events added since the last merge. */
    if (m->upto < first && (rc = replay(t, m->upto, first)))
        goto drop;
    m->upto = first;

    /* Validate the run against the length at its parents. */
    if ((rc = move_to(t, ps, np)))
        goto drop;
    uint64_t plen = t->pre_total - (PH_LEN - m->lc);
    const struct notes__oprun *o = &op->ops[notes__oplog_find_op(op, first)];
    uint32_t k = op->n - first;
    uint64_t pos = (uint64_t)o->pos + (first - o->start);
    if (o->kind == NOTES__OP_DEL)
        pos = o->fwd ? o->pos : (uint64_t)o->pos - (first - o->start);
    if (o->kind == NOTES__OP_INS ? pos > plen : (pos > plen || k > plen - pos))
        return NOTES_EBADOP; /* the tracker holds nothing of this run */

    t->output = 1;
    t->nout = 0;
    rc = replay(t, first, op->n);
    t->output = 0;
    if (rc)
        goto drop;
    m->upto = op->n;
    /* Apply the transformed ops (capacity was reserved by the caller). */
    for (size_t i = 0; i < t->nout; i++) {
        const struct outop *x = &t->out[i];
        if (x->bytes)
            notes__tbuf_insert(&op->text, x->pos, x->bytes, x->nbytes, x->ncp);
        else
            notes__tbuf_delete(&op->text, x->pos, x->ncp);
        if (op->obs)
            op->obs(op->obs_ud, x->pos, x->bytes ? 0 : x->ncp,
                    x->bytes ? x->bytes : NULL, x->bytes ? x->nbytes : 0);
    }
    t->nout = 0;
    return NOTES_OK;
drop:
    notes__merge_drop(op);
    return rc;
}

/* ====================================================================== */
/* Checkout and origins: replay history(version) from scratch. */

static int cmp_lv(const void *a, const void *b)
{
    notes_lv x = *(const notes_lv *)a, y = *(const notes_lv *)b;
    return x < y ? -1 : x > y;
}

/* Normalise a version: validate, sort, dedupe. OUT *v allocated. */
static int norm_version(const struct notes__oplog *op, const notes_lv *version,
                        size_t n, notes_lv **v, size_t *nv)
{
    if (n && !version)
        return NOTES_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (version[i] >= op->n)
            return NOTES_EINVAL;
    if (n > SIZE_MAX / sizeof(notes_lv))
        return NOTES_EINVAL;
    *v = notes__malloc((n ? n : 1) * sizeof(notes_lv));
    if (!*v)
        return NOTES_ENOMEM;
    if (n)
        memcpy(*v, version, n * sizeof(notes_lv));
    qsort(*v, n, sizeof(notes_lv), cmp_lv);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || (*v)[w - 1] != (*v)[i])
            (*v)[w++] = (*v)[i];
    *nv = w;
    return NOTES_OK;
}

/* Replay history(v) into a fresh tracker (no placeholder). */
static int replay_history(struct notes__oplog *op, const notes_lv *v, size_t nv,
                          struct tracker *t)
{
    int rc = tracker_init(t, op, 0, 0);
    if (rc)
        return rc;
    /* Mark history(v): walking a graph run always marks from its start, so a
     * marked LV means everything from its run start to it is marked. */
    uint8_t *mark = notes__calloc(op->n ? op->n : 1, 1);
    notes_lv *stack = NULL;
    size_t nst = 0, capst = 0;
    if (!mark)
        return NOTES_ENOMEM;
    if ((rc = GROW(stack, capst, nv ? nv : 1)))
        goto out;
    memcpy(stack, v, nv * sizeof(notes_lv));
    nst = nv;
    while (nst) {
        notes_lv x = stack[--nst];
        if (mark[x])
            continue;
        const struct notes__graphrun *g = &op->gruns[notes__oplog_find_graph(op, x)];
        for (notes_lv y = x + 1; y-- > g->start;) {
            if (mark[y])
                break;
            mark[y] = 1;
        }
        if ((rc = GROW(stack, capst, nst + g->nparents)))
            goto out;
        for (uint32_t i = 0; i < g->nparents; i++)
            stack[nst++] = op->ppool[g->parents + i];
    }
    for (notes_lv a = 0; a < op->n;) {
        if (!mark[a]) {
            a++;
            continue;
        }
        notes_lv b = a;
        while (b < op->n && mark[b])
            b++;
        if ((rc = replay(t, a, b)))
            goto out;
        a = b;
    }
out:
    notes__free(mark);
    notes__free(stack);
    return rc;
}

int notes__oplog_checkout(struct notes__oplog *op, const notes_lv *version,
                          size_t n, char **out, size_t *nbytes)
{
    if (!op || !out)
        return NOTES_EINVAL;
    notes_lv *v;
    size_t nv;
    int rc = norm_version(op, version, n, &v, &nv);
    if (rc)
        return rc;
    if (nv == op->nfrontier &&
        (nv == 0 || memcmp(v, op->frontier, nv * sizeof(notes_lv)) == 0)) {
        notes__free(v);
        size_t nb;
        const char *s = notes__oplog_text(op, &nb, NULL);
        if (!s)
            return NOTES_ENOMEM;
        *out = notes__strndup(s, nb);
        if (!*out)
            return NOTES_ENOMEM;
        if (nbytes)
            *nbytes = nb;
        return NOTES_OK;
    }
    struct tracker t;
    struct notes_buf b;
    notes__buf_init(&b, SIZE_MAX);
    rc = replay_history(op, v, nv, &t);
    for (size_t i = 0, cnt = tcount(&t); !rc && i < cnt; i++) {
        const struct span *s = tat(&t, i);
        if (!s->se)
            continue;
        notes_lv id = s->id;
        uint32_t left = s->len;
        while (left && !rc) {
            const struct notes__oprun *o = &op->ops[notes__oplog_find_op(op, id)];
            uint32_t off = id - o->start;
            uint32_t take = o->start + o->len - id;
            if (take > left)
                take = left;
            size_t b0 = run_byte_off(op, o, off);
            size_t b1 = o->ascii ? b0 + take
                                 : b0 + notes__utf8_offset(
                                            (const uint8_t *)op->content + o->content + b0,
                                            o->nbytes - b0, take);
            rc = notes__buf_put(&b, op->content + o->content + b0, b1 - b0);
            id += take;
            left -= take;
        }
    }
    if (!rc)
        rc = notes__buf_put_u8(&b, 0);
    tracker_release(&t);
    notes__free(v);
    if (rc) {
        notes__buf_release(&b);
        return rc;
    }
    *out = (char *)b.data;
    if (nbytes)
        *nbytes = b.len - 1;
    return NOTES_OK;
}

/*
 * Replay history(version) (version NULL: the frontier) into *t and list the
 * ids of its spans in document order: every event (live_only 0), or only
 * those the version keeps (its origins). OUT *t: the caller releases it,
 * also on error; *ids (allocated) and *nids, set only on success.
 */
static int replay_ids(struct notes__oplog *op, const notes_lv *version,
                      size_t n, int live_only, struct tracker *t,
                      notes_lv **ids, size_t *nids)
{
    memset(t, 0, sizeof(*t));
    notes_lv *v;
    size_t nv;
    int rc = version ? norm_version(op, version, n, &v, &nv)
                     : norm_version(op, op->frontier, op->nfrontier, &v, &nv);
    if (rc)
        return rc;
    rc = replay_history(op, v, nv, t);
    notes__free(v);
    size_t total = 0;
    for (size_t i = 0, cnt = tcount(t); !rc && i < cnt; i++)
        total += live_only ? effv(tat(t, i)) : tat(t, i)->len;
    notes_lv *res = NULL;
    if (!rc && !(res = notes__malloc((total ? total : 1) * sizeof(notes_lv))))
        rc = NOTES_ENOMEM;
    size_t w = 0;
    for (size_t i = 0, cnt = tcount(t); !rc && i < cnt; i++) {
        const struct span *s = tat(t, i);
        if (live_only && !s->se)
            continue;
        for (uint32_t c = 0; c < s->len; c++)
            res[w++] = s->id + c;
    }
    if (rc) {
        notes__free(res);
        return rc;
    }
    *ids = res;
    *nids = total;
    return NOTES_OK;
}

int notes__oplog_origins(struct notes__oplog *op, const notes_lv *version,
                         size_t n, notes_lv **lvs, size_t *ncp)
{
    if (!op || !lvs || !ncp)
        return NOTES_EINVAL;
    struct tracker t;
    int rc = replay_ids(op, n == SIZE_MAX ? NULL : version, n, 1, &t, lvs, ncp);
    tracker_release(&t);
    return rc;
}

int notes__oplog_layout(struct notes__oplog *op, notes_lv **order,
                        size_t *norder, notes_lv **del)
{
    if (!op || !order || !norder || !del)
        return NOTES_EINVAL;
    *order = *del = NULL;
    *norder = 0;
    struct tracker t;
    notes_lv *res;
    size_t total = 0;
    int rc = replay_ids(op, NULL, 0, 0, &t, &res, &total);
    if (rc) {
        tracker_release(&t);
        return rc;
    }
    /* The replay wrote a target for every delete event and nothing for the
     * inserts: mark those, so the caller can tell them apart. */
    for (size_t i = 0; i < op->nops; i++)
        if (op->ops[i].kind == NOTES__OP_INS)
            for (uint32_t k = 0; k < op->ops[i].len; k++)
                t.dt[op->ops[i].start + k] = NONE;
    *del = t.dt;
    t.dt = NULL;
    tracker_release(&t);
    *order = res;
    *norder = total;
    return NOTES_OK;
}
