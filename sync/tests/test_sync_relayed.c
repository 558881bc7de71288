/*
 * test_sync_relayed.c: members meeting through a relay (docs/protocol.md,
 * "Relay"), on 127.0.0.1 with ephemeral ports; the relay and each daemon
 * are child processes (libnotes keeps no state shared between processes).
 * - A and B, each `serve --relay`, converge through it both ways; the
 *   relay is killed mid-meeting, B writes meanwhile, the relay comes back
 *   on its port and B's words arrive: nothing lost.
 * - A relay that flips a byte, drops a chunk, cuts the stream, swaps bytes
 *   or holds every chunk 150 ms in the first pairings' traffic: the sessions fail (nothing unverified is
 *   stored), the members reconnect and converge, and every stored change
 *   verifies. (A replayed recording is the session's own test:
 *   test_sync_hostile replays a member's M1 and M3.)
 * - A stranger who knows the day's tag (the relay's operator could) is
 *   paired with a member and gets nowhere: no handshake, nothing stored.
 * - notes_sync_once through the relay (what `notes join` does).
 * - Two relays: one dies mid-meeting, the other carries on.
 * Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "notes_sync.h"
#include "relay_wire.h"
#include "child_fixture.h"
#include "serve_fixture.h"

/* ---- child processes: the relay and the daemons ---- */

/* Relay child: what a hostile relay does to the first 3 pairings' traffic
 * at offset 300 of each direction (past the handshake: in a frame). */
enum { HONEST = 0, FLIP, DROP, CUT, REORDER, DELAY };
static int g_mode;

static int tamper(uint8_t *p, size_t n, unsigned pairing, uint64_t offset)
{
    if (pairing < 3 && g_mode == DELAY) {
        /* Every chunk of the first pairings held 150 ms (the relay's
         * loop stalls: everything through it is late). */
        usleep(150000);
        return 0;
    }
    if (pairing >= 3 || !(offset <= 300 && 300 < offset + n))
        return 0;
    switch (g_mode) {
    case REORDER: /* the chunk's two halves delivered in swapped order */
        if (n >= 2) {
            uint8_t tmp[65536];
            size_t h = n / 2;
            if (n > sizeof(tmp))
                return 0;
            memcpy(tmp, p, h);
            memmove(p, p + h, n - h);
            memcpy(p + n - h, tmp, h);
        }
        return 0;
    case FLIP:
        p[300 - offset] ^= 0x40;
        return 0;
    case DROP: /* the chunk vanishes; the pairing goes on */
        return 1;
    case CUT: /* the stream is cut mid-frame */
        return 2;
    default:
        return 0;
    }
}

struct relay_arg {
    int port, mode;
};

static int run_relay(void *arg)
{
    const struct relay_arg *ra = arg;
    notes_sync_relay_opts o;
    char listen[64];
    memset(&o, 0, sizeof(o));
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", ra->port);
    o.listen = listen;
    o.on_listen = fixture_on_listen;
    g_mode = ra->mode;
    if (g_mode)
        notes_sync__relay_tamper = tamper;
    return fixture_relay(&o, &fixture_stop);
}

static void relay_start(struct fixture_child *s, int port, int mode)
{
    struct relay_arg ra = {port, mode};
    fixture_child_start(s, run_relay, &ra);
}

struct member_arg {
    const char *home;
    int relay_port, relay_port2; /* a second relay, or 0 */
};

static int run_member(void *arg)
{
    const struct member_arg *ma = arg;
    notes_sync_serve_opts o;
    char relay[64], relay2[64];
    const char *relays[2] = {relay, relay2};
    memset(&o, 0, sizeof(o));
    snprintf(relay, sizeof(relay), "127.0.0.1:%d", ma->relay_port);
    snprintf(relay2, sizeof(relay2), "127.0.0.1:%d", ma->relay_port2);
    o.listen = "127.0.0.1:0";
    o.on_listen = fixture_on_listen;
    o.live = 1;
    /* A relay that drops a chunk leaves a session waiting for it: the
     * idle deadline ends it (2 s keeps the test short). */
    o.idle_ms = 2000;
    o.retry_ms = 100;
    o.relays = relays;
    o.nrelays = ma->relay_port2 ? 2 : 1;
    /* On loopback a simultaneous open is a race, not a NAT test (the
     * network-namespace test does that): the relayed path only. */
    o.no_punch = 1;
    return fixture_serve(ma->home, &o, &fixture_stop) ? 1 : 0;
}

