/*
 * main.c: the `notes` command: option handling, the command table, and the
 * helpers every command shares (note lookup, error reporting, output).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const struct cli_cmd cli_commands[] = {
    {"init", cmd_init, "[--name NAME] [--protect] [--device]",
     "Create the replica in $NOTES_HOME with a new Ed25519 device key and\n"
     "a person key that certifies it (HOME/person): your changes show as\n"
     "you on every device you link. On a second device of yours use\n"
     "--device (no new person), then `notes device add`. --protect (or a set\n"
     "NOTES_PASSPHRASE) seals both secret keys with a passphrase (Argon2id +\n"
     "secretbox).\n"
     "  notes init --name \"Maria\"\n  notes init --name \"Maria\" --device", 0},
    {"whoami", cmd_whoami, "[--json]",
     "Print this replica's identity: name, public key, fingerprint.\n"
     "  notes whoami", CLI_NEEDS_REPLICA},
    {"new", cmd_new, "TITLE [--template FILE] [--carry | --carry-from NOTE]",
     "Start a meeting note: front matter (title, datetime now, you as\n"
     "participant) and sections Agenda, Discussions, TODOs and Decisions, or\n"
     "your own template (a Markdown file; title, datetime and you are filled\n"
     "in). Prints the note's id. --carry brings the open action items of the\n"
     "last meeting of the same series (the title without numbers and dates),\n"
     "--carry-from those of NOTE.\n"
     "  notes new \"Weekly sync\"\n  notes new \"Retro\" --template retro.md\n"
     "  notes new \"Weekly sync #13\" --carry", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"list", cmd_list, "[--json]",
     "List notes: short id, title, datetime, authors; newest first.\n"
     "Read from the notes index ($NOTES_HOME/index.sqlite, the search's), a\n"
     "cache of the logs checked against them each time.\n"
     "  notes list", CLI_NEEDS_REPLICA | CLI_BULK_OUT},
    {"search", cmd_search, "QUERY... [--limit N] [--json]",
     "Search every note, best match first (BM25): each note's id, date and\n"
     "title, and its matching lines numbered as `notes show` prints them.\n"
     "Words must all occur (word* for a prefix); \"a phrase\" in quotes;\n"
     "filters owner:WHO (an item's owner, as written or resolved), tag:TAG,\n"
     "participant:NAME, after:YYYY-MM-DD (on or after), before:YYYY-MM-DD.\n"
     "The index is a cache of the logs ($NOTES_HOME/index.sqlite), updated\n"
     "by each search for the notes that changed, rebuilt if damaged.\n"
     "  notes search freeze window\n"
     "  notes search '\"release 1.0\"' owner:RD after:2023-01-01\n"
     "  notes search tag:community --limit 5", CLI_NEEDS_REPLICA},
    {"show", cmd_show, "NOTE [--at CHANGE | --conflicts] [--json]",
     "Print a note as Markdown: its front matter, then its text. --at shows\n"
     "the whole note as it was once CHANGE (an id prefix from `notes log`)\n"
     "was applied. --conflicts prints only the conflicts: front-matter values\n"
     "that lost a concurrent write, and lines two people rewrote at the same\n"
     "time, with each one's version, who and which change.\n"
     "  notes show weekly\n  notes show 3f2a --at 9c01be\n"
     "  notes show weekly --conflicts", CLI_NEEDS_REPLICA},
    {"append", cmd_append, "NOTE [--section HEADING] [-q] TEXT|-",
     "Append a paragraph (or stdin with -) to the note's discussion (never\n"
     "among its decisions), or to the end of the section whose heading\n"
     "contains HEADING, and commit it as a signed change; -q: no report.\n"
     "  notes append weekly \"RD: book the room\"\n"
     "  notes append weekly --section agenda \"* Release plan\"",
     CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"edit", cmd_edit, "NOTE",
     "Open the whole note (front matter and text, as `notes show` prints it)\n"
     "in $VISUAL or $EDITOR (default vi). When you save and quit, what you\n"
     "changed is recorded as a signed change against the version you opened:\n"
     "fields changed in the front matter become field changes, and edits that\n"
     "arrived meanwhile are merged, not overwritten. A malformed front matter\n"
     "is refused and nothing is recorded. Saving unchanged records nothing.\n"
     "  EDITOR=nano notes edit weekly", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"resolve", cmd_resolve, "NOTE LINE --keep N",
     "Choose between versions of a line edited concurrently (notes show\n"
     "NOTE --conflicts numbers them): the line(s) become version N, recorded\n"
     "as a signed change that has seen both, which ends the conflict.\n"
     "  notes resolve weekly 14 --keep 2", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"revert", cmd_revert, "NOTE CHANGE",
     "Undo one change (an id prefix from `notes log`) with a new signed\n"
     "change: the text it inserted is deleted, the text it deleted put back,\n"
     "its field writes undone (a field written again since is left alone).\n"
     "The history stays as it is; the undoing is one more change.\n"
     "  notes revert weekly 9c01be", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"restore", cmd_restore, "NOTE --at CHANGE",
     "Make the note read again as it did once CHANGE was applied (`notes\n"
     "show NOTE --at CHANGE`), front matter included, with a new signed\n"
     "change; the history stays as it is.\n"
     "  notes restore weekly --at 9c01be", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"decide", cmd_decide, "NOTE TEXT [--owner WHO] [-q]",
     "Record a decision in the note's decisions section (TODOs and\n"
     "Decisions, Decisions, Tasks, Action items...; created if missing), as\n"
     "\"WHO: Decision: TEXT\" or \"TEXT\"; -q: no report.\n"
     "  notes decide weekly \"Ship 1.0 on Friday\" --owner Everyone",
     CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"todo", cmd_todo, "NOTE TEXT --owner WHO [-q]",
     "Record an action item, \"- [ ] WHO: TEXT\", in the decisions section.\n"
     "  notes todo weekly \"Book the room\" --owner RD",
     CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"done", cmd_done, "NOTE ITEM",
     "Mark an action item done (\"- [ ]\" becomes \"- [x]\", \"RD: x\" becomes\n"
     "\"- [x] RD: x\"). ITEM: its number in `notes decisions NOTE`, its id, or\n"
     "a unique part of its text.\n"
     "  notes done weekly 3\n  notes done weekly \"book the room\"",
     CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"decisions", cmd_decisions, "[NOTE] [--open] [--owner WHO] [--json]",
     "Decisions and action items of a note, each with its owner, who recorded\n"
     "it (claimed name and key fingerprint) and whether the signatures behind\n"
     "it verify. Without NOTE: the open action items of all notes, read from\n"
     "the notes index as `notes list`. --open: open action items only;\n"
     "--owner: those WHO owns (or everyone does).\n"
     "  notes decisions weekly\n  notes decisions --owner RD",
     CLI_NEEDS_REPLICA | CLI_BULK_OUT},
    {"set", cmd_set, "NOTE FIELD[+|-] [VALUE...]",
     "Set a front-matter field (FIELD matches the note's fields whatever the\n"
     "case). On a list field (participants, tags, teams, or any with\n"
     "elements) the VALUEs replace the list; FIELD+ adds one, FIELD- removes\n"
     "one. datetime takes ISO 8601 (2023-05-15T13:00+02:00, 2023-05-15).\n"
     "No VALUE removes the field; the title cannot be removed (NOTE finds\n"
     "notes by it), only changed. Prints one line saying what changed.\n"
     "  notes set weekly title \"Weekly sync #2\"\n"
     "  notes set weekly participants+ Maria\n"
     "  notes set weekly participants Ana Dana", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"log", cmd_log, "NOTE [--json]",
     "The note's history: change id, author, time, what it did (text\n"
     "+inserted -deleted, which field was set to what, which item was\n"
     "confirmed, which device was linked). Changes of a key that signed two\n"
     "changes with one seq are marked [equivocating key].\n"
     "  notes log weekly", CLI_NEEDS_REPLICA},
    {"blame", cmd_blame, "NOTE [--json]",
     "Each line of the note as `notes show` prints it, front matter included,\n"
     "with the last change that wrote it and everyone who wrote part of it\n"
     "(latest first).\n"
     "  notes blame weekly", CLI_NEEDS_REPLICA},
    {"diff", cmd_diff, "NOTE A [B]",
     "The difference between the whole note (front matter and text) as it\n"
     "was once change A was applied and once change B was (default: now), as\n"
     "a unified diff with the line numbers of `notes show`. A and B are\n"
     "change id prefixes from `notes log`.\n"
     "  notes diff weekly 9c01be\n  notes diff weekly 9c01be 3f2a11",
     CLI_NEEDS_REPLICA},
    {"verify", cmd_verify, "[NOTE | FILE] [--json]",
     "Check every record checksum, signature, hash chain, sequence number,\n"
     "dependency, device link and revocation of one note or all notes, and\n"
     "that nothing this replica acknowledged is damaged or missing (a log cut,\n"
     "damaged or replaced by an older copy). Without NOTE also the check lines\n"
     "of identity, identity.pub, person, certs, trust, spaces/* and remotes.\n"
     "Exits 2\n"
     "naming each problem with its file and offset (including equivocation:\n"
     "one author signing two changes with one seq; that key's changes are\n"
     "kept and applied, and marked in log, decisions and the page). Remarks\n"
     "(\"note: ...\") are not problems: an interrupted write never\n"
     "acknowledged, evidence files kept from a repair, files from an older\n"
     "version without a check line. Given a FILE (a bundle, or Markdown exported\n"
     "with --attest), needs no replica: verifies it and prints the note with\n"
     "who wrote each line and who recorded and confirmed each decision; any\n"
     "edit to an attested Markdown file is reported with where.\n"
     "  notes verify\n  notes verify weekly.bundle\n  notes verify weekly.md", 0},
    {"export", cmd_export, "NOTE [--format md|json|html|bundle] [-o FILE] [--attest]",
     "Write the note out: Markdown (default), JSON, HTML, or a bundle of its\n"
     "signed changes (only this note, no space secret) that anyone can check\n"
     "with `notes verify FILE` or import. --attest also writes FILE.attest\n"
     "beside the Markdown: the bundle and a hash, so `notes verify FILE`\n"
     "proves the Markdown is exactly the signed note. With -o, one line says\n"
     "what was written (-q: none).\n"
     "  notes export weekly -o weekly.md\n"
     "  notes export weekly -o weekly.md --attest\n"
     "  notes export weekly --format bundle -o weekly.bundle",
     CLI_NEEDS_REPLICA},
    {"import", cmd_import, "[--again] FILE|-",
     "Import a Markdown note (front matter and text, e.g. a meeting note\n"
     "written elsewhere or exported with `notes export`) as a new note, or a\n"
     "bundle of signed changes (from `notes export --format bundle`): every\n"
     "change is verified before anything is stored; a note already present\n"
     "is merged. Prints the note's id. A Markdown file already imported (the\n"
     "note unchanged, or edited since) is not imported twice: that note's id\n"
     "is printed and stderr says so; --again imports a second copy.\n"
     "  notes import meeting.md\n  notes import weekly.bundle", CLI_NEEDS_REPLICA},
    {"space", cmd_space, "create NAME | list | show NAME | add NAME NOTE | remove NAME NOTE",
     "Spaces are shared notebooks: a name and a secret. Only members of a\n"
     "space can connect, and only its notes travel. Notes are in no space\n"
     "(\"personal\", never synced) until added.\n"
     "  notes space create team\n  notes space add team weekly",
     CLI_NEEDS_REPLICA},
    {"invite", cmd_invite, "SPACE [--address HOST:PORT] [--relay HOST:PORT]...",
     "Print a join code for SPACE carrying its secret, your key, the\n"
     "address where you serve (default: this machine's address, port 7654)\n"
     "and the relays where your daemon meets the space (--relay, up to 4;\n"
     "default: $NOTES_HOME/relays and the running daemon's), so that members\n"
     "on other networks can join. The code is the secret: share it only\n"
     "with members.\n"
     "  notes invite team --address 192.168.1.20:7654\n"
     "  notes invite team --relay 203.0.113.7:7656", CLI_NEEDS_REPLICA},
    {"join", cmd_join, "CODE",
     "Join the space of an invite code and sync at once: with the inviter's\n"
     "address, else (after 3 s) with any member at the code's relays, which\n"
     "are remembered in $NOTES_HOME/relays for notes serve. The inviter's key\n"
     "(in the code) is then named in your trust list by the name it claims\n"
     "(change it with notes trust).\n"
     "  notes join notes1...", CLI_NEEDS_REPLICA},
    {"remote", cmd_remote, "add NAME URL [--space SPACE] | list | remove NAME",
     "Git remotes: a git repository (a path, file://, ssh://, git@host:,\n"
     "https://, git://, with your usual ssh agent or credential helper)\n"
     "where the devices of a space leave their changes for each other,\n"
     "encrypted under a key from the space secret: for laptops that are\n"
     "never online together. Each device writes only its own ref; the host\n"
     "sees no title, note id or name. Sync with notes sync NAME.\n"
     "--space: the space (default: the only one). remove forgets the remote\n"
     "here, leaving the repository as it is. docs/remote.md has the details.\n"
     "  notes remote add origin git@example.org:team/notes.git --space team\n"
     "  notes remote list\n  notes remote remove origin", CLI_NEEDS_REPLICA},
    {"publish", cmd_publish,
     "SPACE [NOTE...] --to DIR_OR_URL [--branch B] [--path P]",
     "Publish the minutes: the space's notes (or the NOTEs named, each in\n"
     "SPACE) as Markdown files in a git repository, one per meeting named\n"
     "from its date and title (2023-05-15-community-gathering.md), each with\n"
     "its .attest sidecar so that anyone can run notes verify FILE.md, and\n"
     "an index.md listing the meetings with their decisions, action items\n"
     "and owners; under --path (default notes/), committed with a message\n"
     "listing what was added, changed and removed. DIR: a git work tree (on\n"
     "its current branch; --branch must name it), or a missing or empty\n"
     "folder, made a repository. A URL (file://, ssh://, git@host:,\n"
     "https://): a clone in $NOTES_HOME/publish.d, committed on --branch\n"
     "(default main) and pushed. The files depend only on the notes: a\n"
     "second publish changes only what was edited, and one with no edit\n"
     "commits nothing. Never done by sync: only by this command.\n"
     "  notes publish team --to git@example.org:team/minutes.git\n"
     "  notes publish team weekly --to ~/src/minutes --path meetings/",
     CLI_NEEDS_REPLICA},
    {"sync", cmd_sync,
     "HOST:PORT | --relay HOST:PORT [--space NAME]\n"
     "      | REMOTE [--compact] [--compact-above BYTES]",
     "One round of sync with a peer: both get the changes they lack, every\n"
     "change verified before it is stored; prints what moved. On a terminal,\n"
     "a progress line per note sent or received (bytes done / total).\n"
     "With --relay, the peer is the first member of the space present at\n"
     "that relay. HOST, here and wherever an address is taken (serve,\n"
     "invite, relay), is an IPv4 address, [IPv6] or a host name (localhost,\n"
     "nas.local), resolved when it is given.\n"
     "With REMOTE (a name from notes remote): fetch every device's changes\n"
     "from the git remote, decrypt and verify them, merge, and push what it\n"
     "lacks as one pack on this device's own ref. Past --compact-above\n"
     "bytes of this device's packs there (default 8 MiB; --compact: now;\n"
     "the rule: docs/remote.md), one new pack replaces them (a force-push\n"
     "of this device's ref only). --json: what moved and each problem.\n"
     "Exit 3 when the remote cannot be reached, refuses, or does not answer\n"
     "within NOTES_GIT_TIMEOUT seconds (default 600) (nothing changed\n"
     "here), 2 when what it holds does not check out (each problem said: a\n"
     "ref rewound, deleted or swapped, garbage, a replayed pack).\n"
     "  notes sync 192.168.1.20:7654\n  notes sync nas.local:7654\n"
     "  notes sync --relay 203.0.113.7:7656 --space team\n"
     "  notes sync origin", CLI_NEEDS_REPLICA},
    {"serve", cmd_serve,
     "[--listen HOST:PORT] [--peer HOST:PORT]... [--relay HOST:PORT]...\n"
     "      [--no-relay] [--sessions N] [--no-discovery] [--ui 127.0.0.1:PORT | --no-ui]\n"
     "      [--remote-interval SECONDS]",
     "The live daemon: accept peers of this replica's spaces (default\n"
     "0.0.0.0:7654), dial each --peer with reconnect backoff, keep sessions\n"
     "open and push every commit (from any notes command on this replica) to\n"
     "connected peers at once, relaying what one peer sends to the others. A\n"
     "peer without a space's secret learns nothing and gets nothing.\n"
     "Discovery (unless --no-discovery): members of the same space on the LAN\n"
     "find each other by UDP broadcast on port 7655, announcements only they\n"
     "can read, and connect with no --peer. Test knobs: --discovery-port N,\n"
     "--announce-to HOST:PORT (repeatable; instead of the broadcast\n"
     "addresses), --announce-interval MS (default 5000).\n"
     "Relays (--relay, repeatable; default: $NOTES_HOME/relays, from the\n"
     "invites joined; --no-relay: none): members on other networks meet at a\n"
     "relay (notes relay) that only forwards encrypted bytes; each relayed\n"
     "session also tries a direct connection through both NATs (hole\n"
     "punching) and moves to it when it opens (test knob: --no-punch).\n"
     "notes peers shows the path.\n"
     "The page (unless --no-ui): the notes in the browser, edited live with\n"
     "the people in the call, on 127.0.0.1:7464 (--ui picks the port);\n"
     "the URL with its access token is printed at start (notes open).\n"
     "Git remotes (notes remote): each is synced as notes sync REMOTE does,\n"
     "at start and then every --remote-interval seconds (default 300; 0:\n"
     "never); a failure is a line on stderr and is tried again next time.\n"
     "One daemon per replica: a second notes serve is refused, naming the\n"
     "running one (its pid and port).\n"
     "  notes serve\n"
     "  notes serve --listen 127.0.0.1:7654 --peer 192.168.1.20:7654\n"
     "  notes serve --relay 203.0.113.7:7656",
     CLI_NEEDS_REPLICA},
    {"open", cmd_open, "[NOTE] [--no-browser]",
     "The URL of a note's page (or of the list of notes) in the browser page\n"
     "that notes serve offers, with its access token; opened with xdg-open\n"
     "when a desktop is there. The page edits the note live: what you type\n"
     "is signed by the daemon (the key never reaches the browser) and sent\n"
     "to connected peers at once.\n"
     "  notes open \"Weekly sync\"\n  notes open --no-browser", CLI_NEEDS_REPLICA},
    {"peers", cmd_peers, "[--json]",
     "The peers the daemon (notes serve) knows: space, who (as everywhere:\n"
     "your name for the key, else the name it claims, with the person's\n"
     "fingerprint when the device is linked to one, then \"device\" and the\n"
     "device's own; a device in no note yet: \"device\" and its fingerprint,\n"
     "which notes trust can name), address, state (connected, dialing,\n"
     "backoff, discovered, disconnected), how it was found (manual,\n"
     "discovered, inbound, relay), the path (direct, or relay), last seen,\n"
     "last sync, changes sent and received; the relays and whether the daemon\n"
     "is registered at each.\n"
     "When no daemon runs, says so and lists the peers last known.\n"
     "  notes peers", CLI_NEEDS_REPLICA},
    {"relay", cmd_relay,
     "[--listen HOST:PORT] [--max-conns N] [--max-per-addr N] [--max-per-tag N]\n"
     "      [--rate BYTES_PER_S]",
     "A blind relay for members on different home networks (no replica\n"
     "needed): on a host both can reach (default 0.0.0.0:7656), it pairs\n"
     "members of a space and forwards their bytes, which stay end-to-end\n"
     "encrypted: it sees random tags and ids, never a key, a note or a name.\n"
     "It stores nothing. Limits: connections in all (default 1024), per\n"
     "source address (32), members per space tag (64), bytes per second per\n"
     "direction of a pairing (1048576). Prints the address it listens on,\n"
     "then a line per pairing and refusal on stderr; stops on Ctrl-C.\n"
     "  notes relay --listen 0.0.0.0:443", 0},
    {"compact", cmd_compact, "[NOTE]",
     "Rewrite the log of one note or of all notes as a compact pack: the\n"
     "same signed changes, about a third of the size. Safe while other\n"
     "notes processes run. Notes with damage are left alone.\n"
     "  notes compact", CLI_NEEDS_REPLICA},
    {"device", cmd_device, "add | link CODE | revoke DEVICE | list",
     "Your devices. `add` (on a new device) prints its pairing code;\n"
     "`link CODE` (on a device holding your person key) certifies it, and\n"
     "after a sync its changes show as you everywhere. `revoke DEVICE`\n"
     "(a fingerprint or key from `list`) signs a revocation: every replica it\n"
     "reaches refuses that device's changes made after it. Link and revoke\n"
     "are written into every note of this replica.\n"
     "  notes device add\n  notes device link np1...\n"
     "  notes device revoke abcd-efgh\n  notes device list", CLI_NEEDS_REPLICA},
    {"person", cmd_person, "export FILE | import FILE",
     "Back up your person key (a key file, passphrase-protected if you chose\n"
     "so) or restore it on a replica, which is then linked to it.\n"
     "  notes person export /media/usb/rita.person\n"
     "  notes person import /media/usb/rita.person", CLI_NEEDS_REPLICA},
    {"trust", cmd_trust, "[KEY NAME | --remove KEY]",
     "Names are claims, keys are facts: give a key (a person's or a device's;\n"
     "full nk... key or a fingerprint seen in your notes) your own name for\n"
     "it. Shown instead of the name it claims; keys without one are marked\n"
     "\"unknown key\". Without arguments, lists your petnames.\n"
     "  notes trust abcd-efgh \"Rita (design)\"\n  notes trust", CLI_NEEDS_REPLICA},
    {"confirm", cmd_confirm, "NOTE ITEM",
     "Sign a confirmation of a decision or action item (ITEM: its number, id\n"
     "or a unique part of its text), bound to its exact text and owner now. If the\n"
     "text is edited later, `decisions` says \"changed after confirmation\".\n"
     "  notes confirm weekly 2", CLI_NEEDS_REPLICA | CLI_NEEDS_KEY},
    {"help", cmd_help, "[COMMAND]", "Show help for all commands or one.\n"
     "  notes help show", 0},
    {NULL, NULL, NULL, NULL, 0},
};

int cli_exit_code(int rc)
{
    switch (rc) {
    case NOTES_OK:
        return 0;
    case NOTES_ENOMEM:
    case NOTES_EIO:
    case NOTES_ELOCKED:
        return EXIT_SYSTEM;
    case NOTES_ECORRUPT:
    case NOTES_EBADSIG:
    case NOTES_EVERSION:
    case NOTES_EBADCHAIN:
    case NOTES_EBADSEQ:
    case NOTES_EMISSINGDEP:
    case NOTES_EEQUIVOCATION:
    case NOTES_EBADOP:
    case NOTES_EWRONGDOC:
    case NOTES_ETRUNCATED:
    case NOTES_EBADLINK:
    case NOTES_EREVOKED:
    case NOTES_EUNSIGNED:
    case NOTES_EROLLBACK:
        return EXIT_DATA;
    default:
        return EXIT_USER;
    }
}

int cli_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    const char *detail = notes_last_detail();
    char what[1024];
    /* The message names notes, files and keys, the detail may quote a
     * peer's bytes: both escaped (esc.c). */
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fprintf(stderr, "notes: %s: %s\n", cli_esc(what),
            cli_esc(detail && *detail ? detail : notes_strerror(rc)));
    return cli_exit_code(rc);
}

