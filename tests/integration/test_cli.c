/*
 * test_cli.c: the `notes` binary driven as a user would: temporary
 * NOTES_HOMEs, every command, the error paths (unknown note, ambiguous
 * prefix, bad flag, unreadable file, missing identity, loose key file,
 * wrong passphrase, corrupted log) and --json output parsed back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

static const char *bin;
static char *work;

/* Run notes with NOTES_HOME=work/home and the given args (NULL-terminated). */
static struct clirun_out run_env(const char *home, const char *pass, const char *stdin_text,
                          const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out c = clirun_va(work, home, pass, stdin_text, arg0, ap);
    va_end(ap);
    assert_int_not_equal(c.status, -1);
    struct clirun_out r = {c.status, c.out, c.err};
    return r;
}

#define RUN(home, ...) run_env(home, NULL, NULL, __VA_ARGS__, NULL)

static void test_cli_workflow(void **state)
{
    (void)state;
    clirun_ok(RUN("ana", "init", "--name", "Ana"), "identity Ana");
    clirun_fails(RUN("ana", "init", "--name", "Ana"), 1, "already holds an identity");
    clirun_ok(RUN("ana", "whoami"), "Ana\nkey nk");
    json_t *who = clirun_json(RUN("ana", "whoami", "--json"));
    assert_string_equal(json_string_value(json_object_get(who, "name")), "Ana");
    assert_int_equal(strlen(json_string_value(json_object_get(who, "key"))), 54);
    json_decref(who);

    char *id = clirun_first_line(RUN("ana", "new", "Weekly sync"));
    assert_int_equal(strlen(id), 32);
    char *id2 = clirun_first_line(RUN("ana", "new", "Retro"));
    clirun_ok(RUN("ana", "append", "weekly", "RD: book the room"), NULL);
    clirun_ok(run_env("ana", NULL, "Everyone: read the draft\n", "append", id, "-", NULL),
       NULL);
    clirun_ok(RUN("ana", "set", "weekly", "location", "Online, Discord"), NULL);
    clirun_ok(RUN("ana", "set", "weekly", "participants+", "Marco"), NULL);
    clirun_ok(RUN("ana", "set", "weekly", "participants-", "Ana"), NULL);
    struct clirun_out show = RUN("ana", "show", "weekly");
    clirun_expect(show, 0, "title: Weekly sync\n", NULL);
    assert_non_null(strstr(show.out, "location: \"Online, Discord\"\n") ?
                    strstr(show.out, "location") : strstr(show.out, "location: Online"));
    assert_non_null(strstr(show.out, "participants:\n  - Marco\n"));
    assert_null(strstr(show.out, "  - Ana\n"));
    assert_non_null(strstr(show.out, "## TODOs and Decisions\n"));
    assert_non_null(strstr(show.out, "\nRD: book the room\n\nEveryone: read the draft\n"));
    clirun_free(&show);

    json_t *j = clirun_json(RUN("ana", "show", "weekly", "--json"));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j, "front_matter"), "title")),
                        "Weekly sync");
    assert_non_null(strstr(json_string_value(json_object_get(j, "text")), "RD: book"));
    json_decref(j);

    json_t *list = clirun_json(RUN("ana", "list", "--json"));
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    clirun_ok(RUN("ana", "list"), "Weekly sync");

    json_t *log = clirun_json(RUN("ana", "log", "weekly", "--json"));
    assert_int_equal(json_array_size(log), 6);
    const char *oldest = json_string_value(json_object_get(json_array_get(log, 5), "id"));
    char at[13];
    snprintf(at, sizeof(at), "%.12s", oldest);
    json_decref(log);
    struct clirun_out old = RUN("ana", "show", "weekly", "--at", at);
    clirun_expect(old, 0, "## Agenda", NULL);
    assert_null(strstr(old.out, "RD: book"));
    clirun_free(&old);
    clirun_ok(RUN("ana", "blame", "weekly"), "Ana (");
    clirun_ok(RUN("ana", "diff", "weekly", at), "+RD: book the room\n");
    json_t *df = clirun_json(RUN("ana", "diff", "weekly", at, "--json"));
    assert_non_null(strstr(json_string_value(json_object_get(df, "diff")), "@@"));
    json_decref(df);
    clirun_fails(RUN("ana", "diff", "weekly", "zzzz"), 1, "cannot use version");
    json_t *bl = clirun_json(RUN("ana", "blame", "weekly", "--json"));
    assert_true(json_array_size(bl) >= 5);
    json_decref(bl);
    clirun_ok(RUN("ana", "verify"), "all ok");
    json_t *v = clirun_json(RUN("ana", "verify", "--json"));
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
    clirun_ok(RUN("ana", "help"), "commands:");
    clirun_ok(RUN("ana", "help", "set"), "participants+");
    clirun_ok(RUN("ana", "set", "--help"), "usage: notes set");

    /* Exchange with a second replica, concurrent edits, convergence. */
    char *bundle = test_path(work, "w.bundle");
    clirun_ok(RUN("ana", "export", id, "--format", "bundle", "-o", bundle), NULL);
    clirun_ok(RUN("bo", "init", "--name", "Bo"), NULL);
    clirun_ok(RUN("bo", "import", bundle), "verified");
    clirun_ok(RUN("ana", "append", id, "Ana was here"), NULL);
    clirun_ok(RUN("bo", "append", id, "Bo was here"), NULL);
    clirun_ok(RUN("bo", "set", id, "title", "Weekly sync (Bo)"), NULL);
    clirun_ok(RUN("ana", "export", id, "--format", "bundle", "-o", bundle), NULL);
    clirun_ok(RUN("bo", "import", bundle), NULL);
    clirun_ok(RUN("bo", "export", id, "--format", "bundle", "-o", bundle), NULL);
    clirun_ok(RUN("ana", "import", bundle), NULL);
    struct clirun_out a = RUN("ana", "show", id), b = RUN("bo", "show", id);
    clirun_expect(a, 0, "Ana was here", NULL);
    clirun_expect(b, 0, "Bo was here", NULL);
    assert_string_equal(a.out, b.out);
    clirun_free(&a);
    clirun_free(&b);
    clirun_ok(RUN("bo", "log", id), "Ana (");
    clirun_ok(RUN("bo", "verify", id), "ok");
    clirun_ok(RUN("bo", "compact"), "compacted");
    clirun_ok(RUN("bo", "verify", id), "ok");
    struct clirun_out c2 = RUN("bo", "show", id);
    clirun_expect(c2, 0, "Bo was here", NULL);
    clirun_free(&c2);
    char *md = test_path(work, "w.md");
    clirun_ok(RUN("bo", "export", id, "-o", md), NULL);
    size_t mdn;
    char *mdtext = (char *)test_slurp(md, &mdn);
    assert_non_null(strstr(mdtext, "Bo was here"));
    free(mdtext);
    free(md);
    free(bundle);
    free(id);
    free(id2);
}

