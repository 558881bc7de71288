/*
 * cmd_sync.c: spaces and peer sync from the command line: `space`,
 * `invite`, `join`, `sync`, `serve`. A thin client of sync/.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "notes_sync.h"

#define DEFAULT_PORT 7654

const char *cli_passphrase(int confirm);

static int sync_exit(int rc)
{
    switch (rc) {
    case NOTES_SYNC_EHANDSHAKE:
    case NOTES_SYNC_EFRAME:
    case NOTES_SYNC_EPROTO:
    case NOTES_SYNC_EREFUSED:
        return EXIT_DATA;
    case NOTES_SYNC_ENET:
    case NOTES_SYNC_ETIMEOUT:
    case NOTES_SYNC_ECLOSED:
        return EXIT_SYSTEM;
    default:
        return cli_exit_code(rc);
    }
}

static int sync_fail(int rc, const char *what)
{
    const char *d = notes_sync_last_error();
    fprintf(stderr, "notes: %s: %s\n", what, d && *d ? d : notes_sync_strerror(rc));
    return sync_exit(rc);
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
    int rc = notes_space_notes(ctx->home, name, &ids, &n);
    if (rc)
        return sync_fail(rc, "cannot read the space");
    json_t *arr = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        notes_doc *d;
        cli_note_id(hex, ids[i]);
        const char *title = NULL;
        if (notes_doc_open(ctx->r, ids[i], &d) == NOTES_OK)
            title = notes_doc_field(d, "title");
        else
            d = NULL;
        if (arr)
            json_array_append_new(arr, json_pack("{s:s, s:s?}", "id", hex,
                                                 "title", title));
        else
            printf("%.8s  %s\n", hex, title ? title : "(not here yet)");
        notes_doc_close(d);
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
        notes_space sp;
        if ((rc = notes_space_create(ctx->home, argv[2], &sp)))
            return sync_fail(rc, "cannot create the space");
        notes_space_clear(&sp);
        printf("created space %s\ninvite others with: notes invite %s\n", argv[2],
               argv[2]);
        return 0;
    }
    if (strcmp(sub, "list") == 0 && argc == 2) {
        char **names;
        size_t n;
        if ((rc = notes_space_list(ctx->home, &names, &n)))
            return sync_fail(rc, "cannot list spaces");
        json_t *arr = ctx->json ? json_array() : NULL;
        for (size_t i = 0; i < n; i++) {
            uint8_t(*ids)[16] = NULL;
            size_t nn = 0;
            if (notes_space_notes(ctx->home, names[i], &ids, &nn) != NOTES_OK)
                nn = 0;
            notes_sync_free(ids);
            if (arr)
                json_array_append_new(arr, json_pack("{s:s, s:I}", "name", names[i],
                                                     "notes", (json_int_t)nn));
            else
                printf("%-20s %zu note%s\n", names[i], nn, nn == 1 ? "" : "s");
        }
        if (arr) {
            json_dumpf(arr, stdout, JSON_INDENT(2));
            putchar('\n');
            json_decref(arr);
        }
        notes_space_names_free(names, n);
        return 0;
    }
    if (strcmp(sub, "show") == 0 && argc == 3)
        return space_notes(ctx, argv[2]);
    if ((strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) && argc == 4) {
        notes_doc *d;
        notes_space sp;
        if ((rc = notes_space_load(ctx->home, argv[2], &sp)))
            return sync_fail(rc, "no such space");
        notes_space_clear(&sp);
        if ((rc = cli_open_note(ctx, argv[3], &d)))
            return rc;
        rc = sub[0] == 'a' ? notes_space_add_note(ctx->home, argv[2], notes_doc_id(d))
                           : notes_space_remove_note(ctx->home, argv[2],
                                                     notes_doc_id(d));
        char hex[33];
        cli_note_id(hex, notes_doc_id(d));
        notes_doc_close(d);
        if (rc)
            return sync_fail(rc, sub[0] == 'a' ? "cannot add the note"
                                               : "cannot remove the note");
        printf("%.8s %s space %s\n", hex, sub[0] == 'a' ? "is in" : "left",
               argv[2]);
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

int cmd_invite(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *space = NULL, *addr = NULL;
    char def[80];
    int rc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--address") == 0) {
            if (!(addr = cli_opt_value(&i, argc, argv)))
                return cli_usage("invite");
        } else if (!space) {
            space = argv[i];
        } else {
            return cli_usage("invite");
        }
    }
    if (!space)
        return cli_usage("invite");
    if (!addr) {
        local_addr(def, sizeof(def), DEFAULT_PORT);
        addr = def;
    }
    notes_space sp;
    char *code;
    if ((rc = notes_space_load(ctx->home, space, &sp)))
        return sync_fail(rc, "no such space");
    rc = notes_invite_encode(&sp, notes_replica_public_key(ctx->r), addr, &code);
    notes_space_clear(&sp);
    if (rc)
        return sync_fail(rc, "cannot make the invite");
    printf("%s\n", code);
    fprintf(stderr, "(this code is the space's secret: share it only with "
                    "members; they run: notes join CODE, while you run: "
                    "notes serve --listen %s)\n", addr);
    sodium_memzero(code, strlen(code));
    notes_sync_free(code);
    return 0;
}

static void print_report(struct cli_ctx *ctx, const char *what,
                         const notes_sync_report *r)
{
    char fpr[NOTES_FPR_STRLEN];
    notes_key_fingerprint(r->peer, fpr);
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "result", what, "space", r->space, "peer", fpr,
                              "changes_sent", (json_int_t)r->changes_sent,
                              "changes_received", (json_int_t)r->changes_received,
                              "notes_created", (json_int_t)r->notes_created,
                              "bytes_sent", (json_int_t)r->bytes_sent,
                              "bytes_received", (json_int_t)r->bytes_received,
                              "notes_received", (json_int_t)r->notes_received);
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    } else {
        printf("%s with %s in space %s: sent %llu change%s, received %llu "
               "(%llu new note%s); %llu bytes out, %llu in\n",
               what, fpr, r->space, (unsigned long long)r->changes_sent,
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
 * A peer that does not hold the space's secret answers nothing and closes
 * (by design: it must learn nothing). Seen from here that is a connection
 * closed before the peer proved who it is.
 */
