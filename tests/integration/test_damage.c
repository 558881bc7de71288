/*
 * test_damage.c: the damage campaign (issue 15). A note's log is damaged
 * byte by byte and cut record by record, and after each mutation:
 *   - reading the note (list, open, text, history, verify) reports the
 *     damage naming the log file, and changes no byte of any file;
 *   - the note's last good state (the intact records before the damage)
 *     is what it shows;
 *   - for a sample, importing a peer's copy brings every acknowledged
 *     change back, verify is clean and the device signs its next change
 *     after its highest sequence number.
 * Twice: on a compacted note of several megabytes (one pack record, then a
 * few appended records) and on an uncompacted log of many small records.
 * The CLI cases run the built binary on the reproductions of the issue.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notes.h"
#include "clirun.h"
#include "tmpdir.h"

/* ---- a whole-directory fingerprint: names, types, sizes, bytes ---- */
/* Not the search and notes index (HOME/index.sqlite and SQLite's files
 * beside it): a cache of the logs that `notes search`, `notes list` and
 * `notes decisions` bring up to date as they read (docs/formats.md, "The
 * notes index"); deleting it loses nothing. What a read-only command must
 * leave alone is the replica: logs, states, keys, spaces. */
static int is_index(const char *name)
{
    return strncmp(name, "index.sqlite", 12) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void snap_dir(crypto_generichash_state *h, const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            is_index(e->d_name))
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *p = test_path(dir, names[i]);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        crypto_generichash_update(h, (const unsigned char *)names[i],
                                  strlen(names[i]) + 1);
        uint64_t meta[2] = {(uint64_t)st.st_mode, (uint64_t)st.st_size};
        crypto_generichash_update(h, (const unsigned char *)meta, sizeof(meta));
        if (S_ISDIR(st.st_mode)) {
            snap_dir(h, p);
        } else if (S_ISREG(st.st_mode)) {
            size_t len;
            unsigned char *b = test_slurp(p, &len);
            assert_non_null(b);
            crypto_generichash_update(h, b, len);
            free(b);
        }
        free(p);
        free(names[i]);
    }
    free(names);
}

static void snap(const char *dir, uint8_t out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    snap_dir(&h, dir);
    crypto_generichash_final(&h, out, 32);
}

static void hash_text(notes_doc *d, uint8_t out[32])
{
    size_t n;
    const char *t = notes_doc_text(d, &n);
    crypto_generichash(out, 32, (const unsigned char *)t, n, NULL, 0);
}

/* ---- the campaign on one note ---- */

struct campaign {
    char *dir, *home, *notes_dir, *log, *state;
    notes_replica *r;
    uint8_t id[16];
    uint8_t *log0, *state0;  /* the pristine files */
    size_t nlog0, nstate0;
    char *snapf;             /* the snapshot cache (doc_snap.c) and ... */
    uint8_t *snap0;          /* ... its pristine bytes */
    size_t nsnap0;
    uint8_t pristine[32];    /* snap of the whole home */
    size_t nrec;             /* records in the log */
    uint64_t *off;           /* off[i]: start of record i; off[nrec]: end */
    uint8_t (*texts)[32];    /* texts[k]: text hash after k records */
    uint8_t *bundle;         /* a peer's copy: every change */
    size_t nbundle;
    size_t nchanges;
    uint64_t myseq;          /* this device's highest seq in the note */
    /* tallies */
    size_t cases, recovered, read_failures;
};

static uint64_t file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

static void note_record(struct campaign *c, notes_doc *d)
{
    c->off = realloc(c->off, (c->nrec + 2) * sizeof(*c->off));
    c->texts = realloc(c->texts, (c->nrec + 2) * sizeof(*c->texts));
    c->nrec++;
    c->off[c->nrec] = file_size(c->log);
    hash_text(d, c->texts[c->nrec]);
}