static void test_cli_errors(void **state)
{
    (void)state;
    /* Missing identity. */
    clirun_fails(RUN("nobody", "list"), 1, "notes init");
    clirun_fails(RUN("nobody", "whoami"), 1, "no replica");
    clirun_ok(RUN("eve", "init", "--name", "Eve"), NULL);
    char *x = clirun_first_line(RUN("eve", "new", "Alpha meeting"));
    char *y = clirun_first_line(RUN("eve", "new", "Alpha review"));
    /* Unknown, ambiguous, bad flag, unknown command. */
    clirun_fails(RUN("eve", "show", "zzzz"), 1, "no note matches 'zzzz'");
    clirun_fails(RUN("eve", "show", "alpha"), 1, "matches 2 notes");
    char prefix[2] = {x[0], 0};
    (void)prefix;
    clirun_fails(RUN("eve", "show", "--bogus"), 1, "usage: notes show");
    clirun_fails(RUN("eve", "frobnicate"), 1, "not a command");
    clirun_fails(RUN("eve", "set", "alpha meeting"), 1, "usage");
    clirun_fails(RUN("eve", "export", "alpha meeting", "--format", "pdf"), 1, "unknown format");
    /* Unreadable and bogus import files. */
    clirun_fails(RUN("eve", "import", "/nonexistent/file"), 1, "cannot read");
    char *junk = test_path(work, "junk.bundle");
    test_spit(junk, "---\ntitle: ok\n---\nnot UTF-8: \xff\xfe\n", 33);
    clirun_fails(RUN("eve", "import", junk), 1, "junk.bundle:4:");
    /* A forged bundle: valid header, one byte flipped in the changes. */
    clirun_ok(RUN("eve", "export", x, "--format", "bundle", "-o", junk), NULL);
    size_t n;
    unsigned char *bytes = test_slurp(junk, &n);
    bytes[n - 70] ^= 1;
    test_spit(junk, bytes, n);
    clirun_ok(RUN("fay", "init", "--name", "Fay"), NULL);
    clirun_fails(RUN("fay", "import", junk), 2, "nothing from this bundle was stored");
    json_t *fl = clirun_json(RUN("fay", "list", "--json"));
    assert_int_equal(json_array_size(fl), 0);
    json_decref(fl);
    free(bytes);
    free(junk);
    /* Out-of-range --at. */
    clirun_fails(RUN("eve", "show", x, "--at", "ffffffffff"), 1, "no change");
    /* A corrupted log: damage reported, exit 2. */
    char path[4200];
    snprintf(path, sizeof(path), "%s/eve/notes/%s.log", work, x);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    unsigned char *log = test_slurp(path, &n);
    log[n - 10] ^= 0xff;
    test_spit(path, log, n);
    free(log);
    clirun_fails(RUN("eve", "verify"), 2, "record checksum mismatch");
    /* Loose key file permissions. */
    snprintf(path, sizeof(path), "%s/eve/identity", work);
    chmod(path, 0644);
    clirun_fails(RUN("eve", "append", y, "text"), 1, "chmod 600");
    chmod(path, 0600);
    clirun_ok(RUN("eve", "append", y, "text"), NULL);
    free(x);
    free(y);
}

