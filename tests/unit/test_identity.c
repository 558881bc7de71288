/*
 * test_identity.c: device identities, key files, readable keys and
 * fingerprints. Key files go to a mkdtemp folder removed at the end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "notes.h"
#include "internal.h"
#include "notes.h"

extern long notes__fail_alloc_at; /* util.c: fail the Nth allocation */

static char tmpdir[64];
static unsigned path_counter;

/* A fresh path inside the temp folder (nothing there yet). */
static const char *fresh_path(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/key%u", tmpdir, path_counter++);
    return buf;
}

static void write_file(const char *path, const void *p, size_t n,
                       mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    assert_true(feof(f));
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* Number of entries in the temp folder (catches stray temp files). */
static int count_files(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static int group_setup(void **state)
{
    (void)state;
    if (notes_init() != NOTES_OK)
        return -1;
    strcpy(tmpdir, "/tmp/notes-identity-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char p[512];
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
    return rmdir(tmpdir);
}

/* Assert `b` carries the same key pair as `a`: same public key, and its
 * secret key makes signatures that a's public key accepts. */
static void assert_same_keys(const notes_identity *a, const notes_identity *b)
{
    static const uint8_t msg[] = "same keys?";
    uint8_t sig[64];
    assert_memory_equal(notes_identity_public_key(a),
                        notes_identity_public_key(b), 32);
    assert_int_equal(notes_identity_sign(b, msg, sizeof(msg), sig), NOTES_OK);
    assert_int_equal(notes_signature_verify(sig, msg, sizeof(msg),
                                            notes_identity_public_key(a)),
                     NOTES_OK);
}

/* ---- generation ---- */

static void test_identity_generate_names(void **state)
{
    (void)state;
    notes_identity *id = (notes_identity *)(uintptr_t)1;
    char name64[65], name65[66];
    memset(name64, 'a', 64);
    name64[64] = '\0';
    memset(name65, 'a', 65);
    name65[65] = '\0';

    static const char *bad[] = {
        "", "a\nb", "tab\there", "cr\r", "del\x7f", "nel\xc2\x85",
        "\xff", "\xc0\xaf", "\xed\xa0\x80", "trunc\xe2\x82",
    };
    for (size_t i = 0; i < NOTES__ARRAY_LEN(bad); i++) {
        assert_int_equal(notes_identity_generate(bad[i], &id), NOTES_EINVAL);
        assert_null(id);
        assert_true(strlen(notes_last_detail()) > 0);
    }
    assert_int_equal(notes_identity_generate(name65, &id), NOTES_EINVAL);
    assert_int_equal(notes_identity_generate(NULL, &id), NOTES_EINVAL);
    assert_int_equal(notes_identity_generate("x", NULL), NOTES_EINVAL);

    static const char *good[] = { "a", "Ana's laptop", "caf\xc3\xa9 \xe2\x9c\x93",
                                  "nbsp\xc2\xa0ok", "\xf0\x9f\x93\x9d notes" };
    for (size_t i = 0; i < NOTES__ARRAY_LEN(good); i++) {
        assert_int_equal(notes_identity_generate(good[i], &id), NOTES_OK);
        assert_string_equal(notes_identity_name(id), good[i]);
        notes_identity_free(id);
    }
    assert_int_equal(notes_identity_generate(name64, &id), NOTES_OK);
    assert_string_equal(notes_identity_name(id), name64);
    notes_identity_free(id);

    /* two identities never share a key */
    notes_identity *a, *b;
    assert_int_equal(notes_identity_generate("a", &a), NOTES_OK);
    assert_int_equal(notes_identity_generate("b", &b), NOTES_OK);
    assert_memory_not_equal(notes_identity_public_key(a),
                            notes_identity_public_key(b), 32);
    notes_identity_free(a);
    notes_identity_free(b);
    notes_identity_free(NULL);
    assert_null(notes_identity_name(NULL));
    assert_null(notes_identity_public_key(NULL));
}

/* ---- save / load ---- */

static void test_identity_roundtrip_plain(void **state)
{
    (void)state;
    char path[128];
    notes_identity *id, *back = NULL;
    struct stat st;
    int enc = -1;

    assert_int_equal(notes_identity_generate("caf\xc3\xa9 laptop", &id),
                     NOTES_OK);
    fresh_path(path, sizeof(path));
    int before = count_files();
    assert_int_equal(notes_identity_save(id, path, NULL), NOTES_OK);
    assert_int_equal(count_files(), before + 1); /* no temp file left */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(notes_identity_file_encrypted(path, &enc), NOTES_OK);
    assert_int_equal(enc, 0);
    assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_OK);
    assert_string_equal(notes_identity_name(back), notes_identity_name(id));
    assert_same_keys(id, back);
    notes_identity_free(back);

    /* a passphrase given for an unprotected file is ignored */
    assert_int_equal(notes_identity_load(path, "unused", &back), NOTES_OK);
    assert_same_keys(id, back);
    notes_identity_free(back);

    /* "" also means unprotected */
    fresh_path(path, sizeof(path));
    assert_int_equal(notes_identity_save(id, path, ""), NOTES_OK);
    assert_int_equal(notes_identity_file_encrypted(path, &enc), NOTES_OK);
    assert_int_equal(enc, 0);

    /* the text is what docs/identity.md says */
    char text[1024], pub[NOTES_KEY_STRLEN], want[256];
    read_file(path, text, sizeof(text));
    notes_key_encode(notes_identity_public_key(id), pub);
    snprintf(want, sizeof(want),
             "notes-identity 1\nname caf\xc3\xa9 laptop\npublic %s\n"
             "secret plain ",
             pub);
    assert_int_equal(strncmp(text, want, strlen(want)), 0);
    assert_int_equal(strlen(text), strlen(want) + 44 + 1);
    notes_identity_free(id);
}

static void test_identity_roundtrip_passphrase(void **state)
{
    (void)state;
    char path[128];
    notes_identity *id, *back = (notes_identity *)(uintptr_t)1;
    struct stat st;
    int enc = -1;

    assert_int_equal(notes_identity_generate("work", &id), NOTES_OK);
    fresh_path(path, sizeof(path));
    assert_int_equal(notes_identity_save(id, path, "correct horse"), NOTES_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(notes_identity_file_encrypted(path, &enc), NOTES_OK);
    assert_int_equal(enc, 1);

    assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_ENEEDPASS);
    assert_null(back);
    assert_int_equal(notes_identity_load(path, "", &back), NOTES_ENEEDPASS);
    assert_int_equal(notes_identity_load(path, "wrong horse", &back),
                     NOTES_EPASSPHRASE);
    assert_null(back);
    assert_non_null(strstr(notes_last_detail(), path));
    assert_int_equal(notes_identity_load(path, "correct horse", &back),
                     NOTES_OK);
    assert_string_equal(notes_identity_name(back), "work");
    assert_same_keys(id, back);
    notes_identity_free(back);

    /* the sealed form is what docs/identity.md says */
    char text[1024];
    read_file(path, text, sizeof(text));
    assert_non_null(strstr(text, "\nsecret argon2id13 2 67108864 "));
    assert_null(strstr(text, "plain"));
    notes_identity_free(id);
}

/*
 * A key file written by hand from docs/identity.md, holding the RFC 8032
 * test 1 seed: it loads, and signs the empty message as the RFC says.
 */
static void test_identity_golden_rfc8032(void **state)
{
    (void)state;
    static const char file[] =
        "notes-identity 1\n"
        "name rfc8032 test 1\n"
        "public nk25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkena\n"
        "secret plain nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=\n";
    static const char sig_hex[] =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
        "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    uint8_t want[64], sig[64], pk[32];
    char path[128];
    notes_identity *id;

    fresh_path(path, sizeof(path));
    write_file(path, file, strlen(file), 0600);
    assert_int_equal(notes_identity_load(path, NULL, &id), NOTES_OK);
    assert_string_equal(notes_identity_name(id), "rfc8032 test 1");
    assert_int_equal(notes__unhex(pk, 32, "d75a980182b10ab7d54bfed3c964073a"
                                          "0ee172f3daa62325af021a68f707511a"),
                     NOTES_OK);
    assert_memory_equal(notes_identity_public_key(id), pk, 32);
    assert_int_equal(notes_identity_sign(id, NULL, 0, sig), NOTES_OK);
    assert_int_equal(notes__unhex(want, 64, sig_hex), NOTES_OK);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(notes_signature_verify(sig, NULL, 0, pk), NOTES_OK);

    /* and save writes back the same bytes */
    char again[128], text[1024];
    fresh_path(again, sizeof(again));
    assert_int_equal(notes_identity_save(id, again, NULL), NOTES_OK);
    read_file(again, text, sizeof(text));
    assert_string_equal(text, file);
    notes_identity_free(id);
}

static void test_identity_save_refuses_overwrite(void **state)
{
    (void)state;
    char path[128], text[1024], text2[1024];
    notes_identity *a, *b;

    assert_int_equal(notes_identity_generate("a", &a), NOTES_OK);
    assert_int_equal(notes_identity_generate("b", &b), NOTES_OK);
    fresh_path(path, sizeof(path));
    assert_int_equal(notes_identity_save(a, path, NULL), NOTES_OK);
    read_file(path, text, sizeof(text));
    int before = count_files();
    assert_int_equal(notes_identity_save(b, path, NULL), NOTES_EEXIST);
    assert_int_equal(notes_identity_save(a, path, "pw"), NOTES_EEXIST);
    assert_non_null(strstr(notes_last_detail(), "already exists"));
    read_file(path, text2, sizeof(text2));
    assert_string_equal(text, text2);
    assert_int_equal(count_files(), before);

    /* any file, even an empty one, and a dangling symlink count */
    fresh_path(path, sizeof(path));
    write_file(path, "", 0, 0600);
    assert_int_equal(notes_identity_save(a, path, NULL), NOTES_EEXIST);
    fresh_path(path, sizeof(path));
    assert_int_equal(symlink("/nonexistent/notes-key", path), 0);
    assert_int_equal(notes_identity_save(a, path, NULL), NOTES_EEXIST);

    /* a missing folder is an I/O error and leaves nothing behind */
    snprintf(path, sizeof(path), "%s/no/such/dir/key", tmpdir);
    before = count_files();
    assert_int_equal(notes_identity_save(a, path, NULL), NOTES_EIO);
    assert_int_equal(count_files(), before);
    assert_int_equal(notes_identity_save(NULL, path, NULL), NOTES_EINVAL);
    assert_int_equal(notes_identity_save(a, NULL, NULL), NOTES_EINVAL);
    assert_int_equal(notes_identity_save(a, "", NULL), NOTES_EINVAL);
    notes_identity_free(a);
    notes_identity_free(b);
}

static void test_identity_load_missing(void **state)
{
    (void)state;
    char path[128];
    notes_identity *id = (notes_identity *)(uintptr_t)1;
    int enc = 7;

    fresh_path(path, sizeof(path));
    assert_int_equal(notes_identity_load(path, NULL, &id), NOTES_ENOTFOUND);
    assert_null(id);
    assert_int_equal(notes_identity_file_encrypted(path, &enc),
                     NOTES_ENOTFOUND);
    assert_int_equal(enc, 0);
    assert_int_equal(notes_identity_load(NULL, NULL, &id), NOTES_EINVAL);
    assert_int_equal(notes_identity_load(path, NULL, NULL), NOTES_EINVAL);
    assert_int_equal(notes_identity_file_encrypted(NULL, &enc), NOTES_EINVAL);
    assert_int_equal(notes_identity_file_encrypted(path, NULL), NOTES_EINVAL);

    /* a folder or a FIFO is not a key file (and the FIFO must not hang) */
    assert_int_equal(notes_identity_load(tmpdir, NULL, &id), NOTES_EIO);
    assert_null(id);
    fresh_path(path, sizeof(path));
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(notes_identity_load(path, NULL, &id), NOTES_EIO);
    assert_non_null(strstr(notes_last_detail(), "not a regular file"));
}

static void test_identity_load_mode_refused(void **state)
{
    (void)state;
    static const mode_t open_modes[] = { 0644, 0640, 0604, 0660, 0606, 0610,
                                         0601, 0666, 0777 };
    char path[128], want[512];
    notes_identity *id, *back = (notes_identity *)(uintptr_t)1;
    int enc;

    assert_int_equal(notes_identity_generate("m", &id), NOTES_OK);
    fresh_path(path, sizeof(path));
    assert_int_equal(notes_identity_save(id, path, NULL), NOTES_OK);
    for (size_t i = 0; i < NOTES__ARRAY_LEN(open_modes); i++) {
        assert_int_equal(chmod(path, open_modes[i]), 0);
        assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_EPERM);
        assert_null(back);
        snprintf(want, sizeof(want),
                 "key file '%s' has mode 0%03o; run: chmod 600 '%s'", path,
                 (unsigned)open_modes[i], path);
        assert_string_equal(notes_last_detail(), want);
        assert_int_equal(notes_identity_file_encrypted(path, &enc),
                         NOTES_EPERM);
    }
    static const mode_t ok_modes[] = { 0600, 0400, 0700 };
    for (size_t i = 0; i < NOTES__ARRAY_LEN(ok_modes); i++) {
        assert_int_equal(chmod(path, ok_modes[i]), 0);
        assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_OK);
        assert_same_keys(id, back);
        notes_identity_free(back);
    }
    notes_identity_free(id);
}

