/*
 * test_formats_export.c: the outline (sections, decisions and action
 * items, owners, recorded-by and verified), the JSON export (parsed back
 * with jansson) and the HTML export (hostile text stays inert).
 */
#include <jansson.h>

#include "fmt_test.h"

static notes_doc *sample_doc(const char *name)
{
    size_t n;
    char *md = sample(name, &n);
    notes_doc *d = import_ok(md, n);
    free(md);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    return synced(d);
}

static void test_formats_outline_community(void **state)
{
    (void)state;
    notes_doc *d = sample_doc("community-2023-05-15.md");
    notes_fmt_outline o;
    assert_int_equal(notes_fmt_outline_doc(d, &o), NOTES_OK);
    assert_int_equal(o.nitems, 5);
    static const char *const owners[] = {"RăzvanD", NULL, "RăzvanD", "Everyone",
                                         "Everyone"};
    size_t rd = 0, every = 0, none = 0;
    for (size_t i = 0; i < o.nitems; i++) {
        const notes_fmt_item *it = &o.items[i];
        /* under "TODOs and Decisions" an owned line is an action item, the
         * unowned "Next meeting: ..." a decision */
        assert_int_equal(it->kind, owners[i] ? NOTES_FMT_ITEM_TASK
                                             : NOTES_FMT_ITEM_DECISION);
        assert_false(it->done);
        assert_int_equal(it->cp_box, SIZE_MAX);
        assert_int_equal(it->revocation, NOTES_FMT_REV_NONE);
        if (owners[i]) {
            assert_non_null(it->owner);
            assert_string_equal(it->owner, owners[i]);
        } else {
            assert_null(it->owner);
        }
        rd += it->owner && strcmp(it->owner, "RăzvanD") == 0;
        every += it->owner && strcmp(it->owner, "Everyone") == 0;
        none += it->owner == NULL;
        assert_int_equal(it->nauthors, 1);
        assert_memory_equal(it->authors[0], notes_identity_public_key(ana), 32);
        assert_true(it->verified);
        assert_string_equal(o.sections[it->section].title,
                            "TODOs and Decisions");
    }
    assert_int_equal(rd, 2);
    assert_int_equal(every, 2);
    assert_int_equal(none, 1);
    assert_string_equal(o.items[0].owner_written, "RD");
    assert_string_equal(
        o.items[0].text,
        "Look for places for the Community Gathering on October 5-8, 2023");
    assert_true(strncmp(o.items[1].text, "Next meeting: Monday", 20) == 0);
    /* sections: ## Agenda, ## Discussions (with ### children), ## TODOs */
    assert_string_equal(o.sections[0].heading, ":dart: Agenda");
    assert_string_equal(o.sections[0].title, "Agenda");
    assert_int_equal(o.sections[0].level, 2);
    assert_string_equal(o.sections[2].title, "Post-release");
    assert_int_equal(o.sections[2].parent, 1);
    notes_fmt_outline_clear(&o);
    notes_doc_free(d);
}

static void test_formats_outline_kraft(void **state)
{
    (void)state;
    notes_doc *d = sample_doc("kraft-2022-04-06.md");
    notes_fmt_outline o;
    assert_int_equal(notes_fmt_outline_doc(d, &o), NOTES_OK);
    assert_int_equal(o.nitems, 4);
    /* AA resolves to AndreiA; AJ and SJ match nobody and stay as written */
    assert_string_equal(o.items[0].owner, "AndreiA");
    assert_string_equal(o.items[1].owner, "AJ");
    assert_string_equal(o.items[3].owner, "SJ");
    assert_string_equal(o.items[3].text,
                        "Work on the YAML parser + JSON parser / validator.\n"
                        "Also take a critical view on the proposed YAML file.");
    assert_int_equal(o.items[3].line, 49); /* line 61 of the file */
    notes_fmt_outline_clear(&o);
    notes_doc_free(d);
}

