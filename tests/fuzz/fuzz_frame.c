/*
 * fuzz_frame.c: the layer under the sync messages, with a fixed key: frame
 * headers and bodies (sync/src/frame.c), the varints and base32 that
 * messages and invite codes are read with (sync/src/sync_util.c), and the
 * LAN discovery datagrams (sync/src/discovery.c). The first byte (mod 7)
 * picks what the rest is:
 *   0  a header the harness seals itself around 4 input bytes (any length
 *      field, authentic), then the body: the rest, sealed when the length
 *      matches, raw otherwise;
 *   1  a body sealed and opened again (round trip), then opened with one
 *      bit flipped and under the wrong counter (must fail, counter kept);
 *   2  raw header and body bytes (must not authenticate);
 *   3  a run of varints: each decoded one re-encodes to the bytes read;
 *   4  base32 text: decoded text re-encodes to itself (lowercased), and
 *      the input as bytes survives encode + decode;
 *   5  a LAN discovery announcement (sync/src/discovery.c) that the
 *      harness seals around fuzzed contents (key, port, time): it opens
 *      to them, and with one bit flipped it does not;
 *   6  raw bytes as a discovery datagram, tried with two spaces' keys.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sync_internal.h"

static const uint8_t key[32] = {0x6b, 0x65, 0x79, 7, 7, 7};

static void nonce_of(uint64_t ctr, uint8_t n[24])
{
    memset(n, 0, 24);
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)(ctr >> (8 * i));
}

static uint64_t get_ctr(const uint8_t **p, const uint8_t *end)
{
    uint64_t c = 0;
    for (int i = 0; i < 8 && *p < end; i++)
        c |= (uint64_t)*(*p)++ << (8 * i);
    return c & ~(uint64_t)1; /* headers are at even counters */
}

static void dir_init(struct sync_dir *d, uint64_t ctr)
{
    memcpy(d->key, key, 32);
    d->ctr = ctr;
}

/* 0: an authentic header of any length field. */
static void forged_header(const uint8_t *p, const uint8_t *end)
{
    struct sync_dir d;
    uint8_t hdr[SYNC_HDR_LEN], nonce[24], *body, *out;
    uint64_t ctr = get_ctr(&p, end);
    size_t n = 0, rest;
    uint32_t len;
    int rc;
    if (end - p < 4)
        return;
    len = notes__load_u32le(p);
    p += 4;
    nonce_of(ctr, nonce);
    crypto_aead_xchacha20poly1305_ietf_encrypt(hdr, NULL, p - 4, 4, NULL, 0,
                                               NULL, nonce, key);
    dir_init(&d, ctr);
    rc = sync_frame_open_hdr(&d, hdr, &n);
    if (len == 0 || len > NOTES_SYNC_FRAME_MAX) {
        if (rc != (len ? NOTES_ETOOBIG : NOTES_SYNC_EPROTO) || d.ctr != ctr)
            abort();
        return;
    }
    if (rc != NOTES_OK || n != len || d.ctr != ctr + 1)
        abort();
    rest = (size_t)(end - p);
    if (!(body = malloc(n + SYNC_TAG_LEN)) || !(out = malloc(n))) {
        abort();
    }
    if (rest == n) {
        nonce_of(ctr + 1, nonce);
        crypto_aead_xchacha20poly1305_ietf_encrypt(body, NULL, p, n, NULL, 0,
                                                   NULL, nonce, key);
        if (sync_frame_open_body(&d, body, n, out) != NOTES_OK ||
            memcmp(out, p, n) != 0 || d.ctr != ctr + 2)
            abort();
    } else {
        memset(body, 0, n + SYNC_TAG_LEN);
        memcpy(body, p, rest < n + SYNC_TAG_LEN ? rest : n + SYNC_TAG_LEN);
        if (sync_frame_open_body(&d, body, n, out) != NOTES_SYNC_EFRAME ||
            d.ctr != ctr + 1)
            abort();
    }
    free(body);
    free(out);
}

