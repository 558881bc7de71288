/*
 * cmd_identity.c: `notes init` and `notes whoami`.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_passphrase(int confirm);

int cmd_init(int argc, char **argv, struct cli_ctx *ctx)
{
    const char *name = getenv("USER");
    const char *pass = NULL;
    int protect = getenv("NOTES_PASSPHRASE") != NULL, device_only = 0;
    notes_replica *r;

    const struct cli_opt opts[] = {{"--name", &name, NULL},
                                   {"--protect", NULL, &protect},
                                   {"--device", NULL, &device_only},
                                   {NULL, NULL, NULL}};
    int rc = cli_parse_args(argc, argv, "init", opts, NULL, 0, 0);
    if (rc)
        return rc;
    if (!name || !*name)
        name = "me";
    if (protect && !(pass = cli_passphrase(1))) {
        fprintf(stderr, "notes: no passphrase given (set NOTES_PASSPHRASE or "
                        "run on a terminal)\n");
        return EXIT_USER;
    }
    rc = notes_replica_create(ctx->home, name, pass, &r);
    if (rc == NOTES_EEXIST) {
        fprintf(stderr, "notes: '%s' already holds an identity (see: notes "
                        "whoami); set NOTES_HOME for another replica\n",
                ctx->home);
        return EXIT_USER;
    }
    if (rc)
        return cli_fail(rc, "cannot create the replica in '%s'", ctx->home);
    char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
    notes_key_encode(notes_replica_public_key(r), key);
    notes_key_fingerprint(notes_replica_public_key(r), fpr);
    printf("created replica %s\nidentity %s (%s)%s\nkey %s\n", cli_esc(ctx->home),
           cli_esc(notes_replica_name(r)), fpr, pass && *pass ? ", passphrase-protected" : "",
           key);
    if (!device_only) {
        /* The person key is made with the device unlocked: it signs its
         * consent to be linked right away. */
        notes_link_info *li = NULL;
        size_t nl = 0;
        if ((rc = notes_replica_unlock(r, pass)) ||
            (rc = notes_replica_person_create(r, name, pass)) ||
            (rc = notes_replica_links(r, &li, &nl)) || nl != 1) {
            notes_free(li);
            notes_replica_free(r);
            return cli_fail(rc ? rc : NOTES_EIO, "cannot create the person key");
        }
        notes_key_fingerprint(li[0].person, fpr);
        printf("person %s (%s), key in %s/person: back it up with "
               "`notes person export FILE`\n", li[0].person_name, fpr,
               ctx->home);
        notes_free(li);
    } else {
        printf("no person key on this device: run `notes device add` and link "
               "it from your first device\n");
    }
    notes_replica_free(r);
    return 0;
}

int cmd_whoami(int argc, char **argv, struct cli_ctx *ctx)
{
    (void)argv;
    if (argc != 1)
        return cli_usage("whoami");
    char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
    char pkey[NOTES_KEY_STRLEN] = "", pfpr[NOTES_FPR_STRLEN] = "";
    const char *pname = NULL;
    notes_link_info *li = NULL;
    size_t n = 0;
    notes_key_encode(notes_replica_public_key(ctx->r), key);
    notes_key_fingerprint(notes_replica_public_key(ctx->r), fpr);
    int rc = notes_replica_links(ctx->r, &li, &n);
    if (rc)
        return cli_fail(rc, "cannot read the links");
    for (size_t i = 0; i < n; i++)
        if (li[i].self) {
            notes_key_encode(li[i].person, pkey);
            notes_key_fingerprint(li[i].person, pfpr);
            pname = li[i].person_name;
            if (li[i].revoked)
                pname = NULL; /* this device no longer speaks for them */
        }
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "name",
                              notes_replica_name(ctx->r), "key", key,
                              "fingerprint", fpr, "home", ctx->home,
                              "protected",
                              notes_replica_needs_passphrase(ctx->r),
                              "holds_person_key",
                              notes_replica_has_person(ctx->r));
        if (pname)
            json_object_set_new(o, "person",
                                json_pack("{s:s, s:s, s:s}", "name", pname,
                                          "key", pkey, "fingerprint", pfpr));
        cli_json_out(o);
    } else {
        printf("%s\nkey %s\nfingerprint %s\n", notes_replica_name(ctx->r), key,
               fpr);
        if (pname)
            printf("person %s (%s)%s\n", cli_esc(pname), pfpr,
                   notes_replica_has_person(ctx->r)
                       ? ", person key on this device"
                       : "");
        else
            printf("person: none (notes device add, then link it from your "
                   "first device)\n");
    }
    notes_free(li);
    return 0;
}
