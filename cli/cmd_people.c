/*
 * cmd_people.c: people and their devices, petnames, confirmations:
 * `notes device add|link|revoke|list`, `notes person export|import`,
 * `notes trust`, `notes confirm`; and how a key is shown (cli_author).
 *
 * Names are claims, keys are facts: a key is always shown with its
 * fingerprint; the name is the user's own petname for it (HOME/trust) when
 * there is one, else the name it claims, marked "unknown key".
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "notes_formats.h"
#include "notes_sync.h"

const char *cli_passphrase(int confirm);

/* ---- petnames: HOME/trust, read and written by libnotes ---- */

static notes_petnames pets;
static int pets_loaded;
static unsigned pets_gen; /* bumped whenever pets changes (memo) */

static char *home_file(struct cli_ctx *ctx, const char *name)
{
    size_t n = strlen(ctx->home) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", ctx->home, name);
    return p;
}

/* Load once per command and say what is wrong with the file: a damaged one
 * names nobody (one could name the wrong key), a bad line names nobody.
 * A file that cannot be read gives no names, as if absent. */
static void pets_load(struct cli_ctx *ctx)
{
    if (pets_loaded)
        return;
    pets_loaded = 1;
    if (notes_petnames_load(ctx->home, &pets) != NOTES_OK)
        return;
    if (pets.damaged)
        fprintf(stderr, "notes: %s; your names for keys are not used (see: "
                        "notes verify)\n",
                notes_last_detail());
    for (size_t i = 0; i < pets.nbad; i++)
        fprintf(stderr, "notes: %s/trust line %zu ignored: not \"nk... NAME\"\n",
                cli_esc(ctx->home), pets.bad_lines[i]);
}

static const char *petname(struct cli_ctx *ctx, const uint8_t key[32])
{
    pets_load(ctx);
    return notes_petnames_find(&pets, key);
}

static int pets_save(struct cli_ctx *ctx)
{
    if (pets.damaged) {
        fprintf(stderr, "notes: %s/trust is damaged and is not rewritten: "
                        "repair or remove it, then run notes trust again\n",
                ctx->home);
        return EXIT_DATA;
    }
    if (notes_petnames_save(ctx->home, &pets) != NOTES_OK) {
        fprintf(stderr, "notes: cannot write '%s/trust': %s\n",
                cli_esc(ctx->home), notes_last_detail());
        return EXIT_USER;
    }
    return 0;
}

/* The person key this replica's device is linked to (from HOME/certs). */
static int own_person(struct cli_ctx *ctx, uint8_t out[32], char *name,
                      size_t n)
{
    static int loaded, have;
    static uint8_t key[32];
    static char nm[NOTES_NAME_MAX + 1];
    if (!loaded && ctx->r) {
        notes_link_info *li;
        size_t k;
        loaded = 1;
        if (notes_replica_links(ctx->r, &li, &k) == NOTES_OK) {
            for (size_t i = 0; i < k; i++)
                if (li[i].self && !li[i].revoked) {
                    memcpy(key, li[i].person, 32);
                    snprintf(nm, sizeof(nm), "%s", li[i].person_name);
                    have = 1;
                }
            notes_free(li);
        }
    }
    if (have) {
        memcpy(out, key, 32);
        if (name)
            snprintf(name, n, "%s", nm);
    }
    return have;
}

void cli_author(struct cli_ctx *ctx, notes_doc *d, const uint8_t pk[32],
                char *out, size_t n)
{
    notes_fmt_key_facts f;
    notes_fmt_key_facts_of(d, pk, &f);
    cli_author_facts(ctx, &f, out, n);
}

/* The last key shown and how: a listing of many notes names the same few
 * keys over and over (a fingerprint is a hash, a petname a lookup). */
static struct {
    int valid;
    unsigned gen;
    const struct cli_ctx *ctx;
    notes_fmt_key_facts f; /* its strings in claimed, person_name */
    char claimed[NOTES_NAME_MAX + 1], person_name[NOTES_NAME_MAX + 1];
    size_t n;
    char out[512];
} memo;

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void author_shown(struct cli_ctx *ctx, const notes_fmt_key_facts *f,
                         char *out, size_t n);

