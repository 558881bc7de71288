/*
 * test_sync_remote_pack.c: the sealed packs of git remotes (remote.c,
 * docs/remote.md): a round trip keeps device, number, names and bundles;
 * every flipped byte, a truncation, another space's key and an empty file
 * are refused; a pack that would expand a thousandfold is refused;
 * Padmé sizes; tags keyed by the secret; the remotes file
 * round trip and its damage caught.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notes_sync.h"
#include "remote_internal.h"

static void keys(uint8_t fill, struct remote_keys *k, uint8_t secret[32])
{
    memset(secret, fill, 32);
    remote_keys_derive(secret, k);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct remote_keys k;
    uint8_t secret[32], dev[32], names[3][REMOTE_PACK_NAME_LEN];
    uint8_t b1[100], b2[3000];
    struct remote_entry e[2];
    uint8_t *sealed;
    size_t n;
    struct remote_pack p;
    keys(7, &k, secret);
    memset(dev, 9, sizeof(dev));
    for (int i = 0; i < 3; i++)
        memset(names[i], 0x10 + i, REMOTE_PACK_NAME_LEN);
    memset(b1, 'a', sizeof(b1));
    for (size_t i = 0; i < sizeof(b2); i++)
        b2[i] = (uint8_t)(i * 31);
    memset(e, 0, sizeof(e));
    memset(e[0].id, 1, 16);
    e[0].bundle = b1;
    e[0].n = sizeof(b1);
    memset(e[1].id, 2, 16);
    e[1].bundle = b2;
    e[1].n = sizeof(b2);
    assert_int_equal(remote_pack_seal(&k, dev, 42,
                                      (const uint8_t(*)[REMOTE_PACK_NAME_LEN])names,
                                      3, e, 2, &sealed, &n),
                     NOTES_OK);
    /* Padded: the size is a Padmé size plus nonce and tag. */
    assert_int_equal(n - 24 - 16, remote_padme(n - 24 - 16));
    assert_int_equal(remote_pack_open(&k, sealed, n, &p), NOTES_OK);
    assert_memory_equal(p.device, dev, 32);
    assert_int_equal(p.seq, 42);
    assert_int_equal(p.nnames, 3);
    assert_memory_equal(p.names, names, sizeof(names));
    assert_int_equal(p.nentries, 2);
    assert_memory_equal(p.entries[0].id, e[0].id, 16);
    assert_int_equal(p.entries[1].n, sizeof(b2));
    assert_memory_equal(p.entries[1].bundle, b2, sizeof(b2));
    remote_pack_clear(&p);
    /* Any flipped byte: refused, nothing handed out. */
    for (size_t i = 0; i < n; i += 7) {
        sealed[i] ^= 0x20;
        assert_int_equal(remote_pack_open(&k, sealed, n, &p), NOTES_ECORRUPT);
        assert_int_equal(p.nentries, 0);
        sealed[i] ^= 0x20;
    }
    /* Truncated, empty, another space's key. */
    assert_int_equal(remote_pack_open(&k, sealed, n - 1, &p), NOTES_ECORRUPT);
    assert_int_equal(remote_pack_open(&k, sealed, 0, &p), NOTES_ECORRUPT);
    struct remote_keys other;
    uint8_t s2[32];
    keys(8, &other, s2);
    assert_int_equal(remote_pack_open(&other, sealed, n, &p), NOTES_ECORRUPT);
    assert_non_null(strstr(notes_sync_last_detail(), "does not authenticate"));
    free(sealed);
}

/* A pack whose few KiB of zstd expand to 32 MiB (a member with the secret
 * can seal anything): refused before the memory is spent (a pack may
 * expand at most 1024 times). */
static void test_decompression_bomb(void **state)
{
    (void)state;
    struct remote_keys k;
    uint8_t secret[32], dev[32], name[1][REMOTE_PACK_NAME_LEN];
    struct remote_entry e;
    uint8_t *sealed;
    size_t n, big = 32u << 20;
    struct remote_pack p;
    keys(7, &k, secret);
    memset(dev, 9, sizeof(dev));
    memset(name, 1, sizeof(name));
    memset(&e, 0, sizeof(e));
    memset(e.id, 1, 16);
    e.bundle = calloc(big, 1);
    assert_non_null(e.bundle);
    e.n = big;
    assert_int_equal(remote_pack_seal(&k, dev, 1,
                                      (const uint8_t(*)[REMOTE_PACK_NAME_LEN])name,
                                      1, &e, 1, &sealed, &n),
                     NOTES_OK);
    free(e.bundle);
    assert_true(n < big / 1024);
    assert_int_equal(remote_pack_open(&k, sealed, n, &p), NOTES_ECORRUPT);
    assert_non_null(strstr(notes_sync_last_detail(), "does not decompress"));
    assert_int_equal(p.nentries, 0);
    free(sealed);
}

