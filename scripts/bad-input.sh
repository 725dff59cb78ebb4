#!/usr/bin/env bash
# Bad input gets one clear message and a non-zero status, and nothing is lost:
# malformed GORACE, unknown GORACE options, unwritable and writable log_path, a Go
# version gorace was not built for.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
ensure_go
[ -n "${GORACE_BIN:-}" ] || build_gorace
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # expect DESCRIPTION CONDITION...
  if eval "$2"; then echo "ok    $1"; else echo "FAIL  $1"; fail=1; fi
}
(cd "$GORACE_ROOT/examples" && "$GORACE_BIN" build -o "$tmp/" ./two_races ./chan_close) || exit 1

GORACE=exitcode=abc "$tmp/two_races" >"$tmp/out" 2>&1; s=$?
expect "malformed exitcode stops the run before the program (status $s)" \
  '[ $s = 2 ] && grep -q "exitcode" "$tmp/out" && ! grep -q "DATA RACE" "$tmp/out"'
GORACE="halt_on_error=maybe" "$tmp/chan_close" >"$tmp/out" 2>&1; s=$?
expect "malformed boolean names the option (status $s)" '[ $s = 2 ] && grep -q "halt_on_error" "$tmp/out" && ! grep -q hello "$tmp/out"'
GORACE="atexit_sleep_ms=0 frobnicate=1" "$tmp/chan_close" >"$tmp/out" 2>&1; s=$?
expect "unknown option: one warning naming it, then the program runs" \
  '[ $s = 0 ] && [ "$(grep -c frobnicate "$tmp/out")" = 1 ] && grep -q hello "$tmp/out"'
GORACE="log_path=$tmp/no/such/dir/race" "$tmp/two_races" >"$tmp/out" 2>&1; s=$?
expect "unwritable log_path is refused up front (status $s)" '[ $s = 2 ] && grep -q "log_path" "$tmp/out"'
GORACE="atexit_sleep_ms=0 log_path=$tmp/race" "$tmp/two_races" >"$tmp/out" 2>&1; s=$?
expect "log_path file gets every report (status $s)" \
  '[ $s = 66 ] && [ "$(cat "$tmp"/race.* | grep -c "WARNING: DATA RACE")" = 2 ] && grep -q "Found 2 data race" "$tmp"/race.*'
GORACE="atexit_sleep_ms=0 exitcode=13" "$tmp/two_races" >"$tmp/out" 2>&1; s=$?
expect "exitcode is honoured (status $s)" '[ $s = 13 ]'

mkdir -p "$tmp/oldgo"
printf '#!/bin/sh\ncase "$*" in *env*) printf "%%s\\n" /nonexistent go1.19.13 linux amd64 1 gcc ;; *) echo go version go1.19.13 linux/amd64 ;; esac\n' >"$tmp/oldgo/go"
chmod +x "$tmp/oldgo/go"
PATH="$tmp/oldgo:$PATH" "$GORACE_BIN" test ./... >"$tmp/out" 2>&1; s=$?
expect "unsupported Go version is refused with the supported list (status $s)" \
  '[ $s = 2 ] && grep -q "go1.19.13 is not supported" "$tmp/out" && grep -q "go1.27.x" "$tmp/out"'
PATH="/nonexistent" "$GORACE_BIN" test ./... >"$tmp/out" 2>&1; s=$?
expect "missing go is a clear error (status $s)" '[ $s = 2 ] && grep -q "no .go. command" "$tmp/out"'
exit $fail
