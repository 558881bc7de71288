/*
 * cmd_publish.c: `notes publish SPACE [NOTE...] --to DIR_OR_URL [--branch
 * B] [--path P]`: the space's notes as Markdown files in a git repository,
 * one per meeting named from its date and title, each with its .attest
 * sidecar (anyone can run `notes verify FILE.md`), an index page with the
 * decisions and action items and their owners, committed with a message
 * that lists what changed, and pushed when the target is a remote.
 * Publishing is always this explicit command, never a side effect of sync.
 * The output depends only on the notes, so publishing again after an edit
 * changes only the files of what changed. docs/remote.md, "Publish".
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "notes_formats.h"
#include "notes_sync.h"

#define MANIFEST ".notes-publish"
#define INDEX "index.md"

struct pub {
    uint8_t id[16];
    char date[11];  /* YYYY-MM-DD, or "" */
    char *title;
    char *file;     /* NAME.md under the path */
    char *md, *side;
    size_t nmd, nside;
    notes_fmt_outline outline;
    int has_outline;
};

static void pub_clear(struct pub *p)
{
    free(p->title);
    free(p->file);
    notes_fmt_free(p->md);
    notes_fmt_free(p->side);
    if (p->has_outline)
        notes_fmt_outline_clear(&p->outline);
    memset(p, 0, sizeof(*p));
}

/* "2023-05-15-community-gathering-may-15-2023": ASCII letters and digits
 * of the title, lowercased, the rest one '-'; at most 60 bytes. */
static void slug(const char *title, char *out, size_t cap)
{
    size_t k = 0;
    int dash = 0;
    for (const unsigned char *p = (const unsigned char *)title;
         *p && k + 2 < cap && k < 60; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (dash && k)
                out[k++] = '-';
            out[k++] = (char)c;
            dash = 0;
        } else if (c >= 'A' && c <= 'Z') {
            if (dash && k)
                out[k++] = '-';
            out[k++] = (char)(c - 'A' + 'a');
            dash = 0;
        } else {
            dash = 1;
        }
    }
    out[k] = '\0';
    if (k == 0)
        snprintf(out, cap, "meeting");
}

/* The date part of a datetime field (ISO 8601), if it has one. */
static void date_of(const char *dt, char out[11])
{
    out[0] = '\0';
    if (!dt || strlen(dt) < 10)
        return;
    for (int i = 0; i < 10; i++) {
        int digit = dt[i] >= '0' && dt[i] <= '9';
        if ((i == 4 || i == 7) ? dt[i] != '-' : !digit)
            return;
    }
    memcpy(out, dt, 10);
    out[10] = '\0';
}

/* The Markdown and its sidecar, exactly as `notes export --attest`. */
static int make_files(notes_doc *d, struct pub *p)
{
    uint8_t *bundle = NULL, *file = NULL;
    size_t nb;
    int rc;
    if ((rc = notes_fmt_md_export(d, &p->md, &p->nmd)) ||
        (rc = notes_doc_export(d, NULL, 0, &bundle, &nb)))
        return cli_fail(rc, "cannot export");
    if (!(file = malloc(nb + 16))) {
        notes_free(bundle);
        return EXIT_SYSTEM;
    }
    memcpy(file, notes_doc_id(d), 16);
    memcpy(file + 16, bundle, nb);
    rc = notes_fmt_attest_encode(notes_doc_id(d), file, nb + 16, p->md,
                                 p->nmd, &p->side, &p->nside);
    notes_free(bundle);
    free(file);
    if (rc)
        return cli_fail(rc, "cannot write the attestation");
    return 0;
}

static int cmp_pub(const void *a, const void *b)
{
    const struct pub *x = a, *y = b;
    int k = strcmp(y->date, x->date); /* newest first */
    return k ? k : strcmp(x->file, y->file);
}

