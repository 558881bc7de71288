/* netprobe: a tiny TCP probe for the network-namespace NAT test
 * (tests/net/nat.sh). It checks the networks themselves, independently of
 * notes: what address a server sees for a client behind each router
 * (port preserved or not), whether an unsolicited connection gets in, and
 * whether a TCP simultaneous open (the relay's hole punch) passes a pair
 * of NATs.
 *
 *   netprobe serve PORT
 *       listen on 0.0.0.0:PORT; print "listening" once bound; for each
 *       connection write "IP:PORT\n" (the address it came from) and close.
 *   netprobe connect HOST PORT [LPORT] [TIMEOUT_MS]
 *       connect (from local port LPORT if not 0); print
 *       "local=LPORT observed=IP:PORT". Exit 0; 2 on timeout; 1 on error.
 *   netprobe punch SERVER_HOST SERVER_PORT LPORT MY_FILE PEER_FILE TIMEOUT_MS
 *       connect from LPORT to the observing server and keep that
 *       connection (its NAT mapping) open; write the observed address to
 *       MY_FILE; wait for PEER_FILE (the other side's observed address);
 *       then connect from the same LPORT to it until TIMEOUT_MS, both
 *       sides at once (TCP simultaneous open). Prints "punch ok" (exit 0)
 *       or "punch failed: why" (exit 1).
 *
 * Every wait is bounded (poll with a deadline), so a dropped packet makes
 * the probe fail in time instead of hanging the test. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_port(const char *s, int allow_zero) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < (allow_zero ? 0 : 1) || v > 65535) {
        fprintf(stderr, "netprobe: bad port '%s'\n", s);
        exit(1);
    }
    return (int)v;
}

static int parse_addr(const char *host, int port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void fmt_addr(const struct sockaddr_in *sa, char *out, size_t n) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
}

/* A socket bound to LPORT that may share it with the other sockets of
 * this probe: the relay connection and the punched one use the same
 * local port, as notes' hole punch does. */
static int bound_socket(int lport) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (lport > 0) {
        struct sockaddr_in la;
        memset(&la, 0, sizeof(la));
        la.sin_family = AF_INET;
        la.sin_port = htons((unsigned short)lport);
        if (bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Connects fd to sa before the deadline: 0, -2 on timeout, -1 on error
 * (errno set; ECONNREFUSED when a RST came back). */
static int connect_until(int fd, const struct sockaddr_in *sa, long long deadline) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) return 0;
    if (errno != EINPROGRESS) return -1;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return -2;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return -2;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            errno = err;
            return -1;
        }
        fcntl(fd, F_SETFL, fl);
        return 0;
    }
}

/* Reads one line (without the newline) before the deadline: 0 or -1. */
static int read_line(int fd, char *buf, size_t n, long long deadline) {
    size_t got = 0;
    while (got + 1 < n) {
        long long left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        ssize_t k = read(fd, buf + got, 1);
        if (k <= 0) return -1;
        if (buf[got] == '\n') break;
        got++;
    }
    buf[got] = '\0';
    return 0;
}

