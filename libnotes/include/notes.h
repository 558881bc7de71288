/*
 * notes.h: the one public header of libnotes, the core of the notes tool.
 * Identities (Ed25519 device keys), the signed hash-chained change log,
 * crash-safe compressed storage, and the CRDT document built from changes.
 *
 * Conventions: every function that can fail returns int, 0 (NOTES_OK) on
 * success and a negative NOTES_E* code on failure; notes_last_detail() then
 * says precisely what was wrong. Handles are opaque; each has one NULL-safe
 * destructor. Inputs are borrowed for the duration of the call. Memory the
 * library hands out is freed with notes_free(). One handle, one thread.
 */
#ifndef NOTES_H
#define NOTES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NOTES_API __attribute__((visibility("default")))
#define NOTES_NODISCARD __attribute__((warn_unused_result))

/* ---- Errors ------------------------------------------------------------ */

#define NOTES_ERR_MAP(X)                                                      \
    X(ENOMEM, -1, "out of memory")                                           \
    X(EINVAL, -2, "invalid argument")                                        \
    X(EIO, -3, "input/output error")                                         \
    X(ECORRUPT, -4, "malformed data")                                        \
    X(EBADSIG, -5, "signature does not verify")                              \
    X(EVERSION, -6, "unsupported format version")                            \
    X(ETOOBIG, -7, "size limit exceeded")                                    \
    X(ENOTFOUND, -8, "not found")                                            \
    X(EEXIST, -9, "already exists")                                          \
    X(EPERM, -10, "key file permissions are too open")                       \
    X(EPASSPHRASE, -11, "wrong passphrase")                                  \
    X(EBADCHAIN, -12, "hash chain broken")                                   \
    X(EBADSEQ, -13, "sequence number out of order")                          \
    X(EMISSINGDEP, -14, "missing dependency")                                \
    X(EEQUIVOCATION, -15, "equivocation: two changes share a sequence number") \
    X(EBADOP, -16, "operation out of range")                                 \
    X(ELOCKED, -17, "replica is locked by another process")                  \
    X(ENOIDENTITY, -18, "no identity in this replica")                       \
    X(EWRONGDOC, -19, "change belongs to another document")                  \
    X(ENEEDPASS, -20, "a passphrase is required")                            \
    X(ETRUNCATED, -21, "torn or truncated record")                          \
    X(EUNSIGNED, -22, "change not covered by any signature")                  \
    X(EBADLINK, -23, "invalid device link or revocation")                    \
    X(EREVOKED, -24, "change signed by a revoked device after its revocation") \
    X(EROLLBACK, -25, "changes this replica acknowledged are missing")

typedef enum notes_err {
    NOTES_OK = 0,
#define NOTES_ERR_ENUM(name, code, text) NOTES_##name = (code),
    NOTES_ERR_MAP(NOTES_ERR_ENUM)
#undef NOTES_ERR_ENUM
} notes_err;

/* A static string for an error code ("unknown error" for foreign codes). */
NOTES_API const char *notes_strerror(int err);
/* The symbolic name of an error code, e.g. "NOTES_EBADSIG". */
NOTES_API const char *notes_errname(int err);
/*
 * The detail of the last failure on this thread: what exactly was wrong
 * ("change 7 by ab12-cd34: prev hash does not match change 6"). Empty when the
 * failure had none. Borrowed, valid until the next libnotes call on the thread.
 */
NOTES_API const char *notes_last_detail(void);

/* Frees memory returned by libnotes. NULL is a no-op. */
NOTES_API void notes_free(void *p);

/* Must be called once before any other function (initializes libsodium). */
NOTES_API NOTES_NODISCARD int notes_init(void);

/* ---- Identities -------------------------------------------------------- */
/*
 * A device identity: a name and an Ed25519 key pair. The secret key lives in
 * sodium_malloc'd memory and is wiped when the identity is freed. Immutable
 * once made, so one identity may be read (signed with) from several threads.
 */
typedef struct notes_identity notes_identity;

/* Buffer size for notes_key_encode: "nk" + 52 base32 chars + NUL. */
#define NOTES_KEY_STRLEN 55
/* Buffer size for notes_key_fingerprint: "abcd-efgh" + NUL. */
#define NOTES_FPR_STRLEN 10
/* Longest identity name, in bytes of UTF-8. */
#define NOTES_NAME_MAX 64

/*
 * Make a new identity with a fresh random Ed25519 key pair.
 * name: UTF-8, 1..NOTES_NAME_MAX bytes, no control characters (C0, DEL, C1);
 * copied. OUT: *out, free with notes_identity_free; NULL on failure.
 * Returns NOTES_OK, NOTES_EINVAL (bad name or NULL out), NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_identity_generate(const char *name,
                                                      notes_identity **out);

/*
 * Write `id` to a new key file at `path` (format: docs/identity.md).
 * passphrase: NULL or "" writes the secret unprotected; otherwise it is
 * sealed with a key derived by Argon2id (libsodium crypto_pwhash,
 * OPSLIMIT/MEMLIMIT_INTERACTIVE, random salt) and crypto_secretbox.
 * The file is written to a temporary file (mode 0600) in the same folder,
 * fsynced, renamed to `path` without replacing anything, and the folder is
 * fsynced. An existing `path` is never replaced: NOTES_EEXIST.
 * Returns NOTES_OK, NOTES_EINVAL, NOTES_EEXIST, NOTES_ENOMEM, NOTES_EIO
 * (detail names the failing step; on a failed folder fsync the file may
 * exist). No temporary file is left behind on failure.
 */
NOTES_API NOTES_NODISCARD int notes_identity_save(const notes_identity *id,
                                                  const char *path,
                                                  const char *passphrase);

/*
 * Read the key file at `path`. passphrase: needed only when the file is
 * protected (ignored otherwise); NULL or "" means none.
 * OUT: *out, free with notes_identity_free; NULL on failure.
 * Returns NOTES_OK;
 *   NOTES_ENOTFOUND  no file at `path`;
 *   NOTES_EPERM      group or others may access the file (st_mode & 077);
 *                    the detail says which chmod to run;
 *   NOTES_ETOOBIG    the file is larger than 64 KiB;
 *   NOTES_ENEEDPASS  the file is protected and no passphrase was given;
 *   NOTES_EPASSPHRASE the passphrase does not open the secret (a damaged
 *                    sealed secret looks the same);
 *   NOTES_EVERSION   a key file of another format version;
 *   NOTES_ECORRUPT   malformed: the detail names the line and the problem,
 *                    including a public key that does not match the secret;
 *   NOTES_EINVAL, NOTES_ENOMEM, NOTES_EIO.
 * A returned identity's public key always matches its secret key.
 */
NOTES_API NOTES_NODISCARD int notes_identity_load(const char *path,
                                                  const char *passphrase,
                                                  notes_identity **out);

/*
 * Whether notes_identity_load will need a passphrase for `path`.
 * OUT: *encrypted = 1 if protected, 0 if not (left 0 on failure).
 * The file is read and checked as by notes_identity_load (same errors, minus
 * the passphrase ones; a protected file's sealed secret is not opened, so
 * damage to it shows only at load, as NOTES_EPASSPHRASE).
 */
NOTES_API NOTES_NODISCARD int notes_identity_file_encrypted(const char *path,
                                                            int *encrypted);

/* Free `id`, wiping its secret key. NULL is a no-op. */
NOTES_API void notes_identity_free(notes_identity *id);

/* The name, NUL-terminated UTF-8; borrowed, valid while `id` lives. */
NOTES_API const char *notes_identity_name(const notes_identity *id);

