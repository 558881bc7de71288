/*
 * items.c: naming an item the one way every command and the page use
 * (its number, its id, or part of its text) and checking an action item
 * off. Rules: docs/formats.md ("Naming an item", "Checking an item off").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

const char *notes_fmt_item_kind_name(int kind)
{
    return kind == NOTES_FMT_ITEM_TASK       ? "task"
           : kind == NOTES_FMT_ITEM_DECISION ? "decision"
                                             : "unknown";
}

const char *notes_fmt_revocation_name(int revocation)
{
    return revocation == NOTES_FMT_REV_BEFORE  ? "before"
           : revocation == NOTES_FMT_REV_AFTER ? "after"
                                               : NULL;
}

/* Whether `hay` contains `needle`, ignoring case and Latin accents. */
static int fold_contains(const char *hay, const char *needle)
{
    size_t hn = strlen(hay), nn = strlen(needle);
    for (size_t s = 0; s + nn <= hn || s == 0; s++) {
        size_t i = s, j = 0, la, lb;
        if (s && ((unsigned char)hay[s] & 0xc0) == 0x80)
            continue; /* not at the start of a character */
        while (i < hn && j < nn) {
            uint32_t x = notes_fmt__fold(notes_fmt__utf8_get(hay + i, hn - i, &la));
            uint32_t y =
                notes_fmt__fold(notes_fmt__utf8_get(needle + j, nn - j, &lb));
            if (x != y)
                break;
            i += la;
            j += lb;
        }
        if (j == nn)
            return 1;
        if (s >= hn)
            break;
    }
    return 0;
}

int notes_fmt__fold_contains(const char *hay, const char *needle)
{
    return fold_contains(hay, needle);
}

int notes_fmt_item_pick(const notes_fmt_outline *o, const char *spec,
                        size_t *index)
{
    size_t n = spec ? strlen(spec) : 0, digits = 0, hex = 0;
    if (!o || n == 0)
        return notes_fmt__fail(NOTES_EINVAL, "name an item: its number, id or "
                                             "part of its text");
    for (size_t i = 0; i < n; i++) {
        digits += spec[i] >= '0' && spec[i] <= '9';
        hex += (spec[i] >= '0' && spec[i] <= '9') ||
               ((spec[i] | 32) >= 'a' && (spec[i] | 32) <= 'f');
    }
    int number = digits == n && n <= 9;
    if (number) {
        unsigned long num = strtoul(spec, NULL, 10);
        if (num >= 1 && num <= o->nitems) {
            if (index)
                *index = num - 1;
            return NOTES_OK;
        }
        if (n < 4) /* too short for an id, and no such number */
            return notes_fmt__fail(NOTES_ENOTFOUND,
                                   "no item %lu (the note has %zu)", num,
                                   o->nitems);
    }
    /* an id (or a unique prefix of one, 4 digits at least) */
    if (hex == n && n >= 4 && n <= 16) {
        int rc = notes_fmt_item_find(o, spec, index);
        if (rc != NOTES_ENOTFOUND)
            return rc;
    }
    size_t found = SIZE_MAX, hits = 0;
    char list[64] = "";
    for (size_t i = 0; i < o->nitems; i++) {
        if (!fold_contains(o->items[i].text, spec))
            continue;
        size_t l = strlen(list);
        if (l + 8 < sizeof(list))
            snprintf(list + l, sizeof(list) - l, "%s%zu", hits ? ", " : "",
                     i + 1);
        found = i;
        hits++;
    }
    if (hits == 0 && number)
        return notes_fmt__fail(NOTES_ENOTFOUND,
                               "no item %s (the note has %zu)", spec, o->nitems);
    if (hits == 0)
        return notes_fmt__fail(NOTES_ENOTFOUND, "'%s' names no item", spec);
    if (hits > 1)
        return notes_fmt__fail(NOTES_EINVAL,
                               "'%s' matches several items (%s%s)", spec, list,
                               strlen(list) + 8 >= sizeof(list) ? ", ..." : "");
    if (index)
        *index = found;
    return NOTES_OK;
}

int notes_fmt_item_check(notes_doc *d, const notes_fmt_item *it)
{
    if (!d || !it)
        return notes_fmt__fail(NOTES_EINVAL, "done: no note or no item");
    if (it->kind != NOTES_FMT_ITEM_TASK)
        return notes_fmt__fail(NOTES_EINVAL, "a decision, not an action item");
    if (it->done)
        return NOTES_OK;
    size_t len = notes_doc_length(d);
    if (it->cp_box != SIZE_MAX) {
        if (it->cp_box + 1 >= len)
            return notes_fmt__fail(NOTES_EINVAL, "the item is not in this text");
        return notes_doc_splice(d, it->cp_box + 1, 1, "x", 1);
    }
    if (it->cp_start > len)
        return notes_fmt__fail(NOTES_EINVAL, "the item is not in this text");
    /* "RD: text" becomes "- [x] RD: text", "- RD: text" "- [x] RD: text":
     * inserted before the item's first character, so its id stays */
    const char *ins = it->listed ? "[x] " : "- [x] ";
    return notes_doc_splice(d, it->cp_start, 0, ins, strlen(ins));
}
