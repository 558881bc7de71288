/*
 * doc.c: a note's state built from its verified signed changes.
 *
 * Entries mirror the log: every change read or received, in log order
 * (which is causal: a change is stored only after its dependencies). The
 * text lives in the Eg-walker oplog (text.h); front-matter writes are kept
 * per field and resolved on read. Equivocation (two changes by one author
 * with one sequence number) keeps both as evidence and applies both, as
 * concurrent branches: dropping one would also drop the honest changes
 * other people built on it. Their text events, which share CRDT ids
 * (author, seq), are told apart by the change ids (entry_agent), so every
 * replica holding the same changes has the same text.
 *
 * Failure discipline: a change is verified (signature, chain, sequence,
 * dependencies) before it touches the state; if applying it still fails
 * (a position out of range), the state is rebuilt without it. Nothing is
 * written to the log before it has been applied successfully.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sodium.h>
#include <sys/time.h>
#include <unistd.h>

#include "change.h"
#include "pack.h"
#include "people.h"
#include "replica.h"
#include "store.h"
#include "text.h"

#define NONE UINT32_MAX
#define NOTES__AUTO_COMPACT 256 /* records before a commit compacts the log */

struct entry {
    struct notes__change *c;
    uint32_t author;      /* index into doc->authors */
    uint32_t lamport;     /* 1 + max over prev and deps */
    uint32_t nver;        /* text version after this change, as LVs */
    notes_lv *ver;
    notes_lv first_lv;    /* first text event (if nev) */
    uint32_t nev;
    uint8_t equivocated;  /* shares its seq with another of its author's */
    uint8_t applied;      /* part of the current state */
    uint8_t parent;       /* referenced by another applied change */
};

struct author {
    uint8_t pk[32];
    uint32_t agent;       /* oplog agent index */
    uint32_t nseq;        /* seq slots: slot[s-1] lists entries with seq s */
    uint32_t *slot_first; /* first entry with that seq */
    uint32_t *slot_count; /* how many entries share it (>1: equivocation) */
    uint8_t forked;       /* some slot_count > 1: an equivocating key */
    char *name;           /* claimed display name (latest applied), or NULL */
    uint64_t name_seq;
    const uint8_t *name_id; /* id of the change it came from (ties) */
};

/* Who a device speaks for, from the links and revocations in the note. */
struct dev {
    uint8_t device[32];
    uint8_t person[32];
    const uint8_t *link;  /* a link naming the device (bytes in an entry) */
    size_t linklen;
    const char *name;     /* the person's claimed name, not NUL-ended */
    size_t namelen;
    char *name_z;         /* NUL-ended copy, made when asked for */
    uint64_t linked_ms;
    int has_person;
    int contested;        /* valid links to different persons */
    uint32_t revoke_entry; /* first entry carrying a revocation, or NONE */
    uint64_t revoked_ms;
};

/* A revocation: changes of `device` with `entry` in their past are refused. */
struct rev {
    uint8_t device[32];
    uint32_t entry;
};

struct conf {
    uint32_t entry, op;
};

struct write {
    uint32_t entry;       /* NONE: uncommitted local write */
    uint32_t opidx;
    uint8_t kind;
    char *value;          /* owned; NULL for UNSET */
};

struct field {
    char *key;
    struct write *w;
    size_t nw, cap;
    /* Results of the last resolve, borrowed by callers until the next
     * write to any field (gen tells when they are stale). */
    const char **list;
    const char **conflicts;
    const char *value;
    unsigned gen_reg, gen_list; /* doc->gen they were computed at, 0: never */
};

struct notes_doc {
    notes_replica *r;       /* NULL for a document kept only in memory */
    const notes_identity *mem_id; /* the signer of a memory document */
    uint8_t id[16];
    struct notes__log *log; /* NULL until the first commit of a new note */
    struct notes__state st; /* the replica's state of the log, as last read
                             * or written under the lock (state.c) */
    char damage[600];       /* notes_doc_damage: what assess() found */
    int problem;            /* notes_doc_intact */
    char repaired[600];     /* notes_doc_repaired */
    size_t nbad;            /* changes of the log refused when read */
    char first_bad[240];

    struct entry *e;
    size_t ne, cape;
    uint32_t *hash;       /* open addressing: id -> entry index + 1 */
    size_t hashcap;
    struct author *a;
    size_t na;

    struct notes__oplog *op;
    notes_text_fn obs;       /* notes_doc_observe */
    void *obs_ud;
    struct field *f;
    size_t nf;
    const char **fieldnames;
    unsigned gen;            /* bumped by every field write */
    unsigned gen_names;

    /* Uncommitted local edits. */
    struct notes__change_builder pend;
    uint64_t pend_seq;       /* the seq they will be committed with */
    uint8_t (*pend_deps)[32];
    uint32_t npend_deps;
    int has_pend;
    int pend_kind;           /* last op, for coalescing */
    uint32_t pend_pos, pend_count;
    struct notes_buf pend_text;
    notes_lv pend_first, pend_last; /* LVs of the first and last pending event */
    unsigned rebuilds;       /* counts rebuild() calls */
    struct dev *dev;         /* people: rebuilt with the state */
    size_t ndev;
    struct rev *rev;
    size_t nrev;
    struct conf *conf;
    size_t nconf, capconf;
    uint8_t (*certh)[16];    /* hashes of the certificates applied */
    size_t ncerth, capcerth;
    int tainted;             /* the log held refused changes: never vouch
                              * for it with the local MAC */
    size_t len;              /* text length in code points, if len_ok */
    int len_ok;              /* asking the text buffer closes its gap */
};

/* ---- small helpers ---- */

static const notes_identity *signer(const notes_doc *d)
{
    return d->r ? d->r->id : d->mem_id;
}

static const uint8_t *my_pk(const notes_doc *d)
{
    static const uint8_t none[32];
    if (d->r)
        return d->r->pk;
    return d->mem_id ? notes_identity_public_key(d->mem_id) : none;
}

static const char *my_name(const notes_doc *d)
{
    if (d->r)
        return d->r->name;
    return d->mem_id ? notes_identity_name(d->mem_id) : "?";
}

/* Replica locking; a memory document has nothing to lock. */
static int doc_lock(notes_doc *d, int exclusive)
{
    return d->r ? notes__replica_lock(d->r, exclusive) : NOTES_OK;
}

static void doc_unlock(notes_doc *d)
{
    if (d->r)
        notes__replica_unlock(d->r);
}

