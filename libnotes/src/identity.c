/*
 * identity.c: device identities (Ed25519 key pairs), their key files and the
 * readable key encoding and fingerprint. docs/identity.md is the format spec.
 * Every byte of secret material (seed, secret key, passphrase-derived key,
 * the text of a key file) lives in guarded memory (notes__secure_alloc),
 * wiped on release.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notes.h"
#include "internal.h"

#define KEYFILE_MAGIC "notes-identity"
#define KEYFILE_VERSION 1
#define KEYFILE_MAX (64L * 1024)  /* bytes; larger files are refused */
#define KEY_PREFIX "nk"
#define SEED_BYTES NOTES__SIGN_SEEDBYTES           /* 32 */
#define SALT_BYTES NOTES__PWHASH_SALTBYTES         /* 16 */
#define NONCE_BYTES NOTES__BOX_NONCEBYTES          /* 24 */
#define BOX_BYTES (NOTES__BOX_MACBYTES + SEED_BYTES) /* 48 */
#define KDF_KEY_BYTES NOTES__BOX_KEYBYTES          /* 32 */

/* Bounds accepted for stored Argon2id costs (sensitive is the ceiling). */
#define OPS_MIN NOTES__PWHASH_OPS_MIN
#define OPS_MAX NOTES__PWHASH_OPS_MAX
#define MEM_MIN NOTES__PWHASH_MEM_MIN
#define MEM_MAX NOTES__PWHASH_MEM_MAX

struct notes_identity {
    char name[NOTES_NAME_MAX + 1]; /* NUL-terminated, validated UTF-8 */
    uint8_t pk[NOTES__SIGN_PKBYTES];
    uint8_t *sk; /* notes__secure_alloc'd, NOTES__SIGN_SKBYTES (seed||pk) */
};

/* What a key file says, before anything is decrypted. */
struct keyfile {
    char name[NOTES_NAME_MAX + 1];
    uint8_t pk[NOTES__SIGN_PKBYTES];
    int encrypted;
    unsigned long long ops; /* encrypted only: Argon2id passes */
    size_t mem;             /* encrypted only: Argon2id memory, bytes */
    uint8_t salt[SALT_BYTES];
    uint8_t nonce[NONCE_BYTES];
    uint8_t box[BOX_BYTES]; /* MAC || ciphertext of the seed */
};

/* Secret scratch for load (guarded memory: the plain file holds the seed). */
struct load_secrets {
    char text[KEYFILE_MAX + 1];
    uint8_t seed[SEED_BYTES];
    uint8_t key[KDF_KEY_BYTES];
    uint8_t sk[NOTES__SIGN_SKBYTES]; /* file_encrypted's check */
};

/* Secret scratch for save. */
struct save_secrets {
    char text[1024]; /* a key file is < 400 bytes */
    uint8_t seed[SEED_BYTES];
    uint8_t key[KDF_KEY_BYTES];
};

int notes_init(void)
{
    return notes__crypto_init();
}

/* ---- names ---- */

/* UTF-8, 1..64 bytes, no C0 controls, DEL, or C1 controls (U+0080..U+009F).
 * Shared with the change decoder (change.c): a name a peer signed is shown
 * next to ours, so it must obey the same rule or it could rewrite the
 * terminal that shows it. */
int notes__name_valid(const uint8_t *s, size_t n)
{
    if (n < 1 || n > NOTES_NAME_MAX || !notes__utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
        /* valid UTF-8, so 0xc2 is followed by a continuation byte */
        if (s[i] == 0xc2 && s[i + 1] < 0xa0)
            return 0;
    }
    return 1;
}

/* ---- identity objects ---- */

static int identity_alloc(notes_identity **out)
{
    notes_identity *id = notes__malloc(sizeof(*id));
    if (!id)
        return NOTES_ENOMEM;
    memset(id, 0, sizeof(*id));
    id->sk = notes__secure_alloc(NOTES__SIGN_SKBYTES);
    if (!id->sk) {
        notes__free(id);
        return NOTES_ENOMEM;
    }
    *out = id;
    return NOTES_OK;
}

void notes_identity_free(notes_identity *id)
{
    if (!id)
        return;
    notes__wipe(id->sk, NOTES__SIGN_SKBYTES);
    notes__secure_free(id->sk);
    notes__wipe(id, sizeof(*id));
    notes__free(id);
}

