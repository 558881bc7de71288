/*
 * internal.h: private declarations shared inside libnotes (notes__ prefix).
 * Nothing here is part of the public API; tests may include it to reach
 * internals.
 */
#ifndef NOTES_INTERNAL_H
#define NOTES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef NOTES_SIBLING_API
#define NOTES_SIBLING_API
#endif
#include "notes.h"

#define NOTES__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The helpers libnotes shares with notes' other modules (memory, the
 * buffer and reader, varints, UTF-8, hex/base32/base64, files, crypto) are
 * declared in notes.h under NOTES_SIBLING_API. */

/* "A/B", allocated (notes__free); NULL when memory runs out. replica.c. */
char *notes__path_join(const char *a, const char *b);

/* Write all n bytes at offset `off` of fd (pwrite, EINTR retried); -1 with
 * errno on failure (EIO for a write that makes no progress). store.c. */
#include <sys/types.h>
int notes__write_all(int fd, const void *p, size_t n, off_t off);

/* Change notification (notify.c): a write records, under the replica's
 * lock, that note `id` of the replica owning `state_path` changed; the
 * subscribers are told by notes__notify_flush when the lock is released. */
void notes__notify_later(const char *state_path, const uint8_t id[16]);
void notes__notify_flush(void);
void notes__notify(const char *home, const uint8_t id[16]);

#endif
