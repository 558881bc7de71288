/*
 * test_text_traces.c: the text CRDT engine against real editing traces.
 *  - automerge-paper replayed as sequential local adds equals endContent;
 *    checkout of an intermediate version equals the replayed prefix.
 *  - friendsforever added in several topological orders equals endContent.
 * Prints timings. Missing traces fail the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "text.h"
#include "trace.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void load(const char *rel, struct trace *tr)
{
    char path[1024];
    const char *p = trace_path(path, sizeof(path), rel);
    if (!p)
        fail_msg("trace %s not found (set NOTES_SHARED_DIR)", rel);
    assert_int_equal(trace_load(p, tr), 0);
}

static uint32_t agent_for(struct notes__oplog *op, uint32_t idx)
{
    uint8_t key[32] = {0};
    key[0] = (uint8_t)(idx + 1);
    key[31] = (uint8_t)(idx >> 8);
    uint32_t a;
    assert_int_equal(notes__oplog_agent(op, key, &a), NOTES_OK);
    return a;
}

/* Apply patches [from, to) of a sequential trace as local adds. */
static void apply_seq(struct notes__oplog *op, uint32_t agent, uint64_t *seq,
                      const struct trace *tr, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        const struct trace_patch *p = &tr->patches[i];
        size_t nf;
        const notes_lv *f;
        if (p->del) {
            f = notes__oplog_frontier(op, &nf);
            assert_int_equal(notes__oplog_add(op, agent, *seq, f, nf, NOTES__OP_DEL,
                                              p->pos, NULL, 0, p->del, NULL),
                             NOTES_OK);
            *seq += p->del;
        }
        if (p->ins_len) {
            f = notes__oplog_frontier(op, &nf);
            assert_int_equal(notes__oplog_add(op, agent, *seq, f, nf, NOTES__OP_INS,
                                              p->pos, p->ins, p->ins_len, 0, NULL),
                             NOTES_OK);
            *seq += p->ins_cps;
        }
    }
}

static void test_automerge_paper(void **state)
{
    (void)state;
    struct trace tr;
    load("sequential_traces/automerge-paper.json.gz", &tr);
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        struct notes__oplog *op;
        assert_int_equal(notes__oplog_new(&op), NOTES_OK);
        uint32_t a = agent_for(op, 0);
        uint64_t seq = 1;
        double t0 = now_ms();
        apply_seq(op, a, &seq, &tr, 0, tr.total_patches);
        double t1 = now_ms();
        if (t1 - t0 < best)
            best = t1 - t0;
        size_t nb, ncp;
        const char *s = notes__oplog_text(op, &nb, &ncp);
        assert_int_equal(nb, tr.end_len);
        assert_memory_equal(s, tr.end_content, nb);
        if (rep == 0) {
            printf("# automerge-paper: %zu events, %zu op runs, text %zu bytes\n",
                   notes__oplog_len(op), op->nops, nb);
            size_t mem = op->capops * sizeof(*op->ops) + op->caparuns * sizeof(*op->aruns) +
                         op->capgruns * sizeof(*op->gruns) + op->cappool * sizeof(notes_lv) +
                         op->capcontent + op->text.cap;
            printf("# automerge-paper oplog memory: %.2f MB\n", (double)mem / 1e6);
            /* A late event concurrent with the whole history (parents = the
             * empty document), then a second one on that branch: worst case
             * replay from the root, then the cached tracker. */
            uint32_t b = agent_for(op, 1);
            notes_lv lv;
            double m0 = now_ms();
            assert_int_equal(notes__oplog_add(op, b, 1, NULL, 0, NOTES__OP_INS, 0, "[", 1, 0,
                                              &lv), NOTES_OK);
            double m1 = now_ms();
            assert_int_equal(notes__oplog_add(op, b, 2, &lv, 1, NOTES__OP_INS, 1, "]", 1, 0,
                                              NULL), NOTES_OK);
            double m2 = now_ms();
            printf("# automerge-paper + root-concurrent insert: %.2f ms, next one %.3f ms\n",
                   m1 - m0, m2 - m1);
            s = notes__oplog_text(op, &nb, NULL);
            assert_int_equal(nb, tr.end_len + 2);
            /* "]" lands right after "[", and the rest is endContent intact */
            int found = 0;
            for (size_t i = 0; i + 1 < nb && !found; i++)
                found = s[i] == '[' && s[i + 1] == ']' && memcmp(s, tr.end_content, i) == 0 &&
                        memcmp(s + i + 2, tr.end_content + i, tr.end_len - i) == 0;
            assert_true(found);
        }
        notes__oplog_free(op);
    }
    printf("# automerge-paper apply (sequential adds): %.2f ms (best of 5)\n", best);
    trace_free(&tr);
}

