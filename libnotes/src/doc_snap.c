/*
 * doc_snap.c: the snapshot cache (notes/ID.snap, docs/format.md).
 *
 * Opening a note used to replay its whole log: decode every change, hash
 * it, rebuild the text through the oplog. The snapshot keeps what reading a
 * note needs (its text, heads and front-matter fields) beside the log, tied
 * to the log's length and local MAC chain value and authenticated with a
 * key derived from this device's local key. notes_doc_open uses it only
 * when the log file is, byte for byte, the log the snapshot was taken of
 * (the MAC chain over the file, recomputed, must equal the one the
 * snapshot and the state file name) and when the state file would find
 * nothing wrong with it; anything else (no snapshot, stale, truncated,
 * forged, corrupt, another device's) falls back to the full replay, and
 * the next write (commit, merge, compaction) makes a fresh one: reading
 * never writes. The log stays the single source of truth: the snapshot can
 * be deleted at any time, which only costs speed.
 *
 * A doc opened from a snapshot is "lazy": text, length, heads and fields
 * are answered from the snapshot; every other call first replays the log
 * (notes__doc_full), which builds the entries and the oplog that history,
 * merges and edits need.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "doc_internal.h"

static const uint8_t snap_magic[8] = {'N', 'O', 'T', 'E', 'S', 'N', 'A', 'P'};
#define SNAP_VERSION 1u
#define SNAP_HEADER 112
#define SNAP_MAC 32
#define SNAP_MAX (256u << 20) /* a larger file is not read */
#define NOTES__SNAP_EAGER_MAX (1u << 20) /* text bytes: see snap_save */

struct snap_field {
    const char *key;
    const char *value;        /* NULL: none */
    const char **conflicts;   /* NULL-terminated */
    const char **list;        /* NULL-terminated */
};

struct notes__snap {
    uint8_t *file;            /* the file's bytes: strings point into it */
    const char *text;
    size_t nbytes, ncp;
    uint64_t nchanges, my_seq;
    uint32_t nheads;
    const uint8_t *heads;     /* nheads * 32, sorted */
    struct snap_field *f;
    size_t nf;
    const char **names;       /* notes_doc_fields, NULL-terminated */
    const char **ptrs;        /* one allocation for every array above */
};

static const char *const no_strings[] = {NULL};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The snapshot key: the local key is also the log's MAC key, so snapshots
 * get a key of their own (no MAC of one kind can pass for the other). */
static void snap_mac(const uint8_t local_key[32], const uint8_t *p, size_t n,
                     uint8_t out[32])
{
    static const char label[] = "notes snapshot key v1";
    uint8_t k[32];
    notes__hash_state st;
    notes__hash_init(&st, local_key, 32, 32);
    notes__hash_update(&st, label, sizeof(label));
    notes__hash_final(&st, k, 32);
    notes__hash_init(&st, k, 32, 32);
    notes__hash_update(&st, p, n);
    notes__hash_final(&st, out, 32);
    notes__wipe(k, sizeof(k));
}

static char *snap_path(const notes_doc *d)
{
    char *log = notes__replica_log_path(d->r, d->id);
    if (!log)
        return NULL;
    size_t n = strlen(log);
    char *p = notes__malloc(n + 2);
    if (p) {
        memcpy(p, log, n - 3);
        memcpy(p + n - 3, "snap", 5);
    }
    notes__free(log);
    return p;
}

void notes__doc_snap_free(struct notes__snap *s)
{
    if (!s)
        return;
    notes__free(s->file);
    notes__free(s->f);
    notes__free(s->ptrs);
    notes__free(s);
}

/* ---- reading ---- */

struct cursor {
    const uint8_t *p;
    size_t n, o;
    int bad;
};

static uint32_t cur_u32(struct cursor *c)
{
    if (c->bad || c->n - c->o < 4) {
        c->bad = 1;
        return 0;
    }
    uint32_t v = notes__load_u32le(c->p + c->o);
    c->o += 4;
    return v;
}

/* A string: u32 length, the bytes, a NUL (so it can be handed out as is). */
static const char *cur_str(struct cursor *c)
{
    uint32_t len = cur_u32(c);
    if (c->bad || c->n - c->o < (size_t)len + 1 || c->p[c->o + len] != 0 ||
        memchr(c->p + c->o, 0, len)) {
        c->bad = 1;
        return NULL;
    }
    const char *s = (const char *)c->p + c->o;
    c->o += (size_t)len + 1;
    return s;
}

