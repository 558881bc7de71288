/*
 * remote_sync.c: `notes sync REMOTE` (docs/remote.md). Fetch every device
 * ref of the space into the bare mirror, check each against what was seen
 * of it before (rewound, deleted, swapped, garbage, replayed), open and
 * verify the new packs, merge their bundles with notes_doc_merge as a peer
 * session does (nothing unverified is stored), then push what the remote
 * lacks as one new pack on this device's own ref.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote_state.h"

#define DEFAULT_COMPACT_ABOVE (8ull << 20)
#define LIST_MAX (64u << 20)

/* One entry of a device ref's tree. */
struct tree_ent {
    char oid[REMOTE_OID_MAX + 1];
    char name[2 * REMOTE_PACK_NAME_LEN + 6]; /* HEX.pack */
    uint64_t size;
};

/* A device ref of the space on the remote. */
struct device {
    char dev[2 * REMOTE_TAG_LEN + 1];
    char commit[REMOTE_OID_MAX + 1];
    struct tree_ent *ents; /* its valid pack files */
    size_t nents;
    uint64_t bytes;
};

/* A pack accepted for merging. */
struct accepted {
    struct remote_pack pack;
    char oid[REMOTE_OID_MAX + 1];
    char name[2 * REMOTE_PACK_NAME_LEN + 6];
    const char *dev; /* borrowed from its struct device */
    size_t done;     /* entries merged or refused */
    uint8_t *state;  /* per entry: 0 pending, 1 merged, 2 refused */
    int failed;
};

/* Extra "the remote holds these" per note, from changes merged now. */
struct extra {
    uint8_t id[16];
    uint8_t (*ids)[32];
    size_t n;
};

struct ctx {
    notes_replica *r;
    const char *home;
    notes_sync_remote remote;
    notes_sync_space space;
    struct remote_keys keys;
    char mydev[2 * REMOTE_TAG_LEN + 1];
    char *mirror, *statepath;
    char gitdir_arg[4200];
    char refprefix[128];    /* refs/notes/SPACETAG/ */
    char mirrorprefix[128]; /* refs/notes-remote/SPACETAG/ */
    struct remote_config cfg;
    struct remote_state st;
    notes_sync_remote_report *rep;
    struct device *devs;
    size_t ndevs;
    struct extra *extras;
    size_t nextras;
};

static void problem(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void problem(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    if (c->rep->nproblems < NOTES_SYNC_REMOTE_PROBLEMS_MAX) {
        va_start(ap, fmt);
        vsnprintf(c->rep->problems[c->rep->nproblems],
                  sizeof(c->rep->problems[0]), fmt, ap);
        va_end(ap);
    }
    c->rep->nproblems++;
}

/* Run git with --git-dir of the mirror; argv after "git --git-dir=M". */
static int git(struct ctx *c, const void *in, size_t nin, size_t max_out,
               notes_sync_git_result *res, ...)
{
    const char *argv[24];
    size_t k = 0;
    va_list ap;
    argv[k++] = "git";
    argv[k++] = c->gitdir_arg;
    va_start(ap, res);
    while (k < 23 && (argv[k] = va_arg(ap, const char *)))
        k++;
    va_end(ap);
    argv[k] = NULL;
    return remote_git(c->mirror, argv, in, nin, max_out, res);
}

/* git ran but failed: NOTES_SYNC_EREMOTE with what and git's reason. */
static int git_failed(notes_sync_git_result *g, const char *what)
{
    char why[420];
    notes_sync__detail("%s: %s", what, remote_git_why(g, why, sizeof(why)));
    remote_git_result_free(g);
    return NOTES_SYNC_EREMOTE;
}

static int ensure_mirror(struct ctx *c)
{
    char *d = remote__path(c->home, "", ""), head[4200];
    struct stat st;
    notes_sync_git_result g;
    int rc;
    if (!d)
        return NOTES_ENOMEM;
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
        notes_sync__detail("cannot create '%s': %s", d, strerror(errno));
        free(d);
        return NOTES_EIO;
    }
    free(d);
    snprintf(head, sizeof(head), "%s/HEAD", c->mirror);
    if (stat(head, &st) == 0)
        return NOTES_OK;
    if (mkdir(c->mirror, 0700) != 0 && errno != EEXIST) {
        notes_sync__detail("cannot create '%s': %s", c->mirror,
                           strerror(errno));
        return NOTES_EIO;
    }
    {
        const char *argv[] = {"git", "init", "--bare", "-q", c->mirror, NULL};
        if ((rc = remote_git(c->mirror, argv, NULL, 0, 1u << 20, &g)))
            return rc;
    }
    if (g.status != 0)
        return git_failed(&g, "cannot create the mirror");
    remote_git_result_free(&g);
    return NOTES_OK;
}

