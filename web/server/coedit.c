/*
 * coedit.c: the co-editing protocol (docs/web.md): open notes, their
 * update lists, taken counts, and a page's pushes and pulls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

/* Lines of t (n bytes) as a JSON array, as CodeMirror's Text.toJSON. */
static json_t *lines_json(const char *t, size_t n)
{
    json_t *a = json_array();
    if (!t)
        t = "", n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || t[i] == '\n') {
            json_array_append_new(a, json_stringn(t + start, i - start));
            start = i + 1;
        }
    }
    return a;
}
/* ---- open notes ------------------------------------------------------- */

static void mirror_reload(struct unote *n)
{
    size_t len;
    const char *t = notes_doc_text(n->d, &len);
    struct notes_buf *m = &n->mirror;
    if (notes__buf_reserve(m, len > m->len ? len - m->len : 0) != NOTES_OK)
        return; /* keep the old mirror; the next reset retries */
    memcpy(m->data, t, len + 1);
    m->len = len;
    n->len16 = notes_web__u16_count((const char *)m->data, len);
    n->lencp = notes_doc_length(n->d);
}

/*
 * notes_doc_observe: each change to the text, after it happened. The mirror
 * still holds the text before it, so positions convert to UTF-16 there.
 */
static void on_text(void *ud, size_t pos, size_t del, const char *ins,
                    size_t nbytes)
{
    struct unote *n = ud;
    size_t at, end, at16, del16 = 0, ins16;
    const char *m = (const char *)n->mirror.data;
    size_t mlen = n->mirror.len;
    if (pos == SIZE_MAX || !m || (nbytes && !ins)) {
        n->reset = 1;
        return;
    }
    at = notes__utf8_offset(n->mirror.data, mlen, pos);
    end = at + notes__utf8_offset(n->mirror.data + at, mlen - at, del);
    at16 = notes_web__u16_count(m, at);
    del16 = notes_web__u16_count(m + at, end - at);
    ins16 = notes_web__u16_count(ins ? ins : "", nbytes);
    json_t *into = n->own ? n->own : n->remote;
    if (into) {
        json_t *cs = json_array();
        if (at16)
            json_array_append_new(cs, json_integer((json_int_t)at16));
        json_t *rep = nbytes ? lines_json(ins, nbytes) : json_array();
        json_array_insert_new(rep, 0, json_integer((json_int_t)del16));
        json_array_append_new(cs, rep);
        if (n->len16 - at16 - del16)
            json_array_append_new(
                cs, json_integer((json_int_t)(n->len16 - at16 - del16)));
        if (n->own)
            json_array_append_new(
                into, json_pack("{s:s, s:o, s:s}", "clientID", n->own_cid,
                                "changes", cs, "author", n->ui->me_fp));
        else
            json_array_append_new(
                into, json_pack("{s:s, s:o}", "clientID",
                                n->peer_id[0] ? n->peer_id : "peer",
                                "changes", cs));
    }
    /* Apply to the mirror. */
    size_t cut = end - at;
    if (nbytes > cut && notes__buf_reserve(&n->mirror, nbytes - cut)) {
        n->reset = 1; /* rebuilt from the doc at the next flush */
        return;
    }
    uint8_t *d = n->mirror.data;
    memmove(d + at + nbytes, d + end, mlen - end + 1); /* with the NUL */
    if (nbytes)
        memcpy(d + at, ins, nbytes);
    n->mirror.len = mlen - cut + nbytes;
    n->len16 = n->len16 - del16 + ins16;
    n->lencp = n->lencp - del + notes__utf8_count((const uint8_t *)(ins ? ins : ""), nbytes);
}

/* The note's front matter (layout keys left out). */
static json_t *fields_json(struct unote *n)
{
    json_t *fields = json_object();
    const char *const *keys = notes_doc_fields(n->d);
    for (size_t i = 0; keys && keys[i]; i++) {
        if (keys[i][0] == '@')
            continue; /* layout, not front matter */
        const char *v = notes_doc_field(n->d, keys[i]);
        if (v) {
            json_object_set_new(fields, keys[i], json_string(v));
        } else {
            const char *const *l = notes_doc_list(n->d, keys[i]);
            json_t *a = json_array();
            for (size_t k = 0; l && l[k]; k++)
                json_array_append_new(a, json_string(l[k]));
            json_object_set_new(fields, keys[i], a);
        }
    }
    return fields;
}

