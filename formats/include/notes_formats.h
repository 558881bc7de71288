/*
 * notes_formats.h: the public header of formats/, Markdown (HackMD /
 * HedgeDoc style, YAML front matter) import and export, JSON and HTML
 * export, and the outline of a note (sections, decisions, action items).
 * Built on notes.h only. Same conventions as libnotes: functions return 0
 * or a negative NOTES_E* code and then notes_fmt_last_detail() says why
 * (the importer also fills a notes_fmt_diag with the line and column);
 * memory handed out is freed with notes_fmt_free(). One doc, one thread.
 * Rules: docs/formats.md.
 */
#ifndef NOTES_FORMATS_H
#define NOTES_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "notes.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest Markdown file notes_fmt_md_import accepts, in bytes. */
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

/* Where and why an input was refused: the parse position (line, column)
 * that notes_fmt_last_detail() gives only as text. */
typedef struct notes_fmt_diag {
    size_t line;   /* 1-based line of the input; 0 when not tied to a line */
    size_t column; /* 1-based column in code points; 0 when unknown */
    char msg[200]; /* lowercase, no final period, NUL-terminated */
} notes_fmt_diag;

/* Why the last failing call of this thread failed (the one per-thread
 * detail of notes: notes_last_detail()). */
NOTES_API const char *notes_fmt_last_detail(void);

/* Frees memory returned by this library. NULL is a no-op. */
NOTES_API void notes_fmt_free(void *p);

/* ---- Markdown -------------------------------------------------------- */

/*
 * Check `md` (n bytes, need not be NUL-terminated) as notes_fmt_md_import
 * would, without touching any document.
 * OUT diag (may be NULL): on failure, the line and the problem.
 * Returns NOTES_OK; NOTES_ETOOBIG (larger than NOTES_MD_MAX_BYTES, or a
 * front matter larger than NOTES_MD_FRONTMATTER_MAX); NOTES_ECORRUPT (not
 * valid UTF-8, a NUL byte, an unterminated or malformed front matter, a
 * key or value libnotes cannot hold); NOTES_EINVAL (NULL md with n > 0).
 */
NOTES_API NOTES_NODISCARD int notes_fmt_md_check(const char *md, size_t n,
                                             notes_fmt_diag *diag);

/*
 * Import a Markdown file into `d`, which must be empty (no text, no
 * fields): the body becomes the text, each front-matter key a field
 * (scalars as registers, sequences and the comma-separated strings of
 * tags / participants / teams as list fields, anything else as its YAML
 * source), and the front matter's exact source is kept in the field
 * NOTES_FMT_LAYOUT_KEY so that notes_fmt_md_export gives back the same bytes.
 * The edits are left uncommitted: the caller commits (notes_doc_commit) or
 * discards them (notes_doc_free).
 * The whole input is checked before the doc is touched: on any input
 * error the doc is unchanged and *diag says where. On NOTES_ENOMEM while
 * writing, the doc may hold part of the edits: close it without committing.
 * Returns as notes_fmt_md_check, plus NOTES_EEXIST (the doc is not empty) and
 * the errors of notes_doc_splice / notes_doc_set_field / notes_doc_list_add.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_md_import(notes_doc *d, const char *md,
                                              size_t n, notes_fmt_diag *diag);

/*
 * The note as Markdown: the front matter (the imported source re-emitted
 * verbatim where the fields still agree with it, changed keys re-rendered
 * in their original style, new keys added after the last one) followed by
 * the text.
 * OUT *out: NUL-terminated, *n bytes (n may be NULL); free with
 * notes_fmt_free. Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_md_export(notes_doc *d, char **out,
                                              size_t *n);
/*
 * How many lines of notes_fmt_md_export's output (the file `notes show`
 * prints) come before the text: line k of the text is line k + this of
 * the file. 0 for a note without front matter, or when it cannot tell.
 */
NOTES_API size_t notes_fmt_md_text_line(notes_doc *d);

/* ---- Meeting template -------------------------------------------------- */

/* The text of a new meeting note (`notes new`, the page's "new note"). */
#define NOTES_FMT_MEETING_BODY \
    "## Agenda\n\n## Discussions\n\n## TODOs and Decisions\n"

