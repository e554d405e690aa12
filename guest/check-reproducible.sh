#!/usr/bin/env bash
# Build the guest image twice from scratch and compare the results.
#
#   guest/check-reproducible.sh BUILD_DIR [--dev]
#
# Each build gets a fresh cache folder (so mmdebstrap, erofs, verity and the initramfs all run
# again); only the downloaded .debs are shared. Exits 0 when both sha256sum.txt are identical,
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

dirs=()
for n in 1 2; do
  echo "check-reproducible: build $n" >&2
  t0=$(date +%s)
  d=$(DSTACK_CACHE_DIR="$work/cache$n" "$here/build-image.sh" "$build" "$work/out$n" "$@" | tail -n 1)
  echo "check-reproducible: build $n took $(($(date +%s) - t0)) s: $d" >&2
  dirs+=("$d")
done
if cmp -s "${dirs[0]}/sha256sum.txt" "${dirs[1]}/sha256sum.txt"; then
  echo "check-reproducible: identical:" >&2
  cat "${dirs[0]}/sha256sum.txt"
  exit 0
fi
echo "check-reproducible: the two builds differ:" >&2
diff "${dirs[0]}/sha256sum.txt" "${dirs[1]}/sha256sum.txt" >&2 || true
exit 1
