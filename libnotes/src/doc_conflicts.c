/*
 * doc_conflicts.c: concurrent edits of one line (docs/format.md,
 * "Concurrent edits of one line"): which lines two people rewrote at the
 * same time, each one's version of them, and keeping one of them.
 *
 * The CRDT merges such edits without loss but the result reads badly
 * ("... 2023 (Ana)is out today, May 15, 2023 (Bo)"); detection only says
 * so, it never changes the merged text.
 *
 * One replay of the whole history (notes__oplog_layout) gives every code
 * point ever inserted in document order, deleted ones included, and what
 * each delete event deleted. Lines are cut at every newline ever inserted
 * (a "segment": a line as somebody once had it), so deleting a line and
 * editing its neighbour are two segments, while deleting a line and
 * typing into it are one. Ancestry between events is answered from the
 * causal graph; "critical" events (every earlier event is an ancestor,
 * every later one a descendant) answer most queries at once, and a
 * history made only of them (no concurrency at all) is done before any
 * replay.
 */
#include <stdlib.h>

#include "doc_internal.h"

enum { REC_INS = 0, REC_DEL = 1 };

/* An edit of a segment: entry `entry` inserted (lv: the code point) or
 * deleted (lv: the code point deleted, i.e. who inserted it) there. */
struct rec {
    uint32_t seg;
    uint32_t entry;
    uint32_t kind;
    notes_lv lv;
};

/* A conflict being gathered: positions [r0, r1) of the layout and the
 * entries taking part (unsorted, with repeats until finished). */
struct pend {
    size_t r0, r1;
    uint32_t *p;
    size_t np, cap;
    uint32_t *h;           /* the sides: the latest of p (prepare()) */
    size_t nh;
};

/* One change's records in a segment; iso: it is concurrent with none. */
struct grp {
    const struct rec *s, *e;
    uint8_t iso;
};

struct cx {
    notes_doc *d;
    struct notes__oplog *op;
    notes_lv n;
    uint32_t *ccum;        /* ccum[i]: critical events among [0, i) */
    uint32_t *seen;        /* per graph run: visit stamp of reach() */
    uint32_t stamp;
    notes_lv *stack;       /* reach()'s walk: at most one push per parent */
    size_t ghint;
    notes_lv *order;       /* the layout */
    size_t norder;
    notes_lv *dnext;       /* per delete event: next deleter of its target */
    notes_lv *dhead;       /* per event: first delete event targeting it */
    uint32_t *vis;         /* vis[k]: live code points among order[0, k) */
    uint8_t *nl;           /* per position: 1 newline, 2 live */
    uint32_t *segstart;    /* first position of each segment */
    size_t nseg;
    size_t ohint;          /* content cursor */
    notes_lv olv;
    size_t oboff;
    struct grp *grp;       /* examine()'s groups, reused */
    size_t capgrp;
};

/* ---- ancestry ---- */

/*
 * Mark critical events. Event i is critical when the events [0, i] are its
 * history (the frontier after adding it is {i}) and no later event has all
 * its parents before i (else that event would not descend from i).
 */
