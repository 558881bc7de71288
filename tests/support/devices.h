/*
 * devices.h: the fixture of tests over several devices' replicas (cmocka
 * tests; test_doc, test_snapshot): each replica its own home under one new
 * temporary folder, created and unlocked.
 */
#ifndef NOTES_TEST_DEVICES_H
#define NOTES_TEST_DEVICES_H

#include "notes.h"

struct test_devices {
    char *dir;
    notes_replica *a, *b, *c; /* one per name given, in order; else NULL */
};

/* Replicas DIR/NAME with identities NAME (at most three names, then
 * NULL) under a new temporary folder named after `tag`. Fails the test
 * on an error. */
struct test_devices *test_devices_new(const char *tag, const char *name, ...)
    __attribute__((sentinel));
/* Free the replicas and remove the folder. */
void test_devices_free(struct test_devices *f);

/* What `from` has and `to` lacks (exported against to's heads), merged
 * into `to`: a sync between two docs. Fails the test on an error. */
void test_ship(notes_doc *from, notes_doc *to);

#endif
