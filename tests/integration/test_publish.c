/*
 * test_publish.c: `notes publish` run as a user would (NOTES_BIN): the
 * sample notes and a meeting edited by three people (who met only through
 * a git remote) published to a bare repository by file:// and to a folder;
 * every published file verifies with `notes verify` in a fresh clone, one
 * changed byte is reported with its line, the index lists decisions and
 * owners, publishing again commits nothing, an edit changes only its note's
 * files, and bad targets are clear errors; a hostile repository (its
 * notes/ folder a symbolic link out of it) writes nothing outside.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "clirun.h"
#include "shell.h"
#include "tmpdir.h"

static char *work;

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

/* A shell command in the work folder; all of its output (static). */
#define SH(...) test_sh(work, __VA_ARGS__)

static char *sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char rel[256];
    snprintf(rel, sizeof(rel), "samples/%s", name);
    return test_path(shared ? shared : "../shared", rel);
}

static char review[33]; /* the note three people edited */

/* A (Ana) with the samples and "Design review" in space team; B (Bob) and
 * C (Cid) edit the review through a git remote, never online together. */
static void setup(void)
{
    SH("rm -rf a b c sync.git pub.git clone folder && "
       "git init -q --bare sync.git");
    clirun_ok(RUN("a", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("a", "space", "create", "team"), NULL);
    const char *samples[] = {"community-2023-05-15.md", "kraft-2022-04-06.md"};
    for (int i = 0; i < 2; i++) {
        char *p = sample(samples[i]);
        char *id = clirun_first_line(RUN("a", "import", p));
        clirun_ok(RUN("a", "space", "add", "team", id), NULL);
        free(id);
        free(p);
    }
    char *id = clirun_first_line(RUN("a", "new", "Design review"));
    snprintf(review, sizeof(review), "%s", id);
    free(id);
    clirun_ok(RUN("a", "set", review, "datetime", "2024-03-01T10:00:00+01:00"),
              NULL);
    clirun_ok(RUN("a", "set", review, "participants+", "Bob"), NULL);
    clirun_ok(RUN("a", "set", review, "participants+", "Cid"), NULL);
    clirun_ok(RUN("a", "space", "add", "team", review), NULL);
    clirun_ok(RUN("a", "append", review, "Ana: the API draft is ready"), NULL);
    char *code = clirun_first_line(
        RUN("a", "invite", "team", "--address", "127.0.0.1:1"));
    clirun_ok(RUN("a", "remote", "add", "origin", "sync.git"), NULL);
    clirun_ok(RUN("a", "sync", "origin"), NULL);
    const char *who[] = {"b", "Bob", "c", "Cid"};
    for (int i = 0; i < 4; i += 2) {
        clirun_ok(RUN(who[i], "init", "--name", who[i + 1]), NULL);
        struct clirun_out r = RUN(who[i], "join", code);
        clirun_expect(r, 3, "joined space team", NULL);
        clirun_free(&r);
        clirun_ok(RUN(who[i], "remote", "add", "origin", "sync.git"), NULL);
        clirun_ok(RUN(who[i], "sync", "origin"), NULL);
    }
    free(code);
    clirun_ok(RUN("b", "todo", review, "Write the migration guide", "--owner",
                  "Bob"), NULL);
    clirun_ok(RUN("b", "sync", "origin"), NULL);
    clirun_ok(RUN("c", "sync", "origin"), NULL);
    clirun_ok(RUN("c", "decide", review, "Ship the v2 API in April",
                  "--owner", "Cid"), NULL);
    clirun_ok(RUN("c", "sync", "origin"), NULL);
    clirun_ok(RUN("a", "sync", "origin"), NULL);
}

static void test_publish_url(void **state)
{
    (void)state;
    setup();
    SH("git init -q --bare pub.git");
    char url[1024];
    snprintf(url, sizeof(url), "file://%s/pub.git", work);
    clirun_ok(RUN("a", "publish", "team", "--to", url),
              "Published 3 meetings of space team");
    SH("git clone -q -b main pub.git clone");
    /* One file per meeting, named from date and title, with sidecars. */
    const char *ls = SH("cd clone/notes && ls");
    assert_non_null(strstr(ls, "2023-05-15-community-gathering-may-15-2023.md\n"));
    assert_non_null(strstr(ls, "2022-04-06-kraft-meeting.md\n"));
    assert_non_null(strstr(ls, "2024-03-01-design-review.md\n"));
    assert_non_null(strstr(ls, "2024-03-01-design-review.md.attest\n"));
    assert_non_null(strstr(ls, "index.md\n"));
    /* Every one verifies with no replica; the review names its 3 authors. */
    const char *files[] = {"2023-05-15-community-gathering-may-15-2023.md",
                           "2022-04-06-kraft-meeting.md",
                           "2024-03-01-design-review.md"};
    for (int i = 0; i < 3; i++) {
        char f[256];
        snprintf(f, sizeof(f), "clone/notes/%s", files[i]);
        struct clirun_out r = RUN(NULL, "verify", f);
        clirun_expect(r, 0, NULL, NULL);
        if (i == 2) {
            assert_non_null(strstr(r.out, "Ana"));
            assert_non_null(strstr(r.out, "Bob"));
            assert_non_null(strstr(r.out, "Cid"));
        }
        clirun_free(&r);
    }
    /* The index: meetings with decisions, action items and owners. */
    const char *idx = SH("cat clone/notes/index.md");
    assert_non_null(strstr(idx, "[Design review](2024-03-01-design-review.md)"));
    assert_non_null(strstr(idx, "Ship the v2 API in April (Cid)"));
    assert_non_null(strstr(idx, "- [ ] Bob: Write the migration guide"));
    assert_non_null(strstr(idx, "RăzvanD: Look for places"));
    assert_non_null(strstr(idx, "Next meeting: Monday, May 22, 2023"));
    /* The commit lists what it added. */
    assert_non_null(strstr(SH("git -C clone log -1 --format=%%B"),
                           "added:   notes/2024-03-01-design-review.md"));
    /* One changed byte: reported with its line. */
    SH("sed -i 's/Ana: the API/Ana: the APX/' "
       "clone/notes/2024-03-01-design-review.md");
    const char *line = SH("grep -n 'APX' clone/notes/2024-03-01-design-review.md"
                          " | cut -d: -f1");
    char want[64];
    snprintf(want, sizeof(want), "from line %d", atoi(line));
    assert_true(atoi(line) > 0);
    struct clirun_out r = RUN(NULL, "verify",
                              "clone/notes/2024-03-01-design-review.md");
    clirun_expect(r, 2, NULL, want);
    clirun_free(&r);
    /* Again with no edit: nothing committed. */
    const char *c0 = SH("git --git-dir=pub.git rev-list --count main");
    char count[16];
    snprintf(count, sizeof(count), "%s", c0);
    clirun_ok(RUN("a", "publish", "team", "--to", url), "Nothing changed");
    assert_string_equal(SH("git --git-dir=pub.git rev-list --count main"),
                        count);
    /* An edit: only that meeting's two files change. */
    clirun_ok(RUN("a", "append", review, "Ana: one more line"), NULL);
    clirun_ok(RUN("a", "publish", "team", "--to", url), "0 added, 1 changed");
    assert_string_equal(
        SH("git --git-dir=pub.git show --name-only --format= main"),
        "notes/2024-03-01-design-review.md\n"
        "notes/2024-03-01-design-review.md.attest\n");
}

static void test_publish_folder(void **state)
{
    (void)state;
    setup();
    /* An empty folder becomes a repository; --path and one named note. */
    SH("mkdir folder");
    clirun_ok(RUN("a", "publish", "team", review, "--to", "folder", "--path",
                  "meetings/2024/"), "Published 1 meeting");
    SH("test -f folder/meetings/2024/2024-03-01-design-review.md.attest");
    SH("test \"$(git -C folder rev-list --count HEAD)\" = 1");
    struct clirun_out r = RUN(NULL, "verify",
                              "folder/meetings/2024/2024-03-01-design-review.md");
    clirun_expect(r, 0, NULL, NULL);
    clirun_free(&r);
    /* A folder with other files and no repository is refused. */
    SH("mkdir -p other && echo hi > other/x");
    clirun_fails(RUN("a", "publish", "team", "--to", "other"), 1,
                 "neither a git repository nor empty");
    /* The wrong branch of a repository is refused, not switched. */
    clirun_fails(RUN("a", "publish", "team", "--to", "folder", "--branch",
                     "gh-pages"), 1, "is not on branch gh-pages");
    /* A note of another space, a path escaping, an unreachable URL. */
    clirun_fails(RUN("a", "publish", "team", "--to", "folder", "--path",
                     "../x"), 1, "--path");
    clirun_fails(RUN("a", "publish", "nosuch", "--to", "folder"), 1, NULL);
    clirun_fails(RUN("a", "publish", "team", "--to",
                     "file:///nonexistent/pub.git"), 3, "cannot clone");
}

/* A repository whose content is hostile (anyone who can push to it):
 * `notes` a symbolic link to a folder outside, `index.md` one to a file
 * outside. Nothing outside is written or removed; publish refuses the
 * linked folder (exit 3), and replaces a linked file by the file. */
static void test_publish_hostile_repo(void **state)
{
    (void)state;
    SH("rm -rf h hostile.git seed outside && mkdir outside && "
       "echo mine > outside/keep.txt && echo secret > outside/target && "
       "printf 'keep.txt\\n' > outside/.notes-publish");
    clirun_ok(RUN("h", "init", "--name", "Hal"), NULL);
    clirun_ok(RUN("h", "space", "create", "team"), NULL);
    char *id = clirun_first_line(RUN("h", "new", "Board meeting"));
    clirun_ok(RUN("h", "space", "add", "team", id), NULL);
    free(id);
    SH("git init -q --bare hostile.git && git init -q -b main seed && "
       "ln -s '%s/outside' seed/notes && mkdir seed/minutes && "
       "ln -s '%s/outside/target' seed/minutes/index.md && "
       "git -C seed add -A && "
       "git -C seed -c user.name=x -c user.email=x@x commit -qm hostile && "
       "git -C seed push -q ../hostile.git main", work, work);
    char url[1024];
    snprintf(url, sizeof(url), "file://%s/hostile.git", work);
    const char *before = SH("git --git-dir=hostile.git rev-parse main");
    char head[64];
    snprintf(head, sizeof(head), "%s", before);
    clirun_fails(RUN("h", "publish", "team", "--to", url), 3,
                 "is a symbolic link");
    assert_string_equal(SH("ls -A outside | tr '\\n' ' '"),
                        ".notes-publish keep.txt target ");
    assert_string_equal(SH("cat outside/keep.txt outside/target"),
                        "mine\nsecret\n");
    assert_string_equal(SH("git --git-dir=hostile.git rev-parse main"), head);
    /* --path minutes/: index.md there is a link; the file replaces it. */
    clirun_ok(RUN("h", "publish", "team", "--to", url, "--path", "minutes"),
              "Published 1 meeting");
    assert_string_equal(SH("cat outside/target"), "secret\n");
    SH("rm -rf clone && git clone -q -b main hostile.git clone && "
       "test -f clone/minutes/index.md && test ! -L clone/minutes/index.md");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_url),
        cmocka_unit_test(test_publish_folder),
        cmocka_unit_test(test_publish_hostile_repo),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("publish");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
