/*
 * versions.c: each note's version (its heads and their digest) for
 * reconciliation, without opening every note's log.
 *
 * Opening a note verifies its whole log (milliseconds for a long one), and
 * a space of thousands of notes that did not change would pay that on each
 * sync. So the versions are cached in $NOTES_HOME/spaces/NAME.versions,
 * keyed by the log file's stamp (size, mtime and ctime in ns, inode): a log
 * is append-only, so any write to it, a compaction (a new file) or a
 * restored copy changes the stamp, and a stat per note decides whether the
 * cached heads still hold. A note whose stamp changed is opened (and
 * verified) once and its entry replaced. The cache is only a cache: a
 * missing, torn or foreign file is rebuilt from the logs, and it is
 * written without fsync (a crash loses at most the work of rebuilding).
 *
 * File: "notes-sync-versions 1\n", then per note (sorted by id):
 * id 16 | size 8 | mtime_ns 8 | ctime_ns 8 | inode 8 | digest 16 |
 * nheads u32 | nheads x 32 heads, then BLAKE2b-256 of all before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session_internal.h"

#define VMAGIC "notes-sync-versions 1\n"
#define VMAGIC_LEN 22
#define VFILE_MAX (256u << 20)
#define VMAX_HEADS 4096

struct vstamp {
    uint64_t size, mtime, ctime, ino;
};

/* dirfd: the notes folder, or AT_FDCWD with a whole path. */
static int stamp_at(int dirfd, const char *path, struct vstamp *st)
{
    struct stat sb;
    if (fstatat(dirfd, path, &sb, 0) != 0)
        return errno == ENOENT ? NOTES_ENOTFOUND : NOTES_EIO;
    st->size = (uint64_t)sb.st_size;
    st->mtime = (uint64_t)sb.st_mtim.tv_sec * 1000000000u +
                (uint64_t)sb.st_mtim.tv_nsec;
    st->ctime = (uint64_t)sb.st_ctim.tv_sec * 1000000000u +
                (uint64_t)sb.st_ctim.tv_nsec;
    st->ino = (uint64_t)sb.st_ino;
    return NOTES_OK;
}

/* The cached file, checked; NULL data when absent or unusable. Records
 * are found by a scan that builds an index of offsets. */
struct vcache {
    uint8_t *data;
    size_t len;
    size_t *at; /* offset of each record */
    size_t n;
};

static void vcache_load(const char *path, struct vcache *c)
{
    uint8_t sum[32];
    size_t off = VMAGIC_LEN, cap = 0;
    memset(c, 0, sizeof(*c));
    if (notes__read_file(path, VFILE_MAX, &c->data, &c->len) != NOTES_OK)
        return;
    if (c->len < VMAGIC_LEN + 32 || memcmp(c->data, VMAGIC, VMAGIC_LEN) != 0)
        goto bad;
    notes__hash(sum, 32, c->data, c->len - 32, NULL, 0);
    if (memcmp(sum, c->data + c->len - 32, 32) != 0)
        goto bad;
    while (off < c->len - 32) {
        uint32_t nh;
        if (c->len - 32 - off < 84)
            goto bad;
        nh = notes__load_u32le(c->data + off + 80);
        if (nh > VMAX_HEADS || (c->len - 32 - off - 84) / 32 < nh)
            goto bad;
        if (c->n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            size_t *na = realloc(c->at, nc * sizeof(*na));
            if (!na)
                goto bad;
            c->at = na;
            cap = nc;
        }
        if (c->n && memcmp(c->data + c->at[c->n - 1], c->data + off, 16) >= 0)
            goto bad;
        c->at[c->n++] = off;
        off += 84 + (size_t)nh * 32;
    }
    return;
bad:
    notes_free(c->data);
    free(c->at);
    memset(c, 0, sizeof(*c));
}

void notes_sync__versions_free(struct note_version *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        notes_free(v[i].heads);
    free(v);
}

