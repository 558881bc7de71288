/*
 * files.c: check lines on the replica's small trusted files, and their
 * verification (notes_replica_verify_files).
 *
 * The note logs carry their own record checksums and signatures; the files
 * beside them did not, so a flipped byte went unnoticed: a damaged key was
 * exported as is, a damaged certificate list or petname silently meant
 * something else. Each of these files now ends with
 *     check <BLAKE2b-256 hex of every byte before it>\n
 * written with the content in one atomic replacement. The line goes last
 * so that every existing reader keeps its own parser over the body, and
 * files from older versions (no line) stay readable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>


#include "files.h"
#include "people.h"
#include "store.h"

#define CHECK_TAG "check "
#define CHECK_TAG_LEN 6
#define CHECK_HEX 64
#define PUB_MAX 4096
#define TRUST_MAX (1u << 20)
#define CERTS_MAX (1u << 20)

static const char NO_CHECK[] = "no checksum (written by an older version)";

void notes_check_line(const void *body, size_t n,
                      char line[NOTES_CHECK_LINE_LEN + 1])
{
    uint8_t h[32];
    notes__hash(h, sizeof(h), body, n, NULL, 0);
    memcpy(line, CHECK_TAG, CHECK_TAG_LEN);
    notes__hex(line + CHECK_TAG_LEN, h, sizeof(h));
    line[NOTES_CHECK_LINE_LEN - 1] = '\n';
    line[NOTES_CHECK_LINE_LEN] = 0;
}

int notes_check_split(const char *path, const void *text, size_t n,
                      size_t *body_len, int *checked)
{
    const char *t = text;
    const char *what = path ? path : "(file)";
    *body_len = n;
    *checked = 0;
    if (n == 0)
        return NOTES_OK; /* an empty file from an older version */
    if (t[n - 1] != '\n') {
        notes__set_detail("'%s' is cut short: its last line has no newline",
                          what);
        return NOTES_ECORRUPT;
    }
    size_t start = n - 1; /* the last line begins after the previous '\n' */
    while (start > 0 && t[start - 1] != '\n')
        start--;
    if (n - start < CHECK_TAG_LEN || memcmp(t + start, CHECK_TAG,
                                            CHECK_TAG_LEN) != 0)
        return NOTES_OK; /* no check line: written by an older version */
    char want[NOTES_CHECK_LINE_LEN + 1];
    if (n - start != NOTES_CHECK_LINE_LEN) {
        notes__set_detail("'%s': the check line is malformed (expected "
                          "\"check\" and %d hex digits)", what, CHECK_HEX);
        return NOTES_ECORRUPT;
    }
    notes_check_line(t, start, want);
    if (memcmp(want, t + start, NOTES_CHECK_LINE_LEN) != 0) {
        notes__set_detail("'%s' is damaged: its checksum does not match its "
                          "content", what);
        return NOTES_ECORRUPT;
    }
    *body_len = start;
    *checked = 1;
    return NOTES_OK;
}

int notes__write_checked(const char *path, const void *body, size_t n,
                         int mode)
{
    uint8_t *buf = notes__malloc(n + NOTES_CHECK_LINE_LEN + 1);
    if (!buf)
        return NOTES_ENOMEM;
    if (n)
        memcpy(buf, body, n);
    notes_check_line(body, n, (char *)buf + n);
    int rc = notes__write_file_atomic(path, buf, n + NOTES_CHECK_LINE_LEN,
                                      mode);
    notes__wipe(buf, n + NOTES_CHECK_LINE_LEN);
    notes__free(buf);
    return rc;
}

int notes__read_checked(const char *path, size_t max, uint8_t **buf,
                        size_t *len, int *checked)
{
    size_t n = 0;
    *len = 0;
    *checked = 0;
    int rc = notes__read_file(path, max, buf, &n);
    if (rc)
        return rc;
    if (memchr(*buf, 0, n)) {
        notes__set_detail("'%s' is damaged: it holds a NUL byte", path);
        rc = NOTES_ECORRUPT;
    } else {
        rc = notes_check_split(path, *buf, n, len, checked);
    }
    if (rc) {
        notes__free(*buf);
        *buf = NULL;
        return rc;
    }
    (*buf)[*len] = 0; /* readers parse the body as a C string */
    return NOTES_OK;
}

/*
 * Key files: notes_identity_save writes the classic four lines (the format
 * docs/identity.md pins, and what a standalone key file is). A replica's
 * own key files get the check line too, and must appear at once and never
 * replace anything: save to a private temporary name, append the line in
 * memory, write a second temporary file and link it into place.
 */
