/*
 * notes_web.h: the page server, the browser page of `notes serve`
 * (docs/web.md, web/server/). An HTTP and WebSocket server on the
 * caller's libuv loop, bound to loopback, that serves the page bundle
 * embedded at build time (web/dist) and lets pages edit the notes of a
 * replica: every accepted edit is
 * signed and committed by this process (the key never reaches the
 * browser); changes that other processes or peers commit reach the pages
 * as they land in the store.
 */
#ifndef NOTES_WEB_H
#define NOTES_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "notes.h"

#define NOTES_WEB_PORT 7464      /* default port of `notes serve --ui` */
#define NOTES_WEB_MSG_MAX (1u << 20) /* bytes per WebSocket message */

typedef struct notes_web notes_web;

/* What the status line shows; filled by the daemon's sync side. */
typedef struct notes_web_status {
    unsigned peers;           /* connected peers */
    int online;               /* 1: at least one peer reachable */
    unsigned unsent;          /* local changes no connected peer has yet */
    uint64_t last_sync_ms;    /* Unix ms of the last completed round, 0 */
} notes_web_status;

typedef struct notes_web_opts {
    notes_replica *replica;   /* borrowed, unlocked: commits are signed */
    const char *listen;       /* "127.0.0.1:PORT" (loopback only); NULL:
                               * 127.0.0.1:NOTES_WEB_PORT; port 0: any */
    const char *token;        /* NULL: a random one */
    /*
     * Optional: one line per refusal and error (no newline). Hosts,
     * origins, URIs and titles in it come from browsers and peers: the
     * caller escapes it before a terminal shows it (the CLI: cli_esc).
     */
    void (*log)(void *ud, const char *line);
    void *log_ud;
    /* Optional: the sync side's state for the status line. */
    void (*status)(void *ud, notes_web_status *out);
    void *status_ud;
    /*
     * Optional: who has note `note` open here changed (JSON, docs/web.md
     * "Presence"); the sync side signs it and sends it to peers. Also
     * called every 10 s while pages are open, and with an empty list
     * when the last one closes.
     */
    void (*publish)(void *ud, const uint8_t note[16], const char *json,
                    size_t n);
    void *publish_ud;
    /*
     * Set when the caller runs the one watcher of the notes folder and
     * hands its events to notes_replica_file_event (the daemon does):
     * the page then only subscribes. Unset, the page watches by itself.
     */
    int caller_watches;
} notes_web_opts;

/*
 * Start serving on `loop` (a uv_loop_t *). OUT *out. Fails with
 * NOTES_EINVAL for a listen address that is not loopback, NOTES_EIO when
 * the port cannot be bound (detail says why).
 */
int notes_web_start(void *loop, const notes_web_opts *o, notes_web **out);
/*
 * A presence record from a peer (its signature verified by the sync side:
 * `key` signed it). Pages of the note show those people until the record
 * is 30 s old without a refresh.
 */
void notes_web_remote_presence(notes_web *ui, const uint8_t note[16],
                               const uint8_t key[32], const char *json,
                               size_t n);

/* Detail of the last notes_web_* failure on this thread, or "": the one
 * per-thread detail of notes_last_detail(). */
const char *notes_web_last_detail(void);

/* The bound port, the access token and "http://127.0.0.1:PORT". */
int notes_web_port(const notes_web *ui);
const char *notes_web_token(const notes_web *ui);
/*
 * Close every connection and handle. The loop must run afterwards for
 * them to close; then free with notes_web_free.
 */
void notes_web_stop(notes_web *ui);
void notes_web_free(notes_web *ui);

/*
 * Write $NOTES_HOME/ui.json (mode 0600, atomically): the URL, the token
 * and this process id, so `notes open` can print a note's URL.
 */
int notes_web_write_state(const notes_web *ui, const char *home);
/*
 * The token of the last daemon run (ui.json), to serve with it again: a
 * page left open across a restart of `notes serve` reconnects with its
 * cookie. NOTES_ENOTFOUND if there is none.
 */
int notes_web_saved_token(const char *home, char *token, size_t ntoken);
/*
 * Read it back. OUT url (base, "http://127.0.0.1:PORT"), token. Returns
 * NOTES_ENOTFOUND when no daemon serves the page (the file is missing or
 * its process is gone).
 */
int notes_web_read_state(const char *home, char *url, size_t nurl,
                         char *token, size_t ntoken);

#endif
