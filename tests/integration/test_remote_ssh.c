/*
 * test_remote_ssh.c: `notes sync REMOTE` over ssh to localhost, with an
 * sshd this test starts itself (openssh-server): a throwaway host key and
 * client key made with ssh-keygen in a temporary folder, 127.0.0.1 on a
 * free port, nothing of the machine's own ssh set-up used or changed.
 * Two devices converge on one note through an ssh:// URL and through the
 * scp form (user@host:/path, the port from an ssh config file given in
 * git's core.sshCommand, as a user's ~/.gitconfig would); a key the server
 * refuses is exit 3 with ssh's reason and nothing changed here.
 *
 * sshd must run as root (it changes to the user it authenticates), so the
 * test skips (77) when not root or when sshd, ssh or git is missing; with
 * NOTES_REQUIRE_SSH=1 (CI) a skip is a failure.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clirun.h"
#include "loopback.h"
#include "shell.h"
#include "tmpdir.h"

#define SSHD "/usr/sbin/sshd"

static char *work;
static int port;
static pid_t sshd_pid = -1;
static char note[33];

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

/* A shell command in the work folder; 0 or its failure (printed). */
#define SH(...) assert_int_equal(test_sh_status(work, __VA_ARGS__), 0)

/* Keys, configs and the sshd, all under work/ssh. */
static int sshd_setup(void)
{
    char cfg[8192], path[4200];
    if (test_sh_status(work, "mkdir -p ssh && cd ssh && "
                  "ssh-keygen -q -t ed25519 -N '' -f host_key && "
                  "ssh-keygen -q -t ed25519 -N '' -f client_key && "
                  "ssh-keygen -q -t ed25519 -N '' -f refused_key && "
                  "cp client_key.pub authorized_keys") != 0)
        return -1;
    /* sshd (run as root) wants its privilege-separation folder. */
    if (mkdir("/run/sshd", 0755) != 0 && errno != EEXIST)
        return -1;
    if ((port = test_free_port()) < 0)
        return -1;
    snprintf(cfg, sizeof(cfg),
             "ListenAddress 127.0.0.1\n"
             "Port %d\n"
             "HostKey %s/ssh/host_key\n"
             "PidFile %s/ssh/sshd.pid\n"
             "AuthorizedKeysFile %s/ssh/authorized_keys\n"
             "StrictModes no\n"
             "UsePAM no\n"
             "PermitRootLogin prohibit-password\n"
             "PubkeyAuthentication yes\n"
             "PasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\n"
             "MaxStartups 50\n"
             "LogLevel VERBOSE\n",
             port, work, work, work);
    snprintf(path, sizeof(path), "%s/ssh/sshd_config", work);
    if (test_spit(path, cfg, strlen(cfg)) != 0)
        return -1;
    /* The client's: the port of 127.0.0.1 for the scp form, the key,
     * never a question (a throwaway host key, no known_hosts). */
    snprintf(cfg, sizeof(cfg),
             "Host 127.0.0.1\n"
             "  Port %d\n"
             "  User root\n"
             "  IdentitiesOnly yes\n"
             "  StrictHostKeyChecking no\n"
             "  UserKnownHostsFile /dev/null\n"
             "  BatchMode yes\n"
             "  LogLevel ERROR\n",
             port);
    snprintf(path, sizeof(path), "%s/ssh/client_config", work);
    if (test_spit(path, cfg, strlen(cfg)) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char conf[4200], log[4200], portarg[16];
        snprintf(conf, sizeof(conf), "%s/ssh/sshd_config", work);
        snprintf(log, sizeof(log), "%s/ssh/sshd.log", work);
        snprintf(portarg, sizeof(portarg), "%d", port);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(SSHD, SSHD, "-D", "-e", "-f", conf, "-p", portarg,
              (char *)NULL);
        _exit(127);
    }
    sshd_pid = pid;
    /* Bounded: 10 s for it to accept. */
    for (int i = 0; i < 200; i++) {
        if (test_accepts(port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            sshd_pid = -1;
            return -1;
        }
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    return -1;
}

static void sshd_stop(void)
{
    if (sshd_pid > 0) {
        kill(sshd_pid, SIGTERM);
        waitpid(sshd_pid, NULL, 0);
        sshd_pid = -1;
    }
}

/* How git reaches the server, as a user would set it up:
 * - "env": GIT_SSH_COMMAND with the key (the ssh:// URL names the port);
 * - "config": core.sshCommand in git's configuration (here through
 *   GIT_CONFIG_COUNT, as ~/.gitconfig would) naming the ssh config file
 *   that gives 127.0.0.1 its port, for the scp form;
 * - "refused": GIT_SSH_COMMAND with a key the server does not know. */
static void ssh_as(const char *how)
{
    char cmd[4400];
    unsetenv("GIT_SSH_COMMAND");
    unsetenv("GIT_CONFIG_COUNT");
    unsetenv("GIT_CONFIG_KEY_0");
    unsetenv("GIT_CONFIG_VALUE_0");
    if (strcmp(how, "config") == 0) {
        snprintf(cmd, sizeof(cmd), "ssh -F %s/ssh/client_config -i "
                 "%s/ssh/client_key", work, work);
        setenv("GIT_CONFIG_COUNT", "1", 1);
        setenv("GIT_CONFIG_KEY_0", "core.sshCommand", 1);
        setenv("GIT_CONFIG_VALUE_0", cmd, 1);
    } else {
        snprintf(cmd, sizeof(cmd), "ssh -F %s/ssh/client_config -i "
                 "%s/ssh/%s", work, work,
                 strcmp(how, "refused") == 0 ? "refused_key" : "client_key");
        setenv("GIT_SSH_COMMAND", cmd, 1);
    }
}

/* A replica `home` named `who` in space "team" (clirun_team_device). */
static void device(const char *home, const char *who, int first)
{
    clirun_team_device(work, home, who, first, note);
}

static char *show(const char *home)
{
    return clirun_stdout(RUN(home, "show", note));
}

static void sync_ok(const char *home)
{
    clirun_ok(RUN(home, "sync", "origin"), "Synced with remote origin");
}

static void append(const char *home, const char *text)
{
    clirun_ok(RUN(home, "append", note, text), NULL);
}

/* The files of a replica that a sync may change, concatenated. */
static char *replica_state(const char *home)
{
    char cmd[4400];
    snprintf(cmd, sizeof(cmd),
             "cd '%s/%s' && find . -path ./remotes.d -prune -o -type f "
             "! -name '*.lock' -print | LC_ALL=C sort | xargs cat | "
             "sha256sum", work, home);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *buf = calloc(1, 200);
    assert_non_null(buf);
    if (!fgets(buf, 200, p))
        buf[0] = 0;
    assert_int_equal(pclose(p), 0);
    return buf;
}

/* Two devices through ssh://root@127.0.0.1:PORT/abs/remote.git and
 * root@127.0.0.1:/abs/remote.git converge on one note. */
static void test_ssh_two_devices(void **state)
{
    (void)state;
    char url[4400], scp[4400];
    SH("rm -rf remote.git && git init -q --bare remote.git");
    device("a", "Ana", 1);
    device("b", "Bob", 0);
    snprintf(url, sizeof(url), "ssh://root@127.0.0.1:%d%s/remote.git", port,
             work);
    snprintf(scp, sizeof(scp), "root@127.0.0.1:%s/remote.git", work);
    clirun_ok(RUN("a", "remote", "add", "origin", url), "Added remote origin");
    clirun_ok(RUN("b", "remote", "add", "origin", scp), "Added remote origin");
    ssh_as("env");
    sync_ok("a");
    ssh_as("config");
    sync_ok("b");
    append("b", "Bob: over ssh, scp form");
    sync_ok("b");
    ssh_as("env");
    append("a", "Ana: over ssh://");
    sync_ok("a");
    ssh_as("config");
    sync_ok("b");
    char *x = show("a"), *y = show("b");
    assert_string_equal(x, y);
    assert_non_null(strstr(x, "Bob: over ssh, scp form"));
    assert_non_null(strstr(x, "Ana: over ssh://"));
    free(x);
    free(y);
    /* Both devices' refs are on the remote, nothing else. */
    FILE *p;
    char cmd[4400], line[512];
    int nrefs = 0;
    snprintf(cmd, sizeof(cmd), "git --git-dir='%s/remote.git' for-each-ref "
             "--format='%%(refname)'", work);
    assert_non_null(p = popen(cmd, "r"));
    while (fgets(line, sizeof(line), p)) {
        assert_int_equal(strncmp(line, "refs/notes/", 11), 0);
        nrefs++;
    }
    pclose(p);
    assert_int_equal(nrefs, 2);
    clirun_ok(RUN("a", "verify"), NULL);
    clirun_ok(RUN("b", "verify"), NULL);
}

/* A key the server refuses: exit 3 with ssh's reason, and nothing of the
 * replica changed (its notes, spaces, remotes file), although the
 * remote holds a change this device has not seen. */
static void test_ssh_refused_key(void **state)
{
    (void)state;
    char url[4400];
    SH("rm -rf remote.git && git init -q --bare remote.git");
    device("a", "Ana", 1);
    device("b", "Bob", 0);
    snprintf(url, sizeof(url), "ssh://root@127.0.0.1:%d%s/remote.git", port,
             work);
    clirun_ok(RUN("a", "remote", "add", "origin", url), "Added remote origin");
    clirun_ok(RUN("b", "remote", "add", "origin", url), "Added remote origin");
    ssh_as("env");
    sync_ok("a");
    sync_ok("b");
    append("b", "Bob: not for Ana's refused key");
    sync_ok("b");
    append("a", "Ana: stays here");
    char *before = show("a"), *files = replica_state("a");
    ssh_as("refused");
    clirun_fails(RUN("a", "sync", "origin"), 3, "Permission denied");
    char *after = show("a"), *files2 = replica_state("a");
    assert_string_equal(before, after);
    assert_string_equal(files, files2);
    assert_null(strstr(after, "Bob: not for Ana's refused key"));
    clirun_ok(RUN("a", "verify"), NULL);
    /* The right key again: everything goes through. */
    ssh_as("env");
    sync_ok("a");
    char *now = show("a");
    assert_non_null(strstr(now, "Bob: not for Ana's refused key"));
    free(before);
    free(after);
    free(files);
    free(files2);
    free(now);
}

static int ssh_skip(const char *why)
{
    const char *req = getenv("NOTES_REQUIRE_SSH");
    if (req && strcmp(req, "1") == 0) {
        fprintf(stderr, "test_remote_ssh: FAIL: cannot run (%s) and "
                        "NOTES_REQUIRE_SSH=1\n", why);
        return 1;
    }
    fprintf(stderr, "test_remote_ssh: %s: skipped\n", why);
    return 77;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssh_two_devices),
        cmocka_unit_test(test_ssh_refused_key),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    if (geteuid() != 0)
        return ssh_skip("not root (sshd must run as root)");
    if (access(SSHD, X_OK) != 0)
        return ssh_skip(SSHD " is missing (apt-get install openssh-server)");
    if (system("ssh -V >/dev/null 2>&1 && ssh-keygen --help >/dev/null 2>&1;"
               " command -v ssh-keygen >/dev/null") != 0)
        return ssh_skip("ssh or ssh-keygen is missing (openssh-client)");
    if (system("git --version >/dev/null 2>&1") != 0)
        return ssh_skip("git is missing");
    work = test_tmpdir("remote-ssh");
    if (sshd_setup() != 0) {
        char *log = test_path(work, "ssh/sshd.log");
        size_t n;
        char *text = (char *)test_slurp(log, &n);
        fprintf(stderr, "test_remote_ssh: cannot start sshd on port %d:\n%s\n",
                port, text ? text : "(no log)");
        free(text);
        free(log);
        sshd_stop();
        test_rmtree(work);
        return 1;
    }
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc) {
        char *log = test_path(work, "ssh/sshd.log");
        size_t n;
        char *text = (char *)test_slurp(log, &n);
        fprintf(stderr, "sshd's log:\n%s\n", text ? text : "(none)");
        free(text);
        free(log);
    }
    sshd_stop();
    test_rmtree(work);
    return rc;
}