void cli_author_facts(struct cli_ctx *ctx, const notes_fmt_key_facts *f,
                      char *out, size_t n)
{
    if (memo.valid && memo.gen == pets_gen && memo.ctx == ctx && memo.n == n &&
        memcmp(memo.f.key, f->key, 32) == 0 && memo.f.linked == f->linked &&
        memo.f.revoked == f->revoked && memo.f.contested == f->contested &&
        (!f->linked || memcmp(memo.f.person, f->person, 32) == 0) &&
        same_str(memo.f.claimed, f->claimed) &&
        same_str(memo.f.person_name, f->person_name)) {
        memcpy(out, memo.out, n);
        return;
    }
    author_shown(ctx, f, out, n);
    memo.valid = n <= sizeof(memo.out) &&
                 (!f->claimed || strlen(f->claimed) < sizeof(memo.claimed)) &&
                 (!f->person_name || strlen(f->person_name) < sizeof(memo.person_name));
    if (!memo.valid)
        return;
    memo.gen = pets_gen;
    memo.ctx = ctx;
    memo.n = n;
    memo.f = *f;
    memo.f.claimed = NULL;
    memo.f.person_name = NULL;
    if (f->claimed) { /* lengths checked above */
        snprintf(memo.claimed, sizeof(memo.claimed), "%s", f->claimed);
        memo.f.claimed = memo.claimed;
    }
    if (f->person_name) {
        snprintf(memo.person_name, sizeof(memo.person_name), "%s", f->person_name);
        memo.f.person_name = memo.person_name;
    }
    memcpy(memo.out, out, n);
}

static void author_shown(struct cli_ctx *ctx, const notes_fmt_key_facts *f,
                         char *out, size_t n)
{
    const uint8_t *pk = f->key, *key = pk;
    const char *claimed = f->claimed;
    int linked = f->linked;
    char tags[80] = "", fpr[NOTES_FPR_STRLEN], ownname[NOTES_NAME_MAX + 1];
    uint8_t me[32];
    if (linked) {
        key = f->person;
        claimed = f->person_name;
    }
    /* The user's name for the person, else for this device (a peer's
     * device named from `notes peers` before anyone knew its person). */
    const char *label = petname(ctx, key);
    if (!label)
        label = petname(ctx, pk);
    int mine = (ctx->r && memcmp(pk, notes_replica_public_key(ctx->r), 32) == 0) ||
               (own_person(ctx, me, ownname, sizeof(ownname)) &&
                memcmp(me, key, 32) == 0);
    if (!label && mine)
        label = !linked && ctx->r &&
                        memcmp(pk, notes_replica_public_key(ctx->r), 32) == 0
                    ? notes_replica_name(ctx->r)
                    : claimed;
    if (!label) {
        label = claimed ? claimed : "?";
        snprintf(tags, sizeof(tags), ", unknown key");
    }
    if (!linked && f->contested)
        snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags),
                 ", device claimed by two people");
    if (linked && f->revoked)
        snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags),
                 ", device revoked");
    notes_key_fingerprint(key, fpr);
    /* Escaped (esc.c); a name only claimed also has its parentheses
     * escaped (cli_esc_claim), so the fingerprint is always the first "(...)". */
    char suffix[160], shown[8 * 4 * NOTES_NAME_MAX + 1];
    snprintf(shown, sizeof(shown), "%s",
             strstr(tags, "unknown key") ? cli_esc_claim(label) : cli_esc(label));
    snprintf(suffix, sizeof(suffix), " (%s%s)", fpr, tags);
    /* Too long for `out`: cut the name (on a character), never the key. */
    size_t room = n > strlen(suffix) ? n - strlen(suffix) - 1 : 0;
    size_t len = strlen(shown);
    if (len > room) {
        len = room;
        while (len && ((unsigned char)shown[len] & 0xc0) == 0x80)
            len--;
    }
    snprintf(out, n, "%.*s%s", (int)len, shown, suffix);
}

/* ---- peers: device keys met over the network ---- */

/* A note of `space` (every note when NULL or the space lists none) that
 * knows device key `pk`: its changes carry the name it claims, or a link
 * names it. Up to 16 notes are opened (opening verifies). NULL if none. */
