/*
 * notes_sync.h: the public header of notes_sync, peer-to-peer sync of notes.
 * Spaces (shared notebooks: a name and a 32-byte secret capability), invite
 * codes, an I/O-free session (handshake, encrypted frames, replication of
 * the notes of one space) and a libuv transport that moves its bytes.
 *
 * Conventions as in notes.h: 0 (NOTES_OK) or a negative code, which is a
 * NOTES_E* code of libnotes or one of the NOTES_SYNC_E* codes below;
 * notes_sync_last_detail() says precisely what was wrong. Memory handed out
 * is freed with notes_sync_free(). One session, one thread.
 */
#ifndef NOTES_SYNC_H
#define NOTES_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "notes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------ */

#define NOTES_SYNC_ERR_MAP(X)                                                 \
    X(EHANDSHAKE, -101, "handshake failed")                                   \
    X(EPROTO, -102, "protocol violation")                                     \
    X(ECLOSED, -103, "connection closed before the goodbye")                  \
    X(ETIMEOUT, -104, "timed out")                                            \
    X(EREFUSED, -105, "the peer refused the session")                         \
    X(EFRAME, -106, "frame does not authenticate (tampered, replayed or "      \
                    "out of order)")                                          \
    X(ENET, -107, "network error")                                           \
    X(EBUSY, -108, "the peer is busy")                                       \
    X(EREMOTE, -109, "the git remote cannot be reached or refused")          \
    X(EREMOTEDATA, -110, "the git remote holds content that does not "       \
                         "check out")

enum notes_sync_err {
#define NOTES_SYNC_ERR_ENUM(name, code, text) NOTES_SYNC_##name = (code),
    NOTES_SYNC_ERR_MAP(NOTES_SYNC_ERR_ENUM)
#undef NOTES_SYNC_ERR_ENUM
};

/* A static string for any code: NOTES_SYNC_E*, else notes_strerror(). */
NOTES_API const char *notes_sync_strerror(int err);
/* Symbolic name ("NOTES_SYNC_EPROTO"), else notes_errname(). */
NOTES_API const char *notes_sync_errname(int err);
/*
 * Detail of the last failure of a notes_sync_* function on this thread
 * (libnotes' detail is copied in when a libnotes call failed). Borrowed,
 * valid until the next notes_sync_* call on the thread; "" when none.
 */
NOTES_API const char *notes_sync_last_detail(void);
/* Frees memory returned by notes_sync. NULL is a no-op. */
NOTES_API void notes_sync_free(void *p);

/* ---- Spaces ------------------------------------------------------------ */
/*
 * A space is a shared notebook: a name and a 32-byte random secret. Anyone
 * holding the secret is a member: the secret is the capability to sync the
 * space's notes. Stored in $NOTES_HOME/spaces/NAME (mode 0600); the notes of
 * the space are listed in $NOTES_HOME/spaces/NAME.notes (sync/README.md).
 * A note belongs to at most one space; notes in none belong to the default
 * space "personal", which is never synced and cannot be created.
 */
#define NOTES_SPACE_NAME_MAX 32 /* bytes; [a-z0-9_-], starts with a letter/digit */
#define NOTES_SPACE_SECRET_LEN 32
#define NOTES_SPACE_DEFAULT "personal"
#define NOTES_ADDR_MAX 63       /* "HOST:PORT" in an invite */

typedef struct notes_sync_space {
    char name[NOTES_SPACE_NAME_MAX + 1];
    uint8_t secret[NOTES_SPACE_SECRET_LEN];
} notes_sync_space;

/* Wipe a space value (its secret). NULL is a no-op. */
NOTES_API void notes_sync_space_clear(notes_sync_space *s);
/* NOTES_OK if `name` is a valid name for a new space, else NOTES_EINVAL
 * (with a detail). "personal" is reserved. */
NOTES_API NOTES_NODISCARD int notes_sync_space_name_check(const char *name);
/*
 * Create space `name` with a fresh random secret in replica `home`.
 * OUT *out (may be NULL): the new space. NOTES_EEXIST if it exists.
 */
NOTES_API NOTES_NODISCARD int notes_sync_space_create(const char *home,
                                                 const char *name,
                                                 notes_sync_space *out);
/*
 * Store a space received from elsewhere (an invite). NOTES_OK if it is new
 * or already stored with the same secret; NOTES_EEXIST if a space of that
 * name holds another secret.
 */
NOTES_API NOTES_NODISCARD int notes_sync_space_save(const char *home,
                                               const notes_sync_space *s);
/* Load space `name`. NOTES_ENOTFOUND, NOTES_ECORRUPT, NOTES_EPERM (the file
 * is readable by others). OUT *out, zeroed on failure. */
NOTES_API NOTES_NODISCARD int notes_sync_space_load(const char *home,
                                               const char *name,
                                               notes_sync_space *out);
/*
 * Names of the spaces in `home`, sorted. OUT *names: *n strings; free with
 * notes_sync_space_names_free(*names, *n).
 */
