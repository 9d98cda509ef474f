#!/usr/bin/env bash
# Installs every Debian package (and the npm packages of the benchmark peers) that Assent needs.
# Idempotent: it installs only what is missing, so `make run` and `make test` can call it each time.
set -euo pipefail

DEB_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git python3
  libyaml-cpp-dev libsimdjson-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev librapidcheck-dev
  libboost1.81-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libroaring-dev libsodium-dev
  libpq-dev zlib1g-dev libzstd-dev
  # The Python package (pybind11) and its tests: pandas, Dask's distributed, PyTorch, pytest;
  # jsonschema for the API contract test (every response against /openapi.json).
  python3-dev python3-pybind11 python3-numpy python3-pandas python3-distributed python3-torch
  python3-pytest python3-jsonschema
  # The PostgreSQL server: make test starts a throwaway cluster (test/pg/cluster.sh).
  postgresql postgresql-contrib
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Browser tests (make test): Debian's chromium, node, and playwright-core from npm.
need_browser=()
for p in chromium; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_browser+=("$p")
done
command -v node >/dev/null && command -v npm >/dev/null || need_browser+=(nodejs npm)
if ((${#need_browser[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${need_browser[@]}" >/dev/null
fi
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -d "$here/test/e2e/node_modules/playwright-core" ]]; then
  (cd "$here/test/e2e" && npm ci --no-audit --no-fund --silent)
fi

# Fuzzing (make fuzz only): clang 19 with libFuzzer and its sanitizer runtimes (clang 16
# cannot compile libstdc++ 12's std::expected).
if [[ "${1:-}" == "--fuzz" ]]; then
  need_fuzz=()
  for p in clang-19 libfuzzer-19-dev libclang-rt-19-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_fuzz+=("$p")
  done
  if ((${#need_fuzz[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${need_fuzz[@]}" >/dev/null
  fi
fi

# Benchmark peers (bench/compare only): node + npm packages pinned in bench/compare/package.json.
if [[ "${1:-}" == "--bench" ]]; then
  # node + npm for the peers; wrk and nginx (light) for the server's side-by-side benchmark.
  need_bench=()
  command -v node >/dev/null || need_bench+=(nodejs)
  command -v npm >/dev/null || need_bench+=(npm)
  command -v wrk >/dev/null || need_bench+=(wrk)
  [[ -x /usr/sbin/nginx ]] || need_bench+=(nginx-light)
  command -v zstd >/dev/null || need_bench+=(zstd)
  if ((${#need_bench[@]})); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${need_bench[@]}" >/dev/null
    # The package starts nginx as a service: the benchmark runs its own.
    command -v systemctl >/dev/null && $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
    $SUDO pkill -x nginx >/dev/null 2>&1 || true
  fi
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [[ ! -d "$here/bench/compare/node_modules/@cedar-policy/cedar-wasm" || ! -d "$here/bench/compare/node_modules/casbin" ||
        ! -d "$here/bench/compare/node_modules/@duckdb/node-api" ]]; then
    (cd "$here/bench/compare" && npm install --no-audit --no-fund --silent)
  fi
fi
