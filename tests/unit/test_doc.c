/*
 * test_doc.c: documents over replicas: commit and reopen, exchange between
 * replicas, convergence of concurrent edits, rejection of forged, broken
 * and incomplete changes (nothing stored), equivocation, torn tails, and
 * two processes committing to one replica at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "change.h"
#include "devices.h"
#include "notefile.h"
#include "store.h"
#include "tmpdir.h"

static int setup(void **state)
{
    *state = test_devices_new("doc", "ana", "bo", "cy", (char *)NULL);
    return 0;
}

static int teardown(void **state)
{
    test_devices_free(*state);
    return 0;
}

static void splice(notes_doc *d, size_t pos, size_t del, const char *s)
{
    assert_int_equal(notes_doc_splice(d, pos, del, s, strlen(s)), NOTES_OK);
}

static void commit(notes_doc *d)
{
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
}

static const char *text(notes_doc *d)
{
    return notes_doc_text(d, NULL);
}

/* Send everything `from` has that `to` lacks. */
static size_t sync_to(notes_doc *from, notes_doc *to)
{
    uint8_t(*heads)[32], *bytes;
    size_t nh, n, added;
    assert_int_equal(notes_doc_heads(to, &heads, &nh), NOTES_OK);
    assert_int_equal(notes_doc_export(from, (const uint8_t(*)[32])heads, nh,
                                      &bytes, &n), NOTES_OK);
    assert_int_equal(notes_doc_merge(to, bytes, n, &added), NOTES_OK);
    notes_free(bytes);
    notes_free(heads);
    return added;
}

static notes_doc *open_copy(notes_replica *r, notes_doc *of)
{
    notes_doc *d;
    int rc = notes_doc_open(r, notes_doc_id(of), &d);
    if (rc == NOTES_ENOTFOUND)
        rc = notes_doc_create_id(r, notes_doc_id(of), &d);
    assert_int_equal(rc, NOTES_OK);
    return d;
}

static void assert_verifies(notes_doc *d)
{
    notes_verify_report rep;
    int rc = notes_doc_verify(d, &rep);
    for (size_t i = 0; i < rep.nproblems; i++)
        print_message("problem: %s\n", rep.problems[i].message);
    assert_int_equal(rc, NOTES_OK);
    assert_int_equal(rep.changes, notes_doc_change_count(d));
    notes_verify_report_clear(&rep);
}

static void test_doc_commit_reopen(void **state)
{
    struct test_devices *f = *state;
    notes_doc *d, *e;
    uint8_t id[32], zero[32] = {0};
    assert_int_equal(notes_doc_create(f->a, &d), NOTES_OK);
    splice(d, 0, 0, "Hello wörld 日本\n");
    splice(d, 6, 5, "there");
    assert_int_equal(notes_doc_set_field(d, "title", "Weekly"), NOTES_OK);
    assert_int_equal(notes_doc_list_add(d, "participants", "Ana"), NOTES_OK);
    assert_int_equal(notes_doc_list_add(d, "participants", "Bo"), NOTES_OK);
    assert_int_equal(notes_doc_commit(d, id), NOTES_OK);
    assert_memory_not_equal(id, zero, 32);
    /* Nothing pending: commit is a no-op that records nothing. */
    assert_int_equal(notes_doc_commit(d, id), NOTES_OK);
    assert_memory_equal(id, zero, 32);
    splice(d, 0, 5, "Hi");
    assert_int_equal(notes_doc_list_remove(d, "participants", "Ana"), NOTES_OK);
    commit(d);
    assert_string_equal(text(d), "Hi there 日本\n");
    assert_int_equal(notes_doc_length(d), 12);

    assert_int_equal(notes_doc_open(f->a, notes_doc_id(d), &e), NOTES_OK);
    assert_string_equal(text(e), "Hi there 日本\n");
    assert_string_equal(notes_doc_field(e, "title"), "Weekly");
    const char *const *p = notes_doc_list(e, "participants");
    assert_string_equal(p[0], "Bo");
    assert_null(p[1]);
    assert_int_equal(notes_doc_change_count(e), 2);
    notes_change_info ci;
    assert_int_equal(notes_doc_change(e, 1, &ci), NOTES_OK);
    assert_int_equal(ci.seq, 2);
    assert_memory_equal(ci.author, notes_replica_public_key(f->a), 32);
    assert_int_equal(ci.deleted, 5);
    assert_int_equal(ci.inserted, 2);
    /* Out-of-range edits and bad UTF-8 change nothing. */
    assert_int_equal(notes_doc_splice(e, 13, 0, "x", 1), NOTES_EBADOP);
    assert_int_equal(notes_doc_splice(e, 10, 3, "", 0), NOTES_EBADOP);
    assert_int_equal(notes_doc_splice(e, 0, 0, "\xff", 1), NOTES_EINVAL);
    assert_int_equal(notes_doc_dirty(e), 0);
    assert_verifies(e);
    /* History: the text at the first change. */
    char *old;
    size_t n;
    uint8_t v[1][32];
    assert_int_equal(notes_doc_change(e, 0, &ci), NOTES_OK);
    memcpy(v[0], ci.id, 32);
    assert_int_equal(notes_doc_text_at(e, (const uint8_t(*)[32])v, 1, &old, &n),
                     NOTES_OK);
    assert_string_equal(old, "Hello there 日本\n");
    notes_free(old);
    notes_doc_free(d);
    notes_doc_free(e);
}

