#!/usr/bin/env bash
# The full test suite (what .ci/run runs). Every check prints PASS/FAIL and its time;
# the script exits non-zero if any failed.
#   scripts/test.sh
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$GORACE_ROOT"
ensure_go
logs=$(mktemp -d)
results=()
failed=0

check() { # check NAME COMMAND...
  local name=$1
  shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@" >"$logs/$name.log" 2>&1; then
    results+=("PASS  $(printf '%4ss' $((SECONDS - t0)))  $name")
    echo "--- PASS $name ($((SECONDS - t0))s)"
  else
    results+=("FAIL  $(printf '%4ss' $((SECONDS - t0)))  $name")
    echo "--- FAIL $name ($((SECONDS - t0))s); last lines of its log:"
    tail -40 "$logs/$name.log"
    failed=1
  fi
}

check fmt cargo fmt --all --check
check clippy cargo clippy --workspace --all-targets --quiet -- -D warnings
check cargo-test cargo test --workspace --quiet
build_gorace
check examples scripts/examples.sh --quiet

# Go's own race suite, run against gorace's runtime the way a CI user would.
race_suite() {
  eval "$("$GORACE_BIN" env)" || return 1
  go test -race -count=1 -v runtime/race >"$logs/race-suite.out" 2>&1
  local status=$?
  grep -E '^(--- |ok|FAIL|Passed )' "$logs/race-suite.out"
  [ $status = 0 ] && grep -Eq '^Passed ([0-9]+) of \1 tests' "$logs/race-suite.out"
}
check go-race-suite race_suite

# Race-free std packages: any report is a false positive.
std_no_races() {
  GORACE=atexit_sleep_ms=0 "$GORACE_BIN" test -count=1 -short sync sync/atomic context strconv \
    compress/flate encoding/json regexp time >"$logs/std.out" 2>&1
  local status=$?
  grep -E '^(ok|FAIL|---)' "$logs/std.out"
  local races
  races=$(grep -c 'WARNING: DATA RACE' "$logs/std.out")
  echo "race reports: $races"
  [ $status = 0 ] && [ "$races" = 0 ]
}
check std-no-false-positives std_no_races

# The binary really carries gorace's runtime, not ThreadSanitizer.
runtime_is_ours() {
  local bin="$logs/two_races"
  (cd examples && "$GORACE_BIN" build -o "$bin" ./two_races) || return 1
  local syms
  syms=$(go tool nm "$bin")
  echo "$syms" | grep -E ' T __tsan_(read|write|go_start|init)$' || return 1
  if echo "$syms" | grep -q '__tsan::\|_ZN6__tsan'; then
    echo "ThreadSanitizer symbols found"
    return 1
  fi
  echo "$syms" | grep -c 'gorace_runtime' | sed 's/^/gorace_runtime symbols: /'
}
check runtime-is-gorace runtime_is_ours

check bad-input scripts/bad-input.sh

# Report forms: golden text/JSON/SARIF, SARIF schema, per-test attribution under
# `gorace test -json`, summary, HTML in headless Chromium, bad input (~30 s).
check reports scripts/reports.sh

for extra in crates/scan/tests/fixtures.sh fuzz/run.sh; do
  if [ -x "$extra" ]; then
    check "$(basename "$(dirname "$extra")")-$(basename "$extra" .sh)" "$extra"
  fi
done

# Stress and fault suite, bounded (stress/run.sh --full for the issue's sizes).
check stress stress/run.sh --quick

echo
echo "Summary:"
printf '  %s\n' "${results[@]}"
rm -rf "$logs"
exit $failed