static uint64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void short_id(char out[17], const uint8_t *id)
{
    notes__hex(out, id, 8);
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t hash_find(const struct notes_doc *d, const uint8_t id[32])
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

static int hash_insert(struct notes_doc *d, uint32_t idx)
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

static int author_index(struct notes_doc *d, const uint8_t pk[32], uint32_t *out)
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

static int author_agent(struct notes_doc *d, uint32_t ai, uint32_t *agent)
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
static int slot_add(struct notes_doc *d, uint32_t idx)
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
static int name_wins(const struct author *a, const struct notes__change *c)
{
    if (!a->name || c->seq > a->name_seq)
        return 1;
    return c->seq == a->name_seq && a->name_id &&
           memcmp(c->id, a->name_id, 32) <= 0;
}

static uint64_t author_last_seq(const struct notes_doc *d, const uint8_t pk[32])
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
static uint32_t slot_winner(const struct notes_doc *d, uint32_t ai, uint64_t seq)
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

static int is_equivocated(const struct notes_doc *d, uint32_t idx)
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
static int entry_agent(struct notes_doc *d, uint32_t idx, uint32_t *agent)
{
    const struct entry *en = &d->e[idx];
    if (!en->equivocated)
        return author_agent(d, en->author, agent);
    return notes__oplog_agent_tie(d->op, d->a[en->author].pk, en->c->id, agent);
}

/* ---- verification of one change against what the doc holds ---- */

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
static int revoked_before(const struct notes_doc *d, const uint8_t author[32],
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
        uint32_t p = i < ndeps ? hash_find(d, deps[i])
                               : (prev ? hash_find(d, prev) : NONE);
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
            uint32_t p = i < c->ndeps ? hash_find(d, c->deps[i])
                                      : (c->seq > 1 ? hash_find(d, c->prev)
                                                    : NONE);
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
            short_id(sid, c->id);
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
static int check_change(struct notes_doc *d, const struct notes__change *c,
                        int sigrc)
{
    /* Names for messages, computed only when something is wrong. */
    char sid[17], aid[NOTES_FPR_STRLEN];
#define NAMES() (short_id(sid, c->id), notes_key_fingerprint(c->author, aid))
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
        uint32_t p = hash_find(d, c->prev);
        if (p == NONE) {
            char pid[17];
            short_id(pid, c->prev);
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
        if (hash_find(d, c->deps[i]) == NONE) {
            char did[17];
            short_id(did, c->deps[i]);
            NAMES();
        notes__set_detail("change %s by %s depends on %s, which is "
                              "missing", sid, aid, did);
            return NOTES_EMISSINGDEP;
        }
    }
    int rc = check_certs(c);
    uint32_t rev;
    if (rc == NOTES_OK)
        rc = revoked_before(d, c->author, (const uint8_t(*)[32])c->deps,
                            c->ndeps, c->seq > 1 ? c->prev : NULL, &rev);
    if (rc == NOTES_OK && rev != NONE) {
        char rid[17];
        const struct dev *v = dev_find_c(d, c->author);
        short_id(rid, d->e[rev].c->id);
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

/* ---- applying entries to the state ---- */

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

static int field_write(struct notes_doc *d, uint32_t entry, uint32_t opidx,
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
static int version_of(struct notes_doc *d, const uint8_t (*ids)[32], uint32_t n,
                      notes_lv **out, uint32_t *nout)
{
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = hash_find(d, ids[i]);
        if (e != NONE && d->e[e].applied)
            total += d->e[e].nver;
    }
    notes_lv *v = notes__malloc((total ? total : 1) * sizeof(*v));
    if (!v)
        return NOTES_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = hash_find(d, ids[i]);
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
static void people_clear(struct notes_doc *d)
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

static struct dev *dev_find(const struct notes_doc *d, const uint8_t pk[32])
{
    for (size_t i = 0; i < d->ndev; i++)
        if (memcmp(d->dev[i].device, pk, 32) == 0)
            return &d->dev[i];
    return NULL;
}

static int dev_get(struct notes_doc *d, const uint8_t pk[32], struct dev **out)
{
    struct dev *v = dev_find(d, pk);
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
    crypto_generichash(h, 16, p, n, NULL, 0);
}

static int has_cert(const struct notes_doc *d, const uint8_t *p, size_t n)
{
    uint8_t h[16];
    cert_hash(p, n, h);
    for (size_t i = 0; i < d->ncerth; i++)
        if (memcmp(d->certh[i], h, 16) == 0)
            return 1;
    return 0;
}

/* Links, revocations and confirmations of an applied entry. */
static int note_people(struct notes_doc *d, uint32_t idx)
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

static int apply_entry(struct notes_doc *d, uint32_t idx)
{
    struct entry *en = &d->e[idx];
    const struct notes__change *c = en->c;
    notes_lv *par = NULL, one = 0;
    uint32_t npar = 0, agent;
    uint64_t off = 0;
    int rc;

    if ((rc = entry_agent(d, idx, &agent)) ||
        (rc = version_of(d, (const uint8_t(*)[32])c->deps, c->ndeps, &par,
                         &npar)))
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
            if (!en->nev)
                en->first_lv = first;
            en->nev += o->count;
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
            if (!en->nev)
                en->first_lv = first;
            en->nev += o->count;
            off += o->count;
            if ((rc = set_one(&par, &npar, first + o->count - 1)))
                goto out;
            continue;
        case NOTES__K_NAME:
            if (name_wins(&d->a[en->author], c)) {
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
            rc = field_write(d, idx, i, o->kind, o->key, o->keylen, o->text,
                             o->textlen);
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
    if ((rc = note_people(d, idx)))
        goto out;
    en->applied = 1;
    /* Only deps make a change a parent: prev is the author's chain, and a
     * process committing as the same identity may not have seen it. */
    for (uint32_t i = 0; i < c->ndeps; i++) {
        uint32_t p = hash_find(d, c->deps[i]);
        if (p != NONE)
            d->e[p].parent = 1;
    }
out:
    notes__free(par);
    return rc;
}

static uint32_t lamport_of(struct notes_doc *d, const struct notes__change *c)
{
    uint32_t l = 0;
    if (c->seq > 1) {
        uint32_t p = hash_find(d, c->prev);
        if (p != NONE && d->e[p].lamport > l)
            l = d->e[p].lamport;
    }
    for (uint32_t i = 0; i < c->ndeps; i++) {
        uint32_t p = hash_find(d, c->deps[i]);
        if (p != NONE && d->e[p].lamport > l)
            l = d->e[p].lamport;
    }
    return l + 1;
}

/* Add a verified change as a new entry (not yet applied). */
static int add_entry(struct notes_doc *d, struct notes__change *c, uint32_t *idx)
{
    int rc = notes__grow(&d->e, &d->cape, d->ne + 1, sizeof(*d->e), 64);
    if (rc)
        return rc;
    struct entry *en = &d->e[d->ne];
    memset(en, 0, sizeof(*en));
    en->c = c;
    if ((rc = author_index(d, c->author, &en->author)))
        return rc;
    en->lamport = lamport_of(d, c);
    if ((rc = hash_insert(d, (uint32_t)d->ne)))
        return rc;
    d->ne++;
    if ((rc = slot_add(d, (uint32_t)(d->ne - 1)))) {
        d->ne--;
        return rc;
    }
    *idx = (uint32_t)(d->ne - 1);
    en->equivocated = (uint8_t)is_equivocated(d, *idx);
    return NOTES_OK;
}

static void fields_clear(struct notes_doc *d)
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
static int rebuild(struct notes_doc *d)
{
    int rc;
    d->rebuilds++;
    d->len_ok = 0;
    notes__oplog_free(d->op);
    d->op = NULL;
    fields_clear(d);
    people_clear(d);
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
        d->e[i].equivocated = (uint8_t)is_equivocated(d, (uint32_t)i);
    for (size_t i = 0; i < d->ne; i++)
        if ((rc = apply_entry(d, (uint32_t)i)))
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
    d->obs = fn;
    d->obs_ud = ud;
    if (d->op)
        notes__oplog_observe(d->op, fn, ud);
}

/* Drop entries from index `from` on (not stored), then rebuild. */
static int truncate_entries(struct notes_doc *d, size_t from)
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
        if (hash_insert(d, (uint32_t)i))
            return NOTES_ENOMEM;
    }
    d->ne = keep;
    return rebuild(d);
}

/*
 * Take in a decoded change: verify it, add it, apply it. Duplicates are
 * freed and reported with *dup. On error the change is freed and the state
 * is as before.
 */
static int ingest(struct notes_doc *d, struct notes__change *c, int sigrc,
                  int *dup)
{
    uint32_t idx;
    int rc;
    *dup = 0;
    if (hash_find(d, c->id) != NONE) {
        *dup = 1;
        notes__change_free(c);
        return NOTES_OK;
    }
    if ((rc = check_change(d, c, sigrc))) {
        notes__change_free(c);
        return rc;
    }
    size_t before = d->ne;
    if ((rc = add_entry(d, c, &idx))) {
        notes__change_free(c);
        return rc;
    }
    if (is_equivocated(d, idx)) {
        /* A fork: the change already in the slot gets a tie key. */
        rc = rebuild(d);
    } else {
        rc = apply_entry(d, idx);
    }
    if (rc) {
        char sid[17];
        short_id(sid, c->id);
        int rc2 = truncate_entries(d, before);
        if (rc == NOTES_EBADOP)
            notes__set_detail("change %s: an operation lies outside the text "
                              "it refers to", sid);
        return rc2 ? rc2 : rc;
    }
    return NOTES_OK;
}

/* ---- opening ---- */

/*
 * A batch of decoded changes (a log read, a bundle) and, per change, the
 * verdict of the signature pass: NOTES_OK when covered by a valid
 * signature, its own or that of a later change of the same author in the
 * batch whose hash chain (prev) leads back to it.
 */
struct batch {
    struct notes__change **c;
    int *sig;
    size_t *at;            /* index of each change among all read */
    size_t n, cap;
    size_t seen;           /* changes read, refused ones included */
    size_t trusted;        /* changes at < trusted come from a prefix this
                            * device verified (local MAC): no signature
                            * check needed */
    size_t bad;            /* changes refused (decode errors included) */
    char first_bad[240];
};

static void batch_release(struct batch *b)
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

typedef int (*refuse_fn)(void *ctx, int rc);

/*
 * Verify and ingest a batch in order. stop: the first refusal ends it with
 * that error (a bundle is taken whole or not at all); else each refusal is
 * passed to `refuse` and the rest goes on (a log with a bad change).
 */
static int batch_ingest(struct notes_doc *d, struct batch *b, int stop,
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
        rc = ingest(d, c, b->sig[i], &dup);
        if (rc == NOTES_ENOMEM || (rc && stop))
            return rc;
        if (rc && (rc = refuse(ctx, rc)))
            return rc;
    }
    return NOTES_OK;
}

static int count_refusal(void *ctx, int rc)
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
static int batch_decode(struct batch *b, const uint8_t *p, size_t n)
{
    struct notes__change *c;
    b->seen++;
    int rc = notes__change_decode(p, n, &c);
    if (rc)
        return rc;
    if ((rc = batch_push(b, c)))
        notes__change_free(c);
    return rc;
}

/* Log reader callback: a change that does not decode is a refusal. */
static int collect_cb(void *ctx, const uint8_t *p, size_t n)
{
    int rc = batch_decode(ctx, p, n);
    if (rc && rc != NOTES_ENOMEM)
        rc = count_refusal(ctx, rc);
    return rc;
}

static int doc_alloc(notes_replica *r, const uint8_t id[16], notes_doc **out)
{
    notes_doc *d = notes__calloc(1, sizeof(*d));
    *out = NULL;
    if (!d)
        return NOTES_ENOMEM;
    d->r = r;
    memcpy(d->id, id, 16);
    notes__builder_init(&d->pend);
    notes__buf_init(&d->pend_text, NOTES__CHANGE_MAX);
    int rc = notes__oplog_new(&d->op);
    if (rc) {
        notes_doc_free(d);
        return rc;
    }
    *out = d;
    return NOTES_OK;
}

int notes_doc_create(notes_replica *r, notes_doc **out)
{
    uint8_t id[16];
    randombytes_buf(id, sizeof(id));
    return doc_alloc(r, id, out);
}

const char *notes_doc_author_name(const notes_doc *d, const uint8_t pk[32])
{
    for (size_t i = 0; i < d->na; i++)
        if (memcmp(d->a[i].pk, pk, 32) == 0)
            return d->a[i].name;
    return NULL;
}

int notes_doc_create_id(notes_replica *r, const uint8_t id[16], notes_doc **out)
{
    return doc_alloc(r, id, out);
}

int notes_doc_memory(const notes_identity *signer_id, const uint8_t id[16],
                     notes_doc **out)
{
    uint8_t fresh[16];
    if (!id) {
        randombytes_buf(fresh, sizeof(fresh));
        id = fresh;
    }
    int rc = doc_alloc(NULL, id, out);
    if (rc == NOTES_OK)
        (*out)->mem_id = signer_id;
    return rc;
}

void notes_doc_free(notes_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ne; i++) {
        notes__change_free(d->e[i].c);
        notes__free(d->e[i].ver);
    }
    notes__free(d->e);
    notes__free(d->hash);
    for (size_t i = 0; i < d->na; i++) {
        notes__free(d->a[i].slot_first);
        notes__free(d->a[i].slot_count);
        notes__free(d->a[i].name);
    }
    notes__free(d->a);
    fields_clear(d);
    people_clear(d);
    notes__oplog_free(d->op);
    notes__log_close(d->log);
    notes__builder_release(&d->pend);
    notes__buf_release(&d->pend_text);
    notes__free(d->pend_deps);
    notes__free(d);
}

static int ensure_log(notes_doc *d, int create);

/* ---- the log, its state, damage and repair ---- */

static int heads_raw(const notes_doc *d, uint8_t (**out)[32], uint32_t *n);

static int load_state(notes_doc *d)
{
    char *path = notes__replica_state_path(d->r, d->id);
    if (!path)
        return NOTES_ENOMEM;
    int rc = notes__state_load(path, d->id, &d->st);
    notes__free(path);
    return rc;
}

/* The last change this device signed in the note: its seq (0: none), from
 * the author's seq slots (no scan of the changes: this runs on every read
 * and before every commit). Of two with one seq, the smaller id. */
static uint64_t my_last_change(const notes_doc *d, const uint8_t **id)
{
    *id = NULL;
    for (size_t i = 0; i < d->na; i++) {
        if (memcmp(d->a[i].pk, d->r->pk, 32) != 0)
            continue;
        /* nseq may overstate after a rolled-back ingest: skip empty slots */
        for (uint64_t seq = d->a[i].nseq; seq > 0; seq--) {
            uint32_t w = slot_winner(d, (uint32_t)i, seq);
            if (w != NONE) {
                *id = d->e[w].c->id;
                return seq;
            }
        }
        break;
    }
    return 0;
}

/* Acknowledged heads that the note does not hold; *first: one of them. */
static uint32_t missing_heads(const notes_doc *d, const uint8_t **first)
{
    uint32_t k = 0;
    *first = NULL;
    for (uint32_t i = 0; i < d->st.nheads; i++) {
        if (hash_find(d, d->st.heads[i]) != NONE)
            continue;
        if (!k++)
            *first = d->st.heads[i];
    }
    return k;
}

/* Whether the log's bad tail holds bytes this replica acknowledged: then it
 * is damage, else an interrupted write that nobody was told about. */
static int tail_acked(const notes_doc *d)
{
    const struct notes__log *lg = d->log;
    return lg->bad_header ||
           (d->st.present ? lg->end < d->st.acked_end : !lg->torn);
}

struct finding {
    notes_doc *d;
    size_t o;
};

static void found(struct finding *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Add a finding to d->damage; the first with a code sets d->problem. */
static void found(struct finding *f, int code, const char *fmt, ...)
{
    notes_doc *d = f->d;
    va_list ap;
    if (code && !d->problem)
        d->problem = code;
    if (f->o + 3 >= sizeof(d->damage))
        return;
    if (f->o) {
        memcpy(d->damage + f->o, "; ", 3);
        f->o += 2;
    }
    va_start(ap, fmt);
    int k = vsnprintf(d->damage + f->o, sizeof(d->damage) - f->o, fmt, ap);
    va_end(ap);
    if (k > 0)
        f->o += (size_t)k < sizeof(d->damage) - f->o
                    ? (size_t)k
                    : sizeof(d->damage) - f->o - 1;
}

/*
 * Judge what was read against what this replica acknowledged (d->st):
 * sets d->problem and d->damage. Only a bad tail at or past the
 * acknowledged end of the log is an interrupted write nobody was told
 * about; anything below it, any acknowledged change the note lacks, and a
 * log shorter than acknowledged are damage or rollback. A log with no
 * state file (written by an older version) is judged as before: an
 * incomplete last record is a torn write, a bad complete one damage.
 */
static void assess(notes_doc *d)
{
    const struct notes__log *lg = d->log;
    const struct notes__state *st = &d->st;
    struct finding f = {d, 0};
    char *path = NULL;
    const char *lp = lg ? lg->path : (path = notes__replica_log_path(d->r, d->id));
    if (!lp)
        lp = "the note's log";
    d->problem = NOTES_OK;
    d->damage[0] = 0;
    if (st->damaged)
        found(&f, NOTES_ECORRUPT,
              "%s: without it damage to the log cannot be told from an "
              "interrupted write", st->why);
    int cut = 0; /* acknowledged bytes unreadable: the rest follows */
    if (lg && lg->damaged) {
        if ((cut = tail_acked(d)))
            found(&f, NOTES_ECORRUPT,
                  "'%s': %s; the note shows what precedes it", lp, lg->damage);
        else
            found(&f, NOTES_OK,
                  "'%s': %s: an interrupted write, never acknowledged; the "
                  "next change to this note sets it aside", lp, lg->damage);
    }
    if (st->present) {
        const uint8_t *miss;
        uint32_t k = missing_heads(d, &miss);
        const uint8_t *mine;
        uint64_t myseq = my_last_change(d, &mine);
        char sid[17];
        if (!lg && (st->nchanges || st->acked_end))
            found(&f, NOTES_EROLLBACK,
                  "'%s' is missing or empty, but this replica stored %llu "
                  "changes of this note", lp,
                  (unsigned long long)st->nchanges);
        if (k && cut) {
            found(&f, NOTES_ECORRUPT,
                  "%u acknowledged change(s) lie past the damage: recover "
                  "them from a peer (notes sync) or a bundle (notes import)",
                  k);
        } else if (k) {
            short_id(sid, miss);
            found(&f, NOTES_EROLLBACK,
                  "'%s' lacks %u change(s) this replica acknowledged (%s...): "
                  "it was cut, damaged or replaced by an older copy; recover "
                  "them from a peer (notes sync) or a bundle (notes import)",
                  lp, k, sid);
        } else if (st->nchanges > d->ne + d->nbad) {
            found(&f, NOTES_EROLLBACK,
                  "'%s' holds %zu changes, fewer than the %llu this replica "
                  "acknowledged: it was cut or replaced by an older copy",
                  lp, d->ne, (unsigned long long)st->nchanges);
        }
        if (st->my_seq > myseq && !cut) {
            short_id(sid, st->my_last);
            found(&f, NOTES_EROLLBACK,
                  "this device signed change %s (seq %llu) in this note, "
                  "which '%s' lacks", sid, (unsigned long long)st->my_seq, lp);
        }
    }
    if (d->nbad)
        found(&f, NOTES_ECORRUPT, "%zu change(s) in '%s' refused, first: %s",
              d->nbad, lp, d->first_bad);
    notes__free(path);
}

/* Read records appended since the last read (lock held by the caller).
 * Changes nothing on disk. */
static int read_new(notes_doc *d)
{
    struct batch b = {0};
    int replaced;
    int rc = load_state(d);
    if (rc == NOTES_OK)
        rc = notes__log_reopen(d->log, &replaced);
    if (rc == NOTES_OK && d->log->keyed && d->st.present)
        notes__log_set_trusted(d->log, d->st.verified_end, d->st.mac);
    if (rc == NOTES_OK)
        rc = notes__log_read(d->log, collect_cb, &b);
    b.trusted = d->log->read_trusted;
    if (rc == NOTES_OK)
        rc = batch_ingest(d, &b, 0, count_refusal, &b, NULL);
    if (b.bad) {
        d->tainted = 1;
        if (!d->nbad)
            snprintf(d->first_bad, sizeof(d->first_bad), "%s", b.first_bad);
        d->nbad += b.bad;
    }
    batch_release(&b);
    if (rc == NOTES_OK)
        assess(d);
    return rc;
}

/*
 * Open and read the log before a write (exclusive lock held): a bad tail
 * is set aside (notes_doc_repaired says where) so that appends follow the
 * intact prefix, and a damaged state file is kept as evidence before it is
 * written again. With !create a missing log is not an error (d->log stays
 * NULL; the caller creates it when it appends).
 */
static int prepare_write(notes_doc *d, int create)
{
    (void)notes__replica_local_key(d->r, 1); /* writers make it if missing */
    int rc = ensure_log(d, create);
    d->repaired[0] = 0;
    notes__replica_sweep(d->r);
    if (rc == NOTES_ENOTFOUND && !create) {
        if ((rc = load_state(d)) == NOTES_OK)
            assess(d);
        return rc;
    }
    if (rc || (rc = read_new(d)))
        return rc;
    size_t o = 0;
    if (d->log->damaged) {
        char *aside = NULL, what[200];
        uint64_t at = d->log->end, n = d->log->damaged;
        snprintf(what, sizeof(what), "%s", d->log->damage);
        if ((rc = notes__log_repair(d->log, tail_acked(d), &aside)))
            return rc;
        o += (size_t)snprintf(d->repaired, sizeof(d->repaired),
                              "set aside %llu bytes at offset %llu of '%s' "
                              "(%s) as '%s'", (unsigned long long)n,
                              (unsigned long long)at, d->log->path, what,
                              aside);
        notes__free(aside);
        assess(d);
    }
    if (d->st.damaged) {
        char *path = notes__replica_state_path(d->r, d->id), *aside = NULL;
        uint8_t *bytes = NULL;
        size_t n = 0, base = path ? strlen(path) + 16 : 0;
        char *name = path ? notes__malloc(base) : NULL;
        if (!name) {
            notes__free(path);
            return NOTES_ENOMEM;
        }
        snprintf(name, base, "%s.damaged", path);
        rc = notes__read_file(path, 1u << 20, &bytes, &n);
        if (rc == NOTES_OK)
            rc = notes__write_file_new(name, bytes, n, &aside);
        if (rc == NOTES_OK && o < sizeof(d->repaired))
            snprintf(d->repaired + o, sizeof(d->repaired) - o,
                     "%skept the damaged state file as '%s'; it is written "
                     "again from the log", o ? "; " : "", aside);
        notes__free(bytes);
        notes__free(aside);
        notes__free(name);
        notes__free(path);
        if (rc)
            return rc;
        memset(&d->st, 0, sizeof(d->st)); /* the next save starts anew */
    }
    return NOTES_OK;
}

/*
 * After a durable write to the log, record it in the state file before
 * success is reported: the log's end, the heads (acknowledged ones the
 * note still lacks kept first, so they are still asked for), this device's
 * last signed change, and the prefix this device verified.
 */
static int save_state(notes_doc *d)
{
    struct notes__state st = d->st;
    uint8_t(*heads)[32] = NULL;
    uint32_t nh = 0, k = 0;
    const uint8_t *mine;
    int rc = heads_raw(d, &heads, &nh);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < d->st.nheads; i++)
        if (hash_find(d, d->st.heads[i]) == NONE)
            memcpy(st.heads[k++], d->st.heads[i], 32);
    uint32_t missing = k;
    for (uint32_t i = 0; i < nh && k < NOTES__STATE_HEADS; i++)
        memcpy(st.heads[k++], heads[i], 32);
    notes__free(heads);
    st.nheads = k;
    st.heads_total = missing + nh;
    st.nchanges = missing && d->st.nchanges > d->ne ? d->st.nchanges : d->ne;
    st.acked_end = d->log->end;
    if (!d->tainted && d->log->keyed) {
        st.verified_end = d->log->end;
        memcpy(st.mac, d->log->mac, 32);
    }
    uint64_t seq = my_last_change(d, &mine);
    if (seq > st.my_seq) {
        st.my_seq = seq;
        memcpy(st.my_last, mine, 32);
    }
    char *path = notes__replica_state_path(d->r, d->id);
    if (!path)
        return NOTES_ENOMEM;
    /* On failure the file is as it was (state.c puts the slot back). */
    rc = notes__state_save(path, d->id, &st);
    if (rc == NOTES_OK) {
        d->st = st;
        assess(d);
    }
    notes__free(path);
    return rc;
}

int notes_doc_open(notes_replica *r, const uint8_t id[16], notes_doc **out)
{
    notes_doc *d;
    int rc;

    *out = NULL;
    if ((rc = doc_alloc(r, id, &d)))
        return rc;
    if ((rc = notes__replica_lock(r, 0)))
        goto fail;
    rc = ensure_log(d, 0);
    if (rc == NOTES_OK) {
        rc = read_new(d);
    } else if (rc == NOTES_ENOTFOUND && (rc = load_state(d)) == NOTES_OK) {
        /* No log: a note is there only if this replica stored some of it
         * (then the loss is reported), else it never was. */
        int stored = d->st.present && (d->st.nchanges || d->st.acked_end);
        if (stored || d->st.damaged) {
            assess(d);
        } else {
            notes__set_detail("no note %02x%02x%02x%02x... in this replica",
                              id[0], id[1], id[2], id[3]);
            rc = NOTES_ENOTFOUND;
        }
    }
    notes__replica_unlock(r);
    if (rc)
        goto fail;
    *out = d;
    return NOTES_OK;
fail:
    notes_doc_free(d);
    return rc;
}

const uint8_t *notes_doc_id(const notes_doc *d)
{
    return d->id;
}

const char *notes_doc_damage(const notes_doc *d)
{
    return d->damage[0] ? d->damage : NULL;
}

int notes_doc_intact(const notes_doc *d)
{
    return d->problem;
}

const char *notes_doc_repaired(const notes_doc *d)
{
    return d->repaired[0] ? d->repaired : NULL;
}

const char *notes_doc_text(notes_doc *d, size_t *nbytes)
{
    size_t nb, ncp;
    const char *t = notes__oplog_text(d->op, &nb, &ncp);
    if (nbytes)
        *nbytes = nb;
    return t;
}

size_t notes_doc_length(notes_doc *d)
{
    if (!d->len_ok) {
        size_t nb;
        (void)notes__oplog_text(d->op, &nb, &d->len);
        d->len_ok = 1;
    }
    return d->len;
}

int notes_doc_dirty(const notes_doc *d)
{
    return d->has_pend;
}

/* ---- local edits ---- */

static int heads_raw(const notes_doc *d, uint8_t (**out)[32], uint32_t *n);

static void clear_pending(notes_doc *d);

/*
 * Add to the pending change the replica's certificates the note lacks, so
 * the note carries what attributes this device's changes to its person.
 * A link of this device that arrived from a peer is adopted first (the
 * device learns whom it was linked to by syncing with its person's device).
 */
static int pending_certs(notes_doc *d, size_t *added)
{
    const struct notes__cert *c;
    size_t n;
    int rc;
    if (added)
        *added = 0;
    if (!d->r)
        return NOTES_OK;
    const struct dev *me = dev_find(d, d->r->pk);
    if ((rc = notes__replica_certs(d->r, &c, &n)))
        return rc;
    if (me && me->has_person && me->link) {
        /* Adopt only what is new: this runs at every burst of typing, and
         * adding takes the replica lock. */
        size_t k;
        for (k = 0; k < n && !(c[k].n == me->linklen &&
                               memcmp(c[k].bytes, me->link, me->linklen) == 0);
             k++)
            ;
        if (k == n &&
            ((rc = notes__replica_add_cert(d->r, NOTES__K_LINK, me->link,
                                           me->linklen)) ||
             (rc = notes__replica_certs(d->r, &c, &n))))
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (has_cert(d, c[i].bytes, c[i].n))
            continue;
        if ((rc = notes__builder_blob(&d->pend, c[i].kind, NULL, 0,
                                      c[i].bytes, c[i].n)))
            return rc;
        if (added)
            (*added)++;
    }
    return NOTES_OK;
}

static int begin_pending(notes_doc *d)
{
    if (d->has_pend)
        return NOTES_OK;
    uint8_t(*deps)[32];
    uint32_t nd;
    int rc = heads_raw(d, &deps, &nd);
    if (rc)
        return rc;
    if (nd > NOTES__MAX_DEPS) {
        notes__free(deps);
        notes__set_detail("too many concurrent heads (%u)", nd);
        return NOTES_ETOOBIG;
    }
    notes__free(d->pend_deps);
    d->pend_deps = deps;
    d->npend_deps = nd;
    d->pend_seq = author_last_seq(d, my_pk(d)) + 1;
    d->pend_kind = 0;
    d->has_pend = 1;
    /* An author's first change in a note says who they claim to be. */
    if (d->pend_seq == 1 && (rc = notes__builder_name(&d->pend, my_name(d)))) {
        clear_pending(d);
        return rc;
    }
    if ((rc = pending_certs(d, NULL))) {
        clear_pending(d);
        return rc;
    }
    return NOTES_OK;
}

/* Move the coalescing op into the builder. */
static int flush_pending_op(notes_doc *d)
{
    int rc = NOTES_OK;
    switch (d->pend_kind) {
    case NOTES__K_INS:
        rc = notes__builder_ins(&d->pend, d->pend_pos, d->pend_text.data,
                                d->pend_text.len, d->pend_count);
        break;
    case NOTES__K_DEL:
    case NOTES__K_DELBACK:
        rc = notes__builder_del(&d->pend, d->pend_kind, d->pend_pos,
                                d->pend_count);
        break;
    }
    if (rc == NOTES_OK) {
        d->pend_kind = 0;
        d->pend_text.len = 0;
    }
    return rc;
}

static int local_agent(notes_doc *d, uint32_t *agent)
{
    uint32_t ai;
    int rc = author_index(d, my_pk(d), &ai);
    return rc ? rc : author_agent(d, ai, agent);
}

static uint64_t pend_events(const notes_doc *d)
{
    uint64_t n = d->pend.nevents;
    if (d->pend_kind)
        n += d->pend_count;
    return n;
}

static void note_pending_lvs(notes_doc *d, notes_lv first, uint32_t count)
{
    if (pend_events(d) == 0)
        d->pend_first = first;
    d->pend_last = first + count - 1;
}

int notes_doc_splice(notes_doc *d, size_t pos, size_t del, const char *text,
                     size_t n)
{
    size_t len;
    uint32_t agent, ncp = 0;
    notes_lv first;
    const notes_lv *fr;
    size_t nfr;
    int rc;

    len = notes_doc_length(d);
    if (pos > len || del > len - pos) {
        notes__set_detail("edit at %zu deleting %zu is outside the text (%zu "
                          "characters)", pos, del, len);
        return NOTES_EBADOP;
    }
    if (n && !notes__utf8_valid((const uint8_t *)text, n)) {
        notes__set_detail("inserted text is not valid UTF-8");
        return NOTES_EINVAL;
    }
    if (n)
        ncp = (uint32_t)notes__utf8_count((const uint8_t *)text, n);
    if (!del && !n)
        return NOTES_OK;
    if (n > NOTES__CHANGE_MAX / 2 || pos > UINT32_MAX || del > UINT32_MAX)
        return NOTES_ETOOBIG;
    if ((rc = begin_pending(d)) || (rc = local_agent(d, &agent)))
        return rc;
    if (del) {
        fr = notes__oplog_frontier(d->op, &nfr);
        rc = notes__oplog_add(d->op, agent,
                              (d->pend_seq << 32) | pend_events(d), fr, nfr,
                              NOTES__OP_DEL, (uint32_t)pos, NULL, 0,
                              (uint32_t)del, &first);
        if (rc)
            return rc;
        note_pending_lvs(d, first, (uint32_t)del);
        d->len -= del;
        if (d->pend_kind == NOTES__K_DEL && pos == d->pend_pos) {
            d->pend_count += (uint32_t)del;
        } else if (del == 1 &&
                   ((d->pend_kind == NOTES__K_DELBACK &&
                     pos + d->pend_count == d->pend_pos) ||
                    (d->pend_kind == NOTES__K_DEL && d->pend_count == 1 &&
                     pos + 1 == d->pend_pos))) {
            d->pend_kind = NOTES__K_DELBACK;
            d->pend_count++;
        } else {
            if ((rc = flush_pending_op(d)))
                return rc;
            d->pend_kind = NOTES__K_DEL;
            d->pend_pos = (uint32_t)pos;
            d->pend_count = (uint32_t)del;
        }
    }
    if (n) {
        fr = notes__oplog_frontier(d->op, &nfr);
        rc = notes__oplog_add(d->op, agent,
                              (d->pend_seq << 32) | pend_events(d), fr, nfr,
                              NOTES__OP_INS, (uint32_t)pos, text, n, 0, &first);
        if (rc)
            return rc;
        note_pending_lvs(d, first, ncp);
        d->len += ncp;
        if (!(d->pend_kind == NOTES__K_INS &&
              pos == (size_t)d->pend_pos + d->pend_count)) {
            if ((rc = flush_pending_op(d)))
                return rc;
            d->pend_kind = NOTES__K_INS;
            d->pend_pos = (uint32_t)pos;
            d->pend_count = 0;
        }
        if ((rc = notes__buf_put(&d->pend_text, text, n)))
            return rc;
        d->pend_count += ncp;
    }
    return NOTES_OK;
}

static int local_kv(notes_doc *d, int kind, const char *key, const char *value)
{
    int rc;
    size_t klen = key ? strlen(key) : 0;
    if (!klen || klen > NOTES__KEY_MAX ||
        !notes__utf8_valid((const uint8_t *)key, klen) ||
        (kind != NOTES__K_UNSET &&
         (!value || strlen(value) > NOTES__VALUE_MAX ||
          !notes__utf8_valid((const uint8_t *)value, strlen(value))))) {
        notes__set_detail("field name or value is empty, too long or not UTF-8");
        return NOTES_EINVAL;
    }
    if ((rc = begin_pending(d)) || (rc = flush_pending_op(d)))
        return rc;
    uint32_t opidx = d->pend.nops;
    if ((rc = notes__builder_kv(&d->pend, kind, key, value)))
        return rc;
    return field_write(d, NONE, opidx, kind, (const uint8_t *)key, klen,
                       (const uint8_t *)value, value ? strlen(value) : 0);
}

int notes_doc_set_field(notes_doc *d, const char *key, const char *value)
{
    return local_kv(d, NOTES__K_SET, key, value);
}

int notes_doc_unset_field(notes_doc *d, const char *key)
{
    return local_kv(d, NOTES__K_UNSET, key, NULL);
}

int notes_doc_list_add(notes_doc *d, const char *key, const char *value)
{
    return local_kv(d, NOTES__K_ADD, key, value);
}

int notes_doc_list_remove(notes_doc *d, const char *key, const char *value)
{
    return local_kv(d, NOTES__K_REMOVE, key, value);
}

/* ---- causality ---- */

/*
 * Mark in `seen` every ancestor of entry `from` (inclusive), through deps
 * and, with `chain`, through prev too (what a holder of `from` must have,
 * as opposed to what its author had seen).
 */
static int mark_ancestors(const notes_doc *d, uint32_t from, uint8_t *seen,
                          int chain)
{
    uint32_t *stack = notes__malloc((d->ne + 1) * sizeof(*stack));
    size_t sp = 0;
    if (!stack)
        return NOTES_ENOMEM;
    stack[sp++] = from;
    seen[from] = 1;
    while (sp) {
        const struct notes__change *c = d->e[stack[--sp]].c;
        for (uint32_t i = 0; i <= c->ndeps; i++) {
            uint32_t p;
            if (i == c->ndeps) {
                if (c->seq <= 1 || !chain)
                    break;
                p = hash_find(d, c->prev);
            } else {
                p = hash_find(d, c->deps[i]);
            }
            if (p != NONE && !seen[p]) {
                seen[p] = 1;
                stack[sp++] = p;
            }
        }
    }
    notes__free(stack);
    return NOTES_OK;
}

/* Is write a causally before write b (b supersedes a)? */
static int write_before(const notes_doc *d, const struct write *a,
                        const struct write *b, uint8_t *scratch)
{
    if (a->entry == b->entry)
        return a->opidx < b->opidx;
    if (b->entry == NONE)
        return 1; /* uncommitted local edits come after all they saw */
    if (a->entry == NONE)
        return 0;
    memset(scratch, 0, d->ne);
    if (mark_ancestors(d, b->entry, scratch, 0))
        return 0;
    return scratch[a->entry];
}

/* Total order for ties: lamport, author key, change id, op index. */
static int write_cmp(const notes_doc *d, const struct write *a,
                     const struct write *b)
{
    if (a->entry == b->entry)
        return a->opidx < b->opidx ? -1 : a->opidx > b->opidx;
    if (a->entry == NONE)
        return 1;
    if (b->entry == NONE)
        return -1;
    const struct entry *ea = &d->e[a->entry], *eb = &d->e[b->entry];
    if (ea->lamport != eb->lamport)
        return ea->lamport < eb->lamport ? -1 : 1;
    int c = memcmp(ea->c->author, eb->c->author, 32);
    if (c)
        return c;
    return memcmp(ea->c->id, eb->c->id, 32);
}

static int is_register(int kind)
{
    return kind == NOTES__K_SET || kind == NOTES__K_UNSET;
}

/*
 * Resolve a register: the live writes (superseded by none) and the winner
 * among them. Returns the winner index or -1, fills `conflicts`.
 */
static int resolve_register(notes_doc *d, struct field *f, const char **value)
{
    if (f->gen_reg == d->gen && f->gen_reg) {
        *value = f->value;
        return NOTES_OK;
    }
    uint8_t *scratch = notes__malloc(d->ne + 1);
    const char **conf = notes__calloc(f->nw + 1, sizeof(*conf));
    size_t nc = 0;
    ptrdiff_t win = -1;
    if (!scratch || !conf) {
        notes__free(scratch);
        notes__free(conf);
        return NOTES_ENOMEM;
    }
    uint8_t *live = notes__calloc(f->nw + 1, 1);
    if (!live) {
        notes__free(scratch);
        notes__free(conf);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < f->nw; i++) {
        if (!is_register(f->w[i].kind))
            continue;
        live[i] = 1;
        for (size_t j = 0; j < f->nw && live[i]; j++)
            if (j != i && is_register(f->w[j].kind) &&
                write_before(d, &f->w[i], &f->w[j], scratch))
                live[i] = 0;
        if (live[i] && (win < 0 || write_cmp(d, &f->w[i], &f->w[win]) > 0))
            win = (ptrdiff_t)i;
    }
    *value = win >= 0 ? f->w[win].value : NULL;
    /* Conflicts in a replica-independent order: latest write first. */
    size_t *ci = notes__malloc((f->nw + 1) * sizeof(*ci));
    size_t nci = 0;
    if (!ci) {
        notes__free(live);
        notes__free(scratch);
        notes__free(conf);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < f->nw; i++) {
        if (!live[i] || (ptrdiff_t)i == win || !f->w[i].value)
            continue;
        size_t k = nci++;
        while (k > 0 && write_cmp(d, &f->w[ci[k - 1]], &f->w[i]) < 0) {
            ci[k] = ci[k - 1];
            k--;
        }
        ci[k] = i;
    }
    for (size_t k = 0; k < nci; k++) {
        const char *v = f->w[ci[k]].value;
        int seen = *value && strcmp(*value, v) == 0;
        for (size_t j = 0; j < nc && !seen; j++)
            seen = strcmp(conf[j], v) == 0;
        if (!seen)
            conf[nc++] = v;
    }
    notes__free(ci);
    notes__free(live);
    notes__free(scratch);
    notes__free(f->conflicts);
    f->conflicts = conf;
    f->value = *value;
    f->gen_reg = d->gen;
    return NOTES_OK;
}

static int resolve_list(notes_doc *d, struct field *f)
{
    if (f->gen_list == d->gen && f->gen_list)
        return NOTES_OK;
    uint8_t *scratch = notes__malloc(d->ne + 1);
    size_t *alive = notes__malloc((f->nw + 1) * sizeof(*alive));
    const char **list = notes__calloc(f->nw + 1, sizeof(*list));
    size_t na = 0, nl = 0;
    if (!scratch || !alive || !list) {
        notes__free(scratch);
        notes__free(alive);
        notes__free(list);
        return NOTES_ENOMEM;
    }
    /* An add survives unless a remove of the same value saw it. */
    for (size_t i = 0; i < f->nw; i++) {
        if (f->w[i].kind != NOTES__K_ADD)
            continue;
        int removed = 0;
        for (size_t j = 0; j < f->nw && !removed; j++)
            if (f->w[j].kind == NOTES__K_REMOVE &&
                strcmp(f->w[j].value, f->w[i].value) == 0 &&
                write_before(d, &f->w[i], &f->w[j], scratch))
                removed = 1;
        if (!removed)
            alive[na++] = i;
    }
    /* Stable order: by each value's earliest surviving add. */
    for (size_t i = 1; i < na; i++) {
        size_t x = alive[i], k = i;
        while (k > 0 && write_cmp(d, &f->w[alive[k - 1]], &f->w[x]) > 0) {
            alive[k] = alive[k - 1];
            k--;
        }
        alive[k] = x;
    }
    for (size_t i = 0; i < na; i++) {
        const char *v = f->w[alive[i]].value;
        size_t k;
        for (k = 0; k < nl && strcmp(list[k], v) != 0; k++)
            ;
        if (k == nl)
            list[nl++] = v;
    }
    notes__free(scratch);
    notes__free(alive);
    notes__free(f->list);
    f->list = list;
    f->gen_list = d->gen;
    return NOTES_OK;
}

static struct field *find_field(notes_doc *d, const char *key)
{
    for (size_t i = 0; i < d->nf; i++)
        if (strcmp(d->f[i].key, key) == 0)
            return &d->f[i];
    return NULL;
}

const char *notes_doc_field(notes_doc *d, const char *key)
{
    struct field *f = find_field(d, key);
    const char *v = NULL;
    if (!f || resolve_register(d, f, &v))
        return NULL;
    return v;
}

static const char *const empty_list[] = {NULL};

const char *const *notes_doc_field_conflicts(notes_doc *d, const char *key)
{
    struct field *f = find_field(d, key);
    const char *v;
    if (!f || resolve_register(d, f, &v))
        return empty_list;
    return f->conflicts;
}

const char *const *notes_doc_list(notes_doc *d, const char *key)
{
    struct field *f = find_field(d, key);
    if (!f || resolve_list(d, f))
        return empty_list;
    return f->list;
}

const char *const *notes_doc_fields(notes_doc *d)
{
    if (d->fieldnames && d->gen_names == d->gen)
        return d->fieldnames;
    const char **names = notes__calloc(d->nf + 1, sizeof(*names));
    const struct write **first =
        notes__calloc(d->nf + 1, sizeof(const struct write *));
    size_t n = 0;
    if (!names || !first) {
        notes__free(names);
        notes__free(first);
        return empty_list;
    }
    for (size_t i = 0; i < d->nf; i++) {
        struct field *f = &d->f[i];
        const char *v = NULL;
        int has = 0;
        if (resolve_register(d, f, &v) == NOTES_OK && v)
            has = 1;
        if (!has && resolve_list(d, f) == NOTES_OK && f->list[0])
            has = 1;
        if (!has || !f->nw)
            continue;
        /* Fields appear in the order of their earliest write. */
        const struct write *best = &f->w[0];
        for (size_t j = 1; j < f->nw; j++)
            if (write_cmp(d, &f->w[j], best) < 0)
                best = &f->w[j];
        size_t k = n++;
        while (k > 0 && write_cmp(d, first[k - 1], best) > 0) {
            names[k] = names[k - 1];
            first[k] = first[k - 1];
            k--;
        }
        names[k] = f->key;
        first[k] = best;
    }
    notes__free(first);
    notes__free(d->fieldnames);
    d->fieldnames = names;
    d->gen_names = d->gen;
    return names;
}

/* ---- heads, commit, refresh ---- */

static int cmp_id32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int heads_raw(const notes_doc *d, uint8_t (**out)[32], uint32_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < d->ne; i++)
        k += d->e[i].applied && !d->e[i].parent;
    uint8_t(*h)[32] = notes__malloc((k ? k : 1) * 32);
    if (!h)
        return NOTES_ENOMEM;
    k = 0;
    for (size_t i = 0; i < d->ne; i++)
        if (d->e[i].applied && !d->e[i].parent)
            memcpy(h[k++], d->e[i].c->id, 32);
    qsort(h, k, 32, cmp_id32);
    *out = h;
    *n = (uint32_t)k;
    return NOTES_OK;
}

int notes_doc_heads(notes_doc *d, uint8_t (**heads)[32], size_t *n)
{
    uint32_t k;
    int rc = heads_raw(d, heads, &k);
    *n = rc ? 0 : k;
    return rc;
}

static int ensure_log(notes_doc *d, int create)
{
    if (d->log)
        return NOTES_OK;
    char *path = notes__replica_log_path(d->r, d->id);
    if (!path)
        return NOTES_ENOMEM;
    int rc = notes__log_open(path, d->id, create, &d->log);
    notes__free(path);
    const uint8_t *key =
        rc == NOTES_OK ? notes__replica_local_key(d->r, create) : NULL;
    if (key)
        notes__log_use_key(d->log, key);
    return rc;
}

/* Bookkeeping for a committed change whose events are already applied. */
static int finish_local_entry(notes_doc *d, uint32_t idx)
{
    struct entry *en = &d->e[idx];
    const struct notes__change *c = en->c;
    int rc;
    if (c->ntext_events) {
        en->ver = notes__malloc(sizeof(*en->ver));
        if (!en->ver)
            return NOTES_ENOMEM;
        en->ver[0] = d->pend_last;
        en->nver = 1;
        en->first_lv = d->pend_first;
        en->nev = (uint32_t)c->ntext_events;
    } else if ((rc = version_of(d, (const uint8_t(*)[32])c->deps, c->ndeps,
                                &en->ver, &en->nver))) {
        return rc;
    }
    en->applied = 1;
    /* Only deps make a change a parent: prev is the author's chain, and a
     * process committing as the same identity may not have seen it. */
    for (uint32_t i = 0; i < c->ndeps; i++) {
        uint32_t p = hash_find(d, c->deps[i]);
        if (p != NONE)
            d->e[p].parent = 1;
    }
    /* The name this change claims (apply_entry does this for others). */
    for (uint32_t i = 0; i < c->nops; i++) {
        struct author *a = &d->a[en->author];
        if (c->ops[i].kind != NOTES__K_NAME || !name_wins(a, c))
            continue;
        char *nm = notes__strndup((const char *)c->ops[i].text,
                                  c->ops[i].textlen);
        if (!nm)
            return NOTES_ENOMEM;
        notes__free(a->name);
        a->name = nm;
        a->name_seq = c->seq;
        a->name_id = c->id;
    }
    for (size_t i = 0; i < d->nf; i++)
        for (size_t j = 0; j < d->f[i].nw; j++)
            if (d->f[i].w[j].entry == NONE)
                d->f[i].w[j].entry = idx;
    return note_people(d, idx);
}

static void clear_pending(notes_doc *d)
{
    notes__builder_release(&d->pend);
    notes__builder_init(&d->pend);
    d->pend_text.len = 0;
    d->pend_kind = 0;
    d->has_pend = 0;
}

int notes_doc_commit(notes_doc *d, uint8_t id_out[32])
{
    struct notes__change *c = NULL;
    uint8_t prev[32] = {0};
    uint32_t idx;
    int rc, replay;

    if (id_out)
        memset(id_out, 0, 32);
    if (!d->has_pend)
        return NOTES_OK;
    if (!signer(d)) {
        notes__set_detail("the identity is locked: a passphrase is needed "
                          "to sign");
        return NOTES_ENEEDPASS;
    }
    if ((rc = flush_pending_op(d)))
        return rc;
    if (d->pend.nops == 0) {
        clear_pending(d);
        return NOTES_OK;
    }
    if ((rc = doc_lock(d, 1)))
        return rc;
    replay = 0;
    if (d->r) {
        if ((rc = ensure_log(d, 1)))
            goto out;
        /*
         * If other processes appended meanwhile, our pending events
         * (already in the text with provisional ids) are taken out first:
         * their changes may be ours too (same identity, same seq). The new
         * change is then applied like any other, after theirs.
         */
        replay = notes__log_has_more(d->log);
        if (replay && (rc = rebuild(d)))
            goto out;
        unsigned rebuilds = d->rebuilds;
        if ((rc = prepare_write(d, 1)))
            goto out;
        if (d->rebuilds != rebuilds)
            replay = 1; /* a fork among the new changes rebuilt the state */
        if (d->problem == NOTES_EROLLBACK) {
            /* Signing now could reuse a sequence number this device
             * already signed (in a change the log lost): equivocation. */
            notes__set_detail("%s; nothing was signed", d->damage);
            rc = NOTES_EROLLBACK;
            goto undo;
        }
    }
    uint64_t seq = author_last_seq(d, my_pk(d)) + 1;
    if (d->r && d->st.present && d->st.my_seq >= seq) {
        char sid[17];
        short_id(sid, d->st.my_last);
        notes__set_detail("this device already signed seq %llu (change %s) "
                          "in this note, which the log lacks; nothing was "
                          "signed", (unsigned long long)d->st.my_seq, sid);
        rc = NOTES_EROLLBACK;
        goto undo;
    }
    if (seq > 1) {
        uint32_t ai;
        if ((rc = author_index(d, my_pk(d), &ai)))
            goto out;
        memcpy(prev, d->e[slot_winner(d, ai, seq - 1)].c->id, 32);
    }
    if (seq != d->pend_seq && !replay) {
        if ((rc = rebuild(d)))
            goto out;
        replay = 1;
    }
    uint32_t rev;
    if ((rc = revoked_before(d, my_pk(d), (const uint8_t(*)[32])d->pend_deps,
                             d->npend_deps, seq > 1 ? prev : NULL, &rev)))
        goto out;
    if (rev != NONE) {
        notes__set_detail("this device was revoked by its person in this "
                          "note: its changes are refused (link this replica "
                          "to a new device key)");
        rc = NOTES_EREVOKED;
        goto out;
    }
    rc = notes__builder_finish(&d->pend, d->id, signer(d), seq, prev,
                               (const uint8_t(*)[32])d->pend_deps,
                               d->npend_deps, now_ms(), 1, &c);
    if (rc)
        goto out;
    size_t before = d->ne;
    if ((rc = add_entry(d, c, &idx))) {
        notes__change_free(c);
        goto out;
    }
    rc = replay ? apply_entry(d, idx) : finish_local_entry(d, idx);
    if (rc == NOTES_OK && d->r) {
        const uint8_t *bytes = c->bytes;
        size_t len = c->nbytes;
        struct notes__log_mark mark;
        notes__log_mark(d->log, &mark);
        rc = notes__log_append(d->log, &bytes, &len, 1, 3);
        /* Acknowledged only once the state says so; else taken back (no
         * other process can have read it: we hold the lock). */
        if (rc == NOTES_OK && (rc = save_state(d)) &&
            notes__log_undo(d->log, &mark) != NOTES_OK)
            rc = NOTES_EIO;
    }
    if (rc) {
        int rc2 = truncate_entries(d, before);
        (void)rc2;
        clear_pending(d);
        if (d->r)
            notes__log_discard_if_empty(&d->log);
        goto out;
    }
    if (id_out)
        memcpy(id_out, c->id, 32);
    clear_pending(d);
    /* Many small records: fold them into a pack while we hold the lock.
     * Best effort: the log is complete whether or not this succeeds. */
    if (d->r && d->log->nrecords > NOTES__AUTO_COMPACT && !d->tainted &&
        !d->problem && notes_doc_compact(d, 15) != NOTES_OK)
        notes__set_detail("%s", "");
    goto out;
undo:
    /* Refused before signing: the pending edits are dropped, as after a
     * failed append, and the state is the log's. */
    clear_pending(d);
    if (!replay) {
        int rc2 = rebuild(d); /* takes the provisional events out */
        (void)rc2;
    }
    notes__log_discard_if_empty(&d->log);
out:
    doc_unlock(d);
    return rc;
}

int notes_doc_refresh(notes_doc *d)
{
    int rc;
    if (d->has_pend) {
        notes__set_detail("commit local edits before refreshing");
        return NOTES_EINVAL;
    }
    if (!d->r)
        return NOTES_OK;
    if ((rc = notes__replica_lock(d->r, 0)))
        return rc;
    rc = ensure_log(d, 0);
    if (rc == NOTES_ENOTFOUND)
        rc = NOTES_OK; /* not stored yet: nothing new */
    else if (rc == NOTES_OK)
        rc = read_new(d);
    notes__replica_unlock(d->r);
    return rc;
}

/* ---- compaction ---- */

int notes_doc_compact(notes_doc *d, int level)
{
    struct notes_buf pack;
    int rc;
    if (!d->r)
        return NOTES_OK;
    if (d->has_pend) {
        notes__set_detail("commit local edits before compacting");
        return NOTES_EINVAL;
    }
    if (level < 1 || level > 22)
        level = 19;
    if ((rc = notes__replica_lock(d->r, 1)))
        return rc;
    rc = prepare_write(d, 0);
    if (rc == NOTES_OK && !d->log) {
        if (d->problem) {
            notes__set_detail("%s; not compacting", d->damage);
            rc = d->problem;
        }
        notes__replica_unlock(d->r);
        return rc; /* nothing stored */
    }
    if (rc == NOTES_OK && d->problem) {
        /* Refused changes are evidence that a rewrite would drop; a log
         * that lacks acknowledged changes is not made to look whole. */
        notes__set_detail("%s; not compacting", d->damage);
        rc = d->problem;
    }
    notes__buf_init(&pack, NOTES__REC_RAW_MAX);
    if (rc == NOTES_OK) {
        struct notes__change **all =
            notes__malloc((d->ne + 1) * sizeof(struct notes__change *));
        if (!all) {
            rc = NOTES_ENOMEM;
        } else {
            for (size_t i = 0; i < d->ne; i++)
                all[i] = d->e[i].c;
            rc = notes__pack_encode(d->id, all, d->ne, 0, &pack);
            notes__free(all);
        }
    }
    int same = 0;
    if (rc == NOTES_OK)
        rc = notes__log_rewrite(d->log, NOTES__REC_PACK, pack.data, pack.len,
                                level, &same);
    if (rc == NOTES_OK && (!same || d->repaired[0]))
        rc = save_state(d);
    notes__buf_release(&pack);
    notes__replica_unlock(d->r);
    return rc;
}

/* ---- exchange ---- */

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

int notes_doc_export(notes_doc *d, const uint8_t (*have)[32], size_t n,
                     uint8_t **bytes, size_t *nbytes)
{
    uint8_t *known = notes__calloc(d->ne + 1, 1);
    const uint8_t **ptrs = notes__malloc((d->ne + 1) * sizeof(*ptrs));
    size_t *lens = notes__malloc((d->ne + 1) * sizeof(*lens));
    struct notes__change **sel =
        notes__malloc((d->ne + 1) * sizeof(struct notes__change *));
    struct notes_buf out;
    size_t k = 0;
    int rc = NOTES_ENOMEM;

    *bytes = NULL;
    *nbytes = 0;
    notes__buf_init(&out, SIZE_MAX / 2);
    if (!known || !ptrs || !lens || !sel)
        goto done;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = hash_find(d, have[i]);
        if (e != NONE && !known[e] && (rc = mark_ancestors(d, e, known, 1)))
            goto done;
    }
    /* Log order is causal order, so the receiver can apply front to back. */
    for (size_t i = 0; i < d->ne; i++) {
        if (known[i])
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
static int bundle_cb(void *ctx, const uint8_t *p, size_t n)
{
    struct bundle_read *br = ctx;
    struct batch *b = br->b;
    int rc = batch_decode(b, p, n);
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
    if ((rc = doc_lock(d, 1)))
        goto free_batch;
    /* A note new to this replica (no log) is created on append. */
    rc = d->r ? prepare_write(d, 0) : NOTES_OK;
    if (rc)
        goto unlock;
    before = d->ne;
    rc = batch_ingest(d, &b, 1, NULL, NULL, NULL);
    if (rc) {
        char msg[240];
        snprintf(msg, sizeof(msg), "%s", notes_last_detail());
        int rc2 = truncate_entries(d, before);
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
            rc = ensure_log(d, 1);
            if (rc == NOTES_OK) {
                notes__log_mark(d->log, &mark);
                rc = notes__log_append(d->log, ptrs, lens, k, 3);
            }
            if (rc == NOTES_OK && (rc = save_state(d)) &&
                notes__log_undo(d->log, &mark) != NOTES_OK)
                rc = NOTES_EIO;
        }
        notes__free(ptrs);
        notes__free(lens);
        if (rc) {
            int rc2 = truncate_entries(d, before);
            (void)rc2;
            notes__log_discard_if_empty(&d->log);
            goto unlock;
        }
        if (added)
            *added = k;
    } else if (d->r && d->log && d->repaired[0]) {
        /* Nothing new, but a tail was set aside: the state follows the
         * log's new end. */
        rc = save_state(d);
    }
unlock:
    doc_unlock(d);
free_batch:
    batch_release(&b);
    notes__free(br.runs.t);
    return rc;
}

/* ---- history ---- */

int notes_doc_author_equivocated(const notes_doc *d, const uint8_t pk[32])
{
    if (!d || !pk)
        return 0;
    for (size_t i = 0; i < d->na; i++)
        if (memcmp(d->a[i].pk, pk, 32) == 0)
            return d->a[i].forked;
    return 0;
}

size_t notes_doc_change_count(const notes_doc *d)
{
    return d->ne;
}

int notes_doc_change(const notes_doc *d, size_t i, notes_change_info *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= d->ne)
        return NOTES_EINVAL;
    const struct notes__change *c = d->e[i].c;
    out->id = c->id;
    out->author = c->author;
    out->seq = c->seq;
    out->time_ms = c->time_ms;
    out->nops = c->nops;
    out->ndeps = c->ndeps;
    out->equivocated = d->e[i].equivocated;
    for (uint32_t k = 0; k < c->nops; k++) {
        switch (c->ops[k].kind) {
        case NOTES__K_INS:
            out->inserted += c->ops[k].count;
            break;
        case NOTES__K_DEL:
        case NOTES__K_DELBACK:
            out->deleted += c->ops[k].count;
            break;
        case NOTES__K_NAME:
        case NOTES__K_LINK:
        case NOTES__K_REVOKE:
        case NOTES__K_CONFIRM:
            break;
        default:
            out->nfields++;
        }
    }
    return NOTES_OK;
}

