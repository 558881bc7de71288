/*
 * state.c: what this replica knows about one note's log beyond the log
 * itself (notes/ID.state): how far it acknowledged the log, the heads it
 * held then, the last change this device signed in the note, and the
 * prefix this device verified.
 *
 * Why a second file: the log alone cannot tell an interrupted write of a
 * commit nobody was told about from damage to data that was acknowledged,
 * nor an older copy of itself from the real thing. The state is written
 * after every durable write to the log, before success is reported, so it
 * never claims less than what was acknowledged.
 *
 * Two fixed slots, written alternately in place with one pwrite and an
 * fdatasync (a commit pays one more sync, not a rename and a directory
 * sync). Each slot carries a generation and a checksum: a write torn by a
 * crash leaves the other slot, one generation older, which claims less —
 * and a commit whose state write was torn was never reported either.
 * docs/format.md has the byte layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define SLOT ((size_t)2048)
#define STATE_VERSION 1u
#define SUM_AT (SLOT - 32u)
static const uint8_t state_magic[4] = {'N', 'S', 'T', 'A'};

static void encode(const struct notes__state *st, const uint8_t doc[16],
                   uint8_t s[SLOT])
{
    memset(s, 0, SLOT);
    memcpy(s, state_magic, 4);
    notes__store_u32le(s + 4, STATE_VERSION);
    notes__store_u64le(s + 8, st->gen);
    memcpy(s + 16, doc, 16);
    notes__store_u64le(s + 32, st->acked_end);
    notes__store_u64le(s + 40, st->verified_end);
    memcpy(s + 48, st->mac, 32);
    notes__store_u64le(s + 80, st->my_seq);
    memcpy(s + 88, st->my_last, 32);
    notes__store_u64le(s + 120, st->nchanges);
    notes__store_u32le(s + 128, st->heads_total);
    notes__store_u32le(s + 132, st->nheads);
    memcpy(s + 136, st->heads, (size_t)st->nheads * 32);
    notes__hash(s + SUM_AT, 32, s, SUM_AT, NULL, 0);
}

/* 1 and the slot's contents in *st when the slot is intact and ours. */
static int decode(const uint8_t s[SLOT], const uint8_t doc[16],
                  struct notes__state *st)
{
    uint8_t sum[32];
    notes__hash(sum, 32, s, SUM_AT, NULL, 0);
    if (memcmp(s, state_magic, 4) != 0 || !notes__equal(sum, s + SUM_AT, 32) ||
        notes__load_u32le(s + 4) != STATE_VERSION || memcmp(s + 16, doc, 16) != 0)
        return 0;
    uint32_t nheads = notes__load_u32le(s + 132);
    if (nheads > NOTES__STATE_HEADS)
        return 0;
    st->gen = notes__load_u64le(s + 8);
    st->acked_end = notes__load_u64le(s + 32);
    st->verified_end = notes__load_u64le(s + 40);
    memcpy(st->mac, s + 48, 32);
    st->my_seq = notes__load_u64le(s + 80);
    memcpy(st->my_last, s + 88, 32);
    st->nchanges = notes__load_u64le(s + 120);
    st->heads_total = notes__load_u32le(s + 128);
    st->nheads = nheads;
    memcpy(st->heads, s + 136, (size_t)nheads * 32);
    return 1;
}

int notes__state_load(const char *path, const uint8_t doc[16],
                      struct notes__state *st)
{
    uint8_t *buf = NULL;
    size_t n;
    struct notes__state slots[2];
    int ok[2] = {0, 0};

    memset(st, 0, sizeof(*st));
    int rc = notes__read_file(path, 2 * SLOT, &buf, &n);
    if (rc == NOTES_ENOTFOUND) {
        notes__set_detail("%s", "");
        return NOTES_OK; /* never written (or by an older version) */
    }
    if (rc == NOTES_ETOOBIG) {
        st->damaged = 1;
        snprintf(st->why, sizeof(st->why), "'%s' is larger than a state file",
                 path);
        return NOTES_OK;
    }
    if (rc)
        return rc;
    for (int i = 0; i < 2; i++) {
        memset(&slots[i], 0, sizeof(slots[i]));
        if (n >= (size_t)(i + 1) * SLOT)
            ok[i] = decode(buf + (size_t)i * SLOT, doc, &slots[i]);
    }
    notes__free(buf);
    if (!ok[0] && !ok[1]) {
        st->damaged = 1;
        snprintf(st->why, sizeof(st->why),
                 "'%s' is damaged (%zu bytes, no intact slot)", path, n);
        return NOTES_OK;
    }
    int pick = ok[0] && ok[1] ? (slots[1].gen > slots[0].gen) : ok[1];
    *st = slots[pick];
    st->present = 1;
    st->slot = pick;
    return NOTES_OK;
}

