#!/usr/bin/env bash
# Regenerates entity/src from the migrated schema, as sea-orm-cli sees it on PostgreSQL
# (MariaDB would turn the JSON column into a String and the uuid into Vec<u8>).
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
DATABASE_URL="$server/$scratch" cargo run -q -p pavex_session_sea_orm_migration -- up
sea-orm-cli generate entity \
  --database-url "$server/$scratch" \
  --tables sessions \
  --output-dir "$out"
# entity/src/lib.rs is ours (crate docs); the generated mod.rs is not used.
cp "$out/sessions.rs" "$out/prelude.rs" entity/src/
cargo fmt -p pavex_session_sea_orm_entity
