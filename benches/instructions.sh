#!/usr/bin/env bash
# Counts the database servers' instructions per session operation (ours, theirs, raw):
# starts a private PostgreSQL and MariaDB under `valgrind --tool=callgrind` in a temporary
# directory (ports 5443 and 3317, loopback only), runs the benchmark with `--instructions`, and
# stops and removes them again, whatever happened. For SQLite, which has no server, the
# benchmark runs itself under callgrind and counts its own process. Extra flags go to the benchmark, e.g.
# `--backend postgres --ops 2000`. Needs root (PostgreSQL runs as the `postgres` user), Debian's
# valgrind, postgresql and mariadb-server packages. The report goes to stdout.
set -euo pipefail
cd "$(dirname "$0")"

pg_port=5443
my_port=3317
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
dir=$(mktemp -d /tmp/pss-instructions.XXXXXX)
chmod 755 "$dir"
mkdir "$dir/profiles" "$dir/pg" "$dir/my"
chmod 777 "$dir/profiles"
chown postgres "$dir/pg"

stop() {
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir/pg" stop -m fast -t 60 >/dev/null 2>&1 || true
  mariadb-admin -h 127.0.0.1 -P "$my_port" -u root shutdown >/dev/null 2>&1 || true
  # mariadb-admin returns before the server is gone.
  for _ in $(seq 1 60); do
    [ -e "$dir/profiles/mariadb.pid" ] || break
    sleep 1
  done
  rm -rf "$dir"
}
trap stop EXIT

wait_for() { # name, check command...
  local name=$1; shift
  for _ in $(seq 1 120); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "error: $name under callgrind does not answer after 120 s (logs in $dir)" >&2
  cat "$dir"/*.log >&2 || true
  return 1
}

runuser -u postgres -- "$pg_bin/initdb" -D "$dir/pg" -A trust -U postgres >"$dir/initdb.log"
mariadb-install-db --no-defaults --datadir="$dir/my" --user=root \
  --auth-root-authentication-method=normal >"$dir/install.log"

# Under valgrind, MariaDB cannot reserve its default 8 TiB of address space for the buffer
# pool, nor use Linux native AIO.
valgrind --tool=callgrind --callgrind-out-file="$dir/profiles/my.%p" \
  mariadbd --no-defaults --user=root --datadir="$dir/my" --port="$my_port" \
  --bind-address=127.0.0.1 --socket="$dir/my.sock" --pid-file="$dir/profiles/mariadb.pid" \
  --innodb-use-native-aio=0 --innodb-buffer-pool-size-max=268435456 --skip-log-bin \
  >"$dir/my.log" 2>&1 &
# Autovacuum off: no background work on the tables while a connection is counted.
runuser -u postgres -- valgrind --tool=callgrind --callgrind-out-file="$dir/profiles/pg.%p" \
  "$pg_bin/postgres" -D "$dir/pg" -p "$pg_port" -k "$dir/profiles" \
  -c listen_addresses=127.0.0.1 -c autovacuum=off \
  >"$dir/pg.log" 2>&1 &

wait_for PostgreSQL psql -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -Atc 'SELECT 1'
wait_for MariaDB mariadb -h 127.0.0.1 -P "$my_port" -u root -e 'SELECT 1'

# The client's build does not change the server's count: CARGO_RUN_FLAGS lets a smoke run reuse
# a debug build (scripts/test-benches.sh).
# shellcheck disable=SC2086
cargo run ${CARGO_RUN_FLAGS:---release --quiet} -- --instructions "$dir/profiles" \
  --postgres-url "postgres://postgres@127.0.0.1:$pg_port/postgres" \
  --mysql-url "mysql://root@127.0.0.1:$my_port/mysql" "$@"
