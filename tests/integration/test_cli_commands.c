/*
 * test_cli_commands.c: commands do what they say (issue 19): `set` on
 * list fields, field names whatever the case, datetime checked, the title
 * kept; import of the same file twice; one `notes serve` per replica; host
 * names as addresses; fingerprints and names in `peers`; the one line that
 * confirms a success (-q silences it); tables, plurals, suggestions; the
 * HTML export. Each runs the built `notes` (NOTES_BIN) in temporary homes.
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
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

static char *work;
static const char *bin;
static pid_t g_daemons[4]; /* killed and reaped by teardown_daemons */

static struct clirun_out run_env(const char *home, const char *stdin_text,
                          const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out c = clirun_va(work, home, NULL, stdin_text, arg0, ap);
    va_end(ap);
    assert_int_not_equal(c.status, -1);
    struct clirun_out r = {c.status, c.out, c.err};
    return r;
}

#define RUN(home, ...) run_env(home, NULL, __VA_ARGS__, NULL)

/* Exit 0 and print nothing on stdout (-q). */
static void silent(struct clirun_out r)
{
    clirun_expect(r, 0, NULL, NULL);
    if (*r.out)
        print_message("stdout: %s\n", r.out);
    assert_string_equal(r.out, "");
    clirun_free(&r);
}

static char *sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char rel[256];
    snprintf(rel, sizeof(rel), "samples/%s", name);
    return test_path(shared ? shared : "../shared", rel);
}

/* The number of changes `notes log` lists for the note. */
static size_t changes(const char *home, const char *note)
{
    char *log = clirun_stdout(RUN(home, "log", note));
    size_t n = 0;
    for (char *p = log; (p = strchr(p, '\n')); p++)
        n++;
    free(log);
    return n;
}

/* ---- set ---- */

static void test_set(void **state)
{
    (void)state;
    clirun_ok(RUN("set", "init", "--name", "Ana"), NULL);
    char *path = sample("community-2023-05-15.md");
    char *id = clirun_first_line(RUN("set", "import", path));
    free(path);
    json_error_t jerr;

    /* A list field given a value: the list becomes that value. */
    clirun_ok(RUN("set", "set", id, "participants", "Ana"), "participants is now Ana.");
    char *js = clirun_stdout(RUN("set", "show", id, "--json"));
    json_t *j = json_loads(js, 0, &jerr);
    assert_non_null(j);
    json_t *fm = json_object_get(j, "front_matter");
    json_t *p = json_object_get(fm, "participants");
    assert_int_equal(json_array_size(p), 1);
    assert_string_equal(json_string_value(json_array_get(p, 0)), "Ana");
    json_decref(j);
    free(js);
    clirun_ok(RUN("set", "set", id, "participants", "Ana", "Bo"), "is now Ana, Bo.");

    /* Field names match whatever the case: no second "Participants". */
    clirun_ok(RUN("set", "set", id, "Participants+", "Dana"), "added Dana to participants");
    js = clirun_stdout(RUN("set", "show", id, "--json"));
    j = json_loads(js, 0, &jerr);
    fm = json_object_get(j, "front_matter");
    assert_null(json_object_get(fm, "Participants"));
    assert_int_equal(json_array_size(json_object_get(fm, "participants")), 3);
    json_decref(j);
    free(js);
    clirun_ok(RUN("set", "set", id, "TITLE", "Community"), "title is now \"Community\"");

    /* Refused, and nothing recorded: a datetime that is not one, the
     * title removed, + on a scalar, removing what is not there. */
    size_t before = changes("set", id);
    clirun_fails(RUN("set", "set", id, "datetime", "next tuesday"), 1, "ISO 8601");
    clirun_fails(RUN("set", "set", id, "datetime", "2023-02-30"), 1, "ISO 8601");
    clirun_fails(RUN("set", "set", id, "title"), 1, "keeps its title");
    clirun_fails(RUN("set", "set", id, "title", ""), 1, "keeps its title");
    clirun_fails(RUN("set", "set", id, "title+", "x"), 1, "not a list");
    clirun_fails(RUN("set", "set", id, "participants-", "Nobody"), 1, "has no 'Nobody'");
    clirun_fails(RUN("set", "set", id, "nosuchfield"), 1, "no field");
    clirun_ok(RUN("set", "set", id, "participants+", "Dana"), "nothing to record");
    assert_int_equal(changes("set", id), before);
    clirun_ok(RUN("set", "show", "Community"), "title: \"Community\"");

    clirun_ok(RUN("set", "set", id, "datetime", "2024-02-29T10:00+01:00"),
       "datetime is now");
    clirun_ok(RUN("set", "set", id, "datetime", "2023-05-15"), NULL);
    clirun_ok(RUN("set", "set", id, "location"), "removed location");

    /* -q (before or after the command) leaves out the line. */
    silent(RUN("set", "set", id, "location", "Here", "-q"));
    silent(RUN("set", "-q", "set", id, "location", "There"));
    silent(RUN("set", "--quiet", "set", id, "tags+", "x"));
    free(id);
}

