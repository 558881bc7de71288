/*
 * fuzz_handshake.c: the handshake as the session API sees it (the state
 * machine of sync/src/session.c over sync/src/frame.c): a session with a
 * fixed identity and space is fed what a peer might send, in pieces.
 *
 * Byte 0 picks the case, byte 1 a split parameter, the rest is payload:
 *   bit 0   the session under test: 0 responder (fed M1, then M3),
 *           1 initiator (sends M1, is fed M2);
 *   bit 1   0: the payload is fed as it is (a responder must not answer
 *           an M1 that does not authenticate; the corpus holds captured
 *           sessions that do: randomness is deterministic, so a recorded
 *           peer's bytes fit again); 1: the harness plays the peer with the space secret, so
 *           fuzzed content gets past the MACs: M1 around a fuzzed
 *           ephemeral key, M2 / M3 sealed around 96 fuzzed bytes (or a
 *           genuine identity proof, bit 5), then the rest of the payload
 *           sealed as one frame when the handshake completed;
 *   bits 2-3  how bytes arrive: whole, byte by byte, in chunks of
 *           byte 1 + 1, or in two pieces split at byte 1;
 *   bit 4   (bit 1 set) the payload gives the peer's ephemeral public key
 *           itself (low-order points...) instead of its secret;
 *   bit 5   (bit 1 set) the peer's proof of identity is genuine: the
 *           handshake must complete, and what the session sends must be
 *           exactly docs/protocol.md;
 *   bit 6   responder: it serves two spaces (the match is the second);
 *           initiator: bytes arrive before it was asked for M1;
 *   bit 7   the accept callback refuses the peer's key.
 * Randomness is deterministic (reset per input), so every run of an input
 * is the same. With FUZZ_HANDSHAKE_VERBOSE set, how each input ended goes
 * to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sync_internal.h"

/* ---- deterministic randomness (before sodium_init) ---- */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static const char *rng_name(void)
{
    return "fuzz-deterministic";
}
static uint32_t rng_random(void)
{
    return (uint32_t)rng_next();
}
static void rng_buf(void *const buf, const size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
}
static randombytes_implementation rng_impl = {rng_name, rng_random, NULL,
                                              NULL, rng_buf, NULL};

/* ---- the protocol, from docs/protocol.md, for the harness's side ---- */
static void kdf(uint8_t out[32], const uint8_t key[32], const char *label,
                const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    if (an)
        crypto_generichash_update(&st, a, an);
    if (bn)
        crypto_generichash_update(&st, b, bn);
    crypto_generichash_final(&st, out, 32);
}

static const uint8_t nonce0[24];

static void statement(uint8_t out[64], size_t *n, const char *label,
                      const uint8_t h[32])
{
    size_t l = strlen(label);
    memcpy(out, label, l);
    memcpy(out + l, h, 32);
    *n = l + 32;
}

/* pk ‖ sign(label ‖ h): a genuine proof of identity. */
static void proof(uint8_t plain[96], const notes_identity *id,
                  const char *label, const uint8_t h[32])
{
    uint8_t msg[64];
    size_t mn;
    statement(msg, &mn, label, h);
    memcpy(plain, notes_identity_public_key(id), 32);
    if (notes_identity_sign(id, msg, mn, plain + 32) != NOTES_OK)
        abort();
}

/* Open a proof sealed by the session and check it is `id`'s. */
static void check_proof(const uint8_t *sealed, const uint8_t k[32],
                        const uint8_t ad[32], const notes_identity *id,
                        const char *label, const uint8_t h[32])
{
    uint8_t plain[96], msg[64];
    size_t mn;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, NULL, NULL, sealed, 96 + SYNC_TAG_LEN, ad, 32, nonce0,
            k) != 0 ||
        memcmp(plain, notes_identity_public_key(id), 32) != 0)
        abort();
    statement(msg, &mn, label, h);
    if (notes_signature_verify(plain + 32, msg, mn, plain) != NOTES_OK)
        abort();
}

/* ---- fixture, made once ---- */
static int verbose; /* FUZZ_HANDSHAKE_VERBOSE set: how each input ended */
static notes_identity *me, *peer;
static notes_sync_space spaces[2]; /* "other", "team" */
static uint8_t netkey[32];    /* of "team" */

static struct {
    uint8_t *data;
    size_t len, cap;
} inbox; /* what the session sent */

static int refuse_cb(void *ud, const uint8_t pk[32])
{
    (void)ud, (void)pk;
    return 1;
}