/* Run git in `dir` (NULL: no -C); 0, or prints and returns exit 3. */
static int git_in(const char *tmp, const char *dir, const void *in, size_t nin,
                  notes_sync_git_result *r, int must, const char *what, ...)
{
    const char *argv[32];
    size_t k = 0;
    va_list ap;
    argv[k++] = "git";
    if (dir) {
        argv[k++] = "-C";
        argv[k++] = dir;
    }
    va_start(ap, what);
    while (k < 31 && (argv[k] = va_arg(ap, const char *)))
        k++;
    va_end(ap);
    argv[k] = NULL;
    int rc = notes_sync_git(tmp, argv, in, nin, r);
    if (rc) {
        fprintf(stderr, "notes: %s: %s\n", what,
                cli_esc(notes_sync_last_detail()));
        return EXIT_SYSTEM;
    }
    if (must && r->status != 0) {
        char why[420];
        fprintf(stderr, "notes: %s: %s\n", what,
                cli_esc(notes_sync_git_why(r, why, sizeof(why))));
        notes_sync_git_result_clear(r);
        return EXIT_SYSTEM;
    }
    return 0;
}
#define GIT(tmp, dir, in, nin, r, must, what, ...) \
    git_in(tmp, dir, in, nin, r, must, what, __VA_ARGS__, (char *)NULL)

/* Whether `to` is a URL git should fetch (else a folder here). */
static int is_url(const char *to)
{
    struct stat st;
    if (strstr(to, "://"))
        return 1;
    if (stat(to, &st) == 0)
        return 0;
    /* scp-like "host:path" / "user@host:path": a ':' before any '/'. */
    const char *colon = strchr(to, ':'), *slash = strchr(to, '/');
    return colon && colon != to && (!slash || colon < slash);
}

static int write_if_changed(const char *path, const char *p, size_t n)
{
    uint8_t *old = NULL;
    size_t nold = 0;
    struct stat lst;
    /* A symbolic link there (from the repository) is replaced by the
     * file, never followed: not even read. */
    FILE *f = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)
                  ? NULL
                  : fopen(path, "rb");
    if (f) {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && (size_t)st.st_size == n &&
            (old = malloc(n + 1)) && fread(old, 1, n, f) == n &&
            memcmp(old, p, n) == 0) {
            free(old);
            fclose(f);
            return 0;
        }
        free(old);
        fclose(f);
    }
    (void)nold;
    return cli_write_output(path, p, n);
}

static void md_inline(struct notes_buf *b, const char *s)
{
    /* Item text is Markdown already; keep it on one line. */
    for (; *s; s++)
        (void)notes__buf_put(b, *s == '\n' ? " " : s, 1);
}

/* The index page: every meeting, newest first, with its decisions and
 * action items and their owners. No date of publishing: the same notes
 * give the same page. */
static int make_index(const char *space, struct pub *v, size_t n,
                      struct notes_buf *b)
{
    int rc = notes__buf_printf(b,
        "# Meeting notes\n\n"
        "The minutes of the notes space `%s`, published with `notes publish`.\n"
        "Each meeting's file has a `.attest` sidecar holding its signed "
        "history:\n`notes verify FILE.md` checks that the file is what its "
        "authors signed\nand shows who wrote each line.\n",
        space);
    for (size_t i = 0; !rc && i < n; i++) {
        const notes_fmt_outline *o = &v[i].outline;
        size_t nd = 0, nt = 0;
        rc = notes__buf_printf(b, "\n## %s%s[", v[i].date,
                               v[i].date[0] ? " " : "");
        if (!rc) {
            md_inline(b, v[i].title);
            rc = notes__buf_printf(b, "](%s)\n", v[i].file);
        }
        for (size_t k = 0; !rc && k < o->nitems; k++) {
            if (o->items[k].kind == NOTES_FMT_ITEM_DECISION)
                nd++;
            else
                nt++;
        }
        if (!rc && nd)
            rc = notes__buf_puts(b, "\nDecisions:\n\n");
        for (size_t k = 0; !rc && k < o->nitems; k++) {
            const notes_fmt_item *it = &o->items[k];
            if (it->kind != NOTES_FMT_ITEM_DECISION)
                continue;
            rc = notes__buf_puts(b, "- ");
            md_inline(b, it->text);
            if (!rc && it->owner && *it->owner) {
                rc = notes__buf_puts(b, " (");
                md_inline(b, it->owner);
                rc = rc ? rc : notes__buf_puts(b, ")");
            }
            rc = rc ? rc : notes__buf_puts(b, "\n");
        }
        if (!rc && nt)
            rc = notes__buf_puts(b, "\nAction items:\n\n");
        for (size_t k = 0; !rc && k < o->nitems; k++) {
            const notes_fmt_item *it = &o->items[k];
            if (it->kind == NOTES_FMT_ITEM_DECISION)
                continue;
            rc = notes__buf_printf(b, "- [%c] ", it->done ? 'x' : ' ');
            if (!rc && it->owner && *it->owner) {
                md_inline(b, it->owner);
                rc = notes__buf_puts(b, ": ");
            }
            md_inline(b, it->text);
            rc = rc ? rc : notes__buf_puts(b, "\n");
        }
    }
    return rc;
}

