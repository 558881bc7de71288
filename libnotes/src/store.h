/*
 * store.h: the on-disk log of one document (internal).
 * An append-only file of checksummed, zstd-compressed records, each holding
 * one commit's signed changes. Appends are fsynced before success is
 * reported; a torn or damaged tail is detected when read; a writer keeps it
 * aside as evidence and cuts it off so that the intact prefix stays usable.
 * Beside each log, the replica's state of it (state.c).
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
    int bad_header;   /* the file's header is damaged or another note's:
                       * the whole file is `damaged` and reads as empty */
    char damage[200]; /* what was wrong with them, for the user */
    int unsynced_name; /* created with create == 2: the directory entry
                        * is synced by the first synced write */

    /* Local MAC (notes__log_use_key): a keyed BLAKE2b chain over the file
     * header and each intact record, with a key that never leaves this
     * device. The state file names a prefix this device verified
     * (notes__log_set_trusted). */
    size_t nrecords;          /* intact records in the file */
    int keyed;
    uint8_t key[32];
    uint8_t mac[32];          /* chain value at `end` */
    uint64_t trusted_end;     /* from the sidecar: a verified prefix ... */
    uint8_t trusted_mac[32];  /* ... and its chain value */
    uint64_t read_limit;      /* nonzero: reads stop at this offset */
    size_t read_changes;      /* changes emitted by the last read */
    size_t read_trusted;      /* of which from the verified prefix */
};

/* Called for each change of each intact record, in file order. */
/* One change's bytes. `id`: its id (the hash of its body) when the reader
 * already computed it from these very bytes (a pack's decoder must, for its
 * deps column), else NULL: decoding need not hash the change again. */
typedef int (*notes__change_cb)(void *ctx, const uint8_t *p, size_t n,
                                const uint8_t *id);

/*
 * Open (or with `create`, create) the log at `path` for document `doc`.
 * Reads nothing yet. A header of another document or version fails.
 * create 2: a new file is neither synced nor its directory (a deferred
 * merge: notes__log_sync or the first synced write does both).
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
 * Chain records through a local MAC keyed by `key`. Call right after
 * notes__log_open (or a reopen), before reading.
 */
void notes__log_use_key(struct notes__log *lg, const uint8_t key[32]);
/*
 * The prefix [0, end) whose chain value is `mac` was verified by this
 * device: a read that reaches it with the same chain value counts its
 * changes as trusted (read_trusted).
 */
void notes__log_set_trusted(struct notes__log *lg, uint64_t end,
                            const uint8_t mac[32]);

/*
 * Remove a log that holds no record (created by a command that then
 * failed) and close it, so a failed command leaves the store as it was.
 */
void notes__log_discard_if_empty(struct notes__log **lgp);

/*
 * Advance lg->end and the local MAC over the rest of the file without
 * decoding it (a snapshot's check, doc_snap.c). NOTES_ECORRUPT when a
 * record does not frame or the log is not keyed; the log must then be
 * rewound before it is read.
 */
int notes__log_scan_mac(struct notes__log *lg);
/* Back to the first record, as right after notes__log_open and
 * notes__log_use_key: the next read starts from the beginning. */
void notes__log_rewind(struct notes__log *lg);

/* Whether the file holds bytes past what has been read (another process
 * appended). */
int notes__log_has_more(struct notes__log *lg);
/*
 * Copy the bad tail to PATH.damaged-OFFSET (`damage`: bytes that were
 * acknowledged) or PATH.torn-OFFSET (an interrupted write nobody was told
 * about); PATH.damaged-OFFSET.2, .3, ... when taken: evidence is never
 * replaced. Then truncate the log to its intact prefix; a log whose header
 * is bad is set aside whole and started again. OUT *aside (may be NULL):
 * the file written, free with notes__free. Call with the replica's
 * exclusive lock held.
 */
int notes__log_repair(struct notes__log *lg, int damage, char **aside);
/*
 * Append one record holding `n` encoded changes and fsync it. Call with the
 * exclusive lock held and after notes__log_read has reached the end.
 * On failure the file is truncated back to where it was.
 */
int notes__log_append(struct notes__log *lg, const uint8_t *const *changes,
                      const size_t *lens, size_t n, int level);
/* The same, with sync 0: written, not yet synced (notes__log_sync does it;
 * until then a crash of the machine may take the record back). */
