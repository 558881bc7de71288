/*
 * peers.c: the hub's table of peers, one row per (space, peer key): the
 * --peer addresses once a handshake named their key, the members
 * discovery heard, and those that dialed in. It decides which discovered
 * members to dial, drops a second session with the same peer, and writes
 * the table to $NOTES_HOME/peers for `notes peers`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include <uv.h>

#include "notes_sync_presence.h"
#include "transport_internal.h"

/* ---- the peer table ---- */

const uint8_t *notes_sync__our_key(const struct notes_sync_hub *h)
{
    return notes_identity_public_key(h->cfg.identity);
}

/* Announced within the last four intervals (three lost in a row). */
static int row_recent(const struct peer *p)
{
    struct notes_sync_hub *h = p->hub;
    return p->last_heard &&
           uv_now(h->loop) - p->last_heard <= 4 * (uint64_t)h->announce_ms;
}

/* A --peer dial stands for this row: it does the dialing. */
static int row_manual(const struct peer *p)
{
    return p->manual && p->manual->row == p;
}

static struct peer *row_find(struct notes_sync_hub *h, size_t space,
                             const uint8_t key[32])
{
    for (size_t i = 0; i < h->nrows; i++)
        if (h->rows[i]->space == space &&
            memcmp(h->rows[i]->key, key, 32) == 0)
            return h->rows[i];
    return NULL;
}

/* A new row; when the table is full, the one seen least recently among
 * those with nothing going on is taken over. NULL: none free. */
static struct peer *row_add(struct notes_sync_hub *h, size_t space,
                            const uint8_t key[32], int found)
{
    struct peer *p = NULL;
    if (h->stopping)
        return NULL;
    if (h->nrows < MAX_ROWS) {
        if (!(p = calloc(1, sizeof(*p))))
            return NULL;
        uv_timer_init(h->loop, &p->timer);
        p->timer.data = p;
        h->nhandles++;
        h->rows[h->nrows++] = p;
    } else {
        for (size_t i = 0; i < h->nrows; i++) {
            struct peer *q = h->rows[i];
            if (q->manual || q->c || q->nopen ||
                uv_is_active((uv_handle_t *)&q->timer))
                continue;
            if (!p || q->last_seen < p->last_seen)
                p = q;
        }
        if (!p)
            return NULL;
        /* Field by field: the timer handle stays where the loop knows it. */
        memset(&p->addr, 0, sizeof(p->addr));
        p->first_heard = p->last_heard = 0;
        p->last_seen = p->last_sync = 0;
        p->sent = p->recv = 0;
        p->logged = 0;
    }
    p->hub = h;
    p->space = space;
    memcpy(p->key, key, 32);
    p->found = found;
    p->backoff_ms = h->retry_ms;
    return p;
}

/* Whether this side dials p: the smaller key dials at once; the larger
 * one only after hearing p for three intervals with no session (p may not
 * hear us, or may not reach us). */
static int row_our_turn(const struct peer *p)
{
    struct notes_sync_hub *h = p->hub;
    return memcmp(notes_sync__our_key(h), p->key, 32) < 0 ||
           uv_now(h->loop) - p->first_heard >= 3 * (uint64_t)h->announce_ms;
}

static void row_dial_now(uv_timer_t *t);

