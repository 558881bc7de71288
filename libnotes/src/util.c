/*
 * util.c: allocation hooks, the bounded buffer, the reader, varints, UTF-8,
 * hex and base32, error strings and the per-thread error detail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ---- allocation ---- */

/* Tests set this to fail the Nth allocation; negative means never. */
long notes__fail_alloc_at = -1;

static int alloc_should_fail(void)
{
    if (notes__fail_alloc_at < 0)
        return 0;
    if (notes__fail_alloc_at == 0) {
        notes__fail_alloc_at = -1;
        return 1;
    }
    notes__fail_alloc_at--;
    return 0;
}

void *notes__malloc(size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *notes__calloc(size_t count, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *notes__realloc(void *p, size_t n)
{
    if (alloc_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void notes__free(void *p)
{
    free(p);
}

void notes_free(void *p)
{
    free(p);
}

char *notes__strndup(const char *s, size_t n)
{
    char *d = notes__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *notes__strdup(const char *s)
{
    return notes__strndup(s, strlen(s));
}

int notes__grow(void *p, size_t *cap, size_t need, size_t size, size_t first)
{
    void **arr = p;
    if (need <= *cap)
        return NOTES_OK;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / size)
            return NOTES_ENOMEM;
        ncap *= 2;
    }
    void *n = notes__realloc(*arr, ncap * size);
    if (!n)
        return NOTES_ENOMEM;
    *arr = n;
    *cap = ncap;
    return NOTES_OK;
}

/* ---- errors ---- */

/* The codes with their names and texts, from the one list in notes.h. */
static const struct {
    int code;
    const char *name, *text;
} errors[] = {
    {NOTES_OK, "NOTES_OK", "success"},
#define NOTES_ERR_ROW(name, code, text) {code, "NOTES_" #name, text},
    NOTES_ERR_MAP(NOTES_ERR_ROW)
#undef NOTES_ERR_ROW
};

static int error_row(int err)
{
    for (size_t i = 0; i < NOTES__ARRAY_LEN(errors); i++)
        if (errors[i].code == err)
            return (int)i;
    return -1;
}

const char *notes_strerror(int err)
{
    int i = error_row(err);
    return i < 0 ? "unknown error" : errors[i].text;
}

const char *notes_errname(int err)
{
    int i = error_row(err);
    return i < 0 ? "NOTES_E?" : errors[i].name;
}

static _Thread_local char detail[512];

void notes__set_detailv(const char *fmt, va_list ap)
{
    /* Through a copy: callers often pass the detail itself as an argument
     * ("%s: ...", notes_last_detail()), and vsnprintf into its own
     * source is undefined. */
    char next[sizeof(detail)];
    vsnprintf(next, sizeof(next), fmt, ap);
    memcpy(detail, next, sizeof(detail));
}

void notes__set_detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notes__set_detailv(fmt, ap);
    va_end(ap);
}

const char *notes_last_detail(void)
{
    return detail;
}

/* ---- buffer ---- */

void notes__buf_init(struct notes_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void notes__buf_release(struct notes_buf *b)
{
    notes__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int notes__buf_reserve(struct notes_buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return NOTES_ETOOBIG;
    /* One byte more than asked for, for the NUL kept past len. */
    if (extra < b->cap - b->len)
        return NOTES_OK;
    size_t want = b->len + extra;
    want += want < SIZE_MAX;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > b->max && b->max < SIZE_MAX)
        cap = b->max + 1;
    uint8_t *d = notes__realloc(b->data, cap);
    if (!d)
        return NOTES_ENOMEM;
    b->data = d;
    b->cap = cap;
    return NOTES_OK;
}

int notes__buf_put(struct notes_buf *b, const void *p, size_t n)
{
    int rc = notes__buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    if (b->len < b->cap)
        b->data[b->len] = 0;
    return NOTES_OK;
}

int notes__buf_puts(struct notes_buf *b, const char *s)
{
    return notes__buf_put(b, s, strlen(s));
}

int notes__buf_printf(struct notes_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return NOTES_EINVAL;
    if ((size_t)n < sizeof(small))
        return notes__buf_put(b, small, (size_t)n);
    int rc = notes__buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return NOTES_OK;
}

int notes__buf_detach(struct notes_buf *b, uint8_t **out, size_t *n)
{
    if (!b->data && notes__buf_reserve(b, 1) != NOTES_OK)
        return NOTES_ENOMEM;
    b->data[b->len] = 0;
    *out = b->data;
    if (n)
        *n = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return NOTES_OK;
}

int notes__buf_put_u8(struct notes_buf *b, uint8_t v)
{
    return notes__buf_put(b, &v, 1);
}

int notes__buf_put_varint(struct notes_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    return notes__buf_put(b, tmp, n);
}

int notes__buf_put_bytes(struct notes_buf *b, const void *p, size_t n)
{
    int rc = notes__buf_put_varint(b, n);
    return rc ? rc : notes__buf_put(b, p, n);
}

int notes__buf_put_u32le(struct notes_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    notes__store_u32le(tmp, v);
    return notes__buf_put(b, tmp, 4);
}

/* ---- reader ---- */

void notes__reader_init(struct notes_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
}

int notes__get_u8(struct notes_reader *r, uint8_t *out)
{
    if (notes__reader_left(r) < 1)
        return NOTES_ECORRUPT;
    *out = r->p[r->off++];
    return NOTES_OK;
}

int notes__get_varint(struct notes_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0, i = 0; i < 10; i++, shift += 7) {
        uint8_t byte;
        if (notes__get_u8(r, &byte))
            return NOTES_ECORRUPT;
        if (i == 9 && byte > 1)
            return NOTES_ECORRUPT; /* past 64 bits */
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            if (byte == 0 && i > 0)
                return NOTES_ECORRUPT; /* not minimal */
            *out = v;
            return NOTES_OK;
        }
    }
    return NOTES_ECORRUPT;
}

int notes__get_raw(struct notes_reader *r, size_t n, const uint8_t **out)
{
    if (notes__reader_left(r) < n)
        return NOTES_ECORRUPT;
    *out = r->p + r->off;
    r->off += n;
    return NOTES_OK;
}

int notes__get_bytes(struct notes_reader *r, size_t max, const uint8_t **out,
                     size_t *n)
{
    uint64_t len;
    if (notes__get_varint(r, &len))
        return NOTES_ECORRUPT;
    if (len > max)
        return NOTES_ETOOBIG;
    if (notes__get_raw(r, (size_t)len, out))
        return NOTES_ECORRUPT;
    *n = (size_t)len;
    return NOTES_OK;
}

int notes__get_u32le(struct notes_reader *r, uint32_t *out)
{
    const uint8_t *p;
    if (notes__get_raw(r, 4, &p))
        return NOTES_ECORRUPT;
    *out = notes__load_u32le(p);
    return NOTES_OK;
}

/* ---- UTF-8 ---- */

int notes__utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

size_t notes__utf8_count(const uint8_t *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += (s[i] & 0xc0) != 0x80;
    return count;
}

size_t notes__utf8_points(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
        i += 8;
    }
    while (i < n && s[i] < 0x80)
        i++;
    if (i == n)
        return n;
    /* At the first non-ASCII byte: the validator's state after ASCII is
     * its initial one, so exactly the same inputs are accepted. */
    if (!notes__utf8_valid(s + i, n - i))
        return SIZE_MAX;
    return i + notes__utf8_count(s + i, n - i);
}

