/*
 * hub.c: the daemon (notes_sync_hub): the listener, the --peer dials, the
 * notes-folder watcher, presence relay and stopping.
 *
 * Strangers cannot lock members out (issue 15): inbound connections that
 * have not finished their handshake ("pending") are bounded in all and
 * per remote address; over a limit, a newcomer evicts the oldest pending
 * connection of the address holding the most, or is turned away if its
 * own address is at its limit, and either is told "busy" in plain text.
 * A flood from a few addresses then holds only its share, and a member's
 * handshake, done in one round trip, gets through.
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

__attribute__((format(printf, 2, 3))) void notes_sync__hub_log(void *ud,
                                                         const char *fmt, ...)
{
    struct notes_sync_hub *h = ud;
    char line[512];
    va_list ap;
    if (!h->opts || !h->opts->on_log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    h->opts->on_log(h->opts->ud, line);
}


/*
 * Presence: keep the newest seq per (note, key); send a newer record to
 * every live session but `from` (gossip, loop-free because older or equal
 * seqs stop here). 1 if it was new.
 */
static int hub_presence_relay(struct notes_sync_hub *h, const uint8_t *rec,
                              size_t n, struct conn *from)
{
    uint8_t note[16], key[32];
    uint64_t seq;
    const char *json;
    size_t jn, i;
    if (notes_sync_presence_open(rec, n, note, key, &seq, &json, &jn))
        return 0;
    for (i = 0; i < h->npres; i++)
        if (memcmp(h->pres[i].nk, rec, 48) == 0)
            break;
    if (i < h->npres && seq <= h->pres[i].seq)
        return 0; /* seen already: a relay loop or a replay */
    if (i == h->npres) {
        if (h->npres < PRES_SEEN)
            h->npres++;
        else
            i = h->pres_next++ % PRES_SEEN; /* forget the oldest slot */
        memcpy(h->pres[i].nk, rec, 48);
    }
    h->pres[i].seq = seq;
    for (struct conn *c = h->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c == from || c->closing ||
            notes_sync_state(c->s) != NOTES_SYNC_OPEN)
            continue;
        if (notes_sync_session_presence(c->s, rec, n) == NOTES_OK)
            notes_sync__conn_pump(c);
    }
    return 1;
}

void notes_sync__conn_on_presence(void *ud, const uint8_t *rec, size_t n)
{
    struct conn *c = ud;
    struct notes_sync_hub *h = c->hub;
    if (hub_presence_relay(h, rec, n, c) && h->opts && h->opts->on_presence)
        h->opts->on_presence(h->opts->ud, rec, n);
}

int notes_sync_hub_presence(notes_sync_hub *h, const uint8_t *rec, size_t n)
{
    if (!h || !rec || h->stopping)
        return NOTES_EINVAL;
    (void)hub_presence_relay(h, rec, n, NULL);
    return NOTES_OK;
}

void notes_sync_hub_status(const notes_sync_hub *h, unsigned *peers,
                           uint64_t *last_sync_ms)
{
    unsigned np = 0;
    uint64_t last = 0;
    /* Peers, not sessions: one key with two open sessions (both sides
     * dialed, a space each, a relayed one moving to direct) is one peer,
     * as `notes peers` lists it. */
    for (const struct conn *c = h->conns; c; c = c->next) {
        int again = 0;
        if (c->closing || !c->opened || notes_sync_state(c->s) != NOTES_SYNC_OPEN)
            continue;
        for (const struct conn *o = h->conns; o != c && !again; o = o->next)
            again = !o->closing && o->opened && c->row && o->row &&
                    notes_sync_state(o->s) == NOTES_SYNC_OPEN &&
                    memcmp(o->row->key, c->row->key, 32) == 0;
        np += !again;
    }
    for (size_t i = 0; i < h->nrows; i++)
        if (h->rows[i]->last_sync > last)
            last = h->rows[i]->last_sync;
    if (peers)
        *peers = np;
    if (last_sync_ms)
        *last_sync_ms = last;
}