static int is_hex(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static int is_oid(const char *s)
{
    size_t n = strlen(s);
    return (n == 40 || n == 64) && is_hex(s, n);
}

static struct remote_seen *seen_find(struct ctx *c, const char *dev)
{
    for (size_t i = 0; i < c->cfg.nseen; i++)
        if (strcmp(c->cfg.seen[i].remote, c->remote.name) == 0 &&
            strcmp(c->cfg.seen[i].dev, dev) == 0)
            return &c->cfg.seen[i];
    return NULL;
}

static int seen_set(struct ctx *c, const char *dev, const char *commit,
                    uint64_t seq)
{
    struct remote_seen *s = seen_find(c, dev);
    if (!s) {
        struct remote_seen *v =
            realloc(c->cfg.seen, (c->cfg.nseen + 1) * sizeof(*v));
        if (!v)
            return NOTES_ENOMEM;
        c->cfg.seen = v;
        s = &v[c->cfg.nseen++];
        memset(s, 0, sizeof(*s));
        snprintf(s->remote, sizeof(s->remote), "%s", c->remote.name);
        snprintf(s->dev, sizeof(s->dev), "%s", dev);
    }
    snprintf(s->commit, sizeof(s->commit), "%s", commit);
    s->seq = seq;
    return NOTES_OK;
}

static struct device *dev_find(struct ctx *c, const char *dev)
{
    for (size_t i = 0; i < c->ndevs; i++)
        if (strcmp(c->devs[i].dev, dev) == 0)
            return &c->devs[i];
    return NULL;
}

/* The device refs fetched into the mirror. */
static int list_devices(struct ctx *c)
{
    notes_sync_git_result g;
    char fmt[] = "--format=%(objectname) %(refname)";
    int rc = git(c, NULL, 0, LIST_MAX, &g, "for-each-ref", fmt,
                 c->mirrorprefix, (char *)NULL);
    if (rc)
        return rc;
    if (g.status != 0)
        return git_failed(&g, "cannot list the mirror's refs");
    for (char *p = g.out; *p;) {
        char *nl = strchr(p, '\n'), *sp;
        if (!nl)
            break;
        *nl = '\0';
        sp = strchr(p, ' ');
        if (sp) {
            const char *ref = sp + 1, *dev = ref + strlen(c->mirrorprefix);
            *sp = '\0';
            if (strncmp(ref, c->mirrorprefix, strlen(c->mirrorprefix)) != 0 ||
                !is_hex(dev, 2 * REMOTE_TAG_LEN) || !is_oid(p)) {
                problem(c, "the remote holds ref '%.120s%s', which no device "
                           "of notes writes; ignored", c->refprefix,
                        strncmp(ref, c->mirrorprefix,
                                strlen(c->mirrorprefix)) == 0
                            ? dev : "...");
            } else {
                struct device *v =
                    realloc(c->devs, (c->ndevs + 1) * sizeof(*v));
                if (!v) {
                    remote_git_result_free(&g);
                    return NOTES_ENOMEM;
                }
                c->devs = v;
                memset(&v[c->ndevs], 0, sizeof(*v));
                snprintf(v[c->ndevs].dev, sizeof(v->dev), "%s", dev);
                snprintf(v[c->ndevs].commit, sizeof(v->commit), "%s", p);
                c->ndevs++;
            }
        }
        p = nl + 1;
    }
    remote_git_result_free(&g);
    return NOTES_OK;
}

/* A pack file's name: 32 hex digits and ".pack". */
static int pack_name_ok(const char *name)
{
    return strlen(name) == 2 * REMOTE_PACK_NAME_LEN + 5 &&
           strspn(name, "0123456789abcdef") == 2 * REMOTE_PACK_NAME_LEN &&
           strcmp(name + 2 * REMOTE_PACK_NAME_LEN, ".pack") == 0;
}

/* ls-tree -l -z of a device's commit: its pack files (others reported). */
static int read_tree(struct ctx *c, struct device *d)
{
    notes_sync_git_result g;
    char spec[REMOTE_OID_MAX + 8];
    int rc;
    snprintf(spec, sizeof(spec), "%s^{tree}", d->commit);
    if ((rc = git(c, NULL, 0, LIST_MAX, &g, "ls-tree", "-l", "-z", spec,
                  (char *)NULL)))
        return rc;
    if (g.status != 0) {
        char why[420];
        problem(c, "device ref %.12s: commit %.12s is not a commit with a "
                   "tree (%s); ignored", d->dev, d->commit,
                remote_git_why(&g, why, sizeof(why)));
        remote_git_result_free(&g);
        return NOTES_OK;
    }
    for (size_t off = 0; off < g.nout;) {
        char *e = g.out + off, *tab = strchr(e, '\t');
        size_t len = strlen(e);
        char mode[16], type[16], oid[REMOTE_OID_MAX + 2], size[32];
        off += len + 1;
        if (!tab || sscanf(e, "%15s %15s %65s %31s", mode, type, oid, size) !=
                        4)
            continue;
        const char *name = tab + 1;
        if (strcmp(type, "blob") != 0 || !pack_name_ok(name) || !is_oid(oid)) {
            problem(c, "device ref %.12s holds '%.60s', which is not a pack "
                       "(garbage); ignored", d->dev, name);
            continue;
        }
        unsigned long long sz = strtoull(size, NULL, 10);
        if (sz > REMOTE_PACK_MAX) {
            problem(c, "device ref %.12s: %s is %llu bytes, over the limit "
                       "of a pack; ignored", d->dev, name, sz);
            continue;
        }
        struct tree_ent *v = realloc(d->ents, (d->nents + 1) * sizeof(*v));
        if (!v) {
            remote_git_result_free(&g);
            return NOTES_ENOMEM;
        }
        d->ents = v;
        memset(&v[d->nents], 0, sizeof(*v));
        memcpy(v[d->nents].oid, oid, strlen(oid) + 1); /* is_oid */
        memcpy(v[d->nents].name, name, strlen(name) + 1); /* checked */
        v[d->nents].size = sz;
        d->bytes += sz;
        d->nents++;
        if (d->nents > REMOTE_PACKS_MAX)
            break;
    }
    remote_git_result_free(&g);
    return NOTES_OK;
}

/* The blobs named (n oids), by `git cat-file --batch`: OUT blobs[i], sizes
 * (NULL for a missing one). */
static int read_blobs(struct ctx *c, char (*oids)[REMOTE_OID_MAX + 1],
                      size_t n, uint8_t **blobs, size_t *sizes,
                      uint64_t max_total)
{
    struct notes_buf in;
    notes_sync_git_result g;
    int rc;
    notes__buf_init(&in, SIZE_MAX / 2);
    for (size_t i = 0; i < n; i++)
        if ((rc = notes__buf_printf(&in, "%s\n", oids[i]))) {
            notes__buf_release(&in);
            return rc;
        }
    rc = git(c, in.data, in.len, (size_t)max_total + n * 128 + 1, &g,
             "cat-file", "--batch", (char *)NULL);
    notes__buf_release(&in);
    if (rc)
        return rc;
    if (g.status != 0)
        return git_failed(&g, "cannot read the fetched packs");
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        char *nl = memchr(g.out + off, '\n', g.nout - off);
        char oid[REMOTE_OID_MAX + 2], type[16];
        unsigned long long sz = 0;
        blobs[i] = NULL;
        sizes[i] = 0;
        if (!nl)
            break;
        *nl = '\0';
        int k = sscanf(g.out + off, "%65s %15s %llu", oid, type, &sz);
        off = (size_t)(nl - g.out) + 1;
        if (k != 3 || strcmp(type, "blob") != 0)
            continue; /* "OID missing" */
        if (sz > g.nout - off) {
            remote_git_result_free(&g);
            notes_sync__detail("git cat-file: output cut short");
            return NOTES_SYNC_EREMOTE;
        }
        if (!(blobs[i] = malloc(sz ? sz : 1))) {
            remote_git_result_free(&g);
            return NOTES_ENOMEM;
        }
        memcpy(blobs[i], g.out + off, sz);
        sizes[i] = (size_t)sz;
        off += sz + 1;
    }
    remote_git_result_free(&g);
    return NOTES_OK;
}

