/*
 * cmd_remote.c: git remotes from the command line: `notes remote
 * add|list|remove` and `notes sync REMOTE` (called from cmd_sync). A thin
 * client of sync/src/remote*.c; docs/remote.md says how it works.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "notes_sync.h"

static int remote_exit(int rc)
{
    switch (rc) {
    case NOTES_SYNC_EREMOTE:
        return EXIT_SYSTEM;
    case NOTES_SYNC_EREMOTEDATA:
        return EXIT_DATA;
    default:
        return cli_exit_code(rc);
    }
}

static int remote_fail(int rc, const char *what)
{
    const char *d = notes_sync_last_detail();
    fprintf(stderr, "notes: %s: %s\n", what,
            d && *d ? cli_esc(d) : notes_sync_strerror(rc));
    return remote_exit(rc);
}

/* The space a remote is for: --space, else the replica's only space. */
static int pick_space(struct cli_ctx *ctx, const char *given, char *out,
                      size_t cap)
{
    char **names;
    size_t n;
    int rc;
    if (given) {
        snprintf(out, cap, "%s", given);
        return 0;
    }
    if ((rc = notes_sync_space_list(ctx->home, &names, &n)))
        return remote_fail(rc, "cannot list spaces");
    if (n != 1) {
        fprintf(stderr, "notes: %s; say which with --space NAME\n",
                n ? "this replica has several spaces"
                  : "this replica has no space (create one: notes space "
                    "create NAME, or join one: notes join CODE)");
        notes_sync_space_names_free(names, n);
        return EXIT_USER;
    }
    snprintf(out, cap, "%s", names[0]);
    notes_sync_space_names_free(names, n);
    return 0;
}

static int remote_list(struct cli_ctx *ctx)
{
    notes_sync_remote *v;
    size_t n;
    int rc = notes_sync_remote_list(ctx->home, &v, &n);
    if (rc)
        return remote_fail(rc, "cannot read the remotes");
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name",
                                                 v[i].name, "space",
                                                 v[i].space, "url", v[i].url));
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s  %s  (space %s)\n", v[i].name, cli_esc(v[i].url),
                   v[i].space);
    }
    notes_sync_free(v);
    return 0;
}

int cmd_remote(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *pos[3] = {NULL, NULL, NULL}, *space = NULL;
    char sp[NOTES_SPACE_NAME_MAX + 1];
    int rc, ret;
    const struct cli_opt opts[] = {CLI_VALUE("--space", &space), CLI_END};
    if ((rc = cli_parse_args(argc, argv, "remote", opts, pos, 3, 0)))
        return rc;
    if (!pos[0])
        return cli_usage("remote");
    if (strcmp(pos[0], "list") == 0) {
        if (pos[1] || space)
            return cli_usage("remote");
        return remote_list(ctx);
    }
    if (strcmp(pos[0], "add") == 0) {
        if (!pos[1] || !pos[2])
            return cli_usage("remote");
        if ((ret = pick_space(ctx, space, sp, sizeof(sp))))
            return ret;
        if ((rc = notes_sync_remote_add(ctx->home, pos[1], pos[2], sp)))
            return remote_fail(rc, "cannot add the remote");
        cli_done(ctx, "Added remote %s (%s) for space %s; sync with: notes "
                 "sync %s", pos[1], cli_esc(pos[2]), sp, pos[1]);
        return 0;
    }
    if (strcmp(pos[0], "remove") == 0) {
        if (!pos[1] || pos[2] || space)
            return cli_usage("remote");
        if ((rc = notes_sync_remote_remove(ctx->home, pos[1])))
            return remote_fail(rc, "cannot remove the remote");
        cli_done(ctx, "Removed remote %s (the repository itself is left as "
                 "it is).", pos[1]);
        return 0;
    }
    return cli_usage("remote");
}

static void human(uint64_t n, char *out, size_t len)
{
    if (n < 1024)
        snprintf(out, len, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, len, "%.1f KiB", (double)n / 1024);
    else
        snprintf(out, len, "%.1f MiB", (double)n / (1024.0 * 1024));
}

