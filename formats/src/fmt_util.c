/*
 * fmt_util.c: small helpers shared by the formats: a growable buffer,
 * diagnostics, UTF-8 checking and decoding, Latin letter folding (for
 * matching initials and names), HTML escaping.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

void notes_fmt_free(void *p)
{
    notes_free(p);
}

void notes_fmt__buf_init(struct notes_fmt__buf *o)
{
    notes__buf_init(&o->b, SIZE_MAX);
    o->failed = 0;
}

void notes_fmt__put(struct notes_fmt__buf *o, const void *s, size_t n)
{
    if (!o->failed && notes__buf_put(&o->b, s, n) != NOTES_OK)
        o->failed = 1;
}

void notes_fmt__puts(struct notes_fmt__buf *o, const char *s)
{
    notes_fmt__put(o, s, strlen(s));
}

void notes_fmt__putc(struct notes_fmt__buf *o, char c)
{
    notes_fmt__put(o, &c, 1);
}

void notes_fmt__put_html(struct notes_fmt__buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (!rep)
            continue;
        notes_fmt__put(b, s + run, i - run);
        notes_fmt__puts(b, rep);
        run = i + 1;
    }
    notes_fmt__put(b, s + run, n - run);
}

int notes_fmt__detach(struct notes_fmt__buf *o, char **out, size_t *n)
{
    uint8_t *p;
    if (o->failed || notes__buf_detach(&o->b, &p, n) != NOTES_OK) {
        notes_fmt__release(o);
        notes__set_detail("formats: out of memory");
        return NOTES_ENOMEM;
    }
    *out = (char *)p;
    return NOTES_OK;
}

void notes_fmt__release(struct notes_fmt__buf *o)
{
    notes__buf_release(&o->b);
    o->failed = 0;
}

const char *notes_fmt_last_detail(void)
{
    return notes_last_detail();
}

int notes_fmt__fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notes__set_detailv(fmt, ap);
    va_end(ap);
    return rc;
}

int notes_fmt__export_start(notes_doc *d, char **out, size_t *n,
                            const char *what)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!d || !out)
        return notes_fmt__fail(NOTES_EINVAL, "%s: no note or no output", what);
    return NOTES_OK;
}

void notes_fmt__diag(notes_fmt_diag *diag, size_t line, size_t column,
                     const char *fmt, ...)
{
    notes_fmt_diag d;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d.msg, sizeof(d.msg), fmt, ap);
    va_end(ap);
    const char *msg = d.msg;
    if (line)
        notes__set_detail("line %zu: %s", line, msg);
    else
        notes__set_detail("%s", msg);
    if (!diag)
        return;
    diag->line = line;
    diag->column = column;
    memcpy(diag->msg, d.msg, sizeof(d.msg));
}

size_t notes_fmt__utf8_check(const char *str, size_t n)
{
    /* One sequence at a time (its length from its lead byte), each checked
     * by libnotes' validator: the first one it refuses is the offset. */
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (!len || n - i < len || !notes__utf8_valid(s + i, len))
            return i;
        i += len;
    }
    return n;
}

uint32_t notes_fmt__utf8_get(const char *str, size_t n, size_t *len)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    size_t need = c < 0x80             ? 0
                  : (c & 0xe0) == 0xc0 ? 1
                  : (c & 0xf0) == 0xe0 ? 2
                                       : 3;
    uint32_t cp = need == 0   ? c
                  : need == 1 ? c & 0x1f
                  : need == 2 ? c & 0x0f
                              : c & 0x07;
    if (need >= n)
        need = n - 1;
    for (size_t k = 1; k <= need; k++)
        cp = cp << 6 | (s[k] & 0x3f);
    *len = need + 1;
    return cp;
}

/*
 * Latin-1 Supplement and Latin Extended-A/B letters used in European
 * names, folded to their base letter. Enough for matching initials and
 * names; not a Unicode case-folding.
 */
static const char latin1[] = /* U+00C0 .. U+00FF */
    "aaaaaaaceeeeiiii"
    "dnooooo*ouuuuyts"
    "aaaaaaaceeeeiiii"
    "dnooooo/ouuuuyty";
static const char latin_ext_a[] = /* U+0100 .. U+017F, pairs */
    "aaaaaaccccccccdd"
    "ddeeeeeeeeeegggg"
    "gggghhhhiiiiiiii"
    "iijjjjkkklllllll"
    "lllnnnnnnnnnoooo"
    "oooorrrrrrssssss"
    "ssttttttuuuuuuuu"
    "uuuuwwyyyzzzzzzs";

