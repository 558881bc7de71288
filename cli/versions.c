/*
 * versions.c: what the history commands share: naming a change, the whole
 * note as it was at one, and making a note's fields those of another
 * version (edit, restore).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "notes_formats.h"

/* The first 6 bytes of change i's id in hex, and its time (0 when unknown). */
void cli_change_hex(notes_doc *d, size_t i, char out[13], uint64_t *ms)
{
    notes_change_info ci;
    out[0] = 0;
    *ms = 0;
    if (notes_doc_change(d, i, &ci) != NOTES_OK)
        return;
    for (size_t k = 0; k < 6; k++)
        snprintf(out + 2 * k, 3, "%02x", ci.id[k]);
    *ms = ci.time_ms;
}

/* The change `spec` names (an id prefix): its index and id. */
int cli_change_arg(notes_doc *d, const char *spec, size_t *idx,
                   uint8_t id[32])
{
    notes_change_info ci;
    int rc = notes_doc_find_change(d, spec, idx);
    if (!rc)
        rc = notes_doc_change(d, *idx, &ci);
    if (rc)
        return cli_fail(rc, "cannot use version '%s'", spec);
    memcpy(id, ci.id, 32);
    return 0;
}

/* The whole note as it was once change `spec` was applied (a memory doc:
 * text, front matter, people). 0 or the exit code, said. */
int cli_note_at(notes_doc *d, const char *spec, notes_doc **out)
{
    size_t idx;
    uint8_t v[1][32];
    int rc;
    *out = NULL;
    if ((rc = cli_change_arg(d, spec, &idx, v[0])))
        return rc;
    if ((rc = notes_doc_at(d, (const uint8_t(*)[32])v, 1, out)))
        return cli_fail(rc, "cannot rebuild the note at '%s'", spec);
    return 0;
}

/* Bytes of the front matter at the start of `md`, the Markdown of `d`
 * (cli_render_markdown): everything before the text. */
size_t cli_fm_bytes(notes_doc *d, size_t mdn)
{
    size_t tl;
    (void)notes_doc_text(d, &tl);
    return mdn >= tl ? mdn - tl : 0;
}

/* ---- field sync: make d's fields those of `want` ---- */

static char **copy_list(const char *const *l, size_t *n)
{
    size_t k = 0;
    while (l[k])
        k++;
    char **c = calloc(k + 1, sizeof(*c));
    if (!c)
        return NULL;
    for (size_t i = 0; i < k; i++)
        if (!(c[i] = strdup(l[i]))) {
            for (size_t j = 0; j < i; j++)
                free(c[j]);
            free(c);
            return NULL;
        }
    *n = k;
    return c;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

int cli_field_make(notes_doc *d, const char *key, const char *now,
                   const char *want, size_t *changed)
{
    if (want && (!now || strcmp(now, want) != 0)) {
        ++*changed;
        return notes_doc_set_field(d, key, want);
    }
    if (!want && now) {
        ++*changed;
        return notes_doc_unset_field(d, key);
    }
    return NOTES_OK;
}

/* One field of d made what it is in `want`: a scalar set or removed; a
 * list kept up to the first element that differs, the rest removed and
 * the wanted ones added in order (adds are ordered by when they were
 * made, so this gives the exact order). *changed counts the writes. */
static int sync_field(notes_doc *d, notes_doc *want, const char *key,
                      size_t *changed)
{
    const char *tv = notes_doc_field(want, key);
    const char *dv0 = notes_doc_field(d, key);
    char *dv = dv0 ? strdup(dv0) : NULL;
    size_t nd = 0, nt = 0;
    char **dl = copy_list(notes_doc_list(d, key), &nd);
    char **tl = copy_list(notes_doc_list(want, key), &nt);
    int rc = NOTES_OK;
    if ((dv0 && !dv) || !dl || !tl)
        rc = NOTES_ENOMEM;
    else
        rc = cli_field_make(d, key, dv, tv, changed);
    size_t p = 0;
    while (dl && tl && p < nd && p < nt && strcmp(dl[p], tl[p]) == 0)
        p++;
    for (size_t i = p; rc == NOTES_OK && i < nd; i++, ++*changed)
        rc = notes_doc_list_remove(d, key, dl[i]);
    for (size_t i = p; rc == NOTES_OK && i < nt; i++, ++*changed)
        rc = notes_doc_list_add(d, key, tl[i]);
    free(dv);
    free_list(dl, nd);
    free_list(tl, nt);
    return rc;
}

/* Every field, layout ("@...") included: d's fields become want's. With
 * `fm_only` (an edited front matter) a reserved field other than the kept
 * front matter source is none of the editor's business: kept. */
int cli_sync_fields(notes_doc *d, notes_doc *want, int fm_only,
                    size_t *changed)
{
    size_t nd = 0, nt = 0;
    char **dk = copy_list(notes_doc_fields(d), &nd);
    char **tk = copy_list(notes_doc_fields(want), &nt);
    int rc = dk && tk ? NOTES_OK : NOTES_ENOMEM;
    for (size_t i = 0; rc == NOTES_OK && i < nt; i++)
        rc = sync_field(d, want, tk[i], changed);
    for (size_t i = 0; rc == NOTES_OK && i < nd; i++) {
        size_t k = 0;
        while (k < nt && strcmp(tk[k], dk[i]) != 0)
            k++;
        if (fm_only && dk[i][0] == '@' &&
            strcmp(dk[i], NOTES_FMT_LAYOUT_KEY) != 0)
            continue;
        if (k == nt)
            rc = sync_field(d, want, dk[i], changed);
    }
    free_list(dk, nd);
    free_list(tk, nt);
    return rc;
}
