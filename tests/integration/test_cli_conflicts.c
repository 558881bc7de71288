/*
 * test_cli_conflicts.c: lines edited concurrently, as users meet them: two
 * replicas rewrite one bullet with `notes edit`, `notes sync` merges them
 * and says so on stderr, `notes show --conflicts` (and --json) lists both
 * versions with their authors, `notes edit` warns while it lasts, and
 * `notes resolve` keeps one (its errors change nothing).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

static const char *bin;
static char *work;
static pid_t g_serve = -1; /* stopped by teardown */

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

/* `notes edit` with an editor that runs `sed -i EXPR` on the file. */
static struct clirun_out edit_sed(const char *home, const char *id,
                                  const char *expr)
{
    char *script = test_path(work, "editor.sh");
    char body[1024];
    snprintf(body, sizeof(body), "#!/bin/sh\nsed -i '%s' \"$1\"\n", expr);
    assert_int_equal(test_spit(script, body, strlen(body)), 0);
    chmod(script, 0755);
    setenv("EDITOR", script, 1);
    unsetenv("VISUAL");
    struct clirun_out r = RUN(home, "edit", id);
    unsetenv("EDITOR");
    free(script);
    return r;
}

static pid_t start_serve(const char *home, int *port)
{
    char *home_path = test_path(work, home);
    char *out = test_path(work, "serve.out");
    unlink(out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fo, 2);
        setenv("NOTES_HOME", home_path, 1);
        execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--no-ui",
              "--no-discovery", (char *)NULL);
        _exit(127);
    }
    *port = 0;
    for (int i = 0; i < 200 && !*port; i++) { /* at most 10 s */
        size_t n;
        char *text = (char *)test_slurp(out, &n);
        const char *p = text ? strstr(text, "listening on port ") : NULL;
        if (p)
            *port = atoi(p + 18);
        free(text);
        if (!*port)
            usleep(50 * 1000);
    }
    assert_true(*port > 0);
    free(home_path);
    free(out);
    return pid;
}

static int teardown_serve(void **state)
{
    (void)state;
    if (g_serve > 0) {
        int st;
        kill(g_serve, SIGTERM);
        int i = 0;
        for (; i < 100 && waitpid(g_serve, &st, WNOHANG) != g_serve; i++)
            usleep(50 * 1000); /* at most 5 s, then kill */
        if (i == 100) {
            kill(g_serve, SIGKILL);
            waitpid(g_serve, &st, 0);
        }
        g_serve = -1;
    }
    return 0;
}

static int log_count(const char *home, const char *id)
{
    json_t *log = clirun_json(RUN(home, "log", id, "--json"));
    int n = (int)json_array_size(log);
    json_decref(log);
    return n;
}

