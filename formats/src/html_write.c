/*
 * html_write.c: note -> one standalone HTML page (the only file that
 * includes <md4c-html.h>). md4c renders the text with raw HTML disabled;
 * the links it writes are then checked and any scheme other than http,
 * https, mailto, tel or ftp is replaced by "#". Everything else written
 * here goes through notes_fmt__put_html. No script, inline CSS only, and
 * a Content-Security-Policy that forbids loading anything.
 */
#include <md4c-html.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmt_internal.h"

static const char css[] =
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;"
    "max-width:52rem;margin:2rem auto;padding:0 "
    "1rem;color:#1f2328;background:#fff}"
    "header{border-bottom:1px solid #d0d7de;margin-bottom:1.5rem}"
    "header h1{margin:.2rem 0 .6rem}"
    "dl.fm{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;"
    "font-size:.92rem;margin:0 0 1rem}"
    "dl.fm dt{color:#59636e;font-weight:600}dl.fm dd{margin:0}"
    ".chip{display:inline-block;background:#eef1f4;border-radius:1rem;"
    "padding:0 .55rem;margin:0 .25rem .2rem 0}"
    "section.items{background:#f6f8fa;border:1px solid "
    "#d0d7de;border-radius:6px;"
    "padding:.6rem 1rem;margin-bottom:1.5rem}"
    "section.items h2{font-size:1.05rem;margin:.2rem 0 .5rem}"
    "section.items ul{padding-left:1.2rem;margin:0}"
    "section.items li{margin:.35rem 0}"
    ".owner{font-weight:600}.meta{display:block;font-size:.82rem;color:#59636e}"
    ".ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}"
    ".warn{color:#9a6700;font-weight:600}"
    ".done{text-decoration:line-through;color:#59636e}"
    "code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-"
    "size:.9em}"
    "pre{background:#f6f8fa;padding:.8rem;overflow:auto;border-radius:6px}"
    "main table{border-collapse:collapse}"
    "main td,main th{border:1px solid #d0d7de;padding:.25rem .6rem}"
    "section.who pre{white-space:pre-wrap;word-break:break-word}"
    ".legend span{display:inline-block;padding:0 .5rem;margin:0 .4rem .3rem 0;"
    "border-radius:4px}"
    "footer{margin-top:2rem;font-size:.8rem;color:#59636e}"
    /* Task items: the box on the line of its text, also in a loose list
     * (md4c writes <input><p>text</p>); done ones struck through. */
    "main li.task-list-item{list-style:none}"
    "main li.task-list-item>input{margin:0 .45em 0 -1.3em}"
    "main li.task-list-item>input+p{display:inline}";

static const char *const palette[] = {
    "#fde2a7", "#c8e6c9", "#bbdefb", "#f8bbd0", "#d1c4e9",
    "#ffccbc", "#b2ebf2", "#e6ee9c", "#cfd8dc", "#ffe0b2",
};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))

static void md_out(const MD_CHAR *s, MD_SIZE n, void *ud)
{
    notes_fmt__put(ud, s, n);
}