static void test_automerge_checkout(void **state)
{
    (void)state;
    struct trace tr;
    load("sequential_traces/automerge-paper.json.gz", &tr);
    struct notes__oplog *op, *pre;
    assert_int_equal(notes__oplog_new(&op), NOTES_OK);
    assert_int_equal(notes__oplog_new(&pre), NOTES_OK);
    uint32_t a = agent_for(op, 0), b = agent_for(pre, 0);
    uint64_t seq = 1, seq2 = 1;
    size_t cuts[] = {tr.total_patches / 3, tr.total_patches / 2 + 7, tr.total_patches};
    size_t done = 0;
    for (size_t c = 0; c < 3; c++) {
        apply_seq(op, a, &seq, &tr, done, cuts[c]);
        apply_seq(pre, b, &seq2, &tr, done, cuts[c]);
        done = cuts[c];
        /* Remember this version, keep going, then check it out. */
        notes_lv v = (notes_lv)(notes__oplog_len(op) - 1);
        size_t nb;
        const char *want = notes__oplog_text(pre, &nb, NULL);
        char *wantcopy = strndup(want, nb);
        struct notes__oplog *full;
        assert_int_equal(notes__oplog_new(&full), NOTES_OK);
        uint32_t fa = agent_for(full, 0);
        uint64_t fs = 1;
        apply_seq(full, fa, &fs, &tr, 0, tr.total_patches);
        char *got;
        size_t gotn;
        double t0 = now_ms();
        assert_int_equal(notes__oplog_checkout(full, &v, 1, &got, &gotn), NOTES_OK);
        double t1 = now_ms();
        printf("# automerge-paper checkout at lv %u: %.2f ms\n", v, t1 - t0);
        assert_int_equal(gotn, nb);
        assert_memory_equal(got, wantcopy, nb);
        notes_lv *orig;
        size_t norig;
        assert_int_equal(notes__oplog_origins(full, &v, 1, &orig, &norig), NOTES_OK);
        assert_int_equal(norig, notes__utf8_count((const uint8_t *)wantcopy, nb));
        for (size_t i = 0; i < norig; i++)
            assert_true(orig[i] <= v);
        notes__free(orig);
        notes__free(got);
        free(wantcopy);
        notes__oplog_free(full);
    }
    notes__oplog_free(op);
    notes__oplog_free(pre);
    trace_free(&tr);
}

/* ---- concurrent traces ---- */

struct txver {
    notes_lv v[8];
    size_t n;
};

static int apply_txn(struct notes__oplog *op, const struct trace *tr, size_t ti,
                     struct txver *vers, const uint32_t *agents, uint64_t *seqs)
{
    const struct trace_txn *x = &tr->txns[ti];
    notes_lv par[64];
    size_t np = 0;
    for (size_t i = 0; i < x->nparents; i++)
        for (size_t j = 0; j < vers[x->parents[i]].n; j++)
            par[np++] = vers[x->parents[i]].v[j];
    uint32_t ag = agents[x->agent];
    for (size_t i = 0; i < x->npatches; i++) {
        const struct trace_patch *p = &x->patches[i];
        notes_lv lv;
        if (p->del) {
            int rc = notes__oplog_add(op, ag, seqs[x->agent], par, np, NOTES__OP_DEL,
                                      p->pos, NULL, 0, p->del, &lv);
            if (rc)
                return rc;
            seqs[x->agent] += p->del;
            par[0] = lv + p->del - 1;
            np = 1;
        }
        if (p->ins_len) {
            int rc = notes__oplog_add(op, ag, seqs[x->agent], par, np, NOTES__OP_INS,
                                      p->pos, p->ins, p->ins_len, 0, &lv);
            if (rc)
                return rc;
            seqs[x->agent] += p->ins_cps;
            par[0] = lv + p->ins_cps - 1;
            np = 1;
        }
    }
    vers[ti].n = np;
    memcpy(vers[ti].v, par, np * sizeof(notes_lv));
    return 0;
}

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* order kinds: 0 trace order, 1/2 random ready txn, 3 newest ready first
 * (deep branches), 4 agent-batched (stay on one agent while possible). */