static int once_fail(int rc, const notes_sync_report *rep, const char *addr)
{
    static const uint8_t zero[32];
    if (rc == NOTES_SYNC_ECLOSED && memcmp(rep->peer, zero, 32) == 0) {
        fprintf(stderr, "notes: handshake refused by %s: the peer closed the "
                        "connection before proving who it is; it does not hold "
                        "this space's secret (or is not a notes peer); nothing "
                        "was exchanged\n", addr);
        return EXIT_DATA;
    }
    return sync_fail(rc, "sync failed");
}

int cmd_join(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_invite inv;
    const char *pass;
    int rc, ret;
    if (argc != 2)
        return cli_usage("join");
    if ((rc = notes_invite_decode(argv[1], &inv)))
        return sync_fail(rc, "not a valid invite code");
    if ((rc = notes_space_save(ctx->home, &inv.space))) {
        notes_space_clear(&inv.space);
        return sync_fail(rc, "cannot join");
    }
    printf("joined space %s\n", inv.space.name);
    if ((ret = key_pass(ctx, &pass))) {
        notes_space_clear(&inv.space);
        return ret;
    }
    notes_sync_report rep;
    memset(&rep, 0, sizeof(rep));
    rc = notes_sync_once(ctx->home, pass, inv.space.name, inv.addr, &rep);
    if (rc) {
        ret = once_fail(rc, &rep, inv.addr);
        fprintf(stderr, "notes: the space is kept; sync later with: notes sync "
                        "%s --space %s\n", inv.addr, inv.space.name);
        notes_space_clear(&inv.space);
        return ret;
    }
    print_report(ctx, "synced", &rep);
    notes_space_clear(&inv.space);
    return 0;
}

