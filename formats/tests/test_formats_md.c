/*
 * test_formats_md.c: Markdown import/export. Golden round trips of the
 * shared samples and of every layout variant (byte-identical, also after
 * commit and after a sync to another replica), edits that change only the
 * edited lines, and refused input (line numbers, nothing created).
 */
#include "fmt_test.h"

/* Import, export, compare; again after commit; again on a replica that
 * received the note as a bundle. */
static void roundtrip(const char *md, size_t n)
{
    size_t on;
    notes_doc *d = import_ok(md, n);
    char *out = export_md(d, &on);
    assert_bytes(out, on, md, n);
    notes_fmt_free(out);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    out = export_md(d, &on);
    assert_bytes(out, on, md, n);
    notes_fmt_free(out);

    uint8_t *bundle;
    size_t bn;
    notes_doc *peer;
    assert_int_equal(notes_doc_export(d, NULL, 0, &bundle, &bn), NOTES_OK);
    assert_int_equal(notes_doc_memory(bo, notes_doc_id(d), &peer), NOTES_OK);
    assert_int_equal(notes_doc_merge(peer, bundle, bn, NULL), NOTES_OK);
    out = export_md(peer, &on);
    assert_bytes(out, on, md, n);
    notes_fmt_free(out);
    notes_free(bundle);
    notes_doc_free(peer);
    notes_doc_free(d);
}

static void roundtrip_str(const char *md)
{
    roundtrip(md, strlen(md));
}

static void test_formats_samples_roundtrip(void **state)
{
    (void)state;
    static const char *const names[] = {"community-2023-05-15.md",
                                        "kraft-2022-04-06.md", NULL};
    for (size_t i = 0; names[i]; i++) {
        size_t n;
        char *md = sample(names[i], &n);
        roundtrip(md, n);
        free(md);
    }
}

static void test_formats_sample_fields(void **state)
{
    (void)state;
    size_t n;
    char *md = sample("community-2023-05-15.md", &n);
    notes_doc *d = import_ok(md, n);
    assert_string_equal(notes_doc_field(d, "title"),
                        "Community Gathering, May 15, 2023");
    assert_string_equal(notes_doc_field(d, "datetime"),
                        "2023-05-15T13:00:00+02:00");
    const char *const *tags = notes_doc_list(d, "tags");
    assert_string_equal(tags[0], "unikraft");
    assert_string_equal(tags[1], "community");
    assert_null(tags[2]);
    const char *const *p = notes_doc_list(d, "participants");
    size_t k = 0;
    while (p[k])
        k++;
    assert_int_equal(k, 11);
    assert_string_equal(p[7], "RăzvanD");
    assert_string_equal(notes_doc_list(d, "teams")[0], "community");
    const char *const *f = notes_doc_fields(d);
    assert_string_equal(f[0], "title");
    assert_string_equal(f[1], "tags");
    assert_string_equal(f[2], "datetime");
    assert_string_equal(f[3], "location");
    /* the body is the text, from the line after the closing fence */
    size_t tl;
    const char *t = notes_doc_text(d, &tl);
    assert_true(strncmp(t, "\n## :dart: Agenda\n", 18) == 0);
    notes_doc_free(d);
    free(md);
}

