/*
 * test_sync_space.c: spaces on disk, the note -> space mapping, invite codes
 * (round trip, every typo, truncation, forgery and version caught).
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
#include "sync_internal.h"

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st, (void)f, (void)w;
    return remove(p);
}

static char *mkhome(void)
{
    char *t = strdup("/tmp/notes-sync-space-XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void rmhome(char *t)
{
    nftw(t, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
}

/* Invite blobs in and out of base32 (libnotes' notes__base32). */
static long b32_decode(const char *in, size_t n, uint8_t *out, size_t max)
{
    size_t got;
    return notes__unbase32_len(out, max, &got, in, n) == NOTES_OK ? (long)got
                                                                   : -1;
}

static void b32_encode(const uint8_t *in, size_t n, char *out)
{
    (void)notes__base32(out, 8 * ((n + 4) / 5) + 1, in, n);
}

static void test_space_create_load_list(void **st)
{
    (void)st;
    char *home = mkhome(), path[512];
    notes_sync_space a, b;
    char **names;
    size_t n;
    struct stat sb;

    assert_int_equal(notes_sync_space_create(home, "team", &a), NOTES_OK);
    assert_int_equal(notes_sync_space_create(home, "team", NULL), NOTES_EEXIST);
    assert_int_equal(notes_sync_space_create(home, "personal", NULL), NOTES_EINVAL);
    assert_int_equal(notes_sync_space_create(home, "Bad Name", NULL), NOTES_EINVAL);
    assert_int_equal(notes_sync_space_create(home, "-x", NULL), NOTES_EINVAL);
    assert_int_equal(notes_sync_space_create(home, "../x", NULL), NOTES_EINVAL);
    assert_int_equal(notes_sync_space_create(home, "board-2026", NULL), NOTES_OK);
    assert_int_equal(notes_sync_space_load(home, "team", &b), NOTES_OK);
    assert_string_equal(b.name, "team");
    assert_memory_equal(a.secret, b.secret, 32);
    snprintf(path, sizeof(path), "%s/spaces/team", home);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(notes_sync_space_load(home, "nope", &b), NOTES_ENOTFOUND);

    /* Saving the same space again is fine, another secret is not. */
    assert_int_equal(notes_sync_space_save(home, &a), NOTES_OK);
    a.secret[0] ^= 1;
    assert_int_equal(notes_sync_space_save(home, &a), NOTES_EEXIST);

    assert_int_equal(notes_sync_space_list(home, &names, &n), NOTES_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "board-2026");
    assert_string_equal(names[1], "team");
    notes_sync_space_names_free(names, n);

    /* A readable-by-others space file is refused. */
    chmod(path, 0644);
    assert_int_equal(notes_sync_space_load(home, "team", &b), NOTES_EPERM);
    assert_non_null(strstr(notes_sync_last_detail(), "chmod 600"));
    chmod(path, 0600);
    /* A damaged one is malformed. */
    FILE *f = fopen(path, "w");
    fputs("notes-space 1\nname team\nsecret 00\n", f);
    fclose(f);
    assert_int_equal(notes_sync_space_load(home, "team", &b), NOTES_ECORRUPT);
    rmhome(home);
}