/* Words from a fixed generator: text that compresses like prose. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static char *words(size_t nbytes)
{
    static const char *w[] = {"agenda", "decision", "budget", "review",
                              "Ana", "Bo", "deploy", "notes", "the", "of",
                              "and", "meeting", "action", "owner", "sync",
                              "release", "ship", "fix", "later", "maybe"};
    char *s = malloc(nbytes + 32);
    size_t o = 0;
    while (o < nbytes) {
        uint64_t x = rng();
        o += (size_t)sprintf(s + o, "%s%s%llu", w[x % 20],
                             (x >> 8) % 9 ? " " : ".\n",
                             (unsigned long long)((x >> 16) % 97));
    }
    s[o] = 0;
    return s;
}

static void edit_commit(struct campaign *c, notes_doc *d, size_t bytes)
{
    char *s = words(bytes);
    size_t len = notes_doc_length(d);
    size_t pos = len ? (size_t)(rng() % (len + 1)) : 0;
    assert_int_equal(notes_doc_splice(d, pos, 0, s, strlen(s)), NOTES_OK);
    free(s);
    if (rng() % 3 == 0 && len > 40)
        assert_int_equal(notes_doc_splice(d, (size_t)(rng() % (len - 20)), 7,
                                          NULL, 0), NOTES_OK);
    assert_int_equal(notes_doc_set_field(d, "title", "Damage campaign"),
                     NOTES_OK);
    assert_int_equal(notes_doc_commit(d, NULL), NOTES_OK);
    note_record(c, d);
}

static void campaign_setup(struct campaign *c, const char *tag, int compacted)
{
    memset(c, 0, sizeof(*c));
    c->dir = test_tmpdir(tag);
    c->home = test_path(c->dir, "home");
    assert_int_equal(notes_replica_create(c->home, "Ana", NULL, &c->r),
                     NOTES_OK);
    assert_int_equal(notes_replica_unlock(c->r, NULL), NOTES_OK);
    notes_doc *d;
    assert_int_equal(notes_doc_create(c->r, &d), NOTES_OK);
    memcpy(c->id, notes_doc_id(d), 16);
    char hex[33], name[64];
    for (int i = 0; i < 16; i++)
        sprintf(hex + 2 * i, "%02x", c->id[i]);
    c->notes_dir = test_path(c->home, "notes");
    snprintf(name, sizeof(name), "%s.log", hex);
    c->log = test_path(c->notes_dir, name);
    snprintf(name, sizeof(name), "%s.state", hex);
    c->state = test_path(c->notes_dir, name);
    c->off = calloc(1, sizeof(*c->off));
    c->texts = calloc(1, sizeof(*c->texts));
    hash_text(d, c->texts[0]);
    if (compacted) {
        /* Several megabytes in 40 commits, compacted to one pack record,
         * then a few small commits after it. */
        for (int i = 0; i < 40; i++)
            edit_commit(c, d, 80000);
        assert_int_equal(notes_doc_compact(d, 0), NOTES_OK);
        c->nrec = 0;
        c->off[0] = 32;
        note_record(c, d);
        for (int i = 0; i < 5; i++)
            edit_commit(c, d, 300);
        size_t tl;
        (void)notes_doc_text(d, &tl);
        assert_true(tl > 3000000);
        assert_true(c->off[1] > 500000); /* the pack alone */
    } else {
        for (int i = 0; i < 150; i++)
            edit_commit(c, d, 40 + rng() % 200);
    }
    c->off[0] = 32;
    assert_int_equal(c->off[c->nrec], file_size(c->log));
    c->nchanges = notes_doc_change_count(d);
    for (size_t i = 0; i < c->nchanges; i++) {
        notes_change_info ci;
        assert_int_equal(notes_doc_change(d, i, &ci), NOTES_OK);
        if (!memcmp(ci.author, notes_replica_public_key(c->r), 32) &&
            ci.seq > c->myseq)
            c->myseq = ci.seq;
    }
    assert_int_equal(notes_doc_export(d, NULL, 0, &c->bundle, &c->nbundle),
                     NOTES_OK);
    notes_doc_free(d);
    c->log0 = test_slurp(c->log, &c->nlog0);
    c->state0 = test_slurp(c->state, &c->nstate0);
    c->snapf = strdup(c->state);
    strcpy(c->snapf + strlen(c->snapf) - 5, "snap");
    c->snap0 = test_slurp(c->snapf, &c->nsnap0); /* written by the commits */
    assert_non_null(c->snap0);
    assert_non_null(c->log0);
    assert_non_null(c->state0);
    snap(c->home, c->pristine);
}

