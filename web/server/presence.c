/*
 * presence.c: side data of an open note: its outline (items), who has it
 * open here and on other daemons (presence), and the status line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

void notes_web__remote_free(struct remote *r)
{
    json_decref(r->people);
    free(r);
}

/* ---- side data: items, presence, status ------------------------------- */

static json_t *items_msg(struct unote *n)
{
    notes_web *ui = n->ui;
    notes_fmt_outline o;
    memset(&o, 0, sizeof(o));
    json_t *items = json_array(), *orphans = NULL;
    notes_web__people_refresh(ui);
    if (notes_fmt_outline_doc(n->d, &o) == NOTES_OK) {
        for (size_t i = 0; i < o.nitems; i++) {
            const notes_fmt_item *it = &o.items[i];
            json_t *edited = json_array();
            for (size_t k = 1; k < it->nauthors; k++)
                json_array_append_new(edited,
                                      notes_web__who_json_of(ui, n->d, it->authors[k]));
            json_array_append_new(
                items,
                json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:b, s:I, s:o, s:o, "
                          "s:b, s:s?, s:o, s:I}",
                          "kind", notes_fmt_item_kind_name(it->kind),
                          "id", it->has_anchor ? it->id : NULL, "text",
                          it->text, "owner", it->owner, "owner_as_written",
                          it->owner_written, "done", it->done, "line",
                          (json_int_t)it->line, "recorded_by",
                          it->nauthors ? notes_web__who_json_of(ui, n->d, it->authors[0])
                                       : json_null(),
                          "edited_by", edited, "verified", it->verified,
                          "revocation", notes_fmt_revocation_name(it->revocation),
                          "confirmations",
                          notes_web__confirms_json(ui, n->d, it->confirms, it->nconfirms),
                          "confirmed_by", (json_int_t)it->confirmed_by));
        }
        orphans = notes_web__confirms_json(ui, n->d, o.orphan_confirms, o.norphans);
    }
    notes_fmt_outline_clear(&o);
    return json_pack("{s:s, s:o, s:o, s:o}", "t", "items", "items", items,
                     "unattached_confirmations",
                     orphans ? orphans : json_array(), "conflicts",
                     notes_web__conflicts_json(n));
}

void notes_web__items_send(struct unote *n, struct page *only)
{
    json_t *msg = items_msg(n);
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!s)
        return;
    if (only) {
        notes_web__page_send_str(only, s, strlen(s));
        free(s);
        return;
    }
    /* Computed now, sent or not: the next outline waits its interval
     * (an unchanged one used to leave the time behind, and a stale
     * conflicts' list then asked again at once, in a loop, for up to
     * CONFLICTS_EVERY_MS). */
    n->items_last_ms = notes_web__now_ms();
    if (n->items_json && strcmp(n->items_json, s) == 0) {
        free(s);
        return;
    }
    for (struct page *pg = n->pages; pg; pg = pg->next)
        notes_web__page_send_str(pg, s, strlen(s));
    free(n->items_json);
    n->items_json = s;
}

static void on_items_timer(uv_timer_t *t)
{
    struct unote *n = t->data;
    n->items_due = 0;
    if (n->d)
        notes_web__items_send(n, NULL);
    if (n->d && n->conflicts_stale)
        notes_web__items_schedule(n); /* the conflicts' list is due */
}

/* The outline costs a pass over the text and its authorship: at most
 * every ITEMS_DELAY_MS while people type. */
void notes_web__items_schedule(struct unote *n)
{
    if (n->items_due)
        return;
    n->items_due = 1;
    uint64_t since = notes_web__now_ms() - n->items_last_ms;
    uv_timer_start(&n->items_timer, on_items_timer,
                   since >= ITEMS_DELAY_MS ? 0 : ITEMS_DELAY_MS - since, 0);
}