/* Columns of one code point on a terminal: 0 for combining marks and
 * zero-width characters, 2 for East Asian wide ones and emoji, else 1. A
 * table of the ranges that occur, not the whole of wcwidth: no locale is
 * needed (tests and pipes run in C). */
static int cp_width(uint32_t c)
{
    if ((c >= 0x300 && c <= 0x36f) || (c >= 0x1ab0 && c <= 0x1aff) ||
        (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x200b && c <= 0x200f) ||
        (c >= 0x20d0 && c <= 0x20ff) || (c >= 0xfe00 && c <= 0xfe0f) ||
        (c >= 0xfe20 && c <= 0xfe2f) || c == 0xfeff)
        return 0;
    if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) ||
        (c >= 0x3041 && c <= 0x33ff) || (c >= 0x3400 && c <= 0x4dbf) ||
        (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xa000 && c <= 0xa4cf) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
        (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd))
        return 2;
    return 1;
}

size_t cli_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (p && *p) {
        uint32_t c = *p;
        int len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (len > 1) {
            c &= 0x3fu >> (len - 1);
            for (int i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80) { /* invalid: one column a byte */
                    len = 1;
                    c = 0x3f;
                    break;
                }
                c = (c << 6) | (p[i] & 0x3fu);
            }
        }
        w += (size_t)cp_width(c);
        p += len;
    }
    return w;
}