static notes_doc *note_knowing(struct cli_ctx *ctx, const char *space,
                               const uint8_t pk[32])
{
    uint8_t(*ids)[16] = NULL;
    size_t n = 0;
    int from_sync = 0;
    notes_doc *found = NULL;
    if (space && notes_sync_space_notes(ctx->home, space, &ids, &n) == NOTES_OK)
        from_sync = 1;
    if (!n) {
        if (from_sync)
            notes_sync_free(ids);
        from_sync = 0;
        ids = NULL;
        if (!ctx->r || notes_replica_list(ctx->r, &ids, &n) != NOTES_OK)
            return NULL;
    }
    for (size_t i = 0, opened = 0; i < n && opened < 16 && !found; i++) {
        notes_doc *d;
        notes_person_info pi;
        if (notes_doc_open(ctx->r, ids[i], &d) != NOTES_OK)
            continue;
        opened++;
        if (notes_doc_author_name(d, pk) ||
            (notes_doc_person(d, pk, &pi) == NOTES_OK && pi.person))
            found = d;
        else
            notes_doc_free(d);
    }
    if (from_sync)
        notes_sync_free(ids);
    else
        notes_free(ids);
    return found;
}

void cli_peer(struct cli_ctx *ctx, const char *space, const uint8_t pk[32],
              int with_device, char *out, size_t n)
{
    char fpr[NOTES_FPR_STRLEN];
    notes_key_fingerprint(pk, fpr);
    notes_doc *d = ctx->r ? note_knowing(ctx, space, pk) : NULL;
    notes_person_info pi;
    if (d) {
        /* The rule of every other command (cli_author): the person's
         * fingerprint when the device is linked to one, then the device. */
        cli_author(ctx, d, pk, out, n);
        int linked = notes_doc_person(d, pk, &pi) == NOTES_OK && pi.person;
        size_t len = strlen(out);
        /* Inside the parentheses, after the person's fingerprint and tags:
         * "Ana (7rpb-k2bk, device sgly-yzpf)". */
        if (linked && with_device && len && out[len - 1] == ')' && len + 20 < n)
            snprintf(out + len - 1, n - len + 1, ", device %s)", fpr);
        notes_doc_free(d);
        return;
    }
    const char *pet = ctx->r ? petname(ctx, pk) : NULL;
    if (pet)
        snprintf(out, n, "%s (%s)", cli_esc(pet), fpr);
    else /* in no note here yet: no name to show, not even a claimed one */
        snprintf(out, n, "device %s", fpr);
}

void cli_trust_inviter(struct cli_ctx *ctx, const char *space,
                       const uint8_t inviter[32])
{
    if (ctx->r && memcmp(inviter, notes_replica_public_key(ctx->r), 32) == 0)
        return; /* one's own invite */
    notes_doc *d = note_knowing(ctx, space, inviter);
    notes_person_info pi;
    int linked = d && notes_doc_person(d, inviter, &pi) == NOTES_OK && pi.person;
    const uint8_t *key = linked ? pi.person : inviter;
    const char *claimed = linked ? pi.name : d ? notes_doc_author_name(d, inviter)
                                               : NULL;
    char name[NOTES_NAME_MAX + 1], fpr[NOTES_FPR_STRLEN];
    uint8_t keep[32];
    memcpy(keep, key, 32);
    notes_key_fingerprint(keep, fpr);
    /* The code came from the inviter, by a way the user trusts: its key is
     * a fact the user has, and the name it claims is the one they gave. */
    if (claimed && *claimed && !cli_has_controls(claimed))
        snprintf(name, sizeof(name), "%s", claimed);
    else
        snprintf(name, sizeof(name), "inviter of %.50s", space);
    notes_doc_free(d);
    pets_load(ctx);
    if (pets.damaged || notes_petnames_find(&pets, keep) ||
        notes_petnames_find(&pets, inviter))
        return; /* named already (or the file is not to be rewritten) */
    pets_gen++;
    if (notes_petnames_set(&pets, keep, name) != NOTES_OK || pets_save(ctx))
        return; /* pets_save said why; the join itself went well */
    cli_done(ctx, "the inviter is %s (%s), now in your trust list (another "
                  "name: notes trust %s NAME)", cli_esc(name), fpr, fpr);
}

/* ---- notes trust ---- */

/* Resolve KEY: a full "nk..." key, or a fingerprint seen in this replica's
 * notes (as a device or a person). */