static void test_doc_concurrent_converge(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b, *c;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "## Decisions\n\n");
    assert_int_equal(notes_doc_set_field(a, "title", "Plan"), NOTES_OK);
    commit(a);
    b = open_copy(f->b, a);
    c = open_copy(f->c, a);
    assert_int_equal(sync_to(a, b), 1);
    assert_int_equal(sync_to(a, c), 1);
    assert_string_equal(text(b), "## Decisions\n\n");
    /* All three edit the same place, and the title, concurrently. */
    splice(a, 14, 0, "RD: book the room\n");
    assert_int_equal(notes_doc_set_field(a, "title", "Plan A"), NOTES_OK);
    commit(a);
    splice(b, 14, 0, "Everyone: read the draft\n");
    assert_int_equal(notes_doc_set_field(b, "title", "Plan B"), NOTES_OK);
    commit(b);
    splice(c, 3, 9, "Décisions ✓");
    assert_int_equal(notes_doc_list_add(c, "participants", "Cy"), NOTES_OK);
    commit(c);
    splice(c, notes_doc_length(c), 0, "CY: ship it 🚀\n");
    commit(c);
    /* Deliver in different orders. */
    sync_to(b, a);
    sync_to(c, a);
    sync_to(c, b);
    sync_to(a, b);
    sync_to(a, c);
    sync_to(b, c);
    assert_string_equal(text(a), text(b));
    assert_string_equal(text(b), text(c));
    assert_non_null(strstr(text(a), "RD: book the room\n"));
    assert_non_null(strstr(text(a), "Everyone: read the draft\n"));
    assert_non_null(strstr(text(a), "## Décisions ✓\n"));
    assert_non_null(strstr(text(a), "CY: ship it 🚀\n"));
    /* One title wins everywhere; the other is a visible conflict. */
    assert_string_equal(notes_doc_field(a, "title"), notes_doc_field(b, "title"));
    assert_string_equal(notes_doc_field(a, "title"), notes_doc_field(c, "title"));
    const char *const *conf = notes_doc_field_conflicts(a, "title");
    assert_non_null(conf[0]);
    assert_null(conf[1]);
    assert_string_not_equal(conf[0], notes_doc_field(a, "title"));
    assert_string_equal(notes_doc_list(b, "participants")[0], "Cy");
    /* A later write by someone who saw both resolves the conflict. */
    assert_int_equal(notes_doc_set_field(b, "title", "Plan C"), NOTES_OK);
    commit(b);
    sync_to(b, a);
    assert_string_equal(notes_doc_field(a, "title"), "Plan C");
    assert_null(notes_doc_field_conflicts(a, "title")[0]);
    assert_verifies(a);
    assert_verifies(b);
    assert_verifies(c);
    /* Reopening from disk gives the same state. */
    notes_doc *a2 = open_copy(f->a, a);
    assert_string_equal(text(a2), text(a));
    /* Authorship: every character knows its change's author. */
    uint32_t *who;
    size_t ncp;
    assert_int_equal(notes_doc_authorship(a2, &who, &ncp), NOTES_OK);
    assert_int_equal(ncp, notes_doc_length(a2));
    const char *t = text(a2);
    const char *rd = strstr(t, "RD: book");
    size_t cp = 0;
    for (const char *q = t; q < rd; q++)
        cp += ((unsigned char)*q & 0xc0) != 0x80;
    notes_change_info ci;
    assert_int_equal(notes_doc_change(a2, who[cp], &ci), NOTES_OK);
    assert_memory_equal(ci.author, notes_replica_public_key(f->a), 32);
    notes_free(who);
    notes_doc_free(a2);
    notes_doc_free(a);
    notes_doc_free(b);
    notes_doc_free(c);
}

static char *log_path(notes_replica *r, notes_doc *d)
{
    return test_note_file(notes_replica_home(r), notes_doc_id(d), "log");
}

/* The note's log size, 0 when there is none. */
static size_t log_size(notes_replica *r, notes_doc *d)
{
    char *p = log_path(r, d);
    long n = test_file_size(p);
    free(p);
    return n < 0 ? 0 : (size_t)n;
}

/* Build a bundle out of raw change encodings. */
static uint8_t *bundle_of(const uint8_t *const *ch, const size_t *lens, size_t n,
                          size_t *out)
{
    struct notes_buf b;
    notes__buf_init(&b, 1 << 30);
    assert_int_equal(notes__buf_put(&b, "NTB\x01", 4), NOTES_OK);
    assert_int_equal(notes__payload_encode(&b, ch, lens, n), NOTES_OK);
    *out = b.len;
    return b.data;
}

