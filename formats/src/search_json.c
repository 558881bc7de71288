/*
 * search_json.c: a search's result as JSON (notes.search/1).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "search_internal.h"

/* ---- JSON ---- */

/* Byte offset b of s as code points. */
static json_int_t cps(const char *s, size_t b)
{
    return (json_int_t)notes_fmt__cp_count(s, b);
}

static json_t *marks_json(const char *s, const size_t (*m)[2], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_pack("[I, I]", cps(s, m[i][0]),
                                               cps(s, m[i][1]))))
            return json_decref(a), NULL;
    return a;
}

int notes_fmt_search_json(const notes_fmt_search_result *res, const char *query,
                          char **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!res || !out)
        return notes_fmt__fail(NOTES_EINVAL, "no result");
    json_t *hits = json_array();
    for (size_t i = 0; hits && i < res->nhits; i++) {
        const notes_fmt_search_hit *h = &res->hits[i];
        char hex[33];
        notes__hex(hex, h->id, 16);
        json_t *lines = json_array();
        for (size_t j = 0; lines && j < h->nlines; j++) {
            const notes_fmt_search_line *l = &h->lines[j];
            json_t *m = marks_json(l->text, (const size_t(*)[2])l->marks, l->nmarks);
            if (json_array_append_new(lines, m ? json_pack("{s:I, s:s, s:o}", "line",
                                                           (json_int_t)l->line, "text",
                                                           l->text, "marks", m)
                                               : NULL))
                lines = (json_decref(lines), NULL);
        }
        json_t *tm = h->title ? marks_json(h->title, (const size_t(*)[2])h->title_marks,
                                           h->ntitle_marks)
                              : json_array();
        json_t *o = lines && tm
                        ? json_pack("{s:s, s:s?, s:s?, s:f, s:b, s:o, s:o, s:I}", "id",
                                    hex, "title", h->title, "datetime", h->datetime,
                                    "score", h->score, "damaged", h->damaged,
                                    "title_marks", tm, "lines", lines, "more_lines",
                                    (json_int_t)h->more_lines)
                        : (json_decref(lines), json_decref(tm), NULL);
        if (json_array_append_new(hits, o))
            hits = (json_decref(hits), NULL);
    }
    json_t *root =
        hits ? json_pack("{s:s, s:s?, s:I, s:{s:I, s:I, s:b}, s:o}", "v",
                         "notes.search/1", "query", query, "total",
                         (json_int_t)res->total, "index", "notes",
                         (json_int_t)res->stats.notes, "reindexed",
                         (json_int_t)res->stats.indexed, "rebuilt",
                         res->stats.rebuilt, "results", hits)
             : NULL;
    char *s = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!s)
        return notes_fmt__fail(NOTES_ENOMEM, "out of memory");
    size_t len = strlen(s);
    *out = notes__malloc(len + 1);
    if (*out)
        memcpy(*out, s, len + 1);
    free(s);
    if (!*out)
        return NOTES_ENOMEM;
    if (n)
        *n = len;
    return NOTES_OK;
}
