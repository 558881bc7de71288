/*
 * frame.c: the cryptography of the wire, without I/O: the three handshake
 * messages keyed by a space's network key, and the sealing and opening of
 * frames (XChaCha20-Poly1305 with counter nonces, a sealed length header
 * before each body). Layout and rationale: docs/protocol.md.
 */
#include <string.h>

#include "sync_internal.h"

#define LBL_NET "notes-sync/1 network key"
#define LBL_M1 "notes-sync/1 m1"
#define LBL_H1 "notes-sync/1 h1"
#define LBL_H2 "notes-sync/1 h2"
#define LBL_H3 "notes-sync/1 h3"
#define LBL_K2 "notes-sync/1 k2"
#define LBL_K3 "notes-sync/1 k3"
#define LBL_I2R "notes-sync/1 initiator to responder"
#define LBL_R2I "notes-sync/1 responder to initiator"
#define LBL_SIG_R "notes-sync/1 responder"
#define LBL_SIG_I "notes-sync/1 initiator"

/* out = BLAKE2b-256 keyed by key (32 bytes) over label || a || b. */
static void kdf(uint8_t out[32], const uint8_t key[32], const char *label,
                const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    notes__hash_state st;
    notes__hash_init(&st, key, 32, 32);
    notes__hash_update(&st, (const uint8_t *)label, strlen(label));
    if (an)
        notes__hash_update(&st, a, an);
    if (bn)
        notes__hash_update(&st, b, bn);
    notes__hash_final(&st, out, 32);
    notes__wipe(&st, sizeof(st));
}

void sync_netkey(const uint8_t secret[32], uint8_t k[32])
{
    kdf(k, secret, LBL_NET, NULL, 0, NULL, 0);
}

void sync_hs_wipe(struct sync_hs *hs)
{
    notes__wipe(hs, sizeof(*hs));
}

static int fail(const char *why)
{
    notes_sync__detail("handshake: %s", why);
    return NOTES_SYNC_EHANDSHAKE;
}

static void nonce_of(uint64_t ctr, uint8_t n[24])
{
    memset(n, 0, 24);
    for (int i = 0; i < 8; i++)
        n[i] = (uint8_t)(ctr >> (8 * i));
}

/* The signed statement: a role label and a transcript hash. */
static void statement(uint8_t *out, size_t *n, const char *label,
                      const uint8_t h[32])
{
    size_t l = strlen(label);
    memcpy(out, label, l); // NOLINT(bugprone-not-null-terminated-result): bytes
    memcpy(out + l, h, 32);
    *n = l + 32;
}

int sync_hs_m1(struct sync_hs *hs, const uint8_t k[32],
               uint8_t m1[SYNC_M1_LEN])
{
    memset(hs, 0, sizeof(*hs));
    hs->initiator = 1;
    memcpy(hs->k, k, 32);
    notes__dh_keypair(hs->e_pk, hs->e_sk);
    memcpy(m1, hs->e_pk, 32);
    kdf(m1 + 32, hs->k, LBL_M1, hs->e_pk, 32, NULL, 0);
    return NOTES_OK;
}

int sync_hs_check_m1(struct sync_hs *hs, const uint8_t (*keys)[32], size_t nk,
                     const uint8_t m1[SYNC_M1_LEN], size_t *which)
{
    size_t hit = SIZE_MAX;
    memset(hs, 0, sizeof(*hs));
    /* Try every key so the time does not say which space matched. */
    for (size_t i = 0; i < nk; i++) {
        uint8_t mac[32];
        kdf(mac, keys[i], LBL_M1, m1, 32, NULL, 0);
        if (notes__equal(mac, m1 + 32, 32) && hit == SIZE_MAX)
            hit = i;
    }
    if (hit == SIZE_MAX)
        return fail("the peer does not hold the secret of any of our spaces");
    *which = hit;
    memcpy(hs->k, keys[hit], 32);
    memcpy(hs->peer_e, m1, 32);
    return NOTES_OK;
}

