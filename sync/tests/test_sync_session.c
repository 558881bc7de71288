/*
 * test_sync_session.c: the I/O-free session, two of them pumped against each
 * other in memory for a bounded number of rounds: handshake, wrong secret,
 * damaged / replayed / reordered / oversized frames, replication of two
 * replicas in temporary folders, chunked first sync, incremental cost,
 * forged changes refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>

#include "notes_sync.h"
#include "notes_sync_presence.h"
#include "sync_internal.h"

#define MAX_ROUNDS 200

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st, (void)f, (void)w;
    return remove(p);
}

struct peer {
    char *home;
    notes_replica *r;
    notes_identity *id;
};

static void peer_make(struct peer *p, const char *name)
{
    char path[512];
    p->home = strdup("/tmp/notes-sync-test-XXXXXX");
    assert_non_null(mkdtemp(p->home));
    assert_int_equal(notes_replica_create(p->home, name, NULL, &p->r),
                     NOTES_OK);
    assert_int_equal(notes_replica_unlock(p->r, NULL), NOTES_OK);
    snprintf(path, sizeof(path), "%s/identity", p->home);
    assert_int_equal(notes_identity_load(path, NULL, &p->id), NOTES_OK);
}

static void peer_free(struct peer *p)
{
    notes_identity_free(p->id);
    notes_replica_free(p->r);
    nftw(p->home, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(p->home);
}

static void make_note(struct peer *p, const char *space, const char *text,
                      uint8_t id[16])
{
    notes_doc *d;
    assert_int_equal(notes_doc_create(p->r, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, text, strlen(text)), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    memcpy(id, notes_doc_id(d), 16);
    notes_doc_free(d);
    if (space)
        assert_int_equal(notes_sync_space_add_note(p->home, space, id), NOTES_OK);
}

static void edit_note(struct peer *p, const uint8_t id[16], size_t pos,
                      const char *text)
{
    notes_doc *d;
    assert_int_equal(notes_doc_open(p->r, id, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, pos, 0, text, strlen(text)),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
}

/* The note's text (malloc'd), or NULL if this replica does not have it. */
static char *note_text(struct peer *p, const uint8_t id[16])
{
    notes_doc *d;
    const char *t;
    size_t n;
    char *copy;
    if (notes_doc_open(p->r, id, &d) != NOTES_OK)
        return NULL;
    t = notes_doc_text(d, &n);
    copy = malloc(n + 1);
    memcpy(copy, t, n);
    copy[n] = '\0';
    notes_doc_free(d);
    return copy;
}

/* A session with the given bundle limit (0: the default) and deferral. */
static notes_sync_session *session_ex(notes_replica *r, const notes_identity *id,
                                      int role, const notes_sync_space *sp,
                                      size_t n, uint64_t max_bundle,
                                      int defer_merge)
{
    notes_sync_config c;
    notes_sync_session *s;
    memset(&c, 0, sizeof(c));
    c.role = role;
    c.replica = r;
    c.identity = id;
    c.spaces = sp;
    c.nspaces = n;
    c.max_bundle = max_bundle;
    c.defer_merge = defer_merge;
    assert_int_equal(notes_sync_session_new(&c, &s), NOTES_OK);
    return s;
}

static notes_sync_session *session(notes_replica *r, const notes_identity *id,
                                   int role, const notes_sync_space *sp, size_t n)
{
    return session_ex(r, id, role, sp, n, 0, 0);
}

/* What crosses the wire, with an optional tap that may alter it. */
struct wire {
    size_t sent[2];                   /* 0: a -> b, 1: b -> a */
    int rounds;
    void (*tap)(struct wire *w, int dir, uint8_t *p, size_t *n);
    size_t flip_dir, flip_at;         /* for flip_tap */
    uint8_t *log[2];                  /* everything sent, if logging */
    size_t loglen[2];
    int logging;
    int errors;                       /* receive calls that failed */
    int dribble;                      /* deliver one byte at a time */
};

static int move(notes_sync_session *from, notes_sync_session *to,
                struct wire *w, int dir)
{
    const uint8_t *p;
    size_t n;
    uint8_t *copy;
    if (notes_sync_next_msg(from, &p, &n) != NOTES_OK && n == 0)
        return 0;
    if (n == 0)
        return 0;
    copy = malloc(n);
    memcpy(copy, p, n);
    if (w->logging) {
        w->log[dir] = realloc(w->log[dir], w->loglen[dir] + n);
        memcpy(w->log[dir] + w->loglen[dir], copy, n);
        w->loglen[dir] += n;
    }
    if (w->tap)
        w->tap(w, dir, copy, &n);
    w->sent[dir] += n;
    if (w->dribble) {
        for (size_t i = 0; i < n; i++)
            if (notes_sync_receive(to, copy + i, 1) != NOTES_OK) {
                w->errors++;
                break;
            }
    } else if (n && notes_sync_receive(to, copy, n) != NOTES_OK) {
        w->errors++;
    }
    free(copy);
    return 1;
}

/* Pump until quiet; fails the test if that takes more than MAX_ROUNDS. */
static void pump(notes_sync_session *a, notes_sync_session *b, struct wire *w)
{
    for (w->rounds = 0; w->rounds < MAX_ROUNDS; w->rounds++) {
        int moved = move(a, b, w, 0);
        moved |= move(b, a, w, 1);
        if (!moved)
            return;
    }
    fail_msg("sessions still talking after %d rounds", MAX_ROUNDS);
}

static void random_space(notes_sync_space *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    notes__random(s->secret, 32);
}

