/*
 * ws.c: the WebSocket session of a page: its outgoing queue, the upgrade
 * checks, and the frames it sends and receives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

/* ---- messages to pages ------------------------------------------------- */

void notes_web__page_send_str(struct page *pg, const char *s, size_t n)
{
    struct ui_msg *m;
    if (pg->close_why[0])
        return;
    if (pg->qbytes + n > OUT_MAX) {
        notes_web__page_close(pg, "the page does not keep up");
        return;
    }
    m = malloc(sizeof(*m) + NOTES_WEB__PRE + n);
    if (!m) {
        notes_web__page_close(pg, "out of memory");
        return;
    }
    m->next = NULL;
    m->len = n;
    memcpy(m->data + NOTES_WEB__PRE, s, n);
    if (pg->qt)
        pg->qt->next = m;
    else
        pg->qh = m;
    pg->qt = m;
    pg->qbytes += n;
    notes_web__want_write(pg->wsi);
}

void notes_web__page_send(struct page *pg, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (s) {
        notes_web__page_send_str(pg, s, strlen(s));
        free(s);
    }
}

void notes_web__note_broadcast(struct unote *n, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return;
    size_t len = strlen(s);
    for (struct page *pg = n->pages; pg; pg = pg->next)
        notes_web__page_send_str(pg, s, len);
    free(s);
}

/* Close the page's connection with a policy-violation status and reason. */
void notes_web__page_close(struct page *pg, const char *why)
{
    if (pg->close_why[0])
        return;
    snprintf(pg->close_why, sizeof(pg->close_why), "%s", why);
    notes_web__log(pg->note->ui, "page %s of note %.8s: closing: %s", pg->session,
           pg->note->hex, why);
    notes_web__want_write(pg->wsi);
}

/* ---- WebSocket ------------------------------------------------------------ */

/*
 * Should this upgrade be taken? 0, or the HTTP status of the refusal
 * (docs/web.md): 421 a foreign Host, 403 a foreign Origin or no cookie,
 * 404 not /ws or an unknown note, 400 a protocol version other than 1.
 */
int notes_web__ws_filter(notes_web *ui, struct lws *wsi)
{
    char host[128], origin[160], want[160], uri[128], note[40], v[48];
    uint8_t id[16];
    struct unote *n;
    if (!notes_web__host_ok(ui, wsi, host, sizeof(host))) {
        notes_web__log(ui, "refused a WebSocket for a foreign host '%s'", host);
        return 421;
    }
    snprintf(want, sizeof(want), "http://%s", host);
    if (notes_web__hdr_copy(wsi, NOTES_WEB__H_ORIGIN, origin, sizeof(origin)) <= 0 ||
        strcmp(origin, want) != 0) {
        notes_web__log(ui, "refused a WebSocket from origin '%s'", origin);
        return 403;
    }
    if (!notes_web__cookie_ok(ui, wsi)) {
        notes_web__log(ui, "refused a WebSocket without the token");
        return 403;
    }
    const char *nv, *vv;
    if (notes_web__hdr_copy(wsi, NOTES_WEB__H_GET_URI, uri, sizeof(uri)) <= 0 ||
        strcmp(uri, "/ws") != 0 ||
        !(nv = notes_web__urlarg(wsi, "note=", note, sizeof(note))) ||
        notes__unhex(id, 16, nv) != NOTES_OK) {
        notes_web__log(ui, "refused a WebSocket for '%s'", uri);
        return 404;
    }
    vv = notes_web__urlarg(wsi, "v=", v, sizeof(v));
    if (!vv || strcmp(vv, "1") != 0) {
        notes_web__log(ui, "refused a WebSocket for protocol version '%s'",
               vv ? vv : "(none)");
        return 400;
    }
    if (notes_web__note_open(ui, id, &n) != NOTES_OK) {
        notes_web__log(ui, "refused a WebSocket for note %s: %s", note,
                       notes_last_detail());
        return 404;
    }
    if (!n->pages)
        notes_web__note_refresh(n);
    return 0;
}

/*
 * Refuse an upgrade with an HTTP answer (written now, in one piece: the
 * connection closes when the filter callback returns), so the client sees
 * why instead of a dropped connection.
 */
void notes_web__ws_refuse(notes_web *ui, struct lws *wsi, int status)
{
    struct notes_web__header h[NOTES_WEB__SECURITY_HEADERS + 2];
    char host[64], body[64], csp[512];
    snprintf(host, sizeof(host), "127.0.0.1:%d", ui->port);
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}",
                     status == 403 ? "forbidden" : status == 421
                                                       ? "misdirected"
                                     : status == 400 ? "protocol version"
                                                     : "not found");
    notes_web__security_headers(h, csp, NULL, host);
    h[NOTES_WEB__SECURITY_HEADERS] =
        (struct notes_web__header){"cache-control:", "no-store"};
    h[NOTES_WEB__SECURITY_HEADERS + 1] =
        (struct notes_web__header){"connection:", "close"};
    (void)notes_web__head(wsi, (unsigned)status, "application/json",
                          (size_t)n, h, sizeof(h) / sizeof(*h), body);
}