/* The checks a maker of an identity starts with: *out cleared, or
 * NOTES_EINVAL with the detail when out or the argument it needs is NULL. */
static int start_out(const char *fn, notes_identity **out, const void *arg,
                     const char *arg_missing)
{
    if (!out) {
        notes__set_detail("%s: out is NULL", fn);
        return NOTES_EINVAL;
    }
    *out = NULL;
    if (!arg) {
        notes__set_detail("%s", arg_missing);
        return NOTES_EINVAL;
    }
    return NOTES_OK;
}

int notes_identity_generate(const char *name, notes_identity **out)
{
    notes_identity *id = NULL;
    int rc;

    if ((rc = start_out("notes_identity_generate", out, name,
                        "identity name is NULL")))
        return rc;
    size_t n = strlen(name);
    if (!notes__name_valid((const uint8_t *)name, n)) {
        notes__set_detail("identity name must be UTF-8, 1 to %d bytes, "
                          "without control characters",
                          NOTES_NAME_MAX);
        return NOTES_EINVAL;
    }
    if ((rc = notes__crypto_init()) != NOTES_OK)
        return rc;
    if ((rc = identity_alloc(&id)) != NOTES_OK) {
        notes__set_detail("out of memory for an identity");
        return rc;
    }
    memcpy(id->name, name, n + 1);
    if (notes__sign_keypair(id->pk, id->sk, NULL) != NOTES_OK) {
        notes_identity_free(id);
        notes__set_detail("Ed25519 key generation failed");
        return NOTES_EIO;
    }
    *out = id;
    return NOTES_OK;
}

const char *notes_identity_name(const notes_identity *id)
{
    return id ? id->name : NULL;
}

const uint8_t *notes_identity_public_key(const notes_identity *id)
{
    return id ? id->pk : NULL;
}

/* ---- signatures ---- */

int notes_identity_sign(const notes_identity *id, const uint8_t *msg,
                        size_t n, uint8_t sig[64])
{
    if (!id || !sig || (!msg && n)) {
        notes__set_detail("notes_identity_sign: NULL argument");
        return NOTES_EINVAL;
    }
    if (notes__sign(sig, msg, n, id->sk) != NOTES_OK) {
        notes__set_detail("Ed25519 signing failed");
        return NOTES_EIO;
    }
    return NOTES_OK;
}

int notes_signature_verify(const uint8_t sig[64], const uint8_t *msg,
                           size_t n, const uint8_t pk[32])
{
    if (!sig || !pk || (!msg && n)) {
        notes__set_detail("notes_signature_verify: NULL argument");
        return NOTES_EINVAL;
    }
    if (!notes__sign_verify(sig, msg, n, pk))
        return NOTES_EBADSIG;
    return NOTES_OK;
}

/* ---- readable keys and fingerprints ---- */

void notes_key_encode(const uint8_t pk[32], char out[NOTES_KEY_STRLEN])
{
    /* The prefix; notes__base32 writes the rest and the NUL. */
    memcpy(out, KEY_PREFIX, 2); // NOLINT(bugprone-not-null-terminated-result)
    notes__base32(out + 2, NOTES_KEY_STRLEN - 2, pk, 32);
}

int notes_key_decode(const char *s, uint8_t pk[32])
{
    uint8_t tmp[32];

    if (!s || !pk) {
        notes__set_detail("notes_key_decode: NULL argument");
        return NOTES_EINVAL;
    }
    size_t n = strlen(s);
    if (n != NOTES_KEY_STRLEN - 1 || memcmp(s, KEY_PREFIX, 2) != 0) {
        notes__set_detail("a public key is \"nk\" and 52 base32 characters");
        return NOTES_EINVAL;
    }
    for (size_t i = 2; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7'))) {
            notes__set_detail("public key: character %zu is not lowercase "
                              "base32 (a-z, 2-7)",
                              i + 1);
            return NOTES_EINVAL;
        }
    }
    if (notes__unbase32(tmp, sizeof(tmp), s + 2) != NOTES_OK) {
        notes__set_detail("public key: last character is not canonical");
        return NOTES_EINVAL;
    }
    if (!notes__ed25519_valid_point(tmp)) {
        notes__set_detail("public key: not a valid Ed25519 public key");
        return NOTES_EINVAL;
    }
    memcpy(pk, tmp, sizeof(tmp));
    return NOTES_OK;
}