NOTES_API NOTES_NODISCARD int notes_sync_space_list(const char *home, char ***names,
                                               size_t *n);
NOTES_API void notes_sync_space_names_free(char **names, size_t n);
/*
 * Put note `id` into space `name` (which must exist). NOTES_OK if it is
 * there already; NOTES_EEXIST if it belongs to another space (detail names
 * it). Durable (temporary file, fsync, rename) and safe against concurrent
 * writers (flock on $NOTES_HOME/spaces/lock).
 */
NOTES_API NOTES_NODISCARD int notes_sync_space_add_note(const char *home,
                                                   const char *name,
                                                   const uint8_t id[16]);
/* Take note `id` out of space `name` (back to "personal"); NOTES_ENOTFOUND
 * if it was not in it. */
NOTES_API NOTES_NODISCARD int notes_sync_space_remove_note(const char *home,
                                                      const char *name,
                                                      const uint8_t id[16]);
/* The notes of space `name`, sorted. OUT *ids: free with notes_sync_free. */
NOTES_API NOTES_NODISCARD int notes_sync_space_notes(const char *home,
                                                const char *name,
                                                uint8_t (**ids)[16],
                                                size_t *n);
/* The space note `id` belongs to: OUT name ("personal" when none). */
NOTES_API NOTES_NODISCARD int notes_sync_space_of_note(
    const char *home, const uint8_t id[16], char name[NOTES_SPACE_NAME_MAX + 1]);
/*
 * Check every space file in `home` (spaces/NAME, spaces/NAME.notes): check
 * line (docs/format.md, "Checksums") and content. Calls fn once per file,
 * like notes_replica_verify_files. Reads only. Returns NOTES_OK when all
 * are sound, else the code of the first damaged one.
 */
NOTES_API int notes_sync_space_verify_files(const char *home, notes_file_fn fn,
                                       void *arg);

/* ---- Invites ----------------------------------------------------------- */
/*
 * An invite code carries a space (name and secret), the inviter's address
 * and Ed25519 public key: "notes1" followed by lowercase base32 (RFC 4648,
 * no padding) of a versioned blob and a 4-byte BLAKE2b check (layout in
 * docs/protocol.md). Whoever holds it can join the space: share it like a
 * password.
 */
#define NOTES_INVITE_RELAYS_MAX 4
typedef struct notes_sync_invite {
    notes_sync_space space;
    uint8_t inviter[32];              /* Ed25519 public key */
    char addr[NOTES_ADDR_MAX + 1];    /* "HOST:PORT" */
    /* Relays where the inviter's daemon meets the space (version 2 codes;
     * docs/protocol.md, "Relay"). */
    char relays[NOTES_INVITE_RELAYS_MAX][NOTES_ADDR_MAX + 1];
    size_t nrelays;
} notes_sync_invite;

/* OUT *code: NUL-terminated, free with notes_sync_free (it holds the secret:
 * callers should sodium_memzero it). addr: "HOST:PORT", 1..63 printable
 * ASCII bytes with a ':' and a port 1..65535. */
NOTES_API NOTES_NODISCARD int notes_sync_invite_encode(const notes_sync_space *s,
                                                  const uint8_t inviter[32],
                                                  const char *addr,
                                                  char **code);
/* The same from a whole invite, relays included (inv->nrelays at most
 * NOTES_INVITE_RELAYS_MAX, each "HOST:PORT" as addr). */
NOTES_API NOTES_NODISCARD int notes_sync_invite_make(const notes_sync_invite *inv,
                                                char **code);
/*
 * Parse an invite code. Surrounding whitespace is ignored and the code is
 * case-insensitive. NOTES_EINVAL with a detail for anything malformed
 * (wrong prefix, a character outside base32, truncated, the checksum does
 * not match: a typo), NOTES_EVERSION for another version. OUT *out, zeroed
 * on failure.
 */
NOTES_API NOTES_NODISCARD int notes_sync_invite_decode(const char *code,
                                                  notes_sync_invite *out);

/* ---- Sessions (no I/O) ------------------------------------------------- */
/*
 * A session is one connection between two peers of a space, as a state
 * machine that never touches a socket: feed it the bytes that arrive with
 * notes_sync_receive and send whatever notes_sync_next_msg hands out, until
 * notes_sync_state says CLOSED (or FAILED). docs/protocol.md is the wire
 * format: a 3-message handshake keyed by the space secret (mutual Ed25519
 * authentication, ephemeral X25519, nothing identity-revealing sent to a
 * peer that lacks the secret), then XChaCha20-Poly1305 frames with counter
 * nonces, then heads, bundles, done and goodbye.
 */
typedef struct notes_sync_session notes_sync_session;

enum notes_sync_role { NOTES_SYNC_INITIATOR = 1, NOTES_SYNC_RESPONDER = 2 };

enum notes_sync_state {
    NOTES_SYNC_HANDSHAKE = 0, /* keys not yet agreed */
    NOTES_SYNC_OPEN = 1,      /* replicating */
    NOTES_SYNC_CLOSED = 2,    /* both goodbyes exchanged: a complete sync */
    NOTES_SYNC_FAILED = 3     /* see notes_sync_session_error */
};