/* 1: seal, open; then damaged and misplaced copies must fail. */
static void round_trip(const uint8_t *p, const uint8_t *end)
{
    struct sync_dir tx, rx;
    uint64_t ctr = get_ctr(&p, end);
    size_t flip, n, got;
    uint8_t *sealed, *out;
    if (end - p < 3)
        return;
    flip = (size_t)p[0] | (size_t)p[1] << 8;
    p += 2;
    n = (size_t)(end - p);
    if (!(sealed = malloc(SYNC_HDR_LEN + n + SYNC_TAG_LEN)) ||
        !(out = malloc(n)))
        abort();
    dir_init(&tx, ctr);
    if (sync_frame_seal(&tx, p, n, sealed) != NOTES_OK || tx.ctr != ctr + 2)
        abort();
    dir_init(&rx, ctr);
    if (sync_frame_open_hdr(&rx, sealed, &got) != NOTES_OK || got != n ||
        sync_frame_open_body(&rx, sealed + SYNC_HDR_LEN, n, out) !=
            NOTES_OK ||
        memcmp(out, p, n) != 0 || rx.ctr != ctr + 2)
        abort();
    /* One flipped bit anywhere: the header or the body fails. */
    flip %= (SYNC_HDR_LEN + n + SYNC_TAG_LEN) * 8;
    sealed[flip / 8] ^= (uint8_t)(1u << (flip % 8));
    dir_init(&rx, ctr);
    if (flip / 8 < SYNC_HDR_LEN) {
        if (sync_frame_open_hdr(&rx, sealed, &got) == NOTES_OK ||
            rx.ctr != ctr)
            abort();
    } else if (sync_frame_open_hdr(&rx, sealed, &got) != NOTES_OK ||
               sync_frame_open_body(&rx, sealed + SYNC_HDR_LEN, n, out) ==
                   NOTES_OK ||
               rx.ctr != ctr + 1) {
        abort();
    }
    sealed[flip / 8] ^= (uint8_t)(1u << (flip % 8));
    /* Replayed or reordered: the wrong counter fails. */
    dir_init(&rx, ctr + 2);
    if (sync_frame_open_hdr(&rx, sealed, &got) == NOTES_OK)
        abort();
    free(sealed);
    free(out);
}

/* 2: bytes from the network that nobody sealed. */
static void raw(const uint8_t *p, const uint8_t *end)
{
    struct sync_dir d;
    uint8_t hdr[SYNC_HDR_LEN] = {0}, out[64];
    size_t n = 0, k = (size_t)(end - p);
    dir_init(&d, get_ctr(&p, end));
    k = (size_t)(end - p) < SYNC_HDR_LEN ? (size_t)(end - p) : SYNC_HDR_LEN;
    memcpy(hdr, p, k);
    p += k;
    if (sync_frame_open_hdr(&d, hdr, &n) == NOTES_OK) {
        uint8_t body[64 + SYNC_TAG_LEN] = {0};
        k = (size_t)(end - p) < sizeof(body) ? (size_t)(end - p)
                                             : sizeof(body);
        memcpy(body, p, k);
        if (n <= 64)
            (void)sync_frame_open_body(&d, body, n, out);
    }
}

/* 3: varints as messages carry them. */
static void varints(const uint8_t *p, const uint8_t *end)
{
    struct notes_buf b;
    notes__buf_init(&b, 16);
    while (p < end) {
        const uint8_t *q = p;
        uint64_t v;
        if (notes_sync__get_varint(&q, end, &v) != NOTES_OK) {
            if (q != p)
                abort(); /* no progress on failure */
            p++;
            continue;
        }
        b.len = 0;
        if (q <= p || q - p > 10 || notes__buf_put_varint(&b, v) != NOTES_OK ||
            b.len != (size_t)(q - p) || memcmp(b.data, p, b.len) != 0)
            abort();
        p = q;
    }
    notes__buf_release(&b);
}

