/*
 * test_faults.c: storage calls failing under real commands. With
 * faultinject.so preloaded, the Nth write / pwrite / fsync / fdatasync /
 * rename / link of a `notes` command fails with ENOSPC or EIO, or writes
 * short. Every such failure must end in a clear error (non-zero exit, a
 * "notes: ..." message), leave every note's log byte for byte as it was,
 * and the replica must still verify.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tmpdir.h"

static const char *bin, *preload;
static char *work, *home;

static int run(const char *fault, char **err_out, const char *a1, const char *a2,
               const char *a3, const char *a4)
{
    char *errf = test_path(work, "stderr");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fo = open("/dev/null", O_WRONLY);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("NOTES_HOME", home, 1);
        if (fault) {
            setenv("LD_PRELOAD", preload, 1);
            setenv("NOTES_FAULT", fault, 1);
            setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
        }
        char *argv[] = {(char *)(uintptr_t)bin, (char *)(uintptr_t)a1,
                        (char *)(uintptr_t)a2, (char *)(uintptr_t)a3,
                        (char *)(uintptr_t)a4, NULL};
        execv(bin, argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    size_t n;
    char *e = (char *)test_slurp(errf, &n);
    if (err_out)
        *err_out = e;
    else
        free(e);
    free(errf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* BLAKE2b of every note log and state file, in name order: the store. */
static void snapshot(uint8_t out[32])
{
    char *dir = test_path(home, "notes");
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if ((l > 4 && !strcmp(nm + l - 4, ".log")) ||
            (l > 6 && !strcmp(nm + l - 6, ".state"))) {
            char *p = test_path(dir, nm);
            size_t len;
            unsigned char *b = test_slurp(p, &len);
            crypto_generichash_update(&st, (const uint8_t *)nm, l);
            if (b)
                crypto_generichash_update(&st, b, len);
            free(b);
            free(p);
        }
        free(names[i]);
    }
    free(names);
    free(dir);
    crypto_generichash_final(&st, out, 32);
}

static void test_faults_storage(void **state)
{
    (void)state;
    static const char *calls[] = {"write", "pwrite", "fsync", "fdatasync",
                                  "rename", "link"};
    static const char *errs[] = {"ENOSPC", "EIO", "SHORT"};
    char md[4200];
    snprintf(md, sizeof(md), "%s/in.md", work);
    test_spit(md, "---\ntitle: Imported\n---\n## TODOs\n\nRD: thing\n", 43);
    assert_int_equal(run(NULL, NULL, "init", "--name", "F", NULL), 0);
    assert_int_equal(run(NULL, NULL, "new", "Target", NULL, NULL), 0);
    struct {
        const char *a1, *a2, *a3, *a4;
    } cmds[] = {
        {"append", "Target", "a line", NULL},
        {"set", "Target", "title", "Renamed"},
        {"new", "Another", NULL, NULL},
        {"import", "--again", md, NULL}, /* each run a new note */
        {"compact", NULL, NULL, NULL},
    };
    size_t failures = 0, successes = 0;
    for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
        for (size_t k = 0; k < sizeof(calls) / sizeof(calls[0]); k++) {
            for (size_t e = 0; e < 3; e++) {
                if (e == 2 && strcmp(calls[k], "write") && strcmp(calls[k], "pwrite"))
                    continue; /* short writes only for writes */
                for (int nth = 1; nth <= 4; nth++) {
                    char fault[64];
                    uint8_t before[32], after[32];
                    snprintf(fault, sizeof(fault), "%s:%d:%s", calls[k], nth,
                             errs[e]);
                    snapshot(before);
                    char *err = NULL;
                    int rc = run(fault, &err, cmds[c].a1, cmds[c].a2, cmds[c].a3,
                                 cmds[c].a4);
                    snapshot(after);
                    if (rc == 0) {
                        /* The fault was not on this command's path (or was
                         * a write it could retry): fine, state moved on. */
                        successes++;
                        free(err);
                        break;
                    }
                    failures++;
                    if (!err || strncmp(err, "notes: ", 7) != 0)
                        fail_msg("%s under %s: exit %d without a message: %s",
                                 cmds[c].a1, fault, rc, err ? err : "(none)");
                    if (memcmp(before, after, 32) != 0)
                        fail_msg("%s under %s changed the store (%s)",
                                 cmds[c].a1, fault, err);
                    free(err);
                    char *verr = NULL;
                    if (run(NULL, &verr, "verify", NULL, NULL, NULL) != 0)
                        fail_msg("verify fails after %s under %s: %s",
                                 cmds[c].a1, fault, verr);
                    free(verr);
                }
            }
        }
    }
    print_message("# %zu injected failures refused cleanly, %zu runs missed "
                  "the fault and succeeded\n", failures, successes);
    assert_true(failures > 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_storage),
    };
    bin = getenv("NOTES_BIN");
    preload = getenv("NOTES_FAULTINJECT");
    if (!bin || !preload || sodium_init() < 0)
        return 1;
    work = test_tmpdir("faults");
    home = test_path(work, "home");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(home);
    test_rmtree(work);
    return rc;
}
