/*
 * test_sync_discovery.c: LAN discovery and the peers state file.
 *
 * - The announcement datagram: round trip, every truncation, every bit
 *   flip, wrong keys (another space, the network key), port 0, random
 *   bytes; the receiver's rate limits and replay memory.
 * - Three notes_sync_serve daemons in child processes on 127.0.0.1, all on
 *   one UDP port (an ephemeral one) announcing to 127.255.255.255 every
 *   200 ms: A and B (space "team") find each other with no --peer, keep
 *   exactly one session and converge on edits made on both sides; C (space
 *   "team" too, but another secret) never recognizes them nor is
 *   recognized. Hostile datagrams (truncated, oversized, forged, random,
 *   from another space, with the receiver's own key, stale, replayed, a
 *   flood) are counted by outcome and change nothing. The state file says
 *   who is connected, and that no daemon runs once they stop.
 * - One-way reachability: B hears A, A never hears B; they connect anyway.
 * Every wait is bounded; every child is killed and reaped in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
#include "sync_internal.h"
#include "serve_fixture.h"
#include "child_fixture.h"

#define ANNOUNCE_MS 200

static uint64_t unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the datagram, without sockets ---- */

static void test_datagram(void **st)
{
    uint8_t secrets[3][32], keys[3][32], pk[32], got_pk[32], pkt[SYNC_DISC_LEN],
        pkt2[SYNC_DISC_LEN], buf[4096], net[32];
    uint16_t port;
    uint64_t ts, now = unix_now();
    size_t which;
    int flips_foreign = 0, flips_malformed = 0;
    (void)st;
    for (int i = 0; i < 3; i++) {
        notes__random(secrets[i], 32);
        sync_disc_key(secrets[i], keys[i]);
    }
    notes__random(pk, 32);
    sync_disc_seal(keys[2], pk, 7654, now, pkt);
    assert_int_equal(sizeof(pkt), 83);
    assert_int_equal(pkt[0], SYNC_DISC_VERSION);
    assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 3, pkt,
                                    sizeof(pkt), &which, got_pk, &port, &ts),
                     NOTES_OK);
    assert_int_equal(which, 2);
    assert_memory_equal(got_pk, pk, 32);
    assert_int_equal(port, 7654);
    assert_true(ts == now);
    /* Only the members of that space open it. */
    assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 2, pkt,
                                    sizeof(pkt), &which, got_pk, &port, &ts),
                     SYNC_DISC_FOREIGN);
    /* The discovery key is not the network key (its own label). */
    sync_netkey(secrets[2], net);
    assert_memory_not_equal(net, keys[2], 32);
    assert_int_equal(sync_disc_open((const uint8_t(*)[32])net, 1, pkt,
                                    sizeof(pkt), &which, got_pk, &port, &ts),
                     SYNC_DISC_FOREIGN);
    /* The same announcement again looks unrelated: fresh nonce. */
    sync_disc_seal(keys[2], pk, 7654, now, pkt2);
    assert_memory_not_equal(pkt + 1, pkt2 + 1, 24);
    assert_memory_not_equal(pkt + 25, pkt2 + 25, SYNC_DISC_LEN - 25);
    /* Every truncation, and longer datagrams. */
    for (size_t n = 0; n < sizeof(pkt); n++)
        assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 3, pkt, n,
                                        &which, got_pk, &port, &ts),
                         SYNC_DISC_MALFORMED);
    memcpy(buf, pkt, sizeof(pkt));
    memset(buf + sizeof(pkt), 0, sizeof(buf) - sizeof(pkt));
    for (size_t n = sizeof(pkt) + 1; n <= sizeof(buf); n *= 2)
        assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 3, buf, n,
                                        &which, got_pk, &port, &ts),
                         SYNC_DISC_MALFORMED);
    assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 3, NULL, 0,
                                    &which, got_pk, &port, &ts),
                     SYNC_DISC_MALFORMED);
    /* Every single-bit flip is refused. */
    for (size_t i = 0; i < sizeof(pkt) * 8; i++) {
        int rc;
        memcpy(buf, pkt, sizeof(pkt));
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        rc = sync_disc_open((const uint8_t(*)[32])keys, 3, buf, sizeof(pkt),
                            &which, got_pk, &port, &ts);
        assert_true(rc == SYNC_DISC_FOREIGN || rc == SYNC_DISC_MALFORMED);
        flips_foreign += rc == SYNC_DISC_FOREIGN;
        flips_malformed += rc == SYNC_DISC_MALFORMED;
    }
    assert_int_equal(flips_malformed, 8); /* the version byte */
    assert_int_equal(flips_foreign, 82 * 8);
    /* Random bytes of the right size and version. */
    for (int i = 0; i < 2000; i++) {
        notes__random(buf, sizeof(pkt));
        buf[0] = SYNC_DISC_VERSION;
        assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 3, buf,
                                        sizeof(pkt), &which, got_pk, &port,
                                        &ts),
                         SYNC_DISC_FOREIGN);
    }
    /* A member announcing port 0 is malformed. */
    sync_disc_seal(keys[0], pk, 0, now, pkt);
    assert_int_equal(sync_disc_open((const uint8_t(*)[32])keys, 3, pkt,
                                    sizeof(pkt), &which, got_pk, &port, &ts),
                     SYNC_DISC_MALFORMED);
    printf("  83-byte announcement; %d bit flips refused (8 malformed), 2000 "
           "random datagrams foreign\n", flips_foreign + flips_malformed);
}