static void test_space_note_mapping(void **st)
{
    (void)st;
    char *home = mkhome(), name[NOTES_SPACE_NAME_MAX + 1];
    uint8_t id1[16], id2[16], id3[16], (*ids)[16];
    size_t n;
    memset(id1, 0x11, 16);
    memset(id2, 0x22, 16);
    memset(id3, 0x03, 16);
    assert_int_equal(notes_sync_space_create(home, "team", NULL), NOTES_OK);
    assert_int_equal(notes_sync_space_create(home, "board", NULL), NOTES_OK);
    assert_int_equal(notes_sync_space_add_note(home, "ghost", id1), NOTES_ENOTFOUND);
    assert_int_equal(notes_sync_space_add_note(home, "team", id2), NOTES_OK);
    assert_int_equal(notes_sync_space_add_note(home, "team", id1), NOTES_OK);
    assert_int_equal(notes_sync_space_add_note(home, "team", id3), NOTES_OK);
    assert_int_equal(notes_sync_space_add_note(home, "team", id1), NOTES_OK);
    /* One note, one space. */
    assert_int_equal(notes_sync_space_add_note(home, "board", id1), NOTES_EEXIST);
    assert_non_null(strstr(notes_sync_last_detail(), "team"));
    assert_int_equal(notes_sync_space_notes(home, "team", &ids, &n), NOTES_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(ids[0], id3, 16); /* sorted */
    assert_memory_equal(ids[1], id1, 16);
    assert_memory_equal(ids[2], id2, 16);
    notes_sync_free(ids);
    assert_int_equal(notes_sync_space_of_note(home, id2, name), NOTES_OK);
    assert_string_equal(name, "team");
    assert_int_equal(notes_sync_space_remove_note(home, "team", id2), NOTES_OK);
    assert_int_equal(notes_sync_space_remove_note(home, "team", id2),
                     NOTES_ENOTFOUND);
    assert_int_equal(notes_sync_space_of_note(home, id2, name), NOTES_OK);
    assert_string_equal(name, "personal");
    assert_int_equal(notes_sync_space_add_note(home, "board", id2), NOTES_OK);
    assert_int_equal(notes_sync_space_notes(home, "board", &ids, &n), NOTES_OK);
    assert_int_equal(n, 1);
    notes_sync_free(ids);
    rmhome(home);
}

static void make_invite(notes_sync_space *s, uint8_t pk[32], char **code)
{
    notes_identity *id;
    memset(s, 0, sizeof(*s));
    strcpy(s->name, "weekly-sync");
    notes__random(s->secret, 32);
    assert_int_equal(notes_identity_generate("Ana", &id), NOTES_OK);
    memcpy(pk, notes_identity_public_key(id), 32);
    notes_identity_free(id);
    assert_int_equal(notes_sync_invite_encode(s, pk, "192.168.1.20:7070", code),
                     NOTES_OK);
}

static void test_invite_round_trip(void **st)
{
    (void)st;
    notes_sync_space s;
    notes_sync_invite inv;
    uint8_t pk[32];
    char *code, buf[600];
    make_invite(&s, pk, &code);
    printf("invite: %s (%zu chars)\n", code, strlen(code));
    assert_memory_equal(code, "notes1", 6);
    assert_int_equal(notes_sync_invite_decode(code, &inv), NOTES_OK);
    assert_string_equal(inv.space.name, "weekly-sync");
    assert_memory_equal(inv.space.secret, s.secret, 32);
    assert_memory_equal(inv.inviter, pk, 32);
    assert_string_equal(inv.addr, "192.168.1.20:7070");
    /* Whitespace around, upper case: still the same code. */
    snprintf(buf, sizeof(buf), "  %s\n", code);
    for (char *c = buf; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
    assert_int_equal(notes_sync_invite_decode(buf, &inv), NOTES_OK);
    /* Bad inputs to encode. */
    char *x;
    assert_int_equal(notes_sync_invite_encode(&s, pk, "nohost", &x), NOTES_EINVAL);
    assert_int_equal(notes_sync_invite_encode(&s, pk, "h:0", &x), NOTES_EINVAL);
    assert_int_equal(notes_sync_invite_encode(&s, pk, "h:65536", &x), NOTES_EINVAL);
    assert_int_equal(notes_sync_invite_encode(&s, pk, "h :1", &x), NOTES_EINVAL);
    notes_sync_free(code);
}

static void test_invite_typos_and_truncation(void **st)
{
    (void)st;
    notes_sync_space s;
    notes_sync_invite inv;
    uint8_t pk[32];
    char *code;
    size_t len, caught = 0, tried = 0;
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
    make_invite(&s, pk, &code);
    len = strlen(code);
    /* Every single-character substitution after the prefix. */
    for (size_t i = 6; i < len; i++) {
        char orig = code[i];
        for (size_t k = 0; k < 32; k++) {
            if (alpha[k] == orig)
                continue;
            code[i] = alpha[k];
            tried++;
            if (notes_sync_invite_decode(code, &inv) != NOTES_OK)
                caught++;
        }
        code[i] = orig;
    }
    printf("single-character typos caught: %zu / %zu\n", caught, tried);
    assert_int_equal(caught, tried);
    /* Every truncation. */
    for (size_t n = 0; n < len; n++) {
        char t[600];
        memcpy(t, code, n);
        t[n] = '\0';
        assert_int_not_equal(notes_sync_invite_decode(t, &inv), NOTES_OK);
        assert_true(notes_sync_last_detail()[0] != '\0');
    }
    /* Swapped adjacent characters. */
    for (size_t i = 6; i + 1 < len; i++) {
        char t[600];
        strcpy(t, code);
        if (t[i] == t[i + 1])
            continue;
        char c = t[i];
        t[i] = t[i + 1];
        t[i + 1] = c;
        assert_int_not_equal(notes_sync_invite_decode(t, &inv), NOTES_OK);
    }
    assert_int_equal(notes_sync_invite_decode("notes1", &inv), NOTES_EINVAL);
    assert_int_equal(notes_sync_invite_decode("nk1abc", &inv), NOTES_EINVAL);
    assert_int_equal(notes_sync_invite_decode("notes1!!!!", &inv), NOTES_EINVAL);
    notes_sync_free(code);
}

/* A blob with a valid checksum but another version, or a forged field. */
/* Version 2: the inviter's relays travel in the code; every cut or
 * altered relay list is refused. */
static void test_invite_relays(void **st)
{
    notes_sync_invite inv, out;
    char *code;
    (void)st;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.space.name, sizeof(inv.space.name), "team");
    notes__random(inv.space.secret, 32);
    notes__random(inv.inviter, 32);
    inv.inviter[31] &= 0x7f;
    {
        uint8_t sk[64];
        assert_int_equal(notes__sign_keypair(inv.inviter, sk, NULL), 0);
    }
    snprintf(inv.addr, sizeof(inv.addr), "192.168.1.5:7654");
    snprintf(inv.relays[0], sizeof(inv.relays[0]), "203.0.113.7:7656");
    snprintf(inv.relays[1], sizeof(inv.relays[1]), "relay.example.org:443");
    inv.nrelays = 2;
    assert_int_equal(notes_sync_invite_make(&inv, &code), NOTES_OK);
    assert_int_equal(notes_sync_invite_decode(code, &out), NOTES_OK);
    assert_string_equal(out.addr, inv.addr);
    assert_int_equal(out.nrelays, 2);
    assert_string_equal(out.relays[0], "203.0.113.7:7656");
    assert_string_equal(out.relays[1], "relay.example.org:443");
    assert_memory_equal(out.space.secret, inv.space.secret, 32);
    /* Every shorter code (the checksum recomputed) is refused. */
    {
        uint8_t blob[400], h[32];
        char text[800];
        long n = b32_decode(code + 6, strlen(code) - 6, blob, sizeof(blob));
        assert_true(n > 40);
        for (long cut = 1; cut < 40; cut++) {
            long m = n - 4 - cut;
            notes__hash(h, 32, blob, (size_t)m, NULL, 0);
            uint8_t b2[400];
            memcpy(b2, blob, (size_t)m);
            memcpy(b2 + m, h, 4);
            memcpy(text, "notes1", 6);
            b32_encode(b2, (size_t)m + 4, text + 6);
            assert_int_equal(notes_sync_invite_decode(text, &out), NOTES_EINVAL);
        }
        /* a relay count over the maximum */
        long at = n - 4 - (long)strlen(inv.relays[0]) -
                  (long)strlen(inv.relays[1]) - 3;
        assert_int_equal(blob[at], 2);
        blob[at] = NOTES_INVITE_RELAYS_MAX + 1;
        notes__hash(h, 32, blob, (size_t)n - 4, NULL, 0);
        memcpy(blob + n - 4, h, 4);
        b32_encode(blob, (size_t)n, text + 6);
        assert_int_equal(notes_sync_invite_decode(text, &out), NOTES_EINVAL);
    }
    notes_sync_free(code);
    /* A relay that is not HOST:PORT is refused when making the code. */
    snprintf(inv.relays[1], sizeof(inv.relays[1]), "no-port");
    assert_int_equal(notes_sync_invite_make(&inv, &code), NOTES_EINVAL);
    assert_null(code);
    /* No relay: a version 1 code, which older builds read. */
    inv.nrelays = 0;
    assert_int_equal(notes_sync_invite_make(&inv, &code), NOTES_OK);
    {
        uint8_t blob[400];
        long n = b32_decode(code + 6, strlen(code) - 6, blob, sizeof(blob));
        assert_true(n > 0);
        assert_int_equal(blob[0], 1);
    }
    notes_sync_free(code);
}

static void test_invite_forged(void **st)
{
    (void)st;
    notes_sync_space s;
    notes_sync_invite inv;
    uint8_t pk[32], blob[300], h[32];
    char *code, text[600];
    long n;
    make_invite(&s, pk, &code);
    n = b32_decode(code + 6, strlen(code) - 6, blob, sizeof(blob));
    assert_true(n > 4);
    /* version 3, checksum recomputed */
    blob[0] = 3;
    notes__hash(h, 32, blob, (size_t)n - 4, NULL, 0);
    memcpy(blob + n - 4, h, 4);
    memcpy(text, "notes1", 6);
    b32_encode(blob, (size_t)n, text + 6);
    assert_int_equal(notes_sync_invite_decode(text, &inv), NOTES_EVERSION);
    /* version 2 (relays) without its relay list */
    blob[0] = 2;
    notes__hash(h, 32, blob, (size_t)n - 4, NULL, 0);
    memcpy(blob + n - 4, h, 4);
    b32_encode(blob, (size_t)n, text + 6);
    assert_int_equal(notes_sync_invite_decode(text, &inv), NOTES_EINVAL);
    /* a name that is not a valid space name, checksum recomputed */
    blob[0] = 1;
    blob[2] = '/';
    notes__hash(h, 32, blob, (size_t)n - 4, NULL, 0);
    memcpy(blob + n - 4, h, 4);
    b32_encode(blob, (size_t)n, text + 6);
    assert_int_equal(notes_sync_invite_decode(text, &inv), NOTES_EINVAL);
    assert_non_null(strstr(notes_sync_last_detail(), "malformed"));
    /* trailing byte after the address */
    n = b32_decode(code + 6, strlen(code) - 6, blob, sizeof(blob));
    blob[n - 4] = 'x';
    notes__hash(h, 32, blob, (size_t)n - 3, NULL, 0);
    memcpy(blob + n - 3, h, 4);
    b32_encode(blob, (size_t)n + 1, text + 6);
    assert_int_equal(notes_sync_invite_decode(text, &inv), NOTES_EINVAL);
    notes_sync_free(code);
}

static unsigned char *slurp_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *b = malloc(8192);
    assert_non_null(f);
    *n = fread(b, 1, 8192, f);
    fclose(f);
    return b;
}

