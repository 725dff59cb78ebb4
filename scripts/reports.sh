#!/usr/bin/env bash
# Report forms end to end: golden text/JSON/SARIF, SARIF schema validation, per-test
# attribution under `gorace test -json`, summary, the HTML page in headless Chromium,
# bad input. Installs what it needs when missing (Python jsonschema from PyPI into a
# venv, chromium from Debian).
#   scripts/reports.sh [--update]     (--update rewrites crates/gorace/tests/golden/)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
ensure_go
[ -n "${GORACE_BIN:-}" ] || build_gorace
py=python3
if ! $py -c 'import jsonschema' 2>/dev/null; then
  venv="$HOME/.cache/gorace-tools/py-jsonschema"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jsonschema' 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "jsonschema==4.26.0" || exit 1
  fi
  py="$venv/bin/python"
fi
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 ||
    echo "reports.sh: installing chromium failed" >&2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$GORACE_ROOT/crates/gorace/tests/reports_check.py" "$GORACE_BIN" "$tmp" "$@"
