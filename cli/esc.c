/*
 * esc.c: what the terminal shows is what the bytes say.
 *
 * Titles, names, field values, tags, file names and error details come
 * from notes, peers, files and users. Written raw, an ESC or BEL in one of
 * them retitles or clears the terminal, hides text (ESC[8m) or moves the
 * cursor over a key fingerprint. Every such string goes through this file
 * before it reaches stdout or stderr (docs/web.md, "Text from others on
 * the terminal").
 *
 * Shown escaped: C0 controls and DEL as \xHH, C1 controls (U+0080..U+009F,
 * which some terminals obey like ESC [) as \u0080, each byte of invalid
 * UTF-8 as \xHH. On one line (cli_esc) also \n and \t, the backslash
 * itself as \\ (so a literal "\x1b" in a title cannot pass for an escaped
 * ESC), and the invisible characters that reorder or hide what follows on
 * the line: bidirectional overrides and isolates (U+202A..U+202E,
 * U+2066..U+2069, U+200E, U+200F, U+061C), zero-width spaces and joiners
 * (U+200B..U+200D, U+2060, U+FEFF) and line/paragraph separators
 * (U+2028, U+2029), as \uXXXX. A note's body (cli_put_text) keeps \n, \t
 * and backslashes: it is Markdown, printed as it is except for controls.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid.
 * The same rules as libnotes' validator: no overlongs, no surrogates,
 * nothing past U+10FFFF. *cp gets the code point. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1fu;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0fu;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Invisible characters that change how the rest of a line reads. */
static int invisible(uint32_t cp)
{
    return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x061c || cp == 0xfeff;
}

struct sink {
    char *p;
    size_t len, cap;
    FILE *f; /* write here instead when set */
};

static void put(struct sink *k, const char *s, size_t n)
{
    if (k->f) {
        fwrite(s, 1, n, k->f);
        return;
    }
    if (!k->p)
        return; /* out of memory earlier: shown as "?" by the caller */
    if (k->len + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 64;
        while (k->len + n + 1 > cap)
            cap *= 2;
        char *np = realloc(k->p, cap);
        if (!np) {
            free(k->p);
            k->p = NULL;
            return;
        }
        k->p = np;
        k->cap = cap;
    }
    memcpy(k->p + k->len, s, n);
    k->len += n;
    k->p[k->len] = 0;
}

static void escape(struct sink *k, const uint8_t *s, size_t n, int text)
{
    char e[12];
    size_t i = 0, run = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_seq(s + i, n - i, &cp);
        int bad;
        if (l == 0)
            bad = 1;
        else if (cp == '\n' || cp == '\t' || cp == '\\')
            bad = !text; /* kept in a body, escaped on one line */
        else
            bad = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
                  (!text && invisible(cp));
        if (!bad) {
            i += l;
            run += l;
            continue;
        }
        put(k, (const char *)s + i - run, run);
        run = 0;
        if (l == 0)
            snprintf(e, sizeof(e), "\\x%02x", s[i]);
        else if (cp == '\\')
            snprintf(e, sizeof(e), "\\\\");
        else if (cp == '\n')
            snprintf(e, sizeof(e), "\\n");
        else if (cp == '\t')
            snprintf(e, sizeof(e), "\\t");
        else if (cp < 0x80)
            snprintf(e, sizeof(e), "\\x%02x", (unsigned)cp);
        else
            snprintf(e, sizeof(e), "\\u%04x", (unsigned)cp);
        put(k, e, strlen(e));
        i += l ? l : 1;
    }
    put(k, (const char *)s + i - run, run);
}

int cli_has_controls(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_seq(p + i, n - i, &cp);
        if (l == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            return 1;
        i += l;
    }
    return 0;
}

size_t cli_plain_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
        i++;
    return i;
}

