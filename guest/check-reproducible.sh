#!/usr/bin/env bash
# Build the guest image twice from scratch and compare the results.
#
#   guest/check-reproducible.sh BUILD_DIR [--dev]
#
# Each build gets a fresh cache folder (so mmdebstrap, erofs, verity and the initramfs all run
# again); only the downloaded .debs are shared. The two builds run in parallel. Exits 0 when both sha256sum.txt are identical,
# 1 with the differing lines otherwise. Takes a few minutes (two mmdebstrap runs).
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 BUILD_DIR [--dev]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "$1" && pwd)
shift
cache=${DSTACK_CACHE_DIR:-/var/cache/dstack}
export DSTACK_GUEST_DEBS=${DSTACK_GUEST_DEBS:-$cache/guest/debs}
mkdir -p "$DSTACK_GUEST_DEBS"
work=$(mktemp -d "${TMPDIR:-/tmp}/dstack-repro.XXXXXX")
trap 'rm -rf "$work"' EXIT

# the two builds run side by side (separate caches, separate output folders)
pids=()
for n in 1 2; do
  (
    t0=$(date +%s)
    DSTACK_CACHE_DIR="$work/cache$n" "$here/build-image.sh" "$build" "$work/out$n" "$@" \
      >"$work/stdout$n" 2>"$work/stderr$n"
    echo "check-reproducible: build $n took $(($(date +%s) - t0)) s" >>"$work/stderr$n"
  ) &
  pids+=($!)
done
fail=0
for n in 1 2; do
  wait "${pids[n - 1]}" || fail=1
  sed "s/^/[build $n] /" "$work/stderr$n" | grep -v '^\[build [12]\] I: ' >&2 || true
done
[ "$fail" = 0 ] || { echo "check-reproducible: a build failed" >&2; exit 1; }
dirs=("$(tail -n 1 "$work/stdout1")" "$(tail -n 1 "$work/stdout2")")
if cmp -s "${dirs[0]}/sha256sum.txt" "${dirs[1]}/sha256sum.txt"; then
  echo "check-reproducible: identical:" >&2
  cat "${dirs[0]}/sha256sum.txt"
  exit 0
fi
echo "check-reproducible: the two builds differ:" >&2
diff "${dirs[0]}/sha256sum.txt" "${dirs[1]}/sha256sum.txt" >&2 || true
exit 1
