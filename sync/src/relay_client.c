/*
 * relay_client.c: a member's side of the relay (docs/protocol.md, "Relay").
 * The hub keeps one control connection per (relay, space); through it the
 * relay says who is present, and asks us to answer a member's call. Each
 * pairing is a data connection (CONNECT when our id is the smaller, ACCEPT
 * when the relay says INCOMING) that becomes an ordinary session once the
 * relay says PAIRED, plus one try at a direct connection from the same
 * local port (the direct upgrade), which ends the relayed one if it opens.
 */
#include <stdlib.h>
#include <string.h>

#include <netdb.h>

#include <uv.h>

#include "transport_internal.h"

#define DAY_S 86400u
#define CTL_TICK_MS 1000u      /* pings, liveness, member backoffs */
#define CTL_DEAD_MS 90000u     /* a relay silent this long is gone */
#define BACKOFF_MAX_MS 30000u
#define PAIR_MS 15000u         /* a data connection waits for PAIRED */
#define PUNCH_MS 5000u         /* the direct upgrade gets this long */
#define INCOMING_MAX 8u        /* answers waiting for PAIRED, per control */

/* A data connection's state while it talks to the relay. */
struct relay_pre {
    struct sync_relay_rd rd;
    uint8_t hello[RELAY_MSG_MAX];
    size_t hello_len;
};

struct ctl_write {
    uv_write_t req;
    uint8_t data[RELAY_MSG_MAX];
};

static void ctl_tick(uv_timer_t *t);

static uint64_t utc_day(void)
{
    return notes_sync__unix_ms() / 1000u / DAY_S;
}

static void ctl_tag(const struct relay_ctl *ctl, uint8_t tag[RELAY_TAG_LEN])
{
    sync_relay_tag(ctl->hub->cfg.spaces[ctl->space].secret, ctl->day, tag);
}

static void ctl_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as a read error or silence */
    free(req);
}

static void ctl_send(struct relay_ctl *ctl, uint8_t type, const void *p,
                     size_t n)
{
    struct ctl_write *w = malloc(sizeof(*w));
    uv_buf_t b;
    if (!w)
        return;
    b = uv_buf_init((char *)w->data,
                    (unsigned)sync_relay_msg(w->data, type, p, n));
    if (uv_write(&w->req, (uv_stream_t *)&ctl->tcp, &b, 1, ctl_written) < 0)
        free(w);
}

static void ctl_tcp_closed(uv_handle_t *hd)
{
    struct relay_ctl *ctl = hd->data;
    struct notes_sync_hub *h = ctl->hub;
    ctl->tcp_open = 0;
    h->nhandles--;
    if (!h->stopping && !ctl->client) {
        uv_timer_start(&ctl->timer, ctl_tick, ctl->backoff_ms, 0);
        ctl->backoff_ms = ctl->backoff_ms >= BACKOFF_MAX_MS / 2
                              ? BACKOFF_MAX_MS
                              : ctl->backoff_ms * 2;
    }
    notes_sync__hub_check_done(h);
}

/* The control connection ended (or never was): forget who was present
 * (their pairings through this relay end on their own) and reconnect after
 * the backoff. */
static void ctl_drop(struct relay_ctl *ctl, const char *why)
{
    struct notes_sync_hub *h = ctl->hub;
    if (!ctl->tcp_open || uv_is_closing((uv_handle_t *)&ctl->tcp))
        return;
    if (why)
        notes_sync__hub_log(h, "relay %s (space %s): %s", ctl->name,
                            h->cfg.spaces[ctl->space].name, why);
    if (ctl->client == 1 && !h->client) {
        /* notes_sync_once found no member: that is its answer. */
        h->client_rc = NOTES_SYNC_ENET;
        snprintf(h->client_detail, sizeof(h->client_detail),
                 "relay %s: %s", ctl->name,
                 why ? why : "cannot reach the relay");
        ctl->client = 3; /* done: no reconnect */
    }
    ctl->registered = 0;
    memset(ctl->m, 0, sizeof(ctl->m));
    memset(&ctl->rd, 0, sizeof(ctl->rd));
    uv_timer_stop(&ctl->timer);
    uv_close((uv_handle_t *)&ctl->tcp, ctl_tcp_closed);
    notes_sync__state_dirty(h);
}