/* The 32-byte Ed25519 public key; borrowed, valid while `id` lives. */
NOTES_API const uint8_t *notes_identity_public_key(const notes_identity *id);

/*
 * Sign `n` bytes at `msg` (NULL allowed when n is 0) with Ed25519.
 * OUT: sig, 64 bytes. Returns NOTES_OK or NOTES_EINVAL.
 */
NOTES_API NOTES_NODISCARD int notes_identity_sign(const notes_identity *id,
                                                  const uint8_t *msg, size_t n,
                                                  uint8_t sig[64]);

/*
 * Check an Ed25519 signature of `n` bytes at `msg` by public key `pk`.
 * Returns NOTES_OK, NOTES_EBADSIG, or NOTES_EINVAL (NULL arguments).
 */
NOTES_API NOTES_NODISCARD int notes_signature_verify(const uint8_t sig[64],
                                                     const uint8_t *msg,
                                                     size_t n,
                                                     const uint8_t pk[32]);

/*
 * Readable public key: "nk" followed by the 32 bytes in base32 (RFC 4648
 * alphabet, lowercase, no padding), 54 characters. OUT: out, NUL-terminated.
 */
NOTES_API void notes_key_encode(const uint8_t pk[32],
                                char out[NOTES_KEY_STRLEN]);

/*
 * Parse a readable public key. Only the exact form notes_key_encode writes
 * is accepted (lowercase, no spaces, canonical last character), and the
 * bytes must be a valid Ed25519 public key (a canonical point of the main
 * subgroup, not of small order). OUT: pk, written only on success.
 * Returns NOTES_OK or NOTES_EINVAL (with a detail) on anything malformed.
 */
NOTES_API NOTES_NODISCARD int notes_key_decode(const char *s, uint8_t pk[32]);

/*
 * Short fingerprint for people to compare: the first 5 bytes of
 * BLAKE2b-256(pk) in lowercase base32, as "abcd-efgh". 40 bits: enough to
 * tell keys apart by eye, not to authenticate them.
 * OUT: out, NUL-terminated.
 */
NOTES_API void notes_key_fingerprint(const uint8_t pk[32],
                                     char out[NOTES_FPR_STRLEN]);

/* ---- Replicas ------------------------------------------------------------ */
/*
 * A replica is a directory ($NOTES_HOME) holding this device's identity and
 * the logs of its notes. Several processes may open one replica at once:
 * writes take an exclusive lock, so they never interleave.
 */
typedef struct notes_replica notes_replica;

/*
 * Create a replica at `home` (created if missing, must not hold an identity
 * yet) with a new identity called `name`. passphrase NULL or "" stores the
 * secret key unprotected. OUT *out: the open, unlocked replica.
 */
NOTES_API NOTES_NODISCARD int notes_replica_create(const char *home,
                                                   const char *name,
                                                   const char *passphrase,
                                                   notes_replica **out);
/* Open an existing replica; NOTES_ENOIDENTITY if `home` holds none. */
NOTES_API NOTES_NODISCARD int notes_replica_open(const char *home,
                                                 notes_replica **out);
/* Close a replica from notes_replica_create or _open: its lock file is
 * closed and its unlocked key wiped. NULL is a no-op. */
NOTES_API void notes_replica_free(notes_replica *r);
/* Whether the identity's secret key needs a passphrase. */
NOTES_API int notes_replica_needs_passphrase(const notes_replica *r);
/*
 * Load the secret key so that commits can be signed (passphrase may be NULL
 * for an unprotected key). Reading, verifying and merging need no key.
 */
NOTES_API NOTES_NODISCARD int notes_replica_unlock(notes_replica *r,
                                                   const char *passphrase);
/* Identity name and public key; available without unlocking. */
NOTES_API const char *notes_replica_name(const notes_replica *r);
NOTES_API const uint8_t *notes_replica_public_key(const notes_replica *r);
NOTES_API const char *notes_replica_home(const notes_replica *r);
/* Ids (16 bytes each) of the notes in the replica, sorted. OUT *ids: free
 * with notes_free. */
NOTES_API NOTES_NODISCARD int notes_replica_list(notes_replica *r,
                                                 uint8_t (**ids)[16],
                                                 size_t *n);
/*
 * The replica's own device identity (HOME/identity, checked as every read
 * of it is), for programs that sign or shake hands with it without opening
 * the replica's notes. OUT *out: free with notes_identity_free.
 */
NOTES_API NOTES_NODISCARD int notes_replica_identity(const char *home,
                                                     const char *passphrase,
                                                     notes_identity **out);

/* ---- Change notification ----------------------------------------------- */
/*
 * fn(arg, home, id) is called whenever changes were stored in note `id` of
 * the replica at `home`: at once for every commit, merge, repair or
 * compaction made in this process (on the thread that made it, after the
 * replica's lock is released), and for other processes' writes when the
 * caller's file watcher reports them through notes_replica_file_event.
 * Subscribers must be idempotent: one write may be told more than once.
 * Process-wide; at most 16 subscribers.
 */
typedef void (*notes_changed_fn)(void *arg, const char *home,
                                 const uint8_t id[16]);
NOTES_API NOTES_NODISCARD int notes_subscribe(notes_changed_fn fn, void *arg);
NOTES_API void notes_unsubscribe(notes_changed_fn fn, void *arg);
/*
 * For the caller's file watcher (the event loop is the caller's): the
 * folder to watch, and what an event there means. notes_replica_file_event
 * returns 1 when `name` (a file name in that folder) is one of a note's
 * files, after telling the subscribers; 0 for anything else.
 */
NOTES_API NOTES_NODISCARD int notes_replica_watch_dir(const char *home,
                                                      char *out, size_t cap);
NOTES_API int notes_replica_file_event(const char *home, const char *name);

/* ---- Petnames: the user's own names for keys --------------------------- */
/*
 * HOME/trust, one "nk... NAME" line per key and a check line (format.md).
 * Names are claims, keys are facts: a petname is what this user calls a
 * key, shown instead of the name the key claims.
 */
typedef struct notes_petname {
    uint8_t key[32];
    char name[NOTES_NAME_MAX + 1];
} notes_petname;

typedef struct notes_petnames {
    notes_petname *names;
    size_t n;
    size_t *bad_lines; /* 1-based lines that are not "nk... NAME": skipped */
    size_t nbad;
    int damaged;       /* the file fails its check: no name is used (n == 0)
                        * and it is never rewritten; notes_last_detail says
                        * why */
} notes_petnames;

/* Load HOME/trust into *out (empty when there is none). Returns NOTES_OK
 * also when the file is damaged (out->damaged); errors are I/O and memory.
 * Release with notes_petnames_clear. */
NOTES_API NOTES_NODISCARD int notes_petnames_load(const char *home,
                                                  notes_petnames *out);
/* The user's name for `key`, or NULL. Borrowed from *p. */
NOTES_API const char *notes_petnames_find(const notes_petnames *p,
                                          const uint8_t key[32]);
/* Name `key` (adds or renames), or with name NULL forget it
 * (NOTES_ENOTFOUND when it has no name). NOTES_EINVAL for a name that
 * breaks the rule of names (1..NOTES_NAME_MAX bytes of UTF-8, no control
 * characters). In memory only: notes_petnames_save writes. */
NOTES_API NOTES_NODISCARD int notes_petnames_set(notes_petnames *p,
                                                 const uint8_t key[32],
                                                 const char *name);
/* Replace HOME/trust atomically with *p and its check line. NOTES_ECORRUPT
 * when *p was loaded from a damaged file (repair or remove it first). */
NOTES_API NOTES_NODISCARD int notes_petnames_save(const char *home,
                                                  const notes_petnames *p);
