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
    free(p);
}

static int grow(struct fbuf *b, size_t n)
{
    if (b->failed)
        return -1;
    if (n < b->cap - b->len && b->p)
        return 0;
    if (n > SIZE_MAX / 4 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->failed = 1;
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void notes_fmt__put(struct fbuf *b, const void *s, size_t n)
{
    if (grow(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void notes_fmt__puts(struct fbuf *b, const char *s)
{
    notes_fmt__put(b, s, strlen(s));
}

void notes_fmt__putc(struct fbuf *b, char c)
{
    notes_fmt__put(b, &c, 1);
}

void notes_fmt__printf(struct fbuf *b, const char *fmt, ...)
{
    va_list ap;
    char tmp[512];
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)k < sizeof(tmp)) {
        notes_fmt__put(b, tmp, (size_t)k);
        return;
    }
    if (grow(b, (size_t)k))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

void notes_fmt__put_html(struct fbuf *b, const char *s, size_t n)
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

int notes_fmt__detach(struct fbuf *b, char **out, size_t *n)
{
    if (!b->p)
        notes_fmt__put(b, "", 0);
    if (b->failed) {
        notes_fmt__release(b);
        return NOTES_ENOMEM;
    }
    *out = b->p;
    if (n)
        *n = b->len;
    memset(b, 0, sizeof(*b));
    return NOTES_OK;
}

void notes_fmt__release(struct fbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void notes_fmt__diag(notes_fmt_diag *diag, size_t line, size_t column,
                     const char *fmt, ...)
{
    if (!diag)
        return;
    va_list ap;
    diag->line = line;
    diag->column = column;
    va_start(ap, fmt);
    vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
    va_end(ap);
}

char *notes_fmt__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

size_t notes_fmt__utf8_check(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
            need = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            need = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            need = 3, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (n - i - 1 < need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
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

size_t notes_fmt__cp_count(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
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
                out[k] = notes_fmt__strndup(a, (size_t)(z - a));
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
