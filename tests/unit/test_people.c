/*
 * test_people.c: person keys, device links, revocations and confirmations
 * in libnotes, on real replicas in temporary directories.
 *
 * Cast: person P ("Rita") with two devices, A (where P's key lives) and B
 * (linked from A with B's pairing code); person Q ("Omar") on device C.
 * Changes travel between them as bundles (notes_doc_export / merge).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "change.h"
#include "people.h"
#include "tmpdir.h"

struct world {
    char *dir;
    notes_replica *a, *b, *c;
    notes_doc *da, *db, *dc;
    uint8_t id[16];
};

static notes_replica *make_replica(const char *dir, const char *sub,
                                   const char *name, const char *person)
{
    char *home = test_path(dir, sub);
    notes_replica *r;
    assert_int_equal(notes_replica_create(home, name, NULL, &r), NOTES_OK);
    assert_int_equal(notes_replica_unlock(r, NULL), NOTES_OK);
    if (person)
        assert_int_equal(notes_replica_person_create(r, person, NULL), NOTES_OK);
    free(home);
    return r;
}

/* Send `from` everything to `to` (a whole-note bundle). */
static int send(notes_doc *from, notes_doc *to)
{
    uint8_t *bytes;
    size_t n, added;
    assert_int_equal(notes_doc_export(from, NULL, 0, &bytes, &n), NOTES_OK);
    int rc = notes_doc_merge(to, bytes, n, &added);
    notes_free(bytes);
    return rc;
}