static void test_formats_edge_roundtrips(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "just text, no newline",
        "# Title\n\nNo front matter at all.\n",
        "---\n---\n",
        "---\n---\n# Empty front matter\n",
        "---\n---",
        "---\ntitle: x\n---",
        "---\ntitle: x\n---\nno trailing newline",
        "---\r\ntitle: \"CRLF note\"\r\ntags: a, b\r\nparticipants:\r\n  - "
        "X\r\n"
        "  - Y\r\n---\r\n\r\n## TODOs\r\n\r\nRD: do it\r\n",
        "---\ntitle: 'single ''quoted'''\nlocation: \"double \\\"quoted\\\" "
        "\\u00e9\"\n"
        "plain: just plain words\n---\n",
        "---\nteams:\n- kraft\n- app\nparticipants:\n    - Ana\n    - "
        "Bo\n---\n",
        "---\ntags: unikraft, community ,  spaced,dup, dup\n---\n",
        "---\ntags: [a, b, \"c d\"]\nteams: []\nparticipants:\n---\n",
        "---\ncustom: {a: 1, b: [x, y]}\nnested:\n  k: v\n  list:\n    - 1\n"
        "anchor: &a value\nref: *a\ntagged: !!str 12\nlistmap:\n  - a: "
        "1\n---\n",
        "---\n# a comment line\ntitle: x # trailing comment\n\n  # indented "
        "comment\n"
        "location:\nempty: ''\n---\n",
        "---\ndescription: |\n  line one\n  line two\n\nfolded: >\n  folded\n  "
        "text\n"
        "after: y\n---\nbody\n",
        "---\ntitle: 会议记录 — Встреча — اجتماع — 🎉\nparticipants:\n- 李雷\n- "
        "Ωmega\n"
        "- Zoë\n---\n## Ὀδυσσεύς\n\nनमस्ते दुनिया 🌍\n",
        "---\nlist:\n- a\n- a\n- b\n---\n",
        "---\nx: 1\n...\n---\n",
        "\xef\xbb\xbf---\nBOM: first\n---\n",
        "---\nmulti: this is\n  a multi-line\n  plain scalar\nnext: v\n---\n",
        "----\nnot front matter\n---\n",
        "--- \ntrailing space fence is not front matter\n",
        NULL};
    for (size_t i = 0; cases[i]; i++) {
        print_message("case %zu\n", i);
        roundtrip_str(cases[i]);
    }
}

static void test_formats_edge_fields(void **state)
{
    (void)state;
    static const char in[] =
        "---\ntags: [a, b, \"c d\"]\nteams: []\ncustom: {a: 1}\n"
        "nested:\n  k: v\nplain: just plain words\n---\n";
    notes_doc *d = import_ok(in, strlen(in));
    const char *const *t = notes_doc_list(d, "tags");
    assert_string_equal(t[2], "c d");
    assert_null(notes_doc_list(d, "teams")[0]);
    assert_string_equal(notes_doc_field(d, "custom"), " {a: 1}");
    assert_string_equal(notes_doc_field(d, "nested"), "\n  k: v");
    assert_string_equal(notes_doc_field(d, "plain"), "just plain words");
    notes_doc_free(d);
    /* no front matter: no fields, the whole file is the text */
    d = import_ok("# T\n", 4);
    assert_null(notes_doc_fields(d)[0]);
    assert_int_equal(notes_doc_length(d), 4);
    notes_doc_free(d);
}

