/*
 * people.c: person keys, the pairing code, device links and revocations,
 * and the replica's list of certificates to publish (HOME/certs).
 *
 * Byte layouts (docs/format.md, "People"):
 *   link   = 01 | person[32] | device[32] | time u64le | consent[64] |
 *            namelen u8 | name | sig[64]
 *            consent = Ed25519_device("notes-pair v1\0" || device)
 *            sig     = Ed25519_person("notes-link v1\0" || link[0 .. sig))
 *   revoke = 01 | time u64le | link | sig[64]
 *            sig     = Ed25519_person("notes-revoke v1\0" || revoke[0 .. sig))
 * The consent stops a person key from claiming someone else's device (and
 * with it their words); the person signature stops a device from claiming
 * a person. A revocation embeds the link it ends, so it can be checked on
 * its own, by anyone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "change.h"
#include "files.h"
#include "people.h"
#include "replica.h"
#include "store.h"

static const char PAIR_CTX[] = "notes-pair v1"; /* sizeof includes the NUL */
static const char LINK_CTX[] = "notes-link v1";
static const char REVOKE_CTX[] = "notes-revoke v1";

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* Ed25519 over ctx (with its NUL) || msg: one domain per kind of statement,
 * so no signature can be replayed as another kind. */
/* ctx || msg, allocated (NULL when memory runs out). */
static uint8_t *ctx_msg(const char *ctx, size_t ctxlen, const uint8_t *msg,
                        size_t n)
{
    uint8_t *buf = notes__malloc(ctxlen + n);
    if (buf) {
        memcpy(buf, ctx, ctxlen);
        memcpy(buf + ctxlen, msg, n);
    }
    return buf;
}

static int sign_ctx(const notes_identity *id, const char *ctx, size_t ctxlen,
                    const uint8_t *msg, size_t n, uint8_t sig[64])
{
    uint8_t *buf = ctx_msg(ctx, ctxlen, msg, n);
    int rc = buf ? notes_identity_sign(id, buf, ctxlen + n, sig) : NOTES_ENOMEM;
    notes__free(buf);
    return rc;
}

static int verify_ctx(const uint8_t pk[32], const char *ctx, size_t ctxlen,
                      const uint8_t *msg, size_t n, const uint8_t sig[64])
{
    uint8_t *buf = ctx_msg(ctx, ctxlen, msg, n);
    int rc = buf ? notes_signature_verify(sig, buf, ctxlen + n, pk)
                 : NOTES_ENOMEM;
    notes__free(buf);
    return rc;
}

int notes__link_parse(const uint8_t *p, size_t n, struct notes__link *l)
{
    memset(l, 0, sizeof(*l));
    if (n < 203 || n > NOTES__LINK_MAX || p[0] != 1)
        return NOTES_ECORRUPT;
    size_t namelen = p[137];
    if (namelen == 0 || namelen > NOTES_NAME_MAX || n != 202 + namelen ||
        !notes__utf8_valid(p + 138, namelen))
        return NOTES_ECORRUPT;
    l->person = p + 1;
    l->device = p + 33;
    l->time_ms = notes__load_u64le(p + 65);
    l->consent = p + 73;
    l->name = (const char *)p + 138;
    l->namelen = namelen;
    l->bytes = p;
    l->n = n;
    return NOTES_OK;
}

int notes__revoke_parse(const uint8_t *p, size_t n, struct notes__revoke *rv)
{
    memset(rv, 0, sizeof(*rv));
    if (n < 73 + 203 || n > NOTES__REVOKE_MAX || p[0] != 1)
        return NOTES_ECORRUPT;
    int rc = notes__link_parse(p + 9, n - 73, &rv->link);
    if (rc)
        return rc;
    rv->time_ms = notes__load_u64le(p + 1);
    rv->bytes = p;
    rv->n = n;
    return NOTES_OK;
}

int notes__consent_check(const uint8_t device[32], const uint8_t sig[64])
{
    return verify_ctx(device, PAIR_CTX, sizeof(PAIR_CTX), device, 32, sig);
}

int notes__link_check(const struct notes__link *l)
{
    char pf[NOTES_FPR_STRLEN], df[NOTES_FPR_STRLEN];
    notes_key_fingerprint(l->person, pf);
    notes_key_fingerprint(l->device, df);
    if (notes__consent_check(l->device, l->consent) != NOTES_OK) {
        notes__set_detail("link of device %s to person %s: the device's "
                          "consent does not verify", df, pf);
        return NOTES_EBADLINK;
    }
    if (verify_ctx(l->person, LINK_CTX, sizeof(LINK_CTX), l->bytes, l->n - 64,
                   l->bytes + l->n - 64) != NOTES_OK) {
        notes__set_detail("link of device %s to person %s: not signed by "
                          "the person key %s", df, pf, pf);
        return NOTES_EBADLINK;
    }
    return NOTES_OK;
}