static struct rmember *member_find(struct relay_ctl *ctl,
                                   const uint8_t id[RELAY_ID_LEN])
{
    for (size_t i = 0; i < RELAY_MEMBERS; i++)
        if (ctl->m[i].used && memcmp(ctl->m[i].id, id, RELAY_ID_LEN) == 0)
            return &ctl->m[i];
    return NULL;
}

static void conn_give_up(struct conn *c, int rc, const char *why)
{
    c->rc = rc;
    notes_sync_session_abort(c->s, rc, why);
    notes_sync__conn_close(c);
}

/* Open a data connection to the relay that says `type` (CONNECT or
 * ACCEPT) once connected, from a socket whose port the upgrade may reuse. */
static void data_start(struct relay_ctl *ctl, struct conn *c, uint8_t type,
                       const void *payload, size_t n)
{
    struct sockaddr_storage any;
    c->kind = CONN_RELAYED;
    c->rctl = ctl;
    c->relay_phase = 1;
    if (!(c->pre = calloc(1, sizeof(*c->pre)))) {
        conn_give_up(c, NOTES_ENOMEM, "out of memory");
        return;
    }
    c->pre->hello_len = sync_relay_msg(c->pre->hello, type, payload, n);
    memset(&any, 0, sizeof(any));
    any.ss_family = ctl->ss.ss_family;
    if (notes_sync__socket_for(c, (struct sockaddr *)&any) != NOTES_OK) {
        conn_give_up(c, NOTES_SYNC_ENET, notes_sync_last_detail());
        return;
    }
    notes_sync__conn_arm(c, PAIR_MS);
    notes_sync__conn_dial(c, &ctl->ss);
}

/* Call member m through the relay: we are the handshake's initiator. */
static void member_dial(struct relay_ctl *ctl, struct rmember *m)
{
    struct notes_sync_hub *h = ctl->hub;
    uint8_t p[RELAY_TAG_LEN + 2 * RELAY_ID_LEN];
    struct conn *c = notes_sync__conn_new(h, NOTES_SYNC_INITIATOR, ctl->space);
    if (!c) {
        m->next_ms = uv_now(h->loop) + 1000;
        return;
    }
    m->state = RM_BUSY;
    memcpy(c->relay_peer, m->id, RELAY_ID_LEN);
    if (ctl->client)
        h->client = c;
    else
        h->active++;
    ctl_tag(ctl, p);
    memcpy(p + RELAY_TAG_LEN, ctl->id, RELAY_ID_LEN);
    memcpy(p + RELAY_TAG_LEN + RELAY_ID_LEN, m->id, RELAY_ID_LEN);
    notes_sync__state_dirty(h);
    data_start(ctl, c, RELAY_CONNECT, p, sizeof(p));
}

/* Dial the members that are ours to dial and due. notes_sync_once dials
 * the first member present, whatever the ids say, and only one. */
static void ctl_consider(struct relay_ctl *ctl)
{
    struct notes_sync_hub *h = ctl->hub;
    uint64_t now = uv_now(h->loop);
    if (h->stopping || !ctl->registered)
        return;
    for (size_t i = 0; i < RELAY_MEMBERS; i++) {
        struct rmember *m = &ctl->m[i];
        if (!m->used || m->state != RM_IDLE || now < m->next_ms)
            continue;
        if (ctl->client) {
            if (ctl->client == 1 && !h->client) {
                ctl->client = 2; /* one dial */
                member_dial(ctl, m);
            }
            return;
        }
        if (memcmp(ctl->id, m->id, RELAY_ID_LEN) < 0)
            member_dial(ctl, m);
    }
}

/* The relay says a member calls us: answer as the handshake's responder. */
static void ctl_incoming(struct relay_ctl *ctl, const uint8_t *p)
{
    struct notes_sync_hub *h = ctl->hub;
    struct conn *c;
    unsigned waiting = 0;
    if (h->stopping || ctl->client)
        return;
    /* Anyone in the tag can make the relay say INCOMING: at most
     * INCOMING_MAX answers of ours wait for their pairing at a time, and
     * the hub's connection limit holds for them too. */
    for (const struct conn *o = h->conns; o; o = o->next)
        if (o->rctl == ctl && o->relay_phase)
            waiting++;
    if (waiting >= INCOMING_MAX || h->active >= h->max_conns)
        return;
    if (!(c = notes_sync__conn_new(h, NOTES_SYNC_RESPONDER, ctl->space)))
        return;
    memcpy(c->relay_peer, p + 16, RELAY_ID_LEN);
    h->active++;
    data_start(ctl, c, RELAY_ACCEPT, p, 16);
}