static int find_critical(struct cx *x)
{
    const struct notes__oplog *op = x->op;
    size_t ng = op->ngruns;
    uint8_t *front = notes__calloc(x->n, 1);
    int64_t *after = notes__malloc((ng ? ng : 1) * sizeof(int64_t));
    x->ccum = notes__malloc(((size_t)x->n + 1) * sizeof(uint32_t));
    if (!front || !after || !x->ccum) {
        notes__free(front);
        notes__free(after);
        return NOTES_ENOMEM;
    }
    /* after[g]: the smallest "largest parent" of the runs after g (a run
     * without parents counts -1). Within a run, event i has parent i-1. */
    int64_t m = INT64_MAX;
    for (size_t g = ng; g-- > 0;) {
        after[g] = m;
        const struct notes__graphrun *r = &op->gruns[g];
        int64_t mp = -1;
        for (uint32_t k = 0; k < r->nparents; k++)
            if ((int64_t)op->ppool[r->parents + k] > mp)
                mp = op->ppool[r->parents + k];
        if (mp < m)
            m = mp;
    }
    size_t cnt = 0;
    x->ccum[0] = 0;
    for (size_t g = 0; g < ng; g++) {
        const struct notes__graphrun *r = &op->gruns[g];
        for (uint32_t k = 0; k < r->nparents; k++) {
            notes_lv p = op->ppool[r->parents + k];
            if (front[p]) {
                front[p] = 0;
                cnt--;
            }
        }
        cnt++;
        /* Inside the run each event replaces its parent: the count stays;
         * only the last event can be a parent's frontier entry later. */
        front[r->start + r->len - 1] = 1;
        for (notes_lv i = r->start; i < r->start + r->len; i++)
            x->ccum[i + 1] = x->ccum[i] + (cnt == 1 && (int64_t)i <= after[g]);
    }
    notes__free(front);
    notes__free(after);
    return NOTES_OK;
}

/* Is event a in the history of event b (a == b included)? */
static int reach(struct cx *x, notes_lv a, notes_lv b)
{
    const struct notes__oplog *op = x->op;
    if (a > b)
        return 0;
    if (a == b || x->ccum[b] != x->ccum[a])
        return 1; /* equal, or a critical event in [a, b) lies between */
    if (++x->stamp == 0) {
        memset(x->seen, 0, op->ngruns * sizeof(uint32_t));
        x->stamp = 1;
    }
    size_t ns = 0;
    x->stack[ns++] = b;
    while (ns) {
        notes_lv v = x->stack[--ns];
        size_t gi = notes__oplog_find_graph(op, v);
        const struct notes__graphrun *g = &op->gruns[gi];
        if (g->start <= a)
            return 1; /* a <= v: a is v or an earlier event of its run */
        if (x->seen[gi] == x->stamp)
            continue; /* its parents are pushed already */
        x->seen[gi] = x->stamp;
        for (uint32_t k = 0; k < g->nparents; k++) {
            notes_lv p = op->ppool[g->parents + k];
            if (p < a)
                continue;
            if (p == a || x->ccum[p] != x->ccum[a])
                return 1;
            x->stack[ns++] = p;
        }
    }
    return 0;
}

static notes_lv last_lv(const struct cx *x, uint32_t e)
{
    return x->d->e[e].first_lv + x->d->e[e].nev - 1;
}

/* Change e is change f or one of its ancestors. */
static int before(struct cx *x, uint32_t e, uint32_t f)
{
    return reach(x, last_lv(x, e), last_lv(x, f));
}

/* Nothing but its own events lies between the critical events around
 * change e: it is concurrent with no change. */
static int isolated(const struct cx *x, uint32_t e)
{
    notes_lv f = x->d->e[e].first_lv, l = last_lv(x, e);
    int crit_prev = f == 0 || x->ccum[f] != x->ccum[f - 1];
    return crit_prev && x->ccum[l + 1] != x->ccum[l];
}

/* ---- content ---- */

/* The UTF-8 of code point `lv` (an insert event). Document order mostly
 * walks a run forward, so a cursor saves rescanning non-ASCII runs. */
static const char *char_at(struct cx *x, notes_lv lv, size_t *len)
{
    const struct notes__oplog *op = x->op;
    size_t oi = x->ohint;
    if (oi >= op->nops || lv < op->ops[oi].start ||
        lv - op->ops[oi].start >= op->ops[oi].len)
        oi = notes__oplog_find_op(op, lv);
    const struct notes__oprun *o = &op->ops[oi];
    const uint8_t *base = (const uint8_t *)op->content + o->content;
    size_t off;
    if (o->ascii) {
        off = lv - o->start;
        *len = 1;
    } else if (oi == x->ohint && lv >= x->olv) {
        off = x->oboff + notes__utf8_offset(base + x->oboff,
                                            o->nbytes - x->oboff, lv - x->olv);
        *len = notes__utf8_offset(base + off, o->nbytes - off, 1);
    } else {
        off = notes__utf8_offset(base, o->nbytes, lv - o->start);
        *len = notes__utf8_offset(base + off, o->nbytes - off, 1);
    }
    x->ohint = oi;
    x->olv = lv;
    x->oboff = off;
    return (const char *)base + off;
}

