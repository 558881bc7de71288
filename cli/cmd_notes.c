/*
 * cmd_notes.c: the commands that make and change notes: new, list, set;
 * and the helpers the other commands share (rendering, listing).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* The series a meeting title belongs to: its words without numbers,
 * dates, weekday and month names, lowercased ("Weekly sync #12, May 15,
 * 2023" and "Weekly sync #13, May 22, 2023" are both "weekly sync"). */
static void series_key(const char *title, char *out, size_t cap)
{
    static const char *const skip[] = {
        "jan", "january", "feb", "february", "mar", "march", "apr", "april",
        "may", "jun", "june", "jul", "july", "aug", "august", "sep", "sept",
        "september", "oct", "october", "nov", "november", "dec", "december",
        "mon", "monday", "tue", "tuesday", "wed", "wednesday", "thu",
        "thursday", "fri", "friday", "sat", "saturday", "sun", "sunday",
        "st", "nd", "rd", "th", NULL};
    size_t o = 0;
    const char *p = title;
    if (cap)
        out[0] = 0;
    while (*p && cap) {
        while (*p && !((unsigned char)*p >= 0x80 || isalnum((unsigned char)*p)))
            p++;
        const char *w = p;
        int digits = 1;
        while (*p && ((unsigned char)*p >= 0x80 || isalnum((unsigned char)*p))) {
            digits &= isdigit((unsigned char)*p) != 0;
            p++;
        }
        size_t n = (size_t)(p - w);
        if (!n)
            break;
        char word[64];
        if (n >= sizeof(word))
            n = sizeof(word) - 1;
        for (size_t i = 0; i < n; i++)
            word[i] = (char)tolower((unsigned char)w[i]);
        word[n] = 0;
        /* 15th, 2nd: a number with its suffix */
        size_t k = 0;
        while (k < n && isdigit((unsigned char)word[k]))
            k++;
        int skipped = digits || (k && k + 2 == n);
        for (size_t i = 0; skip[i] && !skipped; i++)
            skipped = strcmp(word, skip[i]) == 0;
        if (skipped || o + n + 2 > cap)
            continue;
        if (o)
            out[o++] = ' ';
        memcpy(out + o, word, n);
        o += n;
        out[o] = 0;
    }
}

/* The latest other meeting of the series of `title` (by its datetime
 * field, ISO 8601): its id into prev. 1 when there is one. */