/* ---- damaged key files ---- */

/* Save a fresh plain key file and read its text. */
static notes_identity *saved_plain(char *path, size_t pathcap, char *text,
                                   size_t cap, size_t *n)
{
    notes_identity *id;
    assert_int_equal(notes_identity_generate("flip me", &id), NOTES_OK);
    fresh_path(path, pathcap);
    assert_int_equal(notes_identity_save(id, path, NULL), NOTES_OK);
    *n = read_file(path, text, cap);
    return id;
}

/*
 * Every single-byte change (each bit alone, and all eight) of a saved plain
 * file: either rejected as malformed, or it touched only the name and the
 * keys are the same. Never a key pair whose halves disagree.
 */
static void test_identity_load_byte_flips(void **state)
{
    (void)state;
    static const uint8_t masks[] = { 1, 2, 4, 8, 16, 32, 64, 128, 0xff };
    char path[128], text[1024], bad[1024];
    size_t n;
    notes_identity *id = saved_plain(path, sizeof(path), text, sizeof(text),
                                     &n);

    /* the name's bytes are [name_lo, name_hi) */
    size_t name_lo = (size_t)(strstr(text, "\nname ") - text) + 6;
    size_t name_hi = (size_t)(strstr(text, "\npublic ") - text);
    unsigned accepted = 0;

    for (size_t off = 0; off < n; off++) {
        for (size_t m = 0; m < NOTES__ARRAY_LEN(masks); m++) {
            notes_identity *back = NULL;
            memcpy(bad, text, n);
            bad[off] = (char)(bad[off] ^ masks[m]);
            write_file(path, bad, n, 0600);
            int rc = notes_identity_load(path, NULL, &back);
            if (rc == NOTES_OK) {
                if (!(off >= name_lo && off < name_hi))
                    fail_msg("offset %zu mask %#x accepted:\n%.*s", off,
                             masks[m], (int)n, bad);
                assert_same_keys(id, back);
                assert_true(strlen(notes_identity_name(back)) == 7);
                accepted++;
                notes_identity_free(back);
                continue;
            }
            assert_null(back);
            if (rc != NOTES_ECORRUPT && rc != NOTES_EVERSION)
                fail_msg("offset %zu mask %#x: %s (%s)", off, masks[m],
                         notes_errname(rc), notes_last_detail());
            assert_non_null(strstr(notes_last_detail(), " line "));
        }
    }
    assert_true(accepted > 0); /* some name changes are still valid names */
    notes_identity_free(id);
}

