/*
 * notes_formats.h: the public header of formats/, Markdown (HackMD /
 * HedgeDoc style, YAML front matter) import and export, JSON and HTML
 * export, and the outline of a note (sections, decisions, action items).
 * Built on notes.h only. Same conventions as libnotes: functions return 0
 * or a negative NOTES_E* code, notes_last_detail() is not used here (the
 * importer fills a notes_fmt_diag instead), memory handed out is freed with
 * notes_fmt_free(). One doc, one thread. Rules: docs/formats.md.
 */
#ifndef NOTES_FORMATS_H
#define NOTES_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "notes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest Markdown file notes_md_import accepts, in bytes. */
#define NOTES_MD_MAX_BYTES (8u << 20)
/* Largest front matter (fences included), in bytes: it is kept verbatim in
 * one field, and libnotes caps a field value at 64 KiB. */
#define NOTES_MD_FRONTMATTER_MAX (60u << 10)
/*
 * The reserved field that keeps the exact source of the front matter block
 * (fences and line endings included) as imported. Field names starting
 * with '@' are reserved for layout and never shown as front matter.
 */
#define NOTES_FMT_LAYOUT_KEY "@frontmatter"

/* Where and why an input was refused. */
typedef struct notes_fmt_diag {
    size_t line;   /* 1-based line of the input; 0 when not tied to a line */
    size_t column; /* 1-based column in code points; 0 when unknown */
    char msg[200]; /* lowercase, no final period, NUL-terminated */
} notes_fmt_diag;

/* Frees memory returned by this library. NULL is a no-op. */
NOTES_API void notes_fmt_free(void *p);

/* ---- Markdown -------------------------------------------------------- */

/*
 * Check `md` (n bytes, need not be NUL-terminated) as notes_md_import
 * would, without touching any document.
 * OUT diag (may be NULL): on failure, the line and the problem.
 * Returns NOTES_OK; NOTES_ETOOBIG (larger than NOTES_MD_MAX_BYTES, or a
 * front matter larger than NOTES_MD_FRONTMATTER_MAX); NOTES_ECORRUPT (not
 * valid UTF-8, a NUL byte, an unterminated or malformed front matter, a
 * key or value libnotes cannot hold); NOTES_EINVAL (NULL md with n > 0).
 */
NOTES_API NOTES_NODISCARD int notes_md_check(const char *md, size_t n,
                                             notes_fmt_diag *diag);

/*
 * Import a Markdown file into `d`, which must be empty (no text, no
 * fields): the body becomes the text, each front-matter key a field
 * (scalars as registers, sequences and the comma-separated strings of
 * tags / participants / teams as list fields, anything else as its YAML
 * source), and the front matter's exact source is kept in the field
 * NOTES_FMT_LAYOUT_KEY so that notes_md_export gives back the same bytes.
 * The edits are left uncommitted: the caller commits (notes_doc_commit) or
 * discards them (notes_doc_close).
 * The whole input is checked before the doc is touched: on any input
 * error the doc is unchanged and *diag says where. On NOTES_ENOMEM while
 * writing, the doc may hold part of the edits: close it without committing.
 * Returns as notes_md_check, plus NOTES_EEXIST (the doc is not empty) and
 * the errors of notes_doc_splice / notes_doc_set_field / notes_doc_list_add.
 */
NOTES_API NOTES_NODISCARD int notes_md_import(notes_doc *d, const char *md,
                                              size_t n, notes_fmt_diag *diag);

/*
 * The note as Markdown: the front matter (the imported source re-emitted
 * verbatim where the fields still agree with it, changed keys re-rendered
 * in their original style, new keys added after the last one) followed by
 * the text.
 * OUT *out: NUL-terminated, *n bytes (n may be NULL); free with
 * notes_fmt_free. Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_md_export(notes_doc *d, char **out,
                                              size_t *n);

/* ---- Outline: sections, decisions and action items -------------------- */

