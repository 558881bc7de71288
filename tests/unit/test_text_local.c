/*
 * test_text_local.c: notes__oplog_add_local (the local editing path, with
 * its lanes for a typed character and a deleted one) leaves exactly the
 * state notes__oplog_add leaves with the frontier as parents: the same runs
 * (ops, agents, graph, parents pool), content, frontier, gap buffer and
 * text, and the same error (state unchanged) for an edit out of range.
 *
 * Two oplogs get the same random sessions: typing and backspacing at the
 * cursor (the lanes), jumps, forward deletes, multi-byte characters, two
 * agents, seq jumps (a new change), an observer, and now and then an edit
 * concurrent with the last ones (frontier of two: the general path, and a
 * cached merge tracker). NOTES_TEST_SEED=<n> replays one session.
 *
 * One level up, notes_doc_splice takes a typed character through the
 * oplog's typing lane in its own frame: a note typed with it gives the same
 * oplog, pending ops and committed changes as the same note typed with an
 * observer set (which keeps every add off the lanes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "doc_internal.h"
#include "text.h"

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

/* The observer's view: every change it is told of, folded into a count. */
struct seen {
    size_t calls, del, bytes;
};

static void observe(void *ud, size_t pos, size_t del, const char *ins,
                    size_t nbytes)
{
    struct seen *s = ud;
    (void)pos;
    (void)ins;
    s->calls++;
    s->del += del;
    s->bytes += nbytes;
}

static void same_state(struct notes__oplog *a, struct notes__oplog *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->nops, b->nops);
    for (size_t i = 0; i < a->nops; i++) {
        const struct notes__oprun *x = &a->ops[i], *y = &b->ops[i];
        assert_int_equal(x->start, y->start);
        assert_int_equal(x->len, y->len);
        assert_int_equal(x->pos, y->pos);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->fwd, y->fwd);
        assert_int_equal(x->ascii, y->ascii);
        assert_int_equal(x->content, y->content);
        assert_int_equal(x->nbytes, y->nbytes);
    }
    assert_int_equal(a->naruns, b->naruns);
    for (size_t i = 0; i < a->naruns; i++) {
        assert_int_equal(a->aruns[i].start, b->aruns[i].start);
        assert_int_equal(a->aruns[i].len, b->aruns[i].len);
        assert_int_equal(a->aruns[i].agent, b->aruns[i].agent);
        assert_true(a->aruns[i].seq == b->aruns[i].seq);
    }
    assert_int_equal(a->ngruns, b->ngruns);
    for (size_t i = 0; i < a->ngruns; i++) {
        assert_int_equal(a->gruns[i].start, b->gruns[i].start);
        assert_int_equal(a->gruns[i].len, b->gruns[i].len);
        assert_int_equal(a->gruns[i].parents, b->gruns[i].parents);
        assert_int_equal(a->gruns[i].nparents, b->gruns[i].nparents);
    }
    assert_int_equal(a->npool, b->npool);
    if (a->npool)
        assert_memory_equal(a->ppool, b->ppool, a->npool * sizeof(notes_lv));
    assert_int_equal(a->ncontent, b->ncontent);
    if (a->ncontent)
        assert_memory_equal(a->content, b->content, a->ncontent);
    assert_int_equal(a->nfrontier, b->nfrontier);
    assert_memory_equal(a->frontier, b->frontier,
                        a->nfrontier * sizeof(notes_lv));
    assert_int_equal(a->text.gs, b->text.gs);
    assert_int_equal(a->text.gcp, b->text.gcp);
    assert_int_equal(a->text.ncp, b->text.ncp);
    assert_int_equal(notes__tbuf_bytes(&a->text), notes__tbuf_bytes(&b->text));
    assert_memory_equal(a->text.buf, b->text.buf, a->text.gs);
    assert_memory_equal(a->text.buf + a->text.ge, b->text.buf + b->text.ge,
                        a->text.cap - a->text.ge);
}

/* Add the same edit to both: a through notes__oplog_add with (a copy of)
 * its frontier, b through notes__oplog_add_local. Same result code. */