static int put_slot(int fd, const uint8_t *s, off_t at, const char *path,
                    int sync)
{
    for (size_t done = 0; done < SLOT;) {
        ssize_t w = pwrite(fd, s + done, SLOT - done, at + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            notes__set_detail("cannot write '%s': %s", path,
                              w < 0 ? strerror(errno) : "short write");
            return NOTES_EIO;
        }
        done += (size_t)w;
    }
    if (sync && fdatasync(fd) != 0) {
        notes__set_detail("cannot sync '%s': %s", path, strerror(errno));
        return NOTES_EIO;
    }
    return NOTES_OK;
}

static int state_save(const char *path, const uint8_t doc[16],
                      struct notes__state *st, int sync)
{
    uint8_t *s = notes__malloc(2 * SLOT);
    int rc = NOTES_OK, fd = -1;
    if (!s)
        return NOTES_ENOMEM;
    struct notes__state next = *st;
    next.gen = st->present ? st->gen + 1 : 1;
    if (!st->present && !sync)
        return NOTES_EINVAL; /* a new file is staged: notes__state_stage */
    if (!st->present) {
        /* A new file (or one to replace, when damaged): both slots written,
         * the second one older, through a temporary file and a rename. */
        struct notes__state older = next;
        older.gen = 0;
        encode(&next, doc, s);
        encode(&older, doc, s + SLOT);
        rc = notes__write_file_atomic(path, s, 2 * SLOT, 0644);
        if (rc != NOTES_OK) {
            /* Possibly renamed into place before the directory sync
             * failed: as before, no state. */
            char msg[300];
            snprintf(msg, sizeof(msg), "%s", notes_last_detail());
            (void)unlink(path);
            notes__set_detail("%s", msg);
        } else {
            next.slot = 0;
            next.present = 1;
            next.damaged = 0;
            *st = next;
            notes__notify_later(path, doc);
        }
        notes__free(s);
        return rc;
    }
    int slot = !st->slot;
    off_t at = (off_t)slot * SLOT;
    uint8_t *old = s + SLOT;
    encode(&next, doc, s);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = NOTES_EIO;
        notes__set_detail("cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    /* The slot's old bytes, to put back if this write fails: the caller
     * then takes its log write back, and the state must not claim it. */
    if (pread(fd, old, SLOT, at) != (ssize_t)SLOT) {
        rc = NOTES_EIO;
        notes__set_detail("cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    if ((rc = put_slot(fd, s, at, path, sync)) != NOTES_OK) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", notes_last_detail());
        (void)put_slot(fd, old, at, path, sync);
        notes__set_detail("%s", msg);
        goto out;
    }
    next.slot = slot;
    *st = next;
    notes__notify_later(path, doc);
out:
    if (fd >= 0)
        close(fd);
    notes__free(s);
    return rc;
}

int notes__state_save(const char *path, const uint8_t doc[16],
                      struct notes__state *st)
{
    return state_save(path, doc, st, 1);
}

int notes__state_save_unsynced(const char *path, const uint8_t doc[16],
                               struct notes__state *st)
{
    return state_save(path, doc, st, 0);
}

/*
 * A batch's new state files: each is written whole under a temporary
 * name, unsynced; the caller syncs the filesystem (the logs they claim and
 * these files at once), then renames them into place (notes__state_place)
 * and syncs the directory once. A state file therefore never appears
 * with bytes that are not durable, nor before the log it claims is.
 */
int notes__state_stage(const char *path, const uint8_t doc[16],
                       struct notes__state *st, char **tmp_out)
{
    size_t plen = strlen(path);
    uint8_t *s = notes__malloc(2 * SLOT);
    char *tmp = notes__malloc(plen + 24);
    int rc = NOTES_OK, fd = -1;
    *tmp_out = NULL;
    if (!s || !tmp) {
        notes__free(s);
        notes__free(tmp);
        return NOTES_ENOMEM;
    }
    struct notes__state next = *st, older;
    next.gen = 1;
    older = next;
    older.gen = 0;
    encode(&next, doc, s);
    encode(&older, doc, s + SLOT);
    snprintf(tmp, plen + 24, "%s.tmp%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || notes__write_all(fd, s, 2 * SLOT, 0) != 0) {
        notes__set_detail("cannot write '%s': %s", tmp, strerror(errno));
        rc = NOTES_EIO;
        if (fd >= 0)
            (void)unlink(tmp);
    }
    if (fd >= 0)
        close(fd);
    notes__free(s);
    if (rc) {
        notes__free(tmp);
        return rc;
    }
    next.slot = 0;
    next.present = 1;
    next.damaged = 0;
    *st = next;
    *tmp_out = tmp;
    return NOTES_OK;
}

int notes__state_place(const char *tmp, const char *path, const uint8_t doc[16])
{
    if (rename(tmp, path) != 0) {
        notes__set_detail("cannot rename '%s': %s", tmp, strerror(errno));
        (void)unlink(tmp);
        return NOTES_EIO;
    }
    notes__notify_later(path, doc);
    return NOTES_OK;
}
