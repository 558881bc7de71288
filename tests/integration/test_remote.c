/*
 * test_remote.c: `notes remote` and `notes sync REMOTE` run as a user
 * would (NOTES_BIN), with real git remotes made by the test in a temporary
 * folder: a bare repository by path and by file://, and one served by
 * `git daemon` on 127.0.0.1 over git:// (started and stopped here). Three
 * devices never online together converge; two pushes at once; a remote
 * that lies (a ref rewound, deleted, swapped, garbage, an old pack
 * replayed) is reported and nothing unverified stored; an unreachable or
 * refusing remote is a clear error that changes nothing, one that never
 * answers is given up after NOTES_GIT_TIMEOUT; compaction
 * replaces only the device's own packs.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clirun.h"
#include "loopback.h"
#include "shell.h"
#include "tmpdir.h"

static char *work;

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

/* A shell command in the work folder (git plumbing playing the attacker);
 * its first line of output (static). */
#define SH(...) test_sh_line(work, __VA_ARGS__)

/* A new bare repository work/NAME.git. */
static void bare(const char *name)
{
    SH("rm -rf %s.git && git init -q --bare %s.git", name, name);
}

/* A replica `home` named `who` in space "team" (clirun_team_device); the
 * first one's note. */
static char note[33];

static void device(const char *home, const char *who, int first)
{
    clirun_team_device(work, home, who, first, note);
}

static void add_remote(const char *home, const char *url)
{
    clirun_ok(RUN(home, "remote", "add", "origin", url), "Added remote origin");
}

static void sync_ok(const char *home)
{
    clirun_ok(RUN(home, "sync", "origin"), "Synced with remote origin");
}

/* notes show NOTE (malloc'd). */
static char *show(const char *home)
{
    return clirun_stdout(RUN(home, "show", note));
}

static void append(const char *home, const char *text)
{
    clirun_ok(RUN(home, "append", note, text), NULL);
}

/* Sync fails with `status` and `in_err`, and the note reads as before. */
static void sync_fails(const char *home, int status, const char *in_err)
{
    char *before = show(home);
    clirun_fails(RUN(home, "sync", "origin"), status, in_err);
    char *after = show(home);
    assert_string_equal(before, after);
    free(before);
    free(after);
    clirun_ok(RUN(home, "verify"), NULL);
}

/* The refs of work/R.git, one per line (static). */
static const char *refs(const char *repo)
{
    static char buf[4096];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "git --git-dir='%s/%s.git' for-each-ref --format='%%(refname)'",
             work, repo);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = 0;
    pclose(p);
    return buf;
}

/* The ref of work/remote.git that is not `other` (NULL: the only one). */
static void ref_other(const char *other, char *out, size_t cap)
{
    const char *all = refs("remote");
    out[0] = 0;
    for (const char *p = all; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (!other || strlen(other) != l || strncmp(p, other, l) != 0) {
            snprintf(out, cap, "%.*s", (int)l, p);
            return;
        }
        p += l + (nl ? 1 : 0);
    }
}

/* A, B synced through work/remote.git; B's second pack on its ref. */
static char refA[200], refB[200];

static void two_devices(void)
{
    bare("remote");
    device("a", "Ana", 1);
    device("b", "Bob", 0);
    add_remote("a", "remote.git");
    add_remote("b", "remote.git");
    sync_ok("a");
    ref_other(NULL, refA, sizeof(refA));
    sync_ok("b");
    append("b", "Bob: first");
    sync_ok("b");
    append("b", "Bob: second");
    sync_ok("b");
    ref_other(refA, refB, sizeof(refB));
    assert_true(refA[0] && refB[0]);
    sync_ok("a");
}

