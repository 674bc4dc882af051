#!/usr/bin/env bash
# Runs the whole test suite on SQLite, PostgreSQL and MariaDB/MySQL.
#
# Installs PostgreSQL and MariaDB from Debian's packages when they are missing, starts them when
# they are down, and fails, never skips, when either does not answer. The Galera cluster tests start and
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

# Debian's packages, installed when a server is missing altogether (a fresh machine). Only then
# does the script configure the server for the tests: PostgreSQL trusts connections from
# loopback, MariaDB's root takes an empty password over TCP, and each gets a `test` database.
# A server that is already installed is never reconfigured, only started.
apt_install() {
  echo "installing $* (Debian's packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ -z "${PAVEX_SESSION_TEST_POSTGRES_URL:-}" ]; then
  installed_postgres=false
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
    installed_postgres=true
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if $installed_postgres; then
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart || true
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
  if $installed_postgres; then
    psql -h 127.0.0.1 -U postgres -qc 'CREATE DATABASE test'
  fi
  wait_for PostgreSQL psql -h 127.0.0.1 -U postgres -d test -Atc 'SELECT 1'
fi

if [ -z "${PAVEX_SESSION_TEST_MYSQL_URL:-}" ]; then
  installed_mariadb=false
  if [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
    installed_mariadb=true
  fi
  if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
    echo "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    # As the mysql user, as systemd starts it: mariadbd refuses to run as root.
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql || true
  fi
  if $installed_mariadb; then
    # Debian's root signs in through the Unix socket only; the tests connect over TCP.
    wait_for MariaDB mariadb-admin ping
    mariadb -e "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
  fi
  wait_for MariaDB mariadb -h 127.0.0.1 -u root -e 'CREATE DATABASE IF NOT EXISTS test'
fi

# `--servers-only`: stop here, with the servers up (to check a machine's set-up).
if [ "${1:-}" = "--servers-only" ]; then
  echo "PostgreSQL and MariaDB are up"
  exit 0
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
