#!/usr/bin/env bash
# run_sync.sh BUILD_DIR [TRACE] [--quick]: the sync figures of issue 6 (first
# sync, incremental sync, latency, 10 peers converging), one JSON object per
# line. Default trace: automerge-paper.
# run_sync.sh BUILD_DIR --scale [N,N...]: the scale figures of issue 21 (a
# space of N small notes from the samples: first sync, no-change sync, one
# edit; default 1000,3670,10000).
set -euo pipefail
build=${1:-build}; shift || true
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
if [ "${1:-}" = --scale ]; then
  exec "$build/tests/bench/notes-bench-sync" --scale "${2:-1000,3670,10000}" \
    --samples "$shared/samples"
fi
trace=$shared/traces/sequential_traces/automerge-paper.json.gz
if [ $# -gt 0 ] && [ "$1" != --quick ]; then trace=$1; shift; fi
exec "$build/tests/bench/notes-bench-sync" "$trace" "$@"
