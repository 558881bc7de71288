/*
 * compress.c: zstd behind one file. Decompression is bounded: a frame that
 * declares, or actually expands to, more than `max` bytes is refused before
 * memory is committed to it.
 */
#include <zstd.h>

#include "store.h"

/*
 * High levels get their match tables capped at 2^17 entries: at level 19
 * on a 300 KB pack that keeps the output within 0.6% while the compression
 * context drops from 9.5 MB to 2.3 MB (measured on automerge-paper's pack).
 */
int notes__compress(struct notes_buf *out, const uint8_t *p, size_t n, int level)
{
    size_t bound = ZSTD_compressBound(n);
    int rc = notes__buf_reserve(out, bound);
    if (rc)
        return rc;
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!cc)
        return NOTES_ENOMEM;
    size_t err = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(err) && level >= 10) {
        err = ZSTD_CCtx_setParameter(cc, ZSTD_c_chainLog, 17);
        if (!ZSTD_isError(err))
            err = ZSTD_CCtx_setParameter(cc, ZSTD_c_hashLog, 17);
    }
    if (!ZSTD_isError(err))
        err = ZSTD_CCtx_setPledgedSrcSize(cc, n);
    size_t got = ZSTD_isError(err)
                     ? err
                     : ZSTD_compress2(cc, out->data + out->len, bound, p, n);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(got)) {
        notes__set_detail("zstd: %s", ZSTD_getErrorName(got));
        return NOTES_EIO;
    }
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
