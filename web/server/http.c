/*
 * http.c: the HTTP side of the page server: routes, static files from the
 * embedded bundle, the notes API, and the security checks (docs/web.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "assets.h"
#include "notes_sync.h"
#include "server_internal.h"

/* ---- HTTP ---------------------------------------------------------------- */

/* The Host header must name loopback with our port (DNS rebinding). */
int notes_web__host_ok(notes_web *ui, struct lws *wsi, char *host, size_t nhost)
{
    char want[3][48];
    if (notes_web__hdr_copy(wsi, NOTES_WEB__H_HOST, host, nhost) <= 0)
        return 0;
    snprintf(want[0], sizeof(want[0]), "127.0.0.1:%d", ui->port);
    snprintf(want[1], sizeof(want[1]), "localhost:%d", ui->port);
    snprintf(want[2], sizeof(want[2]), "[::1]:%d", ui->port);
    for (int i = 0; i < 3; i++)
        if (strcasecmp(host, want[i]) == 0)
            return 1;
    return 0;
}

static int token_ok(notes_web *ui, const char *t)
{
    size_t n = strlen(ui->token);
    return t && strlen(t) == n && notes__equal(t, ui->token, n);
}

int notes_web__cookie_ok(notes_web *ui, struct lws *wsi)
{
    char buf[128];
    size_t max = sizeof(buf);
    char name[24];
    snprintf(name, sizeof(name), "notes_%d", ui->port);
    if (notes_web__cookie(wsi, name, buf, &max))
        return 0;
    buf[max < sizeof(buf) ? max : sizeof(buf) - 1] = '\0';
    return token_ok(ui, buf);
}

/* Headers every response carries (NOTES_WEB__SECURITY_HEADERS of them). */
void notes_web__security_headers(struct notes_web__header *h, char csp[512],
                                 const char *nonce, const char *host)
{
    snprintf(csp, 512,
             "default-src 'none'; script-src 'self'; style-src 'self'%s%s%s; "
             "img-src 'self' data:; font-src 'self'; connect-src 'self' "
             "ws://%s; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'",
             nonce ? " 'nonce-" : "", nonce ? nonce : "", nonce ? "'" : "",
             host);
    h[0] = (struct notes_web__header){"content-security-policy:", csp};
    h[1] = (struct notes_web__header){"x-content-type-options:", "nosniff"};
    h[2] = (struct notes_web__header){"referrer-policy:", "no-referrer"};
    h[3] = (struct notes_web__header){"x-frame-options:", "DENY"};
    h[4] = (struct notes_web__header){"cross-origin-opener-policy:",
                                      "same-origin"};
    h[5] = (struct notes_web__header){"cross-origin-resource-policy:",
                                      "same-origin"};
}

/* The response is written: wait for the next request on the connection,
 * or close it when the rest of what the client sends cannot be framed. */
static int http_done(struct lws *wsi, struct pss *ps)
{
    if (ps->close_after)
        return -1;
    return notes_web__http_completed(wsi) ? -1 : 0;
}

/* Start a response; the body (owned or static) is written when writable. */
static int respond(struct lws *wsi, struct pss *ps, unsigned status,
                   const char *type, const void *body, size_t n, void *owned,
                   const char *nonce, const char *host, const char *extra_name,
                   const char *extra_value)
{
    struct notes_web__header h[NOTES_WEB__SECURITY_HEADERS + 3];
    char csp[512];
    size_t nh = NOTES_WEB__SECURITY_HEADERS;
    notes_web__security_headers(h, csp, nonce, host);
    /* Bundle files (with their ETag): respond_asset. */
    h[nh++] = (struct notes_web__header){
        "cache-control:",
        extra_name && strcmp(extra_name, "etag:") == 0 ? "no-cache" : "no-store"};
    if (extra_name)
        h[nh++] = (struct notes_web__header){extra_name, extra_value};
    if (ps->close_after)
        h[nh++] = (struct notes_web__header){"connection:", "close"};
    if (notes_web__head(wsi, status, type, n, h, nh, NULL)) {
        free(owned);
        return 1;
    }
    ps->body = body;
    ps->owned = owned;
    ps->blen = n;
    ps->boff = 0;
    if (n == 0) {
        free(owned);
        ps->owned = NULL;
        ps->body = NULL;
        return http_done(wsi, ps);
    }
    notes_web__want_write(wsi);
    return 0;
}

