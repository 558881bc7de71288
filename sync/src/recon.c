/*
 * recon.c: range-based set reconciliation of (note id, heads digest) pairs
 * (recon.h; docs/protocol.md, "Reconciliation").
 *
 * A range [lo, hi) of note ids is summarised by a fingerprint: BLAKE2b-128
 * of (the sum mod 2^128 of BLAKE2b-128(id || digest) over its items ||
 * their count). Sums are kept as prefix sums, so any range's fingerprint
 * costs two binary searches, whatever its size: a no-change check of
 * 10,000 notes is one 16-byte comparison. A side that finds a range's
 * fingerprint differs answers with RECON_BUCKETS sub-ranges (or, when it
 * holds at most RECON_LIST_MAX items there, the items themselves); a side
 * given items answers with the ids that differ. Each turn answers every
 * question of the last, so the exchange ends after O(log n) turns.
 */
#include <stdlib.h>
#include <string.h>

#include "recon.h"

enum { R_SKIP = 0, R_FP = 1, R_LIST = 2, R_DIFF = 3 };
#define BOUND_INF 0xff
#define MORE 1

static void item_hash(const struct recon_item *it, uint64_t h[2])
{
    uint8_t b[16];
    notes__hash(b, 16, it, sizeof(*it), NULL, 0);
    h[0] = h[1] = 0;
    for (int i = 7; i >= 0; i--) {
        h[0] = h[0] << 8 | b[i];
        h[1] = h[1] << 8 | b[8 + i];
    }
}

int notes_sync__recon_init(struct recon *r, const struct recon_item *items,
                           size_t n)
{
    memset(r, 0, sizeof(*r));
    r->items = items;
    r->n = n;
    r->pre = malloc((n + 1) * sizeof(*r->pre));
    if (!r->pre)
        return NOTES_ENOMEM;
    r->pre[0][0] = r->pre[0][1] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h[2];
        item_hash(&items[i], h);
        r->pre[i + 1][0] = r->pre[i][0] + h[0];
        r->pre[i + 1][1] = r->pre[i][1] + h[1] + (r->pre[i + 1][0] < h[0]);
    }
    notes__buf_init(&r->out, SIZE_MAX / 4);
    return NOTES_OK;
}

void notes_sync__recon_free(struct recon *r)
{
    free(r->pre);
    free(r->diff);
    notes__buf_release(&r->out);
    memset(r, 0, sizeof(*r));
}

/* Fingerprint of items [a, b). */
static void fingerprint(const struct recon *r, size_t a, size_t b,
                        uint8_t fp[16])
{
    uint8_t in[24];
    uint64_t lo = r->pre[b][0] - r->pre[a][0];
    uint64_t hi = r->pre[b][1] - r->pre[a][1] - (r->pre[b][0] < r->pre[a][0]);
    uint64_t c = b - a;
    for (int i = 0; i < 8; i++) {
        in[i] = (uint8_t)(lo >> (8 * i));
        in[8 + i] = (uint8_t)(hi >> (8 * i));
        in[16 + i] = (uint8_t)(c >> (8 * i));
    }
    notes__hash(fp, 16, in, sizeof(in), NULL, 0);
}

/* Index of the first item whose id is >= bound (n for infinity). */
static size_t lower(const struct recon *r, const uint8_t b[16], int inf)
{
    return inf ? r->n : notes_sync__lower_id(r->items, r->n,
                                             sizeof(*r->items), b);
}

static int diff_add(struct recon *r, const uint8_t id[16])
{
    if (r->ndiff == r->cdiff) {
        size_t nc = r->cdiff ? r->cdiff * 2 : 64;
        uint8_t(*nd)[16] = realloc(r->diff, nc * 16);
        if (!nd)
            return NOTES_ENOMEM;
        r->diff = nd;
        r->cdiff = nc;
    }
    memcpy(r->diff[r->ndiff++], id, 16);
    return NOTES_OK;
}

/* ---- writing a turn ---- */

/* Start a new message of the turn if none is open or the open one is full
 * (the previous one then gets the MORE flag). */
static int msg_room(struct recon *r)
{
    int rc;
    size_t cur = r->out.len - r->msg_at;
    if (r->out.len && cur < RECON_CHUNK)
        return NOTES_OK;
    if (r->out.len)
        r->out.data[r->msg_at + 4] = MORE;
    r->msg_at = r->out.len;
    if ((rc = notes__buf_put(&r->out, (const uint8_t[]){0, 0, 0, 0, 0}, 5)))
        return rc;
    return NOTES_OK;
}

