#!/usr/bin/env bash
# The server's speed beside nginx on the same machine (issue "One shape": ≥ 0.5× nginx, p99 ≤
# 5 ms at 64 connections). wrk -t2 -c64 against POST /v1/decisions (a service key, the access
# log on, written to a file) and against nginx serving a 200-byte static file (its access log
# on too), three alternating 4-second rounds each; medians. Prints one JSON line.
# Usage: bench/server/run.sh [ASSENT_BINARY] (default build/release/assent)
set -euo pipefail
cd "$(dirname "$0")/../.."
assent=${1:-build/release/assent}
seconds=${SERVER_BENCH_SECONDS:-4}
rounds=${SERVER_BENCH_ROUNDS:-3}
work=$(mktemp -d /tmp/assent-server-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Assent: the demo terms and keys, on a free port.
"$assent" serve --demo --data "$work/data" --listen 127.0.0.1:0 >"$work/assent.out" 2>"$work/access.log" &
pids+=($!)
for _ in $(seq 1 200); do
  grep -q "demo keys" "$work/assent.out" 2>/dev/null && grep -q "^  service" "$work/assent.out" && break
  sleep 0.05
done
port=$(sed -n 's|.* on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/assent.out" | head -1)
key=$(awk '$1 == "service" {print $2}' "$work/assent.out" | head -1)
[[ -n "$port" && -n "$key" ]] || { echo "assent did not start" >&2; cat "$work/assent.out" >&2; exit 1; }

# nginx: two workers (one per core, as Assent runs one event loop per core), a 200-byte file.
mkdir -p "$work/www" "$work/nginx"
chmod 755 "$work" "$work/www"  # nginx workers run as another user
head -c 200 /dev/zero | tr '\0' 'a' >"$work/www/static.txt"
nport=$((port + 1))
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes $(nproc);
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log $work/nginx/access.log;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nport; root $work/www; }
}
CONF
/usr/sbin/nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$nport/static.txt" >/dev/null && break; sleep 0.05; done

cat >"$work/decide.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"category":"service_generated.telemetry","purpose":"product_development.analytics","subjects":["u1"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
curl -sf -X POST "http://127.0.0.1:$port/v1/decisions" -H "Authorization: Bearer $key" \
  -d '{"category":"service_generated.telemetry","purpose":"product_development.analytics","subjects":["u1"]}' >/dev/null \
  || { echo "the decision request fails" >&2; exit 1; }

# Requests/s and p99 (ms) of one wrk run.
run() {
  local out
  out=$(wrk -t2 -c64 -d"${seconds}s" --latency "$@")
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
  local errors
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [[ -z "$errors" ]] || { echo "non-2xx answers: $errors of: $*" >&2; exit 1; }
  echo "$rps $p99"
}
assent_rps=(); assent_p99=(); nginx_rps=(); nginx_p99=()
for _ in $(seq 1 "$rounds"); do
  read -r r p < <(run -s "$work/decide.lua" "http://127.0.0.1:$port/v1/decisions")
  assent_rps+=("$r"); assent_p99+=("$p")
  read -r r p < <(run "http://127.0.0.1:$nport/static.txt")
  nginx_rps+=("$r"); nginx_p99+=("$p")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ar=$(median "${assent_rps[@]}"); ap=$(median "${assent_p99[@]}")
nr=$(median "${nginx_rps[@]}"); np=$(median "${nginx_p99[@]}")
printf '{"mode":"server","connections":64,"rounds":%d,"seconds":%d,"assent_rps":%.0f,"assent_p99_ms":%.2f,"nginx_rps":%.0f,"nginx_p99_ms":%.2f,"ratio":%.2f}\n' \
  "$rounds" "$seconds" "$ar" "$ap" "$nr" "$np" "$(awk -v a="$ar" -v n="$nr" 'BEGIN {print a / n}')"
