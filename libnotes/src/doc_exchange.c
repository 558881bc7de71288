/*
 * doc_exchange.c: exchange: exporting a doc's changes as a bundle (packed
 * runs) and merging a bundle or another replica's changes in.
 */
#include <stdio.h>

#include "doc_internal.h"

/*
 * Bundles. Version 1: a varint count, then each change's signed bytes.
 * Version 2 (what export writes): the note id, then a pack of the changes
 * (pack.c) whose prev/dep references point back into the pack or, for
 * changes the peer already has, carry the full id. A pack drops each
 * change's note id, author key and hashes, which are most of a small
 * change; the receiver rebuilds the exact signed bytes and verifies them.
 */
static const uint8_t bundle_magic[4] = {'N', 'T', 'B', 1};
#define BUNDLE_PACKED 2

/* How far the walk of prefix_of may look past the parents' prefixes. */
#define PREFIX_WINDOW 16

/*
 * entry->prefix of `idx`, its parents' known: their best prefix, extended
 * over the few entries between it and idx that are idx's ancestors too (a
 * walk of at most PREFIX_WINDOW entries; a wider gap, as after a long
 * offline branch, leaves the bound where the parents put it). Entries are
 * added in causal order (a change whose deps or prev are missing is
 * refused), so ancestors always have lower indices.
 */
static uint32_t prefix_of(const notes_doc *d, uint32_t idx)
{
    const struct notes__change *c = d->e[idx].c;
    uint32_t base = 0;
    for (uint32_t i = 0; i <= c->ndeps; i++) {
        uint32_t p = notes__doc_parent(d, c, i);
        if (p != NONE && p < idx && d->e[p].prefix > base)
            base = d->e[p].prefix;
    }
    if (base >= idx)
        return idx + 1; /* every entry before it, and itself */
    if (idx - base > PREFIX_WINDOW)
        return base;
    uint8_t seen[PREFIX_WINDOW] = {0};
    uint32_t stack[PREFIX_WINDOW + 1], sp = 0;
    stack[sp++] = idx;
    while (sp) {
        const struct notes__change *e = d->e[stack[--sp]].c;
        for (uint32_t i = 0; i <= e->ndeps; i++) {
            uint32_t p = notes__doc_parent(d, e, i);
            if (p == NONE || p < base || p >= idx || seen[p - base])
                continue;
            seen[p - base] = 1;
            stack[sp++] = p;
        }
    }
    uint32_t k = base;
    while (k < idx && seen[k - base])
        k++;
    return k == idx ? idx + 1 : k;
}

uint32_t notes__doc_prefix(notes_doc *d, uint32_t idx)
{
    /* In log order from the first entry not yet done: the parents of each
     * come before it. An entry's bound depends only on the entries before
     * it, which never change under it (entries are only added at the end,
     * and notes__doc_add_entry moves prefix_from back to a new one). */
    for (uint32_t j = d->prefix_from; j <= idx; j++)
        if (!d->e[j].prefix_ok) {
            d->e[j].prefix = prefix_of(d, j);
            d->e[j].prefix_ok = 1;
        }
    if (idx >= d->prefix_from)
        d->prefix_from = idx + 1;
    return d->e[idx].prefix;
}

/*
 * Mark what the entries of `have` at or above `floor` reach (themselves,
 * deps, prev), at or above `floor` only: known[i - floor]. Everything
 * below `floor` is known already, and no path climbs back above it.
 */
static int mark_known(const notes_doc *d, const uint8_t (*have)[32], size_t n,
                      uint32_t floor, uint8_t *known)
{
    uint32_t *stack = notes__malloc((d->ne - floor + 1) * sizeof(*stack));
    size_t sp = 0;
    if (!stack)
        return NOTES_ENOMEM;
    for (size_t h = 0; h < n; h++) {
        uint32_t e = notes__doc_hash_find(d, have[h]);
        if (e == NONE || e < floor || known[e - floor])
            continue;
        known[e - floor] = 1;
        stack[sp++] = e;
        while (sp) {
            const struct notes__change *c = d->e[stack[--sp]].c;
            for (uint32_t i = 0; i <= c->ndeps; i++) {
                uint32_t p = notes__doc_parent(d, c, i);
                if (p != NONE && p >= floor && !known[p - floor]) {
                    known[p - floor] = 1;
                    stack[sp++] = p;
                }
            }
        }
    }
    notes__free(stack);
    return NOTES_OK;
}

