/*
 * test_sync_peercount.c: the number of peers the page shows ("1 peer
 * connected", notes_sync_hub_status) counts peers, as `notes peers` lists
 * them, not sessions: B dials A twice (the same --peer given twice, as
 * two daemons that discover each other both dial), A holds two open
 * sessions with one key and says 1. A runs here, B in a child process;
 * every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notes_sync.h"
#include "transport_internal.h"
#include "sync_fixture.h"
#include "serve_fixture.h"
#include "child_fixture.h"

struct b_arg {
    const char *home;
    int aport;
};

/* B: dials A twice over, until SIGTERM. */
static int run_b(void *arg)
{
    const struct b_arg *ba = arg;
    notes_sync_serve_opts o;
    char addr[64];
    const char *peers[2] = {addr, addr};
    memset(&o, 0, sizeof(o));
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ba->aport);
    o.listen = "127.0.0.1:0";
    o.on_listen = fixture_on_listen;
    o.live = 1;
    o.retry_ms = 100;
    o.peers = peers;
    o.npeers = 2;
    o.no_state_file = 1;
    return fixture_serve(ba->home, &o, &fixture_stop) ? 1 : 0;
}

struct a_state {
    notes_sync_hub *hub;
    const char *b_home;
    struct fixture_child b;
    int port, started;
    unsigned sessions, peers;
    double t0;
    uv_timer_t timer;
};

static void on_a_listen(void *ud, int port)
{
    ((struct a_state *)ud)->port = port;
}

static void on_done(void *arg)
{
    uv_close((uv_handle_t *)&((struct a_state *)arg)->timer, NULL);
}

/* Every 20 ms: start B once A listens; once A holds two open sessions,
 * read the count the page shows and stop. At most 10 s. */
static void on_tick(uv_timer_t *t)
{
    struct a_state *s = t->data;
    if (!s->port)
        return;
    if (!s->started) {
        struct b_arg ba = {s->b_home, s->port};
        fixture_child_start(&s->b, run_b, &ba);
        s->started = 1;
    }
    unsigned open = 0;
    for (const struct conn *c = s->hub->conns; c; c = c->next)
        open += !c->closing && c->opened &&
                notes_sync_state(c->s) == NOTES_SYNC_OPEN;
    if (open >= 2 || now_ms() - s->t0 > 10000) {
        s->sessions = open;
        notes_sync_hub_status(s->hub, &s->peers, NULL);
        uv_timer_stop(t);
        notes_sync_hub_stop(s->hub, on_done, s);
    }
}

static void test_peer_count(void **st)
{
    (void)st;
    char *a = mkreplica("Ana"), *b = mkreplica("Bo");
    notes_sync_space sp;
    uint8_t id[16];
    assert_int_equal(notes_sync_space_create(a, "team", &sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &sp), NOTES_OK);
    notes_sync_space_clear(&sp);
    make_note(a, "team", "# Count\n", id);

    static struct a_state s;
    memset(&s, 0, sizeof(s));
    s.b_home = b;
    s.t0 = now_ms();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    notes_sync_serve_opts o;
    memset(&o, 0, sizeof(o));
    o.listen = "127.0.0.1:0";
    o.live = 1;
    o.on_listen = on_a_listen;
    o.ud = &s;
    o.no_state_file = 1;
    assert_int_equal(notes_sync_hub_start(&loop, a, NULL, &o, &s.hub), NOTES_OK);
    uv_timer_init(&loop, &s.timer);
    s.timer.data = &s;
    uv_timer_start(&s.timer, on_tick, 20, 20);
    uv_run(&loop, UV_RUN_DEFAULT);
    notes_sync_hub_free(s.hub);
    (void)uv_loop_close(&loop);
    if (s.started)
        fixture_child_stop(&s.b, 5000);
    print_message("# A: %u open sessions, %u peer(s) shown\n", s.sessions,
                  s.peers);
    assert_int_equal(s.sessions, 2);
    assert_int_equal(s.peers, 1);
    rmreplica(a);
    rmreplica(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_count),
    };
    assert_int_equal(notes_init(), NOTES_OK);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