#define NOTES_SYNC_FRAME_MAX (1u << 20) /* plaintext bytes per frame */

/* Called as bundle bytes cross: sending 1 (we send) or 0 (we receive). */
typedef void (*notes_sync_progress_fn)(void *ud, const uint8_t note[16],
                                       int sending, uint64_t done,
                                       uint64_t total);
/* Optional gate on the peer's key once it is proven: return 0 to accept. */
typedef int (*notes_sync_accept_fn)(void *ud, const uint8_t peer[32]);

typedef struct notes_sync_config {
    int role;                        /* enum notes_sync_role */
    notes_replica *replica;          /* borrowed; NULL: an empty space */
    const notes_identity *identity;  /* borrowed, required: our key */
    const notes_sync_space *spaces;       /* borrowed (copied); initiator: 1 */
    size_t nspaces;                  /* responder: any of them may match */
    uint64_t max_bundle;             /* bytes per received bundle; 0: 64 MiB */
    notes_sync_progress_fn progress; /* optional */
    void *progress_ud;
    notes_sync_accept_fn accept;     /* optional */
    void *accept_ud;
    /* 1: ask for (initiator) or accept (responder) a live session: after
     * a round the connection stays open for more rounds (see below). */
    int live;
    /* 1: notes_sync_receive does not store a received bundle itself (a
     * merge writes and fsyncs the note's log): it stops at the complete
     * bundle and holds what follows until notes_sync_session_apply. */
    int defer_merge;
    /* 1 (initiator): list every note of the space in HAVE instead of
     * reconciling first (docs/protocol.md, "Reconciliation"): for a
     * responder older than the extension, which ends a session that
     * begins with a RECON message. notes_sync_once falls back to it by
     * itself. A responder always answers either way. */
    int no_recon;
} notes_sync_config;

typedef struct notes_sync_report {
    uint64_t bytes_sent, bytes_received;   /* on the wire, handshake included */
    uint64_t frames_sent, frames_received;
    uint64_t changes_sent, changes_received; /* received: new ones stored */
    uint64_t notes_sent, notes_received;   /* notes with a bundle */
    uint64_t notes_created;                /* notes new to this replica */
    uint64_t pushes_sent, pushes_received; /* live pushes (PUSH messages) */
    uint64_t notes_opened;                 /* notes opened (log read and
                                              verified), or taken from a
                                              handle the daemon's page or
                                              another session holds */
    uint8_t peer[32];                      /* peer key, once proven */
    char space[NOTES_SPACE_NAME_MAX + 1];  /* the space, once agreed */
} notes_sync_report;

/* Make a session. OUT *out: free with notes_sync_session_free. */
NOTES_API NOTES_NODISCARD int notes_sync_session_new(
    const notes_sync_config *cfg, notes_sync_session **out);
NOTES_API void notes_sync_session_free(notes_sync_session *s);
/*
 * Feed n bytes received from the peer. Processes every complete message
 * (verifying, merging received bundles into the replica; with
 * cfg.defer_merge, stopping at a complete bundle instead: see
 * notes_sync_session_apply). Returns NOTES_OK,
 * or the error that failed the session (also kept: notes_sync_session_error).
 * Bytes after a failure or after the peer's goodbye are an error.
 */
NOTES_API NOTES_NODISCARD int notes_sync_receive(notes_sync_session *s,
                                                 const uint8_t *p, size_t n);
/*
 * The next bytes to send. OUT *p, *n: borrowed until the next call on `s`;
 * *n = 0 when there is nothing to send now. The caller must send them all
 * (they count as sent). Bundles are produced lazily, one frame at a time,
 * so a caller that stops asking applies backpressure. Returns NOTES_OK or
 * the session's error.
 */
NOTES_API NOTES_NODISCARD int notes_sync_next_msg(notes_sync_session *s,
                                                  const uint8_t **p, size_t *n);
/*
 * With cfg.defer_merge: 1 when a received bundle waits to be stored (the
 * caller should stop reading the socket until then; bytes given to
 * notes_sync_receive meanwhile are held, in order).
 */
NOTES_API int notes_sync_session_merge_pending(const notes_sync_session *s);
/*
 * Store the bundle that waits (the disk work: notes_doc_merge, which
 * fsyncs), then handle what was received after it, up to the next bundle
 * to store. NOTES_OK when none waits. Returns the session's error if the
 * bundle is refused or what follows fails it.
 */
NOTES_API NOTES_NODISCARD int notes_sync_session_apply(notes_sync_session *s);
/*
 * A live session stores what peers push with deferred durability
 * (notes_doc_set_defer: the log's sync and the state file wait), so that the
 * page and the other peers hear of a change before the disk has it; the
 * caller flushes soon after (the hub: 20 ms later). Whether a flush is owed,
 * and the flush itself (NOTES_OK, or the first error of a note's flush).
 */