static void test_path_and_file_url(void **state)
{
    (void)state;
    bare("remote");
    device("a", "Ana", 1);
    device("b", "Bob", 0);
    add_remote("a", "remote.git"); /* a path, relative to where notes runs */
    {
        char url[1024];
        snprintf(url, sizeof(url), "file://%s/remote.git", work);
        add_remote("b", url);
    }
    clirun_fails(RUN("a", "remote", "add", "origin", "elsewhere.git"), 1,
                 "exists");
    clirun_fails(RUN("a", "remote", "add", "x", "--upload-pack=evil"), 1,
                 NULL);
    clirun_fails(RUN("a", "remote", "add", "x", "remote.git", "--space",
                     "nope"), 1, "no space");
    {
        /* A folder is kept as an absolute path. */
        char want[1100];
        snprintf(want, sizeof(want), "origin  %s/remote.git  (space team)",
                 work);
        clirun_ok(RUN("a", "remote", "list"), want);
    }
    clirun_ok(RUN("a", "sync", "origin"), "sent 1 change in 1 note");
    clirun_ok(RUN("b", "sync", "origin"), "received 1 change in 1 note (1 new)");
    char *sa = show("a"), *sb = show("b");
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    /* The host sees tags and random names, no title, id or name. */
    const char *all = refs("remote");
    assert_non_null(strstr(all, "refs/notes/"));
    assert_null(strstr(all, note));
    /* Every file of every ref is a pack with a random name (and there are
     * some: an empty listing would pass the grep -v). */
    SH("R='git --git-dir=remote.git'; for r in $($R for-each-ref "
       "--format='%%(refname)' refs/notes); do $R ls-tree -r --name-only $r; "
       "done > names && test -s names && grep -qvE '^[0-9a-f]{32}\\.pack$' "
       "names && exit 1 || exit 0");
    SH("for b in $(git --git-dir=remote.git rev-list --objects --all "
       "| awk 'NF==2{print $1}'); do git --git-dir=remote.git cat-file "
       "blob $b; done | grep -a -q -e 'Weekly' -e 'Ana' -e '%s' "
       "&& exit 1 || exit 0", note);
    /* Nothing new: nothing pushed. */
    clirun_ok(RUN("a", "sync", "origin"), "sent 0 changes in 0 notes");
    /* remove forgets it here, leaves the repository. */
    clirun_ok(RUN("b", "remote", "remove", "origin"), "Removed remote origin");
    clirun_fails(RUN("b", "sync", "origin"), 1, "no remote called 'origin'");
    assert_non_null(strstr(refs("remote"), "refs/notes/"));
}

/* Three devices never online together edit one note between meetings. */
static void test_three_devices(void **state)
{
    (void)state;
    bare("remote");
    device("a", "Ana", 1);
    device("b", "Bob", 0);
    device("c", "Cid", 0);
    add_remote("a", "remote.git");
    add_remote("b", "remote.git");
    add_remote("c", "remote.git");
    sync_ok("a");
    sync_ok("c"); /* C takes the note along before the flight */
    append("a", "Ana: minutes drafted on Friday");
    sync_ok("a");
    sync_ok("b");
    append("b", "Bob: fixed on Sunday");
    sync_ok("b");
    append("c", "Cid: written on the plane");
    sync_ok("c");
    /* Bob's and Cid's packs hold the one note: it counts once. */
    clirun_ok(RUN("a", "sync", "origin"), "received 2 changes in 1 note ");
    sync_ok("b");
    char *sa = show("a"), *sb = show("b"), *sc = show("c");
    assert_non_null(strstr(sa, "Ana: minutes drafted"));
    assert_non_null(strstr(sa, "Bob: fixed on Sunday"));
    assert_non_null(strstr(sa, "Cid: written on the plane"));
    assert_string_equal(sa, sb);
    /* C has not seen A's and B's last syncs: it converges on its next. */
    free(sc);
    sync_ok("c");
    sc = show("c");
    assert_string_equal(sa, sc);
    free(sa);
    free(sb);
    free(sc);
    /* Three device refs, each written by its device only. */
    const char *all = refs("remote");
    int n = 0;
    for (const char *p = all; (p = strstr(p, "refs/notes/")); p++)
        n++;
    assert_int_equal(n, 3);
}

