/*
 * test_equiv.c: a hostile member cannot erase honest edits (issue 15).
 *
 * An equivocating key signs two different changes with one seq. Both are
 * evidence; both are applied as concurrent branches, with every honest
 * change built on either, and every replica ends with the same text and
 * state whatever the arrival order. The key is flagged (verify, the
 * per-key query, the per-change mark).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <sodium.h>

#include "change.h"
#include "clirun.h"
#include "store.h"
#include "tmpdir.h"

static const uint8_t DOC[16] = {0x15, 0x15, 1, 2, 3, 4, 5, 6,
                                7,    8,    9, 10, 11, 12, 13, 14};

/* ---- changes built by hand (each one signed) ---- */

struct kv {
    int kind;
    const char *key, *value;
};

static struct notes__change *make(const notes_identity *id, uint64_t seq,
                                  const uint8_t *prev, const uint8_t (*deps)[32],
                                  uint32_t ndeps, uint32_t pos, const char *ins,
                                  const struct kv *kv, uint64_t time_ms)
{
    struct notes__change_builder b;
    struct notes__change *c;
    uint8_t(*sorted)[32] = calloc(ndeps + 1, 32);
    uint32_t ns = 0;
    assert_non_null(sorted);
    /* deps sorted and unique, as the format wants */
    for (uint32_t i = 0; i < ndeps; i++) {
        uint32_t k = 0;
        while (k < ns && memcmp(sorted[k], deps[i], 32) < 0)
            k++;
        if (k < ns && !memcmp(sorted[k], deps[i], 32))
            continue;
        memmove(sorted[k + 1], sorted[k], (size_t)(ns - k) * 32);
        memcpy(sorted[k], deps[i], 32);
        ns++;
    }
    notes__builder_init(&b);
    if (seq == 1) /* the display name it claims, as a commit does */
        assert_int_equal(notes__builder_name(&b, notes_identity_name(id)),
                         NOTES_OK);
    if (ins)
        assert_int_equal(notes__builder_ins(&b, pos, (const uint8_t *)ins,
                                            strlen(ins), (uint32_t)strlen(ins)),
                         NOTES_OK);
    if (kv)
        assert_int_equal(notes__builder_kv(&b, kv->kind, kv->key, kv->value),
                         NOTES_OK);
    assert_int_equal(notes__builder_finish(&b, DOC, id, seq, prev,
                                           (const uint8_t(*)[32])sorted, ns,
                                           time_ms, 1, &c),
                     NOTES_OK);
    notes__builder_release(&b);
    free(sorted);
    return c;
}

/* A version-1 bundle of some changes, in the order given. */
static uint8_t *bundle(struct notes__change *const *cs, size_t n, size_t *out)
{
    const uint8_t **p = calloc(n + 1, sizeof(*p));
    size_t *l = calloc(n + 1, sizeof(*l));
    struct notes_buf b;
    assert_true(p && l);
    for (size_t i = 0; i < n; i++) {
        p[i] = cs[i]->bytes;
        l[i] = cs[i]->nbytes;
    }
    notes__buf_init(&b, 1 << 30);
    assert_int_equal(notes__buf_put(&b, "NTB\x01", 4), NOTES_OK);
    assert_int_equal(notes__payload_encode(&b, p, l, n), NOTES_OK);
    free(p);
    free(l);
    *out = b.len;
    return b.data;
}

/* Deliver changes to d one bundle each (an arrival order). */
static void deliver(notes_doc *d, struct notes__change *const *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len, added;
        uint8_t *bytes = bundle(&cs[i], 1, &len);
        int rc = notes_doc_merge(d, bytes, len, &added);
        if (rc)
            fail_msg("merge of change %zu: %s: %s", i, notes_strerror(rc),
                     notes_last_detail());
        assert_int_equal(added, 1);
        notes_free(bytes);
    }
}

static notes_doc *replica(void)
{
    notes_doc *d;
    assert_int_equal(notes_doc_memory(NULL, DOC, &d), NOTES_OK);
    return d;
}

/* ---- the reproduced scenario ---- */