#define KEY_TEXT_MAX 1024 /* a key file is < 400 bytes */

static char *temp_name(const char *path, const char *what)
{
    uint8_t rnd[8];
    char hex[17];
    size_t n = strlen(path) + 32;
    char *t = notes__malloc(n);
    if (!t)
        return NULL;
    notes__random(rnd, sizeof(rnd));
    notes__hex(hex, rnd, sizeof(rnd));
    snprintf(t, n, "%s.%s-%s", path, what, hex);
    return t;
}

int notes__key_save_checked(const notes_identity *id, const char *path,
                            const char *passphrase)
{
    char *plain = temp_name(path, "tmp"), *full = temp_name(path, "new");
    uint8_t *text = notes__secure_alloc(KEY_TEXT_MAX + NOTES_CHECK_LINE_LEN + 1);
    struct stat st;
    size_t n = 0;
    int fd = -1, rc;
    if (!plain || !full || !text) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    if (lstat(path, &st) == 0) {
        notes__set_detail("'%s' already exists; an identity is never "
                          "replaced", path);
        rc = NOTES_EEXIST;
        goto out;
    }
    if ((rc = notes_identity_save(id, plain, passphrase)))
        goto out;
    fd = open(plain, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t got = fd >= 0 ? read(fd, text, KEY_TEXT_MAX + 1) : -1;
    if (fd >= 0)
        close(fd);
    unlink(plain);
    if (got <= 0 || got > KEY_TEXT_MAX) {
        notes__set_detail("cannot read back '%s'", plain);
        rc = NOTES_EIO;
        goto out;
    }
    n = (size_t)got;
    notes_check_line(text, n, (char *)text + n);
    n += NOTES_CHECK_LINE_LEN;
    fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0 || notes__write_all(fd, text, n, 0) != 0 || fsync(fd) != 0) {
        notes__set_detail("cannot write '%s': %s", full, strerror(errno));
        rc = NOTES_EIO;
    }
    if (fd >= 0 && close(fd) != 0 && rc == NOTES_OK) {
        notes__set_detail("cannot write '%s': %s", full, strerror(errno));
        rc = NOTES_EIO;
    }
    if (rc == NOTES_OK && link(full, path) != 0) {
        rc = errno == EEXIST ? NOTES_EEXIST : NOTES_EIO;
        notes__set_detail("cannot create '%s': %s", path, strerror(errno));
    }
    if (fd >= 0)
        unlink(full);
    if (rc == NOTES_OK) {
        char *dir = notes__strdup(path), *slash = dir ? strrchr(dir, '/') : 0;
        if (slash && slash != dir)
            *slash = 0;
        rc = dir ? notes__fsync_dir(slash ? dir : ".") : NOTES_ENOMEM;
        notes__free(dir);
    }
out:
    if (text)
        notes__secure_free(text); /* wipes */
    notes__free(plain);
    notes__free(full);
    return rc;
}

/* ---- verification ---- */

struct vf {
    notes_file_fn fn;
    void *arg;
    int first; /* code of the first damaged file */
};

static void report(struct vf *v, const char *path, int code, int checked)
{
    char msg[600];
    notes_file_status st;
    if (code)
        snprintf(msg, sizeof(msg), "%s", notes_last_detail());
    else
        snprintf(msg, sizeof(msg), "%s", checked ? "" : NO_CHECK);
    st.path = path;
    st.code = code;
    st.checked = checked && code == NOTES_OK;
    st.message = msg;
    if (code && !v->first)
        v->first = code;
    if (v->fn)
        v->fn(&st, v->arg);
}

/* Whether the key file ends with a check line. The tail of an older file
 * holds part of a plain secret: it lives on the stack only, wiped. */
static int key_has_check(const char *path)
{
    char tail[NOTES_CHECK_LINE_LEN];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    int has = 0;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size >= (off_t)sizeof(tail) &&
        pread(fd, tail, sizeof(tail), st.st_size - (off_t)sizeof(tail)) ==
            (ssize_t)sizeof(tail))
        has = memcmp(tail, CHECK_TAG, CHECK_TAG_LEN) == 0;
    notes__wipe(tail, sizeof(tail));
    close(fd);
    return has;
}

static void verify_key(struct vf *v, const char *path, int required)
{
    struct stat st;
    int enc = 0;
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        if (required) {
            notes__set_detail("'%s' is missing", path);
            report(v, path, NOTES_ENOTFOUND, 0);
        }
        return;
    }
    /* The key file parser checks the check line, the structure, and that
     * an unprotected secret matches the public key. */
    int rc = notes_identity_file_encrypted(path, &enc);
    report(v, path, rc, rc == NOTES_OK && key_has_check(path));
}