uint32_t notes_fmt__fold(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp >= 0xc0 && cp <= 0xff && latin1[cp - 0xc0] != '*' &&
        latin1[cp - 0xc0] != '/')
        return (uint32_t)latin1[cp - 0xc0];
    if (cp >= 0x100 && cp <= 0x17f)
        return (uint32_t)latin_ext_a[cp - 0x100];
    if (cp >= 0x218 && cp <= 0x21b) /* Ș ș Ț ț */
        return cp < 0x21a ? 's' : 't';
    return cp;
}

int notes_fmt__is_upper(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return 1;
    if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7)
        return 1;
    if (cp >= 0x100 && cp <= 0x17f && cp != 0x138 && cp != 0x149)
        return (cp & 1) == (cp >= 0x139 && cp <= 0x148 ? 1u
                            : cp >= 0x179              ? 1u
                                                       : 0u);
    if (cp == 0x218 || cp == 0x21a)
        return 1;
    return 0;
}

int notes_fmt__is_lower(uint32_t cp)
{
    if (cp >= 'a' && cp <= 'z')
        return 1;
    if (cp >= 0xdf && cp <= 0xff && cp != 0xf7)
        return 1;
    if (cp >= 0x100 && cp <= 0x17f)
        return !notes_fmt__is_upper(cp);
    if (cp == 0x219 || cp == 0x21b)
        return 1;
    return 0;
}

int notes_fmt__is_list_key(const char *key)
{
    return strcmp(key, "tags") == 0 || strcmp(key, "participants") == 0 ||
           strcmp(key, "teams") == 0;
}

char **notes_fmt__comma_split(const char *v)
{
    size_t parts = 1;
    for (const char *s = v; *s; s++)
        parts += *s == ',';
    char **out = calloc(parts + 1, sizeof(*out));
    if (!out)
        return NULL;
    size_t k = 0;
    const char *s = v;
    for (;;) {
        const char *e = strchr(s, ',');
        if (!e)
            e = s + strlen(s);
        const char *a = s, *z = e;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
            z--;
        if (z > a) {
            size_t j;
            for (j = 0; j < k; j++)
                if (strlen(out[j]) == (size_t)(z - a) &&
                    memcmp(out[j], a, (size_t)(z - a)) == 0)
                    break;
            if (j == k) {
                out[k] = notes__strndup(a, (size_t)(z - a));
                if (!out[k]) {
                    notes_fmt__strv_free(out);
                    return NULL;
                }
                k++;
            }
        }
        if (!*e)
            break;
        s = e + 1;
    }
    return out;
}

void notes_fmt__strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

const uint8_t *notes_fmt__change_author(const notes_doc *d, size_t i)
{
    notes_change_info ci;
    if (i >= notes_doc_change_count(d) ||
        notes_doc_change(d, i, &ci) != NOTES_OK)
        return NULL;
    return ci.author;
}

int notes_fmt_authors(notes_doc *d, uint8_t (**keys)[32], size_t *n)
{
    if (keys)
        *keys = NULL;
    if (n)
        *n = 0;
    if (!d || !keys || !n)
        return notes_fmt__fail(NOTES_EINVAL, "authors: no note or no output");
    size_t nc = notes_doc_change_count(d), ns = 0;
    uint8_t(*seen)[32] = notes__calloc(nc + 1, 32);
    if (!seen)
        return notes_fmt__fail(NOTES_ENOMEM, "authors: out of memory");
    for (size_t i = 0; i < nc; i++) {
        notes_change_info ci;
        if (notes_doc_change(d, i, &ci) != NOTES_OK)
            continue;
        size_t k;
        for (k = 0; k < ns && memcmp(seen[k], ci.author, 32) != 0; k++)
            ;
        if (k == ns)
            memcpy(seen[ns++], ci.author, 32);
    }
    if (!ns) {
        notes_free(seen);
        seen = NULL;
    }
    *keys = seen;
    *n = ns;
    return NOTES_OK;
}

int notes_fmt__authorship(notes_doc *d, uint32_t **ch, size_t *ncp,
                          size_t *nchanges)
{
    *ch = NULL;
    *ncp = 0;
    *nchanges = 0;
    if (notes_doc_dirty(d))
        return 1;
    int rc = notes_doc_authorship(d, ch, ncp);
    if (rc == NOTES_OK)
        *nchanges = notes_doc_change_count(d);
    return rc;
}
