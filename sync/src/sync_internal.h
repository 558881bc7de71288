/*
 * sync_internal.h: declarations shared inside notes_sync (not installed):
 * error detail, the frame layer and handshake crypto, discovery.
 * Tests include it to reach the frame layer directly.
 */
#ifndef NOTES_SYNC_INTERNAL_H
#define NOTES_SYNC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "notes_sync.h"

/* ---- errors (sync_util.c) ---- */
__attribute__((format(printf, 1, 2))) void notes_sync__detail(const char *fmt,
                                                             ...);
/* Copy libnotes' detail after a failed libnotes call, prefixed; returns rc. */
int notes_sync__from_notes(int rc, const char *what);

/* ---- bytes: libnotes' helpers (notes.h, NOTES_SIBLING_API) ---- */
/* A varint at *p (before end), minimal as everywhere (docs/format.md):
 * notes__get_varint, for parsers that walk a pointer. 0 or NOTES_ECORRUPT. */
static inline int notes_sync__get_varint(const uint8_t **p, const uint8_t *end,
                                         uint64_t *v)
{
    struct notes_reader r;
    int rc;
    notes__reader_init(&r, *p, (size_t)(end - *p));
    if ((rc = notes__get_varint(&r, v)) == NOTES_OK)
        *p += r.off;
    return rc;
}
/* Where id goes among n entries sorted by id, each `stride` bytes with
 * the 16-byte id first: the index of the first whose id is >= id (n when
 * none is), by binary search. */
