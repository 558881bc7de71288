/*
 * test_snapshot.c: the snapshot cache notes/ID.snap (issue 21, doc_snap.c).
 *
 * Opening a note this device verified reads its snapshot instead of
 * replaying the log, and answers exactly what a replay answers: the same
 * text, length, heads, fields, change count and verdict, on sequential and
 * concurrent histories and on the sample notes. A stale snapshot (the log
 * grew), a damaged log, a truncated, corrupted or forged snapshot (random
 * byte flips in a loop, another device's, another note's) is ignored and
 * the note replayed; the next write makes a good one again. Deleting it
 * changes nothing but speed. White-box where it must be: d->lazy says
 * whether the snapshot was used.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "doc_internal.h"
#include "notefile.h"
#include "tmpdir.h"
#include "trace.h"

static int setup(void **state)
{
    *state = test_devices_new("snap", "ana", "ben", (char *)NULL);
    return 0;
}

static int teardown(void **state)
{
    test_devices_free(*state);
    return 0;
}

static char *note_file(notes_replica *r, const uint8_t id[16], const char *ext)
{
    return test_note_file(notes_replica_home(r), id, ext);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- what a reader sees, compared field by field ---- */

struct view {
    char *text;
    size_t nbytes, len, nchanges, nheads;
    uint8_t (*heads)[32];
    int intact;
    char *fields; /* every field: name, value, conflicts, list, flattened */
};

static void cat(char **s, size_t *n, const char *a)
{
    size_t k = strlen(a);
    *s = realloc(*s, *n + k + 2);
    memcpy(*s + *n, a, k);
    (*s)[*n + k] = '|';
    (*s)[*n + k + 1] = 0;
    *n += k + 1;
}

/* Fields first, text, heads; the change count last (it replays). */
static void view_take(notes_doc *d, struct view *v)
{
    memset(v, 0, sizeof(*v));
    size_t n = 0;
    const char *const *names = notes_doc_fields(d);
    for (size_t i = 0; names[i]; i++) {
        cat(&v->fields, &n, names[i]);
        const char *val = notes_doc_field(d, names[i]);
        cat(&v->fields, &n, val ? val : "(none)");
        for (const char *const *c = notes_doc_field_conflicts(d, names[i]); *c;
             c++)
            cat(&v->fields, &n, *c);
        cat(&v->fields, &n, "/");
        for (const char *const *c = notes_doc_list(d, names[i]); *c; c++)
            cat(&v->fields, &n, *c);
        cat(&v->fields, &n, "//");
    }
    /* Unknown keys answer as a replay does. */
    assert_null(notes_doc_field(d, "no-such-field"));
    assert_null(notes_doc_list(d, "no-such-field")[0]);
    assert_null(notes_doc_field_conflicts(d, "no-such-field")[0]);
    const char *t = notes_doc_text(d, &v->nbytes);
    v->text = malloc(v->nbytes + 1);
    memcpy(v->text, t, v->nbytes + 1);
    v->len = notes_doc_length(d);
    assert_int_equal(notes_doc_heads(d, &v->heads, &v->nheads), NOTES_OK);
    v->intact = notes_doc_intact(d);
    v->nchanges = notes_doc_change_count(d);
}

static void view_free(struct view *v)
{
    free(v->text);
    free(v->fields);
    notes_free(v->heads);
}

static void view_equal(const struct view *a, const struct view *b)
{
    assert_int_equal(a->nbytes, b->nbytes);
    assert_memory_equal(a->text, b->text, a->nbytes);
    assert_int_equal(a->len, b->len);
    assert_int_equal(a->nheads, b->nheads);
    assert_memory_equal(a->heads, b->heads, 32 * a->nheads);
    assert_int_equal(a->intact, b->intact);
    assert_int_equal(a->nchanges, b->nchanges);
    assert_string_equal(a->fields ? a->fields : "", b->fields ? b->fields : "");
}

/* Open the note; *lazy: whether the snapshot was used. */
static void look(notes_replica *r, const uint8_t id[16], struct view *v,
                 int *lazy)
{
    notes_doc *d;
    assert_int_equal(notes_doc_open(r, id, &d), NOTES_OK);
    *lazy = d->lazy;
    view_take(d, v);
    assert_false(d->lazy); /* the change count replayed it */
    notes_doc_free(d);
}

/* The same note read with its snapshot and with it deleted: identical, and
 * the snapshot was used. The snapshot is put back afterwards. */
