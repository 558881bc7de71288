/*
 * test_sync_fault.c: faults on real loopback sockets. The serving peer is
 * a child process (notes_sync_serve) that the tests SIGKILL: mid-stream of
 * a large note (through a counting proxy thread, so the kill lands at a
 * known point), and between syncs while both sides edit; the receiving
 * side killed in the middle of a first sync. Also a peer that
 * completes the handshake and then goes silent. Every wait is bounded; the
 * teardown kills and reaps a child left behind by a failed assertion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
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

#include "notes_sync.h"
#include "sync_fixture.h"

static pid_t g_child = -1;

/*
 * The state of note `id` in `home`: its text (malloc'd; NULL if the note
 * has no log) and change count, after notes_doc_verify found nothing wrong
 * and no damage was cut from the log.
 */
static char *verified_text(const char *home, const uint8_t id[16],
                           size_t *nchanges)
{
    notes_replica *r;
    notes_doc *d;
    notes_verify_report rep;
    char *copy = NULL;
    size_t n;
    int rc;
    *nchanges = 0;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    rc = notes_doc_open(r, id, &d);
    if (rc == NOTES_ENOTFOUND) {
        notes_replica_free(r);
        return NULL;
    }
    assert_int_equal(rc, NOTES_OK);
    assert_null(notes_doc_damage(d));
    memset(&rep, 0, sizeof(rep));
    rc = notes_doc_verify(d, &rep);
    if (rc)
        fail_msg("verify: %s: %s", notes_errname(rc),
                 rep.nproblems ? rep.problems[0].message : "");
    assert_int_equal(rep.nproblems, 0);
    notes_verify_report_clear(&rep);
    const char *t = notes_doc_text(d, &n);
    copy = strndup(t, n);
    *nchanges = notes_doc_change_count(d);
    notes_doc_free(d);
    notes_replica_free(r);
    return copy;
}

/* Both replicas hold note `id` with the same text and the same changes. */
static void assert_same(const char *a, const char *b, const uint8_t id[16])
{
    size_t ca, cb;
    char *x = verified_text(a, id, &ca), *y = verified_text(b, id, &cb);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(ca, cb);
    assert_true(strcmp(x, y) == 0);
    free(x);
    free(y);
}

/* ---- the serving child ---- */

static int g_portfd = -1;

static void child_on_listen(void *ud, int port)
{
    (void)ud;
    if (write(g_portfd, &port, sizeof(port)) != sizeof(port))
        _exit(3);
}

/* Fork a child serving `home`; return the port it listens on. */
static int serve_child(const char *home)
{
    int fds[2], port = -1;
    struct pollfd pf;
    assert_int_equal(g_child, -1);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    g_child = fork();
    assert_true(g_child >= 0);
    if (g_child == 0) {
        notes_sync_serve_opts o;
        close(fds[0]);
        g_portfd = fds[1];
        memset(&o, 0, sizeof(o));
        o.on_listen = child_on_listen;
        o.handshake_ms = 2000;
        o.idle_ms = 3000;
        o.max_out = 64u << 10; /* streams in small steps */
        _exit(notes_sync_serve(home, NULL, &o) ? 1 : 0);
    }
    close(fds[1]);
    pf.fd = fds[0];
    pf.events = POLLIN;
    if (poll(&pf, 1, 5000) == 1 &&
        read(fds[0], &port, sizeof(port)) == sizeof(port)) {
        close(fds[0]);
        return port;
    }
    close(fds[0]);
    fail_msg("the serving child did not listen within 5 s");
    return -1;
}

static void kill_child(void)
{
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
    }
    g_child = -1;
}

static int teardown(void **st)
{
    (void)st;
    kill_child();
    return 0;
}

/* ---- a proxy that counts the bytes flowing to the client ---- */

struct proxy {
    pthread_t th;
    int lfd, port, upstream;
    size_t kill_after;        /* SIGKILL the child once this many bytes of
                                 the server have reached the client */
    size_t down, up;
    int killed;
};

