/*
 * cmd_notes.c: the commands that make and change notes: new, list, set;
 * and the helpers the other commands share (rendering, listing).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"

/* ---- Markdown rendering of fields + body ---- */

/* The note as Markdown (formats/: the imported front matter kept byte
 * for byte where unchanged). Caller frees with free(). */
char *cli_render_markdown(notes_doc *d, size_t *n)
{
    char *out;
    int rc = notes_fmt_md_export(d, &out, n);
    if (rc) {
        cli_fail(rc, "cannot render the note");
        return NULL;
    }
    char *copy = malloc(*n + 1);
    if (copy)
        memcpy(copy, out, *n + 1);
    notes_fmt_free(out);
    return copy;
}

/* ---- new ---- */

int cmd_new(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *title = NULL, *template = NULL;
    notes_doc *d;
    char when[64], hex[33];
    struct timeval tv;
    int rc;

    const struct cli_opt opts[] = {CLI_VALUE("--template", &template),
                                   CLI_END};
    if ((rc = cli_parse_args(argc, argv, "new", opts, &title, 1, 1)))
        return rc;
    if (!title || !*title)
        return cli_usage("new");
    gettimeofday(&tv, NULL);
    cli_time((uint64_t)tv.tv_sec * 1000, when, sizeof(when));
    if ((rc = notes_doc_create(ctx->r, &d)))
        return cli_fail(rc, "cannot create a note");
    if (template) {
        char *data;
        size_t n;
        notes_fmt_diag diag;
        memset(&diag, 0, sizeof(diag));
        if ((rc = cli_read_input(template, NOTES_MD_MAX_BYTES, &data, &n))) {
            notes_doc_free(d);
            return rc;
        }
        rc = notes_fmt_md_import(d, data, n, &diag);
        free(data);
        if (rc) {
            notes_doc_free(d);
            fprintf(stderr, "notes: %s:%zu: %s\n", cli_esc(template), diag.line,
                    cli_esc(diag.msg[0] ? diag.msg : notes_strerror(rc)));
            return cli_exit_code(rc);
        }
    }
    /* A template's own text is kept (even an empty one): only the fields
     * of the meeting template are set over it. */
    const char *me = notes_replica_name(ctx->r);
    if (!template)
        rc = notes_fmt_meeting_new(d, title, when, me);
    else if (!(rc = notes_doc_set_field(d, "title", title)) &&
             !(rc = notes_doc_set_field(d, "datetime", when)))
        rc = notes_doc_list_add(d, "participants", me);
    if (rc) {
        notes_doc_free(d);
        return cli_fail(rc, "cannot fill the new note");
    }
    rc = cli_commit(d, "the new note");
    if (!rc) {
        cli_note_id(hex, notes_doc_id(d));
        printf("%s\n", hex);
    }
    notes_doc_free(d);
    return rc;
}

/* ---- list ---- */

struct listed {
    notes_doc *d;
    const char *title, *datetime;
    uint64_t last_ms;
};

static int by_time_desc(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    const char *dx = x->datetime ? x->datetime : "";
    const char *dy = y->datetime ? y->datetime : "";
    int c = strcmp(dy, dx);
    if (c)
        return c;
    return (y->last_ms > x->last_ms) - (y->last_ms < x->last_ms);
}

static json_t *authors_json(struct cli_ctx *ctx, notes_doc *d, struct notes_buf *human)
{
    json_t *arr = json_array();
    uint8_t(*keys)[32] = NULL;
    size_t n = 0;
    if (notes_fmt_authors(d, &keys, &n) != NOTES_OK)
        n = 0; /* out of memory: no authors shown */
    for (size_t i = 0; i < n; i++) {
        char who[160], key[NOTES_KEY_STRLEN];
        cli_author(ctx, d, keys[i], who, sizeof(who));
        notes_key_encode(keys[i], key);
        json_array_append_new(arr, json_pack("{s:s, s:s}", "author", who,
                                             "key", key));
        /* Two devices of one person read the same: name them once. */
        int again = 0;
        for (size_t j = 0; j < json_array_size(arr) - 1 && !again; j++)
            again = strcmp(json_string_value(json_object_get(
                               json_array_get(arr, j), "author")), who) == 0;
        if (human && !again) {
            /* CLI only: out of memory while printing */
            if ((human->len && notes__buf_puts(human, ", ")) ||
                notes__buf_puts(human, who))
                abort();
        }
    }
    notes_fmt_free(keys);
    return arr;
}

