/*
 * test_cli_search.c: `notes search` on the built binary (NOTES_BIN): the
 * sample notes imported, each kind of query (words, phrases, prefixes,
 * owner:, tag:, participant:, before:/after:), ranking, --json, an index
 * that goes stale after an edit (only that note re-indexed), an index file
 * truncated or garbled (rebuilt, same answers), and hostile queries (a
 * clear answer, never an SQL error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clirun.h"
#include "tmpdir.h"

static char *work;

#define RUN(home, ...) clirun_in(work, home, __VA_ARGS__, (char *)NULL)

/* Succeeds and says nothing matched: no output, "no note matches". */
static void none(struct clirun_out r)
{
    clirun_expect(r, 0, NULL, "no note matches");
    assert_string_equal(r.out, "");
    clirun_free(&r);
}

/* Succeeds and stdout lacks `text`. */
static void lacks(struct clirun_out r, const char *text)
{
    clirun_expect(r, 0, NULL, NULL);
    if (strstr(r.out, text))
        print_message("unexpected '%s' in:\n%s\n", text, r.out);
    assert_null(strstr(r.out, text));
    clirun_free(&r);
}

static char *sample(const char *name)
{
    const char *shared = getenv("NOTES_SHARED_DIR");
    char rel[256];
    snprintf(rel, sizeof(rel), "samples/%s", name);
    return test_path(shared ? shared : "../shared", rel);
}

/* A replica `home` with both samples imported; their ids (8 hex). */
static char community[33], kraft[33];

static void setup_home(const char *home)
{
    clirun_ok(RUN(home, "init", "--name", "Ana"), NULL);
    char *p = sample("community-2023-05-15.md");
    char *id = clirun_first_line(RUN(home, "import", p));
    snprintf(community, sizeof(community), "%s", id);
    free(id);
    free(p);
    p = sample("kraft-2022-04-06.md");
    id = clirun_first_line(RUN(home, "import", p));
    snprintf(kraft, sizeof(kraft), "%s", id);
    free(id);
    free(p);
    assert_int_equal(strlen(community), 32);
    assert_int_equal(strlen(kraft), 32);
}

static char *index_file(const char *home)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "%s/index.sqlite", home);
    return test_path(work, rel);
}

/* The ids of a --json result, in order, as "id8 id8 ...". */
static char *result_ids(json_t *j)
{
    static char buf[512];
    buf[0] = 0;
    json_t *res = json_object_get(j, "results");
    for (size_t i = 0; i < json_array_size(res); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(res, i), "id"));
        assert_non_null(id);
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof(buf) - l, "%s%.8s", l ? " " : "", id);
    }
    return buf;
}

static json_t *search_json(const char *home, const char *query)
{
    return clirun_json(RUN(home, "search", query, "--json"));
}

