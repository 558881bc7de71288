/*
 * requests.c: what a page asks about a note besides editing it: cursors,
 * authorship, history, an old version, and confirming an item.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

void notes_web__page_cursor(struct page *pg, json_t *msg)
{
    json_t *ranges = json_object_get(msg, "ranges");
    json_t *ver = json_object_get(msg, "version");
    if (!json_is_array(ranges) || json_array_size(ranges) > RANGES_MAX ||
        !json_is_integer(ver) || json_integer_value(ver) < 0) {
        notes_web__page_close(pg, "malformed cursor");
        return;
    }
    if ((unsigned long)json_integer_value(ver) > pg->note->version) {
        notes_web__page_close(pg, "cursor at a version this daemon never had");
        return;
    }
    json_t *clean = json_array();
    for (size_t i = 0; i < json_array_size(ranges); i++) {
        json_t *r = json_array_get(ranges, i);
        json_t *a = json_object_get(r, "anchor"), *h = json_object_get(r, "head");
        if (!json_is_integer(a) || !json_is_integer(h) ||
            json_integer_value(a) < 0 || json_integer_value(h) < 0) {
            json_decref(clean);
            notes_web__page_close(pg, "malformed cursor");
            return;
        }
        json_array_append_new(clean, json_pack("{s:O, s:O}", "anchor", a,
                                               "head", h));
    }
    json_decref(pg->ranges);
    pg->ranges = clean;
    pg->ranges_version = (unsigned long)json_integer_value(ver);
    notes_web__presence_send(pg->note);
    notes_web__presence_publish(pg->note);
}

/*
 * Who wrote what, by person: the devices of one person (linked to it in
 * the note, not contested) are one author with one colour, listing the
 * devices; a device linked to nobody is an author of its own.
 */
void notes_web__page_authorship(struct page *pg)
{
    struct unote *n = pg->note;
    notes_web *ui = n->ui;
    uint32_t *ch = NULL;
    size_t ncp = 0;
    if (notes_doc_dirty(n->d) || notes_doc_authorship(n->d, &ch, &ncp)) {
        json_t *e = json_pack("{s:s, s:s}", "t", "error", "message",
                              "authorship is not available");
        notes_web__page_send(pg, e);
        json_decref(e);
        return;
    }
    notes_web__people_refresh(ui);
    json_t *authors = json_array(), *spans = json_array();
    /* Devices seen (their author index), and the authors (first device). */
    struct adev {
        uint8_t key[32];
        size_t author;
    } *devs = NULL;
    struct aauthor {
        uint8_t key[32]; /* the person's, or the device's */
        size_t first;    /* its first device */
    } *auth = NULL;
    size_t nd = 0, dcap = 0, na = 0, acap = 0;
    size_t u = 0, b = 0, start = 0;
    long cur = -1;
    int oom = 0;
    for (size_t i = 0; i <= ncp && !oom; i++) {
        long who = -1;
        notes_change_info ci;
        if (i < ncp && notes_doc_change(n->d, ch[i], &ci) == NOTES_OK) {
            size_t k;
            for (k = 0; k < nd && memcmp(devs[k].key, ci.author, 32) != 0; k++)
                ;
            if (k == nd) { /* a device not seen yet: whose is it? */
                struct who w;
                size_t a;
                if (nd == dcap) {
                    struct adev *t = realloc(devs, (dcap = dcap ? dcap * 2 : 8) *
                                                       sizeof(*t));
                    oom = !t;
                    devs = t ? t : devs;
                }
                if (!oom && na == acap) {
                    struct aauthor *t = realloc(
                        auth, (acap = acap ? acap * 2 : 8) * sizeof(*t));
                    oom = !t;
                    auth = t ? t : auth;
                }
                if (oom)
                    break;
                notes_web__who_of(ui, n->d, ci.author, &w);
                for (a = 0; a < na && memcmp(auth[a].key, w.key, 32) != 0; a++)
                    ;
                if (a == na) {
                    memcpy(auth[na].key, w.key, 32);
                    auth[na++].first = nd;
                }
                memcpy(devs[nd].key, ci.author, 32);
                devs[nd++].author = a;
            }
            who = (long)devs[k].author;
        }
        if (i == ncp || who != cur) {
            if (cur >= 0 && u > start)
                json_array_append_new(spans, json_pack("[I, I, i]",
                                                       (json_int_t)start,
                                                       (json_int_t)u, (int)cur));
            cur = who;
            start = u;
        }
        if (i < ncp) {
            size_t l = notes_web__u8len(n->mirror.data[b]);
            u += l == 4 ? 2 : 1;
            b += l;
        }
    }
    for (size_t a = 0; a < na && !oom; a++) {
        struct who w;
        notes_web__who_of(ui, n->d, devs[auth[a].first].key, &w);
        json_t *e = notes_web__who_json(&w, n->d), *dl = json_array();
        for (size_t k = 0; k < nd; k++) {
            if (devs[k].author != a)
                continue;
            char fp[NOTES_FPR_STRLEN], key[NOTES_KEY_STRLEN];
            notes_key_fingerprint(devs[k].key, fp);
            notes_key_encode(devs[k].key, key);
            json_array_append_new(
                dl, json_pack("{s:s, s:s, s:s?}", "fp", fp, "key", key, "name",
                              notes_doc_author_name(n->d, devs[k].key)));
        }
        json_object_del(e, "device");
        json_object_set_new(e, "devices", dl);
        json_array_append_new(authors, e);
    }
    free(devs);
    free(auth);
    notes_free(ch);
    if (oom) {
        json_decref(authors);
        json_decref(spans);
        notes_web__page_close(pg, "out of memory");
        return;
    }
    json_t *m = json_pack("{s:s, s:I, s:o, s:o}", "t", "authorship",
                          "version", (json_int_t)n->version, "authors",
                          authors, "spans", spans);
    notes_web__page_send(pg, m);
    json_decref(m);
}