static void test_doc_forged_rejected(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b;
    uint8_t *bytes;
    size_t n, added;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "first\n");
    commit(a);
    b = open_copy(f->b, a);
    sync_to(a, b);
    size_t before = log_size(f->b, b);
    splice(a, 6, 0, "second\n");
    commit(a);
    splice(a, 13, 0, "third\n");
    commit(a);

    uint8_t(*heads)[32];
    size_t nh;
    assert_int_equal(notes_doc_heads(b, &heads, &nh), NOTES_OK);
    assert_int_equal(notes_doc_export(a, (const uint8_t(*)[32])heads, nh,
                                      &bytes, &n), NOTES_OK);
    /* Flip one byte inside each position of the bundle's changes. */
    for (size_t i = 6; i < n; i += 7) {
        bytes[i] ^= 1;
        int rc = notes_doc_merge(b, bytes, n, &added);
        bytes[i] ^= 1;
        assert_int_not_equal(rc, NOTES_OK);
        assert_int_equal(notes_doc_change_count(b), 1);
        assert_string_equal(text(b), "first\n");
        assert_int_equal(log_size(f->b, b), before);
    }
    /* The unmodified bundle still goes in. */
    assert_int_equal(notes_doc_merge(b, bytes, n, &added), NOTES_OK);
    assert_int_equal(added, 2);
    assert_string_equal(text(b), "first\nsecond\nthird\n");
    notes_free(bytes);
    notes_free(heads);

    /* A change missing its predecessor: only the last change of a. */
    notes_doc *c = open_copy(f->c, a);
    notes_change_info ci;
    assert_int_equal(notes_doc_change(a, 2, &ci), NOTES_OK);
    uint8_t v[1][32];
    memcpy(v[0], ci.id, 32);
    assert_int_equal(notes_doc_change(a, 1, &ci), NOTES_OK);
    memcpy(v[0], ci.id, 32);
    assert_int_equal(notes_doc_export(a, (const uint8_t(*)[32])v, 1, &bytes, &n),
                     NOTES_OK);
    assert_int_equal(notes_doc_merge(c, bytes, n, &added), NOTES_EMISSINGDEP);
    assert_non_null(strstr(notes_last_detail(), "missing"));
    assert_int_equal(notes_doc_change_count(c), 0);
    assert_int_equal(log_size(f->c, c), 0);
    notes_free(bytes);

    /* Garbage and truncated bundles. */
    assert_int_equal(notes_doc_merge(c, (const uint8_t *)"garbage", 7, &added),
                     NOTES_ECORRUPT);
    assert_int_equal(notes_doc_export(a, NULL, 0, &bytes, &n), NOTES_OK);
    for (size_t cut = 0; cut < n; cut += 5)
        assert_int_not_equal(notes_doc_merge(c, bytes, cut, &added), NOTES_OK);
    assert_int_equal(notes_doc_change_count(c), 0);
    notes_free(bytes);
    notes_doc_free(a);
    notes_doc_free(b);
    notes_doc_free(c);
}

static notes_identity *load_identity(notes_replica *r)
{
    notes_identity *id;
    char *p = test_path(notes_replica_home(r), "identity");
    assert_int_equal(notes_identity_load(p, NULL, &id), NOTES_OK);
    free(p);
    return id;
}

static struct notes__change *forge(notes_identity *id, const uint8_t doc[16],
                                   uint64_t seq, const uint8_t prev[32],
                                   const uint8_t (*deps)[32], uint32_t nd,
                                   uint32_t pos, const char *s)
{
    struct notes__change_builder b;
    struct notes__change *c;
    notes__builder_init(&b);
    assert_int_equal(notes__builder_ins(&b, pos, (const uint8_t *)s, strlen(s),
                                        (uint32_t)strlen(s)), NOTES_OK);
    assert_int_equal(notes__builder_finish(&b, doc, id, seq, prev, deps, nd, 1, 1,
                                           &c), NOTES_OK);
    notes__builder_release(&b);
    return c;
}

/* Signed changes that break the chain or the sequence or the document. */
static void test_doc_bad_chain(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b;
    size_t n, added;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "x");
    commit(a);
    b = open_copy(f->b, a);
    sync_to(a, b);
    notes_identity *ida = load_identity(f->a);
    notes_change_info ci;
    assert_int_equal(notes_doc_change(a, 0, &ci), NOTES_OK);
    uint8_t first[32], junk[32];
    memcpy(first, ci.id, 32);
    memset(junk, 0x5a, 32);
    struct {
        uint64_t seq;
        const uint8_t *prev;
        int want;
        int wrong_doc;
    } cases[] = {
        {2, junk, NOTES_EMISSINGDEP, 0},  /* prev names nothing we have */
        {3, first, NOTES_EBADSEQ, 0},     /* seq jumps over 2 */
        {2, first, NOTES_EWRONGDOC, 1},   /* another note's id */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t other[16] = {0xee};
        struct notes__change *c =
            forge(ida, cases[i].wrong_doc ? other : notes_doc_id(a), cases[i].seq,
                  cases[i].prev, (const uint8_t(*)[32])first, 1, 1, "y");
        const uint8_t *p = c->bytes;
        size_t l = c->nbytes;
        uint8_t *bundle = bundle_of(&p, &l, 1, &n);
        assert_int_equal(notes_doc_merge(b, bundle, n, &added), cases[i].want);
        assert_int_equal(notes_doc_change_count(b), 1);
        notes_free(bundle);
        notes__change_free(c);
    }
    /* A dependency that does not exist. */
    struct notes__change *c = forge(ida, notes_doc_id(a), 2, first,
                                    (const uint8_t(*)[32])junk, 1, 1, "y");
    const uint8_t *p = c->bytes;
    size_t l = c->nbytes;
    uint8_t *bundle = bundle_of(&p, &l, 1, &n);
    assert_int_equal(notes_doc_merge(b, bundle, n, &added), NOTES_EMISSINGDEP);
    notes_free(bundle);
    notes__change_free(c);
    /* A position beyond the text it refers to (signed, chain fine). */
    c = forge(ida, notes_doc_id(a), 2, first, (const uint8_t(*)[32])first, 1, 5,
              "y");
    p = c->bytes;
    l = c->nbytes;
    bundle = bundle_of(&p, &l, 1, &n);
    assert_int_equal(notes_doc_merge(b, bundle, n, &added), NOTES_EBADOP);
    assert_int_equal(notes_doc_change_count(b), 1);
    assert_string_equal(text(b), "x");
    notes_free(bundle);
    notes__change_free(c);
    assert_verifies(b);
    notes_identity_free(ida);
    notes_doc_free(a);
    notes_doc_free(b);
}

