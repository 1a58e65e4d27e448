#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then the gates in order —
# formatting, clippy with warnings denied on all targets, the Rust tests (several of them
# against private local AWS emulators and the real CPU speech engine), and the engine's
# Python tests. Stops at the first failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${FLEET_VENV:-$root/.venv}

step() { printf '\n==> test: %s\n' "$*" >&2; }

step "installing prerequisites"
scripts/common/bootstrap.sh
if docker info >/dev/null 2>&1; then
    # Path B's tests build and run the worker image when a Docker engine answers.
    docker/local-prereqs.sh
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
cargo test --workspace --no-fail-fast

step "engine tests (pytest)"
"$venv/bin/python" -m pytest engine -q -p no:cacheprovider
