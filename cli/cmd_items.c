/*
 * cmd_items.c: `decide` and `todo` (lines added to the decisions section
 * with formats' notes_fmt_section_append), and the listings of decisions
 * and action items: `decisions`, `done`, and those of show and verify;
 * `append` (text added to a section).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "notes_formats.h"

/* decide NOTE TEXT [--owner WHO], todo NOTE TEXT --owner WHO */
static int record_item(int argc, char **argv, struct cli_ctx *ctx, int todo)
{
    const char *owner = NULL;
    const char *cmd = todo ? "todo" : "decide";
    const struct cli_opt opts[] = {CLI_VALUE("--owner", &owner), CLI_END};
    const char *pos[2] = {NULL, NULL};
    int rc = cli_parse_args(argc, argv, cmd, opts, pos, 2, 1);
    if (rc)
        return rc;
    const char *note = pos[0], *text = pos[1];
    if (!note || !text || !*text || (todo && (!owner || !*owner)))
        return cli_usage(cmd);
    if (strchr(text, '\n') || (owner && strchr(owner, '\n'))) {
        fprintf(stderr, "notes: a %s is one line\n", todo ? "task" : "decision");
        return EXIT_USER;
    }
    notes_doc *d;
    rc = cli_open_note(ctx, note, &d);
    if (rc)
        return rc;
    size_t cap = strlen(text) + (owner ? strlen(owner) : 0) + 16;
    char *line = malloc(cap);
    if (!line) {
        notes_doc_free(d);
        return EXIT_SYSTEM;
    }
    /* An owned line under "TODOs" is an action item unless it reads as a
     * decision: the "Decision:" label says so (docs/formats.md). */
    if (todo)
        snprintf(line, cap, "- [ ] %s: %s", owner, text);
    else if (owner)
        snprintf(line, cap, "%s: Decision: %s", owner, text);
    else
        snprintf(line, cap, "%s", text);
    rc = notes_fmt_section_append(d, NULL, "## TODOs and Decisions", line);
    int ret = rc ? cli_fail(rc, "cannot record the %s", cmd)
                 : cli_commit(d, todo ? "the task" : "the decision");
    if (!ret) {
        char hex[33];
        cli_note_id(hex, notes_doc_id(d));
        cli_done(ctx, "%s recorded in %.8s: %s%s%s",
                 todo ? "action item" : "decision", hex,
                 owner ? cli_esc(owner) : "", owner ? ": " : "", cli_esc(text));
    }
    free(line);
    notes_doc_free(d);
    return ret;
}

int cmd_decide(int argc, char **argv, struct cli_ctx *ctx)
{
    return record_item(argc, argv, ctx, 0);
}

int cmd_todo(int argc, char **argv, struct cli_ctx *ctx)
{
    return record_item(argc, argv, ctx, 1);
}

/* ---- decisions, done ---- */

#include <jansson.h>

#include "notes_formats.h"

static const char *kind_name(int kind)
{
    return kind == NOTES_FMT_ITEM_TASK ? "action item" : "decision";
}

/* Where an item list comes from: the note opened, or the notes index. */
struct item_src {
    notes_doc *d;
    const notes_fmt_index_note *x;
};

/* What the note says of key pk. */
static void facts(const struct item_src *src, const uint8_t pk[32],
                  notes_fmt_key_facts *f)
{
    if (src->d) {
        notes_fmt_key_facts_of(src->d, pk, f);
        return;
    }
    for (size_t i = 0; i < src->x->nkeys; i++)
        if (memcmp(src->x->keys[i].key, pk, 32) == 0) {
            *f = src->x->keys[i];
            return;
        }
    notes_fmt_key_facts_of(NULL, pk, f); /* not expected: the index names
                                          * every key its items name */
}

/* "Name (abcd-efgh)" for a key in the note. */
static void who(struct cli_ctx *ctx, const struct item_src *src,
                const uint8_t pk[32], char *out, size_t n)
{
    notes_fmt_key_facts f;
    facts(src, pk, &f);
    cli_author_facts(ctx, &f, out, n);
}