/*
 * Mallory signs L; Ana appends a line and a decision on top of it; then
 * Mallory sends W, another change with L's seq and a smaller id.
 * OUT sc: base, L, A2, A3, W in a causal order.
 */
struct scenario {
    notes_identity *ana, *mal;
    struct notes__change *base, *l, *a2, *a3, *w;
};

static void scenario_make(struct scenario *sc)
{
    notes_identity *ana, *mal;
    assert_int_equal(notes_identity_generate("Ana", &ana), NOTES_OK);
    assert_int_equal(notes_identity_generate("Mallory", &mal), NOTES_OK);

    struct kv tl = {NOTES__K_SET, "title", "Mallory's L title"};
    struct notes__change *base =
        make(ana, 1, NULL, NULL, 0, 0, "# Weekly\n", NULL, 1000);
    struct notes__change *l = make(mal, 1, NULL, (const uint8_t(*)[32])base->id,
                                   1, 9, "Mallory: L\n", &tl, 2000);
    struct notes__change *a2 = make(ana, 2, base->id,
                                    (const uint8_t(*)[32])l->id, 1, 20,
                                    "Ana: the budget is approved\n", NULL, 3000);
    struct notes__change *a3 =
        make(ana, 3, a2->id, (const uint8_t(*)[32])a2->id, 1, 48,
             "## Decisions\n\nEveryone: Ship on Friday\n", NULL, 4000);
    /* W: same seq as L, built on what Mallory had before L, with a smaller
     * id (re-signed at another claimed time until it is). */
    struct notes__change *w = NULL;
    struct kv tw = {NOTES__K_SET, "title", "Mallory's W title"};
    for (uint64_t t = 5000;; t++) {
        w = make(mal, 1, NULL, (const uint8_t(*)[32])base->id, 1, 9,
                 "Mallory: W\n", &tw, t);
        if (memcmp(w->id, l->id, 32) < 0)
            break;
        notes__change_free(w);
    }
    sc->ana = ana;
    sc->mal = mal;
    sc->base = base;
    sc->l = l;
    sc->a2 = a2;
    sc->a3 = a3;
    sc->w = w;
}

static void scenario_free(struct scenario *sc)
{
    notes__change_free(sc->base);
    notes__change_free(sc->l);
    notes__change_free(sc->a2);
    notes__change_free(sc->a3);
    notes__change_free(sc->w);
    notes_identity_free(sc->ana);
    notes_identity_free(sc->mal);
}