static void campaign_free(struct campaign *c)
{
    notes_replica_free(c->r);
    test_rmtree(c->dir);
    free(c->home);
    free(c->notes_dir);
    free(c->log);
    free(c->state);
    free(c->log0);
    free(c->state0);
    free(c->snapf);
    free(c->snap0);
    free(c->off);
    free(c->texts);
    notes_free(c->bundle);
}

/* Put the note's files back as they were before the mutation. */
static void restore(struct campaign *c)
{
    DIR *dd = opendir(c->notes_dir);
    assert_non_null(dd);
    struct dirent *e;
    while ((e = readdir(dd))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
            continue;
        char *p = test_path(c->notes_dir, e->d_name);
        if (unlink(p) != 0)
            fail_msg("cannot remove %s", p);
        free(p);
    }
    closedir(dd);
    assert_int_equal(test_spit(c->log, c->log0, c->nlog0), 0);
    assert_int_equal(test_spit(c->state, c->state0, c->nstate0), 0);
    assert_int_equal(test_spit(c->snapf, c->snap0, c->nsnap0), 0);
    uint8_t now[32];
    snap(c->home, now);
    assert_memory_equal(now, c->pristine, 32);
}

/* How many records precede byte `pos` entirely (they stay readable). */
static size_t intact_before(const struct campaign *c, uint64_t pos)
{
    size_t k = 0;
    while (k < c->nrec && c->off[k + 1] <= pos)
        k++;
    return k;
}

/*
 * Check the replica after one mutation of the log. `good`: how many records
 * are still intact (the last good state). `what` names the mutation in
 * failure messages.
 */