/* The committed changes in log order, each with its author as a person. */
void notes_web__page_history(struct page *pg)
{
    struct unote *n = pg->note;
    notes_web *ui = n->ui;
    json_t *changes = json_array();
    size_t nc = notes_doc_change_count(n->d);
    /* One description per device (a note has few, and many changes). */
    struct hwho {
        const uint8_t *key;
        json_t *by;
    } *seen = NULL;
    size_t ns = 0, cap = 0;
    notes_web__people_refresh(ui);
    for (size_t i = 0; i < nc; i++) {
        notes_change_info ci;
        char id[65], fp[NOTES_FPR_STRLEN];
        size_t k;
        if (notes_doc_change(n->d, i, &ci) != NOTES_OK)
            continue;
        for (k = 0; k < ns && memcmp(seen[k].key, ci.author, 32) != 0; k++)
            ;
        if (k == ns) {
            if (ns == cap) {
                struct hwho *t = realloc(seen, (cap = cap ? cap * 2 : 8) *
                                                   sizeof(*t));
                if (!t)
                    break;
                seen = t;
            }
            seen[ns].key = ci.author; /* borrowed from the doc */
            seen[ns++].by = notes_web__who_json_of(ui, n->d, ci.author);
        }
        notes__hex(id, ci.id, 32);
        notes_key_fingerprint(ci.author, fp);
        json_array_append_new(
            changes,
            json_pack("{s:I, s:s, s:s, s:s?, s:I, s:O?}", "index", (json_int_t)i,
                      "id", id, "fp", fp, "name",
                      json_string_value(json_object_get(seen[k].by, "name")),
                      "time_ms", (json_int_t)ci.time_ms, "by", seen[k].by));
    }
    for (size_t k = 0; k < ns; k++)
        json_decref(seen[k].by);
    free(seen);
    json_t *m = json_pack("{s:s, s:o}", "t", "history", "changes", changes);
    notes_web__page_send(pg, m);
    json_decref(m);
}

void notes_web__page_at(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *idx = json_object_get(msg, "index");
    notes_change_info ci;
    char *text = NULL;
    size_t len = 0;
    if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
        notes_doc_change(n->d, (size_t)json_integer_value(idx), &ci) !=
            NOTES_OK) {
        notes_web__page_close(pg, "no such change");
        return;
    }
    uint8_t v[1][32];
    memcpy(v[0], ci.id, 32);
    if (notes_doc_text_at(n->d, (const uint8_t(*)[32])v, 1, &text, &len) !=
        NOTES_OK) {
        json_t *e = json_pack("{s:s, s:s}", "t", "error", "message",
                              notes_last_detail());
        notes_web__page_send(pg, e);
        json_decref(e);
        return;
    }
    json_t *m = json_pack("{s:s, s:O, s:s%}", "t", "at", "index", idx, "text",
                          text, len);
    notes_free(text);
    notes_web__page_send(pg, m);
    json_decref(m);
}

