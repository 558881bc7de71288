/*
 * pack.c: the columnar, hash-free form of a whole log (see pack.h).
 *
 * Layout (before the record's zstd): magic "NP\x01"; authors; the change
 * count; four column lengths; then the columns: per-change headers, ops
 * without their text, all text (inserted text, field keys and values,
 * names), and the signatures. A change's prev and deps become distances
 * back to earlier changes; seq a delta from the author's last; time a
 * zigzag delta. Rebuilding emits the canonical change encoding of
 * change.c byte for byte, so signatures verify as they did.
 */
#include "pack.h"

static const uint8_t pack_magic[3] = {'N', 'P', 1};

#define PACK_MAX_AUTHORS (1u << 20)

static uint64_t zigzag(int64_t v)
{
    /* No right shift of a negative value (implementation-defined). */
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- encoding ---- */

struct author_tab {
    const uint8_t (*pk)[32];
    size_t n;
};

static int find_index(struct notes__change *const *c, size_t upto,
                      const uint8_t id[32], size_t *out)
{
    /* Changes usually depend on recent ones: search backwards. */
    for (size_t i = upto; i-- > 0;) {
        if (memcmp(c[i]->id, id, 32) == 0) {
            *out = i;
            return NOTES_OK;
        }
    }
    return NOTES_EINVAL;
}

/*
 * A reference (prev or dep) to change c[i]'s predecessor: the distance back
 * to it, or, when it is not in the pack and `external` allows it, 0 and
 * its 32-byte id.
 */
static int put_ref(struct notes_buf *hdr, struct notes__change *const *c,
                   size_t i, const uint8_t id[32], int external)
{
    size_t j;
    int rc;
    if (find_index(c, i, id, &j) == NOTES_OK)
        return notes__buf_put_varint(hdr, i - j);
    if (!external)
        return NOTES_EINVAL;
    if ((rc = notes__buf_put_varint(hdr, 0)))
        return rc;
    return notes__buf_put(hdr, id, 32);
}

int notes__pack_encode(const uint8_t doc[16], struct notes__change *const *c,
                       size_t n, int flags, struct notes_buf *out)
{
    const int external = (flags & NOTES__PACK_EXTERNAL) != 0;
    struct notes_buf hdr, ops, text, sigs;
    uint8_t(*authors)[32] = NULL;
    uint64_t *last_seq = NULL;
    size_t na = 0;
    uint64_t prev_time = 0;
    int64_t cursor = 0; /* where the previous text op left the cursor */
    int rc = NOTES_ENOMEM;

    notes__buf_init(&hdr, SIZE_MAX / 4);
    notes__buf_init(&ops, SIZE_MAX / 4);
    notes__buf_init(&text, SIZE_MAX / 4);
    notes__buf_init(&sigs, SIZE_MAX / 4);
    authors = notes__malloc((n + 1) * 32);
    last_seq = notes__calloc(n + 1, sizeof(*last_seq));
    if (!authors || !last_seq)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct notes__change *ch = c[i];
        size_t a;
        rc = NOTES_EINVAL;
        if (memcmp(ch->doc, doc, 16) != 0)
            goto out;
        for (a = 0; a < na && memcmp(authors[a], ch->author, 32) != 0; a++)
            ;
        if (a == na)
            memcpy(authors[na++], ch->author, 32);
        if (ch->seq < last_seq[a])
            goto out; /* the log is causal: an author's seq never drops */
        if ((rc = notes__buf_put_varint(&hdr, a)) ||
            (rc = notes__buf_put_varint(&hdr, ch->seq - last_seq[a])))
            goto out;
        last_seq[a] = ch->seq;
        if (ch->seq > 1 && (rc = put_ref(&hdr, c, i, ch->prev, external)))
            goto out;
        if ((rc = notes__buf_put_varint(&hdr, ch->ndeps)))
            goto out;
        for (uint32_t k = 0; k < ch->ndeps; k++)
            if ((rc = put_ref(&hdr, c, i, ch->deps[k], external)))
                goto out;
        if ((rc = notes__buf_put_varint(
                 &hdr, zigzag((int64_t)(ch->time_ms - prev_time)))) ||
            (rc = notes__buf_put_varint(&hdr, ch->nops)) ||
            (rc = notes__buf_put_u8(&hdr, ch->is_signed)))
            goto out;
        prev_time = ch->time_ms;
        for (uint32_t k = 0; k < ch->nops; k++) {
            const struct notes__op *o = &ch->ops[k];
            if ((rc = notes__buf_put_u8(&ops, o->kind)))
                goto out;
            switch (o->kind) {
            case NOTES__K_INS:
                rc = notes__buf_put_varint(&ops, zigzag((int64_t)o->pos - cursor));
                if (!rc)
                    rc = notes__buf_put_varint(&ops, o->textlen);
                if (!rc)
                    rc = notes__buf_put(&text, o->text, o->textlen);
                cursor = (int64_t)o->pos + o->count;
                break;
            case NOTES__K_DEL:
            case NOTES__K_DELBACK:
                rc = notes__buf_put_varint(&ops, zigzag((int64_t)o->pos - cursor));
                if (!rc)
                    rc = notes__buf_put_varint(&ops, o->count);
                cursor = o->kind == NOTES__K_DEL
                             ? (int64_t)o->pos
                             : (int64_t)o->pos - o->count + 1;
                break;
            case NOTES__K_UNSET:
                rc = notes__buf_put_varint(&ops, o->keylen);
                if (!rc)
                    rc = notes__buf_put(&text, o->key, o->keylen);
                break;
            case NOTES__K_NAME:
            case NOTES__K_LINK:
            case NOTES__K_REVOKE:
                rc = notes__buf_put_varint(&ops, o->textlen);
                if (!rc)
                    rc = notes__buf_put(&text, o->text, o->textlen);
                break;
            default: /* SET, ADD, REMOVE */
                rc = notes__buf_put_varint(&ops, o->keylen);
                if (!rc)
                    rc = notes__buf_put_varint(&ops, o->textlen);
                if (!rc)
                    rc = notes__buf_put(&text, o->key, o->keylen);
                if (!rc)
                    rc = notes__buf_put(&text, o->text, o->textlen);
            }
            if (rc)
                goto out;
        }
        if (ch->is_signed &&
            (rc = notes__buf_put(&sigs, ch->bytes + ch->body_len + 1, 64)))
            goto out;
    }
    if ((rc = notes__buf_put(out, pack_magic, 3)) ||
        (rc = notes__buf_put_varint(out, na)) ||
        (rc = notes__buf_put(out, authors, na * 32)) ||
        (rc = notes__buf_put_varint(out, n)) ||
        (rc = notes__buf_put_varint(out, hdr.len)) ||
        (rc = notes__buf_put_varint(out, ops.len)) ||
        (rc = notes__buf_put_varint(out, text.len)) ||
        (rc = notes__buf_put_varint(out, sigs.len)) ||
        (rc = notes__buf_put(out, hdr.data, hdr.len)) ||
        (rc = notes__buf_put(out, ops.data, ops.len)) ||
        (rc = notes__buf_put(out, text.data, text.len)) ||
        (rc = notes__buf_put(out, sigs.data, sigs.len)))
        goto out;
out:
    notes__buf_release(&hdr);
    notes__buf_release(&ops);
    notes__buf_release(&text);
    notes__buf_release(&sigs);
    notes__free(authors);
    notes__free(last_seq);
    return rc;
}

