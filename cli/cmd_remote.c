/*
 * cmd_remote.c: git remotes from the command line: `notes remote
 * add|list|remove` and `notes sync REMOTE` (called from cmd_sync). A thin
 * client of sync/src/remote*.c; docs/remote.md says how it works.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cli.h"
#include "notes_sync.h"

static int remote_list(struct cli_ctx *ctx)
{
    notes_sync_remote *v;
    size_t n;
    int rc = notes_sync_remote_list(ctx->home, &v, &n);
    if (rc)
        return cli_sync_fail(rc, "cannot read the remotes");
    if (ctx->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name",
                                                 v[i].name, "space",
                                                 v[i].space, "url", v[i].url));
        cli_json_out(arr);
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
        if ((ret = cli_pick_space(ctx, space, sp, sizeof(sp))))
            return ret;
        if ((rc = notes_sync_remote_add(ctx->home, pos[1], pos[2], sp)))
            return cli_sync_fail(rc, "cannot add the remote");
        notes_sync_remote got;
        /* As stored (a folder: its absolute path). */
        if (notes_sync_remote_get(ctx->home, pos[1], &got) != NOTES_OK)
            snprintf(got.url, sizeof(got.url), "%s", pos[2]);
        cli_done(ctx, "Added remote %s (%s) for space %s; sync with: notes "
                 "sync %s", pos[1], cli_esc(got.url), sp, pos[1]);
        return 0;
    }
    if (strcmp(pos[0], "remove") == 0) {
        if (!pos[1] || pos[2] || space)
            return cli_usage("remote");
        if ((rc = notes_sync_remote_remove(ctx->home, pos[1])))
            return cli_sync_fail(rc, "cannot remove the remote");
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
    else if (n < ((uint64_t)1 << 20))
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
            return cli_sync_fail(rc, "cannot read the remotes");
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
        return cli_sync_exit(rc);
    }
    if (ctx->json) {
        json_t *probs = json_array();
        for (size_t i = 0;
             i < rep.nproblems && i < NOTES_SYNC_REMOTE_PROBLEMS_MAX; i++) {
            /* A problem quotes what the remote holds (a file name), which
             * need not be UTF-8: json_string refuses that, and the
             * problem would be missing. Escaped as on the terminal. */
            json_t *t = json_string(rep.problems[i]);
            json_array_append_new(probs,
                                  t ? t : json_string(cli_esc(rep.problems[i])));
        }
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
        return cli_sync_exit(rc);
    }
    return 0;
}

/* ---- notes serve: each remote synced every interval ---- */

/*
 * Each sync runs as a child process (`notes -q sync NAME`), one at a time:
 * git's network waits stay off the daemon's loop, and what a sync merges
 * reaches the daemon as any other process's commit does (its watcher of
 * the notes folder), so the hub pushes it to live peers. A failed sync is
 * a line on stderr and is tried again at the next interval.
 */
struct cli_remote_serve {
    uv_loop_t *loop;
    struct cli_ctx *ctx;
    uv_timer_t timer;
    uv_process_t proc;
    int running;      /* a child now */
    int stopping;
    unsigned interval_s;
    notes_sync_remote *list; /* this round's remotes */
    size_t n, next;
    char name[NOTES_REMOTE_NAME_MAX + 1];
};

static void remote_next(struct cli_remote_serve *rs);

static void on_proc_closed(uv_handle_t *h)
{
    struct cli_remote_serve *rs = h->data;
    rs->running = 0;
    if (!rs->stopping)
        remote_next(rs);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    struct cli_remote_serve *rs = p->data;
    if (status || sig) {
        char when[64];
        snprintf(when, sizeof(when), "; tried again in %u s", rs->interval_s);
        fprintf(stderr, "notes: serve: sync with remote %s failed (%s %d)%s\n",
                rs->name, sig ? "signal" : "exit", sig ? sig : (int)status,
                rs->stopping ? "" : when);
    }
    uv_close((uv_handle_t *)p, on_proc_closed);
}

/* Start the next remote of this round, if any. */
static void remote_next(struct cli_remote_serve *rs)
{
    char self[4096], envhome[4200];
    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
    while (!rs->running && !rs->stopping && rs->next < rs->n) {
        const notes_sync_remote *r = &rs->list[rs->next++];
        char *args[] = {self, "-q", "sync", rs->name, NULL};
        extern char **environ;
        size_t ne = 0;
        snprintf(rs->name, sizeof(rs->name), "%s", r->name);
        if (k <= 0)
            return;
        self[k] = '\0';
        while (environ[ne])
            ne++;
        char **env = calloc(ne + 2, sizeof(*env));
        if (!env)
            return;
        size_t j = 0;
        for (size_t i = 0; i < ne; i++)
            if (strncmp(environ[i], "NOTES_HOME=", 11) != 0)
                env[j++] = environ[i];
        snprintf(envhome, sizeof(envhome), "NOTES_HOME=%s", rs->ctx->home);
        env[j++] = envhome;
        /* The child's output is not ours to show; its errors are. */
        uv_stdio_container_t io[3] = {
            {.flags = UV_IGNORE},
            {.flags = UV_IGNORE},
            {.flags = UV_INHERIT_FD, .data.fd = 2},
        };
        uv_process_options_t po = {.file = self, .args = args, .env = env,
                                   .exit_cb = on_proc_exit, .stdio = io,
                                   .stdio_count = 3};
        rs->proc.data = rs;
        int e = uv_spawn(rs->loop, &rs->proc, &po);
        free(env);
        rs->running = 1;
        if (e < 0) {
            fprintf(stderr, "notes: serve: cannot start a sync with remote "
                            "%s: %s\n", rs->name, uv_strerror(e));
            /* The handle is closed all the same; the next remote then. */
            uv_close((uv_handle_t *)&rs->proc, on_proc_closed);
        }
    }
}

static void on_remote_timer(uv_timer_t *t)
{
    struct cli_remote_serve *rs = t->data;
    if (rs->running || rs->stopping)
        return; /* the last round is not over: this tick is skipped */
    notes_sync_free(rs->list);
    rs->list = NULL;
    rs->n = rs->next = 0;
    if (notes_sync_remote_list(rs->ctx->home, &rs->list, &rs->n) != NOTES_OK) {
        fprintf(stderr, "notes: serve: cannot read the remotes: %s\n",
                cli_esc(notes_sync_last_detail()));
        return;
    }
    remote_next(rs);
}

struct cli_remote_serve *cli_remote_serve_start(uv_loop_t *loop,
                                                struct cli_ctx *ctx,
                                                unsigned interval_s)
{
    struct cli_remote_serve *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return NULL;
    rs->loop = loop;
    rs->ctx = ctx;
    rs->interval_s = interval_s;
    uv_timer_init(loop, &rs->timer);
    rs->timer.data = rs;
    /* A first round at once, then every interval. */
    uv_timer_start(&rs->timer, on_remote_timer, 0,
                   (uint64_t)interval_s * 1000);
    return rs;
}

void cli_remote_serve_stop(struct cli_remote_serve *rs)
{
    if (!rs || rs->stopping)
        return;
    rs->stopping = 1;
    uv_close((uv_handle_t *)&rs->timer, NULL);
    /* A sync under way finishes (the loop waits for it): stopping it
     * halfway would only waste what it fetched. */
}

void cli_remote_serve_free(struct cli_remote_serve *rs)
{
    if (!rs)
        return;
    notes_sync_free(rs->list);
    free(rs);
}
