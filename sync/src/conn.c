/*
 * conn.c: one TCP connection and its session, over libuv (discovery.c holds
 * the UDP side, hub.c the daemon that owns the connections). Deadlines: the
 * handshake must finish within handshake_ms of the connection, and the
 * peer must not be silent for idle_ms after it. Backpressure: while more
 * than max_out bytes wait to be written, no new frames are produced and
 * the socket is not read. notes_sync_once is one such connection.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>
#include <netdb.h>

#include <uv.h>

#include "notes_sync_presence.h"
#include "transport_internal.h"

/* c's handshake is over (or c is closing): no longer pending. */
static void pending_release(struct conn *c)
{
    if (!c->pending)
        return;
    c->pending = 0;
    c->hub->npending--;
}

uint64_t notes_sync__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void notes_sync__conn_unlink(struct conn *c)
{
    struct notes_sync_hub *h = c->hub;
    if (c->prev)
        c->prev->next = c->next;
    else if (h->conns == c)
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

int notes_sync__uv_err(int e, const char *what)
{
    notes_sync__detail("%s: %s", what, uv_strerror(e));
    return NOTES_SYNC_ENET;
}

void notes_sync__on_handle_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    struct notes_sync_hub *h = c->hub;
    if (--c->handles > 0)
        return;
    notes_sync_session_free(c->s);
    free(c);
    h->nconns--;
    notes_sync__hub_check_done(h);
}

/* End the connection: report its result once, close both handles. */
void notes_sync__conn_close(struct conn *c)
{
    struct notes_sync_hub *h = c->hub;
    if (c->closing)
        return;
    c->closing = 1;
    pending_release(c);
    notes_sync__conn_unlink(c);
    if (c->dial)
        notes_sync__dial_later(c->dial, c->opened);
    notes_sync__row_closed_conn(c);
    if (c->kind == CONN_RELAYED || c->kind == CONN_PUNCHED)
        notes_sync__relay_conn_closed(c);
    free(c->pre);
    c->pre = NULL;
    if (!c->result_given) {
        const notes_sync_report *r = notes_sync_session_report(c->s);
        c->result_given = 1;
        /* A live session that ends between rounds ended well: every
         * round it ran was complete. */
        if (notes_sync_state(c->s) == NOTES_SYNC_CLOSED ||
            notes_sync_session_idle(c->s))
            c->rc = NOTES_OK;
        else if (!c->rc)
            c->rc = notes_sync_session_error(c->s) ? notes_sync_session_error(c->s)
                                                   : NOTES_SYNC_ECLOSED;
        if (c->initiator && notes_sync__refused_recon(
                                c->rc, notes_sync_session_detail(c->s)))
            notes_sync__legacy_add(h, r->peer);
        if (h->client == c) {
            h->client_rc = c->rc;
            snprintf(h->client_detail, sizeof(h->client_detail), "%s",
                     notes_sync_session_detail(c->s));
            if (r)
                h->report = *r;
            h->client = NULL;
            notes_sync__relay_stop(h); /* reached through a relay: done */
        } else {
            h->active--;
            if (c->opened)
                h->finished++;
            /* A discovered peer that could not be reached is no session
             * to report: its row in the state file says "backoff"; nor is
             * a direct upgrade that did not get through (the relayed
             * session goes on). */
            if (h->opts && h->opts->on_session &&
                !((c->kind == CONN_DISCOVERED || c->kind == CONN_PUNCHED) &&
                  !c->opened)) {
                /* notes_sync_last_detail() says why, in the callback. */
                notes_sync__detail("%s", c->rc ? notes_sync_session_detail(c->s)
                                               : "");
                h->opts->on_session(h->opts->ud, c->rc, r);
            }
        }
    }
    uv_close((uv_handle_t *)&c->timer, notes_sync__on_handle_closed);
    uv_close((uv_handle_t *)&c->merge, notes_sync__on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, notes_sync__on_handle_closed);
    notes_sync__hub_maybe_stop(h);
}