/* notes edit with a scripted editor, including a change that arrives while
 * the editor is open: both survive. */
static void test_cli_edit(void **state)
{
    (void)state;
    clirun_ok(RUN("ed", "init", "--name", "Ed"), NULL);
    char *id = clirun_first_line(RUN("ed", "new", "Edit me"));
    char *script = test_path(work, "editor.sh");
    char body[8192];
    /* The fake editor: meanwhile another command appends to the note; then
     * it replaces "## Discussions" and adds a line at the end. */
    snprintf(body, sizeof(body),
             "#!/bin/sh\n"
             "NOTES_HOME='%s/ed' '%s' append '%s' 'Concurrent line' >/dev/null || exit 3\n"
             "sed -i 's/## Discussions/## Discussion points/' \"$1\" || exit 4\n"
             "printf 'Typed in the editor\\n' >> \"$1\"\n",
             work, bin, id);
    test_spit(script, body, strlen(body));
    chmod(script, 0755);
    setenv("EDITOR", script, 1);
    unsetenv("VISUAL");
    clirun_ok(RUN("ed", "edit", id), "recorded");
    struct clirun_out r = RUN("ed", "show", id);
    clirun_expect(r, 0, "## Discussion points\n", NULL);
    assert_non_null(strstr(r.out, "Concurrent line\n"));
    assert_non_null(strstr(r.out, "Typed in the editor\n"));
    assert_null(strstr(r.out, "## Discussions\n"));
    clirun_free(&r);
    /* Saving unchanged records nothing. */
    setenv("EDITOR", "true", 1);
    json_t *before = clirun_json(RUN("ed", "log", id, "--json"));
    clirun_ok(RUN("ed", "edit", id), "no change");
    json_t *after = clirun_json(RUN("ed", "log", id, "--json"));
    assert_int_equal(json_array_size(before), json_array_size(after));
    json_decref(before);
    json_decref(after);
    /* A failing editor records nothing. */
    setenv("EDITOR", "false", 1);
    clirun_fails(RUN("ed", "edit", id), 1, "failed; nothing recorded");
    unsetenv("EDITOR");
    clirun_ok(RUN("ed", "verify"), "all ok");
    free(script);
    free(id);
}

static void test_cli_sections(void **state)
{
    (void)state;
    clirun_ok(RUN("sec", "init", "--name", "Sec"), NULL);
    char *id = clirun_first_line(RUN("sec", "new", "Sections"));
    clirun_ok(RUN("sec", "append", id, "--section", "agenda", "* Release plan"), NULL);
    clirun_ok(RUN("sec", "decide", id, "Ship 1.0 on Friday", "--owner", "Everyone"), NULL);
    clirun_ok(RUN("sec", "decide", id, "Next meeting: Monday"), NULL);
    clirun_ok(RUN("sec", "todo", id, "Book the room", "--owner", "RD"), NULL);
    clirun_ok(RUN("sec", "todo", id, "Write the notes", "--owner", "AJ"), NULL);
    struct clirun_out r = RUN("sec", "show", id);
    clirun_expect(r, 0, "## Agenda\n\n* Release plan\n\n## Discussions\n", NULL);
    assert_non_null(strstr(r.out, "## TODOs and Decisions\n\nEveryone: Decision: Ship 1.0 on Friday\n\n"
                                  "Next meeting: Monday\n\n"
                                  "- [ ] RD: Book the room\n- [ ] AJ: Write the notes\n"));
    clirun_free(&r);
    clirun_fails(RUN("sec", "append", id, "--section", "nope", "x"), 1, "no section 'nope'");
    clirun_fails(RUN("sec", "todo", id, "No owner"), 1, "usage");
    /* A note without a decisions section gets one. */
    clirun_ok(RUN("sec", "set", id, "title", "Sections"), NULL);
    free(id);
}

