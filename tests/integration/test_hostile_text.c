/*
 * test_hostile_text.c: what the terminal shows is what the bytes say.
 * Titles, field values, bodies, file names and peers' names holding ESC,
 * BEL, CR, C1 controls or invalid UTF-8 are never written raw by the
 * `notes` binary (NOTES_BIN); a peer's signed name with a control
 * character is refused by the change decoder; a name cannot pass for a
 * fingerprint; import is bounded while it reads; an unreadable note
 * exits 3.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "change.h"
#include "clirun.h"
#include "tmpdir.h"

static char *work;

struct out {
    int status;
    char *out, *err;
};

static void out_free(struct out *o)
{
    free(o->out);
    free(o->err);
}

static struct out run(const char *home, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out c = clirun_va(work, home, NULL, NULL, arg0, ap);
    va_end(ap);
    assert_int_not_equal(c.status, -1);
    struct out r = {c.status, c.out, c.err};
    return r;
}
#define RUN(home, ...) run(home, __VA_ARGS__, NULL)

/* The first byte a terminal would obey, or NULL: C0 but \n and \t, DEL,
 * a C1 control (U+0080..U+009F as UTF-8), or a byte of invalid UTF-8. */
static const char *raw_control(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            return (const char *)p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (!len || c > 0xf4)
            return (const char *)p;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return (const char *)p;
        if (c == 0xc2 && p[1] < 0xa0)
            return (const char *)p;
        p += len;
    }
    return NULL;
}

/* Exit `status`; stdout and stderr free of raw controls; `want` (if any)
 * in stdout or stderr. */
static void clean(struct out r, int status, const char *want)
{
    const char *bo = raw_control(r.out), *be = raw_control(r.err);
    if (r.status != status || bo || be ||
        (want && !strstr(r.out, want) && !strstr(r.err, want)))
        print_message("status %d\nstdout:\n%s\nstderr:\n%s\n", r.status, r.out,
                      r.err);
    assert_int_equal(r.status, status);
    assert_null(bo);
    assert_null(be);
    if (want)
        assert_true(strstr(r.out, want) || strstr(r.err, want));
}

static void ok(struct out r, int status, const char *want)
{
    clean(r, status, want);
    out_free(&r);
}

static char note[33];

static int setup(void **state)
{
    (void)state;
    struct out r = RUN("ana", "init", "--name", "Ana");
    assert_int_equal(r.status, 0);
    out_free(&r);
    r = RUN("ana", "new", "Weekly");
    assert_int_equal(r.status, 0);
    snprintf(note, sizeof(note), "%.32s", r.out);
    out_free(&r);
    return 0;
}

/* The reproduction of issue 15: a title that retitles and clears the
 * terminal, and friends in a field, a tag, the body, an item. */
static void test_hostile_title_and_body(void **state)
{
    (void)state;
    ok(RUN("ana", "set", note, "title", "\x1b]0;pwned\a\x1b[2J"), 0, NULL);
    ok(RUN("ana", "set", note, "location", "Room \xc2\x9b" "2J 5\r"), 0, NULL);
    ok(RUN("ana", "set", note, "tags+", "t\x1b[8m"), 0, NULL);
    ok(RUN("ana", "append", note, "bell\a cr\r esc\x1b[31m tab\tend"), 0, NULL);
    ok(RUN("ana", "todo", note, "Book \x1b[8mthe room", "--owner", "R\x1b[2J"),
       0, NULL);
    ok(RUN("ana", "decide", note, "Ship \xe2\x80\xae" "it"), 0, NULL);
    ok(RUN("ana", "list"), 0, "\\x1b]0;pwned\\x07\\x1b[2J");
    ok(RUN("ana", "show", note), 0, "tab\tend"); /* \t kept in the body */
    ok(RUN("ana", "show", note), 0, "bell\\x07 cr\\x0d esc\\x1b[31m");
    ok(RUN("ana", "log", note), 0, "Ana (");
    ok(RUN("ana", "blame", note), 0, "bell\\x07");
    ok(RUN("ana", "decisions", note), 0, "Book \\x1b[8mthe room");
    ok(RUN("ana", "decisions"), 0, "\\x1b]0;pwned");
    ok(RUN("ana", "decisions", note), 0, "\\u202e"); /* bidi override */
    ok(RUN("ana", "verify", note), 0, "\\x1b]0;pwned");
    ok(RUN("ana", "verify"), 0, "all ok");
    ok(RUN("ana", "show", note, "--conflicts"), 0, NULL);
    {
        /* diff between the first change and now: the appended line. */
        struct out lg = RUN("ana", "log", note, "--json");
        /* the oldest change: the last "id" */
        const char *idp = NULL;
        for (const char *p = lg.out; (p = strstr(p, "\"id\": \"")); p++)
            idp = p;
        char first[13] = "";
        assert_non_null(idp);
        snprintf(first, sizeof(first), "%.12s", idp + 7);
        ok(RUN("ana", "diff", note, first), 0, "+bell\\x07 cr\\x0d");
        out_free(&lg);
    }
    ok(RUN("ana", "done", note, "Book"), 0, "Book \\x1b[8mthe room");
    /* Looked up by a hostile title, and not found by one: the argument is
     * shown escaped in the error. */
    ok(RUN("ana", "show", "nothing\x1b[2Jhere"), 1, "nothing\\x1b[2Jhere");
    ok(RUN("ana", "show", note, "--at", "\x1b[2J"), 1, "\\x1b[2J");
    /* JSON keeps the exact text (jansson escapes it). */
    struct out j = RUN("ana", "list", "--json");
    clean(j, 0, "\\u001B]0;pwned\\u0007");
    out_free(&j);
    /* A file name with ESC, in an error. */
    ok(RUN("ana", "import", "missing\x1b]0;x\a.md"), 1, "missing\\x1b]0;x\\x07.md");
}