/* ---- decoding ---- */

static int bad(const char *what)
{
    notes__set_detail("malformed pack: %s", what);
    return NOTES_ECORRUPT;
}

static int get_len(struct notes_reader *r, size_t max, size_t *out)
{
    uint64_t v;
    if (notes__get_varint(r, &v) || v > max)
        return NOTES_ECORRUPT;
    *out = (size_t)v;
    return NOTES_OK;
}

/* Copy `n` bytes of the text column into the body as varint length + bytes. */
static int put_text(struct notes_buf *body, struct notes_reader *text, size_t n)
{
    const uint8_t *p;
    if (notes__get_raw(text, n, &p))
        return bad("text column too short");
    int rc = notes__buf_put_varint(body, n);
    return rc ? rc : notes__buf_put(body, p, n);
}

/* Read a reference of change i and append the id it names to the body. */
static int get_ref(struct notes_reader *hdr, uint8_t (*ids)[32], size_t i,
                   int external, struct notes_buf *body, const char *what)
{
    size_t ref;
    const uint8_t *id;
    if (get_len(hdr, i, &ref))
        return bad(what);
    if (ref == 0) {
        if (!external || notes__get_raw(hdr, 32, &id))
            return bad(what);
        return notes__buf_put(body, id, 32);
    }
    return notes__buf_put(body, ids[i - ref], 32);
}