static int pub_parse(const char *path, const char *s)
{
    const char *nl1 = strchr(s, '\n');
    const char *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    char key[NOTES_KEY_STRLEN + 1];
    uint8_t pk[32];
    size_t kl;
    if (!nl1 || !nl2 || nl2[1] || strncmp(s, "name ", 5) != 0 ||
        nl1 - s == 5 || strncmp(nl1 + 1, "key ", 4) != 0) {
        notes__set_detail("'%s' is malformed (expected the lines \"name "
                          "NAME\" and \"key nk...\")", path);
        return NOTES_ECORRUPT;
    }
    kl = (size_t)(nl2 - (nl1 + 5));
    if (kl >= sizeof(key)) {
        notes__set_detail("'%s': malformed public key", path);
        return NOTES_ECORRUPT;
    }
    memcpy(key, nl1 + 5, kl);
    key[kl] = 0;
    if (notes_key_decode(key, pk) != NOTES_OK) {
        notes__set_detail("'%s': malformed public key", path);
        return NOTES_ECORRUPT;
    }
    return NOTES_OK;
}

static void verify_pub(struct vf *v, const char *path)
{
    uint8_t *buf = NULL;
    size_t len;
    int checked = 0;
    int rc = notes__read_checked(path, PUB_MAX, &buf, &len, &checked);
    if (rc == NOTES_ENOTFOUND)
        notes__set_detail("'%s' is missing", path);
    if (rc == NOTES_OK)
        rc = pub_parse(path, (const char *)buf);
    notes__free(buf);
    report(v, path, rc, checked);
}

/* HOME/trust: "nk... NAME" per line (what `notes trust` writes). */
static int trust_parse(const char *path, const char *s)
{
    size_t line = 0;
    while (*s) {
        const char *nl = strchr(s, '\n'), *sp = strchr(s, ' ');
        char key[NOTES_KEY_STRLEN + 1];
        uint8_t pk[32];
        line++;
        if (!nl || !sp || sp > nl || (size_t)(sp - s) >= sizeof(key) ||
            nl - sp - 1 < 1 || nl - sp - 1 > NOTES_NAME_MAX)
            goto bad;
        memcpy(key, s, (size_t)(sp - s));
        key[sp - s] = 0;
        if (notes_key_decode(key, pk) != NOTES_OK)
            goto bad;
        s = nl + 1;
        continue;
    bad:
        notes__set_detail("'%s' line %zu: not \"nk... NAME\"", path, line);
        return NOTES_ECORRUPT;
    }
    return NOTES_OK;
}

static void verify_text(struct vf *v, const char *path, size_t max,
                        int (*parse)(const char *, const char *))
{
    uint8_t *buf = NULL;
    size_t len;
    int checked = 0;
    int rc = notes__read_checked(path, max, &buf, &len, &checked);
    if (rc == NOTES_ENOTFOUND)
        return; /* optional */
    if (rc == NOTES_OK)
        rc = parse(path, (const char *)buf);
    notes__free(buf);
    report(v, path, rc, checked);
}

static int certs_parse_check(const char *path, const char *s)
{
    return notes__certs_check_text(path, (const uint8_t *)s, strlen(s));
}

int notes_replica_verify_files(const char *home, notes_file_fn fn, void *arg)
{
    static const char *const names[] = {"identity", "identity.pub", "person",
                                        "certs", "trust"};
    char *paths[NOTES__ARRAY_LEN(names)] = {0};
    struct vf v = {fn, arg, NOTES_OK};
    int rc = NOTES_OK;
    if (!home) {
        notes__set_detail("notes_replica_verify_files: home is NULL");
        return NOTES_EINVAL;
    }
    for (size_t i = 0; i < NOTES__ARRAY_LEN(names); i++) {
        size_t n = strlen(home) + strlen(names[i]) + 2;
        if (!(paths[i] = notes__malloc(n))) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        snprintf(paths[i], n, "%s/%s", home, names[i]);
    }
    verify_key(&v, paths[0], 1);
    verify_pub(&v, paths[1]);
    verify_key(&v, paths[2], 0);
    verify_text(&v, paths[3], CERTS_MAX, certs_parse_check);
    verify_text(&v, paths[4], TRUST_MAX, trust_parse);
    rc = v.first;
out:
    for (size_t i = 0; i < NOTES__ARRAY_LEN(names); i++)
        notes__free(paths[i]);
    return rc;
}
