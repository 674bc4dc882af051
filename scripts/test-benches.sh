#!/usr/bin/env bash
# A smoke run of the benchmark workspace (benches/, its own lock file with pavex_session_sqlx's
# sqlx 0.8), so that it keeps building and running: every binary on every backend, with tiny
# sizes. It measures nothing worth reading; every call's outcome and the final row counts are
# still checked, so a broken store or benchmark fails it.
#
#   ./scripts/test-benches.sh [cargo options, e.g. --locked]
#
# Expects the same servers as the tests (PAVEX_SESSION_TEST_POSTGRES_URL,
# PAVEX_SESSION_TEST_MYSQL_URL); each run creates and drops its own databases.
set -euo pipefail
cd "$(dirname "$0")/.."
json=$(mktemp)
trap 'rm -f "$json"' EXIT
cargo run "$@" --manifest-path benches/Cargo.toml -- \
  --rows 300 --expired 1000 --ops 100 --rounds 1 --warmup 0 --json "$json" > /dev/null
# 300 live and 1 000 expired rows per table; on MySQL and SQLite `delete_expired` removes 100
# batches of 5 (one round, at one task), and the other operations keep the live count.
jq -e '[.runs[] | .rows_at_end[] as $n | $n == (if .backend == "postgres" then 1300 else 800 end)]
  | length == 6 and all' "$json" > /dev/null
# The servers' instruction counts, under callgrind (private servers of its own).
CARGO_RUN_FLAGS="--quiet $*" ./benches/instructions.sh --rows 200 --ops 20 > /dev/null
cargo run "$@" --manifest-path benches/Cargo.toml --bin expiry_scale -- \
  --sizes 1000 --batch 100 > /dev/null
# Exits non-zero if a load call or a schema step fails.
cargo run "$@" --manifest-path benches/Cargo.toml --bin ddl_locks -- \
  --rows 2000 --tasks 2 --baseline-secs 1 --gap-secs 0.2 > /dev/null
cargo run "$@" --manifest-path benches/Cargo.toml --bin adoption_load -- \
  --rows 4000 --known 200 > /dev/null
echo "benches: every binary ran on every backend"
