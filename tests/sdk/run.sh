#!/usr/bin/env bash
# Runs the published dstack JS SDKs (pinned in package-lock.json) against tappd --dev.
# tappd comes from $DSTACK_BUILD/src/tappd/tappd (default: <repo>/build). Extra arguments go
# to `node --test` (e.g. a single file). Last line: "sdk: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/sdk011 ] || [ ! -d node_modules/sdk058 ]; then
  if ! npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1; then
    cat npm-ci.log; rm -f npm-ci.log
    echo "sdk: 0 passed, 1 failed, 0 skipped"
    exit 1
  fi
  rm -f npm-ci.log
fi
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(*.test.mjs)
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "${files[@]}"
rc=$?
num() { sed -n "s/^# $1 \([0-9]*\)\$/\1/p" "$tap" | tail -1; }
pass=$(num pass); fail=$(num fail); skip=$(num skipped); todo=$(num todo); cancelled=$(num cancelled)
pass=${pass:-0}; fail=$(( ${fail:-0} + ${cancelled:-0} )); skip=$(( ${skip:-0} + ${todo:-0} ))
if [ $rc -ne 0 ] && [ $fail -eq 0 ]; then fail=1; fi
echo "sdk: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
