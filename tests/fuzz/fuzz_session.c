/*
 * fuzz_session.c: the message layer of a sync session (sync/src/session.c)
 * after a completed handshake: RECON, HAVE, BUNDLE, ZBUNDLE, DONE, BYE,
 * ERROR, POKE, PRESENCE and PUSH parsed from arbitrary bytes, bundles merged into a
 * real replica, presence records checked (sync/src/presence.c).
 *
 * A session (the "receiver") on a replica in a temporary folder holding
 * three small notes (one in space "team" by two authors, one personal,
 * one in space "other") completes the handshake with the harness, which
 * plays the peer with sync/src/frame.c. The input is then a list of frame
 * bodies that the harness seals for the receiver, which gets each one and
 * then sends whatever it has to (its frames must open and parse).
 *
 * Input: byte 0 sets the session up, then a list of operations.
 *   bit 0  the receiver: 0 responder, 1 initiator;
 *   bit 1  it wants (initiator) or accepts (responder) a live session;
 *   bit 2  it has no replica (an empty space);
 *   bit 3  frames arrive in two pieces;
 *   bit 4  its bundle limit is 4,096 bytes (max_bundle);
 *   bit 5  a progress callback (its numbers must make sense);
 *   bit 6  responder: it serves "other" and "team".
 * An operation is a little-endian u16 n, then n bytes: one frame body
 * (cut short at the end of the input). n = 0 is followed by one byte that
 * acts on the receiver (its value mod 5): 0 notes_sync_session_round,
 * 1 _end, 2 _abort, 3 deliver the last frame again (a replay: must fail),
 * 4 it queues a presence record of its own (sent on live sessions). Every
 * presence record it hands to its callback must verify.
 *
 * With FUZZ_SESSION_VERBOSE set, how each input ended goes to stderr.
 * The replica folder is made once per process (in /dev/shm when there is
 * one) and put back to its first state before each input. Randomness and
 * the commit clock are deterministic, so the fixture's notes (and the
 * corpus that refers to them) are the same in every run.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "notes_sync_presence.h"
#include "sync_internal.h"

/* ---- deterministic randomness (before sodium_init) and clock ---- */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static const char *rng_name(void)
{
    return "fuzz-deterministic";
}
static uint32_t rng_random(void)
{
    return (uint32_t)rng_next();
}
static void rng_buf(void *const buf, const size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
}
static randombytes_implementation rng_impl = {rng_name, rng_random, NULL,
                                              NULL, rng_buf, NULL};

/*
 * libnotes stamps each commit with gettimeofday; while the fixture is made
 * the clock stands still, so its changes (and their ids) are the same in
 * every run. This definition replaces libc's in this program only.
 */
static int clock_frozen;
static uint64_t frozen_ms = 1700000000000ull;

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_frozen) {
        frozen_ms += 1000;
        tv->tv_sec = (time_t)(frozen_ms / 1000);
        tv->tv_usec = 0;
        return 0;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

/* ---- the fixture ---- */
static const uint8_t note_team[16] = {0xa1, 0xa1, 0xa1, 0xa1},
                     note_personal[16] = {0xb2, 0xb2, 0xb2, 0xb2},
                     note_other[16] = {0xc3, 0xc3, 0xc3, 0xc3};

static char base[256], home[300];
static notes_replica *rep;
static notes_identity *me, *peer, *alice;
static notes_sync_space spaces[2]; /* "other", "team" */
static uint8_t netkey[32];    /* of "team" */

struct snap_ent {
    char *path;
    uint8_t *data;
    size_t n;
    mode_t mode;
    int dir;
};
static struct snap_ent *snap;
static size_t nsnap;

static void die(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "fuzz_session fixture: %s: %s (%s)\n", what,
                notes_sync_errname(rc), notes_sync_last_detail());
        abort();
    }
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st, (void)f, (void)w;
    return remove(p);
}

static void cleanup(void)
{
    if (base[0])
        nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    struct stat st;
    uint8_t *b;
    ssize_t got;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !(b = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return NULL;
    }
    got = read(fd, b, (size_t)st.st_size + 1);
    close(fd);
    if (got != (ssize_t)st.st_size) {
        free(b);
        return NULL;
    }
    *n = (size_t)got;
    return b;
}

static int snap_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
    struct snap_ent *e;
    (void)w;
    if (f != FTW_F && f != FTW_D)
        return 0;
    struct snap_ent *grown = realloc(snap, (nsnap + 1) * sizeof(*snap));
    if (!grown)
        abort();
    snap = grown;
    e = &snap[nsnap++];
    memset(e, 0, sizeof(*e));
    e->path = strdup(p);
    e->mode = st->st_mode & 07777;
    e->dir = f == FTW_D;
    if (!e->path || (!e->dir && !(e->data = slurp(p, &e->n))))
        abort();
    return 0;
}

