/*
 * test_sync_hostile.c: hostile peers against a real server (issue 7,
 * "Hostile peers"), over loopback sockets.
 *
 * The honest server is notes_sync_serve in a child process. It reports each
 * session to the test through a pipe, one fixed-size record per session:
 * the result, whether the handshake completed, the peer's key, the counters
 * and the reason (the on_session callback and notes_sync_last_detail).
 *
 * The malicious peer, Mallory, is written here by hand from docs/protocol.md
 * and docs/format.md. She holds the space secret (she is a member and has
 * synced honestly once), completes the real handshake with the frame layer
 * of sync_internal.h, then sends frames, messages and signed changes that
 * she builds byte by byte. After every attack an honest member (Bo) edits
 * and syncs with the server, the server's store is compared with its state
 * before the attack (space list, every note's text and change count, the
 * files in notes/) and verified (notes_doc_verify: no problem but the
 * reported equivocation evidence), and the server must have said why it
 * ended the session: to Mallory in an authenticated ERROR message, and in
 * its on_session record.
 *
 * A stranger without the secret then makes 10,000 handshake attempts
 * (random M1s, a recorded member's M1 and M3 replayed, M1s followed by
 * garbage): none opens a session and the server's memory stays flat.
 *
 * Five defects this file found are fixed; their tests (marked "FIXED, was
 * known bug N") keep them fixed (docs/security.md, "Findings").
 *
 * Every wait is a poll with a deadline; the teardown kills and reaps the
 * server child even when an assertion failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "notes_sync.h"
#include "sync_internal.h"
#include "sync_fixture.h"
#include "serve_fixture.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif
#ifndef ASAN_BUILD
#define ASAN_BUILD 0
#endif
#if ASAN_BUILD
#include <sanitizer/lsan_interface.h>
#endif

/*
 * What each case measured (one line per step) goes to a file beside the
 * test, test_sync_hostile.out (NOTES_TEST_VERBOSE=1: to stdout): a failing
 * assertion, which cmocka prints, is then near the top of what ctest
 * shows, not below hundreds of lines of figures.
 */
static FILE *g_say;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(g_say ? g_say : stdout, fmt, ap);
    va_end(ap);
    fflush(g_say ? g_say : stdout);
}

/* Bounds on the server's resident memory (KiB). AddressSanitizer keeps
 * freed memory in quarantine and adds shadow memory, so its builds get
 * eight times the room; there LeakSanitizer checks the server instead
 * (srv_finish). */
#define MEM_KB(kb) ((long)(kb) * (ASAN_BUILD ? 8 : 1))

/* Server deadlines for every test: short, so that slow peers are quick to
 * test; an honest sync on loopback takes a few milliseconds. */
#define HS_MS 1000
#define IDLE_MS 1500

/* The stranger's handshake attempts, the first STRANGER_WARMUP of which
 * warm the server up before its memory is first read. */
#define STRANGER_ATTEMPTS 10000
#define STRANGER_WARMUP 500
#define STRANGER_THREADS 4
/* Allowed growth of the server's resident memory between the warm-up and
 * the end: far less than one byte per attempt would leak (10,000 attempts
 * leaking one 1 MiB session buffer, one 64 KiB connection or even 512
 * bytes each would exceed it), more than allocator noise. */
#define STRANGER_RSS_SLACK_KB MEM_KB(4096)

/* docs/protocol.md, "Busy": what a server says instead of M2 when it
 * turns a connection away. */
#define FLOOD_BUSY "notes-sync/1 busy\n"

/* Messages (docs/protocol.md, "Messages"). */
enum { M_HAVE = 1, M_BUNDLE = 2, M_DONE = 3, M_BYE = 4, M_ERROR = 5,
       M_ZBUNDLE = 6 };

/* ---- bytes ---- */

static void by_init(struct notes_buf *b)
{
    notes__buf_init(b, SIZE_MAX / 4);
}

static void by_put(struct notes_buf *b, const void *p, size_t n)
{
    assert_int_equal(notes__buf_put(b, p, n), NOTES_OK);
}

static void by_u8(struct notes_buf *b, uint8_t v)
{
    by_put(b, &v, 1);
}

static void by_varint(struct notes_buf *b, uint64_t v)
{
    assert_int_equal(notes__buf_put_varint(b, v), NOTES_OK);
}

/* One message: type, varint length, payload. */
static void by_msg(struct notes_buf *b, uint8_t type, const void *p, size_t n)
{
    by_u8(b, type);
    by_varint(b, n);
    by_put(b, p, n);
}

/* A BUNDLE (or ZBUNDLE) message carrying a whole bundle in one chunk. */
static void by_bundle_msg(struct notes_buf *b, int z, const uint8_t id[16],
                          const uint8_t *bundle, size_t n)
{
    struct notes_buf m;
    by_init(&m);
    by_put(&m, id, 16);
    by_varint(&m, n);
    by_put(&m, bundle, n);
    by_msg(b, z ? M_ZBUNDLE : M_BUNDLE, m.data, m.len);
    notes__buf_release(&m);
}

/* BLAKE2b-256 keyed with `key` over label || a || b (docs/protocol.md's
 * H), written again here so that the handshake is built from the spec. */
static void kdf(uint8_t out[32], const uint8_t key[32], const char *label,
                const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    notes__hash_state st;
    notes__hash_init(&st, key, 32, 32);
    notes__hash_update(&st, (const uint8_t *)label, strlen(label));
    if (an)
        notes__hash_update(&st, a, an);
    if (bn)
        notes__hash_update(&st, b, bn);
    notes__hash_final(&st, out, 32);
}

/* ---- /proc ---- */

