#!/usr/bin/env bash
# Stress and fault suite: goroutine churn, long runs, simultaneity, report storms, heap,
# bad input. One `ok`/`FAIL` line per check with what it measured; exit status 1 if any
# check failed.
#   stress/run.sh [--quick|--full] [ITEM...]     ITEM: churn longrun simul suite storm heap badinput
# --quick (default) is the bounded version CI runs (~1.5 minutes on 2 cores); --full is
# the issue's sizes (1M goroutines, 2^25+ releases, 2000 simultaneous runs, Go's race
# suite at GOMAXPROCS=1,2,8, a 1 GiB live heap (~5 GiB RSS)); about 15-20 minutes.
# STRESS_BREAK=sync|leak|interleave and STRESS_RELEASES=N are passed to the programs to simulate a broken property (see
# README, "how we know the checks bite"); GORACE_BIN picks the gorace binary.
set -uo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
mode=quick
items=()
for a in "$@"; do
  case $a in
    --quick) mode=quick ;;
    --full) mode=full ;;
    churn | longrun | simul | suite | storm | heap | badinput) items+=("$a") ;;
    *) echo "usage: stress/run.sh [--quick|--full] [churn|longrun|simul|suite|storm|heap|badinput]..." >&2; exit 2 ;;
  esac
done
if [ ${#items[@]} = 0 ]; then
  items=(churn longrun simul storm heap badinput)
  [ $mode = full ] && items+=(suite)
fi
ensure_go
[ -n "${GORACE_BIN:-}" ] || build_gorace
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
TIMEOUT=${STRESS_TIMEOUT:-600}

# result OK? NAME FIGURE: prints one line, records a failure.
result() {
  if [ "$1" = 1 ]; then printf 'ok    %-28s %s\n' "$2" "$3"; else
    printf 'FAIL  %-28s %s\n' "$2" "$3"
    fail=1
  fi
}
# check NAME FIGURE CONDITION: CONDITION is evaluated by the shell.
check() { if eval "$3"; then result 1 "$1" "$2"; else result 0 "$1" "$2"; fi; }
# field NAME FILE: the value of `NAME=value` in FILE's last line mentioning it.
field() { grep -o "\b$1=[^ ]*" "$2" | tail -1 | cut -d= -f2; }
races() { grep -c '^WARNING: DATA RACE' "$1"; }
# fcmp 'EXPR': a floating-point comparison, e.g. fcmp '1.5 < 2'.
fcmp() { awk "BEGIN { exit !($1) }"; }

echo "stress suite ($mode), gorace: $GORACE_BIN"
(cd "$GORACE_ROOT/stress" && "$GORACE_BIN" build -o "$tmp/" ./churn ./longrun ./simul ./storm ./heap) || exit 1

# Runs a program under a timeout; its status goes to $st. run OUT PROGRAM ARGS...
run() {
  local out=$1
  shift
  local t0=$SECONDS
  timeout "$TIMEOUT" "$@" >"$out" 2>&1
  st=$?
  secs=$((SECONDS - t0))
}

item_churn() {
  local n alive
  if [ $mode = full ]; then n=1000000 alive=10000; else n=1000000 alive=1000; fi
  GORACE="atexit_sleep_ms=0 suppress_equal_stacks=0" run "$tmp/churn.out" "$tmp/churn" -n $n -alive $alive -k 1000
  grep '^churn:' "$tmp/churn.out"
  local planted got q e
  planted=$(field planted "$tmp/churn.out")
  got=$(races "$tmp/churn.out")
  check churn-races "status $st in ${secs}s, $got of ${planted:-?} planted races reported ($n goroutines, <= $alive alive)" \
    '[ "$st" = 66 ] && [ -n "$planted" ] && [ "$got" = "$planted" ] && grep -q "^Found $planted data race(s)" "$tmp/churn.out"'
  # The race runtime's part of RSS (RSS minus Go's own memory) after all n goroutines
  # vs after n/2, as bytes per goroutine created in between. It must not grow with the
  # number of goroutines ever created: finished goroutines' report data is swept (see
  # README, "how it works"); 16 B per goroutine allows for the noise of this measure
  # (a few MiB between runs). Keeping what a report needs of every goroutine costs
  # ~30 B, and a dead goroutine's state ~1.5 KiB.
  local oq oe per
  q=$(field rss_half_mib "$tmp/churn.out")
  e=$(field rss_end_mib "$tmp/churn.out")
  oq=$(field other_half_mib "$tmp/churn.out")
  oe=$(field other_end_mib "$tmp/churn.out")
  per=$([ -n "$oe" ] && awk "BEGIN{printf \"%.1f\", ($oe - $oq) * 1048576 / ($n * 0.5)}")
  local fig="RSS ${q:-?} -> ${e:-?} MiB, runtime's part ${oq:-?} -> ${oe:-?} MiB from $((n / 2)) to $n goroutines: ${per:-?} B per goroutine (bound 16)"
  check churn-rss "$fig" '[ -n "$per" ] && fcmp "$per <= 16"'
}

item_longrun() {
  local rel=${STRESS_RELEASES:-$(((1 << 25) + 1000))}
  GORACE="atexit_sleep_ms=0 gorace_stats=1" run "$tmp/longrun.out" "$tmp/longrun" -releases $rel -goroutines 70000
  grep -E '^(longrun|gorace stats)' "$tmp/longrun.out"
  local got both gs
  got=$(races "$tmp/longrun.out")
  # Each report must carry both stacks: W's write (writeBoth) and the read.
  both=$(grep -c 'main.writeBoth' "$tmp/longrun.out")
  gs=$(grep -o 'goroutines=[0-9]*' "$tmp/longrun.out" | tail -1 | cut -d= -f2)
  check longrun-races "status $st in ${secs}s, $got of 2 races reported ($both with the early write's stack) after $rel releases on one goroutine and ${gs:-?} goroutines in all" \
    '[ "$st" = 66 ] && [ "$got" = 2 ] && [ "$both" = 2 ] && grep -q "main.readX" "$tmp/longrun.out" && grep -q "main.readY" "$tmp/longrun.out"'
  # The move to a fresh index shows in the stats: more clock indexes in use than live
  # goroutines (with 1000 releases instead: as many as live).
  local idx live
  idx=$(field clock_indexes "$tmp/longrun.out")
  live=$(field live "$tmp/longrun.out")
  check longrun-index-moved "clock_indexes=${idx:-?} live=${live:-?} at exit (a move leaves its old index retired)" \
    '[ -n "$idx" ] && [ -n "$live" ] && [ "$idx" -gt "$live" ]'
}

item_simul() {
  local runs=200 i bad=0 reps p
  [ $mode = full ] && runs=2000
  p=$(nproc)
  for i in $(seq "$runs"); do
    GORACE="atexit_sleep_ms=0" GOMAXPROCS=$p timeout 60 "$tmp/simul" >"$tmp/simul.out" 2>&1
    st=$?
    reps=$(races "$tmp/simul.out")
    if [ "$st" != 66 ] || [ "$reps" -lt 1 ]; then
      bad=$((bad + 1))
      [ $bad = 1 ] && cp "$tmp/simul.out" "$tmp/simul.first-bad"
    fi
  done
  check simul-every-run "$((runs - bad)) of $runs runs with $p goroutines spinning on the same words reported a race" '[ $bad = 0 ]'
  [ $bad = 0 ] || head -20 "$tmp/simul.first-bad"
}

# Go's race suite at GOMAXPROCS=1, 2 and 8 (~1 min each): --full, or asked for by name.
item_suite() {
  local procs
  for procs in 1 2 8; do
    (
      eval "$("$GORACE_BIN" env)" || exit 1
      GOMAXPROCS=$procs timeout 1200 go test -race -count=1 -v runtime/race
    ) >"$tmp/suite.out" 2>&1
    st=$?
    check "race-suite-gomaxprocs-$procs" "status $st, $(grep -Eo '^Passed [0-9]+ of [0-9]+ tests' "$tmp/suite.out" || echo 'no Passed line')" \
      '[ $st = 0 ] && grep -Eq "^Passed ([0-9]+) of \1 tests" "$tmp/suite.out"'
  done
}

# Every report block between ====== lines is whole: one WARNING line, two access headers,
# stack frames, goroutine lines, nothing foreign.
wellformed() { # wellformed FILE -> prints "blocks bad"
  awk '
    /^==================$/ { if (inb) { blocks++; if (!(w == 1 && acc == 2 && frames >= 2)) bad++ } ; inb = !inb; w = acc = frames = 0; next }
    inb && /^WARNING: DATA RACE$/ { w++; next }
    inb && /^(Previous )?([Ww]rite|[Rr]ead|[Aa]tomic [a-z]+) at 0x[0-9a-f]+ by (goroutine [0-9]+|main goroutine):$/ { acc++; next }
    inb && /^  [^ ].*\)$/ { frames++; next }
    inb && /^      .*:[0-9]+ \+0x[0-9a-f]+$/ { next }
    inb && /^Goroutine [0-9]+ \((running|finished)\) created at:$/ { next }
    inb && /^$/ { next }
    inb { bad++; print "foreign line in a report: " $0 > "/dev/stderr" }
    END { print blocks + 0, bad + 0 }' "$1"
}

item_storm() {
  local got wf
  GORACE="atexit_sleep_ms=0" run "$tmp/storm.out" "$tmp/storm"
  if [ "${STRESS_BREAK:-}" = interleave ]; then
    # Simulates interleaved output: the WARNING line of an early report lands in the
    # middle of a late one.
    awk '!moved && NR > 100 && /^WARNING: DATA RACE$/ { held = $0; moved = 1; next } { print } NR == 80003 { print held }' "$tmp/storm.out" >"$tmp/storm.mixed"
    mv "$tmp/storm.mixed" "$tmp/storm.out"
  fi
  got=$(races "$tmp/storm.out")
  wf=$(wellformed "$tmp/storm.out" 2>>"$tmp/storm.bad")
  check storm-complete "status $st in ${secs}s, $got reports, blocks/malformed: $wf, $(grep -o '^Found [0-9]* data race(s)' "$tmp/storm.out" || echo 'no Found line')" \
    '[ "$st" = 66 ] && [ "$got" = 10000 ] && [ "$wf" = "10000 0" ] && grep -q "^Found 10000 data race(s)" "$tmp/storm.out"'
  GORACE="atexit_sleep_ms=0 halt_on_error=1" run "$tmp/storm-halt.out" "$tmp/storm"
  got=$(races "$tmp/storm-halt.out")
  check storm-halt-on-error "status $st, $got report(s), storm finished: $(grep -c 'storm: variables' "$tmp/storm-halt.out")" \
    '[ "$st" = 66 ] && [ "$got" = 1 ] && ! grep -q "storm: variables" "$tmp/storm-halt.out"'
  GORACE="atexit_sleep_ms=0 log_path=$tmp/storm-log" run "$tmp/storm-logrun.out" "$tmp/storm"
  local f
  f=$(ls "$tmp"/storm-log.* 2>/dev/null | head -1)
  got=$([ -n "$f" ] && races "$f" || echo 0)
  wf=$([ -n "$f" ] && wellformed "$f" 2>>"$tmp/storm.bad" || echo none)
  check storm-log-path "status $st, ${f:+$(basename "$f")}: $got reports, blocks/malformed: $wf, stderr reports: $(races "$tmp/storm-logrun.out")" \
    '[ "$st" = 66 ] && [ "$got" = 10000 ] && [ "$wf" = "10000 0" ] && grep -q "^Found 10000 data race(s)" "$f" && [ "$(races "$tmp/storm-logrun.out")" = 0 ]'
  [ -s "$tmp/storm.bad" ] && head -5 "$tmp/storm.bad"
  return 0
}

item_heap() {
  local live=256
  [ $mode = full ] && live=1024
  # GOGC=50 keeps Go's own headroom modest so the figures are about the runtime.
  GOGC=50 GORACE="atexit_sleep_ms=0" run "$tmp/heap.out" "$tmp/heap" -live $live -cycles 3 -churn 2
  grep '^heap:' "$tmp/heap.out"
  local peaks shrunk p1 p3 hwm ratios worst
  peaks=$(grep 'phase=peak' "$tmp/heap.out" | grep -o 'rss_mib=[0-9-]*' | cut -d= -f2 | tr '\n' ' ')
  shrunk=$(grep 'phase=shrunk' "$tmp/heap.out" | grep -o 'rss_mib=[0-9-]*' | cut -d= -f2 | tr '\n' ' ')
  read -r p1 _ p3 <<<"$peaks"
  hwm=$(field hwm_mib "$tmp/heap.out")
  check heap-runs "status $st in ${secs}s, live ${live} MiB, peak RSS per cycle: ${peaks}MiB, after shrinking: ${shrunk}MiB, high-water ${hwm:-?} MiB" \
    '[ "$st" = 0 ] && [ -n "$p3" ] && [ -n "$hwm" ]'
  [ -n "$p3" ] && [ -n "$hwm" ] || return 0
  # Shadow is 2x the heap touched and Go's heap reaches (1 + GOGC/100) x live, spread
  # over more addresses as it fragments (TSan: 4.2 x live here). Bounds: high-water
  # RSS <= 5.5 x live + 128 MiB; the last cycle's peak <= 1.3 x the first's + 32 MiB.
  check heap-rss-vs-live "high-water RSS / live = $(awk "BEGIN{printf \"%.2f\", $hwm / $live}") (bound 5.5 x live + 128 MiB)" \
    'fcmp "$hwm <= 5.5 * $live + 128"'
  check heap-no-growth "peak RSS cycle 3 / cycle 1 = $(awk "BEGIN{printf \"%.2f\", $p3 / $p1}") (bound 1.3 + 32 MiB)" \
    'fcmp "$p3 <= 1.3 * $p1 + 32"'
  # The race runtime's part of RSS (RSS minus what Go's runtime holds) must shrink when
  # the heap shrinks to live/8: shadow of 4 MiB+ frees is unmapped (shadow of small
  # frees is only zeroed). Per cycle: runtime part after shrinking / at the peak <= 0.9.
  ratios=$(awk '/phase=peak/ { match($0, /other_mib=[0-9-]+/); p = substr($0, RSTART + 10, RLENGTH - 10) }
    /phase=shrunk/ { match($0, /other_mib=[0-9-]+/); printf "%.2f ", substr($0, RSTART + 10, RLENGTH - 10) / (p > 0 ? p : 1) }' "$tmp/heap.out")
  worst=$(echo "$ratios" | tr ' ' '\n' | sort -n | tail -1)
  check heap-shrink-releases "runtime's RSS after shrinking / at peak, per cycle: ${ratios}(bound 0.9)" \
    '[ -n "$worst" ] && fcmp "$worst <= 0.9"'
}

item_badinput() {
  # Malformed GORACE, unknown options, unwritable/writable log_path, unsupported Go,
  # missing go: scripts/bad-input.sh already checks these.
  local out
  if [ $mode = quick ]; then
    echo "  (scripts/bad-input.sh: a check of its own in scripts/test.sh; run here by --full)"
    "$GORACE_ROOT/stress/faults.sh" "$tmp" || fail=1
    return 0
  fi
  out=$("$GORACE_ROOT/scripts/bad-input.sh" 2>&1)
  st=$?
  echo "$out" | sed 's/^/  bad-input.sh: /'
  check bad-input.sh "$(echo "$out" | grep -c '^ok') ok, $(echo "$out" | grep -c '^FAIL') FAIL" '[ $st = 0 ]'
  "$GORACE_ROOT/stress/faults.sh" "$tmp"
  [ $? = 0 ] || fail=1
}

for it in "${items[@]}"; do
  echo "--- $it"
  "item_$it"
done
echo
if [ $fail = 0 ]; then echo "stress ($mode): all checks ok"; else echo "stress ($mode): FAILED"; fi
exit $fail
