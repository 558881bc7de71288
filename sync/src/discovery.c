/*
 * discovery.c: finding the members of a space on the LAN without any
 * configuration: the UDP socket and the announce timer on the hub's loop.
 *
 * A daemon announces itself per space by UDP broadcast; only members can
 * open an announcement (it is sealed under a key derived from the space's
 * secret), so a non-member sees random bytes of a fixed size and learns
 * neither the space nor the key. An announcement only suggests an address:
 * the handshake (frame.c) still authenticates everything. Layout, limits
 * and what replay can do: docs/protocol.md, "Discovery".
 *
 * The datagram format and the receiver's filter are plain functions in
 * discovery_datagram.c (the tests call them directly); the UDP socket and
 * the announce timer run on the hub's loop (libuv), like the TCP side in
 * conn.c. The daemon's state file of known peers is peers_file.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "sync_internal.h"
#include "transport_internal.h" /* notes_sync__resolve */

#define DEFAULT_INTERVAL_MS 5000u
#define SOON_MIN_MS 1000u      /* early announcements at most this often */
#define MAX_DESTS 16           /* broadcast addresses per announcement */
#define RECV_BUF 2048          /* larger datagrams arrive truncated */

/* ---- UDP on the serve loop ---- */

struct sync_disc {
    uv_udp_t udp;
    uv_timer_t timer;
    int handles;
    struct sync_disc_cfg cfg;
    uint8_t (*keys)[32];           /* discovery key of each space */
    struct sockaddr_in to[MAX_DESTS];
    size_t nto;
    int udp_port;
    uint64_t last_sent;            /* uv_now of the last announcement */
    struct sync_disc_filter filter;
    char buf[RECV_BUF];
};

static uint64_t unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void disc_closed(uv_handle_t *hd)
{
    struct sync_disc *d = hd->data;
    void (*closed)(void *) = d->cfg.closed;
    void *ud = d->cfg.ud;
    if (--d->handles > 0)
        return;
    if (d->keys) {
        notes__wipe(d->keys, d->cfg.nspaces * sizeof(*d->keys));
        free(d->keys);
    }
    free(d);
    if (closed)
        closed(ud);
}

/* The next interval: 75..125 % of the configured one, so that daemons
 * started together do not stay in step. */
static uint64_t next_interval(const struct sync_disc *d)
{
    uint64_t base = d->cfg.interval_ms ? d->cfg.interval_ms : DEFAULT_INTERVAL_MS;
    return base * 3 / 4 + notes__random_below((uint32_t)(base / 2 + 1));
}

/* Destinations: the configured ones, else the broadcast address of each
 * IPv4 interface that has one (looked up each time: laptops move). */
static size_t destinations(struct sync_disc *d, struct sockaddr_in *out)
{
    uv_interface_address_t *ifs;
    int n = 0;
    size_t k = 0;
    if (d->nto) {
        memcpy(out, d->to, d->nto * sizeof(*out));
        return d->nto;
    }
    if (uv_interface_addresses(&ifs, &n) == 0) {
        for (int i = 0; i < n && k < MAX_DESTS; i++) {
            uint32_t a, m, b;
            int dup = 0;
            if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
                continue;
            a = ntohl(ifs[i].address.address4.sin_addr.s_addr);
            m = ntohl(ifs[i].netmask.netmask4.sin_addr.s_addr);
            if (m == 0xffffffffu)
                continue; /* a point-to-point link: no broadcast */
            b = htonl(a | ~m);
            for (size_t j = 0; j < k; j++)
                dup |= out[j].sin_addr.s_addr == b;
            if (dup)
                continue;
            memset(&out[k], 0, sizeof(out[k]));
            out[k].sin_family = AF_INET;
            out[k].sin_port = htons((uint16_t)d->udp_port);
            out[k].sin_addr.s_addr = b;
            k++;
        }
        uv_free_interface_addresses(ifs, n);
    }
    if (k == 0) {
        memset(&out[0], 0, sizeof(out[0]));
        out[0].sin_family = AF_INET;
        out[0].sin_port = htons((uint16_t)d->udp_port);
        out[0].sin_addr.s_addr = htonl(0xffffffffu);
        k = 1;
    }
    return k;
}

