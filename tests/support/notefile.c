/* notefile.c: a note's files and simulated crashes (notefile.h). The test
 * links cmocka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "internal.h"
#include "notefile.h"
#include "tmpdir.h"

char *test_note_file(const char *home, const uint8_t id[16], const char *ext)
{
    char hex[33], name[64];
    notes__hex(hex, id, 16);
    snprintf(name, sizeof(name), "notes/%s.%s", hex, ext);
    return test_path(home, name);
}

long test_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int test_same_file(const char *path, const void *was, size_t n)
{
    size_t m;
    unsigned char *now = test_slurp(path, &m);
    assert_non_null(now);
    int same = m == n && memcmp(now, was, n) == 0;
    free(now);
    return same;
}

void test_expect_note(notes_replica *r, const uint8_t id[16], const char *want,
                      int intact)
{
    notes_doc *d;
    size_t n;
    int rc = notes_doc_open(r, id, &d);
    if (!want) {
        assert_int_equal(rc, NOTES_ENOTFOUND);
        return;
    }
    assert_int_equal(rc, NOTES_OK);
    const char *t = notes_doc_text(d, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(t, want, n);
    if (intact)
        assert_int_equal(notes_doc_intact(d), NOTES_OK);
    else
        assert_int_not_equal(notes_doc_intact(d), NOTES_OK);
    notes_doc_free(d);
}

void test_expect_killed(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}