static void check_same(notes_replica *r, const uint8_t id[16])
{
    char *sp = note_file(r, id, "snap");
    size_t n;
    unsigned char *keep = test_slurp(sp, &n);
    assert_non_null(keep);
    struct view with, without;
    int lazy;
    look(r, id, &with, &lazy);
    assert_true(lazy);
    assert_int_equal(unlink(sp), 0);
    look(r, id, &without, &lazy);
    assert_false(lazy);
    assert_false(exists(sp)); /* reading never writes */
    view_equal(&with, &without);
    view_free(&with);
    view_free(&without);
    assert_int_equal(test_spit(sp, keep, n), 0);
    free(keep);
    free(sp);
}

/* ---- histories ---- */

static void splice(notes_doc *d, size_t pos, size_t del, const char *s)
{
    assert_int_equal(notes_doc_splice(d, pos, del, s, s ? strlen(s) : 0),
                     NOTES_OK);
}

/* A sequential history: the first `edits` patches of automerge-paper,
 * committed every 500, with front-matter fields. */
static void sequential(notes_replica *r, uint8_t id[16], size_t edits)
{
    char path[4096];
    struct trace tr;
    notes_doc *d;
    assert_non_null(trace_path(path, sizeof(path),
                               "sequential_traces/automerge-paper.json.gz"));
    assert_int_equal(trace_load(path, &tr), 0);
    assert_int_equal(notes_doc_create(r, &d), NOTES_OK);
    memcpy(id, notes_doc_id(d), 16);
    assert_int_equal(notes_doc_set_field(d, "title", "The paper"), NOTES_OK);
    assert_int_equal(notes_doc_list_add(d, "attendees", "Ana"), NOTES_OK);
    size_t k = 0;
    for (size_t i = 0; i < tr.ntxns && k < edits; i++)
        for (size_t j = 0; j < tr.txns[i].npatches && k < edits; j++, k++) {
            const struct trace_patch *p = &tr.txns[i].patches[j];
            assert_int_equal(notes_doc_splice(d, p->pos, p->del, p->ins,
                                              p->ins_len), NOTES_OK);
            if (k % 500 == 499)
                assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
        }
    assert_int_equal(notes_doc_list_add(d, "attendees", "Ben"), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    trace_free(&tr);
}

/* Ship every change of the note from one replica to the other. */
static void ship(notes_replica *from, notes_replica *to, const uint8_t id[16])
{
    notes_doc *s, *t;
    uint8_t *bundle;
    size_t n, added;
    assert_int_equal(notes_doc_open(from, id, &s), NOTES_OK);
    assert_int_equal(notes_doc_export(s, NULL, 0, &bundle, &n), NOTES_OK);
    int rc = notes_doc_open(to, id, &t);
    if (rc == NOTES_ENOTFOUND)
        rc = notes_doc_create_id(to, id, &t);
    assert_int_equal(rc, NOTES_OK);
    assert_int_equal(notes_doc_merge(t, bundle, n, &added), NOTES_OK);
    notes_free(bundle);
    notes_doc_free(s);
    notes_doc_free(t);
}

/* Both devices edit the same text and the same field concurrently, a few
 * rounds, merging between rounds: a concurrent history with a field
 * conflict left open. */
static void concurrent(struct test_devices *f, uint8_t id[16])
{
    notes_doc *d;
    assert_int_equal(notes_doc_create(f->a, &d), NOTES_OK);
    memcpy(id, notes_doc_id(d), 16);
    splice(d, 0, 0, "# Weekly\n\nAgenda: budget, roadmap.\n");
    assert_int_equal(notes_doc_set_field(d, "title", "Weekly"), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    ship(f->a, f->b, id);
    for (int round = 0; round < 4; round++) {
        notes_replica *rs[2] = {f->a, f->b};
        for (int k = 0; k < 2; k++) {
            char s[64];
            assert_int_equal(notes_doc_open(rs[k], id, &d), NOTES_OK);
            snprintf(s, sizeof(s), "- item %d from %s\n", round, k ? "ben" : "ana");
            size_t len = notes_doc_length(d);
            splice(d, round % 2 ? len : 10, 0, s);
            if (len > 30)
                splice(d, 12, 3, NULL);
            snprintf(s, sizeof(s), "Weekly (%s %d)", k ? "ben" : "ana", round);
            assert_int_equal(notes_doc_set_field(d, "title", s), NOTES_OK);
            assert_int_equal(notes_doc_list_add(d, "tags", k ? "b" : "a"),
                             NOTES_OK);
            assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
            notes_doc_free(d);
        }
        ship(f->b, f->a, id);
        if (round < 3)
            ship(f->a, f->b, id);
    }
}

/* A sample note's text, written in three commits. */
static int sample(notes_replica *r, const char *name, uint8_t id[16])
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/samples/%s", shared ? shared : "../shared",
             name);
    size_t n;
    unsigned char *text = test_slurp(path, &n);
    if (!text)
        return 0;
    notes_doc *d;
    assert_int_equal(notes_doc_create(r, &d), NOTES_OK);
    memcpy(id, notes_doc_id(d), 16);
    assert_int_equal(notes_doc_splice(d, 0, 0, (const char *)text, n / 2),
                     NOTES_OK);
    assert_int_equal(notes_doc_set_field(d, "title", name), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(notes_doc_set_text(d, (const char *)text, n), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(notes_doc_compact(d, 19), NOTES_OK);
    assert_int_equal(notes_doc_list_add(d, "attendees", "Ana"), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    free(text);
    return 1;
}

/* ---- tests ---- */

static void test_sequential_same(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    sequential(f->a, id, 6000);
    check_same(f->a, id);
    /* Compacted: one pack record, the snapshot rewritten. */
    notes_doc *d;
    assert_int_equal(notes_doc_open(f->a, id, &d), NOTES_OK);
    assert_int_equal(notes_doc_compact(d, 19), NOTES_OK);
    notes_doc_free(d);
    check_same(f->a, id);
}

static void test_concurrent_same(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    concurrent(f, id);
    check_same(f->a, id); /* written by the merge */
    check_same(f->b, id); /* written by its last commit */
    notes_doc *d;
    assert_int_equal(notes_doc_open(f->a, id, &d), NOTES_OK);
    assert_true(d->lazy);
    /* The conflict is there, from the snapshot. */
    assert_non_null(notes_doc_field_conflicts(d, "title")[0]);
    notes_doc_free(d);
}

static void test_samples_same(void **state)
{
    struct test_devices *f = *state;
    DIR *dir;
    const char *shared = getenv("NOTES_SHARED_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/samples", shared ? shared : "../shared");
    if (!(dir = opendir(path)))
        skip();
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir))) {
        size_t k = strlen(e->d_name);
        uint8_t id[16];
        if (k < 4 || strcmp(e->d_name + k - 3, ".md") != 0)
            continue;
        if (sample(f->a, e->d_name, id)) {
            check_same(f->a, id);
            n++;
        }
    }
    closedir(dir);
    assert_true(n > 0);
}