/* An array of strings into pool[*k ...], NULL-terminated. */
static const char **cur_strs(struct cursor *c, const char **pool, size_t cap,
                             size_t *k)
{
    uint32_t n = cur_u32(c);
    if (c->bad || *k >= cap || n > cap - *k - 1) {
        c->bad = 1;
        return NULL;
    }
    const char **a = pool + *k;
    for (uint32_t i = 0; i < n; i++)
        a[i] = cur_str(c);
    a[n] = NULL;
    *k += (size_t)n + 1;
    return c->bad ? NULL : a;
}

/*
 * Parse and authenticate a snapshot file of note `id`: NOTES_OK and *out,
 * or NOTES_ECORRUPT for anything that is not one of ours, whole. Takes
 * ownership of `file`.
 */
static int snap_parse(uint8_t *file, size_t n, const uint8_t id[16],
                      const uint8_t key[32], uint64_t *end, uint8_t mac[32],
                      struct notes__snap **out)
{
    uint8_t want[32];
    struct notes__snap *s = NULL;
    *out = NULL;
    if (n < SNAP_HEADER + SNAP_MAC)
        goto bad;
    snap_mac(key, file, n - SNAP_MAC, want);
    if (!notes__equal(want, file + n - SNAP_MAC, SNAP_MAC) ||
        memcmp(file, snap_magic, 8) != 0 ||
        notes__load_u32le(file + 8) != SNAP_VERSION ||
        memcmp(file + 16, id, 16) != 0)
        goto bad;
    if (!(s = notes__calloc(1, sizeof(*s)))) {
        notes__free(file);
        return NOTES_ENOMEM;
    }
    s->file = file;
    *end = get_u64(file + 32);
    memcpy(mac, file + 40, 32);
    s->nchanges = get_u64(file + 72);
    s->my_seq = get_u64(file + 80);
    s->nheads = notes__load_u32le(file + 88);
    uint32_t nf = notes__load_u32le(file + 92);
    uint64_t nbytes = get_u64(file + 96);
    s->ncp = (size_t)get_u64(file + 104);
    struct cursor c = {file, n - SNAP_MAC, SNAP_HEADER, 0};
    if (s->nheads > (c.n - c.o) / 32)
        goto bad;
    s->heads = file + c.o;
    c.o += (size_t)s->nheads * 32;
    if (nbytes >= c.n - c.o || file[c.o + nbytes] != 0 || s->ncp > nbytes)
        goto bad;
    s->text = (const char *)file + c.o;
    s->nbytes = (size_t)nbytes;
    c.o += (size_t)nbytes + 1;
    /* Every string takes at least 5 bytes, every array 4: bound the
     * pointer pool by what the rest of the file could hold. */
    if (nf > (c.n - c.o) / 13)
        goto bad;
    size_t cap = (c.n - c.o) / 4 + 4 * (size_t)nf + 2, k = 0;
    if (!(s->f = notes__calloc(nf ? nf : 1, sizeof(*s->f))) ||
        !(s->ptrs = notes__calloc(cap, sizeof(*s->ptrs)))) {
        notes__doc_snap_free(s);
        return NOTES_ENOMEM;
    }
    s->nf = nf;
    for (uint32_t i = 0; i < nf && !c.bad; i++) {
        struct snap_field *f = &s->f[i];
        f->key = cur_str(&c);
        if (c.o >= c.n) {
            c.bad = 1;
            break;
        }
        uint8_t has = c.p[c.o++];
        f->value = has == 1 ? cur_str(&c) : NULL;
        if (has > 1)
            c.bad = 1;
        f->conflicts = cur_strs(&c, s->ptrs, cap, &k);
        f->list = cur_strs(&c, s->ptrs, cap, &k);
    }
    uint32_t nn = cur_u32(&c);
    if (c.bad || nn > nf || cap - k < (size_t)nn + 1)
        goto bad;
    s->names = s->ptrs + k;
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t fi = cur_u32(&c);
        if (fi >= nf) {
            c.bad = 1;
            break;
        }
        s->names[i] = s->f[fi].key;
    }
    s->names[nn] = NULL;
    if (c.bad || c.o != c.n)
        goto bad;
    *out = s;
    return NOTES_OK;
