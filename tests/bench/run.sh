#!/usr/bin/env bash
# run.sh BUILD_DIR [TRACE...]: run notes-bench on the shared traces (or the
# given ones) and print one JSON object per trace.
set -euo pipefail
build=${1:-build}; shift || true
shared=${NOTES_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
if [ $# -eq 0 ]; then
    set -- "$shared"/traces/sequential_traces/*.json.gz "$shared"/traces/concurrent_traces/*.json.gz
fi
exec "$build/tests/bench/notes-bench" "$@"
