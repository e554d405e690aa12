#!/usr/bin/env bash
# Every suite, summed into one closing line "N passed, N failed[, N skipped]".
#   unit        cmocka binaries of build/
#   unit-asan   the same binaries built with ASan+UBSan (build-asan/)
#   it          pytest integration tests in tests/it against build/ binaries
#   sdk         the published npm SDKs against tappd (tests/sdk/run.sh, node's test runner)
#   demo        DEMO_CHECK=1 scripts/demo.sh: the demo deployed and every claim it prints checked
#               (each "ok" line a pass; a demo that fails or never gets ready is a failure)
#   fuzz        each libFuzzer target on its corpus for FUZZ_SECONDS (default 8)
# SUITES="unit it" limits the run. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suites=${SUITES:-"unit unit-asan it sdk demo fuzz"}
passed=0 failed=0 skipped=0
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

count() { # passed failed skipped
  passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
}

build_or_fail() {
  if ! scripts/build.sh "$1"; then
    echo "suite $2: build of $1 failed"; count 0 1 0; return 1
  fi
}

run_unit() { # dir label
  local dir=$1 label=$2 t out p f s rc
  for t in "$dir"/tests/unit/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    out="$logdir/$(basename "$t").$label"
    DSTACK_SOURCE_ROOT=$root timeout 300 "$t" >"$out" 2>&1; rc=$?
    # a binary may run several cmocka groups: sum the summary lines of all of them
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    p=${p:-0}; f=${f:-0}; s=${s:-0}
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer report
    if [ "$f" -ne 0 ]; then
      echo "$label $(basename "$t"): $p passed, $f failed"; grep -E 'FAILED|ERROR|Sanitizer|runtime error|error:' "$out" | head -20
    else
      echo "$label $(basename "$t"): $p passed${s:+, $s skipped}" | sed 's/, 0 skipped//'
    fi
    count "$p" "$f" "$s"
  done
}

# The pinned npm packages of tests/sdk serve the sdk suite and some integration tests (signature
# checks with @noble/curves), those of tests/browser (playwright-core) drive chromium for the web
# console tests: install them once, before any suite needs them.
for d in tests/sdk tests/browser; do
  if [ -f $d/package-lock.json ] && [ ! -d $d/node_modules ]; then
    (cd $d && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) ||
      echo "warning: npm ci in $d failed; tests needing its packages will fail or skip"
  fi
done

for suite in $suites; do
  case "$suite" in
    unit)
      build_or_fail build unit && run_unit build unit ;;
    unit-asan)
      build_or_fail build-asan unit-asan && \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_unit build-asan unit-asan ;;
    it)
      build_or_fail build it || continue
      if ! compgen -G "tests/it/test_*.py" >/dev/null; then continue; fi
      xml="$logdir/it.xml"
      DSTACK_BUILD=$root/build DSTACK_SOURCE_ROOT=$root timeout 2700 \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$xml" tests/it 2>&1 | tail -25
      if [ -f "$xml" ]; then
        read -r p f s < <(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - k, f, k)
PY
)
        echo "it: $p passed, $f failed, $s skipped"
        count "$p" "$f" "$s"
      else
        echo "it: pytest produced no report"; count 0 1 0
      fi ;;
    sdk)
      [ -x tests/sdk/run.sh ] || continue
      build_or_fail build sdk || continue
      DSTACK_BUILD=$root/build timeout 1200 tests/sdk/run.sh >"$logdir/sdk.log" 2>&1
      tail -30 "$logdir/sdk.log" | grep -v '^sdk: '
      line=$(grep -E '^sdk: [0-9]+ passed, [0-9]+ failed' "$logdir/sdk.log" | tail -1)
      if [ -n "$line" ]; then
        echo "$line"
        read -r p f s < <(echo "$line" | sed -E 's/^sdk: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
        count "$p" "$f" "${s:-0}"
      else
        echo "sdk: no summary line"; count 0 1 0
      fi ;;
    demo)
      build_or_fail build demo || continue
      DEMO_CHECK=1 DSTACK_BUILD=$root/build timeout 900 scripts/demo.sh >"$logdir/demo.log" 2>&1
      rc=$?
      p=$(grep -c '^   ok  ' "$logdir/demo.log")
      grep -E '^   ok  |^demo ready|^demo: ' "$logdir/demo.log" | sed 's/^/demo: /'
      if [ $rc -ne 0 ] || ! grep -q '^demo ready in ' "$logdir/demo.log"; then
        echo "demo: FAILED (exit $rc)"; tail -40 "$logdir/demo.log"; count "$p" 1 0
      else
        count "$p" 0 0
      fi ;;
    fuzz)
      build_or_fail build-fuzz fuzz || continue
      while read -r line; do
        echo "$line"
        case "$line" in
          "fuzz "*": ok"*) count 1 0 0 ;;
          "fuzz "*": FAILED"*) count 0 1 0 ;;
        esac
      done < <(FUZZ_SECONDS=${FUZZ_SECONDS:-8} scripts/fuzz.sh build-fuzz 2>&1) ;;
    *) echo "unknown suite $suite"; count 0 1 0 ;;
  esac
done

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