static void conn_fail(struct conn *c, int rc, const char *why)
{
    notes_sync_session_abort(c->s, rc, why);
    if (!c->rc)
        c->rc = rc;
    notes_sync__conn_pump(c); /* an ERROR frame may still go out, then we close */
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (notes_sync_state(c->s) == NOTES_SYNC_FAILED) {
        /* The ERROR frame had its chance; a peer that does not read
         * keeps no slot (uv_close cancels the pending writes). */
        notes_sync__conn_close(c);
        return;
    }
    if (c->relay_phase)
        conn_fail(c, NOTES_SYNC_ETIMEOUT, "the relay did not pair the "
                  "connection in time");
    else if (c->kind == CONN_PUNCHED && notes_sync_state(c->s) ==
             NOTES_SYNC_HANDSHAKE)
        conn_fail(c, NOTES_SYNC_ETIMEOUT, "no direct path to the peer");
    else if (notes_sync_state(c->s) == NOTES_SYNC_HANDSHAKE)
        conn_fail(c, NOTES_SYNC_ETIMEOUT, "the handshake did not finish in "
                  "time");
    else
        conn_fail(c, NOTES_SYNC_ETIMEOUT, "the peer went silent");
    if (!c->closing && c->queued == 0)
        notes_sync__conn_close(c);
}

void notes_sync__conn_arm(struct conn *c, unsigned ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

void notes_sync__on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    struct conn *c = hd->data;
    (void)want;
    buf->base = c->hub->readbuf;
    buf->len = READ_BUF;
}

/*
 * After the session took input (on_read) or stored a bundle and what
 * followed it (on_merge): the deadlines, the peer table, and the next
 * writes. A bundle waiting for its merge stops reading (backpressure: the
 * session holds nothing more than the last read) and is stored from the
 * merge idle handle, after this callback, in the order received.
 */
static void on_merge(uv_idle_t *t);

static void conn_input_done(struct conn *c, int rrc, int was_hs,
                            uint64_t frames)
{
    const notes_sync_report *rep = notes_sync_session_report(c->s);
    if (notes_sync_state(c->s) != NOTES_SYNC_HANDSHAKE)
        pending_release(c);
    if (rrc == NOTES_OK) {
        int st2 = notes_sync_state(c->s);
        if (st2 == NOTES_SYNC_OPEN) {
            /* The handshake deadline gives way to the idle one, which
             * only a whole frame resets: bytes trickled slower than a
             * frame per idle_ms do not hold a connection. */
            if (!c->opened || (rep && rep->frames_received != frames))
                uv_timer_start(&c->timer, on_timer, c->hub->idle_ms, 0);
            if (!c->opened) {
                c->opened = 1;
                notes_sync__conn_opened(c);
            }
        } else if (was_hs && st2 == NOTES_SYNC_CLOSED) {
            c->opened = 1;
        }
        if (c->linked)
            c->row->last_seen = notes_sync__unix_ms();
    }
    if (!c->closing)
        notes_sync__conn_pump(c);
    if (c->closing)
        return;
    if (notes_sync_session_merge_pending(c->s)) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        uv_idle_start(&c->merge, on_merge);
    }
}

