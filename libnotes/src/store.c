/*
 * store.c: the append-only log file of one document, and file helpers.
 *
 * File  = header (32 B) then records. Record = header (32 B) then payload.
 * The record checksum (BLAKE2b-128 over the record header's first 16 bytes
 * and the stored payload) tells a complete record from a torn or damaged
 * one; signatures inside tell forged from authentic. docs/format.md has the
 * byte layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pack.h"
#include "store.h"

static const uint8_t log_magic[8] = {'N', 'O', 'T', 'E', 'S', 'L', 'O', 'G'};
#define LOG_VERSION 1u
#define REC_MAGIC 0x4345524eu /* "NREC" little-endian */

static int io_fail(const char *what, const char *path)
{
    int e = errno;
    notes__set_detail("%s '%s': %s", what, path, strerror(e));
    return NOTES_EIO;
}

int notes__write_all(int fd, const void *buf, size_t n, off_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Reads exactly n bytes unless EOF comes first; returns bytes read or -1. */
static ssize_t read_full(int fd, uint8_t *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Open directory `dir` and make its entries (fsync) or its whole
 * filesystem (syncfs) durable. */
static int sync_dir(const char *dir, int (*how)(int), const char *what)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_fail("cannot open directory", dir);
    int rc = how(fd) == 0 ? NOTES_OK : io_fail(what, dir);
    close(fd);
    return rc;
}

int notes__fsync_dir(const char *dir)
{
    return sync_dir(dir, fsync, "cannot fsync");
}

static int fsync_parent(const char *path)
{
    char *copy = notes__strdup(path);
    if (!copy)
        return NOTES_ENOMEM;
    int rc = notes__fsync_dir(dirname(copy));
    notes__free(copy);
    return rc;
}

/*
 * Write a complete file "PATH.tmpPID" (mode, fsynced, closed) for the
 * caller to rename or link into place. OUT *tmp: its malloc'd name, set
 * even on failure when allocated (the caller unlinks and frees it).
 */
static int write_temp(const char *path, const void *p, size_t n, int mode,
                      char **tmp)
{
    size_t plen = strlen(path);
    int fd;
    if (!(*tmp = notes__malloc(plen + 16)))
        return NOTES_ENOMEM;
    snprintf(*tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return io_fail("cannot create", *tmp);
    if (fchmod(fd, (mode_t)mode) != 0 || notes__write_all(fd, p, n, 0) != 0 ||
        fsync(fd) != 0) {
        close(fd);
        return io_fail("cannot write", *tmp);
    }
    if (close(fd) != 0)
        return io_fail("cannot write", *tmp);
    return NOTES_OK;
}

int notes__write_file_atomic(const char *path, const void *p, size_t n, int mode)
{
    char *tmp = NULL;
    int rc = write_temp(path, p, n, mode, &tmp);
    if (rc == NOTES_OK && rename(tmp, path) != 0)
        rc = io_fail("cannot rename onto", path);
    if (rc == NOTES_OK)
        rc = fsync_parent(path);
    if (rc && tmp)
        unlink(tmp);
    notes__free(tmp);
    return rc;
}

int notes__write_file_excl(const char *path, const void *p, size_t n,
                           int mode)
{
    char *tmp = NULL;
    int rc = write_temp(path, p, n, mode, &tmp);
    /* link() never replaces: the file appears whole, or not at all. */
    if (rc == NOTES_OK && link(tmp, path) != 0) {
        if (errno == EEXIST) {
            notes__set_detail("'%s' exists", path);
            rc = NOTES_EEXIST;
        } else {
            rc = io_fail("cannot create", path);
        }
    }
    if (tmp)
        unlink(tmp);
    if (rc == NOTES_OK && (rc = fsync_parent(path)) != NOTES_OK)
        unlink(path); /* not durably there: as if never created */
    notes__free(tmp);
    return rc;
}

int notes__read_file(const char *path, size_t max, uint8_t **out, size_t *n)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *out = NULL;
    *n = 0;
    if (fd < 0) {
        if (errno == ENOENT) {
            notes__set_detail("'%s' does not exist", path);
            return NOTES_ENOTFOUND;
        }
        return io_fail("cannot open", path);
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return io_fail("cannot stat", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        notes__set_detail("'%s' is %lld bytes, more than the %zu allowed",
                          path, (long long)st.st_size, max);
        return NOTES_ETOOBIG;
    }
    uint8_t *buf = notes__malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return NOTES_ENOMEM;
    }
    ssize_t got = read_full(fd, buf, (size_t)st.st_size, 0);
    close(fd);
    if (got < 0) {
        notes__free(buf);
        return io_fail("cannot read", path);
    }
    buf[got] = 0;
    *out = buf;
    *n = (size_t)got;
    return NOTES_OK;
}

/* Read-write when allowed; a reader with read-only access still reads
 * (its writes then fail with an I/O error naming the file). */
static int open_rw(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
        fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd;
}

/* ---- log header ---- */

static void make_header(uint8_t h[NOTES__LOG_HEADER], const uint8_t doc[16])
{
    uint8_t sum[32];
    memcpy(h, log_magic, 8);
    notes__store_u32le(h + 8, LOG_VERSION);
    memcpy(h + 12, doc, 16);
    notes__hash(sum, 32, h, 28, NULL, 0);
    memcpy(h + 28, sum, 4);
}

void notes__log_close(struct notes__log *lg)
{
    if (!lg)
        return;
    if (lg->fd >= 0)
        close(lg->fd);
    notes__free(lg->path);
    notes__free(lg);
}

/*
 * Create the log file with its header in one step: a temporary file,
 * fsynced, then linked (or, over a torn creation, renamed) into place, so
 * a crash never leaves a log without a complete header. durable 0 (a merge
 * whose durability is deferred, create == 2 in notes__log_open, replacing
 * a torn creation; a new log is then created in place): neither the file
 * nor the directory is synced here; the first synced write or
 * notes__log_sync does both (lg->unsynced_name). Until then a crash of the
 * machine can leave the name with a prefix of what was written (a file's
 * size reaches the disk after its data on the filesystems libnotes is used
 * on: ext4 ordered, xfs, btrfs): a torn creation or a torn tail past a
 * state that does not exist yet, both read as unacknowledged, never as
 * damage (docs/format.md, "A torn creation").
 */
static int create_log(const char *path, const uint8_t h[NOTES__LOG_HEADER],
                      int replace, int durable)
{
    size_t plen = strlen(path);
    char *tmp = notes__malloc(plen + 24);
    int rc = NOTES_OK, fd;
    if (!tmp)
        return NOTES_ENOMEM;
    snprintf(tmp, plen + 24, "%s.new%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || notes__write_all(fd, h, NOTES__LOG_HEADER, 0) != 0 ||
        (durable && fsync(fd) != 0)) {
        rc = io_fail("cannot create", tmp);
    } else if (replace ? rename(tmp, path) != 0
                       : (link(tmp, path) != 0 && errno != EEXIST)) {
        rc = io_fail("cannot create", path);
    }
    if (fd >= 0)
        close(fd);
    unlink(tmp); /* after link(); a no-op after rename() */
    if (rc == NOTES_OK && durable && (rc = fsync_parent(path)) != NOTES_OK &&
        !replace)
        unlink(path); /* not durably there: as if never created */
    notes__free(tmp);
    return rc;
}

int notes__log_open(const char *path, const uint8_t doc[16], int create,
                    struct notes__log **out)
{
    uint8_t want[NOTES__LOG_HEADER], have[NOTES__LOG_HEADER] = {0};
    int rc;
    struct notes__log *lg = notes__calloc(1, sizeof(*lg));

    *out = NULL;
    if (!lg)
        return NOTES_ENOMEM;
    lg->fd = -1;
    lg->path = notes__strdup(path);
    if (!lg->path) {
        rc = NOTES_ENOMEM;
        goto fail;
    }
    memcpy(lg->doc, doc, 16);
    make_header(want, doc);
    for (int attempt = 0;; attempt++) {
        lg->fd = open_rw(path);
        if (lg->fd < 0 && errno == ENOENT && create == 2 && attempt == 0) {
            /* Unsynced anyway: created in place, no temporary file to
             * link and remove. Under the exclusive lock no reader sees the
             * header half written; a crash of the process or the machine
             * leaves a prefix of it, a torn creation (below). */
            lg->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (lg->fd < 0 && errno == EEXIST)
                continue; /* made meanwhile: read it as any log */
            if (lg->fd < 0) {
                rc = io_fail("cannot create", path);
                goto fail;
            }
            if (notes__write_all(lg->fd, want, NOTES__LOG_HEADER, 0) != 0) {
                rc = io_fail("cannot create", path);
                (void)unlink(path);
                goto fail;
            }
            lg->unsynced_name = 1;
            memcpy(have, want, sizeof(have));
            break;
        }
        if (lg->fd < 0 && errno == ENOENT && create && attempt == 0) {
            if ((rc = create_log(path, want, 0, create != 2)))
                goto fail;
            lg->unsynced_name = create == 2;
            continue;
        }
        if (lg->fd < 0) {
            if (errno == ENOENT) {
                notes__set_detail("no log at '%s'", path);
                rc = NOTES_ENOTFOUND;
            } else {
                rc = io_fail("cannot open", path);
            }
            goto fail;
        }
        ssize_t got = read_full(lg->fd, have, sizeof(have), 0);
        if (got < 0) {
            rc = io_fail("cannot read", path);
            goto fail;
        }
        if (got < (ssize_t)sizeof(have) &&
            memcmp(have, want, (size_t)got) == 0) {
            /* A creation torn by a crash (the header written in place, by
             * an older version or by a deferred creation, create == 2):
             * nothing was ever committed here. */
            if (!create || attempt > 0) {
                notes__set_detail("'%s' holds no commit yet", path);
                rc = NOTES_ENOTFOUND;
                goto fail;
            }
            close(lg->fd);
            lg->fd = -1;
            if ((rc = create_log(path, want, 1, create != 2)))
                goto fail;
            lg->unsynced_name = create == 2;
            continue;
        }
        break;
    }
    uint8_t sum[32];
    notes__hash(sum, 32, have, 28, NULL, 0);
    if (memcmp(have, log_magic, 8) == 0 && memcmp(have + 28, sum, 4) == 0 &&
        notes__load_u32le(have + 8) != LOG_VERSION) {
        /* An intact header of another format version: not damage. */
        notes__set_detail("'%s' has log format version %u; this notes reads %u",
                          path, notes__load_u32le(have + 8), LOG_VERSION);
        rc = NOTES_EVERSION;
        goto fail;
    }
    if (memcmp(have, want, sizeof(want)) != 0) {
        /* Damaged, or the log of another note put in this one's place:
         * nothing in it can be read as this note's. The log still opens
         * (so the damage can be reported and the file set aside by a
         * writer); it reads as empty. */
        struct stat st;
        if (fstat(lg->fd, &st) != 0) {
            rc = io_fail("cannot stat", path);
            goto fail;
        }
        lg->bad_header = 1;
        lg->end = 0;
        lg->damaged = (uint64_t)st.st_size;
        snprintf(lg->damage, sizeof(lg->damage), "%s at offset 0 (%llu bytes)",
                 memcmp(have, log_magic, 8) != 0 || memcmp(have + 28, sum, 4) != 0
                     ? "damaged log header"
                     : "log header of another note",
                 (unsigned long long)st.st_size);
        *out = lg;
        return NOTES_OK;
    }
    lg->end = NOTES__LOG_HEADER;
    *out = lg;
    return NOTES_OK;
fail:
    notes__log_close(lg);
    return rc;
}

/* ---- local MAC ---- */

static void mac_step(struct notes__log *lg, const uint8_t *a, size_t na,
                     const uint8_t *b, size_t nb)
{
    notes__hash_state st;
    if (!lg->keyed)
        return;
    notes__hash_init(&st, lg->key, 32, 32);
    notes__hash_update(&st, lg->mac, 32);
    notes__hash_update(&st, a, na);
    notes__hash_update(&st, b, nb);
    notes__hash_final(&st, lg->mac, 32);
}

static void mac_start(struct notes__log *lg)
{
    uint8_t h[NOTES__LOG_HEADER];
    make_header(h, lg->doc);
    memset(lg->mac, 0, 32);
    mac_step(lg, h, sizeof(h), NULL, 0);
}

void notes__log_use_key(struct notes__log *lg, const uint8_t key[32])
{
    lg->keyed = 1;
    memcpy(lg->key, key, 32);
    mac_start(lg);
}

void notes__log_set_trusted(struct notes__log *lg, uint64_t end,
                            const uint8_t mac[32])
{
    lg->trusted_end = end;
    memcpy(lg->trusted_mac, mac, 32);
}

/* ---- payload ---- */

int notes__payload_encode(struct notes_buf *out, const uint8_t *const *changes,
                          const size_t *lens, size_t n)
{
    int rc = notes__buf_put_varint(out, n);
    for (size_t i = 0; i < n && !rc; i++)
        rc = notes__buf_put_bytes(out, changes[i], lens[i]);
    return rc;
}

int notes__payload_decode(const uint8_t *p, size_t n, notes__change_cb cb,
                          void *ctx)
{
    struct notes_reader r;
    uint64_t count;
    notes__reader_init(&r, p, n);
    if (notes__get_varint(&r, &count) || count > n) {
        notes__set_detail("bad change count in record");
        return NOTES_ECORRUPT;
    }
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *c;
        size_t clen;
        if (notes__get_bytes(&r, n, &c, &clen)) {
            notes__set_detail("change %llu of record is truncated",
                              (unsigned long long)i);
            return NOTES_ECORRUPT;
        }
        int rc = cb(ctx, c, clen, NULL);
        if (rc)
            return rc;
    }
    if (notes__reader_left(&r)) {
        notes__set_detail("trailing bytes after the changes of a record");
        return NOTES_ECORRUPT;
    }
    return NOTES_OK;
}

