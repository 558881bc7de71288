/*
 * json_write.c: note -> JSON, built with jansson (the only file that
 * includes <jansson.h> besides search_json.c). The shape ("notes.note/1") is documented in
 * docs/formats.md; fields are only ever added to it.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fmt_internal.h"

static json_t *hex(const uint8_t *p, size_t n)
{
    char s[65];
    notes__hex(s, p, n > 32 ? 32 : n);
    return json_string(s);
}

/*
 * Append obj to arr when it holds each of the keys listed (NULL-ended):
 * json_pack leaves out an "o*" value that failed to build, so a missing
 * key is an allocation that failed. Consumes obj; on failure frees arr
 * and returns -1, so that the caller returns NULL.
 */
static int append_whole(json_t *arr, json_t *obj, ...)
{
    va_list ap;
    va_start(ap, obj);
    for (const char *k = va_arg(ap, const char *); obj && k;
         k = va_arg(ap, const char *))
        if (!json_object_get(obj, k)) {
            json_decref(obj);
            obj = NULL;
        }
    va_end(ap);
    if (json_array_append_new(arr, obj)) { /* NULL obj fails too */
        json_decref(arr);
        return -1;
    }
    return 0;
}

/* {"key", "fingerprint"} of a key, plus "name" when given. */
static json_t *key_obj(const uint8_t pk[32], const char *name, int with_name)
{
    char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
    notes_key_encode(pk, key);
    notes_key_fingerprint(pk, fpr);
    if (!with_name)
        return json_pack("{s:s, s:s}", "key", key, "fingerprint", fpr);
    return json_pack("{s:o, s:s, s:s}", "name",
                     name ? json_string(name) : json_null(), "key", key,
                     "fingerprint", fpr);
}

/*
 * A device key and who it speaks for: {"name" (the device's claimed name),
 * "key", "fingerprint", "person": null | {"name", "key", "fingerprint"},
 * "contested", "revoked": null | {"time_ms", "change"}}.
 */
static json_t *person(notes_doc *d, const uint8_t pk[32])
{
    notes_person_info pi;
    json_t *o = key_obj(pk, notes_doc_author_name(d, pk), 1);
    int rc = notes_doc_person(d, pk, &pi);
    if (rc && rc != NOTES_ENOTFOUND) {
        json_decref(o);
        return NULL;
    }
    json_t *who = pi.person && !pi.contested ? key_obj(pi.person, pi.name, 1)
                                             : json_null();
    json_t *rev = json_null();
    notes_change_info ci;
    if (pi.revoked && notes_doc_change(d, pi.revoked_change, &ci) == NOTES_OK)
        rev = json_pack("{s:I, s:o}", "time_ms", (json_int_t)pi.revoked_ms,
                        "change", hex(ci.id, 32));
    if (!o) {
        json_decref(who);
        json_decref(rev);
        return NULL;
    }
    /* json_object_set_new consumes the value even when it fails */
    int bad = json_object_set_new(o, "person", who);
    bad |= json_object_set_new(o, "contested", json_boolean(pi.contested));
    bad |= json_object_set_new(o, "revoked", rev);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

const char *notes_fmt_confirm_state_name(int state)
{
    switch (state) {
    case NOTES_FMT_CONF_CONFIRMED:
        return "confirmed";
    case NOTES_FMT_CONF_CHANGED:
        return "changed";
    case NOTES_FMT_CONF_WRONG_TEXT:
        return "wrong-text";
    case NOTES_FMT_CONF_NO_ITEM:
        return "no-item";
    case NOTES_FMT_CONF_UNKNOWN_KEY:
        return "unknown-key";
    case NOTES_FMT_CONF_REVOKED:
        return "revoked";
    default:
        return "unknown";
    }
}

static json_t *confirms(notes_doc *d, const notes_fmt_confirm *c, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *obj = json_pack(
            "{s:o*, s:o*, s:s, s:I, s:s, s:o, s:s, s:s, s:b}", "by",
            person(d, c[i].by.device), "change", hex(c[i].change_id, 32),
            "item", c[i].item_id, "anchor_event",
            (json_int_t)c[i].anchor_event, "text", c[i].text, "owner",
            c[i].owner[0] ? json_string(c[i].owner) : json_null(), "state",
            notes_fmt_confirm_state_name(c[i].state), "text_state",
            notes_fmt_confirm_state_name(c[i].text_state), "counted",
            c[i].counted);
        if (append_whole(arr, obj, "by", "change", (const char *)NULL))
            return NULL;
    }
    return arr;
}

static json_t *front_matter(notes_doc *d)
{
    json_t *fm = json_object();
    const char *const *names = notes_doc_fields(d);
    for (size_t i = 0; fm && names[i]; i++) {
        if (names[i][0] == '@')
            continue;
        const char *const *l = notes_doc_list(d, names[i]);
        json_t *v;
        if (l[0]) {
            v = json_array();
            for (size_t k = 0; v && l[k]; k++)
                if (json_array_append_new(v, json_string(l[k]))) {
                    json_decref(v);
                    v = NULL;
                }
        } else {
            v = json_string(notes_doc_field(d, names[i]));
        }
        if (json_object_set_new(fm, names[i], v)) {
            json_decref(fm);
            return NULL;
        }
    }
    return fm;
}

