/*
 * md_export.c: note -> Markdown file. The front matter is re-emitted from
 * the source kept in NOTES_FMT_LAYOUT_KEY: an entry whose field still has
 * the value it was imported with is copied verbatim; a changed entry is
 * re-rendered in its original style (quoting, list indentation, comma
 * string, flow list), keeping the unchanged list items' lines; removed
 * entries are dropped, new fields appended before the closing fence.
 * Without a kept source (a note made by `notes new`) the front matter is
 * rendered in the default style. Then the text, verbatim.
 */
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

/* The current value of a field: absent, a scalar, or a non-empty list. */
struct eff {
    int kind; /* 0 absent, 1 scalar, 2 list */
    const char *s;
    const char *const *l;
};

static struct eff effective(notes_doc *d, const char *key)
{
    struct eff v = {0, NULL, NULL};
    const char *const *l = notes_doc_list(d, key);
    if (l && l[0]) {
        v.kind = 2;
        v.l = l;
        return v;
    }
    v.s = notes_doc_field(d, key);
    v.kind = v.s ? 1 : 0;
    return v;
}

/* Whether s can be written as a plain YAML scalar and read back as is. */
static int plain_ok(const char *s, int flow)
{
    size_t n = strlen(s);
    if (!n || strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
        return 0;
    if (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == ':')
        return 0;
    if (strstr(s, ": ") || strstr(s, " #") || strstr(s, ":\t") ||
        strstr(s, "\t#") || strncmp(s, "...", 3) == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (flow && strchr(",[]{}", *p))
            return 0;
        if (*p == 0xc2 && p[1] == 0x85)
            return 0;
        if (*p == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
            return 0;
        if (*p == 0xef && p[1] == 0xbb && p[2] == 0xbf)
            return 0;
    }
    return 1;
}

/* The short YAML double-quoted escape of c, or NULL (NUL has none here:
 * strchr would find the terminator). */
static const char *short_escape(unsigned char c)
{
    static const char from[] = "\"\\\n\r\t";
    static const char *const to[] = {"\\\"", "\\\\", "\\n", "\\r", "\\t"};
    const char *at = c ? strchr(from, c) : NULL;
    return at ? to[at - from] : NULL;
}

static void put_double(struct notes_fmt__buf *b, const char *s)
{
    notes_fmt__putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = short_escape(*p);
        if (esc)
            notes_fmt__puts(b, esc);
        else if (*p < 0x20 || *p == 0x7f)
            notes_fmt__printf(b, "\\x%02x", *p);
        else if (*p == 0xc2 && p[1] == 0x85)
            notes_fmt__puts(b, "\\N"), p++;
        else if (*p == 0xe2 && p[1] == 0x80 && p[2] == 0xa8)
            notes_fmt__puts(b, "\\L"), p += 2;
        else if (*p == 0xe2 && p[1] == 0x80 && p[2] == 0xa9)
            notes_fmt__puts(b, "\\P"), p += 2;
        else if (*p == 0xef && p[1] == 0xbb && p[2] == 0xbf)
            notes_fmt__puts(b, "\\uFEFF"), p += 2;
        else
            notes_fmt__putc(b, (char)*p);
    }
    notes_fmt__putc(b, '"');
}

static void put_scalar(struct notes_fmt__buf *b, const char *s, int style, int flow)
{
    if (style == ST_SINGLE) {
        int ok = 1;
        for (const unsigned char *p = (const unsigned char *)s; *p && ok; p++)
            ok = *p >= 0x20 && *p != 0x7f && !(*p == 0xc2 && p[1] == 0x85) &&
                 !(*p == 0xe2 && p[1] == 0x80 &&
                   (p[2] == 0xa8 || p[2] == 0xa9)) &&
                 !(*p == 0xef && p[1] == 0xbb && p[2] == 0xbf);
        if (ok) {
            notes_fmt__putc(b, '\'');
            for (const char *p = s; *p; p++) {
                if (*p == '\'')
                    notes_fmt__putc(b, '\'');
                notes_fmt__putc(b, *p);
            }
            notes_fmt__putc(b, '\'');
            return;
        }
    }
    if (style == ST_DOUBLE || !plain_ok(s, flow))
        put_double(b, s);
    else
        notes_fmt__puts(b, s);
}

static void put_key(struct notes_fmt__buf *b, const char *k)
{
    put_scalar(b, k, ST_PLAIN, 1);
}

static void put_range(struct notes_fmt__buf *b, const struct fm *f, size_t a, size_t z)
{
    notes_fmt__put(b, f->src + a, z - a);
}

static int list_equal(const struct eff *v, char *const *want, size_t n)
{
    if (v->kind == 0)
        return n == 0;
    if (v->kind != 2)
        return 0;
    size_t k = 0;
    for (; v->l[k]; k++)
        if (k >= n || strcmp(v->l[k], want[k]) != 0)
            return 0;
    return k == n;
}

/* Indentation of the top-level keys (they may all be indented). */
static void key_indent(const struct fm *f, const char **p, size_t *n)
{
    *p = "";
    *n = 0;
    if (f && f->ne) {
        size_t ls = f->line_start[f->e[0].first], i = ls;
        while (f->src[i] == ' ')
            i++;
        *p = f->src + ls;
        *n = i - ls;
    }
}

/* Render a list in block style: "<prefix>item<eol>" per element; the
 * prefix is that of the first regular block list, or the keys'
 * indentation followed by "  - ". */
static void put_block_items(struct notes_fmt__buf *b, const struct fm *f,
                            const char *const *l, const char *eol)
{
    const char *p = NULL, *ip;
    size_t pn = 0, in;
    for (size_t i = 0; f && i < f->ne && !p; i++)
        if (f->e[i].kind == FM_LIST && f->e[i].style == ST_BLOCK &&
            f->e[i].regular && f->e[i].nitems) {
            p = f->src + f->e[i].vstart;
            pn = f->e[i].vend - f->e[i].vstart;
        }
    key_indent(f, &ip, &in);
    for (size_t k = 0; l[k]; k++) {
        if (p) {
            notes_fmt__put(b, p, pn);
        } else {
            notes_fmt__put(b, ip, in);
            notes_fmt__puts(b, "  - ");
        }
        put_scalar(b, l[k], ST_PLAIN, 0);
        notes_fmt__puts(b, eol);
    }
}

/* A field that the kept source does not have, in the default style. */
static void put_new(struct notes_fmt__buf *b, const struct fm *f, const char *key,
                    const struct eff *v, const char *eol)
{
    const char *ip;
    size_t in;
    key_indent(f, &ip, &in);
    notes_fmt__put(b, ip, in);
    put_key(b, key);
    if (v->kind == 1) {
        notes_fmt__puts(b, ": ");
        put_scalar(b, v->s, ST_PLAIN, 0);
        notes_fmt__puts(b, eol);
        return;
    }
    notes_fmt__puts(b, ":");
    notes_fmt__puts(b, eol);
    put_block_items(b, f, v->l, eol);
}

/* Dedup a LIST entry's items (the doc's list field holds each once). */
static char **entry_values(const struct fm_entry *e, size_t *n)
{
    char **v = calloc(e->nitems + 1, sizeof(*v));
    size_t k = 0;
    if (!v)
        return NULL;
    for (size_t i = 0; i < e->nitems; i++) {
        size_t j;
        for (j = 0; j < k && strcmp(v[j], e->items[i].value) != 0; j++)
            ;
        if (j == k)
            v[k++] = e->items[i].value;
    }
    *n = k;
    return v;
}

static int agrees(const struct fm_entry *e, const struct eff *v)
{
    switch (e->kind) {
    case FM_SCALAR:
    case FM_OPAQUE:
        return v->kind == 1 && strcmp(v->s, e->value) == 0;
    case FM_COMMA: {
        char **parts = notes_fmt__comma_split(e->value);
        size_t n = 0;
        if (!parts)
            return -1;
        while (parts[n])
            n++;
        int eq = list_equal(v, parts, n);
        notes_fmt__strv_free(parts);
        return eq;
    }
    case FM_LIST: {
        size_t n;
        char **vals = entry_values(e, &n);
        if (!vals)
            return -1;
        int eq = list_equal(v, vals, n);
        free(vals);
        return eq;
    }
    default:
        return 0;
    }
}

/* Re-render entry e with value v (which differs from the source). */
static int put_changed(struct notes_fmt__buf *b, const struct fm *f,
                       const struct fm_entry *e, const struct eff *v)
{
    size_t ls = f->line_start[e->first], le = f->line_start[e->last + 1];
    if (v->kind == 0)
        return NOTES_OK;
    if (v->kind == 1 && e->oneline &&
        (e->kind == FM_SCALAR || e->kind == FM_COMMA)) {
        put_range(b, f, ls, e->vstart);
        if (e->vstart == e->vend)
            notes_fmt__putc(b, ' ');
        put_scalar(b, v->s, e->style, 0);
        put_range(b, f, e->vend, le);
        return NOTES_OK;
    }
    if (v->kind == 2 && e->oneline && e->kind == FM_COMMA &&
        e->vstart < e->vend) {
        struct notes_fmt__buf j = NOTES_FMT__BUF_INIT;
        int ok = 1;
        for (size_t k = 0; v->l[k]; k++) {
            /* each element must come back from the comma split as is */
            size_t len = strlen(v->l[k]);
            ok = ok && len && !strchr(v->l[k], ',') &&
                 !strchr(" \t", v->l[k][0]) && !strchr(" \t", v->l[k][len - 1]);
            if (k)
                notes_fmt__puts(&j, ", ");
            notes_fmt__puts(&j, v->l[k]);
        }
        if (j.failed) {
            notes_fmt__release(&j);
            return NOTES_ENOMEM;
        }
        if (ok) {
            put_range(b, f, ls, e->vstart);
            if (e->vstart == e->vend)
                notes_fmt__putc(b, ' ');
            put_scalar(b, notes_fmt__str(&j), e->style, 0);
            put_range(b, f, e->vend, le);
        }
        notes_fmt__release(&j);
        if (ok)
            return NOTES_OK;
    }
    if (v->kind == 2 && e->oneline && e->kind == FM_LIST &&
        e->style == ST_FLOW) {
        put_range(b, f, ls, e->vstart);
        notes_fmt__putc(b, '[');
        for (size_t k = 0; v->l[k]; k++) {
            if (k)
                notes_fmt__puts(b, ", ");
            put_scalar(b, v->l[k], e->nitems ? e->items[0].style : ST_PLAIN, 1);
        }
        notes_fmt__putc(b, ']');
        put_range(b, f, e->vend, le);
        return NOTES_OK;
    }
    if (v->kind == 2 && e->kind == FM_LIST && e->style == ST_BLOCK &&
        e->regular && e->nitems) {
        /*
         * The entry's lines in order: an element still in the list keeps
         * its lines, a removed one loses them, other lines (the key line,
         * comments) stay; new elements follow the last item, in the style
         * of the first.
         */
        unsigned char *keep = calloc(e->nitems, 1);
        size_t nl = 0;
        while (v->l[nl])
            nl++;
        unsigned char *old = calloc(nl + 1, 1);
        if (!keep || !old) {
            free(keep);
            free(old);
            return NOTES_ENOMEM;
        }
        for (size_t k = 0; k < nl; k++)
            for (size_t i = 0; i < e->nitems; i++)
                if (!keep[i] && strcmp(e->items[i].value, v->l[k]) == 0) {
                    keep[i] = 1;
                    old[k] = 1;
                    break;
                }
        size_t li = e->first, it = 0;
        while (li <= e->last) {
            if (it < e->nitems && li == e->items[it].first) {
                if (keep[it])
                    put_range(b, f, f->line_start[li],
                              f->line_start[e->items[it].last + 1]);
                li = e->items[it].last + 1;
                if (++it == e->nitems)
                    for (size_t k = 0; k < nl; k++) {
                        if (old[k])
                            continue;
                        put_range(b, f, e->vstart, e->vend);
                        put_scalar(b, v->l[k], e->items[0].style, 0);
                        notes_fmt__puts(b, f->eol);
                    }
                continue;
            }
            put_range(b, f, f->line_start[li], f->line_start[li + 1]);
            li++;
        }
        free(keep);
        free(old);
        return NOTES_OK;
    }
    /* Anything else: the key as written, then the value in default style. */
    put_range(b, f, ls, e->key_end);
    if (v->kind == 1) {
        notes_fmt__puts(b, ": ");
        put_scalar(b, v->s, e->kind == FM_SCALAR ? e->style : ST_PLAIN, 0);
        notes_fmt__puts(b, f->eol);
        return NOTES_OK;
    }
    notes_fmt__puts(b, ":");
    notes_fmt__puts(b, f->eol);
    put_block_items(b, f, v->l, f->eol);
    return NOTES_OK;
}

static int visible(const char *key)
{
    return key[0] != '@';
}

static int in_source(const struct fm *f, const char *key)
{
    for (size_t i = 0; f && i < f->ne; i++)
        if (strcmp(f->e[i].key, key) == 0)
            return 1;
    return 0;
}

/* Fields that the kept source does not have, in first-write order. */
static void put_new_fields(struct notes_fmt__buf *b, notes_doc *d, const struct fm *f,
                           const char *const *names, const char *eol)
{
    /* names is borrowed: effective() does not invalidate it (no writes) */
    for (size_t i = 0; names[i]; i++) {
        if (!visible(names[i]) || in_source(f, names[i]))
            continue;
        struct eff v = effective(d, names[i]);
        if (v.kind)
            put_new(b, f, names[i], &v, eol);
    }
}

static int put_front_matter(struct notes_fmt__buf *b, notes_doc *d, const struct fm *f)
{
    int rc;
    const char *const *names = notes_doc_fields(d);
    const char *eol = f ? f->eol : "\n";
    size_t nvis = 0;
    for (size_t i = 0; names[i]; i++)
        nvis += visible(names[i]);
    if (!f && !nvis)
        return NOTES_OK;
    if (f)
        put_range(b, f, 0, f->open_len);
    else
        notes_fmt__puts(b, "---\n");
    /*
     * New fields go after the last entry (before trailing comments and a
     * "..." end marker); with no entry, before a "..." line if any.
     */
    size_t at_new = f ? f->nlines : 0;
    if (f && f->ne) {
        at_new = f->e[f->ne - 1].last + 1;
    } else {
        for (size_t li = 0; f && li < f->nlines; li++)
            if (f->line_start[li + 1] - f->line_start[li] >= 3 &&
                memcmp(f->src + f->line_start[li], "...", 3) == 0) {
                at_new = li;
                break;
            }
    }
    size_t li = 0, ei = 0;
    for (;;) {
        if (li == at_new)
            put_new_fields(b, d, f, names, eol);
        if (!f || li >= f->nlines)
            break;
        if (ei < f->ne && li == f->e[ei].first) {
            const struct fm_entry *e = &f->e[ei];
            struct eff v = effective(d, e->key);
            int ag = agrees(e, &v);
            if (ag < 0)
                return NOTES_ENOMEM;
            if (ag)
                put_range(b, f, f->line_start[e->first],
                          f->line_start[e->last + 1]);
            else if ((rc = put_changed(b, f, e, &v)))
                return rc;
            li = e->last + 1;
            ei++;
            continue;
        }
        put_range(b, f, f->line_start[li], f->line_start[li + 1]);
        li++;
    }
    if (f)
        put_range(b, f, f->close_start, f->n);
    else
        notes_fmt__puts(b, "---\n");
    return NOTES_OK;
}

size_t notes_fmt_md_text_line(notes_doc *d)
{
    char *md;
    size_t n, tl, k = 0;
    if (!d || notes_fmt_md_export(d, &md, &n) != NOTES_OK)
        return 0;
    (void)notes_doc_text(d, &tl);
    /* The export is the front matter, then the text as it is. */
    for (size_t i = 0; i + tl < n; i++)
        k += md[i] == '\n';
    notes_fmt_free(md);
    return k;
}

int notes_fmt_md_export(notes_doc *d, char **out, size_t *n)
{
    struct notes_fmt__buf b = NOTES_FMT__BUF_INIT;
    struct fm f;
    int have = 0, rc;
    if ((rc = notes_fmt__export_start(d, out, n, "Markdown export")))
        return rc;
    const char *raw = notes_doc_field(d, NOTES_FMT_LAYOUT_KEY);
    char *copy = NULL;
    if (raw) {
        size_t rl = strlen(raw), fl = 0;
        copy = notes__strndup(raw, rl);
        if (!copy)
            return notes_fmt__fail(NOTES_ENOMEM, "Markdown export: out of memory");
        /* A kept source that no longer parses (edited by hand) is ignored. */
        if (notes_fmt__fm_find(copy, rl, &fl, NULL) == NOTES_OK && fl == rl &&
            rl > 0) {
            rc = notes_fmt__fm_parse(copy, rl, &f, NULL);
            if (rc == NOTES_ENOMEM) {
                free(copy);
                return rc;
            }
            have = rc == NOTES_OK;
        }
    }
    rc = put_front_matter(&b, d, have ? &f : NULL);
    if (have)
        notes_fmt__fm_free(&f);
    free(copy);
    if (rc) {
        notes_fmt__release(&b);
        return rc;
    }
    size_t tl;
    const char *t = notes_doc_text(d, &tl);
    notes_fmt__put(&b, t, tl);
    return notes_fmt__detach(&b, out, n);
}