bad:
    if (s)
        notes__doc_snap_free(s);
    else
        notes__free(file);
    return NOTES_ECORRUPT;
}

static int has_head(const struct notes__snap *s, const uint8_t id[32])
{
    for (uint32_t i = 0; i < s->nheads; i++)
        if (memcmp(s->heads + 32 * (size_t)i, id, 32) == 0)
            return 1;
    return 0;
}

/*
 * Whether the state file, judging the log the snapshot stands for, would
 * find nothing to report (notes__doc_assess): then a lazy doc's verdict
 * (intact, no damage) is the one a replay would give.
 */
static int state_agrees(const notes_doc *d, const struct notes__snap *s,
                        uint64_t end, const uint8_t mac[32])
{
    const struct notes__state *st = &d->st;
    if (!st->present || st->damaged || st->verified_end != end ||
        !notes__equal(st->mac, mac, 32) || st->acked_end > end ||
        st->heads_total != st->nheads || st->nchanges > s->nchanges ||
        st->my_seq > s->my_seq)
        return 0;
    for (uint32_t i = 0; i < st->nheads; i++)
        if (!has_head(s, st->heads[i]))
            return 0;
    return 1;
}

int notes__doc_snap_try(notes_doc *d)
{
    struct notes__log *lg = d->log;
    uint8_t *file = NULL, mac[32];
    size_t n = 0;
    uint64_t end = 0;
    struct notes__snap *s = NULL;
    const struct notes__state *st = &d->st;
    if (!lg->keyed || lg->bad_header || lg->end != NOTES__LOG_HEADER)
        return 0;
    /* Cheapest refusals first: the state file must vouch for a prefix
     * (without it every signature is checked again anyway), and the
     * snapshot's header must name that prefix. */
    if (notes__doc_load_state(d) != NOTES_OK || !st->present || st->damaged ||
        !st->verified_end)
        return 0;
    char *path = snap_path(d);
    if (!path)
        return 0;
    int rc = notes__read_file(path, SNAP_MAX, &file, &n);
    notes__free(path);
    if (rc)
        return 0;
    if (n < SNAP_HEADER || get_u64(file + 32) != st->verified_end ||
        !notes__equal(file + 40, st->mac, 32)) {
        notes__free(file);
        return 0;
    }
    /* Then the log, byte for byte (a damaged, cut or grown log ends here),
     * and only then the snapshot's own MAC and contents. */
    if (notes__log_scan_mac(lg) != NOTES_OK || lg->end != st->verified_end ||
        !notes__equal(lg->mac, st->mac, 32)) {
        notes__free(file);
        notes__log_rewind(lg);
        return 0;
    }
    if (snap_parse(file, n, d->id, lg->key, &end, mac, &s) != NOTES_OK) {
        notes__log_rewind(lg); /* snap_parse took the file */
        return 0;
    }
    if (!state_agrees(d, s, end, mac)) {
        notes__doc_snap_free(s);
        notes__log_rewind(lg);
        return 0;
    }
    d->snap_known = 1; /* the file on disk is current: not rewritten */
    d->snap_end = end;
    memcpy(d->snap_mac, mac, 32);
    d->snap = s;
    d->lazy = 1;
    d->problem = NOTES_OK;
    d->damage[0] = 0;
    return 1;
}

/* ---- the lazy doc ---- */

int notes__doc_full(notes_doc *d)
{
    if (!d->lazy)
        return NOTES_OK;
    int rc = notes__replica_lock(d->r, 0);
    if (rc)
        return rc;
    /* The log this doc opened, up to where it was then, from the same file
     * (a compaction since replaced the name, not our descriptor): the doc
     * is what a replay at open would have built. What others appended
     * since comes in as it would have (refresh, commit, merge). */
    notes__log_rewind(d->log);
    d->log->read_limit = d->snap_end;
    rc = notes__doc_read_log(d);
    d->log->read_limit = 0;
    if (rc == NOTES_OK && (d->log->end != d->snap_end ||
                           !notes__equal(d->log->mac, d->snap_mac, 32))) {
        /* The file was changed in place (cut, repaired) since: the log as
         * it is now, judged as an open would judge it. */
        d->nbad = 0;
        d->tainted = 0;
        if ((rc = notes__doc_truncate_entries(d, 0)) == NOTES_OK) {
            notes__log_rewind(d->log);
            rc = notes__doc_read_new(d);
        }
    }
    notes__replica_unlock(d->r);
    if (rc) {
        /* As it was: the next call tries again from the start. */
        d->nbad = 0;
        d->tainted = 0;
        int rc2 = notes__doc_truncate_entries(d, 0);
        (void)rc2;
        notes__log_rewind(d->log);
        return rc;
    }
    /* The snapshot's text stays until the doc is freed: a caller may still
     * hold what notes_doc_text returned. */
    d->lazy = 0;
    return NOTES_OK;
}