/* Edit the community sample, export, count differing lines. */
static void check_edit(const char *name, int (*edit)(notes_doc *),
                       size_t want_old, size_t want_new,
                       const char *must_contain)
{
    size_t n, on;
    char *md = sample(name, &n);
    notes_doc *d = import_ok(md, n);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(edit(d), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    char *out = export_md(d, &on);
    size_t da, db;
    line_diff(md, out, &da, &db);
    if (da != want_old || db != want_new)
        fail_msg("%s: %zu old lines became %zu new ones, want %zu -> %zu\n%s",
                 name, da, db, want_old, want_new, out);
    if (must_contain && !strstr(out, must_contain))
        fail_msg("'%s' not in export:\n%.600s", must_contain, out);
    /* the edited export is valid and gives the same fields again */
    notes_doc *again = import_ok(out, on);
    const char *const *f1 = notes_doc_fields(d), *const *f2 =
                                                     notes_doc_fields(again);
    for (size_t i = 0; f1[i]; i++) {
        if (f1[i][0] == '@')
            continue;
        const char *v1 = notes_doc_field(d, f1[i]),
                   *v2 = notes_doc_field(again, f1[i]);
        const char *const *l1 = notes_doc_list(d, f1[i]), *const *l2 =
                                                              notes_doc_list(
                                                                  again, f1[i]);
        if (l1[0]) {
            for (size_t k = 0; l1[k]; k++)
                assert_string_equal(l1[k], l2[k]);
        } else {
            assert_non_null(v2);
            assert_string_equal(v1, v2);
        }
    }
    (void)f2;
    notes_doc_free(again);
    notes_fmt_free(out);
    notes_doc_free(d);
    free(md);
}

static int set_title(notes_doc *d)
{
    return notes_doc_set_field(d, "title", "Gathering \"II\"");
}
static int add_participant(notes_doc *d)
{
    return notes_doc_list_add(d, "participants", "Ana");
}
static int remove_participant(notes_doc *d)
{
    return notes_doc_list_remove(d, "participants", "Maria");
}
static int add_tag(notes_doc *d)
{
    return notes_doc_list_add(d, "tags", "events");
}
static int remove_tag(notes_doc *d)
{
    return notes_doc_list_remove(d, "tags", "unikraft");
}
static int unset_location(notes_doc *d)
{
    return notes_doc_unset_field(d, "location");
}
static int new_field(notes_doc *d)
{
    return notes_doc_set_field(d, "status: draft", "in review");
}
static int new_list(notes_doc *d)
{
    return notes_doc_list_add(d, "rooms", "Discord");
}
static int set_datetime(notes_doc *d)
{
    return notes_doc_set_field(d, "datetime", "2023-05-16T13:00:00+02:00");
}
static int edit_body(notes_doc *d)
{
    size_t n;
    const char *t = notes_doc_text(d, &n);
    const char *at = strstr(t, "Everyone: Go through roadmap");
    size_t cp = 0;
    for (const char *p = t; p < at; p++)
        cp += ((unsigned char)*p & 0xc0) != 0x80;
    return notes_doc_splice(d, cp + 10, 0, "Really ", 7);
}

static void test_formats_edit_changes_only_that_line(void **state)
{
    (void)state;
    const char *c = "community-2023-05-15.md", *k = "kraft-2022-04-06.md";
    check_edit(c, set_title, 1, 1, "\ntitle: \"Gathering \\\"II\\\"\"\n");
    check_edit(c, set_datetime, 1, 1,
               "\ndatetime: 2023-05-16T13:00:00+02:00\n");
    check_edit(c, add_participant, 0, 1, "- EdiM\n- Ana\n---\n");
    check_edit(c, remove_participant, 1, 0, "- ȘtefanJ\n- RaduNichita\n");
    check_edit(c, add_tag, 1, 1, "\ntags: unikraft, community, events\n");
    check_edit(c, remove_tag, 1, 1, "\ntags: community\n");
    check_edit(c, unset_location, 1, 0, NULL);
    check_edit(c, new_field, 0, 1,
               "- EdiM\n\"status: draft\": in review\n---\n");
    check_edit(c, new_list, 0, 2, "- EdiM\nrooms:\n- Discord\n---\n");
    check_edit(c, edit_body, 1, 1, "Everyone: Really Go through roadmap");
    check_edit(k, add_participant, 0, 1, "  - AndreiA\n  - Ana\n---\n");
    check_edit(k, set_title, 0, 1, "\ntitle: Gathering \"II\"\n---\n");
}

static void test_formats_edit_styles(void **state)
{
    (void)state;
    static const struct {
        const char *in, *key, *val;
        int list; /* 1 add, 2 remove, 0 set */
        const char *want;
    } cases[] = {
        {"---\ntitle: 'old'\n---\n", "title", "it's", 0,
         "---\ntitle: 'it''s'\n---\n"},
        {"---\ntitle: \"old\" # keep\n---\n", "title", "new", 0,
         "---\ntitle: \"new\" # keep\n---\n"},
        {"---\ntitle: old\n---\n", "title", "a: b", 0,
         "---\ntitle: \"a: b\"\n---\n"},
        {"---\ntags: [a, b]\n---\n", "tags", "c", 1,
         "---\ntags: [a, b, c]\n---\n"},
        {"---\ntags: \"a, b\"\n---\n", "tags", "c", 1,
         "---\ntags: \"a, b, c\"\n---\n"},
        {"---\nteams:\n  - x   # first\n  - y\n---\n", "teams", "z", 1,
         "---\nteams:\n  - x   # first\n  - y\n  - z\n---\n"},
        {"---\nteams: # all\n  # first\n  - x\n  # second\n  - y\n  # "
         "end\n---\n",
         "teams", "z", 1,
         "---\nteams: # all\n  # first\n  - x\n  # second\n  - y\n  - z\n"
         "  # end\n---\n"},
        {"---\nteams:\n  - x\n  - y\n---\n", "teams", "x", 2,
         "---\nteams:\n  - y\n---\n"},
        {"---\r\nteams:\r\n- x\r\n---\r\n", "teams", "y", 1,
         "---\r\nteams:\r\n- x\r\n- y\r\n---\r\n"},
        {"---\r\na: b\r\n---\r\n", "c", "d", 0,
         "---\r\na: b\r\nc: d\r\n---\r\n"},
        {"---\nlocation:\n---\n", "location", "Room 1", 0,
         "---\nlocation: Room 1\n---\n"},
        {"---\ndesc: |\n  one\n  two\n---\n", "desc", "three", 0,
         "---\ndesc: three\n---\n"},
        {"body only\n", "title", "T", 0, "---\ntitle: T\n---\nbody only\n"},
        {"---\nparticipants:\n---\n", "participants", "Ana", 1,
         "---\nparticipants:\n  - Ana\n---\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        notes_doc *d = import_ok(cases[i].in, strlen(cases[i].in));
        int rc = cases[i].list == 1
                     ? notes_doc_list_add(d, cases[i].key, cases[i].val)
                 : cases[i].list == 2
                     ? notes_doc_list_remove(d, cases[i].key, cases[i].val)
                     : notes_doc_set_field(d, cases[i].key, cases[i].val);
        assert_int_equal(rc, NOTES_OK);
        size_t on;
        char *out = export_md(d, &on);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("case %zu: got\n%s\nwant\n%s", i, out, cases[i].want);
        notes_fmt_free(out);
        notes_doc_free(d);
    }
}

/* A note made without import (as `notes new` does): default layout. */
static void test_formats_export_without_source(void **state)
{
    (void)state;
    notes_doc *d;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    assert_int_equal(notes_doc_set_field(d, "title", "Weekly sync"), NOTES_OK);
    assert_int_equal(notes_doc_list_add(d, "participants", "Ana"), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, "## Agenda\n", 10), NOTES_OK);
    size_t on;
    char *out = export_md(d, &on);
    assert_string_equal(out,
                        "---\ntitle: Weekly sync\nparticipants:\n  - Ana\n---\n"
                        "## Agenda\n");
    notes_doc *again = import_ok(out, on);
    assert_string_equal(notes_doc_field(again, "title"), "Weekly sync");
    notes_doc_free(again);
    notes_fmt_free(out);
    notes_doc_free(d);
}

static void expect_refused(const char *md, size_t n, int code, size_t line,
                           const char *msg_part)
{
    notes_doc *d;
    notes_fmt_diag diag;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    int rc = notes_fmt_md_import(d, md, n, &diag);
    if (rc != code)
        fail_msg("got %s, want %s (%s)", notes_errname(rc), notes_errname(code),
                 diag.msg);
    if (diag.line != line || !strstr(diag.msg, msg_part))
        fail_msg("diag line %zu '%s', want line %zu containing '%s'", diag.line,
                 diag.msg, line, msg_part);
    assert_int_equal(notes_fmt_md_check(md, n, NULL), code);
    /* nothing created */
    assert_int_equal(notes_doc_length(d), 0);
    assert_null(notes_doc_fields(d)[0]);
    assert_false(notes_doc_dirty(d));
    notes_doc_free(d);
}

#define REFUSE(s, code, line, msg)                                             \
    expect_refused(s, sizeof(s) - 1, code, line, msg)

static void test_formats_bad_input(void **state)
{
    (void)state;
    REFUSE("---\ntitle: x\n\xff bad\n---\n", NOTES_ECORRUPT, 3, "UTF-8");
    REFUSE("ok\nok\n\xc3\x28\n", NOTES_ECORRUPT, 3, "UTF-8");
    REFUSE("ok\n\xed\xa0\x80 surrogate\n", NOTES_ECORRUPT, 2, "UTF-8");
    REFUSE("a\nb\0c\n", NOTES_ECORRUPT, 2, "NUL");
    REFUSE("---\ntitle: x\nno closing fence\n", NOTES_ECORRUPT, 1,
           "not closed");
    REFUSE("---\ntitle: [unclosed\nmore: y\n---\n", NOTES_ECORRUPT, 3,
           "front matter");
    REFUSE("---\n- a\n- b\n---\n", NOTES_ECORRUPT, 2, "key: value");
    REFUSE("---\njust a sentence\n---\n", NOTES_ECORRUPT, 2, "key: value");
    REFUSE("---\ntitle: a\nteams: x\ntitle: b\n---\n", NOTES_ECORRUPT, 4,
           "duplicate key 'title'");
    REFUSE("---\n\"@frontmatter\": x\n---\n", NOTES_ECORRUPT, 2, "reserved");
    REFUSE("---\ntitle: \"a\\0b\"\n---\n", NOTES_ECORRUPT, 2, "NUL");
    REFUSE("---\n{a: 1, b: 2}\n---\n", NOTES_ECORRUPT, 2, "mapping");
    REFUSE("---\ntitle: x\n  bad indent: y\n---\n", NOTES_ECORRUPT, 3,
           "front matter");
    REFUSE("---\nkey: \x01\n---\n", NOTES_ECORRUPT, 2, "front matter");
    REFUSE("---\n? a\n: b\n---\n", NOTES_ECORRUPT, 2, "'key: value'");
    /* too large: 8 MiB + 1 */
    size_t big = NOTES_MD_MAX_BYTES + 1;
    char *p = malloc(big);
    memset(p, 'a', big);
    expect_refused(p, big, NOTES_ETOOBIG, 0, "MiB");
    /* front matter too large for one field */
    size_t fmn = NOTES_MD_FRONTMATTER_MAX + 100;
    memcpy(p, "---\nk: ", 7);
    memset(p + 7, 'v', fmn - 7);
    memcpy(p + fmn, "\n---\n", 5);
    expect_refused(p, fmn + 5, NOTES_ETOOBIG, 3, "KiB");
    free(p);
}

static void test_formats_import_into_nonempty(void **state)
{
    (void)state;
    notes_doc *d = import_ok("hello\n", 6);
    notes_fmt_diag diag;
    assert_int_equal(notes_fmt_md_import(d, "x", 1, &diag), NOTES_EEXIST);
    assert_string_equal(notes_fmt_last_detail(), "the note is not empty");
    notes_doc_free(d);
    /* the detail carries the diag's line too */
    notes_doc *e;
    assert_int_equal(notes_doc_memory(ana, NULL, &e), NOTES_OK);
    assert_int_equal(notes_fmt_md_import(e, "ok\n\xff\n", 5, &diag),
                     NOTES_ECORRUPT);
    assert_int_equal(diag.line, 2);
    assert_non_null(strstr(notes_fmt_last_detail(), "line 2: not valid UTF-8"));
    notes_doc_free(e);
    assert_int_equal(notes_fmt_md_import(NULL, "x", 1, &diag), NOTES_EINVAL);
}

/* The meeting template: its body and three fields, on a fresh note only. */
static void test_formats_meeting_new(void **state)
{
    (void)state;
    notes_doc *d;
    size_t n;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    assert_int_equal(notes_fmt_meeting_new(d, "Retro", "2026-01-02T10:00:00+0100",
                                           "Ana"),
                     NOTES_OK);
    const char *text = notes_doc_text(d, &n);
    assert_non_null(text);
    assert_string_equal(text,
                        "## Agenda\n\n## Discussions\n\n## TODOs and Decisions\n");
    assert_string_equal(notes_doc_field(d, "title"), "Retro");
    assert_string_equal(notes_doc_field(d, "datetime"), "2026-01-02T10:00:00+0100");
    /* a second call would add a second body: refused, the note unchanged */
    assert_int_equal(notes_fmt_meeting_new(d, "Other", "x", "Bo"), NOTES_EEXIST);
    assert_string_equal(notes_doc_field(d, "title"), "Retro");
    assert_non_null(strstr(notes_last_detail(), "not empty"));
    assert_int_equal(notes_fmt_meeting_new(d, NULL, "x", "Bo"), NOTES_EINVAL);
    notes_doc_free(d);
}

static void section_case(const char *text, const char *name,
                         const char *create, const char *line, int want_rc,
                         const char *want)
{
    notes_doc *d;
    size_t n;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, text, strlen(text)), NOTES_OK);
    assert_int_equal(notes_fmt_section_append(d, name, create, line), want_rc);
    assert_string_equal(notes_doc_text(d, &n), want);
    notes_doc_free(d);
}