/* ---- gathering ---- */

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *p = a, *q = b;
    if (p->seg != q->seg)
        return p->seg < q->seg ? -1 : 1;
    if (p->entry != q->entry)
        return p->entry < q->entry ? -1 : 1;
    if (p->kind != q->kind)
        return p->kind < q->kind ? -1 : 1;
    return p->lv < q->lv ? -1 : p->lv > q->lv;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t p = *(const uint32_t *)a, q = *(const uint32_t *)b;
    return p < q ? -1 : p > q;
}

static int push_rec(const struct cx *x, struct rec **r, size_t *n,
                    size_t *cap, uint32_t seg, uint32_t entry, uint32_t kind,
                    notes_lv lv)
{
    /* Runs of one change's edits in one segment are common: the previous
     * record stands for this one when it is an insert too, or when it
     * deleted the code point inserted just before this one in one run of
     * events (it is then in the history of whatever has this one). */
    if (*n) {
        struct rec *p = &(*r)[*n - 1];
        if (p->seg == seg && p->entry == entry && p->kind == kind &&
            (kind == REC_INS ||
             (p->lv + 1 == lv &&
              x->op->gruns[notes__oplog_find_graph(x->op, lv)].start != lv)))
            return NOTES_OK;
    }
    if (notes__grow(r, cap, *n + 1, sizeof(**r), 256))
        return NOTES_ENOMEM;
    (*r)[(*n)++] = (struct rec){seg, entry, kind, lv};
    return NOTES_OK;
}

/* The entry of event lv: entries are sorted by first LV in `ents`. */
static uint32_t entry_of(const struct cx *x, const uint32_t *ents,
                         size_t nents, notes_lv lv, size_t *hint)
{
    const struct entry *e = x->d->e;
    size_t h = *hint;
    if (h < nents && lv >= e[ents[h]].first_lv &&
        lv - e[ents[h]].first_lv < e[ents[h]].nev)
        return ents[h];
    size_t lo = 0, hi = nents;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[ents[mid]].first_lv <= lv)
            lo = mid;
        else
            hi = mid;
    }
    *hint = lo;
    return ents[lo];
}

/* (first LV, entry) pairs, to sort entries by their first event. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t p = *(const uint64_t *)a, q = *(const uint64_t *)b;
    return p < q ? -1 : p > q;
}

/*
 * Walk the layout: cut it into segments, note live newlines and code
 * points, and record every change's edits per segment. A newline someone
 * inserted counts as an edit of the segment it opens: pressing Enter at the
 * end of a line and typing a new one does not touch that line.
 */
static int walk(struct cx *x, const uint32_t *ents, size_t nents,
                struct rec **recs, size_t *nrecs)
{
    size_t cap = 0, eh = 0, segcap = 0;
    uint32_t seg = 0;
    x->vis = notes__malloc((x->norder + 1) * sizeof(uint32_t));
    x->nl = notes__malloc(x->norder ? x->norder : 1);
    if (!x->vis || !x->nl ||
        notes__grow(&x->segstart, &segcap, 1, sizeof(uint32_t), 64))
        return NOTES_ENOMEM;
    x->segstart[0] = 0;
    x->nseg = 1;
    x->vis[0] = 0;
    for (size_t k = 0; k < x->norder; k++) {
        notes_lv c = x->order[k];
        size_t len;
        const char *ch = char_at(x, c, &len);
        int live = x->dhead[c] == NONE, isnl = len == 1 && *ch == '\n';
        x->nl[k] = (uint8_t)(isnl | (live << 1));
        x->vis[k + 1] = x->vis[k] + (uint32_t)live;
        uint32_t e = entry_of(x, ents, nents, c, &eh);
        if (push_rec(x, recs, nrecs, &cap, isnl ? seg + 1 : seg, e, REC_INS, c))
            return NOTES_ENOMEM;
        for (notes_lv dl = x->dhead[c]; dl != NONE; dl = x->dnext[dl]) {
            uint32_t de = entry_of(x, ents, nents, dl, &eh);
            if (push_rec(x, recs, nrecs, &cap, seg, de, REC_DEL, c))
                return NOTES_ENOMEM;
        }
        if (isnl) {
            if (notes__grow(&x->segstart, &segcap, x->nseg + 1,
                            sizeof(uint32_t), 64))
                return NOTES_ENOMEM;
            x->segstart[x->nseg++] = (uint32_t)(k + 1);
            seg++;
        }
    }
    return NOTES_OK;
}

