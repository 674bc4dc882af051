#!/usr/bin/env bash
# Checks with `cargo tree` which sqlx database drivers (sqlx-postgres, sqlx-mysql, sqlx-sqlite)
# and whether clap (the migration binary's argument parser) an application compiles through each
# way of depending on our crates:
#
#   1. pavex_session_sea_orm_migration with its default features: no driver and no clap (an
#      app that only lists it in its own migrator picks its driver itself);
#   2. pavex_session_sea_orm_migration with `--features postgres` (then mysql, sqlite): that
#      driver only, no clap;
#   3. pavex_session_sea_orm with `--features postgres` (then mysql, sqlite), with its default
#      features (an app's usual dependency line) and with `--no-default-features`: that driver
#      only, no clap;
#   4. and, so that a check cannot pass by matching nothing: the migration crate's `cli` feature
#      compiles all three drivers and clap.
#
# The per-package view inside the workspace: `-p <crate>` resolves the features of that crate
# alone (other members, such as the CLI crate that enables every driver, are not unified in
# unless selected), with the feature flags applied to it as an app's dependency line would.
# Dev-dependencies are left out (`-e features,normal,build`; `-e features` alone adds the dev
# edges): the migration crate's tests depend on itself with `cli`, which an app never builds, and
# with dev edges cargo unifies those features in. `--target all`: every platform's dependencies.
#
# With `--prefix none` each line starts with the package it is about: `sqlx-mysql v0.9.0` for
# the crate, `sqlx-mysql feature "json"` for one of its features, while a feature of another
# crate named after a driver (`sea-orm feature "sqlx-mysql"`) starts with that crate's name. So
# the first word of each line names a package that is compiled. When a check fails, the script
# prints the features of our crates that pull the unwanted package in (from `cargo tree -i`).
#
# Usage: scripts/check-features.sh    (a few seconds; reads Cargo.lock, needs no network)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

WATCHED=(sqlx-postgres sqlx-mysql sqlx-sqlite clap)
EDGES=(-e features,normal,build --target all)
fail=0

# packages <package> <cargo tree flags...>: every package compiled for it, one name a line.
packages() {
  local package=$1
  shift
  cargo tree --locked --quiet -p "$package" "$@" "${EDGES[@]}" --prefix none \
    | awk '{ print $1 }' | sort -u
}

# expect <package> "<watched packages wanted>" <cargo tree flags...>: of WATCHED, exactly the
# wanted ones are compiled.
expect() {
  local package=$1 wanted=" $2 " found watched what
  shift 2
  what="$package ${*:-(default features)}"
  found=$(packages "$package" "$@")
  for watched in "${WATCHED[@]}"; do
    if [[ $wanted == *" $watched "* ]]; then
      if ! grep -qx -- "$watched" <<<"$found"; then
        echo "error: $what: $watched is not compiled, but should be" >&2
        fail=1
      fi
    elif grep -qx -- "$watched" <<<"$found"; then
      echo "error: $what: compiles $watched, which it must not; features of ours on its paths (cargo tree -i):" >&2
      cargo tree --locked --quiet -p "$package" "$@" "${EDGES[@]}" -i "$watched" --prefix none \
        | grep -E '^pavex_session_sea_orm[a-z_]* feature ' | sed 's/ (\*)$//' | sort -u \
        | sed 's/^/  /' >&2 || true
      fail=1
    fi
  done
}

MIGRATION=pavex_session_sea_orm_migration
STORE=pavex_session_sea_orm

expect "$MIGRATION" ""
for driver in postgres mysql sqlite; do
  expect "$MIGRATION" "sqlx-$driver" --features "$driver"
  expect "$STORE" "sqlx-$driver" --features "$driver"
  expect "$STORE" "sqlx-$driver" --no-default-features --features "$driver"
done
expect "$MIGRATION" "sqlx-postgres sqlx-mysql sqlx-sqlite clap" --features cli

if [[ $fail != 0 ]]; then
  echo "check-features: FAILED (see above)" >&2
  exit 1
fi
echo "check-features: ok: $MIGRATION by default compiles no sqlx driver and no clap; with postgres, mysql or sqlite it and $STORE compile that one driver only"