int cmd_list(int argc, char **argv, struct cli_ctx *ctx)
{
    uint8_t(*ids)[16];
    size_t n;
    (void)argv;
    if (argc != 1)
        return cli_usage("list");
    int rc = notes_replica_list(ctx->r, &ids, &n);
    if (rc)
        return cli_fail(rc, "cannot list notes");
    struct listed *v = calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    int ret = 0;
    for (size_t i = 0; i < n && v; i++) {
        notes_doc *d;
        char hex[33];
        if ((rc = notes_doc_open(ctx->r, ids[i], &d))) {
            if (rc == NOTES_ENOTFOUND)
                continue; /* created but never committed (a crash) */
            cli_note_id(hex, ids[i]);
            int e = cli_fail(rc, "cannot open note %s", hex);
            if (e > ret) /* a damaged log is 2, an unreadable one 3 */
                ret = e;
            continue;
        }
        cli_note_damage(ctx, d);
        v[k].d = d;
        v[k].title = notes_doc_field(d, "title");
        v[k].datetime = notes_doc_field(d, "datetime");
        size_t nc = notes_doc_change_count(d);
        notes_change_info ci;
        if (nc && notes_doc_change(d, nc - 1, &ci) == NOTES_OK)
            v[k].last_ms = ci.time_ms;
        k++;
    }
    if (k > 1) /* v is NULL for an empty replica */
        qsort(v, k, sizeof(*v), by_time_desc);
    json_t *arr = ctx->json ? json_array() : NULL;
    for (size_t i = 0; i < k; i++) {
        char hex[33];
        struct notes_buf who;
        notes__buf_init(&who, SIZE_MAX);
        cli_note_id(hex, notes_doc_id(v[i].d));
        json_t *authors = authors_json(ctx, v[i].d, &who);
        if (arr) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s?, s:s?, s:o, s:I}", "id", hex, "title",
                               v[i].title, "datetime", v[i].datetime, "authors",
                               authors, "changes",
                               (json_int_t)notes_doc_change_count(v[i].d)));
        } else {
            printf("%.8s  %-25s  %-40s  %s\n", hex,
                   v[i].datetime ? cli_esc(v[i].datetime) : "-",
                   v[i].title ? cli_esc(v[i].title) : "(untitled)",
                   who.data ? (const char *)who.data : ""); /* cli_author: escaped */
            json_decref(authors);
        }
        notes__buf_release(&who);
        notes_doc_free(v[i].d);
    }
    cli_json_out(arr);
    free(v);
    notes_free(ids);
    return ret;
}

/* ---- set ---- */

int cmd_set(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if (argc != 3 && argc != 4)
        return cli_usage("set");
    char *field = strdup(argv[2]);
    if (!field)
        return EXIT_SYSTEM;
    size_t fl = strlen(field);
    char op = fl > 1 && (field[fl - 1] == '+' || field[fl - 1] == '-')
                  ? field[fl - 1]
                  : 0;
    if (op)
        field[fl - 1] = 0;
    if (op && argc != 4) {
        free(field);
        return cli_usage("set");
    }
    if ((rc = cli_open_note(ctx, argv[1], &d))) {
        free(field);
        return rc;
    }
    if (op == '+')
        rc = notes_doc_list_add(d, field, argv[3]);
    else if (op == '-')
        rc = notes_doc_list_remove(d, field, argv[3]);
    else if (argc == 4)
        rc = notes_doc_set_field(d, field, argv[3]);
    else
        rc = notes_doc_unset_field(d, field);
    int ret = rc ? cli_fail(rc, "cannot set '%s'", field)
                 : cli_commit(d, "the field");
    free(field);
    notes_doc_free(d);
    return ret;
}

int cli_list_notes(struct cli_ctx *ctx, uint8_t (**ids)[16], size_t *n)
{
    int rc = notes_replica_list(ctx->r, ids, n);
    return rc ? cli_fail(rc, "cannot list notes") : 0;
}

int cli_open_listed(struct cli_ctx *ctx, const uint8_t id[16], notes_doc **d)
{
    char hex[33];
    int rc = notes_doc_open(ctx->r, id, d);
    if (rc == NOTES_OK)
        return 0;
    *d = NULL;
    if (rc == NOTES_ENOTFOUND)
        return -1; /* created but never committed (a crash) */
    cli_note_id(hex, id);
    return cli_fail(rc, "note %.8s cannot be opened", hex);
}

void cli_json_out(json_t *v)
{
    if (!v)
        return;
    json_dumpf(v, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(v);
}