static int resolve_key(struct cli_ctx *ctx, const char *spec, uint8_t out[32])
{
    if (notes_key_decode(spec, out) == NOTES_OK)
        return 0;
    uint8_t(*ids)[16] = NULL;
    size_t n, hits = 0;
    uint8_t found[32];
    if (notes_replica_list(ctx->r, &ids, &n) != NOTES_OK)
        return EXIT_SYSTEM;
    notes_link_info *li = NULL;
    size_t nl = 0;
    if (notes_replica_links(ctx->r, &li, &nl) != NOTES_OK)
        nl = 0;
    for (size_t i = 0; i <= n + nl && hits < 2; i++) {
        const uint8_t *cand[2] = {NULL, NULL};
        notes_doc *d = NULL;
        if (i < nl) {
            cand[0] = li[i].device;
            cand[1] = li[i].person;
        } else if (i - nl < n && notes_doc_open(ctx->r, ids[i - nl], &d) != NOTES_OK) {
            continue;
        }
        size_t count = d ? notes_doc_change_count(d) : 0;
        for (size_t c = 0; c < (d ? count : 1) && hits < 2; c++) {
            notes_change_info ci;
            notes_person_info pi;
            if (d) {
                if (notes_doc_change(d, c, &ci) != NOTES_OK)
                    continue;
                cand[0] = ci.author;
                cand[1] = notes_doc_person(d, ci.author, &pi) == NOTES_OK
                              ? pi.person
                              : NULL;
            }
            for (int k = 0; k < 2; k++) {
                char fpr[NOTES_FPR_STRLEN];
                if (!cand[k])
                    continue;
                notes_key_fingerprint(cand[k], fpr);
                if (strcasecmp(fpr, spec) != 0 ||
                    (hits && memcmp(found, cand[k], 32) == 0))
                    continue;
                memcpy(found, cand[k], 32);
                hits++;
            }
        }
        notes_doc_free(d);
    }
    notes_free(li);
    notes_free(ids);
    /* A peer's device seen by the daemon (notes peers) but in no note yet. */
    notes_sync_peers ps;
    if (!hits && notes_sync_peers_read(ctx->home, &ps) == NOTES_OK) {
        for (size_t i = 0; i < ps.npeers && hits < 2; i++) {
            char fpr[NOTES_FPR_STRLEN];
            if (!ps.peers[i].key_known)
                continue;
            notes_key_fingerprint(ps.peers[i].key, fpr);
            if (strcasecmp(fpr, spec) != 0 ||
                (hits && memcmp(found, ps.peers[i].key, 32) == 0))
                continue;
            memcpy(found, ps.peers[i].key, 32);
            hits++;
        }
        notes_sync_peers_clear(&ps);
    }
    if (hits == 1) {
        memcpy(out, found, 32);
        return 0;
    }
    fprintf(stderr, "notes: '%s' is %s; give the full key (nk...), as "
                    "`notes log --json` shows it\n",
            cli_esc(spec), hits ? "the fingerprint of two keys" : "not a key or a known fingerprint");
    return EXIT_USER;
}

int cmd_trust(int argc, char **argv, struct cli_ctx *ctx)
{
    pets_load(ctx);
    if (argc == 1) {
        if (ctx->json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < pets.n; i++) {
                char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
                notes_key_encode(pets.names[i].key, key);
                notes_key_fingerprint(pets.names[i].key, fpr);
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "key", key,
                                                     "fingerprint", fpr, "name",
                                                     pets.names[i].name));
            }
            cli_json_out(arr);
            return 0;
        }
        if (!pets.n)
            printf("no trusted keys yet (notes trust KEY NAME)\n");
        for (size_t i = 0; i < pets.n; i++) {
            char fpr[NOTES_FPR_STRLEN], key[NOTES_KEY_STRLEN];
            notes_key_fingerprint(pets.names[i].key, fpr);
            notes_key_encode(pets.names[i].key, key);
            cli_pad(cli_esc(pets.names[i].name), 20);
            printf(" %s  %s\n", fpr, key);
        }
        return 0;
    }
    uint8_t key[32];
    int ret;
    if (argc == 3 && strcmp(argv[1], "--remove") == 0) {
        if ((ret = resolve_key(ctx, argv[2], key)))
            return ret;
        /* every line naming it (a hand-edited file may hold two) */
        size_t removed = 0;
        pets_gen++;
        while (notes_petnames_set(&pets, key, NULL) == NOTES_OK)
            removed++;
        if (!removed) {
            fprintf(stderr, "notes: '%s' is not in your trust list\n",
                    cli_esc(argv[2]));
            return EXIT_USER;
        }
        return pets_save(ctx);
    }
    if (argc != 3)
        return cli_usage("trust");
    const char *name = argv[2];
    if (!*name || strlen(name) > NOTES_NAME_MAX || cli_has_controls(name)) {
        /* The rule of every name (identity.c): no control characters. */
        fprintf(stderr, "notes: a petname is 1 to %d bytes of UTF-8 without "
                        "control characters\n", NOTES_NAME_MAX);
        return EXIT_USER;
    }
    if ((ret = resolve_key(ctx, argv[1], key)))
        return ret;
    pets_gen++;
    if (notes_petnames_set(&pets, key, name) != NOTES_OK)
        return EXIT_SYSTEM; /* the name passed the same rule above */
    if ((ret = pets_save(ctx)))
        return ret;
    char fpr[NOTES_FPR_STRLEN];
    notes_key_fingerprint(key, fpr);
    cli_done(ctx, "%s is now shown as %s", fpr, cli_esc(name));
    return 0;
}

