/*
 * test_ui.c: the page server of `notes serve` (web/server, docs/web.md) over
 * real loopback sockets, with a minimal HTTP and WebSocket client: the
 * token, cookie, Host and Origin checks and the security headers; the
 * editing protocol (hello, push, the echo that acknowledges it, a push on
 * an old version merged, a change committed elsewhere arriving as an
 * update); and malformed input (bad JSON, a message over 1 MiB, splices
 * outside their text, binary frames), each closing the connection with the
 * replica untouched. The server runs on its own libuv loop in a thread;
 * every wait is bounded by a socket timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "notes.h"
#include "tmpdir.h"
#include "notes_web.h"

struct server {
    pthread_mutex_t mu;       /* guards published and inject */
    pthread_cond_t cv;        /* signalled on each publish */
    char published[4096];     /* the last presence record published */
    int npublished;
    uv_async_t inject_async;  /* deliver `inject` as a remote record */
    char inject[4096];
    uint8_t inject_key[32];
    char *dir, *home;
    notes_replica *r;
    uv_loop_t loop;
    uv_async_t stop;
    notes_web *ui;
    pthread_t th;
    int port;
    char token[64];
    char note[33];
    uint8_t id[16];
};

static void on_stop(uv_async_t *a)
{
    struct server *s = a->data;
    notes_web_stop(s->ui);
    uv_close((uv_handle_t *)&s->stop, NULL);
    uv_close((uv_handle_t *)&s->inject_async, NULL);
}

/* The sync side's role, played by the test: receive what the page server
 * publishes, and hand it records "from peers" on its own thread. */
/* The page's log lines (the server leaves escaping to its caller). */
static void on_log(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "notes ui: %s\n", line);
}

