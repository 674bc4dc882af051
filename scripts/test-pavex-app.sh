#!/usr/bin/env bash
# Builds the example Pavex app (examples/pavex_app, from its committed, pavexc-generated
# server_sdk/) and runs its end-to-end test: the server binary on a free loopback port, driven
# over HTTP by clients with cookie jars, on SQLite, PostgreSQL and MariaDB/MySQL in turn.
#
#   ./scripts/test-pavex-app.sh [cargo test options, e.g. --locked]
#
# Starts no database server. It expects PostgreSQL at postgres://postgres@127.0.0.1:5432/test
# and MariaDB at mysql://root@127.0.0.1:3306/test (override with PAVEX_SESSION_TEST_POSTGRES_URL
# and PAVEX_SESSION_TEST_MYSQL_URL; the user must be allowed to create databases). Each run
# creates a fresh database on each server and drops it afterwards; SQLite uses a temporary
# file. A backend that does not answer fails the run: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/../examples/pavex_app"

export PAVEX_SESSION_TEST_POSTGRES_URL="${PAVEX_SESSION_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export PAVEX_SESSION_TEST_MYSQL_URL="${PAVEX_SESSION_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

# Every crate of the example (app and its `bp` binary, server_sdk, server), then the tests.
cargo build --workspace --all-targets "$@"
# One backend at a time: each test starts its own server process on its own database.
cargo test --workspace "$@" -- --test-threads=1
