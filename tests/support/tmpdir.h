/* tmpdir.h: temporary directories for tests, removed recursively. */
#ifndef NOTES_TEST_TMPDIR_H
#define NOTES_TEST_TMPDIR_H
#include <stddef.h>
/* mkdtemp under $TMPDIR (or /tmp); returns a malloc'd path or NULL. */
char *test_tmpdir(const char *tag);
/* rm -rf path (no symlink following), then free it. */
void test_rmtree(char *path);
/* Path join into a static-free malloc'd string. */
char *test_path(const char *dir, const char *name);
/* Read a whole file (malloc'd, NUL-terminated); NULL on error. */
unsigned char *test_slurp(const char *path, size_t *n);
/* Write a whole file; 0 on success. */
int test_spit(const char *path, const void *p, size_t n);
#endif
