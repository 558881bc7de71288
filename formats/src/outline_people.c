/*
 * outline_people.c: who stands behind a note's items: the person each
 * author key speaks for, each item's stable id (the CRDT id of its first
 * character), and the note's signed confirmations evaluated against the
 * items. Rules: docs/formats.md ("Confirmations").
 */
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

/* notes_doc_origins marks a code point of no change with this. */
#define NO_CHANGE UINT32_MAX

void notes_fmt_item_id(const uint8_t change[32], uint32_t event, char out[17])
{
    uint8_t in[36], h[8];
    memcpy(in, change, 32);
    notes__store_u32le(in + 32, event);
    /* BLAKE2b with an 8-byte output (not a cut 32-byte one): libsodium
     * takes any output length from 1 to 64, through libnotes' wrapper. */
    notes__hash(h, sizeof(h), in, sizeof(in), NULL, 0);
    notes__hex(out, h, sizeof(h));
}

int notes_fmt_item_find(const notes_fmt_outline *o, const char *prefix,
                        size_t *index)
{
    char want[17];
    size_t n = prefix ? strlen(prefix) : 0, found = SIZE_MAX;
    if (!o || n == 0 || n > 16)
        return notes_fmt__fail(NOTES_EINVAL, "an item id has 1 to 16 hex digits");
    for (size_t i = 0; i < n; i++) {
        char c = prefix[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return notes_fmt__fail(NOTES_EINVAL, "an item id has hex digits only");
        want[i] = c;
    }
    for (size_t i = 0; i < o->nitems; i++) {
        if (!o->items[i].has_anchor || memcmp(o->items[i].id, want, n) != 0)
            continue;
        if (found != SIZE_MAX)
            return notes_fmt__fail(NOTES_EINVAL, "item id %.*s is ambiguous",
                                   (int)n, want);
        found = i;
    }
    if (found == SIZE_MAX)
        return notes_fmt__fail(NOTES_ENOTFOUND, "no item has id %.*s", (int)n,
                               want);
    if (index)
        *index = found;
    return NOTES_OK;
}

/* ---- people ---- */

static int person_of(notes_doc *d, const uint8_t device[32],
                     notes_fmt_person *p)
{
    notes_person_info pi;
    memset(p, 0, sizeof(*p));
    memcpy(p->device, device, 32);
    p->revoked_change = SIZE_MAX;
    int rc = notes_doc_person(d, device, &pi);
    if (rc == NOTES_ENOTFOUND)
        return NOTES_OK;
    if (rc)
        return rc;
    p->contested = pi.contested;
    p->revoked = pi.revoked;
    p->revoked_ms = pi.revoked_ms;
    p->revoked_change = pi.revoked ? pi.revoked_change : SIZE_MAX;
    /* a contested device names nobody, whatever one of its links says */
    if (pi.person && !pi.contested) {
        p->has_person = 1;
        memcpy(p->person, pi.person, 32);
        if (pi.name && !(p->name = strdup(pi.name)))
            return NOTES_ENOMEM;
    }
    return NOTES_OK;
}

void notes_fmt__person_release(notes_fmt_person *p)
{
    free(p->name);
    p->name = NULL;
}

void notes_fmt__confirms_release(notes_fmt_confirm *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        notes_fmt__person_release(&c[i].by);
        free(c[i].text);
        free(c[i].owner);
    }
    free(c);
}

static int add_people(notes_doc *d, notes_fmt_outline *o)
{
    for (size_t i = 0; i < o->nitems; i++) {
        notes_fmt_item *it = &o->items[i];
        if (!it->nauthors)
            continue;
        it->people = calloc(it->nauthors, sizeof(*it->people));
        if (!it->people)
            return NOTES_ENOMEM;
        for (size_t a = 0; a < it->nauthors; a++) {
            int rc = person_of(d, it->authors[a], &it->people[a]);
            if (rc)
                return rc;
        }
    }
    return NOTES_OK;
}

/* Whether a revoked device wrote some of each item, and whether before its
 * revocation (the revocation had seen the change) or not. */
static void add_revocations(notes_doc *d, notes_fmt_outline *o,
                            const uint32_t *ch, size_t ncp)
{
    for (size_t i = 0; i < o->nitems; i++) {
        notes_fmt_item *it = &o->items[i];
        int any = 0;
        for (size_t a = 0; a < it->nauthors; a++)
            any |= it->people[a].revoked;
        if (!any)
            continue;
        uint32_t last = NO_CHANGE;
        for (size_t k = it->cp_start; k < it->cp_start + it->cp_len && k < ncp;
             k++) {
            if (ch[k] == NO_CHANGE || ch[k] == last)
                continue;
            last = ch[k];
            int before = notes_doc_change_before_revocation(d, ch[k]);
            if (before == 0) {
                it->revocation = NOTES_FMT_REV_AFTER;
                break;
            }
            if (before == 1)
                it->revocation = NOTES_FMT_REV_BEFORE;
        }
    }
}