int notes__revoke_check(const struct notes__revoke *rv)
{
    int rc = notes__link_check(&rv->link);
    if (rc)
        return rc;
    if (verify_ctx(rv->link.person, REVOKE_CTX, sizeof(REVOKE_CTX), rv->bytes,
                   rv->n - 64, rv->bytes + rv->n - 64) != NOTES_OK) {
        char pf[NOTES_FPR_STRLEN], df[NOTES_FPR_STRLEN];
        notes_key_fingerprint(rv->link.person, pf);
        notes_key_fingerprint(rv->link.device, df);
        notes__set_detail("revocation of device %s: not signed by its "
                          "person key %s", df, pf);
        return NOTES_EBADLINK;
    }
    return NOTES_OK;
}

int notes__consent_make(const notes_identity *device, uint8_t sig[64])
{
    return sign_ctx(device, PAIR_CTX, sizeof(PAIR_CTX),
                    notes_identity_public_key(device), 32, sig);
}

int notes__link_make(const notes_identity *person, const uint8_t device[32],
                     const uint8_t consent[64], uint64_t time_ms,
                     struct notes_buf *out)
{
    const char *name = notes_identity_name(person);
    size_t namelen = strlen(name);
    uint8_t buf[NOTES__LINK_MAX];
    if (namelen == 0 || namelen > NOTES_NAME_MAX)
        return NOTES_EINVAL;
    buf[0] = 1;
    memcpy(buf + 1, notes_identity_public_key(person), 32);
    memcpy(buf + 33, device, 32);
    notes__store_u64le(buf + 65, time_ms);
    memcpy(buf + 73, consent, 64);
    buf[137] = (uint8_t)namelen;
    for (size_t i = 0; i < namelen; i++) /* bytes, not a C string */
        buf[138 + i] = (uint8_t)name[i];
    int rc = sign_ctx(person, LINK_CTX, sizeof(LINK_CTX), buf, 138 + namelen,
                      buf + 138 + namelen);
    return rc ? rc : notes__buf_put(out, buf, 202 + namelen);
}

int notes__revoke_make(const notes_identity *person, const uint8_t *link,
                       size_t n, uint64_t time_ms, struct notes_buf *out)
{
    uint8_t buf[NOTES__REVOKE_MAX];
    if (n > NOTES__LINK_MAX)
        return NOTES_EINVAL;
    buf[0] = 1;
    notes__store_u64le(buf + 1, time_ms);
    memcpy(buf + 9, link, n);
    int rc = sign_ctx(person, REVOKE_CTX, sizeof(REVOKE_CTX), buf, 9 + n,
                      buf + 9 + n);
    return rc ? rc : notes__buf_put(out, buf, 73 + n);
}

/* ---- HOME/certs: one certificate per line, "link B64" or "revoke B64" ---- */

void notes__certs_release(struct notes__certs *c)
{
    for (size_t i = 0; i < c->n; i++)
        notes__free(c->c[i].bytes);
    notes__free(c->c);
    memset(c, 0, sizeof(*c));
}

static char *certs_path(const notes_replica *r)
{
    return notes__path_join(r->home, "certs");
}

static int certs_push(struct notes__certs *cs, int kind, const uint8_t *p,
                      size_t n)
{
    struct notes__cert *nc = notes__realloc(cs->c, (cs->n + 1) * sizeof(*nc));
    if (!nc)
        return NOTES_ENOMEM;
    cs->c = nc;
    nc[cs->n].bytes = notes__malloc(n);
    if (!nc[cs->n].bytes)
        return NOTES_ENOMEM;
    memcpy(nc[cs->n].bytes, p, n);
    nc[cs->n].n = n;
    nc[cs->n].kind = (uint8_t)kind;
    cs->n++;
    return NOTES_OK;
}

/* Parse the file; a line that does not hold a valid certificate makes the
 * whole file ECORRUPT: it is this replica's own statement of who it is. */
