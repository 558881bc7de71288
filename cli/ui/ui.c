/*
 * ui.c: the browser page of `notes serve`: HTTP and WebSocket with
 * libwebsockets on the daemon's libuv loop (docs/web.md).
 *
 * Editing follows @codemirror/collab's central-authority model with this
 * process as the authority: per open note a linear list of updates
 * (CodeMirror ChangeSets, UTF-16 positions) numbered from 0 since the
 * daemon started. A page pushes its edits against the version it last
 * saw; a push at the current version is applied to the note as splices,
 * signed and committed, and broadcast; a stale push is ignored (the page
 * rebases over the updates it receives and pushes again). Changes that
 * reach the store from elsewhere (a peer through the sync side, a CLI
 * command) are read by notes_doc_refresh and arrive through
 * notes_doc_observe as the transformed operations they are, each becoming
 * an update; so a page rebases its own unacknowledged keystrokes over
 * exactly what happened.
 *
 * Security (docs/web.md): loopback only; a per-daemon token, given once in
 * the URL and then kept in an HttpOnly SameSite=Strict cookie; the Host
 * must be a loopback name (DNS rebinding) and a WebSocket's Origin the
 * page's own; a CSP without inline script; POSTs only as JSON; messages
 * bounded; anything malformed closes the connection, the replica
 * untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>
#include <uv.h>

#include "notes_formats.h"
#include "notes_sync.h"
#include "ui.h"
#include "ui_assets.h"
#include "cli.h" /* cli_esc */

#define HIST_MAX 20000      /* updates kept per note; older: reload */
#define OUT_MAX (16u << 20) /* bytes queued per page before it is dropped */
#define CLIENT_ID_MIN 16
#define CLIENT_ID_MAX 64
#define TAKEN_MAX 64        /* clientIDs whose taken count a note keeps */
#define PUSH_UPDATES_MAX 10000
#define RANGES_MAX 100
#define ITEMS_DELAY_MS 250  /* outline recomputed at most this often */
#define STATUS_MS 1000
#define NOTES_LIST_MAX 5000
#define CONFIRM_TEXT_MAX (64u << 10) /* bytes of an item text to confirm */
#define CONFIRM_OWNER_MAX 256
#define UI_POST_BODY_MAX (64u << 10)                       /* POST /api/notes */
#define UI_TITLE_MAX 200 /* characters (docs/web.md, POST /api/notes) */
#define UI_IMPORT_BODY_MAX (NOTES_MD_MAX_BYTES * 5 / 2)    /* JSON-escaped */

struct ui_msg {
    struct ui_msg *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then the JSON */
};

struct unote;

/* Someone with the note open on another daemon, as its last signed
 * presence record said (docs/web.md, "Presence"). */
struct remote {
    struct remote *next;
    uint8_t key[32];
    json_t *people;         /* that daemon's pages: [{session, name, ...}] */
    uint64_t seen_ms;
};

#define PRESENCE_TTL_MS 30000   /* a remote entry not refreshed expires */
#define PRESENCE_BEAT_MS 10000  /* we refresh ours while pages are open */

static void remote_free(struct remote *r)
{
    json_decref(r->people);
    free(r);
}

struct page {
    struct page *next;      /* in the note's list */
    struct unote *note;
    struct lws *wsi;
    char session[17];
    char client[CLIENT_ID_MAX + 1]; /* the page's clientID (?client=), or "" */
    struct ui_msg *qh, *qt;
    size_t qbytes;
    json_t *ranges;         /* last cursor ranges, or NULL */
    unsigned long ranges_version;
    char close_why[120];    /* set: close at the next writeable */
};

struct unote {
    struct unote *next;
    struct notes_ui *ui;
    uint8_t id[16];
    char hex[33];
    notes_doc *d;
    char *m;                /* mirror of the text as the pages see it */
    size_t mlen, mcap;      /* bytes */
    size_t len16;           /* UTF-16 length */
    json_t *hist;           /* updates [base, version) */
    unsigned long base, version;
    json_t *remote;         /* updates observed from elsewhere, unsent */
    int applying;           /* a page's edit is being applied */
    int reset;              /* the state was rebuilt: pages must reload */
    struct page *pages;
    struct remote *remotes; /* people on other daemons (presence) */
    uv_timer_t items_timer;
    int items_timer_on, items_due;
    uint64_t items_last_ms;
    char *items_json;       /* last sent, to skip repeats */
    char *fields_json;      /* front matter last sent */
    char epoch[17];         /* names the update list; new after a reset */
    char peer_id[48];       /* clientID of updates from elsewhere */
    /* Updates committed per page clientID, across daemon restarts (a file
     * in the replica): a page that reconnects to a new epoch learns how
     * many of its unacknowledged updates were taken (hello "taken"). */
    struct taken {
        char cid[CLIENT_ID_MAX + 1];
        unsigned long n;
    } taken[TAKEN_MAX];
    size_t ntaken;          /* oldest first */
};

/* A user's own name for a key (HOME/trust). */
struct petname {
    uint8_t key[32];
    char name[NOTES_NAME_MAX + 1];
};

/* What a file of the replica looked like when last read. */
struct file_seen {
    int valid;
    struct timespec mtime;
    off_t size;
    ino_t ino;
};

struct notes_ui {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_context *ctx_dying; /* notes_ui_free ends its destruction */
    notes_replica *r;
    char token[44];
    char epoch[17];
    int port;
    char me_key[NOTES_KEY_STRLEN], me_fp[NOTES_FPR_STRLEN], me_color[8];
    struct unote *notes;
    uv_fs_event_t watch;
    uv_timer_t status_timer;
    int watching, timing, stopped;
    FILE *log;
    void (*status)(void *ud, notes_ui_status *out);
    void *status_ud;
    char *status_json;
    void (*publish)(void *ud, const uint8_t note[16], const char *json,
                    size_t n);
    void *publish_ud;
    uint64_t last_beat_ms;
    /* People (docs/trust.md): the user's names for keys, this replica's
     * person; read again when HOME/trust or HOME/certs change. */
    struct petname *pets;
    size_t npets, petcap;
    struct file_seen trust_seen, certs_seen;
    int has_person;
    uint8_t person[32];
    char person_name[NOTES_NAME_MAX + 1];
};

/* Per connection (HTTP request or WebSocket). */
struct pss {
    struct page *pg;        /* WebSocket: the page */
    char *rx;               /* WebSocket: a message being assembled */
    size_t rxlen;
    /* HTTP response being written */
    const unsigned char *body;
    void *owned;            /* body, when it is ours to free */
    size_t blen, boff;
    /* POST being received */
    char *post;
    size_t postlen;
    char route[16];
    int err;                /* refused: the status, given after the body */
    char err_msg[40];
    int close_after;        /* close the connection after the response */
};

static _Thread_local char ui_err[300];

static void ui_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ui_detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ui_err, sizeof(ui_err), fmt, ap);
    va_end(ap);
}

const char *notes_ui_last_error(void);
const char *notes_ui_last_error(void)
{
    return ui_err;
}

static void ui_log(struct notes_ui *ui, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ui_log(struct notes_ui *ui, const char *fmt, ...)
{
    va_list ap;
    char line[1024];
    if (!ui->log)
        return;
    /* Hosts, origins, URIs and titles come from browsers and peers: shown
     * escaped (cli/esc.c), never raw, on the daemon's terminal. */
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(ui->log, "notes ui: %s\n", cli_esc(line));
    fflush(ui->log);
}

static uint64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void random_hex(char *out, size_t bytes)
{
    uint8_t b[32];
    randombytes_buf(b, bytes);
    sodium_bin2hex(out, bytes * 2 + 1, b, bytes);
}

/* A stable colour per key: one of a palette readable on white, chosen by
 * the key's hash (names are claims; the colour follows the key). */
static void key_color(const uint8_t pk[32], char out[8])
{
    static const char *const palette[] = {
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#e36209", "#17becf",
        "#8c564b", "#e377c2", "#7f7f00", "#0b6e4f", "#b5179e", "#3a5a99"};
    uint8_t h[8];
    crypto_generichash(h, sizeof(h), pk, 32, NULL, 0);
    snprintf(out, 8, "%s", palette[h[0] % (sizeof(palette) / sizeof(*palette))]);
}

static void hex16(const uint8_t id[16], char out[33])
{
    sodium_bin2hex(out, 33, id, 16);
}

static int unhex16(const char *s, uint8_t id[16])
{
    size_t got = 0;
    if (strlen(s) != 32 ||
        sodium_hex2bin(id, 16, s, 32, NULL, &got, NULL) != 0 || got != 16)
        return -1;
    return 0;
}

/* ---- UTF-16 positions over UTF-8 text ------------------------------------ */

/* Length of the UTF-8 sequence starting with byte c (text is valid UTF-8). */
static size_t u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/*
 * Locate UTF-16 offset u16 in s (n bytes of valid UTF-8), starting from
 * byte `from` at code point `cp0`, UTF-16 `u0`. OUT *cp, *byte. -1 if it
 * is past the end or inside a surrogate pair.
 */
static int u16_locate(const char *s, size_t n, size_t from, size_t cp0,
                      size_t u0, size_t u16, size_t *cp, size_t *byte)
{
    size_t i = from, c = cp0, u = u0;
    while (u < u16 && i < n) {
        size_t l = u8len((unsigned char)s[i]);
        u += l == 4 ? 2 : 1;
        i += l;
        c++;
    }
    if (u != u16)
        return -1;
    *cp = c;
    *byte = i;
    return 0;
}

/* UTF-16 length of n bytes of valid UTF-8. */
static size_t u16_count(const char *s, size_t n)
{
    size_t u = 0;
    for (size_t i = 0; i < n; i += u8len((unsigned char)s[i]))
        u += u8len((unsigned char)s[i]) == 4 ? 2 : 1;
    return u;
}

/* Byte offset of code point cp in s. */
static size_t cp_byte(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (cp && i < n) {
        i += u8len((unsigned char)s[i]);
        cp--;
    }
    return i;
}

/* Lines of t (n bytes) as a JSON array, as CodeMirror's Text.toJSON. */
static json_t *lines_json(const char *t, size_t n)
{
    json_t *a = json_array();
    if (!t)
        t = "", n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || t[i] == '\n') {
            json_array_append_new(a, json_stringn(t + start, i - start));
            start = i + 1;
        }
    }
    return a;
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
static int home_file_changed(notes_ui *ui, const char *name,
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

static void pets_load(notes_ui *ui)
{
    char path[4096], line[512];
    snprintf(path, sizeof(path), "%s/trust", notes_replica_home(ui->r));
    ui->npets = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\n')
            line[--l] = '\0';
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        struct petname pn;
        if (notes_key_decode(line, pn.key) != NOTES_OK || !sp[1] ||
            strlen(sp + 1) > NOTES_NAME_MAX)
            continue; /* a damaged line names nobody */
        snprintf(pn.name, sizeof(pn.name), "%s", sp + 1);
        if (ui->npets == ui->petcap) {
            size_t cap = ui->petcap ? ui->petcap * 2 : 16;
            struct petname *np = realloc(ui->pets, cap * sizeof(*np));
            if (!np)
                break;
            ui->pets = np;
            ui->petcap = cap;
        }
        ui->pets[ui->npets++] = pn;
    }
    if (f)
        fclose(f);
}

static void people_refresh(notes_ui *ui)
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
        key_color(ui->has_person ? ui->person : notes_replica_public_key(ui->r),
                  ui->me_color);
    }
}

static const char *petname(const notes_ui *ui, const uint8_t key[32])
{
    for (size_t i = 0; i < ui->npets; i++)
        if (memcmp(ui->pets[i].key, key, 32) == 0)
            return ui->pets[i].name;
    return NULL;
}

/* Who a device key is in note d (fields borrowed from d and ui). */
struct who {
    const uint8_t *device;
    const uint8_t *key;  /* the person key when linked, else the device's */
    const char *name;    /* the user's name for it, else the claimed one, or
                          * NULL when nothing is claimed */
    int linked;          /* linked to exactly one person in the note */
    int known;           /* named by the user (HOME/trust), or this replica */
    int mine;            /* this replica's device or person */
    int contested, revoked;
    char fp[NOTES_FPR_STRLEN];
    char color[8];       /* derived from key */
};

static void who_of(notes_ui *ui, notes_doc *d, const uint8_t device[32],
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
    key_color(w->key, w->color);
}

/*
 * {"name", "fp", "fingerprint", "key", "color", "known", "linked", "mine",
 *  "device": {"fp", "key", "name"}} plus "contested" / "revoked" when so
 * (docs/web.md, "People").
 */
static json_t *who_json(const struct who *w, notes_doc *d)
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

