#!/usr/bin/env bash
# campaign.sh: a long fuzzing run of the given targets (default: all), one
# after another, each for SECONDS (default 1800) on one core, starting from
# its committed corpus plus what earlier campaigns found. Prints, per
# target: executions, libFuzzer's edge coverage ("cov") and features
# ("ft"), corpus size, and whether it crashed.
#   usage: tests/fuzz/campaign.sh [-t SECONDS] [TARGET ...]
# Needs the libFuzzer build (.ci/fuzz-smoke 0 makes it, in build-fuzz).
# Inputs found go to build-fuzz/campaign/TARGET; crashes to
# build-fuzz/campaign/TARGET/crash-*. To keep a grown corpus, minimize it
# into tests/fuzz/corpus with: FUZZER -merge=1 tests/fuzz/corpus/T DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=1800
if [ "${1:-}" = "-t" ]; then secs=$2; shift 2; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for bin in build-fuzz/tests/fuzz/fuzz_* build-fuzz/formats/fuzz_*; do
        [ -x "$bin" ] && targets+=("$(basename "$bin" | sed 's/^fuzz_//')")
    done
fi
out=build-fuzz/campaign; mkdir -p "$out"
status=0
for t in "${targets[@]}"; do
    bin=build-fuzz/tests/fuzz/fuzz_$t
    [ -x "$bin" ] || bin=build-fuzz/formats/fuzz_$t
    [ -x "$bin" ] || { echo "$t: no fuzzer binary (run .ci/fuzz-smoke first)"; status=1; continue; }
    work=$out/$t; mkdir -p "$work/corpus"
    cp -n tests/fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null || true
    log=$out/$t.log
    if "$bin" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$work/" "$work/corpus" >"$log" 2>&1; then
        result="no crash"
    else
        result="FAILED (see $log)"; status=1
    fi
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    echo "$t: ${secs} s, ${runs:-?} executions, cov ${cov:-?} edges, ft ${ft:-?}, corpus $(ls "$work/corpus" | wc -l) inputs, $result"
done
exit $status
