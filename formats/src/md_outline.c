/*
 * md_outline.c: the outline of a note's text: its sections (ATX headings)
 * and its decisions and action items, with owners resolved against the
 * participants and authors taken from the doc's authorship. A line-based
 * scanner that knows fenced code, headings, list items and paragraphs;
 * the rules are in docs/formats.md ("Decisions and action items").
 */
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

#define NONE ((size_t)-1)

struct ob {
    notes_fmt_outline *o;
    size_t capsec, capitem;
    const char *const *participants;
    /* the block being read */
    int open; /* a paragraph or list item is open */
    int emit; /* 0: not an item (just absorbs its lines) */
    /* the item it makes: kind, done, listed, cp_box, line and cp_start are
     * set when it opens, the rest when it closes */
    notes_fmt_item cur;
    size_t cp_end;
    struct notes_fmt__buf text;
    size_t stack[7]; /* open sections by level */
};

/* ---- small text helpers ---- */

/* Compare two strings ignoring case and Latin diacritics. */
static int fold_eq(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0, la, lb;
    while (i < an && j < bn) {
        uint32_t x = notes_fmt__fold(notes_fmt__utf8_get(a + i, an - i, &la));
        uint32_t y = notes_fmt__fold(notes_fmt__utf8_get(b + j, bn - j, &lb));
        if (x != y)
            return 0;
        i += la;
        j += lb;
    }
    return i == an && j == bn;
}

static int is_letter(uint32_t cp)
{
    return notes_fmt__is_upper(cp) || notes_fmt__is_lower(cp) || cp > 0x24f;
}

/* Initials of a name, folded: the first letter, every capital after a
 * small letter, every letter after a separator ("RăzvanD" -> "rd"). */
static size_t initials(const char *s, char *out, size_t max)
{
    size_t n = strlen(s), i = 0, k = 0, l;
    uint32_t prev = ' ';
    while (i < n && k + 1 < max) {
        uint32_t cp = notes_fmt__utf8_get(s + i, n - i, &l);
        int take =
            is_letter(cp) &&
            ((prev == ' ' || prev == '-' || prev == '.' || prev == '_') ||
             (notes_fmt__is_upper(cp) && notes_fmt__is_lower(prev)));
        if (take) {
            uint32_t f = notes_fmt__fold(cp);
            if (f >= 0x80)
                return 0; /* only Latin names get initials */
            out[k++] = (char)f;
        }
        prev = cp;
        i += l;
    }
    out[k] = 0;
    return k;
}

/* Written initials: 2 or 3 capital letters, not a common abbreviation. */
static int written_initials(const char *s, size_t n, char *out)
{
    static const char *const stop[] = {"TBD", "FYI", "WIP", "NB",  "PS",  "OK",
                                       "TL",  "DR",  "ETA", "FAQ", "AOB", NULL};
    size_t i = 0, k = 0, l;
    while (i < n) {
        uint32_t cp = notes_fmt__utf8_get(s + i, n - i, &l);
        if (!notes_fmt__is_upper(cp) || k == 3)
            return 0;
        uint32_t f = notes_fmt__fold(cp);
        if (f >= 0x80)
            return 0;
        out[k++] = (char)f;
        i += l;
    }
    out[k] = 0;
    if (k < 2)
        return 0;
    for (size_t j = 0; stop[j]; j++)
        if (strlen(stop[j]) == n && memcmp(stop[j], s, n) == 0)
            return 0;
    return 1;
}

/* One owner token: the name it resolves to (*res, *rn) or 0 if none. */
static int owner_token(struct ob *b, const char *s, size_t n, const char **res,
                       size_t *rn)
{
    static const char *const all[] = {"everyone", "everybody", "all", NULL};
    char ini[8], pini[8];
    for (size_t i = 0; all[i]; i++)
        if (fold_eq(s, n, all[i], strlen(all[i]))) {
            *res = s;
            *rn = n;
            return 1;
        }
    const char *const *p = b->participants;
    for (size_t i = 0; p && p[i]; i++)
        if (fold_eq(s, n, p[i], strlen(p[i]))) {
            *res = p[i];
            *rn = strlen(p[i]);
            return 1;
        }
    if (!written_initials(s, n, ini))
        return 0;
    const char *match = NULL;
    int count = 0;
    for (size_t i = 0; p && p[i]; i++)
        if (initials(p[i], pini, sizeof(pini)) && strcmp(pini, ini) == 0) {
            match = p[i];
            count++;
        }
    if (count == 1) {
        *res = match;
        *rn = strlen(match);
    } else {
        *res = s;
        *rn = n;
    }
    return 1;
}