static int previous_meeting(struct cli_ctx *ctx, const char *title,
                            const uint8_t self[16], uint8_t prev[16])
{
    char want[256], key[256], best[64] = "";
    uint8_t(*ids)[16];
    size_t n;
    int found = 0;
    series_key(title, want, sizeof(want));
    if (!*want || cli_list_notes(ctx, &ids, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        notes_doc *d;
        if (!memcmp(ids[i], self, 16) || cli_open_listed(ctx, ids[i], &d))
            continue;
        const char *t = notes_doc_field(d, "title");
        const char *when = notes_doc_field(d, "datetime");
        series_key(t ? t : "", key, sizeof(key));
        if (!strcmp(key, want) &&
            (!found || strcmp(when ? when : "", best) > 0)) {
            snprintf(best, sizeof(best), "%s", when ? when : "");
            memcpy(prev, ids[i], 16);
            found = 1;
        }
        notes_doc_free(d);
    }
    notes_free(ids);
    return found;
}

/* Copy the open action items of `from` into d's TODOs (one line each, the
 * owner as written there); their owners join d's participants, who owners
 * are read from (docs/formats.md), so each item keeps its owner. The
 * number copied into *n. */
static int carry_items(notes_doc *from, notes_doc *d, size_t *n)
{
    notes_fmt_outline o;
    int rc = notes_fmt_outline_doc(from, &o);
    *n = 0;
    for (size_t i = 0; !rc && i < o.nitems; i++) {
        const notes_fmt_item *it = &o.items[i];
        if (it->kind != NOTES_FMT_ITEM_TASK || it->done)
            continue;
        const char *who = it->owner_written ? it->owner_written : it->owner;
        if (it->owner && strcmp(it->owner, "Everyone") != 0) {
            const char *const *l = notes_doc_list(d, "participants");
            size_t k = 0;
            while (l && l[k] && strcmp(l[k], it->owner) != 0)
                k++;
            if ((!l || !l[k]) &&
                (rc = notes_doc_list_add(d, "participants", it->owner)))
                break;
        }
        size_t cap = strlen(it->text) + (who ? strlen(who) : 0) + 16;
        char *line = malloc(cap);
        if (!line) {
            rc = NOTES_ENOMEM;
            break;
        }
        snprintf(line, cap, "- [ ] %s%s%s", who ? who : "", who ? ": " : "",
                 it->text);
        for (char *c = line; *c; c++)
            if (*c == '\n')
                *c = ' ';
        rc = notes_fmt_section_append(d, NULL, "## TODOs and Decisions", line);
        free(line);
        if (!rc)
            (*n)++;
    }
    notes_fmt_outline_clear(&o);
    return rc;
}

int cmd_new(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *title = NULL, *template = NULL, *carry_from = NULL;
    notes_doc *d, *prev = NULL;
    char when[64], hex[33];
    struct timeval tv;
    int rc, carry = 0;

    const struct cli_opt opts[] = {CLI_VALUE("--template", &template),
                                   CLI_FLAG("--carry", &carry),
                                   CLI_VALUE("--carry-from", &carry_from),
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
    /* The open action items of the series' last meeting come along. */
    size_t carried = 0;
    if (carry_from) {
        if ((rc = cli_open_note(ctx, carry_from, &prev))) {
            notes_doc_free(d);
            return rc;
        }
    } else if (carry) {
        uint8_t pid[16];
        if (previous_meeting(ctx, title, notes_doc_id(d), pid) &&
            cli_open_listed(ctx, pid, &prev) != 0)
            prev = NULL;
        if (!prev)
            fprintf(stderr, "notes: nothing carried: no earlier meeting "
                            "titled like '%s' (name one: --carry-from NOTE)\n",
                    cli_esc(title));
    }
    if (prev && (rc = carry_items(prev, d, &carried))) {
        notes_doc_free(prev);
        notes_doc_free(d);
        return cli_fail(rc, "cannot carry the open action items");
    }
    rc = cli_commit(d, "the new note");
    if (!rc) {
        cli_note_id(hex, notes_doc_id(d));
        printf("%s\n", hex);
        if (prev) {
            char ph[33];
            const char *pt = notes_doc_field(prev, "title");
            cli_note_id(ph, notes_doc_id(prev));
            /* stderr: stdout is the new id, for scripts */
            fprintf(stderr, "carried %zu open action item%s from %.8s \"%s\"\n",
                    carried, CLI_S(carried), ph, pt ? cli_esc(pt) : "");
        }
    }
    notes_doc_free(prev);
    notes_doc_free(d);
    return rc;
}

/* ---- list ---- */

int cli_use_index(void)
{
    const char *e = getenv("NOTES_NO_INDEX");
    return !e || !*e || strcmp(e, "0") == 0;
}

int cli_index_notes(struct cli_ctx *ctx, unsigned flags, notes_fmt_index *ix,
                    struct cli_indexed **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    memset(ix, 0, sizeof(*ix));
    if (!cli_use_index() || notes_fmt_index_read(ctx->r, flags, ix) != NOTES_OK) {
        notes_fmt_index_clear(ix);
        return -1; /* read every log instead: the same output, slower */
    }
    size_t total = ix->nnotes + ix->stats.nskipped, i = 0, k = 0;
    struct cli_indexed *v = calloc(total ? total : 1, sizeof(*v));
    if (!v) {
        notes_fmt_index_clear(ix);
        return -1;
    }
    /* Both by id: merged into the order of notes_replica_list. A note the
     * index could not read (skipped) or read with damage is opened the
     * slow way, so that what is said of it is said as before. */
    while (i < ix->nnotes || k < ix->stats.nskipped) {
        int take_ix = k >= ix->stats.nskipped ||
                      (i < ix->nnotes &&
                       memcmp(ix->notes[i].id, ix->stats.skipped[k], 16) < 0);
        struct cli_indexed *c = &v[*n];
        if (take_ix) {
            c->id = ix->notes[i].id;
            c->x = ix->notes[i].damaged ? NULL : &ix->notes[i];
            i++;
        } else {
            c->id = ix->stats.skipped[k++];
        }
        ++*n;
    }
    *out = v;
    return 0;
}

struct listed {
    notes_doc *d;                      /* opened (the slow way) */
    const notes_fmt_index_note *x;     /* or as the index holds it */
    const char *title, *datetime;
    uint64_t last_ms;
    size_t changes;
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

/* The authors as JSON (arr), or by name, each person once (human). */
static json_t *authors_json(struct cli_ctx *ctx, const notes_fmt_key_facts *f,
                            size_t n, struct notes_buf *human)
{
    json_t *arr = human ? NULL : json_array();
    char(*seen)[160] = human && n ? malloc(n * sizeof(*seen)) : NULL;
    if (human && n && !seen)
        abort(); /* CLI only: out of memory while printing */
    for (size_t i = 0; i < n; i++) {
        char who[160], key[NOTES_KEY_STRLEN];
        cli_author_facts(ctx, &f[i], who, sizeof(who));
        if (!human) {
            notes_key_encode(f[i].key, key);
            json_array_append_new(arr, json_pack("{s:s, s:s}", "author", who,
                                                 "key", key));
            continue;
        }
        /* Two devices of one person read the same: name them once. */
        int again = 0;
        for (size_t j = 0; j < i && !again; j++)
            again = strcmp(seen[j], who) == 0;
        memcpy(seen[i], who, sizeof(who));
        if (!again) {
            if ((human->len && notes__buf_puts(human, ", ")) ||
                notes__buf_puts(human, who))
                abort();
        }
    }
    free(seen);
    return arr;
}

/* The authors of an opened note, as the index would hold them. */
static json_t *doc_authors_json(struct cli_ctx *ctx, notes_doc *d,
                                struct notes_buf *human)
{
    uint8_t(*keys)[32] = NULL;
    size_t n = 0;
    if (notes_fmt_authors(d, &keys, &n) != NOTES_OK)
        n = 0; /* out of memory: no authors shown */
    notes_fmt_key_facts *f = calloc(n ? n : 1, sizeof(*f));
    if (!f)
        n = 0;
    for (size_t i = 0; i < n; i++)
        notes_fmt_key_facts_of(d, keys[i], &f[i]);
    json_t *arr = authors_json(ctx, f, n, human);
    free(f);
    notes_fmt_free(keys);
    return arr;
}

/* Open note `id` the slow way into *l: 0, or a nonzero exit code (said);
 * a note created but never committed is no note (-1). */
static int list_open(struct cli_ctx *ctx, const uint8_t id[16], struct listed *l)
{
    notes_doc *d;
    char hex[33];
    int rc = notes_doc_open(ctx->r, id, &d);
    if (rc == NOTES_ENOTFOUND)
        return -1; /* created but never committed (a crash) */
    if (rc) {
        cli_note_id(hex, id);
        return cli_fail(rc, "cannot open note %s", hex);
    }
    cli_note_damage(ctx, d);
    memset(l, 0, sizeof(*l));
    l->d = d;
    l->title = notes_doc_field(d, "title");
    l->datetime = notes_doc_field(d, "datetime");
    l->changes = notes_doc_change_count(d);
    notes_change_info ci;
    if (l->changes && notes_doc_change(d, l->changes - 1, &ci) == NOTES_OK)
        l->last_ms = ci.time_ms;
    return 0;
}

int cmd_list(int argc, char **argv, struct cli_ctx *ctx)
{
    uint8_t(*ids)[16] = NULL;
    size_t n;
    (void)argv;
    if (argc != 1)
        return cli_usage("list");
    /* From the notes index when it can be read (every log otherwise):
     * the same lines either way. */
    notes_fmt_index ix;
    struct cli_indexed *from = NULL;
    if (cli_index_notes(ctx, 0, &ix, &from, &n) != 0) {
        int rc = notes_replica_list(ctx->r, &ids, &n);
        if (rc)
            return cli_fail(rc, "cannot list notes");
    }
    struct listed *v = calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    int ret = 0;
    for (size_t i = 0; i < n && v; i++) {
        const notes_fmt_index_note *x = from ? from[i].x : NULL;
        if (x) {
            v[k].x = x;
            v[k].title = x->title;
            v[k].datetime = x->datetime;
            v[k].last_ms = x->last_ms;
            v[k].changes = x->changes;
            k++;
            continue;
        }
        int e = list_open(ctx, from ? from[i].id : ids[i], &v[k]);
        if (e == 0)
            k++;
        else if (e > ret) /* a damaged log is 2, an unreadable one 3 */
            ret = e;
    }
    if (k > 1) /* v is NULL for an empty replica */
        qsort(v, k, sizeof(*v), by_time_desc);
    json_t *arr = ctx->json ? json_array() : NULL;
    int started = 0;
    for (size_t i = 0; i < k; i++) {
        char hex[33];
        struct notes_buf who;
        notes__buf_init(&who, SIZE_MAX);
        if (!v[i].d && !v[i].x)
            continue; /* every row has one or the other */
        cli_note_id(hex, v[i].d ? notes_doc_id(v[i].d) : v[i].x->id);
        struct notes_buf *h = arr ? NULL : &who;
        json_t *authors = v[i].d ? doc_authors_json(ctx, v[i].d, h)
                                 : authors_json(ctx, v[i].x->authors,
                                                v[i].x->nauthors, h);
        if (arr) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s?, s:s?, s:o, s:I}", "id", hex, "title",
                               v[i].title, "datetime", v[i].datetime, "authors",
                               authors, "changes", (json_int_t)v[i].changes));
            cli_json_stream(arr, &started);
        } else {
            /* Columns by display width: "RăzvanD" lines up as "Razvan". */
            printf("%.8s  ", hex);
            cli_pad(v[i].datetime ? cli_esc(v[i].datetime) : "-", 25);
            fputs("  ", stdout);
            cli_pad(v[i].title ? cli_esc(v[i].title) : "(untitled)", 40);
            printf("  %s\n",
                   who.data ? (const char *)who.data : ""); /* cli_author: escaped */
            json_decref(authors);
        }
        notes__buf_release(&who);
        notes_doc_free(v[i].d);
    }
    cli_json_stream_end(arr, started);
    free(v);
    free(from);
    if (from)
        notes_fmt_index_clear(&ix);
    notes_free(ids);
    return ret;
}

