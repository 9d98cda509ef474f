#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: created in DIR, listening on a free
# loopback port, run as an unprivileged user (the `postgres` system user when called as root).
#   cluster.sh start DIR [--fast]   initdb + start; writes DIR/url (superuser "assent", db "assent")
#   cluster.sh stop DIR             fast shutdown, and removes DIR
#   cluster.sh restart DIR          stop and start again on the same port (fault tests)
#   cluster.sh down DIR | up DIR    stop the server, keeping its data; start it again (fault tests)
# --fast: fsync=off (tests only: never for the benchmarks, which measure durable appends).
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop|restart|down|up DIR}
dir=${2:?usage: cluster.sh start|stop|restart|down|up DIR}
fast=${3:-}

bindir=""
for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { bindir=$d; break; }
done
if [[ -z "$bindir" ]]; then
  echo "cluster.sh: no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb): run scripts/install-deps.sh" >&2
  exit 1
fi

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() {
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
    echo "cluster.sh: the server did not start; its log:" >&2
    tail -20 "$dir/server.log" >&2
    exit 1
  }
}

case "$cmd" in
  start)
    # A fresh cluster every time: stop and remove what an interrupted run may have left.
    if [[ -f "$dir/data/postmaster.pid" ]]; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
      id postgres >/dev/null 2>&1 || { echo "cluster.sh: no 'postgres' user to run the server as" >&2; exit 1; }
      chown postgres "$dir"
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -U assent --auth=trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '$dir'"
      echo "max_connections = 300"
      echo "shared_buffers = 128MB"
      if [[ "$fast" == "--fast" ]]; then echo "fsync = off"; echo "synchronous_commit = off"; fi
    } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    # A free port: another cluster starting at the same moment may take the one we checked,
    # so a start that cannot bind tries another.
    for attempt in 1 2 3 4 5 6 7 8; do
      port=$(shuf -i 20000-60000 -n 1)
      port_free "$port" || continue
      echo "port = $port" | as_owner tee "$dir/data/postgresql.auto.conf" >/dev/null
      if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
        started=1
        break
      fi
    done
    if [[ -z "${started:-}" ]]; then
      echo "cluster.sh: the server did not start; its log:" >&2
      tail -20 "$dir/server.log" >&2
      exit 1
    fi
    as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U assent assent
    echo "postgresql://assent@127.0.0.1:$port/assent" > "$dir/url"
    chmod a+r "$dir/url"
    ;;
  stop)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  restart)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    start_server
    ;;
  down)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  up)
    start_server
    ;;
  *) echo "cluster.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
