/*
 * serve_fixture.h: a daemon for the tests, on a loop of the test's own, that
 * stops when *stop becomes non-zero (set by a signal handler in a child
 * process, or by another thread): the hub itself takes no stop flag, so the
 * test's loop polls it every 20 ms and calls notes_sync_hub_stop.
 * fixture_relay does the same for a notes relay. Header-only (static inline).
 */
#ifndef NOTES_SYNC_SERVE_FIXTURE_H
#define NOTES_SYNC_SERVE_FIXTURE_H

#include <string.h>

#include <uv.h>

#include "notes_sync.h"

struct fixture_serve {
    notes_sync_hub *hub;
    volatile int *stop;
};

static inline void fixture_serve_poll(uv_timer_t *t)
{
    struct fixture_serve *f = t->data;
    if (*f->stop) {
        uv_timer_stop(t);
        notes_sync_hub_stop(f->hub, NULL, NULL);
    }
}

/* notes_sync_serve that also returns once *stop != 0. The poll timer is
 * unreferenced: the loop ends when the hub's handles are closed, whether
 * it was stopped or served its max_sessions. */
static inline int fixture_serve(const char *home,
                                const notes_sync_serve_opts *o,
                                volatile int *stop)
{
    struct fixture_serve f;
    uv_timer_t poll;
    uv_loop_t loop;
    int rc;
    memset(&f, 0, sizeof(f));
    f.stop = stop;
    if (uv_loop_init(&loop) != 0)
        return NOTES_EIO;
    uv_timer_init(&loop, &poll);
    poll.data = &f;
    rc = notes_sync_hub_start(&loop, home, NULL, o, &f.hub);
    if (rc == NOTES_OK) {
        uv_timer_start(&poll, fixture_serve_poll, 20, 20);
        uv_unref((uv_handle_t *)&poll);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    notes_sync_hub_free(f.hub);
    (void)uv_loop_close(&loop);
    return rc;
}

struct fixture_relay {
    notes_sync_relay *r;
    volatile int *stop;
};

static inline void fixture_relay_poll(uv_timer_t *t)
{
    struct fixture_relay *f = t->data;
    if (*f->stop) {
        uv_timer_stop(t);
        notes_sync_relay_stop(f->r, NULL, NULL);
    }
}

/* A notes relay on a loop of its own (options o), until *stop != 0; as
 * fixture_serve. */
static inline int fixture_relay(const notes_sync_relay_opts *o,
                                volatile int *stop)
{
    struct fixture_relay f;
    uv_loop_t loop;
    uv_timer_t poll;
    f.stop = stop;
    if (uv_loop_init(&loop) != 0 ||
        notes_sync_relay_start(&loop, o, &f.r) != NOTES_OK)
        return 1;
    uv_timer_init(&loop, &poll);
    poll.data = &f;
    uv_timer_start(&poll, fixture_relay_poll, 20, 20);
    uv_unref((uv_handle_t *)&poll);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    notes_sync_relay_free(f.r);
    (void)uv_loop_close(&loop);
    return 0;
}

#endif
