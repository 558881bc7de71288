/*
 * test_formats_html.c: the HTML export reads as the note does (issue 19):
 * a task's box on the line of its text in loose lists too, done tasks
 * struck through in the body as in the items box, dates a person reads
 * (the value as written kept in <time datetime>), and a footer that says
 * when the page was made and how to check the signed note.
 */
#include "fmt_test.h"

static char *html_of(const char *md, int commit)
{
    notes_doc *d = import_ok(md, strlen(md));
    char *out;
    size_t n;
    if (commit)
        assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(notes_fmt_html_export(d, 0, &out, &n), NOTES_OK);
    char *copy = strdup(out);
    notes_fmt_free(out);
    notes_doc_free(d);
    return copy;
}

static void has(const char *html, const char *want)
{
    if (!strstr(html, want))
        fail_msg("no '%s' in:\n%s", want, html);
}

static void test_html_tasks(void **state)
{
    (void)state;
    char *h = html_of("---\ntitle: Tasks\n---\n## TODOs\n\n"
                      "- [ ] RD: book the room\n\n"
                      "- [x] AJ: send the logo\n\n"
                      "Tight:\n\n"
                      "- [x] done *em* here\n"
                      "  - [ ] nested\n"
                      "- [ ] open\n",
                      1);
    /* Loose items: md4c's <p> after the box is inline (CSS); a done one
     * is struck through. */
    has(h, "main li.task-list-item>input+p{display:inline}");
    has(h, "checked><p class=\"done\">AJ: send the logo</p>");
    has(h, "disabled><p>RD: book the room</p>");
    /* Tight items: the done text up to the nested list. */
    has(h, "checked><span class=\"done\">done <em>em</em> here</span><ul>");
    has(h, "disabled>nested</li>");
    has(h, "disabled>open</li>");
    free(h);
}

static void test_html_dates_footer(void **state)
{
    (void)state;
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    char *h = html_of("---\ntitle: Dated\ndatetime: 2023-05-15T13:00:00+02:00\n"
                      "---\nText\n",
                      1);
    has(h, "<time datetime=\"2023-05-15T13:00:00+02:00\">Monday, 15 May 2023, "
           "13:00 (UTC+02:00)</time>");
    /* The footer: when, from which note and version, and how to check. */
    has(h, "<footer><p>Exported Tuesday, 14 November 2023, 22:13 UTC by notes "
           "from note <code>");
    has(h, "(1 signed change by 1 author)");
    has(h, "--format bundle");
    has(h, "notes verify note.bundle");
    free(h);

    h = html_of("---\ndatetime: 2024-02-29\n---\nText\n", 1);
    has(h, "<title>Meeting of Thursday, 29 February 2024</title>");
    has(h, ">Thursday, 29 February 2024</time>");
    free(h);
    h = html_of("---\ndatetime: 2023-01-01T09:30Z\n---\nText\n", 1);
    has(h, ">Sunday, 1 January 2023, 09:30 UTC</time>");
    free(h);
    /* Not a date: shown as written. */
    h = html_of("---\ntitle: T\ndatetime: next tuesday\n---\nText\n", 0);
    has(h, "<dd>next tuesday</dd>");
    has(h, "(nothing committed yet)");
    free(h);
    unsetenv("SOURCE_DATE_EPOCH");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_html_tasks),
        cmocka_unit_test(test_html_dates_footer),
    };
    return cmocka_run_group_tests(tests, fmt_setup, fmt_teardown);
}