static void ctl_message(struct relay_ctl *ctl, uint8_t type, const uint8_t *p,
                        size_t n)
{
    struct notes_sync_hub *h = ctl->hub;
    struct rmember *m;
    char why[300];
    switch (type) {
    case RELAY_WELCOME:
        if (n != RELAY_ADDR_LEN || ctl->registered)
            break;
        ctl->registered = 1;
        ctl->since = uv_now(h->loop);
        ctl->backoff_ms = h->retry_ms;
        notes_sync__hub_log(h, "relay %s: meeting space %s there", ctl->name,
                            h->cfg.spaces[ctl->space].name);
        notes_sync__state_dirty(h);
        return;
    case RELAY_PRESENT:
        if (n != RELAY_ID_LEN + RELAY_ADDR_LEN || !ctl->registered)
            break;
        if (memcmp(p, ctl->id, RELAY_ID_LEN) == 0 || member_find(ctl, p))
            return;
        for (size_t i = 0; i < RELAY_MEMBERS; i++) {
            if (ctl->m[i].used)
                continue;
            memset(&ctl->m[i], 0, sizeof(ctl->m[i]));
            ctl->m[i].used = 1;
            memcpy(ctl->m[i].id, p, RELAY_ID_LEN);
            ctl->m[i].backoff_ms = h->retry_ms;
            break;
        }
        ctl_consider(ctl);
        return;
    case RELAY_GONE:
        if (n != RELAY_ID_LEN || !ctl->registered)
            break;
        if ((m = member_find(ctl, p)))
            m->used = 0;
        return;
    case RELAY_INCOMING:
        if (n != 32 || !ctl->registered)
            break;
        ctl_incoming(ctl, p);
        return;
    case RELAY_PONG:
        if (n != 0)
            break;
        return;
    case RELAY_REFUSED:
        snprintf(why, sizeof(why), "refused: %.*s", (int)n, (const char *)p);
        for (char *q = why; *q; q++)
            if (*q < ' ' || *q > '~')
                *q = '?';
        ctl_drop(ctl, why);
        return;
    default:
        break;
    }
    ctl_drop(ctl, "sent a message out of place; reconnecting");
}

static void ctl_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct relay_ctl *ctl = st->data;
    const uint8_t *in = (const uint8_t *)buf->base;
    size_t off = 0;
    if (n < 0) {
        ctl_drop(ctl, n == UV_EOF ? "the relay closed the connection"
                                  : uv_strerror((int)n));
        return;
    }
    ctl->last_rx = uv_now(ctl->hub->loop);
    while (off < (size_t)n && ctl->tcp_open &&
           !uv_is_closing((uv_handle_t *)&ctl->tcp)) {
        size_t used, len;
        uint8_t type;
        const uint8_t *p;
        int got = sync_relay_take(&ctl->rd, in + off, (size_t)n - off, &used,
                                  &type, &p, &len);
        off += used;
        if (got)
            ctl_message(ctl, type, p, len);
    }
}

static void ctl_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    struct relay_ctl *ctl = hd->data;
    (void)want;
    buf->base = ctl->hub->readbuf; /* consumed before the next read */
    buf->len = READ_BUF;
}

static void ctl_on_connect(uv_connect_t *req, int status)
{
    struct relay_ctl *ctl = req->data;
    struct notes_sync_hub *h = ctl->hub;
    uint8_t p[RELAY_TAG_LEN + RELAY_ID_LEN];
    free(req);
    if (status < 0 || h->stopping || uv_is_closing((uv_handle_t *)&ctl->tcp)) {
        /* Said once, not at every retry of a relay that is down. */
        ctl_drop(ctl, status < 0 && status != UV_ECANCELED &&
                              (ctl->client || ctl->backoff_ms <= h->retry_ms)
                          ? uv_strerror(status)
                          : NULL);
        return;
    }
    /* A fresh id per connection: it links nothing across connections. */
    notes__random(ctl->id, RELAY_ID_LEN);
    ctl->day = utc_day();
    ctl_tag(ctl, p);
    memcpy(p + RELAY_TAG_LEN, ctl->id, RELAY_ID_LEN);
    ctl_send(ctl, RELAY_REGISTER, p, sizeof(p));
    ctl->last_rx = ctl->last_ping = uv_now(h->loop);
    uv_tcp_nodelay(&ctl->tcp, 1);
    if (uv_read_start((uv_stream_t *)&ctl->tcp, ctl_alloc, ctl_on_read) < 0) {
        ctl_drop(ctl, NULL);
        return;
    }
    uv_timer_start(&ctl->timer, ctl_tick, CTL_TICK_MS, CTL_TICK_MS);
}

