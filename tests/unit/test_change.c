/*
 * test_change.c: the signed change: canonical encoding, signatures, and
 * rejection of every kind of malformed or forged change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "change.h"
#include "people.h"

static const uint8_t doc_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static struct notes__change *make_change(notes_identity *id, uint64_t seq,
                                         const uint8_t (*deps)[32], uint32_t ndeps)
{
    struct notes__change_builder b;
    struct notes__change *c = NULL;
    uint8_t prev[32];
    memset(prev, 0xab, sizeof(prev));
    notes__builder_init(&b);
    assert_int_equal(notes__builder_ins(&b, 0, (const uint8_t *)"héllo 日本", 13, 8), NOTES_OK);
    assert_int_equal(notes__builder_del(&b, NOTES__K_DEL, 1, 2), NOTES_OK);
    assert_int_equal(notes__builder_kv(&b, NOTES__K_SET, "title", "Weekly"), NOTES_OK);
    assert_int_equal(notes__builder_kv(&b, NOTES__K_ADD, "participants", "Ana"), NOTES_OK);
    assert_int_equal(notes__builder_kv(&b, NOTES__K_UNSET, "location", NULL), NOTES_OK);
    assert_int_equal(notes__builder_finish(&b, doc_id, id, seq, prev, deps, ndeps,
                                           1700000000000ull, 1, &c),
                     NOTES_OK);
    notes__builder_release(&b);
    return c;
}

static void test_change_roundtrip(void **state)
{
    (void)state;
    notes_identity *id;
    uint8_t deps[2][32];
    memset(deps[0], 1, 32);
    memset(deps[1], 2, 32);
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    struct notes__change *c = make_change(id, 2, (const uint8_t(*)[32])deps, 2), *d;
    assert_non_null(c);
    assert_int_equal(notes__change_verify_sig(c), NOTES_OK);
    assert_int_equal(notes__change_decode(c->bytes, c->nbytes, &d), NOTES_OK);
    assert_memory_equal(d->id, c->id, 32);
    assert_memory_equal(d->author, notes_identity_public_key(id), 32);
    assert_int_equal(d->seq, 2);
    assert_int_equal(d->ndeps, 2);
    assert_int_equal(d->time_ms, 1700000000000ull);
    assert_int_equal(d->nops, 5);
    assert_int_equal(d->ops[0].kind, NOTES__K_INS);
    assert_int_equal(d->ops[0].count, 8);
    assert_int_equal(d->ops[1].kind, NOTES__K_DEL);
    assert_int_equal(d->ops[1].pos, 1);
    assert_int_equal(d->ops[1].count, 2);
    assert_int_equal(d->ops[2].kind, NOTES__K_SET);
    assert_memory_equal(d->ops[2].text, "Weekly", 6);
    assert_int_equal(d->ops[4].kind, NOTES__K_UNSET);
    assert_int_equal(notes__change_verify_sig(d), NOTES_OK);
    notes__change_free(c);
    notes__change_free(d);
    notes_identity_free(id);
}

/* Every single-byte flip anywhere in a change is caught. */
static void test_change_every_flip_detected(void **state)
{
    (void)state;
    notes_identity *id;
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    struct notes__change *c = make_change(id, 1, NULL, 0);
    uint8_t *copy = malloc(c->nbytes);
    for (size_t i = 0; i < c->nbytes; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            struct notes__change *d = NULL;
            memcpy(copy, c->bytes, c->nbytes);
            copy[i] ^= (uint8_t)(1u << bit);
            int rc = notes__change_decode(copy, c->nbytes, &d);
            if (rc == NOTES_OK) {
                assert_int_equal(notes__change_verify_sig(d), NOTES_EBADSIG);
                notes__change_free(d);
            }
        }
    }
    free(copy);
    notes__change_free(c);
    notes_identity_free(id);
}

/* The memo of signatures checked (change.c): a change checked, or signed
 * here, passes again; a copy with any other signature does not, right
 * after the original passed; nor one whose body differs; the memo
 * forgotten or its entries replaced by others, the original is checked
 * again and still passes. */