/* ---- import ---- */

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; (s = strchr(s, '\n')); s++)
        n++;
    return n;
}

static void test_import_twice(void **state)
{
    (void)state;
    clirun_ok(RUN("imp", "init", "--name", "Ana"), NULL);
    char *path = sample("kraft-2022-04-06.md");
    char *id = clirun_first_line(RUN("imp", "import", path));
    assert_int_equal(strlen(id), 32);
    /* The same file again: the note here is offered, nothing stored. */
    struct clirun_out r = RUN("imp", "import", path);
    clirun_expect(r, 0, id, "already here");
    assert_non_null(strstr(r.err, "--again"));
    clirun_free(&r);
    char *list = clirun_stdout(RUN("imp", "list"));
    assert_int_equal(lines(list), 1);
    free(list);
    /* --again makes the second copy on purpose. */
    char *id2 = clirun_first_line(RUN("imp", "import", "--again", path));
    assert_string_not_equal(id, id2);
    list = clirun_stdout(RUN("imp", "list"));
    assert_int_equal(lines(list), 2);
    free(list);
    /* Edited since, the note the file became is still offered (its first
     * change is the import), said so; nothing stored. */
    clirun_ok(RUN("imp", "set", id, "location", "Elsewhere"), NULL);
    clirun_ok(RUN("imp", "set", id2, "location", "Elsewhere"), NULL);
    r = RUN("imp", "import", path);
    clirun_expect(r, 0, NULL, "imported before and edited since");
    assert_true(strstr(r.out, id) || strstr(r.out, id2));
    clirun_free(&r);
    list = clirun_stdout(RUN("imp", "list"));
    assert_int_equal(lines(list), 2);
    free(list);
    /* A file that differs is a new note. */
    char *other = test_path(work, "other.md");
    assert_int_equal(test_spit(other, "# Another meeting\n", 18), 0);
    char *id3 = clirun_first_line(RUN("imp", "import", other));
    assert_string_not_equal(id3, id);
    assert_string_not_equal(id3, id2);
    free(other);
    clirun_fails(RUN("imp", "import", "--bogus"), 1, "usage");
    clirun_ok(RUN("imp", "help", "import"), "Markdown");
    free(id3);
    free(id2);
    free(id);
    free(path);
}

/* ---- serve ---- */

/* `notes serve` for replica `home` on an ephemeral loopback port, its
 * output in work/serve-HOME.out; returns its pid and the port (bounded
 * wait for it to listen), kept in g_daemons[slot] for the teardown. */
static pid_t start_serve(const char *home, int slot, const char *peer, int *port)
{
    char *home_path = test_path(work, home);
    char name[64];
    snprintf(name, sizeof(name), "serve-%s.out", home);
    char *out = test_path(work, name);
    unlink(out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fo, 2);
        setenv("NOTES_HOME", home_path, 1);
        unsetenv("NOTES_PASSPHRASE");
        if (peer)
            execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--no-ui",
                  "--no-discovery", "--no-relay", "--peer", peer, (char *)NULL);
        else
            execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--no-ui",
                  "--no-discovery", "--no-relay", (char *)NULL);
        _exit(127);
    }
    g_daemons[slot] = pid;
    *port = 0;
    for (int i = 0; i < 200 && !*port; i++) { /* at most 10 s */
        size_t n;
        char *text = (char *)test_slurp(out, &n);
        const char *p = text ? strstr(text, "listening on port ") : NULL;
        if (p)
            *port = atoi(p + 18);
        free(text);
        if (!*port)
            usleep(50 * 1000);
    }
    if (!*port) {
        size_t n;
        char *text = (char *)test_slurp(out, &n);
        print_message("serve said: %s\n", text ? text : "(nothing)");
        free(text);
    }
    assert_true(*port > 0);
    free(home_path);
    free(out);
    return pid;
}

