/*
 * cmd_revert.c: `notes revert` (undo one change's edits, keeping what came
 * after) and `notes restore` (make the note as it was at a change).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cpid {
    uint64_t id;   /* change << 32 | event: a code point's stable id */
    size_t pos;    /* where it is in the current text */
};

static int cmp_cpid(const void *a, const void *b)
{
    uint64_t x = ((const struct cpid *)a)->id, y = ((const struct cpid *)b)->id;
    return x < y ? -1 : x > y;
}

static const struct cpid *find_cp(const struct cpid *m, size_t n, uint64_t id)
{
    struct cpid key = {id, 0};
    return bsearch(&key, m, n, sizeof(*m), cmp_cpid);
}

struct edit {
    size_t pos, del;       /* code points of the current text */
    const char *ins;       /* bytes to insert at pos (after the delete) */
    size_t nins;
};

static int cmp_edit_desc(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? 1 : -1;
    return (x->del == 0) - (y->del == 0); /* at one spot: delete first */
}

/*
 * Undo the text of change c: what it inserted and still stands is
 * deleted; what it deleted is put back next to the characters it stood
 * by (the nearest before it that still stands, else after). Characters
 * are told apart by their stable ids, not by where they are, so edits
 * made since stay as they are. *n counts the edits.
 */
static int revert_text(notes_doc *d, size_t c, const uint8_t (*deps)[32],
                       size_t ndeps, size_t *n)
{
    uint32_t *cc = NULL, *ce = NULL, *bc = NULL, *be = NULL, *ac = NULL,
             *ae = NULL;
    size_t ncur = 0, nbef = 0, naft = 0, nm = 0, ne = 0, btl = 0;
    struct cpid *m = NULL, *am = NULL;
    struct edit *ed = NULL;
    char *bt = NULL;
    size_t *boff = NULL;
    notes_change_info ci;
    int rc;
    if ((rc = notes_doc_change(d, c, &ci)) ||
        (rc = notes_doc_origins(d, NULL, 0, &cc, &ce, &ncur)))
        return rc;
    uint8_t self[1][32];
    memcpy(self[0], ci.id, 32);
    if (ndeps && ((rc = notes_doc_origins(d, deps, ndeps, &bc, &be, &nbef)) ||
                  (rc = notes_doc_origins(d, (const uint8_t(*)[32])self, 1,
                                          &ac, &ae, &naft)) ||
                  (rc = notes_doc_text_at(d, deps, ndeps, &bt, &btl))))
        goto out;
    m = malloc((ncur + 1) * sizeof(*m));
    am = malloc((naft + 1) * sizeof(*am));
    ed = malloc((ncur + nbef + 1) * sizeof(*ed));
    boff = malloc((nbef + 1) * sizeof(*boff));
    if (!m || !am || !ed || !boff) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ncur; i++)
        m[nm++] = (struct cpid){(uint64_t)cc[i] << 32 | ce[i], i};
    qsort(m, nm, sizeof(*m), cmp_cpid);
    for (size_t i = 0; i < naft; i++)
        am[i] = (struct cpid){(uint64_t)ac[i] << 32 | ae[i], i};
    qsort(am, naft, sizeof(*am), cmp_cpid);
    /* Byte offset of each code point of the text before. */
    for (size_t i = 0, k = 0; i < btl && k <= nbef; i++)
        if (((unsigned char)bt[i] & 0xC0) != 0x80)
            boff[k++] = i;
    boff[nbef] = btl;
    /* What c inserted, where it still stands. */
    for (size_t i = 0; i < ncur;) {
        if (cc[i] != c) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < ncur && cc[j] == c)
            j++;
        ed[ne++] = (struct edit){i, j - i, NULL, 0};
        i = j;
    }
    /* What c deleted: in the text before it, not in the text after. */
    for (size_t i = 0; i < nbef;) {
        uint64_t id = (uint64_t)bc[i] << 32 | be[i];
        if (find_cp(am, naft, id)) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < nbef && !find_cp(am, naft, (uint64_t)bc[j] << 32 | be[j]))
            j++;
        size_t at = 0;
        int found = 0;
        for (size_t k = i; k-- > 0 && !found;) {
            const struct cpid *p = find_cp(m, nm, (uint64_t)bc[k] << 32 | be[k]);
            if (p) {
                at = p->pos + 1;
                found = 1;
            }
        }
        for (size_t k = j; k < nbef && !found; k++) {
            const struct cpid *p = find_cp(m, nm, (uint64_t)bc[k] << 32 | be[k]);
            if (p) {
                at = p->pos;
                found = 1;
            }
        }
        ed[ne++] = (struct edit){at, 0, bt + boff[i], boff[j] - boff[i]};
        i = j;
    }
    /* From the end, so earlier positions stay valid. */
    qsort(ed, ne, sizeof(*ed), cmp_edit_desc);
    for (size_t k = 0; k < ne && rc == NOTES_OK; k++)
        rc = notes_doc_splice(d, ed[k].pos, ed[k].del, ed[k].ins ? ed[k].ins : "",
                              ed[k].nins);
    *n += ne;
out:
    notes_free(cc);
    notes_free(ce);
    notes_free(bc);
    notes_free(be);
    notes_free(ac);
    notes_free(ae);
    notes_free(bt);
    free(m);
    free(am);
    free(ed);
    free(boff);
    return rc;
}

static int in_list(const char *const *l, const char *v)
{
    for (size_t i = 0; l[i]; i++)
        if (strcmp(l[i], v) == 0)
            return 1;
    return 0;
}

/* Undo the field writes of change c (before: the note its author had,
 * NULL for none). A field written again since is left alone and said. */
