/*
 * doc_fields.c: causality and the front matter: a change's ancestors, and
 * each field resolved from its writes by who had seen what (registers,
 * lists, conflicts).
 */

#include "doc_internal.h"

/*
 * Mark in `seen` every ancestor of entry `from` (inclusive), through deps
 * and, with `chain`, through prev too (what a holder of `from` must have,
 * as opposed to what its author had seen).
 */
int notes__doc_mark_ancestors(const notes_doc *d, uint32_t from, uint8_t *seen,
                              int chain)
{
    uint32_t *stack = notes__malloc((d->ne + 1) * sizeof(*stack));
    size_t sp = 0;
    if (!stack)
        return NOTES_ENOMEM;
    stack[sp++] = from;
    seen[from] = 1;
    while (sp) {
        const struct notes__change *c = d->e[stack[--sp]].c;
        for (uint32_t i = 0; i < c->ndeps + (chain ? 1u : 0u); i++) {
            uint32_t p = notes__doc_parent(d, c, i);
            if (p != NONE && !seen[p]) {
                seen[p] = 1;
                stack[sp++] = p;
            }
        }
    }
    notes__free(stack);
    return NOTES_OK;
}

/* Is write a causally before write b (b supersedes a)? */
static int write_before(const notes_doc *d, const struct write *a,
                        const struct write *b, uint8_t *scratch)
{
    if (a->entry == b->entry)
        return a->opidx < b->opidx;
    if (b->entry == NONE)
        return 1; /* uncommitted local edits come after all they saw */
    if (a->entry == NONE)
        return 0;
    memset(scratch, 0, d->ne);
    if (notes__doc_mark_ancestors(d, b->entry, scratch, 0))
        return 0;
    return scratch[a->entry];
}

/* Total order for ties: lamport, author key, change id, op index. */
static int write_cmp(const notes_doc *d, const struct write *a,
                     const struct write *b)
{
    if (a->entry == b->entry)
        return a->opidx < b->opidx ? -1 : a->opidx > b->opidx;
    if (a->entry == NONE)
        return 1;
    if (b->entry == NONE)
        return -1;
    const struct entry *ea = &d->e[a->entry], *eb = &d->e[b->entry];
    if (ea->lamport != eb->lamport)
        return ea->lamport < eb->lamport ? -1 : 1;
    int c = memcmp(ea->c->author, eb->c->author, 32);
    if (c)
        return c;
    return memcmp(ea->c->id, eb->c->id, 32);
}

static int is_register(int kind)
{
    return kind == NOTES__K_SET || kind == NOTES__K_UNSET;
}

/*
 * Resolve a register: the live writes (superseded by none) and the winner
 * among them. Returns the winner index or -1, fills `conflicts`.
 */
static int resolve_register(notes_doc *d, struct field *f, const char **value)
{
    if (f->gen_reg == d->gen && f->gen_reg) {
        *value = f->value;
        return NOTES_OK;
    }
    uint8_t *scratch = notes__malloc(d->ne + 1);
    const char **conf = notes__calloc(f->nw + 1, sizeof(*conf));
    size_t nc = 0;
    ptrdiff_t win = -1;
    if (!scratch || !conf) {
        notes__free(scratch);
        notes__free(conf);
        return NOTES_ENOMEM;
    }
    uint8_t *live = notes__calloc(f->nw + 1, 1);
    if (!live) {
        notes__free(scratch);
        notes__free(conf);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < f->nw; i++) {
        if (!is_register(f->w[i].kind))
            continue;
        live[i] = 1;
        for (size_t j = 0; j < f->nw && live[i]; j++)
            if (j != i && is_register(f->w[j].kind) &&
                write_before(d, &f->w[i], &f->w[j], scratch))
                live[i] = 0;
        if (live[i] && (win < 0 || write_cmp(d, &f->w[i], &f->w[win]) > 0))
            win = (ptrdiff_t)i;
    }
    *value = win >= 0 ? f->w[win].value : NULL;
    /* Conflicts in a replica-independent order: latest write first. */
    size_t *ci = notes__malloc((f->nw + 1) * sizeof(*ci));
    size_t nci = 0;
    if (!ci) {
        notes__free(live);
        notes__free(scratch);
        notes__free(conf);
        return NOTES_ENOMEM;
    }
    for (size_t i = 0; i < f->nw; i++) {
        if (!live[i] || (ptrdiff_t)i == win || !f->w[i].value)
            continue;
        size_t k = nci++;
        while (k > 0 && write_cmp(d, &f->w[ci[k - 1]], &f->w[i]) < 0) {
            ci[k] = ci[k - 1];
            k--;
        }
        ci[k] = i;
    }
    for (size_t k = 0; k < nci; k++) {
        const char *v = f->w[ci[k]].value;
        int seen = *value && strcmp(*value, v) == 0;
        for (size_t j = 0; j < nc && !seen; j++)
            seen = strcmp(conf[j], v) == 0;
        if (!seen)
            conf[nc++] = v;
    }
    notes__free(ci);
    notes__free(live);
    notes__free(scratch);
    notes__free(f->conflicts);
    f->conflicts = conf;
    f->value = *value;
    f->gen_reg = d->gen;
    return NOTES_OK;
}