static void test_handshake_ok(void **st)
{
    (void)st;
    notes_identity *ia, *ib;
    notes_sync_space sp;
    struct wire w = {0};
    assert_int_equal(notes_identity_generate("A", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sp, "team");
    notes_sync_session *a = session(NULL, ia, NOTES_SYNC_INITIATOR, &sp, 1);
    notes_sync_session *b = session(NULL, ib, NOTES_SYNC_RESPONDER, &sp, 1);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    assert_memory_equal(notes_sync_session_report(a)->peer,
                        notes_identity_public_key(ib), 32);
    assert_memory_equal(notes_sync_session_report(b)->peer,
                        notes_identity_public_key(ia), 32);
    assert_string_equal(notes_sync_session_report(b)->space, "team");
    printf("empty sync: %zu + %zu bytes, %d rounds\n", w.sent[0], w.sent[1],
           w.rounds);
    /* After the goodbye, any byte is an error. */
    assert_int_equal(notes_sync_receive(b, (const uint8_t *)"x", 1),
                     NOTES_SYNC_EPROTO);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    notes_identity_free(ia);
    notes_identity_free(ib);
}

/* The responder tries each of its spaces; the right one is agreed. */
static void test_handshake_picks_space(void **st)
{
    (void)st;
    notes_identity *ia, *ib;
    notes_sync_space sp[3];
    struct wire w = {0};
    assert_int_equal(notes_identity_generate("A", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sp[0], "one");
    random_space(&sp[1], "two");
    random_space(&sp[2], "three");
    notes_sync_session *a = session(NULL, ia, NOTES_SYNC_INITIATOR, &sp[1], 1);
    notes_sync_session *b = session(NULL, ib, NOTES_SYNC_RESPONDER, sp, 3);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    assert_string_equal(notes_sync_session_report(b)->space, "two");
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    notes_identity_free(ia);
    notes_identity_free(ib);
}

static void test_handshake_wrong_secret(void **st)
{
    (void)st;
    notes_identity *ia, *ib;
    notes_sync_space sa, sb;
    struct wire w = {0};
    const uint8_t *pa;
    assert_int_equal(notes_identity_generate("A", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sa, "team");
    sb = sa;
    sb.secret[31] ^= 0x80; /* one bit off */
    notes_sync_session *a = session(NULL, ia, NOTES_SYNC_INITIATOR, &sa, 1);
    notes_sync_session *b = session(NULL, ib, NOTES_SYNC_RESPONDER, &sb, 1);
    w.logging = 1;
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
    assert_int_equal(notes_sync_session_error(b), NOTES_SYNC_EHANDSHAKE);
    printf("wrong secret: responder: %s\n", notes_sync_session_detail(b));
    /* The initiator sent only M1: no public key, no signature in it. */
    assert_int_equal(w.sent[0], SYNC_M1_LEN);
    pa = notes_identity_public_key(ia);
    assert_null(memmem(w.log[0], w.loglen[0], pa, 32));
    assert_null(memmem(w.log[0], w.loglen[0], pa, 8));
    /* The responder answered nothing at all. */
    assert_int_equal(w.sent[1], 0);
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_HANDSHAKE);
    assert_int_equal(notes_sync_session_report(a)->changes_received, 0);
    free(w.log[0]);
    free(w.log[1]);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    notes_identity_free(ia);
    notes_identity_free(ib);
}

/* Flip one bit at byte flip_at of direction flip_dir. */
static void flip_tap(struct wire *w, int dir, uint8_t *p, size_t *n)
{
    size_t before = w->sent[dir];
    if ((size_t)dir == w->flip_dir && w->flip_at >= before &&
        w->flip_at < before + *n)
        p[w->flip_at - before] ^= 0x10;
}

/* Every byte of the three handshake messages, altered: never a session. */
static void test_handshake_bitflips(void **st)
{
    (void)st;
    notes_identity *ia, *ib;
    notes_sync_space sp;
    size_t refused = 0, total = 0;
    assert_int_equal(notes_identity_generate("A", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sp, "team");
    for (int dir = 0; dir < 2; dir++) {
        size_t lim = dir == 0 ? SYNC_M1_LEN + SYNC_M3_LEN : SYNC_M2_LEN;
        for (size_t at = 0; at < lim; at++) {
            struct wire w = {0};
            notes_sync_session *a =
                session(NULL, ia, NOTES_SYNC_INITIATOR, &sp, 1);
            notes_sync_session *b =
                session(NULL, ib, NOTES_SYNC_RESPONDER, &sp, 1);
            w.tap = flip_tap;
            w.flip_dir = (size_t)dir;
            w.flip_at = at;
            pump(a, b, &w);
            total++;
            /* The side that got the altered message failed the handshake;
             * the responder never opened. */
            if (notes_sync_state(b) != NOTES_SYNC_OPEN &&
                notes_sync_state(b) != NOTES_SYNC_CLOSED &&
                notes_sync_state(a) != NOTES_SYNC_CLOSED)
                refused++;
            notes_sync_session_free(a);
            notes_sync_session_free(b);
        }
    }
    printf("handshake bit flips refused: %zu / %zu\n", refused, total);
    assert_int_equal(refused, total);
    notes_identity_free(ia);
    notes_identity_free(ib);
}

/* The frame layer alone: order, replay, tampering, truncation, size. */
static void test_frames(void **st)
{
    (void)st;
    struct sync_dir tx = {{0}, 0}, rx;
    uint8_t f[3][SYNC_HDR_LEN + 100 + SYNC_TAG_LEN], body[100], out[100];
    size_t n, flen = sizeof(f[0]);
    notes__random(tx.key, 32);
    rx = tx;
    for (int i = 0; i < 3; i++) {
        memset(body, 'a' + i, sizeof(body));
        assert_int_equal(sync_frame_seal(&tx, body, 100, f[i]), NOTES_OK);
    }
    /* Reordered: frame 1 before frame 0. */
    {
        struct sync_dir r = rx;
        assert_int_equal(sync_frame_open_hdr(&r, f[1], &n), NOTES_SYNC_EFRAME);
    }
    /* Tampered: every byte of frame 0. */
    for (size_t i = 0; i < flen; i++) {
        struct sync_dir r = rx;
        int rc;
        f[0][i] ^= 1;
        rc = sync_frame_open_hdr(&r, f[0], &n);
        if (rc == NOTES_OK)
            rc = sync_frame_open_body(&r, f[0] + SYNC_HDR_LEN, n, out);
        assert_int_equal(rc, NOTES_SYNC_EFRAME);
        f[0][i] ^= 1;
    }
    /* In order: fine; then replaying frame 0 fails. */
    assert_int_equal(sync_frame_open_hdr(&rx, f[0], &n), NOTES_OK);
    assert_int_equal(n, 100);
    assert_int_equal(sync_frame_open_body(&rx, f[0] + SYNC_HDR_LEN, n, out),
                     NOTES_OK);
    assert_int_equal(out[0], 'a');
    {
        struct sync_dir r = rx;
        assert_int_equal(sync_frame_open_hdr(&r, f[0], &n), NOTES_SYNC_EFRAME);
    }
    /* Truncated body: a shorter body does not authenticate. */
    assert_int_equal(sync_frame_open_hdr(&rx, f[1], &n), NOTES_OK);
    {
        struct sync_dir r = rx;
        assert_int_equal(sync_frame_open_body(&r, f[1] + SYNC_HDR_LEN, n - 1,
                                              out),
                         NOTES_SYNC_EFRAME);
    }
    assert_int_equal(sync_frame_open_body(&rx, f[1] + SYNC_HDR_LEN, n, out),
                     NOTES_OK);
    /* Oversized: an authentic header announcing FRAME_MAX + 1. */
    {
        uint8_t hdr[4], sealed[SYNC_HDR_LEN], nonce[24] = {0};
        notes__store_u32le(hdr, NOTES_SYNC_FRAME_MAX + 1);
        for (int i = 0; i < 8; i++)
            nonce[i] = (uint8_t)(rx.ctr >> (8 * i));
        notes__aead_seal(sealed, hdr, 4, NULL, 0, nonce, rx.key);
        struct sync_dir r = rx;
        assert_int_equal(sync_frame_open_hdr(&r, sealed, &n), NOTES_ETOOBIG);
        notes__store_u32le(hdr, 0);
        notes__aead_seal(sealed, hdr, 4, NULL, 0, nonce, rx.key);
        assert_int_equal(sync_frame_open_hdr(&r, sealed, &n),
                         NOTES_SYNC_EPROTO);
    }
    /* The sender refuses to seal an oversized body. */
    {
        uint8_t *big = calloc(1, NOTES_SYNC_FRAME_MAX + 1 + 64);
        assert_int_equal(sync_frame_seal(&tx, big, NOTES_SYNC_FRAME_MAX + 1,
                                         big),
                         NOTES_EINVAL);
        free(big);
    }
}

struct two {
    struct peer a, b;
    notes_sync_space sp;
};

static void two_make(struct two *t)
{
    peer_make(&t->a, "Ana");
    peer_make(&t->b, "Bo");
    assert_int_equal(notes_sync_space_create(t->a.home, "team", &t->sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(t->b.home, &t->sp), NOTES_OK);
}

static void two_free(struct two *t)
{
    peer_free(&t->a);
    peer_free(&t->b);
}

/* One sync, A dials B; both must close cleanly. */
static void sync_ok(struct two *t, struct wire *w, notes_sync_report *ra,
                    notes_sync_report *rb)
{
    notes_sync_session *a =
        session(t->a.r, t->a.id, NOTES_SYNC_INITIATOR, &t->sp, 1);
    notes_sync_session *b =
        session(t->b.r, t->b.id, NOTES_SYNC_RESPONDER, &t->sp, 1);
    pump(a, b, w);
    if (notes_sync_state(a) != NOTES_SYNC_CLOSED ||
        notes_sync_state(b) != NOTES_SYNC_CLOSED)
        fail_msg("sync failed: A %d %s / B %d %s", notes_sync_state(a),
                 notes_sync_session_detail(a), notes_sync_state(b),
                 notes_sync_session_detail(b));
    if (ra)
        *ra = *notes_sync_session_report(a);
    if (rb)
        *rb = *notes_sync_session_report(b);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
}

static void assert_same_space(struct two *t)
{
    uint8_t(*ia)[16], (*ib)[16];
    size_t na, nb;
    assert_int_equal(notes_sync_space_notes(t->a.home, "team", &ia, &na), NOTES_OK);
    assert_int_equal(notes_sync_space_notes(t->b.home, "team", &ib, &nb), NOTES_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * 16);
    for (size_t i = 0; i < na; i++) {
        char *x = note_text(&t->a, ia[i]), *y = note_text(&t->b, ib[i]);
        assert_non_null(x);
        assert_non_null(y);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    notes_sync_free(ia);
    notes_sync_free(ib);
}

static void test_replication(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0}, w2 = {0}, w3 = {0}, w4 = {0};
    notes_sync_report ra, rb;
    uint8_t n1[16], n2[16], n3[16], priv[16];
    char *x;
    two_make(&t);
    make_note(&t.a, "team", "# Weekly sync\n\nAgenda: release plan\n", n1);
    make_note(&t.a, "team", "# Retro\n\nWhat went well\n", n2);
    make_note(&t.b, "team", "# Hackathon\n\nBook the room\n", n3);
    make_note(&t.a, NULL, "my diary: not for sharing\n", priv);
    /* B already maps n1 (e.g. added before any change arrived). */
    assert_int_equal(notes_sync_space_add_note(t.b.home, "team", n1), NOTES_OK);

    sync_ok(&t, &w, &ra, &rb);
    printf("first sync: A->B %zu bytes, B->A %zu bytes, %d rounds; A sent %llu "
           "changes, received %llu\n", w.sent[0], w.sent[1], w.rounds,
           (unsigned long long)ra.changes_sent,
           (unsigned long long)ra.changes_received);
    assert_int_equal(ra.changes_sent, 2);
    assert_int_equal(ra.changes_received, 1);
    assert_int_equal(rb.notes_created, 1); /* n2; n1 was mapped already */
    assert_int_equal(rb.notes_received, 2);
    assert_int_equal(ra.notes_created, 1);
    assert_same_space(&t);
    /* The personal note stayed home. */
    assert_null(note_text(&t.b, priv));

    /* Concurrent edits on both sides of the same note, then both ways. */
    edit_note(&t.a, n1, 0, "[A] ");
    edit_note(&t.b, n1, 14, " [B was here]");
    edit_note(&t.b, n2, 0, "[B] ");
    sync_ok(&t, &w2, &ra, &rb);
    assert_int_equal(ra.changes_sent, 1);
    assert_int_equal(ra.changes_received, 2);
    assert_same_space(&t);
    x = note_text(&t.a, n1);
    assert_non_null(strstr(x, "[A] "));
    assert_non_null(strstr(x, "[B was here]"));
    free(x);

    /* Nothing new: only heads cross. */
    sync_ok(&t, &w3, &ra, &rb);
    assert_int_equal(ra.changes_sent + ra.changes_received, 0);
    printf("idle sync: %zu bytes in all\n", w3.sent[0] + w3.sent[1]);

    /* One small edit: the cost is the handshake, heads and one change. */
    edit_note(&t.b, n3, 0, "x");
    sync_ok(&t, &w4, &ra, &rb);
    assert_int_equal(ra.changes_received, 1);
    assert_int_equal(ra.changes_sent, 0);
    printf("incremental sync of one small edit: A->B %zu, B->A %zu, total "
           "%zu bytes on the wire (handshake %d)\n", w4.sent[0], w4.sent[1],
           w4.sent[0] + w4.sent[1], SYNC_M1_LEN + SYNC_M2_LEN + SYNC_M3_LEN);
    assert_true(w4.sent[0] + w4.sent[1] < 1280);
    assert_same_space(&t);
    two_free(&t);
}

/*
 * Reconciliation between real replicas (docs/protocol.md,
 * "Reconciliation"): one side empty, then k differences at both ends
 * (edits, a concurrent edit, new notes), a no-change sync whose cost does
 * not grow with the notes, a damaged version cache, the other side empty.
 */
static void test_reconcile_many(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0}, w0 = {0};
    notes_sync_report ra, rb;
    enum { N = 60 };
    uint8_t ids[N][16], na1[16], na2[16], nb1[16], nb2[16];
    char text[64];
    two_make(&t);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "# note %d\nsome text\n", i);
        make_note(&t.a, "team", text, ids[i]);
    }
    sync_ok(&t, &w, &ra, &rb);
    printf("recon, first sync of %d notes: A->B %zu, B->A %zu bytes\n", N,
           w.sent[0], w.sent[1]);
    assert_int_equal(rb.notes_created, N);
    assert_int_equal(ra.notes_sent, N);
    assert_same_space(&t);

    /* Nothing new: a fingerprint and a skip, whatever N. */
    sync_ok(&t, &w0, &ra, &rb);
    printf("recon, no-change sync of %d notes: %zu bytes in all\n", N,
           w0.sent[0] + w0.sent[1]);
    assert_int_equal(ra.changes_sent + ra.changes_received, 0);
    assert_true(w0.sent[0] + w0.sent[1] < 700);

    /* k differences at both ends. */
    for (int i = 0; i < 3; i++)
        edit_note(&t.a, ids[i], 0, "[A] ");
    for (int i = 10; i < 12; i++)
        edit_note(&t.b, ids[i], 0, "[B] ");
    edit_note(&t.a, ids[30], 0, "[A too] ");
    edit_note(&t.b, ids[30], 2, "[B too] ");
    make_note(&t.a, "team", "new on A 1\n", na1);
    make_note(&t.a, "team", "new on A 2\n", na2);
    make_note(&t.b, "team", "new on B 1\n", nb1);
    make_note(&t.b, "team", "new on B 2\n", nb2);
    memset(&w, 0, sizeof(w));
    sync_ok(&t, &w, &ra, &rb);
    printf("recon, 10 notes differ of %d: %zu bytes in all\n", N + 4,
           w.sent[0] + w.sent[1]);
    assert_int_equal(ra.changes_sent, 6);
    assert_int_equal(rb.changes_sent, 5);
    assert_int_equal(ra.notes_created, 2);
    assert_int_equal(rb.notes_created, 2);
    assert_same_space(&t);

    /* A damaged version cache is rebuilt from the logs. */
    {
        char path[600];
        snprintf(path, sizeof(path), "%s/spaces/team.versions", t.a.home);
        FILE *f = fopen(path, "r+");
        assert_non_null(f);
        fseek(f, 40, SEEK_SET);
        fputc('X', f);
        fclose(f);
    }
    edit_note(&t.a, ids[50], 0, "after the damage ");
    memset(&w, 0, sizeof(w));
    sync_ok(&t, &w, &ra, &rb);
    assert_int_equal(ra.changes_sent, 1);
    assert_same_space(&t);
    two_free(&t);

    /* The initiator empty, the responder holding all. */
    two_make(&t);
    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof(text), "# on B %d\n", i);
        make_note(&t.b, "team", text, ids[i]);
    }
    memset(&w, 0, sizeof(w));
    sync_ok(&t, &w, &ra, &rb);
    assert_int_equal(ra.notes_created, 20);
    assert_same_space(&t);
    two_free(&t);
}

