/*
 * people.c: how a key is shown on the page (docs/trust.md, docs/web.md
 * "People").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

/* A stable colour per key: one of a palette readable on white, chosen by
 * the key's hash (names are claims; the colour follows the key). */
void notes_web__key_color(const uint8_t pk[32], char out[8])
{
    static const char *const palette[] = {
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e36209", "#17becf",
        "#8c564b", "#e377c2", "#7f7f00", "#0b6e4f", "#b5179e", "#3a5a99"};
    uint8_t h[8];
    notes__hash(h, sizeof(h), pk, 32, NULL, 0);
    snprintf(out, 8, "%s", palette[h[0] % (sizeof(palette) / sizeof(*palette))]);
}
/* ---- people: how a key is shown (docs/trust.md) ----------------------- */

/*
 * Names are claims, keys are facts. A device key is shown as the person
 * it is linked to in the note (when exactly one person links it), named by
 * the user's own name for that key (HOME/trust, what `notes trust` writes:
 * "nk... NAME" per line), else by the name it claims and flagged unknown;
 * as the CLI shows it (cli/cmd_people.c, cli_author). HOME/trust and
 * HOME/certs (this replica's person) are read again when they change:
 * `notes trust` and `notes device` may run while the daemon serves.
 */
static int home_file_changed(notes_web *ui, const char *name,
                             struct file_seen *seen)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", notes_replica_home(ui->r), name);
    if (stat(path, &st) != 0)
        memset(&st, 0, sizeof(st));
    if (seen->valid && st.st_mtim.tv_sec == seen->mtime.tv_sec &&
        st.st_mtim.tv_nsec == seen->mtime.tv_nsec && st.st_size == seen->size &&
        st.st_ino == seen->ino)
        return 0;
    seen->valid = 1;
    seen->mtime = st.st_mtim;
    seen->size = st.st_size;
    seen->ino = st.st_ino;
    return 1;
}

/* The user's names (HOME/trust, read by libnotes with its check line: a
 * damaged file names nobody, as in the CLI). */
static void pets_load(notes_web *ui)
{
    notes_petnames_clear(&ui->pets);
    if (notes_petnames_load(notes_replica_home(ui->r), &ui->pets) != NOTES_OK)
        notes_web__log(ui, "cannot read the names in HOME/trust: %s",
                       notes_last_detail());
    else if (ui->pets.damaged)
        notes_web__log(ui, "HOME/trust is damaged, no name in it is used: %s",
                       notes_last_detail());
}

void notes_web__people_refresh(notes_web *ui)
{
    if (home_file_changed(ui, "trust", &ui->trust_seen))
        pets_load(ui);
    if (home_file_changed(ui, "certs", &ui->certs_seen)) {
        notes_link_info *li;
        size_t k;
        ui->has_person = 0;
        if (notes_replica_links(ui->r, &li, &k) == NOTES_OK) {
            for (size_t i = 0; i < k; i++)
                if (li[i].self && !li[i].revoked) {
                    memcpy(ui->person, li[i].person, 32);
                    snprintf(ui->person_name, sizeof(ui->person_name), "%s",
                             li[i].person_name);
                    ui->has_person = 1;
                }
            notes_free(li);
        }
        /* Our pages' colour is our person's, as in authorship. */
        notes_web__key_color(ui->has_person ? ui->person : notes_replica_public_key(ui->r),
                  ui->me_color);
    }
}

static const char *petname(const notes_web *ui, const uint8_t key[32])
{
    return notes_petnames_find(&ui->pets, key);
}