/*
 * Fill a new, empty note as a meeting: the text NOTES_FMT_MEETING_BODY, the
 * fields "title" and "datetime" (`when`, e.g. local ISO 8601 with offset)
 * and `participant` added to the list "participants". The edits are left
 * uncommitted (the caller commits or frees the doc).
 * Returns NOTES_OK; NOTES_EINVAL (a NULL argument); NOTES_EEXIST (the note
 * has text or fields); the errors of notes_doc_splice / notes_doc_set_field
 * / notes_doc_list_add (on those the doc may hold part of the edits).
 * The detail is set on failure (notes_last_detail).
 */
NOTES_API NOTES_NODISCARD int notes_fmt_meeting_new(notes_doc *d,
                                                    const char *title,
                                                    const char *when,
                                                    const char *participant);

/* ---- Attestation sidecar ------------------------------------------------ */

/*
 * The sidecar FILE.md.attest that makes an exported Markdown file
 * verifiable anywhere (docs/formats.md, "Attested exports"): four lines,
 *   notes-attest 1
 *   note <the note id, 32 lowercase hex digits>
 *   markdown-blake2b <BLAKE2b-256 of the Markdown file, 64 hex digits>
 *   bundle <base64 (original alphabet, padded) of the bundle file>
 * where the bundle file is the note id (16 bytes) then its bundle
 * (notes_doc_export), as notes_bundle_file_open reads it.
 */
typedef struct notes_fmt_attest {
    char *note;          /* the "note" line's value as written */
    uint8_t md_hash[32]; /* the hash line (zero-filled if it had fewer
                          * than 64 digits) */
    uint8_t *bundle;     /* the bundle file's bytes */
    size_t nbundle;
} notes_fmt_attest;

/*
 * The sidecar's exact text for note `id`, its bundle file (nbundle bytes)
 * and the Markdown `md` (nmd bytes). OUT *out: NUL-terminated, *n bytes
 * (n may be NULL), free with notes_fmt_free.
 * Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int
notes_fmt_attest_encode(const uint8_t id[16], const uint8_t *bundle,
                        size_t nbundle, const char *md, size_t nmd, char **out,
                        size_t *n);

/*
 * Read a sidecar's first four lines (what follows is not read: compare the
 * whole text with notes_fmt_attest_encode's to refuse any edit). Nothing
 * is verified here: open the bundle with notes_bundle_file_open.
 * OUT *out, release with notes_fmt_attest_clear (also after failure).
 * Returns NOTES_OK; NOTES_ECORRUPT (detail "truncated (line N)", "not an
 * attestation sidecar" or "the bundle line is not valid base64");
 * NOTES_EINVAL; NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_attest_decode(const char *text,
                                                      size_t n,
                                                      notes_fmt_attest *out);
/* Free what a decoded sidecar holds and zero it. NULL is a no-op. */
NOTES_API void notes_fmt_attest_clear(notes_fmt_attest *a);

/* ---- Outline: sections, decisions and action items -------------------- */

typedef struct notes_fmt_section {
    unsigned level; /* 1..6, the number of '#' */
    char *heading;  /* the heading text as written (":dart: Agenda") */
    char *title;    /* without emoji shortcodes, trimmed ("Agenda") */
    size_t line;    /* 1-based line in the doc's text */
    size_t parent;  /* index of the enclosing section, SIZE_MAX if none */
    int decisions;  /* 1: it or an ancestor names decisions / todos */
    int todos;      /* 1: the nearest such heading (it or an ancestor)
                     * names TODOs, tasks or action items, so that an
                     * owned line there is an action item */
} notes_fmt_section;

/* What an item is (docs/formats.md, "Decisions and action items"). */
enum notes_fmt_item_kind {
    NOTES_FMT_ITEM_DECISION = 1, /* a line or list item in a decisions /
                                  * TODOs section that is no action item */
    NOTES_FMT_ITEM_TASK = 2      /* an action item: a "- [ ]" / "- [x]"
                                  * item anywhere, or an owned line in a
                                  * TODOs section that does not read as a
                                  * decision */
};

/* How an item's text relates to a revocation of a device that wrote it. */
enum notes_fmt_revocation {
    NOTES_FMT_REV_NONE = 0,   /* no author's device is revoked */
    NOTES_FMT_REV_BEFORE = 1, /* written by a device revoked since, all of
                               * it before the revocation (it saw it) */
    NOTES_FMT_REV_AFTER = 2   /* some of it written by a revoked device
                               * that had not seen its revocation (maybe
                               * the thief's): do not trust it */
};