/* Files in home/notes whose name ends with `suffix` / holds `part`. */
static size_t count_notes_files(const char *home, const char *suffix,
                                const char *part)
{
    char dir[600];
    size_t n = 0;
    snprintf(dir, sizeof(dir), "%s/notes", home);
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = suffix ? strlen(suffix) : 0;
        if (suffix && l > sl && strcmp(e->d_name + l - sl, suffix) == 0)
            n++;
        else if (part && strstr(e->d_name, part))
            n++;
    }
    closedir(d);
    return n;
}

/*
 * A first sync of more notes than one durability batch (NEW_BATCH, 256):
 * the new notes are made durable per batch and at the peer's DONE
 * (notes_doc_flush_many). Once the sync returns, every note has its log
 * and its state file in place (none left unacknowledged, no temporary
 * file) and opens intact on B.
 */
static void test_first_sync_batches(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    notes_sync_report ra, rb;
    enum { N = 256 + 20 }; /* NEW_BATCH (session_internal.h) + 20 */
    uint8_t id[16];
    char text[64];
    two_make(&t);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "# batch note %d\n", i);
        make_note(&t.a, "team", text, id);
    }
    sync_ok(&t, &w, &ra, &rb);
    assert_int_equal(rb.notes_created, N);
    assert_int_equal(count_notes_files(t.b.home, ".log", NULL), N);
    assert_int_equal(count_notes_files(t.b.home, ".state", NULL), N);
    assert_int_equal(count_notes_files(t.b.home, NULL, ".tmp"), 0);
    assert_int_equal(count_notes_files(t.b.home, NULL, ".new"), 0);
    assert_same_space(&t);
    {
        uint8_t(*ids)[16];
        size_t n;
        assert_int_equal(notes_sync_space_notes(t.b.home, "team", &ids, &n), NOTES_OK);
        assert_int_equal(n, N);
        for (size_t i = 0; i < n; i++) {
            notes_doc *d;
            assert_int_equal(notes_doc_open(t.b.r, ids[i], &d), NOTES_OK);
            assert_int_equal(notes_doc_intact(d), NOTES_OK);
            assert_false(notes_doc_needs_flush(d));
            notes_doc_free(d);
        }
        notes_sync_free(ids);
    }
    two_free(&t);
}

/*
 * A first sync from a responder to an empty initiator opens each note once,
 * to export it: the responder announces the notes the initiator did not
 * list from the heads it read for reconciliation (its versions cache, kept
 * from an earlier sync), not by opening them. More notes than the
 * session's cache of open notes (DOC_CACHE, 64), so opening each for HAVE
 * and again for export would show as twice the count.
 */