void notes_sync__on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    int was_hs = notes_sync_state(c->s) == NOTES_SYNC_HANDSHAKE;
    if (c->closing)
        return;
    if (n < 0) {
        if (notes_sync_state(c->s) == NOTES_SYNC_CLOSED ||
            (n == UV_EOF && notes_sync_session_idle(c->s))) {
            notes_sync__conn_close(c); /* done, or a live peer left between rounds */
            return;
        }
        c->rc = n == UV_EOF ? NOTES_SYNC_ECLOSED : NOTES_SYNC_ENET;
        if (c->relay_phase)
            notes_sync__detail("the relay closed the connection before "
                               "pairing it");
        else
            notes_sync__detail("%s", n == UV_EOF
                                         ? "the peer closed the connection "
                                           "before the goodbye"
                                         : uv_strerror((int)n));
        if (c->initiator && !c->relay_phase &&
            (n == UV_EOF || n == UV_ECONNRESET) &&
            notes_sync_state(c->s) == NOTES_SYNC_HANDSHAKE &&
            notes_sync_session_report(c->s)->bytes_received == 0) {
            /* Closed before any answer: what a busy server of an older
             * version does, and also one not in this space (which says
             * nothing, by design). Not proof of either: said as such. */
            c->rc = NOTES_SYNC_EBUSY;
            notes_sync__detail("the peer closed the connection without "
                               "answering the handshake (a busy peer does "
                               "that; so does one that is not in this "
                               "space)");
        }
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_detail());
        notes_sync__conn_close(c);
        return;
    }
    if (n == 0)
        return;
    const uint8_t *in = (const uint8_t *)buf->base;
    if (c->relay_phase) {
        /* The relay's answer first; what follows PAIRED is the peer's. */
        size_t used = notes_sync__relay_phase_read(c, in, (size_t)n);
        if (c->closing || c->relay_phase || used == (size_t)n)
            return;
        in += used;
        n -= (ssize_t)used;
    }
    const notes_sync_report *rep = notes_sync_session_report(c->s);
    uint64_t frames = rep ? rep->frames_received : 0;
    int rrc = notes_sync_receive(c->s, in, (size_t)n);
    conn_input_done(c, rrc, was_hs, frames);
}

static void on_merge(uv_idle_t *t)
{
    struct conn *c = t->data;
    const notes_sync_report *rep = notes_sync_session_report(c->s);
    uint64_t frames = rep ? rep->frames_received : 0;
    uv_idle_stop(t);
    if (c->closing)
        return;
    conn_input_done(c, notes_sync_session_apply(c->s), 0, frames);
    if (!c->closing && notes_sync_session_needs_flush(c->s))
        notes_sync__hub_flush_soon(c->hub);
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    c->queued -= w->n;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        c->rc = NOTES_SYNC_ENET;
        notes_sync_session_abort(c->s, NOTES_SYNC_ENET, uv_strerror(status));
        notes_sync__conn_close(c);
        return;
    }
    /* Bytes leaving count as activity: a long upload is not idleness. */
    if (notes_sync_state(c->s) == NOTES_SYNC_OPEN)
        uv_timer_start(&c->timer, on_timer, c->hub->idle_ms, 0);
    notes_sync__conn_pump(c);
}

/* Send what the session has, within the backpressure limit; read while
 * there is room; close when the session is over and the writes are out. */
void notes_sync__conn_pump(struct conn *c)
{
    struct notes_sync_hub *h = c->hub;
    /* Still talking to the relay: the session speaks after PAIRED. */
    if (c->relay_phase)
        return;
    /* Once the peer is proven: one known to predate reconciliation is
     * sent HAVE lists, as it expects. */
    if (c->initiator && !c->legacy_checked &&
        notes_sync_state(c->s) == NOTES_SYNC_OPEN) {
        c->legacy_checked = 1;
        if (notes_sync__legacy_has(h, notes_sync_session_report(c->s)->peer))
            notes_sync__session_no_recon(c->s);
    }
    /* A bundle waiting for its merge comes first: what the session says
     * next depends on it (as when merges ran inside on_read, the frames
     * then carry the same messages). */
    while (!c->closing && c->queued < h->max_out &&
           !notes_sync_session_merge_pending(c->s) &&
           notes_sync_wants_write(c->s)) {
        const uint8_t *p;
        size_t n;
        struct wreq *w;
        uv_buf_t b;
        int e;
        if (notes_sync_next_msg(c->s, &p, &n) != NOTES_OK && n == 0)
            break;
        if (n == 0)
            break;
        if (!(w = malloc(sizeof(*w) + n))) {
            notes_sync_session_abort(c->s, NOTES_ENOMEM, "out of memory");
            break;
        }
        memcpy(w->data, p, n);
        w->c = c;
        w->n = n;
        b = uv_buf_init((char *)w->data, (unsigned)n);
        if ((e = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1,
                          on_write)) < 0) {
            free(w);
            notes_sync_session_abort(c->s, NOTES_SYNC_ENET, uv_strerror(e));
            break;
        }
        c->queued += n;
    }
    if (c->closing)
        return;
    int st = notes_sync_state(c->s);
    /* A round just ended (live: idle again; one-shot: closed), or a push
     * went or came between rounds. */
    int idle = st == NOTES_SYNC_CLOSED || notes_sync_session_idle(c->s);
    const notes_sync_report *rep = notes_sync_session_report(c->s);
    if (idle && (!c->was_idle ||
                 (rep && (rep->changes_sent != c->acct_sent ||
                          rep->changes_received != c->acct_recv))))
        notes_sync__conn_account(c, 1);
    c->was_idle = idle;
    if (st == NOTES_SYNC_CLOSED || st == NOTES_SYNC_FAILED) {
        if (c->queued == 0) {
            notes_sync__conn_close(c);
        } else if (st == NOTES_SYNC_FAILED && !c->grace) {
            /* Writes stuck behind a peer that does not read: one second
             * more for the ERROR frame, then on_timer closes. */
            c->grace = 1;
            uv_timer_start(&c->timer, on_timer, 1000, 0);
        }
        return;
    }
    if (notes_sync_session_idle(c->s)) {
        /* Live, between rounds: silence is fine (TCP keepalive watches
         * the peer); when serve stops, the session ends here. */
        uv_timer_stop(&c->timer);
        if (h->stopping && c->queued == 0) {
            notes_sync__conn_close(c);
            return;
        }
    }
    if (c->queued >= h->max_out && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (c->queued < h->max_out && !c->reading &&
               !notes_sync_session_merge_pending(c->s)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, notes_sync__on_alloc, notes_sync__on_read) == 0)
            c->reading = 1;
    }
}

