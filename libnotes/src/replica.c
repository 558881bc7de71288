/*
 * replica.c: a replica directory ($NOTES_HOME): identity, note logs, lock.
 *
 *   HOME/identity       secret key file (mode 0600, see docs/identity.md)
 *   HOME/identity.pub   name and public key, readable without passphrase
 *   HOME/lock           flock(2) target: exclusive for writes, shared reads
 *   HOME/notes/ID.log   one append-only log per note (docs/format.md)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <time.h>

#include "files.h"
#include "replica.h"

char *notes__path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = notes__malloc(la + lb + 2);
    if (p) {
        /* The NUL comes with b, below. */
        memcpy(p, a, la); // NOLINT(bugprone-not-null-terminated-result)
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char *copy = notes__strdup(path);
    if (!copy)
        return NOTES_ENOMEM;
    for (char *s = copy + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(copy, mode) != 0 && errno != EEXIST) {
            notes__set_detail("cannot create directory '%s': %s", copy,
                              strerror(errno));
            notes__free(copy);
            return NOTES_EIO;
        }
        *s = '/';
    }
    notes__free(copy);
    if (mkdir(path, mode) != 0 && errno != EEXIST) {
        notes__set_detail("cannot create directory '%s': %s", path,
                          strerror(errno));
        return NOTES_EIO;
    }
    return NOTES_OK;
}

void notes_replica_free(notes_replica *r)
{
    if (!r)
        return;
    if (r->lock_fd >= 0)
        close(r->lock_fd);
    notes__wipe(r->local_key, sizeof(r->local_key));
    notes__certs_release(&r->certs);
    notes_identity_free(r->id);
    notes__free(r->home);
    notes__free(r->notes_dir);
    notes__free(r->key_path);
    notes__free(r->name);
    notes__free(r);
}

static int replica_alloc(const char *home, notes_replica **out)
{
    notes_replica *r = notes__calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return NOTES_ENOMEM;
    r->lock_fd = -1;
    r->home = notes__strdup(home);
    r->notes_dir = notes__path_join(home, "notes");
    r->key_path = notes__path_join(home, "identity");
    if (!r->home || !r->notes_dir || !r->key_path) {
        notes_replica_free(r);
        return NOTES_ENOMEM;
    }
    *out = r;
    return NOTES_OK;
}

static int open_lock(notes_replica *r)
{
    char *lp = notes__path_join(r->home, "lock");
    if (!lp)
        return NOTES_ENOMEM;
    r->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0) {
        notes__set_detail("cannot open lock file '%s': %s", lp,
                          strerror(errno));
        notes__free(lp);
        return NOTES_EIO;
    }
    notes__free(lp);
    return NOTES_OK;
}

int notes__replica_lock(notes_replica *r, int exclusive)
{
    if (r->lock_depth++ > 0) {
        /* Nested: an exclusive lock covers any inner request; a shared
         * lock cannot be upgraded in place, so callers take exclusive
         * first when they will write. */
        return NOTES_OK;
    }
    while (flock(r->lock_fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno == EINTR)
            continue;
        r->lock_depth--;
        notes__set_detail("cannot lock replica '%s': %s", r->home,
                          strerror(errno));
        return NOTES_ELOCKED;
    }
    return NOTES_OK;
}

void notes__replica_unlock(notes_replica *r)
{
    if (r->lock_depth > 0 && --r->lock_depth == 0) {
        (void)flock(r->lock_fd, LOCK_UN);
        notes__notify_flush(); /* what was written under the lock */
    }
}

static int read_pub(notes_replica *r)
{
    char *pp = notes__path_join(r->home, "identity.pub");
    uint8_t *buf = NULL;
    size_t n;
    int rc, checked;
    if (!pp)
        return NOTES_ENOMEM;
    /* A damaged identity.pub would give this replica another name or key
     * than its secret's: the check line catches it (files.c). */
    rc = notes__read_checked(pp, 4096, &buf, &n, &checked);
    if (rc == NOTES_ENOTFOUND) {
        notes__set_detail("no identity in '%s' (run: notes init)", r->home);
        rc = NOTES_ENOIDENTITY;
    }
    if (rc)
        goto out;
    /* Two lines: "name NAME" and "key nk...". */
    char *s = (char *)buf, *nl1 = strchr(s, '\n');
    char *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    if (!nl1 || !nl2 || nl2[1] || strncmp(s, "name ", 5) != 0 ||
        strncmp(nl1 + 1, "key ", 4) != 0) {
        notes__set_detail("'%s' is malformed", pp);
        rc = NOTES_ECORRUPT;
        goto out;
    }
    *nl1 = *nl2 = 0;
    r->name = notes__strdup(s + 5);
    if (!r->name) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    if (notes_key_decode(nl1 + 5, r->pk) != NOTES_OK) {
        notes__set_detail("'%s': malformed public key", pp);
        rc = NOTES_ECORRUPT;
        goto out;
    }
    rc = notes_identity_file_encrypted(r->key_path, &r->encrypted);
out:
    notes__free(buf);
    notes__free(pp);
    return rc;
}