/* Identity and spaces of a replica, for either side. */
int notes_sync__hub_load(struct notes_sync_hub *h, const char *home, const char *passphrase,
                    const char *space, notes_replica **r, notes_identity **id,
                    notes_sync_space **spaces)
{
    char **names = NULL;
    size_t n = 0;
    int rc;
    *r = NULL;
    *id = NULL;
    *spaces = NULL;
    if ((rc = notes_replica_open(home, r)))
        return notes_sync__from_notes(rc, "replica");
    if ((rc = notes_replica_identity(home, passphrase, id)))
        return notes_sync__from_notes(rc, "identity");
    if (space) {
        if (!(*spaces = calloc(1, sizeof(**spaces))))
            return NOTES_ENOMEM;
        if ((rc = notes_sync_space_load(home, space, *spaces)))
            return rc;
        n = 1;
    } else {
        if ((rc = notes_sync_space_list(home, &names, &n)))
            return rc;
        if (n == 0) {
            notes_sync__detail("no spaces in '%s' to serve", home);
            return NOTES_ENOTFOUND;
        }
        if (!(*spaces = calloc(n, sizeof(**spaces)))) {
            notes_sync_space_names_free(names, n);
            return NOTES_ENOMEM;
        }
        h->cfg.nspaces = n; /* so that a failure below still wipes them */
        for (size_t i = 0; i < n && !rc; i++)
            rc = notes_sync_space_load(home, names[i], &(*spaces)[i]);
        notes_sync_space_names_free(names, n);
        if (rc)
            return rc;
    }
    h->cfg.replica = *r;
    h->cfg.identity = *id;
    h->cfg.spaces = *spaces;
    h->cfg.nspaces = n;
    return NOTES_OK;
}

void notes_sync__hub_unload(notes_replica *r, notes_identity *id,
                       notes_sync_space *spaces, size_t n)
{
    if (spaces) {
        notes__wipe(spaces, n * sizeof(*spaces));
        free(spaces);
    }
    notes_identity_free(id);
    notes_replica_free(r);
}
/* ---- serving ---- */

static void hub_on_changed(void *arg, const char *home, const uint8_t id[16]);

/*
 * Stopping is over once the last handle of the hub is closed: the state
 * file gets its last word (every peer disconnected), then the caller's
 * done callback; a hub whose start failed frees itself here.
 */
void notes_sync__hub_check_done(struct notes_sync_hub *h)
{
    if (!h->stopping || h->listening || h->nhandles || h->nconns ||
        h->disc_open || h->done_called || h->client)
        return;
    h->done_called = 1;
    notes_sync__state_write(h);
    if (h->done)
        h->done(h->done_arg);
    if (h->free_on_done)
        notes_sync_hub_free(h);
}

static void hub_closed(uv_handle_t *hd)
{
    struct notes_sync_hub *h = hd->data;
    h->nhandles--;
    notes_sync__hub_check_done(h);
}

/* 20 ms: after the pushed change reached the page and the other peers
 * (their writes go out on the loop's next turns), before the next keystroke
 * of someone typing at 20 keys/s; one flush covers what came meanwhile. */
#define FLUSH_MS 20

static void on_flush_timer(uv_timer_t *t)
{
    struct notes_sync_hub *h = t->data;
    for (struct conn *c = h->conns; c; c = c->next)
        if (c->s && notes_sync_session_flush(c->s) != NOTES_OK)
            notes_sync__hub_log(h, "cannot make a pushed change durable: %s",
                                notes_sync_last_detail());
}

void notes_sync__hub_flush_soon(struct notes_sync_hub *h)
{
    if (h->flush_timer_init && !uv_is_active((uv_handle_t *)&h->flush_timer))
        uv_timer_start(&h->flush_timer, on_flush_timer, FLUSH_MS, 0);
}

static void dial_closed(uv_handle_t *hd)
{
    struct dial *d = hd->data;
    d->hub->nhandles--;
    notes_sync__hub_check_done(d->hub);
}

static void row_closed(uv_handle_t *hd)
{
    struct peer *p = hd->data;
    p->hub->nhandles--;
    notes_sync__hub_check_done(p->hub);
}

static void disc_closed(void *ud)
{
    struct notes_sync_hub *h = ud;
    h->disc_open = 0;
    notes_sync__hub_check_done(h);
}