/* The kind's name in the JSON export and the page's items message:
 * "decision" or "task" (an action item); "unknown" otherwise. */
NOTES_API const char *notes_fmt_item_kind_name(int kind);
/* The revocation's name: NULL (none), "before" or "after". */
NOTES_API const char *notes_fmt_revocation_name(int revocation);

/*
 * Who a device key speaks for in a note (notes_doc_person), copied out.
 * A person is named only when the note holds a valid link of the device to
 * exactly one person key; the name is the person's own claim.
 */
typedef struct notes_fmt_person {
    uint8_t device[32]; /* the device key (a change's author) */
    int has_person;     /* 1: linked to one person, not contested */
    uint8_t person[32]; /* the person key when has_person, else zero */
    char *name;         /* the person's self-chosen name, or NULL */
    int contested;      /* links to two or more persons: nobody is named */
    int revoked;        /* the note holds a revocation of the device */
    uint64_t revoked_ms;   /* its time (a claim), when revoked */
    size_t revoked_change; /* index of the change carrying it, or SIZE_MAX */
} notes_fmt_person;

/* How a confirmation relates to the item it names (docs/formats.md). */
enum notes_fmt_confirm_state {
    NOTES_FMT_CONF_CONFIRMED = 1,  /* text and owner are the item's now */
    NOTES_FMT_CONF_CHANGED = 2,    /* they were the item's when signed; the
                                    * item changed since */
    NOTES_FMT_CONF_WRONG_TEXT = 3, /* when signed, the anchor started no
                                    * item, or one with another text/owner */
    NOTES_FMT_CONF_NO_ITEM = 4,    /* the anchor starts no item now */
    NOTES_FMT_CONF_UNKNOWN_KEY = 5, /* the signer is linked to no person in
                                     * the note, or the link is contested */
    NOTES_FMT_CONF_REVOKED = 6     /* the signer's device is revoked and the
                                    * revocation had not seen this change */
};

/* The verdict's name as JSON and the page use it: "confirmed", "changed",
 * "wrong-text", "no-item", "unknown-key", "revoked" ("unknown" otherwise). */
NOTES_API const char *notes_fmt_confirm_state_name(int state);

/*
 * One signed confirmation ("I confirm that this item reads TEXT, owned by
 * OWNER"), evaluated against the note's text.
 */
typedef struct notes_fmt_confirm {
    size_t index;          /* for notes_doc_confirmation */
    size_t change;         /* index of the change carrying it */
    uint8_t change_id[32]; /* that change's id */
    notes_fmt_person by;   /* the signer (a device key) and its person */
    uint8_t anchor[32];    /* the item it names: the change that inserted */
    uint32_t anchor_event; /* the item's first character, and its event */
    char item_id[17];      /* notes_fmt_item_id of the anchor */
    char *text;            /* the text it confirms (malloc'd) */
    char *owner;           /* the owner it confirms, "" for none */
    int state;             /* enum notes_fmt_confirm_state: the verdict */
    int text_state;        /* CONFIRMED, CHANGED or WRONG_TEXT: the text's
                            * verdict whatever the signer and item (for an
                            * orphan: CHANGED when it matched when signed) */
    int counted;           /* 1: counts for the item (see confirmed_by) */
} notes_fmt_confirm;