int notes_doc_find_change(const notes_doc *d, const char *hexprefix,
                          size_t *index)
{
    size_t len = strlen(hexprefix), found = SIZE_MAX, matches = 0;
    char hex[65];
    if (len == 0 || len > 64) {
        notes__set_detail("'%s' is not a change id", hexprefix);
        return NOTES_EINVAL;
    }
    for (size_t i = 0; i < d->ne; i++) {
        notes__hex(hex, d->e[i].c->id, 32);
        if (strncasecmp(hex, hexprefix, len) == 0) {
            found = i;
            matches++;
        }
    }
    if (!matches) {
        notes__set_detail("no change '%s' in this note", hexprefix);
        return NOTES_ENOTFOUND;
    }
    if (matches > 1) {
        notes__set_detail("'%s' names %zu changes; give more digits",
                          hexprefix, matches);
        return NOTES_EINVAL;
    }
    *index = found;
    return NOTES_OK;
}

int notes_doc_text_at(notes_doc *d, const uint8_t (*version)[32], size_t n,
                      char **text, size_t *nbytes)
{
    notes_lv *v;
    uint32_t nv;
    int rc;
    *text = NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = hash_find(d, version[i]);
        if (e == NONE || !d->e[e].applied) {
            notes__set_detail("version names a change this note does not "
                              "have");
            return NOTES_ENOTFOUND;
        }
    }
    if (n > UINT32_MAX)
        return NOTES_EINVAL;
    if ((rc = version_of(d, version, (uint32_t)n, &v, &nv)))
        return rc;
    rc = notes__oplog_checkout(d->op, v, nv, text, nbytes);
    notes__free(v);
    return rc;
}

