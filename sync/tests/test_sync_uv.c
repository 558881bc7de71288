/*
 * test_sync_uv.c: the libuv transport on 127.0.0.1 with an ephemeral port:
 * a server thread and a client in one process, two replicas in temporary
 * folders. Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "notes_sync.h"
#include "sync_fixture.h"
#include "serve_fixture.h"

static char *text_of(const char *home, const uint8_t id[16])
{
    notes_replica *r;
    notes_doc *d;
    const char *t;
    size_t n;
    char *copy = NULL;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    if (notes_doc_open(r, id, &d) == NOTES_OK) {
        t = notes_doc_text(d, &n);
        copy = strndup(t, n);
        notes_doc_free(d);
    }
    notes_replica_free(r);
    return copy;
}

struct server {
    pthread_t th;
    const char *home;
    notes_sync_serve_opts o;
    pthread_mutex_t mu;
    int port;
    int nsessions;
    int last_rc;
    notes_sync_report last;
    volatile int stop;
    int rc;
};

static void on_listen(void *ud, int port)
{
    struct server *s = ud;
    pthread_mutex_lock(&s->mu);
    s->port = port;
    pthread_mutex_unlock(&s->mu);
}

static void on_session(void *ud, int rc, const notes_sync_report *r)
{
    struct server *s = ud;
    pthread_mutex_lock(&s->mu);
    s->nsessions++;
    s->last_rc = rc;
    if (r)
        s->last = *r;
    pthread_mutex_unlock(&s->mu);
}

static void *serve_main(void *arg)
{
    struct server *s = arg;
    s->rc = fixture_serve(s->home, &s->o, &s->stop);
    return NULL;
}

static void server_start(struct server *s, const char *home, unsigned hs_ms,
                         size_t max_out)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->home = home;
    s->o.on_listen = on_listen;
    s->o.on_session = on_session;
    s->o.ud = s;
    s->o.handshake_ms = hs_ms;
    s->o.idle_ms = 5000;
    s->o.max_out = max_out;
    s->port = -1;
    assert_int_equal(pthread_create(&s->th, NULL, serve_main, s), 0);
    for (int i = 0; i < 500; i++) { /* at most 5 s */
        int port;
        pthread_mutex_lock(&s->mu);
        port = s->port;
        pthread_mutex_unlock(&s->mu);
        if (port > 0)
            return;
        usleep(10000);
    }
    fail_msg("the server did not start listening within 5 s");
}

/* Wait (at most 5 s) until the server saw n sessions. */
static void server_wait(struct server *s, int n)
{
    for (int i = 0; i < 500; i++) {
        int k;
        pthread_mutex_lock(&s->mu);
        k = s->nsessions;
        pthread_mutex_unlock(&s->mu);
        if (k >= n)
            return;
        usleep(10000);
    }
    fail_msg("the server did not finish %d sessions within 5 s", n);
}

static void server_stop(struct server *s)
{
    s->stop = 1;
    assert_int_equal(pthread_join(s->th, NULL), 0);
    assert_int_equal(s->rc, NOTES_OK);
    pthread_mutex_destroy(&s->mu);
}