/* ---- item anchors ---- */

static int add_anchors(notes_doc *d, notes_fmt_outline *o, const uint32_t *ch,
                       const uint32_t *ev, size_t ncp)
{
    for (size_t i = 0; i < o->nitems; i++) {
        notes_fmt_item *it = &o->items[i];
        notes_change_info ci;
        if (!it->cp_len || it->cp_start >= ncp ||
            ch[it->cp_start] == NO_CHANGE)
            continue;
        int rc = notes_doc_change(d, ch[it->cp_start], &ci);
        if (rc)
            return rc;
        memcpy(it->anchor, ci.id, 32);
        it->anchor_event = ev[it->cp_start];
        it->has_anchor = 1;
        notes_fmt_item_id(it->anchor, it->anchor_event, it->id);
    }
    return NOTES_OK;
}

/* ---- the note at the version a confirmation was signed at ---- */

/* One checked-out version: its outline and the origin of each code point.
 * Kept for the whole evaluation, so that the confirmations signed at one
 * version cost one checkout. */
struct ver {
    const uint8_t (*deps)[32]; /* borrowed from the doc */
    size_t ndeps;
    notes_fmt_outline o;
    uint32_t *ch, *ev;
    size_t ncp;
};

struct eval {
    notes_doc *d;
    const char *const *participants;
    struct ver *v;
    size_t nv, capv;
};

static void ver_release(struct ver *v)
{
    notes_fmt_outline_clear(&v->o);
    notes_free(v->ch);
    notes_free(v->ev);
}

static int ver_load(struct eval *e, const uint8_t (*deps)[32], size_t ndeps,
                    struct ver *v)
{
    char *text = NULL;
    size_t n = 0;
    int rc;
    memset(v, 0, sizeof(*v));
    v->deps = deps;
    v->ndeps = ndeps;
    if (ndeps == 0)
        return NOTES_OK; /* the empty note */
    if ((rc = notes_doc_text_at(e->d, deps, ndeps, &text, &n)))
        return rc;
    rc = notes_fmt_outline_text(text, n, e->participants, &v->o);
    size_t cps = notes_fmt__cp_count(text, n);
    notes_free(text);
    if (!rc)
        rc = notes_doc_origins(e->d, deps, ndeps, &v->ch, &v->ev, &v->ncp);
    if (!rc && v->ncp != cps)
        rc = NOTES_ECORRUPT; /* text and origins disagree: a libnotes bug */
    if (rc)
        ver_release(v);
    return rc;
}

/* The version change i was made at (its deps), checked out once. */
static int version_of(struct eval *e, size_t change, struct ver **out)
{
    const uint8_t(*deps)[32];
    size_t ndeps;
    int rc = notes_doc_change_deps(e->d, change, &deps, &ndeps);
    if (rc)
        return rc;
    for (size_t i = 0; i < e->nv; i++)
        if (e->v[i].ndeps == ndeps &&
            (ndeps == 0 || memcmp(e->v[i].deps, deps, ndeps * 32) == 0)) {
            *out = &e->v[i];
            return NOTES_OK;
        }
    if (e->nv == e->capv) {
        size_t cap = e->capv ? e->capv * 2 : 4;
        struct ver *nv = realloc(e->v, cap * sizeof(*nv));
        if (!nv)
            return NOTES_ENOMEM;
        e->v = nv;
        e->capv = cap;
    }
    if ((rc = ver_load(e, deps, ndeps, &e->v[e->nv])))
        return rc;
    *out = &e->v[e->nv++];
    return NOTES_OK;
}

/* Whether item `it` reads `text` and is owned by `owner` (item->owner, or
 * "" when it has none: what a confirming client signs). */
static int item_matches(const notes_fmt_item *it, const notes_confirmation *c)
{
    const char *owner = it->owner ? it->owner : "";
    return strlen(it->text) == c->text_len &&
           memcmp(it->text, c->text, c->text_len) == 0 &&
           strlen(owner) == c->owner_len &&
           memcmp(owner, c->owner, c->owner_len) == 0;
}

/* Whether, at the version it was signed at, the anchor of c started an
 * item with c's text and owner. */
static int matched_when_signed(struct eval *e, const notes_confirmation *c,
                               int *matched)
{
    char hexid[65];
    static const char digits[] = "0123456789abcdef";
    size_t anchor;
    struct ver *v;
    *matched = 0;
    for (size_t i = 0; i < 32; i++) {
        hexid[2 * i] = digits[c->anchor[i] >> 4];
        hexid[2 * i + 1] = digits[c->anchor[i] & 15];
    }
    hexid[64] = 0;
    int rc = notes_doc_find_change(e->d, hexid, &anchor);
    if (rc == NOTES_ENOTFOUND)
        return NOTES_OK; /* names a change this note does not have */
    if (rc)
        return rc;
    if ((rc = version_of(e, c->change, &v)))
        return rc;
    size_t k;
    for (k = 0; k < v->ncp; k++)
        if (v->ch[k] == anchor && v->ev[k] == c->anchor_event)
            break;
    for (size_t i = 0; k < v->ncp && i < v->o.nitems; i++)
        if (v->o.items[i].cp_start == k && v->o.items[i].cp_len) {
            *matched = item_matches(&v->o.items[i], c);
            break;
        }
    return NOTES_OK;
}