typedef struct notes_fmt_item {
    int kind;            /* enum notes_fmt_item_kind */
    char *text;          /* without list marker, checkbox and owner
                            * prefix; continuation lines joined by '\n' */
    char *owner;         /* who owns it: a participant's name, initials
                            * as written, "Everyone"; NULL when none */
    char *owner_written; /* the prefix as written ("RD"), or NULL */
    int done;            /* 1: a checked task ("- [x]") */
    size_t cp_box;       /* code point of the checkbox's '[', SIZE_MAX
                          * when it has none (an owned line) */
    int listed;          /* 1: written as a list item ("- ", "1. ") */
    size_t section;      /* index into the outline's sections, or SIZE_MAX */
    size_t line;         /* 1-based line in the doc's text */
    size_t cp_start;     /* code points of the item in the doc's text */
    size_t cp_len;
    size_t nauthors;        /* authors of changes that inserted the text */
    uint8_t (*authors)[32]; /* their public keys; [0] recorded it (first
                            * inserter), the others edited it later */
    int verified;           /* 1: every code point comes from a change in
                            * the state, whose signature was verified */
    int revocation;         /* enum notes_fmt_revocation, for all authors */
    notes_fmt_person *people; /* nauthors entries, parallel to authors:
                               * who each author key speaks for; [0] is
                               * the recorder */
    /* The stable id: the CRDT id of the item's first code point (the
     * change that inserted it and the event number within that change).
     * It survives edits anywhere else, in the item's text too; replacing
     * or deleting the first character (or the owner prefix's first
     * letter) makes a new item. */
    int has_anchor;         /* 0: no authorship (uncommitted edits) or no
                             * text; then id is "" */
    uint8_t anchor[32];     /* change id */
    uint32_t anchor_event;  /* event number in that change */
    char id[17];            /* 16 lowercase hex digits (notes_fmt_item_id) */
    notes_fmt_confirm *confirms; /* attached to this item, in log order */
    size_t nconfirms;
    size_t confirmed_by;    /* distinct persons with a counted confirmation:
                             * CONFIRMED by a known, unrevoked signer; one
                             * per person (the first in log order counts) */
} notes_fmt_item;

typedef struct notes_fmt_outline {
    notes_fmt_section *sections; /* in text order */
    size_t nsections;
    notes_fmt_item *items; /* in text order */
    size_t nitems;
    /* confirmations whose anchor starts no item now (state NO_ITEM), in
     * log order: an item deleted, or an anchor that never named one */
    notes_fmt_confirm *orphan_confirms;
    size_t norphans;
} notes_fmt_outline;

/*
 * The outline of `text` (n bytes of UTF-8) without authorship: sections
 * and items, owners resolved against `participants` (NULL-terminated,
 * may be NULL). OUT *out, release with notes_fmt_outline_clear (also
 * after failure). Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int
notes_fmt_outline_text(const char *text, size_t n,
                       const char *const *participants, notes_fmt_outline *out);

/*
 * The outline of a note: as notes_fmt_outline_text on its text with its
 * "participants" list, plus each item's authors and verified flag from
 * notes_doc_authorship, the person behind each author (notes_doc_person),
 * the item's stable id (notes_doc_origins), and the note's confirmations
 * evaluated against the items (docs/formats.md, "Confirmations"): each is
 * attached to the item its anchor starts, or listed in orphan_confirms.
 * Evaluating a confirmation whose text is not the item's current one
 * reads the text at the version it was signed at (notes_doc_text_at), once
 * per version.
 * With uncommitted edits (notes_doc_dirty) there is no authorship: items
 * have no authors, no id, no confirmations, and verified 0.
 * Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM, or the error of a libnotes
 * call; release *out also after failure.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_outline_doc(notes_doc *d,
                                                    notes_fmt_outline *out);

/*
 * An item's id from its anchor: the first 8 bytes of BLAKE2b (libsodium
 * crypto_generichash, 8-byte output, no key) of the 36 bytes change id ||
 * event (u32 little-endian), as 16 lowercase hex digits. OUT out,
 * NUL-terminated.
 */
NOTES_API void notes_fmt_item_id(const uint8_t change[32], uint32_t event,
                                 char out[17]);

/*
 * The item whose id starts with `prefix` (1 to 16 hex digits, either
 * case). OUT *index (may be NULL). Returns NOTES_OK, NOTES_ENOTFOUND (no
 * item has it), NOTES_EINVAL (not hex digits, or several items have it).
 */
NOTES_API NOTES_NODISCARD int notes_fmt_item_find(const notes_fmt_outline *o,
                                                  const char *prefix,
                                                  size_t *index);

/*
 * The distinct authors (device keys) of the note's changes, in the order
 * of the changes (notes_doc_change). OUT *keys: *n keys, free with
 * notes_fmt_free (NULL when n is 0). Returns NOTES_OK, NOTES_EINVAL,
 * NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_authors(notes_doc *d,
                                                uint8_t (**keys)[32],
                                                size_t *n);

/* Free what an outline holds and zero it. NULL is a no-op. */
NOTES_API void notes_fmt_outline_clear(notes_fmt_outline *o);

