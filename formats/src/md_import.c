/*
 * md_import.c: Markdown file -> note. The whole input is checked first
 * (size, UTF-8, NUL bytes, front matter); only then are the fields and the
 * text written, so a refused file leaves the doc untouched. The body goes
 * into the text verbatim (line endings included); the front matter's
 * exact source goes into NOTES_FMT_LAYOUT_KEY (see docs/formats.md).
 */
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

/* 1-based line and column (in code points) of byte offset `off`. */
static void locate(const char *s, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, start = 0;
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n') {
            l++;
            start = i + 1;
        }
    *line = l;
    *col = notes_fmt__cp_count(s + start, off - start) + 1;
}

/* Checks everything; on success *fm holds the parsed front matter (if
 * *fmlen > 0) and must be freed by the caller. */
static int check(const char *md, size_t n, struct fm *fm, size_t *fmlen,
                 notes_fmt_diag *diag)
{
    size_t line, col;
    int rc;
    memset(fm, 0, sizeof(*fm));
    *fmlen = 0;
    if (diag)
        memset(diag, 0, sizeof(*diag));
    if (!md && n) {
        notes_fmt__diag(diag, 0, 0, "no input");
        return NOTES_EINVAL;
    }
    if (n > NOTES_MD_MAX_BYTES) {
        notes_fmt__diag(diag, 0, 0, "file is %zu bytes; the limit is %u MiB", n,
                        NOTES_MD_MAX_BYTES >> 20);
        return NOTES_ETOOBIG;
    }
    if (!n)
        return NOTES_OK;
    size_t bad = notes_fmt__utf8_check(md, n);
    if (bad != n) {
        locate(md, bad, &line, &col);
        notes_fmt__diag(diag, line, col,
                        "not valid UTF-8 (byte 0x%02x at offset %zu)",
                        (unsigned char)md[bad], bad);
        return NOTES_ECORRUPT;
    }
    const char *nul = memchr(md, 0, n);
    if (nul) {
        locate(md, (size_t)(nul - md), &line, &col);
        notes_fmt__diag(diag, line, col, "contains a NUL byte");
        return NOTES_ECORRUPT;
    }
    if ((rc = notes_fmt__fm_find(md, n, fmlen, diag)))
        return rc;
    if (*fmlen && (rc = notes_fmt__fm_parse(md, *fmlen, fm, diag))) {
        *fmlen = 0;
        if (rc == NOTES_ECORRUPT && diag && !diag->msg[0])
            notes_fmt__diag(diag, 1, 1, "malformed front matter");
        return rc;
    }
    return NOTES_OK;
}

int notes_fmt_md_check(const char *md, size_t n, notes_fmt_diag *diag)
{
    struct fm fm;
    size_t fmlen;
    int rc = check(md, n, &fm, &fmlen, diag);
    notes_fmt__fm_free(&fm);
    return rc;
}

static int apply(notes_doc *d, const char *md, size_t n, const struct fm *fm,
                 size_t fmlen)
{
    int rc;
    for (size_t i = 0; i < fm->ne; i++) {
        const struct fm_entry *e = &fm->e[i];
        switch (e->kind) {
        case FM_SCALAR:
        case FM_OPAQUE:
            if ((rc = notes_doc_set_field(d, e->key, e->value)))
                return rc;
            break;
        case FM_COMMA: {
            char **parts = notes_fmt__comma_split(e->value);
            if (!parts)
                return NOTES_ENOMEM;
            rc = NOTES_OK;
            for (size_t k = 0; parts[k] && !rc; k++)
                rc = notes_doc_list_add(d, e->key, parts[k]);
            notes_fmt__strv_free(parts);
            if (rc)
                return rc;
            break;
        }
        case FM_LIST:
            for (size_t k = 0; k < e->nitems; k++)
                if ((rc = notes_doc_list_add(d, e->key, e->items[k].value)))
                    return rc;
            break;
        default:
            return NOTES_EINVAL;
        }
    }
    if (fmlen) {
        char *raw = notes__strndup(md, fmlen);
        if (!raw)
            return NOTES_ENOMEM;
        rc = notes_doc_set_field(d, NOTES_FMT_LAYOUT_KEY, raw);
        free(raw);
        if (rc)
            return rc;
    }
    if (n > fmlen)
        return notes_doc_splice(d, 0, 0, md + fmlen, n - fmlen);
    return NOTES_OK;
}

int notes_fmt_md_import(notes_doc *d, const char *md, size_t n,
                    notes_fmt_diag *diag)
{
    struct fm fm;
    size_t fmlen;
    if (!d) {
        notes_fmt__diag(diag, 0, 0, "no document");
        return NOTES_EINVAL;
    }
    int rc = check(md, n, &fm, &fmlen, diag);
    if (rc)
        return rc;
    if (notes_doc_length(d) != 0 || notes_doc_fields(d)[0] != NULL) {
        notes_fmt__fm_free(&fm);
        notes_fmt__diag(diag, 0, 0, "the note is not empty");
        return NOTES_EEXIST;
    }
    rc = apply(d, md, n, &fm, fmlen);
    notes_fmt__fm_free(&fm);
    if (rc)
        notes_fmt__diag(diag, 0, 0, "cannot write the note: %s",
                        notes_strerror(rc));
    return rc;
}
