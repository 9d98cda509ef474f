#!/usr/bin/env bash
# `make fuzz`: fuzzes every target of test/fuzz for FUZZ_SECONDS (default 300) each, two at a
# time, with its dictionary and seed corpus. New inputs go to build/fuzz/corpus/TARGET (not
# committed); a crash is written to test/fuzz/corpus/TARGET/crash-*, where `make test` replays
# it from then on (fix it, minimise it, commit it). Prints executions and coverage per target.
# Usage: scripts/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-300}
JOBS=${FUZZ_JOBS:-2}
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(time terms events_jsonl manifest_line manifest_block receipt entry_decoder snapshot http_request api)
fi
mkdir -p build/fuzz/logs
run_one() {
  local t=$1 seconds=$2
  mkdir -p "build/fuzz/corpus/$t"
  # -rss_limit_mb: a terms file or request that needs more than 2 GB is a finding too.
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "build/fuzz/fuzz_$t" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -dict="test/fuzz/dict/$t.dict" -artifact_prefix="test/fuzz/corpus/$t/crash-" \
      "build/fuzz/corpus/$t" "test/fuzz/corpus/$t" > "build/fuzz/logs/$t.log" 2>&1; then
    result="no crash"
  else
    result="FOUND A CRASH (see build/fuzz/logs/$t.log and test/fuzz/corpus/$t/crash-*)"
  fi
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/logs/$t.log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "build/fuzz/logs/$t.log" | tail -1 | grep -o '[0-9]*' || true)
  printf '%-15s %4ss  executions %-10s edges %-6s %s\n' "$t" "$seconds" "${execs:-?}" "${cov:-?}" "$result"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} bash -c "run_one {} $SECONDS_EACH" | tee build/fuzz/summary.txt
! grep -q "FOUND A CRASH" build/fuzz/summary.txt
