#!/usr/bin/env bash
# run_sync.sh BUILD_DIR [TRACE] [--quick]: the sync figures of issue 6 (first
# sync, incremental sync, latency, 10 peers converging), one JSON object per
# line. Default trace: automerge-paper.
set -euo pipefail
build=${1:-build}; shift || true
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
trace=$shared/traces/sequential_traces/automerge-paper.json.gz
if [ $# -gt 0 ] && [ "$1" != --quick ]; then trace=$1; shift; fi
exec "$build/tests/bench/notes-bench-sync" "$trace" "$@"
