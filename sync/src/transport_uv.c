/*
 * transport_uv.c: moves a session's bytes over TCP with libuv (the only
 * file that includes <uv.h>). One connection, one session. Deadlines: the
 * handshake must finish within handshake_ms of the connection, and the
 * peer must not be silent for idle_ms after it. Backpressure: while more
 * than max_out bytes wait to be written, no new frames are produced and
 * the socket is not read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "sync_internal.h"

#define READ_BUF (64u << 10)

struct hub;
struct dial;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct hub *hub;
    notes_sync_session *s;
    size_t queued;        /* bytes handed to uv_write, not yet written */
    int reading, closing, handles, opened, result_given;
    int rc;               /* final result */
    struct conn *next, *prev; /* the hub's connections */
    struct dial *dial;    /* the peer this connection dialed, or NULL */
    char readbuf[READ_BUF];
};

/* A peer that serve keeps a live session with, redialing when it ends. */
struct dial {
    struct hub *hub;
    struct sockaddr_storage ss;
    uv_timer_t timer;
    unsigned backoff_ms;
    struct conn *c;       /* the current connection, or NULL */
};

struct hub {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t stop_timer;
    int listening, stopping;
    notes_sync_config cfg;    /* template for sessions */
    unsigned handshake_ms, idle_ms, max_conns, max_sessions;
    size_t max_out;
    unsigned active, finished;
    const notes_sync_serve_opts *opts;
    struct conn *conns;       /* every connection not yet closing */
    uv_fs_event_t watch;      /* live: the notes' logs */
    int watching;
    struct dial *dials;
    size_t ndials;
    int dialing;              /* the dial timers are initialized */
    unsigned retry_ms;
    /* sync_once */
    struct conn *client;
    int client_rc;
    char client_detail[512];
    notes_sync_report report;
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t n;
    uint8_t data[];
};

static void conn_pump(struct conn *c);
static void hub_maybe_stop(struct hub *h);
static void dial_later(struct dial *d, int was_open);

static void conn_unlink(struct conn *c)
{
    struct hub *h = c->hub;
    if (c->prev)
        c->prev->next = c->next;
    else if (h->conns == c)
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static int uv_err(int e, const char *what)
{
    notes_sync__detail("%s: %s", what, uv_strerror(e));
    return NOTES_SYNC_ENET;
}

static void on_handle_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    if (--c->handles > 0)
        return;
    notes_sync_session_free(c->s);
    free(c);
}

/* End the connection: report its result once, close both handles. */
static void conn_close(struct conn *c)
{
    struct hub *h = c->hub;
    if (c->closing)
        return;
    c->closing = 1;
    conn_unlink(c);
    if (c->dial)
        dial_later(c->dial, c->opened);
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
        if (h->client == c) {
            h->client_rc = c->rc;
            snprintf(h->client_detail, sizeof(h->client_detail), "%s",
                     notes_sync_session_detail(c->s));
            if (r)
                h->report = *r;
            h->client = NULL;
        } else {
            h->active--;
            if (c->opened)
                h->finished++;
            if (h->opts && h->opts->on_session) {
                /* notes_sync_last_error() says why, in the callback. */
                notes_sync__detail("%s", c->rc ? notes_sync_session_detail(c->s)
                                               : "");
                h->opts->on_session(h->opts->ud, c->rc, r);
            }
        }
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    hub_maybe_stop(h);
}

static void conn_fail(struct conn *c, int rc, const char *why)
{
    notes_sync_session_abort(c->s, rc, why);
    if (!c->rc)
        c->rc = rc;
    conn_pump(c); /* an ERROR frame may still go out, then we close */
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (notes_sync_state(c->s) == NOTES_SYNC_HANDSHAKE)
        conn_fail(c, NOTES_SYNC_ETIMEOUT, "the handshake did not finish in "
                  "time");
    else
        conn_fail(c, NOTES_SYNC_ETIMEOUT, "the peer went silent");
    if (!c->closing && c->queued == 0)
        conn_close(c);
}

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    struct conn *c = hd->data;
    (void)want;
    buf->base = c->readbuf;
    buf->len = sizeof(c->readbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    int was_hs = notes_sync_state(c->s) == NOTES_SYNC_HANDSHAKE;
    if (c->closing)
        return;
    if (n < 0) {
        if (notes_sync_state(c->s) == NOTES_SYNC_CLOSED ||
            (n == UV_EOF && notes_sync_session_idle(c->s))) {
            conn_close(c); /* done, or a live peer left between rounds */
            return;
        }
        c->rc = n == UV_EOF ? NOTES_SYNC_ECLOSED : NOTES_SYNC_ENET;
        notes_sync__detail("%s", n == UV_EOF
                                     ? "the peer closed the connection "
                                       "before the goodbye"
                                     : uv_strerror((int)n));
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_error());
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    if (notes_sync_receive(c->s, (const uint8_t *)buf->base, (size_t)n) ==
        NOTES_OK) {
        int st2 = notes_sync_state(c->s);
        if (st2 == NOTES_SYNC_OPEN) {
            c->opened = 1;
            /* The handshake deadline gives way to the idle one. */
            uv_timer_start(&c->timer, on_timer, c->hub->idle_ms, 0);
        } else if (was_hs && st2 == NOTES_SYNC_CLOSED) {
            c->opened = 1;
        }
    }
    conn_pump(c);
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
        conn_close(c);
        return;
    }
    /* Bytes leaving count as activity: a long upload is not idleness. */
    if (notes_sync_state(c->s) == NOTES_SYNC_OPEN)
        uv_timer_start(&c->timer, on_timer, c->hub->idle_ms, 0);
    conn_pump(c);
}

