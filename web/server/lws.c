/*
 * lws.c: libwebsockets behind one file: only this file includes
 * <libwebsockets.h>. The rest of the page server sees a connection as an
 * opaque struct lws and calls the small interface declared at the end of
 * server_internal.h; this file turns lws' callbacks into calls of http.c
 * and ws.c.
 */
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "server_internal.h"

_Static_assert(LWS_PRE <= NOTES_WEB__PRE,
               "queued WebSocket messages keep LWS_PRE bytes of headroom");

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    struct pss *ps = user;
    notes_web *ui = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return notes_web__http_request(ui, wsi, ps, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        return notes_web__http_body(ps, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return notes_web__http_body_done(ui, wsi, ps);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return notes_web__http_writeable(wsi, ps);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (ps)
            notes_web__http_closed(ps);
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        int status = notes_web__ws_filter(ui, wsi);
        if (status)
            notes_web__ws_refuse(ui, wsi, status);
        return status ? 1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        notes_web__ws_established(ui, wsi, ps);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return notes_web__ws_receive(
            wsi, ps, in, len, lws_frame_is_binary(wsi),
            lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi));
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return notes_web__ws_writeable(wsi, ps);
    case LWS_CALLBACK_CLOSED:
        notes_web__ws_closed(ps);
        return 0;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"notes", callback, sizeof(struct pss), 4096, 0, NULL,
     NOTES_WEB__HTTP_CHUNK},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

/* ---- the connection -------------------------------------------------------- */

static const enum lws_token_indexes tokens[] = {
    [NOTES_WEB__H_HOST] = WSI_TOKEN_HOST,
    [NOTES_WEB__H_ORIGIN] = WSI_TOKEN_ORIGIN,
    [NOTES_WEB__H_GET_URI] = WSI_TOKEN_GET_URI,
    [NOTES_WEB__H_POST_URI] = WSI_TOKEN_POST_URI,
    [NOTES_WEB__H_CONTENT_TYPE] = WSI_TOKEN_HTTP_CONTENT_TYPE,
    [NOTES_WEB__H_CONTENT_LENGTH] = WSI_TOKEN_HTTP_CONTENT_LENGTH,
    [NOTES_WEB__H_TRANSFER_ENCODING] = WSI_TOKEN_HTTP_TRANSFER_ENCODING,
    [NOTES_WEB__H_IF_NONE_MATCH] = WSI_TOKEN_HTTP_IF_NONE_MATCH,
};

int notes_web__hdr_copy(struct lws *wsi, enum notes_web__hdr h, char *buf,
                        size_t n)
{
    return lws_hdr_copy(wsi, buf, (int)n, tokens[h]);
}

int notes_web__hdr_len(struct lws *wsi, enum notes_web__hdr h)
{
    return lws_hdr_total_length(wsi, tokens[h]);
}

const char *notes_web__urlarg(struct lws *wsi, const char *name, char *buf,
                              size_t n)
{
    return lws_get_urlarg_by_name(wsi, name, buf, (int)n);
}

int notes_web__urlarg_at(struct lws *wsi, int i, char *buf, size_t n)
{
    return lws_hdr_copy_fragment(wsi, buf, (int)n, WSI_TOKEN_HTTP_URI_ARGS, i);
}

int notes_web__cookie(struct lws *wsi, const char *name, char *buf, size_t *n)
{
    return lws_http_cookie_get(wsi, name, buf, n);
}

static int add_hdrs(struct lws *wsi, const struct notes_web__header *h,
                    size_t nh, unsigned char **p, unsigned char *end)
{
    for (size_t i = 0; i < nh; i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i].name,
                                        (const unsigned char *)h[i].value,
                                        (int)strlen(h[i].value), p, end))
            return 1;
    return 0;
}

int notes_web__head(struct lws *wsi, unsigned status, const char *type,
                    size_t len, const struct notes_web__header *h, size_t nh,
                    const void *inline_body)
{
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                        *end = buf + sizeof(buf) - 1;
    if (!type) {
        if (lws_add_http_header_status(wsi, status, &p, end) ||
            add_hdrs(wsi, h, nh, &p, end) ||
            lws_add_http_header_content_length(wsi, len, &p, end) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return 1;
        return 0;
    }
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)len, &p,
                                    end) ||
        add_hdrs(wsi, h, nh, &p, end))
        return 1;
    if (!inline_body)
        return lws_finalize_write_http_header(wsi, start, &p, end) ? 1 : 0;
    if (lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < len)
        return 1;
    memcpy(p, inline_body, len);
    p += len;
    lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
    return 0;
}

int notes_web__http_write(struct lws *wsi, const void *p, size_t n, int last)
{
    static unsigned char buf[LWS_PRE + NOTES_WEB__HTTP_CHUNK]; /* one loop */
    if (n > NOTES_WEB__HTTP_CHUNK)
        return -1;
    memcpy(buf + LWS_PRE, p, n);
    return lws_write(wsi, buf + LWS_PRE, n,
                     last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) == (int)n
               ? 0
               : -1;
}

int notes_web__http_completed(struct lws *wsi)
{
    return lws_http_transaction_completed(wsi);
}

void notes_web__want_write(struct lws *wsi)
{
    lws_callback_on_writable(wsi);
}

int notes_web__ws_write(struct lws *wsi, unsigned char *p, size_t n)
{
    return lws_write(wsi, p, n, LWS_WRITE_TEXT) < (int)n ? -1 : 0;
}

int notes_web__ws_partial(struct lws *wsi)
{
    return lws_partial_buffered(wsi);
}

void notes_web__ws_close_reason(struct lws *wsi, char *why)
{
    lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                     (unsigned char *)why, strlen(why));
}

void notes_web__kill(struct lws *wsi)
{
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

/* ---- the server ------------------------------------------------------------ */

static void lws_log_quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

int notes_web__lws_start(notes_web *ui, void *loop, int port)
{
    struct lws_context_creation_info info;
    void *foreign[1] = {loop};
    lws_set_log_level(LLL_ERR, lws_log_quiet);
    memset(&info, 0, sizeof(info));
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV |
                   LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.foreign_loops = foreign;
    info.user = ui;
    info.max_http_header_data = 4096;
    info.timeout_secs = 20;
    info.ka_time = 0;
    info.port = port;
    ui->ctx = lws_create_context(&info);
    return ui->ctx ? NOTES_OK : NOTES_EIO;
}

void notes_web__lws_stop(notes_web *ui)
{
    /* Pages' connections close with the context (LWS_CALLBACK_CLOSED
     * frees them). */
    lws_context_destroy(ui->ctx);
    ui->ctx_dying = ui->ctx;
    ui->ctx = NULL;
}

void notes_web__lws_free(notes_web *ui)
{
    /* With a foreign libuv loop the context is destroyed in two steps:
     * notes_web_stop starts it, the loop closes lws' handles, this ends it
     * (libwebsockets issue #1969). */
    if (ui->ctx_dying)
        lws_context_destroy(ui->ctx_dying);
}
