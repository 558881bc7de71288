/*
 * presence.c: signed presence records (notes_sync_presence.h,
 * docs/protocol.md "Presence").
 *
 * Layout: note id 16 ‖ key 32 ‖ seq u64 little-endian ‖ varint JSON
 * length ‖ JSON ‖ Ed25519 signature 64 over a label, then everything
 * before the signature. The label keeps a presence signature from ever
 * being mistaken for a change's (whose bodies start with "NC").
 */
#include <stdlib.h>
#include <string.h>

#include "notes_sync_presence.h"
#include "sync_internal.h"

static const char label[] = "notes presence v1";

/* The signed message: label (with its NUL) then the record body. */
static uint8_t *signed_msg(const uint8_t *body, size_t n, size_t *mlen)
{
    uint8_t *m = malloc(sizeof(label) + n);
    if (!m)
        return NULL;
    memcpy(m, label, sizeof(label));
    memcpy(m + sizeof(label), body, n);
    *mlen = sizeof(label) + n;
    return m;
}

int notes_sync_presence_make(const notes_identity *id, const uint8_t note[16],
                             uint64_t seq, const char *json, size_t n,
                             uint8_t **rec, size_t *reclen)
{
    struct notes_buf b;
    uint8_t s8[8], sig[64], *m;
    size_t mlen;
    int rc;
    *rec = NULL;
    *reclen = 0;
    if (!id || !note || (!json && n) || n > NOTES_PRESENCE_JSON_MAX) {
        notes_sync__detail("a presence record holds at most %d bytes of "
                           "JSON", NOTES_PRESENCE_JSON_MAX);
        return NOTES_EINVAL;
    }
    for (int i = 0; i < 8; i++)
        s8[i] = (uint8_t)(seq >> (8 * i));
    notes__buf_init(&b, NOTES_PRESENCE_JSON_MAX + 256);
    if ((rc = notes__buf_put(&b, note, 16)) ||
        (rc = notes__buf_put(&b, notes_identity_public_key(id), 32)) ||
        (rc = notes__buf_put(&b, s8, 8)) ||
        (rc = notes__buf_put_varint(&b, n)) ||
        (rc = notes__buf_put(&b, json, n)))
        goto out;
    if (!(m = signed_msg(b.data, b.len, &mlen))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    rc = notes_identity_sign(id, m, mlen, sig);
    free(m);
    if (rc) {
        rc = notes_sync__from_notes(rc, "signing presence");
        goto out;
    }
    if ((rc = notes__buf_put(&b, sig, 64)))
        goto out;
    *rec = b.data;
    *reclen = b.len;
    return NOTES_OK;
out:
    notes__buf_release(&b);
    return rc;
}

int notes_sync_presence_open(const uint8_t *rec, size_t n, uint8_t note[16],
                             uint8_t key[32], uint64_t *seq, const char **json,
                             size_t *jn)
{
    const uint8_t *p, *end;
    uint64_t len;
    size_t mlen;
    uint8_t *m;
    int rc;
    if (!rec || n < 56 + 1 + 64) {
        notes_sync__detail("malformed presence record");
        return NOTES_ECORRUPT;
    }
    p = rec + 56;
    end = rec + n;
    if (notes_sync__get_varint(&p, end, &len) ||
        len > NOTES_PRESENCE_JSON_MAX || len != (uint64_t)(end - p) - 64 ||
        (uint64_t)(end - p) < 64) {
        notes_sync__detail("malformed presence record");
        return NOTES_ECORRUPT;
    }
    if (!(m = signed_msg(rec, n - 64, &mlen)))
        return NOTES_ENOMEM;
    rc = notes_signature_verify(end - 64, m, mlen, rec + 16);
    free(m);
    if (rc) {
        notes_sync__detail("presence record: the signature does not verify");
        return NOTES_EBADSIG;
    }
    memcpy(note, rec, 16);
    memcpy(key, rec + 16, 32);
    *seq = 0;
    for (int i = 7; i >= 0; i--)
        *seq = *seq << 8 | rec[48 + i];
    *json = (const char *)p;
    *jn = (size_t)len;
    return NOTES_OK;
}