/* A "Vm...:" figure of /proc/PID/status in KiB, or -1. */
static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t fl = strlen(field);
    long v = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0) {
            v = strtol(line + fl, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Open file descriptors of a process, or -1. */
static long proc_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if (!(d = opendir(path)))
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- the honest server, in a child process ---- */

/* One session as the server saw it (written whole: < PIPE_BUF). */
struct srv_rec {
    int32_t rc;
    int32_t opened;               /* the handshake completed */
    uint8_t peer[32];             /* the proven peer key, or zero */
    uint64_t changes_received, notes_received, notes_created;
    uint64_t bytes_received, bytes_sent;
    char detail[320];             /* notes_sync_last_detail() */
};

struct server {
    pid_t pid;
    int port, fd;
    struct srv_rec *rec;
    size_t nrec, cap;
    uint8_t part[sizeof(struct srv_rec)];
    size_t npart;
};

static struct server g_srv = {.pid = -1, .fd = -1};
/* The server's handshake deadline: HS_MS unless a test needs the real one. */
static unsigned g_hs_ms = HS_MS;
static void flood_stop(void);
static int g_child_fd = -1;
static volatile int g_child_stop;

static void child_on_term(int sig)
{
    (void)sig;
    g_child_stop = 1;
}

static void child_on_listen(void *ud, int port)
{
    (void)ud;
    if (write(g_child_fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
        _exit(3);
}

static void child_on_session(void *ud, int rc, const notes_sync_report *r)
{
    struct srv_rec x;
    (void)ud;
    memset(&x, 0, sizeof(x));
    x.rc = rc;
    if (r) {
        x.opened = r->space[0] != '\0';
        memcpy(x.peer, r->peer, 32);
        x.changes_received = r->changes_received;
        x.notes_received = r->notes_received;
        x.notes_created = r->notes_created;
        x.bytes_received = r->bytes_received;
        x.bytes_sent = r->bytes_sent;
    }
    snprintf(x.detail, sizeof(x.detail), "%s", notes_sync_last_detail());
    if (write(g_child_fd, &x, sizeof(x)) != (ssize_t)sizeof(x))
        _exit(4);
}

static void srv_kill(void)
{
    if (g_srv.pid > 0) {
        kill(g_srv.pid, SIGKILL);
        waitpid(g_srv.pid, NULL, 0);
    }
    if (g_srv.fd >= 0)
        close(g_srv.fd);
    free(g_srv.rec);
    memset(&g_srv, 0, sizeof(g_srv));
    g_srv.pid = -1;
    g_srv.fd = -1;
}

/*
 * Stop the server as `notes serve` is stopped (SIGTERM: serve returns
 * once its sessions are over), then check that it exited cleanly; in
 * sanitizer builds it runs LeakSanitizer first, so everything the
 * attacks made it allocate was freed.
 */
static int srv_drain(void);

static void srv_finish(void)
{
    double end = now_ms() + 10000;
    int status = 0, eof = 0;
    assert_true(g_srv.pid > 0);
    kill(g_srv.pid, SIGTERM);
    /* The child's end of the pipe closes when it exits. */
    while (!(eof = srv_drain())) {
        struct pollfd pf = {.fd = g_srv.fd, .events = POLLIN};
        double left = end - now_ms();
        if (left <= 0 || poll(&pf, 1, (int)left + 1) < 0)
            break;
    }
    if (!eof) {
        srv_kill();
        fail_msg("the server did not stop within 10 s of SIGTERM");
    }
    /* It has exited (its end of the pipe is closed): reap it. */
    assert_int_equal(waitpid(g_srv.pid, &status, 0), g_srv.pid);
    g_srv.pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the server ended with status %d%s", status,
                 WIFEXITED(status) && WEXITSTATUS(status) == 5
                     ? ": LeakSanitizer found leaks (stderr)"
                     : "");
}

/* Whether the server child is still running (not crashed). */
static int srv_alive(void)
{
    int status;
    return g_srv.pid > 0 && waitpid(g_srv.pid, &status, WNOHANG) == 0;
}

static void srv_start(const char *home, unsigned max_conns)
{
    int fds[2], port = -1;
    struct pollfd pf;
    pid_t pid;
    srv_kill();
    assert_int_equal(pipe(fds), 0);
    (void)fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        notes_sync_serve_opts o;
        struct sigaction sa;
        int rc;
        close(fds[0]);
        g_child_fd = fds[1];
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = child_on_term;
        sigaction(SIGTERM, &sa, NULL);
        memset(&o, 0, sizeof(o));
        o.on_listen = child_on_listen;
        o.on_session = child_on_session;
        o.handshake_ms = g_hs_ms;
        o.idle_ms = IDLE_MS;
        o.max_conns = max_conns;
        rc = fixture_serve(home, &o, &g_child_stop);
#if ASAN_BUILD
        if (__lsan_do_recoverable_leak_check())
            _exit(5); /* the report is on stderr */
#endif
        _exit(rc ? 1 : 0);
    }
    close(fds[1]);
    g_srv.pid = pid;
    g_srv.fd = fds[0];
    pf.fd = fds[0];
    pf.events = POLLIN;
    if (poll(&pf, 1, 5000) != 1 ||
        read(fds[0], &port, sizeof(port)) != (ssize_t)sizeof(port))
        fail_msg("the server did not listen within 5 s");
    g_srv.port = port;
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

/* Take in whatever records the server wrote; 1 once the pipe is closed
 * (the server exited). */
static int srv_drain(void)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = read(g_srv.fd, buf, sizeof(buf));
        if (n <= 0)
            return n == 0;
        for (ssize_t i = 0; i < n;) {
            size_t take = sizeof(struct srv_rec) - g_srv.npart;
            if (take > (size_t)(n - i))
                take = (size_t)(n - i);
            memcpy(g_srv.part + g_srv.npart, buf + i, take);
            g_srv.npart += take;
            i += (ssize_t)take;
            if (g_srv.npart < sizeof(struct srv_rec))
                continue;
            if (g_srv.nrec == g_srv.cap) {
                size_t nc = g_srv.cap ? 2 * g_srv.cap : 64;
                struct srv_rec *nr = realloc(g_srv.rec, nc * sizeof(*nr));
                assert_non_null(nr);
                g_srv.rec = nr;
                g_srv.cap = nc;
            }
            memcpy(&g_srv.rec[g_srv.nrec++], g_srv.part, sizeof(*g_srv.rec));
            g_srv.npart = 0;
        }
    }
}

/* Wait (at most ms) until the server reported n sessions in all. */
static size_t srv_wait(size_t n, int ms)
{
    double end = now_ms() + ms;
    srv_drain();
    while (g_srv.nrec < n) {
        double left = end - now_ms();
        struct pollfd pf = {.fd = g_srv.fd, .events = POLLIN};
        size_t before = g_srv.nrec;
        if (left <= 0)
            break;
        if (poll(&pf, 1, (int)left + 1) < 0 && errno != EINTR)
            break;
        srv_drain();
        if ((pf.revents & POLLHUP) && g_srv.nrec == before)
            break; /* the child is gone */
    }
    return g_srv.nrec;
}

static size_t srv_count(void)
{
    srv_drain();
    return g_srv.nrec;
}

/* ---- sockets ---- */

static int connect_local(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t k = send(fd, q, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        q += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read exactly n bytes within ms; 0, or -1 (closed, error, late). */
static int read_exact(int fd, uint8_t *p, size_t n, int ms)
{
    double end = now_ms() + ms;
    while (n > 0) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        double left = end - now_ms();
        ssize_t k;
        if (left <= 0 || poll(&pf, 1, (int)left + 1) <= 0)
            return -1;
        k = read(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/*
 * Read until the peer closes (0) or ms pass (-1); OUT *extra: the bytes
 * that came meanwhile. A reset counts as closed.
 */
static int read_to_eof(int fd, int ms, size_t *extra)
{
    double end = now_ms() + ms;
    uint8_t buf[4096];
    *extra = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        double left = end - now_ms();
        ssize_t k;
        if (left <= 0 || poll(&pf, 1, (int)left + 1) <= 0)
            return -1;
        k = read(fd, buf, sizeof(buf));
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return 0;
        if (k < 0 && errno != EINTR && errno != EAGAIN)
            return 0;
        if (k > 0)
            *extra += (size_t)k;
    }
}

/* ---- the replicas: Ana serves, Bo is honest, Mallory attacks ---- */

struct world {
    char *a, *b, *m;
    notes_sync_space sp;
    uint8_t n1[16], n2[16], n3[16];
    notes_identity *mal, *bo;
    uint8_t ana[32];
    char addr[64];
    /* What Bo's check after each attack expects: equivocations reported
     * on Ana's and Bo's side, and whether both hold the same changes. */
    size_t eq_a, eq_b;
    int exact;
};

static struct world *g_w;

static void world_addr(struct world *w)
{
    snprintf(w->addr, sizeof(w->addr), "127.0.0.1:%d", g_srv.port);
}

static notes_identity *load_identity(const char *home)
{
    char path[4096];
    notes_identity *id;
    snprintf(path, sizeof(path), "%s/identity", home);
    assert_int_equal(notes_identity_load(path, NULL, &id), NOTES_OK);
    return id;
}

static int setup(void **st)
{
    struct world *w = calloc(1, sizeof(*w));
    notes_replica *r;
    notes_sync_report rep;
    int rc;
    g_hs_ms = HS_MS;
    assert_non_null(w);
    g_w = w;
    *st = w;
    w->a = mkreplica("Ana");
    w->b = mkreplica("Bo");
    w->m = mkreplica("Mallory");
    assert_int_equal(notes_sync_space_create(w->a, "team", &w->sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(w->b, &w->sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(w->m, &w->sp), NOTES_OK);
    make_note(w->a, "team", "# Weekly\n\nAgenda: release plan\n", w->n1);
    append(w->a, w->n1, "Ana: book the room\n");
    make_note(w->a, "team", "# Retro\n", w->n2);
    make_note(w->b, "team", "# Bo's ideas\n", w->n3);
    assert_int_equal(notes_replica_open(w->a, &r), NOTES_OK);
    memcpy(w->ana, notes_replica_public_key(r), 32);
    notes_replica_free(r);
    w->exact = 1;
    w->mal = load_identity(w->m);
    w->bo = load_identity(w->b);
    srv_start(w->a, 0);
    world_addr(w);
    /* Bo and Mallory are members and sync honestly first. */
    rc = notes_sync_once(w->b, NULL, "team", w->addr, &rep);
    if (rc)
        fail_msg("Bo's first sync: %s", notes_sync_last_detail());
    rc = notes_sync_once(w->m, NULL, "team", w->addr, &rep);
    if (rc)
        fail_msg("Mallory's first sync: %s", notes_sync_last_detail());
    assert_int_equal(srv_wait(2, 5000), 2);
    assert_int_equal(g_srv.rec[0].rc, 0);
    assert_int_equal(g_srv.rec[1].rc, 0);
    return 0;
}

static int teardown(void **st)
{
    struct world *w = *st ? *st : g_w;
    flood_stop();
    g_hs_ms = HS_MS;
    srv_kill();
    if (w) {
        notes_identity_free(w->mal);
        notes_identity_free(w->bo);
        notes_sync_space_clear(&w->sp);
        if (w->a)
            rmreplica(w->a);
        if (w->b)
            rmreplica(w->b);
        if (w->m)
            rmreplica(w->m);
        free(w);
    }
    g_w = NULL;
    return 0;
}

/*
 * The state of note `id` in `home`: its text (malloc'd; NULL if the note
 * has no log), change count, and how many equivocations notes_doc_verify
 * reports. Any other problem, or damage cut from the log, fails the test.
 */
static char *note_state(const char *home, const uint8_t id[16],
                        size_t *nchanges, size_t *nequiv)
{
    notes_replica *r;
    notes_doc *d;
    notes_verify_report rep;
    char *copy;
    size_t n;
    int rc;
    *nchanges = 0;
    if (nequiv)
        *nequiv = 0;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    rc = notes_doc_open(r, id, &d);
    if (rc == NOTES_ENOTFOUND) {
        notes_replica_free(r);
        return NULL;
    }
    if (rc)
        fail_msg("open: %s: %s", notes_errname(rc), notes_last_detail());
    if (notes_doc_damage(d))
        fail_msg("damage: %s", notes_doc_damage(d));
    memset(&rep, 0, sizeof(rep));
    rc = notes_doc_verify(d, &rep);
    for (size_t i = 0; i < rep.nproblems; i++) {
        if (rep.problems[i].code == NOTES_EEQUIVOCATION && nequiv)
            (*nequiv)++;
        else
            fail_msg("verify %s: %s: %s", home,
                     notes_errname(rep.problems[i].code),
                     rep.problems[i].message);
    }
    assert_true(rc == NOTES_OK || rc == NOTES_EEQUIVOCATION);
    notes_verify_report_clear(&rep);
    const char *t = notes_doc_text(d, &n);
    copy = strndup(t, n);
    *nchanges = notes_doc_change_count(d);
    notes_doc_free(d);
    notes_replica_free(r);
    return copy;
}

/* What a store holds: the space's list, every note's text and change
 * count, and the names of the files in notes/ (MAC sidecars aside). */
struct snap {
    size_t n;
    uint8_t (*ids)[16];
    char **text;
    size_t *nchanges;
    size_t nequiv;
    char files[8192];
};

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void snap_take(const char *home, struct snap *s)
{
    char path[4096], *names[256];
    size_t nn = 0, off = 0;
    struct dirent *e;
    DIR *d;
    memset(s, 0, sizeof(*s));
    assert_int_equal(notes_sync_space_notes(home, "team", &s->ids, &s->n),
                     NOTES_OK);
    s->text = calloc(s->n + 1, sizeof(*s->text));
    s->nchanges = calloc(s->n + 1, sizeof(*s->nchanges));
    assert_non_null(s->text);
    assert_non_null(s->nchanges);
    for (size_t i = 0; i < s->n; i++) {
        size_t eq;
        s->text[i] = note_state(home, s->ids[i], &s->nchanges[i], &eq);
        s->nequiv += eq;
    }
    snprintf(path, sizeof(path), "%s/notes", home);
    assert_non_null(d = opendir(path));
    while ((e = readdir(d)) && nn < 256) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || (l > 6 && !strcmp(e->d_name + l - 6, ".state")))
            continue;
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof(*names), cmp_str);
    for (size_t i = 0; i < nn; i++) {
        /* Nothing was ever cut from a log as damaged or torn. */
        assert_null(strstr(names[i], "damaged"));
        assert_null(strstr(names[i], "torn"));
        off += (size_t)snprintf(s->files + off, sizeof(s->files) - off,
                                "%s\n", names[i]);
        free(names[i]);
        assert_true(off < sizeof(s->files));
    }
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->text[i]);
    free(s->text);
    free(s->nchanges);
    notes_sync_free(s->ids);
    memset(s, 0, sizeof(*s));
}

/* The attack left the server's store exactly as it was. */
static void snap_same(const struct snap *x, const struct snap *y,
                      const char *what)
{
    if (x->n != y->n || memcmp(x->ids, y->ids, x->n * 16) != 0)
        fail_msg("%s: the space's list changed", what);
    for (size_t i = 0; i < x->n; i++) {
        if (x->nchanges[i] != y->nchanges[i])
            fail_msg("%s: note %zu has %zu changes, had %zu", what, i,
                     y->nchanges[i], x->nchanges[i]);
        if ((x->text[i] == NULL) != (y->text[i] == NULL) ||
            (x->text[i] && strcmp(x->text[i], y->text[i]) != 0))
            fail_msg("%s: note %zu's text changed", what, i);
    }
    if (strcmp(x->files, y->files) != 0)
        fail_msg("%s: files in notes/ changed:\n%s---\n%s", what, x->files,
                 y->files);
    assert_int_equal(x->nequiv, y->nequiv);
}

/*
 * Bo edits and syncs with the server: it must succeed, the server must
 * report Bo's session as a success, and both stores must hold the same
 * verified notes: the same texts and (exact) the same changes, with
 * nequiv_a / nequiv_b equivocations reported on Ana's / Bo's side.
 */
static void honest_round_ex(struct world *w, const char *after,
                            size_t nequiv_a, size_t nequiv_b, int exact)
{
    char line[160];
    notes_sync_report rep;
    struct snap sa, sb;
    size_t before, found = 0;
    int rc;
    snprintf(line, sizeof(line), "Bo, after %s\n", after);
    append(w->b, w->n3, line);
    before = srv_count();
    rc = notes_sync_once(w->b, NULL, "team", w->addr, &rep);
    if (rc)
        fail_msg("Bo's sync after %s: %s: %s", after, notes_sync_errname(rc),
                 notes_sync_last_detail());
    assert_true(rep.changes_sent >= 1);
    srv_wait(before + 1, 5000);
    for (size_t i = before; i < g_srv.nrec; i++)
        if (!memcmp(g_srv.rec[i].peer, notes_identity_public_key(w->bo), 32)) {
            if (g_srv.rec[i].rc != 0)
                fail_msg("the server failed Bo's session: %s",
                         g_srv.rec[i].detail);
            assert_true(g_srv.rec[i].opened);
            found++;
        }
    assert_int_equal(found, 1);
    assert_true(srv_alive());
    snap_take(w->a, &sa);
    snap_take(w->b, &sb);
    if (sa.n != sb.n || memcmp(sa.ids, sb.ids, sa.n * 16) != 0)
        fail_msg("after %s: Ana and Bo list different notes", after);
    for (size_t i = 0; i < sa.n; i++) {
        assert_non_null(sa.text[i]);
        assert_non_null(sb.text[i]);
        if (strcmp(sa.text[i], sb.text[i]) != 0)
            fail_msg("after %s: Ana and Bo differ:\n%s---\n%s", after,
                     sa.text[i], sb.text[i]);
        if (exact)
            assert_int_equal(sa.nchanges[i], sb.nchanges[i]);
    }
    assert_int_equal(sa.nequiv, nequiv_a);
    assert_int_equal(sb.nequiv, nequiv_b);
    snap_free(&sa);
    snap_free(&sb);
}

static void honest_round(struct world *w, const char *after, size_t nequiv)
{
    honest_round_ex(w, after, nequiv, nequiv, 1);
}

/* Bo's sync after one attack, with the world's expectations. */
static void honest_check(struct world *w, const char *after)
{
    honest_round_ex(w, after, w->eq_a, w->eq_b, w->exact);
}

/* ---- changes and bundles built by hand (docs/format.md) ---- */

struct chg {
    const uint8_t *doc;           /* 16 */
    const uint8_t *author;        /* 32: the key the change claims */
    uint64_t seq;
    const uint8_t *prev;          /* 32, written when seq > 1 */
    const uint8_t (*deps)[32];
    size_t ndeps;
    uint64_t ndeps_wire;          /* nonzero: the count written instead */
    uint64_t time;
    const struct notes_buf *ops;
    uint64_t nops;                /* as written */
    const notes_identity *signer; /* NULL: flag 0, no signature */
};

/* Encode a change; OUT id (may be NULL): BLAKE2b-256 of its body. */
static void chg_encode(const struct chg *c, struct notes_buf *out,
                       uint8_t id[32])
{
    static const uint8_t magic[3] = {'N', 'C', 1};
    struct notes_buf body;
    uint8_t h[32], sig[64];
    by_init(&body);
    by_put(&body, magic, 3);
    by_put(&body, c->doc, 16);
    by_put(&body, c->author, 32);
    by_varint(&body, c->seq);
    if (c->seq > 1)
        by_put(&body, c->prev, 32);
    by_varint(&body, c->ndeps_wire ? c->ndeps_wire : c->ndeps);
    for (size_t i = 0; i < c->ndeps; i++)
        by_put(&body, c->deps[i], 32);
    by_varint(&body, c->time);
    by_varint(&body, c->nops);
    by_put(&body, c->ops->data, c->ops->len);
    notes__hash(h, 32, body.data, body.len, NULL, 0);
    if (id)
        memcpy(id, h, 32);
    by_put(out, body.data, body.len);
    if (c->signer) {
        assert_int_equal(notes_identity_sign(c->signer, body.data, body.len,
                                             sig),
                         NOTES_OK);
        by_u8(out, 1);
        by_put(out, sig, 64);
    } else {
        by_u8(out, 0);
    }
    notes__buf_release(&body);
}

static void op_ins(struct notes_buf *b, uint64_t pos, const char *text)
{
    by_u8(b, 1);
    by_varint(b, pos);
    by_varint(b, strlen(text));
    by_put(b, text, strlen(text));
}

static void op_del(struct notes_buf *b, uint8_t kind, uint64_t pos,
                   uint64_t count)
{
    by_u8(b, kind); /* 2: delete, 7: backspace */
    by_varint(b, pos);
    by_varint(b, count);
}

/* A bundle of n encoded changes: "NTB" 1, varint count, each as bytes. */
static void bundle_of(struct notes_buf *out, const struct notes_buf *c,
                      size_t n)
{
    static const uint8_t magic[4] = {'N', 'T', 'B', 1};
    by_put(out, magic, 4);
    by_varint(out, n);
    for (size_t i = 0; i < n; i++) {
        by_varint(out, c[i].len);
        by_put(out, c[i].data, c[i].len);
    }
}

/* What a member knows of a note (read from the server's store, which is
 * what Mallory learns by syncing): its changes, heads and length. */
struct view {
    size_t nchanges, nheads, len;
    uint8_t ids[32][32], authors[32][32];
    uint64_t seqs[32];
    uint8_t heads[8][32];
    uint8_t *bundle;              /* notes_doc_export of everything */
    size_t nbundle;
};

static void view_of(const char *home, const uint8_t id[16], struct view *v)
{
    notes_replica *r;
    notes_doc *d;
    uint8_t(*heads)[32];
    memset(v, 0, sizeof(*v));
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    assert_int_equal(notes_doc_open(r, id, &d), NOTES_OK);
    v->nchanges = notes_doc_change_count(d);
    assert_true(v->nchanges <= 32);
    for (size_t i = 0; i < v->nchanges; i++) {
        notes_change_info ci;
        assert_int_equal(notes_doc_change(d, i, &ci), NOTES_OK);
        memcpy(v->ids[i], ci.id, 32);
        memcpy(v->authors[i], ci.author, 32);
        v->seqs[i] = ci.seq;
    }
    assert_int_equal(notes_doc_heads(d, &heads, &v->nheads), NOTES_OK);
    assert_true(v->nheads <= 8);
    memcpy(v->heads, heads, v->nheads * 32);
    notes_free(heads);
    v->len = notes_doc_length(d);
    assert_int_equal(notes_doc_export(d, NULL, 0, &v->bundle, &v->nbundle),
                     NOTES_OK);
    notes_doc_free(d);
    notes_replica_free(r);
}

static void view_free(struct view *v)
{
    notes_free(v->bundle);
    v->bundle = NULL;
}

/* A change by Mallory (signed by her) inserting `text` at `pos`. */
static void mal_change(const struct world *w, const uint8_t doc[16],
                       uint64_t seq, const uint8_t *prev,
                       const uint8_t (*deps)[32], size_t ndeps, uint64_t pos,
                       const char *text, struct notes_buf *out, uint8_t id[32])
{
    struct notes_buf ops;
    struct chg c = {0};
    by_init(&ops);
    op_ins(&ops, pos, text);
    c.doc = doc;
    c.author = notes_identity_public_key(w->mal);
    c.seq = seq;
    c.prev = prev;
    c.deps = deps;
    c.ndeps = ndeps;
    c.time = 1700000000000ull + seq;
    c.ops = &ops;
    c.nops = 1;
    c.signer = w->mal;
    by_init(out);
    chg_encode(&c, out, id);
    notes__buf_release(&ops);
}

/* ---- Mallory's side of the wire ---- */

struct mal {
    int fd;
    struct sync_dir tx, rx;
    uint8_t m1[SYNC_M1_LEN], m2[SYNC_M2_LEN], m3[SYNC_M3_LEN];
    uint8_t server[32];
    struct notes_buf in;
    int in_body;
    size_t body_len;
    uint8_t *plain;
    int have_last, done, bye, error, eof, bad;
    uint64_t err_code;
    char err_text[256];
    size_t frames;
    int sent_done, sent_bye, auto_bye;
};

/*
 * Build M3 by hand (docs/protocol.md, "Handshake") carrying `claim` as the
 * initiator's key, signed by `signer`: with claim = the signer's own key
 * it is an honest M3; with another member's key, an impersonation.
 */
static void forge_m3(const struct sync_hs *hs, const uint8_t K[32],
                     const notes_identity *signer, const uint8_t claim[32],
                     const uint8_t m2[SYNC_M2_LEN], uint8_t m3[SYNC_M3_LEN],
                     uint8_t server[32], uint8_t tx[32], uint8_t rx[32])
{
    static const char lbl[] = "notes-sync/1 initiator";
    uint8_t ee[32], h1[32], k2[32], h2[32], k3[32], h3[32], plain[96];
    uint8_t stmt[64];
    uint8_t nonce[24] = {0};
    assert_int_equal(notes__dh(ee, hs->e_sk, m2), NOTES_OK);
    kdf(h1, K, "notes-sync/1 h1", hs->e_pk, 32, m2, 32);
    kdf(k2, ee, "notes-sync/1 k2", h1, 32, NULL, 0);
    /* M2 opens: the responder proved who it is, as an initiator checks. */
    assert_int_equal(notes__aead_open(plain, m2 + 32, SYNC_M2_LEN - 32, h1,
                                      32, nonce, k2),
                     NOTES_OK);
    memcpy(server, plain, 32);
    kdf(h2, K, "notes-sync/1 h2", h1, 32, m2 + 32, SYNC_M2_LEN - 32);
    kdf(k3, ee, "notes-sync/1 k3", h2, 32, NULL, 0);
    memcpy(stmt, lbl, sizeof(lbl) - 1);
    memcpy(stmt + sizeof(lbl) - 1, h2, 32);
    memcpy(plain, claim, 32);
    assert_int_equal(notes_identity_sign(signer, stmt, sizeof(lbl) - 1 + 32,
                                         plain + 32),
                     NOTES_OK);
    notes__aead_seal(m3, plain, 96, h2, 32, nonce, k3);
    /* The session keys, should the responder accept M3. */
    kdf(h3, K, "notes-sync/1 h3", h2, 32, m3, SYNC_M3_LEN);
    kdf(tx, ee, "notes-sync/1 initiator to responder", h3, 32, NULL, 0);
    kdf(rx, ee, "notes-sync/1 responder to initiator", h3, 32, NULL, 0);
    notes__wipe(ee, sizeof(ee));
}

/*
 * Connect and run the handshake as the initiator with identity `id`
 * (claim: NULL, or the key M3 claims instead). 0 once M3 is sent; -1 if
 * the server did not answer M1.
 */
static int mal_open(struct mal *m, int port, const notes_sync_space *sp,
                    const notes_identity *id, const uint8_t *claim)
{
    struct sync_hs hs;
    uint8_t k[32];
    memset(m, 0, sizeof(*m));
    notes__buf_init(&m->in, SYNC_HDR_LEN + NOTES_SYNC_FRAME_MAX + SYNC_TAG_LEN +
                              65536);
    m->plain = malloc(NOTES_SYNC_FRAME_MAX);
    assert_non_null(m->plain);
    m->auto_bye = 1;
    m->fd = connect_local(port);
    if (m->fd < 0)
        return -1;
    sync_netkey(sp->secret, k);
    sync_hs_m1(&hs, k, m->m1);
    if (write_all(m->fd, m->m1, SYNC_M1_LEN) ||
        read_exact(m->fd, m->m2, SYNC_M2_LEN, 5000))
        return -1;
    if (claim) {
        forge_m3(&hs, k, id, claim, m->m2, m->m3, m->server, m->tx.key,
                 m->rx.key);
    } else {
        assert_int_equal(sync_hs_m3(&hs, id, m->m2, m->m3), NOTES_OK);
        memcpy(m->server, hs.peer, 32);
        sync_hs_finish(&hs, m->tx.key, m->rx.key);
    }
    if (write_all(m->fd, m->m3, SYNC_M3_LEN))
        return -1;
    sync_hs_wipe(&hs);
    notes__wipe(k, sizeof(k));
    return 0;
}

static void mal_close(struct mal *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    notes__buf_release(&m->in);
    free(m->plain);
    m->plain = NULL;
}

/* Seal `body` as Mallory's next frame and send it; -1 if the server
 * closed already. */
static int mal_frame(struct mal *m, const uint8_t *body, size_t n)
{
    uint8_t *f = malloc(SYNC_HDR_LEN + n + SYNC_TAG_LEN);
    int rc;
    assert_non_null(f);
    assert_int_equal(sync_frame_seal(&m->tx, body, n, f), NOTES_OK);
    rc = write_all(m->fd, f, SYNC_HDR_LEN + n + SYNC_TAG_LEN);
    free(f);
    return rc;
}

/* An authentic frame header announcing `len` body bytes (any u32). */
static int mal_header(struct mal *m, uint32_t len)
{
    uint8_t hdr[4], sealed[SYNC_HDR_LEN], nonce[24] = {0};
    notes__store_u32le(hdr, len);
    for (int i = 0; i < 8; i++)
        nonce[i] = (uint8_t)(m->tx.ctr >> (8 * i));
    notes__aead_seal(sealed, hdr, 4, NULL, 0, nonce, m->tx.key);
    m->tx.ctr++;
    return write_all(m->fd, sealed, sizeof(sealed));
}

static void mal_parse(struct mal *m, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        uint8_t type = *p++;
        uint64_t len;
        if (notes_sync__get_varint(&p, end, &len) || len > (uint64_t)(end - p)) {
            m->bad = 1;
            return;
        }
        switch (type) {
        case M_HAVE:
            if (len >= 1 && (p[0] & 1))
                m->have_last = 1;
            break;
        case M_DONE:
            m->done = 1;
            break;
        case M_BYE:
            m->bye = 1;
            break;
        case M_ERROR: {
            const uint8_t *q = p;
            size_t tl;
            m->error = 1;
            (void)notes_sync__get_varint(&q, p + len, &m->err_code);
            tl = (size_t)(p + len - q);
            if (tl >= sizeof(m->err_text))
                tl = sizeof(m->err_text) - 1;
            memcpy(m->err_text, q, tl);
            m->err_text[tl] = '\0';
            break;
        }
        default:
            break; /* the server's bundles: not needed */
        }
        p += len;
    }
}

/* Open every complete frame received so far. */
static void mal_process(struct mal *m)
{
    size_t off = 0;
    while (!m->bad) {
        size_t need = m->in_body ? m->body_len + SYNC_TAG_LEN : SYNC_HDR_LEN;
        if (m->in.len - off < need)
            break;
        if (!m->in_body) {
            if (sync_frame_open_hdr(&m->rx, m->in.data + off, &m->body_len)) {
                m->bad = 1;
                break;
            }
            m->in_body = 1;
        } else {
            if (sync_frame_open_body(&m->rx, m->in.data + off, m->body_len,
                                     m->plain)) {
                m->bad = 1;
                break;
            }
            m->in_body = 0;
            m->frames++;
            mal_parse(m, m->plain, m->body_len);
        }
        off += need;
    }
    memmove(m->in.data, m->in.data + off, m->in.len - off);
    m->in.len -= off;
    /* Play along to the goodbye once the round is over. */
    if (m->auto_bye && m->have_last && m->done && m->sent_done &&
        !m->sent_bye && !m->error) {
        uint8_t bye[2] = {M_BYE, 0};
        m->sent_bye = 1;
        (void)mal_frame(m, bye, sizeof(bye));
    }
}

/* Read and process until the server closes (1) or ms pass (0). */
static int mal_pump(struct mal *m, int ms)
{
    double end = now_ms() + ms;
    uint8_t buf[65536];
    while (!m->eof) {
        struct pollfd pf = {.fd = m->fd, .events = POLLIN};
        double left = end - now_ms();
        ssize_t k;
        if (left <= 0)
            return 0;
        if (poll(&pf, 1, (int)left + 1) <= 0)
            continue;
        k = read(m->fd, buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            m->eof = 1;
            break;
        }
        if (notes__buf_put(&m->in, buf, (size_t)k) != NOTES_OK) {
            m->bad = 1;
            return 0;
        }
        mal_process(m);
    }
    return 1;
}

/* What one of Mallory's sessions came to. */
struct outcome {
    struct srv_rec rec;           /* the server's own record */
    int error;                    /* the server told Mallory why */
    uint64_t code;
    char text[256];
    int clean;                    /* both goodbyes crossed */
    double ms;
};

/*
 * One session as Mallory: the handshake, then one frame holding her list
 * (nothing), the crafted messages `msgs` and DONE; she reads until the
 * server closes. OUT o: what happened, including the server's record.
 */
#define WITH_HAVE 1 /* Mallory's (empty) list goes first */
#define WITH_DONE 2 /* and DONE last */

static void mal_session_f(const struct world *w, int flags,
                          const uint8_t *msgs, size_t n, struct outcome *o)
{
    struct mal m;
    struct notes_buf body;
    size_t before = srv_count();
    static const uint8_t have_none[2] = {1, 0}; /* last, 0 notes */
    double t0 = now_ms();
    memset(o, 0, sizeof(*o));
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, NULL), 0);
    by_init(&body);
    if (flags & WITH_HAVE)
        by_msg(&body, M_HAVE, have_none, sizeof(have_none));
    by_put(&body, msgs, n);
    if (flags & WITH_DONE) {
        by_msg(&body, M_DONE, NULL, 0);
        m.sent_done = 1;
    }
    (void)mal_frame(&m, body.data, body.len);
    notes__buf_release(&body);
    if (!mal_pump(&m, 5000))
        fail_msg("the server did not close Mallory's session within 5 s");
    o->ms = now_ms() - t0;
    o->error = m.error;
    o->code = m.err_code;
    snprintf(o->text, sizeof(o->text), "%s", m.err_text);
    o->clean = m.sent_bye && m.bye;
    assert_false(m.bad); /* the server's frames authenticate */
    mal_close(&m);
    if (srv_wait(before + 1, 5000) != before + 1)
        fail_msg("the server reported %zu sessions, expected %zu",
                 g_srv.nrec - before, (size_t)1);
    o->rec = g_srv.rec[before];
    assert_true(srv_alive());
    assert_memory_equal(o->rec.peer, notes_identity_public_key(w->mal), 32);
}

