/*
 * compress.c: zstd behind one file. Decompression is bounded: a frame that
 * declares, or actually expands to, more than `max` bytes is refused before
 * memory is committed to it.
 */
#include <zstd.h>

#include "store.h"

int notes__compress(struct notes_buf *out, const uint8_t *p, size_t n, int level)
{
    size_t bound = ZSTD_compressBound(n);
    int rc = notes__buf_reserve(out, bound);
    if (rc)
        return rc;
    size_t got = ZSTD_compress(out->data + out->len, bound, p, n, level);
    if (ZSTD_isError(got))
        return NOTES_EIO;
    out->len += got;
    return NOTES_OK;
}

int notes__decompress(struct notes_buf *out, const uint8_t *p, size_t n,
                      size_t max)
{
    unsigned long long want = ZSTD_getFrameContentSize(p, n);
    if (want == ZSTD_CONTENTSIZE_ERROR) {
        notes__set_detail("not a zstd frame");
        return NOTES_ECORRUPT;
    }
    if (want == ZSTD_CONTENTSIZE_UNKNOWN || want > max) {
        notes__set_detail("compressed record declares %llu bytes (limit %zu)",
                          want, max);
        return NOTES_ETOOBIG;
    }
    int rc = notes__buf_reserve(out, (size_t)want);
    if (rc)
        return rc;
    size_t got = ZSTD_decompress(out->data + out->len, (size_t)want, p, n);
    if (ZSTD_isError(got) || got != want) {
        notes__set_detail("zstd: %s", ZSTD_isError(got)
                                          ? ZSTD_getErrorName(got)
                                          : "size differs from the header");
        return NOTES_ECORRUPT;
    }
    out->len += got;
    return NOTES_OK;
}
