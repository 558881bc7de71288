/*
 * test_store.c: the append-only log: round trips, torn tails at every byte,
 * corrupted records, decompression bombs, refusal of foreign headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "store.h"
#include "tmpdir.h"

static const uint8_t doc[16] = {7, 7, 7};

struct seen {
    size_t n;
    uint8_t last[64];
};

static int count_cb(void *ctx, const uint8_t *p, size_t n,
                    const uint8_t *id)
{
    (void)id;
    struct seen *s = ctx;
    s->n++;
    memcpy(s->last, p, n < 64 ? n : 64);
    return NOTES_OK;
}

/* Append `records` records of 2 changes each; returns record offsets. */
static void fill_log(const char *path, int records, uint64_t *offsets)
{
    struct notes__log *lg;
    assert_int_equal(notes__log_open(path, doc, 1, &lg), NOTES_OK);
    for (int r = 0; r < records; r++) {
        char a[64], b[64];
        snprintf(a, sizeof(a), "change %d.a with some text to compress", r);
        snprintf(b, sizeof(b), "change %d.b", r);
        const uint8_t *ptrs[2] = {(const uint8_t *)a, (const uint8_t *)b};
        size_t lens[2] = {strlen(a), strlen(b)};
        if (offsets)
            offsets[r] = lg->end;
        assert_int_equal(notes__log_append(lg, ptrs, lens, 2, 3), NOTES_OK);
    }
    if (offsets)
        offsets[records] = lg->end;
    notes__log_close(lg);
}

static size_t read_all(const char *path, uint64_t *damaged, int *rc_out)
{
    struct notes__log *lg;
    struct seen s = {0};
    int rc = notes__log_open(path, doc, 0, &lg);
    if (rc) {
        *rc_out = rc;
        return 0;
    }
    *rc_out = notes__log_read(lg, count_cb, &s);
    *damaged = lg->damaged;
    notes__log_close(lg);
    return s.n;
}

static void test_store_roundtrip(void **state)
{
    (void)state;
    char *dir = test_tmpdir("store");
    char *path = test_path(dir, "a.log");
    uint64_t damaged;
    int rc;
    fill_log(path, 5, NULL);
    assert_int_equal(read_all(path, &damaged, &rc), 10);
    assert_int_equal(rc, NOTES_OK);
    assert_int_equal(damaged, 0);
    /* Reopening for append continues after the last record. */
    fill_log(path, 0, NULL);
    struct notes__log *lg;
    struct seen s = {0};
    assert_int_equal(notes__log_open(path, doc, 1, &lg), NOTES_OK);
    assert_int_equal(notes__log_read(lg, count_cb, &s), NOTES_OK);
    const uint8_t *p = (const uint8_t *)"late";
    size_t l = 4;
    assert_int_equal(notes__log_append(lg, &p, &l, 1, 3), NOTES_OK);
    notes__log_close(lg);
    assert_int_equal(read_all(path, &damaged, &rc), 11);
    /* Another document's id in the header: nothing of it is read as this
     * document's; the whole file is damage (for a writer to set aside). */
    uint8_t other[16] = {8};
    s.n = 0;
    assert_int_equal(notes__log_open(path, other, 0, &lg), NOTES_OK);
    assert_true(lg->bad_header);
    assert_int_equal(notes__log_read(lg, count_cb, &s), NOTES_OK);
    assert_int_equal(s.n, 0);
    assert_non_null(strstr(lg->damage, "another note"));
    notes__log_close(lg);
    free(path);
    test_rmtree(dir);
}

/* Truncating at every byte offset of the last record keeps the rest. */
static void test_store_truncate_every_offset(void **state)
{
    (void)state;
    char *dir = test_tmpdir("store");
    char *path = test_path(dir, "a.log");
    uint64_t off[4], damaged;
    int rc;
    fill_log(path, 3, off);
    size_t n;
    unsigned char *whole = test_slurp(path, &n);
    assert_int_equal(n, off[3]);
    for (uint64_t cut = off[2]; cut < off[3]; cut++) {
        assert_int_equal(test_spit(path, whole, cut), 0);
        assert_int_equal(read_all(path, &damaged, &rc), 4);
        assert_int_equal(rc, NOTES_OK);
        assert_int_equal(damaged, cut - off[2]);
        /* Repair keeps the damaged bytes aside and cuts them off. */
        struct notes__log *lg;
        struct seen s = {0};
        assert_int_equal(notes__log_open(path, doc, 1, &lg), NOTES_OK);
        assert_int_equal(notes__log_read(lg, count_cb, &s), NOTES_OK);
        assert_int_equal(notes__log_repair(lg, 0, NULL), NOTES_OK);
        /* After repair an append works and everything reads back. */
        const uint8_t *p = (const uint8_t *)"after";
        size_t l = 5;
        assert_int_equal(notes__log_append(lg, &p, &l, 1, 3), NOTES_OK);
        notes__log_close(lg);
        assert_int_equal(read_all(path, &damaged, &rc), 5);
        assert_int_equal(damaged, 0);
        if (cut > off[2]) {
            char name[64];
            snprintf(name, sizeof(name), "a.log.torn-%llu",
                     (unsigned long long)off[2]);
            char *aside = test_path(dir, name);
            struct stat st;
            assert_int_equal(stat(aside, &st), 0);
            assert_int_equal((uint64_t)st.st_size, cut - off[2]);
            unlink(aside);
            free(aside);
        }
    }
    free(whole);
    free(path);
    test_rmtree(dir);
}

