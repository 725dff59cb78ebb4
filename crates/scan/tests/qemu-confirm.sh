#!/usr/bin/env bash
# Dynamic confirmation of a crash-grade window (not part of CI: slow and statistical).
# Builds fixtures/gcloop (bigframe's main.bigFrame, called in a loop while another
# goroutine runs runtime.GC() in a loop) for linux/arm64 with go1.24.3 and go1.27.3,
# checks that `gorace scan` calls go1.24.3's main.bigFrame window crash-grade and
# go1.27.3's clean, then runs each RUNS times for SECONDS under `qemu-aarch64
# -singlestep` (every instruction its own translation block, so SIGURG can land between
# any two instructions) and counts crashes and their messages.
#   crates/scan/tests/qemu-confirm.sh [RUNS [SECONDS]]      (default 5 runs of 60 s)
# Exit 0 when go1.24.3 crashed at least once and go1.27.3 never did.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
runs=${1:-5}
secs=${2:-60}
have_cmd qemu-aarch64 qemu-user || { echo "needs qemu-aarch64 (apt-get install qemu-user)"; exit 2; }
(cd "$scan_root" && cargo build --release --quiet -p gorace) || exit 1
scan="$scan_root/target/release/gorace scan"
logs="$out/qemu-confirm"
mkdir -p "$logs"
declare -A crashes
for v in 1.24.3 1.27.3; do
  bin=$(build_fixture gcloop $v arm64) || exit 1
  echo "== go$v: $($scan "$bin" | head -1 | sed 's/^[^:]*: //')"
  $scan --json "$bin" >"$logs/$v.json"
  python3 -c "
import json,sys
r=json.load(open(sys.argv[1]))
for w in r['windows']:
    if w['function']=='main.bigFrame':
        print('   scan:', w['verdict'], 'window in main.bigFrame at', w['start'], '(' + w['instructions'][-1]['text'] + ')')" "$logs/$v.json"
  crashes[$v]=0
  for i in $(seq 1 "$runs"); do
    t0=$SECONDS
    # (the outer 2>/dev/null drops the shell's own "Aborted" notice)
    { (GOTRACEBACK=crash timeout --signal=KILL $((secs + 120)) qemu-aarch64 -singlestep "$bin" "$secs") >"$logs/$v-$i.log" 2>&1; } 2>/dev/null
    s=$?
    msg=$(grep -m1 -E '^fatal error|^panic|unexpected return pc|^SIGSEGV|^unexpected fault' "$logs/$v-$i.log")
    if [ $s != 0 ] || [ -n "$msg" ]; then
      crashes[$v]=$((crashes[$v] + 1))
      echo "   run $i: CRASH after $((SECONDS - t0)) s (exit $s): ${msg:-?}"
      # Where the goroutine whose stack could not be unwound was stopped: the frame
      # under runtime.asyncPreempt in the dump, compared with the scanned windows.
      python3 -c "
import json, re, sys
log = open(sys.argv[1], errors='replace').read().splitlines()
starts = {int(w['start'], 16) for w in json.load(open(sys.argv[2]))['windows'] if w['verdict'] == 'crash'}
for k, l in enumerate(log):
    if l.startswith('runtime.asyncPreempt(') and k + 3 < len(log):
        fn, m = log[k + 2].split('(')[0], re.search(r'pc=(0x[0-9a-f]+)', log[k + 3])
        if m:
            pc = int(m.group(1), 16)
            print(f'      preempted in {fn} at {pc:#x}:', 'the start of a scanned crash-grade window' if pc in starts else 'not a scanned window start')
" "$logs/$v-$i.log" "$logs/$v.json"
    else
      echo "   run $i: $(tail -1 "$logs/$v-$i.log") in $((SECONDS - t0)) s"
    fi
  done
  echo "   go$v: ${crashes[$v]} crash(es) in $runs run(s) of ${secs} s (logs: $logs/$v-*.log)"
done
[ "${crashes[1.24.3]}" -gt 0 ] && [ "${crashes[1.27.3]}" = 0 ]