static void check_case(struct campaign *c, size_t good, int recover,
                       const char *what)
{
    uint8_t before[32], after[32], th[32];
    c->cases++;
    snap(c->home, before);

    /* Listed: a damaged note never vanishes from the replica. */
    uint8_t(*ids)[16];
    size_t n, found = 0;
    assert_int_equal(notes_replica_list(c->r, &ids, &n), NOTES_OK);
    for (size_t i = 0; i < n; i++)
        found += !memcmp(ids[i], c->id, 16);
    notes_free(ids);
    if (found != 1)
        fail_msg("%s: the note is not listed", what);

    /* Read: the last good state, the damage named. */
    notes_doc *d;
    int rc = notes_doc_open(c->r, c->id, &d);
    if (rc != NOTES_OK)
        fail_msg("%s: open failed: %s (%s)", what, notes_errname(rc),
                 notes_last_detail());
    if (notes_doc_intact(d) == NOTES_OK)
        fail_msg("%s: the note reads as intact", what);
    const char *dmg = notes_doc_damage(d);
    if (!dmg || !strstr(dmg, c->log))
        fail_msg("%s: the damage does not name the log: %s", what,
                 dmg ? dmg : "(none)");
    hash_text(d, th);
    if (memcmp(th, c->texts[good], 32) != 0)
        fail_msg("%s: the text is not the state after %zu intact records",
                 what, good);
    for (size_t i = 0; i < notes_doc_change_count(d); i++) {
        notes_change_info ci;
        assert_int_equal(notes_doc_change(d, i, &ci), NOTES_OK);
    }
    notes_verify_report rep;
    rc = notes_doc_verify(d, &rep);
    int named = 0;
    for (size_t i = 0; i < rep.nproblems; i++)
        named |= strstr(rep.problems[i].message, c->log) != NULL;
    notes_verify_report_clear(&rep);
    if (rc == NOTES_OK || !named)
        fail_msg("%s: verify returned %s and %s the log", what,
                 notes_errname(rc), named ? "named" : "did not name");
    notes_doc_free(d);
    snap(c->home, after);
    if (memcmp(before, after, 32) != 0)
        fail_msg("%s: reading the note changed a file", what);
    if (!recover)
        return;

    /* Recovery: import a peer's copy of the note. */
    c->recovered++;
    assert_int_equal(notes_doc_open(c->r, c->id, &d), NOTES_OK);
    size_t added;
    rc = notes_doc_merge(d, c->bundle, c->nbundle, &added);
    if (rc != NOTES_OK)
        fail_msg("%s: importing the peer's copy failed: %s (%s)", what,
                 notes_errname(rc), notes_last_detail());
    if (notes_doc_intact(d) != NOTES_OK)
        fail_msg("%s: still damaged after the import: %s", what,
                 notes_doc_damage(d));
    hash_text(d, th);
    assert_memory_equal(th, c->texts[c->nrec], 32);
    assert_int_equal(notes_doc_change_count(d), c->nchanges);
    /* The device goes on after its highest sequence number. */
    assert_int_equal(notes_doc_splice(d, 0, 0, "after recovery\n", 15),
                     NOTES_OK);
    uint8_t cid[32];
    rc = notes_doc_commit(d, cid);
    if (rc != NOTES_OK)
        fail_msg("%s: commit after recovery failed: %s (%s)", what,
                 notes_errname(rc), notes_last_detail());
    size_t last = notes_doc_change_count(d) - 1;
    notes_change_info ci;
    assert_int_equal(notes_doc_change(d, last, &ci), NOTES_OK);
    assert_memory_equal(ci.id, cid, 32);
    assert_int_equal(ci.seq, c->myseq + 1);
    rc = notes_doc_verify(d, &rep);
    for (size_t i = 0; i < rep.nproblems; i++)
        print_message("%s: problem: %s\n", what, rep.problems[i].message);
    notes_verify_report_clear(&rep);
    assert_int_equal(rc, NOTES_OK);
    notes_doc_free(d);
}

static void flip_at(struct campaign *c, uint64_t pos, uint8_t mask, int recover)
{
    char what[96];
    snprintf(what, sizeof(what), "byte %llu ^ 0x%02x",
             (unsigned long long)pos, mask);
    int fd = open(c->log, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t b = c->log0[pos] ^ mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)pos), 1);
    assert_int_equal(close(fd), 0);
    check_case(c, intact_before(c, pos), recover, what);
    if (recover) {
        restore(c);
    } else {
        fd = open(c->log, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, &c->log0[pos], 1, (off_t)pos), 1);
        assert_int_equal(close(fd), 0);
    }
}

static void run_campaign(struct campaign *c, size_t min_sample,
                         size_t recover_every)
{
    size_t k = 0;
    /* Every length field (stored and raw length, 4 bytes each) of every
     * record, one bit of each byte (low, high, middle in turn). */
    static const uint8_t bits[] = {0x01, 0x80, 0x10};
    for (size_t r = 0; r < c->nrec; r++)
        for (uint64_t p = c->off[r] + 8; p < c->off[r] + 16; p++)
            flip_at(c, p, bits[(p + r) % 3], ++k % recover_every == 0);
    size_t nlen = k;
    /* A dense sample of every other position, the file header included:
     * at least min_sample positions, evenly spread, one bit each. */
    uint64_t stride = c->nlog0 / min_sample;
    if (!stride)
        stride = 1;
    size_t nsample = 0;
    for (uint64_t p = 0; p < c->nlog0; p += stride, nsample++)
        flip_at(c, p, (uint8_t)(1u << (p % 8)), ++k % recover_every == 0);
    assert_true(nsample >= min_sample);
    /* A cut at every record boundary but the end, and the file cut to
     * nothing and to part of its header. */
    size_t ncut = 0;
    for (size_t r = 0; r < c->nrec + 2; r++, ncut++) {
        /* r = 0: nothing left; r = 1: part of the header; then each
         * record boundary off[0] (the header alone) .. off[nrec - 1]. */
        uint64_t len = r == 0 ? 0 : r == 1 ? 20 : c->off[r - 2];
        char what[64];
        snprintf(what, sizeof(what), "cut to %llu bytes",
                 (unsigned long long)len);
        assert_int_equal(truncate(c->log, (off_t)len), 0);
        check_case(c, r >= 2 ? r - 2 : 0, 1, what);
        restore(c);
    }
    print_message("%zu records, %zu bytes: %zu length-field flips, %zu "
                  "sampled flips, %zu cuts; %zu recoveries from a peer's "
                  "copy\n", c->nrec, c->nlog0, nlen, nsample, ncut,
                  c->recovered);
}