/*
 * Does change a's deleting in records [r, end) hit text change b had?
 * Spaces and tabs do not count: an editor's Enter drops the blanks around
 * the cursor (CodeMirror's does), and two people typing at one spot, one
 * of them pressing Enter, have rewritten nothing (issue 18's browser test
 * of typing at one spot found that listed as a conflict).
 */
static int deleted_what_b_had(struct cx *x, const struct rec *r,
                              const struct rec *end, uint32_t a, uint32_t b)
{
    for (; r < end && r->entry == a; r++) {
        size_t len;
        const char *c;
        if (r->kind != REC_DEL)
            continue;
        c = char_at(x, r->lv, &len);
        if (len == 1 && (*c == ' ' || *c == '\t'))
            continue;
        if (reach(x, r->lv, last_lv(x, b)))
            return 1;
    }
    return 0;
}

static int pend_add(struct pend *p, uint32_t e)
{
    if (notes__grow(&p->p, &p->cap, p->np + 1, sizeof(uint32_t), 8))
        return NOTES_ENOMEM;
    p->p[p->np++] = e;
    return NOTES_OK;
}

/* The merged line(s) around segment s: from after the live newline
 * before it to its end, extended to the next live newline when its own
 * newline is deleted. */
static void seg_region(const struct cx *x, size_t s, size_t *r0, size_t *r1)
{
    size_t a = x->segstart[s];
    while (a > 0 && (x->nl[a - 1] & 3) != 3)
        a--;
    size_t b = s + 1 < x->nseg ? x->segstart[s + 1] : x->norder;
    while (b < x->norder && (b == 0 || (x->nl[b - 1] & 3) != 3))
        b++;
    *r0 = a;
    *r1 = b;
}

/* Examine one segment's records [r, end): every concurrent pair where one
 * deleted text the other had, and no later change that saw both edited
 * the segment, joins the conflict of its region. */
static int examine(struct cx *x, const struct rec *r, const struct rec *end,
                   struct pend **pends, size_t *npend, size_t *cappend)
{
    /* The changes that edited the segment: their groups of records. */
    size_t ng = 0, nc = 0;
    int any_del = 0;
    for (const struct rec *q = r; q < end; q++) {
        if (q == r || q->entry != q[-1].entry) {
            if (notes__grow(&x->grp, &x->capgrp, ng + 1, sizeof(*x->grp), 16))
                return NOTES_ENOMEM;
            x->grp[ng].s = q;
            x->grp[ng].iso = (uint8_t)isolated(x, q->entry);
            nc += !x->grp[ng].iso;
            if (ng)
                x->grp[ng - 1].e = q;
            ng++;
        }
        any_del |= q->kind == REC_DEL;
    }
    if (ng)
        x->grp[ng - 1].e = end;
    if (nc < 2 || !any_del)
        return NOTES_OK; /* the usual case: nothing concurrent here */
    struct pend *cur = NULL;
    const struct grp *g = x->grp;
    for (size_t i = 0; i < ng; i++) {
        uint32_t a = g[i].s->entry;
        if (g[i].iso || g[i].e[-1].kind != REC_DEL) /* sorted: DEL last */
            continue;
        for (size_t j = 0; j < ng; j++) {
            uint32_t b = g[j].s->entry;
            if (j == i || g[j].iso || before(x, a, b) || before(x, b, a) ||
                !deleted_what_b_had(x, g[i].s, g[i].e, a, b))
                continue;
            int chosen = 0;
            for (size_t k = 0; k < ng && !chosen; k++)
                chosen = k != i && k != j && before(x, a, g[k].s->entry) &&
                         before(x, b, g[k].s->entry);
            if (chosen)
                continue;
            if (!cur) {
                size_t r0, r1;
                seg_region(x, r->seg, &r0, &r1);
                if (*npend && (*pends)[*npend - 1].r1 > r0) {
                    cur = &(*pends)[*npend - 1]; /* the same merged line */
                    if (r1 > cur->r1)
                        cur->r1 = r1;
                } else {
                    if (notes__grow(pends, cappend, *npend + 1,
                                    sizeof(**pends), 8))
                        return NOTES_ENOMEM;
                    cur = &(*pends)[(*npend)++];
                    memset(cur, 0, sizeof(*cur));
                    cur->r0 = r0;
                    cur->r1 = r1;
                }
            }
            if (pend_add(cur, a) || pend_add(cur, b))
                return NOTES_ENOMEM;
        }
    }
    return NOTES_OK;
}

