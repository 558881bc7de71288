#!/usr/bin/env bash
# run_remote.sh [BUILD_DIR] [N]: the git-remote figures of issue 20, one JSON
# object per line. A space of N meeting notes (default 1,000; each a sample
# note with its own title and date) pushed by device A to a local bare
# repository, then synced to an empty device B: time, bytes on the remote
# against the raw Markdown; then a sync with no change: time and bytes
# fetched. remote_objects_bytes: the bare repository's objects folder as
# pushed and after git gc. Everything lives in a temporary folder, removed
# at the end. The notes differ only in title and date, so zstd finds most
# of a pack's bytes in its other notes: the remote's size is a best case.
set -euo pipefail
build=${1:-build}
n=${2:-1000}
notes=$(cd "$build" && pwd)/cli/notes
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
sample=$shared/samples/community-2023-05-15.md
work=$(mktemp -d "${TMPDIR:-/tmp}/notes-bench-remote.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

ms() { date +%s%3N; }
field() { jq -r ".$1" "$2"; }

export NOTES_HOME=$work/a
"$notes" -q init --name Ana >/dev/null
"$notes" -q space create team
raw=0
for i in $(seq 1 "$n"); do
    d=$(date -u -d "2020-01-01 + $i days" +%Y-%m-%d)
    sed -e "s/^title: .*/title: Community meeting $i/" \
        -e "s/^datetime: .*/datetime: ${d}T13:00:00+02:00/" "$sample" > m.md
    raw=$((raw + $(stat -c %s m.md)))
    id=$("$notes" import m.md)
    "$notes" -q space add team "$id"
done
code=$("$notes" invite team --address 127.0.0.1:1 2>/dev/null | head -1)
git init -q --bare remote.git
"$notes" -q remote add origin "$work/remote.git"
t0=$(ms)
"$notes" sync origin --json > push.json
t1=$(ms)
echo "{\"figure\":\"remote_first_push\",\"notes\":$n,\"ms\":$((t1 - t0)),\"bytes_pushed\":$(field bytes_pushed push.json),\"changes_sent\":$(field changes_sent push.json)}"

export NOTES_HOME=$work/b
"$notes" -q init --name Bob >/dev/null
"$notes" -q join "$code" 2>/dev/null || true  # keeps the space; the inviter is offline
"$notes" -q remote add origin "$work/remote.git"
t0=$(ms)
"$notes" sync origin --json > pull.json
t1=$(ms)
got=$("$notes" list | wc -l)
remote_disk=$(du -sb remote.git/objects | cut -f1)
git --git-dir=remote.git gc -q --aggressive --prune=now 2>/dev/null || true
remote_gc=$(du -sb remote.git/objects | cut -f1)
echo "{\"figure\":\"remote_sync_to_empty_device\",\"notes\":$n,\"notes_received\":$got,\"ms\":$((t1 - t0)),\"bytes_fetched\":$(field bytes_fetched pull.json),\"changes_received\":$(field changes_received pull.json),\"remote_pack_bytes\":$(field remote_bytes pull.json),\"remote_objects_bytes\":$remote_disk,\"remote_objects_bytes_after_gc\":$remote_gc,\"raw_markdown_bytes\":$raw}"

t0=$(ms)
"$notes" sync origin --json > again.json
t1=$(ms)
echo "{\"figure\":\"remote_no_change_sync\",\"notes\":$n,\"ms\":$((t1 - t0)),\"bytes_fetched\":$(field bytes_fetched again.json),\"packs_read\":$(field packs_read again.json),\"bytes_pushed\":$(field bytes_pushed again.json)}"
