/*
 * md_frontmatter.c: finding and parsing the YAML front matter of a
 * Markdown note with libyaml (the only file that includes <yaml.h>).
 * The parse keeps, for every top-level key, the line range of its entry,
 * the style of its value and the byte positions needed to re-render only
 * that entry (md_export.c); lines between entries (comments, blank lines)
 * belong to no entry and are always re-emitted verbatim.
 */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "fmt_internal.h"

/* Length of the line at s (excluding its EOL) and of its EOL (0 at EOF). */
static size_t line_len(const char *s, size_t n, size_t *eol)
{
    const char *nl = memchr(s, '\n', n);
    if (!nl) {
        *eol = 0;
        return n;
    }
    size_t k = (size_t)(nl - s);
    if (k > 0 && s[k - 1] == '\r') {
        *eol = 2;
        return k - 1;
    }
    *eol = 1;
    return k;
}

static int is_fence(const char *s, size_t len)
{
    return len == 3 && memcmp(s, "---", 3) == 0;
}

int notes_fmt__fm_find(const char *md, size_t n, size_t *len,
                       notes_fmt_diag *diag)
{
    size_t eol, k = line_len(md, n, &eol);
    *len = 0;
    if (!is_fence(md, k) || eol == 0)
        return NOTES_OK;
    size_t at = k + eol, line = 2;
    while (at < n) {
        k = line_len(md + at, n - at, &eol);
        if (is_fence(md + at, k)) {
            *len = at + k + eol;
            if (*len > NOTES_MD_FRONTMATTER_MAX) {
                notes_fmt__diag(diag, line, 1,
                                "front matter is larger than %u KiB",
                                NOTES_MD_FRONTMATTER_MAX >> 10);
                *len = 0;
                return NOTES_ETOOBIG;
            }
            return NOTES_OK;
        }
        at += k + eol;
        line++;
    }
    notes_fmt__diag(
        diag, 1, 1,
        "front matter opened on line 1 is not closed by a '---' line");
    return NOTES_ECORRUPT;
}

/* ---- line table (libyaml's idea of lines) ---- */

/* Length of a YAML line break at s, 0 if none: \r\n \r \n NEL LS PS. */
static size_t yaml_break(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n >= 2 && u[0] == '\r' && u[1] == '\n')
        return 2;
    if (u[0] == '\r' || u[0] == '\n')
        return 1;
    if (n >= 2 && u[0] == 0xc2 && u[1] == 0x85)
        return 2;
    if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 &&
        (u[2] == 0xa8 || u[2] == 0xa9))
        return 3;
    return 0;
}

static int build_lines(struct fm *f)
{
    size_t cap = 16, k = 0;
    size_t *ls = malloc(cap * sizeof(*ls));
    if (!ls)
        return NOTES_ENOMEM;
    size_t at = f->open_len;
    while (at < f->close_start) {
        if (k + 2 > cap) {
            cap *= 2;
            size_t *nl = realloc(ls, cap * sizeof(*nl));
            if (!nl) {
                free(ls);
                return NOTES_ENOMEM;
            }
            ls = nl;
        }
        ls[k++] = at;
        while (at < f->close_start) {
            size_t b = yaml_break(f->src + at, f->close_start - at);
            if (b) {
                at += b;
                break;
            }
            at++;
        }
    }
    ls[k] = f->close_start;
    f->line_start = ls;
    f->nlines = k;
    return NOTES_OK;
}

/* Byte offset in src of a libyaml mark (line, column in code points). */
static size_t mark_off(const struct fm *f, yaml_mark_t m)
{
    if (m.line >= f->nlines)
        return f->close_start;
    size_t at = f->line_start[m.line], end = f->line_start[m.line + 1];
    for (size_t c = 0; c < m.column && at < end; c++) {
        size_t l;
        notes_fmt__utf8_get(f->src + at, end - at, &l);
        at += l;
    }
    return at;
}

/* The last line an event ending at m occupies (given it starts on `from`). */
static size_t last_line(yaml_mark_t m, size_t from)
{
    size_t l = m.line;
    if (m.column == 0 && l > from)
        l--;
    return l;
}