/* The files listed in DIR/.notes-publish (what the last publish wrote). */
static char **read_manifest(const char *dir, size_t *n)
{
    char *path = malloc(strlen(dir) + sizeof(MANIFEST) + 2), *text = NULL;
    size_t len;
    char **v = NULL;
    *n = 0;
    if (!path)
        return NULL;
    sprintf(path, "%s/%s", dir, MANIFEST);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        cli_read_input(path, 1u << 20, &text, &len) == 0) {
        for (char *p = text, *nl; *p; p = nl + 1) {
            if (!(nl = strchr(p, '\n')))
                break;
            *nl = '\0';
            /* only plain names we would write: no '/', no dot files */
            if (*p && *p != '.' && !strchr(p, '/')) {
                char **nv = realloc(v, (*n + 1) * sizeof(*v));
                if (!nv)
                    break;
                v = nv;
                v[(*n)++] = strdup(p);
            }
        }
    }
    free(text);
    free(path);
    return v;
}

/* Whether this publish writes `name` (a meeting, its sidecar, the index). */
static int written(const struct pub *v, size_t n, const char *name)
{
    size_t l = strlen(name);
    if (strcmp(name, INDEX) == 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(v[i].file);
        if (strcmp(name, v[i].file) == 0 ||
            (l == k + 7 && strncmp(name, v[i].file, k) == 0 &&
             strcmp(name + k, ".attest") == 0))
            return 1;
    }
    return 0;
}

/* mkdir -p for the path under the work tree. */
static int mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/*
 * Whether --path stays inside the work tree: none of its folders that
 * exist may be a symbolic link (or a file). The repository's content
 * comes from whoever can push to it; `notes -> /home/you` checked out
 * would have the files written, and the old ones removed, there.
 */
static int path_inside(const char *wt, const char *path, int url,
                       const char *to)
{
    char buf[8192];
    size_t base = (size_t)snprintf(buf, sizeof(buf), "%s/", wt);
    struct stat st;
    if (base >= sizeof(buf) || base + strlen(path) >= sizeof(buf))
        return EXIT_USER;
    memcpy(buf + base, path, strlen(path) + 1);
    for (char *p = buf + base;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (lstat(buf, &st) == 0 && !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "notes: '%s' in %s is %s, not a folder: refused "
                            "(the files would be written wherever it "
                            "points)\n", cli_esc(buf + base), cli_esc(to),
                    S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
            return url ? EXIT_SYSTEM : EXIT_USER;
        }
        if (c == '\0')
            return 0;
        *p = c;
    }
}

/* The work tree for a URL: a clone under $NOTES_HOME/publish.d, on
 * branch B as the remote has it (or a new, empty branch). */