static int resolve_list(notes_doc *d, struct field *f)
{
    if (f->gen_list == d->gen && f->gen_list)
        return NOTES_OK;
    uint8_t *scratch = notes__malloc(d->ne + 1);
    size_t *alive = notes__malloc((f->nw + 1) * sizeof(*alive));
    const char **list = notes__calloc(f->nw + 1, sizeof(*list));
    size_t na = 0, nl = 0;
    if (!scratch || !alive || !list) {
        notes__free(scratch);
        notes__free(alive);
        notes__free(list);
        return NOTES_ENOMEM;
    }
    /* An add survives unless a remove of the same value saw it. */
    for (size_t i = 0; i < f->nw; i++) {
        if (f->w[i].kind != NOTES__K_ADD)
            continue;
        int removed = 0;
        for (size_t j = 0; j < f->nw && !removed; j++)
            if (f->w[j].kind == NOTES__K_REMOVE &&
                strcmp(f->w[j].value, f->w[i].value) == 0 &&
                write_before(d, &f->w[i], &f->w[j], scratch))
                removed = 1;
        if (!removed)
            alive[na++] = i;
    }
    /* Stable order: by each value's earliest surviving add. */
    for (size_t i = 1; i < na; i++) {
        size_t x = alive[i], k = i;
        while (k > 0 && write_cmp(d, &f->w[alive[k - 1]], &f->w[x]) > 0) {
            alive[k] = alive[k - 1];
            k--;
        }
        alive[k] = x;
    }
    for (size_t i = 0; i < na; i++) {
        const char *v = f->w[alive[i]].value;
        size_t k;
        for (k = 0; k < nl && strcmp(list[k], v) != 0; k++)
            ;
        if (k == nl)
            list[nl++] = v;
    }
    notes__free(scratch);
    notes__free(alive);
    notes__free(f->list);
    f->list = list;
    f->gen_list = d->gen;
    return NOTES_OK;
}

static struct field *find_field(notes_doc *d, const char *key)
{
    for (size_t i = 0; i < d->nf; i++)
        if (strcmp(d->f[i].key, key) == 0)
            return &d->f[i];
    return NULL;
}

const char *notes_doc_field(notes_doc *d, const char *key)
{
    if (d->lazy)
        return notes__snap_field(d, key);
    struct field *f = find_field(d, key);
    const char *v = NULL;
    if (!f || resolve_register(d, f, &v))
        return NULL;
    return v;
}

static const char *const empty_list[] = {NULL};

const char *const *notes_doc_field_conflicts(notes_doc *d, const char *key)
{
    if (d->lazy)
        return notes__snap_conflicts(d, key);
    struct field *f = find_field(d, key);
    const char *v;
    if (!f || resolve_register(d, f, &v))
        return empty_list;
    return f->conflicts;
}

const char *const *notes_doc_list(notes_doc *d, const char *key)
{
    if (d->lazy)
        return notes__snap_list(d, key);
    struct field *f = find_field(d, key);
    if (!f || resolve_list(d, f))
        return empty_list;
    return f->list;
}

const char *const *notes_doc_fields(notes_doc *d)
{
    if (d->lazy)
        return notes__snap_names(d);
    if (d->fieldnames && d->gen_names == d->gen)
        return d->fieldnames;
    const char **names = notes__calloc(d->nf + 1, sizeof(*names));
    const struct write **first =
        notes__calloc(d->nf + 1, sizeof(const struct write *));
    size_t n = 0;
    if (!names || !first) {
        notes__free(names);
        notes__free(first);
        return empty_list;
    }
    for (size_t i = 0; i < d->nf; i++) {
        struct field *f = &d->f[i];
        const char *v = NULL;
        int has = 0;
        if (resolve_register(d, f, &v) == NOTES_OK && v)
            has = 1;
        if (!has && resolve_list(d, f) == NOTES_OK && f->list[0])
            has = 1;
        if (!has || !f->nw)
            continue;
        /* Fields appear in the order of their earliest write. */
        const struct write *best = &f->w[0];
        for (size_t j = 1; j < f->nw; j++)
            if (write_cmp(d, &f->w[j], best) < 0)
                best = &f->w[j];
        size_t k = n++;
        while (k > 0 && write_cmp(d, first[k - 1], best) > 0) {
            names[k] = names[k - 1];
            first[k] = first[k - 1];
            k--;
        }
        names[k] = f->key;
        first[k] = best;
    }
    notes__free(first);
    notes__free(d->fieldnames);
    d->fieldnames = names;
    d->gen_names = d->gen;
    return names;
}

int notes_doc_field_change(notes_doc *d, const char *key, const char *elem,
                           int first, size_t *change)
{
    NOTES__DOC_FULL_RC(d);
    struct field *f = key ? find_field(d, key) : NULL;
    const struct write *best = NULL;
    uint8_t *scratch;
    if (!f) {
        notes__set_detail("no field '%s'", key ? key : "");
        return NOTES_ENOTFOUND;
    }
    if (!(scratch = notes__malloc(d->ne + 1)))
        return NOTES_ENOMEM;
    for (size_t i = 0; i < f->nw; i++) {
        const struct write *w = &f->w[i];
        if (w->entry == NONE)
            continue; /* not a change yet */
        if (!elem) {
            if (!best || (write_cmp(d, w, best) < 0) == !!first)
                best = w;
            continue;
        }
        if (w->kind != NOTES__K_ADD || !w->value || strcmp(w->value, elem) != 0)
            continue;
        int removed = 0;
        for (size_t j = 0; j < f->nw && !removed; j++)
            if (f->w[j].kind == NOTES__K_REMOVE && f->w[j].value &&
                strcmp(f->w[j].value, elem) == 0 &&
                write_before(d, w, &f->w[j], scratch))
                removed = 1;
        if (!removed && (!best || write_cmp(d, w, best) < 0))
            best = w;
    }
    notes__free(scratch);
    if (!best) {
        notes__set_detail("no change wrote '%s'", key);
        return NOTES_ENOTFOUND;
    }
    *change = best->entry;
    return NOTES_OK;
}