/* ---- records ---- */

static void rec_sum(uint8_t sum[16], const uint8_t *hdr, const uint8_t *payload,
                    size_t n)
{
    notes__hash_state st;
    notes__hash_init(&st, NULL, 0, 16);
    notes__hash_update(&st, hdr, 16);
    notes__hash_update(&st, payload, n);
    notes__hash_final(&st, sum, 16);
}

static void set_damage(struct notes__log *lg, uint64_t filesize,
                       const char *why, int torn)
{
    lg->damaged = filesize - lg->end;
    lg->torn = torn;
    snprintf(lg->damage, sizeof(lg->damage),
             "%s at offset %llu (%llu bytes after the last intact record)", why,
             (unsigned long long)lg->end, (unsigned long long)lg->damaged);
}

struct counting {
    notes__change_cb cb;
    void *ctx;
    size_t n;
};

static int count_cb(void *ctx, const uint8_t *p, size_t n, const uint8_t *id)
{
    struct counting *c = ctx;
    c->n++;
    return c->cb(c->ctx, p, n, id);
}

int notes__log_read(struct notes__log *lg, notes__change_cb user_cb,
                    void *user_ctx)
{
    struct counting counter = {user_cb, user_ctx, 0};
    notes__change_cb cb = count_cb;
    void *ctx = &counter;
    struct stat st;
    uint8_t hdr[NOTES__REC_HEADER], sum[16];
    uint8_t *payload = NULL;
    struct notes_buf raw;
    int rc = NOTES_OK;

    if (fstat(lg->fd, &st) != 0)
        return io_fail("cannot stat", lg->path);
    uint64_t size = (uint64_t)st.st_size;
    if (size > NOTES__LOG_MAX) {
        notes__set_detail("'%s' is larger than the %llu byte limit", lg->path,
                          (unsigned long long)NOTES__LOG_MAX);
        return NOTES_ETOOBIG;
    }
    if (lg->read_limit && lg->read_limit < size)
        size = lg->read_limit; /* a lazy doc's replay: what it opened */
    lg->read_changes = lg->read_trusted = 0;
    if (lg->bad_header)
        return NOTES_OK; /* nothing of it is this note's: see log_open */
    lg->damaged = 0;
    lg->damage[0] = 0;
    notes__buf_init(&raw, NOTES__REC_RAW_MAX);
    while (lg->end < size) {
        if (size - lg->end < NOTES__REC_HEADER) {
            set_damage(lg, size, "torn record header", 1);
            break;
        }
        if (read_full(lg->fd, hdr, sizeof(hdr), (off_t)lg->end) !=
            (ssize_t)sizeof(hdr)) {
            rc = io_fail("cannot read", lg->path);
            break;
        }
        uint32_t stored = notes__load_u32le(hdr + 8);
        uint32_t rawlen = notes__load_u32le(hdr + 12);
        if (notes__load_u32le(hdr) != REC_MAGIC || hdr[6] || hdr[7] ||
            rawlen > NOTES__REC_RAW_MAX || stored > NOTES__REC_RAW_MAX + 1024) {
            set_damage(lg, size, "damaged record header", 0);
            break;
        }
        if (size - lg->end - NOTES__REC_HEADER < stored) {
            set_damage(lg, size, "torn record (payload cut short)", 1);
            break;
        }
        notes__free(payload);
        payload = notes__malloc(stored ? stored : 1);
        if (!payload) {
            rc = NOTES_ENOMEM;
            break;
        }
        if (read_full(lg->fd, payload, stored,
                      (off_t)(lg->end + NOTES__REC_HEADER)) != (ssize_t)stored) {
            rc = io_fail("cannot read", lg->path);
            break;
        }
        rec_sum(sum, hdr, payload, stored);
        if (!notes__equal(sum, hdr + 16, 16)) {
            set_damage(lg, size, "record checksum mismatch", 0);
            break;
        }
        const uint8_t *body = payload;
        size_t bodylen = stored;
        if (hdr[5] == NOTES__CODEC_ZSTD) {
            raw.len = 0;
            rc = notes__decompress(&raw, payload, stored, rawlen, 0);
            if (rc == NOTES_ENOMEM)
                break; /* not the record's fault: no damage to report */
            if (rc || raw.len != rawlen) {
                /* The checksum matched, so this is not a torn write. */
                notes__set_detail("'%s': record at offset %llu does not "
                                  "decompress", lg->path,
                                  (unsigned long long)lg->end);
                rc = NOTES_ECORRUPT;
                break;
            }
            body = raw.data;
            bodylen = raw.len;
        } else if (hdr[5] != NOTES__CODEC_RAW || rawlen != stored) {
            notes__set_detail("'%s': record at offset %llu has unknown codec %u",
                              lg->path, (unsigned long long)lg->end, hdr[5]);
            rc = NOTES_EVERSION;
            break;
        }
        if (hdr[4] == NOTES__REC_PACK) {
            if ((rc = notes__pack_decode(lg->doc, body, bodylen, 0, cb, ctx)))
                break;
        } else if (hdr[4] != NOTES__REC_CHANGES) {
            notes__set_detail("'%s': record at offset %llu has unknown type %u",
                              lg->path, (unsigned long long)lg->end, hdr[4]);
            rc = NOTES_EVERSION;
            break;
        } else if ((rc = notes__payload_decode(body, bodylen, cb, ctx))) {
            break;
        }
        lg->end += NOTES__REC_HEADER + stored;
        lg->nrecords++;
        mac_step(lg, hdr, sizeof(hdr), payload, stored);
        if (lg->keyed && lg->end == lg->trusted_end &&
            notes__equal(lg->mac, lg->trusted_mac, 32))
            lg->read_trusted = counter.n;
    }
    lg->read_changes = counter.n;
    notes__free(payload);
    notes__buf_release(&raw);
    return rc;
}

