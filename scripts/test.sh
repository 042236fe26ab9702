#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test. This is the
# command README.md names and .ci/run calls. It fetches pinned test peers
# (npm packages, and the npm + pip SDKs pinned in compat/) itself into
# target/test-deps, and Debian's chromium plus playwright-core (pinned in
# tests/e2e-dashboard/) for the dashboard browser test, whose screenshots
# land in target/dashboard-screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The release-automation tests query a real Prometheus (Debian's package).
if ! command -v prometheus >/dev/null 2>&1; then
  step "installing prometheus (apt-get)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  step "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

step "browser for the dashboard end-to-end test (Debian chromium)"
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
else
  echo "/usr/bin/chromium present"
fi

step "playwright-core for the dashboard end-to-end test (npm ci, pinned lockfile)"
e2e_dir=target/test-deps/e2e-dashboard
if ! cmp -s tests/e2e-dashboard/package-lock.json "$e2e_dir/.installed-lockfile" || [ ! -d "$e2e_dir/node_modules/playwright-core" ]; then
  mkdir -p "$e2e_dir"
  cp tests/e2e-dashboard/package.json tests/e2e-dashboard/package-lock.json "$e2e_dir/"
  (cd "$e2e_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp tests/e2e-dashboard/package-lock.json "$e2e_dir/.installed-lockfile"
else
  echo "$e2e_dir up to date"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "tests (nextest)"
cargo nextest run --workspace --all-features --no-fail-fast

step "gantry-stats: regenerate reference fixtures (scipy, statsmodels, gbstats 0.8.0) and diff"
scripts/stats/check.sh

step "doc tests"
cargo test --workspace --doc

step "docs build (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items

step "benchmarks compile"
cargo bench --workspace --no-run

step "engine builds for wasm32 when the target is installed"
if rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  cargo check -p gantry-engine --target wasm32-unknown-unknown
else
  echo "wasm32-unknown-unknown not installed; skipped (rustup target add wasm32-unknown-unknown)"
fi

echo
echo "all checks passed"