NOTES_API int notes_sync_session_needs_flush(const notes_sync_session *s);
NOTES_API NOTES_NODISCARD int notes_sync_session_flush(notes_sync_session *s);
/* enum notes_sync_state. */
NOTES_API int notes_sync_state(const notes_sync_session *s);
/* Whether the session has bytes or work left to send. */
NOTES_API int notes_sync_wants_write(const notes_sync_session *s);
/* The error that failed the session (0 if none) and its detail (""). */
NOTES_API int notes_sync_session_error(const notes_sync_session *s);
NOTES_API const char *notes_sync_session_detail(const notes_sync_session *s);
/* Counters so far. Borrowed, valid while `s` lives. */
NOTES_API const notes_sync_report *notes_sync_session_report(
    const notes_sync_session *s);
/*
 * Fail the session locally (e.g. a timeout in the transport) with `err`
 * and a reason; an authenticated error message for the peer is queued if
 * the handshake is over.
 */
NOTES_API void notes_sync_session_abort(notes_sync_session *s, int err,
                                        const char *reason);

/*
 * Live sessions (both sides set cfg.live; docs/protocol.md, "Live
 * sessions"). After each round the session stays OPEN and idle instead of
 * saying goodbye. The initiator starts each further round; the responder
 * asks it to with a poke when its notes change.
 */
/* 1 when live and between rounds (nothing in flight). */
NOTES_API int notes_sync_session_idle(const notes_sync_session *s);
/* Initiator: start another round now if idle, else once this one ends.
 * Responder: ask the initiator for one (a POKE). */
NOTES_API NOTES_NODISCARD int notes_sync_session_round(notes_sync_session *s);
/*
 * Live and idle: send the peer what note `id` gained since the peer last
 * had all of it, as one PUSH (docs/protocol.md, "Pushes"), without a
 * round. NOTES_OK when queued, when there is nothing new (e.g. the change
 * came from this peer) or when the note is not of this session's space;
 * another code (not live, not idle, the note not followed by this session,
 * too big for a PUSH, a queue full) means: ask for a round instead
 * (notes_sync_session_round), which sends everything the peer lacks.
 */
NOTES_API NOTES_NODISCARD int notes_sync_session_push(notes_sync_session *s,
                                                      const uint8_t id[16]);
/* End a live session with a goodbye once the current round is over. */
NOTES_API void notes_sync_session_end(notes_sync_session *s);

/* ---- Transport (libuv, TCP) -------------------------------------------- */

/* The daemon: notes_sync_hub_start on the caller's libuv loop. */
typedef struct notes_sync_hub notes_sync_hub;
/* Called once the hub has closed every handle it had on the loop. */
typedef void (*notes_sync_hub_done_fn)(void *arg);
struct uv_loop_s; /* uv_loop_t, from <uv.h> */

typedef struct notes_sync_serve_opts {
    const char *listen;           /* "HOST:PORT"; NULL: "127.0.0.1:0" */
    unsigned handshake_ms;        /* 0: 5,000 */
    unsigned idle_ms;             /* 0: 60,000 */
    size_t max_out;               /* queued bytes per connection; 0: 4 MiB */
    unsigned max_conns;           /* 0: 32 */
    unsigned max_sessions;        /* stop after this many (0: forever) */
    /* Called once listening with the bound port (port 0 picks one). */
    void (*on_listen)(void *ud, int port);
    /* Called after each session with its result and report. */
    void (*on_session)(void *ud, int rc, const notes_sync_report *r);
    void *ud;
    /*
     * Live: sessions whose dialer asks for it stay open after the first
     * round; each change to a note's log in `home` (a local commit, or one
     * merged from another peer: relayed) starts a round on every open live
     * session, so it reaches every connected peer at once.
     */
    int live;
    /* Peers to dial ("HOST:PORT") and keep a live session with (implies
     * live), redialed after retry_ms (0: 500), doubling to 30 s. */
    const char *const *peers;
    size_t npeers;
    unsigned retry_ms;
    /*
     * LAN discovery (docs/protocol.md, "Discovery"). 1: announce this
     * daemon to the members of each space it serves, by UDP, at start and
     * every announce_ms (0: 5,000; each interval drawn in 75..125 %), and
     * listen for their announcements on discovery_port (0:
     * NOTES_SYNC_DISCOVERY_PORT; bound with SO_REUSEADDR on 0.0.0.0, so
     * several daemons of one host all hear). A member heard is dialed as a
     * live peer (as `peers`, with backoff) by the side whose public key is
     * the smaller, unless a session with it is already open. Discovery only
     * suggests addresses: the handshake authenticates everything. If the
     * UDP port cannot be bound, serve goes on without discovery (on_log
     * says so).
     */
    int discovery;
    int discovery_port;
    /* Where announcements go ("HOST:PORT", IPv4). NULL: the broadcast
     * address of every IPv4 interface that has one (255.255.255.255 if
     * none), on discovery_port. Tests on loopback give
     * "127.255.255.255:PORT". */
    const char *const *announce_to;
    size_t nannounce_to;
    unsigned announce_ms;
    /* Optional: a line about discovery and peers (a peer discovered, the
     * UDP port unavailable, the state file not kept...), without newline. */
    void (*on_log)(void *ud, const char *line);
    /* 1: do not keep $NOTES_HOME/peers (the state `notes peers` reads). */
    int no_state_file;
    /* Live: other processes' commits are seen through a watcher of the
     * notes folder (notes_replica_watch_dir) on the loop. 1: the caller
     * has one already and passes its events to notes_replica_file_event
     * (the hub hears of them through libnotes' change notification). */
    int caller_watches;
    /*
     * Optional: on_stopping is called once when the hub begins to stop,
     * whether notes_sync_hub_stop was called or max_sessions were served
     * (a program that serves more on the same loop closes its handles
     * then, or its loop never ends). on_presence: each verified presence
     * record a peer sends (notes_sync_presence.h), newer than any seen
     * for its (note, key); the hub has relayed it to its other live peers
     * already.
     */
    void (*on_stopping)(void *ud);
    void (*on_presence)(void *ud, const uint8_t *rec, size_t n);
    /*
     * Connections that have not finished their handshake (strangers, until
     * proven otherwise) held at once: in all (0: 16) and per remote
     * address (0: 8; IPv6: per /64). A new one over either limit evicts
     * the oldest pending connection of the address holding the most, or,
     * if its own address is at its limit, is itself turned away; both are
     * told "busy" (docs/protocol.md, "Busy") and closed. Members get
     * through a stranger's flood, which holds at most its share.
     */
    unsigned max_pending;
    unsigned max_pending_per_addr;
    /*
     * Relays ("HOST:PORT", at most NOTES_SYNC_RELAYS_MAX; docs/protocol.md,
     * "Relay"): the hub keeps a control connection to each for each space,
     * meets every member of the space present there (implies live), and
     * tries to upgrade each relayed session to a direct one (no_punch: 1
     * not to try). A lost relay is reconnected with backoff (retry_ms,
     * doubling to 30 s).
     */
    const char *const *relays;
    size_t nrelays;
    int no_punch;
} notes_sync_serve_opts;