static size_t trim_left(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/*
 * Whether the first line of t (n bytes) starts with an owner prefix
 * ("RD / AJ: text"). OUT (may be NULL) *own: the resolved owners joined by
 * ", " (malloc'd); *colon: the prefix length. NOTES_ENOMEM or 0/1.
 */
static int parse_owner(struct ob *b, const char *t, size_t n, char **own_out,
                       size_t *colon)
{
    const char *p = memchr(t, ':', n);
    size_t c;
    if (!p)
        return 0;
    c = (size_t)(p - t);
    if (c == 0 || c > 40 || (c + 1 < n && t[c + 1] != ' ' && t[c + 1] != '\t'))
        return 0;
    struct notes_fmt__buf own = NOTES_FMT__BUF_INIT;
    size_t i = 0;
    while (i < c) {
        size_t j = i;
        /* tokens separated by / , & + or " and " */
        while (j < c && !strchr("/,&+", t[j]) &&
               !(j + 5 <= c && memcmp(t + j, " and ", 5) == 0))
            j++;
        size_t a = trim_left(t, j, i), z = j;
        while (z > a && (t[z - 1] == ' ' || t[z - 1] == '\t'))
            z--;
        const char *res;
        size_t rn;
        if (z == a || !owner_token(b, t + a, z - a, &res, &rn)) {
            notes_fmt__release(&own);
            return 0;
        }
        if (own.b.len)
            notes_fmt__puts(&own, ", ");
        notes_fmt__put(&own, res, rn);
        i = j < c ? j + (t[j] == ' ' ? 5 : 1) : c;
    }
    if (own.failed) {
        notes_fmt__release(&own);
        return NOTES_ENOMEM;
    }
    if (own_out)
        *own_out = (char *)own.b.data;
    else
        notes_fmt__release(&own);
    if (colon)
        *colon = c;
    return 1;
}

int notes_fmt_item_owned_by(const notes_fmt_item *it, const char *who,
                            const char *const *participants)
{
    struct ob b;
    const char *res;
    size_t rn, wn = who ? strlen(who) : 0;
    if (!it || !it->owner || wn == 0)
        return 0;
    memset(&b, 0, sizeof(b));
    b.participants = participants;
    /* WHO resolved as an owner prefix would be ("RD" -> "RăzvanD"), also
     * when typed in small letters ("rd") */
    char up[4];
    if (!owner_token(&b, who, wn, &res, &rn)) {
        res = who;
        rn = wn;
    }
    if (res == who && wn < sizeof(up)) {
        const char *r2;
        size_t n2;
        for (size_t i = 0; i <= wn; i++)
            up[i] = who[i] >= 'a' && who[i] <= 'z' ? (char)(who[i] - 32) : who[i];
        if (owner_token(&b, up, wn, &r2, &n2) && r2 != up) {
            res = r2;
            rn = n2;
        }
    }
    /* "Everyone" includes WHO when WHO is one of the note's participants */
    int participant = 0;
    for (size_t i = 0; participants && participants[i]; i++)
        participant |= fold_eq(participants[i], strlen(participants[i]), res, rn);
    const char *o = it->owner;
    while (*o) {
        size_t n = strcspn(o, ",");
        if (fold_eq(o, n, res, rn) || fold_eq(o, n, who, wn) ||
            (participant &&
             (fold_eq(o, n, "everyone", 8) || fold_eq(o, n, "everybody", 9) ||
              fold_eq(o, n, "all", 3))))
            return 1;
        o += n;
        while (*o == ',' || *o == ' ')
            o++;
    }
    return 0;
}

/* Split the owner prefix off an item's text. */
static int find_owner(struct ob *b, notes_fmt_item *it)
{
    const char *t = it->text;
    char *own = NULL;
    size_t c;
    int rc = parse_owner(b, t, strcspn(t, "\n"), &own, &c);
    if (rc <= 0)
        return rc;
    char *written = notes__strndup(t, c);
    size_t rest = trim_left(t, strlen(t), c + 1);
    char *text = notes__strndup(t + rest, strlen(t) - rest);
    if (!written || !text) {
        free(written);
        free(text);
        free(own);
        return NOTES_ENOMEM;
    }
    it->owner = own;
    it->owner_written = written;
    free(it->text);
    it->text = text;
    return NOTES_OK;
}

/* Heading title without emoji shortcodes (":dart:") and extra spaces. */
static char *strip_shortcodes(const char *s, size_t n)
{
    struct notes_fmt__buf b = NOTES_FMT__BUF_INIT;
    size_t i = 0;
    while (i < n) {
        if (s[i] == ':') {
            size_t j = i + 1;
            while (j < n &&
                   (strchr("abcdefghijklmnopqrstuvwxyz0123456789_+-", s[j])))
                j++;
            if (j < n && s[j] == ':' && j > i + 1) {
                i = j + 1;
                continue;
            }
        }
        notes_fmt__putc(&b, s[i++]);
    }
    char *out;
    size_t len;
    if (notes_fmt__detach(&b, &out, &len))
        return NULL;
    size_t a = trim_left(out, len, 0), z = len;
    while (z > a && (out[z - 1] == ' ' || out[z - 1] == '\t'))
        z--;
    memmove(out, out + a, z - a);
    out[z - a] = 0;
    return out;
}

/* What a heading title names, as flags: NAMES_DECISIONS (the word
 * decision(s)) and NAMES_TODOS (todo(s), to do(s), task(s), action
 * item(s) / point(s)); whole words, case ignored. */
#define NAMES_DECISIONS 1
#define NAMES_TODOS 2
static int heading_names(const char *title)
{
    static const char *const todo[] = {"todo", "todos", "task", "tasks", NULL};
    char w[2][24];
    int have = 0, names = 0;
    size_t n = strlen(title), i = 0;
    while (i < n) {
        while (i < n && !((title[i] | 32) >= 'a' && (title[i] | 32) <= 'z'))
            i++;
        size_t k = 0;
        while (i < n && (((title[i] | 32) >= 'a' && (title[i] | 32) <= 'z') ||
                         title[i] == '-')) {
            if (k + 1 < sizeof(w[0]) && title[i] != '-')
                w[1][k++] = (char)(title[i] | 32);
            i++;
        }
        if (!k)
            continue;
        w[1][k] = 0;
        if (strcmp(w[1], "decision") == 0 || strcmp(w[1], "decisions") == 0)
            names |= NAMES_DECISIONS;
        for (size_t j = 0; todo[j]; j++)
            if (strcmp(w[1], todo[j]) == 0)
                names |= NAMES_TODOS;
        if (have && strcmp(w[0], "action") == 0 &&
            (strcmp(w[1], "item") == 0 || strcmp(w[1], "items") == 0 ||
             strcmp(w[1], "point") == 0 || strcmp(w[1], "points") == 0))
            names |= NAMES_TODOS;
        if (have && strcmp(w[0], "to") == 0 &&
            (strcmp(w[1], "do") == 0 || strcmp(w[1], "dos") == 0))
            names |= NAMES_TODOS;
        memcpy(w[0], w[1], sizeof(w[0]));
        have = 1;
    }
    return names;
}

/*
 * Whether an owned item's text (after the owner prefix) reads as a
 * decision rather than a task: it starts with a label "Decision:",
 * "Decided:" or "Agreed:" (*label: its length with the spaces after it,
 * removed from the text), or with a word saying so ("decided", "agreed",
 * "approved", "resolved", "accepted", "rejected"), or with "we" followed
 * by "decided", "agreed", "will", "won't" ("We'll keep the freeze").
 */
static int reads_as_decision(const char *t, size_t *label)
{
    static const char *const labels[] = {"decision", "decided", "agreed", NULL};
    static const char *const verbs[] = {"decided",  "agreed",   "approved",
                                        "resolved", "accepted", "rejected",
                                        NULL};
    static const char *const we[] = {"decided", "agreed", "will", "won't",
                                     "wont",    "shall",  NULL};
    char w[2][16];
    size_t i = 0, n = strlen(t);
    *label = 0;
    for (int k = 0; k < 2; k++) {
        size_t j = 0;
        while (i < n && j + 1 < sizeof(w[k]) &&
               (((t[i] | 32) >= 'a' && (t[i] | 32) <= 'z') || t[i] == '\'')) {
            w[k][j++] = (char)(t[i] == '\'' ? t[i] : (t[i] | 32));
            i++;
        }
        w[k][j] = 0;
        if (k == 0) {
            for (size_t l = 0; labels[l]; l++)
                if (strcmp(w[0], labels[l]) == 0 && i < n && t[i] == ':') {
                    *label = trim_left(t, n, i + 1);
                    return 1;
                }
            for (size_t l = 0; verbs[l]; l++)
                if (strcmp(w[0], verbs[l]) == 0)
                    return 1;
            if (strcmp(w[0], "we'll") == 0)
                return 1;
            if (strcmp(w[0], "we") != 0 || i >= n || t[i] != ' ')
                return 0;
            i = trim_left(t, n, i);
        }
    }
    for (size_t l = 0; we[l]; l++)
        if (strcmp(w[1], we[l]) == 0)
            return 1;
    return 0;
}

/* ---- building ---- */

/* The innermost open section, NONE outside any. */
static size_t current_section(const struct ob *b)
{
    for (int l = 6; l >= 1; l--)
        if (b->stack[l] != NONE)
            return b->stack[l];
    return NONE;
}

/* An owned line (not a "- [ ]" item): in a TODOs section an action item
 * unless it reads as a decision; a "Decision:" label after the owner is
 * dropped from the text, as the owner prefix is. */
static int classify(struct ob *b, notes_fmt_item *it)
{
    size_t sec = current_section(b), label;
    int decision = reads_as_decision(it->text, &label);
    if (sec != NONE && b->o->sections[sec].todos && !decision)
        it->kind = NOTES_FMT_ITEM_TASK;
    if (label && it->text[label]) {
        memmove(it->text, it->text + label, strlen(it->text + label) + 1);
    }
    return NOTES_OK;
}

static int close_block(struct ob *b)
{
    int rc = NOTES_OK;
    if (b->open && b->emit) {
        notes_fmt_outline *o = b->o;
        if (o->nitems == b->capitem) {
            size_t cap = b->capitem ? b->capitem * 2 : 16;
            notes_fmt_item *ni = realloc(o->items, cap * sizeof(*ni));
            if (!ni) {
                notes_fmt__release(&b->text);
                b->open = 0;
                return NOTES_ENOMEM;
            }
            o->items = ni;
            b->capitem = cap;
        }
        notes_fmt_item *it = &o->items[o->nitems];
        *it = b->cur;
        if (notes_fmt__detach(&b->text, &it->text, NULL)) {
            b->open = 0;
            return NOTES_ENOMEM;
        }
        o->nitems++;
        it->cp_len = b->cp_end - it->cp_start;
        it->section = current_section(b);
        rc = find_owner(b, it);
        if (!rc && it->kind == NOTES_FMT_ITEM_DECISION && it->owner)
            rc = classify(b, it);
    }
    notes_fmt__release(&b->text);
    b->open = 0;
    return rc;
}

static int in_scope(const struct ob *b)
{
    for (int l = 1; l <= 6; l++)
        if (b->stack[l] != NONE && b->o->sections[b->stack[l]].decisions)
            return 1;
    return 0;
}

static int add_section(struct ob *b, unsigned level, const char *h, size_t hn,
                       size_t line)
{
    notes_fmt_outline *o = b->o;
    if (o->nsections == b->capsec) {
        size_t cap = b->capsec ? b->capsec * 2 : 16;
        notes_fmt_section *ns = realloc(o->sections, cap * sizeof(*ns));
        if (!ns)
            return NOTES_ENOMEM;
        o->sections = ns;
        b->capsec = cap;
    }
    notes_fmt_section *s = &o->sections[o->nsections];
    memset(s, 0, sizeof(*s));
    s->heading = notes__strndup(h, hn);
    s->title = strip_shortcodes(h, hn);
    if (!s->heading || !s->title) {
        free(s->heading);
        free(s->title);
        return NOTES_ENOMEM;
    }
    s->level = level;
    s->line = line;
    for (unsigned l = level; l <= 6; l++)
        b->stack[l] = NONE;
    s->parent = NONE;
    for (unsigned l = level - 1; l >= 1; l--)
        if (b->stack[l] != NONE) {
            s->parent = b->stack[l];
            break;
        }
    int names = heading_names(s->title);
    int up = s->parent != NONE && o->sections[s->parent].decisions;
    s->decisions = names || up;
    /* the nearest heading that names items says what owned lines are */
    s->todos = names ? (names & NAMES_TODOS) != 0
                     : up && o->sections[s->parent].todos;
    b->stack[level] = o->nsections++;
    return NOTES_OK;
}

/* ATX heading: up to 3 spaces, 1-6 '#', then a space or the end. */
static unsigned atx(const char *s, size_t n, size_t *hs, size_t *he)
{
    size_t i = 0;
    unsigned level = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    while (i < n && s[i] == '#' && level < 7)
        i++, level++;
    if (level == 0 || level > 6 || (i < n && s[i] != ' ' && s[i] != '\t'))
        return 0;
    i = trim_left(s, n, i);
    size_t z = n;
    while (z > i && (s[z - 1] == ' ' || s[z - 1] == '\t'))
        z--;
    size_t c = z; /* optional closing #s, preceded by a space */
    while (c > i && s[c - 1] == '#')
        c--;
    if (c < z && (c == i || s[c - 1] == ' ' || s[c - 1] == '\t')) {
        z = c;
        while (z > i && (s[z - 1] == ' ' || s[z - 1] == '\t'))
            z--;
    }
    *hs = i;
    *he = z;
    return level;
}

static int thematic_break(const char *s, size_t n)
{
    char c = 0;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' || s[i] == '\t')
            continue;
        if (!c && (s[i] == '-' || s[i] == '*' || s[i] == '_'))
            c = s[i];
        if (s[i] != c)
            return 0;
        count++;
    }
    return count >= 3;
}

