#!/usr/bin/env bash
# Configure (or reconfigure, so new modules are picked up) and build one build directory:
#   build       plain debugoptimized build
#   build-asan  address + undefined sanitizers
#   build-fuzz  clang with libFuzzer targets
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
opts=()
case "$dir" in
  build-asan) opts=(-Db_sanitize=address,undefined -Db_lundef=false) ;;
  build-fuzz) opts=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dtests=false)
              export CC=clang ;;
esac
if [ -f "$dir/build.ninja" ]; then
  meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null
else
  meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >"$dir.log" 2>&1 || { tail -50 "$dir.log" >&2; echo "build: $dir failed (full log: $dir.log)" >&2; exit 1; }