static int add_both(struct notes__oplog *a, struct notes__oplog *b,
                    uint32_t agent, uint64_t seq, int kind, uint32_t pos,
                    const char *s, size_t n, uint32_t k)
{
    notes_lv fr[64];
    size_t nfr = a->nfrontier;
    assert_true(nfr <= 64);
    if (nfr)
        memcpy(fr, a->frontier, nfr * sizeof(notes_lv));
    notes_lv fa = 12345, fb = 12345;
    int ra = notes__oplog_add(a, agent, seq, fr, nfr, kind, pos, s, n,
                              kind == NOTES__OP_DEL ? k : 0, &fa);
    int rb = notes__oplog_add_local(b, agent, seq, kind, pos, s, n, k, &fb);
    assert_int_equal(ra, rb);
    if (ra == NOTES_OK)
        assert_int_equal(fa, fb);
    same_state(a, b);
    return ra;
}

static const char *const pieces[] = {"a", "b", " ", "\n", "x", "é", "€",
                                     "😀", "ab", "héllo", "z"};

static void session(uint64_t seed)
{
    struct notes__oplog *a, *b;
    struct seen sa = {0}, sb = {0};
    uint8_t key[2][32];
    uint32_t ag[2], ag2[2];
    uint64_t seq[2] = {1ull << 32, 5ull << 32};
    size_t cursor = 0;
    int who = 0, ascii_only = (seed % 3) == 0;

    rng = seed * 0x9e3779b97f4a7c15ull + 1;
    assert_int_equal(notes__oplog_new(&a), NOTES_OK);
    assert_int_equal(notes__oplog_new(&b), NOTES_OK);
    for (int i = 0; i < 2; i++) {
        memset(key[i], 0, 32);
        key[i][0] = (uint8_t)(0x10 + i);
        assert_int_equal(notes__oplog_agent(a, key[i], &ag[i]), NOTES_OK);
        assert_int_equal(notes__oplog_agent(b, key[i], &ag2[i]), NOTES_OK);
        assert_int_equal(ag[i], ag2[i]);
    }
    for (int step = 0; step < 3000; step++) {
        size_t len = a->text.ncp;
        uint32_t r = rnd(100);
        if (r < 2) { /* another agent types now */
            who ^= 1;
        } else if (r < 4) { /* a new change: the seq jumps */
            seq[who] = ((seq[who] >> 32) + 1) << 32;
        } else if (r < 5) { /* an observer comes or goes */
            int on = a->obs == NULL;
            notes__oplog_observe(a, on ? observe : NULL, &sa);
            notes__oplog_observe(b, on ? observe : NULL, &sb);
        } else if (r < 7 && a->n > 2) {
            /* An edit concurrent with the latest events (the same on both,
             * through the general path): the frontier has two heads. */
            notes_lv par = rnd(a->n - 1);
            const char *t = pieces[rnd(ascii_only ? 5 : 11)];
            int ra = notes__oplog_add(a, ag[who ^ 1], seq[who ^ 1], &par, 1,
                                      NOTES__OP_INS, 0, t, strlen(t), 0, NULL);
            int rb = notes__oplog_add(b, ag[who ^ 1], seq[who ^ 1], &par, 1,
                                      NOTES__OP_INS, 0, t, strlen(t), 0, NULL);
            assert_int_equal(ra, rb);
            assert_int_equal(ra, NOTES_OK);
            seq[who ^ 1] += 16;
            same_state(a, b);
        } else if (r < 10) { /* out of range: refused alike, nothing changes */
            uint32_t pos = (uint32_t)len + 1 + rnd(3);
            assert_int_equal(add_both(a, b, ag[who], seq[who], NOTES__OP_INS,
                                      pos, "q", 1, 1),
                             NOTES_EBADOP);
            assert_int_equal(add_both(a, b, ag[who], seq[who], NOTES__OP_DEL,
                                      (uint32_t)len, NULL, 0, 1),
                             NOTES_EBADOP);
        } else if (r < 15) { /* the cursor jumps */
            cursor = rnd((uint32_t)len + 1);
        } else if (r < 17) { /* the text is read: the gap moves to the end */
            size_t nb, ncp;
            const char *ta = notes__oplog_text(a, &nb, &ncp);
            const char *tb = notes__oplog_text(b, NULL, NULL);
            assert_non_null(ta);
            assert_string_equal(ta, tb);
            same_state(a, b);
        } else if (r < 32 && cursor > 0) { /* backspace */
            if (add_both(a, b, ag[who], seq[who], NOTES__OP_DEL,
                         (uint32_t)cursor - 1, NULL, 0, 1) == NOTES_OK) {
                cursor--;
                seq[who]++;
            }
        } else if (r < 38 && cursor < len) { /* delete forward, 1 or more */
            uint32_t k = 1 + (rnd(4) == 0 ? rnd((uint32_t)(len - cursor)) : 0);
            if (k > len - cursor)
                k = (uint32_t)(len - cursor);
            if (add_both(a, b, ag[who], seq[who], NOTES__OP_DEL,
                         (uint32_t)cursor, NULL, 0, k) == NOTES_OK)
                seq[who] += k;
        } else { /* type */
            const char *t = pieces[rnd(ascii_only ? 5 : 11)];
            size_t nb = strlen(t), k = 0;
            for (size_t i = 0; i < nb; i++)
                k += ((unsigned char)t[i] & 0xc0) != 0x80;
            if (add_both(a, b, ag[who], seq[who], NOTES__OP_INS,
                         (uint32_t)cursor, t, nb, (uint32_t)k) == NOTES_OK) {
                cursor += k;
                seq[who] += k;
            }
        }
        if (cursor > a->text.ncp)
            cursor = a->text.ncp;
    }
    assert_int_equal(sa.calls, sb.calls);
    assert_int_equal(sa.del, sb.del);
    assert_int_equal(sa.bytes, sb.bytes);
    const char *ta = notes__oplog_text(a, NULL, NULL);
    assert_string_equal(ta, notes__oplog_text(b, NULL, NULL));
    notes__oplog_free(a);
    notes__oplog_free(b);
}

