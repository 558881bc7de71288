/*
 * fuzz_change.c: the change decoder. Any input: no crash; an accepted
 * change re-encodes to exactly its bytes and its id is the hash of its
 * body (the encoding is canonical).
 */
#include <sodium.h>
#include <stdlib.h>

#include "change.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct notes__change *c;
    if (sodium_init() < 0)
        abort();
    if (notes__change_decode(data, size, &c) != NOTES_OK)
        return 0;
    struct notes_buf b;
    notes__buf_init(&b, 1u << 26);
    if (notes__change_encode(c, 1, &b) != NOTES_OK || b.len != size ||
        memcmp(b.data, data, size) != 0)
        abort();
    uint8_t id[32];
    crypto_generichash(id, 32, data, c->body_len, NULL, 0);
    if (memcmp(id, c->id, 32) != 0)
        abort();
    (void)notes__change_verify_sig(c);
    notes__buf_release(&b);
    notes__change_free(c);
    return 0;
}
