/*
 * test_relay.c: the blind relay (docs/protocol.md, "Relay") on 127.0.0.1
 * with an ephemeral port, its loop in a thread, and members played by raw
 * TCP sockets in the test's thread. Every wait is bounded (poll with a
 * deadline); the relay's counters are read from a snapshot its own loop
 * takes every few milliseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "notes_sync.h"
#include "relay_wire.h"

#define WAIT_MS 5000 /* the bound on anything that should happen at once */

/* ---- the relay in a thread ---- */

struct relay_th {
    pthread_t th;
    notes_sync_relay_opts o;
    uv_loop_t loop;
    uv_async_t stop;
    uv_timer_t snap;
    notes_sync_relay *r;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int port;      /* 0 until listening, -1 if the start failed */
    notes_sync_relay_stats st;
    int stopped;
    unsigned nlog;      /* lines on_log said */
    char last_log[256]; /* and the last of them */
};

static struct relay_th *g;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_listen(void *ud, int port)
{
    struct relay_th *t = ud;
    pthread_mutex_lock(&t->mu);
    t->port = port;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void on_log(void *ud, const char *line)
{
    struct relay_th *t = ud;
    pthread_mutex_lock(&t->mu);
    t->nlog++;
    snprintf(t->last_log, sizeof(t->last_log), "%s", line);
    pthread_mutex_unlock(&t->mu);
}

static void on_snap(uv_timer_t *tm)
{
    struct relay_th *t = tm->data;
    pthread_mutex_lock(&t->mu);
    notes_sync_relay_stats_get(t->r, &t->st);
    pthread_mutex_unlock(&t->mu);
}

static void on_done(void *arg)
{
    struct relay_th *t = arg;
    t->stopped = 1;
}

static void on_stop(uv_async_t *a)
{
    struct relay_th *t = a->data;
    notes_sync_relay_stop(t->r, on_done, t);
    uv_close((uv_handle_t *)&t->stop, NULL);
    uv_close((uv_handle_t *)&t->snap, NULL);
}

static void *relay_main(void *arg)
{
    struct relay_th *t = arg;
    int rc = notes_sync_relay_start(&t->loop, &t->o, &t->r);
    if (rc) {
        uv_close((uv_handle_t *)&t->stop, NULL);
        uv_close((uv_handle_t *)&t->snap, NULL);
        (void)uv_run(&t->loop, UV_RUN_DEFAULT);
        pthread_mutex_lock(&t->mu);
        t->port = -1;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        return NULL;
    }
    uv_timer_start(&t->snap, on_snap, 0, 5);
    (void)uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void relay_up(const notes_sync_relay_opts *o)
{
    struct relay_th *t = calloc(1, sizeof(*t));
    struct timespec dl;
    assert_non_null(t);
    if (o)
        t->o = *o;
    t->o.listen = "127.0.0.1:0";
    t->o.on_listen = on_listen;
    t->o.on_log = on_log;
    t->o.ud = t;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(uv_async_init(&t->loop, &t->stop, on_stop), 0);
    assert_int_equal(uv_timer_init(&t->loop, &t->snap), 0);
    t->stop.data = t->snap.data = t;
    assert_int_equal(pthread_create(&t->th, NULL, relay_main, t), 0);
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&t->mu);
    while (t->port == 0)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl))
            break;
    pthread_mutex_unlock(&t->mu);
    assert_true(t->port > 0);
    g = t;
}

static void relay_down(void)
{
    struct relay_th *t = g;
    uv_async_send(&t->stop);
    assert_int_equal(pthread_join(t->th, NULL), 0);
    assert_true(t->stopped);
    notes_sync_relay_free(t->r);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    g = NULL;
}

static notes_sync_relay_stats stats(void)
{
    notes_sync_relay_stats s;
    pthread_mutex_lock(&g->mu);
    s = g->st;
    pthread_mutex_unlock(&g->mu);
    return s;
}

/* Wait (bounded) until the relay's counter at offset `field` is `want`. */
#define WAIT_STAT(field, want)                                                \
    do {                                                                      \
        uint64_t dl_ = now_ms() + WAIT_MS;                                    \
        while ((uint64_t)stats().field != (uint64_t)(want) && now_ms() < dl_) \
            (void)poll(NULL, 0, 2);                                           \
        assert_int_equal(stats().field, (want));                              \
    } while (0)