static void preopen_note(notes_web *ui);

/*
 * A file of the bundle, revalidated at each use (no-cache and its ETag): a
 * browser that has it gets 304 and keeps the compiled script it made of it
 * (V8's code cache: parsing and compiling app.js is most of a page open), and
 * a new `notes` binary's bundle is never mistaken for the old one.
 */
static int respond_asset(struct lws *wsi, struct pss *ps,
                         const struct notes_web__asset *a, const char *host)
{
    struct notes_web__header h[NOTES_WEB__SECURITY_HEADERS + 3];
    char csp[512], inm[80];
    size_t nh = NOTES_WEB__SECURITY_HEADERS;
    if (notes_web__hdr_copy(wsi, NOTES_WEB__H_IF_NONE_MATCH, inm, sizeof(inm)) <= 0 ||
        strcmp(inm, a->etag) != 0)
        return respond(wsi, ps, 200, a->type, a->data, a->len, NULL, NULL,
                       host, "etag:", a->etag);
    notes_web__security_headers(h, csp, NULL, host);
    h[nh++] = (struct notes_web__header){"cache-control:", "no-cache"};
    h[nh++] = (struct notes_web__header){"etag:", a->etag};
    if (ps->close_after)
        h[nh++] = (struct notes_web__header){"connection:", "close"};
    if (notes_web__head(wsi, 304, NULL, 0, h, nh, NULL))
        return -1;
    if (ps->preopen) { /* the browser has the script: it runs it now */
        notes_web *ui = ps->preopen;
        ps->preopen = NULL;
        preopen_note(ui);
    }
    return http_done(wsi, ps);
}

static int respond_text(struct lws *wsi, struct pss *ps, unsigned status,
                        const char *msg, const char *host)
{
    char *b = strdup(msg);
    if (!b)
        return -1;
    return respond(wsi, ps, status, "text/plain; charset=utf-8", b,
                   strlen(b), b, NULL, host, NULL, NULL);
}

static int respond_json(struct lws *wsi, struct pss *ps, unsigned status,
                        json_t *j, const char *host)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return -1;
    return respond(wsi, ps, status, "application/json", s, strlen(s), s, NULL,
                   host, NULL, NULL);
}

static int json_error(struct lws *wsi, struct pss *ps, unsigned status,
                      const char *msg, const char *host)
{
    return respond_json(wsi, ps, status, json_pack("{s:s}", "error", msg),
                        host);
}

/* An HTML shell with its {{NONCE}} placeholders replaced. */
/*
 * The page's one HTML file (web/src/page.html) with its placeholders
 * filled: {{NONCE}} (the CSP nonce of this answer), {{PAGE}} ("index" or
 * "note": what the script shows) and {{CLI}} (the commands that do the
 * same without JavaScript).
 */
static int respond_html(struct lws *wsi, struct pss *ps, const char *page,
                        const char *cli, const char *host)
{
    const struct notes_web__asset *a = notes_web__asset_find("page.html");
    char nonce[33];
    struct {
        const char *ph, *value;
    } fill[] = {{"{{NONCE}}", nonce}, {"{{PAGE}}", page}, {"{{CLI}}", cli}};
    const size_t nfill = sizeof(fill) / sizeof(fill[0]);
    struct notes_buf out;
    if (!a)
        return respond_text(wsi, ps, 500,
                            "the page bundle (web/dist) was missing when "
                            "notes was built\n",
                            host);
    notes_web__random_hex(nonce, 16);
    notes__buf_init(&out, 1u << 20);
    for (const char *s = (const char *)a->data, *e = s + a->len; s < e;) {
        const char *hit = NULL;
        size_t which = 0;
        for (size_t i = 0; i < nfill; i++) {
            const char *h = memmem(s, (size_t)(e - s), fill[i].ph,
                                   strlen(fill[i].ph));
            if (h && (!hit || h < hit))
                hit = h, which = i;
        }
        size_t k = hit ? (size_t)(hit - s) : (size_t)(e - s);
        if (notes__buf_put(&out, s, k) ||
            (hit && notes__buf_puts(&out, fill[which].value))) {
            notes__buf_release(&out);
            return -1;
        }
        s += k + (hit ? strlen(fill[which].ph) : 0);
    }
    uint8_t *body;
    size_t n;
    if (notes__buf_detach(&out, &body, &n))
        return -1;
    return respond(wsi, ps, 200, "text/html; charset=utf-8", (char *)body, n,
                   (char *)body, nonce, host, NULL, NULL);
}

