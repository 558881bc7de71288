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

/* notes__write_checked and notes__read_checked: notes.h (NOTES_SIBLING_API),
 * for sync's files too. */

/*
 * notes_identity_save, plus the check line: a replica's own key files
 * (identity, person). Never replaces a file (NOTES_EEXIST).
 */
int notes__key_save_checked(const notes_identity *id, const char *path,
                            const char *passphrase);

#endif