/* Wait (bounded) until cond holds. */
#define WAIT_TRUE(cond)                                                       \
    do {                                                                      \
        uint64_t dl_ = now_ms() + WAIT_MS;                                    \
        while (!(cond) && now_ms() < dl_)                                     \
            (void)poll(NULL, 0, 2);                                           \
        assert_true(cond);                                                    \
    } while (0)

/* ---- members: raw sockets ---- */

/* A receive buffer for the next dials (0: the kernel's): small, the relay
 * has to hold what the member has not read yet. */
static int g_rcvbuf;

static int dial(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (g_rcvbuf)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &g_rcvbuf,
                                    sizeof(g_rcvbuf)), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t n = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &n), 0);
    return ntohs(sa.sin_port);
}

static void send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        b += k;
        n -= (size_t)k;
    }
}

static void put(int fd, uint8_t type, const void *p, size_t n)
{
    uint8_t m[RELAY_MSG_MAX];
    send_all(fd, m, sync_relay_msg(m, type, p, n));
}

/* Read exactly n bytes within ms: n, or fewer at the end of the stream or
 * the deadline. */
static size_t get_n(int fd, void *p, size_t n, int ms)
{
    uint8_t *b = p;
    size_t got = 0;
    uint64_t dl = now_ms() + (uint64_t)ms;
    while (got < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        uint64_t now = now_ms();
        ssize_t k;
        if (now >= dl || poll(&pf, 1, (int)(dl - now)) <= 0)
            break;
        k = recv(fd, b + got, n - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* The next message: its type (-1 if none came or the stream ended). */
static int get_msg(int fd, uint8_t *payload, size_t *len)
{
    uint8_t h[2];
    if (get_n(fd, h, 2, WAIT_MS) != 2)
        return -1;
    if (get_n(fd, payload, h[1], WAIT_MS) != h[1])
        return -1;
    *len = h[1];
    return h[0];
}

static void expect_msg(int fd, uint8_t type, uint8_t *payload, size_t len)
{
    uint8_t p[255];
    size_t n = 0;
    int t = get_msg(fd, p, &n);
    assert_int_equal(t, type);
    assert_int_equal(n, len);
    if (payload)
        memcpy(payload, p, n);
}

/* The stream ends (within the bound), with nothing more before. */
static void expect_eof(int fd)
{
    uint8_t b;
    struct pollfd pf = {fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
    assert_int_equal(recv(fd, &b, 1, 0), 0);
}

/* REFUSED (its reason contains `why`), then the close. */
static void expect_refused(int fd, const char *why)
{
    uint8_t p[256];
    size_t n = 0;
    assert_int_equal(get_msg(fd, p, &n), RELAY_REFUSED);
    p[n] = 0;
    if (why && !strstr((char *)p, why))
        fail_msg("refused '%s', expected '%s'", (char *)p, why);
    expect_eof(fd);
}

static void addr_port(const uint8_t a[RELAY_ADDR_LEN], int port)
{
    assert_int_equal(a[0], 4);
    assert_int_equal(a[1], 127);
    assert_int_equal(a[17] | a[18] << 8, port);
}

static uint8_t T1[RELAY_TAG_LEN], T2[RELAY_TAG_LEN];

struct member {
    int ctl;
    uint8_t id[RELAY_ID_LEN];
};

/* REGISTER under tag with id byte i, expect WELCOME (our own address). */
static struct member join(const uint8_t *tag, uint8_t i)
{
    struct member m;
    uint8_t p[RELAY_TAG_LEN + RELAY_ID_LEN], a[RELAY_ADDR_LEN];
    memset(m.id, i, sizeof(m.id));
    m.ctl = dial();
    memcpy(p, tag, RELAY_TAG_LEN);
    memcpy(p + RELAY_TAG_LEN, m.id, RELAY_ID_LEN);
    put(m.ctl, RELAY_REGISTER, p, sizeof(p));
    expect_msg(m.ctl, RELAY_WELCOME, a, RELAY_ADDR_LEN);
    addr_port(a, local_port(m.ctl));
    return m;
}

static void expect_present(struct member *m, const struct member *other)
{
    uint8_t p[RELAY_ID_LEN + RELAY_ADDR_LEN];
    expect_msg(m->ctl, RELAY_PRESENT, p, sizeof(p));
    assert_memory_equal(p, other->id, RELAY_ID_LEN);
    addr_port(p + RELAY_ID_LEN, local_port(other->ctl));
}

/* PRESENT for x and y, in either order (the spec gives none). */
static void expect_present2(struct member *m, const struct member *x,
                            const struct member *y)
{
    uint8_t p[2][RELAY_ID_LEN + RELAY_ADDR_LEN];
    expect_msg(m->ctl, RELAY_PRESENT, p[0], sizeof(p[0]));
    expect_msg(m->ctl, RELAY_PRESENT, p[1], sizeof(p[1]));
    if (memcmp(p[0], x->id, RELAY_ID_LEN) != 0) {
        uint8_t t[sizeof(p[0])];
        memcpy(t, p[0], sizeof(t));
        memcpy(p[0], p[1], sizeof(t));
        memcpy(p[1], t, sizeof(t));
    }
    assert_memory_equal(p[0], x->id, RELAY_ID_LEN);
    addr_port(p[0] + RELAY_ID_LEN, local_port(x->ctl));
    assert_memory_equal(p[1], y->id, RELAY_ID_LEN);
    addr_port(p[1] + RELAY_ID_LEN, local_port(y->ctl));
}

static void ping_pong(int fd)
{
    put(fd, RELAY_PING, NULL, 0);
    expect_msg(fd, RELAY_PONG, NULL, 0);
}

/* a's data connection CONNECTs to b; b's control hears INCOMING. OUT the
 * token. */
static int connect_to(const uint8_t *tag, const struct member *a,
                      const struct member *b, uint8_t token[16])
{
    uint8_t p[RELAY_TAG_LEN + 2 * RELAY_ID_LEN], in[32];
    int fd = dial();
    memcpy(p, tag, RELAY_TAG_LEN);
    memcpy(p + RELAY_TAG_LEN, a->id, RELAY_ID_LEN);
    memcpy(p + RELAY_TAG_LEN + RELAY_ID_LEN, b->id, RELAY_ID_LEN);
    put(fd, RELAY_CONNECT, p, sizeof(p));
    if (token) {
        expect_msg(b->ctl, RELAY_INCOMING, in, sizeof(in));
        assert_memory_equal(in + 16, a->id, RELAY_ID_LEN);
        memcpy(token, in, 16);
    }
    return fd;
}

/* A pairing of a (CONNECT side) and b: OUT the two data connections. */
static void pair_up(struct member *a, struct member *b, int *da, int *db)
{
    uint8_t token[16], pa[RELAY_ADDR_LEN], pb[RELAY_ADDR_LEN];
    *da = connect_to(T1, a, b, token);
    *db = dial();
    put(*db, RELAY_ACCEPT, token, 16);
    expect_msg(*da, RELAY_PAIRED, pa, sizeof(pa));
    expect_msg(*db, RELAY_PAIRED, pb, sizeof(pb));
    /* Each is told the other's data connection, as the relay sees it. */
    addr_port(pa, local_port(*db));
    addr_port(pb, local_port(*da));
}

static int setup_default(void **state)
{
    (void)state;
    memset(T1, 0x11, sizeof(T1));
    memset(T2, 0x22, sizeof(T2));
    g_rcvbuf = 0;
    relay_up(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    relay_down();
    return 0;
}

/* ---- tests ---- */

static void test_meet_and_exchange(void **state)
{
    struct member a, b;
    int da, db;
    const char *hi = "M1 from the initiator", *back = "M2 from the responder";
    char buf[64];
    (void)state;
    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a); /* b learns of a, a hears of b */
    expect_present(&a, &b);
    WAIT_STAT(members, 2);
    pair_up(&a, &b, &da, &db);
    WAIT_STAT(pairings, 1);
    send_all(da, hi, strlen(hi));
    assert_int_equal(get_n(db, buf, strlen(hi), WAIT_MS), strlen(hi));
    assert_memory_equal(buf, hi, strlen(hi));
    send_all(db, back, strlen(back));
    assert_int_equal(get_n(da, buf, strlen(back), WAIT_MS), strlen(back));
    assert_memory_equal(buf, back, strlen(back));
    /* One side's end is the other's, after what it had sent. */
    send_all(da, "last", 4);
    close(da);
    assert_int_equal(get_n(db, buf, 4, WAIT_MS), 4);
    assert_memory_equal(buf, "last", 4);
    expect_eof(db);
    close(db);
    WAIT_STAT(pairings, 0);
    /* The members are still there; a leaves, b hears GONE. */
    ping_pong(a.ctl);
    ping_pong(b.ctl);
    close(a.ctl);
    {
        uint8_t id[RELAY_ID_LEN];
        expect_msg(b.ctl, RELAY_GONE, id, sizeof(id));
        assert_memory_equal(id, a.id, RELAY_ID_LEN);
    }
    WAIT_STAT(members, 1);
    close(b.ctl);
    WAIT_STAT(conns, 0);
    assert_int_equal(stats().paired, 1);
    assert_int_equal(stats().forwarded, strlen(hi) + strlen(back) + 4);
}

/* Both directions at once, 1 MiB each, through the 64 KiB queues: every
 * byte arrives, in order (the relay stops reading a sender meanwhile). */
static void test_one_mib_both_ways(void **state)
{
    enum { N = 1 << 20 };
    struct member a, b;
    int da, db, fds[2];
    uint8_t *out[2], *in[2];
    size_t sent[2] = {0, 0}, got[2] = {0, 0};
    uint64_t dl = now_ms() + 20000;
    (void)state;
    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a);
    expect_present(&a, &b);
    pair_up(&a, &b, &da, &db);
    fds[0] = da;
    fds[1] = db;
    for (int s = 0; s < 2; s++) {
        out[s] = malloc(N);
        in[s] = malloc(N);
        assert_non_null(out[s]);
        assert_non_null(in[s]);
        for (size_t i = 0; i < N; i++)
            out[s][i] = (uint8_t)(i * 7 + (size_t)s * 13 + i / 251);
        assert_int_equal(fcntl(fds[s], F_SETFL, O_NONBLOCK), 0);
    }
    while ((got[0] < N || got[1] < N) && now_ms() < dl) {
        struct pollfd pf[2];
        for (int s = 0; s < 2; s++) {
            pf[s].fd = fds[s];
            pf[s].events = (short)(POLLIN | (sent[s] < N ? POLLOUT : 0));
            pf[s].revents = 0;
        }
        if (poll(pf, 2, 100) <= 0)
            continue;
        for (int s = 0; s < 2; s++) {
            ssize_t k;
            if ((pf[s].revents & POLLOUT) && sent[s] < N &&
                (k = send(fds[s], out[s] + sent[s], N - sent[s], MSG_NOSIGNAL)) > 0)
                sent[s] += (size_t)k;
            /* s reads what the other side sent. */
            if ((pf[s].revents & POLLIN) && got[1 - s] < N &&
                (k = recv(fds[s], in[1 - s] + got[1 - s], N - got[1 - s], 0)) > 0)
                got[1 - s] += (size_t)k;
        }
    }
    assert_int_equal(got[0], N);
    assert_int_equal(got[1], N);
    assert_memory_equal(in[0], out[0], N);
    assert_memory_equal(in[1], out[1], N);
    for (int s = 0; s < 2; s++) {
        free(out[s]);
        free(in[s]);
    }
    WAIT_TRUE(stats().forwarded == 2u * N);
    close(da);
    close(db);
    close(a.ctl);
    close(b.ctl);
    WAIT_STAT(conns, 0);
}

/* A side that sends all it can and closes at once: the other, reading
 * slowly, gets every byte, then the end (the relay writes what it holds
 * before it closes). */
static void test_close_after_burst(void **state)
{
    struct member a, b;
    int da, db;
    static uint8_t buf[64 << 10];
    size_t sent = 0, got = 0, bad = 0;
    uint64_t dl = now_ms() + 20000;
    (void)state;
    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a);
    expect_present(&a, &b);
    g_rcvbuf = 4096;
    pair_up(&a, &b, &da, &db);
    g_rcvbuf = 0;
    /* b reads nothing: a fills its buffers, the relay's (its queue to b
     * to max_queue) and b's; then a closes. */
    assert_int_equal(fcntl(da, F_SETFL, O_NONBLOCK), 0);
    for (;;) {
        struct pollfd pf = {da, POLLOUT, 0};
        ssize_t k;
        if (poll(&pf, 1, 300) <= 0)
            break; /* nothing moves any more: everything is full */
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)((sent + i) % 253);
        if ((k = send(da, buf, sizeof(buf), MSG_NOSIGNAL)) > 0)
            sent += (size_t)k;
        assert_true(now_ms() < dl);
    }
    assert_true(sent > (64u << 10));
    close(da);
    /* b now reads 4 KiB a millisecond (a pace, not a wait), so the relay
     * still holds a queue when it reads a's end. */
    for (;;) {
        struct pollfd pf = {db, POLLIN, 0};
        ssize_t k;
        assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
        k = recv(db, buf, 4096, 0);
        assert_true(k >= 0);
        if (k == 0)
            break;
        for (ssize_t i = 0; i < k; i++)
            bad += buf[i] != (uint8_t)((got + (size_t)i) % 253);
        got += (size_t)k;
        (void)poll(NULL, 0, 1);
        assert_true(now_ms() < dl);
    }
    assert_int_equal(got, sent);
    assert_int_equal(bad, 0);
    close(db);
    WAIT_STAT(pairings, 0);
    /* A CONNECT whose target leaves before it ACCEPTs is refused then. */
    {
        uint8_t token[16];
        int fd = connect_to(T1, &a, &b, token);
        close(b.ctl);
        expect_refused(fd, "left");
        close(fd);
        expect_msg(a.ctl, RELAY_GONE, NULL, RELAY_ID_LEN);
    }
    close(a.ctl);
    WAIT_STAT(conns, 0);
}

/* A member that does not read: the relay stops reading its peer once
 * max_queue waits (rate limit off here), so the sender stalls after what
 * the kernels' buffers and the queue hold, and nothing is lost. */
static void test_backpressure(void **state)
{
    notes_sync_relay_opts o = {0};
    struct member a, b;
    int da, db;
    static uint8_t buf[64 << 10];
    size_t sent = 0, got = 0, bad = 0;
    uint64_t dl;
    (void)state;
    relay_down();
    o.rate = (size_t)1 << 40;
    o.burst = (size_t)1 << 40;
    relay_up(&o);
    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a);
    expect_present(&a, &b);
    pair_up(&a, &b, &da, &db);
    assert_int_equal(fcntl(da, F_SETFL, O_NONBLOCK), 0);
    dl = now_ms() + 20000;
    for (;;) {
        struct pollfd pf = {da, POLLOUT, 0};
        ssize_t k;
        if (poll(&pf, 1, 300) <= 0)
            break; /* stalled */
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)((sent + i) % 251);
        if ((k = send(da, buf, sizeof(buf), MSG_NOSIGNAL)) > 0)
            sent += (size_t)k;
        /* Without backpressure the relay reads on and this never stalls
         * (loopback buffers hold a few MiB at most). */
        if (sent > (64u << 20) || now_ms() > dl)
            fail_msg("%zu bytes sent and no stall", sent);
    }
    /* Still stalled: the relay holds its queue, reads no more. */
    {
        struct pollfd pf = {da, POLLOUT, 0};
        assert_int_equal(poll(&pf, 1, 200), 0);
    }
    while (got < sent) {
        ssize_t k = (ssize_t)get_n(db, buf, sent - got < sizeof(buf) ? sent - got : sizeof(buf), WAIT_MS);
        assert_true(k > 0);
        for (ssize_t i = 0; i < k; i++)
            bad += buf[i] != (uint8_t)((got + (size_t)i) % 251);
        got += (size_t)k;
    }
    assert_int_equal(bad, 0);
    close(da);
    expect_eof(db);
    close(db);
    close(a.ctl);
    close(b.ctl);
    WAIT_STAT(conns, 0);
}

