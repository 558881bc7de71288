/*
 * doc_apply.c: applying verified entries to the state: text events,
 * front-matter writes and people (links, revocations, confirmations);
 * adding an entry, rebuilding the state without a refused one, truncating.
 */
#include "doc_internal.h"

static int field_get(struct notes_doc *d, const uint8_t *key, size_t klen,
                     struct field **out)
{
    for (size_t i = 0; i < d->nf; i++) {
        if (strlen(d->f[i].key) == klen && memcmp(d->f[i].key, key, klen) == 0) {
            *out = &d->f[i];
            return NOTES_OK;
        }
    }
    struct field *nf = notes__realloc(d->f, (d->nf + 1) * sizeof(*nf));
    if (!nf)
        return NOTES_ENOMEM;
    d->f = nf;
    memset(&d->f[d->nf], 0, sizeof(d->f[d->nf]));
    d->f[d->nf].key = notes__strndup((const char *)key, klen);
    if (!d->f[d->nf].key)
        return NOTES_ENOMEM;
    *out = &d->f[d->nf++];
    return NOTES_OK;
}

int notes__doc_field_write(struct notes_doc *d, uint32_t entry, uint32_t opidx,
                           int kind, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen)
{
    struct field *f;
    int rc = field_get(d, key, klen, &f);
    if (rc)
        return rc;
    if ((rc = notes__grow(&f->w, &f->cap, f->nw + 1, sizeof(*f->w), 4)))
        return rc;
    if (++d->gen == 0)
        d->gen = 1;
    struct write *w = &f->w[f->nw];
    w->entry = entry;
    w->opidx = opidx;
    w->kind = (uint8_t)kind;
    w->value = NULL;
    if (kind != NOTES__K_UNSET) {
        w->value = notes__strndup((const char *)val, vlen);
        if (!w->value)
            return NOTES_ENOMEM;
    }
    f->nw++;
    return NOTES_OK;
}

/* Text version (as LVs) of a set of changes: the union of their versions. */
int notes__doc_version_of(struct notes_doc *d, const uint8_t (*ids)[32],
                          uint32_t n, notes_lv **out, uint32_t *nout)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = notes__doc_hash_find(d, ids[i]);
        if (e != NONE && d->e[e].applied)
            total += d->e[e].nver;
    }
    notes_lv *v = notes__malloc((total ? total : 1) * sizeof(*v));
    if (!v)
        return NOTES_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = notes__doc_hash_find(d, ids[i]);
        if (e == NONE || !d->e[e].applied)
            continue;
        for (uint32_t j = 0; j < d->e[e].nver; j++) {
            notes_lv lv = d->e[e].ver[j];
            uint32_t x;
            for (x = 0; x < k && v[x] != lv; x++)
                ;
            if (x == k)
                v[k++] = lv;
        }
    }
    *out = v;
    *nout = k;
    return NOTES_OK;
}

/* Make the version a single LV (the last event applied). */
static int set_one(notes_lv **par, uint32_t *npar, notes_lv lv)
{
    if (*npar != 1) {
        notes_lv *p = notes__realloc(*par, sizeof(*p));
        if (!p)
            return NOTES_ENOMEM;
        *par = p;
    }
    (*par)[0] = lv;
    *npar = 1;
    return NOTES_OK;
}

/*
 * Apply entry idx (verified) to the text and fields. On NOTES_EBADOP the
 * oplog may hold part of the change: the caller rebuilds the state.
 */
void notes__doc_people_clear(struct notes_doc *d)
{
    for (size_t i = 0; i < d->ndev; i++)
        notes__free(d->dev[i].name_z);
    notes__free(d->dev);
    notes__free(d->rev);
    notes__free(d->conf);
    notes__free(d->certh);
    d->dev = NULL;
    d->rev = NULL;
    d->conf = NULL;
    d->certh = NULL;
    d->ndev = d->nrev = d->nconf = d->capconf = 0;
    d->ncerth = d->capcerth = 0;
}

struct dev *notes__doc_dev_find(const struct notes_doc *d, const uint8_t pk[32])
{
    for (size_t i = 0; i < d->ndev; i++)
        if (memcmp(d->dev[i].device, pk, 32) == 0)
            return &d->dev[i];
    return NULL;
}

static int dev_get(struct notes_doc *d, const uint8_t pk[32], struct dev **out)
{
    struct dev *v = notes__doc_dev_find(d, pk);
    if (!v) {
        struct dev *nd = notes__realloc(d->dev, (d->ndev + 1) * sizeof(*nd));
        if (!nd)
            return NOTES_ENOMEM;
        d->dev = nd;
        v = &nd[d->ndev++];
        memset(v, 0, sizeof(*v));
        memcpy(v->device, pk, 32);
        v->revoke_entry = NONE;
    }
    *out = v;
    return NOTES_OK;
}

