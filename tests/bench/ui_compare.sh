#!/usr/bin/env bash
# ui_compare.sh BUILD_DIR [N]: issue 18's latency figures in one sitting, ours
# beside Yjs's. Runs, one after the other on this machine: the Yjs +
# y-websocket + CodeMirror anchor (../shared/anchors/live/run.sh, RUNS=1, in
# a temporary WORK; needs the npm registry once for its npm ci), then
# ui_latency.sh direct, relay and chain, then the anchor again (the machine's
# load drifts; YJS_AFTER=0 skips the second run). N tokens each (default
# 300), quiet and while B types ~20 keys/s. Prints every JSON line as it
# comes (stderr), then one table on stdout: p50/p99 in ms, each of ours with
# its ratio to the Yjs run (the mean of the runs' p50s and of their p99s),
# and the tokens never drawn on B within 5 s. PATHS="direct relay chain"
# picks ours.
set -euo pipefail
build=${1:-build}; N=${2:-300}
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
shared=${NOTES_SHARED_DIR:-$here/../shared}
anchor=$shared/anchors/live
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "ui_compare: no Chromium at $chromium (apt-get install chromium)" >&2; exit 77; }
[ -x "$anchor/run.sh" ] || { echo "ui_compare: no Yjs anchor at $anchor" >&2; exit 77; }
work=$(mktemp -d /tmp/notes-ui-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
out=$work/all.jsonl
: >"$out"
# Each line of a run, tagged with what ran: {"who":..., "mode":..., p50, p99, lost, ...}.
tag() { # who
    while IFS= read -r line; do
        case $line in
        '{'*) printf '%s\n' "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["who"]=sys.argv[1]; print(json.dumps(d))' "$1" | tee -a "$out" >&2 ;;
        *) printf '%s\n' "$line" >&2 ;;
        esac
    done
}
yjs() { # label
    mkdir -p "$work/yjs"
    echo "ui_compare: Yjs anchor ($1), N=$N" >&2
    WORK=$work/yjs RUNS=1 N=$N CHROMIUM=$chromium "$anchor/run.sh" | tag "$1" ||
        echo "ui_compare: the Yjs anchor failed (its row is missing)" >&2
}
started=$(date -u +%FT%TZ)
yjs yjs
for p in ${PATHS:-direct relay chain}; do
    echo "ui_compare: notes $p, N=$N" >&2
    CHROMIUM=$chromium "$here/tests/bench/ui_latency.sh" "$build" "$N" "$p" | tag "notes-$p" ||
        echo "ui_compare: notes $p failed (its row is missing)" >&2
done
[ "${YJS_AFTER:-1}" = 0 ] || yjs yjs-after
python3 - "$out" "$started" "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')" "$N" "$build" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
started, commit, n = sys.argv[2], sys.argv[3], sys.argv[4]
by = {}
for r in rows:
    by.setdefault(r["who"], {})[r["mode"]] = r
yj = [w for w in by if w.startswith("yjs")]
def ref(mode, k):
    xs = [by[w][mode][k] for w in yj if mode in by[w] and by[w][mode].get(k) is not None]
    return sum(xs) / len(xs) if xs else None
print(f"# ui_compare {started}, scripts at {commit}, notes of {sys.argv[5]}, N={n} tokens per mode; ms, keydown on A to the token drawn on B")
head = ["", "quiet p50", "quiet p99", "typing p50", "typing p99", "never drawn"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for w in by:
    cells = [w]
    for mode in ("quiet", "concurrent"):
        r = by[w].get(mode)
        for k in ("p50", "p99"):
            v = r.get(k) if r else None
            if v is None:
                cells.append("-")
                continue
            base = ref(mode, k)
            cells.append(f"{v:.1f}" if w.startswith("yjs") or not base else f"{v:.1f} ({v / base:.1f}x)")
    lost = [str(by[w][m].get("lost", "?")) for m in ("quiet", "concurrent") if m in by[w]]
    cells.append(" / ".join(lost))
    print("| " + " | ".join(cells) + " |")
EOF