int sync_hs_m2(struct sync_hs *hs, const notes_identity *id,
               uint8_t m2[SYNC_M2_LEN])
{
    uint8_t k2[32], plain[96], msg[64], nonce[24];
    size_t mn;
    notes__dh_keypair(hs->e_pk, hs->e_sk);
    if (notes__dh(hs->ee, hs->e_sk, hs->peer_e) != NOTES_OK)
        return fail("the peer's ephemeral key is of low order");
    kdf(hs->h, hs->k, LBL_H1, hs->peer_e, 32, hs->e_pk, 32);
    kdf(k2, hs->ee, LBL_K2, hs->h, 32, NULL, 0);
    statement(msg, &mn, LBL_SIG_R, hs->h);
    memcpy(plain, notes_identity_public_key(id), 32);
    if (notes_identity_sign(id, msg, mn, plain + 32) != NOTES_OK) {
        notes__wipe(k2, 32);
        return fail("cannot sign");
    }
    memcpy(m2, hs->e_pk, 32);
    nonce_of(0, nonce);
    notes__aead_seal(m2 + 32, plain, 96, hs->h, 32, nonce, k2);
    kdf(hs->h, hs->k, LBL_H2, hs->h, 32, m2 + 32, SYNC_M2_LEN - 32);
    notes__wipe(k2, 32);
    return NOTES_OK;
}

/*
 * Open a peer's proof (M2's sealed part, or M3) under k: its Ed25519 key
 * and its signature of the statement `label` over the transcript, which
 * must verify. OUT plain (96 bytes), hs->peer.
 */
static int open_proof(struct sync_hs *hs, const uint8_t k[32],
                      const uint8_t *ct, size_t n, const char *label,
                      uint8_t plain[96], const char *bad_seal,
                      const char *bad_sig)
{
    uint8_t msg[64], nonce[24];
    size_t mn;
    nonce_of(0, nonce);
    if (notes__aead_open(plain, ct, n, hs->h, 32, nonce, k) != NOTES_OK)
        return fail(bad_seal);
    statement(msg, &mn, label, hs->h);
    if (notes_signature_verify(plain + 32, msg, mn, plain) != NOTES_OK)
        return fail(bad_sig);
    memcpy(hs->peer, plain, 32);
    return NOTES_OK;
}

int sync_hs_m3(struct sync_hs *hs, const notes_identity *id,
               const uint8_t m2[SYNC_M2_LEN], uint8_t m3[SYNC_M3_LEN])
{
    uint8_t k[32], plain[96], msg[64], nonce[24];
    size_t mn;
    int rc = NOTES_OK;
    memcpy(hs->peer_e, m2, 32);
    if (notes__dh(hs->ee, hs->e_sk, hs->peer_e) != NOTES_OK)
        return fail("the peer's ephemeral key is of low order");
    kdf(hs->h, hs->k, LBL_H1, hs->e_pk, 32, hs->peer_e, 32);
    kdf(k, hs->ee, LBL_K2, hs->h, 32, NULL, 0);
    if ((rc = open_proof(hs, k, m2 + 32, SYNC_M2_LEN - 32, LBL_SIG_R, plain,
                         "the peer's reply does not authenticate (another "
                         "space secret, or altered)",
                         "the responder's signature does not verify")))
        goto out;
    kdf(hs->h, hs->k, LBL_H2, hs->h, 32, m2 + 32, SYNC_M2_LEN - 32);
    kdf(k, hs->ee, LBL_K3, hs->h, 32, NULL, 0);
    nonce_of(0, nonce);
    statement(msg, &mn, LBL_SIG_I, hs->h);
    memcpy(plain, notes_identity_public_key(id), 32);
    if (notes_identity_sign(id, msg, mn, plain + 32) != NOTES_OK) {
        rc = fail("cannot sign");
        goto out;
    }
    notes__aead_seal(m3, plain, 96, hs->h, 32, nonce, k);
    kdf(hs->h, hs->k, LBL_H3, hs->h, 32, m3, SYNC_M3_LEN);
out:
    notes__wipe(k, 32);
    return rc;
}