static json_t *notes_list_json(notes_web *ui)
{
    uint8_t(*ids)[16] = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    if (notes_replica_list(ui->r, &ids, &n) != NOTES_OK)
        return arr;
    for (size_t i = 0; i < n && i < NOTES_LIST_MAX; i++) {
        notes_doc *d;
        char hex[33], space[NOTES_SPACE_NAME_MAX + 1] = "";
        struct unote *open = notes_web__note_find(ui, ids[i]);
        if (open) {
            d = open->d;
        } else if (notes_doc_open(ui->r, ids[i], &d) != NOTES_OK) {
            continue;
        }
        notes__hex(hex, ids[i], 16);
        size_t nc = notes_doc_change_count(d);
        notes_change_info ci;
        uint64_t updated = 0;
        if (nc && notes_doc_change(d, nc - 1, &ci) == NOTES_OK)
            updated = ci.time_ms;
        if (notes_sync_space_of_note(notes_replica_home(ui->r), ids[i], space))
            space[0] = '\0';
        json_array_append_new(
            arr, json_pack("{s:s, s:s?, s:s?, s:I, s:I, s:s}", "id", hex,
                           "title", notes_doc_field(d, "title"), "datetime",
                           notes_doc_field(d, "datetime"), "updated_ms",
                           (json_int_t)updated, "changes", (json_int_t)nc,
                           "space", space));
        if (!open)
            notes_doc_free(d);
    }
    notes_free(ids);
    /* Newest first. */
    size_t k = json_array_size(arr);
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(arr, j - 1), *b = json_array_get(arr, j);
            if (json_integer_value(json_object_get(a, "updated_ms")) >=
                json_integer_value(json_object_get(b, "updated_ms")))
                break;
            json_incref(a);
            json_array_set(arr, j - 1, b);
            json_array_set_new(arr, j, a);
        }
    return arr;
}

static json_t *spaces_json(notes_web *ui)
{
    char **names = NULL;
    size_t n = 0;
    json_t *a = json_array();
    if (notes_sync_space_list(notes_replica_home(ui->r), &names, &n) == NOTES_OK) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_string(names[i]));
        notes_sync_space_names_free(names, n);
    }
    return a;
}

/* POST /api/notes and /api/import: create a note, answer its id. */
static int api_create(notes_web *ui, struct lws *wsi, struct pss *ps,
                      const char *host)
{
    json_error_t err;
    json_t *req = json_loadb(ps->post.data ? (const char *)ps->post.data : "", ps->post.len,
                             JSON_REJECT_DUPLICATES, &err);
    notes_doc *d = NULL;
    int rc;
    char hex[33];
    if (!json_is_object(req)) {
        json_decref(req);
        return json_error(wsi, ps, 400, "the body is not a JSON object", host);
    }
    const char *space = json_string_value(json_object_get(req, "space"));
    if (space && *space && strcmp(space, NOTES_SPACE_DEFAULT) != 0) {
        notes_sync_space sp;
        if (notes_sync_space_load(notes_replica_home(ui->r), space, &sp)) {
            json_decref(req);
            return json_error(wsi, ps, 400, "no such space", host);
        }
        notes_sync_space_clear(&sp);
    }
    if (notes_doc_create(ui->r, &d) != NOTES_OK) {
        json_decref(req);
        return json_error(wsi, ps, 500, notes_last_detail(), host);
    }
    if (strcmp(ps->route, "import") == 0) {
        json_t *md = json_object_get(req, "markdown");
        notes_fmt_diag diag;
        memset(&diag, 0, sizeof(diag));
        if (!json_is_string(md)) {
            rc = NOTES_EINVAL;
            snprintf(diag.msg, sizeof(diag.msg), "no \"markdown\" string");
        } else {
            rc = notes_fmt_md_import(d, json_string_value(md),
                                 json_string_length(md), &diag);
        }
        if (!rc && !notes_doc_dirty(d))
            rc = notes_doc_set_field(d, "title", "Imported note");
        if (rc) {
            char why[300];
            snprintf(why, sizeof(why), "line %zu: %s", diag.line,
                     diag.msg[0] ? diag.msg : notes_strerror(rc));
            notes_doc_free(d);
            json_decref(req);
            return json_error(wsi, ps, 400, why, host);
        }
    } else {
        const char *title = json_string_value(json_object_get(req, "title"));
        char when[40];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
        if (!title || !*title)
            title = "Meeting";
        /* Code points: jansson checked the UTF-8. */
        if (notes__utf8_count((const uint8_t *)title, strlen(title)) >
            UI_TITLE_MAX) {
            notes_doc_free(d);
            json_decref(req);
            return json_error(wsi, ps, 400, "the title is longer than 200 "
                                            "characters", host);
        }
        if (notes_fmt_meeting_new(d, title, when, notes_replica_name(ui->r)) !=
            NOTES_OK) {
            notes_doc_free(d);
            json_decref(req);
            return json_error(wsi, ps, 400, notes_last_detail(), host);
        }
    }
    if (notes_doc_commit(d, NULL) != NOTES_OK) {
        notes_doc_free(d);
        json_decref(req);
        return json_error(wsi, ps, 500, notes_last_detail(), host);
    }
    notes__hex(hex, notes_doc_id(d), 16);
    if (space && *space && strcmp(space, NOTES_SPACE_DEFAULT) != 0 &&
        notes_sync_space_add_note(notes_replica_home(ui->r), space,
                             notes_doc_id(d)) != NOTES_OK)
        notes_web__log(ui, "note %.8s: not added to space %s: %s", hex, space,
               notes_sync_last_detail());
    notes_web__log(ui, "note %.8s created from the page", hex);
    notes_doc_free(d);
    json_decref(req);
    return respond_json(wsi, ps, 201, json_pack("{s:s}", "id", hex), host);
}