/* Start `notes serve` for replica `home` on an ephemeral loopback port;
 * returns its pid and the port (bounded wait for it to listen). */
static pid_t start_serve(const char *home, int *port)
{
    char *home_path = test_path(work, home);
    char *out = test_path(work, "serve.out");
    unlink(out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fo, 2);
        setenv("NOTES_HOME", home_path, 1);
        execl(bin, bin, "serve", "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
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
    assert_true(*port > 0);
    free(home_path);
    free(out);
    return pid;
}

static void stop_serve(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* at most 5 s, then kill */
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

/* Three peers and a relay over real processes on 127.0.0.1. */
static void test_cli_sync(void **state)
{
    (void)state;
    clirun_ok(RUN("pa", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("pb", "init", "--name", "Bo"), NULL);
    clirun_ok(RUN("pc", "init", "--name", "Cy"), NULL);
    clirun_ok(RUN("pd", "init", "--name", "Dee"), NULL);
    char *id = clirun_first_line(RUN("pa", "new", "Team meeting"));
    clirun_ok(RUN("pa", "space", "create", "team"), "created space team");
    clirun_ok(RUN("pa", "space", "add", "team", id), "is in space team");
    char *personal = clirun_first_line(RUN("pa", "new", "Private diary"));
    int port;
    pid_t srv = start_serve("pa", &port);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    char *code = clirun_first_line(RUN("pa", "invite", "team", "--address", addr));
    clirun_ok(RUN("pb", "join", code), "received 1");
    clirun_ok(RUN("pc", "join", code), "received 1");
    /* All three edit the same paragraph concurrently. */
    clirun_ok(RUN("pa", "append", id, "--section", "discussions", "Ana: first point"), NULL);
    clirun_ok(RUN("pb", "append", id, "--section", "discussions", "Bo: second point"), NULL);
    clirun_ok(RUN("pc", "append", id, "--section", "discussions", "Cy: third point"), NULL);
    clirun_ok(RUN("pc", "set", id, "title", "Team meeting (Cy)"), NULL);
    clirun_ok(RUN("pb", "sync", addr), "synced");
    clirun_ok(RUN("pc", "sync", addr), "synced");
    clirun_ok(RUN("pb", "sync", addr), "synced"); /* Cy's edit reaches Bo via Ana */
    /* Nothing new since: the sync reads no log, on Bo's side at least
     * (the versions cache answers for the note). */
    clirun_ok(RUN("pb", "sync", addr, "--json"), "\"notes_opened\":0");
    struct clirun_out a = RUN("pa", "show", id), b = RUN("pb", "show", id),
               c = RUN("pc", "show", id);
    clirun_expect(a, 0, "Cy: third point", NULL);
    assert_string_equal(a.out, b.out);
    assert_string_equal(a.out, c.out);
    assert_non_null(strstr(a.out, "Ana: first point"));
    assert_non_null(strstr(a.out, "Bo: second point"));
    assert_non_null(strstr(a.out, "title: Team meeting (Cy)"));
    clirun_free(&a);
    clirun_free(&b);
    clirun_free(&c);
    clirun_ok(RUN("pb", "log", id), "Cy (");
    clirun_ok(RUN("pa", "verify"), "all ok");
    clirun_ok(RUN("pb", "verify"), "all ok");
    clirun_ok(RUN("pc", "verify"), "all ok");
    /* The personal note never left Ana's replica. */
    clirun_fails(RUN("pb", "show", personal), 1, "no note matches");
    /* A peer with a space of the same name but another secret: refused
     * before any note data moves. The server says nothing (by design),
     * which a client cannot tell from a busy server: retried, then exit
     * 3 saying both are possible. */
    clirun_ok(RUN("pd", "space", "create", "team"), NULL);
    char *did = clirun_first_line(RUN("pd", "new", "Intruder"));
    clirun_ok(RUN("pd", "space", "add", "team", did), NULL);
    clirun_fails(RUN("pd", "sync", addr), 3, "not in this space");
    clirun_fails(RUN("pa", "show", "Intruder"), 1, "no note matches");
    json_t *dl = clirun_json(RUN("pd", "list", "--json"));
    assert_int_equal(json_array_size(dl), 1);
    json_decref(dl);
    /* Malformed invite codes are refused. */
    clirun_fails(RUN("pd", "join", "notes1thisisnotacode"), 1, NULL);
    stop_serve(srv);
    free(did);
    free(code);
    free(personal);
    free(id);
}

/* ---- discovery, notes peers, progress ---- */

static pid_t g_daemons[3]; /* killed and reaped by teardown_daemons */

static int teardown_daemons(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        if (g_daemons[i] > 0) {
            kill(g_daemons[i], SIGKILL);
            waitpid(g_daemons[i], NULL, 0);
            g_daemons[i] = 0;
        }
    return 0;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* `notes serve` for `home` on an ephemeral loopback port, discovering on
 * UDP `udp` (announcing to 127.255.255.255 every 200 ms); output in
 * work/serve-HOME.out. Returns its pid; OUT *port (bounded wait). */
static pid_t start_discovering(const char *home, int udp, int *port)
{
    char *home_path = test_path(work, home), name[64], ports[16], to[64];
    snprintf(name, sizeof(name), "serve-%s.out", home);
    char *out = test_path(work, name);
    snprintf(ports, sizeof(ports), "%d", udp);
    snprintf(to, sizeof(to), "127.255.255.255:%d", udp);
    unlink(out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fo, 2);
        setenv("NOTES_HOME", home_path, 1);
        execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--discovery-port",
              ports, "--announce-to", to, "--announce-interval", "200",
              (char *)NULL);
        _exit(127);
    }
    *port = 0;
    for (double t0 = mono_ms(); !*port && mono_ms() - t0 < 10000;) {
        size_t n;
        char *text = (char *)test_slurp(out, &n);
        const char *p = text ? strstr(text, "listening on port ") : NULL;
        if (p)
            *port = atoi(p + 18);
        free(text);
        if (!*port)
            usleep(20 * 1000);
    }
    if (!*port) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    assert_true(*port > 0);
    free(home_path);
    free(out);
    return pid;
}

/* Run notes with stderr on a pseudo-terminal (stdout to a file): what a
 * user sees. Bounded: 30 s. */
static struct clirun_out run_pty(const char *home, const char *a1, const char *a2)
{
    int master, slave;
    char *home_path = test_path(work, home), *o = test_path(work, "stdout");
    struct clirun_out r = {0, NULL, NULL};
    size_t len = 0, cap = 1 << 16;
    assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open("/dev/null", O_RDONLY);
        setsid();
        dup2(fo, 1);
        dup2(slave, 2);
        dup2(fi, 0);
        close(master);
        setenv("NOTES_HOME", home_path, 1);
        setenv("NO_COLOR", "1", 1);
        unsetenv("NOTES_PASSPHRASE");
        execl(bin, bin, a1, a2, (char *)NULL);
        _exit(127);
    }
    close(slave);
    r.err = malloc(cap);
    assert_non_null(r.err);
    for (double t0 = mono_ms(); mono_ms() - t0 < 30000;) {
        struct pollfd pf = {.fd = master, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if (len + 1 >= cap) {
            cap *= 2;
            r.err = realloc(r.err, cap);
            assert_non_null(r.err);
        }
        ssize_t n = read(master, r.err + len, cap - len - 1);
        if (n <= 0)
            break; /* EIO once the child has closed the terminal */
        len += (size_t)n;
    }
    r.err[len] = '\0';
    close(master);
    int st;
    double t0 = mono_ms();
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (mono_ms() - t0 > 5000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(10 * 1000);
    }
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = (char *)test_slurp(o, &len);
    free(home_path);
    free(o);
    return r;
}

/* `notes peers --json` of home; a peer of `fpr` in state `state` (NULL:
 * any), or NULL. *peers_out: the whole answer (decref). */
static json_t *peer_entry(const char *home, const char *fpr, const char *state,
                          json_t **whole)
{
    json_t *j = clirun_json(RUN(home, "peers", "--json"));
    json_t *arr = json_object_get(j, "peers");
    *whole = j;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        const char *f = json_string_value(json_object_get(e, "fingerprint"));
        const char *s = json_string_value(json_object_get(e, "state"));
        if (f && strcmp(f, fpr) == 0 && (!state || (s && strcmp(s, state) == 0)))
            return e;
    }
    return NULL;
}

static int wait_peer(const char *home, const char *fpr, const char *state,
                     double ms)
{
    for (double t0 = mono_ms(); mono_ms() - t0 < ms;) {
        json_t *whole;
        int ok = peer_entry(home, fpr, state, &whole) != NULL;
        json_decref(whole);
        if (ok)
            return 1;
        usleep(50 * 1000);
    }
    return 0;
}

static int wait_show(const char *home, const char *id, const char *want, double ms)
{
    for (double t0 = mono_ms(); mono_ms() - t0 < ms;) {
        struct clirun_out r = RUN(home, "show", id);
        int ok = r.status == 0 && strstr(r.out, want);
        clirun_free(&r);
        if (ok)
            return 1;
        usleep(50 * 1000);
    }
    return 0;
}

static char *fingerprint(const char *home)
{
    json_t *w = clirun_json(RUN(home, "whoami", "--json"));
    char *f = strdup(json_string_value(json_object_get(w, "fingerprint")));
    json_decref(w);
    return f;
}

/* Two daemons with no --peer find each other on 127.0.0.1 and converge;
 * a daemon of another space (same name, other secret) stays out; notes
 * peers shows who is connected and says when no daemon runs; notes join
 * and notes sync show progress on a terminal only. */
static void test_cli_discovery(void **state)
{
    (void)state;
    pid_t sa, sb, sc;
    int pa, pb, pc, udp, ufd;
    clirun_ok(RUN("da", "init", "--name", "Ana"), NULL);
    clirun_ok(RUN("db", "init", "--name", "Bo"), NULL);
    clirun_ok(RUN("dc", "init", "--name", "Cy"), NULL);
    char *id = clirun_first_line(RUN("da", "new", "Discovered meeting"));
    clirun_ok(RUN("da", "space", "create", "team"), NULL);
    clirun_ok(RUN("da", "space", "add", "team", id), NULL);
    /* ~300 KB that zstd cannot shrink much: several 64 KiB chunks. */
    {
        size_t n = 8000 * 72 + 1;
        char *big = malloc(n), *p = big;
        unsigned x = 12345;
        assert_non_null(big);
        for (int i = 0; i < 8000; i++) {
            for (int k = 0; k < 8; k++) {
                x = x * 1103515245u + 12345u;
                p += sprintf(p, "%08x%c", x ^ (x >> 16) * 2654435761u, k == 7 ? '\n' : ' ');
            }
        }
        clirun_ok(run_env("da", NULL, big, "append", id, "-", NULL), NULL);
        free(big);
    }
    /* One UDP port for all three (SO_REUSEADDR), held meanwhile. */
    {
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        int one = 1;
        ufd = socket(AF_INET, SOCK_DGRAM, 0);
        assert_true(ufd >= 0);
        setsockopt(ufd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        assert_int_equal(bind(ufd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(ufd, (struct sockaddr *)&a, &al), 0);
        udp = ntohs(a.sin_port);
    }
    g_daemons[0] = sa = start_discovering("da", udp, &pa);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", pa);
    char *code = clirun_first_line(RUN("da", "invite", "team", "--address", addr));
    /* Joining on a terminal: a progress line, finished with a newline. */
    struct clirun_out j = run_pty("db", "join", code);
    if (j.status != 0 || !strstr(j.err, "\rreceiving ") || !strstr(j.err, "\rreceived "))
        print_message("join: status %d\nstdout: %s\nstderr: %s\n", j.status, j.out, j.err);
    assert_int_equal(j.status, 0);
    assert_non_null(strstr(j.out, "received 2"));
    assert_non_null(strstr(j.err, "\rreceiving "));
    assert_non_null(strstr(j.err, " KiB / "));
    {
        char want[64];
        snprintf(want, sizeof(want), "\rreceived %.8s ", id);
        const char *fin = strstr(j.err, want);
        assert_non_null(fin);
        assert_non_null(strchr(fin, '\n'));
    }
    clirun_free(&j);
    /* Not a terminal: no progress at all. */
    clirun_ok(RUN("da", "append", id, "one more line"), NULL);
    struct clirun_out q = RUN("db", "sync", addr);
    clirun_expect(q, 0, "received 1", NULL);
    assert_null(strstr(q.err, "receiv"));
    clirun_free(&q);

    char *fa = fingerprint("da"), *fb = fingerprint("db"), *fc = fingerprint("dc");
    g_daemons[1] = sb = start_discovering("db", udp, &pb);
    /* No --peer given: they find each other. */
    assert_true(wait_peer("da", fb, "connected", 10000));
    assert_true(wait_peer("db", fa, "connected", 10000));
    struct clirun_out pt = RUN("db", "peers");
    clirun_expect(pt, 0, "daemon running", NULL);
    {
        /* Ana as everywhere (her person's fingerprint), then the device
         * that is connected. */
        char want[64];
        snprintf(want, sizeof(want), ", device %s)", fa);
        assert_non_null(strstr(pt.out, "Ana ("));
        if (!strstr(pt.out, want) || !strstr(pt.out, "connected"))
            print_message("%s", pt.out);
        assert_non_null(strstr(pt.out, want));
        assert_non_null(strstr(pt.out, "connected"));
        assert_non_null(strstr(pt.out, "team"));
    }
    clirun_free(&pt);
    /* Edits on both sides meet. */
    clirun_ok(RUN("da", "append", id, "Ana via discovery"), NULL);
    clirun_ok(RUN("db", "append", id, "Bo via discovery"), NULL);
    assert_true(wait_show("da", id, "Bo via discovery", 10000));
    assert_true(wait_show("db", id, "Ana via discovery", 10000));
    {
        struct clirun_out x = RUN("da", "show", id), y = RUN("db", "show", id);
        assert_string_equal(x.out, y.out);
        clirun_free(&x);
        clirun_free(&y);
    }

    /* Another "team" (another secret): heard as noise, never a peer. */
    clirun_ok(RUN("dc", "space", "create", "team"), NULL);
    char *cid = clirun_first_line(RUN("dc", "new", "Other team's note"));
    clirun_ok(RUN("dc", "space", "add", "team", cid), NULL);
    g_daemons[2] = sc = start_discovering("dc", udp, &pc);
    for (double t0 = mono_ms();; usleep(50 * 1000)) {
        json_t *w = clirun_json(RUN("da", "peers", "--json"));
        json_int_t foreign = json_integer_value(
            json_object_get(json_object_get(w, "datagrams"), "foreign"));
        json_decref(w);
        if (foreign >= 3)
            break;
        assert_true(mono_ms() - t0 < 10000);
    }
    {
        json_t *w = clirun_json(RUN("dc", "peers", "--json"));
        assert_int_equal(json_array_size(json_object_get(w, "peers")), 0);
        assert_true(json_integer_value(json_object_get(
                        json_object_get(w, "datagrams"), "foreign")) > 0);
        json_decref(w);
        json_t *whole;
        assert_null(peer_entry("da", fc, NULL, &whole));
        assert_int_equal(json_array_size(json_object_get(whole, "peers")), 1);
        json_decref(whole);
    }
    clirun_fails(RUN("db", "show", "Other team"), 1, "no note matches");

    /* B's daemon stops: notes peers says so and lists what it knew. */
    stop_serve(sb);
    g_daemons[1] = 0;
    struct clirun_out off = RUN("db", "peers");
    clirun_expect(off, 0, "no daemon is running", NULL);
    assert_non_null(strstr(off.out, fa));
    assert_non_null(strstr(off.out, "offline"));
    clirun_free(&off);
    {
        json_t *whole, *e = peer_entry("db", fa, "offline", &whole);
        assert_non_null(e);
        assert_false(json_is_true(json_object_get(json_object_get(whole, "daemon"),
                                                  "running")));
        json_decref(whole);
    }
    assert_true(wait_peer("da", fb, NULL, 1000));
    for (double t0 = mono_ms();; usleep(50 * 1000)) {
        json_t *whole;
        int still = peer_entry("da", fb, "connected", &whole) != NULL;
        json_decref(whole);
        if (!still)
            break;
        assert_true(mono_ms() - t0 < 10000);
    }
    stop_serve(sc);
    g_daemons[2] = 0;
    stop_serve(sa);
    g_daemons[0] = 0;
    clirun_fails(RUN("nobody2", "peers"), 1, "no replica");
    clirun_ok(RUN("dc", "peers"), "no daemon is running");
    close(ufd);
    (void)pb;
    (void)pc;
    free(fa);
    free(fb);
    free(fc);
    free(cid);
    free(code);
    free(id);
}

static char *sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char rel[256];
    snprintf(rel, sizeof(rel), "samples/%s", name);
    return test_path(shared ? shared : "../shared", rel);
}

/* Markdown in and out, decisions, templates, JSON and HTML. */
static void test_cli_formats(void **state)
{
    (void)state;
    clirun_ok(RUN("fm", "init", "--name", "RăzvanD"), NULL);
    char *path = sample("community-2023-05-15.md");
    char *id = clirun_first_line(RUN("fm", "import", path));
    assert_int_equal(strlen(id), 32);
    size_t n, m;
    char *orig = (char *)test_slurp(path, &n);
    struct clirun_out e = RUN("fm", "export", id);
    clirun_expect(e, 0, NULL, NULL);
    assert_string_equal(e.out, orig); /* byte for byte */
    clirun_free(&e);
    /* One field edit changes one line. */
    clirun_ok(RUN("fm", "set", id, "tags+", "hackathon"), NULL);
    char *out = test_path(work, "c.md");
    clirun_ok(RUN("fm", "export", id, "-o", out), NULL);
    char *after = (char *)test_slurp(out, &m);
    assert_non_null(strstr(after, "\ntags: unikraft, community, hackathon\n"));
    assert_int_equal(m, n + strlen(", hackathon"));
    free(after);
    /* Decisions: five items in the sample, owners resolved. */
    json_t *d = clirun_json(RUN("fm", "decisions", id, "--json"));
    assert_int_equal(json_array_size(d), 5);
    int rd = 0, everyone = 0, none = 0;
    for (size_t i = 0; i < 5; i++) {
        json_t *it = json_array_get(d, i);
        const char *o = json_string_value(json_object_get(it, "owner"));
        rd += o && strcmp(o, "RăzvanD") == 0;
        everyone += o && strcmp(o, "Everyone") == 0;
        none += o == NULL;
        assert_true(json_is_true(json_object_get(it, "verified")));
        assert_non_null(strstr(json_string_value(json_object_get(it, "recorded_by")),
                               "RăzvanD ("));
    }
    assert_int_equal(rd, 2);
    assert_int_equal(everyone, 2);
    assert_int_equal(none, 1);
    json_decref(d);
    clirun_ok(RUN("fm", "decisions", id), "recorded by RăzvanD");
    /* An action item, then done; the open list across notes follows. */
    clirun_ok(RUN("fm", "todo", id, "Book the venue", "--owner", "RD"), NULL);
    clirun_ok(RUN("fm", "decisions"), "Book the venue");
    clirun_fails(RUN("fm", "done", id, "2"), 1, "is a decision");
    clirun_ok(RUN("fm", "done", id, "venue"), "done: Book the venue");
    struct clirun_out open = RUN("fm", "decisions");
    clirun_expect(open, 0, "Look for places", NULL);
    assert_null(strstr(open.out, "Book the venue"));
    clirun_free(&open);
    clirun_ok(RUN("fm", "export", id), "- [x] RD: Book the venue");
    /* JSON and HTML exports. */
    json_t *j = clirun_json(RUN("fm", "export", id, "--format", "json"));
    assert_string_equal(json_string_value(json_object_get(j, "format")), "notes.note/1");
    json_decref(j);
    json_t *sj = clirun_json(RUN("fm", "show", id, "--json"));
    assert_non_null(json_object_get(sj, "items"));
    json_decref(sj);
    clirun_ok(RUN("fm", "export", id, "--format", "html", "--authors"), "<!DOCTYPE html>");
    /* Hostile text renders inert. */
    char *hostile = test_path(work, "hostile.md");
    const char *h = "# Hi <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
                    "[click](javascript:alert(3))\n";
    test_spit(hostile, h, strlen(h));
    char *hid = clirun_first_line(RUN("fm", "import", hostile));
    struct clirun_out html = RUN("fm", "export", hid, "--format", "html");
    clirun_expect(html, 0, "&lt;script&gt;", NULL);
    assert_null(strstr(html.out, "<script"));
    assert_null(strstr(html.out, "href=\"javascript:"));
    assert_null(strstr(html.out, "<img src=x"));
    clirun_free(&html);
    /* A template keeps its front matter's style. */
    char *tpl = test_path(work, "tpl.md");
    const char *t = "---\ntitle: x\nteams:\n  - core\n---\n## Action items\n";
    test_spit(tpl, t, strlen(t));
    char *tid = clirun_first_line(RUN("fm", "new", "Retro 12", "--template", tpl));
    struct clirun_out ts = RUN("fm", "show", tid);
    clirun_expect(ts, 0, "title: Retro 12\nteams:\n  - core\n", NULL);
    assert_non_null(strstr(ts.out, "## Action items\n"));
    clirun_free(&ts);
    clirun_fails(RUN("fm", "new", "Bad", "--template", "/nonexistent.md"), 1, "cannot read");
    free(tid);
    free(tpl);
    free(hid);
    free(hostile);
    free(out);
    free(orig);
    free(id);
    free(path);
}

static void test_cli_passphrase(void **state)
{
    (void)state;
    clirun_ok(run_env("pat", "correct horse", NULL, "init", "--name", "Pat", NULL),
       "passphrase-protected");
    char *id = clirun_first_line(run_env("pat", "correct horse", NULL, "new", "Secret", NULL));
    clirun_fails(run_env("pat", "wrong horse", NULL, "append", id, "x", NULL), 1,
          "passphrase");
    clirun_fails(run_env("pat", NULL, NULL, "append", id, "x", NULL), 1, "NOTES_PASSPHRASE");
    /* Reading needs no passphrase. */
    clirun_ok(run_env("pat", NULL, NULL, "show", id, NULL), "title: Secret");
    clirun_ok(run_env("pat", NULL, NULL, "verify", NULL), "all ok");
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_workflow),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_edit),
        cmocka_unit_test(test_cli_sections),
        cmocka_unit_test(test_cli_sync),
        cmocka_unit_test_teardown(test_cli_discovery, teardown_daemons),
        cmocka_unit_test(test_cli_formats),
        cmocka_unit_test(test_cli_passphrase),
    };
    bin = getenv("NOTES_BIN");
    if (!bin) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("cli");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