/* ---- the result ---- */

/* Is the code point at position k present at the version of change h
 * (h < 0: the current text)? Inserted there and deleted by none of it. */
static int live_at(struct cx *x, size_t k, int64_t h)
{
    if (h < 0)
        return x->nl[k] >> 1;
    notes_lv c = x->order[k], hl = last_lv(x, (uint32_t)h);
    int live = reach(x, c, hl);
    for (notes_lv dl = x->dhead[c]; live && dl != NONE; dl = x->dnext[dl])
        live = !reach(x, dl, hl);
    return live;
}

/* Does a line begin at position p at the version of change h: is the last
 * code point before p there a newline, or is there none? */
static int line_start_at(struct cx *x, size_t p, int64_t h)
{
    while (p-- > 0)
        if (live_at(x, p, h))
            return x->nl[p] & 1;
    return 1;
}

/*
 * Dedupe a conflict's changes, find its sides (the changes no other one of
 * them precedes) and widen its region until it is whole lines in every
 * side's version too: a change that rewrote two neighbouring lines (a diff
 * hunk) has its newline elsewhere than the merged text has.
 */
static int prepare(struct cx *x, struct pend *p)
{
    qsort(p->p, p->np, sizeof(uint32_t), cmp_u32);
    size_t w = 0;
    for (size_t i = 0; i < p->np; i++)
        if (!w || p->p[w - 1] != p->p[i])
            p->p[w++] = p->p[i];
    p->np = w;
    notes__free(p->h);
    if (!(p->h = notes__malloc(p->np * sizeof(uint32_t))))
        return NOTES_ENOMEM;
    p->nh = 0;
    for (size_t i = 0; i < p->np; i++) {
        int head = 1;
        for (size_t j = 0; j < p->np && head; j++)
            head = j == i || !before(x, p->p[i], p->p[j]);
        if (head)
            p->h[p->nh++] = p->p[i];
    }
    for (size_t i = 0; i < p->nh && p->r1 < x->norder;) {
        if (line_start_at(x, p->r1, p->h[i])) {
            i++;
            continue;
        }
        size_t b = p->r1; /* to the end of the next merged line */
        while (b < x->norder && (x->nl[b] & 3) != 3)
            b++;
        p->r1 = b < x->norder ? b + 1 : b;
        i = 0;
    }
    for (size_t i = 0; i < p->nh && p->r0 > 0;) {
        if (line_start_at(x, p->r0, p->h[i])) {
            i++;
            continue;
        }
        size_t a = p->r0 - 1; /* to the start of the merged line before */
        while (a > 0 && (x->nl[a - 1] & 3) != 3)
            a--;
        p->r0 = a;
        i = 0;
    }
    return NOTES_OK;
}

