/*
 * md_section.c: adding a line at the end of a section of a note's text
 * (`notes append --section`, `notes decide`, `notes todo`). A section is a
 * Markdown heading and the lines up to the next heading of the same or a
 * higher level.
 *
 * Its heading rule is the one `notes` always used for these commands, kept
 * as it was so that no note gets a line in another place than before. It
 * is narrower than the outline's (md_outline.c) in places; docs/formats.md
 * ("Adding to a section") lists where: a heading here starts at the
 * line's first byte with 1-6 '#' and one space, headings inside code
 * fences count, and names match as substrings.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "fmt_internal.h"

struct section {
    size_t body_end; /* byte offset where new lines go in the section */
    int found;
};

/* Heading text of the line at s (len bytes), without emoji shortcodes and
 * outer spaces, in out (cap bytes, cut to fit); level 0 if none. */
static int heading(const char *s, size_t len, char *out, size_t cap)
{
    int level = 0;
    while ((size_t)level < len && s[level] == '#')
        level++;
    if (level == 0 || level > 6 || (size_t)level >= len || s[level] != ' ')
        return 0;
    size_t o = 0;
    for (size_t i = (size_t)level + 1; i < len && o + 1 < cap; i++) {
        if (s[i] == ':') { /* skip :shortcode: */
            size_t j = i + 1;
            while (j < len && (isalnum((unsigned char)s[j]) || s[j] == '_' ||
                               s[j] == '-' || s[j] == '+'))
                j++;
            if (j < len && s[j] == ':' && j > i + 1) {
                i = j;
                continue;
            }
        }
        out[o++] = s[i];
    }
    while (o && (out[o - 1] == ' ' || out[o - 1] == '\r'))
        o--;
    size_t start = 0;
    while (start < o && out[start] == ' ')
        start++;
    memmove(out, out + start, o - start);
    out[o - start] = 0;
    return level;
}

/* The decisions section, as these commands always found it: any of these
 * words anywhere in the heading, in any case ("Tasks", "TODOs"). */
static int names_decisions(const char *h)
{
    static const char *const words[] = {"decision", "todo",        "to do",
                                        "task",     "action item", "action point"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasestr(h, words[i]))
            return 1;
    return 0;
}

static struct section find_section(const char *t, size_t n, const char *name)
{
    struct section sec = {0, 0};
    int level = 0;
    size_t last_content = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(t + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - t) + 1 : n;
        char h[256];
        int lv = heading(t + i, e - i, h, sizeof(h));
        if (sec.found && lv && lv <= level)
            break; /* the section ends at this heading */
        if (!sec.found && lv &&
            (name ? strcasestr(h, name) != NULL : names_decisions(h))) {
            sec.found = 1;
            level = lv;
            last_content = e;
        } else if (sec.found) {
            int blank = 1;
            for (size_t k = i; k < e; k++)
                if (!isspace((unsigned char)t[k]))
                    blank = 0;
            if (!blank)
                last_content = e;
        }
        i = e;
    }
    sec.body_end = last_content;
    return sec;
}

static int is_list_item(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] == ' ')
        i++;
    return i + 1 < len && (s[i] == '-' || s[i] == '*' || s[i] == '+') &&
           s[i + 1] == ' ';
}

int notes_fmt_section_append(notes_doc *d, const char *name,
                             const char *create, const char *line)
{
    struct notes_fmt__buf ins = NOTES_FMT__BUF_INIT;
    size_t n, at;
    if (!d || !line)
        return notes_fmt__fail(NOTES_EINVAL, "section: no note or no line");
    const char *t = notes_doc_text(d, &n);
    struct section sec = find_section(t, n, name);
    if (sec.found) {
        at = sec.body_end;
        size_t ls = at ? at - 1 : 0; /* start of the line before `at` */
        while (ls > 0 && t[ls - 1] != '\n')
            ls--;
        /* A list item follows a list item directly; anything else becomes
         * a paragraph of its own. */
        int tight = is_list_item(line, strlen(line)) &&
                    is_list_item(t + ls, at - ls);
        notes_fmt__printf(&ins, "%s%s%s\n",
                          at > 0 && t[at - 1] != '\n' ? "\n" : "",
                          tight ? "" : "\n", line);
    } else if (create) {
        at = n;
        const char *sep = n == 0 ? "" : (t[n - 1] == '\n' ? "\n" : "\n\n");
        notes_fmt__printf(&ins, "%s%s\n\n%s\n", sep, create, line);
    } else {
        return notes_fmt__fail(NOTES_ENOTFOUND, "no section '%s' in this note",
                               name ? name : "of decisions");
    }
    char *s;
    size_t sn;
    int rc = notes_fmt__detach(&ins, &s, &sn);
    if (rc)
        return rc;
    rc = notes_doc_splice(d, notes_fmt__cp_count(t, at), 0, s, sn);
    notes_fmt_free(s);
    return rc;
}