/* Two devices push at the same moment: each its own ref, no conflict. */
static void test_concurrent_pushes(void **state)
{
    (void)state;
    two_devices();
    append("a", "Ana: at the same time");
    append("b", "Bob: at the same time");
    pid_t pa = fork();
    if (pa == 0) {
        struct clirun_out r = RUN("a", "sync", "origin");
        _exit(r.status);
    }
    pid_t pb = fork();
    if (pb == 0) {
        struct clirun_out r = RUN("b", "sync", "origin");
        _exit(r.status);
    }
    int sa = -1, sb = -1;
    assert_int_equal(waitpid(pa, &sa, 0), pa);
    assert_int_equal(waitpid(pb, &sb, 0), pb);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    sync_ok("a");
    sync_ok("b");
    char *x = show("a"), *y = show("b");
    assert_non_null(strstr(x, "Ana: at the same time"));
    assert_non_null(strstr(x, "Bob: at the same time"));
    assert_string_equal(x, y);
    free(x);
    free(y);
}

/* B's ref set back to an older commit: A reports it, keeps what it saw. */
static void test_rewound(void **state)
{
    (void)state;
    two_devices();
    SH("git --git-dir=remote.git update-ref %s %s~1", refB, refB);
    sync_fails("a", 2, "was rewound");
    char *s = show("a");
    assert_non_null(strstr(s, "Bob: second")); /* seen, not hidden */
    free(s);
    /* Said again until B pushes anew (its next pack is newer). */
    sync_fails("a", 2, "was rewound");
    /* B finds its ref is not where it left it, says so, and replaces it
     * with everything (a newer pack): the others take that. */
    append("b", "Bob: third");
    clirun_fails(RUN("b", "sync", "origin"), 2,
                 "not where this device left it");
    sync_ok("b");
    sync_ok("a");
    s = show("a");
    assert_non_null(strstr(s, "Bob: third"));
    free(s);
}

static void test_deleted(void **state)
{
    (void)state;
    two_devices();
    SH("git --git-dir=remote.git update-ref -d %s", refB);
    sync_fails("a", 2, "was deleted from the remote");
    /* B's own ref gone: B says so and pushes everything again. */
    clirun_fails(RUN("b", "sync", "origin"), 2,
                 "this device's ref was deleted");
    sync_ok("a");
}

/* A's and B's refs swapped: each pack names the device that wrote it. */
static void test_swapped(void **state)
{
    (void)state;
    two_devices();
    append("b", "Bob: after the swap");
    sync_ok("b");
    char ca[64], cb[64];
    snprintf(ca, sizeof(ca), "%s", SH("git --git-dir=remote.git rev-parse %s",
                                       refA));
    snprintf(cb, sizeof(cb), "%s", SH("git --git-dir=remote.git rev-parse %s",
                                       refB));
    SH("git --git-dir=remote.git update-ref %s %s && "
       "git --git-dir=remote.git update-ref %s %s", refA, cb, refB, ca);
    clirun_fails(RUN("a", "sync", "origin"), 2, "written by another device");
    char *s = show("a");
    assert_null(strstr(s, "Bob: after the swap"));
    free(s);
    clirun_ok(RUN("a", "verify"), NULL);
}

/* Garbage on B's ref: a blob named like a pack, and a file that is not. */
static void test_garbage(void **state)
{
    (void)state;
    two_devices();
    char *before = show("a");
    SH("R='git --git-dir=remote.git'; "
       "b=$(head -c 3000 /dev/urandom | $R hash-object -w --stdin); "
       "r=$(printf 'not notes' | $R hash-object -w --stdin); "
       "t=$( { $R ls-tree %s; "
       "printf '100644 blob %%s\\t%%s\\n' $b 0123456789abcdef0123456789abcdef.pack; "
       "printf '100644 blob %%s\\tREADME\\n' $r; } | $R mktree); "
       "c=$($R commit-tree $t -p %s -m x); $R update-ref %s $c",
       refB, refB, refB);
    struct clirun_out r = RUN("a", "sync", "origin");
    clirun_expect(r, 2, NULL, "does not authenticate");
    assert_non_null(strstr(r.err, "README"));
    clirun_free(&r);
    char *after = show("a");
    assert_string_equal(before, after);
    free(before);
    free(after);
    clirun_ok(RUN("a", "verify"), NULL);
}