/*
 * Walk the records from lg->end to the end of the file advancing only the
 * local MAC chain (no checksum, no decompression, no decoding): what a
 * snapshot needs to know that the file is, byte for byte, the log this
 * device verified. Any record that does not frame cleanly stops the walk
 * (NOTES_ECORRUPT): the caller then reads the log the ordinary way, which
 * reports the damage. The file is read whole, once.
 */
int notes__log_scan_mac(struct notes__log *lg)
{
    struct stat st;
    if (!lg->keyed || lg->bad_header || lg->damaged)
        return NOTES_ECORRUPT;
    if (fstat(lg->fd, &st) != 0)
        return io_fail("cannot stat", lg->path);
    uint64_t size = (uint64_t)st.st_size;
    if (size > NOTES__LOG_MAX || size < lg->end)
        return NOTES_ECORRUPT;
    size_t n = (size_t)(size - lg->end);
    uint8_t *buf = notes__malloc(n ? n : 1);
    if (!buf)
        return NOTES_ENOMEM;
    if (read_full(lg->fd, buf, n, (off_t)lg->end) != (ssize_t)n) {
        notes__free(buf);
        return io_fail("cannot read", lg->path);
    }
    int rc = NOTES_OK;
    size_t o = 0;
    while (o < n) {
        if (n - o < NOTES__REC_HEADER) {
            rc = NOTES_ECORRUPT;
            break;
        }
        const uint8_t *hdr = buf + o;
        uint32_t stored = notes__load_u32le(hdr + 8);
        if (notes__load_u32le(hdr) != REC_MAGIC ||
            n - o - NOTES__REC_HEADER < stored) {
            rc = NOTES_ECORRUPT;
            break;
        }
        mac_step(lg, hdr, NOTES__REC_HEADER, hdr + NOTES__REC_HEADER, stored);
        o += NOTES__REC_HEADER + stored;
        lg->end += NOTES__REC_HEADER + stored;
        lg->nrecords++;
    }
    notes__free(buf);
    return rc;
}

