/*
 * change.c: canonical encoding, decoding and signing of changes.
 * The signature covers the exact stored bytes, so a change is verified
 * without re-serializing anything; varints must be minimal and deps sorted,
 * so one logical change has exactly one valid encoding.
 */
#include <stdlib.h>

#include "change.h"
#include "people.h"

static const uint8_t change_magic[3] = {'N', 'C', 1};

void notes__change_free(struct notes__change *c)
{
    if (!c)
        return;
    notes__free(c->deps);
    notes__free(c->ops);
    notes__free(c->bytes);
    notes__free(c);
}

static int fail(int rc, const char *what, size_t off)
{
    notes__set_detail("malformed change: %s at byte %zu", what, off);
    return rc;
}

static int get_key(struct notes_reader *r, const uint8_t **p, size_t *n)
{
    int rc = notes__get_bytes(r, NOTES__KEY_MAX, p, n);
    if (rc)
        return rc;
    if (*n == 0 || !notes__utf8_valid(*p, *n))
        return NOTES_ECORRUPT;
    return NOTES_OK;
}

static int decode_op(struct notes_reader *r, struct notes__op *op,
                     uint64_t *events)
{
    uint64_t v;
    int rc;
    if ((rc = notes__get_u8(r, &op->kind)))
        return fail(rc, "truncated operation", r->off);
    switch (op->kind) {
    case NOTES__K_INS:
        if (notes__get_varint(r, &v) || v > UINT32_MAX)
            return fail(NOTES_ECORRUPT, "bad insert position", r->off);
        op->pos = (uint32_t)v;
        if ((rc = notes__get_bytes(r, NOTES__CHANGE_MAX, &op->text,
                                   &op->textlen)))
            return fail(rc, "bad insert text", r->off);
        if (op->textlen == 0 || !notes__utf8_valid(op->text, op->textlen))
            return fail(NOTES_ECORRUPT, "insert text empty or not UTF-8",
                        r->off);
        op->count = (uint32_t)notes__utf8_count(op->text, op->textlen);
        *events += op->count;
        return NOTES_OK;
    case NOTES__K_DEL:
    case NOTES__K_DELBACK:
        if (notes__get_varint(r, &v) || v > UINT32_MAX)
            return fail(NOTES_ECORRUPT, "bad delete position", r->off);
        op->pos = (uint32_t)v;
        if (notes__get_varint(r, &v) || v == 0 || v > UINT32_MAX)
            return fail(NOTES_ECORRUPT, "bad delete count", r->off);
        op->count = (uint32_t)v;
        if (op->kind == NOTES__K_DELBACK && op->count > op->pos + 1ull)
            return fail(NOTES_ECORRUPT, "backspace run past the start",
                        r->off);
        *events += op->count;
        return NOTES_OK;
    case NOTES__K_SET:
    case NOTES__K_ADD:
    case NOTES__K_REMOVE:
        if (get_key(r, &op->key, &op->keylen))
            return fail(NOTES_ECORRUPT, "bad field name", r->off);
        if (notes__get_bytes(r, NOTES__VALUE_MAX, &op->text, &op->textlen) ||
            !notes__utf8_valid(op->text, op->textlen))
            return fail(NOTES_ECORRUPT, "bad field value", r->off);
        return NOTES_OK;
    case NOTES__K_UNSET:
        if (get_key(r, &op->key, &op->keylen))
            return fail(NOTES_ECORRUPT, "bad field name", r->off);
        return NOTES_OK;
    case NOTES__K_NAME:
        /* The local name rule, not just UTF-8: a control character in a
         * signed name would be replayed on every terminal showing it. */
        if (notes__get_bytes(r, NOTES__NAME_MAX, &op->text, &op->textlen) ||
            !notes__name_valid(op->text, op->textlen))
            return fail(NOTES_ECORRUPT, "bad author name", r->off);
        return NOTES_OK;
    case NOTES__K_LINK: {
        struct notes__link l;
        if (notes__get_bytes(r, NOTES__LINK_MAX, &op->text, &op->textlen) ||
            notes__link_parse(op->text, op->textlen, &l))
            return fail(NOTES_ECORRUPT, "malformed device link", r->off);
        /* The person's name it carries obeys the local name rule too. */
        if (!notes__name_valid((const uint8_t *)l.name, l.namelen))
            return fail(NOTES_ECORRUPT, "bad person name in device link",
                        r->off);
        return NOTES_OK;
    }
    case NOTES__K_REVOKE: {
        struct notes__revoke rv;
        if (notes__get_bytes(r, NOTES__REVOKE_MAX, &op->text, &op->textlen) ||
            notes__revoke_parse(op->text, op->textlen, &rv))
            return fail(NOTES_ECORRUPT, "malformed device revocation", r->off);
        return NOTES_OK;
    }
    case NOTES__K_CONFIRM:
        if (notes__get_bytes(r, NOTES__ANCHOR_LEN + NOTES__OWNER_MAX, &op->key,
                             &op->keylen) ||
            op->keylen < NOTES__ANCHOR_LEN ||
            !notes__utf8_valid(op->key + NOTES__ANCHOR_LEN,
                               op->keylen - NOTES__ANCHOR_LEN) ||
            notes__get_bytes(r, NOTES__VALUE_MAX, &op->text, &op->textlen) ||
            op->textlen == 0 || !notes__utf8_valid(op->text, op->textlen))
            return fail(NOTES_ECORRUPT, "malformed confirmation", r->off);
        return NOTES_OK;
    default:
        return fail(NOTES_ECORRUPT, "unknown operation kind", r->off);
    }
}