void notes_key_fingerprint(const uint8_t pk[32], char out[NOTES_FPR_STRLEN])
{
    uint8_t h[32]; /* BLAKE2b-256 */
    char b[9];

    notes__hash(h, sizeof(h), pk, 32, NULL, 0);
    notes__base32(b, sizeof(b), h, 5); /* 40 bits = 8 characters */
    memcpy(out, b, 4);
    out[4] = '-';
    memcpy(out + 5, b + 4, 4);
    out[9] = '\0';
}

/* ---- key file parsing ---- */

/* Set the detail for a malformed key file and return NOTES_ECORRUPT. */
#define CORRUPT(path, line, ...)                                          \
    (corrupt_detail((path), (line), __VA_ARGS__), NOTES_ECORRUPT)

static void corrupt_detail(const char *path, unsigned line, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

static void corrupt_detail(const char *path, unsigned line, const char *fmt,
                           ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    notes__set_detail("key file '%s' line %u: %s", path, line, msg);
}

/* A span of the file text. */
struct span {
    const char *p;
    size_t n;
};

/* Strip `prefix` from the front of `s`; 0 if `s` does not start with it. */
static int span_strip(struct span *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s->n < n || memcmp(s->p, prefix, n) != 0)
        return 0;
    s->p += n;
    s->n -= n;
    return 1;
}

/*
 * Split `s` at single spaces into exactly `want` non-empty fields.
 * 0 on a different count, an empty field, or leading/trailing spaces.
 */
static int span_split(struct span s, struct span *f, size_t want)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        if (i < s.n && s.p[i] != ' ')
            continue;
        if (i == start || k == want)
            return 0;
        f[k].p = s.p + start;
        f[k].n = i - start;
        k++;
        start = i + 1;
    }
    return k == want;
}

/* Decimal without sign or leading zeros, at most 19 digits. */
static int span_uint(struct span s, unsigned long long *out)
{
    unsigned long long v = 0;
    if (s.n < 1 || s.n > 19 || (s.n > 1 && s.p[0] == '0'))
        return 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s.p[i] - '0');
    }
    *out = v;
    return 1;
}

/*
 * Exactly `n` bytes of padded standard base64, canonical. The alphabet is
 * checked here: libsodium 1.0.18's sodium_base642bin (under notes__unbase64)
 * reads the text as signed chars and accepts bytes >= 0x80 as base64
 * digits, so damaged text could still decode.
 */
static int span_b64(struct span s, uint8_t *out, size_t n)
{
    size_t got = 0;
    if (s.n != NOTES__BASE64_LEN(n) - 1)
        return 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
            return 0;
    }
    if (notes__unbase64(out, n, &got, s.p, s.n) != NOTES_OK)
        return 0;
    return got == n;
}

/*
 * Parse the text of a key file (NUL-free checked here). On NOTES_OK `kf` is
 * filled and, for an unprotected file, `seed` holds the secret seed.
 */
static int keyfile_parse(const char *path, const char *text, size_t n,
                         struct keyfile *kf, uint8_t seed[SEED_BYTES])
{
    struct span lines[4];
    size_t nl = 0, start = 0;
    int extra = 0; /* bytes after the fourth line */

    memset(kf, 0, sizeof(*kf));
    const char *nul = memchr(text, '\0', n);
    if (nul) {
        unsigned line = 1;
        for (const char *q = text; q < nul; q++)
            line += *q == '\n';
        return CORRUPT(path, line, "NUL byte");
    }
    /* A trailing check line (files.c) must match; older files have none. */
    int checked, rc;
    if (n && text[n - 1] == '\n' &&
        (rc = notes_check_split(path, text, n, &n, &checked)) != NOTES_OK)
        return rc;
    /* Split into the four lines; report problems in line order below. */
    for (size_t i = 0; i < n && nl < NOTES__ARRAY_LEN(lines); i++) {
        if (text[i] != '\n')
            continue;
        lines[nl].p = text + start;
        lines[nl].n = i - start;
        nl++;
        start = i + 1;
    }
    if (nl == NOTES__ARRAY_LEN(lines))
        extra = start != n;
    else if (start != n)
        return CORRUPT(path, (unsigned)nl + 1,
                       "truncated (line has no newline)");

