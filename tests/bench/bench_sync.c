/*
 * bench_sync.c: notes-bench-sync, the sync figures of issue 6, one JSON
 * object per line on stdout.
 *
 *   notes-bench-sync TRACE.json.gz [--quick]     (tests/bench/run_sync.sh)
 *   notes-bench-sync --scale 1000,3670,10000 [--samples DIR]
 *
 * Every figure is real TCP on 127.0.0.1 (ephemeral ports) between
 * replicas in temporary folders; servers (notes_sync_serve) run in child
 * processes, the dialing side (notes_sync_once) in this one.
 *
 *   first_sync   the trace typed into a note on A (notes_doc_splice per
 *                edit, a commit every 1,000 edits, then notes_doc_compact),
 *                B syncs it from A: seconds, wire_bytes (both directions,
 *                handshake included) against stored_bytes (A's log file)
 *   incremental  one 1-character edit on A, B syncs: wire_bytes; and a
 *                sync with nothing new
 *   latency      one-shot: commit on A -> notes_sync_once by B -> the
 *                change stored on B, p50/p99 over N edits, on the trace's
 *                note and on a small note in its own space (with the
 *                note's open time on each side, which grows with history);
 *                live: both sides run the serve loop (live, B dialing A),
 *                commit on A -> B's log has grown, over N edits; and the
 *                same through a notes relay (path "relay"; alone, direct
 *                and relayed alternated: notes-bench-sync --live-latency)
 *   converge     10 peers of one space, each types edits into one shared
 *                note (a commit per edit). One-shot: after the last edit,
 *                peers 1..9 each sync with peer 0, then 1..8 again. Live:
 *                10 serve loops, 1..9 dialing 0, changes flowing while
 *                everyone types. Seconds from the last edit until all ten
 *                texts are equal.
 *   scale        (--scale N,...; issue 21) a space of N small signed notes
 *                (a title of its own and ~1.5 KB of a sample note from
 *                DIR/NAME.md, default ../shared/samples) on A, served;
 *                B, empty, syncs it (first sync), then again three times
 *                with nothing new (no-change sync: ms, wire bytes), then
 *                after one edit on A.
 */
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "change.h"
#include "notes.h"
#include "notes_sync.h"
#include "tmpdir.h"
#include "trace.h"
#include "../../sync/tests/serve_fixture.h"
#include "../../sync/src/sync_internal.h"

static int cmp_id16(const void *x, const void *y)
{
    return memcmp(x, y, 16);
}

#define BATCH 1000 /* edits per signed change, as notes-bench */
#define NPEERS 10

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noreturn)) static void die(const char *what, int rc)
{
    fprintf(stderr, "notes-bench-sync: %s: %s: %s\n", what,
            notes_sync_strerror(rc),
            rc <= -101 ? notes_sync_last_detail() : notes_last_detail());
    exit(1);
}

static void emit(json_t *o)
{
    json_dumpf(o, stdout, JSON_COMPACT);
    putchar('\n');
    fflush(stdout);
    json_decref(o);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static char *mkhome(const char *root, const char *tag, const char *name)
{
    char *home = test_path(root, tag);
    notes_replica *r;
    int rc;
    if ((rc = notes_replica_create(home, name, NULL, &r)))
        die("replica", rc);
    notes_replica_free(r);
    return home;
}

/* ---- a server process ---- */
/*
 * Servers run in child processes: two threads verifying changes at once
 * race inside libnotes (the qsort context of doc.c's batch_cover is a
 * static), processes share nothing. SIGTERM sets the stop flag.
 */
struct server {
    pid_t pid;
    int port;
    char addr[64];
};

static volatile int g_stop;
static int g_portfd = -1;

static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void child_on_listen(void *ud, int port)
{
    (void)ud;
    if (write(g_portfd, &port, sizeof(port)) != sizeof(port))
        _exit(3);
}

/* Serve `home` (live if asked, dialing 127.0.0.1:peer if peer > 0; peer
 * < 0: meet at the relay on 127.0.0.1:-peer, relayed only). home NULL: a
 * relay. */
static void server_start_live(struct server *s, const char *home, int live,
                              int peer)
{
    int fds[2];
    struct pollfd pf;
    memset(s, 0, sizeof(*s));
    if (pipe(fds))
        die("pipe", NOTES_EIO);
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0)
        die("fork", NOTES_EIO);
    if (s->pid == 0) {
        notes_sync_serve_opts o;
        char addr[64];
        const char *peers[1] = {addr};
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        close(fds[0]);
        g_portfd = fds[1];
        if (!home) {
            notes_sync_relay_opts ro;
            memset(&ro, 0, sizeof(ro));
            ro.listen = "127.0.0.1:0";
            ro.on_listen = child_on_listen;
            _exit(fixture_relay(&ro, &g_stop));
        }
        memset(&o, 0, sizeof(o));
        o.on_listen = child_on_listen;
        o.live = live;
        o.retry_ms = 100;
        if (peer > 0) {
            snprintf(addr, sizeof(addr), "127.0.0.1:%d", peer);
            o.peers = peers;
            o.npeers = 1;
        } else if (peer < 0) {
            snprintf(addr, sizeof(addr), "127.0.0.1:%d", -peer);
            o.relays = peers;
            o.nrelays = 1;
            o.no_punch = 1;
        }
        _exit(fixture_serve(home, &o, &g_stop) ? 1 : 0);
    }
    close(fds[1]);
    pf.fd = fds[0];
    pf.events = POLLIN;
    if (poll(&pf, 1, 10000) != 1 ||
        read(fds[0], &s->port, sizeof(s->port)) != sizeof(s->port)) {
        fprintf(stderr, "notes-bench-sync: the server did not listen\n");
        kill(s->pid, SIGKILL);
        exit(1);
    }
    close(fds[0]);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
}