/* ---- set ---- */

/* The field as the note spells it: names match case-insensitively, so
 * `Participants+` adds to "participants" rather than making a second
 * field that differs only in case. An exact spelling wins; a name no
 * field has is kept as given (a new field). */
static const char *field_name(notes_doc *d, const char *want)
{
    const char *const *names = notes_doc_fields(d);
    const char *found = NULL;
    for (size_t i = 0; names && names[i]; i++) {
        if (strcmp(names[i], want) == 0)
            return names[i];
        if (!found && strcasecmp(names[i], want) == 0)
            found = names[i];
    }
    return found ? found : want;
}

static size_t list_len(const char *const *l)
{
    size_t n = 0;
    while (l && l[n])
        n++;
    return n;
}

/* A list field: one with elements now, or one of the fields the
 * Markdown front matter keeps as lists (formats/: tags, participants,
 * teams), so that the first `set participants Ana` makes a list too. */
static int is_list_field(notes_doc *d, const char *field)
{
    return list_len(notes_doc_list(d, field)) > 0 ||
           strcmp(field, "tags") == 0 || strcmp(field, "participants") == 0 ||
           strcmp(field, "teams") == 0;
}

static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* ISO 8601 as the notes' front matter holds it: YYYY-MM-DD, optionally
 * followed by T (or a space) HH:MM[:SS[.fraction]] and Z or +HH:MM /
 * -HH:MM / +HHMM. Every date shown, sorted and exported reads this field,
 * so "next tuesday" is refused rather than stored. */
