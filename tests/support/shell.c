/*
 * shell.c: shell commands in a test's work folder (shell.h). The test
 * links cmocka.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell.h"

static char out[65536];

/* cmd = "cd 'WORK' && { CMD; }" and the tail. */
__attribute__((format(printf, 3, 0))) static void build(
    char cmd[8192], const char *work, const char *fmt, va_list ap,
    const char *tail)
{
    int k = snprintf(cmd, 8192, "cd '%s' && { ", work);
    vsnprintf(cmd + k, 8192 - (size_t)k, fmt, ap);
    strncat(cmd, tail, 8192 - strlen(cmd) - 1);
}

__attribute__((format(printf, 2, 0))) static const char *vsh(
    const char *work, const char *fmt, va_list ap)
{
    char cmd[8192], rest[4096];
    build(cmd, work, fmt, ap, "; }");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    /* What does not fit is read all the same: a writer cut off by a
     * closed pipe would fail for the wrong reason. */
    while (fread(rest, 1, sizeof(rest), p) > 0)
        ;
    int st = pclose(p);
    if (st != 0)
        print_message("command failed (%d): %s\n%s\n", st, cmd, out);
    assert_int_equal(st, 0);
    return out;
}

const char *test_sh(const char *work, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *r = vsh(work, fmt, ap);
    va_end(ap);
    return r;
}

const char *test_sh_line(const char *work, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsh(work, fmt, ap);
    va_end(ap);
    out[strcspn(out, "\n")] = 0;
    return out;
}

int test_sh_status(const char *work, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    build(cmd, work, fmt, ap, "; } >/dev/null 2>&1");
    va_end(ap);
    int st = system(cmd);
    if (st != 0)
        print_message("command failed (%d): %s\n", st, cmd);
    return st;
}
