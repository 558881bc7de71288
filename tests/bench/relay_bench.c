/*
 * relay_bench.c: notes-bench-relay, the relay figures of issue 17, one JSON
 * object per line on stdout. Not a timed test: figures to read.
 *
 *   notes-bench-relay [--members N] [--pairings N] [--mib N]
 *
 * The relay (notes_sync_relay) runs in a child process on 127.0.0.1:0, so
 * its memory and CPU are its own; this process plays the members with raw
 * sockets. The child answers each request on a pipe with its getrusage
 * (user + system CPU) and its resident set (/proc/self/statm).
 *
 *   idle        RSS of the relay before anyone, and with N members (1,000)
 *               registered on control connections (10 per tag) and idle:
 *               bytes per member
 *   pairings    RSS with N (200) pairings made among them (two data
 *               connections each, idle): bytes per pairing
 *   forward     N MiB (256) through one pairing, one direction, rate
 *               limit off: CPU seconds of the relay per MiB, and MiB/s
 *
 * All members come from 127.0.0.1, so the relay's per-address and
 * connection limits are raised for the run; everything else is default.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "notes_sync.h"
#include "relay_wire.h"

struct usage {
    double cpu_s;  /* user + system */
    long rss_kib;  /* resident now */
};

/* ---- the child: the relay ---- */

static int g_port_fd, g_req_fd, g_rep_fd;

static void on_listen(void *ud, int port)
{
    (void)ud;
    if (write(g_port_fd, &port, sizeof(port)) != sizeof(port))
        _exit(3);
}

static void measure(struct usage *u)
{
    struct rusage ru;
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    getrusage(RUSAGE_SELF, &ru);
    u->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    u->rss_kib = rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void on_req(uv_poll_t *p, int status, int events)
{
    char b;
    struct usage u;
    (void)events;
    if (status < 0 || read(g_req_fd, &b, 1) != 1) {
        uv_poll_stop(p); /* the parent is gone: stop */
        uv_stop(p->loop);
        return;
    }
    measure(&u);
    if (write(g_rep_fd, &u, sizeof(u)) != sizeof(u))
        _exit(3);
}

static int relay_child(void)
{
    uv_loop_t loop;
    uv_poll_t req;
    notes_sync_relay *r;
    notes_sync_relay_opts o = {0};
    signal(SIGPIPE, SIG_IGN);
    o.listen = "127.0.0.1:0";
    o.max_conns = 8192;
    o.max_per_addr = 8192;
    o.rate = (size_t)1 << 40;
    o.burst = (size_t)1 << 40;
    o.on_listen = on_listen;
    if (uv_loop_init(&loop) || notes_sync_relay_start(&loop, &o, &r))
        return 3;
    uv_poll_init(&loop, &req, g_req_fd);
    uv_poll_start(&req, UV_READABLE, on_req);
    uv_run(&loop, UV_RUN_DEFAULT);
    return 0;
}

/* ---- the parent: members ---- */

static int g_port, g_to_child, g_from_child;

static struct usage ask(void)
{
    struct usage u;
    char b = 'm';
    if (write(g_to_child, &b, 1) != 1 || read(g_from_child, &u, sizeof(u)) != sizeof(u)) {
        fprintf(stderr, "notes-bench-relay: the relay process is gone\n");
        exit(3);
    }
    return u;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("notes-bench-relay: connect");
        exit(3);
    }
    return fd;
}

static void put(int fd, uint8_t type, const void *p, size_t n)
{
    uint8_t m[RELAY_MSG_MAX];
    size_t len = sync_relay_msg(m, type, p, n);
    if (send(fd, m, len, MSG_NOSIGNAL) != (ssize_t)len) {
        perror("notes-bench-relay: send");
        exit(3);
    }
}

/* The next message of `want` type (others skipped), within 10 s. */
static void wait_msg(int fd, uint8_t want, uint8_t *payload)
{
    for (;;) {
        uint8_t h[2], p[255];
        size_t got = 0, need = 2;
        uint8_t *dst = h;
        while (got < need) {
            struct pollfd pf = {fd, POLLIN, 0};
            ssize_t k;
            if (poll(&pf, 1, 10000) != 1 || (k = recv(fd, dst + got, need - got, 0)) <= 0) {
                fprintf(stderr, "notes-bench-relay: no message 0x%02x\n", want);
                exit(3);
            }
            got += (size_t)k;
            if (dst == h && got == 2) {
                dst = p;
                got = 0;
                need = h[1];
                if (!need)
                    break;
            }
        }
        if (h[0] == RELAY_REFUSED) {
            fprintf(stderr, "notes-bench-relay: refused: %.*s\n", h[1], (char *)p);
            exit(3);
        }
        if (h[0] == want) {
            if (payload)
                memcpy(payload, p, h[1]);
            return;
        }
    }
}

static void tag_of(int i, uint8_t tag[RELAY_TAG_LEN])
{
    memset(tag, 0, RELAY_TAG_LEN);
    memcpy(tag, &i, sizeof(i));
}

static void id_of(int i, uint8_t id[RELAY_ID_LEN])
{
    memset(id, 0xa5, RELAY_ID_LEN);
    memcpy(id, &i, sizeof(i));
}

/* Pair member a with b (same tag): OUT the two data connections. */
static void pair(int tagno, int a, int b, const int *ctl, int *da, int *db)
{
    uint8_t p[RELAY_TAG_LEN + 2 * RELAY_ID_LEN], in[32];
    tag_of(tagno, p);
    id_of(a, p + RELAY_TAG_LEN);
    id_of(b, p + RELAY_TAG_LEN + RELAY_ID_LEN);
    *da = dial();
    put(*da, RELAY_CONNECT, p, sizeof(p));
    wait_msg(ctl[b], RELAY_INCOMING, in);
    *db = dial();
    put(*db, RELAY_ACCEPT, in, 16);
    wait_msg(*da, RELAY_PAIRED, NULL);
    wait_msg(*db, RELAY_PAIRED, NULL);
}