/* Whether pack file `name` is among the n names of a manifest. */
static int listed_by(const uint8_t (*names)[REMOTE_PACK_NAME_LEN], size_t n,
                     const char *name)
{
    for (size_t k = 0; k < n; k++) {
        char h[2 * REMOTE_PACK_NAME_LEN + 1];
        notes__hex(h, names[k], REMOTE_PACK_NAME_LEN);
        if (strncmp(h, name, 2 * REMOTE_PACK_NAME_LEN) == 0)
            return 1;
    }
    return 0;
}

/*
 * Check one other device's ref and open its new packs. Accepted packs are
 * appended to *acc; what is wrong is a problem and ignored. *newest: the
 * number of its newest pack (0: none readable).
 */
static int examine_device(struct ctx *c, struct device *d,
                          struct accepted **acc, size_t *nacc)
{
    struct remote_seen *seen = seen_find(c, d->dev);
    char(*oids)[REMOTE_OID_MAX + 1] = NULL;
    uint8_t **blobs = NULL;
    size_t *sizes = NULL, nnew = 0;
    struct remote_pack *opened = NULL;
    size_t *which = NULL;
    uint8_t *listed = NULL;
    uint64_t newest = 0, total = 0;
    int newest_is_new = -1, rc = NOTES_OK;
    if (seen && strcmp(seen->commit, d->commit) == 0)
        return NOTES_OK; /* nothing new on this ref */
    oids = calloc(d->nents + 1, sizeof(*oids));
    which = calloc(d->nents + 1, sizeof(*which));
    if (!oids || !which) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < d->nents; i++) {
        const struct remote_state_pack *k =
            remote_state_pack_find(&c->st, d->ents[i].oid);
        if (k) {
            if (k->seq > newest) {
                newest = k->seq;
                newest_is_new = -1;
            }
            continue;
        }
        snprintf(oids[nnew], sizeof(oids[0]), "%s", d->ents[i].oid);
        which[nnew++] = i;
        total += d->ents[i].size;
    }
    blobs = calloc(nnew + 1, sizeof(*blobs));
    sizes = calloc(nnew + 1, sizeof(*sizes));
    opened = calloc(nnew + 1, sizeof(*opened));
    listed = calloc(nnew + 1, 1);
    if (!blobs || !sizes || !opened || !listed) {
        rc = NOTES_ENOMEM;
        goto out;
    }
    if (nnew && (rc = read_blobs(c, oids, nnew, blobs, sizes, total)))
        goto out;
    for (size_t j = 0; j < nnew; j++) {
        const struct tree_ent *e = &d->ents[which[j]];
        char tag[2 * REMOTE_TAG_LEN + 1], self[2 * REMOTE_PACK_NAME_LEN + 1];
        if (!blobs[j]) {
            problem(c, "device ref %.12s: %s is missing from what was "
                       "fetched; ignored", d->dev, e->name);
            continue;
        }
        c->rep->packs_read++;
        c->rep->bytes_fetched += sizes[j];
        if (remote_pack_open(&c->keys, blobs[j], sizes[j], &opened[j])) {
            problem(c, "device ref %.12s: %s %s; ignored", d->dev, e->name,
                    notes_sync_last_detail());
            continue;
        }
        remote_device_tag(c->space.secret, opened[j].device, tag);
        notes__hex(self, opened[j].names[0], REMOTE_PACK_NAME_LEN);
        if (strcmp(tag, d->dev) != 0) {
            problem(c, "device ref %.12s: %s was written by another device "
                       "(%.12s): refs swapped or a pack moved; ignored",
                    d->dev, e->name, tag);
            remote_pack_clear(&opened[j]);
        } else if (strncmp(self, e->name, 2 * REMOTE_PACK_NAME_LEN) != 0) {
            problem(c, "device ref %.12s: %s was written as %s.pack: a "
                       "pack renamed or copied; ignored", d->dev, e->name,
                    self);
            remote_pack_clear(&opened[j]);
        } else if (opened[j].seq > newest) {
            newest = opened[j].seq;
            newest_is_new = (int)j;
        }
    }
    /* Rewound: the ref's newest pack is older than one seen before. Keep
     * what was seen (so it is said again until the device pushes anew);
     * its changes stay here either way. */
    if (seen && newest < seen->seq && newest == 0) {
        problem(c, "device ref %.12s was rewound or emptied: it holds no "
                   "pack of its device, but #%llu was seen (commit %.12s); "
                   "the changes seen stay here", d->dev,
                (unsigned long long)seen->seq, seen->commit);
    } else if (seen && newest < seen->seq) {
        problem(c, "device ref %.12s was rewound: its newest pack is #%llu, "
                   "but #%llu was seen (commit %.12s); the changes seen "
                   "stay here", d->dev, (unsigned long long)newest,
                (unsigned long long)seen->seq, seen->commit);
    }
    /* The newest pack lists the packs its ref holds with it (the ref's
     * manifest: the new top's, else the one kept from the last top seen):
     * any other pack there is an old one replayed, or one put there by
     * someone else. Packs read before are checked too. */
    const uint8_t(*man)[REMOTE_PACK_NAME_LEN] = NULL;
    size_t nman = 0;
    if (newest_is_new >= 0) {
        man = (const uint8_t(*)[REMOTE_PACK_NAME_LEN])opened[newest_is_new]
                  .names;
        nman = opened[newest_is_new].nnames;
        if ((rc = remote_state_set_top(&c->st, d->dev, man, nman)))
            goto out;
    } else {
        const struct remote_state_top *t =
            remote_state_top_find(&c->st, d->dev);
        if (t) {
            man = (const uint8_t(*)[REMOTE_PACK_NAME_LEN])t->names;
            nman = t->n;
        }
    }
    for (size_t i = 0; man && i < d->nents; i++)
        if (remote_state_pack_find(&c->st, d->ents[i].oid) &&
            !listed_by(man, nman, d->ents[i].name))
            problem(c, "device ref %.12s: %s is not among the packs the "
                       "device's newest pack (#%llu) lists: an old pack "
                       "replayed; ignored", d->dev, d->ents[i].name,
                    (unsigned long long)newest);
    /* Decide for every pack before any is moved out of opened[]. */
    for (size_t j = 0; j < nnew; j++)
        listed[j] = man && listed_by(man, nman, d->ents[which[j]].name);
    for (size_t j = 0; j < nnew; j++) {
        struct remote_pack *p = &opened[j];
        const struct tree_ent *e = &d->ents[which[j]];
        if (!p->names)
            continue;
        if (!listed[j]) {
            problem(c, "device ref %.12s: %s (pack #%llu) is not among the "
                       "packs the device's newest pack (#%llu) lists: an "
                       "old pack replayed; ignored", d->dev, e->name,
                    (unsigned long long)p->seq, (unsigned long long)newest);
            remote_pack_clear(p);
            continue;
        }
        struct accepted *v = realloc(*acc, (*nacc + 1) * sizeof(*v));
        if (!v) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        *acc = v;
        memset(&v[*nacc], 0, sizeof(*v));
        v[*nacc].pack = *p;
        memset(p, 0, sizeof(*p));
        snprintf(v[*nacc].oid, sizeof(v->oid), "%s", e->oid);
        snprintf(v[*nacc].name, sizeof(v->name), "%s", e->name);
        v[*nacc].dev = d->dev;
        if (!(v[*nacc].state = calloc(v[*nacc].pack.nentries + 1, 1))) {
            remote_pack_clear(&v[*nacc].pack);
            rc = NOTES_ENOMEM;
            goto out;
        }
        (*nacc)++;
    }
    if (newest_is_new >= 0) {
        const struct remote_pack *top = NULL;
        for (size_t k = 0; k < *nacc; k++)
            if ((*acc)[k].dev == d->dev &&
                (*acc)[k].pack.seq == newest)
                top = &(*acc)[k].pack;
        /* Packs the newest one lists that the ref lacks. */
        for (size_t k = 0; top && k < top->nnames; k++) {
            char h[2 * REMOTE_PACK_NAME_LEN + 6];
            int here = 0;
            notes__hex(h, top->names[k], REMOTE_PACK_NAME_LEN);
            memcpy(h + 2 * REMOTE_PACK_NAME_LEN, ".pack", 6);
            for (size_t i = 0; i < d->nents; i++)
                here |= strcmp(d->ents[i].name, h) == 0;
            if (!here)
                problem(c, "device ref %.12s: %s, listed by its newest pack, "
                           "is missing (deleted on the remote)", d->dev, h);
        }
    }
    if (!seen || newest >= seen->seq)
        rc = seen_set(c, d->dev, d->commit, newest);