static int vsave(const char *path, const struct note_version *v, size_t n)
{
    struct notes_buf b;
    char *tmp;
    int rc = NOTES_OK, fd;
    uint8_t rec[84], sum[32];
    notes__buf_init(&b, SIZE_MAX / 4);
    rc = notes__buf_put(&b, VMAGIC, VMAGIC_LEN);
    for (size_t i = 0; i < n && !rc; i++) {
        memcpy(rec, v[i].id, 16);
        notes__store_u64le(rec + 16, v[i].size);
        notes__store_u64le(rec + 24, v[i].mtime);
        notes__store_u64le(rec + 32, v[i].ctime);
        notes__store_u64le(rec + 40, v[i].ino);
        memcpy(rec + 48, v[i].digest, 16);
        memset(rec + 64, 0, 16);
        notes__store_u32le(rec + 80, (uint32_t)v[i].nheads);
        if (!(rc = notes__buf_put(&b, rec, sizeof(rec))))
            rc = notes__buf_put(&b, v[i].heads, v[i].nheads * 32);
    }
    if (!rc) {
        notes__hash(sum, 32, b.data, b.len, NULL, 0);
        rc = notes__buf_put(&b, sum, 32);
    }
    tmp = rc ? NULL : malloc(strlen(path) + 32);
    if (!rc && !tmp)
        rc = NOTES_ENOMEM;
    if (!rc) {
        snprintf(tmp, strlen(path) + 32, "%s.tmp%ld", path, (long)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = NOTES_EIO;
        else {
            size_t off = 0;
            while (off < b.len) {
                ssize_t w = write(fd, b.data + off, b.len - off);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            if (close(fd) != 0 || off != b.len || rename(tmp, path) != 0) {
                (void)unlink(tmp);
                rc = NOTES_EIO;
            }
        }
    }
    free(tmp);
    notes__buf_release(&b);
    return rc;
}

static char *cache_path(notes_sync_session *s)
{
    const char *home = notes_replica_home(s->replica);
    size_t n = strlen(home) + sizeof("/spaces/.versions") + NOTES_SPACE_NAME_MAX;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/spaces/%s.versions", home, s->spaces[s->space].name);
    return p;
}

/*
 * The log is stamped first, then the copy caught up with it: when that
 * brings nothing new, the heads are exactly those of the log as stamped
 * (a writer appending meanwhile changes the stamp, so its change is not
 * hidden behind the older heads).
 */
void notes_sync__versions_learn(notes_sync_session *s, const uint8_t id[16],
                                notes_doc *d)
{
    char path[4200], hex[33];
    struct vstamp st;
    struct note_version *e;
    size_t before = notes_doc_change_count(d);
    if (!s->replica)
        return;
    const char *home = notes_replica_home(s->replica);
    if (strlen(home) > 4096)
        return;
    notes__hex(hex, id, 16);
    snprintf(path, sizeof(path), "%s/notes/%s.log", home, hex);
    if (stamp_at(AT_FDCWD, path, &st) != NOTES_OK ||
        notes_doc_refresh(d) != NOTES_OK ||
        notes_doc_change_count(d) != before)
        return;
    if (s->nlearned == s->clearned) {
        size_t nc = s->clearned ? s->clearned * 2 : 64;
        struct note_version *nv = realloc(s->learned, nc * sizeof(*nv));
        if (!nv)
            return;
        s->learned = nv;
        s->clearned = nc;
    }
    e = &s->learned[s->nlearned];
    memset(e, 0, sizeof(*e));
    if (notes_doc_heads(d, &e->heads, &e->nheads) != NOTES_OK)
        return;
    memcpy(e->id, id, 16);
    notes__hash(e->digest, 16, (const uint8_t *)e->heads, e->nheads * 32, NULL, 0);
    e->size = st.size;
    e->mtime = st.mtime;
    e->ctime = st.ctime;
    e->ino = st.ino;
    s->nlearned++;
}

static int cmp_version(const void *a, const void *b)
{
    return memcmp(((const struct note_version *)a)->id,
                  ((const struct note_version *)b)->id, 16);
}

void notes_sync__versions_flush(notes_sync_session *s)
{
    struct vcache c;
    struct note_version *v;
    size_t n = 0, j = 0;
    char *path;
    if (!s->nlearned || !s->replica || !(path = cache_path(s)))
        return;
    qsort(s->learned, s->nlearned, sizeof(*s->learned), cmp_version);
    vcache_load(path, &c);
    v = calloc(c.n + s->nlearned + 1, sizeof(*v));
    for (size_t i = 0; v && (i < c.n || j < s->nlearned);) {
        const uint8_t *rec = i < c.n ? c.data + c.at[i] : NULL;
        int k = !rec ? 1 : j == s->nlearned ? -1 : memcmp(rec, s->learned[j].id, 16);
        if (k < 0) {
            struct note_version *e = &v[n++];
            memcpy(e->id, rec, 16);
            e->size = notes__load_u64le(rec + 16);
            e->mtime = notes__load_u64le(rec + 24);
            e->ctime = notes__load_u64le(rec + 32);
            e->ino = notes__load_u64le(rec + 40);
            memcpy(e->digest, rec + 48, 16);
            e->nheads = notes__load_u32le(rec + 80);
            e->heads = malloc(e->nheads * 32 + 1);
            if (!e->heads) {
                n--;
                break;
            }
            memcpy(e->heads, rec + 84, e->nheads * 32);
            i++;
        } else {
            /* learned wins; a later duplicate of the same id too */
            v[n] = s->learned[j];
            s->learned[j].heads = NULL;
            while (j + 1 < s->nlearned &&
                   !memcmp(s->learned[j + 1].id, v[n].id, 16)) {
                notes_free(v[n].heads);
                v[n] = s->learned[++j];
                s->learned[j].heads = NULL;
            }
            n++;
            j++;
            i += k == 0;
        }
    }
    if (v && (vsave(path, v, n) != NOTES_OK)) {
        /* not cached: the next sync opens those notes */
    }
    notes_sync__versions_free(v, n);
    notes_free(c.data);
    free(c.at);
    free(path);
    for (size_t i = 0; i < s->nlearned; i++)
        notes_free(s->learned[i].heads);
    s->nlearned = 0;
}

int notes_sync__versions(notes_sync_session *s, struct note_version **out,
                         size_t *nout)
{
    const char *home = notes_replica_home(s->replica);
    const char *space = s->spaces[s->space].name;
    size_t hl = strlen(home), k = 0, changed = 0;
    char *cpath = malloc(hl + sizeof("/spaces/.versions") + NOTES_SPACE_NAME_MAX);
    char *lpath = malloc(hl + sizeof("/notes"));
    struct note_version *v = calloc(s->nours + 1, sizeof(*v));
    struct vcache c;
    int rc = NOTES_OK, dirfd = -1;
    size_t at = 0; /* the cache's records are sorted as ours: one walk */
    char name[37];
    *out = NULL;
    *nout = 0;
    if (!cpath || !lpath || !v) {
        free(cpath);
        free(lpath);
        free(v);
        return NOTES_ENOMEM;
    }
    sprintf(cpath, "%s/spaces/%s.versions", home, space);
    sprintf(lpath, "%s/notes", home);
    vcache_load(cpath, &c);
    /* One stat per note, relative to the folder (no path walk each). */
    dirfd = open(lpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    memcpy(name + 32, ".log", 5);
    for (size_t i = 0; i < s->nours && !rc; i++) {
        const uint8_t *id = s->ours[i];
        struct note_version *e = &v[k];
        struct vstamp st;
        const uint8_t *rec = NULL;
        notes__hex(name, id, 16);
        name[32] = '.';
        rc = dirfd < 0 ? NOTES_ENOTFOUND : stamp_at(dirfd, name, &st);
        while (at < c.n && memcmp(c.data + c.at[at], id, 16) < 0)
            at++;
        if (at < c.n && !memcmp(c.data + c.at[at], id, 16))
            rec = c.data + c.at[at];
        if (rc == NOTES_ENOTFOUND) {
            rc = NOTES_OK; /* no log: not an item */
            changed += rec != NULL;
            continue;
        }
        if (rc) {
            notes_sync__detail("cannot stat '%s/%s'", lpath, name);
            break;
        }
        memcpy(e->id, id, 16);
        e->size = st.size;
        e->mtime = st.mtime;
        e->ctime = st.ctime;
        e->ino = st.ino;
        if (rec && notes__load_u64le(rec + 16) == st.size && notes__load_u64le(rec + 24) == st.mtime &&
            notes__load_u64le(rec + 32) == st.ctime && notes__load_u64le(rec + 40) == st.ino) {
            e->nheads = notes__load_u32le(rec + 80);
            if (!(e->heads = malloc(e->nheads * 32 + 1))) {
                rc = NOTES_ENOMEM;
                break;
            }
            memcpy(e->heads, rec + 84, e->nheads * 32);
            memcpy(e->digest, rec + 48, 16);
            k++;
            continue;
        }
        /* Stale or unknown: open (verify) the note once. */
        notes_doc *d = NULL;
        char hex[33];
        notes__hex(hex, id, 16);
        rc = notes_doc_open(s->replica, id, &d);
        if (rc == NOTES_ENOTFOUND) {
            rc = NOTES_OK;
            continue;
        }
        s->report.notes_opened += !rc;
        if (!rc)
            rc = notes_doc_heads(d, &e->heads, &e->nheads);
        notes_doc_free(d);
        if (rc) {
            rc = notes_sync__from_notes(rc, hex);
            break;
        }
        notes__hash(e->digest, 16, (const uint8_t *)e->heads, e->nheads * 32,
                    NULL, 0);
        changed++;
        k++;
    }
    changed += c.n > k; /* entries of notes gone from the space */
    if (dirfd >= 0)
        close(dirfd);
    notes_free(c.data);
    free(c.at);
    if (!rc && changed && vsave(cpath, v, k) != NOTES_OK) {
        /* not cached: the next sync opens those notes again */
    }
    free(cpath);
    free(lpath);
    if (rc) {
        notes_sync__versions_free(v, k);
        return rc;
    }
    *out = v;
    *nout = k;
    return NOTES_OK;
}