NOTES_API void notes_petnames_clear(notes_petnames *p);

/* ---- Replica files: checksums and their verification ------------------ */
/*
 * The small files a replica trusts (identity, identity.pub, person, certs,
 * trust, spaces/...) end with a line "check <64 hex digits>": BLAKE2b-256
 * of every byte before it (docs/format.md, "Checksums"), written in the
 * same atomic replacement as the content. Files an older version wrote
 * have no check line: they stay readable, and the next write adds it.
 */
#define NOTES_CHECK_LINE_LEN 71 /* "check " + 64 hex digits + "\n" */
/* The check line of `body` (n bytes). OUT line: NUL-ended. */
NOTES_API void notes_check_line(const void *body, size_t n,
                                char line[NOTES_CHECK_LINE_LEN + 1]);
/*
 * Split the text of a file into the body and its check line, and check it.
 * OUT *body_len: the bytes the check covers (all of them without a check
 * line); *checked: 1 when the file has a check line (which matched), 0 for
 * a file an older version wrote. NOTES_ECORRUPT, the detail naming `path`:
 * the check line is malformed or does not match, or the last line has no
 * newline (the file was cut short).
 */
NOTES_API NOTES_NODISCARD int notes_check_split(const char *path,
                                                const void *text, size_t n,
                                                size_t *body_len,
                                                int *checked);

/* What verification found about one file. */
typedef struct notes_file_status {
    const char *path;    /* the file */
    int code;            /* NOTES_OK, or what is wrong (NOTES_ECORRUPT...) */
    int checked;         /* it carries a check line, and it matched */
    const char *message; /* the problem; for a good file without a check
                          * line a remark; else "" */
} notes_file_status;
typedef void (*notes_file_fn)(const notes_file_status *st, void *arg);
/*
 * Check every file of the replica at `home` that it trusts beside the note
 * logs: identity, identity.pub, person, certs, trust (those present; the
 * first two must be): check line and content (key files parse and their
 * public key matches the secret, certificates verify, trust lines name
 * keys). Calls fn once per file, in that order. Reads only: nothing is
 * rewritten, not even to add a missing check line. Works on a replica too
 * damaged to open. Returns NOTES_OK when every file is sound, else the
 * code of the first damaged file.
 */
NOTES_API int notes_replica_verify_files(const char *home, notes_file_fn fn,
                                         void *arg);


/* ---- People: person keys, device links, revocations ------------------- */
/*
 * A person key certifies device keys ("links"); docs/trust.md explains the
 * model. The person key is a key file like the device's (HOME/person,
 * passphrase-protected or not). Links and revocations made on this replica
 * are kept in HOME/certs and written into every note this replica commits
 * to, so each note carries what is needed to attribute its changes.
 */

/* Whether HOME/person exists. */
NOTES_API int notes_replica_has_person(const notes_replica *r);
/* Whether the person key file needs a passphrase. */
NOTES_API int notes_replica_person_needs_passphrase(const notes_replica *r);
/*
 * Create a person key named `name` (HOME/person, protected when passphrase
 * is non-empty) and link this device to it. The device must be unlocked.
 * NOTES_EEXIST if there is one already.
 */
NOTES_API NOTES_NODISCARD int notes_replica_person_create(notes_replica *r,
                                                          const char *name,
                                                          const char *passphrase);
/* Copy a person key file (a backup, or from another device) into HOME/person
 * and link this device to it. */
NOTES_API NOTES_NODISCARD int notes_replica_person_import(notes_replica *r,
                                                          const char *path,
                                                          const char *passphrase);
/* Load the person key; NOTES_ENOTFOUND when this replica has none. */
NOTES_API NOTES_NODISCARD int notes_replica_person_load(notes_replica *r,
                                                        const char *passphrase,
                                                        notes_identity **out);
/*
 * The pairing code of this device ("np1" + base32): its key and its
 * signature consenting to be linked. OUT *code: free with notes_free.
 */
NOTES_API NOTES_NODISCARD int notes_replica_pair_code(notes_replica *r,
                                                      char **code);
/*
 * Link the device of a pairing code to `person` (a loaded person key):
 * checks the code's consent signature (NOTES_EBADLINK), signs the link,
 * remembers it in HOME/certs. device (may be NULL) receives the key.
 */
NOTES_API NOTES_NODISCARD int notes_replica_link(notes_replica *r,
                                                 const notes_identity *person,
                                                 const char *code,
                                                 uint8_t device[32]);
/*
 * Revoke a device this replica linked for `person`: signs a revocation and
 * remembers it. Every change by that device causally after the revocation
 * is refused (NOTES_EREVOKED) by every replica the revocation reaches.
 */
NOTES_API NOTES_NODISCARD int notes_replica_revoke(notes_replica *r,
                                                   const notes_identity *person,
                                                   const uint8_t device[32]);

typedef struct notes_link_info {
    uint8_t person[32];
    uint8_t device[32];
    char person_name[NOTES_NAME_MAX + 1];
    uint64_t time_ms;    /* when linked (the person's clock) */
    int self;            /* the device is this replica's */
    int revoked;
    uint64_t revoked_ms;
} notes_link_info;

/* The links this replica knows of its person's devices (HOME/certs). OUT
 * *links: free with notes_free. */
NOTES_API NOTES_NODISCARD int notes_replica_links(notes_replica *r,
                                                  notes_link_info **links,
                                                  size_t *n);

/* ---- Documents ----------------------------------------------------------- */
/*
 * A document (a note) is the state built from its verified signed changes:
 * the text (a CRDT that converges whatever the arrival order) and the
 * front-matter fields. Local edits accumulate until notes_doc_commit signs
 * them as one change and appends it durably to the replica.
 */
typedef struct notes_doc notes_doc;

/* Create a new, empty note with a random id (nothing is stored until the
 * first commit). */
NOTES_API NOTES_NODISCARD int notes_doc_create(notes_replica *r,
                                               notes_doc **out);
/*
 * Open a note: read its log, verify every change (signatures, hash chains,
 * sequence numbers, dependencies) and build its state. Changes no file: a
 * damaged or missing part is reported by notes_doc_intact/notes_doc_damage
 * and the note shows the intact prefix (its last good state). A note with
 * only a state file (its log lost) opens empty, with NOTES_EROLLBACK.
 */
NOTES_API NOTES_NODISCARD int notes_doc_open(notes_replica *r,
                                             const uint8_t id[16],
                                             notes_doc **out);
/*
 * notes_doc_open for a caller that reads the note's changes (sync, history,
 * export): the log is replayed at once. notes_doc_open may answer from the
 * note's snapshot (notes/ID.snap) and replay only when first asked for
 * history; that costs a read of the snapshot and a pass over the log for
 * nothing when history is what the caller wants.
 */
NOTES_API NOTES_NODISCARD int notes_doc_open_history(notes_replica *r,
                                                     const uint8_t id[16],
                                                     notes_doc **out);
/*
 * One handle of note `id` for every holder in this process that opens it
 * through this call with the same replica object (a daemon: its page server
 * and each sync session): a commit or merge through it is seen by the
 * others at once, with no read of the log (notes_doc_refresh finds nothing
 * new). Each holder calls notes_doc_free once; the last one closes it.
 * Opened like notes_doc_open, or notes_doc_open_history if `history` and
 * nobody holds it yet. Defer flags and the observer belong to the handle,
 * not the holder; a shared handle is used by one thread at a time.
 */
NOTES_API NOTES_NODISCARD int notes_doc_open_shared(notes_replica *r,
                                                    const uint8_t id[16],
                                                    int history,
                                                    notes_doc **out);