static void test_damage_compacted(void **state)
{
    (void)state;
    struct campaign c;
    campaign_setup(&c, "damage-packed", 1);
    run_campaign(&c, 2000, 25);
    campaign_free(&c);
}

static void test_damage_uncompacted(void **state)
{
    (void)state;
    struct campaign c;
    campaign_setup(&c, "damage-log", 0);
    run_campaign(&c, 2000, 20);
    campaign_free(&c);
}


/* ---- the same through the command line, on the reproductions ---- */

struct clicase {
    char *work, *home, *notes_dir, *log, *state, *bundle;
    char id[33];
    uint8_t *log0, *state0;
    size_t nlog0, nstate0;
};

static struct clirun_out notes(struct clicase *k, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out o = clirun_va(k->work, "home", NULL, NULL, arg0, ap);
    va_end(ap);
    return o;
}

/* Run `notes ARGS` and expect exit code `want`; returns its stdout (malloc). */
static char *expect(struct clicase *k, int want, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    struct clirun_out o = clirun_va(k->work, "home", NULL, NULL, arg0, ap);
    va_end(ap);
    if (o.status != want)
        fail_msg("notes %s: exit %d, expected %d\nstdout: %s\nstderr: %s",
                 arg0, o.status, want, o.out, o.err);
    char *out = o.out;
    o.out = NULL;
    clirun_free(&o);
    return out;
}

static void cli_setup(struct clicase *k, int compact)
{
    memset(k, 0, sizeof(*k));
    k->work = test_tmpdir("damage-cli");
    k->home = test_path(k->work, "home");
    k->notes_dir = test_path(k->home, "notes");
    free(expect(k, 0, "init", "--name", "Ana", NULL));
    free(expect(k, 0, "new", "Weekly", NULL));
    free(expect(k, 0, "append", "Weekly", "committed", NULL));
    free(expect(k, 0, "decide", "Weekly", "Ship on Friday", NULL));
    free(expect(k, 0, "todo", "Weekly", "Look for places", "--owner", "RD",
                NULL));
    if (compact)
        free(expect(k, 0, "compact", NULL));
    free(expect(k, 0, "append", "Weekly", "after the decision", NULL));
    DIR *d = opendir(k->notes_dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strlen(e->d_name) == 36 && !strcmp(e->d_name + 32, ".log"))
            memcpy(k->id, e->d_name, 32);
    closedir(d);
    assert_int_equal(strlen(k->id), 32);
    char name[64];
    snprintf(name, sizeof(name), "%s.log", k->id);
    k->log = test_path(k->notes_dir, name);
    snprintf(name, sizeof(name), "%s.state", k->id);
    k->state = test_path(k->notes_dir, name);
    k->bundle = test_path(k->work, "peer.bundle");
    free(expect(k, 0, "export", k->id, "--format", "bundle", "-o", k->bundle,
                NULL));
    k->log0 = test_slurp(k->log, &k->nlog0);
    k->state0 = test_slurp(k->state, &k->nstate0);
}

static void cli_free(struct clicase *k)
{
    test_rmtree(k->work);
    free(k->home);
    free(k->notes_dir);
    free(k->log);
    free(k->state);
    free(k->bundle);
    free(k->log0);
    free(k->state0);
}

/* Every read-only command reports the damage (exit 2) and changes no byte;
 * the damage names the log file. */