static json_t *who_json_of(notes_ui *ui, notes_doc *d, const uint8_t device[32])
{
    struct who w;
    who_of(ui, d, device, &w);
    return who_json(&w, d);
}

/* This replica's person, for hello and presence: {"fp", "fingerprint",
 * "key", "name", "color", "known", "linked", "mine"}. */
static json_t *own_person_json(notes_ui *ui)
{
    char key[NOTES_KEY_STRLEN], fp[NOTES_FPR_STRLEN], color[8];
    const char *name = petname(ui, ui->person);
    notes_key_encode(ui->person, key);
    notes_key_fingerprint(ui->person, fp);
    key_color(ui->person, color);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "fp", fp,
                     "fingerprint", fp, "key", key, "name",
                     name ? name : ui->person_name, "color", color, "known", 1,
                     "linked", 1, "mine", 1);
}


/* Confirmations as the page gets them: who, the verdict, whether it
 * counts, and what was confirmed (the old text, for "changed"). */
static json_t *confirms_json(notes_ui *ui, notes_doc *d,
                             const notes_fmt_confirm *c, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:o, s:s, s:b, s:s, s:s?, s:s}", "by",
                           who_json_of(ui, d, c[i].by.device), "state",
                           notes_fmt_confirm_state_name(c[i].state),
                           "counted", c[i].counted, "text", c[i].text, "owner",
                           c[i].owner[0] ? c[i].owner : NULL, "item",
                           c[i].item_id));
    return arr;
}

/* ---- messages to pages ------------------------------------------------- */

static void page_close(struct page *pg, const char *why);

static void page_send_str(struct page *pg, const char *s, size_t n)
{
    struct ui_msg *m;
    if (pg->close_why[0])
        return;
    if (pg->qbytes + n > OUT_MAX) {
        page_close(pg, "the page does not keep up");
        return;
    }
    m = malloc(sizeof(*m) + LWS_PRE + n);
    if (!m) {
        page_close(pg, "out of memory");
        return;
    }
    m->next = NULL;
    m->len = n;
    memcpy(m->data + LWS_PRE, s, n);
    if (pg->qt)
        pg->qt->next = m;
    else
        pg->qh = m;
    pg->qt = m;
    pg->qbytes += n;
    lws_callback_on_writable(pg->wsi);
}

static void page_send(struct page *pg, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (s) {
        page_send_str(pg, s, strlen(s));
        free(s);
    }
}

static void note_broadcast(struct unote *n, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return;
    size_t len = strlen(s);
    for (struct page *pg = n->pages; pg; pg = pg->next)
        page_send_str(pg, s, len);
    free(s);
}

/* Close the page's connection with a policy-violation status and reason. */
static void page_close(struct page *pg, const char *why)
{
    if (pg->close_why[0])
        return;
    snprintf(pg->close_why, sizeof(pg->close_why), "%s", why);
    ui_log(pg->note->ui, "page %s of note %.8s: closing: %s", pg->session,
           pg->note->hex, why);
    lws_callback_on_writable(pg->wsi);
}

/* ---- open notes ------------------------------------------------------- */

static void mirror_reload(struct unote *n)
{
    size_t len;
    const char *t = notes_doc_text(n->d, &len);
    if (len + 1 > n->mcap) {
        char *m = realloc(n->m, len + 1);
        if (!m)
            return; /* keep the old mirror; the next reset retries */
        n->m = m;
        n->mcap = len + 1;
    }
    memcpy(n->m, t, len + 1);
    n->mlen = len;
    n->len16 = u16_count(n->m, n->mlen);
}

/*
 * notes_doc_observe: each change to the text, after it happened. The mirror
 * still holds the text before it, so positions convert to UTF-16 there.
 */
static void on_text(void *ud, size_t pos, size_t del, const char *ins,
                    size_t nbytes)
{
    struct unote *n = ud;
    size_t at, end, at16, del16 = 0, ins16;
    if (pos == SIZE_MAX || !n->m || (nbytes && !ins)) {
        n->reset = 1;
        return;
    }
    at = cp_byte(n->m, n->mlen, pos);
    end = at + cp_byte(n->m + at, n->mlen - at, del);
    at16 = u16_count(n->m, at);
    del16 = u16_count(n->m + at, end - at);
    ins16 = u16_count(ins ? ins : "", nbytes);
    if (!n->applying && n->remote) {
        json_t *cs = json_array();
        if (at16)
            json_array_append_new(cs, json_integer((json_int_t)at16));
        json_t *rep = nbytes ? lines_json(ins, nbytes) : json_array();
        json_array_insert_new(rep, 0, json_integer((json_int_t)del16));
        json_array_append_new(cs, rep);
        if (n->len16 - at16 - del16)
            json_array_append_new(
                cs, json_integer((json_int_t)(n->len16 - at16 - del16)));
        json_array_append_new(n->remote,
                              json_pack("{s:s, s:o}", "clientID",
                                        n->peer_id[0] ? n->peer_id : "peer",
                                        "changes", cs));
    }
    /* Apply to the mirror. */
    size_t nlen = n->mlen - (end - at) + nbytes;
    if (nlen + 1 > n->mcap) {
        size_t cap = (nlen + 1) * 2;
        char *m = realloc(n->m, cap);
        if (!m) {
            n->reset = 1; /* rebuilt from the doc at the next flush */
            return;
        }
        n->m = m;
        n->mcap = cap;
    }
    memmove(n->m + at + nbytes, n->m + end, n->mlen - end + 1);
    if (nbytes)
        memcpy(n->m + at, ins, nbytes);
    n->mlen = nlen;
    n->len16 = n->len16 - del16 + ins16;
}

/* The note's front matter (layout keys left out). */
static json_t *fields_json(struct unote *n)
{
    json_t *fields = json_object();
    const char *const *keys = notes_doc_fields(n->d);
    for (size_t i = 0; keys && keys[i]; i++) {
        if (keys[i][0] == '@')
            continue; /* layout, not front matter */
        const char *v = notes_doc_field(n->d, keys[i]);
        if (v) {
            json_object_set_new(fields, keys[i], json_string(v));
        } else {
            const char *const *l = notes_doc_list(n->d, keys[i]);
            json_t *a = json_array();
            for (size_t k = 0; l && l[k]; k++)
                json_array_append_new(a, json_string(l[k]));
            json_object_set_new(fields, keys[i], a);
        }
    }
    return fields;
}

/* ---- taken counts: which of a page's updates are committed ------------- */

static int client_id_ok(json_t *cid);

static void taken_path(struct unote *n, char *out, size_t nout, int tmp)
{
    snprintf(out, nout, "%s/ui/%s.taken%s", notes_replica_home(n->ui->r),
             n->hex, tmp ? ".tmp" : "");
}

/* Read the counts kept by an earlier run ("CLIENTID COUNT" lines); a
 * missing or damaged file is no counts (a page then moves its edits over
 * a diff, docs/web.md). */
static void taken_load(struct unote *n)
{
    char path[4200], cid[CLIENT_ID_MAX + 2];
    unsigned long k;
    taken_path(n, path, sizeof(path), 0);
    FILE *f = fopen(path, "re");
    n->ntaken = 0;
    if (!f)
        return;
    while (n->ntaken < TAKEN_MAX && fscanf(f, "%65s %lu", cid, &k) == 2) {
        json_t *j = json_string(cid);
        size_t len = strlen(cid);
        if (client_id_ok(j) && len < sizeof(n->taken[0].cid)) {
            memcpy(n->taken[n->ntaken].cid, cid, len + 1);
            n->taken[n->ntaken++].n = k;
        }
        json_decref(j);
    }
    fclose(f);
}

/*
 * Write the counts: a temporary file renamed over the old one, so a crash
 * leaves the old or the new file. Not fsync'd: a count that reaches the
 * disk late only matters after an operating-system crash, and then a page
 * may push an edit the log has already (a duplicate, never a loss).
 */
static void taken_save(struct unote *n)
{
    char path[4200], tmp[4200], dir[4200];
    snprintf(dir, sizeof(dir), "%s/ui", notes_replica_home(n->ui->r));
    mkdir(dir, 0700);
    taken_path(n, path, sizeof(path), 0);
    taken_path(n, tmp, sizeof(tmp), 1);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        ui_log(n->ui, "note %.8s: cannot write %s: %s", n->hex, tmp,
               strerror(errno));
        return;
    }
    for (size_t i = 0; i < n->ntaken; i++)
        fprintf(f, "%s %lu\n", n->taken[i].cid, n->taken[i].n);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        ui_log(n->ui, "note %.8s: cannot write %s: %s", n->hex, path,
               strerror(errno));
        unlink(tmp);
    }
}

static unsigned long taken_get(const struct unote *n, const char *cid)
{
    for (size_t i = 0; i < n->ntaken; i++)
        if (strcmp(n->taken[i].cid, cid) == 0)
            return n->taken[i].n;
    return 0;
}

/* k more updates of cid were committed: count them (most recent last). */
static void taken_add(struct unote *n, const char *cid, unsigned long k)
{
    struct taken t;
    size_t i;
    memset(&t, 0, sizeof(t));
    for (i = 0; i < n->ntaken && strcmp(n->taken[i].cid, cid) != 0; i++)
        ;
    if (i < n->ntaken) {
        t = n->taken[i];
    } else {
        snprintf(t.cid, sizeof(t.cid), "%s", cid);
        if (n->ntaken == TAKEN_MAX)
            i = 0; /* forget the oldest */
        else
            n->ntaken++;
    }
    memmove(&n->taken[i], &n->taken[i + 1],
            (n->ntaken - 1 - i) * sizeof(n->taken[0]));
    t.n += k;
    n->taken[n->ntaken - 1] = t;
    taken_save(n);
}

static json_t *hello_msg(struct unote *n, struct page *pg)
{
    notes_ui *ui = n->ui;
    json_t *fields = fields_json(n);
    people_refresh(ui);
    json_t *h = json_pack("{s:s, s:i, s:s, s:s, s:I, s:s%, s:o, s:{s:s, s:s, s:s, "
                     "s:s, s:s}}",
                     "t", "hello", "v", 1, "epoch", n->epoch, "note", n->hex,
                     "version", (json_int_t)n->version, "text", n->m, n->mlen,
                     "fields", fields, "me", "session", pg->session, "key",
                     ui->me_key, "fp", ui->me_fp, "name",
                     notes_replica_name(ui->r), "color", ui->me_color);
    if (h && pg->client[0])
        json_object_set_new(h, "taken",
                            json_integer((json_int_t)taken_get(n, pg->client)));
    if (h && ui->has_person)
        json_object_set_new(json_object_get(h, "me"), "person",
                            own_person_json(ui));
    return h;
}

/* Append updates to the history and send them to every page. */
static void note_publish(struct unote *n, json_t *updates)
{
    size_t k = json_array_size(updates);
    if (!k)
        return;
    json_t *msg = json_pack("{s:s, s:I, s:O}", "t", "updates", "version",
                            (json_int_t)n->version, "updates", updates);
    if (getenv("NOTES_UI_DEBUG")) {
        char *d = json_dumps(updates, JSON_COMPACT);
        ui_log(n->ui, "note %.8s: v%lu + %s", n->hex, n->version,
               d ? (strlen(d) > 200 ? "(long)" : d) : "?");
        free(d);
    }
    json_array_extend(n->hist, updates);
    n->version += k;
    if (json_array_size(n->hist) > HIST_MAX) {
        size_t drop = json_array_size(n->hist) - HIST_MAX / 2;
        json_t *keep = json_array();
        for (size_t i = drop; i < json_array_size(n->hist); i++)
            json_array_append(keep, json_array_get(n->hist, i));
        json_decref(n->hist);
        n->hist = keep;
        n->base += drop;
    }
    note_broadcast(n, msg);
    json_decref(msg);
}

static void items_schedule(struct unote *n);

/* Send the front matter to the pages when it changed (a peer set the
 * title, say). */
static void fields_maybe_send(struct unote *n)
{
    json_t *f = fields_json(n);
    char *s = json_dumps(f, JSON_COMPACT | JSON_SORT_KEYS);
    if (s && (!n->fields_json || strcmp(s, n->fields_json) != 0)) {
        int first = n->fields_json == NULL;
        free(n->fields_json);
        n->fields_json = s;
        s = NULL;
        if (!first) {
            json_t *m = json_pack("{s:s, s:O}", "t", "fields", "fields", f);
            note_broadcast(n, m);
            json_decref(m);
        }
    }
    free(s);
    json_decref(f);
}

/*
 * After the doc changed from elsewhere (or a rebuild): publish what the
 * observer collected; on a reset, every page gets a fresh hello (its
 * unacknowledged edits are rebased by the page, docs/web.md).
 */
