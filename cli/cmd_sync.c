/*
 * cmd_sync.c: spaces and peer sync from the command line: `space`,
 * `invite`, `join`, `sync`, `serve`, `peers`. A thin client of sync/.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cli.h"
#include "notes_sync.h"

#define DEFAULT_PORT 7654

const char *cli_passphrase(int confirm);
/* Declared here and in main.c's table (cli.h belongs to the lead). */

int cli_sync_exit(int rc)
{
    switch (rc) {
    case NOTES_SYNC_EHANDSHAKE:
    case NOTES_SYNC_EFRAME:
    case NOTES_SYNC_EPROTO:
    case NOTES_SYNC_EREFUSED:
    case NOTES_SYNC_EREMOTEDATA:
        return EXIT_DATA;
    case NOTES_SYNC_ENET:
    case NOTES_SYNC_ETIMEOUT:
    case NOTES_SYNC_ECLOSED:
    case NOTES_SYNC_EBUSY:
    case NOTES_SYNC_EREMOTE:
        return EXIT_SYSTEM;
    default:
        return cli_exit_code(rc);
    }
}

int cli_sync_fail(int rc, const char *what)
{
    const char *d = notes_sync_last_detail();
    fprintf(stderr, "notes: %s: %s\n", what,
            d && *d ? cli_esc(d) : notes_sync_strerror(rc));
    return cli_sync_exit(rc);
}

int cli_pick_space(struct cli_ctx *ctx, const char *given, char *out,
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
        return cli_sync_fail(rc, "cannot list spaces");
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

/* The passphrase, if the key needs one (sync signs the handshake). */
static int key_pass(struct cli_ctx *ctx, const char **pass)
{
    *pass = NULL;
    if (!notes_replica_needs_passphrase(ctx->r))
        return 0;
    if (!(*pass = cli_passphrase(0))) {
        fprintf(stderr, "notes: the secret key is protected; set "
                        "NOTES_PASSPHRASE or run on a terminal\n");
        return EXIT_USER;
    }
    return 0;
}

/* ---- space ---- */

static int space_notes(struct cli_ctx *ctx, const char *name)
{
    uint8_t(*ids)[16];
    size_t n;
    int rc = notes_sync_space_notes(ctx->home, name, &ids, &n);
    if (rc)
        return cli_sync_fail(rc, "cannot read the space");
    json_t *arr = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        notes_doc *d;
        cli_note_id(hex, ids[i]);
        const char *title = NULL;
        /* Here without a title is "(untitled)", as notes list says; only
         * a note this replica has no log of is "not here yet". */
        int orc = notes_doc_open(ctx->r, ids[i], &d);
        if (orc == NOTES_OK)
            title = notes_doc_field(d, "title");
        else
            d = NULL;
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s?, s:b}", "id", hex,
                                                 "title", title, "here",
                                                 orc == NOTES_OK));
        else
            printf("%.8s  %s\n", hex,
                   title ? cli_esc(title)
                   : orc == NOTES_OK ? "(untitled)"
                   : orc == NOTES_ENOTFOUND ? "(not here yet)"
                                            : "(cannot be read: notes verify)");
        notes_doc_free(d);
    }
    if (arr) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(arr);
    }
    notes_sync_free(ids);
    return 0;
}

int cmd_space(int argc, char **argv, struct cli_ctx *ctx)
{
    int rc;
    if (argc < 2)
        return cli_usage("space");
    const char *sub = argv[1];
    if (strcmp(sub, "create") == 0 && argc == 3) {
        notes_sync_space sp;
        if ((rc = notes_sync_space_create(ctx->home, argv[2], &sp)))
            return cli_sync_fail(rc, "cannot create the space");
        notes_sync_space_clear(&sp);
        cli_done(ctx, "created space %s\ninvite others with: notes invite %s",
               cli_esc(argv[2]), cli_esc(argv[2]));
        return 0;
    }
    if (strcmp(sub, "list") == 0 && argc == 2) {
        char **names;
        size_t n;
        if ((rc = notes_sync_space_list(ctx->home, &names, &n)))
            return cli_sync_fail(rc, "cannot list spaces");
        json_t *arr = ctx->json ? json_array() : NULL;
        for (size_t i = 0; i < n; i++) {
            uint8_t(*ids)[16] = NULL;
            size_t nn = 0;
            if (notes_sync_space_notes(ctx->home, names[i], &ids, &nn) != NOTES_OK)
                nn = 0;
            notes_sync_free(ids);
            if (arr)
                json_array_append_new(arr, json_pack("{s:s, s:I}", "name", names[i],
                                                     "notes", (json_int_t)nn));
            else {
                cli_pad(cli_esc(names[i]), 20);
                printf(" %zu note%s\n", nn, nn == 1 ? "" : "s");
            }
        }
        if (arr) {
            json_dumpf(arr, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(arr);
        }
        notes_sync_space_names_free(names, n);
        return 0;
    }
    if (strcmp(sub, "show") == 0 && argc == 3)
        return space_notes(ctx, argv[2]);
    if ((strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) && argc == 4) {
        notes_doc *d;
        notes_sync_space sp;
        if ((rc = notes_sync_space_load(ctx->home, argv[2], &sp)))
            return cli_sync_fail(rc, rc == NOTES_ENOTFOUND ? "no such space"
                                                       : "cannot use the space");
        notes_sync_space_clear(&sp);
        if ((rc = cli_open_note(ctx, argv[3], &d)))
            return rc;
        rc = sub[0] == 'a' ? notes_sync_space_add_note(ctx->home, argv[2], notes_doc_id(d))
                           : notes_sync_space_remove_note(ctx->home, argv[2],
                                                     notes_doc_id(d));
        char hex[33];
        cli_note_id(hex, notes_doc_id(d));
        notes_doc_free(d);
        if (rc)
            return cli_sync_fail(rc, sub[0] == 'a' ? "cannot add the note"
                                               : "cannot remove the note");
        cli_done(ctx, "%.8s %s space %s", hex, sub[0] == 'a' ? "is in" : "left",
               cli_esc(argv[2]));
        return 0;
    }
    return cli_usage("space");
}

/* ---- invite, join ---- */

/* This machine's first non-loopback IPv4 address, for invites. */
static void local_addr(char *out, size_t n, int port)
{
    struct ifaddrs *ifs, *i;
    snprintf(out, n, "127.0.0.1:%d", port);
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        struct in_addr a = ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
        if ((ntohl(a.s_addr) >> 24) == 127)
            continue;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a, ip, sizeof(ip));
        snprintf(out, n, "%s:%d", ip, port);
        break;
    }
    freeifaddrs(ifs);
}

