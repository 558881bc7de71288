/*
 * cmd_attest.c: verifiable exports. `notes verify FILE` checks a bundle
 * file (`notes export --format bundle`) or an attested Markdown file
 * (`notes export --attest`, with its FILE.attest sidecar) on any machine,
 * with no replica and no space: every signature, hash chain, link and
 * revocation, then the text rebuilt from the signed changes, with who
 * wrote each line and who recorded and confirmed each decision.
 *
 * The sidecar's format is formats' (notes_fmt_attest_encode / _decode).
 * The Markdown is checked by rebuilding it from the bundle with the same
 * exporter and comparing bytes, so any edit is found, and where.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "notes_formats.h"

#define ATTEST_SUFFIX ".attest"
#define BUNDLE_MAX (256u << 20)

/* Rebuild a note from a bundle file's bytes (16 bytes of id + bundle) in
 * memory, verifying every change. */
static int load_bundle(const uint8_t *bytes, size_t n, const char *what,
                       notes_doc **out)
{
    int rc = notes_bundle_file_open(bytes, n, out);
    return rc ? cli_fail(rc, "%s does not verify", what) : 0;
}

/* People: each device, the person it is linked to, revocations. */
static void print_people(struct cli_ctx *ctx, notes_doc *d, json_t *o)
{
    uint8_t(*keys)[32] = NULL;
    size_t n = 0;
    if (notes_fmt_authors(d, &keys, &n) != NOTES_OK)
        n = 0; /* out of memory: no devices shown */
    json_t *arr = o ? json_array() : NULL;
    if (!o)
        printf("devices:\n");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *author = keys[i];
        char who[200], dfpr[NOTES_FPR_STRLEN], key[NOTES_KEY_STRLEN];
        notes_person_info pi;
        int linked = notes_doc_person(d, author, &pi) == NOTES_OK && pi.person;
        cli_author(ctx, d, author, who, sizeof(who));
        notes_key_fingerprint(author, dfpr);
        notes_key_encode(author, key);
        if (arr) {
            char pkey[NOTES_KEY_STRLEN] = "";
            if (linked)
                notes_key_encode(pi.person, pkey);
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s?, s:b, s:b}", "device", key,
                               "fingerprint", dfpr, "shown_as", who, "person",
                               linked ? pkey : NULL, "contested",
                               !linked && pi.contested, "revoked",
                               linked && pi.revoked));
            continue;
        }
        if (linked) {
            char t[40] = "";
            if (pi.revoked)
                cli_time(pi.revoked_ms, t, sizeof(t));
            printf("  device %s speaks for %s: link signed by the person key "
                   "and the device%s%s\n", dfpr, who,
                   pi.revoked ? "; REVOKED at " : "", t);
        } else {
            printf("  device %s: %s, linked to no person in this note\n", dfpr,
                   who);
        }
    }
    if (arr)
        json_object_set_new(o, "devices", arr);
    notes_fmt_free(keys);
}

/* Each line with who wrote it (the inserter of its first character). */
static int print_lines(struct cli_ctx *ctx, notes_doc *d, json_t *o)
{
    json_t *arr = o ? json_array() : NULL;
    int ret = cli_blame_lines(ctx, d, arr, "text, with who wrote each line:\n");
    if (arr && !ret)
        json_object_set_new(o, "lines", arr);
    else
        json_decref(arr);
    return ret;
}

/* The full report on a verified note. */
static int report(struct cli_ctx *ctx, notes_doc *d, const char *what,
                  json_t *o)
{
    size_t n = notes_doc_change_count(d);
    char id[33];
    cli_note_id(id, notes_doc_id(d));
    const char *title = notes_doc_field(d, "title");
    if (o) {
        json_object_set_new(o, "file", json_string(what));
        json_object_set_new(o, "note", json_string(id));
        json_object_set_new(o, "title", title ? json_string(title) : json_null());
        json_object_set_new(o, "changes", json_integer((json_int_t)n));
        json_object_set_new(o, "ok", json_true());
    } else {
        printf("%s: note %.8s \"%s\", %zu changes: every signature, hash chain, "
               "link and revocation verified\n", cli_esc(what), id,
               title ? cli_esc(title) : "(untitled)", n);
    }
    print_people(ctx, d, o);
    int ret = print_lines(ctx, d, o);
    if (!ret)
        ret = cli_print_items(ctx, d, o);
    return ret;
}

static int read_file(const char *path, size_t max, uint8_t **out, size_t *n)
{
    char *buf = NULL;
    int ret = cli_read_input(path, max, &buf, n);
    *out = ret ? NULL : (uint8_t *)buf;
    if (ret)
        free(buf);
    return ret;
}