/* The emoji shortcodes meeting notes use most (HackMD renders them). */
static const char *const emoji[][2] = {
    {"dart", "\xf0\x9f\x8e\xaf"},
    {"rocket", "\xf0\x9f\x9a\x80"},
    {"memo", "\xf0\x9f\x93\x9d"},
    {"pencil", "\xf0\x9f\x93\x9d"},
    {"white_check_mark", "\xe2\x9c\x85"},
    {"heavy_check_mark", "\xe2\x9c\x94"},
    {"x", "\xe2\x9d\x8c"},
    {"warning", "\xe2\x9a\xa0"},
    {"bulb", "\xf0\x9f\x92\xa1"},
    {"calendar", "\xf0\x9f\x93\x86"},
    {"date", "\xf0\x9f\x93\x85"},
    {"pushpin", "\xf0\x9f\x93\x8c"},
    {"tada", "\xf0\x9f\x8e\x89"},
    {"clipboard", "\xf0\x9f\x93\x8b"},
    {"busts_in_silhouette", "\xf0\x9f\x91\xa5"},
    {"point_right", "\xf0\x9f\x91\x89"},
    {"question", "\xe2\x9d\x93"},
    {"exclamation", "\xe2\x9d\x97"},
    {"fire", "\xf0\x9f\x94\xa5"},
    {"star", "\xe2\xad\x90"},
    {"link", "\xf0\x9f\x94\x97"},
    {"book", "\xf0\x9f\x93\x96"},
    {"construction", "\xf0\x9f\x9a\xa7"},
    {"mega", "\xf0\x9f\x93\xa3"},
    {"speech_balloon", "\xf0\x9f\x92\xac"},
    {"+1", "\xf0\x9f\x91\x8d"},
    {"thumbsup", "\xf0\x9f\x91\x8d"},
    {"eyes", "\xf0\x9f\x91\x80"},
    {"wave", "\xf0\x9f\x91\x8b"},
    {"computer", "\xf0\x9f\x92\xbb"},
    {"bug", "\xf0\x9f\x90\x9b"},
};

/*
 * Copy md4c's HTML replacing known ":shortcode:"s in text (not inside a
 * tag, <code> or <pre>) by their emoji.
 */
static void put_emoji(struct notes_fmt__buf *b, const char *h, size_t n)
{
    size_t run = 0, code = 0;
    int tag = 0;
    for (size_t i = 0; i < n; i++) {
        if (tag) {
            tag = h[i] != '>';
            continue;
        }
        if (h[i] == '<') {
            if (n - i >= 5 &&
                (!strncmp(h + i, "<code", 5) || !strncmp(h + i, "<pre", 4)))
                code++;
            else if (code && n - i >= 6 &&
                     (!strncmp(h + i, "</code", 6) ||
                      !strncmp(h + i, "</pre", 5)))
                code--;
            tag = 1;
            continue;
        }
        if (h[i] != ':' || code)
            continue;
        size_t j = i + 1;
        while (j < n && j - i <= 24 &&
               strchr("abcdefghijklmnopqrstuvwxyz0123456789_+-", h[j]) && h[j])
            j++;
        if (j >= n || h[j] != ':' || j == i + 1)
            continue;
        for (size_t k = 0; k < sizeof(emoji) / sizeof(emoji[0]); k++)
            if (strlen(emoji[k][0]) == j - i - 1 &&
                !strncmp(h + i + 1, emoji[k][0], j - i - 1)) {
                notes_fmt__put(b, h + run, i - run);
                notes_fmt__puts(b, emoji[k][1]);
                run = j + 1;
                i = j;
                break;
            }
    }
    notes_fmt__put(b, h + run, n - run);
}

/* Decode the few entities md4c writes in attributes, and numeric ones. */
static size_t decode_attr(const char *v, size_t n, char *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < max; i++) {
        char c = v[i];
        if (c == '&') {
            const char *semi = memchr(v + i, ';', n - i);
            size_t el = semi ? (size_t)(semi - (v + i)) + 1 : 0;
            if (el == 5 && memcmp(v + i, "&amp;", 5) == 0)
                c = '&';
            else if (el == 6 && memcmp(v + i, "&quot;", 6) == 0)
                c = '"';
            else if (el == 4 && memcmp(v + i, "&lt;", 4) == 0)
                c = '<';
            else if (el == 4 && memcmp(v + i, "&gt;", 4) == 0)
                c = '>';
            else if (el > 3 && v[i + 1] == '#') {
                unsigned long cp = strtoul(
                    v + i + (v[i + 2] == 'x' || v[i + 2] == 'X' ? 3 : 2), NULL,
                    v[i + 2] == 'x' || v[i + 2] == 'X' ? 16 : 10);
                c = cp < 0x80 ? (char)cp : '?';
            } else if (el) {
                c = '?'; /* unknown entity: never part of a safe scheme */
            }
            if (el)
                i += el - 1;
        }
        if ((unsigned char)c <= 0x20 || c == 0x7f)
            continue; /* browsers ignore these in schemes */
        out[k++] = c;
    }
    out[k] = 0;
    return k;
}