/* Each refusal: REFUSED and close, and the relay goes on serving a member
 * registered before. */
static void test_refusals(void **state)
{
    struct member a, b;
    uint8_t p[64], token[16];
    int fd, db;
    uint64_t refused;
    (void)state;
    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a);
    expect_present(&a, &b);
    refused = stats().refused;

    fd = dial(); /* an unknown type */
    put(fd, 0x7f, NULL, 0);
    expect_refused(fd, "unknown");
    close(fd);

    fd = dial(); /* a REGISTER one byte short */
    memset(p, 3, sizeof(p));
    put(fd, RELAY_REGISTER, p, RELAY_TAG_LEN + RELAY_ID_LEN - 1);
    expect_refused(fd, "length");
    close(fd);

    fd = dial(); /* a PING before saying what it is */
    put(fd, RELAY_PING, NULL, 0);
    expect_refused(fd, "unexpected");
    close(fd);

    /* A second REGISTER on a control connection: it leaves (b hears). */
    {
        struct member c = join(T1, 3);
        expect_present2(&c, &a, &b);
        expect_present(&a, &c);
        expect_present(&b, &c);
        memcpy(p, T1, RELAY_TAG_LEN);
        memset(p + RELAY_TAG_LEN, 4, RELAY_ID_LEN);
        put(c.ctl, RELAY_REGISTER, p, RELAY_TAG_LEN + RELAY_ID_LEN);
        expect_refused(c.ctl, "unexpected");
        expect_msg(a.ctl, RELAY_GONE, NULL, RELAY_ID_LEN);
        expect_msg(b.ctl, RELAY_GONE, NULL, RELAY_ID_LEN);
        close(c.ctl);
    }

    { /* An id already registered under the tag. */
        struct member twin;
        twin.ctl = dial();
        memcpy(p, T1, RELAY_TAG_LEN);
        memcpy(p + RELAY_TAG_LEN, a.id, RELAY_ID_LEN);
        put(twin.ctl, RELAY_REGISTER, p, RELAY_TAG_LEN + RELAY_ID_LEN);
        expect_refused(twin.ctl, "id");
        close(twin.ctl);
    }

    { /* CONNECT to an id not present (and to one of another tag). */
        struct member ghost;
        memset(ghost.id, 9, sizeof(ghost.id));
        fd = connect_to(T1, &a, &ghost, NULL);
        expect_refused(fd, "no such member");
        close(fd);
        fd = connect_to(T2, &a, &b, NULL);
        expect_refused(fd, "no such member");
        close(fd);
    }

    fd = dial(); /* ACCEPT with a token never given */
    memset(token, 5, sizeof(token));
    put(fd, RELAY_ACCEPT, token, 16);
    expect_refused(fd, "token");
    close(fd);

    { /* A token serves once. */
        int da = connect_to(T1, &a, &b, token);
        int again;
        db = dial();
        put(db, RELAY_ACCEPT, token, 16);
        expect_msg(da, RELAY_PAIRED, NULL, RELAY_ADDR_LEN);
        expect_msg(db, RELAY_PAIRED, NULL, RELAY_ADDR_LEN);
        again = dial();
        put(again, RELAY_ACCEPT, token, 16);
        expect_refused(again, "token");
        close(again);
        close(da);
        expect_eof(db);
        close(db);
    }

    /* Data before PAIRED: after CONNECT in the same write, after it in
     * another, and after ACCEPT in the same write. */
    {
        uint8_t m[2 * RELAY_MSG_MAX];
        size_t n;
        fd = dial();
        memcpy(p, T1, RELAY_TAG_LEN);
        memcpy(p + RELAY_TAG_LEN, a.id, RELAY_ID_LEN);
        memcpy(p + RELAY_TAG_LEN + RELAY_ID_LEN, b.id, RELAY_ID_LEN);
        n = sync_relay_msg(m, RELAY_CONNECT, p, 64);
        memcpy(m + n, "M1", 2);
        send_all(fd, m, n + 2);
        expect_refused(fd, "before PAIRED");
        close(fd);

        fd = connect_to(T1, &a, &b, token);
        send_all(fd, "early", 5);
        expect_refused(fd, "before PAIRED");
        close(fd);

        fd = connect_to(T1, &a, &b, token);
        db = dial();
        n = sync_relay_msg(m, RELAY_ACCEPT, token, 16);
        memcpy(m + n, "M2", 2);
        send_all(db, m, n + 2);
        expect_refused(db, "before PAIRED");
        close(db);
        close(fd);
    }

    WAIT_STAT(waiting, 0);
    WAIT_STAT(pairings, 0);
    WAIT_TRUE(stats().refused == refused + 12);
    /* The members registered before are served still. */
    ping_pong(a.ctl);
    ping_pong(b.ctl);
    WAIT_STAT(members, 2);
    close(a.ctl);
    close(b.ctl);
    WAIT_STAT(conns, 0);
}