int notes__doc_full_c(const notes_doc *d)
{
    union {
        const notes_doc *c;
        notes_doc *m;
    } u = {d};
    return notes__doc_full(u.m);
}

const char *notes__snap_text(const notes_doc *d, size_t *nbytes, size_t *ncp)
{
    if (nbytes)
        *nbytes = d->snap->nbytes;
    if (ncp)
        *ncp = d->snap->ncp;
    return d->snap->text;
}

static const struct snap_field *snap_find(const notes_doc *d, const char *key)
{
    for (size_t i = 0; i < d->snap->nf; i++)
        if (strcmp(d->snap->f[i].key, key) == 0)
            return &d->snap->f[i];
    return NULL;
}

const char *notes__snap_field(const notes_doc *d, const char *key)
{
    const struct snap_field *f = snap_find(d, key);
    return f ? f->value : NULL;
}

const char *const *notes__snap_conflicts(const notes_doc *d, const char *key)
{
    const struct snap_field *f = snap_find(d, key);
    return f ? f->conflicts : no_strings;
}

const char *const *notes__snap_list(const notes_doc *d, const char *key)
{
    const struct snap_field *f = snap_find(d, key);
    return f ? f->list : no_strings;
}

const char *const *notes__snap_names(const notes_doc *d)
{
    return d->snap->names;
}

int notes__snap_heads(const notes_doc *d, uint8_t (**out)[32], size_t *n)
{
    uint32_t k = d->snap->nheads;
    *n = 0;
    if (!(*out = notes__malloc((k ? k : 1) * (size_t)32)))
        return NOTES_ENOMEM;
    if (k)
        memcpy(*out, d->snap->heads, (size_t)k * 32);
    *n = k;
    return NOTES_OK;
}

/* ---- writing ---- */

static int put_str(struct notes_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT32_MAX)
        return NOTES_ETOOBIG;
    int rc = notes__buf_put_u32le(b, (uint32_t)n);
    if (rc == NOTES_OK)
        rc = notes__buf_put(b, s, n + 1);
    return rc;
}

static int put_strs(struct notes_buf *b, const char *const *v)
{
    uint32_t n = 0;
    while (v[n])
        n++;
    int rc = notes__buf_put_u32le(b, n);
    for (uint32_t i = 0; i < n && rc == NOTES_OK; i++)
        rc = put_str(b, v[i]);
    return rc;
}

