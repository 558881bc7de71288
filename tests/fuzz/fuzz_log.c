/*
 * fuzz_log.c: loading a note's log file from disk (records, checksums,
 * zstd, packs, the changes inside). The input is written after a valid
 * header, so the fuzzer works on records; a replica around it opens the
 * note. Any input: no crash, no hang; what opens verifies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notes.h"
#include "store.h"

static char home[256];
static uint8_t docid[16];
static notes_replica *rep;

static void cleanup(void)
{
    char cmd[300];
    notes_replica_free(rep);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_log: could not remove %s\n", home);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    if (!rep) {
        snprintf(home, sizeof(home), "/tmp/notes-fuzzlog-%ld", (long)getpid());
        if (notes_init() != NOTES_OK ||
            notes_replica_create(home, "fuzz", NULL, &rep) != NOTES_OK)
            abort();
        atexit(cleanup);
        memset(docid, 0x11, sizeof(docid));
    }
    snprintf(path, sizeof(path), "%s/notes/11111111111111111111111111111111.log",
             home);
    /* A fresh log: the real header, then the fuzzer's bytes. */
    unlink(path);
    struct notes__log *lg;
    if (notes__log_open(path, docid, 1, &lg) != NOTES_OK)
        abort();
    notes__log_close(lg);
    FILE *f = fopen(path, "ab");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    /* No state file: nothing acknowledged, so every byte is the fuzzer's. */
    char st[600];
    snprintf(st, sizeof(st), "%s/notes/11111111111111111111111111111111.state",
             home);
    unlink(st);
    notes_doc *d;
    if (notes_doc_open(rep, docid, &d) == NOTES_OK) {
        size_t n;
        (void)notes_doc_text(d, &n);
        notes_doc_free(d);
    }
    return 0;
}