/* Flipping any bit of a record is detected; the records before it stay. */
static void test_store_flip_every_byte(void **state)
{
    (void)state;
    char *dir = test_tmpdir("store");
    char *path = test_path(dir, "a.log");
    uint64_t off[4], damaged;
    int rc;
    fill_log(path, 3, off);
    size_t n;
    unsigned char *whole = test_slurp(path, &n);
    for (size_t i = 0; i < n; i++) {
        whole[i] ^= 0x20;
        assert_int_equal(test_spit(path, whole, n), 0);
        size_t got = read_all(path, &damaged, &rc);
        if (i < NOTES__LOG_HEADER) {
            /* Header: the whole file is damage; nothing is read. */
            assert_int_equal(rc, NOTES_OK);
            assert_int_equal(got, 0);
            assert_int_equal(damaged, n);
        } else {
            int rec = i < off[1] ? 0 : i < off[2] ? 1 : 2;
            assert_int_equal(rc, NOTES_OK);
            assert_int_equal(got, (size_t)rec * 2);
            assert_true(damaged > 0);
            /* A complete record whose bytes changed is damage, not a torn
             * write, unless the flip made its length run past the end. */
            struct notes__log *lg;
            struct seen s = {0};
            assert_int_equal(notes__log_open(path, doc, 0, &lg), NOTES_OK);
            assert_int_equal(notes__log_read(lg, count_cb, &s), NOTES_OK);
            if (lg->torn)
                assert_true(i >= off[rec] + 8 && i < off[rec] + 12);
            notes__log_close(lg);
        }
        whole[i] ^= 0x20;
    }
    free(whole);
    free(path);
    test_rmtree(dir);
}

/* Write a record with a valid checksum around arbitrary payload bytes. */
static void write_raw_record(const char *path, const uint8_t *payload,
                             size_t n, uint32_t rawlen, uint8_t codec)
{
    uint8_t hdr[32] = {0};
    crypto_generichash_state st;
    size_t have;
    unsigned char *old = test_slurp(path, &have);
    notes__store_u32le(hdr, 0x4345524eu);
    hdr[4] = 1;
    hdr[5] = codec;
    notes__store_u32le(hdr + 8, (uint32_t)n);
    notes__store_u32le(hdr + 12, rawlen);
    crypto_generichash_init(&st, NULL, 0, 16);
    crypto_generichash_update(&st, hdr, 16);
    crypto_generichash_update(&st, payload, n);
    crypto_generichash_final(&st, hdr + 16, 16);
    unsigned char *all = malloc(have + 32 + n);
    memcpy(all, old, have);
    memcpy(all + have, hdr, 32);
    memcpy(all + have + 32, payload, n);
    assert_int_equal(test_spit(path, all, have + 32 + n), 0);
    free(all);
    free(old);
}

/* A decompression bomb: a small frame that expands past the limit. */
static void test_store_decompression_bomb(void **state)
{
    (void)state;
    char *dir = test_tmpdir("store");
    char *path = test_path(dir, "a.log");
    uint64_t damaged;
    int rc;
    fill_log(path, 1, NULL);
    size_t big = NOTES__REC_RAW_MAX + 1;
    uint8_t *zeros = calloc(1, big);
    size_t cap = ZSTD_compressBound(big);
    uint8_t *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, zeros, big, 3);
    assert_false(ZSTD_isError(zn));
    assert_true(zn < 1 << 20);
    /* Header honest about the size: refused as too big for a record. */
    write_raw_record(path, z, zn, 1000, 1);
    size_t got = read_all(path, &damaged, &rc);
    assert_int_equal(got, 2);
    assert_int_not_equal(rc, NOTES_OK);
    free(z);
    free(zeros);

    /* A frame whose content is larger than the record header says. */
    fill_log(path, 0, NULL);
    unlink(path);
    fill_log(path, 1, NULL);
    uint8_t small[4096] = {0};
    uint8_t zz[8192];
    size_t zsn = ZSTD_compress(zz, sizeof(zz), small, sizeof(small), 3);
    write_raw_record(path, zz, zsn, 100, 1);
    got = read_all(path, &damaged, &rc);
    assert_int_equal(got, 2);
    assert_int_equal(rc == NOTES_ETOOBIG || rc == NOTES_ECORRUPT, 1);

    /* Garbage with a valid checksum: not zstd. */
    unlink(path);
    fill_log(path, 1, NULL);
    write_raw_record(path, (const uint8_t *)"garbage!", 8, 8, 1);
    got = read_all(path, &damaged, &rc);
    assert_int_equal(rc, NOTES_ECORRUPT);

    /* Unknown codec. */
    unlink(path);
    fill_log(path, 1, NULL);
    write_raw_record(path, (const uint8_t *)"abc", 3, 3, 9);
    got = read_all(path, &damaged, &rc);
    assert_int_equal(rc, NOTES_EVERSION);
    free(path);
    test_rmtree(dir);
}

