/*
 * test_cli_history.c: a note's history covers the whole note, front matter
 * included, as a user meets it: `notes show --at` and `notes diff` show the
 * fields as they were, `notes blame` names the change behind every line
 * (front matter too, and everyone who rewrote a line), `notes log` says
 * what each change did, line numbers are those of the file `notes show`
 * prints, `notes edit` opens and takes back the front matter (a malformed
 * one is refused, nothing stored), and `notes revert` / `notes restore`
 * are new signed changes that travel to another replica.
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
#include <sys/stat.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

static const char *bin;
static char *work;

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

/* A meeting note as HedgeDoc writes them (cf. the sample notes). */
static const char sample[] =
    "---\n"
    "title: \"Community Gathering, May 15, 2023\"\n"
    "tags: unikraft, community\n"
    "datetime: 2023-05-15T13:00:00+02:00\n"
    "participants:\n"
    "- Marco\n"
    "- Cezar\n"
    "- Andra\n"
    "---\n"
    "\n"
    "## Agenda\n"
    "\n"
    "- Post-release items\n"
    "- Near term goals\n"
    "\n"
    "## TODOs and Decisions\n"
    "\n"
    "Marco: Book the room for October\n";

/* A home with the sample imported; its note id (32 hex) into id. */
static void setup_home(const char *home, const char *name, char id[33])
{
    clirun_ok(RUN(home, "init", "--name", name), NULL);
    char *md = test_path(work, "community.md");
    assert_int_equal(test_spit(md, sample, strlen(sample)), 0);
    struct clirun_out r = RUN(home, "import", md);
    clirun_expect(r, 0, NULL, NULL);
    assert_true(strlen(r.out) >= 32);
    snprintf(id, 33, "%.32s", r.out);
    clirun_free(&r);
    free(md);
}

/* The change ids of the note, newest first (json array of strings). */
static json_t *log_of(const char *home, const char *id)
{
    return clirun_json(RUN(home, "log", id, "--json"));
}

static const char *log_id(json_t *log, size_t newest)
{
    return json_string_value(
        json_object_get(json_array_get(log, newest), "id"));
}

/* `notes edit` with an editor script (sh, $1 is the file). */
static struct clirun_out edit_with(const char *home, const char *id,
                                   const char *script_body)
{
    char *script = test_path(work, "editor.sh");
    char body[2048];
    snprintf(body, sizeof(body), "#!/bin/sh\n%s\n", script_body);
    assert_int_equal(test_spit(script, body, strlen(body)), 0);
    chmod(script, 0755);
    setenv("EDITOR", script, 1);
    unsetenv("VISUAL");
    struct clirun_out r = RUN(home, "edit", id);
    unsetenv("EDITOR");
    free(script);
    return r;
}

/* Line n (1-based) of s, into out. */
static void line_of(const char *s, size_t n, char *out, size_t cap)
{
    for (size_t k = 1; k < n && s; k++) {
        s = strchr(s, '\n');
        s = s ? s + 1 : NULL;
    }
    assert_non_null(s);
    const char *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    assert_true(len < cap);
    memcpy(out, s, len);
    out[len] = 0;
}

