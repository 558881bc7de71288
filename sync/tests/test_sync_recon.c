/*
 * test_sync_recon: range-based set reconciliation (sync/src/recon.c)
 * checked against a brute-force set difference: equal sets, k differences
 * on both sides, one side empty, n = 0, 1, around the list limit, large;
 * many random trials; and hostile input (truncated, oversized, forged
 * ranges, a peer that splits for ever), each refused with a clear
 * protocol error and bounded work.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void rand_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)next_rand();
}

static int cmp_item(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void sort_items(struct recon_item *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_item);
}

struct outcome {
    size_t bytes;  /* RECON payload bytes, both ways, + 2 per message */
    size_t turns;
};

/* Run a whole reconciliation between a (initiator) and b. */
static struct outcome exchange(struct recon *a, struct recon *b)
{
    struct outcome o = {0, 0};
    struct recon *from = a, *to = b;
    assert_int_equal(notes_sync__recon_start(a), NOTES_OK);
    while (from->out.len) {
        uint8_t *copy = malloc(from->out.len);
        size_t len = from->out.len, off = 0;
        memcpy(copy, from->out.data, len);
        o.turns++;
        assert_true(o.turns < 64);
        while (off < len) {
            uint32_t m = notes__load_u32le(copy + off);
            o.bytes += m + 2;
            int rc = notes_sync__recon_recv(to, copy + off + 4, m);
            if (rc)
                fail_msg("recv: %s", notes_sync_last_detail());
            off += 4 + m;
        }
        free(copy);
        assert_true(notes_sync__recon_turn_over(to));
        struct recon *t = from;
        from = to;
        to = t;
    }
    assert_true(a->done);
    assert_true(b->done);
    notes_sync__recon_finish(a);
    notes_sync__recon_finish(b);
    return o;
}

/* The brute-force difference: ids in one set only, or with two digests. */
static size_t brute(const struct recon_item *x, size_t nx,
                    const struct recon_item *y, size_t ny, uint8_t (*out)[16])
{
    size_t i = 0, j = 0, k = 0;
    while (i < nx || j < ny) {
        int c = i == nx ? 1 : j == ny ? -1 : memcmp(x[i].id, y[j].id, 16);
        if (c < 0)
            memcpy(out[k++], x[i++].id, 16);
        else if (c > 0)
            memcpy(out[k++], y[j++].id, 16);
        else {
            if (memcmp(x[i].digest, y[j].digest, 16))
                memcpy(out[k++], x[i].id, 16);
            i++;
            j++;
        }
    }
    return k;
}

/* Two sets from a common one of n items: `only_a` items only in A,
 * `only_b` only in B, `changed` with another digest in B. Reconciles
 * them and checks both sides found exactly the brute-force difference. */
static struct outcome trial(size_t n, size_t only_a, size_t only_b,
                            size_t changed)
{
    size_t na = n + only_a, nb = n + only_b;
    struct recon_item *a = malloc((na + 1) * sizeof(*a));
    struct recon_item *b = malloc((nb + 1) * sizeof(*b));
    uint8_t(*want)[16] = malloc((na + nb + 1) * 16);
    struct recon ra, rb;
    for (size_t i = 0; i < n; i++) {
        rand_bytes(a[i].id, 32);
        b[i] = a[i];
    }
    for (size_t i = 0; i < changed && i < n; i++)
        b[i].digest[0] ^= 1;
    for (size_t i = 0; i < only_a; i++)
        rand_bytes(a[n + i].id, 32);
    for (size_t i = 0; i < only_b; i++)
        rand_bytes(b[n + i].id, 32);
    sort_items(a, na);
    sort_items(b, nb);
    size_t nw = brute(a, na, b, nb, want);
    assert_int_equal(notes_sync__recon_init(&ra, a, na), NOTES_OK);
    assert_int_equal(notes_sync__recon_init(&rb, b, nb), NOTES_OK);
    struct outcome o = exchange(&ra, &rb);
    assert_int_equal(ra.ndiff, nw);
    assert_int_equal(rb.ndiff, nw);
    if (nw) {
        assert_memory_equal(ra.diff, want, nw * 16);
        assert_memory_equal(rb.diff, want, nw * 16);
    }
    notes_sync__recon_free(&ra);
    notes_sync__recon_free(&rb);
    free(a);
    free(b);
    free(want);
    return o;
}