void cli_pad(const char *s, size_t width)
{
    size_t w = cli_width(s);
    fputs(s, stdout);
    for (; w < width; w++)
        putchar(' ');
}

void cli_done(const struct cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    if (ctx->quiet || ctx->json)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int cli_usage(const char *name)
{
    for (const struct cli_cmd *c = cli_commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            fprintf(stderr, "usage: notes %s %s\n(see: notes help %s)\n",
                    c->name, c->usage, c->name);
            return EXIT_USER;
        }
    }
    fprintf(stderr, "usage: notes COMMAND [ARGS] (see: notes help)\n");
    return EXIT_USER;
}

const char *cli_opt_value(int *i, int argc, char **argv)
{
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* The options of the table, if argv[*i] is one: 1 (taken, *i past its
 * value), 0 (not an option), -1 (its value is missing). */
static int take_opt(const struct cli_opt *opts, int *i, int argc, char **argv)
{
    for (const struct cli_opt *o = opts; o && o->name; o++) {
        if (strcmp(argv[*i], o->name) != 0)
            continue;
        if (o->many) {
            const char *v = cli_opt_value(i, argc, argv);
            if (!v || *o->nmany == o->max)
                return -1;
            o->many[(*o->nmany)++] = v;
            return 1;
        }
        if (!o->value) {
            *o->flag = 1;
            return 1;
        }
        return (*o->value = cli_opt_value(i, argc, argv)) ? 1 : -1;
    }
    return 0;
}

void cli_network_command(void)
{
    /* libuv writes to sockets without MSG_NOSIGNAL: a peer (or a relay's
     * member, or a page) that vanishes while we write to it must cost a
     * closed connection, not the process. Only the commands that talk to
     * the network: the others keep the usual death of `notes log | head`. */
    signal(SIGPIPE, SIG_IGN);
}

int cli_parse_args(int argc, char **argv, const char *cmd,
                   const struct cli_opt *opts, const char **pos, size_t npos,
                   int dash_ok)
{
    size_t k = 0;
    for (int i = 1; i < argc; i++) {
        int t = take_opt(opts, &i, argc, argv);
        if (t < 0)
            return cli_usage(cmd);
        if (t > 0)
            continue;
        if (k == npos || (!dash_ok && argv[i][0] == '-'))
            return cli_usage(cmd);
        pos[k++] = argv[i];
    }
    return 0;
}

void cli_note_id(char out[33], const uint8_t id[16])
{
    notes__hex(out, id, 16);
}

void cli_time(uint64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S%z", &tm);
    /* +0200 -> +02:00 as in the notes' front matter. */
    size_t l = strlen(buf);
    if (l > 5 && (buf[l - 5] == '+' || buf[l - 5] == '-')) {
        memmove(buf + l - 1, buf + l - 2, 3);
        buf[l - 2] = ':';
    }
    snprintf(out, n, "%s", buf);
}

int cli_read_input(const char *path, size_t max, char **out, size_t *n)
{
    return cli_read_input_ex(path, max, NULL, out, n);
}

int cli_read_input_ex(const char *path, size_t max,
                      size_t (*narrow)(const char *head, size_t len),
                      char **out, size_t *n)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0, cap = 4096;
    int narrowed = !narrow;
    char *buf;
    *out = NULL;
    *n = 0;
    if (fd < 0) {
        fprintf(stderr, "notes: cannot read '%s': %s\n", cli_esc(path),
                strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? EXIT_USER : EXIT_SYSTEM;
    }
    buf = malloc(cap);
    /* The limit holds while reading: the buffer never grows past max + 1,
     * so /dev/zero or a huge sparse file costs max bytes, not all memory. */
    for (;;) {
        if (!buf) {
            fprintf(stderr, "notes: out of memory\n");
            if (fd)
                close(fd);
            return EXIT_SYSTEM;
        }
        if (!narrowed && len >= NOTES_CLI_HEAD) {
            size_t m = narrow(buf, len);
            narrowed = 1;
            if (m < max)
                max = m;
        }
        if (len > max)
            break;
        if (len + 1 >= cap) {
            size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "notes: cannot read '%s': %s\n", cli_esc(path),
                    strerror(errno));
            free(buf);
            if (fd)
                close(fd);
            return errno == EISDIR ? EXIT_USER : EXIT_SYSTEM;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (fd)
        close(fd);
    if (!narrowed) {
        size_t m = narrow(buf, len);
        if (m < max)
            max = m;
    }
    if (len > max) {
        fprintf(stderr, "notes: '%s' is larger than %zu bytes; nothing was read\n",
                cli_esc(path), max);
        free(buf);
        return EXIT_USER;
    }
    buf[len] = 0;
    *out = buf;
    *n = len;
    return 0;
}

int cli_write_output(const char *path, const void *p, size_t n)
{
    if (!path || strcmp(path, "-") == 0) {
        if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0) {
            fprintf(stderr, "notes: cannot write output: %s\n", strerror(errno));
            return EXIT_SYSTEM;
        }
        return 0;
    }
    /* What fopen gave: 0666 less the umask (libnotes sets the mode exactly,
     * so the umask is applied here). The CLI has one thread. */
    mode_t mask = umask(077);
    umask(mask);
    if (notes__write_file_atomic(path, p, n, (int)(0666 & ~mask)) != NOTES_OK) {
        fprintf(stderr, "notes: cannot write '%s': %s\n", cli_esc(path),
                cli_esc(notes_last_detail()));
        return EXIT_USER;
    }
    return 0;
}

void cli_note_damage(struct cli_ctx *ctx, notes_doc *d)
{
    const char *dmg = notes_doc_damage(d);
    char hex[33];
    if (!dmg || ctx->verifying)
        return;
    cli_note_id(hex, notes_doc_id(d));
    if (notes_doc_intact(d) == NOTES_OK) {
        fprintf(stderr, "notes: note %.8s: %s\n", hex, cli_esc(dmg));
        return;
    }
    fprintf(stderr, "notes: note %.8s: %s: %s (run: notes verify)\n", hex,
            notes_strerror(notes_doc_intact(d)), cli_esc(dmg));
    ctx->damaged = 1;
}

void cli_note_repaired(notes_doc *d)
{
    const char *what = notes_doc_repaired(d);
    char hex[33];
    if (!what)
        return;
    cli_note_id(hex, notes_doc_id(d));
    fprintf(stderr, "notes: note %.8s: repaired: %s\n", hex, cli_esc(what));
}

int cli_commit(notes_doc *d, const char *what)
{
    uint8_t id[32];
    int rc = notes_doc_commit(d, id);
    cli_note_repaired(d);
    if (rc)
        return cli_fail(rc, "cannot record %s", what);
    return 0;
}

/* ---- note lookup ---- */

static int title_matches(const char *title, const char *spec)
{
    return title && strcasestr(title, spec) != NULL;
}

int cli_open_note(struct cli_ctx *ctx, const char *spec, notes_doc **out)
{
    uint8_t(*ids)[16] = NULL;
    size_t n, hits = 0, exact = 0, best = 0;
    char hex[33];
    int rc = notes_replica_list(ctx->r, &ids, &n);
    *out = NULL;
    if (rc)
        return cli_fail(rc, "cannot list notes");
    /* Ids and id prefixes first: they are unambiguous by construction. */
    size_t sl = strlen(spec);
    for (size_t i = 0; i < n && sl >= 4; i++) {
        cli_note_id(hex, ids[i]);
        if (sl <= 32 && strncasecmp(hex, spec, sl) == 0) {
            hits++;
            best = i;
        }
    }
    if (hits == 1) {
        rc = notes_doc_open(ctx->r, ids[best], out);
        notes_free(ids);
        if (rc)
            return cli_fail(rc, "cannot open note '%s'", spec);
        cli_note_damage(ctx, *out);
        return 0;
    }
    if (hits > 1) {
        fprintf(stderr, "notes: '%s' matches %zu notes; give more of the id:\n",
                cli_esc(spec), hits);
        for (size_t i = 0; i < n; i++) {
            cli_note_id(hex, ids[i]);
            if (strncasecmp(hex, spec, sl) == 0)
                fprintf(stderr, "  %s\n", hex);
        }
        notes_free(ids);
        return EXIT_USER;
    }
    /* Titles: an exact (case-insensitive) title wins, else a unique
     * substring match. */
    notes_doc **docs = calloc(n ? n : 1, sizeof(notes_doc *));
    if (!docs) {
        notes_free(ids);
        return EXIT_SYSTEM;
    }
    hits = 0;
    /* A note we cannot read might be the one meant: if nothing matches,
     * say that rather than "no note matches" (exit 3 for I/O). */
    int unreadable = 0;
    char why[256] = "";
    for (size_t i = 0; i < n; i++) {
        int orc = notes_doc_open(ctx->r, ids[i], &docs[i]);
        if (orc != NOTES_OK) {
            if (orc != NOTES_ENOTFOUND && !unreadable) {
                const char *dt = notes_last_detail();
                cli_note_id(hex, ids[i]);
                snprintf(why, sizeof(why), "note %.8s: %s", hex,
                         dt && *dt ? dt : notes_strerror(orc));
                unreadable = cli_exit_code(orc);
            }
            continue;
        }
        const char *t = notes_doc_field(docs[i], "title");
        if (t && strcasecmp(t, spec) == 0) {
            exact++;
            best = i;
        }
    }
    if (exact != 1) {
        for (size_t i = 0; i < n; i++) {
            if (docs[i] && title_matches(notes_doc_field(docs[i], "title"), spec)) {
                hits++;
                best = i;
            }
        }
    }
    int ret = 0;
    if (exact == 1 || hits == 1) {
        *out = docs[best];
        docs[best] = NULL;
        cli_note_damage(ctx, *out);
    } else if (hits == 0 && unreadable) {
        fprintf(stderr, "notes: no readable note matches '%s'; cannot read %s\n",
                cli_esc(spec), cli_esc(why));
        ret = unreadable;
    } else if (hits == 0 && sl > 0 && sl < 4 &&
               strspn(spec, "0123456789abcdefABCDEF") == sl) {
        /* Looks like the start of an id: say why it did not count as one. */
        fprintf(stderr, "notes: no note matches '%s': an id prefix needs 4 or "
                        "more hex digits, and no title contains it (see: notes "
                        "list)\n", cli_esc(spec));
        ret = EXIT_USER;
    } else if (hits == 0) {
        fprintf(stderr, "notes: no note matches '%s' (see: notes list)\n",
                cli_esc(spec));
        ret = EXIT_USER;
    } else {
        fprintf(stderr, "notes: '%s' matches %zu notes:\n", cli_esc(spec), hits);
        for (size_t i = 0; i < n; i++) {
            if (docs[i] && title_matches(notes_doc_field(docs[i], "title"), spec)) {
                cli_note_id(hex, ids[i]);
                fprintf(stderr, "  %.8s  %s\n", hex,
                        cli_esc(notes_doc_field(docs[i], "title")));
            }
        }
        ret = EXIT_USER;
    }
    for (size_t i = 0; i < n; i++)
        notes_doc_free(docs[i]);
    free(docs);
    notes_free(ids);
    return ret;
}

int cli_open_note_arg(struct cli_ctx *ctx, int argc, char **argv,
                      const char *cmd, int required, notes_doc **out)
{
    *out = NULL;
    if (argc > 2 || (required && argc != 2))
        return cli_usage(cmd);
    return argc == 2 ? cli_open_note(ctx, argv[1], out) : 0;
}

int cli_open_note_pos(struct cli_ctx *ctx, int argc, char **argv,
                      const char *cmd, const char **pos, size_t npos,
                      size_t required, notes_doc **out)
{
    const struct cli_opt none[] = {CLI_END};
    int rc;
    *out = NULL;
    for (size_t i = 0; i < npos; i++)
        pos[i] = NULL;
    if ((rc = cli_parse_args(argc, argv, cmd, none, pos, npos, 0)))
        return rc;
    if (!pos[0]) /* NOTE, always */
        return cli_usage(cmd);
    for (size_t i = 1; i < required; i++)
        if (!pos[i])
            return cli_usage(cmd);
    return cli_open_note(ctx, pos[0], out);
}

/* ---- replica and passphrase ---- */

static char *prompt_passphrase(const char *prompt)
{
    static char buf[1024];
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    struct termios old, quiet;
    if (fd < 0)
        return NULL;
    if (write(fd, prompt, strlen(prompt)) < 0 || tcgetattr(fd, &old) != 0) {
        close(fd);
        return NULL;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0)
        n = -1;
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    return buf;
}

const char *cli_passphrase(int confirm);
const char *cli_passphrase(int confirm)
{
    const char *env = getenv("NOTES_PASSPHRASE");
    if (env)
        return env;
    char *p = prompt_passphrase("passphrase: ");
    if (!p || !confirm)
        return p;
    char first[1024];
    snprintf(first, sizeof(first), "%s", p);
    p = prompt_passphrase("again: ");
    if (!p || strcmp(p, first) != 0) {
        fprintf(stderr, "notes: the passphrases differ\n");
        return NULL;
    }
    return p;
}

int cli_unlock(struct cli_ctx *ctx)
{
    const char *pass = NULL;
    if (notes_replica_needs_passphrase(ctx->r)) {
        pass = cli_passphrase(0);
        if (!pass) {
            fprintf(stderr, "notes: the secret key is protected; set "
                            "NOTES_PASSPHRASE or run on a terminal\n");
            return EXIT_USER;
        }
    }
    int rc = notes_replica_unlock(ctx->r, pass);
    if (rc)
        return cli_fail(rc, "cannot unlock the identity");
    return 0;
}

static const char *default_home(void)
{
    static char buf[4096];
    const char *h = getenv("NOTES_HOME");
    if (h && *h)
        return h;
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && *xdg) {
        snprintf(buf, sizeof(buf), "%s/notes", xdg);
        return buf;
    }
    const char *home = getenv("HOME");
    snprintf(buf, sizeof(buf), "%s/.local/share/notes", home ? home : ".");
    return buf;
}