/* One confirmation, the whole chain: who (device, person), which change,
 * what it confirmed, the verdict. */
static json_t *confirm_json(struct cli_ctx *ctx, const struct item_src *src,
                            const notes_fmt_confirm *c)
{
    char by[200], dkey[NOTES_KEY_STRLEN], dfpr[NOTES_FPR_STRLEN], cid[65];
    who(ctx, src, c->by.device, by, sizeof(by));
    notes_key_encode(c->by.device, dkey);
    notes_key_fingerprint(c->by.device, dfpr);
    for (int i = 0; i < 32; i++)
        snprintf(cid + 2 * (size_t)i, 3, "%02x", c->change_id[i]);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "by",
                          by, "device", dkey, "device_fingerprint", dfpr,
                          "change", cid, "text", c->text, "owner", c->owner,
                          "state", notes_fmt_confirm_state_name(c->state),
                          "counted", c->counted, "item", c->item_id);
    if (c->by.has_person) {
        char pkey[NOTES_KEY_STRLEN], pfpr[NOTES_FPR_STRLEN];
        notes_key_encode(c->by.person, pkey);
        notes_key_fingerprint(c->by.person, pfpr);
        json_object_set_new(o, "person",
                            json_pack("{s:s, s:s, s:s?}", "key", pkey,
                                      "fingerprint", pfpr, "name", c->by.name));
    }
    return o;
}

static void confirm_line(struct cli_ctx *ctx, const struct item_src *src,
                         const notes_fmt_confirm *c)
{
    char by[200];
    who(ctx, src, c->by.device, by, sizeof(by));
    switch (c->state) {
    case NOTES_FMT_CONF_CONFIRMED:
        printf("         confirmed by %s%s\n", by,
               c->counted ? "" : " (again: counted once)");
        break;
    case NOTES_FMT_CONF_CHANGED:
        printf("         ! changed after confirmation by %s, who confirmed: "
               "%s%s%s\n", by, cli_esc(c->owner), *c->owner ? ": " : "",
               cli_esc(c->text));
        break;
    case NOTES_FMT_CONF_WRONG_TEXT:
        printf("         ✗ confirmation by %s is for another text, not "
               "counted: %s%s%s\n", by, cli_esc(c->owner),
               *c->owner ? ": " : "", cli_esc(c->text));
        break;
    case NOTES_FMT_CONF_UNKNOWN_KEY:
        printf("         ✗ confirmation by %s, a key linked to no person, not "
               "counted\n", by);
        break;
    case NOTES_FMT_CONF_REVOKED:
        printf("         ✗ confirmation by %s from a revoked device, not "
               "counted\n", by);
        break;
    default:
        printf("         ✗ confirmation by %s names no item now: %s%s%s\n", by,
               cli_esc(c->owner), *c->owner ? ": " : "", cli_esc(c->text));
    }
}

/* A note's items as `notes decisions` shows them (numbers: each one's
 * number in the note, NULL for i + 1). */
struct item_list {
    const char *hex, *title;
    size_t off; /* lines before the text in `notes show` (for JSON) */
    const char *const *participants;
    const notes_fmt_item *items;
    const size_t *numbers;
    size_t nitems;
};

/* An item's lines, gathered and written with one fwrite. */
struct line {
    char b[2048];
    size_t n;
};

static void line_flush(struct line *l)
{
    fwrite(l->b, 1, l->n, stdout);
    l->n = 0;
}

