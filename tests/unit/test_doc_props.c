/*
 * test_doc_props.c: randomized properties of whole documents (text and
 * front matter) over signed changes.
 *
 * Concurrent mode: 3-5 replicas (memory documents, one author each) edit
 * at random and exchange incremental bundles that are delivered late, out
 * of order and more than once. After a final full exchange every replica
 * holds byte-identical text, fields, lists and conflicts; and replaying all
 * changes one by one, in several shuffled causal orders, into fresh
 * replicas gives that same state.
 * Sequential mode: each edit is made by a replica that first received
 * everything, so the result is defined: it must equal a plain model (a
 * string, a map and ordered lists) edited the same way.
 *
 * NOTES_TEST_SEED=N replays one case; NOTES_TEST_CASES=N sets the count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pack.h"
#include "store.h"

#define MAXR 5

static uint64_t rng;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

static const char *pieces[] = {"a", "b", "xyz", "é", "日本語", "🚀", "\n",
                               "RD: ", "Everyone: ", "ü🙂ß", " ", "## Dec"};
static const char *titles[] = {"Weekly", "Retro", "Planning", "Sync"};
static const char *people[] = {"Ana", "Bo", "Cy", "Dee", "Eli"};

/* ---- the plain model ---- */

struct model {
    char text[1 << 16];
    size_t len;              /* bytes */
    char title[32];          /* "" = unset */
    int member[5];           /* people present */
    int order[5], norder;    /* order of first surviving add */
};

static size_t cp_off(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

/* ---- replicas ---- */

struct world {
    notes_identity *id[MAXR];
    notes_doc *d[MAXR];
    int n;
    /* In-flight bundles: (destination, bytes). */
    struct { int to; uint8_t *b; size_t n; } q[4096];
    int nq;
};

static void heads_of(notes_doc *d, uint8_t (**h)[32], size_t *n)
{
    assert_int_equal(notes_doc_heads(d, h, n), NOTES_OK);
}

static void send(struct world *w, int from, int to)
{
    uint8_t(*h)[32], *b;
    size_t nh, n;
    heads_of(w->d[to], &h, &nh);
    assert_int_equal(notes_doc_export(w->d[from], (const uint8_t(*)[32])h, nh,
                                      &b, &n), NOTES_OK);
    notes_free(h);
    if (w->nq == (int)(sizeof(w->q) / sizeof(w->q[0]))) {
        notes_free(b);
        return;
    }
    w->q[w->nq].to = to;
    w->q[w->nq].b = b;
    w->q[w->nq].n = n;
    w->nq++;
}

/* Deliver queued bundle k: fine, or refused for a missing dependency (it
 * arrived before what it builds on) and then nothing is stored. */
static void deliver(struct world *w, int k, int keep)
{
    size_t added;
    int rc = notes_doc_merge(w->d[w->q[k].to], w->q[k].b, w->q[k].n, &added);
    if (rc != NOTES_OK && rc != NOTES_EMISSINGDEP)
        fail_msg("merge: %s: %s", notes_strerror(rc), notes_last_detail());
    if (keep && rc == NOTES_OK && rnd(4) == 0)
        return; /* stays queued: delivered again later (a duplicate) */
    if (rc == NOTES_EMISSINGDEP && keep)
        return; /* retried later */
    notes_free(w->q[k].b);
    w->q[k] = w->q[--w->nq];
}

static void full_sync(struct world *w)
{
    while (w->nq)
        deliver(w, w->nq - 1, 0);
    for (int round = 0; round < 2; round++)
        for (int a = 0; a < w->n; a++)
            for (int b = 0; b < w->n; b++)
                if (a != b) {
                    send(w, a, b);
                    deliver(w, w->nq - 1, 0);
                }
}

static void commit(notes_doc *d)
{
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
}

/* One random edit on replica r; mirrored on the model when m != NULL. */
static void edit(notes_doc *d, struct model *m)
{
    size_t len = notes_doc_length(d);
    uint32_t what = rnd(11);
    if (what == 10 && len >= 1) {
        /* A run of backspaces from a cursor: coalesced into one op. */
        size_t q = 1 + rnd((uint32_t)len);
        size_t k = 1 + rnd((uint32_t)(q < 5 ? q : 5));
        for (size_t i = 0; i < k; i++) {
            assert_int_equal(notes_doc_splice(d, q - 1 - i, 1, NULL, 0), NOTES_OK);
            if (m) {
                size_t a = cp_off(m->text, m->len, q - 1 - i);
                size_t b = cp_off(m->text, m->len, q - i);
                memmove(m->text + a, m->text + b, m->len - b);
                m->len -= b - a;
            }
        }
        return;
    }
    if (what == 10)
        what = 0;
    if (what < 5 || len == 0) {
        const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
        size_t pos = rnd((uint32_t)len + 1);
        assert_int_equal(notes_doc_splice(d, pos, 0, p, strlen(p)), NOTES_OK);
        if (m) {
            size_t off = cp_off(m->text, m->len, pos), pl = strlen(p);
            memmove(m->text + off + pl, m->text + off, m->len - off);
            memcpy(m->text + off, p, pl);
            m->len += pl;
        }
    } else if (what < 7) {
        size_t pos = rnd((uint32_t)len), del = 1 + rnd((uint32_t)(len - pos < 6 ? len - pos : 6));
        assert_int_equal(notes_doc_splice(d, pos, del, NULL, 0), NOTES_OK);
        if (m) {
            size_t a = cp_off(m->text, m->len, pos);
            size_t b = cp_off(m->text, m->len, pos + del);
            memmove(m->text + a, m->text + b, m->len - b);
            m->len -= b - a;
        }
    } else if (what < 8) {
        const char *t = titles[rnd(4)];
        if (rnd(5) == 0) {
            assert_int_equal(notes_doc_unset_field(d, "title"), NOTES_OK);
            if (m)
                m->title[0] = 0;
        } else {
            assert_int_equal(notes_doc_set_field(d, "title", t), NOTES_OK);
            if (m)
                snprintf(m->title, sizeof(m->title), "%s", t);
        }
    } else {
        int who = (int)rnd(5);
        if (rnd(3)) {
            assert_int_equal(notes_doc_list_add(d, "participants", people[who]),
                             NOTES_OK);
            if (m && !m->member[who]) {
                m->member[who] = 1;
                m->order[m->norder++] = who;
            }
        } else {
            assert_int_equal(notes_doc_list_remove(d, "participants",
                                                   people[who]), NOTES_OK);
            if (m && m->member[who]) {
                m->member[who] = 0;
                int k = 0;
                for (int i = 0; i < m->norder; i++)
                    if (m->order[i] != who)
                        m->order[k++] = m->order[i];
                m->norder = k;
            }
        }
    }
}

/* A digest of a document's whole visible state. */
static char *state_of(notes_doc *d)
{
    size_t tl;
    const char *t = notes_doc_text(d, &tl);
    size_t cap = tl + 4096, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s + o, cap - o, "text=%.*s|", (int)tl, t);
    const char *title = notes_doc_field(d, "title");
    o += (size_t)snprintf(s + o, cap - o, "title=%s|", title ? title : "(none)");
    const char *const *c = notes_doc_field_conflicts(d, "title");
    for (size_t i = 0; c[i]; i++)
        o += (size_t)snprintf(s + o, cap - o, "conflict=%s|", c[i]);
    const char *const *l = notes_doc_list(d, "participants");
    for (size_t i = 0; l[i]; i++)
        o += (size_t)snprintf(s + o, cap - o, "p=%s|", l[i]);
    const char *const *f = notes_doc_fields(d);
    for (size_t i = 0; f[i]; i++)
        o += (size_t)snprintf(s + o, cap - o, "f=%s|", f[i]);
    return s;
}