int notes__change_decode(const uint8_t *p, size_t n, struct notes__change **out)
{
    return notes__change_decode_id(p, n, NULL, out);
}

int notes__change_decode_id(const uint8_t *p, size_t n, const uint8_t *id,
                            struct notes__change **out)
{
    struct notes_reader r;
    const uint8_t *raw;
    uint64_t v;
    int rc = NOTES_ECORRUPT;

    *out = NULL;
    if (n > NOTES__CHANGE_MAX) {
        notes__set_detail("change of %zu bytes exceeds the %u byte limit", n,
                          NOTES__CHANGE_MAX);
        return NOTES_ETOOBIG;
    }
    if (n < sizeof(change_magic) + 1)
        return fail(NOTES_ECORRUPT, "too short", n);
    if (memcmp(p, change_magic, 2) != 0)
        return fail(NOTES_ECORRUPT, "bad magic", 0);
    if (p[2] != change_magic[2]) {
        notes__set_detail("change format version %u is not supported", p[2]);
        return NOTES_EVERSION;
    }

    struct notes__change *c = notes__calloc(1, sizeof(*c));
    if (!c)
        return NOTES_ENOMEM;
    c->bytes = notes__malloc(n);
    if (!c->bytes) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    memcpy(c->bytes, p, n);
    c->nbytes = n;
    notes__reader_init(&r, c->bytes, n);
    r.off = sizeof(change_magic);

