/*
 * test_cli_items.c: decisions and action items as a person reads them
 * (issue 19), through the `notes` command on the real sample notes: which
 * lines are action items, naming an item, where `append` puts a remark,
 * the one heading rule, and text from a revoked device. Every listing
 * (decisions, decisions --json, show --json, the HTML export) says the
 * same about each item.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "clirun.h"
#include "tmpdir.h"

static char *work;

#define RUN(home, ...) clirun(work, home, "", NULL, __VA_ARGS__, NULL)

static char *sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char rel[256];
    snprintf(rel, sizeof(rel), "samples/%s", name);
    return test_path(shared ? shared : "../shared", rel);
}

/* Import a sample into home; its note id (32 hex digits) in id. */
static void import_sample(const char *home, const char *name, char id[33])
{
    char *path = sample(name);
    /* --again: each test its own copy, also in a home that has one */
    char *out = clirun_stdout(RUN(home, "import", "--again", path));
    snprintf(id, 33, "%.32s", out);
    free(out);
    free(path);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/*
 * The items of a note as every listing gives them agree: the same number,
 * kinds, texts, done flags and revocations in `decisions --json` (kind
 * "action item"/"decision"), `show --json` ("task"/"decision"), the text
 * listing and the HTML export. Returns `decisions --json`.
 */
static json_t *agree(const char *home, const char *note)
{
    json_t *dj = clirun_json(RUN(home, "decisions", note, "--json"));
    json_t *sj = clirun_json(RUN(home, "show", note, "--json"));
    json_t *si = json_object_get(sj, "items");
    char *text = clirun_stdout(RUN(home, "decisions", note));
    char *html = clirun_stdout(RUN(home, "export", note, "--format", "html"));
    assert_int_equal(json_array_size(dj), json_array_size(si));
    size_t tasks = 0, done = 0, after = 0, before = 0;
    for (size_t i = 0; i < json_array_size(dj); i++) {
        json_t *a = json_array_get(dj, i), *b = json_array_get(si, i);
        const char *ka = json_string_value(json_object_get(a, "kind"));
        const char *kb = json_string_value(json_object_get(b, "kind"));
        int task = strcmp(ka, "action item") == 0;
        assert_true(task || strcmp(ka, "decision") == 0);
        assert_string_equal(kb, task ? "task" : "decision");
        assert_string_equal(json_string_value(json_object_get(a, "text")),
                            json_string_value(json_object_get(b, "text")));
        assert_string_equal(json_string_value(json_object_get(a, "id")),
                            json_string_value(json_object_get(b, "id")));
        const char *ra = json_string_value(json_object_get(a, "revocation")),
                   *rb = json_string_value(json_object_get(b, "revocation"));
        assert_true(ra == rb || (ra && rb && strcmp(ra, rb) == 0));
        if (task) {
            tasks++;
            done += json_is_true(json_object_get(b, "done"));
            assert_int_equal(json_is_true(json_object_get(a, "done")),
                             json_is_true(json_object_get(b, "done")));
        } else {
            assert_true(json_is_null(json_object_get(b, "done")));
        }
        const char *rev = json_string_value(json_object_get(a, "revocation"));
        after += rev && strcmp(rev, "after") == 0;
        before += rev && strcmp(rev, "before") == 0;
    }
    /* the text listing: "[ ]"/"[x]" for action items, " * " for decisions */
    assert_int_equal(count(text, " [ ] ") + count(text, " [x] "), tasks);
    assert_int_equal(count(text, " [x] "), done);
    assert_int_equal(count(text, "  *  "), json_array_size(dj) - tasks);
    assert_int_equal(count(text, "after its revocation"), after);
    assert_int_equal(count(text, "written before its device was revoked"), before);
    /* the HTML: a box per action item, checked when done */
    assert_int_equal(count(html, "<li>&#9744; ") + count(html, "<li>&#9745; "),
                     tasks);
    assert_int_equal(count(html, "<li>&#9745; "), done);
    assert_int_equal(count(html, "from a revoked device, maybe after its "
                                 "revocation</span>"),
                     after);
    assert_int_equal(count(html, "verified, written before its device was "
                                 "revoked</span>"),
                     before);
    free(text);
    free(html);
    json_decref(sj);
    return dj;
}

static const char *kind_of(json_t *items, size_t i)
{
    return json_string_value(json_object_get(json_array_get(items, i), "kind"));
}

/* The community sample: under "TODOs and Decisions" the owned lines are
 * action items, "Next meeting: ..." a decision. */
static void test_items_sample_todos(void **state)
{
    (void)state;
    char c[33], k[33];
    clirun_ok(RUN("rd", "init", "--name", "RD"), NULL);
    import_sample("rd", "community-2023-05-15.md", c);
    import_sample("rd", "kraft-2022-04-06.md", k);
    json_t *items = agree("rd", c);
    assert_int_equal(json_array_size(items), 5);
    assert_string_equal(kind_of(items, 0), "action item");
    assert_string_equal(kind_of(items, 1), "decision");
    for (size_t i = 2; i < 5; i++)
        assert_string_equal(kind_of(items, i), "action item");
    char id1[17];
    snprintf(id1, sizeof(id1), "%s",
             json_string_value(json_object_get(json_array_get(items, 0), "id")));
    json_decref(items);
    items = agree("rd", k);
    assert_int_equal(json_array_size(items), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(kind_of(items, i), "action item");
    json_decref(items);

    /* What RD still owes, across the meetings. */
    struct clirun_out r = RUN("rd", "decisions");
    clirun_expect(r, 0, "Look for places", NULL);
    assert_null(strstr(r.out, "no open action items"));
    assert_null(strstr(r.out, "Next meeting")); /* a decision, not owed */
    assert_non_null(strstr(r.out, "Create manifest files."));
    clirun_free(&r);

    /* done NOTE 1 checks the owned line off; it keeps its id */
    clirun_ok(RUN("rd", "done", c, "1"), "done: Look for places");
    clirun_ok(RUN("rd", "done", c, "1"), "already done");
    clirun_fails(RUN("rd", "done", c, "2"), 1, "is a decision");
    clirun_ok(RUN("rd", "show", c),
       "\n- [x] RD: Look for places for the Community Gathering");
    items = agree("rd", c);
    json_t *first = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), id1);
    assert_true(json_is_true(json_object_get(first, "done")));
    json_decref(items);
    r = RUN("rd", "decisions");
    clirun_expect(r, 0, "Remind AJ", NULL);
    assert_null(strstr(r.out, "Look for places"));
    clirun_free(&r);
}