/* A file name on the remote made to attack whoever reads the problems:
 * an ESC sequence and a byte that is not UTF-8. The terminal gets it
 * escaped; --json lists it as well (valid JSON), not one problem fewer
 * than problem_count says. */
static void test_hostile_names(void **state)
{
    (void)state;
    two_devices();
    SH("R='git --git-dir=remote.git'; "
       "r=$(printf 'x' | $R hash-object -w --stdin); "
       "t=$( { $R ls-tree %s; "
       "printf '100644 blob %%s\t\033[2Jevil\377.pack\n' $r; } | $R mktree); "
       "c=$($R commit-tree $t -p %s -m x); $R update-ref %s $c",
       refB, refB, refB);
    struct clirun_out r = RUN("a", "sync", "origin");
    clirun_expect(r, 2, NULL, "evil");
    assert_null(strchr(r.err, 0x1b));
    assert_null(memchr(r.err, 0xff, strlen(r.err)));
    clirun_free(&r);
    /* Said at every sync (the tree is read each time): --json now. */
    r = RUN("a", "sync", "origin", "--json");
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    if (!j)
        print_message("status %d\n%s\n%s\n", r.status, r.out, r.err);
    assert_non_null(j);
    json_t *probs = json_object_get(j, "problems");
    assert_int_equal(json_array_size(probs),
                     json_integer_value(json_object_get(j, "problem_count")));
    int named = 0;
    for (size_t i = 0; i < json_array_size(probs); i++)
        named |= strstr(json_string_value(json_array_get(probs, i)),
                        "evil") != NULL;
    assert_true(named);
    json_decref(j);
    clirun_free(&r);
}

/* B compacts; an old pack of B's is put back beside the new one: A, who
 * read it before and has seen the compaction since (nothing new comes
 * with the replay), and C, who never read it, both say so. */
static void test_replayed(void **state)
{
    (void)state;
    two_devices();
    char old[64];
    snprintf(old, sizeof(old), "%s", SH("git --git-dir=remote.git rev-parse %s",
                                         refB));
    append("b", "Bob: before compaction");
    clirun_ok(RUN("b", "sync", "origin", "--compact"), "compacted");
    /* Compaction: B's ref is one pack, A's ref untouched. A takes it. */
    SH("test $(git --git-dir=remote.git ls-tree %s | wc -l) = 1", refB);
    sync_ok("a");
    SH("R='git --git-dir=remote.git'; t=$( { $R ls-tree %s; $R ls-tree %s; } "
       "| sort -u | $R mktree); c=$($R commit-tree $t -p %s -m x); "
       "$R update-ref %s $c", refB, old, refB, refB);
    clirun_fails(RUN("a", "sync", "origin"), 2, "replayed");
    char *s = show("a");
    assert_non_null(strstr(s, "Bob: before compaction")); /* the genuine */
    free(s);
    /* A device that never saw the old pack says the same. */
    device("c", "Cid", 0);
    add_remote("c", "remote.git");
    clirun_fails(RUN("c", "sync", "origin"), 2, "replayed");
    char *x = show("a"), *y = show("c");
    assert_string_equal(x, y);
    free(x);
    free(y);
}

/* Compaction past a size: this device's ref only, forced; others follow. */
static void test_compaction(void **state)
{
    (void)state;
    two_devices();
    char ca[64];
    snprintf(ca, sizeof(ca), "%s", SH("git --git-dir=remote.git rev-parse %s",
                                       refA));
    /* Two packs so far, small: under the size, no compaction. */
    append("b", "Bob: a third pack");
    clirun_ok(RUN("b", "sync", "origin", "--compact-above", "100000"), NULL);
    SH("test $(git --git-dir=remote.git ls-tree %s | wc -l) = 3", refB);
    append("b", "Bob: past the size");
    clirun_ok(RUN("b", "sync", "origin", "--compact-above", "100"),
              "compacted");
    SH("test $(git --git-dir=remote.git ls-tree %s | wc -l) = 1", refB);
    SH("test $(git --git-dir=remote.git rev-parse %s) = %s", refA, ca);
    sync_ok("a");
    char *x = show("a"), *y = show("b");
    assert_string_equal(x, y);
    free(x);
    free(y);
}