/* The segment holding position k. */
static size_t seg_at(const struct cx *x, size_t k)
{
    size_t lo = 0, hi = x->nseg;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->segstart[mid] <= k)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Has a change that saw every side edited the conflict's region (any of its
 * segments)? Then somebody chose. Checked per segment while gathering too;
 * this catches a choice made on a neighbouring segment of the same lines,
 * e.g. when every character of the conflicting segment is deleted and the
 * lines read "" (keeping the side that deleted them edits nothing else).
 */
static int region_chosen(struct cx *x, const struct pend *p,
                         const struct rec *recs, size_t nrecs)
{
    size_t s0 = seg_at(x, p->r0), s1 = p->r1 > p->r0 ? seg_at(x, p->r1 - 1) : s0;
    size_t lo = 0, hi = nrecs;
    while (lo < hi) { /* the first record of segment s0 or later */
        size_t mid = lo + (hi - lo) / 2;
        if (recs[mid].seg < s0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < nrecs && recs[i].seg <= s1; i++) {
        if (i > lo && recs[i].entry == recs[i - 1].entry &&
            recs[i].seg == recs[i - 1].seg)
            continue;
        size_t k = 0;
        while (k < p->nh && before(x, p->h[k], recs[i].entry))
            k++;
        if (k == p->nh)
            return 1;
    }
    return 0;
}

/* The live code points of positions [r0, r1) at the version of change h
 * (h < 0: the current text). */
static int region_text(struct cx *x, size_t r0, size_t r1, int64_t h,
                       char **out, size_t *nbytes)
{
    struct notes_buf b;
    notes__buf_init(&b, SIZE_MAX);
    int rc = NOTES_OK;
    for (size_t k = r0; k < r1 && !rc; k++) {
        notes_lv c = x->order[k];
        if (live_at(x, k, h)) {
            size_t len;
            const char *ch = char_at(x, c, &len);
            rc = notes__buf_put(&b, ch, len);
        }
    }
    uint8_t *p = NULL;
    if (!rc)
        rc = notes__buf_detach(&b, &p, nbytes);
    notes__buf_release(&b);
    *out = (char *)p;
    return rc;
}

/* Order the sides by change id: indexes differ between replicas, ids
 * do not. Few sides: an insertion sort. */
static void sort_sides(const notes_doc *d, notes_conflict_side *s, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        notes_conflict_side v = s[i];
        size_t j = i;
        for (; j > 0 && memcmp(d->e[s[j - 1].change].c->id,
                               d->e[v.change].c->id, 32) > 0; j--)
            s[j] = s[j - 1];
        s[j] = v;
    }
}

static void conflict_clear(notes_line_conflict *c)
{
    for (size_t s = 0; s < c->nsides; s++) {
        notes__free(c->side[s].changes);
        notes__free(c->side[s].text);
    }
    notes__free(c->side);
    notes__free(c->merged);
    memset(c, 0, sizeof(*c));
}

/* Turn a gathered conflict into its result; *keep 0 when every side left
 * the region as it reads now (nothing to choose). */
static int finish(struct cx *x, struct pend *p, notes_line_conflict *c, int *keep)
{
    int rc;
    *keep = 0;
    memset(c, 0, sizeof(*c));
    c->from = x->vis[p->r0];
    c->to = x->vis[p->r1];
    for (size_t k = p->r0; k < p->r1; k++)
        c->nlines += (x->nl[k] & 3) == 3;
    if (p->r1 > p->r0 && (x->nl[p->r1 - 1] & 3) != 3 && c->to > c->from)
        c->nlines++; /* the text's unterminated last line */
    if ((rc = region_text(x, p->r0, p->r1, -1, &c->merged, &c->nbytes)))
        return rc;
    c->side = notes__calloc(p->nh ? p->nh : 1, sizeof(*c->side));
    if (!c->side)
        return NOTES_ENOMEM;
    int differs = 0;
    for (size_t i = 0; i < p->nh; i++) {
        uint32_t h = p->h[i];
        notes_conflict_side *s = &c->side[c->nsides++];
        s->change = h;
        memcpy(s->author, x->d->e[h].c->author, 32);
        if ((rc = region_text(x, p->r0, p->r1, (int64_t)h, &s->text, &s->nbytes)))
            return rc;
        differs |= s->nbytes != c->nbytes ||
                   memcmp(s->text, c->merged, c->nbytes) != 0;
        if (!(s->changes = notes__malloc(p->np * sizeof(size_t))))
            return NOTES_ENOMEM;
        for (size_t j = 0; j < p->np; j++)
            if (before(x, p->p[j], h))
                s->changes[s->nchanges++] = p->p[j];
    }
    sort_sides(x->d, c->side, c->nsides);
    *keep = c->nsides >= 2 && differs;
    return NOTES_OK;
}