/* ---- taken counts: which of a page's updates are committed ------------- */


static void taken_path(struct unote *n, char *out, size_t nout, int tmp)
{
    snprintf(out, nout, "%s/ui/%s.taken%s", notes_replica_home(n->ui->r),
             n->hex, tmp ? ".tmp" : "");
}

/* Read the counts kept by an earlier run ("CLIENTID COUNT" lines); a
 * missing or damaged file is no counts (a page then moves its edits over
 * a diff, docs/web.md). */
static void taken_load(struct unote *n)
{
    char path[4200], cid[CLIENT_ID_MAX + 2];
    unsigned long k;
    taken_path(n, path, sizeof(path), 0);
    FILE *f = fopen(path, "re");
    n->ntaken = 0;
    if (!f)
        return;
    while (n->ntaken < TAKEN_MAX && fscanf(f, "%65s %lu", cid, &k) == 2) {
        json_t *j = json_string(cid);
        size_t len = strlen(cid);
        if (notes_web__client_id_ok(j) && len < sizeof(n->taken[0].cid)) {
            memcpy(n->taken[n->ntaken].cid, cid, len + 1);
            n->taken[n->ntaken++].n = k;
        }
        json_decref(j);
    }
    fclose(f);
}

/*
 * Write the counts: a temporary file renamed over the old one, so a crash
 * leaves the old or the new file. Not fsync'd: a count that reaches the
 * disk late only matters after an operating-system crash, and then a page
 * may push an edit the log has already (a duplicate, never a loss).
 */
static void taken_save(struct unote *n)
{
    char path[4200], tmp[4200], dir[4200];
    snprintf(dir, sizeof(dir), "%s/ui", notes_replica_home(n->ui->r));
    mkdir(dir, 0700);
    taken_path(n, path, sizeof(path), 0);
    taken_path(n, tmp, sizeof(tmp), 1);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        notes_web__log(n->ui, "note %.8s: cannot write %s: %s", n->hex, tmp,
               strerror(errno));
        return;
    }
    for (size_t i = 0; i < n->ntaken; i++)
        fprintf(f, "%s %lu\n", n->taken[i].cid, n->taken[i].n);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        notes_web__log(n->ui, "note %.8s: cannot write %s: %s", n->hex, path,
               strerror(errno));
        unlink(tmp);
    }
}

static unsigned long taken_get(const struct unote *n, const char *cid)
{
    for (size_t i = 0; i < n->ntaken; i++)
        if (strcmp(n->taken[i].cid, cid) == 0)
            return n->taken[i].n;
    return 0;
}

/* k more updates of cid were committed: count them (most recent last). */
static void taken_add(struct unote *n, const char *cid, unsigned long k)
{
    struct taken t;
    size_t i;
    memset(&t, 0, sizeof(t));
    for (i = 0; i < n->ntaken && strcmp(n->taken[i].cid, cid) != 0; i++)
        ;
    if (i < n->ntaken) {
        t = n->taken[i];
    } else {
        snprintf(t.cid, sizeof(t.cid), "%s", cid);
        if (n->ntaken == TAKEN_MAX)
            i = 0; /* forget the oldest */
        else
            n->ntaken++;
    }
    memmove(&n->taken[i], &n->taken[i + 1],
            (n->ntaken - 1 - i) * sizeof(n->taken[0]));
    t.n += k;
    n->taken[n->ntaken - 1] = t;
    /* Written by the flush timer, off the keystroke's path (a file made
     * and renamed per edit cost a fifth of the daemon's time while typing):
     * a count matters only to a page whose acknowledgement was lost, and
     * that is sent right after this, so a crash in the 20 ms between loses
     * nothing the immediate write would have kept. */
    if (!n->ui->timing || n->ui->stopped) {
        taken_save(n); /* no timer to do it */
        return;
    }
    n->taken_dirty = 1;
    notes_web__flush_soon(n->ui);
}

