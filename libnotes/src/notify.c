/*
 * notify.c: who is told when a note changes, and what a file event means.
 *
 * sync and the page server used to watch HOME/notes themselves and parse
 * "ID.log" names. Now libnotes tells them: every acknowledged write of a
 * note's log in this process (commit, merge, repair, compaction) calls the
 * subscribers from notes__state_save, and the caller's one file watcher
 * (the loop is the caller's) hands each event to notes_replica_file_event,
 * which knows the layout and tells the subscribers about other processes'
 * writes. A subscriber must be idempotent: one write can be told twice (in
 * process, then by the watcher) and a watcher may report one write as
 * several events.
 */
#include <pthread.h>
#include <stdio.h>

#include "internal.h"
#include "replica.h"

#define MAX_SUBSCRIBERS 16

struct sub {
    notes_changed_fn fn;
    void *arg;
};

static pthread_mutex_t subs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sub subs[MAX_SUBSCRIBERS];
static size_t nsubs;

int notes_subscribe(notes_changed_fn fn, void *arg)
{
    int rc = NOTES_OK;
    if (!fn)
        return NOTES_EINVAL;
    pthread_mutex_lock(&subs_lock);
    if (nsubs == MAX_SUBSCRIBERS) {
        notes__set_detail("more than %d change subscribers", MAX_SUBSCRIBERS);
        rc = NOTES_ETOOBIG;
    } else {
        subs[nsubs].fn = fn;
        subs[nsubs].arg = arg;
        nsubs++;
    }
    pthread_mutex_unlock(&subs_lock);
    return rc;
}

void notes_unsubscribe(notes_changed_fn fn, void *arg)
{
    pthread_mutex_lock(&subs_lock);
    for (size_t i = 0; i < nsubs; i++)
        if (subs[i].fn == fn && subs[i].arg == arg) {
            subs[i] = subs[--nsubs];
            break;
        }
    pthread_mutex_unlock(&subs_lock);
}

void notes__notify(const char *home, const uint8_t id[16])
{
    struct sub copy[MAX_SUBSCRIBERS];
    size_t n;
    /* Call outside the lock: a subscriber may subscribe, unsubscribe or
     * commit (which notifies again) from its callback. */
    pthread_mutex_lock(&subs_lock);
    n = nsubs;
    memcpy(copy, subs, n * sizeof(copy[0]));
    pthread_mutex_unlock(&subs_lock);
    for (size_t i = 0; i < n; i++)
        copy[i].fn(copy[i].arg, home, id);
}

/*
 * Writes happen under the replica's exclusive lock, and a subscriber may
 * open the note at once (which takes the lock through another handle and
 * would wait for ever). So a write only records who is to be told, on its
 * own thread, and notes__notify_flush tells them once the lock is given up.
 */
struct pending {
    char *home;
    uint8_t id[16];
};
static _Thread_local struct pending *pend;
static _Thread_local size_t npend, cappend;

void notes__notify_later(const char *state_path, const uint8_t id[16])
{
    /* HOME/notes/ID.state: HOME is what precedes "/notes/". */
    const char *end = state_path + strlen(state_path);
    int slashes = 0;
    pthread_mutex_lock(&subs_lock);
    size_t listeners = nsubs;
    pthread_mutex_unlock(&subs_lock);
    if (!listeners)
        return;
    while (end > state_path && slashes < 2)
        if (*--end == '/')
            slashes++;
    if (slashes < 2)
        return;
    size_t hn = (size_t)(end - state_path);
    for (size_t i = 0; i < npend; i++)
        if (memcmp(pend[i].id, id, 16) == 0 && strlen(pend[i].home) == hn &&
            memcmp(pend[i].home, state_path, hn) == 0)
            return; /* told once per unlock is enough */
    char *home = notes__strndup(state_path, hn);
    if (!home || notes__grow(&pend, &cappend, npend + 1, sizeof(*pend), 4)) {
        /* Out of memory: the caller's file watcher still tells. */
        notes__free(home);
        return;
    }
    pend[npend].home = home;
    memcpy(pend[npend].id, id, 16);
    npend++;
}

void notes__notify_flush(void)
{
    /* Taken off the list first: a subscriber's own commit adds to it. */
    while (npend) {
        struct pending p = pend[--npend];
        notes__notify(p.home, p.id);
        notes__free(p.home);
    }
    if (!npend && pend) {
        notes__free(pend);
        pend = NULL;
        cappend = 0;
    }
}

int notes_replica_watch_dir(const char *home, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/notes", home ? home : "");
    if (!home || n < 0 || (size_t)n >= cap) {
        notes__set_detail("the notes folder's path does not fit in %zu bytes",
                          cap);
        return NOTES_EINVAL;
    }
    return NOTES_OK;
}

/* A note's files in notes/: ID.log, ID.state, and the temporary names a
 * rewrite or a first state write uses (ID.log.tmpPID, ID.state.tmpPID). */
static int note_file(const char *name, uint8_t id[16])
{
    char hex[33];
    if (strlen(name) < 36)
        return 0;
    memcpy(hex, name, 32);
    hex[32] = 0;
    if (notes__unhex(id, 16, hex) != NOTES_OK)
        return 0;
    return strncmp(name + 32, ".log", 4) == 0 ||
           strncmp(name + 32, ".state", 6) == 0;
}

int notes_replica_file_event(const char *home, const char *name)
{
    uint8_t id[16];
    if (!home || !name || !note_file(name, id))
        return 0;
    notes__notify(home, id);
    return 1;
}