static void test_filter(void **st)
{
    struct sync_disc_filter *f = malloc(sizeof(*f));
    uint8_t nonce[24];
    int ok = 0;
    (void)st;
    assert_non_null(f);
    sync_disc_filter_init(f);
    /* One source: the burst, then the rate. */
    for (int i = 0; i < 1000; i++)
        ok += sync_disc_admit(f, htonl(0x0a000001), 1000);
    assert_int_equal(ok, SYNC_DISC_BURST);
    ok = 0;
    for (int i = 0; i < 1000; i++)
        ok += sync_disc_admit(f, htonl(0x0a000001), 2000);
    assert_int_equal(ok, SYNC_DISC_RATE);
    /* Another source has its own bucket. */
    assert_true(sync_disc_admit(f, htonl(0x0a000002), 2000));
    /* Many sources at once: the table stays bounded, the global limit
     * holds (a few per source would all pass the per-source limit). */
    sync_disc_filter_init(f);
    ok = 0;
    for (uint32_t i = 0; i < 3000; i++)
        ok += sync_disc_admit(f, htonl(0x0b000000 + i), 5000);
    assert_int_equal(ok, SYNC_DISC_GRATE);
    ok = 0;
    for (uint32_t i = 0; i < 3000; i++)
        ok += sync_disc_admit(f, htonl(0x0b000000 + i), 5500);
    assert_int_equal(ok, SYNC_DISC_GRATE / 2);
    /* Replays: seen once, refused while remembered. */
    notes__random(nonce, sizeof(nonce));
    assert_false(sync_disc_replayed(f, nonce, 1000));
    assert_true(sync_disc_replayed(f, nonce, 1001));
    assert_true(sync_disc_replayed(f, nonce, 1000 + 2 * SYNC_DISC_WINDOW_MS - 1));
    assert_false(sync_disc_replayed(f, nonce, 1000 + 2 * SYNC_DISC_WINDOW_MS));
    /* The ring is bounded: old entries give way. */
    for (int i = 0; i < 3 * SYNC_DISC_NONCES; i++) {
        uint8_t n2[24];
        notes__random(n2, sizeof(n2));
        assert_false(sync_disc_replayed(f, n2, 200000));
    }
    free(f);
}

/* ---- daemons ---- */

#define server fixture_child

static struct server *g_servers[4];

/* A live, discovering server for `home` (a child process: child_fixture.h)
 * listening on 127.0.0.1:0, hearing UDP `udp` and announcing to
 * 127.255.255.255:`to`. */
struct server_arg {
    const char *home;
    int udp, to;
};

static int run_server(void *arg)
{
    const struct server_arg *sa = arg;
    notes_sync_serve_opts o;
    char dest[64];
    const char *dests[1] = {dest};
    snprintf(dest, sizeof(dest), "127.255.255.255:%d", sa->to);
    memset(&o, 0, sizeof(o));
    o.listen = "127.0.0.1:0";
    o.on_listen = fixture_on_listen;
    o.live = 1;
    o.idle_ms = 5000;
    o.retry_ms = 100;
    o.discovery = 1;
    o.discovery_port = sa->udp;
    o.announce_to = dests;
    o.nannounce_to = 1;
    o.announce_ms = ANNOUNCE_MS;
    return fixture_serve(sa->home, &o, &fixture_stop) ? 1 : 0;
}

