/*
 * sync_util.c: error strings and detail, the bounded buffer, varints and
 * base32 used by the rest of notes_sync.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

static _Thread_local char detail[512];

void notes_sync__detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
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
    return detail;
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

void sync_buf_init(struct sync_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void sync_buf_release(struct sync_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int sync_buf_reserve(struct sync_buf *b, size_t extra)
{
    size_t want, cap;
    uint8_t *p;
    if (extra > b->max - b->len)
        return NOTES_ETOOBIG;
    want = b->len + extra;
    if (want <= b->cap)
        return NOTES_OK;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    p = realloc(b->data, cap);
    if (!p)
        return NOTES_ENOMEM;
    b->data = p;
    b->cap = cap;
    return NOTES_OK;
}

int sync_buf_put(struct sync_buf *b, const void *p, size_t n)
{
    int rc = sync_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return NOTES_OK;
}

int sync_buf_put_varint(struct sync_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t k = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        tmp[k++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    return sync_buf_put(b, tmp, k);
}

int sync_get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (unsigned i = 0; i < 10; i++) {
        uint8_t c;
        if (p >= end)
            return NOTES_ECORRUPT;
        c = *p++;
        if (i == 9 && c > 1)
            return NOTES_ECORRUPT;
        r |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            if (c == 0 && i > 0)
                return NOTES_ECORRUPT; /* not minimal */
            *v = r;
            *pp = p;
            return NOTES_OK;
        }
    }
    return NOTES_ECORRUPT;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t sync_base32_encode(const uint8_t *in, size_t n, char *out)
{
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[k++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[k++] = b32[(acc << (5 - bits)) & 31];
    out[k] = '\0';
    return k;
}

long sync_base32_decode(const char *in, size_t n, uint8_t *out, size_t max)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i], v;
        if (c >= 'a' && c <= 'z')
            v = c - 'a';
        else if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (k >= max)
                return -1;
            out[k++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
        acc &= (1u << bits) - 1;
    }
    /* A canonical encoding leaves fewer than 5 bits, all zero. */
    if (bits >= 5 || acc != 0)
        return -1;
    return (long)k;
}