static void test_formats_outline_rules(void **state)
{
    (void)state;
    static const char text[] = "# Meeting\n"
                               "## :rocket: Action items\n"
                               "- [ ] RD/Ana: ship it\n"
                               "- [x] done thing\n"
                               "* Everyone: read the doc\n"
                               "- TODO: not an owner\n"
                               "1. Marco: numbered\n"
                               "```\n"
                               "RD: in code, ignored\n"
                               "```\n"
                               "### Sub-section of action items\n"
                               "ZZ: initials nobody has\n"
                               "## Notes\n"
                               "RD: not a decision here\n"
                               "- [ ] a task outside: still found\n"
                               "## Tasks / Decisions\n"
                               "RS: two participants share these initials\n"
                               "RD: Decision: keep the freeze window\n"
                               "RD: We'll release on Monday\n"
                               "Ana: agreed to move the meeting\n"
                               "## Decisions\n"
                               "AB: Ana Bell or Ana Bo?\n"
                               "ȘJ: diacritics\n"
                               "## Multitasking\n"
                               "RD: not in a decisions section\n";
    static const char *const participants[] = {
        "RăzvanD", "Ana", "Marco", "RaduS", "RobertS", "ȘtefanJ", NULL};
    notes_fmt_outline o;
    assert_int_equal(
        notes_fmt_outline_text(text, sizeof(text) - 1, participants, &o),
        NOTES_OK);
    struct {
        int kind, done;
        const char *owner, *text;
    } want[] = {
        {NOTES_FMT_ITEM_TASK, 0, "RăzvanD, Ana", "ship it"},
        {NOTES_FMT_ITEM_TASK, 1, NULL, "done thing"},
        {NOTES_FMT_ITEM_TASK, 0, "Everyone", "read the doc"},
        {NOTES_FMT_ITEM_DECISION, 0, NULL, "TODO: not an owner"},
        {NOTES_FMT_ITEM_TASK, 0, "Marco", "numbered"},
        {NOTES_FMT_ITEM_TASK, 0, "ZZ", "initials nobody has"},
        {NOTES_FMT_ITEM_TASK, 0, NULL, "a task outside: still found"},
        {NOTES_FMT_ITEM_TASK, 0, "RS",
         "two participants share these initials"},
        /* owned, but reads as a decision; the label is no part of the text */
        {NOTES_FMT_ITEM_DECISION, 0, "RăzvanD", "keep the freeze window"},
        {NOTES_FMT_ITEM_DECISION, 0, "RăzvanD", "We'll release on Monday"},
        {NOTES_FMT_ITEM_DECISION, 0, "Ana", "agreed to move the meeting"},
        /* under a heading naming decisions only, owned lines are decisions */
        {NOTES_FMT_ITEM_DECISION, 0, "AB", "Ana Bell or Ana Bo?"},
        {NOTES_FMT_ITEM_DECISION, 0, "ȘtefanJ", "diacritics"},
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    for (size_t i = 0; i < o.nitems && i < nwant; i++) {
        print_message("item %zu: '%s' owner '%s'\n", i, o.items[i].text,
                      o.items[i].owner ? o.items[i].owner : "(none)");
        assert_int_equal(o.items[i].kind, want[i].kind);
        assert_int_equal(o.items[i].done, want[i].done);
        assert_string_equal(o.items[i].text, want[i].text);
        if (want[i].owner)
            assert_string_equal(o.items[i].owner, want[i].owner);
        else
            assert_null(o.items[i].owner);
    }
    assert_int_equal(o.nitems, nwant);
    assert_int_equal(o.nsections, 7);
    assert_true(o.sections[2].decisions); /* inherited by the sub-section */
    assert_true(o.sections[2].todos);
    assert_false(o.sections[3].decisions);
    assert_true(o.sections[4].todos);
    assert_true(o.sections[5].decisions);
    assert_false(o.sections[5].todos);
    assert_false(o.sections[6].decisions); /* "Multitasking": a word, no task */
    /* where a "- [ ]" is, and where "- " is */
    assert_int_equal(o.items[0].cp_box, 37); /* after "# Meeting" and the heading */
    assert_true(o.items[0].listed);
    assert_int_equal(o.items[7].cp_box, SIZE_MAX);
    assert_false(o.items[7].listed);
    notes_fmt_outline_clear(&o);
}

/* Naming an item (number, id, text), whose it is, and checking it off. */
static void test_formats_item_pick_check(void **state)
{
    (void)state;
    static const char md[] = "## TODOs and Decisions\n\n"
                             "RD: Look for places, October 2023\n\n"
                             "Everyone: Go through the tracks\n\n"
                             "- AJ: Go through the roadmap\n\n"
                             "- [ ] Ștefan: Book Bucharest\n";
    static const char *const people[] = {"RăzvanD", "Ștefan", NULL};
    notes_fmt_outline o;
    size_t at = 99;
    assert_int_equal(notes_fmt_outline_text(md, sizeof(md) - 1, people, &o),
                     NOTES_OK);
    assert_int_equal(o.nitems, 4);
    assert_int_equal(notes_fmt_item_pick(&o, "2", &at), NOTES_OK);
    assert_int_equal(at, 1);
    assert_int_equal(notes_fmt_item_pick(&o, "bucharest", &at), NOTES_OK);
    assert_int_equal(at, 3);
    assert_int_equal(notes_fmt_item_pick(&o, "STEFAN", &at), NOTES_ENOTFOUND);
    assert_int_equal(notes_fmt_item_pick(&o, "2023", &at), NOTES_OK);
    assert_int_equal(at, 0); /* no item 2023: its text */
    assert_int_equal(notes_fmt_item_pick(&o, "9", &at), NOTES_ENOTFOUND);
    assert_non_null(strstr(notes_fmt_last_detail(), "no item 9 (the note has 4)"));
    assert_int_equal(notes_fmt_item_pick(&o, "go through", &at), NOTES_EINVAL);
    assert_non_null(strstr(notes_fmt_last_detail(), "several items (2, 3)"));
    assert_int_equal(notes_fmt_item_pick(&o, "", &at), NOTES_EINVAL);
    /* RD is RăzvanD; Everyone's items are every participant's */
    assert_true(notes_fmt_item_owned_by(&o.items[0], "RD", people));
    assert_true(notes_fmt_item_owned_by(&o.items[0], "rd", people));
    assert_true(notes_fmt_item_owned_by(&o.items[0], "razvand", people));
    assert_true(notes_fmt_item_owned_by(&o.items[1], "RD", people));
    assert_false(notes_fmt_item_owned_by(&o.items[1], "AJ", people));
    assert_true(notes_fmt_item_owned_by(&o.items[2], "AJ", people));
    assert_false(notes_fmt_item_owned_by(&o.items[2], "RD", people));
    notes_fmt_outline_clear(&o);

    /* checking off each kind of action item keeps its id */
    notes_doc *d = import_ok(md, sizeof(md) - 1);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    char ids[4][17];
    assert_int_equal(notes_fmt_outline_doc(d, &o), NOTES_OK);
    for (size_t i = 0; i < 4; i++)
        memcpy(ids[i], o.items[i].id, 17);
    for (size_t i = 0; i < 4; i++) {
        notes_fmt_outline p;
        assert_int_equal(notes_fmt_outline_doc(d, &p), NOTES_OK);
        assert_int_equal(notes_fmt_item_check(d, &p.items[i]), NOTES_OK);
        notes_fmt_outline_clear(&p);
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    }
    notes_fmt_outline_clear(&o);
    size_t n;
    assert_string_equal(notes_doc_text(d, &n),
                        "## TODOs and Decisions\n\n"
                        "- [x] RD: Look for places, October 2023\n\n"
                        "- [x] Everyone: Go through the tracks\n\n"
                        "- [x] AJ: Go through the roadmap\n\n"
                        "- [x] Ștefan: Book Bucharest\n");
    assert_int_equal(notes_fmt_outline_doc(d, &o), NOTES_OK);
    for (size_t i = 0; i < 4; i++) {
        assert_true(o.items[i].done);
        assert_int_equal(o.items[i].kind, NOTES_FMT_ITEM_TASK);
        assert_string_equal(o.items[i].id, ids[i]);
    }
    notes_fmt_outline_clear(&o);
    notes_doc_free(d);
}

/* Bo edits an item Ana recorded: recorded by Ana, edited by Bo. */
static notes_doc *edited_by_bo(void)
{
    size_t n;
    char *md = sample("community-2023-05-15.md", &n);
    notes_doc *a = import_ok(md, n), *b;
    free(md);
    assert_int_equal(notes_doc_commit(a, NULL), NOTES_OK);
    uint8_t *bundle;
    size_t bn, tl;
    assert_int_equal(notes_doc_export(a, NULL, 0, &bundle, &bn), NOTES_OK);
    assert_int_equal(notes_doc_memory(bo, notes_doc_id(a), &b), NOTES_OK);
    assert_int_equal(notes_doc_merge(b, bundle, bn, NULL), NOTES_OK);
    notes_free(bundle);
    notes_doc_free(a);
    const char *t = notes_doc_text(b, &tl);
    const char *at = strstr(t, "Remind AJ");
    size_t cp = 0;
    for (const char *p = t; p < at; p++)
        cp += ((unsigned char)*p & 0xc0) != 0x80;
    assert_int_equal(notes_doc_splice(b, cp + 7, 2, "Alexander", 9), NOTES_OK);
    assert_int_equal(notes_doc_commit(b, NULL), NOTES_OK);
    return synced(b);
}

static void test_formats_outline_recorded_by(void **state)
{
    (void)state;
    notes_doc *b = edited_by_bo();
    notes_fmt_outline o;
    assert_int_equal(notes_fmt_outline_doc(b, &o), NOTES_OK);
    assert_int_equal(o.nitems, 5);
    const notes_fmt_item *it = &o.items[2];
    assert_string_equal(it->text, "Remind Alexander: Logo for USoC'23");
    assert_int_equal(it->nauthors, 2);
    assert_memory_equal(it->authors[0], notes_identity_public_key(ana), 32);
    assert_memory_equal(it->authors[1], notes_identity_public_key(bo), 32);
    assert_true(it->verified);
    assert_int_equal(o.items[0].nauthors, 1);
    notes_fmt_outline_clear(&o);
    /* uncommitted text: no authors, not verified */
    assert_int_equal(notes_doc_splice(b, 0, 0, "## Decisions\n- [ ] new\n", 23),
                     NOTES_OK);
    assert_int_equal(notes_fmt_outline_doc(b, &o), NOTES_OK);
    assert_int_equal(o.nitems, 6);
    assert_int_equal(o.items[0].nauthors, 0);
    assert_false(o.items[0].verified);
    notes_fmt_outline_clear(&o);
    notes_doc_free(b);
}

static void test_formats_json(void **state)
{
    (void)state;
    notes_doc *d = edited_by_bo();
    char *out;
    size_t n;
    assert_int_equal(notes_fmt_json_export(d, &out, &n), NOTES_OK);
    assert_int_equal(strlen(out), n);
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    if (!j)
        fail_msg("JSON does not parse: line %d: %s", err.line, err.text);
    assert_string_equal(json_string_value(json_object_get(j, "format")),
                        "notes.note/1");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "id"))), 32);
    json_t *ver = json_object_get(j, "version");
    assert_int_equal(json_array_size(ver), 1);
    assert_int_equal(strlen(json_string_value(json_array_get(ver, 0))), 64);
    json_t *fm = json_object_get(j, "front_matter");
    assert_string_equal(json_string_value(json_object_get(fm, "title")),
                        "Community Gathering, May 15, 2023");
    assert_int_equal(json_array_size(json_object_get(fm, "tags")), 2);
    assert_int_equal(json_array_size(json_object_get(fm, "participants")), 11);
    assert_null(json_object_get(fm, NOTES_FMT_LAYOUT_KEY));
    /* front matter keys in the file's order */
    const char *first = json_object_iter_key(json_object_iter(fm));
    assert_string_equal(first, "title");
    size_t tl;
    const char *t = notes_doc_text(d, &tl);
    assert_string_equal(json_string_value(json_object_get(j, "text")), t);
    json_t *secs = json_object_get(j, "sections");
    assert_int_equal(json_array_size(secs), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(secs, 0), "title")),
        "Agenda");
    json_t *disc = json_array_get(secs, 1);
    assert_true(json_array_size(json_object_get(disc, "sections")) >= 5);
    json_t *items = json_object_get(j, "items");
    assert_int_equal(json_array_size(items), 5);
    json_t *it0 = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(it0, "owner")),
                        "RăzvanD");
    assert_string_equal(
        json_string_value(json_object_get(it0, "owner_as_written")), "RD");
    assert_string_equal(json_string_value(json_object_get(it0, "kind")), "task");
    assert_true(json_is_false(json_object_get(it0, "done")));
    assert_true(json_is_null(json_object_get(it0, "revocation")));
    assert_true(json_is_true(json_object_get(it0, "verified")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "items"), 1), "kind")),
                        "decision");
    json_t *rec = json_object_get(it0, "recorded_by");
    char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
    notes_key_encode(notes_identity_public_key(ana), key);
    notes_key_fingerprint(notes_identity_public_key(ana), fpr);
    assert_string_equal(json_string_value(json_object_get(rec, "name")), "Ana");
    assert_string_equal(json_string_value(json_object_get(rec, "key")), key);
    assert_string_equal(json_string_value(json_object_get(rec, "fingerprint")),
                        fpr);
    assert_true(
        json_is_null(json_object_get(json_array_get(items, 1), "owner")));
    json_t *ed = json_object_get(json_array_get(items, 2), "edited_by");
    assert_int_equal(json_array_size(ed), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(ed, 0), "name")),
        "Bo");
    assert_int_equal(json_array_size(json_object_get(j, "authors")), 2);
    json_decref(j);
    notes_fmt_free(out);
    notes_doc_free(d);
}