/* Unreachable or refusing remotes: exit 3, git's reason, nothing changed. */
static void test_unreachable(void **state)
{
    (void)state;
    device("a", "Ana", 1);
    clirun_ok(RUN("a", "remote", "add", "gone", "/nonexistent/remote.git"),
              NULL);
    clirun_ok(RUN("a", "remote", "add", "port", "git://127.0.0.1:1/x.git"),
              NULL);
    char *before = show("a");
    clirun_fails(RUN("a", "sync", "gone"), 3, "cannot fetch from");
    clirun_fails(RUN("a", "sync", "port"), 3, "cannot fetch from");
    char *after = show("a");
    assert_string_equal(before, after);
    free(before);
    free(after);
    clirun_fails(RUN("a", "sync", "nosuch"), 1, "no remote called");
    /* Argument injection: a URL that is an option is refused when added;
     * a host that is one (ssh would run the command) is blocked by git,
     * and nothing runs. */
    clirun_fails(RUN("a", "remote", "add", "opt", "--upload-pack=touch"), 1,
                 NULL);
    clirun_ok(RUN("a", "remote", "add", "inj1",
                  "ssh://-oProxyCommand=touch%20pwned1/x.git"), NULL);
    clirun_ok(RUN("a", "remote", "add", "inj2",
                  "x@-oProxyCommand=touch:x.git"), NULL);
    clirun_fails(RUN("a", "sync", "inj1"), 3, "cannot fetch from");
    clirun_fails(RUN("a", "sync", "inj2"), 3, "cannot fetch from");
    SH("test ! -e pwned1 && test ! -e a/pwned1 && test ! -e x.git");
}

static pid_t daemon_start(int port, int receive)
{
    char portarg[32], base[1024];
    snprintf(portarg, sizeof(portarg), "--port=%d", port);
    snprintf(base, sizeof(base), "--base-path=%s", work);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", 1);
        dup2(null, 1);
        dup2(null, 2);
        execlp("git", "git", "daemon", "--reuseaddr", "--export-all",
               "--listen=127.0.0.1", portarg, base,
               receive ? "--enable=receive-pack" : "--disable=receive-pack",
               work, (char *)NULL);
        _exit(127);
    }
    /* Wait (bounded) until it accepts. */
    for (int i = 0; i < 100; i++) {
        if (test_accepts(port))
            return pid;
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    fail_msg("git daemon did not start on port %d", port);
    return -1;
}

static void daemon_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* git:// through `git daemon` (receive-pack enabled), and one that
 * refuses pushes: a clear error, and what was fetched still merged. */
static void test_git_daemon(void **state)
{
    (void)state;
    char url[128];
    bare("remote");
    device("a", "Ana", 1);
    device("b", "Bob", 0);
    int port = test_free_port();
    assert_true(port > 0);
    pid_t d = daemon_start(port, 1);
    snprintf(url, sizeof(url), "git://127.0.0.1:%d/remote.git", port);
    add_remote("a", url);
    add_remote("b", url);
    sync_ok("a");
    sync_ok("b");
    append("b", "Bob: over git://");
    sync_ok("b");
    sync_ok("a");
    char *x = show("a"), *y = show("b");
    assert_string_equal(x, y);
    assert_non_null(strstr(x, "Bob: over git://"));
    free(x);
    free(y);
    daemon_stop(d);
    /* Pushes refused (receive-pack off): exit 3 with git's reason. */
    d = daemon_start(port, 0);
    append("a", "Ana: not accepted by the host");
    clirun_fails(RUN("a", "sync", "origin"), 3, "cannot push to");
    daemon_stop(d);
    /* The host gone: exit 3, nothing changed. */
    sync_fails("a", 3, "cannot fetch from");
}