static void server_start(struct server *s, const char *home, int udp, int to)
{
    struct server_arg sa = {home, udp, to};
    fixture_child_start(s, run_server, &sa);
}

static void server_alive(const struct server *s)
{
    int st;
    assert_int_equal(waitpid(s->pid, &st, WNOHANG), 0);
}

static int teardown(void **st)
{
    (void)st;
    for (int i = 0; i < 4; i++)
        if (g_servers[i])
            fixture_child_kill(g_servers[i]);
    memset(g_servers, 0, sizeof(g_servers));
    return 0;
}

/* A UDP socket on a free port (SO_REUSEADDR, so daemons can share it);
 * OUT *port. */
static int udp_socket(int *port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)), 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Send n bytes to every daemon on the port (loopback broadcast). */
static void inject(int fd, int port, const void *p, size_t n)
{
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(0x7fffffffu); /* 127.255.255.255 */
    assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&to, sizeof(to)),
                     (ssize_t)n);
}

static void key_of(const char *home, uint8_t pk[32])
{
    notes_replica *r;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    memcpy(pk, notes_replica_public_key(r), 32);
    notes_replica_free(r);
}

static void state_of(const char *home, notes_sync_peers *p)
{
    int rc = notes_sync_peers_read(home, p);
    if (rc)
        fail_msg("peers state of %s: %s", home, notes_sync_last_detail());
}

static const notes_sync_peer *peer_with(const notes_sync_peers *p,
                                        const uint8_t key[32])
{
    for (size_t i = 0; i < p->npeers; i++)
        if (p->peers[i].key_known && memcmp(p->peers[i].key, key, 32) == 0)
            return &p->peers[i];
    return NULL;
}

/* Wait (at most ms) until `home`'s state lists `key` connected with one
 * session. */
static int wait_connected(const char *home, const uint8_t key[32], double ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < ms) {
        notes_sync_peers p;
        const notes_sync_peer *e;
        int ok;
        state_of(home, &p);
        e = peer_with(&p, key);
        ok = p.running && e && strcmp(e->state, "connected") == 0 &&
             e->sessions == 1;
        notes_sync_peers_clear(&p);
        if (ok)
            return 1;
        usleep(20000);
    }
    return 0;
}

/* The discovery counters of `home` once `done` holds (at most ms). */
typedef int (*disc_pred)(const notes_sync_discovery_stats *s,
                         const notes_sync_discovery_stats *base);
static notes_sync_discovery_stats wait_disc(const char *home, disc_pred done,
                                            const notes_sync_discovery_stats *base,
                                            double ms, const char *what)
{
    double t0 = now_ms();
    notes_sync_discovery_stats s;
    memset(&s, 0, sizeof(s));
    while (now_ms() - t0 < ms) {
        notes_sync_peers p;
        state_of(home, &p);
        s = p.disc;
        notes_sync_peers_clear(&p);
        if (done(&s, base))
            return s;
        usleep(20000);
    }
    fail_msg("%s: not within %.0f ms (received %llu, malformed %llu, foreign "
             "%llu, stale %llu, replayed %llu, own %llu, rate %llu)", what, ms,
             (unsigned long long)s.received, (unsigned long long)s.malformed,
             (unsigned long long)s.foreign, (unsigned long long)s.stale,
             (unsigned long long)s.replayed, (unsigned long long)s.own,
             (unsigned long long)s.rate_limited);
    return s;
}

static int foreign_seen(const notes_sync_discovery_stats *s,
                        const notes_sync_discovery_stats *b)
{
    (void)b;
    return s->foreign > 0 && s->accepted > 0 && s->own > 0;
}

static int c_foreign_seen(const notes_sync_discovery_stats *s,
                          const notes_sync_discovery_stats *b)
{
    (void)b;
    return s->foreign >= 4 && s->own > 0;
}

enum { N_TRUNC = 12, N_BIG = 4, N_FORGED = 20 };

/* A after the injection: exact counts for what only injections cause. */
static int a_injected(const notes_sync_discovery_stats *s,
                      const notes_sync_discovery_stats *b)
{
    return s->malformed == b->malformed + N_TRUNC + N_BIG &&
           s->stale == b->stale + 1 && s->replayed == b->replayed + 1 &&
           s->foreign >= b->foreign + N_FORGED + 1 && s->own >= b->own + 1;
}

