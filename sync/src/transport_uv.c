/*
 * transport_uv.c: moves a session's bytes over TCP with libuv (discovery.c
 * holds the UDP side). One connection, one session. Deadlines: the
 * handshake must finish within handshake_ms of the connection, and the
 * peer must not be silent for idle_ms after it. Backpressure: while more
 * than max_out bytes wait to be written, no new frames are produced and
 * the socket is not read.
 *
 * Strangers cannot lock members out (issue 15): inbound connections that
 * have not finished their handshake ("pending") are bounded in all and
 * per remote address; over a limit, a newcomer evicts the oldest pending
 * connection of the address holding the most, or is turned away if its
 * own address is at its limit, and either is told "busy" in plain text.
 * A flood from a few addresses then holds only its share, and a member's
 * handshake, done in one round trip, gets through.
 *
 * serve also keeps a table of peers, one row per (space, peer key): the
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

#include <sodium.h>
#include <uv.h>

#include "notes_sync_presence.h"
#include "sync_internal.h"

#define READ_BUF (64u << 10)
#define MAX_ROWS 256          /* peers tracked by serve */
#define STATE_DELAY_MS 200    /* state file writes are coalesced */
#define STATE_REFRESH_MS 5000 /* at most this long between rewrites while
                               * discovery counts datagrams */

#define PRES_SEEN 1024    /* (note, key) pairs whose latest seq we keep */

struct notes_sync_hub;
struct dial;
struct peer;

/* How a connection came to be. */
enum { CONN_INBOUND = 0, CONN_MANUAL = 1, CONN_DISCOVERED = 2 };

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct notes_sync_hub *hub;
    notes_sync_session *s;
    size_t queued;        /* bytes handed to uv_write, not yet written */
    int reading, closing, handles, opened, result_given;
    int rc;               /* final result */
    struct conn *next, *prev; /* the hub's connections */
    struct dial *dial;    /* the peer this connection dialed, or NULL */
    int kind;             /* CONN_* */
    size_t space;         /* outbound: index into the hub's spaces */
    struct peer *row;     /* discovered: from the start; others: once open */
    int linked;           /* counted in row->nopen */
    int yielded;          /* ended as a duplicate: not redialed */
    int was_idle;         /* round bookkeeping */
    int grace;            /* failed: the ERROR frame's last chance runs */
    uint64_t acct_sent, acct_recv; /* report counters already in row */
    struct sockaddr_storage remote; /* inbound: the peer's address */
    int initiator;        /* we dialed (once, serve's dials) */
    int pending;          /* inbound, handshake not over: counted */
    uint64_t pending_seq; /* order of arrival among pending ones */
};

/* A --peer in one space that serve keeps a live session with, redialing
 * when it ends. */
struct dial {
    struct notes_sync_hub *hub;
    struct sockaddr_storage ss;
    size_t space;
    uv_timer_t timer;
    unsigned backoff_ms;
    struct conn *c;       /* the current connection, or NULL */
    struct peer *row;     /* once a handshake named the peer */
};

/* A peer of one space, known by its key. */
struct peer {
    struct notes_sync_hub *hub;
    size_t space;
    uint8_t key[32];
    struct sockaddr_storage addr; /* announced, or where it dialed from */
    int found;                    /* CONN_*: how it was first known */
    uint64_t first_heard, last_heard; /* uv_now ms of announcements; 0 */
    uint64_t last_seen, last_sync;    /* Unix ms; 0: never */
    uint64_t sent, recv;              /* changes, over its sessions */
    struct dial *manual;          /* a --peer that reached this key */
    uv_timer_t timer;             /* discovered: the next dial */
    unsigned backoff_ms;
    struct conn *c;               /* discovered: our dial, while it lasts */
    unsigned nopen;               /* open sessions with it, any kind */
    int logged;                   /* its discovery was reported */
};

