/*
 * text_buf.c: the UTF-8 gap buffer holding the merged text.
 *
 * The gap position is tracked in bytes (gs) and code points (gcp). Moving the
 * gap to a code point scans only the bytes between the old and new gap (the
 * scan is skipped entirely while the whole text is ASCII), so edits near the
 * previous edit cost O(distance), which is the common case when typing.
 */
#include <stdlib.h>
#include <string.h>

#include "text.h"

void notes__tbuf_init(struct notes__tbuf *t)
{
    memset(t, 0, sizeof(*t));
}

void notes__tbuf_release(struct notes__tbuf *t)
{
    notes__free(t->buf);
    memset(t, 0, sizeof(*t));
}

static int is_ascii(const struct notes__tbuf *t)
{
    return notes__tbuf_bytes(t) == t->ncp;
}

/* Bytes taken by the first `want` code points after the gap. */
static size_t bytes_after_gap(const struct notes__tbuf *t, size_t want)
{
    if (is_ascii(t))
        return want;
    const unsigned char *s = (const unsigned char *)t->buf + t->ge;
    size_t avail = t->cap - t->ge, i = 0;
    while (want && i < avail) {
        i++;
        while (i < avail && (s[i] & 0xc0) == 0x80)
            i++;
        want--;
    }
    return i;
}

/* Bytes taken by the last `want` code points before the gap. */
static size_t bytes_before_gap(const struct notes__tbuf *t, size_t want)
{
    if (is_ascii(t))
        return want;
    const unsigned char *s = (const unsigned char *)t->buf;
    size_t i = t->gs;
    while (want && i > 0) {
        i--;
        while (i > 0 && (s[i] & 0xc0) == 0x80)
            i--;
        want--;
    }
    return t->gs - i;
}

/* Move the gap so that exactly `cp` code points precede it. */
static void move_gap(struct notes__tbuf *t, size_t cp)
{
    if (cp == t->gcp)
        return;
    if (cp > t->gcp) {
        size_t nb = bytes_after_gap(t, cp - t->gcp);
        if (nb <= 16) { /* typing: a few bytes; dst < src, copy forward */
            for (size_t i = 0; i < nb; i++)
                t->buf[t->gs + i] = t->buf[t->ge + i];
        } else {
            memmove(t->buf + t->gs, t->buf + t->ge, nb);
        }
        t->gs += nb;
        t->ge += nb;
    } else {
        size_t nb = bytes_before_gap(t, t->gcp - cp);
        if (nb <= 16) { /* dst > src: copy backward */
            for (size_t i = nb; i-- > 0;)
                t->buf[t->ge - nb + i] = t->buf[t->gs - nb + i];
        } else {
            memmove(t->buf + t->ge - nb, t->buf + t->gs - nb, nb);
        }
        t->gs -= nb;
        t->ge -= nb;
    }
    t->gcp = cp;
}

int notes__tbuf_reserve_slow(struct notes__tbuf *t, size_t extra)
{
    size_t gap = t->ge - t->gs;
    if (gap >= extra + 1) /* +1: room for the NUL of tbuf_text */
        return NOTES_OK;
    size_t used = notes__tbuf_bytes(t);
    if (extra > SIZE_MAX / 4 - used)
        return NOTES_ENOMEM;
    size_t ncap = t->cap ? t->cap : 256;
    while (ncap < used + extra + 1)
        ncap *= 2;
    ncap += ncap / 4; /* keep some gap */
    char *nb = notes__realloc(t->buf, ncap);
    if (!nb)
        return NOTES_ENOMEM;
    size_t tail = t->cap - t->ge;
    memmove(nb + ncap - tail, nb + t->ge, tail);
    t->buf = nb;
    t->ge = ncap - tail;
    t->cap = ncap;
    return NOTES_OK;
}

int notes__tbuf_insert_slow(struct notes__tbuf *t, size_t cp, const char *s,
                            size_t n, size_t ncp)
{
    int rc = notes__tbuf_reserve(t, n);
    if (rc)
        return rc;
    move_gap(t, cp);
    memcpy(t->buf + t->gs, s, n);
    t->gs += n;
    t->gcp += ncp;
    t->ncp += ncp;
    return NOTES_OK;
}

void notes__tbuf_delete_slow(struct notes__tbuf *t, size_t cp, size_t count)
{
    if (count && cp + count == t->gcp) {
        /* The chars just before the gap (a backspace): the gap grows to the
         * left, nothing moves. */
        t->gs -= bytes_before_gap(t, count);
        t->gcp = cp;
        t->ncp -= count;
        return;
    }
    move_gap(t, cp);
    t->ge += bytes_after_gap(t, count);
    t->ncp -= count;
}

const char *notes__tbuf_text(struct notes__tbuf *t)
{
    if (notes__tbuf_reserve(t, 0))
        return NULL;
    move_gap(t, t->ncp);
    t->buf[t->gs] = '\0';
    return t->buf;
}
