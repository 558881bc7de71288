/*
 * sync_fixture.h: replicas on disk for the sync tests (fault, live, uv):
 * make and remove one, add a note to a space, append to a note, a clock.
 * Header-only (static inline), so each test program takes what it uses.
 */
#ifndef NOTES_SYNC_FIXTURE_H
#define NOTES_SYNC_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "notes_sync.h"

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int rm_cb(const char *p, const struct stat *st, int f,
                        struct FTW *w)
{
    (void)st, (void)f, (void)w;
    return remove(p);
}

/* A new replica with identity `name` in a fresh temporary directory. */
static inline char *mkreplica(const char *name)
{
    char *home = strdup("/tmp/notes-sync-XXXXXX");
    notes_replica *r;
    assert_non_null(mkdtemp(home));
    assert_int_equal(notes_replica_create(home, name, NULL, &r), NOTES_OK);
    notes_replica_free(r);
    return home;
}

static inline void rmreplica(char *home)
{
    nftw(home, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(home);
}

/* A note holding `text`, committed and put into space `space`. */
static inline void make_note(const char *home, const char *space,
                             const char *text, uint8_t id[16])
{
    notes_replica *r;
    notes_doc *d;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    assert_int_equal(notes_doc_create(r, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, text, strlen(text)), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    memcpy(id, notes_doc_id(d), 16);
    notes_doc_free(d);
    notes_replica_free(r);
    assert_int_equal(notes_sync_space_add_note(home, space, id), NOTES_OK);
}

/* Append `text` to note `id` of `home` as one commit. */
static inline void append(const char *home, const uint8_t id[16],
                          const char *text)
{
    notes_replica *r;
    notes_doc *d;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    assert_int_equal(notes_doc_open(r, id, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, notes_doc_length(d), 0, text,
                                      strlen(text)),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    notes_replica_free(r);
}

/* Every change of note `id` in `home` verifies. */
static inline void fixture_verify(const char *home, const uint8_t id[16])
{
    notes_replica *r;
    notes_doc *d;
    notes_verify_report rep;
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    assert_int_equal(notes_doc_open(r, id, &d), NOTES_OK);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(notes_doc_verify(d, &rep), NOTES_OK);
    notes_verify_report_clear(&rep);
    notes_doc_free(d);
    notes_replica_free(r);
}

/* The text of note `id` in `home` (malloc'd; "" when absent). */
static inline char *fixture_text(const char *home, const uint8_t id[16])
{
    notes_replica *r;
    notes_doc *d;
    char *copy = strdup("");
    assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
    if (notes_doc_open(r, id, &d) == NOTES_OK) {
        size_t n;
        const char *t = notes_doc_text(d, &n);
        free(copy);
        copy = strndup(t, n);
        notes_doc_free(d);
    }
    notes_replica_free(r);
    return copy;
}

/* Wait (at most ms, polling) until the note contains `want`: 1, else 0. */
static inline int fixture_wait_text(const char *home, const uint8_t id[16],
                                    const char *want, double ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < ms) {
        char *t = fixture_text(home, id);
        int ok = strstr(t, want) != NULL;
        free(t);
        if (ok)
            return 1;
        usleep(5000);
    }
    return 0;
}

#endif
