/*
 * cmd_blame.c: `notes blame`, each line of a note with who wrote it (front
 * matter included); also the lines in the report of `notes verify FILE`.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A key line of YAML front matter: "key:" at column 0; *rest: whether a
 * value follows on the line. The key, unquoted, into out. */
static int fm_key_line(const char *s, size_t n, char *out, size_t cap,
                       int *rest)
{
    if (!n || s[0] == ' ' || s[0] == '\t' || s[0] == '#' || s[0] == '-' ||
        s[0] == '.' || s[0] == '\r')
        return 0;
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return 0;
    size_t kl = (size_t)(colon - s);
    const char *k = s;
    if (kl >= 2 && (k[0] == '"' || k[0] == '\'') && k[kl - 1] == k[0]) {
        k++;
        kl -= 2;
    }
    if (kl == 0 || kl >= cap)
        return 0;
    memcpy(out, k, kl);
    out[kl] = 0;
    const char *r = colon + 1, *end = s + n;
    while (r < end && (*r == ' ' || *r == '\t' || *r == '\r'))
        r++;
    *rest = r < end && *r != '#';
    return 1;
}

/* A list item line "  - value": the value, unquoted, into out. */
static int fm_item_line(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i + 1 >= n || s[i] != '-' || s[i + 1] != ' ')
        return 0;
    i += 2;
    while (i < n && s[i] == ' ')
        i++;
    size_t e = n;
    while (e > i && (s[e - 1] == '\r' || s[e - 1] == ' '))
        e--;
    if (e - i >= 2 && (s[i] == '"' || s[i] == '\'') && s[e - 1] == s[i]) {
        i++;
        e--;
    }
    if (e - i >= cap)
        return 0;
    memcpy(out, s + i, e - i);
    out[e - i] = 0;
    return 1;
}

/* Who wrote each line of the front matter (the first fm bytes of md):
 * changes[line], SIZE_MAX when none is known. */
static size_t *fm_blame(notes_doc *d, const char *md, size_t fm, size_t *nl)
{
    size_t lines = 0;
    for (size_t i = 0; i < fm; i++)
        lines += md[i] == '\n';
    size_t *out = malloc((lines + 1) * sizeof(*out));
    if (!out)
        return NULL;
    /* Fences, comments: the layout's last writer, else the first field's. */
    size_t frame = SIZE_MAX, ch;
    if (notes_doc_field_change(d, "@frontmatter", NULL, 0, &frame)) {
        const char *const *names = notes_doc_fields(d);
        for (size_t i = 0; names[i]; i++)
            if (!notes_doc_field_change(d, names[i], NULL, 1, &ch) &&
                (frame == SIZE_MAX || ch < frame))
                frame = ch;
    }
    char key[256] = "", item[4096];
    int inkey = 0;
    size_t nitem = 0, li = 0;
    for (const char *s = md, *end = md + fm; s < end && li < lines; li++) {
        const char *nlp = memchr(s, '\n', (size_t)(end - s));
        size_t len = (size_t)((nlp ? nlp : end) - s);
        int rest = 0;
        char k[256];
        out[li] = frame;
        if (li == 0) {
            /* the opening fence */
        } else if (fm_key_line(s, len, k, sizeof(k), &rest)) {
            inkey = !notes_doc_field_change(d, k, NULL, !rest, &ch);
            if (inkey) {
                snprintf(key, sizeof(key), "%s", k);
                nitem = 0;
                out[li] = ch;
            }
        } else if (inkey) {
            const char *const *l = notes_doc_list(d, key);
            size_t cnt = 0;
            while (l[cnt])
                cnt++;
            if (fm_item_line(s, len, item, sizeof(item)) && cnt &&
                (!notes_doc_field_change(d, key, item, 0, &ch) ||
                 (nitem < cnt &&
                  !notes_doc_field_change(d, key, l[nitem], 0, &ch)))) {
                out[li] = ch;
                nitem++;
            } else if (!notes_doc_field_change(d, key, NULL, 0, &ch)) {
                out[li] = ch; /* a scalar's continuation */
            }
        }
        s = nlp ? nlp + 1 : end;
    }
    /* The closing fence. */
    if (lines)
        out[lines - 1] = frame;
    *nl = lines;
    return out;
}

