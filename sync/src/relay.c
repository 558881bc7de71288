/*
 * relay.c: the blind relay (docs/protocol.md, "Relay"). Members connect out
 * to it; a control connection (REGISTER) learns who else is in its tag, a
 * data connection (CONNECT, or ACCEPT answering INCOMING) is paired with
 * another and from then on its bytes are forwarded unchanged. The relay
 * never looks past the pairing: it holds no key and cannot read a session.
 *
 * Everything held is bounded by the limits: a connection costs one struct
 * (~1 KiB) and, once paired, at most max_queue bytes waiting per direction
 * plus one read in flight. Lists are scanned linearly: at 1,024 connections
 * a scan is cheaper than keeping tables in step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "relay_wire.h"
#include "sync_internal.h"
#include "transport_internal.h"

#define READ_MAX (64u << 10) /* one read of a spliced connection */
/* A control connection whose member does not read its messages is not
 * allowed to make the relay hold more than this for it. */
#define CONTROL_QUEUE_MAX (16u << 10)

enum rstate {
    RS_HELLO,   /* accepted, says nothing yet */
    RS_CONTROL, /* registered under tag */
    RS_WAITING, /* CONNECT sent, INCOMING sent to `to`, ACCEPT awaited */
    RS_PAIRED,  /* spliced with peer */
    RS_DOOMED,  /* REFUSED being written; closes when it is */
};

struct rconn {
    struct notes_sync_relay *r;
    struct rconn *next, *prev;
    uv_tcp_t tcp;
    uv_timer_t timer;  /* hello, idle, connect deadline or rate pause */
    int handles;       /* open of tcp and timer */
    int closing;
    enum rstate st;
    struct sockaddr_storage remote;
    uint8_t host[17];  /* the per-address limit's key */
    uint8_t tag[RELAY_TAG_LEN];
    uint8_t id[RELAY_ID_LEN];    /* control: its id; waiting: `to` */
    uint8_t token[16];           /* waiting: the token ACCEPT must bring */
    struct sync_relay_rd rd;
    /* Spliced: the other side, bytes waiting to be written on this
     * connection, and the token bucket of what this side sends. */
    struct rconn *peer;
    size_t inq;
    double tokens;
    uint64_t refill_ns;
    int paused_rate, paused_queue;
    int draining;      /* reads no more; closes once inq is written */
    uint64_t up;       /* bytes read from this side while spliced */
    struct rwrite *rw; /* the buffer of the read in progress */
    unsigned pairing;  /* which pairing since start (the tests' hook) */
};

struct rwrite {
    uv_write_t req;
    struct rconn *c; /* the connection written to */
    size_t n;
    uint8_t data[];
};

struct notes_sync_relay {
    uv_loop_t *loop;
    notes_sync_relay_opts o;
    uv_tcp_t listener;
    uv_timer_t retry;  /* accepting again after running out of memory */
    int handles;       /* the listener, connections' handles, rejects */
    int stopping;
    notes_sync_hub_done_fn done;
    void *done_arg;
    struct rconn *conns;
    notes_sync_relay_stats st;
    uint64_t log_window;  /* refusal lines: this second's start (loop ms), */
    unsigned logged;      /* lines said in it, */
    uint64_t unlogged;    /* and refusals not said since the last line */
    /* Reads before the pairing land here: libuv calls alloc, read and the
     * read callback of one stream back to back, so one buffer serves all. */
    uint8_t rbuf[4096];
};