static void test_timeouts(void **state)
{
    notes_sync_relay_opts o = {0};
    struct member a, b;
    int fd;
    uint8_t token[16];
    uint64_t t0;
    (void)state;
    relay_down();
    o.hello_ms = 200;
    o.connect_ms = 300;
    o.control_idle_ms = 1000;
    relay_up(&o);

    fd = dial(); /* says nothing */
    t0 = now_ms();
    expect_refused(fd, "timeout");
    assert_true(now_ms() - t0 >= 150);
    close(fd);

    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a);
    expect_present(&a, &b);
    fd = connect_to(T1, &a, &b, token); /* the ACCEPT never comes */
    WAIT_STAT(waiting, 1);
    expect_refused(fd, "no ACCEPT");
    close(fd);
    WAIT_STAT(waiting, 0);
    /* A late ACCEPT finds no token. */
    fd = dial();
    put(fd, RELAY_ACCEPT, token, 16);
    expect_refused(fd, "token");
    close(fd);

    /* b keeps pinging, a falls silent: a is closed, b hears GONE, and
     * b, which pinged all along, is served still. */
    {
        int gone = 0;
        uint8_t pl[255];
        size_t n;
        t0 = now_ms();
        while (!gone && now_ms() - t0 < 3000) {
            int ty;
            put(b.ctl, RELAY_PING, NULL, 0);
            while ((ty = get_msg(b.ctl, pl, &n)) == RELAY_GONE) {
                assert_memory_equal(pl, a.id, RELAY_ID_LEN);
                gone = 1;
            }
            assert_int_equal(ty, RELAY_PONG);
            (void)poll(NULL, 0, 100); /* the pace of pings, not a wait */
        }
        assert_true(gone);
        assert_true(now_ms() - t0 >= 800);
        expect_refused(a.ctl, "silent");
        ping_pong(b.ctl);
    }
    close(a.ctl);
    close(b.ctl);
    WAIT_STAT(conns, 0);
}