static void note_flush_remote(struct unote *n)
{
    if (n->reset) {
        n->reset = 0;
        ui_log(n->ui, "note %.8s: state rebuilt; pages reload it", n->hex);
        random_hex(n->epoch, 8); /* a new update list (docs/web.md) */
        json_array_clear(n->remote);
        json_array_clear(n->hist);
        mirror_reload(n);
        n->base = n->version = n->version + 1; /* older versions are gone */
        for (struct page *pg = n->pages; pg; pg = pg->next) {
            json_t *h = hello_msg(n, pg);
            page_send(pg, h);
            json_decref(h);
        }
        items_schedule(n);
        return;
    }
    if (json_array_size(n->remote)) {
        note_publish(n, n->remote);
        json_array_clear(n->remote);
        items_schedule(n);
    }
    fields_maybe_send(n);
}

static struct unote *note_find(notes_ui *ui, const uint8_t id[16])
{
    for (struct unote *n = ui->notes; n; n = n->next)
        if (memcmp(n->id, id, 16) == 0)
            return n;
    return NULL;
}

static void on_items_timer(uv_timer_t *t);

static int note_open(notes_ui *ui, const uint8_t id[16], struct unote **out)
{
    struct unote *n = note_find(ui, id);
    int rc;
    if (n) {
        *out = n;
        return NOTES_OK;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        return NOTES_ENOMEM;
    n->ui = ui;
    memcpy(n->id, id, 16);
    hex16(id, n->hex);
    if ((rc = notes_doc_open(ui->r, id, &n->d))) {
        ui_detail("note %s: %s", n->hex, notes_last_detail());
        free(n);
        return rc;
    }
    n->hist = json_array();
    n->remote = json_array();
    random_hex(n->epoch, 8);
    mirror_reload(n);
    if (!n->m || !n->hist || !n->remote) {
        json_decref(n->hist);
        json_decref(n->remote);
        notes_doc_free(n->d);
        free(n->m);
        free(n);
        return NOTES_ENOMEM;
    }
    notes_doc_observe(n->d, on_text, n);
    taken_load(n);
    fields_maybe_send(n); /* records what hello will carry */
    uv_timer_init(ui->loop, &n->items_timer);
    n->items_timer.data = n;
    n->items_timer_on = 1;
    n->next = ui->notes;
    ui->notes = n;
    *out = n;
    return NOTES_OK;
}

static void on_note_timer_closed(uv_handle_t *h)
{
    struct unote *n = h->data;
    json_decref(n->hist);
    json_decref(n->remote);
    free(n->items_json);
    free(n->fields_json);
    free(n->m);
    free(n);
}

/* Close a note no page has open any more (its doc, timer, history). */
static void note_release(struct unote *n)
{
    notes_ui *ui = n->ui;
    for (struct unote **p = &ui->notes; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            break;
        }
    notes_doc_observe(n->d, NULL, NULL);
    notes_doc_free(n->d);
    n->d = NULL;
    while (n->remotes) {
        struct remote *r = n->remotes;
        n->remotes = r->next;
        remote_free(r);
    }
    uv_close((uv_handle_t *)&n->items_timer, on_note_timer_closed);
}

/* Re-read the note's log: changes from peers and other processes. */
static void note_refresh(struct unote *n)
{
    size_t before = notes_doc_change_count(n->d);
    notes_change_info ci;
    /* Name the updates after the newest change's author (most refreshes
     * bring one author's typing): "peer:<fp>", its `author` too. */
    n->peer_id[0] = '\0';
    int rc = notes_doc_refresh(n->d);
    size_t after = notes_doc_change_count(n->d);
    if (after > before && notes_doc_change(n->d, after - 1, &ci) == NOTES_OK) {
        char fp[NOTES_FPR_STRLEN];
        notes_key_fingerprint(ci.author, fp);
        snprintf(n->peer_id, sizeof(n->peer_id), "peer:%s", fp);
        for (size_t i = 0; i < json_array_size(n->remote); i++) {
            json_t *u = json_array_get(n->remote, i);
            json_object_set_new(u, "clientID", json_string(n->peer_id));
            json_object_set_new(u, "author", json_string(fp));
        }
    }
    if (rc)
        ui_log(n->ui, "note %.8s: refresh: %s", n->hex, notes_last_detail());
    if (after > before)
        items_schedule(n); /* a confirmation or a link changes no text */
    note_flush_remote(n);
}

/* ---- side data: items, presence, status ------------------------------- */

static json_t *items_msg(struct unote *n)
{
    notes_ui *ui = n->ui;
    notes_fmt_outline o;
    memset(&o, 0, sizeof(o));
    json_t *items = json_array(), *orphans = NULL;
    people_refresh(ui);
    if (notes_fmt_outline_doc(n->d, &o) == NOTES_OK) {
        for (size_t i = 0; i < o.nitems; i++) {
            const notes_fmt_item *it = &o.items[i];
            json_t *edited = json_array();
            for (size_t k = 1; k < it->nauthors; k++)
                json_array_append_new(edited,
                                      who_json_of(ui, n->d, it->authors[k]));
            json_array_append_new(
                items,
                json_pack("{s:s, s:s?, s:s, s:s?, s:s?, s:b, s:I, s:o, s:o, "
                          "s:b, s:o, s:I}",
                          "kind",
                          it->kind == NOTES_FMT_ITEM_TASK ? "task" : "decision",
                          "id", it->has_anchor ? it->id : NULL, "text",
                          it->text, "owner", it->owner, "owner_as_written",
                          it->owner_written, "done", it->done, "line",
                          (json_int_t)it->line, "recorded_by",
                          it->nauthors ? who_json_of(ui, n->d, it->authors[0])
                                       : json_null(),
                          "edited_by", edited, "verified", it->verified,
                          "confirmations",
                          confirms_json(ui, n->d, it->confirms, it->nconfirms),
                          "confirmed_by", (json_int_t)it->confirmed_by));
        }
        orphans = confirms_json(ui, n->d, o.orphan_confirms, o.norphans);
    }
    notes_fmt_outline_clear(&o);
    return json_pack("{s:s, s:o, s:o}", "t", "items", "items", items,
                     "unattached_confirmations",
                     orphans ? orphans : json_array());
}

static void items_send(struct unote *n, struct page *only)
{
    json_t *msg = items_msg(n);
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!s)
        return;
    if (only) {
        page_send_str(only, s, strlen(s));
        free(s);
        return;
    }
    if (n->items_json && strcmp(n->items_json, s) == 0) {
        free(s);
        return;
    }
    for (struct page *pg = n->pages; pg; pg = pg->next)
        page_send_str(pg, s, strlen(s));
    free(n->items_json);
    n->items_json = s;
    n->items_last_ms = now_ms();
}

static void on_items_timer(uv_timer_t *t)
{
    struct unote *n = t->data;
    n->items_due = 0;
    if (n->d)
        items_send(n, NULL);
}

/* The outline costs a pass over the text and its authorship: at most
 * every ITEMS_DELAY_MS while people type. */
static void items_schedule(struct unote *n)
{
    if (n->items_due)
        return;
    n->items_due = 1;
    uint64_t since = now_ms() - n->items_last_ms;
    uv_timer_start(&n->items_timer, on_items_timer,
                   since >= ITEMS_DELAY_MS ? 0 : ITEMS_DELAY_MS - since, 0);
}

/* Our pages of this note, as the people list of a presence message. */
static json_t *local_people(struct unote *n)
{
    notes_ui *ui = n->ui;
    json_t *people = json_array();
    for (struct page *pg = n->pages; pg; pg = pg->next) {
        json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "session",
                              pg->session, "name", notes_replica_name(ui->r),
                              "fp", ui->me_fp, "key", ui->me_key, "color",
                              ui->me_color);
        if (ui->has_person)
            json_object_set_new(p, "person", own_person_json(ui));
        json_object_set_new(p, "ranges",
                            pg->ranges ? json_incref(pg->ranges) : json_array());
        json_object_set_new(p, "version",
                            json_integer((json_int_t)(pg->ranges
                                                          ? pg->ranges_version
                                                          : pg->note->version)));
        json_array_append_new(people, p);
    }
    return people;
}

/* Tell the sync side (which signs and gossips it) who has the note open
 * here; an empty list when the last page closed. */
static void presence_publish(struct unote *n)
{
    notes_ui *ui = n->ui;
    if (!ui->publish)
        return;
    json_t *people = local_people(n);
    /* Peers place cursors approximately: positions are in our text. */
    for (size_t i = 0; i < json_array_size(people); i++) {
        json_t *p = json_array_get(people, i);
        json_object_del(p, "fp");
        json_object_del(p, "key");
        json_object_del(p, "version");
        json_object_del(p, "person"); /* peers look it up in the note */
    }
    json_t *rec = json_pack("{s:i, s:o}", "v", 1, "people", people);
    char *s = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (s) {
        ui->publish(ui->publish_ud, n->id, s, strlen(s));
        free(s);
    }
}

static void presence_send(struct unote *n)
{
    uint64_t now = now_ms();
    json_t *people = local_people(n);
    for (struct remote **rp = &n->remotes; *rp;) {
        struct remote *r = *rp;
        if (now - r->seen_ms > PRESENCE_TTL_MS) {
            *rp = r->next;
            remote_free(r);
            continue;
        }
        char key[NOTES_KEY_STRLEN], fp[NOTES_FPR_STRLEN], color[8];
        struct who w;
        notes_key_encode(r->key, key);
        notes_key_fingerprint(r->key, fp);
        key_color(r->key, color);
        /* Who that daemon's key is in this note: its person's colour. */
        who_of(n->ui, n->d, r->key, &w);
        if (w.linked)
            memcpy(color, w.color, sizeof(color));
        for (size_t i = 0; i < json_array_size(r->people); i++) {
            json_t *in = json_array_get(r->people, i);
            const char *name = json_string_value(json_object_get(in, "name"));
            const char *sess = json_string_value(json_object_get(in, "session"));
            json_t *ranges = json_object_get(in, "ranges");
            json_t *p = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:b}", "session",
                                  sess ? sess : "?", "name", name, "fp", fp,
                                  "key", key, "color", color, "remote", 1);
            if (w.linked)
                json_object_set_new(p, "person", who_json(&w, n->d));
            json_object_set_new(p, "ranges", json_is_array(ranges)
                                                 ? json_incref(ranges)
                                                 : json_array());
            /* Positions in the sender's text, taken as ours now: the
             * texts differ at most by what is in flight. */
            json_object_set_new(p, "version",
                                json_integer((json_int_t)n->version));
            json_array_append_new(people, p);
        }
        rp = &r->next;
    }
    json_t *msg = json_pack("{s:s, s:o}", "t", "presence", "people", people);
    note_broadcast(n, msg);
    json_decref(msg);
}

/*
 * A presence record from another daemon, its signature already verified
 * by the sync side: `key` is that daemon's identity (the fact), the
 * names inside are claims. Kept per (note, key) until it expires.
 */
void notes_ui_remote_presence(notes_ui *ui, const uint8_t note[16],
                              const uint8_t key[32], const char *json,
                              size_t n)
{
    json_error_t err;
    struct unote *un = note_find(ui, note);
    struct remote *r;
    if (!un || !un->pages ||
        memcmp(key, notes_replica_public_key(ui->r), 32) == 0)
        return; /* nobody here looks at it, or it is our own, relayed */
    json_t *rec = json_loadb(json, n, JSON_REJECT_DUPLICATES, &err);
    json_t *people = json_object_get(rec, "people");
    if (!json_is_array(people) || json_array_size(people) > 64) {
        ui_log(ui, "ignored a malformed presence record");
        json_decref(rec);
        return;
    }
    /* Keep only well-formed entries with bounded fields. */
    json_t *clean = json_array();
    for (size_t i = 0; i < json_array_size(people); i++) {
        json_t *p = json_array_get(people, i);
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *sess = json_string_value(json_object_get(p, "session"));
        json_t *ranges = json_object_get(p, "ranges");
        if (!sess || strlen(sess) > 32 || (name && strlen(name) > 64))
            continue;
        json_t *e = json_pack("{s:s, s:s?}", "session", sess, "name", name);
        if (json_is_array(ranges) && json_array_size(ranges) <= RANGES_MAX) {
            json_t *rs = json_array();
            for (size_t k = 0; k < json_array_size(ranges); k++) {
                json_t *a = json_object_get(json_array_get(ranges, k), "anchor");
                json_t *h = json_object_get(json_array_get(ranges, k), "head");
                if (json_is_integer(a) && json_is_integer(h) &&
                    json_integer_value(a) >= 0 && json_integer_value(h) >= 0)
                    json_array_append_new(rs, json_pack("{s:O, s:O}", "anchor",
                                                        a, "head", h));
            }
            json_object_set_new(e, "ranges", rs);
        }
        json_array_append_new(clean, e);
    }
    json_decref(rec);
    for (r = un->remotes; r && memcmp(r->key, key, 32) != 0; r = r->next)
        ;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r)))) {
            json_decref(clean);
            return;
        }
        memcpy(r->key, key, 32);
        r->next = un->remotes;
        un->remotes = r;
    }
    json_decref(r->people);
    r->people = clean;
    r->seen_ms = now_ms();
    presence_send(un);
}