static struct snap_ent *snap_find(const char *p)
{
    for (size_t i = 0; i < nsnap; i++)
        if (strcmp(snap[i].path, p) == 0)
            return &snap[i];
    return NULL;
}

static int prune_cb(const char *p, const struct stat *st, int f,
                    struct FTW *w)
{
    (void)st, (void)w;
    if (!snap_find(p))
        (void)(f == FTW_DP ? rmdir(p) : unlink(p));
    return 0;
}

/* Put the replica folder back as the snapshot holds it. */
static void fixture_reset(void)
{
    nftw(home, prune_cb, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < nsnap; i++) {
        struct snap_ent *e = &snap[i];
        uint8_t *now;
        size_t n = 0;
        int fd;
        if (e->dir) {
            (void)mkdir(e->path, e->mode);
            continue;
        }
        now = slurp(e->path, &n);
        if (now && n == e->n && memcmp(now, e->data, n) == 0) {
            free(now);
            continue;
        }
        free(now);
        fd = open(e->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, e->mode);
        if (fd < 0 || write(fd, e->data, e->n) != (ssize_t)e->n)
            abort();
        close(fd);
    }
}

/* Merge a note made in memory by `author` into the replica. */
static void import_note(const uint8_t id[16], const notes_identity *author,
                        const char *text, const char *title)
{
    notes_doc *m, *d;
    uint8_t *b;
    size_t n, added;
    die(notes_doc_memory(author, id, &m), "memory note");
    die(notes_doc_set_text(m, text, strlen(text)), "text");
    if (title)
        die(notes_doc_set_field(m, "title", title), "field");
    die(notes_doc_commit(m, NULL), "commit");
    die(notes_doc_export(m, NULL, 0, &b, &n), "export");
    die(notes_doc_create_id(rep, id, &d), "create");
    die(notes_doc_merge(d, b, n, &added), "merge");
    notes_free(b);
    notes_doc_free(d);
    notes_doc_free(m);
}

/* Append text to a note of the replica as one commit of its identity. */
static void edit_note(const uint8_t id[16], const char *text)
{
    notes_doc *d;
    die(notes_doc_open(rep, id, &d), "open");
    die(notes_doc_splice(d, notes_doc_length(d), 0, text, strlen(text)),
        "splice");
    die(notes_doc_commit(d, NULL), "commit");
    notes_doc_free(d);
}

static void fixture_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[400];
    struct stat st;
    notes_doc *d;
    rng_state = 1;
    if (randombytes_set_implementation(&rng_impl) != 0 ||
        notes_init() != NOTES_OK)
        abort();
    clock_frozen = 1;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
        access("/dev/shm", W_OK) == 0)
        tmp = "/dev/shm";
    snprintf(base, sizeof(base), "%s/notes-fuzz-session-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        base[0] = '\0';
        abort();
    }
    atexit(cleanup);
    snprintf(home, sizeof(home), "%s/recv", base);
    die(notes_replica_create(home, "receiver", NULL, &rep), "replica");
    snprintf(path, sizeof(path), "%s/identity", home);
    die(notes_identity_load(path, NULL, &me), "identity");
    die(notes_identity_generate("peer", &peer), "identity");
    die(notes_identity_generate("alice", &alice), "identity");
    memcpy(spaces[0].name, "other", 6);
    memset(spaces[0].secret, 0x0e, 32);
    memcpy(spaces[1].name, "team", 5);
    memset(spaces[1].secret, 0x7e, 32);
    sync_netkey(spaces[1].secret, netkey);
    die(notes_sync_space_save(home, &spaces[0]), "space");
    die(notes_sync_space_save(home, &spaces[1]), "space");
    /* team: alice's note, then an edit of ours; personal; other. */
    import_note(note_team, alice, "# Standup\n\n- ship sync\n", "Standup");
    edit_note(note_team, "- fuzz it\n");
    die(notes_sync_space_add_note(home, "team", note_team), "add");
    import_note(note_personal, me, "my own note\n", NULL);
    import_note(note_other, me, "other space\n", "Other");
    die(notes_sync_space_add_note(home, "other", note_other), "add");
    /* Open each once (files made on first use belong to the snapshot). */
    die(notes_doc_open(rep, note_team, &d), "open");
    notes_doc_free(d);
    die(notes_doc_open(rep, note_other, &d), "open");
    notes_doc_free(d);
    die(notes_doc_open(rep, note_personal, &d), "open");
    notes_doc_free(d);
    clock_frozen = 0;
    if (nftw(home, snap_cb, 16, FTW_PHYS) != 0)
        abort();
}