static const char hostile[] =
    "---\n"
    "title: \"<script>alert('t')</script>\"\n"
    "participants:\n"
    "- \"\\\"><b onmouseover=x>\"\n"
    "---\n"
    "## Decisions\n\n"
    "- [ ] <img src=x onerror=alert(1)>: owner-looking html\n\n"
    "<script>alert(1)</script>\n\n"
    "<div onclick=\"alert(2)\">raw block</div>\n\n"
    "[click](javascript:alert(3)) [b](JaVaScRiPt&#58;alert(4)) [c]( "
    "java\tscript:x)\n"
    "[d](vbscript:msgbox) [e](data:text/html;base64,PHNjcmlwdD4=) "
    "[f](&#106;avascript:x)\n"
    "![img](javascript:alert(5)) ![ok](pic.png) <javascript:alert(6)>\n"
    "[safe](https://example.org/a?b=1&c=2) [rel](../notes.md) "
    "[m](mailto:a@b.c)\n"
    "`<code>` and \"quotes\" & ampersands\n";

/* Every href / src value is relative or http(s) / mailto. */
static void assert_attributes_safe(const char *html)
{
    static const char *const attrs[] = {"href=\"", "src=\"", NULL};
    for (size_t a = 0; attrs[a]; a++)
        for (const char *p = strstr(html, attrs[a]); p;
             p = strstr(p + 1, attrs[a])) {
            const char *v = p + strlen(attrs[a]);
            size_t n = strcspn(v, "\"");
            int has_scheme = memchr(v, ':', n) != NULL;
            if (has_scheme && strncmp(v, "https:", 6) &&
                strncmp(v, "http:", 5) && strncmp(v, "mailto:", 7))
                fail_msg("unsafe attribute: %.80s", p);
        }
}