int notes_doc_export(notes_doc *d, const uint8_t (*have)[32], size_t n,
                     uint8_t **bytes, size_t *nbytes)
{
    NOTES__DOC_FULL_RC(d);
    /* What the peer has for sure: the longest prefix of the log that one
     * of its heads covers (entry->prefix). A peer that holds our last
     * heads, as a live one does, costs what it lacks, not the history. */
    uint32_t floor = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = notes__doc_hash_find(d, have[i]);
        uint32_t pf = e == NONE ? 0 : notes__doc_prefix(d, e);
        if (pf > floor)
            floor = pf;
    }
    if (floor > d->ne)
        floor = (uint32_t)d->ne;
    size_t span = d->ne - floor;
    uint8_t *known = notes__calloc(span + 1, 1);
    const uint8_t **ptrs = notes__malloc((span + 1) * sizeof(*ptrs));
    size_t *lens = notes__malloc((span + 1) * sizeof(*lens));
    struct notes__change **sel =
        notes__malloc((span + 1) * sizeof(struct notes__change *));
    struct notes_buf out;
    size_t k = 0;
    int rc = NOTES_ENOMEM;

    *bytes = NULL;
    *nbytes = 0;
    notes__buf_init(&out, SIZE_MAX / 2);
    if (!known || !ptrs || !lens || !sel)
        goto done;
    if ((rc = mark_known(d, have, n, floor, known)))
        goto done;
    /* Log order is causal order, so the receiver can apply front to back. */
    for (size_t i = floor; i < d->ne; i++) {
        if (known[i - floor])
            continue;
        sel[k] = d->e[i].c;
        ptrs[k] = d->e[i].c->bytes;
        lens[k++] = d->e[i].c->nbytes;
    }
    uint8_t magic[4] = {'N', 'T', 'B', BUNDLE_PACKED};
    if ((rc = notes__buf_put(&out, magic, 4)) ||
        (rc = notes__buf_put(&out, d->id, 16)))
        goto done;
    rc = notes__pack_encode(d->id, sel, k, NOTES__PACK_EXTERNAL, &out);
    if (rc == NOTES_EINVAL) {
        /* A pack needs each author's seqs in order; equivocation evidence
         * (a second change at an old seq) breaks that: send them whole. */
        out.len = 0;
        rc = notes__buf_put(&out, bundle_magic, 4);
        if (!rc)
            rc = notes__payload_encode(&out, ptrs, lens, k);
    }
    if (rc)
        goto done;
    *bytes = out.data;
    *nbytes = out.len;
    out.data = NULL;
done:
    notes__buf_release(&out);
    notes__free(known);
    notes__free(ptrs);
    notes__free(lens);
    notes__free(sel);
    return rc;
}

/*
 * Runs of unsigned changes per author in a bundle being read. A signature
 * covers at most 1,000 edits (docs/format.md), so a longer run is refused
 * as it is read: a small compressed bundle cannot make us decode millions
 * of changes before the first verification would refuse them.
 */
#define UNSIGNED_RUN_MAX 1000

struct run_ent {
    uint8_t key[32];
    uint32_t run;
    uint8_t used;
};

struct runs {
    struct run_ent *t;
    size_t cap, n; /* cap: a power of two, or 0 */
};

static uint32_t *run_of(struct runs *r, const uint8_t key[32])
{
    if (2 * (r->n + 1) > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct run_ent *t = notes__calloc(cap, sizeof(*t));
        if (!t)
            return NULL;
        for (size_t i = 0; i < r->cap; i++) {
            if (!r->t[i].used)
                continue;
            size_t h;
            memcpy(&h, r->t[i].key, sizeof(h));
            for (h &= cap - 1; t[h].used; h = (h + 1) & (cap - 1))
                ;
            t[h] = r->t[i];
        }
        notes__free(r->t);
        r->t = t;
        r->cap = cap;
    }
    size_t h;
    memcpy(&h, key, sizeof(h)); /* keys are hashes of a sort: uniform */
    for (h &= r->cap - 1; r->t[h].used; h = (h + 1) & (r->cap - 1))
        if (memcmp(r->t[h].key, key, 32) == 0)
            return &r->t[h].run;
    r->t[h].used = 1;
    memcpy(r->t[h].key, key, 32);
    r->n++;
    return &r->t[h].run;
}

struct bundle_read {
    struct batch *b;
    struct runs runs;
};

/* Bundle reader callback: the first change that does not decode ends it. */
static int bundle_cb(void *ctx, const uint8_t *p, size_t n, const uint8_t *id)
{
    struct bundle_read *br = ctx;
    struct batch *b = br->b;
    int rc = notes__doc_batch_decode(b, p, n, id);
    if (rc && rc != NOTES_ENOMEM) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", notes_last_detail());
        notes__set_detail("change %zu of the bundle: %s", b->seen, msg);
    }
    if (rc)
        return rc;
    const struct notes__change *c = b->c[b->n - 1];
    uint32_t *run = run_of(&br->runs, c->author);
    if (!run)
        return NOTES_ENOMEM;
    *run = c->is_signed ? 0 : *run + 1;
    if (*run > UNSIGNED_RUN_MAX) {
        char fp[NOTES_FPR_STRLEN];
        notes_key_fingerprint(c->author, fp);
        notes__set_detail("change %zu of the bundle: more than %d unsigned "
                          "changes in a row by %s (a signature covers at "
                          "most %d)", b->seen, UNSIGNED_RUN_MAX, fp,
                          UNSIGNED_RUN_MAX);
        return NOTES_EUNSIGNED;
    }
    return NOTES_OK;
}