static void mal_session(const struct world *w, const uint8_t *msgs, size_t n,
                        struct outcome *o)
{
    mal_session_f(w, WITH_HAVE | WITH_DONE, msgs, n, o);
}

/*
 * An attack that must be refused: Mallory's session carrying `msgs` ends
 * with `rc` (the detail naming `needle`), she is told why in an
 * authenticated ERROR, and the server's store is exactly as before.
 */
static void expect_refused_f(struct world *w, const char *what,
                             int flags, const uint8_t *msgs, size_t n, int rc,
                             const char *needle)
{
    struct snap before, after;
    struct outcome o;
    snap_take(w->a, &before);
    mal_session_f(w, flags, msgs, n, &o);
    say("  %-46s -> %s: %s\n", what, notes_sync_errname(o.rec.rc),
           o.rec.detail);
    if (o.rec.rc != rc)
        fail_msg("%s: the server ended with %s (%s), expected %s", what,
                 notes_sync_errname(o.rec.rc), o.rec.detail,
                 notes_sync_errname(rc));
    assert_true(o.rec.opened);
    assert_int_equal(o.rec.changes_received, 0);
    assert_int_equal(o.rec.notes_created, 0);
    if (needle && !strstr(o.rec.detail, needle))
        fail_msg("%s: '%s' does not mention '%s'", what, o.rec.detail,
                 needle);
    /* Mallory learnt why, in the server's authenticated ERROR. */
    assert_true(o.error);
    assert_int_equal((int64_t)o.code, -(int64_t)rc);
    assert_false(o.clean);
    snap_take(w->a, &after);
    snap_same(&before, &after, what);
    snap_free(&before);
    snap_free(&after);
    honest_check(w, what);
}

static void expect_refused(struct world *w, const char *what,
                           const uint8_t *msgs, size_t n, int rc,
                           const char *needle)
{
    expect_refused_f(w, what, WITH_HAVE | WITH_DONE, msgs, n, rc, needle);
}

/* expect_refused for one bundle (BUNDLE message) of note `id`. */
static void refuse_bundle(struct world *w, const char *what,
                          const uint8_t id[16], const struct notes_buf *chg,
                          size_t nchg, int rc, const char *needle)
{
    struct notes_buf bundle, msgs;
    by_init(&bundle);
    by_init(&msgs);
    bundle_of(&bundle, chg, nchg);
    by_bundle_msg(&msgs, 0, id, bundle.data, bundle.len);
    expect_refused(w, what, msgs.data, msgs.len, rc, needle);
    notes__buf_release(&bundle);
    notes__buf_release(&msgs);
}

/* An attack the server takes (valid changes): the session ends well and
 * `added` new changes were stored. */
static void expect_taken(struct world *w, const char *what,
                         const uint8_t id[16], const struct notes_buf *chg,
                         size_t nchg, uint64_t added)
{
    struct notes_buf bundle, msgs;
    struct outcome o;
    by_init(&bundle);
    by_init(&msgs);
    bundle_of(&bundle, chg, nchg);
    by_bundle_msg(&msgs, 0, id, bundle.data, bundle.len);
    mal_session(w, msgs.data, msgs.len, &o);
    say("  %-46s -> %s, %llu new change(s) stored\n", what,
           o.rec.rc ? notes_sync_errname(o.rec.rc) : "OK",
           (unsigned long long)o.rec.changes_received);
    if (o.rec.rc != 0)
        fail_msg("%s: refused: %s", what, o.rec.detail);
    assert_true(o.clean);
    assert_false(o.error);
    assert_int_equal(o.rec.changes_received, added);
    notes__buf_release(&bundle);
    notes__buf_release(&msgs);
    honest_check(w, what);
}

static void bufs_release(struct notes_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        notes__buf_release(&b[i]);
}

/* ---- the attacks ---- */

/*
 * Forged signatures: a flipped signature bit, a signature lifted from
 * another of Mallory's changes, an unsigned change nothing covers, a good
 * change followed by a forged one in the same bundle (all or nothing), and
 * a forged change creating a new note. Each is refused whole.
 */
static void test_hostile_forged_signature(void **st)
{
    struct world *w = *st;
    struct view v;
    struct notes_buf c[2], ops;
    struct chg x = {0};
    uint8_t fresh[16];
    view_of(w->a, w->n1, &v);

    /* A flipped bit in the last byte of the signature. */
    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: forged\n", &c[0], NULL);
    c[0].data[c[0].len - 1] ^= 0x01;
    refuse_bundle(w, "signature with one bit flipped", w->n1, c, 1,
                  NOTES_EBADSIG, "signature does not verify");
    notes__buf_release(&c[0]);

    /* A valid signature of another change of hers. */
    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: one\n", &c[0], NULL);
    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: two\n", &c[1], NULL);
    memcpy(c[0].data + c[0].len - 64, c[1].data + c[1].len - 64, 64);
    refuse_bundle(w, "signature lifted from another change", w->n1, c, 1,
                  NOTES_EBADSIG, "signature does not verify");
    bufs_release(c, 2);

    /* No signature, and no later change of hers covers it. */
    by_init(&ops);
    op_ins(&ops, v.len, "Mallory: unsigned\n");
    x.doc = w->n1;
    x.author = notes_identity_public_key(w->mal);
    x.seq = 1;
    x.deps = (const uint8_t(*)[32])v.heads;
    x.ndeps = v.nheads;
    x.ops = &ops;
    x.nops = 1;
    by_init(&c[0]);
    chg_encode(&x, &c[0], NULL);
    refuse_bundle(w, "unsigned, not covered", w->n1, c, 1, NOTES_EUNSIGNED,
                  "no signature");
    notes__buf_release(&c[0]);
    notes__buf_release(&ops);

    /* A good change, then a forged one: neither is stored. */
    {
        uint8_t id1[32];
        mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])v.heads,
                   v.nheads, v.len, "Mallory: good\n", &c[0], id1);
        mal_change(w, w->n1, 2, id1, (const uint8_t(*)[32])id1, 1,
                   v.len + 14, "Mallory: bad\n", &c[1], NULL);
        c[1].data[c[1].len - 10] ^= 0x40;
        refuse_bundle(w, "good change, then a forged one", w->n1, c, 2,
                      NOTES_EBADSIG, "nothing of it stored");
        bufs_release(c, 2);
    }

    /* A forged change creating a note the server does not have: the note
     * is neither created nor listed (snap_same checks both). */
    notes__random(fresh, sizeof(fresh));
    mal_change(w, fresh, 1, NULL, NULL, 0, 0, "Mallory's new note\n", &c[0],
               NULL);
    c[0].data[c[0].len - 33] ^= 0x02;
    refuse_bundle(w, "forged change of a new note", fresh, c, 1,
                  NOTES_EBADSIG, "signature does not verify");
    notes__buf_release(&c[0]);
    view_free(&v);
    srv_finish();
}

/*
 * Impersonation: changes claiming Ana's key (signed by Mallory, carrying
 * Ana's genuine signature of another change, or unsigned and "covered" by
 * a signed change of Mallory's), and a handshake whose M3 claims Ana's
 * key. The same M3 construction claiming Mallory's own key is accepted,
 * so the refusal is the signature's doing.
 */
static void test_hostile_impersonation(void **st)
{
    struct world *w = *st;
    struct view v;
    struct notes_buf c[2], ops;
    struct chg x = {0};
    struct mal m;
    size_t before, at_ana = 0;
    uint8_t id1[32];
    view_of(w->a, w->n1, &v);
    for (size_t i = 0; i < v.nchanges; i++)
        if (!memcmp(v.authors[i], w->ana, 32) && v.seqs[i] == 2)
            at_ana = i;
    assert_true(at_ana > 0);

    /* Ana's key, Mallory's signature: continues Ana's chain (seq 3). */
    by_init(&ops);
    op_ins(&ops, v.len, "Ana (not really): cancel the release\n");
    x.doc = w->n1;
    x.author = w->ana;
    x.seq = 3;
    x.prev = v.ids[at_ana];
    x.deps = (const uint8_t(*)[32])v.heads;
    x.ndeps = v.nheads;
    x.time = 1700000000000ull;
    x.ops = &ops;
    x.nops = 1;
    x.signer = w->mal;
    by_init(&c[0]);
    chg_encode(&x, &c[0], NULL);
    refuse_bundle(w, "Ana's key, signed by Mallory", w->n1, c, 1,
                  NOTES_EBADSIG, "signature does not verify");

    /* Ana's key with Ana's genuine signature of her change 2. */
    {
        /* Export writes a pack (bundle version 2) whose last column holds
         * the signatures: its last 64 bytes sign Ana's seq 2. */
        const uint8_t *sig = v.bundle + v.nbundle - 64;
        assert_int_equal(at_ana, v.nchanges - 1);
        assert_int_equal(v.bundle[3], 2);
        memcpy(c[0].data + c[0].len - 64, sig, 64);
        refuse_bundle(w, "Ana's key, Ana's signature of another change",
                      w->n1, c, 1, NOTES_EBADSIG, "signature does not verify");
    }
    notes__buf_release(&c[0]);

    /* Unsigned as Ana, then a signed change of Mallory built on it:
     * coverage follows one author's chain only. */
    x.signer = NULL;
    by_init(&c[0]);
    chg_encode(&x, &c[0], id1);
    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])id1, 1, v.len + 37,
               "Mallory: as Ana said\n", &c[1], NULL);
    refuse_bundle(w, "unsigned as Ana, 'covered' by Mallory", w->n1, c, 2,
                  NOTES_EUNSIGNED, "no signature");
    bufs_release(c, 2);
    notes__buf_release(&ops);

    /* The handshake: M3 claiming Ana's key, signed by Mallory. */
    before = srv_count();
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, w->ana), 0);
    {
        size_t extra;
        assert_int_equal(read_to_eof(m.fd, 5000, &extra), 0);
        assert_int_equal(extra, 0); /* not a byte after M2 */
    }
    mal_close(&m);
    assert_int_equal(srv_wait(before + 1, 5000), before + 1);
    say("  %-46s -> %s: %s\n", "handshake: M3 claiming Ana's key",
           notes_sync_errname(g_srv.rec[before].rc), g_srv.rec[before].detail);
    assert_int_equal(g_srv.rec[before].rc, NOTES_SYNC_EHANDSHAKE);
    assert_false(g_srv.rec[before].opened);
    assert_non_null(strstr(g_srv.rec[before].detail, "signature"));
    {
        static const uint8_t zero[32];
        assert_memory_equal(g_srv.rec[before].peer, zero, 32);
    }
    honest_check(w, "an M3 claiming Ana's key");
    /* Control: the same hand-built M3 with her own key opens a session. */
    before = srv_count();
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal,
                              notes_identity_public_key(w->mal)),
                     0);
    {
        static const uint8_t bye_early[] = {M_HAVE, 2, 1, 0, M_DONE, 0};
        m.sent_done = 1;
        assert_int_equal(mal_frame(&m, bye_early, sizeof(bye_early)), 0);
        assert_int_equal(mal_pump(&m, 5000), 1);
        assert_true(m.sent_bye && m.bye);
    }
    mal_close(&m);
    assert_int_equal(srv_wait(before + 1, 5000), before + 1);
    assert_int_equal(g_srv.rec[before].rc, 0);
    assert_true(g_srv.rec[before].opened);
    assert_memory_equal(g_srv.rec[before].peer,
                        notes_identity_public_key(w->mal), 32);
    view_free(&v);
    honest_round(w, "impersonation", 0);
    srv_finish();
}

/*
 * Replay: the server's own changes sent back (skipped, nothing stored
 * twice), a new change sent twice in one bundle and again in a later
 * session (stored once). Reorder: a child before its parent in a bundle,
 * or a child whose parent never came, is refused whole; in order, taken.
 */
