/*
 * cmd_search.c: `notes search QUERY...`, every note at once through the
 * search index of formats/ (notes_fmt_search; docs/formats.md, "Search").
 * The index is a cache of the logs in $NOTES_HOME/index.sqlite, brought up
 * to date by each search: this file only parses the arguments and prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "notes_formats.h"

/* A line with its matches in bold (on a terminal), the rest escaped. */
static void put_marked(struct cli_ctx *ctx, const char *s,
                       const size_t (*marks)[2], size_t nmarks)
{
    size_t at = 0, len = strlen(s);
    for (size_t i = 0; i < nmarks; i++) {
        size_t a = marks[i][0], b = marks[i][1];
        if (a < at || b < a || b > len)
            continue;
        fputs(cli_escn(s + at, a - at), stdout);
        fputs(ctx->color ? "\033[1;31m" : "", stdout);
        fputs(cli_escn(s + a, b - a), stdout);
        fputs(ctx->color ? "\033[0m" : "", stdout);
        at = b;
    }
    fputs(cli_escn(s + at, len - at), stdout);
}

static void print_hit(struct cli_ctx *ctx, const notes_fmt_search_hit *h)
{
    char hex[33];
    cli_note_id(hex, h->id);
    printf("%s%.8s%s  %-10.10s  ", ctx->color ? "\033[33m" : "", hex,
           ctx->color ? "\033[0m" : "", h->datetime ? cli_esc(h->datetime) : "-");
    if (h->title)
        put_marked(ctx, h->title, (const size_t(*)[2])h->title_marks,
                   h->ntitle_marks);
    else
        fputs("(untitled)", stdout);
    putchar('\n');
    for (size_t j = 0; j < h->nlines; j++) {
        const notes_fmt_search_line *l = &h->lines[j];
        printf("  %5zu: ", l->line);
        put_marked(ctx, l->text, (const size_t(*)[2])l->marks, l->nmarks);
        putchar('\n');
    }
    if (h->more_lines)
        printf("         (%zu more matching line%s)\n", h->more_lines,
               h->more_lines == 1 ? "" : "s");
}

int cmd_search(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *limit_arg = NULL;
    const char *words[64] = {NULL};
    int rc;
    const struct cli_opt opts[] = {CLI_VALUE("--limit", &limit_arg), CLI_END};
    /* Words may begin with '-' ("-5"): only --limit is an option. */
    if ((rc = cli_parse_args(argc, argv, "search", opts, words, 63, 1)))
        return rc;
    unsigned long limit = 20;
    if (limit_arg) {
        char *e;
        limit = strtoul(limit_arg, &e, 10);
        if (*limit_arg < '0' || *limit_arg > '9' || *e || limit == 0 ||
            limit > 10000) {
            fprintf(stderr, "notes: --limit takes a number from 1 to 10000\n");
            return EXIT_USER;
        }
    }
    /* The words are one query: "a b" and a b search the same (the shell
     * takes the quotes: a phrase is '"a b"'). */
    size_t qn = 1;
    for (size_t i = 0; words[i]; i++)
        qn += strlen(words[i]) + 1;
    char *query = calloc(1, qn);
    if (!query)
        return EXIT_SYSTEM;
    size_t at = 0;
    for (size_t i = 0; words[i]; i++) {
        size_t wl = strlen(words[i]);
        if (i)
            query[at++] = ' ';
        memcpy(query + at, words[i], wl); /* qn counted each word + 1 */
        at += wl;
    }
    query[at] = 0;
    if (!words[0]) {
        free(query);
        return cli_usage("search");
    }

    notes_fmt_search_result res;
    rc = notes_fmt_search(ctx->r, query, limit, &res);
    if (rc == NOTES_EINVAL) {
        fprintf(stderr, "notes: search: %s\n", cli_esc(notes_fmt_last_detail()));
        notes_fmt_search_clear(&res);
        free(query);
        return EXIT_USER;
    }
    if (rc) {
        int e = cli_fail(rc, "cannot search");
        notes_fmt_search_clear(&res);
        free(query);
        return e;
    }
    int ret = 0;
    for (size_t i = 0; i < res.stats.nskipped; i++) {
        char hex[33];
        cli_note_id(hex, res.stats.skipped[i]);
        int e = cli_fail(res.stats.skipped_rc[i],
                         "note %.8s cannot be read: not searched", hex);
        if (e > ret)
            ret = e;
    }
    /* As every command that reads a damaged note: said, and exit 2 in
     * the end, whether or not the note matched. */
    for (size_t i = 0; i < res.stats.ndamaged; i++) {
        char hex[33];
        cli_note_id(hex, res.stats.damaged[i]);
        fprintf(stderr, "notes: note %.8s is damaged: its last good state was "
                        "searched (notes verify %.8s says what is wrong)\n",
                hex, hex);
        ctx->damaged = 1;
    }
    if (ctx->json) {
        char *js = NULL;
        size_t jn = 0;
        if ((rc = notes_fmt_search_json(&res, query, &js, &jn)))
            ret = cli_fail(rc, "cannot write the result");
        else
            printf("%s\n", js);
        notes_fmt_free(js);
    } else if (!res.total) {
        fprintf(stderr, "no note matches\n");
    } else {
        for (size_t i = 0; i < res.nhits; i++) {
            if (i)
                putchar('\n');
            print_hit(ctx, &res.hits[i]);
        }
        if (res.total > res.nhits)
            printf("\n(%zu more notes match: --limit %zu shows them)\n",
                   res.total - res.nhits, res.total);
    }
    notes_fmt_search_clear(&res);
    free(query);
    return ret;
}