static void test_change_sig_memo(void **state)
{
    (void)state;
    notes_identity *id, *eve;
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    assert_int_equal(notes_identity_generate("Eve", &eve), NOTES_OK);
    struct notes__change *c = make_change(id, 1, NULL, 0), *d;
    assert_int_equal(notes__change_verify_sig(c), NOTES_OK); /* memo hit */
    uint8_t *copy = malloc(c->nbytes);
    for (size_t k = 0; k < 64; k++) {
        memcpy(copy, c->bytes, c->nbytes);
        copy[c->body_len + 1 + k] ^= 0x20;
        assert_int_equal(notes__change_decode(copy, c->nbytes, &d), NOTES_OK);
        assert_memory_equal(d->id, c->id, 32); /* the same body */
        assert_int_equal(notes__change_verify_sig(d), NOTES_EBADSIG);
        notes__change_free(d);
        assert_int_equal(notes__change_verify_sig(c), NOTES_OK);
    }
    /* Eve's signature over Ana's body: the same id, another signature. */
    memcpy(copy, c->bytes, c->nbytes);
    assert_int_equal(notes_identity_sign(eve, copy, c->body_len,
                                         copy + c->body_len + 1), NOTES_OK);
    assert_int_equal(notes__change_decode(copy, c->nbytes, &d), NOTES_OK);
    assert_int_equal(notes__change_verify_sig(d), NOTES_EBADSIG);
    notes__change_free(d);
    notes__sig_memo_clear();
    assert_int_equal(notes__change_verify_sig(c), NOTES_OK); /* checked again */
    for (uint64_t seq = 2; seq < 600; seq++) { /* others take every slot */
        struct notes__change *o = make_change(id, seq, NULL, 0);
        assert_int_equal(notes__change_verify_sig(o), NOTES_OK);
        notes__change_free(o);
    }
    assert_int_equal(notes__change_verify_sig(c), NOTES_OK);
    free(copy);
    notes__change_free(c);
    notes_identity_free(id);
    notes_identity_free(eve);
}

/* Truncation at every length never crashes and never decodes. */
static void test_change_truncated(void **state)
{
    (void)state;
    notes_identity *id;
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    struct notes__change *c = make_change(id, 1, NULL, 0);
    for (size_t n = 0; n < c->nbytes; n++) {
        struct notes__change *d = NULL;
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, c->bytes, n);
        int rc = notes__change_decode(p, n, &d);
        if (rc == NOTES_OK) {
            assert_int_equal(notes__change_verify_sig(d), NOTES_EBADSIG);
            notes__change_free(d);
        }
        free(p);
    }
    notes__change_free(c);
    notes_identity_free(id);
}

/* Signed by one key, claiming another author. */
static void test_change_wrong_key(void **state)
{
    (void)state;
    notes_identity *ana, *eve;
    assert_int_equal(notes_identity_generate("Ana", &ana), NOTES_OK);
    assert_int_equal(notes_identity_generate("Eve", &eve), NOTES_OK);
    struct notes__change *c = make_change(ana, 1, NULL, 0), *d;
    uint8_t *forged = malloc(c->nbytes);
    memcpy(forged, c->bytes, c->nbytes);
    assert_int_equal(notes_identity_sign(eve, forged, c->body_len,
                                         forged + c->body_len + 1), NOTES_OK);
    assert_int_equal(notes__change_decode(forged, c->nbytes, &d), NOTES_OK);
    assert_int_equal(notes__change_verify_sig(d), NOTES_EBADSIG);
    notes__change_free(d);
    free(forged);
    notes__change_free(c);
    notes_identity_free(ana);
    notes_identity_free(eve);
}