static void test_show_at_and_diff_have_front_matter(void **state)
{
    (void)state;
    char id[33];
    setup_home("sa", "Ana", id);
    json_t *log = log_of("sa", id);
    char first[13];
    snprintf(first, sizeof(first), "%.12s", log_id(log, 0));
    json_decref(log);
    char *orig = clirun_stdout(RUN("sa", "show", id));
    assert_string_equal(orig, sample);
    clirun_ok(RUN("sa", "set", id, "title", "Community Gathering (moved)"), NULL);
    clirun_ok(RUN("sa", "set", id, "participants+", "Vela"), NULL);
    clirun_ok(RUN("sa", "append", id, "--section", "TODOs", "Andra: Write the summary"), NULL);

    /* The whole note as it was: front matter and text, byte for byte. */
    char *then = clirun_stdout(RUN("sa", "show", id, "--at", first));
    assert_string_equal(then, sample);
    json_t *j = clirun_json(RUN("sa", "show", id, "--at", first, "--json"));
    json_t *fm = json_object_get(j, "front_matter");
    assert_non_null(fm);
    assert_string_equal(json_string_value(json_object_get(fm, "title")),
                        "Community Gathering, May 15, 2023");
    assert_int_equal(json_array_size(json_object_get(fm, "participants")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "at")), first);
    json_decref(j);

    /* The diff shows the fields, with the line numbers of `notes show`. */
    char *df = clirun_stdout(RUN("sa", "diff", id, first));
    assert_non_null(strstr(df, "@@ -1,"));
    assert_non_null(strstr(df, "\n-title: \"Community Gathering, May 15, 2023\"\n"));
    assert_non_null(strstr(df, "\n+title: \"Community Gathering (moved)\"\n"));
    assert_non_null(strstr(df, "\n+- Vela\n"));
    assert_non_null(strstr(df, "\n+Andra: Write the summary\n"));
    /* The hunk of the appended line starts where `show` has it. */
    char *now = clirun_stdout(RUN("sa", "show", id));
    size_t nlines = 0;
    for (const char *p = now; *p; p++)
        nlines += *p == '\n';
    char line[256];
    line_of(now, nlines, line, sizeof(line));
    assert_string_equal(line, "Andra: Write the summary");
    const char *h = strrchr(df, '@');
    assert_non_null(h);
    while (h > df && !(h[0] == '@' && h[-1] == '@' && h[1] == ' '))
        h--;
    int a0 = 0, alen = 0, b0 = 0, blen = 0;
    assert_int_equal(sscanf(h, "@ -%d,%d +%d,%d @@", &a0, &alen, &b0, &blen), 4);
    /* the hunk's new lines end at the last line of `show` */
    assert_int_equal((size_t)(b0 + blen - 1), nlines);
    free(now);
    free(df);
    free(then);
    free(orig);
}

static void test_blame_whole_note(void **state)
{
    (void)state;
    char id[33];
    /* A long name is never cut. */
    const char *longname =
        "Ana Maria Bernadette Constantinescu-Vasilescu de la Montagne";
    setup_home("bl", longname, id);
    clirun_ok(RUN("bl", "set", id, "title", "Moved"), NULL);
    json_t *log = log_of("bl", id);
    const char *set_id = log_id(log, 0);
    char *show = clirun_stdout(RUN("bl", "show", id));
    json_t *b = clirun_json(RUN("bl", "blame", id, "--json"));
    size_t nlines = 0;
    for (const char *p = show; *p; p++)
        nlines += *p == '\n';
    /* One entry per line of `notes show`, front matter included. */
    assert_int_equal(json_array_size(b), nlines);
    for (size_t i = 0; i < nlines; i++) {
        json_t *e = json_array_get(b, i);
        char line[256];
        line_of(show, i + 1, line, sizeof(line));
        assert_int_equal(json_integer_value(json_object_get(e, "line")), i + 1);
        assert_string_equal(json_string_value(json_object_get(e, "text")), line);
        assert_int_equal(strlen(json_string_value(json_object_get(e, "change"))), 12);
    }
    json_t *title = json_array_get(b, 1);
    assert_string_equal(json_string_value(json_object_get(title, "text")),
                        "title: \"Moved\"");
    assert_memory_equal(json_string_value(json_object_get(title, "change")),
                        set_id, 12);
    assert_non_null(strstr(json_string_value(json_object_get(title, "author")),
                           longname));
    struct clirun_out r = RUN("bl", "blame", id);
    char want[128];
    snprintf(want, sizeof(want), "%.12s %s", set_id, longname);
    clirun_expect(r, 0, want, NULL);
    assert_non_null(strstr(r.out, "   2| title: \"Moved\"\n"));
    clirun_free(&r);
    json_decref(b);
    json_decref(log);
    free(show);
}

/* Line numbers agree between show, blame, decisions --json and show
 * --json's show_line: counted in the file `notes show` prints. */