static void test_store_payload_malformed(void **state)
{
    (void)state;
    struct seen s = {0};
    /* Count says 3 but only one change follows. */
    const uint8_t p[] = {3, 2, 'h', 'i'};
    assert_int_equal(notes__payload_decode(p, sizeof(p), count_cb, &s),
                     NOTES_ECORRUPT);
    /* Length runs past the end. */
    const uint8_t q[] = {1, 100, 'h'};
    assert_int_equal(notes__payload_decode(q, sizeof(q), count_cb, &s),
                     NOTES_ECORRUPT);
    /* Trailing bytes. */
    const uint8_t r[] = {1, 1, 'h', 'x'};
    assert_int_equal(notes__payload_decode(r, sizeof(r), count_cb, &s),
                     NOTES_ECORRUPT);
}

static void test_store_not_a_log(void **state)
{
    (void)state;
    char *dir = test_tmpdir("store");
    char *path = test_path(dir, "a.log");
    struct notes__log *lg;
    assert_int_equal(test_spit(path, "hello, not a log at all, really not", 35), 0);
    assert_int_equal(notes__log_open(path, doc, 0, &lg), NOTES_OK);
    assert_true(lg->bad_header);
    assert_int_equal(lg->damaged, 35);
    /* Repair sets the whole file aside and starts the log again; a second
     * repair of the same damage never replaces the first one's evidence. */
    char *aside = NULL;
    assert_int_equal(notes__log_repair(lg, 1, &aside), NOTES_OK);
    assert_non_null(strstr(aside, "a.log.damaged-0"));
    assert_int_equal(lg->end, NOTES__LOG_HEADER);
    notes__log_close(lg);
    size_t n;
    unsigned char *kept = test_slurp(aside, &n);
    assert_int_equal(n, 35);
    free(kept);
    assert_int_equal(test_spit(path, "and another bad log of 33 bytes..", 33), 0);
    char *aside2 = NULL;
    assert_int_equal(notes__log_open(path, doc, 0, &lg), NOTES_OK);
    assert_int_equal(notes__log_repair(lg, 1, &aside2), NOTES_OK);
    notes__log_close(lg);
    assert_string_not_equal(aside, aside2);
    kept = test_slurp(aside, &n);
    assert_int_equal(n, 35);
    free(kept);
    kept = test_slurp(aside2, &n);
    assert_int_equal(n, 33);
    free(kept);
    notes__free(aside);
    notes__free(aside2);
    /* A version this notes does not read, with an intact header, is not
     * damage: refused as another version. */
    uint8_t h[NOTES__LOG_HEADER], sum[32];
    memcpy(h, "NOTESLOG", 8);
    notes__store_u32le(h + 8, 2);
    memcpy(h + 12, doc, 16);
    crypto_generichash(sum, 32, h, 28, NULL, 0);
    memcpy(h + 28, sum, 4);
    assert_int_equal(test_spit(path, h, sizeof(h)), 0);
    assert_int_equal(notes__log_open(path, doc, 0, &lg), NOTES_EVERSION);
    char *missing = test_path(dir, "missing.log");
    assert_int_equal(notes__log_open(missing, doc, 0, &lg), NOTES_ENOTFOUND);
    free(missing);
    free(path);
    test_rmtree(dir);
}

/* The little-endian loads and stores the state file, sync's versions
 * cache and certificates share (notes.h, NOTES_SIBLING_API). */
static void test_u64le(void **st)
{
    (void)st;
    uint8_t b[8];
    notes__store_u64le(b, 0x0102030405060708ull);
    const uint8_t want[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(b, want, 8);
    assert_true(notes__load_u64le(b) == 0x0102030405060708ull);
    notes__store_u64le(b, UINT64_MAX);
    assert_true(notes__load_u64le(b) == UINT64_MAX);
    notes__store_u64le(b, (uint64_t)1 << 63);
    assert_int_equal(b[7], 0x80);
    assert_true(notes__load_u64le(b) == (uint64_t)1 << 63);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_roundtrip),
        cmocka_unit_test(test_u64le),
        cmocka_unit_test(test_store_truncate_every_offset),
        cmocka_unit_test(test_store_flip_every_byte),
        cmocka_unit_test(test_store_decompression_bomb),
        cmocka_unit_test(test_store_payload_malformed),
        cmocka_unit_test(test_store_not_a_log),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