static void test_identity_load_truncations(void **state)
{
    (void)state;
    char path[128], text[1024];
    size_t n;
    notes_identity *id = saved_plain(path, sizeof(path), text, sizeof(text),
                                     &n);

    for (size_t len = 0; len < n; len++) {
        notes_identity *back = NULL;
        write_file(path, text, len, 0600);
        int rc = notes_identity_load(path, NULL, &back);
        if (rc != NOTES_ECORRUPT)
            fail_msg("length %zu: %s (%s)", len, notes_errname(rc),
                     notes_last_detail());
        assert_null(back);
        int enc;
        assert_int_equal(notes_identity_file_encrypted(path, &enc),
                         NOTES_ECORRUPT);
    }
    notes_identity_free(id);
}

/* Replace line `line` (1-based) of `text` by `repl` into out. */
static void replace_line(const char *text, unsigned line, const char *repl,
                         char *out, size_t cap)
{
    const char *p = text;
    for (unsigned i = 1; i < line; i++)
        p = strchr(p, '\n') + 1;
    const char *e = strchr(p, '\n');
    snprintf(out, cap, "%.*s%s%s", (int)(p - text), text, repl, e);
}

static void expect_load(const char *path, const char *content, int want_rc,
                        const char *detail_part)
{
    notes_identity *back = (notes_identity *)(uintptr_t)1;
    write_file(path, content, strlen(content), 0600);
    int rc = notes_identity_load(path, "pw", &back);
    if (rc != want_rc)
        fail_msg("want %s, got %s (%s)", notes_errname(want_rc),
                 notes_errname(rc), notes_last_detail());
    assert_null(back);
    if (detail_part && !strstr(notes_last_detail(), detail_part))
        fail_msg("detail \"%s\" lacks \"%s\"", notes_last_detail(),
                 detail_part);
}