static void line_put(struct line *l, const char *s, size_t n)
{
    if (l->n + n > sizeof(l->b))
        line_flush(l);
    if (n > sizeof(l->b)) {
        fwrite(s, 1, n, stdout);
        return;
    }
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

/* cli_escn(s, n) into the line; its width in columns, as cli_width. */
static size_t line_esc(struct line *l, const char *s, size_t n)
{
    if (cli_plain_len(s, n) == n) {
        line_put(l, s, n);
        return n; /* printable ASCII: a column a byte */
    }
    const char *e = cli_escn(s, n);
    line_put(l, e, strlen(e));
    return cli_width(e);
}

/* v in decimal, as %zu. */
static size_t fmt_num(char out[24], size_t v)
{
    char t[24];
    size_t k = 0, n = 0;
    do {
        t[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        out[n++] = t[--k];
    return n;
}

static void show_items(struct cli_ctx *ctx, const struct item_src *src,
                       const struct item_list *l, int open_only,
                       const char *owner, json_t *arr, size_t *shown,
                       int *header)
{
    const char *hex = l->hex, *title = l->title;
    size_t off = l->off;
    for (size_t n = 0; n < l->nitems; n++) {
        const notes_fmt_item *it = &l->items[n];
        size_t i = l->numbers ? l->numbers[n] - 1 : n;
        if (open_only && (it->kind != NOTES_FMT_ITEM_TASK || it->done))
            continue;
        if (owner && !notes_fmt_item_owned_by(it, owner, l->participants))
            continue;
        char rec[200] = "", fpr[NOTES_FPR_STRLEN] = "", key[NOTES_KEY_STRLEN] = "";
        /* A key that signed two changes with one seq stays in the text
         * (its branches are applied) but is flagged wherever it speaks. */
        notes_fmt_key_facts f0 = {0};
        if (it->nauthors) {
            facts(src, it->authors[0], &f0);
            cli_author_facts(ctx, &f0, rec, sizeof(rec));
            if (arr) { /* JSON only: a hash and an encoding per item */
                notes_key_fingerprint(it->authors[0], fpr);
                notes_key_encode(it->authors[0], key);
            }
        }
        int bad = f0.equivocated;
        (*shown)++;
        if (arr) {
            json_t *eds = json_array(), *cfs = json_array();
            for (size_t k = 1; k < it->nauthors; k++) {
                char e[200];
                who(ctx, src, it->authors[k], e, sizeof(e));
                json_array_append_new(eds, json_string(e));
            }
            for (size_t k = 0; k < it->nconfirms; k++)
                json_array_append_new(cfs, confirm_json(ctx, src, &it->confirms[k]));
            json_t *jo = json_pack(
                "{s:s, s:s?, s:I, s:s, s:s, s:s?, s:s?, s:b, s:s?, s:s?, s:s?, "
                "s:o, s:b, s:I, s:s?, s:o, s:I}",
                "note", hex, "title", title, "number", (json_int_t)i + 1, "kind",
                kind_name(it->kind), "text", it->text, "owner", it->owner,
                "owner_written", it->owner_written, "done", it->done,
                "recorded_by", it->nauthors ? rec : NULL, "recorded_by_key",
                it->nauthors ? key : NULL, "recorded_by_fingerprint",
                it->nauthors ? fpr : NULL, "edited_by", eds, "verified",
                it->verified, "line", (json_int_t)it->line + (json_int_t)off, "id",
                it->has_anchor ? it->id : NULL, "confirmations", cfs,
                "confirmed_by_count", (json_int_t)it->confirmed_by);
            json_object_set_new(jo, "recorded_by_equivocating_key",
                                json_boolean(bad));
            const char *rev = notes_fmt_revocation_name(it->revocation);
            json_object_set_new(jo, "revocation",
                                rev ? json_string(rev) : json_null());
            if (it->nauthors && it->people && it->people[0].has_person) {
                char pk[NOTES_KEY_STRLEN], pf[NOTES_FPR_STRLEN];
                notes_key_encode(it->people[0].person, pk);
                notes_key_fingerprint(it->people[0].person, pf);
                json_object_set_new(jo, "recorded_by_person",
                                    json_pack("{s:s, s:s, s:s?}", "key", pk,
                                              "fingerprint", pf, "name",
                                              it->people[0].name));
            }
            json_array_append_new(arr, jo);
            continue;
        }
        if (!*header) {
            printf("%s%.8s  %s%s\n", ctx->color ? "\033[1m" : "", hex,
                   title ? cli_esc(title) : "(untitled)",
                   ctx->color ? "\033[0m" : "");
            *header = 1;
        }
        const char *mark = it->kind == NOTES_FMT_ITEM_TASK
                               ? (it->done ? "[x]" : "[ ]")
                               : " * ";
        /* Built in a buffer and written at once, not through printf:
         * `notes decisions` over every note prints a hundred thousand of
         * these. Byte for byte what the printf calls wrote. */
        struct line ln;
        ln.n = 0;
        char num[24];
        size_t nn = fmt_num(num, i + 1);
        line_put(&ln, "  ", 2);
        if (nn < 2)
            line_put(&ln, " ", 1); /* "%2zu" */
        line_put(&ln, num, nn);
        line_put(&ln, " ", 1);
        line_put(&ln, mark, strlen(mark));
        line_put(&ln, " ", 1);
        const char *own = it->owner ? it->owner : "-";
        for (size_t w = line_esc(&ln, own, strlen(own)); w < 10; w++)
            line_put(&ln, " ", 1);
        line_put(&ln, " ", 1);
        /* The first line of the text, at most 199 bytes. */
        size_t fl = strcspn(it->text, "\n");
        line_esc(&ln, it->text, fl > 199 ? 199 : fl);
        if (it->has_anchor) {
            line_put(&ln, "  [", 3);
            /* "%.8s" of the escaped id: its first 8 bytes when they are
             * plain (escaping leaves plain bytes as they are). */
            size_t il = strnlen(it->id, 8);
            const char *ie = cli_plain_len(it->id, il) == il ? it->id : cli_esc(it->id);
            line_put(&ln, ie, strnlen(ie, 8));
            line_put(&ln, "]", 1);
        }
        line_put(&ln, "\n         recorded by ", 22);
        const char *r = it->nauthors ? rec : "?";
        line_put(&ln, r, strlen(r));
        line_put(&ln, " ", 1);
        const char *verdict =
            !it->verified ? "✗ NOT verified"
            : it->revocation == NOTES_FMT_REV_AFTER
                ? "✗ from a revoked device, maybe after its revocation "
                  "(which had not seen it): do not trust"
            : it->revocation == NOTES_FMT_REV_BEFORE
                ? "✓ verified, written before its device was revoked"
                : "✓ verified";
        line_put(&ln, verdict, strlen(verdict));
        if (it->nauthors > 1)
            line_put(&ln, " (edited by others since)", 25);
        if (bad)
            line_put(&ln, " [equivocating key: do not trust]", 33);
        line_put(&ln, "\n", 1);
        line_flush(&ln);
        for (size_t k = 0; k < it->nconfirms; k++)
            confirm_line(ctx, src, &it->confirms[k]);
    }
}

static int list_items(struct cli_ctx *ctx, notes_doc *d, int open_only,
                      const char *owner, json_t *arr, json_t *orphans,
                      size_t *shown)
{
    notes_fmt_outline o;
    int rc = notes_fmt_outline_doc(d, &o);
    if (rc) {
        notes_fmt_outline_clear(&o);
        return cli_fail(rc, "cannot read the decisions");
    }
    char hex[33];
    cli_note_id(hex, notes_doc_id(d));
    const char *title = notes_doc_field(d, "title");
    int header = 0;
    const struct item_src src = {d, NULL};
    /* Lines as in the file `notes show` prints (front matter included). */
    const struct item_list l = {hex, title, arr ? notes_fmt_md_text_line(d) : 0,
                                notes_doc_list(d, "participants"), o.items,
                                NULL, o.nitems};
    show_items(ctx, &src, &l, open_only, owner, arr, shown, &header);
    if (!open_only && !owner) {
        for (size_t k = 0; k < o.norphans; k++) {
            if (orphans) {
                json_array_append_new(orphans,
                                      confirm_json(ctx, &src, &o.orphan_confirms[k]));
            } else if (!arr) {
                if (!header) {
                    printf("%.8s  %s\n", hex,
                           title ? cli_esc(title) : "(untitled)");
                    header = 1;
                }
                printf("  confirmations of items no longer in the note:\n");
                confirm_line(ctx, &src, &o.orphan_confirms[k]);
            }
        }
    }
    notes_fmt_outline_clear(&o);
    return 0;
}

int cli_print_items(struct cli_ctx *ctx, notes_doc *d, json_t *o)
{
    size_t shown = 0;
    if (!o) {
        printf("decisions and action items:\n");
        int ret = list_items(ctx, d, 0, NULL, NULL, NULL, &shown);
        if (!ret && !shown)
            printf("  (none)\n");
        return ret;
    }
    json_t *arr = json_array(), *orphans = json_array();
    int ret = list_items(ctx, d, 0, NULL, arr, orphans, &shown);
    json_object_set_new(o, "items", arr);
    json_object_set_new(o, "unattached_confirmations", orphans);
    return ret;
}

int cmd_decisions(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *owner = NULL;
    int open = 0;
    const struct cli_opt opts[] = {CLI_FLAG("--open", &open),
                                   CLI_VALUE("--owner", &owner), CLI_END};
    const char *pos[1] = {NULL};
    int ret = cli_parse_args(argc, argv, "decisions", opts, pos, 1, 0);
    if (ret)
        return ret;
    if (owner && !*owner)
        return cli_usage("decisions");
    json_t *arr = ctx->json ? json_array() : NULL;
    size_t shown = 0;
    notes_doc *one = NULL;
    if (pos[0] && (ret = cli_open_note(ctx, pos[0], &one))) {
        json_decref(arr);
        return ret;
    }
    if (one) {
        ret = list_items(ctx, one, open, owner, arr, NULL, &shown);
        notes_doc_free(one);
        if (!arr && !shown && (open || owner))
            printf("no %s%s%s\n", open ? "open action items" : "items",
                   owner ? " owned by " : "", owner ? cli_esc(owner) : "");
    } else {
        /* Every note: the open action items across meetings (what WHO
         * still owes, with --owner). */
        uint8_t(*ids)[16] = NULL;
        size_t n;
        /* From the notes index when it can be read (every log otherwise):
         * the same lines either way. */
        notes_fmt_index ix;
        struct cli_indexed *from = NULL;
        unsigned what = NOTES_FMT_INDEX_OPEN_ITEMS |
                        (owner ? NOTES_FMT_INDEX_PARTICIPANTS : 0);
        if (cli_index_notes(ctx, what, &ix, &from, &n) &&
            (ret = cli_list_notes(ctx, &ids, &n))) {
            json_decref(arr);
            return ret;
        }
        int started = 0;
        for (size_t i = 0; i < n && !ret; i++) {
            cli_json_stream(arr, &started); /* the last note's */
            const notes_fmt_index_note *x = from ? from[i].x : NULL;
            if (x) {
                char hex[33];
                int header = 0;
                const struct item_src src = {NULL, x};
                cli_note_id(hex, x->id);
                const struct item_list l = {hex, x->title, arr ? x->text_line : 0,
                                            x->participants, x->items,
                                            x->numbers, x->nitems};
                show_items(ctx, &src, &l, 1, owner, arr, &shown, &header);
                continue;
            }
            notes_doc *d;
            int e = cli_open_listed(ctx, from ? from[i].id : ids[i], &d);
            if (e) {
                if (e > 0)
                    ctx->damaged = 1;
                continue;
            }
            cli_note_damage(ctx, d);
            ret = list_items(ctx, d, 1, owner, arr, NULL, &shown);
            notes_doc_free(d);
        }
        notes_free(ids);
        free(from);
        if (from)
            notes_fmt_index_clear(&ix);
        if (!arr && !shown)
            printf("no open action items%s%s\n", owner ? " owned by " : "",
                   owner ? cli_esc(owner) : "");
        cli_json_stream_end(arr, started);
        arr = NULL;
    }
    cli_json_out(arr);
    return ret;
}

int cmd_done(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    notes_fmt_outline o;
    int rc;
    if (argc != 3)
        return cli_usage("done");
    if ((rc = cli_open_note(ctx, argv[1], &d)))
        return rc;
    if ((rc = notes_fmt_outline_doc(d, &o))) {
        notes_fmt_outline_clear(&o);
        notes_doc_free(d);
        return cli_fail(rc, "cannot read the action items");
    }
    /* ITEM: its number, id or part of its text (notes_fmt_item_pick). */
    size_t pick;
    int ret = 0;
    if (notes_fmt_item_pick(&o, argv[2], &pick) != NOTES_OK) {
        fprintf(stderr, "notes: %s; see: notes decisions %s\n",
                cli_esc(notes_fmt_last_detail()), cli_esc(argv[1]));
        ret = EXIT_USER;
    } else if (o.items[pick].kind != NOTES_FMT_ITEM_TASK) {
        fprintf(stderr, "notes: item %zu is a decision, not an action item; "
                        "only action items are done\n", pick + 1);
        ret = EXIT_USER;
    } else if (o.items[pick].done) {
        printf("item %zu is already done\n", pick + 1);
    } else {
        rc = notes_fmt_item_check(d, &o.items[pick]);
        ret = rc ? cli_fail(rc, "cannot mark it done")
                 : cli_commit(d, "the item as done");
        if (!ret)
            printf("done: %s\n", cli_esc(o.items[pick].text));
    }
    notes_fmt_outline_clear(&o);
    notes_doc_free(d);
    return ret;
}

/* ---- append ---- */

#define INPUT_MAX (8u << 20)

int cmd_append(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    char *text = NULL;
    const char *section = NULL;
    size_t n;
    int rc;
    const struct cli_opt opts[] = {CLI_VALUE("--section", &section), CLI_END};
    const char *pos[2] = {NULL, NULL};
    if ((rc = cli_parse_args(argc, argv, "append", opts, pos, 2, 1)))
        return rc;
    const char *note = pos[0], *arg = pos[1];
    if (!note || !arg)
        return cli_usage("append");
    if (strcmp(arg, "-") == 0) {
        if ((rc = cli_read_input("-", INPUT_MAX, &text, &n)))
            return rc;
    } else {
        text = strdup(arg);
        n = text ? strlen(text) : 0;
    }
    if (!text)
        return EXIT_SYSTEM;
    while (n && text[n - 1] == '\n')
        text[--n] = 0;
    if ((rc = cli_open_note(ctx, note, &d))) {
        free(text);
        return rc;
    }
    if (section) {
        rc = notes_fmt_section_append(d, section, NULL, text);
        if (rc == NOTES_ENOTFOUND) {
            fprintf(stderr, "notes: no section '%s' in this note\n",
                    cli_esc(section));
            free(text);
            notes_doc_free(d);
            return EXIT_USER;
        }
    } else {
        /* A remark goes to the discussion, never among the decisions,
         * where it would read as one owned by whoever it names. */
        rc = notes_fmt_remark_append(d, text);
    }
    free(text);
    int ret = rc ? cli_fail(rc, "cannot append") : cli_commit(d, "the edit");
    if (!ret) {
        char hex[33];
        cli_note_id(hex, notes_doc_id(d));
        cli_done(ctx, "appended to %.8s%s%s%s", hex,
                 section ? " in the section matching '" : "",
                 section ? cli_esc(section) : "", section ? "'" : "");
    }
    notes_doc_free(d);
    return ret;
}