size_t notes__utf8_offset(const uint8_t *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp) {
        i++;
        while (i < n && (s[i] & 0xc0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

/* ---- hex, base32 ---- */

void notes__hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int notes__unhex(uint8_t *out, size_t n, const char *hex)
{
    if (strlen(hex) != 2 * n)
        return NOTES_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return NOTES_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return NOTES_OK;
}

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t notes__base32(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        bits += 8;
        while (bits >= 5) {
            if (o + 1 < outcap)
                out[o] = b32[(acc >> (bits - 5)) & 31];
            o++;
            bits -= 5;
        }
    }
    if (bits > 0) {
        if (o + 1 < outcap)
            out[o] = b32[(acc << (5 - bits)) & 31];
        o++;
    }
    if (outcap)
        out[o < outcap ? o : outcap - 1] = '\0';
    return o;
}

int notes__unbase32(uint8_t *out, size_t n, const char *s)
{
    size_t got;
    size_t want = (n * 8 + 4) / 5;
    if (strlen(s) != want || notes__unbase32_len(out, n, &got, s, want))
        return NOTES_EINVAL;
    return got == n ? NOTES_OK : NOTES_EINVAL;
}

int notes__unbase32_len(uint8_t *out, size_t cap, size_t *outlen,
                        const char *s, size_t want)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < want; i++) {
        char c = s[i];
        int v;
        if (c >= 'a' && c <= 'z')
            v = c - 'a';
        else if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return NOTES_EINVAL;
        acc = (acc << 5 | (uint32_t)v) & 0x1fff; /* at most 12 bits in use */
        bits += 5;
        if (bits >= 8) {
            if (o >= cap)
                return NOTES_EINVAL;
            out[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    /* A canonical encoding leaves fewer than 5 bits, all zero. */
    if (bits >= 5 || (bits > 0 && (acc & ((1u << bits) - 1))))
        return NOTES_EINVAL;
    *outlen = o;
    return NOTES_OK;
}