static void setup(void)
{
    rng_state = 1;
    if (randombytes_set_implementation(&rng_impl) != 0 ||
        notes_init() != NOTES_OK ||
        notes_identity_generate("fuzzed", &me) != NOTES_OK ||
        notes_identity_generate("peer", &peer) != NOTES_OK)
        abort();
    memcpy(spaces[0].name, "other", 6);
    memset(spaces[0].secret, 0x0e, 32);
    memcpy(spaces[1].name, "team", 5);
    memset(spaces[1].secret, 0x7e, 32);
    sync_netkey(spaces[1].secret, netkey);
}

/* Take whatever the session has to send. */
static void drain(notes_sync_session *s)
{
    for (int i = 0; i < 64; i++) {
        const uint8_t *p;
        size_t n;
        int rc = notes_sync_next_msg(s, &p, &n);
        (void)rc; /* a failed session still hands out its ERROR frame */
        if (!n)
            return;
        if (inbox.len + n > inbox.cap) {
            size_t c = inbox.cap ? inbox.cap : 4096;
            while (c < inbox.len + n)
                c *= 2;
            if (!(inbox.data = realloc(inbox.data, c)))
                abort();
            inbox.cap = c;
        }
        memcpy(inbox.data + inbox.len, p, n);
        inbox.len += n;
    }
    abort(); /* a session that never runs dry */
}

/* Feed n bytes in pieces as the split mode says; stop at a failure (then
 * feed once more: a failed session keeps refusing with its error). */
static int deliver(notes_sync_session *s, const uint8_t *p, size_t n,
                   int split, uint8_t param)
{
    size_t off = 0;
    int rc = NOTES_OK;
    while (off < n) {
        size_t k = n - off;
        if (split == 1)
            k = 1;
        else if (split == 2 && k > (size_t)param + 1)
            k = (size_t)param + 1;
        else if (split == 3 && off == 0 && param < n)
            k = param ? param : n;
        rc = notes_sync_receive(s, p + off, k);
        off += k;
        drain(s);
        if (rc != NOTES_OK) {
            if (notes_sync_state(s) == NOTES_SYNC_FAILED &&
                (notes_sync_receive(s, p, 1) != notes_sync_session_error(s) ||
                 notes_sync_session_error(s) != rc))
                abort();
            return rc;
        }
    }
    return rc;
}

/* Up to n payload bytes (zero-padded) into out. */
static void take(uint8_t *out, size_t n, const uint8_t **p,
                 const uint8_t *end)
{
    size_t k = (size_t)(end - *p) < n ? (size_t)(end - *p) : n;
    memset(out, 0, n);
    memcpy(out, *p, k);
    *p += k;
}

/* The rest of the payload as one frame under `key` (counter 0). */
static void sealed_tail(notes_sync_session *s, const uint8_t key[32],
                        const uint8_t *p, const uint8_t *end, int split,
                        uint8_t param)
{
    struct sync_dir d;
    size_t n = (size_t)(end - p);
    uint8_t *f;
    if (n == 0 || n > NOTES_SYNC_FRAME_MAX)
        return;
    memcpy(d.key, key, 32);
    d.ctr = 0;
    if (!(f = malloc(SYNC_HDR_LEN + n + SYNC_TAG_LEN)) ||
        sync_frame_seal(&d, p, n, f) != NOTES_OK)
        abort();
    (void)deliver(s, f, SYNC_HDR_LEN + n + SYNC_TAG_LEN, split, param);
    free(f);
}