static void taken_flush(struct unote *n)
{
    if (n->taken_dirty) {
        n->taken_dirty = 0;
        taken_save(n);
    }
}

json_t *notes_web__hello_msg(struct unote *n, struct page *pg)
{
    notes_web *ui = n->ui;
    json_t *fields = fields_json(n);
    notes_web__people_refresh(ui);
    json_t *h = json_pack("{s:s, s:i, s:s, s:s, s:I, s:s%, s:o, s:{s:s, s:s, s:s, "
                     "s:s, s:s}}",
                     "t", "hello", "v", 1, "epoch", n->epoch, "note", n->hex,
                     "version", (json_int_t)n->version, "text",
                     (const char *)n->mirror.data, n->mirror.len,
                     "fields", fields, "me", "session", pg->session, "key",
                     ui->me_key, "fp", ui->me_fp, "name",
                     notes_replica_name(ui->r), "color", ui->me_color);
    if (h && pg->client[0])
        json_object_set_new(h, "taken",
                            json_integer((json_int_t)taken_get(n, pg->client)));
    if (h && ui->has_person)
        json_object_set_new(json_object_get(h, "me"), "person",
                            notes_web__own_person_json(ui));
    return h;
}

/* ---- versions: what a page's push stands on -------------------------- */

/*
 * A page pushes on a version of the update list (docs/web.md, "push"):
 * the daemon needs it as a version of the note, change ids. marks[i] is
 * about version base + i: the heads there when a batch of updates ended
 * there (pages only ever stand at the end of a batch: they apply whole
 * messages), and the change that update base + i belongs to when it is a
 * page's own (its clientID is in the update).
 */
static void mark_clear(struct vmark *m)
{
    notes_free(m->heads);
    memset(m, 0, sizeof(*m));
}

/* Make room for marks up to version n->version (one per version). */
static int marks_fit(struct unote *n)
{
    size_t need = n->version - n->base + 1;
    if (need > n->capmarks) {
        size_t cap = n->capmarks ? n->capmarks : 64;
        while (cap < need)
            cap *= 2;
        struct vmark *m = realloc(n->marks, cap * sizeof(*m));
        if (!m)
            return NOTES_ENOMEM;
        memset(m + n->capmarks, 0, (cap - n->capmarks) * sizeof(*m));
        n->marks = m;
        n->capmarks = cap;
    }
    return NOTES_OK;
}

/* Record the note's heads as the version the list is at now. */
static void marks_heads(struct unote *n)
{
    uint8_t(*h)[32];
    size_t nh;
    if (marks_fit(n) != NOTES_OK)
        return; /* a push on this version is then answered with a hello */
    struct vmark *m = &n->marks[n->version - n->base];
    notes_free(m->heads);
    m->heads = NULL;
    m->nheads = 0;
    if (notes_doc_heads(n->d, &h, &nh) == NOTES_OK) {
        m->heads = h;
        m->nheads = nh;
        m->has_heads = 1;
        m->lencp = n->lencp;
    }
}

/* Forget every mark: the list starts again at n->version. */
static void marks_reset(struct unote *n)
{
    for (size_t i = 0; i < n->capmarks; i++)
        mark_clear(&n->marks[i]);
    marks_heads(n);
}

/*
 * Append updates to the history and send them to every page. change: the
 * page's change they belong to (its own edit, acknowledged), or NULL.
 */