/* A relative link or one with an allowed scheme. */
static int url_safe(const char *v, size_t n)
{
    static const char *const ok[] = {"http", "https", "mailto",
                                     "tel",  "ftp",   NULL};
    char buf[64];
    size_t k = decode_attr(v, n, buf, sizeof(buf));
    size_t i = strcspn(buf, ":/?#");
    if (i == k || buf[i] != ':')
        return k < sizeof(buf) - 1 || strchr(buf, '/') || strchr(buf, '?') ||
               strchr(buf, '#'); /* a long value must show where it starts */
    for (size_t j = 0; ok[j]; j++)
        if (strlen(ok[j]) == i && strncasecmp(buf, ok[j], i) == 0)
            return 1;
    return 0;
}

/* Copy md4c's output, neutralising unsafe href / src values. */
static void put_safe_links(struct notes_fmt__buf *b, const char *h, size_t n)
{
    static const char *const attrs[] = {"<a href=\"", "<img src=\"", NULL};
    size_t at = 0;
    while (at < n) {
        const char *best = NULL;
        size_t blen = 0;
        for (size_t j = 0; attrs[j]; j++) {
            const char *p = memmem(h + at, n - at, attrs[j], strlen(attrs[j]));
            if (p && (!best || p < best)) {
                best = p;
                blen = strlen(attrs[j]);
            }
        }
        if (!best) {
            notes_fmt__put(b, h + at, n - at);
            return;
        }
        size_t vs = (size_t)(best - h) + blen;
        const char *q = memchr(h + vs, '"', n - vs);
        size_t ve = q ? (size_t)(q - h) : n;
        notes_fmt__put(b, h + at, vs - at);
        if (url_safe(h + vs, ve - vs))
            notes_fmt__put(b, h + vs, ve - vs);
        else
            notes_fmt__putc(b, '#');
        at = ve;
    }
}

/* "Name `abcd-efgh`": the claimed name (if any) and the key's fingerprint;
 * for a device linked to a person, the person's name and key's
 * fingerprint, with the device in the tooltip. */
static void put_person(struct notes_fmt__buf *b, notes_doc *d, const uint8_t pk[32])
{
    char fpr[NOTES_FPR_STRLEN];
    const char *name = notes_doc_author_name(d, pk);
    notes_person_info pi;
    notes_key_fingerprint(pk, fpr);
    if (notes_doc_person(d, pk, &pi) == NOTES_OK && pi.person &&
        !pi.contested) {
        char pfpr[NOTES_FPR_STRLEN];
        notes_key_fingerprint(pi.person, pfpr);
        notes_fmt__puts(b, "<span title=\"device ");
        if (name) {
            notes_fmt__put_html(b, name, strlen(name));
            notes_fmt__putc(b, ' ');
        }
        notes_fmt__printf(b, "%s%s\">", fpr, pi.revoked ? ", revoked" : "");
        if (pi.name) {
            notes_fmt__put_html(b, pi.name, strlen(pi.name));
            notes_fmt__putc(b, ' ');
        }
        notes_fmt__printf(b, "<code>%s</code></span>", pfpr);
        return;
    }
    if (name) {
        notes_fmt__put_html(b, name, strlen(name));
        notes_fmt__putc(b, ' ');
    }
    notes_fmt__puts(b, "<code>");
    notes_fmt__puts(b, fpr);
    notes_fmt__puts(b, "</code>");
}

static void put_esc(struct notes_fmt__buf *b, const char *s)
{
    notes_fmt__put_html(b, s, strlen(s));
}

/* ---- dates a person reads ---- */

