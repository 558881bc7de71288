/*
 * files.h: the replica's small trusted files with a check line (internal).
 *
 * identity, identity.pub, person, certs and trust end with the line
 * "check <BLAKE2b-256 hex of every byte before it>" (docs/format.md,
 * "Checksums"); spaces/ files (sync) use the same line through the public
 * notes_check_line / notes_check_split. Files an older version wrote have
 * no such line: they stay readable, verify remarks on them, and the next
 * write of the file adds the line.
 */
#ifndef NOTES_FILES_H
#define NOTES_FILES_H

#include "internal.h"

/* Write `body` and its check line as one atomic replacement of `path`. */
int notes__write_checked(const char *path, const void *body, size_t n,
                         int mode);
/*
 * Read `path` (at most `max` bytes) and check it. OUT *buf: the whole text,
 * NUL-ended after the body (free with notes__free); *len: the body's length
 * (the check line excluded); *checked: whether it had a check line.
 * NOTES_ECORRUPT (detail names the file) when the check does not hold;
 * NOTES_ENOTFOUND, NOTES_ETOOBIG, NOTES_EIO as notes__read_file.
 * Reading never rewrites the file.
 */
int notes__read_checked(const char *path, size_t max, uint8_t **buf,
                        size_t *len, int *checked);

/*
 * notes_identity_save, plus the check line: a replica's own key files
 * (identity, person). Never replaces a file (NOTES_EEXIST).
 */
int notes__key_save_checked(const notes_identity *id, const char *path,
                            const char *passphrase);

#endif
