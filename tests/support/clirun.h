/*
 * clirun.h: run the built `notes` binary (NOTES_BIN) in a test, with its
 * own NOTES_HOME under a work directory, and capture what it printed.
 */
#ifndef NOTES_TEST_CLIRUN_H
#define NOTES_TEST_CLIRUN_H

#include <stdarg.h>

struct clirun_out {
    int status;   /* exit code, or 128 + signal */
    char *out;    /* stdout, NUL-terminated (malloc) */
    char *err;    /* stderr */
};

/* Run `notes ARGS...` (NULL-terminated) with NOTES_HOME=work/home (home
 * NULL: leave NOTES_HOME pointing at work/none, which does not exist),
 * NOTES_PASSPHRASE=pass (NULL: unset), stdin from stdin_text, in `work` as
 * the current directory, without a controlling terminal. */
struct clirun_out clirun(const char *work, const char *home, const char *pass,
                         const char *stdin_text, const char *arg0, ...);
/* The same with the arguments as a va_list (for wrappers). */
struct clirun_out clirun_va(const char *work, const char *home,
                            const char *pass, const char *stdin_text,
                            const char *arg0, va_list ap);
void clirun_free(struct clirun_out *o);
/* For cmocka tests: clirun(work, home, NULL, NULL, ARGS..., NULL), failing
 * the test when `notes` could not be started. The tests' RUN(home, ...). */
struct clirun_out clirun_in(const char *work, const char *home,
                            const char *arg0, ...)
    __attribute__((sentinel));

/*
 * Checks on a run, for cmocka tests (clirun_check.c; the test links
 * cmocka). Each prints the run's status and output on a mismatch, then
 * fails the test. All but clirun_expect take the run (free it).
 */
struct json_t;
/* Exit `status`, `in_out` within stdout and `in_err` within stderr (each
 * when not NULL). */
void clirun_expect(struct clirun_out r, int status, const char *in_out,
                   const char *in_err);
void clirun_ok(struct clirun_out r, const char *in_out);   /* exit 0 */
void clirun_fails(struct clirun_out r, int status, const char *in_err);
/* Exit 0: its stdout (caller frees), or only its first line. */
char *clirun_stdout(struct clirun_out r);
char *clirun_first_line(struct clirun_out r);
/* Exit 0 and stdout parsed as JSON (caller json_decref's). */
struct json_t *clirun_json(struct clirun_out r);

/*
 * For the tests of remotes (clirun_team.c): a new replica WORK/HOME named
 * `who` (what was there removed). The first creates space "team" with a
 * note "Weekly sync", whose id it writes to note, and leaves an invite
 * code in WORK/code; the others join with that code (the inviter's
 * address is nowhere: join keeps the space and exits 3).
 */
void clirun_team_device(const char *work, const char *home, const char *who,
                        int first, char note[33]);

#endif
