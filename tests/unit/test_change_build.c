/*
 * test_change_build.c: notes__builder_finish makes a change of text ops
 * from the builder's records instead of parsing its own encoding; the
 * change must be exactly what notes__change_decode makes of the bytes
 * (every field, the ops pointing into the same places), and whatever the
 * decoder refuses (an empty or invalid insert, a delete of nothing, a
 * backspace run past the start, unsorted deps) must still be refused the
 * same way. A builder reset for the next change builds the same changes
 * as a fresh one, and the ops it writes in place are the canonical bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "change.h"

static const uint8_t doc_id[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

static void same_change(const struct notes__change *a,
                        const struct notes__change *b)
{
    assert_memory_equal(a->id, b->id, 32);
    assert_memory_equal(a->doc, b->doc, 16);
    assert_memory_equal(a->author, b->author, 32);
    assert_true(a->seq == b->seq);
    assert_memory_equal(a->prev, b->prev, 32);
    assert_int_equal(a->ndeps, b->ndeps);
    if (a->ndeps)
        assert_memory_equal(a->deps, b->deps, a->ndeps * 32);
    else
        assert_null(b->deps);
    assert_true(a->time_ms == b->time_ms);
    assert_int_equal(a->nops, b->nops);
    assert_true(a->ntext_events == b->ntext_events);
    assert_int_equal(a->nbytes, b->nbytes);
    assert_memory_equal(a->bytes, b->bytes, a->nbytes);
    assert_int_equal(a->body_len, b->body_len);
    assert_int_equal(a->ops_off, b->ops_off);
    assert_int_equal(a->is_signed, b->is_signed);
    for (uint32_t i = 0; i < a->nops; i++) {
        const struct notes__op *x = &a->ops[i], *y = &b->ops[i];
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->pos, y->pos);
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->textlen, y->textlen);
        assert_int_equal(x->keylen, y->keylen);
        /* the same place of each one's own bytes */
        assert_true((x->text == NULL) == (y->text == NULL));
        if (x->text)
            assert_int_equal(x->text - a->bytes, y->text - b->bytes);
        assert_true((x->key == NULL) == (y->key == NULL));
        if (x->key)
            assert_int_equal(x->key - a->bytes, y->key - b->bytes);
    }
}

static const char *const texts[] = {"a", "hello", " ", "\n", "héllo 日本",
                                    "😀x", "abcdefghijklmnopqrstuvwxyz0123456789"};

/* Random text ops (and now and then a field, which makes finish decode). */
static void fill(struct notes__change_builder *b, int fields)
{
    uint32_t nops = 1 + rnd(60);
    for (uint32_t i = 0; i < nops; i++) {
        uint32_t r = rnd(10);
        if (r < 5) {
            const char *t = texts[rnd(7)];
            size_t n = strlen(t), k = 0;
            for (size_t j = 0; j < n; j++)
                k += ((unsigned char)t[j] & 0xc0) != 0x80;
            assert_int_equal(notes__builder_ins(b, rnd(100000), (const uint8_t *)t,
                                                n, (uint32_t)k),
                             NOTES_OK);
        } else if (r < 7) {
            assert_int_equal(notes__builder_del(b, NOTES__K_DEL, rnd(100000),
                                                1 + rnd(300)),
                             NOTES_OK);
        } else if (r < 9 || !fields) {
            uint32_t pos = rnd(100000);
            assert_int_equal(notes__builder_del(b, NOTES__K_DELBACK, pos,
                                                1 + rnd(pos + 1)),
                             NOTES_OK);
        } else {
            assert_int_equal(notes__builder_kv(b, NOTES__K_SET, "title", "x"),
                             NOTES_OK);
        }
    }
}

static void check_one(struct notes__change_builder *b, notes_identity *id,
                      uint64_t seq, int sign)
{
    uint8_t prev[32], deps[3][32];
    uint32_t nd = rnd(4);
    memset(prev, 0x5a, 32);
    for (uint32_t i = 0; i < nd; i++) {
        memset(deps[i], 0x10 * (int)(i + 1), 32);
        deps[i][31] = (uint8_t)rnd(256);
    }
    struct notes__change *c, *d;
    assert_int_equal(notes__builder_finish(b, doc_id, id, seq, prev,
                                           (const uint8_t(*)[32])deps, nd,
                                           1700000000000ull + rnd(1000), sign,
                                           &c),
                     NOTES_OK);
    assert_int_equal(notes__change_decode(c->bytes, c->nbytes, &d), NOTES_OK);
    same_change(d, c);
    if (sign)
        assert_int_equal(notes__change_verify_sig(c), NOTES_OK);
    notes__change_free(c);
    notes__change_free(d);
}

