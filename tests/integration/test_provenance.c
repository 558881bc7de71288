/*
 * test_provenance.c: who recorded what, provably, through the `notes`
 * command: one person on two devices plus another person, device links and
 * revocation, confirmations, petnames, and verifiable exports (bundle and
 * attested Markdown) checked on a fresh $NOTES_HOME, byte by byte.
 * Changes travel as bundle files (export/import), as a user would mail them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <sys/stat.h>

#include "clirun.h"
#include "tmpdir.h"

static char *work;

#define RUN(home, ...) clirun(work, home, "", NULL, __VA_ARGS__, NULL)

static char rita_fpr[16], omar_fpr[16], desk_fpr[16], note[40];

static void fingerprint_of(const char *home, int person, char out[16])
{
    json_t *j = clirun_json(RUN(home, "whoami", "--json"));
    json_t *src = person ? json_object_get(j, "person") : j;
    assert_non_null(src);
    snprintf(out, 16, "%s", json_string_value(json_object_get(src, "fingerprint")));
    json_decref(j);
}

static void move(const char *from, const char *to, const char *file)
{
    clirun_ok(RUN(from, "export", note, "--format", "bundle", "-o", file), NULL);
    clirun_ok(RUN(to, "import", file), NULL);
}

/* Every line of `blame --json` on `home` whose text contains `needle` is
 * attributed to someone whose shown name contains `who`. */
static void blamed(const char *home, const char *needle, const char *who)
{
    json_t *j = clirun_json(RUN(home, "blame", note, "--json"));
    size_t i, hits = 0;
    json_t *line;
    json_array_foreach(j, i, line) {
        const char *t = json_string_value(json_object_get(line, "text"));
        const char *a = json_string_value(json_object_get(line, "author"));
        if (!strstr(t, needle))
            continue;
        if (!strstr(a, who))
            print_message("line '%s' by '%s', expected '%s'\n", t, a, who);
        assert_non_null(strstr(a, who));
        hits++;
    }
    assert_true(hits > 0);
    json_decref(j);
}

