#!/usr/bin/env bash
# HTTP benchmark: Gantry vs Unleash Edge (offline mode) under wrk on loopback,
# both serving the same 350-flag set exported from Gantry; plus OFREP
# single-flag evaluation on Gantry and Gantry's idle memory with 1,000 flags.
#
# Needs: wrk (Debian package), and an unleash-edge binary (EDGE_BIN, default
# /tmp/edge/install/bin/unleash-edge; see docs/benchmarks.md for how to build
# it). Results go to stdout as a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
EDGE_BIN=${EDGE_BIN:-/tmp/edge/install/bin/unleash-edge}
ADMIN=bench-admin-token-0123456789
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }
[ -x "$EDGE_BIN" ] || { echo "unleash-edge not found at $EDGE_BIN"; exit 1; }
cargo build --release -p gantry-cli --bin gantry >/dev/null 2>&1
GANTRY=target/release/gantry

wait_http() { for _ in $(seq 1 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "not up: $1"; exit 1; }

start_gantry() { # $1 data dir, $2 port
  GANTRY_ADMIN_TOKEN=$ADMIN GANTRY_LOG=warn "$GANTRY" serve --listen "127.0.0.1:$2" --data-dir "$1" >/dev/null &
  wait_http "http://127.0.0.1:$2/health"
}

# --- Gantry with 350 flags ---
python3 scripts/bench/gen_flags.py 350 > "$WORK/flags.json"
start_gantry "$WORK/g350" 4601
GPID=$!
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  --data-binary @"$WORK/flags.json" "http://127.0.0.1:4601/api/v1/import/unleash?environment=production" >/dev/null
CLIENT=$("$GANTRY" token create --kind client --environment production --data-dir "$WORK/g350")
SERVER=$("$GANTRY" token create --kind server --environment production --data-dir "$WORK/g350")
# Wait until the running server has picked up the CLI-created tokens.
for _ in $(seq 1 100); do curl -sf -o /dev/null -H "Authorization: $CLIENT" http://127.0.0.1:4601/api/frontend && break; sleep 0.05; done
# The same set, exported from Gantry, is Edge's bootstrap file.
curl -sf -H "Authorization: $SERVER" -H 'Unleash-Client-Spec: 5.2.0' http://127.0.0.1:4601/api/client/features > "$WORK/export.json"

# --- Edge, offline, same flags ---
"$EDGE_BIN" --interface 127.0.0.1 --port 4602 offline --bootstrap-file "$WORK/export.json" \
  --client-tokens '*:production.bench-backend' --frontend-tokens '*:production.bench-frontend' --reload-interval 0 >/dev/null 2>&1 &
EPID=$!
wait_http http://127.0.0.1:4602/internal-backstage/health

# Both must answer the same thing for the same user before we time anything.
for u in 1 42 777 31337; do
  q="userId=$u&properties%5Bplan%5D=pro&properties%5Bcountry%5D=NO&properties%5Bseats%5D=12"
  g=$(curl -sf -H "Authorization: $CLIENT" "http://127.0.0.1:4601/api/frontend?$q" | python3 -c 'import json,sys; print(sorted((t["name"],t["variant"]["name"]) for t in json.load(sys.stdin)["toggles"]))')
  e=$(curl -sf -H "Authorization: *:production.bench-frontend" "http://127.0.0.1:4602/api/frontend?$q" | python3 -c 'import json,sys; print(sorted((t["name"],t["variant"]["name"]) for t in json.load(sys.stdin)["toggles"]))')
  [ "$g" = "$e" ] || { echo "Gantry and Edge disagree for user $u"; exit 1; }
done
echo "answers agree (4 users, 350 flags)" >&2

run_wrk() { # $1 url base, $2 token, $3 script
  BENCH_TOKEN=$2 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$3" "$1" 2>&1
}
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {print $2}'; }
p50() { awk '$1=="50%" {print $2}'; }

G=$(run_wrk http://127.0.0.1:4601 "$CLIENT" scripts/bench/frontend.lua)
E=$(run_wrk http://127.0.0.1:4602 "*:production.bench-frontend" scripts/bench/frontend.lua)
O=$(BENCH_FLAG=flag-0003 run_wrk http://127.0.0.1:4601 "$SERVER" scripts/bench/ofrep.lua)
kill $GPID $EPID; wait $GPID $EPID 2>/dev/null || true

# --- Idle memory with 1,000 flags ---
python3 scripts/bench/gen_flags.py 1000 > "$WORK/flags1000.json"
start_gantry "$WORK/g1000" 4603
MPID=$!
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  --data-binary @"$WORK/flags1000.json" "http://127.0.0.1:4603/api/v1/import/unleash?environment=production" >/dev/null
sleep 2
RSS_KB=$(awk '/VmRSS/ {print $2}' /proc/$MPID/status)
kill $MPID; wait $MPID 2>/dev/null || true
# The same 1,000 flags loaded at start-up (no import garbage in the heap).
start_gantry "$WORK/g1000" 4603
MPID=$!
sleep 2
RSS2_KB=$(awk '/VmRSS/ {print $2}' /proc/$MPID/status)
kill $MPID; wait $MPID 2>/dev/null || true

GR=$(echo "$G" | rps); ER=$(echo "$E" | rps)
echo "| Case | Requests/s | p50 | p99 |"
echo "|---|---|---|---|"
echo "| Gantry /api/frontend (350 flags, varying users) | $GR | $(echo "$G" | p50) | $(echo "$G" | p99) |"
echo "| Unleash Edge 20.1.0 /api/frontend (same flags) | $ER | $(echo "$E" | p50) | $(echo "$E" | p99) |"
echo "| Gantry OFREP single flag (2 constraints + 50 % rollout) | $(echo "$O" | rps) | $(echo "$O" | p50) | $(echo "$O" | p99) |"
echo
python3 -c "print(f'Frontend throughput ratio Gantry/Edge: {float(\"$GR\")/float(\"$ER\"):.2f}x')"
echo "Gantry idle RSS with 1,000 flags, right after importing them: $((RSS_KB / 1024)) MiB ($RSS_KB kB)"
echo "Gantry idle RSS with 1,000 flags, after a restart: $((RSS2_KB / 1024)) MiB ($RSS2_KB kB)"