static void test_formats_html_hostile(void **state)
{
    (void)state;
    notes_doc *d = import_ok(hostile, sizeof(hostile) - 1);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    d = synced(d);
    char *out;
    size_t n;
    for (unsigned flags = 0; flags <= NOTES_FMT_HTML_AUTHORSHIP; flags++) {
        assert_int_equal(notes_fmt_html_export(d, flags, &out, &n), NOTES_OK);
        assert_int_equal(strlen(out), n);
        assert_null(strcasestr(out, "<script"));
        assert_attributes_safe(out);
        assert_null(strstr(out, "<img src=\"x\""));
        assert_null(strstr(out, "<img src=x"));
        assert_null(strstr(out, "<b "));
        assert_null(strstr(out, "<div onclick"));
        assert_null(strstr(out, "src=\"http"));
        assert_non_null(strstr(out, "Content-Security-Policy"));
        assert_non_null(strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_non_null(
            strstr(out, "href=\"https://example.org/a?b=1&amp;c=2\""));
        assert_non_null(strstr(out, "href=\"../notes.md\""));
        assert_non_null(strstr(out, "href=\"mailto:a@b.c\""));
        assert_non_null(strstr(out, "<title>&lt;script&gt;alert(&#39;t&#39;)"));
        assert_non_null(strstr(out, "&#10003; verified"));
        assert_non_null(strstr(out, "recorded by Ana"));
        /* every '<' in the page opens a tag we know */
        for (const char *p = strchr(out, '<'); p; p = strchr(p + 1, '<'))
            assert_true(strchr("!/abcdefhilmoprstu", p[1]) != NULL);
        if (flags)
            assert_non_null(strstr(out, "Who wrote what"));
        notes_fmt_free(out);
    }
    notes_doc_free(d);
}

static void test_formats_html_sample(void **state)
{
    (void)state;
    notes_doc *d = edited_by_bo();
    char *out;
    size_t n;
    assert_int_equal(notes_fmt_html_export(d, NOTES_FMT_HTML_AUTHORSHIP, &out, &n),
                     NOTES_OK);
    assert_non_null(strstr(out, "<h1>Community Gathering, May 15, 2023</h1>"));
    assert_non_null(strstr(out, "<span class=\"chip\">RăzvanD</span>"));
    assert_non_null(strstr(
        out, "<span class=\"owner\" title=\"written as RD\">RăzvanD:</span>"));
    assert_non_null(strstr(out, "edited by Bo"));
    assert_non_null(strstr(out, "<h2>\xf0\x9f\x8e\xaf Agenda</h2>"));
    assert_non_null(strstr(out, "Alexander"));
    notes_fmt_free(out);
    assert_int_equal(notes_fmt_html_export(d, 99, &out, &n), NOTES_EINVAL);
    assert_null(out);
    notes_doc_free(d);
}

/* Empty and uncommitted notes export too. */
static void test_formats_empty_and_dirty(void **state)
{
    (void)state;
    notes_doc *d;
    char *out;
    size_t n;
    json_error_t err;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(notes_fmt_md_export(d, &out, &n), NOTES_OK);
        assert_int_equal(n,
                         round ? 13 + 18 : 0); /* "---\nx: y\n---\n" + text */
        notes_fmt_free(out);
        assert_int_equal(notes_fmt_json_export(d, &out, &n), NOTES_OK);
        json_t *j = json_loads(out, 0, &err);
        assert_non_null(j);
        assert_int_equal(json_array_size(json_object_get(j, "version")), 0);
        assert_int_equal(json_array_size(json_object_get(j, "items")), round);
        json_decref(j);
        notes_fmt_free(out);
        assert_int_equal(notes_fmt_html_export(d, NOTES_FMT_HTML_AUTHORSHIP, &out, &n),
                         NOTES_OK);
        assert_non_null(strstr(out, "</html>"));
        notes_fmt_free(out);
        assert_int_equal(notes_doc_splice(d, 0, 0, "- [ ] uncommitted\n", 18),
                         NOTES_OK);
        assert_int_equal(notes_doc_set_field(d, "x", "y"), NOTES_OK);
    }
    assert_int_equal(notes_fmt_json_export(NULL, &out, &n), NOTES_EINVAL);
    assert_int_equal(notes_fmt_html_export(NULL, 0, &out, &n), NOTES_EINVAL);
    assert_int_equal(notes_fmt_md_export(NULL, &out, &n), NOTES_EINVAL);
    notes_doc_free(d);
}