/* A host that accepts the connection and never answers: the sync stops
 * after NOTES_GIT_TIMEOUT seconds with exit 3 (not for ever, holding the
 * lock and the daemon's next rounds), nothing changed, no git left. */
static void test_silent_host(void **state)
{
    (void)state;
    char url[128];
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &l), 0);
    /* The kernel completes the handshake (backlog); nobody ever reads. */
    device("a", "Ana", 1);
    snprintf(url, sizeof(url), "git://127.0.0.1:%d/remote.git",
             ntohs(a.sin_port));
    add_remote("a", url);
    setenv("NOTES_GIT_TIMEOUT", "2", 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sync_fails("a", 3, "did not finish in 2 s");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsetenv("NOTES_GIT_TIMEOUT");
    close(lfd);
    /* Bounded (the limit, the grace, the checks): not a hang. */
    assert_true(t1.tv_sec - t0.tv_sec < 120);
    /* No git of that sync left running ("[1]" keeps the pattern from
     * matching the shell that runs pgrep). */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "pgrep -f '[1]27.0.0.1:%d/' >/dev/null",
             ntohs(a.sin_port));
    assert_int_not_equal(system(cmd), 0);
}

/* notes serve syncs its remotes every --remote-interval: B's change
 * reaches A with no notes sync; a remote that fails is logged and the
 * daemon goes on. */
static void test_serve_interval(void **state)
{
    (void)state;
    two_devices();
    clirun_ok(RUN("a", "remote", "add", "broken", "/nonexistent/x.git"),
              NULL);
    append("b", "Bob: reaches Ana through her daemon");
    sync_ok("b");
    char *home = test_path(work, "a"), *errpath = test_path(work, "serve.err");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(fd, 2);
        if (chdir(work) != 0)
            _exit(126);
        setenv("NOTES_HOME", home, 1);
        execl(getenv("NOTES_BIN"), "notes", "serve", "--listen",
              "127.0.0.1:0", "--no-discovery", "--no-relay", "--no-ui",
              "--remote-interval", "1", (char *)NULL);
        _exit(127);
    }
    int seen = 0;
    for (int i = 0; i < 200 && !seen; i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        char *s = show("a");
        seen = strstr(s, "Bob: reaches Ana through her daemon") != NULL;
        free(s);
    }
    /* A second round has run by now (and logged the broken one again). */
    int logged = 0;
    for (int i = 0; i < 100 && !logged; i++) {
        size_t n;
        char *err = (char *)test_slurp(errpath, &n);
        logged = err && strstr(err, "sync with remote broken failed (exit 3)");
        free(err);
        if (!logged) {
            struct timespec t = {0, 100 * 1000 * 1000};
            nanosleep(&t, NULL);
        }
    }
    int alive = waitpid(pid, NULL, WNOHANG) == 0;
    kill(pid, SIGTERM);
    int st = -1;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(seen);
    assert_true(logged);
    assert_true(alive);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(home);
    free(errpath);
}

int main(void)
{
    /* The tests forge commits on the remote with git itself, which needs an
     * identity; a fresh machine has no ~/.gitconfig (notes sets its own). */
    setenv("GIT_AUTHOR_NAME", "test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@example.invalid", 1);
    setenv("GIT_COMMITTER_NAME", "test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@example.invalid", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_and_file_url),
        cmocka_unit_test(test_three_devices),
        cmocka_unit_test(test_concurrent_pushes),
        cmocka_unit_test(test_rewound),
        cmocka_unit_test(test_deleted),
        cmocka_unit_test(test_swapped),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_git_daemon),
        cmocka_unit_test(test_silent_host),
        cmocka_unit_test(test_serve_interval),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    if (system("git --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "git is not installed: skipped\n");
        return 77;
    }
    work = test_tmpdir("remote");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
