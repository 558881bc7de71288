/*
 * md_section.c: adding text at the end of a section of a note's text
 * (`notes append`, `notes decide`, `notes todo`). The sections are the
 * outline's (md_outline.c): one rule for headings, code fences and which
 * heading holds decisions, whatever reads or writes them. A section runs
 * from its heading to the next heading of the same or a higher level.
 * Rules: docs/formats.md ("Adding to a section").
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fmt_internal.h"

#define NONE ((size_t)-1)

/* Byte offset of the start of 1-based line `line` of t (n if past it). */
static size_t line_offset(const char *t, size_t n, size_t line)
{
    size_t at = 0;
    for (size_t l = 1; l < line && at < n; l++) {
        const char *nl = memchr(t + at, '\n', n - at);
        at = nl ? (size_t)(nl - t) + 1 : n;
    }
    return at;
}

/* The byte range [*start, *end) of section i: from its heading line to the
 * next heading of the same or a higher level. */
static void section_range(const notes_fmt_outline *o, const char *t, size_t n,
                          size_t i, size_t *start, size_t *end)
{
    *start = line_offset(t, n, o->sections[i].line);
    *end = n;
    for (size_t k = i + 1; k < o->nsections; k++)
        if (o->sections[k].level <= o->sections[i].level) {
            *end = line_offset(t, n, o->sections[k].line);
            break;
        }
}

/* Where text added at the end of [start, end) goes: after its last line
 * that is not blank (the heading line at least). */
static size_t last_content(const char *t, size_t start, size_t end)
{
    size_t at = start, last = start;
    while (at < end) {
        const char *nl = memchr(t + at, '\n', end - at);
        size_t e = nl ? (size_t)(nl - t) + 1 : end;
        for (size_t k = at; k < e; k++)
            if (t[k] != ' ' && t[k] != '\t' && t[k] != '\r' && t[k] != '\n') {
                last = e;
                break;
            }
        at = e;
    }
    return last > start ? last : end;
}

/* Whether a title names the discussion: the word discussion(s). */
static int names_discussion(const char *title)
{
    size_t n = strlen(title), i = 0;
    while (i < n) {
        while (i < n && !((title[i] | 32) >= 'a' && (title[i] | 32) <= 'z'))
            i++;
        size_t s = i;
        while (i < n && (title[i] | 32) >= 'a' && (title[i] | 32) <= 'z')
            i++;
        if ((i - s == 10 && strncasecmp(title + s, "discussion", 10) == 0) ||
            (i - s == 11 && strncasecmp(title + s, "discussions", 11) == 0))
            return 1;
    }
    return 0;
}

static int is_list_item(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] == ' ')
        i++;
    return i + 1 < len && (s[i] == '-' || s[i] == '*' || s[i] == '+') &&
           s[i + 1] == ' ';
}

/* Insert `line` at byte `at` of the text: a list item directly after a
 * list item, anything else as a paragraph of its own. */
static int insert_at(notes_doc *d, const char *t, size_t n, size_t at,
                     const char *line)
{
    struct notes_fmt__buf ins = NOTES_FMT__BUF_INIT;
    size_t ls = at ? at - 1 : 0; /* start of the line before `at` */
    while (ls > 0 && t[ls - 1] != '\n')
        ls--;
    int tight = at > 0 && is_list_item(line, strlen(line)) &&
                is_list_item(t + ls, at - ls);
    int blank_after = at < n && t[at] != '\n' && t[at] != '\r';
    notes_fmt__printf(&ins, "%s%s%s\n%s", at > 0 && t[at - 1] != '\n' ? "\n" : "",
                      tight || at == 0 ? "" : "\n", line,
                      blank_after ? "\n" : "");
    char *s;
    size_t sn;
    int rc = notes_fmt__detach(&ins, &s, &sn);
    if (rc)
        return rc;
    rc = notes_doc_splice(d, notes_fmt__cp_count(t, at), 0, s, sn);
    notes_fmt_free(s);
    return rc;
}

/* The start of every edit here: a note and the text to add (`add`, else
 * NOTES_EINVAL saying `missing`), d's text (OUT *t, *n) and its outline *o,
 * which the caller clears on success; on error there is nothing to clear. */
static int outline_for_edit(notes_doc *d, const char *add, const char *missing,
                            const char **t, size_t *n, notes_fmt_outline *o)
{
    memset(o, 0, sizeof(*o)); /* empty whatever the answer */
    *t = NULL;
    *n = 0;
    if (!d || !add)
        return notes_fmt__fail(NOTES_EINVAL, "%s", missing);
    *t = notes_doc_text(d, n);
    int rc = notes_fmt_outline_text(*t, *n, NULL, o);
    if (rc)
        notes_fmt_outline_clear(o);
    return rc;
}

int notes_fmt_section_append(notes_doc *d, const char *name,
                             const char *create, const char *line)
{
    size_t n, start, end;
    notes_fmt_outline o;
    const char *t;
    int rc = outline_for_edit(d, line, "section: no note or no line", &t, &n, &o);
    if (rc)
        return rc;
    size_t found = NONE;
    for (size_t i = 0; i < o.nsections && found == NONE; i++)
        if (name ? notes_fmt__fold_contains(o.sections[i].title, name)
                 : o.sections[i].decisions)
            found = i;
    if (found != NONE) {
        section_range(&o, t, n, found, &start, &end);
        rc = insert_at(d, t, n, last_content(t, start, end), line);
    } else if (create) {
        struct notes_fmt__buf ins = NOTES_FMT__BUF_INIT;
        const char *sep = n == 0 ? "" : (t[n - 1] == '\n' ? "\n" : "\n\n");
        notes_fmt__printf(&ins, "%s%s\n\n%s\n", sep, create, line);
        char *s;
        size_t sn;
        if (!(rc = notes_fmt__detach(&ins, &s, &sn))) {
            rc = notes_doc_splice(d, notes_fmt__cp_count(t, n), 0, s, sn);
            notes_fmt_free(s);
        }
    } else {
        rc = notes_fmt__fail(NOTES_ENOTFOUND, "no section '%s' in this note",
                             name ? name : "of decisions");
    }
    notes_fmt_outline_clear(&o);
    return rc;
}

int notes_fmt_remark_append(notes_doc *d, const char *text)
{
    size_t n, start, end, at;
    notes_fmt_outline o;
    const char *t;
    int rc = outline_for_edit(d, text, "append: no note or no text", &t, &n, &o);
    if (rc)
        return rc;
    size_t disc = NONE, items = NONE;
    for (size_t i = 0; i < o.nsections; i++) {
        if (disc == NONE && names_discussion(o.sections[i].title) &&
            !o.sections[i].decisions)
            disc = i;
        if (items == NONE && o.sections[i].decisions)
            items = i;
    }
    if (disc != NONE) {
        section_range(&o, t, n, disc, &start, &end);
        /* not into a decisions sub-section at its end */
        for (size_t k = disc + 1; k < o.nsections; k++) {
            size_t ks = line_offset(t, n, o.sections[k].line);
            if (ks >= end)
                break;
            if (o.sections[k].decisions) {
                end = ks;
                break;
            }
        }
        at = last_content(t, start, end);
    } else if (items != NONE) {
        /* before the first heading that holds decisions, never in it */
        size_t hs = line_offset(t, n, o.sections[items].line);
        at = hs ? last_content(t, 0, hs) : 0;
        if (at > hs)
            at = hs;
    } else {
        at = n;
    }
    notes_fmt_outline_clear(&o);
    return insert_at(d, t, n, at, text);
}