struct notes_sync_hub {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t stop_timer;
    int listening, stopping;
    notes_sync_config cfg;    /* template for sessions */
    unsigned handshake_ms, idle_ms, max_conns, max_sessions;
    size_t max_out;
    unsigned active, finished;
    unsigned npending, max_pending, max_pending_addr;
    uint64_t pending_seq;
    /* Every connection reads into this one buffer: on_read consumes what
     * on_alloc handed out before the loop reads another socket, so a
     * connection costs no 64 KiB of its own (a flood's do not add up). */
    char *readbuf;
    const notes_sync_serve_opts *opts;
    struct conn *conns;       /* every connection not yet closing */
    uv_fs_event_t watch;      /* live: the notes' logs */
    int watching;
    struct dial *dials;
    size_t ndials;
    int dialing;              /* the dial timers are initialized */
    unsigned retry_ms;
    /* the peer table, discovery, the state file */
    const char *home;
    int port;                 /* the bound TCP port */
    struct peer *rows[MAX_ROWS];
    size_t nrows;
    struct sync_disc *disc;
    notes_sync_discovery_stats dstats;
    int discovery;            /* it was started */
    unsigned announce_ms;
    struct sync_peers_lock *lock; /* held: the state file is ours */
    uv_timer_t state_timer;
    int state_timer_init;
    int state_failed;         /* a write failed (said once) */
    uint64_t started;         /* Unix ms */
    /* presence relay: the newest seq seen per (note, key) */
    struct pres_seen {
        uint8_t nk[48];
        uint64_t seq;
    } pres[PRES_SEEN];
    size_t npres, pres_next;
    int told_stopping;
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
static void hub_maybe_stop(struct notes_sync_hub *h);
static void dial_later(struct dial *d, int was_open);
static void conn_opened(struct conn *c);
static void conn_account(struct conn *c, int round_done);
static void row_closed_conn(struct conn *c);
static void state_dirty(struct notes_sync_hub *h);

/* c's handshake is over (or c is closing): no longer pending. */
static void pending_release(struct conn *c)
{
    if (!c->pending)
        return;
    c->pending = 0;
    c->hub->npending--;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 2, 3))) static void hub_log(void *ud,
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

static void conn_unlink(struct conn *c)
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
    struct notes_sync_hub *h = c->hub;
    if (c->closing)
        return;
    c->closing = 1;
    pending_release(c);
    conn_unlink(c);
    if (c->dial)
        dial_later(c->dial, c->opened);
    row_closed_conn(c);
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
            /* A discovered peer that could not be reached is no session
             * to report: its row in the state file says "backoff". */
            if (h->opts && h->opts->on_session &&
                !(c->kind == CONN_DISCOVERED && !c->opened)) {
                /* notes_sync_last_detail() says why, in the callback. */
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
    if (notes_sync_state(c->s) == NOTES_SYNC_FAILED) {
        /* The ERROR frame had its chance; a peer that does not read
         * keeps no slot (uv_close cancels the pending writes). */
        conn_close(c);
        return;
    }
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
    buf->base = c->hub->readbuf;
    buf->len = READ_BUF;
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
        if (c->initiator && (n == UV_EOF || n == UV_ECONNRESET) &&
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
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    const notes_sync_report *rep = notes_sync_session_report(c->s);
    uint64_t frames = rep ? rep->frames_received : 0;
    int rrc = notes_sync_receive(c->s, (const uint8_t *)buf->base, (size_t)n);
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
                conn_opened(c);
            }
        } else if (was_hs && st2 == NOTES_SYNC_CLOSED) {
            c->opened = 1;
        }
        if (c->linked)
            c->row->last_seen = unix_ms();
    }
    if (!c->closing)
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
    struct notes_sync_hub *h = c->hub;
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
    /* A round just ended (live: idle again; one-shot: closed). */
    int idle = st == NOTES_SYNC_CLOSED || notes_sync_session_idle(c->s);
    if (idle && !c->was_idle)
        conn_account(c, 1);
    c->was_idle = idle;
    if (st == NOTES_SYNC_CLOSED || st == NOTES_SYNC_FAILED) {
        if (c->queued == 0) {
            conn_close(c);
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
            conn_pump(c);
    }
    return 1;
}