static void test_people_devices_and_revocation(void **state)
{
    (void)state;
    clirun_ok(RUN("rita", "init", "--name", "Rita"), "person Rita");
    clirun_ok(RUN("desk", "init", "--name", "Rita desktop", "--device"), "no person key");
    clirun_ok(RUN("omar", "init", "--name", "Omar"), "person Omar");
    fingerprint_of("rita", 1, rita_fpr);
    fingerprint_of("omar", 1, omar_fpr);
    fingerprint_of("desk", 0, desk_fpr);

    /* Pair the desktop with Rita's person key. */
    char *add = clirun_stdout(RUN("desk", "device", "add"));
    char *code = strstr(add, "np1");
    assert_non_null(code);
    *strchr(code, '\n') = 0;
    clirun_fails(RUN("omar", "device", "link", "np1aaaa"), 1, "not a pairing code");
    char damaged[256];
    snprintf(damaged, sizeof(damaged), "%s", code);
    damaged[20] = damaged[20] == 'a' ? 'b' : 'a';
    clirun_fails(RUN("rita", "device", "link", damaged), 2, "does not verify");
    clirun_fails(RUN("desk", "device", "link", code), 1, "holds no person key");
    clirun_ok(RUN("rita", "device", "link", code), "linked device");
    free(add);
    clirun_ok(RUN("rita", "device", "list"), desk_fpr);

    char *id = clirun_stdout(RUN("rita", "new", "Weekly"));
    snprintf(note, sizeof(note), "%.32s", id);
    free(id);
    clirun_ok(RUN("rita", "decide", note, "ship it", "--owner", "RD"), NULL);
    move("rita", "desk", "w1.bundle");
    move("rita", "omar", "w1.bundle");
    clirun_ok(RUN("desk", "append", note, "Typed on the desktop"), NULL);
    clirun_ok(RUN("omar", "append", note, "Omar was here"), NULL);
    move("desk", "omar", "w2.bundle");
    move("desk", "rita", "w2.bundle");
    move("omar", "rita", "w3.bundle");

    /* Both laptops show as Rita (her person key's fingerprint) everywhere;
     * Omar as Omar; on Omar's replica Rita is an unknown key. */
    const char *homes[] = {"rita", "omar"};
    for (int h = 0; h < 2; h++) {
        char rita[64], omar[64];
        snprintf(rita, sizeof(rita), "Rita (%s", rita_fpr);
        snprintf(omar, sizeof(omar), "Omar (%s", omar_fpr);
        blamed(homes[h], "Typed on the desktop", rita);
        blamed(homes[h], "ship it", rita);
        blamed(homes[h], "Omar was here", omar);
    }
    blamed("omar", "Typed on the desktop", "unknown key");
    clirun_ok(RUN("omar", "log", note), rita_fpr);
    json_t *j = clirun_json(RUN("omar", "decisions", note, "--json"));
    json_t *p = json_object_get(json_object_get(json_array_get(j, 0),
                                                "recorded_by_person"),
                                "fingerprint");
    assert_string_equal(json_string_value(p), rita_fpr);
    json_decref(j);

    /* Petnames: Omar names Rita's key; names are claims, keys are facts. */
    clirun_ok(RUN("omar", "trust", rita_fpr, "Rita (design)"), "Rita (design)");
    blamed("omar", "Typed on the desktop", "Rita (design)");
    clirun_ok(RUN("omar", "trust"), "Rita (design)");
    clirun_fails(RUN("omar", "trust", "zzzz-zzzz", "X"), 1, "not a key");

    /* Damaged files of the replica: a bad petname line is ignored with a
     * warning; a bad certificate stops commits with where it is. */
    char *trust = test_path(work, "omar/trust"), *certs = test_path(work, "omar/certs");
    size_t tn, cn;
    unsigned char *tb = test_slurp(trust, &tn), *cb = test_slurp(certs, &cn);
    FILE *tf = fopen(trust, "a");
    fputs("garbage line\n", tf);
    fclose(tf);
    struct clirun_out r = RUN("omar", "blame", note);
    clirun_expect(r, 0, "Rita (design)", "line 2 ignored");
    clirun_free(&r);
    test_spit(certs, "link AAAA\n", 10);
    clirun_fails(RUN("omar", "append", note, "blocked"), 2, "certs' line 1");
    test_spit(certs, cb, cn);
    test_spit(trust, tb, tn);
    free(tb);
    free(cb);
    free(trust);
    free(certs);

    /* Backup and restore of the person key: a replica that imports it
     * speaks for Rita too. The backup is never written over a file. */
    clirun_ok(RUN("rita", "person", "export", "rita.person"), "keep it offline");
    clirun_fails(RUN("rita", "person", "export", "rita.person"), 1, "cannot create");
    clirun_ok(RUN("spare", "init", "--name", "Rita spare", "--device"), NULL);
    clirun_ok(RUN("spare", "person", "import", "rita.person"), "linked to it");
    clirun_ok(RUN("spare", "whoami"), rita_fpr);
    clirun_fails(RUN("spare", "person", "import", "rita.person"), 1, "already holds");

    /* Rita revokes the desktop: after the revocation reaches it, the
     * desktop can no longer write; what it wrote before stays, verified. */
    clirun_fails(RUN("rita", "device", "revoke", "nope"), 1, "no single linked device");
    clirun_ok(RUN("rita", "device", "revoke", desk_fpr), "revoked device");
    clirun_ok(RUN("rita", "device", "list"), "REVOKED");
    move("rita", "desk", "w4.bundle");
    move("rita", "omar", "w4.bundle");
    clirun_fails(RUN("desk", "append", note, "after the revocation"), 2, "revoked");
    clirun_ok(RUN("omar", "verify", note), "all ok");
    blamed("omar", "Typed on the desktop", "device revoked");
}