/* A connection and its session for one space (an initiator always), or
 * for any space of the hub (CONN_ANY_SPACE: an inbound connection). */
struct conn *notes_sync__conn_new(struct notes_sync_hub *h, int role,
                                  size_t space)
{
    struct conn *c = calloc(1, sizeof(*c));
    notes_sync_config cfg = h->cfg;
    if (!c)
        return NULL;
    cfg.role = role;
    /* Merges (disk writes, fsync) run from the merge idle handle, not
     * inside on_read (docs/protocol.md, "The transport"). */
    cfg.defer_merge = 1;
    if (space != CONN_ANY_SPACE) {
        cfg.spaces = &h->cfg.spaces[space];
        cfg.nspaces = 1;
        c->space = space;
    }
    if (notes_sync_session_new(&cfg, &c->s) != NOTES_OK) {
        free(c);
        return NULL;
    }
    c->hub = h;
    h->nconns++;
    c->initiator = role == NOTES_SYNC_INITIATOR;
    notes_sync_session_on_presence(c->s, notes_sync__conn_on_presence, c);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    uv_idle_init(h->loop, &c->merge);
    c->tcp.data = c;
    c->timer.data = c;
    c->merge.data = c;
    c->handles = 3;
    return c;
}

void notes_sync__conn_start(struct conn *c)
{
    if (c->hub->stopping) {
        notes_sync__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->hub->cfg.live)
        uv_tcp_keepalive(&c->tcp, 1, 30);
    uv_timer_start(&c->timer, on_timer, c->hub->handshake_ms, 0);
    notes_sync__conn_pump(c);
}

/* A host name as addresses take it: letters, digits, '-' and '.' (so
 * "localhost", "nas.local", "relay.example.org"). */
static int is_host_name(const char *h)
{
    if (!*h || *h == '-' || *h == '.')
        return 0;
    for (; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
              (*h >= '0' && *h <= '9') || *h == '-' || *h == '.'))
            return 0;
    return 1;
}

