#!/usr/bin/env bash
# run_scale.sh BUILD_DIR [N]: the scale figures of issue 21, one JSON object
# per line. Makes a replica of N notes (default 10,000) from the shared
# samples in a temporary folder (under $TMPDIR, else /tmp): each sample
# imported in turn with a varied title and datetime, one signed change
# each (notes-bench-search, which also prints the in-process search
# figures). Then, with the built `notes` as a user runs it (process start
# included; wall time):
#   notes list / notes decisions / notes search kraftkit:
#     cold_ms       once, the index deleted first (rebuilt from every log)
#     warm_p50_ms   p50 (and min) of 10 runs with the index fresh
#     every_log_ms  once with NOTES_NO_INDEX=1 (every log opened: the way
#                   list and decisions worked before the index)
#   first sync of the N notes (all in one space) to an empty replica:
#     `notes join` against `notes serve` on 127.0.0.1, seconds;
#   sync when nothing changed: `notes sync` again, ms and bytes.
# The machine is whatever runs this: say how loaded it was.
set -euo pipefail
build=${1:-build}
n=${2:-10000}
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
notes=$(cd "$build" && pwd)/cli/notes
dir=$(mktemp -d "${TMPDIR:-/tmp}/notes-scale.XXXXXX")
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

now_us() { echo $(( $(date +%s%N) / 1000 )); }
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }

# once CMD...: wall time of one run in µs (output dropped).
once() {
    local s; s=$(now_us)
    "$@" >/dev/null 2>&1 || { echo "run_scale.sh: failed: $*" >&2; exit 1; }
    echo $(( $(now_us) - s ))
}

# p50min RUNS CMD...: "p50 min" of RUNS runs, in µs.
p50min() {
    local runs=$1; shift
    local ts=() i
    for i in $(seq "$runs"); do ts+=("$(once "$@")"); done
    local sorted; sorted=$(printf '%s\n' "${ts[@]}" | sort -n)
    echo "$(sed -n "$(( (runs + 1) / 2 ))p" <<<"$sorted") $(head -1 <<<"$sorted")"
}

a=$dir/a
s=$(now_us)
"$build/tests/bench/notes-bench-search" --notes "$n" --runs 3 "$a" "$shared"/samples/*.md \
    | tr -d '\n' | sed 's/  */ /g'
echo
echo "{\"figure\": \"replica\", \"notes\": $n, \"made_s\": $(awk -v u=$(( $(now_us) - s )) 'BEGIN { printf "%.1f", u / 1e6 }'), \"logs_bytes\": $(find "$a/notes" -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s }')}"

export NOTES_HOME=$a
for cmd in "list" "decisions" "search kraftkit"; do
    # shellcheck disable=SC2086 # the words of the command
    set -- $cmd
    rm -f "$a/index.sqlite" "$a/index.sqlite-journal"
    cold=$(once "$notes" "$@")
    read -r p50 min <<<"$(p50min 10 "$notes" "$@")"
    slow=null
    if [ "$1" != search ]; then
        slow=$(ms "$(NOTES_NO_INDEX=1 once "$notes" "$@")")
    fi
    echo "{\"figure\": \"notes $cmd\", \"notes\": $n, \"cold_ms\": $(ms "$cold"), \"warm_p50_ms\": $(ms "$p50"), \"warm_min_ms\": $(ms "$min"), \"every_log_ms\": $slow}"
done
unset NOTES_HOME

# Sync: every note in one space, served by A; B joins (the first sync),
# then syncs again with nothing new.
"$build/tests/bench/notes-bench-scale-space" "$a" big >/dev/null
port=$(( 20000 + RANDOM % 20000 ))
code=$(NOTES_HOME=$a "$notes" invite big --address "127.0.0.1:$port" 2>/dev/null)
NOTES_HOME=$a "$notes" serve --listen "127.0.0.1:$port" --no-discovery --no-ui \
    --no-relay >"$dir/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
b=$dir/b
NOTES_HOME=$b "$notes" init --name B >/dev/null
s=$(now_us)
if NOTES_HOME=$b timeout 600 "$notes" join "$code" >"$dir/join.out" 2>&1; then
    first=$(( $(now_us) - s ))
    got=$(find "$b/notes" -name '*.log' | wc -l)
    # "...; N bytes out, M in" as `notes join` reports the sync
    bytes=$(grep -o '[0-9]* bytes out, [0-9]* in' "$dir/join.out" | tail -1 |
        awk '{ printf "\"bytes_sent\": %s, \"bytes_received\": %s", $1, $4 }')
    echo "{\"figure\": \"first sync\", \"notes\": $n, \"notes_received\": $got, \"s\": $(awk -v u="$first" 'BEGIN { printf "%.2f", u / 1e6 }')${bytes:+, $bytes}}"
    s=$(now_us)
    out=$(NOTES_HOME=$b "$notes" sync "127.0.0.1:$port" --space big --json)
    again=$(( $(now_us) - s ))
    sent=$(grep -o '"bytes_sent": *[0-9]*' <<<"$out" | grep -o '[0-9]*$' || echo null)
    recv=$(grep -o '"bytes_received": *[0-9]*' <<<"$out" | grep -o '[0-9]*$' || echo null)
    echo "{\"figure\": \"no-change sync\", \"notes\": $n, \"ms\": $(ms "$again"), \"bytes_sent\": $sent, \"bytes_received\": $recv}"
else
    echo "{\"figure\": \"first sync\", \"notes\": $n, \"error\": \"notes join failed or took over 600 s\"}"
    sed 's/^/  join: /' "$dir/join.out" >&2
fi