out:
    for (size_t j = 0; j < nnew && blobs; j++) {
        free(blobs[j]);
        if (opened)
            remote_pack_clear(&opened[j]);
    }
    free(blobs);
    free(sizes);
    free(opened);
    free(listed);
    free(oids);
    free(which);
    return rc;
}

static struct extra *extra_get(struct ctx *c, const uint8_t id[16], int make)
{
    for (size_t i = 0; i < c->nextras; i++)
        if (memcmp(c->extras[i].id, id, 16) == 0)
            return &c->extras[i];
    if (!make)
        return NULL;
    struct extra *v = realloc(c->extras, (c->nextras + 1) * sizeof(*v));
    if (!v)
        return NULL;
    c->extras = v;
    memset(&v[c->nextras], 0, sizeof(*v));
    memcpy(v[c->nextras].id, id, 16);
    return &v[c->nextras++];
}

/*
 * Merge one bundle as a peer session does (session_in.c): a note of this
 * space, or new here (listed in the space first, taken out again if its
 * changes are refused); never a note of another space or a personal one.
 * NOTES_EMISSINGDEP: try again after the other packs.
 */
static int merge_entry(struct ctx *c, const struct remote_entry *e,
                       char *why, size_t cap)
{
    char other[NOTES_SPACE_NAME_MAX + 1], hex[33];
    notes_doc *d = NULL;
    size_t added = 0, before;
    int rc, isnew = 0;
    notes__hex(hex, e->id, 16);
    /* Which note a change belongs to is part of what it signs: a bundle
     * of another note's changes does not merge here (notes_doc_merge). */
    if ((rc = notes_sync_space_of_note(c->home, e->id, other))) {
        snprintf(why, cap, "note %.8s: %s", hex, notes_sync_last_detail());
        return rc;
    }
    if (strcmp(other, c->space.name) != 0) {
        if (strcmp(other, NOTES_SPACE_DEFAULT) != 0) {
            snprintf(why, cap, "note %.8s belongs to space '%s' here; "
                     "refused", hex, other);
            return NOTES_EPERM;
        }
        rc = notes_doc_open(c->r, e->id, &d);
        notes_doc_free(d);
        d = NULL;
        if (rc == NOTES_OK) {
            snprintf(why, cap, "note %.8s is a personal note here; refused",
                     hex);
            return NOTES_EPERM;
        }
        if (rc != NOTES_ENOTFOUND) {
            snprintf(why, cap, "note %.8s: %s", hex, notes_last_detail());
            return rc;
        }
        isnew = 1;
        if ((rc = notes_sync_space_add_note(c->home, c->space.name, e->id))) {
            snprintf(why, cap, "note %.8s: %s", hex, notes_sync_last_detail());
            return rc;
        }
        rc = notes_doc_create_id(c->r, e->id, &d);
    } else {
        rc = notes_doc_open(c->r, e->id, &d);
        if (rc == NOTES_ENOTFOUND)
            rc = notes_doc_create_id(c->r, e->id, &d);
    }
    if (rc) {
        snprintf(why, cap, "note %.8s: %s", hex, notes_last_detail());
        goto fail;
    }
    before = notes_doc_change_count(d);
    rc = notes_doc_merge(d, e->bundle, e->n, &added);
    if (rc) {
        snprintf(why, cap, "note %.8s: bundle refused, nothing of it stored: "
                 "%s", hex, notes_last_detail());
        goto fail;
    }
    if (added) {
        /* A note in several packs (one per device) counts once. */
        if (!extra_get(c, e->id, 0))
            c->rep->notes_received++;
        struct extra *x = extra_get(c, e->id, 1);
        size_t now = notes_doc_change_count(d);
        if (x) {
            uint8_t(*v)[32] = realloc(x->ids, (x->n + now - before) * 32);
            if (v) {
                x->ids = v;
                for (size_t i = before; i < now; i++) {
                    notes_change_info ci;
                    if (notes_doc_change(d, i, &ci) == NOTES_OK)
                        memcpy(x->ids[x->n++], ci.id, 32);
                }
            }
        }
        c->rep->changes_received += added;
        c->rep->notes_created += (uint64_t)isnew;
    }
    notes_doc_free(d);
    return NOTES_OK;
fail:
    notes_doc_free(d);
    if (isnew &&
        notes_sync_space_remove_note(c->home, c->space.name, e->id) !=
            NOTES_OK) {
        /* listed without a log: harmless, a later sync fills it */
    }
    return rc;
}