void notes__log_rewind(struct notes__log *lg)
{
    if (lg->bad_header)
        return; /* it reads as empty whatever its position */
    lg->end = NOTES__LOG_HEADER;
    lg->nrecords = 0;
    lg->damaged = 0;
    lg->damage[0] = 0;
    mac_start(lg);
}

int notes__log_has_more(struct notes__log *lg)
{
    struct stat st;
    if (fstat(lg->fd, &st) != 0)
        return 1; /* read and let the read report the error */
    return (uint64_t)st.st_size > lg->end;
}

int notes__write_file_new(const char *base, const void *p, size_t n,
                          char **chosen)
{
    size_t blen = strlen(base);
    char *tmp = NULL, *name = notes__malloc(blen + 24);
    int rc;
    if (chosen)
        *chosen = NULL;
    if (!name)
        return NOTES_ENOMEM;
    if ((rc = write_temp(base, p, n, 0644, &tmp)))
        goto out;
    /* link() never replaces: the first free name among BASE, BASE.2, ... */
    for (unsigned k = 1;; k++) {
        if (k == 1)
            snprintf(name, blen + 24, "%s", base);
        else
            snprintf(name, blen + 24, "%s.%u", base, k);
        if (link(tmp, name) == 0)
            break;
        if (errno != EEXIST || k >= 100000) {
            rc = io_fail("cannot create", name);
            goto out;
        }
    }
    rc = fsync_parent(name);
out:
    if (tmp)
        unlink(tmp);
    if (rc == NOTES_OK && chosen) {
        *chosen = name;
        name = NULL;
    }
    notes__free(tmp);
    notes__free(name);
    return rc;
}

