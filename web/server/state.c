/*
 * state.c: the page server's own state: starting and stopping it, its
 * last-error detail and log, its token, and ui.json (how `notes open`
 * finds the page).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "server_internal.h"

const char *notes_web_last_detail(void)
{
    return notes_last_detail();
}

void notes_web__log(struct notes_web *ui, const char *fmt, ...)
{
    va_list ap;
    char line[1024];
    if (!ui->cb.log)
        return;
    /* Hosts, origins, URIs and titles come from browsers and peers: the
     * caller escapes the line before a terminal shows it (notes_web.h). */
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ui->cb.log(ui->cb.log_ud, line);
}

uint64_t notes_web__now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void notes_web__random_hex(char *out, size_t bytes)
{
    uint8_t b[32];
    notes__random(b, bytes);
    notes__hex(out, b, bytes);
}

/* ---- start / stop ---------------------------------------------------------- */

static int parse_listen(const char *listen, char *host, size_t nh, int *port)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long p;
    if (!colon || (size_t)(colon - listen) >= nh)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end || p < 0 || p > 65535 || end == colon + 1)
        return -1;
    *port = (int)p;
    return 0;
}

/* The bind probe closes before the loop runs: never called. */
static void probe_conn(uv_stream_t *s, int status)
{
    (void)s;
    (void)status;
}

int notes_web_start(void *loop, const notes_web_opts *o, notes_web **out)
{
    char host[64];
    int port;
    notes_web *ui;
    *out = NULL;
    if (parse_listen(o->listen ? o->listen : "127.0.0.1:7464", host,
                     sizeof(host), &port) ||
        strcmp(host, "127.0.0.1") != 0) {
        notes__set_detail("the page listens on 127.0.0.1:PORT only, not '%s'",
                  o->listen);
        return NOTES_EINVAL;
    }
    if (!(ui = calloc(1, sizeof(*ui))))
        return NOTES_ENOMEM;
    ui->loop = loop;
    ui->r = o->replica;
    ui->cb = *o; /* the callbacks; its strings are not kept */
    ui->cb.listen = ui->cb.token = NULL;
    if (o->token) {
        snprintf(ui->token, sizeof(ui->token), "%s", o->token);
    } else {
        notes_web__random_hex(ui->token, 20);
    }
    notes_web__random_hex(ui->epoch, 8);
    notes_key_encode(notes_replica_public_key(ui->r), ui->me_key);
    notes_key_fingerprint(notes_replica_public_key(ui->r), ui->me_fp);
    notes_web__key_color(notes_replica_public_key(ui->r), ui->me_color);
    notes_web__people_refresh(ui); /* our person's colour, if there is one */

    /*
     * Bind the port ourselves first: with libuv, lws_create_context
     * returns a context even when it cannot listen, so a port in use
     * would go unnoticed; and port 0 needs a real port for lws.
     */
    {
        uv_tcp_t probe;
        struct sockaddr_in sa;
        struct sockaddr_storage got;
        int gl = sizeof(got), e;
        uv_ip4_addr("127.0.0.1", port, &sa);
        uv_tcp_init((uv_loop_t *)loop, &probe);
        e = uv_tcp_bind(&probe, (const struct sockaddr *)&sa, 0);
        if (!e)
            e = uv_listen((uv_stream_t *)&probe, 1, probe_conn);
        if (!e)
            e = uv_tcp_getsockname(&probe, (struct sockaddr *)&got, &gl);
        if (!e)
            port = ntohs(((struct sockaddr_in *)&got)->sin_port);
        uv_close((uv_handle_t *)&probe, NULL);
        uv_run((uv_loop_t *)loop, UV_RUN_NOWAIT);
        if (e) {
            notes__set_detail("cannot serve the page on 127.0.0.1:%d: %s", port,
                      uv_strerror(e));
            free(ui);
            return NOTES_EIO;
        }
    }
    ui->port = port;
    if (notes_web__lws_start(ui, loop, port) != NOTES_OK) {
        notes__set_detail("cannot serve the page on 127.0.0.1:%d (in use?)", port);
        free(ui);
        return NOTES_EIO;
    }
    notes_web__watch_start(ui);
    notes_web__status_start(ui);
    *out = ui;
    return NOTES_OK;
}

int notes_web_port(const notes_web *ui)
{
    return ui->port;
}

const char *notes_web_token(const notes_web *ui)
{
    return ui->token;
}

void notes_web_stop(notes_web *ui)
{
    if (!ui || ui->stopped)
        return;
    ui->stopped = 1;
    /* Pages' connections close with the context (LWS_CALLBACK_CLOSED
     * frees them); notes are released below. */
    notes_web__lws_stop(ui);
    while (ui->notes)
        notes_web__note_release(ui->notes);
    notes_web__watch_stop(ui);
    if (ui->timing) {
        uv_close((uv_handle_t *)&ui->status_timer, NULL);
        uv_close((uv_handle_t *)&ui->flush_timer, NULL);
    }
}

void notes_web_free(notes_web *ui)
{
    if (!ui)
        return;
    notes_web__lws_free(ui);
    free(ui->status_json);
    notes_web__people_clear(ui);
    notes_web__watch_free(ui);
    notes__wipe(ui->token, sizeof(ui->token));
    free(ui);
}

/* ---- ui.json: how `notes open` finds the page ------------------------------ */

int notes_web_write_state(const notes_web *ui, const char *home)
{
    char path[4096];
    json_t *j = json_pack("{s:i, s:s, s:s, s:i}", "v", 1, "url", "",
                          "token", ui->token, "pid", (int)getpid());
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ui->port);
    json_object_set_new(j, "url", json_string(url));
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!s)
        return NOTES_ENOMEM;
    snprintf(path, sizeof(path), "%s/ui.json", home);
    int rc = notes__write_file_atomic(path, s, strlen(s), 0600);
    free(s);
    return rc;
}

int notes_web_saved_token(const char *home, char *token, size_t ntoken)
{
    char path[4096];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/ui.json", home);
    json_t *j = json_load_file(path, 0, &err);
    const char *t = json_string_value(json_object_get(j, "token"));
    int ok = t && strlen(t) >= 32 && strlen(t) < ntoken;
    for (size_t i = 0; ok && t[i]; i++)
        ok = (t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f');
    if (ok)
        snprintf(token, ntoken, "%s", t);
    json_decref(j);
    return ok ? NOTES_OK : NOTES_ENOTFOUND;
}

int notes_web_read_state(const char *home, char *url, size_t nurl, char *token,
                        size_t ntoken)
{
    char path[4096];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/ui.json", home);
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        notes__set_detail("no page is served: start `notes serve`");
        return NOTES_ENOTFOUND;
    }
    const char *u = json_string_value(json_object_get(j, "url"));
    const char *t = json_string_value(json_object_get(j, "token"));
    json_int_t pid = json_integer_value(json_object_get(j, "pid"));
    int alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
    if (!u || !t || !alive) {
        json_decref(j);
        notes__set_detail("no page is served: start `notes serve`");
        return NOTES_ENOTFOUND;
    }
    snprintf(url, nurl, "%s", u);
    snprintf(token, ntoken, "%s", t);
    json_decref(j);
    return NOTES_OK;
}