/* ---- the receiver and the harness's side of the wire ---- */
static struct sync_dir to_recv, from_recv; /* harness tx, rx */
static uint8_t *sealed, *opened;           /* one frame each */
static size_t sealed_len;

static int progress_ok = 1;
static int verbose; /* FUZZ_SESSION_VERBOSE set: say how each input ended */
static void progress_cb(void *ud, const uint8_t note[16], int sending,
                        uint64_t done, uint64_t total)
{
    (void)ud, (void)note, (void)sending;
    if (done > total || total == 0)
        progress_ok = 0;
}

/* Presence records the receiver passes on: verified, of a space note. */
static int presence_ok = 1;
static void presence_cb(void *ud, const uint8_t *rec, size_t n)
{
    uint8_t note[16], key[32];
    uint64_t seq;
    const char *json;
    size_t jn;
    (void)ud;
    if (notes_sync_presence_open(rec, n, note, key, &seq, &json, &jn) !=
        NOTES_OK)
        presence_ok = 0;
}

/* A record of the receiver's own (op 4): seq grows per input. */
static void queue_presence(notes_sync_session *s, uint64_t seq)
{
    static const char json[] = "{\"name\":\"receiver\",\"cursor\":3}";
    uint8_t *rec;
    size_t n;
    die(notes_sync_presence_make(me, note_team, seq, json, sizeof(json) - 1,
                                 &rec, &n),
        "presence");
    if (notes_sync_session_presence(s, rec, n) != NOTES_OK) {
        /* not live (or not open): nothing queued */
    }
    notes_sync_free(rec);
}

/* Frames the receiver sent: each opens, and holds whole messages. */
static void check_out(const uint8_t *p, size_t n)
{
    while (n) {
        size_t len;
        const uint8_t *q, *end;
        if (n < SYNC_HDR_LEN ||
            sync_frame_open_hdr(&from_recv, p, &len) != NOTES_OK ||
            n - SYNC_HDR_LEN < len + SYNC_TAG_LEN ||
            sync_frame_open_body(&from_recv, p + SYNC_HDR_LEN, len,
                                 opened) != NOTES_OK)
            abort();
        p += SYNC_HDR_LEN + len + SYNC_TAG_LEN;
        n -= SYNC_HDR_LEN + len + SYNC_TAG_LEN;
        for (q = opened, end = opened + len; q < end;) {
            uint8_t type = *q++;
            uint64_t ml;
            if (type < 1 || type > 10 || notes_sync__get_varint(&q, end, &ml) ||
                ml > (uint64_t)(end - q))
                abort();
            q += ml;
        }
    }
}

/* Let the receiver send what it has. */
static void drain(notes_sync_session *s)
{
    for (int i = 0; i < 10000; i++) {
        const uint8_t *p;
        size_t n;
        int rc = notes_sync_next_msg(s, &p, &n);
        (void)rc; /* a failed session still hands out its ERROR frame */
        if (!n)
            return;
        check_out(p, n);
    }
    abort(); /* it never runs dry */
}

/* The receiver's configuration for config byte `cfg`. */
static void receiver_config(uint8_t cfg, notes_sync_config *cp)
{
    notes_sync_config c;
    memset(&c, 0, sizeof(c));
    c.role = (cfg & 1) ? NOTES_SYNC_INITIATOR : NOTES_SYNC_RESPONDER;
    c.live = (cfg & 2) != 0;
    c.replica = (cfg & 4) ? NULL : rep;
    c.identity = me;
    c.max_bundle = (cfg & 16) ? 4096 : 0;
    if (cfg & 32)
        c.progress = progress_cb;
    c.spaces = &spaces[1];
    c.nspaces = 1;
    if ((cfg & 64) && c.role == NOTES_SYNC_RESPONDER) {
        c.spaces = spaces;
        c.nspaces = 2;
    }
    *cp = c;
}