/* List marker: returns the offset of the content after it, 0 if none. */
static size_t list_marker(const char *s, size_t n, size_t i)
{
    if (i < n && (s[i] == '-' || s[i] == '*' || s[i] == '+')) {
        if (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == '\t')
            return trim_left(s, n, i + 1);
        return 0;
    }
    size_t j = i;
    while (j < n && j - i < 9 && s[j] >= '0' && s[j] <= '9')
        j++;
    if (j > i && j < n && (s[j] == '.' || s[j] == ')') &&
        (j + 1 == n || s[j + 1] == ' ' || s[j + 1] == '\t'))
        return trim_left(s, n, j + 1);
    return 0;
}

int notes_fmt_outline_text(const char *text, size_t n,
                           const char *const *participants,
                           notes_fmt_outline *out)
{
    struct ob b;
    int rc = NOTES_OK;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!out || (!text && n))
        return notes_fmt__fail(NOTES_EINVAL, "outline: no text or no output");
    memset(&b, 0, sizeof(b));
    notes_fmt__buf_init(&b.text);
    b.o = out;
    b.participants = participants;
    for (int l = 0; l < 7; l++)
        b.stack[l] = NONE;
    size_t at = 0, lineno = 0, cp = 0;
    char fence = 0;
    size_t fence_len = 0;
    while (at < n && !rc) {
        const char *nl = memchr(text + at, '\n', n - at);
        size_t full = nl ? (size_t)(nl - (text + at)) + 1 : n - at;
        size_t len = nl ? full - 1 : full;
        const char *s = text + at;
        if (len && s[len - 1] == '\r')
            len--;
        size_t cp_line = cp;
        lineno++;
        cp += notes_fmt__cp_count(s, full);
        at += full;

        size_t ind = trim_left(s, len, 0);
        if (fence) {
            size_t k = ind;
            while (k < len && s[k] == fence)
                k++;
            if (k - ind >= fence_len && trim_left(s, len, k) == len)
                fence = 0;
            continue;
        }
        if (ind == len) {
            rc = close_block(&b);
            continue;
        }
        if (ind < 4 && len - ind >= 3 &&
            (memcmp(s + ind, "```", 3) == 0 ||
             memcmp(s + ind, "~~~", 3) == 0)) {
            rc = close_block(&b);
            fence = s[ind];
            fence_len = 0;
            while (ind + fence_len < len && s[ind + fence_len] == fence)
                fence_len++;
            continue;
        }
        size_t hs, he;
        unsigned level = atx(s, len, &hs, &he);
        if (level) {
            if (!(rc = close_block(&b)))
                rc = add_section(&b, level, s + hs, he - hs, lineno);
            continue;
        }
        if (thematic_break(s, len)) {
            rc = close_block(&b);
            continue;
        }
        size_t c = list_marker(s, len, ind);
        /* in a decisions section a line naming an owner starts an item
         * even without a blank line before it */
        int owned = !c && b.open && in_scope(&b) &&
                    parse_owner(&b, s + ind, len - ind, NULL, NULL) == 1;
        if (c || !b.open || owned) {
            if ((rc = close_block(&b)))
                break;
            size_t start = c ? c : ind;
            int task = 0, done = 0;
            size_t box = NONE;
            if (c && len - c >= 3 && s[c] == '[' && s[c + 2] == ']' &&
                (s[c + 1] == ' ' || s[c + 1] == 'x' || s[c + 1] == 'X') &&
                (len - c == 3 || s[c + 3] == ' ' || s[c + 3] == '\t')) {
                task = 1;
                done = s[c + 1] != ' ';
                box = cp_line + notes_fmt__cp_count(s, c);
                start = trim_left(s, len, c + 3);
            }
            b.open = 1;
            b.emit = task || in_scope(&b);
            b.cur = (notes_fmt_item){
                .kind = task ? NOTES_FMT_ITEM_TASK : NOTES_FMT_ITEM_DECISION,
                .done = done,
                .listed = c != 0,
                .cp_box = box,
                .line = lineno,
                .cp_start = cp_line + notes_fmt__cp_count(s, start),
            };
            b.cp_end = cp_line + notes_fmt__cp_count(s, len);
            notes_fmt__put(&b.text, s + start, len - start);
        } else {
            notes_fmt__putc(&b.text, '\n');
            notes_fmt__put(&b.text, s + ind, len - ind);
            b.cp_end = cp_line + notes_fmt__cp_count(s, len);
        }
        if (b.text.failed)
            rc = NOTES_ENOMEM;
    }
    if (!rc)
        rc = close_block(&b);
    notes_fmt__release(&b.text);
    return rc;
}