static void test_line_numbers_agree(void **state)
{
    (void)state;
    char id[33];
    setup_home("ln", "Ana", id);
    char *show = clirun_stdout(RUN("ln", "show", id));
    size_t want = 0;
    char line[256];
    for (size_t k = 1; !want; k++) {
        line_of(show, k, line, sizeof(line));
        if (strcmp(line, "Marco: Book the room for October") == 0)
            want = k;
    }
    assert_int_equal(want, 18);
    json_t *dec = clirun_json(RUN("ln", "decisions", id, "--json"));
    assert_int_equal(json_array_size(dec), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(dec, 0), "line")),
                     want);
    json_t *j = clirun_json(RUN("ln", "show", id, "--json"));
    json_t *it = json_array_get(json_object_get(j, "items"), 0);
    assert_int_equal(json_integer_value(json_object_get(it, "show_line")), want);
    /* "line" stays the line in "text" (notes.note/1 keeps its meanings). */
    assert_int_equal(json_integer_value(json_object_get(it, "line")), want - 9);
    json_t *b = clirun_json(RUN("ln", "blame", id, "--json"));
    json_t *e = json_array_get(b, want - 1);
    assert_int_equal(json_integer_value(json_object_get(e, "line")), want);
    assert_string_equal(json_string_value(json_object_get(e, "text")), line);
    json_decref(b);
    json_decref(j);
    json_decref(dec);
    free(show);
}

static void test_blame_two_writers(void **state)
{
    (void)state;
    char id[33];
    setup_home("ta", "Ana", id);
    clirun_ok(RUN("tb", "init", "--name", "Bo"), NULL);
    char *bundle = test_path(work, "two.bundle");
    clirun_ok(RUN("ta", "export", id, "--format", "bundle", "-o", bundle), NULL);
    clirun_ok(RUN("tb", "import", bundle), NULL);
    /* Bo rewrites the end of Ana's line. */
    struct clirun_out r = edit_with("tb", id,
                                    "sed -i 's/for October/for November, in Graz/' \"$1\"");
    clirun_expect(r, 0, "recorded", NULL);
    clirun_free(&r);
    json_t *b = clirun_json(RUN("tb", "blame", id, "--json"));
    json_t *last = json_array_get(b, json_array_size(b) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "text")),
                        "Marco: Book the room for November, in Graz");
    json_t *authors = json_object_get(last, "authors");
    assert_int_equal(json_array_size(authors), 2);
    /* latest first: Bo's change, then Ana's */
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(authors, 0), "author")), "Bo ("));
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(authors, 1), "author")), "Ana ("));
    r = RUN("tb", "blame", id);
    clirun_expect(r, 0, NULL, NULL);
    const char *l = strstr(r.out, "| Marco: Book the room for November");
    assert_non_null(l);
    while (l > r.out && l[-1] != '\n')
        l--;
    assert_non_null(strstr(l, "Bo ("));
    const char *ana = strstr(l, "Ana (");
    assert_non_null(ana);
    assert_true(ana < strchr(l, '|'));
    clirun_free(&r);
    json_decref(b);
    free(bundle);
}

static void test_log_says_what(void **state)
{
    (void)state;
    char id[33];
    setup_home("lg", "Ana", id);
    clirun_ok(RUN("lg", "set", id, "title", "New title"), NULL);
    clirun_ok(RUN("lg", "set", id, "participants+", "Zed"), NULL);
    clirun_ok(RUN("lg", "confirm", id, "1"), NULL);
    struct clirun_out r = RUN("lg", "log", id);
    clirun_expect(r, 0, "title set to \"New title\"", NULL);
    assert_non_null(strstr(r.out, "participants + \"Zed\""));
    assert_non_null(strstr(r.out, "confirmed \"Book the room for October\" for Marco"));
    /* the import: its text, the device link, the fields */
    assert_non_null(strstr(r.out, "linked device Ana ("));
    assert_non_null(strstr(r.out, "participants + \"Marco\", \"Cezar\", \"Andra\""));
    clirun_free(&r);
    json_t *log = log_of("lg", id);
    json_t *ops = json_object_get(json_array_get(log, 2), "ops");
    assert_int_equal(json_array_size(ops), 1);
    json_t *op = json_array_get(ops, 0);
    assert_string_equal(json_string_value(json_object_get(op, "op")), "set");
    assert_string_equal(json_string_value(json_object_get(op, "field")), "title");
    assert_string_equal(json_string_value(json_object_get(op, "value")), "New title");
    op = json_array_get(json_object_get(json_array_get(log, 0), "ops"), 0);
    assert_string_equal(json_string_value(json_object_get(op, "op")), "confirm");
    assert_string_equal(json_string_value(json_object_get(op, "item")),
                        "Book the room for October");
    assert_string_equal(json_string_value(json_object_get(op, "owner")), "Marco");
    assert_non_null(json_object_get(json_array_get(log, 1), "summary"));
    json_decref(log);
}