int notes__log_repair(struct notes__log *lg, int damage, char **aside_out)
{
    if (aside_out)
        *aside_out = NULL;
    if (!lg->damaged)
        return NOTES_OK;
    size_t n = (size_t)lg->damaged;
    uint8_t *tail = notes__malloc(n ? n : 1);
    char *base = notes__malloc(strlen(lg->path) + 48);
    char *aside = NULL;
    int rc = NOTES_OK;
    if (!tail || !base) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    if (read_full(lg->fd, tail, n, (off_t)lg->end) != (ssize_t)n) {
        rc = io_fail("cannot read", lg->path);
        goto out;
    }
    sprintf(base, "%s.%s-%llu", lg->path, damage ? "damaged" : "torn",
            (unsigned long long)lg->end);
    if ((rc = notes__write_file_new(base, tail, n, &aside)))
        goto out;
    if (lg->bad_header) {
        /* Nothing of the file was usable: start the log again. */
        uint8_t h[NOTES__LOG_HEADER];
        make_header(h, lg->doc);
        if ((rc = create_log(lg->path, h, 1, 1)))
            goto out;
        int fd = open_rw(lg->path);
        if (fd < 0) {
            rc = io_fail("cannot reopen", lg->path);
            goto out;
        }
        close(lg->fd);
        lg->fd = fd;
        lg->bad_header = 0;
        lg->end = NOTES__LOG_HEADER;
        lg->nrecords = 0;
        lg->trusted_end = 0;
        mac_start(lg);
    } else if (ftruncate(lg->fd, (off_t)lg->end) != 0 || fsync(lg->fd) != 0) {
        rc = io_fail("cannot truncate", lg->path);
        goto out;
    }
    lg->damaged = 0;
    lg->damage[0] = 0;
    if (aside_out) {
        *aside_out = aside;
        aside = NULL;
    }
out:
    notes__free(tail);
    notes__free(base);
    notes__free(aside);
    return rc;
}

