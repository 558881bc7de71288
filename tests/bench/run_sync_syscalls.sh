#!/usr/bin/env bash
# run_sync_syscalls.sh BUILD_DIR [N]: the system calls of the scale
# benchmark's first sync of N notes (default 1000) to an empty replica,
# per side and per note, counted with strace -f (counts do not depend on
# the load of a shared machine, unlike wall time). Only the calls between
# the benchmark's scale_setup and scale_first_sync lines are counted: the
# dialing side ("receiver", the benchmark's own process) stores the notes,
# the serving child ("sender") reads them. Calls made fewer than N/10
# times are summed in "other"; the sync calls are always listed.
set -euo pipefail
build=${1:-build}
n=${2:-1000}
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
command -v strace >/dev/null || { echo "run_sync_syscalls.sh: strace is not installed" >&2; exit 1; }
trace=$(mktemp)
trap 'rm -f "$trace"' EXIT
strace -f -qq -o "$trace" "$build/tests/bench/notes-bench-sync" --scale "$n" \
  --samples "$shared/samples" | grep scale_first_sync
main=$(head -1 "$trace" | awk '{print $1}')
awk -v main="$main" -v n="$n" '
  index($0, "write(1, \"{\\\"bench\\\":\\\"scale_setup") { on = 1; next }
  index($0, "write(1, \"{\\\"bench\\\":\\\"scale_first_sync") { on = 0 }
  on {
    s = $2
    if (s ~ /^</) next                 # "<... resumed>": counted at its start
    sub(/\(.*/, "", s)
    if (s !~ /^[a-z_0-9]+$/) next
    who = ($1 == main) ? "receiver" : "sender"
    c[who " " s]++; t[who]++
  }
  END {
    for (k in c) {
      split(k, p, " ")
      if (c[k] >= n / 10 || p[2] ~ /sync/)
        printf "%-9s %-14s %8d %8.2f per note\n", p[1], p[2], c[k], c[k] / n
      else
        o[p[1]] += c[k]
    }
    for (w in o) printf "%-9s %-14s %8d %8.2f per note\n", w, "other", o[w], o[w] / n
    for (w in t) printf "%-9s %-14s %8d %8.2f per note\n", w, "TOTAL", t[w], t[w] / n
  }' "$trace" | sort