/* ---- notes device / person ---- */

/* Write this replica's certificates into every note it holds. */
static int publish_all(struct cli_ctx *ctx, size_t *notes_touched)
{
    uint8_t(*ids)[16] = NULL;
    size_t n;
    int rc = notes_replica_list(ctx->r, &ids, &n);
    *notes_touched = 0;
    if (rc)
        return cli_fail(rc, "cannot list notes");
    for (size_t i = 0; i < n; i++) {
        notes_doc *d;
        size_t added = 0;
        if ((rc = notes_doc_open(ctx->r, ids[i], &d)))
            break;
        rc = notes_doc_publish_certs(d, &added);
        if (rc == NOTES_OK && added)
            rc = notes_doc_commit(d, NULL);
        notes_doc_free(d);
        if (rc)
            break;
        *notes_touched += added > 0;
    }
    notes_free(ids);
    return rc ? cli_fail(rc, "cannot write the certificate into the notes") : 0;
}

static int load_person(struct cli_ctx *ctx, notes_identity **p)
{
    const char *pass = NULL;
    if (!notes_replica_has_person(ctx->r)) {
        fprintf(stderr, "notes: this replica holds no person key: run this on "
                        "the device where you ran `notes init` (or import the "
                        "key: notes person import FILE)\n");
        return EXIT_USER;
    }
    if (notes_replica_person_needs_passphrase(ctx->r) &&
        !(pass = cli_passphrase(0))) {
        fprintf(stderr, "notes: the person key is protected; set "
                        "NOTES_PASSPHRASE or run on a terminal\n");
        return EXIT_USER;
    }
    int rc = notes_replica_person_load(ctx->r, pass, p);
    return rc ? cli_fail(rc, "cannot load the person key") : 0;
}

/* DEVICE: a full key, a fingerprint or a unique name prefix of a link. */
static int find_link(struct cli_ctx *ctx, const char *spec, notes_link_info *li,
                     size_t n, size_t *at)
{
    uint8_t key[32];
    int full = notes_key_decode(spec, key) == NOTES_OK;
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        char fpr[NOTES_FPR_STRLEN];
        notes_key_fingerprint(li[i].device, fpr);
        if ((full && memcmp(li[i].device, key, 32) == 0) ||
            strcasecmp(fpr, spec) == 0) {
            *at = i;
            hits++;
        }
    }
    (void)ctx;
    if (hits == 1)
        return 0;
    fprintf(stderr, "notes: no single linked device matches '%s' (see: notes "
                    "device list)\n", cli_esc(spec));
    return EXIT_USER;
}