/* ---- sync, serve ---- */

int cmd_sync(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *addr = NULL, *space = NULL, *pass;
    int rc, ret;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--space") == 0) {
            if (!(space = cli_opt_value(&i, argc, argv)))
                return cli_usage("sync");
        } else if (!addr) {
            addr = argv[i];
        } else {
            return cli_usage("sync");
        }
    }
    if (!addr)
        return cli_usage("sync");
    char **names = NULL;
    size_t n = 0;
    if (!space) {
        if ((rc = notes_space_list(ctx->home, &names, &n)))
            return sync_fail(rc, "cannot list spaces");
        if (n != 1) {
            fprintf(stderr, "notes: %s; say which with --space NAME\n",
                    n ? "this replica has several spaces"
                      : "this replica has no space (create one: notes space "
                        "create NAME, or join one: notes join CODE)");
            notes_space_names_free(names, n);
            return EXIT_USER;
        }
        space = names[0];
    }
    if ((ret = key_pass(ctx, &pass))) {
        notes_space_names_free(names, n);
        return ret;
    }
    notes_sync_report rep;
    memset(&rep, 0, sizeof(rep));
    rc = notes_sync_once(ctx->home, pass, space, addr, &rep);
    if (rc)
        ret = once_fail(rc, &rep, addr);
    else
        print_report(ctx, "synced", &rep);
    notes_space_names_free(names, n);
    return ret;
}

static volatile int serve_stop;

static void on_signal(int sig)
{
    (void)sig;
    serve_stop = 1;
}

static void on_listen(void *ud, int port)
{
    (void)ud;
    printf("listening on port %d (stop with Ctrl-C)\n", port);
    fflush(stdout);
}

static void on_session(void *ud, int rc, const notes_sync_report *r)
{
    struct cli_ctx *ctx = ud;
    if (rc)
        fprintf(stderr, "notes: a session ended: %s\n",
                *notes_sync_last_error() ? notes_sync_last_error()
                                         : notes_sync_strerror(rc));
    else
        print_report(ctx, "synced", r);
}

int cmd_serve(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *listen = NULL, *pass;
    const char *peers[16];
    size_t npeers = 0;
    unsigned sessions = 0;
    char def[64];
    int ret;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0) {
            if (!(listen = cli_opt_value(&i, argc, argv)))
                return cli_usage("serve");
        } else if (strcmp(argv[i], "--peer") == 0) {
            /* Dial HOST:PORT and keep a live session with it (repeatable;
             * redialed with backoff when it drops). */
            const char *v = cli_opt_value(&i, argc, argv);
            if (!v || npeers == sizeof(peers) / sizeof(peers[0]))
                return cli_usage("serve");
            peers[npeers++] = v;
        } else if (strcmp(argv[i], "--sessions") == 0) {
            const char *v = cli_opt_value(&i, argc, argv);
            if (!v || atoi(v) <= 0)
                return cli_usage("serve");
            sessions = (unsigned)atoi(v);
        } else {
            return cli_usage("serve");
        }
    }
    if (!listen) {
        snprintf(def, sizeof(def), "0.0.0.0:%d", DEFAULT_PORT);
        listen = def;
    }
    if ((ret = key_pass(ctx, &pass)))
        return ret;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    notes_sync_serve_opts o;
    memset(&o, 0, sizeof(o));
    o.listen = listen;
    o.max_sessions = sessions;
    o.on_listen = on_listen;
    o.on_session = on_session;
    o.ud = ctx;
    o.stop = &serve_stop;
    /* Live: peers that ask stay connected and get each change at once. */
    o.live = 1;
    o.peers = peers;
    o.npeers = npeers;
    int rc = notes_sync_serve(ctx->home, pass, &o);
    if (rc)
        return sync_fail(rc, "cannot serve");
    return 0;
}