static int write_pub(notes_replica *r)
{
    char key[NOTES_KEY_STRLEN];
    char *pp = notes__path_join(r->home, "identity.pub");
    if (!pp)
        return NOTES_ENOMEM;
    notes_key_encode(r->pk, key);
    size_t n = strlen(r->name) + strlen(key) + 16;
    char *text = notes__malloc(n);
    int rc = NOTES_ENOMEM;
    if (text) {
        snprintf(text, n, "name %s\nkey %s\n", r->name, key);
        rc = notes__write_checked(pp, text, strlen(text), 0644);
    }
    notes__free(text);
    notes__free(pp);
    return rc;
}

int notes_replica_create(const char *home, const char *name,
                         const char *passphrase, notes_replica **out)
{
    notes_replica *r;
    struct stat st;
    int rc;

    *out = NULL;
    if (!home || !name)
        return NOTES_EINVAL;
    if ((rc = replica_alloc(home, &r)))
        return rc;
    if ((rc = mkdir_p(home, 0700)) || (rc = mkdir_p(r->notes_dir, 0700)) ||
        (rc = open_lock(r)) || (rc = notes__replica_lock(r, 1)))
        goto fail;
    if (stat(r->key_path, &st) == 0) {
        notes__set_detail("'%s' already holds an identity", home);
        rc = NOTES_EEXIST;
        goto unlock;
    }
    if ((rc = notes_identity_generate(name, &r->id)) ||
        (rc = notes__key_save_checked(r->id, r->key_path, passphrase)))
        goto unlock;
    memcpy(r->pk, notes_identity_public_key(r->id), 32);
    r->name = notes__strdup(notes_identity_name(r->id));
    r->encrypted = passphrase && *passphrase;
    if (!r->name) {
        rc = NOTES_ENOMEM;
        goto unlock;
    }
    rc = write_pub(r);
unlock:
    notes__replica_unlock(r);
    if (rc)
        goto fail;
    *out = r;
    return NOTES_OK;
fail:
    notes_replica_free(r);
    return rc;
}

