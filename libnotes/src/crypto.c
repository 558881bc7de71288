/*
 * crypto.c: the one file of notes that speaks to libsodium.
 *
 * Every module (libnotes, formats, sync, the page server, the CLI) hashes,
 * signs, seals and draws randomness through these few functions, so the
 * primitives notes depends on are listed in one place and a change of
 * library or parameters touches one file. They are thin: each is one
 * libsodium call, with libnotes' error convention where a call can fail.
 */
#include <sodium.h>

#include "internal.h"

_Static_assert(sizeof(notes__hash_state) >= sizeof(crypto_generichash_state),
               "notes__hash_state too small for libsodium's state");
_Static_assert(_Alignof(notes__hash_state) >= _Alignof(crypto_generichash_state),
               "notes__hash_state under-aligned");
/* One assertion per size: the header's numbers are libsodium's. */
_Static_assert(NOTES__SIGN_PKBYTES == crypto_sign_PUBLICKEYBYTES, "Ed25519 pk");
_Static_assert(NOTES__SIGN_SKBYTES == crypto_sign_SECRETKEYBYTES, "Ed25519 sk");
_Static_assert(NOTES__SIGN_SEEDBYTES == crypto_sign_SEEDBYTES, "Ed25519 seed");
_Static_assert(NOTES__SIGBYTES == crypto_sign_BYTES, "Ed25519 signature");
_Static_assert(NOTES__DH_BYTES == crypto_scalarmult_BYTES, "X25519 shared");
_Static_assert(NOTES__DH_BYTES == crypto_box_PUBLICKEYBYTES, "X25519 pk");
_Static_assert(NOTES__DH_BYTES == crypto_box_SECRETKEYBYTES, "X25519 sk");
_Static_assert(NOTES__AEAD_KEYBYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "AEAD key");
_Static_assert(NOTES__AEAD_NPUBBYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
               "AEAD nonce");
_Static_assert(NOTES__AEAD_ABYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "AEAD tag");
_Static_assert(NOTES__BOX_KEYBYTES == crypto_secretbox_KEYBYTES, "box key");
_Static_assert(NOTES__BOX_NONCEBYTES == crypto_secretbox_NONCEBYTES, "box nonce");
_Static_assert(NOTES__BOX_MACBYTES == crypto_secretbox_MACBYTES, "box tag");
_Static_assert(NOTES__PWHASH_SALTBYTES == crypto_pwhash_SALTBYTES, "salt size");

int notes__crypto_init(void)
{
    if (sodium_init() < 0) {
        notes__set_detail("libsodium failed to initialize");
        return NOTES_EIO;
    }
    /* The Argon2id limits are fixed in the header so that other modules
     * need not include sodium.h; check them against the library once. */
    if (NOTES__PWHASH_OPS_MIN != crypto_pwhash_OPSLIMIT_MIN ||
        NOTES__PWHASH_OPS_INTERACTIVE != crypto_pwhash_OPSLIMIT_INTERACTIVE ||
        NOTES__PWHASH_OPS_MAX != crypto_pwhash_OPSLIMIT_SENSITIVE ||
        NOTES__PWHASH_MEM_MIN != crypto_pwhash_MEMLIMIT_MIN ||
        NOTES__PWHASH_MEM_INTERACTIVE != crypto_pwhash_MEMLIMIT_INTERACTIVE ||
        NOTES__PWHASH_MEM_MAX != crypto_pwhash_MEMLIMIT_SENSITIVE) {
        notes__set_detail("libsodium's Argon2id limits differ from notes'");
        return NOTES_EIO;
    }
    return NOTES_OK;
}

/* ---- hashing ---- */

void notes__hash(uint8_t *out, size_t outlen, const void *in, size_t n,
                 const uint8_t *key, size_t keylen)
{
    crypto_generichash(out, outlen, in, n, keylen ? key : NULL, keylen);
}

void notes__hash_init(notes__hash_state *st, const uint8_t *key,
                      size_t keylen, size_t outlen)
{
    crypto_generichash_init((crypto_generichash_state *)(void *)st,
                            keylen ? key : NULL, keylen, outlen);
}

void notes__hash_update(notes__hash_state *st, const void *in, size_t n)
{
    crypto_generichash_update((crypto_generichash_state *)(void *)st, in, n);
}

void notes__hash_final(notes__hash_state *st, uint8_t *out, size_t outlen)
{
    crypto_generichash_final((crypto_generichash_state *)(void *)st, out,
                             outlen);
}

/* ---- randomness and secrets ---- */