/* Start a note with a given id, e.g. one a peer offers (nothing stored until
 * a commit or merge). */
NOTES_API NOTES_NODISCARD int notes_doc_create_id(notes_replica *r,
                                                  const uint8_t id[16],
                                                  notes_doc **out);
/*
 * A note kept only in memory: commits are signed by `signer` (borrowed; it
 * must outlive the doc; NULL for a doc that only merges and reads) but
 * stored nowhere; merges verify as usual. For tests, benchmarks and tools
 * that process bundles. id NULL: a random id.
 */
NOTES_API NOTES_NODISCARD int notes_doc_memory(const notes_identity *signer,
                                               const uint8_t id[16],
                                               notes_doc **out);
/* Discards uncommitted edits. NULL is a no-op. A shared handle
 * (notes_doc_open_shared) closes when its last holder frees it. */
NOTES_API void notes_doc_free(notes_doc *d);
/* Drop the uncommitted edits (a commit that failed before signing) and
 * keep the handle: the text is the committed one again. */
NOTES_API NOTES_NODISCARD int notes_doc_discard(notes_doc *d);
NOTES_API const uint8_t *notes_doc_id(const notes_doc *d);
/*
 * Whether the note holds everything this replica stored and acknowledged,
 * as of its last read: NOTES_OK; NOTES_ECORRUPT when stored bytes are
 * damaged (a bad record below what this replica acknowledged, a bad log
 * header, a damaged state file, changes in the log that fail
 * verification); NOTES_EROLLBACK when changes this replica acknowledged
 * are missing (the log was cut, lost, or replaced by an older copy).
 * The note then shows its last good state; notes_doc_damage() says what
 * and where. Opening and reading never change a file; the next writing
 * call (commit, merge, compact) sets damaged bytes aside and says so in
 * notes_doc_repaired(). A commit is refused (NOTES_EROLLBACK) while
 * acknowledged changes are missing, so that this device never signs a
 * sequence number twice; a merge (sync, import) is how they come back.
 */
NOTES_API int notes_doc_intact(const notes_doc *d);
/* What is wrong with the note's storage (file and offset), or noteworthy
 * (an unacknowledged interrupted write awaiting the next write), or NULL. */
NOTES_API const char *notes_doc_damage(const notes_doc *d);
/* What the last writing call repaired (bytes set aside, and where), or
 * NULL. */
NOTES_API const char *notes_doc_repaired(const notes_doc *d);

/* The current text, UTF-8. Borrowed until the next mutating call. */
NOTES_API const char *notes_doc_text(notes_doc *d, size_t *nbytes);
/* Length of the text in code points. */
NOTES_API size_t notes_doc_length(notes_doc *d);

/*
 * Replace `del` code points at code point `pos` with `text` (UTF-8, `n`
 * bytes; may be empty). NOTES_EBADOP when pos/del exceed the text,
 * NOTES_EINVAL for invalid UTF-8; the document is then unchanged.
 */
NOTES_API NOTES_NODISCARD int notes_doc_splice(notes_doc *d, size_t pos,
                                               size_t del, const char *text,
                                               size_t n);

/*
 * Make the text equal to `text` (UTF-8, n bytes) with as few splices as a
 * line diff finds (each changed hunk trimmed to the characters that
 * differ), so unchanged lines keep their authorship and concurrent edits
 * elsewhere survive the merge. For editors that hand back a whole text.
 */
NOTES_API NOTES_NODISCARD int notes_doc_set_text(notes_doc *d, const char *text,
                                                 size_t n);

/* Front matter. Scalar fields are registers; list fields add-wins sets. */
NOTES_API NOTES_NODISCARD int notes_doc_set_field(notes_doc *d, const char *key,
                                                  const char *value);
NOTES_API NOTES_NODISCARD int notes_doc_unset_field(notes_doc *d,
                                                    const char *key);
NOTES_API NOTES_NODISCARD int notes_doc_list_add(notes_doc *d, const char *key,
                                                 const char *value);
NOTES_API NOTES_NODISCARD int notes_doc_list_remove(notes_doc *d,
                                                    const char *key,
                                                    const char *value);
/* The value of a scalar field, or NULL. Borrowed. */
NOTES_API const char *notes_doc_field(notes_doc *d, const char *key);
/* Competing concurrent values of a field besides the winner (NULL-terminated
 * array, borrowed until the next mutating call). */
NOTES_API const char *const *notes_doc_field_conflicts(notes_doc *d,
                                                       const char *key);
/* The elements of a list field in their stable order (NULL-terminated,
 * borrowed until the next mutating call). */
NOTES_API const char *const *notes_doc_list(notes_doc *d, const char *key);
/* Names of all fields that have a value, in first-write order (NULL-terminated,
 * borrowed). */
NOTES_API const char *const *notes_doc_fields(notes_doc *d);

/*
 * Observe the text (e.g. to mirror it in an editor): fn is called after
 * each change to the current text, in order, as it happens — local
 * splices, and changes merged from peers or read by notes_doc_refresh,
 * already transformed to the current text — with the code point position
 * and either the code points deleted there (del) or the UTF-8 inserted
 * there (ins, nbytes). After the rare rebuild of the whole state
 * (equivocation evidence, a merge rolled back) it is called once with pos
 * SIZE_MAX: re-read the text. fn must not call into the doc. fn NULL
 * stops observing.
 */
typedef void (*notes_text_fn)(void *ud, size_t pos, size_t del,
                              const char *ins, size_t nbytes);
NOTES_API void notes_doc_observe(notes_doc *d, notes_text_fn fn, void *ud);

/* Whether there are uncommitted edits. */
NOTES_API int notes_doc_dirty(const notes_doc *d);
/*
 * Sign the uncommitted edits as one change and append it durably (fsync)
 * to the replica's log. Needs an unlocked replica. Picks up changes that
 * other processes appended meanwhile. OUT id (may be NULL): the change id.
 * With nothing to commit returns NOTES_OK and leaves id zeroed.
 */
NOTES_API NOTES_NODISCARD int notes_doc_commit(notes_doc *d, uint8_t id[32]);

/* One edit of a text: `del` code points removed at code point `pos`, then
 * `text` (UTF-8, n bytes; NULL when n is 0) inserted there. */
typedef struct notes_splice {
    size_t pos;
    size_t del;
    const char *text;
    size_t n;
} notes_splice;

/*
 * Sign and store, as one change, edits made on the text as it was at
 * `version` (n change ids, e.g. what notes_doc_heads said then; ancestors
 * of others among them are dropped): splice i applies to that text after
 * splices 0..i-1, and the change depends on `version`. It is then merged
 * like a peer's change (Eg-walker: what others did since is kept, and
 * each side's typing stays whole); the observer sees its effect on the
 * current text. For editors that keep a replica of their own (the page
 * of `notes serve`): an edit is never rebased on the way in. Nothing may
 * be pending (NOTES_EINVAL). NOTES_ENOTFOUND: an id the note lacks;
 * NOTES_EBADOP: a splice outside its text (nothing is stored then).
 * OUT id (may be NULL): the change id, zero when there was nothing to sign.
 */
NOTES_API NOTES_NODISCARD int notes_doc_commit_at(notes_doc *d,
                                                  const uint8_t (*version)[32],
                                                  size_t n,
                                                  const notes_splice *s,
                                                  size_t ns, uint8_t id[32]);
/*
 * Rewrite the note's log as one compact pack (zstd at `level`, 1-22; 0 for
 * the default 19): the same signed changes, their hashes recomputed
 * instead of stored. Atomic (temporary file, fsync, rename); other
 * processes switch to the new file. Refused when the log has damage or
 * refused changes, which a rewrite would drop.
 */