/* One way to name an item everywhere: number, id, or part of its text. */
static void test_items_naming(void **state)
{
    (void)state;
    char c[33];
    import_sample("rd", "community-2023-05-15.md", c);
    clirun_ok(RUN("rd", "decide", c, "Next gathering in Bucharest", "--owner",
           "Everyone"),
       "decision recorded");
    json_t *items = agree("rd", c);
    assert_int_equal(json_array_size(items), 6);
    json_t *last = json_array_get(items, 5);
    /* decided with an owner: a decision, the label no part of its text */
    assert_string_equal(json_string_value(json_object_get(last, "kind")),
                        "decision");
    assert_string_equal(json_string_value(json_object_get(last, "text")),
                        "Next gathering in Bucharest");
    assert_string_equal(json_string_value(json_object_get(last, "owner")),
                        "Everyone");
    char id4[17], prefix[9];
    snprintf(id4, sizeof(id4), "%s",
             json_string_value(json_object_get(json_array_get(items, 3), "id")));
    json_decref(items);

    clirun_ok(RUN("rd", "confirm", c, "Bucharest"), "Next gathering in Bucharest");
    clirun_ok(RUN("rd", "confirm", c, "bucharest"), "confirmed"); /* case ignored */
    clirun_fails(RUN("rd", "confirm", c, "Go through"), 1,
          "'Go through' matches several items (4, 5)");
    clirun_fails(RUN("rd", "done", c, "Go through"), 1,
          "'Go through' matches several items (4, 5)");
    clirun_fails(RUN("rd", "confirm", c, "Lisbon"), 1, "'Lisbon' names no item");
    clirun_fails(RUN("rd", "done", c, "Lisbon"), 1, "'Lisbon' names no item");
    clirun_fails(RUN("rd", "done", c, "9"), 1, "no item 9 (the note has 6)");
    clirun_fails(RUN("rd", "confirm", c, "9"), 1, "no item 9 (the note has 6)");
    /* an id prefix names the item for both */
    snprintf(prefix, sizeof(prefix), "%.8s", id4);
    clirun_ok(RUN("rd", "confirm", c, prefix), id4);
    clirun_ok(RUN("rd", "done", c, prefix), "done: Go through technical");
}