/* Lines added at the end of a section, the outline's sections. */
static void test_formats_section_append(void **state)
{
    (void)state;
    /* a list item follows a list item; the section ends at "## Next" */
    section_case("# M\n## :memo: TODOs\n- [ ] A: x\n\n## Next\nz\n", NULL,
                 "## TODOs and Decisions", "- [ ] B: y", NOTES_OK,
                 "# M\n## :memo: TODOs\n- [ ] A: x\n- [ ] B: y\n\n## Next\nz\n");
    /* anything else: a paragraph of its own; "### sub" stays inside */
    section_case("## Discussions\ntext\n### sub\nmore", "discuss", NULL,
                 "said", NOTES_OK,
                 "## Discussions\ntext\n### sub\nmore\n\nsaid\n");
    /* none: created at the end, or refused with the note unchanged */
    section_case("hello", NULL, "## TODOs and Decisions", "D", NOTES_OK,
                 "hello\n\n## TODOs and Decisions\n\nD\n");
    section_case("hello\n", "nope", NULL, "D", NOTES_ENOTFOUND, "hello\n");
    /* the outline's rule: whole words ("Multitasking" names no tasks), a
     * heading inside a code fence is none, up to 3 spaces before "#" */
    section_case("## Multitasking\nx\n```\n## TODOs\n```\n #### Decisions\n"
                 "y\n## End\n",
                 NULL, NULL, "D", NOTES_OK,
                 "## Multitasking\nx\n```\n## TODOs\n```\n #### Decisions\n"
                 "y\n\nD\n\n## End\n");
    /* code points, not bytes, for the position; a blank line before the
     * next heading */
    section_case("## Ștefan's tasks\nă\n## B\n", NULL, NULL, "- x", NOTES_OK,
                 "## Ștefan's tasks\nă\n\n- x\n\n## B\n");
    /* a name matches accents folded */
    section_case("## Ștefan's notes\n## B\n", "stefan", NULL, "x", NOTES_OK,
                 "## Ștefan's notes\n\nx\n\n## B\n");
}

