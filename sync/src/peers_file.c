/*
 * peers_file.c: the daemon's state file of known peers ($NOTES_HOME/peers)
 * and its lock ($NOTES_HOME/serve.lock): written by the hub, read by
 * `notes peers` (notes_sync_peers_read).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "transport_internal.h"

/* ---- the peers state file ---- */
/*
 * $NOTES_HOME/serve.lock: the running daemon holds a write lock on it (an
 * open-file-description lock where the system has them, so that a reader
 * in the same process neither sees its own lock as absent nor drops it by
 * closing its descriptor). A reader tests the lock without taking it: a
 * crashed daemon's lock is gone with it, so "running" is never stale.
 *
 * $NOTES_HOME/peers: text, one record per line, fields separated by one
 * space (none contains a space):
 *   notes-peers 1
 *   daemon PID STARTED_MS UPDATED_MS TCP_PORT DISCOVERY UDP_PORT
 *   discovery RECEIVED ACCEPTED OWN FOREIGN MALFORMED STALE REPLAYED
 *             RATE_LIMITED FULL SENT SEND_ERRORS
 *   peer SPACE KEY ADDR STATE FOUND LAST_SEEN_MS LAST_SYNC_MS SENT
 *        RECEIVED SESSIONS
 * KEY is 64 hex digits or "-", ADDR "HOST:PORT" or "-"; times are Unix ms
 * (0: never). Written to peers.tmp (mode 0600; the daemon keeps the next
 * one open ahead) and renamed over peers.
 */
#define PEERS_FILE "peers"
#define LOCK_FILE "serve.lock"
#define PEERS_MAX_BYTES (1u << 20)
#define PEERS_MAX 4096

struct sync_peers_lock {
    int fd;           /* serve.lock, locked */
    int tmpfd;        /* the next peers.tmp, already open, or -1 */
    char path[4200], tmp[4200];
};

/* The next temporary file, opened ahead: a write then needs no new
 * descriptor, so the daemon's count of open files stays flat (a server
 * at its connection limit does not grow by one at each status write). */
static void open_tmp(struct sync_peers_lock *l)
{
    l->tmpfd = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

static int path_in(char *out, size_t n, const char *home, const char *name)
{
    if ((size_t)snprintf(out, n, "%s/%s", home, name) >= n) {
        notes_sync__detail("path too long: '%s'", home);
        return NOTES_EINVAL;
    }
    return NOTES_OK;
}

int sync_peers_lock(const char *home, struct sync_peers_lock **out)
{
    char path[4200];
    struct sync_peers_lock *l;
    int fd, rc, e;
    *out = NULL;
    if ((rc = path_in(path, sizeof(path), home, LOCK_FILE)))
        return rc;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        notes_sync__detail("cannot open '%s': %s", path, strerror(errno));
        return NOTES_EIO;
    }
#ifdef F_OFD_SETLK
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    e = fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
#else
    e = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
#endif
    if (e) {
        close(fd);
        if (e == EAGAIN || e == EACCES || e == EWOULDBLOCK) {
            notes_sync__detail("another daemon serves '%s' (it holds '%s')",
                               home, path);
            return NOTES_ELOCKED;
        }
        notes_sync__detail("cannot lock '%s': %s", path, strerror(e));
        return NOTES_EIO;
    }
    if (!(l = malloc(sizeof(*l)))) {
        close(fd);
        return NOTES_ENOMEM;
    }
    l->fd = fd;
    if ((rc = path_in(l->path, sizeof(l->path), home, PEERS_FILE)) ||
        (rc = path_in(l->tmp, sizeof(l->tmp), home, PEERS_FILE ".tmp"))) {
        close(fd);
        free(l);
        return rc;
    }
    open_tmp(l);
    *out = l;
    return NOTES_OK;
}

void sync_peers_unlock(struct sync_peers_lock *l)
{
    if (!l)
        return;
    if (l->tmpfd >= 0) {
        close(l->tmpfd);
        unlink(l->tmp);
    }
    close(l->fd); /* releases the lock */
    free(l);
}

/* 1 if a daemon holds home's lock now. */
static int daemon_running(const char *home)
{
    char path[4200];
    int fd, running = 0;
    if (path_in(path, sizeof(path), home, LOCK_FILE) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
#ifdef F_OFD_GETLK
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_GETLK, &fl) == 0)
        running = fl.l_type != F_UNLCK;
