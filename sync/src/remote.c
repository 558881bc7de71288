/*
 * remote.c: git remotes of a replica ($NOTES_HOME/remotes), the keys and
 * tags derived from a space secret for them, and the sealed pack format
 * (docs/remote.md). The sync itself is remote_sync.c; git runs in
 * remote_git.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote_internal.h"

#define CONFIG_MAX (1u << 20)
#define PACK_MAGIC "NRP1"
#define PACK_AD "notes-remote/1 pack"
#define PACK_MIN 512 /* padded plaintext bytes at least */
#define PACK_EXPAND_MAX 1024u /* most a pack's zstd may expand */

/* ---- keys and tags ---- */

static void kdf(const uint8_t secret[32], const char *label,
                const uint8_t *extra, size_t nextra, uint8_t *out,
                size_t outlen)
{
    uint8_t in[64 + 32];
    size_t l = strlen(label);
    for (size_t i = 0; i < l; i++) /* bytes, not a string: no NUL */
        in[i] = (uint8_t)label[i];
    if (nextra)
        memcpy(in + l, extra, nextra);
    notes__hash(out, outlen, in, l + nextra, secret, 32);
    notes__wipe(in, sizeof(in));
}

void remote_keys_derive(const uint8_t secret[32], struct remote_keys *k)
{
    kdf(secret, "notes-remote/1 key", NULL, 0, k->key, 32);
    kdf(secret, "notes-remote/1 space tag", NULL, 0, k->space_tag,
        REMOTE_TAG_LEN);
    notes__hex(k->space_hex, k->space_tag, REMOTE_TAG_LEN);
}

void remote_device_tag(const uint8_t secret[32], const uint8_t pk[32],
                       char hex[2 * REMOTE_TAG_LEN + 1])
{
    uint8_t t[REMOTE_TAG_LEN];
    kdf(secret, "notes-remote/1 device", pk, 32, t, sizeof(t));
    notes__hex(hex, t, sizeof(t));
}

/* ---- packs ---- */

size_t remote_padme(size_t n)
{
    /* Padmé (Nikitin et al., PETS 2019): round up so that only
     * O(log log n) bits of the length show, at most 12% overhead. */
    size_t e, s, bits;
    if (n < PACK_MIN)
        return PACK_MIN;
    e = 0;
    while ((n >> (e + 1)) != 0)
        e++; /* floor(log2 n) */
    s = 0;
    while ((e >> (s + 1)) != 0)
        s++;
    s += 1; /* floor(log2 e) + 1 */
    if (s >= e)
        return n; /* not for n >= PACK_MIN; said for the analyzer */
    bits = e - s;
    size_t mask = ((size_t)1 << bits) - 1;
    return (n + mask) & ~mask;
}

void remote_pack_clear(struct remote_pack *p)
{
    if (!p)
        return;
    free(p->names);
    free(p->entries);
    if (p->plain)
        notes_free(p->plain);
    memset(p, 0, sizeof(*p));
}