/*
 * The item `spec` names, the one way every command names one
 * (docs/formats.md, "Naming an item"): its number in text order (1 for
 * the first), else its id or a prefix of it (4 to 16 hex digits), else
 * part of its text (case and Latin accents ignored), which must match one
 * item only. OUT *index (may be NULL).
 * Returns NOTES_OK; NOTES_ENOTFOUND (no such number, nothing matches);
 * NOTES_EINVAL (empty spec, an ambiguous id prefix, or text matching
 * several items: the detail lists their numbers).
 */
NOTES_API NOTES_NODISCARD int notes_fmt_item_pick(const notes_fmt_outline *o,
                                                  const char *spec,
                                                  size_t *index);

/*
 * Whether item `it` is owned by `who` (a name or initials, resolved against
 * `participants` as an owner prefix is: "RD" is "RăzvanD"), alone, with
 * others ("RD / AJ"), or, when who is one of the participants, as
 * everyone ("Everyone", "All"). 1 or 0.
 */
NOTES_API int notes_fmt_item_owned_by(const notes_fmt_item *it,
                                      const char *who,
                                      const char *const *participants);

/*
 * Check action item `it` (from an outline of d's current text) off: the
 * "[ ]" of a task becomes "[x]"; an owned line without a checkbox gets
 * "- [x] " ("[x] " after its list marker) before its first character, so
 * the item keeps its id. The edit is left uncommitted. Nothing to do for
 * an item already done.
 * Returns NOTES_OK; NOTES_EINVAL (a decision, or positions outside the
 * text); the errors of notes_doc_splice.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_item_check(notes_doc *d,
                                                   const notes_fmt_item *it);

/*
 * Add `line` (no trailing newline) at the end of a section of the note's
 * text, the sections being the outline's (notes_fmt_outline_text): the
 * first whose title contains `name` (case and Latin accents ignored), or
 * with name NULL the first that holds decisions (notes_fmt_section
 * .decisions); when there is none and `create` is given (a heading line,
 * "## TODOs and Decisions"), at the end of the text under that new
 * heading. A list item follows a list item directly; anything else
 * becomes a paragraph of its own. The edit is left uncommitted.
 * Returns NOTES_OK; NOTES_ENOTFOUND (no such section and create NULL);
 * NOTES_EINVAL; NOTES_ENOMEM; the errors of notes_doc_splice.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_section_append(notes_doc *d,
                                                       const char *name,
                                                       const char *create,
                                                       const char *line);

/*
 * Add `text` (no trailing newline) where a remark belongs, never among the
 * decisions: at the end of the first section whose title has the word
 * discussion(s) and holds no decisions (before a sub-section of it that
 * does); without one, before the first section that holds decisions;
 * without that either, at the end of the text. A paragraph of its own (a
 * list item directly after a list item). The edit is left uncommitted.
 * Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM, the errors of
 * notes_doc_splice.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_remark_append(notes_doc *d,
                                                      const char *text);

/* ---- Search: the index of every note ---------------------------------- */

/*
 * The search index is a cache of the replica's notes, never a source of
 * truth: HOME/index.sqlite (SQLite with FTS5, docs/formats.md "Search").
 * Each note's entry records the note's version (change count and heads)
 * and a stamp of its log file (size, modification time, inode); a search
 * re-indexes the notes whose stamp moved (opened and verified again, at
 * whatever version), and drops the notes that are gone. An index file that is missing, not
 * SQLite, of another schema or damaged is removed and rebuilt from the
 * logs without a word.
 */

/* One matching line of a note: its number as `notes show` prints the note
 * (front matter included), its text, and the byte ranges [start, end) of
 * the matches in it. */
typedef struct notes_fmt_search_line {
    size_t line;
    char *text;
    size_t nmarks;
    size_t (*marks)[2];
} notes_fmt_search_line;

typedef struct notes_fmt_search_hit {
    uint8_t id[16];
    char *title;    /* the front matter's title, or NULL */
    char *datetime; /* its datetime, or NULL */
    double score;   /* -bm25 (higher is better); 0 for filters only */
    int damaged;    /* the note's storage was not whole when indexed: it
                     * showed its last good state (notes_doc_intact) */
    size_t title_marks[8][2]; /* matches in the title (byte ranges) */
    size_t ntitle_marks;
    notes_fmt_search_line *lines; /* at most NOTES_FMT_SEARCH_LINES */
    size_t nlines;
    size_t more_lines; /* matching lines beyond those */
} notes_fmt_search_hit;

