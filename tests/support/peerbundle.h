/*
 * peerbundle.h: the fixture of tests of one note on two replicas (cmocka
 * tests; test_defer, test_doc_shared): replica A holds the note "base",
 * replica B merged it and typed "+peer", and B's whole history is kept as a
 * bundle for A to merge when the test chooses.
 */
#ifndef NOTES_TEST_PEERBUNDLE_H
#define NOTES_TEST_PEERBUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "devices.h"
#include "notes.h"

struct peer_bundle {
    struct test_devices *dev; /* A and B (devices.h), below */
    notes_replica *r, *r2;  /* A and B, created and unlocked */
    const char *home;       /* A's, owned by r */
    uint8_t id[16];         /* the note */
    uint8_t *bundle;        /* B's "base+peer", all of it */
    size_t nb;
};

/* Under a new temporary folder named after `tag`. Fails the test on an
 * error. */
void peer_bundle_setup(struct peer_bundle *f, const char *tag);
/* Free the replicas and the bundle and remove the folder. */
void peer_bundle_teardown(struct peer_bundle *f);

#endif