const char *cli_escn(const char *s, size_t n)
{
    /* A few results live at once, so one printf can escape several
     * arguments; each is valid until CLI_ESC_SLOTS later calls. */
    static char *slots[CLI_ESC_SLOTS];
    static unsigned next;
    if (!s)
        return NULL;
    /* Printable ASCII without a backslash, as most titles, names and
     * items are, is shown as it is: copied, not walked code point by code
     * point (a listing of every note escapes 100,000 strings). */
    size_t plain = cli_plain_len(s, n);
    struct sink k = {malloc(plain == n ? n + 1 : 64), 0, plain == n ? n + 1 : 64,
                     NULL};
    if (k.p)
        k.p[0] = 0;
    if (plain == n && k.p) {
        memcpy(k.p, s, n);
        k.p[n] = 0;
        k.len = n;
    } else {
        escape(&k, (const uint8_t *)s, n, 0);
    }
    unsigned i = next++ % CLI_ESC_SLOTS;
    free(slots[i]);
    slots[i] = k.p;
    return k.p ? k.p : "?";
}

const char *cli_esc(const char *s)
{
    return s ? cli_escn(s, strlen(s)) : NULL;
}

void cli_put_text(FILE *f, const char *s, size_t n)
{
    struct sink k = {NULL, 0, 0, f};
    escape(&k, (const uint8_t *)s, n, 1);
}

/* A name only claimed, for a terminal: cli_esc, and then its parentheses
 * (ASCII "\(" "\)", look-alikes as \uXXXX) escaped too. The real key
 * then always starts at the first plain "(" of an author: a name such as
 * "Ana (mc3x-dn2y)" cannot pass for a fingerprint. cli_esc already shows a
 * backslash as "\\", so "\(" cannot be imitated either. */
const char *cli_esc_claim(const char *s)
{
    static const char *const alike[] = {
        "\xef\xbc\x88", "\xef\xbc\x89", /* U+FF08/9 fullwidth */
        "\xef\xb9\x99", "\xef\xb9\x9a", /* U+FE59/A small */
        "\xef\xb8\xb5", "\xef\xb8\xb6", /* U+FE35/6 vertical */
        "\xe2\x81\xbd", "\xe2\x81\xbe", /* U+207D/E superscript */
        "\xe2\x82\x8d", "\xe2\x82\x8e", /* U+208D/E subscript */
        "\xe2\x9d\xa8", "\xe2\x9d\xa9", /* U+2768/9 ornaments */
        "\xe2\x9d\xaa", "\xe2\x9d\xab", /* U+276A/B */
        "\xe2\x9f\xae", "\xe2\x9f\xaf", /* U+27EE/F flattened */
        "\xe2\xb8\xa8", "\xe2\xb8\xa9", /* U+2E28/9 double */
    };
    static const unsigned cps[] = {0xff08, 0xff09, 0xfe59, 0xfe5a, 0xfe35,
                                   0xfe36, 0x207d, 0x207e, 0x208d, 0x208e,
                                   0x2768, 0x2769, 0x276a, 0x276b, 0x27ee,
                                   0x27ef, 0x2e28, 0x2e29};
    static char buf[8 * 4 * NOTES_NAME_MAX + 1]; /* names are <= 64 bytes */
    const char *e = cli_esc(s);
    size_t o = 0;
    while (*e && o + 8 < sizeof(buf)) {
        size_t k;
        if (*e == '(' || *e == ')') {
            buf[o++] = '\\';
            buf[o++] = *e++;
            continue;
        }
        for (k = 0; k < sizeof(cps) / sizeof(cps[0]); k++)
            if (strncmp(e, alike[k], 3) == 0)
                break;
        if (k < sizeof(cps) / sizeof(cps[0])) {
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\u%04x", cps[k]);
            e += 3;
            continue;
        }
        buf[o++] = *e++;
    }
    buf[o] = 0;
    return buf;
}

int cli_write_text(const char *s, size_t n)
{
    cli_put_text(stdout, s, n);
    if (ferror(stdout) || fflush(stdout) != 0) {
        fprintf(stderr, "notes: cannot write output: %s\n", strerror(errno));
        return EXIT_SYSTEM;
    }
    return 0;
}