/* ---- parsing ---- */

struct pstate {
    yaml_parser_t p;
    yaml_event_t ev;
    int have_ev;
    struct fm *f;
    notes_fmt_diag *diag;
};

static int next_event(struct pstate *s)
{
    if (s->have_ev)
        yaml_event_delete(&s->ev);
    s->have_ev = 0;
    if (!yaml_parser_parse(&s->p, &s->ev)) {
        size_t line = s->p.problem_mark.line, col = s->p.problem_mark.column;
        if (s->p.error == YAML_MEMORY_ERROR)
            return NOTES_ENOMEM;
        if (s->p.error == YAML_READER_ERROR) {
            size_t off = s->f->open_len + s->p.problem_offset;
            line = 0;
            while (line + 1 < s->f->nlines && s->f->line_start[line + 1] <= off)
                line++;
            col = 0;
        }
        notes_fmt__diag(s->diag, line + 2, col + 1, "front matter: %s%s%s",
                        s->p.problem ? s->p.problem : "invalid YAML",
                        s->p.context ? " " : "",
                        s->p.context ? s->p.context : "");
        return NOTES_ECORRUPT;
    }
    s->have_ev = 1;
    return NOTES_OK;
}

static int fail_at(struct pstate *s, yaml_mark_t m, const char *msg,
                   const char *key)
{
    notes_fmt__diag(s->diag, m.line + 2, m.column + 1, "front matter: %s%s%s%s",
                    msg, key ? " '" : "", key ? key : "", key ? "'" : "");
    return NOTES_ECORRUPT;
}

static int scalar_style(yaml_scalar_style_t st)
{
    switch (st) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        return ST_SINGLE;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        return ST_DOUBLE;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        return ST_BLOCK;
    default:
        return ST_PLAIN;
    }
}

/* A decoded string libnotes can store: UTF-8, no NUL, size limit. */
static int check_string(struct pstate *s, const yaml_event_t *ev, size_t max,
                        const char *what)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *bad = memchr(v, 0, n) ? "contains a NUL character"
                      : notes_fmt__utf8_check(v, n) != n ? "is not valid UTF-8"
                      : n > max                          ? "is too long"
                                                         : NULL;
    if (!bad)
        return NOTES_OK;
    notes_fmt__diag(s->diag, ev->start_mark.line + 2, ev->start_mark.column + 1,
                    "front matter: %s %s (at most %zu bytes of UTF-8)", what,
                    bad, max);
    return NOTES_ECORRUPT;
}

/* Skip a nested collection whose start event is current; *end_line gets the
 * last line holding its content. */
static int skip_nested(struct pstate *s, size_t from, size_t *end_line)
{
    unsigned char flow[64];
    size_t depth = 0;
    int rc;
    for (;;) {
        yaml_event_type_t t = s->ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (depth == sizeof(flow))
                return fail_at(s, s->ev.start_mark, "nested too deeply", NULL);
            flow[depth++] =
                t == YAML_SEQUENCE_START_EVENT
                    ? s->ev.data.sequence_start.style ==
                          YAML_FLOW_SEQUENCE_STYLE
                    : s->ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
        } else if (t == YAML_SEQUENCE_END_EVENT ||
                   t == YAML_MAPPING_END_EVENT) {
            if (depth == 0) /* libyaml balances them; be sure */
                return fail_at(s, s->ev.start_mark, "unbalanced", NULL);
            if (flow[--depth]) {
                size_t l = last_line(s->ev.end_mark, from);
                if (l > *end_line)
                    *end_line = l;
            }
            if (depth == 0)
                return NOTES_OK;
        } else if (t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            size_t l = last_line(s->ev.end_mark, from);
            if (l > *end_line)
                *end_line = l;
        } else {
            return fail_at(s, s->ev.start_mark, "unexpected YAML structure",
                           NULL);
        }
        if ((rc = next_event(s)))
            return rc;
    }
}

