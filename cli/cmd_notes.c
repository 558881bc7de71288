/*
 * cmd_notes.c: the commands that read and change notes: new, list, show,
 * append, set, log, blame, verify, export, import.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"

#define INPUT_MAX (8u << 20)

/* ---- Markdown rendering of fields + body ---- */

/* The note as Markdown (formats/: the imported front matter kept byte
 * for byte where unchanged). Caller frees with free(). */
char *cli_render_markdown(notes_doc *d, size_t *n)
{
    char *out;
    int rc = notes_fmt_md_export(d, &out, n);
    if (rc) {
        cli_fail(rc, "cannot render the note");
        return NULL;
    }
    char *copy = malloc(*n + 1);
    if (copy)
        memcpy(copy, out, *n + 1);
    notes_fmt_free(out);
    return copy;
}

/* ---- new ---- */

int cmd_new(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *title = NULL, *template = NULL;
    notes_doc *d;
    char when[64], hex[33];
    struct timeval tv;
    int rc;

    const struct cli_opt opts[] = {CLI_VALUE("--template", &template),
                                   CLI_END};
    if ((rc = cli_parse_args(argc, argv, "new", opts, &title, 1, 1)))
        return rc;
    if (!title || !*title)
        return cli_usage("new");
    gettimeofday(&tv, NULL);
    cli_time((uint64_t)tv.tv_sec * 1000, when, sizeof(when));
    if ((rc = notes_doc_create(ctx->r, &d)))
        return cli_fail(rc, "cannot create a note");
    if (template) {
        char *data;
        size_t n;
        notes_fmt_diag diag;
        memset(&diag, 0, sizeof(diag));
        if ((rc = cli_read_input(template, NOTES_MD_MAX_BYTES, &data, &n))) {
            notes_doc_free(d);
            return rc;
        }
        rc = notes_fmt_md_import(d, data, n, &diag);
        free(data);
        if (rc) {
            notes_doc_free(d);
            fprintf(stderr, "notes: %s:%zu: %s\n", cli_esc(template), diag.line,
                    cli_esc(diag.msg[0] ? diag.msg : notes_strerror(rc)));
            return cli_exit_code(rc);
        }
    }
    /* A template's own text is kept (even an empty one): only the fields
     * of the meeting template are set over it. */
    const char *me = notes_replica_name(ctx->r);
    if (!template)
        rc = notes_fmt_meeting_new(d, title, when, me);
    else if (!(rc = notes_doc_set_field(d, "title", title)) &&
             !(rc = notes_doc_set_field(d, "datetime", when)))
        rc = notes_doc_list_add(d, "participants", me);
    if (rc) {
        notes_doc_free(d);
        return cli_fail(rc, "cannot fill the new note");
    }
    rc = cli_commit(d, "the new note");
    if (!rc) {
        cli_note_id(hex, notes_doc_id(d));
        printf("%s\n", hex);
    }
    notes_doc_free(d);
    return rc;
}

/* ---- list ---- */

struct listed {
    notes_doc *d;
    const char *title, *datetime;
    uint64_t last_ms;
};

static int by_time_desc(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    const char *dx = x->datetime ? x->datetime : "";
    const char *dy = y->datetime ? y->datetime : "";
    int c = strcmp(dy, dx);
    if (c)
        return c;
    return (y->last_ms > x->last_ms) - (y->last_ms < x->last_ms);
}

static json_t *authors_json(struct cli_ctx *ctx, notes_doc *d, struct notes_buf *human)
{
    json_t *arr = json_array();
    uint8_t(*keys)[32] = NULL;
    size_t n = 0;
    if (notes_fmt_authors(d, &keys, &n) != NOTES_OK)
        n = 0; /* out of memory: no authors shown */
    for (size_t i = 0; i < n; i++) {
        char who[160], key[NOTES_KEY_STRLEN];
        cli_author(ctx, d, keys[i], who, sizeof(who));
        notes_key_encode(keys[i], key);
        json_array_append_new(arr, json_pack("{s:s, s:s}", "author", who,
                                             "key", key));
        /* Two devices of one person read the same: name them once. */
        int again = 0;
        for (size_t j = 0; j < json_array_size(arr) - 1 && !again; j++)
            again = strcmp(json_string_value(json_object_get(
                               json_array_get(arr, j), "author")), who) == 0;
        if (human && !again) {
            /* CLI only: out of memory while printing */
            if ((human->len && notes__buf_puts(human, ", ")) ||
                notes__buf_puts(human, who))
                abort();
        }
    }
    notes_fmt_free(keys);
    return arr;
}

