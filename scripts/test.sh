#!/usr/bin/env bash
# Runs the whole test suite on SQLite, PostgreSQL and MariaDB/MySQL.
#
# Starts the local PostgreSQL and MariaDB servers if they are down (as this machine kind installs
# them) and fails, never skips, when either does not answer. The Galera cluster tests start and
# stop a private cluster of their own (scripts/galera.sh), never touching these servers. Point the tests at other servers
# with PAVEX_SESSION_TEST_POSTGRES_URL / PAVEX_SESSION_TEST_MYSQL_URL (the URL of a database the
# tests may connect to; each test creates and drops a database of its own beside it).
set -euo pipefail
cd "$(dirname "$0")/.."

wait_for() { # name, check command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "$name is up"; return 0; fi
    sleep 1
  done
  echo "error: $name does not answer after 60 s" >&2
  return 1
}

if [ -z "${PAVEX_SESSION_TEST_POSTGRES_URL:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  fi
  wait_for PostgreSQL psql -h 127.0.0.1 -U postgres -d test -Atc 'SELECT 1'
fi

if [ -z "${PAVEX_SESSION_TEST_MYSQL_URL:-}" ]; then
  if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
    echo "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
  wait_for MariaDB mariadb -h 127.0.0.1 -u root -e 'CREATE DATABASE IF NOT EXISTS test'
fi

# The Galera tests (tests/galera.rs and the contract's galera::* tests) start a private 3-node
# cluster with scripts/galera.sh; they need Debian's galera-4 and rsync (the state transfer).
if [ ! -e /usr/lib/galera/libgalera_smm.so ] || ! command -v rsync >/dev/null; then
  echo "installing galera-4 and rsync for the cluster tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y galera-4 rsync
fi

cargo test --workspace "$@"
./scripts/test-interop.sh "$@"
./scripts/test-pavex-app.sh "$@"
./scripts/test-benches.sh "$@"