int cli_sync_remote(struct cli_ctx *ctx, const char *name, int compact,
                    const char *compact_above)
{
    notes_sync_remote_opts o;
    notes_sync_remote_report rep;
    notes_sync_remote rem;
    char what[200], pushed[32], onremote[32];
    int rc;
    memset(&o, 0, sizeof(o));
    o.compact = compact;
    if (compact_above) {
        char *end;
        unsigned long long v = strtoull(compact_above, &end, 10);
        if (!*compact_above || *end || v == 0) {
            fprintf(stderr, "notes: --compact-above takes a number of bytes "
                            "(not '%s')\n", cli_esc(compact_above));
            return EXIT_USER;
        }
        o.compact_above = v;
    }
    if ((rc = notes_sync_remote_get(ctx->home, name, &rem))) {
        if (rc == NOTES_ENOTFOUND)
            fprintf(stderr, "notes: no remote called '%s' (notes remote "
                            "list); a peer is HOST:PORT\n", cli_esc(name));
        else
            return remote_fail(rc, "cannot read the remotes");
        return EXIT_USER;
    }
    rc = notes_sync_remote_sync(ctx->r, name, &o, &rep);
    char detail[600];
    snprintf(detail, sizeof(detail), "%s", notes_sync_last_detail());
    snprintf(what, sizeof(what), "sync with remote '%s'", name);
    for (size_t i = 0; i < rep.nproblems && i < NOTES_SYNC_REMOTE_PROBLEMS_MAX;
         i++)
        fprintf(stderr, "notes: remote %s: %s\n", name,
                cli_esc(rep.problems[i]));
    if (rep.nproblems > NOTES_SYNC_REMOTE_PROBLEMS_MAX)
        fprintf(stderr, "notes: remote %s: and %zu more problems\n", name,
                rep.nproblems - NOTES_SYNC_REMOTE_PROBLEMS_MAX);
    if (rc && rc != NOTES_SYNC_EREMOTEDATA) {
        fprintf(stderr, "notes: %s: %s\n", what,
                detail[0] ? cli_esc(detail) : notes_sync_strerror(rc));
        return remote_exit(rc);
    }
    if (ctx->json) {
        json_t *probs = json_array();
        for (size_t i = 0;
             i < rep.nproblems && i < NOTES_SYNC_REMOTE_PROBLEMS_MAX; i++)
            json_array_append_new(probs, json_string(rep.problems[i]));
        json_t *j = json_pack(
            "{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
            "s:b, s:I, s:o}",
            "remote", name, "space", rem.space, "devices", (int)rep.devices,
            "packs_read", (json_int_t)rep.packs_read, "bytes_fetched",
            (json_int_t)rep.bytes_fetched, "changes_received",
            (json_int_t)rep.changes_received, "notes_received",
            (json_int_t)rep.notes_received, "notes_created",
            (json_int_t)rep.notes_created, "changes_sent",
            (json_int_t)rep.changes_sent, "notes_sent",
            (json_int_t)rep.notes_sent, "bytes_pushed",
            (json_int_t)rep.bytes_pushed, "remote_bytes",
            (json_int_t)rep.remote_bytes, "compacted", rep.compacted,
            "problem_count", (json_int_t)rep.nproblems, "problems", probs);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        human(rep.bytes_pushed, pushed, sizeof(pushed));
        human(rep.remote_bytes, onremote, sizeof(onremote));
        cli_done(ctx,
                 "Synced with remote %s (space %s, %u device%s): received "
                 "%llu change%s in %llu note%s (%llu new), sent %llu "
                 "change%s in %llu note%s (%s pushed%s); %s on the remote.",
                 name, rem.space, rep.devices, CLI_S(rep.devices),
                 (unsigned long long)rep.changes_received,
                 CLI_S(rep.changes_received),
                 (unsigned long long)rep.notes_received,
                 CLI_S(rep.notes_received),
                 (unsigned long long)rep.notes_created,
                 (unsigned long long)rep.changes_sent,
                 CLI_S(rep.changes_sent), (unsigned long long)rep.notes_sent,
                 CLI_S(rep.notes_sent), pushed,
                 rep.compacted ? ", compacted" : "", onremote);
    }
    if (rep.changes_received)
        cli_warn_all_line_conflicts(ctx);
    if (rc) {
        fprintf(stderr, "notes: %s: %s; what verified was merged, nothing "
                        "else stored\n", what, cli_esc(detail));
        return remote_exit(rc);
    }
    return 0;
}