int cmd_list(int argc, char **argv, struct cli_ctx *ctx)
{
    uint8_t(*ids)[16];
    size_t n;
    (void)argv;
    if (argc != 1)
        return cli_usage("list");
    int rc = notes_replica_list(ctx->r, &ids, &n);
    if (rc)
        return cli_fail(rc, "cannot list notes");
    struct listed *v = calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    int ret = 0;
    for (size_t i = 0; i < n && v; i++) {
        notes_doc *d;
        char hex[33];
        if ((rc = notes_doc_open(ctx->r, ids[i], &d))) {
            if (rc == NOTES_ENOTFOUND)
                continue; /* created but never committed (a crash) */
            cli_note_id(hex, ids[i]);
            int e = cli_fail(rc, "cannot open note %s", hex);
            if (e > ret) /* a damaged log is 2, an unreadable one 3 */
                ret = e;
            continue;
        }
        cli_note_damage(ctx, d);
        v[k].d = d;
        v[k].title = notes_doc_field(d, "title");
        v[k].datetime = notes_doc_field(d, "datetime");
        size_t nc = notes_doc_change_count(d);
        notes_change_info ci;
        if (nc && notes_doc_change(d, nc - 1, &ci) == NOTES_OK)
            v[k].last_ms = ci.time_ms;
        k++;
    }
    if (k > 1) /* v is NULL for an empty replica */
        qsort(v, k, sizeof(*v), by_time_desc);
    json_t *arr = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < k; i++) {
        char hex[33];
        struct notes_buf who;
        notes__buf_init(&who, SIZE_MAX);
        cli_note_id(hex, notes_doc_id(v[i].d));
        json_t *authors = authors_json(ctx, v[i].d, &who);
        if (arr) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s?, s:s?, s:o, s:I}", "id", hex, "title",
                               v[i].title, "datetime", v[i].datetime, "authors",
                               authors, "changes",
                               (json_int_t)notes_doc_change_count(v[i].d)));
        } else {
            printf("%.8s  %-25s  %-40s  %s\n", hex,
                   v[i].datetime ? cli_esc(v[i].datetime) : "-",
                   v[i].title ? cli_esc(v[i].title) : "(untitled)",
                   who.data ? (const char *)who.data : ""); /* cli_author: escaped */
            json_decref(authors);
        }
        notes__buf_release(&who);
        notes_doc_free(v[i].d);
    }
    cli_json_out(arr);
    free(v);
    notes_free(ids);
    return ret;
}

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

/* ---- append, set ---- */

int cmd_append(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    char *text = NULL;
    const char *section = NULL;
    size_t n;
    int rc;
    const struct cli_opt opts[] = {CLI_VALUE("--section", &section),
                                   CLI_END};
    const char *pos[2] = {NULL, NULL};
    if ((rc = cli_parse_args(argc, argv, "append", opts, pos, 2, 1)))
        return rc;
    const char *note = pos[0], *arg = pos[1];
    if (!note || !arg)
        return cli_usage("append");
    if (strcmp(arg, "-") == 0) {
        if ((rc = cli_read_input("-", INPUT_MAX, &text, &n)))
            return rc;
    } else {
        text = strdup(arg);
        n = text ? strlen(text) : 0;
    }
    if (!text)
        return EXIT_SYSTEM;
    while (n && text[n - 1] == '\n')
        text[--n] = 0;
    if ((rc = cli_open_note(ctx, note, &d))) {
        free(text);
        return rc;
    }
    if (section) {
        rc = notes_fmt_section_append(d, section, NULL, text);
        if (rc == NOTES_ENOTFOUND) {
            fprintf(stderr, "notes: no section '%s' in this note\n",
                    cli_esc(section));
            free(text);
            notes_doc_free(d);
            return EXIT_USER;
        }
    } else {
        /* A paragraph of its own at the end. */
        size_t tl;
        const char *t = notes_doc_text(d, &tl);
        const char *sep = tl == 0 ? "" : (t[tl - 1] == '\n' ? "\n" : "\n\n");
        if (tl >= 2 && t[tl - 1] == '\n' && t[tl - 2] == '\n')
            sep = "";
        size_t sl = strlen(sep);
        char *all = malloc(sl + n + 2);
        if (!all) {
            free(text);
            notes_doc_free(d);
            return EXIT_SYSTEM;
        }
        memcpy(all, sep, sl); // NOLINT(bugprone-not-null-terminated-result): a byte buffer
        memcpy(all + sl, text, n);
        all[sl + n] = '\n';
        rc = notes_doc_splice(d, notes_doc_length(d), 0, all, sl + n + 1);
        free(all);
    }
    free(text);
    int ret = rc ? cli_fail(rc, "cannot append") : cli_commit(d, "the edit");
    notes_doc_free(d);
    return ret;
}