static int verify_markdown(struct cli_ctx *ctx, const char *md_path,
                           const char *side_path, json_t *o)
{
    uint8_t *md = NULL, *side = NULL;
    size_t nmd, nside;
    notes_fmt_attest a;
    notes_doc *d = NULL;
    char *render = NULL;
    size_t nrender;
    int ret, rc;
    memset(&a, 0, sizeof(a));
    if ((ret = read_file(md_path, BUNDLE_MAX, &md, &nmd)) ||
        (ret = read_file(side_path, BUNDLE_MAX, &side, &nside)))
        goto out;
    if ((rc = notes_fmt_attest_decode((const char *)side, nside, &a))) {
        if (rc == NOTES_ECORRUPT) {
            fprintf(stderr, "notes: %s: %s\n", cli_esc(side_path),
                    notes_fmt_last_detail());
            ret = EXIT_DATA;
        } else {
            ret = cli_fail(rc, "cannot read %s", cli_esc(side_path));
        }
        goto out;
    }
    uint8_t mdhash[32];
    if ((ret = load_bundle(a.bundle, a.nbundle, side_path, &d)))
        goto out;
    char id[33];
    cli_note_id(id, notes_doc_id(d));
    if (strcmp(a.note, id) != 0) {
        fprintf(stderr, "notes: %s names note %s but its bundle is note %s\n",
                cli_esc(side_path), cli_esc(a.note), id);
        ret = EXIT_DATA;
        goto out;
    }
    rc = notes_fmt_md_export(d, &render, &nrender);
    if (rc) {
        ret = cli_fail(rc, "cannot rebuild the Markdown");
        goto out;
    }
    notes__hash(mdhash, sizeof(mdhash), md, nmd, NULL, 0);
    if (nrender != nmd || memcmp(render, md, nmd) != 0) {
        /* Where: the first and last differing bytes, as lines. */
        size_t pre = 0, suf = 0;
        while (pre < nmd && pre < nrender && md[pre] == (uint8_t)render[pre])
            pre++;
        while (suf < nmd - pre && suf < nrender - pre &&
               md[nmd - 1 - suf] == (uint8_t)render[nrender - 1 - suf])
            suf++;
        size_t line = 1, col = 1, last = 1;
        for (size_t i = 0; i < pre; i++) {
            col = md[i] == '\n' ? 1 : col + ((md[i] & 0xc0) != 0x80);
            line += md[i] == '\n';
        }
        last = line;
        for (size_t i = pre; i < nmd - suf; i++)
            last += md[i] == '\n';
        size_t ls = pre;
        while (ls > 0 && md[ls - 1] != '\n')
            ls--;
        const uint8_t *fe = memchr(md + ls, '\n', nmd - ls);
        const char *re = memchr(render + ls, '\n', nrender - ls);
        int flen = (int)((fe ? fe : md + nmd) - (md + ls));
        int rlen = (int)((re ? re : render + nrender) - (render + ls));
        if (o) {
            json_object_set_new(o, "ok", json_false());
            json_object_set_new(o, "file", json_string(md_path));
            json_object_set_new(o, "first_difference",
                                json_pack("{s:I, s:I, s:I, s:s%, s:s%}", "line",
                                          (json_int_t)line, "column",
                                          (json_int_t)col, "last_line",
                                          (json_int_t)last, "found", md + ls,
                                          (size_t)flen, "signed", render + ls,
                                          (size_t)rlen));
            json_dumpf(o, stdout, JSON_INDENT(2));
            putchar('\n');
        }
        fprintf(stderr,
                "notes: %s was changed after it was exported: it differs from "
                "the signed note from line %zu, column %zu%s",
                md_path, line, col, last > line ? "" : "\n");
        if (last > line)
            fprintf(stderr, " to line %zu\n", last);
        fprintf(stderr, "  file:   %s\n  signed: %s\n",
                cli_escn((const char *)md + ls, (size_t)flen),
                cli_escn(render + ls, (size_t)rlen));
        if (memcmp(mdhash, a.md_hash, 32) == 0)
            fprintf(stderr, "  (the sidecar's hash matches the file: it was "
                            "exported by another version of notes)\n");
        ret = EXIT_DATA;
        goto out;
    }
    size_t nexpect;
    char *expect;
    if ((rc = notes_fmt_attest_encode(notes_doc_id(d), a.bundle, a.nbundle,
                                      render, nrender, &expect, &nexpect))) {
        ret = cli_fail(rc, "cannot rebuild the sidecar");
        goto out;
    }
    /* The sidecar itself must be exactly what export writes: upper-case
     * hex or other base64 spellings of the same bytes are changes too. */
    int same = nexpect == nside && memcmp(expect, side, nside) == 0;
    notes_fmt_free(expect);
    if (memcmp(mdhash, a.md_hash, 32) != 0 || !same) {
        fprintf(stderr, "notes: %s matches the signed note but %s is not the "
                        "sidecar notes wrote for it: the sidecar was edited\n",
                cli_esc(md_path), cli_esc(side_path));
        ret = EXIT_DATA;
        goto out;
    }
    if (!o)
        printf("%s is exactly the signed note (%zu bytes)\n", cli_esc(md_path),
               nmd);
    ret = report(ctx, d, side_path, o);
out:
    notes_fmt_free(render);
    notes_doc_free(d);
    notes_fmt_attest_clear(&a);
    free(md);
    free(side);
    return ret;
}