void notes_sync__hub_maybe_stop(struct notes_sync_hub *h)
{
    if (h->client || !h->listening)
        return;
    if (h->stopping ||
        (h->max_sessions && h->finished >= h->max_sessions)) {
        h->listening = 0;
        h->stopping = 1;
        if (!h->told_stopping && h->opts && h->opts->on_stopping) {
            h->told_stopping = 1;
            h->opts->on_stopping(h->opts->ud);
        }
        uv_close((uv_handle_t *)&h->listener, hub_closed);
        if (h->subscribed) {
            h->subscribed = 0;
            notes_unsubscribe(hub_on_changed, h);
            uv_close((uv_handle_t *)&h->changed, hub_closed);
        }
        if (h->watching) {
            h->watching = 0;
            uv_close((uv_handle_t *)&h->watch, hub_closed);
        }
        for (size_t i = 0; h->dialing && i < h->ndials; i++)
            uv_close((uv_handle_t *)&h->dials[i].timer, dial_closed);
        for (size_t i = 0; i < h->nrows; i++)
            uv_close((uv_handle_t *)&h->rows[i]->timer, row_closed);
        if (h->disc) {
            sync_disc_stop(h->disc);
            h->disc = NULL;
        }
        notes_sync__relay_stop(h);
        if (h->state_timer_init) {
            h->state_timer_init = 0;
            uv_close((uv_handle_t *)&h->state_timer, hub_closed);
        }
        if (h->flush_timer_init) {
            /* Closing sessions free their notes, which flushes them. */
            h->flush_timer_init = 0;
            uv_close((uv_handle_t *)&h->flush_timer, hub_closed);
        }
        /* Live sessions between rounds end now; the others say goodbye
         * after their round. */
        for (struct conn *c = h->conns, *n; c; c = n) {
            n = c->next;
            if (c->relay_phase || (c->kind == CONN_PUNCHED && !c->opened)) {
                /* Not paired, or a direct try not through yet: nothing to
                 * end (a punch toward a NAT that drops it would hold the
                 * stop for its 5 s). */
                notes_sync__conn_close(c);
            } else if (notes_sync_session_idle(c->s)) {
                notes_sync__conn_pump(c);
            } else if (h->client != c) {
                notes_sync_session_end(c->s);
                notes_sync__conn_pump(c);
            }
        }
    }
}

/* ---- live: watching the logs, dialing peers ---- */

/* A note of our replica changed (a commit or a merge in this process, on
 * any thread, or another process's write that on_watch reported): wake
 * the loop. h->home and the replica never change while subscribed. */
static void hub_on_changed(void *arg, const char *home, const uint8_t id[16])
{
    struct notes_sync_hub *h = arg;
    if (strcmp(home, h->home) != 0 &&
        strcmp(home, notes_replica_home(h->replica)) != 0)
        return;
    uv_mutex_lock(&h->changed_mu);
    size_t i = 0;
    while (id && i < h->nchanged && memcmp(h->changed_ids[i], id, 16) != 0)
        i++;
    if (!id || i == sizeof(h->changed_ids) / sizeof(h->changed_ids[0]))
        h->changed_all = 1;
    else if (i == h->nchanged)
        memcpy(h->changed_ids[h->nchanged++], id, 16);
    uv_mutex_unlock(&h->changed_mu);
    uv_async_send(&h->changed);
}

/* Another process wrote in the notes folder: libnotes says whether it is
 * a note's file, and tells the subscribers (hub_on_changed) if so. */
static void on_watch(uv_fs_event_t *w, const char *name, int events,
                     int status)
{
    struct notes_sync_hub *h = w->data;
    (void)events;
    if (status < 0 || h->stopping || !name)
        return;
    (void)notes_replica_file_event(h->home, name);
}

/* Notes' logs changed (a commit here, or a merge from some peer): each
 * live session pushes its peer what each note gained (one message, no
 * round trip), or, when it cannot (mid-round, a note it does not follow
 * yet, too much at once), runs a round, which sends the peer all it lacks.
 * A change merged from a peer is not pushed back to it (nothing new in
 * that session's copy of the note). */