/* Each kind of query on the samples. */
static void test_search_kinds(void **state)
{
    (void)state;
    setup_home("k");
    char c8[9], k8[9];
    snprintf(c8, sizeof(c8), "%.8s", community);
    snprintf(k8, sizeof(k8), "%.8s", kraft);

    /* Words: all must occur; the line as `notes show` numbers it (front
     * matter included). */
    clirun_ok(RUN("k", "search", "freeze", "window"),
       "35: - RD: We'll keep the freeze window for future releases");
    struct clirun_out show = RUN("k", "show", community);
    clirun_expect(show, 0, NULL, NULL);
    const char *l = show.out;
    for (int i = 1; i < 35; i++)
        l = strchr(l, '\n') + 1;
    assert_int_equal(strncmp(l, "- RD: We'll keep the freeze window", 34), 0);
    clirun_free(&show);
    none(RUN("k", "search", "freeze", "zanzibar"));
    /* Phrases keep their order; a prefix with '*'. */
    clirun_ok(RUN("k", "search", "\"freeze window\""), c8);
    none(RUN("k", "search", "\"window freeze\""));
    clirun_ok(RUN("k", "search", "freez*"), "freeze window");
    /* Diacritics and case fold: "ȘtefanJ" is a participant of one note
     * ("Ștefan" of the other is another word), "RăzvanD" of both. */
    json_t *j = search_json("k", "stefanj");
    assert_string_equal(result_ids(j), c8);
    json_decref(j);
    j = search_json("k", "razvand");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
    json_decref(j);

    /* owner: as written (RD) and as resolved against the participants
     * (RăzvanD), any case; the owner's items are the lines. */
    struct clirun_out o = RUN("k", "search", "owner:RD");
    clirun_expect(o, 0, "230: RD: Look for places for the Community Gathering", NULL);
    assert_non_null(strstr(o.out, "234: RD: Remind AJ: Logo for USoC'23"));
    assert_null(strstr(o.out, k8));
    clirun_free(&o);
    clirun_ok(RUN("k", "search", "owner:rd"), "230: RD: Look for places");
    clirun_ok(RUN("k", "search", "owner:RăzvanD"), "234: RD: Remind AJ");
    clirun_ok(RUN("k", "search", "owner:\"RăzvanD\"", "logo"), "Logo for USoC");
    none(RUN("k", "search", "owner:Nobody"));
    none(RUN("k", "search", "owner:RD", "kraftkit", "JSON"));

    /* tag: and participant: come from the front matter. */
    j = search_json("k", "tag:community");
    assert_string_equal(result_ids(j), c8);
    json_decref(j);
    none(RUN("k", "search", "tag:kraft"));
    j = search_json("k", "participant:alex");
    assert_string_equal(result_ids(j), k8);
    json_decref(j);
    j = search_json("k", "participant:Marco kraftkit");
    assert_string_equal(result_ids(j), c8);
    json_decref(j);

    /* Dates: after: on or after, before: strictly before. */
    j = search_json("k", "after:2023-05-15");
    assert_string_equal(result_ids(j), c8);
    json_decref(j);
    j = search_json("k", "before:2023-05-15");
    assert_string_equal(result_ids(j), k8);
    json_decref(j);
    j = search_json("k", "after:2022-01-01 before:2024-01-01");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
    json_decref(j);
    none(RUN("k", "search", "kraftkit", "after:2024-01-01"));

    /* --json: the line, its text and where the match is (code points). */
    j = search_json("k", "\"freeze window\"");
    assert_string_equal(json_string_value(json_object_get(j, "v")), "notes.search/1");
    json_t *hit = json_array_get(json_object_get(j, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(hit, "id")), community);
    assert_string_equal(json_string_value(json_object_get(hit, "datetime")),
                        "2023-05-15T13:00:00+02:00");
    json_t *line = json_array_get(json_object_get(hit, "lines"), 0);
    assert_int_equal(json_integer_value(json_object_get(line, "line")), 35);
    const char *text = json_string_value(json_object_get(line, "text"));
    json_t *m = json_array_get(json_object_get(line, "marks"), 0);
    size_t at = (size_t)(strstr(text, "freeze window") - text); /* ASCII before it */
    assert_int_equal(json_integer_value(json_array_get(m, 0)), at);
    assert_int_equal(json_integer_value(json_array_get(m, 1)), at + 13);
    json_decref(j);
    /* Code points, not bytes: "Ștefan" (Ș is two bytes) before the match. */
    clirun_ok(RUN("k", "append", kraft, "Ștefan said zygote twice"), NULL);
    j = search_json("k", "zygote");
    line = json_array_get(json_object_get(json_array_get(json_object_get(j, "results"), 0),
                                          "lines"), 0);
    m = json_array_get(json_object_get(line, "marks"), 0);
    assert_int_equal(json_integer_value(json_array_get(m, 0)), 12);
    assert_int_equal(json_integer_value(json_array_get(m, 1)), 18);
    json_decref(j);

    /* Ranking (BM25, the title weighing most): the note titled with the
     * word first, whatever the order of creation. */
    char *a = clirun_first_line(RUN("k", "new", "Weekly sync"));
    clirun_ok(RUN("k", "append", a, "Hiring, travel, the offsite; the budget once."), NULL);
    char *b = clirun_first_line(RUN("k", "new", "Budget plans"));
    j = search_json("k", "budget");
    char want[32];
    snprintf(want, sizeof(want), "%.8s %.8s", b, a);
    assert_string_equal(result_ids(j), want);
    json_decref(j);
    /* --limit: fewer shown, the total still said. */
    struct clirun_out lim = RUN("k", "search", "budget", "--limit", "1");
    clirun_expect(lim, 0, "(1 more notes match: --limit 2 shows them)", NULL);
    clirun_free(&lim);
    free(a);
    free(b);
}

