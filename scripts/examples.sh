#!/usr/bin/env bash
# The main job: builds every program under examples/ with `gorace build`, runs it, shows
# the race reports and checks each verdict against the `// verdict:` line of its source
# (`race` or `race N` = N reports and exit status 66, `norace` = no report, exit 0).
#   scripts/examples.sh [--quiet]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
ensure_go
build_gorace
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$GORACE_ROOT/examples"
"$GORACE_BIN" build -o "$out/" ./...
fail=0
rows=()
for dir in */; do
  name=${dir%/}
  verdict=$(sed -n '1s#^// verdict: ##p' "$name/main.go")
  want_race=0 want_n=0
  case "$verdict" in
    norace) ;;
    race) want_race=1 ;;
    race\ *) want_race=1 want_n=${verdict#race } ;;
    *) echo "examples/$name/main.go: no '// verdict:' line" >&2; exit 2 ;;
  esac
  set +e
  GORACE=atexit_sleep_ms=0 "$out/$name" >"$out/$name.log" 2>&1
  status=$?
  set -e
  n=$(grep -c '^WARNING: DATA RACE' "$out/$name.log" || true)
  ok=1
  if [ $want_race = 1 ]; then
    { [ "$status" = 66 ] && [ "$n" -ge 1 ] && { [ "$want_n" = 0 ] || [ "$n" = "$want_n" ]; }; } || ok=0
  else
    { [ "$status" = 0 ] && [ "$n" = 0 ]; } || ok=0
  fi
  if [ $quiet = 0 ] && [ "$n" -gt 0 ]; then
    echo "### examples/$name (expected: $verdict)"
    cat "$out/$name.log"
    echo
  fi
  [ $ok = 1 ] || fail=1
  rows+=("$(printf '%-34s %-8s %-8s %-6s %s' "$name" "$verdict" "$n" "$status" "$([ $ok = 1 ] && echo ok || echo MISMATCH)")")
done
printf '%-34s %-8s %-8s %-6s %s\n' example expected reports exit result
printf '%s\n' "${rows[@]}"
if [ $fail = 1 ]; then
  echo "examples: some verdicts did not match" >&2
  exit 1
fi
echo "examples: all ${#rows[@]} verdicts as expected"