static void on_changed(uv_async_t *a)
{
    struct notes_sync_hub *h = a->data;
    uint8_t ids[sizeof(h->changed_ids) / sizeof(h->changed_ids[0])][16];
    uv_mutex_lock(&h->changed_mu);
    size_t n = h->nchanged;
    int all = h->changed_all;
    memcpy(ids, h->changed_ids, n * 16);
    h->nchanged = 0;
    h->changed_all = 0;
    uv_mutex_unlock(&h->changed_mu);
    if (h->stopping)
        return;
    for (struct conn *c = h->conns, *nx; c; c = nx) {
        nx = c->next;
        if (notes_sync_state(c->s) != NOTES_SYNC_OPEN)
            continue;
        int round = all;
        for (size_t i = 0; i < n && !round; i++)
            round = notes_sync_session_push(c->s, ids[i]) != NOTES_OK;
        if (!round || notes_sync_session_round(c->s) == NOTES_OK)
            notes_sync__conn_pump(c);
    }
}

static void dial_now(uv_timer_t *t)
{
    struct dial *d = t->data;
    struct notes_sync_hub *h = d->hub;
    if (h->stopping || d->c)
        return;
    if (!(d->c = notes_sync__conn_new(h, NOTES_SYNC_INITIATOR, d->space))) {
        notes_sync__dial_later(d, 0);
        return;
    }
    d->c->dial = d;
    d->c->kind = CONN_MANUAL;
    h->active++;
    notes_sync__state_dirty(h);
    notes_sync__conn_dial(d->c, &d->ss);
}

/* The dialed connection ended: dial again after the backoff (reset once
 * a session had opened; doubled after each failure, up to 30 s). */
void notes_sync__dial_later(struct dial *d, int was_open)
{
    d->c = NULL;
    if (d->hub->stopping)
        return;
    if (was_open)
        d->backoff_ms = d->hub->retry_ms;
    uv_timer_start(&d->timer, dial_now, d->backoff_ms, 0);
    d->backoff_ms = d->backoff_ms >= 15000 ? 30000 : d->backoff_ms * 2;
}

/* ---- pending connections: the limits on strangers ---- */

/*
 * Whether a and b count as one host for the pending limits: the IPv4
 * address, or the IPv6 /64 (a LAN host can draw addresses from its /64
 * at will; an IPv4 address mapped into IPv6 is compared whole).
 */
static int same_host(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr,
                              *y = &((const struct sockaddr_in6 *)b)->sin6_addr;
        return memcmp(x, y, IN6_IS_ADDR_V4MAPPED(x) ? 16 : 8) == 0;
    }
    return 1; /* no address known: one shared bucket */
}

static unsigned pending_from(const struct notes_sync_hub *h,
                             const struct sockaddr_storage *ss)
{
    unsigned n = 0;
    for (const struct conn *c = h->conns; c; c = c->next)
        n += c->pending && same_host(&c->remote, ss);
    return n;
}

/* The one to evict: the oldest pending connection of the address that
 * holds the most (a flood pays for itself; a lone member's connection is
 * the last to go). NULL if none is pending. */
static struct conn *pending_victim(const struct notes_sync_hub *h)
{
    struct conn *best = NULL;
    unsigned bestn = 0;
    for (struct conn *c = h->conns; c; c = c->next) {
        unsigned n;
        if (!c->pending)
            continue;
        n = pending_from(h, &c->remote);
        if (!best || n > bestn ||
            (n == bestn && c->pending_seq < best->pending_seq)) {
            best = c;
            bestn = n;
        }
    }
    return best;
}

/*
 * Say "busy" on a connection about to be closed. The line goes out at
 * once (it is the first write: the socket's buffer is empty), and what
 * the peer sent is read away first, so that the close is a FIN behind
 * the line and not a reset, which could discard it at the peer.
 */
static void say_busy(uv_tcp_t *t)
{
    uv_buf_t b = uv_buf_init((char *)SYNC_BUSY_LINE, (unsigned)SYNC_BUSY_LEN);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)t, &fd) == 0) {
        char junk[1024];
        for (int i = 0; i < 8 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0;
             i++)
            ;
    }
    (void)uv_try_write((uv_stream_t *)t, &b, 1);
}

/* Make room for a newcomer: end the pending connection c, telling it
 * "busy" unless it was answered already (an M2 sent: the line would be
 * taken for a frame; it is simply closed). */
static void conn_evict(struct conn *c)
{
    if (notes_sync_session_report(c->s)->bytes_sent == 0)
        say_busy(&c->tcp);
    c->rc = NOTES_SYNC_EBUSY;
    notes_sync_session_abort(c->s, NOTES_SYNC_EBUSY,
                             "evicted before its handshake finished: too "
                             "many connections were waiting for theirs, "
                             "the most from its address");
    notes_sync__conn_close(c);
}

