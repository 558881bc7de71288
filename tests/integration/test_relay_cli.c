/*
 * test_relay_cli.c: `notes relay` run as a user would (NOTES_BIN): no
 * replica, the bound address on stdout, two members paired through it, a
 * refusal said on stderr, SIGTERM ends it with 0; bad options exit 1, an
 * address in use exits 3. Members are raw sockets on 127.0.0.1; every wait
 * is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 5000

static const char *bin;

struct proc {
    pid_t pid;
    int out, err; /* its stdout and stderr */
};

/* Start notes with args (NULL-terminated), NOTES_HOME an empty folder
 * that does not exist: the relay needs no replica. */
static struct proc start(const char *arg0, ...)
{
    struct proc p;
    int o[2], e[2];
    const char *argv[16];
    int n = 0;
    va_list ap;
    argv[n++] = bin;
    argv[n++] = arg0;
    va_start(ap, arg0);
    while (n < 15 && (argv[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(pipe(o), 0);
    assert_int_equal(pipe(e), 0);
    p.pid = fork();
    assert_true(p.pid >= 0);
    if (p.pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        char *args[16];
        for (int i = 0; i <= n; i++) /* execv wants them writable */
            args[i] = argv[i] ? strdup(argv[i]) : NULL;
        setenv("NOTES_HOME", "/nonexistent/notes-relay-test", 1);
        execv(bin, args);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    p.out = o[0];
    p.err = e[0];
    return p;
}

/* Read fd until `needle` shows up or it ends (bounded): the text read. */
static char *read_until(int fd, const char *needle, char *buf, size_t cap)
{
    size_t n = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    buf[0] = 0;
    while (n + 1 < cap && !strstr(buf, needle)) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t k;
        long el;
        clock_gettime(CLOCK_MONOTONIC, &t);
        el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el >= WAIT_MS || poll(&pf, 1, (int)(WAIT_MS - el)) <= 0)
            break;
        if ((k = read(fd, buf + n, cap - 1 - n)) <= 0)
            break;
        n += (size_t)k;
        buf[n] = 0;
    }
    return buf;
}

/* Wait for the process (bounded): its exit status, -1 if it did not end. */
static int reap(pid_t pid)
{
    for (int i = 0; i < WAIT_MS / 10; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        (void)poll(NULL, 0, 10); /* the pace of the check, not a wait */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int dial(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void put(int fd, uint8_t type, const void *p, size_t n)
{
    uint8_t m[257];
    m[0] = type;
    m[1] = (uint8_t)n;
    memcpy(m + 2, p, n);
    assert_int_equal(send(fd, m, n + 2, MSG_NOSIGNAL), (ssize_t)(n + 2));
}

static size_t get_n(int fd, uint8_t *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t k;
        if (poll(&pf, 1, WAIT_MS) != 1 || (k = recv(fd, b + got, n - got, 0)) <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* The next message: its type; payload into p (255 bytes). */
static int get_msg(int fd, uint8_t *p, size_t *len)
{
    uint8_t h[2];
    if (get_n(fd, h, 2) != 2 || get_n(fd, p, h[1]) != h[1])
        return -1;
    *len = h[1];
    return h[0];
}

static void test_relay_runs(void **state)
{
    char buf[4096];
    struct proc p;
    int port = 0, a, b, da, db, bad, st;
    uint8_t reg[48], con[64], pl[255];
    size_t n;
    (void)state;
    p = start("relay", "--listen", "127.0.0.1:0", "--max-per-addr", "16", NULL);
    read_until(p.out, "\n", buf, sizeof(buf));
    assert_int_equal(sscanf(buf, "relay listening on 127.0.0.1:%d", &port), 1);
    assert_true(port > 0);

    /* Two members of one tag meet; a's data connection reaches b's. */
    memset(reg, 0x33, 32);
    memset(reg + 32, 1, 16);
    a = dial(port);
    put(a, 0x01, reg, 48);
    assert_int_equal(get_msg(a, pl, &n), 0x81);
    memset(reg + 32, 2, 16);
    b = dial(port);
    put(b, 0x01, reg, 48);
    assert_int_equal(get_msg(b, pl, &n), 0x81);
    assert_int_equal(get_msg(b, pl, &n), 0x82); /* a is present */
    assert_int_equal(get_msg(a, pl, &n), 0x82); /* b arrived */
    memcpy(con, reg, 32);
    memset(con + 32, 1, 16);
    memset(con + 48, 2, 16);
    da = dial(port);
    put(da, 0x02, con, 64);
    assert_int_equal(get_msg(b, pl, &n), 0x84); /* INCOMING */
    db = dial(port);
    put(db, 0x03, pl, 16);
    assert_int_equal(get_msg(da, pl, &n), 0x85);
    assert_int_equal(get_msg(db, pl, &n), 0x85);
    assert_int_equal(send(da, "hello", 5, MSG_NOSIGNAL), 5);
    assert_int_equal(get_n(db, pl, 5), 5);
    assert_memory_equal(pl, "hello", 5);

    /* A stranger's garbage: REFUSED, and a line on stderr. */
    bad = dial(port);
    put(bad, 0x7e, "x", 1);
    assert_int_equal(get_msg(bad, pl, &n), 0x86);
    read_until(p.err, "unknown message", buf, sizeof(buf));
    assert_non_null(strstr(buf, "refused 127.0.0.1:"));
    assert_non_null(strstr(buf, "paired 127.0.0.1:"));

    /* SIGTERM: the relay closes everything and exits 0. */
    kill(p.pid, SIGTERM);
    st = reap(p.pid);
    assert_int_equal(st, 0);
    assert_int_equal(get_n(db, pl, 1), 0); /* closed */
    read_until(p.err, "stopped", buf, sizeof(buf));
    assert_non_null(strstr(buf, "1 pairings"));
    close(a);
    close(b);
    close(da);
    close(db);
    close(bad);
    close(p.out);
    close(p.err);
}

static void test_relay_errors(void **state)
{
    char buf[4096], addr[32];
    struct proc p, q;
    int port = 0;
    (void)state;
    /* Bad options: usage, exit 1. */
    static const char *bad[][3] = {
        {"--max-conns", "0", NULL}, {"--rate", "-5", NULL},
        {"--listen", "nonsense", NULL}, {"--bogus", NULL, NULL},
        {"--max-per-tag", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = start("relay", bad[i][0], bad[i][1], bad[i][2], NULL);
        assert_int_equal(reap(p.pid), 1);
        read_until(p.err, "\n", buf, sizeof(buf));
        assert_true(strstr(buf, "usage") || strstr(buf, "address"));
        close(p.out);
        close(p.err);
    }
    /* An address in use: said, exit 3. */
    p = start("relay", "--listen", "127.0.0.1:0", NULL);
    read_until(p.out, "\n", buf, sizeof(buf));
    assert_int_equal(sscanf(buf, "relay listening on 127.0.0.1:%d", &port), 1);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    q = start("relay", "--listen", addr, NULL);
    assert_int_equal(reap(q.pid), 3);
    read_until(q.err, "\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "in use"));
    close(q.out);
    close(q.err);
    kill(p.pid, SIGINT);
    assert_int_equal(reap(p.pid), 0);
    close(p.out);
    close(p.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_runs),
        cmocka_unit_test(test_relay_errors),
    };
    signal(SIGPIPE, SIG_IGN);
    bin = getenv("NOTES_BIN");
    if (!bin) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
