/*
 * scale_space.c: notes-bench-scale-space, for tests/bench/run_scale.sh.
 *
 *   notes-bench-scale-space HOME SPACE
 *
 * Puts every note of replica HOME into a new space SPACE at once: the
 * space made with notes_sync_space_create, its list of notes
 * (spaces/SPACE.notes, sync/README.md) written in one go with its check
 * line. `notes space add` does the same one note at a time, each a
 * rewrite of the whole list with an fsync: 10,000 of those would measure
 * the disk, not the sync the script is after.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notes.h"
#include "notes_sync.h"

static int die(const char *what, int rc)
{
    fprintf(stderr, "notes-bench-scale-space: %s: %s (%s)\n", what,
            notes_sync_strerror(rc), notes_sync_last_detail());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: notes-bench-scale-space HOME SPACE\n");
        return 2;
    }
    const char *home = argv[1], *space = argv[2];
    notes_replica *r;
    uint8_t(*ids)[16];
    size_t n;
    int rc;
    if ((rc = notes_replica_open(home, &r)))
        return die("cannot open the replica", rc);
    if ((rc = notes_replica_list(r, &ids, &n)))
        return die("cannot list the notes", rc);
    if ((rc = notes_sync_space_create(home, space, NULL)))
        return die("cannot create the space", rc);
    /* notes_replica_list gives them sorted, as the file wants them. */
    size_t len = 20 + n * 33;
    char *buf = malloc(len + NOTES_CHECK_LINE_LEN + 1);
    if (!buf)
        return die("out of memory", NOTES_ENOMEM);
    memcpy(buf, "notes-space-notes 1\n", 20);
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 16; k++)
            snprintf(buf + 20 + i * 33 + 2 * (size_t)k, 3, "%02x", ids[i][k]);
        buf[20 + i * 33 + 32] = '\n';
    }
    notes_check_line(buf, len, buf + len);
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/spaces/%s.notes", home, space);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t all = len + NOTES_CHECK_LINE_LEN;
    if (fd < 0 || write(fd, buf, all) != (ssize_t)all || fsync(fd) != 0 ||
        close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "notes-bench-scale-space: cannot write %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    printf("%zu notes in space %s\n", n, space);
    free(buf);
    notes_free(ids);
    notes_replica_free(r);
    return 0;
}