/* 4: base32 both ways. */
static void base32(const uint8_t *p, const uint8_t *end)
{
    size_t n = (size_t)(end - p);
    uint8_t *bytes = malloc(n + 1), *back = malloc(n + 1);
    char *text = malloc(8 * ((n + 4) / 5) + 1);
    size_t got, cap = 8 * ((n + 4) / 5) + 1;
    if (!bytes || !back || !text)
        abort();
    /* sync's invite codes use libnotes' base32 (issue 16). */
    if (notes__unbase32_len(bytes, n, &got, (const char *)p, n) == NOTES_OK) {
        if (got != n * 5 / 8 || notes__base32(text, cap, bytes, got) != n)
            abort();
        for (size_t i = 0; i < n; i++)
            if (text[i] != tolower(p[i]))
                abort();
    }
    if (notes__base32(text, cap, p, n) != (n * 8 + 4) / 5 ||
        notes__unbase32_len(back, n, &got, text, strlen(text)) != NOTES_OK ||
        got != n || memcmp(back, p, n) != 0)
        abort();
    /* The decoder never writes past its limit. */
    if (n > 1 &&
        notes__unbase32_len(back, n - 1, &got, text, strlen(text)) == NOTES_OK)
        abort();
    free(bytes);
    free(back);
    free(text);
}

/* The discovery keys of two spaces ("other", "team" of the sync targets). */
static uint8_t disc_keys[2][32];

/* 5: an announcement sealed here, opened, then damaged. */
static void disc_sealed(const uint8_t *p, const uint8_t *end)
{
    uint8_t in[32 + 2 + 8] = {0}, dg[SYNC_DISC_LEN], pk[32];
    size_t k = (size_t)(end - p) < sizeof(in) ? (size_t)(end - p)
                                               : sizeof(in);
    size_t which = 9, flip;
    uint16_t port, got_port = 0;
    uint64_t ms = 0, got_ms = 0;
    int rc;
    memcpy(in, p, k);
    p += k;
    port = (uint16_t)(in[32] | in[33] << 8);
    for (int i = 0; i < 8; i++)
        ms |= (uint64_t)in[34 + i] << (8 * i);
    sync_disc_seal(disc_keys[1], in, port, ms, dg);
    rc = sync_disc_open((const uint8_t(*)[32])disc_keys, 2, dg, sizeof(dg),
                        &which, pk, &got_port, &got_ms);
    if (port == 0) {
        if (rc != SYNC_DISC_MALFORMED)
            abort();
    } else if (rc != NOTES_OK || which != 1 || memcmp(pk, in, 32) != 0 ||
               got_port != port || got_ms != ms) {
        abort();
    }
    flip = p < end ? *p : 0;
    flip = (flip | (size_t)(p + 1 < end ? p[1] : 0) << 8) % (SYNC_DISC_LEN * 8);
    dg[flip / 8] ^= (uint8_t)(1u << (flip % 8));
    rc = sync_disc_open((const uint8_t(*)[32])disc_keys, 2, dg, sizeof(dg),
                        &which, pk, &got_port, &got_ms);
    if (rc != (flip / 8 == 0 ? SYNC_DISC_MALFORMED : SYNC_DISC_FOREIGN))
        abort();
}

/* 6: whatever arrives on the discovery port. */
static void disc_raw(const uint8_t *p, const uint8_t *end)
{
    uint8_t pk[32];
    size_t which = 9;
    uint16_t port = 0;
    uint64_t ms;
    int rc = sync_disc_open((const uint8_t(*)[32])disc_keys, 2, p,
                            (size_t)(end - p), &which, pk, &port, &ms);
    if (rc != NOTES_OK && rc != SYNC_DISC_MALFORMED &&
        rc != SYNC_DISC_FOREIGN)
        abort();
    if (rc == NOTES_OK && (which > 1 || port == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    const uint8_t *end = data + size;
    if (!inited) {
        uint8_t secret[32];
        if (sodium_init() < 0)
            abort();
        memset(secret, 0x0e, 32);
        sync_disc_key(secret, disc_keys[0]);
        memset(secret, 0x7e, 32);
        sync_disc_key(secret, disc_keys[1]);
        inited = 1;
    }
    if (size < 1)
        return 0;
    switch (data[0] % 7) {
    case 0:
        forged_header(data + 1, end);
        break;
    case 1:
        round_trip(data + 1, end);
        break;
    case 2:
        raw(data + 1, end);
        break;
    case 3:
        varints(data + 1, end);
        break;
    case 4:
        base32(data + 1, end);
        break;
    case 5:
        disc_sealed(data + 1, end);
        break;
    default:
        disc_raw(data + 1, end);
        break;
    }
    return 0;
}
