/*
 * utf16.c: UTF-16 positions (CodeMirror's) over the UTF-8 text of a note.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

/* Length of the UTF-8 sequence starting with byte c (text is valid UTF-8). */
size_t notes_web__u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/*
 * Locate UTF-16 offset u16 in s (n bytes of valid UTF-8), starting from
 * byte `from` at code point `cp0`, UTF-16 `u0`. OUT *cp, *byte. -1 if it
 * is past the end or inside a surrogate pair.
 */
int notes_web__u16_locate(const char *s, size_t n, size_t from, size_t cp0,
                      size_t u0, size_t u16, size_t *cp, size_t *byte)
{
    size_t i = from, c = cp0, u = u0;
    while (u < u16 && i < n) {
        size_t l = notes_web__u8len((unsigned char)s[i]);
        u += l == 4 ? 2 : 1;
        i += l;
        c++;
    }
    if (u != u16)
        return -1;
    *cp = c;
    *byte = i;
    return 0;
}

/* UTF-16 length of n bytes of valid UTF-8. */
size_t notes_web__u16_count(const char *s, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i += notes_web__u8len((unsigned char)s[i]))
        u += notes_web__u8len((unsigned char)s[i]) == 4 ? 2 : 1;
    return u;
}