/* Two different changes with one seq: kept, reported, both applied the
 * same way everywhere whatever the arrival order. */
static void test_doc_equivocation(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b, *c;
    size_t n, added;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "base\n");
    commit(a);
    notes_identity *ida = load_identity(f->a);
    notes_change_info ci;
    assert_int_equal(notes_doc_change(a, 0, &ci), NOTES_OK);
    uint8_t first[32];
    memcpy(first, ci.id, 32);
    struct notes__change *x = forge(ida, notes_doc_id(a), 2, first,
                                    (const uint8_t(*)[32])first, 1, 5, "fork one\n");
    struct notes__change *y = forge(ida, notes_doc_id(a), 2, first,
                                    (const uint8_t(*)[32])first, 1, 5, "fork two\n");
    uint8_t *base;
    assert_int_equal(notes_doc_export(a, NULL, 0, &base, &n), NOTES_OK);
    b = open_copy(f->b, a);
    c = open_copy(f->c, a);
    assert_int_equal(notes_doc_merge(b, base, n, &added), NOTES_OK);
    assert_int_equal(notes_doc_merge(c, base, n, &added), NOTES_OK);
    notes_free(base);
    const uint8_t *px = x->bytes, *py = y->bytes;
    size_t lx = x->nbytes, ly = y->nbytes;
    uint8_t *bx = bundle_of(&px, &lx, 1, &n);
    assert_int_equal(notes_doc_merge(b, bx, n, &added), NOTES_OK);
    size_t nx = n;
    uint8_t *by = bundle_of(&py, &ly, 1, &n);
    size_t ny = n;
    assert_int_equal(notes_doc_merge(b, by, ny, &added), NOTES_OK);
    assert_int_equal(added, 1);
    assert_int_equal(notes_doc_merge(c, by, ny, &added), NOTES_OK);
    assert_int_equal(notes_doc_merge(c, bx, nx, &added), NOTES_OK);
    assert_string_equal(text(b), text(c));
    /* Both branches are applied, as concurrent inserts at one place: the
     * order comes from their (branch) agent keys, the same everywhere. */
    const char *tb = text(b);
    assert_true(strcmp(tb, "base\nfork one\nfork two\n") == 0 ||
                strcmp(tb, "base\nfork two\nfork one\n") == 0);
    notes_verify_report rep;
    assert_int_equal(notes_doc_verify(b, &rep), NOTES_EEQUIVOCATION);
    assert_int_equal(rep.nproblems, 1);
    assert_non_null(strstr(rep.problems[0].message, "seq 2"));
    notes_verify_report_clear(&rep);
    /* Evidence survives a reopen, and so does the decision. */
    notes_doc *b2 = open_copy(f->b, b);
    assert_string_equal(text(b2), text(b));
    assert_int_equal(notes_doc_change_count(b2), 3);
    notes_doc_free(b2);
    notes_free(bx);
    notes_free(by);
    notes__change_free(x);
    notes__change_free(y);
    notes_identity_free(ida);
    notes_doc_free(a);
    notes_doc_free(b);
    notes_doc_free(c);
}


/* A tail past what was acknowledged (an interrupted write nobody was told
 * about) versus damage below it: only the first is cut as torn; opening
 * changes no file; a damaged note refuses to sign until a peer's copy
 * brings back what it lacks. */
