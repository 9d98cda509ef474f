#!/usr/bin/env bash
# `make bench`: every benchmark of the release build, then the side-by-side comparison with
# Cedar and node-casbin in the same run, printed as ratios. Results land in build/bench/;
# bench/RESULTS.md keeps the figures of record (copy them there with the date and machine).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bench
mkdir -p "$out"
# Transparent huge pages for malloc's arenas: fewer TLB misses on the 1M-subject state.
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1

echo "== machine"
{ echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)";
  echo "cores: $(nproc)"; echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB"; } | tee "$out/machine.txt"

echo "== decision engine (Google Benchmark)"
build/release/assent_bench --benchmark_min_time=1 \
  --benchmark_out="$out/decide.json" --benchmark_out_format=json

echo "== ledger: 64 concurrent durable writers, group commit vs one fsync per event"
build/release/assent_ledger_bench appends 5 | tee "$out/appends.json"

echo "== audit: Merkle maintenance on durable appends (with vs without), proofs at 10M leaves"
build/release/assent_ledger_bench audit 3 | tee "$out/audit.json"

echo "== ledger: start-up replay of 10M consent events over 5M subjects"
replay_dir="$out/replay-10m-v2"  # schema 2: pseudonymised parties
if [[ ! -f "$replay_dir/ledger.db" ]]; then
  build/release/assent_ledger_bench generate "$replay_dir" 10000000 5000000 | tee "$out/generate.json"
fi
build/release/assent_ledger_bench replay "$replay_dir" | tee "$out/replay.json"

echo "== peers: Cedar and node-casbin on the same workload"
(cd bench/compare && node compare.mjs) > "$out/peers.json"
cat "$out/peers.json"

echo "== ratios"
node bench/compare/ratios.mjs "$out/decide.json" "$out/peers.json" | tee "$out/latest.md"