int notes__diff(const char *ta, size_t na, const char *tb, size_t nb,
                const char *label_a, const char *label_b, char **out,
                size_t *nout);

int notes__diff_regions(const char *ta, size_t na, const char *tb, size_t nb,
                        int (*cb)(void *ctx, size_t a_off, size_t a_len,
                                  size_t b_off, size_t b_len),
                        void *ctx);

struct region {
    size_t a_off, a_len, b_off, b_len;
};

struct regions {
    struct region *r;
    size_t n, cap;
};

static int region_cb(void *ctx, size_t ao, size_t al, size_t bo, size_t bl)
{
    struct regions *rs = ctx;
    if (notes__grow(&rs->r, &rs->cap, rs->n + 1, sizeof(*rs->r), 16))
        return NOTES_ENOMEM;
    rs->r[rs->n++] = (struct region){ao, al, bo, bl};
    return NOTES_OK;
}

int notes_doc_set_text(notes_doc *d, const char *text, size_t n)
{
    struct regions rs = {0};
    size_t cur_len;
    int rc;
    if (n && !notes__utf8_valid((const uint8_t *)text, n)) {
        notes__set_detail("the new text is not valid UTF-8");
        return NOTES_EINVAL;
    }
    const char *cur = notes_doc_text(d, &cur_len);
    char *copy = notes__strndup(cur, cur_len); /* splices move the buffer */
    if (!copy)
        return NOTES_ENOMEM;
    rc = notes__diff_regions(copy, cur_len, text, n, region_cb, &rs);
    /* Apply from the end so earlier offsets stay valid. */
    for (size_t k = rs.n; rc == NOTES_OK && k-- > 0;) {
        const struct region *g = &rs.r[k];
        size_t pos = notes__utf8_count((const uint8_t *)copy, g->a_off);
        size_t del = notes__utf8_count((const uint8_t *)copy + g->a_off, g->a_len);
        rc = notes_doc_splice(d, pos, del, text + g->b_off, g->b_len);
    }
    notes__free(rs.r);
    notes__free(copy);
    return rc;
}