#define NOTES_FMT_SEARCH_LINES 5

typedef struct notes_fmt_search_stats {
    size_t notes;    /* notes in the index after the update */
    size_t indexed;  /* notes (re)indexed by this call */
    size_t dropped;  /* entries removed (notes gone or unreadable) */
    int rebuilt;     /* 1: the index file was missing or unusable */
    uint8_t (*skipped)[16]; /* notes that could not be read, not indexed */
    int *skipped_rc;        /* their errors */
    size_t nskipped;
    uint8_t (*damaged)[16]; /* notes indexed from their last good state:
                             * their storage is not whole (notes_doc_intact) */
    size_t ndamaged;
} notes_fmt_search_stats;

typedef struct notes_fmt_search_result {
    notes_fmt_search_hit *hits; /* best first */
    size_t nhits;
    size_t total; /* notes that match, before the limit */
    notes_fmt_search_stats stats; /* of the update that preceded it */
} notes_fmt_search_result;

/*
 * Bring HOME/index.sqlite up to date with the replica's notes (see above).
 * OUT st (may be NULL): what was done; release with
 * notes_fmt_search_stats_clear. A note that cannot be opened is left out
 * and listed in st->skipped. Returns NOTES_OK; NOTES_EIO (the index file
 * cannot be created or written); NOTES_ENOMEM; the error of
 * notes_replica_list.
 */
NOTES_API NOTES_NODISCARD int
notes_fmt_search_update(notes_replica *r, notes_fmt_search_stats *st);
NOTES_API void notes_fmt_search_stats_clear(notes_fmt_search_stats *st);

/*
 * Search every note (after notes_fmt_search_update). The query: bare words
 * (all must occur; "word*" for a prefix) and "quoted phrases", matched on
 * title, text and the other front-matter values with Unicode folding and
 * diacritics removed, ranked by BM25 (title matches weigh most); and the
 * filters owner:WHO (an action item or decision owned by WHO, as written
 * or as resolved against the participants, case-insensitive), tag:TAG,
 * participant:NAME, after:YYYY-MM-DD (the note's datetime on or after),
 * before:YYYY-MM-DD (before); a filter value may be quoted
 * (owner:"Ana M"). The query's text is never FTS5 syntax: every word is
 * quoted, so no input can make a syntax error. Filters alone list the
 * matching notes newest first, with the owner's items as the lines.
 * limit: at most that many hits (0: 20). OUT *out: release with
 * notes_fmt_search_clear (also after failure).
 * Returns NOTES_OK; NOTES_EINVAL with the detail (an empty query, a query
 * with no word to search for, a bad date, an empty filter); the errors of
 * notes_fmt_search_update.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_search(notes_replica *r,
                                               const char *query, size_t limit,
                                               notes_fmt_search_result *out);
NOTES_API void notes_fmt_search_clear(notes_fmt_search_result *res);

/*
 * A search's result as JSON (shape "notes.search/1", docs/formats.md):
 * the query, total, the index's figures and the hits, each with id,
 * title, datetime, score, damaged, the matching lines and the matches'
 * places in code points (so that a page can cut the text). OUT *out:
 * NUL-terminated, *n bytes (n may be NULL); free with notes_fmt_free.
 * Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int
notes_fmt_search_json(const notes_fmt_search_result *res, const char *query,
                      char **out, size_t *n);

/* ---- The notes index: list and open items without opening logs ------ */

/*
 * The same file keeps what `notes list` and `notes decisions` show of each
 * note (docs/formats.md, "The notes index"): title, datetime, the time of
 * the last change, the change count, the authors, and every decision and
 * action item with who recorded and confirmed it. It is filled from the
 * note as notes_doc_open verified it, at the version the entry records,
 * and kept fresh the way the search is (notes_fmt_search_update): a note
 * whose log moved is read again from its log, an index that cannot be
 * used is rebuilt.
 */

