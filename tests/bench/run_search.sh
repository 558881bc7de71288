#!/usr/bin/env bash
# run_search.sh BUILD_DIR [NOTES]: the search figures of issue 19. Makes a
# replica of NOTES notes (default 10,000) from the shared samples in a
# temporary folder (under $TMPDIR, else /tmp), times the index build and
# queries in process (notes-bench-search), then the whole `notes search`
# command a few times, and prints the JSON and the command's times.
set -euo pipefail
build=${1:-build}
n=${2:-10000}
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
dir=$(mktemp -d "${TMPDIR:-/tmp}/notes-search-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$build/tests/bench/notes-bench-search" --notes "$n" "$dir/home" "$shared"/samples/*.md
# The command as a user runs it (process start, replica open, the freshness
# check, the query, printing): wall time of 20 runs, sorted.
for q in kraftkit owner:RD '"release deadline"'; do
    ts=()
    for _ in $(seq 20); do
        s=$(date +%s%N)
        NOTES_HOME="$dir/home" "$build/cli/notes" search "$q" >/dev/null
        ts+=($(( ($(date +%s%N) - s) / 1000 )))
    done
    sorted=$(printf '%s\n' "${ts[@]}" | sort -n)
    printf 'notes search %-20s p50 %6.1f ms  max %6.1f ms\n' "$q" \
        "$(sed -n 10p <<<"$sorted" | awk '{print $1/1000}')" \
        "$(tail -1 <<<"$sorted" | awk '{print $1/1000}')"
done