static void test_equal_sets(void **st)
{
    (void)st;
    static const size_t ns[] = {0, 1, 2, 16, 17, 100, 1000, 10000, 100000};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        struct outcome o = trial(ns[i], 0, 0, 0);
        printf("equal, n = %6zu: %zu bytes, %zu turns\n", ns[i], o.bytes,
               o.turns);
        /* One round trip of a few bytes, whatever n: a fingerprint out
         * (or up to 16 items as a list), a skip back. */
        assert_true(o.turns <= 2);
        assert_true(o.bytes <= 16 * 32 + 64);
        if (ns[i] > RECON_LIST_MAX)
            assert_true(o.bytes <= 64);
    }
}

static void test_one_side_empty(void **st)
{
    (void)st;
    static const size_t ns[] = {1, 16, 17, 1000, 10000};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        struct outcome x = trial(0, ns[i], 0, 0);
        struct outcome y = trial(0, 0, ns[i], 0);
        printf("one side empty, n = %5zu: initiator has all %zu bytes, "
               "responder has all %zu bytes\n", ns[i], x.bytes, y.bytes);
        /* Every id crosses once, at 16 bytes, plus the splitting. */
        assert_true(y.bytes <= ns[i] * 16 + 4096);
        assert_true(x.bytes <= ns[i] * 40 + 4096);
    }
}

/* k differences in n = 10,000 cost O(k log n), not O(n). */
static void test_k_differences(void **st)
{
    (void)st;
    static const size_t ks[] = {1, 2, 10, 100, 1000};
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        size_t k = ks[i];
        struct outcome o = trial(10000, k / 3, k / 3, k - 2 * (k / 3));
        printf("n = 10000, k = %4zu differences: %6zu bytes, %zu turns\n", k,
               o.bytes, o.turns);
        /* log16(10000) < 4 levels, each at most 16 fingerprints (34
         * bytes) per difference, then a list and its answer. */
        assert_true(o.bytes <= 64 + k * (4 * 16 * 34 + 16 * 32 + 64));
        assert_true(o.turns <= 12);
    }
    /* The same k in ten times the notes costs about one more level. */
    struct outcome small = trial(1000, 5, 5, 0);
    struct outcome big = trial(100000, 5, 5, 0);
    printf("k = 10: n = 1000 %zu bytes, n = 100000 %zu bytes\n", small.bytes,
           big.bytes);
    assert_true(big.bytes < small.bytes * 3);
}

static void test_random_trials(void **st)
{
    (void)st;
    for (int t = 0; t < 400; t++) {
        size_t n = next_rand() % (t < 300 ? 64 : 5000);
        size_t a = next_rand() % 40, b = next_rand() % 40,
               c = next_rand() % 40;
        if (t % 7 == 0)
            a = b = c = 0;
        (void)trial(n, a, b, c);
    }
}

/* ---- hostile input ---- */

static struct recon_item *some_items(size_t n)
{
    struct recon_item *v = malloc((n + 1) * sizeof(*v));
    for (size_t i = 0; i < n; i++)
        rand_bytes(v[i].id, 32);
    sort_items(v, n);
    return v;
}

static void test_malformed(void **st)
{
    (void)st;
    static const struct {
        const char *what;
        uint8_t m[48];
        size_t n;
    } cases[] = {
        {"empty", {0}, 0},
        {"bad flags", {2, 0xff, 0}, 3},
        {"truncated bound", {0, 5, 1, 2}, 4},
        {"bound over 16 bytes", {0, 17}, 2},
        {"truncated range", {0, 0xff}, 2},
        {"unknown mode", {0, 0xff, 9}, 3},
        {"truncated fingerprint", {0, 0xff, 1, 1, 2, 3}, 6},
        {"stops before the end", {0, 1, 0x80, 0}, 4},
        {"bounds go back", {0, 1, 0x80, 0, 1, 0x40, 0, 0xff, 0}, 9},
        {"zero bound", {0, 0, 0, 0xff, 0}, 5},
        {"range after the end", {0, 0xff, 0, 0xff, 0}, 5},
        {"more after the end", {1, 0xff, 0}, 3},
        {"list over the limit", {0, 0xff, 2, 17}, 4},
        {"list truncated", {0, 0xff, 2, 2, 1, 2, 3}, 7},
        {"diff of zero ids", {0, 0xff, 3, 0}, 4},
        {"id out of its range", {0, 1, 0x10, 3, 1, 0x20, [21] = 0xff, [22] = 0},
         23},
        {"ids out of order", {0, 0xff, 3, 2, 0x20, [20] = 0x10}, 36},
    };
    struct recon_item *v = some_items(100);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct recon r;
        assert_int_equal(notes_sync__recon_init(&r, v, 100), NOTES_OK);
        int rc = notes_sync__recon_recv(&r, cases[i].m, cases[i].n);
        printf("%-22s -> %s: %s\n", cases[i].what, notes_sync_errname(rc),
               notes_sync_last_detail());
        if (rc != NOTES_SYNC_EPROTO)
            fail_msg("%s: %s", cases[i].what, notes_sync_errname(rc));
        assert_non_null(strstr(notes_sync_last_detail(), "reconciliation"));
        notes_sync__recon_free(&r);
    }
    free(v);
}