static void ctl_connect(struct relay_ctl *ctl);

/* The relay's name resolved (each time: addresses change): connect. */
static void ctl_resolved(uv_getaddrinfo_t *req, int status,
                         struct addrinfo *res)
{
    struct relay_ctl *ctl = req->data;
    struct notes_sync_hub *h = ctl->hub;
    struct addrinfo *ai;
    ctl->resolving = 0;
    h->nhandles--;
    for (ai = status == 0 ? res : NULL; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
            break;
    if (ai) {
        memset(&ctl->ss, 0, sizeof(ctl->ss));
        memcpy(&ctl->ss, ai->ai_addr, ai->ai_addrlen);
    }
    uv_freeaddrinfo(res);
    if (h->stopping || (ctl->client && h->client)) {
        notes_sync__hub_check_done(h);
        return;
    }
    if (!ai) {
        char why[200];
        snprintf(why, sizeof(why), "cannot resolve %s: %s", ctl->host,
                 status ? uv_strerror(status) : "no address");
        ctl->ss.ss_family = 0;
        /* As a failed connect: said once, retried after the backoff. */
        if (ctl->client || ctl->backoff_ms <= h->retry_ms)
            notes_sync__hub_log(h, "relay %s: %s", ctl->name, why);
        if (ctl->client == 1) {
            h->client_rc = NOTES_SYNC_ENET;
            snprintf(h->client_detail, sizeof(h->client_detail),
                     "relay %s: %s", ctl->name, why);
            ctl->client = 3;
            uv_timer_stop(&ctl->timer);
            return;
        }
        uv_timer_start(&ctl->timer, ctl_tick, ctl->backoff_ms, 0);
        ctl->backoff_ms = ctl->backoff_ms >= BACKOFF_MAX_MS / 2
                              ? BACKOFF_MAX_MS
                              : ctl->backoff_ms * 2;
        return;
    }
    ctl->resolved = 1;
    ctl_connect(ctl);
}

static void ctl_connect(struct relay_ctl *ctl)
{
    struct notes_sync_hub *h = ctl->hub;
    uv_connect_t *req;
    if (h->stopping || ctl->tcp_open || ctl->resolving)
        return;
    if (!ctl->resolved) {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        ctl->gai.data = ctl;
        if (uv_getaddrinfo(h->loop, &ctl->gai, ctl_resolved, ctl->host,
                           ctl->port, &hints) == 0) {
            ctl->resolving = 1;
            h->nhandles++;
            return;
        }
    }
    ctl->resolved = 0; /* the next connect resolves again */
    uv_tcp_init(h->loop, &ctl->tcp);
    ctl->tcp.data = ctl;
    ctl->tcp_open = 1;
    h->nhandles++;
    if (!(req = malloc(sizeof(*req)))) {
        ctl_drop(ctl, NULL);
        return;
    }
    req->data = ctl;
    if (uv_tcp_connect(req, &ctl->tcp, (struct sockaddr *)&ctl->ss,
                       ctl_on_connect) < 0) {
        free(req);
        ctl_drop(ctl, "cannot connect");
        return;
    }
    /* The connect and the answer to REGISTER are bounded (ctl_tick). */
    ctl->last_rx = uv_now(h->loop);
    uv_timer_start(&ctl->timer, ctl_tick, CTL_TICK_MS, CTL_TICK_MS);
}

static void ctl_tick(uv_timer_t *t)
{
    struct relay_ctl *ctl = t->data;
    struct notes_sync_hub *h = ctl->hub;
    uint64_t now = uv_now(h->loop);
    if (h->stopping)
        return;
    if (!ctl->tcp_open) {
        ctl_connect(ctl);
        return;
    }
    if (!ctl->registered) {
        if (now - ctl->last_rx >= h->handshake_ms)
            ctl_drop(ctl, "no answer from the relay");
        return;
    }
    if (ctl->client == 1 && !h->client && now - ctl->since > h->handshake_ms) {
        ctl_drop(ctl, "no member of the space is at the relay");
        return;
    }
    if (now - ctl->last_rx > CTL_DEAD_MS) {
        ctl_drop(ctl, "silent; reconnecting");
        return;
    }
    if (utc_day() != ctl->day) {
        /* The tag changes with the day: register under the new one. */
        ctl->backoff_ms = 0;
        ctl_drop(ctl, NULL);
        return;
    }
    if (now - ctl->last_ping >= RELAY_PING_MS) {
        ctl->last_ping = now;
        ctl_send(ctl, RELAY_PING, NULL, 0);
    }
    ctl_consider(ctl);
}

/* ---- data connections ---- */

void notes_sync__relay_connected(struct conn *c)
{
    if (notes_sync__conn_write(c, c->pre->hello, c->pre->hello_len) != NOTES_OK ||
        uv_read_start((uv_stream_t *)&c->tcp, notes_sync__on_alloc,
                      notes_sync__on_read) < 0) {
        conn_give_up(c, NOTES_SYNC_ENET, "cannot write to the relay");
        return;
    }
    c->reading = 1;
}

/* Paired: also try the direct path, from the same local port to where the
 * relay saw the peer's data connection. */
static void punch(struct conn *c)
{
    struct notes_sync_hub *h = c->hub;
    struct sockaddr_storage local;
    int len = sizeof(local);
    struct conn *p;
    if (!h->punch || h->stopping || h->client == c ||
        uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&local, &len) < 0 ||
        local.ss_family != c->remote.ss_family)
        return;
    if (!(p = notes_sync__conn_new(h, c->initiator ? NOTES_SYNC_INITIATOR
                                                   : NOTES_SYNC_RESPONDER,
                                   c->space)))
        return;
    p->kind = CONN_PUNCHED;
    p->rctl = c->rctl;
    p->remote = c->remote;
    h->active++;
    if (notes_sync__socket_for(p, (struct sockaddr *)&local) != NOTES_OK) {
        conn_give_up(p, NOTES_SYNC_ENET, notes_sync_last_detail());
        return;
    }
    notes_sync__conn_arm(p, PUNCH_MS);
    notes_sync__conn_dial(p, &p->remote);
}