/* Dial p later (backoff), if it is still announced and still ours to. */
static void row_dial_later(struct peer *p, int was_open)
{
    struct notes_sync_hub *h = p->hub;
    if (h->stopping)
        return;
    if (was_open)
        p->backoff_ms = h->retry_ms;
    if (p->nopen || row_manual(p) || !row_recent(p) || !row_our_turn(p))
        return;
    uv_timer_start(&p->timer, row_dial_now, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms >= 15000 ? 30000 : p->backoff_ms * 2;
}

static void row_dial_now(uv_timer_t *t)
{
    struct peer *p = t->data;
    struct notes_sync_hub *h = p->hub;
    struct conn *c;
    if (h->stopping || p->c || p->nopen || row_manual(p))
        return;
    if (!(c = notes_sync__conn_new(h, NOTES_SYNC_INITIATOR, p->space))) {
        row_dial_later(p, 0);
        return;
    }
    c->kind = CONN_DISCOVERED;
    c->row = p;
    p->c = c;
    h->active++;
    notes_sync__state_dirty(h);
    notes_sync__conn_dial(c, &p->addr);
}

/* Something changed about p (announced, a session with it ended): dial
 * it if no session is open or under way and it is our turn. */
static void row_consider(struct peer *p, int addr_changed)
{
    struct notes_sync_hub *h = p->hub;
    if (h->stopping || p->c || p->nopen || row_manual(p) || !row_recent(p) ||
        !row_our_turn(p))
        return;
    if (uv_is_active((uv_handle_t *)&p->timer)) {
        if (!addr_changed)
            return; /* backing off */
        p->backoff_ms = h->retry_ms; /* it moved: try the new address now */
    }
    /* From the loop, not from here: we may be inside a callback of a
     * connection of p. */
    uv_timer_start(&p->timer, row_dial_now, 0, 0);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    const struct sockaddr_in *x = (const struct sockaddr_in *)a,
                             *y = (const struct sockaddr_in *)b;
    return a->ss_family == AF_INET && b->sa_family == AF_INET &&
           x->sin_addr.s_addr == y->sin_addr.s_addr &&
           x->sin_port == y->sin_port;
}

/* Discovery heard a member's fresh announcement. */
void notes_sync__hub_on_found(void *ud, size_t space, const uint8_t pk[32],
                         const struct sockaddr *addr)
{
    struct notes_sync_hub *h = ud;
    struct peer *p;
    int fresh, moved;
    if (h->stopping || space >= h->cfg.nspaces)
        return;
    if (!(p = row_find(h, space, pk)) &&
        !(p = row_add(h, space, pk, CONN_DISCOVERED))) {
        h->dstats.full++;
        return;
    }
    fresh = !row_recent(p);
    if (fresh)
        p->first_heard = uv_now(h->loop);
    moved = !same_addr(&p->addr, addr);
    memset(&p->addr, 0, sizeof(p->addr));
    memcpy(&p->addr, addr, sizeof(struct sockaddr_in));
    p->last_heard = uv_now(h->loop);
    p->last_seen = notes_sync__unix_ms();
    if (!p->logged) {
        char fpr[NOTES_FPR_STRLEN], ip[64];
        p->logged = 1;
        notes_key_fingerprint(pk, fpr);
        uv_ip4_name((const struct sockaddr_in *)addr, ip, sizeof(ip));
        notes_sync__hub_log(h, "discovery: peer %s of space %s at %s:%d", fpr,
                h->cfg.spaces[space].name, ip,
                ntohs(((const struct sockaddr_in *)addr)->sin_port));
    }
    /* It just appeared: let it hear us now, not in an interval. */
    if (fresh)
        sync_disc_announce_soon(h->disc);
    row_consider(p, moved && !fresh);
    notes_sync__state_dirty(h);
}

/*
 * Of two sessions with the same peer in the same space, whether c is the
 * one to end: only a discovered dial of ours gives way, to another session
 * of ours, or to the peer's when the peer's key is the smaller (the peer
 * then keeps its own: both sides pick the same one).
 */
static int conn_yields(const struct conn *c, const struct conn *o)
{
    /* A relayed session gives way to any direct one (the upgrade, or a
     * path found otherwise); both sides see one of each and end the
     * relayed one. Two relayed ones (two relays) are both kept. */
    if ((c->kind == CONN_RELAYED) != (o->kind == CONN_RELAYED))
        return c->kind == CONN_RELAYED;
    if (c->kind != CONN_DISCOVERED)
        return 0;
    if (o->kind != CONN_INBOUND)
        return 1;
    return memcmp(notes_sync__our_key(c->hub), c->row->key, 32) > 0;
}

static void conn_yield(struct conn *c)
{
    c->yielded = 1;
    notes_sync_session_end(c->s); /* a goodbye once the round is over */
}

/* The handshake is done: link c to its row (made if new), and end a
 * duplicate session. */
void notes_sync__conn_opened(struct conn *c)
{
    struct notes_sync_hub *h = c->hub;
    const notes_sync_report *r = notes_sync_session_report(c->s);
    struct peer *p;
    size_t sp = c->space;
    if (h->client == c || !r)
        return; /* notes_sync_once keeps no table */
    if (c->kind == CONN_INBOUND) {
        sp = h->cfg.nspaces;
        for (size_t i = 0; i < h->cfg.nspaces; i++)
            if (strcmp(h->cfg.spaces[i].name, r->space) == 0)
                sp = i;
        if (sp == h->cfg.nspaces)
            return;
    }
    if (c->kind == CONN_DISCOVERED) {
        p = c->row;
        if (memcmp(p->key, r->peer, 32) != 0) {
            /* Someone else (a member) answers at that address: sync this
             * round, then back off until the announcements make sense. */
            notes_sync__hub_log(h, "discovery: the peer at the announced address proved "
                       "another key; not kept");
            c->yielded = 1;
            notes_sync_session_end(c->s);
            return;
        }
    } else {
        if (!(p = row_find(h, sp, r->peer)))
            p = row_add(h, sp, r->peer, c->kind);
        if (c->kind == CONN_MANUAL) {
            struct dial *d = c->dial;
            if (d->row && d->row != p && d->row->manual == d)
                d->row->manual = NULL;
            d->row = p;
            if (p && !p->manual)
                p->manual = d;
        }
        if (!p)
            return; /* the table is full: served, not listed */
        c->row = p;
        if (p->addr.ss_family == 0 || c->kind == CONN_PUNCHED)
            p->addr = c->kind == CONN_MANUAL ? c->dial->ss : c->remote;
    }
    if (c->kind == CONN_RELAYED || c->kind == CONN_PUNCHED)
        notes_sync__relay_conn_opened(c);
    c->linked = 1;
    p->nopen++;
    p->last_seen = notes_sync__unix_ms();
    for (struct conn *o = h->conns; o; o = o->next) {
        if (o == c || !o->linked || o->row != p || o->yielded || o->closing)
            continue;
        if (conn_yields(c, o)) {
            conn_yield(c); /* notes_sync__on_read pumps it */
            break;
        }
        if (conn_yields(o, c)) {
            conn_yield(o);
            notes_sync__conn_pump(o);
            break;
        }
    }
    notes_sync__state_dirty(h);
}

/* Add what c moved since the last call to its row. */
void notes_sync__conn_account(struct conn *c, int round_done)
{
    const notes_sync_report *r = notes_sync_session_report(c->s);
    struct peer *p = c->row;
    if (!c->linked || !p || !r)
        return;
    p->sent += r->changes_sent - c->acct_sent;
    p->recv += r->changes_received - c->acct_recv;
    c->acct_sent = r->changes_sent;
    c->acct_recv = r->changes_received;
    p->last_seen = notes_sync__unix_ms();
    if (round_done)
        p->last_sync = p->last_seen;
    notes_sync__state_dirty(c->hub);
}

/* c is closing: unlink it from its row, and maybe dial that peer again. */
void notes_sync__row_closed_conn(struct conn *c)
{
    struct peer *p = c->row;
    if (!p)
        return;
    if (c->linked) {
        notes_sync__conn_account(c, 0);
        c->linked = 0;
        p->nopen--;
        /* Its last session ended (the direct path may have gone): the
         * relays' members that gave way to it are worth dialing again. */
        if (!p->nopen && !c->hub->stopping)
            notes_sync__relay_row_lost(c->hub, p->space, p->key);
    }
    if (c->kind == CONN_DISCOVERED && p->c == c) {
        p->c = NULL;
        /* A dial that failed or dropped: backoff. One ended because another
         * session with p is open: nothing (that one's end brings us here). */
        if (!c->yielded || !p->nopen)
            row_dial_later(p, c->opened && !c->yielded);
    }
    row_consider(p, 0);
    notes_sync__state_dirty(c->hub);
}

/* ---- the state file ---- */

static void addr_name(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char ip[64] = "";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        out[0] = '\0';
    }
}

