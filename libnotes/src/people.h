/*
 * people.h: person keys, device links and revocations (internal).
 *
 * A person key certifies device keys. The certificate (a "link") carries
 * two signatures: the device's consent to be linked (made once, given as
 * the pairing code) and the person's. A revocation embeds the link it ends
 * and is signed by the same person key. Both travel as operations inside
 * ordinary signed changes (kinds 9 and 10), so one note's log holds what is
 * needed to attribute its changes to people. docs/trust.md explains the
 * model; docs/format.md has the byte layouts.
 */
#ifndef NOTES_PEOPLE_H
#define NOTES_PEOPLE_H

#include "internal.h"

#define NOTES__LINK_MAX (202u + NOTES_NAME_MAX)
#define NOTES__REVOKE_MAX (73u + NOTES__LINK_MAX)
#define NOTES__ANCHOR_LEN 36u           /* change id + event number */
#define NOTES__OWNER_MAX 128u           /* owner in a confirmation, bytes */

struct notes__link {
    const uint8_t *person;  /* 32 */
    const uint8_t *device;  /* 32 */
    uint64_t time_ms;       /* the person's clock when linking: a claim */
    const uint8_t *consent; /* 64: the device's signature */
    const char *name;       /* the person's claimed name, not NUL-ended */
    size_t namelen;
    const uint8_t *bytes;   /* the whole certificate */
    size_t n;
};

struct notes__revoke {
    uint64_t time_ms;
    struct notes__link link; /* the link it ends */
    const uint8_t *bytes;
    size_t n;
};

/* Structure only (sizes, version, UTF-8 name): NOTES_ECORRUPT. */
int notes__link_parse(const uint8_t *p, size_t n, struct notes__link *out);
int notes__revoke_parse(const uint8_t *p, size_t n, struct notes__revoke *out);
/* Both signatures of a link / the link and the revocation's signature:
 * NOTES_EBADLINK with a detail naming the keys. */
int notes__link_check(const struct notes__link *l);
int notes__revoke_check(const struct notes__revoke *rv);

/* The device's consent to be linked: its signature over its own key. */
int notes__consent_make(const notes_identity *device, uint8_t sig[64]);
int notes__consent_check(const uint8_t device[32], const uint8_t sig[64]);
int notes__link_make(const notes_identity *person, const uint8_t device[32],
                     const uint8_t consent[64], uint64_t time_ms,
                     struct notes_buf *out);
int notes__revoke_make(const notes_identity *person, const uint8_t *link,
                       size_t n, uint64_t time_ms, struct notes_buf *out);

/* Certificates the replica publishes into every note it writes to: links
 * and revocations of this replica's person and device (HOME/certs). */
struct notes__cert {
    uint8_t kind;        /* NOTES__K_LINK or NOTES__K_REVOKE */
    uint8_t *bytes;
    size_t n;
};
struct notes__certs {
    struct notes__cert *c;
    size_t n;
    long long mtime_ns;  /* of the file when read, to see other writers */
    int loaded;
};
/* The current list (re-read when the file changed). Borrowed. */
int notes__replica_certs(notes_replica *r, const struct notes__cert **c,
                         size_t *n);
/* Add one (no-op if present); written at once, atomically. */
int notes__replica_add_cert(notes_replica *r, int kind, const uint8_t *p,
                            size_t n);
void notes__certs_release(struct notes__certs *c);
/* Whether the body of a certs file (check line removed) holds only valid,
 * verifying certificates: NOTES_ECORRUPT naming the line otherwise. */
int notes__certs_check_text(const char *path, const uint8_t *buf, size_t len);

#endif
