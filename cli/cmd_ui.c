/*
 * cmd_ui.c: `notes open`: the URL of a note's page in the browser UI that
 * `notes serve` offers on loopback (docs/web.md), with the access token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "notes_sync.h"
#include "notes_sync_presence.h"
#include "notes_web.h"

/* Start xdg-open on the URL without waiting for the browser. */
static int launch_browser(const char *url)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Detach: the browser outlives us; its output is not ours. */
        if (fork() != 0)
            _exit(0);
        if (!freopen("/dev/null", "w", stdout) ||
            !freopen("/dev/null", "w", stderr))
            _exit(127);
        execlp("xdg-open", "xdg-open", url, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

static int have_desktop(void)
{
    const char *d = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");
    return (d && *d) || (w && *w);
}

int cmd_open(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *spec = NULL;
    int no_browser = 0;
    char base[128], token[128], url[512], hex[33];
    const struct cli_opt opts[] = {CLI_FLAG("--no-browser", &no_browser),
                                   CLI_END};
    int ret = cli_parse_args(argc, argv, "open", opts, &spec, 1, 0);
    if (ret)
        return ret;
    if (notes_web_read_state(ctx->home, base, sizeof(base), token,
                            sizeof(token)) != NOTES_OK) {
        fprintf(stderr, "notes: no page is served for %s: start `notes serve` "
                        "first\n", cli_esc(ctx->home));
        return EXIT_USER;
    }
    if (spec) {
        notes_doc *d;
        int rc = cli_open_note(ctx, spec, &d);
        if (rc)
            return rc;
        cli_note_id(hex, notes_doc_id(d));
        notes_doc_free(d);
        snprintf(url, sizeof(url), "%s/n/%s?token=%s", base, hex, token);
    } else {
        snprintf(url, sizeof(url), "%s/?token=%s", base, token);
    }
    if (ctx->json)
        printf("{\"url\":\"%s\"}\n", url);
    else
        printf("%s\n", url);
    fflush(stdout);
    if (!no_browser && have_desktop() && launch_browser(url) != 0)
        fprintf(stderr, "notes: could not start xdg-open; open the URL above\n");
    return 0;
}

/* ---- the page inside `notes serve` ---- */

struct cli_ui {
    struct cli_ctx *ctx;
    char listen[80];
    const char *pass;
    notes_replica *r;          /* the page's own handle on the replica */
    notes_identity *id;        /* signs presence records */
    notes_web *ui;
    notes_sync_hub *hub;
    uint64_t seq;              /* of our presence records */
};

struct cli_ui *cli_ui_new(struct cli_ctx *ctx, const char *pass,
                          const char *listen)
{
    struct cli_ui *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->ctx = ctx;
    u->pass = pass;
    snprintf(u->listen, sizeof(u->listen), "%s", listen);
    return u;
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The page's presence for a note: signed here, sent to every peer. */
static void on_publish(void *ud, const uint8_t note[16], const char *json,
                       size_t n)
{
    struct cli_ui *u = ud;
    uint8_t *rec;
    size_t rn;
    uint64_t now = ms_now();
    if (!u->hub || !u->id)
        return;
    u->seq = now > u->seq ? now : u->seq + 1; /* strictly growing */
    if (notes_sync_presence_make(u->id, note, u->seq, json, n, &rec, &rn) !=
        NOTES_OK)
        return;
    if (notes_sync_hub_presence(u->hub, rec, rn) != NOTES_OK) {
        /* serve is stopping: nobody to tell */
    }
    notes_sync_free(rec);
}

/* The page's log on the daemon's terminal: what browsers and peers sent is
 * shown escaped (cli/esc.c), never raw. */
static void on_log(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "notes ui: %s\n", cli_esc(line));
    fflush(stderr);
}

static void on_status(void *ud, notes_web_status *st)
{
    struct cli_ui *u = ud;
    uint64_t last = 0;
    unsigned peers = 0;
    if (u->hub)
        notes_sync_hub_status(u->hub, &peers, &last);
    st->peers = peers;
    st->online = peers > 0;
    st->last_sync_ms = last;
}

/* The page's own handles: closed at the end, or at once when the page
 * cannot start (sync goes on without it). */
static void page_handles_free(struct cli_ui *u)
{
    notes_web_free(u->ui);
    u->ui = NULL;
    notes_identity_free(u->id);
    u->id = NULL;
    notes_replica_free(u->r); /* NULL when the hub's was borrowed */
    u->r = NULL;
}

void cli_ui_on_loop(struct cli_ui *u, void *loop, notes_sync_hub *hub)
{
    notes_web_opts o;
    notes_replica *r = hub ? notes_sync_hub_replica(hub) : NULL;
    u->hub = hub;
    /* The hub's replica, so that the page and the sessions share each
     * note's handle (no re-read of each other's writes); the hub outlives
     * the page (cmd_serve frees the page first). */
    if ((!r && notes_replica_open(u->ctx->home, &u->r)) ||
        notes_replica_unlock(r ? r : u->r, u->pass) ||
        notes_replica_identity(u->ctx->home, u->pass, &u->id)) {
        fprintf(stderr, "notes: no page: %s\n", cli_esc(notes_last_detail()));
        page_handles_free(u);
        return;
    }
    char saved[80];
    memset(&o, 0, sizeof(o));
    o.replica = r ? r : u->r;
    o.listen = u->listen;
    /* The same token as the last run: open pages reconnect after a
     * restart (ui.json is mode 0600 in the user's own folder). */
    if (notes_web_saved_token(u->ctx->home, saved, sizeof(saved)) == NOTES_OK)
        o.token = saved;
    o.log = on_log;
    o.caller_watches = 1; /* notes serve's watcher tells libnotes */
    o.status = on_status;
    o.status_ud = u;
    o.publish = on_publish;
    o.publish_ud = u;
    if (notes_web_start(loop, &o, &u->ui) != NOTES_OK) {
        fprintf(stderr, "notes: no page: %s (sync goes on; --ui ADDR:PORT "
                        "picks another port)\n", cli_esc(notes_web_last_detail()));
        page_handles_free(u);
        return;
    }
    if (notes_web_write_state(u->ui, u->ctx->home) != NOTES_OK)
        fprintf(stderr, "notes: %s: `notes open` will not find the page\n",
                cli_esc(notes_web_last_detail()));
    printf("page: http://127.0.0.1:%d/?token=%s (or: notes open NOTE)\n",
           notes_web_port(u->ui), notes_web_token(u->ui));
    fflush(stdout);
}

void cli_ui_on_stopping(struct cli_ui *u)
{
    u->hub = NULL;
    /* ui.json stays: its pid says no page is served now (notes open), its
     * token serves again at the next start. */
    if (u->ui)
        notes_web_stop(u->ui);
}

void cli_ui_on_presence(struct cli_ui *u, const uint8_t *rec, size_t n)
{
    uint8_t note[16], key[32];
    uint64_t seq;
    const char *json;
    size_t jn;
    if (u->ui &&
        notes_sync_presence_open(rec, n, note, key, &seq, &json, &jn) ==
            NOTES_OK)
        notes_web_remote_presence(u->ui, note, key, json, jn);
}

void cli_ui_free(struct cli_ui *u)
{
    if (!u)
        return;
    page_handles_free(u);
    free(u);
}