/* The relays to name in an invite or to serve through when none is
 * given: the replica's ($NOTES_HOME/relays), then the running daemon's. */
static size_t default_relays(struct cli_ctx *ctx,
                             char (*out)[NOTES_ADDR_MAX + 1], size_t max)
{
    notes_sync_peers ps;
    size_t n = 0;
    if (notes_sync_relays_load(ctx->home, out, max, &n) != NOTES_OK)
        n = 0;
    if (notes_sync_peers_read(ctx->home, &ps) == NOTES_OK) {
        for (size_t i = 0; ps.running && i < ps.nrelays && n < max; i++) {
            size_t j = 0;
            while (j < n && strcmp(out[j], ps.relays[i]) != 0)
                j++;
            if (j == n)
                snprintf(out[n++], NOTES_ADDR_MAX + 1, "%s", ps.relays[i]);
        }
        notes_sync_peers_clear(&ps);
    }
    return n;
}

int cmd_invite(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *space = NULL, *addr = NULL;
    const char *relays[NOTES_INVITE_RELAYS_MAX];
    size_t nrelays = 0;
    int rc;
    const struct cli_opt opts[] = {
        CLI_VALUE("--address", &addr),
        CLI_MANY("--relay", relays, &nrelays, NOTES_INVITE_RELAYS_MAX),
        CLI_END};
    if ((rc = cli_parse_args(argc, argv, "invite", opts, &space, 1, 0)))
        return rc;
    if (!space)
        return cli_usage("invite");
    notes_sync_invite inv;
    char *code;
    memset(&inv, 0, sizeof(inv));
    if (addr)
        snprintf(inv.addr, sizeof(inv.addr), "%s", addr);
    else
        local_addr(inv.addr, sizeof(inv.addr), DEFAULT_PORT);
    for (size_t i = 0; i < nrelays; i++)
        snprintf(inv.relays[i], sizeof(inv.relays[i]), "%s", relays[i]);
    inv.nrelays = nrelays ? nrelays
                          : default_relays(ctx, inv.relays,
                                           NOTES_INVITE_RELAYS_MAX);
    if ((rc = notes_sync_space_load(ctx->home, space, &inv.space)))
        return cli_sync_fail(rc, rc == NOTES_ENOTFOUND ? "no such space"
                                                   : "cannot use the space");
    memcpy(inv.inviter, notes_replica_public_key(ctx->r), 32);
    rc = notes_sync_invite_make(&inv, &code);
    notes_sync_space_clear(&inv.space);
    if (rc)
        return cli_sync_fail(rc, "cannot make the invite");
    printf("%s\n", code);
    if (inv.nrelays) {
        fprintf(stderr, "(this code is the space's secret: share it only with "
                        "members; they run: notes join CODE, while you run: "
                        "notes serve --relay %s; it also names %s%zu "
                        "relay%s, so they can join from other networks)\n",
                cli_esc(inv.relays[0]), inv.nrelays > 1 ? "these " : "", inv.nrelays,
                inv.nrelays == 1 ? "" : "s");
    } else {
        fprintf(stderr, "(this code is the space's secret: share it only with "
                        "members; they run: notes join CODE, while you run: "
                        "notes serve --listen %s)\n", cli_esc(inv.addr));
    }
    notes__wipe(code, strlen(code));
    notes_sync_free(code);
    return 0;
}

/* ---- progress of a one-shot sync (stderr, on a terminal only) ---- */