/* Close an accepted connection that gets no session; busy: say so. */
static void conn_turn_away(struct conn *c, int busy)
{
    if (busy)
        say_busy(&c->tcp);
    c->result_given = 1;
    c->closing = 1;
    notes_sync__conn_unlink(c);
    uv_close((uv_handle_t *)&c->timer, notes_sync__on_handle_closed);
    uv_close((uv_handle_t *)&c->merge, notes_sync__on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, notes_sync__on_handle_closed);
}

static void on_connection(uv_stream_t *srv, int status)
{
    struct notes_sync_hub *h = srv->data;
    struct conn *c, *v;
    int len;
    if (status < 0 || !h->listening)
        return;
    c = notes_sync__conn_new(h, NOTES_SYNC_RESPONDER, CONN_ANY_SPACE);
    if (!c)
        return;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        conn_turn_away(c, 0);
        return;
    }
    len = (int)sizeof(c->remote);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->remote, &len) != 0)
        memset(&c->remote, 0, sizeof(c->remote));
    /* Its own address holds its share already: it waits, not the others. */
    if (pending_from(h, &c->remote) >= h->max_pending_addr) {
        conn_turn_away(c, 1);
        return;
    }
    while ((h->npending >= h->max_pending || h->active >= h->max_conns) &&
           (v = pending_victim(h)))
        conn_evict(v);
    if (h->active >= h->max_conns) {
        /* Every slot holds a proven peer: there is no stranger to evict. */
        conn_turn_away(c, 1);
        return;
    }
    h->active++;
    c->pending = 1;
    c->pending_seq = ++h->pending_seq;
    h->npending++;
    notes_sync__conn_start(c);
}

/* Discovery on the serve loop; serve goes on without it if it fails. */
static void hub_discovery(struct notes_sync_hub *h, const struct sockaddr_storage *ss)
{
    const notes_sync_serve_opts *o = h->opts;
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    struct sync_disc_cfg dc;
    if (!o->announce_to && ss->ss_family == AF_INET &&
        (ntohl(in->sin_addr.s_addr) >> 24) == 127)
        notes_sync__hub_log(h, "discovery: listening on a loopback address: members on "
                   "the LAN will hear us but cannot connect (listen on "
                   "0.0.0.0)");
    memset(&dc, 0, sizeof(dc));
    dc.loop = h->loop;
    dc.spaces = h->cfg.spaces;
    dc.nspaces = h->cfg.nspaces;
    dc.pk = notes_sync__our_key(h);
    dc.tcp_port = h->port;
    dc.udp_port = o->discovery_port;
    dc.to = o->announce_to;
    dc.nto = o->announce_to ? o->nannounce_to : 0;
    dc.interval_ms = h->announce_ms;
    dc.found = notes_sync__hub_on_found;
    dc.log = notes_sync__hub_log;
    dc.ud = h;
    dc.stats = &h->dstats;
    dc.closed = disc_closed;
    if (sync_disc_start(&dc, &h->disc) == NOTES_OK)
        h->discovery = h->disc_open = 1;
    else
        notes_sync__hub_log(h, "discovery is off: %s (peers can still be given with "
                   "--peer)", notes_sync_last_detail());
}

