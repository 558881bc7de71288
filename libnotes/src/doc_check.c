/*
 * doc_check.c: verifying one change against what the doc already holds:
 * sequence, chain, dependencies, revocations and the certificates it carries,
 * before it may touch the state.
 */
#include <stdio.h>

#include "doc_internal.h"

static const struct dev *dev_find_c(const struct notes_doc *d,
                                    const uint8_t pk[32])
{
    for (size_t i = 0; i < d->ndev; i++)
        if (memcmp(d->dev[i].device, pk, 32) == 0)
            return &d->dev[i];
    return NULL;
}

/*
 * Whether a revocation of `author` is in the causal past of a change with
 * these deps and prev (the change itself not yet an entry): *which gets the
 * entry carrying it. Lamport numbers prune the walk: an entry with a
 * smaller number than the revocation's cannot have it in its past.
 */
int notes__doc_revoked_before(const struct notes_doc *d,
                              const uint8_t author[32],
                              const uint8_t (*deps)[32], uint32_t ndeps,
                              const uint8_t *prev, uint32_t *which)
{
    uint32_t minl = UINT32_MAX;
    int any = 0;
    *which = NONE;
    for (size_t i = 0; i < d->nrev; i++)
        if (memcmp(d->rev[i].device, author, 32) == 0) {
            any = 1;
            if (d->e[d->rev[i].entry].lamport < minl)
                minl = d->e[d->rev[i].entry].lamport;
        }
    if (!any)
        return NOTES_OK;
    uint8_t *seen = notes__calloc(d->ne ? d->ne : 1, 1);
    uint32_t *stack = notes__malloc((d->ne + ndeps + 2) * sizeof(*stack));
    size_t sp = 0;
    int rc = NOTES_OK;
    if (!seen || !stack) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i <= ndeps; i++) {
        uint32_t p = i < ndeps ? notes__doc_hash_find(d, deps[i])
                               : (prev ? notes__doc_hash_find(d, prev) : NONE);
        if (p != NONE && !seen[p]) {
            seen[p] = 1;
            stack[sp++] = p;
        }
    }
    while (sp) {
        uint32_t x = stack[--sp];
        const struct entry *en = &d->e[x];
        if (en->lamport < minl)
            continue;
        for (size_t i = 0; i < d->nrev; i++)
            if (d->rev[i].entry == x &&
                memcmp(d->rev[i].device, author, 32) == 0) {
                *which = x;
                goto out;
            }
        const struct notes__change *c = en->c;
        for (uint32_t i = 0; i <= c->ndeps; i++) {
            uint32_t p = notes__doc_parent(d, c, i);
            if (p != NONE && !seen[p]) {
                seen[p] = 1;
                stack[sp++] = p;
            }
        }
    }
out:
    notes__free(seen);
    notes__free(stack);
    return rc;
}

/* Check the certificates a change carries (links, revocations). */
static int check_certs(const struct notes__change *c)
{
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct notes__op *o = &c->ops[i];
        int rc = NOTES_OK;
        if (o->kind == NOTES__K_LINK) {
            struct notes__link l;
            rc = notes__link_parse(o->text, o->textlen, &l);
            if (rc == NOTES_OK)
                rc = notes__link_check(&l);
        } else if (o->kind == NOTES__K_REVOKE) {
            struct notes__revoke rv;
            rc = notes__revoke_parse(o->text, o->textlen, &rv);
            if (rc == NOTES_OK)
                rc = notes__revoke_check(&rv);
        }
        if (rc) {
            char sid[17], detail[400];
            snprintf(detail, sizeof(detail), "%s", notes_last_detail());
            notes__doc_short_id(sid, c->id);
            notes__set_detail("change %s carries an invalid certificate: %s",
                              sid, detail);
            return NOTES_EBADLINK;
        }
    }
    return NOTES_OK;
}

/*
 * Check `c` structurally against the doc: document, chain, dependencies.
 * Signature checked here too. Returns a code and sets the detail.
 */
int notes__doc_check_change(struct notes_doc *d, const struct notes__change *c,
                            int sigrc)
{
    /* Names for messages, computed only when something is wrong. */
    char sid[17], aid[NOTES_FPR_STRLEN];
#define NAMES()                                                                \
    (notes__doc_short_id(sid, c->id), notes_key_fingerprint(c->author, aid))
    if (memcmp(c->doc, d->id, 16) != 0) {
        NAMES();
        notes__set_detail("change %s by %s belongs to another note", sid, aid);
        return NOTES_EWRONGDOC;
    }
    if (sigrc == NOTES_EUNSIGNED) {
        NAMES();
        notes__set_detail("change %s by %s carries no signature and no later "
                          "change of its author covers it", sid, aid);
        return NOTES_EUNSIGNED;
    }
    if (sigrc != NOTES_OK) {
        NAMES();
        notes__set_detail("change %s claims author %s but its signature "
                          "does not verify", sid, aid);
        return NOTES_EBADSIG;
    }
    if (c->seq > 1) {
        uint32_t p = notes__doc_hash_find(d, c->prev);
        if (p == NONE) {
            char pid[17];
            notes__doc_short_id(pid, c->prev);
            NAMES();
        notes__set_detail("change %s (seq %llu by %s): previous change %s "
                              "is missing", sid, (unsigned long long)c->seq,
                              aid, pid);
            return NOTES_EMISSINGDEP;
        }
        const struct entry *pe = &d->e[p];
        if (memcmp(d->a[pe->author].pk, c->author, 32) != 0 ||
            pe->c->seq + 1 != c->seq) {
            NAMES();
        notes__set_detail("change %s (seq %llu by %s): prev hash names "
                              "change seq %llu of another chain", sid,
                              (unsigned long long)c->seq, aid,
                              (unsigned long long)pe->c->seq);
            return pe->c->seq + 1 != c->seq &&
                           memcmp(d->a[pe->author].pk, c->author, 32) == 0
                       ? NOTES_EBADSEQ
                       : NOTES_EBADCHAIN;
        }
    }
    for (uint32_t i = 0; i < c->ndeps; i++) {
        if (notes__doc_hash_find(d, c->deps[i]) == NONE) {
            char did[17];
            notes__doc_short_id(did, c->deps[i]);
            NAMES();
        notes__set_detail("change %s by %s depends on %s, which is "
                              "missing", sid, aid, did);
            return NOTES_EMISSINGDEP;
        }
    }
    int rc = check_certs(c);
    uint32_t rev;
    if (rc == NOTES_OK)
        rc = notes__doc_revoked_before(d, c->author,
                                       (const uint8_t(*)[32])c->deps, c->ndeps,
                                       c->seq > 1 ? c->prev : NULL, &rev);
    if (rc == NOTES_OK && rev != NONE) {
        char rid[17];
        const struct dev *v = dev_find_c(d, c->author);
        notes__doc_short_id(rid, d->e[rev].c->id);
        NAMES();
        notes__set_detail("change %s by device %s was signed after the device "
                          "was revoked (by %.*s, in change %s)", sid, aid,
                          v ? (int)v->namelen : 7, v ? v->name : "its owner",
                          rid);
        return NOTES_EREVOKED;
    }
    return rc;
#undef NAMES
}