/* Edits through a doc opened from the snapshot: the full state is built
 * first, and what is committed is what a replayed doc would commit. */
static void test_lazy_then_write(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    concurrent(f, id);
    notes_doc *d;
    assert_int_equal(notes_doc_open(f->a, id, &d), NOTES_OK);
    assert_true(d->lazy);
    size_t nb;
    const char *before = notes_doc_text(d, &nb);
    char *copy = strndup(before, nb);
    splice(d, 0, 0, "x");
    assert_false(d->lazy);
    assert_string_equal(before, copy); /* still readable after the replay */
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    size_t nb2;
    const char *after = notes_doc_text(d, &nb2);
    assert_int_equal(nb2, nb + 1);
    assert_memory_equal(after + 1, copy, nb);
    notes_doc_free(d);
    free(copy);
    check_same(f->a, id); /* the commit wrote a current snapshot */
}

/* Another handle appends: a stale snapshot is not used, and a lazy handle
 * that replays later sees the log as it is then. */
static void test_stale(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    sequential(f->a, id, 1200);
    char *sp = note_file(f->a, id, "snap");
    size_t nold;
    unsigned char *old = test_slurp(sp, &nold);
    assert_non_null(old);

    notes_doc *lazy, *w;
    assert_int_equal(notes_doc_open(f->a, id, &lazy), NOTES_OK);
    assert_true(lazy->lazy);
    assert_int_equal(notes_doc_open(f->a, id, &w), NOTES_OK);
    splice(w, 0, 0, "appended by another handle\n");
    assert_int_equal(notes_doc_commit(w, NULL), NOTES_OK);
    size_t wn;
    char *want = strdup(notes_doc_text(w, &wn));
    notes_doc_free(w);

    /* The lazy handle still shows what it opened ... */
    size_t ln;
    assert_int_equal(strncmp(notes_doc_text(lazy, &ln), "appended", 8) != 0, 1);
    /* ... and replays the log as it is now when it must. */
    assert_int_equal(notes_doc_refresh(lazy), NOTES_OK);
    assert_false(lazy->lazy);
    assert_string_equal(notes_doc_text(lazy, NULL), want);
    notes_doc_free(lazy);

    /* The old snapshot put back: stale, ignored, the log's text shown. */
    assert_int_equal(test_spit(sp, old, nold), 0);
    notes_doc *d;
    assert_int_equal(notes_doc_open(f->a, id, &d), NOTES_OK);
    assert_false(d->lazy);
    assert_string_equal(notes_doc_text(d, NULL), want);
    assert_int_equal(notes_doc_intact(d), NOTES_OK);
    notes_doc_free(d);
    free(old);
    free(want);
    free(sp);
}