int notes_sync_hub_start(uv_loop_t *loop, const char *home,
                         const char *passphrase,
                         const notes_sync_serve_opts *o, notes_sync_hub **out)
{
    struct notes_sync_hub *h;
    struct sockaddr_storage ss;
    struct sockaddr_storage bound, listen_ss;
    int blen = sizeof(bound), rc, e;
    if (out)
        *out = NULL;
    if (!loop || !home || !o || !out)
        return NOTES_EINVAL;
    if (!(h = calloc(1, sizeof(*h))))
        return NOTES_ENOMEM;
    h->loop = loop;
    h->opts_copy = *o;
    h->opts = &h->opts_copy;
    o = h->opts;
    /* A member's handshake is one round trip: a few seconds is ample,
     * and a silent stranger holds a pending slot no longer. */
    h->handshake_ms = o->handshake_ms ? o->handshake_ms : 5000;
    h->idle_ms = o->idle_ms ? o->idle_ms : 60000;
    h->max_out = o->max_out ? o->max_out : 4u << 20;
    h->max_conns = o->max_conns ? o->max_conns : 32;
    h->max_pending = o->max_pending ? o->max_pending : 16;
    h->max_pending_addr = o->max_pending_per_addr ? o->max_pending_per_addr : 8;
    h->max_sessions = o->max_sessions;
    h->retry_ms = o->retry_ms ? o->retry_ms : 500;
    h->announce_ms = o->announce_ms ? o->announce_ms : 5000;
    if (!(h->home_copy = strdup(home))) {
        rc = NOTES_ENOMEM;
        goto fail;
    }
    h->home = h->home_copy;
    if ((rc = notes_sync__parse_addr(o->listen ? o->listen : "127.0.0.1:0",
                                     &ss)))
        goto fail;
    listen_ss = ss;
    if (o->npeers) {
        if (!o->peers) {
            rc = NOTES_EINVAL;
            goto fail;
        }
        if (!(h->peer_ss = calloc(o->npeers, sizeof(*h->peer_ss)))) {
            rc = NOTES_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < o->npeers; i++)
            if ((rc = notes_sync__parse_addr(o->peers[i], &h->peer_ss[i])))
                goto fail;
    }
    if (o->nrelays > NOTES_SYNC_RELAYS_MAX || (o->nrelays && !o->relays)) {
        notes_sync__detail("at most %d relays", NOTES_SYNC_RELAYS_MAX);
        rc = NOTES_EINVAL;
        goto fail;
    }
    for (size_t i = 0; i < o->nrelays; i++) {
        char host[NOTES_ADDR_MAX + 1], port[6];
        if ((rc = notes_sync__split_name(o->relays[i], host, port)))
            goto fail;
    }
    if (!(h->readbuf = malloc(READ_BUF))) {
        rc = NOTES_ENOMEM;
        goto fail;
    }
    if ((rc = notes_sync__hub_load(h, home, passphrase, NULL, &h->replica,
                                   &h->identity, &h->spaces)))
        goto fail;
    /* A session speaks for one space: each --peer is dialed once per space
     * (a peer that lacks one ignores that dial, which backs off). */
    if (o->npeers && h->cfg.nspaces) {
        h->ndials = o->npeers * h->cfg.nspaces;
        if (!(h->dials = calloc(h->ndials, sizeof(*h->dials)))) {
            h->ndials = 0;
            rc = NOTES_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < h->ndials; i++) {
            h->dials[i].ss = h->peer_ss[i / h->cfg.nspaces];
            h->dials[i].space = i % h->cfg.nspaces;
        }
    }
    h->cfg.live = o->live || o->npeers || o->discovery || o->nrelays;
    h->punch = !o->no_punch;
    if (!o->no_state_file && sync_peers_lock(home, &h->lock) != NOTES_OK)
        notes_sync__hub_log(h, "no peers state file: %s",
                            notes_sync_last_detail());
    uv_tcp_init(h->loop, &h->listener);
    h->listener.data = h;
    h->nhandles = 1;
    h->listening = 1;
    if ((e = uv_tcp_bind(&h->listener, (struct sockaddr *)&listen_ss, 0)) < 0 ||
        /* A deep accept queue: under a flood of SYNs a member's is not
         * dropped before on_connection can weigh it. */
        (e = uv_listen((uv_stream_t *)&h->listener, 128, on_connection)) < 0 ||
        (e = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound,
                                &blen)) < 0) {
        char keep[512];
        rc = notes_sync__uv_err(e, "listen");
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
        sync_peers_unlock(h->lock); /* no state file for a daemon that */
        h->lock = NULL;             /* never listened */
        /* The listener closes on the caller's loop; the hub goes with it. */
        h->free_on_done = 1;
        h->stopping = 1;
        notes_sync__hub_maybe_stop(h);
        notes_sync__detail("%s", keep);
        return rc;
    }
    h->port = bound.ss_family == AF_INET6
                  ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                  : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    h->started = notes_sync__unix_ms();
    if (h->cfg.live) {
        char dir[4200];
        if (!h->changed_mu_ok && uv_mutex_init(&h->changed_mu) == 0)
            h->changed_mu_ok = 1;
        uv_async_init(h->loop, &h->changed, on_changed);
        h->changed.data = h;
        h->nhandles++;
        if (h->changed_mu_ok && notes_subscribe(hub_on_changed, h) == NOTES_OK) {
            h->subscribed = 1;
        } else {
            notes_sync__hub_log(h, "no change notification: %s",
                                notes_last_detail());
            uv_close((uv_handle_t *)&h->changed, hub_closed);
        }
        if (!o->caller_watches) {
            uv_fs_event_init(h->loop, &h->watch);
            h->watch.data = h;
            h->nhandles++;
            if (notes_replica_watch_dir(home, dir, sizeof(dir)) == NOTES_OK &&
                uv_fs_event_start(&h->watch, on_watch, dir, 0) == 0)
                h->watching = 1;
            else
                uv_close((uv_handle_t *)&h->watch, hub_closed);
        }
    }
    if (h->cfg.live) {
        uv_timer_init(h->loop, &h->flush_timer);
        h->flush_timer.data = h;
        h->flush_timer_init = 1;
        h->nhandles++;
    }
    if (h->lock) {
        uv_timer_init(h->loop, &h->state_timer);
        h->state_timer.data = h;
        h->state_timer_init = 1;
        h->nhandles++;
    }
    for (size_t i = 0; i < h->ndials; i++) {
        struct dial *d = &h->dials[i];
        d->hub = h;
        d->backoff_ms = h->retry_ms;
        uv_timer_init(h->loop, &d->timer);
        d->timer.data = d;
        h->nhandles++;
    }
    h->dialing = 1;
    if (o->discovery)
        hub_discovery(h, &listen_ss);
    for (size_t i = 0; i < h->ndials; i++)
        dial_now(&h->dials[i].timer);
    if (notes_sync__relay_start(h, o->relays, o->nrelays, 0) != NOTES_OK)
        notes_sync__hub_log(h, "relays are off: %s", notes_sync_last_detail());
    if (h->lock)
        notes_sync__on_state_timer(&h->state_timer);
    if (o->on_listen)
        o->on_listen(o->ud, h->port);
    *out = h;
    return NOTES_OK;
