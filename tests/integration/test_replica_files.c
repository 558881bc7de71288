/*
 * test_replica_files.c: the files a replica trusts beside its note logs
 * (identity, identity.pub, person, certs, trust, spaces/team,
 * spaces/team.notes and remotes) carry a check line (issue 15), driven through the
 * built binary: each file damaged three ways (a flipped byte, a flipped
 * hex digit of its check line, cut in half) is named by `notes verify`
 * (exit 2, text and --json) and left exactly as it was; `person export`
 * refuses a damaged key; a space whose secret lost a hex digit is refused,
 * never used as another space; files of an older version (no check line)
 * are accepted with a remark, and the next write adds the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <jansson.h>

#include "clirun.h"
#include "tmpdir.h"

static char *work;

static const char *const FILES[] = {
    "identity", "identity.pub", "person", "certs",
    "trust", "spaces/team", "spaces/team.notes", "remotes",
};
#define NFILES (sizeof(FILES) / sizeof(FILES[0]))

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

static void expect(struct clirun_out r, int status, const char *in_out,
                   const char *in_err)
{
    if (r.status != status || (in_out && !strstr(r.out, in_out)) ||
        (in_err && !strstr(r.err, in_err)))
        print_message("status %d (want %d)\nstdout:\n%s\nstderr:\n%s\n",
                      r.status, status, r.out, r.err);
    assert_int_equal(r.status, status);
    if (in_out)
        assert_non_null(strstr(r.out, in_out));
    if (in_err)
        assert_non_null(strstr(r.err, in_err));
    clirun_free(&r);
}

static char *home_path(const char *home, const char *file)
{
    char *h = test_path(work, home), *p = test_path(h, file);
    free(h);
    return p;
}

/* The replica's own key (identity.pub's "key nk..." line). */
static void own_key(const char *home, char key[80])
{
    char *pub = home_path(home, "identity.pub");
    size_t n;
    unsigned char *t = test_slurp(pub, &n);
    assert_non_null(t);
    const char *k = strstr((char *)t, "key ");
    assert_non_null(k);
    assert_int_equal(sscanf(k + 4, "%79s", key), 1);
    free(t);
    free(pub);
}

/* A replica with every kind of file: person key, certificate, a petname,
 * a space holding a note. */
static void make_replica(const char *home)
{
    char key[80];
    expect(RUN(home, "init", "--name", "Ana"), 0, "person Ana", NULL);
    own_key(home, key);
    expect(RUN(home, "trust", key, "Ana herself"), 0, NULL, NULL);
    expect(RUN(home, "space", "create", "team"), 0, NULL, NULL);
    expect(RUN(home, "new", "Weekly"), 0, NULL, NULL);
    expect(RUN(home, "space", "add", "team", "Weekly"), 0, NULL, NULL);
    expect(RUN(home, "remote", "add", "origin", "/nonexistent/team.git"), 0,
           NULL, NULL);
}

struct snap {
    unsigned char *p[NFILES];
    size_t n[NFILES];
};

static void snap_take(const char *home, struct snap *s)
{
    for (size_t i = 0; i < NFILES; i++) {
        char *p = home_path(home, FILES[i]);
        s->p[i] = test_slurp(p, &s->n[i]);
        assert_non_null(s->p[i]);
        free(p);
    }
}

/* Nothing verify (or a refused command) did changed a byte of any file. */
static void snap_same(const char *home, struct snap *s)
{
    struct snap now;
    snap_take(home, &now);
    for (size_t i = 0; i < NFILES; i++) {
        if (now.n[i] != s->n[i] || memcmp(now.p[i], s->p[i], s->n[i]) != 0)
            print_message("%s changed\n", FILES[i]);
        assert_int_equal(now.n[i], s->n[i]);
        assert_memory_equal(now.p[i], s->p[i], s->n[i]);
        free(now.p[i]);
        free(s->p[i]);
    }
}

