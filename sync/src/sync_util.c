/*
 * sync_util.c: error strings and detail (libnotes' one per-thread detail),
 * and the strict hex of sync's own files.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

/*
 * One detail per thread for every library (docs/design.md): libnotes'.
 * Formatted here first, since sync often passes that detail itself as an
 * argument ("%s", notes_sync_last_detail()): vsnprintf from a buffer into
 * itself is undefined.
 */
void notes_sync__detail(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    notes__set_detail("%s", line);
}

int notes_sync__from_notes(int rc, const char *what)
{
    const char *d = notes_last_detail();
    char copy[400];
    snprintf(copy, sizeof(copy), "%s", d ? d : "");
    if (copy[0])
        notes_sync__detail("%s: %s", what, copy);
    else
        notes_sync__detail("%s: %s", what, notes_strerror(rc));
    return rc;
}

const char *notes_sync_last_detail(void)
{
    return notes_last_detail();
}

void notes_sync_free(void *p)
{
    free(p);
}

const char *notes_sync_strerror(int err)
{
    switch (err) {
#define X(name, code, text)                                                   \
    case code:                                                                \
        return text;
        NOTES_SYNC_ERR_MAP(X)
#undef X
    default:
        return notes_strerror(err);
    }
}

const char *notes_sync_errname(int err)
{
    switch (err) {
#define X(name, code, text)                                                   \
    case code:                                                                \
        return "NOTES_SYNC_" #name;
        NOTES_SYNC_ERR_MAP(X)
#undef X
    default:
        return notes_errname(err);
    }
}

int notes_sync__unhex_lower(uint8_t *out, size_t n, const char *s, size_t len)
{
    char in[129], back[129];
    if (n > 64 || len != 2 * n)
        return -1;
    memcpy(in, s, len);
    in[len] = '\0';
    if (notes__unhex(out, n, in) != NOTES_OK)
        return -1;
    notes__hex(back, out, n);
    return memcmp(back, in, len) == 0 ? 0 : -1;
}
