/*
 * conflicts.c: lines two people rewrote at the same time (issue 18;
 * docs/format.md, "Concurrent edits of one line"), for the page: listed
 * in `items` (each side's author and version, where the lines are), and
 * `resolve`, the one click that keeps one side.
 */
#include <string.h>

#include "server_internal.h"

/* UTF-16 offset of code point cp in text t (nbytes). */
static size_t u16_of_cp(const char *t, size_t nbytes, size_t cp)
{
    size_t b = notes__utf8_offset((const uint8_t *)t, nbytes, cp);
    return notes_web__u16_count(t, b);
}

/*
 * The note's line conflicts as JSON (docs/web.md, "items"): positions in
 * UTF-16 units of the text at `version`. Listing them replays the history
 * when it has concurrent changes, so the list is kept until the note has
 * another change.
 */
json_t *notes_web__conflicts_json(struct unote *n)
{
    size_t count = notes_doc_change_count(n->d);
    uint64_t now = notes_web__now_ms();
    if (n->conflicts && n->conflicts_at == count) {
        /* The text has not changed since: the positions hold now. */
        json_t *c = json_deep_copy(n->conflicts);
        for (size_t i = 0; i < json_array_size(c); i++)
            json_object_set_new(json_array_get(c, i), "version",
                                json_integer((json_int_t)n->version));
        return c;
    }
    if (n->conflicts && now - n->conflicts_ms < CONFLICTS_EVERY_MS) {
        /*
         * While people type into a note with concurrent history, each
         * listing replays it (tens of ms on a large note): at most one
         * every CONFLICTS_EVERY_MS. Meanwhile the last list goes out with
         * the version it was made at (the page maps it from there), and
         * the items come again once the interval is over.
         */
        n->conflicts_stale = 1;
        return json_deep_copy(n->conflicts);
    }
    n->conflicts_stale = 0;
    n->conflicts_ms = now;
    notes_line_conflict *lc = NULL;
    size_t nlc = 0, nbytes;
    json_t *out = json_array();
    if (notes_doc_dirty(n->d) || notes_doc_line_conflicts(n->d, &lc, &nlc)) {
        if (!notes_doc_dirty(n->d))
            notes_web__log(n->ui, "note %.8s: conflicts: %s", n->hex,
                           notes_last_detail());
        return out;
    }
    const char *t = notes_doc_text(n->d, &nbytes);
    for (size_t i = 0; i < nlc; i++) {
        const notes_line_conflict *c = &lc[i];
        json_t *sides = json_array();
        for (size_t k = 0; k < c->nsides; k++) {
            notes_change_info ci;
            char hex[65] = "";
            if (notes_doc_change(n->d, c->side[k].change, &ci) == NOTES_OK)
                notes__hex(hex, ci.id, 32);
            json_array_append_new(
                sides, json_pack("{s:o, s:s, s:s%}", "by",
                                 notes_web__who_json_of(n->ui, n->d,
                                                        c->side[k].author),
                                 "change", hex, "text", c->side[k].text,
                                 c->side[k].nbytes));
        }
        json_array_append_new(
            out, json_pack("{s:I, s:I, s:I, s:I, s:I, s:s%, s:o}", "line",
                           (json_int_t)c->line, "nlines", (json_int_t)c->nlines,
                           "from", (json_int_t)u16_of_cp(t, nbytes, c->from),
                           "to", (json_int_t)u16_of_cp(t, nbytes, c->to),
                           "version", (json_int_t)n->version, "merged",
                           c->merged, c->nbytes, "sides", sides));
    }
    notes_line_conflicts_free(lc, nlc);
    json_decref(n->conflicts);
    n->conflicts = json_deep_copy(out);
    n->conflicts_at = count;
    return out;
}

/*
 * {"t":"resolve","line":L,"merged":"…","change":"<64 hex>"}: keep the
 * side whose latest change is `change` of the conflict that reads
 * `merged` (the nearest to line L if several do), as this replica's own
 * edit: a change that has seen both sides, which ends the conflict.
 */
void notes_web__page_resolve(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *jl = json_object_get(msg, "line"), *jm = json_object_get(msg, "merged");
    const char *ch = json_string_value(json_object_get(msg, "change"));
    notes_line_conflict *lc = NULL;
    size_t nlc = 0, best = SIZE_MAX, side = SIZE_MAX, dist = SIZE_MAX;
    if (!json_is_integer(jl) || !json_is_string(jm) || !ch ||
        strlen(ch) != 64 || strspn(ch, "0123456789abcdef") != 64 ||
        json_string_length(jm) > CONFIRM_TEXT_MAX) {
        notes_web__page_close(pg, "malformed resolve");
        return;
    }
    notes_web__note_refresh(n);
    if (notes_doc_dirty(n->d) || notes_doc_line_conflicts(n->d, &lc, &nlc)) {
        notes_web__page_error(pg, "cannot list the conflicts now; try again");
        return;
    }
    for (size_t i = 0; i < nlc; i++) {
        if (lc[i].nbytes != json_string_length(jm) ||
            memcmp(lc[i].merged, json_string_value(jm), lc[i].nbytes) != 0)
            continue;
        json_int_t l = json_integer_value(jl);
        size_t d = l > (json_int_t)lc[i].line ? (size_t)(l - (json_int_t)lc[i].line)
                                             : lc[i].line - (size_t)l;
        for (size_t k = 0; k < lc[i].nsides && d < dist; k++) {
            notes_change_info ci;
            char hex[65];
            if (notes_doc_change(n->d, lc[i].side[k].change, &ci) != NOTES_OK)
                continue;
            notes__hex(hex, ci.id, 32);
            if (strcmp(hex, ch) == 0) {
                best = i;
                side = k;
                dist = d;
            }
        }
    }
    if (best == SIZE_MAX) {
        notes_line_conflicts_free(lc, nlc);
        notes_web__page_error(pg, "those lines changed meanwhile; look again");
        return;
    }
    /* This replica's own edit: every page sees it as an update by us. */
    n->own = json_array();
    snprintf(n->own_cid, sizeof(n->own_cid), "peer:%s", n->ui->me_fp);
    uint8_t id[32];
    int rc = notes_doc_resolve_conflict(n->d, &lc[best], side);
    if (rc == NOTES_OK)
        rc = notes_doc_commit(n->d, id);
    if (notes_doc_needs_flush(n->d))
        notes_web__flush_soon(n->ui);
    size_t line = lc[best].line;
    notes_line_conflicts_free(lc, nlc);
    json_t *out = n->own;
    n->own = NULL;
    if (rc || n->reset) {
        json_decref(out);
        if (rc) {
            notes_web__page_refused(pg, n, "resolve", rc,
                                    "the choice could not be stored");
        } else {
            notes_web__note_flush_remote(n);
        }
        return;
    }
    notes_web__log(n->ui, "note %.8s: page %s kept one side of line %zu",
                   n->hex, pg->session, line);
    notes_web__note_publish_own(n, out, id);
    json_decref(out);
    notes_web__note_flush_remote(n);
    notes_web__items_schedule(n);
}