struct progress {
    struct {
        int active;
        uint8_t id[16];
        uint64_t done, total;
    } t[2];          /* [0] receiving, [1] sending */
    double last;     /* when the line was last drawn (ms) */
    size_t width;    /* of the line on screen, unfinished; 0: none */
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void human(uint64_t n, char *out, size_t len)
{
    if (n < 1024)
        snprintf(out, len, "%llu B", (unsigned long long)n);
    else if (n < (1u << 20))
        snprintf(out, len, "%.1f KiB", n / 1024.0);
    else
        snprintf(out, len, "%.1f MiB", n / 1048576.0);
}

/* Replace the line on screen with `text` (padded over the old one);
 * `done`: end it with a newline. */
static void prog_line(struct progress *p, const char *text, int done)
{
    size_t n = strlen(text);
    fprintf(stderr, "\r%s%*s", text, p->width > n ? (int)(p->width - n) : 0, "");
    if (done) {
        fputc('\n', stderr);
        p->width = 0;
    } else {
        p->width = n;
    }
    fflush(stderr);
}

static void prog_draw(struct progress *p)
{
    char line[256] = "";
    size_t k = 0;
    for (int i = 0; i < 2; i++) {
        char hex[33], d[32], t[32];
        if (!p->t[i].active)
            continue;
        cli_note_id(hex, p->t[i].id);
        human(p->t[i].done, d, sizeof(d));
        human(p->t[i].total, t, sizeof(t));
        k += (size_t)snprintf(line + k, sizeof(line) - k, "%s%s %.8s %s / %s",
                              k ? "   " : "", i ? "sending" : "receiving",
                              hex, d, t);
        if (k >= sizeof(line))
            break;
    }
    if (line[0] || p->width)
        prog_line(p, line, 0);
}

/* Called by the session for each chunk of a bundle, both directions. */
static void on_progress(void *ud, const uint8_t note[16], int sending,
                        uint64_t done, uint64_t total)
{
    struct progress *p = ud;
    int i = sending ? 1 : 0;
    double now = mono_ms();
    if (!p->t[i].active || memcmp(p->t[i].id, note, 16) != 0) {
        p->t[i].active = 1;
        memcpy(p->t[i].id, note, 16);
        p->last = 0; /* a new note: draw at once */
    }
    p->t[i].done = done;
    p->t[i].total = total;
    if (done >= total) {
        /* This note's line ends here; the other direction's goes on. */
        char hex[33], t[32], line[128];
        cli_note_id(hex, note);
        human(total, t, sizeof(t));
        snprintf(line, sizeof(line), "%s %.8s %s / %s", sending ? "sent" : "received",
                 hex, t, t);
        prog_line(p, line, 1);
        p->t[i].active = 0;
        prog_draw(p);
        return;
    }
    if (now - p->last < 100) /* at most 10 redraws a second */
        return;
    p->last = now;
    prog_draw(p);
}

/* The sync is over: a transfer cut short stays on screen as it was. */
static void prog_end(struct progress *p)
{
    if (p->width) {
        fputc('\n', stderr);
        p->width = 0;
    }
}

/* notes_sync_once, with a progress line per note when stderr is a
 * terminal (never with --json: output for programs). */
static const char *once_relay;    /* sync_once: through this relay */
static unsigned once_handshake_ms; /* 0: the default */

static int sync_once(struct cli_ctx *ctx, const char *pass, const char *space,
                     const char *addr, notes_sync_report *rep)
{
    struct progress p;
    notes_sync_once_opts o;
    int rc;
    memset(&p, 0, sizeof(p));
    memset(&o, 0, sizeof(o));
    o.relay = once_relay;
    o.handshake_ms = once_handshake_ms;
    if (isatty(2) && !ctx->json) {
        o.progress = on_progress;
        o.progress_ud = &p;
    }
    rc = notes_sync_once_ex(ctx->home, pass, space, addr, &o, rep);
    prog_end(&p);
    return rc;
}

static void print_report(struct cli_ctx *ctx, const char *what,
                         const notes_sync_report *r)
{
    char fpr[NOTES_FPR_STRLEN], who[256];
    notes_key_fingerprint(r->peer, fpr);
    /* Named as everywhere else (cli_peer: the person's fingerprint when the
     * device is linked to one, the device's after it). */
    cli_peer(ctx, r->space, r->peer, 1, who, sizeof(who));
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "result", what, "space", r->space, "peer", fpr,
                              "peer_shown", who,
                              "changes_sent", (json_int_t)r->changes_sent,
                              "changes_received", (json_int_t)r->changes_received,
                              "notes_created", (json_int_t)r->notes_created,
                              "bytes_sent", (json_int_t)r->bytes_sent,
                              "bytes_received", (json_int_t)r->bytes_received,
                              "notes_received", (json_int_t)r->notes_received,
                              /* what a slow sync cost here: notes opened */
                              "notes_opened", (json_int_t)r->notes_opened);
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    } else {
        printf("%s with %s in space %s: sent %llu change%s, received %llu "
               "(%llu new note%s); %llu bytes out, %llu in\n",
               what, who, cli_esc(r->space), (unsigned long long)r->changes_sent,
               r->changes_sent == 1 ? "" : "s",
               (unsigned long long)r->changes_received,
               (unsigned long long)r->notes_created,
               r->notes_created == 1 ? "" : "s",
               (unsigned long long)r->bytes_sent,
               (unsigned long long)r->bytes_received);
    }
    fflush(stdout);
}

/*
 * A busy peer (NOTES_SYNC_EBUSY: it said "busy", or closed before any
 * answer) is tried again after 1, 2 and 4 s: a stranger's flood holds
 * the server's pending slots only for moments at a time.
 */
static const unsigned busy_wait_s[] = {1, 2, 4};
#define BUSY_TRIES (1 + sizeof(busy_wait_s) / sizeof(busy_wait_s[0]))

static int sync_busy_retry(struct cli_ctx *ctx, const char *pass,
                           const char *space, const char *addr,
                           notes_sync_report *rep, unsigned *tries,
                           double *secs)
{
    double t0 = mono_ms();
    int rc;
    for (unsigned i = 0;; i++) {
        *tries = i + 1;
        rc = sync_once(ctx, pass, space, addr, rep);
        *secs = (mono_ms() - t0) / 1000;
        if (rc != NOTES_SYNC_EBUSY || i + 1 == BUSY_TRIES)
            return rc;
        fprintf(stderr, "notes: peer %s is busy; trying again in %u s\n",
                cli_esc(addr), busy_wait_s[i]);
        {
            struct timespec ts = {(time_t)busy_wait_s[i], 0};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ; /* a signal: sleep the rest */
        }
    }
}