int cli_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_verify_file(struct cli_ctx *ctx, const char *path)
{
    json_t *o = ctx->json ? json_object() : NULL;
    size_t pl = strlen(path), sl = strlen(ATTEST_SUFFIX);
    int ret;
    char *side = malloc(pl + sl + 1);
    if (!side) {
        json_decref(o);
        return EXIT_SYSTEM;
    }
    snprintf(side, pl + sl + 1, "%s%s", path, ATTEST_SUFFIX);
    if (pl > sl && strcmp(path + pl - sl, ATTEST_SUFFIX) == 0) {
        /* Given the sidecar: the Markdown is beside it. */
        char *md = strndup(path, pl - sl);
        ret = md ? verify_markdown(ctx, md, path, o) : EXIT_SYSTEM;
        free(md);
    } else if (cli_is_file(side)) {
        ret = verify_markdown(ctx, path, side, o);
    } else {
        uint8_t *bytes = NULL;
        size_t n;
        notes_doc *d = NULL;
        ret = read_file(path, BUNDLE_MAX, &bytes, &n);
        /* A bundle starts with its note's 16 random id bytes, then "NTB":
         * one in 256 starts with '#', so the magic decides first. */
        int bundle = !ret && n >= 20 && memcmp(bytes + 16, "NTB", 3) == 0;
        if (!ret && !bundle && n >= 3 &&
            (memcmp(bytes, "---", 3) == 0 || bytes[0] == '#')) {
            fprintf(stderr, "notes: %s looks like Markdown but has no %s "
                            "sidecar: export it with --attest to make it "
                            "verifiable\n", path, ATTEST_SUFFIX);
            ret = EXIT_USER;
        } else if (!ret && !(ret = load_bundle(bytes, n, path, &d))) {
            ret = report(ctx, d, path, o);
        }
        notes_doc_free(d);
        free(bytes);
    }
    if (o && !ret) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
    }
    json_decref(o);
    free(side);
    return ret;
}

int cli_export_attest(notes_doc *d, const char *out)
{
    char *md = NULL, *text = NULL;
    size_t nmd;
    uint8_t *bundle = NULL, *file = NULL;
    size_t nb;
    int ret = EXIT_SYSTEM, rc;
    if (!out || strcmp(out, "-") == 0) {
        fprintf(stderr, "notes: --attest writes two files: give -o FILE.md\n");
        return EXIT_USER;
    }
    if ((rc = notes_fmt_md_export(d, &md, &nmd)) ||
        (rc = notes_doc_export(d, NULL, 0, &bundle, &nb))) {
        ret = cli_fail(rc, "cannot export");
        goto out;
    }
    file = malloc(nb + 16);
    if (!file)
        goto out;
    memcpy(file, notes_doc_id(d), 16);
    memcpy(file + 16, bundle, nb);
    nb += 16;
    size_t len;
    if ((rc = notes_fmt_attest_encode(notes_doc_id(d), file, nb, md, nmd, &text,
                                      &len))) {
        ret = cli_fail(rc, "cannot write the attestation");
        goto out;
    }
    char *side = malloc(strlen(out) + sizeof(ATTEST_SUFFIX));
    if (!side)
        goto out;
    sprintf(side, "%s%s", out, ATTEST_SUFFIX);
    ret = cli_write_output(out, md, nmd);
    if (!ret)
        ret = cli_write_output(side, text, len);
    if (!ret)
        fprintf(stderr, "wrote %s and its attestation %s (check with: notes "
                        "verify %s)\n", out, side, out);
    free(side);
out:
    notes_fmt_free(md);
    notes_free(bundle);
    free(file);
    notes_fmt_free(text);
    return ret;
}