/* A peer that never stops asking (it answers every list with a
 * fingerprint that cannot match) is cut off after RECON_MAX_MSGS
 * messages, each answered with bounded work. */
static void test_endless_splitting(void **st)
{
    (void)st;
    struct recon_item *v = some_items(5000);
    struct recon r;
    uint8_t m[20] = {0, 0xff, 1};
    int rc = NOTES_OK;
    size_t i;
    assert_int_equal(notes_sync__recon_init(&r, v, 5000), NOTES_OK);
    for (i = 0; i < 10 * RECON_MAX_MSGS && rc == NOTES_OK; i++) {
        rand_bytes(m + 3, 16);
        rc = notes_sync__recon_recv(&r, m, sizeof(m) - 1);
        if (rc == NOTES_OK)
            assert_true(r.out.len <= RECON_BUCKETS * 40 + 64);
    }
    printf("endless splitting: %s after %zu messages\n",
           notes_sync_last_detail(), i);
    assert_int_equal(rc, NOTES_SYNC_EPROTO);
    assert_int_equal(i, RECON_MAX_MSGS + 1);
    notes_sync__recon_free(&r);
    /* A turn of many ranges: at most RECON_MAX_RANGES. */
    assert_int_equal(notes_sync__recon_init(&r, v, 5000), NOTES_OK);
    size_t nm = 1 + (RECON_MAX_RANGES + 8) * 5;
    uint8_t *big = calloc(nm, 1);
    big[0] = 1; /* more follows */
    for (size_t k = 0; k < RECON_MAX_RANGES + 8; k++) {
        /* increasing 3-byte bounds, skips */
        big[1 + 5 * k] = 3;
        big[2 + 5 * k] = (uint8_t)(1 + (k >> 16));
        big[3 + 5 * k] = (uint8_t)(k >> 8);
        big[4 + 5 * k] = (uint8_t)k;
        big[5 + 5 * k] = 0;
    }
    rc = notes_sync__recon_recv(&r, big, nm);
    printf("many ranges: %s\n", notes_sync_last_detail());
    assert_int_equal(rc, NOTES_SYNC_EPROTO);
    free(big);
    notes_sync__recon_free(&r);
    free(v);
}

/* notes_sync__lower_id, the search of reconciliation's ranges and of the
 * session's known notes: the first entry whose id is >= the one asked. */
static void test_lower_id(void **st)
{
    (void)st;
    struct recon_item v[3];
    uint8_t id[16];
    memset(v, 0, sizeof(v));
    memset(id, 0, sizeof(id));
    v[0].id[0] = 10;
    v[1].id[0] = 20;
    v[2].id[0] = 30;
    v[1].digest[0] = 0xff; /* only the id is compared */
    assert_int_equal(notes_sync__lower_id(v, 0, sizeof(v[0]), id), 0);
    const struct {
        uint8_t first;
        size_t at;
    } cases[] = {{5, 0}, {10, 0}, {11, 1}, {20, 1}, {29, 2}, {30, 2}, {31, 3}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        id[0] = cases[i].first;
        assert_int_equal(notes_sync__lower_id(v, 3, sizeof(v[0]), id),
                         cases[i].at);
    }
    id[0] = 20;
    id[15] = 1; /* just past v[1]'s id */
    assert_int_equal(notes_sync__lower_id(v, 3, sizeof(v[0]), id), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal_sets),
        cmocka_unit_test(test_one_side_empty),
        cmocka_unit_test(test_k_differences),
        cmocka_unit_test(test_random_trials),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_endless_splitting),
        cmocka_unit_test(test_lower_id),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
