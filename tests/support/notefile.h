/*
 * notefile.h: for tests of what reaches the disk (deferred durability,
 * flushes, simulated crashes): a note's files in a replica, their size,
 * what the note reads, and a child process that dies as a crash does.
 */
#ifndef NOTES_TEST_NOTEFILE_H
#define NOTES_TEST_NOTEFILE_H

#include <stdint.h>
#include <sys/types.h>

#include "notes.h"

/* HOME/notes/ID.EXT ("log", "state"), malloc'd. */
char *test_note_file(const char *home, const uint8_t id[16], const char *ext);
/* A file's size, or -1 when there is none. */
long test_file_size(const char *path);
/* Whether the file holds exactly was[0..n) (fails the test when it cannot
 * be read). */
int test_same_file(const char *path, const void *was, size_t n);
/* Note `id` of replica r reads `want` (NULL: there is no such note) and is
 * intact or not (notes_doc_intact). */
void test_expect_note(notes_replica *r, const uint8_t id[16], const char *want,
                      int intact);
/* Wait for child `pid`, which must have died of SIGKILL (the child raises
 * it to die as a crash does: no exit path, no flush, no leak check).
 * Fails the test otherwise. */
void test_expect_killed(pid_t pid);

#endif