/* `append` without --section: into the discussion, not the decisions. */
static void test_items_append(void **state)
{
    (void)state;
    char c[33], k[33];
    import_sample("rd", "community-2023-05-15.md", c);
    import_sample("rd", "kraft-2022-04-06.md", k);
    clirun_ok(RUN("rd", "append", c, "RD: a side remark"), NULL);
    clirun_ok(RUN("rd", "append", k, "AJ: another remark"), NULL);
    json_t *items = agree("rd", c);
    assert_int_equal(json_array_size(items), 5);
    json_decref(items);
    items = agree("rd", k);
    assert_int_equal(json_array_size(items), 4);
    json_decref(items);
    clirun_ok(RUN("rd", "show", c),
       "https://hackmd.io/@unikraft/HyNdSyAki\n\nRD: a side remark\n\n"
       "## TODOs and Decisions\n");
    clirun_ok(RUN("rd", "show", k),
       "See this: https://github.com/compose-spec/compose-go\n");
    clirun_ok(RUN("rd", "show", k), "\nAJ: another remark\n\n### TODOs and Decisions\n");
    /* a new meeting: under Discussions */
    char *id = clirun_stdout(RUN("rd", "new", "Weekly"));
    id[32] = 0;
    clirun_ok(RUN("rd", "append", id, "a remark"), NULL);
    clirun_ok(RUN("rd", "show", id),
       "## Discussions\n\na remark\n\n## TODOs and Decisions\n");
    json_t *none = clirun_json(RUN("rd", "decisions", id, "--json"));
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    free(id);
}

/* One heading rule: "Multitasking" names no tasks, a heading in a code
 * fence is none; decide, append --section and the outline agree. */
static void test_items_heading_rule(void **state)
{
    (void)state;
    const char *md = "# Retro\n\n## Multitasking\n\nWe do too much at once.\n\n"
                     "```\n## TODOs\n```\n\n## Decisions\n\nShip on Friday\n";
    char *path = test_path(work, "retro.md");
    assert_int_equal(test_spit(path, md, strlen(md)), 0);
    char *out = clirun_stdout(RUN("rd", "import", path));
    char id[33];
    snprintf(id, sizeof(id), "%.32s", out);
    free(out);
    free(path);
    json_t *items = agree("rd", id);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    clirun_ok(RUN("rd", "decide", id, "Keep the retro short"), NULL);
    clirun_ok(RUN("rd", "todo", id, "Book the room", "--owner", "RD"),
       "action item recorded");
    clirun_ok(RUN("rd", "show", id),
       "## Decisions\n\nShip on Friday\n\nKeep the retro short\n\n"
       "- [ ] RD: Book the room\n");
    items = agree("rd", id);
    assert_int_equal(json_array_size(items), 3);
    json_decref(items);
    json_t *sj = clirun_json(RUN("rd", "show", id, "--json"));
    json_t *it = json_array_get(json_object_get(sj, "items"), 2);
    assert_string_equal(json_string_value(json_object_get(it, "section")),
                        "Decisions");
    json_decref(sj);
    clirun_ok(RUN("rd", "append", id, "--section", "multitask", "And more."), NULL);
    clirun_ok(RUN("rd", "show", id), "```\n## TODOs\n```\n\nAnd more.\n\n## Decisions\n");
}

static char desk_fpr[16];

static void move(const char *from, const char *to, const char *note,
                 const char *file)
{
    clirun_ok(RUN(from, "export", note, "--format", "bundle", "-o", file), NULL);
    clirun_ok(RUN(to, "import", file), NULL);
}

/* Text from a revoked device shows apart from everyone else's, and what
 * it wrote after its revocation apart from what it wrote before. */