    /* line 1: magic and version */
    struct span s = nl > 0 ? lines[0] : (struct span){ text, 0 };
    if (nl == 0 || !span_strip(&s, KEYFILE_MAGIC " "))
        return CORRUPT(path, 1, "not a notes identity file (expected \"%s %d\")",
                       KEYFILE_MAGIC, KEYFILE_VERSION);
    unsigned long long version;
    if (!span_uint(s, &version))
        return CORRUPT(path, 1, "bad version number");
    if (version != KEYFILE_VERSION) {
        notes__set_detail("key file '%s' line 1: format version %llu is not "
                          "supported (this build reads version %d)",
                          path, version, KEYFILE_VERSION);
        return NOTES_EVERSION;
    }

    /* line 2: name */
    if (nl < 2)
        return CORRUPT(path, 2, "truncated (missing name line)");
    s = lines[1];
    if (!span_strip(&s, "name "))
        return CORRUPT(path, 2, "expected \"name <name>\"");
    if (!notes__name_valid((const uint8_t *)s.p, s.n))
        return CORRUPT(path, 2, "name must be UTF-8, 1 to %d bytes, without "
                       "control characters", NOTES_NAME_MAX);
    memcpy(kf->name, s.p, s.n);
    kf->name[s.n] = '\0';

    /* line 3: public key */
    if (nl < 3)
        return CORRUPT(path, 3, "truncated (missing public key line)");
    s = lines[2];
    char enc[NOTES_KEY_STRLEN];
    if (!span_strip(&s, "public "))
        return CORRUPT(path, 3, "expected \"public nk...\"");
    if (s.n != NOTES_KEY_STRLEN - 1)
        return CORRUPT(path, 3, "public key has %zu characters, expected %d",
                       s.n, NOTES_KEY_STRLEN - 1);
    memcpy(enc, s.p, s.n);
    enc[s.n] = '\0';
    if (notes_key_decode(enc, kf->pk) != NOTES_OK)
        return CORRUPT(path, 3, "%s", notes_last_detail());

    /* line 4: the secret, plain or sealed */
    if (nl < 4)
        return CORRUPT(path, 4, "truncated (missing secret line)");
    s = lines[3];
    struct span f[6];
    if (!span_strip(&s, "secret "))
        return CORRUPT(path, 4, "expected \"secret plain ...\" or "
                       "\"secret argon2id13 ...\"");
    if (span_strip(&s, "plain ")) {
        if (!span_b64(s, seed, SEED_BYTES))
            return CORRUPT(path, 4, "secret seed is not %d bytes of base64",
                           SEED_BYTES);
        if (extra)
            return CORRUPT(path, 5, "unexpected text after the secret line");
        return NOTES_OK;
    }
    if (!span_strip(&s, "argon2id13 "))
        return CORRUPT(path, 4, "unknown secret protection (expected plain "
                       "or argon2id13)");
    if (!span_split(s, f, 5))
        return CORRUPT(path, 4, "expected \"secret argon2id13 <opslimit> "
                       "<memlimit> <salt> <nonce> <box>\"");
    unsigned long long mem;
    if (!span_uint(f[0], &kf->ops) || kf->ops < OPS_MIN || kf->ops > OPS_MAX)
        return CORRUPT(path, 4, "opslimit must be %llu to %llu",
                       (unsigned long long)OPS_MIN,
                       (unsigned long long)OPS_MAX);
    if (!span_uint(f[1], &mem) || mem < MEM_MIN || mem > MEM_MAX ||
        mem % 1024 != 0)
        return CORRUPT(path, 4, "memlimit must be a multiple of 1024 from "
                       "%zu to %zu", (size_t)MEM_MIN, (size_t)MEM_MAX);
    kf->mem = (size_t)mem;
    if (!span_b64(f[2], kf->salt, SALT_BYTES))
        return CORRUPT(path, 4, "salt is not %d bytes of base64", SALT_BYTES);
    if (!span_b64(f[3], kf->nonce, NONCE_BYTES))
        return CORRUPT(path, 4, "nonce is not %d bytes of base64",
                       NONCE_BYTES);
    if (!span_b64(f[4], kf->box, BOX_BYTES))
        return CORRUPT(path, 4, "sealed secret is not %d bytes of base64",
                       BOX_BYTES);
    kf->encrypted = 1;
    if (extra)
        return CORRUPT(path, 5, "unexpected text after the secret line");
    return NOTES_OK;
}

