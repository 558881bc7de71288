/*
 * cli.h: shared by the `notes` command's files. Only the CLI prints or
 * exits. Exit codes: 0 success, 1 user error (bad arguments, unknown
 * note), 2 verification or data problem, 3 system error (I/O, memory).
 */
#ifndef NOTES_CLI_H
#define NOTES_CLI_H

#include <stdio.h>

#include "notes.h"

enum { EXIT_USER = 1, EXIT_DATA = 2, EXIT_SYSTEM = 3 };

struct cli_ctx {
    const char *home;   /* $NOTES_HOME or the XDG default */
    int json;           /* --json given */
    int quiet;          /* -q/--quiet given: no confirmation lines */
    int color;          /* stdout is a terminal and NO_COLOR is unset */
    notes_replica *r;   /* opened for commands that need it */
    int damaged;        /* a note read was damaged or lacked acknowledged
                         * changes: the command exits 2 (cli_note_damage) */
    int verifying;      /* `notes verify` reports damage itself */
};

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv, struct cli_ctx *ctx);
    const char *usage;   /* one line: arguments */
    const char *help;    /* a paragraph with examples */
    unsigned flags;
};
#define CLI_NEEDS_REPLICA 1u
#define CLI_NEEDS_KEY 2u  /* commits: unlock the secret key */
#define CLI_BULK_OUT 4u   /* prints a listing that may run to megabytes:
                           * stdout gets a large buffer when it is not a
                           * terminal (fewer writes; nothing waits on it) */

/* Text from a note, a peer, a file or a user, made safe for a terminal
 * (esc.c): control characters, C1, invalid UTF-8 and (on one line)
 * newlines, tabs, backslashes and invisible bidi/zero-width characters are
 * shown escaped (\x1b, \u009b, \n, \\). The result is valid until
 * CLI_ESC_SLOTS later calls, so one printf can escape several arguments.
 * NULL gives NULL. JSON output needs none of this (jansson escapes). */
#define CLI_ESC_SLOTS 16
const char *cli_esc(const char *s);
const char *cli_escn(const char *s, size_t n);
/* How many leading bytes of s (n bytes) cli_escn leaves as they are and
 * could stop at (printable ASCII but the backslash): n means cli_escn(s, n)
 * equals s. */
size_t cli_plain_len(const char *s, size_t n);
/* A name a key only claims: cli_esc plus its parentheses escaped ("\(",
 * look-alikes as \uXXXX), so the key's fingerprint is always the first
 * plain "(" after it. Valid until the next call. */
const char *cli_esc_claim(const char *s);
/* A note's body: like cli_escn but \n, \t and backslashes are kept. */
void cli_put_text(FILE *f, const char *s, size_t n);
/* Whether s holds a C0 or C1 control, DEL or invalid UTF-8: what a name
 * may not (the rule of libnotes' names, for the CLI's own petnames). */
int cli_has_controls(const char *s);
/* cli_put_text to stdout, flushed; an exit code. */
int cli_write_text(const char *s, size_t n);

/* A command's one confirmation line on success ("Set title of 3f2a1b9c.",
 * "Wrote weekly.bundle (12 changes)."): printed to stdout with a newline,
 * unless -q/--quiet or --json (whose output stays pure JSON). Errors and
 * warnings go to stderr as ever and are never silenced. */
