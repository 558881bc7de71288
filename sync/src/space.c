/*
 * space.c: spaces (shared notebooks) stored in $NOTES_HOME/spaces, the
 * note -> space mapping, and invite codes. Formats: sync/README.md and
 * docs/protocol.md ("Invite codes").
 *
 * Both files of a space end with libnotes' check line ("check" and the
 * BLAKE2b-256 of the bytes before it, docs/format.md "Checksums"): one
 * flipped hex digit of a secret would otherwise silently be membership of
 * another space. Files of older versions (no line) stay readable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync_internal.h"

#define SPACE_FILE_MAX 4096
#define NOTES_FILE_MAX (64u << 20)
#define INVITE_PREFIX "notes1"
#define INVITE_VERSION 1  /* no relays */
#define INVITE_VERSION_RELAYS 2
#define INVITE_BLOB_MAX (1 + 1 + NOTES_SPACE_NAME_MAX + 32 + 32 + 1 + \
                         NOTES_ADDR_MAX + 1 + \
                         NOTES_INVITE_RELAYS_MAX * (1 + NOTES_ADDR_MAX) + 4)

void notes_sync_space_clear(notes_sync_space *s)
{
    if (s)
        notes__wipe(s, sizeof(*s));
}

static int name_ok(const char *name, int allow_reserved)
{
    size_t n;
    if (!name) {
        notes_sync__detail("no space name");
        return NOTES_EINVAL;
    }
    n = strlen(name);
    if (n == 0 || n > NOTES_SPACE_NAME_MAX) {
        notes_sync__detail("space name '%.40s' must be 1 to %d bytes", name,
                           NOTES_SPACE_NAME_MAX);
        return NOTES_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_'))) {
            notes_sync__detail("space name '%s': only a-z, 0-9, '-' and '_', "
                               "starting with a letter or digit", name);
            return NOTES_EINVAL;
        }
    }
    if (!allow_reserved && strcmp(name, NOTES_SPACE_DEFAULT) == 0) {
        notes_sync__detail("'%s' is the default space of unshared notes; "
                           "choose another name", name);
        return NOTES_EINVAL;
    }
    return NOTES_OK;
}

int notes_sync_space_name_check(const char *name)
{
    return name_ok(name, 0);
}

/* malloc'd "home/spaces[/name[suffix]]". */
static char *space_path(const char *home, const char *name, const char *suffix)
{
    size_t n = strlen(home) + 8 + (name ? strlen(name) + 1 : 0) +
               (suffix ? strlen(suffix) : 0) + 1;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/spaces%s%s%s", home, name ? "/" : "", name ? name : "",
             suffix ? suffix : "");
    return p;
}

static int ensure_dir(const char *home)
{
    char *d = space_path(home, NULL, NULL);
    int rc = NOTES_OK;
    if (!d)
        return NOTES_ENOMEM;
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
        notes_sync__detail("cannot create '%s': %s", d, strerror(errno));
        rc = NOTES_EIO;
    }
    free(d);
    return rc;
}

/* flock on spaces/.lock; returns the fd or a negative code. */
static int lock_spaces(const char *home, int exclusive)
{
    char *p;
    int fd, rc;
    if ((rc = ensure_dir(home)))
        return rc;
    if (!(p = space_path(home, ".lock", NULL)))
        return NOTES_ENOMEM;
    fd = notes_sync__lock_file(p, exclusive);
    free(p);
    return fd;
}

int notes_sync__lock_file(const char *path, int exclusive)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        notes_sync__detail("cannot lock '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NOTES_EIO;
    }
    return fd;
}