static void server_start(struct server *s, const char *home)
{
    server_start_live(s, home, 0, 0);
}

static void server_stop(struct server *s)
{
    int st = 0;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 1000 && waitpid(s->pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(s->pid, &st, WNOHANG) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        fprintf(stderr, "notes-bench-sync: a server did not stop\n");
        exit(1);
    }
}

static void sync_once(const char *home, const char *space, const char *addr,
                      notes_sync_report *rep)
{
    /* B runs in this process, where A's edits were signed: as on another
     * machine, B checks their signatures (libnotes memoises them). */
    notes__sig_memo_clear();
    int rc = notes_sync_once(home, NULL, space, addr, rep);
    if (rc)
        die("sync", rc);
}

static uint64_t wire(const notes_sync_report *r)
{
    return r->bytes_sent + r->bytes_received;
}

/* The text of note `id` in `home` (malloc'd) or NULL. */
static char *text_of(const char *home, const uint8_t id[16], size_t *len)
{
    notes_replica *r;
    notes_doc *d;
    char *copy = NULL;
    if (notes_replica_open(home, &r))
        return NULL;
    if (notes_doc_open(r, id, &d) == NOTES_OK) {
        size_t n;
        const char *t = notes_doc_text(d, &n);
        if ((copy = malloc(n + 1))) {
            memcpy(copy, t, n);
            copy[n] = 0;
            *len = n;
        }
        notes_doc_free(d);
    }
    notes_replica_free(r);
    return copy;
}

/* Best of 3: opening note `id` of `home` (what every sync does, on both
 * sides). */