/* Stale entries: an edit is found by the next search, and only the note
 * that changed is indexed again. */
static void test_search_stale(void **state)
{
    (void)state;
    setup_home("s");
    json_t *j = search_json("s", "kraftkit");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "index"),
                                                        "reindexed")), 2);
    json_decref(j);
    none(RUN("s", "search", "zanzibar"));
    clirun_ok(RUN("s", "append", community, "Zanzibar logistics are settled"), NULL);
    j = search_json("s", "zanzibar");
    json_t *idx = json_object_get(j, "index");
    assert_int_equal(json_integer_value(json_object_get(idx, "reindexed")), 1);
    assert_false(json_is_true(json_object_get(idx, "rebuilt")));
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_decref(j);
    j = search_json("s", "zanzibar");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "index"),
                                                        "reindexed")), 0);
    json_decref(j);
    /* A front-matter edit: the new title is found, the old one no more. */
    clirun_ok(RUN("s", "set", community, "title", "Quarterly review"), NULL);
    clirun_ok(RUN("s", "search", "quarterly"), "Quarterly review");
    none(RUN("s", "search", "\"Community Gathering, May\""));
    clirun_ok(RUN("s", "set", community, "tags+", "hackathon"), NULL);
    clirun_ok(RUN("s", "search", "tag:hackathon"), "Quarterly review");
    /* A new note is found, without a word about the index. */
    clirun_ok(RUN("s", "new", "Yodel practice"), NULL);
    struct clirun_out r = RUN("s", "search", "yodel");
    clirun_expect(r, 0, "Yodel practice", NULL);
    assert_string_equal(r.err, "");
    clirun_free(&r);
    /* Four searches at once after an edit (a daemon and shells): each
     * answers, none finds the index broken (each decides inside its
     * write transaction, so a note is never inserted twice); and four
     * at once with no index file (one makes the schema, under the lock). */
    for (int round = 0; round < 3; round++) {
        char text[64];
        snprintf(text, sizeof(text), "round %d of the marmot count", round);
        clirun_ok(RUN("s", "append", kraft, text), NULL);
        if (round == 2) { /* and four first searches at once */
            char *file = index_file("s");
            assert_int_equal(unlink(file), 0);
            free(file);
        }
        pid_t kids[4];
        for (int i = 0; i < 4; i++) {
            kids[i] = fork();
            assert_true(kids[i] >= 0);
            if (kids[i] == 0) {
                /* clirun keeps stdout and stderr in files of its work
                 * folder: one folder per child, the replica "s" beside. */
                char name[16];
                snprintf(name, sizeof(name), "kid%d", i);
                char *kw = test_path(work, name);
                mkdir(kw, 0700);
                struct clirun_out c = clirun(kw, "../s", NULL, NULL, "search", "marmot",
                                             "--json", (char *)NULL);
                int good = c.status == 0 && strstr(c.out, "marmot count") &&
                           c.err[0] == 0 &&
                           (round == 2 || strstr(c.out, "\"rebuilt\": false"));
                if (!good)
                    fprintf(stderr, "round %d: status %d\nstdout:\n%s\nstderr:\n%s\n",
                            round, c.status, c.out, c.err);
                _exit(good ? 0 : 1);
            }
        }
        for (int i = 0; i < 4; i++) {
            int wst;
            assert_int_equal(waitpid(kids[i], &wst, 0), kids[i]);
            assert_true(WIFEXITED(wst));
            assert_int_equal(WEXITSTATUS(wst), 0);
        }
    }
    /* A notes folder unchanged for a while is remembered, and the next
     * searches stat the known logs without reading it: an append (which
     * does not change the folder) is still found, and a new note (which
     * does) too. */
    char *dir = test_path(work, "s/notes");
    struct timespec old_times[2] = {{.tv_sec = time(NULL) - 3600},
                                    {.tv_sec = time(NULL) - 3600}};
    assert_int_equal(utimensat(AT_FDCWD, dir, old_times, 0), 0);
    clirun_ok(RUN("s", "search", "kraftkit"), NULL); /* reads the folder, remembers it */
    clirun_ok(RUN("s", "search", "kraftkit"), NULL); /* the known logs only */
    clirun_ok(RUN("s", "append", kraft, "an okapi at the back"), NULL);
    clirun_ok(RUN("s", "search", "okapi"), "an okapi at the back");
    char *fresh = clirun_first_line(RUN("s", "new", "Okapi census"));
    j = search_json("s", "okapi");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
    json_decref(j);
    free(fresh);
    free(dir);
    /* The index is the replica's cache: verify says nothing against it. */
    clirun_ok(RUN("s", "verify"), "all ok");
}

