/*
 * server_internal.h: what the files of the page server (web/server, the
 * browser page of `notes serve`) share, and nobody else sees: HTTP and
 * WebSocket with libwebsockets on the daemon's libuv loop (docs/web.md).
 *
 * Editing follows @codemirror/collab's central-authority model with this
 * process as the authority: per open note a linear list of updates
 * (CodeMirror ChangeSets, UTF-16 positions) numbered from 0 since the
 * daemon started. A page pushes its edits against the version it last
 * saw; a push at the current version is applied to the note as splices,
 * signed and committed, and broadcast; a stale push is ignored (the page
 * rebases over the updates it receives and pushes again). Changes that
 * reach the store from elsewhere (a peer through the sync side, a CLI
 * command) are read by notes_doc_refresh and arrive through
 * notes_doc_observe as the transformed operations they are, each becoming
 * an update; so a page rebases its own unacknowledged keystrokes over
 * exactly what happened.
 *
 * Security (docs/web.md): loopback only; a per-daemon token, given once in
 * the URL and then kept in an HttpOnly SameSite=Strict cookie; the Host
 * must be a loopback name (DNS rebinding) and a WebSocket's Origin the
 * page's own; a CSP without inline script; POSTs only as JSON; messages
 * bounded; anything malformed closes the connection, the replica
 * untouched.
 */
#ifndef NOTES_WEB_SERVER_INTERNAL_H
#define NOTES_WEB_SERVER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "notes_formats.h"
#include "notes_web.h"

#define HIST_MAX 20000      /* updates kept per note; older: reload */
#define OUT_MAX (16u << 20) /* bytes queued per page before it is dropped */
#define CLIENT_ID_MIN 16
#define CLIENT_ID_MAX 64
#define TAKEN_MAX 64        /* clientIDs whose taken count a note keeps */
#define PUSH_UPDATES_MAX 10000
#define RANGES_MAX 100
#define ITEMS_DELAY_MS 250  /* outline recomputed at most this often */
#define CONFLICTS_EVERY_MS 2000 /* line conflicts listed at most this often */
#define STATUS_MS 1000
#define NOTES_LIST_MAX 5000
#define CHANGED_MAX 64     /* notes told changed between two loop turns */
#define CONFIRM_TEXT_MAX (64u << 10) /* bytes of an item text to confirm */
#define CONFIRM_OWNER_MAX 256
#define UI_POST_BODY_MAX (64u << 10)                       /* POST /api/notes */
#define UI_TITLE_MAX 200 /* characters (docs/web.md, POST /api/notes) */
#define UI_IMPORT_BODY_MAX (NOTES_MD_MAX_BYTES * 5 / 2)    /* JSON-escaped */

/* Headroom libwebsockets needs before a frame it writes (its LWS_PRE,
 * checked in lws.c), so a queued message is sent without a copy. */
#define NOTES_WEB__PRE 16
/* Bytes of a body written at once (also lws' tx_packet_size, lws.c): each
 * write waits for the next writeable callback, and the page's 380 KB script
 * in 4 KiB pieces cost a hundred turns of the loop. */
#define NOTES_WEB__HTTP_CHUNK 65536

struct ui_msg {
    struct ui_msg *next;
    size_t len;
    unsigned char data[]; /* NOTES_WEB__PRE bytes of headroom, then the JSON */
};

struct unote;

/* Someone with the note open on another daemon, as its last signed
 * presence record said (docs/web.md, "Presence"). */
struct remote {
    struct remote *next;
    uint8_t key[32];
    json_t *people;         /* that daemon's pages: [{session, name, ...}] */
    uint64_t seen_ms;
};

#define PRESENCE_TTL_MS 30000   /* a remote entry not refreshed expires */
#define PRESENCE_BEAT_MS 10000  /* we refresh ours while pages are open */


struct page {
    struct page *next;      /* in the note's list */
    struct unote *note;
    struct lws *wsi;
    char session[17];
    char client[CLIENT_ID_MAX + 1]; /* the page's clientID (?client=), or "" */
    struct ui_msg *qh, *qt;
    size_t qbytes;
    json_t *ranges;         /* last cursor ranges, or NULL */
    unsigned long ranges_version;
    char close_why[120];    /* set: close at the next writeable */
    int greet_rest;         /* items, status, presence: after the hello */
};

