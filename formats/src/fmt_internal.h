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

/* A growable NUL-terminated buffer; `failed` sticks after an allocation
 * failure so callers can check once at the end. */
struct fbuf {
    char *p;
    size_t len, cap;
    int failed;
};

void notes_fmt__put(struct fbuf *b, const void *s, size_t n);
void notes_fmt__puts(struct fbuf *b, const char *s);
void notes_fmt__putc(struct fbuf *b, char c);
void notes_fmt__printf(struct fbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Escape &, <, >, ", ' for HTML text and attributes. */
void notes_fmt__put_html(struct fbuf *b, const char *s, size_t n);
/* Hand the buffer over (NUL-terminated), or NOTES_ENOMEM. */
int notes_fmt__detach(struct fbuf *b, char **out, size_t *n);
void notes_fmt__release(struct fbuf *b);

void notes_fmt__diag(notes_fmt_diag *diag, size_t line, size_t column,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
char *notes_fmt__strndup(const char *s, size_t n);

/* Offset of the first byte that is not valid UTF-8, or n if all is. */
size_t notes_fmt__utf8_check(const char *s, size_t n);
/* Decode one code point at s (valid UTF-8, n > 0); *len gets its bytes. */
uint32_t notes_fmt__utf8_get(const char *s, size_t n, size_t *len);
/* Code points in n bytes of valid UTF-8. */
size_t notes_fmt__cp_count(const char *s, size_t n);
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

/* The public key of change i, or NULL. */
const uint8_t *notes_fmt__change_author(const notes_doc *d, size_t i);

/* outline_people.c: each item's people, stable id and confirmations
 * (nothing with uncommitted edits). */
int notes_fmt__outline_provenance(notes_doc *d, notes_fmt_outline *o);
void notes_fmt__person_release(notes_fmt_person *p);
/* Free n confirmations and the array. */
void notes_fmt__confirms_release(notes_fmt_confirm *c, size_t n);

#endif
