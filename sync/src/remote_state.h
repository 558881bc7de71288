/* remote_state.h: the per-remote cache of remote_state.c (not installed). */
#ifndef NOTES_REMOTE_STATE_H
#define NOTES_REMOTE_STATE_H

#include "remote_internal.h"

struct remote_state_pack {
    char oid[REMOTE_OID_MAX + 1]; /* a pack blob read and merged */
    uint64_t seq;                 /* its number */
};
struct remote_state_note {
    uint8_t id[16];
    uint8_t (*heads)[32]; /* the remote holds these and their ancestors */
    size_t n;
};
/* The packs a device's newest pack lists (its ref's manifest), kept so a
 * pack put back later is known for an old one even when nothing newer
 * came with it. */
struct remote_state_top {
    char dev[2 * REMOTE_TAG_LEN + 1];
    uint8_t (*names)[REMOTE_PACK_NAME_LEN];
    size_t n;
};
struct remote_state {
    struct remote_state_top *tops;
    size_t ntops;
    struct remote_state_pack *packs; /* sorted by oid */
    size_t npacks;
    struct remote_state_note *notes; /* sorted by id */
    size_t nnotes;
};

/* No file, or a damaged one: an empty state (NOTES_OK). */
int remote_state_load(const char *path, struct remote_state *s);
int remote_state_store(const char *path, const struct remote_state *s);
void remote_state_clear(struct remote_state *s);
const struct remote_state_pack *remote_state_pack_find(
    const struct remote_state *s, const char *oid);
struct remote_state_note *remote_state_note_find(struct remote_state *s,
                                                 const uint8_t id[16]);
int remote_state_add_pack(struct remote_state *s, const char *oid,
                          uint64_t seq);
struct remote_state_top *remote_state_top_find(struct remote_state *s,
                                               const char *dev);
int remote_state_set_top(struct remote_state *s, const char *dev,
                         const uint8_t (*names)[REMOTE_PACK_NAME_LEN],
                         size_t n);
int remote_state_set_heads(struct remote_state *s, const uint8_t id[16],
                           const uint8_t (*heads)[32], size_t n);

#endif