enum damage { FLIP_BYTE, FLIP_CHECK_HEX, TRUNCATE };

static void damage(const char *home, const char *file, enum damage how)
{
    char *p = home_path(home, file);
    size_t n;
    unsigned char *t = test_slurp(p, &n);
    assert_non_null(t);
    /* Every file now ends with the 71-byte check line. */
    assert_true(n > 71);
    assert_memory_equal(t + n - 71, "check ", 6);
    switch (how) {
    case FLIP_BYTE:
        t[n / 3] ^= 0x01;
        break;
    case FLIP_CHECK_HEX:
        t[n - 10] = t[n - 10] == '0' ? '1' : '0';
        break;
    case TRUNCATE:
        n /= 2;
        break;
    }
    assert_int_equal(test_spit(p, t, n), 0);
    free(t);
    free(p);
}

/* verify --json: the "files" array says `file` is damaged, the rest not. */
static void json_names(const char *home, const char *file)
{
    struct clirun_out r = RUN(home, "verify", "--json");
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    if (!j || r.status != 2)
        print_message("status %d\n%s\n%s\n", r.status, r.out, r.err);
    assert_int_equal(r.status, 2);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_t *files = json_object_get(j, "files"), *f;
    size_t i, bad = 0;
    assert_true(json_is_array(files));
    json_array_foreach(files, i, f) {
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *msg = json_string_value(json_object_get(f, "message"));
        size_t pl = strlen(path), fl = strlen(file);
        int is_it = pl > fl && strcmp(path + pl - fl, file) == 0 &&
                    path[pl - fl - 1] == '/';
        if (json_is_false(json_object_get(f, "ok"))) {
            bad++;
            assert_true(is_it);
            assert_non_null(json_object_get(f, "error"));
            assert_true(strlen(msg) > 0);
        }
    }
    assert_int_equal(bad, 1);
    json_decref(j);
    clirun_free(&r);
}

static void test_each_file_each_damage(void **state)
{
    (void)state;
    static const char *const how_name[] = {"byte", "checkhex", "cut"};
    for (size_t f = 0; f < NFILES; f++) {
        for (int how = FLIP_BYTE; how <= TRUNCATE; how++) {
            char home[64];
            struct snap s;
            snprintf(home, sizeof(home), "d%zu-%s", f, how_name[how]);
            make_replica(home);
            damage(home, FILES[f], (enum damage)how);
            snap_take(home, &s);
            char *p = home_path(home, FILES[f]);
            /* Text: exit 2, the damaged file named on stderr. */
            struct clirun_out r = RUN(home, "verify");
            if (r.status != 2 || !strstr(r.err, p))
                print_message("%s damaged (%s):\n%s\n%s\n", FILES[f],
                              how_name[how], r.out, r.err);
            assert_int_equal(r.status, 2);
            assert_non_null(strstr(r.err, p));
            clirun_free(&r);
            json_names(home, FILES[f]);
            snap_same(home, &s);
            free(p);
        }
    }
}

static void test_person_export_refuses(void **state)
{
    (void)state;
    for (int how = FLIP_BYTE; how <= TRUNCATE; how++) {
        char home[32];
        snprintf(home, sizeof(home), "exp%d", how);
        make_replica(home);
        char good[32];
        snprintf(good, sizeof(good), "good%d.person", how);
        expect(RUN(home, "person", "export", good), 0, "person key written",
               NULL);
        damage(home, "person", (enum damage)how);
        char out[32];
        snprintf(out, sizeof(out), "bad%d.person", how);
        expect(RUN(home, "person", "export", out), 2, NULL,
               "nothing was written");
        char *o = test_path(work, out);
        struct stat st;
        assert_int_not_equal(stat(o, &st), 0); /* no file written */
        free(o);
    }
    /* The good backup carries the check line and imports elsewhere. */
    expect(RUN("imp", "init", "--name", "Ana laptop", "--device"), 0, NULL,
           NULL);
    expect(RUN("imp", "person", "import", "good0.person"), 0, "imported",
           NULL);
}

