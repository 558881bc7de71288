/*
 * pack.h: the compact form of a whole log (internal). A pack holds every
 * change of a note in columns, with the 32-byte hashes of prev and deps
 * replaced by back-references (they are recomputed), inserted text in a
 * column of its own, then one zstd frame. Reading a pack rebuilds each
 * change's exact signed bytes, which are then verified like any others.
 * docs/format.md, "Packs".
 */
#ifndef NOTES_PACK_H
#define NOTES_PACK_H

#include "change.h"
#include "store.h"

/*
 * External references: a pack of part of a log (a bundle for a peer that
 * has the rest) may name a prev or dep that is not in it, by its full id
 * (a back-reference of 0, then 32 bytes). A log's pack never does.
 */
#define NOTES__PACK_EXTERNAL 1

/*
 * Encode `n` decoded changes (in log order: each change's prev and deps
 * precede it) of document `doc`. Fails with NOTES_EINVAL if a prev or dep
 * is not among the earlier changes, unless flags has NOTES__PACK_EXTERNAL.
 */
int notes__pack_encode(const uint8_t doc[16], struct notes__change *const *c,
                       size_t n, int flags, struct notes_buf *out);
/*
 * Decode a pack of document `doc`, calling cb with each rebuilt change
 * encoding, in order. Every count, length and reference is checked;
 * external references are refused unless flags has NOTES__PACK_EXTERNAL.
 */
int notes__pack_decode(const uint8_t doc[16], const uint8_t *p, size_t n,
                       int flags, notes__change_cb cb, void *ctx);

#endif
