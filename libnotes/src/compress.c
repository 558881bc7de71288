/*
 * compress.c: zstd behind one file, for the log's records and sync's
 * bundles alike. Decompression is bounded: a frame that declares, or
 * actually expands to, more than `max` bytes, or that claims to expand
 * more than `ratio` times, is refused before memory is committed to it.
 */
#include <pthread.h>
#include <zstd.h>

#include "internal.h"

/* Below this, any ratio is believable (a small note of repeated lines). */
#define RATIO_FLOOR (1u << 20)

/*
 * NOTES__ZSTD_SMALL_TABLES caps high levels' match tables at 2^17 entries:
 * at level 19 on a 300 KB pack that keeps the output within 0.6% while the
 * compression context drops from 9.5 MB to 2.3 MB (measured on
 * automerge-paper's pack). The log asks for it; sync's bundles keep
 * zstd's own tables (their bytes on the wire are what they were).
 */
/*
 * One compression context per thread, kept: making one per record cost as
 * much as compressing a small record (16 against 8 us for 2.8 KB at level
 * 3), and a first sync stores thousands. Freed when its thread ends (a
 * thread-specific key's destructor); reset to defaults at each use.
 */
static pthread_once_t cctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t cctx_key;
static int cctx_key_ok;

static void cctx_free(void *cc)
{
    ZSTD_freeCCtx(cc);
}

static void cctx_key_make(void)
{
    cctx_key_ok = pthread_key_create(&cctx_key, cctx_free) == 0;
}

static ZSTD_CCtx *kept_cctx(void)
{
    pthread_once(&cctx_once, cctx_key_make);
    if (!cctx_key_ok)
        return NULL;
    ZSTD_CCtx *cc = pthread_getspecific(cctx_key);
    if (!cc && (cc = ZSTD_createCCtx()) && pthread_setspecific(cctx_key, cc)) {
        ZSTD_freeCCtx(cc);
        cc = NULL;
    }
    return cc;
}

/* The same for decompression: ZSTD_decompress makes and frees a context
 * each call (13 against 3.5 us for a 2.8 KB record). */
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t dctx_key;
static int dctx_key_ok;

static void dctx_free(void *dc)
{
    ZSTD_freeDCtx(dc);
}

static void dctx_key_make(void)
{
    dctx_key_ok = pthread_key_create(&dctx_key, dctx_free) == 0;
}

static ZSTD_DCtx *kept_dctx(void)
{
    pthread_once(&dctx_once, dctx_key_make);
    if (!dctx_key_ok)
        return NULL;
    ZSTD_DCtx *dc = pthread_getspecific(dctx_key);
    if (!dc && (dc = ZSTD_createDCtx()) && pthread_setspecific(dctx_key, dc)) {
        ZSTD_freeDCtx(dc);
        dc = NULL;
    }
    return dc;
}

int notes__compress(struct notes_buf *out, const uint8_t *p, size_t n,
                    int level, unsigned flags)
{
    size_t bound = ZSTD_compressBound(n);
    int rc = notes__buf_reserve(out, bound);
    if (rc)
        return rc;
    ZSTD_CCtx *cc = kept_cctx();
    if (!cc)
        return NOTES_ENOMEM;
    ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    size_t err = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(err) && level >= 10 &&
        (flags & NOTES__ZSTD_SMALL_TABLES)) {
        err = ZSTD_CCtx_setParameter(cc, ZSTD_c_chainLog, 17);
        if (!ZSTD_isError(err))
            err = ZSTD_CCtx_setParameter(cc, ZSTD_c_hashLog, 17);
    }
    if (!ZSTD_isError(err))
        err = ZSTD_CCtx_setPledgedSrcSize(cc, n);
    size_t got = ZSTD_isError(err)
                     ? err
                     : ZSTD_compress2(cc, out->data + out->len, bound, p, n);
    if (ZSTD_isError(got)) {
        notes__set_detail("zstd: %s", ZSTD_getErrorName(got));
        return NOTES_EIO;
    }
    out->len += got;
    return NOTES_OK;
}

int notes__decompress(struct notes_buf *out, const uint8_t *p, size_t n,
                      size_t max, unsigned ratio)
{
    unsigned long long want = ZSTD_getFrameContentSize(p, n);
    if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN ||
        ZSTD_findFrameCompressedSize(p, n) != n) {
        notes__set_detail("not one zstd frame with its size");
        return NOTES_ECORRUPT;
    }
    if (want > max) {
        notes__set_detail("%llu bytes compressed: over the limit of %zu",
                          want, max);
        return NOTES_ETOOBIG;
    }
    /* Notes compress a few times, not thousands: a frame that claims to
     * expand more is a bomb, refused before any memory is spent on it. */
    if (ratio && want > RATIO_FLOOR && want / ratio > n) {
        notes__set_detail("%zu compressed bytes claim %llu: more than %ux", n,
                          want, ratio);
        return NOTES_ETOOBIG;
    }
    int rc = notes__buf_reserve(out, (size_t)want);
    if (rc)
        return rc;
    ZSTD_DCtx *dc = kept_dctx();
    size_t got = dc ? ZSTD_decompressDCtx(dc, out->data + out->len, (size_t)want, p, n)
                    : ZSTD_decompress(out->data + out->len, (size_t)want, p, n);
    if (ZSTD_isError(got) || got != want) {
        notes__set_detail("does not decompress to its declared size (%s)",
                          ZSTD_isError(got) ? ZSTD_getErrorName(got)
                                            : "it differs");
        return NOTES_ECORRUPT;
    }
    out->len += got;
    return NOTES_OK;
}