/*
 * A peer that does not hold the space's secret answers nothing and
 * closes (by design: it must learn nothing), as a busy one of an older
 * version does: the sync layer reports both as busy, and says both are
 * possible. Nothing here claims the peer lacks the secret.
 */
static int once_fail(int rc, unsigned tries, double secs, const char *addr)
{
    if (rc == NOTES_SYNC_EBUSY) {
        fprintf(stderr, "notes: sync failed: peer %s is busy (tried %u "
                        "times over %.0f s): %s; nothing was exchanged, try "
                        "again later\n", cli_esc(addr), tries, secs,
                notes_sync_last_detail());
        return EXIT_SYSTEM;
    }
    return cli_sync_fail(rc, "sync failed");
}

int cmd_join(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_sync_invite inv;
    const char *pass;
    int rc, ret;
    if (argc != 2)
        return cli_usage("join");
    cli_network_command();
    if ((rc = notes_sync_invite_decode(argv[1], &inv)))
        return cli_sync_fail(rc, "not a valid invite code");
    if ((rc = notes_sync_space_save(ctx->home, &inv.space))) {
        notes_sync_space_clear(&inv.space);
        return cli_sync_fail(rc, "cannot join");
    }
    cli_done(ctx, "joined space %s", cli_esc(inv.space.name));
    if ((ret = key_pass(ctx, &pass))) {
        notes_sync_space_clear(&inv.space);
        return ret;
    }
    /* The invite's relays are where this replica's daemon meets the space
     * too (notes serve uses $NOTES_HOME/relays). */
    for (size_t i = 0; i < inv.nrelays; i++)
        if (notes_sync_relays_add(ctx->home, inv.relays[i]) != NOTES_OK)
            fprintf(stderr, "notes: relay %s not remembered: %s\n",
                    cli_esc(inv.relays[i]), cli_esc(notes_sync_last_detail()));
    notes_sync_report rep;
    unsigned tries;
    double secs;
    memset(&rep, 0, sizeof(rep));
    /* The inviter's address first (on its LAN it is the short path); when
     * relays exist, it gets 3 s before they are tried in turn. */
    once_handshake_ms = inv.nrelays ? 3000 : 0;
    rc = sync_busy_retry(ctx, pass, inv.space.name, inv.addr, &rep, &tries,
                         &secs);
    once_handshake_ms = 0;
    const char *via = inv.addr;
    for (size_t i = 0; rc && i < inv.nrelays; i++) {
        fprintf(stderr, "notes: %s: %s; trying relay %s\n", cli_esc(via),
                cli_esc(notes_sync_last_detail()), cli_esc(inv.relays[i]));
        once_relay = via = inv.relays[i];
        rc = sync_busy_retry(ctx, pass, inv.space.name, NULL, &rep, &tries,
                             &secs);
    }
    once_relay = NULL;
    if (rc) {
        ret = once_fail(rc, tries, secs, via);
        fprintf(stderr, "notes: the space is kept; sync later with: notes sync "
                        "%s --space %s%s\n", inv.addr, inv.space.name,
                inv.nrelays ? " (or run notes serve: it meets the space at "
                              "the invite's relays)" : "");
        notes_sync_space_clear(&inv.space);
        return ret;
    }
    /* The inviter is known from here on: named in HOME/trust by the name
     * it claims in the notes just received (the code came from them). */
    cli_trust_inviter(ctx, inv.space.name, inv.inviter);
    print_report(ctx, "synced", &rep);
    notes_sync_space_clear(&inv.space);
    return 0;
}

/* ---- sync, serve ---- */

int cmd_sync(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *addr = NULL, *space = NULL, *relay = NULL, *pass;
    const char *compact_above = NULL;
    int rc, ret, compact = 0;
    const struct cli_opt opts[] = {
        CLI_VALUE("--space", &space),
        CLI_VALUE("--relay", &relay),
        CLI_FLAG("--compact", &compact),
        CLI_VALUE("--compact-above", &compact_above),
        CLI_END};
    if ((rc = cli_parse_args(argc, argv, "sync", opts, &addr, 1, 0)))
        return rc;
    cli_network_command();
    /* A remote's name never holds ':'; HOST:PORT always does. */
    if (addr && !strchr(addr, ':')) {
        if (relay || space)
            return cli_usage("sync");
        return cli_sync_remote(ctx, addr, compact, compact_above);
    }
    if (compact || compact_above)
        return cli_usage("sync");
    if (!addr == !relay) /* one of them */
        return cli_usage("sync");
    char sp[NOTES_SPACE_NAME_MAX + 1];
    if (!space) {
        if ((ret = cli_pick_space(ctx, NULL, sp, sizeof(sp))))
            return ret;
        space = sp;
    }
    if ((ret = key_pass(ctx, &pass)))
        return ret;
    notes_sync_report rep;
    unsigned tries;
    double secs;
    memset(&rep, 0, sizeof(rep));
    once_relay = relay;
    rc = sync_busy_retry(ctx, pass, space, addr, &rep, &tries, &secs);
    once_relay = NULL;
    if (rc) {
        ret = once_fail(rc, tries, secs, relay ? relay : addr);
    } else {
        print_report(ctx, "synced", &rep);
        if (rep.changes_received) /* lines edited here and there at once */
            cli_warn_all_line_conflicts(ctx);
    }
    return ret;
}