int cmd_set(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if (argc != 3 && argc != 4)
        return cli_usage("set");
    char *field = strdup(argv[2]);
    if (!field)
        return EXIT_SYSTEM;
    size_t fl = strlen(field);
    char op = fl > 1 && (field[fl - 1] == '+' || field[fl - 1] == '-')
                  ? field[fl - 1]
                  : 0;
    if (op)
        field[fl - 1] = 0;
    if (op && argc != 4) {
        free(field);
        return cli_usage("set");
    }
    if ((rc = cli_open_note(ctx, argv[1], &d))) {
        free(field);
        return rc;
    }
    if (op == '+')
        rc = notes_doc_list_add(d, field, argv[3]);
    else if (op == '-')
        rc = notes_doc_list_remove(d, field, argv[3]);
    else if (argc == 4)
        rc = notes_doc_set_field(d, field, argv[3]);
    else
        rc = notes_doc_unset_field(d, field);
    int ret = rc ? cli_fail(rc, "cannot set '%s'", field)
                 : cli_commit(d, "the field");
    free(field);
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

int cli_list_notes(struct cli_ctx *ctx, uint8_t (**ids)[16], size_t *n)
{
    int rc = notes_replica_list(ctx->r, ids, n);
    return rc ? cli_fail(rc, "cannot list notes") : 0;
}

int cli_open_listed(struct cli_ctx *ctx, const uint8_t id[16], notes_doc **d)
{
    char hex[33];
    int rc = notes_doc_open(ctx->r, id, d);
    if (rc == NOTES_OK)
        return 0;
    *d = NULL;
    if (rc == NOTES_ENOTFOUND)
        return -1; /* created but never committed (a crash) */
    cli_note_id(hex, id);
    return cli_fail(rc, "note %.8s cannot be opened", hex);
}

void cli_json_out(json_t *v)
{
    if (!v)
        return;
    json_dumpf(v, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(v);
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

/* ---- verify ---- */

static int verify_one(struct cli_ctx *ctx, notes_doc *d, json_t *arr,
                      size_t *changes, size_t *sigs)
{
    notes_verify_report rep;
    char hex[33];
    int rc = notes_doc_verify(d, &rep);
    cli_note_id(hex, notes_doc_id(d));
    const char *title = notes_doc_field(d, "title");
    *changes += rep.changes;
    *sigs += rep.signatures;
    if (arr) {
        json_t *probs = json_array(), *remarks = json_array();
        for (size_t i = 0; i < rep.nproblems; i++)
            json_array_append_new(probs, json_pack("{s:s, s:s}", "error",
                                                   notes_errname(rep.problems[i].code),
                                                   "message",
                                                   rep.problems[i].message));
        for (size_t i = 0; i < rep.nremarks; i++)
            json_array_append_new(remarks, json_string(rep.remarks[i].message));
        json_array_append_new(arr, json_pack("{s:s, s:s?, s:I, s:I, s:I, s:b, "
                                             "s:o, s:o}",
                                             "note", hex, "title", title,
                                             "changes", (json_int_t)rep.changes,
                                             "authors", (json_int_t)rep.authors,
                                             "signatures",
                                             (json_int_t)rep.signatures, "ok",
                                             rc == NOTES_OK, "problems", probs,
                                             "remarks", remarks));
    } else {
        for (size_t i = 0; i < rep.nproblems; i++)
            fprintf(stderr, "notes: %.8s: %s: %s\n", hex,
                    notes_strerror(rep.problems[i].code),
                    cli_esc(rep.problems[i].message));
        for (size_t i = 0; i < rep.nremarks; i++)
            fprintf(stderr, "notes: %.8s: note: %s\n", hex,
                    cli_esc(rep.remarks[i].message));
        if (rc == NOTES_OK || rep.nproblems)
            printf("%.8s  %-40s  %zu changes, %zu authors, %zu signatures: %s\n",
                   hex, title ? cli_esc(title) : "(untitled)", rep.changes,
                   rep.authors,
                   rep.signatures, rc == NOTES_OK ? "ok" : "FAILED");
        else
            cli_fail(rc, "cannot verify %.8s", hex);
    }
    (void)ctx;
    notes_verify_report_clear(&rep);
    return rc;
}

int cmd_verify(int argc, char **argv, struct cli_ctx *ctx)
{
    size_t changes = 0, sigs = 0, bad = 0, notes = 0;
    json_t *arr = ctx->json ? json_array() : NULL;
    int ret = 0, syserr = 0;
    if (argc > 2)
        return cli_usage("verify");
    /* A file (bundle or attested Markdown) needs no replica at all. */
    if (argc == 2 && (strchr(argv[1], '/') || strchr(argv[1], '.')) &&
        cli_is_file(argv[1])) {
        json_decref(arr);
        return cli_verify_file(ctx, argv[1]);
    }
    json_t *files = NULL; /* the replica's own files, when verifying all */
    size_t badfiles = argc == 1 ? cli_verify_files(ctx, arr ? &files : NULL) : 0;
    if (!ctx->r) {
        int rc = notes_replica_open(ctx->home, &ctx->r);
        if (rc) {
            json_decref(arr);
            cli_fail(rc, "cannot open the replica");
            return cli_verify_files_only(ctx, files, rc);
        }
    }
    if (argc == 2) {
        notes_doc *d;
        ctx->verifying = 1; /* reported below, once */
        int rc = cli_open_note(ctx, argv[1], &d);
        if (rc)
            return rc;
        notes++;
        if (verify_one(ctx, d, arr, &changes, &sigs))
            bad++;
        notes_doc_free(d);
    } else {
        uint8_t(*ids)[16];
        size_t n;
        int e = cli_list_notes(ctx, &ids, &n);
        if (e)
            return e;
        int progress = isatty(2) && n > 1;
        for (size_t i = 0; i < n; i++) {
            notes_doc *d;
            notes++;
            if (progress) /* on a terminal: where we are, overwritten */
                fprintf(stderr, "\rverifying %zu/%zu...", i + 1, n);
            if ((e = cli_open_listed(ctx, ids[i], &d))) {
                if (e < 0) {
                    notes--; /* created but never committed (a crash) */
                    continue;
                }
                /* Unreadable (permissions, I/O) is not a verified
                 * problem: exit 3, not 2. */
                if (e > syserr)
                    syserr = e;
                bad++;
                continue;
            }
            if (progress)
                fputs("\r\033[K", stderr);
            if (verify_one(ctx, d, arr, &changes, &sigs))
                bad++;
            notes_doc_free(d);
        }
        if (progress)
            fputs("\r\033[K", stderr);
        notes_free(ids);
    }
    if (arr) {
        json_t *o = json_pack("{s:o, s:I, s:I, s:I, s:b}", "notes", arr,
                              "changes", (json_int_t)changes, "signatures",
                              (json_int_t)sigs, "failed", (json_int_t)bad, "ok",
                              bad == 0 && badfiles == 0);
        if (files)
            json_object_set_new(o, "files", files);
        cli_json_out(o);
    } else {
        printf("verified %zu note%s, %zu changes, %zu signatures: %s\n", notes,
               notes == 1 ? "" : "s", changes, sigs,
               bad || badfiles ? "PROBLEMS FOUND" : "all ok");
    }
    if (bad || badfiles)
        ret = syserr > EXIT_DATA ? syserr : EXIT_DATA;
    return ret;
}

/* ---- compact ---- */

/* *failed: the worst exit code so far (a full disk is 3, a damaged log 2). */
static int compact_one(notes_doc *d, int *failed)
{
    char hex[33];
    cli_note_id(hex, notes_doc_id(d));
    int rc = notes_doc_compact(d, 19);
    cli_note_repaired(d);
    if (rc) {
        int e = cli_fail(rc, "note %.8s not compacted", hex);
        if (e > *failed)
            *failed = e;
    } else {
        printf("%.8s  compacted\n", hex);
    }
    return rc;
}

int cmd_compact(int argc, char **argv, struct cli_ctx *ctx)
{
    int failed = 0, rc;
    notes_doc *one;
    if ((rc = cli_open_note_arg(ctx, argc, argv, "compact", 0, &one)))
        return rc;
    if (one) {
        rc = compact_one(one, &failed);
        notes_doc_free(one);
        return rc ? cli_exit_code(rc) : 0;
    }
    uint8_t(*ids)[16];
    size_t n;
    if ((rc = notes_replica_list(ctx->r, &ids, &n)))
        return cli_fail(rc, "cannot list notes");
    for (size_t i = 0; i < n; i++) {
        notes_doc *d;
        if ((rc = notes_doc_open(ctx->r, ids[i], &d))) {
            if (rc == NOTES_ENOTFOUND)
                continue; /* never committed */
            int e = cli_fail(rc, "cannot open a note");
            if (e > failed)
                failed = e;
            continue;
        }
        compact_one(d, &failed);
        notes_doc_free(d);
    }
    notes_free(ids);
    return failed;
}

/* ---- export, import ---- */

int cmd_export(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *note = NULL, *format = "md", *out = NULL;
    int authors = 0, attest = 0;
    notes_doc *d;
    int rc, ret;
    const struct cli_opt opts[] = {CLI_VALUE("--format", &format),
                                   CLI_VALUE("-o", &out),
                                   CLI_FLAG("--authors", &authors),
                                   CLI_FLAG("--attest", &attest),
                                   CLI_END};
    if ((rc = cli_parse_args(argc, argv, "export", opts, &note, 1, 0)))
        return rc;
    if (!note)
        return cli_usage("export");
    if (strcmp(format, "md") != 0 && strcmp(format, "json") != 0 &&
        strcmp(format, "html") != 0 && strcmp(format, "bundle") != 0) {
        fprintf(stderr, "notes: unknown format '%s' (md, json, html or bundle)\n",
                cli_esc(format));
        return EXIT_USER;
    }
    if (attest && strcmp(format, "md") != 0) {
        fprintf(stderr, "notes: --attest is for Markdown (--format md)\n");
        return EXIT_USER;
    }
    if ((rc = cli_open_note(ctx, note, &d)))
        return rc;
    if (attest) {
        ret = cli_export_attest(d, out);
        notes_doc_free(d);
        return ret;
    }
    if (strcmp(format, "bundle") == 0) {
        uint8_t *bytes;
        size_t n;
        if ((rc = notes_doc_export(d, NULL, 0, &bytes, &n))) {
            notes_doc_free(d);
            return cli_fail(rc, "cannot export");
        }
        /* A bundle file names its note first: 16 bytes of id. */
        uint8_t *file = malloc(n + 16);
        if (!file) {
            notes_free(bytes);
            notes_doc_free(d);
            return EXIT_SYSTEM;
        }
        memcpy(file, notes_doc_id(d), 16);
        memcpy(file + 16, bytes, n);
        ret = cli_write_output(out, file, n + 16);
        free(file);
        notes_free(bytes);
    } else {
        char *text;
        size_t n;
        if (format[0] == 'm')
            rc = notes_fmt_md_export(d, &text, &n);
        else if (format[0] == 'j')
            rc = notes_fmt_json_export(d, &text, &n);
        else
            rc = notes_fmt_html_export(d, authors ? NOTES_FMT_HTML_AUTHORSHIP : 0, &text,
                                   &n);
        if (rc) {
            notes_doc_free(d);
            return cli_fail(rc, "cannot export as %s", format);
        }
        ret = cli_write_output(out, text, n);
        notes_fmt_free(text);
    }
    notes_doc_free(d);
    return ret;
}

static int import_markdown(struct cli_ctx *ctx, const char *path,
                           const char *data, size_t n)
{
    notes_fmt_diag diag;
    notes_doc *d;
    memset(&diag, 0, sizeof(diag));
    int rc = notes_fmt_md_check(data, n, &diag);
    if (rc) {
        if (diag.line)
            fprintf(stderr, "notes: %s:%zu: %s; nothing was imported\n",
                    cli_esc(path), diag.line, cli_esc(diag.msg));
        else
            fprintf(stderr, "notes: %s: %s; nothing was imported\n",
                    cli_esc(path),
                    cli_esc(diag.msg[0] ? diag.msg : notes_strerror(rc)));
        return rc == NOTES_ENOMEM ? EXIT_SYSTEM : EXIT_USER;
    }
    if ((rc = cli_unlock(ctx)))
        return rc;
    if ((rc = notes_doc_create(ctx->r, &d)))
        return cli_fail(rc, "cannot create a note");
    rc = notes_fmt_md_import(d, data, n, &diag);
    if (rc) {
        notes_doc_free(d);
        fprintf(stderr, "notes: %s:%zu: %s; nothing was imported\n",
                cli_esc(path), diag.line,
                cli_esc(diag.msg[0] ? diag.msg : notes_strerror(rc)));
        return cli_exit_code(rc);
    }
    if (!notes_doc_dirty(d)) {
        /* An empty file: a note still needs one change to exist. */
        if ((rc = notes_doc_set_field(d, "title", path))) {
            notes_doc_free(d);
            return cli_fail(rc, "cannot import");
        }
    }
    int ret = cli_commit(d, "the imported note");
    if (!ret) {
        char hex[33];
        cli_note_id(hex, notes_doc_id(d));
        printf("%s\n", hex);
    }
    notes_doc_free(d);
    return ret;
}

/* A bundle (16 bytes of note id, then "NTB") may be large; anything else
 * is Markdown, refused past the formats' limit while it is being read. */
#define IMPORT_BUNDLE_MAX (256u << 20) /* as `notes verify FILE` */
static int is_bundle(const char *p, size_t n)
{
    return n >= 20 && memcmp(p + 16, "NTB", 3) == 0;
}

static size_t import_limit(const char *head, size_t len)
{
    return is_bundle(head, len) ? IMPORT_BUNDLE_MAX : NOTES_MD_MAX_BYTES;
}

int cmd_import(int argc, char **argv, struct cli_ctx *ctx)
{
    char *data;
    size_t n, added;
    notes_doc *d;
    int rc;
    if (argc != 2)
        return cli_usage("import");
    if ((rc = cli_read_input_ex(argv[1], IMPORT_BUNDLE_MAX, import_limit, &data,
                                &n)))
        return rc;
    if (!is_bundle(data, n)) {
        rc = import_markdown(ctx, argv[1], data, n);
        free(data);
        return rc;
    }
    const uint8_t *id = (const uint8_t *)data;
    rc = notes_doc_open(ctx->r, id, &d);
    if (rc == NOTES_ENOTFOUND)
        rc = notes_doc_create_id(ctx->r, id, &d);
    if (rc) {
        free(data);
        return cli_fail(rc, "cannot open the note of '%s'", argv[1]);
    }
    rc = notes_doc_merge(d, (const uint8_t *)data + 16, n - 16, &added);
    cli_note_repaired(d);
    free(data);
    if (rc) {
        notes_doc_free(d);
        return cli_fail(rc, "refused '%s'", argv[1]);
    }
    char hex[33];
    cli_note_id(hex, notes_doc_id(d));
    printf("%s: %zu new change%s (%zu in all), verified\n", hex, added,
           added == 1 ? "" : "s", notes_doc_change_count(d));
    cli_note_damage(ctx, d); /* still lacking what it acknowledged? */
    if (added) /* what arrived may rewrite lines rewritten here too */
        cli_warn_line_conflicts(ctx, d);
    notes_doc_free(d);
    return 0;
}