static void test_padme_and_tags(void **state)
{
    (void)state;
    size_t prev = 0;
    for (size_t n = 1; n < (1u << 22); n = n * 5 / 4 + 1) {
        size_t p = remote_padme(n);
        assert_true(p >= n);
        assert_true(p >= 512);
        assert_true(p >= prev);
        if (n > 4096)
            assert_true(p - n <= n / 8); /* at most 12.5% */
        prev = p;
    }
    uint8_t secret[32], pk1[32], pk2[32];
    char t1[33], t2[33], t3[33];
    struct remote_keys k1, k2;
    memset(pk1, 1, 32);
    memset(pk2, 2, 32);
    keys(3, &k1, secret);
    remote_device_tag(secret, pk1, t1);
    remote_device_tag(secret, pk2, t2);
    assert_int_equal(strlen(t1), 32);
    assert_string_not_equal(t1, t2);
    keys(4, &k2, secret);
    remote_device_tag(secret, pk1, t3);
    assert_string_not_equal(t1, t3); /* another space: another tag */
    assert_string_not_equal(k1.space_hex, k2.space_hex);
    assert_memory_not_equal(k1.key, k2.key, 32);
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st, (void)f, (void)w;
    return remove(p);
}

static void test_remotes_file(void **state)
{
    (void)state;
    char home[] = "/tmp/notes-remote-XXXXXX", path[256];
    notes_sync_remote *v;
    size_t n;
    assert_non_null(mkdtemp(home));
    assert_int_equal(notes_sync_space_create(home, "team", NULL), NOTES_OK);
    assert_int_equal(notes_sync_remote_add(home, "origin",
                                           "git@example.org:t/n.git", "team"),
                     NOTES_OK);
    assert_int_equal(notes_sync_remote_add(home, "origin", "x", "team"),
                     NOTES_EEXIST);
    assert_int_equal(notes_sync_remote_add(home, "Bad", "x", "team"),
                     NOTES_EINVAL);
    assert_int_equal(notes_sync_remote_add(home, "b", "a b", "team"),
                     NOTES_EINVAL);
    assert_int_equal(notes_sync_remote_add(home, "b", "--upload-pack=x",
                                           "team"), NOTES_EINVAL);
    /* Names that would be paths or lines; URLs git would take as options. */
    const char *badnames[] = {"a/b", "..", ".", "-x", "a\nb", "a b", "_x",
                              "abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < sizeof(badnames) / sizeof(*badnames); i++)
        assert_int_equal(notes_sync_remote_add(home, badnames[i], "x", "team"),
                         NOTES_EINVAL);
    const char *badurls[] = {"-oProxyCommand=x", "a\nb", "x\ty", "", "\x7f"};
    for (size_t i = 0; i < sizeof(badurls) / sizeof(*badurls); i++)
        assert_int_equal(notes_sync_remote_add(home, "b", badurls[i], "team"),
                         NOTES_EINVAL);
    assert_int_equal(notes_sync_remote_add(home, "b", "x", "nospace"),
                     NOTES_ENOTFOUND);
    assert_int_equal(notes_sync_remote_add(home, "backup",
                                           "https://h.example/n.git", "team"),
                     NOTES_OK);
    assert_int_equal(notes_sync_remote_list(home, &v, &n), NOTES_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "origin");
    assert_string_equal(v[0].url, "git@example.org:t/n.git");
    assert_string_equal(v[1].space, "team");
    notes_sync_free(v);
    /* One changed byte: the check line catches it. */
    snprintf(path, sizeof(path), "%s/remotes", home);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fseek(f, 20, SEEK_SET);
    fputc('X', f);
    fclose(f);
    assert_int_equal(notes_sync_remote_list(home, &v, &n), NOTES_ECORRUPT);
    nftw(home, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decompression_bomb),
        cmocka_unit_test(test_padme_and_tags),
        cmocka_unit_test(test_remotes_file),
    };
    if (notes__crypto_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