/* Seal the last message's length. */
static void msg_close(struct recon *r)
{
    size_t n = r->out.len - r->msg_at - 4;
    notes__store_u32le(r->out.data + r->msg_at, (uint32_t)n);
}

static int put_bound(struct recon *r, const uint8_t b[16], int inf, size_t len)
{
    int rc;
    if (inf)
        return notes__buf_put_u8(&r->out, BOUND_INF);
    if ((rc = notes__buf_put_u8(&r->out, (uint8_t)len)))
        return rc;
    return notes__buf_put(&r->out, b, len);
}

/*
 * The shortest bound v with a < v <= b (a < b): b's first bytes up to and
 * including the first that differs from a; the rest is implied zero.
 */
static size_t bound_between(const uint8_t a[16], const uint8_t b[16],
                            uint8_t v[16])
{
    size_t l = 0;
    while (l < 16 && a[l] == b[l])
        l++;
    memset(v, 0, 16);
    memcpy(v, b, l + 1 <= 16 ? l + 1 : 16);
    return l + 1 <= 16 ? l + 1 : 16;
}

/* Bytes of a bound value (trailing zeros dropped). */
static size_t bound_len(const uint8_t b[16])
{
    size_t l = 16;
    while (l > 0 && b[l - 1] == 0)
        l--;
    return l;
}

/* Flush a pending skip up to bound b. */
static int flush_skip(struct recon *r, const uint8_t b[16], int inf)
{
    int rc;
    if (!r->skip_pending)
        return NOTES_OK;
    r->skip_pending = 0;
    if ((rc = msg_room(r)) || (rc = put_bound(r, b, inf, inf ? 0 : bound_len(b))))
        return rc;
    return notes__buf_put_u8(&r->out, R_SKIP);
}

/* A range ending at hi: mode and what follows is up to the caller. */
static int range_head(struct recon *r, const uint8_t lo[16], int lo_inf,
                      const uint8_t hi[16], int hi_inf, size_t hi_len,
                      uint8_t mode)
{
    int rc;
    if ((rc = flush_skip(r, lo, lo_inf)) || (rc = msg_room(r)) ||
        (rc = put_bound(r, hi, hi_inf, hi_len)))
        return rc;
    return notes__buf_put_u8(&r->out, mode);
}

/* Our items [a, b) as a LIST range [lo, hi). */
static int put_list(struct recon *r, const uint8_t lo[16], int lo_inf,
                    const uint8_t hi[16], int hi_inf, size_t a, size_t b)
{
    int rc;
    if ((rc = range_head(r, lo, lo_inf, hi, hi_inf, hi_inf ? 0 : bound_len(hi),
                         R_LIST)) ||
        (rc = notes__buf_put_varint(&r->out, b - a)))
        return rc;
    for (size_t i = a; i < b; i++)
        if ((rc = notes__buf_put(&r->out, &r->items[i], 32)))
            return rc;
    r->out_questions = 1;
    return NOTES_OK;
}

/* A range [lo, hi) whose fingerprint differs (or the first turn): list
 * our items there when few, else split them in RECON_BUCKETS. */
static int split_or_list(struct recon *r, const uint8_t lo[16], int lo_inf,
                         const uint8_t hi[16], int hi_inf, size_t a, size_t b)
{
    size_t c = b - a;
    uint8_t prev[16];
    int prev_inf = lo_inf;
    int rc;
    if (c <= RECON_LIST_MAX)
        return put_list(r, lo, lo_inf, hi, hi_inf, a, b);
    memcpy(prev, lo, 16);
    for (size_t j = 0; j < RECON_BUCKETS; j++) {
        size_t s = a + c * j / RECON_BUCKETS, e = a + c * (j + 1) / RECON_BUCKETS;
        uint8_t ub[16], fp[16];
        size_t ul;
        int ub_inf = 0;
        if (j + 1 == RECON_BUCKETS) {
            memcpy(ub, hi, 16);
            ub_inf = hi_inf;
            ul = hi_inf ? 0 : bound_len(hi);
        } else {
            ul = bound_between(r->items[e - 1].id, r->items[e].id, ub);
        }
        fingerprint(r, s, e, fp);
        if ((rc = range_head(r, prev, prev_inf, ub, ub_inf, ul, R_FP)) ||
            (rc = notes__buf_put(&r->out, fp, 16)))
            return rc;
        memcpy(prev, ub, 16);
        prev_inf = ub_inf;
    }
    r->out_questions = 1;
    return NOTES_OK;
}