static int valid_datetime(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, da, h, mi, se;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &da))
        return 0;
    if (mo < 1 || mo > 12 || da < 1 || da > mdays[mo - 1] ||
        (mo == 2 && da == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
        return 0;
    s += 10;
    if (!*s)
        return 1;
    if ((*s != 'T' && *s != ' ') || !digits(s + 1, 2, &h) || s[3] != ':' ||
        !digits(s + 4, 2, &mi) || h > 23 || mi > 59)
        return 0;
    s += 6;
    if (*s == ':') {
        if (!digits(s + 1, 2, &se) || se > 60)
            return 0;
        s += 3;
        if (*s == '.' || *s == ',') {
            if (s[1] < '0' || s[1] > '9')
                return 0;
            for (s++; *s >= '0' && *s <= '9'; s++)
                ;
        }
    }
    if (!*s || (*s == 'Z' && !s[1]))
        return 1;
    if (*s != '+' && *s != '-')
        return 0;
    if (!digits(s + 1, 2, &h) || h > 23)
        return 0;
    s += 3;
    if (*s == ':')
        s++;
    return digits(s, 2, &mi) && mi <= 59 && !s[2];
}

static int in_list(const char *const *l, const char *v)
{
    for (size_t i = 0; l && l[i]; i++)
        if (strcmp(l[i], v) == 0)
            return 1;
    return 0;
}

/* Make the list `field` hold exactly vals[0..n): remove what is not in it,
 * add what is missing (kept elements keep their place). */
static int replace_list(notes_doc *d, const char *field, char **vals, int n)
{
    const char *const *cur = notes_doc_list(d, field);
    size_t nc = list_len(cur);
    char **old = calloc(nc + 1, sizeof(*old));
    int rc = old ? NOTES_OK : NOTES_ENOMEM;
    for (size_t i = 0; i < nc && !rc; i++)
        if (!(old[i] = strdup(cur[i])))
            rc = NOTES_ENOMEM;
    for (size_t i = 0; i < nc && !rc; i++) {
        int keep = 0;
        for (int j = 0; j < n && !keep; j++)
            keep = strcmp(old[i], vals[j]) == 0;
        if (!keep)
            rc = notes_doc_list_remove(d, field, old[i]);
    }
    for (int j = 0; j < n && !rc; j++)
        if (!in_list(notes_doc_list(d, field), vals[j]))
            rc = notes_doc_list_add(d, field, vals[j]);
    for (size_t i = 0; old && i < nc; i++)
        free(old[i]);
    free(old);
    return rc;
}

int cmd_set(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if (argc < 3)
        return cli_usage("set");
    char *want = strdup(argv[2]);
    if (!want)
        return EXIT_SYSTEM;
    size_t fl = strlen(want);
    char op = fl > 1 && (want[fl - 1] == '+' || want[fl - 1] == '-')
                  ? want[fl - 1]
                  : 0;
    if (op)
        want[fl - 1] = 0;
    /* FIELD+ and FIELD- take one value; only a list's new contents may be
     * several (`set NOTE participants Ana Dana`), checked below. */
    if (!*want || (op && argc != 4)) {
        free(want);
        return cli_usage("set");
    }
    if ((rc = cli_open_note(ctx, argv[1], &d))) {
        free(want);
        return rc;
    }
    char hex[33];
    cli_note_id(hex, notes_doc_id(d));
    hex[8] = 0;
    const char *field = field_name(d, want);
    int list = is_list_field(d, field);
    const char *value = argc >= 4 ? argv[3] : NULL;
    int ret = 0;
    const char *const *cur = notes_doc_list(d, field);
    const char *const *conf = notes_doc_field_conflicts(d, field);
    int conflicted = conf && conf[0];

    if (argc > 4 && (op || !list)) {
        ret = cli_usage("set");
    } else if (op && !list && notes_doc_field(d, field)) {
        fprintf(stderr, "notes: '%s' holds one value, not a list; set it with: "
                        "notes set NOTE %s VALUE\n", cli_esc(field), cli_esc(field));
        ret = EXIT_USER;
    } else if (op == '+' && in_list(cur, value)) {
        cli_done(ctx, "%s: %s already has %s; nothing to record.", hex,
                 cli_esc(field), cli_esc(value));
    } else if (op == '-' && !in_list(cur, value)) {
        fprintf(stderr, "notes: %s: %s has no '%s'%s\n", hex, cli_esc(field),
                cli_esc(value), list_len(cur) ? " (see: notes show NOTE)" : "");
        ret = EXIT_USER;
    } else if (!op && (!value || !*value) && strcmp(field, "title") == 0) {
        /* Without a title the note cannot be found by it, on every peer
         * the change reaches: refuse, and say how to rename. */
        fprintf(stderr, "notes: %s: a note keeps its title (NOTE finds it by "
                        "title); to rename it: notes set %s title \"NEW TITLE\"\n",
                hex, hex);
        ret = EXIT_USER;
    } else if (!op && !value && !notes_doc_field(d, field) && !list_len(cur)) {
        fprintf(stderr, "notes: %s has no field '%s'\n", hex, cli_esc(want));
        ret = EXIT_USER;
    } else if (!op && value && strcmp(field, "datetime") == 0 &&
               !valid_datetime(value)) {
        fprintf(stderr, "notes: '%s' is not a date and time; give ISO 8601, "
                        "e.g. 2023-05-15T13:00+02:00 or 2023-05-15\n",
                cli_esc(value));
        ret = EXIT_USER;
    } else if (!op && value && !list && !conflicted &&
               notes_doc_field(d, field) &&
               strcmp(notes_doc_field(d, field), value) == 0) {
        cli_done(ctx, "%s: %s is already \"%s\"; nothing to record.", hex,
                 cli_esc(field), cli_esc(value));
    } else {
        if (op == '+')
            rc = notes_doc_list_add(d, field, value);
        else if (op == '-')
            rc = notes_doc_list_remove(d, field, value);
        else if (list)
            rc = replace_list(d, field, argv + 3, argc - 3);
        else if (value)
            rc = notes_doc_set_field(d, field, value);
        else
            rc = notes_doc_unset_field(d, field);
        ret = rc ? cli_fail(rc, "cannot set '%s'", field)
                 : cli_commit(d, "the field");
        if (!ret && op == '+')
            cli_done(ctx, "%s: added %s to %s.", hex, cli_esc(value), cli_esc(field));
        else if (!ret && op == '-')
            cli_done(ctx, "%s: removed %s from %s.", hex, cli_esc(value),
                     cli_esc(field));
        else if (!ret && list && value) {
            struct notes_buf all;
            notes__buf_init(&all, SIZE_MAX);
            for (int j = 3; j < argc; j++)
                if ((j > 3 && notes__buf_puts(&all, ", ")) ||
                    notes__buf_puts(&all, cli_esc(argv[j])))
                    abort(); /* CLI only: out of memory while printing */
            cli_done(ctx, "%s: %s is now %s.", hex, cli_esc(field),
                     (const char *)all.data);
            notes__buf_release(&all);
        } else if (!ret && value)
            cli_done(ctx, "%s: %s is now \"%s\".", hex, cli_esc(field),
                     cli_esc(value));
        else if (!ret)
            cli_done(ctx, "%s: removed %s.", hex, cli_esc(field));
    }
    free(want);
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

void cli_json_stream(json_t *arr, int *started)
{
    for (size_t i = 0; arr && i < json_array_size(arr); i++) {
        char *s = json_dumps(json_array_get(arr, i), JSON_INDENT(2));
        if (!s)
            abort(); /* CLI only: out of memory while printing */
        fputs(*started ? ",\n  " : "[\n  ", stdout);
        *started = 1;
        for (const char *p = s, *nl; *p; p = nl + 1) {
            nl = strchr(p, '\n');
            if (!nl) {
                fputs(p, stdout);
                break;
            }
            fwrite(p, 1, (size_t)(nl - p) + 1, stdout);
            fputs("  ", stdout);
        }
        free(s);
    }
    if (arr)
        json_array_clear(arr);
}

void cli_json_stream_end(json_t *arr, int started)
{
    if (!arr)
        return;
    cli_json_stream(arr, &started);
    puts(started ? "\n]" : "[]");
    json_decref(arr);
}