    if (notes__get_raw(&r, 16, &raw))
        goto bad_trunc;
    memcpy(c->doc, raw, 16);
    if (notes__get_raw(&r, 32, &raw))
        goto bad_trunc;
    memcpy(c->author, raw, 32);
    if (notes__get_varint(&r, &c->seq) || c->seq == 0) {
        rc = fail(NOTES_ECORRUPT, "bad sequence number", r.off);
        goto out;
    }
    if (c->seq > 1) {
        if (notes__get_raw(&r, 32, &raw))
            goto bad_trunc;
        memcpy(c->prev, raw, 32);
    }
    if (notes__get_varint(&r, &v) || v > NOTES__MAX_DEPS) {
        rc = fail(NOTES_ECORRUPT, "bad dependency count", r.off);
        goto out;
    }
    c->ndeps = (uint32_t)v;
    if (c->ndeps) {
        c->deps = notes__malloc(c->ndeps * sizeof(*c->deps));
        if (!c->deps) {
            rc = NOTES_ENOMEM;
            goto out;
        }
    }
    for (uint32_t i = 0; i < c->ndeps; i++) {
        if (notes__get_raw(&r, 32, &raw))
            goto bad_trunc;
        memcpy(c->deps[i], raw, 32);
        if (i > 0 && memcmp(c->deps[i - 1], c->deps[i], 32) >= 0) {
            rc = fail(NOTES_ECORRUPT, "dependencies not sorted", r.off);
            goto out;
        }
    }
    if (notes__get_varint(&r, &c->time_ms)) {
        rc = fail(NOTES_ECORRUPT, "bad timestamp", r.off);
        goto out;
    }
    if (notes__get_varint(&r, &v) || v == 0 || v > NOTES__MAX_OPS ||
        v > notes__reader_left(&r)) {
        rc = fail(NOTES_ECORRUPT, "bad operation count", r.off);
        goto out;
    }
    c->nops = (uint32_t)v;
    c->ops_off = r.off;
    c->ops = notes__calloc(c->nops, sizeof(*c->ops));
    if (!c->ops) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < c->nops; i++) {
        if ((rc = decode_op(&r, &c->ops[i], &c->ntext_events)))
            goto out;
    }
    /* The body ends here; then 0x00 (no signature) or 0x01 + 64 bytes. */
    c->body_len = r.off;
    uint8_t flag;
    if (notes__get_u8(&r, &flag) || flag > 1) {
        rc = fail(NOTES_ECORRUPT, "bad signature flag", r.off);
        goto out;
    }
    c->is_signed = flag;
    if (flag && notes__reader_left(&r) < 64)
        goto bad_trunc;
    if (notes__reader_left(&r) != (flag ? 64u : 0u)) {
        rc = fail(NOTES_ECORRUPT, "trailing bytes", r.off);
        goto out;
    }
    if (c->ntext_events > UINT32_MAX) {
        rc = fail(NOTES_ETOOBIG, "too many text events", r.off);
        goto out;
    }
    if (id)
        memcpy(c->id, id, 32);
    else
        notes__hash(c->id, 32, c->bytes, c->body_len, NULL, 0);
    *out = c;
    return NOTES_OK;

bad_trunc:
    rc = fail(NOTES_ECORRUPT, "truncated", r.off);
out:
    notes__change_free(c);
    return rc;
}

/*
 * Signatures this thread checked or made lately. One process often meets a
 * change twice: the daemon's sync merges a peer's change and the page
 * server's handle then reads it back from the log (past what the deferred
 * state vouches for), or the page commits and sync's handle reads it to
 * push. The memo is of (id, signature): the id is the hash of the signed
 * body, so a hit is the very bytes already checked. Checking one costs
 * about 50 us, a hit a hash of 96 bytes. Per thread, so no lock; a
 * direct-mapped table, an entry replaced by any other that maps there.
 */
#define SIG_MEMO 256
static _Thread_local uint8_t sig_memo[SIG_MEMO][32];

static void sig_memo_key(const uint8_t id[32], const uint8_t sig[64],
                         uint8_t key[32])
{
    notes__hash(key, 32, id, 32, sig, 64);
}

static int sig_memo_has(const uint8_t key[32])
{
    return notes__equal(sig_memo[key[0]], key, 32);
}

static void sig_memo_add(const uint8_t key[32])
{
    memcpy(sig_memo[key[0]], key, 32);
}

void notes__sig_memo_clear(void)
{
    memset(sig_memo, 0, sizeof(sig_memo));
}

int notes__change_verify_sig(const struct notes__change *c)
{
    if (!c->is_signed)
        return NOTES_EUNSIGNED;
    const uint8_t *sig = c->bytes + c->body_len + 1;
    uint8_t key[32];
    sig_memo_key(c->id, sig, key);
    if (sig_memo_has(key))
        return NOTES_OK;
    if (!notes__sign_verify(sig, c->bytes, c->body_len, c->author))
        return NOTES_EBADSIG;
    sig_memo_add(key);
    return NOTES_OK;
}

int notes__change_encode(const struct notes__change *c, int with_sig,
                         struct notes_buf *out)
{
    static const uint8_t unsigned_flag = 0;
    int rc = notes__buf_put(out, c->bytes, c->body_len);
    if (rc)
        return rc;
    if (with_sig && c->is_signed)
        return notes__buf_put(out, c->bytes + c->body_len, 65);
    return notes__buf_put(out, &unsigned_flag, 1);
}

/* A reset builder keeps buffers up to this size for the next change. */
#define BUILDER_KEEP (64u << 10)