/* The ids that differ in [lo, hi) as DIFF ranges of at most
 * RECON_DIFF_RANGE ids each. */
static int put_diff(struct recon *r, const uint8_t lo[16], int lo_inf,
                    const uint8_t hi[16], int hi_inf, const uint8_t (*ids)[16],
                    size_t k)
{
    uint8_t prev[16];
    int prev_inf = lo_inf;
    int rc;
    memcpy(prev, lo, 16);
    for (size_t s = 0; s < k; s += RECON_DIFF_RANGE) {
        size_t e = k - s > RECON_DIFF_RANGE ? s + RECON_DIFF_RANGE : k;
        uint8_t ub[16];
        size_t ul;
        int ub_inf = 0;
        if (e == k) {
            memcpy(ub, hi, 16);
            ub_inf = hi_inf;
            ul = hi_inf ? 0 : bound_len(hi);
        } else {
            ul = bound_between(ids[e - 1], ids[e], ub);
        }
        if ((rc = range_head(r, prev, prev_inf, ub, ub_inf, ul, R_DIFF)) ||
            (rc = notes__buf_put_varint(&r->out, e - s)) ||
            (rc = notes__buf_put(&r->out, ids[s], (e - s) * 16)))
            return rc;
        memcpy(prev, ub, 16);
        prev_inf = ub_inf;
    }
    return NOTES_OK;
}

/* End the turn being written: a skip to the end if one is pending, and
 * the last message's length. */
static int turn_end(struct recon *r)
{
    static const uint8_t zero[16];
    int rc;
    if (r->skip_pending) {
        if ((rc = flush_skip(r, zero, 1)))
            return rc;
    }
    if (r->out.len)
        msg_close(r);
    return NOTES_OK;
}

int notes_sync__recon_start(struct recon *r)
{
    static const uint8_t zero[16];
    int rc;
    r->out.len = 0;
    r->out_questions = 0;
    if (r->n <= RECON_LIST_MAX)
        rc = put_list(r, zero, 0, zero, 1, 0, r->n);
    else {
        uint8_t fp[16];
        fingerprint(r, 0, r->n, fp);
        if (!(rc = range_head(r, zero, 0, zero, 1, 0, R_FP)))
            rc = notes__buf_put(&r->out, fp, 16);
        r->out_questions = 1;
    }
    if (!rc)
        rc = turn_end(r);
    return rc;
}

/* ---- reading the peer's turn ---- */

static int bad(const char *what)
{
    notes_sync__detail("reconciliation: %s", what);
    return NOTES_SYNC_EPROTO;
}

/* Our answer to the peer's LIST of k items (p) in [lo, hi), whose items
 * here are [a, b): the ids that differ, all of them into r->diff. */
static int answer_list(struct recon *r, const uint8_t lo[16], int lo_inf,
                       const uint8_t hi[16], int hi_inf, const uint8_t *p,
                       size_t k, size_t a, size_t b)
{
    uint8_t(*ids)[16] = malloc((k + (b - a) + 1) * 16);
    size_t nd = 0, i = 0, j = a;
    int rc = NOTES_OK;
    if (!ids)
        return NOTES_ENOMEM;
    while (i < k || j < b) {
        const uint8_t *t = i < k ? p + i * 32 : NULL;
        const struct recon_item *o = j < b ? &r->items[j] : NULL;
        int c = !t ? 1 : !o ? -1 : memcmp(t, o->id, 16);
        if (c < 0) {
            memcpy(ids[nd++], t, 16);
            i++;
        } else if (c > 0) {
            memcpy(ids[nd++], o->id, 16);
            j++;
        } else {
            if (memcmp(t + 16, o->digest, 16) != 0)
                memcpy(ids[nd++], t, 16);
            i++;
            j++;
        }
    }
    for (size_t x = 0; x < nd && !rc; x++)
        rc = diff_add(r, ids[x]);
    if (!rc) {
        if (nd == 0)
            r->skip_pending = 1;
        else
            rc = put_diff(r, lo, lo_inf, hi, hi_inf, (const uint8_t(*)[16])ids,
                          nd);
    }
    free(ids);
    return rc;
}

int notes_sync__recon_turn_over(const struct recon *r)
{
    return !r->in_turn;
}