/* A daemon of `home` that meets its spaces at the relay on relay_port. */
static void member_start(struct fixture_child *s, const char *home,
                         int relay_port)
{
    struct member_arg ma = {home, relay_port, 0};
    fixture_child_start(s, run_member, &ma);
}

/* The same with two relays. */
static void member_start2(struct fixture_child *s, const char *home,
                          int relay_port, int relay_port2)
{
    struct member_arg ma = {home, relay_port, relay_port2};
    fixture_child_start(s, run_member, &ma);
}

static struct fixture_child g_kids[5];

static int teardown(void **st)
{
    (void)st;
    for (int i = 0; i < 5; i++)
        fixture_child_kill(&g_kids[i]);
    return 0;
}

/* Two replicas of one space with a note made by A. */
static void two_members(char **a, char **b, notes_sync_space *sp,
                        uint8_t id[16])
{
    *a = mkreplica("Ana");
    *b = mkreplica("Bo");
    assert_int_equal(notes_sync_space_create(*a, "team", sp), NOTES_OK);
    assert_int_equal(notes_sync_space_save(*b, sp), NOTES_OK);
    make_note(*a, "team", "# Call\n", id);
}

/* B's daemon names A as a peer reached through the relay. */
static int wait_path(const char *home, const char *path, double ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < ms) {
        notes_sync_peers ps;
        int ok = 0;
        if (notes_sync_peers_read(home, &ps) == NOTES_OK) {
            for (size_t i = 0; i < ps.npeers; i++)
                if (strcmp(ps.peers[i].state, "connected") == 0 &&
                    strcmp(ps.peers[i].path, path) == 0)
                    ok = 1;
            ok = ok && ps.nrelays == 1 && ps.relay_up[0];
            notes_sync_peers_clear(&ps);
        }
        if (ok)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* Stop the daemons and the relay; both replicas hold the same verified
 * text; remove them. */
static void meeting_end(char *a, char *b, notes_sync_space *sp,
                        const uint8_t id[16])
{
    for (int i = 2; i >= 0; i--)
        fixture_child_stop(&g_kids[i], 5000);
    char *ta = fixture_text(a, id), *tb = fixture_text(b, id);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    fixture_verify(a, id);
    fixture_verify(b, id);
    notes_sync_space_clear(sp);
    rmreplica(a);
    rmreplica(b);
}

static void test_relayed_meeting(void **st)
{
    char *a, *b;
    notes_sync_space sp;
    uint8_t id[16];
    struct fixture_child *relay = &g_kids[0], *da = &g_kids[1], *db = &g_kids[2];
    (void)st;
    two_members(&a, &b, &sp, id);
    relay_start(relay, 0, 0);
    int rport = relay->port;
    member_start(da, a, rport);
    member_start(db, b, rport);
    assert_true(fixture_wait_text(b, id, "# Call\n", 10000));
    append(a, id, "Ana: agenda\n");
    assert_true(fixture_wait_text(b, id, "Ana: agenda\n", 5000));
    append(b, id, "Bo: notes\n");
    assert_true(fixture_wait_text(a, id, "Bo: notes\n", 5000));
    assert_true(wait_path(b, "relay", 5000));

    /* The relay dies mid-meeting; B writes meanwhile; it comes back. */
    fixture_child_kill(relay);
    append(b, id, "Bo while the relay is down\n");
    append(a, id, "Ana while the relay is down\n");
    relay_start(relay, rport, 0);
    assert_true(fixture_wait_text(a, id, "Bo while the relay is down\n", 20000));
    assert_true(fixture_wait_text(b, id, "Ana while the relay is down\n", 20000));

    meeting_end(a, b, &sp, id);
}

/* The first three pairings are altered (a byte flipped, a chunk dropped,
 * the stream cut): those sessions fail with nothing unverified stored, the
 * members reconnect, later pairings get through, and all converge. */
static void hostile_relay(int mode)
{
    char *a, *b;
    notes_sync_space sp;
    uint8_t id[16];
    struct fixture_child *relay = &g_kids[0], *da = &g_kids[1], *db = &g_kids[2];
    two_members(&a, &b, &sp, id);
    /* A longer note, so that the first session's traffic passes offset
     * 300 in both directions. */
    for (int i = 0; i < 20; i++)
        append(a, id, "a line of the minutes that makes the bundle longer\n");
    relay_start(relay, 0, mode);
    member_start(da, a, relay->port);
    member_start(db, b, relay->port);
    assert_true(fixture_wait_text(b, id, "# Call\n", 30000));
    append(b, id, "Bo after the tampering\n");
    assert_true(fixture_wait_text(a, id, "Bo after the tampering\n", 10000));
    meeting_end(a, b, &sp, id);
}

static void test_relay_flips_bytes(void **st)
{
    (void)st;
    hostile_relay(FLIP);
}

static void test_relay_drops_bytes(void **st)
{
    (void)st;
    hostile_relay(DROP);
}

static void test_relay_cuts_streams(void **st)
{
    (void)st;
    hostile_relay(CUT);
}

static void test_relay_reorders_bytes(void **st)
{
    (void)st;
    hostile_relay(REORDER);
}

static void test_relay_delays(void **st)
{
    (void)st;
    hostile_relay(DELAY);
}

/* Two relays: the members meet at both; one dies mid-meeting and the
 * other carries on at once, with nothing lost. */
static void test_second_relay_takes_over(void **st)
{
    char *a, *b;
    notes_sync_space sp;
    uint8_t id[16];
    struct fixture_child *r1 = &g_kids[0], *da = &g_kids[1], *db = &g_kids[2],
                         *r2 = &g_kids[3];
    (void)st;
    two_members(&a, &b, &sp, id);
    relay_start(r1, 0, HONEST);
    relay_start(r2, 0, HONEST);
    member_start2(da, a, r1->port, r2->port);
    member_start2(db, b, r1->port, r2->port);
    assert_true(fixture_wait_text(b, id, "# Call\n", 10000));
    append(a, id, "before\n");
    assert_true(fixture_wait_text(b, id, "before\n", 5000));
    fixture_child_kill(r1);
    append(a, id, "Ana after the first relay died\n");
    append(b, id, "Bo after the first relay died\n");
    /* No restart: the second relay's sessions were open all along. */
    assert_true(fixture_wait_text(b, id, "Ana after the first relay died\n", 5000));
    assert_true(fixture_wait_text(a, id, "Bo after the first relay died\n", 5000));
    fixture_child_stop(r2, 5000);
    meeting_end(a, b, &sp, id);
}

/* A raw client of the relay (blocking socket, 5 s timeouts). */
static int raw_connect(int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void raw_send(int fd, uint8_t type, const void *p, size_t n)
{
    uint8_t m[RELAY_MSG_MAX];
    size_t k = sync_relay_msg(m, type, p, n);
    assert_int_equal(write(fd, m, k), (ssize_t)k);
}

/* The next message of type `want` (others skipped); 0 if none came. */
static int raw_expect(int fd, uint8_t want, uint8_t *payload)
{
    for (;;) {
        uint8_t h[2];
        if (recv(fd, h, 2, MSG_WAITALL) != 2)
            return 0;
        if (h[1] && recv(fd, payload, h[1], MSG_WAITALL) != h[1])
            return 0;
        if (h[0] == want)
            return 1;
    }
}

static void test_stranger_with_the_tag(void **st)
{
    char *a, *b;
    notes_sync_space sp;
    uint8_t id[16], tag[RELAY_TAG_LEN], p[255], reg[48], junk[64];
    struct fixture_child *relay = &g_kids[0], *da = &g_kids[1];
    (void)st;
    two_members(&a, &b, &sp, id);
    relay_start(relay, 0, 0);
    /* The stranger registers under today's tag with the largest id, so the
     * member dials it (CONNECT), and answers the INCOMING. */
    sync_relay_tag(sp.secret, (uint64_t)time(NULL) / 86400u, tag);
    memcpy(reg, tag, 32);
    memset(reg + 32, 0xff, 16);
    int ctl = raw_connect(relay->port);
    raw_send(ctl, RELAY_REGISTER, reg, sizeof(reg));
    assert_true(raw_expect(ctl, RELAY_WELCOME, p));
    member_start(da, a, relay->port);
    assert_true(raw_expect(ctl, RELAY_INCOMING, p));
    int data = raw_connect(relay->port);
    raw_send(data, RELAY_ACCEPT, p, 16);
    assert_true(raw_expect(data, RELAY_PAIRED, p));
    /* M1 from the member, then garbage where M2 belongs. */
    uint8_t m1[64];
    assert_int_equal(recv(data, m1, sizeof(m1), MSG_WAITALL), 64);
    memset(junk, 0x5a, sizeof(junk));
    for (int i = 0; i < 3; i++)
        (void)write(data, junk, sizeof(junk));
    /* The member ends that session: the stranger's data connection closes
     * (or the member stops reading it) and nothing of A's note left. */
    {
        uint8_t buf[256];
        ssize_t k;
        while ((k = recv(data, buf, sizeof(buf), 0)) > 0)
            ;
        assert_true(k == 0 || k < 0);
    }
    close(data);
    close(ctl);
    fixture_child_stop(da, 5000);
    fixture_child_stop(relay, 5000);
    fixture_verify(a, id);
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

static void test_once_through_relay(void **st)
{
    char *a, *b;
    notes_sync_space sp;
    uint8_t id[16];
    notes_sync_once_opts o;
    notes_sync_report rep;
    char relay[64];
    struct fixture_child *rl = &g_kids[0], *da = &g_kids[1];
    (void)st;
    two_members(&a, &b, &sp, id);
    relay_start(rl, 0, 0);
    snprintf(relay, sizeof(relay), "127.0.0.1:%d", rl->port);
    memset(&o, 0, sizeof(o));
    /* A relay is HOST:PORT, HOST a name or an address; anything else is
     * refused before any I/O. */
    const char *bad[] = {"no port", "relay.example.org:0", "x:65536",
                         "under_score:7656", ":7656", "[::1:7656"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.relay = bad[i];
        assert_int_equal(notes_sync_once_ex(b, NULL, "team", NULL, &o, &rep),
                         NOTES_EINVAL);
    }
    o.relay = relay;
    o.handshake_ms = 1500;
    /* Nobody there yet: a clear failure, not a hang. */
    assert_int_equal(notes_sync_once_ex(b, NULL, "team", NULL, &o, &rep),
                     NOTES_SYNC_ENET);
    assert_non_null(strstr(notes_sync_last_detail(), "no member"));
    member_start(da, a, rl->port);
    o.handshake_ms = 5000;
    double t0 = now_ms();
    int rc;
    /* A registers within moments of starting; retry until it is there. */
    while ((rc = notes_sync_once_ex(b, NULL, "team", NULL, &o, &rep)) != NOTES_OK &&
           now_ms() - t0 < 10000)
        usleep(50000);
    assert_int_equal(rc, NOTES_OK);
    assert_int_equal(rep.notes_created, 1);
    char *tb = fixture_text(b, id);
    assert_string_equal(tb, "# Call\n");
    free(tb);
    fixture_child_stop(da, 5000);
    fixture_child_stop(rl, 5000);
    notes_sync_space_clear(&sp);
    rmreplica(a);
    rmreplica(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_relayed_meeting, teardown),
        cmocka_unit_test_teardown(test_relay_flips_bytes, teardown),
        cmocka_unit_test_teardown(test_relay_drops_bytes, teardown),
        cmocka_unit_test_teardown(test_relay_cuts_streams, teardown),
        cmocka_unit_test_teardown(test_relay_reorders_bytes, teardown),
        cmocka_unit_test_teardown(test_relay_delays, teardown),
        cmocka_unit_test_teardown(test_second_relay_takes_over, teardown),
        cmocka_unit_test_teardown(test_stranger_with_the_tag, teardown),
        cmocka_unit_test_teardown(test_once_through_relay, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
