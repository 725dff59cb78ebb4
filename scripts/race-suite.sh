#!/usr/bin/env bash
# Runs Go's own race suite (`go test -race runtime/race`) N times against gorace's
# runtime and reports how many runs passed. GOMAXPROCS_LIST (e.g. "1 2 8") repeats the
# whole thing per GOMAXPROCS for the outer test binary.
#   scripts/race-suite.sh [N]
set -uo pipefail
source "$(dirname "$0")/lib.sh"
n=${1:-5}
ensure_go
[ -n "${GORACE_BIN:-}" ] || build_gorace
eval "$("$GORACE_BIN" env)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passes=0
for i in $(seq 1 "$n"); do
  t0=$SECONDS
  go test -race -count=1 -v runtime/race >"$log" 2>&1
  status=$?
  summary=$(grep -Eo '^Passed [0-9]+ of [0-9]+ tests.*' "$log" || echo "no summary")
  if [ $status = 0 ] && grep -Eq '^Passed ([0-9]+) of \1 tests' "$log"; then
    passes=$((passes + 1))
    echo "run $i: PASS ($summary, $((SECONDS - t0))s)"
  else
    # Keep the whole output: a rare failure must be diagnosable after the fact.
    kept="${TMPDIR:-/tmp}/gorace-race-suite.$$.run$i.log"
    cp "$log" "$kept"
    echo "run $i: FAIL ($summary, $((SECONDS - t0))s; output kept in $kept)"
    grep -E '^(--- FAIL|.*FAILED)' "$log" | head -20
  fi
done
echo "race suite: $passes of $n runs passed"
[ "$passes" = "$n" ]