static void encode_header(struct notes_buf *b, uint64_t seq)
{
    static const uint8_t author[32] = {9};
    assert_int_equal(notes__buf_put(b, "NC\x01", 3), NOTES_OK);
    assert_int_equal(notes__buf_put(b, doc_id, 16), NOTES_OK);
    assert_int_equal(notes__buf_put(b, author, 32), NOTES_OK);
    assert_int_equal(notes__buf_put_varint(b, seq), NOTES_OK);
}

static int decode_buf(struct notes_buf *b)
{
    uint8_t sig[64] = {0};
    struct notes__change *c = NULL;
    assert_int_equal(notes__buf_put_u8(b, 1), NOTES_OK);
    assert_int_equal(notes__buf_put(b, sig, 64), NOTES_OK);
    int rc = notes__change_decode(b->data, b->len, &c);
    notes__change_free(c);
    notes__buf_release(b);
    return rc;
}

/* One name op of `n` bytes in an otherwise well-formed change. */
static int decode_name_op(const char *name, size_t n)
{
    struct notes_buf b;
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0); /* deps */
    notes__buf_put_varint(&b, 5); /* time */
    notes__buf_put_varint(&b, 1); /* nops */
    notes__buf_put_u8(&b, NOTES__K_NAME);
    notes__buf_put_bytes(&b, name, n);
    return decode_buf(&b);
}

/* A link op whose certificate carries person name `name` (3..64 bytes). */
static int decode_link_op(const char *name)
{
    notes_identity *person, *device;
    uint8_t consent[64];
    struct notes_buf link, b;
    assert_int_equal(notes_identity_generate("Ana", &person), NOTES_OK);
    assert_int_equal(notes_identity_generate("Ana laptop", &device), NOTES_OK);
    assert_int_equal(notes__consent_make(device, consent), NOTES_OK);
    notes__buf_init(&link, 1 << 16);
    assert_int_equal(notes__link_make(person, notes_identity_public_key(device),
                                      consent, 5, &link),
                     NOTES_OK);
    /* Swap the name "Ana" for `name`: the layout ends namelen|name|sig. */
    size_t n = strlen(name);
    assert_true(link.len == 202 + 3);
    uint8_t cert[202 + NOTES_NAME_MAX];
    memcpy(cert, link.data, 137);
    cert[137] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) /* bytes, not a C string */
        cert[138 + i] = (uint8_t)name[i];
    memcpy(cert + 138 + n, link.data + 138 + 3, 64);
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_LINK);
    notes__buf_put_bytes(&b, cert, 202 + n);
    notes__buf_release(&link);
    notes_identity_free(person);
    notes_identity_free(device);
    return decode_buf(&b);
}

/* A peer's signed name obeys the local name rule (notes__name_valid): no
 * C0, DEL, C1 or invalid UTF-8, 1..64 bytes, in a name op or in the person
 * name of a device link, so no name can carry terminal escapes. */
static void test_change_name_rule(void **state)
{
    (void)state;
    struct notes__change_builder b;
    assert_int_equal(decode_name_op("Ana", 3), NOTES_OK);
    assert_int_equal(decode_name_op("Ana \xc3\xa9 \xe6\x97\xa5", 10), NOTES_OK);
    assert_int_equal(decode_name_op("Ana\x1b[8m", 7), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("Ana\a", 4), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("Ana\r", 4), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("Ana\n", 4), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("Ana\x7f", 4), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("Ana\xc2\x9b" "8m", 7), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("Ana\xff", 4), NOTES_ECORRUPT);
    assert_int_equal(decode_name_op("", 0), NOTES_ECORRUPT);
    /* The same rule as identity.c's for local names. */
    assert_true(notes__name_valid((const uint8_t *)"Ana (x)", 7));
    assert_false(notes__name_valid((const uint8_t *)"Ana\x1b", 4));
    assert_false(notes__name_valid((const uint8_t *)"Ana\xc2\x85", 5));
    assert_true(notes__name_valid((const uint8_t *)"Ana\xc2\xa0", 5));
    notes_identity *id;
    assert_int_not_equal(notes_identity_generate("Ana\x1b[8m", &id), NOTES_OK);
    notes__builder_init(&b);
    assert_int_equal(notes__builder_name(&b, "Ana\x1b[8m"), NOTES_EINVAL);
    notes__builder_release(&b);

    assert_int_equal(decode_link_op("Ana"), NOTES_OK);
    assert_int_equal(decode_link_op("Bob (mc3x-dn2y)"), NOTES_OK);
    assert_int_equal(decode_link_op("Ana\x1b[8m"), NOTES_ECORRUPT);
    assert_int_equal(decode_link_op("Ana\xc2\x9b" "2J"), NOTES_ECORRUPT);
    assert_int_equal(decode_link_op("Ana\a"), NOTES_ECORRUPT);
}