/* Truncated, flipped, extended, another device's, another note's, empty:
 * ignored, the note replayed, never a crash; a commit writes a good one. */
static void test_corrupt_ignored(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16], other[16];
    concurrent(f, id);
    sequential(f->a, other, 700);
    char *sp = note_file(f->a, id, "snap");
    size_t n, nb, no;
    unsigned char *good = test_slurp(sp, &n);
    char *bsp = note_file(f->b, id, "snap");
    unsigned char *bens = test_slurp(bsp, &nb); /* same note, other device */
    char *osp = note_file(f->a, other, "snap");
    unsigned char *oth = test_slurp(osp, &no); /* same device, other note */
    assert_non_null(good);
    assert_non_null(bens);
    assert_non_null(oth);
    struct view want;
    int lazy;
    look(f->a, id, &want, &lazy);
    assert_true(lazy);

    unsigned char *buf = malloc(n + 64);
    srand(21);
    for (int i = 0; i < 400; i++) {
        size_t m = n;
        memcpy(buf, good, n);
        switch (i % 4) {
        case 0: /* one byte flipped */
            buf[(size_t)rand() % n] ^= (unsigned char)(1 + rand() % 255);
            break;
        case 1: /* cut short */
            m = (size_t)rand() % n;
            break;
        case 2: /* a few bytes flipped */
            for (int k = 0; k < 1 + rand() % 8; k++)
                buf[(size_t)rand() % n] = (unsigned char)rand();
            break;
        default: /* grown */
            for (size_t k = 0; k < 1 + (size_t)rand() % 64; k++)
                buf[m++] = (unsigned char)rand();
            break;
        }
        if (m == n && memcmp(buf, good, n) == 0)
            continue; /* the bytes written over were the same: not damage */
        assert_int_equal(test_spit(sp, buf, m), 0);
        struct view v;
        look(f->a, id, &v, &lazy);
        if (lazy)
            fail_msg("case %d: a damaged snapshot was used", i);
        view_equal(&v, &want);
        view_free(&v);
    }
    const unsigned char *forged[] = {bens, oth, (const unsigned char *)""};
    size_t nf[] = {nb, no, 0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(test_spit(sp, forged[i], nf[i]), 0);
        struct view v;
        look(f->a, id, &v, &lazy);
        assert_false(lazy);
        view_equal(&v, &want);
        view_free(&v);
    }
    /* Reading left the bad file as it was; the next write replaces it. */
    size_t k;
    unsigned char *still = test_slurp(sp, &k);
    assert_int_equal(k, 0);
    free(still);
    notes_doc *d;
    assert_int_equal(notes_doc_open(f->a, id, &d), NOTES_OK);
    assert_int_equal(notes_doc_set_field(d, "room", "B"), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_free(d);
    check_same(f->a, id);
    view_free(&want);
    free(buf);
    free(good);
    free(bens);
    free(oth);
    free(sp);
    free(bsp);
    free(osp);
}

/* A damaged log beside a good snapshot: the damage is reported exactly as
 * without the snapshot, which is not used. */
static void test_damaged_log(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    sequential(f->a, id, 1200);
    char *lp = note_file(f->a, id, "log"), *sp = note_file(f->a, id, "snap");
    size_t n;
    unsigned char *log = test_slurp(lp, &n);
    assert_non_null(log);
    log[n - 5] ^= 0x40; /* inside the last record */
    assert_int_equal(test_spit(lp, log, n), 0);
    struct view with, without;
    int lazy;
    look(f->a, id, &with, &lazy);
    assert_false(lazy);
    assert_int_not_equal(with.intact, NOTES_OK);
    assert_int_equal(unlink(sp), 0);
    look(f->a, id, &without, &lazy);
    view_equal(&with, &without);
    view_free(&with);
    view_free(&without);
    free(log);
    free(lp);
    free(sp);
}

/* Without the state file the log is verified again: the snapshot is not
 * used (the verdict needs the state), and the text is the same. */
