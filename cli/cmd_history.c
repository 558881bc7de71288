/*
 * cmd_history.c: the commands that read a note and its history: show, edit,
 * log, blame, diff; and its line conflicts (show --conflicts, resolve).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"

/* ---- line conflicts (docs/format.md, "Concurrent edits of one line") ---- */

static void change_hex(notes_doc *d, size_t i, char out[13], uint64_t *ms)
{
    notes_change_info ci;
    out[0] = 0;
    *ms = 0;
    if (notes_doc_change(d, i, &ci) != NOTES_OK)
        return;
    for (size_t k = 0; k < 6; k++)
        snprintf(out + 2 * k, 3, "%02x", ci.id[k]);
    *ms = ci.time_ms;
}

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

/* The line conflicts of d as JSON (an array), or printed for people. */
static int line_conflicts_out(struct cli_ctx *ctx, notes_doc *d,
                              const char *spec, json_t *arr)
{
    notes_line_conflict *c;
    size_t n;
    int rc = notes_doc_line_conflicts(d, &c, &n);
    if (rc)
        return cli_fail(rc, "cannot list the lines edited concurrently");
    for (size_t i = 0; i < n; i++) {
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
            change_hex(d, sd->change, hex, &ms);
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
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof(lines) - 24; i++)
        k += (size_t)snprintf(lines + k, sizeof(lines) - k, "%s%zu",
                              i ? ", " : "", c[i].line);
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

/* ---- resolve ---- */

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
    size_t i = 0;
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

/* ---- show ---- */

int cmd_show(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *note = NULL, *at = NULL;
    int conflicts = 0, rc;
    notes_doc *d;

    const struct cli_opt opts[] = {CLI_VALUE("--at", &at),
                                   CLI_FLAG("--conflicts", &conflicts),
                                   CLI_END};
    if ((rc = cli_parse_args(argc, argv, "show", opts, &note, 1, 0)))
        return rc;
    if (!note)
        return cli_usage("show");
    if ((rc = cli_open_note(ctx, note, &d)))
        return rc;
    int ret = 0;
    if (at) {
        size_t idx;
        notes_change_info ci;
        char *text;
        size_t n;
        uint8_t version[1][32];
        if (!(rc = notes_doc_find_change(d, at, &idx)) &&
            !(rc = notes_doc_change(d, idx, &ci)))
            memcpy(version[0], ci.id, 32);
        if (rc || (rc = notes_doc_text_at(d, (const uint8_t(*)[32])version, 1,
                                          &text, &n))) {
            ret = cli_fail(rc, "cannot show version '%s'", at);
        } else {
            if (ctx->json) {
                json_t *o = json_pack("{s:s, s:s%}", "at", at, "text", text, n);
                cli_json_out(o);
            } else {
                ret = cli_write_text(text, n); /* no raw controls */
            }
            notes_free(text);
        }
    } else if (ctx->json) {
        char *js;
        size_t jn;
        if ((rc = notes_fmt_json_export(d, &js, &jn))) {
            ret = cli_fail(rc, "cannot render the note as JSON");
        } else if (conflicts) {
            /* The note's JSON with the lines edited concurrently added. */
            json_t *o = json_loadb(js, jn, 0, NULL), *arr = json_array();
            if (!o || !json_is_object(o)) {
                ret = cli_fail(NOTES_ENOMEM, "cannot render the note as JSON");
            } else if (!(ret = line_conflicts_out(ctx, d, note, arr))) {
                json_object_set(o, "line_conflicts", arr);
                cli_json_out(json_incref(o));
            }
            json_decref(arr);
            json_decref(o);
            notes_fmt_free(js);
        } else {
            ret = cli_write_output(NULL, js, jn);
            if (!ret)
                putchar('\n');
            notes_fmt_free(js);
        }
    } else {
        size_t n;
        char *md = cli_render_markdown(d, &n);
        /* Controls in the front matter or body are shown escaped; `notes
         * export` is the byte-faithful way out. */
        ret = md ? cli_write_text(md, n) : EXIT_SYSTEM;
        free(md);
    }
    if (conflicts && !ret) {
        const char *const *fields = notes_doc_fields(d);
        for (size_t i = 0; fields[i]; i++) {
            if (fields[i][0] == '@')
                continue; /* layout, not front matter */
            const char *const *c = notes_doc_field_conflicts(d, fields[i]);
            for (size_t k = 0; c[k]; k++)
                fprintf(stderr, "conflict: %s: kept \"%s\", also written "
                                "concurrently: \"%s\"\n",
                        cli_esc(fields[i]), cli_esc(notes_doc_field(d, fields[i])),
                        cli_esc(c[k]));
        }
        if (!ctx->json && !at)
            ret = line_conflicts_out(ctx, d, note, NULL);
    }
    notes_doc_free(d);
    return ret;
}

/* ---- edit ---- */

int cmd_edit(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if ((rc = cli_open_note_arg(ctx, argc, argv, "edit", 1, &d)))
        return rc;
    const char *editor = getenv("VISUAL");
    if (!editor || !*editor)
        editor = getenv("EDITOR");
    if (!editor || !*editor)
        editor = "vi";
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/notes-edit-XXXXXX.md",
             tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemps(path, 3);
    if (fd < 0) {
        perror("notes: cannot create a temporary file");
        notes_doc_free(d);
        return EXIT_SYSTEM;
    }
    size_t n;
    const char *t = notes_doc_text(d, &n);
    char *before = malloc(n + 1);
    if (!before || write(fd, t, n) != (ssize_t)n || close(fd) != 0) {
        fprintf(stderr, "notes: cannot write '%s'\n", path);
        free(before);
        unlink(path);
        notes_doc_free(d);
        return EXIT_SYSTEM;
    }
    memcpy(before, t, n);
    /* Through the shell, so EDITOR may carry arguments ("code -w"). */
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    int ret = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
        fprintf(stderr, "notes: the editor '%s' failed; nothing recorded "
                        "(your text is kept in %s)\n", cli_esc(editor), path);
        free(before);
        notes_doc_free(d);
        return EXIT_USER;
    }
    char *after;
    size_t an;
    if ((ret = cli_read_input(path, 64u << 20, &after, &an))) {
        free(before);
        notes_doc_free(d);
        return ret;
    }
    if (an == n && memcmp(after, before, n) == 0) {
        printf("no change\n");
    } else if ((rc = notes_doc_set_text(d, after, an))) {
        ret = cli_fail(rc, "cannot take the edited text (kept in %s)", path);
    } else {
        ret = cli_commit(d, "the edit");
        if (!ret) {
            printf("recorded\n");
            /* Edits that arrived meanwhile may have touched the same lines. */
            cli_warn_line_conflicts(ctx, d);
        }
    }
    if (!ret)
        unlink(path);
    free(after);
    free(before);
    notes_doc_free(d);
    return ret;
}