static void note_publish(struct unote *n, json_t *updates,
                         const uint8_t change[32], long delta)
{
    size_t k = json_array_size(updates);
    if (!k)
        return;
    json_t *msg = json_pack("{s:s, s:I, s:O}", "t", "updates", "version",
                            (json_int_t)n->version, "updates", updates);
    if (getenv("NOTES_UI_DEBUG")) {
        char *d = json_dumps(updates, JSON_COMPACT);
        notes_web__log(n->ui, "note %.8s: v%lu + %s", n->hex, n->version,
               d ? (strlen(d) > 200 ? "(long)" : d) : "?");
        free(d);
    }
    json_array_extend(n->hist, updates);
    n->version += k;
    if (marks_fit(n) == NOTES_OK) {
        for (unsigned long v = n->version - k; v < n->version; v++) {
            struct vmark *m = &n->marks[v - n->base];
            if (v > n->version - k)
                mark_clear(m); /* inside the batch: no page stands there */
            m->has_change = change != NULL;
            m->delta = v == n->version - k ? delta : 0;
            if (change)
                memcpy(m->change, change, 32);
        }
        marks_heads(n);
    }
    if (json_array_size(n->hist) > HIST_MAX) {
        size_t drop = json_array_size(n->hist) - HIST_MAX / 2;
        json_t *keep = json_array();
        for (size_t i = drop; i < json_array_size(n->hist); i++)
            json_array_append(keep, json_array_get(n->hist, i));
        json_decref(n->hist);
        n->hist = keep;
        for (size_t i = 0; i < drop; i++)
            mark_clear(&n->marks[i]);
        memmove(n->marks, n->marks + drop,
                (n->capmarks - drop) * sizeof(*n->marks));
        memset(n->marks + n->capmarks - drop, 0, drop * sizeof(*n->marks));
        n->base += drop;
    }
    notes_web__note_broadcast(n, msg);
    json_decref(msg);
}

void notes_web__note_publish_own(struct unote *n, json_t *updates,
                                 const uint8_t change[32])
{
    note_publish(n, updates, change, 0);
}

/*
 * The version of the note a push on list version v stands on, for the
 * page whose clientID is cid: the heads at v, and the changes of that
 * page's own updates after v (it pushed them before this one, on the
 * same text, and the daemon took them in order). OUT *lencp: that text's
 * length in code points. NOTES_ENOTFOUND when v is not a version a page
 * can stand on here.
 */
static int push_version(struct unote *n, unsigned long v, const char *cid,
                        uint8_t (**out)[32], size_t *nout, size_t *lencp)
{
    struct vmark *m;
    size_t k = 0;
    if (v < n->base || v > n->version || !n->marks ||
        !(m = &n->marks[v - n->base])->has_heads)
        return NOTES_ENOTFOUND;
    size_t cap = m->nheads + (n->version - v) + 1;
    uint8_t(*ids)[32] = malloc(cap * 32);
    if (!ids)
        return NOTES_ENOMEM;
    memcpy(ids, m->heads, m->nheads * 32);
    k = m->nheads;
    *lencp = m->lencp;
    for (unsigned long u = v; u < n->version; u++) {
        struct vmark *x = &n->marks[u - n->base];
        json_t *h = json_array_get(n->hist, u - n->base);
        const char *hc = json_string_value(json_object_get(h, "clientID"));
        if (!x->has_change || !hc || strcmp(hc, cid) != 0)
            continue;
        if (k && memcmp(ids[k - 1], x->change, 32) == 0)
            continue; /* one change, several updates */
        *lencp += (size_t)x->delta;
        memcpy(ids[k++], x->change, 32);
    }
    *out = ids;
    *nout = k;
    return NOTES_OK;
}

/* Send the front matter to the pages when it changed (a peer set the
 * title, say). */
static void fields_maybe_send(struct unote *n)
{
    json_t *f = fields_json(n);
    char *s = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
    if (s && (!n->fields_json || strcmp(s, n->fields_json) != 0)) {
        int first = n->fields_json == NULL;
        free(n->fields_json);
        n->fields_json = s;
        s = NULL;
        if (!first) {
            json_t *m = json_pack("{s:s, s:O}", "t", "fields", "fields", f);
            notes_web__note_broadcast(n, m);
            json_decref(m);
        }
    }
    free(s);
    json_decref(f);
}

/*
 * After the doc changed from elsewhere (or a rebuild): publish what the
 * observer collected; on a reset, every page gets a fresh hello (its
 * unacknowledged edits are rebased by the page, docs/web.md).
 */