static int cmp_acc(const void *a, const void *b)
{
    const struct accepted *x = a, *y = b;
    int k = strcmp(x->dev, y->dev);
    if (k)
        return k;
    return x->pack.seq < y->pack.seq ? -1 : x->pack.seq > y->pack.seq;
}

/* Merge every accepted pack's bundles: rounds until none progresses (a
 * bundle may build on another device's changes). */
static int merge_all(struct ctx *c, struct accepted *acc, size_t nacc)
{
    char why[400];
    int progress = 1, rc;
    if (nacc)
        qsort(acc, nacc, sizeof(*acc), cmp_acc);
    while (progress) {
        progress = 0;
        for (size_t i = 0; i < nacc; i++) {
            for (size_t k = 0; k < acc[i].pack.nentries; k++) {
                if (acc[i].state[k])
                    continue;
                rc = merge_entry(c, &acc[i].pack.entries[k], why,
                                 sizeof(why));
                if (rc == NOTES_EMISSINGDEP)
                    continue;
                if (rc == NOTES_ENOMEM || rc == NOTES_EIO) {
                    notes_sync__detail("%s", why);
                    return rc;
                }
                acc[i].state[k] = rc ? 2 : 1;
                progress = 1;
                if (rc) {
                    acc[i].failed = 1;
                    problem(c, "device ref %.12s, %s: %s", acc[i].dev,
                            acc[i].name, why);
                }
            }
        }
    }
    for (size_t i = 0; i < nacc; i++) {
        for (size_t k = 0; k < acc[i].pack.nentries; k++)
            if (!acc[i].state[k]) {
                char hex[33];
                notes__hex(hex, acc[i].pack.entries[k].id, 16);
                acc[i].failed = 1;
                problem(c, "device ref %.12s, %s: note %.8s builds on "
                           "changes no pack on the remote holds (a pack "
                           "deleted?); nothing of it stored", acc[i].dev,
                        acc[i].name, hex);
            }
        if (!acc[i].failed &&
            (rc = remote_state_add_pack(&c->st, acc[i].oid, acc[i].pack.seq)))
            return rc;
    }
    return NOTES_OK;
}

