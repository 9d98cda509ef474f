#!/usr/bin/env bash
# The training-data gate side by side in one run (issue "The training-data gate at the limit"):
# a generated manifest (ITEMS lines, subjects Zipf over 100k, ~150 bytes a line), then
#   - simdjson's own iterate_many over it on one core (the parse-speed reference),
#   - the gate's own reader alone over it on one core (reading, not deciding: where time goes),
#   - `assent filter` with its default threads (plain, and zstd-compressed input; and with
#     --report, which hashes the input and output as a dataset's record needs),
#   - DuckDB (npm @duckdb/node-api) running the same filter as SQL, writing the same kept lines
#     (best of five too; simdjson's and the reader's figures are their best of five rounds),
# checks that DuckDB's output equals Assent's byte for byte, and prints one JSON line with the
# ratios. Files live on tmpfs (/dev/shm) so that the disk's writeback does not decide.
# Usage: bench/gate/run.sh [ITEMS]   (default 2,000,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
items=${1:-2000000}
work=$(mktemp -d /dev/shm/assent-gate-bench.XXXXXX 2>/dev/null || mktemp -d /tmp/assent-gate-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
build/release/assent_gate_bench generate "$work" "$items" 100000 >"$work/generate.json"
ref=$(build/release/assent_gate_bench simdjson "$work/manifest.jsonl")
simd_bps=$(sed -n 's/.*"bytes_per_second":\([0-9]*\).*/\1/p' <<<"$ref")
# The gate's own manifest reader alone on one core (no deciding, hashing or writing).
reader=$(build/release/assent_gate_bench reader "$work/manifest.jsonl")
reader_bps=$(sed -n 's/.*"bytes_per_second":\([0-9]*\).*/\1/p' <<<"$reader")
bytes=$(stat -c %s "$work/manifest.jsonl")
command -v zstd >/dev/null && zstd -q -3 "$work/manifest.jsonl" -o "$work/manifest.jsonl.zst"

# Wall time of one run of a command, in seconds. Each run writes a new output file, as DuckDB's
# does (replacing the last run's would add freeing its 160 MB to the time).
timed() {
  local s e
  rm -f "$work/kept.jsonl"
  s=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN {print e - s}'
}
filter() {
  build/release/assent filter --data "$work/data" --purpose ai_training.first_party \
    --in "$1" --out "$work/kept.jsonl" "${@:2}"
}
# Each variant's best of ROUNDS (default 5) runs. The variants take turns, round by round, so
# that a busy stretch of a shared machine falls on all of them alike, not on one variant's runs.
rounds=${ROUNDS:-5}
assent_s=999999 one_thread_s=999999 report_s=999999 zstd_s=999999
min() { awk -v a="$1" -v b="$2" 'BEGIN {print (b < a) ? b : a}'; }
for ((r = 0; r < rounds; ++r)); do
  assent_s=$(min "$assent_s" "$(timed filter "$work/manifest.jsonl")")
  one_thread_s=$(min "$one_thread_s" "$(timed filter "$work/manifest.jsonl" --threads 1)")
  # With --report the run also hashes its input and output (SHA-256, what a dataset records).
  report_s=$(min "$report_s" "$(timed filter "$work/manifest.jsonl" --report "$work/report.json")")
  if [[ -f "$work/manifest.jsonl.zst" ]]; then
    zstd_s=$(min "$zstd_s" "$(timed filter "$work/manifest.jsonl.zst")")
  fi
done
[[ -f "$work/manifest.jsonl.zst" ]] || zstd_s=0
filter "$work/manifest.jsonl" 2>/dev/null
duck=$(cd bench/compare && node gate_duckdb.mjs "$work" "$work/duck.jsonl")
duck_s=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' <<<"$duck")
cmp -s "$work/kept.jsonl" "$work/duck.jsonl" || { echo "DuckDB kept other lines than Assent" >&2; exit 1; }
rss=$( { /usr/bin/time -f %M build/release/assent filter --data "$work/data" --purpose ai_training.first_party \
  --in "$work/manifest.jsonl" --out "$work/kept.jsonl" 2>&1 >/dev/null; } | tail -1)
awk -v items="$items" -v bytes="$bytes" -v a="$assent_s" -v one="$one_thread_s" -v z="$zstd_s" \
    -v d="$duck_s" -v simd="$simd_bps" -v reader="$reader_bps" -v rss="$rss" -v rep="$report_s" 'BEGIN {
  printf "{\"mode\":\"gate\",\"items\":%d,\"bytes\":%d,\"assent_seconds\":%.3f,\"assent_one_thread_seconds\":%.3f,", items, bytes, a, one
  printf "\"assent_zstd_seconds\":%.3f,\"duckdb_seconds\":%.3f,\"simdjson_bytes_per_second\":%.0f,", z, d, simd
  printf "\"assent_bytes_per_second\":%.0f,\"vs_duckdb\":%.2f,\"vs_simdjson\":%.2f,\"threads_scaling\":%.2f,", bytes / a, d / a, (bytes / a) / simd, one / a
  printf "\"reader_bytes_per_second\":%.0f,\"reader_vs_simdjson\":%.2f,", reader, reader / simd
  printf "\"assent_report_seconds\":%.3f,\"vs_duckdb_with_report\":%.2f,", rep, d / rep
  printf "\"zstd_vs_plain\":%.2f,\"peak_rss_mib\":%.0f}\n", (z > 0 ? a / z : 0), rss / 1024
}'