static void cx_release(struct cx *x)
{
    notes__free(x->ccum);
    notes__free(x->seen);
    notes__free(x->stack);
    notes__free(x->order);
    notes__free(x->dnext);
    notes__free(x->dhead);
    notes__free(x->vis);
    notes__free(x->nl);
    notes__free(x->segstart);
    notes__free(x->grp);
}

void notes_line_conflicts_free(notes_line_conflict *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++)
        conflict_clear(&c[i]);
    notes__free(c);
}

int notes_doc_line_conflicts(notes_doc *d, notes_line_conflict **out, size_t *n)
{
    NOTES__DOC_FULL_RC(d);
    if (!d || !out || !n)
        return NOTES_EINVAL;
    *out = NULL;
    *n = 0;
    if (d->has_pend) {
        notes__set_detail("commit local edits first");
        return NOTES_EINVAL;
    }
    struct cx x;
    memset(&x, 0, sizeof(x));
    x.d = d;
    x.op = d->op;
    x.n = (notes_lv)notes__oplog_len(d->op);
    if (x.n == 0)
        return NOTES_OK;
    uint32_t *ents = NULL;
    struct rec *recs = NULL;
    struct pend *pends = NULL;
    size_t nents = 0, nrecs = 0, npend = 0, cappend = 0;
    notes_line_conflict *res = NULL;
    size_t nres = 0;
    int rc = find_critical(&x);
    if (rc || x.ccum[x.n] == x.n)
        goto out; /* every event is critical: a history without concurrency */

    x.seen = notes__calloc(x.op->ngruns, sizeof(uint32_t));
    x.stack = notes__malloc((x.op->npool + 1) * sizeof(notes_lv));
    ents = notes__malloc((d->ne ? d->ne : 1) * sizeof(uint32_t));
    uint64_t *pairs = notes__malloc((d->ne ? d->ne : 1) * sizeof(uint64_t));
    if (!x.seen || !x.stack || !ents || !pairs) {
        notes__free(pairs);
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < d->ne; i++)
        if (d->e[i].applied && d->e[i].nev)
            pairs[nents++] = (uint64_t)d->e[i].first_lv << 32 | (uint32_t)i;
    qsort(pairs, nents, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < nents; i++)
        ents[i] = (uint32_t)pairs[i];
    notes__free(pairs);

    if ((rc = notes__oplog_layout(x.op, &x.order, &x.norder, &x.dnext)))
        goto out;
    /* Turn "what each delete event deleted" into per code point lists of
     * its deleters, in place. */
    if (!(x.dhead = notes__malloc((size_t)x.n * sizeof(notes_lv)))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    memset(x.dhead, 0xff, (size_t)x.n * sizeof(notes_lv));
    for (notes_lv lv = 0; lv < x.n; lv++) {
        notes_lv c = x.dnext[lv];
        if (c == NONE)
            continue;
        x.dnext[lv] = x.dhead[c];
        x.dhead[c] = lv;
    }
    if ((rc = walk(&x, ents, nents, &recs, &nrecs)))
        goto out;
    if (nrecs)
        qsort(recs, nrecs, sizeof(*recs), cmp_rec);
    for (size_t a = 0; a < nrecs && !rc;) {
        size_t b = a + 1;
        while (b < nrecs && recs[b].seg == recs[a].seg)
            b++;
        rc = examine(&x, recs + a, recs + b, &pends, &npend, &cappend);
        a = b;
    }
    /* Sides and whole-line regions; regions that now overlap are one
     * conflict (its sides found again). */
    size_t kept = 0;
    for (size_t i = 0; i < npend && !rc; i++) {
        if ((rc = prepare(&x, &pends[i])))
            break;
        pends[kept++] = pends[i];
        if (kept - 1 != i)
            pends[i].p = pends[i].h = NULL; /* moved */
        while (!rc && kept > 1 && pends[kept - 2].r1 > pends[kept - 1].r0) {
            struct pend *a = &pends[kept - 2], *b = &pends[kept - 1];
            for (size_t j = 0; j < b->np && !rc; j++)
                rc = pend_add(a, b->p[j]);
            if (b->r0 < a->r0)
                a->r0 = b->r0;
            if (b->r1 > a->r1)
                a->r1 = b->r1;
            notes__free(b->p);
            notes__free(b->h);
            b->p = b->h = NULL;
            kept--;
            if (!rc)
                rc = prepare(&x, a);
        }
    }
    for (size_t i = kept; i < npend; i++) {
        notes__free(pends[i].p);
        notes__free(pends[i].h);
    }
    npend = kept;
    if (rc)
        goto out;
    if (npend && !(res = notes__calloc(npend, sizeof(*res)))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    /* Line numbers: live newlines before each region, in one pass. */
    size_t k = 0, line = 1;
    for (size_t i = 0; i < npend && !rc; i++) {
        int keep;
        for (; k < pends[i].r0; k++)
            line += (x.nl[k] & 3) == 3;
        if (region_chosen(&x, &pends[i], recs, nrecs))
            continue;
        rc = finish(&x, &pends[i], &res[nres], &keep);
        res[nres].line = line;
        if (rc || !keep)
            conflict_clear(&res[nres]);
        else
            nres++;
    }
out:
    for (size_t i = 0; i < npend; i++) {
        notes__free(pends[i].p);
        notes__free(pends[i].h);
    }
    notes__free(pends);
    notes__free(recs);
    notes__free(ents);
    cx_release(&x);
    if (rc) {
        notes_line_conflicts_free(res, npend);
        return rc;
    }
    if (!nres) {
        notes__free(res);
        res = NULL;
    }
    *out = res;
    *n = nres;
    return NOTES_OK;
}

int notes_doc_resolve_conflict(notes_doc *d, const notes_line_conflict *c,
                               size_t side)
{
    NOTES__DOC_FULL_RC(d);
    if (!d || !c || side >= c->nsides) {
        notes__set_detail("no side %zu in this conflict", side + 1);
        return NOTES_EINVAL;
    }
    size_t len, nb;
    const char *t = notes_doc_text(d, &len);
    size_t ncp = notes_doc_length(d);
    if (c->to < c->from || c->to > ncp) {
        notes__set_detail("the note changed since its conflicts were listed");
        return NOTES_EINVAL;
    }
    size_t b0 = notes__utf8_offset((const uint8_t *)t, len, c->from);
    nb = notes__utf8_offset((const uint8_t *)t + b0, len - b0, c->to - c->from);
    if (nb != c->nbytes || memcmp(t + b0, c->merged, nb) != 0) {
        notes__set_detail("the note changed since its conflicts were listed");
        return NOTES_EINVAL;
    }
    /* The whole region is replaced, even where the chosen text equals it:
     * the change must edit the lines in conflict to end it. Lines that
     * read "" and are kept so get a space typed and deleted at once. */
    const notes_conflict_side *s = &c->side[side];
    int rc = notes_doc_splice(d, c->from, c->to - c->from, NULL, 0);
    if (!rc && c->to == c->from && s->nbytes == 0 &&
        !(rc = notes_doc_splice(d, c->from, 0, " ", 1)))
        rc = notes_doc_splice(d, c->from, 1, NULL, 0);
    if (!rc)
        rc = notes_doc_splice(d, c->from, 0, s->text, s->nbytes);
    return rc;
}