/* A whole record (header + zstd payload) in rec. */
static int make_record(struct notes_buf *rec, int type, const uint8_t *raw,
                       size_t n, int level)
{
    int rc;
    if (n > NOTES__REC_RAW_MAX) {
        notes__set_detail("record of %zu bytes exceeds the %u byte limit", n,
                          NOTES__REC_RAW_MAX);
        return NOTES_ETOOBIG;
    }
    if ((rc = notes__buf_reserve(rec, NOTES__REC_HEADER)))
        return rc;
    rec->len = NOTES__REC_HEADER;
    if ((rc = notes__compress(rec, raw, n, level, NOTES__ZSTD_SMALL_TABLES)))
        return rc;
    uint8_t *hdr = rec->data;
    memset(hdr, 0, NOTES__REC_HEADER);
    notes__store_u32le(hdr, REC_MAGIC);
    hdr[4] = (uint8_t)type;
    hdr[5] = NOTES__CODEC_ZSTD;
    notes__store_u32le(hdr + 8, (uint32_t)(rec->len - NOTES__REC_HEADER));
    notes__store_u32le(hdr + 12, (uint32_t)n);
    rec_sum(hdr + 16, hdr, rec->data + NOTES__REC_HEADER,
            rec->len - NOTES__REC_HEADER);
    return NOTES_OK;
}