static int cmp_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* One blamed line: every change whose text is in it, latest first. */
static void blame_line(struct cli_ctx *ctx, notes_doc *d, json_t *arr,
                       const char *report, size_t line, const size_t *ch,
                       size_t nch, const char *s, size_t len)
{
    char hex[13] = "?", names[2048] = "", who[400];
    size_t o = 0;
    json_t *authors = arr ? json_array() : NULL;
    const uint8_t *seen[8];
    size_t nseen = 0;
    uint64_t ms;
    if (nch)
        cli_change_hex(d, ch[0], hex, &ms);
    for (size_t k = 0; k < nch; k++) {
        notes_change_info ci;
        if (notes_doc_change(d, ch[k], &ci))
            continue;
        size_t j = 0;
        while (j < nseen && memcmp(seen[j], ci.author, 32) != 0)
            j++;
        if (j < nseen)
            continue; /* one name per author */
        if (nseen < 8)
            seen[nseen++] = ci.author;
        cli_author(ctx, d, ci.author, who, sizeof(who));
        if (authors) {
            char h[13], fpr[NOTES_FPR_STRLEN];
            cli_change_hex(d, ch[k], h, &ms);
            notes_key_fingerprint(ci.author, fpr);
            json_array_append_new(authors,
                                  json_pack("{s:s, s:s, s:s}", "author", who,
                                            "key", fpr, "change", h));
        }
        if (o < sizeof(names))
            o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
                                  o ? ", " : "", who);
    }
    if (!names[0])
        snprintf(names, sizeof(names), "?");
    if (arr) {
        json_t *first = json_array_get(authors, 0);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s?, s:s, s:o, s:s%}", "line",
                           (json_int_t)line, "author",
                           first ? json_string_value(json_object_get(first, "author")) : "?",
                           "key",
                           first ? json_string_value(json_object_get(first, "key")) : NULL,
                           "change", hex, "authors", authors, "text", s, len));
    } else if (report) {
        printf("  %-12s ", hex);
        cli_pad(names, 30);
        printf(" %4zu| %s\n", line, cli_escn(s, len));
    } else {
        /* Never cut: a long claimed name would cut the fingerprint. */
        printf("%-12s ", hex);
        cli_pad(names, 24);
        printf(" %4zu| ", line);
        cli_put_text(stdout, s, len);
        putchar('\n');
    }
}

int cli_blame_lines(struct cli_ctx *ctx, notes_doc *d, json_t *arr,
                    const char *report)
{
    uint32_t *who;
    size_t ncp, tl, mdn, nfm = 0;
    int rc = notes_doc_authorship(d, &who, &ncp);
    if (rc)
        return cli_fail(rc, "cannot compute authorship");
    /* Lines are counted in the file `notes show` prints: front matter
     * first, then the text. */
    char *md = cli_render_markdown(d, &mdn);
    if (!md) {
        notes_free(who);
        return EXIT_SYSTEM;
    }
    size_t fm = cli_fm_bytes(d, mdn);
    size_t *fmch = fm_blame(d, md, fm, &nfm);
    size_t *chs = malloc(sizeof(*chs) * 64);
    if (!fmch || !chs) {
        free(fmch);
        free(chs);
        free(md);
        notes_free(who);
        return cli_fail(NOTES_ENOMEM, "cannot compute authorship");
    }
    if (!arr && report)
        printf("%s", report);
    size_t line = 1;
    for (const char *s = md, *end = md + fm; s < end; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        size_t c = line - 1 < nfm ? fmch[line - 1] : SIZE_MAX;
        blame_line(ctx, d, arr, report, line, &c, c != SIZE_MAX, s,
                   (size_t)(le - s));
        s = nl ? nl + 1 : end;
    }
    const char *t = notes_doc_text(d, &tl);
    size_t cp = 0;
    const char *s = t, *end = t + tl;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        /* Every change that wrote a character of the line (its newline
         * included): a line two people rewrote names both. */
        size_t ncp_line = notes__utf8_count((const uint8_t *)s,
                                            (size_t)(le - s) + (nl ? 1 : 0));
        size_t nch = 0;
        for (size_t k = cp; k < cp + ncp_line && k < ncp; k++) {
            size_t c = who[k], j = 0;
            if (who[k] == UINT32_MAX)
                continue;
            while (j < nch && chs[j] != c)
                j++;
            if (j == nch && nch < 64)
                chs[nch++] = c;
        }
        qsort(chs, nch, sizeof(*chs), cmp_desc);
        blame_line(ctx, d, arr, report, line, chs, nch, s, (size_t)(le - s));
        cp += ncp_line;
        s = nl ? nl + 1 : end;
        line++;
    }
    free(chs);
    free(fmch);
    free(md);
    notes_free(who);
    return 0;
}

int cmd_blame(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if ((rc = cli_open_note_arg(ctx, argc, argv, "blame", 1, &d)))
        return rc;
    json_t *arr = ctx->json ? json_array() : NULL;
    if ((rc = cli_blame_lines(ctx, d, arr, NULL)) == 0)
        cli_json_out(arr);
    else
        json_decref(arr);
    notes_doc_free(d);
    return rc;
}