void notes__builder_init(struct notes__change_builder *b)
{
    notes__buf_init(&b->ops, NOTES__CHANGE_MAX - 512);
    b->nops = 0;
    b->nevents = 0;
    b->rec = NULL;
    b->nrec = b->caprec = 0;
    b->parse = 0;
}

void notes__builder_release(struct notes__change_builder *b)
{
    notes__buf_release(&b->ops);
    notes__free(b->rec);
    notes__builder_init(b);
}

void notes__builder_reset(struct notes__change_builder *b)
{
    if (b->ops.cap > BUILDER_KEEP) { /* a large paste: not kept for ever */
        notes__builder_release(b);
        return;
    }
    b->ops.len = 0;
    b->nops = 0;
    b->nevents = 0;
    b->nrec = 0;
    b->parse = 0;
}

/*
 * Record a text op just written whole (its text, if any, is the last
 * textlen bytes of ops). An op the decoder would refuse, or no memory for
 * the record, only means finish decodes: the outcome is the decoder's.
 */
static void record(struct notes__change_builder *b, uint8_t kind,
                   uint32_t pos, uint32_t count, size_t textlen)
{
    if (b->parse)
        return;
    if (b->nrec + 1 != b->nops || /* op_end counted the op already */
        notes__grow(&b->rec, &b->caprec, b->nrec + 1, sizeof(*b->rec), 64)) {
        b->parse = 1;
        return;
    }
    struct notes__builder_op *r = &b->rec[b->nrec++];
    r->kind = kind;
    r->pos = pos;
    r->count = count;
    r->text_off = (uint32_t)(b->ops.len - textlen);
    r->textlen = (uint32_t)textlen;
}

/* The varint of notes__buf_put_varint: its length, and written at w (which
 * has room); returns the end. */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

static uint8_t *varint_raw(uint8_t *w, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        *w++ = byte | (v ? 0x80 : 0);
    } while (v);
    return w;
}

/*
 * End an op begun at `mark`: counted when it was written whole (rc 0), else
 * the buffer is cut back to the mark, so a change never holds half an op.
 */
static int op_end(struct notes__change_builder *b, size_t mark, int rc)
{
    if (rc) {
        b->ops.len = mark;
        return rc;
    }
    b->nops++;
    return NOTES_OK;
}

int notes__builder_ins(struct notes__change_builder *b, uint32_t pos,
                       const uint8_t *text, size_t n, uint32_t ncp)
{
    size_t mark = b->ops.len;
    int rc;
    if (b->nops >= NOTES__MAX_OPS)
        return NOTES_ETOOBIG;
    /* kind, pos, text: one reservation, then written in place (the bytes
     * of notes__buf_put_u8/varint/bytes; text ops are flushed at every
     * jump of the cursor). */
    size_t need = 1 + varint_len(pos) + varint_len(n) + n;
    if ((rc = notes__buf_reserve(&b->ops, need)))
        return op_end(b, mark, rc);
    uint8_t *w = b->ops.data + b->ops.len;
    *w++ = NOTES__K_INS;
    w = varint_raw(w, pos);
    w = varint_raw(w, n);
    if (n)
        memcpy(w, text, n);
    b->ops.len += need;
    b->ops.data[b->ops.len] = 0;
    b->nevents += ncp;
    op_end(b, mark, NOTES_OK);
    /* The decoder's checks: not empty, valid UTF-8; its count. */
    size_t points = n ? notes__utf8_points(text, n) : SIZE_MAX;
    if (points > UINT32_MAX)
        b->parse = 1;
    else
        record(b, NOTES__K_INS, pos, (uint32_t)points, n);
    return NOTES_OK;
}

int notes__builder_del(struct notes__change_builder *b, int kind,
                       uint32_t pos, uint32_t count)
{
    size_t mark = b->ops.len;
    int rc;
    if (b->nops >= NOTES__MAX_OPS)
        return NOTES_ETOOBIG;
    size_t need = 1 + varint_len(pos) + varint_len(count);
    if ((rc = notes__buf_reserve(&b->ops, need)))
        return op_end(b, mark, rc);
    uint8_t *w = b->ops.data + b->ops.len;
    *w++ = (uint8_t)kind;
    w = varint_raw(w, pos);
    varint_raw(w, count);
    b->ops.len += need;
    b->ops.data[b->ops.len] = 0;
    b->nevents += count;
    op_end(b, mark, NOTES_OK);
    /* The decoder's checks: a kind of delete, a count, no backspace run
     * past the start. */
    if ((kind != NOTES__K_DEL && kind != NOTES__K_DELBACK) || count == 0 ||
        (kind == NOTES__K_DELBACK && count > pos + 1ull))
        b->parse = 1;
    else
        record(b, (uint8_t)kind, pos, count, 0);
    return NOTES_OK;
}

