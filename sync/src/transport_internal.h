/*
 * transport_internal.h: the libuv transport's state, shared by conn.c (a
 * connection), hub.c (the daemon) and peers.c (its peer table).
 */
#ifndef NOTES_SYNC_TRANSPORT_INTERNAL_H
#define NOTES_SYNC_TRANSPORT_INTERNAL_H

#include <sys/socket.h>

#include <uv.h>

#include "relay_wire.h"
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

/* How a connection came to be. RELAYED: through a relay (either role);
 * PUNCHED: the direct connection a relayed pairing tried (docs/protocol.md,
 * "Direct upgrade"). */
enum {
    CONN_INBOUND = 0,
    CONN_MANUAL = 1,
    CONN_DISCOVERED = 2,
    CONN_RELAYED = 3,
    CONN_PUNCHED = 4
};
struct relay_ctl;
#define CONN_ANY_SPACE ((size_t)-1)

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_idle_t merge;      /* runs a received bundle's merge off on_read */
    struct notes_sync_hub *hub;
    notes_sync_session *s;
    size_t queued;        /* bytes handed to uv_write, not yet written */
    int reading, closing, handles, opened, result_given;
    int legacy_checked;   /* initiator: the peer looked up in hub->legacy */
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
    /* relayed and punched connections */
    struct relay_ctl *rctl;  /* the relay's control connection it came from */
    uint8_t relay_peer[RELAY_ID_LEN]; /* the peer's id there (our dials) */
    int relay_phase;      /* talking to the relay: not yet PAIRED */
    struct relay_pre *pre; /* owned while relay_phase (relay_client.c) */
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

#define HUB_LEGACY 16 /* peers remembered as older than reconciliation */

struct notes_sync_hub {
    uv_loop_t *loop;          /* the caller's (notes_sync_once: its own) */
    /* Keys of peers that refused a RECON (docs/protocol.md,
     * "Reconciliation"): dialed again, they are sent HAVE lists. */
    uint8_t legacy[HUB_LEGACY][32];
    size_t nlegacy;
    uv_tcp_t listener;
    int listening, stopping;
    /* Stopping ends once every handle of the hub is closed: its own
     * (listener, watcher, timers), its connections' and discovery's. */
    unsigned nhandles, nconns;
    int disc_open;
    int done_called, free_on_done;
    notes_sync_hub_done_fn done;
    void *done_arg;
    /* What the hub owns (released by notes_sync_hub_free). */
    notes_sync_serve_opts opts_copy;
    char *home_copy;
    notes_replica *replica;
    notes_identity *identity;
    notes_sync_space *spaces;
    struct sockaddr_storage *peer_ss;
    notes_sync_config cfg;    /* template for sessions */
    unsigned handshake_ms, idle_ms, max_conns, max_sessions;
    size_t max_out;
    unsigned active, finished;
    unsigned npending, max_pending, max_pending_addr;
    uint64_t pending_seq;
    /* Every connection reads into this one buffer: notes_sync__on_read consumes what
     * on_alloc handed out before the loop reads another socket, so a
     * connection costs no 64 KiB of its own (a flood's do not add up). */
    char *readbuf;
    const notes_sync_serve_opts *opts;
    struct conn *conns;       /* every connection not yet closing */
    uv_fs_event_t watch;      /* live: the notes folder (other processes) */
    int watching;
    /* live: libnotes' change notification (notes_subscribe) wakes the
     * loop through this async handle: it may come from another thread. */
    uv_async_t changed;
    int subscribed;
    int changed_mu_ok;
    /* The notes that changed since on_changed last ran (notifications
     * come from any thread): each goes to the live sessions as a push. */
    uv_mutex_t changed_mu;
    uint8_t changed_ids[32][16];
    size_t nchanged;
    struct dial *dials;
    size_t ndials;
    int changed_all;              /* more than fit: a round everywhere */
    int dialing;              /* the dial timers are initialized */
    unsigned retry_ms;
    int port;                 /* the bound TCP port */
    /* the peer table, discovery, the state file */
    const char *home;
    struct peer *rows[MAX_ROWS];
    size_t nrows;
    struct sync_disc *disc;
    notes_sync_discovery_stats dstats;
    int discovery;            /* it was started */
    unsigned announce_ms;
    struct sync_peers_lock *lock; /* held: the state file is ours */
    /* relays: one control connection per (relay, space) */
    struct relay_ctl *ctls;
    size_t nctls;
    uv_timer_t state_timer;
    int state_timer_init;
    /* live: what pushes stored with deferred durability is flushed this
     * long after (notes_sync_session_flush), once the page and the other
     * peers have heard of it */
    uv_timer_t flush_timer;
    int flush_timer_init;
    int state_failed;         /* a write failed (said once) */
    uint64_t started;         /* Unix ms */
    /* presence relay: the newest seq seen per (note, key) */
    struct pres_seen {
        uint8_t nk[48];
        uint64_t seq;
    } pres[PRES_SEEN];
    size_t npres, pres_next;
    int told_stopping;
    int punch;                /* try direct upgrades (default on) */
    /* notes_sync_once */
    struct conn *client;
    int client_rc;
    char client_detail[512];
    notes_sync_report report;
};

/* A member the relay said is present in one space's tag. */
#define RELAY_MEMBERS 64
enum { RM_IDLE = 0, RM_BUSY = 1, RM_YIELDED = 2 };
struct rmember {
    int used;
    uint8_t id[RELAY_ID_LEN];
    int state;                /* RM_*: ours to dial when our id is smaller */
    int key_known;
    uint8_t key[32];          /* proven by the handshake of a session */
    uint64_t next_ms;         /* uv_now: not dialed before (backoff) */
    unsigned backoff_ms;
};