/* A missing, truncated or garbled index: rebuilt from the logs silently,
 * the same answers. */
static void test_search_corrupt(void **state)
{
    (void)state;
    setup_home("c");
    clirun_ok(RUN("c", "search", "freeze"), "35: - RD: We'll keep the freeze window");
    char *idx = index_file("c");
    size_t n;
    unsigned char *orig = test_slurp(idx, &n);
    assert_non_null(orig);
    assert_true(n > 8192);

    /* Truncated to half, to a few bytes, to nothing. */
    const size_t cuts[] = {n / 2, 100, 0};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        assert_int_equal(truncate(idx, (off_t)cuts[i]), 0);
        struct clirun_out r = RUN("c", "search", "freeze", "window");
        clirun_expect(r, 0, "35: - RD: We'll keep the freeze window", NULL);
        assert_string_equal(r.err, "");
        clirun_free(&r);
    }
    /* Garbled: the header, then each 4 KiB page in turn from the second
     * on (each time the index is whole again first). */
    unsigned char *bad = malloc(n);
    assert_non_null(bad);
    for (size_t off = 0; off < n; off += 4096) {
        clirun_ok(RUN("c", "search", "kraftkit"), NULL); /* whole again */
        free(orig);
        orig = test_slurp(idx, &n);
        if (off >= n)
            break;
        memcpy(bad, orig, n);
        for (size_t k = off; k < off + 4096 && k < n; k++)
            bad[k] = (unsigned char)(k * 131 + 7);
        assert_int_equal(test_spit(idx, bad, n), 0);
        struct clirun_out r = RUN("c", "search", "owner:RD", "logo");
        clirun_expect(r, 0, "234: RD: Remind AJ: Logo for USoC'23", NULL);
        assert_string_equal(r.err, "");
        clirun_free(&r);
    }
    /* Not SQLite at all, and gone. */
    assert_int_equal(test_spit(idx, "hello\n", 6), 0);
    json_t *j = search_json("c", "participant:alex");
    assert_true(json_is_true(json_object_get(json_object_get(j, "index"), "rebuilt")));
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_decref(j);
    assert_int_equal(unlink(idx), 0);
    clirun_ok(RUN("c", "search", "freeze"), "freeze window");

    /* A damaged note (its log cut below what was acknowledged): searched
     * in its last good state, said on stderr, exit 2, as `notes show`. */
    clirun_ok(RUN("c", "append", kraft, "walrus sighting"), NULL);
    clirun_ok(RUN("c", "search", "walrus"), "walrus sighting");
    char rel[128];
    snprintf(rel, sizeof(rel), "c/notes/%s.log", kraft);
    char *log = test_path(work, rel);
    size_t ln;
    unsigned char *lb = test_slurp(log, &ln);
    assert_non_null(lb);
    assert_int_equal(truncate(log, (off_t)(ln - 5)), 0);
    struct clirun_out d = RUN("c", "search", "kraftkit");
    clirun_expect(d, 2, "16: * kraftkit Updates", "is damaged: its last good state was searched");
    clirun_free(&d);
    d = RUN("c", "search", "freeze"); /* another note matches: still said */
    clirun_expect(d, 2, "freeze window", "is damaged");
    clirun_free(&d);
    free(lb);
    free(log);
    free(bad);
    free(orig);
    free(idx);
}