static void spit_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

struct files_seen {
    size_t files, damaged, remarks;
    char last_bad[512];
};

static void on_file(const notes_file_status *st, void *arg)
{
    struct files_seen *s = arg;
    s->files++;
    if (st->code) {
        s->damaged++;
        snprintf(s->last_bad, sizeof(s->last_bad), "%s", st->path);
        assert_non_null(strstr(st->message, st->path));
    } else if (!st->checked) {
        s->remarks++;
        assert_non_null(strstr(st->message, "older version"));
    }
}

/*
 * Every byte of a space file (and of its note list) flipped in turn is
 * refused, naming the file: one flipped digit of the secret must never
 * become membership of another space. Files without a check line (older
 * versions) stay readable, with a remark from verify, and the next write
 * of the note list adds the line.
 */
static void test_space_files_checked(void **st)
{
    (void)st;
    char *home = mkhome(), path[512], npath[512];
    notes_sync_space a, b;
    uint8_t id[16], (*ids)[16];
    size_t n, nn;
    struct files_seen seen = {0};
    memset(id, 0x42, 16);
    assert_int_equal(notes_sync_space_create(home, "team", &a), NOTES_OK);
    assert_int_equal(notes_sync_space_add_note(home, "team", id), NOTES_OK);
    snprintf(path, sizeof(path), "%s/spaces/team", home);
    snprintf(npath, sizeof(npath), "%s/spaces/team.notes", home);
    assert_int_equal(notes_sync_space_verify_files(home, on_file, &seen), NOTES_OK);
    assert_int_equal(seen.files, 2);
    assert_int_equal(seen.damaged + seen.remarks, 0);

    size_t sn;
    unsigned char *orig = slurp_file(path, &sn);
    assert_memory_equal(orig + sn - NOTES_CHECK_LINE_LEN, "check ", 6);
    for (size_t i = 0; i < sn; i++) {
        unsigned char *t = malloc(sn);
        memcpy(t, orig, sn);
        t[i] ^= 0x01;
        spit_file(path, t, sn);
        int rc = notes_sync_space_load(home, "team", &b);
        if (rc == NOTES_OK)
            print_message("space byte %zu flipped: accepted\n", i);
        assert_int_equal(rc, NOTES_ECORRUPT);
        assert_non_null(strstr(notes_sync_last_detail(), path));
        struct files_seen s = {0};
        assert_int_equal(notes_sync_space_verify_files(home, on_file, &s),
                         NOTES_ECORRUPT);
        assert_int_equal(s.damaged, 1);
        assert_string_equal(s.last_bad, path);
        free(t);
    }
    spit_file(path, orig, sn);

    unsigned char *norig = slurp_file(npath, &nn);
    for (size_t i = 0; i < nn; i++) {
        unsigned char *t = malloc(nn);
        memcpy(t, norig, nn);
        t[i] ^= 0x01;
        spit_file(npath, t, nn);
        assert_int_equal(notes_sync_space_notes(home, "team", &ids, &n),
                         NOTES_ECORRUPT);
        assert_non_null(strstr(notes_sync_last_detail(), npath));
        free(t);
    }
    spit_file(npath, norig, nn);

    /* Older files: the check line dropped. Read, remarked on, unchanged. */
    spit_file(path, orig, sn - NOTES_CHECK_LINE_LEN);
    spit_file(npath, norig, nn - NOTES_CHECK_LINE_LEN);
    assert_int_equal(notes_sync_space_load(home, "team", &b), NOTES_OK);
    assert_memory_equal(a.secret, b.secret, 32);
    assert_int_equal(notes_sync_space_notes(home, "team", &ids, &n), NOTES_OK);
    assert_int_equal(n, 1);
    notes_sync_free(ids);
    struct files_seen old = {0};
    assert_int_equal(notes_sync_space_verify_files(home, on_file, &old), NOTES_OK);
    assert_int_equal(old.remarks, 2);
    size_t after;
    unsigned char *again = slurp_file(path, &after);
    assert_int_equal(after, sn - NOTES_CHECK_LINE_LEN);
    assert_memory_equal(again, orig, after); /* reading rewrote nothing */
    free(again);
    id[0] = 1;
    assert_int_equal(notes_sync_space_add_note(home, "team", id), NOTES_OK);
    again = slurp_file(npath, &after);
    assert_memory_equal(again + after - NOTES_CHECK_LINE_LEN, "check ", 6);
    free(again);
    free(orig);
    free(norig);
    notes_sync_space_clear(&a);
    notes_sync_space_clear(&b);
    rmhome(home);
}

