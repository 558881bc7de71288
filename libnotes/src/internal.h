/*
 * internal.h: private declarations shared inside libnotes (notes__ prefix).
 * Nothing here is part of the public API; tests may include it to reach
 * internals. Byte order helpers, varints and a bounded growable buffer.
 */
#ifndef NOTES_INTERNAL_H
#define NOTES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "notes.h"

#define NOTES__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation goes through these so tests can inject failures. */
void *notes__malloc(size_t n);
void *notes__calloc(size_t count, size_t size);
void *notes__realloc(void *p, size_t n);
void notes__free(void *p);
char *notes__strdup(const char *s);
char *notes__strndup(const char *s, size_t n);

/*
 * Make room for `need` elements of `size` bytes in the array *p of
 * capacity *cap (doubling, at least `first`). On failure *p is unchanged.
 */
int notes__grow(void *p, size_t *cap, size_t need, size_t size, size_t first);

/*
 * Growable byte buffer with a hard ceiling: decoders and encoders append
 * through it, so a hostile length hits `max` before memory runs out.
 * On failure the buffer is left as it was.
 */
struct notes_buf {
    uint8_t *data; /* owned; NULL while empty */
    size_t len;
    size_t cap;
    size_t max; /* appends past this fail with NOTES_ETOOBIG */
};

void notes__buf_init(struct notes_buf *b, size_t max);
void notes__buf_release(struct notes_buf *b);
int notes__buf_reserve(struct notes_buf *b, size_t extra);
int notes__buf_put(struct notes_buf *b, const void *p, size_t n);
int notes__buf_put_u8(struct notes_buf *b, uint8_t v);
int notes__buf_put_varint(struct notes_buf *b, uint64_t v);
int notes__buf_put_bytes(struct notes_buf *b, const void *p, size_t n); /* varint length + bytes */
int notes__buf_put_u32le(struct notes_buf *b, uint32_t v);

/*
 * Reader over borrowed bytes. Every getter checks the remaining length by
 * subtraction and returns NOTES_ECORRUPT on truncation. Varints must be
 * minimally encoded (one encoding per value, so signed bytes are canonical).
 */
struct notes_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

void notes__reader_init(struct notes_reader *r, const void *p, size_t len);
int notes__get_u8(struct notes_reader *r, uint8_t *out);
int notes__get_varint(struct notes_reader *r, uint64_t *out);
int notes__get_raw(struct notes_reader *r, size_t n, const uint8_t **out);
int notes__get_bytes(struct notes_reader *r, size_t max, const uint8_t **out, size_t *n);
int notes__get_u32le(struct notes_reader *r, uint32_t *out);
static inline size_t notes__reader_left(const struct notes_reader *r)
{
    return r->len - r->off;
}

static inline uint32_t notes__load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline void notes__store_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* UTF-8: validation (rejects overlongs, surrogates, > U+10FFFF) and counting. */
int notes__utf8_valid(const uint8_t *s, size_t n);
size_t notes__utf8_count(const uint8_t *s, size_t n); /* code points; s must be valid */
/* Byte offset of code point `cp` in valid UTF-8 `s` (n bytes); n if cp is past the end. */
size_t notes__utf8_offset(const uint8_t *s, size_t n, size_t cp);

/* An identity name: UTF-8, 1..NOTES_NAME_MAX bytes, no C0, DEL or C1
 * (identity.c); local and peer-signed names alike. */
int notes__name_valid(const uint8_t *s, size_t n);

/* Hex and base32 (RFC 4648 alphabet, lowercase, no padding). */
void notes__hex(char *out, const uint8_t *p, size_t n); /* out: 2n+1 bytes */
int notes__unhex(uint8_t *out, size_t n, const char *hex); /* exactly 2n digits */
size_t notes__base32(char *out, size_t outcap, const uint8_t *p, size_t n);
int notes__unbase32(uint8_t *out, size_t n, const char *s);

/* Last error detail for the calling thread, set by the library on failure. */
void notes__set_detail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