static void stop_serve(int slot)
{
    int st;
    pid_t pid = g_daemons[slot];
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* at most 5 s, then kill */
        if (waitpid(pid, &st, WNOHANG) == pid) {
            g_daemons[slot] = 0;
            return;
        }
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    g_daemons[slot] = 0;
}

static int teardown_daemons(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        if (g_daemons[i] > 0) {
            kill(g_daemons[i], SIGKILL);
            waitpid(g_daemons[i], NULL, 0);
            g_daemons[i] = 0;
        }
    return 0;
}

static void test_serve_once(void **state)
{
    (void)state;
    clirun_ok(RUN("srv", "init", "--name", "Ana"), NULL);
    char *id = clirun_first_line(RUN("srv", "new", "Team meeting"));
    clirun_ok(RUN("srv", "space", "create", "team"), NULL);
    clirun_ok(RUN("srv", "space", "add", "team", id), NULL);
    int port;
    pid_t pid = start_serve("srv", 0, NULL, &port);
    /* A second daemon on the same replica is refused at once (it would
     * not get as far as listening), naming the running one. */
    char pidtext[32];
    snprintf(pidtext, sizeof(pidtext), "pid %ld", (long)pid);
    char *errf = test_path(work, "serve2.err");
    pid_t p2 = fork();
    assert_true(p2 >= 0);
    if (p2 == 0) {
        char *home_path = test_path(work, "srv");
        int fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fe, 1);
        dup2(fe, 2);
        setenv("NOTES_HOME", home_path, 1);
        execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--no-ui",
              "--no-discovery", "--no-relay", (char *)NULL);
        _exit(127);
    }
    g_daemons[1] = p2;
    int st = 0, done = 0;
    for (int i = 0; i < 200 && !done; i++) { /* at most 10 s */
        done = waitpid(p2, &st, WNOHANG) == p2;
        if (!done)
            usleep(50 * 1000);
    }
    size_t n;
    char *said = (char *)test_slurp(errf, &n);
    if (!done || !WIFEXITED(st) || WEXITSTATUS(st) != 1 ||
        !strstr(said, "already serves this replica") || !strstr(said, pidtext))
        fail_msg("a second serve %s: %s", done ? "ended" : "kept running",
                 said ? said : "");
    g_daemons[1] = 0;
    assert_null(strstr(said, "listening"));
    free(said);
    free(errf);
    stop_serve(0);
    free(id);
}

/* ---- host names ---- */

