/*
 * remote_state.c: what a replica knows of one remote beyond the remotes
 * file ($NOTES_HOME/remotes.d/NAME.state): the packs it has read (so a
 * sync reads only new ones) and, per note, the changes the remote is known
 * to hold (so a push carries only what it lacks). A cache: lost or
 * damaged, it is rebuilt by reading every pack and pushing everything once.
 *
 *   notes-remote-state 1
 *   pack OID SEQ
 *   top DEVTAG NAME...   (the names its newest pack lists)
 *   note ID HEAD...
 *   check ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_state.h"

#define STATE_MAX (256u << 20)

void remote_state_clear(struct remote_state *s)
{
    for (size_t i = 0; i < s->ntops; i++)
        free(s->tops[i].names);
    free(s->tops);
    for (size_t i = 0; i < s->nnotes; i++)
        free(s->notes[i].heads);
    free(s->notes);
    free(s->packs);
    memset(s, 0, sizeof(*s));
}

static int cmp_pack(const void *a, const void *b)
{
    return strcmp(((const struct remote_state_pack *)a)->oid,
                  ((const struct remote_state_pack *)b)->oid);
}

static int cmp_note(const void *a, const void *b)
{
    return memcmp(((const struct remote_state_note *)a)->id,
                  ((const struct remote_state_note *)b)->id, 16);
}

const struct remote_state_pack *remote_state_pack_find(
    const struct remote_state *s, const char *oid)
{
    struct remote_state_pack k;
    if (!s->npacks || strlen(oid) > REMOTE_OID_MAX)
        return NULL;
    memset(&k, 0, sizeof(k));
    snprintf(k.oid, sizeof(k.oid), "%s", oid);
    return bsearch(&k, s->packs, s->npacks, sizeof(k), cmp_pack);
}

struct remote_state_note *remote_state_note_find(struct remote_state *s,
                                                 const uint8_t id[16])
{
    struct remote_state_note k;
    if (!s->nnotes)
        return NULL;
    memset(&k, 0, sizeof(k));
    memcpy(k.id, id, 16);
    return bsearch(&k, s->notes, s->nnotes, sizeof(k), cmp_note);
}

/* One more entry, zeroed, at the end of the array *arr of *n entries of
 * `size` bytes: its address, or NULL (nothing changed) without memory. */
static void *append(void *arr, size_t *n, size_t size)
{
    void **v = arr;
    uint8_t *nv = realloc(*v, (*n + 1) * size);
    if (!nv)
        return NULL;
    *v = nv;
    memset(nv + *n * size, 0, size);
    return nv + (*n)++ * size;
}

int remote_state_add_pack(struct remote_state *s, const char *oid,
                          uint64_t seq)
{
    struct remote_state_pack *p;
    if (remote_state_pack_find(s, oid))
        return NOTES_OK;
    if (!(p = append(&s->packs, &s->npacks, sizeof(*p))))
        return NOTES_ENOMEM;
    snprintf(p->oid, sizeof(p->oid), "%s", oid);
    p->seq = seq;
    qsort(s->packs, s->npacks, sizeof(*p), cmp_pack);
    return NOTES_OK;
}

struct remote_state_top *remote_state_top_find(struct remote_state *s,
                                               const char *dev)
{
    for (size_t i = 0; i < s->ntops; i++)
        if (strcmp(s->tops[i].dev, dev) == 0)
            return &s->tops[i];
    return NULL;
}

int remote_state_set_top(struct remote_state *s, const char *dev,
                         const uint8_t (*names)[REMOTE_PACK_NAME_LEN],
                         size_t n)
{
    struct remote_state_top *t = remote_state_top_find(s, dev);
    uint8_t(*copy)[REMOTE_PACK_NAME_LEN] = malloc(n * REMOTE_PACK_NAME_LEN + 1);
    if (!copy || strlen(dev) != 2 * REMOTE_TAG_LEN) {
        free(copy);
        return copy ? NOTES_EINVAL : NOTES_ENOMEM;
    }
    memcpy(copy, names, n * REMOTE_PACK_NAME_LEN);
    if (!t) {
        if (!(t = append(&s->tops, &s->ntops, sizeof(*t)))) {
            free(copy);
            return NOTES_ENOMEM;
        }
        memcpy(t->dev, dev, 2 * REMOTE_TAG_LEN + 1);
    }
    free(t->names);
    t->names = copy;
    t->n = n;
    return NOTES_OK;
}

int remote_state_set_heads(struct remote_state *s, const uint8_t id[16],
                           const uint8_t (*heads)[32], size_t n)
{
    struct remote_state_note *e = remote_state_note_find(s, id);
    uint8_t(*copy)[32] = NULL;
    if (n && !(copy = malloc(n * 32)))
        return NOTES_ENOMEM;
    if (n)
        memcpy(copy, heads, n * 32);
    if (!e) {
        if (!(e = append(&s->notes, &s->nnotes, sizeof(*e)))) {
            free(copy);
            return NOTES_ENOMEM;
        }
        memcpy(e->id, id, 16);
        e->heads = copy;
        e->n = n;
        qsort(s->notes, s->nnotes, sizeof(*e), cmp_note);
        return NOTES_OK;
    }
    free(e->heads);
    e->heads = copy;
    e->n = n;
    return NOTES_OK;
}

