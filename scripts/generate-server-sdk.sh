#!/usr/bin/env bash
# Regenerates the example Pavex app's server SDK (examples/pavex_app/server_sdk) with pavexc
# 0.2.10, from the blueprint that `app`'s `bp` binary writes.
#
#   ./scripts/generate-server-sdk.sh           regenerate server_sdk/ (then commit it)
#   ./scripts/generate-server-sdk.sh --check   fail if server_sdk/ is stale (changes nothing)
#
# pavexc: PAVEXC (a command) if set; else ../shared/tools/pavexc/pavexc.sh next to this
# checkout (pavexc with the stable toolchain, installed by its setup.sh); else `pavexc` on the
# PATH. CI does not need any of this: it builds the committed server_sdk/.
#
# Why a copy: pavexc 0.2.10 asks cargo for each path dependency by a package ID spec built from
# the dependency's path relative to the workspace root. The example sits inside the library's
# checkout, so the library is at `../..`, the spec becomes `file:///<checkout>/#...` (trailing
# slash) and cargo matches no package ("package ID specification ... did not match any
# packages", then a pavexc panic). So this script generates in a scratch directory where the
# library is a sibling of the example (`../pavex_session_sea_orm`), and maps that one path back
# to `../../..` in server_sdk/Cargo.toml. The generated code itself is not touched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
APP="$ROOT/examples/pavex_app"

check=()
case "${1:-}" in
  "") ;;
  --check) check=(--check) ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if [ -n "${PAVEXC:-}" ]; then
  read -r -a pavexc <<<"$PAVEXC"
elif [ -x "$ROOT/../shared/tools/pavexc/pavexc.sh" ]; then
  pavexc=("$ROOT/../shared/tools/pavexc/pavexc.sh")
elif command -v pavexc >/dev/null; then
  pavexc=(pavexc)
else
  echo "error: pavexc not found: set PAVEXC, or install pavexc 0.2.10" \
       "(cargo install pavexc_cli --version 0.2.10 --locked)" >&2
  exit 2
fi

# The library's path as the committed manifests write it, and in the scratch layout.
COMMITTED_LIB='"../../.."'   # from examples/pavex_app/server_sdk
SCRATCH_LIB='"../../pavex_session_sea_orm"'

# A fixed place (git-ignored), so that the paths in pavexc's cached documentation stay valid
# from one run to the next (its error messages quote source files), with a target directory of
# its own: pavexc builds with RUSTC_BOOTSTRAP=1, which would make cargo rebuild the example's
# dependencies for the next test run if they shared one.
GENERATE="$APP/target/generate-server-sdk"
SCRATCH="$GENERATE/src"
export CARGO_TARGET_DIR="$GENERATE/target"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH/pavex_session_sea_orm" "$SCRATCH/pavex_app"
# The library as it is in the work tree (uncommitted changes included): the files git tracks or
# would track, so no build outputs (target/ of any workspace) or local databases.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard -- ':(exclude)examples/pavex_app' \
    | while IFS= read -r -d '' file; do
        if [ -e "$ROOT/$file" ]; then printf '%s\0' "$file"; fi # skip deleted files
      done > "$SCRATCH/files"
  tar -C "$ROOT" --null -T "$SCRATCH/files" -cf - | tar -C "$SCRATCH/pavex_session_sea_orm" -xf -
else
  tar -C "$ROOT" --exclude=.git --exclude=target --exclude=./examples/pavex_app \
      --exclude='*.sqlite*' -cf - . | tar -C "$SCRATCH/pavex_session_sea_orm" -xf -
fi
tar -C "$APP" --exclude=./target --exclude='*.sqlite*' -cf - . | tar -C "$SCRATCH/pavex_app" -xf -
rm -f "$SCRATCH/files"

retarget() { # file, from, to: replace one quoted path, and insist that it was there
  grep -qF "$2" "$1" || { echo "error: $1 does not mention $2" >&2; exit 1; }
  sed -i "s|$2|$3|g" "$1"
}
retarget "$SCRATCH/pavex_app/Cargo.toml" 'path = "../.."' 'path = "../pavex_session_sea_orm"'
# (A server_sdk/Cargo.toml that was never generated has no dependencies yet.)
if grep -q '^\[dependencies' "$SCRATCH/pavex_app/server_sdk/Cargo.toml"; then
  retarget "$SCRATCH/pavex_app/server_sdk/Cargo.toml" "$COMMITTED_LIB" "$SCRATCH_LIB"
fi

cd "$SCRATCH/pavex_app"
# 1. The blueprint, as the app defines it.
cargo run --quiet --locked -p app --bin bp -- "$SCRATCH/blueprint.ron"
# 2. The server SDK generated from it (pavexc also checks every component and their wiring).
"${pavexc[@]}" generate --blueprint "$SCRATCH/blueprint.ron" --output server_sdk "${check[@]}"

if [ ${#check[@]} -ne 0 ]; then
  echo "server_sdk/ is up to date with app's blueprint"
  exit 0
fi
retarget server_sdk/Cargo.toml "$SCRATCH_LIB" "$COMMITTED_LIB"
cp server_sdk/Cargo.toml "$APP/server_sdk/Cargo.toml"
cp server_sdk/src/lib.rs "$APP/server_sdk/src/lib.rs"
echo "server_sdk/ regenerated from app's blueprint"