static void announce(struct sync_disc *d)
{
    struct sockaddr_in dst[MAX_DESTS];
    size_t nd = destinations(d, dst);
    uint64_t ms = unix_now_ms();
    uint8_t pkt[SYNC_DISC_LEN];
    for (size_t s = 0; s < d->cfg.nspaces; s++) {
        sync_disc_seal(d->keys[s], d->cfg.pk, (uint16_t)d->cfg.tcp_port, ms,
                       pkt);
        for (size_t i = 0; i < nd; i++) {
            uv_buf_t b = uv_buf_init((char *)pkt, sizeof(pkt));
            /* try_send: a datagram either leaves now or is dropped (the
             * next announcement follows soon); no request to keep. */
            if (uv_udp_try_send(&d->udp, &b, 1,
                                (const struct sockaddr *)&dst[i]) >= 0)
                d->cfg.stats->sent++;
            else
                d->cfg.stats->send_errors++;
        }
    }
    d->last_sent = uv_now(d->udp.loop);
}

static void on_tick(uv_timer_t *t)
{
    struct sync_disc *d = t->data;
    announce(d);
    uv_timer_start(&d->timer, on_tick, next_interval(d), 0);
}

void sync_disc_announce_soon(struct sync_disc *d)
{
    uint64_t now, since;
    if (!d)
        return;
    now = uv_now(d->udp.loop);
    since = now - d->last_sent;
    if (since >= SOON_MIN_MS) {
        announce(d);
        uv_timer_start(&d->timer, on_tick, next_interval(d), 0);
    } else if (uv_timer_get_due_in(&d->timer) > SOON_MIN_MS - since) {
        uv_timer_start(&d->timer, on_tick, SOON_MIN_MS - since, 0);
    }
}

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    struct sync_disc *d = hd->data;
    (void)want;
    buf->base = d->buf;
    buf->len = sizeof(d->buf);
}

static void on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags)
{
    struct sync_disc *d = u->data;
    notes_sync_discovery_stats *st = d->cfg.stats;
    struct sockaddr_in peer;
    uint8_t pk[32];
    uint16_t port;
    uint64_t ts, now;
    size_t which = 0;
    int rc;
    if (n < 0 || (n == 0 && !from))
        return; /* an error, or nothing more to read now */
    st->received++;
    if (!from || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL) ||
        n != SYNC_DISC_LEN) {
        st->malformed++;
        return;
    }
    memcpy(&peer, from, sizeof(peer));
    /* The rate check comes before any cryptography: a flood costs a table
     * lookup per datagram. */
    if (!sync_disc_admit(&d->filter, peer.sin_addr.s_addr, uv_now(u->loop))) {
        st->rate_limited++;
        return;
    }
    rc = sync_disc_open((const uint8_t(*)[32])d->keys, d->cfg.nspaces,
                        (const uint8_t *)buf->base, (size_t)n, &which, pk,
                        &port, &ts);
    if (rc == SYNC_DISC_MALFORMED) {
        st->malformed++;
        return;
    }
    if (rc) {
        st->foreign++;
        return;
    }
    if (memcmp(pk, d->cfg.pk, 32) == 0) {
        st->own++;
        return;
    }
    now = unix_now_ms();
    if ((ts > now ? ts - now : now - ts) > SYNC_DISC_WINDOW_MS) {
        st->stale++;
        return;
    }
    if (sync_disc_replayed(&d->filter, (const uint8_t *)buf->base + 1,
                           uv_now(u->loop))) {
        st->replayed++;
        return;
    }
    st->accepted++;
    /* The address to dial: where the datagram came from, at the announced
     * TCP port. */
    peer.sin_port = htons(port);
    d->cfg.found(d->cfg.ud, which, pk, (const struct sockaddr *)&peer);
}