/* Hand-made encodings: each violation of the format has its error. */
static void test_change_malformed(void **state)
{
    (void)state;
    struct notes_buf b;

    /* Well-formed baseline (bad signature, but decodes). */
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);     /* deps */
    notes__buf_put_varint(&b, 5);     /* time */
    notes__buf_put_varint(&b, 1);     /* nops */
    notes__buf_put_u8(&b, NOTES__K_INS);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_bytes(&b, "x", 1);
    assert_int_equal(decode_buf(&b), NOTES_OK);

    /* Non-minimal varint for seq. */
    notes__buf_init(&b, 1 << 20);
    notes__buf_put(&b, "NC\x01", 3);
    notes__buf_put(&b, doc_id, 16);
    uint8_t author[32] = {9};
    notes__buf_put(&b, author, 32);
    notes__buf_put(&b, "\x81\x00", 2);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_DEL);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 1);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    /* Unknown version. */
    notes__buf_init(&b, 1 << 20);
    notes__buf_put(&b, "NC\x02", 3);
    notes__buf_put(&b, doc_id, 16);
    notes__buf_put(&b, author, 32);
    assert_int_equal(decode_buf(&b), NOTES_EVERSION);

    /* Unsorted dependencies. */
    uint8_t d1[32], d2[32];
    memset(d1, 2, 32);
    memset(d2, 1, 32);
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 2);
    notes__buf_put(&b, d1, 32);
    notes__buf_put(&b, d2, 32);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_DEL);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 1);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    /* Invalid UTF-8 in inserted text. */
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_INS);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_bytes(&b, "\xc3\x28", 2);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    /* Huge claimed text length. */
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_INS);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, UINT64_C(1) << 40);
    assert_int_not_equal(decode_buf(&b), NOTES_OK);

    /* Huge claimed op count. */
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, UINT32_MAX);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    /* Unknown op kind, zero delete, seq 0, trailing bytes. */
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, 99);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_DEL);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 0);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 0);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_DEL);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, 0);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);

    /* Backspace run reaching before the start. */
    notes__buf_init(&b, 1 << 20);
    encode_header(&b, 1);
    notes__buf_put_varint(&b, 0);
    notes__buf_put_varint(&b, 5);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_u8(&b, NOTES__K_DELBACK);
    notes__buf_put_varint(&b, 1);
    notes__buf_put_varint(&b, 3);
    assert_int_equal(decode_buf(&b), NOTES_ECORRUPT);
}

static void test_change_oversized(void **state)
{
    (void)state;
    size_t n = NOTES__CHANGE_MAX + 1;
    uint8_t *p = calloc(1, n);
    struct notes__change *c = NULL;
    memcpy(p, "NC\x01", 3);
    assert_int_equal(notes__change_decode(p, n, &c), NOTES_ETOOBIG);
    assert_null(c);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_change_roundtrip),
        cmocka_unit_test(test_change_every_flip_detected),
        cmocka_unit_test(test_change_truncated),
        cmocka_unit_test(test_change_sig_memo),
        cmocka_unit_test(test_change_wrong_key),
        cmocka_unit_test(test_change_malformed),
        cmocka_unit_test(test_change_name_rule),
        cmocka_unit_test(test_change_oversized),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