/* Redirect to `path` setting the cookie: the token leaves the URL (and
 * the history) at once. */
static int redirect_with_cookie(notes_web *ui, struct lws *wsi, struct pss *ps,
                                const char *path, const char *host)
{
    struct notes_web__header h[NOTES_WEB__SECURITY_HEADERS + 3];
    char cookie[160], csp[512];
    (void)ps;
    snprintf(cookie, sizeof(cookie),
             "notes_%d=%s; Path=/; HttpOnly; SameSite=Strict", ui->port,
             ui->token);
    h[0] = (struct notes_web__header){"location:", path};
    h[1] = (struct notes_web__header){"set-cookie:", cookie};
    notes_web__security_headers(h + 2, csp, NULL, host);
    h[NOTES_WEB__SECURITY_HEADERS + 2] =
        (struct notes_web__header){"cache-control:", "no-store"};
    /* No type: the status, these headers, then Content-Length: 0. */
    if (notes_web__head(wsi, 303, NULL, 0, h, sizeof(h) / sizeof(*h), NULL))
        return -1;
    return notes_web__http_completed(wsi) ? -1 : 0;
}

/*
 * `uri` and its query arguments but the token: the token leaves the URL,
 * anything else the link carried (say ?line=12) stays. libwebsockets
 * hands the arguments decoded, so each is encoded again. 0 if it does not
 * fit in `out`.
 */
static int path_without_token(struct lws *wsi, const char *uri, char *out,
                              size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    char arg[512];
    size_t o = (size_t)snprintf(out, n, "%s", uri);
    int sep = '?';
    if (o >= n)
        return 0;
    for (int i = 0;; i++) {
        int len = notes_web__urlarg_at(wsi, i, arg, sizeof(arg));
        if (len < 0)
            break;
        if (len == 0 || strncmp(arg, "token=", 6) == 0)
            continue;
        if (o + 1 >= n)
            return 0;
        out[o++] = (char)sep;
        sep = '&';
        int eq = 0;
        for (int k = 0; k < len; k++) {
            unsigned char c = (unsigned char)arg[k];
            int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                        c == '_' || c == '~' || (c == '=' && !eq);
            eq |= c == '=';
            if (o + 4 >= n)
                return 0;
            if (plain) {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = hexd[c >> 4];
                out[o++] = hexd[c & 15];
            }
        }
    }
    out[o] = 0;
    return 1;
}