void notes_web__note_flush_remote(struct unote *n)
{
    if (n->reset) {
        n->reset = 0;
        notes_web__log(n->ui, "note %.8s: state rebuilt; pages reload it", n->hex);
        notes_web__random_hex(n->epoch, 8); /* a new update list (docs/web.md) */
        json_array_clear(n->remote);
        json_array_clear(n->hist);
        mirror_reload(n);
        n->base = n->version = n->version + 1; /* older versions are gone */
        marks_reset(n);
        for (struct page *pg = n->pages; pg; pg = pg->next) {
            json_t *h = notes_web__hello_msg(n, pg);
            notes_web__page_send(pg, h);
            json_decref(h);
        }
        notes_web__items_schedule(n);
        return;
    }
    if (json_array_size(n->remote)) {
        note_publish(n, n->remote, NULL, 0);
        json_array_clear(n->remote);
        notes_web__items_schedule(n);
    }
    fields_maybe_send(n);
}

struct unote *notes_web__note_find(notes_web *ui, const uint8_t id[16])
{
    for (struct unote *n = ui->notes; n; n = n->next)
        if (memcmp(n->id, id, 16) == 0)
            return n;
    return NULL;
}


int notes_web__note_open(notes_web *ui, const uint8_t id[16], struct unote **out)
{
    struct unote *n = notes_web__note_find(ui, id);
    int rc;
    if (n) {
        *out = n;
        return NOTES_OK;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        return NOTES_ENOMEM;
    n->ui = ui;
    notes__buf_init(&n->mirror, SIZE_MAX);
    memcpy(n->id, id, 16);
    notes__hex(n->hex, id, 16);
    /* The handle sync's sessions use too (in `notes serve`): a page's
     * commit is exported from it and a peer's merge lands in it, seen by
     * the observer at once; neither side reads the other's writes back
     * from the log. */
    if ((rc = notes_doc_open_shared(ui->r, id, 0, &n->d))) {
        notes__set_detail("note %s: %s", n->hex, notes_last_detail());
        free(n);
        return rc;
    }
    n->hist = json_array();
    n->remote = json_array();
    notes_web__random_hex(n->epoch, 8);
    mirror_reload(n);
    if (!n->mirror.data || !n->hist || !n->remote) {
        json_decref(n->hist);
        json_decref(n->remote);
        notes_doc_free(n->d);
        notes__buf_release(&n->mirror);
        free(n);
        return NOTES_ENOMEM;
    }
    /* A page's edit is told to sync (and so to peers) once its record is
     * synced; the state file follows on the flush timer. */
    notes_doc_set_defer(n->d, NOTES_DEFER_STATE);
    notes_doc_observe(n->d, on_text, n);
    n->counted = notes_doc_change_count(n->d);
    marks_heads(n);
    taken_load(n);
    fields_maybe_send(n); /* records what hello will carry */
    uv_timer_init(ui->loop, &n->items_timer);
    n->items_timer.data = n;
    n->items_timer_on = 1;
    n->next = ui->notes;
    ui->notes = n;
    *out = n;
    return NOTES_OK;
}

/* The state files the open notes' commits deferred, 20 ms later (what
 * came meanwhile shares the flush; notes_doc_free flushes at release). */
#define FLUSH_MS 20

static void on_flush_timer(uv_timer_t *t)
{
    notes_web *ui = t->data;
    for (struct unote *n = ui->notes; n; n = n->next) {
        if (notes_doc_flush(n->d) != NOTES_OK)
            notes_web__log(ui, "note %.8s: cannot write its state: %s",
                           n->hex, notes_last_detail());
        taken_flush(n);
    }
}

void notes_web__flush_soon(notes_web *ui)
{
    if (ui->timing && !ui->stopped &&
        !uv_is_active((uv_handle_t *)&ui->flush_timer))
        uv_timer_start(&ui->flush_timer, on_flush_timer, FLUSH_MS, 0);
}

static void on_note_timer_closed(uv_handle_t *h)
{
    free(h->data); /* the note: its contents went in note_release */
}

/* Close a note no page has open any more (its doc, timer, history). */
void notes_web__note_release(struct unote *n)
{
    notes_web *ui = n->ui;
    for (struct unote **p = &ui->notes; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            break;
        }
    taken_flush(n);
    notes_doc_observe(n->d, NULL, NULL);
    notes_doc_free(n->d);
    n->d = NULL;
    json_decref(n->hist);
    json_decref(n->remote);
    n->hist = n->remote = NULL;
    for (size_t i = 0; i < n->capmarks; i++)
        mark_clear(&n->marks[i]);
    free(n->marks);
    n->marks = NULL;
    n->capmarks = 0;
    free(n->items_json);
    free(n->fields_json);
    json_decref(n->conflicts);
    n->conflicts = NULL;
    notes__buf_release(&n->mirror);
    n->items_json = n->fields_json = NULL;
    while (n->remotes) {
        struct remote *r = n->remotes;
        n->remotes = r->next;
        notes_web__remote_free(r);
    }
    uv_close((uv_handle_t *)&n->items_timer, on_note_timer_closed);
}

/* Publish what reached the note since the pages were last told: peers'
 * changes sync merged into the shared handle (the observer has them), and
 * what other processes appended to the log (read now). */
void notes_web__note_refresh(struct unote *n)
{
    size_t before = n->counted;
    notes_change_info ci;
    /* Name the updates after the newest change's author (most refreshes
     * bring one author's typing): "peer:<fp>", its `author` too. */
    n->peer_id[0] = '\0';
    int rc = notes_doc_refresh(n->d);
    size_t after = notes_doc_change_count(n->d);
    n->counted = after;
    if (after > before && notes_doc_change(n->d, after - 1, &ci) == NOTES_OK) {
        char fp[NOTES_FPR_STRLEN];
        notes_key_fingerprint(ci.author, fp);
        snprintf(n->peer_id, sizeof(n->peer_id), "peer:%s", fp);
        for (size_t i = 0; i < json_array_size(n->remote); i++) {
            json_t *u = json_array_get(n->remote, i);
            json_object_set_new(u, "clientID", json_string(n->peer_id));
            json_object_set_new(u, "author", json_string(fp));
        }
    }
    if (rc)
        notes_web__log(n->ui, "note %.8s: refresh: %s", n->hex, notes_last_detail());
    if (after > before)
        notes_web__items_schedule(n); /* a confirmation or a link changes no text */
    notes_web__note_flush_remote(n);
}
/* ---- page requests ------------------------------------------------------ */

/* A page's clientID: 16-64 of [A-Za-z0-9_-] ("peer:..." is ours). */
int notes_web__client_id_ok(json_t *cid)
{
    const char *c = json_string_value(cid);
    size_t n = json_string_length(cid);
    if (!c || n < CLIENT_ID_MIN || n > CLIENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || c[i] == '_' || c[i] == '-'))
            return 0;
    return 1;
}