/* notes_sync__read_checked, what the remotes file, the remote state and a
 * space's notes list are read with: the body without its check line, an
 * older file without one, and a NUL byte, a wrong check line or no file
 * told apart. */
static void test_read_checked(void **st)
{
    (void)st;
    char *home = mkhome(), path[4200], line[NOTES_CHECK_LINE_LEN + 1];
    char *text;
    size_t n;
    int checked;
    const char body[] = "notes-test 1\nhello\n";
    snprintf(path, sizeof(path), "%s/f", home);
    assert_int_equal(notes_sync__read_checked(path, 4096, &text, &n, &checked),
                     NOTES_ENOTFOUND);
    assert_null(text);

    notes_check_line(body, strlen(body), line);
    char whole[256];
    snprintf(whole, sizeof(whole), "%s%s", body, line);
    spit_file(path, (const unsigned char *)whole, strlen(whole));
    assert_int_equal(notes_sync__read_checked(path, 4096, &text, &n, &checked),
                     NOTES_OK);
    assert_int_equal(checked, 1);
    assert_int_equal(n, strlen(body));
    assert_string_equal(text, body);
    free(text);

    spit_file(path, (const unsigned char *)body, strlen(body)); /* an older version's file */
    assert_int_equal(notes_sync__read_checked(path, 4096, &text, &n, &checked),
                     NOTES_OK);
    assert_int_equal(checked, 0);
    assert_string_equal(text, body);
    free(text);

    whole[3] = 'X'; /* the check line no longer matches */
    spit_file(path, (const unsigned char *)whole, strlen(whole));
    assert_int_equal(notes_sync__read_checked(path, 4096, &text, &n, &checked),
                     NOTES_ECORRUPT);
    assert_non_null(strstr(notes_sync_last_detail(), path));
    free(text);

    whole[3] = '\0'; /* a NUL byte */
    spit_file(path, (const unsigned char *)whole, strlen(body) + NOTES_CHECK_LINE_LEN);
    assert_int_equal(notes_sync__read_checked(path, 4096, &text, &n, &checked),
                     NOTES_ECORRUPT);
    assert_non_null(strstr(notes_sync_last_detail(), "NUL byte"));
    free(text);

    assert_int_equal(notes_sync__read_checked(path, 16, &text, &n, &checked),
                     NOTES_ETOOBIG);
    free(text);
    rmhome(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_create_load_list),
        cmocka_unit_test(test_space_note_mapping),
        cmocka_unit_test(test_invite_round_trip),
        cmocka_unit_test(test_invite_typos_and_truncation),
        cmocka_unit_test(test_invite_forged),
        cmocka_unit_test(test_invite_relays),
        cmocka_unit_test(test_space_files_checked),
        cmocka_unit_test(test_read_checked),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
