/*
 * search_bench.c: notes-bench-search, the search figures of issue 19.
 *
 *   notes-bench-search [--notes N] [--runs R] [--reuse] HOME SAMPLE.md...
 *
 * --reuse: HOME is a replica this program made before: its notes are kept
 * (not made again), its index removed and built again.
 * Makes a replica at HOME (which must not exist) holding N notes (default
 * 10,000): the samples imported in turn, each with a varied title ("Sync
 * #i: WORD WORD") and datetime (a day apart), one signed commit each, as
 * `notes import` stores them. Then, in this process:
 *   build_ms   notes_fmt_search_update on a replica without an index: every
 *              note opened (log read, signatures checked) and indexed;
 *   index_bytes the size of HOME/index.sqlite afterwards;
 *   per query  R runs (default 200) of notes_fmt_search, each the whole
 *              search a user gets: the freshness check of every note (a
 *              directory listing and a stat per log), the FTS5 query,
 *              BM25 ranking, and the hits' matching lines (limit 20);
 *              p50 / p99 / max in ms, and the total hits;
 *   one_edit_ms a search after one note was edited (that note re-indexed);
 *   the freshness check alone (notes_fmt_search_update, nothing changed),
 *   right after a file came or went in the notes folder (its entries are
 *   read) and with the folder unchanged (the known logs are stat'ed); the
 *   queries run after those, with the folder unchanged (aged 10 s).
 * Prints one JSON object on stdout. Timing is CLOCK_MONOTONIC.
 * Put HOME on the disk to measure (the commits fsync: on a slow disk the
 * replica takes long to make; the figures do not include that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "notes.h"
#include "notes_formats.h"
#include "tmpdir.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *const words[] = {
    "release", "roadmap", "hackathon", "kernel", "network", "storage",
    "security", "testing", "documentation", "community", "budget", "hiring",
    "summit", "tutorial", "packaging", "performance"};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static int die(const char *what, int rc)
{
    fprintf(stderr, "notes-bench-search: %s: %s (%s)\n", what, notes_strerror(rc),
            notes_last_detail());
    return 1;
}

int main(int argc, char **argv)
{
    size_t nnotes = 10000, runs = 200;
    int a = 1, reuse = 0;
    for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
        if (strcmp(argv[a], "--reuse") == 0) {
            reuse = 1;
            a--;
        } else if (strcmp(argv[a], "--notes") == 0)
            nnotes = strtoul(argv[a + 1], NULL, 10);
        else if (strcmp(argv[a], "--runs") == 0)
            runs = strtoul(argv[a + 1], NULL, 10);
        else
            break;
    }
    if (argc - a < 2 || !nnotes || !runs) {
        fprintf(stderr, "usage: notes-bench-search [--notes N] [--runs R] HOME SAMPLE.md...\n");
        return 2;
    }
    const char *home = argv[a++];
    size_t nsamples = (size_t)(argc - a);
    char **md = calloc(nsamples, sizeof(char *));
    size_t *mdn = calloc(nsamples, sizeof(size_t));
    for (size_t i = 0; i < nsamples; i++)
        if (!(md[i] = (char *)test_slurp(argv[a + (int)i], &mdn[i]))) {
            fprintf(stderr, "notes-bench-search: cannot read %s\n", argv[a + (int)i]);
            return 1;
        }

    notes_replica *r;
    int rc = reuse ? notes_replica_open(home, &r)
                   : notes_replica_create(home, "Bench", NULL, &r);
    if (rc)
        return die("cannot create the replica", rc);
    if (reuse && (rc = notes_replica_unlock(r, NULL)))
        return die("cannot unlock the replica's key", rc);
    if (reuse) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/index.sqlite", home);
        if (!getenv("KEEP_INDEX")) remove(p);
        uint8_t(*all)[16];
        if ((rc = notes_replica_list(r, &all, &nnotes)))
            return die("cannot list the notes", rc);
        notes_free(all);
    }
    double t0 = now_ms();
    for (size_t i = 0; !reuse && i < nnotes; i++) {
        notes_doc *d;
        notes_fmt_diag diag;
        char title[160], when[40];
        snprintf(title, sizeof(title), "Sync #%zu: %s %s", i, words[i % NWORDS],
                 words[(i / NWORDS) % NWORDS]);
        time_t day = (time_t)1577836800 + (time_t)i * 86400 / 4; /* from 2020 */
        struct tm tm;
        gmtime_r(&day, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
        if ((rc = notes_doc_create(r, &d)) ||
            (rc = notes_fmt_md_import(d, md[i % nsamples], mdn[i % nsamples], &diag)) ||
            (rc = notes_doc_set_field(d, "title", title)) ||
            (rc = notes_doc_set_field(d, "datetime", when)) ||
            (rc = notes_doc_commit(d, NULL)))
            return die("cannot make a note", rc);
        notes_doc_free(d);
    }
    double make_ms = now_ms() - t0;

    notes_fmt_search_stats st;
    t0 = now_ms();
    if ((rc = notes_fmt_search_update(r, &st)))
        return die("cannot build the index", rc);
    double build_ms = now_ms() - t0;
    size_t indexed = st.indexed;
    notes_fmt_search_stats_clear(&st);
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/index.sqlite", home);
    long long index_bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    long long logs = 0;
    {
        uint8_t(*ids)[16];
        size_t n;
        if (notes_replica_list(r, &ids, &n) == NOTES_OK) {
            for (size_t i = 0; i < n; i++) {
                char hex[33];
                for (int k = 0; k < 16; k++)
                    snprintf(hex + 2 * k, 3, "%02x", ids[i][k]);
                snprintf(path, sizeof(path), "%s/notes/%s.log", home, hex);
                if (stat(path, &sb) == 0)
                    logs += (long long)sb.st_size;
            }
            notes_free(ids);
        }
    }

    static const char *const queries[] = {
        "kraftkit",                      /* a word in half the notes */
        "freeze window",                 /* two words */
        "\"release deadline\"",          /* a phrase */
        "hackathon roadmap",             /* title words */
        "\"Sync #4242\"",                /* one note by its title */
        "kraft*",                        /* a prefix */
        "owner:RD",                      /* a filter alone */
        "tag:community after:2024-01-01", /* filters, dates */
        "participant:Alex kraftkit",     /* a filter and a word */
        "zanzibar",                      /* no match */
    };
    size_t nq = sizeof(queries) / sizeof(queries[0]);
    double *t = calloc(runs, sizeof(double));
    printf("{\"notes\": %zu, \"make_replica_ms\": %.0f, \"logs_bytes\": %lld,"
           " \"build_ms\": %.1f, \"indexed\": %zu, \"index_bytes\": %lld,"
           " \"queries\": [",
           nnotes, make_ms, logs, build_ms, indexed, index_bytes);
    double worst_p50 = 0, worst_p99 = 0;
    /* The freshness check alone, nothing re-indexed: first right after a
     * file came or went in the notes folder (its entries are read: the
     * folder's mtime is set to now before each run), then as usual (the
     * folder unchanged for 2 s, remembered: the known logs are stat'ed). */
    char ndir[4096];
    snprintf(ndir, sizeof(ndir), "%s/notes", home);
    for (int settled = 0; settled < 2; settled++) {
        if (settled) {
            struct timespec back[2] = {{.tv_sec = time(NULL) - 10},
                                       {.tv_sec = time(NULL) - 10}};
            utimensat(AT_FDCWD, ndir, back, 0);
        }
        for (size_t k = 0; k < runs; k++) {
            if (!settled)
                utimensat(AT_FDCWD, ndir, NULL, 0);
            double s = now_ms();
            rc = notes_fmt_search_update(r, NULL);
            t[k] = now_ms() - s;
            if (rc)
                return die("update", rc);
        }
        qsort(t, runs, sizeof(double), cmp_double);
        printf("\n  {\"query\": \"(the freshness check alone, %s)\", \"p50_ms\": %.2f,"
               " \"p99_ms\": %.2f},", settled ? "folder unchanged" : "folder just changed",
               t[runs / 2], t[(runs * 99) / 100 < runs ? (runs * 99) / 100 : runs - 1]);
    }
    for (size_t q = 0; q < nq; q++) {
        size_t total = 0;
        for (size_t k = 0; k < runs; k++) {
            notes_fmt_search_result res;
            double s = now_ms();
            rc = notes_fmt_search(r, queries[q], 20, &res);
            t[k] = now_ms() - s;
            total = res.total;
            notes_fmt_search_clear(&res);
            if (rc)
                return die(queries[q], rc);
        }
        qsort(t, runs, sizeof(double), cmp_double);
        double p50 = t[runs / 2], p99 = t[(runs * 99) / 100 < runs ? (runs * 99) / 100 : runs - 1];
        if (p50 > worst_p50)
            worst_p50 = p50;
        if (p99 > worst_p99)
            worst_p99 = p99;
        printf("%s\n  {\"query\": \"", q ? "," : "");
        for (const char *c = queries[q]; *c; c++)
            printf(*c == '"' ? "\\\"" : "%c", *c);
        printf("\", \"total\": %zu, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f}",
               total, p50, p99, t[runs - 1]);
    }
    /* One note edited: the next search re-indexes it alone. */
    uint8_t(*ids)[16];
    size_t n;
    notes_doc *d;
    double edit_ms = -1;
    if (notes_replica_list(r, &ids, &n) == NOTES_OK && n &&
        notes_doc_open(r, ids[n / 2], &d) == NOTES_OK) {
        /* A word no note holds yet (--reuse runs again on the replica). */
        char word[40];
        snprintf(word, sizeof(word), "quagga%lld\n", (long long)time(NULL));
        if (notes_doc_splice(d, 0, 0, word, strlen(word)) == NOTES_OK &&
            notes_doc_commit(d, NULL) == NOTES_OK) {
            notes_fmt_search_result res;
            word[strlen(word) - 1] = 0;
            double s = now_ms();
            if (notes_fmt_search(r, word, 20, &res) == NOTES_OK &&
                res.total == 1 && res.stats.indexed == 1)
                edit_ms = now_ms() - s;
            notes_fmt_search_clear(&res);
        }
        notes_doc_free(d);
        notes_free(ids);
    }
    printf("],\n \"worst_p50_ms\": %.2f, \"worst_p99_ms\": %.2f, \"one_edit_ms\": %.2f}\n",
           worst_p50, worst_p99, edit_ms);
    free(t);
    for (size_t i = 0; i < nsamples; i++)
        free(md[i]);
    free(md);
    free(mdn);
    notes_replica_free(r);
    return 0;
}
