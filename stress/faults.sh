#!/usr/bin/env bash
# Bad input that scripts/bad-input.sh does not cover: more malformed GORACE values, a
# missing C compiler (CC=/nonexistent; PATH without gcc), a read-only GOROOT, an
# unwritable gorace cache. Each must give one clear message and a non-zero status, or,
# where the input is legitimate (a read-only GOROOT), a normal run that still reports.
#   stress/faults.sh [SCRATCH_DIR]
set -uo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
ensure_go
[ -n "${GORACE_BIN:-}" ] || build_gorace
tmp=$(mktemp -d "${1:-${TMPDIR:-/tmp}}/faults.XXXXXX")
cleanup() {
  chmod -R u+w "$tmp" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
known_fail=0
expect() { # expect DESCRIPTION CONDITION
  if eval "$2"; then printf 'ok    %s\n' "$1"; elif [ $known_fail = 1 ]; then
    printf 'KNOWN-FAIL %s\n' "$1"
  else
    printf 'FAIL  %s\n' "$1"
    fail=1
    sed 's/^/      | /' "$tmp/out" | head -8
  fi
  known_fail=0
}
lines() { grep -c . "$tmp/out"; }
ex="$GORACE_ROOT/examples"
(cd "$ex" && "$GORACE_BIN" build -o "$tmp/" ./two_races) || exit 1

# Malformed GORACE values: status 2, one line naming the problem, the program never runs.
# A value marked `known` is a known failure: its line says KNOWN-FAIL and does not fail
# the script (see the README's "Stress and fault suite").
while IFS='|' read -r value word known; do
  GORACE="$value" "$tmp/two_races" >"$tmp/out" 2>&1
  s=$?
  [ -n "$known" ] && known_fail=1
  expect "GORACE='$value': status $s, $(lines) line: $(head -1 "$tmp/out" | cut -c1-90)" \
    '[ $s = 2 ] && [ "$(lines)" = 1 ] && grep -q -- "$word" "$tmp/out" && ! grep -q "DATA RACE" "$tmp/out"'
done <<'EOF'
exitcode=300|exitcode
exitcode=-1|exitcode
exitcode=|exitcode
atexit_sleep_ms=1e3|atexit_sleep_ms
log_path="unterminated|quote
halt_on_error|halt_on_error
=1|expected name=value
log_path=|log_path
json_path=/nonexistent/dir/j|json_path
suppress_equal_stacks=2|suppress_equal_stacks
report_bugs=on|report_bugs
EOF

# No C compiler: CC names a missing program, or PATH has go but no gcc (go then turns
# cgo off by itself, and the message must say why).
(cd "$ex" && CC=/nonexistent "$GORACE_BIN" build -o "$tmp/x" ./two_races) >"$tmp/out" 2>&1
s=$?
expect "CC=/nonexistent: status $s, $(lines) line: $(head -1 "$tmp/out" | cut -c1-90)" \
  '[ $s != 0 ] && [ "$(lines)" = 1 ] && grep -q "/nonexistent" "$tmp/out" && [ ! -e "$tmp/x" ]'
mkdir -p "$tmp/nogcc"
ln -s "$(command -v go)" "$tmp/nogcc/go"
(cd "$ex" && PATH="$tmp/nogcc" "$GORACE_BIN" build -o "$tmp/x" ./two_races) >"$tmp/out" 2>&1
s=$?
expect "PATH without gcc: status $s, $(lines) line: $(head -1 "$tmp/out" | cut -c1-90)" \
  '[ $s != 0 ] && [ "$(lines)" = 1 ] && grep -q "C compiler" "$tmp/out" && [ ! -e "$tmp/x" ]'

# A read-only GOROOT is legitimate (distribution packages): gorace never writes it, so
# the build works and the race is still reported. As root, permission bits do not stop
# writes, so the GOROOT is bind-mounted read-only in a private mount namespace.
goroot=$(go env GOROOT)
cache="$tmp/cache"
ro_run() { # ro_run COMMAND...: runs COMMAND with $goroot read-only
  if [ "$(id -u)" = 0 ]; then
    unshare -m --propagation private sh -c \
      'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && touch "$0/gorace-probe" 2>/dev/null && { echo "GOROOT still writable"; exit 97; }; shift; exec "$@"' \
      "$goroot" -- "$@"
  else
    cp -a "$goroot" "$tmp/goroot" && chmod -R a-w "$tmp/goroot" &&
      PATH="$tmp/goroot/bin:$PATH" "$@"
  fi
}
(cd "$ex" && XDG_CACHE_HOME=$cache ro_run "$GORACE_BIN" run ./two_races) >"$tmp/out" 2>&1
s=$?
expect "read-only GOROOT: status $s, $(grep -c 'WARNING: DATA RACE' "$tmp/out") race reports (fresh gorace cache)" \
  '[ $s = 1 ] && grep -q "exit status 66" "$tmp/out" && [ "$(grep -c "WARNING: DATA RACE" "$tmp/out")" = 2 ]'

# An unwritable cache directory: gorace cannot make its private GOROOT.
touch "$tmp/file"
(cd "$ex" && XDG_CACHE_HOME="$tmp/file/cache" "$GORACE_BIN" build -o "$tmp/x" ./two_races) >"$tmp/out" 2>&1
s=$?
expect "unwritable cache (XDG_CACHE_HOME under a file): status $s, $(lines) line: $(head -1 "$tmp/out" | cut -c1-90)" \
  '[ $s != 0 ] && [ "$(lines)" = 1 ] && grep -q "XDG_CACHE_HOME" "$tmp/out" && [ ! -e "$tmp/x" ]'
exit $fail
