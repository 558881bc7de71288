/*
 * cmd_files.c: a note as files: verify, compact, export, import.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"

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
        if (rc == NOTES_OK || rep.nproblems) {
            printf("%.8s  ", hex);
            cli_pad(title ? cli_esc(title) : "(untitled)", 40);
            printf("  %zu change%s, %zu author%s, %zu signature%s: %s\n",
                   rep.changes, CLI_S(rep.changes), rep.authors,
                   CLI_S(rep.authors), rep.signatures, CLI_S(rep.signatures),
                   rc == NOTES_OK ? "ok" : "FAILED");
        }
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
        printf("verified %zu note%s, %zu change%s, %zu signature%s: %s\n",
               notes, CLI_S(notes), changes, CLI_S(changes), sigs, CLI_S(sigs),
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
        if (!ret && out && strcmp(out, "-") != 0) {
            char hex[33];
            size_t nc = notes_doc_change_count(d);
            cli_note_id(hex, notes_doc_id(d));
            cli_done(ctx, "wrote %s: note %.8s, %zu signed change%s, %zu bytes "
                          "(anyone can check it: notes verify %s)",
                     cli_esc(out), hex, nc, CLI_S(nc), n + 16, cli_esc(out));
        }
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
        if (!ret && out && strcmp(out, "-") != 0) {
            char hex[33];
            cli_note_id(hex, notes_doc_id(d));
            cli_done(ctx, "wrote %s: note %.8s as %s, %zu bytes", cli_esc(out),
                     hex, format[0] == 'm' ? "Markdown"
                          : format[0] == 'j' ? "JSON" : "HTML", n);
        }
    }
    notes_doc_free(d);
    return ret;
}

/* Whether note d rendered once its first change was applied (an import is
 * one change) is exactly the Markdown `md`. */
static int imported_from(notes_doc *d, const char *md, size_t n)
{
    notes_change_info ci;
    notes_doc *at;
    uint8_t first[1][32];
    char *text;
    size_t len;
    int same = 0;
    if (notes_doc_change_count(d) < 2 || notes_doc_change(d, 0, &ci) != NOTES_OK)
        return 0;
    memcpy(first[0], ci.id, 32);
    if (notes_doc_at(d, (const uint8_t(*)[32])first, 1, &at) != NOTES_OK)
        return 0;
    if (notes_fmt_md_export(at, &text, &len) == NOTES_OK) {
        same = len == n && memcmp(text, md, n) == 0;
        notes_fmt_free(text);
    }
    notes_doc_free(at);
    return same;
}

/* A note of the replica that renders to exactly the Markdown `md` (the
 * same file imported before: 1 when unchanged since, 2 when edited since):
 * its id in `out`; else 0. */
static int same_note_here(struct cli_ctx *ctx, const char *md, size_t n,
                          char out[33], char *title, size_t tn)
{
    uint8_t(*ids)[16];
    size_t count;
    int found = 0;
    if (notes_replica_list(ctx->r, &ids, &count) != NOTES_OK)
        return 0; /* not knowing is no reason to refuse the import */
    for (size_t i = 0; i < count && !found; i++) {
        notes_doc *d;
        char *text;
        size_t len;
        if (notes_doc_open(ctx->r, ids[i], &d) != NOTES_OK)
            continue;
        if (notes_fmt_md_export(d, &text, &len) == NOTES_OK) {
            if (len == n && memcmp(text, md, n) == 0)
                found = 1;
            else if (imported_from(d, md, n))
                found = 2;
            if (found) {
                cli_note_id(out, ids[i]);
                const char *t = notes_doc_field(d, "title");
                snprintf(title, tn, "%s", t ? t : "");
            }
            notes_fmt_free(text);
        }
        notes_doc_free(d);
    }
    notes_free(ids);
    return found;
}

static int import_markdown(struct cli_ctx *ctx, const char *path,
                           const char *data, size_t n, int again)
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
    /* The same file a second time would be a second identical note that
     * everyone then edits half of: offer the one already here instead
     * (its id, as an import prints), unless --again. */
    char *mine;
    size_t mn;
    if (!again && notes_fmt_md_export(d, &mine, &mn) == NOTES_OK) {
        char hex[33], title[256];
        int dup = same_note_here(ctx, mine, mn, hex, title, sizeof(title));
        notes_fmt_free(mine);
        if (dup) {
            fprintf(stderr, "notes: %s is already here, %s, as note "
                            "%.8s%s%s%s; nothing was imported (notes show "
                            "%.8s; a second copy: notes import --again FILE)\n",
                    cli_esc(path),
                    dup == 1 ? "unchanged" : "imported before and edited since",
                    hex, *title ? " \"" : "", cli_esc(title), *title ? "\"" : "",
                    hex);
            printf("%s\n", hex);
            notes_doc_free(d);
            return 0;
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
    int rc, again = 0;
    const char *file = NULL;
    const struct cli_opt opts[] = {CLI_FLAG("--again", &again), CLI_END};
    /* "-" is stdin */
    if ((rc = cli_parse_args(argc, argv, "import", opts, &file, 1, 1)))
        return rc;
    if (!file || (file[0] == '-' && file[1]))
        return cli_usage("import");
    if ((rc = cli_read_input_ex(file, IMPORT_BUNDLE_MAX, import_limit, &data,
                                &n)))
        return rc;
    if (!is_bundle(data, n)) {
        rc = import_markdown(ctx, file, data, n, again);
        free(data);
        return rc;
    }
    const uint8_t *id = (const uint8_t *)data;
    rc = notes_doc_open(ctx->r, id, &d);
    if (rc == NOTES_ENOTFOUND)
        rc = notes_doc_create_id(ctx->r, id, &d);
    if (rc) {
        free(data);
        return cli_fail(rc, "cannot open the note of '%s'", file);
    }
    rc = notes_doc_merge(d, (const uint8_t *)data + 16, n - 16, &added);
    cli_note_repaired(d);
    free(data);
    if (rc) {
        notes_doc_free(d);
        return cli_fail(rc, "refused '%s'", file);
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