__attribute__((format(printf, 2, 3))) static void rlog(
    struct notes_sync_relay *r, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    if (!r->o.on_log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    r->o.on_log(r->o.ud, line);
}

/* "a.b.c.d:port" or "[v6]:port" for the log. */
static const char *addr_str(const struct sockaddr_storage *ss, char *out,
                            size_t n);

/*
 * Count a refusal and say it, at most REFUSAL_LOGS lines a second: a
 * flood of strangers must not turn into a flood of log lines. The lines
 * left out are counted in the next one.
 */
#define REFUSAL_LOGS 20
static void log_refusal(struct rconn *c, const char *why)
{
    struct notes_sync_relay *r = c->r;
    uint64_t now = uv_now(r->loop);
    char a[80];
    r->st.refused++;
    if (now - r->log_window >= 1000) {
        r->log_window = now;
        r->logged = 0;
    }
    if (r->logged >= REFUSAL_LOGS) {
        r->unlogged++;
        return;
    }
    r->logged++;
    if (r->unlogged)
        rlog(r, "refused %s: %s (and %llu more not shown)",
             addr_str(&c->remote, a, sizeof(a)), why,
             (unsigned long long)r->unlogged);
    else
        rlog(r, "refused %s: %s", addr_str(&c->remote, a, sizeof(a)), why);
    r->unlogged = 0;
}
static const char *addr_str(const struct sockaddr_storage *ss, char *out,
                            size_t n)
{
    char ip[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        uv_ip4_name(s4, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(out, n, "%s:%d", ip, port);
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(s6, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(out, n, "[%s]:%d", ip, port);
    }
    return out;
}

/* An IPv4 address mapped into IPv6 (a listener on [::]) is told to the
 * member as the IPv4 address it is. */
static void unmap_v4(struct sockaddr_storage *ss)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (ss->ss_family != AF_INET6)
        return;
    memcpy(&s6, ss, sizeof(s6));
    if (!IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr))
        return;
    memset(ss, 0, sizeof(*ss));
    s4->sin_family = AF_INET;
    s4->sin_port = s6.sin6_port;
    memcpy(&s4->sin_addr, s6.sin6_addr.s6_addr + 12, 4);
}

/* The per-address key: the IPv4 address, or the IPv6 /64 (a host can draw
 * addresses from its /64 at will), as the hub counts strangers. */
static void host_key(const struct sockaddr_storage *ss, uint8_t key[17])
{
    memset(key, 0, 17);
    if (ss->ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        key[0] = 6;
        memcpy(key + 1, &((const struct sockaddr_in6 *)ss)->sin6_addr, 8);
    }
}

/* ---- closing ---- */

static void maybe_done(struct notes_sync_relay *r)
{
    if (r->stopping && r->handles == 0 && r->done) {
        notes_sync_hub_done_fn done = r->done;
        r->done = NULL;
        done(r->done_arg);
    }
}

static void on_conn_handle_closed(uv_handle_t *hd)
{
    struct rconn *c = hd->data;
    struct notes_sync_relay *r = c->r;
    r->handles--;
    if (--c->handles > 0)
        return;
    free(c->rw);
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    maybe_done(r);
}

static void send_msg(struct rconn *c, uint8_t type, const void *p, size_t n);
static void conn_close(struct rconn *c);
static void on_timer(uv_timer_t *t);
static void refuse(struct rconn *c, const char *why);

/* A spliced side reads no more and closes once what it was sent has been
 * written, within connect_ms (a member that stops reading cannot hold it). */
static void drain(struct rconn *c)
{
    if (c->closing || c->draining)
        return;
    c->draining = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->inq == 0)
        conn_close(c);
    else
        uv_timer_start(&c->timer, on_timer, c->r->o.connect_ms, 0);
}

/* A spliced side has gone: the other one drains. */
static void peer_gone(struct rconn *c)
{
    c->peer = NULL;
    drain(c);
}

/* A control or waiting connection gives up its role (closed or refused). */
static void leave(struct rconn *c)
{
    struct notes_sync_relay *r = c->r;
    if (c->st == RS_WAITING)
        r->st.waiting--;
    if (c->st != RS_CONTROL)
        return;
    r->st.members--;
    for (struct rconn *o = r->conns; o && !r->stopping; o = o->next) {
        if (o == c || o->closing || memcmp(o->tag, c->tag, RELAY_TAG_LEN) != 0)
            continue;
        if (o->st == RS_CONTROL)
            send_msg(o, RELAY_GONE, c->id, RELAY_ID_LEN);
        else if (o->st == RS_WAITING && memcmp(o->id, c->id, RELAY_ID_LEN) == 0)
            refuse(o, "member left"); /* its ACCEPT will not come */
    }
}

