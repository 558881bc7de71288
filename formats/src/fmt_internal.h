/*
 * fmt_internal.h: private declarations shared inside formats/ (prefix
 * notes_fmt__): a growable byte buffer, UTF-8 helpers, the front-matter
 * model shared by the importer and the exporter, and HTML escaping.
 */
#ifndef NOTES_FMT_INTERNAL_H
#define NOTES_FMT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "notes_formats.h"

/*
 * The writers' buffer: libnotes' notes_buf (no ceiling but memory) whose
 * first failure sticks, so that a writer appends many small pieces and
 * checks once at the end (`failed`, or notes_fmt__detach). The bytes are
 * NUL-terminated past b.len; b.data is NULL while nothing was put.
 */
struct notes_fmt__buf {
    struct notes_buf b;
    int failed;
};
#define NOTES_FMT__BUF_INIT {{NULL, 0, 0, SIZE_MAX}, 0}
void notes_fmt__buf_init(struct notes_fmt__buf *o);

void notes_fmt__put(struct notes_fmt__buf *o, const void *s, size_t n);
void notes_fmt__puts(struct notes_fmt__buf *o, const char *s);
void notes_fmt__putc(struct notes_fmt__buf *o, char c);
/* A macro, so that notes__buf_printf's format check sees the arguments. */
#define notes_fmt__printf(o, ...)                                          \
    do {                                                                   \
        struct notes_fmt__buf *o_ = (o);                                   \
        if (!o_->failed && notes__buf_printf(&o_->b, __VA_ARGS__) != NOTES_OK) \
            o_->failed = 1;                                                \
    } while (0)
/* Escape &, <, >, ", ' for HTML text and attributes. */
void notes_fmt__put_html(struct notes_fmt__buf *o, const char *s, size_t n);
/* Hand the bytes over (NUL-terminated, free with notes_fmt_free), or
 * NOTES_ENOMEM (detail set) after a failure; the buffer is left empty. */
int notes_fmt__detach(struct notes_fmt__buf *o, char **out, size_t *n);
void notes_fmt__release(struct notes_fmt__buf *o);
/* The bytes so far as a C string ("" while empty). */
static inline const char *notes_fmt__str(const struct notes_fmt__buf *o)
{
    return o->b.data ? (const char *)o->b.data : "";
}

/* Set the detail (notes_fmt_last_detail) and return rc: how a formats
 * function fails on its own (libnotes' errors keep libnotes' detail). */
int notes_fmt__fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The start of an export: *out (and *n) cleared; NOTES_EINVAL with the
 * detail set when d or out is NULL. */
int notes_fmt__export_start(notes_doc *d, char **out, size_t *n,
                            const char *what);

/* Fill *diag (may be NULL) and set the detail to the same message, with
 * its line when there is one. */
void notes_fmt__diag(notes_fmt_diag *diag, size_t line, size_t column,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Offset of the first byte that is not valid UTF-8, or n if all is: where
 * the importer says the input went wrong (notes__utf8_valid says whether). */
size_t notes_fmt__utf8_check(const char *s, size_t n);
/* Decode one code point at s (valid UTF-8, n > 0); *len gets its bytes. */
uint32_t notes_fmt__utf8_get(const char *s, size_t n, size_t *len);
/* Code points in n bytes of valid UTF-8 (notes__utf8_count on chars). */
static inline size_t notes_fmt__cp_count(const char *s, size_t n)
{
    return notes__utf8_count((const uint8_t *)s, n);
}
/* Latin letters folded to ASCII lowercase ('Ș' -> 's', 'Ă' -> 'a');
 * other code points unchanged, ASCII lowercased. */
uint32_t notes_fmt__fold(uint32_t cp);
/* Whether cp is an uppercase letter (ASCII or Latin with diacritics). */
int notes_fmt__is_upper(uint32_t cp);
int notes_fmt__is_lower(uint32_t cp);

/* Keys whose comma-separated string values are list fields. */
int notes_fmt__is_list_key(const char *key);

/* ---- front matter model ---- */

enum fm_kind {
    FM_SCALAR = 1, /* a scalar: register */
    FM_COMMA,      /* a comma-separated string of a list key: list */
    FM_LIST,       /* a sequence of scalars: list */
    FM_OPAQUE      /* anything else: register holding its YAML source */
};

enum fm_style { ST_PLAIN = 1, ST_SINGLE, ST_DOUBLE, ST_BLOCK, ST_FLOW };

struct fm_item {
    char *value;
    int style;          /* of the scalar */
    size_t first, last; /* line range (inclusive) of the item */
};

struct fm_entry {
    char *key;
    int kind;
    int style;           /* scalar style, or ST_BLOCK / ST_FLOW for lists */
    char *value;         /* SCALAR, COMMA: the decoded string; OPAQUE: source */
    size_t first, last;  /* line range (inclusive) within the YAML block */
    size_t key_end;      /* byte offset just after the key scalar */
    int oneline;         /* value on the key line and on that line only */
    size_t vstart, vend; /* byte offsets of the value when oneline */
    struct fm_item *items; /* FM_LIST */
    size_t nitems;
    int regular;   /* FM_LIST block: every item is "- scalar" on
                           * its own lines, after the key line */
    size_t indent; /* bytes before '-' of the first item */
};

/* A parsed front matter block: fences + YAML. */
struct fm {
    const char *src; /* borrowed: the block, fences included */
    size_t n;
    size_t open_len;    /* bytes of the opening fence line, EOL included */
    size_t close_start; /* offset of the closing fence line */
    const char *eol;    /* "\n" or "\r\n", of the opening fence */
    size_t *line_start; /* YAML line starts (offsets into src), nlines+1 */
    size_t nlines;
    struct fm_entry *e;
    size_t ne;
};

/*
 * Find a front matter block at the start of md: OUT *len its size (0: none).
 * Returns NOTES_OK or NOTES_ECORRUPT (unterminated) with diag.
 */
int notes_fmt__fm_find(const char *md, size_t n, size_t *len,
                       notes_fmt_diag *diag);
/* Parse a block found by notes_fmt__fm_find at the start of a file (diag
 * lines count from its opening fence, line 1). On success free with
 * notes_fmt__fm_free; on failure *out holds nothing. */
int notes_fmt__fm_parse(const char *src, size_t n, struct fm *out,
                        notes_fmt_diag *diag);
void notes_fmt__fm_free(struct fm *f);
/* Split a comma-separated value into a deduplicated list (NULL-terminated,
 * each element and the array malloc'd). */
char **notes_fmt__comma_split(const char *v);
void notes_fmt__strv_free(char **v);

/* The change (index) that inserted each code point of the text, and the
 * number of changes: 0; or 1 with nothing set when the doc has uncommitted
 * edits (no authorship then); or the error of notes_doc_authorship.
 * Free *ch with notes_free. */
int notes_fmt__authorship(notes_doc *d, uint32_t **ch, size_t *ncp,
                          size_t *nchanges);

/* items.c: whether hay contains needle, case and Latin accents ignored. */
int notes_fmt__fold_contains(const char *hay, const char *needle);

/* The public key of change i, or NULL. */
const uint8_t *notes_fmt__change_author(const notes_doc *d, size_t i);

/* outline_people.c: each item's people, stable id and confirmations
 * (nothing with uncommitted edits). */
int notes_fmt__outline_provenance(notes_doc *d, notes_fmt_outline *o);
void notes_fmt__person_release(notes_fmt_person *p);
/* Free n confirmations and the array. */
void notes_fmt__confirms_release(notes_fmt_confirm *c, size_t n);

#endif