static void test_hostile_replay_and_reorder(void **st)
{
    struct world *w = *st;
    struct view v;
    struct notes_buf c[4], msgs;
    uint8_t x1[32], x2[32], x3[32];
    struct snap s0, s1;
    struct outcome o;
    size_t nc, nc0;
    char *t;
    view_of(w->a, w->n1, &v);
    t = note_state(w->a, w->n1, &nc0, NULL);
    free(t);

    /* Everything the server has, replayed to it (as a raw bundle and as
     * a compressed one). */
    snap_take(w->a, &s0);
    by_init(&msgs);
    by_bundle_msg(&msgs, 0, w->n1, v.bundle, v.nbundle);
    {
        /* Again compressed, and the other note's too. */
        size_t cap = ZSTD_compressBound(v.nbundle), zn;
        uint8_t *z = malloc(cap);
        struct view v2;
        assert_non_null(z);
        zn = ZSTD_compress(z, cap, v.bundle, v.nbundle, 3);
        assert_false(ZSTD_isError(zn));
        by_bundle_msg(&msgs, 1, w->n1, z, zn);
        free(z);
        view_of(w->a, w->n2, &v2);
        by_bundle_msg(&msgs, 0, w->n2, v2.bundle, v2.nbundle);
        view_free(&v2);
    }
    mal_session(w, msgs.data, msgs.len, &o);
    notes__buf_release(&msgs);
    say("  %-46s -> %s, %llu new change(s)\n", "replay of the server's own "
           "changes", o.rec.rc ? notes_sync_errname(o.rec.rc) : "OK",
           (unsigned long long)o.rec.changes_received);
    assert_int_equal(o.rec.rc, 0);
    assert_true(o.clean);
    assert_int_equal(o.rec.changes_received, 0);
    assert_int_equal(o.rec.notes_received, 3);
    snap_take(w->a, &s1);
    snap_same(&s0, &s1, "replay of the server's own changes");
    snap_free(&s1);
    honest_check(w, "a replay of the server's own changes");

    /* A new change, twice in one bundle, with the old ones replayed. */
    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: one\n", &c[0], x1);
    by_init(&c[1]);
    by_put(&c[1], c[0].data, c[0].len);
    expect_taken(w, "new change twice in one bundle", w->n1, c, 2, 1);
    t = note_state(w->a, w->n1, &nc, NULL);
    assert_int_equal(nc, nc0 + 1);
    assert_non_null(strstr(t, "Mallory: one\n"));
    assert_null(strstr(strstr(t, "Mallory: one\n") + 1, "Mallory: one\n"));
    free(t);
    /* The same change in a later session: skipped. */
    expect_taken(w, "the same change in a later session", w->n1, c, 1, 0);
    t = note_state(w->a, w->n1, &nc, NULL);
    assert_int_equal(nc, nc0 + 1);
    free(t);
    bufs_release(c, 2);

    /* Her changes 2 and 3, child first: refused whole. */
    mal_change(w, w->n1, 2, x1, (const uint8_t(*)[32])x1, 1, v.len + 13,
               "Mallory: two\n", &c[0], x2);
    mal_change(w, w->n1, 3, x2, (const uint8_t(*)[32])x2, 1, v.len + 26,
               "Mallory: three\n", &c[1], x3);
    {
        struct notes_buf rev[2] = {c[1], c[0]};
        refuse_bundle(w, "child before its parent", w->n1, rev, 2,
                      NOTES_EMISSINGDEP, "missing");
    }
    /* The child alone (its parent never sent): refused. */
    refuse_bundle(w, "child without its parent", w->n1, &c[1], 1,
                  NOTES_EMISSINGDEP, "missing");
    /* In order: both taken. */
    expect_taken(w, "parent, then child", w->n1, c, 2, 2);
    t = note_state(w->a, w->n1, &nc, NULL);
    assert_int_equal(nc, nc0 + 3);
    assert_non_null(strstr(t, "Mallory: one\nMallory: two\nMallory: three\n"));
    free(t);
    bufs_release(c, 2);
    snap_free(&s0);
    view_free(&v);
    srv_finish();
}

/*
 * Two changes by Mallory with the same seq, on note `doc` at its end,
 * texts "Mallory: version X/Y". OUT: their encodings and ids, the smaller
 * id first (the one that continues her main branch, docs/format.md).
 */
static void equivocate(const struct world *w, const uint8_t doc[16],
                       struct notes_buf c[2], uint8_t id[2][32],
                       const char *text[2])
{
    struct view v;
    static const char *t[2] = {"Mallory: version X\n",
                               "Mallory: version Y\n"};
    view_of(w->a, doc, &v);
    mal_change(w, doc, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, t[0], &c[0], id[0]);
    mal_change(w, doc, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, t[1], &c[1], id[1]);
    text[0] = t[0];
    text[1] = t[1];
    if (memcmp(id[0], id[1], 32) > 0) {
        struct notes_buf tc = c[0];
        uint8_t tid[32];
        c[0] = c[1];
        c[1] = tc;
        memcpy(tid, id[0], 32);
        memcpy(id[0], id[1], 32);
        memcpy(id[1], tid, 32);
        text[0] = t[1];
        text[1] = t[0];
    }
    view_free(&v);
}

/*
 * Equivocation: Mallory signs two different changes with seq 1. Both are
 * valid, so both are stored, as evidence, and both are applied as
 * concurrent branches, with what is built on them (her seq 2 on the
 * branch with the larger id); notes_doc_verify reports the equivocation,
 * naming her key. Bo, who held none of it, gets X, Y and Z with the same
 * evidence and the same text. On a second note Bo takes the smaller id
 * before the other reaches the server: the server, which holds both
 * branches, sends Bo all of Mallory's changes (her seqs do not grow along
 * its log), so Bo ends with both, the same text and the same evidence.
 */
static void test_hostile_equivocation(void **st)
{
    struct world *w = *st;
    struct notes_buf c[2], cz, c2[2];
    uint8_t id[2][32], id2[2][32], z[32];
    const char *text[2], *text2[2];
    size_t nc0, nc, neq;
    char *t;
    t = note_state(w->a, w->n1, &nc0, NULL);
    free(t);
    equivocate(w, w->n1, c, id, text);
    /* Bo held none of Mallory's changes: he gets them all, the same text
     * and the same evidence. */
    w->eq_a = w->eq_b = 1;
    expect_taken(w, "X and Y: two seq 1 in one bundle", w->n1, c, 2, 2);
    {
        /* Z continues the branch with the larger id: valid, applied. */
        struct view v;
        uint8_t dep[1][32];
        view_of(w->a, w->n1, &v);
        memcpy(dep[0], id[1], 32);
        /* At the end of the text Y saw: the view now holds X too. */
        mal_change(w, w->n1, 2, id[1], (const uint8_t(*)[32])dep, 1,
                   v.len - strlen(text[0]), "Mallory: built on the loser\n",
                   &cz, z);
        view_free(&v);
    }
    /* Z is in the server's vector and heads like any change: Bo gets it
     * too, so both hold the same changes (exact). */
    expect_taken(w, "Z: seq 2 on the other branch", w->n1, &cz, 1, 1);

    t = note_state(w->a, w->n1, &nc, &neq);
    say("  server after equivocation: %zu changes, %zu equivocation(s) "
           "reported; the text keeps both branches\n", nc, neq);
    assert_int_equal(nc, nc0 + 3);
    assert_int_equal(neq, 1);
    assert_non_null(strstr(t, text[0]));
    assert_non_null(strstr(t, text[1]));
    assert_non_null(strstr(t, "built on the loser"));
    free(t);
    {
        /* The report names Mallory; X and Y are marked, Z is not (its
         * seq is its own), and the key is flagged. */
        notes_replica *r;
        notes_doc *d;
        notes_verify_report rep;
        char fpr[NOTES_FPR_STRLEN];
        size_t equivocated = 0;
        notes_key_fingerprint(notes_identity_public_key(w->mal), fpr);
        assert_int_equal(notes_replica_open(w->a, &r), NOTES_OK);
        assert_int_equal(notes_doc_open(r, w->n1, &d), NOTES_OK);
        assert_int_equal(notes_doc_verify(d, &rep), NOTES_EEQUIVOCATION);
        assert_int_equal(rep.nproblems, 1);
        say("  verify: %s\n", rep.problems[0].message);
        assert_non_null(strstr(rep.problems[0].message, fpr));
        for (size_t i = 0; i < notes_doc_change_count(d); i++) {
            notes_change_info ci;
            assert_int_equal(notes_doc_change(d, i, &ci), NOTES_OK);
            if (ci.equivocated) {
                equivocated++;
                assert_true(!memcmp(ci.id, id[0], 32) ||
                            !memcmp(ci.id, id[1], 32));
            }
            if (!memcmp(ci.id, z, 32))
                assert_false(ci.equivocated);
        }
        assert_int_equal(equivocated, 2);
        assert_true(notes_doc_author_equivocated(
            d, notes_identity_public_key(w->mal)));
        assert_false(notes_doc_author_equivocated(
            d, notes_identity_public_key(w->bo)));
        notes_verify_report_clear(&rep);
        notes_doc_free(d);
        notes_replica_free(r);
    }
    /* Note 2: the smaller id reaches Bo first, the other later. */
    equivocate(w, w->n2, c2, id2, text2);
    expect_taken(w, "note 2: the smaller id alone", w->n2, &c2[0], 1, 1);
    w->eq_a = w->eq_b = 2;
    expect_taken(w, "note 2: the larger id, later", w->n2, &c2[1], 1, 1);
    t = note_state(w->b, w->n2, &nc, &neq);
    assert_non_null(strstr(t, text2[0]));
    assert_non_null(strstr(t, text2[1]));
    free(t);
    say("  note 2: Bo got both branches: the same text and evidence\n");
    notes__buf_release(&c[0]);
    notes__buf_release(&c[1]);
    notes__buf_release(&c2[0]);
    notes__buf_release(&c2[1]);
    notes__buf_release(&cz);
    srv_finish();
}

/*
 * Causally impossible changes: deps or prev naming changes that do not
 * exist, a chain that jumps or borrows another author's change, text
 * positions beyond the text of the version the change names (even when
 * the current text is long enough), deletes beyond the text, a change of
 * another note inside a bundle, unsorted deps.
 */
