/* clirun.c: see clirun.h. */
#include <assert.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

struct clirun_out clirun(const char *work, const char *home, const char *pass,
                         const char *stdin_text, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out r = clirun_va(work, home, pass, stdin_text, arg0, ap);
    va_end(ap);
    return r;
}

struct clirun_out clirun_va(const char *work, const char *home,
                            const char *pass, const char *stdin_text,
                            const char *arg0, va_list ap)
{
    struct clirun_out r = {-1, NULL, NULL};
    const char *bin = getenv("NOTES_BIN");
    char *argv[40];
    int n = 0;
    if (!bin)
        return r;
    argv[n++] = (char *)(uintptr_t)bin;
    for (const char *a = arg0; a && n < 39; a = va_arg(ap, const char *))
        argv[n++] = (char *)(uintptr_t)a;
    argv[n] = NULL;
    char *home_path = test_path(work, home ? home : "none");
    char *o = test_path(work, ".stdout"), *e = test_path(work, ".stderr");
    char *in = test_path(work, ".stdin");
    test_spit(in, stdin_text ? stdin_text : "", stdin_text ? strlen(stdin_text) : 0);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open(in, O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0 || chdir(work) != 0)
            _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        dup2(fi, 0);
        setenv("NOTES_HOME", home_path, 1);
        setenv("NO_COLOR", "1", 1);
        if (pass)
            setenv("NOTES_PASSPHRASE", pass, 1);
        else
            unsetenv("NOTES_PASSPHRASE");
        setsid(); /* no controlling terminal: never prompt */
        execv(bin, argv);
        _exit(127);
    }
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, 0) == pid) {
        size_t len;
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        r.out = (char *)test_slurp(o, &len);
        r.err = (char *)test_slurp(e, &len);
    }
    free(home_path);
    free(o);
    free(e);
    free(in);
    return r;
}

void clirun_free(struct clirun_out *o)
{
    free(o->out);
    free(o->err);
    o->out = o->err = NULL;
}