int notes__log_append(struct notes__log *lg, const uint8_t *const *changes,
                      const size_t *lens, size_t n, int level)
{
    return notes__log_write(lg, changes, lens, n, level, 1);
}

/* A log created with its durability deferred: its name too (the data
 * already synced by the caller). */
static int sync_name(struct notes__log *lg)
{
    if (!lg->unsynced_name)
        return NOTES_OK;
    int rc = fsync_parent(lg->path);
    if (rc == NOTES_OK)
        lg->unsynced_name = 0;
    return rc;
}

int notes__log_sync(struct notes__log *lg)
{
    if (fdatasync(lg->fd) != 0)
        return io_fail("cannot sync", lg->path);
    return sync_name(lg);
}

int notes__syncfs(const char *dir)
{
    return sync_dir(dir, syncfs, "cannot sync the filesystem of");
}

void notes__log_synced(struct notes__log *lg)
{
    lg->unsynced_name = 0;
}

int notes__log_write(struct notes__log *lg, const uint8_t *const *changes,
                     const size_t *lens, size_t n, int level, int sync)
{
    struct notes_buf raw, rec;
    int rc;

    notes__buf_init(&raw, NOTES__REC_RAW_MAX);
    notes__buf_init(&rec, NOTES__REC_RAW_MAX + 2048);
    if ((rc = notes__payload_encode(&raw, changes, lens, n)) ||
        (rc = make_record(&rec, NOTES__REC_CHANGES, raw.data, raw.len, level)))
        goto out;
    if (notes__write_all(lg->fd, rec.data, rec.len, (off_t)lg->end) != 0 ||
        (sync && (fdatasync(lg->fd) != 0 || sync_name(lg) != NOTES_OK))) {
        rc = io_fail("cannot append to", lg->path);
        /* Leave no partial record behind for the next reader. */
        if (ftruncate(lg->fd, (off_t)lg->end) == 0)
            (void)fdatasync(lg->fd);
        goto out;
    }
    lg->end += rec.len;
    lg->nrecords++;
    mac_step(lg, rec.data, NOTES__REC_HEADER, rec.data + NOTES__REC_HEADER,
             rec.len - NOTES__REC_HEADER);
out:
    notes__buf_release(&raw);
    notes__buf_release(&rec);
    return rc;
}