int notes_doc_diff(notes_doc *d, const uint8_t (*a)[32], size_t na,
                   const uint8_t (*b)[32], size_t nb, char **out, size_t *n)
{
    char *ta = NULL, *tb = NULL, la[40], lb[40];
    size_t lta, ltb;
    int rc;
    *out = NULL;
    *n = 0;
    if ((rc = notes_doc_text_at(d, a, na, &ta, &lta)))
        return rc;
    if (b)
        rc = notes_doc_text_at(d, b, nb, &tb, &ltb);
    else {
        const char *cur = notes_doc_text(d, &ltb);
        tb = notes__strndup(cur, ltb);
        if (!tb)
            rc = NOTES_ENOMEM;
    }
    if (rc == NOTES_OK) {
        char h[17];
        if (na) {
            short_id(h, a[0]);
            snprintf(la, sizeof(la), "a/%.12s", h);
        } else {
            snprintf(la, sizeof(la), "a/(empty)");
        }
        if (b && nb) {
            short_id(h, b[0]);
            snprintf(lb, sizeof(lb), "b/%.12s", h);
        } else {
            snprintf(lb, sizeof(lb), b ? "b/(empty)" : "b/(current)");
        }
        rc = notes__diff(ta, lta, tb, ltb, la, lb, out, n);
    }
    notes__free(ta);
    notes__free(tb);
    return rc;
}