/* roff for one string: escape backslashes and leading dots/quotes. */
static void roff(const char *s)
{
    int bol = 1;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\''))
            fputs("\\&", stdout);
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
        bol = *s == '\n';
    }
}

/* The man page, generated from the command table (docs/notes.1). */
static int print_man(void)
{
    printf(".TH NOTES 1 \"\" \"notes 0.1.0\" \"User Commands\"\n"
           ".SH NAME\nnotes \\- offline-first, peer-to-peer meeting notes with a "
           "signed, verifiable history\n"
           ".SH SYNOPSIS\n.B notes\n.I COMMAND\n[\\fIARGS\\fR]\n"
           ".SH DESCRIPTION\n"
           "Each participant keeps a full replica of the notes; every edit is "
           "part of a change signed with the device's Ed25519 key; replicas "
           "exchange changes and converge to the same text in any order.\n"
           ".PP\nNOTE is a note id, a unique id prefix (4 or more hex digits) or a "
           "unique title match. \\fB\\-\\-json\\fR gives machine\\-readable output "
           "on read commands. \\fB\\-q\\fR (\\fB\\-\\-quiet\\fR), before or "
           "after the command, leaves out the line that confirms a success "
           "(errors and warnings are still said).\n.SH COMMANDS\n");
    for (const struct cli_cmd *c = cli_commands; c->name; c++) {
        printf(".TP\n.B notes %s\n", c->name);
        roff(c->usage);
        printf("\n.br\n");
        /* Help text: description lines, then examples (indented). */
        const char *h = c->help;
        while (*h) {
            const char *nl = strchr(h, '\n');
            size_t len = nl ? (size_t)(nl - h) : strlen(h);
            char line[512];
            snprintf(line, sizeof(line), "%.*s", (int)len, h);
            if (line[0] == ' ' && line[1] == ' ') {
                printf(".br\n\\fB");
                roff(line + 2);
                printf("\\fR\n");
            } else {
                roff(line);
                putchar('\n');
            }
            h += len + (nl ? 1 : 0);
        }
    }
    printf(".SH ENVIRONMENT\n.TP\n.B NOTES_HOME\nthe replica directory "
           "(default: $XDG_DATA_HOME/notes, else ~/.local/share/notes)\n"
           ".TP\n.B NOTES_PASSPHRASE\nthe passphrase of a protected key "
           "(otherwise asked on the terminal)\n"
           ".TP\n.B VISUAL, EDITOR\nthe editor of \\fBnotes edit\\fR\n"
           ".TP\n.B NOTES_GIT_TIMEOUT\nseconds one git command of \\fBnotes "
           "sync\\fR REMOTE or \\fBnotes publish\\fR may take before it is "
           "stopped (default 600; 0: no limit)\n"
           ".TP\n.B NO_COLOR\nno colour even on a terminal\n"
           ".TP\n.B NOTES_NO_INDEX\nset (not to 0): \\fBnotes list\\fR and "
           "\\fBnotes decisions\\fR open every log instead of reading the notes "
           "index (the same output, slower)\n"
           ".SH EXIT STATUS\n0 success; 1 user error (bad arguments, unknown or "
           "ambiguous note, missing identity); 2 verification or data problem; "
           "3 system error (I/O, memory, lock).\n"
           ".SH FILES\n$NOTES_HOME/identity (secret key, mode 0600), "
           "$NOTES_HOME/notes/*.log (the signed change logs).\n"
           ".SH SEE ALSO\nREADME.md, docs/design.md, docs/format.md\n");
    return 0;
}

