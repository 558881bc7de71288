/*
 * fuzz_pack.c: the pack decoder (a compacted log's columns). Any input: no
 * crash, no over-read; every rebuilt change is handed on in bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "pack.h"

/* Decoding with the id the pack decoder computed must give the change the
 * same id as hashing it again (the load path trusts that id). */
static int cb(void *ctx, const uint8_t *p, size_t n, const uint8_t *id)
{
    struct notes__change *c, *c2;
    (void)ctx;
    if (notes__change_decode(p, n, &c) == NOTES_OK) {
        if (!id || notes__change_decode_id(p, n, id, &c2) != NOTES_OK ||
            memcmp(c->id, c2->id, 32) != 0)
            abort();
        notes__change_free(c2);
        notes__change_free(c);
    }
    return NOTES_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t docid[16] = {1};
    (void)notes__pack_decode(docid, data, size, 0, cb, NULL);
    return 0;
}