/* The attestation sidecar: the exact text, read back; hostile ones refused. */
static void test_formats_attest(void **state)
{
    (void)state;
    uint8_t id[16], file[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(0xa0 + i);
    char *t;
    size_t n;
    assert_int_equal(notes_fmt_attest_encode(id, file, sizeof(file), "# x\n", 4,
                                             &t, &n),
                     NOTES_OK);
    /* BLAKE2b-256("# x\n") and base64 "AQIDBAU=" */
    assert_int_equal(strncmp(t, "notes-attest 1\nnote a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\n"
                                "markdown-blake2b ", 70), 0);
    assert_true(n > 17);
    assert_string_equal(t + n - 17, "\nbundle AQIDBAU=\n");
    assert_int_equal(strlen(t), n);
    notes_fmt_attest a;
    assert_int_equal(notes_fmt_attest_decode(t, n, &a), NOTES_OK);
    assert_string_equal(a.note, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    assert_int_equal(a.nbundle, sizeof(file));
    assert_memory_equal(a.bundle, file, sizeof(file));
    char *t2;
    size_t n2;
    assert_int_equal(notes_fmt_attest_encode(id, a.bundle, a.nbundle, "# x\n", 4,
                                             &t2, &n2),
                     NOTES_OK);
    assert_int_equal(n2, n);
    assert_memory_equal(t2, t, n);
    notes_fmt_free(t2);
    notes_fmt_attest_clear(&a);
    /* hostile: cut, wrong head, bad hash, bad base64 */
    assert_int_equal(notes_fmt_attest_decode(t, 20, &a), NOTES_ECORRUPT);
    assert_string_equal(notes_fmt_last_detail(), "truncated (line 2)");
    assert_null(a.bundle);
    t[13] = '2';
    assert_int_equal(notes_fmt_attest_decode(t, n, &a), NOTES_ECORRUPT);
    assert_string_equal(notes_fmt_last_detail(), "not an attestation sidecar");
    t[13] = '1';
    t[n - 2] = '*';
    assert_int_equal(notes_fmt_attest_decode(t, n, &a), NOTES_ECORRUPT);
    assert_string_equal(notes_fmt_last_detail(),
                        "the bundle line is not valid base64");
    assert_int_equal(notes_fmt_attest_decode(NULL, 3, &a), NOTES_EINVAL);
    notes_fmt_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_outline_community),
        cmocka_unit_test(test_formats_outline_kraft),
        cmocka_unit_test(test_formats_outline_rules),
        cmocka_unit_test(test_formats_item_pick_check),
        cmocka_unit_test(test_formats_outline_recorded_by),
        cmocka_unit_test(test_formats_json),
        cmocka_unit_test(test_formats_html_hostile),
        cmocka_unit_test(test_formats_html_sample),
        cmocka_unit_test(test_formats_empty_and_dirty),
        cmocka_unit_test(test_formats_attest),
    };
    return cmocka_run_group_tests(tests, fmt_setup, fmt_teardown);
}