static json_t *status_msg(notes_ui *ui)
{
    notes_ui_status st;
    memset(&st, 0, sizeof(st));
    if (ui->status)
        ui->status(ui->status_ud, &st);
    return json_pack("{s:s, s:i, s:b, s:i, s:o}", "t", "status", "peers",
                     (int)st.peers, "online", st.online, "unsent",
                     (int)st.unsent, "last_sync_ms",
                     st.last_sync_ms ? json_integer((json_int_t)st.last_sync_ms)
                                     : json_null());
}

static void on_status_timer(uv_timer_t *t)
{
    notes_ui *ui = t->data;
    uint64_t now = now_ms();
    if (now - ui->last_beat_ms >= PRESENCE_BEAT_MS) {
        ui->last_beat_ms = now;
        for (struct unote *n = ui->notes; n; n = n->next)
            if (n->pages)
                presence_publish(n);
    }
    /* Drop expired remote people (a daemon that went away). */
    for (struct unote *n = ui->notes; n; n = n->next) {
        int expired = 0;
        for (struct remote *r = n->remotes; r; r = r->next)
            expired |= now - r->seen_ms > PRESENCE_TTL_MS;
        if (expired)
            presence_send(n);
    }
    json_t *msg = status_msg(ui);
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!s)
        return;
    if (ui->status_json && strcmp(ui->status_json, s) == 0) {
        free(s);
        return;
    }
    for (struct unote *n = ui->notes; n; n = n->next)
        for (struct page *pg = n->pages; pg; pg = pg->next)
            page_send_str(pg, s, strlen(s));
    free(ui->status_json);
    ui->status_json = s;
}

/* ---- page requests ------------------------------------------------------ */

/*
 * Check a ChangeSet (CodeMirror's toJSON: numbers retain, [del, ...lines]
 * replace) against a document of len16 UTF-16 units: it must cover it
 * exactly. OUT *ins_bytes: bytes it inserts (for a size bound).
 */
static int changes_check(json_t *cs, size_t len16, size_t *ins_bytes)
{
    size_t covered = 0;
    *ins_bytes = 0;
    if (!json_is_array(cs))
        return -1;
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *s = json_array_get(cs, i);
        json_int_t k;
        if (json_is_integer(s)) {
            k = json_integer_value(s);
        } else if (json_is_array(s) && json_array_size(s) >= 1 &&
                   json_is_integer(json_array_get(s, 0))) {
            k = json_integer_value(json_array_get(s, 0));
            if (json_array_size(s) == 2 &&
                json_string_length(json_array_get(s, 1)) == 0)
                return -1; /* a single empty line is not CodeMirror's form */
            for (size_t l = 1; l < json_array_size(s); l++) {
                json_t *line = json_array_get(s, l);
                if (!json_is_string(line) ||
                    memchr(json_string_value(line), '\0',
                           json_string_length(line)) ||
                    memchr(json_string_value(line), '\n',
                           json_string_length(line)))
                    return -1;
                *ins_bytes += json_string_length(line) + 1;
            }
        } else {
            return -1;
        }
        if (k < 0 || (size_t)k > len16 - covered)
            return -1;
        covered += (size_t)k;
    }
    return covered == len16 ? 0 : -1;
}

/*
 * Apply a checked ChangeSet to a scratch copy of the text (*t, *n bytes,
 * malloc'd): -1 if a position falls inside a surrogate pair (a character
 * outside the BMP), so a push is refused before any of it is applied.
 */
static int changes_simulate(char **t, size_t *n, json_t *cs)
{
    size_t pos16 = 0, cp = 0, byte = 0;
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *s = json_array_get(cs, i);
        size_t ncp, nb, ecp, eb;
        if (json_is_integer(s)) {
            size_t k = (size_t)json_integer_value(s);
            if (u16_locate(*t, *n, byte, cp, pos16, pos16 + k, &ncp, &nb))
                return -1;
            pos16 += k, cp = ncp, byte = nb;
            continue;
        }
        size_t del16 = (size_t)json_integer_value(json_array_get(s, 0));
        if (u16_locate(*t, *n, byte, cp, pos16, pos16 + del16, &ecp, &eb))
            return -1;
        size_t tl = 0;
        for (size_t l = 1; l < json_array_size(s); l++)
            tl += json_string_length(json_array_get(s, l)) + 1;
        char *nt = malloc(*n - (eb - byte) + tl + 1);
        if (!nt)
            return -1;
        memcpy(nt, *t, byte);
        size_t o = byte;
        for (size_t l = 1; l < json_array_size(s); l++) {
            if (l > 1)
                nt[o++] = '\n';
            size_t ll = json_string_length(json_array_get(s, l));
            memcpy(nt + o, json_string_value(json_array_get(s, l)), ll);
            o += ll;
        }
        size_t ins = o - byte;
        memcpy(nt + o, *t + eb, *n - eb);
        *n = o + (*n - eb);
        nt[*n] = '\0';
        free(*t);
        *t = nt;
        pos16 += u16_count(nt + byte, ins);
        for (size_t b = byte; b < byte + ins; b += u8len((unsigned char)nt[b]))
            cp++;
        byte += ins;
    }
    return 0;
}

/* Apply a checked ChangeSet to the note as splices. */
static int changes_apply(struct unote *n, json_t *cs)
{
    size_t pos16 = 0, cp = 0, byte = 0;
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *s = json_array_get(cs, i);
        size_t ncp, nb;
        if (json_is_integer(s)) {
            size_t k = (size_t)json_integer_value(s);
            if (u16_locate(n->m, n->mlen, byte, cp, pos16, pos16 + k, &ncp,
                           &nb))
                return NOTES_EBADOP;
            pos16 += k;
            cp = ncp;
            byte = nb;
            continue;
        }
        size_t del16 = (size_t)json_integer_value(json_array_get(s, 0));
        size_t ecp, eb;
        if (u16_locate(n->m, n->mlen, byte, cp, pos16, pos16 + del16, &ecp,
                       &eb))
            return NOTES_EBADOP;
        /* Join the lines. */
        size_t tl = 0;
        for (size_t l = 1; l < json_array_size(s); l++)
            tl += json_string_length(json_array_get(s, l)) + 1;
        char *t = malloc(tl + 1);
        if (!t)
            return NOTES_ENOMEM;
        size_t o = 0;
        for (size_t l = 1; l < json_array_size(s); l++) {
            if (l > 1)
                t[o++] = '\n';
            size_t ll = json_string_length(json_array_get(s, l));
            memcpy(t + o, json_string_value(json_array_get(s, l)), ll);
            o += ll;
        }
        int rc = notes_doc_splice(n->d, cp, ecp - cp, t, o);
        size_t ins16 = u16_count(t, o);
        size_t inscp = 0;
        for (size_t b = 0; b < o; b += u8len((unsigned char)t[b]))
            inscp++;
        free(t);
        if (rc)
            return rc;
        /* The mirror now has the insert at byte `byte`. */
        pos16 += ins16;
        cp += inscp;
        byte += o;
    }
    return NOTES_OK;
}

/* A page's clientID: 16-64 of [A-Za-z0-9_-] ("peer:..." is ours). */
static int client_id_ok(json_t *cid)
{
    const char *c = json_string_value(cid);
    size_t n = json_string_length(cid);
    if (!c || n < CLIENT_ID_MIN || n > CLIENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || c[i] == '_' || c[i] == '-'))
            return 0;
    return 1;
}

static void page_push(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *ver = json_object_get(msg, "version");
    json_t *ups = json_object_get(msg, "updates");
    json_t *aft = json_object_get(msg, "after");
    if (!json_is_integer(ver) || !json_is_array(ups) ||
        json_array_size(ups) == 0 || json_array_size(ups) > PUSH_UPDATES_MAX ||
        (aft && !json_is_integer(aft))) {
        page_close(pg, "malformed push");
        return;
    }
    json_int_t v = json_integer_value(ver), after = aft ? json_integer_value(aft) : 0;
    if (v < 0 || after < 0 || after > v) {
        page_close(pg, "malformed push");
        return;
    }
    if ((unsigned long)(v - after) > n->version) {
        page_close(pg, "push from a version this daemon never had");
        return;
    }
    /*
     * Take in what reached the log first (the sync side merges peers'
     * changes on this same loop): the splices below then apply to the
     * newest text, and the commit has nothing to replay. If that brought
     * updates, this push is stale: the page rebases and pushes again.
     */
    note_refresh(n);
    if ((unsigned long)v != n->version)
        return; /* stale: the page rebases over the updates it gets */
    /* Pipelined (docs/web.md): it builds on this page's own last `after`
     * updates; if one of them was not taken, neither is this push. */
    const char *cid0 =
        json_string_value(json_object_get(json_array_get(ups, 0), "clientID"));
    if (after > 0) {
        if ((unsigned long)(v - after) < n->base || !cid0)
            return;
        for (json_int_t k = v - after; k < v; k++) {
            json_t *h = json_array_get(n->hist, (size_t)k - n->base);
            const char *hc = json_string_value(json_object_get(h, "clientID"));
            if (!hc || strcmp(hc, cid0) != 0)
                return;
        }
    }
    /* Check every update against the length it will apply to: a bad one
     * refuses the whole push before anything is applied. */
    /*
     * Check every update against the text it will apply to, on a scratch
     * copy: coverage of the whole text, and no position inside a surrogate
     * pair. A bad one refuses the whole push before any splice (a refusal
     * midway would leave it half applied). The message is at most 1 MiB,
     * which bounds what a push inserts.
     */
    {
        size_t sn = n->mlen, ins;
        char *scratch = malloc(sn + 1);
        const char *why = scratch ? NULL : "out of memory";
        if (scratch)
            memcpy(scratch, n->m, sn + 1);
        for (size_t i = 0; !why && i < json_array_size(ups); i++) {
            json_t *u = json_array_get(ups, i), *cs = json_object_get(u, "changes");
            json_t *cid = json_object_get(u, "clientID");
            if (!json_is_object(u) || !client_id_ok(cid) ||
                strcmp(json_string_value(cid), cid0 ? cid0 : "") != 0 ||
                changes_check(cs, u16_count(scratch, sn), &ins))
                why = "malformed update";
            else if (changes_simulate(&scratch, &sn, cs) != 0)
                why = "an edit splits a character (a surrogate pair)";
        }
        free(scratch);
        if (why) {
            page_close(pg, why);
            return;
        }
    }
    json_t *out = json_array();
    int rc = NOTES_OK;
    n->applying = 1;
    for (size_t i = 0; i < json_array_size(ups) && !rc; i++) {
        json_t *u = json_array_get(ups, i);
        rc = changes_apply(n, json_object_get(u, "changes"));
        if (!rc)
            json_array_append_new(
                out, json_pack("{s:O, s:O, s:s}", "clientID",
                               json_object_get(u, "clientID"), "changes",
                               json_object_get(u, "changes"), "author",
                               n->ui->me_fp));
    }
    /* The commit may read others' changes first (merged after ours):
     * the observer records those as remote updates. */
    n->applying = 0;
    if (!rc)
        rc = notes_doc_commit(n->d, NULL);
    if (rc) {
        /* Nothing was committed: drop the splices by reopening the doc. */
        ui_log(n->ui, "note %.8s: edit refused: %s (%s)", n->hex,
               notes_strerror(rc), notes_last_detail());
        json_decref(out);
        notes_doc *fresh;
        if (notes_doc_open(n->ui->r, n->id, &fresh) == NOTES_OK) {
            notes_doc_observe(n->d, NULL, NULL);
            notes_doc_free(n->d);
            n->d = fresh;
            notes_doc_observe(n->d, on_text, n);
        }
        n->reset = 1;
        note_flush_remote(n);
        page_close(pg, "the edit could not be stored");
        return;
    }
    /* Committed (on disk): count them for the page, then acknowledge. */
    taken_add(n, cid0, json_array_size(out));
    /* Ours first: changes the commit read from elsewhere were merged
     * into the text after our splices. */
    note_publish(n, out);
    json_decref(out);
    note_flush_remote(n);
    items_schedule(n);
}

