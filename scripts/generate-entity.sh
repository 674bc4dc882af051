#!/usr/bin/env bash
# Regenerates entity/src from the migrated schema, as sea-orm-cli sees it on PostgreSQL.
#
# Edits after generation (sea-orm-cli 2.0.4 on PostgreSQL), each checked below:
# - the three time columns are BIGINT Unix epoch milliseconds, which sea-orm-cli reads as a bare
#   `i64`; they become `ChronoUnixTimestampMillis` (a `chrono::DateTime<Utc>` stored as those
#   milliseconds), so that application code reads dates;
# - PostgreSQL's `bytea` has no length: the entity gets the migration's widths back (`id`
#   `Binary(16)`, `subject` and `sign_in` `VarBinary(1020)`, `state` a `Blob`), so that a
#   table created from the entity is the migrated one on every backend but for MySQL's
#   `longblob` (tests/schema.rs, `entity_agrees_with_the_migration`).
#
# Needs: sea-orm-cli 2.0.4 (`cargo install sea-orm-cli@2.0.4 --locked`) and a PostgreSQL server
# (PGURL, default postgres://postgres@127.0.0.1:5432). Creates and drops a scratch database.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${PGURL:-postgres://postgres@127.0.0.1:5432}
scratch=pss_entity_$$
out=$(mktemp -d)
psql "$server/postgres" -qc "CREATE DATABASE $scratch"
trap 'psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $scratch WITH (FORCE)"; rm -rf "$out"' EXIT
DATABASE_URL="$server/$scratch" cargo run -q -p pavex_session_sea_orm_migration --features cli -- up
sea-orm-cli generate entity \
  --database-url "$server/$scratch" \
  --tables sessions \
  --output-dir "$out"
# entity/src/lib.rs is ours (crate docs); the generated mod.rs is not used.
perl -0pe '
  s/pub (deadline|created_at|updated_at): i64,/pub $1: ChronoUnixTimestampMillis,/g;
  s/VarBinary\(StringLen::None\)("\n\s*\)\]\n\s*pub id:)/Binary(16)$1/;
  s/VarBinary\(StringLen::None\)("\)\]\n\s*pub state:)/Blob$1/;
  s/VarBinary\(StringLen::None\)(", nullable\)\]\n\s*pub (subject|sign_in):)/VarBinary(StringLen::N(1020))$1/g;
' "$out/sessions.rs" > entity/src/sessions.rs
expect() {
  test "$(grep -c "$1" entity/src/sessions.rs)" = "$2" || {
    echo "generate-entity: sea-orm-cli's output changed: expected $2 x '$1'; see this script's edits" >&2
    exit 1
  }
}
expect ChronoUnixTimestampMillis 3
expect 'Binary(16)' 1
expect 'column_type = "Blob"' 1
expect 'VarBinary(StringLen::N(1020))' 2
expect 'StringLen::None' 0
cp "$out/prelude.rs" entity/src/
cargo fmt -p pavex_session_sea_orm_entity