static void test_limits(void **state)
{
    notes_sync_relay_opts o = {0};
    struct member m[3];
    int fds[8];
    uint8_t p[RELAY_TAG_LEN + RELAY_ID_LEN];
    (void)state;
    relay_down();
    o.max_per_addr = 3;
    o.max_per_tag = 2;
    relay_up(&o);

    /* Per tag: the third member of T1 is turned away, T2 is not full. */
    m[0] = join(T1, 1);
    m[1] = join(T1, 2);
    expect_present(&m[1], &m[0]);
    expect_present(&m[0], &m[1]);
    fds[0] = dial();
    memcpy(p, T1, RELAY_TAG_LEN);
    memset(p + RELAY_TAG_LEN, 3, RELAY_ID_LEN);
    put(fds[0], RELAY_REGISTER, p, sizeof(p));
    expect_refused(fds[0], "tag full");
    close(fds[0]);
    m[2] = join(T2, 3);
    /* Per address: three held from 127.0.0.1, a fourth is refused. */
    fds[0] = dial();
    expect_refused(fds[0], "too many");
    close(fds[0]);
    /* ...and once one leaves, there is room again. */
    close(m[2].ctl);
    WAIT_STAT(conns, 2);
    m[2] = join(T2, 3);
    close(m[2].ctl);
    close(m[0].ctl);
    close(m[1].ctl);
    WAIT_STAT(conns, 0);

    relay_down();
    memset(&o, 0, sizeof(o));
    o.max_conns = 4;
    relay_up(&o);
    for (int i = 0; i < 4; i++)
        fds[i] = dial();
    WAIT_STAT(conns, 4);
    fds[4] = dial();
    expect_refused(fds[4], "full");
    close(fds[4]);
    close(fds[0]);
    WAIT_STAT(conns, 3);
    m[0] = join(T1, 1); /* room again: served */
    ping_pong(m[0].ctl);
    close(m[0].ctl);
    for (int i = 1; i < 4; i++)
        close(fds[i]);
    WAIT_STAT(conns, 0);
}