/* Entry that holds LV `lv` (entries with events hold contiguous ranges). */
static uint32_t entry_of_lv(const notes_doc *d, notes_lv lv)
{
    for (size_t i = 0; i < d->ne; i++) {
        const struct entry *en = &d->e[i];
        if (en->applied && en->nev && lv >= en->first_lv &&
            lv - en->first_lv < en->nev)
            return (uint32_t)i;
    }
    return NONE;
}

int notes_doc_authorship(notes_doc *d, uint32_t **changes, size_t *ncp)
{
    notes_lv *lvs;
    size_t n;
    *changes = NULL;
    *ncp = 0;
    if (d->has_pend) {
        notes__set_detail("commit local edits first");
        return NOTES_EINVAL;
    }
    int rc = notes__oplog_origins(d->op, NULL, SIZE_MAX, &lvs, &n);
    if (rc)
        return rc;
    /* Runs of consecutive LVs share an entry: look up once per run. */
    uint32_t cur = NONE;
    for (size_t i = 0; i < n; i++) {
        const struct entry *en = cur == NONE ? NULL : &d->e[cur];
        if (!en || lvs[i] < en->first_lv || lvs[i] - en->first_lv >= en->nev)
            cur = entry_of_lv(d, lvs[i]);
        lvs[i] = cur;
    }
    *changes = lvs;
    *ncp = n;
    return NOTES_OK;
}