static void test_hostile_causally_impossible(void **st)
{
    struct world *w = *st;
    struct view v;
    struct notes_buf c[2], ops;
    struct chg x = {0};
    uint8_t unknown[32], x1[32], first[32];
    uint8_t deps2[2][32];
    size_t len_first;
    view_of(w->a, w->n1, &v);
    notes__random(unknown, sizeof(unknown));
    memcpy(first, v.ids[0], 32); /* Ana's first change: a shorter text */
    len_first = strlen("# Weekly\n\nAgenda: release plan\n");
    assert_true(v.len > len_first + 5);

    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])unknown, 1, 0,
               "Mallory: after nothing\n", &c[0], NULL);
    refuse_bundle(w, "dep on a change that does not exist", w->n1, c, 1,
                  NOTES_EMISSINGDEP, "missing");
    notes__buf_release(&c[0]);

    mal_change(w, w->n1, 2, unknown, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: seq 2 first\n", &c[0], NULL);
    refuse_bundle(w, "prev that does not exist", w->n1, c, 1,
                  NOTES_EMISSINGDEP, "missing");
    notes__buf_release(&c[0]);

    mal_change(w, w->n1, 2, first, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: borrowing Ana's chain\n", &c[0], NULL);
    refuse_bundle(w, "prev is another author's change", w->n1, c, 1,
                  NOTES_EBADCHAIN, "another chain");
    notes__buf_release(&c[0]);

    /* Her seq 1, taken; then seq 3 naming it as prev: a jump. */
    mal_change(w, w->n1, 1, NULL, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: seq 1\n", &c[0], x1);
    expect_taken(w, "Mallory's seq 1 (valid)", w->n1, c, 1, 1);
    notes__buf_release(&c[0]);
    view_free(&v);
    view_of(w->a, w->n1, &v);
    mal_change(w, w->n1, 3, x1, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len, "Mallory: seq 3 after 1\n", &c[0], NULL);
    refuse_bundle(w, "seq 3 right after seq 1", w->n1, c, 1, NOTES_EBADSEQ,
                  NULL);
    notes__buf_release(&c[0]);

    /* Positions. */
    mal_change(w, w->n1, 2, x1, (const uint8_t(*)[32])v.heads, v.nheads,
               v.len + 1, "past the end\n", &c[0], NULL);
    refuse_bundle(w, "insert one past the end", w->n1, c, 1, NOTES_EBADOP,
                  "outside the text");
    notes__buf_release(&c[0]);
    mal_change(w, w->n1, 2, x1, (const uint8_t(*)[32])first, 1,
               len_first + 5, "valid now, not then\n", &c[0], NULL);
    refuse_bundle(w, "insert past the text of the version named", w->n1, c,
                  1, NOTES_EBADOP, "outside the text");
    notes__buf_release(&c[0]);
    mal_change(w, w->n1, 2, x1, NULL, 0, 1, "after nothing\n", &c[0], NULL);
    refuse_bundle(w, "insert at 1 having seen nothing", w->n1, c, 1,
                  NOTES_EBADOP, "outside the text");
    notes__buf_release(&c[0]);

    x.doc = w->n1;
    x.author = notes_identity_public_key(w->mal);
    x.seq = 2;
    x.prev = x1;
    x.deps = (const uint8_t(*)[32])v.heads;
    x.ndeps = v.nheads;
    x.ops = &ops;
    x.nops = 1;
    x.signer = w->mal;
    {
        static const struct {
            const char *what;
            uint8_t kind;
            uint64_t pos, count;
            int rc;
        } dels[] = {
            {"delete one past the end", 2, 0, 0, NOTES_EBADOP},
            {"delete 2^32-1 code points", 2, 0, 0xffffffffu, NOTES_EBADOP},
            {"delete at 2^32-1", 2, 0xffffffffu, 1, NOTES_EBADOP},
            {"backspace past the start", 7, 3, 5, NOTES_ECORRUPT},
            {"backspace from past the end", 7, 0, 1, NOTES_EBADOP},
        };
        for (size_t i = 0; i < sizeof(dels) / sizeof(dels[0]); i++) {
            uint64_t pos = dels[i].pos, count = dels[i].count;
            if (i == 0) {
                pos = v.len - 3;
                count = 4;
            } else if (i == 4) {
                pos = v.len;
                count = 1;
            }
            by_init(&ops);
            op_del(&ops, dels[i].kind, pos, count);
            by_init(&c[0]);
            chg_encode(&x, &c[0], NULL);
            refuse_bundle(w, dels[i].what, w->n1, c, 1, dels[i].rc, NULL);
            notes__buf_release(&c[0]);
            notes__buf_release(&ops);
        }
    }

    /* A change of note n2 inside n1's bundle. */
    mal_change(w, w->n2, 1, NULL, NULL, 0, 0, "wrong note\n", &c[0], NULL);
    refuse_bundle(w, "a change of another note", w->n1, c, 1, NOTES_EWRONGDOC,
                  "another note");
    notes__buf_release(&c[0]);

    /* Deps out of order, and twice the same. */
    memcpy(deps2[0], v.ids[1], 32);
    memcpy(deps2[1], v.ids[0], 32);
    if (memcmp(deps2[0], deps2[1], 32) < 0) {
        memcpy(deps2[0], v.ids[0], 32);
        memcpy(deps2[1], v.ids[1], 32);
    }
    mal_change(w, w->n1, 2, x1, (const uint8_t(*)[32])deps2, 2, 0, "z\n",
               &c[0], NULL);
    refuse_bundle(w, "deps not sorted", w->n1, c, 1, NOTES_ECORRUPT,
                  "not sorted");
    notes__buf_release(&c[0]);
    memcpy(deps2[1], deps2[0], 32);
    mal_change(w, w->n1, 2, x1, (const uint8_t(*)[32])deps2, 2, 0, "z\n",
               &c[0], NULL);
    refuse_bundle(w, "the same dep twice", w->n1, c, 1, NOTES_ECORRUPT,
                  "not sorted");
    notes__buf_release(&c[0]);
    view_free(&v);
    srv_finish();
}

/*
 * Huge claimed lengths: frame headers (authentic ones: Mallory holds the
 * keys) claiming 0, 2^32-1 or just over 1 MiB, and one claiming 1 MiB then
 * cut short; message lengths, bundle totals, HAVE counts, author counts
 * and references at or near 2^64; inside a bundle, change counts and
 * lengths near 2^64, dependency and operation counts over their limits,
 * positions beyond 2^32. The server refuses each before allocating what
 * it claims: its peak memory moves by a few MiB, not by the 256 MiB a
 * bundle total or the 4 GiB a header claims.
 */
static void test_hostile_huge_lengths(void **st)
{
    struct world *w = *st;
    long hwm0 = proc_kb(g_srv.pid, "VmHWM:"), rss0 = proc_kb(g_srv.pid,
                                                              "VmRSS:");
    static const uint8_t v64max[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x01};
    struct notes_buf msgs, pl, ops, c[1];
    struct view v;
    uint8_t zero16[16] = {0};

    /* Frame headers, sent right after the handshake. */
    {
        static const struct {
            const char *what;
            uint32_t len;
            int rc;
        } hdrs[] = {
            {"frame header claiming 2^32-1 bytes", 0xffffffffu, NOTES_ETOOBIG},
            {"frame header claiming 1 MiB + 1", NOTES_SYNC_FRAME_MAX + 1,
             NOTES_ETOOBIG},
            {"frame header claiming 0 bytes", 0, NOTES_SYNC_EPROTO},
            {"frame header claiming 1 MiB, then cut", NOTES_SYNC_FRAME_MAX,
             NOTES_SYNC_ECLOSED},
        };
        for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
            struct snap before, after;
            struct mal m;
            size_t rec = srv_count();
            uint8_t junk[1000];
            snap_take(w->a, &before);
            assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, NULL),
                             0);
            assert_int_equal(mal_header(&m, hdrs[i].len), 0);
            if (hdrs[i].rc == NOTES_SYNC_ECLOSED) {
                notes__random(junk, sizeof(junk));
                assert_int_equal(write_all(m.fd, junk, sizeof(junk)), 0);
                shutdown(m.fd, SHUT_WR);
            }
            assert_int_equal(mal_pump(&m, 5000), 1);
            assert_int_equal(srv_wait(rec + 1, 5000), rec + 1);
            say("  %-46s -> %s: %s\n", hdrs[i].what,
                   notes_sync_errname(g_srv.rec[rec].rc),
                   g_srv.rec[rec].detail);
            assert_int_equal(g_srv.rec[rec].rc, hdrs[i].rc);
            if (hdrs[i].rc != NOTES_SYNC_ECLOSED) {
                assert_true(m.error);
                assert_int_equal((int64_t)m.err_code, -(int64_t)hdrs[i].rc);
            }
            mal_close(&m);
            assert_true(srv_alive());
            snap_take(w->a, &after);
            snap_same(&before, &after, hdrs[i].what);
            snap_free(&before);
            snap_free(&after);
            honest_check(w, hdrs[i].what);
        }
    }

    /* A message length of 2^64-1, and one in 11 bytes. */
    by_init(&msgs);
    by_u8(&msgs, M_HAVE);
    by_put(&msgs, v64max, sizeof(v64max));
    expect_refused_f(w, "message length 2^64-1", 0, msgs.data, msgs.len,
                     NOTES_SYNC_EPROTO, "malformed message");
    msgs.len = 0;
    by_u8(&msgs, M_HAVE);
    for (int i = 0; i < 10; i++)
        by_u8(&msgs, 0x80);
    by_u8(&msgs, 0);
    expect_refused_f(w, "message length in 11 bytes", 0, msgs.data, msgs.len,
                     NOTES_SYNC_EPROTO, "malformed message");

    /* HAVE counts. */
    by_init(&pl);
    by_u8(&pl, 1);
    by_put(&pl, v64max, sizeof(v64max));
    msgs.len = 0;
    by_msg(&msgs, M_HAVE, pl.data, pl.len);
    expect_refused_f(w, "HAVE with 2^64-1 notes", WITH_DONE, msgs.data,
                     msgs.len, NOTES_SYNC_EPROTO, "too many notes");
    pl.len = 0;
    by_u8(&pl, 1);
    by_varint(&pl, 1);
    by_put(&pl, w->n1, 16);
    by_put(&pl, zero16, 16);
    by_put(&pl, v64max, sizeof(v64max));
    by_put(&pl, zero16, 16); /* some bytes to claim authors over */
    msgs.len = 0;
    by_msg(&msgs, M_HAVE, pl.data, pl.len);
    expect_refused_f(w, "HAVE entry with 2^64-1 authors", WITH_DONE,
                     msgs.data, msgs.len, NOTES_SYNC_EPROTO,
                     "bad author count");
    pl.len = 0;
    by_u8(&pl, 1);
    by_varint(&pl, 1);
    by_put(&pl, w->n1, 16);
    by_put(&pl, zero16, 16);
    by_varint(&pl, 1);
    by_put(&pl, v64max, sizeof(v64max)); /* author reference */
    by_varint(&pl, 1);
    msgs.len = 0;
    by_msg(&msgs, M_HAVE, pl.data, pl.len);
    expect_refused_f(w, "HAVE author reference 2^64-1", WITH_DONE, msgs.data,
                     msgs.len, NOTES_SYNC_EPROTO, "bad author reference");

    /* Bundle totals. */
    pl.len = 0;
    by_put(&pl, w->n1, 16);
    by_put(&pl, v64max, sizeof(v64max));
    by_put(&pl, "NTB\001", 4);
    msgs.len = 0;
    by_msg(&msgs, M_BUNDLE, pl.data, pl.len);
    expect_refused(w, "bundle total 2^64-1", msgs.data, msgs.len,
                   NOTES_ETOOBIG, "over the limit");
    {
        /* Exactly the limit (64 MiB), 1 KiB of it sent: held, then the
         * DONE that comes before the bundle ended is refused. */
        uint8_t kib[1024];
        memset(kib, 'x', sizeof(kib));
        pl.len = 0;
        by_put(&pl, w->n1, 16);
        by_varint(&pl, 64ull << 20);
        by_put(&pl, kib, sizeof(kib));
        msgs.len = 0;
        by_msg(&msgs, M_BUNDLE, pl.data, pl.len);
        expect_refused(w, "bundle total 64 MiB, 1 KiB sent", msgs.data,
                       msgs.len, NOTES_SYNC_EPROTO, "unexpected done");
    }

    /* Inside a bundle. */
    {
        struct notes_buf b;
        by_init(&b);
        by_put(&b, "NTB\001", 4);
        by_put(&b, v64max, sizeof(v64max));
        msgs.len = 0;
        by_bundle_msg(&msgs, 0, w->n1, b.data, b.len);
        expect_refused(w, "bundle of 2^64-1 changes", msgs.data, msgs.len,
                       NOTES_ECORRUPT, "change count");
        b.len = 0;
        by_put(&b, "NTB\001", 4);
        by_varint(&b, 1);
        by_varint(&b, 1ull << 63);
        by_put(&b, zero16, 16);
        msgs.len = 0;
        by_bundle_msg(&msgs, 0, w->n1, b.data, b.len);
        expect_refused(w, "a change claiming 2^63 bytes", msgs.data,
                       msgs.len, NOTES_ECORRUPT, "truncated");
        notes__buf_release(&b);
    }
    view_of(w->a, w->n1, &v);
    {
        struct chg x = {0};
        x.doc = w->n1;
        x.author = notes_identity_public_key(w->mal);
        x.seq = 1;
        x.deps = (const uint8_t(*)[32])v.heads;
        x.ndeps = v.nheads;
        x.ops = &ops;
        x.nops = 1;
        x.signer = w->mal;
        by_init(&ops);
        op_ins(&ops, 0, "x");

        x.ndeps_wire = UINT64_MAX;
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "a change with 2^64-1 deps", w->n1, c, 1,
                      NOTES_ECORRUPT, "dependency count");
        notes__buf_release(&c[0]);
        x.ndeps_wire = 257;
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "a change with 257 deps", w->n1, c, 1,
                      NOTES_ECORRUPT, "dependency count");
        notes__buf_release(&c[0]);
        x.ndeps_wire = 0;

        x.nops = UINT64_MAX;
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "a change with 2^64-1 operations", w->n1, c, 1,
                      NOTES_ECORRUPT, "operation count");
        notes__buf_release(&c[0]);
        x.nops = 1u << 20;
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "2^20 operations claimed, 1 sent", w->n1, c, 1,
                      NOTES_ECORRUPT, "operation count");
        notes__buf_release(&c[0]);
        x.nops = 1;

        ops.len = 0;
        by_u8(&ops, 1);
        by_put(&ops, v64max, sizeof(v64max));
        by_varint(&ops, 1);
        by_u8(&ops, 'x');
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "insert at 2^64-1", w->n1, c, 1, NOTES_ECORRUPT,
                      "insert position");
        notes__buf_release(&c[0]);
        ops.len = 0;
        by_u8(&ops, 1);
        by_varint(&ops, 1ull << 32);
        by_varint(&ops, 1);
        by_u8(&ops, 'x');
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "insert at 2^32", w->n1, c, 1, NOTES_ECORRUPT,
                      "insert position");
        notes__buf_release(&c[0]);
        ops.len = 0;
        by_u8(&ops, 1);
        by_varint(&ops, 0);
        by_put(&ops, v64max, sizeof(v64max));
        by_u8(&ops, 'x');
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "insert text of 2^64-1 bytes", w->n1, c, 1,
                      NOTES_ETOOBIG, "insert text");
        notes__buf_release(&c[0]);
        ops.len = 0;
        op_del(&ops, 2, 0, 0xffffffffu);
        op_del(&ops, 2, 0, 0xffffffffu);
        x.nops = 2;
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        refuse_bundle(w, "2 x 2^32-1 deletes (2^33 text events)", w->n1, c,
                      1, NOTES_ETOOBIG, "text events");
        notes__buf_release(&c[0]);
        x.nops = 1;

        ops.len = 0;
        op_ins(&ops, 0, "x");
        {
            uint8_t rnd[32];
            notes__random(rnd, sizeof(rnd));
            x.seq = UINT64_MAX;
            x.prev = rnd;
            by_init(&c[0]);
            chg_encode(&x, &c[0], NULL);
            refuse_bundle(w, "seq 2^64-1", w->n1, c, 1, NOTES_EMISSINGDEP,
                          "missing");
            notes__buf_release(&c[0]);
            x.seq = 1;
            x.prev = NULL;
        }
        /* A claimed time of 2^64-1 ms is only a claim: taken. */
        x.time = UINT64_MAX;
        ops.len = 0;
        op_ins(&ops, v.len, "Mallory, at the end of time\n");
        by_init(&c[0]);
        chg_encode(&x, &c[0], NULL);
        expect_taken(w, "a change claiming time 2^64-1 ms", w->n1, c, 1, 1);
        notes__buf_release(&c[0]);
        notes__buf_release(&ops);
    }
    view_free(&v);

    /* Mallory's own ERROR: a code of 2^64-1 and 64 KiB of binary reason. */
    {
        struct outcome o;
        uint8_t *big = malloc(65536);
        assert_non_null(big);
        notes__random(big, 65536);
        pl.len = 0;
        by_put(&pl, v64max, sizeof(v64max));
        by_put(&pl, big, 65536);
        msgs.len = 0;
        by_msg(&msgs, M_ERROR, pl.data, pl.len);
        free(big);
        mal_session_f(w, WITH_HAVE, msgs.data, msgs.len, &o);
        say("  %-46s -> %s: %.60s...\n", "ERROR: code 2^64-1, 64 KiB reason",
               notes_sync_errname(o.rec.rc), o.rec.detail);
        assert_int_equal(o.rec.rc, NOTES_SYNC_EREFUSED);
        assert_false(o.error); /* no reply to an error */
        for (const char *q = o.rec.detail; *q; q++)
            assert_true(*q >= ' ' && *q < 0x7f);
        honest_check(w, "Mallory's own ERROR");
    }
    notes__buf_release(&msgs);
    notes__buf_release(&pl);
    {
        long hwm1 = proc_kb(g_srv.pid, "VmHWM:");
        long rss1 = proc_kb(g_srv.pid, "VmRSS:");
        say("  server memory: RSS %ld -> %ld KiB, peak %ld -> %ld KiB\n",
               rss0, rss1, hwm0, hwm1);
        /* Nothing claimed was allocated: a frame (1 MiB) and small
         * buffers at most. */
        assert_true(hwm1 - hwm0 < MEM_KB(24 * 1024));
        assert_true(rss1 - rss0 < MEM_KB(16 * 1024));
    }
    srv_finish();
}

/* The zstd frame of `n` zero bytes (streamed, with its content size). */
static uint8_t *zstd_zeros(uint64_t n, size_t *zn)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    static uint8_t zeros[1 << 16];
    size_t cap = 1 << 20, pos = 0;
    uint8_t *z = malloc(cap);
    uint64_t left = n;
    assert_non_null(cc);
    assert_non_null(z);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc,
                                                     ZSTD_c_compressionLevel,
                                                     1)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cc, n)));
    for (;;) {
        size_t take = left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
        ZSTD_inBuffer in = {zeros, take, 0};
        ZSTD_outBuffer out = {z, cap, pos};
        size_t r;
        left -= take;
        do {
            r = ZSTD_compressStream2(cc, &out, &in,
                                     left ? ZSTD_e_continue : ZSTD_e_end);
            assert_false(ZSTD_isError(r));
            assert_true(out.pos < cap);
        } while (in.pos < in.size || (!left && r != 0));
        pos = out.pos;
        if (!left)
            break;
    }
    ZSTD_freeCCtx(cc);
    *zn = pos;
    return z;
}

/*
 * Rewrite a zstd frame's declared content size (docs: RFC 8878, 3.1.1.1):
 * keep the window descriptor if there is one, write the size in `fcs`
 * bytes (4 or 8), copy the blocks unchanged. OUT: a new buffer.
 */
static uint8_t *zstd_declare(const uint8_t *z, size_t zn, uint64_t size,
                             int fcs, size_t *outn)
{
    static const int fcs_len[4] = {0, 2, 4, 8};
    uint8_t fhd = z[4];
    int single = (fhd & 0x20) != 0;
    int old_fcs = fcs_len[fhd >> 6];
    size_t hdr, k = 0;
    uint8_t *o;
    if (old_fcs == 0 && single)
        old_fcs = 1;
    assert_int_equal(fhd & 3, 0); /* no dictionary id */
    hdr = 5 + (single ? 0 : 1) + (size_t)old_fcs;
    o = malloc(zn + 16);
    assert_non_null(o);
    memcpy(o, z, 4);
    k = 4;
    o[k++] = (uint8_t)((fhd & 0x3f) | (fcs == 8 ? 0xc0 : 0x80));
    if (!single)
        o[k++] = z[5];
    for (int i = 0; i < fcs; i++)
        o[k++] = (uint8_t)(size >> (8 * i));
    memcpy(o + k, z + hdr, zn - hdr);
    *outn = k + zn - hdr;
    return o;
}

/* One compressed bundle of note id (one ZBUNDLE message). */
static void zbundle_msgs(struct notes_buf *msgs, const uint8_t id[16],
                         const uint8_t *z, size_t zn)
{
    msgs->len = 0;
    by_bundle_msg(msgs, 1, id, z, zn);
}

/*
 * Decompression bombs (ZBUNDLE): frames declaring 2^32-1 or 2^62 bytes
 * (refused before anything is decompressed), frames whose blocks expand
 * beyond or fall short of what they declare, and a real bomb under the
 * 256 MiB limit (64 MiB of zeros in a few KiB), which the server
 * decompresses and then refuses as not a bundle. Printed: the server's
 * peak memory for each; its memory returns once the session is over.
 */
static void test_hostile_decompression_bomb(void **st)
{
    struct world *w = *st;
    struct notes_buf msgs;
    uint8_t *z, *d;
    size_t zn, dn;
    long rss0 = proc_kb(g_srv.pid, "VmRSS:"), hwm;
    double t0;
    by_init(&msgs);
    z = zstd_zeros(1u << 20, &zn); /* 1 MiB of zeros, declared */

    d = zstd_declare(z, zn, 0xffffffffu, 4, &dn);
    zbundle_msgs(&msgs, w->n1, d, dn);
    t0 = now_ms();
    expect_refused(w, "zstd frame declaring 2^32-1 bytes", msgs.data,
                   msgs.len, NOTES_ETOOBIG, "over the limit");
    free(d);
    d = zstd_declare(z, zn, 1ull << 62, 8, &dn);
    zbundle_msgs(&msgs, w->n1, d, dn);
    expect_refused(w, "zstd frame declaring 2^62 bytes", msgs.data, msgs.len,
                   NOTES_ETOOBIG, "over the limit");
    free(d);
    hwm = proc_kb(g_srv.pid, "VmHWM:");
    say("  declared bombs refused in %.0f ms; server peak %ld KiB\n",
           now_ms() - t0, hwm);
    d = zstd_declare(z, zn, 1024, 4, &dn);
    zbundle_msgs(&msgs, w->n1, d, dn);
    expect_refused(w, "declares 1 KiB, expands to 1 MiB", msgs.data,
                   msgs.len, NOTES_SYNC_EPROTO, "does not decompress");
    free(d);
    d = zstd_declare(z, zn, 64u << 20, 4, &dn);
    zbundle_msgs(&msgs, w->n1, d, dn);
    expect_refused(w, "declares 64 MiB, expands to 1 MiB", msgs.data,
                   msgs.len, NOTES_ETOOBIG, "more than 256x");
    free(d);
    free(z);
    {
        long rss = proc_kb(g_srv.pid, "VmRSS:");
        long hwm2 = proc_kb(g_srv.pid, "VmHWM:");
        say("  server memory after the lying frames: RSS %ld KiB, peak "
               "%ld KiB (was %ld)\n", rss, hwm2, hwm);
        /* The 64 MiB buffer is allocated but never touched. */
        assert_true(hwm2 - hwm < MEM_KB(16 * 1024));
    }

    /* A real bomb, within the size limit: refused for its ratio before
     * anything is decompressed. */
    z = zstd_zeros(64u << 20, &zn);
    zbundle_msgs(&msgs, w->n1, z, zn);
    hwm = proc_kb(g_srv.pid, "VmHWM:");
    t0 = now_ms();
    expect_refused(w, "64 MiB of zeros in a few KiB", msgs.data, msgs.len,
                   NOTES_ETOOBIG, "more than 256x");
    {
        long hwm2 = proc_kb(g_srv.pid, "VmHWM:");
        say("  64 MiB bomb: %zu bytes on the wire, refused in %.0f ms; "
               "server peak %ld -> %ld KiB (+%ld)\n", zn, now_ms() - t0, hwm,
               hwm2, hwm2 - hwm);
        assert_true(hwm2 - hwm < MEM_KB(4 * 1024));
    }
    free(z);
    notes__buf_release(&msgs);
    /* Bo's sync ran after it: the bomb's session and buffer are freed. */
    {
        long rss = proc_kb(g_srv.pid, "VmRSS:");
        say("  server RSS after the next session: %ld KiB (before the "
               "bombs %ld)\n", rss, rss0);
        assert_true(rss - rss0 < MEM_KB(16 * 1024));
    }
    srv_finish();
}

/*
 * Slowloris: a stranger trickling random bytes and a member trickling a
 * valid M1, one byte every 100 ms, are both dropped at the handshake
 * deadline (HS_MS, counted from the connection, not reset by bytes); a
 * member that completes the handshake and then trickles a frame header
 * one byte per IDLE_MS + 250 ms is dropped at the idle deadline and told
 * why.
 */
