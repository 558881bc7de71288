/*
 * remote_git.c: running the `git` command for remotes (docs/remote.md says
 * why the command and not libgit2). Arguments go to execvp as an array,
 * never through a shell; stdin comes from a file, stdout and stderr go to
 * temporary files read after git exits, so no pipe can fill up and block
 * either side whatever git prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "remote_internal.h"

/* Read an open file from its start into a NUL-terminated buffer. */
static int slurp_fd(int fd, size_t max, char **out, size_t *n)
{
    struct stat st;
    *out = NULL;
    *n = 0;
    if (fstat(fd, &st) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        return NOTES_EIO;
    if ((uint64_t)st.st_size > max) {
        notes_sync__detail("git printed more than %zu bytes", max);
        return NOTES_ETOOBIG;
    }
    return notes_sync__read_fd(fd, (size_t)st.st_size, out, n);
}

/* An anonymous temporary file in dir (unlinked at once). */
static int tmp_fd(const char *dir)
{
    char path[4096];
    int fd;
    snprintf(path, sizeof(path), "%s/.notes-tmp-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

extern char **environ;

static void free_env(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

/*
 * The environment git runs in, built before fork (the child only execs):
 * the caller's, with these set.
 * - Never ask on a terminal: a remote that wants a password the credential
 *   helpers do not have is an error, said as such. The user's own
 *   configuration (ssh agent, credential helpers, ~/.ssh/config) applies.
 * - The commits say nothing of who made them or when (docs/remote.md).
 * - ssh_default: set GIT_SSH_COMMAND to ssh in batch mode (the user named
 *   no ssh command of their own; see user_ssh_command).
 */
static char **git_env(int anon, int ssh_default)
{
    static const char *const set_anon[] = {
        "GIT_TERMINAL_PROMPT=0",
        "GIT_AUTHOR_NAME=notes",
        "GIT_AUTHOR_EMAIL=notes@invalid",
        "GIT_COMMITTER_NAME=notes",
        "GIT_COMMITTER_EMAIL=notes@invalid",
        "GIT_AUTHOR_DATE=1970-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE=1970-01-01T00:00:00Z",
        "LC_ALL=C",
        NULL};
    /* Publishing commits as the user, at the time it is: only no prompt. */
    static const char *const set_user[] = {"GIT_TERMINAL_PROMPT=0", "LC_ALL=C",
                                           NULL};
    const char *const *set = anon ? set_anon : set_user;
    size_t n = 0, k = 0;
    char **env;
    while (environ && environ[n])
        n++;
    if (!(env = calloc(n + 16, sizeof(*env))))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int skip = 0;
        for (size_t j = 0; set[j]; j++) {
            size_t l = (size_t)(strchr(set[j], '=') - set[j]) + 1;
            if (strncmp(environ[i], set[j], l) == 0)
                skip = 1;
        }
        if (!skip && !(env[k++] = strdup(environ[i])))
            goto fail;
    }
    for (size_t j = 0; set[j]; j++)
        if (!(env[k++] = strdup(set[j])))
            goto fail;
    /* ssh must not ask for a password either (BatchMode), unless the user
     * chose their own ssh command (then theirs, untouched). */
    if (ssh_default &&
        !(env[k++] = strdup("GIT_SSH_COMMAND=ssh -o BatchMode=yes")))
        goto fail;
    return env;
fail:
    free_env(env);
    return NULL;
}

void remote_git_result_free(notes_sync_git_result *g)
{
    if (!g)
        return;
    free(g->out);
    free(g->err);
    g->out = g->err = NULL;
}

static int run_git(const char *tmpdir, const char *const *argv,
                   const void *in, size_t nin, size_t max_out, int anon,
                   int ssh_default, notes_sync_git_result *res);

/* Seconds one git command may take: NOTES_GIT_TIMEOUT, else 600; 0 none. */
static unsigned long git_timeout(void)
{
    const char *e = getenv("NOTES_GIT_TIMEOUT");
    char *end;
    unsigned long v;
    if (!e || !*e)
        return 600;
    v = strtoul(e, &end, 10);
    return *end ? 600 : v;
}

static void nap_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* The command of a git argv ("fetch"), past its options. */
static const char *git_verb(const char *const *argv)
{
    for (size_t i = 1; argv[i]; i++) {
        if (!strcmp(argv[i], "-C") || !strcmp(argv[i], "-c")) {
            if (!argv[++i])
                break;
        } else if (argv[i][0] != '-') {
            return argv[i];
        }
    }
    return "";
}

/*
 * Wait for git, at most git_timeout() seconds: a host that accepts the
 * connection and never answers (or an ssh left waiting) must not hold a
 * sync, its lock and the daemon's next rounds for ever. Past the time git
 * gets SIGTERM (it ends the ssh or helper it started), SIGKILL 2 s later,
 * and is reaped either way: no zombie, and the sync fails with exit 3.
 */
static int wait_git(pid_t pid, const char *const *argv, int *status)
{
    unsigned long limit = git_timeout();
    struct timespec t0, now;
    long nap = 1;
    int killed = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t w = waitpid(pid, status, limit ? WNOHANG : 0);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return NOTES_EIO;
        if (w != 0)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) +
                    (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (!killed && el >= (double)limit) {
            kill(pid, SIGTERM);
            killed = 1;
        } else if (killed == 1 && el >= (double)limit + 2) {
            kill(pid, SIGKILL);
            killed = 2;
        }
        nap_ms(nap);
        if (nap < 50)
            nap *= 2; /* short commands return within a few ms */
    }
    if (killed) {
        notes_sync__detail("git %s did not finish in %lu s (the host "
                           "accepts but does not answer?); stopped "
                           "(NOTES_GIT_TIMEOUT sets the limit)",
                           git_verb(argv), limit);
        return NOTES_SYNC_EREMOTE;
    }
    return NOTES_OK;
}

/*
 * Whether the user named an ssh command of their own: GIT_SSH_COMMAND,
 * GIT_SSH, or core.sshCommand in git's configuration (~/.gitconfig, a
 * key or port per host, as `git push` in a terminal uses). git takes
 * GIT_SSH_COMMAND before the other two, so setting it here would throw
 * theirs away: it is set (to ssh in batch mode) only when there is none.
 * The configuration is asked once per process.
 */
static int user_ssh_command(const char *tmpdir)
{
    static int known = -1;
    const char *e1 = getenv("GIT_SSH_COMMAND"), *e2 = getenv("GIT_SSH");
    if ((e1 && *e1) || (e2 && *e2))
        return 1;
    if (known < 0) {
        /* In tmpdir (ours), not wherever notes runs: no other
         * repository's configuration counts. */
        const char *argv[] = {"git", "-C", tmpdir, "config", "--get",
                              "core.sshCommand", NULL};
        notes_sync_git_result g;
        if (run_git(tmpdir, argv, NULL, 0, 1u << 16, 0, 0, &g) != NOTES_OK)
            return 0; /* not cached: git may be missing, said later */
        known = g.status == 0 && g.out && g.out[strspn(g.out, " \t\n")];
        remote_git_result_free(&g);
    }
    return known;
}

static int run_git(const char *tmpdir, const char *const *argv,
                   const void *in, size_t nin, size_t max_out, int anon,
                   int ssh_default, notes_sync_git_result *res)
{
    int fin = -1, fout = -1, ferr = -1, status = 0, rc = NOTES_OK;
    const char *git = getenv("NOTES_GIT");
    char **env = NULL, **av = NULL;
    size_t nav = 0;
    pid_t pid;
    memset(res, 0, sizeof(*res));
    res->status = -1;
    if (!git || !*git)
        git = "git";
    if ((fout = tmp_fd(tmpdir)) < 0 || (ferr = tmp_fd(tmpdir)) < 0) {
        notes_sync__detail("cannot create a temporary file in '%s': %s",
                           tmpdir, strerror(errno));
        rc = NOTES_EIO;
        goto out;
    }
    if (in) {
        size_t off = 0;
        if ((fin = tmp_fd(tmpdir)) < 0) {
            rc = NOTES_EIO;
            goto out;
        }
        while (off < nin) {
            ssize_t w = write(fin, (const char *)in + off, nin - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                notes_sync__detail("cannot write a temporary file: %s",
                                   strerror(errno));
                rc = NOTES_EIO;
                goto out;
            }
            off += (size_t)w;
        }
        if (lseek(fin, 0, SEEK_SET) != 0) {
            rc = NOTES_EIO;
            goto out;
        }
    } else if ((fin = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = NOTES_EIO;
        goto out;
    }
    for (size_t i = 0; argv[i]; i++)
        nav++;
    if (!(av = calloc(nav + 1, sizeof(*av)))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nav; i++)
        if (!(av[i] = strdup(argv[i]))) {
            rc = NOTES_ENOMEM;
            goto out;
        }
    if (!(env = git_env(anon, ssh_default))) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        notes_sync__detail("cannot start git: %s", strerror(errno));
        rc = NOTES_EIO;
        goto out;
    }
    if (pid == 0) {
        dup2(fin, 0);
        dup2(fout, 1);
        dup2(ferr, 2);
        signal(SIGPIPE, SIG_DFL);
        execvpe(git, av, env);
        _exit(127);
    }
    if ((rc = wait_git(pid, argv, &status)))
        goto out;
    res->status = WIFEXITED(status) ? WEXITSTATUS(status)
                                    : 128 + WTERMSIG(status);
    if ((rc = slurp_fd(fout, max_out, &res->out, &res->nout)) ||
        (rc = slurp_fd(ferr, 1u << 20, &res->err, &res->nerr)))
        goto out;
    if (res->status == 127 && res->nerr == 0) {
        notes_sync__detail("the git command was not found (install git)");
        rc = NOTES_SYNC_EREMOTE;
    }
out:
    free_env(env);
    free_env(av);
    if (fin >= 0)
        close(fin);
    if (fout >= 0)
        close(fout);
    if (ferr >= 0)
        close(ferr);
    if (rc)
        remote_git_result_free(res);
    return rc;
}

/* The last non-empty line of git's stderr, without "fatal: " / "error: "
 * (with the transport's reason when git only says it could not read). */
const char *remote_git_why(const notes_sync_git_result *g, char *buf,
                           size_t cap)
{
    const char *s = g->err ? g->err : "", *best = "";
    size_t bl = 0;
    for (const char *p = s; *p;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l > 0 && strncmp(p, "hint:", 5) != 0) {
            best = p;
            bl = l;
        }
        p += l + (nl ? 1 : 0);
    }
    /* Prefer the "fatal:" line (git's reason) over what follows it. */
    const char *f = strstr(s, "fatal: ");
    if (f) {
        const char *nl = strchr(f, '\n');
        best = f;
        bl = nl ? (size_t)(nl - f) : strlen(f);
    }
    if (bl >= 7 && strncmp(best, "fatal: ", 7) == 0) {
        best += 7;
        bl -= 7;
        /* "Could not read from remote repository." is all git says when
         * its transport (ssh) failed; the reason is the line ssh (or the
         * host) printed just before it: "Permission denied (publickey).",
         * "Connection refused", "Host key verification failed.". */
        const char *cr = "Could not read from remote repository";
        if (f > s && f[-1] == '\n' && bl >= strlen(cr) &&
            strncmp(best, cr, strlen(cr)) == 0) {
            const char *end = f - 1, *b; /* the '\n' before "fatal:" */
            while (end > s && (end[-1] == '\n' || end[-1] == '\r'))
                end--;
            for (b = end; b > s && b[-1] != '\n'; b--)
                ;
            if (end > b && strncmp(b, "hint:", 5) != 0) {
                size_t pl = (size_t)(end - b);
                if (strncmp(b, "error: ", 7) == 0 && pl > 7) {
                    b += 7;
                    pl -= 7;
                }
                snprintf(buf, cap, "%s: %.*s", cr,
                         (int)(pl > 300 ? 300 : pl), b);
                goto printable;
            }
        }
    } else if (bl >= 7 && strncmp(best, "error: ", 7) == 0) {
        best += 7;
        bl -= 7;
    }
    if (bl == 0) {
        snprintf(buf, cap, "git exited with status %d", g->status);
        return buf;
    }
    snprintf(buf, cap, "%.*s", (int)(bl > 400 ? 400 : bl), best);
printable:
    /* Keep only printable bytes: git may echo what a remote said. */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return buf;
}

int remote_git(const char *tmpdir, const char *const *argv, const void *in,
               size_t nin, size_t max_out, notes_sync_git_result *res)
{
    return run_git(tmpdir, argv, in, nin, max_out, 1,
                   !user_ssh_command(tmpdir), res);
}

int notes_sync_git(const char *tmpdir, const char *const *argv, const void *in,
                   size_t nin, notes_sync_git_result *res)
{
    int rc;
    if (!res)
        return NOTES_EINVAL;
    memset(res, 0, sizeof(*res));
    if (!tmpdir || !argv || !argv[0])
        return NOTES_EINVAL;
    rc = run_git(tmpdir, argv, in, nin, 256u << 20, 0,
                 !user_ssh_command(tmpdir), res);
    if (rc)
        memset(res, 0, sizeof(*res)); /* nothing to release */
    return rc;
}

void notes_sync_git_result_clear(notes_sync_git_result *r)
{
    if (!r)
        return;
    remote_git_result_free(r);
    memset(r, 0, sizeof(*r));
}

const char *notes_sync_git_why(const notes_sync_git_result *r, char *buf,
                               size_t cap)
{
    return remote_git_why(r, buf, cap);
}