/* The token bucket: after the burst, a pairing carries `rate` bytes a
 * second per direction (checked loosely: an upper bound, and progress). */
static void test_rate_limit(void **state)
{
    enum { RATE = 256 << 10, BURST = 64 << 10, QUEUE = 16 << 10 };
    notes_sync_relay_opts o = {0};
    struct member a, b;
    int da, db;
    static uint8_t buf[64 << 10];
    size_t got = 0;
    uint64_t t0, el;
    (void)state;
    relay_down();
    o.rate = RATE;
    o.burst = BURST;
    o.max_queue = QUEUE;
    relay_up(&o);
    a = join(T1, 1);
    b = join(T1, 2);
    expect_present(&b, &a);
    expect_present(&a, &b);
    pair_up(&a, &b, &da, &db);
    assert_int_equal(fcntl(da, F_SETFL, O_NONBLOCK), 0);
    memset(buf, 0x5a, sizeof(buf));
    t0 = now_ms();
    while ((el = now_ms() - t0) < 1000) {
        struct pollfd pf[2] = {{da, POLLOUT, 0}, {db, POLLIN, 0}};
        ssize_t k;
        if (poll(pf, 2, 50) <= 0)
            continue;
        if (pf[0].revents & POLLOUT)
            (void)send(da, buf, sizeof(buf), MSG_NOSIGNAL);
        if ((pf[1].revents & POLLIN) && (k = recv(db, buf, sizeof(buf), 0)) > 0)
            got += (size_t)k;
    }
    el = now_ms() - t0;
    /* The bound: the burst, the rate over the time, one read's slack. */
    if (got > BURST + (size_t)RATE * el / 1000 + QUEUE)
        fail_msg("%zu bytes in %llu ms through a %d B/s relay", got,
                 (unsigned long long)el, RATE);
    /* Progress: at least half the rate got through after the burst. */
    assert_true(got >= (size_t)RATE / 2);
    close(da);
    close(db);
    close(a.ctl);
    close(b.ctl);
    WAIT_STAT(conns, 0);
}

