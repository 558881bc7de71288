/*
 * petnames.c: the user's own names for keys (HOME/trust).
 *
 * The CLI and the page server both show keys by these names; they used to
 * read the file each in its own way (the page without its check line).
 * One "nk... NAME" line per key, then the check line every trusted file of
 * the replica ends with (files.c). A damaged file names nobody: one could
 * otherwise be shown the wrong person under a trusted name.
 */
#include <stdio.h>

#include "files.h"
#include "internal.h"

#define TRUST_MAX (1u << 20)

static char *trust_path(const char *home)
{
    return notes__path_join(home, "trust");
}

static int add_bad(notes_petnames *p, size_t *cap, size_t line)
{
    if (notes__grow(&p->bad_lines, cap, p->nbad + 1, sizeof(size_t), 4))
        return NOTES_ENOMEM;
    p->bad_lines[p->nbad++] = line;
    return NOTES_OK;
}

int notes_petnames_load(const char *home, notes_petnames *out)
{
    uint8_t *text = NULL;
    size_t n = 0, cap = 0, badcap = 0, lineno = 0;
    int checked, rc = NOTES_OK;
    memset(out, 0, sizeof(*out));
    char *path = trust_path(home);
    if (!path)
        return NOTES_ENOMEM;
    rc = notes__read_checked(path, TRUST_MAX, &text, &n, &checked);
    notes__free(path);
    if (rc == NOTES_ENOTFOUND)
        return NOTES_OK;
    if (rc == NOTES_ECORRUPT || rc == NOTES_ETOOBIG) {
        out->damaged = 1; /* the detail (set by the read) says why */
        return NOTES_OK;
    }
    if (rc)
        return rc;
    for (char *line = (char *)text, *end = (char *)text + n; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            nl = end; /* an older file cut short: its last line counts */
        *nl = 0;
        char *sp = strchr(line, ' ');
        notes_petname pn;
        lineno++;
        if (!sp || (*sp = 0, notes_key_decode(line, pn.key) != NOTES_OK) ||
            !sp[1] || strlen(sp + 1) > NOTES_NAME_MAX) {
            /* A damaged line names nobody; the rest still counts. */
            if ((rc = add_bad(out, &badcap, lineno)))
                break;
        } else {
            snprintf(pn.name, sizeof(pn.name), "%s", sp + 1);
            if ((rc = notes__grow(&out->names, &cap, out->n + 1,
                                  sizeof(pn), 16)))
                break;
            out->names[out->n++] = pn;
        }
        line = nl + 1;
    }
    notes__free(text);
    if (rc)
        notes_petnames_clear(out);
    return rc;
}

const char *notes_petnames_find(const notes_petnames *p, const uint8_t key[32])
{
    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->names[i].key, key, 32) == 0)
            return p->names[i].name;
    return NULL;
}

int notes_petnames_set(notes_petnames *p, const uint8_t key[32],
                       const char *name)
{
    size_t i;
    for (i = 0; i < p->n && memcmp(p->names[i].key, key, 32) != 0; i++)
        ;
    if (!name) {
        if (i == p->n) {
            notes__set_detail("the key has no name in your trust list");
            return NOTES_ENOTFOUND;
        }
        memmove(&p->names[i], &p->names[i + 1],
                (p->n - i - 1) * sizeof(p->names[0]));
        p->n--;
        return NOTES_OK;
    }
    if (!notes__name_valid((const uint8_t *)name, strlen(name))) {
        notes__set_detail("a petname is 1 to %d bytes of UTF-8 without "
                          "control characters", NOTES_NAME_MAX);
        return NOTES_EINVAL;
    }
    if (i == p->n) {
        /* The array was grown by powers of two from 16 (load) or is
         * exactly n long; grow from n either way. */
        size_t cap = p->n;
        if (notes__grow(&p->names, &cap, p->n + 1, sizeof(p->names[0]), 16))
            return NOTES_ENOMEM;
        memcpy(p->names[p->n++].key, key, 32);
    }
    snprintf(p->names[i].name, sizeof(p->names[i].name), "%s", name);
    return NOTES_OK;
}

int notes_petnames_save(const char *home, const notes_petnames *p)
{
    struct notes_buf b;
    int rc = NOTES_OK;
    if (p->damaged) {
        notes__set_detail("%s/trust is damaged and is not rewritten: repair "
                          "or remove it first", home);
        return NOTES_ECORRUPT;
    }
    notes__buf_init(&b, TRUST_MAX);
    for (size_t i = 0; i < p->n && !rc; i++) {
        char key[NOTES_KEY_STRLEN];
        notes_key_encode(p->names[i].key, key);
        rc = notes__buf_printf(&b, "%s %s\n", key, p->names[i].name);
    }
    char *path = rc ? NULL : trust_path(home);
    if (!rc && !path)
        rc = NOTES_ENOMEM;
    if (!rc)
        rc = notes__write_checked(path, b.data ? b.data : (const uint8_t *)"",
                                  b.len, 0644);
    notes__free(path);
    notes__buf_release(&b);
    return rc;
}

void notes_petnames_clear(notes_petnames *p)
{
    notes__free(p->names);
    notes__free(p->bad_lines);
    memset(p, 0, sizeof(*p));
}
