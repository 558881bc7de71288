/*
 * test_notify.c: what libnotes answers for its sibling modules (issue 16):
 * change notification (in process, after the lock is released, and for
 * other processes through the caller's file events), petnames with their
 * check line, the replica's identity, a bundle's count, and the shared
 * buffer and base32 helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "internal.h"
#include "tmpdir.h"

struct seen {
    int calls;
    uint8_t id[16];
    char home[512];
    notes_replica *reopen_from; /* opens the note from the callback */
    int reopened;
};

static void on_change(void *arg, const char *home, const uint8_t id[16])
{
    struct seen *s = arg;
    s->calls++;
    memcpy(s->id, id, 16);
    snprintf(s->home, sizeof(s->home), "%s", home);
    if (s->reopen_from) {
        /* The lock is released by now: opening the note here must not
         * wait for ever (another handle, as sync or the page would use). */
        notes_replica *r2;
        notes_doc *d;
        assert_int_equal(notes_replica_open(home, &r2), NOTES_OK);
        assert_int_equal(notes_doc_open(r2, id, &d), NOTES_OK);
        s->reopened = notes_doc_length(d) > 0;
        notes_doc_free(d);
        notes_replica_free(r2);
    }
}

static void test_commit_and_merge_notify(void **state)
{
    (void)state;
    char *home = test_tmpdir("notify");
    notes_replica *r;
    notes_doc *d;
    struct seen s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(notes_replica_create(home, "ana", NULL, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    assert_int_equal(notes_subscribe(on_change, &s), NOTES_OK);
    assert_int_equal(notes_doc_create(r, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, "hello", 5), NOTES_OK);
    assert_int_equal(s.calls, 0); /* nothing stored yet */
    s.reopen_from = r;
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_true(s.calls >= 1);
    assert_memory_equal(s.id, notes_doc_id(d), 16);
    assert_string_equal(s.home, home);
    assert_true(s.reopened);

    /* A merge into another replica tells its home. */
    char *home2 = test_tmpdir("notify2");
    notes_replica *r2;
    notes_doc *d2;
    uint8_t *bundle;
    size_t nb, added;
    assert_int_equal(notes_replica_create(home2, "bo", NULL, &r2), NOTES_OK);
    assert_int_equal(notes_doc_export(d, NULL, 0, &bundle, &nb), NOTES_OK);
    assert_int_equal(notes_bundle_count(bundle, nb), 1);
    assert_int_equal(notes_bundle_count(bundle, 3), 0); /* truncated */
    assert_int_equal(notes_doc_create_id(r2, notes_doc_id(d), &d2), NOTES_OK);
    s.reopen_from = NULL;
    s.calls = 0;
    assert_int_equal(notes_doc_merge(d2, bundle, nb, &added), NOTES_OK);
    assert_int_equal(added, 1);
    assert_true(s.calls >= 1);
    assert_string_equal(s.home, home2);

    /* Unsubscribed: no more calls. */
    notes_unsubscribe(on_change, &s);
    s.calls = 0;
    assert_int_equal(notes_doc_splice(d, 5, 0, "!", 1), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(s.calls, 0);

    notes_free(bundle);
    notes_doc_free(d2);
    notes_doc_free(d);
    notes_replica_free(r2);
    notes_replica_free(r);
    test_rmtree(home2);
    test_rmtree(home);
}

static void test_file_events(void **state)
{
    (void)state;
    struct seen s;
    char dir[600];
    memset(&s, 0, sizeof(s));
    assert_int_equal(notes_subscribe(on_change, &s), NOTES_OK);
    assert_int_equal(notes_replica_watch_dir("/h", dir, sizeof(dir)), NOTES_OK);
    assert_string_equal(dir, "/h/notes");
    assert_int_equal(notes_replica_watch_dir("/h", dir, 4), NOTES_EINVAL);
    assert_int_equal(notes_replica_file_event(
                         "/h", "00112233445566778899aabbccddeeff.log"), 1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.id[0], 0x00);
    assert_int_equal(s.id[15], 0xff);
    assert_string_equal(s.home, "/h");
    assert_int_equal(notes_replica_file_event(
                         "/h", "00112233445566778899aabbccddeeff.state"), 1);
    assert_int_equal(notes_replica_file_event(
                         "/h", "00112233445566778899aabbccddeeff.log.tmp42"), 1);
    /* Not a note's file: nothing told. */
    assert_int_equal(notes_replica_file_event("/h", "ui.json"), 0);
    assert_int_equal(notes_replica_file_event(
                         "/h", "0011223344556677zz99aabbccddeeff.log"), 0);
    assert_int_equal(notes_replica_file_event(
                         "/h", "00112233445566778899aabbccddeeff.txt"), 0);
    assert_int_equal(notes_replica_file_event("/h", ""), 0);
    assert_int_equal(notes_replica_file_event("/h", NULL), 0);
    assert_int_equal(s.calls, 3);
    notes_unsubscribe(on_change, &s);
}

static void test_petnames(void **state)
{
    (void)state;
    char *home = test_tmpdir("pets");
    notes_petnames p;
    uint8_t k1[32], k2[32];
    notes_identity *i1, *i2;
    assert_int_equal(notes_identity_generate("one", &i1), NOTES_OK);
    assert_int_equal(notes_identity_generate("two", &i2), NOTES_OK);
    memcpy(k1, notes_identity_public_key(i1), 32);
    memcpy(k2, notes_identity_public_key(i2), 32);
    notes_identity_free(i1);
    notes_identity_free(i2);
    assert_int_equal(notes_petnames_load(home, &p), NOTES_OK);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.damaged, 0);
    assert_int_equal(notes_petnames_set(&p, k1, "Rita"), NOTES_OK);
    assert_int_equal(notes_petnames_set(&p, k2, "Bo"), NOTES_OK);
    assert_int_equal(notes_petnames_set(&p, k1, "Rita (design)"), NOTES_OK);
    assert_int_equal(notes_petnames_set(&p, k1, "bad\x1b[31m"), NOTES_EINVAL);
    assert_int_equal(notes_petnames_set(&p, k1, ""), NOTES_EINVAL);
    assert_int_equal(notes_petnames_save(home, &p), NOTES_OK);
    notes_petnames_clear(&p);

    assert_int_equal(notes_petnames_load(home, &p), NOTES_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(notes_petnames_find(&p, k1), "Rita (design)");
    assert_string_equal(notes_petnames_find(&p, k2), "Bo");
    assert_int_equal(notes_petnames_set(&p, k2, NULL), NOTES_OK);
    assert_null(notes_petnames_find(&p, k2));
    assert_int_equal(notes_petnames_set(&p, k2, NULL), NOTES_ENOTFOUND);
    notes_petnames_clear(&p);

    /* A flipped byte: the file fails its check, no name is used, and it
     * is not rewritten over. */
    char *path = test_path(home, "trust");
    size_t n;
    unsigned char *text = test_slurp(path, &n);
    assert_non_null(text);
    text[3] ^= 1;
    assert_int_equal(test_spit(path, text, n), 0);
    assert_int_equal(notes_petnames_load(home, &p), NOTES_OK);
    assert_true(p.damaged);
    assert_int_equal(p.n, 0);
    assert_int_equal(notes_petnames_save(home, &p), NOTES_ECORRUPT);
    size_t n2;
    unsigned char *after = test_slurp(path, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(after, text, n);
    notes_petnames_clear(&p);
    free(after);

    /* An older file without a check line, with a bad line: the bad line is
     * reported and skipped, the others count. */
    char key[NOTES_KEY_STRLEN], older[300];
    notes_key_encode(k2, key);
    int len = snprintf(older, sizeof(older), "nothing here\n%s Bo\n", key);
    assert_int_equal(test_spit(path, older, (size_t)len), 0);
    assert_int_equal(notes_petnames_load(home, &p), NOTES_OK);
    assert_false(p.damaged);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.nbad, 1);
    assert_int_equal(p.bad_lines[0], 1);
    assert_string_equal(notes_petnames_find(&p, k2), "Bo");
    notes_petnames_clear(&p);
    /* Cut short (no newline at its end): damaged, no name used. */
    assert_int_equal(test_spit(path, older, (size_t)len - 1), 0);
    assert_int_equal(notes_petnames_load(home, &p), NOTES_OK);
    assert_true(p.damaged);
    assert_int_equal(p.n, 0);
    notes_petnames_clear(&p);
    free(text);
    free(path);
    test_rmtree(home);
}

static void test_replica_identity(void **state)
{
    (void)state;
    char *home = test_tmpdir("ident");
    notes_replica *r;
    notes_identity *id;
    assert_int_equal(notes_replica_create(home, "ana", NULL, &r), NOTES_OK);
    assert_int_equal(notes_replica_identity(home, NULL, &id), NOTES_OK);
    assert_memory_equal(notes_identity_public_key(id),
                        notes_replica_public_key(r), 32);
    notes_identity_free(id);
    notes_replica_free(r);
    char *none = test_path(home, "nothing-here");
    assert_int_not_equal(notes_replica_identity(none, NULL, &id), NOTES_OK);
    assert_null(id);
    free(none);
    test_rmtree(home);
}

static void test_shared_helpers(void **state)
{
    (void)state;
    struct notes_buf b;
    uint8_t *out;
    size_t n;
    notes__buf_init(&b, 16);
    assert_int_equal(notes__buf_puts(&b, "abc"), NOTES_OK);
    assert_string_equal((const char *)b.data, "abc"); /* NUL kept past len */
    assert_int_equal(notes__buf_printf(&b, "%d-%s", 42, "x"), NOTES_OK);
    assert_int_equal(b.len, 7);
    assert_int_equal(notes__buf_printf(&b, "%s", "0123456789"), NOTES_ETOOBIG);
    assert_int_equal(b.len, 7); /* unchanged on failure */
    assert_int_equal(notes__buf_detach(&b, &out, &n), NOTES_OK);
    assert_string_equal((const char *)out, "abc42-x");
    assert_int_equal(n, 7);
    assert_null(b.data);
    notes_free(out);
    /* A long printf goes past the small stack buffer. */
    notes__buf_init(&b, SIZE_MAX);
    char big[600];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(notes__buf_printf(&b, "<%s>", big), NOTES_OK);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.data[b.len], 0);
    notes__buf_release(&b);

    /* base32 of any length, canonical only. */
    uint8_t raw[7] = {1, 2, 3, 4, 5, 6, 7}, back[8];
    char s[32];
    size_t k = notes__base32(s, sizeof(s), raw, sizeof(raw));
    assert_int_equal(k, 12);
    assert_int_equal(notes__unbase32_len(back, sizeof(back), &n, s, k), NOTES_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(back, raw, 7);
    assert_int_equal(notes__unbase32_len(back, 6, &n, s, k), NOTES_EINVAL);
    s[k - 1] = 'z'; /* non-zero trailing bits */
    assert_int_equal(notes__unbase32_len(back, sizeof(back), &n, s, k),
                     NOTES_EINVAL);
    assert_int_equal(notes__unbase32_len(back, sizeof(back), &n, "a!", 2),
                     NOTES_EINVAL);

    /* base64 round trip and refusal of trailing garbage. */
    char b64[NOTES__BASE64_LEN(7)];
    assert_int_equal(notes__base64(b64, sizeof(b64), raw, 7), 12);
    assert_int_equal(notes__unbase64(back, sizeof(back), &n, b64, 12), NOTES_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(back, raw, 7);
    assert_int_equal(notes__unbase64(back, sizeof(back), &n, "AQID*", 5),
                     NOTES_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_and_merge_notify),
        cmocka_unit_test(test_file_events),
        cmocka_unit_test(test_petnames),
        cmocka_unit_test(test_replica_identity),
        cmocka_unit_test(test_shared_helpers),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
