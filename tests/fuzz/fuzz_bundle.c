/*
 * fuzz_bundle.c: a bundle from a peer, merged into an empty note. Any
 * input: no crash, no leak; an accepted bundle verifies, and exporting it
 * and merging that into another empty note gives the same text.
 */
#include <stdlib.h>
#include <string.h>

#include "notes.h"

static const uint8_t docid[16] = {0x5e, 0xed};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    notes_doc *a, *b;
    size_t added;
    if (notes_init() != NOTES_OK || notes_doc_memory(NULL, docid, &a) != NOTES_OK)
        abort();
    if (notes_doc_merge(a, data, size, &added) == NOTES_OK && added) {
        notes_verify_report rep;
        if (notes_doc_verify(a, &rep) != NOTES_OK &&
            rep.nproblems && rep.problems[0].code != NOTES_EEQUIVOCATION)
            abort();
        notes_verify_report_clear(&rep);
        uint8_t *bytes;
        size_t n;
        if (notes_doc_export(a, NULL, 0, &bytes, &n) != NOTES_OK ||
            notes_doc_memory(NULL, docid, &b) != NOTES_OK ||
            notes_doc_merge(b, bytes, n, &added) != NOTES_OK)
            abort();
        size_t la, lb;
        const char *ta = notes_doc_text(a, &la), *tb = notes_doc_text(b, &lb);
        if (la != lb || memcmp(ta, tb, la) != 0)
            abort();
        notes_free(bytes);
        notes_doc_free(b);
    }
    notes_doc_free(a);
    return 0;
}
