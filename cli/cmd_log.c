/*
 * cmd_log.c: `notes log`, a note's changes in order, each said in words.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* At most `max` code points of s (n bytes) then "...", escaped, quoted. */
static void put_short(char *out, size_t cap, const char *s, size_t n)
{
    size_t cut = 0, cps = 0;
    while (cut < n && cps < 40) {
        cut++;
        while (cut < n && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut++;
        cps++;
    }
    snprintf(out, cap, "\"%s%s\"", cli_escn(s, cut), cut < n ? "..." : "");
}

struct say {
    char *buf;
    size_t cap, len;
    unsigned parts, dropped;
};

static void say(struct say *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct say *s, const char *fmt, ...)
{
    /* A long change (an import) names its first parts and counts the rest. */
    if (s->parts >= 8) {
        s->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    if (s->len < s->cap) {
        int k = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        if (k > 0)
            s->len += (size_t)k < s->cap - s->len ? (size_t)k : s->cap - s->len - 1;
    }
    va_end(ap);
    s->parts++;
}

static const char *op_name(int kind)
{
    switch (kind) {
    case NOTES_OP_INSERT: return "insert";
    case NOTES_OP_DELETE: return "delete";
    case NOTES_OP_SET: return "set";
    case NOTES_OP_UNSET: return "unset";
    case NOTES_OP_ADD: return "add";
    case NOTES_OP_REMOVE: return "remove";
    case NOTES_OP_NAME: return "name";
    case NOTES_OP_LINK: return "link";
    case NOTES_OP_REVOKE: return "revoke";
    case NOTES_OP_CONFIRM: return "confirm";
    default: return "other";
    }
}

/*
 * What change i did, in words (text "+3 -1", "title set to ...",
 * "participants + Zed", "confirmed ...", "linked device ..."), and with
 * `ops` (JSON) one object per operation, text runs summed into one.
 */
static void describe(struct cli_ctx *ctx, notes_doc *d, size_t i,
                     const notes_change_info *ci, char *out, size_t cap,
                     json_t *ops)
{
    struct say s = {out, cap, 0, 0, 0};
    out[0] = 0;
    if (ci->inserted || ci->deleted) {
        say(&s, "text +%llu -%llu", (unsigned long long)ci->inserted,
            (unsigned long long)ci->deleted);
        if (ops)
            json_array_append_new(
                ops, json_pack("{s:s, s:I, s:I}", "op", "text", "inserted",
                               (json_int_t)ci->inserted, "deleted",
                               (json_int_t)ci->deleted));
    }
    int last_kind = 0;
    const char *last_key = NULL;
    size_t last_keylen = 0;
    for (size_t k = 0; k < ci->nops; k++) {
        notes_op_info o;
        char v[200], who[400], fpr[NOTES_FPR_STRLEN];
        if (notes_doc_change_op(d, i, k, &o))
            continue;
        if (o.kind == NOTES_OP_INSERT || o.kind == NOTES_OP_DELETE)
            continue;
        const char *sep = s.len ? "; " : "";
        int layout = o.keylen && o.key[0] == '@';
        switch (o.kind) {
        case NOTES_OP_SET:
        case NOTES_OP_UNSET:
        case NOTES_OP_ADD:
        case NOTES_OP_REMOVE:
            if (ops) {
                json_t *e = json_pack("{s:s, s:s%}", "op", op_name(o.kind),
                                      "field", o.key, o.keylen);
                if (e && o.kind != NOTES_OP_UNSET)
                    json_object_set_new(
                        e, "value",
                        json_stringn(o.value ? o.value : "", o.valuelen));
                json_array_append_new(ops, e);
            }
            if (layout) {
                say(&s, "%sfront matter layout", sep);
                break;
            }
            put_short(v, sizeof(v), o.value ? o.value : "", o.valuelen);
            if ((o.kind == NOTES_OP_ADD || o.kind == NOTES_OP_REMOVE) &&
                o.kind == last_kind && o.keylen == last_keylen &&
                !memcmp(o.key, last_key, o.keylen)) {
                /* "participants + A, B, C": one phrase per list */
                if (s.parts < 8 && s.len + strlen(v) + 3 < cap) {
                    s.len += (size_t)snprintf(out + s.len, cap - s.len, ", %s", v);
                } else {
                    s.dropped++;
                }
                break;
            }
            last_kind = o.kind;
            last_key = o.key;
            last_keylen = o.keylen;
            if (o.kind == NOTES_OP_SET)
                say(&s, "%s%s set to %s", sep, cli_escn(o.key, o.keylen), v);
            else if (o.kind == NOTES_OP_UNSET)
                say(&s, "%s%s removed", sep, cli_escn(o.key, o.keylen));
            else
                say(&s, "%s%s %c %s", sep, cli_escn(o.key, o.keylen),
                    o.kind == NOTES_OP_ADD ? '+' : '-', v);
            break;
        case NOTES_OP_NAME:
            put_short(v, sizeof(v), o.value, o.valuelen);
            say(&s, "%sname %s", sep, v);
            if (ops)
                json_array_append_new(ops, json_pack("{s:s, s:s%}", "op",
                                                     "name", "value", o.value,
                                                     o.valuelen));
            break;
        case NOTES_OP_LINK:
        case NOTES_OP_REVOKE:
            if (!o.device)
                break;
            cli_author(ctx, d, o.device, who, sizeof(who));
            notes_key_fingerprint(o.person, fpr);
            put_short(v, sizeof(v), o.value, o.valuelen);
            say(&s, "%s%s device %s %s person %s (%s)", sep,
                o.kind == NOTES_OP_LINK ? "linked" : "unlinked", who,
                o.kind == NOTES_OP_LINK ? "to" : "from", v, fpr);
            if (ops) {
                char dfp[NOTES_FPR_STRLEN];
                notes_key_fingerprint(o.device, dfp);
                json_array_append_new(
                    ops, json_pack("{s:s, s:s, s:s, s:s%}", "op",
                                   op_name(o.kind), "device", dfp, "person",
                                   fpr, "person_name", o.value, o.valuelen));
            }
            break;
        case NOTES_OP_CONFIRM:
            put_short(v, sizeof(v), o.value ? o.value : "", o.valuelen);
            say(&s, "%sconfirmed %s%s%s", sep, v, o.keylen ? " for " : "",
                o.keylen ? cli_escn(o.key, o.keylen) : "");
            if (ops)
                json_array_append_new(
                    ops, json_pack("{s:s, s:s%, s:s%}", "op", "confirm",
                                   "item", o.value ? o.value : "", o.valuelen,
                                   "owner", o.key ? o.key : "", o.keylen));
            break;
        default:
            break;
        }
    }
    if (s.dropped && s.len < cap)
        snprintf(out + s.len, cap - s.len, "; and %u more", s.dropped);
    if (!out[0])
        snprintf(out, cap, "nothing");
}

int cmd_log(int argc, char **argv, struct cli_ctx *ctx)
{
    notes_doc *d;
    int rc;
    if ((rc = cli_open_note_arg(ctx, argc, argv, "log", 1, &d)))
        return rc;
    json_t *arr = ctx->json ? json_array() : NULL;
    for (size_t i = notes_doc_change_count(d); i-- > 0;) {
        notes_change_info ci;
        char hex[65], who[400], when[64], what[1200], key[NOTES_KEY_STRLEN];
        if (notes_doc_change(d, i, &ci))
            continue;
        for (int k = 0; k < 32; k++)
            snprintf(hex + (size_t)2 * k, 3, "%02x", ci.id[k]);
        cli_author(ctx, d, ci.author, who, sizeof(who));
        cli_time(ci.time_ms, when, sizeof(when));
        json_t *ops = arr ? json_array() : NULL;
        describe(ctx, d, i, &ci, what, sizeof(what), ops);
        int bad = notes_doc_author_equivocated(d, ci.author);
        if (arr) {
            notes_key_encode(ci.author, key);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:i, "
                               "s:s, s:o, s:b, s:b}",
                               "id", hex, "author", who, "key", key, "seq",
                               (json_int_t)ci.seq, "time_ms",
                               (json_int_t)ci.time_ms, "time", when,
                               "inserted", (json_int_t)ci.inserted, "deleted",
                               (json_int_t)ci.deleted, "fields", ci.nfields,
                               "summary", what, "ops", ops,
                               "equivocated", ci.equivocated,
                               "equivocating_key", bad));
        } else {
            /* Every change of such a key is marked, not just the two that
             * share a seq: the whole key is not to be trusted. */
            /* Padded by display width: "RăzvanD" lines up too. */
            printf("%s%.12s%s  ", ctx->color ? "\033[33m" : "", hex,
                   ctx->color ? "\033[0m" : "");
            cli_pad(who, 28);
            printf("  %s  %s%s%s\n", when, what,
                   bad ? "  [equivocating key]" : "",
                   ci.equivocated ? " (seq signed twice)" : "");
        }
    }
    cli_json_out(arr);
    notes_doc_free(d);
    return 0;
}
