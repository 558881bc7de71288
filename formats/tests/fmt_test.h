/*
 * fmt_test.h: helpers shared by the formats tests (header-only, static):
 * a test identity, sample loading, import/export shortcuts, line diffs.
 */
#ifndef NOTES_FMT_TEST_H
#define NOTES_FMT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "notes_formats.h"

static notes_identity *ana, *bo;

static __attribute__((unused)) int fmt_setup(void **state)
{
    (void)state;
    assert_int_equal(notes_init(), NOTES_OK);
    assert_int_equal(notes_identity_generate("Ana", &ana), NOTES_OK);
    assert_int_equal(notes_identity_generate("Bo", &bo), NOTES_OK);
    return 0;
}

static __attribute__((unused)) int fmt_teardown(void **state)
{
    (void)state;
    notes_identity_free(ana);
    notes_identity_free(bo);
    return 0;
}

static __attribute__((unused)) char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, k;
    char *p = malloc(cap + 1);
    while (p && (k = fread(p + len, 1, cap - len, f)) > 0) {
        len += k;
        if (len == cap) {
            char *np = realloc(p, (cap *= 2) + 1);
            if (!np) {
                free(p);
                p = NULL;
                break;
            }
            p = np;
        }
    }
    fclose(f);
    if (p)
        p[len] = 0;
    *n = len;
    return p;
}

static __attribute__((unused)) char *sample(const char *name, size_t *n)
{
    const char *dir = getenv("NOTES_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/samples/%s", dir ? dir : "../shared",
             name);
    char *p = slurp(path, n);
    if (!p)
        fail_msg("cannot read sample '%s'", path);
    return p;
}

static __attribute__((unused)) notes_doc *import_ok(const char *md, size_t n)
{
    notes_doc *d;
    notes_fmt_diag diag;
    assert_int_equal(notes_doc_memory(ana, NULL, &d), NOTES_OK);
    int rc = notes_fmt_md_import(d, md, n, &diag);
    if (rc != NOTES_OK)
        fail_msg("import failed: %s: line %zu: %s", notes_errname(rc),
                 diag.line, diag.msg);
    return d;
}

static __attribute__((unused)) char *export_md(notes_doc *d, size_t *n)
{
    char *out;
    assert_int_equal(notes_fmt_md_export(d, &out, n), NOTES_OK);
    return out;
}

static __attribute__((unused)) void assert_bytes(const char *got, size_t gn,
                                                 const char *want, size_t wn)
{
    if (gn != wn || memcmp(got, want, wn) != 0) {
        size_t i = 0;
        while (i < gn && i < wn && got[i] == want[i])
            i++;
        fail_msg("output differs at byte %zu (got %zu bytes, want %zu)\n"
                 "got:  ...%.60s\nwant: ...%.60s",
                 i, gn, wn, got + (i > 20 ? i - 20 : 0),
                 want + (i > 20 ? i - 20 : 0));
    }
}

/* Lines of a and b differing in the middle once the common prefix and
 * suffix lines are taken away. */
static __attribute__((unused)) void line_diff(const char *a, const char *b,
                                              size_t *da, size_t *db)
{
    size_t na = 0, nb = 0;
    const char *la[4096], *lb[4096];
    for (const char *p = a; *p && na < 4096;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        la[na++] = p;
    for (const char *p = b; *p && nb < 4096;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        lb[nb++] = p;
#define LLEN(x)                                                                \
    (strchr(x, '\n') ? (size_t)(strchr(x, '\n') - (x)) + 1 : strlen(x))
    size_t pre = 0;
    while (pre < na && pre < nb && LLEN(la[pre]) == LLEN(lb[pre]) &&
           memcmp(la[pre], lb[pre], LLEN(la[pre])) == 0)
        pre++;
    size_t suf = 0;
    while (suf < na - pre && suf < nb - pre &&
           LLEN(la[na - 1 - suf]) == LLEN(lb[nb - 1 - suf]) &&
           memcmp(la[na - 1 - suf], lb[nb - 1 - suf], LLEN(la[na - 1 - suf])) ==
               0)
        suf++;
#undef LLEN
    *da = na - pre - suf;
    *db = nb - pre - suf;
}

/*
 * The committed note as another replica sees it (a reader doc that merged
 * its bundle); closes d. A doc does not know its own author's claimed
 * name until it re-reads its change (see formats/README.md), a peer does.
 */
static __attribute__((unused)) notes_doc *synced(notes_doc *d)
{
    uint8_t *bundle;
    size_t bn;
    notes_doc *r;
    assert_int_equal(notes_doc_export(d, NULL, 0, &bundle, &bn), NOTES_OK);
    assert_int_equal(notes_doc_memory(NULL, notes_doc_id(d), &r), NOTES_OK);
    assert_int_equal(notes_doc_merge(r, bundle, bn, NULL), NOTES_OK);
    notes_free(bundle);
    notes_doc_free(d);
    return r;
}

#endif
