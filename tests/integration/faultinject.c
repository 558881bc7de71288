/*
 * faultinject.c: an LD_PRELOAD library that makes one storage call fail.
 *   NOTES_FAULT="CALL:N:ERR"   CALL: write, pwrite, fsync, fdatasync,
 *                              rename, link; N: fail the Nth such call
 *                              (1-based); ERR: ENOSPC, EIO, or SHORT (a
 *                              write that stores only half its bytes).
 * Used by test_faults.c to check that every failure of the storage path
 * ends in a clear error and leaves the replica as it was.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static char call[32];
static long target = -1, seen;
static int err, shorten, parsed;

static void parse(void)
{
    const char *f = getenv("NOTES_FAULT");
    parsed = 1;
    if (!f)
        return;
    char e[16] = "";
    if (sscanf(f, "%31[a-z]:%ld:%15s", call, &target, e) != 3)
        return;
    err = !strcmp(e, "EIO") ? EIO : ENOSPC;
    shorten = !strcmp(e, "SHORT");
}

/* Whether this call of `name` is the one to fail. */
static int hit(const char *name)
{
    if (!parsed)
        parse();
    if (target < 0 || strcmp(name, call) != 0)
        return 0;
    return ++seen == target;
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

ssize_t write(int fd, const void *p, size_t n)
{
    ssize_t (*real)(int, const void *, size_t) =
        REAL("write", ssize_t(*)(int, const void *, size_t));
    if (fd > 2 && hit("write")) {
        if (shorten && n > 1)
            return real(fd, p, n / 2);
        errno = err;
        return -1;
    }
    return real(fd, p, n);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
    ssize_t (*real)(int, const void *, size_t, off_t) =
        REAL("pwrite", ssize_t(*)(int, const void *, size_t, off_t));
    if (hit("pwrite")) {
        if (shorten && n > 1)
            return real(fd, p, n / 2, off);
        errno = err;
        return -1;
    }
    return real(fd, p, n, off);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
    return pwrite(fd, p, n, off);
}

int fsync(int fd)
{
    if (hit("fsync")) {
        errno = err;
        return -1;
    }
    return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    if (hit("fdatasync")) {
        errno = err;
        return -1;
    }
    return REAL("fdatasync", int (*)(int))(fd);
}

int rename(const char *a, const char *b)
{
    if (hit("rename")) {
        errno = err;
        return -1;
    }
    return REAL("rename", int (*)(const char *, const char *))(a, b);
}

int link(const char *a, const char *b)
{
    if (hit("link")) {
        errno = err;
        return -1;
    }
    return REAL("link", int (*)(const char *, const char *))(a, b);
}