/* Our pages of this note, as the people list of a presence message. */
static json_t *local_people(struct unote *n)
{
    notes_web *ui = n->ui;
    json_t *people = json_array();
    for (struct page *pg = n->pages; pg; pg = pg->next) {
        json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "session",
                              pg->session, "name", notes_replica_name(ui->r),
                              "fp", ui->me_fp, "key", ui->me_key, "color",
                              ui->me_color);
        if (ui->has_person)
            json_object_set_new(p, "person", notes_web__own_person_json(ui));
        json_object_set_new(p, "ranges",
                            pg->ranges ? json_incref(pg->ranges) : json_array());
        json_object_set_new(p, "version",
                            json_integer((json_int_t)(pg->ranges
                                                          ? pg->ranges_version
                                                          : pg->note->version)));
        json_array_append_new(people, p);
    }
    return people;
}

/* Tell the sync side (which signs and gossips it) who has the note open
 * here; an empty list when the last page closed. */
void notes_web__presence_publish(struct unote *n)
{
    notes_web *ui = n->ui;
    if (!ui->cb.publish)
        return;
    json_t *people = local_people(n);
    /* Peers place cursors approximately: positions are in our text. */
    for (size_t i = 0; i < json_array_size(people); i++) {
        json_t *p = json_array_get(people, i);
        json_object_del(p, "fp");
        json_object_del(p, "key");
        json_object_del(p, "version");
        json_object_del(p, "person"); /* peers look it up in the note */
    }
    json_t *rec = json_pack("{s:i, s:o}", "v", 1, "people", people);
    char *s = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (s) {
        ui->cb.publish(ui->cb.publish_ud, n->id, s, strlen(s));
        free(s);
    }
}

void notes_web__presence_send(struct unote *n)
{
    uint64_t now = notes_web__now_ms();
    json_t *people = local_people(n);
    for (struct remote **rp = &n->remotes; *rp;) {
        struct remote *r = *rp;
        if (now - r->seen_ms > PRESENCE_TTL_MS) {
            *rp = r->next;
            notes_web__remote_free(r);
            continue;
        }
        char key[NOTES_KEY_STRLEN], fp[NOTES_FPR_STRLEN], color[8];
        struct who w;
        notes_key_encode(r->key, key);
        notes_key_fingerprint(r->key, fp);
        notes_web__key_color(r->key, color);
        /* Who that daemon's key is in this note: its person's colour. */
        notes_web__who_of(n->ui, n->d, r->key, &w);
        if (w.linked)
            memcpy(color, w.color, sizeof(color));
        for (size_t i = 0; i < json_array_size(r->people); i++) {
            json_t *in = json_array_get(r->people, i);
            const char *name = json_string_value(json_object_get(in, "name"));
            const char *sess = json_string_value(json_object_get(in, "session"));
            json_t *ranges = json_object_get(in, "ranges");
            json_t *p = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:b}", "session",
                                  sess ? sess : "?", "name", name, "fp", fp,
                                  "key", key, "color", color, "remote", 1);
            if (w.linked)
                json_object_set_new(p, "person", notes_web__who_json(&w, n->d));
            json_object_set_new(p, "ranges", json_is_array(ranges)
                                                 ? json_incref(ranges)
                                                 : json_array());
            /* Positions in the sender's text, taken as ours now: the
             * texts differ at most by what is in flight. */
            json_object_set_new(p, "version",
                                json_integer((json_int_t)n->version));
            json_array_append_new(people, p);
        }
        rp = &r->next;
    }
    json_t *msg = json_pack("{s:s, s:o}", "t", "presence", "people", people);
    notes_web__note_broadcast(n, msg);
    json_decref(msg);
}

/*
 * A presence record from another daemon, its signature already verified
 * by the sync side: `key` is that daemon's identity (the fact), the
 * names inside are claims. Kept per (note, key) until it expires.
 */