int notes_sync__recon_recv(struct recon *r, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint8_t flags;
    int rc;
    if (r->done)
        return bad("a message after it ended");
    if (++r->msgs > RECON_MAX_MSGS)
        return bad("it does not end (too many messages)");
    if (n < 1 || (flags = *p++) > MORE)
        return bad("malformed message");
    if (!r->in_turn) {
        /* A new turn of the peer's: our answer starts afresh. */
        r->in_turn = 1;
        memset(r->lo, 0, 16);
        r->lo_inf = 0;
        r->questions = 0;
        r->ranges = 0;
        r->out.len = 0;
        r->msg_at = 0;
        r->out_questions = 0;
        r->skip_pending = 0;
    }
    while (p < end) {
        uint8_t hi[16] = {0}, mode;
        int hi_inf = 0;
        size_t a, b;
        if (r->lo_inf)
            return bad("a range after the end");
        if (++r->ranges > RECON_MAX_RANGES)
            return bad("too many ranges");
        uint8_t bl = *p++;
        if (bl == BOUND_INF)
            hi_inf = 1;
        else if (bl > 16 || (size_t)(end - p) < bl)
            return bad("malformed bound");
        else {
            memcpy(hi, p, bl);
            p += bl;
        }
        if (!hi_inf && memcmp(hi, r->lo, 16) <= 0)
            return bad("bounds do not increase");
        if (p == end)
            return bad("truncated range");
        mode = *p++;
        a = lower(r, r->lo, r->lo_inf);
        b = lower(r, hi, hi_inf);
        switch (mode) {
        case R_SKIP:
            r->skip_pending = 1;
            break;
        case R_FP: {
            uint8_t fp[16];
            if (end - p < 16)
                return bad("truncated fingerprint");
            r->questions = 1;
            fingerprint(r, a, b, fp);
            if (memcmp(fp, p, 16) == 0)
                r->skip_pending = 1;
            else if ((rc = split_or_list(r, r->lo, r->lo_inf, hi, hi_inf, a, b)))
                return rc;
            p += 16;
            break;
        }
        case R_LIST:
        case R_DIFF: {
            uint64_t k;
            size_t w = mode == R_LIST ? 32 : 16;
            if (notes_sync__get_varint(&p, end, &k) ||
                k > (uint64_t)(end - p) / w)
                return bad("truncated list");
            if (mode == R_LIST && k > RECON_LIST_MAX)
                return bad("a list longer than the limit");
            if (mode == R_DIFF && (k == 0 || k > RECON_DIFF_RANGE))
                return bad("a bad count of ids");
            for (uint64_t i = 0; i < k; i++) {
                const uint8_t *id = p + i * w;
                if (memcmp(id, r->lo, 16) < 0 ||
                    (!hi_inf && memcmp(id, hi, 16) >= 0) ||
                    (i > 0 && memcmp(id - w, id, 16) >= 0))
                    return bad("an id out of its range or order");
            }
            if (mode == R_LIST) {
                r->questions = 1;
                if ((rc = answer_list(r, r->lo, r->lo_inf, hi, hi_inf, p,
                                      (size_t)k, a, b)))
                    return rc;
            } else {
                for (uint64_t i = 0; i < k; i++)
                    if ((rc = diff_add(r, p + i * w)))
                        return rc;
                r->skip_pending = 1;
            }
            p += k * w;
            break;
        }
        default:
            return bad("unknown range mode");
        }
        memcpy(r->lo, hi, 16);
        r->lo_inf = hi_inf;
    }
    if (flags & MORE)
        return r->lo_inf ? bad("more after the end") : NOTES_OK;
    if (!r->lo_inf)
        return bad("the ranges stop before the end");
    r->in_turn = 0;
    if (!r->questions) {
        /* The peer asked nothing: over, and nothing owed. */
        r->out.len = 0;
        r->done = 1;
        return NOTES_OK;
    }
    if ((rc = turn_end(r)))
        return rc;
    if (!r->out_questions)
        r->done = 1; /* our answer asks nothing: over once sent */
    return NOTES_OK;
}

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

void notes_sync__recon_finish(struct recon *r)
{
    size_t k = 0;
    if (r->ndiff > 1)
        qsort(r->diff, r->ndiff, 16, cmp16);
    for (size_t i = 0; i < r->ndiff; i++)
        if (k == 0 || memcmp(r->diff[k - 1], r->diff[i], 16) != 0)
            memmove(r->diff[k++], r->diff[i], 16);
    r->ndiff = k;
}