/* A link (checked when its change was taken in) names device -> person. */
static int note_link(struct notes_doc *d, const struct notes__link *l)
{
    struct dev *v;
    int rc = dev_get(d, l->device, &v);
    if (rc)
        return rc;
    if (!v->has_person) {
        memcpy(v->person, l->person, 32);
        v->has_person = 1;
        v->link = l->bytes;
        v->linklen = l->n;
        v->name = l->name;
        v->namelen = l->namelen;
        v->linked_ms = l->time_ms;
    } else if (memcmp(v->person, l->person, 32) != 0) {
        v->contested = 1;
    } else if (l->time_ms < v->linked_ms) {
        v->linked_ms = l->time_ms;
    }
    notes__free(v->name_z);
    v->name_z = NULL;
    return NOTES_OK;
}

static void cert_hash(const uint8_t *p, size_t n, uint8_t h[16])
{
    notes__hash(h, 16, p, n, NULL, 0);
}

int notes__doc_has_cert(const struct notes_doc *d, const uint8_t *p, size_t n)
{
    uint8_t h[16];
    cert_hash(p, n, h);
    for (size_t i = 0; i < d->ncerth; i++)
        if (memcmp(d->certh[i], h, 16) == 0)
            return 1;
    return 0;
}

/* Links, revocations and confirmations of an applied entry. */
int notes__doc_note_people(struct notes_doc *d, uint32_t idx)
{
    const struct notes__change *c = d->e[idx].c;
    int rc;
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct notes__op *o = &c->ops[i];
        if (o->kind == NOTES__K_LINK || o->kind == NOTES__K_REVOKE) {
            if ((rc = notes__grow(&d->certh, &d->capcerth, d->ncerth + 1,
                                  sizeof(*d->certh), 8)))
                return rc;
            cert_hash(o->text, o->textlen, d->certh[d->ncerth++]);
        }
        if (o->kind == NOTES__K_LINK) {
            struct notes__link l;
            if (notes__link_parse(o->text, o->textlen, &l) == NOTES_OK &&
                (rc = note_link(d, &l)))
                return rc;
        } else if (o->kind == NOTES__K_REVOKE) {
            struct notes__revoke rv;
            struct dev *v;
            if (notes__revoke_parse(o->text, o->textlen, &rv) != NOTES_OK)
                continue;
            if ((rc = note_link(d, &rv.link)) ||
                (rc = dev_get(d, rv.link.device, &v)))
                return rc;
            if (v->revoke_entry == NONE || rv.time_ms < v->revoked_ms) {
                if (v->revoke_entry == NONE)
                    v->revoke_entry = idx;
                v->revoked_ms = rv.time_ms;
            }
            struct rev *nr = notes__realloc(d->rev, (d->nrev + 1) * sizeof(*nr));
            if (!nr)
                return NOTES_ENOMEM;
            d->rev = nr;
            memcpy(nr[d->nrev].device, rv.link.device, 32);
            nr[d->nrev++].entry = idx;
        } else if (o->kind == NOTES__K_CONFIRM) {
            if ((rc = notes__grow(&d->conf, &d->capconf, d->nconf + 1,
                                  sizeof(*d->conf), 8)))
                return rc;
            d->conf[d->nconf].entry = idx;
            d->conf[d->nconf++].op = i;
        }
    }
    return NOTES_OK;
}

/* Count a run of `count` text events from LV `first` into the entry. */
static void entry_events(struct entry *en, notes_lv first, uint32_t count)
{
    if (!en->nev)
        en->first_lv = first;
    en->nev += count;
}

/*
 * Mark what change `c` depends on as parents. Only deps make a change a
 * parent: prev is the author's chain, and a process committing as the same
 * identity may not have seen it.
 */
void notes__doc_mark_parents(struct notes_doc *d,
                             const struct notes__change *c)
{
    for (uint32_t i = 0; i < c->ndeps; i++) {
        uint32_t p = notes__doc_hash_find(d, c->deps[i]);
        if (p != NONE)
            d->e[p].parent = 1;
    }
}