size_t notes_sync__relay_phase_read(struct conn *c, const uint8_t *in, size_t n)
{
    size_t off = 0;
    char why[300];
    while (off < n) {
        size_t used, len;
        uint8_t type;
        const uint8_t *p;
        int got = sync_relay_take(&c->pre->rd, in + off, n - off, &used, &type,
                                  &p, &len);
        off += used;
        if (!got)
            continue;
        if (type == RELAY_PAIRED && len == RELAY_ADDR_LEN &&
            sync_relay_addr_get(p, &c->remote) == NOTES_OK) {
            c->relay_phase = 0;
            free(c->pre);
            c->pre = NULL;
            notes_sync__conn_start(c);
            return off;
        }
        if (type == RELAY_REFUSED) {
            snprintf(why, sizeof(why), "the relay %s refused: %.*s",
                     c->rctl->name, (int)len, (const char *)p);
            for (char *q = why; *q; q++)
                if (*q < ' ' || *q > '~')
                    *q = '?';
        } else {
            snprintf(why, sizeof(why), "the relay %s sent a message out of "
                     "place (type 0x%02x)", c->rctl->name, type);
        }
        conn_give_up(c, NOTES_SYNC_ENET, why);
        return n;
    }
    return off;
}

/* Whether peer p has an open session other than c that is not relayed. */
static int row_has_direct(const struct peer *p, const struct conn *c)
{
    for (const struct conn *o = p->hub->conns; o; o = o->next)
        if (o != c && o->linked && o->row == p && o->kind != CONN_RELAYED &&
            !o->yielded)
            return 1;
    return 0;
}

void notes_sync__relay_conn_opened(struct conn *c)
{
    struct rmember *m;
    const notes_sync_report *r = notes_sync_session_report(c->s);
    if (c->kind == CONN_PUNCHED)
        notes_sync__hub_log(c->hub, "relay %s: direct connection with a "
                            "member of space %s", c->rctl->name,
                            c->hub->cfg.spaces[c->space].name);
    /* The handshake named the peer: try the direct path unless there is one
     * already (both sides see the same sessions and decide alike). Both
     * sides get here within a round trip of each other, which the SYN
     * retransmits of the simultaneous open cover. */
    if (c->kind == CONN_RELAYED && c->row && !row_has_direct(c->row, c))
        punch(c);
    if (c->kind != CONN_RELAYED || !r || !(m = member_find(c->rctl, c->relay_peer)))
        return;
    m->key_known = 1;
    memcpy(m->key, r->peer, 32);
    m->backoff_ms = c->hub->retry_ms;
}