/* What serve's callbacks share. */
struct serve_state {
    struct cli_ctx *ctx;
    struct cli_ui *ui;  /* the page, or NULL (--no-ui) */
    notes_sync_hub *hub;
    /* SIGINT and SIGTERM stop the hub; they stay caught until it is
     * stopped (a second Ctrl-C does not kill a daemon saying goodbye). */
    uv_signal_t sigint, sigterm;
    int signals;
    /* The notes folder: other processes' commits (notes, the page of
     * another daemon) reach libnotes' subscribers, the hub among them. */
    uv_fs_event_t watch;
    /* The remotes synced every --remote-interval (NULL: none). */
    struct cli_remote_serve *remotes;
};

static void on_listen(void *ud, int port)
{
    (void)ud;
    printf("listening on port %d (stop with Ctrl-C)\n", port);
    fflush(stdout);
}

/* The hub closed its last handle: the signals go, and the loop ends. */
static void on_hub_done(void *arg)
{
    struct serve_state *st = arg;
    if (st->signals) {
        st->signals = 0;
        uv_close((uv_handle_t *)&st->sigint, NULL);
        uv_close((uv_handle_t *)&st->sigterm, NULL);
        uv_close((uv_handle_t *)&st->watch, NULL);
    }
}

static void on_notes_event(uv_fs_event_t *w, const char *name, int events,
                           int status)
{
    struct serve_state *st = w->data;
    (void)events;
    if (status == 0 && name)
        (void)notes_replica_file_event(st->ctx->home, name);
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct serve_state *st = h->data;
    (void)sig;
    notes_sync_hub_stop(st->hub, on_hub_done, st);
}

/* The hub begins to stop (a signal, or --sessions served): the page
 * closes its handles, and the signals go once the hub is done. */
static void on_stopping(void *ud)
{
    struct serve_state *st = ud;
    if (st->ui)
        cli_ui_on_stopping(st->ui);
    cli_remote_serve_stop(st->remotes);
    if (st->hub)
        notes_sync_hub_stop(st->hub, on_hub_done, st);
}

static void on_presence(void *ud, const uint8_t *rec, size_t n)
{
    struct serve_state *st = ud;
    if (st->ui)
        cli_ui_on_presence(st->ui, rec, n);
}

static void on_session(void *ud, int rc, const notes_sync_report *r)
{
    struct cli_ctx *ctx = ((struct serve_state *)ud)->ctx;
    if (rc)
        fprintf(stderr, "notes: a session ended: %s\n",
                *notes_sync_last_detail() ? notes_sync_last_detail()
                                         : notes_sync_strerror(rc));
    else
        print_report(ctx, "synced", r);
}

static void on_log(void *ud, const char *line)
{
    (void)ud;
    printf("%s\n", cli_esc(line));
    fflush(stdout);
}

/* A positive integer option value, at most max. */
/* A whole number 1..max. */
static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long x;
    if (!*v || *v == '-')
        return -1;
    x = strtoul(v, &end, 10);
    if (*end || x == 0 || x > max)
        return -1;
    *out = x;
    return 0;
}

static const char *ago(uint64_t now, uint64_t ms, char *buf, size_t n);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One daemon per replica: a second one would answer the same peers with
 * the same key, fight over the page's port and leave `notes peers` with
 * only the first one's state. The running one holds serve.lock; name it. */
static int refuse_second_daemon(struct cli_ctx *ctx)
{
    notes_sync_peers ps;
    char when[64];
    if (notes_sync_peers_read(ctx->home, &ps) != NOTES_OK)
        return 0; /* unreadable state: the hub says what it can */
    int running = ps.running;
    if (running && ps.known)
        fprintf(stderr, "notes: a daemon already serves this replica: pid %ld, "
                        "TCP port %d, started %s (see: notes peers; stop it "
                        "with Ctrl-C where it runs, or: kill %ld)\n",
                ps.pid, ps.port, ago(now_ms(), ps.started_ms, when, sizeof(when)),
                ps.pid);
    else if (running)
        fprintf(stderr, "notes: a daemon already serves this replica (it holds "
                        "%s/serve.lock); stop it first\n", cli_esc(ctx->home));
    notes_sync_peers_clear(&ps);
    return running ? EXIT_USER : 0;
}