/* Markdown with a hostile title and invalid UTF-8 in a file of that name. */
static void test_hostile_import(void **state)
{
    (void)state;
    char *p = test_path(work, "evil\x1b[2J.md");
    static const char md[] = "---\ntitle: \"Imp\\e[2J\\a\"\n---\n# Hi \x1b[5m\n";
    assert_int_equal(test_spit(p, md, sizeof(md) - 1), 0);
    struct out r = RUN("ana", "import", "evil\x1b[2J.md");
    clean(r, 0, NULL);
    char id[33];
    snprintf(id, sizeof(id), "%.32s", r.out);
    out_free(&r);
    ok(RUN("ana", "list"), 0, "Imp\\x1b[2J\\x07");
    ok(RUN("ana", "show", id), 0, "# Hi \\x1b[5m");
    static const char bad[] = "---\ntitle: x\n---\nbad \xff\xfe utf-8\n";
    assert_int_equal(test_spit(p, bad, sizeof(bad) - 1), 0);
    ok(RUN("ana", "import", "evil\x1b[2J.md"), 1, "evil\\x1b[2J.md");
    free(p);
}

/* ---- a peer's signed change, made with the library's internals ---- */

static void put_bytes(struct notes_buf *b, const void *p, size_t n)
{
    assert_int_equal(notes__buf_put_bytes(b, p, n), NOTES_OK);
}

/* A bundle file (note id, then a version-1 bundle) holding one signed
 * first change of a new note by `who` claiming `name`, with a title. */
static void peer_bundle(const char *file, notes_identity *who, const char *name,
                        const uint8_t doc[16])
{
    struct notes_buf c, f;
    notes__buf_init(&c, 1 << 20);
    assert_int_equal(notes__buf_put(&c, "NC\x01", 3), NOTES_OK);
    assert_int_equal(notes__buf_put(&c, doc, 16), NOTES_OK);
    assert_int_equal(notes__buf_put(&c, notes_identity_public_key(who), 32),
                     NOTES_OK);
    notes__buf_put_varint(&c, 1);             /* seq */
    notes__buf_put_varint(&c, 0);             /* deps */
    notes__buf_put_varint(&c, 1700000000000); /* time */
    notes__buf_put_varint(&c, 3);             /* ops */
    notes__buf_put_u8(&c, NOTES__K_NAME);
    put_bytes(&c, name, strlen(name));
    notes__buf_put_u8(&c, NOTES__K_SET);
    put_bytes(&c, "title", 5);
    put_bytes(&c, "From a peer", 11);
    notes__buf_put_u8(&c, NOTES__K_INS);
    notes__buf_put_varint(&c, 0);
    put_bytes(&c, "peer text\n", 10);
    size_t body = c.len;
    uint8_t sig[64];
    assert_int_equal(notes_identity_sign(who, c.data, body, sig), NOTES_OK);
    notes__buf_put_u8(&c, 1);
    assert_int_equal(notes__buf_put(&c, sig, 64), NOTES_OK);
    notes__buf_init(&f, 1 << 20);
    assert_int_equal(notes__buf_put(&f, doc, 16), NOTES_OK);
    assert_int_equal(notes__buf_put(&f, "NTB\x01", 4), NOTES_OK);
    notes__buf_put_varint(&f, 1);
    put_bytes(&f, c.data, c.len);
    char *p = test_path(work, file);
    assert_int_equal(test_spit(p, f.data, f.len), 0);
    free(p);
    notes__buf_release(&c);
    notes__buf_release(&f);
}

static void count_notes(size_t want)
{
    struct out r = RUN("ana", "list");
    size_t lines = 0;
    for (const char *q = r.out; *q; q++)
        lines += *q == '\n';
    if (lines != want)
        print_message("%s", r.out);
    assert_int_equal(lines, want);
    out_free(&r);
}