/* Send what the session has, within the backpressure limit; read while
 * there is room; close when the session is over and the writes are out. */
static void conn_pump(struct conn *c)
{
    struct hub *h = c->hub;
    while (!c->closing && c->queued < h->max_out &&
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
    if (st == NOTES_SYNC_CLOSED || st == NOTES_SYNC_FAILED) {
        if (c->queued == 0)
            conn_close(c);
        return;
    }
    if (notes_sync_session_idle(c->s)) {
        /* Live, between rounds: silence is fine (TCP keepalive watches
         * the peer); when serve stops, the session ends here. */
        uv_timer_stop(&c->timer);
        if (h->stopping && c->queued == 0) {
            conn_close(c);
            return;
        }
    }
    if (c->queued >= h->max_out && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (c->queued < h->max_out && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    }
}

static struct conn *conn_new(struct hub *h, int role)
{
    struct conn *c = calloc(1, sizeof(*c));
    notes_sync_config cfg = h->cfg;
    if (!c)
        return NULL;
    cfg.role = role;
    if (notes_sync_session_new(&cfg, &c->s) != NOTES_OK) {
        free(c);
        return NULL;
    }
    c->hub = h;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    uv_tcp_init(&h->loop, &c->tcp);
    uv_timer_init(&h->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    return c;
}

static void conn_start(struct conn *c)
{
    if (c->hub->stopping) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->hub->cfg.live)
        uv_tcp_keepalive(&c->tcp, 1, 30);
    uv_timer_start(&c->timer, on_timer, c->hub->handshake_ms, 0);
    conn_pump(c);
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
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
    }
bad:
    notes_sync__detail("address '%s' must be IPv4:PORT or [IPv6]:PORT",
                       addr ? addr : "");
    return NOTES_EINVAL;
}

/* Identity and spaces of a replica, for either side. */
static int hub_load(struct hub *h, const char *home, const char *passphrase,
                    const char *space, notes_replica **r, notes_identity **id,
                    notes_space **spaces)
{
    char path[4096];
    char **names = NULL;
    size_t n = 0;
    int rc;
    *r = NULL;
    *id = NULL;
    *spaces = NULL;
    if ((rc = notes_replica_open(home, r)))
        return notes_sync__from_notes(rc, "replica");
    snprintf(path, sizeof(path), "%s/identity", home);
    if ((rc = notes_identity_load(path, passphrase, id)))
        return notes_sync__from_notes(rc, "identity");
    if (space) {
        if (!(*spaces = calloc(1, sizeof(**spaces))))
            return NOTES_ENOMEM;
        if ((rc = notes_space_load(home, space, *spaces)))
            return rc;
        n = 1;
    } else {
        if ((rc = notes_space_list(home, &names, &n)))
            return rc;
        if (n == 0) {
            notes_sync__detail("no spaces in '%s' to serve", home);
            return NOTES_ENOTFOUND;
        }
        if (!(*spaces = calloc(n, sizeof(**spaces)))) {
            notes_space_names_free(names, n);
            return NOTES_ENOMEM;
        }
        h->cfg.nspaces = n; /* so that a failure below still wipes them */
        for (size_t i = 0; i < n && !rc; i++)
            rc = notes_space_load(home, names[i], &(*spaces)[i]);
        notes_space_names_free(names, n);
        if (rc)
            return rc;
    }
    h->cfg.replica = *r;
    h->cfg.identity = *id;
    h->cfg.spaces = *spaces;
    h->cfg.nspaces = n;
    return NOTES_OK;
}

static void hub_unload(notes_replica *r, notes_identity *id,
                       notes_space *spaces, size_t n)
{
    if (spaces) {
        sodium_memzero(spaces, n * sizeof(*spaces));
        free(spaces);
    }
    notes_identity_free(id);
    notes_replica_close(r);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0) {
        c->rc = uv_err(status, "connect");
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_error());
        conn_close(c);
        return;
    }
    conn_start(c);
}