int notes__log_write(struct notes__log *lg, const uint8_t *const *changes,
                     const size_t *lens, size_t n, int level, int sync);
/* fdatasync the log: every record written so far is durable (and, for a
 * log created with create == 2, its name). */
int notes__log_sync(struct notes__log *lg);
/* syncfs(2) on the filesystem holding `dir`: every file written there so
 * far is durable, names included. One call for a batch of logs. */
int notes__syncfs(const char *dir);
/* The caller made the log durable (notes__syncfs): nothing left to sync. */
void notes__log_synced(struct notes__log *lg);
/*
 * Where a log stands, and going back there: a write that cannot be
 * acknowledged (its state could not be recorded) is taken back whole.
 * Only for a mark taken under the same exclusive lock.
 */
struct notes__log_mark {
    uint64_t end;
    size_t nrecords;
    uint8_t mac[32];
};
void notes__log_mark(const struct notes__log *lg, struct notes__log_mark *m);
int notes__log_undo(struct notes__log *lg, const struct notes__log_mark *m);

/*
 * Replace the whole log with one record of `type` holding `payload`:
 * written to a temporary file, fsynced, renamed over the log, directory
 * fsynced. Other processes notice the new file (notes__log_reopen). Call
 * with the exclusive lock held. *unchanged = 1 when the file already held
 * exactly these bytes (then nothing was written).
 */
int notes__log_rewrite(struct notes__log *lg, int type, const uint8_t *payload,
                       size_t n, int level, int *unchanged);
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

/* Compression: notes__compress and notes__decompress (compress.c) are in
 * notes.h, shared with sync. */

/* Files (notes__fsync_dir, notes__write_file_atomic and notes__read_file
 * are in notes.h, shared with the other modules). Write a new file at BASE, or BASE.2, BASE.3, ... whichever is free first:
 * never replaces a file. OUT *chosen (may be NULL): the name used. */
int notes__write_file_new(const char *base, const void *p, size_t n,
                          char **chosen);

/* ---- the replica's state of a log (state.c, notes/ID.state) ---- */

#define NOTES__STATE_HEADS 56 /* heads kept; more are summarised by count */

struct notes__state {
    int present;            /* an intact slot was read (or written) */
    int damaged;            /* the file exists but no slot is intact */
    char why[160];          /* what is wrong with it, when damaged */
    int slot;               /* the slot `gen` is in */
    uint64_t gen;           /* write generation */
    uint64_t acked_end;     /* log length after this replica's last durable
                             * write: a bad record below it is damage */
    uint64_t verified_end;  /* prefix this device verified (0: none) ... */
    uint8_t mac[32];        /* ... and its local MAC chain value */
    uint64_t my_seq;        /* the highest seq this device signed here ... */
    uint8_t my_last[32];    /* ... and that change's id */
    uint64_t nchanges;      /* changes the note held then */
    uint32_t heads_total;   /* its heads then; the first nheads of them, */
    uint32_t nheads;        /* the ones missing from the log first */
    uint8_t heads[NOTES__STATE_HEADS][32];
};

/* Read PATH: st->present when an intact slot was found (the newest one);
 * st->damaged when the file exists without one; neither when it does not
 * exist. Errors only for I/O and memory. */
int notes__state_load(const char *path, const uint8_t doc[16],
                      struct notes__state *st);
/* Write *st as the next generation (the slot not in use, fdatasync'd; a
 * new file through a temporary file and a rename when none is present).
 * Updates st->gen/slot/present. Call with the exclusive lock held. */
int notes__state_save(const char *path, const uint8_t doc[16],
                      struct notes__state *st);
/* The same for a present state, the slot written but not synced: for a
 * batch whose caller syncs the filesystem after (notes_doc_flush_many). */
int notes__state_save_unsynced(const char *path, const uint8_t doc[16],
                               struct notes__state *st);
/* A new state file (st not present) written whole, unsynced, under a
 * temporary name (*tmp, free with notes__free); st becomes what it holds.
 * notes__state_place renames it into place once the caller synced the
 * filesystem. */
int notes__state_stage(const char *path, const uint8_t doc[16],
                       struct notes__state *st, char **tmp);
int notes__state_place(const char *tmp, const char *path, const uint8_t doc[16]);

#endif