static void test_concurrent_line(void **state)
{
    (void)state;
    clirun_ok(RUN("ana", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("bo", "init", "--name", "Bo"), NULL);
    char *id = clirun_first_line(RUN("ana", "new", "Weekly sync"));
    clirun_ok(RUN("ana", "append", id, "- Release on Friday"), NULL);
    clirun_ok(RUN("ana", "append", id, "- Next meeting Tuesday"), NULL);
    clirun_ok(RUN("ana", "space", "create", "team"), NULL);
    clirun_ok(RUN("ana", "space", "add", "team", id), NULL);
    int port;
    g_serve = start_serve("ana", &port);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    char *code = clirun_first_line(RUN("ana", "invite", "team", "--address", addr));
    clirun_ok(RUN("bo", "join", code), "received");

    /* Both rewrite the bullet; alone, neither hears of a conflict. */
    struct clirun_out r = edit_sed("ana", id, "s/- Release on Friday/- Release is out today (Ana)/");
    clirun_expect(r, 0, "recorded", NULL);
    assert_null(strstr(r.err, "edited concurrently"));
    clirun_free(&r);
    r = edit_sed("bo", id, "s/- Release on Friday/- Release slips to Monday (Bo)/");
    clirun_expect(r, 0, "recorded", NULL);
    assert_null(strstr(r.err, "edited concurrently"));
    clirun_free(&r);

    /* The sync merges them and says so, one line for the note. */
    r = RUN("bo", "sync", addr);
    clirun_expect(r, 0, "synced", "note Weekly sync: 1 line edited concurrently (line ");
    char want[200];
    snprintf(want, sizeof(want), "): notes show %.8s --conflicts\n", id);
    assert_non_null(strstr(r.err, want));
    clirun_free(&r);

    /* Listed with both versions and who wrote them. */
    json_t *j = clirun_json(RUN("bo", "show", id, "--conflicts", "--json"));
    json_t *lc = json_object_get(j, "line_conflicts");
    assert_int_equal(json_array_size(lc), 1);
    json_t *c0 = json_array_get(lc, 0);
    int line = (int)json_integer_value(json_object_get(c0, "line"));
    assert_true(line > 1);
    json_t *sides = json_object_get(c0, "sides");
    assert_int_equal(json_array_size(sides), 2);
    int bo_side = 0;
    for (size_t k = 0; k < 2; k++) {
        json_t *s = json_array_get(sides, k);
        const char *who = json_string_value(json_object_get(s, "author"));
        const char *text = json_string_value(json_object_get(s, "text"));
        assert_int_equal(strlen(json_string_value(json_object_get(s, "change"))), 12);
        if (strstr(who, "Bo")) {
            bo_side = (int)k + 1;
            assert_string_equal(text, "- Release slips to Monday (Bo)\n");
        } else {
            assert_non_null(strstr(who, "Ana"));
            assert_string_equal(text, "- Release is out today (Ana)\n");
        }
    }
    assert_true(bo_side > 0);
    const char *merged = json_string_value(json_object_get(c0, "merged"));
    assert_non_null(strstr(merged, "(Ana)"));
    assert_non_null(strstr(merged, "(Bo)"));
    /* The conflicts only, not the whole note, on stdout. */
    r = RUN("bo", "show", id, "--conflicts");
    snprintf(want, sizeof(want), "conflict: line %d edited concurrently", line);
    clirun_expect(r, 0, want, NULL);
    assert_non_null(strstr(r.out, "      - Release slips to Monday (Bo)\n"));
    assert_non_null(strstr(r.out, "      - Release is out today (Ana)\n"));
    assert_non_null(strstr(r.out, "keep one: notes resolve"));
    assert_null(strstr(r.out, "Next meeting"));
    clirun_free(&r);

    /* While it lasts, an edit elsewhere in the note reminds of it. */
    r = edit_sed("bo", id, "s/- Next meeting Tuesday/- Next meeting Wednesday/");
    clirun_expect(r, 0, "recorded", "note Weekly sync: 1 line edited concurrently");
    clirun_free(&r);

    /* Wrong choices: refused, nothing recorded. */
    int before = log_count("bo", id);
    char ln[16], bad[16], keep[16];
    snprintf(ln, sizeof(ln), "%d", line);
    snprintf(bad, sizeof(bad), "%d", line + 1);
    snprintf(keep, sizeof(keep), "%d", bo_side);
    r = RUN("bo", "resolve", id, bad, "--keep", "1");
    clirun_expect(r, 1, NULL, "was not edited concurrently");
    clirun_free(&r);
    r = RUN("bo", "resolve", id, ln, "--keep", "3");
    clirun_expect(r, 1, NULL, "has 2 versions");
    clirun_free(&r);
    r = RUN("bo", "resolve", id, ln, "--keep", "x");
    clirun_expect(r, 1, NULL, "numbers from 1");
    clirun_free(&r);
    r = RUN("bo", "resolve", id, ln);
    clirun_expect(r, 1, NULL, "usage");
    clirun_free(&r);
    assert_int_equal(log_count("bo", id), before);

    /* Bo keeps his version: the line reads so, the conflict is gone here
     * and, after the next sync, at Ana's too. */
    clirun_ok(RUN("bo", "resolve", id, ln, "--keep", keep), "kept Bo");
    assert_int_equal(log_count("bo", id), before + 1);
    r = RUN("bo", "show", id, "--conflicts");
    clirun_expect(r, 0, "no conflicts\n", NULL);
    clirun_free(&r);
    r = RUN("bo", "show", id);
    clirun_expect(r, 0, "\n- Release slips to Monday (Bo)\n", NULL);
    assert_null(strstr(r.out, "(Ana)"));
    clirun_free(&r);
    r = RUN("bo", "sync", addr);
    clirun_expect(r, 0, "synced", NULL);
    assert_null(strstr(r.err, "edited concurrently"));
    clirun_free(&r);
    r = RUN("ana", "show", id, "--conflicts");
    clirun_expect(r, 0, "no conflicts\n", NULL);
    clirun_free(&r);
    clirun_ok(RUN("ana", "show", id), "\n- Release slips to Monday (Bo)\n");
    json_decref(j);
    free(code);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_concurrent_line, teardown_serve),
    };
    bin = getenv("NOTES_BIN");
    if (!bin) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("cliconf");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