static void page_pull(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *ver = json_object_get(msg, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0 ||
        (unsigned long)json_integer_value(ver) > n->version) {
        page_close(pg, "pull from a version this daemon never had");
        return;
    }
    unsigned long v = (unsigned long)json_integer_value(ver);
    if (v < n->base) {
        json_t *h = hello_msg(n, pg); /* too old: start over */
        page_send(pg, h);
        json_decref(h);
        return;
    }
    json_t *ups = json_array();
    for (size_t i = v - n->base; i < json_array_size(n->hist); i++)
        json_array_append(ups, json_array_get(n->hist, i));
    json_t *m = json_pack("{s:s, s:I, s:o}", "t", "updates", "version",
                          (json_int_t)v, "updates", ups);
    page_send(pg, m);
    json_decref(m);
}

static void page_cursor(struct page *pg, json_t *msg)
{
    json_t *ranges = json_object_get(msg, "ranges");
    json_t *ver = json_object_get(msg, "version");
    if (!json_is_array(ranges) || json_array_size(ranges) > RANGES_MAX ||
        !json_is_integer(ver) || json_integer_value(ver) < 0) {
        page_close(pg, "malformed cursor");
        return;
    }
    if ((unsigned long)json_integer_value(ver) > pg->note->version) {
        page_close(pg, "cursor at a version this daemon never had");
        return;
    }
    json_t *clean = json_array();
    for (size_t i = 0; i < json_array_size(ranges); i++) {
        json_t *r = json_array_get(ranges, i);
        json_t *a = json_object_get(r, "anchor"), *h = json_object_get(r, "head");
        if (!json_is_integer(a) || !json_is_integer(h) ||
            json_integer_value(a) < 0 || json_integer_value(h) < 0) {
            json_decref(clean);
            page_close(pg, "malformed cursor");
            return;
        }
        json_array_append_new(clean, json_pack("{s:O, s:O}", "anchor", a,
                                               "head", h));
    }
    json_decref(pg->ranges);
    pg->ranges = clean;
    pg->ranges_version = (unsigned long)json_integer_value(ver);
    presence_send(pg->note);
    presence_publish(pg->note);
}

/*
 * Who wrote what, by person: the devices of one person (linked to it in
 * the note, not contested) are one author with one colour, listing the
 * devices; a device linked to nobody is an author of its own.
 */
static void page_authorship(struct page *pg)
{
    struct unote *n = pg->note;
    notes_ui *ui = n->ui;
    uint32_t *ch = NULL;
    size_t ncp = 0;
    if (notes_doc_dirty(n->d) || notes_doc_authorship(n->d, &ch, &ncp)) {
        json_t *e = json_pack("{s:s, s:s}", "t", "error", "message",
                              "authorship is not available");
        page_send(pg, e);
        json_decref(e);
        return;
    }
    people_refresh(ui);
    json_t *authors = json_array(), *spans = json_array();
    /* Devices seen (their author index), and the authors (first device). */
    struct adev {
        uint8_t key[32];
        size_t author;
    } *devs = NULL;
    struct aauthor {
        uint8_t key[32]; /* the person's, or the device's */
        size_t first;    /* its first device */
    } *auth = NULL;
    size_t nd = 0, dcap = 0, na = 0, acap = 0;
    size_t u = 0, b = 0, start = 0;
    long cur = -1;
    int oom = 0;
    for (size_t i = 0; i <= ncp && !oom; i++) {
        long who = -1;
        notes_change_info ci;
        if (i < ncp && notes_doc_change(n->d, ch[i], &ci) == NOTES_OK) {
            size_t k;
            for (k = 0; k < nd && memcmp(devs[k].key, ci.author, 32) != 0; k++)
                ;
            if (k == nd) { /* a device not seen yet: whose is it? */
                struct who w;
                size_t a;
                if (nd == dcap) {
                    struct adev *t = realloc(devs, (dcap = dcap ? dcap * 2 : 8) *
                                                       sizeof(*t));
                    oom = !t;
                    devs = t ? t : devs;
                }
                if (!oom && na == acap) {
                    struct aauthor *t = realloc(
                        auth, (acap = acap ? acap * 2 : 8) * sizeof(*t));
                    oom = !t;
                    auth = t ? t : auth;
                }
                if (oom)
                    break;
                who_of(ui, n->d, ci.author, &w);
                for (a = 0; a < na && memcmp(auth[a].key, w.key, 32) != 0; a++)
                    ;
                if (a == na) {
                    memcpy(auth[na].key, w.key, 32);
                    auth[na++].first = nd;
                }
                memcpy(devs[nd].key, ci.author, 32);
                devs[nd++].author = a;
            }
            who = (long)devs[k].author;
        }
        if (i == ncp || who != cur) {
            if (cur >= 0 && u > start)
                json_array_append_new(spans, json_pack("[I, I, i]",
                                                       (json_int_t)start,
                                                       (json_int_t)u, (int)cur));
            cur = who;
            start = u;
        }
        if (i < ncp) {
            size_t l = u8len((unsigned char)n->m[b]);
            u += l == 4 ? 2 : 1;
            b += l;
        }
    }
    for (size_t a = 0; a < na && !oom; a++) {
        struct who w;
        who_of(ui, n->d, devs[auth[a].first].key, &w);
        json_t *e = who_json(&w, n->d), *dl = json_array();
        for (size_t k = 0; k < nd; k++) {
            if (devs[k].author != a)
                continue;
            char fp[NOTES_FPR_STRLEN], key[NOTES_KEY_STRLEN];
            notes_key_fingerprint(devs[k].key, fp);
            notes_key_encode(devs[k].key, key);
            json_array_append_new(
                dl, json_pack("{s:s, s:s, s:s?}", "fp", fp, "key", key, "name",
                              notes_doc_author_name(n->d, devs[k].key)));
        }
        json_object_del(e, "device");
        json_object_set_new(e, "devices", dl);
        json_array_append_new(authors, e);
    }
    free(devs);
    free(auth);
    notes_free(ch);
    if (oom) {
        json_decref(authors);
        json_decref(spans);
        page_close(pg, "out of memory");
        return;
    }
    json_t *m = json_pack("{s:s, s:I, s:o, s:o}", "t", "authorship",
                          "version", (json_int_t)n->version, "authors",
                          authors, "spans", spans);
    page_send(pg, m);
    json_decref(m);
}

/* The committed changes in log order, each with its author as a person. */
static void page_history(struct page *pg)
{
    struct unote *n = pg->note;
    notes_ui *ui = n->ui;
    json_t *changes = json_array();
    size_t nc = notes_doc_change_count(n->d);
    /* One description per device (a note has few, and many changes). */
    struct hwho {
        const uint8_t *key;
        json_t *by;
    } *seen = NULL;
    size_t ns = 0, cap = 0;
    people_refresh(ui);
    for (size_t i = 0; i < nc; i++) {
        notes_change_info ci;
        char id[65], fp[NOTES_FPR_STRLEN];
        size_t k;
        if (notes_doc_change(n->d, i, &ci) != NOTES_OK)
            continue;
        for (k = 0; k < ns && memcmp(seen[k].key, ci.author, 32) != 0; k++)
            ;
        if (k == ns) {
            if (ns == cap) {
                struct hwho *t = realloc(seen, (cap = cap ? cap * 2 : 8) *
                                                   sizeof(*t));
                if (!t)
                    break;
                seen = t;
            }
            seen[ns].key = ci.author; /* borrowed from the doc */
            seen[ns++].by = who_json_of(ui, n->d, ci.author);
        }
        sodium_bin2hex(id, sizeof(id), ci.id, 32);
        notes_key_fingerprint(ci.author, fp);
        json_array_append_new(
            changes,
            json_pack("{s:I, s:s, s:s, s:s?, s:I, s:O?}", "index", (json_int_t)i,
                      "id", id, "fp", fp, "name",
                      json_string_value(json_object_get(seen[k].by, "name")),
                      "time_ms", (json_int_t)ci.time_ms, "by", seen[k].by));
    }
    for (size_t k = 0; k < ns; k++)
        json_decref(seen[k].by);
    free(seen);
    json_t *m = json_pack("{s:s, s:o}", "t", "history", "changes", changes);
    page_send(pg, m);
    json_decref(m);
}

static void page_at(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *idx = json_object_get(msg, "index");
    notes_change_info ci;
    char *text = NULL;
    size_t len = 0;
    if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
        notes_doc_change(n->d, (size_t)json_integer_value(idx), &ci) !=
            NOTES_OK) {
        page_close(pg, "no such change");
        return;
    }
    uint8_t v[1][32];
    memcpy(v[0], ci.id, 32);
    if (notes_doc_text_at(n->d, (const uint8_t(*)[32])v, 1, &text, &len) !=
        NOTES_OK) {
        json_t *e = json_pack("{s:s, s:s}", "t", "error", "message",
                              notes_last_detail());
        page_send(pg, e);
        json_decref(e);
        return;
    }
    json_t *m = json_pack("{s:s, s:O, s:s%}", "t", "at", "index", idx, "text",
                          text, len);
    notes_free(text);
    page_send(pg, m);
    json_decref(m);
}

/* A refusal the page shows; the connection stays. */
static void page_error(struct page *pg, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "t", "error", "message", message);
    page_send(pg, e);
    json_decref(e);
}

/*
 * Drop what the doc holds uncommitted (a confirmation whose commit failed)
 * by opening it again; pages get a fresh hello, as after a refused push.
 */
static void note_reopen(struct unote *n)
{
    notes_doc *fresh;
    if (notes_doc_open(n->ui->r, n->id, &fresh) == NOTES_OK) {
        notes_doc_observe(n->d, NULL, NULL);
        notes_doc_free(n->d);
        n->d = fresh;
        notes_doc_observe(n->d, on_text, n);
    }
    n->reset = 1;
    note_flush_remote(n);
}

/*
 * {"t":"confirm","id","text","owner"}: sign "I confirm that item ID reads
 * TEXT, owned by OWNER" (notes confirm). The page sends what it shows; if
 * the item no longer reads so (someone changed it meanwhile), nothing is
 * signed and the page is told to look again. The pushes before it are
 * committed (each push is, when it is taken), and what reached the log is
 * read first, so the item is found on the newest text.
 */
static void page_confirm(struct page *pg, json_t *msg)
{
    struct unote *n = pg->note;
    json_t *jid = json_object_get(msg, "id"), *jtext = json_object_get(msg, "text");
    json_t *jowner = json_object_get(msg, "owner");
    const char *id = json_string_value(jid);
    if (!id || strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16 ||
        !json_is_string(jtext) || json_string_length(jtext) > CONFIRM_TEXT_MAX ||
        (jowner && !json_is_null(jowner) &&
         (!json_is_string(jowner) || json_string_length(jowner) > CONFIRM_OWNER_MAX))) {
        page_close(pg, "malformed confirm");
        return;
    }
    const char *owner = json_is_string(jowner) ? json_string_value(jowner) : "";
    size_t owner_len = json_is_string(jowner) ? json_string_length(jowner) : 0;
    note_refresh(n);
    if (notes_doc_dirty(n->d)) {
        page_error(pg, "edits are still being saved; confirm again");
        return;
    }
    notes_fmt_outline o;
    size_t at;
    memset(&o, 0, sizeof(o));
    int rc = notes_fmt_outline_doc(n->d, &o);
    const notes_fmt_item *it = NULL;
    if (!rc && notes_fmt_item_find(&o, id, &at) == NOTES_OK)
        it = &o.items[at];
    const char *it_owner = it && it->owner ? it->owner : "";
    if (rc) {
        ui_log(n->ui, "note %.8s: confirm: %s", n->hex, notes_strerror(rc));
        page_error(pg, "cannot read the decisions");
    } else if (!it || !it->has_anchor ||
               json_string_length(jtext) != strlen(it->text) ||
               memcmp(json_string_value(jtext), it->text,
                      json_string_length(jtext)) != 0 ||
               owner_len != strlen(it_owner) ||
               memcmp(owner, it_owner, owner_len) != 0) {
        page_error(pg, "the item changed; look again");
    } else {
        int again = 0;
        for (size_t k = 0; k < it->nconfirms; k++)
            again |= it->confirms[k].state == NOTES_FMT_CONF_CONFIRMED &&
                     memcmp(it->confirms[k].by.device,
                            notes_replica_public_key(n->ui->r), 32) == 0;
        /* Confirmed from here already, for this text: nothing to sign. */
        rc = again ? NOTES_OK
                   : notes_doc_confirm(n->d, it->cp_start, it_owner, it->text);
        if (!rc && !again)
            rc = notes_doc_commit(n->d, NULL);
        if (rc) {
            ui_log(n->ui, "note %.8s: confirm refused: %s (%s)", n->hex,
                   notes_strerror(rc), notes_last_detail());
            note_reopen(n);
            page_error(pg, "the confirmation could not be stored");
        } else {
            ui_log(n->ui, "note %.8s: page %s confirmed item %s", n->hex,
                   pg->session, id);
            note_flush_remote(n); /* what the commit read from elsewhere */
            items_send(n, again ? pg : NULL);
        }
    }
    notes_fmt_outline_clear(&o);
}