/* What is shown of a device key in a note, as the note says it: the name
 * its changes claim, the person it is linked to (notes_doc_person), and
 * whether it signed two changes with one sequence number. Strings are
 * borrowed (from the note, or from the notes_fmt_index they came in). */
typedef struct notes_fmt_key_facts {
    uint8_t key[32];
    const char *claimed;     /* notes_doc_author_name, or NULL */
    int linked;              /* linked to one person (not contested) */
    uint8_t person[32];      /* that person's key, when linked */
    const char *person_name; /* that person's name, when linked */
    int revoked;             /* linked, and the device is revoked */
    int contested;           /* not linked: claimed by two people */
    int equivocated;         /* notes_doc_author_equivocated */
} notes_fmt_key_facts;

/* The facts of key pk in note d (d may be NULL: only the key). */
NOTES_API void notes_fmt_key_facts_of(notes_doc *d, const uint8_t pk[32],
                                      notes_fmt_key_facts *f);

typedef struct notes_fmt_index_note {
    uint8_t id[16];
    const char *title, *datetime; /* NULL when the note has none */
    uint64_t last_ms;  /* the time of its last change (notes_doc_change) */
    size_t changes;    /* notes_doc_change_count */
    int damaged;       /* notes_doc_damage said something when it was
                        * indexed: open the note to say what */
    notes_fmt_key_facts *authors; /* notes_fmt_authors' keys, in order */
    size_t nauthors;
    notes_fmt_key_facts *keys; /* authors, then any other key an item
                                * names: look keys up here */
    size_t nkeys;
    /* With NOTES_FMT_INDEX_OPEN_ITEMS: the open action items, in text
     * order (only the fields `notes decisions` shows are filled: kind,
     * text, owner, owner_written, done, line, authors, verified,
     * revocation, people[0], has_anchor, id, confirms (change_id, by,
     * text, owner, state, counted, item_id), confirmed_by), and each one's
     * number among all the note's items (1-based). */
    notes_fmt_item *items;
    size_t *numbers;
    size_t nitems;
    size_t text_line;                 /* notes_fmt_md_text_line */
    const char *const *participants; /* with NOTES_FMT_INDEX_PARTICIPANTS:
                                      * the note's, NULL-terminated (NULL
                                      * for none) */
} notes_fmt_index_note;

typedef struct notes_fmt_index {
    notes_fmt_index_note *notes; /* by id, as notes_replica_list */
    size_t nnotes;
    notes_fmt_search_stats stats; /* skipped: notes that could not be
                                   * read (open them to say why) */
    void *arena;                  /* private */
} notes_fmt_index;

enum notes_fmt_index_flags {
    NOTES_FMT_INDEX_OPEN_ITEMS = 1 << 0,  /* fill items: open action items */
    NOTES_FMT_INDEX_PARTICIPANTS = 1 << 1 /* fill participants */
};

/*
 * Every note of the replica as the index holds it, after bringing the
 * index up to date (notes_fmt_search_update). OUT *out: release with
 * notes_fmt_index_clear (also after failure). Returns NOTES_OK or the
 * errors of notes_fmt_search_update.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_index_read(notes_replica *r,
                                                   unsigned flags,
                                                   notes_fmt_index *out);
NOTES_API void notes_fmt_index_clear(notes_fmt_index *ix);

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
NOTES_API NOTES_NODISCARD int notes_fmt_json_export(notes_doc *d, char **out,
                                                size_t *n);

/* ---- HTML ---------------------------------------------------------- */

enum notes_fmt_html_flags {
    NOTES_FMT_HTML_AUTHORSHIP = 1 << 0 /* add the source coloured by author */
};

/*
 * The note as one standalone HTML file: the front matter as a header, the
 * text rendered by md4c (raw HTML disabled, links other than http, https,
 * mailto and relative ones neutralised), decisions and action items with
 * who recorded them and a verified mark, and with NOTES_FMT_HTML_AUTHORSHIP
 * the text coloured by author. Inline CSS only, no script, no network
 * resource (a Content-Security-Policy forbids them too).
 * OUT *out: NUL-terminated, *n bytes (n may be NULL); free with
 * notes_fmt_free. Returns NOTES_OK, NOTES_EINVAL, NOTES_ENOMEM.
 */
NOTES_API NOTES_NODISCARD int notes_fmt_html_export(notes_doc *d, unsigned flags,
                                                char **out, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
