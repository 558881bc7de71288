/*
 * trace_note.c: notes-trace-note, a stored note holding a whole editing
 * trace, for measuring the page on a large note (issue 9).
 *
 *   notes-trace-note [--probe N] HOME TRACE.json.gz [TITLE]
 *
 * Opens the replica at HOME (made by `notes init`, key unprotected), creates
 * a note and types the sequential trace into it: every edit a
 * notes_doc_splice, a signed commit every 1,000 edits (as notes-bench), then
 * sets the "title" field (default: the trace's file name), commits, and
 * compacts the log at level 19 (as `notes compact`). Prints the note id (32
 * hex digits) on stdout and one JSON line of timings on stderr: replay_ms,
 * the slowest commit of the replay (the one that folded the log into a pack,
 * libnotes does that every 256 records), compact_ms.
 *
 * --probe N: afterwards, time what the daemon pays per keystroke on this
 * note: N commits of one character each (appended at the end, as typing
 * would), with min / median / p99 / max and the commits that folded the log
 * (every 256 records); the daemon's outline pass after a commit
 * (notes_fmt_outline_doc, and notes_doc_authorship alone); and
 * notes_doc_compact(15), the auto-compaction, on its own (best and worst
 * of 5). This changes the note: use a throwaway
 * replica.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "notes.h"
#include "notes_formats.h"
#include "trace.h"

#define BATCH 1000 /* edits per signed change, as notes-bench */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((noreturn)) static void die(const char *what, int rc)
{
    fprintf(stderr, "notes-trace-note: %s: %s: %s\n", what, notes_strerror(rc),
            notes_last_detail());
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/*
 * N one-character commits, as the daemon makes while someone types slowly.
 * A commit that folded the log into a pack is recognized by the log file
 * shrinking. Then the fold (notes_doc_compact(15)) on its own.
 */
static void probe(notes_doc *d, const char *log, int n)
{
    double *t = calloc((size_t)n, sizeof(*t));
    double *sorted = calloc((size_t)n, sizeof(*sorted));
    int *fold = calloc((size_t)n, sizeof(*fold));
    int rc, nfold = 0, nplain = 0;
    if (!t || !sorted || !fold) {
        fprintf(stderr, "notes-trace-note: out of memory\n");
        exit(1);
    }
    long size = file_size(log);
    for (int i = 0; i < n; i++) {
        char c = (char)('a' + i % 26);
        double t0 = now_ms();
        if ((rc = notes_doc_splice(d, notes_doc_length(d), 0, &c, 1)))
            die("splice", rc);
        if ((rc = notes_doc_commit(d, NULL)))
            die("commit", rc);
        t[i] = now_ms() - t0;
        long after = file_size(log);
        fold[i] = after < size;
        size = after;
        if (!fold[i])
            sorted[nplain++] = t[i];
    }
    qsort(sorted, (size_t)nplain, sizeof(*sorted), cmp_double);
#define PCT(q) sorted[(size_t)((q) * nplain) < (size_t)nplain ? (size_t)((q) * nplain) : (size_t)nplain - 1]
    fprintf(stderr,
            "{\"figure\":\"probe_commit\",\"n\":%d,\"plain\":{\"n\":%d,"
            "\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
            "\"max_ms\":%.3f},\"folds\":[",
            n, nplain, nplain ? sorted[0] : 0, nplain ? PCT(0.5) : 0,
            nplain ? PCT(0.9) : 0, nplain ? PCT(0.99) : 0,
            nplain ? sorted[nplain - 1] : 0);
#undef PCT
    for (int i = 0; i < n; i++)
        if (fold[i])
            fprintf(stderr, "%s{\"commit\":%d,\"ms\":%.3f}", nfold++ ? "," : "",
                    i + 1, t[i]);
    fprintf(stderr, "],\"log_bytes\":%ld}\n", size);
    /* The daemon's outline pass (the `items` message, at most every
     * 250 ms while someone types): notes_fmt_outline_doc after a commit,
     * and notes_doc_authorship, the part of it that replays history. */
    double out_best = 1e18, out_worst = 0, au_best = 1e18, au_worst = 0;
    for (int rep = 0; rep < 5; rep++) {
        char c = '.';
        if ((rc = notes_doc_splice(d, notes_doc_length(d), 0, &c, 1)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("commit", rc);
        notes_fmt_outline o;
        memset(&o, 0, sizeof(o));
        double t0 = now_ms();
        rc = notes_fmt_outline_doc(d, &o);
        double dt = now_ms() - t0;
        notes_fmt_outline_clear(&o);
        if (rc)
            die("outline", rc);
        out_best = dt < out_best ? dt : out_best;
        out_worst = dt > out_worst ? dt : out_worst;
        if ((rc = notes_doc_splice(d, notes_doc_length(d), 0, &c, 1)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("commit", rc);
        uint32_t *ch;
        size_t ncp;
        t0 = now_ms();
        if ((rc = notes_doc_authorship(d, &ch, &ncp)))
            die("authorship", rc);
        dt = now_ms() - t0;
        notes_free(ch);
        au_best = dt < au_best ? dt : au_best;
        au_worst = dt > au_worst ? dt : au_worst;
    }
    fprintf(stderr,
            "{\"figure\":\"probe_items\",\"reps\":5,\"outline_best_ms\":%.3f,"
            "\"outline_worst_ms\":%.3f,\"authorship_best_ms\":%.3f,"
            "\"authorship_worst_ms\":%.3f}\n",
            out_best, out_worst, au_best, au_worst);
    /* The fold on its own (level 15, as notes_doc_commit does it). */
    double best = 1e18, worst = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_ms();
        if ((rc = notes_doc_compact(d, 15)))
            die("compact", rc);
        double dt = now_ms() - t0;
        best = dt < best ? dt : best;
        worst = dt > worst ? dt : worst;
    }
    fprintf(stderr,
            "{\"figure\":\"probe_compact15\",\"reps\":5,\"best_ms\":%.3f,"
            "\"worst_ms\":%.3f,\"log_bytes\":%ld}\n",
            best, worst, file_size(log));
    free(t);
    free(sorted);
    free(fold);
}

int main(int argc, char **argv)
{
    int nprobe = 0;
    if (argc >= 3 && strcmp(argv[1], "--probe") == 0) {
        nprobe = atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 3 || argc > 4 || nprobe < 0) {
        fprintf(stderr,
                "usage: notes-trace-note [--probe N] HOME TRACE.json.gz [TITLE]\n");
        return 2;
    }
    const char *home = argv[1], *path = argv[2];
    const char *title = argc > 3 ? argv[3] : NULL;
    if (!title) {
        const char *s = strrchr(path, '/');
        title = s ? s + 1 : path;
    }
    struct trace tr;
    if (trace_load(path, &tr) != 0)
        return 1;
    if (tr.concurrent) {
        fprintf(stderr, "notes-trace-note: %s is a concurrent trace\n", path);
        return 1;
    }
    notes_replica *r;
    notes_doc *d;
    int rc;
    if ((rc = notes_replica_open(home, &r)))
        die("open the replica", rc);
    if ((rc = notes_replica_unlock(r, NULL)))
        die("unlock", rc);
    if ((rc = notes_doc_create(r, &d)))
        die("create", rc);

    double t0 = now_ms(), slowest = 0;
    size_t edits = 0, changes = 0, slowest_at = 0;
    if (tr.start_len && (rc = notes_doc_splice(d, 0, 0, tr.start_content,
                                               tr.start_len)))
        die("splice", rc);
    for (size_t i = 0; i < tr.ntxns; i++) {
        const struct trace_txn *tx = &tr.txns[i];
        for (size_t k = 0; k < tx->npatches; k++) {
            const struct trace_patch *p = &tx->patches[k];
            if ((rc = notes_doc_splice(d, p->pos, p->del, p->ins, p->ins_len)))
                die("splice", rc);
            if (++edits % BATCH == 0) {
                double c0 = now_ms();
                if ((rc = notes_doc_commit(d, NULL)))
                    die("commit", rc);
                double dc = now_ms() - c0;
                changes++;
                if (dc > slowest) {
                    slowest = dc;
                    slowest_at = changes;
                }
            }
        }
    }
    if ((rc = notes_doc_set_field(d, "title", title)) ||
        (rc = notes_doc_commit(d, NULL)))
        die("commit", rc);
    changes++;
    double t1 = now_ms();
    size_t tl;
    const char *text = notes_doc_text(d, &tl);
    int ok = tl == tr.end_len && memcmp(text, tr.end_content, tl) == 0;
    if ((rc = notes_doc_compact(d, 19)))
        die("compact", rc);
    double t2 = now_ms();

    char hex[33];
    const uint8_t *id = notes_doc_id(d);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    fprintf(stderr,
            "{\"figure\":\"trace_note\",\"edits\":%zu,\"changes\":%zu,"
            "\"text_bytes\":%zu,\"text_ok\":%s,\"replay_ms\":%.1f,"
            "\"slowest_commit_ms\":%.2f,\"slowest_commit\":%zu,"
            "\"compact19_ms\":%.1f,\"total_ms\":%.1f}\n",
            edits, changes, tl, ok ? "true" : "false", t1 - t0, slowest,
            slowest_at, t2 - t1, t2 - t0);
    if (nprobe) {
        size_t len = strlen(home) + sizeof("/notes/.log") + 32;
        char *log = malloc(len);
        if (!log)
            die("probe", NOTES_ENOMEM);
        snprintf(log, len, "%s/notes/%s.log", home, hex);
        probe(d, log, nprobe);
        free(log);
    }
    printf("%s\n", hex);
    notes_doc_free(d);
    notes_replica_free(r);
    trace_free(&tr);
    return ok ? 0 : 1;
}