#else
    /* flock has no test: take a shared lock for an instant. */
    if (flock(fd, LOCK_SH | LOCK_NB) != 0)
        running = errno == EWOULDBLOCK;
    else
        flock(fd, LOCK_UN);
#endif
    close(fd);
    return running;
}

int sync_peers_write(struct sync_peers_lock *l, const notes_sync_peers *p)
{
    const notes_sync_discovery_stats *s = &p->disc;
    char *buf = NULL;
    size_t len = 0, off = 0;
    FILE *f;
    int fd, bad, e = 0;
    /* Formatted in memory (open_memstream holds no descriptor). */
    if (!(f = open_memstream(&buf, &len)))
        return NOTES_ENOMEM;
    fprintf(f, "notes-peers 1\ndaemon %ld %llu %llu %d %d %d\n", p->pid,
            (unsigned long long)p->started_ms,
            (unsigned long long)p->updated_ms, p->port, p->discovery ? 1 : 0,
            p->discovery_port);
    fprintf(f, "discovery %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
               "%llu\n",
            (unsigned long long)s->received, (unsigned long long)s->accepted,
            (unsigned long long)s->own, (unsigned long long)s->foreign,
            (unsigned long long)s->malformed, (unsigned long long)s->stale,
            (unsigned long long)s->replayed,
            (unsigned long long)s->rate_limited, (unsigned long long)s->full,
            (unsigned long long)s->sent, (unsigned long long)s->send_errors);
    for (size_t i = 0; i < p->npeers && i < PEERS_MAX; i++) {
        const notes_sync_peer *q = &p->peers[i];
        char key[65];
        if (q->key_known)
            notes__hex(key, q->key, 32);
        else
            snprintf(key, sizeof(key), "-");
        fprintf(f, "peer %s %s %s %s %s %llu %llu %llu %llu %u %s %s\n",
                q->space, key, q->addr[0] ? q->addr : "-", q->state, q->found,
                (unsigned long long)q->last_seen_ms,
                (unsigned long long)q->last_sync_ms,
                (unsigned long long)q->changes_sent,
                (unsigned long long)q->changes_received, q->sessions,
                q->path[0] ? q->path : "-", q->relay[0] ? q->relay : "-");
    }
    for (size_t i = 0; i < p->nrelays && i < NOTES_SYNC_RELAYS_MAX; i++)
        fprintf(f, "relay %s %d\n", p->relays[i], p->relay_up[i] ? 1 : 0);
    bad = ferror(f);
    if (fclose(f) != 0 || bad || !buf) {
        free(buf);
        return NOTES_ENOMEM;
    }
    /* Into peers.tmp, renamed over peers. No fsync: this is a status
     * report rewritten often, not data; after a crash a torn file is
     * refused by the reader and the next daemon rewrites it. */
    if ((fd = l->tmpfd) < 0)
        fd = open(l->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    l->tmpfd = -1;
    if (fd < 0 || ftruncate(fd, 0) != 0)
        e = errno;
    while (!e && off < len) {
        ssize_t w = pwrite(fd, buf + off, len - off, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            e = w < 0 ? errno : EIO;
        else
            off += (size_t)w;
    }
    if (!e && rename(l->tmp, l->path) != 0)
        e = errno;
    free(buf);
    if (fd >= 0)
        close(fd);
    if (e) {
        unlink(l->tmp);
        notes_sync__detail("cannot write '%s': %s", l->path, strerror(e));
    }
    open_tmp(l);
    return e ? NOTES_EIO : NOTES_OK;
}

/* ---- reading it back (strictly: the file is ours, but it may be torn) ---- */

struct rd {
    char *p, *end;
};

/* The next space-separated field of the current line; NULL at its end. */
static char *field(char **line)
{
    char *s = *line, *e;
    if (!s || !*s)
        return NULL;
    e = strchr(s, ' ');
    if (e) {
        *e = '\0';
        *line = e + 1;
    } else {
        *line = s + strlen(s);
    }
    return *s ? s : NULL;
}

static int num(char **line, uint64_t *v)
{
    char *s = field(line);
    uint64_t x = 0;
    if (!s || strlen(s) > 20)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = x;
    return 0;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return 0;
    return 1;
}

static int parse_peer(char *line, notes_sync_peer *e)
{
    static const char *const states[] = {"connected", "dialing", "backoff",
                                         "discovered", "disconnected", NULL};
    static const char *const founds[] = {"manual", "discovered", "inbound",
                                         "relay", NULL};
    char *sp = field(&line), *key = field(&line), *addr = field(&line),
         *st = field(&line), *fo = field(&line);
    uint64_t sessions;
    memset(e, 0, sizeof(*e));
    if (!sp || !key || !addr || !st || !fo || strlen(sp) > NOTES_SPACE_NAME_MAX ||
        strlen(addr) > NOTES_ADDR_MAX || !one_of(st, states) ||
        !one_of(fo, founds))
        return -1;
    for (const char *c = sp; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return -1;
    if (!printable(addr))
        return -1;
    snprintf(e->space, sizeof(e->space), "%s", sp);
    if (strcmp(key, "-") != 0) {
        if (notes_sync__unhex_lower(e->key, 32, key, strlen(key)) != 0)
            return -1;
        e->key_known = 1;
    }
    if (strcmp(addr, "-") != 0)
        snprintf(e->addr, sizeof(e->addr), "%s", addr);
    snprintf(e->state, sizeof(e->state), "%s", st);
    snprintf(e->found, sizeof(e->found), "%s", fo);
    if (num(&line, &e->last_seen_ms) || num(&line, &e->last_sync_ms) ||
        num(&line, &e->changes_sent) || num(&line, &e->changes_received) ||
        num(&line, &sessions) || sessions > UINT32_MAX)
        return -1;
    e->sessions = (uint32_t)sessions;
    /* The path and the relay (since relays; a file without them is from a
     * daemon before them). */
    if (*line) {
        static const char *const paths[] = {"-", "direct", "relay", NULL};
        char *pa = field(&line), *re = field(&line);
        if (!pa || !re || *line || !one_of(pa, paths) || !printable(re) ||
            strlen(re) > NOTES_ADDR_MAX)
            return -1;
        if (strcmp(pa, "-") != 0)
            snprintf(e->path, sizeof(e->path), "%s", pa);
        if (strcmp(re, "-") != 0)
            snprintf(e->relay, sizeof(e->relay), "%s", re);
    }
    return 0;
}

void notes_sync_peers_clear(notes_sync_peers *p)
{
    if (!p)
        return;
    free(p->peers);
    p->peers = NULL;
    p->npeers = 0;
}

int notes_sync_peers_read(const char *home, notes_sync_peers *out)
{
    char path[4200];
    char *buf = NULL, *line, *next;
    size_t len = 0, lineno = 0;
    int rc = NOTES_OK, have_daemon = 0, have_disc = 0;
    if (!out)
        return NOTES_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!home)
        return NOTES_EINVAL;
    out->running = daemon_running(home);
    if ((rc = path_in(path, sizeof(path), home, PEERS_FILE)))
        return rc;
    rc = notes_sync__read_small(path, PEERS_MAX_BYTES, &buf, &len, 0);
    if (rc == NOTES_ENOTFOUND)
        return NOTES_OK;
    if (rc == NOTES_ETOOBIG) {
        notes_sync__detail("cannot read '%s': too large", path);
        return NOTES_ECORRUPT;
    }
    if (rc)
        return rc;
    if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\0', len))
        goto corrupt;
    if (!(out->peers = calloc(1, sizeof(*out->peers))))
        goto nomem;
    for (line = buf; *line; line = next) {
        char *nl = strchr(line, '\n'), *kind;
        *nl = '\0';
        next = nl + 1;
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, "notes-peers 1") != 0)
                goto corrupt;
            continue;
        }
        kind = field(&line);
        if (!kind)
            goto corrupt;
        if (strcmp(kind, "daemon") == 0 && !have_daemon) {
            uint64_t pid, port, disc, dport;
            if (num(&line, &pid) || num(&line, &out->started_ms) ||
                num(&line, &out->updated_ms) || num(&line, &port) ||
                num(&line, &disc) || num(&line, &dport) || *line ||
                pid > 0x7fffffff || port > 65535 || disc > 1 || dport > 65535)
                goto corrupt;
            out->pid = (long)pid;
            out->port = (int)port;
            out->discovery = (int)disc;
            out->discovery_port = (int)dport;
            have_daemon = 1;
        } else if (strcmp(kind, "discovery") == 0 && !have_disc) {
            notes_sync_discovery_stats *s = &out->disc;
            uint64_t *v[] = {&s->received, &s->accepted, &s->own,
                             &s->foreign, &s->malformed, &s->stale,
                             &s->replayed, &s->rate_limited, &s->full,
                             &s->sent, &s->send_errors};
            for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                if (num(&line, v[i]))
                    goto corrupt;
            if (*line)
                goto corrupt;
            have_disc = 1;
        } else if (strcmp(kind, "peer") == 0 && out->npeers < PEERS_MAX) {
            notes_sync_peer *np = realloc(out->peers, (out->npeers + 1) *
                                                          sizeof(*np));
            if (!np)
                goto nomem;
            out->peers = np;
            if (parse_peer(line, &out->peers[out->npeers]))
                goto corrupt;
            out->npeers++;
        } else if (strcmp(kind, "relay") == 0 &&
                   out->nrelays < NOTES_SYNC_RELAYS_MAX) {
            char *ra = field(&line);
            uint64_t up;
            if (!ra || strlen(ra) > NOTES_ADDR_MAX || !printable(ra) ||
                num(&line, &up) || up > 1 || *line)
                goto corrupt;
            snprintf(out->relays[out->nrelays], sizeof(out->relays[0]), "%s", ra);
            out->relay_up[out->nrelays++] = (int)up;
        } else {
            goto corrupt;
        }
    }
    if (!have_daemon || !have_disc)
        goto corrupt;
    free(buf);
    out->known = 1;
    return NOTES_OK;