static int connect_local(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
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

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    struct pollfd pf[2];
    char buf[16384];
    double deadline = now_ms() + 10000;
    int cfd, sfd;
    pf[0].fd = p->lfd;
    pf[0].events = POLLIN;
    if (poll(pf, 1, 5000) != 1 || (cfd = accept(p->lfd, NULL, NULL)) < 0)
        return NULL;
    if ((sfd = connect_local(p->upstream)) < 0) {
        close(cfd);
        return NULL;
    }
    pf[0].fd = cfd;
    pf[1].fd = sfd;
    pf[0].events = pf[1].events = POLLIN;
    while (now_ms() < deadline) {
        int k = poll(pf, 2, 100);
        if (k < 0 && errno != EINTR)
            break;
        if (k <= 0)
            continue;
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(sfd, buf, sizeof(buf));
            if (n <= 0 || write(cfd, buf, (size_t)n) != n)
                break;
            p->down += (size_t)n;
            if (!p->killed && p->down >= p->kill_after) {
                /* What the dead server had not yet got onto the wire is
                 * lost with it: drop the rest, close both ends. */
                kill(g_child, SIGKILL);
                p->killed = 1;
                break;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(cfd, buf, sizeof(buf));
            if (n <= 0 || write(sfd, buf, (size_t)n) != n)
                break;
            p->up += (size_t)n;
        }
    }
    close(cfd);
    close(sfd);
    return NULL;
}

static void proxy_start(struct proxy *p, int upstream, size_t kill_after)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    memset(p, 0, sizeof(*p));
    p->upstream = upstream;
    p->kill_after = kill_after;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(p->lfd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 4), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &sl), 0);
    p->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&p->th, NULL, proxy_main, p), 0);
}

static void proxy_join(struct proxy *p)
{
    assert_int_equal(pthread_join(p->th, NULL), 0);
    close(p->lfd);
}

/* A text of n bytes that zstd cannot shrink much (random letters). */
static char *big_text(size_t n, uint32_t seed)
{
    char *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        t[i] = (i % 9 == 8) ? '\n' : (char)('a' + (seed >> 16) % 26);
    }
    t[n] = '\0';
    return t;
}

/*
 * The server is SIGKILLed after 256 KiB of a ~2 MB stream has reached the
 * client. The client's sync fails (the connection closes before the
 * goodbye) with nothing half-stored; whatever reached either side is
 * verified; a restarted server and one more sync bring both replicas to
 * the same notes, every change once.
 */
