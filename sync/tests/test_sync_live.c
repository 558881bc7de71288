/*
 * test_sync_live.c: live serve on 127.0.0.1 (ephemeral ports), each
 * server a child process: B dials A and keeps the session open; commits on either
 * side reach the other at once (the log watch starts a round); C dials B
 * and gets A's edits relayed; A is SIGKILLed and comes back on its port,
 * B redials and all converge. Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "notes_sync.h"
#include "sync_fixture.h"
#include "serve_fixture.h"
#include "child_fixture.h"

/* Text of the note (malloc'd), "" if absent, and its number of changes. */
static char *text_of(const char *home, const uint8_t id[16], size_t *nch)
{
    notes_replica *r;
    notes_doc *d;
    *nch = 0;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    if (notes_doc_open(r, id, &d) == NOTES_OK) {
        *nch = notes_doc_change_count(d);
        notes_doc_free(d);
    }
    notes_replica_free(r);
    return fixture_text(home, id);
}

static int wait_for(const char *home, const uint8_t id[16], const char *want,
                    double ms)
{
    return fixture_wait_text(home, id, want, ms);
}

static long log_size(const char *home, const uint8_t id[16])
{
    char path[4200], hex[33];
    struct stat st;
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(path, sizeof(path), "%s/notes/%s.log", home, hex);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A live server for `home` (each a child process: child_fixture.h), on
 * `port` (0: any), dialing `peer` if given. */
struct server_arg {
    const char *home;
    int port, peer;
};

static int run_server(void *arg)
{
    const struct server_arg *sa = arg;
    notes_sync_serve_opts o;
    char listen[64], addr[64];
    const char *peers[1] = {addr};
    memset(&o, 0, sizeof(o));
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", sa->port);
    o.listen = listen;
    o.on_listen = fixture_on_listen;
    o.live = 1;
    o.idle_ms = 5000;
    o.retry_ms = 100;
    if (sa->peer) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", sa->peer);
        o.peers = peers;
        o.npeers = 1;
    }
    return fixture_serve(sa->home, &o, &fixture_stop) ? 1 : 0;
}

#define server fixture_child

static void server_start(struct server *s, const char *home, int port,
                         int peer)
{
    struct server_arg sa = {home, port, peer};
    fixture_child_start(s, run_server, &sa);
}

static struct server *g_servers[3];

static int teardown(void **st)
{
    (void)st;
    for (int i = 0; i < 3; i++)
        if (g_servers[i])
            fixture_child_kill(g_servers[i]);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Commit on `from`, time until `to`'s log grows (the change stored). */
static double one_edit(const char *from, const char *to, const uint8_t id[16],
                       const char *text)
{
    long before = log_size(to, id);
    double t0 = now_ms();
    append(from, id, text);
    while (log_size(to, id) == before) {
        if (now_ms() - t0 > 5000)
            fail_msg("'%s' did not arrive within 5 s", text);
        usleep(200);
    }
    return now_ms() - t0;
}

static void test_live_push_relay_reconnect(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), *c = mkreplica("Cy");
    notes_sync_space sp;
    static struct server sa, sb, sc; /* the teardown reads them */
    uint8_t id[16];
    enum { N = 50 };
    double lat[2][N];
    size_t na, nb, ncc;
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(c, &sp), NOTES_OK);
    make_note(a, "team", "# Live\n", id);
    g_servers[0] = &sa;
    g_servers[1] = &sb;
    g_servers[2] = &sc;
    memset(&sc, 0, sizeof(sc));

    server_start(&sa, a, 0, 0);
    int aport = sa.port;
    server_start(&sb, b, 0, aport);
    assert_true(wait_for(b, id, "# Live\n", 5000));
    /* Both ways, one commit at a time. */
    for (int i = 0; i < N; i++) {
        char w[32];
        snprintf(w, sizeof(w), "a%d\n", i);
        lat[0][i] = one_edit(a, b, id, w);
        snprintf(w, sizeof(w), "b%d\n", i);
        lat[1][i] = one_edit(b, a, id, w);
    }
    qsort(lat[0], N, sizeof(double), cmp_double);
    qsort(lat[1], N, sizeof(double), cmp_double);
    printf("live, commit to stored on the peer: A->B p50 %.2f ms max %.2f "
           "ms; B->A p50 %.2f ms max %.2f ms\n", lat[0][N / 2],
           lat[0][N - 1], lat[1][N / 2], lat[1][N - 1]);
    char *ta = text_of(a, id, &na), *tb = text_of(b, id, &nb);
    assert_string_equal(ta, tb);
    assert_int_equal(na, 2 * N + 1);
    assert_int_equal(nb, na);
    free(ta);
    free(tb);

    /* C dials B: it gets everything, then A's next edit through B. */
    server_start(&sc, c, 0, sb.port);
    assert_true(wait_for(c, id, "b49\n", 5000));
    append(a, id, "relayed via B\n");
    assert_true(wait_for(c, id, "relayed via B\n", 5000));
    append(c, id, "from C\n");
    assert_true(wait_for(a, id, "from C\n", 5000));

    /* A is killed; both edit; A comes back on its port; B redials. */
    fixture_child_kill(&sa);
    append(b, id, "B while A is away\n");
    append(a, id, "A offline\n");
    usleep(300000);
    server_start(&sa, a, aport, 0);
    assert_true(wait_for(a, id, "B while A is away\n", 10000));
    assert_true(wait_for(b, id, "A offline\n", 10000));
    assert_true(wait_for(c, id, "A offline\n", 10000));

    fixture_child_stop(&sc, 3000);
    fixture_child_stop(&sb, 3000);
    fixture_child_stop(&sa, 3000);
    ta = text_of(a, id, &na);
    tb = text_of(b, id, &nb);
    char *tc = text_of(c, id, &ncc);
    assert_string_equal(ta, tb);
    assert_string_equal(ta, tc);
    assert_int_equal(na, 2 * N + 5);
    assert_int_equal(nb, na);
    assert_int_equal(ncc, na);
    free(ta);
    free(tb);
    free(tc);
    fixture_verify(a, id);
    fixture_verify(b, id);
    fixture_verify(c, id);
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
    rmreplica(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_live_push_relay_reconnect, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
