/*
 * search_query.c: the query language of `notes search` (search_internal.h):
 * words and phrases become FTS5 strings, owner:/tag:/participant:/before:/
 * after: filters.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "search_internal.h"

void notes_fmt__search_query_clear(struct notes_fmt__query *q)
{
    notes_fmt__release(&q->fts);
    for (size_t i = 0; i < q->nowner; i++)
        notes__free(q->owner[i]);
    for (size_t i = 0; i < q->ntag; i++)
        notes__free(q->tag[i]);
    for (size_t i = 0; i < q->nparticipant; i++)
        notes__free(q->participant[i]);
    notes__free(q->owner);
    notes__free(q->tag);
    notes__free(q->participant);
}

static int push(char ***v, size_t *n, const char *s, size_t len)
{
    char **nv = notes__realloc(*v, (*n + 1) * sizeof(char *));
    if (!nv)
        return NOTES_ENOMEM;
    *v = nv;
    if (!(nv[*n] = notes__strndup(s, len)))
        return NOTES_ENOMEM;
    ++*n;
    return NOTES_OK;
}

/* A word the tokenizer keeps something of: a letter or digit (any byte of
 * a non-ASCII character counts: unicode61 keeps letters and numbers). */
static int has_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
            return 1;
    }
    return 0;
}

/* Add a word or phrase as an FTS5 string: in double quotes, its quotes
 * doubled. Inside quotes nothing is syntax (AND, NEAR, *, ^, parentheses,
 * column names), so the user's text cannot make a syntax error. */
static void add_string(struct notes_fmt__query *q, const char *s, size_t n, int prefix)
{
    if (!has_token(s, n))
        return;
    if (q->fts.b.len)
        notes_fmt__putc(&q->fts, ' ');
    notes_fmt__putc(&q->fts, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            notes_fmt__putc(&q->fts, '"');
        notes_fmt__putc(&q->fts, s[i]);
    }
    notes_fmt__putc(&q->fts, '"');
    if (prefix)
        notes_fmt__puts(&q->fts, " *");
}

static int valid_day(const char *v, size_t n)
{
    if (n != 10 || !notes_fmt__search_is_day(v))
        return 0;
    int m = (v[5] - '0') * 10 + (v[6] - '0');
    int d = (v[8] - '0') * 10 + (v[9] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

int notes_fmt__search_parse(const char *s, struct notes_fmt__query *q)
{
    size_t len = strlen(s);
    size_t i = 0;
    int rc = NOTES_OK, any = 0;
    while (i < len && rc == NOTES_OK) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i >= len)
            break;
        if (s[i] == '"') { /* a phrase; an unclosed one runs to the end */
            size_t st = ++i;
            while (i < len && s[i] != '"')
                i++;
            add_string(q, s + st, i - st, 0);
            any = 1;
            if (i < len)
                i++;
            continue;
        }
        size_t st = i;
        while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
               s[i] != '\r' && s[i] != '"')
            i++;
        const char *w = s + st;
        size_t wn = i - st;
        const char *colon = memchr(w, ':', wn);
        static const char *const keys[] = {"owner", "tag", "participant",
                                           "before", "after"};
        size_t key = SIZE_MAX;
        for (size_t k = 0; colon && k < 5; k++)
            if ((size_t)(colon - w) == strlen(keys[k]) &&
                strncasecmp(w, keys[k], strlen(keys[k])) == 0)
                key = k;
        if (key == SIZE_MAX) {
            int prefix = wn > 1 && w[wn - 1] == '*';
            add_string(q, w, prefix ? wn - 1 : wn, prefix);
            any = 1;
            continue;
        }
        const char *v = colon + 1;
        size_t vn = wn - (size_t)(v - w);
        if (vn == 0 && i < len && s[i] == '"') { /* owner:"Ana M" */
            size_t vs = ++i;
            while (i < len && s[i] != '"')
                i++;
            v = s + vs;
            vn = i - vs;
            if (i < len)
                i++;
        }
        if (vn == 0) {
            rc = notes_fmt__fail(NOTES_EINVAL, "%s: needs a value (%s:VALUE)",
                                 keys[key], keys[key]);
            break;
        }
        any = 1;
        if (key == 0)
            rc = push(&q->owner, &q->nowner, v, vn);
        else if (key == 1)
            rc = push(&q->tag, &q->ntag, v, vn);
        else if (key == 2)
            rc = push(&q->participant, &q->nparticipant, v, vn);
        else if (!valid_day(v, vn))
            rc = notes_fmt__fail(NOTES_EINVAL, "%s: wants a date YYYY-MM-DD, not '%.*s'",
                                 keys[key], (int)(vn > 40 ? 40 : vn), v);
        else
            memcpy(key == 3 ? q->before : q->after, v, 10);
    }
    if (rc == NOTES_OK && q->fts.failed)
        rc = NOTES_ENOMEM;
    if (rc == NOTES_OK && !any)
        rc = notes_fmt__fail(NOTES_EINVAL, "the query is empty");
    else if (rc == NOTES_OK && !q->fts.b.len && !q->nowner && !q->ntag &&
             !q->nparticipant && !q->before[0] && !q->after[0])
        rc = notes_fmt__fail(NOTES_EINVAL,
                             "nothing to search for: the query has no word "
                             "(letters or digits) and no filter");
    return rc;
}