static void page_message(struct page *pg, const char *p, size_t n)
{
    json_error_t err;
    json_t *msg = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
    const char *t;
    if (!msg || !json_is_object(msg) ||
        !(t = json_string_value(json_object_get(msg, "t")))) {
        page_close(pg, "not a JSON message with a type");
        json_decref(msg);
        return;
    }
    if (strcmp(t, "push") == 0)
        page_push(pg, msg);
    else if (strcmp(t, "pull") == 0)
        page_pull(pg, msg);
    else if (strcmp(t, "cursor") == 0)
        page_cursor(pg, msg);
    else if (strcmp(t, "authorship") == 0)
        page_authorship(pg);
    else if (strcmp(t, "history") == 0)
        page_history(pg);
    else if (strcmp(t, "at") == 0)
        page_at(pg, msg);
    else if (strcmp(t, "confirm") == 0)
        page_confirm(pg, msg);
    else if (strcmp(t, "error") == 0)
        ui_log(pg->note->ui, "page %s: %s", pg->session,
               json_string_value(json_object_get(msg, "message"))
                   ? json_string_value(json_object_get(msg, "message"))
                   : "(no message)");
    else
        page_close(pg, "unknown message type");
    json_decref(msg);
}

/* ---- HTTP ---------------------------------------------------------------- */

/* The Host header must name loopback with our port (DNS rebinding). */
static int host_ok(notes_ui *ui, struct lws *wsi, char *host, size_t nhost)
{
    char want[3][48];
    if (lws_hdr_copy(wsi, host, (int)nhost, WSI_TOKEN_HOST) <= 0)
        return 0;
    snprintf(want[0], sizeof(want[0]), "127.0.0.1:%d", ui->port);
    snprintf(want[1], sizeof(want[1]), "localhost:%d", ui->port);
    snprintf(want[2], sizeof(want[2]), "[::1]:%d", ui->port);
    for (int i = 0; i < 3; i++)
        if (strcasecmp(host, want[i]) == 0)
            return 1;
    return 0;
}

static int token_ok(notes_ui *ui, const char *t)
{
    size_t n = strlen(ui->token);
    return t && strlen(t) == n && sodium_memcmp(t, ui->token, n) == 0;
}

static int cookie_ok(notes_ui *ui, struct lws *wsi)
{
    char buf[128];
    size_t max = sizeof(buf);
    char name[24];
    snprintf(name, sizeof(name), "notes_%d", ui->port);
    if (lws_http_cookie_get(wsi, name, buf, &max))
        return 0;
    buf[max < sizeof(buf) ? max : sizeof(buf) - 1] = '\0';
    return token_ok(ui, buf);
}

static int add_hdr(struct lws *wsi, const char *name, const char *value,
                   unsigned char **p, unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value,
                                       (int)strlen(value), p, end);
}

/* Headers every response carries. */
static int security_headers(struct lws *wsi, const char *nonce,
                            const char *host, unsigned char **p,
                            unsigned char *end)
{
    char csp[512];
    snprintf(csp, sizeof(csp),
             "default-src 'none'; script-src 'self'; style-src 'self'%s%s%s; "
             "img-src 'self' data:; font-src 'self'; connect-src 'self' "
             "ws://%s; base-uri 'none'; form-action 'none'; "
             "frame-ancestors 'none'",
             nonce ? " 'nonce-" : "", nonce ? nonce : "", nonce ? "'" : "",
             host);
    return add_hdr(wsi, "content-security-policy:", csp, p, end) ||
           add_hdr(wsi, "x-content-type-options:", "nosniff", p, end) ||
           add_hdr(wsi, "referrer-policy:", "no-referrer", p, end) ||
           add_hdr(wsi, "x-frame-options:", "DENY", p, end) ||
           add_hdr(wsi, "cross-origin-opener-policy:", "same-origin", p, end) ||
           add_hdr(wsi, "cross-origin-resource-policy:", "same-origin", p, end);
}

/* The response is written: wait for the next request on the connection,
 * or close it when the rest of what the client sends cannot be framed. */
static int http_done(struct lws *wsi, struct pss *ps)
{
    if (ps->close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Start a response; the body (owned or static) is written when writable. */
static int respond(struct lws *wsi, struct pss *ps, unsigned status,
                   const char *type, const void *body, size_t n, void *owned,
                   const char *nonce, const char *host, const char *extra_name,
                   const char *extra_value)
{
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                        *end = buf + sizeof(buf) - 1;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)n, &p,
                                    end) ||
        security_headers(wsi, nonce, host, &p, end) ||
        add_hdr(wsi, "cache-control:", "no-store", &p, end) ||
        (extra_name && add_hdr(wsi, extra_name, extra_value, &p, end)) ||
        (ps->close_after && add_hdr(wsi, "connection:", "close", &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        free(owned);
        return 1;
    }
    ps->body = body;
    ps->owned = owned;
    ps->blen = n;
    ps->boff = 0;
    if (n == 0) {
        free(owned);
        ps->owned = NULL;
        ps->body = NULL;
        return http_done(wsi, ps);
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int respond_text(struct lws *wsi, struct pss *ps, unsigned status,
                        const char *msg, const char *host)
{
    char *b = strdup(msg);
    if (!b)
        return -1;
    return respond(wsi, ps, status, "text/plain; charset=utf-8", b,
                   strlen(b), b, NULL, host, NULL, NULL);
}

static int respond_json(struct lws *wsi, struct pss *ps, unsigned status,
                        json_t *j, const char *host)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return -1;
    return respond(wsi, ps, status, "application/json", s, strlen(s), s, NULL,
                   host, NULL, NULL);
}

static int json_error(struct lws *wsi, struct pss *ps, unsigned status,
                      const char *msg, const char *host)
{
    return respond_json(wsi, ps, status, json_pack("{s:s}", "error", msg),
                        host);
}

/* An HTML shell with its {{NONCE}} placeholders replaced. */
static int respond_html(struct lws *wsi, struct pss *ps, const char *name,
                        const char *host)
{
    const struct ui_asset *a = ui_asset_find(name);
    char nonce[33];
    if (!a)
        return respond_text(wsi, ps, 500,
                            "the page bundle (web/dist) was missing when "
                            "notes was built\n",
                            host);
    random_hex(nonce, 16);
    const char *ph = "{{NONCE}}";
    size_t cap = a->len + 1, count = 0;
    for (const char *s = (const char *)a->data;
         (s = memmem(s, a->len - (size_t)(s - (const char *)a->data), ph, 9));
         s += 9)
        count++;
    cap += count * 32;
    char *out = malloc(cap), *o = out;
    if (!out)
        return -1;
    const char *s = (const char *)a->data, *e = s + a->len;
    while (s < e) {
        const char *hit = memmem(s, (size_t)(e - s), ph, 9);
        size_t k = hit ? (size_t)(hit - s) : (size_t)(e - s);
        memcpy(o, s, k);
        o += k;
        s += k;
        if (hit) {
            memcpy(o, nonce, 32);
            o += 32;
            s += 9;
        }
    }
    return respond(wsi, ps, 200, "text/html; charset=utf-8", out,
                   (size_t)(o - out), out, nonce, host, NULL, NULL);
}

static json_t *notes_list_json(notes_ui *ui)
{
    uint8_t(*ids)[16] = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    if (notes_replica_list(ui->r, &ids, &n) != NOTES_OK)
        return arr;
    for (size_t i = 0; i < n && i < NOTES_LIST_MAX; i++) {
        notes_doc *d;
        char hex[33], space[NOTES_SPACE_NAME_MAX + 1] = "";
        struct unote *open = note_find(ui, ids[i]);
        if (open) {
            d = open->d;
        } else if (notes_doc_open(ui->r, ids[i], &d) != NOTES_OK) {
            continue;
        }
        hex16(ids[i], hex);
        size_t nc = notes_doc_change_count(d);
        notes_change_info ci;
        uint64_t updated = 0;
        if (nc && notes_doc_change(d, nc - 1, &ci) == NOTES_OK)
            updated = ci.time_ms;
        if (notes_sync_space_of_note(notes_replica_home(ui->r), ids[i], space))
            space[0] = '\0';
        json_array_append_new(
            arr, json_pack("{s:s, s:s?, s:s?, s:I, s:I, s:s}", "id", hex,
                           "title", notes_doc_field(d, "title"), "datetime",
                           notes_doc_field(d, "datetime"), "updated_ms",
                           (json_int_t)updated, "changes", (json_int_t)nc,
                           "space", space));
        if (!open)
            notes_doc_free(d);
    }
    notes_free(ids);
    /* Newest first. */
    size_t k = json_array_size(arr);
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(arr, j - 1), *b = json_array_get(arr, j);
            if (json_integer_value(json_object_get(a, "updated_ms")) >=
                json_integer_value(json_object_get(b, "updated_ms")))
                break;
            json_incref(a);
            json_array_set(arr, j - 1, b);
            json_array_set_new(arr, j, a);
        }
    return arr;
}

static json_t *spaces_json(notes_ui *ui)
{
    char **names = NULL;
    size_t n = 0;
    json_t *a = json_array();
    if (notes_sync_space_list(notes_replica_home(ui->r), &names, &n) == NOTES_OK) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_string(names[i]));
        notes_sync_space_names_free(names, n);
    }
    return a;
}

/* Characters (code points) of a UTF-8 string (jansson checked it). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* POST /api/notes and /api/import: create a note, answer its id. */
static int api_create(notes_ui *ui, struct lws *wsi, struct pss *ps,
                      const char *host)
{
    json_error_t err;
    json_t *req = json_loadb(ps->post ? ps->post : "", ps->postlen,
                             JSON_REJECT_DUPLICATES, &err);
    notes_doc *d = NULL;
    int rc;
    char hex[33];
    if (!json_is_object(req)) {
        json_decref(req);
        return json_error(wsi, ps, 400, "the body is not a JSON object", host);
    }
    const char *space = json_string_value(json_object_get(req, "space"));
    if (space && *space && strcmp(space, NOTES_SPACE_DEFAULT) != 0) {
        notes_sync_space sp;
        if (notes_sync_space_load(notes_replica_home(ui->r), space, &sp)) {
            json_decref(req);
            return json_error(wsi, ps, 400, "no such space", host);
        }
        notes_sync_space_clear(&sp);
    }
    if (notes_doc_create(ui->r, &d) != NOTES_OK) {
        json_decref(req);
        return json_error(wsi, ps, 500, notes_last_detail(), host);
    }
    if (strcmp(ps->route, "import") == 0) {
        json_t *md = json_object_get(req, "markdown");
        notes_fmt_diag diag;
        memset(&diag, 0, sizeof(diag));
        if (!json_is_string(md)) {
            rc = NOTES_EINVAL;
            snprintf(diag.msg, sizeof(diag.msg), "no \"markdown\" string");
        } else {
            rc = notes_fmt_md_import(d, json_string_value(md),
                                 json_string_length(md), &diag);
        }
        if (!rc && !notes_doc_dirty(d))
            rc = notes_doc_set_field(d, "title", "Imported note");
        if (rc) {
            char why[300];
            snprintf(why, sizeof(why), "line %zu: %s", diag.line,
                     diag.msg[0] ? diag.msg : notes_strerror(rc));
            notes_doc_free(d);
            json_decref(req);
            return json_error(wsi, ps, 400, why, host);
        }
    } else {
        const char *title = json_string_value(json_object_get(req, "title"));
        char when[40];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
        if (!title || !*title)
            title = "Meeting";
        if (utf8_chars(title) > UI_TITLE_MAX) {
            notes_doc_free(d);
            json_decref(req);
            return json_error(wsi, ps, 400, "the title is longer than 200 "
                                            "characters", host);
        }
        if (notes_doc_splice(d, 0, 0, NOTES_MEETING_BODY,
                             sizeof(NOTES_MEETING_BODY) - 1) ||
            notes_doc_set_field(d, "title", title) ||
            notes_doc_set_field(d, "datetime", when) ||
            notes_doc_list_add(d, "participants", notes_replica_name(ui->r))) {
            notes_doc_free(d);
            json_decref(req);
            return json_error(wsi, ps, 400, notes_last_detail(), host);
        }
    }
    if (notes_doc_commit(d, NULL) != NOTES_OK) {
        notes_doc_free(d);
        json_decref(req);
        return json_error(wsi, ps, 500, notes_last_detail(), host);
    }
    hex16(notes_doc_id(d), hex);
    if (space && *space && strcmp(space, NOTES_SPACE_DEFAULT) != 0 &&
        notes_sync_space_add_note(notes_replica_home(ui->r), space,
                             notes_doc_id(d)) != NOTES_OK)
        ui_log(ui, "note %.8s: not added to space %s: %s", hex, space,
               notes_sync_last_detail());
    ui_log(ui, "note %.8s created from the page", hex);
    notes_doc_free(d);
    json_decref(req);
    return respond_json(wsi, ps, 201, json_pack("{s:s}", "id", hex), host);
}