/* The session is the responder: M1 and M3 come from the harness. */
static void fuzz_responder(notes_sync_session *s, uint8_t mode, uint8_t param,
                           const uint8_t *p, const uint8_t *end)
{
    int split = (mode >> 2) & 3, honest = mode & 32, refuse = mode & 128;
    uint8_t m1[SYNC_M1_LEN], m3[SYNC_M3_LEN], esk[32] = {0}, ee[32], h1[32],
        h2[32], h3[32], k[32], plain[96], rk[32];
    if (!(mode & 2)) {
        size_t n = (size_t)(end - p);
        int m1_ok = 0;
        if (n >= SYNC_M1_LEN) {
            uint8_t mac[32];
            kdf(mac, netkey, "notes-sync/1 m1", p, 32, NULL, 0);
            m1_ok = memcmp(mac, p + 32, 32) == 0;
        }
        (void)deliver(s, p, n, split, param);
        /* Without a genuine M1 (a captured one is): no reply at all. */
        if (!m1_ok && (inbox.len != 0 ||
                       (n >= SYNC_M1_LEN && notes_sync_session_error(s) !=
                                                NOTES_SYNC_EHANDSHAKE)))
            abort();
        return;
    }
    if (mode & 16) {
        take(m1, 32, &p, end); /* any point */
    } else {
        take(esk, 32, &p, end);
        crypto_scalarmult_base(m1, esk);
    }
    kdf(m1 + 32, netkey, "notes-sync/1 m1", m1, 32, NULL, 0);
    if (deliver(s, m1, sizeof(m1), split, param) != NOTES_OK) {
        /* Only a low-order key of our choosing may fail it. */
        if (!(mode & 16) || inbox.len != 0)
            abort();
        return;
    }
    if (inbox.len != SYNC_M2_LEN ||
        notes_sync_state(s) != NOTES_SYNC_HANDSHAKE)
        abort();
    if (mode & 16) {
        /* No secret for that key: M3 and the rest as they are. */
        (void)deliver(s, p, (size_t)(end - p), split, param);
        if (inbox.len != SYNC_M2_LEN)
            abort();
        return;
    }
    if (crypto_scalarmult(ee, esk, inbox.data) != 0)
        abort();
    kdf(h1, netkey, "notes-sync/1 h1", m1, 32, inbox.data, 32);
    kdf(k, ee, "notes-sync/1 k2", h1, 32, NULL, 0);
    check_proof(inbox.data + 32, k, h1, me, "notes-sync/1 responder", h1);
    kdf(h2, netkey, "notes-sync/1 h2", h1, 32, inbox.data + 32,
        SYNC_M2_LEN - 32);
    kdf(k, ee, "notes-sync/1 k3", h2, 32, NULL, 0);
    if (honest)
        proof(plain, peer, "notes-sync/1 initiator", h2);
    else
        take(plain, 96, &p, end);
    crypto_aead_xchacha20poly1305_ietf_encrypt(m3, NULL, plain, 96, h2, 32,
                                               NULL, nonce0, k);
    (void)deliver(s, m3, sizeof(m3), split, param);
    if (inbox.len != SYNC_M2_LEN)
        abort(); /* the responder waits for the initiator's HAVE */
    if (notes_sync_state(s) != NOTES_SYNC_OPEN) {
        if (honest && (!refuse || notes_sync_session_error(s) !=
                                      NOTES_SYNC_EREFUSED))
            abort();
        (void)deliver(s, p, (size_t)(end - p), split, param);
        return;
    }
    if (refuse || memcmp(notes_sync_session_report(s)->peer, plain, 32) ||
        strcmp(notes_sync_session_report(s)->space, "team") != 0)
        abort();
    kdf(h3, netkey, "notes-sync/1 h3", h2, 32, m3, SYNC_M3_LEN);
    kdf(rk, ee, "notes-sync/1 initiator to responder", h3, 32, NULL, 0);
    sealed_tail(s, rk, p, end, split, param);
}