static const char *row_state(const struct peer *p)
{
    if (p->nopen)
        return "connected";
    if (p->hub->stopping)
        return "disconnected";
    if (row_manual(p))
        return p->manual->c ? "dialing" : "backoff";
    if (p->c)
        return "dialing";
    if (uv_is_active((const uv_handle_t *)&p->timer))
        return "backoff";
    return row_recent(p) ? "discovered" : "disconnected";
}

/* How p is reached now: "direct" if any open session of it is, else the
 * relay of a relayed one; "" with no session. */
static void row_path(const struct peer *p, notes_sync_peer *e)
{
    const struct conn *relayed = NULL;
    for (const struct conn *c = p->hub->conns; c; c = c->next) {
        if (!c->linked || c->row != p)
            continue;
        if (c->kind != CONN_RELAYED) {
            snprintf(e->path, sizeof(e->path), "direct");
            e->relay[0] = '\0';
            return;
        }
        relayed = c;
    }
    if (relayed) {
        snprintf(e->path, sizeof(e->path), "relay");
        snprintf(e->relay, sizeof(e->relay), "%s", relayed->rctl->name);
    }
}

void notes_sync__state_write(struct notes_sync_hub *h)
{
    static const char *const found[] = {"inbound", "manual", "discovered",
                                        "relay", "relay"};
    notes_sync_peers ps;
    notes_sync_peer *v;
    size_t n = 0;
    if (!h->lock || !(v = calloc(h->nrows + h->ndials + 1, sizeof(*v))))
        return;
    for (size_t i = 0; i < h->nrows; i++) {
        const struct peer *p = h->rows[i];
        notes_sync_peer *e = &v[n++];
        snprintf(e->space, sizeof(e->space), "%s", h->cfg.spaces[p->space].name);
        e->key_known = 1;
        memcpy(e->key, p->key, 32);
        addr_name(row_manual(p) ? &p->manual->ss : &p->addr, e->addr,
                  sizeof(e->addr));
        snprintf(e->state, sizeof(e->state), "%s", row_state(p));
        snprintf(e->found, sizeof(e->found), "%s",
                 found[row_manual(p) ? CONN_MANUAL : p->found]);
        e->last_seen_ms = p->last_seen;
        e->last_sync_ms = p->last_sync;
        e->changes_sent = p->sent;
        e->changes_received = p->recv;
        e->sessions = p->nopen;
        row_path(p, e);
    }
    /* --peer addresses no handshake has named yet. */
    for (size_t i = 0; i < h->ndials; i++) {
        const struct dial *d = &h->dials[i];
        notes_sync_peer *e;
        if (d->row && d->row->manual == d)
            continue;
        e = &v[n++];
        snprintf(e->space, sizeof(e->space), "%s", h->cfg.spaces[d->space].name);
        addr_name(&d->ss, e->addr, sizeof(e->addr));
        snprintf(e->state, sizeof(e->state), "%s",
                 h->stopping ? "disconnected" : d->c ? "dialing" : "backoff");
        snprintf(e->found, sizeof(e->found), "manual");
    }
    memset(&ps, 0, sizeof(ps));
    ps.pid = (long)getpid();
    ps.started_ms = h->started;
    ps.updated_ms = notes_sync__unix_ms();
    ps.port = h->port;
    ps.discovery = h->discovery;
    ps.discovery_port = h->discovery
                            ? (h->opts->discovery_port ? h->opts->discovery_port
                                                       : NOTES_SYNC_DISCOVERY_PORT)
                            : 0;
    ps.disc = h->dstats;
    for (size_t i = 0; h->opts && i < h->opts->nrelays &&
                       i < NOTES_SYNC_RELAYS_MAX; i++) {
        snprintf(ps.relays[i], sizeof(ps.relays[i]), "%s", h->opts->relays[i]);
        ps.relay_up[i] = !h->stopping &&
                         notes_sync__relay_up(h, h->opts->relays[i]);
        ps.nrelays = i + 1;
    }
    ps.peers = v;
    ps.npeers = n;
    if (sync_peers_write(h->lock, &ps) != NOTES_OK) {
        /* Keep serving; a later write may work (disk full, ...). Said
         * once, not at every refresh. */
        if (!h->state_failed)
            notes_sync__hub_log(h, "peers state: %s", notes_sync_last_detail());
        h->state_failed = 1;
    } else {
        h->state_failed = 0;
    }
    free(v);
}

static unsigned state_refresh_ms(const struct notes_sync_hub *h)
{
    unsigned ms = h->announce_ms;
    return ms < STATE_DELAY_MS ? STATE_DELAY_MS
                               : ms > STATE_REFRESH_MS ? STATE_REFRESH_MS : ms;
}

void notes_sync__on_state_timer(uv_timer_t *t)
{
    struct notes_sync_hub *h = t->data;
    notes_sync__state_write(h);
    /* The discovery counters change without any state change: rewrite
     * about once per announcement interval. Without discovery the file is
     * rewritten only on changes (a busy server under a flood of strangers
     * opens no file at all). */
    if (h->discovery)
        uv_timer_start(&h->state_timer, notes_sync__on_state_timer, state_refresh_ms(h), 0);
}

void notes_sync__state_dirty(struct notes_sync_hub *h)
{
    if (!h->lock || !h->state_timer_init || h->stopping)
        return;
    if (!uv_is_active((uv_handle_t *)&h->state_timer) ||
        uv_timer_get_due_in(&h->state_timer) > STATE_DELAY_MS)
        uv_timer_start(&h->state_timer, notes_sync__on_state_timer, STATE_DELAY_MS, 0);
}