static double open_ms(const char *home, const uint8_t id[16])
{
    notes_replica *r;
    double best = 1e18;
    if (notes_replica_open(home, &r))
        return -1;
    for (int i = 0; i < 3; i++) {
        notes_doc *d = NULL;
        double t0 = now_ms();
        if (notes_doc_open(r, id, &d))
            break;
        double t1 = now_ms() - t0;
        notes_doc_free(d);
        if (t1 < best)
            best = t1;
    }
    notes_replica_free(r);
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/*
 * Latency: n times, one 1-character edit on note `d` of A, commit, then B
 * syncs space `space` from A; the time from the edit to sync_once
 * returning (B has verified and stored the change).
 */
static void latency(notes_replica *ra, notes_doc *d, const char *b, const char *space,
                    const char *addr, size_t n, const char *what)
{
    double *t = calloc(n, sizeof(*t)), *tc = calloc(n, sizeof(*tc));
    uint64_t bytes = 0;
    notes_sync_report rep;
    int rc;
    for (size_t i = 0; i < n; i++) {
        char ch = (char)('a' + i % 26);
        double t0 = now_ms();
        if ((rc = notes_doc_splice(d, notes_doc_length(d), 0, &ch, 1)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("edit", rc);
        tc[i] = now_ms() - t0;
        sync_once(b, space, addr, &rep);
        t[i] = now_ms() - t0;
        bytes += wire(&rep);
        if (rep.changes_received != 1) {
            fprintf(stderr, "notes-bench-sync: latency: %llu changes\n",
                    (unsigned long long)rep.changes_received);
            exit(1);
        }
    }
    size_t la, lb;
    const char *ta = notes_doc_text(d, &la);
    char *tb = text_of(b, notes_doc_id(d), &lb);
    int ok = tb && la == lb && memcmp(ta, tb, la) == 0;
    free(tb);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += t[i];
    /* Each sync opens the note on both sides, so the cost grows with its
     * history: the median of the first and of the last tenth. */
    size_t tenth = n / 10 ? n / 10 : 1;
    double *head = malloc(tenth * sizeof(*head)), *tail = malloc(tenth * sizeof(*tail));
    memcpy(head, t, tenth * sizeof(*head));
    memcpy(tail, t + n - tenth, tenth * sizeof(*tail));
    qsort(head, tenth, sizeof(*head), cmp_double);
    qsort(tail, tenth, sizeof(*tail), cmp_double);
    qsort(t, n, sizeof(*t), cmp_double);
    qsort(tc, n, sizeof(*tc), cmp_double);
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string("latency"));
    json_object_set_new(o, "note", json_string(what));
    json_object_set_new(o, "mechanism",
                        json_string("commit + notes_sync_once (one-shot)"));
    json_object_set_new(o, "edits", json_integer((json_int_t)n));
    json_object_set_new(o, "p50_ms", json_real(pct(t, n, 0.50)));
    json_object_set_new(o, "p99_ms", json_real(pct(t, n, 0.99)));
    json_object_set_new(o, "max_ms", json_real(t[n - 1]));
    json_object_set_new(o, "mean_ms", json_real(sum / (double)n));
    json_object_set_new(o, "commit_p50_ms", json_real(pct(tc, n, 0.50)));
    json_object_set_new(o, "first_tenth_p50_ms", json_real(pct(head, tenth, 0.50)));
    json_object_set_new(o, "last_tenth_p50_ms", json_real(pct(tail, tenth, 0.50)));
    json_object_set_new(o, "wire_bytes_per_edit",
                        json_integer((json_int_t)(bytes / n)));
    json_object_set_new(o, "changes_in_note",
                        json_integer((json_int_t)notes_doc_change_count(d)));
    json_object_set_new(o, "open_ms_a",
                        json_real(open_ms(notes_replica_home(ra), notes_doc_id(d))));
    json_object_set_new(o, "open_ms_b", json_real(open_ms(b, notes_doc_id(d))));
    json_object_set_new(o, "ok", json_boolean(ok));
    emit(o);
    free(t);
    free(tc);
    free(head);
    free(tail);
}

static void bench_trace(const char *root, const struct trace *tr,
                        const char *name, size_t nlat_large, size_t nlat)
{
    char *a = mkhome(root, "a", "Ana"), *b = mkhome(root, "b", "Bo");
    notes_replica *ra;
    notes_doc *d;
    notes_sync_space sp, small;
    notes_sync_report rep;
    struct server srv;
    uint8_t id[16];
    int rc;
    if ((rc = notes_sync_space_create(a, "bench", &sp)) ||
        (rc = notes_sync_space_save(b, &sp)) ||
        (rc = notes_sync_space_create(a, "small", &small)) ||
        (rc = notes_sync_space_save(b, &small)))
        die("space", rc);
    if ((rc = notes_replica_open(a, &ra)) || (rc = notes_replica_unlock(ra, NULL)) ||
        (rc = notes_doc_create(ra, &d)))
        die("doc", rc);
    /* Type the trace, a commit every BATCH edits. */
    double t0 = now_ms();
    size_t edits = 0, changes = 0;
    for (size_t i = 0; i < tr->ntxns; i++)
        for (size_t k = 0; k < tr->txns[i].npatches; k++) {
            const struct trace_patch *p = &tr->txns[i].patches[k];
            if ((rc = notes_doc_splice(d, p->pos, p->del, p->ins, p->ins_len)))
                die("splice", rc);
            if (++edits % BATCH == 0) {
                if ((rc = notes_doc_commit(d, NULL)))
                    die("commit", rc);
                changes++;
            }
        }
    if (notes_doc_dirty(d)) {
        if ((rc = notes_doc_commit(d, NULL)))
            die("commit", rc);
        changes++;
    }
    double type_ms = now_ms() - t0;
    if ((rc = notes_doc_compact(d, 0)))
        die("compact", rc);
    memcpy(id, notes_doc_id(d), 16);
    if ((rc = notes_sync_space_add_note(a, "bench", id)))
        die("space add", rc);
    char hex[33], rel[64];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(rel, sizeof(rel), "notes/%s.log", hex);
    char *log = test_path(a, rel);
    long stored = file_size(log);
    free(log);
    uint8_t *bundle;
    size_t nbundle;
    if ((rc = notes_doc_export(d, NULL, 0, &bundle, &nbundle)))
        die("export", rc);
    if (getenv("NOTES_BENCH_DUMP_BUNDLE"))
        test_spit(getenv("NOTES_BENCH_DUMP_BUNDLE"), bundle, nbundle);
    notes_free(bundle);

    server_start(&srv, a);
    /* First sync: B has nothing. */
    t0 = now_ms();
    sync_once(b, "bench", srv.addr, &rep);
    double first_ms = now_ms() - t0;
    size_t lb;
    char *tb = text_of(b, id, &lb);
    int ok = tb && lb == tr->end_len && memcmp(tb, tr->end_content, lb) == 0;
    free(tb);
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string("first_sync"));
    json_object_set_new(o, "trace", json_string(name));
    json_object_set_new(o, "edits", json_integer((json_int_t)edits));
    json_object_set_new(o, "changes", json_integer((json_int_t)changes));
    json_object_set_new(o, "type_ms", json_real(type_ms));
    json_object_set_new(o, "seconds", json_real(first_ms / 1e3));
    json_object_set_new(o, "wire_bytes", json_integer((json_int_t)wire(&rep)));
    json_object_set_new(o, "bytes_to_b", json_integer((json_int_t)rep.bytes_received));
    json_object_set_new(o, "stored_bytes", json_integer(stored));
    json_object_set_new(o, "bundle_bytes", json_integer((json_int_t)nbundle));
    json_object_set_new(o, "wire_over_stored",
                        json_real((double)wire(&rep) / (double)stored));
    json_object_set_new(o, "ok", json_boolean(ok));
    emit(o);

    /* Incremental: one small edit on the large note; then nothing new. */
    if ((rc = notes_doc_splice(d, notes_doc_length(d) / 2, 0, "x", 1)) ||
        (rc = notes_doc_commit(d, NULL)))
        die("edit", rc);
    t0 = now_ms();
    sync_once(b, "bench", srv.addr, &rep);
    double inc_ms = now_ms() - t0;
    uint64_t inc = wire(&rep);
    uint64_t got = rep.changes_received;
    sync_once(b, "bench", srv.addr, &rep);
    o = json_object();
    json_object_set_new(o, "bench", json_string("incremental"));
    json_object_set_new(o, "trace", json_string(name));
    json_object_set_new(o, "wire_bytes", json_integer((json_int_t)inc));
    json_object_set_new(o, "changes", json_integer((json_int_t)got));
    json_object_set_new(o, "ms", json_real(inc_ms));
    json_object_set_new(o, "idle_wire_bytes", json_integer((json_int_t)wire(&rep)));
    emit(o);

    /* Latency on the large note, then on a small note in its own space. */
    if (nlat_large)
        latency(ra, d, b, "bench", srv.addr, nlat_large, name);
    notes_doc_free(d);
    if ((rc = notes_doc_create(ra, &d)) ||
        (rc = notes_doc_splice(d, 0, 0, "# Standup\n\n", 11)) ||
        (rc = notes_doc_commit(d, NULL)) ||
        (rc = notes_sync_space_add_note(a, "small", notes_doc_id(d))))
        die("small note", rc);
    sync_once(b, "small", srv.addr, &rep);
    latency(ra, d, b, "small", srv.addr, nlat, "small");
    notes_doc_free(d);
    server_stop(&srv);
    notes_replica_free(ra);
    notes_sync_space_clear(&sp);
    notes_sync_space_clear(&small);
    free(a);
    free(b);
}

/* ---- live ---- */

static long log_size(const char *home, const uint8_t id[16])
{
    char hex[33], rel[64];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(rel, sizeof(rel), "notes/%s.log", hex);
    char *path = test_path(home, rel);
    long n = file_size(path);
    free(path);
    return n;
}

/*
 * Live: A and B each run `notes serve`'s loop (live) in a child process,
 * B dialing A (relayed: both meeting at a relay, a third child, with no
 * direct upgrade). n times: one 1-character edit committed on A, then the
 * time until B's log has grown (the change verified and stored on B).
 */
/* --space-notes K: K more notes in the live space (a round announces them
 * all; a push does not). */
static size_t space_notes;

static void latency_live(const char *root, size_t n, int relayed)
{
    char *a = mkhome(root, relayed ? "relayed-a" : "live-a", "Ana"),
         *b = mkhome(root, relayed ? "relayed-b" : "live-b", "Bo");
    struct server sr;
    notes_sync_space sp;
    notes_replica *ra;
    notes_doc *d;
    struct server sa, sb;
    int rc;
    if ((rc = notes_sync_space_create(a, "live", &sp)) ||
        (rc = notes_sync_space_save(b, &sp)))
        die("space", rc);
    if ((rc = notes_replica_open(a, &ra)) || (rc = notes_replica_unlock(ra, NULL)) ||
        (rc = notes_doc_create(ra, &d)) ||
        (rc = notes_doc_splice(d, 0, 0, "# Live\n", 7)) ||
        (rc = notes_doc_commit(d, NULL)) ||
        (rc = notes_sync_space_add_note(a, "live", notes_doc_id(d))))
        die("live note", rc);
    for (size_t k = 0; k < space_notes; k++) {
        notes_doc *o;
        char t[32];
        int tl = snprintf(t, sizeof(t), "# Other %zu\n", k);
        if ((rc = notes_doc_create(ra, &o)) ||
            (rc = notes_doc_splice(o, 0, 0, t, (size_t)tl)) ||
            (rc = notes_doc_commit(o, NULL)) ||
            (rc = notes_sync_space_add_note(a, "live", notes_doc_id(o))))
            die("space note", rc);
        notes_doc_free(o);
    }
    if (relayed) {
        server_start_live(&sr, NULL, 0, 0);
        server_start_live(&sa, a, 1, -sr.port);
        server_start_live(&sb, b, 1, -sr.port);
    } else {
        server_start_live(&sa, a, 1, 0);
        server_start_live(&sb, b, 1, sa.port);
    }
    double t0 = now_ms();
    while (log_size(b, notes_doc_id(d)) < 0) {
        if (now_ms() - t0 > 10000)
            die("live: the note did not reach B", NOTES_SYNC_ETIMEOUT);
        usleep(1000);
    }
    double *t = calloc(n, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        char ch = (char)('a' + i % 26);
        long before = log_size(b, notes_doc_id(d));
        t0 = now_ms();
        if ((rc = notes_doc_splice(d, notes_doc_length(d), 0, &ch, 1)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("edit", rc);
        while (log_size(b, notes_doc_id(d)) == before) {
            if (now_ms() - t0 > 10000)
                die("live: an edit did not reach B", NOTES_SYNC_ETIMEOUT);
            usleep(100);
        }
        t[i] = now_ms() - t0;
    }
    usleep(100000);
    server_stop(&sb);
    server_stop(&sa);
    if (relayed)
        server_stop(&sr);
    size_t la, lb;
    const char *ta = notes_doc_text(d, &la);
    char *tb = text_of(b, notes_doc_id(d), &lb);
    int ok = tb && la == lb && memcmp(ta, tb, la) == 0;
    free(tb);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += t[i];
    qsort(t, n, sizeof(*t), cmp_double);
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string("latency"));
    json_object_set_new(o, "note", json_string("small"));
    json_object_set_new(o, "mechanism",
                        json_string(relayed ? "live, relayed: notes serve loop "
                                              "on both sides, meeting at a "
                                              "notes relay on 127.0.0.1"
                                            : "live: notes serve loop on both "
                                              "sides, log watch, one open "
                                              "session"));
    json_object_set_new(o, "path", json_string(relayed ? "relay" : "direct"));
    json_object_set_new(o, "edits", json_integer((json_int_t)n));
    json_object_set_new(o, "space_notes", json_integer((json_int_t)space_notes + 1));
    json_object_set_new(o, "p50_ms", json_real(pct(t, n, 0.50)));
    json_object_set_new(o, "p99_ms", json_real(pct(t, n, 0.99)));
    json_object_set_new(o, "max_ms", json_real(t[n - 1]));
    json_object_set_new(o, "mean_ms", json_real(sum / (double)n));
    json_object_set_new(o, "ok", json_boolean(ok));
    emit(o);
    free(t);
    notes_doc_free(d);
    notes_replica_free(ra);
    notes_sync_space_clear(&sp);
    free(a);
    free(b);
}

/* ---- ten peers ---- */

/*
 * Ten replicas under `root` (tags PREFIX0..9) sharing space "ten", and in
 * it one note created by peer 0. OUT home[], id.
 */
static void ten_peers(const char *root, const char *prefix, char *home[NPEERS],
                      uint8_t id[16])
{
    notes_sync_space sp;
    int rc;
    for (int i = 0; i < NPEERS; i++) {
        char tag[16], nm[16];
        snprintf(tag, sizeof(tag), "%s%d", prefix, i);
        snprintf(nm, sizeof(nm), "peer%d", i);
        home[i] = mkhome(root, tag, nm);
    }
    if ((rc = notes_sync_space_create(home[0], "ten", &sp)))
        die("space", rc);
    for (int i = 1; i < NPEERS; i++)
        if ((rc = notes_sync_space_save(home[i], &sp)))
            die("space", rc);
    {
        notes_replica *r;
        notes_doc *d = NULL;
        if ((rc = notes_replica_open(home[0], &r)) ||
            (rc = notes_replica_unlock(r, NULL)) ||
            (rc = notes_doc_create(r, &d)) ||
            (rc = notes_doc_splice(d, 0, 0, "# Ten\n", 6)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("note", rc);
        memcpy(id, notes_doc_id(d), 16);
        notes_doc_free(d);
        notes_replica_free(r);
        if ((rc = notes_sync_space_add_note(home[0], "ten", id)))
            die("space add", rc);
    }
    notes_sync_space_clear(&sp);
}

static void bench_converge(const char *root, size_t per_peer)
{
    char *home[NPEERS];
    notes_sync_report rep;
    struct server srv;
    uint8_t id[16];
    int rc;
    ten_peers(root, "p", home, id);
    server_start(&srv, home[0]);
    for (int i = 1; i < NPEERS; i++)
        sync_once(home[i], "ten", srv.addr, &rep);
    /* Everyone types: per_peer edits each, interleaved, a commit per edit. */
    notes_replica *r[NPEERS];
    notes_doc *d[NPEERS];
    for (int i = 0; i < NPEERS; i++)
        if ((rc = notes_replica_open(home[i], &r[i])) ||
            (rc = notes_replica_unlock(r[i], NULL)) ||
            (rc = notes_doc_open(r[i], id, &d[i])))
            die("open", rc);
    uint32_t x = 2024;
    for (size_t k = 0; k < per_peer; k++)
        for (int i = 0; i < NPEERS; i++) {
            char w[32];
            int n = snprintf(w, sizeof(w), "p%d.%zu ", i, k);
            x = x * 1103515245u + 12345u;
            size_t len = notes_doc_length(d[i]);
            if ((rc = notes_doc_splice(d[i], (x >> 8) % (len + 1), 0, w,
                                       (size_t)n)) ||
                (rc = notes_doc_commit(d[i], NULL)))
                die("type", rc);
        }
    for (int i = 0; i < NPEERS; i++) {
        notes_doc_free(d[i]);
        notes_replica_free(r[i]);
    }
    double t0 = now_ms();
    uint64_t bytes = 0;
    for (int i = 1; i < NPEERS; i++) {
        sync_once(home[i], "ten", srv.addr, &rep);
        bytes += wire(&rep);
    }
    double r1 = now_ms() - t0;
    for (int i = 1; i < NPEERS - 1; i++) {
        sync_once(home[i], "ten", srv.addr, &rep);
        bytes += wire(&rep);
    }
    double ms = now_ms() - t0;
    size_t l0;
    char *t0text = text_of(home[0], id, &l0);
    int ok = t0text != NULL;
    for (int i = 1; i < NPEERS && ok; i++) {
        size_t li;
        char *ti = text_of(home[i], id, &li);
        ok = ti && li == l0 && memcmp(ti, t0text, l0) == 0;
        free(ti);
    }
    /* Every peer's words are there. */
    for (int i = 0; i < NPEERS && ok; i++) {
        char w[32];
        snprintf(w, sizeof(w), "p%d.%zu ", i, per_peer - 1);
        ok = strstr(t0text, w) != NULL;
    }
    free(t0text);
    server_stop(&srv);
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string("converge"));
    json_object_set_new(o, "peers", json_integer(NPEERS));
    json_object_set_new(o, "topology",
                        json_string("star: 9 syncs to peer 0, then 8 again, "
                                    "sequential"));
    json_object_set_new(o, "edits_per_peer", json_integer((json_int_t)per_peer));
    json_object_set_new(o, "round1_ms", json_real(r1));
    json_object_set_new(o, "seconds", json_real(ms / 1e3));
    json_object_set_new(o, "wire_bytes", json_integer((json_int_t)bytes));
    json_object_set_new(o, "ok", json_boolean(ok));
    emit(o);
    for (int i = 0; i < NPEERS; i++)
        free(home[i]);
}

/*
 * Ten peers live: each runs the serve loop (live) in a child process,
 * peers 1..9 dialing peer 0 (a star). Everyone types (a commit per edit,
 * interleaved) while changes flow; after the last edit, the time until
 * all ten texts are equal.
 */
static void bench_converge_live(const char *root, size_t per_peer)
{
    char *home[NPEERS];
    struct server srv[NPEERS];
    uint8_t id[16];
    int rc;
    ten_peers(root, "lp", home, id);
    server_start_live(&srv[0], home[0], 1, 0);
    for (int i = 1; i < NPEERS; i++)
        server_start_live(&srv[i], home[i], 1, srv[0].port);
    double t0 = now_ms();
    for (int i = 1; i < NPEERS; i++)
        while (log_size(home[i], id) < 0) {
            if (now_ms() - t0 > 10000)
                die("live: the note did not reach every peer",
                    NOTES_SYNC_ETIMEOUT);
            usleep(1000);
        }
    notes_replica *r[NPEERS];
    notes_doc *d[NPEERS];
    for (int i = 0; i < NPEERS; i++)
        if ((rc = notes_replica_open(home[i], &r[i])) ||
            (rc = notes_replica_unlock(r[i], NULL)) ||
            (rc = notes_doc_open(r[i], id, &d[i])))
            die("open", rc);
    uint32_t x = 2024;
    double ttype = now_ms();
    for (size_t k = 0; k < per_peer; k++)
        for (int i = 0; i < NPEERS; i++) {
            char w[32];
            int n = snprintf(w, sizeof(w), "p%d.%zu ", i, k);
            x = x * 1103515245u + 12345u;
            /* commit picks up what the serve loop merged meanwhile */
            if ((rc = notes_doc_refresh(d[i])))
                die("refresh", rc);
            size_t len = notes_doc_length(d[i]);
            if ((rc = notes_doc_splice(d[i], (x >> 8) % (len + 1), 0, w,
                                       (size_t)n)) ||
                (rc = notes_doc_commit(d[i], NULL)))
                die("type", rc);
        }
    double tlast = now_ms();
    for (int i = 0; i < NPEERS; i++) {
        notes_doc_free(d[i]);
        notes_replica_free(r[i]);
    }
    /* Until all ten texts are equal and hold every peer's last word. */
    int ok = 0;
    double tdone = 0;
    while (!ok && now_ms() - tlast < 20000) {
        size_t l0;
        char *t0text = text_of(home[0], id, &l0);
        ok = t0text != NULL;
        for (int i = 0; i < NPEERS && ok; i++) {
            char w[32];
            snprintf(w, sizeof(w), "p%d.%zu ", i, per_peer - 1);
            ok = strstr(t0text, w) != NULL;
        }
        for (int i = 1; i < NPEERS && ok; i++) {
            size_t li;
            char *ti = text_of(home[i], id, &li);
            ok = ti && li == l0 && memcmp(ti, t0text, l0) == 0;
            free(ti);
        }
        free(t0text);
        tdone = now_ms();
        if (!ok)
            usleep(1000);
    }
    for (int i = NPEERS; i-- > 0;)
        server_stop(&srv[i]);
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string("converge"));
    json_object_set_new(o, "peers", json_integer(NPEERS));
    json_object_set_new(o, "topology",
                        json_string("live star: 9 serve loops dialing peer 0"));
    json_object_set_new(o, "edits_per_peer", json_integer((json_int_t)per_peer));
    json_object_set_new(o, "typing_ms", json_real(tlast - ttype));
    json_object_set_new(o, "seconds", json_real((tdone - tlast) / 1e3));
    json_object_set_new(o, "ok", json_boolean(ok));
    emit(o);
    for (int i = 0; i < NPEERS; i++)
        free(home[i]);
}

/* ---- scale: a space of many small notes (issue 21) ---- */

/* The sample notes' texts (SAMPLES/NAME.md), concatenated sources for the
 * notes of the scale benchmark. */
static char *samples[16];
static size_t nsamples, sample_len[16];

static void load_samples(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls '%s'/*.md 2>/dev/null", dir);
    FILE *ls = popen(cmd, "r");
    char line[512];
    while (ls && nsamples < 16 && fgets(line, sizeof(line), ls)) {
        uint8_t *t;
        size_t n;
        line[strcspn(line, "\n")] = 0;
        if (notes__read_file(line, 1u << 20, &t, &n) == NOTES_OK && n > 2000) {
            samples[nsamples] = (char *)t;
            sample_len[nsamples++] = n;
        }
    }
    if (ls)
        pclose(ls);
    if (!nsamples) {
        fprintf(stderr, "notes-bench-sync: no sample notes in %s\n", dir);
        exit(1);
    }
}

/* Note i's text: a title of its own, then about 1.5 KB of a sample from
 * a line start that varies with i (the archive: 3,670 notes in
 * 6 MB of logs). */
static size_t scale_text(size_t i, char *out, size_t cap)
{
    const char *t = samples[i % nsamples];
    size_t len = sample_len[i % nsamples], span = 1500;
    size_t at = (i * 97) % (len - span);
    while (at > 0 && t[at - 1] != '\n')
        at--;
    int k = snprintf(out, cap, "# Meeting %zu of the archive\n\n", i);
    memcpy(out + k, t + at, span);
    return (size_t)k + span;
}

static double dir_bytes(const char *home)
{
    char cmd[600];
    double kb = 0;
    snprintf(cmd, sizeof(cmd), "du -sk '%s/notes' 2>/dev/null", home);
    FILE *f = popen(cmd, "r");
    if (f && fscanf(f, "%lf", &kb) != 1)
        kb = 0;
    if (f)
        pclose(f);
    return kb * 1024;
}

static void bench_scale(const char *root, size_t n)
{
    char ta[32], tb[32];
    snprintf(ta, sizeof(ta), "scale-a-%zu", n);
    snprintf(tb, sizeof(tb), "scale-b-%zu", n);
    char *a = mkhome(root, ta, "Ana"), *b = mkhome(root, tb, "Bo");
    notes_sync_space sp;
    notes_replica *ra;
    uint8_t(*ids)[16] = malloc(n * 16 + 16), (*added)[16] = NULL;
    size_t nadded = 0;
    char text[2048];
    struct server srv;
    notes_sync_report rep;
    int rc;
    if ((rc = notes_sync_space_create(a, "archive", &sp)) ||
        (rc = notes_sync_space_save(b, &sp)))
        die("space", rc);
    if ((rc = notes_replica_open(a, &ra)) || (rc = notes_replica_unlock(ra, NULL)))
        die("replica", rc);
    double t0 = now_ms();
    for (size_t i = 0; i < n; i++) {
        notes_doc *d;
        size_t tl = scale_text(i, text, sizeof(text));
        if ((rc = notes_doc_create(ra, &d)) ||
            (rc = notes_doc_splice(d, 0, 0, text, tl)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("scale note", rc);
        memcpy(ids[i], notes_doc_id(d), 16);
        notes_doc_free(d);
    }
    qsort(ids, n, 16, cmp_id16);
    if ((rc = notes_sync__space_add_many(a, "archive", (const uint8_t(*)[16])ids,
                                         n, &added, &nadded)))
        die("space list", rc);
    free(added);
    json_t *o = json_object();
    json_object_set_new(o, "bench", json_string("scale_setup"));
    json_object_set_new(o, "notes", json_integer((json_int_t)n));
    json_object_set_new(o, "seconds", json_real((now_ms() - t0) / 1e3));
    json_object_set_new(o, "log_bytes", json_real(dir_bytes(a)));
    emit(o);

    server_start(&srv, a);
    /* First sync to an empty replica. */
    t0 = now_ms();
    sync_once(b, "archive", srv.addr, &rep);
    double first = now_ms() - t0;
    o = json_object();
    json_object_set_new(o, "bench", json_string("scale_first_sync"));
    json_object_set_new(o, "notes", json_integer((json_int_t)n));
    json_object_set_new(o, "seconds", json_real(first / 1e3));
    json_object_set_new(o, "wire_bytes", json_integer((json_int_t)wire(&rep)));
    json_object_set_new(o, "notes_received",
                        json_integer((json_int_t)rep.notes_received));
    emit(o);
    if (rep.notes_received != n) {
        fprintf(stderr, "notes-bench-sync: %llu of %zu notes arrived\n",
                (unsigned long long)rep.notes_received, n);
        exit(1);
    }
    /* Nothing changed: three times (the first after a first sync may
     * open notes whose versions are not cached yet). */
    for (int k = 0; k < 3; k++) {
        t0 = now_ms();
        sync_once(b, "archive", srv.addr, &rep);
        double ms = now_ms() - t0;
        if (rep.changes_sent + rep.changes_received)
            die("no-change sync moved changes", NOTES_EINVAL);
        o = json_object();
        json_object_set_new(o, "bench", json_string("scale_nochange_sync"));
        json_object_set_new(o, "notes", json_integer((json_int_t)n));
        json_object_set_new(o, "run", json_integer(k + 1));
        json_object_set_new(o, "ms", json_real(ms));
        json_object_set_new(o, "wire_bytes", json_integer((json_int_t)wire(&rep)));
        json_object_set_new(o, "bytes_sent",
                            json_integer((json_int_t)rep.bytes_sent));
        emit(o);
    }
    /* One note edited on A, k = 1. */
    {
        notes_doc *d;
        if ((rc = notes_doc_open(ra, ids[n / 2], &d)) ||
            (rc = notes_doc_splice(d, 0, 0, "x", 1)) ||
            (rc = notes_doc_commit(d, NULL)))
            die("edit", rc);
        notes_doc_free(d);
        t0 = now_ms();
        sync_once(b, "archive", srv.addr, &rep);
        o = json_object();
        json_object_set_new(o, "bench", json_string("scale_one_edit_sync"));
        json_object_set_new(o, "notes", json_integer((json_int_t)n));
        json_object_set_new(o, "ms", json_real(now_ms() - t0));
        json_object_set_new(o, "wire_bytes", json_integer((json_int_t)wire(&rep)));
        json_object_set_new(o, "changes_received",
                            json_integer((json_int_t)rep.changes_received));
        emit(o);
    }
    server_stop(&srv);
    notes_replica_free(ra);
    free(ids);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *scale = NULL, *sample_dir = NULL;
    int quick = 0, live_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--live-latency") == 0)
            live_only = 1;
        else if (strcmp(argv[i], "--space-notes") == 0 && i + 1 < argc)
            space_notes = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
            scale = argv[++i];
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
            sample_dir = argv[++i];
        else
            path = argv[i];
    }
    if (scale) {
        /* notes-bench-sync --scale 1000,3670,10000 --samples DIR */
        char *r0 = test_tmpdir("bench-sync");
        char *list = strdup(scale), *save = NULL;
        if (notes_init() != NOTES_OK || !r0 || !list)
            return 1;
        load_samples(sample_dir ? sample_dir : "../shared/samples");
        for (char *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save))
            bench_scale(r0, (size_t)strtoul(t, NULL, 10));
        free(list);
        test_rmtree(r0);
        return 0;
    }
    if (live_only) {
        /* Only the live latency, direct and relayed, alternated twice. */
        char *r0 = test_tmpdir("bench-sync");
        if (notes_init() != NOTES_OK || !r0)
            return 1;
        for (int k = 0; k < 4; k++) {
            char sub[32];
            snprintf(sub, sizeof(sub), "round%d", k);
            char *r = test_path(r0, sub);
            if (mkdir(r, 0700) != 0)
                return 1;
            latency_live(r, quick ? 100 : 1000, k % 2);
            free(r);
        }
        test_rmtree(r0);
        return 0;
    }
    if (!path) {
        fprintf(stderr, "usage: notes-bench-sync TRACE.json.gz [--quick] | "
                        "--live-latency [--quick] [--space-notes K]\n");
        return 2;
    }
    if (notes_init() != NOTES_OK)
        return 1;
    struct trace tr;
    if (trace_load(path, &tr) != 0)
        return 1;
    const char *base = strrchr(path, '/');
    char name[256];
    snprintf(name, sizeof(name), "%s", base ? base + 1 : path);
    char *dot = strstr(name, ".json");
    if (dot)
        *dot = 0;
    char *root = test_tmpdir("bench-sync");
    if (!root)
        return 1;
    bench_trace(root, &tr, name, quick ? 20 : 200, quick ? 100 : 1000);
    trace_free(&tr);
    latency_live(root, quick ? 100 : 1000, 0);
    latency_live(root, quick ? 100 : 1000, 1);
    bench_converge(root, quick ? 5 : 20);
    bench_converge_live(root, quick ? 5 : 20);
    test_rmtree(root);
    return 0;
}