static void test_first_sync_opens_once(void **st)
{
    (void)st;
    struct two t;
    struct peer c;
    struct wire w = {0};
    notes_sync_report ra, rb;
    enum { N = 64 + 36 };
    uint8_t id[16];
    char text[64];
    two_make(&t);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof(text), "# note %d of B's\n\n- item %d\n", i, i);
        make_note(&t.b, "team", text, id);
    }
    sync_ok(&t, &w, &ra, &rb);
    assert_int_equal(ra.notes_created, N);
    assert_same_space(&t);
    /* B read its versions cache: C's first sync opens each note once. */
    peer_make(&c, "Cy");
    assert_int_equal(notes_sync_space_save(c.home, &t.sp), NOTES_OK);
    peer_free(&t.a);
    t.a = c;
    memset(&w, 0, sizeof(w));
    sync_ok(&t, &w, &ra, &rb);
    assert_int_equal(ra.notes_created, N);
    assert_int_equal(ra.changes_received, rb.changes_sent);
    assert_int_equal(rb.notes_sent, N);
    assert_int_equal(rb.notes_opened, N);
    assert_same_space(&t);
    two_free(&t);
}

/* The first frame a's next output carries: its first message's type. */
static int first_type(notes_sync_session *a, notes_sync_session *b)
{
    const uint8_t *p;
    size_t n;
    /* handshake: M1, M2, M3 (alone), then the first frame */
    assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
    assert_int_equal(notes_sync_receive(b, p, n), NOTES_OK);
    assert_int_equal(notes_sync_next_msg(b, &p, &n), NOTES_OK);
    assert_int_equal(notes_sync_receive(a, p, n), NOTES_OK);
    assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
    assert_int_equal(notes_sync_receive(b, p, n), NOTES_OK);
    assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
    uint8_t *copy = malloc(n);
    memcpy(copy, p, n);
    int rc = notes_sync_receive(b, copy, n);
    free(copy);
    assert_int_equal(rc, NOTES_OK);
    return rc;
}

/*
 * A responder older than RECON: it ends the session with an ERROR naming
 * the unknown message, which is what notes_sync_once and the hub fall
 * back on (docs/protocol.md, "Reconciliation"); an initiator told
 * no_recon lists every note in HAVE first, as before, and a responder of
 * this version still answers an initiator that starts with HAVE.
 */
