/*
 * doc_people.c: people and confirmations: who a device speaks for, the
 * confirmations of decisions and action items, and where each came from.
 */
#include "doc_internal.h"

int notes_doc_person(const notes_doc *d, const uint8_t device[32],
                     notes_person_info *out)
{
    NOTES__DOC_FULL_RC(d);
    memset(out, 0, sizeof(*out));
    out->revoked_change = SIZE_MAX;
    struct dev *v = notes__doc_dev_find(d, device);
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
    NOTES__DOC_FULL(d, -1);
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
        if (notes__doc_mark_ancestors(d, d->rev[k].entry, seen, 1) !=
            NOTES_OK) {
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
    NOTES__DOC_FULL(d, 0);
    return d->nconf;
}

int notes_doc_confirmation(const notes_doc *d, size_t i,
                           notes_confirmation *out)
{
    NOTES__DOC_FULL_RC(d);
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
    NOTES__DOC_FULL_RC(d);
    notes_lv *v = NULL, *lvs = NULL;
    uint32_t nv = 0;
    size_t count = 0;
    int rc;
    *changes = NULL;
    *events = NULL;
    *ncp = 0;
    if (d->has_pend && notes__doc_pend_events(d)) {
        notes__set_detail("commit local edits first");
        return NOTES_EINVAL;
    }
    if (version && (rc = notes__doc_version_at(d, version, n, &v, &nv)))
        return rc;
    if (n > UINT32_MAX) /* refused without a version too */
        return NOTES_EINVAL;
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
        cur = notes__doc_entry_of_lv_from(d, cur, lvs[i]);
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
    NOTES__DOC_FULL_RC(d);
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
    if ((rc = notes__doc_begin_pending(d)) ||
        (rc = notes__doc_flush_pending_op(d)))
        return rc;
    return notes__builder_blob(&d->pend, NOTES__K_CONFIRM, key,
                               NOTES__ANCHOR_LEN + olen,
                               (const uint8_t *)text, tlen);
}

int notes_doc_publish_certs(notes_doc *d, size_t *added)
{
    NOTES__DOC_FULL_RC(d);
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
        missing += !notes__doc_has_cert(d, c[i].bytes, c[i].n);
    const struct dev *me = notes__doc_dev_find(d, d->r->pk);
    if (!missing && !(me && me->has_person))
        return NOTES_OK;
    if (!missing) {
        /* Nothing to write; still adopt a link of ours a peer brought. */
        return me->link ? notes__replica_add_cert(d->r, NOTES__K_LINK,
                                                  me->link, me->linklen)
                        : NOTES_OK;
    }
    if ((rc = notes__doc_begin_pending(d)))
        return rc;
    *added = missing;
    return NOTES_OK;
}

int notes_doc_change_deps(const notes_doc *d, size_t i,
                          const uint8_t (**deps)[32], size_t *n)
{
    NOTES__DOC_FULL_RC(d);
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