static int parse_dest(const char *s, int def_port, struct sockaddr_in *out)
{
    char host[NOTES_ADDR_MAX + 1];
    const char *colon = s ? strrchr(s, ':') : NULL;
    size_t hl = colon ? (size_t)(colon - s) : (s ? strlen(s) : 0);
    long port = def_port;
    char *end;
    if (!s || hl == 0 || hl > NOTES_ADDR_MAX)
        goto bad;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (colon) {
        port = strtol(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port <= 0 || port > 65535)
            goto bad;
    }
    if (uv_ip4_addr(host, (int)port, out) == 0)
        return NOTES_OK;
    struct sockaddr_storage ss;
    if (notes_sync__resolve(host, (int)port, AF_INET, &ss) == NOTES_OK) {
        memcpy(out, &ss, sizeof(*out));
        return NOTES_OK;
    }
bad:
    notes_sync__detail("announce destination '%s' must be an IPv4 address "
                       "or host name, [:PORT]",
                       s ? s : "");
    return NOTES_EINVAL;
}

int sync_disc_start(const struct sync_disc_cfg *cfg, struct sync_disc **out)
{
    struct sync_disc *d;
    struct sockaddr_in any;
    int e, rc;
    *out = NULL;
    if (!cfg || !cfg->loop || !cfg->pk || !cfg->found || !cfg->stats ||
        !cfg->spaces || cfg->nspaces == 0 || cfg->tcp_port <= 0 ||
        cfg->tcp_port > 65535 || cfg->nto > MAX_DESTS || cfg->udp_port < 0 ||
        cfg->udp_port > 65535) {
        notes_sync__detail("discovery: bad configuration");
        return NOTES_EINVAL;
    }
    if (!(d = calloc(1, sizeof(*d))))
        return NOTES_ENOMEM;
    d->cfg = *cfg;
    d->udp_port = cfg->udp_port ? cfg->udp_port : NOTES_SYNC_DISCOVERY_PORT;
    for (size_t i = 0; i < cfg->nto; i++)
        if ((rc = parse_dest(cfg->to[i], d->udp_port, &d->to[i]))) {
            free(d);
            return rc;
        }
    d->nto = cfg->nto;
    if (!(d->keys = calloc(cfg->nspaces, sizeof(*d->keys)))) {
        free(d);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < cfg->nspaces; i++)
        sync_disc_key(cfg->spaces[i].secret, d->keys[i]);
    sync_disc_filter_init(&d->filter);
    uv_udp_init(cfg->loop, &d->udp);
    d->udp.data = d;
    d->handles = 1;
    uv_ip4_addr("0.0.0.0", d->udp_port, &any);
    /* 0.0.0.0: Linux delivers broadcasts only to sockets bound to the
     * wildcard; SO_REUSEADDR: every daemon of this host hears them all. */
    if ((e = uv_udp_bind(&d->udp, (const struct sockaddr *)&any,
                         UV_UDP_REUSEADDR)) < 0 ||
        (e = uv_udp_set_broadcast(&d->udp, 1)) < 0 ||
        (e = uv_udp_recv_start(&d->udp, on_alloc, on_recv)) < 0) {
        notes_sync__detail("discovery: UDP port %d: %s", d->udp_port,
                           uv_strerror(e));
        uv_close((uv_handle_t *)&d->udp, disc_closed);
        return NOTES_SYNC_ENET;
    }
    uv_timer_init(cfg->loop, &d->timer);
    d->timer.data = d;
    d->handles = 2;
    announce(d);
    uv_timer_start(&d->timer, on_tick, next_interval(d), 0);
    if (cfg->log)
        cfg->log(cfg->ud, "discovery: announcing %zu space%s every ~%u ms, "
                 "listening on UDP port %d", cfg->nspaces,
                 cfg->nspaces == 1 ? "" : "s",
                 cfg->interval_ms ? cfg->interval_ms : DEFAULT_INTERVAL_MS,
                 d->udp_port);
    *out = d;
    return NOTES_OK;
}

void sync_disc_stop(struct sync_disc *d)
{
    if (!d)
        return;
    uv_close((uv_handle_t *)&d->timer, disc_closed);
    uv_close((uv_handle_t *)&d->udp, disc_closed);
}