static void test_items_revoked_device(void **state)
{
    (void)state;
    clirun_ok(RUN("rita", "init", "--name", "Rita"), NULL);
    clirun_ok(RUN("desk", "init", "--name", "Rita desktop", "--device"), NULL);
    json_t *w = clirun_json(RUN("desk", "whoami", "--json"));
    snprintf(desk_fpr, sizeof(desk_fpr), "%s",
             json_string_value(json_object_get(w, "fingerprint")));
    json_decref(w);
    char *add = clirun_stdout(RUN("desk", "device", "add"));
    char *code = strstr(add, "np1");
    assert_non_null(code);
    *strchr(code, '\n') = 0;
    clirun_ok(RUN("rita", "device", "link", code), "linked device");
    free(add);

    char *note = clirun_stdout(RUN("rita", "new", "Weekly"));
    note[32] = 0;
    clirun_ok(RUN("rita", "todo", note, "Write the agenda", "--owner", "Rita"), NULL);
    move("rita", "desk", note, "r1.bundle");
    clirun_ok(RUN("desk", "todo", note, "Book the room", "--owner", "Rita"), NULL);
    move("desk", "rita", note, "d1.bundle");
    /* Rita revokes the desktop; the desktop has not heard of it and
     * writes on (the thief, maybe); its change reaches Rita. */
    clirun_ok(RUN("rita", "device", "revoke", desk_fpr), "revoked device");
    clirun_ok(RUN("desk", "todo", note, "Wire the money", "--owner", "Rita"), NULL);
    move("desk", "rita", note, "d2.bundle");

    json_t *items = agree("rita", note);
    assert_int_equal(json_array_size(items), 3);
    static const char *const want[] = {NULL, "before", "after"};
    for (size_t i = 0; i < 3; i++) {
        json_t *rev = json_object_get(json_array_get(items, i), "revocation");
        if (want[i])
            assert_string_equal(json_string_value(rev), want[i]);
        else
            assert_true(json_is_null(rev));
    }
    json_decref(items);
    struct clirun_out r = RUN("rita", "decisions", note);
    clirun_expect(r, 0, NULL, NULL);
    const char *book = strstr(r.out, "Book the room"),
               *wire = strstr(r.out, "Wire the money");
    assert_non_null(book);
    assert_non_null(wire);
    assert_true(strstr(book, "written before its device was revoked") < wire);
    assert_non_null(strstr(wire, "from a revoked device, maybe after its "
                                 "revocation (which had not seen it): do not "
                                 "trust"));
    clirun_free(&r);
    free(note);
}

/* What RD still owes across the meetings; append, decide and todo say
 * what they did, -q silences them. */
static void test_items_owner_and_reports(void **state)
{
    (void)state;
    char c[33], k[33];
    clirun_ok(RUN("ow", "init", "--name", "Ana"), NULL);
    import_sample("ow", "community-2023-05-15.md", c);
    import_sample("ow", "kraft-2022-04-06.md", k);
    struct clirun_out r = RUN("ow", "decisions", "--open", "--owner", "RD");
    clirun_expect(r, 0, "Look for places", NULL);
    assert_non_null(strstr(r.out, "Remind AJ"));
    assert_non_null(strstr(r.out, "Go through roadmap")); /* Everyone's */
    assert_null(strstr(r.out, "Create manifest files."));
    assert_null(strstr(r.out, "Next meeting")); /* a decision */
    clirun_free(&r);
    r = RUN("ow", "decisions", "--owner", "AJ");
    clirun_expect(r, 0, "Create manifest files.", NULL);
    assert_null(strstr(r.out, "Look for places"));
    assert_null(strstr(r.out, "Go through")); /* AJ is no participant there */
    clirun_free(&r);
    json_t *j = clirun_json(RUN("ow", "decisions", "--owner", "rd", "--json"));
    assert_int_equal(json_array_size(j), 4);
    json_decref(j);
    clirun_ok(RUN("ow", "done", c, "Look for places"), NULL);
    j = clirun_json(RUN("ow", "decisions", "--owner", "RD", "--json"));
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);
    /* one note, all its items RD owns, open or not */
    j = clirun_json(RUN("ow", "decisions", c, "--owner", "RăzvanD", "--json"));
    assert_int_equal(json_array_size(j), 4);
    json_decref(j);
    clirun_ok(RUN("ow", "decisions", "--owner", "Nobody"),
       "no open action items owned by Nobody");
    clirun_fails(RUN("ow", "decisions", "--owner"), 1, "usage");

    char line[64];
    snprintf(line, sizeof(line), "appended to %.8s\n", c);
    clirun_ok(RUN("ow", "append", c, "a remark"), line);
    clirun_ok(RUN("ow", "todo", c, "Book the room", "--owner", "RD"),
       "action item recorded in ");
    clirun_ok(RUN("ow", "decide", c, "Ship it"), ": Ship it\n");
    const char *quiet[][6] = {
        {"append", c, "-q", "another remark", NULL, NULL},
        {"todo", c, "Call Bo", "--owner", "RD", "-q"},
        {"decide", c, "-q", "Ship on Monday", NULL, NULL},
    };
    for (size_t i = 0; i < 3; i++) {
        r = RUN("ow", quiet[i][0], quiet[i][1], quiet[i][2], quiet[i][3],
                quiet[i][4], quiet[i][5]);
        clirun_expect(r, 0, NULL, NULL);
        assert_string_equal(r.out, "");
        clirun_free(&r);
    }
    clirun_ok(RUN("ow", "show", c), "another remark");
    clirun_ok(RUN("ow", "decisions", c), "Call Bo");
}