static int b_injected(const notes_sync_discovery_stats *s,
                      const notes_sync_discovery_stats *b)
{
    /* B: the announcement with A's key is A's (accepted); the stale and
     * the replayed ones carry B's own key (own comes first). */
    return s->malformed == b->malformed + N_TRUNC + N_BIG &&
           s->stale == b->stale && s->replayed == b->replayed &&
           s->accepted >= b->accepted + 1 &&
           s->foreign >= b->foreign + N_FORGED + 1 && s->own >= b->own + 3;
}

static int c_injected(const notes_sync_discovery_stats *s,
                      const notes_sync_discovery_stats *b)
{
    /* C holds the other space: only the one sealed for it opens, with a
     * key it has never heard (accepted: a member of its space; it dials a
     * closed port and backs off). */
    return s->malformed == b->malformed + N_TRUNC + N_BIG &&
           s->accepted >= b->accepted + 1 && s->stale == b->stale &&
           s->foreign >= b->foreign + N_FORGED + 4;
}

static int rate_seen(const notes_sync_discovery_stats *s,
                     const notes_sync_discovery_stats *b)
{
    return s->rate_limited > b->rate_limited;
}

static void test_daemons(void **st)
{
    char *a = mkreplica("Ana"), *b = mkreplica("Bo"), *c = mkreplica("Cy");
    notes_sync_space team, other;
    static struct server sa, sb, sc; /* the teardown reads them */
    uint8_t id[16], other_id[16], ka[32], kb[32], kc[32];
    int udp, sniff;
    double t0;
    (void)st;
    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    memset(&sc, 0, sizeof(sc));
    g_servers[0] = &sa;
    g_servers[1] = &sb;
    g_servers[2] = &sc;
    assert_int_equal(notes_sync_space_create(a, "team", &team), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &team), NOTES_OK);
    /* C: a space of the same name, another secret. */
    assert_int_equal(notes_sync_space_create(c, "team", &other), NOTES_OK);
    make_note(a, "team", "# Discovered\n", id);
    make_note(c, "team", "# Not yours\n", other_id);
    key_of(a, ka);
    key_of(b, kb);
    key_of(c, kc);
    sniff = udp_socket(&udp);

    t0 = now_ms();
    server_start(&sa, a, udp, udp);
    server_start(&sb, b, udp, udp);
    server_start(&sc, c, udp, udp);
    /* No --peer anywhere: B gets A's note through discovery. */
    assert_true(fixture_wait_text(b, id, "# Discovered\n", 10000));
    printf("  B has A's note %.0f ms after the daemons started\n",
           now_ms() - t0);

    /* What goes on the air: 83 bytes, nothing in common between two. */
    {
        uint8_t d1[2048], d2[2048];
        ssize_t n1 = -1, n2 = -1;
        struct pollfd pf = {.fd = sniff, .events = POLLIN};
        t0 = now_ms();
        while ((n1 < 0 || n2 < 0) && now_ms() - t0 < 3000) {
            if (poll(&pf, 1, 100) != 1)
                continue;
            if (n1 < 0)
                n1 = recv(sniff, d1, sizeof(d1), 0);
            else
                n2 = recv(sniff, d2, sizeof(d2), 0);
        }
        assert_int_equal(n1, SYNC_DISC_LEN);
        assert_int_equal(n2, SYNC_DISC_LEN);
        assert_int_equal(d1[0], SYNC_DISC_VERSION);
        assert_memory_not_equal(d1 + 1, d2 + 1, SYNC_DISC_LEN - 1);
    }

    /* Both sides edit; both converge. */
    append(a, id, "from A\n");
    append(b, id, "from B\n");
    assert_true(fixture_wait_text(a, id, "from B\n", 5000));
    assert_true(fixture_wait_text(b, id, "from A\n", 5000));
    {
        char *ta = fixture_text(a, id), *tb = fixture_text(b, id);
        assert_string_equal(ta, tb);
        free(ta);
        free(tb);
    }
    /* One session between A and B, seen from both sides. */
    assert_true(wait_connected(a, kb, 5000));
    assert_true(wait_connected(b, ka, 5000));

    /* C: hears A and B (foreign), is heard as foreign, connects to none. */
    notes_sync_discovery_stats base_a, base_b, base_c;
    base_a = wait_disc(a, foreign_seen, NULL, 5000, "A hears B and C");
    base_b = wait_disc(b, foreign_seen, NULL, 5000, "B hears A and C");
    base_c = wait_disc(c, c_foreign_seen, NULL, 5000, "C hears A and B");
    {
        notes_sync_peers p;
        state_of(c, &p);
        assert_true(p.running);
        assert_int_equal(p.npeers, 0);
        assert_int_equal(p.disc.accepted, 0);
        notes_sync_peers_clear(&p);
        state_of(a, &p);
        assert_int_equal(p.npeers, 1);
        assert_memory_equal(p.peers[0].key, kb, 32);
        assert_string_equal(p.peers[0].space, "team");
        assert_true(strcmp(p.peers[0].found, "discovered") == 0 ||
                    strcmp(p.peers[0].found, "inbound") == 0);
        assert_true(p.peers[0].last_sync_ms > 0);
        assert_true(p.peers[0].changes_sent >= 2); /* the note, "from A" */
        assert_true(p.peers[0].changes_received >= 1);
        assert_true(p.discovery);
        assert_int_equal(p.discovery_port, udp);
        notes_sync_peers_clear(&p);
    }
    {
        char *tc = fixture_text(c, id), *ta = fixture_text(a, other_id);
        assert_string_equal(tc, ""); /* never got team's note */
        assert_string_equal(ta, ""); /* nor A C's */
        free(tc);
        free(ta);
    }

    /* Hostile datagrams. Re-read the baselines right before sending. */
    {
        uint8_t kd_team[32], kd_other[32], pkt[SYNC_DISC_LEN], big[3000],
            fake[32];
        size_t sizes[N_BIG] = {SYNC_DISC_LEN + 1, 200, 1500, sizeof(big)};
        notes_sync_peers p;
        sync_disc_key(team.secret, kd_team);
        sync_disc_key(other.secret, kd_other);
        state_of(a, &p);
        base_a = p.disc;
        notes_sync_peers_clear(&p);
        state_of(b, &p);
        base_b = p.disc;
        notes_sync_peers_clear(&p);
        state_of(c, &p);
        base_c = p.disc;
        notes_sync_peers_clear(&p);
        /* Truncated copies of a valid announcement (B's key). */
        sync_disc_seal(kd_team, kb, (uint16_t)sb.port, unix_now(), pkt);
        for (int i = 0; i < N_TRUNC; i++)
            inject(sniff, udp, pkt, (size_t)i * 7);
        /* Oversized. */
        notes__random(big, sizeof(big));
        memcpy(big, pkt, sizeof(pkt));
        for (int i = 0; i < N_BIG; i++)
            inject(sniff, udp, big, sizes[i]);
        /* Forged: the right size and version, random bytes; and a valid
         * announcement with one bit flipped in its tag. */
        for (int i = 0; i < N_FORGED - 1; i++) {
            uint8_t r[SYNC_DISC_LEN];
            notes__random(r, sizeof(r));
            r[0] = SYNC_DISC_VERSION;
            inject(sniff, udp, r, sizeof(r));
        }
        pkt[SYNC_DISC_LEN - 1] ^= 1;
        inject(sniff, udp, pkt, sizeof(pkt));
        /* Another space's announcement: foreign to A and B; C opens it (a
         * member it never heard of, at a closed port). */
        notes__random(fake, sizeof(fake));
        sync_disc_seal(kd_other, fake, 9, unix_now(), pkt);
        inject(sniff, udp, pkt, sizeof(pkt));
        /* A's own key: A ignores it; B takes it for A (A's real port). */
        sync_disc_seal(kd_team, ka, (uint16_t)sa.port, unix_now(), pkt);
        inject(sniff, udp, pkt, sizeof(pkt));
        /* Stale: ten minutes old. */
        sync_disc_seal(kd_team, kb, (uint16_t)sb.port, unix_now() - 600000,
                       pkt);
        inject(sniff, udp, pkt, sizeof(pkt));
        /* Replayed: the same datagram twice (B's key: B's own). */
        sync_disc_seal(kd_team, kb, (uint16_t)sb.port, unix_now(), pkt);
        inject(sniff, udp, pkt, sizeof(pkt));
        inject(sniff, udp, pkt, sizeof(pkt));
        wait_disc(a, a_injected, &base_a, 5000, "A counts the injection");
        wait_disc(b, b_injected, &base_b, 5000, "B counts the injection");
        wait_disc(c, c_injected, &base_c, 5000, "C counts the injection");
        server_alive(&sa);
        server_alive(&sb);
        server_alive(&sc);
        /* Nothing changed: still one session each way, sync goes on. */
        append(b, id, "after the noise\n");
        assert_true(fixture_wait_text(a, id, "after the noise\n", 5000));
        assert_true(wait_connected(a, kb, 2000));
        assert_true(wait_connected(b, ka, 2000));

        /* A flood from one address: rate-limited, the rest unharmed. */
        state_of(a, &p);
        base_a = p.disc;
        notes_sync_peers_clear(&p);
        for (int i = 0; i < 2000; i++) {
            uint8_t r[SYNC_DISC_LEN];
            notes__random(r, sizeof(r));
            r[0] = SYNC_DISC_VERSION;
            inject(sniff, udp, r, sizeof(r));
        }
        base_a = wait_disc(a, rate_seen, &base_a, 5000, "A rate-limits a flood");
        printf("  flood of 2000 datagrams: A rate-limited %llu in all\n",
               (unsigned long long)base_a.rate_limited);
        server_alive(&sa);
        append(a, id, "after the flood\n");
        assert_true(fixture_wait_text(b, id, "after the flood\n", 5000));
        {
            notes_sync_peers q;
            state_of(c, &q);
            /* C knows the fake member only: never A nor B. */
            assert_null(peer_with(&q, ka));
            assert_null(peer_with(&q, kb));
            notes_sync_peers_clear(&q);
            state_of(a, &q);
            assert_int_equal(q.npeers, 1);
            notes_sync_peers_clear(&q);
        }
    }

    /* B stops: A sees it gone; B's file says no daemon, and who it knew. */
    fixture_child_stop(&sb, 3000);
    {
        notes_sync_peers p;
        const notes_sync_peer *e;
        int gone = 0;
        state_of(b, &p);
        assert_false(p.running);
        assert_true(p.known);
        assert_non_null(e = peer_with(&p, ka));
        assert_string_equal(e->state, "disconnected");
        assert_string_equal(e->space, "team");
        notes_sync_peers_clear(&p);
        t0 = now_ms();
        while (!gone && now_ms() - t0 < 5000) {
            state_of(a, &p);
            e = peer_with(&p, kb);
            gone = e && strcmp(e->state, "connected") != 0;
            notes_sync_peers_clear(&p);
            if (!gone)
                usleep(20000);
        }
        assert_true(gone);
    }
    fixture_child_stop(&sc, 3000);
    fixture_child_stop(&sa, 3000);
    {
        notes_sync_peers p;
        state_of(a, &p);
        assert_false(p.running);
        notes_sync_peers_clear(&p);
    }
    close(sniff);
    notes_sync_space_clear(&team);
    notes_sync_space_clear(&other);
    rmreplica(a);
    rmreplica(b);
    rmreplica(c);
}

