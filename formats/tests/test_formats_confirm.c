/*
 * test_formats_confirm.c: item ids and signed confirmations in the
 * outline and the JSON export, on real replicas in a temporary directory.
 *
 * Cast: Ana (person "Ana") on devices A and A2 (A2 linked from A), Bo
 * (person "Bo") on device B, and a stranger's device X linked to nobody.
 * Changes travel between them as whole-note bundles.
 */
#include <ftw.h>
#include <jansson.h>
#include <unistd.h>

#include "fmt_test.h"

struct world {
    char dir[64];
    notes_replica *a, *a2, *b, *x;
    notes_doc *da, *da2, *db, *dx;
};

static const char base_text[] = "# Weekly\n"
                                "## Decisions\n"
                                "- RD: ship it\n"
                                "- Everyone: test it\n"
                                "- [ ] write docs\n";

static notes_replica *make_replica(struct world *w, const char *sub,
                                   const char *name, const char *person)
{
    char home[128];
    notes_replica *r;
    snprintf(home, sizeof(home), "%s/%s", w->dir, sub);
    assert_int_equal(notes_replica_create(home, name, NULL, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    if (person)
        assert_int_equal(notes_replica_person_create(r, person, NULL),
                         NOTES_OK);
    return r;
}

/* Send everything `from` holds to `to`. */
static void send(notes_doc *from, notes_doc *to)
{
    uint8_t *bytes;
    size_t n;
    assert_int_equal(notes_doc_export(from, NULL, 0, &bytes, &n), NOTES_OK);
    assert_int_equal(notes_doc_merge(to, bytes, n, NULL), NOTES_OK);
    notes_free(bytes);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    const char *tmp = getenv("TMPDIR");
    snprintf(w->dir, sizeof(w->dir), "%s/fmtconfXXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(notes_init(), NOTES_OK);
    w->a = make_replica(w, "a", "ana-laptop", "Ana");
    w->a2 = make_replica(w, "a2", "ana-phone", NULL);
    w->b = make_replica(w, "b", "bo-laptop", "Bo");
    w->x = make_replica(w, "x", "stranger", NULL);
    /* A2 pairs with A: A2's code, Ana's person key on A. */
    char *code;
    notes_identity *p;
    assert_int_equal(notes_replica_pair_code(w->a2, &code), NOTES_OK);
    assert_int_equal(notes_replica_person_load(w->a, NULL, &p), NOTES_OK);
    assert_int_equal(notes_replica_link(w->a, p, code, NULL), NOTES_OK);
    notes_identity_free(p);
    notes_free(code);

    assert_int_equal(notes_doc_create(w->a, &w->da), NOTES_OK);
    assert_int_equal(notes_doc_splice(w->da, 0, 0, base_text,
                                      sizeof(base_text) - 1),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(w->da, NULL), NOTES_OK);
    const uint8_t *id = notes_doc_id(w->da);
    assert_int_equal(notes_doc_create_id(w->a2, id, &w->da2), NOTES_OK);
    assert_int_equal(notes_doc_create_id(w->b, id, &w->db), NOTES_OK);
    assert_int_equal(notes_doc_create_id(w->x, id, &w->dx), NOTES_OK);
    send(w->da, w->da2);
    send(w->da, w->db);
    send(w->da, w->dx);
    *state = w;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct world *w = *state;
    notes_doc_free(w->da);
    notes_doc_free(w->da2);
    notes_doc_free(w->db);
    notes_doc_free(w->dx);
    notes_replica_free(w->a);
    notes_replica_free(w->a2);
    notes_replica_free(w->b);
    notes_replica_free(w->x);
    nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(w);
    return 0;
}

static void outline(notes_doc *d, notes_fmt_outline *o)
{
    assert_int_equal(notes_fmt_outline_doc(d, o), NOTES_OK);
}

/* Code point offset of the first `what` in d's text (ASCII texts here). */
static size_t find(notes_doc *d, const char *what)
{
    size_t n;
    const char *t = notes_doc_text(d, &n);
    const char *at = strstr(t, what);
    assert_non_null(at);
    return (size_t)(at - t);
}

static void edit(notes_doc *d, size_t pos, size_t del, const char *ins)
{
    assert_int_equal(notes_doc_splice(d, pos, del, ins, strlen(ins)),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
}

/* Confirm item i of d as a client does: its owner ("" for none) and text. */
static void confirm(notes_doc *d, size_t i)
{
    notes_fmt_outline o;
    outline(d, &o);
    assert_true(i < o.nitems);
    const notes_fmt_item *it = &o.items[i];
    assert_int_equal(
        notes_doc_confirm(d, it->cp_start, it->owner ? it->owner : "", it->text),
        NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_fmt_outline_clear(&o);
}

static void person_key(notes_replica *r, uint8_t out[32])
{
    notes_identity *p;
    assert_int_equal(notes_replica_person_load(r, NULL, &p), NOTES_OK);
    memcpy(out, notes_identity_public_key(p), 32);
    notes_identity_free(p);
}

/* The id survives text inserted before the item and edits inside it, is
 * the same on every replica, and is found by a prefix. */
static void test_formats_item_id_stable(void **state)
{
    struct world *w = *state;
    notes_fmt_outline o;
    outline(w->da, &o);
    assert_int_equal(o.nitems, 3);
    char id[3][17];
    for (size_t i = 0; i < 3; i++) {
        const notes_fmt_item *it = &o.items[i];
        assert_true(it->has_anchor);
        assert_int_equal(strlen(it->id), 16);
        assert_int_equal(strspn(it->id, "0123456789abcdef"), 16);
        char again[17];
        notes_fmt_item_id(it->anchor, it->anchor_event, again);
        assert_string_equal(again, it->id);
        strcpy(id[i], it->id);
        /* the recorder is Ana the person, not just a device key */
        assert_int_equal(it->nauthors, 1);
        assert_non_null(it->people);
        assert_memory_equal(it->people[0].device,
                            notes_replica_public_key(w->a), 32);
        assert_true(it->people[0].has_person);
        assert_string_equal(it->people[0].name, "Ana");
        assert_false(it->people[0].revoked);
    }
    assert_string_not_equal(id[0], id[1]);
    /* all three were inserted by the first change */
    notes_change_info ci;
    assert_int_equal(notes_doc_change(w->da, 0, &ci), NOTES_OK);
    assert_memory_equal(o.items[0].anchor, ci.id, 32);
    assert_true(o.items[0].anchor_event < o.items[1].anchor_event);
    size_t k;
    char upper[9];
    for (size_t i = 0; i < 8; i++)
        upper[i] = (char)(id[1][i] >= 'a' ? id[1][i] - 32 : id[1][i]);
    upper[8] = 0;
    assert_int_equal(notes_fmt_item_find(&o, upper, &k), NOTES_OK);
    assert_int_equal(k, 1);
    assert_int_equal(notes_fmt_item_find(&o, id[2], &k), NOTES_OK);
    assert_int_equal(k, 2);
    assert_int_equal(notes_fmt_item_find(&o, "", &k), NOTES_EINVAL);
    assert_int_equal(notes_fmt_item_find(&o, "xyz", &k), NOTES_EINVAL);
    assert_int_equal(notes_fmt_item_find(&o, "0123456789abcdef0", &k),
                     NOTES_EINVAL);
    notes_fmt_outline_clear(&o);

    /* Bo adds a line before the items and rewrites Ana's first item's
     * text; Ana appends to the third item concurrently. */
    edit(w->db, find(w->db, "## Decisions"), 0, "Intro line\n");
    size_t ship = find(w->db, "ship it");
    edit(w->db, ship, 4, "release");
    edit(w->da, find(w->da, "write docs") + 10, 0, " and examples");
    send(w->db, w->da);
    send(w->da, w->db);
    for (notes_doc *d = w->da; d; d = d == w->da ? w->db : NULL) {
        outline(d, &o);
        assert_int_equal(o.nitems, 3);
        assert_string_equal(o.items[0].text, "release it");
        assert_string_equal(o.items[2].text, "write docs and examples");
        for (size_t i = 0; i < 3; i++)
            assert_string_equal(o.items[i].id, id[i]);
        /* the editor is Bo the person */
        assert_int_equal(o.items[0].nauthors, 2);
        assert_string_equal(o.items[0].people[1].name, "Bo");
        notes_fmt_outline_clear(&o);
    }

    /* Uncommitted edits: no ids. */
    assert_int_equal(notes_doc_splice(w->da, 0, 0, "x", 1), NOTES_OK);
    outline(w->da, &o);
    assert_false(o.items[0].has_anchor);
    assert_string_equal(o.items[0].id, "");
    assert_int_equal(notes_fmt_item_find(&o, id[0], &k), NOTES_ENOTFOUND);
    notes_fmt_outline_clear(&o);
}

/* Confirmed now; changed after an edit, keeping the old text. */
static void test_formats_confirm_then_change(void **state)
{
    struct world *w = *state;
    uint8_t ana_person[32];
    person_key(w->a, ana_person);
    confirm(w->da, 0);
    notes_fmt_outline o;
    outline(w->da, &o);
    const notes_fmt_item *it = &o.items[0];
    assert_int_equal(it->nconfirms, 1);
    const notes_fmt_confirm *c = &it->confirms[0];
    assert_int_equal(c->state, NOTES_FMT_CONF_CONFIRMED);
    assert_int_equal(c->text_state, NOTES_FMT_CONF_CONFIRMED);
    assert_true(c->counted);
    assert_int_equal(it->confirmed_by, 1);
    assert_string_equal(c->text, "ship it");
    assert_string_equal(c->owner, "RD");
    assert_string_equal(c->item_id, it->id);
    assert_memory_equal(c->by.device, notes_replica_public_key(w->a), 32);
    assert_true(c->by.has_person);
    assert_memory_equal(c->by.person, ana_person, 32);
    assert_string_equal(c->by.name, "Ana");
    notes_change_info ci;
    assert_int_equal(notes_doc_change(w->da, c->change, &ci), NOTES_OK);
    assert_memory_equal(c->change_id, ci.id, 32);
    assert_int_equal(o.items[1].nconfirms, 0);
    assert_int_equal(o.norphans, 0);
    notes_fmt_outline_clear(&o);

    /* An edit elsewhere leaves it confirmed. */
    edit(w->da, 0, 0, "Preamble\n");
    outline(w->da, &o);
    assert_int_equal(o.items[0].confirms[0].state, NOTES_FMT_CONF_CONFIRMED);
    notes_fmt_outline_clear(&o);

    /* Bo edits the item: the confirmation names the old text. */
    send(w->da, w->db);
    edit(w->db, find(w->db, "ship it") + 7, 0, " today");
    send(w->db, w->da);
    for (notes_doc *d = w->da; d; d = d == w->da ? w->db : NULL) {
        outline(d, &o);
        it = &o.items[0];
        assert_string_equal(it->text, "ship it today");
        assert_int_equal(it->nconfirms, 1);
        c = &it->confirms[0];
        assert_int_equal(c->state, NOTES_FMT_CONF_CHANGED);
        assert_int_equal(c->text_state, NOTES_FMT_CONF_CHANGED);
        assert_string_equal(c->text, "ship it");
        assert_false(c->counted);
        assert_int_equal(it->confirmed_by, 0);
        notes_fmt_outline_clear(&o);
    }

    /* A changed owner is a change too. */
    confirm(w->da, 1);
    edit(w->da, find(w->da, "Everyone") + 8, 0, "/RD");
    outline(w->da, &o);
    assert_string_equal(o.items[1].owner, "Everyone, RD");
    assert_int_equal(o.items[1].confirms[0].state, NOTES_FMT_CONF_CHANGED);
    assert_string_equal(o.items[1].confirms[0].owner, "Everyone");
    notes_fmt_outline_clear(&o);
}

/* A confirmation of another item's text, bound to this item: wrong text;
 * the same for a text that is nobody's. */
static void test_formats_confirm_wrong_text(void **state)
{
    struct world *w = *state;
    notes_fmt_outline o;
    outline(w->da, &o);
    assert_int_equal(notes_doc_confirm(w->da, o.items[0].cp_start, "Everyone",
                                       "test it"),
                     NOTES_OK);
    assert_int_equal(notes_doc_confirm(w->da, o.items[2].cp_start, "",
                                       "write docs!"),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(w->da, NULL), NOTES_OK);
    notes_fmt_outline_clear(&o);
    outline(w->da, &o);
    assert_int_equal(o.items[0].nconfirms, 1);
    assert_int_equal(o.items[0].confirms[0].state, NOTES_FMT_CONF_WRONG_TEXT);
    assert_false(o.items[0].confirms[0].counted);
    assert_int_equal(o.items[0].confirmed_by, 0);
    assert_int_equal(o.items[1].nconfirms, 0); /* not the other item's */
    assert_int_equal(o.items[2].confirms[0].state, NOTES_FMT_CONF_WRONG_TEXT);
    assert_int_equal(o.items[2].confirmed_by, 0);
    notes_fmt_outline_clear(&o);
    /* A later edit making the text match makes it confirmed: it says what
     * the item reads, and now it does. */
    edit(w->da, find(w->da, "write docs") + 10, 0, "!");
    outline(w->da, &o);
    assert_int_equal(o.items[2].confirms[0].state, NOTES_FMT_CONF_CONFIRMED);
    assert_int_equal(o.items[2].confirmed_by, 1);
    notes_fmt_outline_clear(&o);
}

/* A device linked to no person: reported, not counted. */
static void test_formats_confirm_unknown_key(void **state)
{
    struct world *w = *state;
    confirm(w->dx, 0);
    send(w->dx, w->da);
    notes_fmt_outline o;
    outline(w->da, &o);
    assert_int_equal(o.items[0].nconfirms, 1);
    const notes_fmt_confirm *c = &o.items[0].confirms[0];
    assert_int_equal(c->state, NOTES_FMT_CONF_UNKNOWN_KEY);
    assert_int_equal(c->text_state, NOTES_FMT_CONF_CONFIRMED);
    assert_false(c->by.has_person);
    assert_null(c->by.name);
    assert_memory_equal(c->by.device, notes_replica_public_key(w->x), 32);
    assert_false(c->counted);
    assert_int_equal(o.items[0].confirmed_by, 0);
    notes_fmt_outline_clear(&o);
}

/* A deleted item's confirmation is kept at the outline's level. */
static void test_formats_confirm_orphan(void **state)
{
    struct world *w = *state;
    notes_fmt_outline o;
    confirm(w->da, 2);
    outline(w->da, &o);
    char id[17];
    strcpy(id, o.items[2].id);
    notes_fmt_outline_clear(&o);
    size_t at = find(w->da, "- [ ] write docs\n");
    edit(w->da, at, strlen("- [ ] write docs\n"), "");
    outline(w->da, &o);
    assert_int_equal(o.nitems, 2);
    assert_int_equal(o.norphans, 1);
    const notes_fmt_confirm *c = &o.orphan_confirms[0];
    assert_int_equal(c->state, NOTES_FMT_CONF_NO_ITEM);
    assert_int_equal(c->text_state, NOTES_FMT_CONF_CHANGED); /* was right */
    assert_string_equal(c->item_id, id);
    assert_string_equal(c->text, "write docs");
    assert_string_equal(c->owner, "");
    assert_false(c->counted);
    notes_fmt_outline_clear(&o);
}

/* One person counts once, whatever the number of confirmations and
 * devices; two persons count twice. */
static void test_formats_confirm_counted_once(void **state)
{
    struct world *w = *state;
    confirm(w->da, 0);
    confirm(w->da, 0);
    /* A2 learns its link from A's next change (A's certs travel in it) */
    edit(w->da, 0, 0, "\n");
    send(w->da, w->da2);
    confirm(w->da2, 0);
    send(w->da, w->db);
    confirm(w->db, 0);
    send(w->da2, w->da);
    send(w->db, w->da);
    notes_fmt_outline o;
    outline(w->da, &o);
    const notes_fmt_item *it = &o.items[0];
    assert_int_equal(it->nconfirms, 4);
    int counted[4];
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(it->confirms[i].state, NOTES_FMT_CONF_CONFIRMED);
        assert_true(it->confirms[i].by.has_person);
        counted[i] = it->confirms[i].counted;
    }
    assert_int_equal(counted[0] + counted[1] + counted[2] + counted[3], 2);
    assert_int_equal(it->confirmed_by, 2);
    int bo_counted = 0;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(it->confirms[i].by.name, "Bo") == 0)
            bo_counted = it->confirms[i].counted;
    assert_true(bo_counted);
    notes_fmt_outline_clear(&o);
}

/* A revoked device: a confirmation the revocation saw still counts, one
 * made concurrently with the revocation does not. */
static void test_formats_confirm_revoked(void **state)
{
    struct world *w = *state;
    edit(w->da, 0, 0, "\n"); /* carries A2's link */
    send(w->da, w->da2);
    confirm(w->da2, 0);
    send(w->da2, w->da);
    confirm(w->da2, 1); /* not sent before the revocation */
    notes_identity *p;
    assert_int_equal(notes_replica_person_load(w->a, NULL, &p), NOTES_OK);
    assert_int_equal(
        notes_replica_revoke(w->a, p, notes_replica_public_key(w->a2)),
        NOTES_OK);
    notes_identity_free(p);
    size_t added;
    assert_int_equal(notes_doc_publish_certs(w->da, &added), NOTES_OK);
    assert_int_equal(notes_doc_commit(w->da, NULL), NOTES_OK);
    send(w->da2, w->da);
    notes_fmt_outline o;
    outline(w->da, &o);
    assert_int_equal(o.items[0].confirms[0].state, NOTES_FMT_CONF_CONFIRMED);
    assert_true(o.items[0].confirms[0].by.revoked);
    assert_true(o.items[0].confirms[0].counted);
    assert_int_equal(o.items[1].confirms[0].state, NOTES_FMT_CONF_REVOKED);
    assert_int_equal(o.items[1].confirms[0].text_state,
                     NOTES_FMT_CONF_CONFIRMED);
    assert_false(o.items[1].confirms[0].counted);
    assert_int_equal(o.items[1].confirmed_by, 0);
    notes_fmt_outline_clear(&o);
}

/* The JSON shape: ids, people, confirmations, unattached ones. */
static void test_formats_confirm_json(void **state)
{
    struct world *w = *state;
    confirm(w->da, 0);
    confirm(w->dx, 1);
    send(w->dx, w->da);
    confirm(w->da, 2);
    edit(w->da, find(w->da, "- [ ] write docs\n"), 17, "");
    notes_fmt_outline o;
    outline(w->da, &o);
    char id0[17];
    strcpy(id0, o.items[0].id);
    notes_fmt_outline_clear(&o);

    char *out;
    size_t n;
    assert_int_equal(notes_fmt_json_export(w->da, &out, &n), NOTES_OK);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    if (!j)
        fail_msg("JSON does not parse: line %d: %s", err.line, err.text);
    notes_fmt_free(out);
    json_t *items = json_object_get(j, "items");
    assert_int_equal(json_array_size(items), 2);
    json_t *it0 = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(it0, "id")), id0);
    json_t *rec = json_object_get(it0, "recorded_by");
    char key[NOTES_KEY_STRLEN];
    notes_key_encode(notes_replica_public_key(w->a), key);
    assert_string_equal(json_string_value(json_object_get(rec, "key")), key);
    json_t *per = json_object_get(rec, "person");
    uint8_t ana_person[32];
    person_key(w->a, ana_person);
    notes_key_encode(ana_person, key);
    assert_string_equal(json_string_value(json_object_get(per, "name")), "Ana");
    assert_string_equal(json_string_value(json_object_get(per, "key")), key);
    assert_int_equal(
        strlen(json_string_value(json_object_get(per, "fingerprint"))), 9);
    assert_true(json_is_false(json_object_get(rec, "contested")));
    assert_true(json_is_null(json_object_get(rec, "revoked")));
    json_t *cs = json_object_get(it0, "confirmations");
    assert_int_equal(json_array_size(cs), 1);
    json_t *c0 = json_array_get(cs, 0);
    assert_string_equal(json_string_value(json_object_get(c0, "state")),
                        "confirmed");
    assert_true(json_is_true(json_object_get(c0, "counted")));
    assert_string_equal(json_string_value(json_object_get(c0, "text")),
                        "ship it");
    assert_string_equal(json_string_value(json_object_get(c0, "owner")), "RD");
    assert_string_equal(json_string_value(json_object_get(c0, "item")), id0);
    assert_int_equal(strlen(json_string_value(json_object_get(c0, "change"))),
                     64);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(c0, "by"), "person"),
                            "name")),
                        "Ana");
    assert_int_equal(
        json_integer_value(json_object_get(it0, "confirmed_by_count")), 1);
    json_t *it1 = json_array_get(items, 1);
    json_t *c1 = json_array_get(json_object_get(it1, "confirmations"), 0);
    assert_string_equal(json_string_value(json_object_get(c1, "state")),
                        "unknown-key");
    assert_string_equal(json_string_value(json_object_get(c1, "text_state")),
                        "confirmed");
    assert_true(json_is_false(json_object_get(c1, "counted")));
    assert_true(
        json_is_null(json_object_get(json_object_get(c1, "by"), "person")));
    assert_int_equal(
        json_integer_value(json_object_get(it1, "confirmed_by_count")), 0);
    json_t *un = json_object_get(j, "unattached_confirmations");
    assert_int_equal(json_array_size(un), 1);
    json_t *u0 = json_array_get(un, 0);
    assert_string_equal(json_string_value(json_object_get(u0, "state")),
                        "no-item");
    assert_string_equal(json_string_value(json_object_get(u0, "text")),
                        "write docs");
    assert_true(json_is_null(json_object_get(u0, "owner")));
    /* every author has its person */
    json_t *authors = json_object_get(j, "authors");
    assert_int_equal(json_array_size(authors), 2);
    assert_true(json_is_null(
        json_object_get(json_array_get(authors, 1), "person")));
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_array_get(authors, 0), "person"), "name")),
        "Ana");
    json_decref(j);

    /* HTML: the recorder as the person, the verdicts, the unattached one */
    assert_int_equal(notes_fmt_html_export(w->da, 0, &out, &n), NOTES_OK);
    char pfpr[NOTES_FPR_STRLEN], want[160];
    notes_key_fingerprint(ana_person, pfpr);
    snprintf(want, sizeof(want), "recorded by <span title=\"device ");
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof(want), "Ana <code>%s</code>", pfpr);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "&#10003; confirmed by <span"));
    assert_non_null(strstr(out, "not counted, a key linked to no person"));
    assert_non_null(strstr(out, "Confirmations of items no longer in the "
                                "note:</p>\n<ul>\n<li><span>write docs"));
    notes_fmt_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_formats_item_id_stable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_then_change,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_wrong_text, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_unknown_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_orphan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_counted_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_revoked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_formats_confirm_json, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