/*
 * Read the key file into text (KEYFILE_MAX + 1 bytes) after checking it is
 * a regular file that only its owner may access. *n gets the length.
 */
static int keyfile_read(const char *path, char *text, size_t *n)
{
    struct stat st;
    int fd, rc = NOTES_OK;

    /* O_NONBLOCK: a FIFO planted at `path` must not hang us */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            notes__set_detail("no key file at '%s'", path);
            return NOTES_ENOTFOUND;
        }
        notes__set_detail("cannot open key file '%s': %s", path,
                          strerror(errno));
        return NOTES_EIO;
    }
    if (fstat(fd, &st) != 0) {
        notes__set_detail("cannot stat key file '%s': %s", path,
                          strerror(errno));
        rc = NOTES_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        notes__set_detail("key file '%s' is not a regular file", path);
        rc = NOTES_EIO;
        goto out;
    }
    if (st.st_mode & 077) {
        notes__set_detail("key file '%s' has mode 0%03o; run: chmod 600 '%s'",
                          path, (unsigned)(st.st_mode & 0777), path);
        rc = NOTES_EPERM;
        goto out;
    }
    if (st.st_size > KEYFILE_MAX) {
        notes__set_detail("key file '%s' is larger than %ld bytes", path,
                          KEYFILE_MAX);
        rc = NOTES_ETOOBIG;
        goto out;
    }
    /* read one byte past the limit: the file may have grown since fstat */
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, text + got, KEYFILE_MAX + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            notes__set_detail("cannot read key file '%s': %s", path,
                              strerror(errno));
            rc = NOTES_EIO;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > (size_t)KEYFILE_MAX) {
            notes__set_detail("key file '%s' is larger than %ld bytes", path,
                              KEYFILE_MAX);
            rc = NOTES_ETOOBIG;
            goto out;
        }
    }
    *n = got;
out:
    close(fd);
    return rc;
}

/*
 * Read and parse key file `path` into guarded scratch (*sec, which the
 * caller frees with notes__secure_free whatever the result; NULL when it
 * could not be made): the one way in for both readers of key files.
 */
static int keyfile_load(const char *path, struct load_secrets **sec,
                        struct keyfile *kf)
{
    size_t n = 0;
    int rc;

    *sec = NULL;
    if ((rc = notes__crypto_init()) != NOTES_OK)
        return rc;
    *sec = notes__secure_alloc(sizeof(**sec));
    if (!*sec) {
        notes__set_detail("out of memory reading key file '%s'", path);
        return NOTES_ENOMEM;
    }
    if ((rc = keyfile_read(path, (*sec)->text, &n)) != NOTES_OK)
        return rc;
    return keyfile_parse(path, (*sec)->text, n, kf, (*sec)->seed);
}

int notes_identity_file_encrypted(const char *path, int *encrypted)
{
    struct load_secrets *sec;
    struct keyfile kf;
    int rc;

    if (!path || !encrypted) {
        notes__set_detail("notes_identity_file_encrypted: NULL argument");
        return NOTES_EINVAL;
    }
    *encrypted = 0;
    rc = keyfile_load(path, &sec, &kf);
    if (rc == NOTES_OK && !kf.encrypted) {
        /* the same check load makes, so both agree on plain files */
        uint8_t pk[NOTES__SIGN_PKBYTES];
        if (notes__sign_keypair(pk, sec->sk, sec->seed) != NOTES_OK ||
            memcmp(pk, kf.pk, sizeof(pk)) != 0)
            rc = CORRUPT(path, 3, "public key does not match the secret key");
    }
    if (rc == NOTES_OK)
        *encrypted = kf.encrypted;
    notes__secure_free(sec); /* wipes */
    return rc;
}

