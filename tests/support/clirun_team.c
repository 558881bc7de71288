/*
 * clirun_team.c: devices sharing space "team" through the `notes` binary,
 * for the integration tests of remotes (clirun.h). The test links cmocka.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clirun.h"
#include "shell.h"
#include "tmpdir.h"

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

void clirun_team_device(const char *work, const char *home, const char *who,
                        int first, char note[33])
{
    char *path = test_path(work, "code");
    assert_non_null(path);
    assert_int_equal(test_sh_status(work, "rm -rf %s", home), 0);
    clirun_ok(RUN(home, "init", "--name", who), NULL);
    if (first) {
        clirun_ok(RUN(home, "space", "create", "team"), NULL);
        char *id = clirun_first_line(RUN(home, "new", "Weekly sync"));
        snprintf(note, 33, "%s", id);
        free(id);
        clirun_ok(RUN(home, "space", "add", "team", note), NULL);
        char *code = clirun_first_line(
            RUN(home, "invite", "team", "--address", "127.0.0.1:1"));
        assert_int_equal(test_spit(path, code, strlen(code)), 0);
        free(code);
    } else {
        size_t len;
        char *code = (char *)test_slurp(path, &len);
        assert_non_null(code);
        struct clirun_out r = RUN(home, "join", code);
        clirun_expect(r, 3, "joined space team", NULL);
        clirun_free(&r);
        free(code);
    }
    free(path);
}