static void conn_close(struct rconn *c)
{
    struct notes_sync_relay *r = c->r;
    if (c->closing)
        return;
    c->closing = 1;
    r->st.conns--;
    if (c->st == RS_CONTROL || c->st == RS_WAITING) {
        leave(c);
    } else if (c->st == RS_PAIRED) {
        char a[80];
        if (c->peer) {
            r->st.pairings--;
            rlog(r, "pairing ended by %s: %llu bytes in, %llu out",
                 addr_str(&c->remote, a, sizeof(a)), (unsigned long long)c->up,
                 (unsigned long long)c->peer->up);
            peer_gone(c->peer);
        }
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* ---- writing ---- */

static void resume(struct rconn *c);

static void on_written(uv_write_t *req, int status)
{
    struct rwrite *w = (struct rwrite *)req;
    struct rconn *c = w->c;
    c->inq -= w->n;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->st == RS_DOOMED) {
        if (c->inq == 0)
            conn_close(c);
    } else if (c->st == RS_PAIRED) {
        if (c->draining) {
            if (c->inq == 0)
                conn_close(c);
        } else if (c->peer->paused_queue && c->inq < c->r->o.max_queue) {
            c->peer->paused_queue = 0;
            resume(c->peer);
        }
    }
}

/* Queue w (its data already filled) on c. */
static void write_out(struct rconn *c, struct rwrite *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->n);
    w->c = c;
    c->inq += w->n;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        c->inq -= w->n;
        free(w);
        conn_close(c);
    }
}

static void send_msg(struct rconn *c, uint8_t type, const void *p, size_t n)
{
    struct rwrite *w;
    if (c->closing)
        return;
    /* What the kernel has not taken yet (inq also counts what it took
     * whose callbacks are due: a REGISTER into a big tag queues a PRESENT
     * per member at once). */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > CONTROL_QUEUE_MAX ||
        !(w = malloc(sizeof(*w) + RELAY_MSG_MAX))) {
        conn_close(c); /* a member that does not read is let go */
        return;
    }
    w->n = sync_relay_msg(w->data, type, p, n);
    write_out(c, w);
}

/* Answer REFUSED and close once it is written. */
static void refuse(struct rconn *c, const char *why)
{
    if (c->closing || c->st == RS_DOOMED)
        return;
    log_refusal(c, why);
    leave(c); /* the others hear GONE, the counts drop */
    c->st = RS_DOOMED;
    uv_read_stop((uv_stream_t *)&c->tcp);
    send_msg(c, RELAY_REFUSED, why, strlen(why));
    /* A member that never reads its REFUSED cannot hold the slot. */
    if (!c->closing)
        uv_timer_start(&c->timer, on_timer, c->r->o.hello_ms, 0);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    struct rconn *c = t->data;
    switch (c->st) {
    case RS_HELLO:
        refuse(c, "timeout: say what the connection is");
        break;
    case RS_CONTROL:
        refuse(c, "timeout: control connection silent");
        break;
    case RS_WAITING:
        refuse(c, "timeout: no ACCEPT");
        break;
    case RS_PAIRED:
        if (c->draining) {
            conn_close(c); /* its member did not read what was left */
            break;
        }
        c->paused_rate = 0;
        resume(c);
        break;
    case RS_DOOMED:
        conn_close(c);
        break;
    }
}

/* ---- splicing ---- */

static void refill(struct rconn *c)
{
    uint64_t now = uv_hrtime();
    const notes_sync_relay_opts *o = &c->r->o;
    c->tokens += (double)o->rate * (double)(now - c->refill_ns) / 1e9;
    if (c->tokens > (double)o->burst)
        c->tokens = (double)o->burst;
    c->refill_ns = now;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf);

