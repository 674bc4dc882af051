#!/usr/bin/env bash
# Runs interop/: pavex_session_sea_orm pointed at tables that are not its own (pavex_session_sqlx
# 0.2.10's, created by that crate's own migrate(), and an application's own `sessions` table) on
# SQLite, PostgreSQL and MariaDB/MySQL, checking that it refuses them and changes nothing.
#
# interop/ is a workspace of its own (pavex_session_sqlx pulls in sqlx 0.8), with its own
# Cargo.lock and target directory. Arguments go to `cargo test` (e.g. `--locked`, a test name).
# The servers must be up (scripts/test.sh starts them); point at others with
# PAVEX_SESSION_TEST_POSTGRES_URL / PAVEX_SESSION_TEST_MYSQL_URL. An unreachable server fails
# the tests: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --manifest-path interop/Cargo.toml --no-fail-fast "$@"
