/*
 * test_crash.c: SIGKILL a writing `notes` process at random moments, many
 * times (NOTES_CRASH_KILLS, default 1,000), then check that the replica
 * opens, `notes verify` passes, and every change whose commit was reported
 * before the kill is present.
 *
 * Writers alternate between `notes new TITLE` (a new log file; it reports
 * by printing the note's id after the commit) and `notes append` to one
 * long note (a growing log; it reports by exiting 0, and we count it as
 * reported only if we saw that exit). Kills land anywhere: before, during
 * or after the write and its fsync.
 */
#include <fcntl.h>
#include <limits.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

static const char *bin;
static char *home;

/* Run notes, maybe kill it after `kill_us` microseconds; returns its
 * stdout (malloc'd) and sets *exited_ok when it exited 0 on its own. */
static int capture_stderr;

static char *run(char *const argv[], long kill_us, int *exited_ok)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        if (capture_stderr) {
            dup2(fds[1], 2); /* verify's problems, for the report */
        } else {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
        }
        close(fds[0]);
        setenv("NOTES_HOME", home, 1);
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);
    if (kill_us >= 0) {
        struct timespec ts = {kill_us / 1000000, (kill_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap);
    ssize_t r;
    while ((r = read(fds[0], out + n, cap - 1 - n)) > 0) {
        n += (size_t)r;
        if (n + 1 == cap) {
            out = realloc(out, cap * 2);
            cap *= 2;
        }
    }
    out[n] = 0;
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    *exited_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    return out;
}

static void test_crash_kills(void **state)
{
    (void)state;
    const char *e = getenv("NOTES_CRASH_KILLS");
    int kills = e ? atoi(e) : 1000;
    int ok;
    char *argv_init[] = {(char *)(uintptr_t)bin, "init", "--name", "Crash", NULL};
    free(run(argv_init, -1, &ok));
    assert_true(ok);
    char *argv_new[] = {(char *)(uintptr_t)bin, "new", "long note", NULL};
    char *long_id = run(argv_new, -1, &ok);
    assert_true(ok);
    long_id[32] = 0;

    /* Calibrate: how long does one commit take here? The shortest of five
     * (one slow moment of a loaded machine would spread the kills past
     * the end of most commits, and too few would land). */
    long span = LONG_MAX;
    for (int k = 0; k < 5; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        char *argv_app[] = {(char *)(uintptr_t)bin, "append", long_id, "calibration", NULL};
        free(run(argv_app, -1, &ok));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        if (us < span)
            span = us;
    }
    if (span < 1000)
        span = 1000;

    char **reported = calloc((size_t)kills + 1, sizeof(*reported));
    size_t nreported = 0, appends_ok = 5, /* the calibration */ killed = 0;
    uint64_t seed = 42;
    for (int i = 0; i < kills; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        long at = (long)(seed % (uint64_t)(span + span / 2));
        char title[64], line[64];
        snprintf(title, sizeof(title), "crash note %d", i);
        snprintf(line, sizeof(line), "line %d", i);
        char *argv_n[] = {(char *)(uintptr_t)bin, "new", title, NULL};
        char *argv_a[] = {(char *)(uintptr_t)bin, "append", long_id, line, NULL};
        char *out = run(i % 2 ? argv_a : argv_n, at, &ok);
        killed += !ok;
        /* Reported: the id line the command prints after its commit. */
        if (i % 2 == 0 && strlen(out) == 33 && out[32] == '\n' &&
            strspn(out, "0123456789abcdef") == 32) {
            out[32] = 0;
            reported[nreported++] = out;
            continue;
        }
        if (i % 2 && ok)
            appends_ok++;
        free(out);
    }
    print_message("# %d kills attempted over ~%ld us commits: %zu processes "
                  "killed, %zu new notes and %zu appends reported\n",
                  kills, span, killed, nreported, appends_ok);
    assert_true(killed > (size_t)kills / 4); /* the kills did land */

    /* The replica opens and verifies. */
    char *argv_v[] = {(char *)(uintptr_t)bin, "verify", NULL};
    capture_stderr = 1;
    char *vout = run(argv_v, -1, &ok);
    capture_stderr = 0;
    if (!ok) {
        /* Only the lines that are not "ok". */
        for (char *l = strtok(vout, "\n"); l; l = strtok(NULL, "\n"))
            if (!strstr(l, ": ok"))
                print_message("verify: %s\n", l);
    }
    assert_true(ok);
    free(vout);
    /* Every reported note is there. */
    char *argv_l[] = {(char *)(uintptr_t)bin, "list", "--json", NULL};
    char *lout = run(argv_l, -1, &ok);
    assert_true(ok);
    json_error_t err;
    json_t *list = json_loads(lout, 0, &err);
    assert_non_null(list);
    for (size_t i = 0; i < nreported; i++) {
        int found = 0;
        for (size_t k = 0; k < json_array_size(list) && !found; k++)
            found = !strcmp(json_string_value(json_object_get(
                                json_array_get(list, k), "id")),
                            reported[i]);
        if (!found)
            fail_msg("reported note %s is missing", reported[i]);
        free(reported[i]);
    }
    json_decref(list);
    free(lout);
    /* The long note holds at least the appends that reported success. */
    char *argv_log[] = {(char *)(uintptr_t)bin, "log", long_id, "--json", NULL};
    char *logout = run(argv_log, -1, &ok);
    assert_true(ok);
    json_t *log = json_loads(logout, 0, &err);
    assert_non_null(log);
    /* One change per append plus the note's first. */
    assert_true(json_array_size(log) >= appends_ok + 1);
    json_decref(log);
    free(logout);
    free(reported);
    free(long_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_kills),
    };
    bin = getenv("NOTES_BIN");
    if (!bin)
        return 1;
    char *dir = test_tmpdir("crash");
    home = test_path(dir, "home");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(home);
    test_rmtree(dir);
    return rc;
}