static void test_identity_load_malformed(void **state)
{
    (void)state;
    char path[128], text[1024], bad[2048], other_pub[NOTES_KEY_STRLEN];
    char line[256];
    size_t n;
    notes_identity *id = saved_plain(path, sizeof(path), text, sizeof(text),
                                     &n);
    notes_identity *other;

    replace_line(text, 1, "notes-identity 2", bad, sizeof(bad));
    expect_load(path, bad, NOTES_EVERSION, "version 2");
    replace_line(text, 1, "notes-identity 01", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 1");
    replace_line(text, 1, "notes-key 1", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 1");
    replace_line(text, 2, "name ", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 2");
    replace_line(text, 2, "nam x", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 2");

    /* a valid public key of someone else */
    assert_int_equal(notes_identity_generate("other", &other), NOTES_OK);
    notes_key_encode(notes_identity_public_key(other), other_pub);
    snprintf(line, sizeof(line), "public %s", other_pub);
    replace_line(text, 3, line, bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "does not match");
    int enc = 7;
    assert_int_equal(notes_identity_file_encrypted(path, &enc),
                     NOTES_ECORRUPT);
    assert_int_equal(enc, 0);
    notes_identity_free(other);
    replace_line(text, 3, "public nk", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 3");

    replace_line(text, 4, "secret plain AAAA", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 4");
    replace_line(text, 4, "secret rot13 AAAA", bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "line 4");
    /* right length, wrong seed */
    replace_line(text, 4,
                 "secret plain AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                 bad, sizeof(bad));
    expect_load(path, bad, NOTES_ECORRUPT, "does not match");

    /* CRLF line ends, extra lines, trailing junk */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n')
            bad[k++] = '\r';
        bad[k++] = text[i];
    }
    bad[k] = '\0';
    expect_load(path, bad, NOTES_ECORRUPT, "line 1");
    snprintf(bad, sizeof(bad), "%sextra\n", text);
    expect_load(path, bad, NOTES_ECORRUPT, "line 5");
    snprintf(bad, sizeof(bad), "%sx", text);
    expect_load(path, bad, NOTES_ECORRUPT, "line 5");
    snprintf(bad, sizeof(bad), "%.*s", (int)n - 1, text);
    expect_load(path, bad, NOTES_ECORRUPT, "truncated");
    snprintf(bad, sizeof(bad), "\n%s", text);
    expect_load(path, bad, NOTES_ECORRUPT, "line 1");

    /* a NUL byte */
    memcpy(bad, text, n);
    bad[3] = '\0';
    write_file(path, bad, n, 0600);
    notes_identity *back;
    assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_ECORRUPT);

    /* over 64 KiB */
    char *big = malloc(64 * 1024 + 1);
    assert_non_null(big);
    memset(big, '\n', 64 * 1024 + 1);
    memcpy(big, text, n);
    write_file(path, big, 64 * 1024, 0600);
    assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_ECORRUPT);
    write_file(path, big, 64 * 1024 + 1, 0600);
    assert_int_equal(notes_identity_load(path, NULL, &back), NOTES_ETOOBIG);
    free(big);
    notes_identity_free(id);
}

static void test_identity_encrypted_damage(void **state)
{
    (void)state;
    char path[128], text[1024], bad[1024], *f[6];
    notes_identity *id, *back = NULL;

    assert_int_equal(notes_identity_generate("sealed", &id), NOTES_OK);
    fresh_path(path, sizeof(path));
    assert_int_equal(notes_identity_save(id, path, "pw"), NOTES_OK);
    read_file(path, text, sizeof(text));

    /* fields of line 4: secret argon2id13 ops mem salt nonce box */
    char *l4 = strstr(text, "\nsecret ") + 1;
    char fields[512];
    strcpy(fields, l4);
    fields[strlen(fields) - 1] = '\0';
    f[0] = strtok(fields, " ");
    for (int i = 1; i < 6; i++)
        f[i] = strtok(NULL, " ");
    assert_string_equal(f[0], "secret");
    assert_string_equal(f[1], "argon2id13");
    /* f[2] ops, f[3] mem, f[4] salt, f[5] nonce, f6 box */
    char *f6 = strtok(NULL, " ");
    assert_non_null(f6);
    assert_null(strtok(NULL, " "));

    char line[512];
#define L4(...)                                                   \
    do {                                                          \
        snprintf(line, sizeof(line), __VA_ARGS__);                \
        replace_line(text, 4, line, bad, sizeof(bad));            \
    } while (0)
    L4("secret argon2id13 0 %s %s %s %s", f[3], f[4], f[5], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "opslimit");
    L4("secret argon2id13 99 %s %s %s %s", f[3], f[4], f[5], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "opslimit");
    L4("secret argon2id13 %s 1099511627776 %s %s %s", f[2], f[4], f[5], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "memlimit");
    L4("secret argon2id13 %s 67108865 %s %s %s", f[2], f[4], f[5], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "memlimit");
    L4("secret argon2id13 %s %s %s %s", f[2], f[3], f[4], f[5]);
    expect_load(path, bad, NOTES_ECORRUPT, "line 4");
    L4("secret argon2id13 %s %s  %s %s %s", f[2], f[3], f[4], f[5], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "line 4");
    L4("secret argon2id13 %s %s %s %s %sAAAA", f[2], f[3], f[4], f[5], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "sealed secret");
    L4("secret argon2id13 %s %s %s %s %s", f[2], f[3], f[5], f[4], f6);
    expect_load(path, bad, NOTES_ECORRUPT, "salt");

    /* a damaged sealed secret cannot be told from a wrong passphrase */
    f6[5] = f6[5] == 'A' ? 'B' : 'A';
    L4("secret argon2id13 %s %s %s %s %s", f[2], f[3], f[4], f[5], f6);
    write_file(path, bad, strlen(bad), 0600);
    assert_int_equal(notes_identity_load(path, "pw", &back),
                     NOTES_EPASSPHRASE);
    assert_null(back);
#undef L4
    notes_identity_free(id);
}

/* ---- signatures ---- */

static void test_identity_sign_verify(void **state)
{
    (void)state;
    uint8_t msg[100], sig[64];
    notes_identity *a, *b;
    const uint8_t *pk;

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    assert_int_equal(notes_identity_generate("a", &a), NOTES_OK);
    assert_int_equal(notes_identity_generate("b", &b), NOTES_OK);
    pk = notes_identity_public_key(a);
    assert_int_equal(notes_identity_sign(a, msg, sizeof(msg), sig), NOTES_OK);
    assert_int_equal(notes_signature_verify(sig, msg, sizeof(msg), pk),
                     NOTES_OK);

    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] ^= 0x01;
        assert_int_equal(notes_signature_verify(sig, msg, sizeof(msg), pk),
                         NOTES_EBADSIG);
        msg[i] ^= 0x01;
    }
    for (size_t i = 0; i < 64; i++) {
        for (int bit = 0; bit < 8; bit++) {
            sig[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(notes_signature_verify(sig, msg, sizeof(msg), pk),
                             NOTES_EBADSIG);
            sig[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(notes_signature_verify(sig, msg, sizeof(msg) - 1, pk),
                     NOTES_EBADSIG);
    assert_int_equal(notes_signature_verify(sig, msg, sizeof(msg),
                                            notes_identity_public_key(b)),
                     NOTES_EBADSIG);

    /* empty messages */
    assert_int_equal(notes_identity_sign(a, NULL, 0, sig), NOTES_OK);
    assert_int_equal(notes_signature_verify(sig, NULL, 0, pk), NOTES_OK);
    assert_int_equal(notes_signature_verify(sig, msg, 0, pk), NOTES_OK);

    /* arguments */
    assert_int_equal(notes_identity_sign(NULL, msg, 1, sig), NOTES_EINVAL);
    assert_int_equal(notes_identity_sign(a, NULL, 1, sig), NOTES_EINVAL);
    assert_int_equal(notes_identity_sign(a, msg, 1, NULL), NOTES_EINVAL);
    assert_int_equal(notes_signature_verify(NULL, msg, 1, pk), NOTES_EINVAL);
    assert_int_equal(notes_signature_verify(sig, NULL, 1, pk), NOTES_EINVAL);
    assert_int_equal(notes_signature_verify(sig, msg, 1, NULL), NOTES_EINVAL);
    notes_identity_free(a);
    notes_identity_free(b);
}

/* ---- readable keys ---- */

static void test_key_encode_decode(void **state)
{
    (void)state;
    char s[NOTES_KEY_STRLEN];
    uint8_t pk[32], back[32];

    /* encoding vector (any 32 bytes encode; this is not a curve point) */
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)i;
    notes_key_encode(pk, s);
    assert_string_equal(s, "nkaaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq");

    for (int round = 0; round < 50; round++) {
        notes_identity *id;
        assert_int_equal(notes_identity_generate("k", &id), NOTES_OK);
        notes_key_encode(notes_identity_public_key(id), s);
        assert_int_equal(strlen(s), NOTES_KEY_STRLEN - 1);
        assert_int_equal(strncmp(s, "nk", 2), 0);
        memset(back, 0, sizeof(back));
        assert_int_equal(notes_key_decode(s, back), NOTES_OK);
        assert_memory_equal(back, notes_identity_public_key(id), 32);
        notes_identity_free(id);
    }
}

static void test_key_decode_rejects(void **state)
{
    (void)state;
    static const char good[] =
        "nk25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkena";
    char s[128];
    uint8_t pk[32], zero[32] = { 0 }, want[32];

    assert_int_equal(notes_key_decode(good, pk), NOTES_OK);
    assert_int_equal(notes__unhex(want, 32, "d75a980182b10ab7d54bfed3c964073a"
                                            "0ee172f3daa62325af021a68f707511a"),
                     NOTES_OK);
    assert_memory_equal(pk, want, 32);

#define REJECT(str)                                                  \
    do {                                                             \
        memset(pk, 0, sizeof(pk));                                   \
        assert_int_equal(notes_key_decode((str), pk), NOTES_EINVAL); \
        assert_memory_equal(pk, zero, 32);                           \
        assert_true(strlen(notes_last_detail()) > 0);                \
    } while (0)
    REJECT("");
    REJECT("nk");
    REJECT(good + 2);                       /* no prefix */
    snprintf(s, sizeof(s), "NK%s", good + 2);
    REJECT(s);                              /* uppercase prefix */
    snprintf(s, sizeof(s), "nx%s", good + 2);
    REJECT(s);
    snprintf(s, sizeof(s), "%s", good);
    s[10] = 'Q';
    REJECT(s);                              /* uppercase */
    s[10] = '1';
    REJECT(s);                              /* not base32 */
    s[10] = '8';
    REJECT(s);
    s[10] = '=';
    REJECT(s);
    snprintf(s, sizeof(s), "%s ", good);
    REJECT(s);                              /* trailing space */
    snprintf(s, sizeof(s), " %s", good);
    REJECT(s);
    snprintf(s, sizeof(s), "%.*s", (int)strlen(good) - 1, good);
    REJECT(s);                              /* one short */
    snprintf(s, sizeof(s), "%sa", good);
    REJECT(s);                              /* one long */
    snprintf(s, sizeof(s), "%s", good);
    s[strlen(s) - 1] = 'b';                 /* 'a' + low bits set */
    REJECT(s);                              /* non-canonical last char */

    /* 32 zero bytes: a point of small order, not a public key */
    notes_key_encode(zero, s);
    REJECT(s);
    /* 0xff..: not a canonical field element */
    uint8_t ff[32];
    memset(ff, 0xff, sizeof(ff));
    notes_key_encode(ff, s);
    REJECT(s);
#undef REJECT
    assert_int_equal(notes_key_decode(NULL, pk), NOTES_EINVAL);
    assert_int_equal(notes_key_decode(good, NULL), NOTES_EINVAL);
}

static void test_key_fingerprint(void **state)
{
    (void)state;
    uint8_t pk[32];
    char a[NOTES_FPR_STRLEN], b[NOTES_FPR_STRLEN];

    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)i;
    notes_key_fingerprint(pk, a);
    assert_string_equal(a, "zmxv-cyh4"); /* BLAKE2b-256, first 40 bits */
    notes_key_fingerprint(pk, b);
    assert_string_equal(a, b);

    pk[31] ^= 1;
    notes_key_fingerprint(pk, b);
    assert_string_not_equal(a, b);

    notes_identity *id;
    assert_int_equal(notes_identity_generate("f", &id), NOTES_OK);
    notes_key_fingerprint(notes_identity_public_key(id), a);
    assert_int_equal(strlen(a), NOTES_FPR_STRLEN - 1);
    assert_int_equal(a[4], '-');
    for (int i = 0; i < 9; i++)
        if (i != 4)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", a[i]));
    notes_identity_free(id);
}

/* ---- allocation failure ---- */

static void test_identity_alloc_failure(void **state)
{
    (void)state;
    char path[128];
    notes_identity *id = NULL, *back;
    int rc;

    for (long at = 0;; at++) {
        notes__fail_alloc_at = at;
        rc = notes_identity_generate("oom", &id);
        notes__fail_alloc_at = -1;
        if (rc == NOTES_OK)
            break;
        assert_int_equal(rc, NOTES_ENOMEM);
        assert_null(id);
    }
    for (long at = 0;; at++) {
        fresh_path(path, sizeof(path));
        int before = count_files();
        notes__fail_alloc_at = at;
        rc = notes_identity_save(id, path, NULL);
        notes__fail_alloc_at = -1;
        if (rc == NOTES_OK)
            break;
        assert_int_equal(rc, NOTES_ENOMEM);
        assert_int_equal(count_files(), before);
    }
    for (long at = 0;; at++) {
        back = (notes_identity *)(uintptr_t)1;
        notes__fail_alloc_at = at;
        rc = notes_identity_load(path, NULL, &back);
        notes__fail_alloc_at = -1;
        if (rc == NOTES_OK)
            break;
        assert_int_equal(rc, NOTES_ENOMEM);
        assert_null(back);
    }
    assert_same_keys(id, back);
    notes_identity_free(back);
    notes_identity_free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_generate_names),
        cmocka_unit_test(test_identity_roundtrip_plain),
        cmocka_unit_test(test_identity_roundtrip_passphrase),
        cmocka_unit_test(test_identity_golden_rfc8032),
        cmocka_unit_test(test_identity_save_refuses_overwrite),
        cmocka_unit_test(test_identity_load_missing),
        cmocka_unit_test(test_identity_load_mode_refused),
        cmocka_unit_test(test_identity_load_byte_flips),
        cmocka_unit_test(test_identity_load_truncations),
        cmocka_unit_test(test_identity_load_malformed),
        cmocka_unit_test(test_identity_encrypted_damage),
        cmocka_unit_test(test_identity_sign_verify),
        cmocka_unit_test(test_key_encode_decode),
        cmocka_unit_test(test_key_decode_rejects),
        cmocka_unit_test(test_key_fingerprint),
        cmocka_unit_test(test_identity_alloc_failure),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