NOTES_API NOTES_NODISCARD int notes_doc_compact(notes_doc *d, int level);
/* Re-read the log for changes appended by other processes (or other
 * handles). Nothing is read when the log is the file this handle last
 * read or wrote and has not grown since (a stat and an fstat). */
NOTES_API NOTES_NODISCARD int notes_doc_refresh(notes_doc *d);
/*
 * Deferred durability, for a daemon on the live path (docs/design.md,
 * "Durability"). By default a commit or a merge returns once its log record
 * and then the note's state file are synced (two fdatasyncs). With
 * NOTES_DEFER_STATE the state file is written by notes_doc_flush instead;
 * with NOTES_DEFER_MERGE a merge's log record is synced there too (changes
 * from peers: a crash of the machine loses at most what a peer still has).
 * A commit's record is always synced before it returns: a change signed
 * here is never told to anyone before it is durable. Subscribers
 * (notes_subscribe) are told at once either way. Until the flush the state
 * lags the log, which a reader takes as a whole log with an
 * unacknowledged tail, never as damage. notes_doc_free flushes.
 */
#define NOTES_DEFER_STATE 1u
#define NOTES_DEFER_MERGE 2u
NOTES_API void notes_doc_set_defer(notes_doc *d, unsigned flags);
/* Whether a deferred write waits for notes_doc_flush. */
NOTES_API int notes_doc_needs_flush(const notes_doc *d);
/* Make what was deferred durable: the log synced, the state written. */
NOTES_API NOTES_NODISCARD int notes_doc_flush(notes_doc *d);
/*
 * notes_doc_flush for many docs of one replica at once, for a first sync
 * that brings in many notes: with NOTES_DEFER_MERGE a new note's log is
 * created and written unsynced, and this makes all of them durable with
 * one syncfs(2), then writes their state files and syncs the directory
 * once (two syncs in all, not up to five per note). The state files are
 * only put in place after the logs they claim are durable. Docs without
 * deferred writes are skipped. NOTES_EINVAL for docs of two replicas.
 */
NOTES_API NOTES_NODISCARD int notes_doc_flush_many(notes_doc *const *docs,
                                                   size_t n);

/* ---- History --------------------------------------------------------- */

/* Information about one change, all fields borrowed from the doc. */
typedef struct notes_change_info {
    const uint8_t *id;      /* 32 bytes */
    const uint8_t *author;  /* 32-byte Ed25519 public key */
    uint64_t seq;           /* per author, from 1 */
    uint64_t time_ms;       /* the author's claimed time */
    uint32_t nops;
    uint32_t ndeps;
    uint64_t inserted;      /* code points inserted */
    uint64_t deleted;       /* code points deleted */
    uint32_t nfields;       /* front-matter operations */
    int equivocated;        /* 1: its author signed another change with
                             * this seq (equivocation evidence). Applied
                             * like every change: both branches are in the
                             * state, with what others built on them. */
} notes_change_info;

/*
 * 1 when key `pk` equivocated in this note (signed two different changes
 * with one seq): its changes are kept and applied, but the key is not to
 * be trusted. 0 otherwise (also for a key with no change here).
 */
NOTES_API int notes_doc_author_equivocated(const notes_doc *d,
                                           const uint8_t pk[32]);

/*
 * The display name an author claims in this note (their first change
 * carries it), or NULL. A claim, not a fact: the key is the fact.
 */
NOTES_API const char *notes_doc_author_name(const notes_doc *d,
                                            const uint8_t pk[32]);

/* Number of changes (in log order), and one of them. */
NOTES_API size_t notes_doc_change_count(const notes_doc *d);
NOTES_API NOTES_NODISCARD int notes_doc_change(const notes_doc *d, size_t i,
                                               notes_change_info *out);
/* The dependencies of change i (the version its author had seen): *n ids
 * of 32 bytes, borrowed from the doc. */
NOTES_API NOTES_NODISCARD int notes_doc_change_deps(const notes_doc *d,
                                                    size_t i,
                                                    const uint8_t (**deps)[32],
                                                    size_t *n);
/* Find a change by id or unique hex prefix; NOTES_ENOTFOUND / NOTES_EINVAL
 * (ambiguous). OUT *index. */
NOTES_API NOTES_NODISCARD int notes_doc_find_change(const notes_doc *d,
                                                    const char *hexprefix,
                                                    size_t *index);
/* The current heads (ids of changes no other change depends on), sorted.
 * OUT *heads: n × 32 bytes, free with notes_free. */
NOTES_API NOTES_NODISCARD int notes_doc_heads(notes_doc *d,
                                              uint8_t (**heads)[32], size_t *n);
/*
 * The text as it was once the changes `version` (ids) and their ancestors
 * were applied. OUT *text: NUL-terminated, free with notes_free.
 */
NOTES_API NOTES_NODISCARD int notes_doc_text_at(notes_doc *d,
                                                const uint8_t (*version)[32],
                                                size_t n, char **text,
                                                size_t *nbytes);
/*
 * The difference between the text at version a (n_a ids) and at version b
 * (n_b ids; b NULL: the current text), as a unified line diff with three
 * lines of context ("" when equal). OUT *out: NUL-terminated, free with
 * notes_free.
 */
NOTES_API NOTES_NODISCARD int notes_doc_diff(notes_doc *d,
                                             const uint8_t (*a)[32], size_t n_a,
                                             const uint8_t (*b)[32], size_t n_b,
                                             char **out, size_t *n);
/*
 * The unified line diff (three lines of context, "" when equal) between
 * two texts, labelled "--- label_a" / "+++ label_b": notes_doc_diff for
 * texts the caller made (e.g. the whole note rendered as Markdown).
 * OUT *out: NUL-terminated, free with notes_free.
 */
NOTES_API NOTES_NODISCARD int notes_text_diff(const char *a, size_t n_a,
                                              const char *b, size_t n_b,
                                              const char *label_a,
                                              const char *label_b, char **out,
                                              size_t *n);
/*
 * The whole note as it was once the changes `version` (n ids) and their
 * ancestors were applied: text, front matter and people, as a document
 * kept only in memory (no signer: read it, do not commit to it) holding
 * exactly those changes of `d`. OUT *out: close with notes_doc_free.
 * NOTES_ENOTFOUND when an id is not a change of `d`.
 */
NOTES_API NOTES_NODISCARD int notes_doc_at(notes_doc *d,
                                           const uint8_t (*version)[32],
                                           size_t n, notes_doc **out);
/*
 * The change behind a field as it reads now (an index for
 * notes_doc_change). elem NULL: the field's latest committed write (for a
 * scalar, the one that wins) or, with `first`, its earliest; elem given:
 * the earliest add of that element of list field `key` that no remove
 * has undone. NOTES_ENOTFOUND when there is none.
 */
NOTES_API NOTES_NODISCARD int notes_doc_field_change(notes_doc *d,
                                                     const char *key,
                                                     const char *elem,
                                                     int first, size_t *change);