static int parse_sequence(struct pstate *s, struct fm_entry *e)
{
    struct fm *f = s->f;
    int rc, opaque = s->ev.data.sequence_start.anchor ||
                     s->ev.data.sequence_start.tag;
    size_t key_line = e->first;
    yaml_mark_t start = s->ev.start_mark;
    e->kind = FM_LIST;
    e->style = s->ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                   ? ST_FLOW
                   : ST_BLOCK;
    e->regular = e->style == ST_BLOCK;
    e->last = key_line;
    size_t cap = 0;
    for (;;) {
        if ((rc = next_event(s)))
            return rc;
        if (s->ev.type == YAML_SEQUENCE_END_EVENT) {
            if (e->style == ST_FLOW) {
                e->last = last_line(s->ev.end_mark, key_line);
                if (start.line == key_line && s->ev.end_mark.line == key_line) {
                    e->oneline = 1;
                    e->vstart = mark_off(f, start);
                    e->vend = mark_off(f, s->ev.end_mark);
                }
            }
            break;
        }
        if (s->ev.type != YAML_SCALAR_EVENT) {
            opaque = 1;
            if (s->ev.type != YAML_ALIAS_EVENT &&
                (rc = skip_nested(s, key_line, &e->last)))
                return rc;
            if (s->ev.type == YAML_ALIAS_EVENT) {
                size_t l = last_line(s->ev.end_mark, key_line);
                if (l > e->last)
                    e->last = l;
            }
            continue;
        }
        if ((rc = check_string(s, &s->ev, 65536, "list item")))
            return rc;
        if (s->ev.data.scalar.anchor || s->ev.data.scalar.tag)
            opaque = 1;
        if ((rc = notes__grow(&e->items, &cap, e->nitems + 1,
                              sizeof(*e->items), 8)))
            return rc;
        struct fm_item *it = &e->items[e->nitems];
        memset(it, 0, sizeof(*it));
        it->value = notes__strndup((const char *)s->ev.data.scalar.value,
                                       s->ev.data.scalar.length);
        if (!it->value)
            return NOTES_ENOMEM;
        e->nitems++;
        it->style = scalar_style(s->ev.data.scalar.style);
        it->first = s->ev.start_mark.line;
        it->last = last_line(s->ev.end_mark, it->first);
        if (it->first >= f->nlines || it->last >= f->nlines) {
            /* an empty item at the very end: no lines of its own */
            it->first = it->last = f->nlines ? f->nlines - 1 : 0;
            e->regular = 0;
        }
        if (s->ev.data.scalar.length == 0 && it->style == ST_PLAIN)
            e->regular = 0;
        if (it->last > e->last)
            e->last = it->last;
        if (e->regular) {
            /* "<indent>-<space>scalar" with the item alone on its lines */
            size_t ls = f->line_start[it->first];
            size_t so = mark_off(f, s->ev.start_mark);
            size_t i = ls;
            while (i < so && (f->src[i] == ' ' || f->src[i] == '\t'))
                i++;
            size_t ind = i - ls;
            int ok =
                it->first > key_line && i < so && f->src[i] == '-' &&
                it->style != ST_BLOCK &&
                (e->nitems == 1 || it->first > e->items[e->nitems - 2].last);
            for (i++; ok && i < so; i++)
                ok = f->src[i] == ' ' || f->src[i] == '\t';
            if (ok && e->nitems == 1) {
                e->indent = ind;
                e->vstart = ls; /* item prefix: [vstart, vend) */
                e->vend = so;
            }
            if (!ok || ind != e->indent)
                e->regular = 0;
        }
    }
    if (opaque)
        e->kind = FM_OPAQUE;
    return NOTES_OK;
}

