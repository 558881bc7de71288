/*
 * test_diff.c: the unified line diff between two versions. Known cases,
 * then a property: applying the diff of (a, b) to a gives b, for thousands
 * of random pairs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"

int notes__diff(const char *ta, size_t na, const char *tb, size_t nb,
                const char *label_a, const char *label_b, char **out,
                size_t *nout);

static char *diff(const char *a, const char *b)
{
    char *out;
    size_t n;
    assert_int_equal(notes__diff(a, strlen(a), b, strlen(b), "a", "b", &out, &n),
                     NOTES_OK);
    assert_int_equal(strlen(out), n);
    return out;
}

/* Apply a unified diff to a; lines of context must match. */
static char *patch(const char *a, const char *d)
{
    size_t cap = strlen(a) + strlen(d) + 1, o = 0;
    char *out = malloc(cap);
    const char *ap = a;
    size_t aline = 1;
    const char *p = strstr(d, "@@");
    while (p && *p) {
        size_t as, al, bs, bl;
        assert_int_equal(sscanf(p, "@@ -%zu,%zu +%zu,%zu @@", &as, &al, &bs, &bl), 4);
        size_t start = al ? as : as + 1;
        while (aline < start) { /* copy untouched lines */
            const char *nl = strchr(ap, '\n');
            size_t len = nl ? (size_t)(nl - ap) + 1 : strlen(ap);
            memcpy(out + o, ap, len);
            o += len;
            ap += len;
            aline++;
        }
        p = strchr(p, '\n') + 1;
        while (*p && *p != '@') {
            char tag = *p++;
            const char *nl = strchr(p, '\n');
            size_t len = (size_t)(nl - p) + 1;
            int nonl = strncmp(nl + 1, "\\ No newline", 12) == 0;
            size_t keep = nonl ? len - 1 : len;
            if (tag == ' ' || tag == '-') {
                assert_memory_equal(ap, p, keep);
                ap += keep;
                aline++;
            }
            if (tag == ' ' || tag == '+') {
                memcpy(out + o, p, keep);
                o += keep;
            }
            p = nl + 1;
            if (nonl)
                p = strchr(p, '\n') + 1;
        }
    }
    size_t rest = strlen(ap);
    memcpy(out + o, ap, rest);
    out[o + rest] = 0;
    return out;
}

static void test_diff_known(void **state)
{
    (void)state;
    char *d = diff("a\nb\nc\n", "a\nb\nc\n");
    assert_string_equal(d, "");
    notes_free(d);
    d = diff("a\nb\nc\n", "a\nB\nc\n");
    assert_string_equal(d, "--- a\n+++ b\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    notes_free(d);
    d = diff("", "x\n");
    assert_string_equal(d, "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n");
    notes_free(d);
    d = diff("x", "x\n");
    assert_string_equal(d, "--- a\n+++ b\n@@ -1,1 +1,1 @@\n-x\n\\ No newline at end of file\n+x\n");
    notes_free(d);
    /* Far-apart changes make two hunks. */
    d = diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
             "0\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12!\n");
    assert_non_null(strstr(d, "@@ -1,4 +1,4 @@"));
    assert_non_null(strstr(d, "@@ -9,4 +9,4 @@"));
    notes_free(d);
}

static void test_diff_applies(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int t = 0; t < 3000; t++) {
        char a[2048], b[2048];
        size_t na = 0, nb = 0;
        int la = (int)(x % 30), lb;
        for (int i = 0; i < la; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            na += (size_t)sprintf(a + na, "l%d\n", (int)(x % 6));
        }
        /* b: a with random line edits. */
        const char *p = a;
        lb = 0;
        while (*p) {
            const char *nl = strchr(p, '\n');
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int r = (int)(x % 10);
            if (r == 0) {
                /* drop */
            } else if (r == 1) {
                nb += (size_t)sprintf(b + nb, "new%d\n", lb++);
                memcpy(b + nb, p, (size_t)(nl - p) + 1);
                nb += (size_t)(nl - p) + 1;
            } else if (r == 2) {
                nb += (size_t)sprintf(b + nb, "chg%d\n", lb++);
            } else {
                memcpy(b + nb, p, (size_t)(nl - p) + 1);
                nb += (size_t)(nl - p) + 1;
            }
            p = nl + 1;
        }
        if (x % 3 == 0 && nb)
            nb--; /* no final newline */
        a[na] = b[nb] = 0;
        char *d = diff(a, b);
        char *got = patch(a, d);
        if (strcmp(got, b) != 0)
            fail_msg("case %d: patch(a, diff) != b\na:\n%s\nb:\n%s\ndiff:\n%s", t, a,
                     b, d);
        free(got);
        notes_free(d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff_known),
        cmocka_unit_test(test_diff_applies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
