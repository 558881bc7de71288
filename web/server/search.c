/*
 * search.c: GET /api/search?q=QUERY[&limit=N], the index page's search box
 * (docs/web.md): notes_fmt_search over every note of the replica, answered
 * with its JSON ("notes.search/1", docs/formats.md "Search"), or
 * {"error": WHY} with 400 for a query it refuses (empty, a bad date). The
 * index is brought up to date by the search itself, on the loop: the notes
 * that changed since the last search are indexed again first.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "notes_formats.h"
#include "server_internal.h"

/* The longest query the page sends (the box's maxlength is 500). */
#define SEARCH_ARG_MAX 2048

json_t *notes_web__search(notes_web *ui, struct lws *wsi, unsigned *status)
{
    char qbuf[SEARCH_ARG_MAX + 4], lbuf[32];
    const char *q = notes_web__urlarg(wsi, "q=", qbuf, sizeof(qbuf));
    const char *l = notes_web__urlarg(wsi, "limit=", lbuf, sizeof(lbuf));
    unsigned long limit = l ? strtoul(l, NULL, 10) : 20;
    if (limit == 0 || limit > 200)
        limit = 20;
    *status = 400;
    if (!q)
        return json_pack("{s:s}", "error", "no query (q=), or a query too long");
    notes_fmt_search_result res;
    int rc = notes_fmt_search(ui->r, q, limit, &res);
    json_t *out = NULL;
    if (rc == NOTES_EINVAL) {
        out = json_pack("{s:s}", "error", notes_fmt_last_detail());
    } else if (rc != NOTES_OK) {
        *status = 500;
        notes_web__log(ui, "search failed: %s", notes_fmt_last_detail());
        out = json_pack("{s:s}", "error", "the search failed; see the daemon's log");
    } else {
        char *js = NULL;
        if (notes_fmt_search_json(&res, q, &js, NULL) == NOTES_OK)
            out = json_loads(js, 0, NULL);
        notes_fmt_free(js);
        *status = out ? 200 : 500;
    }
    notes_fmt_search_clear(&res);
    return out;
}
