/*
 * cmd_relay.c: `notes relay`, the blind relay (docs/protocol.md, "Relay")
 * as a foreground process: no replica, no file, no configuration. It says
 * where it listens on stdout (for scripts and tests) and what happens on
 * stderr, and stops on SIGINT/SIGTERM once its connections are closed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli.h"
#include "notes_sync.h"

struct relay_state {
    const char *listen;
    notes_sync_relay *relay;
    uv_signal_t sigint, sigterm;
    int signals;
};

static void on_listen(void *ud, int port)
{
    const struct relay_state *st = ud;
    const char *colon = strrchr(st->listen, ':');
    int hl = colon ? (int)(colon - st->listen) : 0;
    printf("relay listening on %.*s:%d\n", hl, st->listen, port);
    fflush(stdout);
}

static void on_log(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "relay: %s\n", cli_esc(line));
}

static void close_signals(struct relay_state *st)
{
    if (!st->signals)
        return;
    st->signals = 0;
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
}

/* Every connection and the listener closed: the signals go, the loop ends. */
static void on_stopped(void *arg)
{
    close_signals(arg);
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct relay_state *st = h->data;
    fprintf(stderr, "relay: stopping (signal %d)\n", sig);
    notes_sync_relay_stop(st->relay, on_stopped, st);
}

/* A positive count, at most max. */
static int opt_count(int *i, int argc, char **argv, unsigned long max,
                     unsigned long *out)
{
    const char *v = cli_opt_value(i, argc, argv);
    char *end;
    if (!v || !*v || *v == '-')
        return -1;
    *out = strtoul(v, &end, 10);
    return *end || *out == 0 || *out > max ? -1 : 0;
}

int cmd_relay(int argc, char **argv, struct cli_ctx *ctx)
{
    struct relay_state st = {0};
    notes_sync_relay_opts o = {0};
    notes_sync_relay_stats s;
    uv_loop_t loop;
    unsigned long v;
    int rc;
    /* The counting flags: where each goes, and its largest value. */
    const struct {
        const char *flag;
        unsigned *u;
        size_t *z;
        unsigned long max;
    } counts[] = {
        {"--max-conns", &o.max_conns, NULL, 1ul << 20},
        {"--max-per-addr", &o.max_per_addr, NULL, 1ul << 20},
        {"--max-per-tag", &o.max_per_tag, NULL, 1ul << 20},
        {"--rate", NULL, &o.rate, 1ul << 40},
    };
    char dflt[32];
    (void)ctx;
    snprintf(dflt, sizeof(dflt), "0.0.0.0:%d", NOTES_SYNC_RELAY_PORT);
    st.listen = dflt;
    for (int i = 1; i < argc; i++) {
        size_t k;
        if (strcmp(argv[i], "--listen") == 0) {
            if (!(st.listen = cli_opt_value(&i, argc, argv)))
                return cli_usage("relay");
            continue;
        }
        for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++)
            if (strcmp(argv[i], counts[k].flag) == 0)
                break;
        if (k == sizeof(counts) / sizeof(counts[0]) ||
            opt_count(&i, argc, argv, counts[k].max, &v))
            return cli_usage("relay");
        if (counts[k].u)
            *counts[k].u = (unsigned)v;
        else
            *counts[k].z = (size_t)v;
    }
    cli_network_command();
    o.listen = st.listen;
    o.on_listen = on_listen;
    o.on_log = on_log;
    o.ud = &st;
    if (uv_loop_init(&loop) < 0) {
        fprintf(stderr, "notes: cannot relay: no event loop\n");
        return EXIT_SYSTEM;
    }
    rc = notes_sync_relay_start(&loop, &o, &st.relay);
    if (rc) {
        char why[512];
        snprintf(why, sizeof(why), "%s", notes_sync_last_detail());
        (void)uv_run(&loop, UV_RUN_DEFAULT); /* what it opened closes */
        (void)uv_loop_close(&loop);
        fprintf(stderr, "notes: cannot relay: %s\n",
                why[0] ? cli_esc(why) : notes_sync_strerror(rc));
        return rc == NOTES_EINVAL ? EXIT_USER : EXIT_SYSTEM;
    }
    /* Caught until the relay has stopped: a second Ctrl-C changes nothing. */
    for (int k = 0; k < 2; k++) {
        uv_signal_t *h = k ? &st.sigterm : &st.sigint;
        uv_signal_init(&loop, h);
        h->data = &st;
        uv_signal_start(h, on_signal, k ? SIGTERM : SIGINT);
    }
    st.signals = 1;
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    notes_sync_relay_stats_get(st.relay, &s);
    fprintf(stderr,
            "relay: stopped: %llu connections accepted, %llu refused, "
            "%llu pairings, %llu bytes forwarded\n",
            (unsigned long long)s.accepted, (unsigned long long)s.refused,
            (unsigned long long)s.paired, (unsigned long long)s.forwarded);
    notes_sync_relay_free(st.relay);
    (void)uv_loop_close(&loop);
    return 0;
}
