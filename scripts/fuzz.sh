#!/usr/bin/env bash
# Runs each libFuzzer target in DIR/tests/fuzz on a scratch copy of its seed corpus for
# FUZZ_SECONDS. Prints "fuzz <name>: ok|FAILED" per target; exits non-zero on any crash.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-fuzz}
secs=${FUZZ_SECONDS:-10}
fail=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "$dir"/tests/fuzz/fuzz_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  name=$(basename "$t"); name=${name#fuzz_}
  mkdir -p "$work/$name"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/$name/"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
     timeout $((secs + 60)) "$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$work/" "$work/$name" >"$work/$name.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$name.log" | awk '{print $2}') runs)"
  else
    echo "fuzz $name: FAILED"; tail -30 "$work/$name.log"; fail=1
    mkdir -p fuzz-artifacts && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* fuzz-artifacts/ 2>/dev/null
  fi
done
exit $fail
