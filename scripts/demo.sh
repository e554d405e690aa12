#!/usr/bin/env bash
# make demo: the guest image (from its cache when nothing changed) and the demo app's container
# image, then scripts/demo/demo.py: kms, tproxy, knot, a registry and teepod in a network
# namespace of their own, the app of scripts/demo/compose.yaml deployed on the simulated TDX and
# reached over TLS. DEMO_CHECK=1 stops after the checks (CI); otherwise Ctrl-C stops it.
# Binaries: $DSTACK_BUILD (default build/). DEMO_WORK=DIR keeps the work directory there.
set -euo pipefail
cd "$(dirname "$0")/.."
# when the demo's clock starts: `make demo` sets both, before installing and building
export DEMO_T0=${DEMO_T0:-$(date +%s.%N)} DEMO_SINCE=${DEMO_SINCE:-scripts/demo.sh}
build=${DSTACK_BUILD:-$PWD/build}
[ -x "$build/src/teepod/teepod" ] || { echo "demo: $build/src/teepod/teepod not built (run make)" >&2; exit 1; }
echo "== the guest image and the app's container image (cached by their inputs)"
apps_out=$(mktemp)
apps_pid=
trap '[ -z "$apps_pid" ] || kill -- -"$apps_pid" 2>/dev/null; rm -f "$apps_out"' EXIT
# both at once (2 cores); its own process group, so a failure here stops all of it
setsid guest/apps/build-app-images.sh images/apps >"$apps_out" &
apps_pid=$!
image=$(guest/build-image.sh "$build" images | tail -n 1)
rc=0
wait "$apps_pid" || rc=$?
apps_pid=
[ "$rc" -eq 0 ] || { echo "demo: the app's container image failed" >&2; exit 1; }
apps=$(tail -n 1 "$apps_out")
rm -f "$apps_out"
echo "   $image"
trap - EXIT
exec /usr/bin/python3 scripts/demo/demo.py --build "$build" --image "$image" --apps "$apps" \
  ${DEMO_WORK:+--work "$DEMO_WORK"}
