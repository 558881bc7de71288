/*
 * change.h: the signed change, libnotes' unit of history (internal).
 * A change is one author's batch of operations on one document, encoded
 * canonically, signed with Ed25519 over those exact bytes, and named by the
 * BLAKE2b-256 of them. docs/format.md specifies the encoding.
 */
#ifndef NOTES_CHANGE_H
#define NOTES_CHANGE_H

#include "internal.h"

#define NOTES__CHANGE_MAX (16u << 20)     /* encoded size of one change */
#define NOTES__MAX_DEPS 256u              /* causal dependencies per change */
#define NOTES__MAX_OPS (1u << 20)         /* operations per change */
#define NOTES__KEY_MAX 128u               /* front-matter key, bytes */
#define NOTES__VALUE_MAX (64u << 10)      /* front-matter value, bytes */
#define NOTES__NAME_MAX 64u               /* author display name, bytes */

enum notes__op_kind {
    NOTES__K_INS = 1,    /* text insert: pos, text */
    NOTES__K_DEL = 2,    /* text delete: pos, count */
    NOTES__K_SET = 3,    /* register: key, value */
    NOTES__K_UNSET = 4,  /* register removed: key */
    NOTES__K_ADD = 5,    /* set element added: key, value */
    NOTES__K_REMOVE = 6, /* set element removed (observed adds): key, value */
    NOTES__K_DELBACK = 7, /* backspace run: deletes pos, pos-1, ... (count) */
    NOTES__K_NAME = 8,   /* the author's self-chosen display name: value */
    NOTES__K_LINK = 9,   /* a device link certificate: value (people.h) */
    NOTES__K_REVOKE = 10, /* a device revocation: value (people.h) */
    NOTES__K_CONFIRM = 11, /* key: anchor (36 bytes) + owner; value: text */
};

struct notes__op {
    uint8_t kind;
    uint32_t pos;        /* INS/DEL: code points */
    uint32_t count;      /* DEL: code points; INS: code points of text */
    const uint8_t *text; /* INS: UTF-8 text; SET/ADD/REMOVE: value */
    size_t textlen;
    const uint8_t *key;  /* SET/UNSET/ADD/REMOVE */
    size_t keylen;
};

struct notes__change {
    uint8_t id[32];      /* BLAKE2b-256 of body (all bytes but the signature) */
    uint8_t doc[16];
    uint8_t author[32];
    uint64_t seq;        /* 1, 2, ... per author per document */
    uint8_t prev[32];    /* id of the author's change seq-1; zero when seq==1 */
    uint32_t ndeps;
    uint8_t (*deps)[32]; /* heads the author had seen; sorted, unique */
    uint64_t time_ms;    /* author's clock, Unix ms; a claim, not a fact */
    uint32_t nops;
    struct notes__op *ops; /* point into bytes */
    uint64_t ntext_events; /* code points inserted + deleted */
    uint8_t *bytes;      /* owned: the whole encoding: body, flag, signature */
    size_t nbytes;
    size_t body_len;     /* bytes covered by the id and the signature */
    size_t ops_off;      /* where the encoded operations start */
    uint8_t is_signed;   /* carries its own signature (else covered by a
                          * later change of the author: docs/format.md) */
};

/* Decode and check structure (not the signature). OUT *out owned by caller. */
int notes__change_decode(const uint8_t *p, size_t n, struct notes__change **out);
/* The same, with the change's id already computed from these bytes by the
 * caller (NULL: hash them here). */
int notes__change_decode_id(const uint8_t *p, size_t n, const uint8_t *id,
                            struct notes__change **out);
/* Ed25519 check of the signature against the author key;
 * NOTES_EUNSIGNED if the change carries none. */
int notes__change_verify_sig(const struct notes__change *c);
/* Forget the signatures this thread checked or made (notes__change_verify_sig
 * keeps a memo of them): for benchmarks that time checking them again. */
void notes__sig_memo_clear(void);
/* Append the encoding of c to out, with its signature or (with_sig 0, or
 * none) without. */
int notes__change_encode(const struct notes__change *c, int with_sig,
                         struct notes_buf *out);
void notes__change_free(struct notes__change *c);

/* What the builder knows of a text op it wrote (text: an offset in ops),
 * so that finishing need not parse its own encoding again. */
struct notes__builder_op {
    uint8_t kind;
    uint32_t pos, count; /* INS: count = code points of the text */
    uint32_t text_off, textlen;
};

/* Builder: ops are appended to a growing body, then signed. */
struct notes__change_builder {
    struct notes_buf ops; /* encoded ops */
    uint32_t nops;
    uint64_t nevents;     /* text events so far (for CRDT ids) */
    struct notes__builder_op *rec; /* the ops, while all are text ops */
    size_t nrec, caprec;
    int parse;            /* finish decodes its encoding (an op not in rec) */
};
void notes__builder_init(struct notes__change_builder *b);
void notes__builder_release(struct notes__change_builder *b);
/* Empty it for the next change, keeping its memory (up to 64 KiB). */
void notes__builder_reset(struct notes__change_builder *b);
int notes__builder_ins(struct notes__change_builder *b, uint32_t pos,
                       const uint8_t *text, size_t n, uint32_t ncp);
int notes__builder_del(struct notes__change_builder *b, int kind,
                       uint32_t pos, uint32_t count);
int notes__builder_name(struct notes__change_builder *b, const char *name);
/* An op of kind LINK, REVOKE (value only) or CONFIRM (key and value). */
int notes__builder_blob(struct notes__change_builder *b, int kind,
                        const uint8_t *key, size_t klen, const uint8_t *value,
                        size_t vlen);
int notes__builder_kv(struct notes__change_builder *b, int kind,
                      const char *key, const char *value);
/*
 * Encode and (with `sign`) sign. deps must be sorted and unique. OUT *out:
 * the decoded change, ready to store. Uses notes_identity_sign. An unsigned
 * change must be covered by a later signed change of the same author.
 * When every op is a well-formed text op the builder recorded, *out is
 * made from those records (what notes__change_decode of the bytes gives,
 * without parsing them again); otherwise the bytes are decoded, which
 * refuses what the decoder refuses.
 */
int notes__builder_finish(struct notes__change_builder *b, const uint8_t doc[16],
                          const notes_identity *id, uint64_t seq,
                          const uint8_t prev[32], const uint8_t (*deps)[32],
                          uint32_t ndeps, uint64_t time_ms, int sign,
                          struct notes__change **out);

#endif