/* One flipped hex digit of the secret: refused, naming the file. */
static void test_space_secret_flip_refused(void **state)
{
    (void)state;
    make_replica("sp");
    char *p = home_path("sp", "spaces/team");
    size_t n;
    unsigned char *t = test_slurp(p, &n);
    assert_non_null(t);
    char *sec = strstr((char *)t, "secret ");
    assert_non_null(sec);
    sec[7 + 20] = sec[7 + 20] == 'a' ? 'b' : 'a';
    assert_int_equal(test_spit(p, t, n), 0);
    free(t);
    struct snap s;
    snap_take("sp", &s);
    expect(RUN("sp", "invite", "team", "--address", "127.0.0.1:7000"), 2,
           NULL, p);
    expect(RUN("sp", "verify"), 2, NULL, p);
    snap_same("sp", &s);
    free(p);
}

/* Files an older version wrote: no check line. Accepted, remarked on,
 * untouched by reading; the next write of trust adds the line. */
static void test_old_files_accepted(void **state)
{
    (void)state;
    make_replica("old");
    for (size_t i = 0; i < NFILES; i++) {
        /* remotes came with its check line: never without one. */
        if (strcmp(FILES[i], "remotes") == 0)
            continue;
        char *p = home_path("old", FILES[i]);
        size_t n;
        unsigned char *t = test_slurp(p, &n);
        assert_non_null(t);
        assert_true(n > 71);
        assert_int_equal(test_spit(p, t, n - 71), 0); /* drop the line */
        free(t);
        free(p);
    }
    struct snap s;
    snap_take("old", &s);
    struct clirun_out r = RUN("old", "verify");
    assert_int_equal(r.status, 0);
    size_t remarks = 0;
    for (const char *q = r.err; (q = strstr(q, "no checksum (written by an "
                                               "older version)")); q++)
        remarks++;
    assert_int_equal(remarks, NFILES - 1);
    clirun_free(&r);
    expect(RUN("old", "list"), 0, "Weekly", NULL);
    expect(RUN("old", "whoami"), 0, "Ana", NULL);
    expect(RUN("old", "invite", "team", "--address", "127.0.0.1:7000"), 0,
           "notes1", NULL);
    expect(RUN("old", "person", "export", "old.person"), 0, NULL, NULL);
    snap_same("old", &s);
    /* A write adds the line. */
    char key[80];
    own_key("old", key);
    expect(RUN("old", "trust", key, "Ana again"), 0, NULL, NULL);
    expect(RUN("old", "new", "Second"), 0, NULL, NULL);
    expect(RUN("old", "space", "add", "team", "Second"), 0, NULL, NULL);
    r = RUN("old", "verify");
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.err, "trust: note"));
    assert_null(strstr(r.err, "team.notes: note"));
    assert_non_null(strstr(r.err, "certs: note")); /* not rewritten yet */
    clirun_free(&r);
}

/* A damaged petname file is neither used nor rewritten. */
static void test_damaged_trust_not_rewritten(void **state)
{
    (void)state;
    make_replica("tr");
    damage("tr", "trust", FLIP_BYTE);
    struct snap s;
    snap_take("tr", &s);
    char key[80];
    own_key("tr", key);
    expect(RUN("tr", "trust", key, "Someone"), 2, NULL, "not rewritten");
    expect(RUN("tr", "log", "Weekly"), 0, NULL, "not used");
    snap_same("tr", &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_file_each_damage),
        cmocka_unit_test(test_person_export_refuses),
        cmocka_unit_test(test_space_secret_flip_refused),
        cmocka_unit_test(test_old_files_accepted),
        cmocka_unit_test(test_damaged_trust_not_rewritten),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("replica-files");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
