/*
 * shell.h: shell commands in a test's work folder (git plumbing playing
 * the attacker, files put in place, a tree listed), for cmocka tests: a
 * command that fails fails the test, after printing what ran.
 */
#ifndef NOTES_TEST_SHELL_H
#define NOTES_TEST_SHELL_H

/* `cd 'WORK' && { CMD; }` with CMD from fmt: all it wrote on stdout
 * (static, the first 64 KiB; the rest is read and dropped). */
const char *test_sh(const char *work, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same, its first line only (static, without the newline). */
const char *test_sh_line(const char *work, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The same with its output and errors dropped, and a failure returned
 * (and printed) instead of failing the test: 0 or the wait status. */
int test_sh_status(const char *work, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