/* ---- verification ---- */

static int add_item(notes_problem **v, size_t *n, int code, size_t change,
                    const char *msg)
{
    notes_problem *p = notes__realloc(*v, (*n + 1) * sizeof(*p));
    if (!p)
        return NOTES_ENOMEM;
    *v = p;
    p += (*n)++;
    p->code = code;
    p->change = change;
    snprintf(p->message, sizeof(p->message), "%s", msg);
    return NOTES_OK;
}

static int add_problem(notes_verify_report *rep, int code, size_t change,
                       const char *msg)
{
    return add_item(&rep->problems, &rep->nproblems, code, change, msg);
}

static int add_remark(notes_verify_report *rep, const char *msg)
{
    return add_item(&rep->remarks, &rep->nremarks, NOTES_OK, SIZE_MAX, msg);
}

static int verify_refusal(void *ctx, int rc)
{
    char msg[240];
    snprintf(msg, sizeof(msg), "%s", notes_last_detail());
    return add_problem(ctx, rc, SIZE_MAX, msg);
}

/* Log reader callback for verify: decode errors become problems. */
static int verify_collect_cb(void *ctx, const uint8_t *p, size_t n)
{
    void **pair = ctx;
    int rc = batch_decode(pair[0], p, n);
    if (rc && rc != NOTES_ENOMEM)
        rc = verify_refusal(pair[1], rc);
    return rc;
}

/*
 * Damaged bytes a writer set aside are kept beside the log as
 * ID.log.damaged-OFFSET[.N]: evidence the user should look at. While the
 * note lacks what was acknowledged it is a problem (assess says so too);
 * once the note is whole again (a peer's copy brought the changes back) it
 * is a remark. Torn tails (never acknowledged) are not reported.
 */
static int report_aside(notes_doc *d, int whole, notes_verify_report *rep)
{
    char hex[33], prefix[64];
    notes__hex(hex, d->id, 16);
    snprintf(prefix, sizeof(prefix), "%s.log.damaged-", hex);
    DIR *dir = opendir(d->r->notes_dir);
    struct dirent *de;
    int rc = NOTES_OK;
    if (!dir)
        return NOTES_OK;
    while (!rc && (de = readdir(dir)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
            strstr(de->d_name, ".tmp"))
            continue;
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "damaged bytes from offset %s of the log were set aside as "
                 "%s/%s%s", de->d_name + strlen(prefix), d->r->notes_dir,
                 de->d_name,
                 whole ? "; the note is whole again (delete the file when "
                         "you no longer need it)"
                       : "; inspect it, recover the note from a peer");
        rc = whole ? add_remark(rep, msg)
                   : add_problem(rep, NOTES_ECORRUPT, SIZE_MAX, msg);
    }
    closedir(dir);
    return rc;
}

int notes_doc_verify(notes_doc *d, notes_verify_report *rep)
{
    notes_doc *fresh = NULL;
    struct batch b = {0};
    void *pair[2];
    int rc;

    memset(rep, 0, sizeof(*rep));
    pair[0] = &b;
    pair[1] = rep;
    if ((rc = doc_alloc(d->r, d->id, &fresh)))
        return rc;
    if (!d->r) {
        /* A memory document: check its changes again from their bytes. */
        for (size_t i = 0; i < d->ne && !rc; i++)
            rc = verify_collect_cb(pair, d->e[i].c->bytes, d->e[i].c->nbytes);
    } else {
        /* The log from disk, every signature checked (no local MAC), and
         * judged against the replica's state like any read. */
        char *path = notes__replica_log_path(d->r, d->id);
        if (!path) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        if ((rc = notes__replica_lock(d->r, 0))) {
            notes__free(path);
            goto out;
        }
        rc = load_state(fresh);
        if (rc == NOTES_OK)
            rc = notes__log_open(path, d->id, 0, &fresh->log);
        if (rc == NOTES_OK)
            rc = notes__log_read(fresh->log, verify_collect_cb, pair);
        notes__replica_unlock(d->r);
        notes__free(path);
        if (rc == NOTES_ENOTFOUND) {
            rc = NOTES_OK; /* no log: assess says whether one is missing */
        } else if (rc && rc != NOTES_ENOMEM) {
            char msg[240];
            snprintf(msg, sizeof(msg), "%s", notes_last_detail());
            rc = add_problem(rep, rc, SIZE_MAX, msg);
        }
    }
    if (rc ||
        (rc = batch_ingest(fresh, &b, 0, verify_refusal, rep, &rep->signatures)))
        goto out;
    if (d->r) {
        /* Refused changes were reported one by one above. */
        fresh->nbad = 0;
        assess(fresh);
        if (fresh->damage[0] &&
            (rc = fresh->problem ? add_problem(rep, fresh->problem, SIZE_MAX,
                                               fresh->damage)
                                 : add_remark(rep, fresh->damage)))
            goto out;
    }
    /* Equivocations: every seq slot with more than one change. */
    for (size_t ai = 0; ai < fresh->na; ai++) {
        const struct author *a = &fresh->a[ai];
        for (uint32_t s = 0; s < a->nseq; s++) {
            if (a->slot_count[s] < 2)
                continue;
            char fpr[NOTES_FPR_STRLEN], msg[400], ids[80] = "";
            uint32_t win = slot_winner(fresh, (uint32_t)ai, s + 1);
            size_t listed = 0, o = 0;
            notes_key_fingerprint(a->pk, fpr);
            /* Name the first three (log order), so they can be looked at. */
            for (size_t i = 0; i < fresh->ne && listed < 3; i++) {
                if (fresh->e[i].author != ai || fresh->e[i].c->seq != s + 1)
                    continue;
                char w[17];
                short_id(w, fresh->e[i].c->id);
                o += (size_t)snprintf(ids + o, sizeof(ids) - o, "%s%s",
                                      listed ? ", " : "", w);
                listed++;
            }
            snprintf(msg, sizeof(msg),
                     "key %s equivocated: it signed %u different changes "
                     "with seq %u (%s%s); all are kept as evidence and "
                     "applied as concurrent branches, with what others "
                     "built on them; do not trust this key",
                     fpr, a->slot_count[s], s + 1, ids,
                     a->slot_count[s] > listed ? ", ..." : "");
            if ((rc = add_problem(rep, NOTES_EEQUIVOCATION, win, msg)))
                goto out;
        }
    }
    if (d->r && (rc = report_aside(d, !fresh->problem, rep)))
        goto out;
    rep->changes = fresh->ne;
    rep->authors = fresh->na;
out:
    batch_release(&b);
    notes_doc_free(fresh);
    if (rc == NOTES_OK && rep->nproblems)
        rc = rep->problems[0].code;
    return rc;
}

