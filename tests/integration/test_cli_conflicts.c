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

static struct clirun_out run(const char *home, ...)
{
    va_list ap;
    va_start(ap, home);
    const char *arg0 = va_arg(ap, const char *);
    struct clirun_out c = clirun_va(work, home, NULL, NULL, arg0, ap);
    va_end(ap);
    assert_int_not_equal(c.status, -1);
    return c;
}
#define RUN(home, ...) run(home, __VA_ARGS__, NULL)

static void expect(struct clirun_out r, int status, const char *in_out,
                   const char *in_err)
{
    if (r.status != status || (in_out && !strstr(r.out, in_out)) ||
        (in_err && !strstr(r.err, in_err)))
        print_message("status %d\nstdout:\n%s\nstderr:\n%s\n", r.status, r.out,
                      r.err);
    assert_int_equal(r.status, status);
    if (in_out)
        assert_non_null(strstr(r.out, in_out));
    if (in_err)
        assert_non_null(strstr(r.err, in_err));
}

static void ok(struct clirun_out r, const char *in_out)
{
    expect(r, 0, in_out, NULL);
    clirun_free(&r);
}

static char *first_line(struct clirun_out r)
{
    expect(r, 0, NULL, NULL);
    char *nl = strchr(r.out, '\n');
    if (nl)
        *nl = 0;
    char *s = strdup(r.out);
    clirun_free(&r);
    return s;
}

static json_t *json_of(struct clirun_out r)
{
    json_error_t err;
    expect(r, 0, NULL, NULL);
    json_t *j = json_loads(r.out, 0, &err);
    if (!j)
        print_message("bad json: %s\n%s\n", err.text, r.out);
    assert_non_null(j);
    clirun_free(&r);
    return j;
}

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
    json_t *log = json_of(RUN(home, "log", id, "--json"));
    int n = (int)json_array_size(log);
    json_decref(log);
    return n;
}

static void test_concurrent_line(void **state)
{
    (void)state;
    ok(RUN("ana", "init", "--name", "Ana"), NULL);
    ok(RUN("bo", "init", "--name", "Bo"), NULL);
    char *id = first_line(RUN("ana", "new", "Weekly sync"));
    ok(RUN("ana", "append", id, "- Release on Friday"), NULL);
    ok(RUN("ana", "append", id, "- Next meeting Tuesday"), NULL);
    ok(RUN("ana", "space", "create", "team"), NULL);
    ok(RUN("ana", "space", "add", "team", id), NULL);
    int port;
    g_serve = start_serve("ana", &port);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    char *code = first_line(RUN("ana", "invite", "team", "--address", addr));
    ok(RUN("bo", "join", code), "received");

    /* Both rewrite the bullet; alone, neither hears of a conflict. */
    struct clirun_out r = edit_sed("ana", id, "s/- Release on Friday/- Release is out today (Ana)/");
    expect(r, 0, "recorded", NULL);
    assert_null(strstr(r.err, "edited concurrently"));
    clirun_free(&r);
    r = edit_sed("bo", id, "s/- Release on Friday/- Release slips to Monday (Bo)/");
    expect(r, 0, "recorded", NULL);
    assert_null(strstr(r.err, "edited concurrently"));
    clirun_free(&r);

    /* The sync merges them and says so, one line for the note. */
    r = RUN("bo", "sync", addr);
    expect(r, 0, "synced", "note Weekly sync: 1 line edited concurrently (line ");
    char want[200];
    snprintf(want, sizeof(want), "): notes show %.8s --conflicts\n", id);
    assert_non_null(strstr(r.err, want));
    clirun_free(&r);

    /* Listed with both versions and who wrote them. */
    json_t *j = json_of(RUN("bo", "show", id, "--conflicts", "--json"));
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
    expect(r, 0, want, NULL);
    assert_non_null(strstr(r.out, "      - Release slips to Monday (Bo)\n"));
    assert_non_null(strstr(r.out, "      - Release is out today (Ana)\n"));
    assert_non_null(strstr(r.out, "keep one: notes resolve"));
    assert_null(strstr(r.out, "Next meeting"));
    clirun_free(&r);

    /* While it lasts, an edit elsewhere in the note reminds of it. */
    r = edit_sed("bo", id, "s/- Next meeting Tuesday/- Next meeting Wednesday/");
    expect(r, 0, "recorded", "note Weekly sync: 1 line edited concurrently");
    clirun_free(&r);

    /* Wrong choices: refused, nothing recorded. */
    int before = log_count("bo", id);
    char ln[16], bad[16], keep[16];
    snprintf(ln, sizeof(ln), "%d", line);
    snprintf(bad, sizeof(bad), "%d", line + 1);
    snprintf(keep, sizeof(keep), "%d", bo_side);
    r = RUN("bo", "resolve", id, bad, "--keep", "1");
    expect(r, 1, NULL, "was not edited concurrently");
    clirun_free(&r);
    r = RUN("bo", "resolve", id, ln, "--keep", "3");
    expect(r, 1, NULL, "has 2 versions");
    clirun_free(&r);
    r = RUN("bo", "resolve", id, ln, "--keep", "x");
    expect(r, 1, NULL, "numbers from 1");
    clirun_free(&r);
    r = RUN("bo", "resolve", id, ln);
    expect(r, 1, NULL, "usage");
    clirun_free(&r);
    assert_int_equal(log_count("bo", id), before);

    /* Bo keeps his version: the line reads so, the conflict is gone here
     * and, after the next sync, at Ana's too. */
    ok(RUN("bo", "resolve", id, ln, "--keep", keep), "kept Bo");
    assert_int_equal(log_count("bo", id), before + 1);
    r = RUN("bo", "show", id, "--conflicts");
    expect(r, 0, "no conflicts\n", NULL);
    clirun_free(&r);
    r = RUN("bo", "show", id);
    expect(r, 0, "\n- Release slips to Monday (Bo)\n", NULL);
    assert_null(strstr(r.out, "(Ana)"));
    clirun_free(&r);
    r = RUN("bo", "sync", addr);
    expect(r, 0, "synced", NULL);
    assert_null(strstr(r.err, "edited concurrently"));
    clirun_free(&r);
    r = RUN("ana", "show", id, "--conflicts");
    expect(r, 0, "no conflicts\n", NULL);
    clirun_free(&r);
    ok(RUN("ana", "show", id), "\n- Release slips to Monday (Bo)\n");
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