static void test_local_equals_general(void **state)
{
    (void)state;
    const char *one = getenv("NOTES_TEST_SEED");
    if (one) {
        session(strtoull(one, NULL, 10));
        return;
    }
    for (uint64_t seed = 1; seed <= 60; seed++)
        session(seed);
}

/* The lanes' own edges: the first event (no run to extend), a typed
 * character after a delete, a backspace over the start of the text. */
static void test_local_edges(void **state)
{
    (void)state;
    struct notes__oplog *a, *b;
    uint8_t key[32] = {7};
    uint32_t ag, ag2;
    assert_int_equal(notes__oplog_new(&a), NOTES_OK);
    assert_int_equal(notes__oplog_new(&b), NOTES_OK);
    assert_int_equal(notes__oplog_agent(a, key, &ag), NOTES_OK);
    assert_int_equal(notes__oplog_agent(b, key, &ag2), NOTES_OK);
    /* empty document: nothing to delete; the first insert */
    assert_int_equal(add_both(a, b, ag, 1, NOTES__OP_DEL, 0, NULL, 0, 1),
                     NOTES_EBADOP);
    assert_int_equal(add_both(a, b, ag, 1, NOTES__OP_INS, 0, "h", 1, 1),
                     NOTES_OK);
    assert_int_equal(add_both(a, b, ag, 2, NOTES__OP_INS, 1, "i", 1, 1),
                     NOTES_OK);
    assert_int_equal(add_both(a, b, ag, 3, NOTES__OP_DEL, 1, NULL, 0, 1),
                     NOTES_OK);
    assert_int_equal(add_both(a, b, ag, 4, NOTES__OP_DEL, 0, NULL, 0, 1),
                     NOTES_OK);
    assert_int_equal(add_both(a, b, ag, 5, NOTES__OP_DEL, 0, NULL, 0, 1),
                     NOTES_EBADOP);
    assert_int_equal(add_both(a, b, ag, 5, NOTES__OP_INS, 0, "x", 1, 1),
                     NOTES_OK);
    /* a seq that would overflow: refused alike */
    assert_int_equal(add_both(a, b, ag, UINT64_MAX, NOTES__OP_INS, 1, "yz", 2,
                              2),
                     NOTES_EINVAL);
    assert_string_equal(notes__oplog_text(a, NULL, NULL), "x");
    assert_string_equal(notes__oplog_text(b, NULL, NULL), "x");
    notes__oplog_free(a);
    notes__oplog_free(b);
}

static void doc_observer(void *ud, size_t pos, size_t del, const char *ins,
                         size_t nbytes)
{
    (void)ud;
    (void)pos;
    (void)del;
    (void)ins;
    (void)nbytes;
}