static void test_edit_front_matter(void **state)
{
    (void)state;
    char id[33];
    setup_home("ed", "Ana", id);
    char *seen = test_path(work, "seen.md");
    char body[1024];
    /* The editor gets the whole note, exactly as `show` prints it. */
    snprintf(body, sizeof(body),
             "cp \"$1\" '%s'\n"
             "sed -i -e 's/^title: .*/title: \"Renamed\"/' -e 's/^- Cezar$/- Maria/' "
             "-e 's/^- Near term goals$/- Near term goals (kraftkit)/' \"$1\"",
             seen);
    struct clirun_out r = edit_with("ed", id, body);
    clirun_expect(r, 0, "recorded", NULL);
    clirun_free(&r);
    size_t n;
    char *got = (char *)test_slurp(seen, &n);
    assert_non_null(got);
    assert_int_equal(n, strlen(sample));
    assert_memory_equal(got, sample, n);
    free(got);
    json_t *j = clirun_json(RUN("ed", "show", id, "--json"));
    json_t *fm = json_object_get(j, "front_matter");
    assert_string_equal(json_string_value(json_object_get(fm, "title")), "Renamed");
    json_t *p = json_object_get(fm, "participants");
    assert_int_equal(json_array_size(p), 3);
    assert_string_equal(json_string_value(json_array_get(p, 0)), "Marco");
    assert_string_equal(json_string_value(json_array_get(p, 1)), "Maria");
    assert_string_equal(json_string_value(json_array_get(p, 2)), "Andra");
    json_decref(j);
    r = RUN("ed", "show", id);
    clirun_expect(r, 0, "---\ntitle: \"Renamed\"\n", NULL);
    assert_non_null(strstr(r.out, "- Marco\n- Maria\n- Andra\n---\n\n## Agenda\n"));
    assert_non_null(strstr(r.out, "- Near term goals (kraftkit)\n"));
    clirun_free(&r);
    r = RUN("ed", "log", id);
    clirun_expect(r, 0, "title set to \"Renamed\"", NULL);
    assert_non_null(strstr(r.out, "participants - \"Cezar\""));
    clirun_free(&r);

    /* Saved untouched: nothing recorded. */
    json_t *before = log_of("ed", id);
    r = edit_with("ed", id, "true");
    clirun_expect(r, 0, "no change", NULL);
    clirun_free(&r);
    /* A malformed front matter: refused, saying where; nothing stored. */
    char *shown = clirun_stdout(RUN("ed", "show", id));
    r = edit_with("ed", id, "sed -i 's/^title: .*/title: [unclosed/' \"$1\"");
    clirun_expect(r, 1, NULL, "the edited note is refused: line ");
    assert_non_null(strstr(r.err, "nothing recorded"));
    clirun_free(&r);
    r = edit_with("ed", id, "sed -i '$d' \"$1\"; printf -- '---\\nx\\n' > \"$1\"");
    clirun_expect(r, 1, NULL, "refused");
    clirun_free(&r);
    json_t *after = log_of("ed", id);
    assert_int_equal(json_array_size(after), json_array_size(before));
    char *again = clirun_stdout(RUN("ed", "show", id));
    assert_string_equal(again, shown);
    json_decref(before);
    json_decref(after);
    free(again);
    free(shown);
    free(seen);
}

