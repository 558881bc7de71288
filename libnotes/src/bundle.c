/*
 * bundle.c: what a bundle's header says, for transports that report
 * progress without decoding the changes (docs/format.md, "Bundles").
 */
#include "internal.h"

size_t notes_bundle_count(const uint8_t *bundle, size_t n)
{
    /* Version 1: the magic, then a varint count. Version 2: the magic, the
     * note id, then a pack: "NP\x01", the author count and keys, then the
     * change count. */
    struct notes_reader r;
    uint64_t authors, count;
    const uint8_t *skip;
    if (!bundle || n < 5)
        return 0;
    notes__reader_init(&r, bundle, n);
    r.off = 4;
    if (bundle[3] == 2 &&
        (notes__get_raw(&r, 16 + 3, &skip) ||
         notes__get_varint(&r, &authors) ||
         authors > notes__reader_left(&r) / 32 ||
         notes__get_raw(&r, (size_t)authors * 32, &skip)))
        return 0;
    if (notes__get_varint(&r, &count) || count > SIZE_MAX)
        return 0;
    return (size_t)count;
}
