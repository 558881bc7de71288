/*
 * fuzz_pack.c: the pack decoder (a compacted log's columns). Any input: no
 * crash, no over-read; every rebuilt change is handed on in bounds.
 */
#include <stdlib.h>

#include "pack.h"

static int cb(void *ctx, const uint8_t *p, size_t n)
{
    struct notes__change *c;
    (void)ctx;
    if (notes__change_decode(p, n, &c) == NOTES_OK)
        notes__change_free(c);
    return NOTES_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t docid[16] = {1};
    (void)notes__pack_decode(docid, data, size, 0, cb, NULL);
    return 0;
}
