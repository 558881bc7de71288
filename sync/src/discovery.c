/*
 * discovery.c: finding the members of a space on the LAN without any
 * configuration, and the daemon's state file of known peers.
 *
 * A daemon announces itself per space by UDP broadcast; only members can
 * open an announcement (it is sealed under a key derived from the space's
 * secret), so a non-member sees random bytes of a fixed size and learns
 * neither the space nor the key. An announcement only suggests an address:
 * the handshake (frame.c) still authenticates everything. Layout, limits
 * and what replay can do: docs/protocol.md, "Discovery".
 *
 * The datagram format and the receiver's filter are plain functions (the
 * tests call them directly); the UDP socket and the announce timer run on
 * the serve loop (libuv), like the TCP side in transport_uv.c.
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

#include <sodium.h>
#include <uv.h>

#include "sync_internal.h"

#define LBL_DISC "notes-sync/1 discovery key"
#define DEFAULT_INTERVAL_MS 5000u
#define SOON_MIN_MS 1000u      /* early announcements at most this often */
#define MAX_DESTS 16           /* broadcast addresses per announcement */
#define RECV_BUF 2048          /* larger datagrams arrive truncated */

/* ---- the datagram ---- */

void sync_disc_key(const uint8_t secret[32], uint8_t kd[32])
{
    crypto_generichash(kd, 32, (const uint8_t *)LBL_DISC, strlen(LBL_DISC),
                       secret, 32);
}

void sync_disc_seal(const uint8_t kd[32], const uint8_t pk[32], uint16_t port,
                    uint64_t unix_ms, uint8_t out[SYNC_DISC_LEN])
{
    uint8_t plain[SYNC_DISC_PLAIN];
    memcpy(plain, pk, 32);
    plain[32] = (uint8_t)port;
    plain[33] = (uint8_t)(port >> 8);
    for (int i = 0; i < 8; i++)
        plain[34 + i] = (uint8_t)(unix_ms >> (8 * i));
    out[0] = SYNC_DISC_VERSION;
    /* A random 24-byte nonce: no counter to keep across restarts, and two
     * announcements of one daemon share no bytes but the version. */
    randombytes_buf(out + 1, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + 25, NULL, plain,
                                               sizeof(plain), out, 1, NULL,
                                               out + 1, kd);
    sodium_memzero(plain, sizeof(plain));
}

int sync_disc_open(const uint8_t (*keys)[32], size_t nk, const uint8_t *p,
                   size_t n, size_t *which, uint8_t pk[32], uint16_t *port,
                   uint64_t *unix_ms)
{
    uint8_t plain[SYNC_DISC_PLAIN], got[SYNC_DISC_PLAIN];
    int found = 0;
    if (!p || n != SYNC_DISC_LEN || p[0] != SYNC_DISC_VERSION)
        return SYNC_DISC_MALFORMED;
    /* Every key is tried, as for M1: the time taken does not depend on
     * which space (if any) matched. */
    for (size_t i = 0; i < nk; i++) {
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                plain, NULL, NULL, p + 25, SYNC_DISC_LEN - 25, p, 1, p + 1,
                keys[i]) == 0 &&
            !found) {
            found = 1;
            *which = i;
            memcpy(got, plain, sizeof(got));
        }
    }
    sodium_memzero(plain, sizeof(plain));
    if (!found)
        return SYNC_DISC_FOREIGN;
    memcpy(pk, got, 32);
    *port = (uint16_t)(got[32] | got[33] << 8);
    *unix_ms = 0;
    for (int i = 0; i < 8; i++)
        *unix_ms |= (uint64_t)got[34 + i] << (8 * i);
    sodium_memzero(got, sizeof(got));
    return *port ? NOTES_OK : SYNC_DISC_MALFORMED;
}

/* ---- the receiver's filter ---- */

void sync_disc_filter_init(struct sync_disc_filter *f)
{
    memset(f, 0, sizeof(*f));
}

static void refill(double *tokens, uint64_t *t, uint64_t now, double rate,
                   double burst)
{
    if (*t == 0 || now < *t) {
        *tokens = burst;
    } else {
        *tokens += (double)(now - *t) * rate / 1000.0;
        if (*tokens > burst)
            *tokens = burst;
    }
    *t = now ? now : 1;
}

