/*
 * notes_sync_presence.h: presence over live sync sessions (docs/protocol.md,
 * "Presence"): who has a note open on which daemon, and where their cursor
 * is. Ephemeral: never stored, never part of a note's history. A record
 * is signed by the daemon's device key, so a relay cannot forge or alter
 * it; the key is the fact, the names inside (JSON) are claims.
 */
#ifndef NOTES_SYNC_PRESENCE_H
#define NOTES_SYNC_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "notes.h"
#include "notes_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NOTES_PRESENCE_JSON_MAX 4096 /* bytes of JSON in one record */

/*
 * Make a record: note ‖ key ‖ seq ‖ JSON, signed by `id`. seq must grow
 * with each record of (id, note) (a clock in ms does). OUT *rec: free with
 * notes_sync_free.
 */
NOTES_API NOTES_NODISCARD int notes_sync_presence_make(
    const notes_identity *id, const uint8_t note[16], uint64_t seq,
    const char *json, size_t n, uint8_t **rec, size_t *reclen);
/*
 * Check a record's layout and signature. OUT note, key, seq, and the JSON
 * (borrowed from rec). NOTES_ECORRUPT (layout), NOTES_EBADSIG.
 */
NOTES_API NOTES_NODISCARD int notes_sync_presence_open(
    const uint8_t *rec, size_t n, uint8_t note[16], uint8_t key[32],
    uint64_t *seq, const char **json, size_t *jn);

/* Called with each verified record a live session receives (the note is
 * one of the session's space). */
typedef void (*notes_sync_presence_fn)(void *ud, const uint8_t *rec,
                                       size_t n);
NOTES_API void notes_sync_session_on_presence(notes_sync_session *s,
                                              notes_sync_presence_fn fn,
                                              void *ud);
/*
 * Queue a record (made here or received from another peer: relay) to
 * send on a live session, ahead of bundle data. At most 64 wait; older
 * ones of the same (note, key) are replaced. NOTES_EINVAL when the
 * session is not live.
 */
NOTES_API NOTES_NODISCARD int notes_sync_session_presence(
    notes_sync_session *s, const uint8_t *rec, size_t n);

#ifdef __cplusplus
}
#endif
#endif