/* The pack of what the remote lacks (everything when full); entries and
 * their bundles in *entries (free each bundle with notes_free). */
static int build_entries(struct ctx *c, int full, struct remote_entry **out,
                         size_t *nout, uint8_t (**ids)[16], size_t *nids)
{
    struct remote_entry *v;
    size_t k = 0;
    int rc;
    *out = NULL;
    *nout = 0;
    if ((rc = notes_sync_space_notes(c->home, c->space.name, ids, nids)))
        return rc;
    if (!(v = calloc(*nids + 1, sizeof(*v))))
        return NOTES_ENOMEM;
    for (size_t i = 0; i < *nids; i++) {
        notes_doc *d;
        uint8_t(*have)[32] = NULL;
        size_t nh = 0;
        rc = notes_doc_open(c->r, (*ids)[i], &d);
        if (rc == NOTES_ENOTFOUND)
            continue; /* listed, no change here yet */
        if (rc) {
            char hex[33];
            notes__hex(hex, (*ids)[i], 16);
            notes_sync__from_notes(rc, hex);
            goto fail;
        }
        if (!full) {
            struct remote_state_note *sn = remote_state_note_find(&c->st,
                                                                  (*ids)[i]);
            struct extra *x = extra_get(c, (*ids)[i], 0);
            size_t a = sn ? sn->n : 0, b = x ? x->n : 0;
            if (a + b) {
                if (!(have = malloc((a + b) * 32))) {
                    notes_doc_free(d);
                    rc = NOTES_ENOMEM;
                    goto fail;
                }
                if (sn && a)
                    memcpy(have, sn->heads, a * 32);
                if (x && b)
                    memcpy(have + a, x->ids, b * 32);
            }
            nh = a + b;
        }
        uint8_t *bytes = NULL;
        size_t nb = 0;
        rc = notes_doc_export(d, (const uint8_t(*)[32])have, nh, &bytes, &nb);
        free(have);
        notes_doc_free(d);
        if (rc) {
            notes_sync__from_notes(rc, "export");
            goto fail;
        }
        if (notes_bundle_count(bytes, nb) == 0) {
            notes_free(bytes);
            continue;
        }
        memcpy(v[k].id, (*ids)[i], 16);
        v[k].bundle = bytes;
        v[k].n = nb;
        c->rep->changes_sent += notes_bundle_count(bytes, nb);
        k++;
    }
    c->rep->notes_sent = k;
    *out = v;
    *nout = k;
    return NOTES_OK;
fail:
    for (size_t i = 0; i < k; i++)
        notes_free(v[i].bundle);
    free(v);
    notes_sync_free(*ids);
    *ids = NULL;
    *nids = 0;
    return rc;
}

/* After everything here is on the remote: it holds each note's heads. */
static int record_heads(struct ctx *c, const uint8_t (*ids)[16], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        notes_doc *d;
        uint8_t(*h)[32];
        size_t nh;
        int rc = notes_doc_open(c->r, ids[i], &d);
        if (rc == NOTES_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        rc = notes_doc_heads(d, &h, &nh);
        notes_doc_free(d);
        if (rc)
            return rc;
        rc = remote_state_set_heads(&c->st, ids[i], (const uint8_t(*)[32])h,
                                    nh);
        notes_free(h);
        if (rc)
            return rc;
    }
    return NOTES_OK;
}

