/*
 * verify_files.c: the part of `notes verify` that checks the files the
 * replica trusts beside the note logs: identity, identity.pub, person,
 * certs, trust, spaces/ (their check lines and content, issue 15) and
 * remotes (the git remotes, docs/remote.md).
 * A damaged file is named with what is wrong (exit 2); a sound file an
 * older version wrote, without a check line, gets a remark. Nothing is
 * rewritten: verifying only reads.
 */
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "notes_sync.h"

struct files_seen {
    json_t *arr;    /* --json: one object per file */
    size_t checked; /* files looked at */
    size_t bad;     /* damaged ones */
};

static void on_file(const notes_file_status *st, void *arg)
{
    struct files_seen *fs = arg;
    fs->checked++;
    if (st->code)
        fs->bad++;
    if (fs->arr) {
        json_array_append_new(
            fs->arr, json_pack("{s:s, s:b, s:b, s:s?, s:s}", "path", st->path,
                               "ok", st->code == NOTES_OK, "checksum",
                               st->checked, "error",
                               st->code ? notes_errname(st->code) : NULL,
                               "message", st->message));
    } else if (st->code && strstr(st->message, st->path)) {
        fprintf(stderr, "notes: %s\n", st->message); /* it names the file */
    } else if (st->code) {
        fprintf(stderr, "notes: %s: %s\n", st->path, st->message);
    } else if (*st->message) {
        fprintf(stderr, "notes: %s: note: %s\n", st->path, st->message);
    }
}

size_t cli_verify_files(struct cli_ctx *ctx, struct json_t **files)
{
    struct files_seen fs = {files ? json_array() : NULL, 0, 0};
    struct stat st;
    if (files)
        *files = fs.arr;
    /* No replica at all is reported by opening it, not file by file. */
    if (stat(ctx->home, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    size_t before = fs.bad;
    int rc = notes_replica_verify_files(ctx->home, on_file, &fs);
    if (rc && fs.bad == before) { /* could not check at all (memory) */
        cli_fail(rc, "cannot check the replica's files");
        fs.bad++;
    }
    /* sync's own files, checked the same way. */
    static const struct {
        int (*verify)(const char *home, notes_file_fn fn, void *arg);
        const char *what;
    } sync_files[] = {
        {notes_sync_space_verify_files, "the space files"},
        {notes_sync_remote_verify_files, "the remotes file"},
    };
    for (size_t i = 0; i < sizeof(sync_files) / sizeof(sync_files[0]); i++) {
        before = fs.bad;
        rc = sync_files[i].verify(ctx->home, on_file, &fs);
        if (rc && fs.bad == before) {
            fprintf(stderr, "notes: cannot check %s: %s\n", sync_files[i].what,
                    notes_sync_last_detail());
            fs.bad++;
        }
    }
    if (!files)
        printf("verified %zu replica file%s: %s\n", fs.checked,
               fs.checked == 1 ? "" : "s",
               fs.bad ? "DAMAGE FOUND" : "all ok");
    return fs.bad;
}

int cli_verify_files_only(struct cli_ctx *ctx, struct json_t *files, int rc)
{
    if (files) { /* the replica did not open: still say which file */
        json_t *o = json_pack("{s:o, s:b}", "files", files, "ok", 0);
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
    }
    (void)ctx;
    return cli_exit_code(rc);
}