static void test_doc_torn_tail(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *e;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "one\n");
    commit(a);
    size_t good = log_size(f->a, a);
    splice(a, 4, 0, "two\n");
    commit(a);
    size_t all = log_size(f->a, a);
    char *path = log_path(f->a, a);
    size_t n;
    unsigned char *whole = test_slurp(path, &n);
    assert_int_equal(n, all);

    /* An incomplete record after the acknowledged end: torn, not damage. */
    unsigned char *longer = malloc(all + 20);
    memcpy(longer, whole, all);
    memcpy(longer + all, whole + good, 20); /* the start of a record */
    test_spit(path, longer, all + 20);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_int_equal(notes_doc_intact(e), NOTES_OK);
    assert_non_null(strstr(notes_doc_damage(e), "never acknowledged"));
    assert_string_equal(text(e), "one\ntwo\n");
    assert_int_equal(log_size(f->a, a), all + 20); /* reading cut nothing */
    splice(e, 8, 0, "three\n");
    commit(e); /* the writer sets the torn bytes aside, then appends */
    assert_non_null(strstr(notes_doc_repaired(e), ".torn-"));
    notes_doc_free(e);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_null(notes_doc_damage(e));
    assert_string_equal(text(e), "one\ntwo\nthree\n");
    assert_verifies(e);
    /* A peer holds it all. */
    notes_doc *peer = open_copy(f->b, e);
    sync_to(e, peer);
    notes_doc_free(e);

    /* The acknowledged last record cut in the middle: damage, reported,
     * the last good state shown, nothing changed by reading. */
    test_spit(path, whole, good + (all - good) / 2);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_int_equal(notes_doc_intact(e), NOTES_ECORRUPT);
    assert_non_null(strstr(notes_doc_damage(e), path));
    assert_non_null(strstr(notes_doc_damage(e), "acknowledged"));
    assert_string_equal(text(e), "one\n");
    assert_int_equal(log_size(f->a, a), good + (all - good) / 2);
    notes_verify_report rep;
    assert_int_not_equal(notes_doc_verify(e, &rep), NOTES_OK);
    notes_verify_report_clear(&rep);
    /* A commit sets the damaged bytes aside but signs nothing: this device
     * signed seq 2 and 3 already, in changes the log lost. */
    splice(e, 4, 0, "four\n");
    assert_int_equal(notes_doc_commit(e, NULL), NOTES_EROLLBACK);
    assert_non_null(strstr(notes_doc_repaired(e), ".damaged-"));
    assert_string_equal(text(e), "one\n");
    assert_int_equal(log_size(f->a, a), good);
    /* The peer's copy brings everything back. */
    sync_to(peer, e);
    notes_doc_free(peer);
    assert_int_equal(notes_doc_intact(e), NOTES_OK);
    assert_string_equal(text(e), "one\ntwo\nthree\n");
    splice(e, notes_doc_length(e), 0, "four\n");
    commit(e);
    notes_change_info ci;
    assert_int_equal(notes_doc_change(e, notes_doc_change_count(e) - 1, &ci),
                     NOTES_OK);
    assert_int_equal(ci.seq, 4); /* after the highest seq it ever signed */
    assert_verifies(e);
    notes_doc_free(e);
    free(longer);
    free(whole);
    free(path);
    notes_doc_free(a);
}

/* Two processes of the same identity commit to one note at once. */
static void test_doc_two_processes(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a;
    enum { PER_CHILD = 40 };
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "start\n");
    commit(a);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            notes_replica *r;
            notes_doc *d;
            if (notes_replica_open(notes_replica_home(f->a), &r) ||
                notes_replica_unlock(r, NULL) ||
                notes_doc_open(r, notes_doc_id(a), &d))
                _exit(10);
            for (int i = 0; i < PER_CHILD; i++) {
                char line[64];
                snprintf(line, sizeof(line), "child %d line %d\n", k, i);
                int rc = notes_doc_splice(d, notes_doc_length(d), 0, line,
                                          strlen(line));
                if (!rc)
                    rc = notes_doc_commit(d, NULL);
                if (rc) {
                    fprintf(stderr, "child %d: %s: %s\n", k, notes_strerror(rc),
                            notes_last_detail());
                    _exit(11);
                }
            }
            notes_doc_free(d);
            notes_replica_free(r);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    notes_doc *e;
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    if (notes_doc_damage(e))
        print_message("damage: %s\n", notes_doc_damage(e));
    assert_null(notes_doc_damage(e));
    assert_int_equal(notes_doc_change_count(e), 1 + 2 * PER_CHILD);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < PER_CHILD; i++) {
            char line[64];
            snprintf(line, sizeof(line), "child %d line %d\n", k, i);
            const char *hit = strstr(text(e), line);
            assert_non_null(hit);
            assert_null(strstr(hit + 1, line));
        }
    }
    assert_verifies(e);
    notes_doc_free(e);
    notes_doc_free(a);
}

/* Compaction keeps every change, signature and decision; a damaged pack
 * is detected like any record. */
