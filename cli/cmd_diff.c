/*
 * cmd_diff.c: `notes diff`, a unified diff of the whole note between two
 * versions, or between one and now.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The whole note (front matter and text, as `notes show` prints it) at
 * change `spec`, or now when spec is NULL. */
static char *markdown_at(notes_doc *d, const char *spec, size_t *n, int *ret)
{
    notes_doc *v = NULL;
    if (spec && (*ret = cli_note_at(d, spec, &v)))
        return NULL;
    char *md = cli_render_markdown(v ? v : d, n);
    if (!md)
        *ret = EXIT_SYSTEM;
    notes_doc_free(v);
    return md;
}

int cmd_diff(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc = 0;
    const char *pos[3];
    if ((rc = cli_open_note_pos(ctx, argc, argv, "diff", pos, 3, 2, &d)))
        return rc;
    size_t na = 0, nb = 0, ia, ib;
    uint8_t ida[32] = {0}, idb[32] = {0};
    char la[40] = "", lb[40] = "", *a = NULL, *b = NULL;
    if ((rc = cli_change_arg(d, pos[1], &ia, ida)) ||
        (pos[2] && (rc = cli_change_arg(d, pos[2], &ib, idb))) ||
        !(a = markdown_at(d, pos[1], &na, &rc)) ||
        !(b = markdown_at(d, pos[2], &nb, &rc))) {
        free(a);
        notes_doc_free(d);
        return rc;
    }
    /* "a/" and "b/" then the first 12 hex digits of each change id */
    snprintf(la, sizeof(la), "a/%02x%02x%02x%02x%02x%02x", ida[0], ida[1],
             ida[2], ida[3], ida[4], ida[5]);
    if (pos[2])
        snprintf(lb, sizeof(lb), "b/%02x%02x%02x%02x%02x%02x", idb[0],
                 idb[1], idb[2], idb[3], idb[4], idb[5]);
    else
        snprintf(lb, sizeof(lb), "b/(current)");
    char *out;
    size_t n;
    /* Line numbers are those of `notes show`: a field's change is a
     * change of its front-matter lines. */
    rc = notes_text_diff(a, na, b, nb, la, lb, &out, &n);
    free(a);
    free(b);
    if (rc) {
        notes_doc_free(d);
        return cli_fail(rc, "cannot compute the difference");
    }
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s?, s:s%}", "from", pos[1], "to",
                              pos[2], "diff", out, n);
        cli_json_out(o);
    } else if (ctx->color) {
        for (const char *p = out; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
            const char *c = *p == '+' ? "\033[32m" : *p == '-' ? "\033[31m"
                          : *p == '@' ? "\033[36m" : "";
            fputs(c, stdout);
            cli_put_text(stdout, p, nl ? len - 1 : len); /* no raw controls */
            fputs(*c ? "\033[0m" : "", stdout);
            if (nl)
                putchar('\n');
            p += len;
        }
    } else {
        cli_put_text(stdout, out, n); /* the notes' text: controls escaped */
    }
    notes_free(out);
    notes_doc_free(d);
    return 0;
}