static void conn_on_presence(void *ud, const uint8_t *rec, size_t n)
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
    for (const struct conn *c = h->conns; c; c = c->next)
        np += !c->closing && c->opened &&
              notes_sync_state(c->s) == NOTES_SYNC_OPEN;
    for (size_t i = 0; i < h->nrows; i++)
        if (h->rows[i]->last_sync > last)
            last = h->rows[i]->last_sync;
    if (peers)
        *peers = np;
    if (last_sync_ms)
        *last_sync_ms = last;
}

/* A connection and its session; an initiator speaks for one space. */
static struct conn *conn_new(struct notes_sync_hub *h, int role, size_t space)
{
    struct conn *c = calloc(1, sizeof(*c));
    notes_sync_config cfg = h->cfg;
    if (!c)
        return NULL;
    cfg.role = role;
    if (role == NOTES_SYNC_INITIATOR) {
        cfg.spaces = &h->cfg.spaces[space];
        cfg.nspaces = 1;
        c->space = space;
    }
    if (notes_sync_session_new(&cfg, &c->s) != NOTES_OK) {
        free(c);
        return NULL;
    }
    c->hub = h;
    c->initiator = role == NOTES_SYNC_INITIATOR;
    notes_sync_session_on_presence(c->s, conn_on_presence, c);
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
static int hub_load(struct notes_sync_hub *h, const char *home, const char *passphrase,
                    const char *space, notes_replica **r, notes_identity **id,
                    notes_sync_space **spaces)
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

static void hub_unload(notes_replica *r, notes_identity *id,
                       notes_sync_space *spaces, size_t n)
{
    if (spaces) {
        sodium_memzero(spaces, n * sizeof(*spaces));
        free(spaces);
    }
    notes_identity_free(id);
    notes_replica_free(r);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    if (status < 0) {
        c->rc = uv_err(status, "connect");
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_detail());
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
    return notes_sync_once_ex(home, passphrase, space, addr, NULL, report);
}

int notes_sync_once_ex(const char *home, const char *passphrase,
                       const char *space, const char *addr,
                       const notes_sync_once_opts *o,
                       notes_sync_report *report)
{
    struct notes_sync_hub h;
    struct sockaddr_storage ss;
    notes_replica *r;
    notes_identity *id;
    notes_sync_space *spaces;
    uv_connect_t *req;
    int rc, e;
    if (report)
        memset(report, 0, sizeof(*report));
    if (!home || !space || !addr)
        return NOTES_EINVAL;
    memset(&h, 0, sizeof(h));
    if ((rc = parse_addr(addr, &ss)))
        return rc;
    h.handshake_ms = o && o->handshake_ms ? o->handshake_ms : 10000;
    h.idle_ms = o && o->idle_ms ? o->idle_ms : 60000;
    h.max_out = 4u << 20;
    if (!(h.readbuf = malloc(READ_BUF))) {
        r = NULL, id = NULL, spaces = NULL;
        rc = NOTES_ENOMEM;
        goto out;
    }
    if ((rc = hub_load(&h, home, passphrase, space, &r, &id, &spaces)))
        goto out;
    if (o) {
        h.cfg.progress = o->progress;
        h.cfg.progress_ud = o->progress_ud;
    }
    if ((e = uv_loop_init(&h.loop)) < 0) {
        rc = uv_err(e, "loop");
        goto out;
    }
    h.client = conn_new(&h, NOTES_SYNC_INITIATOR, 0);
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
                                 notes_sync_last_detail());
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
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
        hub_unload(r, id, spaces, h.cfg.nspaces);
        free(h.readbuf);
        notes_sync__detail("%s", keep);
    }
    return rc;
}

/* ---- serving ---- */

