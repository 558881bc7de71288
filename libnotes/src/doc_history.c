/*
 * doc_history.c: history: change info, the text at a change, diffs between
 * versions, and who wrote each part of the text.
 */
#include <stdlib.h>
#include <stdio.h>

#include "doc_internal.h"

int notes_doc_author_equivocated(const notes_doc *d, const uint8_t pk[32])
{
    if (!d || !pk)
        return 0;
    NOTES__DOC_FULL(d, 0);
    for (size_t i = 0; i < d->na; i++)
        if (memcmp(d->a[i].pk, pk, 32) == 0)
            return d->a[i].forked;
    return 0;
}

size_t notes_doc_change_count(const notes_doc *d)
{
    NOTES__DOC_FULL(d, 0);
    return d->ne;
}

int notes_doc_change(const notes_doc *d, size_t i, notes_change_info *out)
{
    NOTES__DOC_FULL_RC(d);
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
    NOTES__DOC_FULL_RC(d);
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

/*
 * The text version (as LVs) of a version a caller names by change ids:
 * each must be a change of the note, applied.
 */
int notes__doc_version_at(notes_doc *d, const uint8_t (*version)[32],
                          size_t n, notes_lv **v, uint32_t *nv)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t e = notes__doc_hash_find(d, version[i]);
        if (e == NONE || !d->e[e].applied) {
            notes__set_detail("version names a change this note does not "
                              "have");
            return NOTES_ENOTFOUND;
        }
    }
    if (n > UINT32_MAX)
        return NOTES_EINVAL;
    return notes__doc_version_of(d, version, (uint32_t)n, v, nv);
}