static void resume(struct rconn *c)
{
    if (c->closing || c->draining || !c->peer || c->paused_rate ||
        c->paused_queue)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

/* After a read, stop reading a side that has used its tokens or whose
 * peer has max_queue waiting. */
static void throttle(struct rconn *c)
{
    const notes_sync_relay_opts *o = &c->r->o;
    if (c->closing || c->draining || !c->peer)
        return;
    refill(c);
    if (c->peer->inq >= o->max_queue)
        c->paused_queue = 1;
    if (c->tokens < 1.0) {
        /* Wait for a useful amount, not for each byte. */
        double want = o->burst < 16384 ? (double)o->burst : 16384.0;
        uint64_t ms = (uint64_t)((want - c->tokens) * 1000.0 / (double)o->rate) + 1;
        c->paused_rate = 1;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
    if (c->paused_rate || c->paused_queue)
        uv_read_stop((uv_stream_t *)&c->tcp);
}

static void splice_read(struct rconn *c, ssize_t n)
{
    struct rwrite *w = c->rw;
    c->rw = NULL;
    if (n <= 0 || !c->peer) {
        free(w);
        if (n == UV_EOF && c->peer) {
            /* The end of one side ends the pairing once both sides have
             * written what they hold: nothing sent before it is lost. */
            struct rconn *p = c->peer;
            drain(c);
            drain(p);
        } else if (n < 0) { /* an error, or no memory for the read */
            conn_close(c);
        }
        return;
    }
    w->n = (size_t)n;
    if (notes_sync__relay_tamper) { /* tests only: a hostile relay */
        int act = notes_sync__relay_tamper(w->data, w->n, c->pairing, c->up);
        c->up += (uint64_t)n;
        if (act) {
            free(w);
            if (act == 2)
                conn_close(c);
            return;
        }
        c->up -= (uint64_t)n;
    }
    c->tokens -= (double)n;
    c->up += (uint64_t)n;
    c->r->st.forwarded += (uint64_t)n;
    write_out(c->peer, w);
    throttle(c);
}

/* Pair waiting connection a (CONNECT) with b (ACCEPT). */
static void pair(struct rconn *a, struct rconn *b)
{
    struct notes_sync_relay *r = a->r;
    uint8_t addr[RELAY_ADDR_LEN];
    char sa[80], sb[80];
    r->st.waiting--;
    r->st.pairings++;
    r->st.paired++;
    a->pairing = b->pairing = (unsigned)(r->st.paired - 1);
    a->st = b->st = RS_PAIRED;
    a->peer = b;
    b->peer = a;
    uv_timer_stop(&a->timer);
    uv_timer_stop(&b->timer);
    a->tokens = b->tokens = (double)r->o.burst;
    a->refill_ns = b->refill_ns = uv_hrtime();
    sync_relay_addr_put(addr, (const struct sockaddr *)&b->remote);
    send_msg(a, RELAY_PAIRED, addr, sizeof(addr));
    sync_relay_addr_put(addr, (const struct sockaddr *)&a->remote);
    send_msg(b, RELAY_PAIRED, addr, sizeof(addr));
    rlog(r, "paired %s with %s", addr_str(&a->remote, sa, sizeof(sa)),
         addr_str(&b->remote, sb, sizeof(sb)));
    /* a has been reading all along (anything it sent is an error); b's
     * read callback resumes after this message. */
}

/* ---- messages before the pairing ---- */

static struct rconn *find_member(struct notes_sync_relay *r,
                                 const uint8_t tag[RELAY_TAG_LEN],
                                 const uint8_t id[RELAY_ID_LEN])
{
    for (struct rconn *o = r->conns; o; o = o->next)
        if (!o->closing && o->st == RS_CONTROL &&
            memcmp(o->tag, tag, RELAY_TAG_LEN) == 0 &&
            memcmp(o->id, id, RELAY_ID_LEN) == 0)
            return o;
    return NULL;
}

static unsigned count_in_tag(struct notes_sync_relay *r,
                             const uint8_t tag[RELAY_TAG_LEN], enum rstate st)
{
    unsigned n = 0;
    for (const struct rconn *o = r->conns; o; o = o->next)
        n += !o->closing && o->st == st &&
             memcmp(o->tag, tag, RELAY_TAG_LEN) == 0;
    return n;
}

static void on_register(struct rconn *c, const uint8_t *p)
{
    struct notes_sync_relay *r = c->r;
    uint8_t msg[RELAY_ID_LEN + RELAY_ADDR_LEN];
    if (count_in_tag(r, p, RS_CONTROL) >= r->o.max_per_tag) {
        refuse(c, "tag full");
        return;
    }
    if (find_member(r, p, p + RELAY_TAG_LEN)) {
        refuse(c, "id taken");
        return;
    }
    memcpy(c->tag, p, RELAY_TAG_LEN);
    memcpy(c->id, p + RELAY_TAG_LEN, RELAY_ID_LEN);
    c->st = RS_CONTROL;
    r->st.members++;
    sync_relay_addr_put(msg, (const struct sockaddr *)&c->remote);
    send_msg(c, RELAY_WELCOME, msg, RELAY_ADDR_LEN);
    /* It learns of the others, and they of it. */
    for (struct rconn *o = r->conns; o && !c->closing; o = o->next) {
        if (o == c || o->closing || o->st != RS_CONTROL ||
            memcmp(o->tag, c->tag, RELAY_TAG_LEN) != 0)
            continue;
        memcpy(msg, o->id, RELAY_ID_LEN);
        sync_relay_addr_put(msg + RELAY_ID_LEN, (const struct sockaddr *)&o->remote);
        send_msg(c, RELAY_PRESENT, msg, sizeof(msg));
        memcpy(msg, c->id, RELAY_ID_LEN);
        sync_relay_addr_put(msg + RELAY_ID_LEN, (const struct sockaddr *)&c->remote);
        send_msg(o, RELAY_PRESENT, msg, sizeof(msg));
    }
    if (!c->closing)
        uv_timer_start(&c->timer, on_timer, r->o.control_idle_ms, 0);
}

static void on_connect(struct rconn *c, const uint8_t *p)
{
    struct notes_sync_relay *r = c->r;
    const uint8_t *from = p + RELAY_TAG_LEN, *to = from + RELAY_ID_LEN;
    struct rconn *target = find_member(r, p, to);
    uint8_t msg[16 + RELAY_ID_LEN];
    if (!target) {
        refuse(c, "no such member");
        return;
    }
    if (count_in_tag(r, p, RS_WAITING) >= r->o.max_waiting) {
        refuse(c, "too many waiting");
        return;
    }
    memcpy(c->tag, p, RELAY_TAG_LEN);
    memcpy(c->id, to, RELAY_ID_LEN);
    notes__random(c->token, sizeof(c->token));
    c->st = RS_WAITING;
    r->st.waiting++;
    memcpy(msg, c->token, 16);
    memcpy(msg + 16, from, RELAY_ID_LEN);
    send_msg(target, RELAY_INCOMING, msg, sizeof(msg));
    uv_timer_start(&c->timer, on_timer, r->o.connect_ms, 0);
}

/* Tokens compared in constant time: the relay's timing tells nothing of
 * a waiting token to someone guessing it. */
static int token_eq(const uint8_t a[16], const uint8_t b[16])
{
    uint8_t d = 0;
    for (int i = 0; i < 16; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static void on_accept(struct rconn *c, const uint8_t *p)
{
    struct rconn *a = NULL;
    for (struct rconn *o = c->r->conns; o; o = o->next)
        if (!o->closing && o->st == RS_WAITING &&
            token_eq(o->token, p)) {
            a = o;
            break;
        }
    if (!a) {
        refuse(c, "unknown token");
        return;
    }
    pair(a, c);
}

/* One message; 0 to go on reading messages, -1 once the connection has
 * no more to say before its pairing (or was refused). trailing: more bytes
 * came after it in the same read. */
static int on_msg(struct rconn *c, uint8_t type, const uint8_t *p, size_t len,
                  int trailing)
{
    static const struct {
        size_t len;
        enum rstate in;
        uint8_t type;
    } ok[] = {
        {RELAY_TAG_LEN + RELAY_ID_LEN, RS_HELLO, RELAY_REGISTER},
        {RELAY_TAG_LEN + 2 * RELAY_ID_LEN, RS_HELLO, RELAY_CONNECT},
        {16, RS_HELLO, RELAY_ACCEPT},
        {0, RS_CONTROL, RELAY_PING},
    };
    size_t i;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]) && ok[i].type != type; i++)
        ;
    if (i == sizeof(ok) / sizeof(ok[0])) {
        refuse(c, c->st == RS_WAITING ? "data before PAIRED" : "unknown message");
        return -1;
    }
    if (ok[i].len != len) {
        refuse(c, "wrong length");
        return -1;
    }
    if (ok[i].in != c->st) {
        refuse(c, c->st == RS_WAITING ? "data before PAIRED"
                                      : "unexpected message");
        return -1;
    }
    /* CONNECT and ACCEPT are a connection's last words until PAIRED: a
     * member sends nothing before it has seen that. */
    if (trailing && (type == RELAY_CONNECT || type == RELAY_ACCEPT)) {
        refuse(c, "data before PAIRED");
        return -1;
    }
    switch (type) {
    case RELAY_REGISTER:
        on_register(c, p);
        return c->st == RS_CONTROL ? 0 : -1;
    case RELAY_CONNECT:
        on_connect(c, p);
        return -1;
    case RELAY_ACCEPT:
        on_accept(c, p);
        return -1;
    default: /* PING */
        send_msg(c, RELAY_PONG, NULL, 0);
        uv_timer_start(&c->timer, on_timer, c->r->o.control_idle_ms, 0);
        return 0;
    }
}

static void msgs_read(struct rconn *c, const uint8_t *in, size_t n)
{
    while (n > 0 && !c->closing) {
        size_t used;
        uint8_t type;
        const uint8_t *p;
        size_t len;
        int more = sync_relay_take(&c->rd, in, n, &used, &type, &p, &len);
        in += used;
        n -= used;
        if (!more)
            return;
        if (on_msg(c, type, p, len, n > 0) < 0)
            return;
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *buf)
{
    struct rconn *c = hd->data;
    struct rwrite *w;
    size_t n = READ_MAX, room;
    (void)sz;
    if (c->st != RS_PAIRED) {
        *buf = uv_buf_init((char *)c->r->rbuf, sizeof(c->r->rbuf));
        return;
    }
    /* Never read more than the tokens and the peer's queue allow. */
    refill(c);
    if (c->tokens < (double)n)
        n = c->tokens >= 1.0 ? (size_t)c->tokens : 1;
    room = c->peer && c->peer->inq < c->r->o.max_queue
               ? c->r->o.max_queue - c->peer->inq : 1;
    if (n > room)
        n = room;
    /* Held by the connection until on_read, which follows at once. */
    free(c->rw);
    if (!(c->rw = w = malloc(sizeof(*w) + n))) {
        *buf = uv_buf_init(NULL, 0); /* on_read sees UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)w->data, (unsigned)n);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct rconn *c = st->data;
    if (buf->base != (char *)c->r->rbuf) {
        if (buf->base)
            splice_read(c, n);
        else if (n < 0)
            conn_close(c); /* no memory for the read */
        return;
    }
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->st == RS_WAITING) {
        refuse(c, "data before PAIRED");
        return;
    }
    msgs_read(c, (const uint8_t *)buf->base, (size_t)n);
}

/* ---- accepting ---- */

static unsigned count_host(struct notes_sync_relay *r, const uint8_t key[17])
{
    unsigned n = 0;
    for (const struct rconn *c = r->conns; c; c = c->next)
        n += !c->closing && memcmp(c->host, key, 17) == 0;
    return n;
}

/* Over a limit: told so and closed at once, holding nothing meanwhile (a
 * fresh socket's send buffer is empty, so the line goes out now or the
 * member sees the close alone). */
static void turn_away(struct rconn *c, const char *why)
{
    uint8_t m[RELAY_MSG_MAX];
    uv_buf_t b = uv_buf_init((char *)m, (unsigned)sync_relay_msg(m, RELAY_REFUSED, why, strlen(why)));
    log_refusal(c, why);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    conn_close(c);
}

static void on_connection(uv_stream_t *ls, int status);

static void on_retry(uv_timer_t *t)
{
    struct notes_sync_relay *r = t->data;
    on_connection((uv_stream_t *)&r->listener, 0);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct notes_sync_relay *r = ls->data;
    struct rconn *c;
    int len = sizeof(c->remote);
    if (status < 0 || r->stopping)
        return;
    /* A connection libuv offers and nobody accepts stops the listener
     * until one is: out of memory, it is offered again shortly. */
    if (!(c = calloc(1, sizeof(*c)))) {
        uv_timer_start(&r->retry, on_retry, 100, 0);
        return;
    }
    c->r = r;
    if (uv_tcp_init(r->loop, &c->tcp) < 0) {
        free(c);
        uv_timer_start(&r->retry, on_retry, 100, 0);
        return;
    }
    (void)uv_timer_init(r->loop, &c->timer); /* cannot fail on Unix */
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    r->handles += 2;
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->st.conns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    r->st.accepted++;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->remote, &len) < 0) {
        turn_away(c, "no address");
        return;
    }
    unmap_v4(&c->remote);
    host_key(&c->remote, c->host);
    /* This one counts itself: over means more than the limit. */
    if (r->st.conns > r->o.max_conns) {
        turn_away(c, "relay full");
        return;
    }
    if (count_host(r, c->host) > r->o.max_per_addr) {
        turn_away(c, "too many connections from this address");
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timer, r->o.hello_ms, 0);
}

