/*
 * cmd_history.c: the commands that read a note and its history: show, edit,
 * log, blame, diff; and its line conflicts (show --conflicts, resolve).
 */
#include <jansson.h>
#include <stdarg.h>
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

/* Lines of the front matter `notes show` prints before the text: line
 * numbers of the text are shown counted in that file. */
static size_t fm_lines(notes_doc *d)
{
    return notes_fmt_md_text_line(d);
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

/* ---- versions: a note as it was at a change ---- */

/* The change `spec` names (an id prefix): its index and id. */
static int change_arg(notes_doc *d, const char *spec, size_t *idx,
                      uint8_t id[32])
{
    notes_change_info ci;
    int rc = notes_doc_find_change(d, spec, idx);
    if (!rc)
        rc = notes_doc_change(d, *idx, &ci);
    if (rc)
        return cli_fail(rc, "cannot use version '%s'", spec);
    memcpy(id, ci.id, 32);
    return 0;
}

/* The whole note as it was once change `spec` was applied (a memory doc:
 * text, front matter, people). 0 or the exit code, said. */
static int note_at(notes_doc *d, const char *spec, notes_doc **out)
{
    size_t idx;
    uint8_t v[1][32];
    int rc;
    *out = NULL;
    if ((rc = change_arg(d, spec, &idx, v[0])))
        return rc;
    if ((rc = notes_doc_at(d, (const uint8_t(*)[32])v, 1, out)))
        return cli_fail(rc, "cannot rebuild the note at '%s'", spec);
    return 0;
}

/* Bytes of the front matter at the start of `md`, the Markdown of `d`
 * (cli_render_markdown): everything before the text. */
static size_t fm_bytes(notes_doc *d, size_t mdn)
{
    size_t tl;
    (void)notes_doc_text(d, &tl);
    return mdn >= tl ? mdn - tl : 0;
}

/* ---- field sync: make d's fields those of `want` ---- */

static char **copy_list(const char *const *l, size_t *n)
{
    size_t k = 0;
    while (l[k])
        k++;
    char **c = calloc(k + 1, sizeof(*c));
    if (!c)
        return NULL;
    for (size_t i = 0; i < k; i++)
        if (!(c[i] = strdup(l[i]))) {
            for (size_t j = 0; j < i; j++)
                free(c[j]);
            free(c);
            return NULL;
        }
    *n = k;
    return c;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

/* One field of d made what it is in `want`: a scalar set or removed; a
 * list kept up to the first element that differs, the rest removed and
 * the wanted ones added in order (adds are ordered by when they were
 * made, so this gives the exact order). *changed counts the writes. */
static int sync_field(notes_doc *d, notes_doc *want, const char *key,
                      size_t *changed)
{
    const char *tv = notes_doc_field(want, key);
    const char *dv0 = notes_doc_field(d, key);
    char *dv = dv0 ? strdup(dv0) : NULL;
    size_t nd = 0, nt = 0;
    char **dl = copy_list(notes_doc_list(d, key), &nd);
    char **tl = copy_list(notes_doc_list(want, key), &nt);
    int rc = NOTES_OK;
    if ((dv0 && !dv) || !dl || !tl) {
        rc = NOTES_ENOMEM;
    } else if (tv && (!dv || strcmp(dv, tv) != 0)) {
        rc = notes_doc_set_field(d, key, tv);
        ++*changed;
    } else if (!tv && dv) {
        rc = notes_doc_unset_field(d, key);
        ++*changed;
    }
    size_t p = 0;
    while (dl && tl && p < nd && p < nt && strcmp(dl[p], tl[p]) == 0)
        p++;
    for (size_t i = p; rc == NOTES_OK && i < nd; i++, ++*changed)
        rc = notes_doc_list_remove(d, key, dl[i]);
    for (size_t i = p; rc == NOTES_OK && i < nt; i++, ++*changed)
        rc = notes_doc_list_add(d, key, tl[i]);
    free(dv);
    free_list(dl, nd);
    free_list(tl, nt);
    return rc;
}

/* Every field, layout ("@...") included: d's fields become want's. With
 * `fm_only` (an edited front matter) a reserved field other than the kept
 * front matter source is none of the editor's business: kept. */
static int sync_fields(notes_doc *d, notes_doc *want, int fm_only,
                       size_t *changed)
{
    size_t nd = 0, nt = 0;
    char **dk = copy_list(notes_doc_fields(d), &nd);
    char **tk = copy_list(notes_doc_fields(want), &nt);
    int rc = dk && tk ? NOTES_OK : NOTES_ENOMEM;
    for (size_t i = 0; rc == NOTES_OK && i < nt; i++)
        rc = sync_field(d, want, tk[i], changed);
    for (size_t i = 0; rc == NOTES_OK && i < nd; i++) {
        size_t k = 0;
        while (k < nt && strcmp(tk[k], dk[i]) != 0)
            k++;
        if (fm_only && dk[i][0] == '@' &&
            strcmp(dk[i], NOTES_FMT_LAYOUT_KEY) != 0)
            continue;
        if (k == nt)
            rc = sync_field(d, want, dk[i], changed);
    }
    free_list(dk, nd);
    free_list(tk, nt);
    return rc;
}

/* ---- show ---- */

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
        int ret = line_conflicts_out(ctx, d, note, arr);
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
        return line_conflicts_out(ctx, d, note, NULL);
    }
    rc = line_conflicts_out(ctx, d, note, NULL);
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
    if (at && (rc = note_at(d, at, &v))) {
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

/* ---- edit ---- */

/* The edited Markdown `after` taken into d: fields (when the front matter
 * was touched) and text. *changed: whether anything was. Malformed input
 * leaves d as it was: EXIT_USER, said. */
static int take_edit(notes_doc *d, const char *after, size_t an,
                     const char *fm_before, size_t fm_n, const char *path,
                     int *changed)
{
    notes_fmt_diag diag;
    notes_doc *s;
    int rc;
    *changed = 0;
    memset(&diag, 0, sizeof(diag));
    if (notes_fmt_md_check(after, an, &diag) != NOTES_OK) {
        if (diag.line)
            fprintf(stderr, "notes: the edited note is refused: line %zu: "
                            "%s; nothing recorded (your text is kept in "
                            "%s)\n", diag.line, cli_esc(diag.msg), path);
        else
            fprintf(stderr, "notes: the edited note is refused: %s; nothing "
                            "recorded (your text is kept in %s)\n",
                    cli_esc(notes_fmt_last_detail()), path);
        return EXIT_USER;
    }
    /* The import path parses it, into a scratch note. */
    if ((rc = notes_doc_memory(NULL, NULL, &s)))
        return cli_fail(rc, "cannot read the edited note");
    if ((rc = notes_fmt_md_import(s, after, an, &diag))) {
        notes_doc_free(s);
        fprintf(stderr, "notes: the edited note is refused: %s; nothing "
                        "recorded (your text is kept in %s)\n",
                cli_esc(diag.msg[0] ? diag.msg : notes_fmt_last_detail()),
                path);
        return EXIT_USER;
    }
    size_t tn, cn, nf = 0;
    const char *t = notes_doc_text(s, &tn);
    size_t fm_after = an - tn;
    /* An untouched front matter writes nothing, not even its layout. */
    if (fm_after != fm_n || memcmp(after, fm_before, fm_n) != 0)
        rc = sync_fields(d, s, 1, &nf);
    const char *cur = notes_doc_text(d, &cn);
    if (!rc && (cn != tn || memcmp(cur, t, tn) != 0)) {
        rc = notes_doc_set_text(d, t, tn);
        nf++;
    }
    notes_doc_free(s);
    if (rc)
        return cli_fail(rc, "cannot take the edited note (kept in %s)", path);
    *changed = nf > 0;
    return 0;
}

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
    size_t n;
    /* The whole note, as `notes show` prints it: front matter and text. */
    char *before = cli_render_markdown(d, &n);
    if (!before) {
        notes_doc_free(d);
        return EXIT_SYSTEM;
    }
    size_t fm_n = fm_bytes(d, n);
    int fd = mkstemps(path, 3);
    if (fd < 0) {
        perror("notes: cannot create a temporary file");
        free(before);
        notes_doc_free(d);
        return EXIT_SYSTEM;
    }
    if (write(fd, before, n) != (ssize_t)n || close(fd) != 0) {
        fprintf(stderr, "notes: cannot write '%s'\n", path);
        free(before);
        unlink(path);
        notes_doc_free(d);
        return EXIT_SYSTEM;
    }
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
    if ((ret = cli_read_input(path, NOTES_MD_MAX_BYTES, &after, &an))) {
        free(before);
        notes_doc_free(d);
        return ret;
    }
    int changed = 0, same = an == n && memcmp(after, before, n) == 0;
    if (!same &&
        (ret = take_edit(d, after, an, before, fm_n, path, &changed))) {
        /* said; the file is kept */
    } else if (same || !changed) {
        printf("no change\n");
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

/* ---- log ---- */

/* At most `max` code points of s (n bytes) then "...", escaped, quoted. */
static void put_short(char *out, size_t cap, const char *s, size_t n)
{
    size_t cut = 0, cps = 0;
    while (cut < n && cps < 40) {
        cut++;
        while (cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut++;
        cps++;
    }
    snprintf(out, cap, "\"%s%s\"", cli_escn(s, cut), cut < n ? "..." : "");
}

struct say {
    char *buf;
    size_t cap, len;
    unsigned parts, dropped;
};

static void say(struct say *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct say *s, const char *fmt, ...)
{
    /* A long change (an import) names its first parts and counts the rest. */
    if (s->parts >= 8) {
        s->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    if (s->len < s->cap) {
        int k = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        if (k > 0)
            s->len += (size_t)k < s->cap - s->len ? (size_t)k : s->cap - s->len - 1;
    }
    va_end(ap);
    s->parts++;
}

static const char *op_name(int kind)
{
    switch (kind) {
    case NOTES_OP_INSERT: return "insert";
    case NOTES_OP_DELETE: return "delete";
    case NOTES_OP_SET: return "set";
    case NOTES_OP_UNSET: return "unset";
    case NOTES_OP_ADD: return "add";
    case NOTES_OP_REMOVE: return "remove";
    case NOTES_OP_NAME: return "name";
    case NOTES_OP_LINK: return "link";
    case NOTES_OP_REVOKE: return "revoke";
    case NOTES_OP_CONFIRM: return "confirm";
    default: return "other";
    }
}

/*
 * What change i did, in words (text "+3 -1", "title set to ...",
 * "participants + Zed", "confirmed ...", "linked device ..."), and with
 * `ops` (JSON) one object per operation, text runs summed into one.
 */
static void describe(struct cli_ctx *ctx, notes_doc *d, size_t i,
                     const notes_change_info *ci, char *out, size_t cap,
                     json_t *ops)
{
    struct say s = {out, cap, 0, 0, 0};
    out[0] = 0;
    if (ci->inserted || ci->deleted) {
        say(&s, "text +%llu -%llu", (unsigned long long)ci->inserted,
            (unsigned long long)ci->deleted);
        if (ops)
            json_array_append_new(
                ops, json_pack("{s:s, s:I, s:I}", "op", "text", "inserted",
                               (json_int_t)ci->inserted, "deleted",
                               (json_int_t)ci->deleted));
    }
    int last_kind = 0;
    const char *last_key = NULL;
    size_t last_keylen = 0;
    for (size_t k = 0; k < ci->nops; k++) {
        notes_op_info o;
        char v[200], who[400], fpr[NOTES_FPR_STRLEN];
        if (notes_doc_change_op(d, i, k, &o))
            continue;
        if (o.kind == NOTES_OP_INSERT || o.kind == NOTES_OP_DELETE)
            continue;
        const char *sep = s.len ? "; " : "";
        int layout = o.keylen && o.key[0] == '@';
        switch (o.kind) {
        case NOTES_OP_SET:
        case NOTES_OP_UNSET:
        case NOTES_OP_ADD:
        case NOTES_OP_REMOVE:
            if (ops) {
                json_t *e = json_pack("{s:s, s:s%}", "op", op_name(o.kind),
                                      "field", o.key, o.keylen);
                if (e && o.kind != NOTES_OP_UNSET)
                    json_object_set_new(
                        e, "value",
                        json_stringn(o.value ? o.value : "", o.valuelen));
                json_array_append_new(ops, e);
            }
            if (layout) {
                say(&s, "%sfront matter layout", sep);
                break;
            }
            put_short(v, sizeof(v), o.value ? o.value : "", o.valuelen);
            if ((o.kind == NOTES_OP_ADD || o.kind == NOTES_OP_REMOVE) &&
                o.kind == last_kind && o.keylen == last_keylen &&
                !memcmp(o.key, last_key, o.keylen)) {
                /* "participants + A, B, C": one phrase per list */
                if (s.parts < 8 && s.len + strlen(v) + 3 < cap) {
                    s.len += (size_t)snprintf(out + s.len, cap - s.len, ", %s", v);
                } else {
                    s.dropped++;
                }
                break;
            }
            last_kind = o.kind;
            last_key = o.key;
            last_keylen = o.keylen;
            if (o.kind == NOTES_OP_SET)
                say(&s, "%s%s set to %s", sep, cli_escn(o.key, o.keylen), v);
            else if (o.kind == NOTES_OP_UNSET)
                say(&s, "%s%s removed", sep, cli_escn(o.key, o.keylen));
            else
                say(&s, "%s%s %c %s", sep, cli_escn(o.key, o.keylen),
                    o.kind == NOTES_OP_ADD ? '+' : '-', v);
            break;
        case NOTES_OP_NAME:
            put_short(v, sizeof(v), o.value, o.valuelen);
            say(&s, "%sname %s", sep, v);
            if (ops)
                json_array_append_new(ops, json_pack("{s:s, s:s%}", "op",
                                                     "name", "value", o.value,
                                                     o.valuelen));
            break;
        case NOTES_OP_LINK:
        case NOTES_OP_REVOKE:
            if (!o.device)
                break;
            cli_author(ctx, d, o.device, who, sizeof(who));
            notes_key_fingerprint(o.person, fpr);
            put_short(v, sizeof(v), o.value, o.valuelen);
            say(&s, "%s%s device %s %s person %s (%s)", sep,
                o.kind == NOTES_OP_LINK ? "linked" : "unlinked", who,
                o.kind == NOTES_OP_LINK ? "to" : "from", v, fpr);
            if (ops) {
                char dfp[NOTES_FPR_STRLEN];
                notes_key_fingerprint(o.device, dfp);
                json_array_append_new(
                    ops, json_pack("{s:s, s:s, s:s, s:s%}", "op",
                                   op_name(o.kind), "device", dfp, "person",
                                   fpr, "person_name", o.value, o.valuelen));
            }
            break;
        case NOTES_OP_CONFIRM:
            put_short(v, sizeof(v), o.value ? o.value : "", o.valuelen);
            say(&s, "%sconfirmed %s%s%s", sep, v, o.keylen ? " for " : "",
                o.keylen ? cli_escn(o.key, o.keylen) : "");
            if (ops)
                json_array_append_new(
                    ops, json_pack("{s:s, s:s%, s:s%}", "op", "confirm",
                                   "item", o.value ? o.value : "", o.valuelen,
                                   "owner", o.key ? o.key : "", o.keylen));
            break;
        default:
            break;
        }
    }
    if (s.dropped && s.len < cap)
        snprintf(out + s.len, cap - s.len, "; and %u more", s.dropped);
    if (!out[0])
        snprintf(out, cap, "nothing");
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
        char hex[65], who[400], when[64], what[1200], key[NOTES_KEY_STRLEN];
        if (notes_doc_change(d, i, &ci))
            continue;
        for (int k = 0; k < 32; k++)
            snprintf(hex + (size_t)2 * k, 3, "%02x", ci.id[k]);
        cli_author(ctx, d, ci.author, who, sizeof(who));
        cli_time(ci.time_ms, when, sizeof(when));
        json_t *ops = arr ? json_array() : NULL;
        describe(ctx, d, i, &ci, what, sizeof(what), ops);
        int bad = notes_doc_author_equivocated(d, ci.author);
        if (arr) {
            notes_key_encode(ci.author, key);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:i, "
                               "s:s, s:o, s:b, s:b}",
                               "id", hex, "author", who, "key", key, "seq",
                               (json_int_t)ci.seq, "time_ms",
                               (json_int_t)ci.time_ms, "time", when,
                               "inserted", (json_int_t)ci.inserted, "deleted",
                               (json_int_t)ci.deleted, "fields", ci.nfields,
                               "summary", what, "ops", ops,
                               "equivocated", ci.equivocated,
                               "equivocating_key", bad));
        } else {
            /* Every change of such a key is marked, not just the two that
             * share a seq: the whole key is not to be trusted. */
            /* Padded by display width: "RăzvanD" lines up too. */
            printf("%s%.12s%s  ", ctx->color ? "\033[33m" : "", hex,
                   ctx->color ? "\033[0m" : "");
            cli_pad(who, 28);
            printf("  %s  %s%s%s\n", when, what,
                   bad ? "  [equivocating key]" : "",
                   ci.equivocated ? " (seq signed twice)" : "");
        }
    }
    cli_json_out(arr);
    notes_doc_free(d);
    return 0;
}

/* ---- blame ---- */

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
        change_hex(d, ch[0], hex, &ms);
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
            change_hex(d, ch[k], h, &ms);
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
    size_t fm = fm_bytes(d, mdn);
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
    if ((rc = cli_blame_lines(ctx, d, arr, NULL)) == 0 && arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    json_decref(arr);
    notes_doc_free(d);
    return rc;
}

/* ---- diff ---- */

/* The whole note (front matter and text, as `notes show` prints it) at
 * change `spec`, or now when spec is NULL. */
static char *markdown_at(notes_doc *d, const char *spec, size_t *n, int *ret)
{
    notes_doc *v = NULL;
    if (spec && (*ret = note_at(d, spec, &v)))
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
    const char *pos[3] = {NULL, NULL, NULL};
    const struct cli_opt opts[] = {CLI_END};
    if ((rc = cli_parse_args(argc, argv, "diff", opts, pos, 3, 0)))
        return rc;
    if (!pos[0] || !pos[1])
        return cli_usage("diff");
    if ((rc = cli_open_note(ctx, pos[0], &d)))
        return rc;
    size_t na = 0, nb = 0, ia, ib;
    uint8_t ida[32] = {0}, idb[32] = {0};
    char la[40] = "", lb[40] = "", *a = NULL, *b = NULL;
    if ((rc = change_arg(d, pos[1], &ia, ida)) ||
        (pos[2] && (rc = change_arg(d, pos[2], &ib, idb))) ||
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

/* ---- revert, restore ---- */

struct cpid {
    uint64_t id;   /* change << 32 | event: a code point's stable id */
    size_t pos;    /* where it is in the current text */
};

static int cmp_cpid(const void *a, const void *b)
{
    uint64_t x = ((const struct cpid *)a)->id, y = ((const struct cpid *)b)->id;
    return x < y ? -1 : x > y;
}

static const struct cpid *find_cp(const struct cpid *m, size_t n, uint64_t id)
{
    struct cpid key = {id, 0};
    return bsearch(&key, m, n, sizeof(*m), cmp_cpid);
}

struct edit {
    size_t pos, del;       /* code points of the current text */
    const char *ins;       /* bytes to insert at pos (after the delete) */
    size_t nins;
};

static int cmp_edit_desc(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? 1 : -1;
    return (x->del == 0) - (y->del == 0); /* at one spot: delete first */
}

/*
 * Undo the text of change c: what it inserted and still stands is
 * deleted; what it deleted is put back next to the characters it stood
 * by (the nearest before it that still stands, else after). Characters
 * are told apart by their stable ids, not by where they are, so edits
 * made since stay as they are. *n counts the edits.
 */
static int revert_text(notes_doc *d, size_t c, const uint8_t (*deps)[32],
                       size_t ndeps, size_t *n)
{
    uint32_t *cc = NULL, *ce = NULL, *bc = NULL, *be = NULL, *ac = NULL,
             *ae = NULL;
    size_t ncur = 0, nbef = 0, naft = 0, nm = 0, ne = 0, btl = 0;
    struct cpid *m = NULL, *am = NULL;
    struct edit *ed = NULL;
    char *bt = NULL;
    size_t *boff = NULL;
    notes_change_info ci;
    int rc;
    if ((rc = notes_doc_change(d, c, &ci)) ||
        (rc = notes_doc_origins(d, NULL, 0, &cc, &ce, &ncur)))
        return rc;
    uint8_t self[1][32];
    memcpy(self[0], ci.id, 32);
    if (ndeps && ((rc = notes_doc_origins(d, deps, ndeps, &bc, &be, &nbef)) ||
                  (rc = notes_doc_origins(d, (const uint8_t(*)[32])self, 1,
                                          &ac, &ae, &naft)) ||
                  (rc = notes_doc_text_at(d, deps, ndeps, &bt, &btl))))
        goto out;
    m = malloc((ncur + 1) * sizeof(*m));
    am = malloc((naft + 1) * sizeof(*am));
    ed = malloc((ncur + nbef + 1) * sizeof(*ed));
    boff = malloc((nbef + 1) * sizeof(*boff));
    if (!m || !am || !ed || !boff) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ncur; i++)
        m[nm++] = (struct cpid){(uint64_t)cc[i] << 32 | ce[i], i};
    qsort(m, nm, sizeof(*m), cmp_cpid);
    for (size_t i = 0; i < naft; i++)
        am[i] = (struct cpid){(uint64_t)ac[i] << 32 | ae[i], i};
    qsort(am, naft, sizeof(*am), cmp_cpid);
    /* Byte offset of each code point of the text before. */
    for (size_t i = 0, k = 0; i < btl && k <= nbef; i++)
        if (((unsigned char)bt[i] & 0xC0) != 0x80)
            boff[k++] = i;
    boff[nbef] = btl;
    /* What c inserted, where it still stands. */
    for (size_t i = 0; i < ncur;) {
        if (cc[i] != c) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < ncur && cc[j] == c)
            j++;
        ed[ne++] = (struct edit){i, j - i, NULL, 0};
        i = j;
    }
    /* What c deleted: in the text before it, not in the text after. */
    for (size_t i = 0; i < nbef;) {
        uint64_t id = (uint64_t)bc[i] << 32 | be[i];
        if (find_cp(am, naft, id)) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < nbef && !find_cp(am, naft, (uint64_t)bc[j] << 32 | be[j]))
            j++;
        size_t at = 0;
        int found = 0;
        for (size_t k = i; k-- > 0 && !found;) {
            const struct cpid *p = find_cp(m, nm, (uint64_t)bc[k] << 32 | be[k]);
            if (p) {
                at = p->pos + 1;
                found = 1;
            }
        }
        for (size_t k = j; k < nbef && !found; k++) {
            const struct cpid *p = find_cp(m, nm, (uint64_t)bc[k] << 32 | be[k]);
            if (p) {
                at = p->pos;
                found = 1;
            }
        }
        ed[ne++] = (struct edit){at, 0, bt + boff[i], boff[j] - boff[i]};
        i = j;
    }
    /* From the end, so earlier positions stay valid. */
    qsort(ed, ne, sizeof(*ed), cmp_edit_desc);
    for (size_t k = 0; k < ne && rc == NOTES_OK; k++)
        rc = notes_doc_splice(d, ed[k].pos, ed[k].del, ed[k].ins ? ed[k].ins : "",
                              ed[k].nins);
    *n += ne;
out:
    notes_free(cc);
    notes_free(ce);
    notes_free(bc);
    notes_free(be);
    notes_free(ac);
    notes_free(ae);
    notes_free(bt);
    free(m);
    free(am);
    free(ed);
    free(boff);
    return rc;
}

static int in_list(const char *const *l, const char *v)
{
    for (size_t i = 0; l[i]; i++)
        if (strcmp(l[i], v) == 0)
            return 1;
    return 0;
}

/* Undo the field writes of change c (before: the note its author had,
 * NULL for none). A field written again since is left alone and said. */
static int revert_fields(notes_doc *d, size_t c, notes_doc *before,
                         size_t *n, size_t *other)
{
    notes_change_info ci;
    int rc;
    if ((rc = notes_doc_change(d, c, &ci)))
        return rc;
    /* Borrowed op bytes are the change's; d's writes do not move them. */
    for (size_t k = ci.nops; k-- > 0 && rc == NOTES_OK;) {
        notes_op_info o;
        char key[1024], *val = NULL;
        if ((rc = notes_doc_change_op(d, c, k, &o)))
            break;
        if (o.kind < NOTES_OP_SET || o.kind > NOTES_OP_REMOVE) {
            if (o.kind != NOTES_OP_INSERT && o.kind != NOTES_OP_DELETE)
                ++*other;
            continue;
        }
        if (o.keylen >= sizeof(key) ||
            !(val = strndup(o.value ? o.value : "", o.valuelen)))
            return NOTES_ENOMEM;
        memcpy(key, o.key, o.keylen);
        key[o.keylen] = 0;
        const char *was = before ? notes_doc_field(before, key) : NULL;
        const char *now = notes_doc_field(d, key);
        if (o.kind == NOTES_OP_SET || o.kind == NOTES_OP_UNSET) {
            /* Only the last write of a field in the change counts. */
            int later = 0;
            for (size_t j = k + 1; j < ci.nops && !later; j++) {
                notes_op_info p;
                later = !notes_doc_change_op(d, c, j, &p) &&
                        (p.kind == NOTES_OP_SET || p.kind == NOTES_OP_UNSET) &&
                        p.keylen == o.keylen && !memcmp(p.key, o.key, o.keylen);
            }
            const char *wrote = o.kind == NOTES_OP_SET ? val : NULL;
            if (later) {
                /* superseded inside the change */
            } else if (!(now == wrote || (now && wrote && strcmp(now, wrote) == 0))) {
                fprintf(stderr, "notes: %s was written again since; left as "
                                "it is\n", cli_esc(key));
            } else if (was && (!now || strcmp(was, now) != 0)) {
                rc = notes_doc_set_field(d, key, was);
                ++*n;
            } else if (!was && now) {
                rc = notes_doc_unset_field(d, key);
                ++*n;
            }
        } else if (o.kind == NOTES_OP_ADD) {
            if (in_list(notes_doc_list(d, key), val) &&
                !(before && in_list(notes_doc_list(before, key), val))) {
                rc = notes_doc_list_remove(d, key, val);
                ++*n;
            }
        } else if (!in_list(notes_doc_list(d, key), val) && before &&
                   in_list(notes_doc_list(before, key), val)) {
            rc = notes_doc_list_add(d, key, val);
            ++*n;
        }
        free(val);
    }
    return rc;
}

int cmd_revert(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *pos[2] = {NULL, NULL};
    const struct cli_opt opts[] = {CLI_END};
    notes_doc *d, *before = NULL;
    int rc;
    if ((rc = cli_parse_args(argc, argv, "revert", opts, pos, 2, 0)))
        return rc;
    if (!pos[0] || !pos[1])
        return cli_usage("revert");
    if ((rc = cli_open_note(ctx, pos[0], &d)))
        return rc;
    size_t c, n = 0, other = 0, ndeps = 0;
    uint8_t id[32];
    const uint8_t(*deps)[32] = NULL;
    int ret = change_arg(d, pos[1], &c, id);
    if (!ret && (rc = notes_doc_change_deps(d, c, &deps, &ndeps)))
        ret = cli_fail(rc, "cannot read change '%s'", pos[1]);
    if (!ret && ndeps && (rc = notes_doc_at(d, deps, ndeps, &before)))
        ret = cli_fail(rc, "cannot rebuild the note before '%s'", pos[1]);
    if (!ret && ((rc = revert_text(d, c, deps, ndeps, &n)) ||
                 (rc = revert_fields(d, c, before, &n, &other))))
        ret = cli_fail(rc, "cannot undo change '%s'", pos[1]);
    char hex[13];
    uint64_t ms;
    change_hex(d, c, hex, &ms);
    if (!ret && other)
        fprintf(stderr, "notes: names, device links and confirmations are "
                        "not undone (%zu in change %s)\n", other, hex);
    if (!ret && !n) {
        printf("nothing to undo: the text and fields change %s wrote are "
               "already as before it\n", hex);
    } else if (!ret && !(ret = cli_commit(d, "the revert"))) {
        printf("recorded: change %s undone\n", hex);
        cli_warn_line_conflicts(ctx, d);
    }
    notes_doc_free(before);
    notes_doc_free(d);
    return ret;
}

int cmd_restore(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *note = NULL, *at = NULL;
    const struct cli_opt opts[] = {CLI_VALUE("--at", &at), CLI_END};
    notes_doc *d, *v = NULL;
    int rc;
    if ((rc = cli_parse_args(argc, argv, "restore", opts, &note, 1, 0)))
        return rc;
    if (!note || !at)
        return cli_usage("restore");
    if ((rc = cli_open_note(ctx, note, &d)))
        return rc;
    int ret = note_at(d, at, &v);
    size_t n = 0, tn, cn;
    if (!ret) {
        const char *t = notes_doc_text(v, &tn);
        const char *cur = notes_doc_text(d, &cn);
        int differs = cn != tn || memcmp(cur, t, tn) != 0;
        if (differs && (rc = notes_doc_set_text(d, t, tn)))
            ret = cli_fail(rc, "cannot restore the text");
        n += (size_t)differs;
    }
    if (!ret && (rc = sync_fields(d, v, 0, &n)))
        ret = cli_fail(rc, "cannot restore the front matter");
    if (!ret && !n) {
        printf("no change: the note already reads as at %s\n", cli_esc(at));
    } else if (!ret && !(ret = cli_commit(d, "the restore"))) {
        printf("recorded: the note reads as at %s\n", cli_esc(at));
        cli_warn_line_conflicts(ctx, d);
    }
    notes_doc_free(v);
    notes_doc_free(d);
    return ret;
}