static int snap_encode(notes_doc *d, struct notes_buf *b)
{
    uint8_t h[SNAP_HEADER] = {0}, (*heads)[32] = NULL;
    uint32_t nh = 0;
    size_t nbytes, ncp;
    const uint8_t *mine;
    const char *text = notes__oplog_text(d->op, &nbytes, &ncp);
    if (!text)
        return NOTES_ENOMEM;
    int rc = notes__doc_heads_raw(d, &heads, &nh);
    if (rc)
        return rc;
    const char *const *names = notes_doc_fields(d);
    memcpy(h, snap_magic, 8);
    notes__store_u32le(h + 8, SNAP_VERSION);
    memcpy(h + 16, d->id, 16);
    put_u64(h + 32, d->log->end);
    memcpy(h + 40, d->log->mac, 32);
    put_u64(h + 72, d->ne);
    put_u64(h + 80, notes__doc_my_last_change(d, &mine));
    notes__store_u32le(h + 88, nh);
    notes__store_u32le(h + 92, (uint32_t)d->nf);
    put_u64(h + 96, nbytes);
    put_u64(h + 104, ncp);
    rc = notes__buf_reserve(b, SNAP_HEADER + 32 * (size_t)nh + nbytes + 64);
    if (rc == NOTES_OK)
        rc = notes__buf_put(b, h, sizeof(h));
    if (rc == NOTES_OK && nh)
        rc = notes__buf_put(b, heads, 32 * (size_t)nh);
    notes__free(heads);
    if (rc == NOTES_OK)
        rc = notes__buf_put(b, text, nbytes + 1);
    /* Every field the doc knows, as its getters answer now. */
    for (size_t i = 0; i < d->nf && rc == NOTES_OK; i++) {
        const char *key = d->f[i].key;
        const char *v = notes_doc_field(d, key);
        if ((rc = put_str(b, key)) == NOTES_OK &&
            (rc = notes__buf_put_u8(b, v != NULL)) == NOTES_OK && v)
            rc = put_str(b, v);
        if (rc == NOTES_OK)
            rc = put_strs(b, notes_doc_field_conflicts(d, key));
        if (rc == NOTES_OK)
            rc = put_strs(b, notes_doc_list(d, key));
    }
    uint32_t nn = 0;
    while (names[nn])
        nn++;
    if (rc == NOTES_OK)
        rc = notes__buf_put_u32le(b, nn);
    for (uint32_t i = 0; i < nn && rc == NOTES_OK; i++) {
        size_t fi = 0;
        while (fi < d->nf && d->f[fi].key != names[i])
            fi++;
        rc = fi < d->nf ? notes__buf_put_u32le(b, (uint32_t)fi) : NOTES_EINVAL;
    }
    if (rc == NOTES_OK) {
        uint8_t mac[32];
        snap_mac(d->log->key, b->data, b->len, mac);
        rc = notes__buf_put(b, mac, sizeof(mac));
    }
    return rc;
}

/*
 * Write the snapshot of the doc as it stands, which must be the state of
 * its log from the first record to d->log->end: call with the replica's
 * lock held, right after the log was read or written. Best effort (a cache:
 * no error is reported, nothing is fsynced; a torn file fails its MAC and
 * is rebuilt). Skipped when the state is not simply the log's (pending
 * edits, refused changes, damage) or the file is already current.
 */
void notes__doc_snap_save(notes_doc *d, int always)
{
    struct notes__log *lg = d->log;
    struct stat st;
    /* Writing costs about what hashing the text costs: next to a commit's
     * fsync that is nothing for a note of up to a megabyte. Larger ones
     * get theirs when compacted (every 256 records, or notes compact). */
    if (!always && notes__tbuf_bytes(&d->op->text) > NOTES__SNAP_EAGER_MAX)
        return;
    /* A deferred write (a daemon's live path): the snapshot follows the
     * state in notes_doc_flush, once for what came meanwhile, not once a
     * keystroke; until then the state does not vouch for this end anyway. */
    if (d->dirty)
        return;
    if (!d->r || !lg || !lg->keyed || d->lazy || d->has_pend || d->tainted ||
        d->nbad || d->problem || lg->damaged || lg->bad_header || !d->ne ||
        (d->snap_known && d->snap_end == lg->end &&
         notes__equal(d->snap_mac, lg->mac, 32)))
        return;
    /* Only the log's latest state: another process may have appended. */
    if (fstat(lg->fd, &st) != 0 || (uint64_t)st.st_size != lg->end)
        return;
    struct notes_buf b;
    notes__buf_init(&b, SNAP_MAX);
    char *path = snap_path(d), *tmp = NULL;
    int rc = path ? snap_encode(d, &b) : NOTES_ENOMEM;
    size_t plen = path ? strlen(path) + 24 : 0;
    if (rc == NOTES_OK && !(tmp = notes__malloc(plen)))
        rc = NOTES_ENOMEM;
    if (rc == NOTES_OK) {
        snprintf(tmp, plen, "%s.tmp%ld", path, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || notes__write_all(fd, b.data, b.len, 0) != 0)
            rc = NOTES_EIO;
        if (fd >= 0 && close(fd) != 0)
            rc = NOTES_EIO;
        if (rc == NOTES_OK && rename(tmp, path) != 0)
            rc = NOTES_EIO;
        if (rc)
            unlink(tmp);
    }
    if (rc == NOTES_OK) {
        d->snap_known = 1;
        d->snap_end = lg->end;
        memcpy(d->snap_mac, lg->mac, 32);
    }
    notes__free(tmp);
    notes__free(path);
    notes__buf_release(&b);
}