/*
 * A push's updates as splices in code points (docs/web.md, "push"):
 * [[pos, del, text], ...] per update, in order. OUT *sp (malloc'd; the
 * texts borrowed from msg), *nsp. Non-zero: malformed.
 */
static int push_splices(json_t *ups, const char *cid0, notes_splice **sp,
                        size_t *nsp)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < json_array_size(ups); i++) {
        json_t *u = json_array_get(ups, i), *cid = json_object_get(u, "clientID");
        json_t *ss = json_object_get(u, "splices");
        if (!json_is_object(u) || !notes_web__client_id_ok(cid) ||
            strcmp(json_string_value(cid), cid0) != 0 || !json_is_array(ss))
            return -1;
        total += json_array_size(ss);
    }
    *sp = malloc((total ? total : 1) * sizeof(**sp));
    if (!*sp)
        return -1;
    for (size_t i = 0; i < json_array_size(ups); i++) {
        json_t *ss = json_object_get(json_array_get(ups, i), "splices");
        for (size_t j = 0; j < json_array_size(ss); j++) {
            json_t *e = json_array_get(ss, j);
            json_t *pos = json_array_get(e, 0), *del = json_array_get(e, 1);
            json_t *txt = json_array_get(e, 2);
            if (!json_is_array(e) || json_array_size(e) != 3 ||
                !json_is_integer(pos) || !json_is_integer(del) ||
                !json_is_string(txt) || json_integer_value(pos) < 0 ||
                json_integer_value(del) < 0 ||
                json_integer_value(pos) > UINT32_MAX ||
                json_integer_value(del) > UINT32_MAX ||
                memchr(json_string_value(txt), '\0', json_string_length(txt))) {
                free(*sp);
                *sp = NULL;
                return -1;
            }
            (*sp)[k].pos = (size_t)json_integer_value(pos);
            (*sp)[k].del = (size_t)json_integer_value(del);
            (*sp)[k].text = json_string_value(txt);
            (*sp)[k].n = json_string_length(txt);
            k++;
        }
    }
    *nsp = k;
    return 0;
}