static int is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int notes_web__http_request(notes_web *ui, struct lws *wsi, struct pss *ps,
                        const char *uri)
{
    char host[128], tok[80];
    /* A new request, maybe on a kept-alive connection: what the last one
     * held is freed before its state is cleared (lws zeroes it at first). */
    notes_web__http_closed(ps);
    memset(ps, 0, sizeof(*ps));
    notes__buf_init(&ps->post, UI_IMPORT_BODY_MAX);
    int is_get = notes_web__hdr_len(wsi, NOTES_WEB__H_GET_URI) > 0;
    int is_post = notes_web__hdr_len(wsi, NOTES_WEB__H_POST_URI) > 0;
    if (!notes_web__host_ok(ui, wsi, host, sizeof(host))) {
        notes_web__log(ui, "refused a request for a foreign host '%s'", host);
        snprintf(host, sizeof(host), "127.0.0.1:%d", ui->port);
        return respond_text(wsi, ps, 421, "misdirected: not a loopback host\n",
                            host);
    }
    const char *tv = notes_web__urlarg(wsi, "token=", tok, sizeof(tok));
    if (tv) {
        char to[1024];
        if (!token_ok(ui, tv)) {
            notes_web__log(ui, "refused a wrong token for %s", uri);
            return respond_text(wsi, ps, 403, "forbidden: wrong token\n", host);
        }
        if (!path_without_token(wsi, uri, to, sizeof(to)))
            return respond_text(wsi, ps, 414, "the address is too long\n", host);
        return redirect_with_cookie(ui, wsi, ps, to, host);
    }
    if (!notes_web__cookie_ok(ui, wsi)) {
        notes_web__log(ui, "refused a request without the token for %s", uri);
        return respond_text(wsi, ps, 403,
                            "forbidden: open this page with `notes open`\n",
                            host);
    }
    if (is_get) {
        if (strcmp(uri, "/favicon.ico") == 0) /* none: say so quietly */
            return respond(wsi, ps, 204, "image/x-icon", NULL, 0, NULL, NULL,
                           host, NULL, NULL);
        if (strcmp(uri, "/") == 0)
            return respond_html(wsi, ps, "index",
                                "<code>notes list</code>, <code>notes show</code>",
                                host);
        if (strncmp(uri, "/n/", 3) == 0 && is_hex32(uri + 3)) {
            ui->preopen_on = notes__unhex(ui->preopen, 16, uri + 3) == NOTES_OK;
            return respond_html(wsi, ps, "note", "<code>notes edit</code>",
                                host);
        }
        if (strncmp(uri, "/assets/", 8) == 0) {
            const struct notes_web__asset *a = notes_web__asset_find(uri + 8);
            if (a && strcmp(uri + 8, "app.js") == 0 && ui->preopen_on)
                ps->preopen = ui;
            if (a && strstr(uri + 8, ".html") == NULL)
                return respond_asset(wsi, ps, a, host);
        }
        if (strcmp(uri, "/api/search") == 0) {
            unsigned status;
            json_t *j = notes_web__search(ui, wsi, &status);
            return respond_json(wsi, ps, status, j, host);
        }
        if (strcmp(uri, "/api/notes") == 0)
            return respond_json(wsi, ps, 200,
                                json_pack("{s:i, s:o, s:o}", "v", 1, "notes",
                                          notes_list_json(ui), "spaces",
                                          spaces_json(ui)),
                                host);
        return respond_text(wsi, ps, 404, "not found\n", host);
    }
    if (is_post) {
        char type[64] = "", origin[128] = "", want[160], cl[24] = "";
        unsigned long long len, max;
        /*
         * The answer waits for the end of the body (the client is still
         * sending it); a refusal is noted here and given then. A POST
         * without a body is answered now: no body callbacks will come.
         */
        notes_web__hdr_copy(wsi, NOTES_WEB__H_CONTENT_TYPE, type, sizeof(type));
        snprintf(want, sizeof(want), "http://%s", host);
        /* A form or a text/plain POST from another site cannot carry
         * this type without a CORS preflight, which we never allow. */
        if (strncasecmp(type, "application/json", 16) != 0)
            ps->err = 415, snprintf(ps->err_msg, sizeof(ps->err_msg), "send JSON");
        /* Browsers send Origin with every POST, the page's own fetch
         * included: one that is missing cannot be shown to be ours. */
        else if (notes_web__hdr_copy(wsi, NOTES_WEB__H_ORIGIN, origin, sizeof(origin)) <= 0)
            ps->err = 403, snprintf(ps->err_msg, sizeof(ps->err_msg), "no Origin");
        else if (strcmp(origin, want) != 0)
            ps->err = 403, snprintf(ps->err_msg, sizeof(ps->err_msg), "foreign origin");
        else if (strcmp(uri, "/api/notes") == 0)
            snprintf(ps->route, sizeof(ps->route), "new");
        else if (strcmp(uri, "/api/import") == 0)
            snprintf(ps->route, sizeof(ps->route), "import");
        else
            ps->err = 404, snprintf(ps->err_msg, sizeof(ps->err_msg), "not found");
        /*
         * libwebsockets (4.1) reads a request body by its Content-Length
         * only: a chunked body (what a client sends without a length)
         * never reaches the body callbacks, and its bytes would be taken
         * for the next request on the connection, which then hangs until
         * the idle timeout. So: answer at once (the refusal, or 411) and
         * close the connection after the answer. Likewise a body over the
         * route's limit is refused at once (413) without reading it.
         */
        if (notes_web__hdr_len(wsi, NOTES_WEB__H_TRANSFER_ENCODING) > 0) {
            ps->close_after = 1;
            if (!ps->err)
                ps->err = 411, snprintf(ps->err_msg, sizeof(ps->err_msg),
                                        "send a Content-Length");
            return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
        }
        notes_web__hdr_copy(wsi, NOTES_WEB__H_CONTENT_LENGTH, cl, sizeof(cl));
        len = strtoull(cl, NULL, 10);
        max = strcmp(ps->route, "import") == 0 ? UI_IMPORT_BODY_MAX
                                                : UI_POST_BODY_MAX;
        if (len > max) {
            ps->close_after = 1;
            if (!ps->err)
                ps->err = 413, snprintf(ps->err_msg, sizeof(ps->err_msg),
                                        "the body is too large");
            return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
        }
        if (len == 0) {
            if (ps->err)
                return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
            return api_create(ui, wsi, ps, host);
        }
        return 0; /* the body follows */
    }
    return respond_text(wsi, ps, 405, "method not allowed\n", host);
}