void notes_web_remote_presence(notes_web *ui, const uint8_t note[16],
                              const uint8_t key[32], const char *json,
                              size_t n)
{
    json_error_t err;
    struct unote *un = notes_web__note_find(ui, note);
    struct remote *r;
    if (!un || !un->pages ||
        memcmp(key, notes_replica_public_key(ui->r), 32) == 0)
        return; /* nobody here looks at it, or it is our own, relayed */
    json_t *rec = json_loadb(json, n, JSON_REJECT_DUPLICATES, &err);
    json_t *people = json_object_get(rec, "people");
    if (!json_is_array(people) || json_array_size(people) > 64) {
        notes_web__log(ui, "ignored a malformed presence record");
        json_decref(rec);
        return;
    }
    /* Keep only well-formed entries with bounded fields. */
    json_t *clean = json_array();
    for (size_t i = 0; i < json_array_size(people); i++) {
        json_t *p = json_array_get(people, i);
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *sess = json_string_value(json_object_get(p, "session"));
        json_t *ranges = json_object_get(p, "ranges");
        if (!sess || strlen(sess) > 32 || (name && strlen(name) > 64))
            continue;
        json_t *e = json_pack("{s:s, s:s?}", "session", sess, "name", name);
        if (json_is_array(ranges) && json_array_size(ranges) <= RANGES_MAX) {
            json_t *rs = json_array();
            for (size_t k = 0; k < json_array_size(ranges); k++) {
                json_t *a = json_object_get(json_array_get(ranges, k), "anchor");
                json_t *h = json_object_get(json_array_get(ranges, k), "head");
                if (json_is_integer(a) && json_is_integer(h) &&
                    json_integer_value(a) >= 0 && json_integer_value(h) >= 0)
                    json_array_append_new(rs, json_pack("{s:O, s:O}", "anchor",
                                                        a, "head", h));
            }
            json_object_set_new(e, "ranges", rs);
        }
        json_array_append_new(clean, e);
    }
    json_decref(rec);
    for (r = un->remotes; r && memcmp(r->key, key, 32) != 0; r = r->next)
        ;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r)))) {
            json_decref(clean);
            return;
        }
        memcpy(r->key, key, 32);
        r->next = un->remotes;
        un->remotes = r;
    }
    json_decref(r->people);
    r->people = clean;
    r->seen_ms = notes_web__now_ms();
    notes_web__presence_send(un);
}

json_t *notes_web__status_msg(notes_web *ui)
{
    notes_web_status st;
    memset(&st, 0, sizeof(st));
    if (ui->cb.status)
        ui->cb.status(ui->cb.status_ud, &st);
    return json_pack("{s:s, s:i, s:b, s:i, s:o}", "t", "status", "peers",
                     (int)st.peers, "online", st.online, "unsent",
                     (int)st.unsent, "last_sync_ms",
                     st.last_sync_ms ? json_integer((json_int_t)st.last_sync_ms)
                                     : json_null());
}

static void on_status_timer(uv_timer_t *t)
{
    notes_web *ui = t->data;
    uint64_t now = notes_web__now_ms();
    if (now - ui->last_beat_ms >= PRESENCE_BEAT_MS) {
        ui->last_beat_ms = now;
        for (struct unote *n = ui->notes; n; n = n->next)
            if (n->pages)
                notes_web__presence_publish(n);
    }
    /* Drop expired remote people (a daemon that went away). */
    for (struct unote *n = ui->notes; n; n = n->next) {
        int expired = 0;
        for (struct remote *r = n->remotes; r; r = r->next)
            expired |= now - r->seen_ms > PRESENCE_TTL_MS;
        if (expired)
            notes_web__presence_send(n);
    }
    json_t *msg = notes_web__status_msg(ui);
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!s)
        return;
    if (ui->status_json && strcmp(ui->status_json, s) == 0) {
        free(s);
        return;
    }
    for (struct unote *n = ui->notes; n; n = n->next)
        for (struct page *pg = n->pages; pg; pg = pg->next)
            notes_web__page_send_str(pg, s, strlen(s));
    free(ui->status_json);
    ui->status_json = s;
}

void notes_web__status_start(notes_web *ui)
{
    uv_timer_init(ui->loop, &ui->status_timer);
    ui->status_timer.data = ui;
    uv_timer_start(&ui->status_timer, on_status_timer, STATUS_MS, STATUS_MS);
    uv_timer_init(ui->loop, &ui->flush_timer);
    ui->flush_timer.data = ui;
    ui->timing = 1;
}