static void hub_maybe_stop(struct notes_sync_hub *h)
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
        uv_close((uv_handle_t *)&h->listener, NULL);
        uv_close((uv_handle_t *)&h->stop_timer, NULL);
        if (h->watching) {
            h->watching = 0;
            uv_close((uv_handle_t *)&h->watch, NULL);
        }
        for (size_t i = 0; h->dialing && i < h->ndials; i++)
            uv_close((uv_handle_t *)&h->dials[i].timer, NULL);
        for (size_t i = 0; i < h->nrows; i++)
            uv_close((uv_handle_t *)&h->rows[i]->timer, NULL);
        if (h->disc) {
            sync_disc_stop(h->disc);
            h->disc = NULL;
        }
        if (h->state_timer_init) {
            h->state_timer_init = 0;
            uv_close((uv_handle_t *)&h->state_timer, NULL);
        }
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
    struct notes_sync_hub *h = w->data;
    size_t n = name ? strlen(name) : 0;
    (void)events;
    if (status < 0 || h->stopping || n < 5 || strcmp(name + n - 4, ".log") != 0)
        return;
    for (struct conn *c = h->conns, *nx; c; c = nx) {
        nx = c->next;
        if (notes_sync_state(c->s) == NOTES_SYNC_OPEN &&
            notes_sync_session_round(c->s) == NOTES_OK)
            conn_pump(c);
    }
}

/* Connect c (counted in h->active) to ss; a failure closes it. */
static void conn_dial(struct conn *c, const struct sockaddr_storage *ss)
{
    uv_connect_t *req;
    int e;
    if (!(req = malloc(sizeof(*req)))) {
        conn_close(c);
        return;
    }
    req->data = c;
    if ((e = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)ss,
                            on_connect)) < 0) {
        free(req);
        c->rc = uv_err(e, "connect");
        notes_sync_session_abort(c->s, c->rc, notes_sync_last_detail());
        conn_close(c);
    }
}