int notes__builder_name(struct notes__change_builder *b, const char *name)
{
    size_t mark = b->ops.len, n = strlen(name);
    int rc;
    if (n > NOTES__NAME_MAX || !notes__name_valid((const uint8_t *)name, n))
        return NOTES_EINVAL;
    if ((rc = notes__buf_put_u8(&b->ops, NOTES__K_NAME)) == NOTES_OK)
        rc = notes__buf_put_bytes(&b->ops, name, n);
    b->parse |= rc == NOTES_OK; /* not a text op: finish decodes */
    return op_end(b, mark, rc);
}

int notes__builder_blob(struct notes__change_builder *b, int kind,
                        const uint8_t *key, size_t klen, const uint8_t *value,
                        size_t vlen)
{
    size_t mark = b->ops.len;
    int rc;
    if (b->nops >= NOTES__MAX_OPS)
        return NOTES_ETOOBIG;
    if ((rc = notes__buf_put_u8(&b->ops, (uint8_t)kind)) == NOTES_OK &&
        kind == NOTES__K_CONFIRM)
        rc = notes__buf_put_bytes(&b->ops, key, klen);
    if (rc == NOTES_OK)
        rc = notes__buf_put_bytes(&b->ops, value, vlen);
    b->parse |= rc == NOTES_OK; /* not a text op: finish decodes */
    return op_end(b, mark, rc);
}

int notes__builder_kv(struct notes__change_builder *b, int kind,
                      const char *key, const char *value)
{
    size_t mark = b->ops.len, klen = strlen(key);
    int rc;
    if (b->nops >= NOTES__MAX_OPS)
        return NOTES_ETOOBIG;
    if (klen == 0 || klen > NOTES__KEY_MAX ||
        !notes__utf8_valid((const uint8_t *)key, klen))
        return NOTES_EINVAL;
    if ((rc = notes__buf_put_u8(&b->ops, (uint8_t)kind)) ||
        (rc = notes__buf_put_bytes(&b->ops, key, klen)))
        goto end;
    if (kind != NOTES__K_UNSET) {
        size_t vlen = strlen(value);
        if (vlen > NOTES__VALUE_MAX ||
            !notes__utf8_valid((const uint8_t *)value, vlen)) {
            rc = NOTES_EINVAL;
            goto end;
        }
        rc = notes__buf_put_bytes(&b->ops, value, vlen);
    }
end:
    b->parse |= rc == NOTES_OK; /* not a text op: finish decodes */
    return op_end(b, mark, rc);
}

#define DECODE 1 /* made_from_records: not vouched for, decode instead */

/*
 * The change the decoder would make of body (just encoded from b and these
 * fields), made from b's records instead of parsing. DECODE (1) when that
 * cannot be vouched for (an op not recorded, deps the decoder refuses, too
 * many events): the caller decodes.
 */