static int device_list(struct cli_ctx *ctx)
{
    notes_link_info *li;
    size_t n;
    int rc = notes_replica_links(ctx->r, &li, &n);
    if (rc)
        return cli_fail(rc, "cannot read the links");
    json_t *arr = ctx->json ? json_array() : NULL;
    if (!n && !arr)
        printf("this device is linked to no person (notes device add, then "
               "notes device link CODE on your first device)\n");
    for (size_t i = 0; i < n; i++) {
        char dk[NOTES_KEY_STRLEN], df[NOTES_FPR_STRLEN], pk[NOTES_KEY_STRLEN],
            pf[NOTES_FPR_STRLEN], t[40], rt[40] = "";
        notes_key_encode(li[i].device, dk);
        notes_key_fingerprint(li[i].device, df);
        notes_key_encode(li[i].person, pk);
        notes_key_fingerprint(li[i].person, pf);
        cli_time(li[i].time_ms, t, sizeof(t));
        if (li[i].revoked)
            cli_time(li[i].revoked_ms, rt, sizeof(rt));
        if (arr) {
            json_array_append_new(
                arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:s?}",
                               "device", dk, "device_fingerprint", df, "person",
                               pk, "person_fingerprint", pf, "person_name",
                               li[i].person_name, "linked", t, "this_device",
                               li[i].self, "revoked", li[i].revoked, "revoked_at",
                               li[i].revoked ? rt : NULL));
            continue;
        }
        printf("%s  device of %s (%s), linked %s%s%s%s\n", df,
               cli_esc(li[i].person_name),
               pf, t, li[i].self ? ", this device" : "",
               li[i].revoked ? ", REVOKED " : "", rt);
    }
    cli_json_out(arr);
    notes_free(li);
    return 0;
}

int cmd_device(int argc, char **argv, struct cli_ctx *ctx)
{
    if (argc < 2)
        return cli_usage("device");
    const char *sub = argv[1];
    int ret;
    if (strcmp(sub, "list") == 0 && argc == 2)
        return device_list(ctx);
    if (strcmp(sub, "add") == 0 && argc == 2) {
        char *code;
        if ((ret = cli_unlock(ctx)))
            return ret;
        int rc = notes_replica_pair_code(ctx->r, &code);
        if (rc)
            return cli_fail(rc, "cannot make the pairing code");
        char fpr[NOTES_FPR_STRLEN];
        notes_key_fingerprint(notes_replica_public_key(ctx->r), fpr);
        printf("pairing code of this device (%s):\n\n%s\n\n"
               "On a device that holds your person key, run:\n"
               "  notes device link %s\n"
               "then sync: this device's changes show as yours everywhere.\n"
               "Anyone who has this code can link this device to themselves:\n"
               "give it only to your own devices.\n",
               fpr, code, code);
        notes_free(code);
        return 0;
    }
    if ((strcmp(sub, "link") == 0 || strcmp(sub, "revoke") == 0) && argc == 3) {
        notes_identity *p = NULL;
        uint8_t dev[32];
        int rc;
        if ((ret = cli_unlock(ctx)) || (ret = load_person(ctx, &p)))
            return ret;
        if (sub[0] == 'l') {
            rc = notes_replica_link(ctx->r, p, argv[2], dev);
            if (rc) {
                notes_identity_free(p);
                return cli_fail(rc, "cannot link the device");
            }
        } else {
            notes_link_info *li;
            size_t n, at = 0;
            if ((rc = notes_replica_links(ctx->r, &li, &n))) {
                notes_identity_free(p);
                return cli_fail(rc, "cannot read the links");
            }
            ret = find_link(ctx, argv[2], li, n, &at);
            if (!ret)
                memcpy(dev, li[at].device, 32);
            int self = !ret && li[at].self;
            notes_free(li);
            if (ret) {
                notes_identity_free(p);
                return ret;
            }
            if (self) {
                fprintf(stderr, "notes: that is this device; revoke it from "
                                "another of your devices\n");
                notes_identity_free(p);
                return EXIT_USER;
            }
            rc = notes_replica_revoke(ctx->r, p, dev);
            if (rc) {
                notes_identity_free(p);
                return cli_fail(rc, "cannot revoke the device");
            }
        }
        size_t touched;
        char fpr[NOTES_FPR_STRLEN];
        notes_key_fingerprint(dev, fpr);
        ret = publish_all(ctx, &touched);
        if (!ret)
            cli_done(ctx, "%s device %s %s %s; written into %zu note%s (peers "
                          "learn it at the next sync)",
                   sub[0] == 'l' ? "linked" : "revoked", fpr,
                   sub[0] == 'l' ? "to" : "of", cli_esc(notes_identity_name(p)),
                   touched,
                   touched == 1 ? "" : "s");
        notes_identity_free(p);
        return ret;
    }
    return cli_usage("device");
}

