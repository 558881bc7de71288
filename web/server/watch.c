/*
 * watch.c: changes from elsewhere reach the open notes. libnotes tells
 * its subscribers which note changed; this file subscribes, runs the one
 * watcher of the notes folder (for other processes' writes) and refreshes
 * the open notes on the loop.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server_internal.h"

/*
 * libnotes tells its subscribers which note changed: commits and merges in
 * this process (the sync side's, and the page's own) at once, other
 * processes' writes when our watcher of the notes folder reports them
 * (notes_replica_file_event). The refresh waits for the loop: a commit
 * made while a page's push is being applied tells us from inside that
 * commit, and a push must finish before its note is read again.
 */
static int same_home(notes_web *ui, const char *home)
{
    if (strcmp(home, notes_replica_home(ui->r)) == 0)
        return 1;
    char *real = realpath(home, NULL);
    int same = real && ui->home_real && strcmp(real, ui->home_real) == 0;
    free(real);
    return same;
}

static void changed_all(notes_web *ui)
{
    pthread_mutex_lock(&ui->changed_lock);
    ui->changed_all = 1;
    pthread_mutex_unlock(&ui->changed_lock);
    uv_async_send(&ui->changed);
}

static void on_changed(void *arg, const char *home, const uint8_t id[16])
{
    notes_web *ui = arg;
    size_t i;
    if (!same_home(ui, home))
        return;
    pthread_mutex_lock(&ui->changed_lock);
    for (i = 0; i < ui->nchanged && memcmp(ui->changed_ids[i], id, 16) != 0;
         i++)
        ;
    if (i == ui->nchanged && ui->nchanged < CHANGED_MAX)
        memcpy(ui->changed_ids[ui->nchanged++], id, 16);
    else if (i == ui->nchanged)
        ui->changed_all = 1; /* too many at once: read every open note */
    pthread_mutex_unlock(&ui->changed_lock);
    uv_async_send(&ui->changed);
}

static void on_changed_async(uv_async_t *h)
{
    notes_web *ui = h->data;
    uint8_t ids[CHANGED_MAX][16];
    size_t k;
    int all;
    pthread_mutex_lock(&ui->changed_lock);
    k = ui->nchanged;
    memcpy(ids, ui->changed_ids, k * 16);
    all = ui->changed_all;
    ui->nchanged = 0;
    ui->changed_all = 0;
    pthread_mutex_unlock(&ui->changed_lock);
    if (ui->stopped)
        return;
    if (all) {
        for (struct unote *n = ui->notes; n; n = n->next)
            notes_web__note_refresh(n);
        return;
    }
    for (size_t i = 0; i < k; i++) {
        struct unote *n = notes_web__note_find(ui, ids[i]);
        if (n && n->pages)
            notes_web__note_refresh(n);
    }
}

/* Other processes' writes: what our watcher sees, told to libnotes. */
static void on_store_event(uv_fs_event_t *h, const char *file, int events,
                           int status)
{
    notes_web *ui = h->data;
    (void)events;
    if (status < 0 || ui->stopped)
        return;
    if (!file) /* the watcher lost track: read every open note */
        changed_all(ui);
    else
        (void)notes_replica_file_event(notes_replica_home(ui->r), file);
}

/* Watch the store: commits by peers (through the sync side), by this
 * process and by other processes (through the caller's watcher when it
 * has one, else through ours). */
void notes_web__watch_start(notes_web *ui)
{
    char dir[4096];
    ui->home_real = realpath(notes_replica_home(ui->r), NULL);
    pthread_mutex_init(&ui->changed_lock, NULL);
    uv_async_init(ui->loop, &ui->changed, on_changed_async);
    ui->changed.data = ui;
    ui->subscribed = notes_subscribe(on_changed, ui) == NOTES_OK;
    if (!ui->subscribed)
        notes_web__log(ui, "open notes are not refreshed: %s",
                       notes_last_detail());
    if (ui->cb.caller_watches ||
        notes_replica_watch_dir(notes_replica_home(ui->r), dir,
                                sizeof(dir)) != NOTES_OK)
        return;
    mkdir(dir, 0700);
    uv_fs_event_init(ui->loop, &ui->watch);
    ui->watch.data = ui;
    if (uv_fs_event_start(&ui->watch, on_store_event, dir, 0) == 0)
        ui->watching = 1;
    else
        uv_close((uv_handle_t *)&ui->watch, NULL);
}

void notes_web__watch_stop(notes_web *ui)
{
    if (ui->subscribed)
        notes_unsubscribe(on_changed, ui);
    ui->subscribed = 0;
    if (ui->watching)
        uv_close((uv_handle_t *)&ui->watch, NULL);
    ui->watching = 0;
    uv_close((uv_handle_t *)&ui->changed, NULL);
}

void notes_web__watch_free(notes_web *ui)
{
    pthread_mutex_destroy(&ui->changed_lock);
    free(ui->home_real);
}