struct unote {
    struct unote *next;
    struct notes_web *ui;
    uint8_t id[16];
    char hex[33];
    notes_doc *d;           /* shared with sync (notes_doc_open_shared) */
    size_t counted;         /* changes of d the pages were told about */
    struct notes_buf mirror; /* the text as the pages see it (NUL past len) */
    size_t len16;           /* UTF-16 length */
    size_t lencp;           /* length in code points */
    json_t *hist;           /* updates [base, version) */
    unsigned long base, version;
    json_t *remote;         /* updates observed from elsewhere, unsent */
    json_t *own;            /* updates a page's commit is making, or NULL */
    char own_cid[CLIENT_ID_MAX + 1]; /* that page's clientID */
    struct vmark {          /* per version [base, version]: coedit.c */
        uint8_t (*heads)[32];
        size_t nheads;
        uint8_t change[32]; /* the page's change update v belongs to */
        uint8_t has_change, has_heads;
        size_t lencp;       /* with has_heads: the text's length there */
        long delta;         /* with has_change, on the batch's first update:
                             * code points the push added to its page's text */
    } *marks;
    size_t capmarks;
    json_t *conflicts;      /* line conflicts as last listed (conflicts.c) */
    size_t conflicts_at;    /* the note's change count then */
    uint64_t conflicts_ms;  /* and when */
    int conflicts_stale;    /* a newer change is not in the list yet */
    int reset;              /* the state was rebuilt: pages must reload */
    struct page *pages;
    struct remote *remotes; /* people on other daemons (presence) */
    uv_timer_t items_timer;
    int items_timer_on, items_due;
    uint64_t items_last_ms;
    char *items_json;       /* last sent, to skip repeats */
    char *fields_json;      /* front matter last sent */
    char epoch[17];         /* names the update list; new after a reset */
    char peer_id[48];       /* clientID of updates from elsewhere */
    /* Updates committed per page clientID, across daemon restarts (a file
     * in the replica): a page that reconnects to a new epoch learns how
     * many of its unacknowledged updates were taken (hello "taken"). */
    struct taken {
        char cid[CLIENT_ID_MAX + 1];
        unsigned long n;
    } taken[TAKEN_MAX];
    size_t ntaken;          /* oldest first */
    int taken_dirty;        /* counts not yet written (the flush timer) */
};

/* What a file of the replica looked like when last read. */
struct file_seen {
    int valid;
    struct timespec mtime;
    off_t size;
    ino_t ino;
};

struct lws;         /* a connection: opaque outside lws.c */
struct lws_context; /* the server: opaque outside lws.c */

struct notes_web {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_context *ctx_dying; /* notes_web_free ends its destruction */
    notes_replica *r;
    char token[44];
    char epoch[17];
    int port;
    char me_key[NOTES_KEY_STRLEN], me_fp[NOTES_FPR_STRLEN], me_color[8];
    struct unote *notes;
    uint8_t preopen[16];    /* the note whose page shell was served last */
    int preopen_on;
    uv_fs_event_t watch;
    /* Notes libnotes said changed, refreshed on the loop (watch.c). */
    uv_async_t changed;
    pthread_mutex_t changed_lock;
    uint8_t changed_ids[CHANGED_MAX][16];
    size_t nchanged;
    int changed_all, subscribed;
    char *home_real;        /* the replica's folder, resolved */
    uv_timer_t status_timer;
    /* Open notes commit with the state file deferred (NOTES_DEFER_STATE:
     * the log is synced, then sync and the other pages are told); this
     * timer writes it soon after (coedit.c). */
    uv_timer_t flush_timer;
    int watching, timing, stopped;
    notes_web_opts cb;      /* the caller's callbacks (log, status, publish) */
    char *status_json;
    uint64_t last_beat_ms;
    /* People (docs/trust.md): the user's names for keys, this replica's
     * person; read again when HOME/trust or HOME/certs change. */
    notes_petnames pets;
    struct file_seen trust_seen, certs_seen;
    int has_person;
    uint8_t person[32];
    char person_name[NOTES_NAME_MAX + 1];
};

/* Per connection (HTTP request or WebSocket). */
struct pss {
    struct page *pg;        /* WebSocket: the page */
    struct notes_buf rx;    /* WebSocket: a message being assembled */
    /* HTTP response being written */
    const unsigned char *body;
    void *owned;            /* body, when it is ours to free */
    size_t blen, boff;
    /* POST being received */
    struct notes_buf post;
    char route[16];
    int err;                /* refused: the status, given after the body */
    char err_msg[40];
    int close_after;        /* close the connection after the response */
    struct notes_web *preopen; /* the page's script: open the note after it */
};