static void test_confirmations(void **state)
{
    (void)state;
    clirun_ok(RUN("omar", "confirm", note, "1"), "confirmed");
    move("omar", "rita", "c1.bundle");
    clirun_ok(RUN("rita", "decisions", note), "confirmed by Omar");
    json_t *j = clirun_json(RUN("rita", "decisions", note, "--json"));
    json_t *item = json_array_get(j, 0);
    assert_int_equal(json_integer_value(json_object_get(item, "confirmed_by_count")), 1);
    json_t *c = json_array_get(json_object_get(item, "confirmations"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "confirmed");
    assert_string_equal(json_string_value(json_object_get(c, "text")), "ship it");
    assert_string_equal(json_string_value(json_object_get(c, "owner")), "RD");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(c, "person"), "fingerprint")),
                        omar_fpr);
    assert_int_equal(strlen(json_string_value(json_object_get(c, "change"))), 64);
    json_decref(j);

    /* A key linked to no person confirms: shown, not counted. */
    clirun_ok(RUN("anon", "init", "--name", "Anon", "--device"), NULL);
    clirun_ok(RUN("anon", "import", "c1.bundle"), NULL);
    clirun_ok(RUN("anon", "confirm", note, "1"), "confirmed");
    move("anon", "rita", "c2.bundle");
    clirun_ok(RUN("rita", "decisions", note), "linked to no person, not counted");
    j = clirun_json(RUN("rita", "decisions", note, "--json"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0),
                                                        "confirmed_by_count")), 1);
    json_decref(j);

    /* Rita edits the decision: the confirmation stays with the old text. */
    char *script = test_path(work, "editor.sh");
    const char *body = "#!/bin/sh\nsed -i 's/ship it/ship it on Friday/' \"$1\"\n";
    test_spit(script, body, strlen(body));
    chmod(script, 0755);
    setenv("EDITOR", script, 1);
    unsetenv("VISUAL");
    clirun_ok(RUN("rita", "edit", note), NULL);
    free(script);
    struct clirun_out r = RUN("rita", "decisions", note);
    clirun_expect(r, 0, "changed after confirmation by Omar", NULL);
    assert_non_null(strstr(r.out, "who confirmed: RD: ship it\n"));
    clirun_free(&r);
    j = clirun_json(RUN("rita", "decisions", note, "--json"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0),
                                                        "confirmed_by_count")), 0);
    json_decref(j);
    clirun_fails(RUN("rita", "confirm", note, "9"), 1, "no item");
}

static unsigned char *slurp(const char *name, size_t *n)
{
    char *p = test_path(work, name);
    unsigned char *b = test_slurp(p, n);
    free(p);
    assert_non_null(b);
    return b;
}

static void spit(const char *name, const void *b, size_t n)
{
    char *p = test_path(work, name);
    assert_int_equal(test_spit(p, b, n), 0);
    free(p);
}