int cmd_serve(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *listen = NULL, *pass, *ui_listen = "127.0.0.1:7464";
    const char *peers[16], *announce[8], *relays[NOTES_SYNC_RELAYS_MAX];
    char known[NOTES_SYNC_RELAYS_MAX][NOTES_ADDR_MAX + 1];
    size_t npeers = 0, nannounce = 0, nrelays = 0;
    int no_relay = 0, no_punch = 0;
    unsigned sessions = 0;
    unsigned long dport = 0, interval = 0, nsessions = 0;
    int discovery;
    char def[64];
    int ret;
    const char *ui = NULL, *dport_s = NULL, *interval_s = NULL,
               *sessions_s = NULL, *remote_s = NULL;
    unsigned long remote_interval = 300;
    int no_discovery = 0, no_ui = 0;
    const struct cli_opt opts[] = {
        CLI_VALUE("--listen", &listen),
        CLI_VALUE("--ui", &ui),
        CLI_FLAG("--no-ui", &no_ui),
        CLI_FLAG("--no-discovery", &no_discovery),
        /* Dial HOST:PORT and keep a live session with it (redialed with
         * backoff when it drops). */
        CLI_MANY("--peer", peers, &npeers, sizeof(peers) / sizeof(peers[0])),
        /* Meet the spaces' members at this relay. */
        CLI_MANY("--relay", relays, &nrelays, NOTES_SYNC_RELAYS_MAX),
        CLI_FLAG("--no-relay", &no_relay),
        CLI_VALUE("--sessions", &sessions_s),
        CLI_VALUE("--discovery-port", &dport_s),
        /* Seconds between syncs with each git remote (notes remote);
         * 0: none. */
        CLI_VALUE("--remote-interval", &remote_s),
        /* Test knobs: milliseconds between announcements; where they go
         * instead of the interfaces' broadcast addresses; relayed sessions
         * stay relayed (no direct try). */
        CLI_VALUE("--announce-interval", &interval_s),
        CLI_MANY("--announce-to", announce, &nannounce, sizeof(announce) / sizeof(announce[0])),
        CLI_FLAG("--no-punch", &no_punch),
        CLI_END};
    if ((ret = cli_parse_args(argc, argv, "serve", opts, NULL, 0, 0)))
        return ret;
    cli_network_command();
    if ((dport_s && parse_uint(dport_s, 65535, &dport)) ||
        (interval_s && parse_uint(interval_s, 3600000, &interval)) ||
        (sessions_s && parse_uint(sessions_s, 1000000, &nsessions)))
        return cli_usage("serve");
    if (remote_s && strcmp(remote_s, "0") == 0)
        remote_interval = 0;
    else if (remote_s && parse_uint(remote_s, 86400ul * 7, &remote_interval))
        return cli_usage("serve");
    sessions = (unsigned)nsessions;
    if ((ret = refuse_second_daemon(ctx)))
        return ret;
    discovery = !no_discovery;
    char ui_lo[80];
    if (no_ui) {
        ui_listen = NULL;
    } else if (ui && strncasecmp(ui, "localhost:", 10) == 0) {
        /* The page is for this machine only: localhost is 127.0.0.1. */
        snprintf(ui_lo, sizeof(ui_lo), "127.0.0.1:%.20s", ui + 10);
        ui_listen = ui_lo;
    } else if (ui) {
        ui_listen = ui;
    }
    if (!listen) {
        snprintf(def, sizeof(def), "0.0.0.0:%d", DEFAULT_PORT);
        listen = def;
    }
    if (!nrelays && !no_relay) {
        /* The relays of the invites joined ($NOTES_HOME/relays). */
        size_t n = 0;
        int rc0 = notes_sync_relays_load(ctx->home, known,
                                         NOTES_SYNC_RELAYS_MAX, &n);
        if (rc0)
            return cli_sync_fail(rc0, "cannot read the relays");
        for (size_t i = 0; i < n; i++)
            relays[nrelays++] = known[i];
    }
    if ((ret = key_pass(ctx, &pass)))
        return ret;
    notes_sync_serve_opts o;
    memset(&o, 0, sizeof(o));
    o.listen = listen;
    o.max_sessions = sessions;
    o.on_listen = on_listen;
    o.on_session = on_session;
    struct serve_state st;
    memset(&st, 0, sizeof(st));
    st.ctx = ctx;
    if (ui_listen && !(st.ui = cli_ui_new(ctx, pass, ui_listen)))
        return cli_fail(NOTES_ENOMEM, "cannot serve");
    o.on_stopping = on_stopping;
    o.on_presence = on_presence;
    o.ud = &st;
    /* Live: peers that ask stay connected and get each change at once. */
    o.live = 1;
    o.peers = peers;
    o.npeers = npeers;
    /* Discovery: members of our spaces on the LAN find each other. */
    o.discovery = discovery;
    o.discovery_port = (int)dport;
    o.announce_to = nannounce ? announce : NULL;
    o.nannounce_to = nannounce;
    o.announce_ms = (unsigned)interval;
    o.on_log = on_log;
    o.caller_watches = 1;
    o.relays = relays;
    o.nrelays = nrelays;
    o.no_punch = no_punch;
    /* The loop is ours: the hub and the page both run on it. */
    uv_loop_t loop;
    int e = uv_loop_init(&loop);
    if (e < 0) {
        cli_ui_free(st.ui);
        fprintf(stderr, "notes: cannot serve: %s\n", uv_strerror(e));
        return EXIT_FAILURE;
    }
    int rc = notes_sync_hub_start(&loop, ctx->home, pass, &o, &st.hub);
    char why[512] = "";
    if (rc == NOTES_OK) {
        uv_signal_init(&loop, &st.sigint);
        uv_signal_init(&loop, &st.sigterm);
        st.sigint.data = st.sigterm.data = &st;
        st.signals = 1;
        uv_signal_start(&st.sigint, on_signal, SIGINT);
        uv_signal_start(&st.sigterm, on_signal, SIGTERM);
        char dir[4200];
        uv_fs_event_init(&loop, &st.watch);
        st.watch.data = &st;
        /* As before the hub handed it over: serving goes on unwatched if
         * the folder cannot be watched. */
        if (notes_replica_watch_dir(ctx->home, dir, sizeof(dir)) == NOTES_OK) {
            (void)mkdir(dir, 0700); /* a replica with no note yet */
            (void)uv_fs_event_start(&st.watch, on_notes_event, dir, 0);
        }
        if (st.ui)
            cli_ui_on_loop(st.ui, &loop, st.hub);
        if (remote_interval)
            st.remotes = cli_remote_serve_start(&loop, ctx,
                                                (unsigned)remote_interval);
    } else {
        snprintf(why, sizeof(why), "%s", notes_sync_last_detail());
    }
    /* Also after a failed start: what it opened closes on the loop. */
    uv_run(&loop, UV_RUN_DEFAULT);
    /* The page first: its notes are handles of the hub's replica. */
    cli_ui_free(st.ui);
    st.ui = NULL;
    notes_sync_hub_free(st.hub);
    cli_remote_serve_free(st.remotes);
    (void)uv_loop_close(&loop);
    if (rc) {
        fprintf(stderr, "notes: cannot serve: %s\n",
                why[0] ? cli_esc(why) : notes_sync_strerror(rc));
        return cli_sync_exit(rc);
    }
    return 0;
}

