/*
 * discovery_datagram.c: the pure part of LAN discovery (docs/protocol.md,
 * "Discovery"), no I/O, so the tests call it directly: the sealed
 * announcement (key, seal, open) and the receiver's filter (rate limits,
 * replays). A daemon announces itself per space by UDP broadcast; only
 * members can open an announcement (it is sealed under a key derived from
 * the space's secret), so a non-member sees random bytes of a fixed size and
 * learns neither the space nor the key. An announcement only suggests an
 * address: the handshake (frame.c) still authenticates everything.
 */
#include <stdint.h>
#include <string.h>

#include "sync_internal.h"

#define LBL_DISC "notes-sync/1 discovery key"

/* ---- the datagram ---- */

void sync_disc_key(const uint8_t secret[32], uint8_t kd[32])
{
    notes__hash(kd, 32, (const uint8_t *)LBL_DISC, strlen(LBL_DISC), secret, 32);
}

void sync_disc_seal(const uint8_t kd[32], const uint8_t pk[32], uint16_t port,
                    uint64_t unix_ms, uint8_t out[SYNC_DISC_LEN])
{
    uint8_t plain[SYNC_DISC_PLAIN];
    memcpy(plain, pk, 32);
    plain[32] = (uint8_t)port;
    plain[33] = (uint8_t)(port >> 8);
    for (int i = 0; i < 8; i++)
        plain[34 + i] = (uint8_t)(unix_ms >> (8 * i));
    out[0] = SYNC_DISC_VERSION;
    /* A random 24-byte nonce: no counter to keep across restarts, and two
     * announcements of one daemon share no bytes but the version. */
    notes__random(out + 1, 24);
    notes__aead_seal(out + 25, plain, sizeof(plain), out, 1, out + 1, kd);
    notes__wipe(plain, sizeof(plain));
}

int sync_disc_open(const uint8_t (*keys)[32], size_t nk, const uint8_t *p,
                   size_t n, size_t *which, uint8_t pk[32], uint16_t *port,
                   uint64_t *unix_ms)
{
    uint8_t plain[SYNC_DISC_PLAIN], got[SYNC_DISC_PLAIN];
    int found = 0;
    if (!p || n != SYNC_DISC_LEN || p[0] != SYNC_DISC_VERSION)
        return SYNC_DISC_MALFORMED;
    /* Every key is tried, as for M1: the time taken does not depend on
     * which space (if any) matched. */
    for (size_t i = 0; i < nk; i++) {
        if (notes__aead_open(plain, p + 25, SYNC_DISC_LEN - 25, p, 1, p + 1,
                             keys[i]) == NOTES_OK &&
            !found) {
            found = 1;
            *which = i;
            memcpy(got, plain, sizeof(got));
        }
    }
    notes__wipe(plain, sizeof(plain));
    if (!found)
        return SYNC_DISC_FOREIGN;
    memcpy(pk, got, 32);
    *port = (uint16_t)(got[32] | got[33] << 8);
    *unix_ms = 0;
    for (int i = 0; i < 8; i++)
        *unix_ms |= (uint64_t)got[34 + i] << (8 * i);
    notes__wipe(got, sizeof(got));
    return *port ? NOTES_OK : SYNC_DISC_MALFORMED;
}

/* ---- the receiver's filter ---- */

void sync_disc_filter_init(struct sync_disc_filter *f)
{
    memset(f, 0, sizeof(*f));
}

static void refill(double *tokens, uint64_t *t, uint64_t now, double rate,
                   double burst)
{
    if (*t == 0 || now < *t) {
        *tokens = burst;
    } else {
        *tokens += (double)(now - *t) * rate / 1000.0;
        if (*tokens > burst)
            *tokens = burst;
    }
    *t = now ? now : 1;
}

int sync_disc_admit(struct sync_disc_filter *f, uint32_t ip, uint64_t now_ms)
{
    size_t slot = 0;
    int hit = 0;
    if (now_ms == 0)
        now_ms = 1; /* 0 marks a free slot */
    for (size_t i = 0; i < SYNC_DISC_SOURCES; i++) {
        if (f->src[i].used_ms && f->src[i].ip == ip) {
            slot = i;
            hit = 1;
            break;
        }
        /* Else the least recently used (or a free) slot is taken over:
         * the table stays bounded whatever the number of sources. */
        if (f->src[i].used_ms < f->src[slot].used_ms)
            slot = i;
    }
    if (!hit) {
        f->src[slot].ip = ip;
        f->src[slot].t_ms = 0;
    }
    refill(&f->gtokens, &f->gt_ms, now_ms, SYNC_DISC_GRATE, SYNC_DISC_GRATE);
    refill(&f->src[slot].tokens, &f->src[slot].t_ms, now_ms, SYNC_DISC_RATE,
           SYNC_DISC_BURST);
    f->src[slot].used_ms = now_ms;
    if (f->gtokens < 1.0 || f->src[slot].tokens < 1.0)
        return 0;
    f->gtokens -= 1.0;
    f->src[slot].tokens -= 1.0;
    return 1;
}

int sync_disc_replayed(struct sync_disc_filter *f, const uint8_t nonce[24],
                       uint64_t now_ms)
{
    for (size_t i = 0; i < SYNC_DISC_NONCES; i++)
        if (f->seen[i].until_ms > now_ms &&
            memcmp(f->seen[i].nonce, nonce, 24) == 0)
            return 1;
    /* Remembered for twice the clock window: older copies fail the
     * timestamp check anyway. The ring overwrites its oldest entry when
     * full (only accepted announcements enter it: members' own). */
    memcpy(f->seen[f->seen_next].nonce, nonce, 24);
    f->seen[f->seen_next].until_ms = now_ms + 2 * (uint64_t)SYNC_DISC_WINDOW_MS;
    f->seen_next = (f->seen_next + 1) % SYNC_DISC_NONCES;
    return 0;
}