/* The session for config byte `cfg`, with the handshake done. */
static notes_sync_session *receiver_open(uint8_t cfg)
{
    notes_sync_config c;
    notes_sync_session *s;
    struct sync_hs hs;
    const uint8_t *p;
    size_t n, which;
    uint8_t m[SYNC_M2_LEN];
    receiver_config(cfg, &c);
    die(notes_sync_session_new(&c, &s), "session");
    notes_sync_session_on_presence(s, presence_cb, NULL);
    if (c.role == NOTES_SYNC_RESPONDER) {
        sync_hs_m1(&hs, netkey, m);
        die(notes_sync_receive(s, m, SYNC_M1_LEN), "M1");
        die(notes_sync_next_msg(s, &p, &n), "M2");
        if (n != SYNC_M2_LEN)
            abort();
        die(sync_hs_m3(&hs, peer, p, m), "M3");
        die(notes_sync_receive(s, m, SYNC_M3_LEN), "M3");
        sync_hs_finish(&hs, to_recv.key, from_recv.key);
        to_recv.ctr = from_recv.ctr = 0;
        drain(s);
    } else {
        die(notes_sync_next_msg(s, &p, &n), "M1");
        if (n != SYNC_M1_LEN)
            abort();
        die(sync_hs_check_m1(&hs, (const uint8_t(*)[32]) & netkey, 1, p,
                             &which),
            "M1");
        die(sync_hs_m2(&hs, peer, m), "M2");
        die(notes_sync_receive(s, m, SYNC_M2_LEN), "M2");
        die(notes_sync_next_msg(s, &p, &n), "M3");
        if (n < SYNC_M3_LEN)
            abort();
        die(sync_hs_check_m3(&hs, p), "M3");
        sync_hs_finish(&hs, to_recv.key, from_recv.key);
        to_recv.ctr = from_recv.ctr = 0;
        check_out(p + SYNC_M3_LEN, n - SYNC_M3_LEN); /* its RECON (M3 may
                                                         go out alone) */
        drain(s);
    }
    sync_hs_wipe(&hs);
    if (notes_sync_state(s) != NOTES_SYNC_OPEN)
        abort();
    return s;
}

/* Seal body as the next frame for the receiver and deliver it. */
static int send_frame(notes_sync_session *s, const uint8_t *body, size_t n,
                      int halves)
{
    size_t k;
    int rc;
    die(sync_frame_seal(&to_recv, body, n, sealed), "seal");
    sealed_len = SYNC_HDR_LEN + n + SYNC_TAG_LEN;
    k = halves ? sealed_len / 2 : sealed_len;
    rc = notes_sync_receive(s, sealed, k);
    if (rc == NOTES_OK && k < sealed_len)
        rc = notes_sync_receive(s, sealed + k, sealed_len - k);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    const uint8_t *p = data + 1, *end = data + size;
    notes_sync_session *s;
    uint8_t cfg;
    uint64_t pseq = 1;
    if (!inited) {
        verbose = getenv("FUZZ_SESSION_VERBOSE") != NULL;
        fixture_setup();
        if (!(sealed = malloc(SYNC_HDR_LEN + NOTES_SYNC_FRAME_MAX +
                              SYNC_TAG_LEN)) ||
            !(opened = malloc(NOTES_SYNC_FRAME_MAX)))
            abort();
        inited = 1;
    }
    if (size < 1)
        return 0;
    cfg = data[0];
    rng_state = 0x5eed;
    progress_ok = presence_ok = 1;
    sealed_len = 0;
    fixture_reset();
    s = receiver_open(cfg);
    while (p < end && notes_sync_state(s) == NOTES_SYNC_OPEN) {
        size_t n = (size_t)(end - p);
        if (n >= 2) {
            n = (size_t)p[0] | (size_t)p[1] << 8;
            p += 2;
        }
        if (n == 0) {
            uint8_t op = p < end ? *p++ : 0;
            switch (op % 5) {
            case 0:
                if (notes_sync_session_round(s) != NOTES_OK) {
                    /* not live, or no longer open: nothing to do */
                }
                break;
            case 1:
                notes_sync_session_end(s);
                break;
            case 2:
                notes_sync_session_abort(s, NOTES_SYNC_ETIMEOUT, "fuzz");
                break;
            case 3:
                /* A replayed frame never authenticates. */
                if (sealed_len &&
                    notes_sync_receive(s, sealed, sealed_len) == NOTES_OK)
                    abort();
                break;
            default:
                queue_presence(s, pseq++);
                break;
            }
        } else {
            if (n > (size_t)(end - p))
                n = (size_t)(end - p);
            if (n == 0)
                break;
            (void)send_frame(s, p, n, cfg & 8);
            p += n;
        }
        drain(s);
    }
    if (!progress_ok || !presence_ok)
        abort();
    if (verbose)
        fprintf(stderr, "fuzz_session: cfg %#x: %s %s\n", cfg,
                notes_sync_state(s) == NOTES_SYNC_CLOSED ? "closed"
                : notes_sync_state(s) == NOTES_SYNC_OPEN ? "open"
                                                         : "failed:",
                notes_sync_session_detail(s));
    notes_sync_session_free(s);
    return 0;
}