/* ---- peers ---- */

static const char *ago(uint64_t now, uint64_t ms, char *buf, size_t n)
{
    uint64_t d;
    if (!ms)
        return "never";
    d = now > ms ? (now - ms) / 1000 : 0;
    if (d < 2)
        snprintf(buf, n, "just now");
    else if (d < 120)
        snprintf(buf, n, "%llu s ago", (unsigned long long)d);
    else if (d < 7200)
        snprintf(buf, n, "%llu min ago", (unsigned long long)(d / 60));
    else if (d < 172800)
        snprintf(buf, n, "%llu h ago", (unsigned long long)(d / 3600));
    else
        cli_time(ms, buf, n);
    return buf;
}

/* names[i]: the name peer i claims in the notes of its space ("" if
 * none). Only the first 16 notes of a space are asked: opening a note
 * verifies it. */
static void peer_names(struct cli_ctx *ctx, const notes_sync_peers *ps,
                       char (*names)[64])
{
    for (size_t i = 0; i < ps->npeers; i++) {
        uint8_t(*ids)[16] = NULL;
        size_t n = 0, open = 0;
        notes_doc *docs[16];
        int done = 1;
        for (size_t j = 0; j < i; j++) /* a space already looked at */
            done &= strcmp(ps->peers[j].space, ps->peers[i].space) != 0;
        if (!done || notes_sync_space_notes(ctx->home, ps->peers[i].space, &ids, &n))
            continue;
        for (size_t k = 0; k < n && open < 16; k++)
            if (notes_doc_open(ctx->r, ids[k], &docs[open]) == NOTES_OK)
                open++;
        for (size_t j = i; j < ps->npeers; j++) {
            const notes_sync_peer *e = &ps->peers[j];
            if (!e->key_known || strcmp(e->space, ps->peers[i].space) != 0)
                continue;
            for (size_t k = 0; k < open && !names[j][0]; k++) {
                const char *nm = notes_doc_author_name(docs[k], e->key);
                if (nm)
                    snprintf(names[j], sizeof(names[j]), "%s", nm);
            }
        }
        for (size_t k = 0; k < open; k++)
            notes_doc_free(docs[k]);
        notes_sync_free(ids);
    }
}