static void cli_reads_report(struct clicase *k, const char *what)
{
    uint8_t before[32], after[32];
    snap(k->home, before);
    char *out = expect(k, 2, "list", NULL);
    if (!strstr(out, k->id) && !strstr(out, "Weekly")) {
        char shortid[9];
        memcpy(shortid, k->id, 8);
        shortid[8] = 0;
        if (!strstr(out, shortid))
            fail_msg("%s: the note vanished from list: %s", what, out);
    }
    free(out);
    free(expect(k, 2, "show", k->id, NULL));
    free(expect(k, 2, "log", k->id, NULL));
    free(expect(k, 2, "blame", k->id, NULL));
    free(expect(k, 2, "decisions", k->id, NULL));
    free(expect(k, 2, "decisions", NULL)); /* across every note */
    struct clirun_out o = notes(k, "verify", NULL);
    if (o.status != 2 || !strstr(o.err, k->log))
        fail_msg("%s: verify exit %d, stderr: %s", what, o.status, o.err);
    clirun_free(&o);
    snap(k->home, after);
    if (memcmp(before, after, 32) != 0)
        fail_msg("%s: a read-only command changed a file", what);
}

/* Import the peer's bundle: everything back, verify clean, the next change
 * signed after the highest sequence number. */
static void cli_recovers(struct clicase *k)
{
    free(expect(k, 0, "import", k->bundle, NULL));
    free(expect(k, 0, "verify", NULL));
    char *out = expect(k, 0, "show", k->id, NULL);
    assert_non_null(strstr(out, "committed"));
    assert_non_null(strstr(out, "Ship on Friday"));
    assert_non_null(strstr(out, "RD: Look for places"));
    assert_non_null(strstr(out, "after the decision"));
    free(out);
    free(expect(k, 0, "append", k->id, "after recovery", NULL));
    free(expect(k, 0, "verify", NULL));
    out = expect(k, 0, "log", k->id, "--json", NULL);
    /* Ana signed seqs 1..6 (new, append, decide, todo, append, and the
     * certs of her person); a new one never reuses them: no seq twice. */
    int seen[64] = {0}, count = 0;
    for (const char *p = out; (p = strstr(p, "\"seq\": ")); p += 7) {
        int s = atoi(p + 7);
        assert_true(s > 0 && s < 64);
        if (seen[s]++)
            fail_msg("seq %d signed twice: %s", s, out);
        count++;
    }
    /* One author, so the seqs are 1..count: the new one follows the
     * highest, none skipped or reused. */
    assert_true(count >= 6);
    for (int s = 1; s <= count; s++)
        assert_int_equal(seen[s], 1);
    free(out);
    free(expect(k, 0, "show", k->id, NULL));
}

static void test_cli_flip_after_compact(void **state)
{
    (void)state;
    struct clicase k;
    cli_setup(&k, 1);
    /* The reproduction: one byte of the first record's length. */
    int fd = open(k.log, O_WRONLY);
    uint8_t b = k.log0[43] ^ 0xff;
    assert_int_equal(pwrite(fd, &b, 1, 43), 1);
    close(fd);
    cli_reads_report(&k, "flip at 43");
    struct clirun_out o = notes(&k, "verify", NULL);
    assert_non_null(strstr(o.err, "offset 32"));
    clirun_free(&o);
    /* A write is refused (acknowledged changes missing) and sets the
     * damaged bytes aside as evidence, saying so. */
    o = notes(&k, "append", k.id, "while damaged", NULL);
    assert_int_equal(o.status, 2);
    assert_non_null(strstr(o.err, "set aside"));
    assert_non_null(strstr(o.err, "nothing was signed"));
    clirun_free(&o);
    char name[80];
    snprintf(name, sizeof(name), "%s.log.damaged-32", k.id);
    char *aside = test_path(k.notes_dir, name);
    size_t n;
    uint8_t *ev = test_slurp(aside, &n);
    assert_non_null(ev);
    assert_int_equal(n, k.nlog0 - 32);
    assert_memory_equal(ev, k.log0 + 32, 11);
    assert_int_equal(ev[11], k.log0[43] ^ 0xff); /* the damage, as found */
    assert_memory_equal(ev + 12, k.log0 + 44, n - 12);
    free(ev);
    cli_recovers(&k);
    /* The evidence stays. */
    assert_int_equal(access(aside, F_OK), 0);
    free(aside);
    cli_free(&k);
}