static void test_uv_sync_two_replicas(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), addr[64];
    notes_sync_space sp;
    struct server srv;
    notes_sync_report rep;
    uint8_t n1[16], n2[16], n3[16];
    double t0;
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    make_note(a, "team", "# Weekly\n\nfrom Ana\n", n1);
    make_note(a, "team", "# Retro\n\nalso Ana\n", n2);
    make_note(b, "team", "# Hackathon\n\nfrom Bo\n", n3);

    server_start(&srv, a, 10000, 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    t0 = now_ms();
    int rc = notes_sync_once(b, NULL, "team", addr, &rep);
    if (rc)
        fail_msg("sync_once: %s: %s", notes_sync_errname(rc),
                 notes_sync_last_detail());
    printf("first sync over TCP: sent %llu changes, received %llu, %llu + "
           "%llu bytes, %.1f ms\n", (unsigned long long)rep.changes_sent,
           (unsigned long long)rep.changes_received,
           (unsigned long long)rep.bytes_sent,
           (unsigned long long)rep.bytes_received, now_ms() - t0);
    assert_int_equal(rep.changes_sent, 1);
    assert_int_equal(rep.changes_received, 2);
    assert_string_equal(rep.space, "team");
    server_wait(&srv, 1);
    assert_int_equal(srv.last_rc, NOTES_OK);
    for (int i = 0; i < 3; i++) {
        const uint8_t *id = i == 0 ? n1 : i == 1 ? n2 : n3;
        char *x = text_of(a, id), *y = text_of(b, id);
        assert_non_null(x);
        assert_non_null(y);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    /* Again: nothing new. */
    assert_int_equal(notes_sync_once(b, NULL, "team", addr, &rep), NOTES_OK);
    assert_int_equal(rep.changes_sent + rep.changes_received, 0);
    printf("idle sync over TCP: %llu + %llu bytes\n",
           (unsigned long long)rep.bytes_sent,
           (unsigned long long)rep.bytes_received);
    server_wait(&srv, 2);

    /* A client with another secret is dropped at its first message. */
    {
        char *c = mkreplica("Eve");
        notes_sync_space other = sp;
        other.secret[0] ^= 1;
        assert_int_equal(notes_sync_space_save(c, &other), NOTES_OK);
        rc = notes_sync_once(c, NULL, "team", addr, &rep);
        printf("wrong secret over TCP: %s: %s (received %llu bytes)\n",
               notes_sync_errname(rc), notes_sync_last_detail(),
               (unsigned long long)rep.bytes_received);
        /* Silence before any answer: what a busy server does too. */
        assert_int_equal(rc, NOTES_SYNC_EBUSY);
        assert_int_equal(rep.bytes_received, 0);
        server_wait(&srv, 3);
        assert_int_equal(srv.last_rc, NOTES_SYNC_EHANDSHAKE);
        rmreplica(c);
    }
    server_stop(&srv);
    /* Nobody listens any more. */
    rc = notes_sync_once(b, NULL, "team", addr, &rep);
    assert_int_equal(rc, NOTES_SYNC_ENET);
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

/* A peer that connects and says nothing is dropped at the deadline. */
static void test_uv_handshake_timeout(void **st)
{
    (void)st;
    char *a = mkreplica("Ana");
    struct server srv;
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    char buf[16];
    double t0;
    int fd;
    ssize_t got;
    assert_int_equal(notes_sync_space_create(a, "team", NULL), NOTES_OK);
    server_start(&srv, a, 300, 0);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    t0 = now_ms();
    got = read(fd, buf, sizeof(buf)); /* the server closes: 0 */
    printf("silent peer dropped after %.0f ms\n", now_ms() - t0);
    assert_int_equal(got, 0);
    assert_true(now_ms() - t0 < 3000);
    close(fd);
    server_wait(&srv, 1);
    assert_int_equal(srv.last_rc, NOTES_SYNC_ETIMEOUT);
    server_stop(&srv);
    rmreplica(a);
}

/* A large note through a server whose write queue is held to 64 KiB. */
static void test_uv_large_note_backpressure(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), addr[64];
    notes_sync_space sp;
    struct server srv;
    notes_sync_report rep;
    uint8_t id[16];
    size_t big = 3u << 20;
    char *text = malloc(big + 1);
    uint32_t x = 12345;
    double t0;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245u + 12345u;
        text[i] = (i % 9 == 8) ? '\n' : (char)('a' + (x >> 16) % 26);
    }
    text[big] = '\0';
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    make_note(a, "team", text, id);
    server_start(&srv, a, 10000, 64u << 10);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv.port);
    t0 = now_ms();
    int rc = notes_sync_once(b, NULL, "team", addr, &rep);
    if (rc)
        fail_msg("sync_once: %s: %s", notes_sync_errname(rc),
                 notes_sync_last_detail());
    printf("first sync of a %zu-byte note over TCP (server queue 64 KiB): "
           "%llu bytes received in %.0f ms\n", big,
           (unsigned long long)rep.bytes_received, now_ms() - t0);
    char *y = text_of(b, id);
    assert_non_null(y);
    assert_string_equal(y, text);
    free(y);
    free(text);
    server_wait(&srv, 1);
    server_stop(&srv);
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uv_sync_two_replicas),
        cmocka_unit_test(test_uv_handshake_timeout),
        cmocka_unit_test(test_uv_large_note_backpressure),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