/* Authors of each item from the doc's authorship, in order of appearance. */
static int add_authors(notes_doc *d, notes_fmt_outline *o)
{
    uint32_t *ch;
    size_t ncp, nchanges;
    int rc = notes_fmt__authorship(d, &ch, &ncp, &nchanges);
    if (rc)
        return rc > 0 ? NOTES_OK : rc;
    for (size_t i = 0; i < o->nitems && !rc; i++) {
        notes_fmt_item *it = &o->items[i];
        size_t cap = 0;
        uint32_t last = UINT32_MAX;
        int ok = it->cp_len > 0;
        for (size_t k = it->cp_start; k < it->cp_start + it->cp_len; k++) {
            if (k >= ncp) {
                ok = 0;
                break;
            }
            if (ch[k] == last)
                continue;
            last = ch[k];
            notes_change_info ci;
            if (ch[k] >= nchanges ||
                notes_doc_change(d, ch[k], &ci) != NOTES_OK) {
                ok = 0;
                continue;
            }
            size_t a;
            for (a = 0;
                 a < it->nauthors && memcmp(it->authors[a], ci.author, 32) != 0;
                 a++)
                ;
            if (a < it->nauthors)
                continue;
            if (it->nauthors == cap) {
                cap = cap ? cap * 2 : 2;
                uint8_t(*na)[32] = realloc(it->authors, cap * 32);
                if (!na) {
                    rc = NOTES_ENOMEM;
                    break;
                }
                it->authors = na;
            }
            memcpy(it->authors[it->nauthors++], ci.author, 32);
        }
        it->verified = ok && it->nauthors > 0;
    }
    notes_free(ch);
    return rc;
}