/* ---- log, blame ---- */

static void summarize(const notes_change_info *ci, char *out, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    if (ci->inserted)
        o += (size_t)snprintf(out + o, n - o, "+%llu ",
                              (unsigned long long)ci->inserted);
    if (ci->deleted && o < n)
        o += (size_t)snprintf(out + o, n - o, "-%llu ",
                              (unsigned long long)ci->deleted);
    if (ci->nfields && o < n)
        o += (size_t)snprintf(out + o, n - o, "%u field%s ", ci->nfields,
                              ci->nfields == 1 ? "" : "s");
    if (o && o < n)
        out[o - 1] = 0;
}

int cmd_log(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if ((rc = cli_open_note_arg(ctx, argc, argv, "log", 1, &d)))
        return rc;
    json_t *arr = ctx->json ? json_array() : NULL;
    for (size_t i = notes_doc_change_count(d); i-- > 0;) {
        notes_change_info ci;
        char hex[65], who[160], when[64], what[96], key[NOTES_KEY_STRLEN];
        if (notes_doc_change(d, i, &ci))
            continue;
        for (int k = 0; k < 32; k++)
            snprintf(hex + (size_t)2 * k, 3, "%02x", ci.id[k]);
        cli_author(ctx, d, ci.author, who, sizeof(who));
        cli_time(ci.time_ms, when, sizeof(when));
        summarize(&ci, what, sizeof(what));
        int bad = notes_doc_author_equivocated(d, ci.author);
        if (arr) {
            notes_key_encode(ci.author, key);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:i, "
                               "s:b, s:b}",
                               "id", hex, "author", who, "key", key, "seq",
                               (json_int_t)ci.seq, "time_ms",
                               (json_int_t)ci.time_ms, "time", when,
                               "inserted", (json_int_t)ci.inserted, "deleted",
                               (json_int_t)ci.deleted, "fields", ci.nfields,
                               "equivocated", ci.equivocated,
                               "equivocating_key", bad));
        } else {
            /* Every change of such a key is marked, not just the two that
             * share a seq: the whole key is not to be trusted. */
            printf("%s%.12s%s  %-28s  %s  %s%s%s\n",
                   ctx->color ? "\033[33m" : "", hex,
                   ctx->color ? "\033[0m" : "", who, when, what,
                   bad ? "  [equivocating key]" : "",
                   ci.equivocated ? " (seq signed twice)" : "");
        }
    }
    cli_json_out(arr);
    notes_doc_free(d);
    return 0;
}

