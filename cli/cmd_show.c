/*
 * cmd_show.c: `notes show`, a note as Markdown, now or at a change, or its
 * conflicts only.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"

/* show --conflicts: the conflicts only, on stdout (JSON: the note's id,
 * "field_conflicts" and "line_conflicts"). */
static int show_conflicts(struct cli_ctx *ctx, notes_doc *d, const char *note)
{
    json_t *fc = ctx->json ? json_array() : NULL;
    size_t nfield = 0;
    const char *const *fields = notes_doc_fields(d);
    for (size_t i = 0; fields[i]; i++) {
        if (fields[i][0] == '@')
            continue; /* layout, not front matter */
        const char *const *c = notes_doc_field_conflicts(d, fields[i]);
        const char *kept = notes_doc_field(d, fields[i]);
        for (size_t k = 0; c[k]; k++, nfield++) {
            if (fc)
                json_array_append_new(
                    fc, json_pack("{s:s, s:s?, s:s}", "field", fields[i],
                                  "kept", kept, "also", c[k]));
            else
                printf("conflict: %s: kept \"%s\", also written "
                       "concurrently: \"%s\"\n",
                       cli_esc(fields[i]), cli_esc(kept ? kept : ""),
                       cli_esc(c[k]));
        }
    }
    notes_line_conflict *c;
    size_t n;
    int rc = notes_doc_line_conflicts(d, &c, &n);
    if (rc) {
        json_decref(fc);
        return cli_fail(rc, "cannot list the lines edited concurrently");
    }
    size_t nlines = n;
    notes_line_conflicts_free(c, n);
    if (fc) {
        json_t *arr = json_array();
        char hex[33];
        cli_note_id(hex, notes_doc_id(d));
        int ret = cli_line_conflicts_out(ctx, d, note, arr);
        if (!ret)
            cli_json_out(json_pack("{s:s, s:o, s:O}", "id", hex,
                                   "field_conflicts", fc, "line_conflicts",
                                   arr));
        else
            json_decref(fc);
        json_decref(arr);
        return ret;
    }
    if (!nfield && !nlines) {
        printf("no conflicts\n");
        return 0;
    }
    fflush(stdout);
    /* line_conflicts_out prints on stderr for the warnings of other
     * commands; here they are the output. */
    int saved = dup(STDERR_FILENO);
    if (saved < 0 || dup2(STDOUT_FILENO, STDERR_FILENO) < 0) {
        if (saved >= 0)
            close(saved);
        return cli_line_conflicts_out(ctx, d, note, NULL);
    }
    rc = cli_line_conflicts_out(ctx, d, note, NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return rc;
}

int cmd_show(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *note = NULL, *at = NULL;
    int conflicts = 0, rc;
    notes_doc *d, *v = NULL;

    const struct cli_opt opts[] = {CLI_VALUE("--at", &at),
                                   CLI_FLAG("--conflicts", &conflicts),
                                   CLI_END};
    if ((rc = cli_parse_args(argc, argv, "show", opts, &note, 1, 0)))
        return rc;
    if (!note || (at && conflicts))
        return cli_usage("show");
    if ((rc = cli_open_note(ctx, note, &d)))
        return rc;
    if (conflicts) {
        rc = show_conflicts(ctx, d, note);
        notes_doc_free(d);
        return rc;
    }
    if (at && (rc = cli_note_at(d, at, &v))) {
        notes_doc_free(d);
        return rc;
    }
    notes_doc *s = v ? v : d;
    int ret = 0;
    if (ctx->json) {
        char *js;
        size_t jn;
        if ((rc = notes_fmt_json_export(s, &js, &jn))) {
            ret = cli_fail(rc, "cannot render the note as JSON");
        } else if (at) {
            json_t *o = json_loadb(js, jn, 0, NULL);
            if (!o || !json_is_object(o)) {
                json_decref(o);
                ret = cli_fail(NOTES_ENOMEM, "cannot render the note as JSON");
            } else {
                json_object_set_new(o, "at", json_string(at));
                cli_json_out(o);
            }
            notes_fmt_free(js);
        } else {
            ret = cli_write_output(NULL, js, jn);
            if (!ret)
                putchar('\n');
            notes_fmt_free(js);
        }
    } else {
        size_t n;
        char *md = cli_render_markdown(s, &n);
        /* Controls in the front matter or body are shown escaped; `notes
         * export` is the byte-faithful way out. */
        ret = md ? cli_write_text(md, n) : EXIT_SYSTEM;
        free(md);
    }
    notes_doc_free(v);
    notes_doc_free(d);
    return ret;
}
