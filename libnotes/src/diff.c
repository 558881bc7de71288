/*
 * diff.c: the difference between two versions of a note, as a unified line
 * diff (Myers' O(ND) algorithm, greedy forward search with the trace kept
 * for backtracking). Very different versions beyond an edit-distance cap
 * are shown as one hunk replacing everything.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define DIFF_MAX_D 2000 /* edit distance beyond which we stop searching:
                          * the trace costs O(D^2) memory (32 MB at most) */
#define CONTEXT 3

struct lines {
    const char **p;  /* line starts */
    size_t *n;       /* line lengths, newline included */
    size_t count;
};

static int split(const char *t, size_t len, struct lines *l)
{
    size_t capp = 0, capn = 0;
    int rc;
    l->count = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(t + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - t) + 1 : len;
        if ((rc = notes__grow(&l->p, &capp, l->count + 1, sizeof(*l->p), 16)) ||
            (rc = notes__grow(&l->n, &capn, l->count + 1, sizeof(*l->n), 16)))
            return rc;
        l->p[l->count] = t + i;
        l->n[l->count++] = e - i;
        i = e;
    }
    return NOTES_OK;
}

static int same(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
    return a->n[i] == b->n[j] && memcmp(a->p[i], b->p[j], a->n[i]) == 0;
}