/*
 * On the hub's loop only. Send a presence record (made with
 * notes_sync_presence_make) to every live peer; the peers relay it.
 */
NOTES_API NOTES_NODISCARD int notes_sync_hub_presence(notes_sync_hub *h,
                                                      const uint8_t *rec,
                                                      size_t n);
/* On the hub's loop only: peers (distinct keys, as notes peers lists
 * them; not sessions) with an open session now, and the end of
 * the last complete round with any of them (Unix ms, 0: never). */
NOTES_API void notes_sync_hub_status(const notes_sync_hub *h, unsigned *peers,
                                     uint64_t *last_sync_ms);

/* The default UDP port of discovery announcements. */
#define NOTES_SYNC_DISCOVERY_PORT 7655

/*
 * Dial `addr` ("HOST:PORT", numeric IPv4/IPv6), sync every note of space
 * `space` of the replica at `home` (identity unlocked with `passphrase`,
 * NULL if unprotected), say goodbye. Bounded by handshake and idle
 * timeouts (10 s, 60 s). OUT *report (may be NULL): counters.
 */
NOTES_API NOTES_NODISCARD int notes_sync_once(const char *home,
                                              const char *passphrase,
                                              const char *space,
                                              const char *addr,
                                              notes_sync_report *report);
/* Options of notes_sync_once_ex; zero (or NULL) for the defaults. */
typedef struct notes_sync_once_opts {
    notes_sync_progress_fn progress; /* optional: bundle bytes crossing */
    void *progress_ud;
    unsigned handshake_ms;           /* 0: 10,000 */
    unsigned idle_ms;                /* 0: 60,000 */
    /* Reach the space through this relay ("HOST:PORT") instead of addr
     * (which may then be NULL): sync with the first member present there
     * (any member has the space's notes). */
    const char *relay;
} notes_sync_once_opts;

/* notes_sync_once with options (o may be NULL): e.g. a progress callback,
 * called for each chunk of each bundle sent or received. */
NOTES_API NOTES_NODISCARD int notes_sync_once_ex(const char *home,
                                                 const char *passphrase,
                                                 const char *space,
                                                 const char *addr,
                                                 const notes_sync_once_opts *o,
                                                 notes_sync_report *report);
/*
 * Start serving peers of the spaces of `home` (all of them; a peer proves
 * which one by its first message), one session per connection, on the
 * caller's libuv loop (a uv_loop_t *): the caller runs the loop. Listens
 * (o->on_listen is called before this returns), dials o->peers, starts
 * discovery, watches the notes folder. o is copied; the strings and arrays
 * it points to (and home) are borrowed until notes_sync_hub_free. Unless
 * o->no_state_file, the daemon holds a lock on $NOTES_HOME/serve.lock
 * while it runs and keeps the state of its peers in $NOTES_HOME/peers
 * (sync/README.md has the format), which notes_sync_peers_read reads. A
 * second daemon on the same replica serves but keeps no state file.
 * On failure (e.g. NOTES_SYNC_ENET: the address cannot be bound) *out is
 * NULL and the handles already opened close on the loop: run it.
 */