static void test_revert_restore_sync(void **state)
{
    (void)state;
    char id[33];
    setup_home("ra", "Ana", id);
    clirun_ok(RUN("rb", "init", "--name", "Bo"), NULL);
    json_t *log = log_of("ra", id);
    char first[13];
    snprintf(first, sizeof(first), "%.12s", log_id(log, 0));
    json_decref(log);
    clirun_ok(RUN("ra", "append", id, "Cezar: Draft the talk"), NULL);
    clirun_ok(RUN("ra", "set", id, "title", "Gathering, revised"), NULL);
    log = log_of("ra", id);
    char drafted[13], titled[13];
    snprintf(drafted, sizeof(drafted), "%.12s", log_id(log, 1));
    snprintf(titled, sizeof(titled), "%.12s", log_id(log, 0));
    json_decref(log);
    clirun_ok(RUN("ra", "append", id, "Andra: Invite the speakers"), NULL);

    /* revert: the change's text is gone, later text stays; a new change. */
    clirun_ok(RUN("ra", "revert", id, drafted), "undone");
    char *s = clirun_stdout(RUN("ra", "show", id));
    assert_null(strstr(s, "Draft the talk"));
    assert_non_null(strstr(s, "Andra: Invite the speakers"));
    assert_non_null(strstr(s, "title: \"Gathering, revised\"\n"));
    free(s);
    clirun_ok(RUN("ra", "revert", id, titled), "undone");
    s = clirun_stdout(RUN("ra", "show", id));
    assert_non_null(strstr(s, "title: \"Community Gathering, May 15, 2023\"\n"));
    free(s);
    log = log_of("ra", id);
    assert_int_equal(json_array_size(log), 6); /* append-only */
    json_decref(log);
    clirun_ok(RUN("ra", "revert", id, drafted), "nothing to undo");
    struct clirun_out r = RUN("ra", "revert", id, "ffffffffffff");
    clirun_expect(r, 1, NULL, "no change");
    clirun_free(&r);

    /* restore: byte for byte what show --at prints. */
    clirun_ok(RUN("ra", "restore", id, "--at", drafted), "recorded");
    char *now = clirun_stdout(RUN("ra", "show", id));
    char *then = clirun_stdout(RUN("ra", "show", id, "--at", drafted));
    assert_string_equal(now, then);
    assert_non_null(strstr(now, "Cezar: Draft the talk"));
    assert_null(strstr(now, "Invite the speakers"));
    clirun_ok(RUN("ra", "restore", id, "--at", drafted), "no change");
    free(then);

    /* Both travel: Bo gets the same note. */
    char *bundle = test_path(work, "rr.bundle");
    clirun_ok(RUN("ra", "export", id, "--format", "bundle", "-o", bundle), NULL);
    clirun_ok(RUN("rb", "import", bundle), NULL);
    char *bo = clirun_stdout(RUN("rb", "show", id));
    assert_string_equal(bo, now);
    r = RUN("rb", "log", id);
    clirun_expect(r, 0, NULL, NULL);
    assert_non_null(strstr(r.out, "title set to \"Community Gathering, May 15, 2023\""));
    clirun_free(&r);
    clirun_ok(RUN("rb", "verify", id), NULL);
    /* Back to the first version, at Bo's, and to Ana. */
    clirun_ok(RUN("rb", "restore", id, "--at", first), "recorded");
    char *bo1 = clirun_stdout(RUN("rb", "show", id));
    assert_string_equal(bo1, sample);
    clirun_ok(RUN("rb", "export", id, "--format", "bundle", "-o", bundle), NULL);
    clirun_ok(RUN("ra", "import", bundle), NULL);
    char *ana1 = clirun_stdout(RUN("ra", "show", id));
    assert_string_equal(ana1, sample);
    free(ana1);
    free(bo1);
    free(bo);
    free(now);
    free(bundle);
}

static void test_conflicts_only(void **state)
{
    (void)state;
    char id[33];
    setup_home("co", "Ana", id);
    struct clirun_out r = RUN("co", "show", id, "--conflicts");
    clirun_expect(r, 0, "no conflicts\n", NULL);
    assert_null(strstr(r.out, "Agenda"));
    clirun_free(&r);
    json_t *j = clirun_json(RUN("co", "show", id, "--conflicts", "--json"));
    assert_int_equal(json_array_size(json_object_get(j, "line_conflicts")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "field_conflicts")), 0);
    assert_null(json_object_get(j, "text"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_at_and_diff_have_front_matter),
        cmocka_unit_test(test_blame_whole_note),
        cmocka_unit_test(test_line_numbers_agree),
        cmocka_unit_test(test_blame_two_writers),
        cmocka_unit_test(test_log_says_what),
        cmocka_unit_test(test_edit_front_matter),
        cmocka_unit_test(test_revert_restore_sync),
        cmocka_unit_test(test_conflicts_only),
    };
    bin = getenv("NOTES_BIN");
    if (!bin) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("clihist");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