/* ---- the body of a POST, and the response's ------------------------------ */

int notes_web__http_body(struct pss *ps, const void *in, size_t len)
{
    if (ps->err)
        return 0; /* refused already: read and drop */
    if (!ps->route[0])
        return -1;
    /* Over UI_IMPORT_BODY_MAX: more than its Content-Length, a broken
     * client. */
    return notes__buf_put(&ps->post, in, len) == NOTES_OK ? 0 : -1;
}

int notes_web__http_body_done(notes_web *ui, struct lws *wsi, struct pss *ps)
{
    char host[128];
    if (!notes_web__host_ok(ui, wsi, host, sizeof(host)))
        return -1;
    if (ps->err)
        return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
    return api_create(ui, wsi, ps, host);
}

/*
 * Open the note whose page was just served, once its script has gone out:
 * the browser then spends tens of milliseconds parsing the script, the
 * daemon would be idle, and the page's WebSocket finds the note open (its
 * hello no longer waits for the log to be read). A note that does not open
 * is left to the WebSocket, which says why.
 */
static void preopen_note(notes_web *ui)
{
    struct unote *n;
    if (!ui->preopen_on)
        return;
    ui->preopen_on = 0;
    if (!notes_web__note_find(ui, ui->preopen))
        (void)notes_web__note_open(ui, ui->preopen, &n);
}

int notes_web__http_writeable(struct lws *wsi, struct pss *ps)
{
    if (!ps->body)
        return 0;
    size_t chunk = ps->blen - ps->boff;
    if (chunk > NOTES_WEB__HTTP_CHUNK)
        chunk = NOTES_WEB__HTTP_CHUNK;
    int last = ps->boff + chunk == ps->blen;
    if (notes_web__http_write(wsi, ps->body + ps->boff, chunk, last))
        return -1;
    ps->boff += chunk;
    if (!last) {
        notes_web__want_write(wsi);
        return 0;
    }
    free(ps->owned);
    ps->owned = NULL;
    ps->body = NULL;
    if (ps->preopen) {
        notes_web *ui = ps->preopen;
        ps->preopen = NULL;
        preopen_note(ui);
    }
    return http_done(wsi, ps);
}

void notes_web__http_closed(struct pss *ps)
{
    free(ps->owned);
    ps->owned = NULL;
    ps->body = NULL;
    notes__buf_release(&ps->post);
}