static void test_doc_typing_lane(void **state)
{
    (void)state;
    notes_identity *id;
    notes_doc *a, *b;
    assert_int_equal(notes_identity_generate("typist", &id), NOTES_OK);
    assert_int_equal(notes_doc_memory(id, NULL, &a), NOTES_OK);
    assert_int_equal(notes_doc_memory(id, NULL, &b), NOTES_OK);
    notes_doc_observe(b, doc_observer, NULL);
    rng = 4242;
    size_t cursor = 0, committed = 0;
    for (int step = 0; step < 6000; step++) {
        size_t len = notes_doc_length(a);
        uint32_t r = rnd(100);
        int ra, rb;
        if (r < 3) {
            ra = notes_doc_commit(a, NULL);
            rb = notes_doc_commit(b, NULL);
        } else if (r < 8) {
            cursor = rnd((uint32_t)len + 1);
            continue;
        } else if (r < 22 && cursor > 0) { /* backspace */
            ra = notes_doc_splice(a, cursor - 1, 1, NULL, 0);
            rb = notes_doc_splice(b, cursor - 1, 1, NULL, 0);
            cursor--;
        } else if (r < 27 && cursor < len) { /* delete forward */
            ra = notes_doc_splice(a, cursor, 1, NULL, 0);
            rb = notes_doc_splice(b, cursor, 1, NULL, 0);
        } else if (r < 28) { /* past the end: refused alike */
            ra = notes_doc_splice(a, len + 1, 0, "x", 1);
            rb = notes_doc_splice(b, len + 1, 0, "x", 1);
            assert_int_equal(ra, NOTES_EBADOP);
        } else if (r < 32) { /* replace a character; multi-byte text (which
                              * keeps deletes off their lane) comes late */
            const char *t = pieces[rnd(step < 4500 ? 5 : 11)];
            size_t del = cursor < len ? 1 : 0, k = 0;
            for (size_t i = 0; t[i]; i++)
                k += ((unsigned char)t[i] & 0xc0) != 0x80;
            ra = notes_doc_splice(a, cursor, del, t, strlen(t));
            rb = notes_doc_splice(b, cursor, del, t, strlen(t));
            cursor += k;
        } else { /* type one ASCII character */
            char c[2] = {(char)('a' + rnd(26)), 0};
            ra = notes_doc_splice(a, cursor, 0, c, 1);
            rb = notes_doc_splice(b, cursor, 0, c, 1);
            cursor++;
        }
        assert_int_equal(ra, rb);
        assert_int_equal(notes_doc_length(a), notes_doc_length(b));
        if (cursor > notes_doc_length(a))
            cursor = notes_doc_length(a);
        assert_int_equal(a->pend_kind, b->pend_kind);
        assert_int_equal(a->pend_pos, b->pend_pos);
        assert_int_equal(a->pend_count, b->pend_count);
        assert_int_equal(a->pend_first, b->pend_first);
        assert_int_equal(a->pend_last, b->pend_last);
        assert_int_equal(a->pend_text.len, b->pend_text.len);
        if (a->pend_text.len)
            assert_memory_equal(a->pend_text.data, b->pend_text.data,
                                a->pend_text.len);
        assert_int_equal(a->pend.ops.len, b->pend.ops.len);
        if (a->pend.ops.len)
            assert_memory_equal(a->pend.ops.data, b->pend.ops.data,
                                a->pend.ops.len);
        same_state(a->op, b->op);
    }
    assert_int_equal(notes_doc_commit(a, NULL), NOTES_OK);
    assert_int_equal(notes_doc_commit(b, NULL), NOTES_OK);
    assert_int_equal(a->ne, b->ne);
    for (size_t i = 0; i < a->ne; i++) {
        const struct notes__change *x = a->e[i].c, *y = b->e[i].c;
        assert_true(x->seq == y->seq);
        assert_int_equal(x->nops, y->nops);
        assert_true(x->ntext_events == y->ntext_events);
        assert_int_equal(x->body_len - x->ops_off, y->body_len - y->ops_off);
        assert_memory_equal(x->bytes + x->ops_off, y->bytes + y->ops_off,
                            x->body_len - x->ops_off);
        committed += x->nops;
    }
    assert_true(a->ne > 50 && committed > 500);
    size_t na, nb;
    const char *ta = notes_doc_text(a, &na);
    const char *tb = notes_doc_text(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na);
    notes_doc_free(a);
    notes_doc_free(b);
    notes_identity_free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_equals_general),
        cmocka_unit_test(test_local_edges),
        cmocka_unit_test(test_doc_typing_lane),
    };
    if (notes_init() != NOTES_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
