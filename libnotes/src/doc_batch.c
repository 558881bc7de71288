/*
 * doc_batch.c: a batch of decoded changes (a log read, a bundle): the
 * signature pass over it and ingesting it in order.
 */
#include <stdio.h>
#include <stdlib.h>

#include "doc_internal.h"

void notes__doc_batch_release(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        notes__change_free(b->c[i]);
    notes__free(b->c);
    notes__free(b->sig);
    notes__free(b->at);
    memset(b, 0, sizeof(*b));
}

static int batch_push(struct batch *b, struct notes__change *c)
{
    if (b->n == b->cap) {
        /* Three parallel arrays share one capacity. */
        size_t c1 = b->cap, c2 = b->cap, c3 = b->cap;
        if (notes__grow(&b->c, &c1, b->n + 1, sizeof(struct notes__change *), 16) ||
            notes__grow(&b->sig, &c2, b->n + 1, sizeof(*b->sig), 16) ||
            notes__grow(&b->at, &c3, b->n + 1, sizeof(*b->at), 16))
            return NOTES_ENOMEM;
        b->cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    }
    b->c[b->n] = c;
    b->at[b->n] = b->seen - 1;
    b->sig[b->n++] = NOTES_EUNSIGNED;
    return NOTES_OK;
}

/* qsort has no context argument; one per thread (a daemon merges from
 * several sessions). */
static _Thread_local const struct batch *sort_batch;

static int cmp_batch_id(const void *x, const void *y)
{
    return memcmp(sort_batch->c[*(const uint32_t *)x]->id,
                  sort_batch->c[*(const uint32_t *)y]->id, 32);
}

/* The signature pass. OUT *nsig: signatures checked. */
static int batch_cover(struct batch *b, size_t *nsig)
{
    uint32_t *order = notes__malloc((b->n + 1) * sizeof(*order));
    if (!order)
        return NOTES_ENOMEM;
    for (size_t i = 0; i < b->n; i++) {
        order[i] = (uint32_t)i;
        if (b->at[i] < b->trusted) {
            b->sig[i] = NOTES_OK; /* verified before, bytes unchanged */
            continue;
        }
        if (b->c[i]->is_signed) {
            b->sig[i] = notes__change_verify_sig(b->c[i]);
            (*nsig)++;
        }
    }
    sort_batch = b;
    qsort(order, b->n, sizeof(*order), cmp_batch_id);
    /* Walk each covered change's chain backwards; later changes come
     * later in a causal batch, so one backward sweep reaches a fixpoint
     * in practice; loop until nothing changes anyway. */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t k = b->n; k-- > 0;) {
            const struct notes__change *c = b->c[k];
            if (b->sig[k] != NOTES_OK || c->seq <= 1)
                continue;
            size_t lo = 0, hi = b->n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int cmp = memcmp(b->c[order[mid]]->id, c->prev, 32);
                if (cmp == 0) {
                    lo = mid;
                    break;
                }
                if (cmp < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo >= b->n || memcmp(b->c[order[lo]]->id, c->prev, 32) != 0)
                continue;
            uint32_t j = order[lo];
            if (b->sig[j] == NOTES_EUNSIGNED &&
                memcmp(b->c[j]->author, c->author, 32) == 0) {
                b->sig[j] = NOTES_OK;
                changed = 1;
            }
        }
    }
    notes__free(order);
    return NOTES_OK;
}

/*
 * Verify and ingest a batch in order. stop: the first refusal ends it with
 * that error (a bundle is taken whole or not at all); else each refusal is
 * passed to `refuse` and the rest goes on (a log with a bad change).
 */
int notes__doc_batch_ingest(struct notes_doc *d, struct batch *b, int stop,
                            refuse_fn refuse, void *ctx, size_t *nsig)
{
    size_t dummy = 0;
    int rc = batch_cover(b, nsig ? nsig : &dummy);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n; i++) {
        int dup;
        struct notes__change *c = b->c[i];
        b->c[i] = NULL;
        rc = notes__doc_ingest(d, c, b->sig[i], &dup);
        if (rc == NOTES_ENOMEM || (rc && stop))
            return rc;
        if (rc && (rc = refuse(ctx, rc)))
            return rc;
    }
    return NOTES_OK;
}

int notes__doc_count_refusal(void *ctx, int rc)
{
    struct batch *b = ctx;
    (void)rc;
    if (!b->bad++)
        snprintf(b->first_bad, sizeof(b->first_bad), "%s",
                 notes_last_detail());
    return NOTES_OK;
}

/*
 * Decode one change into the batch. Returns NOTES_OK, NOTES_ENOMEM, or the
 * decode error (the change is then not in the batch) for the caller to
 * treat as a refusal or as the end.
 */
int notes__doc_batch_decode(struct batch *b, const uint8_t *p, size_t n,
                            const uint8_t *id)
{
    struct notes__change *c;
    b->seen++;
    int rc = notes__change_decode_id(p, n, id, &c);
    if (rc)
        return rc;
    if ((rc = batch_push(b, c)))
        notes__change_free(c);
    return rc;
}

/* Log reader callback: a change that does not decode is a refusal. */
int notes__doc_collect_cb(void *ctx, const uint8_t *p, size_t n,
                          const uint8_t *id)
{
    int rc = notes__doc_batch_decode(ctx, p, n, id);
    if (rc && rc != NOTES_ENOMEM)
        rc = notes__doc_count_refusal(ctx, rc);
    return rc;
}