static int certs_parse(struct notes__certs *cs, const char *path,
                       const uint8_t *buf, size_t len)
{
    size_t line = 0, off = 0;
    while (off < len) {
        const uint8_t *nl = memchr(buf + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - buf) : len;
        char s[1024];
        uint8_t bin[NOTES__REVOKE_MAX];
        size_t bl = 0;
        int kind = 0;
        line++;
        if (end - off >= sizeof(s))
            goto bad;
        memcpy(s, buf + off, end - off);
        s[end - off] = 0;
        off = end + 1;
        const char *b64 = NULL;
        if (strncmp(s, "link ", 5) == 0) {
            kind = NOTES__K_LINK;
            b64 = s + 5;
        } else if (strncmp(s, "revoke ", 7) == 0) {
            kind = NOTES__K_REVOKE;
            b64 = s + 7;
        } else {
            goto bad;
        }
        if (notes__unbase64(bin, sizeof(bin), &bl, b64, strlen(b64)))
            goto bad;
        if (kind == NOTES__K_LINK) {
            struct notes__link l;
            if (notes__link_parse(bin, bl, &l) || notes__link_check(&l))
                goto bad;
        } else {
            struct notes__revoke rv;
            if (notes__revoke_parse(bin, bl, &rv) || notes__revoke_check(&rv))
                goto bad;
        }
        int rc = certs_push(cs, kind, bin, bl);
        if (rc)
            return rc;
        continue;
    bad:
        notes__set_detail("'%s' line %zu: not a valid link or revocation",
                          path, line);
        return NOTES_ECORRUPT;
    }
    return NOTES_OK;
}

int notes__certs_check_text(const char *path, const uint8_t *buf, size_t len)
{
    struct notes__certs cs = {0};
    int rc = certs_parse(&cs, path, buf, len);
    notes__certs_release(&cs);
    return rc;
}