static int url_worktree(struct cli_ctx *ctx, const char *url,
                        const char *branch, char *wt, size_t cap)
{
    notes_sync_git_result r;
    uint8_t h[32];
    char hex[33], base[4096], rb[300];
    int ret;
    notes__hash(h, 16, url, strlen(url), (const uint8_t *)branch,
                strlen(branch));
    notes__hex(hex, h, 16);
    snprintf(base, sizeof(base), "%s/publish.d", ctx->home);
    if (mkdir(base, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "notes: cannot create '%s': %s\n", base,
                strerror(errno));
        return EXIT_SYSTEM;
    }
    if (strlen(base) + 34 >= cap) {
        fprintf(stderr, "notes: $NOTES_HOME is too long a path\n");
        return EXIT_USER;
    }
    snprintf(wt, cap, "%s/%s", base, hex);
    struct stat st;
    char gitdir[4200];
    snprintf(gitdir, sizeof(gitdir), "%s/.git", wt);
    if (stat(gitdir, &st) != 0) {
        if ((ret = GIT(base, NULL, NULL, 0, &r, 1, "cannot clone the target",
                       "clone", "-q", "--no-checkout", "--", url, wt)))
            return ret;
        notes_sync_git_result_clear(&r);
    } else {
        if ((ret = GIT(base, wt, NULL, 0, &r, 1, "cannot fetch the target",
                       "fetch", "-q", "origin")))
            return ret;
        notes_sync_git_result_clear(&r);
    }
    snprintf(rb, sizeof(rb), "refs/remotes/origin/%s", branch);
    if ((ret = GIT(base, wt, NULL, 0, &r, 0, "git", "rev-parse", "-q",
                   "--verify", rb)))
        return ret;
    int exists = r.status == 0;
    notes_sync_git_result_clear(&r);
    snprintf(rb, sizeof(rb), "origin/%s", branch);
    if (exists)
        ret = GIT(base, wt, NULL, 0, &r, 1, "cannot check out the branch",
                  "checkout", "-q", "-f", "-B", branch, rb);
    else
        ret = GIT(base, wt, NULL, 0, &r, 1, "cannot start the branch",
                  "checkout", "-q", "-f", "--orphan", branch);
    if (ret)
        return ret;
    notes_sync_git_result_clear(&r);
    if (!exists) {
        /* A new branch starts empty, whatever the clone held. */
        if ((ret = GIT(base, wt, NULL, 0, &r, 0, "git", "rm", "-rfq",
                       "--ignore-unmatch", ".")))
            return ret;
        notes_sync_git_result_clear(&r);
    }
    /* Nothing left over from an interrupted run. */
    if ((ret = GIT(base, wt, NULL, 0, &r, 1, "cannot clean the work tree",
                   "clean", "-fdqx")))
        return ret;
    notes_sync_git_result_clear(&r);
    return 0;
}

/* A folder here: a git work tree, or made one if missing or empty. */
static int dir_worktree(const char *tmp, const char *dir, const char *branch,
                        char *wt, size_t cap)
{
    notes_sync_git_result r;
    struct stat st;
    int ret, empty = 1;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            fprintf(stderr, "notes: '%s' is not a folder\n", cli_esc(dir));
            return EXIT_USER;
        }
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = 0;
        if (d)
            closedir(d);
    } else if (mkdirs(dir) != 0) {
        fprintf(stderr, "notes: cannot create '%s': %s\n", cli_esc(dir),
                strerror(errno));
        return EXIT_SYSTEM;
    }
    snprintf(wt, cap, "%s", dir);
    if ((ret = GIT(tmp, dir, NULL, 0, &r, 0, "git", "rev-parse",
                   "--show-toplevel")))
        return ret;
    int repo = r.status == 0;
    notes_sync_git_result_clear(&r);
    if (!repo && !empty) {
        fprintf(stderr, "notes: '%s' is neither a git repository nor empty: "
                        "give a repository, an empty folder or a URL\n",
                cli_esc(dir));
        return EXIT_USER;
    }
    if (!repo) {
        char b[300];
        snprintf(b, sizeof(b), "--initial-branch=%s", branch ? branch : "main");
        if ((ret = GIT(tmp, dir, NULL, 0, &r, 1, "cannot create a repository",
                       "init", "-q", b)))
            return ret;
        notes_sync_git_result_clear(&r);
        return 0;
    }
    if (branch) {
        if ((ret = GIT(tmp, dir, NULL, 0, &r, 0, "git", "symbolic-ref",
                       "--short", "HEAD")))
            return ret;
        int same = r.status == 0 && r.out &&
                   strncmp(r.out, branch, strlen(branch)) == 0 &&
                   r.out[strlen(branch)] == '\n';
        notes_sync_git_result_clear(&r);
        if (!same) {
            fprintf(stderr, "notes: '%s' is not on branch %s: check it out "
                            "first (notes does not switch your branches)\n",
                    cli_esc(dir), cli_esc(branch));
            return EXIT_USER;
        }
    }
    return 0;
}