static void test_doc_compact(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b, *e;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "## Decisions\n");
    assert_int_equal(notes_doc_set_field(a, "title", "Plan"), NOTES_OK);
    commit(a);
    b = open_copy(f->b, a);
    sync_to(a, b);
    for (int i = 0; i < 20; i++) {
        char line[64];
        snprintf(line, sizeof(line), "line %d é🚀\n", i);
        splice(i % 2 ? a : b, notes_doc_length(i % 2 ? a : b), 0, line);
        if (i % 5 == 4)
            splice(a, 3, 2, "");
        commit(a);
        commit(b);
        if (i % 3 == 0) {
            sync_to(a, b);
            sync_to(b, a);
        }
    }
    assert_int_equal(notes_doc_set_field(b, "title", "Plan B"), NOTES_OK);
    assert_int_equal(notes_doc_list_add(b, "participants", "Bo"), NOTES_OK);
    commit(b);
    sync_to(b, a);
    char *before = strdup(text(a));
    size_t nchanges = notes_doc_change_count(a);
    size_t size_before = log_size(f->a, a);
    assert_int_equal(notes_doc_compact(a, 19), NOTES_OK);
    assert_true(log_size(f->a, a) < size_before);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_null(notes_doc_damage(e));
    assert_string_equal(text(e), before);
    assert_string_equal(notes_doc_field(e, "title"), "Plan B");
    assert_string_equal(notes_doc_list(e, "participants")[0], "Bo");
    assert_int_equal(notes_doc_change_count(e), nchanges);
    assert_verifies(e);
    /* The doc that compacted goes on writing after the pack. */
    splice(a, 0, 0, "top\n");
    commit(a);
    notes_doc_free(e);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_string_equal(text(e), text(a));
    assert_verifies(e);
    notes_doc_free(e);
    /* Every byte flip of the packed log is reported as damage (the pack
     * was acknowledged), and opening changes nothing. */
    assert_int_equal(notes_doc_compact(a, 3), NOTES_OK);
    char *path = log_path(f->a, a);
    size_t n;
    unsigned char *orig = test_slurp(path, &n);
    for (size_t i = 0; i < n; i += 3) {
        orig[i] ^= 0x10;
        test_spit(path, orig, n);
        assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
        assert_int_not_equal(notes_doc_intact(e), NOTES_OK);
        assert_non_null(notes_doc_damage(e));
        assert_int_equal(notes_doc_change_count(e), 0);
        notes_doc_free(e);
        size_t m;
        unsigned char *now = test_slurp(path, &m);
        assert_int_equal(m, n);
        assert_memory_equal(now, orig, n);
        free(now);
        orig[i] ^= 0x10;
    }
    test_spit(path, orig, n);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_string_equal(text(e), text(a));
    notes_doc_free(e);
    free(orig);
    free(path);
    free(before);
    notes_doc_free(a);
    notes_doc_free(b);
}

/* One process compacts while another keeps committing: nothing is lost. */
static void test_doc_compact_concurrent(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a;
    enum { N = 60 };
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "start\n");
    commit(a);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        notes_replica *r;
        notes_doc *d;
        if (notes_replica_open(notes_replica_home(f->a), &r) ||
            notes_replica_unlock(r, NULL) ||
            notes_doc_open(r, notes_doc_id(a), &d))
            _exit(10);
        for (int i = 0; i < N; i++) {
            char line[64];
            snprintf(line, sizeof(line), "writer line %d\n", i);
            if (notes_doc_splice(d, notes_doc_length(d), 0, line, strlen(line)) ||
                notes_doc_commit(d, NULL))
                _exit(11);
        }
        _exit(0);
    }
    for (int i = 0; i < 15; i++)
        assert_int_equal(notes_doc_compact(a, 1), NOTES_OK);
    int st;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    notes_doc *e;
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_int_equal(notes_doc_change_count(e), 1 + N);
    for (int i = 0; i < N; i++) {
        char line[64];
        snprintf(line, sizeof(line), "writer line %d\n", i);
        assert_non_null(strstr(text(e), line));
    }
    assert_verifies(e);
    notes_doc_free(e);
    notes_doc_free(a);
}

/* Many commits: the log folds itself into a pack on the way. */
static void test_doc_auto_compact(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *e;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    size_t max = 0;
    for (int i = 0; i < 300; i++) {
        char line[32];
        snprintf(line, sizeof(line), "entry %d\n", i);
        splice(a, notes_doc_length(a), 0, line);
        commit(a);
        size_t sz = log_size(f->a, a);
        if (sz > max)
            max = sz;
    }
    /* 300 one-line records would take ~300 * 200 bytes; a pack far less. */
    assert_true(log_size(f->a, a) < max);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_int_equal(notes_doc_change_count(e), 300);
    assert_string_equal(text(e), text(a));
    assert_verifies(e);
    notes_doc_free(e);
    notes_doc_free(a);
}

struct grab {
    uint8_t *p[64];
    size_t n[64];
    size_t count;
};

static int grab_cb(void *ctx, const uint8_t *p, size_t n,
                   const uint8_t *id)
{
    (void)id;
    struct grab *g = ctx;
    g->p[g->count] = malloc(n);
    memcpy(g->p[g->count], p, n);
    g->n[g->count++] = n;
    return NOTES_OK;
}

/* The local MAC only ever vouches for bytes this device verified: a log
 * rewritten with valid record checksums but a forged signature, or a
 * tampered sidecar, leads to full verification, and the forgery is
 * refused. */
