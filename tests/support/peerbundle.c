/*
 * peerbundle.c: one note on two replicas, and the peer's bundle
 * (peerbundle.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "peerbundle.h"

void peer_bundle_setup(struct peer_bundle *f, const char *tag)
{
    notes_doc *d, *d2;
    uint8_t *b0;
    size_t n0, added;
    memset(f, 0, sizeof(*f));
    f->dev = test_devices_new(tag, "ana", "bo", NULL);
    f->r = f->dev->a;
    f->r2 = f->dev->b;
    f->home = notes_replica_home(f->r);
    assert_int_equal(notes_doc_create(f->r, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, "base", 4), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    memcpy(f->id, notes_doc_id(d), 16);
    assert_int_equal(notes_doc_export(d, NULL, 0, &b0, &n0), NOTES_OK);
    notes_doc_free(d);
    assert_int_equal(notes_doc_create_id(f->r2, f->id, &d2), NOTES_OK);
    assert_int_equal(notes_doc_merge(d2, b0, n0, &added), NOTES_OK);
    notes__free(b0);
    assert_int_equal(notes_doc_splice(d2, 4, 0, "+peer", 5), NOTES_OK);
    assert_int_equal(notes_doc_commit(d2, NULL), NOTES_OK);
    assert_int_equal(notes_doc_export(d2, NULL, 0, &f->bundle, &f->nb), NOTES_OK);
    notes_doc_free(d2);
}

void peer_bundle_teardown(struct peer_bundle *f)
{
    notes__free(f->bundle);
    test_devices_free(f->dev);
}