static void dial_now(uv_timer_t *t)
{
    struct dial *d = t->data;
    struct notes_sync_hub *h = d->hub;
    if (h->stopping || d->c)
        return;
    if (!(d->c = conn_new(h, NOTES_SYNC_INITIATOR, d->space))) {
        dial_later(d, 0);
        return;
    }
    d->c->dial = d;
    d->c->kind = CONN_MANUAL;
    h->active++;
    state_dirty(h);
    conn_dial(d->c, &d->ss);
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

/* ---- the peer table ---- */

static const uint8_t *our_key(const struct notes_sync_hub *h)
{
    return notes_identity_public_key(h->cfg.identity);
}

/* Announced within the last four intervals (three lost in a row). */
static int row_recent(const struct peer *p)
{
    struct notes_sync_hub *h = p->hub;
    return p->last_heard &&
           uv_now(&h->loop) - p->last_heard <= 4 * (uint64_t)h->announce_ms;
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
        uv_timer_init(&h->loop, &p->timer);
        p->timer.data = p;
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
    return memcmp(our_key(h), p->key, 32) < 0 ||
           uv_now(&h->loop) - p->first_heard >= 3 * (uint64_t)h->announce_ms;
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
    if (!(c = conn_new(h, NOTES_SYNC_INITIATOR, p->space))) {
        row_dial_later(p, 0);
        return;
    }
    c->kind = CONN_DISCOVERED;
    c->row = p;
    p->c = c;
    h->active++;
    state_dirty(h);
    conn_dial(c, &p->addr);
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
static void hub_on_found(void *ud, size_t space, const uint8_t pk[32],
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
        p->first_heard = uv_now(&h->loop);
    moved = !same_addr(&p->addr, addr);
    memset(&p->addr, 0, sizeof(p->addr));
    memcpy(&p->addr, addr, sizeof(struct sockaddr_in));
    p->last_heard = uv_now(&h->loop);
    p->last_seen = unix_ms();
    if (!p->logged) {
        char fpr[NOTES_FPR_STRLEN], ip[64];
        p->logged = 1;
        notes_key_fingerprint(pk, fpr);
        uv_ip4_name((const struct sockaddr_in *)addr, ip, sizeof(ip));
        hub_log(h, "discovery: peer %s of space %s at %s:%d", fpr,
                h->cfg.spaces[space].name, ip,
                ntohs(((const struct sockaddr_in *)addr)->sin_port));
    }
    /* It just appeared: let it hear us now, not in an interval. */
    if (fresh)
        sync_disc_announce_soon(h->disc);
    row_consider(p, moved && !fresh);
    state_dirty(h);
}

/*
 * Of two sessions with the same peer in the same space, whether c is the
 * one to end: only a discovered dial of ours gives way, to another session
 * of ours, or to the peer's when the peer's key is the smaller (the peer
 * then keeps its own: both sides pick the same one).
 */
static int conn_yields(const struct conn *c, const struct conn *o)
{
    if (c->kind != CONN_DISCOVERED)
        return 0;
    if (o->kind != CONN_INBOUND)
        return 1;
    return memcmp(our_key(c->hub), c->row->key, 32) > 0;
}

static void conn_yield(struct conn *c)
{
    c->yielded = 1;
    notes_sync_session_end(c->s); /* a goodbye once the round is over */
}

/* The handshake is done: link c to its row (made if new), and end a
 * duplicate session. */
static void conn_opened(struct conn *c)
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
            hub_log(h, "discovery: the peer at the announced address proved "
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
        if (p->addr.ss_family == 0)
            p->addr = c->kind == CONN_INBOUND ? c->remote : c->dial->ss;
    }
    c->linked = 1;
    p->nopen++;
    p->last_seen = unix_ms();
    for (struct conn *o = h->conns; o; o = o->next) {
        if (o == c || !o->linked || o->row != p || o->yielded || o->closing)
            continue;
        if (conn_yields(c, o)) {
            conn_yield(c); /* on_read pumps it */
            break;
        }
        if (conn_yields(o, c)) {
            conn_yield(o);
            conn_pump(o);
            break;
        }
    }
    state_dirty(h);
}

/* Add what c moved since the last call to its row. */
static void conn_account(struct conn *c, int round_done)
{
    const notes_sync_report *r = notes_sync_session_report(c->s);
    struct peer *p = c->row;
    if (!c->linked || !p || !r)
        return;
    p->sent += r->changes_sent - c->acct_sent;
    p->recv += r->changes_received - c->acct_recv;
    c->acct_sent = r->changes_sent;
    c->acct_recv = r->changes_received;
    p->last_seen = unix_ms();
    if (round_done)
        p->last_sync = p->last_seen;
    state_dirty(c->hub);
}

/* c is closing: unlink it from its row, and maybe dial that peer again. */
static void row_closed_conn(struct conn *c)
{
    struct peer *p = c->row;
    if (!p)
        return;
    if (c->linked) {
        conn_account(c, 0);
        c->linked = 0;
        p->nopen--;
    }
    if (c->kind == CONN_DISCOVERED && p->c == c) {
        p->c = NULL;
        /* A dial that failed or dropped: backoff. One ended because another
         * session with p is open: nothing (that one's end brings us here). */
        if (!c->yielded || !p->nopen)
            row_dial_later(p, c->opened && !c->yielded);
    }
    row_consider(p, 0);
    state_dirty(c->hub);
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

static void state_write(struct notes_sync_hub *h)
{
    static const char *const found[] = {"inbound", "manual", "discovered"};
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
    ps.updated_ms = unix_ms();
    ps.port = h->port;
    ps.discovery = h->discovery;
    ps.discovery_port = h->discovery
                            ? (h->opts->discovery_port ? h->opts->discovery_port
                                                       : NOTES_SYNC_DISCOVERY_PORT)
                            : 0;
    ps.disc = h->dstats;
    ps.peers = v;
    ps.npeers = n;
    if (sync_peers_write(h->lock, &ps) != NOTES_OK) {
        /* Keep serving; a later write may work (disk full, ...). Said
         * once, not at every refresh. */
        if (!h->state_failed)
            hub_log(h, "peers state: %s", notes_sync_last_detail());
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

static void on_state_timer(uv_timer_t *t)
{
    struct notes_sync_hub *h = t->data;
    state_write(h);
    /* The discovery counters change without any state change: rewrite
     * about once per announcement interval. Without discovery the file is
     * rewritten only on changes (a busy server under a flood of strangers
     * opens no file at all). */
    if (h->discovery)
        uv_timer_start(&h->state_timer, on_state_timer, state_refresh_ms(h), 0);
}

static void state_dirty(struct notes_sync_hub *h)
{
    if (!h->lock || !h->state_timer_init || h->stopping)
        return;
    if (!uv_is_active((uv_handle_t *)&h->state_timer) ||
        uv_timer_get_due_in(&h->state_timer) > STATE_DELAY_MS)
        uv_timer_start(&h->state_timer, on_state_timer, STATE_DELAY_MS, 0);
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
    conn_close(c);
}

/* Close an accepted connection that gets no session; busy: say so. */
static void conn_turn_away(struct conn *c, int busy)
{
    if (busy)
        say_busy(&c->tcp);
    c->result_given = 1;
    c->closing = 1;
    conn_unlink(c);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_connection(uv_stream_t *srv, int status)
{
    struct notes_sync_hub *h = srv->data;
    struct conn *c, *v;
    int len;
    if (status < 0 || !h->listening)
        return;
    c = conn_new(h, NOTES_SYNC_RESPONDER, 0);
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
    conn_start(c);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct notes_sync_hub *h = t->data;
    if (h->opts->stop && *h->opts->stop) {
        h->stopping = 1;
        hub_maybe_stop(h);
    }
}

/* Discovery on the serve loop; serve goes on without it if it fails. */
static void hub_discovery(struct notes_sync_hub *h, const struct sockaddr_storage *ss)
{
    const notes_sync_serve_opts *o = h->opts;
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    struct sync_disc_cfg dc;
    if (!o->announce_to && ss->ss_family == AF_INET &&
        (ntohl(in->sin_addr.s_addr) >> 24) == 127)
        hub_log(h, "discovery: listening on a loopback address: members on "
                   "the LAN will hear us but cannot connect (listen on "
                   "0.0.0.0)");
    memset(&dc, 0, sizeof(dc));
    dc.loop = &h->loop;
    dc.spaces = h->cfg.spaces;
    dc.nspaces = h->cfg.nspaces;
    dc.pk = our_key(h);
    dc.tcp_port = h->port;
    dc.udp_port = o->discovery_port;
    dc.to = o->announce_to;
    dc.nto = o->announce_to ? o->nannounce_to : 0;
    dc.interval_ms = h->announce_ms;
    dc.found = hub_on_found;
    dc.log = hub_log;
    dc.ud = h;
    dc.stats = &h->dstats;
    if (sync_disc_start(&dc, &h->disc) == NOTES_OK)
        h->discovery = 1;
    else
        hub_log(h, "discovery is off: %s (peers can still be given with "
                   "--peer)", notes_sync_last_detail());
}

int notes_sync_serve(const char *home, const char *passphrase,
                     const notes_sync_serve_opts *o)
{
    struct notes_sync_hub h;
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    struct sockaddr_storage *peer_ss = NULL;
    int blen = sizeof(bound), rc, e, port = 0;
    notes_replica *r;
    notes_identity *id;
    notes_sync_space *spaces;
    if (!home || !o)
        return NOTES_EINVAL;
    memset(&h, 0, sizeof(h));
    h.opts = o;
    h.home = home;
    /* A member's handshake is one round trip: a few seconds is ample,
     * and a silent stranger holds a pending slot no longer. */
    h.handshake_ms = o->handshake_ms ? o->handshake_ms : 5000;
    h.idle_ms = o->idle_ms ? o->idle_ms : 60000;
    h.max_out = o->max_out ? o->max_out : 4u << 20;
    h.max_conns = o->max_conns ? o->max_conns : 32;
    h.max_pending = o->max_pending ? o->max_pending : 16;
    h.max_pending_addr = o->max_pending_per_addr ? o->max_pending_per_addr : 8;
    h.max_sessions = o->max_sessions;
    h.retry_ms = o->retry_ms ? o->retry_ms : 500;
    h.announce_ms = o->announce_ms ? o->announce_ms : 5000;
    if ((rc = parse_addr(o->listen ? o->listen : "127.0.0.1:0", &ss)))
        return rc;
    if (o->npeers) {
        if (!o->peers || !(peer_ss = calloc(o->npeers, sizeof(*peer_ss))))
            return o->peers ? NOTES_ENOMEM : NOTES_EINVAL;
        for (size_t i = 0; i < o->npeers; i++)
            if ((rc = parse_addr(o->peers[i], &peer_ss[i]))) {
                free(peer_ss);
                return rc;
            }
    }
    if (!(h.readbuf = malloc(READ_BUF))) {
        r = NULL, id = NULL, spaces = NULL;
        rc = NOTES_ENOMEM;
        goto out;
    }
    if ((rc = hub_load(&h, home, passphrase, NULL, &r, &id, &spaces)))
        goto out;
    /* A session speaks for one space: each --peer is dialed once per space
     * (a peer that lacks one ignores that dial, which backs off). */
    if (o->npeers && h.cfg.nspaces) {
        h.ndials = o->npeers * h.cfg.nspaces;
        if (!(h.dials = calloc(h.ndials, sizeof(*h.dials)))) {
            h.ndials = 0;
            rc = NOTES_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < h.ndials; i++) {
            h.dials[i].ss = peer_ss[i / h.cfg.nspaces];
            h.dials[i].space = i % h.cfg.nspaces;
        }
    }
    h.cfg.live = o->live || o->npeers || o->discovery;
    if (!o->no_state_file && sync_peers_lock(home, &h.lock) != NOTES_OK)
        hub_log(&h, "no peers state file: %s", notes_sync_last_detail());
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
        /* A deep accept queue: under a flood of SYNs a member's is not
         * dropped before on_connection can weigh it. */
        (e = uv_listen((uv_stream_t *)&h.listener, 128, on_connection)) < 0 ||
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
    h.port = port;
    h.started = unix_ms();
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
    if (h.lock) {
        uv_timer_init(&h.loop, &h.state_timer);
        h.state_timer.data = &h;
        h.state_timer_init = 1;
    }
    for (size_t i = 0; i < h.ndials; i++) {
        struct dial *d = &h.dials[i];
        d->hub = &h;
        d->backoff_ms = h.retry_ms;
        uv_timer_init(&h.loop, &d->timer);
        d->timer.data = d;
    }
    h.dialing = 1;
    if (o->discovery)
        hub_discovery(&h, &ss);
    for (size_t i = 0; i < h.ndials; i++)
        dial_now(&h.dials[i].timer);
    if (h.lock)
        on_state_timer(&h.state_timer);
    if (o->on_listen)
        o->on_listen(o->ud, port);
    if (o->on_loop)
        o->on_loop(o->ud, &h.loop, &h);
    loop_finish(&h.loop);
    state_write(&h); /* the last word: every peer disconnected */
    rc = NOTES_OK;
out:
    {
        char keep[512];
        snprintf(keep, sizeof(keep), "%s", notes_sync_last_detail());
        sync_peers_unlock(h.lock);
        for (size_t i = 0; i < h.nrows; i++)
            free(h.rows[i]);
        hub_unload(r, id, spaces, h.cfg.nspaces);
        free(h.readbuf);
        free(h.dials);
        free(peer_ss);
        notes_sync__detail("%s", keep);
    }
    return rc;
}