static int parse(char *text, struct remote_state *s)
{
    char *p = text;
    if (strncmp(p, "notes-remote-state 1\n", 21) != 0)
        return NOTES_ECORRUPT;
    p += 21;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl)
            return NOTES_ECORRUPT;
        *nl = '\0';
        if (strncmp(p, "pack ", 5) == 0) {
            char oid[REMOTE_OID_MAX + 2];
            unsigned long long seq;
            int end = 0;
            if (sscanf(p + 5, "%65s %llu%n", oid, &seq, &end) != 2 ||
                p[5 + end] || strlen(oid) < 40 || strlen(oid) > REMOTE_OID_MAX ||
                strspn(oid, "0123456789abcdef") != strlen(oid) ||
                remote_state_add_pack(s, oid, seq))
                return NOTES_ECORRUPT;
        } else if (strncmp(p, "top ", 4) == 0 && nl - p >= 4 + 32) {
            char dev[2 * REMOTE_TAG_LEN + 1];
            size_t len = (size_t)(nl - p - 4 - 32), n = len / 33;
            const char *q = p + 4 + 32;
            uint8_t(*v)[REMOTE_PACK_NAME_LEN];
            memcpy(dev, p + 4, 32);
            dev[32] = '\0';
            if (len != n * 33 || strspn(dev, "0123456789abcdef") != 32)
                return NOTES_ECORRUPT;
            if (!(v = malloc(n * REMOTE_PACK_NAME_LEN + 1)))
                return NOTES_ENOMEM;
            size_t k = 0;
            for (; k < n; k++, q += 33)
                if (q[0] != ' ' ||
                    notes_sync__unhex_lower(v[k], REMOTE_PACK_NAME_LEN, q + 1,
                                            32))
                    break;
            int rc = k == n ? remote_state_set_top(
                                  s, dev,
                                  (const uint8_t(*)[REMOTE_PACK_NAME_LEN])v, n)
                            : NOTES_ECORRUPT;
            free(v);
            if (rc)
                return rc;
        } else if (strncmp(p, "note ", 5) == 0 && nl - p >= 5 + 32) {
            uint8_t id[16], (*h)[32];
            size_t n = (size_t)(nl - p - 5 - 32) / 65, k = 0;
            const char *q = p + 5 + 32;
            if (notes_sync__unhex_lower(id, 16, p + 5, 32) ||
                (size_t)(nl - p - 5 - 32) != n * 65)
                return NOTES_ECORRUPT;
            if (!(h = malloc(n * 32 + 1)))
                return NOTES_ENOMEM;
            for (; k < n; k++, q += 65)
                if (q[0] != ' ' || notes_sync__unhex_lower(h[k], 32, q + 1, 64))
                    break;
            int rc = k == n ? remote_state_set_heads(s, id,
                                                     (const uint8_t(*)[32])h, n)
                            : NOTES_ECORRUPT;
            free(h);
            if (rc)
                return rc;
        } else {
            return NOTES_ECORRUPT;
        }
        p = nl + 1;
    }
    return NOTES_OK;
}

int remote_state_load(const char *path, struct remote_state *s)
{
    char *text = NULL;
    size_t n;
    int rc, checked;
    memset(s, 0, sizeof(*s));
    rc = notes_sync__read_checked(path, STATE_MAX, &text, &n, &checked);
    if (rc == NOTES_ENOTFOUND)
        return NOTES_OK;
    if (rc && rc != NOTES_ECORRUPT) {
        free(text);
        return rc;
    }
    rc = rc || !checked ? NOTES_ECORRUPT : parse(text, s);
    free(text);
    if (rc) {
        /* A cache: start again (every pack read, everything pushed once). */
        remote_state_clear(s);
        rc = NOTES_OK;
    }
    return rc;
}

int remote_state_store(const char *path, const struct remote_state *s)
{
    struct notes_buf b;
    char hex[65];
    int rc;
    /* The check line too stays within STATE_MAX (the load's limit). */
    notes__buf_init(&b, STATE_MAX - NOTES_CHECK_LINE_LEN);
    rc = notes__buf_puts(&b, "notes-remote-state 1\n");
    for (size_t i = 0; !rc && i < s->npacks; i++)
        rc = notes__buf_printf(&b, "pack %s %llu\n", s->packs[i].oid,
                               (unsigned long long)s->packs[i].seq);
    for (size_t i = 0; !rc && i < s->ntops; i++) {
        rc = notes__buf_printf(&b, "top %s", s->tops[i].dev);
        for (size_t k = 0; !rc && k < s->tops[i].n; k++) {
            notes__hex(hex, s->tops[i].names[k], REMOTE_PACK_NAME_LEN);
            rc = notes__buf_printf(&b, " %s", hex);
        }
        if (!rc)
            rc = notes__buf_puts(&b, "\n");
    }
    for (size_t i = 0; !rc && i < s->nnotes; i++) {
        notes__hex(hex, s->notes[i].id, 16);
        rc = notes__buf_printf(&b, "note %s", hex);
        for (size_t k = 0; !rc && k < s->notes[i].n; k++) {
            notes__hex(hex, s->notes[i].heads[k], 32);
            rc = notes__buf_printf(&b, " %s", hex);
        }
        if (!rc)
            rc = notes__buf_puts(&b, "\n");
    }
    if (!rc)
        rc = notes__write_checked(path, b.data, b.len, 0600);
    notes__buf_release(&b);
    return rc;
}