static inline size_t notes_sync__lower_id(const void *base, size_t n,
                                          size_t stride, const uint8_t id[16])
{
    const uint8_t *p = base;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(p + mid * stride, id, 16) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
/* Exactly 2n lowercase hex digits (len of them, not NUL-terminated), as
 * sync's own files write them: 0, or -1 for anything else (uppercase
 * too: a file that differs from what was written is not read). */
int notes_sync__unhex_lower(uint8_t *out, size_t n, const char *s, size_t len);
/* A whole small file of sync's (space.c): at most max bytes, regular,
 * NUL-terminated (OUT *out: free). check_private: NOTES_EPERM if others
 * may read it. NOTES_ENOTFOUND, NOTES_ETOOBIG, NOTES_EIO, NOTES_ENOMEM. */
int notes_sync__read_small(const char *path, size_t max, char **out,
                           size_t *n, int check_private);
/* flock on `path` (created 0600 if need be), exclusive or shared, waiting
 * for it: the fd (closing it releases the lock), or NOTES_EIO, said. */
int notes_sync__lock_file(const char *path, int exclusive);
/* A small file of sync's with its check line (notes_check_split), read as
 * notes_sync__read_small does (others may read it): NOTES_ECORRUPT, said,
 * when it holds a NUL byte or its check line does not match. OUT *text:
 * the caller frees it whatever the result (NULL when nothing was read),
 * NUL-ended after the body; *n: the body's length; *checked: whether it
 * has a check line (an older version's file has none). */
int notes_sync__read_checked(const char *path, size_t max, char **text,
                             size_t *n, int *checked);
/* The rest of open file fd, the `size` bytes fstat gave (fewer if it
 * shrank meanwhile), NUL-terminated (OUT *out: free). NOTES_ENOMEM. */
int notes_sync__read_fd(int fd, size_t size, char **out, size_t *n);

/* Put the notes ids (sorted, unique) into space `name` with one write of
 * its list, skipping those another space holds (space.c). OUT *added, *n:
 * the ids added (sorted; free). */
int notes_sync__space_add_many(const char *home, const char *name,
                               const uint8_t (*ids)[16], size_t nids,
                               uint8_t (**added)[16], size_t *n);

/* Take the ids (sorted) out of space `name`, one write. */
int notes_sync__space_remove_many(const char *home, const char *name,
                                  const uint8_t (*ids)[16], size_t nids);

/* ---- handshake and frames (frame.c) ---- */
#define SYNC_M1_LEN 64
#define SYNC_M2_LEN 144
#define SYNC_M3_LEN 112
#define SYNC_HDR_LEN 20   /* sealed 4-byte length */
#define SYNC_TAG_LEN 16
/* What a server says instead of M2 when it turns a connection away
 * (docs/protocol.md, "Busy"): plain text, since nothing is agreed yet. */
#define SYNC_BUSY_LINE "notes-sync/1 busy\n"
#define SYNC_BUSY_LEN (sizeof(SYNC_BUSY_LINE) - 1)

/* Network key of a space: BLAKE2b-256 keyed by the secret over a label. */
void sync_netkey(const uint8_t secret[32], uint8_t k[32]);

struct sync_hs {
    int initiator;
    uint8_t k[32];          /* network key of the agreed space */
    uint8_t e_pk[32], e_sk[32];
    uint8_t peer_e[32];
    uint8_t ee[32];
    uint8_t h[32];          /* transcript hash so far */
    uint8_t peer[32];       /* peer's Ed25519 key, once proven */
};

/* Initiator: make M1 (64 bytes) for network key k. */
int sync_hs_m1(struct sync_hs *hs, const uint8_t k[32], uint8_t m1[SYNC_M1_LEN]);
/* Responder: check M1 against nk keys; OUT *which. NOTES_SYNC_EHANDSHAKE. */
int sync_hs_check_m1(struct sync_hs *hs, const uint8_t (*keys)[32], size_t nk,
                     const uint8_t m1[SYNC_M1_LEN], size_t *which);
/* Responder: make M2 proving our identity. */
int sync_hs_m2(struct sync_hs *hs, const notes_identity *id,
               uint8_t m2[SYNC_M2_LEN]);
/* Initiator: open M2 (learn and check the responder's key), make M3. */
int sync_hs_m3(struct sync_hs *hs, const notes_identity *id,
               const uint8_t m2[SYNC_M2_LEN], uint8_t m3[SYNC_M3_LEN]);
/* Responder: open M3 and learn the initiator's key. */
int sync_hs_check_m3(struct sync_hs *hs, const uint8_t m3[SYNC_M3_LEN]);
/* Both: the two directional frame keys; wipes the handshake secrets. */
void sync_hs_finish(struct sync_hs *hs, uint8_t tx[32], uint8_t rx[32]);
void sync_hs_wipe(struct sync_hs *hs);

/* One direction of the frame stream: a key and a counter nonce. */
struct sync_dir {
    uint8_t key[32];
    uint64_t ctr;
};
/* Seal body (1..NOTES_SYNC_FRAME_MAX bytes) into out: SYNC_HDR_LEN + n +
 * SYNC_TAG_LEN bytes. */
int sync_frame_seal(struct sync_dir *d, const uint8_t *body, size_t n,
                    uint8_t *out);
/* Open a sealed header: OUT *n, the body length. NOTES_SYNC_EFRAME,
 * NOTES_ETOOBIG. Advances the counter only on success. */
int sync_frame_open_hdr(struct sync_dir *d, const uint8_t hdr[SYNC_HDR_LEN],
                        size_t *n);
/* Open the body that follows (n + SYNC_TAG_LEN bytes) into out (n bytes). */
int sync_frame_open_body(struct sync_dir *d, const uint8_t *in, size_t n,
                         uint8_t *out);

/* ---- discovery (discovery.c) ---- */
/*
 * An announcement, one UDP datagram (docs/protocol.md, "Discovery"):
 * version ‖ nonce (24) ‖ XChaCha20-Poly1305(kd, nonce, ad = version,
 * pk (32) ‖ TCP port (u16) ‖ Unix ms (u64)).
 */
#define SYNC_DISC_VERSION 0x01
#define SYNC_DISC_PLAIN 42
#define SYNC_DISC_LEN (1 + 24 + SYNC_DISC_PLAIN + 16) /* 83 */
#define SYNC_DISC_WINDOW_MS 60000u /* accepted clock difference */

/* Outcomes of sync_disc_open (besides NOTES_OK). */
enum { SYNC_DISC_MALFORMED = 1, SYNC_DISC_FOREIGN = 2 };

/* Discovery key of a space: BLAKE2b-256 keyed by the secret over its own
 * label, so it is independent of the network key. */
void sync_disc_key(const uint8_t secret[32], uint8_t kd[32]);
/* Seal an announcement with a fresh random nonce. */
void sync_disc_seal(const uint8_t kd[32], const uint8_t pk[32], uint16_t port,
                    uint64_t unix_ms, uint8_t out[SYNC_DISC_LEN]);
/* Open a datagram of n bytes with each of nk keys (all tried). NOTES_OK
 * (OUT which, pk, port, unix_ms), SYNC_DISC_MALFORMED or SYNC_DISC_FOREIGN. */
int sync_disc_open(const uint8_t (*keys)[32], size_t nk, const uint8_t *p,
                   size_t n, size_t *which, uint8_t pk[32], uint16_t *port,
                   uint64_t *unix_ms);

/* The receiver's bounded memory: token buckets per source address and in
 * all, and the nonces of accepted announcements (replays). */
#define SYNC_DISC_SOURCES 64
#define SYNC_DISC_NONCES 512
#define SYNC_DISC_RATE 100     /* datagrams per second per source ... */
#define SYNC_DISC_BURST 200    /* ... with this burst */
#define SYNC_DISC_GRATE 1000   /* per second in all */
struct sync_disc_filter {
    struct {
        uint32_t ip;
        double tokens;
        uint64_t t_ms, used_ms;
    } src[SYNC_DISC_SOURCES];
    double gtokens;
    uint64_t gt_ms;
    struct {
        uint8_t nonce[24];
        uint64_t until_ms;
    } seen[SYNC_DISC_NONCES];
    size_t seen_next;
};
void sync_disc_filter_init(struct sync_disc_filter *f);
/* 1 if a datagram from ip (network order) at now_ms is within the rates. */
int sync_disc_admit(struct sync_disc_filter *f, uint32_t ip, uint64_t now_ms);
/* 1 if nonce was accepted before (a replay); else remember it, 0. */
int sync_disc_replayed(struct sync_disc_filter *f, const uint8_t nonce[24],
                       uint64_t now_ms);

/* The UDP side, on the serve loop (libuv). */
struct uv_loop_s;
struct sockaddr;
struct sync_disc;
typedef void (*sync_disc_found_fn)(void *ud, size_t space,
                                   const uint8_t pk[32],
                                   const struct sockaddr *addr);
struct sync_disc_cfg {
    struct uv_loop_s *loop;
    const notes_sync_space *spaces;
    size_t nspaces;
    const uint8_t *pk;            /* ours */
    int tcp_port;                 /* announced */
    int udp_port;                 /* 0: NOTES_SYNC_DISCOVERY_PORT */
    const char *const *to;        /* NULL: interface broadcasts */
    size_t nto;
    unsigned interval_ms;         /* 0: 5,000 */
    sync_disc_found_fn found;     /* a member's fresh announcement */
    void (*log)(void *ud, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    void *ud;
    notes_sync_discovery_stats *stats; /* borrowed: counted into */
    void (*closed)(void *ud);     /* optional: stopped, handles closed */
};
/* Bind, start listening and announcing. NOTES_SYNC_ENET with a detail if
 * the port cannot be bound; NOTES_EINVAL for a bad destination. */
int sync_disc_start(const struct sync_disc_cfg *cfg, struct sync_disc **out);
/* Announce again now (a peer was heard for the first time), at most once
 * a second. */
void sync_disc_announce_soon(struct sync_disc *d);
/* Close the handles; the memory goes with the last close callback. */
void sync_disc_stop(struct sync_disc *d);

/* ---- the peers state file (discovery.c) ---- */
struct sync_peers_lock;
/* Take $home/serve.lock for this daemon: NOTES_OK, NOTES_ELOCKED if
 * another daemon holds it, NOTES_EIO. */
int sync_peers_lock(const char *home, struct sync_peers_lock **out);
void sync_peers_unlock(struct sync_peers_lock *l);
/* Replace $home/peers atomically (temporary file, rename); the lock
 * holder only. */
int sync_peers_write(struct sync_peers_lock *l, const notes_sync_peers *p);

/* Tests only: seal `body` as the next frame (an open session). */
/* Speak to this peer without reconciliation (as cfg.no_recon): it
 * predates it. Before the first round only. */
void notes_sync__session_no_recon(notes_sync_session *s);
int notes_sync__queue_raw(notes_sync_session *s, const uint8_t *body,
                          size_t n);
/* Tests only: called on each bundle before it is sent (to forge one). */
extern void (*notes_sync__bundle_hook)(uint8_t *bundle, size_t n);

#endif