static int parse_value(struct pstate *s, struct fm_entry *e)
{
    struct fm *f = s->f;
    int rc;
    size_t key_line = e->first;
    switch (s->ev.type) {
    case YAML_SCALAR_EVENT:
        if ((rc = check_string(s, &s->ev, 65535, "value")))
            return rc;
        e->value = notes__strndup((const char *)s->ev.data.scalar.value,
                                      s->ev.data.scalar.length);
        if (!e->value)
            return NOTES_ENOMEM;
        e->style = scalar_style(s->ev.data.scalar.style);
        e->kind = notes_fmt__is_list_key(e->key) ? FM_COMMA : FM_SCALAR;
        if (s->ev.data.scalar.anchor || s->ev.data.scalar.tag)
            e->kind = FM_OPAQUE;
        e->last = last_line(s->ev.end_mark, key_line);
        if (e->last < key_line)
            e->last = key_line;
        /* an empty plain scalar has no place of its own on the line */
        if (e->style != ST_BLOCK && s->ev.start_mark.line == key_line &&
            s->ev.end_mark.line == key_line &&
            (s->ev.data.scalar.length > 0 || e->style != ST_PLAIN)) {
            e->oneline = 1;
            e->vstart = mark_off(f, s->ev.start_mark);
            e->vend = mark_off(f, s->ev.end_mark);
        }
        return NOTES_OK;
    case YAML_SEQUENCE_START_EVENT:
        return parse_sequence(s, e);
    case YAML_MAPPING_START_EVENT:
        e->kind = FM_OPAQUE;
        e->last = key_line;
        return skip_nested(s, key_line, &e->last);
    case YAML_ALIAS_EVENT:
        e->kind = FM_OPAQUE;
        e->last = last_line(s->ev.end_mark, key_line);
        return NOTES_OK;
    default:
        return fail_at(s, s->ev.start_mark, "unexpected YAML structure", NULL);
    }
}

/* OPAQUE entries keep their YAML source: after the ':' to the entry's end. */
static int opaque_source(struct pstate *s, struct fm_entry *e)
{
    struct fm *f = s->f;
    size_t at = e->key_end, end = f->line_start[e->last + 1];
    while (at < end && (f->src[at] == ' ' || f->src[at] == '\t'))
        at++;
    if (at >= end || f->src[at] != ':')
        return NOTES_ECORRUPT;
    at++;
    /* drop the final line break */
    size_t z = end;
    while (z > at && (f->src[z - 1] == '\n' || f->src[z - 1] == '\r'))
        z--;
    free(e->value);
    e->value = notes__strndup(f->src + at, z - at);
    return e->value ? NOTES_OK : NOTES_ENOMEM;
}

static int parse_mapping(struct pstate *s)
{
    struct fm *f = s->f;
    size_t cap = 0;
    int rc;
    if (s->ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE)
        return fail_at(s, s->ev.start_mark,
                       "write one 'key: value' per line, not a {...} mapping",
                       NULL);
    for (;;) {
        if ((rc = next_event(s)))
            return rc;
        if (s->ev.type == YAML_MAPPING_END_EVENT)
            return NOTES_OK;
        if (s->ev.type != YAML_SCALAR_EVENT)
            return fail_at(s, s->ev.start_mark, "keys must be plain strings",
                           NULL);
        if ((rc = check_string(s, &s->ev, 128, "key")))
            return rc;
        const char *k = (const char *)s->ev.data.scalar.value;
        if (!*k)
            return fail_at(s, s->ev.start_mark, "empty key", NULL);
        if (k[0] == '@')
            return fail_at(s, s->ev.start_mark,
                           "keys starting with '@' are reserved:", k);
        for (size_t i = 0; i < f->ne; i++)
            if (strcmp(f->e[i].key, k) == 0)
                return fail_at(s, s->ev.start_mark, "duplicate key", k);
        if ((rc = notes__grow(&f->e, &cap, f->ne + 1, sizeof(*f->e), 16)))
            return rc;
        struct fm_entry *e = &f->e[f->ne];
        memset(e, 0, sizeof(*e));
        e->key = notes__strndup(k, s->ev.data.scalar.length);
        if (!e->key)
            return NOTES_ENOMEM;
        f->ne++;
        e->first = s->ev.start_mark.line;
        if (s->ev.end_mark.line != e->first || e->first >= f->nlines)
            return fail_at(s, s->ev.start_mark,
                           "a key must fit on one line:", e->key);
        if (f->ne > 1 && e->first <= f->e[f->ne - 2].last)
            return fail_at(s, s->ev.start_mark, "one key per line:", e->key);
        e->key_end = mark_off(f, s->ev.end_mark);
        {
            /* "key:" on one line; no "? key" explicit keys */
            size_t at = e->key_end, end = f->line_start[e->first + 1];
            while (at < end && (f->src[at] == ' ' || f->src[at] == '\t'))
                at++;
            if (at >= end || f->src[at] != ':')
                return fail_at(s, s->ev.start_mark,
                               "write 'key: value' (the ':' on the key's "
                               "line) for",
                               e->key);
        }
        yaml_mark_t km = s->ev.start_mark;
        if ((rc = next_event(s)) || (rc = parse_value(s, e)))
            return rc;
        if (e->last >= f->nlines)
            e->last = f->nlines - 1;
        if (e->kind == FM_OPAQUE && (rc = opaque_source(s, e)))
            return rc == NOTES_ECORRUPT
                       ? fail_at(s, km, "unsupported key syntax for", e->key)
                       : rc;
    }
}