/* B hears A; A never hears B (B announces where nobody listens). Whichever
 * key is the smaller, they connect: B dials at once, or after three
 * intervals when A's key was the one to dial. */
static void test_one_way(void **st)
{
    char *a = mkreplica("Ana"), *b = mkreplica("Bo");
    notes_sync_space team;
    static struct server sa, sb; /* the teardown reads them */
    uint8_t id[16], ka[32], kb[32];
    int pa, pb, pn, fa, fb, fn;
    double t0;
    (void)st;
    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    g_servers[0] = &sa;
    g_servers[1] = &sb;
    assert_int_equal(notes_sync_space_create(a, "team", &team), NOTES_OK);
    assert_int_equal(notes_sync_space_save(b, &team), NOTES_OK);
    make_note(a, "team", "# One way\n", id);
    key_of(a, ka);
    key_of(b, kb);
    fa = udp_socket(&pa);
    fb = udp_socket(&pb);
    fn = udp_socket(&pn);
    t0 = now_ms();
    server_start(&sa, a, pa, pb); /* A hears pa (nobody sends there) */
    server_start(&sb, b, pb, pn); /* B hears pb (A's announcements) */
    assert_true(fixture_wait_text(b, id, "# One way\n", 10000));
    printf("  one way (%s key dials): connected after %.0f ms\n",
           memcmp(kb, ka, 32) < 0 ? "B's smaller" : "B's larger, fallback",
           now_ms() - t0);
    assert_true(wait_connected(a, kb, 5000));
    assert_true(wait_connected(b, ka, 5000));
    {
        notes_sync_peers p;
        state_of(a, &p);
        assert_int_equal(p.npeers, 1);
        assert_string_equal(p.peers[0].found, "inbound");
        assert_int_equal(p.disc.accepted, 0);
        notes_sync_peers_clear(&p);
        state_of(b, &p);
        assert_string_equal(p.peers[0].found, "discovered");
        notes_sync_peers_clear(&p);
    }
    append(a, id, "back the other way\n");
    assert_true(fixture_wait_text(b, id, "back the other way\n", 5000));
    fixture_child_stop(&sb, 3000);
    fixture_child_stop(&sa, 3000);
    close(fa);
    close(fb);
    close(fn);
    notes_sync_space_clear(&team);
    rmreplica(a);
    rmreplica(b);
}