int notes_replica_open(const char *home, notes_replica **out)
{
    notes_replica *r;
    struct stat st;
    int rc;

    *out = NULL;
    if (!home)
        return NOTES_EINVAL;
    if (stat(home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        notes__set_detail("no replica at '%s' (run: notes init)", home);
        return NOTES_ENOIDENTITY;
    }
    if ((rc = replica_alloc(home, &r)))
        return rc;
    if ((rc = read_pub(r)) || (rc = mkdir_p(r->notes_dir, 0700)) ||
        (rc = open_lock(r))) {
        notes_replica_free(r);
        return rc;
    }
    *out = r;
    return NOTES_OK;
}

int notes_replica_needs_passphrase(const notes_replica *r)
{
    return r->encrypted && !r->id;
}

int notes_replica_unlock(notes_replica *r, const char *passphrase)
{
    notes_identity *id;
    if (r->id)
        return NOTES_OK;
    int rc = notes_identity_load(r->key_path, passphrase, &id);
    if (rc)
        return rc;
    if (memcmp(notes_identity_public_key(id), r->pk, 32) != 0) {
        notes_identity_free(id);
        notes__set_detail("identity.pub does not match the key in '%s'",
                          r->key_path);
        return NOTES_ECORRUPT;
    }
    r->id = id;
    return NOTES_OK;
}

const char *notes_replica_name(const notes_replica *r)
{
    return r->name;
}

const uint8_t *notes_replica_public_key(const notes_replica *r)
{
    return r->pk;
}

const char *notes_replica_home(const notes_replica *r)
{
    return r->home;
}

const uint8_t *notes__replica_local_key(notes_replica *r, int create)
{
    if (r->has_local_key)
        return r->local_key;
    char *kp = notes__path_join(r->home, "local.key");
    uint8_t *buf = NULL;
    size_t n;
    struct stat st;
    if (!kp)
        return NULL;
    /* Only a private 32-byte file is trusted; otherwise make a new one. */
    if (stat(kp, &st) == 0 && (st.st_mode & 077) == 0 &&
        notes__read_file(kp, 64, &buf, &n) == NOTES_OK && n == 32) {
        memcpy(r->local_key, buf, 32);
        r->has_local_key = 1;
    } else if (create) {
        notes__random(r->local_key, 32);
        if (notes__write_file_atomic(kp, r->local_key, 32, 0600) == NOTES_OK)
            r->has_local_key = 1;
    }
    if (buf)
        notes__wipe(buf, 32);
    notes__free(buf);
    notes__free(kp);
    return r->has_local_key ? r->local_key : NULL;
}

static char *note_file(const notes_replica *r, const uint8_t id[16],
                       const char *ext)
{
    char hex[33], name[48];
    notes__hex(hex, id, 16);
    snprintf(name, sizeof(name), "%s.%s", hex, ext);
    return notes__path_join(r->notes_dir, name);
}

char *notes__replica_log_path(const notes_replica *r, const uint8_t id[16])
{
    return note_file(r, id, "log");
}

char *notes__replica_state_path(const notes_replica *r, const uint8_t id[16])
{
    return note_file(r, id, "state");
}

static int cmp_id16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/*
 * A process killed while writing leaves its temporary file ("X.new<pid>",
 * "X.tmp<pid>"). Those untouched for a minute belong to no live writer
 * (writes take milliseconds under the lock): remove them.
 */
static void remove_stale_temp(const char *dir, const char *name)
{
    const char *t = strstr(name, ".new");
    if (!t)
        t = strstr(name, ".tmp");
    if (!t || !t[4] || strspn(t + 4, "0123456789") != strlen(t + 4))
        return;
    char *p = notes__path_join(dir, name);
    struct stat st;
    if (p && lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
        time(NULL) - st.st_mtime > 60)
        unlink(p);
    notes__free(p);
}

void notes__replica_sweep(notes_replica *r)
{
    static int swept;
    DIR *dir;
    struct dirent *de;
    if (swept || !(dir = opendir(r->notes_dir)))
        return;
    swept = 1; /* once per process is enough */
    while ((de = readdir(dir)) != NULL)
        remove_stale_temp(r->notes_dir, de->d_name);
    closedir(dir);
}

int notes_replica_list(notes_replica *r, uint8_t (**ids)[16], size_t *n)
{
    DIR *dir = opendir(r->notes_dir);
    struct dirent *de;
    uint8_t(*v)[16] = NULL;
    size_t len = 0, cap = 0;

    *ids = NULL;
    *n = 0;
    if (!dir) {
        notes__set_detail("cannot list '%s': %s", r->notes_dir,
                          strerror(errno));
        return NOTES_EIO;
    }
    while ((de = readdir(dir)) != NULL) {
        uint8_t id[16];
        char hex[33];
        /* A note is there if its log is, or its state (a note whose log
         * was lost is listed, so that the loss is reported). */
        size_t nl = strlen(de->d_name);
        if (!(nl == 36 && strcmp(de->d_name + 32, ".log") == 0) &&
            !(nl == 38 && strcmp(de->d_name + 32, ".state") == 0))
            continue;
        memcpy(hex, de->d_name, 32);
        hex[32] = 0;
        if (notes__unhex(id, 16, hex) != NOTES_OK)
            continue;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *nv = notes__realloc(v, ncap * 16);
            if (!nv) {
                closedir(dir);
                notes__free(v);
                return NOTES_ENOMEM;
            }
            v = nv;
            cap = ncap;
        }
        memcpy(v[len++], id, 16);
    }
    closedir(dir);
    if (len)
        qsort(v, len, 16, cmp_id16);
    size_t u = 0; /* a note with both files came twice */
    for (size_t i = 0; i < len; i++)
        if (!u || memcmp(v[u - 1], v[i], 16) != 0)
            memmove(v[u++], v[i], 16);
    *ids = v;
    *n = u;
    return NOTES_OK;
}

int notes_replica_identity(const char *home, const char *passphrase,
                           notes_identity **out)
{
    *out = NULL;
    char *path = home ? notes__path_join(home, "identity") : NULL;
    if (!path)
        return home ? NOTES_ENOMEM : NOTES_EINVAL;
    int rc = notes_identity_load(path, passphrase, out);
    notes__free(path);
    return rc;
}