static void make_order(const struct trace *tr, int kind, size_t *order)
{
    size_t n = tr->ntxns;
    if (kind == 0) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        return;
    }
    rng_state = 0x9e3779b97f4a7c15ull * (uint64_t)(kind + 1);
    uint32_t *missing = calloc(n, sizeof(uint32_t));
    size_t *ready = malloc(n * sizeof(size_t));
    size_t nready = 0;
    /* children lists */
    size_t *cstart = calloc(n + 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < tr->txns[i].nparents; j++)
            cstart[tr->txns[i].parents[j] + 1]++;
    for (size_t i = 0; i < n; i++)
        cstart[i + 1] += cstart[i];
    size_t *child = malloc((cstart[n] + 1) * sizeof(size_t));
    size_t *fill = calloc(n, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        missing[i] = (uint32_t)tr->txns[i].nparents;
        for (size_t j = 0; j < tr->txns[i].nparents; j++) {
            size_t p = tr->txns[i].parents[j];
            child[cstart[p] + fill[p]++] = i;
        }
        if (!missing[i])
            ready[nready++] = i;
    }
    uint32_t last_agent = 0;
    for (size_t k = 0; k < n; k++) {
        assert_true(nready > 0);
        size_t pick = 0;
        if (kind == 3) {
            for (size_t i = 1; i < nready; i++)
                if (ready[i] > ready[pick])
                    pick = i;
        } else if (kind == 4) {
            pick = nready;
            for (size_t i = 0; i < nready; i++)
                if (tr->txns[ready[i]].agent == last_agent &&
                    (pick == nready || ready[i] < ready[pick]))
                    pick = i;
            if (pick == nready)
                pick = rnd() % nready;
        } else {
            pick = rnd() % nready;
        }
        size_t t = ready[pick];
        ready[pick] = ready[--nready];
        order[k] = t;
        last_agent = tr->txns[t].agent;
        for (size_t c = cstart[t]; c < cstart[t + 1]; c++)
            if (--missing[child[c]] == 0)
                ready[nready++] = child[c];
    }
    free(missing);
    free(ready);
    free(cstart);
    free(child);
    free(fill);
}

static void test_friendsforever(void **state)
{
    (void)state;
    struct trace tr;
    load("concurrent_traces/friendsforever.json.gz", &tr);
    assert_true(tr.concurrent);
    size_t *order = malloc(tr.ntxns * sizeof(size_t));
    struct txver *vers = calloc(tr.ntxns, sizeof(*vers));
    const char *names[] = {"trace order", "random order A", "random order B",
                           "newest-ready-first", "agent-batched"};
    for (int kind = 0; kind < 5; kind++) {
        make_order(&tr, kind, order);
        double best = 1e9;
        int reps = kind == 0 ? 5 : 1;
        for (int rep = 0; rep < reps; rep++) {
            struct notes__oplog *op;
            assert_int_equal(notes__oplog_new(&op), NOTES_OK);
            uint32_t agents[16];
            uint64_t seqs[16];
            assert_true(tr.num_agents <= 16);
            for (uint32_t i = 0; i < tr.num_agents; i++) {
                agents[i] = agent_for(op, i);
                seqs[i] = 1;
            }
            double t0 = now_ms();
            for (size_t k = 0; k < tr.ntxns; k++) {
                int rc = apply_txn(op, &tr, order[k], vers, agents, seqs);
                if (rc)
                    fail_msg("%s: txn %zu failed: %d", names[kind], order[k], rc);
            }
            double t1 = now_ms();
            if (t1 - t0 < best)
                best = t1 - t0;
            size_t nb;
            const char *s = notes__oplog_text(op, &nb, NULL);
            if (nb != tr.end_len || memcmp(s, tr.end_content, nb) != 0)
                fail_msg("friendsforever (%s): text differs from endContent (%zu vs %zu bytes)",
                         names[kind], nb, tr.end_len);
            if (rep == 0 && kind == 0) {
                /* Checkout at the final frontier through the replay path too. */
                size_t nf;
                const notes_lv *f = notes__oplog_frontier(op, &nf);
                notes_lv all[8];
                memcpy(all, f, nf * sizeof(notes_lv));
                all[nf] = 0; /* an ancestor: forces the replay path */
                char *got;
                size_t gn;
                double c0 = now_ms();
                assert_int_equal(notes__oplog_checkout(op, all, nf + 1, &got, &gn), NOTES_OK);
                printf("# friendsforever full checkout (replay from scratch): %.2f ms\n",
                       now_ms() - c0);
                assert_int_equal(gn, tr.end_len);
                assert_memory_equal(got, tr.end_content, gn);
                notes__free(got);
            }
            notes__oplog_free(op);
        }
        printf("# friendsforever merge, %s: %.2f ms%s\n", names[kind], best,
               reps > 1 ? " (best of 5)" : "");
    }
    free(order);
    free(vers);
    trace_free(&tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_automerge_paper),
        cmocka_unit_test(test_automerge_checkout),
        cmocka_unit_test(test_friendsforever),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