static void test_doc_local_mac(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *e;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    for (int i = 0; i < 4; i++) {
        splice(a, notes_doc_length(a), 0, "line\n");
        commit(a);
    }
    char *path = log_path(f->a, a);
    char mac[4200];
    snprintf(mac, sizeof(mac), "%.*s.state", (int)strlen(path) - 4, path);
    struct stat st;
    assert_int_equal(stat(mac, &st), 0);
    /* Reopen: trusted, same state. */
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_string_equal(text(e), "line\nline\nline\nline\n");
    notes_doc_free(e);
    /* Rewrite the log with the last change's signature altered. */
    struct notes__log *lg;
    struct grab g = {0};
    assert_int_equal(notes__log_open(path, notes_doc_id(a), 0, &lg), NOTES_OK);
    assert_int_equal(notes__log_read(lg, grab_cb, &g), NOTES_OK);
    notes__log_close(lg);
    assert_int_equal(g.count, 4);
    g.p[3][g.n[3] - 1] ^= 1;
    unlink(path);
    assert_int_equal(notes__log_open(path, notes_doc_id(a), 1, &lg), NOTES_OK);
    assert_int_equal(notes__log_append(lg, (const uint8_t *const *)g.p, g.n, 4, 3),
                     NOTES_OK);
    notes__log_close(lg);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_non_null(notes_doc_damage(e));
    assert_non_null(strstr(notes_doc_damage(e), "signature"));
    assert_int_equal(notes_doc_change_count(e), 3);
    notes_doc_free(e);
    /* A state claiming the whole forged file was verified (a valid
     * checksum, but the MAC of other bytes) is not believed. */
    struct notes__state ns;
    assert_int_equal(notes__state_load(mac, notes_doc_id(a), &ns), NOTES_OK);
    assert_true(ns.present);
    ns.verified_end = ns.acked_end = (uint64_t)log_size(f->a, a);
    assert_int_equal(notes__state_save(mac, notes_doc_id(a), &ns), NOTES_OK);
    assert_int_equal(notes_doc_open(f->a, notes_doc_id(a), &e), NOTES_OK);
    assert_int_equal(notes_doc_change_count(e), 3);
    notes_doc_free(e);
    for (size_t i = 0; i < g.count; i++)
        free(g.p[i]);
    free(path);
    notes_doc_free(a);
}

/* A mirror of a text kept only from what notes_doc_observe reports. */
struct mirror {
    char *s;
    size_t n;    /* bytes */
    int resets;
    size_t calls;
};

/* Byte offset of code point cp in s. */
static size_t cp_off(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (cp && i < n) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        cp--;
    }
    assert_int_equal(cp, 0);
    return i;
}

static void on_text(void *ud, size_t pos, size_t del, const char *ins,
                    size_t nbytes)
{
    struct mirror *m = ud;
    m->calls++;
    if (pos == SIZE_MAX) {
        m->resets++;
        return;
    }
    size_t at = cp_off(m->s, m->n, pos);
    size_t end = cp_off(m->s + at, m->n - at, del) + at;
    assert_true(del == 0 || nbytes == 0);
    char *t = malloc(m->n - (end - at) + nbytes + 1);
    memcpy(t, m->s, at);
    if (nbytes)
        memcpy(t + at, ins, nbytes);
    memcpy(t + at + nbytes, m->s + end, m->n - end);
    m->n = m->n - (end - at) + nbytes;
    t[m->n] = 0;
    free(m->s);
    m->s = t;
}

/*
 * An observer told of every change to the text (local splices, merges of
 * concurrent changes, changes read by refresh) can keep an exact mirror
 * of it from the reports alone: what an editor page needs.
 */
static void test_doc_observe(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b;
    struct mirror m = {strdup(""), 0, 0, 0};
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    notes_doc_observe(a, on_text, &m);
    splice(a, 0, 0, "Agenda: héllo 日本語\n");
    commit(a);
    b = open_copy(f->b, a);
    /* Concurrent edits on both sides, then a merge each way. */
    for (int round = 0; round < 20; round++) {
        size_t la = notes_doc_length(a), lb = notes_doc_length(b);
        splice(a, (size_t)round * 7 % (la + 1), 0, "ab🚀");
        if (la > 4)
            splice(a, (size_t)round % (la - 3), 2, "");
        commit(a);
        splice(b, (size_t)round * 5 % (lb + 1), 0, "xy\n");
        if (lb > 6)
            splice(b, (size_t)round * 3 % (lb - 5), 3, "é");
        commit(b);
        sync_to(b, a);
        sync_to(a, b);
        size_t n;
        const char *t = notes_doc_text(a, &n);
        assert_int_equal(m.n, n);
        assert_memory_equal(m.s, t, n);
    }
    assert_string_equal(text(a), text(b));
    assert_int_equal(m.resets, 0);
    size_t calls = m.calls;
    notes_doc_observe(a, NULL, NULL);
    splice(a, 0, 0, "unobserved");
    assert_int_equal(m.calls, calls);
    free(m.s);
    notes_doc_free(a);
    notes_doc_free(b);
}

static int cmp_id(const void *x, const void *y)
{
    return memcmp(x, y, 32);
}

/* notes_doc_commit_at with one splice; the version: `nv` ids. */
static int commit_at(notes_doc *d, const uint8_t (*v)[32], size_t nv,
                     size_t pos, size_t del, const char *ins, uint8_t id[32])
{
    notes_splice sp = {pos, del, ins, strlen(ins)};
    return notes_doc_commit_at(d, v, nv, &sp, 1, id);
}