static int cmd_serve(int port) {
    int fd = bound_socket(port);
    if (fd < 0 || listen(fd, 64) < 0) {
        fprintf(stderr, "netprobe: listen on %d: %s\n", port, strerror(errno));
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        struct sockaddr_in from = {0};
        socklen_t fl = sizeof(from);
        int c = accept(fd, (struct sockaddr *)&from, &fl);
        if (c < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        char line[64];
        fmt_addr(&from, line, sizeof(line));
        size_t len = strlen(line);
        line[len++] = '\n';
        if (write(c, line, len) < 0) { /* the client went away: nothing to do */
        }
        close(c);
    }
}

static int cmd_connect(const char *host, int port, int lport, int timeout_ms) {
    struct sockaddr_in sa;
    if (parse_addr(host, port, &sa) < 0) {
        fprintf(stderr, "netprobe: bad address %s\n", host);
        return 1;
    }
    long long deadline = now_ms() + timeout_ms;
    int fd = bound_socket(lport);
    if (fd < 0) {
        fprintf(stderr, "netprobe: bind %d: %s\n", lport, strerror(errno));
        return 1;
    }
    int r = connect_until(fd, &sa, deadline);
    if (r == -2) {
        printf("timeout\n");
        return 2;
    }
    if (r < 0) {
        printf("error: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_in la = {0};
    socklen_t ll = sizeof(la);
    getsockname(fd, (struct sockaddr *)&la, &ll);
    char obs[64];
    if (read_line(fd, obs, sizeof(obs), deadline) < 0) {
        printf("timeout\n");
        return 2;
    }
    printf("local=%u observed=%s\n", (unsigned)ntohs(la.sin_port), obs);
    close(fd);
    return 0;
}

/* Splits "IP:PORT" into sa: 0 or -1. */
static int parse_hostport(char *s, struct sockaddr_in *sa) {
    char *colon = strrchr(s, ':');
    if (!colon) return -1;
    *colon = '\0';
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p < 1 || p > 65535) return -1;
    return parse_addr(s, (int)p, sa);
}

static int cmd_punch(const char *host, int port, int lport, const char *my_file,
                     const char *peer_file, int timeout_ms) {
    struct sockaddr_in srv;
    if (parse_addr(host, port, &srv) < 0) {
        fprintf(stderr, "netprobe: bad address %s\n", host);
        return 1;
    }
    long long deadline = now_ms() + timeout_ms;
    int ctl = bound_socket(lport);
    if (ctl < 0 || connect_until(ctl, &srv, deadline) != 0) {
        printf("punch failed: cannot reach the observer\n");
        return 1;
    }
    char obs[64];
    if (read_line(ctl, obs, sizeof(obs), deadline) < 0) {
        printf("punch failed: the observer said nothing\n");
        return 1;
    }
    /* Written whole, then renamed: the other side never reads half. */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", my_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", obs) < 0 || fclose(f) != 0 || rename(tmp, my_file) < 0) {
        printf("punch failed: cannot write %s\n", my_file);
        return 1;
    }
    char peer[64] = "";
    for (;;) {
        FILE *pf = fopen(peer_file, "r");
        if (pf) {
            char *ok = fgets(peer, sizeof(peer), pf);
            fclose(pf);
            if (ok) break;
        }
        if (now_ms() >= deadline) {
            printf("punch failed: no peer address\n");
            return 1;
        }
        struct timespec ts = {0, 20 * 1000000L}; /* polling a file, bounded */
        nanosleep(&ts, NULL);
    }
    peer[strcspn(peer, "\n")] = '\0';
    struct sockaddr_in pa;
    if (parse_hostport(peer, &pa) < 0) {
        printf("punch failed: bad peer address '%s'\n", peer);
        return 1;
    }
    /* Retry until the deadline: a SYN that reaches the peer before it
     * has its own SYN out meets a RST (no listener) or the peer NAT's
     * drop; the next attempt goes out after the peer's mapping exists. */
    const char *why = "timeout";
    while (now_ms() < deadline) {
        int fd = bound_socket(lport);
        if (fd < 0) {
            why = "bind";
            break;
        }
        long long attempt = now_ms() + 2000;
        int r = connect_until(fd, &pa, attempt < deadline ? attempt : deadline);
        if (r == 0) {
            /* Prove the path carries bytes both ways. */
            const char hello[] = "punch\n";
            char back[16];
            if (write(fd, hello, sizeof(hello) - 1) == (ssize_t)(sizeof(hello) - 1) &&
                read_line(fd, back, sizeof(back), deadline + 2000) == 0 &&
                strcmp(back, "punch") == 0) {
                printf("punch ok\n");
                close(fd);
                close(ctl);
                return 0;
            }
            why = "no bytes through";
        } else if (r == -1) {
            why = strerror(errno);
            struct timespec ts = {0, 100 * 1000000L}; /* after a RST, retry shortly */
            nanosleep(&ts, NULL);
        }
        close(fd);
    }
    printf("punch failed: %s\n", why);
    close(ctl);
    return 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return cmd_serve(parse_port(argv[2], 0));
    if (argc >= 4 && argc <= 6 && strcmp(argv[1], "connect") == 0)
        return cmd_connect(argv[2], parse_port(argv[3], 0),
                           argc > 4 ? parse_port(argv[4], 1) : 0,
                           argc > 5 ? atoi(argv[5]) : 3000);
    if (argc == 8 && strcmp(argv[1], "punch") == 0)
        return cmd_punch(argv[2], parse_port(argv[3], 0), parse_port(argv[4], 0), argv[5],
                         argv[6], atoi(argv[7]));
    fprintf(stderr, "usage: netprobe serve PORT | connect HOST PORT [LPORT] [TIMEOUT_MS] |\n"
                    "       punch HOST PORT LPORT MY_FILE PEER_FILE TIMEOUT_MS\n");
    return 1;
}