static void test_hostile_slowloris(void **st)
{
    struct world *w = *st;
    uint8_t m1[SYNC_M1_LEN], rnd[SYNC_M1_LEN], k[32];
    struct sync_hs hs;
    int fd[2];
    size_t sent[2] = {0, 0}, rec = srv_count();
    double t0, closed[2] = {0, 0};
    sync_netkey(w->sp.secret, k);
    sync_hs_m1(&hs, k, m1);
    sync_hs_wipe(&hs);
    notes__random(rnd, sizeof(rnd));
    fd[0] = connect_local(g_srv.port);
    fd[1] = connect_local(g_srv.port);
    assert_true(fd[0] >= 0 && fd[1] >= 0);
    t0 = now_ms();
    while ((!closed[0] || !closed[1]) && now_ms() - t0 < HS_MS + 4000) {
        struct pollfd pf[2] = {{.fd = fd[0], .events = POLLIN},
                               {.fd = fd[1], .events = POLLIN}};
        if (poll(pf, 2, 100) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            uint8_t b[256];
            if (closed[i])
                continue;
            if (pf[i].revents) {
                ssize_t n = read(fd[i], b, sizeof(b));
                assert_true(n <= 0); /* no reply to a partial M1 */
                closed[i] = now_ms() - t0;
                continue;
            }
            if (sent[i] < SYNC_M1_LEN &&
                now_ms() - t0 >= 100.0 * (double)sent[i] &&
                send(fd[i], (i ? m1 : rnd) + sent[i], 1, MSG_NOSIGNAL) == 1)
                sent[i]++;
        }
    }
    close(fd[0]);
    close(fd[1]);
    say("  trickled M1 (1 byte/100 ms): stranger dropped after %.0f ms "
           "(%zu bytes), member after %.0f ms (%zu bytes)\n", closed[0],
           sent[0], closed[1], sent[1]);
    for (int i = 0; i < 2; i++) {
        assert_true(closed[i] > HS_MS - 100);
        assert_true(closed[i] < HS_MS + 1500);
        assert_true(sent[i] < SYNC_M1_LEN);
    }
    assert_int_equal(srv_wait(rec + 2, 3000), rec + 2);
    for (int i = 0; i < 2; i++) {
        say("  server: %s: %s\n", notes_sync_errname(g_srv.rec[rec + i].rc),
               g_srv.rec[rec + i].detail);
        assert_int_equal(g_srv.rec[rec + i].rc, NOTES_SYNC_ETIMEOUT);
        assert_false(g_srv.rec[rec + i].opened);
        assert_non_null(strstr(g_srv.rec[rec + i].detail, "handshake"));
    }
    honest_round(w, "trickled M1s", 0);

    /* After the handshake: a header trickled slower than the idle
     * deadline. */
    {
        struct mal m;
        static const uint8_t have_none[] = {M_HAVE, 2, 1, 0};
        uint8_t hdr[SYNC_HDR_LEN], nonce[24] = {0}, len4[4];
        size_t i = 0;
        double last;
        rec = srv_count();
        assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, NULL), 0);
        assert_int_equal(mal_frame(&m, have_none, sizeof(have_none)), 0);
        notes__store_u32le(len4, 100);
        for (int j = 0; j < 8; j++)
            nonce[j] = (uint8_t)(m.tx.ctr >> (8 * j));
        notes__aead_seal(hdr, len4, 4, NULL, 0, nonce, m.tx.key);
        m.auto_bye = 0;
        t0 = last = now_ms();
        while (!m.eof && now_ms() - t0 < 4 * IDLE_MS) {
            if (i < sizeof(hdr) && now_ms() - last >= IDLE_MS + 250) {
                if (send(m.fd, hdr + i, 1, MSG_NOSIGNAL) == 1)
                    i++;
                last = now_ms();
            }
            (void)mal_pump(&m, 50);
        }
        say("  header trickled 1 byte per %d ms after the handshake: "
               "dropped after %.0f ms, %zu byte(s) sent; told: %s\n",
               IDLE_MS + 250, now_ms() - t0, i, m.err_text);
        assert_true(m.eof);
        assert_true(m.error);
        assert_int_equal((int64_t)m.err_code, -(int64_t)NOTES_SYNC_ETIMEOUT);
        assert_true(now_ms() - t0 < IDLE_MS + 1500);
        mal_close(&m);
        assert_int_equal(srv_wait(rec + 1, 3000), rec + 1);
        assert_int_equal(g_srv.rec[rec].rc, NOTES_SYNC_ETIMEOUT);
        assert_non_null(strstr(g_srv.rec[rec].detail, "silent"));
    }
    honest_round(w, "a trickled frame", 0);
    srv_finish();
}

/*
 * A connection flood from one address: 300 connections opened within
 * ~200 ms (bursts of 10 every 5 ms; every third sends 64 random bytes,
 * the rest nothing) against max_conns = 32. The server holds at most 8
 * at once, the limit of pending connections per address (the others are
 * answered "busy" and closed at once), sends a stranger nothing else,
 * drops the silent ones at the handshake deadline, keeps its descriptors
 * and memory bounded, and an honest peer of the same address syncs as
 * soon as a slot is free.
 */
static void test_hostile_connection_flood(void **st)
{
    enum { FLOOD = 300, MAXC = 32, PER_ADDR = 8, BURST = 10 };
    struct world *w = *st;
    int fds[FLOOD];
    uint8_t connected[FLOOD] = {0}, closed[FLOOD] = {0};
    size_t bytes = 0, nbusy = 0, nclosed = 0, rec0 = srv_count(), tries = 0;
    int nopen = 0;
    long fd0 = proc_fds(g_srv.pid), rss0 = proc_kb(g_srv.pid, "VmRSS:");
    long fdmax = fd0, rssmax = rss0;
    double t0 = now_ms(), honest_at = -1, next_try = t0 + 200;
    double next_burst = t0, last_close = 0, opened_by = 0;
    int poked = 0;
    struct pollfd *pf = calloc(FLOOD, sizeof(*pf));
    assert_non_null(pf);
    while ((nclosed < FLOOD || honest_at < 0) &&
           now_ms() - t0 < HS_MS + 9000) {
        long f = proc_fds(g_srv.pid), r = proc_kb(g_srv.pid, "VmRSS:");
        fdmax = f > fdmax ? f : fdmax;
        rssmax = r > rssmax ? r : rssmax;
        for (int k = 0; nopen < FLOOD && now_ms() >= next_burst &&
                        k < BURST; k++) {
            struct sockaddr_in sa;
            int fd = socket(AF_INET,
                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            assert_true(fd >= 0);
            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            sa.sin_port = htons((uint16_t)g_srv.port);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
                assert_int_equal(errno, EINPROGRESS);
            fds[nopen++] = fd;
            if (k == BURST - 1)
                next_burst = now_ms() + 5;
            if (nopen == FLOOD)
                opened_by = now_ms() - t0;
        }
        for (int i = 0; i < nopen; i++) {
            pf[i].fd = closed[i] ? -1 : fds[i];
            pf[i].events = connected[i] ? POLLIN : POLLOUT;
            pf[i].revents = 0;
        }
        if (poll(pf, (nfds_t)nopen, nopen < FLOOD ? 5 : 20) < 0 &&
            errno != EINTR)
            break;
        for (int i = 0; i < nopen; i++) {
            uint8_t b[256];
            ssize_t n;
            if (closed[i] || !pf[i].revents)
                continue;
            if (!connected[i] && (pf[i].revents & POLLOUT)) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el);
                connected[i] = 1;
                if (err == 0 && i % 3 == 0) {
                    notes__random(b, 64);
                    (void)send(fds[i], b, 64, MSG_NOSIGNAL);
                }
                if (err == 0)
                    continue;
            }
            n = read(fds[i], b, sizeof(b));
            if (n == (ssize_t)strlen(FLOOD_BUSY) &&
                memcmp(b, FLOOD_BUSY, (size_t)n) == 0) {
                nbusy++; /* one segment on loopback */
            } else if (n > 0) {
                bytes += (size_t)n;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                closed[i] = 1;
                nclosed++;
                last_close = now_ms() - t0;
                close(fds[i]);
            }
        }
        /*
         * A connection the kernel completed with a SYN cookie while the
         * server's accept queue was full may never reach the server
         * at all while it stays silent. Once the flood is over, one byte
         * on each connection still open makes the kernel deliver it; the
         * server then drops it at the handshake deadline.
         */
        if (!poked && nopen == FLOOD && now_ms() - t0 > HS_MS + 3000) {
            for (int i = 0; i < nopen; i++)
                if (!closed[i])
                    (void)send(fds[i], "x", 1, MSG_NOSIGNAL);
            poked = 1;
        }
        if (honest_at < 0 && now_ms() >= next_try) {
            notes_sync_report rep;
            tries++;
            if (notes_sync_once(w->b, NULL, "team", w->addr, &rep) == 0)
                honest_at = now_ms() - t0;
            next_try = now_ms() + 100;
        }
    }
    for (int i = 0; i < nopen; i++)
        if (!closed[i])
            close(fds[i]);
    free(pf);
    {
        size_t accepted = 0, opened = 0, timeouts = 0, seen = rec0;
        double end = now_ms() + 3000;
        /* Every flood connection was reported before it closed; Bo's
         * session may be reported just after his sync returned. */
        for (int bo = 0; !bo && now_ms() < end;) {
            srv_wait(g_srv.nrec + 1, (int)(end - now_ms()));
            for (; seen < g_srv.nrec; seen++)
                bo |= g_srv.rec[seen].opened != 0;
        }
        for (size_t i = rec0; i < g_srv.nrec; i++) {
            if (g_srv.rec[i].opened) {
                opened++;
                continue;
            }
            accepted++;
            timeouts += g_srv.rec[i].rc == NOTES_SYNC_ETIMEOUT;
        }
        say("  flood of %d connections from one address in %.0f ms "
               "(max_conns %d, %d pending per address): %zu accepted (%zu "
               "held to the handshake deadline, the others sent garbage), "
               "%zu turned away at once (%zu told busy); all closed after "
               "%.0f ms%s; %zu other bytes sent to the flood\n", FLOOD,
               opened_by, MAXC, PER_ADDR, accepted, timeouts,
               FLOOD - accepted, nbusy, last_close,
               poked ? " (stranded ones poked)" : "", bytes);
        say("  server: descriptors %ld -> max %ld, RSS %ld -> max %ld KiB; "
               "the honest sync succeeded after %.0f ms (%zu tries)\n", fd0,
               fdmax, rss0, rssmax, honest_at, tries);
        assert_int_equal(nclosed, FLOOD);
        assert_int_equal(bytes, 0);
        assert_true(nbusy > 0);
        assert_true(honest_at >= 0);
        assert_true(opened >= 1);
        assert_true(accepted < FLOOD); /* the limit turned some away */
        /* At most its share of pending connections at once (and Bo's),
         * and memory flat. */
        /* Bounded by the limits, not by the flood: the pending ones, those
         * of the last burst still being answered "busy" (each holds its
         * descriptor until that write is done and its close has run: under
         * ASan one CI run saw 19 -> 30), and Bo's connection with the files
         * his sync opens. */
        assert_true(fdmax - fd0 <= PER_ADDR + BURST + 4);
        assert_true(rssmax - rss0 < MEM_KB(16 * 1024));
        assert_true(last_close < HS_MS + 8000);
    }
    assert_true(srv_alive());
    honest_round(w, "a connection flood", 0);
    srv_finish();
}

/* ---- a stranger's flood while members sync (issue 15) ---- */

/*
 * The stranger holds no secret and has addresses of its own (127.0.0.2
 * to .5: another host on the LAN would have one, a host with several
 * addresses more). It keeps FLOOD_HOLD connections open (three in four
 * silent, one in four sending a random M1) and replaces each one the
 * server closes at once, at most FLOOD_RATE new ones a second after the
 * first FLOOD_HOLD. It runs on a thread until told to stop, FLOOD_MAX_MS
 * at most; the teardown stops it if a test failed.
 */
#define FLOOD_HOLD 40
#define FLOOD_RATE 20
#define FLOOD_ADDRS 4
#define FLOOD_MAX_MS 60000

struct flooder {
    pthread_t th;
    int port, running;
    volatile int stop;
    size_t opened, closed, busy, other_bytes, connect_errors;
};

static struct flooder g_flood;

/* A non-blocking connection from 127.0.0.x (src, host order) to port on
 * 127.0.0.1, under way; -1 on error. */