int remote_pack_seal(const struct remote_keys *k, const uint8_t device[32],
                     uint64_t seq, const uint8_t (*names)[REMOTE_PACK_NAME_LEN],
                     size_t nnames, const struct remote_entry *entries,
                     size_t nentries, uint8_t **out, size_t *n)
{
    struct notes_buf plain, z;
    uint8_t nonce[24], ad[sizeof(PACK_AD) - 1 + REMOTE_TAG_LEN];
    uint8_t *sealed = NULL;
    size_t padded;
    int rc;
    *out = NULL;
    *n = 0;
    notes__buf_init(&plain, SIZE_MAX / 2);
    notes__buf_init(&z, SIZE_MAX / 2);
    if ((rc = notes__buf_put(&plain, PACK_MAGIC, 4)) ||
        (rc = notes__buf_put(&plain, device, 32)) ||
        (rc = notes__buf_put_varint(&plain, seq)) ||
        (rc = notes__buf_put_varint(&plain, nnames)) ||
        (rc = notes__buf_put(&plain, names, nnames * REMOTE_PACK_NAME_LEN)) ||
        (rc = notes__buf_put_varint(&plain, nentries)))
        goto out;
    for (size_t i = 0; i < nentries; i++)
        if ((rc = notes__buf_put(&plain, entries[i].id, 16)) ||
            (rc = notes__buf_put_bytes(&plain, entries[i].bundle,
                                       entries[i].n)))
            goto out;
    /* Length, compressed plaintext, zeros up to the padded size. */
    if ((rc = notes__buf_put_u32le(&z, 0)) ||
        (rc = notes__compress(&z, plain.data, plain.len, 9, 0)))
        goto out;
    if (z.len - 4 > UINT32_MAX) {
        rc = NOTES_ETOOBIG;
        goto out;
    }
    notes__store_u32le(z.data, (uint32_t)(z.len - 4));
    padded = remote_padme(z.len);
    if ((rc = notes__buf_reserve(&z, padded - z.len)))
        goto out;
    memset(z.data + z.len, 0, padded - z.len);
    z.len = padded;
    if (24 + padded + NOTES__AEAD_ABYTES > REMOTE_PACK_MAX) {
        notes_sync__detail("a pack of %zu bytes is over the limit of %u",
                           padded, REMOTE_PACK_MAX);
        rc = NOTES_ETOOBIG;
        goto out;
    }
    if (!(sealed = malloc(24 + padded + NOTES__AEAD_ABYTES))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    memcpy(ad, PACK_AD, sizeof(PACK_AD) - 1);
    memcpy(ad + sizeof(PACK_AD) - 1, k->space_tag, REMOTE_TAG_LEN);
    notes__random(nonce, sizeof(nonce));
    memcpy(sealed, nonce, 24);
    notes__aead_seal(sealed + 24, z.data, padded, ad, sizeof(ad), nonce,
                     k->key);
    *out = sealed;
    *n = 24 + padded + NOTES__AEAD_ABYTES;
out:
    notes__buf_release(&plain);
    notes__buf_release(&z);
    return rc;
}

int remote_pack_open(const struct remote_keys *k, const uint8_t *p, size_t n,
                     struct remote_pack *out)
{
    uint8_t ad[sizeof(PACK_AD) - 1 + REMOTE_TAG_LEN], *padded = NULL;
    struct notes_buf plain;
    struct notes_reader r;
    const uint8_t *raw;
    uint32_t zlen;
    uint64_t v;
    size_t m;
    int rc = NOTES_ECORRUPT;
    memset(out, 0, sizeof(*out));
    notes__buf_init(&plain, SIZE_MAX / 2);
    if (n < 24 + NOTES__AEAD_ABYTES + 4 || n > REMOTE_PACK_MAX) {
        notes_sync__detail("%zu bytes: not a pack", n);
        return NOTES_ECORRUPT;
    }
    m = n - 24 - NOTES__AEAD_ABYTES;
    if (!(padded = malloc(m)))
        return NOTES_ENOMEM;
    memcpy(ad, PACK_AD, sizeof(PACK_AD) - 1);
    memcpy(ad + sizeof(PACK_AD) - 1, k->space_tag, REMOTE_TAG_LEN);
    if (notes__aead_open(padded, p + 24, n - 24, ad, sizeof(ad), p,
                         k->key) != NOTES_OK) {
        notes_sync__detail("does not authenticate under the space's key "
                           "(not written by a member, or altered)");
        goto out;
    }
    zlen = notes__load_u32le(padded);
    if ((size_t)zlen > m - 4) {
        notes_sync__detail("malformed (its length is past its end)");
        goto out;
    }
    /* A member holds the key and can seal anything: a few KiB that claim
     * a GiB are refused before the memory is spent. Real packs expand
     * far less (signatures and ids do not compress): 81x for 1,000 near
     * copies of one sample note (tests/bench/run_remote.sh); the bound
     * leaves room for more alike notes. Under 1 MiB any ratio passes. */
    if (notes__decompress(&plain, padded + 4, zlen, 1u << 30,
                          PACK_EXPAND_MAX) != NOTES_OK) {
        notes_sync__detail("does not decompress: %s", notes_last_detail());
        rc = NOTES_ECORRUPT;
        goto out;
    }
    rc = NOTES_ECORRUPT;
    notes__reader_init(&r, plain.data, plain.len);
    if (notes__get_raw(&r, 4, &raw) || memcmp(raw, PACK_MAGIC, 4) != 0 ||
        notes__get_raw(&r, 32, &raw))
        goto malformed;
    memcpy(out->device, raw, 32);
    if (notes__get_varint(&r, &out->seq) || notes__get_varint(&r, &v) ||
        v == 0 || v > REMOTE_PACKS_MAX ||
        notes__get_raw(&r, (size_t)v * REMOTE_PACK_NAME_LEN, &raw))
        goto malformed;
    out->nnames = (size_t)v;
    if (!(out->names = malloc(out->nnames * REMOTE_PACK_NAME_LEN))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    memcpy(out->names, raw, out->nnames * REMOTE_PACK_NAME_LEN);
    if (notes__get_varint(&r, &v) || v > notes__reader_left(&r) / 17)
        goto malformed;
    out->nentries = (size_t)v;
    if (!(out->entries = calloc(out->nentries + 1, sizeof(*out->entries)))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < out->nentries; i++) {
        if (notes__get_raw(&r, 16, &raw))
            goto malformed;
        memcpy(out->entries[i].id, raw, 16);
        if (notes__get_bytes(&r, SIZE_MAX, &raw, &out->entries[i].n))
            goto malformed;
        /* into the buffer that out->plain becomes */
        out->entries[i].bundle = plain.data + (raw - plain.data);
    }
    if (notes__reader_left(&r) != 0)
        goto malformed;
    if ((rc = notes__buf_detach(&plain, &out->plain, &out->nplain)))
        goto out;
    free(padded);
    return NOTES_OK;
malformed:
    notes_sync__detail("authenticates but is malformed");
out:
    free(padded);
    notes__buf_release(&plain);
    remote_pack_clear(out);
    return rc;
}

/* ---- the remotes file ---- */

static int name_check(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > NOTES_REMOTE_NAME_MAX)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_')))
            goto bad;
    }
    return NOTES_OK;
bad:
    notes_sync__detail("remote name '%.40s': 1 to %d of a-z, 0-9, '-' and "
                       "'_', starting with a letter or digit",
                       name ? name : "", NOTES_REMOTE_NAME_MAX);
    return NOTES_EINVAL;
}

