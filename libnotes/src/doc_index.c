/*
 * doc_index.c: finding things in a doc: the change-id hash, the author
 * table with its seq slots (equivocation), each entry's oplog agent, and
 * the few accessors (signer, clock, lock) every part of the doc uses.
 */
#include <sys/time.h>

#include "doc_internal.h"

const notes_identity *notes__doc_signer(const notes_doc *d)
{
    return d->r ? d->r->id : d->mem_id;
}

const uint8_t *notes__doc_my_pk(const notes_doc *d)
{
    static const uint8_t none[32];
    if (d->r)
        return d->r->pk;
    return d->mem_id ? notes_identity_public_key(d->mem_id) : none;
}

const char *notes__doc_my_name(const notes_doc *d)
{
    if (d->r)
        return d->r->name;
    return d->mem_id ? notes_identity_name(d->mem_id) : "?";
}

/* Replica locking; a memory document has nothing to lock. */
int notes__doc_lock(notes_doc *d, int exclusive)
{
    return d->r ? notes__replica_lock(d->r, exclusive) : NOTES_OK;
}

void notes__doc_unlock(notes_doc *d)
{
    if (d->r)
        notes__replica_unlock(d->r);
}

uint64_t notes__doc_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void notes__doc_short_id(char out[17], const uint8_t *id)
{
    notes__hex(out, id, 8);
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint32_t notes__doc_hash_find(const struct notes_doc *d, const uint8_t id[32])
{
    if (!d->hashcap)
        return NONE;
    size_t mask = d->hashcap - 1, i = (size_t)load64(id) & mask;
    for (;;) {
        uint32_t v = d->hash[i];
        if (!v)
            return NONE;
        if (memcmp(d->e[v - 1].c->id, id, 32) == 0)
            return v - 1;
        i = (i + 1) & mask;
    }
}

int notes__doc_hash_insert(struct notes_doc *d, uint32_t idx)
{
    if (!d->hash || (d->ne + 1) * 2 > d->hashcap) {
        size_t ncap = 64;
        while (ncap < (d->ne + 1) * 2)
            ncap *= 2;
        uint32_t *nh = notes__calloc(ncap, sizeof(*nh));
        if (!nh)
            return NOTES_ENOMEM;
        for (size_t i = 0; d->hash && i < d->hashcap; i++) {
            if (!d->hash[i])
                continue;
            size_t j = (size_t)load64(d->e[d->hash[i] - 1].c->id) & (ncap - 1);
            while (nh[j])
                j = (j + 1) & (ncap - 1);
            nh[j] = d->hash[i];
        }
        notes__free(d->hash);
        d->hash = nh;
        d->hashcap = ncap;
    }
    size_t mask = d->hashcap - 1, i = (size_t)load64(d->e[idx].c->id) & mask;
    while (d->hash[i])
        i = (i + 1) & mask;
    d->hash[i] = idx + 1;
    return NOTES_OK;
}

int notes__doc_author_index(struct notes_doc *d, const uint8_t pk[32],
                            uint32_t *out)
{
    for (size_t i = 0; i < d->na; i++) {
        if (memcmp(d->a[i].pk, pk, 32) == 0) {
            *out = (uint32_t)i;
            return NOTES_OK;
        }
    }
    struct author *na = notes__realloc(d->a, (d->na + 1) * sizeof(*na));
    if (!na)
        return NOTES_ENOMEM;
    d->a = na;
    struct author *a = &d->a[d->na];
    memset(a, 0, sizeof(*a));
    memcpy(a->pk, pk, 32);
    a->agent = NONE;
    *out = (uint32_t)d->na++;
    return NOTES_OK;
}

int notes__doc_author_agent(struct notes_doc *d, uint32_t ai, uint32_t *agent)
{
    struct author *a = &d->a[ai];
    if (a->agent == NONE) {
        int rc = notes__oplog_agent(d->op, a->pk, &a->agent);
        if (rc)
            return rc;
    }
    *agent = a->agent;
    return NOTES_OK;
}

/* Record entry `idx` in its author's seq slot. */
int notes__doc_slot_add(struct notes_doc *d, uint32_t idx)
{
    struct entry *en = &d->e[idx];
    struct author *a = &d->a[en->author];
    uint64_t s = en->c->seq;
    if (s > a->nseq) {
        if (s > UINT32_MAX - 1)
            return NOTES_ETOOBIG;
        uint32_t ncap = (uint32_t)s + 16;
        uint32_t *f = notes__realloc(a->slot_first, ncap * sizeof(*f));
        if (!f)
            return NOTES_ENOMEM;
        a->slot_first = f;
        uint32_t *c = notes__realloc(a->slot_count, ncap * sizeof(*c));
        if (!c)
            return NOTES_ENOMEM;
        a->slot_count = c;
        for (uint32_t i = a->nseq; i < ncap; i++) {
            a->slot_first[i] = NONE;
            a->slot_count[i] = 0;
        }
        a->nseq = ncap;
    }
    if (a->slot_first[s - 1] == NONE)
        a->slot_first[s - 1] = idx;
    if (++a->slot_count[s - 1] > 1)
        a->forked = 1;
    return NOTES_OK;
}

/*
 * Whether change `c` (seq, id) claims the author's display name over the
 * current one: the highest seq wins, and between an equivocator's two
 * changes with one seq, the smaller id (log order differs by replica).
 */
int notes__doc_name_wins(const struct author *a, const struct notes__change *c)
{
    if (!a->name || c->seq > a->name_seq)
        return 1;
    return c->seq == a->name_seq && a->name_id &&
           memcmp(c->id, a->name_id, 32) <= 0;
}

uint64_t notes__doc_author_last_seq(const struct notes_doc *d,
                                    const uint8_t pk[32])
{
    for (size_t i = 0; i < d->na; i++) {
        if (memcmp(d->a[i].pk, pk, 32) != 0)
            continue;
        uint64_t last = 0;
        for (uint32_t s = 0; s < d->a[i].nseq; s++)
            if (d->a[i].slot_count[s])
                last = s + 1;
        return last;
    }
    return 0;
}

/* The winning entry at (author, seq): the smallest id among candidates. */
uint32_t notes__doc_slot_winner(const struct notes_doc *d, uint32_t ai,
                                uint64_t seq)
{
    const struct author *a = &d->a[ai];
    if (seq == 0 || seq > a->nseq || !a->slot_count[seq - 1])
        return NONE;
    uint32_t best = a->slot_first[seq - 1];
    if (a->slot_count[seq - 1] > 1) {
        for (size_t i = best + 1; i < d->ne; i++) {
            const struct entry *en = &d->e[i];
            if (en->author == ai && en->c->seq == seq &&
                memcmp(en->c->id, d->e[best].c->id, 32) < 0)
                best = (uint32_t)i;
        }
    }
    return best;
}

int notes__doc_is_equivocated(const struct notes_doc *d, uint32_t idx)
{
    const struct entry *en = &d->e[idx];
    return d->a[en->author].slot_count[en->c->seq - 1] > 1;
}

/*
 * The oplog agent of an entry's text events. Their CRDT ids are (author
 * key, seq << 32 | offset), and the merge orders concurrent inserts at one
 * place by those ids; two changes of an equivocator with one seq would tie,
 * and the text would depend on arrival order. Such changes get the
 * author's key with their own change id as tie key (text.h): ordered by
 * change id, the same everywhere. The tie key is used only between events
 * with one (key, seq), and a replica that saw one of the two before the
 * other arrived had no such pair: adding the tie key later changes no order
 * it had, so positions its user typed against still mean the same text.
 * (Ordering the branches as a whole, e.g. by a key per branch, would not
 * have that property: it would reorder them against everyone else's
 * inserts.) Blame goes by entry (first_lv): it still names the author.
 */
int notes__doc_entry_agent(struct notes_doc *d, uint32_t idx, uint32_t *agent)
{
    const struct entry *en = &d->e[idx];
    if (!en->equivocated)
        return notes__doc_author_agent(d, en->author, agent);
    return notes__oplog_agent_tie(d->op, d->a[en->author].pk, en->c->id, agent);
}