int notes_fmt_outline_doc(notes_doc *d, notes_fmt_outline *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!d || !out)
        return notes_fmt__fail(NOTES_EINVAL, "outline: no note or no output");
    size_t n;
    const char *t = notes_doc_text(d, &n);
    const char *const *p = notes_doc_list(d, "participants");
    int rc = notes_fmt_outline_text(t, n, p, out);
    if (!rc)
        rc = add_authors(d, out);
    if (!rc)
        rc = notes_fmt__outline_provenance(d, out);
    return rc;
}

void notes_fmt_outline_clear(notes_fmt_outline *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->nsections; i++) {
        free(o->sections[i].heading);
        free(o->sections[i].title);
    }
    for (size_t i = 0; i < o->nitems; i++) {
        free(o->items[i].text);
        free(o->items[i].owner);
        free(o->items[i].owner_written);
        free(o->items[i].authors);
        for (size_t a = 0; o->items[i].people && a < o->items[i].nauthors; a++)
            notes_fmt__person_release(&o->items[i].people[a]);
        free(o->items[i].people);
        notes_fmt__confirms_release(o->items[i].confirms,
                                    o->items[i].nconfirms);
    }
    notes_fmt__confirms_release(o->orphan_confirms, o->norphans);
    free(o->sections);
    free(o->items);
    memset(o, 0, sizeof(*o));
}