static void test_records_equal_decode(void **state)
{
    (void)state;
    notes_identity *id;
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    struct notes__change_builder kept;
    notes__builder_init(&kept);
    for (int i = 0; i < 300; i++) {
        struct notes__change_builder b;
        notes__builder_init(&b);
        uint64_t save = rng;
        fill(&b, i % 3 == 0);
        check_one(&b, id, 1 + (uint64_t)(i % 5), i % 2);
        notes__builder_release(&b);
        /* The same ops in a builder reset after the last change. */
        uint64_t after = rng;
        rng = save;
        fill(&kept, i % 3 == 0);
        rng = after;
        check_one(&kept, id, 1 + (uint64_t)(i % 5), i % 2);
        notes__builder_reset(&kept);
    }
    notes__builder_release(&kept);
    notes_identity_free(id);
}

/* Ops the decoder refuses, written by the builder all the same: finish
 * refuses them as before (nothing is vouched for that it did not check). */
static void test_refused_as_before(void **state)
{
    (void)state;
    notes_identity *id;
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    static const uint8_t bad_utf8[] = {'a', 0xc3, 0x28};
    for (int k = 0; k < 5; k++) {
        struct notes__change_builder b;
        struct notes__change *c = (struct notes__change *)&b; /* not NULL */
        uint8_t deps[2][32];
        uint32_t nd = 0;
        notes__builder_init(&b);
        assert_int_equal(notes__builder_ins(&b, 0, (const uint8_t *)"ok", 2, 2),
                         NOTES_OK);
        switch (k) {
        case 0: /* empty insert */
            assert_int_equal(notes__builder_ins(&b, 0, (const uint8_t *)"", 0, 0),
                             NOTES_OK);
            break;
        case 1: /* not UTF-8 */
            assert_int_equal(notes__builder_ins(&b, 0, bad_utf8, 3, 2), NOTES_OK);
            break;
        case 2: /* a delete of nothing */
            assert_int_equal(notes__builder_del(&b, NOTES__K_DEL, 3, 0), NOTES_OK);
            break;
        case 3: /* a backspace run past the start */
            assert_int_equal(notes__builder_del(&b, NOTES__K_DELBACK, 2, 4),
                             NOTES_OK);
            break;
        case 4: /* deps out of order */
            memset(deps[0], 2, 32);
            memset(deps[1], 1, 32);
            nd = 2;
            break;
        }
        int rc = notes__builder_finish(&b, doc_id, id, 1, NULL,
                                       (const uint8_t(*)[32])deps, nd,
                                       1700000000000ull, 1, &c);
        assert_int_equal(rc, NOTES_ECORRUPT);
        assert_null(c);
        notes__builder_release(&b);
    }
    notes_identity_free(id);
}

/* The builder writes its text ops in place: the bytes are the canonical
 * encoding (kind, then varints and bytes as notes__buf_put_* write them),
 * including positions and lengths of every varint size. */
static void test_op_bytes(void **state)
{
    (void)state;
    static const uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, 2097151,
                                    2097152, 268435455, 268435456,
                                    UINT32_MAX};
    char text[300];
    memset(text, 'q', sizeof(text));
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct notes__change_builder b;
        struct notes_buf want;
        uint32_t pos = (uint32_t)vals[i];
        size_t n = 1 + (i * 37) % 299;
        notes__builder_init(&b);
        notes__buf_init(&want, SIZE_MAX / 2);
        assert_int_equal(notes__builder_ins(&b, pos, (const uint8_t *)text, n,
                                            (uint32_t)n),
                         NOTES_OK);
        assert_int_equal(notes__builder_del(&b, NOTES__K_DEL, pos,
                                            (uint32_t)vals[(i + 3) % 11] | 1),
                         NOTES_OK);
        assert_int_equal(notes__buf_put_u8(&want, NOTES__K_INS), NOTES_OK);
        assert_int_equal(notes__buf_put_varint(&want, pos), NOTES_OK);
        assert_int_equal(notes__buf_put_bytes(&want, text, n), NOTES_OK);
        assert_int_equal(notes__buf_put_u8(&want, NOTES__K_DEL), NOTES_OK);
        assert_int_equal(notes__buf_put_varint(&want, pos), NOTES_OK);
        assert_int_equal(notes__buf_put_varint(&want, vals[(i + 3) % 11] | 1),
                         NOTES_OK);
        assert_int_equal(b.ops.len, want.len);
        assert_memory_equal(b.ops.data, want.data, want.len);
        assert_int_equal(b.ops.data[b.ops.len], 0);
        notes__buf_release(&want);
        notes__builder_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_bytes),
        cmocka_unit_test(test_records_equal_decode),
        cmocka_unit_test(test_refused_as_before),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
