/* devices.c: several devices' replicas for a test (devices.h). The test
 * links cmocka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "devices.h"
#include "tmpdir.h"

static notes_replica *new_replica(const char *dir, const char *name)
{
    char *home = test_path(dir, name);
    notes_replica *r;
    assert_non_null(home);
    assert_int_equal(notes_replica_create(home, name, NULL, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    free(home);
    return r;
}

struct test_devices *test_devices_new(const char *tag, const char *name, ...)
{
    struct test_devices *f = calloc(1, sizeof(*f));
    va_list ap;
    assert_non_null(f);
    notes_replica **slot[] = {&f->a, &f->b, &f->c};
    f->dir = test_tmpdir(tag);
    assert_non_null(f->dir);
    va_start(ap, name);
    for (size_t i = 0; name; i++, name = va_arg(ap, const char *)) {
        assert_true(i < sizeof(slot) / sizeof(slot[0]));
        *slot[i] = new_replica(f->dir, name);
    }
    va_end(ap);
    return f;
}

void test_devices_free(struct test_devices *f)
{
    if (!f)
        return;
    notes_replica_free(f->a);
    notes_replica_free(f->b);
    notes_replica_free(f->c);
    test_rmtree(f->dir);
    free(f);
}

void test_ship(notes_doc *from, notes_doc *to)
{
    uint8_t (*heads)[32] = NULL;
    size_t nh = 0, added = 0, n = 0;
    uint8_t *b = NULL;
    assert_int_equal(notes_doc_heads(to, &heads, &nh), NOTES_OK);
    assert_int_equal(notes_doc_export(from, (const uint8_t(*)[32])heads, nh,
                                      &b, &n),
                     NOTES_OK);
    assert_int_equal(notes_doc_merge(to, b, n, &added), NOTES_OK);
    notes_free(b);
    notes_free(heads);
}
