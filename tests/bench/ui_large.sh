#!/usr/bin/env bash
# ui_large.sh BUILD_DIR [N]: the page on a large note (issue 9's figure: the
# note of the automerge-paper trace, about 105 KB of text and 260,000 edits
# of history; issue 18: page open under 150 ms, see ui_large.mjs for what
# "page open" is; local keystroke to screen p99 under 16 ms).
# A temporary replica gets the trace typed into one note (notes-trace-note),
# `notes serve` offers the page on 127.0.0.1, and ui_large.mjs (puppeteer-core
# from tests/browser, Debian's Chromium) times page loads and N keystrokes
# (default 300) at the end and in the middle of the note, then checks that
# the daemon committed every one. One JSON line per figure on stdout.
# PROBE=N (default 800; 0: none): afterwards, in another throwaway replica,
# time N one-character commits on the same note (what the daemon pays per
# keystroke, the log folded every 256 records) and the fold on its own.
# RAW=/abs/file.json: the per-key times (see ui_large.mjs).
set -euo pipefail
build=${1:-build}; N=${2:-300}
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
notes=$build/cli/notes
tracenote=$build/tests/bench/notes-trace-note
shared=${NOTES_SHARED_DIR:-$here/../shared}
trace=$shared/traces/sequential_traces/automerge-paper.json.gz
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "ui_large: no Chromium at $chromium (apt-get install chromium)" >&2; exit 77; }
[ -f "$trace" ] || { echo "ui_large: no trace at $trace" >&2; exit 77; }
[ -x "$tracenote" ] || { echo "ui_large: build notes-trace-note first ($tracenote)" >&2; exit 1; }
work=$(mktemp -d /tmp/notes-ui-large.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -d "$here/tests/browser/node_modules/puppeteer-core" ] || (cd "$here/tests/browser" && npm ci --silent)
cp "$here/tests/bench/ui_large.mjs" "$work/"
ln -s "$here/tests/browser/node_modules" "$work/node_modules"
echo '{"type":"module"}' > "$work/package.json"
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
export NOTES_PASSPHRASE=
export NOTES_HOME=$work/home
"$notes" init --name Ana >/dev/null 2>&1
"$notes" space create bench >/dev/null  # serve needs a space
id=$("$tracenote" "$NOTES_HOME" "$trace" "automerge-paper" 2>"$work/trace.log") ||
    { cat "$work/trace.log" >&2; exit 1; }
cat "$work/trace.log"
P=$(freeport); U=$(freeport)
"$notes" serve --no-discovery --listen 127.0.0.1:$P --ui 127.0.0.1:$U >"$work/serve.log" 2>&1 & pids+=($!)
url=
for i in $(seq 100); do
    url=$("$notes" open "$id" --no-browser 2>/dev/null) && [ -n "$url" ] && break
    url=
    kill -0 "${pids[0]}" 2>/dev/null || { echo "ui_large: notes serve exited" >&2; cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "ui_large: the page did not come up" >&2; cat "$work/serve.log" >&2; exit 1; }
cd "$work"
rc=0
NOTES_BIN=$notes NOTE_ID=$id CHROMIUM=$chromium timeout 1200 node ui_large.mjs "$url" "$N" || rc=$?
# CPU the daemon used over the whole browser run (page loads and typing).
awk -v hz="$(getconf CLK_TCK)" '{printf "{\"figure\":\"daemon_cpu\",\"user_s\":%.2f,\"sys_s\":%.2f}\n", $14/hz, $15/hz}' \
    "/proc/${pids[0]}/stat" 2>/dev/null || true
[ "$rc" -eq 0 ] || { echo "ui_large: ui_large.mjs failed ($rc); daemon log:" >&2; tail -20 "$work/serve.log" >&2; }
if [ "${PROBE:-800}" -gt 0 ]; then
    NOTES_HOME=$work/probe "$notes" init --name Probe >/dev/null 2>&1
    "$tracenote" --probe "${PROBE:-800}" "$work/probe" "$trace" "automerge-paper" 2>&1 >/dev/null |
        grep '"probe_' || true
fi
exit "$rc"