int notes_identity_load(const char *path, const char *passphrase,
                        notes_identity **out)
{
    struct load_secrets *sec = NULL;
    notes_identity *id = NULL;
    struct keyfile kf;
    int rc;

    if ((rc = start_out("notes_identity_load", out, path,
                        "notes_identity_load: path is NULL")))
        return rc;
    if ((rc = keyfile_load(path, &sec, &kf)) != NOTES_OK)
        goto done;

    if (kf.encrypted) {
        if (!passphrase || !*passphrase) {
            notes__set_detail("key file '%s' is protected by a passphrase",
                              path);
            rc = NOTES_ENEEDPASS;
            goto done;
        }
        if (notes__pwhash(sec->key, sizeof(sec->key), passphrase,
                          strlen(passphrase), kf.salt, kf.ops,
                          kf.mem) != NOTES_OK) {
            notes__set_detail("argon2id over key file '%s' failed (out of "
                              "memory?)", path);
            rc = NOTES_ENOMEM;
            goto done;
        }
        if (notes__box_open(sec->seed, kf.box, sizeof(kf.box), kf.nonce,
                            sec->key) != NOTES_OK) {
            notes__set_detail("the passphrase does not open key file '%s' "
                              "(or its sealed secret is damaged)", path);
            rc = NOTES_EPASSPHRASE;
            goto done;
        }
    }

    if ((rc = identity_alloc(&id)) != NOTES_OK) {
        notes__set_detail("out of memory for an identity");
        goto done;
    }
    uint8_t pk[NOTES__SIGN_PKBYTES];
    if (notes__sign_keypair(pk, id->sk, sec->seed) != NOTES_OK) {
        notes__set_detail("Ed25519 key derivation failed");
        rc = NOTES_EIO;
        goto done;
    }
    if (memcmp(pk, kf.pk, sizeof(pk)) != 0) {
        rc = CORRUPT(path, 3, "public key does not match the secret key");
        goto done;
    }
    memcpy(id->pk, pk, sizeof(pk));
    memcpy(id->name, kf.name, sizeof(id->name));
    *out = id;
    id = NULL;
done:
    notes_identity_free(id);
    notes__secure_free(sec); /* wipes text, seed and key */
    return rc;
}

/* ---- key file writing ---- */

/* Format the key file text; the sealed variant derives the key first. */
static int keyfile_format(const notes_identity *id, const char *passphrase,
                          struct save_secrets *sec, size_t *len)
{
    char pub[NOTES_KEY_STRLEN];
    int w;

    notes_key_encode(id->pk, pub);
    notes__sign_seed(sec->seed, id->sk);
    w = snprintf(sec->text, sizeof(sec->text), "%s %d\nname %s\npublic %s\n",
                 KEYFILE_MAGIC, KEYFILE_VERSION, id->name, pub);
    if (w < 0 || (size_t)w >= sizeof(sec->text))
        return NOTES_EINVAL; /* cannot happen: the name is <= 64 bytes */
    size_t off = (size_t)w, cap = sizeof(sec->text);

    if (!passphrase || !*passphrase) {
        w = snprintf(sec->text + off, cap - off, "secret plain ");
        off += (size_t)w;
        notes__base64(sec->text + off, cap - off, sec->seed, SEED_BYTES);
        off += strlen(sec->text + off);
    } else {
        uint8_t salt[SALT_BYTES], nonce[NONCE_BYTES], box[BOX_BYTES];
        unsigned long long ops = NOTES__PWHASH_OPS_INTERACTIVE;
        size_t mem = NOTES__PWHASH_MEM_INTERACTIVE;

        notes__random(salt, sizeof(salt));
        notes__random(nonce, sizeof(nonce));
        if (notes__pwhash(sec->key, sizeof(sec->key), passphrase,
                          strlen(passphrase), salt, ops, mem) != NOTES_OK) {
            notes__set_detail("argon2id failed (out of memory?)");
            return NOTES_ENOMEM;
        }
        notes__box_seal(box, sec->seed, SEED_BYTES, nonce, sec->key);
        notes__wipe(sec->key, sizeof(sec->key));
        w = snprintf(sec->text + off, cap - off, "secret argon2id13 %llu %zu ",
                     ops, mem);
        off += (size_t)w;
        notes__base64(sec->text + off, cap - off, salt, sizeof(salt));
        off += strlen(sec->text + off);
        sec->text[off++] = ' ';
        notes__base64(sec->text + off, cap - off, nonce, sizeof(nonce));
        off += strlen(sec->text + off);
        sec->text[off++] = ' ';
        notes__base64(sec->text + off, cap - off, box, sizeof(box));
        off += strlen(sec->text + off);
    }
    sec->text[off++] = '\n';
    sec->text[off] = '\0';
    notes__wipe(sec->seed, sizeof(sec->seed));
    *len = off;
    return NOTES_OK;
}

