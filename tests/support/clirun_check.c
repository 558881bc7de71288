/*
 * clirun_check.c: the cmocka checks the CLI's integration tests make on a
 * run of `notes` (clirun.h). On a mismatch the run's status and output are
 * printed before the failing assertion, so a failure says what ran.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "clirun.h"

void clirun_expect(struct clirun_out r, int status, const char *in_out,
                   const char *in_err)
{
    if (r.status != status || (in_out && !strstr(r.out, in_out)) ||
        (in_err && !strstr(r.err, in_err)))
        print_message("status %d\nstdout:\n%s\nstderr:\n%s\n", r.status, r.out,
                      r.err);
    assert_int_equal(r.status, status);
    if (in_out)
        assert_non_null(strstr(r.out, in_out));
    if (in_err)
        assert_non_null(strstr(r.err, in_err));
}

struct clirun_out clirun_in(const char *work, const char *home,
                            const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out c = clirun_va(work, home, NULL, NULL, arg0, ap);
    va_end(ap);
    assert_int_not_equal(c.status, -1);
    return c;
}

void clirun_ok(struct clirun_out r, const char *in_out)
{
    clirun_expect(r, 0, in_out, NULL);
    clirun_free(&r);
}

void clirun_fails(struct clirun_out r, int status, const char *in_err)
{
    clirun_expect(r, status, NULL, in_err);
    clirun_free(&r);
}

char *clirun_stdout(struct clirun_out r)
{
    clirun_expect(r, 0, NULL, NULL);
    free(r.err);
    return r.out;
}

char *clirun_first_line(struct clirun_out r)
{
    char *s = clirun_stdout(r);
    char *nl = strchr(s, '\n');
    if (nl)
        *nl = 0;
    return s;
}

struct json_t *clirun_json(struct clirun_out r)
{
    json_error_t err;
    clirun_expect(r, 0, NULL, NULL);
    json_t *j = json_loads(r.out, 0, &err);
    if (!j)
        print_message("bad json: %s\n%s\n", err.text, r.out);
    assert_non_null(j);
    clirun_free(&r);
    return j;
}