/*
 * A page's edits, made on a version it has seen: stored as one change on
 * that version and merged (notes_doc_commit_at), never refused as stale
 * and never rebased here. What the merge did to the text goes to every
 * page as updates with the pusher's clientID; the last carries "acks".
 */
static void page_push(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *ver = json_object_get(msg, "version");
    json_t *ups = json_object_get(msg, "updates");
    uint8_t(*ids)[32] = NULL, change[32];
    size_t nids = 0, nsp = 0;
    notes_splice *sp = NULL;
    const char *cid0;
    int rc;
    if (!json_is_integer(ver) || !json_is_array(ups) ||
        json_array_size(ups) == 0 || json_array_size(ups) > PUSH_UPDATES_MAX ||
        !(cid0 = json_string_value(
              json_object_get(json_array_get(ups, 0), "clientID")))) {
        notes_web__page_close(pg, "malformed push");
        return;
    }
    json_int_t v = json_integer_value(ver);
    if (v < 0 || (unsigned long)v > n->version) {
        notes_web__page_close(pg, "push from a version this daemon never had");
        return;
    }
    if (push_splices(ups, cid0, &sp, &nsp)) {
        notes_web__page_close(pg, "malformed update");
        return;
    }
    /* Take in what reached the log first (peers' changes merged on this
     * loop, the CLI's commits): they are published before ours. */
    notes_web__note_refresh(n);
    size_t len;
    rc = push_version(n, (unsigned long)v, cid0, &ids, &nids, &len);
    if (rc) {
        /* A version this list has dropped (or never ended a batch at): the
         * page starts over from a hello, its edits moved onto the text. */
        free(sp);
        json_t *h = notes_web__hello_msg(n, pg);
        json_object_set_new(h, "stale", json_true());
        notes_web__page_send(pg, h);
        json_decref(h);
        return;
    }
    /* Every splice within the text it applies to (the page's: the text at
     * v with its own edits since), checked before anything is stored. */
    long delta = 0;
    for (size_t i = 0; i < nsp; i++) {
        size_t ins = notes__utf8_count((const uint8_t *)sp[i].text, sp[i].n);
        if (sp[i].pos > len || sp[i].del > len - sp[i].pos) {
            free(ids);
            free(sp);
            notes_web__page_close(pg, "an edit lies outside the text of its "
                                      "version");
            return;
        }
        len = len - sp[i].del + ins;
        delta += (long)ins - (long)sp[i].del;
    }
    n->own = json_array();
    snprintf(n->own_cid, sizeof(n->own_cid), "%s", cid0);
    rc = notes_doc_commit_at(n->d, (const uint8_t(*)[32])ids, nids, sp, nsp,
                             change);
    free(ids);
    free(sp);
    json_t *out = n->own;
    n->own = NULL;
    if (rc) {
        int bad = rc == NOTES_EBADOP || rc == NOTES_EINVAL || rc == NOTES_ETOOBIG;
        notes_web__log(n->ui, "note %.8s: edit refused: %s (%s)", n->hex,
                       notes_strerror(rc), notes_last_detail());
        json_decref(out);
        notes_web__note_flush_remote(n); /* a rollback rebuilt the state */
        notes_web__page_close(pg, bad ? "an edit lies outside the text of "
                                        "its version"
                                      : "the edit could not be stored");
        return;
    }
    n->counted = notes_doc_change_count(n->d);
    if (notes_doc_needs_flush(n->d))
        notes_web__flush_soon(n->ui);
    /* Committed (on disk): count them for the page, then acknowledge. An
     * edit the merge made invisible (deleting what a peer deleted) is
     * still acknowledged, by an update that changes nothing. */
    taken_add(n, cid0, json_array_size(ups));
    if (n->reset) {
        /* Another process wrote meanwhile and the state was rebuilt: every
         * page starts over from a hello (its "taken" counts this push). */
        json_decref(out);
        notes_web__note_flush_remote(n);
        return;
    }
    if (json_array_size(out) == 0) {
        json_t *cs = json_array();
        if (n->len16)
            json_array_append_new(cs, json_integer((json_int_t)n->len16));
        json_array_append_new(out, json_pack("{s:s, s:o, s:s}", "clientID",
                                             cid0, "changes", cs, "author",
                                             n->ui->me_fp));
    }
    json_object_set_new(json_array_get(out, json_array_size(out) - 1), "acks",
                        json_integer((json_int_t)json_array_size(ups)));
    note_publish(n, out, change, delta);
    json_decref(out);
    notes_web__note_flush_remote(n);
    notes_web__items_schedule(n);
}