static int connect_from(uint32_t src, int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(src);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *flooder_main(void *arg)
{
    struct flooder *f = arg;
    struct pollfd pf[FLOOD_HOLD];
    int fds[FLOOD_HOLD], sent[FLOOD_HOLD], talk[FLOOD_HOLD];
    size_t got[FLOOD_HOLD];
    uint8_t line[FLOOD_HOLD][32];
    double start = now_ms(), next_new = start;
    unsigned k = 0;
    for (int i = 0; i < FLOOD_HOLD; i++)
        fds[i] = -1;
    while (!f->stop && now_ms() - start < FLOOD_MAX_MS) {
        for (int i = 0; i < FLOOD_HOLD; i++) {
            if (fds[i] >= 0)
                continue;
            if (f->opened >= FLOOD_HOLD && now_ms() < next_new)
                break;
            fds[i] = connect_from(0x7f000002u + k % FLOOD_ADDRS, f->port);
            if (fds[i] < 0) {
                f->connect_errors++;
                break;
            }
            talk[i] = k++ % 4 == 3;
            sent[i] = 0;
            got[i] = 0;
            if (++f->opened > FLOOD_HOLD)
                next_new = now_ms() + 1000.0 / FLOOD_RATE;
        }
        for (int i = 0; i < FLOOD_HOLD; i++) {
            pf[i].fd = fds[i];
            pf[i].events = (short)(POLLIN | (sent[i] ? 0 : POLLOUT));
            pf[i].revents = 0;
        }
        if (poll(pf, FLOOD_HOLD, 10) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < FLOOD_HOLD; i++) {
            uint8_t b[64];
            ssize_t n;
            if (fds[i] < 0 || !pf[i].revents)
                continue;
            if (!sent[i] && (pf[i].revents & POLLOUT)) {
                sent[i] = 1;
                if (talk[i]) {
                    notes__random(b, SYNC_M1_LEN);
                    (void)send(fds[i], b, SYNC_M1_LEN, MSG_NOSIGNAL);
                }
            }
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(fds[i], b, sizeof(b));
            if (n > 0) {
                for (ssize_t j = 0; j < n && got[i] < sizeof(line[i]); j++)
                    line[i][got[i]++] = b[j];
                if (got[i] == sizeof(line[i]))
                    f->other_bytes += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            /* The server closed it (or refused or reset it). */
            if (got[i] == strlen(FLOOD_BUSY) &&
                memcmp(line[i], FLOOD_BUSY, got[i]) == 0)
                f->busy++;
            else
                f->other_bytes += got[i];
            f->closed++;
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (int i = 0; i < FLOOD_HOLD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return NULL;
}

static void flood_start(int port)
{
    memset(&g_flood, 0, sizeof(g_flood));
    g_flood.port = port;
    assert_int_equal(pthread_create(&g_flood.th, NULL, flooder_main, &g_flood),
                     0);
    g_flood.running = 1;
}

static void flood_stop(void)
{
    if (!g_flood.running)
        return;
    g_flood.stop = 1;
    (void)pthread_join(g_flood.th, NULL); /* its loop polls 10 ms at most */
    g_flood.running = 0;
}

/*
 * Issue 15, "a stranger cannot lock members out". While the stranger
 * floods a server (its real handshake deadline), Bo edits and syncs
 * FLOOD_SYNCS times, 200 ms apart: every sync must succeed, with his
 * change taken. The server turns the excess away with the busy line and
 * sends the stranger nothing else, and holds a bounded number of
 * descriptors.
 */
#define FLOOD_SYNCS 12

static void test_hostile_stranger_flood_members(void **st)
{
    struct world *w = *st;
    size_t ok = 0;
    double worst = 0, sum = 0, t0;
    long fd0, fdmax;
    char first_err[400] = "";
    g_hs_ms = 0; /* serve's default handshake deadline */
    srv_start(w->a, 0);
    world_addr(w);
    fd0 = fdmax = proc_fds(g_srv.pid);
    flood_start(g_srv.port);
    /* Bounded wait until the stranger holds its connections and churns. */
    t0 = now_ms();
    while (__atomic_load_n(&g_flood.opened, __ATOMIC_RELAXED) <
               FLOOD_HOLD + 10 &&
           now_ms() - t0 < 5000) {
        struct pollfd pf = {.fd = g_srv.fd, .events = POLLIN};
        (void)poll(&pf, 1, 20);
        srv_drain();
    }
    t0 = now_ms();
    for (int i = 0; i < FLOOD_SYNCS; i++) {
        notes_sync_report rep;
        char text[64];
        double t1, ms;
        int rc;
        long f = proc_fds(g_srv.pid);
        fdmax = f > fdmax ? f : fdmax;
        snprintf(text, sizeof(text), "Bo during the flood, %d\n", i);
        append(w->b, w->n3, text);
        t1 = now_ms();
        rc = notes_sync_once(w->b, NULL, "team", w->addr, &rep);
        ms = now_ms() - t1;
        sum += ms;
        worst = ms > worst ? ms : worst;
        if (rc == 0 && rep.changes_sent >= 1)
            ok++;
        else if (!first_err[0])
            snprintf(first_err, sizeof(first_err), "sync %d: %s: %s", i,
                     notes_sync_errname(rc), notes_sync_last_detail());
        /* Pace the syncs; the server's records are read meanwhile. */
        for (double until = now_ms() + 200; now_ms() < until;) {
            struct pollfd pf = {.fd = g_srv.fd, .events = POLLIN};
            (void)poll(&pf, 1, 20);
            srv_drain();
        }
    }
    flood_stop();
    say("  members' sync success while a stranger floods: %zu/%d in "
           "%.1f s (each %.0f ms on average, worst %.0f ms)%s%s\n", ok,
           FLOOD_SYNCS, (now_ms() - t0) / 1000, sum / FLOOD_SYNCS, worst,
           first_err[0] ? "; first failure: " : "", first_err);
    say("  the stranger: %zu connections from %d addresses (%d held, "
           "%d new/s), %zu closed by the server, %zu of them answered "
           "busy, %zu other bytes; server descriptors %ld -> max %ld\n",
           g_flood.opened, FLOOD_ADDRS, FLOOD_HOLD, FLOOD_RATE,
           g_flood.closed, g_flood.busy, g_flood.other_bytes, fd0, fdmax);
    assert_int_equal(ok, FLOOD_SYNCS);
    assert_int_equal(g_flood.other_bytes, 0);
    assert_true(g_flood.busy > 0);
    assert_int_equal(g_flood.connect_errors, 0);
    assert_true(fdmax - fd0 <= 16 + 4);
    assert_true(srv_alive());
    g_hs_ms = HS_MS;
    honest_round(w, "a stranger's flood", 0);
    srv_finish();
}

/* Connect from 127.0.0.x (host order) and wait for the connection (1 s). */
static int connect_from_wait(uint32_t src, int port)
{
    int fd = connect_from(src, port);
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t el = sizeof(err);
    assert_true(fd >= 0);
    assert_int_equal(poll(&pf, 1, 1000), 1);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    assert_int_equal(err, 0);
    return fd;
}

/* fd is answered "busy" and closed within ms. */
static void expect_busy(int fd, int ms, const char *what)
{
    uint8_t b[sizeof(FLOOD_BUSY) - 1];
    size_t extra;
    if (read_exact(fd, b, sizeof(b), ms) != 0 ||
        memcmp(b, FLOOD_BUSY, sizeof(b)) != 0)
        fail_msg("%s: no busy answer", what);
    if (read_to_eof(fd, ms, &extra) != 0 || extra != 0)
        fail_msg("%s: not closed after the busy answer", what);
}

/* fd got nothing and is still open. */
static void expect_held(int fd, const char *what)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 0) != 0)
        fail_msg("%s: answered or closed", what);
}

/* A fake server for one connection: reads M1, then says busy (busy) or
 * closes without a word. */
struct fake_srv {
    pthread_t th;
    int lfd, port, busy;
};

static void *fake_main(void *arg)
{
    struct fake_srv *f = arg;
    struct pollfd pf = {.fd = f->lfd, .events = POLLIN};
    uint8_t m1[SYNC_M1_LEN];
    int fd;
    if (poll(&pf, 1, 5000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
        return NULL;
    if (read_exact(fd, m1, sizeof(m1), 5000) == 0 && f->busy)
        (void)write_all(fd, FLOOD_BUSY, strlen(FLOOD_BUSY));
    close(fd);
    return NULL;
}

/* notes_sync_once against a fake server: its result and detail. */
static int once_against_fake(struct world *w, int busy, char *detail,
                             size_t dn)
{
    struct fake_srv f;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    notes_sync_report rep;
    char addr[64];
    int rc;
    memset(&f, 0, sizeof(f));
    f.busy = busy;
    f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f.lfd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f.lfd, 4), 0);
    assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(pthread_create(&f.th, NULL, fake_main, &f), 0);
    rc = notes_sync_once(w->b, NULL, "team", addr, &rep);
    snprintf(detail, dn, "%s", notes_sync_last_detail());
    assert_int_equal(pthread_join(f.th, NULL), 0);
    close(f.lfd);
    return rc;
}

/*
 * The limits on pending connections, one by one (serve's defaults: 16
 * in all, 8 per address). The ninth from one address is answered busy
 * and the eight stay; with 16 pending, a newcomer from another address
 * evicts the oldest of the address holding the most (told busy, and the
 * server reports it), and the others stay. A client maps the busy answer,
 * and a close without any answer, to NOTES_SYNC_EBUSY, whose detail never
 * claims the peer lacks the secret.
 */
static void test_hostile_pending_limits(void **st)
{
    struct world *w = *st;
    int a[9], b[7], c, d;
    size_t rec0, evicted = 0;
    char detail[512];
    int rc;
    g_hs_ms = 5000; /* room for the steps below */
    srv_start(w->a, 0);
    world_addr(w);
    rec0 = srv_count();
    for (int i = 0; i < 9; i++)
        a[i] = connect_from_wait(0x7f000002u, g_srv.port);
    expect_busy(a[8], 2000, "the ninth from one address");
    close(a[8]);
    for (int i = 0; i < 8; i++)
        expect_held(a[i], "one of the eight");
    for (int i = 0; i < 7; i++)
        b[i] = connect_from_wait(0x7f000003u, g_srv.port);
    c = connect_from_wait(0x7f000004u, g_srv.port); /* 16 pending now */
    d = connect_from_wait(0x7f000005u, g_srv.port); /* evicts a[0] */
    expect_busy(a[0], 2000, "the oldest of the address holding the most");
    for (int i = 1; i < 8; i++)
        expect_held(a[i], "another of that address");
    for (int i = 0; i < 7; i++)
        expect_held(b[i], "a connection of another address");
    expect_held(c, "a lone connection");
    expect_held(d, "the newcomer");
    for (int i = 0; i < 8; i++)
        close(a[i]);
    for (int i = 0; i < 7; i++)
        close(b[i]);
    close(c);
    close(d);
    /* Each accepted one is reported: a[0] evicted, the 16 others closed
     * by the stranger before their handshake; a[8] was never accepted. */
    assert_int_equal(srv_wait(rec0 + 17, 5000), rec0 + 17);
    for (size_t i = rec0; i < g_srv.nrec; i++)
        evicted += g_srv.rec[i].rc == NOTES_SYNC_EBUSY &&
                   strstr(g_srv.rec[i].detail, "evicted") != NULL;
    say("  pending limits: the 9th from one address answered busy; the "
           "17th pending evicted the oldest of the busiest address "
           "(%zu eviction(s) reported)\n", evicted);
    assert_int_equal(evicted, 1);
    honest_round(w, "pending connections at their limit", 0);

    /* The client side. */
    rc = once_against_fake(w, 1, detail, sizeof(detail));
    say("  a busy answer: %s: %s\n", notes_sync_errname(rc), detail);
    assert_int_equal(rc, NOTES_SYNC_EBUSY);
    assert_non_null(strstr(detail, "busy"));
    rc = once_against_fake(w, 0, detail, sizeof(detail));
    say("  a close without an answer: %s: %s\n", notes_sync_errname(rc),
           detail);
    assert_int_equal(rc, NOTES_SYNC_EBUSY);
    assert_null(strstr(detail, "does not hold"));
    srv_finish();
}

/* ---- a stranger's 10,000 handshakes ---- */

struct stranger {
    pthread_t th;
    int port;
    size_t from, to;
    const uint8_t *m1, *m3, *frame;   /* a recorded session of Bo's */
    size_t nframe;
    size_t done, bad;
    char why[160];
};

static volatile int g_strangers_done;

static void *stranger_main(void *arg)
{
    struct stranger *s = arg;
    uint8_t buf[SYNC_M1_LEN + SYNC_M3_LEN + 4096], m2[SYNC_M2_LEN];
    for (size_t i = s->from; i < s->to; i++) {
        int kind = (int)(i % 4), fd = connect_local(s->port);
        size_t n = 0, extra = 0, want_m2 = kind == 1 || kind == 3;
        if (fd < 0) {
            s->bad++;
            snprintf(s->why, sizeof(s->why), "connect: %s", strerror(errno));
            continue;
        }
        switch (kind) {
        case 0: /* a random M1 */
            notes__random(buf, SYNC_M1_LEN);
            n = SYNC_M1_LEN;
            break;
        case 1: /* the recorded M1, then (below) the recorded M3 */
            memcpy(buf, s->m1, SYNC_M1_LEN);
            n = SYNC_M1_LEN;
            break;
        case 2: /* a random M1 and 200 bytes of garbage */
            notes__random(buf, SYNC_M1_LEN + 200);
            n = SYNC_M1_LEN + 200;
            break;
        default: /* the recorded M1, M3 and first frame at once */
            memcpy(buf, s->m1, SYNC_M1_LEN);
            memcpy(buf + SYNC_M1_LEN, s->m3, SYNC_M3_LEN);
            memcpy(buf + SYNC_M1_LEN + SYNC_M3_LEN, s->frame, s->nframe);
            n = SYNC_M1_LEN + SYNC_M3_LEN + s->nframe;
        }
        if (write_all(fd, buf, n) != 0 && kind != 2) {
            s->bad++;
            snprintf(s->why, sizeof(s->why), "write: %s", strerror(errno));
        } else if (want_m2 && read_exact(fd, m2, SYNC_M2_LEN, 5000) != 0) {
            s->bad++;
            snprintf(s->why, sizeof(s->why), "attempt %zu: no M2", i);
        } else if (kind == 1 && write_all(fd, s->m3, SYNC_M3_LEN) != 0) {
            s->bad++;
            snprintf(s->why, sizeof(s->why), "attempt %zu: M3 write", i);
        } else if (read_to_eof(fd, 5000, &extra) != 0 || extra != 0) {
            s->bad++;
            snprintf(s->why, sizeof(s->why), "attempt %zu (kind %d): %zu "
                     "unexpected bytes or no close", i, kind, extra);
        }
        close(fd);
        s->done++;
    }
    __atomic_add_fetch(&g_strangers_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Run attempts [from, to) on STRANGER_THREADS threads, draining the
 * server's records meanwhile. */
static void strangers_run(struct stranger *t, size_t from, size_t to,
                          double deadline_ms)
{
    size_t per = (to - from + STRANGER_THREADS - 1) / STRANGER_THREADS;
    double end = now_ms() + deadline_ms;
    g_strangers_done = 0;
    for (int i = 0; i < STRANGER_THREADS; i++) {
        t[i].from = from + (size_t)i * per;
        t[i].to = t[i].from + per < to ? t[i].from + per : to;
        assert_int_equal(pthread_create(&t[i].th, NULL, stranger_main, &t[i]),
                         0);
    }
    while (__atomic_load_n(&g_strangers_done, __ATOMIC_SEQ_CST) <
               STRANGER_THREADS &&
           now_ms() < end) {
        struct pollfd pf = {.fd = g_srv.fd, .events = POLLIN};
        (void)poll(&pf, 1, 20);
        srv_drain();
    }
    /* Each attempt is bounded (5 s per read), so the threads end. */
    for (int i = 0; i < STRANGER_THREADS; i++)
        assert_int_equal(pthread_join(t[i].th, NULL), 0);
    if (now_ms() > end)
        fail_msg("the handshake attempts took longer than %.0f s",
                 deadline_ms / 1000);
}

static void test_hostile_stranger_handshakes(void **st)
{
    struct world *w = *st;
    struct stranger t[STRANGER_THREADS];
    struct mal m;
    uint8_t frame[SYNC_HDR_LEN + 6 + SYNC_TAG_LEN];
    static const uint8_t have_done[] = {M_HAVE, 2, 1, 0, M_DONE, 0};
    size_t rec0, attempts = 0, bad = 0, opened = 0, hs_fail = 0;
    size_t no_secret = 0, no_proof = 0;
    long rss_warm, rss_end, hwm_end, fds_warm, fds_end, vsz_warm, vsz_end;
    double t0, elapsed;

    /* A recorded honest session of Bo's (as an eavesdropper sees it). */
    rec0 = srv_count();
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->bo, NULL), 0);
    {
        struct sync_dir copy = m.tx;
        assert_int_equal(sync_frame_seal(&copy, have_done, sizeof(have_done),
                                         frame),
                         NOTES_OK);
    }
    m.sent_done = 1;
    assert_int_equal(mal_frame(&m, have_done, sizeof(have_done)), 0);
    assert_int_equal(mal_pump(&m, 5000), 1);
    assert_true(m.sent_bye && m.bye);
    assert_int_equal(srv_wait(rec0 + 1, 5000), rec0 + 1);
    assert_int_equal(g_srv.rec[rec0].rc, 0);

    memset(t, 0, sizeof(t));
    for (int i = 0; i < STRANGER_THREADS; i++) {
        t[i].port = g_srv.port;
        t[i].m1 = m.m1;
        t[i].m3 = m.m3;
        t[i].frame = frame;
        t[i].nframe = sizeof(frame);
    }
    rec0 = srv_count();
    t0 = now_ms();
    strangers_run(t, 0, STRANGER_WARMUP, 30000);
    srv_wait(rec0 + STRANGER_WARMUP, 5000);
    rss_warm = proc_kb(g_srv.pid, "VmRSS:");
    vsz_warm = proc_kb(g_srv.pid, "VmSize:");
    fds_warm = proc_fds(g_srv.pid);
    strangers_run(t, STRANGER_WARMUP, STRANGER_ATTEMPTS, 120000);
    elapsed = now_ms() - t0;
    srv_wait(rec0 + STRANGER_ATTEMPTS, 10000);
    rss_end = proc_kb(g_srv.pid, "VmRSS:");
    vsz_end = proc_kb(g_srv.pid, "VmSize:");
    hwm_end = proc_kb(g_srv.pid, "VmHWM:");
    fds_end = proc_fds(g_srv.pid);
    mal_close(&m);
    for (int i = 0; i < STRANGER_THREADS; i++) {
        attempts += t[i].done;
        bad += t[i].bad;
        if (t[i].bad)
            say("  thread %d: %s\n", i, t[i].why);
    }
    for (size_t i = rec0; i < g_srv.nrec; i++) {
        opened += g_srv.rec[i].opened != 0;
        hs_fail += g_srv.rec[i].rc == NOTES_SYNC_EHANDSHAKE;
        no_secret += strstr(g_srv.rec[i].detail, "does not hold the "
                                                 "secret") != NULL;
        no_proof += strstr(g_srv.rec[i].detail, "proof does not "
                                                "authenticate") != NULL;
    }
    say("  stranger: %zu handshake attempts (random M1, replayed M1 then "
           "M3, M1 + garbage, replayed M1+M3+frame) in %.1f s (%.0f/s, %d "
           "threads)\n", attempts, elapsed / 1000, attempts / (elapsed / 1000),
           STRANGER_THREADS);
    say("  server: %zu sessions reported, %zu refused at the handshake "
           "(%zu without the secret at M1, %zu replays at M3), %zu opened\n",
           g_srv.nrec - rec0, hs_fail, no_secret, no_proof, opened);
    say("  server memory: RSS after %d attempts %ld KiB, after %zu %ld KiB "
           "(%+ld), peak %ld KiB; virtual %ld -> %ld KiB (%+ld); descriptors "
           "%ld -> %ld\n", STRANGER_WARMUP, rss_warm, attempts, rss_end,
           rss_end - rss_warm, hwm_end, vsz_warm, vsz_end,
           vsz_end - vsz_warm, fds_warm, fds_end);
    assert_int_equal(attempts, STRANGER_ATTEMPTS);
    assert_int_equal(bad, 0);
    assert_int_equal(g_srv.nrec - rec0, STRANGER_ATTEMPTS);
    assert_int_equal(opened, 0);
    assert_int_equal(hs_fail, STRANGER_ATTEMPTS);
    assert_int_equal(no_secret, STRANGER_ATTEMPTS / 2);
    assert_int_equal(no_proof, STRANGER_ATTEMPTS / 2);
    assert_true(rss_end - rss_warm < STRANGER_RSS_SLACK_KB);
    /* Not even untouched memory is kept (a 1 MiB session buffer per
     * attempt would show here). */
    assert_true(ASAN_BUILD || vsz_end - vsz_warm < 16 * 1024);
    assert_true(fds_end <= fds_warm);
    assert_true(srv_alive());
    honest_round(w, "10,000 handshakes of a stranger", 0);
    srv_finish();
}

/* ---- known bugs (docs/security.md, "Findings") ---- */

/*
 * FIXED, was known bug 1 (session.c, handle_have): a member's HAVE announcements are
 * kept without a memory budget: up to 1,000,000 notes of up to 4,096
 * authors each, 16 bytes per announced author from 2-3 bytes on the wire.
 * 40 MiB of non-final HAVE messages make the server allocate ~5x that.
 * Expected: the server's memory grows by less than what was sent.
 */
static void test_hostile_have_flood_memory(void **st)
{
    enum { AUTHORS = 4096, FRAMES = 40 };
    struct world *w = *st;
    struct notes_buf body, pl;
    struct mal m;
    uint8_t key[32], id[16];
    size_t sent = 0, entries = 0, rec;
    long rss0, rss1;
    rec = srv_count();
    rss0 = proc_kb(g_srv.pid, "VmRSS:");
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, NULL), 0);
    by_init(&body);
    by_init(&pl);
    /* One entry introducing 4,096 authors. */
    by_u8(&pl, 0);
    by_varint(&pl, 1);
    notes__random(id, sizeof(id));
    by_put(&pl, id, 16);
    by_put(&pl, id, 16);
    by_varint(&pl, AUTHORS);
    for (uint64_t a = 0; a < AUTHORS; a++) {
        notes__random(key, sizeof(key));
        by_varint(&pl, a);
        by_put(&pl, key, 32);
        by_varint(&pl, 1);
    }
    by_msg(&body, M_HAVE, pl.data, pl.len);
    assert_int_equal(mal_frame(&m, body.data, body.len), 0);
    sent += body.len;
    for (int f = 0; f < FRAMES; f++) {
        size_t per = 80;
        pl.len = 0;
        body.len = 0;
        by_u8(&pl, 0); /* not the last list */
        by_varint(&pl, per);
        for (size_t e = 0; e < per; e++) {
            notes__random(id, sizeof(id));
            by_put(&pl, id, 16);
            by_put(&pl, id, 16);
            by_varint(&pl, AUTHORS);
            for (uint64_t a = 0; a < AUTHORS; a++) {
                by_varint(&pl, a);
                by_varint(&pl, 1);
            }
        }
        entries += per;
        by_msg(&body, M_HAVE, pl.data, pl.len);
        if (mal_frame(&m, body.data, body.len) != 0)
            break;
        sent += body.len;
    }
    m.auto_bye = 0;
    (void)mal_pump(&m, 500); /* let the server take it in */
    rss1 = proc_kb(g_srv.pid, "VmRSS:");
    say("  %zu bytes of HAVE (%zu notes x %d authors) -> server RSS %ld -> "
           "%ld KiB (+%ld KiB, %.1fx what was sent)\n", sent, entries, AUTHORS,
           rss0, rss1, rss1 - rss0, (rss1 - rss0) * 1024.0 / (double)sent);
    mal_close(&m);
    srv_wait(rec + 1, 5000);
    notes__buf_release(&body);
    notes__buf_release(&pl);
    assert_true(srv_alive());
    assert_true((rss1 - rss0) * 1024 < (long)sent);
    srv_finish();
}

/*
 * FIXED, was known bug 2 (transport_uv.c, on_timer/conn_pump): a peer that stops
 * reading is never dropped. Its session fails at the idle deadline, but
 * the connection is closed only once every queued byte was written, which
 * never happens: the slot (and the session's memory, a received bundle
 * included) is held until the peer goes away. Expected: reported and
 * closed within 3 x idle_ms.
 */