/* Redirect to `path` setting the cookie: the token leaves the URL (and
 * the history) at once. */
static int redirect_with_cookie(notes_ui *ui, struct lws *wsi, struct pss *ps,
                                const char *path, const char *host)
{
    char cookie[160];
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                        *end = buf + sizeof(buf) - 1;
    (void)ps;
    snprintf(cookie, sizeof(cookie),
             "notes_%d=%s; Path=/; HttpOnly; SameSite=Strict", ui->port,
             ui->token);
    if (lws_add_http_header_status(wsi, HTTP_STATUS_SEE_OTHER, &p, end) ||
        add_hdr(wsi, "location:", path, &p, end) ||
        add_hdr(wsi, "set-cookie:", cookie, &p, end) ||
        security_headers(wsi, NULL, host, &p, end) ||
        add_hdr(wsi, "cache-control:", "no-store", &p, end) ||
        lws_add_http_header_content_length(wsi, 0, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/*
 * `uri` and its query arguments but the token: the token leaves the URL,
 * anything else the link carried (say ?line=12) stays. libwebsockets
 * hands the arguments decoded, so each is encoded again. 0 if it does not
 * fit in `out`.
 */
static int path_without_token(struct lws *wsi, const char *uri, char *out,
                              size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    char arg[512];
    size_t o = (size_t)snprintf(out, n, "%s", uri);
    int sep = '?';
    if (o >= n)
        return 0;
    for (int i = 0;; i++) {
        int len = lws_hdr_copy_fragment(wsi, arg, sizeof(arg),
                                        WSI_TOKEN_HTTP_URI_ARGS, i);
        if (len < 0)
            break;
        if (len == 0 || strncmp(arg, "token=", 6) == 0)
            continue;
        if (o + 1 >= n)
            return 0;
        out[o++] = (char)sep;
        sep = '&';
        int eq = 0;
        for (int k = 0; k < len; k++) {
            unsigned char c = (unsigned char)arg[k];
            int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                        c == '_' || c == '~' || (c == '=' && !eq);
            eq |= c == '=';
            if (o + 4 >= n)
                return 0;
            if (plain) {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = hexd[c >> 4];
                out[o++] = hexd[c & 15];
            }
        }
    }
    out[o] = 0;
    return 1;
}

static int is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int http_request(notes_ui *ui, struct lws *wsi, struct pss *ps,
                        const char *uri)
{
    char host[128], tok[80];
    int is_get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    if (!host_ok(ui, wsi, host, sizeof(host))) {
        ui_log(ui, "refused a request for a foreign host '%s'", host);
        snprintf(host, sizeof(host), "127.0.0.1:%d", ui->port);
        return respond_text(wsi, ps, 421, "misdirected: not a loopback host\n",
                            host);
    }
    const char *tv = lws_get_urlarg_by_name(wsi, "token=", tok, sizeof(tok));
    if (tv) {
        char to[1024];
        if (!token_ok(ui, tv)) {
            ui_log(ui, "refused a wrong token for %s", uri);
            return respond_text(wsi, ps, 403, "forbidden: wrong token\n", host);
        }
        if (!path_without_token(wsi, uri, to, sizeof(to)))
            return respond_text(wsi, ps, 414, "the address is too long\n", host);
        return redirect_with_cookie(ui, wsi, ps, to, host);
    }
    if (!cookie_ok(ui, wsi)) {
        ui_log(ui, "refused a request without the token for %s", uri);
        return respond_text(wsi, ps, 403,
                            "forbidden: open this page with `notes open`\n",
                            host);
    }
    if (is_get) {
        if (strcmp(uri, "/favicon.ico") == 0) /* none: say so quietly */
            return respond(wsi, ps, 204, "image/x-icon", NULL, 0, NULL, NULL,
                           host, NULL, NULL);
        if (strcmp(uri, "/") == 0)
            return respond_html(wsi, ps, "index.html", host);
        if (strncmp(uri, "/n/", 3) == 0 && is_hex32(uri + 3))
            return respond_html(wsi, ps, "note.html", host);
        if (strncmp(uri, "/assets/", 8) == 0) {
            const struct ui_asset *a = ui_asset_find(uri + 8);
            if (a && strstr(uri + 8, ".html") == NULL)
                return respond(wsi, ps, 200, a->type, a->data, a->len, NULL,
                               NULL, host, NULL, NULL);
        }
        if (strcmp(uri, "/api/notes") == 0)
            return respond_json(wsi, ps, 200,
                                json_pack("{s:i, s:o, s:o}", "v", 1, "notes",
                                          notes_list_json(ui), "spaces",
                                          spaces_json(ui)),
                                host);
        return respond_text(wsi, ps, 404, "not found\n", host);
    }
    if (is_post) {
        char type[64] = "", origin[128] = "", want[160], cl[24] = "";
        unsigned long long len, max;
        /*
         * The answer waits for the end of the body (the client is still
         * sending it); a refusal is noted here and given then. A POST
         * without a body is answered now: no body callbacks will come.
         */
        lws_hdr_copy(wsi, type, sizeof(type), WSI_TOKEN_HTTP_CONTENT_TYPE);
        snprintf(want, sizeof(want), "http://%s", host);
        /* A form or a text/plain POST from another site cannot carry
         * this type without a CORS preflight, which we never allow. */
        if (strncasecmp(type, "application/json", 16) != 0)
            ps->err = 415, snprintf(ps->err_msg, sizeof(ps->err_msg), "send JSON");
        /* Browsers send Origin with every POST, the page's own fetch
         * included: one that is missing cannot be shown to be ours. */
        else if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
            ps->err = 403, snprintf(ps->err_msg, sizeof(ps->err_msg), "no Origin");
        else if (strcmp(origin, want) != 0)
            ps->err = 403, snprintf(ps->err_msg, sizeof(ps->err_msg), "foreign origin");
        else if (strcmp(uri, "/api/notes") == 0)
            snprintf(ps->route, sizeof(ps->route), "new");
        else if (strcmp(uri, "/api/import") == 0)
            snprintf(ps->route, sizeof(ps->route), "import");
        else
            ps->err = 404, snprintf(ps->err_msg, sizeof(ps->err_msg), "not found");
        /*
         * libwebsockets (4.1) reads a request body by its Content-Length
         * only: a chunked body (what a client sends without a length)
         * never reaches the body callbacks, and its bytes would be taken
         * for the next request on the connection, which then hangs until
         * the idle timeout. So: answer at once (the refusal, or 411) and
         * close the connection after the answer. Likewise a body over the
         * route's limit is refused at once (413) without reading it.
         */
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            ps->close_after = 1;
            if (!ps->err)
                ps->err = 411, snprintf(ps->err_msg, sizeof(ps->err_msg),
                                        "send a Content-Length");
            return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
        }
        lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
        len = strtoull(cl, NULL, 10);
        max = strcmp(ps->route, "import") == 0 ? UI_IMPORT_BODY_MAX
                                                : UI_POST_BODY_MAX;
        if (len > max) {
            ps->close_after = 1;
            if (!ps->err)
                ps->err = 413, snprintf(ps->err_msg, sizeof(ps->err_msg),
                                        "the body is too large");
            return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
        }
        if (len == 0) {
            if (ps->err)
                return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
            return api_create(ui, wsi, ps, host);
        }
        return 0; /* the body follows */
    }
    return respond_text(wsi, ps, 405, "method not allowed\n", host);
}

/* ---- WebSocket ------------------------------------------------------------ */

/*
 * Should this upgrade be taken? 0, or the HTTP status of the refusal
 * (docs/web.md): 421 a foreign Host, 403 a foreign Origin or no cookie,
 * 404 not /ws or an unknown note, 400 a protocol version other than 1.
 */
static int ws_filter(notes_ui *ui, struct lws *wsi)
{
    char host[128], origin[160], want[160], uri[128], note[40], v[48];
    uint8_t id[16];
    struct unote *n;
    if (!host_ok(ui, wsi, host, sizeof(host))) {
        ui_log(ui, "refused a WebSocket for a foreign host '%s'", host);
        return 421;
    }
    snprintf(want, sizeof(want), "http://%s", host);
    if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0 ||
        strcmp(origin, want) != 0) {
        ui_log(ui, "refused a WebSocket from origin '%s'", origin);
        return 403;
    }
    if (!cookie_ok(ui, wsi)) {
        ui_log(ui, "refused a WebSocket without the token");
        return 403;
    }
    const char *nv, *vv;
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, "/ws") != 0 ||
        !(nv = lws_get_urlarg_by_name(wsi, "note=", note, sizeof(note))) ||
        unhex16(nv, id) != 0) {
        ui_log(ui, "refused a WebSocket for '%s'", uri);
        return 404;
    }
    vv = lws_get_urlarg_by_name(wsi, "v=", v, sizeof(v));
    if (!vv || strcmp(vv, "1") != 0) {
        ui_log(ui, "refused a WebSocket for protocol version '%s'",
               vv ? vv : "(none)");
        return 400;
    }
    if (note_open(ui, id, &n) != NOTES_OK) {
        ui_log(ui, "refused a WebSocket for note %s: %s", note, ui_err);
        return 404;
    }
    if (!n->pages)
        note_refresh(n);
    return 0;
}

/*
 * Refuse an upgrade with an HTTP answer (written now, in one piece: the
 * connection closes when the filter callback returns), so the client sees
 * why instead of a dropped connection.
 */
static void ws_refuse(notes_ui *ui, struct lws *wsi, int status)
{
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                        *end = buf + sizeof(buf) - 1;
    char host[64], body[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", ui->port);
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}",
                     status == 403 ? "forbidden" : status == 421
                                                       ? "misdirected"
                                     : status == 400 ? "protocol version"
                                                     : "not found");
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json",
                                    (lws_filepos_t)n, &p, end) ||
        security_headers(wsi, NULL, host, &p, end) ||
        add_hdr(wsi, "cache-control:", "no-store", &p, end) ||
        add_hdr(wsi, "connection:", "close", &p, end) ||
        lws_finalize_http_header(wsi, &p, end) ||
        (size_t)(end - p) < (size_t)n)
        return;
    memcpy(p, body, (size_t)n);
    p += n;
    lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS);
}

static void ws_established(notes_ui *ui, struct lws *wsi, struct pss *ps)
{
    char note[40];
    uint8_t id[16];
    struct unote *n;
    struct page *pg;
    const char *nv = lws_get_urlarg_by_name(wsi, "note=", note, sizeof(note));
    if (!nv || unhex16(nv, id) || !(n = note_find(ui, id)) ||
        !(pg = calloc(1, sizeof(*pg)))) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        return;
    }
    pg->note = n;
    pg->wsi = wsi;
    random_hex(pg->session, 8);
    {
        char arg[CLIENT_ID_MAX + 16];
        const char *cv = lws_get_urlarg_by_name(wsi, "client=", arg,
                                                (int)sizeof(arg));
        json_t *cj = cv ? json_string(cv) : NULL;
        if (cj && client_id_ok(cj))
            snprintf(pg->client, sizeof(pg->client), "%s", cv);
        json_decref(cj);
    }
    pg->next = n->pages;
    n->pages = pg;
    ps->pg = pg;
    json_t *h = hello_msg(n, pg);
    page_send(pg, h);
    json_decref(h);
    items_send(n, pg);
    json_t *st = status_msg(ui);
    page_send(pg, st);
    json_decref(st);
    presence_send(n);
    presence_publish(n);
    ui_log(ui, "page %s opened note %.8s", pg->session, n->hex);
}

static void ws_closed(struct pss *ps)
{
    struct page *pg = ps->pg;
    free(ps->rx);
    ps->rx = NULL;
    if (!pg)
        return;
    struct unote *n = pg->note;
    for (struct page **p = &n->pages; *p; p = &(*p)->next)
        if (*p == pg) {
            *p = pg->next;
            break;
        }
    while (pg->qh) {
        struct ui_msg *m = pg->qh;
        pg->qh = m->next;
        free(m);
    }
    json_decref(pg->ranges);
    free(pg);
    ps->pg = NULL;
    if (!n->ui->stopped)
        presence_publish(n);
    /* The note stays open, with its update list: a page that comes back
     * (a reload) continues from its version while this daemon runs. */
    if (n->pages)
        presence_send(n);
}

