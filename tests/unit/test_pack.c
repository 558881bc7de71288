/*
 * test_pack.c: the pack (compacted log) decoder against hostile input.
 * A pack is only read after its record checksum matched, but the checksum
 * is keyless: anyone who can write the file can make one match. So the
 * decoder is fed truncations and thousands of random mutations of a real
 * pack: it must never crash or over-read (ASan in CI), and whatever it
 * rebuilds must still be refused unless its signatures verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "change.h"
#include "pack.h"

static const uint8_t docid[16] = {0xd0, 0xc1};

struct rebuilt {
    size_t n, good;
    size_t forged;  /* verified, yet not byte-identical to an original */
};

/* The originals, to compare rebuilt changes against. */
static struct notes__change **orig;
static size_t norig;

static int count_cb(void *ctx, const uint8_t *p, size_t n, const uint8_t *id)
{
    struct rebuilt *r = ctx;
    struct notes__change *c;
    r->n++;
    /* The decoder hands on the id it computed for its deps column; decoding
     * trusts it instead of hashing again, so it must be the change's hash. */
    assert_non_null(id);
    if (notes__change_decode(p, n, &c) == NOTES_OK) {
        assert_memory_equal(c->id, id, 32);
        if (!c->is_signed || notes__change_verify_sig(c) == NOTES_OK)
            r->good++;
        if (c->is_signed && notes__change_verify_sig(c) == NOTES_OK) {
            int found = 0;
            for (size_t i = 0; i < norig && !found; i++)
                found = orig[i]->nbytes == n && !memcmp(orig[i]->bytes, p, n);
            r->forged += !found;
        }
        notes__change_free(c);
    }
    return NOTES_OK;
}

static struct notes_buf make_pack(notes_identity *a, notes_identity *b,
                                  struct notes__change **cs, size_t *ncs)
{
    uint8_t prev_a[32] = {0}, prev_b[32] = {0};
    size_t n = 0;
    for (int i = 0; i < 12; i++) {
        struct notes__change_builder bl;
        notes__builder_init(&bl);
        notes_identity *who = i % 3 == 2 ? b : a;
        uint8_t *prev = who == a ? prev_a : prev_b;
        uint64_t seq = 1;
        for (size_t k = 0; k < n; k++)
            if (!memcmp(cs[k]->author, notes_identity_public_key(who), 32))
                seq++;
        if (i == 0)
            assert_int_equal(notes__builder_name(&bl, "Ana"), NOTES_OK);
        assert_int_equal(notes__builder_ins(&bl, 0, (const uint8_t *)"héllo 🚀\n", 11, 8),
                         NOTES_OK);
        if (i > 2)
            assert_int_equal(notes__builder_del(&bl, NOTES__K_DELBACK, 4, 2), NOTES_OK);
        assert_int_equal(notes__builder_kv(&bl, NOTES__K_SET, "title", "T"), NOTES_OK);
        assert_int_equal(notes__builder_kv(&bl, NOTES__K_ADD, "tags", "x"), NOTES_OK);
        const uint8_t(*deps)[32] = n ? (const uint8_t(*)[32])cs[n - 1]->id : NULL;
        assert_int_equal(notes__builder_finish(&bl, docid, who, seq, prev, deps,
                                               n ? 1 : 0, 1000 + (uint64_t)i,
                                               i % 4 != 1, &cs[n]), NOTES_OK);
        memcpy(prev, cs[n]->id, 32);
        n++;
        notes__builder_release(&bl);
    }
    *ncs = n;
    struct notes_buf out;
    notes__buf_init(&out, 1 << 24);
    assert_int_equal(notes__pack_encode(docid, cs, n, 0, &out), NOTES_OK);
    return out;
}

static void test_pack_roundtrip(void **state)
{
    (void)state;
    notes_identity *a, *b;
    struct notes__change *cs[16];
    size_t n;
    assert_int_equal(notes_identity_generate("Ana", &a), NOTES_OK);
    assert_int_equal(notes_identity_generate("Bo", &b), NOTES_OK);
    struct notes_buf pk = make_pack(a, b, cs, &n);
    orig = cs;
    norig = n;
    /* Rebuilt changes all decode and verify (unsigned ones are covered by
     * the later signed ones of their author when ingested). */
    struct rebuilt r = {0};
    assert_int_equal(notes__pack_decode(docid, pk.data, pk.len, 0, count_cb, &r),
                     NOTES_OK);
    assert_int_equal(r.n, n);
    assert_int_equal(r.good, n);
    assert_int_equal(r.forged, 0);
    /* Another document's id rebuilds bodies whose signatures fail. */
    uint8_t other[16] = {9};
    r.n = r.good = 0;
    assert_int_equal(notes__pack_decode(other, pk.data, pk.len, 0, count_cb, &r),
                     NOTES_OK);
    assert_true(r.good < n);
    /* Every truncation is refused. */
    for (size_t cut = 0; cut < pk.len; cut++) {
        r.n = r.good = 0;
        assert_int_not_equal(notes__pack_decode(docid, pk.data, cut, 0, count_cb, &r),
                             NOTES_OK);
    }
    for (size_t i = 0; i < n; i++)
        notes__change_free(cs[i]);
    notes__buf_release(&pk);
    notes_identity_free(a);
    notes_identity_free(b);
}