/* Seal the pack, write blob, tree, commit into the mirror, push. */
static int push(struct ctx *c, struct device *own, int full,
                const struct remote_entry *entries, size_t nentries,
                uint64_t seq, char commit[REMOTE_OID_MAX + 1])
{
    uint8_t(*names)[REMOTE_PACK_NAME_LEN] = NULL, *sealed = NULL;
    size_t nnames = 1, nsealed = 0;
    struct notes_buf tree;
    notes_sync_git_result g;
    char blob[REMOTE_OID_MAX + 1], treeoid[REMOTE_OID_MAX + 1], myname[40];
    char ref[160], dst[REMOTE_OID_MAX + 170], lease[REMOTE_OID_MAX + 190];
    size_t keep = (!full && own) ? own->nents : 0;
    int rc;
    notes__buf_init(&tree, SIZE_MAX / 2);
    if (!(names = calloc(keep + 1, sizeof(*names))))
        return NOTES_ENOMEM;
    notes__random(names[0], REMOTE_PACK_NAME_LEN);
    for (size_t i = 0; i < keep; i++)
        if (notes_sync__unhex_lower(names[nnames], REMOTE_PACK_NAME_LEN,
                                    own->ents[i].name,
                                    2 * REMOTE_PACK_NAME_LEN) == 0)
            nnames++;
    if ((rc = remote_pack_seal(&c->keys, notes_replica_public_key(c->r), seq,
                               (const uint8_t(*)[REMOTE_PACK_NAME_LEN])names,
                               nnames, entries, nentries, &sealed, &nsealed)))
        goto out;
    c->rep->bytes_pushed = nsealed;
    if ((rc = git(c, sealed, nsealed, 4096, &g, "hash-object", "-w", "--stdin",
                  (char *)NULL)))
        goto out;
    if (g.status != 0 || sscanf(g.out, "%64s", blob) != 1 || !is_oid(blob)) {
        rc = git_failed(&g, "cannot store the pack in the mirror");
        goto out;
    }
    remote_git_result_free(&g);
    notes__hex(myname, names[0], REMOTE_PACK_NAME_LEN);
    rc = notes__buf_printf(&tree, "100644 blob %s\t%s.pack\n", blob, myname);
    for (size_t i = 0; !rc && i < keep; i++)
        rc = notes__buf_printf(&tree, "100644 blob %s\t%s\n", own->ents[i].oid,
                               own->ents[i].name);
    if (rc)
        goto out;
    if ((rc = git(c, tree.data, tree.len, 4096, &g, "mktree", (char *)NULL)))
        goto out;
    if (g.status != 0 || sscanf(g.out, "%64s", treeoid) != 1) {
        rc = git_failed(&g, "cannot make the tree");
        goto out;
    }
    remote_git_result_free(&g);
    if (own && !full)
        rc = git(c, NULL, 0, 4096, &g, "commit-tree", treeoid, "-p",
                 own->commit, "-m", "notes", (char *)NULL);
    else
        rc = git(c, NULL, 0, 4096, &g, "commit-tree", treeoid, "-m", "notes",
                 (char *)NULL);
    if (rc)
        goto out;
    if (g.status != 0 ||
        sscanf(g.out, "%64s", commit) != 1 || !is_oid(commit)) {
        rc = git_failed(&g, "cannot make the commit");
        goto out;
    }
    remote_git_result_free(&g);
    snprintf(ref, sizeof(ref), "%s%s", c->refprefix, c->mydev);
    snprintf(dst, sizeof(dst), "%s:%s", commit, ref);
    if (own && full) {
        /* Compaction: this device's own ref only, and only if it is still
         * where this sync saw it. */
        snprintf(lease, sizeof(lease), "--force-with-lease=%s:%s", ref,
                 own->commit);
        rc = git(c, NULL, 0, 1u << 20, &g, "push", "-q", "--no-verify", lease,
                 "--", c->remote.url, dst, (char *)NULL);
    } else {
        /* A fast-forward of this device's own ref (or its creation). */
        rc = git(c, NULL, 0, 1u << 20, &g, "push", "-q", "--no-verify", "--",
                 c->remote.url, dst, (char *)NULL);
    }
    if (rc)
        goto out;
    if (g.status != 0) {
        char what[1200];
        snprintf(what, sizeof(what), "cannot push to '%s'", c->remote.url);
        rc = git_failed(&g, what);
        goto out;
    }
    remote_git_result_free(&g);
    c->rep->compacted = own && full;
    /* Keep the mirror's copy of the ref where the remote has it now. */
    {
        char mref[200];
        snprintf(mref, sizeof(mref), "%s%s", c->mirrorprefix, c->mydev);
        if (git(c, NULL, 0, 4096, &g, "update-ref", mref, commit, (char *)NULL) ==
            NOTES_OK)
            remote_git_result_free(&g);
    }
    c->rep->remote_bytes += nsealed;
out:
    notes__buf_release(&tree);
    free(names);
    free(sealed);
    return rc;
}

static void ctx_free(struct ctx *c)
{
    for (size_t i = 0; i < c->ndevs; i++)
        free(c->devs[i].ents);
    free(c->devs);
    for (size_t i = 0; i < c->nextras; i++)
        free(c->extras[i].ids);
    free(c->extras);
    free(c->mirror);
    free(c->statepath);
    remote_config_clear(&c->cfg);
    remote_state_clear(&c->st);
    notes_sync_space_clear(&c->space);
    notes__wipe(&c->keys, sizeof(c->keys));
}

