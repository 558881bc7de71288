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
    if (!n->applying && n->remote) {
        json_t *cs = json_array();
        if (at16)
            json_array_append_new(cs, json_integer((json_int_t)at16));
        json_t *rep = nbytes ? lines_json(ins, nbytes) : json_array();
        json_array_insert_new(rep, 0, json_integer((json_int_t)del16));
        json_array_append_new(cs, rep);
        if (n->len16 - at16 - del16)
            json_array_append_new(
                cs, json_integer((json_int_t)(n->len16 - at16 - del16)));
        json_array_append_new(n->remote,
                              json_pack("{s:s, s:o}", "clientID",
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
    taken_save(n);
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

/* Append updates to the history and send them to every page. */
static void note_publish(struct unote *n, json_t *updates)
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
    if (json_array_size(n->hist) > HIST_MAX) {
        size_t drop = json_array_size(n->hist) - HIST_MAX / 2;
        json_t *keep = json_array();
        for (size_t i = drop; i < json_array_size(n->hist); i++)
            json_array_append(keep, json_array_get(n->hist, i));
        json_decref(n->hist);
        n->hist = keep;
        n->base += drop;
    }
    notes_web__note_broadcast(n, msg);
    json_decref(msg);
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
        for (struct page *pg = n->pages; pg; pg = pg->next) {
            json_t *h = notes_web__hello_msg(n, pg);
            notes_web__page_send(pg, h);
            json_decref(h);
        }
        notes_web__items_schedule(n);
        return;
    }
    if (json_array_size(n->remote)) {
        note_publish(n, n->remote);
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
    if ((rc = notes_doc_open(ui->r, id, &n->d))) {
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
    notes_doc_observe(n->d, on_text, n);
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
    notes_doc_observe(n->d, NULL, NULL);
    notes_doc_free(n->d);
    n->d = NULL;
    json_decref(n->hist);
    json_decref(n->remote);
    n->hist = n->remote = NULL;
    free(n->items_json);
    free(n->fields_json);
    notes__buf_release(&n->mirror);
    n->items_json = n->fields_json = NULL;
    while (n->remotes) {
        struct remote *r = n->remotes;
        n->remotes = r->next;
        notes_web__remote_free(r);
    }
    uv_close((uv_handle_t *)&n->items_timer, on_note_timer_closed);
}

/* Re-read the note's log: changes from peers and other processes. */
void notes_web__note_refresh(struct unote *n)
{
    size_t before = notes_doc_change_count(n->d);
    notes_change_info ci;
    /* Name the updates after the newest change's author (most refreshes
     * bring one author's typing): "peer:<fp>", its `author` too. */
    n->peer_id[0] = '\0';
    int rc = notes_doc_refresh(n->d);
    size_t after = notes_doc_change_count(n->d);
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

/*
 * Check a ChangeSet (CodeMirror's toJSON: numbers retain, [del, ...lines]
 * replace) against a document of len16 UTF-16 units: it must cover it
 * exactly. OUT *ins_bytes: bytes it inserts (for a size bound).
 */
static int changes_check(json_t *cs, size_t len16, size_t *ins_bytes)
{
    size_t covered = 0;
    *ins_bytes = 0;
    if (!json_is_array(cs))
        return -1;
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *s = json_array_get(cs, i);
        json_int_t k;
        if (json_is_integer(s)) {
            k = json_integer_value(s);
        } else if (json_is_array(s) && json_array_size(s) >= 1 &&
                   json_is_integer(json_array_get(s, 0))) {
            k = json_integer_value(json_array_get(s, 0));
            if (json_array_size(s) == 2 &&
                json_string_length(json_array_get(s, 1)) == 0)
                return -1; /* a single empty line is not CodeMirror's form */
            for (size_t l = 1; l < json_array_size(s); l++) {
                json_t *line = json_array_get(s, l);
                if (!json_is_string(line) ||
                    memchr(json_string_value(line), '\0',
                           json_string_length(line)) ||
                    memchr(json_string_value(line), '\n',
                           json_string_length(line)))
                    return -1;
                *ins_bytes += json_string_length(line) + 1;
            }
        } else {
            return -1;
        }
        if (k < 0 || (size_t)k > len16 - covered)
            return -1;
        covered += (size_t)k;
    }
    return covered == len16 ? 0 : -1;
}

/* The text a replace [del, line, ...] inserts: its lines joined with
 * newlines (malloc'd, NUL-terminated; *len bytes), or NULL. */
static char *replace_text(json_t *s, size_t *len)
{
    size_t tl = 0, o = 0;
    for (size_t l = 1; l < json_array_size(s); l++)
        tl += json_string_length(json_array_get(s, l)) + 1;
    char *t = malloc(tl + 1);
    if (!t)
        return NULL;
    for (size_t l = 1; l < json_array_size(s); l++) {
        if (l > 1)
            t[o++] = '\n';
        size_t ll = json_string_length(json_array_get(s, l));
        memcpy(t + o, json_string_value(json_array_get(s, l)), ll);
        o += ll;
    }
    t[o] = '\0';
    *len = o;
    return t;
}

/*
 * Walk a checked ChangeSet over `text`, which `replace`
 * changes as it goes: retains move along, each replace [del, line, ...]
 * is handed to `replace` with the code points [cp, ecp) and bytes
 * [byte, eb) it removes and the text it inserts. NOTES_EBADOP if a
 * position falls inside a surrogate pair (a character outside the BMP);
 * else the first non-zero result of `replace`.
 */
typedef int (*replace_fn)(void *ctx, size_t cp, size_t ecp, size_t byte,
                          size_t eb, const char *ins, size_t nins);

static int changes_walk(const struct notes_buf *text, json_t *cs,
                        replace_fn replace, void *ctx)
{
    size_t pos16 = 0, cp = 0, byte = 0;
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *s = json_array_get(cs, i);
        size_t ncp, nb, ins;
        int rc;
        if (json_is_integer(s)) {
            size_t k = (size_t)json_integer_value(s);
            if (notes_web__u16_locate((const char *)text->data, text->len, byte,
                                      cp, pos16, pos16 + k, &ncp, &nb))
                return NOTES_EBADOP;
            pos16 += k;
            cp = ncp;
            byte = nb;
            continue;
        }
        size_t del16 = (size_t)json_integer_value(json_array_get(s, 0));
        if (notes_web__u16_locate((const char *)text->data, text->len, byte, cp,
                                  pos16, pos16 + del16, &ncp, &nb))
            return NOTES_EBADOP;
        char *it = replace_text(s, &ins);
        if (!it)
            return NOTES_ENOMEM;
        rc = replace(ctx, cp, ncp, byte, nb, it, ins);
        if (!rc) {
            /* The text now has the insert at byte `byte`. */
            pos16 += notes_web__u16_count(it, ins);
            cp += notes__utf8_count((const uint8_t *)it, ins);
            byte += ins;
        }
        free(it);
        if (rc)
            return rc;
    }
    return NOTES_OK;
}

/* A replace on a scratch copy of the text: built anew. */
static int scratch_replace(void *ctx, size_t cp, size_t ecp, size_t byte,
                           size_t eb, const char *ins, size_t nins)
{
    struct notes_buf *sc = ctx, nt;
    (void)cp;
    (void)ecp;
    notes__buf_init(&nt, SIZE_MAX);
    if (notes__buf_put(&nt, sc->data, byte) ||
        notes__buf_put(&nt, ins, nins) ||
        notes__buf_put(&nt, sc->data + eb, sc->len - eb)) {
        notes__buf_release(&nt);
        return NOTES_ENOMEM;
    }
    notes__buf_release(sc);
    *sc = nt;
    return NOTES_OK;
}

/*
 * Apply a checked ChangeSet to a scratch copy of the text: non-zero if a
 * position falls inside a surrogate pair, so a push is refused before
 * any of it is applied.
 */
static int changes_simulate(struct notes_buf *sc, json_t *cs)
{
    return changes_walk(sc, cs, scratch_replace, sc);
}

static int note_replace(void *ctx, size_t cp, size_t ecp, size_t byte,
                        size_t eb, const char *ins, size_t nins)
{
    struct unote *n = ctx;
    (void)byte;
    (void)eb;
    /* The observer (on_text) brings the mirror along. */
    return notes_doc_splice(n->d, cp, ecp - cp, ins, nins);
}

/* Apply a checked ChangeSet to the note as splices. */
static int changes_apply(struct unote *n, json_t *cs)
{
    return changes_walk(&n->mirror, cs, note_replace, n);
}

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

static void page_push(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *ver = json_object_get(msg, "version");
    json_t *ups = json_object_get(msg, "updates");
    json_t *aft = json_object_get(msg, "after");
    if (!json_is_integer(ver) || !json_is_array(ups) ||
        json_array_size(ups) == 0 || json_array_size(ups) > PUSH_UPDATES_MAX ||
        (aft && !json_is_integer(aft))) {
        notes_web__page_close(pg, "malformed push");
        return;
    }
    json_int_t v = json_integer_value(ver), after = aft ? json_integer_value(aft) : 0;
    if (v < 0 || after < 0 || after > v) {
        notes_web__page_close(pg, "malformed push");
        return;
    }
    if ((unsigned long)(v - after) > n->version) {
        notes_web__page_close(pg, "push from a version this daemon never had");
        return;
    }
    /*
     * Take in what reached the log first (the sync side merges peers'
     * changes on this same loop): the splices below then apply to the
     * newest text, and the commit has nothing to replay. If that brought
     * updates, this push is stale: the page rebases and pushes again.
     */
    notes_web__note_refresh(n);
    if ((unsigned long)v != n->version)
        return; /* stale: the page rebases over the updates it gets */
    /* Pipelined (docs/web.md): it builds on this page's own last `after`
     * updates; if one of them was not taken, neither is this push. */
    const char *cid0 =
        json_string_value(json_object_get(json_array_get(ups, 0), "clientID"));
    if (after > 0) {
        if ((unsigned long)(v - after) < n->base || !cid0)
            return;
        for (json_int_t k = v - after; k < v; k++) {
            json_t *h = json_array_get(n->hist, (size_t)k - n->base);
            const char *hc = json_string_value(json_object_get(h, "clientID"));
            if (!hc || strcmp(hc, cid0) != 0)
                return;
        }
    }
    /* Check every update against the length it will apply to: a bad one
     * refuses the whole push before anything is applied. */
    /*
     * Check every update against the text it will apply to, on a scratch
     * copy: coverage of the whole text, and no position inside a surrogate
     * pair. A bad one refuses the whole push before any splice (a refusal
     * midway would leave it half applied). The message is at most 1 MiB,
     * which bounds what a push inserts.
     */
    {
        size_t ins;
        struct notes_buf sc;
        notes__buf_init(&sc, SIZE_MAX);
        const char *why = notes__buf_put(&sc, n->mirror.data, n->mirror.len)
                              ? "out of memory"
                              : NULL;
        for (size_t i = 0; !why && i < json_array_size(ups); i++) {
            json_t *u = json_array_get(ups, i), *cs = json_object_get(u, "changes");
            json_t *cid = json_object_get(u, "clientID");
            if (!json_is_object(u) || !notes_web__client_id_ok(cid) ||
                strcmp(json_string_value(cid), cid0 ? cid0 : "") != 0 ||
                changes_check(cs,
                              notes_web__u16_count((const char *)sc.data, sc.len),
                              &ins))
                why = "malformed update";
            else if (changes_simulate(&sc, cs) != 0)
                why = "an edit splits a character (a surrogate pair)";
        }
        notes__buf_release(&sc);
        if (why) {
            notes_web__page_close(pg, why);
            return;
        }
    }
    json_t *out = json_array();
    int rc = NOTES_OK;
    n->applying = 1;
    for (size_t i = 0; i < json_array_size(ups) && !rc; i++) {
        json_t *u = json_array_get(ups, i);
        rc = changes_apply(n, json_object_get(u, "changes"));
        if (!rc)
            json_array_append_new(
                out, json_pack("{s:O, s:O, s:s}", "clientID",
                               json_object_get(u, "clientID"), "changes",
                               json_object_get(u, "changes"), "author",
                               n->ui->me_fp));
    }
    /* The commit may read others' changes first (merged after ours):
     * the observer records those as remote updates. */
    n->applying = 0;
    if (!rc)
        rc = notes_doc_commit(n->d, NULL);
    if (rc) {
        /* Nothing was committed: drop the splices by reopening the doc. */
        notes_web__log(n->ui, "note %.8s: edit refused: %s (%s)", n->hex,
               notes_strerror(rc), notes_last_detail());
        json_decref(out);
        notes_web__note_reopen(n);
        notes_web__page_close(pg, "the edit could not be stored");
        return;
    }
    /* Committed (on disk): count them for the page, then acknowledge. */
    taken_add(n, cid0, json_array_size(out));
    /* Ours first: changes the commit read from elsewhere were merged
     * into the text after our splices. */
    note_publish(n, out);
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
 * commit failed) by opening it again; pages get a fresh hello.
 */
void notes_web__note_reopen(struct unote *n)
{
    notes_doc *fresh;
    if (notes_doc_open(n->ui->r, n->id, &fresh) == NOTES_OK) {
        notes_doc_observe(n->d, NULL, NULL);
        notes_doc_free(n->d);
        n->d = fresh;
        notes_doc_observe(n->d, on_text, n);
    }
    n->reset = 1;
    notes_web__note_flush_remote(n);
}

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
    if (strcmp(t, "push") == 0)
        page_push(pg, msg);
    else if (strcmp(t, "pull") == 0)
        page_pull(pg, msg);
    else if (strcmp(t, "cursor") == 0)
        notes_web__page_cursor(pg, msg);
    else if (strcmp(t, "authorship") == 0)
        notes_web__page_authorship(pg);
    else if (strcmp(t, "history") == 0)
        notes_web__page_history(pg);
    else if (strcmp(t, "at") == 0)
        notes_web__page_at(pg, msg);
    else if (strcmp(t, "confirm") == 0)
        notes_web__page_confirm(pg, msg);
    else if (strcmp(t, "error") == 0)
        notes_web__log(pg->note->ui, "page %s: %s", pg->session,
               json_string_value(json_object_get(msg, "message"))
                   ? json_string_value(json_object_get(msg, "message"))
                   : "(no message)");
    else
        notes_web__page_close(pg, "unknown message type");
    json_decref(msg);
}
