/*
 * attest.c: the attestation sidecar of an exported Markdown file
 * (`notes export --attest`, checked by `notes verify`), as text:
 *   notes-attest 1
 *   note <32 hex digits>
 *   markdown-blake2b <64 hex digits: BLAKE2b-256 of the Markdown file>
 *   bundle <base64 of the note's bundle file>
 * The format lives here, beside the Markdown exporter whose bytes it
 * vouches for; the CLI keeps the commands.
 */
#include <string.h>

#include "fmt_internal.h"

#define ATTEST_HEAD "notes-attest 1\nnote "

int notes_fmt_attest_encode(const uint8_t id[16], const uint8_t *bundle,
                            size_t nbundle, const char *md, size_t nmd,
                            char **out, size_t *n)
{
    struct notes_fmt__buf b = NOTES_FMT__BUF_INIT;
    uint8_t h[32];
    char hh[65], hex[33];
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!id || !out || (!bundle && nbundle) || (!md && nmd))
        return notes_fmt__fail(NOTES_EINVAL, "attestation: missing input");
    notes__hash(h, sizeof(h), md, nmd, NULL, 0);
    notes__hex(hh, h, sizeof(h));
    notes__hex(hex, id, 16);
    notes_fmt__printf(&b, ATTEST_HEAD "%s\nmarkdown-blake2b %s\nbundle ", hex,
                      hh);
    size_t need = NOTES__BASE64_LEN(nbundle);
    if (!b.failed && notes__buf_reserve(&b.b, need) != NOTES_OK)
        b.failed = 1;
    if (!b.failed) {
        b.b.len += notes__base64((char *)b.b.data + b.b.len, need, bundle,
                                 nbundle);
        notes_fmt__putc(&b, '\n');
    }
    return notes_fmt__detach(&b, out, n);
}

/* Split the first four lines of `s` (n bytes, NUL-terminated copy) in
 * place; 0 when one is missing (detail set). */
static int split_lines(char *s, size_t n, char *lines[4])
{
    char *p = s;
    for (int i = 0; i < 4; i++) {
        char *nl = memchr(p, '\n', n - (size_t)(p - s));
        if (!nl) {
            notes__set_detail("truncated (line %d)", i + 1);
            return 0;
        }
        *nl = 0;
        lines[i] = p;
        p = nl + 1;
    }
    return 1;
}

/* The hash line: an even number of hex digits, at most 64, as libsodium's
 * sodium_hex2bin took them (fewer leave the rest zero: the sidecar then
 * differs from the one export writes, and is refused for that). */
static int get_hash(const char *hex, uint8_t h[32])
{
    size_t len = strlen(hex);
    memset(h, 0, 32);
    return len % 2 == 0 && len <= 64 && notes__unhex(h, len / 2, hex) == 0;
}

int notes_fmt_attest_decode(const char *text, size_t n, notes_fmt_attest *out)
{
    char *lines[4];
    if (out)
        memset(out, 0, sizeof(*out));
    if (!out || (!text && n))
        return notes_fmt__fail(NOTES_EINVAL, "attestation: no input");
    char *s = notes__strndup(n ? text : "", n);
    if (!s)
        return notes_fmt__fail(NOTES_ENOMEM, "attestation: out of memory");
    int rc = NOTES_ECORRUPT;
    if (!split_lines(s, n, lines))
        goto out;
    if (strcmp(lines[0], "notes-attest 1") != 0 ||
        strncmp(lines[1], "note ", 5) != 0 ||
        strncmp(lines[2], "markdown-blake2b ", 17) != 0 ||
        !get_hash(lines[2] + 17, out->md_hash) ||
        strncmp(lines[3], "bundle ", 7) != 0) {
        notes__set_detail("not an attestation sidecar");
        goto out;
    }
    size_t b64 = strlen(lines[3] + 7), cap = b64 / 4 * 3 + 3;
    if (!(out->note = notes__strdup(lines[1] + 5)) ||
        !(out->bundle = notes__malloc(cap))) {
        rc = notes_fmt__fail(NOTES_ENOMEM, "attestation: out of memory");
        goto out;
    }
    if (notes__unbase64(out->bundle, cap, &out->nbundle, lines[3] + 7, b64)) {
        notes__set_detail("the bundle line is not valid base64");
        goto out;
    }
    rc = NOTES_OK;
out:
    notes_free(s);
    if (rc)
        notes_fmt_attest_clear(out);
    return rc;
}

void notes_fmt_attest_clear(notes_fmt_attest *a)
{
    if (!a)
        return;
    notes_free(a->note);
    notes_free(a->bundle);
    memset(a, 0, sizeof(*a));
}
