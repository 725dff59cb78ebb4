#!/usr/bin/env bash
# Builds the fuzz targets on stable Rust (libFuzzer through libfuzzer-sys; coverage
# instrumentation with rustc's sancov pass instead of cargo-fuzz's nightly-only flags)
# and runs each for FUZZ_SECONDS (default 45) from the seeds in corpus/TARGET. Fails
# on any crash, panic, timeout or out-of-memory; the reproducer is kept in
# fuzz/artifacts/. Part of scripts/test.sh.
#   fuzz/run.sh [TARGET...]      FUZZ_SECONDS=600 fuzz/run.sh pclntab
# FUZZ_KEEP=1 merges what a run found into corpus/TARGET (minimised with -merge=1),
# so a long run's coverage is kept in the repository.
set -uo pipefail
cd "$(dirname "$0")"
targets=("$@")
[ ${#targets[@]} = 0 ] && targets=(pclntab elf_scan gorace_flags race_json)
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps the instrumentation out of build scripts and proc macros.
cargo build --release --quiet -j "${CARGO_BUILD_JOBS:-1}" --target "$triple" --bins || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p artifacts
fail=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  "target/$triple/release/$t" -max_total_time="${FUZZ_SECONDS:-45}" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="artifacts/$t-" \
    "$work/$t" "corpus/$t" >"$log" 2>&1
  s=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $s = 0 ] && [ "${FUZZ_KEEP:-0}" = 1 ]; then
    before=$(ls "corpus/$t" | wc -l)
    "target/$triple/release/$t" -merge=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      "corpus/$t" "$work/$t" >>"$log" 2>&1 || s=$?
    echo "      corpus/$t: $before -> $(ls "corpus/$t" | wc -l) inputs"
  fi
  if [ $s = 0 ]; then
    echo "PASS  fuzz $t: ${runs:-?} execs, $cov, 0 crashes"
  else
    echo "FAIL  fuzz $t (exit $s): ${runs:-?} execs; last lines:"
    grep -v '^#' "$log" | tail -25
    fail=1
  fi
done
exit $fail