static const char *const month_name[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
static const char *const weekday_name[] = {"Thursday", "Friday", "Saturday",
                                           "Sunday",   "Monday", "Tuesday",
                                           "Wednesday"}; /* 1970-01-01 on */

/* Days from 1970-01-01 to a civil date, and back (proleptic Gregorian,
 * H. Hinnant's algorithms): no time zone database, no locale. */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, long *y, int *m, int *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int num(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* "Monday, 15 May 2023, 13:00 (UTC+02:00)" for the ISO 8601 the notes
 * hold (YYYY-MM-DD, then optionally THH:MM[:SS[.f]] and Z or ±HH:MM):
 * the day and time as written, in their own offset. 0 if s is not one
 * (then it is shown as written). */
static int readable_date(const char *s, char *out, size_t n)
{
    int y, mo, d, h = 0, mi = 0, oh = 0, om = 0, t = 0;
    char sign = 0;
    if (!num(s, 4, &y) || s[4] != '-' || !num(s + 5, 2, &mo) || s[7] != '-' ||
        !num(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        if (!num(p + 1, 2, &h) || p[3] != ':' || !num(p + 4, 2, &mi) || h > 23 ||
            mi > 59)
            return 0;
        t = 1;
        p += 6;
        if (*p == ':' && p[1] >= '0' && p[1] <= '9')
            for (p++; (*p >= '0' && *p <= '9') || *p == '.' || *p == ','; p++)
                ;
        if (*p == 'Z') {
            sign = 'Z';
            p++;
        } else if (*p == '+' || *p == '-') {
            sign = *p;
            if (!num(p + 1, 2, &oh))
                return 0;
            p += 3;
            if (*p == ':')
                p++;
            if (!num(p, 2, &om))
                return 0;
            p += 2;
        }
    }
    if (*p)
        return 0;
    long days = days_from_civil(y, mo, d);
    long wd = ((days % 7) + 7) % 7;
    int k = snprintf(out, n, "%s, %d %s %d", weekday_name[wd], d,
                     month_name[mo - 1], y);
    if (t && k > 0 && (size_t)k < n)
        k += snprintf(out + k, n - (size_t)k, ", %02d:%02d", h, mi);
    if (sign == 'Z' && k > 0 && (size_t)k < n)
        snprintf(out + k, n - (size_t)k, " UTC");
    else if (sign && k > 0 && (size_t)k < n)
        snprintf(out + k, n - (size_t)k, " (UTC%c%02d:%02d)", sign, oh, om);
    return 1;
}

/* A date field: <time datetime="as written">readable</time>. */
static void put_date(struct notes_fmt__buf *b, const char *v)
{
    char when[96];
    if (!readable_date(v, when, sizeof(when))) {
        put_esc(b, v);
        return;
    }
    notes_fmt__puts(b, "<time datetime=\"");
    put_esc(b, v);
    notes_fmt__puts(b, "\">");
    put_esc(b, when);
    notes_fmt__puts(b, "</time>");
}

/* The title field, else "Meeting of <datetime>", else "Untitled note". */
static void put_title(struct notes_fmt__buf *b, notes_doc *d)
{
    const char *title = notes_doc_field(d, "title");
    const char *when = notes_doc_field(d, "datetime");
    if (title && *title) {
        put_esc(b, title);
    } else if (when && *when) {
        char day[96];
        notes_fmt__puts(b, "Meeting of ");
        put_esc(b, readable_date(when, day, sizeof(day)) ? day : when);
    } else {
        notes_fmt__puts(b, "Untitled note");
    }
}

static void put_header(struct notes_fmt__buf *b, notes_doc *d)
{
    notes_fmt__puts(b, "<header><h1>");
    put_title(b, d);
    notes_fmt__puts(b, "</h1>\n<dl class=\"fm\">\n");
    const char *const *names = notes_doc_fields(d);
    for (size_t i = 0; names[i]; i++) {
        if (names[i][0] == '@' || strcmp(names[i], "title") == 0)
            continue;
        notes_fmt__puts(b, "<dt>");
        put_esc(b, names[i]);
        notes_fmt__puts(b, "</dt><dd>");
        const char *const *l = notes_doc_list(d, names[i]);
        if (l[0]) {
            for (size_t k = 0; l[k]; k++) {
                notes_fmt__puts(b, "<span class=\"chip\">");
                put_esc(b, l[k]);
                notes_fmt__puts(b, "</span>");
            }
        } else {
            const char *v = notes_doc_field(d, names[i]);
            if (v && (strcmp(names[i], "datetime") == 0 ||
                      strcmp(names[i], "date") == 0))
                put_date(b, v);
            else
                put_esc(b, v ? v : "");
        }
        notes_fmt__puts(b, "</dd>\n");
    }
    notes_fmt__puts(b, "</dl></header>\n");
}

/* What a confirmation confirmed: "owner: text", or the text alone. */
static void put_confirmed_text(struct notes_fmt__buf *b,
                               const notes_fmt_confirm *c)
{
    if (*c->owner) {
        put_esc(b, c->owner);
        notes_fmt__puts(b, ": ");
    }
    put_esc(b, c->text);
}

/* One confirmation of an item: counted ones as "confirmed by", the others
 * with why they do not count (a repeat by the same person is left out). */
static void put_confirm(struct notes_fmt__buf *b, notes_doc *d,
                        const notes_fmt_confirm *c)
{
    static const char *const why[] = {
        [NOTES_FMT_CONF_CHANGED] = "changed since confirmed by ",
        [NOTES_FMT_CONF_WRONG_TEXT] = "&#10007; confirmed another text: ",
        [NOTES_FMT_CONF_UNKNOWN_KEY] =
            "&#10007; not counted, a key linked to no person: ",
        [NOTES_FMT_CONF_REVOKED] = "&#10007; not counted, a revoked device: ",
    };
    if (c->state == NOTES_FMT_CONF_CONFIRMED) {
        if (!c->counted)
            return;
        notes_fmt__puts(b, "; <span class=\"ok\">&#10003; confirmed by ");
    } else if (c->state > 0 && (size_t)c->state < sizeof(why) / sizeof(*why) &&
               why[c->state]) {
        notes_fmt__puts(b, "; <span class=\"bad\" title=\"it confirmed: ");
        put_confirmed_text(b, c);
        notes_fmt__puts(b, "\">");
        notes_fmt__puts(b, why[c->state]);
    } else {
        return;
    }
    put_person(b, d, c->by.device);
    notes_fmt__puts(b, "</span>");
}

static void put_items(struct notes_fmt__buf *b, notes_doc *d, const notes_fmt_outline *o)
{
    if (!o->nitems && !o->norphans)
        return;
    notes_fmt__puts(b, "<section class=\"items\"><h2>Decisions and action items"
                       "</h2>\n<ul>\n");
    for (size_t i = 0; i < o->nitems; i++) {
        const notes_fmt_item *it = &o->items[i];
        notes_fmt__puts(b, "<li>");
        if (it->kind == NOTES_FMT_ITEM_TASK)
            notes_fmt__puts(b, it->done ? "&#9745; " : "&#9744; ");
        if (it->owner) {
            notes_fmt__puts(b, "<span class=\"owner\" title=\"written as ");
            put_esc(b, it->owner_written ? it->owner_written : it->owner);
            notes_fmt__puts(b, "\">");
            put_esc(b, it->owner);
            notes_fmt__puts(b, ":</span> ");
        }
        notes_fmt__puts(b, it->kind == NOTES_FMT_ITEM_TASK && it->done
                               ? "<span class=\"done\">"
                               : "<span>");
        put_esc(b, it->text);
        notes_fmt__puts(b, "</span><span class=\"meta\">");
        if (it->nauthors) {
            notes_fmt__puts(b, "recorded by ");
            put_person(b, d, it->authors[0]);
            for (size_t a = 1; a < it->nauthors; a++) {
                notes_fmt__puts(b, a == 1 ? "; edited by " : ", ");
                put_person(b, d, it->authors[a]);
            }
            notes_fmt__puts(b, " ");
        }
        /* a revoked device's text is told apart from everyone else's, and
         * what it may have written after its revocation (which had not
         * seen it) from what it wrote before */
        notes_fmt__puts(
            b,
            !it->verified
                ? "<span class=\"bad\" title=\"not covered by verified "
                  "signatures (uncommitted?)\">&#10007; not verified</span>"
            : it->revocation == NOTES_FMT_REV_AFTER
                ? "<span class=\"bad\" title=\"a device revoked since wrote "
                  "some of it without having seen its revocation: maybe not "
                  "its owner\">&#10007; from a revoked device, maybe after "
                  "its revocation</span>"
            : it->revocation == NOTES_FMT_REV_BEFORE
                ? "<span class=\"warn\" title=\"every signature verifies; "
                  "a device that wrote it was revoked later\">&#10003; "
                  "verified, written before its device was revoked</span>"
                : "<span class=\"ok\" title=\"every signature verifies\">"
                  "&#10003; verified</span>");
        for (size_t k = 0; k < it->nconfirms; k++)
            put_confirm(b, d, &it->confirms[k]);
        notes_fmt__puts(b, "</span></li>\n");
    }
    notes_fmt__puts(b, "</ul>\n");
    if (o->norphans) {
        notes_fmt__puts(b, "<p>Confirmations of items no longer in the note:"
                           "</p>\n<ul>\n");
        for (size_t k = 0; k < o->norphans; k++) {
            const notes_fmt_confirm *c = &o->orphan_confirms[k];
            notes_fmt__puts(b, "<li><span>");
            put_confirmed_text(b, c);
            notes_fmt__puts(b, "</span><span class=\"meta\">confirmed by ");
            put_person(b, d, c->by.device);
            notes_fmt__puts(b, "</span></li>\n");
        }
        notes_fmt__puts(b, "</ul>\n");
    }
    notes_fmt__puts(b, "</section>\n");
}

/* The text with each author's insertions on their own colour. */
static int put_authorship(struct notes_fmt__buf *b, notes_doc *d, const char *t,
                          size_t tl)
{
    uint32_t *ch;
    size_t ncp, nchanges;
    int rc = notes_fmt__authorship(d, &ch, &ncp, &nchanges);
    if (rc)
        return rc > 0 ? NOTES_OK : rc;
    uint8_t(*keys)[32] = calloc(nchanges + 1, 32);
    size_t nkeys = 0;
    if (!keys) {
        notes_free(ch);
        return NOTES_ENOMEM;
    }
    /* colour index per change: its author's order of first appearance */
    size_t *col = malloc((nchanges + 1) * sizeof(*col));
    if (!col) {
        free(keys);
        notes_free(ch);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < nchanges; i++) {
        notes_change_info ci;
        col[i] = SIZE_MAX;
        if (notes_doc_change(d, i, &ci))
            continue;
        size_t k;
        for (k = 0; k < nkeys && memcmp(keys[k], ci.author, 32) != 0; k++)
            ;
        if (k == nkeys)
            memcpy(keys[nkeys++], ci.author, 32);
        col[i] = k;
    }
    notes_fmt__puts(b, "<section class=\"who\"><h2>Who wrote what</h2>\n"
                       "<p class=\"legend\">");
    for (size_t k = 0; k < nkeys; k++) {
        notes_fmt__printf(b, "<span style=\"background:%s\">",
                          palette[k % NPALETTE]);
        put_person(b, d, keys[k]);
        notes_fmt__puts(b, "</span>");
    }
    notes_fmt__puts(b, "</p>\n<pre>");
    size_t at = 0, cp = 0, cur = SIZE_MAX;
    while (at < tl && cp < ncp) {
        size_t run = at, c = ch[cp] < nchanges ? col[ch[cp]] : SIZE_MAX;
        while (at < tl && cp < ncp &&
               (ch[cp] < nchanges ? col[ch[cp]] : SIZE_MAX) == c) {
            size_t l;
            notes_fmt__utf8_get(t + at, tl - at, &l);
            at += l;
            cp++;
        }
        if (c != cur) {
            if (cur != SIZE_MAX)
                notes_fmt__puts(b, "</span>");
            if (c != SIZE_MAX)
                notes_fmt__printf(b, "<span style=\"background:%s\">",
                                  palette[c % NPALETTE]);
            cur = c;
        }
        notes_fmt__put_html(b, t + run, at - run);
    }
    if (cur != SIZE_MAX)
        notes_fmt__puts(b, "</span>");
    notes_fmt__puts(b, "</pre></section>\n");
    free(col);
    free(keys);
    notes_free(ch);
    return NOTES_OK;
}

/*
 * md4c's task items, done ones struck through like the items box: after
 * the checked box, a loose item's paragraph becomes <p class="done">, a
 * tight item's text up to its end or a nested block goes in
 * <span class="done">. md4c escapes every "<" of the note (MD_FLAG_NOHTML),
 * so the tags matched here are its own.
 */
static void put_tasks(struct notes_fmt__buf *b, const char *h, size_t n)
{
    static const char box[] =
        "<input type=\"checkbox\" class=\"task-list-item-checkbox\" disabled "
        "checked>";
    static const char *const stops[] = {"</li>", "<ul", "<ol", "<p>", "<pre",
                                        "<blockquote", "<table", "<h", "<div",
                                        "<hr", NULL};
    size_t at = 0, bl = sizeof(box) - 1;
    for (;;) {
        const char *p = memmem(h + at, n - at, box, bl);
        if (!p) {
            notes_fmt__put(b, h + at, n - at);
            return;
        }
        size_t after = (size_t)(p - h) + bl;
        notes_fmt__put(b, h + at, after - at);
        if (n - after >= 3 && memcmp(h + after, "<p>", 3) == 0) {
            notes_fmt__puts(b, "<p class=\"done\">");
            at = after + 3;
            continue;
        }
        size_t end = n;
        for (size_t k = 0; stops[k]; k++) {
            const char *q = memmem(h + after, n - after, stops[k], strlen(stops[k]));
            if (q && (size_t)(q - h) < end)
                end = (size_t)(q - h);
        }
        notes_fmt__puts(b, "<span class=\"done\">");
        notes_fmt__put(b, h + after, end - after);
        notes_fmt__puts(b, "</span>");
        at = end;
    }
}

/* When the page was made: $SOURCE_DATE_EPOCH if set (reproducible
 * exports), else now; as "Monday, 7 December 2026, 10:27 UTC". */
static void export_date(char *out, size_t n)
{
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;
    long long t = sde && *sde ? strtoll(sde, &end, 10) : -1;
    if (t < 0 || !end || *end)
        t = (long long)time(NULL);
    long days = (long)(t / 86400), secs = (long)(t % 86400), y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, n, "%s, %d %s %ld, %02ld:%02ld UTC",
             weekday_name[((days % 7) + 7) % 7], d, month_name[m - 1], y,
             secs / 3600, secs / 60 % 60);
}

/* The footer: when and from what the page was made, and how to check the
 * signed note it copies (the page itself carries no signature). */
static void put_footer(struct notes_fmt__buf *b, notes_doc *d)
{
    uint8_t(*heads)[32] = NULL, (*keys)[32] = NULL;
    size_t nh = 0, na = 0, nc = notes_doc_change_count(d);
    char when[96], id[9];
    const uint8_t *nid = notes_doc_id(d);
    snprintf(id, sizeof(id), "%02x%02x%02x%02x", nid[0], nid[1], nid[2], nid[3]);
    export_date(when, sizeof(when));
    if (notes_fmt_authors(d, &keys, &na) != NOTES_OK)
        na = 0;
    notes_fmt_free(keys);
    notes_fmt__printf(b, "<footer><p>Exported %s by notes from note "
                         "<code>%s</code>", when, id);
    if (notes_doc_heads(d, &heads, &nh) == NOTES_OK && nh) {
        notes_fmt__puts(b, nh == 1 ? ", version" : ", versions");
        for (size_t i = 0; i < nh; i++)
            notes_fmt__printf(b, "%s <code>%02x%02x%02x%02x</code>",
                              i == 0 ? "" : i + 1 == nh ? " and" : ",",
                              heads[i][0], heads[i][1], heads[i][2], heads[i][3]);
        notes_fmt__printf(b, " (%zu signed change%s by %zu author%s)", nc,
                          nc == 1 ? "" : "s", na, na == 1 ? "" : "s");
    } else {
        notes_fmt__puts(b, " (nothing committed yet)");
    }
    notes_free(heads);
    notes_fmt__printf(b, ".</p><p>This page is a copy and carries no "
                         "signature. To check who wrote what, verify the "
                         "signed note: <code>notes export %s --format bundle "
                         "-o note.bundle</code>, then anyone runs "
                         "<code>notes verify note.bundle</code>.</p></footer>\n",
                      id);
}

int notes_fmt_html_export(notes_doc *d, unsigned flags, char **out, size_t *n)
{
    struct notes_fmt__buf b = NOTES_FMT__BUF_INIT, md = NOTES_FMT__BUF_INIT;
    notes_fmt_outline o;
    size_t tl;
    int rc;
    if ((rc = notes_fmt__export_start(d, out, n, "HTML export")))
        return rc;
    if (flags & ~(unsigned)NOTES_FMT_HTML_AUTHORSHIP)
        return notes_fmt__fail(NOTES_EINVAL, "HTML export: unknown flags %#x",
                               flags);
    if ((rc = notes_fmt_outline_doc(d, &o)))
        return rc;
    notes_fmt__puts(
        &b,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
        "<meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\""
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'none'; base-uri 'none'\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<title>");
    put_title(&b, d);
    notes_fmt__puts(&b, "</title>\n<style>");
    notes_fmt__puts(&b, css);
    notes_fmt__puts(&b, "</style>\n</head>\n<body>\n");
    put_header(&b, d);
    put_items(&b, d, &o);
    notes_fmt_outline_clear(&o);

    const char *t = notes_doc_text(d, &tl);
    if (md_html(t, (MD_SIZE)tl, md_out, &md, MD_DIALECT_GITHUB | MD_FLAG_NOHTML,
                MD_HTML_FLAG_SKIP_UTF8_BOM) != 0)
        md.failed = 1;
    if (md.failed) {
        notes_fmt__release(&md);
        notes_fmt__release(&b);
        return NOTES_ENOMEM;
    }
    struct notes_fmt__buf tk = NOTES_FMT__BUF_INIT, em = NOTES_FMT__BUF_INIT;
    put_tasks(&tk, notes_fmt__str(&md), md.b.len);
    notes_fmt__release(&md);
    put_emoji(&em, notes_fmt__str(&tk), tk.b.len);
    if (tk.failed)
        em.failed = 1;
    notes_fmt__release(&tk);
    notes_fmt__puts(&b, "<main class=\"note\">\n");
    put_safe_links(&b, notes_fmt__str(&em), em.b.len);
    notes_fmt__puts(&b, "</main>\n");
    if (em.failed)
        b.failed = 1;
    notes_fmt__release(&em);

    if (flags & NOTES_FMT_HTML_AUTHORSHIP) {
        t = notes_doc_text(d, &tl);
        if ((rc = put_authorship(&b, d, t, tl))) {
            notes_fmt__release(&b);
            return rc;
        }
    }
    put_footer(&b, d);
    notes_fmt__puts(&b, "</body>\n</html>\n");
    return notes_fmt__detach(&b, out, n);
}