int notes__doc_apply_entry(struct notes_doc *d, uint32_t idx)
{
    struct entry *en = &d->e[idx];
    const struct notes__change *c = en->c;
    notes_lv *par = NULL, one = 0;
    uint32_t npar = 0, agent;
    uint64_t off = 0;
    int rc;

    if ((rc = notes__doc_entry_agent(d, idx, &agent)) ||
        (rc = notes__doc_version_of(d, (const uint8_t(*)[32])c->deps, c->ndeps,
                                    &par, &npar)))
        return rc;
    en->nev = 0;
    d->len_ok = 0;
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct notes__op *o = &c->ops[i];
        notes_lv first;
        uint64_t eseq = (c->seq << 32) | off;
        switch (o->kind) {
        case NOTES__K_INS:
        case NOTES__K_DEL:
            rc = notes__oplog_add(d->op, agent, eseq, par, npar,
                                  o->kind == NOTES__K_INS ? NOTES__OP_INS
                                                          : NOTES__OP_DEL,
                                  o->pos, (const char *)o->text, o->textlen,
                                  o->count, &first);
            if (rc)
                goto out;
            entry_events(en, first, o->count);
            off += o->count;
            one = first + o->count - 1;
            break;
        case NOTES__K_DELBACK:
            /*
             * Backspaces at pos, pos-1, ... delete exactly the characters
             * [pos-count+1, pos] of the text before the run: one forward
             * run of deletes removes the same ones. (The author's own
             * replica added them one by one while typing; deletes take
             * no part in ordering, and versions only ever name whole
             * changes, so both lead to the same state.)
             */
            rc = notes__oplog_add(d->op, agent, eseq, par, npar, NOTES__OP_DEL,
                                  o->pos - o->count + 1, NULL, 0, o->count,
                                  &first);
            if (rc)
                goto out;
            entry_events(en, first, o->count);
            off += o->count;
            if ((rc = set_one(&par, &npar, first + o->count - 1)))
                goto out;
            continue;
        case NOTES__K_NAME:
            if (notes__doc_name_wins(&d->a[en->author], c)) {
                char *nm = notes__strndup((const char *)o->text, o->textlen);
                if (!nm) {
                    rc = NOTES_ENOMEM;
                    goto out;
                }
                notes__free(d->a[en->author].name);
                d->a[en->author].name = nm;
                d->a[en->author].name_seq = c->seq;
                d->a[en->author].name_id = c->id;
            }
            continue;
        case NOTES__K_LINK:
        case NOTES__K_REVOKE:
        case NOTES__K_CONFIRM:
            continue; /* note_people, once the change is applied */
        default:
            rc = notes__doc_field_write(d, idx, i, o->kind, o->key, o->keylen,
                                        o->text, o->textlen);
            if (rc)
                goto out;
            continue;
        }
        if ((rc = set_one(&par, &npar, one)))
            goto out;
    }
    notes__free(en->ver);
    en->ver = par;
    en->nver = npar;
    par = NULL;
    if ((rc = notes__doc_note_people(d, idx)))
        goto out;
    en->applied = 1;
    notes__doc_mark_parents(d, c);
out:
    notes__free(par);
    return rc;
}

/* 1 + the highest lamport among the parents (prev and deps). */
static uint32_t lamport_of(struct notes_doc *d, const struct notes__change *c)
{
    uint32_t l = 0;
    for (uint32_t i = 0; i <= c->ndeps; i++) {
        uint32_t p = notes__doc_parent(d, c, i);
        if (p != NONE && d->e[p].lamport > l)
            l = d->e[p].lamport;
    }
    return l + 1;
}

/* Add a verified change as a new entry (not yet applied). */
int notes__doc_add_entry(struct notes_doc *d, struct notes__change *c,
                         uint32_t *idx)
{
    int rc = notes__grow(&d->e, &d->cape, d->ne + 1, sizeof(*d->e), 64);
    if (rc)
        return rc;
    struct entry *en = &d->e[d->ne];
    memset(en, 0, sizeof(*en));
    en->c = c;
    if ((rc = notes__doc_author_index(d, c->author, &en->author)))
        return rc;
    en->lamport = lamport_of(d, c);
    if (d->prefix_from > d->ne)
        d->prefix_from = (uint32_t)d->ne; /* after a truncation */
    if ((rc = notes__doc_hash_insert(d, (uint32_t)d->ne)))
        return rc;
    d->ne++;
    if ((rc = notes__doc_slot_add(d, (uint32_t)(d->ne - 1)))) {
        d->ne--;
        return rc;
    }
    *idx = (uint32_t)(d->ne - 1);
    en->equivocated = (uint8_t)notes__doc_is_equivocated(d, *idx);
    return NOTES_OK;
}

void notes__doc_fields_clear(struct notes_doc *d)
{
    for (size_t i = 0; i < d->nf; i++) {
        for (size_t j = 0; j < d->f[i].nw; j++)
            notes__free(d->f[i].w[j].value);
        notes__free(d->f[i].w);
        notes__free(d->f[i].key);
        notes__free(d->f[i].list);
        notes__free(d->f[i].conflicts);
    }
    notes__free(d->f);
    d->f = NULL;
    d->nf = 0;
    notes__free(d->fieldnames);
    d->fieldnames = NULL;
}