static void test_pack_mutations(void **state)
{
    (void)state;
    notes_identity *a, *b;
    struct notes__change *cs[16];
    size_t n;
    assert_int_equal(notes_identity_generate("Ana", &a), NOTES_OK);
    assert_int_equal(notes_identity_generate("Bo", &b), NOTES_OK);
    struct notes_buf pk = make_pack(a, b, cs, &n);
    orig = cs;
    norig = n;
    uint64_t x = 0x2545f4914f6cdd1dull;
    uint8_t *m = malloc(pk.len + 64);
    size_t accepted_forged = 0;
    for (int t = 0; t < 20000; t++) {
        size_t len = pk.len;
        memcpy(m, pk.data, len);
        int edits = 1 + (int)(t % 4);
        for (int e = 0; e < edits; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x >> 8) % len;
            switch (x % 4) {
            case 0: m[at] ^= (uint8_t)(1u << (x >> 3 & 7)); break;
            case 1: m[at] = (uint8_t)(x >> 16); break;
            case 2: m[at] = 0xff; break;
            default: /* insert a byte */
                if (len < pk.len + 60) {
                    memmove(m + at + 1, m + at, len - at);
                    m[at] = (uint8_t)(x >> 24);
                    len++;
                }
            }
        }
        struct rebuilt r = {0};
        int rc = notes__pack_decode(docid, m, len, 0, count_cb, &r);
        (void)rc;
        /* What a mutated pack rebuilds can only be what was signed: a
         * change that verifies must be byte-identical to an original. */
        accepted_forged += r.forged;
    }
    assert_int_equal(accepted_forged, 0);
    free(m);
    for (size_t i = 0; i < n; i++)
        notes__change_free(cs[i]);
    notes__buf_release(&pk);
    notes_identity_free(a);
    notes_identity_free(b);
}

/*
 * A bundle for a peer that has the first changes packs only the rest: its
 * references to what the peer has are full ids (EXTERNAL). They rebuild
 * byte for byte; without the flag (a log's pack) they are refused, and
 * without the flag such a pack cannot even be made.
 */
static void test_pack_external(void **state)
{
    (void)state;
    notes_identity *a, *b;
    struct notes__change *cs[16];
    size_t n;
    assert_int_equal(notes_identity_generate("Ana", &a), NOTES_OK);
    assert_int_equal(notes_identity_generate("Bo", &b), NOTES_OK);
    struct notes_buf full = make_pack(a, b, cs, &n);
    orig = cs;
    norig = n;
    struct notes_buf part;
    notes__buf_init(&part, 1 << 24);
    assert_int_equal(notes__pack_encode(docid, cs + 5, n - 5, 0, &part),
                     NOTES_EINVAL);
    part.len = 0;
    assert_int_equal(notes__pack_encode(docid, cs + 5, n - 5,
                                        NOTES__PACK_EXTERNAL, &part),
                     NOTES_OK);
    struct rebuilt r = {0};
    assert_int_equal(notes__pack_decode(docid, part.data, part.len,
                                        NOTES__PACK_EXTERNAL, count_cb, &r),
                     NOTES_OK);
    assert_int_equal(r.n, n - 5);
    assert_int_equal(r.good, n - 5);
    assert_int_equal(r.forged, 0);
    r.n = r.good = 0;
    assert_int_equal(notes__pack_decode(docid, part.data, part.len, 0,
                                        count_cb, &r),
                     NOTES_ECORRUPT);
    /* Every truncation of the partial pack is refused too. */
    for (size_t cut = 0; cut < part.len; cut++)
        assert_int_not_equal(notes__pack_decode(docid, part.data, cut,
                                                NOTES__PACK_EXTERNAL, count_cb,
                                                &r),
                             NOTES_OK);
    for (size_t i = 0; i < n; i++)
        notes__change_free(cs[i]);
    notes__buf_release(&part);
    notes__buf_release(&full);
    notes_identity_free(a);
    notes_identity_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_pack_mutations),
        cmocka_unit_test(test_pack_external),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
