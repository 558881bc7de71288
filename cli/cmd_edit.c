/*
 * cmd_edit.c: `notes edit`, the note in $VISUAL or $EDITOR, and what comes
 * back taken in as changes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"

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
        rc = cli_sync_fields(d, s, 1, &nf);
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
    size_t fm_n = cli_fm_bytes(d, n);
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