static void type(notes_doc *d, const char *s)
{
    assert_int_equal(notes_doc_splice(d, notes_doc_length(d), 0, s, strlen(s)),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    w->dir = test_tmpdir("people");
    w->a = make_replica(w->dir, "a", "rita-laptop", "Rita");
    w->b = make_replica(w->dir, "b", "rita-desktop", NULL);
    w->c = make_replica(w->dir, "c", "omar-laptop", "Omar");
    /* B pairs with A: B's code, A's person key. */
    char *code;
    notes_identity *p;
    uint8_t dev[32];
    assert_int_equal(notes_replica_pair_code(w->b, &code), NOTES_OK);
    assert_int_equal(notes_replica_person_load(w->a, NULL, &p), NOTES_OK);
    assert_int_equal(notes_replica_link(w->a, p, code, dev), NOTES_OK);
    assert_memory_equal(dev, notes_replica_public_key(w->b), 32);
    notes_identity_free(p);
    notes_free(code);

    assert_int_equal(notes_doc_create(w->a, &w->da), NOTES_OK);
    memcpy(w->id, notes_doc_id(w->da), 16);
    type(w->da, "# Weekly\n## Decisions\n- RD: ship it\n");
    assert_int_equal(notes_doc_create_id(w->b, w->id, &w->db), NOTES_OK);
    assert_int_equal(notes_doc_create_id(w->c, w->id, &w->dc), NOTES_OK);
    assert_int_equal(send(w->da, w->db), NOTES_OK);
    assert_int_equal(send(w->da, w->dc), NOTES_OK);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    notes_doc_free(w->da);
    notes_doc_free(w->db);
    notes_doc_free(w->dc);
    notes_replica_free(w->a);
    notes_replica_free(w->b);
    notes_replica_free(w->c);
    test_rmtree(w->dir);
    free(w);
    return 0;
}

static void expect_person(notes_doc *d, const uint8_t *device,
                          const uint8_t *person, const char *name)
{
    notes_person_info pi;
    assert_int_equal(notes_doc_person(d, device, &pi), NOTES_OK);
    assert_non_null(pi.person);
    assert_memory_equal(pi.person, person, 32);
    assert_string_equal(pi.name, name);
    assert_int_equal(pi.contested, 0);
}

static void person_key(notes_replica *r, uint8_t out[32])
{
    notes_identity *p;
    assert_int_equal(notes_replica_person_load(r, NULL, &p), NOTES_OK);
    memcpy(out, notes_identity_public_key(p), 32);
    notes_identity_free(p);
}

/* Both of Rita's devices show as Rita on every replica; Omar as Omar. */
static void test_linked_devices_attribute_to_the_person(void **state)
{
    struct world *w = *state;
    uint8_t rita[32], omar[32];
    person_key(w->a, rita);
    person_key(w->c, omar);
    /* A's first change carried A's own link and B's (made before). */
    expect_person(w->dc, notes_replica_public_key(w->a), rita, "Rita");
    expect_person(w->dc, notes_replica_public_key(w->b), rita, "Rita");
    /* B learned its link from the note and adopts it: its certs file now
     * has it, so notes B creates carry it too. */
    type(w->db, "- RD: and test it\n");
    notes_link_info *li;
    size_t n;
    assert_int_equal(notes_replica_links(w->b, &li, &n), NOTES_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(li[0].person, rita, 32);
    assert_int_equal(li[0].self, 1);
    notes_free(li);
    type(w->dc, "- OK: agreed\n");
    assert_int_equal(send(w->db, w->dc), NOTES_OK);
    assert_int_equal(send(w->dc, w->da), NOTES_OK);
    for (notes_doc *d = w->da;; d = d == w->da ? w->dc : NULL) {
        if (!d)
            break;
        expect_person(d, notes_replica_public_key(w->b), rita, "Rita");
        expect_person(d, notes_replica_public_key(w->c), omar, "Omar");
    }
    /* A note B starts on its own carries B's link. */
    notes_doc *nb;
    assert_int_equal(notes_doc_create(w->b, &nb), NOTES_OK);
    type(nb, "B's own note\n");
    expect_person(nb, notes_replica_public_key(w->b), rita, "Rita");
    notes_doc_free(nb);
}

/* An unlinked device is attributed to nobody. */
static void test_unlinked_device_is_unknown(void **state)
{
    struct world *w = *state;
    notes_replica *x = make_replica(w->dir, "x", "stranger", NULL);
    notes_doc *dx;
    assert_int_equal(notes_doc_create_id(x, w->id, &dx), NOTES_OK);
    assert_int_equal(send(w->da, dx), NOTES_OK);
    type(dx, "hello\n");
    assert_int_equal(send(dx, w->dc), NOTES_OK);
    notes_person_info pi;
    assert_int_equal(notes_doc_person(w->dc, notes_replica_public_key(x), &pi),
                     NOTES_ENOTFOUND);
    assert_null(pi.person);
    notes_doc_free(dx);
    notes_replica_free(x);
}

/* Build a signed change by `signer` on top of everything `base` holds,
 * bypassing the library's own refusal, and wrap it in a version 1 bundle. */
static uint8_t *forge_change(notes_doc *base, const notes_identity *signer,
                             const struct notes__change_builder *ops_from,
                             size_t *len)
{
    uint8_t(*heads)[32];
    size_t nh;
    assert_int_equal(notes_doc_heads(base, &heads, &nh), NOTES_OK);
    uint64_t seq = 0;
    uint8_t prev[32] = {0};
    const uint8_t *pk = notes_identity_public_key(signer);
    for (size_t i = 0; i < notes_doc_change_count(base); i++) {
        notes_change_info ci;
        assert_int_equal(notes_doc_change(base, i, &ci), NOTES_OK);
        if (memcmp(ci.author, pk, 32) == 0 && ci.seq > seq) {
            seq = ci.seq;
            memcpy(prev, ci.id, 32);
        }
    }
    struct notes__change_builder b = *ops_from;
    struct notes__change *c;
    assert_int_equal(notes__builder_finish(&b, notes_doc_id(base), signer,
                                           seq + 1, prev,
                                           (const uint8_t(*)[32])heads,
                                           (uint32_t)nh, 1700000000000ull, 1, &c),
                     NOTES_OK);
    notes_free(heads);
    uint8_t *out = malloc(c->nbytes + 16);
    memcpy(out, "NTB\x01\x01", 5);
    size_t o = 5, v = c->nbytes;
    do { /* varint length */
        out[o++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memcpy(out + o, c->bytes, c->nbytes);
    *len = o + c->nbytes;
    notes__change_free(c);
    return out;
}

static notes_identity *device_key(struct world *w, const char *sub)
{
    char *home = test_path(w->dir, sub), *key = test_path(home, "identity");
    notes_identity *id;
    assert_int_equal(notes_identity_load(key, NULL, &id), NOTES_OK);
    free(home);
    free(key);
    return id;
}

/* A revoked device: its changes after the revocation are refused
 * everywhere; those before stay and say so; concurrent ones are flagged. */
static void test_revoked_device(void **state)
{
    struct world *w = *state;
    type(w->db, "- before revocation\n");
    assert_int_equal(send(w->db, w->da), NOTES_OK);
    assert_int_equal(send(w->db, w->dc), NOTES_OK);
    /* A concurrent change of B, made without seeing the revocation. */
    notes_identity *bkey = device_key(w, "b");
    struct notes__change_builder ops;
    notes__builder_init(&ops);
    assert_int_equal(notes__builder_ins(&ops, 0, (const uint8_t *)"x", 1, 1),
                     NOTES_OK);
    size_t nconc;
    uint8_t *concurrent = forge_change(w->db, bkey, &ops, &nconc);

    notes_identity *p;
    assert_int_equal(notes_replica_person_load(w->a, NULL, &p), NOTES_OK);
    assert_int_equal(notes_replica_revoke(w->a, p, notes_replica_public_key(w->b)),
                     NOTES_OK);
    notes_identity_free(p);
    size_t added;
    assert_int_equal(notes_doc_publish_certs(w->da, &added), NOTES_OK);
    assert_int_equal(added, 1);
    assert_int_equal(notes_doc_commit(w->da, NULL), NOTES_OK);
    assert_int_equal(send(w->da, w->dc), NOTES_OK);
    assert_int_equal(send(w->da, w->db), NOTES_OK);

    /* B's own replica refuses to sign after its revocation. */
    assert_int_equal(notes_doc_splice(w->db, 0, 0, "y", 1), NOTES_OK);
    assert_int_equal(notes_doc_commit(w->db, NULL), NOTES_EREVOKED);

    /* A forged one on top of the revocation: refused by C, with why. */
    size_t n;
    uint8_t *after = forge_change(w->dc, bkey, &ops, &n);
    size_t count = notes_doc_change_count(w->dc);
    size_t got;
    assert_int_equal(notes_doc_merge(w->dc, after, n, &got), NOTES_EREVOKED);
    assert_non_null(strstr(notes_last_detail(), "revoked"));
    assert_int_equal(notes_doc_change_count(w->dc), count);
    free(after);

    /* The concurrent one is taken, flagged as not seen by the revocation. */
    assert_int_equal(notes_doc_merge(w->dc, concurrent, nconc, &got), NOTES_OK);
    assert_int_equal(got, 1);
    free(concurrent);
    notes__builder_release(&ops);
    notes_identity_free(bkey);
    int saw_before = 0, saw_concurrent = 0;
    for (size_t i = 0; i < notes_doc_change_count(w->dc); i++) {
        notes_change_info ci;
        assert_int_equal(notes_doc_change(w->dc, i, &ci), NOTES_OK);
        if (memcmp(ci.author, notes_replica_public_key(w->b), 32) != 0)
            continue;
        int before = notes_doc_change_before_revocation(w->dc, i);
        saw_before += before == 1;
        saw_concurrent += before == 0;
    }
    assert_int_equal(saw_before, 1);
    assert_int_equal(saw_concurrent, 1);
    notes_person_info pi;
    assert_int_equal(notes_doc_person(w->dc, notes_replica_public_key(w->b), &pi),
                     NOTES_OK);
    assert_int_equal(pi.revoked, 1);
    assert_true(pi.revoked_change < notes_doc_change_count(w->dc));
    /* Reopened from disk, the same verdicts. */
    assert_int_equal(notes_doc_refresh(w->dc), NOTES_OK);
    notes_doc *again;
    assert_int_equal(notes_doc_open(w->c, w->id, &again), NOTES_OK);
    assert_int_equal(notes_doc_change_count(again), notes_doc_change_count(w->dc));
    assert_int_equal(notes_doc_person(again, notes_replica_public_key(w->b), &pi),
                     NOTES_OK);
    assert_int_equal(pi.revoked, 1);
    notes_doc_free(again);
}

/* A link signed by a key that is not the person key, or without the
 * device's consent: the change carrying it is refused, saying why. */
static void test_forged_links(void **state)
{
    struct world *w = *state;
    notes_identity *mallory, *ckey = device_key(w, "c");
    assert_int_equal(notes_identity_generate("Mallory", &mallory), NOTES_OK);
    uint8_t rita[32];
    person_key(w->a, rita);
    /* Mallory claims C for Rita: a link with Rita's key but her signature. */
    uint8_t consent[64];
    assert_int_equal(notes__consent_make(ckey, consent), NOTES_OK);
    struct notes_buf link;
    notes__buf_init(&link, 4096);
    assert_int_equal(notes__link_make(mallory, notes_replica_public_key(w->c),
                                      consent, 1, &link), NOTES_OK);
    memcpy(link.data + 1, rita, 32); /* now it names Rita as the person */
    struct notes__change_builder ops;
    notes__builder_init(&ops);
    assert_int_equal(notes__builder_blob(&ops, NOTES__K_LINK, NULL, 0, link.data,
                                         link.len), NOTES_OK);
    size_t n, got, count = notes_doc_change_count(w->da);
    uint8_t *bundle = forge_change(w->dc, ckey, &ops, &n);
    assert_int_equal(notes_doc_merge(w->da, bundle, n, &got), NOTES_EBADLINK);
    assert_non_null(strstr(notes_last_detail(), "not signed by the person key"));
    assert_int_equal(notes_doc_change_count(w->da), count);
    free(bundle);
    notes__builder_release(&ops);

    /* Mallory's own valid signature, but C never consented. */
    uint8_t bad_consent[64];
    memset(bad_consent, 7, sizeof(bad_consent));
    link.len = 0;
    assert_int_equal(notes__link_make(mallory, notes_replica_public_key(w->c),
                                      bad_consent, 1, &link), NOTES_OK);
    notes__builder_init(&ops);
    assert_int_equal(notes__builder_blob(&ops, NOTES__K_LINK, NULL, 0, link.data,
                                         link.len), NOTES_OK);
    notes_identity *akey = device_key(w, "a");
    bundle = forge_change(w->da, akey, &ops, &n);
    assert_int_equal(notes_doc_merge(w->dc, bundle, n, &got), NOTES_EBADLINK);
    assert_non_null(strstr(notes_last_detail(), "consent"));
    free(bundle);
    notes__builder_release(&ops);
    notes__buf_release(&link);
    notes_identity_free(akey);
    notes_identity_free(ckey);
    notes_identity_free(mallory);
    /* Omar stays Omar on C. */
    uint8_t omar[32];
    person_key(w->c, omar);
    type(w->dc, "x\n");
    expect_person(w->dc, notes_replica_public_key(w->c), omar, "Omar");
}

/* Confirmations bind to a character's stable id, survive sync and edits. */
static void test_confirmation_anchor(void **state)
{
    struct world *w = *state;
    size_t nb;
    const char *t = notes_doc_text(w->dc, &nb);
    const char *item = strstr(t, "RD: ship it");
    assert_non_null(item);
    size_t cp = (size_t)(item - t); /* ASCII so far */
    assert_int_equal(notes_doc_confirm(w->dc, cp, "RD", "ship it"), NOTES_OK);
    assert_int_equal(notes_doc_commit(w->dc, NULL), NOTES_OK);
    assert_int_equal(notes_doc_confirmation_count(w->dc), 1);
    /* Text typed before the item moves it; the anchor still finds it. */
    const char *intro = "Intro é日本\n"; /* 10 code points, 15 bytes */
    assert_int_equal(notes_doc_splice(w->da, 0, 0, intro, strlen(intro)),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(w->da, NULL), NOTES_OK);
    assert_int_equal(send(w->dc, w->da), NOTES_OK);
    assert_int_equal(notes_doc_confirmation_count(w->da), 1);
    notes_confirmation cf;
    assert_int_equal(notes_doc_confirmation(w->da, 0, &cf), NOTES_OK);
    assert_memory_equal(cf.signer, notes_replica_public_key(w->c), 32);
    assert_int_equal(cf.owner_len, 2);
    assert_memory_equal(cf.owner, "RD", 2);
    assert_int_equal(cf.text_len, 7);
    uint32_t *ch, *ev;
    size_t ncp, found = SIZE_MAX;
    assert_int_equal(notes_doc_origins(w->da, NULL, 0, &ch, &ev, &ncp), NOTES_OK);
    for (size_t i = 0; i < ncp; i++) {
        notes_change_info ci;
        assert_int_equal(notes_doc_change(w->da, ch[i], &ci), NOTES_OK);
        if (memcmp(ci.id, cf.anchor, 32) == 0 && ev[i] == cf.anchor_event)
            found = i;
    }
    notes_free(ch);
    notes_free(ev);
    t = notes_doc_text(w->da, &nb);
    item = strstr(t, "RD: ship it");
    assert_non_null(item);
    assert_int_equal(found, (size_t)(item - t) - 5);
    /* A bad anchor position is refused. */
    assert_int_equal(notes_doc_confirm(w->da, 1u << 30, "", "x"), NOTES_EINVAL);
}

/* A bundle file opens in memory with no replica; every single-byte change
 * of it is refused (signatures, chains, and the canonical form). */
static void test_bundle_file_every_byte(void **state)
{
    struct world *w = *state;
    assert_int_equal(notes_doc_confirm(w->dc, 0, "", "# Weekly"), NOTES_OK);
    assert_int_equal(notes_doc_commit(w->dc, NULL), NOTES_OK);
    uint8_t *bytes;
    size_t n;
    assert_int_equal(notes_doc_export(w->dc, NULL, 0, &bytes, &n), NOTES_OK);
    uint8_t *file = malloc(n + 16);
    memcpy(file, w->id, 16);
    memcpy(file + 16, bytes, n);
    notes_free(bytes);
    n += 16;
    notes_doc *d;
    assert_int_equal(notes_bundle_file_open(file, n, &d), NOTES_OK);
    size_t nb, na;
    const char *ta = notes_doc_text(w->dc, &na), *tb = notes_doc_text(d, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na);
    assert_int_equal(notes_doc_confirmation_count(d), 1);
    notes_doc_free(d);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            file[i] ^= (uint8_t)(1u << bit);
            int rc = notes_bundle_file_open(file, n, &d);
            file[i] ^= (uint8_t)(1u << bit);
            if (rc == NOTES_OK)
                print_message("byte %zu bit %d of %zu: not detected\n", i, bit, n);
            assert_int_not_equal(rc, NOTES_OK);
            assert_null(d);
        }
    }
    assert_int_equal(notes_bundle_file_open(file, n - 1, &d), NOTES_ECORRUPT);
    assert_int_equal(notes_bundle_file_open(file, 10, &d), NOTES_ECORRUPT);
    free(file);
}

struct seen {
    const char *want; /* a file name the report must call damaged */
    int hit, others;  /* reports on it, damage reported elsewhere */
};

static void on_file(const notes_file_status *st, void *arg)
{
    struct seen *s = arg;
    size_t pl = strlen(st->path), wl = strlen(s->want);
    int is_it = pl > wl && strcmp(st->path + pl - wl, s->want) == 0 &&
                st->path[pl - wl - 1] == '/';
    if (st->code != NOTES_OK && is_it && *st->message)
        s->hit++;
    else if (st->code != NOTES_OK)
        s->others++;
}

/*
 * Every byte of HOME/certs and HOME/person flipped in turn: the replica
 * refuses the file (no other certificate list or key is ever used in its
 * place) and notes_replica_verify_files names it, and only it.
 */
static void test_certs_and_person_every_byte(void **state)
{
    struct world *w = *state;
    const char *home = notes_replica_home(w->a);
    static const char *const names[] = {"certs", "person"};
    for (size_t f = 0; f < 2; f++) {
        char *path = test_path(home, names[f]);
        size_t n;
        unsigned char *orig = test_slurp(path, &n);
        assert_non_null(orig);
        assert_memory_equal(orig + n - NOTES_CHECK_LINE_LEN, "check ", 6);
        struct seen ok = {names[f], 0, 0};
        assert_int_equal(notes_replica_verify_files(home, on_file, &ok),
                         NOTES_OK);
        assert_int_equal(ok.hit + ok.others, 0);
        for (size_t i = 0; i < n; i++) {
            unsigned char *t = malloc(n);
            memcpy(t, orig, n);
            t[i] ^= 0x01;
            assert_int_equal(test_spit(path, t, n), 0);
            notes_replica *r;
            assert_int_equal(notes_replica_open(home, &r), NOTES_OK);
            if (f == 0) {
                notes_link_info *li = NULL;
                size_t k;
                int rc = notes_replica_links(r, &li, &k);
                if (rc == NOTES_OK)
                    print_message("certs byte %zu flipped: accepted\n", i);
                assert_int_equal(rc, NOTES_ECORRUPT);
                assert_non_null(strstr(notes_last_detail(), path));
            } else {
                notes_identity *p = NULL;
                int rc = notes_replica_person_load(r, NULL, &p);
                if (rc == NOTES_OK)
                    print_message("person byte %zu flipped: accepted\n", i);
                assert_int_not_equal(rc, NOTES_OK);
                assert_null(p);
            }
            notes_replica_free(r);
            struct seen s = {names[f], 0, 0};
            assert_int_not_equal(notes_replica_verify_files(home, on_file, &s),
                                 NOTES_OK);
            assert_int_equal(s.hit, 1);
            assert_int_equal(s.others, 0);
            free(t);
        }
        assert_int_equal(test_spit(path, orig, n), 0);
        free(orig);
        free(path);
    }
}

/* The check line itself: its format, and what it must refuse. */
static void test_check_split(void **state)
{
    (void)state;
    char text[200], line[NOTES_CHECK_LINE_LEN + 1];
    size_t body;
    int checked = -1;
    strcpy(text, "name Ana\n");
    assert_int_equal(notes_check_split("f", text, strlen(text), &body,
                                       &checked), NOTES_OK);
    assert_int_equal(checked, 0); /* an older file */
    assert_int_equal(body, strlen(text));
    notes_check_line(text, 9, line);
    assert_int_equal(strlen(line), NOTES_CHECK_LINE_LEN);
    strcat(text, line);
    assert_int_equal(notes_check_split("f", text, strlen(text), &body,
                                       &checked), NOTES_OK);
    assert_int_equal(checked, 1);
    assert_int_equal(body, 9);
    /* An empty body has a check line too. */
    notes_check_line("", 0, line);
    assert_int_equal(notes_check_split("f", line, strlen(line), &body,
                                       &checked), NOTES_OK);
    assert_int_equal(body, 0);
    /* Cut short; a check line too short; a wrong digit. */
    assert_int_equal(notes_check_split("f", text, strlen(text) - 1, &body,
                                       &checked), NOTES_ECORRUPT);
    char shorter[200];
    snprintf(shorter, sizeof(shorter), "name Ana\n%.*s\n", 40, line);
    assert_int_equal(notes_check_split("f", shorter, strlen(shorter), &body,
                                       &checked), NOTES_ECORRUPT);
    text[20] = text[20] == '0' ? '1' : '0';
    assert_int_equal(notes_check_split("f", text, strlen(text), &body,
                                       &checked), NOTES_ECORRUPT);
    assert_non_null(strstr(notes_last_detail(), "'f' is damaged"));
}

int main(void)
{
    assert_int_equal(notes_init(), NOTES_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linked_devices_attribute_to_the_person,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlinked_device_is_unknown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoked_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirmation_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_file_every_byte, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_certs_and_person_every_byte,
                                        setup, teardown),
        cmocka_unit_test(test_check_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