static void walk_close(uv_handle_t *hd, void *arg)
{
    (void)arg;
    if (!uv_is_closing(hd))
        uv_close(hd, NULL);
}

static void loop_finish(uv_loop_t *loop)
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
    struct hub h;
    struct sockaddr_storage ss;
    notes_replica *r;
    notes_identity *id;
    notes_space *spaces;
    uv_connect_t *req;
    int rc, e;
    if (report)
        memset(report, 0, sizeof(*report));
    if (!home || !space || !addr)
        return NOTES_EINVAL;
    memset(&h, 0, sizeof(h));
    if ((rc = parse_addr(addr, &ss)))
        return rc;
    h.handshake_ms = 10000;
    h.idle_ms = 60000;
    h.max_out = 4u << 20;
    if ((rc = hub_load(&h, home, passphrase, space, &r, &id, &spaces)))
        goto out;
    if ((e = uv_loop_init(&h.loop)) < 0) {
        rc = uv_err(e, "loop");
        goto out;
    }
    h.client = conn_new(&h, NOTES_SYNC_INITIATOR);
    req = malloc(sizeof(*req));
    if (!h.client || !req) {
        free(req);
        if (h.client) {
            notes_sync_session_free(h.client->s);
            uv_close((uv_handle_t *)&h.client->tcp, NULL);
            uv_close((uv_handle_t *)&h.client->timer, NULL);
        }
        loop_finish(&h.loop);
        free(h.client);
        rc = NOTES_ENOMEM;
        goto out;
    }
    req->data = h.client;
    h.client_rc = NOTES_SYNC_ENET;
    if ((e = uv_tcp_connect(req, &h.client->tcp, (struct sockaddr *)&ss,
                            on_connect)) < 0) {
        free(req);
        h.client->rc = uv_err(e, "connect");
        notes_sync_session_abort(h.client->s, h.client->rc,
                                 notes_sync_last_error());
        conn_close(h.client);
    }
    loop_finish(&h.loop);
    rc = h.client_rc;
    if (report)
        *report = h.report;
    if (rc)
        notes_sync__detail("%s", h.client_detail);
out:
    {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_error());
        hub_unload(r, id, spaces, h.cfg.nspaces);
        notes_sync__detail("%s", keep);
    }
    return rc;
}

/* ---- serving ---- */

static void hub_maybe_stop(struct hub *h)
{
    if (h->client || !h->listening)
        return;
    if (h->stopping ||
        (h->max_sessions && h->finished >= h->max_sessions)) {
        h->listening = 0;
        h->stopping = 1;
        uv_close((uv_handle_t *)&h->listener, NULL);
        uv_close((uv_handle_t *)&h->stop_timer, NULL);
        if (h->watching) {
            h->watching = 0;
            uv_close((uv_handle_t *)&h->watch, NULL);
        }
        for (size_t i = 0; h->dialing && i < h->ndials; i++)
            uv_close((uv_handle_t *)&h->dials[i].timer, NULL);
        /* Live sessions between rounds end now; the others say goodbye
         * after their round. */
        for (struct conn *c = h->conns, *n; c; c = n) {
            n = c->next;
            if (notes_sync_session_idle(c->s)) {
                conn_pump(c);
            } else if (h->client != c) {
                notes_sync_session_end(c->s);
                conn_pump(c);
            }
        }
    }
}

/* ---- live: watching the logs, dialing peers ---- */

/* A note's log changed (a commit here, or a merge from some peer): every
 * live session runs a round, which sends each peer what it lacks. */
static void on_watch(uv_fs_event_t *w, const char *name, int events,
                     int status)
{
    struct hub *h = w->data;
    size_t n = name ? strlen(name) : 0;
    (void)events;
    if (status < 0 || h->stopping || n < 5 || strcmp(name + n - 4, ".log"))
        return;
    for (struct conn *c = h->conns, *nx; c; c = nx) {
        nx = c->next;
        if (notes_sync_state(c->s) == NOTES_SYNC_OPEN &&
            notes_sync_session_round(c->s) == NOTES_OK)
            conn_pump(c);
    }
}

static void dial_now(uv_timer_t *t)
{
    struct dial *d = t->data;
    struct hub *h = d->hub;
    uv_connect_t *req;
    int e;
    if (h->stopping || d->c)
        return;
    if (!(d->c = conn_new(h, NOTES_SYNC_INITIATOR))) {
        dial_later(d, 0);
        return;
    }
    d->c->dial = d;
    h->active++;
    if (!(req = malloc(sizeof(*req)))) {
        conn_close(d->c);
        return;
    }
    req->data = d->c;
    if ((e = uv_tcp_connect(req, &d->c->tcp, (struct sockaddr *)&d->ss,
                            on_connect)) < 0) {
        free(req);
        d->c->rc = uv_err(e, "connect");
        notes_sync_session_abort(d->c->s, d->c->rc, notes_sync_last_error());
        conn_close(d->c);
    }
}