/* What one operation of a change does (notes_doc_change_op). */
enum notes_op_kind {
    NOTES_OP_INSERT = 1,  /* text inserted: count code points, value */
    NOTES_OP_DELETE = 2,  /* text deleted: count code points */
    NOTES_OP_SET = 3,     /* field `key` set to `value` */
    NOTES_OP_UNSET = 4,   /* field `key` removed */
    NOTES_OP_ADD = 5,     /* `value` added to list field `key` */
    NOTES_OP_REMOVE = 6,  /* `value` removed from list field `key` */
    NOTES_OP_NAME = 8,    /* the author claims the name `value` */
    NOTES_OP_LINK = 9,    /* `device` linked to `person`, who claims the
                           * name `value` */
    NOTES_OP_REVOKE = 10, /* the link of `device` to `person` ended */
    NOTES_OP_CONFIRM = 11 /* the item `value` confirmed; `key`: its owner */
};
typedef struct notes_op_info {
    int kind;                /* enum notes_op_kind */
    uint64_t count;          /* INSERT, DELETE: code points */
    const char *key;         /* not NUL-terminated; keylen bytes */
    size_t keylen;
    const char *value;       /* not NUL-terminated; valuelen bytes */
    size_t valuelen;
    const uint8_t *device;   /* LINK, REVOKE: 32-byte keys, else NULL */
    const uint8_t *person;
} notes_op_info;
/* Operation k (0 .. nops-1, see notes_change_info) of change i; all
 * pointers borrowed from the doc. NOTES_EINVAL out of range. */
NOTES_API NOTES_NODISCARD int notes_doc_change_op(const notes_doc *d, size_t i,
                                                  size_t k, notes_op_info *out);
/*
 * Authorship of the current text: for each code point, the index of the
 * change that inserted it (see notes_doc_change). OUT *changes: ncp entries,
 * free with notes_free.
 */
NOTES_API NOTES_NODISCARD int notes_doc_authorship(notes_doc *d,
                                                   uint32_t **changes,
                                                   size_t *ncp);

/*
 * Concurrent edits of one line (docs/format.md, "Concurrent edits of one
 * line"): two changes neither of which had seen the other edited one line
 * and at least one of them deleted text of it that both had (a rewrite,
 * or deleting a line the other extended). Two people only typing into one
 * line is not one. The CRDT's merge is kept as it is; a conflict is listed
 * until a later change that has seen both sides edits the line again
 * (notes_doc_resolve_conflict makes one).
 */
typedef struct notes_conflict_side {
    size_t change;          /* the side's latest change (notes_doc_change) */
    size_t *changes;        /* every change of the side that edited the
                             * line(s), ascending indexes; nchanges >= 1 */
    size_t nchanges;
    uint8_t author[32];     /* author key of `change` */
    char *text;             /* the line(s) as this side left them: that
                             * region at `change`'s version, the other
                             * sides absent. UTF-8, NUL-terminated */
    size_t nbytes;
} notes_conflict_side;

typedef struct notes_line_conflict {
    size_t from, to;        /* code points [from, to) of the current text:
                             * whole lines, the last one's newline included */
    size_t line;            /* 1-based line of `from` */
    size_t nlines;          /* lines in [from, to) (an unterminated last
                             * line counts) */
    char *merged;           /* the current text of [from, to) */
    size_t nbytes;
    notes_conflict_side *side; /* nsides >= 2, ordered by change id (the
                                * same order on every replica) */
    size_t nsides;
} notes_line_conflict;

/*
 * The line conflicts of the current text, ordered by position. OUT *out
 * (free with notes_line_conflicts_free; NULL when *n == 0). Costs one
 * replay of the note's history when the history has concurrent changes,
 * nothing more than a walk of the causal graph when it has none.
 * NOTES_EINVAL with uncommitted local edits (commit first).
 */
NOTES_API NOTES_NODISCARD int notes_doc_line_conflicts(notes_doc *d,
                                                       notes_line_conflict **out,
                                                       size_t *n);
NOTES_API void notes_line_conflicts_free(notes_line_conflict *c, size_t n);
/*
 * Keep side `side` of conflict `c` (from notes_doc_line_conflicts on this
 * doc): the region [c->from, c->to) is replaced by that side's text, as
 * ordinary uncommitted edits (commit them). The change has both sides as
 * ancestors and edits the region, which ends the conflict. NOTES_EINVAL
 * when side is out of range or the text of the region is no longer
 * c->merged (the note changed: list the conflicts again).
 */
NOTES_API NOTES_NODISCARD int notes_doc_resolve_conflict(
    notes_doc *d, const notes_line_conflict *c, size_t side);

/* ---- People and confirmations in a note ------------------------------- */

typedef struct notes_person_info {
    const uint8_t *person;  /* 32-byte person key, or NULL: linked to nobody,
                             * or contested (linked by several persons) */
    const char *name;       /* the person's self-chosen name, or NULL */
    uint64_t linked_ms;     /* the link's time (a claim) */
    int contested;          /* valid links to two or more persons */
    int revoked;            /* a valid revocation of the device is here */
    uint64_t revoked_ms;
    size_t revoked_change;  /* index of the change carrying it */
} notes_person_info;

/*
 * Who device key `device` speaks for in this note, from the links the note
 * holds (each checked: the device's consent and the person's signature).
 * NOTES_ENOTFOUND when no link names the device (out->person NULL then).
 * Borrowed fields are valid until the next change to the doc.
 */
NOTES_API NOTES_NODISCARD int notes_doc_person(const notes_doc *d,
                                               const uint8_t device[32],
                                               notes_person_info *out);
/*
 * For change i by a revoked device: 1 when the revocation was made after
 * seeing it (signed before the revocation), 0 when concurrent with it (the
 * device had not seen the revocation; not refused, but flagged). -1 when
 * the device is not revoked or on error.
 */
NOTES_API int notes_doc_change_before_revocation(notes_doc *d, size_t i);

typedef struct notes_confirmation {
    size_t change;          /* index of the change that carries it */
    const uint8_t *signer;  /* its author: a device key */
    const uint8_t *anchor;  /* id of the change that inserted the item's
                             * first character ... */
    uint32_t anchor_event;  /* ... and that character's event number */
    const char *owner;      /* the owner it confirms, not NUL-ended */
    size_t owner_len;
    const char *text;       /* the exact item text it confirms */
    size_t text_len;
} notes_confirmation;

/* Confirmations in the note, in log order (both branches of an
 * equivocation included: check notes_doc_author_equivocated on signers). */
NOTES_API size_t notes_doc_confirmation_count(const notes_doc *d);
NOTES_API NOTES_NODISCARD int notes_doc_confirmation(const notes_doc *d,
                                                     size_t i,
                                                     notes_confirmation *out);
/*
 * Stage a confirmation of the item whose first character is at code point
 * `cp`, binding it to that character's CRDT id (stable across edits) and to
 * `owner` (may be "") and `text`. Signed by notes_doc_commit. Local text
 * edits must be committed first (NOTES_EINVAL).
 */
NOTES_API NOTES_NODISCARD int notes_doc_confirm(notes_doc *d, size_t cp,
                                                const char *owner,
                                                const char *text);
/*
 * The stable id of every code point of the text at `version` (n change ids;
 * NULL/0: the current text): the index of the change that inserted it and
 * its event number within that change. OUT *changes, *events: free with
 * notes_free. Local edits must be committed first.
 */
NOTES_API NOTES_NODISCARD int notes_doc_origins(notes_doc *d,
                                                const uint8_t (*version)[32],
                                                size_t n, uint32_t **changes,
                                                uint32_t **events, size_t *ncp);
/*
 * Stage the links and revocations of this replica (HOME/certs) that the
 * note does not hold yet; *added tells how many. notes_doc_commit writes
 * them. Commits do this by themselves; this is for notes one only reads.
 */
NOTES_API NOTES_NODISCARD int notes_doc_publish_certs(notes_doc *d,
                                                      size_t *added);

/* ---- Exchange ---------------------------------------------------------- */
/*
 * Encode the changes a peer lacks. `have` lists the heads the peer has
 * (n ids; 0 = the peer has nothing). OUT *bytes: a self-delimiting bundle of
 * signed changes in causal order; free with notes_free.
 */
