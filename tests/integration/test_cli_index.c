/*
 * test_cli_index.c: `notes list` and `notes decisions` read the notes index
 * (HOME/index.sqlite, docs/formats.md "The notes index") and say exactly
 * what they say when every log is opened (NOTES_NO_INDEX=1): the same
 * stdout, stderr and exit status on the sample notes, on two replicas
 * that edited the same notes concurrently and merged, after edits (the
 * index re-derives what moved), after a compaction, after `notes trust`
 * names a key, with the index deleted, garbled, truncated or impossible
 * to open, and with a damaged log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

static char *work;

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

static void check_same(const char *what, struct clirun_out slow,
                       struct clirun_out fast)
{
    if (slow.status != fast.status || strcmp(slow.out, fast.out) != 0 ||
        strcmp(slow.err, fast.err) != 0)
        print_message("%s differs:\n--- every log (%d)\n%s%s--- index (%d)\n%s%s",
                      what, slow.status, slow.out, slow.err, fast.status,
                      fast.out, fast.err);
    assert_int_equal(slow.status, fast.status);
    assert_string_equal(slow.out, fast.out);
    assert_string_equal(slow.err, fast.err);
}

/* Each listing the index serves, with the index (twice: the first may
 * bring it up to date, the second reads it as it is) and without: the
 * same bytes. Returns how many lines `notes list` printed. */
static size_t same(const char *home)
{
    static const char *const cmds[][4] = {
        {"list", NULL},
        {"list", "--json", NULL},
        {"decisions", NULL},
        {"decisions", "--json", NULL},
        {"decisions", "--open", NULL},
        {"decisions", "--owner", "RD", NULL},
        {"decisions", "--owner", "everyone", NULL},
        {"decisions", "--owner", "rd", "--json"},
        {"decisions", "--owner", "nobody", NULL},
    };
    size_t lines = 0;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        const char *const *c = cmds[i];
        setenv("NOTES_NO_INDEX", "1", 1);
        struct clirun_out slow = RUN(home, c[0], c[1], c[2], c[3]);
        unsetenv("NOTES_NO_INDEX");
        for (int k = 0; k < 2; k++) {
            struct clirun_out fast = RUN(home, c[0], c[1], c[2], c[3]);
            check_same(c[0], slow, fast);
            clirun_free(&fast);
        }
        if (i == 0)
            for (const char *p = slow.out; *p; p++)
                lines += *p == '\n';
        clirun_free(&slow);
    }
    return lines;
}

static char *sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char rel[256];
    snprintf(rel, sizeof(rel), "samples/%s", name);
    return test_path(shared ? shared : "../shared", rel);
}

static char *import(const char *home, const char *name)
{
    char *p = sample(name);
    char *id = clirun_first_line(RUN(home, "import", p));
    free(p);
    assert_int_equal(strlen(id), 32);
    return id;
}

static char *file_in(const char *home, const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", home, rel);
    return test_path(work, p);
}

static void write_file(const char *path, const char *bytes, size_t n, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    close(fd);
}

/* The samples, a note made here with items recorded, checked off and
 * confirmed; then edits: each listing follows them. */
static void test_index_samples(void **state)
{
    (void)state;
    clirun_ok(RUN("s", "init", "--name", "Ana"), NULL);
    char *community = import("s", "community-2023-05-15.md");
    char *kraft = import("s", "kraft-2022-04-06.md");
    char *weekly = clirun_first_line(RUN("s", "new", "Weekly sync"));
    clirun_ok(RUN("s", "todo", weekly, "Book the room", "--owner", "RD"), NULL);
    clirun_ok(RUN("s", "todo", weekly, "Order pizza", "--owner", "Ana"), NULL);
    clirun_ok(RUN("s", "decide", weekly, "Ship on Friday", "--owner", "Everyone"),
              NULL);
    clirun_ok(RUN("s", "set", weekly, "participants+", "RD"), NULL);
    clirun_ok(RUN("s", "confirm", weekly, "Book the room"), NULL);
    assert_int_equal(same("s"), 3);

    /* An edit: the note is read again from its log, by the listing (the
     * search after it finds nothing left to re-index). */
    clirun_ok(RUN("s", "done", weekly, "pizza"), NULL);
    clirun_ok(RUN("s", "set", kraft, "title", "Kraft sync (renamed)"), NULL);
    clirun_ok(RUN("s", "todo", community, "Write the report", "--owner", "RD"),
              NULL);
    clirun_ok(RUN("s", "list"), "Kraft sync (renamed)");
    json_t *j = clirun_json(RUN("s", "search", "renamed", "--json"));
    json_t *ij = json_object_get(j, "index");
    assert_int_equal(json_integer_value(json_object_get(ij, "notes")), 3);
    assert_int_equal(json_integer_value(json_object_get(ij, "reindexed")), 0);
    json_decref(j);
    struct clirun_out d = RUN("s", "decisions", "--owner", "Ana");
    clirun_expect(d, 0, "no open action items owned by Ana", NULL);
    clirun_free(&d);
    clirun_ok(RUN("s", "decisions", "--owner", "RD"), "Write the report");

    /* The index is a cache: deleted, garbled, truncated, or a folder
     * SQLite cannot open, the listings stay the same. */
    char *ix = file_in("s", "index.sqlite");
    unlink(ix);
    same("s");
    static const char junk[] = "this is not an SQLite database, not at all";
    write_file(ix, junk, sizeof(junk), O_TRUNC);
    same("s");
    same("s"); /* rebuilt: whole again */
    struct stat st;
    assert_int_equal(stat(ix, &st), 0);
    assert_int_equal(truncate(ix, st.st_size / 3), 0);
    same("s");
    /* Garbled in the middle (a page of records): caught, rebuilt. */
    assert_int_equal(stat(ix, &st), 0);
    char page[4096];
    memset(page, 0x5a, sizeof(page));
    int fd = open(ix, O_WRONLY);
    assert_true(fd >= 0);
    for (off_t at = 4096; at + 4096 <= st.st_size; at += 3 * 4096)
        assert_int_equal(pwrite(fd, page, sizeof(page), at), (ssize_t)sizeof(page));
    close(fd);
    same("s");
    unlink(ix);
    assert_int_equal(mkdir(ix, 0700), 0);
    same("s"); /* no index at all: every log, the same lines */
    rmdir(ix);
    free(ix);
    free(community);
    free(kraft);
    free(weekly);
}