int cli_blame_lines(struct cli_ctx *ctx, notes_doc *d, json_t *arr,
                    const char *report)
{
    uint32_t *who;
    size_t ncp, tl;
    int rc = notes_doc_authorship(d, &who, &ncp);
    if (rc)
        return cli_fail(rc, "cannot compute authorship");
    if (!arr && report)
        printf("%s", report);
    const char *t = notes_doc_text(d, &tl);
    size_t cp = 0, line = 1;
    const char *s = t, *end = t + tl;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        /* The author of the line: whoever inserted its first character
         * (the newline for an empty line). */
        uint32_t ch = cp < ncp ? who[cp] : UINT32_MAX;
        char name[200] = "?";
        notes_change_info ci;
        /* The report has room for longer names than blame's column. */
        if (ch != UINT32_MAX && notes_doc_change(d, ch, &ci) == NOTES_OK)
            cli_author(ctx, d, ci.author, name, report ? 200 : 160);
        if (arr) {
            json_array_append_new(arr, json_pack("{s:I, s:s, s:s%}", "line",
                                                 (json_int_t)line, "author",
                                                 name, "text", s,
                                                 (size_t)(le - s)));
        } else if (report) {
            printf("  %-30s %4zu| %s\n", name, line,
                   cli_escn(s, (size_t)(le - s)));
        } else {
            /* Never cut: a long claimed name would cut the fingerprint. */
            printf("%-24s %4zu| ", name, line);
            cli_put_text(stdout, s, (size_t)(le - s));
            putchar('\n');
        }
        /* Advance the code point counter over the line and its newline. */
        cp += notes__utf8_count((const uint8_t *)s,
                                (size_t)(le - s) + (nl ? 1 : 0));
        s = nl ? nl + 1 : end;
        line++;
    }
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
    if ((rc = cli_blame_lines(ctx, d, arr, NULL)) == 0 && arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    json_decref(arr);
    notes_doc_free(d);
    return rc;
}

/* ---- diff ---- */

static int version_arg(notes_doc *d, const char *spec, uint8_t out[1][32])
{
    size_t idx;
    notes_change_info ci;
    int rc = notes_doc_find_change(d, spec, &idx);
    if (!rc)
        rc = notes_doc_change(d, idx, &ci);
    if (rc)
        return cli_fail(rc, "cannot use version '%s'", spec);
    memcpy(out[0], ci.id, 32);
    return 0;
}

int cmd_diff(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    uint8_t a[1][32], b[1][32];
    int rc;
    if (argc != 3 && argc != 4)
        return cli_usage("diff");
    if ((rc = cli_open_note(ctx, argv[1], &d)))
        return rc;
    if ((rc = version_arg(d, argv[2], a)) ||
        (argc == 4 && (rc = version_arg(d, argv[3], b)))) {
        notes_doc_free(d);
        return rc;
    }
    char *out;
    size_t n;
    rc = notes_doc_diff(d, (const uint8_t(*)[32])a, 1,
                        argc == 4 ? (const uint8_t(*)[32])b : NULL, 1, &out, &n);
    if (rc) {
        notes_doc_free(d);
        return cli_fail(rc, "cannot compute the difference");
    }
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s?, s:s%}", "from", argv[2], "to",
                              argc == 4 ? argv[3] : NULL, "diff", out, n);
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

