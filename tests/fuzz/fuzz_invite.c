/*
 * fuzz_invite.c: an invite code someone pasted, decoded. Any input: no
 * crash, no leak; a refused code is NOTES_EINVAL or NOTES_EVERSION with the
 * output zeroed; an accepted one holds a valid space name and address,
 * encodes again, and that code is the input itself (trimmed, lowercased:
 * the encoding is canonical) and decodes to the same invite.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "notes_sync.h"

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    notes_sync_invite inv, again;
    char *s, *code = NULL;
    const char *b, *e;
    int rc;
    if (!inited) {
        if (notes_init() != NOTES_OK)
            abort();
        inited = 1;
    }
    if (size > 4096)
        return 0; /* codes are ~250 characters */
    s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0'; /* a NUL inside ends the code, as in a C string */
    memset(&inv, 0xa5, sizeof(inv));
    rc = notes_sync_invite_decode(s, &inv);
    if (rc != NOTES_OK) {
        if ((rc != NOTES_EINVAL && rc != NOTES_EVERSION) ||
            !all_zero(&inv, sizeof(inv)))
            abort();
        free(s);
        return 0;
    }
    if (notes_sync_space_name_check(inv.space.name) != NOTES_OK ||
        strlen(inv.addr) == 0 || strlen(inv.addr) > NOTES_ADDR_MAX ||
        !strchr(inv.addr, ':'))
        abort();
    if (notes_sync_invite_encode(&inv.space, inv.inviter, inv.addr, &code) !=
        NOTES_OK)
        abort();
    /* Canonical: the trimmed input, case aside, is exactly the code. */
    for (b = s; is_space(*b); b++)
        ;
    for (e = b + strlen(b); e > b && is_space(e[-1]); e--)
        ;
    if (strlen(code) != (size_t)(e - b))
        abort();
    for (size_t i = 0; code[i]; i++)
        if (code[i] != tolower((unsigned char)b[i]))
            abort();
    if (notes_sync_invite_decode(code, &again) != NOTES_OK ||
        strcmp(again.space.name, inv.space.name) != 0 ||
        memcmp(again.space.secret, inv.space.secret, 32) != 0 ||
        memcmp(again.inviter, inv.inviter, 32) != 0 ||
        strcmp(again.addr, inv.addr) != 0)
        abort();
    notes_sync_space_clear(&inv.space);
    notes_sync_space_clear(&again.space);
    memset(code, 0, strlen(code));
    notes_sync_free(code);
    free(s);
    return 0;
}