static long long mtime_ns(const struct stat *st)
{
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

int notes__replica_certs(notes_replica *r, const struct notes__cert **c,
                         size_t *n)
{
    char *path = certs_path(r);
    struct stat st;
    int rc = NOTES_OK;
    if (!path)
        return NOTES_ENOMEM;
    long long mt = stat(path, &st) == 0 ? mtime_ns(&st) : -1;
    if (!r->certs.loaded || mt != r->certs.mtime_ns) {
        struct notes__certs fresh = {0};
        uint8_t *buf = NULL;
        size_t len = 0;
        int checked;
        if (mt >= 0) {
            rc = notes__read_checked(path, 1u << 20, &buf, &len, &checked);
            if (rc == NOTES_OK)
                rc = certs_parse(&fresh, path, buf, len);
            notes__free(buf);
        }
        if (rc) {
            notes__certs_release(&fresh);
            notes__free(path);
            return rc;
        }
        notes__certs_release(&r->certs);
        r->certs = fresh;
        r->certs.loaded = 1;
        r->certs.mtime_ns = mt;
    }
    notes__free(path);
    *c = r->certs.c;
    *n = r->certs.n;
    return NOTES_OK;
}

int notes__replica_add_cert(notes_replica *r, int kind, const uint8_t *p,
                            size_t n)
{
    const struct notes__cert *c;
    size_t nc;
    int rc;
    if ((rc = notes__replica_lock(r, 1)))
        return rc;
    if ((rc = notes__replica_certs(r, &c, &nc)))
        goto out;
    for (size_t i = 0; i < nc; i++)
        if (c[i].kind == kind && c[i].n == n && memcmp(c[i].bytes, p, n) == 0)
            goto out;
    if ((rc = certs_push(&r->certs, kind, p, n)))
        goto out;
    /* Rewrite the whole (small) file: atomically, never half a line. */
    struct notes_buf text;
    notes__buf_init(&text, 1u << 20);
    for (size_t i = 0; i < r->certs.n && rc == NOTES_OK; i++) {
        char b64[1024];
        const struct notes__cert *ci = &r->certs.c[i];
        if (notes__base64(b64, sizeof(b64), ci->bytes, ci->n) >= sizeof(b64)) {
            notes__set_detail("a certificate of %zu bytes is too long for "
                              "HOME/certs", ci->n);
            rc = NOTES_ETOOBIG;
            break;
        }
        const char *tag = ci->kind == NOTES__K_LINK ? "link " : "revoke ";
        if ((rc = notes__buf_put(&text, tag, strlen(tag))) == NOTES_OK &&
            (rc = notes__buf_put(&text, b64, strlen(b64))) == NOTES_OK)
            rc = notes__buf_put_u8(&text, '\n');
    }
    char *path = certs_path(r);
    if (rc == NOTES_OK && !path)
        rc = NOTES_ENOMEM;
    if (rc == NOTES_OK)
        rc = notes__write_checked(path, text.data, text.len, 0644);
    struct stat st;
    if (rc == NOTES_OK && stat(path, &st) == 0)
        r->certs.mtime_ns = mtime_ns(&st);
    if (rc) /* forget the in-memory copy: the file is the truth */
        r->certs.loaded = 0;
    notes__free(path);
    notes__buf_release(&text);
out:
    notes__replica_unlock(r);
    return rc;
}

/* ---- public: the person key and the replica's links ---- */

static char *person_path(const notes_replica *r)
{
    return notes__path_join(r->home, "person");
}

int notes_replica_has_person(const notes_replica *r)
{
    char *p = person_path(r);
    struct stat st;
    int has = p && stat(p, &st) == 0;
    notes__free(p);
    return has;
}

int notes_replica_person_load(notes_replica *r, const char *passphrase,
                              notes_identity **out)
{
    char *p = person_path(r);
    *out = NULL;
    if (!p)
        return NOTES_ENOMEM;
    int rc = notes_identity_load(p, passphrase, out);
    if (rc == NOTES_ENOTFOUND)
        notes__set_detail("no person key in '%s' (it is on the device where "
                          "you ran notes init; or: notes person import FILE)",
                          r->home);
    notes__free(p);
    return rc;
}

int notes_replica_person_needs_passphrase(const notes_replica *r)
{
    char *p = person_path(r);
    int enc = 0;
    if (p && notes_identity_file_encrypted(p, &enc) != NOTES_OK)
        enc = 0;
    notes__free(p);
    return enc;
}

/* Link this replica's own device to `person` and remember the link. */
static int self_link(notes_replica *r, const notes_identity *person)
{
    uint8_t consent[64];
    struct notes_buf link;
    int rc;
    if (!r->id) {
        notes__set_detail("the device key is locked: a passphrase is needed");
        return NOTES_ENEEDPASS;
    }
    if ((rc = notes__consent_make(r->id, consent)))
        return rc;
    notes__buf_init(&link, NOTES__LINK_MAX);
    rc = notes__link_make(person, r->pk, consent, wall_ms(), &link);
    if (rc == NOTES_OK)
        rc = notes__replica_add_cert(r, NOTES__K_LINK, link.data, link.len);
    notes__buf_release(&link);
    return rc;
}

/*
 * OUT *p: where the person key goes (malloc'd, freed by the caller even on
 * failure), which must not hold one yet: a person key is never replaced.
 */
static int person_path_unused(notes_replica *r, char **p)
{
    struct stat st;
    if (!(*p = person_path(r)))
        return NOTES_ENOMEM;
    if (stat(*p, &st) == 0) {
        notes__set_detail("'%s' already holds a person key", r->home);
        return NOTES_EEXIST;
    }
    return NOTES_OK;
}

/* The replica's person key: a new one named `name`, or the one in the key
 * file at `path`; stored beside the identity and linked to this device. */
static int person_adopt(notes_replica *r, const char *name, const char *path,
                        const char *passphrase)
{
    notes_identity *person = NULL;
    char *p = NULL;
    int rc;
    if ((rc = person_path_unused(r, &p)) == NOTES_OK &&
        (rc = path ? notes_identity_load(path, passphrase, &person)
                   : notes_identity_generate(name, &person)) == NOTES_OK &&
        (rc = notes__key_save_checked(person, p, passphrase)) == NOTES_OK)
        rc = self_link(r, person);
    notes_identity_free(person);
    notes__free(p);
    return rc;
}

int notes_replica_person_create(notes_replica *r, const char *name,
                                const char *passphrase)
{
    return person_adopt(r, name, NULL, passphrase);
}

int notes_replica_person_import(notes_replica *r, const char *path,
                                const char *passphrase)
{
    return person_adopt(r, NULL, path, passphrase);
}

#define PAIR_PREFIX "np1"

int notes_replica_pair_code(notes_replica *r, char **code)
{
    uint8_t bin[96];
    *code = NULL;
    if (!r->id) {
        notes__set_detail("the device key is locked: a passphrase is needed");
        return NOTES_ENEEDPASS;
    }
    memcpy(bin, r->pk, 32);
    int rc = notes__consent_make(r->id, bin + 32);
    if (rc)
        return rc;
    size_t cap = sizeof(PAIR_PREFIX) + 160;
    char *s = notes__malloc(cap);
    if (!s)
        return NOTES_ENOMEM;
    memcpy(s, PAIR_PREFIX, sizeof(PAIR_PREFIX) - 1);
    notes__base32(s + sizeof(PAIR_PREFIX) - 1, cap - sizeof(PAIR_PREFIX) + 1,
                  bin, sizeof(bin));
    *code = s;
    return NOTES_OK;
}

int notes_replica_link(notes_replica *r, const notes_identity *person,
                       const char *code, uint8_t device[32])
{
    uint8_t bin[96];
    struct notes_buf link;
    char trimmed[200];
    size_t j = 0;
    /* Tolerate what copying adds: spaces, line breaks, upper case. */
    for (const char *s = code; *s && j + 1 < sizeof(trimmed); s++)
        if (*s != ' ' && *s != '\n' && *s != '\r' && *s != '\t' && *s != '-')
            trimmed[j++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    trimmed[j] = 0;
    if (strncmp(trimmed, PAIR_PREFIX, 3) != 0 ||
        notes__unbase32(bin, sizeof(bin), trimmed + 3) != NOTES_OK) {
        notes__set_detail("not a pairing code (it starts with np1; run "
                          "notes device add on the new device)");
        return NOTES_EINVAL;
    }
    if (notes__consent_check(bin, bin + 32) != NOTES_OK) {
        notes__set_detail("the pairing code is damaged: its signature does "
                          "not verify");
        return NOTES_EBADLINK;
    }
    notes__buf_init(&link, NOTES__LINK_MAX);
    int rc = notes__link_make(person, bin, bin + 32, wall_ms(), &link);
    if (rc == NOTES_OK)
        rc = notes__replica_add_cert(r, NOTES__K_LINK, link.data, link.len);
    notes__buf_release(&link);
    if (rc == NOTES_OK && device)
        memcpy(device, bin, 32);
    return rc;
}

int notes_replica_revoke(notes_replica *r, const notes_identity *person,
                         const uint8_t device[32])
{
    const struct notes__cert *c;
    size_t n;
    int rc = notes__replica_certs(r, &c, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct notes__link l;
        if (c[i].kind != NOTES__K_LINK ||
            notes__link_parse(c[i].bytes, c[i].n, &l) ||
            memcmp(l.device, device, 32) != 0 ||
            memcmp(l.person, notes_identity_public_key(person), 32) != 0)
            continue;
        struct notes_buf rv;
        notes__buf_init(&rv, NOTES__REVOKE_MAX);
        /* c may move when the list grows: sign from a copy. */
        uint8_t copy[NOTES__LINK_MAX];
        size_t cn = c[i].n;
        memcpy(copy, c[i].bytes, cn);
        rc = notes__revoke_make(person, copy, cn, wall_ms(), &rv);
        if (rc == NOTES_OK)
            rc = notes__replica_add_cert(r, NOTES__K_REVOKE, rv.data, rv.len);
        notes__buf_release(&rv);
        return rc;
    }
    char fp[NOTES_FPR_STRLEN];
    notes_key_fingerprint(device, fp);
    notes__set_detail("device %s was not linked from this replica "
                      "(see: notes device list)", fp);
    return NOTES_ENOTFOUND;
}

int notes_replica_links(notes_replica *r, notes_link_info **out, size_t *nout)
{
    const struct notes__cert *c;
    size_t n;
    *out = NULL;
    *nout = 0;
    int rc = notes__replica_certs(r, &c, &n);
    if (rc)
        return rc;
    notes_link_info *v = notes__calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    if (!v)
        return NOTES_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct notes__link l;
        if (c[i].kind != NOTES__K_LINK || notes__link_parse(c[i].bytes, c[i].n, &l))
            continue;
        notes_link_info *li = &v[k++];
        memcpy(li->person, l.person, 32);
        memcpy(li->device, l.device, 32);
        memcpy(li->person_name, l.name, l.namelen);
        li->person_name[l.namelen] = 0;
        li->time_ms = l.time_ms;
        li->self = memcmp(l.device, r->pk, 32) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct notes__revoke rv;
        if (c[i].kind != NOTES__K_REVOKE ||
            notes__revoke_parse(c[i].bytes, c[i].n, &rv))
            continue;
        for (size_t j = 0; j < k; j++)
            if (memcmp(v[j].device, rv.link.device, 32) == 0 &&
                memcmp(v[j].person, rv.link.person, 32) == 0) {
                v[j].revoked = 1;
                v[j].revoked_ms = rv.time_ms;
            }
    }
    *out = v;
    *nout = k;
    return NOTES_OK;
}