int sync_disc_admit(struct sync_disc_filter *f, uint32_t ip, uint64_t now_ms)
{
    size_t slot = 0;
    int hit = 0;
    if (now_ms == 0)
        now_ms = 1; /* 0 marks a free slot */
    for (size_t i = 0; i < SYNC_DISC_SOURCES; i++) {
        if (f->src[i].used_ms && f->src[i].ip == ip) {
            slot = i;
            hit = 1;
            break;
        }
        /* Else the least recently used (or a free) slot is taken over:
         * the table stays bounded whatever the number of sources. */
        if (f->src[i].used_ms < f->src[slot].used_ms)
            slot = i;
    }
    if (!hit) {
        f->src[slot].ip = ip;
        f->src[slot].t_ms = 0;
    }
    refill(&f->gtokens, &f->gt_ms, now_ms, SYNC_DISC_GRATE, SYNC_DISC_GRATE);
    refill(&f->src[slot].tokens, &f->src[slot].t_ms, now_ms, SYNC_DISC_RATE,
           SYNC_DISC_BURST);
    f->src[slot].used_ms = now_ms;
    if (f->gtokens < 1.0 || f->src[slot].tokens < 1.0)
        return 0;
    f->gtokens -= 1.0;
    f->src[slot].tokens -= 1.0;
    return 1;
}

int sync_disc_replayed(struct sync_disc_filter *f, const uint8_t nonce[24],
                       uint64_t now_ms)
{
    for (size_t i = 0; i < SYNC_DISC_NONCES; i++)
        if (f->seen[i].until_ms > now_ms &&
            memcmp(f->seen[i].nonce, nonce, 24) == 0)
            return 1;
    /* Remembered for twice the clock window: older copies fail the
     * timestamp check anyway. The ring overwrites its oldest entry when
     * full (only accepted announcements enter it: members' own). */
    memcpy(f->seen[f->seen_next].nonce, nonce, 24);
    f->seen[f->seen_next].until_ms = now_ms + 2 * (uint64_t)SYNC_DISC_WINDOW_MS;
    f->seen_next = (f->seen_next + 1) % SYNC_DISC_NONCES;
    return 0;
}

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
    if (--d->handles > 0)
        return;
    if (d->keys) {
        sodium_memzero(d->keys, d->cfg.nspaces * sizeof(*d->keys));
        free(d->keys);
    }
    free(d);
}

/* The next interval: 75..125 % of the configured one, so that daemons
 * started together do not stay in step. */