NOTES_API NOTES_NODISCARD int notes_sync_hub_start(
    struct uv_loop_s *loop, const char *home, const char *passphrase,
    const notes_sync_serve_opts *o, notes_sync_hub **out);
/*
 * On the hub's loop only: stop. The listener, the watcher, discovery and
 * the timers close; live sessions between rounds end, the others say
 * goodbye after their round. done(arg) (optional) is called once every
 * handle of the hub is closed (possibly within this call): the caller's
 * loop then ends unless the caller keeps handles of its own. A hub that
 * stopped by itself (max_sessions) calls done at once.
 */
NOTES_API void notes_sync_hub_stop(notes_sync_hub *h,
                                   notes_sync_hub_done_fn done, void *arg);
/* Release a stopped hub (done was called, or the loop ran to its end). A
 * hub still running is stopped first and freed once its handles close.
 * NULL is a no-op. */
NOTES_API void notes_sync_hub_free(notes_sync_hub *h);
/* The replica the hub's sessions read and merge into (valid until
 * notes_sync_hub_free). A page server on the same loop that opens notes
 * with it shares their handles (notes_doc_open_shared). */
NOTES_API notes_replica *notes_sync_hub_replica(notes_sync_hub *h);
/*
 * Convenience: a loop of its own, notes_sync_hub_start, run the loop,
 * free. Returns after max_sessions, or a start error.
 */
NOTES_API NOTES_NODISCARD int notes_sync_serve(const char *home,
                                               const char *passphrase,
                                               const notes_sync_serve_opts *o);

/* ---- Relay (docs/protocol.md, "Relay") ---------------------------------- */
/*
 * A blind relay: members of a space connect out to it and it pairs their
 * connections and forwards the bytes (the end-to-end handshake and frames
 * run through it unchanged). It holds no replica, no key and no file.
 */
#define NOTES_SYNC_RELAY_PORT 7656
typedef struct notes_sync_relay notes_sync_relay;

typedef struct notes_sync_relay_opts {
    const char *listen;        /* "HOST:PORT"; NULL: "0.0.0.0:7656" */
    unsigned max_conns;        /* 0: 1,024 */
    unsigned max_per_addr;     /* connections per source address; 0: 32 */
    unsigned max_per_tag;      /* members registered per tag; 0: 64 */
    unsigned max_waiting;      /* CONNECTs waiting per tag; 0: 16 */
    unsigned hello_ms;         /* to say what a connection is; 0: 5,000 */
    unsigned connect_ms;       /* a CONNECT waits for its ACCEPT; 0: 10,000 */
    unsigned control_idle_ms;  /* a silent control connection; 0: 90,000 */
    size_t rate;               /* bytes/s per direction of a pairing; 0: 1 MiB */
    size_t burst;              /* token bucket depth; 0: 4 MiB */
    size_t max_queue;          /* bytes waiting to be written per
                                * direction before the sender is not
                                * read; 0: 64 KiB */
    void (*on_listen)(void *ud, int port);
    void (*on_log)(void *ud, const char *line); /* optional, no newline */
    void *ud;
} notes_sync_relay_opts;

typedef struct notes_sync_relay_stats {
    unsigned conns;            /* open now */
    unsigned members;          /* control connections registered now */
    unsigned pairings;         /* spliced pairs now */
    unsigned waiting;          /* CONNECTs waiting for their ACCEPT */
    uint64_t accepted;         /* connections accepted since start */
    uint64_t refused;          /* turned away (limits, bad messages) */
    uint64_t paired;           /* pairings made since start */
    uint64_t forwarded;        /* bytes forwarded since start */
} notes_sync_relay_stats;

/* Start a relay on the caller's loop (the caller runs it). o may be NULL;
 * it is copied, its strings borrowed until notes_sync_relay_free.
 * NOTES_SYNC_ENET if the address cannot be bound. */
NOTES_API NOTES_NODISCARD int notes_sync_relay_start(
    struct uv_loop_s *loop, const notes_sync_relay_opts *o,
    notes_sync_relay **out);
/* Close every connection and the listener; done(arg) once all handles are
 * closed. */
NOTES_API void notes_sync_relay_stop(notes_sync_relay *r,
                                     notes_sync_hub_done_fn done, void *arg);
/* Release a stopped relay (NULL is a no-op). */
NOTES_API void notes_sync_relay_free(notes_sync_relay *r);
NOTES_API void notes_sync_relay_stats_get(const notes_sync_relay *r,
                                          notes_sync_relay_stats *st);

/* ---- Known peers (the daemon's state file) ----------------------------- */