int notes_fmt__fm_parse(const char *src, size_t n, struct fm *f,
                        notes_fmt_diag *diag)
{
    int rc;
    size_t eol, k;
    memset(f, 0, sizeof(*f));
    f->src = src;
    f->n = n;
    k = line_len(src, n, &eol);
    if (!is_fence(src, k) || eol == 0)
        return NOTES_ECORRUPT;
    f->open_len = k + eol;
    f->eol = eol == 2 ? "\r\n" : "\n";
    size_t at = f->open_len;
    for (;;) {
        if (at >= n)
            return NOTES_ECORRUPT;
        k = line_len(src + at, n - at, &eol);
        if (is_fence(src + at, k))
            break;
        at += k + eol;
    }
    if (at + k + eol != n)
        return NOTES_ECORRUPT;
    f->close_start = at;
    if ((rc = build_lines(f)))
        return rc;

    struct pstate s;
    memset(&s, 0, sizeof(s));
    s.f = f;
    s.diag = diag;
    if (!yaml_parser_initialize(&s.p)) {
        notes_fmt__fm_free(f);
        return NOTES_ENOMEM;
    }
    yaml_parser_set_encoding(&s.p, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&s.p, (const unsigned char *)src + f->open_len,
                                 f->close_start - f->open_len);
    if ((rc = next_event(&s))) /* STREAM-START */
        goto out;
    if ((rc = next_event(&s)))
        goto out;
    if (s.ev.type == YAML_STREAM_END_EVENT)
        goto out; /* nothing but comments */
    if (s.ev.type != YAML_DOCUMENT_START_EVENT) {
        rc = fail_at(&s, s.ev.start_mark, "unexpected YAML structure", NULL);
        goto out;
    }
    if ((rc = next_event(&s)))
        goto out;
    if (s.ev.type == YAML_MAPPING_START_EVENT) {
        if ((rc = parse_mapping(&s)))
            goto out;
    } else if (!(s.ev.type == YAML_SCALAR_EVENT &&
                 s.ev.data.scalar.length == 0 &&
                 s.ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                 !s.ev.data.scalar.tag && !s.ev.data.scalar.anchor)) {
        rc = fail_at(&s, s.ev.start_mark,
                     "front matter must be 'key: value' lines", NULL);
        goto out;
    }
    if ((rc = next_event(&s))) /* DOCUMENT-END */
        goto out;
    if ((rc = next_event(&s)))
        goto out;
    if (s.ev.type != YAML_STREAM_END_EVENT) {
        rc = fail_at(&s, s.ev.start_mark, "only one YAML document is allowed",
                     NULL);
        goto out;
    }
out:
    if (s.have_ev)
        yaml_event_delete(&s.ev);
    yaml_parser_delete(&s.p);
    if (rc)
        notes_fmt__fm_free(f);
    return rc;
}

void notes_fmt__fm_free(struct fm *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ne; i++) {
        free(f->e[i].key);
        free(f->e[i].value);
        for (size_t j = 0; j < f->e[i].nitems; j++)
            free(f->e[i].items[j].value);
        free(f->e[i].items);
    }
    free(f->e);
    free(f->line_start);
    memset(f, 0, sizeof(*f));
}