static void unlock_spaces(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* Read a whole small file. NOTES_ENOTFOUND, NOTES_ETOOBIG, NOTES_EIO. */
int notes_sync__read_small(const char *path, size_t max, char **out, size_t *n,
                 int check_private)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    *out = NULL;
    *n = 0;
    if (fd < 0) {
        if (errno == ENOENT)
            return NOTES_ENOTFOUND;
        notes_sync__detail("cannot open '%s': %s", path, strerror(errno));
        return NOTES_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        notes_sync__detail("'%s' is not a regular file", path);
        close(fd);
        return NOTES_EIO;
    }
    if (check_private && (st.st_mode & 077)) {
        notes_sync__detail("space file '%s' has mode %04o; run: chmod 600 '%s'",
                           path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return NOTES_EPERM;
    }
    if ((uint64_t)st.st_size > max) {
        notes_sync__detail("'%s' is larger than %zu bytes", path, max);
        close(fd);
        return NOTES_ETOOBIG;
    }
    int rc = notes_sync__read_fd(fd, (size_t)st.st_size, out, n);
    close(fd);
    return rc;
}

int notes_sync__read_fd(int fd, size_t size, char **out, size_t *n)
{
    char *buf = malloc(size + 1);
    size_t got = 0;
    if (!buf)
        return NOTES_ENOMEM;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *n = got;
    return NOTES_OK;
}

/* Write `path` atomically with mode 0600 (libnotes: temporary file, fsync,
 * rename or link, directory fsync). replace 0: never replace an existing
 * file (NOTES_EEXIST). */
static int write_atomic(const char *path, const void *data, size_t n,
                        int replace)
{
    return replace ? notes__write_file_atomic(path, data, n, 0600)
                   : notes__write_file_excl(path, data, n, 0600);
}

/* The space file: "notes-space 1\nname NAME\nsecret HEX64\n". */
static int format_space(const notes_sync_space *s, char *buf, size_t cap)
{
    char hex[65];
    int k;
    notes__hex(hex, s->secret, 32);
    k = snprintf(buf, cap, "notes-space 1\nname %s\nsecret %s\n", s->name, hex);
    notes__wipe(hex, sizeof(hex));
    if (k < 0 || (size_t)k + NOTES_CHECK_LINE_LEN >= cap)
        return -1; /* cannot happen: the name is <= 32 bytes */
    notes_check_line(buf, (size_t)k, buf + k);
    return k + NOTES_CHECK_LINE_LEN;
}

static int parse_space(const char *path, const char *text, const char *name,
                       notes_sync_space *out)
{
    char want[NOTES_SPACE_NAME_MAX + 16];
    const char *p = text, *nl;
    memset(out, 0, sizeof(*out));
    snprintf(want, sizeof(want), "name %s", name);
    /* line 1 */
    if (strncmp(p, "notes-space ", 12) != 0)
        goto bad;
    if (strncmp(p, "notes-space 1\n", 14) != 0) {
        notes_sync__detail("space file '%s': unsupported version", path);
        return NOTES_EVERSION;
    }
    p += 14;
    nl = strchr(p, '\n');
    if (!nl || (size_t)(nl - p) != strlen(want) ||
        memcmp(p, want, strlen(want)) != 0)
        goto bad;
    p = nl + 1;
    nl = strchr(p, '\n');
    if (!nl || strncmp(p, "secret ", 7) != 0 ||
        notes_sync__unhex_lower(out->secret, 32, p + 7, (size_t)(nl - p - 7)) != 0 ||
        nl[1] != '\0')
        goto bad;
    snprintf(out->name, sizeof(out->name), "%s", name);
    return NOTES_OK;
bad:
    memset(out, 0, sizeof(*out));
    notes_sync__detail("space file '%s' is malformed (expected 'notes-space 1', "
                       "'name %s', 'secret' and 64 hex digits)", path, name);
    return NOTES_ECORRUPT;
}

/* Check the text's check line and cut it off (text[*n] = 0 after). */
static int check_text(const char *path, char *text, size_t *n, int *checked)
{
    size_t body;
    int rc = notes_check_split(path, text, *n, &body, checked);
    if (rc) {
        notes_sync__detail("%s", notes_last_detail()); /* names the file */
        return rc;
    }
    text[body] = '\0';
    *n = body;
    return NOTES_OK;
}

int notes_sync__read_checked(const char *path, size_t max, char **text,
                             size_t *n, int *checked)
{
    int rc = notes_sync__read_small(path, max, text, n, 0);
    *checked = 0;
    if (rc)
        return rc;
    if (strlen(*text) != *n) {
        notes_sync__detail("'%s' holds a NUL byte", path);
        return NOTES_ECORRUPT;
    }
    return check_text(path, *text, n, checked);
}

static int load_space(const char *home, const char *name, notes_sync_space *out,
                      int *checked)
{
    char *path, *text = NULL;
    size_t n, whole = 0;
    int rc;
    *checked = 0;
    if (!out)
        return NOTES_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!home)
        return NOTES_EINVAL;
    if ((rc = name_ok(name, 0)))
        return rc;
    if (!(path = space_path(home, name, NULL)))
        return NOTES_ENOMEM;
    rc = notes_sync__read_small(path, SPACE_FILE_MAX, &text, &n, 1);
    if (rc == NOTES_ENOTFOUND)
        notes_sync__detail("no space '%s' in '%s'", name, home);
    if (rc == NOTES_OK) {
        whole = n;
        if (strlen(text) != n) {
            rc = NOTES_ECORRUPT;
            notes_sync__detail("space file '%s' holds a NUL byte", path);
        } else if ((rc = check_text(path, text, &n, checked)) == NOTES_OK) {
            rc = parse_space(path, text, name, out);
        }
        notes__wipe(text, whole);
    }
    free(text);
    free(path);
    return rc;
}