static void remark_case(const char *text, const char *line, const char *want)
{
    notes_doc *d;
    size_t n;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    assert_int_equal(notes_doc_splice(d, 0, 0, text, strlen(text)), NOTES_OK);
    assert_int_equal(notes_fmt_remark_append(d, line), NOTES_OK);
    assert_string_equal(notes_doc_text(d, &n), want);
    notes_doc_free(d);
}

/* A remark goes to the discussion, never among the decisions. */
static void test_formats_remark_append(void **state)
{
    (void)state;
    /* the template: under Discussions, not in the last section */
    remark_case(NOTES_FMT_MEETING_BODY, "RD: a side remark",
                "## Agenda\n\n## Discussions\n\nRD: a side remark\n\n"
                "## TODOs and Decisions\n");
    /* the end of the discussion, sub-sections included, but not in a
     * decisions sub-section at its end */
    remark_case("## Discussions\n### A\na\n### Decisions\nd\n## Next\n", "r",
                "## Discussions\n### A\na\n\nr\n\n### Decisions\nd\n"
                "## Next\n");
    /* no discussion: before the first section holding decisions */
    remark_case("# Notes\ntext\n\n## TODOs\nRD: x\n", "r",
                "# Notes\ntext\n\nr\n\n## TODOs\nRD: x\n");
    remark_case("## TODOs\nRD: x\n", "r", "r\n\n## TODOs\nRD: x\n");
    /* neither: at the end */
    remark_case("hello", "r", "hello\n\nr\n");
    remark_case("", "r", "r\n");
}