int notes_sync__resolve(const char *host, int port, int family,
                        struct sockaddr_storage *ss)
{
    struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = family == AF_INET ? SOCK_DGRAM : SOCK_STREAM;
    if (!is_host_name(host)) {
        notes_sync__detail("'%.80s' is not a host name", host);
        return NOTES_EINVAL;
    }
    /* Blocking, once, where an address is given (a command's argument, a
     * daemon's start): mDNS names (.local) resolve as the system's
     * resolver does (nss-mdns or systemd-resolved). */
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e) {
        notes_sync__detail("cannot resolve host '%.80s': %s", host,
                           gai_strerror(e));
        return NOTES_EINVAL;
    }
    /* IPv4 first: a daemon listens on 0.0.0.0 by default, and "localhost"
     * is often ::1 first. */
    for (ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    for (ai = res; ai && !pick; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            pick = ai;
    if (!pick || pick->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        notes_sync__detail("host '%.80s' has no IPv4 or IPv6 address", host);
        return NOTES_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return NOTES_OK;
}

int notes_sync__parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[NOTES_ADDR_MAX + 1];
    const char *colon;
    char *end;
    long port;
    size_t hl;
    if (!addr || !(colon = strrchr(addr, ':')))
        goto bad;
    hl = (size_t)(colon - addr);
    if (hl == 0 || hl > NOTES_ADDR_MAX)
        goto bad;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        goto bad;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0)
            return NOTES_OK;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) {
        return NOTES_OK;
    } else if (is_host_name(host)) {
        return notes_sync__resolve(host, (int)port, AF_UNSPEC, ss);
    }
bad:
    notes_sync__detail("address '%s' must be HOST:PORT (a host name, IPv4 or "
                       "[IPv6], and a port)", addr ? addr : "");
    return NOTES_EINVAL;
}

/*
 * "HOST:PORT" where HOST may also be a DNS name (letters, digits, '-' and
 * '.'; a relay is often named): OUT host (NUL-terminated) and port
 * (1..65535). A numeric address is a name too (getaddrinfo takes both).
 */
int notes_sync__split_name(const char *addr, char host[NOTES_ADDR_MAX + 1],
                           char port[6])
{
    struct sockaddr_storage ss;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    size_t hl, pl;
    if (addr && notes_sync__parse_addr(addr, &ss) == NOTES_OK) {
        int p = ss.ss_family == AF_INET6
                    ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (p == 0)
            goto bad;
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, NOTES_ADDR_MAX + 1);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, host, NOTES_ADDR_MAX + 1);
        snprintf(port, 6, "%d", p);
        return NOTES_OK;
    }
    if (!colon || (hl = (size_t)(colon - addr)) == 0 || hl > NOTES_ADDR_MAX ||
        (pl = strlen(colon + 1)) == 0 || pl > 5)
        goto bad;
    for (size_t i = 0; i < hl; i++)
        if (!((addr[i] >= 'a' && addr[i] <= 'z') ||
              (addr[i] >= 'A' && addr[i] <= 'Z') ||
              (addr[i] >= '0' && addr[i] <= '9') || addr[i] == '-' ||
              addr[i] == '.'))
            goto bad;
    for (size_t i = 0; i < pl; i++)
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            goto bad;
    if (atol(colon + 1) < 1 || atol(colon + 1) > 65535)
        goto bad;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return NOTES_OK;
bad:
    notes_sync__detail("address '%s' must be HOST:PORT (a name, IPv4 or "
                       "[IPv6], and a port 1-65535)", addr ? addr : "");
    return NOTES_EINVAL;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0) {
        c->rc = notes_sync__uv_err(status, "connect");
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_detail());
        notes_sync__conn_close(c);
        return;
    }
    if (c->relay_phase)
        notes_sync__relay_connected(c);
    else
        notes_sync__conn_start(c);
}

/* Write raw bytes (the relay's messages) on c. */
int notes_sync__conn_write(struct conn *c, const void *p, size_t n)
{
    struct wreq *w = malloc(sizeof(*w) + n);
    uv_buf_t b;
    int e;
    if (!w)
        return NOTES_ENOMEM;
    memcpy(w->data, p, n);
    w->c = c;
    w->n = n;
    b = uv_buf_init((char *)w->data, (unsigned)n);
    if ((e = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write)) < 0) {
        free(w);
        return notes_sync__uv_err(e, "write");
    }
    c->queued += n;
    return NOTES_OK;
}