/*
 * A page is a replica of its own: it types on the version it has seen,
 * and its daemon stores each keystroke as a change on that version, merged
 * with what arrived meanwhile (notes_doc_commit_at). Ana's page types a
 * paragraph at the end of the note while Bo types a word there, keystroke
 * by keystroke, each side's keys reaching the other between its own: both
 * stay whole, whichever way ties fall, on both replicas.
 */
static void test_doc_commit_at(void **state)
{
    struct test_devices *f = *state;
    notes_doc *a, *b;
    uint8_t(*h0)[32], (*hb)[32], id[32], own[32];
    size_t nh0, nhb;
    assert_int_equal(notes_doc_create(f->a, &a), NOTES_OK);
    splice(a, 0, 0, "Notes:");
    commit(a);
    b = open_copy(f->b, a);
    sync_to(a, b);
    assert_int_equal(notes_doc_heads(a, &h0, &nh0), NOTES_OK);
    const char *para = "\npara", *word = "bravo000";
    size_t end0 = notes_doc_length(a);
    /* Ana's page: version h0 plus its own keystrokes so far. */
    uint8_t(*ver)[32] = malloc((nh0 + 1) * 32);
    memcpy(ver, h0, nh0 * 32);
    size_t nver = nh0;
    for (size_t k = 0; k < 8; k++) {
        char c[2] = {word[k], 0};
        /* Bo types one key at the end of his text and it reaches Ana. */
        splice(b, notes_doc_length(b), 0, c);
        commit(b);
        sync_to(b, a);
        if (k < strlen(para)) {
            /* Ana's page has not seen Bo's keys: it types at end0 + k. */
            char p[2] = {para[k], 0};
            assert_int_equal(commit_at(a, (const uint8_t(*)[32])ver, nver,
                                       end0 + k, 0, p, own), NOTES_OK);
            memcpy(ver[0], own, 32); /* its next key builds on this one */
            nver = 1;
        }
    }
    sync_to(a, b);
    sync_to(b, a);
    assert_string_equal(text(a), text(b));
    assert_non_null(strstr(text(a), "bravo000"));
    assert_non_null(strstr(text(a), "\npara"));
    assert_true(strncmp(text(a), "Notes:", 6) == 0);
    assert_int_equal(strlen(text(a)), 6 + strlen(para) + strlen(word));
    assert_verifies(a);
    assert_verifies(b);

    /* A version with an ancestor among its ids: the change depends on the
     * frontier only. */
    assert_int_equal(notes_doc_heads(a, &hb, &nhb), NOTES_OK);
    uint8_t(*both)[32] = malloc((nhb + nh0) * 32);
    memcpy(both, hb, nhb * 32);
    memcpy(both[nhb], h0, nh0 * 32);
    qsort(both, nhb + nh0, 32, cmp_id);
    assert_int_equal(commit_at(a, (const uint8_t(*)[32])both, nhb + nh0, 0, 0,
                               "# ", id), NOTES_OK);
    {
        const uint8_t(*deps)[32];
        size_t nd, last = notes_doc_change_count(a) - 1;
        assert_int_equal(notes_doc_change_deps(a, last, &deps, &nd), NOTES_OK);
        assert_int_equal(nd, nhb);
        assert_memory_equal(deps, hb, nhb * 32);
    }
    assert_true(strncmp(text(a), "# Notes:", 8) == 0);

    /* Refused, nothing stored: a splice outside the text of its version
     * (inside the current text), an unknown id, pending edits. */
    size_t count = notes_doc_change_count(a);
    char *before = strdup(text(a));
    assert_int_equal(commit_at(a, (const uint8_t(*)[32])h0, nh0, 8, 0, "x",
                               id), NOTES_EBADOP);
    assert_non_null(strstr(notes_last_detail(), "outside"));
    assert_string_equal(text(a), before);
    assert_int_equal(notes_doc_change_count(a), count);
    uint8_t ghost[1][32];
    memset(ghost, 0x5a, sizeof(ghost));
    assert_int_equal(commit_at(a, (const uint8_t(*)[32])ghost, 1, 0, 0, "x",
                               id), NOTES_ENOTFOUND);
    splice(a, 0, 0, "p");
    assert_int_equal(commit_at(a, (const uint8_t(*)[32])h0, nh0, 0, 0, "x",
                               id), NOTES_EINVAL);
    commit(a);
    assert_int_equal(notes_doc_change_count(a), count + 1);
    assert_string_equal(text(a) + 1, before);
    assert_verifies(a);
    /* Reopened from the log: the same text. */
    notes_doc *a2 = open_copy(f->a, a);
    assert_string_equal(text(a2), text(a));
    notes_doc_free(a2);
    free(before);
    free(both);
    free(ver);
    notes_free(hb);
    notes_free(h0);
    notes_doc_free(a);
    notes_doc_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_doc_commit_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_concurrent_converge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_forged_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_bad_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_equivocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_compact_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_local_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_auto_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_observe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_commit_at, setup, teardown),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