int cmd_person(int argc, char **argv, struct cli_ctx *ctx)
{
    if (argc != 3)
        return cli_usage("person");
    if (strcmp(argv[1], "export") == 0) {
        char *src = home_file(ctx, "person");
        char *buf;
        size_t n;
        if (!notes_replica_has_person(ctx->r)) {
            free(src);
            fprintf(stderr, "notes: this replica holds no person key\n");
            return EXIT_USER;
        }
        /* A damaged key must not become the backup: the parser checks
         * the check line, the lines, and an unprotected secret against
         * its public key. (A sealed secret only the passphrase checks.) */
        int enc, rc = src ? notes_identity_file_encrypted(src, &enc) : NOTES_ENOMEM;
        if (rc) {
            free(src);
            return cli_fail(rc, "the person key cannot be exported; nothing "
                                "was written");
        }
        int ret = cli_read_input(src, 1 << 16, &buf, &n);
        free(src);
        if (ret)
            return ret;
        FILE *f = fopen(argv[2], "wx");
        if (!f) {
            free(buf);
            fprintf(stderr, "notes: cannot create '%s': %s\n", argv[2],
                    strerror(errno));
            return errno == EEXIST ? EXIT_USER : EXIT_SYSTEM;
        }
        (void)fchmod(fileno(f), 0600);
        int ok = fwrite(buf, 1, n, f) == n;
        ok = (fclose(f) == 0) && ok;
        free(buf);
        if (!ok) {
            fprintf(stderr, "notes: cannot write '%s'\n", argv[2]);
            return EXIT_SYSTEM;
        }
        printf("person key written to %s (mode 0600%s); keep it offline\n",
               argv[2], notes_replica_person_needs_passphrase(ctx->r)
                            ? ", passphrase-protected"
                            : ", NOT protected: anyone with the file speaks for you");
        return 0;
    }
    if (strcmp(argv[1], "import") == 0) {
        int ret = cli_unlock(ctx);
        const char *pass = NULL;
        int enc = 0;
        if (ret)
            return ret;
        if (notes_identity_file_encrypted(argv[2], &enc) == NOTES_OK && enc &&
            !(pass = cli_passphrase(0))) {
            fprintf(stderr, "notes: the key file is protected; set "
                            "NOTES_PASSPHRASE or run on a terminal\n");
            return EXIT_USER;
        }
        int rc = notes_replica_person_import(ctx->r, argv[2], pass);
        if (rc)
            return cli_fail(rc, "cannot import the person key '%s'", argv[2]);
        size_t touched;
        ret = publish_all(ctx, &touched);
        if (!ret)
            printf("person key imported; this device is linked to it\n");
        return ret;
    }
    return cli_usage("person");
}

/* ---- notes confirm ---- */

int cmd_confirm(int argc, char **argv, struct cli_ctx *ctx)
{
    if (argc != 3)
        return cli_usage("confirm");
    notes_doc *d;
    int ret = cli_open_note(ctx, argv[1], &d);
    if (ret)
        return ret;
    notes_fmt_outline o;
    int rc = notes_fmt_outline_doc(d, &o);
    if (rc) {
        notes_fmt_outline_clear(&o);
        notes_doc_free(d);
        return cli_fail(rc, "cannot read the decisions");
    }
    /* ITEM: its number, id or part of its text, as `notes done` takes it
     * (notes_fmt_item_pick). */
    size_t at;
    if ((rc = notes_fmt_item_pick(&o, argv[2], &at)) || !o.items[at].has_anchor) {
        fprintf(stderr, "notes: %s; see: notes decisions %s\n",
                rc ? cli_esc(notes_fmt_last_detail())
                   : "the item has no id yet (not committed)",
                cli_esc(argv[1]));
        notes_fmt_outline_clear(&o);
        notes_doc_free(d);
        return EXIT_USER;
    }
    const notes_fmt_item *it = &o.items[at];
    rc = notes_doc_confirm(d, it->cp_start, it->owner ? it->owner : "",
                           it->text);
    ret = rc ? cli_fail(rc, "cannot confirm the item")
             : cli_commit(d, "the confirmation");
    if (!ret)
        printf("confirmed %s %s: %s%s%s\n", cli_esc(it->id),
               it->kind == NOTES_FMT_ITEM_TASK ? "(action item)" : "(decision)",
               it->owner ? cli_esc(it->owner) : "", it->owner ? ": " : "",
               cli_esc(it->text));
    notes_fmt_outline_clear(&o);
    notes_doc_free(d);
    return ret;
}