/*
 * Give c a socket bound to `local` (NULL: any address of `family`'s kind,
 * an ephemeral port) with SO_REUSEADDR and SO_REUSEPORT: a relayed
 * connection's local port is reused by the direct upgrade's connection
 * (docs/protocol.md, "Direct upgrade"), which only the two options allow
 * while the first is open.
 */
int notes_sync__socket_for(struct conn *c, const struct sockaddr *local)
{
    struct sockaddr_storage any;
    int one = 1, fd, e;
    if (!local) {
        memset(&any, 0, sizeof(any));
        any.ss_family = AF_INET;
        local = (const struct sockaddr *)&any;
    }
    fd = socket(local->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return notes_sync__uv_err(uv_translate_sys_error(errno), "socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, local, local->sa_family == AF_INET6
                            ? sizeof(struct sockaddr_in6)
                            : sizeof(struct sockaddr_in)) != 0) {
        e = uv_translate_sys_error(errno);
        close(fd);
        return notes_sync__uv_err(e, "bind");
    }
    if ((e = uv_tcp_open(&c->tcp, fd)) < 0) {
        close(fd);
        return notes_sync__uv_err(e, "socket");
    }
    return NOTES_OK;
}

static void walk_close(uv_handle_t *hd, void *arg)
{
    (void)arg;
    if (!uv_is_closing(hd))
        uv_close(hd, NULL);
}

void notes_sync__loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) == UV_EBUSY) {
        uv_walk(loop, walk_close, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(loop);
    }
}

int notes_sync_once(const char *home, const char *passphrase,
                    const char *space, const char *addr,
                    notes_sync_report *report)
{
    return notes_sync_once_ex(home, passphrase, space, addr, NULL, report);
}

/* An initiator's session refused by a peer that predates reconciliation
 * (docs/protocol.md, "Reconciliation"): such a peer fails on the unknown
 * message and says so in its ERROR. */
int notes_sync__refused_recon(int rc, const char *detail)
{
    return rc == NOTES_SYNC_EREFUSED && detail &&
           strstr(detail, "unknown message type 10") != NULL;
}

static int once_attempt(const char *home, const char *passphrase,
                        const char *space, const char *addr,
                        const notes_sync_once_opts *o,
                        notes_sync_report *report, int no_recon);

int notes_sync_once_ex(const char *home, const char *passphrase,
                       const char *space, const char *addr,
                       const notes_sync_once_opts *o,
                       notes_sync_report *report)
{
    int rc = once_attempt(home, passphrase, space, addr, o, report, 0);
    /* An older peer: once more, listing every note as it expects. */
    if (notes_sync__refused_recon(rc, notes_sync_last_detail()))
        rc = once_attempt(home, passphrase, space, addr, o, report, 1);
    return rc;
}