NOTES_API NOTES_NODISCARD int notes_doc_export(notes_doc *d,
                                               const uint8_t (*have)[32],
                                               size_t n, uint8_t **bytes,
                                               size_t *nbytes);
/*
 * Verify and merge a bundle from notes_doc_export (from a peer). Every
 * change is checked (signature, chain, sequence, dependencies, document)
 * before anything is applied or stored; changes already present are skipped.
 * Verified new changes are appended durably. On error nothing of the bundle
 * is stored and notes_last_detail() names the offending change.
 * OUT added (may be NULL): how many changes were new.
 */
NOTES_API NOTES_NODISCARD int notes_doc_merge(notes_doc *d, const uint8_t *bytes,
                                              size_t nbytes, size_t *added);

/*
 * Open a bundle file as `notes export --format bundle` writes it (the note's
 * 16-byte id, then a bundle of all its changes) as a memory document: every
 * change is verified as by notes_doc_merge, then the file is checked to be
 * byte for byte what export writes for those changes, so that no byte of it
 * can change unnoticed (NOTES_ECORRUPT "not in canonical form" otherwise).
 * Needs no replica. OUT *out: close with notes_doc_free.
 */
NOTES_API NOTES_NODISCARD int notes_bundle_file_open(const uint8_t *bytes,
                                                     size_t n, notes_doc **out);
/* How many changes a bundle from notes_doc_export holds, read from its
 * header without verifying anything (0 when the header is malformed). */
NOTES_API size_t notes_bundle_count(const uint8_t *bundle, size_t n);

/* ---- Verification ------------------------------------------------------ */

typedef struct notes_problem {
    int code;          /* NOTES_E* */
    size_t change;     /* index of the change concerned, or SIZE_MAX */
    char message[640];
} notes_problem;

typedef struct notes_verify_report {
    size_t changes;    /* changes checked */
    size_t authors;
    size_t signatures; /* signatures verified */
    size_t nproblems;
    notes_problem *problems; /* owned by the report */
    size_t nremarks;   /* worth knowing, not problems: evidence files kept
                        * from a repair of a note that is whole again, an
                        * interrupted write awaiting the next write */
    notes_problem *remarks;  /* owned by the report (code NOTES_OK) */
} notes_verify_report;

/*
 * Re-read the note's log from disk and check everything again: record
 * checksums, every signature, hash chains, sequence numbers, dependencies,
 * equivocation. Returns NOTES_OK when all is well, else the code of the
 * first problem; the report lists them all. Release with
 * notes_verify_report_clear.
 */
NOTES_API NOTES_NODISCARD int notes_doc_verify(notes_doc *d,
                                               notes_verify_report *report);
NOTES_API void notes_verify_report_clear(notes_verify_report *report);

/* ==== For notes' own modules only ======================================= */
/*
 * formats, sync, the page server and the CLI share libnotes' helpers (the
 * growable buffer, the reader, varints, hex, base32, base64, UTF-8, the
 * last-error detail, whole-file reads and atomic writes, and every use of
 * libsodium) instead of writing their own. Define NOTES_SIBLING_API before
 * including this header to see them; the model is zstd's
 * ZSTD_STATIC_LINKING_ONLY. They keep the notes__ prefix of libnotes'
 * internals because they are not a stable API: they change with any commit.
 */
#ifdef NOTES_SIBLING_API

#include <stdarg.h>

/* -- memory (through these so tests can inject failures) -- */
void *notes__malloc(size_t n);
void *notes__calloc(size_t count, size_t size);
void *notes__realloc(void *p, size_t n);
void notes__free(void *p);
char *notes__strdup(const char *s);
char *notes__strndup(const char *s, size_t n);
/*
 * Make room for `need` elements of `size` bytes in the array *p of
 * capacity *cap (doubling, at least `first`). On failure *p is unchanged.
 */
int notes__grow(void *p, size_t *cap, size_t need, size_t size, size_t first);

/* -- the last error's detail: every module of notes sets the one per-thread
 *    detail that notes_last_detail() (and its sibling per module) reads -- */
