#!/usr/bin/env bash
# ui_latency.sh BUILD_DIR [N] [direct|relay|chain]: keystroke on page A to the
# character visible on page B, through two `notes serve` daemons syncing
# live on 127.0.0.1 (issue 9's figure): directly (B dials A), or through a
# `notes relay` on 127.0.0.1 (issue 17: both daemons meet there, no direct
# upgrade). Uses the harness of ../shared/anchors/live
# (latency.mjs, the same that measures Yjs + CodeMirror) with Debian's
# Chromium: N short tokens typed on A (default 500), quiet, then with B
# typing ~20 keys/s meanwhile. One JSON line per mode.
# chain (issue 18): five daemons 1-2-3-4-5, each dialing the one before it
# (--peer; no discovery, no relay: each syncs live with its neighbours only,
# the middle ones pass changes on), two pages on each; A is a page of daemon
# 1, B a page of daemon 5, the other eight stay open (ui_chain.mjs, the same
# measure with more pages). `lost` counts the tokens never drawn on B within
# 5 s; `missing_at_end` those not in B's text 10 s after the last key.
set -euo pipefail
build=${1:-build}; N=${2:-500}; path=${3:-direct}
here=$(cd "$(dirname "$0")/../.." && pwd)
notes=$(cd "$build" && pwd)/cli/notes
shared=${NOTES_SHARED_DIR:-$here/../shared}
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "ui_latency: no Chromium at $chromium (apt-get install chromium)" >&2; exit 77; }
work=$(mktemp -d /tmp/notes-ui-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# The harness, next to puppeteer-core from tests/browser (npm ci there once).
[ -d "$here/tests/browser/node_modules/puppeteer-core" ] || (cd "$here/tests/browser" && npm ci --silent)
cp "$shared/anchors/live/latency.mjs" "$work/"
ln -s "$here/tests/browser/node_modules" "$work/node_modules"
cp "$here/tests/bench/ui_chain.mjs" "$work/"
echo '{"type":"module"}' > "$work/package.json"
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
export NOTES_PASSPHRASE=
if [ "$path" = chain ]; then
    K=5
    homes=() ports=() uis=()
    for k in $(seq $K); do homes+=("$work/d$k"); ports+=("$(freeport)"); uis+=("$(freeport)"); done
    NOTES_HOME=${homes[0]} "$notes" init --name D1 >/dev/null
    NOTES_HOME=${homes[0]} "$notes" space create bench >/dev/null
    for k in $(seq 2 $K); do
        NOTES_HOME=${homes[k-1]} "$notes" init --name "D$k" >/dev/null
        code=$(NOTES_HOME=${homes[0]} "$notes" invite bench --address "127.0.0.1:${ports[0]}" | grep -o 'notes1[a-z0-9]*' | head -1)
        NOTES_HOME=${homes[k-1]} "$notes" join "$code" >/dev/null 2>&1 || true
    done
    id=$(NOTES_HOME=${homes[0]} "$notes" new "Latency chain (quiet)")
    id2=$(NOTES_HOME=${homes[0]} "$notes" new "Latency chain (concurrent)")
    NOTES_HOME=${homes[0]} "$notes" space add bench "$id" >/dev/null
    NOTES_HOME=${homes[0]} "$notes" space add bench "$id2" >/dev/null
    for k in $(seq $K); do
        peer=()
        [ "$k" -gt 1 ] && peer=(--peer "127.0.0.1:${ports[k-2]}")
        NOTES_HOME=${homes[k-1]} "$notes" serve --listen "127.0.0.1:${ports[k-1]}" --no-discovery --no-relay \
            "${peer[@]}" --ui "127.0.0.1:${uis[k-1]}" >"$work/d$k.log" 2>&1 & pids+=($!)
    done
    # Bounded wait: the last daemon has both notes (through the three between).
    for i in $(seq 300); do
        if NOTES_HOME=${homes[K-1]} "$notes" list 2>/dev/null | grep -q "^${id:0:8}" &&
           NOTES_HOME=${homes[K-1]} "$notes" list 2>/dev/null | grep -q "^${id2:0:8}" &&
           NOTES_HOME=${homes[0]} "$notes" open "$id" --no-browser >/dev/null 2>&1 &&
           NOTES_HOME=${homes[K-1]} "$notes" open "$id" --no-browser >/dev/null 2>&1; then
            break
        fi
        [ "$i" -eq 300 ] && { echo "ui_latency: the chain did not come up" >&2; tail -5 "$work"/d*.log >&2; exit 1; }
        sleep 0.1
    done
    # The topology as the daemons see it: connected peers of each (1 2 2 2 1).
    conn=
    for k in $(seq $K); do
        conn+=" $(NOTES_HOME=${homes[k-1]} "$notes" peers --json 2>/dev/null | python3 -c \
            'import json,sys; print(sum(p.get("state") == "connected" for p in json.load(sys.stdin).get("peers", [])))' 2>/dev/null || echo '?')"
    done
    echo "chain: connected peers of daemons 1..$K:$conn" >&2
    cd "$work"
    for mode in quiet concurrent; do
        note=$id flag=
        [ "$mode" = concurrent ] && note=$id2 flag=--load
        urls=()
        for k in $(seq $K); do urls+=("$(NOTES_HOME=${homes[k-1]} "$notes" open "$note" --no-browser)"); done
        also=(--also "${urls[0]}")
        for k in $(seq 2 $((K - 1))); do also+=(--also "${urls[k-1]}" --also "${urls[k-1]}"); done
        also+=(--also "${urls[K-1]}")
        echo "path: chain of $K daemons, $mode"
        CHROMIUM=$chromium node ui_chain.mjs "${urls[0]}" "${urls[K-1]}" "$N" $flag "${also[@]}"
    done
    exit 0
fi
A=$work/a B=$work/b
NOTES_HOME=$A "$notes" init --name Ana >/dev/null
NOTES_HOME=$B "$notes" init --name Bo >/dev/null
NOTES_HOME=$A "$notes" space create bench >/dev/null
PA=$(freeport); UA=$(freeport); PB=$(freeport); UB=$(freeport)
code=$(NOTES_HOME=$A "$notes" invite bench --address 127.0.0.1:$PA | grep -o 'notes1[a-z0-9]*' | head -1)
NOTES_HOME=$B "$notes" join "$code" >/dev/null 2>&1 || true
# One note per mode: the tokens of one run must not be in the other's text.
id=$(NOTES_HOME=$A "$notes" new "Latency (quiet)")
id2=$(NOTES_HOME=$A "$notes" new "Latency (concurrent)")
NOTES_HOME=$A "$notes" space add bench "$id" >/dev/null
NOTES_HOME=$A "$notes" space add bench "$id2" >/dev/null
if [ "$path" = relay ]; then
    PR=$(freeport)
    "$notes" relay --listen 127.0.0.1:$PR >"$work/relay.log" 2>&1 & pids+=($!)
    NOTES_HOME=$A "$notes" serve --listen 127.0.0.1:$PA --no-discovery --relay 127.0.0.1:$PR \
        --no-punch --ui 127.0.0.1:$UA >"$work/a.log" 2>&1 & pids+=($!)
    NOTES_HOME=$B "$notes" serve --listen 127.0.0.1:$PB --no-discovery --relay 127.0.0.1:$PR \
        --no-punch --ui 127.0.0.1:$UB >"$work/b.log" 2>&1 & pids+=($!)
else
    NOTES_HOME=$A "$notes" serve --listen 127.0.0.1:$PA --no-discovery --no-relay \
        --ui 127.0.0.1:$UA >"$work/a.log" 2>&1 & pids+=($!)
    NOTES_HOME=$B "$notes" serve --listen 127.0.0.1:$PB --no-discovery --no-relay \
        --peer 127.0.0.1:$PA --ui 127.0.0.1:$UB >"$work/b.log" 2>&1 & pids+=($!)
fi
# Bounded wait: B has the note and both pages are served.
for i in $(seq 100); do
    if NOTES_HOME=$B "$notes" list 2>/dev/null | grep -q "^${id:0:8}" &&
       NOTES_HOME=$B "$notes" list 2>/dev/null | grep -q "^${id2:0:8}" &&
       NOTES_HOME=$A "$notes" open "$id" --no-browser >/dev/null 2>&1 &&
       NOTES_HOME=$B "$notes" open "$id" --no-browser >/dev/null 2>&1; then
        break
    fi
    [ "$i" -eq 100 ] && { echo "ui_latency: the daemons did not come up" >&2; cat "$work"/*.log >&2; exit 1; }
    sleep 0.1
done
cd "$work"
for mode in quiet concurrent; do
    note=$id flag=
    [ "$mode" = concurrent ] && note=$id2 flag=--load
    ua=$(NOTES_HOME=$A "$notes" open "$note" --no-browser)
    ub=$(NOTES_HOME=$B "$notes" open "$note" --no-browser)
    echo "path: $path, $mode"
    CHROMIUM=$chromium node latency.mjs "$ua" "$ub" "$N" $flag
done