static void on_publish(void *ud, const uint8_t note[16], const char *json,
                       size_t n)
{
    struct server *s = ud;
    (void)note;
    pthread_mutex_lock(&s->mu);
    snprintf(s->published, sizeof(s->published), "%.*s", (int)n, json);
    s->npublished++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_inject(uv_async_t *a)
{
    struct server *s = a->data;
    char rec[4096];
    uint8_t key[32];
    pthread_mutex_lock(&s->mu);
    memcpy(rec, s->inject, sizeof(rec));
    memcpy(key, s->inject_key, 32);
    pthread_mutex_unlock(&s->mu);
    notes_web_remote_presence(s->ui, s->id, key, rec, strlen(rec));
}

static void *serve_thread(void *arg)
{
    struct server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static const char *INITIAL = "# Agenda\n- budget é 日本語 🚀\n";

/* A note with decisions; the daemon's device linked to a person, Ana. */
static const char *DECISIONS =
    "# Weekly\n\n## Decisions\n\n- Book the room\n- Ship on Friday\n";

static int setup_with(void **state, int person, const char *text)
{
    struct server *s = calloc(1, sizeof(*s));
    notes_doc *d;
    notes_web_opts o;
    s->dir = test_tmpdir("ui");
    s->home = test_path(s->dir, "home");
    assert_int_equal(notes_replica_create(s->home, "Ana", NULL, &s->r),
                     NOTES_OK);
    if (person)
        assert_int_equal(notes_replica_person_create(s->r, "Ana", NULL),
                         NOTES_OK);
    assert_int_equal(notes_doc_create(s->r, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, text, strlen(text)), NOTES_OK);
    assert_int_equal(notes_doc_set_field(d, "title", "Weekly"), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    memcpy(s->id, notes_doc_id(d), 16);
    notes__hex(s->note, s->id, 16);
    notes_doc_free(d);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    memset(&o, 0, sizeof(o));
    o.replica = s->r;
    o.listen = "127.0.0.1:0";
    o.log = on_log;
    o.publish = on_publish;
    o.publish_ud = s;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    assert_int_equal(notes_web_start(&s->loop, &o, &s->ui), NOTES_OK);
    uv_async_init(&s->loop, &s->inject_async, on_inject);
    s->inject_async.data = s;
    s->port = notes_web_port(s->ui);
    snprintf(s->token, sizeof(s->token), "%s", notes_web_token(s->ui));
    uv_async_init(&s->loop, &s->stop, on_stop);
    s->stop.data = s;
    assert_int_equal(pthread_create(&s->th, NULL, serve_thread, s), 0);
    *state = s;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0, INITIAL);
}

static int setup_people(void **state)
{
    return setup_with(state, 1, DECISIONS);
}

/* Owned lines under "TODOs and Decisions" (docs/formats.md, "Decisions
 * and action items"): an action item unless it reads as a decision. */
static const char *TODOS = "# Weekly\n\n## TODOs and Decisions\n\n"
                           "RD: Look for places\n\nNext meeting: Monday\n\n"
                           "- [x] AJ: done thing\n\nRD: Decision: keep it\n";

static int setup_todos(void **state)
{
    return setup_with(state, 1, TODOS);
}

static int teardown(void **state)
{
    struct server *s = *state;
    uv_async_send(&s->stop);
    pthread_join(s->th, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* let closed handles finish */
    assert_int_equal(uv_loop_close(&s->loop), 0);
    notes_web_free(s->ui);
    notes_replica_free(s->r);
    test_rmtree(s->dir);
    free(s->home);
    free(s);
    return 0;
}

/* ---- a small client ---- */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    struct timeval tv = {5, 0}; /* every read is bounded */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        c += w;
        n -= (size_t)w;
    }
}

/* Read an HTTP response (headers, then Content-Length bytes of body). */
static char *http(struct server *s, const char *method, const char *path,
                  const char *host, const char *cookie, const char *extra,
                  const char *body, int *status)
{
    char req[8192];
    int fd = dial(s->port);
    char hostbuf[64];
    if (!host) {
        snprintf(hostbuf, sizeof(hostbuf), "127.0.0.1:%d", s->port);
        host = hostbuf;
    }
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s%s%s"
             "Content-Length: %zu\r\n\r\n%s",
             method, path, host, cookie ? "Cookie: " : "", cookie ? cookie : "",
             cookie ? "\r\n" : "", extra ? extra : "", body ? strlen(body) : 0,
             body ? body : "");
    send_all(fd, req, strlen(req));
    size_t cap = 1 << 16, n = 0;
    char *resp = malloc(cap);
    for (;;) {
        if (n + 4096 > cap)
            resp = realloc(resp, cap *= 2);
        ssize_t r = recv(fd, resp + n, cap - n - 1, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        resp[n] = '\0';
        char *hdr_end = strstr(resp, "\r\n\r\n");
        if (hdr_end) {
            const char *cl = strcasestr(resp, "content-length:");
            if (cl && cl < hdr_end &&
                n >= (size_t)(hdr_end + 4 - resp) + strtoul(cl + 15, NULL, 10))
                break;
        }
    }
    resp[n] = '\0';
    close(fd);
    assert_true(n > 12);
    *status = atoi(resp + 9);
    return resp;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

static void cookie_of(struct server *s, char *out, size_t n)
{
    snprintf(out, n, "notes_%d=%s", s->port, s->token);
}

/* Open a WebSocket; returns the fd, or -1 when the upgrade was refused. */
static int ws_open(struct server *s, const char *origin, const char *cookie,
                   const char *path)
{
    char req[2048], resp[4096];
    int fd = dial(s->port);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s%s%s%s%s%s\r\n",
             path, s->port, origin ? "Origin: " : "", origin ? origin : "",
             origin ? "\r\n" : "", cookie ? "Cookie: " : "",
             cookie ? cookie : "", cookie ? "\r\n" : "");
    send_all(fd, req, strlen(req));
    size_t n = 0;
    while (n < sizeof(resp) - 1) {
        ssize_t r = recv(fd, resp + n, 1, 0);
        if (r <= 0)
            break;
        n++;
        resp[n] = '\0';
        if (n >= 4 && memcmp(resp + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    resp[n] = '\0';
    if (strncmp(resp, "HTTP/1.1 101", 12) != 0) {
        close(fd);
        /* Refused: an HTTP status (not a dropped connection), as -status. */
        return n > 12 && strncmp(resp, "HTTP/1.", 7) == 0 ? -atoi(resp + 9)
                                                          : -1;
    }
    return fd;
}

static void ws_send_op(int fd, int opcode, const void *p, size_t n)
{
    uint8_t h[14], mask[4] = {1, 2, 3, 4};
    size_t hl = 2;
    h[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, mask, 4);
    hl += 4;
    uint8_t *buf = malloc(hl + n);
    memcpy(buf, h, hl);
    for (size_t i = 0; i < n; i++)
        buf[hl + i] = ((const uint8_t *)p)[i] ^ mask[i % 4];
    send_all(fd, buf, hl + n);
    free(buf);
}

static void ws_send(int fd, const char *s)
{
    ws_send_op(fd, 1, s, strlen(s));
}

static int recv_exact(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/*
 * Next text message as JSON; NULL when the server closed (then *close_code
 * holds its status code, 0 if the socket just ended or timed out).
 */
static json_t *ws_recv(int fd, int *close_code)
{
    for (;;) {
        uint8_t h[2], ext[8];
        uint64_t len;
        if (recv_exact(fd, h, 2))
            return NULL;
        len = h[1] & 0x7f;
        if (len == 126) {
            if (recv_exact(fd, ext, 2))
                return NULL;
            len = (uint64_t)ext[0] << 8 | ext[1];
        } else if (len == 127) {
            if (recv_exact(fd, ext, 8))
                return NULL;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | ext[i];
        }
        uint8_t *p = malloc(len + 1);
        if (recv_exact(fd, p, len)) {
            free(p);
            return NULL;
        }
        p[len] = 0;
        int op = h[0] & 0x0f;
        if (op == 8) {
            if (close_code)
                *close_code = len >= 2 ? (p[0] << 8 | p[1]) : 0;
            free(p);
            return NULL;
        }
        if (op == 1) {
            json_error_t err;
            json_t *j = json_loads((char *)p, 0, &err);
            free(p);
            assert_non_null(j);
            return j;
        }
        free(p); /* ping/pong */
    }
}

/* Next message of type t (others skipped). */
static json_t *ws_expect(int fd, const char *t)
{
    for (;;) {
        int code = 0;
        json_t *j = ws_recv(fd, &code);
        if (!j)
            fail_msg("connection ended (close code %d) waiting for '%s'", code,
                     t);
        if (strcmp(json_string_value(json_object_get(j, "t")), t) == 0)
            return j;
        json_decref(j);
    }
}

/* The close code the server ends with (skipping other messages). */
static int ws_wait_close(int fd)
{
    for (;;) {
        int code = 0;
        json_t *j = ws_recv(fd, &code);
        if (!j)
            return code;
        json_decref(j);
    }
}

static int ws_note(struct server *s)
{
    char cookie[128], origin[64], path[80];
    cookie_of(s, cookie, sizeof(cookie));
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", s->port);
    snprintf(path, sizeof(path), "/ws?note=%s&v=1", s->note);
    int fd = ws_open(s, origin, cookie, path);
    assert_true(fd >= 0);
    return fd;
}

/* The note's text in the store, read through a fresh replica handle. */
static char *stored_text(struct server *s, size_t *nchanges)
{
    notes_replica *r;
    notes_doc *d;
    size_t n;
    assert_int_equal(notes_replica_open(s->home, &r), NOTES_OK);
    assert_int_equal(notes_doc_open(r, s->id, &d), NOTES_OK);
    const char *t = notes_doc_text(d, &n);
    char *copy = strndup(t, n);
    if (nchanges)
        *nchanges = notes_doc_change_count(d);
    notes_verify_report rep;
    assert_int_equal(notes_doc_verify(d, &rep), NOTES_OK);
    assert_int_equal(rep.nproblems, 0);
    notes_verify_report_clear(&rep);
    notes_doc_free(d);
    notes_replica_free(r);
    return copy;
}

/* ---- tests ---- */

static void test_ui_access(void **state)
{
    struct server *s = *state;
    int st;
    char path[128], cookie[128], *r;

    /* No token: 403, with the headers anyway. */
    r = http(s, "GET", "/", NULL, NULL, NULL, NULL, &st);
    assert_int_equal(st, 403);
    free(r);
    /* A wrong token. */
    r = http(s, "GET", "/?token=0123", NULL, NULL, NULL, NULL, &st);
    assert_int_equal(st, 403);
    free(r);
    /* The right token: a cookie and a redirect that drops it from the URL. */
    snprintf(path, sizeof(path), "/n/%s?token=%s", s->note, s->token);
    r = http(s, "GET", path, NULL, NULL, NULL, NULL, &st);
    assert_int_equal(st, 303);
    char sc[48];
    snprintf(sc, sizeof(sc), "set-cookie: notes_%d=", s->port);
    assert_non_null(strcasestr(r, sc));
    assert_non_null(strstr(r, "HttpOnly"));
    assert_non_null(strstr(r, "SameSite=Strict"));
    char loc[80];
    snprintf(loc, sizeof(loc), "location: /n/%s\r\n", s->note);
    assert_non_null(strcasestr(r, loc));
    free(r);
    /* Other query arguments survive the redirect, the token does not
     * (wherever it stands), and what they hold is encoded again. */
    snprintf(path, sizeof(path), "/n/%s?line=12&token=%s&q=a%%20b", s->note,
             s->token);
    r = http(s, "GET", path, NULL, NULL, NULL, NULL, &st);
    assert_int_equal(st, 303);
    char loc2[160];
    snprintf(loc2, sizeof(loc2), "location: /n/%s?line=12&q=a%%20b\r\n", s->note);
    if (!strcasestr(r, loc2))
        print_message("%s\n", r);
    assert_non_null(strcasestr(r, loc2));
    {
        const char *l = strcasestr(r, "location:");
        size_t ll = strcspn(l, "\r");
        assert_null(memmem(l, ll, s->token, strlen(s->token)));
    }
    free(r);
    /* With the cookie: the page, under a CSP without inline script. */
    cookie_of(s, cookie, sizeof(cookie));
    snprintf(path, sizeof(path), "/n/%s", s->note);
    r = http(s, "GET", path, NULL, cookie, NULL, NULL, &st);
    if (st == 200) {
        const char *csp = strcasestr(r, "content-security-policy:");
        assert_non_null(csp);
        assert_null(strstr(r, "unsafe-inline"));
        assert_non_null(strstr(csp, "script-src 'self'"));
        assert_null(strstr(body_of(r), "{{NONCE}}"));
    } else {
        /* A build without web/dist says so (and still sends the headers). */
        assert_int_equal(st, 500);
        assert_non_null(strstr(body_of(r), "web/dist"));
    }
    assert_non_null(strcasestr(r, "x-content-type-options: nosniff"));
    free(r);
    /* A foreign Host (DNS rebinding) is refused even with the cookie. */
    char evil[64];
    snprintf(evil, sizeof(evil), "evil.example:%d", s->port);
    r = http(s, "GET", "/api/notes", evil, cookie, NULL, NULL, &st);
    assert_int_equal(st, 421);
    free(r);
    /* Unknown paths. */
    r = http(s, "GET", "/etc/passwd", NULL, cookie, NULL, NULL, &st);
    assert_int_equal(st, 404);
    free(r);
}

static void test_ui_api(void **state)
{
    struct server *s = *state;
    int st;
    char cookie[128], origin[96], *r;
    json_error_t err;
    cookie_of(s, cookie, sizeof(cookie));
    r = http(s, "GET", "/api/notes", NULL, cookie, NULL, NULL, &st);
    assert_int_equal(st, 200);
    json_t *j = json_loads(body_of(r), 0, &err);
    assert_non_null(j);
    json_t *notes = json_object_get(j, "notes");
    assert_int_equal(json_array_size(notes), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(notes, 0), "title")),
        "Weekly");
    json_decref(j);
    free(r);
    /* A POST that is not JSON (what a foreign form could send): refused. */
    r = http(s, "POST", "/api/notes", NULL, cookie,
             "Content-Type: text/plain\r\n", "{\"title\":\"x\"}", &st);
    assert_int_equal(st, 415);
    free(r);
    /*
     * A body without a length (chunked, what a client without
     * Content-Length sends; a form from a script, say): answered at once
     * and the connection closed, whether refused (415) or not (411);
     * nothing created. And a body over the limit: 413 before it is read.
     */
    {
        static const char *const types[] = {
            "application/x-www-form-urlencoded", "application/json",
            "application/json"};
        static const char *const framing[] = {
            "Transfer-Encoding: chunked\r\n\r\n7\r\ntitle=x\r\n0\r\n\r\n",
            "Transfer-Encoding: chunked\r\n\r\nd\r\n{\"title\":\"x\"}\r\n0\r\n\r\n",
            "Content-Length: 100000000\r\n\r\n{"};
        static const int want[] = {415, 411, 413};
        for (int i = 0; i < 3; i++) {
            char req[1024], resp[4096];
            size_t got = 0;
            ssize_t rr;
            int fd = dial(s->port);
            snprintf(req, sizeof(req),
                     "POST /api/notes HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Cookie: %s\r\nOrigin: http://127.0.0.1:%d\r\n"
                     "Content-Type: %s\r\n%s",
                     s->port, cookie, s->port, types[i], framing[i]);
            send_all(fd, req, strlen(req));
            /* Until the daemon closes (bounded by the 5 s receive timeout:
             * a hang shows as rr < 0). */
            while ((rr = recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
                got += (size_t)rr;
            resp[got] = '\0';
            close(fd);
            assert_int_equal(rr, 0);
            assert_true(got > 12);
            assert_int_equal(atoi(resp + 9), want[i]);
            assert_non_null(strstr(resp, "{\"error\":"));
        }
    }
    /* JSON from a foreign origin: refused. */
    r = http(s, "POST", "/api/notes", NULL, cookie,
             "Content-Type: application/json\r\nOrigin: http://evil.example\r\n",
             "{\"title\":\"x\"}", &st);
    assert_int_equal(st, 403);
    free(r);
    /* JSON with no Origin at all (browsers always send one with a POST,
     * so this is not the page): refused, nothing created. */
    r = http(s, "POST", "/api/notes", NULL, cookie,
             "Content-Type: application/json\r\n", "{\"title\":\"x\"}", &st);
    assert_int_equal(st, 403);
    assert_non_null(strstr(body_of(r), "Origin"));
    free(r);
    /* From the page: a new meeting. */
    snprintf(origin, sizeof(origin),
             "Content-Type: application/json\r\nOrigin: http://127.0.0.1:%d\r\n",
             s->port);
    /* A title of 201 characters (the limit is 200, counted in characters
     * not bytes): 400, nothing created; 200 "é" (400 bytes) is fine. */
    {
        char body[1024];
        char t201[202];
        memset(t201, 'x', 201);
        t201[201] = 0;
        snprintf(body, sizeof(body), "{\"title\":\"%s\"}", t201);
        r = http(s, "POST", "/api/notes", NULL, cookie, origin, body, &st);
        assert_int_equal(st, 400);
        assert_non_null(strstr(body_of(r), "200"));
        free(r);
        size_t o = (size_t)snprintf(body, sizeof(body), "{\"title\":\"");
        for (int i = 0; i < 200; i++)
            o += (size_t)snprintf(body + o, sizeof(body) - o, "\xc3\xa9");
        snprintf(body + o, sizeof(body) - o, "\"}");
        r = http(s, "POST", "/api/notes", NULL, cookie, origin, body, &st);
        assert_int_equal(st, 201);
        free(r);
    }
    r = http(s, "POST", "/api/notes", NULL, cookie, origin,
             "{\"title\":\"Retro\",\"template\":\"meeting\"}", &st);
    assert_int_equal(st, 201);
    j = json_loads(body_of(r), 0, &err);
    assert_non_null(j);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "id"))), 32);
    json_decref(j);
    free(r);
    /* An import, and one that is not valid Markdown front matter. */
    r = http(s, "POST", "/api/import", NULL, cookie, origin,
             "{\"markdown\":\"---\\ntitle: Imported\\n---\\n# Hi\\n\"}", &st);
    assert_int_equal(st, 201);
    free(r);
    r = http(s, "POST", "/api/import", NULL, cookie, origin,
             "{\"markdown\":\"---\\ntitle: [unclosed\\n\"}", &st);
    assert_int_equal(st, 400);
    free(r);
    r = http(s, "POST", "/api/notes", NULL, cookie, origin, "not json", &st);
    assert_int_equal(st, 400);
    free(r);
    r = http(s, "GET", "/api/notes", NULL, cookie, NULL, NULL, &st);
    j = json_loads(body_of(r), 0, &err);
    assert_int_equal(json_array_size(json_object_get(j, "notes")), 4);
    json_decref(j);
    free(r);
}

static void test_ui_ws_refused(void **state)
{
    struct server *s = *state;
    char cookie[128], origin[64], path[80];
    cookie_of(s, cookie, sizeof(cookie));
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", s->port);
    snprintf(path, sizeof(path), "/ws?note=%s&v=1", s->note);
    /* A foreign Origin (another web page the user visits): 403. */
    assert_int_equal(ws_open(s, "http://evil.example", cookie, path), -403);
    /* No Origin at all. */
    assert_int_equal(ws_open(s, NULL, cookie, path), -403);
    /* No cookie. */
    assert_int_equal(ws_open(s, origin, NULL, path), -403);
    /* No such note, no note: 404. */
    assert_int_equal(ws_open(s, origin, cookie,
                             "/ws?note=00000000000000000000000000000000&v=1"),
                     -404);
    assert_int_equal(ws_open(s, origin, cookie, "/ws"), -404);
    /* Another protocol version, or none: 400. */
    {
        char p2[96];
        snprintf(p2, sizeof(p2), "/ws?note=%s&v=2", s->note);
        assert_int_equal(ws_open(s, origin, cookie, p2), -400);
        snprintf(p2, sizeof(p2), "/ws?note=%s", s->note);
        assert_int_equal(ws_open(s, origin, cookie, p2), -400);
    }
    int fd = ws_open(s, origin, cookie, path);
    assert_true(fd >= 0);
    close(fd);
}

static void test_ui_edit(void **state)
{
    struct server *s = *state;
    size_t before_changes;
    free(stored_text(s, &before_changes));
    int a = ws_note(s), b = ws_note(s);
    json_t *h = ws_expect(a, "hello");
    assert_string_equal(json_string_value(json_object_get(h, "text")), INITIAL);
    assert_int_equal(json_integer_value(json_object_get(h, "version")), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(h, "fields"), "title")),
                        "Weekly");
    json_decref(h);
    json_decref(ws_expect(b, "hello"));

    /* A push's splices count code points ("🚀" is one); the updates
     * count UTF-16 units (it is two). Insert "X" after the rocket. */
    size_t len16 = 0, lencp = 0;
    for (const unsigned char *p = (const unsigned char *)INITIAL; *p; p++)
        if ((*p & 0xc0) != 0x80) {
            len16 += *p >= 0xf0 ? 2 : 1;
            lencp++;
        }
    char msg[512];
    size_t at = lencp - 1; /* before the final newline */
    snprintf(msg, sizeof(msg),
             "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"page-a-0123456789\","
             "\"splices\":[[%zu,0,\"X\"]]}]}",
             at);
    ws_send(a, msg);
    /* Both pages get the update; for a it is the acknowledgement. */
    for (int k = 0; k < 2; k++) {
        json_t *u = ws_expect(k ? b : a, "updates");
        assert_int_equal(json_integer_value(json_object_get(u, "version")), 0);
        json_t *up = json_array_get(json_object_get(u, "updates"), 0);
        assert_string_equal(json_string_value(json_object_get(up, "clientID")),
                            "page-a-0123456789");
        assert_int_equal(json_integer_value(json_object_get(up, "acks")), 1);
        char *cs = json_dumps(json_object_get(up, "changes"), JSON_COMPACT);
        char want[64];
        snprintf(want, sizeof(want), "[%zu,[0,\"X\"],1]", len16 - 1);
        assert_string_equal(cs, want);
        free(cs);
        json_decref(u);
    }
    size_t nc;
    char *t = stored_text(s, &nc);
    assert_string_equal(t, "# Agenda\n- budget é 日本語 🚀X\n");
    assert_int_equal(nc, before_changes + 1);
    free(t);

    /* A push on an old version (page b has not seen the X) is merged,
     * not refused: Z at the start of the text b had. */
    ws_send(b, "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"page-b-0123456789\","
               "\"splices\":[[0,0,\"Z\"]]}]}");
    for (int k = 0; k < 2; k++) {
        json_t *u = ws_expect(k ? b : a, "updates");
        assert_int_equal(json_integer_value(json_object_get(u, "version")), 1);
        json_decref(u);
    }
    /* A cursor: presence reaches the other page. */
    ws_send(b, "{\"t\":\"cursor\",\"version\":1,\"ranges\":[{\"anchor\":3,"
               "\"head\":5}]}");
    json_t *p = ws_expect(a, "presence");
    assert_int_equal(json_array_size(json_object_get(p, "people")), 2);
    json_decref(p);
    t = stored_text(s, NULL);
    assert_string_equal(t, "Z# Agenda\n- budget é 日本語 🚀X\n");
    free(t);

    /* A change committed elsewhere (another process, a peer) reaches
     * both pages as an update that turns their text into the store's. */
    notes_replica *r2;
    notes_doc *d;
    assert_int_equal(notes_replica_open(s->home, &r2), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r2, NULL), NOTES_OK);
    assert_int_equal(notes_doc_open(r2, s->id, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, "Hi ", 3), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    notes_replica_free(r2);
    json_t *u = ws_expect(a, "updates");
    json_t *up = json_array_get(json_object_get(u, "updates"), 0);
    assert_int_equal(json_integer_value(json_object_get(u, "version")), 2);
    assert_memory_equal(json_string_value(json_object_get(up, "clientID")),
                        "peer:", 5);
    char *cs = json_dumps(json_object_get(up, "changes"), JSON_COMPACT);
    char want[64];
    snprintf(want, sizeof(want), "[[0,\"Hi \"],%zu]", len16 + 2);
    assert_string_equal(cs, want);
    free(cs);
    json_decref(u);

    /* Pull from version 2 replays that update. */
    ws_send(b, "{\"t\":\"pull\",\"version\":2}");
    u = ws_expect(b, "updates");
    while (json_integer_value(json_object_get(u, "version")) != 2 ||
           json_array_size(json_object_get(u, "updates")) != 1) {
        json_decref(u);
        u = ws_expect(b, "updates");
    }
    json_decref(u);
    /* History and an earlier text; authorship spans. */
    ws_send(a, "{\"t\":\"history\"}");
    json_t *hist = ws_expect(a, "history");
    assert_int_equal(json_array_size(json_object_get(hist, "changes")),
                     before_changes + 3);
    json_decref(hist);
    ws_send(a, "{\"t\":\"at\",\"index\":0}");
    json_t *old = ws_expect(a, "at");
    assert_string_equal(json_string_value(json_object_get(old, "text")),
                        INITIAL);
    json_decref(old);
    ws_send(a, "{\"t\":\"authorship\"}");
    json_t *au = ws_expect(a, "authorship");
    assert_true(json_array_size(json_object_get(au, "spans")) >= 1);
    assert_int_equal(json_array_size(json_object_get(au, "authors")), 1);
    json_decref(au);
    /* A fault the page reports (with or without a message) is only logged:
     * the connection stays and answers the next request. */
    ws_send(a, "{\"t\":\"error\",\"message\":\"boom\"}");
    ws_send(a, "{\"t\":\"error\"}");
    ws_send(a, "{\"t\":\"history\"}");
    json_decref(ws_expect(a, "history"));
    close(a);
    close(b);
}