int notes_sync_space_load(const char *home, const char *name, notes_sync_space *out)
{
    int checked;
    return load_space(home, name, out, &checked);
}

static int save(const char *home, const notes_sync_space *s, int must_be_new)
{
    char buf[256 + NOTES_CHECK_LINE_LEN], *path;
    int rc, fd, k;
    if (!home || !s)
        return NOTES_EINVAL;
    if ((rc = name_ok(s->name, 0)))
        return rc;
    if ((fd = lock_spaces(home, 1)) < 0)
        return fd;
    if (!(path = space_path(home, s->name, NULL))) {
        unlock_spaces(fd);
        return NOTES_ENOMEM;
    }
    k = format_space(s, buf, sizeof(buf));
    rc = k < 0 ? NOTES_EINVAL : write_atomic(path, buf, (size_t)k, 0);
    if (rc == NOTES_EEXIST) {
        notes_sync_space cur;
        int lrc = notes_sync_space_load(home, s->name, &cur);
        if (must_be_new) {
            notes_sync__detail("space '%s' exists", s->name);
        } else if (lrc == NOTES_OK &&
                   notes__equal(cur.secret, s->secret, 32)) {
            rc = NOTES_OK;
        } else if (lrc == NOTES_OK) {
            notes_sync__detail("a different space called '%s' exists",
                               s->name);
        } else {
            rc = lrc;
        }
        notes_sync_space_clear(&cur);
    }
    notes__wipe(buf, sizeof(buf));
    free(path);
    unlock_spaces(fd);
    return rc;
}

int notes_sync_space_create(const char *home, const char *name, notes_sync_space *out)
{
    notes_sync_space s;
    int rc;
    if (out)
        memset(out, 0, sizeof(*out));
    if ((rc = name_ok(name, 0)))
        return rc;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    notes__random(s.secret, sizeof(s.secret));
    rc = save(home, &s, 1);
    if (rc == NOTES_OK && out)
        *out = s;
    notes_sync_space_clear(&s);
    return rc;
}