/* Datagrams seen by discovery since the daemon started, by outcome. */
typedef struct notes_sync_discovery_stats {
    uint64_t received;     /* every datagram on the port */
    uint64_t accepted;     /* a member's fresh announcement */
    uint64_t own;          /* our own key (our echo, or our identity elsewhere) */
    uint64_t foreign;      /* opens under no space key: another space, or
                            * forged or random bytes of the right size */
    uint64_t malformed;    /* wrong size or version, truncated, oversized,
                            * port 0 */
    uint64_t stale;        /* timestamp over 60 s from our clock */
    uint64_t replayed;     /* an announcement already accepted */
    uint64_t rate_limited; /* over the per-source or global rate */
    uint64_t full;         /* a new peer while the peer table is full */
    uint64_t sent;         /* announcements sent (datagrams) */
    uint64_t send_errors;
} notes_sync_discovery_stats;

#define NOTES_SYNC_PEER_STATE_MAX 16
typedef struct notes_sync_peer {
    char space[NOTES_SPACE_NAME_MAX + 1];
    int key_known;             /* 0: a --peer not reached yet */
    uint8_t key[32];           /* Ed25519, proven by a handshake or
                                * announced by a member */
    char addr[NOTES_ADDR_MAX + 1]; /* dialed or announced "HOST:PORT"; for
                                * inbound peers their source address; "" */
    /* "connected", "dialing", "backoff" (waiting to redial), "discovered"
     * (announced, the peer dials us), "disconnected" */
    char state[NOTES_SYNC_PEER_STATE_MAX];
    char found[NOTES_SYNC_PEER_STATE_MAX]; /* "manual", "discovered", "inbound" */
    uint64_t last_seen_ms;     /* Unix ms of the last announcement or
                                * session activity; 0: never */
    uint64_t last_sync_ms;     /* end of the last complete round; 0: never */
    uint64_t changes_sent, changes_received; /* since the daemon started */
    uint32_t sessions;         /* open sessions with it (1 when connected) */
    char path[8];              /* connected: "direct" or "relay"; else "" */
    char relay[NOTES_ADDR_MAX + 1]; /* path "relay": which one */
} notes_sync_peer;

typedef struct notes_sync_peers {
    int running;               /* a daemon holds $NOTES_HOME/serve.lock now */
    int known;                 /* the state file exists and was read */
    long pid;                  /* of the daemon that wrote it */
    uint64_t started_ms, updated_ms;
    int port;                  /* its TCP port */
    int discovery;             /* discovery was on */
    int discovery_port;
    notes_sync_discovery_stats disc;
    notes_sync_peer *peers;    /* npeers; free with notes_sync_peers_clear */
    size_t npeers;
    /* The relays the daemon meets its spaces' members at (--relay), and
     * whether it is registered at each now (for every space). */
#define NOTES_SYNC_RELAYS_MAX 8
    char relays[NOTES_SYNC_RELAYS_MAX][NOTES_ADDR_MAX + 1];
    int relay_up[NOTES_SYNC_RELAYS_MAX];
    size_t nrelays;
} notes_sync_peers;

/*
 * Read the peers a daemon of `home` knows ($NOTES_HOME/peers) and whether
 * one is running. No file: NOTES_OK with known = 0. A malformed file:
 * NOTES_ECORRUPT with a detail. OUT *out: release with
 * notes_sync_peers_clear.
 */
NOTES_API NOTES_NODISCARD int notes_sync_peers_read(const char *home,
                                                    notes_sync_peers *out);
NOTES_API void notes_sync_peers_clear(notes_sync_peers *p);

/*
 * The replica's relays ($NOTES_HOME/relays, one "HOST:PORT" per line): the
 * relays `notes serve` meets its spaces at when none is given, remembered
 * from the invites joined. load: OUT out[0..*n), at most max; no file is
 * NOTES_OK with *n = 0; a malformed line is NOTES_ECORRUPT. add: appends
 * addr unless it is there (NOTES_OK either way); durable (atomic write).
 */
NOTES_API NOTES_NODISCARD int notes_sync_relays_load(
    const char *home, char (*out)[NOTES_ADDR_MAX + 1], size_t max, size_t *n);
NOTES_API NOTES_NODISCARD int notes_sync_relays_add(const char *home,
                                                    const char *addr);

/* ---- Git remotes (docs/remote.md) --------------------------------------- */
/*
 * A remote is a git repository (a path, file://, ssh://, git@host:,
 * https://, git://: as the git command takes them) where the devices of a
 * space leave their changes for each other, encrypted under a key derived
 * from the space secret: a store-and-forward medium for laptops that are
 * never online together. Each device writes only its own ref,
 * refs/notes/SPACETAG/DEVICETAG (tags keyed by the secret), as a
 * fast-forward; `notes_sync_remote_sync` fetches every device's ref of the
 * space, decrypts, verifies and merges every change as sync does, and
 * pushes what the remote lacks. The remotes of a replica are listed in
 * $NOTES_HOME/remotes (with what was last seen of each device ref); git's
 * working copy of each is the bare mirror $NOTES_HOME/remotes.d/NAME.git.
 */
#define NOTES_REMOTE_NAME_MAX 32 /* [a-z0-9_-], as space names */
#define NOTES_REMOTE_URL_MAX 1024