int main(int argc, char **argv)
{
    int members = 1000, pairings = 200, mib = 256, per_tag = 10;
    int port_pipe[2], req[2], rep[2];
    struct rlimit rl;
    pid_t pid;
    struct usage u0, u1, u2, u3;
    int *ctl, *data;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--members") == 0)
            members = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--pairings") == 0)
            pairings = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--mib") == 0)
            mib = atoi(argv[i + 1]);
    }
    if (members < 2 || pairings < 1 || pairings > members / 2 || mib < 1) {
        fprintf(stderr, "usage: notes-bench-relay [--members N] [--pairings N<=N/2] [--mib N]\n");
        return 1;
    }
    /* Both processes hold a socket per connection. */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(members + 2 * pairings) * 2 + 64) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 ||
            rl.rlim_cur < (rlim_t)(members + 2 * pairings) + 64) {
            fprintf(stderr, "notes-bench-relay: RLIMIT_NOFILE too low\n");
            return 3;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (pipe(port_pipe) || pipe(req) || pipe(rep))
        return 3;
    if ((pid = fork()) < 0)
        return 3;
    if (pid == 0) {
        g_port_fd = port_pipe[1];
        g_req_fd = req[0];
        g_rep_fd = rep[1];
        close(port_pipe[0]);
        close(req[1]);
        close(rep[0]);
        _exit(relay_child());
    }
    close(port_pipe[1]);
    close(req[0]);
    close(rep[1]);
    g_to_child = req[1];
    g_from_child = rep[0];
    if (read(port_pipe[0], &g_port, sizeof(g_port)) != sizeof(g_port)) {
        fprintf(stderr, "notes-bench-relay: the relay did not start\n");
        return 3;
    }
    u0 = ask();

    /* Members register, 10 per tag; each waits for its WELCOME. */
    ctl = calloc((size_t)members, sizeof(*ctl));
    data = calloc((size_t)pairings * 2, sizeof(*data));
    if (!ctl || !data)
        return 3;
    for (int i = 0; i < members; i++) {
        uint8_t p[RELAY_TAG_LEN + RELAY_ID_LEN];
        tag_of(i / per_tag, p);
        id_of(i, p + RELAY_TAG_LEN);
        ctl[i] = dial();
        put(ctl[i], RELAY_REGISTER, p, sizeof(p));
        wait_msg(ctl[i], RELAY_WELCOME, NULL);
    }
    u1 = ask();
    printf("{\"bench\":\"relay_idle\",\"members\":%d,\"members_per_tag\":%d,"
           "\"rss_start_kib\":%ld,\"rss_kib\":%ld,\"bytes_per_member\":%.0f}\n",
           members, per_tag, u0.rss_kib, u1.rss_kib,
           (double)(u1.rss_kib - u0.rss_kib) * 1024.0 / members);
    fflush(stdout);

    /* Pairings: members 2k and 2k+1 of a tag (per_tag is even). */
    for (int k = 0; k < pairings; k++)
        pair((2 * k) / per_tag, 2 * k, 2 * k + 1, ctl, &data[2 * k], &data[2 * k + 1]);
    u2 = ask();
    printf("{\"bench\":\"relay_pairings\",\"pairings\":%d,\"rss_kib\":%ld,"
           "\"bytes_per_pairing\":%.0f}\n",
           pairings, u2.rss_kib, (double)(u2.rss_kib - u1.rss_kib) * 1024.0 / pairings);
    fflush(stdout);

    /* Forwarding: mib MiB from data[0] to data[1]. */
    {
        static uint8_t buf[256 << 10];
        size_t total = (size_t)mib << 20, sent = 0, got = 0;
        double t0 = now_s(), el;
        memset(buf, 0x42, sizeof(buf));
        fcntl(data[0], F_SETFL, O_NONBLOCK);
        while (got < total) {
            struct pollfd pf[2] = {{data[0], sent < total ? POLLOUT : 0, 0},
                                   {data[1], POLLIN, 0}};
            ssize_t k;
            if (poll(pf, 2, 10000) <= 0) {
                fprintf(stderr, "notes-bench-relay: forwarding stalled\n");
                return 3;
            }
            if ((pf[0].revents & POLLOUT) &&
                (k = send(data[0], buf, total - sent < sizeof(buf) ? total - sent : sizeof(buf),
                          MSG_NOSIGNAL)) > 0)
                sent += (size_t)k;
            if ((pf[1].revents & POLLIN) && (k = recv(data[1], buf, sizeof(buf), 0)) > 0)
                got += (size_t)k;
        }
        el = now_s() - t0;
        u3 = ask();
        printf("{\"bench\":\"relay_forward\",\"mib\":%d,\"seconds\":%.3f,"
               "\"mib_per_s\":%.1f,\"relay_cpu_s\":%.3f,\"relay_cpu_ms_per_mib\":%.3f,"
               "\"rss_kib\":%ld}\n",
               mib, el, mib / el, u3.cpu_s - u2.cpu_s,
               (u3.cpu_s - u2.cpu_s) * 1000.0 / mib, u3.rss_kib);
        fflush(stdout);
    }

    for (int i = 0; i < members; i++)
        close(ctl[i]);
    for (int i = 0; i < 2 * pairings; i++)
        close(data[i]);
    close(g_to_child); /* the child's loop stops on the closed pipe */
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    free(ctl);
    free(data);
    return 0;
}