static json_t *opt_string(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *sections(const notes_fmt_outline *o, size_t off)
{
    json_t *root = json_array();
    json_t **objs = calloc(o->nsections + 1, sizeof(json_t *));
    if (!root || !objs)
        goto fail;
    for (size_t i = 0; i < o->nsections; i++) {
        const notes_fmt_section *s = &o->sections[i];
        objs[i] = json_pack("{s:i, s:s, s:s, s:I, s:b, s:[]}", "level",
                            (int)s->level, "heading", s->heading, "title",
                            s->title, "line", (json_int_t)s->line, "decisions",
                            s->decisions, "sections");
        if (objs[i])
            json_object_set_new(objs[i], "show_line",
                                json_integer((json_int_t)s->line + (json_int_t)off));
        if (!objs[i])
            goto fail;
        json_t *into =
            s->parent < i ? json_object_get(objs[s->parent], "sections") : root;
        if (json_array_append(into, objs[i]))
            goto fail;
    }
    for (size_t i = 0; i < o->nsections; i++)
        json_decref(objs[i]);
    free(objs);
    return root;
fail:
    for (size_t i = 0; objs && i < o->nsections; i++)
        json_decref(objs[i]);
    free(objs);
    json_decref(root);
    return NULL;
}

static json_t *items(notes_doc *d, const notes_fmt_outline *o, size_t off)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < o->nitems; i++) {
        const notes_fmt_item *it = &o->items[i];
        json_t *edited = json_array();
        for (size_t a = 1; edited && a < it->nauthors; a++)
            if (json_array_append_new(edited, person(d, it->authors[a]))) {
                json_decref(edited);
                edited = NULL;
            }
        json_t *obj = json_pack(
            "{s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:o*, s:o*, s:b, s:s?, "
            "s:o*, s:I}",
            "id", it->has_anchor ? json_string(it->id) : json_null(), "kind",
            notes_fmt_item_kind_name(it->kind), "text",
            it->text, "owner", opt_string(it->owner), "owner_as_written",
            opt_string(it->owner_written), "done",
            it->kind == NOTES_FMT_ITEM_TASK ? json_boolean(it->done)
                                            : json_null(),
            "section",
            it->section < o->nsections
                ? json_string(o->sections[it->section].title)
                : json_null(),
            "line", (json_int_t)it->line, "recorded_by",
            it->nauthors ? person(d, it->authors[0]) : json_null(), "edited_by",
            edited, "verified", it->verified, "revocation",
            notes_fmt_revocation_name(it->revocation), "confirmations",
            confirms(d, it->confirms, it->nconfirms), "confirmed_by_count",
            (json_int_t)it->confirmed_by);
        if (obj)
            json_object_set_new(obj, "show_line",
                                json_integer((json_int_t)it->line + (json_int_t)off));
        if (append_whole(arr, obj, "recorded_by", "edited_by",
                         "confirmations", (const char *)NULL))
            return NULL;
    }
    return arr;
}

static json_t *authors(notes_doc *d)
{
    uint8_t(*keys)[32];
    size_t n;
    if (notes_fmt_authors(d, &keys, &n) != NOTES_OK)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, person(d, keys[i]))) {
            json_decref(arr);
            arr = NULL;
        }
    notes_fmt_free(keys);
    return arr;
}

int notes_fmt_json_export(notes_doc *d, char **out, size_t *n)
{
    notes_fmt_outline o;
    uint8_t(*heads)[32] = NULL;
    size_t nheads = 0, tl;
    int rc;
    if ((rc = notes_fmt__export_start(d, out, n, "JSON export")))
        return rc;
    if ((rc = notes_fmt_outline_doc(d, &o)))
        return rc;
    if ((rc = notes_doc_heads(d, &heads, &nheads))) {
        notes_fmt_outline_clear(&o);
        return rc;
    }
    json_t *version = json_array();
    for (size_t i = 0; version && i < nheads; i++)
        if (json_array_append_new(version, hex(heads[i], 32))) {
            json_decref(version);
            version = NULL;
        }
    notes_free(heads);
    const char *text = notes_doc_text(d, &tl);
    size_t off = notes_fmt_md_text_line(d);
    json_t *root = json_pack(
        "{s:s, s:o, s:o*, s:o*, s:o, s:o*, s:o*, s:o*, s:o*}", "format",
        "notes.note/1", "id", hex(notes_doc_id(d), 16), "version", version,
        "front_matter", front_matter(d), "text", json_stringn(text, tl),
        "sections", sections(&o, off), "items", items(d, &o, off), "authors", authors(d),
        "unattached_confirmations",
        confirms(d, o.orphan_confirms, o.norphans));
    notes_fmt_outline_clear(&o);
    if (!root || !json_object_get(root, "version") ||
        !json_object_get(root, "front_matter") ||
        !json_object_get(root, "sections") || !json_object_get(root, "items") ||
        !json_object_get(root, "authors") ||
        !json_object_get(root, "unattached_confirmations")) {
        json_decref(root);
        return notes_fmt__fail(NOTES_ENOMEM, "JSON export: out of memory");
    }
    char *s = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!s)
        return notes_fmt__fail(NOTES_ENOMEM, "JSON export: out of memory");
    size_t len = strlen(s);
    char *r = realloc(s, len + 2);
    if (!r) {
        free(s);
        return notes_fmt__fail(NOTES_ENOMEM, "JSON export: out of memory");
    }
    r[len++] = '\n';
    r[len] = 0;
    *out = r;
    if (n)
        *n = len;
    return NOTES_OK;
}