static void test_peer_names(void **state)
{
    (void)state;
    notes_identity *eve;
    uint8_t doc[16];
    assert_int_equal(notes_identity_generate("Eve", &eve), NOTES_OK);
    struct out before = RUN("ana", "list");
    size_t n = 0;
    for (const char *q = before.out; *q; q++)
        n += *q == '\n';
    out_free(&before);

    /* ESC in a signed name: refused by the decoder, nothing stored. */
    static const char *const hostile[] = {
        "Ana (mc3x-dn2y)\x1b[8m", "Eve\a", "Eve\r\nAna", "Eve \xc2\x9b\x38m",
        "Eve\x7f"};
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        memset(doc, (int)(0x40 + i), sizeof(doc));
        peer_bundle("hostile.bundle", eve, hostile[i], doc);
        ok(RUN("ana", "import", "hostile.bundle"), 2, "bad author name");
        count_notes(n);
    }

    /* A name that imitates a fingerprint: stored (it is a valid name) but
     * shown with its parentheses escaped, the real key after it. */
    char fpr[NOTES_FPR_STRLEN], want[128];
    notes_key_fingerprint(notes_identity_public_key(eve), fpr);
    memset(doc, 0x33, sizeof(doc));
    peer_bundle("mimic.bundle", eve, "Ana (mc3x-dn2y)", doc);
    ok(RUN("ana", "import", "mimic.bundle"), 0, "verified");
    count_notes(n + 1);
    snprintf(want, sizeof(want), "Ana \\(mc3x-dn2y\\) (%s, unknown key)", fpr);
    ok(RUN("ana", "log", "From a peer"), 0, want);
    ok(RUN("ana", "blame", "From a peer"), 0, want);
    ok(RUN("ana", "list"), 0, want);
    /* Look-alike parentheses too. */
    memset(doc, 0x34, sizeof(doc));
    peer_bundle("mimic2.bundle", eve, "Ana \xef\xbc\x88mc3x-dn2y\xef\xbc\x89", doc);
    ok(RUN("ana", "import", "mimic2.bundle"), 0, "verified");
    snprintf(want, sizeof(want), "Ana \\uff08mc3x-dn2y\\uff09 (%s, unknown key)",
             fpr);
    ok(RUN("ana", "log", "3434"), 0, want);
    /* A petname obeys the name rule too. */
    ok(RUN("ana", "trust", fpr, "Eve\x1b[2J"), 1, "without control characters");
    ok(RUN("ana", "trust", fpr, "Eve\xff"), 1, "without control characters");
    /* Once the user names the key, their name is shown as they wrote it. */
    ok(RUN("ana", "trust", fpr, "Eve (met at FOSDEM)"), 0, NULL);
    snprintf(want, sizeof(want), "Eve (met at FOSDEM) (%s)", fpr);
    ok(RUN("ana", "log", "3434"), 0, want);
    notes_identity_free(eve);
}

/* Import enforces its limit while reading: /dev/zero and a huge sparse
 * file are refused having read no more than the limit. */
static void test_import_bounded(void **state)
{
    (void)state;
    struct rusage ru;
    ok(RUN("ana", "import", "/dev/zero"), 1, "larger than 8388608 bytes");
    char *p = test_path(work, "sparse.md");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)4 << 30), 0);
    fclose(f);
    ok(RUN("ana", "import", "sparse.md"), 1, "larger than 8388608 bytes");
    unlink(p);
    free(p);
    /* The largest child so far (notes runs as a child of clirun): the
     * 8 MiB limit plus the program, not the file (the limit was 1 GiB,
     * and /dev/zero grew to 528 MB). Generous for sanitizer builds. */
    assert_int_equal(getrusage(RUSAGE_CHILDREN, &ru), 0);
    if (ru.ru_maxrss > 160L * 1024)
        print_message("max RSS of a child: %ld KiB\n", ru.ru_maxrss);
    assert_true(ru.ru_maxrss < 160L * 1024);
}

/* An unreadable log is a system error (3), said as such, not "no note
 * matches" (1) nor "verification problems" (2). A folder where the log
 * should be fails to read even for root (chmod 000 does not). */
static void test_unreadable_exit_3(void **state)
{
    (void)state;
    char rel[128];
    snprintf(rel, sizeof(rel), "ana/notes/%s.log", note);
    char *log = test_path(work, rel), *aside = test_path(work, "aside.log");
    assert_int_equal(rename(log, aside), 0);
    assert_int_equal(mkdir(log, 0700), 0);
    ok(RUN("ana", "show", "Weekly"), 3, "cannot read note");
    ok(RUN("ana", "show", note), 3, "cannot");
    ok(RUN("ana", "verify"), 3, "cannot be opened");
    ok(RUN("ana", "compact"), 3, NULL);
    ok(RUN("ana", "list"), 3, NULL);
    assert_int_equal(rmdir(log), 0);
    assert_int_equal(rename(aside, log), 0);
    ok(RUN("ana", "verify"), 0, "all ok");
    free(log);
    free(aside);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_title_and_body),
        cmocka_unit_test(test_hostile_import),
        cmocka_unit_test(test_peer_names),
        cmocka_unit_test(test_import_bounded),
        cmocka_unit_test(test_unreadable_exit_3),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    if (notes_init() != NOTES_OK)
        return 1;
    work = test_tmpdir("hostile");
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    test_rmtree(work);
    return rc;
}