static int url_check(const char *url)
{
    size_t n = url ? strlen(url) : 0;
    if (n == 0 || n > NOTES_REMOTE_URL_MAX) {
        notes_sync__detail("a remote URL is 1 to %d bytes",
                           NOTES_REMOTE_URL_MAX);
        return NOTES_EINVAL;
    }
    /* git would take a leading '-' as an option. */
    if (url[0] == '-') {
        notes_sync__detail("remote URL '%.80s' starts with '-'", url);
        return NOTES_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f) {
            notes_sync__detail("remote URL '%.80s' holds a space or a control "
                               "character (give a path without spaces, or "
                               "a file:// URL with %%20)", url);
            return NOTES_EINVAL;
        }
    return NOTES_OK;
}

static char *home_path(const char *home, const char *name)
{
    size_t n = strlen(home) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", home, name);
    return p;
}

char *remote__path(const char *home, const char *name, const char *suffix)
{
    size_t n = strlen(home) + strlen(name) + strlen(suffix) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/remotes.d/%s%s", home, name, suffix);
    return p;
}

int remote_config_lock(const char *home)
{
    char *p = home_path(home, "remotes.lock");
    int fd;
    if (!p)
        return NOTES_ENOMEM;
    fd = notes_sync__lock_file(p, 1);
    free(p);
    return fd;
}

void remote_config_clear(struct remote_config *c)
{
    free(c->remotes);
    free(c->seen);
    memset(c, 0, sizeof(*c));
}

/* "notes-remotes 1", then "remote NAME SPACE URL" and "seen NAME DEVTAG
 * COMMIT SEQ" lines, then the check line (docs/remote.md). */