void notes_web__ws_established(notes_web *ui, struct lws *wsi, struct pss *ps)
{
    char note[40];
    uint8_t id[16];
    struct unote *n;
    struct page *pg;
    memset(ps, 0, sizeof(*ps));
    notes__buf_init(&ps->rx, NOTES_WEB_MSG_MAX);
    const char *nv = notes_web__urlarg(wsi, "note=", note, sizeof(note));
    if (!nv || notes__unhex(id, 16, nv) != NOTES_OK ||
        !(n = notes_web__note_find(ui, id)) || !(pg = calloc(1, sizeof(*pg)))) {
        notes_web__kill(wsi);
        return;
    }
    pg->note = n;
    pg->wsi = wsi;
    notes_web__random_hex(pg->session, 8);
    {
        char arg[CLIENT_ID_MAX + 16];
        const char *cv = notes_web__urlarg(wsi, "client=", arg,
                                                (int)sizeof(arg));
        json_t *cj = cv ? json_string(cv) : NULL;
        if (cj && notes_web__client_id_ok(cj))
            snprintf(pg->client, sizeof(pg->client), "%s", cv);
        json_decref(cj);
    }
    pg->next = n->pages;
    n->pages = pg;
    ps->pg = pg;
    json_t *h = notes_web__hello_msg(n, pg);
    notes_web__page_send(pg, h);
    json_decref(h);
    /* The rest of the greeting (the items take a walk over the note's
     * history: 10 ms and more on a long one) once the hello is written: the
     * page shows the text meanwhile. */
    pg->greet_rest = 1;
    notes_web__log(ui, "page %s opened note %.8s", pg->session, n->hex);
}

static void greet_rest(struct page *pg)
{
    struct unote *n = pg->note;
    pg->greet_rest = 0;
    notes_web__items_send(n, pg);
    json_t *st = notes_web__status_msg(n->ui);
    notes_web__page_send(pg, st);
    json_decref(st);
    notes_web__presence_send(n);
    notes_web__presence_publish(n);
}

void notes_web__ws_closed(struct pss *ps)
{
    struct page *pg = ps->pg;
    notes__buf_release(&ps->rx);
    if (!pg)
        return;
    struct unote *n = pg->note;
    for (struct page **p = &n->pages; *p; p = &(*p)->next)
        if (*p == pg) {
            *p = pg->next;
            break;
        }
    while (pg->qh) {
        struct ui_msg *m = pg->qh;
        pg->qh = m->next;
        free(m);
    }
    json_decref(pg->ranges);
    free(pg);
    ps->pg = NULL;
    if (!n->ui->stopped)
        notes_web__presence_publish(n);
    /* The note stays open, with its update list: a page that comes back
     * (a reload) continues from its version while this daemon runs. */
    if (n->pages)
        notes_web__presence_send(n);
}

/*
 * Close now if the page must go: lws sends the close frame with our
 * reason only when the callback that returns -1 is the receive one, so
 * closes decided while reading happen here, others at the next writeable.
 */
static int ws_close_now(struct lws *wsi, struct page *pg)
{
    if (!pg->close_why[0])
        return 0;
    notes_web__ws_close_reason(wsi, pg->close_why);
    return -1;
}

int notes_web__ws_receive(struct lws *wsi, struct pss *ps, const void *in,
                          size_t len, int binary, int last)
{
    struct page *pg = ps->pg;
    if (!pg)
        return -1;
    if (binary) {
        notes_web__page_close(pg, "binary frames are not part of the protocol");
        return ws_close_now(wsi, pg);
    }
    if (ps->rx.len + len > NOTES_WEB_MSG_MAX) {
        notes_web__page_close(pg, "message over 1 MiB");
        return ws_close_now(wsi, pg);
    }
    if (notes__buf_put(&ps->rx, in, len) != NOTES_OK)
        return -1;
    if (!last)
        return 0;
    if (!pg->close_why[0])
        notes_web__page_message(pg, (const char *)ps->rx.data, ps->rx.len);
    notes__buf_release(&ps->rx);
    return ws_close_now(wsi, pg);
}

int notes_web__ws_writeable(struct lws *wsi, struct pss *ps)
{
    struct page *pg = ps->pg;
    if (!pg)
        return -1;
    if (pg->close_why[0]) {
        notes_web__ws_close_reason(wsi, pg->close_why);
        return -1;
    }
    struct ui_msg *m = pg->qh;
    if (!m) {
        /* The hello is out when libwebsockets holds none of it either. */
        if (pg->greet_rest && notes_web__ws_partial(wsi))
            notes_web__want_write(wsi);
        else if (pg->greet_rest)
            greet_rest(pg); /* queues, asks for writeable */
        return 0;
    }
    if (notes_web__ws_write(wsi, m->data + NOTES_WEB__PRE, m->len))
        return -1;
    pg->qh = m->next;
    if (!pg->qh)
        pg->qt = NULL;
    pg->qbytes -= m->len;
    free(m);
    if (pg->qh || pg->greet_rest)
        notes_web__want_write(wsi);
    return 0;
}