/*
 * Rebuild the whole state from the entries, in log order. Equivocation
 * marks are recomputed first: a new change in a seq slot marks the one
 * that was there, whose events then need their tie key (entry_agent).
 */
int notes__doc_rebuild(struct notes_doc *d)
{
    int rc;
    d->rebuilds++;
    d->len_ok = 0;
    notes__oplog_free(d->op);
    d->op = NULL;
    notes__doc_fields_clear(d);
    notes__doc_people_clear(d);
    for (size_t i = 0; i < d->na; i++) {
        d->a[i].agent = NONE;
        notes__free(d->a[i].name);
        d->a[i].name = NULL;
        d->a[i].name_seq = 0;
        d->a[i].name_id = NULL;
    }
    if ((rc = notes__oplog_new(&d->op)))
        return rc;
    for (size_t i = 0; i < d->ne; i++) {
        d->e[i].applied = 0;
        d->e[i].parent = 0;
    }
    for (size_t i = 0; i < d->ne; i++)
        d->e[i].equivocated =
            (uint8_t)notes__doc_is_equivocated(d, (uint32_t)i);
    for (size_t i = 0; i < d->ne; i++)
        if ((rc = notes__doc_apply_entry(d, (uint32_t)i)))
            return rc;
    /* The observer sees the rebuilt text as one reset, not its replay. */
    if (d->obs) {
        notes__oplog_observe(d->op, d->obs, d->obs_ud);
        d->obs(d->obs_ud, SIZE_MAX, 0, NULL, 0);
    }
    return NOTES_OK;
}

void notes_doc_observe(notes_doc *d, notes_text_fn fn, void *ud)
{
    NOTES__DOC_FULL(d, );
    d->obs = fn;
    d->obs_ud = ud;
    if (d->op)
        notes__oplog_observe(d->op, fn, ud);
}

/* Drop entries from index `from` on (not stored), then rebuild. */
int notes__doc_truncate_entries(struct notes_doc *d, size_t from)
{
    while (d->ne > from) {
        struct entry *en = &d->e[d->ne - 1];
        struct author *a = &d->a[en->author];
        uint64_t s = en->c->seq;
        a->slot_count[s - 1]--;
        if (a->slot_first[s - 1] == d->ne - 1)
            a->slot_first[s - 1] = NONE;
        if (a->slot_count[s - 1] && a->slot_first[s - 1] == NONE) {
            for (size_t i = 0; i < d->ne - 1; i++)
                if (d->e[i].author == en->author && d->e[i].c->seq == s) {
                    a->slot_first[s - 1] = (uint32_t)i;
                    break;
                }
        }
        notes__change_free(en->c);
        notes__free(en->ver);
        d->ne--;
        a->forked = 0;
        for (uint32_t k = 0; k < a->nseq && !a->forked; k++)
            a->forked = a->slot_count[k] > 1;
    }
    /* Rebuild the hash from scratch: removals from open addressing. */
    if (d->hash)
        memset(d->hash, 0, d->hashcap * sizeof(*d->hash));
    size_t keep = d->ne;
    d->ne = 0;
    for (size_t i = 0; i < keep; i++) {
        d->ne = i;
        if (notes__doc_hash_insert(d, (uint32_t)i))
            return NOTES_ENOMEM;
    }
    d->ne = keep;
    return notes__doc_rebuild(d);
}

/*
 * Take in a decoded change: verify it, add it, apply it. Duplicates are
 * freed and reported with *dup. On error the change is freed and the state
 * is as before.
 */
int notes__doc_ingest(struct notes_doc *d, struct notes__change *c, int sigrc,
                      int *dup)
{
    uint32_t idx;
    int rc;
    *dup = 0;
    if (notes__doc_hash_find(d, c->id) != NONE) {
        *dup = 1;
        notes__change_free(c);
        return NOTES_OK;
    }
    if ((rc = notes__doc_check_change(d, c, sigrc))) {
        notes__change_free(c);
        return rc;
    }
    size_t before = d->ne;
    if ((rc = notes__doc_add_entry(d, c, &idx))) {
        notes__change_free(c);
        return rc;
    }
    if (notes__doc_is_equivocated(d, idx)) {
        /* A fork: the change already in the slot gets a tie key. */
        rc = notes__doc_rebuild(d);
    } else {
        rc = notes__doc_apply_entry(d, idx);
    }
    if (rc) {
        char sid[17];
        notes__doc_short_id(sid, c->id);
        int rc2 = notes__doc_truncate_entries(d, before);
        if (rc == NOTES_EBADOP)
            notes__set_detail("change %s: an operation lies outside the text "
                              "it refers to", sid);
        return rc2 ? rc2 : rc;
    }
    return NOTES_OK;
}