/* Each malformed input closes the connection (1008) and stores nothing. */
static void test_ui_malformed(void **state)
{
    struct server *s = *state;
    size_t nc0, nc;
    char *t0 = stored_text(s, &nc0);
    const char *bad[] = {
        "not json",
        "[1,2,3]",
        "{\"no\":\"type\"}",
        "{\"t\":\"launch-missiles\"}",
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"changes\":[5]}]}", /* the old form: no splices */
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[[99999,0,\"a\"]]}]}", /* past the end of the text */
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[[2,99999,\"\"]]}]}", /* deleting past the end */
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[[0,0,\"a\"],[99999,0,\"b\"]]}]}", /* the 2nd: none of it */
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[[-1,0,\"a\"]]}]}",
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[[0,0]]}]}",
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[[0,0,\"\\ud800\"]]}]}", /* a lone surrogate */
        "{\"t\":\"push\",\"version\":99,\"updates\":[{\"clientID\":\"xxxxxxxxxxxxxxxx\","
        "\"splices\":[]}]}", /* from the future */
        "{\"t\":\"push\",\"version\":0,\"updates\":\"x\"}",
        "{\"t\":\"cursor\",\"version\":0,\"ranges\":[{\"anchor\":-1,\"head\":0}]}",
        "{\"t\":\"at\",\"index\":12345}",
        "{\"t\":\"pull\",\"version\":-4}",
        "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":\"short\","
        "\"splices\":[[0,0,\"a\"]]}]}", /* clientID under 16 characters */
        "{\"t\":\"resolve\",\"line\":1,\"merged\":\"x\",\"change\":\"zz\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        int fd = ws_note(s);
        json_decref(ws_expect(fd, "hello"));
        ws_send(fd, bad[i]);
        int code = ws_wait_close(fd);
        if (code != 1008)
            fail_msg("input %zu (%s): close code %d, not 1008", i, bad[i],
                     code);
        close(fd);
    }
    /* A binary frame. */
    int fd = ws_note(s);
    json_decref(ws_expect(fd, "hello"));
    ws_send_op(fd, 2, "\x01\x02", 2);
    assert_int_equal(ws_wait_close(fd), 1008);
    close(fd);
    /* A message over 1 MiB. */
    size_t big = NOTES_WEB_MSG_MAX + 10;
    char *m = malloc(big + 1);
    memset(m, ' ', big);
    memcpy(m, "{\"t\":\"cursor\"", 13);
    m[big - 1] = '}';
    m[big] = 0;
    fd = ws_note(s);
    json_decref(ws_expect(fd, "hello"));
    ws_send_op(fd, 1, m, big);
    int code = ws_wait_close(fd);
    assert_true(code == 1008 || code == 1009 || code == 0);
    close(fd);
    free(m);
    /* Nothing was stored, and the server still serves. */
    char *t = stored_text(s, &nc);
    assert_string_equal(t, t0);
    assert_int_equal(nc, nc0);
    free(t);
    free(t0);
    fd = ws_note(s);
    json_decref(ws_expect(fd, "hello"));
    close(fd);
}

/*
 * Pipelined pushes (docs/web.md): a page sends its next edit before the
 * last is acknowledged, on the same version: the daemon puts it on top of
 * that page's own earlier ones. Another page's push on that old version is
 * merged beside them, its characters whole.
 */
static void test_ui_pipelined(void **state)
{
    struct server *s = *state;
    int a = ws_note(s);
    json_decref(ws_expect(a, "hello"));
    ws_send(a, "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":"
               "\"page-a-0123456789\",\"splices\":[[0,0,\"1\"]]}]}");
    ws_send(a, "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":"
               "\"page-a-0123456789\",\"splices\":[[1,0,\"2\"]]}]}");
    int acked = 0;
    while (acked < 2) {
        json_t *u = ws_expect(a, "updates");
        json_t *ups = json_object_get(u, "updates");
        for (size_t i = 0; i < json_array_size(ups); i++)
            acked += (int)json_integer_value(
                json_object_get(json_array_get(ups, i), "acks"));
        json_decref(u);
    }
    int b = ws_note(s);
    json_decref(ws_expect(b, "hello"));
    ws_send(b, "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":"
               "\"page-b-0123456789\",\"splices\":[[0,0,\"ZZ\"]]}]}");
    /* Messages of one connection are handled in order: once the pull is
     * answered, the push before it was stored. */
    ws_send(b, "{\"t\":\"pull\",\"version\":0}");
    json_t *pu = ws_expect(b, "updates");
    while (json_integer_value(json_object_get(pu, "version")) != 0) {
        json_decref(pu);
        pu = ws_expect(b, "updates");
    }
    {   /* three pushes acknowledged, b's last (a merged insertion may
         * come as more than one update) */
        json_t *ups = json_object_get(pu, "updates");
        json_t *last = json_array_get(ups, json_array_size(ups) - 1);
        int n = 0;
        for (size_t i = 0; i < json_array_size(ups); i++)
            n += (int)json_integer_value(
                json_object_get(json_array_get(ups, i), "acks"));
        assert_int_equal(n, 3);
        assert_string_equal(
            json_string_value(json_object_get(last, "clientID")),
            "page-b-0123456789");
    }
    json_decref(pu);
    /* A version from the future closes. */
    ws_send(a, "{\"t\":\"push\",\"version\":9,\"updates\":[{"
               "\"clientID\":\"page-a-0123456789\",\"splices\":[[0,0,\"x\"]]}]}");
    assert_int_equal(ws_wait_close(a), 1008);
    char *t = stored_text(s, NULL);
    assert_true(strncmp(t, "12ZZ# Agenda", 12) == 0 ||
                strncmp(t, "ZZ12# Agenda", 12) == 0);
    free(t);
    close(a);
    close(b);
}

/* Two POSTs one after the other on one kept-alive connection, as a browser
 * sends them: each creates its note, and the first one's body is freed when
 * the second begins (under ASan, the leak check at exit fails otherwise). */
static void test_ui_keepalive_posts(void **state)
{
    struct server *s = *state;
    char cookie[128];
    int fd = dial(s->port);
    cookie_of(s, cookie, sizeof(cookie));
    for (int i = 0; i < 2; i++) {
        char body[64], req[1024], resp[4096] = "";
        size_t got = 0;
        int bl = snprintf(body, sizeof(body), "{\"title\":\"kept alive %d\"}", i);
        int n = snprintf(req, sizeof(req),
                         "POST /api/notes HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         "Cookie: %s\r\nOrigin: http://127.0.0.1:%d\r\n"
                         "Content-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         s->port, cookie, s->port, bl, body);
        send_all(fd, req, (size_t)n);
        /* Until the answer's body (the new id) is in; reads bounded by 5 s. */
        while (!strstr(resp, "\"id\"")) {
            ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            resp[got] = '\0';
        }
        assert_true(got > 12);
        assert_int_equal(atoi(resp + 9), 201);
        assert_non_null(strstr(resp, "\"id\""));
    }
    close(fd);
    int st;
    char *r = http(s, "GET", "/api/notes", NULL, cookie, NULL, NULL, &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(body_of(r), "kept alive 0"));
    assert_non_null(strstr(body_of(r), "kept alive 1"));
    free(r);
}

/* The page listens on loopback only, and a port in use is an error. */
static void test_ui_listen(void **state)
{
    struct server *s = *state;
    uv_loop_t loop;
    notes_web_opts o;
    notes_web *ui = NULL;
    char addr[64];
    assert_int_equal(uv_loop_init(&loop), 0);
    memset(&o, 0, sizeof(o));
    o.replica = s->r;
    o.listen = "0.0.0.0:0";
    assert_int_equal(notes_web_start(&loop, &o, &ui), NOTES_EINVAL);
    o.listen = "192.168.1.2:7464";
    assert_int_equal(notes_web_start(&loop, &o, &ui), NOTES_EINVAL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", s->port);
    o.listen = addr;
    assert_int_equal(notes_web_start(&loop, &o, &ui), NOTES_EIO);
    assert_null(ui);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void inject(struct server *s, const uint8_t key[32], const char *rec)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->inject, sizeof(s->inject), "%s", rec);
    memcpy(s->inject_key, key, 32);
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->inject_async);
}

/* Presence: what this daemon publishes for peers, and people on other
 * daemons (their records verified by the sync side) shown to pages. */
static void test_ui_presence(void **state)
{
    struct server *s = *state;
    int a = ws_note(s);
    json_t *h = ws_expect(a, "hello");
    const char *session = json_string_value(
        json_object_get(json_object_get(h, "me"), "session"));
    char sess[32];
    snprintf(sess, sizeof(sess), "%s", session);
    json_decref(h);
    ws_send(a, "{\"t\":\"cursor\",\"version\":0,\"ranges\":[{\"anchor\":2,"
               "\"head\":4}]}");
    json_decref(ws_expect(a, "presence"));
    /* Published: our page, its name and cursor, no key (the signature
     * carries it). Wait (bounded) for the record with the cursor. */
    char got[4096];
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&s->mu);
    while (!strstr(s->published, "\"anchor\":2") &&
           pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == 0)
        ;
    memcpy(got, s->published, sizeof(got));
    pthread_mutex_unlock(&s->mu);
    assert_non_null(strstr(got, sess));
    assert_non_null(strstr(got, "\"anchor\":2"));
    assert_non_null(strstr(got, "Ana"));
    assert_null(strstr(got, "\"key\""));

    /* Bo on another daemon. */
    notes_identity *bo;
    char fp[NOTES_FPR_STRLEN];
    assert_int_equal(notes_identity_generate("Bo", &bo), NOTES_OK);
    notes_key_fingerprint(notes_identity_public_key(bo), fp);
    inject(s, notes_identity_public_key(bo),
           "{\"v\":1,\"people\":[{\"session\":\"b1\",\"name\":\"Bo\","
           "\"ranges\":[{\"anchor\":1,\"head\":1}]}]}");
    json_t *p = NULL;
    for (int tries = 0; tries < 10; tries++) {
        p = ws_expect(a, "presence");
        if (json_array_size(json_object_get(p, "people")) == 2)
            break;
        json_decref(p);
        p = NULL;
    }
    assert_non_null(p);
    json_t *people = json_object_get(p, "people");
    int found = 0;
    for (size_t i = 0; i < json_array_size(people); i++) {
        json_t *e = json_array_get(people, i);
        if (json_is_true(json_object_get(e, "remote"))) {
            found = 1;
            assert_string_equal(json_string_value(json_object_get(e, "name")),
                                "Bo");
            assert_string_equal(json_string_value(json_object_get(e, "fp")),
                                fp);
        }
    }
    assert_true(found);
    json_decref(p);
    /* Malformed records and our own key relayed back are ignored; the
     * page keeps working. */
    inject(s, notes_identity_public_key(bo), "not json");
    inject(s, notes_identity_public_key(bo), "{\"people\":\"x\"}");
    inject(s, notes_replica_public_key(s->r),
           "{\"v\":1,\"people\":[{\"session\":\"zz\",\"name\":\"Me?\"}]}");
    ws_send(a, "{\"t\":\"cursor\",\"version\":0,\"ranges\":[]}");
    p = ws_expect(a, "presence");
    char *dump = json_dumps(p, JSON_COMPACT);
    assert_null(strstr(dump, "Me?"));
    free(dump);
    json_decref(p);
    notes_identity_free(bo);
    close(a);
}

/* The item of an items message whose text is `text`, or NULL. */
static json_t *item_by_text(json_t *items_msg, const char *text)
{
    json_t *items = json_object_get(items_msg, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *t = json_string_value(json_object_get(it, "text"));
        if (t && strcmp(t, text) == 0)
            return it;
    }
    return NULL;
}

static void send_confirm(int fd, const char *id, const char *text,
                         json_t *owner)
{
    json_t *m = json_pack("{s:s, s:s?, s:s?, s:O?}", "t", "confirm", "id", id,
                          "text", text, "owner", owner);
    char *d = json_dumps(m, JSON_COMPACT);
    ws_send(fd, d);
    free(d);
    json_decref(m);
}

/* The next items message in which item `text` has n confirmations. */
static json_t *items_with(int fd, const char *text, size_t n)
{
    for (int tries = 0; tries < 20; tries++) {
        json_t *m = ws_expect(fd, "items");
        json_t *it = item_by_text(m, text);
        if (it && json_array_size(json_object_get(it, "confirmations")) == n)
            return m;
        json_decref(m);
    }
    fail_msg("no items message with %zu confirmations of '%s'", n, text);
    return NULL;
}

/* The page's items message says what the outline (formats) says about
 * each item: kind, done and revocation, as `notes decisions` does. */
static void test_ui_items_kinds(void **state)
{
    struct server *s = *state;
    int a = ws_note(s);
    json_decref(ws_expect(a, "hello"));
    json_t *m = ws_expect(a, "items");
    json_t *items = json_object_get(m, "items");
    static const struct {
        const char *text, *kind;
        int done;
    } want[] = {{"Look for places", "task", 0},
                {"Next meeting: Monday", "decision", 0},
                {"done thing", "task", 1},
                {"keep it", "decision", 0}};
    assert_int_equal(json_array_size(items), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *it = json_array_get(items, i);
        assert_string_equal(json_string_value(json_object_get(it, "text")),
                            want[i].text);
        assert_string_equal(json_string_value(json_object_get(it, "kind")),
                            want[i].kind);
        assert_int_equal(json_is_true(json_object_get(it, "done")), want[i].done);
        assert_true(json_is_null(json_object_get(it, "revocation")));
    }
    json_decref(m);
    close(a);
}

/*
 * Confirming a decision from the page: the daemon signs it (the page sends
 * what it shows; a stale text is refused and nothing is stored), and the
 * next items message carries it, counted. A confirm right after a push that
 * changed the item confirms the new text: the push is committed first.
 */
static void test_ui_confirm(void **state)
{
    struct server *s = *state;
    size_t before, after;
    int a = ws_note(s);
    json_decref(ws_expect(a, "hello"));
    json_t *m = ws_expect(a, "items");
    json_t *it = item_by_text(m, "Book the room");
    assert_non_null(it);
    assert_string_equal(json_string_value(json_object_get(it, "kind")),
                        "decision");
    json_t *rb = json_object_get(it, "recorded_by");
    assert_string_equal(json_string_value(json_object_get(rb, "name")), "Ana");
    assert_true(json_is_true(json_object_get(rb, "linked")));
    assert_true(json_is_true(json_object_get(rb, "known")));
    char id[17];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(it, "id")));
    assert_int_equal(strlen(id), 16);
    assert_int_equal(json_integer_value(json_object_get(it, "confirmed_by")), 0);
    json_t *owner = json_incref(json_object_get(it, "owner"));
    char id2[17];
    it = item_by_text(m, "Ship on Friday");
    assert_non_null(it);
    assert_true(json_is_null(json_object_get(it, "owner")));
    snprintf(id2, sizeof(id2), "%s",
             json_string_value(json_object_get(it, "id")));
    json_decref(m);
    free(stored_text(s, &before));

    send_confirm(a, id, "Book the room", owner);
    m = items_with(a, "Book the room", 1);
    it = item_by_text(m, "Book the room");
    json_t *c = json_array_get(json_object_get(it, "confirmations"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "state")),
                        "confirmed");
    assert_true(json_is_true(json_object_get(c, "counted")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(c, "by"), "name")),
        "Ana");
    assert_true(json_is_true(
        json_object_get(json_object_get(c, "by"), "mine")));
    assert_int_equal(json_integer_value(json_object_get(it, "confirmed_by")), 1);
    json_decref(m);
    free(stored_text(s, &after));
    assert_int_equal(after, before + 1);

    /* Stale text, an unknown id: refused, nothing stored, still open. */
    send_confirm(a, id, "Book the hall", owner);
    m = ws_expect(a, "error");
    assert_non_null(strstr(json_string_value(json_object_get(m, "message")),
                           "changed"));
    json_decref(m);
    send_confirm(a, "0123456789abcdef", "Book the room", owner);
    json_decref(ws_expect(a, "error"));
    free(stored_text(s, &before));
    assert_int_equal(before, after);
    ws_send(a, "{\"t\":\"pull\",\"version\":0}");
    json_decref(ws_expect(a, "updates"));

    /* A push that changes "Ship on Friday", then at once a confirm of the
     * new text: the push is committed before the confirm looks. The id
     * stays the item's (its first character is unchanged). */
    {
        size_t at = (size_t)(strstr(DECISIONS, "Friday") - DECISIONS);
        char push[512];
        snprintf(push, sizeof(push),
                 "{\"t\":\"push\",\"version\":0,\"updates\":[{\"clientID\":"
                 "\"confirm-test-client-1\",\"splices\":[[%zu,6,\"Monday\"]]}]}",
                 at); /* DECISIONS is ASCII: bytes are code points */
        ws_send(a, push);
    }
    send_confirm(a, id2, "Ship on Monday", NULL);
    m = items_with(a, "Ship on Monday", 1);
    it = item_by_text(m, "Ship on Monday");
    assert_string_equal(json_string_value(json_object_get(it, "id")), id2);
    json_decref(m);
    json_decref(owner);
    close(a);
}

/* Malformed confirms close the connection (1008); the replica is untouched. */
static void test_ui_confirm_malformed(void **state)
{
    struct server *s = *state;
    size_t before, after;
    static const char *bad[] = {
        "{\"t\":\"confirm\",\"text\":\"Book the room\"}",
        "{\"t\":\"confirm\",\"id\":\"zz23456789abcdef\",\"text\":\"x\"}",
        "{\"t\":\"confirm\",\"id\":\"0123456789abcdef\"}",
        "{\"t\":\"confirm\",\"id\":\"0123456789abcdef\",\"text\":\"x\","
        "\"owner\":5}",
        NULL, /* a huge text */
    };
    free(stored_text(s, &before));
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        int a = ws_note(s);
        json_decref(ws_expect(a, "hello"));
        if (bad[i]) {
            ws_send(a, bad[i]);
        } else {
            size_t n = 200 * 1024;
            char *huge = malloc(n + 1);
            memset(huge, 'x', n);
            huge[n] = '\0';
            send_confirm(a, "0123456789abcdef", huge, NULL);
            free(huge);
        }
        assert_int_equal(ws_wait_close(a), 1008);
        close(a);
    }
    free(stored_text(s, &after));
    assert_int_equal(before, after);
}

/* A replica of one of Rita's laptops, holding the note as the daemon has it. */
static notes_replica *laptop(struct server *s, const char *name)
{
    notes_replica *r;
    char *home = test_path(s->dir, name);
    assert_int_equal(notes_replica_create(home, name, NULL, &r), NOTES_OK);
    free(home);
    return r;
}

/* Everything `from` has of the note, merged into `to` (a replica). */
static void carry(notes_doc *from, notes_doc *to)
{
    uint8_t *b;
    size_t n;
    assert_int_equal(notes_doc_export(from, NULL, 0, &b, &n), NOTES_OK);
    assert_int_equal(notes_doc_merge(to, b, n, NULL), NOTES_OK);
    notes_free(b);
}

static json_t *author_with(json_t *m, const char *name)
{
    json_t *authors = json_object_get(m, "authors");
    for (size_t i = 0; i < json_array_size(authors); i++) {
        const char *nm =
            json_string_value(json_object_get(json_array_get(authors, i), "name"));
        if (nm && strcmp(nm, name) == 0)
            return json_array_get(authors, i);
    }
    return NULL;
}

/*
 * Authorship by person: Rita writes from two laptops, each linked to her
 * person key; the page gets one author, Rita (unknown key until the user
 * names her in HOME/trust), with both devices.
 */
static void test_ui_authorship_people(void **state)
{
    struct server *s = *state;
    notes_replica *rb = laptop(s, "rita-laptop"), *rc = laptop(s, "rita-desk");
    notes_identity *person;
    notes_link_info *li;
    size_t nl;
    char *code, fpb[NOTES_FPR_STRLEN], fpc[NOTES_FPR_STRLEN];
    char pfp[NOTES_FPR_STRLEN], pkey[NOTES_KEY_STRLEN];
    assert_int_equal(notes_replica_person_create(rb, "Rita", NULL), NOTES_OK);
    assert_int_equal(notes_replica_pair_code(rc, &code), NOTES_OK);
    assert_int_equal(notes_replica_person_load(rb, NULL, &person), NOTES_OK);
    assert_int_equal(notes_replica_link(rb, person, code, NULL), NOTES_OK);
    notes_free(code);
    notes_identity_free(person);
    assert_int_equal(notes_replica_links(rb, &li, &nl), NOTES_OK);
    assert_true(nl >= 1);
    notes_key_fingerprint(li[0].person, pfp);
    notes_key_encode(li[0].person, pkey);
    notes_free(li);
    notes_key_fingerprint(notes_replica_public_key(rb), fpb);
    notes_key_fingerprint(notes_replica_public_key(rc), fpc);

    int a = ws_note(s);
    json_decref(ws_expect(a, "hello"));
    /* The daemon's note → laptop → desk (each writes a line) → daemon. */
    notes_replica *ra;
    notes_doc *da, *db, *dc;
    assert_int_equal(notes_replica_open(s->home, &ra), NOTES_OK);
    assert_int_equal(notes_doc_open(ra, s->id, &da), NOTES_OK);
    assert_int_equal(notes_doc_create_id(rb, s->id, &db), NOTES_OK);
    carry(da, db);
    assert_int_equal(notes_doc_splice(db, 0, 0, "laptop\n", 7), NOTES_OK);
    assert_int_equal(notes_doc_commit(db, NULL), NOTES_OK);
    assert_int_equal(notes_doc_create_id(rc, s->id, &dc), NOTES_OK);
    carry(db, dc);
    assert_int_equal(notes_doc_splice(dc, 0, 0, "desk\n", 5), NOTES_OK);
    assert_int_equal(notes_doc_commit(dc, NULL), NOTES_OK);
    carry(dc, da);
    notes_doc_free(da);
    notes_doc_free(db);
    notes_doc_free(dc);
    notes_replica_free(ra);

    json_t *m = NULL, *rita = NULL;
    for (int tries = 0; tries < 50 && !rita; tries++) {
        json_decref(m);
        ws_send(a, "{\"t\":\"authorship\"}");
        m = ws_expect(a, "authorship");
        rita = author_with(m, "Rita");
        if (!rita)
            usleep(100 * 1000); /* the daemon has not read the merge yet */
    }
    assert_non_null(rita);
    assert_int_equal(json_array_size(json_object_get(m, "authors")), 2);
    assert_string_equal(json_string_value(json_object_get(rita, "fp")), pfp);
    assert_string_equal(json_string_value(json_object_get(rita, "key")), pkey);
    assert_true(json_is_true(json_object_get(rita, "linked")));
    assert_true(json_is_false(json_object_get(rita, "known")));
    json_t *devs = json_object_get(rita, "devices");
    assert_int_equal(json_array_size(devs), 2);
    const char *d0 = json_string_value(json_object_get(json_array_get(devs, 0), "fp"));
    const char *d1 = json_string_value(json_object_get(json_array_get(devs, 1), "fp"));
    assert_true((strcmp(d0, fpb) == 0 && strcmp(d1, fpc) == 0) ||
                (strcmp(d0, fpc) == 0 && strcmp(d1, fpb) == 0));
    /* Both lines are one author's span: "desk\nlaptop\n" from 0 to 12. */
    json_t *sp = json_array_get(json_object_get(m, "spans"), 0);
    assert_int_equal(json_integer_value(json_array_get(sp, 0)), 0);
    assert_int_equal(json_integer_value(json_array_get(sp, 1)), 12);
    json_decref(m);

    /* The user names her (notes trust): shown with that name, known. */
    char *trust = test_path(s->home, "trust");
    FILE *f = fopen(trust, "w");
    assert_non_null(f);
    fprintf(f, "%s Rita (design)\n", pkey);
    fclose(f);
    free(trust);
    ws_send(a, "{\"t\":\"authorship\"}");
    m = ws_expect(a, "authorship");
    rita = author_with(m, "Rita (design)");
    assert_non_null(rita);
    assert_true(json_is_true(json_object_get(rita, "known")));
    json_decref(m);
    /* History names the person too. */
    ws_send(a, "{\"t\":\"history\"}");
    m = ws_expect(a, "history");
    json_t *ch = json_object_get(m, "changes");
    json_t *last = json_array_get(ch, json_array_size(ch) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "name")),
                        "Rita (design)");
    assert_string_equal(json_string_value(json_object_get(last, "fp")), fpc);
    json_decref(m);
    close(a);
    notes_replica_free(rb);
    notes_replica_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ui_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_ws_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_presence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_keepalive_posts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ui_confirm, setup_people, teardown),
        cmocka_unit_test_setup_teardown(test_ui_items_kinds, setup_todos, teardown),
        cmocka_unit_test_setup_teardown(test_ui_confirm_malformed, setup_people,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ui_authorship_people, setup,
                                        teardown),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