int notes_sync_remote_sync(notes_replica *r, const char *name,
                           const notes_sync_remote_opts *o,
                           notes_sync_remote_report *report)
{
    struct ctx c;
    notes_sync_remote_report local;
    memset(&local, 0, sizeof(local));
    struct accepted *acc = NULL;
    size_t nacc = 0;
    struct remote_entry *entries = NULL;
    size_t nentries = 0;
    uint8_t(*ids)[16] = NULL;
    size_t nids = 0;
    int rc, fd;
    uint64_t compact_above =
        o && o->compact_above ? o->compact_above : DEFAULT_COMPACT_ABOVE;
    memset(&c, 0, sizeof(c));
    c.rep = report ? report : &local;
    memset(c.rep, 0, sizeof(*c.rep));
    if (!r || !name)
        return NOTES_EINVAL;
    c.r = r;
    c.home = notes_replica_home(r);
    if ((rc = notes_sync_remote_get(c.home, name, &c.remote)))
        return rc;
    if ((rc = notes_sync_space_load(c.home, c.remote.space, &c.space)))
        return rc;
    remote_keys_derive(c.space.secret, &c.keys);
    remote_device_tag(c.space.secret, notes_replica_public_key(r), c.mydev);
    snprintf(c.refprefix, sizeof(c.refprefix), "refs/notes/%s/",
             c.keys.space_hex);
    snprintf(c.mirrorprefix, sizeof(c.mirrorprefix), "refs/notes-remote/%s/",
             c.keys.space_hex);
    if (!(c.mirror = remote__path(c.home, name, ".git")) ||
        !(c.statepath = remote__path(c.home, name, ".state"))) {
        ctx_free(&c);
        return NOTES_ENOMEM;
    }
    snprintf(c.gitdir_arg, sizeof(c.gitdir_arg), "--git-dir=%s", c.mirror);
    /* One sync of this replica's remotes at a time (serve and a sync). */
    if ((fd = remote_config_lock(c.home)) < 0) {
        ctx_free(&c);
        return fd;
    }
    if ((rc = remote_config_load(c.home, &c.cfg)) ||
        (rc = remote_state_load(c.statepath, &c.st)) ||
        (rc = ensure_mirror(&c)))
        goto out;

    /* Fetch every device ref of the space; --prune drops the mirror's copy
     * of a ref deleted there (reported below). */
    {
        notes_sync_git_result g;
        char spec[300];
        snprintf(spec, sizeof(spec), "+%s*:%s*", c.refprefix, c.mirrorprefix);
        if ((rc = git(&c, NULL, 0, 1u << 20, &g, "fetch", "-q", "--no-tags",
                      "--prune", "--no-write-fetch-head", "--", c.remote.url,
                      spec, (char *)NULL)))
            goto out;
        if (g.status != 0) {
            char what[1200];
            snprintf(what, sizeof(what), "cannot fetch from '%s'",
                     c.remote.url);
            rc = git_failed(&g, what);
            goto out;
        }
        remote_git_result_free(&g);
    }
    if ((rc = list_devices(&c)))
        goto out;
    c.rep->devices = (unsigned)c.ndevs;
    for (size_t i = 0; i < c.ndevs; i++) {
        if ((rc = read_tree(&c, &c.devs[i])))
            goto out;
        c.rep->remote_bytes += c.devs[i].bytes;
    }
    /* Refs seen before and gone now. */
    for (size_t i = 0; i < c.cfg.nseen; i++) {
        const struct remote_seen *s = &c.cfg.seen[i];
        if (strcmp(s->remote, name) != 0 || dev_find(&c, s->dev))
            continue;
        if (strcmp(s->dev, c.mydev) == 0)
            problem(&c, "this device's ref was deleted from the remote (last "
                        "pushed: commit %.12s, pack #%llu); pushing "
                        "everything again", s->commit,
                    (unsigned long long)s->seq);
        else
            problem(&c, "device ref %.12s was deleted from the remote (last "
                        "seen: commit %.12s, pack #%llu); its changes seen "
                        "here stay here (notes sync %s --compact pushes "
                        "everything this device has)", s->dev, s->commit,
                    (unsigned long long)s->seq, name);
    }
    for (size_t i = 0; i < c.ndevs; i++)
        if (strcmp(c.devs[i].dev, c.mydev) != 0 &&
            (rc = examine_device(&c, &c.devs[i], &acc, &nacc)))
            goto out;
    if ((rc = merge_all(&c, acc, nacc)))
        goto out;

    /* Push. This device's ref as the remote has it must be where this
     * device left it; else someone else wrote it (rewound, replaced): say
     * so and replace it with everything, which no rewinding can undo. */
    {
        struct device *own = dev_find(&c, c.mydev);
        struct remote_seen *ms = seen_find(&c, c.mydev);
        int full = o && o->compact;
        uint64_t seq = ms ? ms->seq + 1 : 1;
        char commit[REMOTE_OID_MAX + 1] = "";
        if (ms && !own) {
            full = 1; /* reported above with the deleted refs */
        } else if (own && (!ms || strcmp(ms->commit, own->commit) != 0)) {
            if (ms)
                problem(&c, "this device's ref on the remote is not where "
                            "this device left it (commit %.12s, not %.12s): "
                            "rewound or replaced; pushing everything again",
                        own->commit, ms->commit);
            full = 1;
        } else if (own && own->nents > 1 && own->bytes > compact_above) {
            /* Past the size, once the packs added since the largest (the
             * last compaction, as a rule) weigh as much as it does: a
             * space larger than the limit is not pushed whole every time,
             * and the ref stays under twice its compacted size. */
            uint64_t largest = 0;
            for (size_t i = 0; i < own->nents; i++)
                if (own->ents[i].size > largest)
                    largest = own->ents[i].size;
            full = own->bytes - largest >= largest;
        }
        if (full) {
            for (size_t i = 0; i < c.st.nnotes; i++)
                free(c.st.notes[i].heads);
            free(c.st.notes);
            c.st.notes = NULL;
            c.st.nnotes = 0;
            for (size_t i = 0; i < c.nextras; i++)
                c.extras[i].n = 0;
        }
        if ((rc = build_entries(&c, full, &entries, &nentries, &ids, &nids)))
            goto save;
        if (nentries || (full && own)) {
            if (own && full)
                c.rep->remote_bytes -= own->bytes;
            rc = push(&c, own, full, entries, nentries, seq, commit);
            if (rc)
                goto save;
            if ((rc = seen_set(&c, c.mydev, commit, seq)))
                goto save;
        }
        rc = record_heads(&c, (const uint8_t(*)[16])ids, nids);
    }
    /* The mirror keeps what it fetched; packs no ref holds any more (a
     * compaction elsewhere) go when git thinks it worth it. In the
     * foreground: nothing of notes runs on after it returns. */
    if (!rc) {
        notes_sync_git_result g;
        if (git(&c, NULL, 0, 1u << 20, &g, "-c", "gc.autoDetach=false", "gc",
                "--auto", "--quiet", (char *)NULL) == NOTES_OK)
            remote_git_result_free(&g);
    }
save:
    {
        int src = remote_state_store(c.statepath, &c.st);
        int crc = remote_config_store(c.home, &c.cfg);
        if (!rc)
            rc = src ? src : crc;
    }
out:
    for (size_t i = 0; i < nacc; i++) {
        remote_pack_clear(&acc[i].pack);
        free(acc[i].state);
    }
    free(acc);
    for (size_t i = 0; i < nentries; i++)
        notes_free(entries[i].bundle);
    free(entries);
    notes_sync_free(ids);
    close(fd);
    ctx_free(&c);
    if (!rc && c.rep->nproblems) {
        notes_sync__detail("%zu problem%s with what the remote holds",
                           c.rep->nproblems, c.rep->nproblems == 1 ? "" : "s");
        rc = NOTES_SYNC_EREMOTEDATA;
    }
    return rc;
}