/* notes new --carry: the open action items of the series' last meeting
 * (title without numbers, dates, month and weekday names; the latest by
 * datetime) come into the new note; done ones and decisions stay; another
 * series is not taken; --carry-from names the meeting. */
static void test_new_carry(void **state)
{
    (void)state;
    const char *w11 =
        "---\ntitle: \"Weekly sync #11, May 1, 2023\"\n"
        "datetime: 2023-05-01T13:00:00+02:00\nparticipants:\n- RD\n---\n\n"
        "## TODOs\n\n- [ ] RD: Old thing\n";
    const char *w12 =
        "---\ntitle: \"Weekly sync #12, May 8, 2023\"\n"
        "datetime: 2023-05-08T13:00:00+02:00\nparticipants:\n- RD\n- Ana\n"
        "- Bo\n---\n\n## TODOs and Decisions\n\n- [ ] RD: Book the room\n"
        "- [x] Ana: Send the minutes\n\nBo: Fix the build\n\n"
        "Agreed: ship on Friday\n";
    char *p11 = test_path(work, "w11.md"), *p12 = test_path(work, "w12.md");
    assert_int_equal(test_spit(p11, w11, strlen(w11)), 0);
    assert_int_equal(test_spit(p12, w12, strlen(w12)), 0);
    clirun_ok(RUN("ca", "init", "--name", "RD"), NULL);
    char *o11 = clirun_stdout(RUN("ca", "import", p11));
    free(clirun_stdout(RUN("ca", "import", p12)));
    o11[32] = 0;

    struct clirun_out r = RUN("ca", "new", "Weekly sync #13, May 15, 2023", "--carry");
    clirun_expect(r, 0, NULL, "carried 2 open action items from");
    assert_int_equal(strlen(r.out), 33); /* the id alone, for scripts */
    char id[33];
    snprintf(id, sizeof(id), "%.32s", r.out);
    clirun_free(&r);
    json_t *items = clirun_json(RUN("ca", "decisions", id, "--json"));
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(kind_of(items, 0), "action item");
    assert_string_equal(kind_of(items, 1), "action item");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "text")),
                        "Book the room");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "text")),
                        "Fix the build");
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "owner")),
                        "Bo");
    json_decref(items);

    /* Another series: nothing carried, said so, the note made anyway. */
    r = RUN("ca", "new", "Design review", "--carry");
    clirun_expect(r, 0, NULL, "nothing carried");
    clirun_free(&r);
    /* A meeting named by hand. */
    r = RUN("ca", "new", "Retro", "--carry-from", o11);
    clirun_expect(r, 0, NULL, "carried 1 open action item from");
    snprintf(id, sizeof(id), "%.32s", r.out);
    clirun_free(&r);
    clirun_ok(RUN("ca", "decisions", id), "Old thing");
    free(o11);
    free(p11);
    free(p12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_sample_todos),
        cmocka_unit_test(test_items_naming),
        cmocka_unit_test(test_items_append),
        cmocka_unit_test(test_items_heading_rule),
        cmocka_unit_test(test_items_revoked_device),
        cmocka_unit_test(test_items_owner_and_reports),
        cmocka_unit_test(test_new_carry),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("items");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
