#!/usr/bin/env bash
# `make bench`: every benchmark of the release build, then the side-by-side comparison with
# Cedar and node-casbin in the same run, printed as ratios. Results land in build/bench/;
# bench/RESULTS.md keeps the figures of record (copy them there with the date and machine).
# `bench/run.sh SECTION` runs one section: engine, ledger, audit, gate, python, server, feed, sessions, replay, pg or peers.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${1:-all}
want() { [[ "$only" == all || "$only" == "$1" ]]; }
out=build/bench
mkdir -p "$out"
# Transparent huge pages for malloc's arenas: fewer TLB misses on the 1M-subject state.
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1

echo "== machine"
{ echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)";
  echo "cores: $(nproc)"; echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB"; } | tee "$out/machine.txt"

if want engine; then
echo "== decision engine (Google Benchmark)"
build/release/assent_bench --benchmark_min_time=1 \
  --benchmark_out="$out/decide.json" --benchmark_out_format=json
fi

if want ledger; then
echo "== ledger: 64 concurrent durable writers, group commit vs one fsync per event"
build/release/assent_ledger_bench appends 5 | tee "$out/appends.json"
fi

if want audit; then
echo "== audit: Merkle maintenance on durable appends (with vs without), proofs at 10M leaves"
build/release/assent_ledger_bench audit 3 | tee "$out/audit.json"
fi

if want gate; then
echo "== training-data gate: 2M items beside DuckDB (same SQL filter) and simdjson's own parse"
bench/gate/run.sh | tee "$out/gate.json"
fi

if want python; then
echo "== Python package: decide_many beside C++ DecideBatch (1M rows); Dask filter_jsonl beside the CLI"
/usr/bin/python3 bench/python/run.py build/release "$out" | tee "$out/python.json"
fi

if want server; then
echo "== HTTP server: wrk -t2 -c64 on POST /v1/decisions beside nginx serving a 200-byte file"
bench/server/run.sh build/release/assent | tee "$out/server.json"
fi

if want feed; then
echo "== change feed: 1,000 idle subscribers and a stalled one on one node; latency across three nodes on PostgreSQL"
/usr/bin/python3 bench/feed/run.py build/release/assent "$out" | tee "$out/feed.jsonl"
fi

if want sessions; then
echo "== sign-in links: mint, redeem (durable) and session checks, fresh vs 20,000 redeemed"
build/release/assent_ledger_bench sessions "$out/sessions-ledger" | tee "$out/sessions.json"
fi

if want replay; then
echo "== ledger: start-up replay of 10M consent events over 5M subjects"
replay_dir="$out/replay-10m-v2"  # schema 2: pseudonymised parties
if [[ ! -f "$replay_dir/ledger.db" ]]; then
  build/release/assent_ledger_bench generate "$replay_dir" 10000000 5000000 | tee "$out/generate.json"
fi
build/release/assent_ledger_bench replay "$replay_dir" | tee "$out/replay.json"
fi

if want pg; then
echo "== PostgreSQL: three nodes on one database (durable: fsync on), pgbench as the reference"
pg_dir=$(mktemp -d /tmp/assent-bench-pg.XXXXXX)
trap 'test/pg/cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true' EXIT
test/pg/cluster.sh start "$pg_dir"
pg_url=$(cat "$pg_dir/url")
psql -q "$pg_url" -c "CREATE DATABASE assent_appends_64" -c "CREATE DATABASE assent_appends_192" \
  -c "CREATE DATABASE assent_propagation" -c "CREATE DATABASE pgbench_ref"
base=${pg_url%/*}
# Three nodes (three Ledgers in one process, each with its own connections, group committer
# and follower): 64 writers in all, then 64 per node.
build/release/assent_ledger_bench pg-appends "$base/assent_appends_64" 10 64 | tee "$out/pg-appends-64.json"
build/release/assent_ledger_bench pg-appends "$base/assent_appends_192" 10 192 | tee "$out/pg-appends.json"
build/release/assent_ledger_bench pg-propagation "$base/assent_propagation" 500 | tee "$out/pg-propagation.json"
# The reference: pgbench clients each inserting one row per transaction (a durable commit
# each), on the same server, for the same 10 seconds, as many clients as writers above.
psql -q "$base/pgbench_ref" -c "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
echo "INSERT INTO events (body) VALUES (decode(md5(random()::text), 'hex'));" > "$pg_dir/insert.sql"
for clients in 64 192; do
  pgbench -n -c $clients -j 2 -T 10 -f "$pg_dir/insert.sql" "$base/pgbench_ref" 2>/dev/null \
    | awk -v c=$clients '/^tps/ {printf "{\"mode\":\"pgbench-simple-insert\",\"clients\":%d,\"tps\":%.0f}\n", c, $3}' \
    | tee "$out/pgbench-$clients.json"
done
node -e '
  const a = require("./'"$out"'/pg-appends.json"), p = require("./'"$out"'/pgbench-192.json");
  console.log(JSON.stringify({mode: "pg-ratio", writers: a.writers,
    assent_events_per_second: a.events_per_second, pgbench_inserts_per_second: p.tps,
    ratio: +(a.events_per_second / p.tps).toFixed(2)}));' \
  | tee "$out/pg-ratio.json"
fi

if want peers; then
echo "== peers: Cedar and node-casbin on the same workload"
(cd bench/compare && node compare.mjs) > "$out/peers.json"
cat "$out/peers.json"

echo "== ratios"
node bench/compare/ratios.mjs "$out/decide.json" "$out/peers.json" | tee "$out/latest.md"
fi