static void test_verifiable_exports(void **state)
{
    (void)state;
    /* Another note with a secret: it must not travel in this note's bundle. */
    char *other = clirun_stdout(RUN("rita", "new", "Salaries"));
    other[32] = 0;
    clirun_ok(RUN("rita", "append", other, "TOPSECRET the numbers"), NULL);
    clirun_ok(RUN("rita", "export", note, "--format", "bundle", "-o", "v.bundle"), NULL);

    /* On a machine with no replica at all (NOTES_HOME does not exist). */
    struct clirun_out r = RUN(NULL, "verify", "v.bundle");
    clirun_expect(r, 0, "every signature, hash chain, link and revocation verified", NULL);
    assert_non_null(strstr(r.out, "ship it on Friday"));
    assert_non_null(strstr(r.out, "Typed on the desktop"));
    assert_non_null(strstr(r.out, "changed after confirmation"));
    assert_non_null(strstr(r.out, "REVOKED"));
    assert_null(strstr(r.out, "TOPSECRET"));
    assert_null(strstr(r.out, "Salaries"));
    clirun_free(&r);
    char *none = test_path(work, "none");
    struct stat st;
    assert_int_not_equal(stat(none, &st), 0); /* nothing was created */
    free(none);
    json_t *j = clirun_json(RUN(NULL, "verify", "v.bundle", "--json"));
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_t *items = json_object_get(j, "items"), *it;
    size_t ix, found = 0;
    json_array_foreach(items, ix, it) {
        if (strcmp(json_string_value(json_object_get(it, "text")),
                   "ship it on Friday") == 0)
            found++;
    }
    assert_int_equal(found, 1);
    json_decref(j);

    size_t n;
    unsigned char *b = slurp("v.bundle", &n);
    uint8_t oid[16];
    for (int i = 0; i < 16; i++)
        sscanf(other + 2 * i, "%2hhx", &oid[i]);
    assert_null(memmem(b, n, oid, 16)); /* not even the other note's id */
    free(other);

    /* Single-byte changes of the bundle are detected: sampled here through
     * the command, every byte in test_people (the same library call). */
    for (size_t i = 0; i < n; i += 7) {
        b[i] ^= 0x20;
        spit("x.bundle", b, n);
        b[i] ^= 0x20;
        r = RUN(NULL, "verify", "x.bundle");
        if (r.status == 0)
            print_message("byte %zu of %zu: change not detected\n", i, n);
        assert_int_not_equal(r.status, 0);
        clirun_free(&r);
    }
    /* A bundle whose note id starts with '#' (one in 256) is still read
     * as a bundle, not refused as Markdown without a sidecar. */
    b[0] = '#';
    spit("h.bundle", b, n);
    r = RUN(NULL, "verify", "h.bundle");
    assert_int_not_equal(r.status, 0); /* the id no longer matches */
    assert_null(strstr(r.err, "looks like Markdown"));
    clirun_free(&r);
    free(b);

    /* Attested Markdown: exact, then every byte changed is found, with
     * the line it is on. */
    clirun_ok(RUN("rita", "export", note, "-o", "w.md", "--attest"), NULL);
    clirun_ok(RUN(NULL, "verify", "w.md"), "is exactly the signed note");
    clirun_fails(RUN("rita", "export", note, "--attest"), 1, "give -o FILE.md");
    unsigned char *md = slurp("w.md", &n);
    unsigned char *orig = malloc(n);
    memcpy(orig, md, n);
    size_t line = 1;
    for (size_t i = 0; i < n; i++) {
        md[i] = md[i] == 'x' ? 'y' : 'x';
        spit("w.md", md, n);
        md[i] = orig[i];
        r = RUN(NULL, "verify", "w.md");
        char where[48];
        snprintf(where, sizeof(where), "from line %zu,", line);
        if (r.status != 2 || !strstr(r.err, where))
            print_message("byte %zu (line %zu): status %d, %s\n", i, line,
                          r.status, r.err);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, where));
        clirun_free(&r);
        line += orig[i] == '\n';
    }
    spit("w.md", orig, n);
    free(md);
    free(orig);
    /* The sidecar: its header lines byte by byte, its bundle line sampled
     * (the bundle's own bytes were all checked above). */
    unsigned char *side = slurp("w.md.attest", &n);
    unsigned char *nl = memchr(side, '\n', n);
    for (int k = 0; k < 2; k++)
        nl = memchr(nl + 1, '\n', n - (size_t)(nl + 1 - side));
    size_t header = (size_t)(nl - side) + 1;
    for (size_t i = 0; i < n; i += i < header ? 1 : 13) {
        unsigned char was = side[i];
        side[i] = was == 'A' ? 'B' : 'A';
        spit("w.md.attest", side, n);
        side[i] = was;
        r = RUN(NULL, "verify", "w.md");
        if (r.status == 0)
            print_message("sidecar byte %zu: change not detected\n", i);
        assert_int_not_equal(r.status, 0);
        clirun_free(&r);
    }
    spit("w.md.attest", side, n / 2); /* truncated */
    clirun_fails(RUN(NULL, "verify", "w.md"), 2, NULL);
    free(side);
    /* Markdown without a sidecar, a file that is not a bundle. */
    spit("plain.md", "# hi\n", 5);
    clirun_fails(RUN(NULL, "verify", "plain.md"), 1, "no .attest sidecar");
    spit("junk.bin", "NTB\x02", 4);
    clirun_fails(RUN(NULL, "verify", "junk.bin"), 2, "not a bundle");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_people_devices_and_revocation),
        cmocka_unit_test(test_confirmations),
        cmocka_unit_test(test_verifiable_exports),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("provenance");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