void notes_verify_report_clear(notes_verify_report *rep)
{
    if (!rep)
        return;
    notes__free(rep->problems);
    notes__free(rep->remarks);
    memset(rep, 0, sizeof(*rep));
}

/* ---- people and confirmations ---- */

int notes_doc_person(const notes_doc *d, const uint8_t device[32],
                     notes_person_info *out)
{
    memset(out, 0, sizeof(*out));
    out->revoked_change = SIZE_MAX;
    struct dev *v = dev_find(d, device);
    if (!v || !v->has_person)
        return NOTES_ENOTFOUND;
    if (!v->name_z) {
        v->name_z = notes__strndup(v->name, v->namelen);
        if (!v->name_z)
            return NOTES_ENOMEM;
    }
    out->contested = v->contested;
    if (!v->contested) {
        out->person = v->person;
        out->name = v->name_z;
    }
    out->linked_ms = v->linked_ms;
    if (v->revoke_entry != NONE) {
        out->revoked = 1;
        out->revoked_ms = v->revoked_ms;
        out->revoked_change = v->revoke_entry;
    }
    return NOTES_OK;
}

int notes_doc_change_before_revocation(notes_doc *d, size_t i)
{
    if (i >= d->ne)
        return -1;
    const uint8_t *author = d->e[i].c->author;
    int any = 0, before = 0;
    uint8_t *seen = NULL;
    for (size_t k = 0; k < d->nrev && !before; k++) {
        if (memcmp(d->rev[k].device, author, 32) != 0)
            continue;
        any = 1;
        if (!seen && !(seen = notes__malloc(d->ne)))
            return -1;
        memset(seen, 0, d->ne);
        if (mark_ancestors(d, d->rev[k].entry, seen, 1) != NOTES_OK) {
            notes__free(seen);
            return -1;
        }
        before = seen[i] != 0;
    }
    notes__free(seen);
    return any ? before : -1;
}

size_t notes_doc_confirmation_count(const notes_doc *d)
{
    return d->nconf;
}

int notes_doc_confirmation(const notes_doc *d, size_t i,
                           notes_confirmation *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= d->nconf)
        return NOTES_EINVAL;
    const struct entry *en = &d->e[d->conf[i].entry];
    const struct notes__op *o = &en->c->ops[d->conf[i].op];
    out->change = d->conf[i].entry;
    out->signer = en->c->author;
    out->anchor = o->key;
    out->anchor_event = notes__load_u32le(o->key + 32);
    out->owner = (const char *)o->key + NOTES__ANCHOR_LEN;
    out->owner_len = o->keylen - NOTES__ANCHOR_LEN;
    out->text = (const char *)o->text;
    out->text_len = o->textlen;
    return NOTES_OK;
}

int notes_doc_origins(notes_doc *d, const uint8_t (*version)[32], size_t n,
                      uint32_t **changes, uint32_t **events, size_t *ncp)
{
    notes_lv *v = NULL, *lvs = NULL;
    uint32_t nv = 0;
    size_t count = 0;
    int rc;
    *changes = NULL;
    *events = NULL;
    *ncp = 0;
    if (d->has_pend && pend_events(d)) {
        notes__set_detail("commit local edits first");
        return NOTES_EINVAL;
    }
    for (size_t i = 0; version && i < n; i++) {
        uint32_t e = hash_find(d, version[i]);
        if (e == NONE || !d->e[e].applied) {
            notes__set_detail("version names a change this note does not "
                              "have");
            return NOTES_ENOTFOUND;
        }
    }
    if (n > UINT32_MAX)
        return NOTES_EINVAL;
    if (version && (rc = version_of(d, version, (uint32_t)n, &v, &nv)))
        return rc;
    rc = notes__oplog_origins(d->op, version ? v : NULL,
                              version ? nv : SIZE_MAX, &lvs, &count);
    notes__free(v);
    if (rc)
        return rc;
    uint32_t *ch = notes__malloc((count ? count : 1) * sizeof(*ch));
    uint32_t *ev = notes__malloc((count ? count : 1) * sizeof(*ev));
    if (!ch || !ev) {
        notes__free(ch);
        notes__free(ev);
        notes__free(lvs);
        return NOTES_ENOMEM;
    }
    uint32_t cur = NONE;
    for (size_t i = 0; i < count; i++) {
        const struct entry *en = cur == NONE ? NULL : &d->e[cur];
        if (!en || lvs[i] < en->first_lv || lvs[i] - en->first_lv >= en->nev)
            cur = entry_of_lv(d, lvs[i]);
        ch[i] = cur;
        ev[i] = cur == NONE ? 0 : (uint32_t)(lvs[i] - d->e[cur].first_lv);
    }
    notes__free(lvs);
    *changes = ch;
    *events = ev;
    *ncp = count;
    return NOTES_OK;
}

int notes_doc_confirm(notes_doc *d, size_t cp, const char *owner,
                      const char *text)
{
    uint32_t *ch, *ev;
    size_t n, olen = owner ? strlen(owner) : 0, tlen = text ? strlen(text) : 0;
    uint8_t key[NOTES__ANCHOR_LEN + NOTES__OWNER_MAX];
    int rc;
    if (!text || tlen == 0 || tlen > NOTES__VALUE_MAX || olen > NOTES__OWNER_MAX ||
        !notes__utf8_valid((const uint8_t *)text, tlen) ||
        (olen && !notes__utf8_valid((const uint8_t *)owner, olen)))
        return NOTES_EINVAL;
    if ((rc = notes_doc_origins(d, NULL, 0, &ch, &ev, &n)))
        return rc;
    if (cp >= n || ch[cp] == NONE) {
        notes__free(ch);
        notes__free(ev);
        notes__set_detail("no character at %zu to anchor the confirmation", cp);
        return NOTES_EINVAL;
    }
    memcpy(key, d->e[ch[cp]].c->id, 32);
    notes__store_u32le(key + 32, ev[cp]);
    for (size_t i = 0; i < olen; i++) /* bytes, not a C string */
        key[NOTES__ANCHOR_LEN + i] = (uint8_t)owner[i];
    notes__free(ch);
    notes__free(ev);
    if ((rc = begin_pending(d)) || (rc = flush_pending_op(d)))
        return rc;
    return notes__builder_blob(&d->pend, NOTES__K_CONFIRM, key,
                               NOTES__ANCHOR_LEN + olen,
                               (const uint8_t *)text, tlen);
}

int notes_doc_publish_certs(notes_doc *d, size_t *added)
{
    int rc;
    *added = 0;
    if (!d->r)
        return NOTES_OK;
    if (d->has_pend) /* begin_pending added them already */
        return NOTES_OK;
    const struct notes__cert *c;
    size_t n, missing = 0;
    if ((rc = notes__replica_certs(d->r, &c, &n)))
        return rc;
    for (size_t i = 0; i < n; i++)
        missing += !has_cert(d, c[i].bytes, c[i].n);
    const struct dev *me = dev_find(d, d->r->pk);
    if (!missing && !(me && me->has_person))
        return NOTES_OK;
    if (!missing) {
        /* Nothing to write; still adopt a link of ours a peer brought. */
        return me->link ? notes__replica_add_cert(d->r, NOTES__K_LINK,
                                                  me->link, me->linklen)
                        : NOTES_OK;
    }
    if ((rc = begin_pending(d)))
        return rc;
    *added = missing;
    return NOTES_OK;
}

int notes_doc_change_deps(const notes_doc *d, size_t i,
                          const uint8_t (**deps)[32], size_t *n)
{
    *deps = NULL;
    *n = 0;
    if (i >= d->ne)
        return NOTES_EINVAL;
    *deps = (const uint8_t(*)[32])d->e[i].c->deps;
    *n = d->e[i].c->ndeps;
    return NOTES_OK;
}

int notes_bundle_file_open(const uint8_t *bytes, size_t n, notes_doc **out)
{
    notes_doc *d;
    size_t added;
    uint8_t *again = NULL;
    size_t nagain = 0;
    *out = NULL;
    if (n < 16 + 4 || memcmp(bytes + 16, "NTB", 3) != 0) {
        notes__set_detail("not a bundle file (a note id, then \"NTB\")");
        return NOTES_ECORRUPT;
    }
    int rc = notes_doc_memory(NULL, bytes, &d);
    if (rc)
        return rc;
    if ((rc = notes_doc_merge(d, bytes + 16, n - 16, &added)))
        goto fail;
    if (d->ne == 0) {
        notes__set_detail("the bundle holds no changes");
        rc = NOTES_ECORRUPT;
        goto fail;
    }
    /* Signatures cover the changes, not the container: compression
     * settings, frame headers or a different order could vary unseen. The
     * canonical form closes that gap. */
    if ((rc = notes_doc_export(d, NULL, 0, &again, &nagain)))
        goto fail;
    if (nagain != n - 16 || memcmp(again, bytes + 16, nagain) != 0) {
        size_t at = 0;
        while (at < nagain && at < n - 16 && again[at] == bytes[16 + at])
            at++;
        notes__set_detail("its changes verify, but the file is not the bytes "
                          "notes writes for them (first difference at byte "
                          "%zu): it was altered", at + 16);
        rc = NOTES_ECORRUPT;
        goto fail;
    }
    notes__free(again);
    *out = d;
    return NOTES_OK;
fail:
    notes__free(again);
    notes_doc_free(d);
    return rc;
}