static void test_cli_truncated(void **state)
{
    (void)state;
    static const off_t cuts[] = {0, 20};
    for (size_t i = 0; i < 2; i++) {
        struct clicase k;
        cli_setup(&k, 0);
        assert_int_equal(truncate(k.log, cuts[i]), 0);
        cli_reads_report(&k, cuts[i] ? "cut to 20" : "cut to 0");
        cli_recovers(&k);
        cli_free(&k);
    }
}

/* The log replaced by an older copy: its first 3 records kept. */
static void test_cli_rollback(void **state)
{
    (void)state;
    struct clicase k;
    cli_setup(&k, 0);
    /* Record boundaries: walk the headers (stored length at +8). */
    uint64_t off = 32;
    for (int r = 0; r < 3; r++)
        off += 32 + (k.log0[off + 8] | k.log0[off + 9] << 8 |
                     k.log0[off + 10] << 16 | (uint64_t)k.log0[off + 11] << 24);
    assert_true(off < k.nlog0);
    assert_int_equal(truncate(k.log, (off_t)off), 0);
    cli_reads_report(&k, "rollback");
    struct clirun_out o = notes(&k, "append", k.id, "reusing a seq?", NULL);
    assert_int_equal(o.status, 2);
    assert_non_null(strstr(o.err, "nothing was signed"));
    clirun_free(&o);
    /* Nothing was appended: the log is the older copy still. */
    struct stat st;
    assert_int_equal(stat(k.log, &st), 0);
    assert_int_equal((uint64_t)st.st_size, off);
    cli_recovers(&k);
    cli_free(&k);
}

/* Evidence is never overwritten: two interrupted writes cut at the same
 * offset are kept under two names. */
static void test_cli_evidence_unique(void **state)
{
    (void)state;
    struct clicase k;
    cli_setup(&k, 0);
    const char *tails[] = {"first torn tail", "second"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(test_spit(k.log, k.log0, k.nlog0), 0);
        assert_int_equal(test_spit(k.state, k.state0, k.nstate0), 0);
        FILE *f = fopen(k.log, "ab");
        assert_non_null(f);
        fputs(tails[i], f);
        fclose(f);
        /* Never acknowledged: a remark, not damage; reads change nothing. */
        free(expect(&k, 0, "verify", NULL));
        free(expect(&k, 0, "append", k.id, "next", NULL));
    }
    char name[96];
    snprintf(name, sizeof(name), "%s.log.torn-%zu", k.id, k.nlog0);
    char *t1 = test_path(k.notes_dir, name);
    snprintf(name, sizeof(name), "%s.log.torn-%zu.2", k.id, k.nlog0);
    char *t2 = test_path(k.notes_dir, name);
    size_t n1, n2;
    uint8_t *b1 = test_slurp(t1, &n1), *b2 = test_slurp(t2, &n2);
    assert_non_null(b1);
    assert_non_null(b2);
    assert_int_equal(n1, strlen(tails[0]));
    assert_memory_equal(b1, tails[0], n1);
    assert_int_equal(n2, strlen(tails[1]));
    assert_memory_equal(b2, tails[1], n2);
    free(b1);
    free(b2);
    free(t1);
    free(t2);
    cli_free(&k);
}

int main(void)
{
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    if (notes_init() != NOTES_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_flip_after_compact),
        cmocka_unit_test(test_cli_truncated),
        cmocka_unit_test(test_cli_rollback),
        cmocka_unit_test(test_cli_evidence_unique),
        cmocka_unit_test(test_damage_uncompacted),
        cmocka_unit_test(test_damage_compacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