int notes_sync_space_save(const char *home, const notes_sync_space *s)
{
    return save(home, s, 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void notes_sync_space_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int notes_sync_space_list(const char *home, char ***names, size_t *n)
{
    char *dir;
    DIR *dh;
    struct dirent *de;
    char **v = NULL;
    size_t k = 0, cap = 0;
    int rc = NOTES_OK;
    if (!names || !n)
        return NOTES_EINVAL;
    *names = NULL;
    *n = 0;
    if (!home)
        return NOTES_EINVAL;
    if (!(dir = space_path(home, NULL, NULL)))
        return NOTES_ENOMEM;
    dh = opendir(dir);
    if (!dh) {
        rc = errno == ENOENT ? NOTES_OK : NOTES_EIO;
        if (rc)
            notes_sync__detail("cannot read '%s': %s", dir, strerror(errno));
        free(dir);
        return rc;
    }
    while ((de = readdir(dh))) {
        if (name_ok(de->d_name, 0) != NOTES_OK)
            continue; /* .lock, NAME.notes, temporary files */
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nv = realloc(v, nc * sizeof(*v));
            if (!nv) {
                rc = NOTES_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[k] = strdup(de->d_name))) {
            rc = NOTES_ENOMEM;
            break;
        }
        k++;
    }
    closedir(dh);
    free(dir);
    if (rc) {
        notes_sync_space_names_free(v, k);
        return rc;
    }
    if (k)
        qsort(v, k, sizeof(*v), cmp_str);
    *names = v;
    *n = k;
    return NOTES_OK;
}

/* ---- note mapping: spaces/NAME.notes ---- */

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Read NAME.notes (missing file: no notes). Format: "notes-space-notes 1"
 * then one 32-hex-digit id per line, sorted, no duplicates. */
static int read_notes_checked(const char *home, const char *name,
                              uint8_t (**ids)[16], size_t *n, int *checked)
{
    char *path = space_path(home, name, ".notes"), *text = NULL, *p;
    size_t len, k = 0, lines = 0, line = 1;
    uint8_t(*v)[16] = NULL;
    int rc;
    *ids = NULL;
    *n = 0;
    *checked = 0;
    if (!path)
        return NOTES_ENOMEM;
    rc = notes_sync__read_checked(path, NOTES_FILE_MAX, &text, &len, checked);
    if (rc == NOTES_ENOTFOUND) {
        rc = NOTES_OK; /* no notes yet */
        goto out;
    }
    if (rc)
        goto out;
    rc = NOTES_ECORRUPT;
    if (len < 20 || strncmp(text, "notes-space-notes 1\n", 20) != 0) {
        notes_sync__detail("'%s': first line must be 'notes-space-notes 1'",
                           path);
        goto out;
    }
    for (size_t i = 20; i < len; i++)
        lines += text[i] == '\n';
    v = malloc((lines + 1) * sizeof(*v));
    if (!v) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    p = text + 20;
    while (*p) {
        char *nl = strchr(p, '\n');
        line++;
        if (!nl || notes_sync__unhex_lower(v[k], 16, p, (size_t)(nl - p)) != 0 ||
            (k > 0 && memcmp(v[k - 1], v[k], 16) >= 0)) {
            notes_sync__detail("'%s' line %zu: expected a note id (32 "
                               "lowercase hex digits, sorted)", path, line);
            goto out;
        }
        k++;
        p = nl + 1;
    }
    if ((size_t)(p - text) != len) {
        notes_sync__detail("'%s' holds a NUL byte", path);
        goto out;
    }
    *ids = v;
    *n = k;
    v = NULL;
    rc = NOTES_OK;
out:
    free(v);
    free(text);
    free(path);
    return rc;
}

static int read_notes(const char *home, const char *name, uint8_t (**ids)[16],
                      size_t *n)
{
    int checked;
    return read_notes_checked(home, name, ids, n, &checked);
}

static int write_notes(const char *home, const char *name,
                       const uint8_t (*ids)[16], size_t n)
{
    size_t cap = 20 + n * 33 + NOTES_CHECK_LINE_LEN + 1;
    char *buf = malloc(cap), *path = space_path(home, name, ".notes");
    int rc;
    if (!buf || !path) {
        free(buf);
        free(path);
        return NOTES_ENOMEM;
    }
    memcpy(buf, "notes-space-notes 1\n", 20); // NOLINT(bugprone-not-null-terminated-result)
    for (size_t i = 0; i < n; i++) {
        notes__hex(buf + 20 + i * 33, ids[i], 16);
        buf[20 + i * 33 + 32] = '\n';
    }
    notes_check_line(buf, 20 + n * 33, buf + 20 + n * 33);
    rc = write_atomic(path, buf, 20 + n * 33 + NOTES_CHECK_LINE_LEN, 1);
    free(buf);
    free(path);
    return rc;
}

static int space_exists(const char *home, const char *name)
{
    notes_sync_space s;
    int rc = notes_sync_space_load(home, name, &s);
    notes_sync_space_clear(&s);
    return rc;
}

/* Under the lock: which space holds `id` (*found 0 if none). */
static int find_note(const char *home, const uint8_t id[16],
                     char name[NOTES_SPACE_NAME_MAX + 1], int *found)
{
    char **names;
    size_t nn;
    int rc = notes_sync_space_list(home, &names, &nn);
    *found = 0;
    snprintf(name, NOTES_SPACE_NAME_MAX + 1, "%s", NOTES_SPACE_DEFAULT);
    if (rc)
        return rc;
    for (size_t i = 0; i < nn && !*found && !rc; i++) {
        uint8_t(*ids)[16];
        size_t n;
        if ((rc = read_notes(home, names[i], &ids, &n)))
            break;
        if (n && bsearch(id, ids, n, 16, cmp_id)) {
            *found = 1;
            snprintf(name, NOTES_SPACE_NAME_MAX + 1, "%s", names[i]);
        }
        free(ids);
    }
    notes_sync_space_names_free(names, nn);
    return rc;
}

int notes_sync_space_add_note(const char *home, const char *name,
                         const uint8_t id[16])
{
    char other[NOTES_SPACE_NAME_MAX + 1];
    uint8_t(*ids)[16] = NULL, (*nv)[16];
    size_t n, pos;
    int rc, fd, found;
    if (!home || !id)
        return NOTES_EINVAL;
    if ((rc = space_exists(home, name)))
        return rc;
    if ((fd = lock_spaces(home, 1)) < 0)
        return fd;
    if ((rc = find_note(home, id, other, &found)))
        goto out;
    if (found) {
        if (strcmp(other, name) != 0) {
            char hex[33];
            notes__hex(hex, id, 16);
            notes_sync__detail("note %s belongs to space '%s'", hex, other);
            rc = NOTES_EEXIST;
        }
        goto out;
    }
    if ((rc = read_notes(home, name, &ids, &n)))
        goto out;
    nv = realloc(ids, (n + 1) * sizeof(*ids));
    if (!nv) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    ids = nv;
    for (pos = 0; pos < n && memcmp(ids[pos], id, 16) < 0; pos++)
        ;
    memmove(ids[pos + 1], ids[pos], (n - pos) * sizeof(*ids));
    memcpy(ids[pos], id, 16);
    rc = write_notes(home, name, (const uint8_t(*)[16])ids, n + 1);
out:
    free(ids);
    unlock_spaces(fd);
    return rc;
}

int notes_sync__space_add_many(const char *home, const char *name,
                               const uint8_t (*ids)[16], size_t nids,
                               uint8_t (**added)[16], size_t *nadded)
{
    char **names = NULL;
    size_t nn = 0, n = 0, k = 0;
    uint8_t(*cur)[16] = NULL, (*take)[16] = NULL, (*u)[16] = NULL;
    int rc, fd;
    *added = NULL;
    *nadded = 0;
    if ((rc = space_exists(home, name)))
        return rc;
    if ((fd = lock_spaces(home, 1)) < 0)
        return fd;
    if (!(take = malloc((nids + 1) * sizeof(*take)))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    memcpy(take, ids, nids * sizeof(*take));
    k = nids;
    /* Each list read once: drop the ids any space holds already. */
    if ((rc = notes_sync_space_list(home, &names, &nn)))
        goto out;
    for (size_t i = 0; i < nn && !rc; i++) {
        uint8_t(*l)[16];
        size_t nl, w = 0;
        if ((rc = read_notes(home, names[i], &l, &nl)))
            break;
        for (size_t j = 0; j < k; j++)
            if (!(nl && bsearch(take[j], l, nl, 16, cmp_id)))
                memcpy(take[w++], take[j], 16);
        k = w;
        if (strcmp(names[i], name) == 0) {
            cur = l;
            n = nl;
        } else {
            free(l);
        }
    }
    if (rc || k == 0)
        goto out;
    if (!(u = malloc((n + k) * sizeof(*u)))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    {
        size_t a = 0, b = 0, m = 0;
        while (a < n || b < k) {
            if (b == k || (a < n && memcmp(cur[a], take[b], 16) < 0))
                memcpy(u[m++], cur[a++], 16);
            else
                memcpy(u[m++], take[b++], 16);
        }
        rc = write_notes(home, name, (const uint8_t(*)[16])u, m);
    }
    if (!rc) {
        *added = take;
        *nadded = k;
        take = NULL;
    }
out:
    notes_sync_space_names_free(names, nn);
    free(cur);
    free(take);
    free(u);
    unlock_spaces(fd);
    return rc;
}

int notes_sync__space_remove_many(const char *home, const char *name,
                                  const uint8_t (*ids)[16], size_t nids)
{
    uint8_t(*l)[16] = NULL;
    size_t n, w = 0;
    int rc, fd;
    if ((rc = name_ok(name, 0)))
        return rc;
    if ((fd = lock_spaces(home, 1)) < 0)
        return fd;
    if (!(rc = read_notes(home, name, &l, &n))) {
        for (size_t i = 0; i < n; i++)
            if (!(nids && bsearch(l[i], ids, nids, 16, cmp_id)))
                memcpy(l[w++], l[i], 16);
        if (w != n)
            rc = write_notes(home, name, (const uint8_t(*)[16])l, w);
    }
    free(l);
    unlock_spaces(fd);
    return rc;
}

int notes_sync_space_remove_note(const char *home, const char *name,
                            const uint8_t id[16])
{
    uint8_t(*ids)[16] = NULL, (*hit)[16];
    size_t n;
    int rc, fd;
    if (!home || !id)
        return NOTES_EINVAL;
    if ((rc = name_ok(name, 0)))
        return rc;
    if ((fd = lock_spaces(home, 1)) < 0)
        return fd;
    if ((rc = read_notes(home, name, &ids, &n)))
        goto out;
    hit = n ? bsearch(id, ids, n, 16, cmp_id) : NULL;
    if (!hit) {
        notes_sync__detail("the note is not in space '%s'", name);
        rc = NOTES_ENOTFOUND;
        goto out;
    }
    memmove(hit, hit + 1, (size_t)(ids + n - (hit + 1)) * sizeof(*ids));
    rc = write_notes(home, name, (const uint8_t(*)[16])ids, n - 1);
out:
    free(ids);
    unlock_spaces(fd);
    return rc;
}

int notes_sync_space_notes(const char *home, const char *name, uint8_t (**ids)[16],
                      size_t *n)
{
    int rc, fd;
    if (!ids || !n)
        return NOTES_EINVAL;
    *ids = NULL;
    *n = 0;
    if (!home)
        return NOTES_EINVAL;
    if ((rc = name_ok(name, 0)))
        return rc;
    if ((fd = lock_spaces(home, 0)) < 0)
        return fd;
    rc = read_notes(home, name, ids, n);
    unlock_spaces(fd);
    return rc;
}

int notes_sync_space_of_note(const char *home, const uint8_t id[16],
                        char name[NOTES_SPACE_NAME_MAX + 1])
{
    int rc, fd, found;
    if (!home || !id || !name)
        return NOTES_EINVAL;
    if ((fd = lock_spaces(home, 0)) < 0)
        return fd;
    rc = find_note(home, id, name, &found);
    unlock_spaces(fd);
    return rc;
}

/* ---- verification of the files (notes verify) ---- */

static void report_file(notes_file_fn fn, void *arg, const char *path,
                        int code, int checked, int *first)
{
    notes_file_status st;
    char msg[600];
    snprintf(msg, sizeof(msg), "%s",
             code ? notes_sync_last_detail()
                  : checked ? "" : "no checksum (written by an older version)");
    st.path = path;
    st.code = code;
    st.checked = checked && code == NOTES_OK;
    st.message = msg;
    if (code && !*first)
        *first = code;
    if (fn)
        fn(&st, arg);
}

int notes_sync_space_verify_files(const char *home, notes_file_fn fn, void *arg)
{
    char **names = NULL;
    size_t nn = 0;
    int first = NOTES_OK, fd;
    if (!home)
        return NOTES_EINVAL;
    int rc = notes_sync_space_list(home, &names, &nn);
    if (rc)
        return rc;
    if (nn == 0)
        return NOTES_OK; /* no spaces/ (nor a lock file to create) */
    if ((fd = lock_spaces(home, 0)) < 0) {
        notes_sync_space_names_free(names, nn);
        return fd;
    }
    for (size_t i = 0; i < nn; i++) {
        char *sp = space_path(home, names[i], NULL);
        char *np = space_path(home, names[i], ".notes");
        struct stat st;
        notes_sync_space s;
        uint8_t(*ids)[16] = NULL;
        size_t n;
        int checked = 0;
        if (!sp || !np) {
            free(sp);
            free(np);
            rc = NOTES_ENOMEM;
            break;
        }
        rc = load_space(home, names[i], &s, &checked);
        notes_sync_space_clear(&s);
        report_file(fn, arg, sp, rc, checked, &first);
        if (lstat(np, &st) == 0) {
            rc = read_notes_checked(home, names[i], &ids, &n, &checked);
            free(ids);
            report_file(fn, arg, np, rc, checked, &first);
        }
        free(sp);
        free(np);
        rc = NOTES_OK;
    }
    unlock_spaces(fd);
    notes_sync_space_names_free(names, nn);
    return rc ? rc : first;
}

/* ---- invite codes ---- */

static int addr_ok(const char *addr)
{
    size_t n;
    const char *colon;
    unsigned long port = 0;
    if (!addr || (n = strlen(addr)) == 0 || n > NOTES_ADDR_MAX)
        goto bad;
    for (size_t i = 0; i < n; i++)
        if (addr[i] <= ' ' || addr[i] > '~')
            goto bad;
    colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || strlen(colon + 1) > 5)
        goto bad;
    for (const char *c = colon + 1; *c; c++) {
        if (*c < '0' || *c > '9')
            goto bad;
        port = port * 10 + (unsigned long)(*c - '0');
    }
    if (port == 0 || port > 65535 || colon[1] == '0')
        goto bad;
    return NOTES_OK;
bad:
    notes_sync__detail("address '%.80s' must be HOST:PORT (printable ASCII, "
                       "at most %d bytes, port 1-65535)", addr ? addr : "",
                       NOTES_ADDR_MAX);
    return NOTES_EINVAL;
}

int notes_sync_invite_encode(const notes_sync_space *s, const uint8_t inviter[32],
                        const char *addr, char **code)
{
    notes_sync_invite inv;
    int rc;
    if (code)
        *code = NULL;
    if (!s || !inviter || !addr || strlen(addr) > NOTES_ADDR_MAX)
        return addr ? addr_ok(addr) : NOTES_EINVAL;
    memset(&inv, 0, sizeof(inv));
    inv.space = *s;
    memcpy(inv.inviter, inviter, 32);
    snprintf(inv.addr, sizeof(inv.addr), "%s", addr);
    rc = notes_sync_invite_make(&inv, code);
    notes__wipe(&inv, sizeof(inv));
    return rc;
}

int notes_sync_invite_make(const notes_sync_invite *inv, char **code)
{
    uint8_t blob[INVITE_BLOB_MAX], h[32];
    size_t k = 0, nl, al;
    const notes_sync_space *s = inv ? &inv->space : NULL;
    const char *addr = inv ? inv->addr : NULL;
    char *out;
    int rc;
    if (!code)
        return NOTES_EINVAL;
    *code = NULL;
    if (!inv)
        return NOTES_EINVAL;
    if ((rc = name_ok(s->name, 0)) || (rc = addr_ok(addr)))
        return rc;
    if (inv->nrelays > NOTES_INVITE_RELAYS_MAX) {
        notes_sync__detail("an invite carries at most %d relays",
                           NOTES_INVITE_RELAYS_MAX);
        return NOTES_EINVAL;
    }
    for (size_t i = 0; i < inv->nrelays; i++)
        if ((rc = addr_ok(inv->relays[i])))
            return rc;
    nl = strlen(s->name);
    al = strlen(addr);
    /* Version 1 when there is no relay: older builds read it. */
    blob[k++] = inv->nrelays ? INVITE_VERSION_RELAYS : INVITE_VERSION;
    blob[k++] = (uint8_t)nl;
    memcpy(blob + k, s->name, nl);
    k += nl;
    memcpy(blob + k, s->secret, 32);
    k += 32;
    memcpy(blob + k, inv->inviter, 32);
    k += 32;
    blob[k++] = (uint8_t)al;
    memcpy(blob + k, addr, al);
    k += al;
    if (inv->nrelays) {
        blob[k++] = (uint8_t)inv->nrelays;
        for (size_t i = 0; i < inv->nrelays; i++) {
            size_t rl = strlen(inv->relays[i]);
            blob[k++] = (uint8_t)rl;
            memcpy(blob + k, inv->relays[i], rl);
            k += rl;
        }
    }
    notes__hash(h, 32, blob, k, NULL, 0);
    memcpy(blob + k, h, 4);
    k += 4;
    size_t cap = sizeof(INVITE_PREFIX) + (k + 4) / 5 * 8 + 1;
    out = malloc(cap);
    if (!out) {
        notes__wipe(blob, sizeof(blob));
        return NOTES_ENOMEM;
    }
    memcpy(out, INVITE_PREFIX, sizeof(INVITE_PREFIX) - 1);
    (void)notes__base32(out + sizeof(INVITE_PREFIX) - 1,
                        cap - (sizeof(INVITE_PREFIX) - 1), blob, k);
    notes__wipe(blob, sizeof(blob));
    *code = out;
    return NOTES_OK;
}

int notes_sync_invite_decode(const char *code, notes_sync_invite *out)
{
    uint8_t blob[INVITE_BLOB_MAX + 8], h[32];
    const char *b, *e;
    size_t n, k, nl, al, pl = sizeof(INVITE_PREFIX) - 1;
    size_t got;
    char key[NOTES_KEY_STRLEN];
    uint8_t pk[32];
    int rc = NOTES_EINVAL;
    if (!out)
        return NOTES_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!code)
        return NOTES_EINVAL;
    b = code;
    while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r')
        b++;
    e = b + strlen(b);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
                     e[-1] == '\r'))
        e--;
    n = (size_t)(e - b);
    if (n < pl || strncasecmp(b, INVITE_PREFIX, pl) != 0) {
        notes_sync__detail("not an invite code (it starts with '%s')",
                           INVITE_PREFIX);
        return NOTES_EINVAL;
    }
    if (notes__unbase32_len(blob, sizeof(blob), &got, b + pl, n - pl) !=
        NOTES_OK) {
        notes_sync__detail("invite code: a character is not base32 (a-z, "
                           "2-7) or the code is cut short");
        return NOTES_EINVAL;
    }
    k = got;
    if (k < 1 + 1 + 1 + 32 + 32 + 1 + 3 + 4) {
        notes_sync__detail("invite code is truncated (%zu bytes)", k);
        goto out;
    }
    notes__hash(h, 32, blob, k - 4, NULL, 0);
    if (!notes__equal(h, blob + k - 4, 4)) {
        notes_sync__detail("invite code checksum does not match: a typo, or "
                           "the code is incomplete");
        goto out;
    }
    k -= 4;
    if (blob[0] != INVITE_VERSION && blob[0] != INVITE_VERSION_RELAYS) {
        notes_sync__detail("invite code version %u is not supported",
                           blob[0]);
        rc = NOTES_EVERSION;
        goto out;
    }
    nl = blob[1];
    if (nl == 0 || nl > NOTES_SPACE_NAME_MAX || 2 + nl + 64 + 1 > k)
        goto malformed;
    memcpy(out->space.name, blob + 2, nl);
    out->space.name[nl] = '\0';
    if (strlen(out->space.name) != nl || name_ok(out->space.name, 0))
        goto malformed;
    memcpy(out->space.secret, blob + 2 + nl, 32);
    memcpy(pk, blob + 2 + nl + 32, 32);
    notes_key_encode(pk, key);
    if (notes_key_decode(key, out->inviter) != NOTES_OK)
        goto malformed;
    al = blob[2 + nl + 64];
    {
        size_t at = 2 + nl + 64 + 1 + al;
        if (al == 0 || al > NOTES_ADDR_MAX || at > k ||
            (blob[0] == INVITE_VERSION && at != k))
            goto malformed;
        memcpy(out->addr, blob + 2 + nl + 64 + 1, al);
        out->addr[al] = '\0';
        if (strlen(out->addr) != al || addr_ok(out->addr))
            goto malformed;
        if (blob[0] == INVITE_VERSION_RELAYS) {
            /* count (1..NOTES_INVITE_RELAYS_MAX), then length + HOST:PORT */
            if (at >= k || blob[at] == 0 || blob[at] > NOTES_INVITE_RELAYS_MAX)
                goto malformed;
            out->nrelays = blob[at++];
            for (size_t i = 0; i < out->nrelays; i++) {
                size_t rl = at < k ? blob[at++] : 0;
                if (rl == 0 || rl > NOTES_ADDR_MAX || at + rl > k)
                    goto malformed;
                memcpy(out->relays[i], blob + at, rl);
                out->relays[i][rl] = '\0';
                at += rl;
                if (strlen(out->relays[i]) != rl || addr_ok(out->relays[i]))
                    goto malformed;
            }
            if (at != k)
                goto malformed;
        }
    }
    notes__wipe(blob, sizeof(blob));
    return NOTES_OK;
malformed:
    notes_sync__detail("invite code is malformed (bad name, key or address)");
out:
    notes__wipe(blob, sizeof(blob));
    notes__wipe(out, sizeof(*out));
    return rc;
}
