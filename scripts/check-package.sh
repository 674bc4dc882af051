#!/usr/bin/env bash
# Checks that the workspace's four crates can be published:
#
#   1. every member declares rust-version 1.94 (MSRV below), and every package in the lock file
#      (all platforms, all features; from `cargo metadata --locked`) declares a rust_version of at
#      most 1.94, or none. No 1.94 toolchain is installed here (1.95 and a nightly are) and none
#      can be downloaded, so this is how the MSRV is held: by what the dependencies declare, not
#      by building with 1.94;
#   2. each member ships its README and both license files, identical to the root's;
#   3. `cargo package --workspace --locked` packages the members together (cargo resolves their
#      path dependencies against each other, not the published versions) and verifies each tarball by
#      building it; the files of each package are listed.
#
# Usage: scripts/check-package.sh [--no-verify]   (extra arguments go to `cargo package`)
#
# On the project's 2-core machine: the first run builds every dependency once more, in
# target/check-package/ (25 min while other builds shared the cores; 9.5 min of CPU); later runs
# rebuild only our four crates there (about 70 s). --no-verify skips the builds (about 15 s). `cargo package` asks the registry's index for the packaged crates' lock files, so it
# needs the network (or a filled cache and --offline).
#
# `--allow-dirty` is always passed: this checks what would be packaged, including edits not yet
# committed; a real `cargo publish` from a clean checkout does not need it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

MSRV=${CHECK_MSRV:-1.94}  # CHECK_MSRV only to test this script
MEMBERS=(pavex_session_sea_orm pavex_session_sea_orm_entity pavex_session_sea_orm_migration pavex_session_sea_orm_cli)
fail=0

command -v jq >/dev/null || { echo "error: this script needs jq" >&2; exit 1; }

echo "== rust-version: members declare $MSRV, no dependency needs more"
metadata=$(cargo metadata --locked --format-version 1 --quiet)
# Versions compared as (major, minor, patch), a missing part being 0: "1.94" = 1.94.0.
report=$(jq -r --arg msrv "$MSRV" '
  def v: split(".") | map(tonumber) | . + [0, 0, 0] | .[0:3];
  ($msrv | v) as $max
  | (.workspace_members) as $members
  | .packages[]
  | (.id | IN($members[])) as $member
  | if $member and .rust_version != $msrv then
      "member \(.name) declares rust-version \(.rust_version // "none"), not \($msrv)"
    elif .rust_version != null and (.rust_version | v) > $max then
      "dependency \(.name) \(.version) needs rust \(.rust_version)"
    else empty end
' <<<"$metadata")
if [ -n "$report" ]; then
  echo "$report" | sed 's/^/error: /' >&2
  fail=1
fi
jq -r '
  "\(.packages | length) packages in the lock file: \([.packages[] | select(.rust_version != null)] | length) declare a rust_version (the highest: \([.packages[] | .rust_version // empty] | max_by(split(".") | map(tonumber)))), \([.packages[] | select(.rust_version == null)] | length) declare none"
' <<<"$metadata"

echo "== README and licenses in every member"
for dir in . entity migration cli; do
  for file in README.md LICENSE-MIT LICENSE-APACHE; do
    if [ ! -f "$dir/$file" ]; then
      echo "error: $dir/$file is missing" >&2
      fail=1
    elif [ "$dir" != . ] && [ "$file" != README.md ] && ! cmp -s "$file" "$dir/$file"; then
      echo "error: $dir/$file differs from ./$file (copy the root's)" >&2
      fail=1
    fi
  done
done
[ "$fail" = 0 ] && echo "ok"
[ "$fail" = 0 ] || exit 1

echo "== cargo package --workspace --locked $*"
# Cargo verifies a crate against its sibling members through a temporary local registry, and
# treats what comes from a registry as immutable: it reuses its extraction of
# $CARGO_HOME/registry/src/-<hash>/<crate>-<version> and, in the target directory, the members it
# compiled from there, by name and version. A second run would then build the root crate against
# the members of the first run (same version, older code). So the verification gets a target
# directory of its own, and our crates' extractions and artifacts are removed before each run;
# the dependencies stay built there.
target_dir=${CARGO_TARGET_DIR:-target}/check-package
for crate in "${MEMBERS[@]}"; do
  rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$crate"-[0-9]*
done
rm -rf "$target_dir"/package "$target_dir"/debug/{.fingerprint,build,deps,incremental}/*pavex?session?sea?orm*
CARGO_TARGET_DIR=$target_dir cargo package --workspace --locked --allow-dirty "$@"
echo "(the .crate files are in $target_dir/package/)"

echo "== packaged files"
for crate in "${MEMBERS[@]}"; do
  echo "-- $crate"
  cargo package --list --locked --allow-dirty -p "$crate" | sed 's/^/   /'
done