int notes__pack_decode(const uint8_t doc[16], const uint8_t *p, size_t n,
                       int flags, notes__change_cb cb, void *ctx)
{
    const int external = (flags & NOTES__PACK_EXTERNAL) != 0;
    struct notes_reader r, hdr, ops, text, sigs;
    struct notes_buf body;
    const uint8_t *authors, *col;
    uint8_t(*ids)[32] = NULL;
    uint64_t *last_seq = NULL;
    size_t na, nc, lh, lo, lt, ls;
    uint64_t time = 0;
    int64_t cursor = 0;
    int rc = NOTES_OK; /* an empty pack (no changes) is valid */

    notes__reader_init(&r, p, n);
    if (notes__get_raw(&r, 3, &col) || memcmp(col, pack_magic, 2) != 0)
        return bad("bad magic");
    if (col[2] != pack_magic[2]) {
        notes__set_detail("pack format version %u is not supported", col[2]);
        return NOTES_EVERSION;
    }
    if (get_len(&r, PACK_MAX_AUTHORS, &na) ||
        notes__get_raw(&r, na * 32, &authors) ||
        get_len(&r, notes__reader_left(&r), &nc) ||
        get_len(&r, n, &lh) || get_len(&r, n, &lo) || get_len(&r, n, &lt) ||
        get_len(&r, n, &ls))
        return bad("truncated header");
    if (lh > notes__reader_left(&r) || lo > notes__reader_left(&r) - lh ||
        lt > notes__reader_left(&r) - lh - lo ||
        ls != notes__reader_left(&r) - lh - lo - lt)
        return bad("column lengths do not add up");
    notes__reader_init(&hdr, p + r.off, lh);
    notes__reader_init(&ops, p + r.off + lh, lo);
    notes__reader_init(&text, p + r.off + lh + lo, lt);
    notes__reader_init(&sigs, p + r.off + lh + lo + lt, ls);
    /* Every change takes at least 6 header bytes. */
    if (nc > lh / 6 + 1)
        return bad("more changes than the header column can hold");
    ids = notes__malloc((nc + 1) * 32);
    last_seq = notes__calloc(na + 1, sizeof(*last_seq));
    notes__buf_init(&body, NOTES__CHANGE_MAX);
    if (!ids || !last_seq) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nc; i++) {
        size_t a, ndeps, nops;
        uint64_t dseq, dt;
        uint8_t flag;
        body.len = 0;
        if (get_len(&hdr, na ? na - 1 : 0, &a) || a >= na ||
            notes__get_varint(&hdr, &dseq) ||
            dseq > UINT64_MAX - last_seq[a] || last_seq[a] + dseq == 0) {
            rc = bad("bad change header");
            goto out;
        }
        uint64_t seq = last_seq[a] + dseq;
        last_seq[a] = seq;
        if ((rc = notes__buf_put(&body, "NC\x01", 3)) ||
            (rc = notes__buf_put(&body, doc, 16)) ||
            (rc = notes__buf_put(&body, authors + 32 * a, 32)) ||
            (rc = notes__buf_put_varint(&body, seq)))
            goto out;
        if (seq > 1 &&
            (rc = get_ref(&hdr, ids, i, external, &body, "bad prev reference")))
            goto out;
        if (get_len(&hdr, NOTES__MAX_DEPS, &ndeps)) {
            rc = bad("bad dependency count");
            goto out;
        }
        if ((rc = notes__buf_put_varint(&body, ndeps)))
            goto out;
        for (size_t k = 0; k < ndeps; k++)
            if ((rc = get_ref(&hdr, ids, i, external, &body,
                              "bad dependency reference")))
                goto out;
        if (notes__get_varint(&hdr, &dt) ||
            get_len(&hdr, NOTES__MAX_OPS, &nops) || nops == 0 ||
            notes__get_u8(&hdr, &flag) || flag > 1) {
            rc = bad("bad change header");
            goto out;
        }
        time += (uint64_t)unzigzag(dt);
        if ((rc = notes__buf_put_varint(&body, time)) ||
            (rc = notes__buf_put_varint(&body, nops)))
            goto out;
        for (size_t k = 0; k < nops; k++) {
            uint8_t kind;
            uint64_t v1, v2;
            if (notes__get_u8(&ops, &kind) || notes__get_varint(&ops, &v1) ||
                v1 > (UINT64_C(1) << 34)) {
                rc = bad("ops column too short or a delta out of range");
                goto out;
            }
            if ((rc = notes__buf_put_u8(&body, kind)))
                goto out;
            switch (kind) {
            case NOTES__K_INS: {
                int64_t pos = cursor + unzigzag(v1);
                if (pos < 0 || pos > UINT32_MAX ||
                    notes__get_varint(&ops, &v2) || v2 > lt ||
                    v2 > notes__reader_left(&text)) {
                    rc = bad("bad insert");
                    goto out;
                }
                const uint8_t *t = text.p + text.off;
                if ((rc = notes__buf_put_varint(&body, (uint64_t)pos)) ||
                    (rc = put_text(&body, &text, (size_t)v2)))
                    goto out;
                cursor = pos + (int64_t)notes__utf8_count(t, (size_t)v2);
                break;
            }
            case NOTES__K_DEL:
            case NOTES__K_DELBACK: {
                int64_t pos = cursor + unzigzag(v1);
                if (pos < 0 || pos > UINT32_MAX ||
                    notes__get_varint(&ops, &v2) || v2 > UINT32_MAX) {
                    rc = bad("bad delete");
                    goto out;
                }
                if ((rc = notes__buf_put_varint(&body, (uint64_t)pos)) ||
                    (rc = notes__buf_put_varint(&body, v2)))
                    goto out;
                cursor = kind == NOTES__K_DEL ? pos : pos - (int64_t)v2 + 1;
                break;
            }
            case NOTES__K_UNSET:
            case NOTES__K_NAME:
            case NOTES__K_LINK:
            case NOTES__K_REVOKE:
                if (v1 > lt) {
                    rc = bad("bad field");
                    goto out;
                }
                if ((rc = put_text(&body, &text, (size_t)v1)))
                    goto out;
                break;
            case NOTES__K_SET:
            case NOTES__K_ADD:
            case NOTES__K_REMOVE:
            case NOTES__K_CONFIRM:
                if (v1 > lt || notes__get_varint(&ops, &v2) || v2 > lt) {
                    rc = bad("bad field");
                    goto out;
                }
                if ((rc = put_text(&body, &text, (size_t)v1)) ||
                    (rc = put_text(&body, &text, (size_t)v2)))
                    goto out;
                break;
            default:
                rc = bad("unknown operation kind");
                goto out;
            }
        }
        notes__hash(ids[i], 32, body.data, body.len, NULL, 0);
        if ((rc = notes__buf_put_u8(&body, flag)))
            goto out;
        if (flag) {
            const uint8_t *sig;
            if (notes__get_raw(&sigs, 64, &sig)) {
                rc = bad("signature column too short");
                goto out;
            }
            if ((rc = notes__buf_put(&body, sig, 64)))
                goto out;
        }
        if ((rc = cb(ctx, body.data, body.len, ids[i])))
            goto out;
    }
    if (notes__reader_left(&hdr) || notes__reader_left(&ops) ||
        notes__reader_left(&text) || notes__reader_left(&sigs))
        rc = bad("trailing bytes in a column");
out:
    notes__buf_release(&body);
    notes__free(ids);
    notes__free(last_seq);
    return rc;
}
