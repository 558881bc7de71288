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
    int protect = getenv("NOTES_PASSPHRASE") != NULL;
    notes_replica *r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0) {
            if (!(name = cli_opt_value(&i, argc, argv)))
                return cli_usage("init");
        } else if (strcmp(argv[i], "--protect") == 0) {
            protect = 1;
        } else {
            return cli_usage("init");
        }
    }
    if (!name || !*name)
        name = "me";
    if (protect && !(pass = cli_passphrase(1))) {
        fprintf(stderr, "notes: no passphrase given (set NOTES_PASSPHRASE or "
                        "run on a terminal)\n");
        return EXIT_USER;
    }
    int rc = notes_replica_create(ctx->home, name, pass, &r);
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
    printf("created replica %s\nidentity %s (%s)%s\nkey %s\n", ctx->home,
           notes_replica_name(r), fpr, pass ? ", passphrase-protected" : "",
           key);
    notes_replica_close(r);
    return 0;
}

int cmd_whoami(int argc, char **argv, struct cli_ctx *ctx)
{
    (void)argv;
    if (argc != 1)
        return cli_usage("whoami");
    char key[NOTES_KEY_STRLEN], fpr[NOTES_FPR_STRLEN];
    notes_key_encode(notes_replica_public_key(ctx->r), key);
    notes_key_fingerprint(notes_replica_public_key(ctx->r), fpr);
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "name",
                              notes_replica_name(ctx->r), "key", key,
                              "fingerprint", fpr, "home", ctx->home,
                              "protected",
                              notes_replica_needs_passphrase(ctx->r));
        json_dumpf(o, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(o);
    } else {
        printf("%s\nkey %s\nfingerprint %s\n", notes_replica_name(ctx->r), key,
               fpr);
    }
    return 0;
}