static int made_from_records(const struct notes__change_builder *b,
                             const struct notes_buf *body, const uint8_t doc[16],
                             const notes_identity *id, uint64_t seq,
                             const uint8_t prev[32], const uint8_t (*deps)[32],
                             uint32_t ndeps, uint64_t time_ms, int sign,
                             struct notes__change **out)
{
    uint64_t events = 0;
    if (b->parse || b->nrec != b->nops || b->nops == 0 ||
        b->nops > NOTES__MAX_OPS)
        return DECODE;
    for (uint32_t i = 1; i < ndeps; i++)
        if (memcmp(deps[i - 1], deps[i], 32) >= 0)
            return DECODE;
    for (size_t i = 0; i < b->nrec; i++)
        events += b->rec[i].count;
    if (events > UINT32_MAX)
        return DECODE;
    struct notes__change *c = notes__calloc(1, sizeof(*c));
    if (!c)
        return NOTES_ENOMEM;
    size_t n = body->len;
    c->bytes = notes__malloc(n);
    c->ops = notes__calloc(b->nops, sizeof(*c->ops));
    c->deps = ndeps ? notes__malloc(ndeps * sizeof(*c->deps)) : NULL;
    if (!c->bytes || !c->ops || (ndeps && !c->deps)) {
        notes__change_free(c);
        return NOTES_ENOMEM;
    }
    memcpy(c->bytes, body->data, n);
    c->nbytes = n;
    memcpy(c->doc, doc, 16);
    memcpy(c->author, notes_identity_public_key(id), 32);
    c->seq = seq;
    if (seq > 1)
        memcpy(c->prev, prev, 32);
    c->ndeps = ndeps;
    if (ndeps)
        memcpy(c->deps, deps, ndeps * sizeof(*c->deps));
    c->time_ms = time_ms;
    c->nops = b->nops;
    /* The body ends with the ops; then the flag and the signature. */
    c->body_len = n - (sign ? 65 : 1);
    c->ops_off = c->body_len - b->ops.len;
    c->is_signed = (uint8_t)(sign != 0);
    for (size_t i = 0; i < b->nrec; i++) {
        const struct notes__builder_op *r = &b->rec[i];
        struct notes__op *o = &c->ops[i];
        o->kind = r->kind;
        o->pos = r->pos;
        o->count = r->count;
        if (r->kind == NOTES__K_INS) {
            o->text = c->bytes + c->ops_off + r->text_off;
            o->textlen = r->textlen;
        }
    }
    c->ntext_events = events;
    notes__hash(c->id, 32, c->bytes, c->body_len, NULL, 0);
    *out = c;
    return NOTES_OK;
}

int notes__builder_finish(struct notes__change_builder *b, const uint8_t doc[16],
                          const notes_identity *id, uint64_t seq,
                          const uint8_t prev[32], const uint8_t (*deps)[32],
                          uint32_t ndeps, uint64_t time_ms, int sign,
                          struct notes__change **out)
{
    struct notes_buf body;
    uint8_t sig[64];
    int rc;

    *out = NULL;
    if (b->nops == 0 || seq == 0 || ndeps > NOTES__MAX_DEPS)
        return NOTES_EINVAL;
    notes__buf_init(&body, NOTES__CHANGE_MAX);
    if ((rc = notes__buf_reserve(&body, b->ops.len + 200 + (size_t)32 * ndeps)) ||
        (rc = notes__buf_put(&body, change_magic, sizeof(change_magic))) ||
        (rc = notes__buf_put(&body, doc, 16)) ||
        (rc = notes__buf_put(&body, notes_identity_public_key(id), 32)) ||
        (rc = notes__buf_put_varint(&body, seq)))
        goto out;
    if (seq > 1 && (rc = notes__buf_put(&body, prev, 32)))
        goto out;
    if ((rc = notes__buf_put_varint(&body, ndeps)))
        goto out;
    for (uint32_t i = 0; i < ndeps; i++)
        if ((rc = notes__buf_put(&body, deps[i], 32)))
            goto out;
    if ((rc = notes__buf_put_varint(&body, time_ms)) ||
        (rc = notes__buf_put_varint(&body, b->nops)) ||
        (rc = notes__buf_put(&body, b->ops.data, b->ops.len)))
        goto out;
    if (sign) {
        if ((rc = notes_identity_sign(id, body.data, body.len, sig)) ||
            (rc = notes__buf_put_u8(&body, 1)) ||
            (rc = notes__buf_put(&body, sig, 64)))
            goto out;
    } else if ((rc = notes__buf_put_u8(&body, 0))) {
        goto out;
    }
    rc = made_from_records(b, &body, doc, id, seq, prev, deps, ndeps, time_ms,
                           sign, out);
    if (rc == DECODE)
        rc = notes__change_decode(body.data, body.len, out);
    if (rc == NOTES_OK && sign) { /* what this thread signed is checked */
        uint8_t key[32];
        sig_memo_key((*out)->id, sig, key);
        sig_memo_add(key);
    }
out:
    notes__buf_release(&body);
    return rc;
}