/*
 * Close now if the page must go: lws sends the close frame with our
 * reason only when the callback that returns -1 is the receive one, so
 * closes decided while reading happen here, others at the next writeable.
 */
static int ws_close_now(struct lws *wsi, struct page *pg)
{
    if (!pg->close_why[0])
        return 0;
    lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                     (unsigned char *)pg->close_why, strlen(pg->close_why));
    return -1;
}

static int ws_receive(struct lws *wsi, struct pss *ps, const void *in,
                      size_t len)
{
    struct page *pg = ps->pg;
    if (!pg)
        return -1;
    if (lws_frame_is_binary(wsi)) {
        page_close(pg, "binary frames are not part of the protocol");
        return ws_close_now(wsi, pg);
    }
    if (ps->rxlen + len > NOTES_UI_MSG_MAX) {
        page_close(pg, "message over 1 MiB");
        return ws_close_now(wsi, pg);
    }
    char *rx = realloc(ps->rx, ps->rxlen + len + 1);
    if (!rx)
        return -1;
    ps->rx = rx;
    memcpy(ps->rx + ps->rxlen, in, len);
    ps->rxlen += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;
    if (!pg->close_why[0])
        page_message(pg, ps->rx, ps->rxlen);
    free(ps->rx);
    ps->rx = NULL;
    ps->rxlen = 0;
    return ws_close_now(wsi, pg);
}

static int ws_writeable(struct lws *wsi, struct pss *ps)
{
    struct page *pg = ps->pg;
    if (!pg)
        return -1;
    if (pg->close_why[0]) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)pg->close_why, strlen(pg->close_why));
        return -1;
    }
    struct ui_msg *m = pg->qh;
    if (!m)
        return 0;
    if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) <
        (int)m->len)
        return -1;
    pg->qh = m->next;
    if (!pg->qh)
        pg->qt = NULL;
    pg->qbytes -= m->len;
    free(m);
    if (pg->qh)
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---- the lws callback ------------------------------------------------------ */

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    struct pss *ps = user;
    notes_ui *ui = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        memset(ps, 0, sizeof(*ps));
        return http_request(ui, wsi, ps, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        if (ps->err)
            return 0; /* refused already: read and drop */
        if (!ps->route[0])
            return -1;
        if (ps->postlen + len > UI_IMPORT_BODY_MAX)
            return -1; /* more than its Content-Length: a broken client */
        {
            char *p = realloc(ps->post, ps->postlen + len + 1);
            if (!p)
                return -1;
            ps->post = p;
            memcpy(ps->post + ps->postlen, in, len);
            ps->postlen += len;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        char host[128];
        if (!host_ok(ui, wsi, host, sizeof(host)))
            return -1;
        if (ps->err)
            return json_error(wsi, ps, (unsigned)ps->err, ps->err_msg, host);
        return api_create(ui, wsi, ps, host);
    }
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!ps->body)
            return 0;
        size_t chunk = ps->blen - ps->boff;
        unsigned char buf[LWS_PRE + 16384];
        if (chunk > sizeof(buf) - LWS_PRE)
            chunk = sizeof(buf) - LWS_PRE;
        memcpy(buf + LWS_PRE, ps->body + ps->boff, chunk);
        ps->boff += chunk;
        int last = ps->boff == ps->blen;
        if (lws_write(wsi, buf + LWS_PRE, chunk,
                      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)chunk)
            return -1;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        free(ps->owned);
        ps->owned = NULL;
        ps->body = NULL;
        return http_done(wsi, ps);
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (ps) {
            free(ps->owned);
            ps->owned = NULL;
            ps->body = NULL;
            free(ps->post);
            ps->post = NULL;
        }
        break;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        int status = ws_filter(ui, wsi);
        if (status)
            ws_refuse(ui, wsi, status);
        return status ? 1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        memset(ps, 0, sizeof(*ps));
        ws_established(ui, wsi, ps);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(wsi, ps, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_writeable(wsi, ps);
    case LWS_CALLBACK_CLOSED:
        ws_closed(ps);
        return 0;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"notes", callback, sizeof(struct pss), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

/* ---- store watch ------------------------------------------------------- */

static void on_store_event(uv_fs_event_t *h, const char *file, int events,
                           int status)
{
    notes_ui *ui = h->data;
    uint8_t id[16];
    char hex[33];
    (void)events;
    if (status < 0 || ui->stopped)
        return;
    if (!file) {
        for (struct unote *n = ui->notes; n; n = n->next)
            note_refresh(n);
        return;
    }
    /* "ID.log" (and its temporaries): refresh that note if open. */
    if (strlen(file) < 36 || memcmp(file + 32, ".log", 4) != 0)
        return;
    memcpy(hex, file, 32);
    hex[32] = '\0';
    if (unhex16(hex, id) != 0)
        return;
    struct unote *n = note_find(ui, id);
    if (n && n->pages)
        note_refresh(n);
}

/* ---- start / stop ---------------------------------------------------------- */

static int parse_listen(const char *listen, char *host, size_t nh, int *port)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long p;
    if (!colon || (size_t)(colon - listen) >= nh)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (errno || *end || p < 0 || p > 65535 || end == colon + 1)
        return -1;
    *port = (int)p;
    return 0;
}

/* The bind probe closes before the loop runs: never called. */
static void probe_conn(uv_stream_t *s, int status)
{
    (void)s;
    (void)status;
}

static void lws_log_quiet(int level, const char *line)
{
    (void)level;
    (void)line;
}

int notes_ui_start(void *loop, const notes_ui_opts *o, notes_ui **out)
{
    char host[64];
    int port;
    struct lws_context_creation_info info;
    notes_ui *ui;
    void *foreign[1] = {loop};
    *out = NULL;
    if (parse_listen(o->listen ? o->listen : "127.0.0.1:7464", host,
                     sizeof(host), &port) ||
        strcmp(host, "127.0.0.1") != 0) {
        ui_detail("the page listens on 127.0.0.1:PORT only, not '%s'",
                  o->listen);
        return NOTES_EINVAL;
    }
    if (!(ui = calloc(1, sizeof(*ui))))
        return NOTES_ENOMEM;
    ui->loop = loop;
    ui->r = o->replica;
    ui->log = o->log;
    ui->status = o->status;
    ui->status_ud = o->status_ud;
    ui->publish = o->publish;
    ui->publish_ud = o->publish_ud;
    if (o->token) {
        snprintf(ui->token, sizeof(ui->token), "%s", o->token);
    } else {
        random_hex(ui->token, 20);
    }
    random_hex(ui->epoch, 8);
    notes_key_encode(notes_replica_public_key(ui->r), ui->me_key);
    notes_key_fingerprint(notes_replica_public_key(ui->r), ui->me_fp);
    key_color(notes_replica_public_key(ui->r), ui->me_color);
    people_refresh(ui); /* our person's colour, if there is one */

    lws_set_log_level(LLL_ERR, lws_log_quiet);
    memset(&info, 0, sizeof(info));
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_LIBUV |
                   LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.foreign_loops = foreign;
    info.user = ui;
    info.max_http_header_data = 4096;
    info.timeout_secs = 20;
    info.ka_time = 0;
    /*
     * Bind the port ourselves first: with libuv, lws_create_context
     * returns a context even when it cannot listen, so a port in use
     * would go unnoticed; and port 0 needs a real port for lws.
     */
    {
        uv_tcp_t probe;
        struct sockaddr_in sa;
        struct sockaddr_storage got;
        int gl = sizeof(got), e;
        uv_ip4_addr("127.0.0.1", port, &sa);
        uv_tcp_init((uv_loop_t *)loop, &probe);
        e = uv_tcp_bind(&probe, (const struct sockaddr *)&sa, 0);
        if (!e)
            e = uv_listen((uv_stream_t *)&probe, 1, probe_conn);
        if (!e)
            e = uv_tcp_getsockname(&probe, (struct sockaddr *)&got, &gl);
        if (!e)
            port = ntohs(((struct sockaddr_in *)&got)->sin_port);
        uv_close((uv_handle_t *)&probe, NULL);
        uv_run((uv_loop_t *)loop, UV_RUN_NOWAIT);
        if (e) {
            ui_detail("cannot serve the page on 127.0.0.1:%d: %s", port,
                      uv_strerror(e));
            free(ui);
            return NOTES_EIO;
        }
        info.port = port;
    }
    ui->port = port;
    ui->ctx = lws_create_context(&info);
    if (!ui->ctx) {
        ui_detail("cannot serve the page on 127.0.0.1:%d (in use?)", port);
        free(ui);
        return NOTES_EIO;
    }
    /* Watch the store: commits by peers (through the sync side) and by
     * other processes. */
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/notes", notes_replica_home(ui->r));
    mkdir(dir, 0700);
    uv_fs_event_init(ui->loop, &ui->watch);
    ui->watch.data = ui;
    if (uv_fs_event_start(&ui->watch, on_store_event, dir, 0) == 0)
        ui->watching = 1;
    uv_timer_init(ui->loop, &ui->status_timer);
    ui->status_timer.data = ui;
    uv_timer_start(&ui->status_timer, on_status_timer, STATUS_MS, STATUS_MS);
    ui->timing = 1;
    *out = ui;
    return NOTES_OK;
}

int notes_ui_port(const notes_ui *ui)
{
    return ui->port;
}

const char *notes_ui_token(const notes_ui *ui)
{
    return ui->token;
}

void notes_ui_stop(notes_ui *ui)
{
    if (!ui || ui->stopped)
        return;
    ui->stopped = 1;
    /* Pages' connections close with the context (LWS_CALLBACK_CLOSED
     * frees them); notes are released below. */
    lws_context_destroy(ui->ctx);
    ui->ctx_dying = ui->ctx;
    ui->ctx = NULL;
    while (ui->notes)
        note_release(ui->notes);
    if (ui->watching)
        uv_close((uv_handle_t *)&ui->watch, NULL);
    if (ui->timing)
        uv_close((uv_handle_t *)&ui->status_timer, NULL);
}

void notes_ui_free(notes_ui *ui)
{
    if (!ui)
        return;
    /* With a foreign libuv loop the context is destroyed in two steps:
     * notes_ui_stop starts it, the loop closes lws' handles, this ends it
     * (libwebsockets issue #1969). */
    if (ui->ctx_dying)
        lws_context_destroy(ui->ctx_dying);
    free(ui->status_json);
    free(ui->pets);
    sodium_memzero(ui->token, sizeof(ui->token));
    free(ui);
}

/* ---- ui.json: how `notes open` finds the page ------------------------------ */

int notes_ui_write_state(const notes_ui *ui, const char *home)
{
    char path[4096], tmp[4200];
    json_t *j = json_pack("{s:i, s:s, s:s, s:i}", "v", 1, "url", "",
                          "token", ui->token, "pid", (int)getpid());
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ui->port);
    json_object_set_new(j, "url", json_string(url));
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!s)
        return NOTES_ENOMEM;
    snprintf(path, sizeof(path), "%s/ui.json", home);
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t n = strlen(s);
    int ok = fd >= 0 && write(fd, s, n) == (ssize_t)n && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    free(s);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        ui_detail("cannot write %s: %s", path, strerror(errno));
        return NOTES_EIO;
    }
    return NOTES_OK;
}

int notes_ui_saved_token(const char *home, char *token, size_t ntoken)
{
    char path[4096];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/ui.json", home);
    json_t *j = json_load_file(path, 0, &err);
    const char *t = json_string_value(json_object_get(j, "token"));
    int ok = t && strlen(t) >= 32 && strlen(t) < ntoken;
    for (size_t i = 0; ok && t[i]; i++)
        ok = (t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f');
    if (ok)
        snprintf(token, ntoken, "%s", t);
    json_decref(j);
    return ok ? NOTES_OK : NOTES_ENOTFOUND;
}

int notes_ui_read_state(const char *home, char *url, size_t nurl, char *token,
                        size_t ntoken)
{
    char path[4096];
    json_error_t err;
    snprintf(path, sizeof(path), "%s/ui.json", home);
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        ui_detail("no page is served: start `notes serve`");
        return NOTES_ENOTFOUND;
    }
    const char *u = json_string_value(json_object_get(j, "url"));
    const char *t = json_string_value(json_object_get(j, "token"));
    json_int_t pid = json_integer_value(json_object_get(j, "pid"));
    int alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
    if (!u || !t || !alive) {
        json_decref(j);
        ui_detail("no page is served: start `notes serve`");
        return NOTES_ENOTFOUND;
    }
    snprintf(url, nurl, "%s", u);
    snprintf(token, ntoken, "%s", t);
    json_decref(j);
    return NOTES_OK;
}