/* The session is the initiator: it sends M1, M2 comes from the harness. */
static void fuzz_initiator(notes_sync_session *s, uint8_t mode, uint8_t param,
                           const uint8_t *p, const uint8_t *end)
{
    int split = (mode >> 2) & 3, honest = mode & 32, refuse = mode & 128;
    uint8_t m1[SYNC_M1_LEN], m2[SYNC_M2_LEN], esk[32], ee[32], h1[32],
        h2[32], h3[32], k[32], mac[32], plain[96], tk[32], rk[32];
    if (mode & 64) {
        /* Bytes before the initiator spoke are a protocol error. */
        if (p < end && (notes_sync_receive(s, p, 1) != NOTES_SYNC_EPROTO ||
                        notes_sync_state(s) != NOTES_SYNC_FAILED))
            abort();
        return;
    }
    drain(s);
    if (inbox.len != SYNC_M1_LEN)
        abort();
    memcpy(m1, inbox.data, SYNC_M1_LEN);
    kdf(mac, netkey, "notes-sync/1 m1", m1, 32, NULL, 0);
    if (memcmp(mac, m1 + 32, 32) != 0)
        abort();
    if (!(mode & 2)) {
        /* As it is (a captured M2 for this deterministic M1 opens). */
        (void)deliver(s, p, (size_t)(end - p), split, param);
        return;
    }
    if (mode & 16) {
        /* Any point as e_R, then the rest as it is. */
        take(m2, 32, &p, end);
        take(m2 + 32, SYNC_M2_LEN - 32, &p, end);
        (void)deliver(s, m2, sizeof(m2), split, param);
        (void)deliver(s, p, (size_t)(end - p), split, param);
        /* Nothing more than M1 goes out, unless the input carried the
         * captured genuine M2 (with bit 4 flipped, libFuzzer found one):
         * its MAC under the network key is what no other bytes can give.
         * Then the initiator has proven the peer and answers M3 (and its
         * first frames, whatever the garbage after them does). */
        static const uint8_t zero[32];
        if (inbox.len != SYNC_M1_LEN &&
            (inbox.len < SYNC_M1_LEN + SYNC_M3_LEN ||
             !memcmp(notes_sync_session_report(s)->peer, zero, 32)))
            abort();
        return;
    }
    take(esk, 32, &p, end);
    crypto_scalarmult_base(m2, esk);
    if (crypto_scalarmult(ee, esk, m1) != 0)
        abort();
    kdf(h1, netkey, "notes-sync/1 h1", m1, 32, m2, 32);
    kdf(k, ee, "notes-sync/1 k2", h1, 32, NULL, 0);
    if (honest)
        proof(plain, peer, "notes-sync/1 responder", h1);
    else
        take(plain, 96, &p, end);
    crypto_aead_xchacha20poly1305_ietf_encrypt(m2 + 32, NULL, plain, 96, h1,
                                               32, NULL, nonce0, k);
    (void)deliver(s, m2, sizeof(m2), split, param);
    if (notes_sync_state(s) != NOTES_SYNC_OPEN) {
        /* Refused or failed: nothing more was sent (no M3). */
        if (inbox.len != SYNC_M1_LEN ||
            (honest && (!refuse || notes_sync_session_error(s) !=
                                       NOTES_SYNC_EREFUSED)))
            abort();
        (void)deliver(s, p, (size_t)(end - p), split, param);
        return;
    }
    if (refuse || memcmp(notes_sync_session_report(s)->peer, plain, 32) ||
        inbox.len < SYNC_M1_LEN + SYNC_M3_LEN)
        abort();
    /* M3 proves our identity; the frames after it open under k_I→R. */
    kdf(h2, netkey, "notes-sync/1 h2", h1, 32, m2 + 32, SYNC_M2_LEN - 32);
    kdf(k, ee, "notes-sync/1 k3", h2, 32, NULL, 0);
    check_proof(inbox.data + SYNC_M1_LEN, k, h2, me, "notes-sync/1 initiator",
                h2);
    kdf(h3, netkey, "notes-sync/1 h3", h2, 32, inbox.data + SYNC_M1_LEN,
        SYNC_M3_LEN);
    kdf(tk, ee, "notes-sync/1 responder to initiator", h3, 32, NULL, 0);
    kdf(rk, ee, "notes-sync/1 initiator to responder", h3, 32, NULL, 0);
    {
        struct sync_dir d;
        size_t off = SYNC_M1_LEN + SYNC_M3_LEN, n;
        uint8_t *body = malloc(NOTES_SYNC_FRAME_MAX);
        memcpy(d.key, rk, 32);
        d.ctr = 0;
        if (!body)
            abort();
        while (off < inbox.len) {
            if (inbox.len - off < SYNC_HDR_LEN ||
                sync_frame_open_hdr(&d, inbox.data + off, &n) != NOTES_OK ||
                inbox.len - off - SYNC_HDR_LEN < n + SYNC_TAG_LEN ||
                sync_frame_open_body(&d, inbox.data + off + SYNC_HDR_LEN, n,
                                     body) != NOTES_OK)
                abort();
            off += SYNC_HDR_LEN + n + SYNC_TAG_LEN;
        }
        if (d.ctr == 0)
            abort(); /* its HAVE came with M3 */
        free(body);
    }
    sealed_tail(s, tk, p, end, split, param);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    notes_sync_config c;
    notes_sync_session *s;
    uint8_t mode, param;
    if (!inited) {
        verbose = getenv("FUZZ_HANDSHAKE_VERBOSE") != NULL;
        setup();
        inited = 1;
    }
    if (size < 2)
        return 0;
    mode = data[0];
    param = data[1];
    rng_state = 0x5eed;
    inbox.len = 0;
    memset(&c, 0, sizeof(c));
    c.role = (mode & 1) ? NOTES_SYNC_INITIATOR : NOTES_SYNC_RESPONDER;
    c.identity = me;
    if (c.role == NOTES_SYNC_RESPONDER && (mode & 64)) {
        c.spaces = spaces;
        c.nspaces = 2;
    } else {
        c.spaces = &spaces[1];
        c.nspaces = 1;
    }
    if (mode & 128)
        c.accept = refuse_cb;
    if (notes_sync_session_new(&c, &s) != NOTES_OK)
        abort();
    if (c.role == NOTES_SYNC_RESPONDER)
        fuzz_responder(s, mode, param, data + 2, data + size);
    else
        fuzz_initiator(s, mode, param, data + 2, data + size);
    if (verbose)
        fprintf(stderr, "fuzz_handshake: mode %#x: state %d %s\n", mode,
                notes_sync_state(s), notes_sync_session_detail(s));
    notes_sync_session_free(s);
    return 0;
}