static int once_attempt(const char *home, const char *passphrase,
                        const char *space, const char *addr,
                        const notes_sync_once_opts *o,
                        notes_sync_report *report, int no_recon)
{
    struct notes_sync_hub h;
    uv_loop_t loop;
    struct sockaddr_storage ss;
    notes_replica *r;
    notes_identity *id;
    notes_sync_space *spaces;
    uv_connect_t *req;
    int rc, e;
    if (report)
        memset(report, 0, sizeof(*report));
    const char *relay = o ? o->relay : NULL;
    if (!home || !space || (!addr && !relay))
        return NOTES_EINVAL;
    memset(&h, 0, sizeof(h));
    if (relay) {
        char host[NOTES_ADDR_MAX + 1], port[6];
        if ((rc = notes_sync__split_name(relay, host, port)))
            return rc;
    } else if ((rc = notes_sync__parse_addr(addr, &ss))) {
        return rc;
    }
    h.handshake_ms = o && o->handshake_ms ? o->handshake_ms : 10000;
    h.idle_ms = o && o->idle_ms ? o->idle_ms : 60000;
    h.max_out = 4u << 20;
    if (!(h.readbuf = malloc(READ_BUF))) {
        r = NULL, id = NULL, spaces = NULL;
        rc = NOTES_ENOMEM;
        goto out;
    }
    if ((rc = notes_sync__hub_load(&h, home, passphrase, space, &r, &id, &spaces)))
        goto out;
    h.cfg.no_recon = no_recon;
    if (o) {
        h.cfg.progress = o->progress;
        h.cfg.progress_ud = o->progress_ud;
    }
    h.loop = &loop;
    if ((e = uv_loop_init(h.loop)) < 0) {
        rc = notes_sync__uv_err(e, "loop");
        goto out;
    }
    if (relay) {
        /* The control connection dials the first member present. */
        h.client_rc = NOTES_SYNC_ENET;
        snprintf(h.client_detail, sizeof(h.client_detail),
                 "relay %s: no session", relay);
        h.retry_ms = 500;
        if ((rc = notes_sync__relay_start(&h, &relay, 1, 1)) == NOTES_OK)
            notes_sync__loop_finish(h.loop);
        else
            (void)uv_loop_close(h.loop);
        free(h.ctls);
        if (rc == NOTES_OK)
            rc = h.client_rc;
        if (report)
            *report = h.report;
        if (rc)
            notes_sync__detail("%s", h.client_detail);
        goto out;
    }
    h.client = notes_sync__conn_new(&h, NOTES_SYNC_INITIATOR, 0);
    req = malloc(sizeof(*req));
    if (!h.client || !req) {
        free(req);
        if (h.client) {
            notes_sync_session_free(h.client->s);
            uv_close((uv_handle_t *)&h.client->tcp, NULL);
            uv_close((uv_handle_t *)&h.client->timer, NULL);
            uv_close((uv_handle_t *)&h.client->merge, NULL);
        }
        notes_sync__loop_finish(h.loop);
        free(h.client);
        rc = NOTES_ENOMEM;
        goto out;
    }
    req->data = h.client;
    h.client_rc = NOTES_SYNC_ENET;
    notes_sync__conn_arm(h.client, h.handshake_ms); /* the connect too */
    if ((e = uv_tcp_connect(req, &h.client->tcp, (struct sockaddr *)&ss,
                            on_connect)) < 0) {
        free(req);
        h.client->rc = notes_sync__uv_err(e, "connect");
        notes_sync_session_abort(h.client->s, h.client->rc,
                                 notes_sync_last_detail());
        notes_sync__conn_close(h.client);
    }
    notes_sync__loop_finish(h.loop);
    rc = h.client_rc;
    if (report)
        *report = h.report;
    if (rc)
        notes_sync__detail("%s", h.client_detail);
out:
    {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
        notes_sync__hub_unload(r, id, spaces, h.cfg.nspaces);
        free(h.readbuf);
        notes_sync__detail("%s", keep);
    }
    return rc;
}


/* Connect c (counted in h->active) to ss; a failure closes it. The
 * connect itself is bounded (a host that drops SYNs would take the
 * kernel's two minutes): by the handshake deadline, unless the caller set
 * another one. */
void notes_sync__conn_dial(struct conn *c, const struct sockaddr_storage *ss)
{
    uv_connect_t *req;
    int e;
    if (!uv_is_active((uv_handle_t *)&c->timer))
        notes_sync__conn_arm(c, c->hub->handshake_ms);
    if (!(req = malloc(sizeof(*req)))) {
        notes_sync__conn_close(c);
        return;
    }
    req->data = c;
    if ((e = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)ss,
                            on_connect)) < 0) {
        free(req);
        c->rc = notes_sync__uv_err(e, "connect");
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_detail());
        notes_sync__conn_close(c);
    }
}

void notes_sync__legacy_add(struct notes_sync_hub *h, const uint8_t key[32])
{
    if (notes_sync__legacy_has(h, key))
        return;
    memcpy(h->legacy[h->nlegacy % HUB_LEGACY], key, 32);
    h->nlegacy++;
}

int notes_sync__legacy_has(const struct notes_sync_hub *h,
                           const uint8_t key[32])
{
    size_t n = h->nlegacy < HUB_LEGACY ? h->nlegacy : HUB_LEGACY;
    for (size_t i = 0; i < n; i++)
        if (!memcmp(h->legacy[i], key, 32))
            return 1;
    return 0;
}