/* Two replicas edit the same notes at once and merge through bundles; a
 * key named with `notes trust` is shown by that name, with the index as
 * without. */
static void test_index_merged(void **state)
{
    (void)state;
    clirun_ok(RUN("a", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("b", "init", "--name", "Bo"), NULL);
    char *kraft = import("a", "kraft-2022-04-06.md");
    char *weekly = clirun_first_line(RUN("a", "new", "Weekly sync"));
    clirun_ok(RUN("a", "todo", weekly, "Book the room", "--owner", "RD"), NULL);
    char *bundle = test_path(work, "m.bundle");
    const char *ids[2] = {kraft, weekly};
    for (int i = 0; i < 2; i++) {
        clirun_ok(RUN("a", "export", ids[i], "--format", "bundle", "-o", bundle),
                  NULL);
        clirun_ok(RUN("b", "import", bundle), NULL);
    }
    same("a");
    same("b");
    /* Concurrent edits on both sides. */
    clirun_ok(RUN("a", "todo", weekly, "Send the minutes", "--owner", "Ana"), NULL);
    clirun_ok(RUN("b", "todo", weekly, "Fix the projector", "--owner", "Bo"), NULL);
    clirun_ok(RUN("b", "set", kraft, "title", "Kraft (Bo's title)"), NULL);
    clirun_ok(RUN("a", "set", kraft, "title", "Kraft (Ana's title)"), NULL);
    clirun_ok(RUN("b", "done", weekly, "room"), NULL);
    same("a");
    same("b");
    for (int i = 0; i < 2; i++) {
        clirun_ok(RUN("b", "export", ids[i], "--format", "bundle", "-o", bundle),
                  NULL);
        clirun_ok(RUN("a", "import", bundle), NULL);
        clirun_ok(RUN("a", "export", ids[i], "--format", "bundle", "-o", bundle),
                  NULL);
        clirun_ok(RUN("b", "import", bundle), NULL);
    }
    same("a");
    same("b");
    /* Compacted: the same changes, rewritten; listed as before. */
    clirun_ok(RUN("b", "compact"), "compacted");
    same("b");
    struct clirun_out la = RUN("a", "decisions", weekly);
    clirun_expect(la, 0, "Fix the projector", NULL);
    clirun_free(&la);
    clirun_ok(RUN("a", "decisions"), "unknown key"); /* Bo, not named yet */
    /* Naming Bo changes what is shown, not the index. */
    char *who = clirun_stdout(RUN("b", "whoami"));
    char *fpr = strstr(who, "fingerprint ");
    assert_non_null(fpr);
    fpr[12 + 9] = 0;
    clirun_ok(RUN("a", "trust", fpr + 12, "Bo from design"), NULL);
    same("a");
    clirun_ok(RUN("a", "decisions"), "Bo from design");
    free(who);
    free(bundle);
    free(kraft);
    free(weekly);
}

/* A damaged log: what is said of it is said as before (the note is
 * opened the slow way), and the others come from the index. */
static void test_index_damaged(void **state)
{
    (void)state;
    clirun_ok(RUN("d", "init", "--name", "Ana"), NULL);
    char *kraft = import("d", "kraft-2022-04-06.md");
    char *community = import("d", "community-2023-05-15.md");
    clirun_ok(RUN("d", "todo", kraft, "Book the room", "--owner", "RD"), NULL);
    same("d");
    char rel[128];
    snprintf(rel, sizeof(rel), "notes/%s.log", kraft);
    char *log = file_in("d", rel);
    static const char tail[] = "\x01garbage after the last record";
    write_file(log, tail, sizeof(tail), O_APPEND);
    same("d");
    /* A log cut short. */
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(truncate(log, st.st_size / 2), 0);
    same("d");
    free(log);
    free(kraft);
    free(community);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_samples),
        cmocka_unit_test(test_index_merged),
        cmocka_unit_test(test_index_damaged),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("index");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