int remote_config_load(const char *home, struct remote_config *c)
{
    char *path = home_path(home, "remotes"), *text = NULL, *p;
    size_t n, capr = 0, caps = 0, line = 1;
    int rc, checked;
    memset(c, 0, sizeof(*c));
    if (!path)
        return NOTES_ENOMEM;
    rc = notes_sync__read_checked(path, CONFIG_MAX, &text, &n, &checked);
    if (rc == NOTES_ENOTFOUND) {
        free(path);
        return NOTES_OK;
    }
    if (rc == NOTES_ECORRUPT || (rc == NOTES_OK && !checked)) {
        notes_sync__detail("'%s' is damaged (its check line does not match)",
                           path);
        rc = NOTES_ECORRUPT;
    }
    if (rc)
        goto out;
    rc = NOTES_ECORRUPT;
    if (strncmp(text, "notes-remotes 1\n", 16) != 0) {
        notes_sync__detail("'%s': first line must be 'notes-remotes 1'", path);
        goto out;
    }
    p = text + 16;
    while (*p) {
        char *nl = strchr(p, '\n');
        line++;
        if (!nl)
            goto bad;
        *nl = '\0';
        if (strncmp(p, "remote ", 7) == 0) {
            notes_sync_remote *r;
            char *a = p + 7, *b = strchr(a, ' '), *u;
            if (!b || !(u = strchr(b + 1, ' ')))
                goto bad;
            *b = *u = '\0';
            if (notes__grow(&c->remotes, &capr, c->nremotes + 1,
                            sizeof(*c->remotes), 8)) {
                rc = NOTES_ENOMEM;
                goto out;
            }
            r = &c->remotes[c->nremotes];
            memset(r, 0, sizeof(*r));
            if (name_check(a) || notes_sync_space_name_check(b + 1) ||
                url_check(u + 1))
                goto bad;
            snprintf(r->name, sizeof(r->name), "%s", a);
            snprintf(r->space, sizeof(r->space), "%s", b + 1);
            snprintf(r->url, sizeof(r->url), "%s", u + 1);
            c->nremotes++;
        } else if (strncmp(p, "seen ", 5) == 0) {
            struct remote_seen *s;
            char name[NOTES_REMOTE_NAME_MAX + 2], dev[2 * REMOTE_TAG_LEN + 2],
                commit[REMOTE_OID_MAX + 2];
            unsigned long long seq;
            int end = 0;
            if (sscanf(p + 5, "%33s %33s %65s %llu%n", name, dev, commit, &seq,
                       &end) != 4 || p[5 + end] != '\0' || name_check(name) ||
                strlen(dev) != 2 * REMOTE_TAG_LEN ||
                strspn(dev, "0123456789abcdef") != strlen(dev) ||
                strlen(commit) < 40 || strlen(commit) > REMOTE_OID_MAX ||
                strspn(commit, "0123456789abcdef") != strlen(commit))
                goto bad;
            if (notes__grow(&c->seen, &caps, c->nseen + 1, sizeof(*c->seen),
                            8)) {
                rc = NOTES_ENOMEM;
                goto out;
            }
            s = &c->seen[c->nseen++];
            memset(s, 0, sizeof(*s));
            /* lengths checked above */
            memcpy(s->remote, name, strlen(name) + 1);
            memcpy(s->dev, dev, strlen(dev) + 1);
            memcpy(s->commit, commit, strlen(commit) + 1);
            s->seq = seq;
        } else {
            goto bad;
        }
        p = nl + 1;
    }
    rc = NOTES_OK;
    goto out;
bad:
    notes_sync__detail("'%s' line %zu is malformed", path, line);
    rc = NOTES_ECORRUPT;
out:
    if (rc)
        remote_config_clear(c);
    free(text);
    free(path);
    return rc;
}

int remote_config_store(const char *home, const struct remote_config *c)
{
    struct notes_buf b;
    char *path = home_path(home, "remotes");
    int rc;
    if (!path)
        return NOTES_ENOMEM;
    /* The check line too stays within CONFIG_MAX (the load's limit). */
    notes__buf_init(&b, CONFIG_MAX - NOTES_CHECK_LINE_LEN);
    rc = notes__buf_puts(&b, "notes-remotes 1\n");
    for (size_t i = 0; !rc && i < c->nremotes; i++)
        rc = notes__buf_printf(&b, "remote %s %s %s\n", c->remotes[i].name,
                               c->remotes[i].space, c->remotes[i].url);
    for (size_t i = 0; !rc && i < c->nseen; i++)
        rc = notes__buf_printf(&b, "seen %s %s %s %llu\n", c->seen[i].remote,
                               c->seen[i].dev, c->seen[i].commit,
                               (unsigned long long)c->seen[i].seq);
    if (!rc)
        rc = notes__write_checked(path, b.data, b.len, 0600);
    notes__buf_release(&b);
    free(path);
    return rc;
}

/* ---- the public calls ---- */

/* For a change of the remotes file: the lock taken and the file loaded.
 * The lock's fd (close it after remote_config_clear), or a negative code
 * with nothing held; *at: the index of remote `name`, c->nremotes when
 * there is none. */
static int config_edit(const char *home, struct remote_config *c,
                       const char *name, size_t *at)
{
    int rc, fd = remote_config_lock(home);
    *at = 0;
    if (fd < 0)
        return fd;
    if ((rc = remote_config_load(home, c))) {
        close(fd);
        return rc;
    }
    for (*at = 0; *at < c->nremotes; ++*at)
        if (strcmp(c->remotes[*at].name, name) == 0)
            break;
    return fd;
}