/* Who a device key is in note d (fields borrowed from d and ui). */
struct who {
    const uint8_t *device;
    const uint8_t *key;  /* the person key when linked, else the device's */
    const char *name;    /* the user's name for it, else the claimed one, or
                          * NULL when nothing is claimed */
    int linked;          /* linked to exactly one person in the note */
    int known;           /* named by the user (HOME/trust), or this replica */
    int mine;            /* this replica's device or person */
    int contested, revoked;
    char fp[NOTES_FPR_STRLEN];
    char color[8];       /* derived from key */
};

/* ---- state.c ---- */
void notes_web__log(notes_web *ui, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t notes_web__now_ms(void);
void notes_web__random_hex(char *out, size_t bytes);

/* ---- utf16.c: UTF-16 positions over valid UTF-8 ---- */
size_t notes_web__u8len(unsigned char c);
int notes_web__u16_locate(const char *s, size_t n, size_t from, size_t cp0,
                          size_t u0, size_t u16, size_t *cp, size_t *byte);
size_t notes_web__u16_count(const char *s, size_t n);

/* ---- people.c ---- */
void notes_web__key_color(const uint8_t pk[32], char out[8]);
void notes_web__people_refresh(notes_web *ui);
void notes_web__people_clear(notes_web *ui);
void notes_web__who_of(notes_web *ui, notes_doc *d, const uint8_t device[32],
                       struct who *w);
json_t *notes_web__who_json(const struct who *w, notes_doc *d);
json_t *notes_web__who_json_of(notes_web *ui, notes_doc *d,
                               const uint8_t device[32]);
json_t *notes_web__own_person_json(notes_web *ui);
json_t *notes_web__confirms_json(notes_web *ui, notes_doc *d,
                                 const notes_fmt_confirm *c, size_t n);

/* ---- ws.c ---- */
void notes_web__page_send_str(struct page *pg, const char *s, size_t n);
void notes_web__page_send(struct page *pg, json_t *msg);
void notes_web__note_broadcast(struct unote *n, json_t *msg);
void notes_web__page_close(struct page *pg, const char *why);
int notes_web__ws_filter(notes_web *ui, struct lws *wsi);
void notes_web__ws_refuse(notes_web *ui, struct lws *wsi, int status);
void notes_web__ws_established(notes_web *ui, struct lws *wsi, struct pss *ps);
void notes_web__ws_closed(struct pss *ps);
int notes_web__ws_receive(struct lws *wsi, struct pss *ps, const void *in,
                          size_t len, int binary, int last);
int notes_web__ws_writeable(struct lws *wsi, struct pss *ps);

/* ---- coedit.c ---- */
json_t *notes_web__hello_msg(struct unote *n, struct page *pg);
void notes_web__note_flush_remote(struct unote *n);
struct unote *notes_web__note_find(notes_web *ui, const uint8_t id[16]);
int notes_web__note_open(notes_web *ui, const uint8_t id[16],
                         struct unote **out);
void notes_web__note_release(struct unote *n);
/* Write the state files that open notes' commits deferred, soon. */
void notes_web__flush_soon(notes_web *ui);
void notes_web__note_refresh(struct unote *n);
void notes_web__note_reopen(struct unote *n);
int notes_web__client_id_ok(json_t *cid);
void notes_web__page_message(struct page *pg, const char *p, size_t n);

/* ---- watch.c ---- */
void notes_web__watch_start(notes_web *ui);
void notes_web__watch_stop(notes_web *ui);
void notes_web__watch_free(notes_web *ui);

/* ---- requests.c ---- */
void notes_web__page_cursor(struct page *pg, json_t *msg);
void notes_web__page_authorship(struct page *pg);
void notes_web__page_history(struct page *pg);
void notes_web__page_at(struct page *pg, json_t *msg);
void notes_web__page_confirm(struct page *pg, json_t *msg);
/* A refusal the page shows ({"t":"error"}); the connection stays. */
void notes_web__page_error(struct page *pg, const char *message);
/* A change the page asked for (`what`: "confirm", "resolve") could not be
 * stored: log rc and the detail, reopen the note, and send `message`. */
void notes_web__page_refused(struct page *pg, struct unote *n,
                             const char *what, int rc, const char *message);

/* ---- conflicts.c ---- */
json_t *notes_web__conflicts_json(struct unote *n);
void notes_web__page_resolve(struct page *pg, json_t *msg);
/* coedit.c: publish updates this replica's own edit made (n->own). */
void notes_web__note_publish_own(struct unote *n, json_t *updates,
                                 const uint8_t change[32]);

/* ---- presence.c ---- */
void notes_web__remote_free(struct remote *r);
void notes_web__items_send(struct unote *n, struct page *only);
void notes_web__items_schedule(struct unote *n);
void notes_web__presence_publish(struct unote *n);
void notes_web__presence_send(struct unote *n);
json_t *notes_web__status_msg(notes_web *ui);

/* GET /api/search (search.c): the result's JSON, *status its HTTP status. */
json_t *notes_web__search(notes_web *ui, struct lws *wsi, unsigned *status);
void notes_web__status_start(notes_web *ui);

/* ---- http.c ---- */
struct notes_web__header {
    const char *name, *value;
};
#define NOTES_WEB__SECURITY_HEADERS 6
/* The headers every response carries; csp: the buffer of the first. */
void notes_web__security_headers(struct notes_web__header *h, char csp[512],
                                 const char *nonce, const char *host);
/* The Host names loopback with our port; the cookie holds the token. */
int notes_web__host_ok(notes_web *ui, struct lws *wsi, char *host, size_t nhost);
int notes_web__cookie_ok(notes_web *ui, struct lws *wsi);
int notes_web__http_request(notes_web *ui, struct lws *wsi, struct pss *ps,
                            const char *uri);
int notes_web__http_body(struct pss *ps, const void *in, size_t len);
int notes_web__http_body_done(notes_web *ui, struct lws *wsi, struct pss *ps);
int notes_web__http_writeable(struct lws *wsi, struct pss *ps);
void notes_web__http_closed(struct pss *ps);

/* ---- lws.c: the connection as the rest of the server sees it ---- */
enum notes_web__hdr {
    NOTES_WEB__H_HOST,
    NOTES_WEB__H_ORIGIN,
    NOTES_WEB__H_GET_URI,
    NOTES_WEB__H_POST_URI,
    NOTES_WEB__H_CONTENT_TYPE,
    NOTES_WEB__H_CONTENT_LENGTH,
    NOTES_WEB__H_TRANSFER_ENCODING,
    NOTES_WEB__H_IF_NONE_MATCH,
};
/* A request header into buf (NUL-terminated): its length, <= 0 absent. */
int notes_web__hdr_copy(struct lws *wsi, enum notes_web__hdr h, char *buf,
                        size_t n);
int notes_web__hdr_len(struct lws *wsi, enum notes_web__hdr h);
/* The value of query argument `name` ("note="), or NULL. */
const char *notes_web__urlarg(struct lws *wsi, const char *name, char *buf,
                              size_t n);
/* Query argument i as "k=v" (decoded): its length, < 0 past the last. */
int notes_web__urlarg_at(struct lws *wsi, int i, char *buf, size_t n);
/* Cookie `name` into buf; *n: its size in, the value's length out. */
int notes_web__cookie(struct lws *wsi, const char *name, char *buf, size_t *n);
/*
 * Write a response's headers: the status, Content-Type `type` and
 * Content-Length `len`, then h[0..nh). type NULL: the status, h, then the
 * length. inline_body: written with the headers in one piece (a refusal
 * sent while the connection is about to close).
 */
int notes_web__head(struct lws *wsi, unsigned status, const char *type,
                    size_t len, const struct notes_web__header *h, size_t nh,
                    const void *inline_body);
/* Write n bytes of a response body; last: the end of it. 0 or -1. */
int notes_web__http_write(struct lws *wsi, const void *p, size_t n, int last);
/* The response is complete: nonzero when the connection must close. */
int notes_web__http_completed(struct lws *wsi);
void notes_web__want_write(struct lws *wsi);
/* A text frame; p has NOTES_WEB__PRE bytes of headroom before it. */
int notes_web__ws_write(struct lws *wsi, unsigned char *p, size_t n);
/* Nonzero while libwebsockets still holds part of what was written. */
int notes_web__ws_partial(struct lws *wsi);
/* Close with a policy-violation status and this reason. */
void notes_web__ws_close_reason(struct lws *wsi, char *why);
/* Drop a connection that cannot become a page. */
void notes_web__kill(struct lws *wsi);
int notes_web__lws_start(notes_web *ui, void *loop, int port);
void notes_web__lws_stop(notes_web *ui);
void notes_web__lws_free(notes_web *ui);

#endif