/* A refusal the page shows; the connection stays. */
void notes_web__page_error(struct page *pg, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "t", "error", "message", message);
    notes_web__page_send(pg, e);
    json_decref(e);
}

/*
 * A change the page asked for (`what`) could not be stored (rc): log why,
 * drop what the doc holds uncommitted, and tell the page `message`.
 */
void notes_web__page_refused(struct page *pg, struct unote *n,
                             const char *what, int rc, const char *message)
{
    notes_web__log(n->ui, "note %.8s: %s refused: %s (%s)", n->hex, what,
                   notes_strerror(rc), notes_last_detail());
    notes_web__note_reopen(n);
    notes_web__page_error(pg, message);
}

/*
 * {"t":"confirm","id","text","owner"}: sign "I confirm that item ID reads
 * TEXT, owned by OWNER" (notes confirm). The page sends what it shows; if
 * the item no longer reads so (someone changed it meanwhile), nothing is
 * signed and the page is told to look again. The pushes before it are
 * committed (each push is, when it is taken), and what reached the log is
 * read first, so the item is found on the newest text.
 */
void notes_web__page_confirm(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *jid = json_object_get(msg, "id"), *jtext = json_object_get(msg, "text");
    json_t *jowner = json_object_get(msg, "owner");
    const char *id = json_string_value(jid);
    if (!id || strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16 ||
        !json_is_string(jtext) || json_string_length(jtext) > CONFIRM_TEXT_MAX ||
        (jowner && !json_is_null(jowner) &&
         (!json_is_string(jowner) || json_string_length(jowner) > CONFIRM_OWNER_MAX))) {
        notes_web__page_close(pg, "malformed confirm");
        return;
    }
    const char *owner = json_is_string(jowner) ? json_string_value(jowner) : "";
    size_t owner_len = json_is_string(jowner) ? json_string_length(jowner) : 0;
    notes_web__note_refresh(n);
    if (notes_doc_dirty(n->d)) {
        notes_web__page_error(pg, "edits are still being saved; confirm again");
        return;
    }
    notes_fmt_outline o;
    size_t at;
    memset(&o, 0, sizeof(o));
    int rc = notes_fmt_outline_doc(n->d, &o);
    const notes_fmt_item *it = NULL;
    if (!rc && notes_fmt_item_find(&o, id, &at) == NOTES_OK)
        it = &o.items[at];
    const char *it_owner = it && it->owner ? it->owner : "";
    if (rc) {
        notes_web__log(n->ui, "note %.8s: confirm: %s", n->hex, notes_strerror(rc));
        notes_web__page_error(pg, "cannot read the decisions");
    } else if (!it || !it->has_anchor ||
               json_string_length(jtext) != strlen(it->text) ||
               memcmp(json_string_value(jtext), it->text,
                      json_string_length(jtext)) != 0 ||
               owner_len != strlen(it_owner) ||
               memcmp(owner, it_owner, owner_len) != 0) {
        notes_web__page_error(pg, "the item changed; look again");
    } else {
        int again = 0;
        for (size_t k = 0; k < it->nconfirms; k++)
            again |= it->confirms[k].state == NOTES_FMT_CONF_CONFIRMED &&
                     memcmp(it->confirms[k].by.device,
                            notes_replica_public_key(n->ui->r), 32) == 0;
        /* Confirmed from here already, for this text: nothing to sign. */
        rc = again ? NOTES_OK
                   : notes_doc_confirm(n->d, it->cp_start, it_owner, it->text);
        if (!rc && !again)
            rc = notes_doc_commit(n->d, NULL);
        if (notes_doc_needs_flush(n->d))
            notes_web__flush_soon(n->ui);
        if (rc) {
            notes_web__page_refused(pg, n, "confirm", rc,
                                    "the confirmation could not be stored");
        } else {
            notes_web__log(n->ui, "note %.8s: page %s confirmed item %s", n->hex,
                   pg->session, id);
            notes_web__note_flush_remote(n); /* what the commit read from elsewhere */
            notes_web__items_send(n, again ? pg : NULL);
        }
    }
    notes_fmt_outline_clear(&o);
}