int notes_sync_remote_add(const char *home, const char *name, const char *url,
                          const char *space)
{
    struct remote_config c;
    notes_sync_space s;
    size_t at;
    int rc, fd;
    if (!home)
        return NOTES_EINVAL;
    if ((rc = name_check(name)) || (rc = url_check(url)))
        return rc;
    if ((rc = notes_sync_space_load(home, space, &s)))
        return rc;
    notes_sync_space_clear(&s);
    /* A folder here is kept as an absolute path: git runs wherever notes
     * (or the daemon) happens to run. */
    char abs[PATH_MAX];
    struct stat st;
    if (!strstr(url, "://") && stat(url, &st) == 0 && S_ISDIR(st.st_mode) &&
        realpath(url, abs) && url_check(abs) == NOTES_OK)
        url = abs;
    if ((fd = config_edit(home, &c, name, &at)) < 0)
        return fd;
    if (at < c.nremotes) {
        notes_sync__detail("a remote called '%s' exists (%s, space %s)", name,
                           c.remotes[at].url, c.remotes[at].space);
        rc = NOTES_EEXIST;
        goto out;
    }
    {
        size_t cap = c.nremotes;
        if ((rc = notes__grow(&c.remotes, &cap, c.nremotes + 1,
                              sizeof(*c.remotes), 8)))
            goto out;
    }
    notes_sync_remote *r = &c.remotes[c.nremotes++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->space, sizeof(r->space), "%s", space);
    memcpy(r->url, url, strlen(url) + 1); /* url_check: <= the max */
    rc = remote_config_store(home, &c);
out:
    remote_config_clear(&c);
    close(fd);
    return rc;
}

/* rm -r of a folder we made (no symlink is followed). */
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *c = malloc(n);
            if (!c)
                break;
            snprintf(c, n, "%s/%s", path, e->d_name);
            remove_tree(c);
            free(c);
        }
        if (d)
            closedir(d);
        (void)rmdir(path);
    } else {
        (void)unlink(path);
    }
}

int notes_sync_remote_remove(const char *home, const char *name)
{
    struct remote_config c;
    size_t at;
    int rc, fd;
    if (!home)
        return NOTES_EINVAL;
    if ((rc = name_check(name)))
        return rc;
    if ((fd = config_edit(home, &c, name, &at)) < 0)
        return fd;
    if (at == c.nremotes) {
        notes_sync__detail("no remote called '%s'", name);
        rc = NOTES_ENOTFOUND;
        goto out;
    }
    memmove(&c.remotes[at], &c.remotes[at + 1],
            (c.nremotes - at - 1) * sizeof(*c.remotes));
    c.nremotes--;
    for (size_t i = 0; i < c.nseen;) {
        if (strcmp(c.seen[i].remote, name) == 0) {
            memmove(&c.seen[i], &c.seen[i + 1],
                    (c.nseen - i - 1) * sizeof(*c.seen));
            c.nseen--;
        } else {
            i++;
        }
    }
    if ((rc = remote_config_store(home, &c)))
        goto out;
    {
        char *m = remote__path(home, name, ".git");
        char *st = remote__path(home, name, ".state");
        if (m)
            remove_tree(m);
        if (st)
            (void)unlink(st);
        free(m);
        free(st);
    }
out:
    remote_config_clear(&c);
    close(fd);
    return rc;
}

int notes_sync_remote_list(const char *home, notes_sync_remote **out,
                           size_t *n)
{
    struct remote_config c;
    int rc;
    if (!out || !n)
        return NOTES_EINVAL;
    *out = NULL;
    *n = 0;
    if (!home)
        return NOTES_EINVAL;
    if ((rc = remote_config_load(home, &c)))
        return rc;
    *out = c.remotes;
    *n = c.nremotes;
    c.remotes = NULL;
    remote_config_clear(&c);
    return NOTES_OK;
}

int notes_sync_remote_verify_files(const char *home, notes_file_fn fn,
                                   void *arg)
{
    struct remote_config c;
    struct stat st;
    notes_file_status fs;
    char msg[600];
    char *path;
    int rc;
    if (!home)
        return NOTES_EINVAL;
    if (!(path = home_path(home, "remotes")))
        return NOTES_ENOMEM;
    if (lstat(path, &st) != 0) { /* no remote ever added */
        free(path);
        return NOTES_OK;
    }
    /* No lock: the file is replaced atomically, and verifying must not
     * create remotes.lock. The remotes file always had its check line. */
    rc = remote_config_load(home, &c);
    remote_config_clear(&c);
    snprintf(msg, sizeof(msg), "%s", rc ? notes_sync_last_detail() : "");
    fs.path = path;
    fs.code = rc;
    fs.checked = rc == NOTES_OK;
    fs.message = msg;
    if (fn)
        fn(&fs, arg);
    free(path);
    return rc;
}

int notes_sync_remote_get(const char *home, const char *name,
                          notes_sync_remote *out)
{
    notes_sync_remote *v;
    size_t n;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = name_check(name)))
        return rc;
    if ((rc = notes_sync_remote_list(home, &v, &n)))
        return rc;
    rc = NOTES_ENOTFOUND;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) {
            *out = v[i];
            rc = NOTES_OK;
        }
    if (rc)
        notes_sync__detail("no remote called '%s' (notes remote list)", name);
    free(v);
    return rc;
}