/* A tag of 500 (the limit raised): the last to register is told of all
 * 499 others at once, more than a control connection may leave unread
 * (16 KiB), yet nothing is dropped: the kernel took it. */
static void test_big_tag(void **state)
{
    enum { N = 500 };
    notes_sync_relay_opts o = {0};
    struct rlimit rl;
    int fds[N];
    uint8_t p[RELAY_TAG_LEN + RELAY_ID_LEN], pl[255];
    size_t n;
    unsigned presents = 0;
    (void)state;
    /* Both ends of each connection live in this process. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * N + 64) {
        rl.rlim_cur = rl.rlim_max;
        if (rl.rlim_cur < 2 * N + 64 || setrlimit(RLIMIT_NOFILE, &rl) < 0)
            skip();
    }
    relay_down();
    o.max_per_tag = N;
    o.max_per_addr = N + 8;
    relay_up(&o);
    memcpy(p, T1, RELAY_TAG_LEN);
    for (int i = 0; i < N; i++) {
        memset(p + RELAY_TAG_LEN, 0, RELAY_ID_LEN);
        memcpy(p + RELAY_TAG_LEN, &i, sizeof(i));
        fds[i] = dial();
        put(fds[i], RELAY_REGISTER, p, sizeof(p));
        if (i < N - 1)
            expect_msg(fds[i], RELAY_WELCOME, NULL, RELAY_ADDR_LEN);
    }
    expect_msg(fds[N - 1], RELAY_WELCOME, NULL, RELAY_ADDR_LEN);
    while (presents < N - 1 && get_msg(fds[N - 1], pl, &n) == RELAY_PRESENT)
        presents++;
    assert_int_equal(presents, N - 1);
    WAIT_STAT(members, N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    WAIT_STAT(conns, 0);
}

/* Refusals are said at most 20 times a second; the next line counts the
 * ones left out. */
static void test_log_limited(void **state)
{
    unsigned before, lines;
    char last[256];
    uint64_t t0;
    int fd;
    (void)state;
    pthread_mutex_lock(&g->mu);
    before = g->nlog;
    pthread_mutex_unlock(&g->mu);
    t0 = now_ms();
    for (int i = 0; i < 40; i++) {
        fd = dial();
        put(fd, 0x7f, NULL, 0);
        expect_refused(fd, "unknown");
        close(fd);
    }
    WAIT_STAT(refused, 40);
    pthread_mutex_lock(&g->mu);
    lines = g->nlog - before;
    pthread_mutex_unlock(&g->mu);
    if (now_ms() - t0 < 1000)
        assert_int_equal(lines, 20);
    else
        assert_true(lines < 40); /* a slow machine: two windows */
    while (now_ms() - t0 < 1100)
        (void)poll(NULL, 0, 20); /* into the next second */
    fd = dial();
    put(fd, 0x7f, NULL, 0);
    expect_refused(fd, "unknown");
    close(fd);
    WAIT_STAT(refused, 41);
    pthread_mutex_lock(&g->mu);
    snprintf(last, sizeof(last), "%s", g->last_log);
    pthread_mutex_unlock(&g->mu);
    if (!strstr(last, "more not shown"))
        fail_msg("last line: %s", last);
}

/* A port in use: NOTES_SYNC_ENET, nothing left on the loop. */
static void test_bind_fails(void **state)
{
    uv_loop_t loop;
    notes_sync_relay *r = (notes_sync_relay *)1;
    notes_sync_relay_opts o = {0};
    char addr[32];
    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", g->port);
    o.listen = addr;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(notes_sync_relay_start(&loop, &o, &r), NOTES_SYNC_ENET);
    assert_null(r);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    o.listen = "not an address";
    assert_int_equal(notes_sync_relay_start(&loop, &o, &r), NOTES_EINVAL);
}

int main(void)
{
    /* libuv writes without MSG_NOSIGNAL: a member closed while the relay
     * writes to it (the tests do that) must not end the process. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_meet_and_exchange, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_one_mib_both_ways, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_burst, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_big_tag, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_log_limited, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_bind_fails, setup_default, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