/* Edit script: for each line of a, keep[i] = matching line of b or -1. */
static int myers(const struct lines *a, const struct lines *b, long *match_a)
{
    long n = (long)a->count, m = (long)b->count, max = n + m;
    if (n == 0 || m == 0) { /* nothing can match */
        for (long i = 0; i < n; i++)
            match_a[i] = -1;
        return NOTES_OK;
    }
    long dmax = max < DIFF_MAX_D ? max : DIFF_MAX_D;
    long *v = notes__malloc((size_t)(2 * dmax + 3) * sizeof(*v));
    long **trace = notes__calloc((size_t)dmax + 1, sizeof(*trace));
    long d, found = -1;
    int rc = NOTES_OK;
    if ((n && !a->n) || (m && !b->n)) {
        rc = NOTES_EINVAL; /* lines not split */
        goto out;
    }
    if (!v || !trace) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (long i = 0; i < n; i++)
        match_a[i] = -1;
    long off = dmax + 1;
    v[off + 1] = 0;
    for (d = 0; d <= dmax; d++) {
        for (long k = -d; k <= d; k += 2) {
            long x;
            if (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
                x = v[off + k + 1];
            else
                x = v[off + k - 1] + 1;
            long y = x - k;
            while (x < n && y < m && same(a, (size_t)x, b, (size_t)y))
                x++, y++;
            v[off + k] = x;
            if (x >= n && y >= m) {
                found = d;
                break;
            }
        }
        trace[d] = notes__malloc((size_t)(2 * d + 1) * sizeof(long));
        if (!trace[d]) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        for (long k = -d; k <= d; k++)
            trace[d][k + d] = v[off + k];
        if (found >= 0)
            break;
    }
    if (found < 0)
        goto out; /* too different: everything replaced */
    /* Backtrack from (n, m). */
    long x = n, y = m;
    for (d = found; d > 0; d--) {
        long k = x - y, pk;
        const long *pv = trace[d - 1];
        if (k == -d || (k != d && pv[k - 1 + (d - 1)] < pv[k + 1 + (d - 1)]))
            pk = k + 1;
        else
            pk = k - 1;
        long px = pv[pk + (d - 1)], py = px - pk;
        while (x > px && y > py) {
            match_a[--x] = --y;
        }
        x = px;
        y = py;
    }
    while (x > 0 && y > 0)
        match_a[--x] = --y;
out:
    if (trace)
        for (long i = 0; i <= dmax; i++)
            notes__free(trace[i]);
    notes__free(trace);
    notes__free(v);
    return rc;
}

/*
 * Split both texts into lines and match them: (*ma)[i] is the line of b
 * that line i of a is kept as, or -1. The unified diff and the regions
 * both start here; the caller frees a, b and *ma whatever the result.
 */
static int match_lines(const char *ta, size_t na, const char *tb, size_t nb,
                       struct lines *a, struct lines *b, long **ma)
{
    int rc;
    if ((rc = split(ta, na, a)) || (rc = split(tb, nb, b)))
        return rc;
    *ma = notes__malloc((a->count + 1) * sizeof(**ma));
    if (!*ma)
        return NOTES_ENOMEM;
    return myers(a, b, *ma);
}

static void match_free(struct lines *a, struct lines *b, long *ma)
{
    notes__free(a->p);
    notes__free(a->n);
    notes__free(b->p);
    notes__free(b->n);
    notes__free(ma);
}

static int put_line(struct notes_buf *o, char tag, const char *p, size_t n)
{
    int rc = notes__buf_put_u8(o, (uint8_t)tag);
    if (!rc)
        rc = notes__buf_put(o, p, n);
    if (!rc && (n == 0 || p[n - 1] != '\n'))
        rc = notes__buf_put(o, "\n\\ No newline at end of file\n", 29);
    return rc;
}

int notes__diff(const char *ta, size_t na, const char *tb, size_t nb,
                const char *label_a, const char *label_b, char **out,
                size_t *nout);
int notes__diff(const char *ta, size_t na, const char *tb, size_t nb,
                const char *label_a, const char *label_b, char **out,
                size_t *nout)
{
    struct lines a = {0}, b = {0};
    struct notes_buf o;
    long *ma = NULL;
    char head[512];
    int rc;
    /* declared here for the goto paths */

    *out = NULL;
    *nout = 0;
    notes__buf_init(&o, SIZE_MAX / 2);
    if ((rc = match_lines(ta, na, tb, nb, &a, &b, &ma)))
        goto done;
    /* The edit script: ' ' keep, '-' line of a, '+' line of b. */
    size_t cap = a.count + b.count + 1, ne = 0;
    struct edit {
        char tag;
        size_t ai, bi; /* line numbers (0-based) before this edit */
    } *ed = notes__malloc(cap * sizeof(*ed));
    if (!ed) {
        rc = NOTES_ENOMEM;
        goto done;
    }
    {
        size_t i = 0, j = 0;
        while (i < a.count || j < b.count) {
            ed[ne].ai = i;
            ed[ne].bi = j;
            if (i < a.count && j < b.count && ma[i] == (long)j) {
                ed[ne++].tag = ' ';
                i++, j++;
            } else if (i < a.count && ma[i] < 0) {
                ed[ne++].tag = '-';
                i++;
            } else {
                ed[ne++].tag = '+';
                j++;
            }
        }
    }
    /* Hunks: runs of edits whose changes are at most 2*CONTEXT apart,
     * with CONTEXT unchanged lines around them. */
    for (size_t k = 0; k < ne;) {
        if (ed[k].tag == ' ') {
            k++;
            continue;
        }
        size_t start = k >= CONTEXT ? k - CONTEXT : 0;
        while (start < k && ed[start].tag != ' ')
            start++;
        size_t end = k, last = k;
        while (end < ne) {
            if (ed[end].tag != ' ')
                last = end;
            else if (end - last > (size_t)2 * CONTEXT)
                break;
            end++;
        }
        end = last + 1 + CONTEXT < ne ? last + 1 + CONTEXT : ne;
        size_t la = 0, lb = 0;
        for (size_t x = start; x < end; x++) {
            la += ed[x].tag != '+';
            lb += ed[x].tag != '-';
        }
        if (o.len == 0) {
            snprintf(head, sizeof(head), "--- %s\n+++ %s\n", label_a, label_b);
            if ((rc = notes__buf_put(&o, head, strlen(head))))
                break;
        }
        snprintf(head, sizeof(head), "@@ -%zu,%zu +%zu,%zu @@\n",
                 ed[start].ai + (la ? 1 : 0), la, ed[start].bi + (lb ? 1 : 0),
                 lb);
        if ((rc = notes__buf_put(&o, head, strlen(head))))
            break;
        for (size_t x = start; x < end && !rc; x++) {
            if (ed[x].tag == '+')
                rc = put_line(&o, '+', b.p[ed[x].bi], b.n[ed[x].bi]);
            else
                rc = put_line(&o, ed[x].tag, a.p[ed[x].ai], a.n[ed[x].ai]);
        }
        if (rc)
            break;
        k = end;
    }
    notes__free(ed);
    if (rc)
        goto done;
    if ((rc = notes__buf_put_u8(&o, 0)))
        goto done;
    *out = (char *)o.data;
    *nout = o.len - 1;
    o.data = NULL;
done:
    notes__buf_release(&o);
    match_free(&a, &b, ma);
    return rc;
}

/*
 * The changed regions between a and b, as (offset in a, bytes deleted,
 * offset in b, bytes inserted), in order: hunks of changed lines with
 * common leading and trailing characters trimmed. For turning a whole new
 * text into minimal splices.
 */
int notes__diff_regions(const char *ta, size_t na, const char *tb, size_t nb,
                        int (*cb)(void *ctx, size_t a_off, size_t a_len,
                                  size_t b_off, size_t b_len),
                        void *ctx);
int notes__diff_regions(const char *ta, size_t na, const char *tb, size_t nb,
                        int (*cb)(void *ctx, size_t a_off, size_t a_len,
                                  size_t b_off, size_t b_len),
                        void *ctx)
{
    struct lines a = {0}, b = {0};
    long *ma = NULL;
    int rc;
    if ((rc = match_lines(ta, na, tb, nb, &a, &b, &ma)))
        goto done;
    size_t i = 0, j = 0;
    while (i < a.count || j < b.count) {
        if (i < a.count && j < b.count && ma[i] == (long)j) {
            i++, j++;
            continue;
        }
        size_t i0 = i, j0 = j;
        while (i < a.count && ma[i] < 0)
            i++;
        long until = i < a.count ? ma[i] : (long)b.count;
        while ((long)j < until)
            j++;
        size_t ao = i0 < a.count ? (size_t)(a.p[i0] - ta) : na;
        size_t ae = i < a.count ? (size_t)(a.p[i] - ta) : na;
        size_t bo = j0 < b.count ? (size_t)(b.p[j0] - tb) : nb;
        size_t be = j < b.count ? (size_t)(b.p[j] - tb) : nb;
        /* Trim what the hunk's two sides share at both ends. */
        while (ao < ae && bo < be && ta[ao] == tb[bo])
            ao++, bo++;
        while (ae > ao && be > bo && ta[ae - 1] == tb[be - 1])
            ae--, be--;
        /* Never split a UTF-8 sequence. */
        while (ao > 0 && ((unsigned char)ta[ao] & 0xc0) == 0x80 && ao < ae + 1 &&
               bo > 0)
            ao--, bo--;
        while (ae < na && ((unsigned char)ta[ae] & 0xc0) == 0x80)
            ae++, be++;
        if (ae > ao || be > bo)
            if ((rc = cb(ctx, ao, ae - ao, bo, be - bo)))
                goto done;
    }
done:
    match_free(&a, &b, ma);
    return rc;
}