/* ---- the API ---- */

static void on_relay_handle_closed(uv_handle_t *hd)
{
    struct notes_sync_relay *r = hd->data;
    r->handles--;
    maybe_done(r);
}

static void free_on_done(void *arg)
{
    free(arg);
}

int notes_sync_relay_start(uv_loop_t *loop, const notes_sync_relay_opts *o,
                           notes_sync_relay **out)
{
    struct notes_sync_relay *r;
    struct sockaddr_storage ss, bound;
    int blen = sizeof(bound), e, rc;
    const char *listen = o && o->listen ? o->listen : "0.0.0.0:7656";
    *out = NULL;
    if ((rc = notes_sync__parse_addr(listen, &ss)))
        return rc;
    if (!(r = calloc(1, sizeof(*r))))
        return NOTES_ENOMEM;
    if (o)
        r->o = *o;
    r->o.listen = listen;
#define DEF(f, v) if (!r->o.f) r->o.f = (v)
    DEF(max_conns, 1024);
    DEF(max_per_addr, 32);
    DEF(max_per_tag, 64);
    DEF(max_waiting, 16);
    DEF(hello_ms, 5000);
    DEF(connect_ms, 10000);
    DEF(control_idle_ms, 90000);
    DEF(rate, 1u << 20);
    DEF(burst, 4u << 20);
    DEF(max_queue, 64u << 10);
#undef DEF
    r->loop = loop;
    if ((e = uv_tcp_init(loop, &r->listener)) < 0) {
        free(r);
        return notes_sync__uv_err(e, "listen");
    }
    r->listener.data = r;
    (void)uv_timer_init(loop, &r->retry); /* cannot fail on Unix */
    r->retry.data = r;
    r->handles = 2;
    if ((e = uv_tcp_bind(&r->listener, (struct sockaddr *)&ss, 0)) < 0 ||
        (e = uv_listen((uv_stream_t *)&r->listener, 128, on_connection)) < 0 ||
        (e = uv_tcp_getsockname(&r->listener, (struct sockaddr *)&bound, &blen)) < 0) {
        rc = notes_sync__uv_err(e, "listen");
        /* The listener closes on the caller's loop; the relay goes with it. */
        r->stopping = 1;
        r->done = free_on_done;
        r->done_arg = r;
        uv_close((uv_handle_t *)&r->listener, on_relay_handle_closed);
        uv_close((uv_handle_t *)&r->retry, on_relay_handle_closed);
        return rc;
    }
    if (r->o.on_listen)
        r->o.on_listen(r->o.ud, ntohs(bound.ss_family == AF_INET6
                                          ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                          : ((struct sockaddr_in *)&bound)->sin_port));
    *out = r;
    return NOTES_OK;
}

void notes_sync_relay_stop(notes_sync_relay *r, notes_sync_hub_done_fn done,
                           void *arg)
{
    if (!r || r->stopping)
        return;
    r->stopping = 1;
    r->done = done;
    r->done_arg = arg;
    uv_close((uv_handle_t *)&r->listener, on_relay_handle_closed);
    uv_close((uv_handle_t *)&r->retry, on_relay_handle_closed);
    for (struct rconn *c = r->conns; c; c = c->next)
        conn_close(c);
}

void notes_sync_relay_free(notes_sync_relay *r)
{
    free(r);
}

void notes_sync_relay_stats_get(const notes_sync_relay *r,
                                notes_sync_relay_stats *st)
{
    *st = r->st;
}
