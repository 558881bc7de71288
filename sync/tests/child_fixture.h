/*
 * child_fixture.h: a daemon (or a relay) of a test in a child process, for
 * the cmocka tests that run several: libnotes keeps no state shared between
 * processes, while two threads verifying at once would race in it. The
 * child runs body(arg) with fixture_stop set by SIGTERM and reports its
 * listening port through fixture_on_listen (an on_listen callback); the
 * parent waits at most 5 s for it. Header-only (static inline); include
 * after <cmocka.h>.
 */
#ifndef NOTES_SYNC_CHILD_FIXTURE_H
#define NOTES_SYNC_CHILD_FIXTURE_H

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync_fixture.h"

struct fixture_child {
    pid_t pid;
    int port;
};

static volatile int fixture_stop;  /* in the child: SIGTERM came */
static int fixture_portfd = -1;    /* in the child: where the port goes */

static inline void fixture_on_term(int sig)
{
    (void)sig;
    fixture_stop = 1;
}

/* An on_listen callback (notes_sync_serve_opts, notes_sync_relay_opts). */
static inline void fixture_on_listen(void *ud, int port)
{
    (void)ud;
    if (write(fixture_portfd, &port, sizeof(port)) != sizeof(port))
        _exit(3);
}

/* Fork; the child exits with body(arg)'s result. The parent returns once
 * the child said its port (s->port), or fails the test after 5 s. */
static inline void fixture_child_start(struct fixture_child *s,
                                       int (*body)(void *), void *arg)
{
    int fds[2];
    struct pollfd pf;
    memset(s, 0, sizeof(*s));
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = fixture_on_term;
        sigaction(SIGTERM, &sa, NULL);
        close(fds[0]);
        fixture_portfd = fds[1];
        _exit(body(arg));
    }
    close(fds[1]);
    pf.fd = fds[0];
    pf.events = POLLIN;
    if (poll(&pf, 1, 5000) == 1 &&
        read(fds[0], &s->port, sizeof(s->port)) == sizeof(s->port)) {
        close(fds[0]);
        return;
    }
    close(fds[0]);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    fail_msg("the child did not listen within 5 s");
}

/* SIGTERM; it must exit cleanly (status 0) within `ms`. */
static inline void fixture_child_stop(struct fixture_child *s, double ms)
{
    double t0 = now_ms();
    int st = 0;
    pid_t got = 0;
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    while (now_ms() - t0 < ms && (got = waitpid(s->pid, &st, WNOHANG)) == 0)
        usleep(5000);
    if (got == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        fail_msg("the child did not stop within %.0f ms", ms);
    }
    s->pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* SIGKILL: it vanishes mid-whatever, as a crash or a pulled cable. */
static inline void fixture_child_kill(struct fixture_child *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

#endif