/* Hostile queries: a clear answer, exit 0 or 1, never SQL's words. */
static void test_search_hostile(void **state)
{
    (void)state;
    setup_home("h");
    static const struct {
        const char *q;
        int status;
        const char *err; /* in stderr, or NULL */
    } cases[] = {
        {"\"", 1, "nothing to search for"},
        {"\"\"", 1, "nothing to search for"},
        {"AND(", 0, NULL}, /* the word "and" */
        {"NEAR(freeze window)", 0, NULL},
        {"freeze OR zanzibar", 0, "no note matches"}, /* OR is a word */
        {"*", 1, "nothing to search for"},
        {"^freeze", 0, NULL},
        {"title:freeze", 0, "no note matches"},
        {"body:", 0, "no note matches"},
        {"-freeze", 0, NULL},
        {"'); DROP TABLE note; --", 0, NULL},
        {"(((", 1, "nothing to search for"},
        {"\"freeze", 0, NULL}, /* an unclosed phrase runs to the end */
        {"owner:", 1, "owner: needs a value"},
        {"before:yesterday", 1, "before: wants a date YYYY-MM-DD"},
        {"after:2023-02-30x", 1, "after: wants a date YYYY-MM-DD"},
        {"  ", 1, "the query is empty"},
        {"\x1b[31mred", 0, "no note matches"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct clirun_out r = RUN("h", "search", cases[i].q);
        if (r.status != cases[i].status)
            print_message("query %zu <%s>\n", i, cases[i].q);
        clirun_expect(r, cases[i].status, NULL, cases[i].err);
        assert_null(strstr(r.err, "SQL"));
        assert_null(strstr(r.err, "sqlite"));
        assert_null(strstr(r.err, "fts5"));
        assert_null(strstr(r.err, "syntax"));
        assert_null(strchr(r.err, '\x1b')); /* echoed escaped, if at all */
        clirun_free(&r);
    }
    /* The index survived all that. */
    clirun_ok(RUN("h", "search", "freeze"), "freeze window");
    /* A long query: 2,000 words. */
    size_t big = 2000 * 6;
    char *q = malloc(big + 1);
    assert_non_null(q);
    for (size_t i = 0; i < 2000; i++)
        memcpy(q + i * 6, "wordy ", 6);
    q[big] = 0;
    none(RUN("h", "search", q));
    free(q);
    /* What a note holds is shown escaped on the terminal. */
    clirun_ok(RUN("h", "append", kraft, "a \x1b[2J zebra line"), NULL);
    struct clirun_out r = RUN("h", "search", "zebra");
    clirun_expect(r, 0, "\\x1b[2J", NULL);
    assert_null(strchr(r.out, '\x1b')); /* no colour: not a terminal */
    clirun_free(&r);
    /* Usage. */
    struct clirun_out u = RUN("h", "search");
    clirun_expect(u, 1, NULL, "usage");
    clirun_free(&u);
    u = RUN("h", "search", "x", "--limit", "0");
    clirun_expect(u, 1, NULL, "--limit takes a number");
    clirun_free(&u);
    lacks(RUN("h", "search", "zebra", "--limit", "1"), "more notes match");
}

/* One HTTP/1.0 GET to 127.0.0.1:port; the whole answer (malloc'd). */
static char *http_get(int port, const char *path, const char *cookie)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s%s%s\r\n", path,
                     port, cookie ? "Cookie: " : "", cookie ? cookie : "",
                     cookie ? "\r\n" : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t k;
    while ((k = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)k;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            assert_non_null(nb);
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = 0;
    close(fd);
    return buf;
}

/* The page's search: GET /api/search on the daemon's page server. */
static void test_search_page(void **state)
{
    (void)state;
    setup_home("p");
    clirun_ok(RUN("p", "space", "create", "team"), NULL); /* serve wants a space */
    char *home = test_path(work, "p"), *log = test_path(work, "serve.out");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fo, 2);
        setenv("NOTES_HOME", home, 1);
        execl(getenv("NOTES_BIN"), "notes", "serve", "--listen", "127.0.0.1:0",
              "--no-discovery", "--no-relay", "--ui", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    /* The page's address, once it is served (at most 10 s). */
    int port = 0;
    char token[80] = "";
    for (int i = 0; i < 200 && !port; i++) {
        struct clirun_out o = RUN("p", "open", "--no-browser");
        const char *u = o.status == 0 ? strstr(o.out, "http://127.0.0.1:") : NULL;
        const char *t = u ? strstr(u, "token=") : NULL;
        if (u && t && sscanf(t + 6, "%79[0-9a-f]", token) == 1)
            port = atoi(u + 17);
        clirun_free(&o);
        if (!port)
            usleep(50 * 1000);
    }
    assert_true(port > 0);
    char cookie[128];
    snprintf(cookie, sizeof(cookie), "notes_%d=%s", port, token);

    char *r = http_get(port, "/api/search?q=%22freeze%20window%22%20owner%3ARD", cookie);
    if (!strstr(r, "200 OK"))
        print_message("%s\n", r);
    assert_non_null(strstr(r, "200 OK"));
    assert_non_null(strstr(r, "\"v\":\"notes.search/1\""));
    assert_non_null(strstr(r, "\"line\":35"));
    assert_non_null(strstr(r, "\"marks\":[[21,34]]"));
    free(r);
    r = http_get(port, "/api/search?q=%22", cookie);
    assert_non_null(strstr(r, " 400 "));
    assert_non_null(strstr(r, "nothing to search for"));
    free(r);
    r = http_get(port, "/api/search?q=AND(", cookie);
    assert_non_null(strstr(r, "200 OK"));
    free(r);
    /* An edit made by another process is found by the page's next search. */
    clirun_ok(RUN("p", "append", kraft, "Quokka sighting"), NULL);
    r = http_get(port, "/api/search?q=quokka", cookie);
    assert_non_null(strstr(r, "Quokka sighting"));
    free(r);
    /* Without the token's cookie: refused, nothing searched. */
    r = http_get(port, "/api/search?q=freeze", NULL);
    assert_non_null(strstr(r, " 403 "));
    assert_null(strstr(r, "freeze window"));
    free(r);

    int st;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) != pid; i++)
        usleep(50 * 1000);
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    free(home);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_kinds),
        cmocka_unit_test(test_search_stale),
        cmocka_unit_test(test_search_corrupt),
        cmocka_unit_test(test_search_hostile),
        cmocka_unit_test(test_search_page),
    };
    if (!getenv("NOTES_BIN")) {
        fprintf(stderr, "NOTES_BIN is not set\n");
        return 1;
    }
    work = test_tmpdir("search");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    test_rmtree(work);
    return rc;
}