typedef struct notes_fmt_section {
    unsigned level; /* 1..6, the number of '#' */
    char *heading;  /* the heading text as written (":dart: Agenda") */
    char *title;    /* without emoji shortcodes, trimmed ("Agenda") */
    size_t line;    /* 1-based line in the doc's text */
    size_t parent;  /* index of the enclosing section, SIZE_MAX if none */
    int decisions;  /* 1: it or an ancestor names decisions / todos */
} notes_fmt_section;

enum notes_fmt_item_kind {
    NOTES_FMT_ITEM_DECISION = 1, /* a line or list item in a decisions /
                                  * TODOs / tasks / action items section */
    NOTES_FMT_ITEM_TASK = 2      /* a "- [ ]" / "- [x]" item anywhere */
};

typedef struct notes_fmt_item {
    int kind;            /* enum notes_fmt_item_kind */
    char *text;          /* without list marker, checkbox and owner
                            * prefix; continuation lines joined by '\n' */
    char *owner;         /* who owns it: a participant's name, initials
                            * as written, "Everyone"; NULL when none */
    char *owner_written; /* the prefix as written ("RD"), or NULL */
    int done;            /* 1: a checked task ("- [x]") */
    size_t section;      /* index into the outline's sections, or SIZE_MAX */
    size_t line;         /* 1-based line in the doc's text */
    size_t cp_start;     /* code points of the item in the doc's text */
    size_t cp_len;
    size_t nauthors;        /* authors of changes that inserted the text */
    uint8_t (*authors)[32]; /* their public keys; [0] recorded it (first
                            * inserter), the others edited it later */
    int verified;           /* 1: every code point comes from a change in
                            * the state, whose signature was verified */
} notes_fmt_item;

typedef struct notes_fmt_outline {
    notes_fmt_section *sections; /* in text order */
    size_t nsections;
    notes_fmt_item *items; /* in text order */
    size_t nitems;
} notes_fmt_outline;

/*
 * The outline of `text` (n bytes of UTF-8) without authorship: sections
 * and items, owners resolved against `participants` (NULL-terminated,
 * may be NULL). OUT *out, release with notes_fmt_outline_release (also
 * after failure). Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int
notes_fmt_outline_text(const char *text, size_t n,
                       const char *const *participants, notes_fmt_outline *out);

/*
 * The outline of a note: as notes_fmt_outline_text on its text with its
 * "participants" list, plus each item's authors and verified flag from
 * notes_doc_authorship. With uncommitted edits (notes_doc_dirty) there is
 * no authorship: items have no authors and verified 0.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_outline_doc(notes_doc *d,
                                                    notes_fmt_outline *out);

/* Free what an outline holds and zero it. NULL is a no-op. */
NOTES_API void notes_fmt_outline_release(notes_fmt_outline *o);

/* ---- JSON ---------------------------------------------------------- */

/*
 * The note as JSON (shape "notes.note/1", documented in docs/formats.md):
 * id, version (heads in hex), front matter, text, section tree, decisions
 * and action items with owner, recorded-by and edited-by (name, key,
 * fingerprint) and verified, and the authors. Built with jansson.
 * OUT *out: NUL-terminated, *n bytes (n may be NULL); free with
 * notes_fmt_free. Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM, or the
 * error of notes_doc_heads.
 */
NOTES_API NOTES_NODISCARD int notes_json_export(notes_doc *d, char **out,
                                                size_t *n);

/* ---- HTML ---------------------------------------------------------- */

enum notes_html_flags {
    NOTES_HTML_AUTHORSHIP = 1 << 0 /* add the source coloured by author */
};

/*
 * The note as one standalone HTML file: the front matter as a header, the
 * text rendered by md4c (raw HTML disabled, links other than http, https,
 * mailto and relative ones neutralised), decisions and action items with
 * who recorded them and a verified mark, and with NOTES_HTML_AUTHORSHIP
 * the text coloured by author. Inline CSS only, no script, no network
 * resource (a Content-Security-Policy forbids them too).
 * OUT *out: NUL-terminated, *n bytes (n may be NULL); free with
 * notes_fmt_free. Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_html_export(notes_doc *d, unsigned flags,
                                                char **out, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
