/*
 * doc_verify.c: verification: checking every change of a note again and
 * reporting each problem, as notes_doc_verify does.
 */
#include <stdio.h>
#include <dirent.h>

#include "doc_internal.h"

static int add_item(notes_problem **v, size_t *n, int code, size_t change,
                    const char *msg)
{
    notes_problem *p = notes__realloc(*v, (*n + 1) * sizeof(*p));
    if (!p)
        return NOTES_ENOMEM;
    *v = p;
    p += (*n)++;
    p->code = code;
    p->change = change;
    snprintf(p->message, sizeof(p->message), "%s", msg);
    return NOTES_OK;
}

static int add_problem(notes_verify_report *rep, int code, size_t change,
                       const char *msg)
{
    return add_item(&rep->problems, &rep->nproblems, code, change, msg);
}

static int add_remark(notes_verify_report *rep, const char *msg)
{
    return add_item(&rep->remarks, &rep->nremarks, NOTES_OK, SIZE_MAX, msg);
}

static int verify_refusal(void *ctx, int rc)
{
    char msg[240];
    snprintf(msg, sizeof(msg), "%s", notes_last_detail());
    return add_problem(ctx, rc, SIZE_MAX, msg);
}

/* Log reader callback for verify: decode errors become problems. */
static int verify_collect_cb(void *ctx, const uint8_t *p, size_t n,
                             const uint8_t *id)
{
    void **pair = ctx;
    int rc = notes__doc_batch_decode(pair[0], p, n, id);
    if (rc && rc != NOTES_ENOMEM)
        rc = verify_refusal(pair[1], rc);
    return rc;
}

/*
 * Damaged bytes a writer set aside are kept beside the log as
 * ID.log.damaged-OFFSET[.N]: evidence the user should look at. While the
 * note lacks what was acknowledged it is a problem (assess says so too);
 * once the note is whole again (a peer's copy brought the changes back) it
 * is a remark. Torn tails (never acknowledged) are not reported.
 */
static int report_aside(notes_doc *d, int whole, notes_verify_report *rep)
{
    char hex[33], prefix[64];
    notes__hex(hex, d->id, 16);
    snprintf(prefix, sizeof(prefix), "%s.log.damaged-", hex);
    DIR *dir = opendir(d->r->notes_dir);
    struct dirent *de;
    int rc = NOTES_OK;
    if (!dir)
        return NOTES_OK;
    while (!rc && (de = readdir(dir)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
            strstr(de->d_name, ".tmp"))
            continue;
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "damaged bytes from offset %s of the log were set aside as "
                 "%s/%s%s", de->d_name + strlen(prefix), d->r->notes_dir,
                 de->d_name,
                 whole ? "; the note is whole again (delete the file when "
                         "you no longer need it)"
                       : "; inspect it, recover the note from a peer");
        rc = whole ? add_remark(rep, msg)
                   : add_problem(rep, NOTES_ECORRUPT, SIZE_MAX, msg);
    }
    closedir(dir);
    return rc;
}

int notes_doc_verify(notes_doc *d, notes_verify_report *rep)
{
    NOTES__DOC_FULL_RC(d);
    notes_doc *fresh = NULL;
    struct batch b = {0};
    void *pair[2];
    int rc;

    memset(rep, 0, sizeof(*rep));
    pair[0] = &b;
    pair[1] = rep;
    if ((rc = notes__doc_alloc(d->r, d->id, &fresh)))
        return rc;
    if (!d->r) {
        /* A memory document: check its changes again from their bytes. */
        for (size_t i = 0; i < d->ne && !rc; i++)
            rc = verify_collect_cb(pair, d->e[i].c->bytes, d->e[i].c->nbytes,
                                   NULL);
    } else {
        /* The log from disk, every signature checked (no local MAC), and
         * judged against the replica's state like any read. */
        char *path = notes__replica_log_path(d->r, d->id);
        if (!path) {
            rc = NOTES_ENOMEM;
            goto out;
        }
        if ((rc = notes__replica_lock(d->r, 0))) {
            notes__free(path);
            goto out;
        }
        rc = notes__doc_load_state(fresh);
        if (rc == NOTES_OK)
            rc = notes__log_open(path, d->id, 0, &fresh->log);
        if (rc == NOTES_OK)
            rc = notes__log_read(fresh->log, verify_collect_cb, pair);
        notes__replica_unlock(d->r);
        notes__free(path);
        if (rc == NOTES_ENOTFOUND) {
            rc = NOTES_OK; /* no log: assess says whether one is missing */
        } else if (rc && rc != NOTES_ENOMEM) {
            char msg[240];
            snprintf(msg, sizeof(msg), "%s", notes_last_detail());
            rc = add_problem(rep, rc, SIZE_MAX, msg);
        }
    }
    if (rc || (rc = notes__doc_batch_ingest(fresh, &b, 0, verify_refusal, rep,
                                            &rep->signatures)))
        goto out;
    if (d->r) {
        /* Refused changes were reported one by one above. */
        fresh->nbad = 0;
        notes__doc_assess(fresh);
        if (fresh->damage[0] &&
            (rc = fresh->problem ? add_problem(rep, fresh->problem, SIZE_MAX,
                                               fresh->damage)
                                 : add_remark(rep, fresh->damage)))
            goto out;
    }
    /* Equivocations: every seq slot with more than one change. */
    for (size_t ai = 0; ai < fresh->na; ai++) {
        const struct author *a = &fresh->a[ai];
        for (uint32_t s = 0; s < a->nseq; s++) {
            if (a->slot_count[s] < 2)
                continue;
            char fpr[NOTES_FPR_STRLEN], msg[400], ids[80] = "";
            uint32_t win = notes__doc_slot_winner(fresh, (uint32_t)ai, s + 1);
            size_t listed = 0, o = 0;
            notes_key_fingerprint(a->pk, fpr);
            /* Name the first three (log order), so they can be looked at. */
            for (size_t i = 0; i < fresh->ne && listed < 3; i++) {
                if (fresh->e[i].author != ai || fresh->e[i].c->seq != s + 1)
                    continue;
                char w[17];
                notes__doc_short_id(w, fresh->e[i].c->id);
                o += (size_t)snprintf(ids + o, sizeof(ids) - o, "%s%s",
                                      listed ? ", " : "", w);
                listed++;
            }
            snprintf(msg, sizeof(msg),
                     "key %s equivocated: it signed %u different changes "
                     "with seq %u (%s%s); all are kept as evidence and "
                     "applied as concurrent branches, with what others "
                     "built on them; do not trust this key",
                     fpr, a->slot_count[s], s + 1, ids,
                     a->slot_count[s] > listed ? ", ..." : "");
            if ((rc = add_problem(rep, NOTES_EEQUIVOCATION, win, msg)))
                goto out;
        }
    }
    if (d->r && (rc = report_aside(d, !fresh->problem, rep)))
        goto out;
    rep->changes = fresh->ne;
    rep->authors = fresh->na;
out:
    notes__doc_batch_release(&b);
    notes_doc_free(fresh);
    if (rc == NOTES_OK && rep->nproblems)
        rc = rep->problems[0].code;
    return rc;
}

void notes_verify_report_clear(notes_verify_report *rep)
{
    if (!rep)
        return;
    notes__free(rep->problems);
    notes__free(rep->remarks);
    memset(rep, 0, sizeof(*rep));
}