int notes_doc_merge(notes_doc *d, const uint8_t *bytes, size_t nbytes,
                    size_t *added)
{
    NOTES__DOC_FULL_RC(d);
    struct batch b = {0};
    struct bundle_read br = {&b, {NULL, 0, 0}};
    int rc;
    size_t before = 0;

    if (added)
        *added = 0;
    if (d->has_pend) {
        notes__set_detail("commit local edits before merging");
        return NOTES_EINVAL;
    }
    if (nbytes < 4 || memcmp(bytes, bundle_magic, 3) != 0) {
        notes__set_detail("not a bundle of changes");
        return NOTES_ECORRUPT;
    }
    if (bytes[3] == BUNDLE_PACKED) {
        if (nbytes < 20) {
            notes__set_detail("truncated bundle");
            return NOTES_ECORRUPT;
        }
        if (memcmp(bytes + 4, d->id, 16) != 0) {
            char want[33], got[33];
            notes__hex(want, d->id, 16);
            notes__hex(got, bytes + 4, 16);
            notes__set_detail("bundle is of note %s, not of note %s", got,
                              want);
            return NOTES_EWRONGDOC;
        }
        rc = notes__pack_decode(d->id, bytes + 20, nbytes - 20,
                                NOTES__PACK_EXTERNAL, bundle_cb, &br);
    } else if (bytes[3] == bundle_magic[3]) {
        rc = notes__payload_decode(bytes + 4, nbytes - 4, bundle_cb, &br);
    } else {
        notes__set_detail("bundle format version %u is not supported",
                          bytes[3]);
        return NOTES_EVERSION;
    }
    if (rc)
        goto free_batch;
    if ((rc = notes__doc_lock(d, 1)))
        goto free_batch;
    /* A note new to this replica (no log) is created on append. */
    rc = d->r ? notes__doc_prepare_write(d, 0) : NOTES_OK;
    if (rc)
        goto unlock;
    before = d->ne;
    rc = notes__doc_batch_ingest(d, &b, 1, NULL, NULL, NULL);
    if (rc) {
        char msg[240];
        snprintf(msg, sizeof(msg), "%s", notes_last_detail());
        int rc2 = notes__doc_truncate_entries(d, before);
        (void)rc2;
        notes__set_detail("%s (nothing from this bundle was stored)", msg);
        goto unlock;
    }
    if (d->ne > before && !d->r) {
        if (added)
            *added = d->ne - before;
    } else if (d->ne > before) {
        size_t k = d->ne - before;
        const uint8_t **ptrs = notes__malloc(k * sizeof(*ptrs));
        size_t *lens = notes__malloc(k * sizeof(*lens));
        if (!ptrs || !lens) {
            rc = NOTES_ENOMEM;
        } else {
            for (size_t j = 0; j < k; j++) {
                ptrs[j] = d->e[before + j].c->bytes;
                lens[j] = d->e[before + j].c->nbytes;
            }
            struct notes__log_mark mark;
            /* Deferred, peers' changes are written but synced later: a
             * crash of the machine loses at most what a peer still has. */
            int later = (d->defer & NOTES_DEFER_MERGE) != 0;
            rc = notes__doc_ensure_log(d, 1);
            if (rc == NOTES_OK) {
                notes__log_mark(d->log, &mark);
                rc = notes__log_write(d->log, ptrs, lens, k, 3, !later);
            }
            if (rc == NOTES_OK && later)
                d->dirty |= NOTES__DIRTY_LOG;
            else if (rc == NOTES_OK)
                d->dirty &= ~NOTES__DIRTY_LOG;
            if (rc == NOTES_OK && (d->defer & (NOTES_DEFER_STATE | NOTES_DEFER_MERGE)))
                notes__doc_written_later(d);
            else if (rc == NOTES_OK && (rc = notes__doc_save_state(d)) &&
                     notes__log_undo(d->log, &mark) != NOTES_OK)
                rc = NOTES_EIO;
        }
        notes__free(ptrs);
        notes__free(lens);
        if (rc) {
            int rc2 = notes__doc_truncate_entries(d, before);
            (void)rc2;
            notes__log_discard_if_empty(&d->log);
            goto unlock;
        }
        if (added)
            *added = k;
    } else if (d->r && d->log && d->repaired[0]) {
        /* Nothing new, but a tail was set aside: the state follows the
         * log's new end. */
        rc = notes__doc_save_state(d);
    }
    /* After a write (the fsync'd append, or a repair): a merge that
     * brought nothing writes nothing. */
    if (rc == NOTES_OK && d->r && d->log && (d->ne > before || d->repaired[0]))
        notes__doc_snap_save(d, 0);
unlock:
    notes__doc_unlock(d);
free_batch:
    notes__doc_batch_release(&b);
    notes__free(br.runs.t);
    return rc;
}