int notes_doc_text_at(notes_doc *d, const uint8_t (*version)[32], size_t n,
                      char **text, size_t *nbytes)
{
    NOTES__DOC_FULL_RC(d);
    notes_lv *v;
    uint32_t nv;
    int rc;
    *text = NULL;
    if ((rc = notes__doc_version_at(d, version, n, &v, &nv)))
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
    NOTES__DOC_FULL_RC(d);
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
    NOTES__DOC_FULL_RC(d);
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
            notes__doc_short_id(h, a[0]);
            snprintf(la, sizeof(la), "a/%.12s", h);
        } else {
            snprintf(la, sizeof(la), "a/(empty)");
        }
        if (b && nb) {
            notes__doc_short_id(h, b[0]);
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

static int holds(const struct entry *en, notes_lv lv)
{
    return en->applied && en->nev && lv >= en->first_lv &&
           lv - en->first_lv < en->nev;
}

static int cmp_lvx(const void *a, const void *b)
{
    notes_lv x = ((const struct notes__lvx *)a)->first_lv,
             y = ((const struct notes__lvx *)b)->first_lv;
    return (x > y) - (x < y);
}

/* The applied entries with text events, by first LV. Entries are applied
 * in log order and take the next LVs, so the order is usually the log's
 * already (then no sort). */
static void lvx_build(notes_doc *d)
{
    d->lvx_ok = 0;
    d->nlvx = 0;
    struct notes__lvx *v = notes__realloc(d->lvx, (d->ne ? d->ne : 1) * sizeof(*v));
    if (!v)
        return;
    d->lvx = v;
    int sorted = 1;
    for (size_t i = 0; i < d->ne; i++) {
        const struct entry *en = &d->e[i];
        if (!en->applied || !en->nev)
            continue;
        if (d->nlvx && v[d->nlvx - 1].first_lv > en->first_lv)
            sorted = 0;
        v[d->nlvx].first_lv = en->first_lv;
        v[d->nlvx++].entry = (uint32_t)i;
    }
    if (!sorted)
        qsort(v, d->nlvx, sizeof(*v), cmp_lvx);
    d->lvx_ne = d->ne;
    d->lvx_gen = d->rebuilds;
    d->lvx_ok = 1;
}

/*
 * Entry that holds LV `lv` (entries with events hold contiguous ranges).
 * A binary search: the authorship of a note typed key by key asks this
 * for most characters, over as many entries (a scan per character made
 * the page's outline quadratic in the note's history).
 */
uint32_t notes__doc_entry_of_lv(const notes_doc *cd, notes_lv lv)
{
    union {
        const notes_doc *c;
        notes_doc *m;
    } u = {cd};
    notes_doc *d = u.m; /* the index is a cache: built on demand */
    if (!d->lvx_ok || d->lvx_ne != d->ne || d->lvx_gen != d->rebuilds)
        lvx_build(d);
    if (d->lvx_ok) {
        /* Text typed in order asks for the next change after the last
         * one found: try there before searching. */
        for (size_t k = d->lvx_last; k < d->lvx_last + 2 && k < d->nlvx; k++)
            if (d->lvx[k].entry < d->ne && holds(&d->e[d->lvx[k].entry], lv)) {
                d->lvx_last = k;
                return d->lvx[k].entry;
            }
        size_t lo = 0, hi = d->nlvx;
        while (lo < hi) { /* past the last entry whose first LV is <= lv */
            size_t mid = lo + (hi - lo) / 2;
            if (d->lvx[mid].first_lv <= lv)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo && d->lvx[lo - 1].entry < d->ne &&
            holds(&d->e[d->lvx[lo - 1].entry], lv)) {
            d->lvx_last = lo - 1;
            return d->lvx[lo - 1].entry;
        }
    }
    /* Not in the index (an entry applied since it was built): scan, and
     * build it again next time. */
    for (size_t i = 0; i < d->ne; i++)
        if (holds(&d->e[i], lv)) {
            d->lvx_ok = 0;
            return (uint32_t)i;
        }
    return NONE;
}

int notes_doc_authorship(notes_doc *d, uint32_t **changes, size_t *ncp)
{
    NOTES__DOC_FULL_RC(d);
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
    uint32_t cur = NONE;
    for (size_t i = 0; i < n; i++) {
        cur = notes__doc_entry_of_lv_from(d, cur, lvs[i]);
        lvs[i] = cur;
    }
    *changes = lvs;
    *ncp = n;
    return NOTES_OK;
}

int notes_text_diff(const char *a, size_t na, const char *b, size_t nb,
                    const char *label_a, const char *label_b, char **out,
                    size_t *n)
{
    if (!out || !n || (!a && na) || (!b && nb) || !label_a || !label_b)
        return NOTES_EINVAL;
    return notes__diff(a ? a : "", na, b ? b : "", nb, label_a, label_b, out,
                       n);
}

int notes_doc_at(notes_doc *d, const uint8_t (*version)[32], size_t n,
                 notes_doc **out)
{
    NOTES__DOC_FULL_RC(d);
    struct batch b = {0};
    uint8_t *seen;
    int rc;
    *out = NULL;
    if (d->ne > UINT32_MAX)
        return NOTES_EINVAL;
    if (!(seen = notes__calloc(d->ne + 1, 1)))
        return NOTES_ENOMEM;
    /* Ancestors through prev too: a holder of a change has its author's
     * earlier ones, as a replica that had only this version would. */
    for (size_t i = 0; i < n; i++) {
        uint32_t e = notes__doc_hash_find(d, version[i]);
        if (e == NONE || !d->e[e].applied) {
            notes__set_detail("version names a change this note does not "
                              "have");
            notes__free(seen);
            return NOTES_ENOTFOUND;
        }
        if (!seen[e] && (rc = notes__doc_mark_ancestors(d, e, seen, 1))) {
            notes__free(seen);
            return rc;
        }
    }
    if ((rc = notes_doc_memory(NULL, d->id, out))) {
        notes__free(seen);
        return rc;
    }
    /* Log order is causal order. These changes were verified when d read
     * them: no signature is checked again (an unsigned change's covering
     * signature may come after the version). */
    for (size_t i = 0; i < d->ne && rc == NOTES_OK; i++)
        if (seen[i] && d->e[i].applied)
            rc = notes__doc_batch_decode(&b, d->e[i].c->bytes,
                                         d->e[i].c->nbytes, d->e[i].c->id);
    b.trusted = SIZE_MAX;
    if (rc == NOTES_OK)
        rc = notes__doc_batch_ingest(*out, &b, 1, NULL, NULL, NULL);
    notes__doc_batch_release(&b);
    notes__free(seen);
    if (rc) {
        notes_doc_free(*out);
        *out = NULL;
    }
    return rc;
}

int notes_doc_change_op(const notes_doc *d, size_t i, size_t k,
                        notes_op_info *out)
{
    NOTES__DOC_FULL_RC(d);
    memset(out, 0, sizeof(*out));
    if (i >= d->ne || k >= d->e[i].c->nops)
        return NOTES_EINVAL;
    const struct notes__op *o = &d->e[i].c->ops[k];
    out->kind = o->kind;
    switch (o->kind) {
    case NOTES__K_INS:
        out->count = o->count;
        out->value = (const char *)o->text;
        out->valuelen = o->textlen;
        break;
    case NOTES__K_DEL:
    case NOTES__K_DELBACK:
        out->kind = NOTES_OP_DELETE;
        out->count = o->count;
        break;
    case NOTES__K_SET:
    case NOTES__K_UNSET:
    case NOTES__K_ADD:
    case NOTES__K_REMOVE:
    case NOTES__K_NAME:
        out->key = (const char *)o->key;
        out->keylen = o->key ? o->keylen : 0;
        out->value = (const char *)o->text;
        out->valuelen = o->text ? o->textlen : 0;
        break;
    case NOTES__K_LINK: {
        struct notes__link l;
        if (notes__link_parse(o->text, o->textlen, &l) == NOTES_OK) {
            out->device = l.device;
            out->person = l.person;
            out->value = l.name;
            out->valuelen = l.namelen;
        }
        break;
    }
    case NOTES__K_REVOKE: {
        struct notes__revoke rv;
        if (notes__revoke_parse(o->text, o->textlen, &rv) == NOTES_OK) {
            out->device = rv.link.device;
            out->person = rv.link.person;
            out->value = rv.link.name;
            out->valuelen = rv.link.namelen;
        }
        break;
    }
    case NOTES__K_CONFIRM:
        /* key: the item's anchor, then its owner */
        if (o->key && o->keylen >= NOTES__ANCHOR_LEN) {
            out->key = (const char *)o->key + NOTES__ANCHOR_LEN;
            out->keylen = o->keylen - NOTES__ANCHOR_LEN;
        }
        out->value = (const char *)o->text;
        out->valuelen = o->text ? o->textlen : 0;
        break;
    default:
        break;
    }
    return NOTES_OK;
}
