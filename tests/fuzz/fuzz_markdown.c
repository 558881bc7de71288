/*
 * fuzz_markdown.c: libFuzzer target for the Markdown importer. Every
 * accepted input must export back to the same bytes; a refused one must
 * leave the doc empty; the outline, JSON and HTML exports must work and
 * the HTML stay inert; after field edits with YAML-hostile values the
 * export must import again with those values. abort() on any broken
 * invariant. Build and run: formats/README.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notes_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static notes_identity *fuzz_id;

static const char tricky[] = "x: \"y\" #z 'w' \\ é";

/*
 * The HTML page is inert: every tag has only known attributes, no
 * <script>, no href / src with a scheme other than http(s) / mailto /
 * tel / ftp (after dropping what browsers ignore).
 */
static void check_html(const char *h, size_t n)
{
    static const char *const ok_attrs[] = {
        "href",  "src",     "alt",        "title",   "class", "style",
        "lang",  "charset", "http-equiv", "content", "name",  "start",
        "align", "checked", "disabled",   "type",    "datetime", NULL};
    for (size_t i = 0; i < n; i++) {
        if (h[i] != '<')
            continue;
        size_t j = i + 1;
        if (j < n && (h[j] == '/' || h[j] == '!'))
            continue;
        if (n - j >= 6 && strncasecmp(h + j, "script", 6) == 0)
            abort();
        while (j < n && h[j] != ' ' && h[j] != '>')
            j++;
        while (j < n && h[j] != '>') {
            while (j < n && h[j] == ' ')
                j++;
            size_t a = j;
            while (j < n && h[j] != '=' && h[j] != ' ' && h[j] != '>')
                j++;
            int known = a == j || (a + 1 == j && h[a] == '/');
            for (size_t k = 0; ok_attrs[k] && !known; k++)
                known = strlen(ok_attrs[k]) == j - a &&
                        strncmp(h + a, ok_attrs[k], j - a) == 0;
            if (!known)
                abort();
            if (j < n && h[j] == '=') {
                if (++j >= n || h[j] != '"')
                    abort();
                size_t v = ++j;
                while (j < n && h[j] != '"')
                    j++;
                int url = (j - v < 64) && a + 4 <= n &&
                          (strncmp(h + a, "href", 4) == 0 ||
                           strncmp(h + a, "src=", 4) == 0);
                char scheme[80];
                size_t k = 0;
                for (size_t x = v; url && x < j && k + 1 < sizeof(scheme);
                     x++) {
                    char c = h[x];
                    if (c == '&' && j - x >= 5 && !strncmp(h + x, "&amp;", 5))
                        x += 4;
                    else if (c == '&' && j - x >= 7 &&
                             !strncmp(h + x, "&colon;", 7))
                        c = ':', x += 6;
                    else if (c == '&' && j - x >= 3 && h[x + 1] == '#') {
                        char *e;
                        int hx = h[x + 2] == 'x' || h[x + 2] == 'X';
                        unsigned long cp =
                            strtoul(h + x + 2 + hx, &e, hx ? 16 : 10);
                        if (e < h + j && *e == ';') {
                            c = cp < 0x80 ? (char)cp : '?';
                            x = (size_t)(e - h);
                        }
                    }
                    if ((unsigned char)c > 0x20 && c != 0x7f)
                        scheme[k++] = (char)(c | 0x20);
                }
                scheme[k] = 0;
                if (url && (!strncmp(scheme, "javascript:", 11) ||
                            !strncmp(scheme, "vbscript:", 9) ||
                            !strncmp(scheme, "data:", 5)))
                    abort();
                j++;
            }
        }
        i = j;
    }
}

/* A second awkward value: a line break, a comma, quotes, a comment. */
static const char tricky2[] = "a, b\n  \"c\": 'd' # e\t";

struct edits {
    int title_is_scalar; /* a non-empty list would hide the register */
    char other[200];     /* another scalar key that was set, or "" */
};

static int has(const char *const *l, const char *v)
{
    for (size_t i = 0; l[i]; i++)
        if (strcmp(l[i], v) == 0)
            return 1;
    return 0;
}

static void check_reimport(const char *md, size_t n, const struct edits *ed)
{
    notes_doc *d;
    notes_fmt_diag diag;
    if (notes_doc_memory(fuzz_id, NULL, &d))
        abort();
    if (notes_fmt_md_import(d, md, n, &diag) != NOTES_OK)
        abort(); /* an edited export must still be valid */
    const char *t = notes_doc_field(d, "title");
    if (ed->title_is_scalar && (!t || strcmp(t, tricky) != 0))
        abort();
    if (!has(notes_doc_list(d, "participants"), tricky) ||
        !has(notes_doc_list(d, "tags"), tricky2))
        abort();
    if (ed->other[0]) {
        t = notes_doc_field(d, ed->other);
        if (!t || strcmp(t, tricky2) != 0)
            abort();
    }
    notes_doc_free(d);
}

/* Edit scalars and lists, export, import again: the values survive. */
static void edit_and_reimport(notes_doc *d)
{
    struct edits ed;
    char *out;
    size_t n;
    memset(&ed, 0, sizeof(ed));
    ed.title_is_scalar = notes_doc_list(d, "title")[0] == NULL;
    const char *const *names = notes_doc_fields(d);
    for (size_t i = 0; names[i]; i++)
        if (names[i][0] != '@' && strcmp(names[i], "title") &&
            strcmp(names[i], "participants") && strcmp(names[i], "tags") &&
            strcmp(names[i], "teams") && /* list keys: comma strings */
            !notes_doc_list(d, names[i])[0] &&
            strlen(names[i]) < sizeof(ed.other)) {
            strcpy(ed.other, names[i]);
            break;
        }
    if (notes_doc_set_field(d, "title", tricky) ||
        notes_doc_list_add(d, "participants", tricky) ||
        notes_doc_list_add(d, "tags", tricky2) ||
        (ed.other[0] && notes_doc_set_field(d, ed.other, tricky2)))
        abort();
    if (notes_fmt_md_export(d, &out, &n))
        abort();
    check_reimport(out, n, &ed);
    notes_fmt_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    notes_doc *d;
    notes_fmt_diag diag;
    char *out = NULL;
    size_t n = 0;
    if (!fuzz_id) {
        if (notes_init() || notes_identity_generate("fuzz", &fuzz_id))
            abort();
    }
    if (notes_doc_memory(fuzz_id, NULL, &d))
        abort();
    int rc = notes_fmt_md_import(d, (const char *)data, size, &diag);
    if (rc != NOTES_OK) {
        if (rc == NOTES_ENOMEM)
            abort();
        if (notes_doc_length(d) != 0 || notes_doc_fields(d)[0] ||
            notes_doc_dirty(d))
            abort(); /* a refused input must create nothing */
        notes_doc_free(d);
        return 0;
    }
    if (notes_fmt_md_export(d, &out, &n) || n != size ||
        (size && memcmp(out, data, size) != 0))
        abort();
    notes_fmt_free(out);
    if (notes_doc_commit(d, NULL))
        abort();

    notes_fmt_outline o;
    if (notes_fmt_outline_doc(d, &o))
        abort();
    notes_fmt_outline_clear(&o);
    if (notes_fmt_json_export(d, &out, &n))
        abort();
    notes_fmt_free(out);
    if (notes_fmt_html_export(d, NOTES_FMT_HTML_AUTHORSHIP, &out, &n))
        abort();
    check_html(out, n);
    notes_fmt_free(out);

    edit_and_reimport(d);
    notes_doc_free(d);
    return 0;
}