/* The dialed connection ended: dial again after the backoff (reset once
 * a session had opened; doubled after each failure, up to 30 s). */
static void dial_later(struct dial *d, int was_open)
{
    d->c = NULL;
    if (d->hub->stopping)
        return;
    if (was_open)
        d->backoff_ms = d->hub->retry_ms;
    uv_timer_start(&d->timer, dial_now, d->backoff_ms, 0);
    d->backoff_ms = d->backoff_ms >= 15000 ? 30000 : d->backoff_ms * 2;
}

static void on_connection(uv_stream_t *srv, int status)
{
    struct hub *h = srv->data;
    struct conn *c;
    if (status < 0 || !h->listening)
        return;
    c = conn_new(h, NOTES_SYNC_RESPONDER);
    if (!c)
        return;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0 ||
        h->active >= h->max_conns) {
        /* Over the limit: drop it without a word. */
        c->result_given = 1;
        c->closing = 1;
        conn_unlink(c);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    h->active++;
    conn_start(c);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct hub *h = t->data;
    if (h->opts->stop && *h->opts->stop) {
        h->stopping = 1;
        hub_maybe_stop(h);
    }
}

int notes_sync_serve(const char *home, const char *passphrase,
                     const notes_sync_serve_opts *o)
{
    struct hub h;
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    int blen = sizeof(bound), rc, e, port = 0;
    notes_replica *r;
    notes_identity *id;
    notes_space *spaces;
    if (!home || !o)
        return NOTES_EINVAL;
    memset(&h, 0, sizeof(h));
    h.opts = o;
    h.handshake_ms = o->handshake_ms ? o->handshake_ms : 10000;
    h.idle_ms = o->idle_ms ? o->idle_ms : 60000;
    h.max_out = o->max_out ? o->max_out : 4u << 20;
    h.max_conns = o->max_conns ? o->max_conns : 32;
    h.max_sessions = o->max_sessions;
    h.retry_ms = o->retry_ms ? o->retry_ms : 500;
    if ((rc = parse_addr(o->listen ? o->listen : "127.0.0.1:0", &ss)))
        return rc;
    if (o->npeers) {
        if (!o->peers || !(h.dials = calloc(o->npeers, sizeof(*h.dials))))
            return o->peers ? NOTES_ENOMEM : NOTES_EINVAL;
        h.ndials = o->npeers;
        for (size_t i = 0; i < o->npeers; i++)
            if ((rc = parse_addr(o->peers[i], &h.dials[i].ss))) {
                free(h.dials);
                return rc;
            }
    }
    if ((rc = hub_load(&h, home, passphrase, NULL, &r, &id, &spaces)))
        goto out;
    h.cfg.live = o->live || o->npeers;
    if ((e = uv_loop_init(&h.loop)) < 0) {
        rc = uv_err(e, "loop");
        goto out;
    }
    uv_tcp_init(&h.loop, &h.listener);
    uv_timer_init(&h.loop, &h.stop_timer);
    h.listener.data = &h;
    h.stop_timer.data = &h;
    h.listening = 1;
    if ((e = uv_tcp_bind(&h.listener, (struct sockaddr *)&ss, 0)) < 0 ||
        (e = uv_listen((uv_stream_t *)&h.listener, 16, on_connection)) < 0 ||
        (e = uv_tcp_getsockname(&h.listener, (struct sockaddr *)&bound,
                                &blen)) < 0) {
        rc = uv_err(e, "listen");
        h.stopping = 1;
        hub_maybe_stop(&h);
        loop_finish(&h.loop);
        goto out;
    }
    port = bound.ss_family == AF_INET6
               ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
               : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_start(&h.stop_timer, on_stop_timer, 50, 50);
    if (h.cfg.live) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/notes", home);
        uv_fs_event_init(&h.loop, &h.watch);
        h.watch.data = &h;
        if (uv_fs_event_start(&h.watch, on_watch, dir, 0) == 0)
            h.watching = 1;
        else
            uv_close((uv_handle_t *)&h.watch, NULL);
    }
    for (size_t i = 0; i < h.ndials; i++) {
        struct dial *d = &h.dials[i];
        d->hub = &h;
        d->backoff_ms = h.retry_ms;
        uv_timer_init(&h.loop, &d->timer);
        d->timer.data = d;
    }
    h.dialing = 1;
    for (size_t i = 0; i < h.ndials; i++)
        dial_now(&h.dials[i].timer);
    if (o->on_listen)
        o->on_listen(o->ud, port);
    loop_finish(&h.loop);
    rc = NOTES_OK;
out:
    {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_error());
        hub_unload(r, id, spaces, h.cfg.nspaces);
        free(h.dials);
        notes_sync__detail("%s", keep);
    }
    return rc;
}