corrupt:
    notes_sync__detail("'%s' is damaged (line %zu); it is rewritten by the "
                       "next `notes serve`", path, lineno);
    rc = NOTES_ECORRUPT;
    goto fail;
nomem:
    rc = NOTES_ENOMEM;
fail:
    free(buf);
    {
        int running = out->running;
        notes_sync_peers_clear(out);
        memset(out, 0, sizeof(*out));
        out->running = running;
    }
    return rc;
}

/* ---- the replica's relays ---- */

#define RELAYS_FILE_MAX 4096

int notes_sync_relays_load(const char *home, char (*out)[NOTES_ADDR_MAX + 1],
                           size_t max, size_t *n)
{
    char path[4200];
    uint8_t *buf = NULL;
    size_t len, lineno = 0;
    char *line, *save = NULL;
    int rc;
    *n = 0;
    snprintf(path, sizeof(path), "%s/relays", home);
    rc = notes__read_file(path, RELAYS_FILE_MAX, &buf, &len);
    if (rc == NOTES_ENOTFOUND)
        return NOTES_OK;
    if (rc)
        return rc;
    for (line = strtok_r((char *)buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char host[NOTES_ADDR_MAX + 1], port[6];
        lineno++;
        if (strlen(line) > NOTES_ADDR_MAX || !printable(line) ||
            notes_sync__split_name(line, host, port) != NOTES_OK) {
            notes_sync__detail("'%s' line %zu is not HOST:PORT", path, lineno);
            notes_free(buf);
            return NOTES_ECORRUPT;
        }
        if (*n < max)
            snprintf(out[(*n)++], NOTES_ADDR_MAX + 1, "%s", line);
    }
    notes_free(buf);
    return NOTES_OK;
}

int notes_sync_relays_add(const char *home, const char *addr)
{
    char have[NOTES_SYNC_RELAYS_MAX][NOTES_ADDR_MAX + 1];
    char path[4200];
    struct notes_buf b;
    char host[NOTES_ADDR_MAX + 1], port[6];
    size_t n;
    int rc;
    if (!addr || strlen(addr) > NOTES_ADDR_MAX || !printable(addr) ||
        notes_sync__split_name(addr, host, port) != NOTES_OK)
        return NOTES_EINVAL;
    if ((rc = notes_sync_relays_load(home, have, NOTES_SYNC_RELAYS_MAX, &n)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if (strcmp(have[i], addr) == 0)
            return NOTES_OK;
    if (n == NOTES_SYNC_RELAYS_MAX) {
        notes_sync__detail("at most %d relays are remembered",
                           NOTES_SYNC_RELAYS_MAX);
        return NOTES_EINVAL;
    }
    snprintf(path, sizeof(path), "%s/relays", home);
    notes__buf_init(&b, RELAYS_FILE_MAX);
    for (size_t i = 0; i < n; i++)
        if ((rc = notes__buf_printf(&b, "%s\n", have[i])))
            goto out;
    if ((rc = notes__buf_printf(&b, "%s\n", addr)))
        goto out;
    rc = notes__write_file_atomic(path, b.data, b.len, 0600);
out:
    notes__buf_release(&b);
    return rc;
}