int sync_hs_check_m3(struct sync_hs *hs, const uint8_t m3[SYNC_M3_LEN])
{
    uint8_t k[32], plain[96];
    int rc = NOTES_OK;
    kdf(k, hs->ee, LBL_K3, hs->h, 32, NULL, 0);
    if ((rc = open_proof(hs, k, m3, SYNC_M3_LEN, LBL_SIG_I, plain,
                         "the initiator's proof does not authenticate",
                         "the initiator's signature does not verify")))
        goto out;
    kdf(hs->h, hs->k, LBL_H3, hs->h, 32, m3, SYNC_M3_LEN);
out:
    notes__wipe(k, 32);
    return rc;
}

void sync_hs_finish(struct sync_hs *hs, uint8_t tx[32], uint8_t rx[32])
{
    uint8_t i2r[32], r2i[32];
    kdf(i2r, hs->ee, LBL_I2R, hs->h, 32, NULL, 0);
    kdf(r2i, hs->ee, LBL_R2I, hs->h, 32, NULL, 0);
    memcpy(tx, hs->initiator ? i2r : r2i, 32);
    memcpy(rx, hs->initiator ? r2i : i2r, 32);
    notes__wipe(i2r, 32);
    notes__wipe(r2i, 32);
    notes__wipe(hs->e_sk, 32);
    notes__wipe(hs->ee, 32);
}

int sync_frame_seal(struct sync_dir *d, const uint8_t *body, size_t n,
                    uint8_t *out)
{
    uint8_t hdr[4], nonce[24];
    if (n == 0 || n > NOTES_SYNC_FRAME_MAX)
        return NOTES_EINVAL;
    notes__store_u32le(hdr, (uint32_t)n);
    nonce_of(d->ctr, nonce);
    notes__aead_seal(out, hdr, 4, NULL, 0, nonce, d->key);
    nonce_of(d->ctr + 1, nonce);
    notes__aead_seal(out + SYNC_HDR_LEN, body, n, NULL, 0, nonce, d->key);
    d->ctr += 2;
    return NOTES_OK;
}

int sync_frame_open_hdr(struct sync_dir *d, const uint8_t hdr[SYNC_HDR_LEN],
                        size_t *n)
{
    uint8_t plain[4], nonce[24];
    uint32_t len;
    nonce_of(d->ctr, nonce);
    if (notes__aead_open(plain, hdr, SYNC_HDR_LEN, NULL, 0, nonce, d->key) !=
        NOTES_OK) {
        notes_sync__detail("frame %llu: header does not authenticate "
                           "(tampered, replayed, reordered or truncated)",
                           (unsigned long long)(d->ctr / 2));
        return NOTES_SYNC_EFRAME;
    }
    len = notes__load_u32le(plain);
    if (len == 0 || len > NOTES_SYNC_FRAME_MAX) {
        notes_sync__detail("frame %llu: length %u outside 1..%u",
                           (unsigned long long)(d->ctr / 2), len,
                           NOTES_SYNC_FRAME_MAX);
        return len ? NOTES_ETOOBIG : NOTES_SYNC_EPROTO;
    }
    d->ctr++;
    *n = len;
    return NOTES_OK;
}

int sync_frame_open_body(struct sync_dir *d, const uint8_t *in, size_t n,
                         uint8_t *out)
{
    uint8_t nonce[24];
    nonce_of(d->ctr, nonce);
    if (notes__aead_open(out, in, n + SYNC_TAG_LEN, NULL, 0, nonce, d->key) !=
        NOTES_OK) {
        notes_sync__detail("frame %llu: body does not authenticate "
                           "(tampered, replayed or reordered)",
                           (unsigned long long)(d->ctr / 2));
        return NOTES_SYNC_EFRAME;
    }
    d->ctr++;
    return NOTES_OK;
}
