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
 * One zstd context per thread and kind, kept: making one per record cost
 * as much as the work on a small record (compressing 2.8 KB at level 3:
 * 16 against 8 us; ZSTD_decompress makes one each call: 13 against 3.5),
 * and a first sync stores thousands. Freed when its thread ends (a
 * thread-specific key's destructor); reset at each use.
 */
struct kept {
    pthread_once_t once;
    pthread_key_t key;
    int ok;
};

static struct kept kept_c = {PTHREAD_ONCE_INIT, 0, 0};
static struct kept kept_d = {PTHREAD_ONCE_INIT, 0, 0};

static void free_c(void *cc)
{
    ZSTD_freeCCtx(cc);
}

static void free_d(void *dc)
{
    ZSTD_freeDCtx(dc);
}

static void make_key_c(void)
{
    kept_c.ok = pthread_key_create(&kept_c.key, free_c) == 0;
}

static void make_key_d(void)
{
    kept_d.ok = pthread_key_create(&kept_d.key, free_d) == 0;
}

/* This thread's context of kind k: made by make() on first use. */
static void *kept_get(struct kept *k, void (*make_key)(void), void *(*make)(void),
                      void (*destroy)(void *))
{
    pthread_once(&k->once, make_key);
    if (!k->ok)
        return NULL;
    void *ctx = pthread_getspecific(k->key);
    if (!ctx && (ctx = make()) && pthread_setspecific(k->key, ctx)) {
        destroy(ctx);
        ctx = NULL;
    }
    return ctx;
}

static void *new_c(void)
{
    return ZSTD_createCCtx();
}

static void *new_d(void)
{
    return ZSTD_createDCtx();
}

int notes__compress(struct notes_buf *out, const uint8_t *p, size_t n,
                    int level, unsigned flags)
{
    size_t bound = ZSTD_compressBound(n);
    int rc = notes__buf_reserve(out, bound);
    if (rc)
        return rc;
    ZSTD_CCtx *cc = kept_get(&kept_c, make_key_c, new_c, free_c);
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
    ZSTD_DCtx *dc = kept_get(&kept_d, make_key_d, new_d, free_d);
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
