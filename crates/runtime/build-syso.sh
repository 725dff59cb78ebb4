#!/usr/bin/env bash
# Builds gorace's race runtime as one relocatable ELF object that Go's internal linker
# accepts in place of ThreadSanitizer's race_linux.syso.
#
#   build-syso.sh OUT.syso [--floor] [--target-dir DIR]
#
# Steps: cargo builds the no_std staticlib (profile `syso`: fat LTO, one codegen unit,
# panic=abort); `ld -r --gc-sections` keeps only what the __tsan_* entry points reach;
# objcopy makes every other symbol local so nothing can clash with Go, C or Rust code
# linked into the same program; finally the object is checked for what Go's ELF loader
# rejects (TLS, constructors, unsupported relocations).
set -euo pipefail
out=${1:?usage: build-syso.sh OUT.syso [--floor] [--target-dir DIR]}
shift
features=()
target_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --floor) features=(--features floor) ;;
    --target-dir) target_dir=$2; shift ;;
    *) echo "build-syso.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target_dir=${target_dir:-$root/target}
# A nested cargo (from build.rs) must not inherit the outer build's flags.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_TARGET_DIR CARGO_MAKEFLAGS 2>/dev/null || true
cargo rustc --quiet --manifest-path "$root/Cargo.toml" -p gorace-runtime --lib --crate-type staticlib \
  --profile syso --target-dir "$target_dir" "${features[@]}"
lib="$target_dir/syso/libgorace_runtime.a"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# readelf, not nm: binutils' nm tries its LLVM plugin on rustc's objects and fails.
readelf -sW "$lib" 2>/dev/null | awk '$5=="GLOBAL" && $7!="UND" && $8 ~ /^__tsan_/ {print $8}' | sort -u >"$tmp/exports"
n=$(wc -l <"$tmp/exports")
if [ "$n" -ne 39 ]; then
  echo "build-syso.sh: expected 39 __tsan_* exports, found $n" >&2
  exit 1
fi
undef=()
while read -r s; do undef+=(-u "$s"); done <"$tmp/exports"
ld -r --gc-sections "${undef[@]}" "$lib" -o "$tmp/merged.o"
objcopy --keep-global-symbols="$tmp/exports" --remove-section=.comment \
  --remove-section=.note.GNU-stack --remove-section='.debug*' --remove-section=.llvmbc --remove-section=.llvmcmd --remove-section=.eh_frame --strip-unneeded "$tmp/merged.o" "$tmp/out.o"
# Go's ELF loader: no TLS, no constructors (silently dropped), only these relocations.
if readelf -S "$tmp/out.o" | grep -Eq '\.(tdata|tbss|init_array|ctors)'; then
  echo "build-syso.sh: object has TLS or constructor sections, which Go cannot link" >&2
  exit 1
fi
bad=$(readelf -rW "$tmp/out.o" | awk '/R_X86_64_/ {print $3}' |
  grep -Ev '^R_X86_64_(PC32|PLT32|GOTPCREL|GOTPCRELX|REX_GOTPCRELX|64|PC64|NONE)$' | sort -u || true)
if [ -n "$bad" ]; then
  echo "build-syso.sh: relocations Go's internal linker rejects: $bad" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$tmp/out.o" "$out"