static void test_old_responder(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    uint8_t id[16];
    const uint8_t *p;
    size_t n;
    two_make(&t);
    make_note(&t.a, "team", "from A\n", id);

    /* The old responder's answer to a RECON, as it words it. */
    notes_sync_session *a = session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b = session(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1);
    (void)first_type(a, b);
    static const char why[] = "unknown message type 10";
    uint8_t err[64] = {5, (uint8_t)(1 + sizeof(why) - 1), 102};
    memcpy(err + 3, why, sizeof(why) - 1);
    assert_int_equal(notes_sync__queue_raw(b, err, 3 + sizeof(why) - 1),
                     NOTES_OK);
    assert_int_equal(notes_sync_next_msg(b, &p, &n), NOTES_OK);
    uint8_t *copy = malloc(n);
    memcpy(copy, p, n);
    int rc = notes_sync_receive(a, copy, n);
    free(copy);
    printf("old responder: %s: %s\n", notes_sync_errname(rc),
           notes_sync_session_detail(a));
    assert_int_equal(rc, NOTES_SYNC_EREFUSED);
    assert_non_null(strstr(notes_sync_session_detail(a), why));
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    {
        uint8_t(*ids)[16];
        size_t nn;
        assert_int_equal(notes_sync_space_notes(t.b.home, "team", &ids, &nn),
                         NOTES_OK);
        /* what it listed ahead of bundles that never came is unlisted */
        assert_int_equal(nn, 0);
        notes_sync_free(ids);
    }

    /* no_recon: HAVE first, and the whole exchange as before. */
    notes_sync_config c;
    memset(&c, 0, sizeof(c));
    c.role = NOTES_SYNC_INITIATOR;
    c.replica = t.a.r;
    c.identity = t.a.id;
    c.spaces = &t.sp;
    c.nspaces = 1;
    c.no_recon = 1;
    assert_int_equal(notes_sync_session_new(&c, &a), NOTES_OK);
    b = session(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    assert_int_equal(notes_sync_session_report(b)->notes_created, 1);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    assert_same_space(&t);
    two_free(&t);
}

struct progress {
    unsigned calls[2];
    uint64_t last[2], total[2];
};

static void on_progress(void *ud, const uint8_t note[16], int sending,
                        uint64_t done, uint64_t total)
{
    struct progress *p = ud;
    (void)note;
    assert_true(done <= total);
    assert_true(done > p->last[sending] || done == total);
    p->calls[sending]++;
    p->last[sending] = done;
    p->total[sending] = total;
}

static void test_large_note_chunked(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    struct progress pa = {{0}, {0}, {0}}, pb = {{0}, {0}, {0}};
    uint8_t id[16];
    size_t big = 600000;
    char *text = malloc(big + 1);
    notes_sync_config c;
    notes_sync_session *a, *b;
    two_make(&t);
    /* Pseudo-random words: zstd cannot shrink the bundle to one chunk. */
    for (size_t i = 0; i < big; i++)
        text[i] = (i % 7 == 6) ? ' ' : (char)('a' + notes__random_below(26));
    text[big] = '\0';
    make_note(&t.a, "team", text, id);
    memset(&c, 0, sizeof(c));
    c.role = NOTES_SYNC_INITIATOR;
    c.replica = t.a.r;
    c.identity = t.a.id;
    c.spaces = &t.sp;
    c.nspaces = 1;
    c.progress = on_progress;
    c.progress_ud = &pa;
    assert_int_equal(notes_sync_session_new(&c, &a), NOTES_OK);
    c.role = NOTES_SYNC_RESPONDER;
    c.replica = t.b.r;
    c.identity = t.b.id;
    c.progress_ud = &pb;
    assert_int_equal(notes_sync_session_new(&c, &b), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    printf("first sync of a %zu-byte note: %zu bytes, %llu frames, %u "
           "progress calls sending, %u receiving, %d rounds\n", big,
           w.sent[0] + w.sent[1],
           (unsigned long long)notes_sync_session_report(a)->frames_sent,
           pa.calls[1], pb.calls[0], w.rounds);
    assert_true(pa.calls[1] >= 5);
    assert_int_equal(pa.calls[1], pb.calls[0]);
    assert_int_equal(pb.last[0], pb.total[0]);
    char *x = note_text(&t.b, id);
    assert_non_null(x);
    assert_string_equal(x, text);
    free(x);
    free(text);
    notes_sync_session_free(a);
    notes_sync_session_free(b);

    /* Concurrent small edits on both sides of the big note: each side
     * sends only its own new change, not the note again. */
    {
        struct wire w2 = {0};
        notes_sync_report ra, rb;
        edit_note(&t.a, id, 10, "edit by A");
        edit_note(&t.b, id, 500000, "edit by B");
        sync_ok(&t, &w2, &ra, &rb);
        printf("concurrent edits of the big note: %zu bytes in all, A sent "
               "%llu change(s), B sent %llu\n", w2.sent[0] + w2.sent[1],
               (unsigned long long)ra.changes_sent,
               (unsigned long long)rb.changes_sent);
        assert_int_equal(ra.changes_sent, 1);
        assert_int_equal(rb.changes_sent, 1);
        assert_true(w2.sent[0] + w2.sent[1] < 2048);
        assert_same_space(&t);
        /* A ahead only: B sends nothing. */
        edit_note(&t.a, id, 0, "A again");
        memset(&w2, 0, sizeof(w2));
        sync_ok(&t, &w2, &ra, &rb);
        assert_int_equal(ra.changes_sent, 1);
        assert_int_equal(rb.changes_sent, 0);
        assert_true(w2.sent[0] + w2.sent[1] < 1280);
        assert_same_space(&t);
    }
    two_free(&t);
}

static void forge_last_byte(uint8_t *b, size_t n)
{
    b[n - 1] ^= 0x01; /* the last change's signature */
}

static void forge_text(uint8_t *b, size_t n)
{
    /* The 'Z' of the last change's text, in a change that is signed. */
    for (size_t i = n; i-- > 0;)
        if (b[i] == 'Z') {
            b[i] = 'Y';
            return;
        }
}

static void run_forged(void (*hook)(uint8_t *, size_t))
{
    struct two t;
    struct wire w = {0};
    uint8_t id[16], old[16], (*ids)[16];
    size_t n;
    char *before;
    two_make(&t);
    make_note(&t.a, "team", "shared already\n", old);
    sync_ok(&t, &w, NULL, NULL);
    edit_note(&t.a, old, 0, "ZZZ ");
    make_note(&t.a, "team", "AZ forged note\n", id);
    before = note_text(&t.b, old);

    notes_sync__bundle_hook = hook;
    notes_sync_session *a =
        session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b =
        session(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1);
    pump(a, b, &w);
    notes_sync__bundle_hook = NULL;
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
    printf("forged bundle: B: %s (%s)\n", notes_sync_session_detail(b),
           notes_sync_errname(notes_sync_session_error(b)));
    printf("               A: %s\n", notes_sync_session_detail(a));
    assert_non_null(strstr(notes_sync_session_detail(b), "refused"));
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_FAILED);
    assert_int_equal(notes_sync_session_error(a), NOTES_SYNC_EREFUSED);
    /* Nothing of the forged bundle is stored on B. */
    char *after = note_text(&t.b, old);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_null(note_text(&t.b, id));
    assert_int_equal(notes_sync_space_notes(t.b.home, "team", &ids, &n), NOTES_OK);
    assert_int_equal(n, 1);
    notes_sync_free(ids);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    two_free(&t);
}

static void test_forged_signature_refused(void **st)
{
    (void)st;
    run_forged(forge_last_byte);
}

static void test_forged_text_refused(void **st)
{
    (void)st;
    run_forged(forge_text);
}

/* Alter, replay or cut the first frame after the handshake. */
static void after_hs_tap(struct wire *w, int dir, uint8_t *p, size_t *n)
{
    size_t before = w->sent[dir];
    size_t hs = SYNC_M1_LEN + SYNC_M3_LEN;
    if (dir != 0 || before + *n <= hs)
        return;
    if (w->flip_dir == 1 && w->flip_at == 0) { /* tamper */
        size_t off = before >= hs ? 0 : hs - before;
        p[off + 30] ^= 0x04;
        w->flip_at = 1;
    }
}

static void test_session_tampered_frame(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    uint8_t id[16];
    two_make(&t);
    make_note(&t.a, "team", "hello\n", id);
    notes_sync_session *a =
        session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b =
        session(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1);
    w.tap = after_hs_tap;
    w.flip_dir = 1;
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
    assert_int_equal(notes_sync_session_error(b), NOTES_SYNC_EFRAME);
    assert_null(note_text(&t.b, id));
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    two_free(&t);
}

/* Replay: the initiator's first frames delivered twice. Truncation: the
 * stream cut one byte short never counts as a finished sync. */
static void test_session_replay_and_truncation(void **st)
{
    (void)st;
    struct two t;
    uint8_t id[16];
    const uint8_t *p;
    size_t n;
    uint8_t *copy;
    two_make(&t);
    make_note(&t.a, "team", "hello\n", id);
    for (int mode = 0; mode < 2; mode++) {
        notes_sync_session *a =
            session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
        notes_sync_session *b =
            session(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1);
        /* M1 -> M2 -> M3 + heads */
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        assert_int_equal(notes_sync_receive(b, p, n), NOTES_OK);
        assert_int_equal(notes_sync_next_msg(b, &p, &n), NOTES_OK);
        assert_int_equal(notes_sync_receive(a, p, n), NOTES_OK);
        /* M3 goes out alone (the initiator then reads its versions),
         * the first frame after it */
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        assert_int_equal(n, SYNC_M3_LEN);
        copy = malloc(n);
        memcpy(copy, p, n);
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        assert_true(n > 0);
        uint8_t *both = malloc(SYNC_M3_LEN + n);
        assert_non_null(both);
        memcpy(both, copy, SYNC_M3_LEN);
        memcpy(both + SYNC_M3_LEN, p, n);
        free(copy);
        copy = both;
        n += SYNC_M3_LEN;
        if (mode == 0) {
            assert_int_equal(notes_sync_receive(b, copy, n), NOTES_OK);
            /* The same frames again (after M3): refused. */
            assert_int_equal(notes_sync_receive(b, copy + SYNC_M3_LEN,
                                                n - SYNC_M3_LEN),
                             NOTES_SYNC_EFRAME);
            assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
        } else {
            struct wire w = {0};
            assert_int_equal(notes_sync_receive(b, copy, n - 1), NOTES_OK);
            /* Let everything else flow: b never closes. */
            pump(a, b, &w);
            assert_int_not_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
            assert_int_not_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
        }
        free(copy);
        notes_sync_session_free(a);
        notes_sync_session_free(b);
    }
    two_free(&t);
}

/* A note that is personal (or in another space) here is never overwritten. */
static void test_foreign_note_refused(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    uint8_t id[16];
    notes_doc *d;
    two_make(&t);
    make_note(&t.a, "team", "team note\n", id);
    /* B happens to hold a personal note with that id. */
    assert_int_equal(notes_doc_create_id(t.b.r, id, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, "mine", 4), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    notes_sync_session *a =
        session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b =
        session(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
    assert_non_null(strstr(notes_sync_session_detail(b), "personal"));
    char *x = note_text(&t.b, id);
    assert_string_equal(x, "mine");
    free(x);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    two_free(&t);
}

/* Byte-at-a-time delivery assembles the same messages. */
static void test_dribble(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    uint8_t id[16], id2[16];
    two_make(&t);
    make_note(&t.a, "team", "one byte at a time\n", id);
    make_note(&t.b, "team", "and back\n", id2);
    w.dribble = 1;
    sync_ok(&t, &w, NULL, NULL);
    assert_int_equal(w.errors, 0);
    assert_same_space(&t);
    two_free(&t);
}

/* A recorded M1 and M3 replayed to a fresh responder: no session. */
static void test_handshake_replay(void **st)
{
    (void)st;
    notes_identity *ia, *ib;
    notes_sync_space sp;
    struct wire w = {0};
    const uint8_t *p;
    size_t n;
    assert_int_equal(notes_identity_generate("A", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sp, "team");
    notes_sync_session *a = session(NULL, ia, NOTES_SYNC_INITIATOR, &sp, 1);
    notes_sync_session *b = session(NULL, ib, NOTES_SYNC_RESPONDER, &sp, 1);
    w.logging = 1;
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    notes_sync_session *b2 = session(NULL, ib, NOTES_SYNC_RESPONDER, &sp, 1);
    assert_int_equal(notes_sync_receive(b2, w.log[0], SYNC_M1_LEN), NOTES_OK);
    assert_int_equal(notes_sync_next_msg(b2, &p, &n), NOTES_OK);
    assert_int_equal(n, SYNC_M2_LEN); /* a fresh M2 nobody can use */
    assert_int_equal(notes_sync_receive(b2, w.log[0] + SYNC_M1_LEN,
                                        w.loglen[0] - SYNC_M1_LEN),
                     NOTES_SYNC_EHANDSHAKE);
    assert_int_equal(notes_sync_state(b2), NOTES_SYNC_FAILED);
    assert_int_equal(notes_sync_next_msg(b2, &p, &n), NOTES_SYNC_EHANDSHAKE);
    assert_int_equal(n, 0);
    free(w.log[0]);
    free(w.log[1]);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    notes_sync_session_free(b2);
    notes_identity_free(ia);
    notes_identity_free(ib);
}

/* A member sending a low-order ephemeral key is refused. */
static void test_handshake_low_order(void **st)
{
    (void)st;
    notes_identity *ib;
    notes_sync_space sp;
    uint8_t k[32], m1[SYNC_M1_LEN];
    const char *label = "notes-sync/1 m1";
    notes__hash_state h;
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sp, "team");
    sync_netkey(sp.secret, k);
    memset(m1, 0, 32); /* the all-zero point */
    notes__hash_init(&h, k, 32, 32);
    notes__hash_update(&h, (const uint8_t *)label, strlen(label));
    notes__hash_update(&h, m1, 32);
    notes__hash_final(&h, m1 + 32, 32);
    notes_sync_session *b = session(NULL, ib, NOTES_SYNC_RESPONDER, &sp, 1);
    assert_int_equal(notes_sync_receive(b, m1, sizeof(m1)),
                     NOTES_SYNC_EHANDSHAKE);
    assert_non_null(strstr(notes_sync_session_detail(b), "low order"));
    notes_sync_session_free(b);
    notes_identity_free(ib);
}

/* Authentic frames whose messages are malformed or out of order. */
static void test_malformed_messages(void **st)
{
    (void)st;
    static const struct {
        const char *what;
        uint8_t body[80];
        size_t n;
        int rc;
    } cases[] = {
        {"unknown type", {99, 0}, 2, NOTES_SYNC_EPROTO},
        {"push, not live", {9, 17, [18] = 1}, 19, NOTES_SYNC_EPROTO},
        {"length past the frame", {1, 0x7f}, 2, NOTES_SYNC_EPROTO},
        {"non-minimal length", {3, 0x80, 0x00}, 3, NOTES_SYNC_EPROTO},
        {"have: bad flags", {1, 2, 2, 0}, 4, NOTES_SYNC_EPROTO},
        {"have: truncated", {1, 3, 1, 1, 0}, 5, NOTES_SYNC_EPROTO},
        {"have: trailing", {1, 3, 1, 0, 7}, 5, NOTES_SYNC_EPROTO},
        {"have: author ref", {1, 37, 1, 1, [36] = 1, [37] = 5, [38] = 1},
         39, NOTES_SYNC_EPROTO},
        {"have: seq 0", {1, 69, 1, 1, [36] = 1, [37] = 0, [70] = 0}, 71,
         NOTES_SYNC_EPROTO},
        {"done before have", {3, 0}, 2, NOTES_SYNC_EPROTO},
        {"done with payload", {1, 2, 1, 0, 3, 1, 0}, 7, NOTES_SYNC_EPROTO},
        {"bye before done", {4, 0}, 2, NOTES_SYNC_EPROTO},
        {"bundle over the limit", {2, 23, [18] = 0x80, 0x80, 0x80, 0x80,
                                   0x80, 0x01, 1}, 25, NOTES_ETOOBIG},
        {"bundle too short", {2, 3, 1, 2, 3}, 5, NOTES_SYNC_EPROTO},
        {"recon: bad flags", {10, 3, 2, 0xff, 0}, 5, NOTES_SYNC_EPROTO},
        {"recon: truncated bound", {10, 3, 0, 5, 1}, 5, NOTES_SYNC_EPROTO},
        {"recon: stops early", {10, 4, 0, 1, 0x80, 0}, 6, NOTES_SYNC_EPROTO},
        {"recon: bounds go back", {10, 7, 0, 1, 0x80, 0, 1, 0x40, 0}, 9,
         NOTES_SYNC_EPROTO},
        {"recon: unknown mode", {10, 3, 0, 0xff, 7}, 5, NOTES_SYNC_EPROTO},
        {"have before recon ended",
         {10, 19, 0, 0xff, 1, [21] = 1, 2, 1, 0}, 25, NOTES_SYNC_EPROTO},
    };
    notes_identity *ia, *ib;
    notes_sync_space sp;
    assert_int_equal(notes_identity_generate("A", &ia), NOTES_OK);
    assert_int_equal(notes_identity_generate("B", &ib), NOTES_OK);
    random_space(&sp, "team");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        notes_sync_session *a =
            session(NULL, ia, NOTES_SYNC_INITIATOR, &sp, 1);
        notes_sync_session *b =
            session(NULL, ib, NOTES_SYNC_RESPONDER, &sp, 1);
        const uint8_t *p;
        size_t n;
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        assert_int_equal(notes_sync_receive(b, p, n), NOTES_OK);
        assert_int_equal(notes_sync_next_msg(b, &p, &n), NOTES_OK);
        assert_int_equal(notes_sync_receive(a, p, n), NOTES_OK);
        assert_int_equal(notes_sync__queue_raw(a, cases[i].body, cases[i].n),
                         NOTES_OK);
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        int rc = notes_sync_receive(b, p, n);
        if (rc != cases[i].rc)
            fail_msg("%s: got %s (%s)", cases[i].what, notes_sync_errname(rc),
                     notes_sync_last_detail());
        assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
        assert_true(notes_sync_session_detail(b)[0] != '\0');
        printf("%-22s -> %s: %s\n", cases[i].what, notes_sync_errname(rc),
               notes_sync_session_detail(b));
        notes_sync_session_free(a);
        notes_sync_session_free(b);
    }
    notes_identity_free(ia);
    notes_identity_free(ib);
}

static notes_sync_session *live_session(struct peer *p, int role,
                                        const notes_sync_space *sp, int live)
{
    notes_sync_config c;
    notes_sync_session *s;
    memset(&c, 0, sizeof(c));
    c.role = role;
    c.replica = p->r;
    c.identity = p->id;
    c.spaces = sp;
    c.nspaces = 1;
    c.live = live;
    assert_int_equal(notes_sync_session_new(&c, &s), NOTES_OK);
    return s;
}

/*
 * Live sessions: after the first round both stay open and idle; a round
 * started by the initiator, or asked for by the responder's poke, carries
 * each new edit (and a note created meanwhile); the goodbye ends it. A
 * live responder with a one-shot initiator (or the reverse) says goodbye
 * after one round as before.
 */
static void test_live_rounds(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    uint8_t id[16], id2[16];
    char *x;
    two_make(&t);
    make_note(&t.a, "team", "# Live\n", id);
    notes_sync_session *a = live_session(&t.a, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b = live_session(&t.b, NOTES_SYNC_RESPONDER, &t.sp, 1);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_OPEN);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_OPEN);
    assert_true(notes_sync_session_idle(a));
    assert_true(notes_sync_session_idle(b));
    x = note_text(&t.b, id);
    assert_string_equal(x, "# Live\n");
    free(x);
    for (int i = 0; i < 5; i++) {
        size_t before = w.sent[0] + w.sent[1];
        /* A edits and starts a round. */
        edit_note(&t.a, id, 0, "a");
        assert_int_equal(notes_sync_session_round(a), NOTES_OK);
        pump(a, b, &w);
        if (w.errors)
            fail_msg("round: A %s / B %s", notes_sync_session_detail(a),
                     notes_sync_session_detail(b));
        /* B edits and pokes. */
        edit_note(&t.b, id, 0, "b");
        assert_int_equal(notes_sync_session_round(b), NOTES_OK);
        pump(a, b, &w);
        assert_int_equal(w.errors, 0);
        assert_true(notes_sync_session_idle(a));
        assert_true(notes_sync_session_idle(b));
        char *ta = note_text(&t.a, id), *tb = note_text(&t.b, id);
        assert_string_equal(ta, tb);
        assert_int_equal(strlen(ta), strlen("# Live\n") + 2 * (size_t)(i + 1));
        free(ta);
        free(tb);
        if (i == 0)
            printf("live: two rounds with one edit each: %zu bytes\n",
                   w.sent[0] + w.sent[1] - before);
    }
    /* A note created on B meanwhile travels with the next round. */
    make_note(&t.b, "team", "# New on B\n", id2);
    assert_int_equal(notes_sync_session_round(b), NOTES_OK);
    pump(a, b, &w);
    x = note_text(&t.a, id2);
    assert_non_null(x);
    assert_string_equal(x, "# New on B\n");
    free(x);
    assert_int_equal(notes_sync_session_report(a)->changes_received, 6);
    assert_int_equal(notes_sync_session_report(a)->changes_sent, 6);
    notes_sync_session_end(a);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    /* Only one side live: one round, then goodbye. */
    for (int k = 0; k < 2; k++) {
        a = live_session(&t.a, NOTES_SYNC_INITIATOR, &t.sp, k);
        b = live_session(&t.b, NOTES_SYNC_RESPONDER, &t.sp, !k);
        pump(a, b, &w);
        assert_int_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
        assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
        notes_sync_session_free(a);
        notes_sync_session_free(b);
    }
    two_free(&t);
}

/* Merge everything `from` holds of note id into `to` (another path than
 * the sessions under test: a third device's change arriving elsewhere). */
static void carry(struct peer *from, struct peer *to, const uint8_t id[16])
{
    notes_doc *s, *d;
    uint8_t *b;
    size_t n;
    assert_int_equal(notes_doc_open(from->r, id, &s), NOTES_OK);
    assert_int_equal(notes_doc_export(s, NULL, 0, &b, &n), NOTES_OK);
    if (notes_doc_open(to->r, id, &d) == NOTES_ENOTFOUND)
        assert_int_equal(notes_doc_create_id(to->r, id, &d), NOTES_OK);
    assert_int_equal(notes_doc_merge(d, b, n, NULL), NOTES_OK);
    notes_free(b);
    notes_doc_free(d);
    notes_doc_free(s);
}

/*
 * Pushes: between rounds a live session sends a note's new changes in one
 * PUSH, either way, with no round trip; a change merged from the peer is
 * not pushed back; a personal note is nobody's business; a note the
 * session never announced asks for a round instead; a third device's
 * change that reached both sides by another path does not get in the way;
 * more notes than the session keeps open still push; a forged push ends
 * the session with nothing of it stored.
 */
static void test_live_push(void **st)
{
    (void)st;
    struct two t;
    struct peer c;
    struct wire w = {0};
    uint8_t id[16], personal[16], later[16];
    char *ta, *tb;
    two_make(&t);
    make_note(&t.a, "team", "# Pushed\n", id);
    notes_sync_session *a = live_session(&t.a, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b = live_session(&t.b, NOTES_SYNC_RESPONDER, &t.sp, 1);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    /* The note was new to B: all of it came from A, so B knows what A
     * holds and has nothing to send back. */
    assert_int_equal(notes_sync_session_push(b, id), NOTES_OK);
    assert_false(notes_sync_wants_write(b));
    assert_true(notes_sync_session_idle(a) && notes_sync_session_idle(b));
    for (int i = 0; i < 5; i++) {
        size_t before = w.sent[0] + w.sent[1];
        edit_note(&t.a, id, 0, "a");
        assert_int_equal(notes_sync_session_push(a, id), NOTES_OK);
        assert_true(notes_sync_wants_write(a));
        pump(a, b, &w);
        if (w.errors)
            fail_msg("push: A %s / B %s", notes_sync_session_detail(a),
                     notes_sync_session_detail(b));
        size_t one = w.sent[0] + w.sent[1] - before;
        /* B took it in, and has nothing new to send back. */
        assert_int_equal(notes_sync_session_push(b, id), NOTES_OK);
        assert_false(notes_sync_wants_write(b));
        edit_note(&t.b, id, 0, "b");
        assert_int_equal(notes_sync_session_push(b, id), NOTES_OK);
        pump(a, b, &w);
        assert_int_equal(w.errors, 0);
        assert_true(notes_sync_session_idle(a) && notes_sync_session_idle(b));
        ta = note_text(&t.a, id);
        tb = note_text(&t.b, id);
        assert_string_equal(ta, tb);
        assert_int_equal(strlen(ta), strlen("# Pushed\n") + 2 * (size_t)(i + 1));
        free(ta);
        free(tb);
        if (i == 0)
            printf("live push: one edit, %zu bytes on the wire (one message, "
                   "no answer)\n", one);
        /* One frame one way: a push, not a round. */
        assert_true(one < 400);
    }
    assert_int_equal(notes_sync_session_report(a)->pushes_sent, 5);
    assert_int_equal(notes_sync_session_report(a)->pushes_received, 5);
    assert_int_equal(notes_sync_session_report(b)->pushes_sent, 5);
    assert_int_equal(notes_sync_session_report(b)->pushes_received, 5);

    /* A personal note: nothing to send, nothing asked. */
    make_note(&t.a, NULL, "# Mine\n", personal);
    assert_int_equal(notes_sync_session_push(a, personal), NOTES_OK);
    assert_false(notes_sync_wants_write(a));

    /* A note added to the space since the round: a round carries it. */
    make_note(&t.a, "team", "# Later\n", later);
    assert_int_not_equal(notes_sync_session_push(a, later), NOTES_OK);
    assert_int_equal(notes_sync_session_round(a), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    tb = note_text(&t.b, later);
    assert_non_null(tb);
    assert_string_equal(tb, "# Later\n");
    free(tb);

    /* A third device's change reaches A and B by another path; A types
     * after it and pushes: B has it, and A's change applies. */
    peer_make(&c, "Cy");
    assert_int_equal(notes_sync_space_save(c.home, &t.sp), NOTES_OK);
    carry(&t.a, &c, id);
    edit_note(&c, id, 0, "c");
    carry(&c, &t.a, id);
    carry(&c, &t.b, id);
    edit_note(&t.a, id, 0, "A");
    assert_int_equal(notes_sync_session_push(a, id), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    ta = note_text(&t.a, id);
    tb = note_text(&t.b, id);
    assert_string_equal(ta, tb);
    assert_int_equal(strncmp(ta, "Ac", 2), 0);
    free(ta);
    free(tb);
    /* B's copy read C's change from its log on that merge, so B does not
     * know A's heads to be its own: its next push starts from the heads
     * it knew, and carries C's change again (A skips it) with B's. */
    edit_note(&t.b, id, 0, "B");
    assert_int_equal(notes_sync_session_push(b, id), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    ta = note_text(&t.a, id);
    tb = note_text(&t.b, id);
    assert_string_equal(ta, tb);
    assert_int_equal(strncmp(ta, "BAc", 3), 0);
    free(ta);
    free(tb);

    /* More notes than a session keeps open (16): a push still starts
     * from the heads the round recorded for the note. */
    uint8_t many[20][16];
    for (int i = 0; i < 20; i++)
        make_note(&t.a, "team", "# Many\n", many[i]);
    assert_int_equal(notes_sync_session_round(a), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    edit_note(&t.a, many[0], 0, "m");
    assert_int_equal(notes_sync_session_push(a, many[0]), NOTES_OK);
    assert_true(notes_sync_wants_write(a));
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    tb = note_text(&t.b, many[0]);
    assert_string_equal(tb, "m# Many\n");
    free(tb);

    /* A forged push: the session ends, nothing of it is stored. */
    char *was = note_text(&t.b, id);
    edit_note(&t.a, id, 0, "Z");
    notes_sync__bundle_hook = forge_last_byte;
    int prc = notes_sync_session_push(a, id);
    notes_sync__bundle_hook = NULL;
    assert_int_equal(prc, NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
    assert_non_null(strstr(notes_sync_session_detail(b), "refused"));
    tb = note_text(&t.b, id);
    assert_string_equal(tb, was);
    free(tb);
    free(was);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    peer_free(&c);
    two_free(&t);
}

/* Presence records a live session received. */
struct heard {
    int n;
    uint8_t last[8192];
    size_t lastlen;
};

static void on_heard(void *ud, const uint8_t *rec, size_t n)
{
    struct heard *h = ud;
    h->n++;
    assert_true(n <= sizeof(h->last));
    memcpy(h->last, rec, n);
    h->lastlen = n;
}

/*
 * Presence over a live session: a signed record reaches the peer's
 * callback (for a note of the space only), ahead of nothing else; a
 * record whose signature does not verify ends the session; a one-shot
 * session refuses to queue one.
 */
static void test_presence(void **st)
{
    (void)st;
    struct two t;
    struct wire w = {0};
    struct heard hb = {0};
    uint8_t id[16], other[16], *rec;
    size_t n;
    two_make(&t);
    make_note(&t.a, "team", "# Live\n", id);
    make_note(&t.a, NULL, "# Personal\n", other);
    notes_sync_session *a = live_session(&t.a, NOTES_SYNC_INITIATOR, &t.sp, 1);
    notes_sync_session *b = live_session(&t.b, NOTES_SYNC_RESPONDER, &t.sp, 1);
    notes_sync_session_on_presence(b, on_heard, &hb);
    pump(a, b, &w);
    assert_int_equal(w.errors, 0);
    const char *js = "{\"v\":1,\"people\":[{\"session\":\"s1\",\"name\":\"Ana\"}]}";
    assert_int_equal(notes_sync_presence_make(t.a.id, id, 7, js, strlen(js),
                                              &rec, &n),
                     NOTES_OK);
    assert_int_equal(notes_sync_session_presence(a, rec, n), NOTES_OK);
    /* Queued twice for the same (note, key): only the latest goes. */
    assert_int_equal(notes_sync_session_presence(a, rec, n), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(hb.n, 1);
    uint8_t note[16], key[32];
    uint64_t seq;
    const char *json;
    size_t jn;
    assert_int_equal(notes_sync_presence_open(hb.last, hb.lastlen, note, key,
                                              &seq, &json, &jn),
                     NOTES_OK);
    assert_memory_equal(note, id, 16);
    assert_memory_equal(key, notes_identity_public_key(t.a.id), 32);
    assert_int_equal(seq, 7);
    assert_int_equal(jn, strlen(js));
    assert_memory_equal(json, js, jn);
    notes_sync_free(rec);
    /* A note outside the space: not delivered (the peer learns nothing). */
    assert_int_equal(notes_sync_presence_make(t.a.id, other, 8, js, strlen(js),
                                              &rec, &n),
                     NOTES_OK);
    assert_int_equal(notes_sync_session_presence(a, rec, n), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(hb.n, 1);
    assert_int_equal(w.errors, 0);
    /* Every byte flip of a record is refused by open. */
    for (size_t i = 0; i < n; i++) {
        rec[i] ^= 0x20;
        assert_int_not_equal(notes_sync_presence_open(rec, n, note, key, &seq,
                                                      &json, &jn),
                             NOTES_OK);
        rec[i] ^= 0x20;
    }
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(notes_sync_presence_open(rec, cut, note, key,
                                                      &seq, &json, &jn),
                             NOTES_OK);
    /* A forged one on the wire ends the session. */
    rec[60] ^= 1;
    assert_int_equal(notes_sync_session_presence(a, rec, n), NOTES_OK);
    pump(a, b, &w);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
    assert_non_null(strstr(notes_sync_session_detail(b), "presence"));
    notes_sync_free(rec);
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    /* Too much JSON, and a one-shot session. */
    char *big = calloc(1, NOTES_PRESENCE_JSON_MAX + 2);
    memset(big, 'x', NOTES_PRESENCE_JSON_MAX + 1);
    assert_int_equal(notes_sync_presence_make(t.a.id, id, 1, big,
                                              NOTES_PRESENCE_JSON_MAX + 1,
                                              &rec, &n),
                     NOTES_EINVAL);
    free(big);
    two_free(&t);
}

/* Put a varint into p; returns its length. */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[k++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return k;
}

/*
 * Compressed bundles (ZBUNDLE, type 6) that must be refused before or by
 * the merge: not zstd, trailing bytes after the frame, no content size, a
 * content size over max_bundle (a decompression bomb: 4 MiB of zeros in a
 * few hundred bytes against a 1 MiB limit), and a frame that decompresses
 * to something that is not a bundle. Nothing is stored or listed.
 */
static void test_compressed_bundle_refused(void **st)
{
    (void)st;
    enum { BOMB = 4u << 20 };
    uint8_t *zeros = calloc(1, BOMB), junk[64], z[4096];
    size_t nbomb, njunk, nplain;
    memset(junk, 'j', sizeof(junk));
    nbomb = ZSTD_compress(z, sizeof(z), zeros, BOMB, 3);
    assert_false(ZSTD_isError(nbomb));
    free(zeros);
    uint8_t bomb[4096], junkz[256], nosize[256];
    memcpy(bomb, z, nbomb);
    njunk = ZSTD_compress(junkz, sizeof(junkz), junk, sizeof(junk), 3);
    assert_false(ZSTD_isError(njunk));
    {
        /* A frame without its content size (streaming API). */
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        ZSTD_outBuffer ob = {nosize, sizeof(nosize), 0};
        ZSTD_inBuffer ib = {junk, sizeof(junk), 0};
        assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(
            cc, ZSTD_c_contentSizeFlag, 0)));
        assert_int_equal(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end), 0);
        nplain = ob.pos;
        ZSTD_freeCCtx(cc);
    }
    uint8_t trailing[260];
    memcpy(trailing, junkz, njunk);
    trailing[njunk] = 0;
    const struct {
        const char *what;
        const uint8_t *z;
        size_t n;
        int rc;
    } cases[] = {
        {"not zstd", junk, sizeof(junk), NOTES_SYNC_EPROTO},
        {"trailing bytes", trailing, njunk + 1, NOTES_SYNC_EPROTO},
        {"no content size", nosize, nplain, NOTES_SYNC_EPROTO},
        {"bomb over the limit", bomb, nbomb, NOTES_ETOOBIG},
        {"not a bundle inside", junkz, njunk, NOTES_ECORRUPT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct two t;
        notes_sync_session *a, *b;
        uint8_t msg[4200], id[16];
        const uint8_t *p;
        size_t n, k = 0, plen;
        uint8_t (*ids)[16];
        two_make(&t);
        a = session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
        b = session_ex(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1, 1u << 20, 0);
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        assert_int_equal(notes_sync_receive(b, p, n), NOTES_OK);
        assert_int_equal(notes_sync_next_msg(b, &p, &n), NOTES_OK);
        assert_int_equal(notes_sync_receive(a, p, n), NOTES_OK);
        notes__random(id, sizeof(id));
        plen = 16 + put_varint(z, cases[i].n) + cases[i].n;
        msg[k++] = 6;
        k += put_varint(msg + k, plen);
        memcpy(msg + k, id, 16);
        k += 16;
        k += put_varint(msg + k, cases[i].n);
        memcpy(msg + k, cases[i].z, cases[i].n);
        k += cases[i].n;
        assert_int_equal(notes_sync__queue_raw(a, msg, k), NOTES_OK);
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        int rc = notes_sync_receive(b, p, n);
        printf("compressed bundle, %-20s -> %s: %s\n", cases[i].what,
               notes_sync_errname(rc), notes_sync_session_detail(b));
        if (rc != cases[i].rc)
            fail_msg("%s: got %s (%s)", cases[i].what, notes_sync_errname(rc),
                     notes_sync_session_detail(b));
        assert_int_equal(notes_sync_state(b), NOTES_SYNC_FAILED);
        assert_null(note_text(&t.b, id));
        assert_int_equal(notes_sync_space_notes(t.b.home, "team", &ids, &n),
                         NOTES_OK);
        assert_int_equal(n, 0);
        notes_sync_free(ids);
        notes_sync_session_free(a);
        notes_sync_session_free(b);
        two_free(&t);
    }
}

/*
 * defer_merge (issue 16): a complete bundle is not stored inside
 * notes_sync_receive; the session holds what follows it, the note appears
 * only with notes_sync_session_apply, and the sync then ends as without
 * deferral, with the same counts.
 */
static void test_deferred_merge(void **st)
{
    (void)st;
    struct two t;
    notes_sync_session *a, *b;
    uint8_t n1[16], n2[16];
    int waited = 0, seen_absent = 0;
    two_make(&t);
    make_note(&t.a, "team", "# One\n\nfirst note\n", n1);
    make_note(&t.a, "team", "# Two\n\nsecond note\n", n2);
    a = session(t.a.r, t.a.id, NOTES_SYNC_INITIATOR, &t.sp, 1);
    b = session_ex(t.b.r, t.b.id, NOTES_SYNC_RESPONDER, &t.sp, 1, 0, 1);
    for (int round = 0; round < MAX_ROUNDS; round++) {
        const uint8_t *p;
        size_t n;
        int moved = 0;
        assert_int_equal(notes_sync_next_msg(a, &p, &n), NOTES_OK);
        if (n) {
            moved = 1;
            assert_int_equal(notes_sync_receive(b, p, n), NOTES_OK);
        }
        if (notes_sync_session_merge_pending(b)) {
            char *x = note_text(&t.b, n1), *y = note_text(&t.b, n2);
            waited++;
            /* Not stored before apply: at most the one merged earlier. */
            seen_absent += !x || !y;
            free(x);
            free(y);
            assert_int_equal(notes_sync_session_apply(b), NOTES_OK);
            moved = 1;
        }
        assert_int_equal(notes_sync_next_msg(b, &p, &n), NOTES_OK);
        if (n) {
            moved = 1;
            assert_int_equal(notes_sync_receive(a, p, n), NOTES_OK);
        }
        if (!moved)
            break;
    }
    assert_int_equal(notes_sync_state(a), NOTES_SYNC_CLOSED);
    assert_int_equal(notes_sync_state(b), NOTES_SYNC_CLOSED);
    assert_int_equal(waited, 2); /* one wait per bundle */
    assert_true(seen_absent >= 1);
    assert_int_equal(notes_sync_session_report(b)->notes_received, 2);
    assert_int_equal(notes_sync_session_report(b)->notes_created, 2);
    assert_int_equal(notes_sync_session_merge_pending(b), 0);
    assert_int_equal(notes_sync_session_apply(b), NOTES_OK); /* none waits */
    notes_sync_session_free(a);
    notes_sync_session_free(b);
    assert_same_space(&t);
    two_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_ok),
        cmocka_unit_test(test_handshake_picks_space),
        cmocka_unit_test(test_handshake_wrong_secret),
        cmocka_unit_test(test_handshake_bitflips),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_replication),
        cmocka_unit_test(test_reconcile_many),
        cmocka_unit_test(test_first_sync_batches),
        cmocka_unit_test(test_first_sync_opens_once),
        cmocka_unit_test(test_old_responder),
        cmocka_unit_test(test_large_note_chunked),
        cmocka_unit_test(test_forged_signature_refused),
        cmocka_unit_test(test_live_push),
        cmocka_unit_test(test_forged_text_refused),
        cmocka_unit_test(test_session_tampered_frame),
        cmocka_unit_test(test_session_replay_and_truncation),
        cmocka_unit_test(test_foreign_note_refused),
        cmocka_unit_test(test_dribble),
        cmocka_unit_test(test_handshake_replay),
        cmocka_unit_test(test_handshake_low_order),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_compressed_bundle_refused),
        cmocka_unit_test(test_live_rounds),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_deferred_merge),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