typedef struct notes_sync_remote {
    char name[NOTES_REMOTE_NAME_MAX + 1];
    char space[NOTES_SPACE_NAME_MAX + 1];
    char url[NOTES_REMOTE_URL_MAX + 1];
} notes_sync_remote;

/* Add remote `name` for space `space` (which must exist) at `url` (no
 * whitespace or control characters, not starting with '-'). NOTES_EEXIST
 * if the name is taken; durable (atomic write). */
NOTES_API NOTES_NODISCARD int notes_sync_remote_add(const char *home,
                                                    const char *name,
                                                    const char *url,
                                                    const char *space);
/* Forget remote `name`: its line, what was seen of it, its mirror and
 * state. NOTES_ENOTFOUND if there is none. The remote itself is left as
 * it is. */
NOTES_API NOTES_NODISCARD int notes_sync_remote_remove(const char *home,
                                                       const char *name);
/* The remotes, in the order added. OUT *out: *n of them, free with
 * notes_sync_free. No file: NOTES_OK with *n = 0. */
NOTES_API NOTES_NODISCARD int notes_sync_remote_list(const char *home,
                                                     notes_sync_remote **out,
                                                     size_t *n);
/* Check $NOTES_HOME/remotes, if there is one: its check line and every
 * line (notes verify, like notes_sync_space_verify_files: fn once for the
 * file). Reads only. NOTES_OK when it is sound or absent, else its code. */
NOTES_API int notes_sync_remote_verify_files(const char *home,
                                             notes_file_fn fn, void *arg);
/* One remote by name: NOTES_ENOTFOUND if none. */
NOTES_API NOTES_NODISCARD int notes_sync_remote_get(const char *home,
                                                    const char *name,
                                                    notes_sync_remote *out);

typedef struct notes_sync_remote_opts {
    /* Past this many bytes of this device's packs on the remote, the next
     * push is one new pack replacing them (a force-push of this device's
     * own ref only). 0: 8 MiB. */
    uint64_t compact_above;
    int compact;  /* 1: compact (push everything as one pack) now */
} notes_sync_remote_opts;

#define NOTES_SYNC_REMOTE_PROBLEMS_MAX 16
typedef struct notes_sync_remote_report {
    unsigned devices;            /* device refs of the space on the remote */
    uint64_t packs_read;         /* new packs read (fetched, opened) */
    uint64_t bytes_fetched;      /* their bytes */
    uint64_t changes_received, notes_received, notes_created;
    uint64_t changes_sent, notes_sent; /* in the pack pushed */
    uint64_t bytes_pushed;       /* the pack pushed (0: nothing to push) */
    int compacted;               /* the push replaced this device's packs */
    uint64_t remote_bytes;       /* packs of every device ref of the space */
    /* What did not check out (a rewound, deleted or swapped ref, garbage,
     * a replayed pack, a refused bundle): one line each, at most
     * NOTES_SYNC_REMOTE_PROBLEMS_MAX (nproblems counts them all). */
    size_t nproblems;
    char problems[NOTES_SYNC_REMOTE_PROBLEMS_MAX][400];
} notes_sync_remote_report;

/*
 * Sync the space of remote `name` with it: fetch, check every device ref
 * against what was seen before, decrypt and verify every new pack, merge
 * (nothing unverified is stored), then push what the remote lacks as one
 * new pack on this device's ref. NOTES_OK; NOTES_SYNC_EREMOTE when git
 * fails (unreachable, authentication refused, push rejected: nothing
 * changed here before the fetch, detail says git's reason);
 * NOTES_SYNC_EREMOTEDATA when something on the remote did not check out
 * (report->problems; what did verify was merged). o may be NULL.
 */
NOTES_API NOTES_NODISCARD int notes_sync_remote_sync(
    notes_replica *r, const char *name, const notes_sync_remote_opts *o,
    notes_sync_remote_report *report);

/*
 * Run the git command (argv[0] "git"; arguments as given, no shell) with
 * stdin from `in` (nin bytes; NULL: none), temporary files in tmpdir,
 * never prompting on a terminal (GIT_TERMINAL_PROMPT=0, ssh BatchMode):
 * the user's identity, configuration and credentials otherwise. NOTES_OK
 * once git ran, whatever its exit status (res->status); NOTES_SYNC_EREMOTE
 * when git is not installed. Release res with notes_sync_git_result_clear.
 * (notes publish; remotes use the same runner with anonymous commits.)
 */
typedef struct notes_sync_git_result {
    int status;       /* git's exit status (128 + signal) */
    char *out, *err;  /* its stdout and stderr, NUL-terminated */
    size_t nout, nerr;
} notes_sync_git_result;
NOTES_API NOTES_NODISCARD int notes_sync_git(const char *tmpdir,
                                             const char *const *argv,
                                             const void *in, size_t nin,
                                             notes_sync_git_result *res);
NOTES_API void notes_sync_git_result_clear(notes_sync_git_result *r);
/* git's reason for a failure: the "fatal:" line of its stderr, printable. */
NOTES_API const char *notes_sync_git_why(const notes_sync_git_result *r,
                                         char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