void cli_done(const struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Columns a string takes on a terminal (UTF-8: combining marks 0, wide
 * characters 2), and it printed to stdout padded with spaces to `width`
 * columns: tables line up with "RăzvanD" as with "Razvan". */
size_t cli_width(const char *s);
void cli_pad(const char *s, size_t width);
/* "s" unless n is 1: printf("%zu change%s", n, CLI_S(n)). */
#define CLI_S(n) ((n) == 1 ? "" : "s")

/* Report a libnotes error: "notes: WHAT: DETAIL" and map to an exit code. */
int cli_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(const char *cmd);
/* Map a libnotes error code to the exit code. */
int cli_exit_code(int rc);

/* Resolve NOTE (id, unique id prefix, unique title match) and open it;
 * its damage, if any, is reported (cli_note_damage). */
int cli_open_note(struct cli_ctx *ctx, const char *spec, notes_doc **out);
/* For commands whose one argument is NOTE (or, unless `required`, none:
 * every note): a NOTE given is opened (cli_open_note), else *out is NULL;
 * other arguments are usage. 0 or the exit code. */
int cli_open_note_arg(struct cli_ctx *ctx, int argc, char **argv,
                      const char *cmd, int required, notes_doc **out);
/* For commands whose arguments are NOTE and then others, with no options
 * (diff, revert): the arguments fill pos[0..npos) as cli_parse_args fills
 * them (the rest NULL), NOTE (pos[0]) and the first `required` in all must
 * be given, and NOTE is opened. 0 or the exit code. */
int cli_open_note_pos(struct cli_ctx *ctx, int argc, char **argv,
                      const char *cmd, const char **pos, size_t npos,
                      size_t required, notes_doc **out);
/* For commands over every note: the replica's note ids (exit code, with
 * the message, when they cannot be listed), and one of them opened:
 * 0; -1 for a note created but never committed (skip it); or the exit code
 * of "note ID cannot be opened", said on stderr. */
int cli_list_notes(struct cli_ctx *ctx, uint8_t (**ids)[16], size_t *n);
int cli_open_listed(struct cli_ctx *ctx, const uint8_t id[16], notes_doc **d);
/* `notes list` and `notes decisions` read the notes index (formats'
 * notes_fmt_index_read) unless NOTES_NO_INDEX is set (not to "0"): then
 * they open every log, the slow way the index is checked against. */
int cli_use_index(void);
struct notes_fmt_index;
struct notes_fmt_index_note;
struct cli_indexed {
    const uint8_t *id;                    /* the note */
    const struct notes_fmt_index_note *x; /* its entry; NULL: open it (the
                                           * index could not read it, or
                                           * read it with damage to say) */
};
/* Every note, by id, as the index holds it (flags: notes_fmt_index_read):
 * 0 and *out (free it, then notes_fmt_index_clear(ix)); -1 when the index
 * cannot be used (nothing to release): list the notes as before. */
int cli_index_notes(struct cli_ctx *ctx, unsigned flags,
                    struct notes_fmt_index *ix, struct cli_indexed **out,
                    size_t *n);
/* Say on stderr what is wrong with an opened note's storage; a note that
 * is not whole (notes_doc_intact) makes the command exit 2 in the end,
 * after it showed the note's last good state. */
void cli_note_damage(struct cli_ctx *ctx, notes_doc *d);
/* Say what a writing call repaired (bytes set aside), if anything. */
void cli_note_repaired(notes_doc *d);
/* Short (8 hex) and full (32 hex) note ids. */
void cli_note_id(char out[33], const uint8_t id[16]);
/* "name (abcd-efgh)" for a device key in note `d` (may be NULL): the
 * person it is linked to there, named by the user's petname, else by the
 * name it claims plus ", unknown key" (cmd_people.c). */
void cli_author(struct cli_ctx *ctx, notes_doc *d, const uint8_t pk[32],
                char *out, size_t n);
/* The same from what the note says of the key (notes_fmt_key_facts, as
 * the notes index keeps it): cli_author is this on the note's facts. */
struct notes_fmt_key_facts;
void cli_author_facts(struct cli_ctx *ctx, const struct notes_fmt_key_facts *f,
                      char *out, size_t n);
/* How a peer's device key is shown (notes peers, sync messages), by the
 * rule of cli_author: "NAME (FPR)" with a note of `space` that knows the
 * key, where FPR is the person's fingerprint when the device is linked to
 * one (then, with_device, ", device DEVICE-FPR" follows); a key in no
 * note here: "PETNAME (DEVICE-FPR)" or "device DEVICE-FPR". */
void cli_peer(struct cli_ctx *ctx, const char *space, const uint8_t pk[32],
              int with_device, char *out, size_t n);
/* After `notes join`: the inviter's key (from the code) named in
 * HOME/trust, by the name it claims in the space's notes, unless it has
 * a name there already; one line says so (cmd_people.c). */
void cli_trust_inviter(struct cli_ctx *ctx, const char *space,
                       const uint8_t inviter[32]);
/* Format a Unix ms time as local ISO 8601 with offset. */
void cli_time(uint64_t ms, char *out, size_t n);
/* Read a whole file or "-" (stdin), bounded while reading: more than max
 * bytes is refused (exit 1) having held at most max + 1 of them. A file
 * that cannot be opened or read: exit 1 if it does not exist or is a
 * folder, else 3 (permissions, I/O). */
int cli_read_input(const char *path, size_t max, char **out, size_t *n);
/* The same, and once NOTES_CLI_HEAD bytes are in (or at the end), `narrow`
 * may lower the limit by what they are (e.g. Markdown vs a bundle). */
#define NOTES_CLI_HEAD 20u
int cli_read_input_ex(const char *path, size_t max,
                      size_t (*narrow)(const char *head, size_t len),
                      char **out, size_t *n);
/* Write to a file atomically, or stdout when path is NULL or "-". */
int cli_write_output(const char *path, const void *p, size_t n);
/* Render the note as Markdown: front matter then body. Caller frees. */
char *cli_render_markdown(notes_doc *d, size_t *n);
/* Unlock the signing key (asking for the passphrase if needed); exit code. */
int cli_unlock(struct cli_ctx *ctx);
/* Commit with a clear message on failure; returns an exit code. */
int cli_commit(notes_doc *d, const char *what);
/* Parse "--opt VALUE" style arguments; returns index of next arg. */
const char *cli_opt_value(int *i, int argc, char **argv);
/* One option in a command's table for cli_parse_args: "NAME VALUE" when
 * `value` is set (a repeated option keeps the last); a repeatable "NAME
 * VALUE" when `many` is set (values appended to many[0..*nmany), at most
 * `max`; one more is a usage error); else the flag "NAME", which sets
 * *flag to 1. A table ends with a NULL name. */
struct cli_opt {
    const char *name;
    const char **value;
    int *flag;
    const char **many;
    size_t *nmany;
    size_t max;
};
#define CLI_VALUE(n, v) {.name = (n), .value = (v)}
#define CLI_FLAG(n, f) {.name = (n), .flag = (f)}
#define CLI_MANY(n, arr, cnt, cap) \
    {.name = (n), .many = (arr), .nmany = (cnt), .max = (cap)}
#define CLI_END {.name = NULL}
/* Parse a command's arguments (argv[1..]): the options of `opts` wherever
 * they stand; the other arguments fill pos[0..npos) in order, one beginning
 * with '-' only when `dash_ok` (a title, a text, "-" for stdin). 0, or
 * cli_usage(cmd) for an option without its value or an argument left over. */
int cli_parse_args(int argc, char **argv, const char *cmd,
                   const struct cli_opt *opts, const char **pos, size_t npos,
                   int dash_ok);

/* A command that talks to the network (sync, join, serve, relay): a peer
 * gone mid-write must not kill it (SIGPIPE ignored). */
void cli_network_command(void);

extern const struct cli_cmd cli_commands[];

/* Commands. */
int cmd_init(int, char **, struct cli_ctx *);
int cmd_whoami(int, char **, struct cli_ctx *);
int cmd_new(int, char **, struct cli_ctx *);
int cmd_list(int, char **, struct cli_ctx *);
int cmd_search(int, char **, struct cli_ctx *); /* cmd_search.c */
int cmd_show(int, char **, struct cli_ctx *);
int cmd_append(int, char **, struct cli_ctx *);
int cmd_set(int, char **, struct cli_ctx *);
int cmd_log(int, char **, struct cli_ctx *);
int cmd_blame(int, char **, struct cli_ctx *);
int cmd_verify(int, char **, struct cli_ctx *);
int cmd_diff(int, char **, struct cli_ctx *);
int cmd_compact(int, char **, struct cli_ctx *);
int cmd_edit(int, char **, struct cli_ctx *);
int cmd_resolve(int, char **, struct cli_ctx *);
int cmd_revert(int, char **, struct cli_ctx *);
int cmd_restore(int, char **, struct cli_ctx *);
/* One line on stderr per note whose lines were edited concurrently (a
 * note given, or every note of the replica). */
void cli_warn_line_conflicts(struct cli_ctx *ctx, notes_doc *d);
void cli_warn_all_line_conflicts(struct cli_ctx *ctx);
/* The line conflicts of d (cmd_conflicts.c) into JSON array `arr` when not
 * NULL, else printed for people; `spec` names the note in the hints.
 * Returns 0 or an exit code, said. */
struct json_t;
int cli_line_conflicts_out(struct cli_ctx *ctx, notes_doc *d,
                           const char *spec, struct json_t *arr);
/* What the history commands share (versions.c). */
/* The first 6 bytes of change i's id in hex, and its time (0 when unknown). */
void cli_change_hex(notes_doc *d, size_t i, char out[13], uint64_t *ms);
/* The change `spec` names (an id prefix): its index and id. 0 or the exit
 * code, said. */
int cli_change_arg(notes_doc *d, const char *spec, size_t *idx,
                   uint8_t id[32]);
/* The whole note as it was once change `spec` was applied (a memory doc:
 * text, front matter, people). 0 or the exit code, said. */
int cli_note_at(notes_doc *d, const char *spec, notes_doc **out);
/* Bytes of the front matter at the start of the Markdown of d (mdn bytes,
 * cli_render_markdown): everything before the text. */
size_t cli_fm_bytes(notes_doc *d, size_t mdn);
/* Scalar field `key` of d, now `now` (NULL: unset), made `want` (NULL:
 * unset) unless it is that already; *changed counts the write. A NOTES_E*
 * code. */
int cli_field_make(notes_doc *d, const char *key, const char *now,
                   const char *want, size_t *changed);
/* d's fields, layout ("@...") included, made those of `want`; with fm_only
 * (an edited front matter) reserved fields other than the layout are kept.
 * *changed counts the writes. A NOTES_E* code. */
int cli_sync_fields(notes_doc *d, notes_doc *want, int fm_only,
                    size_t *changed);
int cmd_decide(int, char **, struct cli_ctx *);
int cmd_space(int, char **, struct cli_ctx *);
int cmd_decisions(int, char **, struct cli_ctx *);
int cmd_done(int, char **, struct cli_ctx *);
int cmd_invite(int, char **, struct cli_ctx *);
int cmd_join(int, char **, struct cli_ctx *);
int cmd_sync(int, char **, struct cli_ctx *);
/* What the commands over notes_sync share (cmd_sync.c): a NOTES_SYNC_E*
 * or libnotes code's exit code (a peer's or a remote's data 2; the
 * network, a busy peer or an unreachable remote 3); "notes: WHAT: DETAIL"
 * with sync's detail, and that exit code; the space a command is for:
 * `given` (--space), else the replica's only space (0, or the exit code,
 * said, when it has none or several). */
int cli_sync_exit(int rc);
int cli_sync_fail(int rc, const char *what);
int cli_pick_space(struct cli_ctx *ctx, const char *given, char *out,
                   size_t cap);
int cmd_serve(int, char **, struct cli_ctx *);
int cmd_todo(int, char **, struct cli_ctx *);
int cmd_export(int, char **, struct cli_ctx *);
int cmd_import(int, char **, struct cli_ctx *);
int cmd_help(int, char **, struct cli_ctx *);
int cmd_open(int, char **, struct cli_ctx *); /* cmd_ui.c */
int cmd_peers(int, char **, struct cli_ctx *); /* cmd_sync.c */
int cmd_relay(int, char **, struct cli_ctx *); /* cmd_relay.c */
/* Git remotes (cmd_remote.c): `notes remote`, and `notes sync REMOTE`. */
int cmd_remote(int, char **, struct cli_ctx *);
int cmd_publish(int, char **, struct cli_ctx *); /* cmd_publish.c */
int cli_sync_remote(struct cli_ctx *ctx, const char *name, int compact,
                    const char *compact_above);
/* notes serve: `notes sync REMOTE` for every remote each interval_s
 * seconds (a first round at once), as child processes on the loop; stop
 * when the daemon stops (a sync under way finishes), free after the loop. */
struct cli_remote_serve;
struct uv_loop_s;
struct cli_remote_serve *cli_remote_serve_start(struct uv_loop_s *loop,
                                                struct cli_ctx *ctx,
                                                unsigned interval_s);
void cli_remote_serve_stop(struct cli_remote_serve *rs);
void cli_remote_serve_free(struct cli_remote_serve *rs);
int cmd_device(int, char **, struct cli_ctx *); /* cmd_people.c */
int cmd_person(int, char **, struct cli_ctx *);
int cmd_trust(int, char **, struct cli_ctx *);
int cmd_confirm(int, char **, struct cli_ctx *);
/* Verifiable exports (cmd_attest.c). */
int cli_is_file(const char *path);
int cli_verify_file(struct cli_ctx *ctx, const char *path);
/* `notes verify`: the replica's own files (verify_files.c); returns how
 * many are damaged; *files (--json, may be NULL) gets the "files" array. */
size_t cli_verify_files(struct cli_ctx *ctx, struct json_t **files);
int cli_verify_files_only(struct cli_ctx *ctx, struct json_t *files, int rc);
int cli_export_attest(notes_doc *d, const char *out);
/* Each line of the note with who wrote it (cmd_blame.c): into JSON array
 * `arr` ({"line", "author", "text"}) when not NULL, else printed as
 * `notes blame` does, or when `report` is given (printed first) indented
 * as in the report of `notes verify FILE`. Returns 0 or an exit code. */
int cli_blame_lines(struct cli_ctx *ctx, notes_doc *d, struct json_t *arr,
                    const char *report);
/* The decisions and action items of a note with recorder and confirmations
 * (cmd_items.c); into JSON object `o` ("items") when not NULL. */
int cli_print_items(struct cli_ctx *ctx, notes_doc *d, struct json_t *o);

/* Print a JSON value as --json does (indented, a newline) and release it;
 * NULL prints nothing (cmd_notes.c). */
void cli_json_out(struct json_t *v);
/* A long JSON array printed as it is made, the same bytes as cli_json_out
 * of the whole: cli_json_stream prints the elements `arr` holds (the
 * first one opening the array; *started says it was) and empties it;
 * cli_json_stream_end prints what is left, closes the array and releases
 * it. Holding 40,000 objects to free them at the end costs more than
 * making them. NULL does nothing. */
void cli_json_stream(struct json_t *arr, int *started);
void cli_json_stream_end(struct json_t *arr, int started);

/* The browser page inside `notes serve` (cmd_ui.c), driven by its hooks. */
struct cli_ui;
struct notes_sync_hub;
struct cli_ui *cli_ui_new(struct cli_ctx *ctx, const char *pass,
                          const char *listen);
void cli_ui_on_loop(struct cli_ui *u, void *loop, struct notes_sync_hub *hub);
void cli_ui_on_stopping(struct cli_ui *u);
void cli_ui_on_presence(struct cli_ui *u, const uint8_t *rec, size_t n);
void cli_ui_free(struct cli_ui *u);

#endif