/* Append a zeroed confirmation to *arr (n entries), growing by doubling. */
static notes_fmt_confirm *confirm_push(notes_fmt_confirm **arr, size_t *n)
{
    if ((*n & (*n - 1)) == 0) {
        size_t cap = *n ? *n * 2 : 1;
        notes_fmt_confirm *na = realloc(*arr, cap * sizeof(*na));
        if (!na)
            return NULL;
        *arr = na;
    }
    notes_fmt_confirm *c = &(*arr)[(*n)++];
    memset(c, 0, sizeof(*c));
    return c;
}

static int evaluate(struct eval *e, notes_fmt_outline *o, size_t index)
{
    notes_confirmation c;
    notes_change_info ci;
    int rc = notes_doc_confirmation(e->d, index, &c);
    if (rc || (rc = notes_doc_change(e->d, c.change, &ci)))
        return rc;
    notes_fmt_item *it = NULL;
    for (size_t i = 0; i < o->nitems && !it; i++)
        if (o->items[i].has_anchor &&
            o->items[i].anchor_event == c.anchor_event &&
            memcmp(o->items[i].anchor, c.anchor, 32) == 0)
            it = &o->items[i];
    notes_fmt_confirm *fc = it ? confirm_push(&it->confirms, &it->nconfirms)
                               : confirm_push(&o->orphan_confirms, &o->norphans);
    if (!fc)
        return NOTES_ENOMEM;
    fc->index = index;
    fc->change = c.change;
    memcpy(fc->change_id, ci.id, 32);
    memcpy(fc->anchor, c.anchor, 32);
    fc->anchor_event = c.anchor_event;
    notes_fmt_item_id(c.anchor, c.anchor_event, fc->item_id);
    fc->text = notes__strndup(c.text, c.text_len);
    fc->owner = notes__strndup(c.owner, c.owner_len);
    if (!fc->text || !fc->owner)
        return NOTES_ENOMEM;
    if ((rc = person_of(e->d, c.signer, &fc->by)))
        return rc;

    /* The text's verdict: the current item first, so that a confirmation
     * of the current text costs no checkout. */
    if (it && item_matches(it, &c)) {
        fc->text_state = NOTES_FMT_CONF_CONFIRMED;
    } else {
        int then;
        if ((rc = matched_when_signed(e, &c, &then)))
            return rc;
        fc->text_state = then ? NOTES_FMT_CONF_CHANGED
                              : NOTES_FMT_CONF_WRONG_TEXT;
    }

    /* The verdict: no item, then the signer, then the text. A revoked
     * device's confirmation stands only when the revocation was made after
     * seeing it; one concurrent with the revocation may be the thief's. */
    if (!it)
        fc->state = NOTES_FMT_CONF_NO_ITEM;
    else if (!fc->by.has_person)
        fc->state = NOTES_FMT_CONF_UNKNOWN_KEY;
    else if (fc->by.revoked &&
             notes_doc_change_before_revocation(e->d, c.change) != 1)
        fc->state = NOTES_FMT_CONF_REVOKED;
    else
        fc->state = fc->text_state;

    if (it && fc->state == NOTES_FMT_CONF_CONFIRMED) {
        size_t k;
        for (k = 0; k + 1 < it->nconfirms; k++)
            if (it->confirms[k].counted &&
                memcmp(it->confirms[k].by.person, fc->by.person, 32) == 0)
                break;
        if (k + 1 == it->nconfirms) {
            fc->counted = 1;
            it->confirmed_by++;
        }
    }
    return NOTES_OK;
}

int notes_fmt__outline_provenance(notes_doc *d, notes_fmt_outline *o)
{
    uint32_t *ch = NULL, *ev = NULL;
    size_t ncp = 0;
    int rc;
    if (notes_doc_dirty(d))
        return NOTES_OK;
    if ((rc = add_people(d, o)))
        return rc;
    if ((rc = notes_doc_origins(d, NULL, 0, &ch, &ev, &ncp)))
        return rc;
    rc = add_anchors(d, o, ch, ev, ncp);
    if (!rc)
        add_revocations(d, o, ch, ncp);
    notes_free(ch);
    notes_free(ev);
    struct eval e = {d, notes_doc_list(d, "participants"), NULL, 0, 0};
    size_t nconf = notes_doc_confirmation_count(d);
    for (size_t i = 0; i < nconf && !rc; i++)
        rc = evaluate(&e, o, i);
    for (size_t i = 0; i < e.nv; i++)
        ver_release(&e.v[i]);
    free(e.v);
    return rc;
}
