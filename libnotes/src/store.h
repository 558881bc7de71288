/*
 * store.h: the on-disk log of one document (internal).
 * An append-only file of checksummed, zstd-compressed records, each holding
 * one commit's signed changes. Appends are fsynced before success is
 * reported; a torn or damaged tail is detected on open, kept aside as
 * evidence, and cut off so that the intact prefix stays usable.
 */
#ifndef NOTES_STORE_H
#define NOTES_STORE_H

#include "internal.h"

#define NOTES__LOG_HEADER 32
#define NOTES__REC_HEADER 32
#define NOTES__REC_RAW_MAX (64u << 20)   /* decompressed payload of one record */
#define NOTES__LOG_MAX (4ull << 30)      /* a log file larger than this is refused */

enum notes__rec_type { NOTES__REC_CHANGES = 1, NOTES__REC_PACK = 2 };
enum notes__codec { NOTES__CODEC_RAW = 0, NOTES__CODEC_ZSTD = 1 };

struct notes__log {
    int fd;
    char *path;       /* owned */
    uint8_t doc[16];
    uint64_t end;     /* offset just past the last intact record read */
    uint64_t damaged; /* bytes past `end` that did not form an intact record */
    int torn;         /* 1: the tail is merely incomplete (an interrupted
                       * write); 0: complete bytes that fail their checks */
    char damage[200]; /* what was wrong with them, for the user */

    /* Local MAC (notes__log_use_key): a keyed BLAKE2b chain over the file
     * header and each intact record, with a key that never leaves this
     * device. The sidecar PATH.mac names a prefix this device verified. */
    size_t nrecords;          /* intact records in the file */
    int keyed;
    uint8_t key[32];
    uint8_t mac[32];          /* chain value at `end` */
    uint64_t trusted_end;     /* from the sidecar: a verified prefix ... */
    uint8_t trusted_mac[32];  /* ... and its chain value */
    size_t read_changes;      /* changes emitted by the last read */
    size_t read_trusted;      /* of which from the verified prefix */
};

/* Called for each change of each intact record, in file order. */
typedef int (*notes__change_cb)(void *ctx, const uint8_t *p, size_t n);

/*
 * Open (or with `create`, create) the log at `path` for document `doc`.
 * Reads nothing yet. A header of another document or version fails.
 */
int notes__log_open(const char *path, const uint8_t doc[16], int create,
                    struct notes__log **out);
void notes__log_close(struct notes__log *lg);
/*
 * Read the records from lg->end to the end of the file, calling cb for each
 * change. Stops at the first record that is truncated or fails its checksum,
 * recording it in lg->damaged / lg->damage (not an error: the prefix is
 * good). An error from cb stops the read and is returned.
 */
int notes__log_read(struct notes__log *lg, notes__change_cb cb, void *ctx);
/*
 * Chain records through a local MAC keyed by `key` and load the sidecar.
 * Call right after notes__log_open, before reading.
 */
int notes__log_use_key(struct notes__log *lg, const uint8_t key[32]);
/*
 * Record that everything up to lg->end has been verified by this device:
 * write PATH.mac (temporary file + rename; no fsync: it is a cache, and a
 * lost or stale one only costs a full verification).
 */
int notes__log_save_mac(struct notes__log *lg);

/*
 * Remove a log that holds no record (created by a command that then
 * failed) and close it, so a failed command leaves the store as it was.
 */
void notes__log_discard_if_empty(struct notes__log **lgp);

/* Whether the file holds bytes past what has been read (another process
 * appended). */
int notes__log_has_more(struct notes__log *lg);
/*
 * Copy a damaged tail to PATH.damaged-OFFSET (PATH.torn-OFFSET for an
 * interrupted write) and truncate the log to its
 * intact prefix. Call with the replica's exclusive lock held.
 */
int notes__log_repair(struct notes__log *lg);
/*
 * Append one record holding `n` encoded changes and fsync it. Call with the
 * exclusive lock held and after notes__log_read has reached the end.
 * On failure the file is truncated back to where it was.
 */
int notes__log_append(struct notes__log *lg, const uint8_t *const *changes,
                      const size_t *lens, size_t n, int level);

/*
 * Replace the whole log with one record of `type` holding `payload`:
 * written to a temporary file, fsynced, renamed over the log, directory
 * fsynced. Other processes notice the new file (notes__log_reopen). Call
 * with the exclusive lock held.
 */
int notes__log_rewrite(struct notes__log *lg, int type, const uint8_t *payload,
                       size_t n, int level);
/*
 * If the log file was replaced by a rewrite since it was opened, open the
 * new one and read it from its start (*replaced = 1).
 */
int notes__log_reopen(struct notes__log *lg, int *replaced);

/* Encode/decode a record payload (varint count, then varint length + bytes). */
int notes__payload_encode(struct notes_buf *out, const uint8_t *const *changes,
                          const size_t *lens, size_t n);
int notes__payload_decode(const uint8_t *p, size_t n, notes__change_cb cb,
                          void *ctx);

/* Compression behind one file (compress.c). */
int notes__compress(struct notes_buf *out, const uint8_t *p, size_t n, int level);
int notes__decompress(struct notes_buf *out, const uint8_t *p, size_t n,
                      size_t max);

/* Files: fsync a directory; write a whole file atomically (temp + rename). */
int notes__fsync_dir(const char *dir);
int notes__write_file_atomic(const char *path, const void *p, size_t n,
                             int mode);
int notes__read_file(const char *path, size_t max, uint8_t **out, size_t *n);

#endif
