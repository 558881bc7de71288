/*
 * cmd_conflicts.c: a note's line conflicts (docs/format.md, "Concurrent
 * edits of one line"): the warnings, their listing (show --conflicts)
 * and `notes resolve`.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "notes_formats.h"

/* Print text line by line, indented, controls escaped. */
static void put_lines(FILE *f, const char *s, size_t n)
{
    const char *end = s + n;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        fprintf(f, "      %s\n", cli_escn(s, (size_t)(le - s)));
        s = nl ? nl + 1 : end;
    }
}

/* Lines of the front matter `notes show` prints before the text: line
 * numbers of the text are shown counted in that file. */
static size_t fm_lines(notes_doc *d)
{
    return notes_fmt_md_text_line(d);
}

/* The line conflicts of d as JSON (an array), or printed for people. */
int cli_line_conflicts_out(struct cli_ctx *ctx, notes_doc *d,
                           const char *spec, json_t *arr)
{
    notes_line_conflict *c;
    size_t n;
    int rc = notes_doc_line_conflicts(d, &c, &n);
    if (rc)
        return cli_fail(rc, "cannot list the lines edited concurrently");
    size_t off = n ? fm_lines(d) : 0;
    for (size_t i = 0; i < n; i++) {
        c[i].line += off;
        json_t *sides = arr ? json_array() : NULL;
        if (!arr) {
            fprintf(stderr, "conflict: line %zu%s edited concurrently; it "
                            "reads now:\n", c[i].line,
                    c[i].nlines > 1 ? " and the next" : "");
            put_lines(stderr, c[i].merged, c[i].nbytes);
        }
        for (size_t k = 0; k < c[i].nsides; k++) {
            const notes_conflict_side *sd = &c[i].side[k];
            char who[200], hex[13], when[64], fpr[NOTES_FPR_STRLEN];
            uint64_t ms;
            cli_author(ctx, d, sd->author, who, sizeof(who));
            cli_change_hex(d, sd->change, hex, &ms);
            cli_time(ms, when, sizeof(when));
            notes_key_fingerprint(sd->author, fpr);
            if (arr) {
                json_array_append_new(
                    sides, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s%}", "side",
                                     (json_int_t)k + 1, "author", who, "key",
                                     fpr, "change", hex, "time", when, "text",
                                     sd->text, sd->nbytes));
            } else {
                fprintf(stderr, "  %zu. %s, change %s (%s):\n", k + 1, who,
                        hex, when);
                put_lines(stderr, sd->text, sd->nbytes);
            }
        }
        if (arr)
            json_array_append_new(
                arr, json_pack("{s:I, s:I, s:s%, s:o}", "line",
                               (json_int_t)c[i].line, "lines",
                               (json_int_t)c[i].nlines, "merged", c[i].merged,
                               c[i].nbytes, "sides", sides));
        else
            fprintf(stderr, "  keep one: notes resolve %s %zu --keep N\n",
                    cli_esc(spec), c[i].line);
    }
    notes_line_conflicts_free(c, n);
    return 0;
}

void cli_warn_line_conflicts(struct cli_ctx *ctx, notes_doc *d)
{
    (void)ctx;
    notes_line_conflict *c;
    size_t n;
    if (notes_doc_line_conflicts(d, &c, &n) != NOTES_OK || n == 0)
        return;
    char hex[33], lines[120] = "";
    size_t k = 0, off = fm_lines(d);
    for (size_t i = 0; i < n && k < sizeof(lines) - 24; i++)
        k += (size_t)snprintf(lines + k, sizeof(lines) - k, "%s%zu",
                              i ? ", " : "", c[i].line + off);
    cli_note_id(hex, notes_doc_id(d));
    const char *title = notes_doc_field(d, "title");
    fprintf(stderr, "note %s: %zu line%s edited concurrently (line%s %s): "
                    "notes show %.8s --conflicts\n",
            title ? cli_esc(title) : hex, n, n == 1 ? "" : "s",
            n == 1 ? "" : "s", lines, hex);
    notes_line_conflicts_free(c, n);
}

void cli_warn_all_line_conflicts(struct cli_ctx *ctx)
{
    uint8_t(*ids)[16];
    size_t n;
    if (notes_replica_list(ctx->r, &ids, &n) != NOTES_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        notes_doc *d;
        if (notes_doc_open(ctx->r, ids[i], &d) != NOTES_OK)
            continue;
        cli_warn_line_conflicts(ctx, d);
        notes_doc_free(d);
    }
    notes_free(ids);
}

int cmd_resolve(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *note = NULL, *keep = NULL, *linearg = NULL;
    int rc;
    const struct cli_opt opts[] = {CLI_VALUE("--keep", &keep), CLI_END};
    const char *pos[2] = {NULL, NULL};
    if ((rc = cli_parse_args(argc, argv, "resolve", opts, pos, 2, 0)))
        return rc;
    note = pos[0];
    linearg = pos[1];
    if (!note || !linearg || !keep)
        return cli_usage("resolve");
    char *e1, *e2;
    unsigned long line = strtoul(linearg, &e1, 10);
    unsigned long side = strtoul(keep, &e2, 10);
    if (*linearg < '0' || *linearg > '9' || *e1 || line == 0 ||
        *keep < '0' || *keep > '9' || *e2 || side == 0) {
        fprintf(stderr, "notes: LINE and --keep N are numbers from 1\n");
        return EXIT_USER;
    }
    notes_doc *d;
    if ((rc = cli_open_note(ctx, note, &d)))
        return rc;
    notes_line_conflict *c;
    size_t n;
    int ret = 0;
    if ((rc = notes_doc_line_conflicts(d, &c, &n))) {
        ret = cli_fail(rc, "cannot list the lines edited concurrently");
        notes_doc_free(d);
        return ret;
    }
    /* LINE is counted in the file `notes show` prints. */
    size_t i = 0, off = n ? fm_lines(d) : 0;
    for (size_t k = 0; k < n; k++)
        c[k].line += off;
    while (i < n && !(line >= c[i].line && line < c[i].line + (c[i].nlines ? c[i].nlines : 1)))
        i++;
    if (i == n) {
        fprintf(stderr, "notes: line %lu of this note was not edited "
                        "concurrently (notes show %s --conflicts lists those "
                        "that were)\n", line, cli_esc(note));
        ret = EXIT_USER;
    } else if (side > c[i].nsides) {
        fprintf(stderr, "notes: line %zu has %zu versions; --keep 1 to %zu\n",
                c[i].line, c[i].nsides, c[i].nsides);
        ret = EXIT_USER;
    } else if ((rc = notes_doc_resolve_conflict(d, &c[i], side - 1))) {
        ret = cli_fail(rc, "cannot keep version %lu", side);
    } else if (!(ret = cli_commit(d, "the choice"))) {
        char who[200];
        cli_author(ctx, d, c[i].side[side - 1].author, who, sizeof(who));
        printf("line %zu: kept %s's version\n", c[i].line, who);
    }
    notes_line_conflicts_free(c, n);
    notes_doc_free(d);
    return ret;
}
