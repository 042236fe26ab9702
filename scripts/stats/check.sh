#!/usr/bin/env bash
# Proves that the committed fixtures in crates/gantry-stats/tests/fixtures come from
# scripts/stats/fixtures.py and the pinned reference packages (gbstats 0.8.0, scipy,
# statsmodels): builds a venv under target/test-deps/stats-venv, regenerates the fixtures into
# a temporary directory and compares every number with the committed ones.
#
# Usage: scripts/stats/check.sh            check
#        scripts/stats/check.sh --update   regenerate the committed fixtures
#        scripts/stats/check.sh --bench    time gbstats on the criterion benchmark's shape
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-python3}"
VENV=target/test-deps/stats-venv
FIXTURES=crates/gantry-stats/tests/fixtures
REQ=scripts/stats/requirements.txt

if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "scripts/stats/check.sh needs CPython 3.11 (pandas 1.5.3, pinned by gbstats 0.8.0, has no newer wheels); set PYTHON=" >&2
  exit 1
fi

stamp="$VENV/.requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$stamp"; then
  echo "==> creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$stamp"
fi

case "${1:-}" in
  --update)
    "$VENV/bin/python" scripts/stats/fixtures.py "$FIXTURES"
    echo "fixtures regenerated in $FIXTURES"
    exit 0
    ;;
  --bench)
    exec "$VENV/bin/python" scripts/stats/fixtures.py /dev/null --bench-timing
    ;;
esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -W ignore scripts/stats/fixtures.py "$tmp"
"$VENV/bin/python" scripts/stats/compare.py "$FIXTURES" "$tmp"