int cmd_peers(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_sync_peers ps;
    uint64_t now;
    char (*names)[64];
    char when[64];
    int rc;
    (void)argv;
    if (argc != 1)
        return cli_usage("peers");
    if ((rc = notes_sync_peers_read(ctx->home, &ps)))
        return cli_sync_fail(rc, "cannot read the peers state");
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    }
    if (!(names = calloc(ps.npeers + 1, sizeof(*names)))) {
        notes_sync_peers_clear(&ps);
        return EXIT_SYSTEM;
    }
    peer_names(ctx, &ps, names);
    if (ctx->json) {
        json_t *o = json_object(), *arr = json_array(), *d = json_object();
        json_object_set_new(d, "running", json_boolean(ps.running));
        if (ps.known) {
            cli_time(ps.started_ms, when, sizeof(when));
            json_object_set_new(d, "pid", json_integer(ps.pid));
            json_object_set_new(d, "started", json_string(when));
            cli_time(ps.updated_ms, when, sizeof(when));
            json_object_set_new(d, "updated", json_string(when));
            json_object_set_new(d, "port", json_integer(ps.port));
            json_object_set_new(d, "discovery", json_boolean(ps.discovery));
            json_object_set_new(d, "discovery_port", json_integer(ps.discovery_port));
        }
        if (ps.known && ps.nrelays) {
            json_t *ra = json_array();
            for (size_t i = 0; i < ps.nrelays; i++)
                json_array_append_new(ra, json_pack("{s:s, s:b}", "address",
                                                    ps.relays[i], "registered",
                                                    ps.running && ps.relay_up[i]));
            json_object_set_new(d, "relays", ra);
        }
        json_object_set_new(o, "daemon", d);
        if (ps.known) {
            const notes_sync_discovery_stats *s = &ps.disc;
            json_object_set_new(o, "datagrams",
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                          "received", (json_int_t)s->received,
                          "accepted", (json_int_t)s->accepted,
                          "own", (json_int_t)s->own,
                          "foreign", (json_int_t)s->foreign,
                          "malformed", (json_int_t)s->malformed,
                          "stale", (json_int_t)s->stale,
                          "replayed", (json_int_t)s->replayed,
                          "rate_limited", (json_int_t)s->rate_limited,
                          "full", (json_int_t)s->full,
                          "sent", (json_int_t)s->sent,
                          "send_errors", (json_int_t)s->send_errors));
        }
        for (size_t i = 0; i < ps.npeers; i++) {
            const notes_sync_peer *e = &ps.peers[i];
            json_t *j = json_object();
            json_object_set_new(j, "space", json_string(e->space));
            if (e->key_known) {
                char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
                notes_key_encode(e->key, key);
                notes_key_fingerprint(e->key, fpr);
                json_object_set_new(j, "key", json_string(key));
                json_object_set_new(j, "fingerprint", json_string(fpr));
            }
            if (names[i][0])
                json_object_set_new(j, "name", json_string(names[i]));
            if (e->key_known) { /* as the table shows it (cli_peer) */
                char shown[256];
                cli_peer(ctx, e->space, e->key, 1, shown, sizeof(shown));
                json_object_set_new(j, "shown", json_string(shown));
            }
            if (e->addr[0])
                json_object_set_new(j, "address", json_string(e->addr));
            json_object_set_new(j, "state", json_string(ps.running ? e->state
                                                                   : "offline"));
            if (!ps.running)
                json_object_set_new(j, "last_state", json_string(e->state));
            json_object_set_new(j, "found", json_string(e->found));
            if (e->last_seen_ms) {
                cli_time(e->last_seen_ms, when, sizeof(when));
                json_object_set_new(j, "last_seen", json_string(when));
            }
            if (e->last_sync_ms) {
                cli_time(e->last_sync_ms, when, sizeof(when));
                json_object_set_new(j, "last_sync", json_string(when));
            }
            json_object_set_new(j, "changes_sent", json_integer((json_int_t)e->changes_sent));
            json_object_set_new(j, "changes_received",
                                json_integer((json_int_t)e->changes_received));
            json_object_set_new(j, "sessions", json_integer(e->sessions));
            if (ps.running && e->path[0])
                json_object_set_new(j, "path", json_string(e->path));
            if (ps.running && e->relay[0])
                json_object_set_new(j, "relay", json_string(e->relay));
            json_array_append_new(arr, j);
        }
        json_object_set_new(o, "peers", arr);
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
    } else {
        if (ps.running && ps.known) {
            printf("daemon running (pid %ld, since %s), TCP port %d, ", ps.pid,
                   ago(now, ps.started_ms, when, sizeof(when)), ps.port);
            if (ps.discovery)
                printf("discovery on UDP port %d\n", ps.discovery_port);
            else
                printf("discovery off\n");
            for (size_t i = 0; i < ps.nrelays; i++)
                printf("relay %s: %s\n", cli_esc(ps.relays[i]),
                       ps.relay_up[i] ? "registered" : "not reached");
        } else if (ps.running) {
            printf("a daemon is running, but keeps no peers state here\n");
        } else if (ps.known) {
            printf("no daemon is running on this replica (start one: notes "
                   "serve); peers as last known (%s, pid %ld):\n",
                   ago(now, ps.updated_ms, when, sizeof(when)), ps.pid);
        } else {
            printf("no daemon is running on this replica, and none has "
                   "recorded peers here (start one: notes serve)\n");
        }
        if (ps.npeers == 0 && ps.known)
            printf("no peers known%s\n",
                   ps.discovery ? " (none announced itself on the LAN yet)" : "");
        /* Columns as wide as their widest cell, in display columns. */
        enum { NCOL = 10 };
        static const char *head[NCOL] = {"SPACE", "PEER", "ADDRESS", "STATE",
                                         "FOUND", "PATH", "LAST SEEN",
                                         "LAST SYNC", "SENT", "RECV"};
        char (*cell)[NCOL][256] = calloc(ps.npeers + 1, sizeof(*cell));
        size_t width[NCOL];
        if (!cell) {
            free(names);
            notes_sync_peers_clear(&ps);
            return EXIT_SYSTEM;
        }
        for (size_t c = 0; c < NCOL; c++)
            width[c] = strlen(head[c]);
        for (size_t i = 0; i < ps.npeers; i++) {
            const notes_sync_peer *e = &ps.peers[i];
            snprintf(cell[i][0], 256, "%s", cli_esc(e->space));
            if (e->key_known)
                cli_peer(ctx, e->space, e->key, 1, cell[i][1], 256);
            else
                snprintf(cell[i][1], 256, "(not reached yet)");
            snprintf(cell[i][2], 256, "%s", e->addr[0] ? cli_esc(e->addr) : "-");
            snprintf(cell[i][3], 256, "%s", ps.running ? e->state : "offline");
            snprintf(cell[i][4], 256, "%s", e->found);
            snprintf(cell[i][5], 256, "%s",
                     ps.running && e->path[0] ? e->path : "-");
            ago(now, e->last_seen_ms, cell[i][6], 256);
            ago(now, e->last_sync_ms, cell[i][7], 256);
            snprintf(cell[i][8], 256, "%llu", (unsigned long long)e->changes_sent);
            snprintf(cell[i][9], 256, "%llu",
                     (unsigned long long)e->changes_received);
            for (size_t c = 0; c < NCOL; c++)
                if (cli_width(cell[i][c]) > width[c])
                    width[c] = cli_width(cell[i][c]);
        }
        for (size_t i = 0; ps.npeers && i <= ps.npeers; i++) {
            for (size_t c = 0; c < NCOL; c++) {
                const char *v = i == 0 ? head[c] : cell[i - 1][c];
                if (c >= 8) /* the counts: right-aligned */
                    printf(" %*s", (int)(width[c] - cli_width(v) + strlen(v)), v);
                else
                    cli_pad(v, width[c] + (c < 7)); /* SENT brings its space */
            }
            putchar('\n');
        }
        free(cell);
    }
    free(names);
    notes_sync_peers_clear(&ps);
    return 0;
}