static void page_pull(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *ver = json_object_get(msg, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0 ||
        (unsigned long)json_integer_value(ver) > n->version) {
        notes_web__page_close(pg, "pull from a version this daemon never had");
        return;
    }
    unsigned long v = (unsigned long)json_integer_value(ver);
    if (v < n->base) {
        json_t *h = notes_web__hello_msg(n, pg); /* too old: start over */
        json_object_set_new(h, "stale", json_true());
        notes_web__page_send(pg, h);
        json_decref(h);
        return;
    }
    json_t *ups = json_array();
    for (size_t i = v - n->base; i < json_array_size(n->hist); i++)
        json_array_append(ups, json_array_get(n->hist, i));
    json_t *m = json_pack("{s:s, s:I, s:o}", "t", "updates", "version",
                          (json_int_t)v, "updates", ups);
    notes_web__page_send(pg, m);
    json_decref(m);
}
/*
 * Drop what the doc holds uncommitted (an edit or a confirmation whose
 * commit failed); pages get a fresh hello. In place: sync holds the same
 * handle.
 */
void notes_web__note_reopen(struct unote *n)
{
    if (notes_doc_discard(n->d) != NOTES_OK)
        notes_web__log(n->ui, "note %.8s: dropping the failed edit: %s",
                       n->hex, notes_last_detail());
    n->reset = 1;
    notes_web__note_flush_remote(n);
}

static void page_authorship(struct page *pg, json_t *msg)
{
    (void)msg;
    notes_web__page_authorship(pg);
}

static void page_history(struct page *pg, json_t *msg)
{
    (void)msg;
    notes_web__page_history(pg);
}

/* {"t":"error","message"}: the page reports a fault of its own; log it. */
static void page_reported(struct page *pg, json_t *msg)
{
    const char *m = json_string_value(json_object_get(msg, "message"));
    notes_web__log(pg->note->ui, "page %s: %s", pg->session,
                   m ? m : "(no message)");
}

/* What each type of page message ({"t": type, ...}) asks for. */
static const struct {
    const char *type;
    void (*fn)(struct page *pg, json_t *msg);
} page_handlers[] = {
    {"push", page_push},
    {"pull", page_pull},
    {"cursor", notes_web__page_cursor},
    {"authorship", page_authorship},
    {"history", page_history},
    {"at", notes_web__page_at},
    {"confirm", notes_web__page_confirm},
    {"resolve", notes_web__page_resolve},
    {"error", page_reported},
};

void notes_web__page_message(struct page *pg, const char *p, size_t n)
{
    json_error_t err;
    json_t *msg = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
    const char *t;
    if (!msg || !json_is_object(msg) ||
        !(t = json_string_value(json_object_get(msg, "t")))) {
        notes_web__page_close(pg, "not a JSON message with a type");
        json_decref(msg);
        return;
    }
    size_t i = 0;
    while (i < sizeof(page_handlers) / sizeof(*page_handlers) &&
           strcmp(t, page_handlers[i].type) != 0)
        i++;
    if (i < sizeof(page_handlers) / sizeof(*page_handlers))
        page_handlers[i].fn(pg, msg);
    else
        notes_web__page_close(pg, "unknown message type");
    json_decref(msg);
}
