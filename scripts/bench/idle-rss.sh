#!/usr/bin/env bash
# Idle resident memory of `gantry serve` with N flags (default 1,000), in two
# states: flags imported over HTTP into a fresh server, and the same data
# loaded at start-up after a restart. RSS is read from /proc/PID/status
# after the server has been idle for IDLE seconds (default 5).
#   scripts/bench/idle-rss.sh [flags] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}; runs=${2:-5}; idle=${IDLE:-5}
cargo build --release -p gantry-cli >/dev/null 2>&1
bin=target/release/gantry
work=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
python3 scripts/bench/gen_flags.py "$n" >"$work/flags.json"
tok=bench-admin-token-0123456789
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
rss() { awk '/VmRSS/ {printf "%.1f MiB (%.1f MB)", $2/1024, $2*1024/1e6}' "/proc/$1/status"; }
start() {
  GANTRY_ADMIN_TOKEN=$tok "$bin" serve --data-dir "$1" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do sleep 0.05; done
}
for r in $(seq 1 "$runs"); do
  dir="$work/data-$r"
  start "$dir"
  curl -sf -X POST -H "authorization: Bearer $tok" -H 'content-type: application/json' \
    --data-binary @"$work/flags.json" "http://127.0.0.1:$port/api/v1/import/unleash?environment=production" >/dev/null
  sleep "$idle"
  echo "run $r: after HTTP import, idle ${idle}s: $(rss $pid)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  start "$dir"
  sleep "$idle"
  echo "run $r: loaded at start-up, idle ${idle}s: $(rss $pid)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