static void test_no_state(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    sequential(f->a, id, 1200);
    struct view want, v;
    int lazy;
    look(f->a, id, &want, &lazy);
    assert_true(lazy);
    char *stp = note_file(f->a, id, "state");
    assert_int_equal(unlink(stp), 0);
    look(f->a, id, &v, &lazy);
    assert_false(lazy);
    assert_int_equal(v.nbytes, want.nbytes);
    assert_memory_equal(v.text, want.text, v.nbytes);
    view_free(&want);
    view_free(&v);
    free(stp);
}

/* The log replaced by another handle's compaction, or cut in place, while
 * a doc opened from the snapshot is still lazy: its replay builds what it
 * opened (the same file), or, when that file was cut, the log as it is. */
static void test_lazy_log_changed(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    sequential(f->a, id, 1500);
    notes_doc *lazy, *w;
    struct view want, v;
    int l;
    look(f->a, id, &want, &l);
    assert_true(l);

    assert_int_equal(notes_doc_open(f->a, id, &lazy), NOTES_OK);
    assert_true(lazy->lazy);
    assert_int_equal(notes_doc_open(f->a, id, &w), NOTES_OK);
    assert_int_equal(notes_doc_compact(w, 3), NOTES_OK);
    notes_doc_free(w);
    view_take(lazy, &v);
    view_equal(&v, &want);
    view_free(&v);
    notes_doc_free(lazy);

    /* Cut in place: the last 10 bytes of the (compacted) log. */
    assert_int_equal(notes_doc_open(f->a, id, &lazy), NOTES_OK);
    assert_true(lazy->lazy);
    char *lp = note_file(f->a, id, "log");
    size_t n;
    unsigned char *log = test_slurp(lp, &n);
    assert_int_equal(truncate(lp, (off_t)(n - 10)), 0);
    assert_int_equal(notes_doc_change_count(lazy), 0); /* nothing intact */
    assert_false(lazy->lazy);
    assert_int_not_equal(notes_doc_intact(lazy), NOTES_OK);
    notes_doc_free(lazy);
    assert_int_equal(test_spit(lp, log, n), 0);
    free(log);
    free(lp);
    view_free(&want);
}

/* notes_doc_open_history replays at once (no snapshot read), and answers
 * what the snapshot answers. */
static void test_open_history(void **state)
{
    struct test_devices *f = *state;
    uint8_t id[16];
    concurrent(f, id);
    struct view snap, hist;
    int lazy;
    look(f->a, id, &snap, &lazy);
    assert_true(lazy);
    notes_doc *d;
    assert_int_equal(notes_doc_open_history(f->a, id, &d), NOTES_OK);
    assert_false(d->lazy);
    view_take(d, &hist);
    notes_doc_free(d);
    view_equal(&snap, &hist);
    view_free(&snap);
    view_free(&hist);
    uint8_t none[16] = {0};
    d = (notes_doc *)1;
    assert_int_equal(notes_doc_open_history(f->a, none, &d), NOTES_ENOTFOUND);
    assert_null(d);
}

/* A live (deferred) handle flushes every few ms while people type: its
 * snapshot follows at most every NOTES__SNAP_LIVE_MS, and the one it put
 * off is written when the handle is freed. */
static void test_live_flush_rate(void **state)
{
    struct test_devices *f = *state;
    notes_doc *d;
    assert_int_equal(notes_doc_create(f->a, &d), NOTES_OK);
    uint8_t id[16];
    memcpy(id, notes_doc_id(d), 16);
    splice(d, 0, 0, "# Live\n");
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    notes_doc_set_defer(d, NOTES_DEFER_STATE);
    struct view v;
    int lazy;
    splice(d, notes_doc_length(d), 0, "one ");
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(notes_doc_flush(d), NOTES_OK); /* the first: written */
    look(f->a, id, &v, &lazy);
    assert_true(lazy);
    view_free(&v);
    splice(d, notes_doc_length(d), 0, "two ");
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    assert_int_equal(notes_doc_flush(d), NOTES_OK); /* within the period */
    assert_true(d->snap_owed);
    look(f->a, id, &v, &lazy);
    assert_false(lazy); /* the snapshot is behind the log: replayed */
    assert_non_null(strstr(v.text, "one two "));
    view_free(&v);
    notes_doc_free(d); /* writes the one it owed */
    look(f->a, id, &v, &lazy);
    assert_true(lazy);
    assert_non_null(strstr(v.text, "one two "));
    view_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sequential_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_samples_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy_then_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy_log_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_flush_rate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