void notes__log_mark(const struct notes__log *lg, struct notes__log_mark *m)
{
    m->end = lg->end;
    m->nrecords = lg->nrecords;
    memcpy(m->mac, lg->mac, 32);
}

int notes__log_undo(struct notes__log *lg, const struct notes__log_mark *m)
{
    if (ftruncate(lg->fd, (off_t)m->end) != 0 || fdatasync(lg->fd) != 0)
        return io_fail("cannot truncate", lg->path);
    lg->end = m->end;
    lg->nrecords = m->nrecords;
    memcpy(lg->mac, m->mac, 32);
    return NOTES_OK;
}

int notes__log_rewrite(struct notes__log *lg, int type, const uint8_t *payload,
                       size_t n, int level, int *unchanged)
{
    struct notes_buf file;
    int rc, fd;
    *unchanged = 0;
    notes__buf_init(&file, NOTES__REC_RAW_MAX + 4096);
    if ((rc = notes__buf_reserve(&file, NOTES__LOG_HEADER)))
        goto out;
    make_header(file.data, lg->doc);
    file.len = NOTES__LOG_HEADER;
    struct notes_buf rec;
    notes__buf_init(&rec, NOTES__REC_RAW_MAX + 2048);
    rc = make_record(&rec, type, payload, n, level);
    if (rc == NOTES_OK)
        rc = notes__buf_put(&file, rec.data, rec.len);
    notes__buf_release(&rec);
    if (rc)
        goto out;
    if (lg->end == file.len && !lg->damaged) {
        /* Already exactly this (a note compacted before at this level):
         * rewriting would change nothing but the file's identity. */
        uint8_t *cur = notes__malloc(file.len);
        if (!cur) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        *unchanged = read_full(lg->fd, cur, file.len, 0) == (ssize_t)file.len &&
                     memcmp(cur, file.data, file.len) == 0;
        notes__free(cur);
        if (*unchanged)
            goto out;
    }
    if ((rc = notes__write_file_atomic(lg->path, file.data, file.len, 0644)))
        goto out;
    fd = open_rw(lg->path);
    if (fd < 0) {
        rc = io_fail("cannot reopen", lg->path);
        goto out;
    }
    close(lg->fd);
    lg->fd = fd;
    lg->end = file.len;
    lg->nrecords = 1;
    lg->damaged = 0;
    lg->unsynced_name = 0; /* written whole and durably, name included */
    mac_start(lg);
    mac_step(lg, file.data + NOTES__LOG_HEADER, NOTES__REC_HEADER,
             file.data + NOTES__LOG_HEADER + NOTES__REC_HEADER,
             file.len - NOTES__LOG_HEADER - NOTES__REC_HEADER);
out:
    notes__buf_release(&file);
    return rc;
}

int notes__log_reopen(struct notes__log *lg, int *replaced)
{
    struct stat a, b;
    *replaced = 0;
    if (stat(lg->path, &a) != 0 || fstat(lg->fd, &b) != 0)
        return io_fail("cannot stat", lg->path);
    if (a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        return NOTES_OK;
    int fd = open_rw(lg->path);
    if (fd < 0)
        return io_fail("cannot reopen", lg->path);
    close(lg->fd);
    lg->fd = fd;
    lg->end = NOTES__LOG_HEADER; /* what we hold comes again: duplicates */
    lg->nrecords = 0;
    lg->bad_header = 0;
    lg->trusted_end = 0;
    mac_start(lg);
    *replaced = 1;
    return NOTES_OK;
}

void notes__log_discard_if_empty(struct notes__log **lgp)
{
    struct notes__log *lg = *lgp;
    struct stat st;
    if (!lg || lg->nrecords || fstat(lg->fd, &st) != 0 ||
        (uint64_t)st.st_size != NOTES__LOG_HEADER)
        return;
    unlink(lg->path);
    (void)fsync_parent(lg->path);
    notes__log_close(lg);
    *lgp = NULL;
}