fail:
    {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
        h->done_called = 1; /* no handle was opened */
        notes_sync_hub_free(h);
        notes_sync__detail("%s", keep);
    }
    return rc;
}

void notes_sync_hub_stop(notes_sync_hub *h, notes_sync_hub_done_fn done,
                         void *arg)
{
    if (!h)
        return;
    if (h->done_called) {
        if (done)
            done(arg);
        return;
    }
    h->done = done;
    h->done_arg = arg;
    h->stopping = 1;
    notes_sync__hub_maybe_stop(h);
    notes_sync__hub_check_done(h);
}

void notes_sync_hub_free(notes_sync_hub *h)
{
    if (!h)
        return;
    if (!h->done_called) {
        /* Still running: its handles hold it; freed once they close. */
        h->free_on_done = 1;
        notes_sync_hub_stop(h, h->done, h->done_arg);
        return;
    }
    sync_peers_unlock(h->lock);
    if (h->changed_mu_ok)
        uv_mutex_destroy(&h->changed_mu);
    for (size_t i = 0; i < h->nrows; i++)
        free(h->rows[i]);
    notes_sync__hub_unload(h->replica, h->identity, h->spaces,
                           h->cfg.nspaces);
    free(h->readbuf);
    free(h->dials);
    free(h->ctls);
    free(h->peer_ss);
    free(h->home_copy);
    free(h);
}

notes_replica *notes_sync_hub_replica(notes_sync_hub *h)
{
    return h ? h->replica : NULL;
}

int notes_sync_serve(const char *home, const char *passphrase,
                     const notes_sync_serve_opts *o)
{
    uv_loop_t loop;
    notes_sync_hub *h = NULL;
    int rc, e;
    if (!home || !o)
        return NOTES_EINVAL;
    if ((e = uv_loop_init(&loop)) < 0)
        return notes_sync__uv_err(e, "loop");
    rc = notes_sync_hub_start(&loop, home, passphrase, o, &h);
    notes_sync__loop_finish(&loop);
    {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
        notes_sync_hub_free(h);
        notes_sync__detail("%s", keep);
    }
    return rc;
}