/* Three replicas take the scenario in different orders, a fourth whole. */
static void test_equiv_honest_edits_survive(void **state)
{
    (void)state;
    struct scenario sc;
    scenario_make(&sc);
    struct notes__change *base = sc.base, *l = sc.l, *a2 = sc.a2, *a3 = sc.a3,
                         *w = sc.w;
    const uint8_t *apk = notes_identity_public_key(sc.ana);
    const uint8_t *mpk = notes_identity_public_key(sc.mal);

    struct notes__change *o1[] = {base, l, a2, a3, w}; /* W last */
    struct notes__change *o2[] = {base, w, l, a2, a3}; /* W first */
    struct notes__change *o3[] = {base, l, w, a2, a3}; /* W between */
    struct notes__change *const *orders[] = {o1, o2, o3};
    notes_doc *r[4];
    for (int i = 0; i < 3; i++) {
        r[i] = replica();
        deliver(r[i], orders[i], 5);
    }
    /* A fourth takes them all in one bundle. */
    {
        size_t len, added;
        uint8_t *bytes = bundle(o1, 5, &len);
        r[3] = replica();
        assert_int_equal(notes_doc_merge(r[3], bytes, len, &added), NOTES_OK);
        assert_int_equal(added, 5);
        notes_free(bytes);
    }
    const char *t0 = notes_doc_text(r[0], NULL);
    print_message("text after the equivocation:\n%s", t0);
    /* Ana's acknowledged, signed line and decision stay. */
    assert_non_null(strstr(t0, "Ana: the budget is approved\n## Decisions\n\n"
                               "Everyone: Ship on Friday\n"));
    assert_non_null(strstr(t0, "Mallory: L\n"));
    assert_non_null(strstr(t0, "Mallory: W\n"));
    assert_int_equal(strncmp(t0, "# Weekly\n", 9), 0);
    for (int i = 1; i < 4; i++) {
        assert_string_equal(notes_doc_text(r[i], NULL), t0);
        assert_string_equal(notes_doc_field(r[i], "title"),
                            notes_doc_field(r[0], "title"));
        assert_int_equal(notes_doc_change_count(r[i]), 5);
    }
    for (int i = 0; i < 4; i++) {
        notes_verify_report rep;
        char fpr[NOTES_FPR_STRLEN], afpr[NOTES_FPR_STRLEN];
        notes_key_fingerprint(mpk, fpr);
        notes_key_fingerprint(apk, afpr);
        assert_int_equal(notes_doc_verify(r[i], &rep), NOTES_EEQUIVOCATION);
        assert_int_equal(rep.nproblems, 1);
        assert_int_equal(rep.problems[0].code, NOTES_EEQUIVOCATION);
        if (i == 0)
            print_message("verify: %s\n", rep.problems[0].message);
        assert_non_null(strstr(rep.problems[0].message, fpr));
        assert_null(strstr(rep.problems[0].message, afpr));
        assert_non_null(strstr(rep.problems[0].message, "evidence"));
        notes_verify_report_clear(&rep);
        assert_true(notes_doc_author_equivocated(r[i], mpk));
        assert_false(notes_doc_author_equivocated(r[i], apk));
        /* L and W are marked, nothing else. */
        for (size_t k = 0; k < 5; k++) {
            notes_change_info ci;
            assert_int_equal(notes_doc_change(r[i], k, &ci), NOTES_OK);
            int lw = !memcmp(ci.id, l->id, 32) || !memcmp(ci.id, w->id, 32);
            assert_int_equal(ci.equivocated, lw);
        }
    }
    /* Blame names the real keys: Ana's line is Ana's, W's line Mallory's. */
    {
        uint32_t *ch;
        size_t ncp;
        const char *at = strstr(t0, "Ana: the budget");
        const char *wat = strstr(t0, "Mallory: W");
        notes_change_info ci;
        assert_int_equal(notes_doc_authorship(r[0], &ch, &ncp), NOTES_OK);
        assert_int_equal(ncp, strlen(t0)); /* ASCII */
        assert_int_equal(notes_doc_change(r[0], ch[at - t0], &ci), NOTES_OK);
        assert_memory_equal(ci.author, apk, 32);
        assert_int_equal(notes_doc_change(r[0], ch[wat - t0], &ci), NOTES_OK);
        assert_memory_equal(ci.author, mpk, 32);
        assert_memory_equal(ci.id, w->id, 32);
        notes_free(ch);
    }
    for (int i = 0; i < 4; i++)
        notes_doc_free(r[i]);
    scenario_free(&sc);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/*
 * The CLI flags the key: a replica imports the scenario plus a decision
 * Mallory records on top (M2, seq 2 after W); verify names her key and
 * exits 2, log marks her changes and only hers, decisions marks the item
 * she recorded and not Ana's.
 */
static void test_equiv_cli_flags(void **state)
{
    (void)state;
    struct scenario sc;
    scenario_make(&sc);
    char *dir = test_tmpdir("equiv");
    char *file = test_path(dir, "note.bundle");
    notes_doc *m = replica();
    struct notes__change *five[] = {sc.base, sc.l, sc.a2, sc.a3, sc.w};
    deliver(m, five, 5);
    size_t len = notes_doc_length(m);
    uint8_t heads[2][32];
    memcpy(heads[0], sc.a3->id, 32);
    memcpy(heads[1], sc.w->id, 32);
    struct notes__change *m2 =
        make(sc.mal, 2, sc.w->id, (const uint8_t(*)[32])heads, 2,
             (uint32_t)len, "\nEveryone: Cancel Friday\n", NULL, 9000);
    deliver(m, &m2, 1);
    struct notes__change *six[] = {sc.base, sc.l, sc.a2, sc.a3, sc.w, m2};
    size_t n;
    uint8_t *b = bundle(six, 6, &n);
    uint8_t *f = malloc(n + 16);
    assert_non_null(f);
    memcpy(f, DOC, 16);
    memcpy(f + 16, b, n);
    write_file(file, f, n + 16);
    free(f);
    notes_free(b);

    char note[33], mfpr[NOTES_FPR_STRLEN], afpr[NOTES_FPR_STRLEN];
    for (int i = 0; i < 16; i++)
        snprintf(note + 2 * i, 3, "%02x", DOC[i]);
    notes_key_fingerprint(notes_identity_public_key(sc.mal), mfpr);
    notes_key_fingerprint(notes_identity_public_key(sc.ana), afpr);
    struct clirun_out o = clirun(dir, "home", NULL, NULL, "init", "--name",
                                 "Cy", NULL);
    assert_int_equal(o.status, 0);
    clirun_free(&o);
    o = clirun(dir, "home", NULL, NULL, "import", file, NULL);
    if (o.status)
        fail_msg("import: %s", o.err);
    clirun_free(&o);

    o = clirun(dir, "home", NULL, NULL, "verify", note, NULL);
    print_message("verify: %s%s", o.out, o.err);
    assert_int_equal(o.status, 2);
    assert_true(strstr(o.out, mfpr) || strstr(o.err, mfpr));
    clirun_free(&o);

    o = clirun(dir, "home", NULL, NULL, "log", note, NULL);
    assert_int_equal(o.status, 0);
    print_message("log:\n%s", o.out);
    /* Every line of Mallory's (3) is marked, none of Ana's (3). */
    size_t marked = 0;
    for (char *p = o.out; (p = strstr(p, "[equivocating key]")); p++)
        marked++;
    assert_int_equal(marked, 3);
    for (char *line = strtok(o.out, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, afpr))
            assert_null(strstr(line, "equivocating"));
    clirun_free(&o);

    o = clirun(dir, "home", NULL, NULL, "log", note, "--json", NULL);
    assert_int_equal(o.status, 0);
    assert_non_null(strstr(o.out, "\"equivocating_key\": true"));
    assert_non_null(strstr(o.out, "\"equivocated\": true"));
    clirun_free(&o);

    o = clirun(dir, "home", NULL, NULL, "decisions", note, NULL);
    assert_int_equal(o.status, 0);
    print_message("decisions:\n%s", o.out);
    const char *ship = strstr(o.out, "Ship on Friday");
    const char *cancel = strstr(o.out, "Cancel Friday");
    assert_non_null(ship);
    assert_non_null(cancel);
    /* The item's "recorded by" line follows it. */
    const char *rs = strstr(ship, "recorded by"), *rc = strstr(cancel, "recorded by");
    assert_non_null(rs);
    assert_non_null(rc);
    const char *es = strchr(rs, '\n'), *ec = strchr(rc, '\n');
    assert_true(es && ec);
    assert_null(memmem(rs, (size_t)(es - rs), "equivocating", 12));
    assert_non_null(memmem(rc, (size_t)(ec - rc), "equivocating key", 16));
    clirun_free(&o);

    notes__change_free(m2);
    notes_doc_free(m);
    scenario_free(&sc);
    free(file);
    test_rmtree(dir);
}

/* ---- randomized arrival orders with several forks ---- */

#define NCH 40
#define NAUTH 4 /* 0, 1 honest; 2, 3 equivocate */

struct gen {
    struct notes__change *c[NCH];
    int author[NCH];
    size_t n;
    notes_identity *id[NAUTH];
};

/* Mark i and its ancestors (deps and prev) in `in`. */
static void closure(const struct gen *g, size_t i, uint8_t *in)
{
    if (in[i])
        return;
    in[i] = 1;
    const struct notes__change *c = g->c[i];
    for (size_t j = 0; j < i; j++) {
        int dep = c->seq > 1 && !memcmp(g->c[j]->id, c->prev, 32);
        for (uint32_t k = 0; !dep && k < c->ndeps; k++)
            dep = !memcmp(g->c[j]->id, c->deps[k], 32);
        if (dep)
            closure(g, j, in);
    }
}

/* A random topological order of all changes (causal: prev and deps first). */
static void random_order(const struct gen *g, size_t *order)
{
    uint8_t done[NCH] = {0};
    for (size_t k = 0; k < g->n; k++) {
        size_t ready[NCH], nr = 0;
        for (size_t i = 0; i < g->n; i++) {
            if (done[i])
                continue;
            uint8_t in[NCH] = {0};
            closure(g, i, in);
            int ok = 1;
            for (size_t j = 0; j < g->n && ok; j++)
                ok = j == i || !in[j] || done[j];
            if (ok)
                ready[nr++] = i;
        }
        assert_true(nr > 0);
        size_t pick = ready[randombytes_uniform((uint32_t)nr)];
        done[pick] = 1;
        order[k] = pick;
    }
}

/* A doc holding the changes marked in `in`, merged in index order. */
static notes_doc *view(const struct gen *g, const uint8_t *in)
{
    notes_doc *d = replica();
    for (size_t i = 0; i < g->n; i++)
        if (in[i])
            deliver(d, &g->c[i], 1);
    return d;
}

static void generate(struct gen *g)
{
    static const char *names[NAUTH] = {"Ana", "Bo", "Mallory", "Eve"};
    for (int a = 0; a < NAUTH; a++)
        assert_int_equal(notes_identity_generate(names[a], &g->id[a]),
                         NOTES_OK);
    g->n = 0;
    while (g->n < NCH) {
        int a = (int)randombytes_uniform(NAUTH);
        uint8_t in[NCH] = {0};
        /* What the author saw: a random set of changes, closed. */
        for (size_t i = 0; i < g->n; i++)
            if (randombytes_uniform(3))
                closure(g, i, in);
        /* prev: an honest author continues its latest change; an
         * equivocator picks any of its changes (or none), so its seqs
         * collide. */
        size_t prev = SIZE_MAX;
        for (size_t i = 0; i < g->n; i++) {
            if (g->author[i] != a)
                continue;
            if (a < 2 || randombytes_uniform(2))
                prev = i;
        }
        if (a >= 2 && randombytes_uniform(4) == 0)
            prev = SIZE_MAX; /* a second seq 1 */
        if (prev != SIZE_MAX)
            closure(g, prev, in);
        notes_doc *v = view(g, in);
        uint8_t(*heads)[32];
        size_t nh;
        assert_int_equal(notes_doc_heads(v, &heads, &nh), NOTES_OK);
        /* Insert at a line start, so no line is split and every line can
         * be looked for (all ASCII: bytes are code points). */
        const char *vt = notes_doc_text(v, NULL);
        size_t starts[NCH + 1], ns = 0, vlen = strlen(vt);
        for (size_t i = 0; i <= vlen; i++)
            if (i == 0 || vt[i - 1] == '\n')
                starts[ns++] = i;
        assert_true(ns <= NCH + 1);
        char text[48];
        snprintf(text, sizeof(text), "<%s %zu>\n", names[a], g->n);
        struct kv kv = {NOTES__K_SET, "title", names[a]};
        struct kv add = {NOTES__K_ADD, "participants", names[a]};
        int which = (int)randombytes_uniform(4);
        g->c[g->n] = make(g->id[a], prev == SIZE_MAX ? 1 : g->c[prev]->seq + 1,
                          prev == SIZE_MAX ? NULL : g->c[prev]->id,
                          (const uint8_t(*)[32])heads, (uint32_t)nh,
                          (uint32_t)starts[randombytes_uniform((uint32_t)ns)],
                          text,
                          which == 0 ? &kv : which == 1 ? &add : NULL,
                          1000 + g->n);
        g->author[g->n++] = a;
        notes_free(heads);
        notes_doc_free(v);
    }
}

static void test_equiv_random_orders(void **state)
{
    (void)state;
    for (int round = 0; round < 6; round++) {
        struct gen g;
        memset(&g, 0, sizeof(g));
        generate(&g);
        /* Who forked: two changes of one author with one seq. */
        int forked[NAUTH] = {0};
        for (size_t i = 0; i < g.n; i++)
            for (size_t j = i + 1; j < g.n; j++)
                if (g.author[i] == g.author[j] && g.c[i]->seq == g.c[j]->seq)
                    forked[g.author[i]] = 1;
        assert_false(forked[0] || forked[1]);
        char *ref = NULL, *title = NULL;
        uint8_t(*refheads)[32] = NULL;
        size_t nref = 0;
        for (int k = 0; k < 8; k++) {
            size_t order[NCH];
            struct notes__change *cs[NCH];
            random_order(&g, order);
            for (size_t i = 0; i < g.n; i++)
                cs[i] = g.c[order[i]];
            notes_doc *d = replica();
            deliver(d, cs, g.n);
            const char *t = notes_doc_text(d, NULL);
            {
                /* The order the changes were made in gives the same text. */
                uint8_t all[NCH];
                memset(all, 1, sizeof(all));
                notes_doc *gd = view(&g, all);
                if (strcmp(notes_doc_text(gd, NULL), t) != 0)
                    fail_msg("round %d order %d differs from the generation "
                             "order:\n%s---\n%s", round, k, t,
                             notes_doc_text(gd, NULL));
                notes_doc_free(gd);
            }
            /* Only inserts: every change's line is in the text. */
            for (size_t i = 0; i < g.n; i++) {
                const struct notes__op *o = &g.c[i]->ops[0];
                for (uint32_t q = 0; q < g.c[i]->nops; q++)
                    if (g.c[i]->ops[q].kind == NOTES__K_INS)
                        o = &g.c[i]->ops[q];
                assert_int_equal(o->kind, NOTES__K_INS);
                char line[64];
                snprintf(line, sizeof(line), "%.*s", (int)o->textlen,
                         (const char *)o->text);
                if (!strstr(t, line))
                    fail_msg("round %d order %d: '%s' lost from:\n%s", round, k, line, t);
            }
            for (int a = 0; a < NAUTH; a++)
                assert_int_equal(notes_doc_author_equivocated(
                                     d, notes_identity_public_key(g.id[a])),
                                 forked[a]);
            const char *ti = notes_doc_field(d, "title");
            uint8_t(*heads)[32];
            size_t nh;
            assert_int_equal(notes_doc_heads(d, &heads, &nh), NOTES_OK);
            if (!ref) {
                ref = strdup(t);
                title = ti ? strdup(ti) : NULL;
                refheads = heads;
                nref = nh;
            } else {
                if (strcmp(ref, t) != 0)
                    fail_msg("round %d: order %d gives another text:\n%s---\n%s",
                             round, k, ref, t);
                assert_true((title == NULL) == (ti == NULL));
                if (ti)
                    assert_string_equal(title, ti);
                assert_int_equal(nh, nref);
                assert_memory_equal(heads, refheads, nh * 32);
                notes_free(heads);
            }
            /* A bundle exported by this replica rebuilds the same text. */
            if (k == 0) {
                uint8_t *bytes;
                size_t n, added;
                notes_doc *e = replica();
                assert_int_equal(notes_doc_export(d, NULL, 0, &bytes, &n),
                                 NOTES_OK);
                assert_int_equal(notes_doc_merge(e, bytes, n, &added),
                                 NOTES_OK);
                assert_int_equal(added, g.n);
                assert_string_equal(notes_doc_text(e, NULL), t);
                notes_free(bytes);
                notes_doc_free(e);
            }
            notes_doc_free(d);
        }
        int nf = forked[2] + forked[3];
        print_message("round %d: %zu changes, %d equivocating key(s), "
                      "8 orders agree\n", round, g.n, nf);
        free(ref);
        free(title);
        notes_free(refheads);
        for (size_t i = 0; i < g.n; i++)
            notes__change_free(g.c[i]);
        for (int a = 0; a < NAUTH; a++)
            notes_identity_free(g.id[a]);
    }
}

int main(void)
{
    if (notes_init() != NOTES_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equiv_honest_edits_survive),
        cmocka_unit_test(test_equiv_random_orders),
        cmocka_unit_test(test_equiv_cli_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