/* The state file: a damaged one is refused with a detail; none at all is
 * "no daemon, nothing known". */
static void test_state_file(void **st)
{
    char *h = mkreplica("Ana"), path[4200];
    notes_sync_peers p;
    FILE *f;
    static const char *const bad[] = {
        "",
        "notes-peers 2\n",
        "notes-peers 1\ndaemon 1 2 3 4 0 0\n", /* no discovery line */
        "notes-peers 1\ndaemon 1 2 3 4 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 11\n"
        "peer team - - sleeping manual 0 0 0 0 0\n",
        "notes-peers 1\ndaemon 1 2 3 4 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 11\n"
        "peer Team - - backoff manual 0 0 0 0 0\n",
        "notes-peers 1\ndaemon 1 2 3 4 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 11\n"
        "peer team 00 - backoff manual 0 0 0 0 0\n",
        "notes-peers 1\ndaemon 1 2 3 99999 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 11\n",
        "notes-peers 1\ndaemon 1 2 3 4 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 "
        "99999999999999999999999\n",
        "notes-peers 1\ndaemon 1 2 3 4 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 11",
        "notes-peers 1\ndaemon 1 2 3 4 0 0\ndiscovery 1 2 3 4 5 6 7 8 9 10 11\n"
        "peer team - - backoff manual 0 0 0 0 0 extra\n",
    };
    (void)st;
    assert_int_equal(notes_sync_peers_read(h, &p), NOTES_OK);
    assert_false(p.running);
    assert_false(p.known);
    assert_int_equal(p.npeers, 0);
    notes_sync_peers_clear(&p);
    snprintf(path, sizeof(path), "%s/peers", h);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(f = fopen(path, "w"));
        fputs(bad[i], f);
        fclose(f);
        assert_int_equal(notes_sync_peers_read(h, &p), NOTES_ECORRUPT);
        assert_non_null(strstr(notes_sync_last_detail(), "damaged"));
        assert_null(p.peers);
    }
    /* A valid one round-trips. */
    assert_non_null(f = fopen(path, "w"));
    fputs("notes-peers 1\ndaemon 42 1 2 7654 1 7655\n"
          "discovery 1 2 3 4 5 6 7 8 9 10 11\n"
          "peer team 0101010101010101010101010101010101010101010101010101010101"
          "010101 192.168.1.2:7654 connected discovered 5 6 7 8 1\n"
          "peer team - 10.0.0.1:7654 backoff manual 0 0 0 0 0\n", f);
    fclose(f);
    assert_int_equal(notes_sync_peers_read(h, &p), NOTES_OK);
    assert_true(p.known);
    assert_int_equal(p.pid, 42);
    assert_int_equal(p.port, 7654);
    assert_int_equal(p.discovery_port, 7655);
    assert_int_equal(p.disc.send_errors, 11);
    assert_int_equal(p.npeers, 2);
    assert_true(p.peers[0].key_known);
    assert_int_equal(p.peers[0].key[31], 1);
    assert_string_equal(p.peers[0].addr, "192.168.1.2:7654");
    assert_int_equal(p.peers[0].changes_received, 8);
    assert_false(p.peers[1].key_known);
    assert_string_equal(p.peers[1].state, "backoff");
    notes_sync_peers_clear(&p);
    rmreplica(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datagram),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_state_file),
        cmocka_unit_test_teardown(test_daemons, teardown),
        cmocka_unit_test_teardown(test_one_way, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