static void test_hostile_slow_reader(void **st)
{
    struct world *w = *st;
    struct mal m;
    uint8_t big[16];
    static const uint8_t have_done[] = {M_HAVE, 2, 1, 0, M_DONE, 0};
    size_t rec;
    char *text;
    double t0;
    int small = 4096;
    text = malloc((8u << 20) + 1);
    assert_non_null(text);
    for (size_t i = 0; i < 8u << 20; i++)
        text[i] = (i % 64 == 63) ? '\n' : (char)('a' + notes__random_below(26));
    text[8u << 20] = '\0';
    make_note(w->a, "team", text, big);
    free(text);
    rec = srv_count();
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, NULL), 0);
    setsockopt(m.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    assert_int_equal(mal_frame(&m, have_done, sizeof(have_done)), 0);
    t0 = now_ms();
    /* Mallory reads nothing from here on. */
    srv_wait(rec + 1, 3 * IDLE_MS + 1000);
    say("  a member that stops reading: %s after %.0f ms\n",
           g_srv.nrec > rec ? "dropped" : "still held", now_ms() - t0);
    if (g_srv.nrec > rec)
        say("  server: %s: %s\n", notes_sync_errname(g_srv.rec[rec].rc),
               g_srv.rec[rec].detail);
    mal_close(&m);
    assert_true(g_srv.nrec > rec);
    assert_int_equal(g_srv.rec[rec].rc, NOTES_SYNC_ETIMEOUT);
    srv_finish();
}

/*
 * FIXED, was known bug 3 (transport_uv.c, on_read): after the handshake every read
 * restarts the idle deadline, so a member trickling one byte per
 * idle_ms / 3 holds a connection forever without ever completing a
 * frame. Expected: dropped within 3 x idle_ms.
 */
static void test_hostile_trickle_within_idle(void **st)
{
    struct world *w = *st;
    struct mal m;
    static const uint8_t have_none[] = {M_HAVE, 2, 1, 0};
    uint8_t junk[64];
    size_t rec, i = 0;
    double t0, last;
    notes__random(junk, sizeof(junk));
    rec = srv_count();
    assert_int_equal(mal_open(&m, g_srv.port, &w->sp, w->mal, NULL), 0);
    assert_int_equal(mal_frame(&m, have_none, sizeof(have_none)), 0);
    m.auto_bye = 0;
    t0 = last = now_ms();
    while (!m.eof && now_ms() - t0 < 3 * IDLE_MS + 1000) {
        if (now_ms() - last >= IDLE_MS / 3.0 && i < SYNC_HDR_LEN - 1) {
            if (send(m.fd, junk + i, 1, MSG_NOSIGNAL) == 1)
                i++;
            last = now_ms();
        }
        (void)mal_pump(&m, 50);
    }
    say("  header trickled 1 byte per %d ms: %s after %.0f ms (%zu "
           "bytes)\n", IDLE_MS / 3, m.eof ? "dropped" : "still held",
           now_ms() - t0, i);
    mal_close(&m);
    assert_true(m.eof);
    srv_wait(rec + 1, 2000);
    assert_int_equal(g_srv.rec[rec].rc, NOTES_SYNC_ETIMEOUT);
    srv_finish();
}

/* ---- packs (bundle version 2) built by hand ---- */

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* The columns of a pack being built (docs/format.md, "pack"). */
struct pack {
    struct notes_buf hdr, ops, text, sigs;
    uint64_t nchanges;
};

static void pack_init(struct pack *p)
{
    memset(p, 0, sizeof(*p));
    by_init(&p->hdr);
    by_init(&p->ops);
    by_init(&p->text);
    by_init(&p->sigs);
}

static void pack_release(struct pack *p)
{
    notes__buf_release(&p->hdr);
    notes__buf_release(&p->ops);
    notes__buf_release(&p->text);
    notes__buf_release(&p->sigs);
}

/*
 * Append Mallory's seq 1 inserting `text` at `pos`, as the pack's first
 * change, its deps as external references (0, then the id), signed (the
 * signature is that of the same change in the plain encoding).
 */
static void pack_first(struct pack *p, const struct world *w,
                       const uint8_t doc[16], const uint8_t (*deps)[32],
                       size_t ndeps, uint64_t pos, const char *text)
{
    struct notes_buf plain;
    mal_change(w, doc, 1, NULL, deps, ndeps, pos, text, &plain, NULL);
    by_varint(&p->hdr, 0); /* author 0 */
    by_varint(&p->hdr, 1); /* seq 0 + 1 */
    by_varint(&p->hdr, ndeps);
    for (size_t i = 0; i < ndeps; i++) {
        by_varint(&p->hdr, 0);
        by_put(&p->hdr, deps[i], 32);
    }
    by_varint(&p->hdr, zz((int64_t)(1700000000000ull + 1)));
    by_varint(&p->hdr, 1);
    by_u8(&p->hdr, 1);
    by_u8(&p->ops, 1);
    by_varint(&p->ops, zz((int64_t)pos));
    by_varint(&p->ops, strlen(text));
    by_put(&p->text, text, strlen(text));
    by_put(&p->sigs, plain.data + plain.len - 64, 64);
    p->nchanges++;
    notes__buf_release(&plain);
}

/* "NTB" 2, the note id, then the pack: magic, authors, change count, the
 * four column lengths, the columns. Counts may be overridden (~0: keep). */
static void pack_bundle(struct notes_buf *out, const uint8_t doc[16],
                        const uint8_t *author, const struct pack *p,
                        uint64_t nauthors, uint64_t nchanges, uint64_t lh)
{
    static const uint8_t magic[4] = {'N', 'T', 'B', 2};
    static const uint8_t pmagic[3] = {'N', 'P', 1};
    by_put(out, magic, 4);
    by_put(out, doc, 16);
    by_put(out, pmagic, 3);
    by_varint(out, nauthors == UINT64_MAX - 1 ? 1 : nauthors);
    by_put(out, author, 32);
    by_varint(out, nchanges == UINT64_MAX - 1 ? p->nchanges : nchanges);
    by_varint(out, lh == UINT64_MAX - 1 ? p->hdr.len : lh);
    by_varint(out, p->ops.len);
    by_varint(out, p->text.len);
    by_varint(out, p->sigs.len);
    by_put(out, p->hdr.data, p->hdr.len);
    by_put(out, p->ops.data, p->ops.len);
    by_put(out, p->text.data, p->text.len);
    by_put(out, p->sigs.data, p->sigs.len);
}

#define KEEP (UINT64_MAX - 1)

/* One pack bundle of note `id` in a BUNDLE (or ZBUNDLE) message. */
static void pack_msgs(struct notes_buf *msgs, const uint8_t id[16],
                      const uint8_t doc[16], const uint8_t *author,
                      const struct pack *p, uint64_t na, uint64_t nc,
                      uint64_t lh)
{
    struct notes_buf b;
    by_init(&b);
    pack_bundle(&b, doc, author, p, na, nc, lh);
    msgs->len = 0;
    by_bundle_msg(msgs, 0, id, b.data, b.len);
    notes__buf_release(&b);
}

/*
 * Bundles in the pack form (version 2, what export writes), built by
 * hand: a valid one (taken, so the builder is right), an external
 * reference to a change that does not exist, a back-reference past the
 * start, author / change / column counts of 2^64-1, more changes than
 * the header column can hold, a pack of another note, an operation delta
 * beyond 2^34, a seq that wraps to 0.
 */
static void test_hostile_malformed_packs(void **st)
{
    struct world *w = *st;
    const uint8_t *mk = notes_identity_public_key(w->mal);
    struct notes_buf msgs;
    struct pack p;
    struct view v;
    uint8_t unknown[1][32];
    by_init(&msgs);
    notes__random(unknown[0], 32);
    view_of(w->a, w->n1, &v);

    pack_init(&p);
    pack_first(&p, w, w->n1, (const uint8_t(*)[32])v.heads, v.nheads, v.len,
               "Mallory, packed\n");
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, KEEP, KEEP);
    {
        struct outcome o;
        mal_session(w, msgs.data, msgs.len, &o);
        say("  %-46s -> %s, %llu new change(s)\n", "a valid pack",
               o.rec.rc ? notes_sync_errname(o.rec.rc) : "OK",
               (unsigned long long)o.rec.changes_received);
        if (o.rec.rc)
            fail_msg("a valid pack: %s", o.rec.detail);
        assert_int_equal(o.rec.changes_received, 1);
        honest_check(w, "a valid pack");
    }
    pack_release(&p);
    view_free(&v);
    view_of(w->a, w->n1, &v);

    pack_init(&p);
    pack_first(&p, w, w->n1, (const uint8_t(*)[32])unknown, 1, 0, "x\n");
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, KEEP, KEEP);
    expect_refused(w, "pack: external dep that does not exist", msgs.data,
                   msgs.len, NOTES_EMISSINGDEP, "missing");
    pack_msgs(&msgs, w->n1, w->n2, mk, &p, KEEP, KEEP, KEEP);
    expect_refused(w, "pack of another note", msgs.data, msgs.len,
                   NOTES_EWRONGDOC, "bundle is of note");
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, UINT64_MAX, KEEP, KEEP);
    expect_refused(w, "pack: 2^64-1 authors", msgs.data, msgs.len,
                   NOTES_ECORRUPT, "malformed pack");
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, UINT64_MAX, KEEP);
    expect_refused(w, "pack: 2^64-1 changes", msgs.data, msgs.len,
                   NOTES_ECORRUPT, "malformed pack");
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, 1000, KEEP);
    expect_refused(w, "pack: 1000 changes, one header", msgs.data, msgs.len,
                   NOTES_ECORRUPT, "malformed pack");
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, KEEP, UINT64_MAX);
    expect_refused(w, "pack: header column of 2^64-1 bytes", msgs.data,
                   msgs.len, NOTES_ECORRUPT, "malformed pack");
    pack_release(&p);

    /* A dep referring 1 change back from the first one. */
    pack_init(&p);
    pack_first(&p, w, w->n1, (const uint8_t(*)[32])v.heads, 1, 0, "x\n");
    p.hdr.len = 0;
    by_varint(&p.hdr, 0);
    by_varint(&p.hdr, 1);
    by_varint(&p.hdr, 1);
    by_varint(&p.hdr, 1); /* back 1, from change 0 */
    by_varint(&p.hdr, 0);
    by_varint(&p.hdr, 1);
    by_u8(&p.hdr, 1);
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, KEEP, KEEP);
    expect_refused(w, "pack: back-reference past the start", msgs.data,
                   msgs.len, NOTES_ECORRUPT, "dependency reference");
    /* An insert position delta of 2^35. */
    p.ops.len = 0;
    by_u8(&p.ops, 1);
    by_varint(&p.ops, zz((int64_t)1 << 35));
    by_varint(&p.ops, 2);
    p.hdr.len = 0;
    by_varint(&p.hdr, 0);
    by_varint(&p.hdr, 1);
    by_varint(&p.hdr, 0);
    by_varint(&p.hdr, 0);
    by_varint(&p.hdr, 1);
    by_u8(&p.hdr, 1);
    pack_msgs(&msgs, w->n1, w->n1, mk, &p, KEEP, KEEP, KEEP);
    expect_refused(w, "pack: position delta of 2^35", msgs.data, msgs.len,
                   NOTES_ECORRUPT, "out of range");
    pack_release(&p);
    view_free(&v);
    notes__buf_release(&msgs);
    srv_finish();
}

/*
 * FIXED, was known bug 4 (libnotes notes_doc_merge + session.c max_bundle): a
 * compressed pack of many tiny changes. Every change of a bundle is
 * decoded into memory (~400 bytes each) before any is verified, and a
 * ZBUNDLE may expand to max_bundle (256 MiB) of 11-byte changes, so a
 * few KiB on the wire make the server allocate gigabytes. Here 500,000
 * unsigned changes (5.5 MB of pack, a few KiB compressed): refused in
 * the end (nothing covers them), but only after the server's peak memory
 * has grown by ~200 MB. Expected: less than 64 MiB.
 */
/* A pack of n tiny unsigned changes by Mallory, each after the last. */
static void bomb_pack(struct world *w, size_t n, struct notes_buf *b)
{
    struct pack p;
    pack_init(&p);
    for (size_t i = 0; i < n; i++) {
        by_varint(&p.hdr, 0);
        by_varint(&p.hdr, 1);
        if (i > 0)
            by_varint(&p.hdr, 1); /* prev: the change before */
        by_varint(&p.hdr, 0);
        by_varint(&p.hdr, 0);
        by_varint(&p.hdr, 1);
        by_u8(&p.hdr, 0);
        by_u8(&p.ops, 1);
        by_varint(&p.ops, 0); /* at the cursor */
        by_varint(&p.ops, 1);
        by_u8(&p.text, 'a');
        p.nchanges++;
    }
    by_init(b);
    pack_bundle(b, w->n1, notes_identity_public_key(w->mal), &p, KEEP, KEEP,
                KEEP);
    pack_release(&p);
}

static void test_hostile_pack_bomb_memory(void **st)
{
    enum { N = 500000 };
    struct world *w = *st;
    struct notes_buf b, msgs;
    uint8_t *z;
    size_t zcap, zn;
    long hwm0, hwm1;
    double t0;
    bomb_pack(w, N, &b);
    zcap = ZSTD_compressBound(b.len);
    z = malloc(zcap);
    assert_non_null(z);
    zn = ZSTD_compress(z, zcap, b.data, b.len, 19);
    assert_false(ZSTD_isError(zn));
    by_init(&msgs);
    by_bundle_msg(&msgs, 1, w->n1, z, zn);
    hwm0 = proc_kb(g_srv.pid, "VmHWM:");
    t0 = now_ms();
    /* Compressed: it would expand ~10,000x: refused before decompressing. */
    expect_refused(w, "pack bomb, compressed", msgs.data, msgs.len,
                   NOTES_ETOOBIG, "more than 256x");
    hwm1 = proc_kb(g_srv.pid, "VmHWM:");
    say("  pack bomb: %zu bytes of pack, %zu on the wire: refused after "
           "%.0f ms; server peak %ld -> %ld KiB (+%ld KiB)\n",
           b.len, zn, now_ms() - t0, hwm0, hwm1, hwm1 - hwm0);
    assert_true(hwm1 - hwm0 < 4 * 1024);
    /* Uncompressed (50,000 changes, 550 KB in one frame): refused once a
     * run of unsigned changes passes 1,000, not after decoding them all. */
    notes__buf_release(&b);
    bomb_pack(w, 50000, &b);
    msgs.len = 0;
    by_bundle_msg(&msgs, 0, w->n1, b.data, b.len);
    hwm0 = proc_kb(g_srv.pid, "VmHWM:");
    t0 = now_ms();
    expect_refused(w, "pack bomb, 50,000 unsigned changes", msgs.data,
                   msgs.len, NOTES_EUNSIGNED, "unsigned changes in a row");
    hwm1 = proc_kb(g_srv.pid, "VmHWM:");
    say("  pack bomb: %zu bytes on the wire, uncompressed: refused after "
           "%.0f ms; server peak %ld -> %ld KiB (+%ld KiB)\n", b.len,
           now_ms() - t0, hwm0, hwm1, hwm1 - hwm0);
    free(z);
    notes__buf_release(&b);
    notes__buf_release(&msgs);
    assert_true(hwm1 - hwm0 < 64 * 1024); /* the 5.5 MB received, held */
    srv_finish();
}

/*
 * FIXED, was known bug 5 (session.c, peer_have): after an equivocation, a peer that
 * holds the losing branch never receives the winner (today: the other
 * branch; both branches are applied). Bo takes Mallory's
 * loser L from the server; then the winner W reaches the server. Bo's
 * next sync announces {Mallory: 1}, the server's vector says the same,
 * so its export treats its own seq-1 change (W) as known to Bo and sends
 * everything but W. Bo keeps showing L's text, the server W's: honest
 * replicas diverge for good. Expected: the same text on both.
 */
static void test_hostile_equivocation_divergence(void **st)
{
    struct world *w = *st;
    struct notes_buf c[2];
    uint8_t id[2][32];
    const char *text[2];
    equivocate(w, w->n2, c, id, text);
    expect_taken(w, "the loser alone", w->n2, &c[1], 1, 1); /* Bo takes L */
    /* Expected: Bo gets W, both show both branches and the evidence. */
    w->eq_a = w->eq_b = 1;
    expect_taken(w, "the winner, later", w->n2, &c[0], 1, 1);
    notes__buf_release(&c[0]);
    notes__buf_release(&c[1]);
    srv_finish();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_forged_signature, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_impersonation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_replay_and_reorder,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_equivocation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_causally_impossible,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_malformed_packs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_huge_lengths, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_decompression_bomb,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_slowloris, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_connection_flood, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_stranger_handshakes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_stranger_flood_members,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_pending_limits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_have_flood_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_slow_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_trickle_within_idle,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_pack_bomb_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hostile_equivocation_divergence, setup, teardown),
    };
    int rc;
    signal(SIGPIPE, SIG_IGN);
    if (notes_init() != NOTES_OK)
        return 1;
    if (!getenv("NOTES_TEST_VERBOSE") &&
        (g_say = fopen("test_sync_hostile.out", "w")) != NULL)
        fprintf(stderr, "test_sync_hostile: the figures of each case are in "
                        "test_sync_hostile.out (NOTES_TEST_VERBOSE=1: here)\n");
    /* HOSTILE_TEST=pattern runs only the matching tests (by hand). */
    if (getenv("HOSTILE_TEST"))
        cmocka_set_test_filter(getenv("HOSTILE_TEST"));
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    srv_kill();
    if (g_say)
        fclose(g_say);
    return rc;
}