static void test_fault_server_killed_mid_stream(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), addr[64];
    notes_sync_space sp;
    notes_sync_report rep;
    struct proxy px;
    uint8_t big[16], small_a[16], small_b[16];
    char *text = big_text(3u << 20, 777);
    int port, rc;
    size_t nc;
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    make_note(a, "team", text, big);
    make_note(a, "team", "# Agenda\n\nfrom Ana\n", small_a);
    make_note(b, "team", "# Retro\n\nfrom Bo\n", small_b);
    append(b, small_b, "more from Bo\n");

    port = serve_child(a);
    proxy_start(&px, port, 256u << 10);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", px.port);
    double t0 = now_ms();
    rc = notes_sync_once(b, NULL, "team", addr, &rep);
    printf("server killed after %zu bytes to the client (%zu from it): "
           "%s: %s after %.0f ms\n", px.down, px.up, notes_sync_errname(rc),
           notes_sync_last_detail(), now_ms() - t0);
    proxy_join(&px);
    assert_true(px.killed);
    assert_true(rc == NOTES_SYNC_ECLOSED || rc == NOTES_SYNC_ENET);
    kill_child();
    /* Nothing of the large note is stored on B: a bundle is merged only
     * whole. Whatever else crossed is intact. */
    char *t = verified_text(b, big, &nc);
    assert_null(t);
    free(verified_text(b, small_a, &nc));
    free(verified_text(a, small_b, &nc));

    /* Restarted, the next sync completes: nothing lost, nothing twice. */
    port = serve_child(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    rc = notes_sync_once(b, NULL, "team", addr, &rep);
    if (rc)
        fail_msg("sync after restart: %s: %s", notes_sync_errname(rc),
                 notes_sync_last_detail());
    printf("after restart: %llu + %llu bytes, %llu changes received, %llu "
           "sent\n", (unsigned long long)rep.bytes_sent,
           (unsigned long long)rep.bytes_received,
           (unsigned long long)rep.changes_received,
           (unsigned long long)rep.changes_sent);
    assert_same(a, b, big);
    assert_same(a, b, small_a);
    assert_same(a, b, small_b);
    t = verified_text(b, big, &nc);
    assert_int_equal(nc, 1);
    assert_string_equal(t, text);
    free(t);
    t = verified_text(a, small_b, &nc);
    assert_int_equal(nc, 2);
    assert_string_equal(t, "# Retro\n\nfrom Bo\nmore from Bo\n");
    free(t);
    /* And once more: nothing left to send either way. */
    assert_int_equal(notes_sync_once(b, NULL, "team", addr, &rep), NOTES_OK);
    assert_int_equal(rep.changes_sent + rep.changes_received, 0);
    kill_child();
    free(text);
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

/* Files in home/notes whose name ends with `suffix`. */
static int count_suffix(const char *home, const char *suffix)
{
    char dir[4200];
    int n = 0;
    snprintf(dir, sizeof(dir), "%s/notes", home);
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        n += l > sl && strcmp(e->d_name + l - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

/*
 * The receiving side SIGKILLed in the middle of a first sync of many notes
 * (new notes are made durable per batch of 256 and at the peer's DONE;
 * design.md, "A first sync of many notes"), once it has written some
 * logs: none of them has a state file yet; every note B then holds opens
 * intact and verifies (a log written but never flushed reads as
 * unacknowledged, not as damage), and the next sync brings every note,
 * every change once.
 */
static void test_fault_receiver_killed_first_sync(void **st)
{
    (void)st;
    enum { N = 200 };
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), addr[64], *texts[N];
    notes_sync_space sp;
    notes_sync_report rep;
    uint8_t ids[N][16];
    int port, status, rc, logs = 0, states = 0;
    size_t nc, held = 0;
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    for (int i = 0; i < N; i++) {
        texts[i] = big_text(2000, 1000u + (uint32_t)i);
        make_note(a, "team", texts[i], ids[i]);
    }
    port = serve_child(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    fflush(NULL);
    pid_t r = fork();
    assert_true(r >= 0);
    if (r == 0)
        _exit(notes_sync_once(b, NULL, "team", addr, &rep) ? 1 : 0);
    /* Kill it once it has written a few logs (or give up after 20 s). */
    double t0 = now_ms();
    while ((logs = count_suffix(b, ".log")) < 10 && now_ms() - t0 < 20000 &&
           waitpid(r, &status, WNOHANG) == 0)
        usleep(500);
    kill(r, SIGKILL);
    states = count_suffix(b, ".state");
    waitpid(r, &status, 0);
    kill_child();
    printf("receiver killed with %d logs and %d state files written\n", logs,
           states);
    assert_true(WIFSIGNALED(status)); /* killed mid-sync, not finished */
    assert_true(logs >= 10);
    assert_true(states < logs); /* logs written, not yet acknowledged */
    for (int i = 0; i < N; i++) {
        char *t = verified_text(b, ids[i], &nc); /* no damage, verifies */
        /* A log killed between its creation and its record holds its
         * header alone (or nothing): a note with no change, as before. */
        if (t && nc) {
            assert_string_equal(t, texts[i]);
            held++;
        }
        free(t);
    }
    printf("%zu notes held after the kill\n", held);
    assert_true(held >= 9); /* the last log may hold its header only */

    port = serve_child(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    rc = notes_sync_once(b, NULL, "team", addr, &rep);
    if (rc)
        fail_msg("sync after the kill: %s: %s", notes_sync_errname(rc),
                 notes_sync_last_detail());
    for (int i = 0; i < N; i++) {
        assert_same(a, b, ids[i]);
        free(verified_text(b, ids[i], &nc));
        assert_int_equal(nc, 1);
        free(texts[i]);
    }
    /* The notes the killed process had stored whole are equal on both
     * sides, so nothing is sent for them: they keep no state file (read
     * as unacknowledged) until their next write. Every other note was
     * stored by this sync and acknowledged. */
    assert_true(count_suffix(b, ".state") >= N - (int)held);
    kill_child();
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

/*
 * A peer cut off: the server is killed, both sides edit the same note
 * (and B starts another), B's sync fails fast, the server comes back and
 * one sync converges both.
 */
static void test_fault_cut_off_then_converge(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), addr[64];
    notes_sync_space sp;
    notes_sync_report rep;
    uint8_t n1[16], n2[16];
    int port, rc;
    size_t nc;
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    make_note(a, "team", "# Weekly\n", n1);
    port = serve_child(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(notes_sync_once(b, NULL, "team", addr, &rep), NOTES_OK);
    assert_same(a, b, n1);

    kill_child(); /* cut off */
    append(a, n1, "Ana: offline edit\n");
    append(b, n1, "Bo: offline edit\n");
    append(b, n1, "Bo: another\n");
    make_note(b, "team", "# Bo's new note\n", n2);
    double t0 = now_ms();
    rc = notes_sync_once(b, NULL, "team", addr, &rep);
    printf("server down: %s after %.0f ms\n", notes_sync_errname(rc),
           now_ms() - t0);
    assert_int_equal(rc, NOTES_SYNC_ENET);
    assert_true(now_ms() - t0 < 3000);

    port = serve_child(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    rc = notes_sync_once(b, NULL, "team", addr, &rep);
    if (rc)
        fail_msg("sync after reconnect: %s: %s", notes_sync_errname(rc),
                 notes_sync_last_detail());
    assert_int_equal(rep.changes_sent, 3);     /* Bo's two edits, his note */
    assert_int_equal(rep.changes_received, 1); /* Ana's edit */
    assert_same(a, b, n1);
    assert_same(a, b, n2);
    char *t = verified_text(a, n1, &nc);
    assert_int_equal(nc, 4);
    assert_non_null(strstr(t, "Ana: offline edit\n"));
    assert_non_null(strstr(t, "Bo: offline edit\n"));
    assert_non_null(strstr(t, "Bo: another\n"));
    free(t);
    kill_child();
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

/*
 * A member that completes the handshake, sends its list and then nothing
 * more is dropped at the idle deadline (the silent stranger that never
 * sends M1 is test_sync_uv's handshake timeout).
 */
static void test_fault_silent_after_handshake(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *c = mkreplica("Cy");
    notes_sync_space sp;
    notes_identity *id;
    notes_replica *rc_;
    notes_sync_session *s;
    notes_sync_config cfg;
    uint8_t n1[16], buf[4096];
    char path[4096];
    int port, fd;
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    make_note(a, "team", "# Weekly\n", n1);
    port = serve_child(a); /* idle deadline 3 s */
    snprintf(path, sizeof(path), "%s/identity", c);
    assert_int_equal(notes_identity_load(path, NULL, &id), NOTES_OK);
    assert_int_equal(notes_sync_space_save(c, &sp), NOTES_OK);
    assert_int_equal(notes_replica_open(c, &rc_), NOTES_OK);
    memset(&cfg, 0, sizeof(cfg));
    cfg.replica = rc_;
    cfg.role = NOTES_SYNC_INITIATOR;
    cfg.identity = id;
    cfg.spaces = &sp;
    cfg.nspaces = 1;
    assert_int_equal(notes_sync_session_new(&cfg, &s), NOTES_OK);
    fd = connect_local(port);
    assert_true(fd >= 0);
    /* Handshake: M1, read M2, send M3 (and our empty list with it). */
    double t0 = now_ms();
    while (notes_sync_state(s) == NOTES_SYNC_HANDSHAKE && now_ms() - t0 < 5000) {
        const uint8_t *p;
        size_t n;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        assert_int_equal(notes_sync_next_msg(s, &p, &n), NOTES_OK);
        if (n)
            assert_int_equal(write(fd, p, n), (ssize_t)n);
        if (notes_sync_state(s) != NOTES_SYNC_HANDSHAKE)
            break;
        if (poll(&pf, 1, 200) == 1) {
            ssize_t got = read(fd, buf, sizeof(buf));
            assert_true(got > 0);
            assert_int_equal(notes_sync_receive(s, buf, (size_t)got), NOTES_OK);
        }
    }
    assert_int_equal(notes_sync_state(s), NOTES_SYNC_OPEN);
    {
        const uint8_t *p;
        size_t n;
        assert_int_equal(notes_sync_next_msg(s, &p, &n), NOTES_OK);
        if (n)
            assert_int_equal(write(fd, p, n), (ssize_t)n);
    }
    /* Now silence: the server answers, then gives up on us and closes. */
    t0 = now_ms();
    int closed = 0, refused = 0;
    while (!closed && now_ms() - t0 < 8000) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 200) == 1) {
            ssize_t got = read(fd, buf, sizeof(buf));
            if (got <= 0)
                closed = 1;
            else if (!refused &&
                     notes_sync_receive(s, buf, (size_t)got) != NOTES_OK)
                refused = 1; /* the server's ERROR; then its close */
        }
    }
    double waited = now_ms() - t0;
    printf("member silent after the handshake: dropped after %.0f ms (%s)\n",
           waited, notes_sync_session_detail(s));
    assert_true(closed);
    assert_true(refused);
    assert_true(waited > 2000 && waited < 6000);
    /* The server said why, in an authenticated ERROR frame. */
    assert_int_equal(notes_sync_state(s), NOTES_SYNC_FAILED);
    assert_int_equal(notes_sync_session_error(s), NOTES_SYNC_EREFUSED);
    close(fd);
    notes_sync_session_free(s);
    notes_replica_free(rc_);
    notes_identity_free(id);
    kill_child();
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fault_server_killed_mid_stream,
                                  teardown),
        cmocka_unit_test_teardown(test_fault_receiver_killed_first_sync,
                                  teardown),
        cmocka_unit_test_teardown(test_fault_cut_off_then_converge, teardown),
        cmocka_unit_test_teardown(test_fault_silent_after_handshake, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