int cmd_publish(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *space = NULL, *to = NULL, *branch = NULL, *path = "notes";
    const char *pos[33];
    struct pub *v = NULL;
    size_t n = 0, npos = 0;
    uint8_t(*ids)[16] = NULL;
    size_t nids = 0;
    char wt[4096], dir[8192], pathclean[1024];
    char **old = NULL;
    size_t nold = 0;
    struct notes_buf idx, msg, files;
    notes_sync_git_result r;
    int ret = 0, rc, url;
    const struct cli_opt opts[] = {CLI_VALUE("--to", &to),
                                   CLI_VALUE("--branch", &branch),
                                   CLI_VALUE("--path", &path), CLI_END};
    memset(pos, 0, sizeof(pos));
    if ((rc = cli_parse_args(argc, argv, "publish", opts, pos, 33, 0)))
        return rc;
    while (npos < 33 && pos[npos])
        npos++;
    if (!pos[0] || !to || npos > 32)
        return cli_usage("publish");
    space = pos[0];
    /* --path: a relative folder of the repository, no "..". */
    snprintf(pathclean, sizeof(pathclean), "%s", path);
    while (strlen(pathclean) > 1 && pathclean[strlen(pathclean) - 1] == '/')
        pathclean[strlen(pathclean) - 1] = '\0';
    if (!*pathclean || pathclean[0] == '/' || strstr(pathclean, "..") ||
        cli_has_controls(pathclean)) {
        fprintf(stderr, "notes: --path is a folder inside the repository "
                        "(like notes/), without '..'\n");
        return EXIT_USER;
    }
    if (branch && (!*branch || branch[0] == '-' || strstr(branch, "..") ||
                   cli_has_controls(branch) || strchr(branch, ' '))) {
        fprintf(stderr, "notes: '%s' is not a branch name\n", cli_esc(branch));
        return EXIT_USER;
    }
    if (to[0] == '-') {
        fprintf(stderr, "notes: --to '%s' starts with '-'\n", cli_esc(to));
        return EXIT_USER;
    }
    cli_network_command();
    notes__buf_init(&idx, 64u << 20);
    notes__buf_init(&msg, 1u << 20);
    notes__buf_init(&files, 1u << 20);

    /* The notes: the space's, or those named (each must be in it). */
    if ((rc = notes_sync_space_notes(ctx->home, space, &ids, &nids))) {
        fprintf(stderr, "notes: cannot read space '%s': %s\n", cli_esc(space),
                cli_esc(notes_sync_last_detail()));
        return rc == NOTES_ENOTFOUND || rc == NOTES_EINVAL ? EXIT_USER
                                                           : cli_exit_code(rc);
    }
    {
        char chk[NOTES_SPACE_NAME_MAX + 1];
        notes_sync_space s;
        if ((rc = notes_sync_space_load(ctx->home, space, &s))) {
            notes_sync_free(ids);
            fprintf(stderr, "notes: %s\n", cli_esc(notes_sync_last_detail()));
            return rc == NOTES_ENOTFOUND ? EXIT_USER : cli_exit_code(rc);
        }
        notes_sync_space_clear(&s);
        (void)chk;
    }
    v = calloc(nids + npos + 1, sizeof(*v));
    if (!v) {
        notes_sync_free(ids);
        return EXIT_SYSTEM;
    }
    for (size_t i = 0; i < (npos > 1 ? npos - 1 : nids); i++) {
        notes_doc *d;
        if (npos > 1) {
            char sp[NOTES_SPACE_NAME_MAX + 1];
            if ((ret = cli_open_note(ctx, pos[i + 1], &d)))
                goto out;
            if (notes_sync_space_of_note(ctx->home, notes_doc_id(d), sp) ||
                strcmp(sp, space) != 0) {
                fprintf(stderr, "notes: %s is not in space %s (notes space "
                                "add %s %s)\n", cli_esc(pos[i + 1]),
                        cli_esc(space), cli_esc(space), cli_esc(pos[i + 1]));
                notes_doc_free(d);
                ret = EXIT_USER;
                goto out;
            }
        } else {
            rc = notes_doc_open(ctx->r, ids[i], &d);
            if (rc == NOTES_ENOTFOUND)
                continue; /* listed, not here yet */
            if (rc == NOTES_OK)
                notes_doc_free(d);
            rc = cli_open_listed(ctx, ids[i], &d);
            if (rc == -1)
                continue;
            if (rc) {
                ret = rc;
                goto out;
            }
        }
        struct pub *p = &v[n];
        char s[80], name[128];
        memcpy(p->id, notes_doc_id(d), 16);
        const char *title = notes_doc_field(d, "title");
        const char *const *teams = notes_doc_list(d, "teams");
        char fallback[200];
        /* No title (as the kraft sample): "kraft meeting", from its teams. */
        snprintf(fallback, sizeof(fallback), "%s%smeeting",
                 teams && teams[0] ? teams[0] : "",
                 teams && teams[0] ? " " : "");
        p->title = strdup(title && *title ? title : fallback);
        date_of(notes_doc_field(d, "datetime"), p->date);
        slug(p->title, s, sizeof(s));
        snprintf(name, sizeof(name), "%s%s%s.md", p->date,
                 p->date[0] ? "-" : "", s);
        p->file = strdup(name);
        if ((ret = make_files(d, p)) ||
            (rc = notes_fmt_outline_doc(d, &p->outline))) {
            if (!ret)
                ret = cli_fail(rc, "cannot read the decisions");
            notes_doc_free(d);
            n++;
            goto out;
        }
        p->has_outline = 1;
        notes_doc_free(d);
        n++;
        if (!p->title || !p->file) {
            ret = EXIT_SYSTEM;
            goto out;
        }
    }
    if (n == 0) {
        fprintf(stderr, "notes: space %s has no note to publish\n",
                cli_esc(space));
        ret = EXIT_USER;
        goto out;
    }
    /* Two meetings of one day and title: the second gets its id. */
    qsort(v, n, sizeof(*v), cmp_pub);
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[i].file, v[j].file) == 0) {
                char hex[33], name[200];
                cli_note_id(hex, v[i].id);
                snprintf(name, sizeof(name), "%.*s-%.8s.md",
                         (int)(strlen(v[i].file) - 3), v[i].file, hex);
                free(v[i].file);
                v[i].file = strdup(name);
                if (!v[i].file) {
                    ret = EXIT_SYSTEM;
                    goto out;
                }
            }

    url = is_url(to);
    if (url)
        ret = url_worktree(ctx, to, branch ? branch : "main", wt, sizeof(wt));
    else
        ret = dir_worktree(ctx->home, to, branch, wt, sizeof(wt));
    if (ret)
        goto out;
    snprintf(dir, sizeof(dir), "%s/%s", wt, pathclean);
    if ((ret = path_inside(wt, pathclean, url, to)))
        goto out;
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "notes: cannot create '%s': %s\n", cli_esc(dir),
                strerror(errno));
        ret = EXIT_SYSTEM;
        goto out;
    }

    /* Write: each meeting and its sidecar, the index, the manifest; the
     * files of the last publish that are gone are removed. */
    old = read_manifest(dir, &nold);
    for (size_t i = 0; i < n && !ret; i++) {
        char f[8400];
        snprintf(f, sizeof(f), "%s/%s", dir, v[i].file);
        ret = write_if_changed(f, v[i].md, v[i].nmd);
        snprintf(f, sizeof(f), "%s/%s.attest", dir, v[i].file);
        if (!ret)
            ret = write_if_changed(f, v[i].side, v[i].nside);
        if (!ret && (notes__buf_printf(&files, "%s\n%s.attest\n", v[i].file,
                                       v[i].file)))
            ret = EXIT_SYSTEM;
    }
    if (!ret && (make_index(space, v, n, &idx) ||
                 notes__buf_printf(&files, "%s\n", INDEX)))
        ret = EXIT_SYSTEM;
    if (!ret) {
        char f[8400];
        snprintf(f, sizeof(f), "%s/%s", dir, INDEX);
        ret = write_if_changed(f, (const char *)idx.data, idx.len);
        snprintf(f, sizeof(f), "%s/%s", dir, MANIFEST);
        if (!ret)
            ret = write_if_changed(f, (const char *)files.data, files.len);
    }
    for (size_t i = 0; i < nold && !ret; i++) {
        if (old[i] && !written(v, n, old[i])) {
            char f[8400];
            snprintf(f, sizeof(f), "%s/%s", dir, old[i]);
            (void)unlink(f);
        }
    }
    if (ret)
        goto out;

    /* Stage the path; what changed makes the commit message. */
    if ((ret = GIT(ctx->home, wt, NULL, 0, &r, 1, "cannot stage the files",
                   "add", "-A", "--", pathclean)))
        goto out;
    notes_sync_git_result_clear(&r);
    if ((ret = GIT(ctx->home, wt, NULL, 0, &r, 1, "cannot read the changes",
                   "diff", "--cached", "--name-status", "--no-renames",
                   "--", pathclean)))
        goto out;
    size_t added = 0, changed = 0, removed = 0;
    struct notes_buf list;
    notes__buf_init(&list, 1u << 20);
    for (char *p = r.out, *nl; p && *p; p = nl + 1) {
        if (!(nl = strchr(p, '\n')))
            break;
        *nl = '\0';
        const char *f = p + 2;
        if (p[0] == 'A')
            added += !strstr(f, ".attest") && !strstr(f, INDEX) &&
                     !strstr(f, MANIFEST);
        else if (p[0] == 'D')
            removed += !strstr(f, ".attest") && !strstr(f, INDEX) &&
                       !strstr(f, MANIFEST);
        else
            changed += !strstr(f, ".attest") && !strstr(f, INDEX) &&
                       !strstr(f, MANIFEST);
        if (!strstr(f, MANIFEST))
            (void)notes__buf_printf(&list, "%s %s\n",
                                    p[0] == 'A'   ? "added:  "
                                    : p[0] == 'D' ? "removed:"
                                                  : "changed:",
                                    f);
    }
    notes_sync_git_result_clear(&r);
    if (list.len == 0) {
        notes__buf_release(&list);
        cli_done(ctx, "Nothing changed: the %zu meeting%s of space %s in %s "
                 "are up to date.", n, CLI_S(n), space, cli_esc(to));
        goto out;
    }
    (void)notes__buf_printf(&msg, "Publish the minutes of space %s: %zu "
                            "added, %zu changed, %zu removed\n\n", space,
                            added, changed, removed);
    (void)notes__buf_put(&msg, list.data, list.len);
    (void)notes__buf_puts(&msg, "\nEach .md file has a .attest sidecar: "
                                "notes verify FILE.md\n");
    notes__buf_release(&list);
    /* The user's git identity; a replica's name when git has none. */
    if ((ret = GIT(ctx->home, wt, NULL, 0, &r, 0, "git", "config",
                   "user.email")))
        goto out;
    int has_ident = r.status == 0;
    notes_sync_git_result_clear(&r);
    char uname[300], uemail[300];
    char fpr[NOTES_FPR_STRLEN];
    notes_key_fingerprint(notes_replica_public_key(ctx->r), fpr);
    snprintf(uname, sizeof(uname), "user.name=%s",
             notes_replica_name(ctx->r));
    snprintf(uemail, sizeof(uemail), "user.email=%s@notes.invalid", fpr);
    if (has_ident)
        ret = GIT(ctx->home, wt, msg.data, msg.len, &r, 1, "cannot commit",
                  "commit", "-q", "--no-verify", "-F", "-");
    else
        ret = GIT(ctx->home, wt, msg.data, msg.len, &r, 1, "cannot commit",
                  "-c", uname, "-c", uemail, "commit", "-q", "--no-verify",
                  "-F", "-");
    if (ret)
        goto out;
    notes_sync_git_result_clear(&r);
    if (url) {
        char dst[400];
        snprintf(dst, sizeof(dst), "HEAD:refs/heads/%s",
                 branch ? branch : "main");
        if ((ret = GIT(ctx->home, wt, NULL, 0, &r, 1, "cannot push",
                       "push", "-q", "origin", dst)))
            goto out;
        notes_sync_git_result_clear(&r);
    }
    char head[64] = "";
    if (GIT(ctx->home, wt, NULL, 0, &r, 0, "git", "rev-parse", "--short",
            "HEAD") == 0) {
        if (r.status == 0 && r.out)
            snprintf(head, sizeof(head), "%.*s", (int)strcspn(r.out, "\n"),
                     r.out);
        notes_sync_git_result_clear(&r);
    }
    cli_done(ctx, "Published %zu meeting%s of space %s to %s (%s/): %zu "
             "added, %zu changed, %zu removed; commit %s%s.", n, CLI_S(n),
             space, cli_esc(to), pathclean, added, changed, removed, head,
             url ? ", pushed" : "");
out:
    for (size_t i = 0; i < n; i++)
        pub_clear(&v[i]);
    free(v);
    for (size_t i = 0; i < nold; i++)
        free(old[i]);
    free(old);
    notes_sync_free(ids);
    notes__buf_release(&idx);
    notes__buf_release(&msg);
    notes__buf_release(&files);
    return ret;
}