/* The control connection to one relay for one space (relay_client.c). */
struct relay_ctl {
    struct notes_sync_hub *hub;
    size_t space;
    const char *name;         /* "HOST:PORT" as given (borrowed) */
    struct sockaddr_storage ss; /* resolved at each connect */
    char host[NOTES_ADDR_MAX + 1], port[6];
    uv_getaddrinfo_t gai;
    int resolving;            /* a getaddrinfo runs (counted in nhandles) */
    int resolved;             /* ss holds this connect's address */
    uv_tcp_t tcp;
    uv_timer_t timer;         /* reconnect, ping, liveness, member dials */
    int tcp_open;             /* tcp is initialized and not closed yet */
    int registered;           /* WELCOME received */
    int client;               /* notes_sync_once: dial the first member
                               * (1; 2 once dialed; 3 done) */
    uint64_t since;           /* uv_now of WELCOME */
    uint8_t id[RELAY_ID_LEN];
    uint64_t day;             /* the tag's day */
    uint64_t last_rx, last_ping; /* uv_now */
    unsigned backoff_ms;
    struct sync_relay_rd rd;
    struct rmember m[RELAY_MEMBERS];
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t n;
    uint8_t data[];
};


/* conn.c */
void notes_sync__conn_close(struct conn *c);
void notes_sync__conn_dial(struct conn *c, const struct sockaddr_storage *ss);
struct conn *notes_sync__conn_new(struct notes_sync_hub *h, int role, size_t space);
void notes_sync__conn_pump(struct conn *c);
/* Peers that predate reconciliation (conn.c). */
int notes_sync__refused_recon(int rc, const char *detail);
void notes_sync__legacy_add(struct notes_sync_hub *h, const uint8_t key[32]);
int notes_sync__legacy_has(const struct notes_sync_hub *h,
                           const uint8_t key[32]);
void notes_sync__conn_start(struct conn *c);
void notes_sync__conn_unlink(struct conn *c);
void notes_sync__loop_finish(uv_loop_t *loop);
void notes_sync__on_handle_closed(uv_handle_t *hd);
void notes_sync__on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
/* "HOST:PORT": IPv4, [IPv6] or a host name (resolved at once, blocking;
 * IPv4 preferred). */
int notes_sync__parse_addr(const char *addr, struct sockaddr_storage *ss);
/* A host name's first address of `family` (AF_UNSPEC: IPv4, else IPv6)
 * with `port`; NOTES_EINVAL with the detail when it does not resolve. */
int notes_sync__resolve(const char *host, int port, int family,
                        struct sockaddr_storage *ss);
int notes_sync__split_name(const char *addr, char host[NOTES_ADDR_MAX + 1],
                           char port[6]);
uint64_t notes_sync__unix_ms(void);
int notes_sync__uv_err(int e, const char *what);

void notes_sync__on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf);
int notes_sync__conn_write(struct conn *c, const void *p, size_t n);
int notes_sync__socket_for(struct conn *c, const struct sockaddr *local);
void notes_sync__conn_arm(struct conn *c, unsigned ms);

/* relay_client.c */
int notes_sync__relay_start(struct notes_sync_hub *h, const char *const *relays,
                            size_t n, int client);
void notes_sync__relay_stop(struct notes_sync_hub *h);
size_t notes_sync__relay_phase_read(struct conn *c, const uint8_t *p, size_t n);
void notes_sync__relay_connected(struct conn *c);
void notes_sync__relay_conn_opened(struct conn *c);
void notes_sync__relay_conn_closed(struct conn *c);
int notes_sync__relay_up(const struct notes_sync_hub *h, const char *name);
void notes_sync__relay_row_lost(struct notes_sync_hub *h, size_t space,
                                const uint8_t key[32]);

/* hub.c */
void notes_sync__conn_on_presence(void *ud, const uint8_t *rec, size_t n);
void notes_sync__dial_later(struct dial *d, int was_open);
int notes_sync__hub_load(struct notes_sync_hub *h, const char *home, const char *passphrase,
                    const char *space, notes_replica **r, notes_identity **id,
                    notes_sync_space **spaces);
__attribute__((format(printf, 2, 3))) void notes_sync__hub_log(void *ud,
                                                         const char *fmt, ...);
void notes_sync__hub_maybe_stop(struct notes_sync_hub *h);
/* A session owes a flush: run the hub's flush timer if it is not running. */
void notes_sync__hub_flush_soon(struct notes_sync_hub *h);
void notes_sync__hub_check_done(struct notes_sync_hub *h);
void notes_sync__hub_unload(notes_replica *r, notes_identity *id,
                       notes_sync_space *spaces, size_t n);

/* peers.c */
void notes_sync__conn_account(struct conn *c, int round_done);
void notes_sync__conn_opened(struct conn *c);
void notes_sync__hub_on_found(void *ud, size_t space, const uint8_t pk[32],
                         const struct sockaddr *addr);
void notes_sync__on_state_timer(uv_timer_t *t);
const uint8_t *notes_sync__our_key(const struct notes_sync_hub *h);
void notes_sync__row_closed_conn(struct conn *c);
void notes_sync__state_dirty(struct notes_sync_hub *h);
void notes_sync__state_write(struct notes_sync_hub *h);

#endif
