/*
 * replica.h: the replica handle, shared by replica.c and doc.c (internal).
 */
#ifndef NOTES_REPLICA_H
#define NOTES_REPLICA_H

#include "internal.h"
#include "people.h"
#include "store.h"

struct notes_replica {
    char *home;
    char *notes_dir;
    char *key_path;
    char *name;         /* identity name, from identity.pub */
    uint8_t pk[32];     /* identity public key, from identity.pub */
    int encrypted;      /* the secret key needs a passphrase */
    notes_identity *id; /* NULL until notes_replica_unlock */
    int lock_fd;
    int lock_depth;
    uint8_t local_key[32]; /* this device's MAC key for verified logs */
    int has_local_key;
    struct notes__certs certs; /* HOME/certs, read when first needed */
};

int notes__replica_lock(notes_replica *r, int exclusive);
void notes__replica_unlock(notes_replica *r);
char *notes__replica_log_path(const notes_replica *r, const uint8_t id[16]);
/* notes/ID.state: the replica's state of the note's log (state.c). */
char *notes__replica_state_path(const notes_replica *r, const uint8_t id[16]);
/* This device's local MAC key (HOME/local.key; made when missing if
 * `create`, which writers pass), or NULL if it cannot be had (then logs
 * are fully verified). */
const uint8_t *notes__replica_local_key(notes_replica *r, int create);
/* Remove temporary files that killed writers left in notes/ (writers
 * only: reading never changes a file). */
void notes__replica_sweep(notes_replica *r);

#endif