void notes__set_detail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
void notes__set_detailv(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

/*
 * Growable byte buffer with a hard ceiling: decoders and encoders append
 * through it, so a hostile length hits `max` before memory runs out
 * (SIZE_MAX: no ceiling but memory). On failure the buffer is left as it
 * was. The bytes are kept NUL-terminated past len, so text built in it can
 * be used as a C string.
 */
struct notes_buf {
    uint8_t *data; /* owned; NULL while empty */
    size_t len;
    size_t cap;
    size_t max; /* appends past this fail with NOTES_ETOOBIG */
};

void notes__buf_init(struct notes_buf *b, size_t max);
void notes__buf_release(struct notes_buf *b);
int notes__buf_reserve(struct notes_buf *b, size_t extra);
int notes__buf_put(struct notes_buf *b, const void *p, size_t n);
int notes__buf_put_u8(struct notes_buf *b, uint8_t v);
int notes__buf_put_varint(struct notes_buf *b, uint64_t v);
int notes__buf_put_bytes(struct notes_buf *b, const void *p, size_t n); /* varint length + bytes */
int notes__buf_put_u32le(struct notes_buf *b, uint32_t v);
int notes__buf_puts(struct notes_buf *b, const char *s);
int notes__buf_printf(struct notes_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hand the bytes to the caller (NUL-terminated; free with notes_free) and
 * leave the buffer empty. An empty buffer gives an allocated "". */
int notes__buf_detach(struct notes_buf *b, uint8_t **out, size_t *n);

/*
 * Reader over borrowed bytes. Every getter checks the remaining length by
 * subtraction and returns NOTES_ECORRUPT on truncation. Varints must be
 * minimally encoded (one encoding per value, so signed bytes are canonical).
 */
struct notes_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

void notes__reader_init(struct notes_reader *r, const void *p, size_t len);
int notes__get_u8(struct notes_reader *r, uint8_t *out);
int notes__get_varint(struct notes_reader *r, uint64_t *out);
int notes__get_raw(struct notes_reader *r, size_t n, const uint8_t **out);
int notes__get_bytes(struct notes_reader *r, size_t max, const uint8_t **out, size_t *n);
int notes__get_u32le(struct notes_reader *r, uint32_t *out);
static inline size_t notes__reader_left(const struct notes_reader *r)
{
    return r->len - r->off;
}

static inline uint32_t notes__load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline void notes__store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint64_t notes__load_u64le(const uint8_t *p)
{
    return (uint64_t)notes__load_u32le(p) |
           (uint64_t)notes__load_u32le(p + 4) << 32;
}
static inline void notes__store_u64le(uint8_t *p, uint64_t v)
{
    notes__store_u32le(p, (uint32_t)v);
    notes__store_u32le(p + 4, (uint32_t)(v >> 32));
}

/* -- UTF-8: validation (rejects overlongs, surrogates, > U+10FFFF) and counting -- */
int notes__utf8_valid(const uint8_t *s, size_t n);
size_t notes__utf8_count(const uint8_t *s, size_t n); /* code points; s must be valid */
/* Both at once: the code points of s if it is valid UTF-8, else SIZE_MAX;
 * a leading ASCII run is passed 8 bytes at a time (typed text mostly is). */
size_t notes__utf8_points(const uint8_t *s, size_t n);
/* Byte offset of code point `cp` in valid UTF-8 `s` (n bytes); n if cp is past the end. */
size_t notes__utf8_offset(const uint8_t *s, size_t n, size_t cp);
/* An identity name: UTF-8, 1..NOTES_NAME_MAX bytes, no C0, DEL or C1;
 * local and peer-signed names alike, and the user's petnames. */
int notes__name_valid(const uint8_t *s, size_t n);

/* -- text encodings of bytes -- */
/* Hex: lowercase; notes__unhex takes exactly 2n digits of either case. */
void notes__hex(char *out, const uint8_t *p, size_t n); /* out: 2n+1 bytes */
int notes__unhex(uint8_t *out, size_t n, const char *hex);
/* Base32: RFC 4648 alphabet, lowercase, no padding, canonical (zero
 * trailing bits). notes__base32 returns the encoding's length, as snprintf
 * does (the output is NUL-terminated and cut to outcap). notes__unbase32
 * decodes exactly n bytes; notes__unbase32_len the whole of s (n chars)
 * into at most cap bytes. */
size_t notes__base32(char *out, size_t outcap, const uint8_t *p, size_t n);
int notes__unbase32(uint8_t *out, size_t n, const char *s);
int notes__unbase32_len(uint8_t *out, size_t cap, size_t *outlen,
                        const char *s, size_t n);
/* Base64: the original alphabet with padding (as in identity files, certs
 * and attestations). notes__unbase64 decodes the whole of s (n chars),
 * ignoring nothing, into at most cap bytes. */
#define NOTES__BASE64_LEN(n) ((((n) + 2) / 3) * 4 + 1) /* with the NUL */
size_t notes__base64(char *out, size_t outcap, const uint8_t *p, size_t n);
int notes__unbase64(uint8_t *out, size_t cap, size_t *outlen, const char *s,
                    size_t n);

/* -- files -- */
/* Read a whole file of at most `max` bytes (NOTES_ETOOBIG past it;
 * NOTES_ENOTFOUND when absent). OUT *out: NUL-terminated, notes_free. */
int notes__read_file(const char *path, size_t max, uint8_t **out, size_t *n);
/* Write a whole file atomically: a temporary file beside it, written and
 * fsynced, renamed over PATH, the directory fsynced. */
int notes__write_file_atomic(const char *path, const void *p, size_t n,
                             int mode);
/* The same for a file that must not exist yet: NOTES_EEXIST, and nothing
 * written, when it does. */
int notes__write_file_excl(const char *path, const void *p, size_t n,
                           int mode);
int notes__fsync_dir(const char *dir);
/* A file with a check line (notes_check_line): `body` and its line
 * written as one atomic replacement of `path`. */
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

/* -- compression: zstd behind one file (compress.c) -- */
/* Append one zstd frame of p at `level`. NOTES__ZSTD_SMALL_TABLES caps
 * the match tables of high levels (a quarter of the memory, 0.6% larger). */
#define NOTES__ZSTD_SMALL_TABLES 1u
int notes__compress(struct notes_buf *out, const uint8_t *p, size_t n,
                    int level, unsigned flags);
/* Append what exactly one zstd frame that declares its size decompresses
 * to. NOTES_ECORRUPT: not one such frame, or it does not decompress to its
 * size; NOTES_ETOOBIG: it declares more than `max` bytes, or (ratio > 0)
 * more than ratio times its own size beyond 1 MiB: a bomb, refused before
 * any memory is committed. */
int notes__decompress(struct notes_buf *out, const uint8_t *p, size_t n,
                      size_t max, unsigned ratio);

/* -- cryptography: every use of libsodium in notes goes through crypto.c -- */
#define NOTES__SIGN_PKBYTES 32
#define NOTES__SIGN_SKBYTES 64
#define NOTES__SIGN_SEEDBYTES 32
#define NOTES__SIGBYTES 64
#define NOTES__DH_BYTES 32   /* X25519 public, secret and shared keys */
#define NOTES__AEAD_KEYBYTES 32 /* XChaCha20-Poly1305 */
#define NOTES__AEAD_NPUBBYTES 24
#define NOTES__AEAD_ABYTES 16
#define NOTES__BOX_KEYBYTES 32 /* XSalsa20-Poly1305 (crypto_secretbox) */
#define NOTES__BOX_NONCEBYTES 24
#define NOTES__BOX_MACBYTES 16
#define NOTES__PWHASH_SALTBYTES 16

int notes__crypto_init(void); /* NOTES_EIO if libsodium cannot start */
/* BLAKE2b of `n` bytes into outlen (16..64) bytes, keyed when keylen > 0. */
void notes__hash(uint8_t *out, size_t outlen, const void *in, size_t n,
                 const uint8_t *key, size_t keylen);
/* The same, incrementally. The state is opaque storage for libsodium's. */
typedef struct notes__hash_state {
    _Alignas(64) unsigned char opaque[384];
} notes__hash_state;
void notes__hash_init(notes__hash_state *st, const uint8_t *key,
                      size_t keylen, size_t outlen);
void notes__hash_update(notes__hash_state *st, const void *in, size_t n);
void notes__hash_final(notes__hash_state *st, uint8_t *out, size_t outlen);

void notes__random(void *buf, size_t n);
uint32_t notes__random_below(uint32_t upper); /* uniform in [0, upper) */
/* Wipe secrets; compare in constant time (1: equal, 0: not). */
void notes__wipe(void *p, size_t n);
int notes__equal(const void *a, const void *b, size_t n);
/* Guarded memory for secret keys (notes__secure_free wipes it). */
void *notes__secure_alloc(size_t n);
void notes__secure_free(void *p);

/* Ed25519. notes__sign_keypair: a random key pair when seed is NULL. */
int notes__sign_keypair(uint8_t pk[32], uint8_t sk[64], const uint8_t *seed);
void notes__sign_seed(uint8_t seed[32], const uint8_t sk[64]);
int notes__sign(uint8_t sig[64], const void *msg, size_t n,
                const uint8_t sk[64]);
/* 1 when sig is pk's signature of msg, else 0. */
int notes__sign_verify(const uint8_t sig[64], const void *msg, size_t n,
                       const uint8_t pk[32]);
int notes__ed25519_valid_point(const uint8_t pk[32]);

/* X25519: a fresh key pair; the shared secret (NOTES_EINVAL for a
 * low-order peer key). */
void notes__dh_keypair(uint8_t pk[32], uint8_t sk[32]);
int notes__dh(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32]);

/* XChaCha20-Poly1305 with additional data: seal writes n + ABYTES bytes;
 * open returns NOTES_ECORRUPT when the tag does not verify. */
void notes__aead_seal(uint8_t *out, const uint8_t *msg, size_t n,
                      const uint8_t *ad, size_t adlen,
                      const uint8_t npub[24], const uint8_t key[32]);
int notes__aead_open(uint8_t *out, const uint8_t *ct, size_t n,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t npub[24], const uint8_t key[32]);

/* Passphrase protection of a key file: Argon2id, then crypto_secretbox. */
#define NOTES__PWHASH_OPS_MIN 1ull
#define NOTES__PWHASH_OPS_INTERACTIVE 2ull
#define NOTES__PWHASH_OPS_MAX 4ull
#define NOTES__PWHASH_MEM_MIN 8192ull
#define NOTES__PWHASH_MEM_INTERACTIVE 67108864ull
#define NOTES__PWHASH_MEM_MAX 1073741824ull
int notes__pwhash(uint8_t *key, size_t keylen, const char *pass,
                  size_t passlen, const uint8_t salt[16],
                  unsigned long long ops, size_t mem);
void notes__box_seal(uint8_t *out, const uint8_t *msg, size_t n,
                     const uint8_t nonce[24], const uint8_t key[32]);
int notes__box_open(uint8_t *out, const uint8_t *ct, size_t n,
                    const uint8_t nonce[24], const uint8_t key[32]);

#endif /* NOTES_SIBLING_API */

#ifdef __cplusplus
}
#endif
#endif