void notes_web__who_of(notes_web *ui, notes_doc *d, const uint8_t device[32],
                   struct who *w)
{
    notes_person_info pi;
    const uint8_t *me = notes_replica_public_key(ui->r);
    memset(w, 0, sizeof(*w));
    int found = notes_doc_person(d, device, &pi) == NOTES_OK;
    w->device = device;
    w->linked = found && pi.person && !pi.contested;
    w->key = w->linked ? pi.person : device;
    w->contested = found && pi.contested;
    w->revoked = w->linked && pi.revoked;
    const char *claimed = w->linked ? pi.name : notes_doc_author_name(d, device);
    w->mine = memcmp(device, me, 32) == 0 ||
              (ui->has_person && memcmp(w->key, ui->person, 32) == 0);
    const char *label = petname(ui, w->key);
    if (!label && !w->linked)
        label = petname(ui, device);
    if (!label && w->mine)
        label = !w->linked && memcmp(device, me, 32) == 0
                    ? notes_replica_name(ui->r)
                    : claimed;
    w->known = label != NULL || w->mine;
    w->name = label ? label : claimed;
    notes_key_fingerprint(w->key, w->fp);
    notes_web__key_color(w->key, w->color);
}

/*
 * {"name", "fp", "fingerprint", "key", "color", "known", "linked", "mine",
 *  "device": {"fp", "key", "name"}} plus "contested" / "revoked" when so
 * (docs/web.md, "People").
 */
json_t *notes_web__who_json(const struct who *w, notes_doc *d)
{
    char key[NOTES_KEY_STRLEN], dkey[NOTES_KEY_STRLEN], dfp[NOTES_FPR_STRLEN];
    notes_key_encode(w->key, key);
    notes_key_encode(w->device, dkey);
    notes_key_fingerprint(w->device, dfp);
    json_t *o = json_pack(
        "{s:s?, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:{s:s, s:s, s:s?}}", "name",
        w->name, "fp", w->fp, "fingerprint", w->fp, "key", key, "color",
        w->color, "known", w->known, "linked", w->linked, "mine", w->mine,
        "device", "fp", dfp, "key", dkey, "name",
        notes_doc_author_name(d, w->device));
    if (o && w->contested)
        json_object_set_new(o, "contested", json_true());
    if (o && w->revoked)
        json_object_set_new(o, "revoked", json_true());
    /* The device key signed two changes with one seq: its branches are in
     * the text, and the page says whom not to trust. */
    if (o && notes_doc_author_equivocated(d, w->device))
        json_object_set_new(o, "equivocating", json_true());
    return o;
}

json_t *notes_web__who_json_of(notes_web *ui, notes_doc *d, const uint8_t device[32])
{
    struct who w;
    notes_web__who_of(ui, d, device, &w);
    return notes_web__who_json(&w, d);
}

/* This replica's person, for hello and presence: {"fp", "fingerprint",
 * "key", "name", "color", "known", "linked", "mine"}. */
json_t *notes_web__own_person_json(notes_web *ui)
{
    char key[NOTES_KEY_STRLEN], fp[NOTES_FPR_STRLEN], color[8];
    const char *name = petname(ui, ui->person);
    notes_key_encode(ui->person, key);
    notes_key_fingerprint(ui->person, fp);
    notes_web__key_color(ui->person, color);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "fp", fp,
                     "fingerprint", fp, "key", key, "name",
                     name ? name : ui->person_name, "color", color, "known", 1,
                     "linked", 1, "mine", 1);
}


/* Confirmations as the page gets them: who, the verdict, whether it
 * counts, and what was confirmed (the old text, for "changed"). */
json_t *notes_web__confirms_json(notes_web *ui, notes_doc *d,
                             const notes_fmt_confirm *c, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:o, s:s, s:b, s:s, s:s?, s:s}", "by",
                           notes_web__who_json_of(ui, d, c[i].by.device), "state",
                           notes_fmt_confirm_state_name(c[i].state),
                           "counted", c[i].counted, "text", c[i].text, "owner",
                           c[i].owner[0] ? c[i].owner : NULL, "item",
                           c[i].item_id));
    return arr;
}

void notes_web__people_clear(notes_web *ui)
{
    notes_petnames_clear(&ui->pets);
}