/* Edit distance with transpositions (optimal string alignment): "shwo"
 * is one from "show". Command names are short; longer input is far. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[24][24];
    if (la > 22 || lb > 22)
        return 99;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* "notes: 'shwo' is not a command; did you mean: notes show?" on stderr:
 * the commands within 2 edits (1 for names of 4 letters or fewer), or
 * that begin with what was typed. */
static void not_a_command(const char *name)
{
    const char *near[8];
    size_t n = 0, nl = strlen(name);
    for (const struct cli_cmd *c = cli_commands; c->name && n < 8; c++) {
        size_t max = nl <= 4 ? 1 : 2;
        if (edit_distance(name, c->name) <= max ||
            (nl >= 2 && strncmp(c->name, name, nl) == 0))
            near[n++] = c->name;
    }
    fprintf(stderr, "notes: '%s' is not a command", cli_esc(name));
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%snotes %s", i == 0 ? "; did you mean: "
                                     : i + 1 == n ? " or " : ", ", near[i]);
    fprintf(stderr, n ? "? (see: notes help)\n" : " (see: notes help)\n");
}

int cmd_help(int argc, char **argv, struct cli_ctx *ctx)
{
    (void)ctx;
    if (argc > 1 && strcmp(argv[1], "--man") == 0)
        return print_man();
    if (argc > 1 && strcmp(argv[1], "--commands") == 0) {
        for (const struct cli_cmd *c = cli_commands; c->name; c++)
            printf("%s\n", c->name);
        return 0;
    }
    if (argc > 1) {
        for (const struct cli_cmd *c = cli_commands; c->name; c++) {
            if (strcmp(c->name, argv[1]) == 0) {
                printf("usage: notes %s %s\n\n%s\n", c->name, c->usage, c->help);
                return 0;
            }
        }
        not_a_command(argv[1]);
        return EXIT_USER;
    }
    printf("notes: offline-first, peer-to-peer meeting notes with signed "
           "history\n\nusage: notes COMMAND [ARGS]\n\ncommands:\n");
    for (const struct cli_cmd *c = cli_commands; c->name; c++)
        printf("  %-8s %s\n", c->name, c->usage);
    printf("\nNOTE is a note id, a unique id prefix (4+ digits) or a unique "
           "title match.\n-q (--quiet) leaves out the line that confirms a "
           "success.\nThe replica lives in $NOTES_HOME (default: "
           "$XDG_DATA_HOME/notes or ~/.local/share/notes).\n"
           "Exit codes: 0 ok, 1 user error, 2 verification or data problem, "
           "3 system error.\nMore: notes help COMMAND\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct cli_ctx ctx = {0};
    int rc;

    if (notes_init() != NOTES_OK) {
        fprintf(stderr, "notes: cannot initialize libsodium\n");
        return EXIT_SYSTEM;
    }
    if (argc < 2) {
        cmd_help(1, argv, &ctx);
        return EXIT_USER;
    }
    /* -q before the command too: `notes -q set ...`. */
    int quiet_first = 0;
    while (argc > 2 && (strcmp(argv[1], "-q") == 0 ||
                        strcmp(argv[1], "--quiet") == 0)) {
        quiet_first = 1;
        argv++;
        argc--;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    if (strcmp(name, "--version") == 0) {
        printf("notes 0.1.0\n");
        return 0;
    }
    const struct cli_cmd *cmd = NULL;
    for (const struct cli_cmd *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            cmd = c;
    if (!cmd) {
        not_a_command(name);
        return EXIT_USER;
    }
    /* Global flags: --json, -q/--quiet and --help anywhere. */
    int n = 0;
    char **args = calloc((size_t)argc, sizeof(*args));
    if (!args)
        return EXIT_SYSTEM;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            ctx.json = 1;
        } else if (i > 1 && (strcmp(argv[i], "-q") == 0 ||
                             strcmp(argv[i], "--quiet") == 0)) {
            ctx.quiet = 1;
        } else if (i > 1 && (strcmp(argv[i], "--help") == 0 ||
                             strcmp(argv[i], "-h") == 0)) {
            char helpw[] = "help", namew[32];
            snprintf(namew, sizeof(namew), "%s", cmd->name);
            char *h[] = {helpw, namew};
            free(args);
            return cmd_help(2, h, &ctx);
        } else {
            args[n++] = argv[i];
        }
    }
    ctx.quiet |= quiet_first;
    ctx.home = default_home();
    ctx.color = isatty(1) && !getenv("NO_COLOR");
    /* Before anything is written to stdout (setvbuf must come first). A
     * listing of every note runs to megabytes; stdio's default buffer on a
     * pipe or file is one page, a write(2) every 4 KB. */
    if ((cmd->flags & CLI_BULK_OUT) && !isatty(1))
        setvbuf(stdout, NULL, _IOFBF, (size_t)1 << 16);
    if (cmd->flags & CLI_NEEDS_REPLICA) {
        rc = notes_replica_open(ctx.home, &ctx.r);
        if (rc) {
            free(args);
            return cli_fail(rc, "cannot open the replica");
        }
        if ((cmd->flags & CLI_NEEDS_KEY) && (rc = cli_unlock(&ctx))) {
            notes_replica_free(ctx.r);
            free(args);
            return rc;
        }
    }
    rc = cmd->fn(n, args, &ctx);
    if (rc == 0 && ctx.damaged)
        rc = EXIT_DATA; /* what it showed is a damaged note's last good state */
    notes_replica_free(ctx.r);
    free(args);
    return rc;
}