/* A relayed session of ours ended: its member may be dialed again (after
 * the backoff), unless it gave way to a direct session (then when that
 * one ends: notes_sync__relay_row_lost). */
void notes_sync__relay_conn_closed(struct conn *c)
{
    struct notes_sync_hub *h = c->hub;
    struct rmember *m;
    if (c->kind != CONN_RELAYED || !c->initiator ||
        !(m = member_find(c->rctl, c->relay_peer)) || m->state != RM_BUSY)
        return;
    if (c->yielded) {
        m->state = RM_YIELDED;
        return;
    }
    m->state = RM_IDLE;
    if (c->opened)
        m->backoff_ms = h->retry_ms;
    m->next_ms = uv_now(h->loop) + m->backoff_ms;
    m->backoff_ms = m->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS
                                                       : m->backoff_ms * 2;
}

void notes_sync__relay_row_lost(struct notes_sync_hub *h, size_t space,
                                const uint8_t key[32])
{
    for (size_t i = 0; i < h->nctls; i++) {
        struct relay_ctl *ctl = &h->ctls[i];
        if (ctl->space != space)
            continue;
        for (size_t j = 0; j < RELAY_MEMBERS; j++) {
            struct rmember *m = &ctl->m[j];
            if (m->used && m->state == RM_YIELDED && m->key_known &&
                memcmp(m->key, key, 32) == 0) {
                m->state = RM_IDLE;
                m->next_ms = 0;
            }
        }
        ctl_consider(ctl);
    }
}

/* ---- the hub's side ---- */

static void ctl_timer_closed(uv_handle_t *hd)
{
    struct relay_ctl *ctl = hd->data;
    ctl->hub->nhandles--;
    notes_sync__hub_check_done(ctl->hub);
}

int notes_sync__relay_start(struct notes_sync_hub *h, const char *const *relays,
                            size_t n, int client)
{
    int rc;
    if (!n)
        return NOTES_OK;
    if (n > NOTES_SYNC_RELAYS_MAX || !relays) {
        notes_sync__detail("at most %d relays", NOTES_SYNC_RELAYS_MAX);
        return NOTES_EINVAL;
    }
    if (!(h->ctls = calloc(n * h->cfg.nspaces, sizeof(*h->ctls))))
        return NOTES_ENOMEM;
    for (size_t i = 0; i < n * h->cfg.nspaces; i++) {
        struct relay_ctl *ctl = &h->ctls[i];
        ctl->hub = h;
        ctl->name = relays[i / h->cfg.nspaces];
        ctl->space = i % h->cfg.nspaces;
        ctl->client = client;
        if ((rc = notes_sync__split_name(ctl->name, ctl->host, ctl->port)))
            return rc;
    }
    h->nctls = n * h->cfg.nspaces;
    for (size_t i = 0; i < h->nctls; i++) {
        struct relay_ctl *ctl = &h->ctls[i];
        ctl->backoff_ms = h->retry_ms ? h->retry_ms : 500;
        uv_timer_init(h->loop, &ctl->timer);
        ctl->timer.data = ctl;
        h->nhandles++;
        ctl_connect(ctl);
    }
    return NOTES_OK;
}

void notes_sync__relay_stop(struct notes_sync_hub *h)
{
    for (size_t i = 0; i < h->nctls; i++) {
        struct relay_ctl *ctl = &h->ctls[i];
        ctl_drop(ctl, NULL);
        if (!uv_is_closing((uv_handle_t *)&ctl->timer))
            uv_close((uv_handle_t *)&ctl->timer, ctl_timer_closed);
    }
}

/* Whether h is registered at relay `name` for every space. */
int notes_sync__relay_up(const struct notes_sync_hub *h, const char *name)
{
    int any = 0;
    for (size_t i = 0; i < h->nctls; i++) {
        if (strcmp(h->ctls[i].name, name) != 0)
            continue;
        if (!h->ctls[i].registered)
            return 0;
        any = 1;
    }
    return any;
}
