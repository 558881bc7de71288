#!/usr/bin/env bash
# table.sh BUILD_DIR [N]: issue 21's table from one command, in one sitting:
# ours beside the C floor and the anchors where they exist, and the goal.
#   1. the floor (../shared/anchors/floor/run.sh: the traces replayed as
#      plain text in C; gap_utf8 is "the floor");
#   2. the anchors' diamond-types and Loro on automerge-paper (median of 3
#      runs; ANCHORS=0 skips them: they need node, npm and the npm registry
#      once);
#   3. ours: notes-bench on automerge-paper and friendsforever (apply, load,
#      merge from nothing);
#   4. the scale figures (run_scale.sh BUILD N, default 10,000 notes: list,
#      decisions, search, first sync and no-change sync between two real
#      `notes serve`/`notes join` processes). SCALE=0 skips them.
# Every JSON line goes to stderr as it comes; the table to stdout. Times on
# a shared or loaded host mean little: the loadavg is printed with it.
set -euo pipefail
build=${1:-build}
n=${2:-10000}
here=$(cd "$(dirname "$0")/../.." && pwd)
shared=${NOTES_SHARED_DIR:-$here/../shared}
build=$(cd "$build" && pwd)
command -v jq >/dev/null || { echo "table.sh: needs jq (./run installs it)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/notes-table.XXXXXX")
trap 'rm -rf "$work"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
load0=$(load)

# 1. The floor.
OUT=$work/floor REPS=5 EXTRA=0 bash "$shared/anchors/floor/run.sh" \
    "$shared/traces/sequential_traces" >"$work/floor.log" 2>&1 ||
    { echo "table.sh: the floor failed:" >&2; tail -5 "$work/floor.log" >&2; exit 1; }
cat "$work/floor/results.jsonl" >&2
floor=$(jq -r 'select(.trace=="automerge-paper" and .variant=="gap_utf8") | .ms' \
    "$work/floor/results.jsonl")

# 2. The anchors (optional).
dt_apply=- dt_load=- loro_load=-
if [ "${ANCHORS:-1}" != 0 ] && command -v node >/dev/null && command -v npm >/dev/null; then
    if bash "$shared/anchors/run.sh" --traces automerge-paper --libs diamond-types,loro \
        --runs 3 --out "$work/anchors.json" >"$work/anchors.log" 2>&1; then
        med() { # lib field
            jq -r --arg l "$1" --arg f "$2" '[.results[] | select(.lib==$l and .mode=="time" and (.error|not)) | .[$f]] | sort | if length == 0 then "-" else .[(length-1)/2|floor] end' \
                "$work/anchors.json"
        }
        dt_apply=$(med diamond-types applyMs)
        dt_load=$(med diamond-types loadMs)
        loro_load=$(med loro loadMs)
        echo "{\"anchors\":\"automerge-paper\",\"diamond_types_apply_ms\":$dt_apply,\"diamond_types_load_ms\":$dt_load,\"loro_load_ms\":$loro_load}" >&2
    else
        echo "table.sh: the anchors did not run (see below); their column stays empty" >&2
        tail -5 "$work/anchors.log" >&2
    fi
fi

# 3. Ours on the traces.
"$build/tests/bench/notes-bench" "$shared/traces/sequential_traces/automerge-paper.json.gz" \
    "$shared/traces/concurrent_traces/friendsforever.json.gz" >"$work/ours.jsonl"
cat "$work/ours.jsonl" >&2
ours() { jq -r --arg t "$1" --arg f "$2" 'select(.trace==$t) | .[$f]' "$work/ours.jsonl"; }
ap_apply=$(ours automerge-paper apply_ms)
ap_load=$(ours automerge-paper load_ms)
ap_bytes=$(ours automerge-paper stored_bytes)
ap_heap=$(ours automerge-paper doc_heap_kb)
ff_load=$(ours friendsforever load_ms)
ff_merge=$(ours friendsforever merge_ms)

# 4. Scale.
if [ "${SCALE:-1}" != 0 ]; then
    "$here/tests/bench/run_scale.sh" "$build" "$n" >"$work/scale.jsonl"
    cat "$work/scale.jsonl" >&2
fi
scale() { # figure field
    [ -f "$work/scale.jsonl" ] || { echo -; return; }
    jq -r --arg f "$1" --arg k "$2" 'select(.figure==$f) | .[$k] // "-"' "$work/scale.jsonl"
}

r() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
f() { awk -v a="$1" 'BEGIN { if (a == "-" || a == "") print "-"; else printf "%.2f", a }'; }
cat <<EOF
Issue 21's figures, one sitting ($(date -u +%Y-%m-%dT%H:%MZ), loadavg $load0 at the start, $(load) at the end, $(nproc) cores)

| figure | ours | floor / anchors | ratio | goal |
|---|---:|---:|---:|---|
| automerge-paper apply (ms) | $(f "$ap_apply") | floor $(f "$floor"), diamond-types $(f "$dt_apply") | $(r "$ap_apply" "$floor")× floor, $(r "$ap_apply" "$dt_apply")× d-t | ≤ 5× floor, ≤ 0.2× diamond-types |
| automerge-paper load (ms) | $(f "$ap_load") | floor $(f "$floor"), Loro $(f "$loro_load"), diamond-types $(f "$dt_load") | $(r "$ap_load" "$floor")× floor | ≤ 0.4× floor |
| automerge-paper stored bytes / doc heap | $ap_bytes B / $ap_heap KB | | | ≤ 85,000 B / ≤ 2 MB |
| friendsforever load (ms) | $(f "$ff_load") | merge from nothing $(f "$ff_merge") | $(r "$ff_load" "$floor")× floor | ≤ 0.4× floor |
| \`notes list\`, $n notes (ms, warm p50 / min) | $(scale "notes list" warm_p50_ms) / $(scale "notes list" warm_min_ms) | every log opened $(scale "notes list" every_log_ms) | | ≤ 50 at 10,000 |
| \`notes decisions\`, $n notes (ms, warm p50 / min) | $(scale "notes decisions" warm_p50_ms) / $(scale "notes decisions" warm_min_ms) | every log opened $(scale "notes decisions" every_log_ms) | | ≤ 50 at 10,000 |
| \`notes search\`, $n notes (ms, warm p50) | $(scale "notes search kraftkit" warm_p50_ms) | | | |
| first sync of $n notes to an empty replica (s) | $(scale "first sync" s) | | | ≤ 3 for 10,000 |
| sync when nothing changed, $n notes (ms / bytes sent) | $(scale "no-change sync" ms) / $(scale "no-change sync" bytes_sent) | | | ≤ 50 ms, ≤ 2 KB |
EOF
