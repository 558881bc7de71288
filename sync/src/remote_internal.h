/*
 * remote_internal.h: shared by remote*.c (git remotes, docs/remote.md).
 * Not installed; tests include it to build packs directly.
 */
#ifndef NOTES_REMOTE_INTERNAL_H
#define NOTES_REMOTE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sync_internal.h"

/* ---- running git (remote_git.c) ---- */
/* What git gave: notes_sync_git_result (notes_sync.h), the result of the
 * public notes_sync_git too, which runs git the same way. */
/* Run git argv (argv[0] "git", NULL-terminated) with stdin from in (nin
 * bytes; NULL: /dev/null), temporary files in tmpdir. NOTES_OK once git
 * ran (whatever its status: see res->status); NOTES_SYNC_EREMOTE when git
 * is not installed; NOTES_EIO, NOTES_ETOOBIG (stdout over max_out). */
int remote_git(const char *tmpdir, const char *const *argv, const void *in,
               size_t nin, size_t max_out, notes_sync_git_result *res);
void remote_git_result_free(notes_sync_git_result *g);
/* git's reason for a failure, from its stderr, printable. */
const char *remote_git_why(const notes_sync_git_result *g, char *buf,
                           size_t cap);

/* ---- keys, tags and packs (remote.c) ---- */
#define REMOTE_TAG_LEN ((size_t)16) /* bytes; 32 hex digits in a ref name */
#define REMOTE_PACK_NAME_LEN ((size_t)16) /* random bytes; hex + ".pack" */
#define REMOTE_PACK_MAX (256u << 20) /* bytes of one encrypted pack */
#define REMOTE_PACKS_MAX 4096       /* packs in one device ref */
#define REMOTE_OID_MAX 64           /* hex digits (SHA-256 repositories) */

struct remote_keys {
    uint8_t key[32];                      /* XChaCha20-Poly1305 */
    uint8_t space_tag[REMOTE_TAG_LEN];
    char space_hex[2 * REMOTE_TAG_LEN + 1];
};
void remote_keys_derive(const uint8_t secret[32], struct remote_keys *k);
/* A device's tag in the space: keyed by the secret, so it says nothing
 * of the key to anyone without it. */
void remote_device_tag(const uint8_t secret[32], const uint8_t pk[32],
                       char hex[2 * REMOTE_TAG_LEN + 1]);

/* One note's bundle inside a pack (borrowed from the pack's plaintext). */
struct remote_entry {
    uint8_t id[16];
    uint8_t *bundle;
    size_t n;
};

/* A pack opened: who made it, its number, the packs its ref holds with it
 * (names[0] is its own), its bundles. */
struct remote_pack {
    uint8_t device[32];
    uint64_t seq;
    uint8_t (*names)[REMOTE_PACK_NAME_LEN];
    size_t nnames;
    struct remote_entry *entries;
    size_t nentries;
    uint8_t *plain; /* owns what entries point into */
    size_t nplain;
};
void remote_pack_clear(struct remote_pack *p);

/*
 * Seal a pack: device, seq, the ref's pack names (names[0]: this one's),
 * then the bundles; zstd, Padmé padding, XChaCha20-Poly1305 under k with
 * a random nonce. OUT *out (free), *n.
 */
int remote_pack_seal(const struct remote_keys *k, const uint8_t device[32],
                     uint64_t seq, const uint8_t (*names)[REMOTE_PACK_NAME_LEN],
                     size_t nnames, const struct remote_entry *entries,
                     size_t nentries, uint8_t **out, size_t *n);
/* Open a pack: NOTES_ECORRUPT (with a detail) if it does not authenticate
 * under k or is malformed. */
int remote_pack_open(const struct remote_keys *k, const uint8_t *p, size_t n,
                     struct remote_pack *out);
/* Padmé: the padded size of a plaintext of n bytes (at most 12% more). */
size_t remote_padme(size_t n);

/* ---- the remotes file (remote.c) ---- */
/* What was last seen of one device ref of a remote. */
struct remote_seen {
    char remote[NOTES_REMOTE_NAME_MAX + 1];
    char dev[2 * REMOTE_TAG_LEN + 1];
    char commit[REMOTE_OID_MAX + 1];
    uint64_t seq; /* its newest pack's number */
};
struct remote_config {
    notes_sync_remote *remotes;
    size_t nremotes;
    struct remote_seen *seen;
    size_t nseen;
};
/* flock on $NOTES_HOME/remotes.lock (held across a whole sync): the fd,
 * or a negative code. */
int remote_config_lock(const char *home);
int remote_config_load(const char *home, struct remote_config *c);
int remote_config_store(const char *home, const struct remote_config *c);
void remote_config_clear(struct remote_config *c);
/* malloc'd "$home/remotes.d/NAME SUFFIX". */
char *remote__path(const char *home, const char *name, const char *suffix);

#endif
