/*
 * bench.c: notes-bench, the figures of issue 3 on real editing traces.
 *
 *   notes-bench TRACE.json.gz ...    one JSON object per trace on stdout
 *
 * Sequential trace: a user types it into a note (notes_doc_splice per
 * edit, a signed commit every 1,000 edits): apply_ms. The whole history is
 * then received by an empty replica as one bundle, every signature
 * verified: merge_ms. The note is stored in a replica on disk:
 * stored_bytes (the log file, compacted), and opened again with its text
 * read: load_ms (best of 5; the prefix this device verified is vouched for
 * by its local MAC) and load_verify_ms (every signature checked again). Concurrent trace: each agent signs its runs of edits as
 * changes whose deps are the txns' parents; an empty replica merges all
 * agents' changes: merge_ms. final_ok: the text equals the trace's final
 * text. Each trace runs in a fresh child process; peak_rss_kb is the growth
 * of its RSS over the loaded trace (as the anchors report it) and
 * doc_heap_kb the heap a document holds after the whole trace.
 * NOTES_BENCH_APPLY=N (profiling): only the sequential apply loop, N times
 * (apply_only below; docs/crdt.md §7.1).
 */
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "notes.h"
#include "tmpdir.h"
#include "trace.h"

#define BATCH 1000 /* edits per signed change */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noreturn)) static void die(const char *what, int rc)
{
    fprintf(stderr, "notes-bench: %s: %s: %s\n", what, notes_strerror(rc),
            notes_last_detail());
    exit(1);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Store a bundle in a fresh replica; return the log size and load time. */
static void store_and_load(const uint8_t docid[16], const uint8_t *bundle,
                           size_t n, const char *final, size_t final_len,
                           json_t *o)
{
    char *dir = test_tmpdir("bench");
    char *home = test_path(dir, "home");
    notes_replica *r;
    notes_doc *d;
    size_t added;
    int rc;
    if ((rc = notes_replica_create(home, "bench", NULL, &r)))
        die("replica", rc);
    if ((rc = notes_doc_create_id(r, docid, &d)) ||
        (rc = notes_doc_merge(d, bundle, n, &added)))
        die("store", rc);
    if ((rc = notes_doc_compact(d, 19)))
        die("compact", rc);
    notes_doc_free(d);
    char hex[33], name[64];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", docid[i]);
    snprintf(name, sizeof(name), "notes/%s.log", hex);
    char *log = test_path(home, name);
    json_object_set_new(o, "stored_bytes", json_integer(file_size(log)));
    /* Load: open the stored note (read, verify, rebuild) and read its text. */
    double best = 1e18;
    int ok = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_ms();
        if ((rc = notes_doc_open(r, docid, &d)))
            die("load", rc);
        size_t tl;
        const char *t = notes_doc_text(d, &tl);
        double t1 = now_ms();
        ok = tl == final_len && memcmp(t, final, tl) == 0;
        notes_doc_free(d);
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    json_object_set_new(o, "load_ms", json_real(best));
    json_object_set_new(o, "load_ok", json_boolean(ok));
    /* The same without the state file (and its verified-prefix MAC): every
     * signature checked again, as on a device that did not write this log. */
    char *mac = malloc(strlen(log) + 8);
    sprintf(mac, "%s", log);
    strcpy(mac + strlen(mac) - 4, ".state");
    best = 1e18;
    for (int rep = 0; rep < 3; rep++) {
        unlink(mac);
        notes__sig_memo_clear(); /* every signature checked again */
        double t0 = now_ms();
        if ((rc = notes_doc_open(r, docid, &d)))
            die("load", rc);
        size_t tl;
        (void)notes_doc_text(d, &tl);
        double t1 = now_ms();
        notes_doc_free(d);
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    free(mac);
    json_object_set_new(o, "load_verify_ms", json_real(best));
    notes_replica_free(r);
    free(log);
    free(home);
    test_rmtree(dir);
}

static double merge_bundle(const uint8_t docid[16], const uint8_t *bundle,
                           size_t n, const struct trace *tr, int *ok)
{
    double best = 1e18;
    for (int rep = 0; rep < 5; rep++) {
        notes_doc *m;
        size_t added;
        int rc = notes_doc_memory(NULL, docid, &m);
        if (rc)
            die("memory doc", rc);
        notes__sig_memo_clear(); /* a receiver checks every signature */
        double t0 = now_ms();
        if ((rc = notes_doc_merge(m, bundle, n, &added)))
            die("merge", rc);
        size_t tl;
        const char *t = notes_doc_text(m, &tl);
        double t1 = now_ms();
        *ok = tl == tr->end_len && memcmp(t, tr->end_content, tl) == 0;
        notes_doc_free(m);
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    return best;
}

/* The trace typed into d (notes_doc_splice per edit), a commit every BATCH
 * edits and one at the end when `commit` (commit_ms, if not NULL: the
 * time spent in them). Returns the number of commits. */
static size_t type_trace(notes_doc *d, const struct trace *tr, int commit,
                         double *commit_ms)
{
    size_t changes = 0;
    int rc;
    /* A sequential trace's patches lie in one array, in order (trace.h),
     * as the floor's ops do: one flat loop, no walk of the txns. */
    const struct trace_patch *p = tr->patches, *end = p + tr->total_patches;
    for (size_t edits = 1; p < end; p++, edits++) {
        if ((rc = notes_doc_splice(d, p->pos, p->del, p->ins, p->ins_len)))
            die("splice", rc);
        if (edits % BATCH != 0 || !commit)
            continue;
        double c0 = commit_ms ? now_ms() : 0;
        if ((rc = notes_doc_commit(d, NULL)))
            die("commit", rc);
        if (commit_ms)
            *commit_ms += now_ms() - c0;
        changes++;
    }
    if (commit && notes_doc_dirty(d)) {
        double c0 = commit_ms ? now_ms() : 0;
        if ((rc = notes_doc_commit(d, NULL)))
            die("commit", rc);
        if (commit_ms)
            *commit_ms += now_ms() - c0;
        changes++;
    }
    return changes;
}

/*
 * Profiling: NOTES_BENCH_APPLY=N runs only the sequential apply loop N times
 * (the same splices and commits as apply_ms) and prints its best time, so
 * that `perf record` sees nothing else, with the time spent in the commits
 * (commit_ms). NOTES_BENCH_NOCOMMIT=1 leaves the commits out (the splices
 * alone).
 */
static void apply_only(const struct trace *tr, int reps)
{
    notes_identity *id;
    int rc;
    int nocommit = getenv("NOTES_BENCH_NOCOMMIT") != NULL;
    if ((rc = notes_identity_generate("typist", &id)))
        die("identity", rc);
    double best = 1e18, best_commit = 1e18;
    for (int rep = 0; rep < reps; rep++) {
        notes_doc *d;
        if ((rc = notes_doc_memory(id, NULL, &d)))
            die("doc", rc);
        double tc = 0;
        double t0 = now_ms();
        type_trace(d, tr, !nocommit, &tc);
        double t1 = now_ms();
        if (t1 - t0 < best)
            best = t1 - t0;
        if (tc < best_commit)
            best_commit = tc;
        notes_doc_free(d);
    }
    printf("{\"apply_ms\":%.3f,\"commit_ms\":%.3f,\"reps\":%d}\n", best,
           best_commit, reps);
    fflush(stdout); /* the child leaves by _exit */
    notes_identity_free(id);
}

static void bench_sequential(const struct trace *tr, json_t *o)
{
    notes_identity *id;
    notes_doc *d = NULL;
    int rc;
    if ((rc = notes_identity_generate("typist", &id)))
        die("identity", rc);
    double best = 1e18;
    size_t changes = 0;
    for (int rep = 0; rep < 5; rep++) {
        notes_doc_free(d);
        if ((rc = notes_doc_memory(id, NULL, &d)))
            die("doc", rc);
        double t0 = now_ms();
        changes = type_trace(d, tr, 1, NULL);
        double t1 = now_ms();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    {
        /* Live heap held by the document after the whole trace. */
        notes_doc *m;
        struct mallinfo2 before = mallinfo2();
        if ((rc = notes_doc_memory(id, NULL, &m)))
            die("doc", rc);
        type_trace(m, tr, 1, NULL);
        struct mallinfo2 after = mallinfo2();
        json_object_set_new(o, "doc_heap_kb",
                            json_integer((json_int_t)((after.uordblks -
                                                       before.uordblks) / 1024)));
        notes_doc_free(m);
    }
    size_t tl;
    const char *t = notes_doc_text(d, &tl);
    int ok = tl == tr->end_len && memcmp(t, tr->end_content, tl) == 0;
    json_object_set_new(o, "apply_ms", json_real(best));
    json_object_set_new(o, "changes", json_integer((json_int_t)changes));
    uint8_t *bundle;
    size_t n;
    if ((rc = notes_doc_export(d, NULL, 0, &bundle, &n)))
        die("export", rc);
    json_object_set_new(o, "bundle_bytes", json_integer((json_int_t)n));
    int mok;
    json_object_set_new(o, "merge_ms",
                        json_real(merge_bundle(notes_doc_id(d), bundle, n, tr, &mok)));
    store_and_load(notes_doc_id(d), bundle, n, tr->end_content, tr->end_len, o);
    json_object_set_new(o, "final_ok", json_boolean(ok && mok));
    notes_free(bundle);
    notes_doc_free(d);
    notes_identity_free(id);
}

/*
 * Concurrent trace: a change is a run of one agent's txns in which each txn
 * has exactly the previous txn of the run as its parent (at most BATCH
 * edits); its deps are the first txn's parents. That is what each agent's
 * replica would have signed while typing between merges.
 */
static void bench_concurrent(const struct trace *tr, json_t *o)
{
    notes_identity **ids = calloc(tr->num_agents, sizeof(*ids));
    uint64_t *seq = calloc(tr->num_agents, sizeof(*seq));
    uint8_t(*last)[32] = calloc(tr->num_agents, 32);
    uint8_t(*txid)[32] = calloc(tr->ntxns, 32); /* change id of each txn */
    uint8_t docid[16];
    struct notes_buf bundle;
    struct notes_buf body;
    uint32_t nchanges = 0;
    int rc;

    notes__buf_init(&bundle, SIZE_MAX / 2);
    notes__buf_init(&body, SIZE_MAX / 2);
    memset(docid, 0x42, sizeof(docid));
    for (uint32_t a = 0; a < tr->num_agents; a++) {
        char name[32];
        snprintf(name, sizeof(name), "agent%u", a);
        if ((rc = notes_identity_generate(name, &ids[a])))
            die("identity", rc);
    }
    /* A txn that another txn (not simply the next one of its run) names as
     * a parent must end its change: deps name whole changes. */
    uint8_t *must_end = calloc(tr->ntxns + 1, 1);
    for (size_t t = 0; t < tr->ntxns; t++)
        for (size_t k = 0; k < tr->txns[t].nparents; k++) {
            uint32_t p = tr->txns[t].parents[k];
            if (!(tr->txns[t].nparents == 1 && p + 1 == t &&
                  tr->txns[p].agent == tr->txns[t].agent))
                must_end[p] = 1;
        }
    /* Signatures: a change is signed when its author has typed BATCH edits
     * since their last signature, and at the author's last change; the
     * changes between are covered through the hash chain. */
    size_t *last_txn = calloc(tr->num_agents, sizeof(*last_txn));
    size_t *since_sig = calloc(tr->num_agents, sizeof(*since_sig));
    for (size_t t = 0; t < tr->ntxns; t++)
        last_txn[tr->txns[t].agent] = t;
    uint32_t nsigned = 0;
    double tb0 = now_ms();
    size_t i = 0;
    while (i < tr->ntxns) {
        const struct trace_txn *first = &tr->txns[i];
        uint32_t a = first->agent;
        struct notes__change_builder b;
        notes__builder_init(&b);
        size_t j = i, edits = 0;
        do {
            const struct trace_txn *tx = &tr->txns[j];
            for (size_t k = 0; k < tx->npatches; k++) {
                const struct trace_patch *p = &tx->patches[k];
                if (p->del && (rc = notes__builder_del(&b, NOTES__K_DEL, p->pos,
                                                       p->del)))
                    die("builder", rc);
                if (p->ins_len &&
                    (rc = notes__builder_ins(&b, p->pos, (const uint8_t *)p->ins,
                                             p->ins_len, p->ins_cps)))
                    die("builder", rc);
                edits++;
            }
            j++;
        } while (j < tr->ntxns && edits < BATCH && !must_end[j - 1] &&
                 tr->txns[j].agent == a &&
                 tr->txns[j].nparents == 1 && tr->txns[j].parents[0] == j - 1);
        /* deps: the first txn's parents, as change ids, sorted, unique. */
        uint8_t(*deps)[32] = calloc(first->nparents + 1, 32);
        uint32_t nd = 0;
        for (size_t k = 0; k < first->nparents; k++) {
            int dup = 0;
            for (uint32_t m = 0; m < nd; m++)
                dup |= !memcmp(deps[m], txid[first->parents[k]], 32);
            if (!dup)
                memcpy(deps[nd++], txid[first->parents[k]], 32);
        }
        for (uint32_t x = 1; x < nd; x++)
            for (uint32_t y = x; y > 0 && memcmp(deps[y - 1], deps[y], 32) > 0; y--) {
                uint8_t tmp[32];
                memcpy(tmp, deps[y], 32);
                memcpy(deps[y], deps[y - 1], 32);
                memcpy(deps[y - 1], tmp, 32);
            }
        struct notes__change *c;
        if (b.nops == 0) { /* a txn with no patch: nothing to sign */
            notes__builder_release(&b);
            free(deps);
            for (size_t k = i; k < j; k++)
                memcpy(txid[k], i ? txid[i - 1] : txid[0], 32);
            i = j;
            continue;
        }
        since_sig[a] += edits;
        int sign = since_sig[a] >= BATCH || j > last_txn[a];
        if (sign) {
            since_sig[a] = 0;
            nsigned++;
        }
        if ((rc = notes__builder_finish(&b, docid, ids[a], ++seq[a], last[a],
                                        (const uint8_t(*)[32])deps, nd, 0, sign,
                                        &c)))
            die("sign", rc);
        memcpy(last[a], c->id, 32);
        for (size_t k = i; k < j; k++)
            memcpy(txid[k], c->id, 32);
        if ((rc = notes__buf_put_bytes(&body, c->bytes, c->nbytes)))
            die("bundle", rc);
        nchanges++;
        notes__change_free(c);
        notes__builder_release(&b);
        free(deps);
        i = j;
    }
    double tb1 = now_ms();
    notes__buf_put(&bundle, "NTB\x01", 4);
    notes__buf_put_varint(&bundle, nchanges);
    notes__buf_put(&bundle, body.data, body.len);
    json_object_set_new(o, "sign_ms", json_real(tb1 - tb0));
    json_object_set_new(o, "changes", json_integer(nchanges));
    json_object_set_new(o, "signatures", json_integer(nsigned));
    json_object_set_new(o, "bundle_bytes", json_integer((json_int_t)bundle.len));
    int ok;
    json_object_set_new(o, "merge_ms",
                        json_real(merge_bundle(docid, bundle.data, bundle.len, tr, &ok)));
    store_and_load(docid, bundle.data, bundle.len, tr->end_content, tr->end_len, o);
    json_object_set_new(o, "final_ok", json_boolean(ok));
    for (uint32_t a = 0; a < tr->num_agents; a++)
        notes_identity_free(ids[a]);
    free(ids);
    free(seq);
    free(last);
    free(txid);
    free(must_end);
    free(last_txn);
    free(since_sig);
    notes__buf_release(&bundle);
    notes__buf_release(&body);
}

/*
 * Peak RSS of the benchmark itself: parsing the trace's JSON costs far more
 * than the note, so the heap is trimmed and the kernel's high-water mark
 * reset (clear_refs 5) once the trace is loaded. The trace's own arrays
 * (every patch and its text) stay resident and are included.
 */
static void reset_peak(void)
{
    malloc_trim(0);
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1)
            fprintf(stderr, "notes-bench: cannot reset the RSS high-water mark\n");
        close(fd);
    }
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':' &&
            sscanf(line + fl + 1, "%ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int run_one(const char *path)
{
    struct trace tr;
    if (trace_load(path, &tr) != 0)
        return 1;
    const char *only = getenv("NOTES_BENCH_APPLY");
    if (only && !tr.concurrent) {
        apply_only(&tr, atoi(only) > 0 ? atoi(only) : 1);
        trace_free(&tr);
        return 0;
    }
    reset_peak();
    long base_kb = status_kb("VmRSS");

    json_t *o = json_object();
    const char *base = strrchr(path, '/');
    char name[256];
    snprintf(name, sizeof(name), "%s", base ? base + 1 : path);
    char *dot = strstr(name, ".json");
    if (dot)
        *dot = 0;
    json_object_set_new(o, "trace", json_string(name));
    json_object_set_new(o, "ops", json_integer((json_int_t)tr.total_patches));
    json_object_set_new(o, "concurrent", json_boolean(tr.concurrent));
    if (tr.concurrent)
        bench_concurrent(&tr, o);
    else
        bench_sequential(&tr, o);
    /* As the anchors do: the growth of RSS over the loaded trace. */
    json_object_set_new(o, "peak_rss_kb", json_integer(status_kb("VmHWM") - base_kb));
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    fflush(stdout);
    json_decref(o);
    trace_free(&tr);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: notes-bench TRACE.json.gz ...\n");
        return 2;
    }
    if (notes_init() != NOTES_OK)
        return 1;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(run_one(argv[i]));
        int st;
        waitpid(pid, &st, 0);
        failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    return failed;
}