static int revert_fields(notes_doc *d, size_t c, notes_doc *before,
                         size_t *n, size_t *other)
{
    notes_change_info ci;
    int rc;
    if ((rc = notes_doc_change(d, c, &ci)))
        return rc;
    /* Borrowed op bytes are the change's; d's writes do not move them. */
    for (size_t k = ci.nops; k-- > 0 && rc == NOTES_OK;) {
        notes_op_info o;
        char key[1024], *val = NULL;
        if ((rc = notes_doc_change_op(d, c, k, &o)))
            break;
        if (o.kind < NOTES_OP_SET || o.kind > NOTES_OP_REMOVE) {
            if (o.kind != NOTES_OP_INSERT && o.kind != NOTES_OP_DELETE)
                ++*other;
            continue;
        }
        if (o.keylen >= sizeof(key) ||
            !(val = strndup(o.value ? o.value : "", o.valuelen)))
            return NOTES_ENOMEM;
        memcpy(key, o.key, o.keylen);
        key[o.keylen] = 0;
        const char *was = before ? notes_doc_field(before, key) : NULL;
        const char *now = notes_doc_field(d, key);
        if (o.kind == NOTES_OP_SET || o.kind == NOTES_OP_UNSET) {
            /* Only the last write of a field in the change counts. */
            int later = 0;
            for (size_t j = k + 1; j < ci.nops && !later; j++) {
                notes_op_info p;
                later = !notes_doc_change_op(d, c, j, &p) &&
                        (p.kind == NOTES_OP_SET || p.kind == NOTES_OP_UNSET) &&
                        p.keylen == o.keylen && !memcmp(p.key, o.key, o.keylen);
            }
            const char *wrote = o.kind == NOTES_OP_SET ? val : NULL;
            if (later) {
                /* superseded inside the change */
            } else if (!(now == wrote || (now && wrote && strcmp(now, wrote) == 0))) {
                fprintf(stderr, "notes: %s was written again since; left as "
                                "it is\n", cli_esc(key));
            } else {
                rc = cli_field_make(d, key, now, was, n);
            }
        } else if (o.kind == NOTES_OP_ADD) {
            if (in_list(notes_doc_list(d, key), val) &&
                !(before && in_list(notes_doc_list(before, key), val))) {
                rc = notes_doc_list_remove(d, key, val);
                ++*n;
            }
        } else if (!in_list(notes_doc_list(d, key), val) && before &&
                   in_list(notes_doc_list(before, key), val)) {
            rc = notes_doc_list_add(d, key, val);
            ++*n;
        }
        free(val);
    }
    return rc;
}

int cmd_revert(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *pos[2];
    notes_doc *d, *before = NULL;
    int rc;
    if ((rc = cli_open_note_pos(ctx, argc, argv, "revert", pos, 2, 2, &d)))
        return rc;
    size_t c, n = 0, other = 0, ndeps = 0;
    uint8_t id[32];
    const uint8_t(*deps)[32] = NULL;
    int ret = cli_change_arg(d, pos[1], &c, id);
    if (!ret && (rc = notes_doc_change_deps(d, c, &deps, &ndeps)))
        ret = cli_fail(rc, "cannot read change '%s'", pos[1]);
    if (!ret && ndeps && (rc = notes_doc_at(d, deps, ndeps, &before)))
        ret = cli_fail(rc, "cannot rebuild the note before '%s'", pos[1]);
    if (!ret && ((rc = revert_text(d, c, deps, ndeps, &n)) ||
                 (rc = revert_fields(d, c, before, &n, &other))))
        ret = cli_fail(rc, "cannot undo change '%s'", pos[1]);
    char hex[13];
    uint64_t ms;
    cli_change_hex(d, c, hex, &ms);
    if (!ret && other)
        fprintf(stderr, "notes: names, device links and confirmations are "
                        "not undone (%zu in change %s)\n", other, hex);
    if (!ret && !n) {
        printf("nothing to undo: the text and fields change %s wrote are "
               "already as before it\n", hex);
    } else if (!ret && !(ret = cli_commit(d, "the revert"))) {
        printf("recorded: change %s undone\n", hex);
        cli_warn_line_conflicts(ctx, d);
    }
    notes_doc_free(before);
    notes_doc_free(d);
    return ret;
}

int cmd_restore(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *note = NULL, *at = NULL;
    const struct cli_opt opts[] = {CLI_VALUE("--at", &at), CLI_END};
    notes_doc *d, *v = NULL;
    int rc;
    if ((rc = cli_parse_args(argc, argv, "restore", opts, &note, 1, 0)))
        return rc;
    if (!note || !at)
        return cli_usage("restore");
    if ((rc = cli_open_note(ctx, note, &d)))
        return rc;
    int ret = cli_note_at(d, at, &v);
    size_t n = 0, tn, cn;
    if (!ret) {
        const char *t = notes_doc_text(v, &tn);
        const char *cur = notes_doc_text(d, &cn);
        int differs = cn != tn || memcmp(cur, t, tn) != 0;
        if (differs && (rc = notes_doc_set_text(d, t, tn)))
            ret = cli_fail(rc, "cannot restore the text");
        n += (size_t)differs;
    }
    if (!ret && (rc = cli_sync_fields(d, v, 0, &n)))
        ret = cli_fail(rc, "cannot restore the front matter");
    if (!ret && !n) {
        printf("no change: the note already reads as at %s\n", cli_esc(at));
    } else if (!ret && !(ret = cli_commit(d, "the restore"))) {
        printf("recorded: the note reads as at %s\n", cli_esc(at));
        cli_warn_line_conflicts(ctx, d);
    }
    notes_doc_free(v);
    notes_doc_free(d);
    return ret;
}