/* Fields edited concurrently on two replicas merge field by field. */
static void test_formats_concurrent_field_edits(void **state)
{
    (void)state;
    size_t n, on, bn;
    char *md = sample("community-2023-05-15.md", &n);
    notes_doc *a = import_ok(md, n), *b;
    uint8_t *bundle;
    assert_int_equal(notes_doc_commit(a, NULL), NOTES_OK);
    assert_int_equal(notes_doc_export(a, NULL, 0, &bundle, &bn), NOTES_OK);
    assert_int_equal(notes_doc_memory(bo, notes_doc_id(a), &b), NOTES_OK);
    assert_int_equal(notes_doc_merge(b, bundle, bn, NULL), NOTES_OK);
    notes_free(bundle);
    uint8_t(*heads)[32];
    size_t nh;
    assert_int_equal(notes_doc_heads(a, &heads, &nh), NOTES_OK);
    assert_int_equal(notes_doc_set_field(a, "title", "Retitled by Ana"),
                     NOTES_OK);
    assert_int_equal(notes_doc_list_add(b, "participants", "Bo"), NOTES_OK);
    assert_int_equal(notes_doc_commit(a, NULL), NOTES_OK);
    assert_int_equal(notes_doc_commit(b, NULL), NOTES_OK);
    assert_int_equal(
        notes_doc_export(b, (const uint8_t(*)[32])heads, nh, &bundle, &bn),
        NOTES_OK);
    assert_int_equal(notes_doc_merge(a, bundle, bn, NULL), NOTES_OK);
    notes_free(bundle);
    notes_free(heads);
    char *out = export_md(a, &on);
    /* the expected file: the sample with exactly these two edits */
    const char *t = strstr(md, "title: ");
    const char *e = strstr(md, "- EdiM\n") + 7;
    char *want = malloc(n + 64);
    size_t wn = (size_t)snprintf(
        want, n + 64, "---\ntitle: \"Retitled by Ana\"%.*s- Bo\n%s",
        (int)(e - strchr(t, '\n')), strchr(t, '\n'), e);
    assert_true(t == md + 4);
    assert_bytes(out, on, want, wn);
    free(want);
    notes_fmt_free(out);
    notes_doc_free(a);
    notes_doc_free(b);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_samples_roundtrip),
        cmocka_unit_test(test_formats_sample_fields),
        cmocka_unit_test(test_formats_edge_roundtrips),
        cmocka_unit_test(test_formats_edge_fields),
        cmocka_unit_test(test_formats_edit_changes_only_that_line),
        cmocka_unit_test(test_formats_edit_styles),
        cmocka_unit_test(test_formats_export_without_source),
        cmocka_unit_test(test_formats_bad_input),
        cmocka_unit_test(test_formats_import_into_nonempty),
        cmocka_unit_test(test_formats_concurrent_field_edits),
        cmocka_unit_test(test_formats_meeting_new),
        cmocka_unit_test(test_formats_section_append),
        cmocka_unit_test(test_formats_remark_append),
    };
    return cmocka_run_group_tests(tests, fmt_setup, fmt_teardown);
}
