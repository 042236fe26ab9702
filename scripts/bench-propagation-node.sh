#!/usr/bin/env bash
# Propagation with the Unleash Node SDK (unleash-client, default settings)
# against Gantry's client API. Needs the compat packages installed by the
# test suite (target/test-deps/compat/node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN=bench-admin-token-0123456789
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cargo build --release -p gantry-cli --bin gantry >/dev/null 2>&1
GANTRY_ADMIN_TOKEN=$ADMIN GANTRY_LOG=warn target/release/gantry serve --listen 127.0.0.1:4621 --data-dir "$WORK" >/dev/null &
for _ in $(seq 1 200); do curl -sf -o /dev/null http://127.0.0.1:4621/health && break; sleep 0.05; done
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"key":"propagate","environments":{"production":{"enabled":false}}}' http://127.0.0.1:4621/api/v1/flags >/dev/null
SERVER=$(curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
  -d '{"kind":"server","environment":"production"}' http://127.0.0.1:4621/api/v1/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
cp compat/node/propagation.mjs target/test-deps/compat/propagation.mjs
GANTRY_URL=http://127.0.0.1:4621 SERVER_TOKEN=$SERVER ADMIN_TOKEN=$ADMIN node target/test-deps/compat/propagation.mjs