static uint64_t next_interval(const struct sync_disc *d)
{
    uint64_t base = d->cfg.interval_ms ? d->cfg.interval_ms : DEFAULT_INTERVAL_MS;
    return base * 3 / 4 + randombytes_uniform((uint32_t)(base / 2 + 1));
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
bad:
    notes_sync__detail("announce destination '%s' must be IPv4[:PORT]",
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

/* ---- the peers state file ---- */
/*
 * $NOTES_HOME/serve.lock: the running daemon holds a write lock on it (an
 * open-file-description lock where the system has them, so that a reader
 * in the same process neither sees its own lock as absent nor drops it by
 * closing its descriptor). A reader tests the lock without taking it: a
 * crashed daemon's lock is gone with it, so "running" is never stale.
 *
 * $NOTES_HOME/peers: text, one record per line, fields separated by one
 * space (none contains a space):
 *   notes-peers 1
 *   daemon PID STARTED_MS UPDATED_MS TCP_PORT DISCOVERY UDP_PORT
 *   discovery RECEIVED ACCEPTED OWN FOREIGN MALFORMED STALE REPLAYED
 *             RATE_LIMITED FULL SENT SEND_ERRORS
 *   peer SPACE KEY ADDR STATE FOUND LAST_SEEN_MS LAST_SYNC_MS SENT
 *        RECEIVED SESSIONS
 * KEY is 64 hex digits or "-", ADDR "HOST:PORT" or "-"; times are Unix ms
 * (0: never). Written to peers.tmp (mode 0600; the daemon keeps the next
 * one open ahead) and renamed over peers.
 */
#define PEERS_FILE "peers"
#define LOCK_FILE "serve.lock"
#define PEERS_MAX_BYTES (1u << 20)
#define PEERS_MAX 4096

struct sync_peers_lock {
    int fd;           /* serve.lock, locked */
    int tmpfd;        /* the next peers.tmp, already open, or -1 */
    char path[4200], tmp[4200];
};

/* The next temporary file, opened ahead: a write then needs no new
 * descriptor, so the daemon's count of open files stays flat (a server
 * at its connection limit does not grow by one at each status write). */
static void open_tmp(struct sync_peers_lock *l)
{
    l->tmpfd = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

static int path_in(char *out, size_t n, const char *home, const char *name)
{
    if ((size_t)snprintf(out, n, "%s/%s", home, name) >= n) {
        notes_sync__detail("path too long: '%s'", home);
        return NOTES_EINVAL;
    }
    return NOTES_OK;
}

int sync_peers_lock(const char *home, struct sync_peers_lock **out)
{
    char path[4200];
    struct sync_peers_lock *l;
    int fd, rc, e;
    *out = NULL;
    if ((rc = path_in(path, sizeof(path), home, LOCK_FILE)))
        return rc;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        notes_sync__detail("cannot open '%s': %s", path, strerror(errno));
        return NOTES_EIO;
    }
#ifdef F_OFD_SETLK
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    e = fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
#else
    e = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
#endif
    if (e) {
        close(fd);
        if (e == EAGAIN || e == EACCES || e == EWOULDBLOCK) {
            notes_sync__detail("another daemon serves '%s' (it holds '%s')",
                               home, path);
            return NOTES_ELOCKED;
        }
        notes_sync__detail("cannot lock '%s': %s", path, strerror(e));
        return NOTES_EIO;
    }
    if (!(l = malloc(sizeof(*l)))) {
        close(fd);
        return NOTES_ENOMEM;
    }
    l->fd = fd;
    if ((rc = path_in(l->path, sizeof(l->path), home, PEERS_FILE)) ||
        (rc = path_in(l->tmp, sizeof(l->tmp), home, PEERS_FILE ".tmp"))) {
        close(fd);
        free(l);
        return rc;
    }
    open_tmp(l);
    *out = l;
    return NOTES_OK;
}

void sync_peers_unlock(struct sync_peers_lock *l)
{
    if (!l)
        return;
    if (l->tmpfd >= 0) {
        close(l->tmpfd);
        unlink(l->tmp);
    }
    close(l->fd); /* releases the lock */
    free(l);
}

/* 1 if a daemon holds home's lock now. */
static int daemon_running(const char *home)
{
    char path[4200];
    int fd, running = 0;
    if (path_in(path, sizeof(path), home, LOCK_FILE) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
#ifdef F_OFD_GETLK
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0)
        running = fl.l_type != F_UNLCK;
#else
    /* flock has no test: take a shared lock for an instant. */
    if (flock(fd, LOCK_SH | LOCK_NB) != 0)
        running = errno == EWOULDBLOCK;
    else
        flock(fd, LOCK_UN);
#endif
    close(fd);
    return running;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int sync_peers_write(struct sync_peers_lock *l, const notes_sync_peers *p)
{
    const notes_sync_discovery_stats *s = &p->disc;
    char *buf = NULL;
    size_t len = 0, off = 0;
    FILE *f;
    int fd, bad, e = 0;
    /* Formatted in memory (open_memstream holds no descriptor). */
    if (!(f = open_memstream(&buf, &len)))
        return NOTES_ENOMEM;
    fprintf(f, "notes-peers 1\ndaemon %ld %llu %llu %d %d %d\n", p->pid,
            (unsigned long long)p->started_ms,
            (unsigned long long)p->updated_ms, p->port, p->discovery ? 1 : 0,
            p->discovery_port);
    fprintf(f, "discovery %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
               "%llu\n",
            (unsigned long long)s->received, (unsigned long long)s->accepted,
            (unsigned long long)s->own, (unsigned long long)s->foreign,
            (unsigned long long)s->malformed, (unsigned long long)s->stale,
            (unsigned long long)s->replayed,
            (unsigned long long)s->rate_limited, (unsigned long long)s->full,
            (unsigned long long)s->sent, (unsigned long long)s->send_errors);
    for (size_t i = 0; i < p->npeers && i < PEERS_MAX; i++) {
        const notes_sync_peer *q = &p->peers[i];
        char key[65];
        if (q->key_known)
            hex_of(q->key, 32, key);
        else
            snprintf(key, sizeof(key), "-");
        fprintf(f, "peer %s %s %s %s %s %llu %llu %llu %llu %u\n", q->space,
                key, q->addr[0] ? q->addr : "-", q->state, q->found,
                (unsigned long long)q->last_seen_ms,
                (unsigned long long)q->last_sync_ms,
                (unsigned long long)q->changes_sent,
                (unsigned long long)q->changes_received, q->sessions);
    }
    bad = ferror(f);
    if (fclose(f) != 0 || bad || !buf) {
        free(buf);
        return NOTES_ENOMEM;
    }
    /* Into peers.tmp, renamed over peers. No fsync: this is a status
     * report rewritten often, not data; after a crash a torn file is
     * refused by the reader and the next daemon rewrites it. */
    if ((fd = l->tmpfd) < 0)
        fd = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    l->tmpfd = -1;
    if (fd < 0 || ftruncate(fd, 0) != 0)
        e = errno;
    while (!e && off < len) {
        ssize_t w = pwrite(fd, buf + off, len - off, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            e = w < 0 ? errno : EIO;
        else
            off += (size_t)w;
    }
    if (!e && rename(l->tmp, l->path) != 0)
        e = errno;
    free(buf);
    if (fd >= 0)
        close(fd);
    if (e) {
        unlink(l->tmp);
        notes_sync__detail("cannot write '%s': %s", l->path, strerror(e));
    }
    open_tmp(l);
    return e ? NOTES_EIO : NOTES_OK;
}

/* ---- reading it back (strictly: the file is ours, but it may be torn) ---- */

struct rd {
    char *p, *end;
};

/* The next space-separated field of the current line; NULL at its end. */
static char *field(char **line)
{
    char *s = *line, *e;
    if (!s || !*s)
        return NULL;
    e = strchr(s, ' ');
    if (e) {
        *e = '\0';
        *line = e + 1;
    } else {
        *line = s + strlen(s);
    }
    return *s ? s : NULL;
}

static int num(char **line, uint64_t *v)
{
    char *s = field(line);
    uint64_t x = 0;
    if (!s || strlen(s) > 20)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = x;
    return 0;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int parse_peer(char *line, notes_sync_peer *e)
{
    static const char *const states[] = {"connected", "dialing", "backoff",
                                         "discovered", "disconnected", NULL};
    static const char *const founds[] = {"manual", "discovered", "inbound",
                                         NULL};
    char *sp = field(&line), *key = field(&line), *addr = field(&line),
         *st = field(&line), *fo = field(&line);
    uint64_t sessions;
    memset(e, 0, sizeof(*e));
    if (!sp || !key || !addr || !st || !fo || strlen(sp) > NOTES_SPACE_NAME_MAX ||
        strlen(addr) > NOTES_ADDR_MAX || !one_of(st, states) ||
        !one_of(fo, founds))
        return -1;
    for (const char *c = sp; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return -1;
    for (const char *c = addr; *c; c++)
        if (*c <= ' ' || *c > '~')
            return -1;
    snprintf(e->space, sizeof(e->space), "%s", sp);
    if (strcmp(key, "-") != 0) {
        if (strlen(key) != 64)
            return -1;
        for (int i = 0; i < 32; i++) {
            int hi = hexval(key[(size_t)2 * i]), lo = hexval(key[(size_t)2 * i + 1]);
            if (hi < 0 || lo < 0)
                return -1;
            e->key[i] = (uint8_t)(hi << 4 | lo);
        }
        e->key_known = 1;
    }
    if (strcmp(addr, "-") != 0)
        snprintf(e->addr, sizeof(e->addr), "%s", addr);
    snprintf(e->state, sizeof(e->state), "%s", st);
    snprintf(e->found, sizeof(e->found), "%s", fo);
    if (num(&line, &e->last_seen_ms) || num(&line, &e->last_sync_ms) ||
        num(&line, &e->changes_sent) || num(&line, &e->changes_received) ||
        num(&line, &sessions) || sessions > UINT32_MAX || *line)
        return -1;
    e->sessions = (uint32_t)sessions;
    return 0;
}

void notes_sync_peers_clear(notes_sync_peers *p)
{
    if (!p)
        return;
    free(p->peers);
    p->peers = NULL;
    p->npeers = 0;
}

int notes_sync_peers_read(const char *home, notes_sync_peers *out)
{
    char path[4200];
    char *buf = NULL, *line, *next;
    size_t len = 0, lineno = 0;
    int fd, rc = NOTES_OK, have_daemon = 0, have_disc = 0;
    struct stat st;
    if (!out)
        return NOTES_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!home)
        return NOTES_EINVAL;
    out->running = daemon_running(home);
    if ((rc = path_in(path, sizeof(path), home, PEERS_FILE)))
        return rc;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            return NOTES_OK;
        notes_sync__detail("cannot read '%s': %s", path, strerror(errno));
        return NOTES_EIO;
    }
    if (fstat(fd, &st) != 0 || st.st_size > PEERS_MAX_BYTES ||
        !(buf = malloc((size_t)st.st_size + 1))) {
        close(fd);
        notes_sync__detail("cannot read '%s': %s", path,
                           st.st_size > PEERS_MAX_BYTES ? "too large"
                                                        : "out of memory");
        return st.st_size > PEERS_MAX_BYTES ? NOTES_ECORRUPT : NOTES_ENOMEM;
    }
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\0', len))
        goto corrupt;
    if (!(out->peers = calloc(1, sizeof(*out->peers))))
        goto nomem;
    for (line = buf; *line; line = next) {
        char *nl = strchr(line, '\n'), *kind;
        *nl = '\0';
        next = nl + 1;
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, "notes-peers 1") != 0)
                goto corrupt;
            continue;
        }
        kind = field(&line);
        if (!kind)
            goto corrupt;
        if (strcmp(kind, "daemon") == 0 && !have_daemon) {
            uint64_t pid, port, disc, dport;
            if (num(&line, &pid) || num(&line, &out->started_ms) ||
                num(&line, &out->updated_ms) || num(&line, &port) ||
                num(&line, &disc) || num(&line, &dport) || *line ||
                pid > 0x7fffffff || port > 65535 || disc > 1 || dport > 65535)
                goto corrupt;
            out->pid = (long)pid;
            out->port = (int)port;
            out->discovery = (int)disc;
            out->discovery_port = (int)dport;
            have_daemon = 1;
        } else if (strcmp(kind, "discovery") == 0 && !have_disc) {
            notes_sync_discovery_stats *s = &out->disc;
            uint64_t *v[] = {&s->received, &s->accepted, &s->own,
                             &s->foreign, &s->malformed, &s->stale,
                             &s->replayed, &s->rate_limited, &s->full,
                             &s->sent, &s->send_errors};
            for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                if (num(&line, v[i]))
                    goto corrupt;
            if (*line)
                goto corrupt;
            have_disc = 1;
        } else if (strcmp(kind, "peer") == 0 && out->npeers < PEERS_MAX) {
            notes_sync_peer *np = realloc(out->peers, (out->npeers + 1) *
                                                          sizeof(*np));
            if (!np)
                goto nomem;
            out->peers = np;
            if (parse_peer(line, &out->peers[out->npeers]))
                goto corrupt;
            out->npeers++;
        } else {
            goto corrupt;
        }
    }
    if (!have_daemon || !have_disc)
        goto corrupt;
    free(buf);
    out->known = 1;
    return NOTES_OK;
corrupt:
    notes_sync__detail("'%s' is damaged (line %zu); it is rewritten by the "
                       "next `notes serve`", path, lineno);
    rc = NOTES_ECORRUPT;
    goto fail;
nomem:
    rc = NOTES_ENOMEM;
fail:
    free(buf);
    {
        int running = out->running;
        notes_sync_peers_clear(out);
        memset(out, 0, sizeof(*out));
        out->running = running;
    }
    return rc;
}