static void test_host_names(void **state)
{
    (void)state;
    clirun_ok(RUN("ha", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("hb", "init", "--name", "Bo"), NULL);
    char *id = clirun_first_line(RUN("ha", "new", "Team meeting"));
    clirun_ok(RUN("ha", "space", "create", "team"), NULL);
    clirun_ok(RUN("ha", "space", "add", "team", id), NULL);
    int port;
    start_serve("ha", 0, NULL, &port);
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%d", port);
    /* An invite naming the host, joined and synced by name. */
    char *code = clirun_first_line(RUN("ha", "invite", "team", "--address", addr));
    clirun_ok(RUN("hb", "join", code), "received 1");
    clirun_ok(RUN("hb", "append", id, "Bo: a point"), NULL);
    clirun_ok(RUN("hb", "sync", addr), "synced");
    clirun_ok(RUN("ha", "show", id), "Bo: a point");
    /* A name that does not resolve, and one that is no name: exit 1,
     * saying which. */
    clirun_fails(RUN("hb", "sync", "nosuchhost.invalid:7654"), 1, "cannot resolve host");
    clirun_fails(RUN("hb", "sync", "bad_name:7654"), 1, "must be HOST:PORT");
    stop_serve(0);
    free(code);
    free(id);
}

/* ---- fingerprints, names of peers ---- */

/* whoami --json of home: the device's fingerprint, or the person's. */
static char *fpr_of(const char *home, int person)
{
    char *js = clirun_stdout(RUN(home, "whoami", "--json"));
    json_error_t e;
    json_t *w = json_loads(js, 0, &e);
    assert_non_null(w);
    json_t *o = person ? json_object_get(w, "person") : w;
    char *f = strdup(json_string_value(json_object_get(o, "fingerprint")));
    json_decref(w);
    free(js);
    return f;
}

/* Wait (bounded) until `notes peers` of home lists `want` connected. */
static char *wait_peers(const char *home, const char *want)
{
    for (int i = 0; i < 200; i++) { /* at most 10 s */
        char *out = clirun_stdout(RUN(home, "peers"));
        if (strstr(out, want) && strstr(out, "connected"))
            return out;
        free(out);
        usleep(50 * 1000);
    }
    char *out = clirun_stdout(RUN(home, "peers"));
    print_message("peers of %s, waiting for '%s':\n%s", home, want, out);
    fail();
    return out;
}

static void test_peer_names(void **state)
{
    (void)state;
    clirun_ok(RUN("fa", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("fb", "init", "--name", "Bo"), NULL);
    char *id = clirun_first_line(RUN("fa", "new", "Team meeting"));
    clirun_ok(RUN("fa", "space", "create", "team"), NULL);
    clirun_ok(RUN("fa", "space", "add", "team", id), NULL);
    char *ana_dev = fpr_of("fa", 0), *ana = fpr_of("fa", 1);
    char *bo_dev = fpr_of("fb", 0), *bo = fpr_of("fb", 1);
    int pa, pb;
    start_serve("fa", 0, NULL, &pa);
    char addr[64], want[128];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", pa);
    char *code = clirun_first_line(RUN("fa", "invite", "team", "--address", addr));

    /* join: the inviter is named (the code came from them), and sync
     * names them as every other command does: the person's fingerprint,
     * then the device's. */
    snprintf(want, sizeof(want), "synced with Ana (%s, device %s) in space team",
             ana, ana_dev);
    struct clirun_out j = RUN("fb", "join", code);
    clirun_expect(j, 0, want, NULL);
    snprintf(want, sizeof(want), "the inviter is Ana (%s)", ana);
    assert_non_null(strstr(j.out, want));
    clirun_free(&j);
    char *log = clirun_stdout(RUN("fb", "log", id));
    snprintf(want, sizeof(want), "Ana (%s)", ana);
    assert_non_null(strstr(log, want));
    assert_null(strstr(log, "unknown key"));
    free(log);
    clirun_ok(RUN("fb", "trust"), "Ana");
    snprintf(want, sizeof(want), "synced with Ana (%s, device %s)", ana, ana_dev);
    clirun_ok(RUN("fb", "sync", addr), want);

    /* peers: Bo has written nothing yet; he is his device until then, and
     * a name given to that fingerprint (notes trust) is shown. */
    start_serve("fb", 1, addr, &pb);
    (void)pb;
    snprintf(want, sizeof(want), "device %s", bo_dev);
    free(wait_peers("fa", want));
    snprintf(want, sizeof(want), "Ana (%s, device %s)", ana, ana_dev);
    free(wait_peers("fb", want));
    clirun_ok(RUN("fa", "trust", bo_dev, "Bo (desk)"), NULL);
    snprintf(want, sizeof(want), "Bo (desk) (%s)", bo_dev);
    free(wait_peers("fa", want));
    /* Once Bo wrote in the space's notes, he is his person, as in log. */
    clirun_ok(RUN("fb", "append", id, "Bo: a point"), NULL);
    int arrived = 0;
    for (int i = 0; i < 200 && !arrived; i++) { /* at most 10 s */
        char *shown = clirun_stdout(RUN("fa", "show", id));
        arrived = strstr(shown, "Bo: a point") != NULL;
        free(shown);
        if (!arrived)
            usleep(50 * 1000);
    }
    assert_true(arrived);
    clirun_ok(RUN("fa", "trust", bo, "Bo"), NULL);
    snprintf(want, sizeof(want), "Bo (%s, device %s)", bo, bo_dev);
    free(wait_peers("fa", want));
    stop_serve(1);
    free(code);
    free(ana_dev);
    free(ana);
    free(bo_dev);
    free(bo);
    free(id);
    stop_serve(0);
}

/* ---- space show ---- */

static void test_space_show(void **state)
{
    (void)state;
    clirun_ok(RUN("sp", "init", "--name", "Ana"), NULL);
    char *md = test_path(work, "notitle.md");
    const char *text = "---\ntags: x\n---\nJust text\n";
    assert_int_equal(test_spit(md, text, strlen(text)), 0);
    char *id = clirun_first_line(RUN("sp", "import", md));
    clirun_ok(RUN("sp", "space", "create", "team"), NULL);
    clirun_ok(RUN("sp", "space", "add", "team", id), NULL);
    /* Here, without a title: "(untitled)" as in notes list. */
    struct clirun_out r = RUN("sp", "space", "show", "team");
    clirun_expect(r, 0, "(untitled)", NULL);
    assert_null(strstr(r.out, "not here yet"));
    clirun_free(&r);
    clirun_ok(RUN("sp", "space", "show", "team", "--json"), "\"here\": true");
    /* Confirmations of other commands go through cli_done too. */
    silent(RUN("sp", "space", "create", "other", "-q"));
    silent(RUN("sp", "-q", "space", "remove", "team", id));
    clirun_ok(RUN("sp", "space", "add", "other", id), "is in space other");
    free(id);
    free(md);
}

/* ---- confirmations, tables, plurals, suggestions ---- */

/* Code points before the n-th byte of s (every one of these is one
 * column wide). */
static size_t columns(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static void test_confirm_tables(void **state)
{
    (void)state;
    clirun_ok(RUN("tb", "init", "--name", "RăzvanD"), NULL);
    char *id1 = clirun_first_line(RUN("tb", "new", "Întâlnire cu RăzvanD"));
    char *id2 = clirun_first_line(RUN("tb", "new", "Meeting with Razvan"));
    /* notes list: the authors' column starts at one display column. */
    char *list = clirun_stdout(RUN("tb", "list"));
    char *l2 = strchr(list, '\n');
    assert_non_null(l2);
    *l2++ = 0;
    const char *a1 = strstr(list + 60, "RăzvanD ("), *a2 = strstr(l2 + 60, "RăzvanD (");
    assert_non_null(a1);
    assert_non_null(a2);
    assert_int_equal(columns(list, (size_t)(a1 - list)), columns(l2, (size_t)(a2 - l2)));
    free(list);

    /* Plurals. */
    struct clirun_out v = RUN("tb", "verify", id2);
    clirun_expect(v, 0, " 1 change, 1 author, ", NULL);
    assert_null(strstr(v.out, "1 changes"));
    clirun_free(&v);

    /* Exports to a file say so in one line; -q leaves it out; to stdout
     * nothing is added to the note. */
    clirun_ok(RUN("tb", "export", id1, "--format", "bundle", "-o", "w.bundle"),
       "wrote w.bundle: note ");
    clirun_ok(RUN("tb", "export", id1, "-o", "w.md"), "as Markdown");
    silent(RUN("tb", "export", id1, "--format", "bundle", "-o", "q.bundle", "-q"));
    struct clirun_out md = RUN("tb", "export", id1);
    clirun_expect(md, 0, "---\n", NULL);
    assert_null(strstr(md.out, "wrote"));
    clirun_free(&md);

    /* A typo finds the command; a short hex NOTE says why it is none. */
    clirun_fails(RUN("tb", "shwo", id1), 1, "did you mean: notes show?");
    clirun_fails(RUN("tb", "help", "lsit"), 1, "did you mean: notes list?");
    clirun_fails(RUN("tb", "show", "21"), 1, "4 or more hex digits");
    free(id1);
    free(id2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_import_twice),
        cmocka_unit_test(test_space_show),
        cmocka_unit_test(test_confirm_tables),
        cmocka_unit_test_teardown(test_serve_once, teardown_daemons),
        cmocka_unit_test_teardown(test_host_names, teardown_daemons),
        cmocka_unit_test_teardown(test_peer_names, teardown_daemons),
    };
    bin = getenv("NOTES_BIN");
    if (!bin) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("clicmd");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