void notes__random(void *buf, size_t n)
{
    randombytes_buf(buf, n);
}

uint32_t notes__random_below(uint32_t upper)
{
    return randombytes_uniform(upper);
}

void notes__wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

int notes__equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void *notes__secure_alloc(size_t n)
{
    return sodium_malloc(n);
}

void notes__secure_free(void *p)
{
    sodium_free(p);
}

/* ---- base64 (original alphabet, padded) ---- */

size_t notes__base64(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    if (outcap < need) {
        if (outcap)
            out[0] = '\0';
        return need - 1;
    }
    sodium_bin2base64(out, outcap, p, n, sodium_base64_VARIANT_ORIGINAL);
    return need - 1;
}

int notes__unbase64(uint8_t *out, size_t cap, size_t *outlen, const char *s,
                    size_t n)
{
    const char *end = NULL;
    size_t got = 0;
    if (sodium_base642bin(out, cap, s, n, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + n)
        return NOTES_ECORRUPT;
    *outlen = got;
    return NOTES_OK;
}

/* ---- Ed25519 ---- */

int notes__sign_keypair(uint8_t pk[32], uint8_t sk[64], const uint8_t *seed)
{
    int r = seed ? crypto_sign_seed_keypair(pk, sk, seed)
                 : crypto_sign_keypair(pk, sk);
    return r == 0 ? NOTES_OK : NOTES_EIO;
}

void notes__sign_seed(uint8_t seed[32], const uint8_t sk[64])
{
    crypto_sign_ed25519_sk_to_seed(seed, sk);
}

int notes__sign(uint8_t sig[64], const void *msg, size_t n,
                const uint8_t sk[64])
{
    static const uint8_t empty[1];
    return crypto_sign_detached(sig, NULL, msg ? msg : empty, n, sk) == 0
               ? NOTES_OK
               : NOTES_EIO;
}

int notes__sign_verify(const uint8_t sig[64], const void *msg, size_t n,
                       const uint8_t pk[32])
{
    static const uint8_t empty[1];
    return crypto_sign_verify_detached(sig, msg ? msg : empty, n, pk) == 0;
}

int notes__ed25519_valid_point(const uint8_t pk[32])
{
    return crypto_core_ed25519_is_valid_point(pk) == 1;
}

/* ---- X25519 ---- */

void notes__dh_keypair(uint8_t pk[32], uint8_t sk[32])
{
    crypto_box_keypair(pk, sk);
}

int notes__dh(uint8_t shared[32], const uint8_t sk[32], const uint8_t pk[32])
{
    return crypto_scalarmult(shared, sk, pk) == 0 ? NOTES_OK : NOTES_EINVAL;
}

/* ---- authenticated encryption ---- */

void notes__aead_seal(uint8_t *out, const uint8_t *msg, size_t n,
                      const uint8_t *ad, size_t adlen,
                      const uint8_t npub[24], const uint8_t key[32])
{
    crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, msg, n, ad, adlen,
                                               NULL, npub, key);
}

int notes__aead_open(uint8_t *out, const uint8_t *ct, size_t n,
                     const uint8_t *ad, size_t adlen,
                     const uint8_t npub[24], const uint8_t key[32])
{
    if (n < NOTES__AEAD_ABYTES)
        return NOTES_ECORRUPT;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, n,
                                                      ad, adlen, npub, key) == 0
               ? NOTES_OK
               : NOTES_ECORRUPT;
}

/* ---- passphrase-protected keys ---- */

int notes__pwhash(uint8_t *key, size_t keylen, const char *pass,
                  size_t passlen, const uint8_t salt[16],
                  unsigned long long ops, size_t mem)
{
    if (crypto_pwhash(key, keylen, pass, passlen, salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        notes__set_detail("not enough memory for the passphrase's key "
                          "derivation (%zu bytes)", mem);
        return NOTES_ENOMEM;
    }
    return NOTES_OK;
}

void notes__box_seal(uint8_t *out, const uint8_t *msg, size_t n,
                     const uint8_t nonce[24], const uint8_t key[32])
{
    crypto_secretbox_easy(out, msg, n, nonce, key);
}

int notes__box_open(uint8_t *out, const uint8_t *ct, size_t n,
                    const uint8_t nonce[24], const uint8_t key[32])
{
    if (n < NOTES__BOX_MACBYTES)
        return NOTES_ECORRUPT;
    return crypto_secretbox_open_easy(out, ct, n, nonce, key) == 0
               ? NOTES_OK
               : NOTES_EPASSPHRASE;
}