/*
 * Move tmp to path unless path exists. renameat2(RENAME_NOREPLACE) where the
 * file system has it, else link()+unlink() (also atomic), else, on file
 * systems without hard links, a check-then-rename with a small race.
 * Returns 0 or -1 with errno set (EEXIST when path exists).
 */
static int install_noreplace(const char *tmp, const char *path)
{
    struct stat st;
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
#endif
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno != EPERM && errno != ENOTSUP && errno != ENOSYS)
        return -1;
    if (lstat(path, &st) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(tmp, path);
}

/* The folder holding `path`, malloc'd ("." for a bare file name). */
static char *parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return notes__strdup(".");
    return notes__strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* fsync folder `dir` so a new name in it is durable. */
static int fsync_dir(const char *dir)
{
    int fd, rc = NOTES_OK;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) {
        notes__set_detail("cannot fsync folder '%s': %s", dir,
                          strerror(errno));
        rc = NOTES_EIO;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

int notes_identity_save(const notes_identity *id, const char *path,
                        const char *passphrase)
{
    struct save_secrets *sec = NULL;
    char *tmp = NULL, *dir = NULL;
    size_t len = 0;
    int fd = -1, rc;
    struct stat st;

    if (!id || !path || !*path) {
        notes__set_detail("notes_identity_save: NULL or empty argument");
        return NOTES_EINVAL;
    }
    /* early, friendly refusal; install_noreplace makes it race-free */
    if (lstat(path, &st) == 0) {
        notes__set_detail("'%s' already exists; an identity is never "
                          "replaced", path);
        return NOTES_EEXIST;
    }
    sec = notes__secure_alloc(sizeof(*sec));
    tmp = notes__malloc(strlen(path) + 32);
    dir = parent_dir(path); /* now: no ENOMEM once the file exists */
    if (!sec || !tmp || !dir) {
        notes__set_detail("out of memory saving key file '%s'", path);
        rc = NOTES_ENOMEM;
        goto done;
    }
    if ((rc = keyfile_format(id, passphrase, sec, &len)) != NOTES_OK)
        goto done;

    for (int tries = 0; fd < 0; tries++) {
        uint8_t r[8];
        char hex[17];
        notes__random(r, sizeof(r));
        notes__hex(hex, r, sizeof(r));
        snprintf(tmp, strlen(path) + 32, "%s.tmp-%s", path, hex);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
        if (fd < 0 && (errno != EEXIST || tries == 8)) {
            notes__set_detail("cannot create '%s': %s", tmp, strerror(errno));
            rc = NOTES_EIO;
            goto done;
        }
    }
    if (fchmod(fd, 0600) != 0 || notes__write_all(fd, sec->text, len, 0) != 0 ||
        fsync(fd) != 0) {
        notes__set_detail("cannot write '%s': %s", tmp, strerror(errno));
        rc = NOTES_EIO;
        goto fail_unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        notes__set_detail("cannot write '%s': %s", tmp, strerror(errno));
        rc = NOTES_EIO;
        goto fail_unlink;
    }
    fd = -1;
    if (install_noreplace(tmp, path) != 0) {
        if (errno == EEXIST) {
            notes__set_detail("'%s' already exists; an identity is never "
                              "replaced", path);
            rc = NOTES_EEXIST;
        } else {
            notes__set_detail("cannot rename '%s' to '%s': %s", tmp, path,
                              strerror(errno));
            rc = NOTES_EIO;
        }
        goto fail_unlink;
    }
    rc = fsync_dir(dir);
    goto done;

fail_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
done:
    notes__free(dir);
    notes__free(tmp);
    notes__secure_free(sec); /* NULL ok; wipes */
    return rc;
}