struct split {
    const uint8_t *p[4096];
    uint8_t *own[4096];
    size_t n[4096];
    size_t count;
};

static int split_cb(void *ctx, const uint8_t *p, size_t n,
                    const uint8_t *id)
{
    (void)id;
    struct split *s = ctx;
    uint8_t *copy;
    if (s->count == 4096)
        return NOTES_ETOOBIG;
    /* The pack decoder reuses its buffer: keep a copy. */
    if (!(copy = malloc(n)))
        return NOTES_ENOMEM;
    memcpy(copy, p, n);
    s->p[s->count] = s->own[s->count] = copy;
    s->n[s->count++] = n;
    return NOTES_OK;
}

/* Replay every change alone, in a shuffled order, retrying those that
 * arrive before their dependencies; return the resulting state. */
static char *replay_shuffled(notes_doc *from)
{
    uint8_t *all, docid[16];
    size_t n;
    struct split sp = {0};
    memcpy(docid, notes_doc_id(from), 16);
    assert_int_equal(notes_doc_export(from, NULL, 0, &all, &n), NOTES_OK);
    /* export writes a version 2 bundle: magic, note id, pack. */
    assert_int_equal(all[3], 2);
    assert_int_equal(notes__pack_decode(docid, all + 20, n - 20,
                                        NOTES__PACK_EXTERNAL, split_cb, &sp),
                     NOTES_OK);
    size_t *idx = malloc(sp.count * sizeof(*idx));
    for (size_t i = 0; i < sp.count; i++)
        idx[i] = i;
    for (size_t i = sp.count; i > 1; i--) {
        size_t j = rnd((uint32_t)i), t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    notes_doc *d;
    assert_int_equal(notes_doc_memory(NULL, docid, &d), NOTES_OK);
    size_t left = sp.count;
    while (left) {
        size_t progress = 0;
        for (size_t k = 0; k < left;) {
            struct notes_buf b;
            notes__buf_init(&b, 1 << 24);
            notes__buf_put(&b, "NTB\x01", 4);
            notes__payload_encode(&b, &sp.p[idx[k]], &sp.n[idx[k]], 1);
            size_t added;
            int rc = notes_doc_merge(d, b.data, b.len, &added);
            notes__buf_release(&b);
            if (rc == NOTES_EMISSINGDEP) {
                k++;
                continue;
            }
            assert_int_equal(rc, NOTES_OK);
            idx[k] = idx[--left];
            progress++;
        }
        assert_true(progress > 0);
    }
    char *s = state_of(d);
    notes_doc_free(d);
    for (size_t i = 0; i < sp.count; i++)
        free(sp.own[i]);
    free(idx);
    notes_free(all);
    return s;
}

static void run_case(uint64_t seed, int sequential)
{
    struct world *w = calloc(1, sizeof(*w));
    struct model *m = sequential ? calloc(1, sizeof(*m)) : NULL;
    uint8_t docid[16] = {0};
    rng = seed * 0x9e3779b97f4a7c15ull + 1;
    memcpy(docid, &seed, sizeof(seed));
    w->n = 3 + (int)rnd(3);
    for (int i = 0; i < w->n; i++) {
        char name[8] = {(char)('A' + i), 0};
        assert_int_equal(notes_identity_generate(name, &w->id[i]), NOTES_OK);
        assert_int_equal(notes_doc_memory(w->id[i], docid, &w->d[i]), NOTES_OK);
    }
    int steps = 10 + (int)rnd(40);
    for (int s = 0; s < steps; s++) {
        int r = (int)rnd((uint32_t)w->n);
        if (sequential) {
            full_sync(w);
            edit(w->d[r], m);
            commit(w->d[r]);
            continue;
        }
        uint32_t act = rnd(10);
        if (act < 6) {
            int k = 1 + (int)rnd(3);
            for (int i = 0; i < k; i++)
                edit(w->d[r], NULL);
            commit(w->d[r]);
        } else if (act < 8) {
            int to = (int)rnd((uint32_t)w->n);
            if (to != r)
                send(w, r, to);
        } else if (w->nq) {
            deliver(w, (int)rnd((uint32_t)w->nq), 1);
        }
    }
    full_sync(w);
    char *ref = state_of(w->d[0]);
    for (int i = 1; i < w->n; i++) {
        char *st = state_of(w->d[i]);
        if (strcmp(ref, st) != 0)
            fail_msg("seed %llu: replicas 0 and %d differ:\n%s\n%s",
                     (unsigned long long)seed, i, ref, st);
        free(st);
    }
    if (m) {
        char *exp = malloc(m->len + 4096);
        size_t o = (size_t)sprintf(exp, "text=%.*s|title=%s|", (int)m->len,
                                   m->text, m->title[0] ? m->title : "(none)");
        for (int i = 0; i < m->norder; i++)
            o += (size_t)sprintf(exp + o, "p=%s|", people[m->order[i]]);
        /* Fields: compare text, title and participants only. */
        char *cut = strstr(ref, "f=");
        size_t cl = cut ? (size_t)(cut - ref) : strlen(ref);
        if (strncmp(ref, exp, cl) != 0 || strlen(exp) != cl)
            fail_msg("seed %llu: replica differs from the model:\n%.*s\n%s",
                     (unsigned long long)seed, (int)cl, ref, exp);
        free(exp);
    } else if (seed % 8 == 0) {
        for (int k = 0; k < 3; k++) {
            char *st = replay_shuffled(w->d[rnd((uint32_t)w->n)]);
            if (strcmp(ref, st) != 0)
                fail_msg("seed %llu: shuffled replay differs:\n%s\n%s",
                         (unsigned long long)seed, ref, st);
            free(st);
        }
    }
    /* Everything still verifies. */
    notes_verify_report rep;
    assert_int_equal(notes_doc_verify(w->d[0], &rep), NOTES_OK);
    notes_verify_report_clear(&rep);
    free(ref);
    for (int i = 0; i < w->nq; i++)
        notes_free(w->q[i].b);
    for (int i = 0; i < w->n; i++) {
        notes_doc_free(w->d[i]);
        notes_identity_free(w->id[i]);
    }
    free(w);
    free(m);
}

static int cases(int dflt)
{
    const char *e = getenv("NOTES_TEST_CASES");
    return e ? atoi(e) : dflt;
}

static void run_many(int sequential, int dflt)
{
    const char *one = getenv("NOTES_TEST_SEED");
    if (one) {
        run_case(strtoull(one, NULL, 10), sequential);
        return;
    }
    int n = cases(dflt);
    for (int i = 1; i <= n; i++)
        run_case((uint64_t)i + (sequential ? 1000000u : 0u), sequential);
    print_message("# %d %s cases passed (seeds %d..%d%s)\n", n,
                  sequential ? "sequential" : "concurrent",
                  1 + (sequential ? 1000000 : 0), n + (sequential ? 1000000 : 0),
                  "; replay one with NOTES_TEST_SEED");
}

static void test_doc_props_concurrent(void **state)
{
    (void)state;
    run_many(0, 1500);
}

static void test_doc_props_sequential_model(void **state)
{
    (void)state;
    run_many(1, 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_props_concurrent),
        cmocka_unit_test(test_doc_props_sequential_model),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
